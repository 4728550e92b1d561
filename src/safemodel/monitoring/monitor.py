"""Drift monitoring inside a running service.

A :class:`Monitor` counts every batch a service scores into the bundle's reference
bins (no rows are kept) and reports drift over everything observed so far::

    monitor = safemodel.Monitor(bundle)
    proba = bundle.predict_proba(X)
    monitor.observe(X, scores=proba)     # O(rows), vectorised, thread-safe
    ...
    report = monitor.report()            # a DriftReport, as bundle.drift() gives
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy.typing as npt
import pandas as pd

from safemodel._frame import Input, as_frame
from safemodel.errors import SafeModelError
from safemodel.monitoring.accumulator import DriftAccumulator, Scores, check_thresholds
from safemodel.monitoring.profile import Profile
from safemodel.monitoring.report import ALERT, ALPHA, MIN_ROWS, WARN, DriftReport

__all__ = ["Monitor"]


class _Monitorable(Protocol):
    """What a monitor needs from a bundle."""

    @property
    def profile(self) -> Profile | None: ...

    def reference_scores(self, X: pd.DataFrame) -> Mapping[str, npt.NDArray[Any]]: ...


class Monitor:
    """Accumulates production batches and reports their drift from the training data.

    Parameters
    ----------
    bundle : ModelBundle
        A bundle with a reference profile (any bundle built by ``from_training``).
    warn, alert : float, default 0.01 and 0.02
        Effect-size floors (PSI) of the reports' warnings and alerts,
        ``0 < warn <= alert``.
    min_rows : int, default 10
        Fewest observed rows that get a verdict.
    alpha : float, default 0.05
        The chance of any false alarm in one report.

    Raises
    ------
    SafeModelError
        The bundle carries no reference profile.
    InvalidArgument
        Bad thresholds or ``min_rows``.

    Notes
    -----
    Observing keeps one integer per bin, whatever the traffic, and may be called from
    several threads at once. To keep its cost negligible next to scoring, pass the
    scores the service already computed (``scores=proba``); without them the monitor
    asks the bundle to score the batch again.

    Examples
    --------
    >>> monitor = Monitor(bundle)                                # doctest: +SKIP
    >>> monitor.observe(X_batch, scores=bundle.predict_proba(X_batch))  # doctest: +SKIP
    >>> monitor.report().alerts                                  # doctest: +SKIP
    []
    """

    def __init__(
        self,
        bundle: _Monitorable,
        *,
        warn: float = WARN,
        alert: float = ALERT,
        min_rows: int = MIN_ROWS,
        alpha: float = ALPHA,
    ) -> None:
        check_thresholds(warn, alert, min_rows, alpha=alpha, caller="Monitor")
        profile = bundle.profile
        if profile is None:
            raise SafeModelError(
                "This bundle was built without a reference profile, so there is nothing "
                "to compare production data with. Rebuild it with "
                "ModelBundle.from_training(estimator, X_train, ...), which records one."
            )
        self.bundle = bundle
        self.warn = warn
        self.alert = alert
        self.min_rows = min_rows
        self.alpha = alpha
        self._counts = DriftAccumulator(profile)

    @property
    def profile(self) -> Profile:
        """The reference profile observations are compared with."""
        return self._counts.profile

    @property
    def rows_observed(self) -> int:
        """Rows observed since creation or the last :meth:`reset`."""
        return self._counts.rows

    def observe(
        self, X: Input, scores: Scores | None = None, y: npt.ArrayLike | None = None
    ) -> None:
        """Count a batch of inputs (as received, before the policy) and their scores.

        Parameters
        ----------
        X : DataFrame, list of dict records, dict of lists, or one dict
            The batch, in any input form the bundle accepts.
        scores : mapping of str to array, or array, optional
            The estimator's outputs on ``X``: ``{score name: values}`` or the
            ``predict_proba`` / ``predict`` array itself (columns in the profile's
            score order). When omitted, ``bundle.reference_scores(X)`` computes them.
        y : array-like, optional
            True labels, when they have arrived (None or NaN for rows without one): the
            report's ``performance`` then gives the realised accuracy and ROC AUC next
            to those expected from the scores.

        Raises
        ------
        ContractViolation
            ``X`` is not one of the accepted input forms.
        InvalidArgument
            ``scores`` with unknown names or the wrong shape, or ``y`` without class
            probabilities.
        """
        frame = as_frame(X)
        if scores is None and self.profile.scores:
            scores = self.bundle.reference_scores(frame)
        self._counts.add(frame, scores=scores, y=y)

    def report(self) -> DriftReport:
        """Drift of everything observed so far (with the monitor's thresholds)."""
        return self._counts.report(
            warn=self.warn, alert=self.alert, min_rows=self.min_rows, alpha=self.alpha
        )

    def reset(self) -> None:
        """Forget every observation (e.g. at the start of a new reporting window)."""
        self._counts.reset()

    def __repr__(self) -> str:
        return f"<Monitor rows_observed={self.rows_observed} warn={self.warn} alert={self.alert}>"
