"""safemodel.dask on a real local cluster of two worker processes: same results as one
process, verification once per worker process, policy counts on the client."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
import safemodel.dask as smd
from helpers import expected_counts, penguins_frame, policy_frame

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

pytestmark = [pytest.mark.dask, pytest.mark.slow]


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        # None still serves HTTP on 8787 (a warning, so an error, when taken): any free port.
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address="127.0.0.1:0") as cluster,
        distributed.Client(cluster) as the_client,
    ):
        yield the_client


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return policy_frame(20_000)


@pytest.mark.parametrize(
    ("name", "method"),
    [("lr_bundle", "predict_proba"), ("lr_bundle", "predict"),
     ("lr_bundle", "decision_function"), ("hgb_bundle", "predict_proba")],
)
def test_outputs_and_policy_counts_equal_single_process(
    request: pytest.FixtureRequest, client: Any, frame: pd.DataFrame, name: str, method: str
) -> None:
    bundle: sm.ModelBundle = request.getfixturevalue(name)
    scored = smd.score(bundle, dd.from_pandas(frame, npartitions=8), method=method).persist()
    got = scored.compute()

    features = frame.drop(columns="id")
    expected = getattr(bundle, method)(features)
    classes = bundle.estimator.classes_.tolist()
    if method == "predict":
        assert got["prediction"].tolist() == expected.tolist()
    else:
        prefix = "proba" if method == "predict_proba" else "decision"
        np.testing.assert_array_equal(got[[f"{prefix}_{c}" for c in classes]].to_numpy(),
                                      expected)
    pd.testing.assert_frame_equal(got[frame.columns], frame, check_dtype=False)
    assert got.dtypes.to_dict() == scored.dtypes.to_dict()  # meta tells the truth
    assert smd.REJECTED_COLUMN not in got

    report = bundle.score(features, method=method).report
    assert smd.policy_counts(scored) == smd.policy_counts(got) == expected_counts(report)
    assert expected_counts(report)["island"] == {"unseen_to_missing": 200, "imputed": 400}
    policy = got[smd.POLICY_COLUMN]
    atlantis = frame["island"].eq("Atlantis").to_numpy()
    assert {json.loads(t) == {"island": ["unseen_to_missing", "imputed"]}
            for t in policy[atlantis]} == {True}
    edited = set(report.rejected_rows).union(*(a.rows for a in report.actions))
    assert policy.notna().to_numpy().nonzero()[0].tolist() == sorted(edited)


def test_invalid_drop_keeps_rejected_rows_with_null_outputs_and_reasons(
    client: Any, strict_bundle: sm.ModelBundle, frame: pd.DataFrame
) -> None:
    scored = smd.score(strict_bundle, dd.from_pandas(frame, npartitions=4), invalid="drop",
                       method="predict")
    got = scored.compute()
    expected = strict_bundle.score(frame.drop(columns="id"), method="predict", invalid="drop")
    rejected = np.setdiff1d(np.arange(len(frame)), expected.rows)
    assert len(rejected) == 800
    assert got["prediction"].iloc[expected.rows].tolist() == expected.outputs.tolist()
    assert got["prediction"].iloc[rejected].isna().all()
    assert got[smd.REJECTED_COLUMN].notna().to_numpy().nonzero()[0].tolist() == rejected.tolist()
    atlantis = int(frame.index[frame["island"].eq("Atlantis")][0])
    assert json.loads(got[smd.REJECTED_COLUMN][atlantis]) == [
        {"column": "island", "check": "unseen_category", "value": "Atlantis"}]
    assert smd.policy_counts(got) == expected_counts(expected.report) == {
        "island": {"rejected:unexpected_missing": 200, "rejected:unseen_category": 200},
        "sex": {"rejected:unseen_category": 200},
        "year": {"rejected:unexpected_missing": 200},
    }


def test_policy_counts_of_the_written_result(
    client: Any, lr_bundle_path: Path, frame: pd.DataFrame, tmp_path: Path
) -> None:
    scored = smd.score(lr_bundle_path, dd.from_pandas(frame, npartitions=4), invalid="drop")
    scored.to_parquet(tmp_path / "scores")
    written = dd.read_parquet(tmp_path / "scores")
    report = sm.load(lr_bundle_path).score(frame.drop(columns="id"), invalid="drop").report
    assert smd.policy_counts(written) == expected_counts(report)
    assert written[smd.REJECTED_COLUMN].isna().all().compute()


def test_each_worker_process_verifies_once(
    client: Any, lr_pipe: Pipeline, frame: pd.DataFrame
) -> None:
    bundle = sm.ModelBundle.from_training(lr_pipe, penguins_frame()[0], name="once",
                                          version="3.0.0")
    scored = smd.score(bundle, dd.from_pandas(frame, npartitions=16))
    assert len(scored.compute()) == 20_000
    assert not scored["proba_Adelie"].isna().any().compute()  # scores again

    def loads() -> dict[str, int]:
        from safemodel.integrations import plan as engine_neutral

        return engine_neutral.load_counts()

    per_worker = [w.get(bundle.fingerprint, 0) for w in client.run(loads).values()]
    assert 1 in per_worker
    assert set(per_worker) <= {0, 1}  # 32 partitions scored, at most one load per process


def test_diverging_worker_environment_is_refused_on_the_client(
    client: Any, lr_pipe: Pipeline, frame: pd.DataFrame
) -> None:
    def diverge() -> None:
        # This worker's scikit-learn now scores 1e-9 higher.
        from sklearn.linear_model import LogisticRegression

        original = LogisticRegression.predict_proba

        def predict_proba(self: Any, X: Any) -> Any:
            return original(self, X) * (1 + 1e-9)

        predict_proba.original = original  # type: ignore[attr-defined]
        LogisticRegression.predict_proba = predict_proba  # type: ignore[method-assign]

    def restore() -> None:
        from sklearn.linear_model import LogisticRegression

        LogisticRegression.predict_proba = (  # type: ignore[method-assign]
            LogisticRegression.predict_proba.original)  # type: ignore[attr-defined]

    bundle = sm.ModelBundle.from_training(lr_pipe, penguins_frame()[0], name="diverge",
                                          version="2.0.0")
    scored = smd.score(bundle, dd.from_pandas(frame, npartitions=4))
    client.run(diverge)
    try:
        with pytest.raises(sm.GoldenMismatchError, match="golden outputs do not reproduce"
                           ) as caught:
            scored.compute()
    finally:
        client.run(restore)
    error = caught.value
    assert error.method == "predict_proba"
    assert error.mismatches[0]["rows_differing"] > 0
    assert error.mismatches[0]["max_rel_diff"] == pytest.approx(1e-9, rel=1e-3)


def test_contract_violation_with_invalid_raise_reaches_the_client(
    client: Any, strict_bundle: sm.ModelBundle
) -> None:
    scored = smd.score(strict_bundle, dd.from_pandas(policy_frame(200), npartitions=2))
    with pytest.raises(sm.ContractViolation, match="unseen_category") as caught:
        scored.compute()
    assert {f.column for f in caught.value.failures} == {"island", "sex", "year"}


def test_missing_contract_columns_are_named_before_any_computation(
    lr_bundle: sm.ModelBundle,
) -> None:
    ddf = dd.from_pandas(policy_frame(10).drop(columns=["island", "year"]), npartitions=1)
    with pytest.raises(sm.ContractViolation) as caught:
        smd.score(lr_bundle, ddf)
    assert [(f.column, f.check) for f in caught.value.failures] == [
        ("island", "missing_column"), ("year", "missing_column")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "predict", "output_col": "island"}, "already has column"),
     ({"method": "transform"}, "'method' parameter"),
     ({"invalid": "skip"}, "'invalid' parameter")],
)
def test_bad_arguments(lr_bundle: sm.ModelBundle, kwargs: dict[str, Any], message: str) -> None:
    ddf = dd.from_pandas(policy_frame(10), npartitions=1)
    with pytest.raises(sm.InvalidArgument, match=message) as caught:
        smd.score(lr_bundle, ddf, **kwargs)
    assert caught.value.argument in kwargs


def test_policy_counts_needs_a_scored_frame() -> None:
    with pytest.raises(sm.InvalidArgument, match="_safemodel_policy"):
        smd.policy_counts(dd.from_pandas(policy_frame(10), npartitions=1))


def test_importing_safemodel_imports_no_engine() -> None:
    code = ("import sys, safemodel, safemodel.dask, safemodel.spark; "
            "print(sorted({'pyspark', 'dask', 'distributed'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_max_rejected_fails_the_call_with_counts(
    client: Any, strict_bundle: sm.ModelBundle, frame: pd.DataFrame
) -> None:
    ddf = dd.from_pandas(frame, npartitions=4)
    with pytest.raises(sm.TooManyRejected) as info:
        smd.score(strict_bundle, ddf, invalid="drop", method="predict", max_rejected=0.02)
    assert (info.value.rejected, info.value.rows, info.value.limit) == (800, 20_000, 400)
    assert info.value.reasons["island: unseen_category"] == 200
    scored = smd.score(strict_bundle, ddf, invalid="drop", method="predict", max_rejected=800)
    assert scored[smd.REJECTED_COLUMN].notnull().sum().compute() == 800


def test_multi_output_predictions_get_one_column_per_output(client: Any) -> None:
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.tree import DecisionTreeRegressor

    X = pd.DataFrame({"a": np.linspace(0, 1, 200), "b": np.linspace(1, 3, 200) ** 2})
    # Trees: outputs do not depend on the batch size, unlike a BLAS product's last bits.
    model = MultiOutputRegressor(DecisionTreeRegressor(random_state=0)).fit(
        X, np.c_[X["a"] + X["b"], X["a"] - X["b"]])
    bundle = sm.ModelBundle.from_training(model, X, name="multi")
    got = smd.score(bundle, dd.from_pandas(X, npartitions=3)).compute()
    np.testing.assert_array_equal(got[["prediction_0", "prediction_1"]].to_numpy(),
                                  model.predict(X))


@pytest.mark.parametrize("invalid", ["raise", "drop"])
def test_policy_column_names_every_action_of_each_row(
    lr_bundle: sm.ModelBundle, invalid: str
) -> None:
    # The engines write the policy column once per combination of actions; each row's
    # text must still be exactly what the report says happened to that row.
    from safemodel.integrations import plan

    frame = policy_frame(3_000, seed=5).drop(columns="id")
    frame.loc[[7, 8], "island"] = "Atlantis"
    frame.loc[[8, 9], "year"] = pd.NA
    frame.index = pd.RangeIndex(1_000, 4_000)  # a partition's index, not 0..n
    outputs = plan.output_columns(lr_bundle, "predict_proba", None)
    scores = plan.score_frame(lr_bundle, frame, "predict_proba", invalid, outputs)
    report = lr_bundle.score(frame, invalid=invalid).report
    expected: dict[int, dict[str, list[str]]] = {}
    for a in report.actions:
        for row in a.rows:
            expected.setdefault(row, {}).setdefault(a.column, []).append(a.action)
    texts = scores[plan.POLICY_COLUMN]
    assert texts.index.equals(frame.index)
    got = {i: json.loads(t) for i, t in enumerate(texts) if not pd.isna(t)}
    assert got == expected
    assert got[8]["island"] == ["unseen_to_missing", "imputed"]
    assert got[8]["year"] == ["imputed"]
    assert scores.dtypes[plan.POLICY_COLUMN] == pd.StringDtype("pyarrow")
