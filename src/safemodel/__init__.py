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
import typing as _typing

if _typing.TYPE_CHECKING:
    from safemodel import testing
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
        SigningKeyError,
        StoreError,
        TooManyRejected,
        UntrustedBundleError,
    )
    from safemodel.io.archive import inspect, load
    from safemodel.io.audit import DEFAULT_ALLOWED_MODULES, NOTEBOOK_ALLOWED_MODULES
    from safemodel.io.manifest import BundleInfo
    from safemodel.monitoring.drift import DriftReport
    from safemodel.monitoring.monitor import Monitor
    from safemodel.store import BundleStore

    __version__: str

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
    "NOTEBOOK_ALLOWED_MODULES",
    "Policy",
    "PolicyReport",
    "Prepared",
    "SafeModelError",
    "Scored",
    "ScoringError",
    "SigningKeyError",
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


# Where each public name is defined. Nothing is imported until a name is first used:
# the pytest11 entry point (safemodel.integrations.pytest_plugin) imports this package
# in every pytest run, bundles or not, and must not pay for pandas and scikit-learn.
_ERRORS = ("BundleFormatError", "ContractViolation", "GoldenMismatchError",
           "IncompatibleEnvironmentError", "IntegrityError", "InvalidArgument",
           "SafeModelError", "ScoringError", "SigningKeyError", "StoreError",
           "TooManyRejected",
           "UntrustedBundleError")
_DEFINED_IN: dict[str, str] = {
    "ModelBundle": "safemodel.core.bundle",
    "Scored": "safemodel.core.bundle",
    "ColumnSpec": "safemodel.core.contract",
    "Contract": "safemodel.core.contract",
    "BundleDiff": "safemodel.core.diff",
    "diff": "safemodel.core.diff",
    "Golden": "safemodel.core.golden",
    "VerificationReport": "safemodel.core.golden",
    "ColumnPolicy": "safemodel.core.policy",
    "Policy": "safemodel.core.policy",
    "PolicyReport": "safemodel.core.report",
    "Prepared": "safemodel.core.report",
    **dict.fromkeys(_ERRORS, "safemodel.errors"),
    "inspect": "safemodel.io.archive",
    "load": "safemodel.io.archive",
    "DEFAULT_ALLOWED_MODULES": "safemodel.io.audit",
    "NOTEBOOK_ALLOWED_MODULES": "safemodel.io.audit",
    "BundleInfo": "safemodel.io.manifest",
    "BundleStore": "safemodel.store",
    "Monitor": "safemodel.monitoring.monitor",
    "DriftReport": "safemodel.monitoring.drift",
}


def __getattr__(name: str) -> _typing.Any:
    module = _DEFINED_IN.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name == "testing":
        # importlib, not `from . import testing`: that form calls this __getattr__ again.
        value = importlib.import_module(".testing", __name__)
    elif name == "__version__":
        import importlib.metadata as metadata

        try:
            value = metadata.version("safemodel")
        except metadata.PackageNotFoundError:  # pragma: no cover - a source tree
            value = "0.0.0"
    else:
        raise AttributeError(f"module 'safemodel' has no attribute {name!r}")
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
