"""A classifier's performance in production: expected from its scores, realised from labels.

Labels arrive late or never, so a monitor reports two of each number:

- ``expected_accuracy``: the mean, over scored rows, of the probability of the class
  the model predicts (the largest ``proba[...]``); ``accuracy``: on the rows whose
  labels were given (``Monitor.observe(X, scores=..., y=...)``), the share where the
  predicted class is the label.
- ``expected_roc_auc``: the ROC AUC the scores promise, confidence-based like NannyML's
  CBPE: each scored row counts as ``p`` of a positive and ``1 - p`` of a negative,
  where ``p`` is its probability of the positive class; ``roc_auc``: the ROC AUC on
  the labelled rows. For two classes the positive class is the second (as in
  scikit-learn); for more, both are one-vs-rest macro averages (the mean over the
  classes of the AUC of ``proba[class]`` for that class against the rest, as
  ``roc_auc_score(y, proba, multi_class="ovr")``), over the classes with positives and
  negatives.

**Assumption** of the expected numbers: the model is calibrated on production data,
i.e. a row scored 0.8 is right 80% of the time. Covariate shift keeps that true; a
change of the relation between inputs and labels (concept drift) does not, and only
labels can show it.

Everything is a running sum; no rows are kept. For the AUCs, each class probability
falls into one of :data:`GRID` (1,024) equal bins of ``[0, 1]``, holding the rows (and,
expected, the sum of ``p``; realised, the labelled positives and negatives) per bin.
Pairs in one bin count as ties (one half), so the realised AUC differs from the exact
one by at most half the share of positive-negative pairs that share a bin
(``roc_auc_binning_error`` bounds it). Only scores named ``proba[<class>]`` (one per
class, as a bundle profiles a classifier) take part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from safemodel.errors import InvalidArgument
from safemodel.monitoring.binning import scratch

__all__ = ["GRID", "PerformanceCounter", "binned_roc_auc"]

_PROBA = re.compile(r"^proba\[(.*)\]$")
# Confidences are summed in fixed point (units of 2**-32), as integers: the total is
# then the same whatever the order batches arrive in (threads), as the counts are.
_UNIT = 2.0**32
# The per-bin sums of p for the expected AUC, in units of 2**-24 (integers); the bin of
# a probability is its fixed-point value shifted right, so GRID is a power of two.
_AUC_UNIT = 2.0**24
_AUC_SHIFT = 14
GRID = 1024
"""Bins of ``[0, 1]`` a class probability falls into for the ROC AUCs (width 1/1024)."""
_FIRST_BIN, _LAST_BIN = np.intp(0), np.intp(GRID - 1)
_FLOAT_SUM_ROWS = 1 << 21

ASSUMPTION = (
    "expected_accuracy and expected_roc_auc assume the probabilities are calibrated on "
    "production data (confidence-based estimation, CBPE); covariate shift keeps that, "
    "concept drift does not. ROC AUCs are computed on 1,024 probability bins; for more "
    "than two classes, one-vs-rest macro averages."
)

IntArray = npt.NDArray[np.int64]


@dataclass
class Delta:
    """What one batch adds: scored rows, sum of confidences, labelled rows, correct,
    and per AUC class the bins: rows, sum of p, labelled positives, labelled negatives."""

    sums: tuple[int, int, int, int] = (0, 0, 0, 0)
    bins: IntArray | None = field(default=None)


def binned_roc_auc(positives: npt.ArrayLike, negatives: npt.ArrayLike) -> float | None:
    """ROC AUC from (weighted) positives and negatives per ordered score bin.

    Pairs in one bin count one half (a tie). ``None`` without positives or negatives.

    Examples
    --------
    >>> round(binned_roc_auc([0, 1, 3], [2, 1, 0]), 4)   # 11 pairs won, one tied, of 12
    0.9583
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    p, n = float(pos.sum()), float(neg.sum())
    if p <= 0 or n <= 0:
        return None
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float(np.sum(pos * (below + 0.5 * neg)) / (p * n))


def _tie_share(positives: IntArray, negatives: IntArray) -> float | None:
    p, n = float(positives.sum()), float(negatives.sum())
    if p <= 0 or n <= 0:
        return None
    return float(np.sum(positives.astype(np.float64) * negatives) / (p * n)) / 2


class PerformanceCounter:
    """Running sums for expected and realised accuracy and ROC AUC (not thread-safe on
    its own: the accumulator adds under its lock).

    Parameters
    ----------
    score_names : sequence of str
        The profile's score names; ``proba[<class>]`` ones give the classes.
    """

    def __init__(self, score_names: list[str]) -> None:
        matches = [(_PROBA.match(name), name) for name in score_names]
        self.names = [name for m, name in matches if m]
        self.classes = [m.group(1) for m, _ in matches if m]
        # Binary: the second class is the positive one; otherwise one-vs-rest, each.
        self._auc = [len(self.classes) - 1] if len(self.classes) == 2 else list(
            range(len(self.classes)))  # fmt: skip
        self._sums: list[int] = [0, 0, 0, 0]
        self._bins: IntArray = np.zeros((len(self._auc), 4, GRID), dtype=np.int64)

    @property
    def active(self) -> bool:
        """Whether the profile describes a classifier's probabilities."""
        return len(self.classes) >= 2

    def delta(
        self, columns: Mapping[str, npt.NDArray[Any]], y: npt.ArrayLike | None, n: int
    ) -> Delta:
        """What one batch adds (see :class:`Delta`)."""
        if y is not None:
            labels = np.asarray(y, dtype=object)
            if labels.shape != (n,):
                raise InvalidArgument(
                    f"y must hold one label per row of X ({n}); got shape {labels.shape}.",
                    argument="y", expected=f"{n} labels", found=labels.shape,
                )  # fmt: skip
        if not self.active or any(name not in columns for name in self.names):
            if y is not None:
                raise InvalidArgument(
                    "Labels (y) need the classifier's probabilities: pass scores=proba, "
                    f"with the profile's scores {self.names!r}.",
                    argument="scores", expected=f"columns {self.names!r}", found=None,
                )  # fmt: skip
            return Delta()
        # Column by column: reductions along a short row axis are several times slower.
        proba = [np.asarray(columns[k], dtype=np.float64) for k in self.names]
        confidence = scratch("confidence", n, np.float64)
        np.maximum(proba[0], proba[1], out=confidence)
        for column in proba[2:]:
            np.maximum(confidence, column, out=confidence)
        # np.maximum propagates NaN: a row with any class unscored is unscored.
        unscored = np.isnan(confidence, out=scratch("unscored", n, np.bool_))
        if unscored.any():
            scored = ~unscored
            proba = [c[scored] for c in proba]
            confidence = confidence[scored]
        fixed = np.multiply(confidence, _UNIT, out=scratch("fixed", len(confidence), np.float64))
        np.rint(fixed, out=fixed)
        # A float64 sum of integers below 2**32 is exact up to 2**21 of them (and
        # skips the cast pass that an int64 sum makes).
        exact = len(fixed) <= _FLOAT_SUM_ROWS
        total = int(fixed.sum()) if exact else int(fixed.sum(dtype=np.int64))
        sums = [len(confidence), total, 0, 0]
        truth: npt.NDArray[Any] | None = None
        labelled: npt.NDArray[np.bool_] | None = None
        if y is not None:
            scored = ~unscored
            best = np.column_stack(proba).argmax(axis=1)
            predicted = np.asarray(self.classes, dtype=object)[best]
            given = np.asarray(y, dtype=object)[scored]
            labelled = ~np.array([v is None or v != v for v in given], dtype=bool)
            truth = np.array([str(v) for v in given[labelled]], dtype=object)
            sums[2], sums[3] = int(labelled.sum()), int((predicted[labelled] == truth).sum())
        bins = self._auc_bins(proba, truth, labelled)
        return Delta((sums[0], sums[1], sums[2], sums[3]), bins)

    def _auc_bins(
        self,
        proba: list[npt.NDArray[np.float64]],
        truth: npt.NDArray[Any] | None,
        labelled: npt.NDArray[np.bool_] | None,
    ) -> IntArray:
        """Per AUC class, per probability bin: rows, sum of p, labelled +, labelled -."""
        bins = np.zeros((len(self._auc), 4, GRID), dtype=np.int64)
        n = len(proba[0])
        for row, k in enumerate(self._auc):
            # p in fixed point, rounded per row: the bin sums are then exact integers,
            # the same whatever the batches and threads (as the counts are); float64
            # holds them and their bin sums exactly (below 2**53: 2**29 rows a batch),
            # and bincount takes them as they are.
            fixed = np.multiply(proba[k], _AUC_UNIT, out=scratch("fixed", n, np.float64))
            np.rint(fixed, out=fixed)
            # The bin is the fixed-point value shifted right (a power-of-two scaling,
            # exact); p == 1, or a value just outside [0, 1], goes to the end bins.
            # (Bounds as numpy scalars: np.clip checks Python ints against the dtype's
            # range first, which cost more than the clipping itself.)
            index = scratch("bin", n, np.intp)
            np.multiply(fixed, 2.0**-_AUC_SHIFT, out=index, casting="unsafe")
            np.clip(index, _FIRST_BIN, _LAST_BIN, out=index)
            bins[row, 0] = np.bincount(index, minlength=GRID)
            bins[row, 1] = np.bincount(index, weights=fixed, minlength=GRID).astype(np.int64)
            if truth is not None and labelled is not None:
                positive = truth == self.classes[k]
                at = index[labelled]
                bins[row, 2] = np.bincount(at[positive], minlength=GRID)
                bins[row, 3] = np.bincount(at[~positive], minlength=GRID)
        return bins

    def add(self, delta: Delta) -> None:
        """Add what :meth:`delta` computed (under the caller's lock)."""
        self._sums = [a + b for a, b in zip(self._sums, delta.sums, strict=True)]
        if delta.bins is not None:
            self._bins += delta.bins

    def reset(self) -> None:
        """Forget everything added."""
        self._sums = [0, 0, 0, 0]
        self._bins = np.zeros((len(self._auc), 4, GRID), dtype=np.int64)

    def summary(self) -> dict[str, float | int | str | None] | None:
        """``expected_accuracy``, ``accuracy``, ``expected_roc_auc``, ``roc_auc``,
        ``roc_auc_binning_error``, ``rows_scored``, ``rows_labelled`` and the
        ``assumption`` of the expected numbers; ``None`` when the profile has no class
        probabilities."""
        if not self.active:
            return None
        scored, confidence, labelled, correct = self._sums
        expected, realised, errors = [], [], []
        for rows, psum, positives, negatives in self._bins:
            p = psum / _AUC_UNIT
            auc = binned_roc_auc(p, rows - p)
            if auc is not None:
                expected.append(auc)
            auc = binned_roc_auc(positives, negatives)
            if auc is not None:
                realised.append(auc)
                errors.append(_tie_share(positives, negatives) or 0.0)
        return {
            "expected_accuracy": confidence / _UNIT / scored if scored else None,
            "rows_scored": scored,
            "accuracy": correct / labelled if labelled else None,
            "rows_labelled": labelled,
            "expected_roc_auc": float(np.mean(expected)) if expected else None,
            "roc_auc": float(np.mean(realised)) if realised else None,
            "roc_auc_binning_error": float(np.mean(errors)) if errors else None,
            "assumption": ASSUMPTION,
        }
