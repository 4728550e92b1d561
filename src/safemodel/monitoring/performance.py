"""A classifier's accuracy in production: expected from its scores, realised from labels.

Labels arrive late or never, so a monitor reports two numbers:

- ``expected_accuracy``: the mean, over scored rows, of the probability of the class
  the model predicts (the largest ``proba[...]``). This is the confidence-based
  performance estimate (NannyML's CBPE) for accuracy. **Assumption:** the model is
  calibrated on production data, i.e. a row scored 0.8 is right 80% of the time;
  covariate shift keeps that true, a change of the relation between inputs and
  labels (concept drift) does not, and only labels can show it.
- ``accuracy``: on the rows whose labels were given (``Monitor.observe(X, scores=...,
  y=...)``), the share where the predicted class is the label.

Both are running sums: no rows are kept. Only scores named ``proba[<class>]`` (one
per class, as a bundle profiles a classifier) take part.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from safemodel.errors import InvalidArgument

__all__ = ["PerformanceCounter"]

_PROBA = re.compile(r"^proba\[(.*)\]$")
# Confidences are summed in fixed point (units of 2**-32), as integers: the total is
# then the same whatever the order batches arrive in (threads), as the counts are.
_UNIT = 2.0**32


class PerformanceCounter:
    """Running sums for expected and realised accuracy (not thread-safe on its own:
    the accumulator adds under its lock).

    Parameters
    ----------
    score_names : sequence of str
        The profile's score names; ``proba[<class>]`` ones give the classes.
    """

    def __init__(self, score_names: list[str]) -> None:
        matches = [(_PROBA.match(name), name) for name in score_names]
        self.names = [name for m, name in matches if m]
        self.classes = [m.group(1) for m, _ in matches if m]
        self._sums: list[int] = [0, 0, 0, 0]

    @property
    def active(self) -> bool:
        """Whether the profile describes a classifier's probabilities."""
        return len(self.classes) >= 2

    def delta(
        self, columns: Mapping[str, npt.NDArray[Any]], y: npt.ArrayLike | None, n: int
    ) -> tuple[int, int, int, int]:
        """What one batch adds: scored rows, sum of confidences, labelled rows, correct."""
        out = [0, 0, 0, 0]
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
            return (0, 0, 0, 0)
        proba = np.column_stack([np.asarray(columns[k], dtype=np.float64) for k in self.names])
        scored = ~np.isnan(proba).any(axis=1)
        confidence = proba[scored].max(axis=1)
        out[0] = int(scored.sum())
        out[1] = int(np.round(confidence * _UNIT).astype(np.int64).sum())
        if y is not None:
            predicted = np.asarray(self.classes, dtype=object)[proba[scored].argmax(axis=1)]
            given = np.asarray(y, dtype=object)[scored]
            labelled = ~np.array([v is None or v != v for v in given], dtype=bool)
            truth = np.array([str(v) for v in given[labelled]], dtype=object)
            out[2], out[3] = int(labelled.sum()), int((predicted[labelled] == truth).sum())
        return (out[0], out[1], out[2], out[3])

    def add(self, delta: tuple[int, int, int, int]) -> None:
        """Add what :meth:`delta` computed (under the caller's lock)."""
        self._sums = [a + b for a, b in zip(self._sums, delta, strict=True)]

    def reset(self) -> None:
        """Forget everything added."""
        self._sums = [0, 0, 0, 0]

    def summary(self) -> dict[str, float | int | None] | None:
        """``expected_accuracy``, ``rows_scored``, ``accuracy``, ``rows_labelled``;
        ``None`` when the profile has no class probabilities."""
        if not self.active:
            return None
        scored, confidence, labelled, correct = self._sums
        return {
            "expected_accuracy": confidence / _UNIT / scored if scored else None,
            "rows_scored": scored,
            "accuracy": correct / labelled if labelled else None,
            "rows_labelled": labelled,
        }
