"""Expected (from scores) and realised (from labels) accuracy in Monitor reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import safemodel as sm
from safemodel.monitoring.performance import ASSUMPTION, GRID, binned_roc_auc


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
        "expected_roc_auc": None, "roc_auc": None, "roc_auc_binning_error": None,
        "assumption": ASSUMPTION,
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


# -- ROC AUC, expected and realised ------------------------------------------------------


def _classifier(classes: int, seed: int) -> tuple[sm.ModelBundle, pd.DataFrame]:
    """A real fitted LogisticRegression bundle and a fresh production frame."""
    X, y = make_classification(n_samples=6000, n_features=6, n_informative=4,
                               n_redundant=0, n_classes=classes, n_clusters_per_class=1,
                               class_sep=0.8, random_state=seed)  # fmt: skip
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array([f"c{v}" for v in y], dtype=object)
    model = LogisticRegression(max_iter=1000).fit(frame.iloc[:2000], labels[:2000])
    bundle = sm.ModelBundle.from_training(model, frame.iloc[:2000], name=f"auc{classes}")
    return bundle, frame.iloc[2000:].reset_index(drop=True)


def _calibrated_labels(bundle: sm.ModelBundle, proba: np.ndarray, seed: int) -> np.ndarray:
    """Labels drawn from the model's own probabilities: calibrated by construction."""
    rng = np.random.default_rng(seed)
    cumulative = proba.cumsum(axis=1)
    drawn = (rng.random(len(proba))[:, None] > cumulative).sum(axis=1)
    classes = np.asarray(bundle.estimator.classes_, dtype=object)
    return classes[np.minimum(drawn, len(classes) - 1)]


def _sklearn_auc(bundle: sm.ModelBundle, labels: np.ndarray, proba: np.ndarray) -> float:
    classes = list(bundle.estimator.classes_)
    if len(classes) == 2:
        return float(roc_auc_score(labels == classes[1], proba[:, 1]))
    return float(roc_auc_score(labels, proba, multi_class="ovr", average="macro",
                               labels=classes))  # fmt: skip


@pytest.mark.parametrize("classes", [2, 3])
def test_expected_roc_auc_matches_realised_on_calibrated_data(classes: int) -> None:
    bundle, X = _classifier(classes, seed=classes)
    proba = bundle.predict_proba(X)
    labels = _calibrated_labels(bundle, proba, seed=1)
    monitor = sm.Monitor(bundle)
    for part in np.array_split(np.arange(len(X)), 4):
        monitor.observe(X.iloc[part], scores=proba[part], y=labels[part])
    performance = monitor.report().performance
    assert performance is not None
    exact = _sklearn_auc(bundle, labels, proba)
    # Realised: binning can move the AUC by at most the reported bound, which a
    # 1/1024 grid keeps small.
    bound = performance["roc_auc_binning_error"]
    assert isinstance(bound, float)
    assert bound < 0.002
    assert abs(performance["roc_auc"] - exact) <= bound + 1e-12
    # Expected (no labels used): within 0.02 of the realised AUC on 4,000 rows whose
    # labels follow the probabilities (sampling noise of the AUC is about 0.007 here).
    assert abs(performance["expected_roc_auc"] - exact) < 0.02
    assert performance["assumption"] == ASSUMPTION


def test_roc_auc_with_labels_partially_missing() -> None:
    bundle, X = _classifier(3, seed=7)
    proba = bundle.predict_proba(X)
    labels = _calibrated_labels(bundle, proba, seed=2).astype(object)
    rng = np.random.default_rng(3)
    gone = rng.random(len(labels)) < 0.4
    given_labels = labels.copy()
    given_labels[gone] = None
    given_labels[np.flatnonzero(gone)[::2]] = np.nan  # both spellings of "not yet"
    monitor = sm.Monitor(bundle)
    monitor.observe(X, scores=proba, y=given_labels)
    performance = monitor.report().performance
    assert performance is not None
    assert performance["rows_labelled"] == int((~gone).sum())
    exact = _sklearn_auc(bundle, labels[~gone], proba[~gone])
    assert abs(performance["roc_auc"] - exact) <= performance["roc_auc_binning_error"] + 1e-12
    # The expected AUC uses every scored row, labelled or not.
    assert performance["rows_scored"] == len(X)


def test_expected_roc_auc_falls_when_the_scores_lose_confidence() -> None:
    # A shift that pushes rows toward the decision boundary lowers what the scores
    # promise, before any label arrives.
    bundle, X = _classifier(2, seed=11)
    sure, unsure = sm.Monitor(bundle), sm.Monitor(bundle)
    sure.observe(X, scores=bundle.predict_proba(X))
    blurred = X * 0.2
    unsure.observe(blurred, scores=bundle.predict_proba(blurred))
    a, b = sure.report().performance, unsure.report().performance
    assert a is not None
    assert b is not None
    assert b["expected_roc_auc"] < a["expected_roc_auc"] - 0.05
    assert b["roc_auc"] is None
    assert b["rows_labelled"] == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=60),
)
def test_binned_auc_is_exact_when_no_bin_mixes_classes(rows: list[tuple[float, bool]]) -> None:
    scores = np.array([s for s, _ in rows])
    truth = np.array([t for _, t in rows])
    index = np.minimum((scores * GRID).astype(int), GRID - 1)
    pos = np.bincount(index[truth], minlength=GRID)
    neg = np.bincount(index[~truth], minlength=GRID)
    got = binned_roc_auc(pos, neg)
    if truth.all() or not truth.any():
        assert got is None
        return
    exact = float(roc_auc_score(truth, scores))
    ties = float((pos.astype(float) * neg).sum()) / (pos.sum() * neg.sum()) / 2
    assert got is not None
    assert abs(got - exact) <= ties + 1e-12
    if ties == 0:
        assert got == pytest.approx(exact, abs=1e-12)


@pytest.mark.parametrize("rows", [5_000, (1 << 21) + (1 << 12)])
def test_expected_accuracy_sum_is_exact_on_either_side_of_the_float_sum_limit(rows: int) -> None:
    # Up to 2**21 rows the confidences (integers below 2**32) are summed in float64, which
    # is exact there; beyond, in int64. Both must give the exact integer total.
    from safemodel.monitoring.performance import _FLOAT_SUM_ROWS, _UNIT, PerformanceCounter

    assert (rows > _FLOAT_SUM_ROWS) == (rows > 1 << 21)
    rng = np.random.default_rng(rows)
    # Confidences near 1: beyond 2**21 rows the total passes 2**53, where a float64 sum
    # rounds (with this seed it does: checked by summing in float64 instead).
    p = 1 - rng.random(rows) * 1e-6
    counter = PerformanceCounter(["proba[a]", "proba[b]"])
    delta = counter.delta({"proba[a]": 1 - p, "proba[b]": p}, None, rows)
    fixed = np.rint(np.maximum(1 - p, p) * _UNIT).astype(np.int64)
    assert delta.sums[:2] == (rows, int(sum(int(v) for v in fixed.tolist())))
