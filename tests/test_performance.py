"""Expected (from scores) and realised (from labels) accuracy in Monitor reports."""

from __future__ import annotations

import numpy as np
import pytest

import safemodel as sm


def test_expected_and_realised_accuracy_agree_on_training_like_data(lr_bundle, penguins) -> None:
    X, y = penguins
    monitor = sm.Monitor(lr_bundle)
    proba = lr_bundle.predict_proba(X)
    half = len(X) // 2
    monitor.observe(X.iloc[:half], scores=proba[:half], y=y.iloc[:half])
    monitor.observe(X.iloc[half:], scores=proba[half:])  # labels not arrived yet
    performance = monitor.report().performance
    assert performance is not None
    assert performance["rows_scored"] == len(X)
    assert performance["rows_labelled"] == half
    classes = np.array(lr_bundle.estimator.classes_)
    realised = float((classes[proba[:half].argmax(axis=1)] == y.iloc[:half].to_numpy()).mean())
    assert performance["accuracy"] == pytest.approx(realised)
    assert performance["expected_accuracy"] == pytest.approx(proba.max(axis=1).mean())
    # A calibrated model on data like its training data: the estimate is close.
    assert abs(performance["expected_accuracy"] - performance["accuracy"]) < 0.05
    assert monitor.report().to_dict()["performance"] == performance
    monitor.reset()
    assert monitor.report().performance == {
        "expected_accuracy": None, "rows_scored": 0, "accuracy": None, "rows_labelled": 0,
    }  # fmt: skip


def test_missing_labels_are_skipped_and_wrong_labels_count(lr_bundle, penguins) -> None:
    X = penguins[0].iloc[:20]
    proba = lr_bundle.predict_proba(X)
    predicted = np.array(lr_bundle.estimator.classes_)[proba.argmax(axis=1)].astype(object)
    labels = predicted.copy()
    labels[:5] = None
    labels[5:10] = "not-a-species"
    monitor = sm.Monitor(lr_bundle)
    monitor.observe(X, scores=proba, y=labels)
    performance = monitor.report().performance
    assert performance is not None
    assert performance["rows_labelled"] == 15
    assert performance["accuracy"] == pytest.approx(10 / 15)


def test_labels_need_probabilities_and_one_per_row(lr_bundle, penguins) -> None:
    X, y = penguins
    monitor = sm.Monitor(lr_bundle)
    proba = lr_bundle.predict_proba(X)
    with pytest.raises(sm.InvalidArgument, match="one label per row"):
        monitor.observe(X, scores=proba, y=y.iloc[:10])
    with pytest.raises(sm.InvalidArgument, match="probabilities"):
        monitor.observe(X, scores={"proba[Adelie]": proba[:, 0]}, y=y)
    assert monitor.rows_observed == 0  # nothing half-counted


def test_regressors_have_no_performance_estimate(penguins) -> None:
    from sklearn.linear_model import Ridge

    X = penguins[0][["bill_length_mm", "bill_depth_mm"]].dropna()
    bundle = sm.ModelBundle.from_training(Ridge().fit(X, X["bill_length_mm"]), X, name="r")
    assert bundle.drift(X).performance is None
