"""Every model, described by the model: multi-output and transformer bundles, the
contract checked against the fitted estimator, records equal to frames, numbers as
text and ``max_rejected``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.compose import make_column_transformer
from sklearn.cross_decomposition import CCA
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression, MultiTaskLasso, Ridge
from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

import safemodel as sm
from safemodel.core.engine.coerce import number_from_text

RNG = np.random.default_rng(0)
N = 120
NUM = pd.DataFrame({"a": RNG.normal(size=N), "b": RNG.normal(size=N)})
Y2 = np.c_[NUM["a"] + NUM["b"], NUM["a"] - 2 * NUM["b"]]
MIXED = NUM.assign(c=RNG.choice(["x", "y", "z"], N))


# ------------------------------------------------------------------ multi-output


@pytest.mark.parametrize("est", [
    MultiOutputRegressor(Ridge()), MultiTaskLasso(alpha=0.01), CCA(n_components=1),
    MultiOutputClassifier(LogisticRegression()),
], ids=lambda e: type(e).__name__)
def test_multi_output_bundles_verify_and_profile_each_output(est, tmp_path: Path) -> None:
    target = (Y2 > 0).astype(int) if "Classifier" in type(est).__name__ else Y2
    est.fit(NUM, target)
    bundle = sm.ModelBundle.from_training(est, NUM, name="multi")
    assert bundle.golden.outputs["predict"].shape[1] == 2
    score_names = set(bundle.profile.scores)
    assert {"prediction[0]", "prediction[1]"} <= score_names or len(score_names) == 4
    bundle.save(tmp_path / "m.safemodel")
    loaded = sm.load(tmp_path / "m.safemodel")
    assert loaded.verify().ok
    np.testing.assert_array_equal(loaded.predict(NUM.head(5)), est.predict(NUM.head(5)))
    report = loaded.drift(NUM)
    assert set(report.scores) == score_names


def test_multi_output_golden_mismatch_names_the_output(tmp_path: Path) -> None:
    est = MultiOutputRegressor(Ridge()).fit(NUM, Y2)
    bundle = sm.ModelBundle.from_training(est, NUM, name="multi")
    est.estimators_[1].coef_ = est.estimators_[1].coef_ * 1.5
    report = bundle.verify()
    assert not report.ok
    example = report.mismatches[0]["examples"][0]
    assert example["expected"][0] == example["obtained"][0]  # the first output reproduces
    assert example["expected"][1] != example["obtained"][1]


def test_multi_output_string_labels_round_trip(tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    labels = np.c_[np.where(NUM["a"] > 0, "hi", "lo"), np.where(NUM["b"] > 0, "up", "down")]
    model = MultiOutputClassifier(DecisionTreeClassifier(random_state=0)).fit(NUM, labels)
    bundle = sm.ModelBundle.from_training(model, NUM, name="labels")
    bundle.save(tmp_path / "l.safemodel")
    loaded = sm.load(tmp_path / "l.safemodel")
    np.testing.assert_array_equal(loaded.golden.outputs["predict"],
                                  bundle.golden.outputs["predict"])
    assert loaded.golden.outputs["predict"].shape[1] == 2


def test_label_output_with_a_shape_that_does_not_fit_is_malformed() -> None:
    from safemodel.io.codec import decode_array

    data = b'{"dtype": "object", "values": ["a", "b", "c"], "shape": [2, 2]}'
    with pytest.raises(sm.BundleFormatError, match="does not fit 3 values"):
        decode_array(".json", data, "golden/outputs/predict.json")


# ------------------------------------------------------------------- transform


def test_dense_transformer_bundle(tmp_path: Path) -> None:
    ct = make_column_transformer((StandardScaler(), ["a", "b"]),
                                 (OneHotEncoder(sparse_output=False), ["c"])).fit(MIXED)
    bundle = sm.ModelBundle.from_training(ct, MIXED, name="features")
    assert bundle.methods == ("transform",)
    assert not hasattr(bundle, "predict")
    np.testing.assert_array_equal(bundle.transform(MIXED.head(3)), ct.transform(MIXED.head(3)))
    bundle.save(tmp_path / "f.safemodel")
    assert sm.load(tmp_path / "f.safemodel").verify().ok
    assert bundle.profile is not None
    assert bundle.profile.scores == {}


def test_sparse_transformer_bundle_compares_exactly(tmp_path: Path) -> None:
    enc = OneHotEncoder(handle_unknown="ignore").fit(MIXED[["c"]])
    bundle = sm.ModelBundle.from_training(enc, MIXED[["c"]], name="onehot")
    out = bundle.transform(MIXED[["c"]].head(4))
    assert sparse.issparse(out)  # the estimator's own output, as it returns it
    golden = bundle.golden.outputs["transform"]
    assert isinstance(golden, np.ndarray)
    assert golden.shape[1] == 3
    bundle.save(tmp_path / "o.safemodel")
    loaded = sm.load(tmp_path / "o.safemodel")
    assert loaded.verify().ok
    loaded.estimator.categories_[0][0] = "w"  # a different fitted state: outputs change
    assert not loaded.verify().ok


# ------------------------------------------------ the contract, from the estimator


def _pipe_on_c() -> object:
    return make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["c"]),
                                remainder="passthrough"), Ridge())


def test_target_left_in_X_is_not_required(caplog) -> None:
    pipe = _pipe_on_c().fit(MIXED, Y2[:, 0])
    with caplog.at_level(logging.WARNING, logger="safemodel"):
        bundle = sm.ModelBundle.from_training(pipe, MIXED.assign(target=Y2[:, 0]), name="p")
    assert "target" not in bundle.contract.names
    assert bundle.build_notes["unused_columns"] == ["target"]
    assert "target" in caplog.text
    np.testing.assert_array_equal(bundle.predict(MIXED.head(3).to_dict("records")),
                                  pipe.predict(MIXED.head(3)))


def test_needed_column_absent_from_X_is_an_error() -> None:
    pipe = _pipe_on_c().fit(MIXED, Y2[:, 0])
    with pytest.raises(sm.InvalidArgument, match=r"\['b'\] that X lacks"):
        sm.ModelBundle.from_training(pipe, MIXED.drop(columns=["b"]), name="p")


@pytest.mark.parametrize("encoder", [OneHotEncoder(handle_unknown="ignore"),
                                     OrdinalEncoder(handle_unknown="use_encoded_value",
                                                    unknown_value=-1)],
                         ids=["onehot", "ordinal"])
def test_sample_lacking_a_known_category_does_not_change_scores(encoder) -> None:
    pipe = make_pipeline(make_column_transformer((encoder, ["c"]), remainder="passthrough"),
                         LinearRegression()).fit(MIXED, Y2[:, 0])
    sample = MIXED[MIXED["c"] != "z"]
    bundle = sm.ModelBundle.from_training(pipe, sample, name="p")
    assert "z" in bundle.contract["c"].categories
    assert bundle.build_notes["known_categories"] == {"added": True, "columns": {"c": ["z"]}}
    rows = MIXED[MIXED["c"] == "z"].head(5)
    np.testing.assert_array_equal(bundle.predict(rows), pipe.predict(rows))
    reported = sm.ModelBundle.from_training(pipe, sample, name="p", known_categories="report")
    assert "z" not in reported.contract["c"].categories
    assert reported.build_notes["known_categories"]["added"] is False


def test_hist_gradient_boosting_categories_are_known() -> None:
    X = MIXED.assign(c=MIXED["c"].astype("category"))
    hgb = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype")
    hgb.fit(X, (Y2[:, 0] > 0).astype(int))
    bundle = sm.ModelBundle.from_training(hgb, X[X["c"] != "z"], name="h")
    assert "z" in bundle.contract["c"].categories  # the dtype keeps it: nothing to add
    rows = X[X["c"] == "z"].head(3)
    np.testing.assert_array_equal(bundle.predict_proba(rows), hgb.predict_proba(rows))


def test_policy_naming_an_unknown_column_is_an_error() -> None:
    pipe = _pipe_on_c().fit(MIXED, Y2[:, 0])
    policy = sm.Policy(columns={"cc": sm.ColumnPolicy(unseen_category="error")})
    with pytest.raises(sm.InvalidArgument, match=r"\['cc'\]") as info:
        sm.ModelBundle.from_training(pipe, MIXED, name="p", policy=policy)
    assert info.value.found == ["cc"]


def test_contract_rejecting_its_golden_rows_is_an_error() -> None:
    model = Ridge().fit(NUM, Y2[:, 0])
    schema = pa.DataFrameSchema({"a": pa.Column(float, pa.Check.ge(0)), "b": pa.Column(float)})
    with pytest.raises(sm.InvalidArgument, match="rejects .* training rows") as info:
        sm.ModelBundle.from_training(model, NUM, name="r", contract=schema)
    assert info.value.found
    assert all(isinstance(r, int) for r in info.value.found)


def test_unfitted_estimator_is_told_to_fit() -> None:
    with pytest.raises(sm.InvalidArgument, match=r"not fitted: call Ridge.fit\(X, y\)"):
        sm.ModelBundle.from_training(Ridge(), NUM, name="r")


def test_profile_is_built_from_a_seeded_bounded_sample() -> None:
    model = Ridge().fit(NUM, Y2[:, 0])
    bundle = sm.ModelBundle.from_training(model, NUM, name="r", profile_rows=50)
    assert bundle.profile.rows == 50
    assert bundle.build_notes["profile"] == {"rows": 50, "of": N, "random_state": 0}
    again = sm.ModelBundle.from_training(model, NUM, name="r", profile_rows=50)
    assert again.profile == bundle.profile


# ------------------------------------------------------------ records = frames

_MISSING_STR = st.one_of(st.none(), st.sampled_from(["p", "q", "r"]))


@st.composite
def _frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(2, 12))

    def column(values: st.SearchStrategy) -> list:
        return draw(st.lists(values, min_size=n, max_size=n))

    obj = column(_MISSING_STR)
    ints = column(st.one_of(st.none(), st.integers(-5, 5)))
    bools = column(st.one_of(st.none(), st.booleans()))
    floats = column(st.one_of(st.just(float("nan")), st.floats(-10, 10)))
    days = column(st.one_of(st.none(), st.integers(0, 30)))
    return pd.DataFrame({
        "obj": pd.Series(obj, dtype=object),
        "text": pd.Series(column(st.sampled_from(["u", "v", "w"])), dtype="str"),
        "cat": pd.Categorical(column(st.sampled_from(["k", "l"])), categories=["k", "l"]),
        "int": pd.array(ints, dtype="Int64"),
        "flag": pd.array(bools, dtype="boolean"),
        "when": pd.Series([pd.NaT if d is None else pd.Timestamp("2024-01-01", tz="UTC")
                           + pd.Timedelta(days=d) for d in days], dtype="datetime64[us, UTC]"),
        "x": pd.Series(floats, dtype="float64"),
    })


def _records_bundle() -> sm.ModelBundle:
    rng = np.random.default_rng(1)
    n = 200
    train = pd.DataFrame({
        "obj": pd.Series(rng.choice(np.array(["p", "q", "r", None], dtype=object), n),
                         dtype=object),
        "text": pd.Series(rng.choice(["u", "v", "w"], n), dtype="str"),
        "cat": pd.Categorical(rng.choice(["k", "l"], n), categories=["k", "l"]),
        "int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(-5, 5, n)),
                        dtype="Int64"),
        "flag": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5),
                         dtype="boolean"),
        "when": pd.Series(pd.Timestamp("2024-01-01", tz="UTC")
                          + pd.to_timedelta(rng.integers(0, 30, n), unit="D"),
                          dtype="datetime64[us, UTC]"),
        "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
    })
    train.loc[3, "when"] = pd.NaT

    def features(X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "int": X["int"].astype("float64"), "flag": X["flag"].astype("float64"),
            "when": (X["when"] - pd.Timestamp("2024-01-01", tz="UTC")).dt.days,
            "x": X["x"]}, index=X.index)

    from sklearn.preprocessing import FunctionTransformer

    pre = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["obj", "text", "cat"]),
        (FunctionTransformer(features), ["int", "flag", "when", "x"]))
    pipe = make_pipeline(pre, HistGradientBoostingClassifier(max_iter=10, random_state=0))
    pipe.fit(train, rng.integers(0, 2, n))
    return sm.ModelBundle.from_training(pipe, train, name="records",
                                        policy=sm.Policy(missing="passthrough"))


_RECORDS_BUNDLE: list[sm.ModelBundle] = []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames())
def test_records_score_as_the_frame_does(frame: pd.DataFrame) -> None:
    if not _RECORDS_BUNDLE:
        _RECORDS_BUNDLE.append(_records_bundle())
    bundle = _RECORDS_BUNDLE[0]
    np.testing.assert_array_equal(bundle.predict_proba(frame.to_dict("records")),
                                  bundle.predict_proba(frame))


def test_none_in_an_object_column_reaches_the_estimator_as_none() -> None:
    bundle = _RECORDS_BUNDLE[0] if _RECORDS_BUNDLE else _records_bundle()
    assert bundle.contract["obj"].na == "none"
    prepared = bundle.prepare([{**bundle.golden.inputs.iloc[0].to_dict(), "obj": None}])
    assert prepared.frame["obj"].iloc[0] is None


# -------------------------------------------------------------- numbers as text


@pytest.mark.parametrize(("text", "number"), [
    ("34.1", 34.1), ("-7", -7), ("0.5", 0.5), ("4.0", 4.0), ("034", None), (" 3", None),
    ("1e3", None), ("1,5", None), ("nan", None), ("inf", None), ("0.10", None), ("", None),
])
def test_number_from_text_only_when_exact(text: str, number: object) -> None:
    assert number_from_text(text) == number


def test_numeric_text_parses_under_the_policy_option() -> None:
    model = Ridge().fit(NUM, Y2[:, 0])
    text = NUM.head(4).astype(str)
    strict = sm.ModelBundle.from_training(model, NUM, name="t")
    with pytest.raises(sm.ContractViolation, match="expected float64, found text"):
        strict.predict(text)
    parsing = sm.ModelBundle.from_training(model, NUM, name="t",
                                           policy=sm.Policy(numeric_text="parse"))
    np.testing.assert_array_equal(parsing.predict(text), model.predict(NUM.head(4)))
    assert sm.Policy.from_dict(parsing.policy.to_dict()) == parsing.policy
    assert "numeric_text" not in strict.policy.to_dict()  # older files are unchanged


def test_found_type_names_do_not_depend_on_the_engine() -> None:
    model = Ridge().fit(NUM, Y2[:, 0])
    bundle = sm.ModelBundle.from_training(model, NUM, name="t")
    checks = set()
    for column in (pd.Series(["1.5x"] * 2, dtype=object), pd.Series(["1.5x"] * 2, dtype="str"),
                   pd.Series(["1.5x"] * 2, dtype="string"),
                   pd.Series(["1.5x"] * 2, dtype="string[pyarrow]")):
        scored = bundle.score(pd.DataFrame({"a": column, "b": [0.0, 1.0]}), invalid="drop")
        checks |= {f.check for f in scored.report.rejected}
    assert checks == {"type: expected float64, found text"}


def test_max_rejected_fails_a_mostly_rejected_batch() -> None:
    model = Ridge().fit(NUM, Y2[:, 0])
    bundle = sm.ModelBundle.from_training(model, NUM, name="t")
    batch = NUM.head(10).astype(object)
    batch.loc[:7, "a"] = "bad"
    with pytest.raises(sm.TooManyRejected) as info:
        bundle.score(batch, invalid="drop", max_rejected=0.5)
    assert (info.value.rejected, info.value.rows, info.value.limit) == (8, 10, 5)
    assert info.value.reasons == {"a: type: expected float64, found text": 8}
    assert len(bundle.score(batch, invalid="drop", max_rejected=8).rows) == 2
    with pytest.raises(sm.TooManyRejected):
        bundle.score(batch, invalid="drop", max_rejected=7)
    with pytest.raises(sm.InvalidArgument, match="needs invalid='drop'"):
        bundle.score(batch, max_rejected=3)
    with pytest.raises(sm.InvalidArgument):
        bundle.score(batch, invalid="drop", max_rejected=1.5)
