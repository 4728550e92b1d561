"""safemodel: deployment-safe model packaging.

A :class:`ModelBundle` holds a trained estimator, its input contract, a policy for
unseen categories and missing values, and golden outputs; :func:`load` re-runs the
golden inputs and refuses a model whose scores changed.

>>> import safemodel as sm
>>> bundle = sm.ModelBundle.from_training(pipe, X_train, name="churn")  # doctest: +SKIP
>>> bundle.save("churn-0.1.0.safemodel")                                # doctest: +SKIP
>>> sm.load("churn-0.1.0.safemodel").predict_proba(records)             # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.metadata as _metadata
import typing as _typing

from safemodel.core.bundle import ModelBundle, Scored
from safemodel.core.contract import ColumnSpec, Contract
from safemodel.core.diff import BundleDiff, diff
from safemodel.core.golden import Golden, VerificationReport
from safemodel.core.policy import ColumnPolicy, Policy
from safemodel.core.report import PolicyReport, Prepared
from safemodel.errors import (
    BundleFormatError,
    ContractViolation,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    InvalidArgument,
    SafeModelError,
    ScoringError,
    StoreError,
    TooManyRejected,
    UntrustedBundleError,
)
from safemodel.io.archive import inspect, load
from safemodel.io.audit import DEFAULT_ALLOWED_MODULES
from safemodel.io.manifest import BundleInfo

try:
    __version__ = _metadata.version("safemodel")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "BundleDiff",
    "BundleFormatError",
    "BundleInfo",
    "BundleStore",
    "ColumnPolicy",
    "ColumnSpec",
    "Contract",
    "ContractViolation",
    "DEFAULT_ALLOWED_MODULES",
    "DriftReport",
    "Golden",
    "GoldenMismatchError",
    "IncompatibleEnvironmentError",
    "IntegrityError",
    "InvalidArgument",
    "ModelBundle",
    "Monitor",
    "Policy",
    "PolicyReport",
    "Prepared",
    "SafeModelError",
    "Scored",
    "ScoringError",
    "StoreError",
    "TooManyRejected",
    "UntrustedBundleError",
    "VerificationReport",
    "__version__",
    "diff",
    "inspect",
    "load",
    "testing",
]


def __getattr__(name: str) -> _typing.Any:
    # Heavier or optional parts load on first use, so `import safemodel` stays light.
    if name == "BundleStore":
        from safemodel.store import BundleStore

        return BundleStore
    if name == "Monitor":
        from safemodel.monitoring.monitor import Monitor

        return Monitor
    if name == "DriftReport":
        from safemodel.monitoring.drift import DriftReport

        return DriftReport
    if name == "testing":
        # importlib, not `from . import testing`: that form calls this __getattr__ again.
        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module 'safemodel' has no attribute {name!r}")
