"""Drift through a real bundle: the reference profile travels with the file."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

import safemodel as sm
from helpers import assert_same_report


def test_profile_is_saved_small_and_loaded(lr_bundle, lr_bundle_path) -> None:
    loaded = sm.load(lr_bundle_path)
    assert loaded.profile == lr_bundle.profile
    size = len(json.dumps(lr_bundle.profile.to_dict()))
    assert size < 20_000
    assert set(lr_bundle.profile.scores) == {"proba[Adelie]", "proba[Chinstrap]", "proba[Gentoo]"}


def test_a_training_sample_does_not_alert(lr_bundle, penguins) -> None:
    X = penguins[0]
    for seed in range(5):
        report = lr_bundle.drift(X.sample(60, random_state=seed))
        assert report.alerts == [], report.to_frame()


def test_a_shifted_feature_alerts_on_it_and_on_the_score(lr_bundle, penguins) -> None:
    X = penguins[0]
    shifted = X.copy()
    shifted["bill_depth_mm"] = shifted["bill_depth_mm"] + 2 * X["bill_depth_mm"].std()
    report = lr_bundle.drift(shifted)
    features = [a for a in report.alerts if not a.startswith("proba[")]
    assert features == ["bill_depth_mm"]
    assert any(a.startswith("proba[") for a in report.alerts)
    frame = report.to_frame()
    assert len(frame) == len(X.columns) + 3


def test_a_new_category_alerts(lr_bundle, penguins) -> None:
    X = penguins[0].sample(300, random_state=1, replace=True).reset_index(drop=True)
    X.loc[: int(len(X) * 0.3), "island"] = "Atlantis"
    report = lr_bundle.drift(X)
    assert "island" in report.alerts
    assert [a for a in report.alerts if not a.startswith("proba[")] == ["island"]


def test_drift_under_a_strict_policy_counts_rejected_rows(strict_bundle, penguins) -> None:
    X = penguins[0].copy()
    X.loc[X.index[:50], "island"] = "Atlantis"  # rejected by the strict policy: no scores
    frame = strict_bundle.drift(X).to_frame()
    assert frame.loc["island", "unseen_rate"] == pytest.approx(50 / len(X))
    for score in ("proba[Adelie]", "proba[Chinstrap]", "proba[Gentoo]"):
        assert frame.loc[score, "rows"] == len(X)
        assert frame.loc[score, "missing_rate"] == pytest.approx(50 / len(X))


def test_bundle_without_profile_says_why(lr_bundle, penguins) -> None:
    bare = sm.ModelBundle(lr_bundle.estimator, lr_bundle.contract, lr_bundle.policy,
                          lr_bundle.golden, name="bare", version="1")
    with pytest.raises(sm.SafeModelError, match="no reference profile"):
        bare.drift(penguins[0])
    with pytest.raises(sm.SafeModelError, match="from_training"):
        sm.Monitor(bare)


def test_monitor_on_a_real_bundle_matches_one_shot_drift(lr_bundle, penguins) -> None:
    X = penguins[0]
    monitor = sm.Monitor(lr_bundle)
    batches = [X.iloc[i::4] for i in range(4)]
    threads = [threading.Thread(target=monitor.observe, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert monitor.rows_observed == len(X)
    observed = monitor.report().to_dict()
    one_shot = lr_bundle.drift(X).to_dict()
    assert_same_report(observed, one_shot)
    monitor.reset()
    assert monitor.rows_observed == 0


def test_html_report_is_self_contained(lr_bundle, penguins, tmp_path) -> None:
    shifted = penguins[0].assign(body_mass_g=lambda d: d["body_mass_g"] * 1.5)
    path = tmp_path / "drift.html"
    lr_bundle.drift(shifted).to_html(path)
    html = path.read_text()
    assert html.count("<svg") >= len(penguins[0].columns)
    assert "<script src" not in html
    assert "cdn" not in html.lower()
    assert np.isfinite(lr_bundle.drift(shifted).to_frame()["psi"].astype(float)).all()


# -- errors stay SafeModelErrors (issue 12) ---------------------------------------------


def test_bad_thresholds_raise_invalid_argument(lr_bundle, penguins) -> None:
    with pytest.raises(sm.InvalidArgument, match="warn <= alert") as info:
        lr_bundle.drift(penguins[0], warn=0.5, alert=0.1)
    assert info.value.found == (0.5, 0.1)
    with pytest.raises(sm.InvalidArgument, match="'min_rows' parameter of Monitor"):
        sm.Monitor(lr_bundle, min_rows=0)


def test_drift_takes_a_score_array_as_monitor_observe_does(lr_bundle, penguins) -> None:
    X = penguins[0].iloc[:120]
    proba = lr_bundle.predict_proba(X)
    as_array = lr_bundle.drift(X, scores=proba).to_dict()
    assert as_array == lr_bundle.drift(X).to_dict()
    monitor = sm.Monitor(lr_bundle)
    monitor.observe(X, scores=proba)
    assert monitor.report().to_dict() == as_array
    with pytest.raises(sm.InvalidArgument, match="one column per profile score"):
        lr_bundle.drift(X, scores=proba[:, :2])


def test_training_data_with_infinities_is_profiled(penguins) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    X.loc[::50, "a"] = np.inf
    y = rng.normal(size=300)
    model = make_pipeline(FunctionTransformer(np.tanh), Ridge()).fit(X, y)
    bundle = sm.ModelBundle.from_training(model, X, name="with-inf")
    a = bundle.profile.features["a"]
    assert a.invalid == 6
    assert all(np.isfinite(a.edges))
    assert bundle.drift(X).alerts == []


def test_multi_output_regressor_profiles_each_output() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputRegressor

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = np.column_stack([X["a"] * 2, X["b"] - 1])
    bundle = sm.ModelBundle.from_training(MultiOutputRegressor(Ridge()).fit(X, y), X, name="mo")
    assert list(bundle.profile.scores) == ["prediction[0]", "prediction[1]"]
    shifted = X.assign(b=X["b"] + 3)
    report = bundle.drift(shifted)
    assert "b" in report.alerts
    assert "prediction[1]" in report.alerts
    assert "prediction[0]" not in report.alerts


def test_multi_output_classifier_profiles_each_outputs_probabilities() -> None:
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(2)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = np.column_stack([X["a"] > 0, X["b"] > 0]).astype(int)
    model = MultiOutputClassifier(DecisionTreeClassifier(max_depth=2)).fit(X, y)
    bundle = sm.ModelBundle.from_training(model, X, name="mo-clf")
    # Two outputs of two classes each, side by side: one score per column.
    assert list(bundle.profile.scores) == [f"proba[{i}]" for i in range(4)]
    alerts = bundle.drift(X.assign(a=X["a"] + 3)).alerts
    assert "a" in alerts
    assert "b" not in alerts


def test_an_estimator_failure_in_drift_is_a_scoring_error(penguins) -> None:
    from sklearn.base import BaseEstimator, RegressorMixin

    class Fragile(RegressorMixin, BaseEstimator):
        def fit(self, X, y):
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            if (np.asarray(X, dtype=float) > 100).any():
                raise FloatingPointError("overflow in a hand-written model")
            return np.asarray(X, dtype=float).sum(axis=1)

    X = pd.DataFrame({"a": np.linspace(0, 1, 100), "b": np.linspace(1, 2, 100)})
    bundle = sm.ModelBundle.from_training(Fragile().fit(X, None), X, name="fragile")
    with pytest.raises(sm.ScoringError) as info:
        bundle.drift(X.assign(a=1000.0))
    assert isinstance(info.value.__cause__, FloatingPointError)
    assert info.value.method == "predict"


def test_drift_takes_scores_in_every_form_monitor_observe_takes(lr_bundle, penguins) -> None:
    """An array (what predict_proba returns), a dict by score name, a list: the same
    report as the scores the bundle computes itself, and as Monitor.observe gives."""
    X, _ = penguins
    proba = lr_bundle.predict_proba(X)
    expected = lr_bundle.drift(X).to_dict()
    names = list(lr_bundle.profile.scores)
    by_name = {name: proba[:, i] for i, name in enumerate(names)}

    for scores in (proba, proba.tolist(), by_name):
        assert lr_bundle.drift(X, scores=scores).to_dict() == expected
    monitor = sm.Monitor(lr_bundle)
    monitor.observe(X, scores=proba)
    assert monitor.report().to_dict() == expected


def test_drift_scores_of_the_wrong_shape_say_what_to_pass(lr_bundle, penguins) -> None:
    X, _ = penguins
    proba = lr_bundle.predict_proba(X)
    with pytest.raises(sm.InvalidArgument, match="predict_proba") as info:
        lr_bundle.drift(X, scores=proba[:, :1])
    assert info.value.argument == "scores"
    with pytest.raises(sm.InvalidArgument, match="NaN"):
        lr_bundle.drift(X, scores=proba[:10])
    with pytest.raises(sm.InvalidArgument, match="Name the scores as the profile does"):
        lr_bundle.drift(X, scores={"nope": proba[:, 0]})


def test_moments_travel_in_their_own_member(lr_bundle, tmp_path) -> None:
    import zipfile

    from safemodel.monitoring.profile import Profile

    path = tmp_path / "m.safemodel"
    lr_bundle.save(path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        moments = json.loads(zf.read("profile-moments.json"))
        stored = json.loads(zf.read("profile.json"))
    assert "profile.json" in names
    assert set(moments["features"]) == {
        "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"}  # fmt: skip
    # profile.json alone is what readers from before moments read: it still loads.
    assert Profile.from_dict(stored).to_dict() == stored
    loaded = sm.load(path)
    assert loaded.profile == lr_bundle.profile
    assert loaded.profile.features["body_mass_g"].moments is not None


def test_the_frozen_format_1_bundle_has_no_moments_and_skips_those_tests(penguins) -> None:
    from pathlib import Path

    bundle = sm.load(Path(__file__).parent / "data" / "format-1" / "penguins-lr.safemodel",
                     trust=True)  # fmt: skip
    assert bundle.profile is not None
    assert bundle.profile.moments_to_dict() is None
    X = penguins[0].assign(body_mass_g=penguins[0]["body_mass_g"] * 1.3)
    report = bundle.drift(X)
    assert "body_mass_g" in report.alerts  # the binned tests still decide
    assert not any(t.name in ("mean", "variance") for r in report.results for t in r.tests)
