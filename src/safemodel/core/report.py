"""What the policy did in one call: :class:`PolicyReport`, and the :class:`Prepared` frame.

The engine (:mod:`safemodel.core.engine`) builds these; the bundle logs them with
:func:`log_report`; services return :meth:`PolicyReport.to_dict` as JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from safemodel.errors import Failure

__all__ = ["ColumnAction", "PolicyReport", "Prepared", "log_prediction", "log_report", "logger",
           "prediction_log"]

logger = logging.getLogger("safemodel")


@dataclass(frozen=True)
class ColumnAction:
    """One action the policy took on one column, and the row positions it touched."""

    column: str
    action: str
    rows: tuple[int, ...] = ()
    count: int = -1  # -1: len(rows); whole-column actions give the count and no rows

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", len(self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "action": self.action, "count": self.count,
                "rows": list(self.rows)}


# Actions that change what the estimator sees (logged at WARNING); the others are
# lossless (type coercion, dropping an unknown column the estimator never reads).
_CHANGING = frozenset({"imputed", "unseen_to_missing", "unseen_to_most_frequent",
                       "unseen_passthrough", "missing_passthrough"})


@dataclass(frozen=True)
class PolicyReport:
    """What the policy did in one call: actions per column, and rejected rows.

    ``rows`` is the number of input rows; ``rejected`` lists the failures of rows that
    were dropped (only with ``invalid="drop"``).
    """

    rows: int
    actions: tuple[ColumnAction, ...] = ()
    rejected: tuple[Failure, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the policy changed any value the estimator sees (or dropped rows)."""
        return bool(self.rejected) or any(a.action in _CHANGING for a in self.actions)

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({f.row for f in self.rejected if f.row is not None})

    def counts(self) -> dict[str, dict[str, int]]:
        """``{column: {action: rows}}``."""
        out: dict[str, dict[str, int]] = {}
        for a in self.actions:
            out.setdefault(a.column, {})[a.action] = a.count
        return out

    def rejected_checks(self) -> dict[int, tuple[str, ...]]:
        """``{row: sorted failed checks}`` of the rejected rows."""
        checks: dict[int, set[str]] = {}
        for f in self.rejected:
            if f.row is not None:
                checks.setdefault(f.row, set()).add(f.check)
        return {row: tuple(sorted(c)) for row, c in checks.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rows": self.rows,
            "actions": [a.to_dict() for a in self.actions],
            "rejected_rows": self.rejected_rows,
            "rejected": [f.to_dict() for f in self.rejected],
        }

    def _repr_html_(self) -> str:
        from safemodel.core._display import policy_report_html

        return policy_report_html(self)

    def summary(self) -> str:
        """One line without raw values, for logs."""
        if not self.actions and not self.rejected:
            return f"{self.rows} row(s), no policy action"
        parts = [f"{a.column}: {a.action} x{a.count}" for a in self.actions]
        if self.rejected:
            parts.append(f"rejected {len(self.rejected_rows)} row(s)")
        return f"{self.rows} row(s); " + "; ".join(parts)


@dataclass(frozen=True)
class Prepared:
    """The frame the estimator will see, and the report of how it was made.

    ``rows`` are the positions, in the caller's input, of the rows in ``frame``
    (all rows unless invalid rows were dropped).
    """

    frame: pd.DataFrame
    report: PolicyReport

    @property
    def rows(self) -> np.ndarray:
        rejected = self.report.rejected_rows
        keep = np.ones(self.report.rows, dtype=bool)
        keep[rejected] = False
        return np.flatnonzero(keep)


def log_report(report: PolicyReport, bundle: str) -> None:
    """One line on the ``safemodel`` logger: WARNING if the policy changed something."""
    if report.changed:
        if logger.isEnabledFor(logging.WARNING):
            logger.warning("%s: %s", bundle, report.summary())
    elif report.actions and logger.isEnabledFor(logging.INFO):
        logger.info("%s: %s", bundle, report.summary())


prediction_log = logger.getChild("predictions")


def log_prediction(bundle: Any, method: str, report: PolicyReport, seconds: float) -> None:
    """One structured record per scoring call on ``safemodel.predictions`` (DEBUG)."""
    prediction_log.debug(
        "%s %s rows=%d latency_ms=%.3f", bundle._label, method, report.rows, seconds * 1e3,
        extra={"safemodel": {
            "bundle": bundle.name, "version": str(bundle.version),
            "fingerprint": bundle.fingerprint, "method": method, "rows": report.rows,
            "actions": report.counts(), "latency_ms": seconds * 1e3,
        }},
    )
