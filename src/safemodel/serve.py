"""Serve a bundle store over HTTP: the public path of :mod:`safemodel.integrations.serve`."""

from safemodel.integrations.serve import *  # noqa: F403
from safemodel.integrations.serve import __all__ as __all__
