"""Store, register and serve bundles with MLflow: the public path of
:mod:`safemodel.integrations.mlflow`."""

from safemodel.integrations.mlflow import *  # noqa: F403
from safemodel.integrations.mlflow import __all__ as __all__
