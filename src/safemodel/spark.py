"""Score bundles on Spark: the public path of :mod:`safemodel.integrations.spark`."""

from safemodel.integrations.spark import *  # noqa: F403
from safemodel.integrations.spark import __all__ as __all__
