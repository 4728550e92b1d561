"""The result of a drift measurement: :class:`DriftReport`, one :class:`FeatureDrift` each.

A report holds, per input column and per scoring output, the verdict, the tests and
effect sizes behind it and both distributions (counts per bin), and renders as a
frame, as JSON and as one offline HTML page.

How a verdict is reached. Every column and score gets the tests that apply to it
(:class:`DriftTest`): on the distribution of its present values a chi-square test
and, for numbers, a Kolmogorov-Smirnov test; on each rate the reference can be
compared with (missing values; unseen categories; invalid numbers) Fisher's exact
test. All the tests of one report form one family, Holm-corrected so that the chance
of any false alarm in the report stays at most ``alpha``. A test that rejects is then
weighed by its effect size: PSI over the bins of present values for a distribution
test (``alert`` from ``alert``, ``warn`` from ``warn``), the change of the rate for a
rate test (alert from one percentage point, warn from half of one), the mean's change
in reference standard deviations for the mean test and the variance ratio for the
variance test, each against the floor a normal column's PSI would reach at ``warn`` /
``alert`` (:func:`moment_floor`: by default a mean moved by 0.1 / 0.141 sd, a variance
ratio of 1.152 / 1.221 or its inverse). A real but smaller change
is ``"ok"``, its test listed. The worst verdict of a column's tests is the column's,
and the report names the test and effect size that decided it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pandas as pd

from safemodel.monitoring import html as _drift_html
from safemodel.monitoring.profile import ProfileKind

__all__ = ["DriftReport", "FeatureDrift", "Role", "Status", "moment_floor"]

Status = Literal["ok", "warn", "alert", "insufficient"]
Role = Literal["feature", "score"]

_SEVERITY: dict[str, int] = {"alert": 3, "warn": 2, "insufficient": 1, "ok": 0}

WARN = 0.01
"""Default PSI floor of a warning: below it, a significant change counts as trivia."""
ALERT = 0.02
"""Default PSI floor of an alert (a mean shift of about 0.14 standard deviation)."""
MIN_ROWS = 10
"""Default fewest rows that get a verdict."""
ALPHA = 0.05
"""Default chance of any false alarm in one report."""
# Rate-change floors of the rate tests (missing, unseen, invalid), in shares of rows.
_RATE_WARN = 0.005
_RATE_ALERT = 0.01

Effect = Literal["psi", "rate_change", "standardized_mean_difference", "variance_ratio"]


class Thresholds(NamedTuple):
    """The settings a report's verdicts were reached with."""

    warn: float
    alert: float
    min_rows: int
    alpha: float


@dataclass(frozen=True)
class DriftTest:
    """One test behind a verdict.

    Attributes
    ----------
    name : {"chi_square", "ks", "mean", "variance", "missing", "unseen", "invalid"}
        ``chi_square`` and ``ks`` compare the distributions of present values;
        ``mean`` and ``variance`` (numbers whose profile stores moments) compare the
        batch's mean and variance with the reference moments; the others compare one
        rate with the reference's (Fisher's exact test).
    statistic : float
        Chi-square statistic, KS distance ``D``, the mean's ``z``, the log variance
        ratio over its standard error, or the change of the rate.
    p_value : float
        Before correction.
    effect : str
        What ``effect_size`` measures: ``"psi"``, ``"rate_change"``,
        ``"standardized_mean_difference"`` or ``"variance_ratio"``.
    effect_size : float
        PSI over the bins of present values (a distribution test), the rate in the
        batch minus the reference rate (a rate test), the change of the mean in
        reference standard deviations, or the batch variance over the reference's.
    adjusted : float
        Holm-adjusted p-value within the report (1.0 until adjusted).
    verdict : {"ok", "warn", "alert"}
        ``"ok"`` unless ``adjusted <= alpha`` and the effect size reaches a floor.
    """

    name: str
    statistic: float
    p_value: float
    effect: Effect
    effect_size: float
    adjusted: float = 1.0
    verdict: Status = "ok"

    def adjust(self, adjusted: float, settings: Thresholds) -> DriftTest:
        """This test with its corrected p-value and the verdict it gives."""
        verdict: Status = "ok"
        if adjusted <= settings.alpha:
            size = abs(self.effect_size)
            if self.effect == "variance_ratio":
                size = max(size, 1.0 / size) if size > 0 else math.inf
            warn, alert = _floors(self.effect, settings)
            verdict = "alert" if size >= alert else "warn" if size >= warn else "ok"
        return DriftTest(self.name, self.statistic, self.p_value, self.effect,
                         self.effect_size, adjusted, verdict)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "adjusted": self.adjusted,
            "effect": self.effect,
            "effect_size": self.effect_size,
            "verdict": self.verdict,
        }


def moment_floor(effect: Effect, psi_floor: float) -> float:
    """The floor of a moment test equivalent to a PSI floor, for a normal column.

    PSI (a symmetrised Kullback-Leibler divergence) between two normal distributions
    is ``d**2`` for a mean moved by ``d`` standard deviations and
    ``(r + 1/r - 2) / 2`` for a variance ratio ``r``: so the PSI floors ``warn`` and
    ``alert`` (0.01, 0.02) stand for a mean moved by 0.1 / 0.141 sd and a variance
    ratio of 1.152 / 1.221 (or their inverses).

    Examples
    --------
    >>> round(moment_floor("standardized_mean_difference", 0.02), 3)
    0.141
    >>> round(moment_floor("variance_ratio", 0.02), 3)
    1.221
    """
    if effect == "standardized_mean_difference":
        return math.sqrt(psi_floor)
    # r + 1/r = 2 + 2 * psi, the root above 1
    b = 1.0 + psi_floor
    return b + math.sqrt(b * b - 1.0)


def _floors(effect: Effect, settings: Thresholds) -> tuple[float, float]:
    if effect == "psi":
        return settings.warn, settings.alert
    if effect in ("standardized_mean_difference", "variance_ratio"):
        return moment_floor(effect, settings.warn), moment_floor(effect, settings.alert)
    return _RATE_WARN, _RATE_ALERT


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
        The PSI that chance alone exceeds 0.1% of the time at this sample size
        (for reading PSI on small batches; verdicts come from the tests).
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
    tests : tuple of DriftTest
        Every test run for it (none below ``min_rows``), with corrected p-values.
    test : str or None
        The test that decided the status (the worst verdict, then the smallest
        corrected p-value); ``None`` when no test could run.
    p_value : float or None
        That test's Holm-corrected p-value.
    effect_size : float or None
        That test's effect size: PSI, or the change of a rate.
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
    tests: tuple[DriftTest, ...] = ()
    test: str | None = None
    p_value: float | None = None
    effect_size: float | None = None

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
            "test": self.test,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "tests": [t.to_dict() for t in self.tests],
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
        PSI floors of a warning and an alert.
    min_rows : int
        Fewest rows that get a verdict.
    alpha : float
        The chance of any false alarm in the report the tests were corrected to.
    performance : dict or None
        For a classifier observed with its probabilities: ``expected_accuracy`` and
        ``expected_roc_auc`` (confidence-based, assuming calibration, stated in
        ``assumption``), ``rows_scored``, ``accuracy`` and ``roc_auc`` (realised, on
        labelled rows; ``roc_auc_binning_error`` bounds what binning the scores can
        change it by) and ``rows_labelled``; see
        :mod:`~safemodel.monitoring.performance`. ``None`` otherwise.
    """

    features: dict[str, FeatureDrift]
    scores: dict[str, FeatureDrift]
    rows: int
    reference_rows: int
    warn: float
    alert: float
    min_rows: int
    alpha: float = ALPHA
    performance: dict[str, float | int | str | None] | None = None

    @property
    def drift_share(self) -> float | None:
        """Share of the input columns with a verdict that alert (``None`` if none has one).

        A dataset-level view: 0.5 means half the columns moved. Scores are left out
        (they follow the inputs).
        """
        judged = [r for r in self.features.values() if r.status != "insufficient"]
        if not judged:
            return None
        return sum(r.status == "alert" for r in judged) / len(judged)

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
        """Results sorted worst first: alert, warn, insufficient, ok; then by p-value, PSI."""
        return sorted(
            self.results,
            key=lambda r: (
                -_SEVERITY[r.status],
                r.p_value if r.p_value is not None else 1.0,
                -(r.psi if r.psi is not None else -1.0),
            ),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column and per score, indexed by name: the verdict, the test and
        effect size that decided it, and the statistics."""
        columns = ["role", "kind", "status", "test", "p_value", "effect_size", "rows",
                   *STATISTICS]  # fmt: skip
        frame = pd.DataFrame(
            [[getattr(r, c) for c in columns] for r in self.results],
            columns=columns,
            index=pd.Index([r.name for r in self.results], name="name", dtype=object),
        )
        for stat in ("p_value", "effect_size", *STATISTICS):
            frame[stat] = frame[stat].astype("float64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, suitable for ``json.dumps`` and an HTTP response."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "thresholds": {
                "warn": self.warn,
                "alert": self.alert,
                "min_rows": self.min_rows,
                "alpha": self.alpha,
            },
            "drift_share": self.drift_share,
            "performance": self.performance,
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

    def _repr_html_(self) -> str:
        return _drift_html.fragment(self)

    def __repr__(self) -> str:
        return (
            f"<DriftReport rows={self.rows} columns={len(self.features)} "
            f"scores={len(self.scores)} alerts={self.alerts!r} warnings={self.warnings!r}>"
        )
