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

Small samples. Two samples of one distribution already differ: 50 rows on 10 bins
give a PSI near 0.2 with no drift at all, which is why fixed PSI thresholds cry wolf
on small batches. A status is therefore raised only when PSI also reaches
``chance_psi``, the 99.9% quantile of that chance distribution at this sample size;
and batches of fewer than ``min_rows`` rows get ``"insufficient"`` instead of a
verdict.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from safemodel.monitoring.accumulator import DriftAccumulator, Scores, check_thresholds
from safemodel.monitoring.profile import Profile
from safemodel.monitoring.report import DriftReport, FeatureDrift, Status
from safemodel.monitoring.statistics import js_distance, psi

__all__ = [
    "DriftAccumulator",
    "DriftReport",
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
    warn: float = 0.1,
    alert: float = 0.25,
    min_rows: int = 30,
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
    warn, alert : float, default 0.1 and 0.25
        PSI thresholds, ``0 < warn <= alert``.
    min_rows : int, default 30
        Fewest rows that get a verdict; fewer get ``"insufficient"``. A verdict also
        needs PSI above what chance gives at this sample size (see the module notes).

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
    check_thresholds(warn, alert, min_rows)
    accumulator = DriftAccumulator(profile)
    accumulator.add(X, scores=scores)
    return accumulator.report(warn=warn, alert=alert, min_rows=min_rows)
