"""safemodel.spark on a real local Spark (``local[2]``): same results as one process,
verification once per executor Python process, policy counts on the driver."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

import safemodel as sm
import safemodel.spark as sms
from helpers import expected_counts, penguins_frame, policy_frame

pytest.importorskip("pyspark")
from pyspark.errors import PythonException
from pyspark.sql import DataFrame, SparkSession

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None and "JAVA_HOME" not in os.environ,
                       reason="Spark needs Java"),
    # PySpark 4.x warns on every pandas conversion that it does not fully support
    # pandas 3 yet; these tests are what shows the conversions we rely on are exact.
    pytest.mark.filterwarnings(
        "ignore:PySpark does not yet fully support pandas >= 3.0.0:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    with pytest.MonkeyPatch.context() as mp:
        # Python workers must run this interpreter (where safemodel is installed), not
        # whatever `python3` is first on PATH.
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("safemodel-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            # Several Arrow batches per task, so "once per process" means something.
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


def collect(frame: DataFrame) -> pd.DataFrame:
    return frame.toPandas().sort_values("id").reset_index(drop=True)


@pytest.fixture(scope="module")
def policy_sdf(spark: SparkSession) -> tuple[pd.DataFrame, DataFrame]:
    frame = policy_frame(20_000)
    return frame, spark.createDataFrame(frame).repartition(8)


@pytest.mark.parametrize(
    ("name", "method"),
    [("lr_bundle", "predict_proba"), ("lr_bundle", "predict"),
     ("lr_bundle", "decision_function"), ("hgb_bundle", "predict_proba")],
)
def test_outputs_and_policy_counts_equal_single_process(
    request: pytest.FixtureRequest, policy_sdf: tuple[pd.DataFrame, DataFrame], name: str,
    method: str,
) -> None:
    frame, sdf = policy_sdf
    bundle: sm.ModelBundle = request.getfixturevalue(name)
    scored = sms.score(bundle, sdf, method=method).cache()  # counted below without rescoring
    got = collect(scored)

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
    assert sms.REJECTED_COLUMN not in got

    report = bundle.score(features, method=method).report
    assert sms.policy_counts(scored) == expected_counts(report)
    assert expected_counts(report)["island"] == {"unseen_to_missing": 200, "imputed": 400}
    policy = got[sms.POLICY_COLUMN]
    atlantis = frame["island"].eq("Atlantis").to_numpy()
    assert {json.loads(t) == {"island": ["unseen_to_missing", "imputed"]}
            for t in policy[atlantis]} == {True}
    edited = set(report.rejected_rows).union(*(a.rows for a in report.actions))
    assert policy.notna().to_numpy().nonzero()[0].tolist() == sorted(edited)
    scored.unpersist()


def test_invalid_drop_keeps_rejected_rows_with_null_outputs_and_reasons(
    strict_bundle: sm.ModelBundle, policy_sdf: tuple[pd.DataFrame, DataFrame]
) -> None:
    frame, sdf = policy_sdf
    scored = sms.score(strict_bundle, sdf, invalid="drop", output_col="p").cache()
    got = collect(scored)
    expected = strict_bundle.score(frame.drop(columns="id"), invalid="drop")
    proba = got[["p_Adelie", "p_Chinstrap", "p_Gentoo"]].to_numpy()
    np.testing.assert_array_equal(proba[expected.rows], expected.outputs)
    rejected = np.setdiff1d(np.arange(len(frame)), expected.rows)
    assert len(rejected) == 800
    assert np.isnan(proba[rejected]).all()
    assert got[sms.REJECTED_COLUMN].notna().to_numpy().nonzero()[0].tolist() == rejected.tolist()
    atlantis = int(frame.index[frame["island"].eq("Atlantis")][0])
    assert json.loads(got[sms.REJECTED_COLUMN][atlantis]) == [
        {"column": "island", "check": "unseen_category", "value": "Atlantis"}]
    assert sms.policy_counts(scored) == expected_counts(expected.report) == {
        "island": {"rejected:unexpected_missing": 200, "rejected:unseen_category": 200},
        "sex": {"rejected:unseen_category": 200},
        "year": {"rejected:unexpected_missing": 200},
    }
    scored.unpersist()


def test_policy_counts_of_the_written_result(
    spark: SparkSession, lr_bundle_path: Path, policy_sdf: tuple[pd.DataFrame, DataFrame],
    tmp_path: Path,
) -> None:
    frame, sdf = policy_sdf
    sms.score(lr_bundle_path, sdf, invalid="drop").write.parquet(str(tmp_path / "scores"))
    written = spark.read.parquet(str(tmp_path / "scores"))
    report = sm.load(lr_bundle_path).score(frame.drop(columns="id"), invalid="drop").report
    assert sms.policy_counts(written) == expected_counts(report)
    assert written.where(written[sms.REJECTED_COLUMN].isNotNull()).count() == 0


def _loads_per_process(spark: SparkSession) -> dict[int, dict[str, int]]:
    def report(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for _ in batches:
            pass
        from safemodel.integrations import plan as in_worker

        loads = json.dumps(in_worker.load_counts())
        yield pd.DataFrame({"pid": [os.getpid()], "loads": [loads]})

    rows = spark.range(0, 16, 1, 16).mapInPandas(report, "pid long, loads string").collect()
    return {r["pid"]: json.loads(r["loads"]) for r in rows}


def test_each_executor_process_verifies_once(
    spark: SparkSession, lr_pipe: Pipeline, policy_sdf: tuple[pd.DataFrame, DataFrame]
) -> None:
    X, _ = penguins_frame()
    bundle = sm.ModelBundle.from_training(lr_pipe, X, name="once", version="3.0.0")
    _, sdf = policy_sdf
    scored = sms.score(bundle, sdf)
    assert scored.count() == 20_000
    assert scored.where(scored["proba_Adelie"].isNull()).count() == 0  # scores again
    loads = [p.get(bundle.fingerprint, 0) for p in _loads_per_process(spark).values()]
    assert 1 in loads
    assert set(loads) <= {0, 1}  # 16 tasks x 20 batches, at most one load per process


def test_diverging_executor_environment_is_refused_on_the_driver(
    spark: SparkSession, lr_pipe: Pipeline, policy_sdf: tuple[pd.DataFrame, DataFrame],
    tmp_path: Path,
) -> None:
    # Executors whose scikit-learn scores 1e-9 higher: a site customisation that only
    # Python workers started with this environment load.
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression

        _original = LogisticRegression.predict_proba

        def predict_proba(self, X):
            return _original(self, X) * (1 + 1e-9)

        LogisticRegression.predict_proba = predict_proba
    """))
    X, _ = penguins_frame()
    bundle = sm.ModelBundle.from_training(lr_pipe, X, name="diverge", version="2.0.0")
    _, sdf = policy_sdf
    environment = spark.sparkContext.environment
    saved = dict(environment)
    environment["PYTHONPATH"] = str(tmp_path)  # a separate pool of Python workers
    try:
        with pytest.raises(sm.GoldenMismatchError, match="golden outputs do not reproduce"
                           ) as caught:
            sms.score(bundle, sdf)
    finally:
        environment.clear()
        environment.update(saved)
    error = caught.value
    assert error.method == "predict_proba"
    assert error.mismatches[0]["rows_differing"] > 0
    assert error.mismatches[0]["max_rel_diff"] == pytest.approx(1e-9, rel=1e-3)
    assert any("Spark executor" in note for note in error.__notes__)


def test_contract_violation_with_invalid_raise_fails_the_job(
    spark: SparkSession, strict_bundle: sm.ModelBundle
) -> None:
    frame = policy_frame(200)
    scored = sms.score(strict_bundle, spark.createDataFrame(frame))
    with pytest.raises(PythonException, match="ContractViolation"):
        scored.collect()


def test_missing_contract_columns_are_named_before_any_job(
    spark: SparkSession, lr_bundle: sm.ModelBundle
) -> None:
    sdf = spark.createDataFrame(policy_frame(10).drop(columns=["island", "year"]))
    with pytest.raises(sm.ContractViolation) as caught:
        sms.score(lr_bundle, sdf)
    assert [(f.column, f.check) for f in caught.value.failures] == [
        ("island", "missing_column"), ("year", "missing_column")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"method": "predict", "output_col": "island"}, "already has column"),
     ({"method": "transform"}, "'method' parameter"),
     ({"invalid": "skip"}, "'invalid' parameter")],
)
def test_bad_arguments(
    spark: SparkSession, lr_bundle: sm.ModelBundle, kwargs: dict[str, Any], message: str
) -> None:
    sdf = spark.createDataFrame(policy_frame(10))
    with pytest.raises(sm.InvalidArgument, match=message) as caught:
        sms.score(lr_bundle, sdf, **kwargs)
    assert caught.value.argument in kwargs


def test_policy_counts_needs_a_scored_frame(spark: SparkSession) -> None:
    with pytest.raises(sm.InvalidArgument, match="_safemodel_policy"):
        sms.policy_counts(spark.createDataFrame(policy_frame(10)))


def test_max_rejected_fails_the_call_with_counts(
    strict_bundle: sm.ModelBundle, policy_sdf: tuple[pd.DataFrame, DataFrame]
) -> None:
    _, sdf = policy_sdf
    with pytest.raises(sm.TooManyRejected) as info:
        sms.score(strict_bundle, sdf, invalid="drop", max_rejected=0.02)
    assert (info.value.rejected, info.value.rows, info.value.limit) == (800, 20_000, 400)
    assert info.value.reasons["island: unseen_category"] == 200


def test_multi_output_predictions_get_one_column_per_output(spark: SparkSession) -> None:
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.tree import DecisionTreeRegressor

    X = pd.DataFrame({"a": np.linspace(0, 1, 200), "b": np.linspace(1, 3, 200) ** 2})
    # Trees: outputs do not depend on the batch size, unlike a BLAS product's last bits.
    model = MultiOutputRegressor(DecisionTreeRegressor(random_state=0)).fit(
        X, np.c_[X["a"] + X["b"], X["a"] - X["b"]])
    bundle = sm.ModelBundle.from_training(model, X, name="multi")
    got = collect(sms.score(bundle, spark.createDataFrame(X.assign(id=range(len(X))))))
    np.testing.assert_array_equal(got[["prediction_0", "prediction_1"]].to_numpy(),
                                  model.predict(X))
