"""The handling policy: every action, every failure at once, never a raw exception."""

from __future__ import annotations

import copy
import json
import logging
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safemodel as sm
from helpers import record
from safemodel.core.engine import apply
from safemodel.core.engine.coerce import coerce


@pytest.fixture(scope="module")
def row(penguins) -> dict:
    return record(penguins[0].dropna(), 0)


def test_policy_options_are_checked() -> None:
    with pytest.raises(sm.SafeModelError, match=r"'missing' parameter of Policy must be one of"):
        sm.Policy(missing="drop")  # type: ignore[arg-type]
    with pytest.raises(sm.SafeModelError, match="unseen_category"):
        sm.ColumnPolicy(unseen_category="ignore")  # type: ignore[arg-type]
    with pytest.raises(sm.SafeModelError, match="ColumnPolicy"):
        sm.Policy(columns={"a": "error"})  # type: ignore[dict-item]


def test_policy_round_trip_and_overrides() -> None:
    p = sm.Policy(columns={"island": sm.ColumnPolicy(unseen_category="error")})
    assert p.for_column("island") == ("error", "impute")
    assert p.for_column("sex") == ("missing", "impute")
    assert sm.Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    assert sm.Policy.strict().for_column("x") == ("error", "error")
    with pytest.raises(sm.BundleFormatError):
        sm.Policy.from_dict({"missing": "impute"})


def test_default_policy_handles_unseen_and_unexpected_missing(lr_bundle, row, caplog) -> None:
    bad = {**row, "island": "Atlantis", "year": None}
    with caplog.at_level(logging.WARNING, logger="safemodel"):
        proba = lr_bundle.predict_proba(bad)
    assert proba.shape == (1, 3)
    assert np.isclose(proba.sum(), 1.0)
    report = lr_bundle.prepare(bad).report
    counts = report.counts()
    assert counts["island"] == {"unseen_to_missing": 1, "imputed": 1}
    assert counts["year"]["imputed"] == 1
    assert report.changed
    assert "island: unseen_to_missing x1" in caplog.text
    assert "Atlantis" not in caplog.text  # no raw values in logs
    frame = lr_bundle.prepare(bad).frame
    assert frame["island"].iloc[0] == lr_bundle.contract["island"].impute
    assert frame["year"].dtype == np.dtype("int64")
    assert json.dumps(report.to_dict())


def test_clean_input_is_passed_through_without_a_copy(lr_bundle, penguins, caplog) -> None:
    X = penguins[0]
    with caplog.at_level(logging.INFO, logger="safemodel"):
        prepared = lr_bundle.prepare(X)
    assert prepared.frame is X
    assert not prepared.report.actions
    assert not prepared.report.changed
    assert caplog.text == ""


def test_expected_missing_values_reach_the_estimator(lr_bundle, row) -> None:
    prepared = lr_bundle.prepare({**row, "sex": None, "bill_length_mm": None})
    assert prepared.report.actions == ()
    assert pd.isna(prepared.frame["sex"].iloc[0])
    assert pd.isna(prepared.frame["bill_length_mm"].iloc[0])


def test_strict_policy_reports_every_failure_at_once(strict_bundle, row) -> None:
    rows = [
        {**row, "island": "Atlantis"},
        {**row, "year": None},
        {**row, "bill_depth_mm": "deep", "sex": 7},
        row,
    ]
    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict(rows)
    found = {(f.column, f.check.split(":")[0], f.value, f.row) for f in info.value.failures}
    assert found == {
        ("island", "unseen_category", "Atlantis", 0),
        ("year", "unexpected_missing", None, 1),
        ("bill_depth_mm", "type", "deep", 2),
        ("sex", "type", 7, 2),
    }
    assert info.value.rows == [0, 1, 2]
    body = json.loads(json.dumps(info.value.to_dict()))
    assert body["error"] == "contract_violation"
    assert len(body["failures"]) == 4
    assert "island" in str(info.value)
    assert "Atlantis" in str(info.value)


def test_one_bad_cell_is_one_failure(strict_bundle, row) -> None:
    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict({**row, "island": 3})
    assert len(info.value.failures) == 1


def test_missing_columns_are_all_named(lr_bundle, row) -> None:
    partial = {k: v for k, v in row.items() if k not in ("island", "year")}
    with pytest.raises(sm.ContractViolation) as info:
        lr_bundle.predict(partial)
    assert {(f.column, f.check) for f in info.value.failures} == {
        ("island", "missing_column"), ("year", "missing_column")}


def test_extra_columns_drop_or_error(lr_bundle, strict_bundle, row) -> None:
    prepared = lr_bundle.prepare({**row, "colour": "blue"})
    assert "colour" not in prepared.frame.columns
    assert prepared.report.counts()["colour"] == {"dropped_column": 1}
    with pytest.raises(sm.ContractViolation, match=r"unexpected column\(s\)"):
        strict_bundle.prepare({**row, "colour": "blue"})


def test_columns_are_reordered(lr_bundle, penguins) -> None:
    X = penguins[0]
    shuffled = X[list(reversed(X.columns))]
    np.testing.assert_array_equal(lr_bundle.predict_proba(shuffled), lr_bundle.predict_proba(X))
    assert list(lr_bundle.prepare(shuffled).frame.columns) == list(X.columns)


def test_lossless_coercions_only(strict_bundle, row) -> None:
    ok = strict_bundle.prepare({**row, "year": 2008.0, "body_mass_g": 3800})
    assert ok.frame["year"].dtype == np.dtype("int64")
    assert ok.frame["body_mass_g"].dtype == np.dtype("float64")
    with pytest.raises(sm.ContractViolation, match="expected int64, found float: 2008.5"):
        strict_bundle.prepare({**row, "year": 2008.5})
    with pytest.raises(sm.ContractViolation, match="found text"):
        strict_bundle.prepare({**row, "body_mass_g": "3800"})
    with pytest.raises(sm.ContractViolation, match="found bool"):
        strict_bundle.prepare({**row, "body_mass_g": True})


def test_str_to_category(penguins, lr_pipe) -> None:
    X = penguins[0].copy()
    X["island"] = X["island"].astype("category")
    from sklearn.base import clone

    pipe = clone(lr_pipe).fit(X, penguins[1])
    bundle = sm.ModelBundle.from_training(pipe, X, name="cat")
    plain = X.astype({"island": "str"})
    prepared = bundle.prepare(plain)
    assert isinstance(prepared.frame["island"].dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(bundle.predict_proba(plain), pipe.predict_proba(X))


def test_most_frequent_and_passthrough(lr_pipe, penguins, row) -> None:
    X = penguins[0]
    mf = sm.ModelBundle.from_training(lr_pipe, X, name="mf", policy=sm.Policy(
        unseen_category="most_frequent", columns={"sex": sm.ColumnPolicy(
            unseen_category="passthrough")}))
    prepared = mf.prepare({**row, "island": "Atlantis", "sex": "unknown"})
    assert prepared.frame["island"].iloc[0] == "Biscoe"
    assert prepared.frame["sex"].iloc[0] == "unknown"  # the encoder ignores unknowns
    assert prepared.report.counts() == {"island": {"unseen_to_most_frequent": 1},
                                        "sex": {"unseen_passthrough": 1}}
    passthrough = sm.ModelBundle.from_training(lr_pipe, X, name="pt",
                                               policy=sm.Policy(missing="passthrough"))
    p = passthrough.prepare({**row, "island": None})
    assert p.report.counts()["island"] == {"missing_passthrough": 1}


def test_estimator_errors_after_passthrough_are_scoring_errors(hgb_pipe, penguins, row) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = penguins
    strict_encoder = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="error"), ["island"])),
        LogisticRegression()).fit(X, y)
    with pytest.raises(sm.SafeModelError, match="failed on the golden rows"):
        sm.ModelBundle.from_training(strict_encoder, X, name="x",
                                     policy=sm.Policy(unseen_category="passthrough"))
    ok = sm.ModelBundle.from_training(strict_encoder, X, name="x",
                                      policy=sm.Policy(columns={"island": sm.ColumnPolicy(
                                          unseen_category="error")}))
    passthrough = sm.ModelBundle(strict_encoder, ok.contract,
                                 sm.Policy(unseen_category="passthrough"), ok.golden,
                                 name="x", version="1")
    with pytest.raises(sm.ScoringError, match="OneHotEncoder|unknown|Found unknown") as info:
        passthrough.predict({**row, "island": "Atlantis"})
    assert info.value.method == "predict"


def test_invalid_drop_scores_the_good_rows(strict_bundle, penguins) -> None:
    X = penguins[0].dropna().iloc[:50].reset_index(drop=True)
    broken = X.copy()
    broken.loc[[3, 17], "island"] = "Atlantis"
    broken.loc[40, "body_mass_g"] = -1.0  # fine: ranges are recorded, not enforced
    scored = strict_bundle.score(broken, method="predict_proba", invalid="drop")
    assert list(scored.rows) == [i for i in range(50) if i not in (3, 17)]
    assert scored.report.rejected_rows == [3, 17]
    assert scored.outputs.shape == (48, 3)
    np.testing.assert_array_equal(scored.outputs,
                                  strict_bundle.predict_proba(broken.drop(index=[3, 17])))


def test_caller_frame_is_never_mutated(lr_bundle, penguins) -> None:
    X = penguins[0].iloc[:20].copy()
    X.loc[X.index[0], "island"] = "Atlantis"
    X.loc[X.index[1], "year"] = np.nan  # year becomes float with a NaN
    snapshot = X.copy(deep=True)
    lr_bundle.predict_proba(X)
    pd.testing.assert_frame_equal(X, snapshot)
    records = [record(X, i) for i in range(3)]
    before = copy.deepcopy(records)
    lr_bundle.predict(records)
    assert records == before


def test_concurrent_scoring_is_consistent(lr_bundle, penguins) -> None:
    X = penguins[0]
    batches = [X.sample(30, random_state=i).assign(island=["Atlantis"] * 5 + list(
        X.sample(25, random_state=i)["island"])) for i in range(8)]
    expected = [lr_bundle.predict_proba(b) for b in batches]
    results: dict[int, list[np.ndarray]] = {i: [] for i in range(8)}

    def work(i: int) -> None:
        for _ in range(10):
            results[i].append(lr_bundle.predict_proba(batches[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        for got in results[i]:
            np.testing.assert_array_equal(got, expected[i])


# ----------------------------------------------------- the fast path agrees with pandera

COLUMNS = {
    "f": st.one_of(st.floats(-1e9, 1e9), st.just(float("nan"))),
    "g": st.one_of(st.floats(-1e9, 1e9), st.just(float("nan"))),
    "i": st.integers(-(2**40), 2**40),
    "c": st.one_of(st.sampled_from(["a", "b", "c", "zz", ""]), st.none()),
    "d": st.one_of(st.sampled_from(["x", "y", "w"]), st.none()),
    "k": st.one_of(st.sampled_from(["p", "q", "r"]), st.none()),
    "b": st.booleans(),
}


@pytest.fixture(scope="module")
def diff_contract() -> sm.Contract:
    train = pd.DataFrame({
        "f": [1.0, 2.0, 3.0], "g": [1.0, np.nan, 3.0], "i": [1, 2, 3],
        "c": ["a", "b", "a"], "d": ["x", None, "y"],
        "k": pd.Categorical(["p", "q", "p"], categories=["p", "q"]),
        "b": [True, False, True],
    })
    return sm.Contract.infer(train)


def _typed(rows: list[dict], contract: sm.Contract) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(contract.names))
    frame = frame.astype({"f": "float64", "g": "float64", "i": "int64", "c": "str", "d": "str",
                          "b": "bool"})
    frame["k"] = pd.Categorical(frame["k"], categories=["p", "q", "r"]).astype(object)
    return frame


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(COLUMNS), min_size=1, max_size=8))
def test_fast_path_accepts_and_rejects_exactly_what_pandera_does(
    diff_contract: sm.Contract, rows: list[dict]
) -> None:
    frame = _typed(rows, diff_contract)
    frame = frame.drop(columns=["k"])  # category dtype differs by construction; tested apart
    contract = sm.Contract(tuple(c for c in diff_contract.columns if c.name != "k"))
    try:
        contract.validate(frame)
        pandera_failures: set = set()
    except sm.ContractViolation as exc:
        pandera_failures = {(f.column, f.check, f.row) for f in exc.failures}
    try:
        apply(contract, sm.Policy.strict(), frame)
        ours: set = set()
    except sm.ContractViolation as exc:
        ours = {(f.column, f.check, f.row) for f in exc.failures}
    assert ours == pandera_failures


# ------------------------------------------------------------------------- fuzzing

NAMES = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm",
         "body_mass_g", "year", "extra", ""]
VALUES = st.one_of(
    st.none(), st.just(float("nan")), st.just(pd.NA), st.just(pd.NaT),
    st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["Biscoe", "Dream", "male", "female"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                          max_size=1),
    st.just(10**30), st.just(-(10**30)), st.just(b"bytes"),
)


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=9),
                        max_size=6),
       as_frame=st.booleans(), strict=st.booleans())
def test_fuzzed_records_give_a_result_or_a_safemodel_error(
    lr_bundle, strict_bundle, records: list[dict], as_frame: bool, strict: bool
) -> None:
    bundle = strict_bundle if strict else lr_bundle
    try:
        X = pd.DataFrame(records) if as_frame else records
    except Exception:  # pandas itself cannot build this frame; records go in as they are
        X = records
    try:
        out = bundle.predict_proba(X)
    except sm.SafeModelError:
        return
    assert out.shape[1] == 3
    assert np.all(np.isfinite(out))


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_valid_looking_rows_always_score(lr_bundle, penguins, data: st.DataObject) -> None:
    """Rows with the right columns and wild values: the default policy scores them all."""
    X = penguins[0]
    n = data.draw(st.integers(1, 5))
    rows = []
    for _ in range(n):
        r = {}
        for col in X.columns:
            if X[col].dtype.kind == "f":
                r[col] = data.draw(st.one_of(st.none(), st.floats(-1e12, 1e12)))
            elif X[col].dtype.kind == "i":
                r[col] = data.draw(st.one_of(st.none(), st.integers(-(2**50), 2**50)))
            else:
                r[col] = data.draw(st.one_of(st.none(), st.text(max_size=5),
                                             st.sampled_from(sorted(set(X[col].dropna())))))
        rows.append(r)
    out = lr_bundle.predict_proba(rows)
    assert out.shape == (n, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_infinite_values_are_refused_unless_training_had_them(lr_bundle, lr_pipe, row) -> None:
    with pytest.raises(sm.ContractViolation) as info:
        lr_bundle.predict({**row, "bill_length_mm": float("inf")})
    assert [(f.column, f.check, f.value) for f in info.value.failures] == [
        ("bill_length_mm", "non_finite", float("inf"))]
    scored = lr_bundle.score([row, {**row, "body_mass_g": -float("inf")}], invalid="drop")
    assert list(scored.rows) == [0]
    X = pd.DataFrame([row, {**row, "bill_depth_mm": float("inf")}])
    with_inf = sm.Contract.infer(X)
    assert with_inf["bill_depth_mm"].maximum == float("inf")
    assert apply(with_inf, sm.Policy(), X).frame is X


def test_verify_tolerance_override(lr_bundle) -> None:
    assert lr_bundle.verify(rtol=1e-3, atol=1e-6).ok


# ------------------------------------------- what a service sends back (issue 14)

BIG_INTS = [2**63, -(2**63) - 1, 2**64 + 5, 10**400, float(2**63)]


@pytest.mark.parametrize("value", BIG_INTS, ids=["2**63", "-2**63-1", "2**64+5", "10**400",
                                                 "float 2**63"])
@pytest.mark.parametrize("batch", [False, True])
def test_integers_outside_int64_are_contract_failures(lr_bundle, row, value, batch) -> None:
    """Never a raw TypeError, never clamped: the failure names column, value and row."""
    assert lr_bundle.contract["year"].dtype == "int64"
    records = [{**row, "year": 2008}, {**row, "year": value}] if batch else [{**row, "year": value}]
    with pytest.raises(sm.ContractViolation) as info:
        lr_bundle.predict_proba(records)
    (failure,) = info.value.failures
    assert (failure.column, failure.row) == ("year", len(records) - 1)
    assert failure.check.startswith("type: expected int64")
    assert failure.value == value
    json.dumps(info.value.to_dict(), allow_nan=False)
    if batch:
        scored = lr_bundle.score(records, invalid="drop")
        assert scored.rows.tolist() == [0]


def test_large_integers_that_fit_are_coerced_exactly(lr_bundle) -> None:
    """2**53 + 1 does not survive a trip through float64; coercion must not take one."""
    exact = 2**53 + 1
    spec = lr_bundle.contract["year"]
    for sent in (pd.Series([2**63, exact], dtype="uint64"),   # what pandas makes of records
                 pd.Series([-(2**63) - 1, exact], dtype=object),
                 pd.Series([2**63, exact, None], dtype="UInt64")):
        working, bad = coerce(sent, spec)
        assert bad.tolist()[:2] == [True, False]
        assert working.dtype == "Int64"
        assert working.iloc[1] == exact



@pytest.mark.parametrize("bad", [{"i": "not a number"}, {"i": None}, {"f": "x"}, {"b": 3}],
                         ids=["bad-type", "missing", "other-column", "bool-column"])
def test_dropped_rows_leave_integers_exact(bad: dict) -> None:
    """invalid="drop": once the failing rows are gone, int64 stays int64 (2**53 + 1 exact)."""
    exact = 2**53 + 1
    train = pd.DataFrame({"i": np.array([exact, 5, 7]), "b": [True, False, True],
                          "f": [1.0, 2.0, 3.0]})
    contract = sm.Contract.infer(train)
    sent = [{"i": exact, "b": True, "f": 1.0}, {"i": exact + 2, "b": False, "f": 2.0, **bad}]
    prepared = apply(contract, sm.Policy.strict(), sent, invalid="drop")
    assert [f.row for f in prepared.report.rejected] == [1]
    assert prepared.frame.dtypes.to_dict() == train.dtypes.to_dict()
    assert prepared.frame["i"].tolist() == [exact]
    assert prepared.frame.index.tolist() == [0]



@pytest.mark.parametrize("shape", ["records", "columns"])
def test_an_integer_beside_a_missing_value_is_not_rounded(shape: str) -> None:
    # pandas reads [2**53 + 1, None] as float64 (2**53); the engine reads what was sent.
    exact = 2**53 + 1
    contract = sm.Contract.infer(pd.DataFrame({"i": np.array([exact, 5, 7])}))
    sent = ([{"i": exact}, {"i": None}] if shape == "records"
            else {"i": [exact, None]})
    prepared = apply(contract, sm.Policy(), sent)
    assert prepared.frame["i"].dtype == np.dtype("int64")
    assert prepared.frame["i"].tolist() == [exact, 7]
    assert prepared.report.counts()["i"]["imputed"] == 1


def test_to_dict_is_strict_json_and_echoes_short_values(strict_bundle, row) -> None:
    long_text = "x" * 1_000_000
    records = [{**row, "bill_length_mm": float("inf")},
               {**row, "bill_depth_mm": float("-inf")},
               {**row, "island": long_text}]
    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict_proba(records)
    data = info.value.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert len(text) < 5_000
    values = {(f["column"], f["row"]): f["value"] for f in data["failures"]}
    assert values[("bill_length_mm", 0)] == "inf"
    assert values[("bill_depth_mm", 1)] == "-inf"
    island = values[("island", 2)]
    assert island.startswith("x" * 200)
    assert "1000000 characters" in island
    assert len(str(info.value)) < 2_000
    assert "1000000 characters" in str(info.value)
    # The failure itself keeps the value as sent, for the caller's code.
    assert next(f for f in info.value.failures if f.column == "island").value == long_text


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**5000,
                                   np.float64("inf"), pd.Timestamp("2024-01-01"), object(),
                                   ["a" * 300] * 50, {"k" * 300: float("nan")}, b"\xff" * 500],
                         ids=["nan", "inf", "-inf", "10**5000", "np.inf", "timestamp", "object",
                              "long list", "dict", "bytes"])
def test_failure_to_dict_is_strict_json_for_any_value(value) -> None:
    failure = sm.ContractViolation([sm.errors.Failure("c" * 500, "type", value, 0)])
    text = json.dumps(failure.to_dict(), allow_nan=False)
    assert len(text) < 5_000


def _invalid_value() -> st.SearchStrategy:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.integers(),
        st.integers(min_value=2**62, max_value=2**70), st.integers(max_value=-(2**62)),
        st.text(max_size=400), st.booleans(), st.none(),
        st.lists(st.floats(), max_size=3), st.dictionaries(st.text(max_size=3), st.floats(),
                                                            max_size=2),
        st.just(10**400), st.just(float(2**63)), st.just(b"bytes"),
    )


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.dictionaries(st.sampled_from(NAMES), _invalid_value(), max_size=9),
                        min_size=1, max_size=4),
       strict=st.booleans())
def test_contract_violations_are_always_strict_json(
    lr_bundle, strict_bundle, row, records: list[dict], strict: bool
) -> None:
    bundle = strict_bundle if strict else lr_bundle
    sent = [{**row, **r} for r in records]  # mostly valid rows with bad cells
    try:
        bundle.prepare(sent)
    except sm.ContractViolation as exc:
        json.dumps(exc.to_dict(), allow_nan=False)
    try:
        bundle.prepare(sent, invalid="drop")
    except sm.ContractViolation as exc:
        json.dumps(exc.to_dict(), allow_nan=False)


@pytest.mark.parametrize("how", ["dict", "one-record list", "batch"])
def test_a_record_missing_a_field_fails_the_same_alone_or_in_a_batch(lr_bundle, row, how) -> None:
    lacking = {k: v for k, v in row.items() if k != "bill_length_mm"}
    X = {"dict": lacking, "one-record list": [lacking], "batch": [row, lacking, row]}[how]
    with pytest.raises(sm.ContractViolation) as info:
        lr_bundle.predict_proba(X)
    assert [(f.column, f.check) for f in info.value.failures] == [
        ("bill_length_mm", "missing_column")]
    if how == "batch":
        assert info.value.failures[0].row == 1  # which record lacks it
        scored = lr_bundle.score(X, invalid="drop")
        assert scored.rows.tolist() == [0, 2]
        assert [f.row for f in scored.report.rejected] == [1]
    else:
        assert info.value.failures[0].row is None  # the column is absent altogether


def test_a_field_sent_as_null_is_a_missing_value_not_a_missing_field(lr_bundle, row) -> None:
    batch = [row, {**row, "island": None}]
    prepared = lr_bundle.prepare(batch)
    assert prepared.report.counts() == {"island": {"imputed": 1}}


@pytest.mark.parametrize(("series", "values"), [
    (pd.Series(["a", None, "b", "c"] * 5, dtype="str"), ["Z", None]),
    (pd.Series(["a", None, "b", "c"] * 5, dtype="string[pyarrow]"), ["Z", None]),
    (pd.Series(["a", None, "b", "c"] * 5, dtype="string[python]"), ["Z", None]),
    (pd.Series(["a", None, "b", "c"] * 5, dtype=object), ["Z", None]),
    (pd.Series([1, None, 3, 4] * 5, dtype="Int64"), [2008, None, np.int64(7)]),
    (pd.Series([1, None, 3, 4] * 5, dtype="Int8"), [5, None]),
    (pd.Series([1.0, np.nan, 3.0, 4.0] * 5), [2.5, None, 7, np.float32(1.5)]),
    (pd.Series([1.0, np.nan, 3.0, 4.0] * 5, dtype="float32"), [2.5, None]),
    (pd.Series([1, 2, 3, 4] * 5), [5]),
], ids=lambda v: str(getattr(v, "dtype", "")))
def test_fill_on_arrays_matches_pandas_assignment(series: pd.Series, values: list) -> None:
    # The engine fills on the arrays for speed; the result must be what pandas makes.
    from safemodel.core.engine import _fill

    mask = np.random.default_rng(0).random(len(series)) < 0.3
    before = series.copy()
    for value in values:
        expected = series.copy()
        expected[mask] = value
        got = _fill(series, mask, value)
        pd.testing.assert_series_equal(got, expected, check_exact=True)
        assert type(got.array) is type(expected.array)
        pd.testing.assert_series_equal(series, before)  # the input is never mutated


@pytest.mark.parametrize("dtype", ["str", "string[pyarrow]", "string[python]", object, "Int64",
                                   "float64"])
def test_fills_in_turn_match_successive_pandas_assignments(dtype: object) -> None:
    # The engine writes each row once (a row a later fill covers is left to it); the
    # result must be what assigning each fill in turn makes, overlaps included.
    from safemodel.core.engine import _filled

    numbers = dtype in ("Int64", "float64")
    base = [1, None, 3, 4] if numbers else ["a", None, "b", "c"]
    series = pd.Series(base * 10, dtype=dtype)
    rng = np.random.default_rng(3)
    masks = [rng.random(len(series)) < p for p in (0.3, 0.5, 0.2)]
    values = [None, 7, 9] if numbers else [None, "Z", "Y"]
    for k in range(1, 4):
        fills = list(zip(masks[:k], values[:k], strict=True))
        expected = series.copy()
        for mask, value in fills:
            expected[mask] = value
        got = _filled(series, fills)
        pd.testing.assert_series_equal(got, expected, check_exact=True)
    assert _filled(series, []) is series


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.sampled_from(["Biscoe", "Dream", "Atlantis", "", "dream", None]),
                       min_size=1, max_size=40),
       skipped=st.lists(st.booleans(), min_size=40, max_size=40),
       dtype=st.sampled_from(["str", "string[pyarrow]", "string[python]", "object"]))
def test_unseen_mask_on_arrow_strings_agrees_with_the_set_lookup(
    values: list, skipped: list, dtype: str
) -> None:
    # Arrow strings take pyarrow's is_in; every other array the distinct values and
    # Python's `in`. Both must flag the same rows (missing values are never unseen;
    # skipped rows never flagged; a non-text allowed value matches no text).
    from types import SimpleNamespace

    from safemodel.core.engine import _unseen_mask

    allowed = frozenset({"Biscoe", "Dream", 1})
    spec: Any = SimpleNamespace(allowed=allowed, pandas_dtype=np.dtype(object))
    skip = np.array(skipped[: len(values)])
    got = _unseen_mask(pd.Series(values, dtype=dtype), spec, skip)
    expected = np.array([v is not None and v not in allowed for v in values]) & ~skip
    if expected.any():
        assert got is not None
        assert got.tolist() == expected.tolist()
    else:
        assert got is None
