"""Scoring outputs in one shape, and the limit on rejected rows of a batch.

Estimators return ndarrays, but also sparse matrices (``transform`` of a one-hot
encoder) and lists of per-output arrays (``MultiOutputClassifier.predict_proba``).
Golden outputs, :class:`~safemodel.core.bundle.Scored` and distributed scoring need
one dense array: :func:`as_output` makes it, losslessly.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from safemodel.core.report import PolicyReport
from safemodel.errors import InvalidArgument, SafeModelError, TooManyRejected

__all__ = ["MAX_DENSE_CELLS", "allowed_rejections", "as_output", "check_rejected", "is_sparse",
           "raise_if_too_many", "rejection_limit"]

#: A sparse output larger than this is not densified for golden storage and comparison.
MAX_DENSE_CELLS = 20_000_000


def is_sparse(value: Any) -> bool:
    """Whether ``value`` is a scipy sparse matrix or array."""
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return False
    return bool(sparse.issparse(value))


def as_output(value: Any) -> np.ndarray:
    """``value`` as one dense ndarray (sparse densified, per-output lists side by side)."""
    if is_sparse(value):
        rows, cols = value.shape
        if rows * cols > MAX_DENSE_CELLS:
            raise SafeModelError(
                f"A sparse output of shape {value.shape} is too large to store densely as "
                f"golden output (more than {MAX_DENSE_CELLS} cells); build the bundle with "
                "fewer golden_rows."
            )
        return np.asarray(value.toarray())
    if isinstance(value, list | tuple) and value and all(
        hasattr(v, "shape") for v in value
    ):
        parts = [as_output(v) for v in value]
        return np.hstack([p.reshape(len(p), -1) for p in parts])
    return np.asarray(value)


def rejection_limit(max_rejected: Any, where: str, invalid: str) -> float | None:
    """Validate ``max_rejected``: ``None``, an int count >= 0, or a float fraction in [0, 1].

    Returns ``None``, the count (an int), or the fraction (a float). It needs
    ``invalid="drop"``: under ``"raise"`` one rejected row already fails the call.
    """
    if max_rejected is None:
        return None
    if invalid != "drop":
        raise InvalidArgument(
            f"max_rejected={max_rejected!r} needs invalid='drop' in {where} (under "
            "invalid='raise' one rejected row already fails the call).",
            argument="max_rejected", expected="None, or invalid='drop'", found=max_rejected,
        )
    if isinstance(max_rejected, bool):
        raise InvalidArgument.of(where, "max_rejected",
                                 "an int count >= 0 or a float fraction in [0, 1]", max_rejected)
    if isinstance(max_rejected, int | np.integer) and max_rejected >= 0:
        return int(max_rejected)
    if isinstance(max_rejected, float | np.floating) and 0.0 <= max_rejected <= 1.0:
        return float(max_rejected)
    raise InvalidArgument.of(where, "max_rejected",
                             "an int count >= 0 or a float fraction in [0, 1]", max_rejected)


def allowed_rejections(limit: float, rows: int) -> int:
    """The most rejected rows ``limit`` (count or fraction) allows among ``rows``."""
    if isinstance(limit, int):
        return limit
    return math.floor(limit * rows + 1e-9)


def check_rejected(report: PolicyReport, limit: float, label: str) -> None:
    """Raise :class:`TooManyRejected` when ``report`` rejected more rows than ``limit``."""
    rejected = len(report.rejected_rows)
    raise_if_too_many(rejected, report.rows, limit, label,
                      Counter(f"{f.column}: {f.check}" for f in report.rejected))


def raise_if_too_many(rejected: int, rows: int, limit: float, label: str,
                      reasons: Counter[str] | None = None) -> None:
    """The engine-neutral check (Spark and Dask count rows on their side)."""
    allowed = allowed_rejections(limit, rows)
    if rejected <= allowed:
        return
    top = dict((reasons or Counter()).most_common(5))
    stated = f"{limit:.2%} of {rows}" if isinstance(limit, float) else f"{limit}"
    raise TooManyRejected(
        f"{label}: {rejected} of {rows} rows broke the contract, more than max_rejected "
        f"allows ({stated}, i.e. {allowed} rows). Most frequent reasons: {top}. Fix the "
        "input (a numeric column arriving as text? see Policy(numeric_text='parse')) or "
        "raise max_rejected.",
        rejected=rejected, rows=rows, limit=allowed, reasons=top,
    )
