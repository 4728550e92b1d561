"""Serve every model of a bundle store over HTTP (KServe / TF-Serving V1 REST protocol).

Needs the ``serve`` extra (``pip install safemodel[serve]``: FastAPI, uvicorn,
prometheus-client); ``import safemodel`` never imports it. Public path:
:mod:`safemodel.serve`. ``docs/serving.md`` describes the protocol, the limits, the
metrics and the logs.
"""

from safemodel.integrations.serve.app import Server, create_app, create_router, with_model_schemas
from safemodel.integrations.serve.limits import Limits
from safemodel.integrations.serve.registry import LoadFailure, ModelRegistry, ServedModel
from safemodel.integrations.serve.run import run

__all__ = [
    "Limits",
    "LoadFailure",
    "ModelRegistry",
    "ServedModel",
    "Server",
    "create_app",
    "create_router",
    "run",
    "with_model_schemas",
]
