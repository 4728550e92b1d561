"""An estimator whose scores depend on the environment, for the serve tests.

The server runs it with ``SAFEMODEL_TEST_SHIFT=1``: there the golden outputs no longer
reproduce, so a promotion verified in the test process must be refused by the server.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


class EnvShift:
    """Wraps a fitted classifier; shifts its probabilities when the variable is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.classes_ = inner.classes_

    def predict_proba(self, X: Any) -> np.ndarray:
        proba = np.asarray(self.inner.predict_proba(X))
        return np.roll(proba, 1, axis=1) if os.environ.get("SAFEMODEL_TEST_SHIFT") else proba

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]


def test_shift_changes_scores_only_with_the_variable(monkeypatch: Any) -> None:
    class Fixed:
        classes_ = np.array(["a", "b"])

        def predict_proba(self, X: Any) -> np.ndarray:
            return np.array([[0.9, 0.1]])

    shift = EnvShift(Fixed())
    assert shift.predict(None).tolist() == ["a"]
    monkeypatch.setenv("SAFEMODEL_TEST_SHIFT", "1")
    assert shift.predict(None).tolist() == ["b"]
