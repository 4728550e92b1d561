"""Score bundles on Dask: the public path of :mod:`safemodel.integrations.dask`."""

from safemodel.integrations.dask import *  # noqa: F403
from safemodel.integrations.dask import __all__ as __all__
