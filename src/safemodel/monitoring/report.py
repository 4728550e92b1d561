"""The result of a drift measurement: :class:`DriftReport`, one :class:`FeatureDrift` each.

A report holds, per input column and per scoring output, the verdict, the statistics
behind it and both distributions (counts per bin), and renders as a frame, as JSON
and as one offline HTML page.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from safemodel.monitoring import html as _drift_html
from safemodel.monitoring.profile import ProfileKind

__all__ = ["DriftReport", "FeatureDrift", "Role", "Status"]

Status = Literal["ok", "warn", "alert", "insufficient"]
Role = Literal["feature", "score"]

_SEVERITY: dict[str, int] = {"alert": 3, "warn": 2, "insufficient": 1, "ok": 0}


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one input column or one scoring output.

    Attributes
    ----------
    name : str
    role : {"feature", "score"}
    kind : {"number", "categorical", "text"}
    status : {"ok", "warn", "alert", "insufficient"}
    rows : int
        Rows of current data counted for it.
    reference_rows : int
    psi : float or None
        Population Stability Index (``None`` without current rows).
    js : float or None
        Jensen-Shannon distance, base 2.
    chance_psi : float or None
        The PSI that chance alone exceeds 0.1% of the time at this sample size; a
        status needs PSI at or above both it and the threshold.
    missing_rate, unexpected_missing_rate : float or None
        Share of rows missing; the same, but only where the reference had no missing
        value (0.0 otherwise).
    unseen_rate : float or None
        Share of rows with a category outside the reference set (categorical only).
    out_of_range_rate, invalid_rate : float or None
        Share of rows outside the reference range / not a finite number (numeric only).
    bins : tuple of str
        Bin labels, in layout order.
    reference_counts, current_counts : tuple of int
        Rows per bin on each side: the distributions that were compared.
    """

    name: str
    role: Role
    kind: ProfileKind
    status: Status
    rows: int
    reference_rows: int
    psi: float | None
    js: float | None
    chance_psi: float | None
    missing_rate: float | None
    unexpected_missing_rate: float | None
    unseen_rate: float | None
    out_of_range_rate: float | None
    invalid_rate: float | None
    bins: tuple[str, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (plain Python numbers, lists)."""
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "status": self.status,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            **{stat: getattr(self, stat) for stat in STATISTICS},
            "bins": list(self.bins),
            "reference_counts": list(self.reference_counts),
            "current_counts": list(self.current_counts),
        }


STATISTICS = (
    "psi",
    "js",
    "chance_psi",
    "missing_rate",
    "unexpected_missing_rate",
    "unseen_rate",
    "out_of_range_rate",
    "invalid_rate",
)


@dataclass(frozen=True, repr=False)
class DriftReport:
    """Drift of a batch (or of everything a monitor observed) against the profile.

    Attributes
    ----------
    features : dict of str to FeatureDrift
        One per input column of the profile, in profile order.
    scores : dict of str to FeatureDrift
        One per scoring output of the profile.
    rows : int
        Rows of current data counted.
    reference_rows : int
        Rows the profile was built on.
    warn, alert : float
        PSI thresholds used.
    min_rows : int
        Fewest rows that get a verdict.
    """

    features: dict[str, FeatureDrift]
    scores: dict[str, FeatureDrift]
    rows: int
    reference_rows: int
    warn: float
    alert: float
    min_rows: int

    @property
    def results(self) -> list[FeatureDrift]:
        """Every result: features first, then scores."""
        return [*self.features.values(), *self.scores.values()]

    @property
    def alerts(self) -> list[str]:
        """Names of the columns and scores with status ``"alert"``."""
        return [r.name for r in self.results if r.status == "alert"]

    @property
    def warnings(self) -> list[str]:
        """Names of the columns and scores with status ``"warn"``."""
        return [r.name for r in self.results if r.status == "warn"]

    @property
    def ok(self) -> bool:
        """True when nothing alerts (warnings allowed)."""
        return not self.alerts

    def by_severity(self) -> list[FeatureDrift]:
        """Results sorted worst first: alert, warn, insufficient, ok; then by PSI."""
        return sorted(
            self.results,
            key=lambda r: (-_SEVERITY[r.status], -(r.psi if r.psi is not None else -1.0)),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column and per score, indexed by name, with the statistics."""
        columns = ["role", "kind", "status", "rows", *STATISTICS]
        frame = pd.DataFrame(
            [[getattr(r, c) for c in columns] for r in self.results],
            columns=columns,
            index=pd.Index([r.name for r in self.results], name="name", dtype=object),
        )
        for stat in STATISTICS:
            frame[stat] = frame[stat].astype("float64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, suitable for ``json.dumps`` and an HTTP response."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "thresholds": {"warn": self.warn, "alert": self.alert, "min_rows": self.min_rows},
            "alerts": self.alerts,
            "warnings": self.warnings,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
        }

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as one self-contained HTML file (inline SVG, no script).

        Per column and score, worst first: the verdict, the statistics and a bar chart
        of the reference vs the current distribution. Readable offline.

        Returns
        -------
        Path
            The file written (overwritten if it existed).
        """
        target = Path(path)
        target.write_text(_drift_html.render(self), encoding="utf-8")
        return target

    def __repr__(self) -> str:
        return (
            f"<DriftReport rows={self.rows} columns={len(self.features)} "
            f"scores={len(self.scores)} alerts={self.alerts!r} warnings={self.warnings!r}>"
        )
