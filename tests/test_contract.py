"""Contract inference, its pandera schema, text round trip and JSON Schema."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safemodel as sm
from helpers import record
from safemodel.core.engine import apply


def test_infer_penguins(penguins) -> None:
    X, _ = penguins
    c = sm.Contract.infer(X)
    assert c.names == tuple(X.columns)
    island = c["island"]
    assert island.kind == "categorical"
    assert island.categories == ("Biscoe", "Dream", "Torgersen")
    assert not island.nullable
    assert island.impute == "Biscoe"  # the mode
    sex = c["sex"]
    assert sex.nullable
    assert sex.categories == ("female", "male")
    bill = c["bill_length_mm"]
    assert bill.kind == "number"
    assert bill.nullable
    assert bill.minimum == X["bill_length_mm"].min()
    assert bill.maximum == X["bill_length_mm"].max()
    assert bill.impute == X["bill_length_mm"].median()
    year = c["year"]
    assert year.dtype == "int64"
    assert not year.nullable
    assert year.impute in set(X["year"])  # integer columns impute an observed value


def test_max_categories_makes_free_text() -> None:
    X = pd.DataFrame({"t": [f"v{i}" for i in range(20)]})
    assert sm.Contract.infer(X, max_categories=19)["t"].kind == "text"
    assert sm.Contract.infer(X, max_categories=20)["t"].kind == "categorical"
    with pytest.raises(sm.SafeModelError, match="max_categories"):
        sm.Contract.infer(X, max_categories=0)


def test_other_dtypes() -> None:
    X = pd.DataFrame({
        "flag": [True, False, True],
        "nb": pd.array([True, None, False], dtype="boolean"),
        "cat": pd.Categorical(["a", "b", "a"], categories=["b", "a"], ordered=True),
        "when": pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"], utc=True),
        "n": pd.array([1, None, 3], dtype="Int64"),
    })
    c = sm.Contract.infer(X)
    assert c["flag"].kind == "boolean"
    assert c["nb"].nullable
    assert c["cat"].categories == ("b", "a")
    assert c["cat"].ordered
    assert c["when"].kind == "datetime"
    assert c["when"].impute == pd.Timestamp("2021-01-01", tz="UTC")
    assert c["n"].kind == "number"
    assert c["n"].nullable
    back = sm.Contract.from_dict(json.loads(json.dumps(c.to_dict())))
    assert back == c


def test_column_names_must_be_strings() -> None:
    with pytest.raises(sm.SafeModelError, match="must be strings"):
        sm.Contract.infer(pd.DataFrame({0: [1.0]}))


@st.composite
def training_frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 30))
    texts = st.text(min_size=1, max_size=6)
    cols = {
        "x": draw(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=n, max_size=n)),
        "k": draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)),
        "c": draw(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "é", "x y"])),
                           min_size=n, max_size=n)),
        "t": draw(st.lists(texts, min_size=n, max_size=n)),
    }
    frame = pd.DataFrame(cols)
    frame["x"] = frame["x"].astype("float64")
    return frame


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(training_frames(), st.integers(1, 5))
def test_contract_text_round_trip_is_exact(frame: pd.DataFrame, max_categories: int) -> None:
    c = sm.Contract.infer(frame, max_categories=max_categories)
    text = json.dumps(c.to_dict())
    back = sm.Contract.from_dict(json.loads(text))
    assert back == c
    assert json.dumps(back.to_dict()) == text


def test_from_schema_keeps_builtin_checks_and_refuses_custom_ones_at_save() -> None:
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    schema = pa.DataFrameSchema({
        "x": pa.Column(float, checks=pa.Check.in_range(0, 10)),
        "c": pa.Column(str, checks=pa.Check.isin(["a", "b", "z"])),
    })
    c = sm.Contract.from_schema(schema, X)
    assert c["c"].categories == ("a", "b", "z")
    assert c["x"].checks[0]["name"] == "in_range"
    assert c["x"].impute == 2.0
    assert sm.Contract.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    # the built-in check is enforced on the hot path
    with pytest.raises(sm.ContractViolation, match="in_range"):
        apply(c, sm.Policy(), pd.DataFrame({"x": [11.0], "c": ["a"]}))

    custom = pa.DataFrameSchema({"x": pa.Column(float, checks=pa.Check(lambda s: s > 0))})
    cc = sm.Contract.from_schema(custom, X[["x"]])
    with pytest.raises(sm.ContractViolation):
        apply(cc, sm.Policy(), pd.DataFrame({"x": [-1.0]}))
    with pytest.raises(sm.SafeModelError, match="custom pandera check"):
        cc.to_dict()


def test_from_dataframe_model() -> None:
    class Model(pa.DataFrameModel):
        x: float = pa.Field(ge=0)
        c: str = pa.Field(isin=["a", "b"])

    c = sm.Contract.from_schema(Model, pd.DataFrame({"x": [1.0], "c": ["a"]}))
    assert c["c"].kind == "categorical"
    assert c["c"].categories == ("a", "b")
    assert c["x"].checks[0]["name"] == "greater_than_or_equal_to"


def test_a_user_schema_builds_a_bundle(lr_pipe, penguins) -> None:
    X, _ = penguins
    schema = sm.Contract.infer(X).schema.update_column("year", checks=[pa.Check.ge(2007)])
    bundle = sm.ModelBundle.from_training(lr_pipe, X, name="s", contract=schema)
    assert bundle.contract["year"].checks[0]["name"] == "greater_than_or_equal_to"
    with pytest.raises(sm.ContractViolation, match="year"):
        bundle.predict(X.iloc[:1].assign(year=1999))


def test_schema_validates_training_data_and_rejects_bad_rows(penguins) -> None:
    X, _ = penguins
    c = sm.Contract.infer(X)
    assert c.validate(X) is X
    bad = X.iloc[:3].copy()
    bad.loc[bad.index[1], "island"] = "Atlantis"
    with pytest.raises(sm.ContractViolation) as info:
        c.validate(bad)
    assert [(f.column, f.check, f.value, f.row) for f in info.value.failures] == [
        ("island", "unseen_category", "Atlantis", 1)]


def test_json_schema_agrees_with_contract_and_policy(lr_bundle, strict_bundle, penguins) -> None:
    X, _ = penguins
    strict = strict_bundle.contract.to_json_schema(policy=strict_bundle.policy,
                                                    examples=strict_bundle.golden.inputs[:3])
    jsonschema.Draft202012Validator.check_schema(strict)
    v = jsonschema.Draft202012Validator(strict)
    for i in range(len(strict_bundle.golden.inputs) - strict_bundle.golden.edge_rows):
        v.validate(record(strict_bundle.golden.inputs, i))
    unseen = {**record(X), "island": "Atlantis"}
    assert not v.is_valid(unseen)
    assert not v.is_valid({**record(X), "year": None})  # non-nullable under "error"
    assert len(strict["examples"]) == 3

    lenient = jsonschema.Draft202012Validator(
        lr_bundle.contract.to_json_schema(policy=lr_bundle.policy))
    assert lenient.is_valid(unseen)  # the default policy handles it
    assert lenient.is_valid({**record(X), "year": None})
    assert not lenient.is_valid({**record(X), "year": "2008"})
    assert not lenient.is_valid({k: v for k, v in record(X).items() if k != "island"})


def test_failures_pickle_and_serialise() -> None:
    import pickle

    err = sm.ContractViolation([sm.errors.Failure("a", "unseen_category", "z", 3)])
    back = pickle.loads(pickle.dumps(err))
    assert back.failures == err.failures
    assert str(back) == str(err)
    assert json.dumps(err.to_dict())
    assert err.rows == [3]


def test_np_values_in_contract_are_plain() -> None:
    c = sm.Contract.infer(pd.DataFrame({"x": np.array([1, 2, 3], dtype="int32")}))
    assert type(c["x"].minimum) is int
    assert json.dumps(c.to_dict())


@pytest.mark.parametrize(("change", "found"), [
    ({"kind": "weird"}, "weird"),
    ({"categories": [{"$": "complex"}]}, "complex"),
    ({"checks": [{"name": "custom_lambda", "statistics": {}}]}, "custom_lambda"),
    ({"impute": "not a number"}, "not a number"),
    ({"categories": [[1, 2]]}, "list"),
])
def test_malformed_contract_columns_are_bundle_format_errors(change, found) -> None:
    data = {"name": "x", "dtype": "float64", "kind": "number", "nullable": False, **change}
    with pytest.raises(sm.BundleFormatError, match="Contract column 'x' is malformed") as info:
        sm.ColumnSpec.from_dict(data)
    assert info.value.member == "contract.json"
    assert info.value.found == found


def test_repeated_column_names_are_an_invalid_argument() -> None:
    spec = sm.ColumnSpec("x", "float64", "number")
    with pytest.raises(sm.InvalidArgument, match="repeated") as info:
        sm.Contract((spec, spec))
    assert info.value.found == ["x"]


def test_rows_an_extra_check_rejects_are_left_out_under_drop() -> None:
    """The frame holds exactly the rows Prepared.rows names (they once disagreed)."""
    schema = pa.DataFrameSchema({"x": pa.Column(float, checks=pa.Check.in_range(0, 10))})
    contract = sm.Contract.from_schema(schema, pd.DataFrame({"x": [1.0, 2.0]}))
    prepared = apply(contract, sm.Policy(), pd.DataFrame({"x": [1.0, 50.0, 3.0]}),
                     invalid="drop")
    assert prepared.rows.tolist() == [0, 2]
    assert prepared.frame["x"].tolist() == [1.0, 3.0]
    assert [(f.check, f.row) for f in prepared.report.rejected] == [("in_range", 1)]
