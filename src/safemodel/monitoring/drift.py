"""Drift of production data against a reference profile: :func:`drift`.

The public entry point of the monitoring layer. It gathers, in one import path, the
parts that live in modules of their own:

- :mod:`~safemodel.monitoring.profile`: the reference (:class:`Profile`), built once
  from the training data and stored in the bundle;
- :mod:`~safemodel.monitoring.accumulator`: counting batches into the profile's bins
  (:class:`DriftAccumulator`);
- :mod:`~safemodel.monitoring.statistics`: distances and tests between two count
  vectors (:func:`psi`, :func:`js_distance`);
- :mod:`~safemodel.monitoring.report`: the result (:class:`DriftReport`, one
  :class:`FeatureDrift` per column and score).

:func:`drift` is one batch counted once; :class:`~safemodel.monitoring.monitor.Monitor`
keeps counting across batches. Both go through the same code.

Verdicts. Every column and score is tested (a chi-square and a Kolmogorov-Smirnov
test on its binned distribution; for numeric columns whose profile stores moments, a
test of the mean and one of the variance; Fisher's exact test on its rates of missing
values, unseen categories and invalid numbers), all tests of a report are Holm-corrected so
that the chance of any false alarm in the report is at most ``alpha``, and a change
that is significant alerts only when its effect size reaches a floor (PSI ``alert``,
or one percentage point for a rate): large batches flag real but moderate shifts and
not trivia; small batches do not cry wolf, and an exact test decides on 15 rows when
it can. See :mod:`~safemodel.monitoring.report` for the rule.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from safemodel.monitoring.accumulator import DriftAccumulator, Scores, check_thresholds
from safemodel.monitoring.profile import Profile
from safemodel.monitoring.report import (
    ALERT,
    ALPHA,
    MIN_ROWS,
    WARN,
    DriftReport,
    DriftTest,
    FeatureDrift,
    Status,
)
from safemodel.monitoring.statistics import js_distance, psi

__all__ = [
    "DriftAccumulator",
    "DriftReport",
    "DriftTest",
    "FeatureDrift",
    "Scores",
    "Status",
    "drift",
    "js_distance",
    "psi",
]


def drift(
    profile: Profile,
    X: pd.DataFrame | Any,
    *,
    scores: Scores | None = None,
    warn: float = WARN,
    alert: float = ALERT,
    min_rows: int = MIN_ROWS,
    alpha: float = ALPHA,
) -> DriftReport:
    """Measure how far a batch has drifted from a reference profile.

    Parameters
    ----------
    profile : Profile
        The reference, usually ``bundle.profile``.
    X : DataFrame
        The batch, as received (see :meth:`DriftAccumulator.add`).
    scores : mapping of str to array, or array, optional
        The estimator's outputs on ``X`` under the profile's score names (or one
        array, columns in profile order); without it the scores get ``"insufficient"``.
    warn, alert : float, default 0.01 and 0.02
        Effect-size floors in PSI, ``0 < warn <= alert``: a significant change of a
        distribution alerts from ``alert`` up and warns from ``warn``.
    min_rows : int, default 10
        Fewest rows that get a verdict; fewer get ``"insufficient"``.
    alpha : float, default 0.05
        The chance of any false alarm in the report (Holm correction over every test
        of every column and score).

    Returns
    -------
    DriftReport

    Raises
    ------
    InvalidArgument
        Bad thresholds, or ``scores`` with unknown names or the wrong shape.
    ContractViolation
        ``X`` is not a DataFrame or another input form the bundle accepts.

    Examples
    --------
    >>> import pandas as pd
    >>> from safemodel.monitoring.profile import Profile
    >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    >>> profile = Profile.build(ref, categorical={"c": ["a", "b"]})
    >>> drift(profile, ref).ok
    True
    >>> drift(profile, pd.DataFrame({"c": ["a"] * 40 + ["new"] * 60})).alerts
    ['c']
    """
    check_thresholds(warn, alert, min_rows, alpha=alpha)
    accumulator = DriftAccumulator(profile)
    accumulator.add(X, scores=scores)
    return accumulator.report(warn=warn, alert=alert, min_rows=min_rows, alpha=alpha)
