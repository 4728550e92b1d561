"""safemodel.mlflow against a real MLflow: a local tracking store and registry in a
temporary folder, stock ``mlflow.pyfunc.load_model``, and the reverse recipe."""

from __future__ import annotations

import os

# MLflow reads these when it is imported; the tests never talk to a network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
# The file store (no database needed) is opt-in since MLflow 3.7.
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

import shutil
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import safemodel as sm
from helpers import penguins_frame, policy_frame

pytest.importorskip("mlflow")
import mlflow
import mlflow.pyfunc
import mlflow.sklearn

import safemodel.mlflow as smm


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A file tracking store and model registry in a temporary folder."""
    uri = (tmp_path_factory.mktemp("mlflow") / "mlruns").as_uri()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def registered(tracking: str, lr_bundle: sm.ModelBundle) -> Any:
    """``lr_bundle`` logged, registered as ``penguins`` and aliased ``champion``."""
    with mlflow.start_run():
        info = smm.log_model(lr_bundle, "model", registered_model_name="penguins")
    mlflow.MlflowClient().set_registered_model_alias("penguins", "champion", "1")
    return info


def test_import_safemodel_does_not_import_mlflow() -> None:
    code = "import sys, safemodel; assert 'mlflow' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_pyfunc_by_alias_scores_bit_for_bit_like_the_bundle(
    registered: Any, lr_bundle: sm.ModelBundle
) -> None:
    model = mlflow.pyfunc.load_model("models:/penguins@champion")
    # Unseen islands and sexes, missing islands and years (nullable Int64 with pd.NA).
    frame = policy_frame(2_000).drop(columns="id")
    assert frame["island"].eq("Atlantis").any()
    assert frame["year"].isna().any()
    out = model.predict(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["Adelie", "Chinstrap", "Gentoo"]
    expected = lr_bundle.predict_proba(frame)
    assert out.to_numpy().tobytes() == expected.tobytes()
    # The same rows as JSON-like records (None for missing), as a REST client sends them.
    records = frame.head(200).astype(object).where(frame.head(200).notna(), None)
    assert np.array_equal(model.predict(records).to_numpy(), expected[:200])
    assert model.get_raw_model().fingerprint == lr_bundle.fingerprint


def test_signature_and_input_example_come_from_the_contract_and_golden_rows(
    registered: Any, lr_bundle: sm.ModelBundle
) -> None:
    signature = registered.signature
    assert signature.inputs.input_names() == list(lr_bundle.contract.names)
    types = {c.name: c.to_dict()["type"] for c in signature.inputs.inputs}
    assert types["island"] == "string"
    assert types["bill_length_mm"] == "double"
    assert types["year"] == "any"  # a missing year must reach the policy, see _column_type
    assert signature.outputs.input_names() == ["Adelie", "Chinstrap", "Gentoo"]
    model = mlflow.pyfunc.load_model(registered.model_uri)
    example = model.input_example
    golden = lr_bundle.golden.inputs.head(len(example)).reset_index(drop=True)
    assert list(example.columns) == list(golden.columns)
    assert np.array_equal(lr_bundle.predict_proba(example), lr_bundle.predict_proba(golden))
    schema = model.metadata.metadata["safemodel"]["input_json_schema"]
    assert schema == lr_bundle.contract.to_json_schema()


@pytest.mark.parametrize("uri", ["models:/penguins@champion", "models:/penguins/1", "run"])
def test_load_model_returns_the_verified_bundle(
    registered: Any, lr_bundle: sm.ModelBundle, uri: str
) -> None:
    if uri == "run":
        uri = f"runs:/{registered.run_id}/model"
    bundle = smm.load_model(uri)
    assert isinstance(bundle, sm.ModelBundle)
    assert bundle.fingerprint == lr_bundle.fingerprint


def test_a_process_whose_estimator_scores_differently_is_refused(
    registered: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = LogisticRegression.predict_proba

    def predict_proba(self: LogisticRegression, X: Any) -> np.ndarray:
        return original(self, X) * (1 + 1e-9)

    monkeypatch.setattr(LogisticRegression, "predict_proba", predict_proba)
    with pytest.raises(sm.GoldenMismatchError, match="golden outputs do not reproduce") as caught:
        mlflow.pyfunc.load_model("models:/penguins@champion")
    assert caught.value.mismatches[0]["max_rel_diff"] == pytest.approx(1e-9, rel=1e-3)
    # Nothing a loading caller passes switches verification off.
    with pytest.raises(sm.GoldenMismatchError):
        mlflow.pyfunc.load_model("models:/penguins@champion", model_config={"verify": False})
    with pytest.raises(sm.GoldenMismatchError):
        smm.load_model("models:/penguins@champion")


def test_a_changed_bundle_file_is_refused_before_unpickling(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    smm.save_model(lr_bundle, folder)
    bundle_file = folder / smm.BUNDLE_FILE
    # Swap the estimator for another one: its bytes no longer match the manifest.
    other = tmp_path / "other.safemodel"
    X, y = penguins_frame()
    sm.ModelBundle.from_training(LogisticRegression(max_iter=50).fit(
        X[["bill_length_mm"]].fillna(40.0), y), X[["bill_length_mm"]].fillna(40.0),
        name="other").save(other)
    with zipfile.ZipFile(other) as zf:
        estimator = zf.read("estimator.pkl")
    original = zipfile.ZipFile(bundle_file).infolist()
    data = {i.filename: zipfile.ZipFile(bundle_file).read(i) for i in original}
    data["estimator.pkl"] = estimator
    with zipfile.ZipFile(bundle_file, "w") as zf:
        for name, content in data.items():
            zf.writestr(name, content)
    with pytest.raises(sm.IntegrityError):
        mlflow.pyfunc.load_model(str(folder))


def test_policy_errors_reach_the_pyfunc_caller(
    strict_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    smm.save_model(strict_bundle, tmp_path / "strict", method="predict")
    model = mlflow.pyfunc.load_model(str(tmp_path / "strict"))
    frame = policy_frame(300).drop(columns="id")
    with pytest.raises(sm.ContractViolation) as caught:
        model.predict(frame)
    assert {f.column for f in caught.value.failures} >= {"island", "sex", "year"}
    clean = frame[frame.index.isin(strict_bundle.score(frame, invalid="drop").rows)]
    assert np.array_equal(model.predict(clean), strict_bundle.predict(clean))


def test_methods_chosen_at_logging_time(lr_bundle: sm.ModelBundle, tmp_path: Path) -> None:
    frame = policy_frame(500).drop(columns="id")
    for method in ("predict", "decision_function"):
        smm.save_model(lr_bundle, tmp_path / method, method=method)
        out = mlflow.pyfunc.load_model(str(tmp_path / method)).predict(frame)
        expected = getattr(lr_bundle, method)(frame)
        got = out.to_numpy() if isinstance(out, pd.DataFrame) else np.asarray(out)
        assert np.array_equal(got, expected)
    assert list(out.columns) == ["Adelie", "Chinstrap", "Gentoo"]


def test_a_bundle_file_is_copied_byte_for_byte(lr_bundle_path: Path, tmp_path: Path) -> None:
    smm.save_model(lr_bundle_path, tmp_path / "model")
    assert (tmp_path / "model" / smm.BUNDLE_FILE).read_bytes() == lr_bundle_path.read_bytes()
    requirements = (tmp_path / "model" / "requirements.txt").read_text().splitlines()
    assert f"scikit-learn=={sm.load(lr_bundle_path).environment['scikit-learn']}" in requirements


def test_bad_arguments(lr_bundle: sm.ModelBundle, tmp_path: Path) -> None:
    with pytest.raises(sm.InvalidArgument, match="'method' parameter"):
        smm.save_model(lr_bundle, tmp_path / "m", method="transform")
    assert not (tmp_path / "m").exists()
    with pytest.raises(sm.InvalidArgument, match="'bundle' parameter"):
        smm.save_model(object(), tmp_path / "m")  # type: ignore[arg-type]
    smm.save_model(lr_bundle, tmp_path / "m")
    with pytest.raises(sm.InvalidArgument, match="already exists"):
        smm.save_model(lr_bundle, tmp_path / "m")
    with pytest.raises(sm.InvalidArgument, match="'options' parameter"):
        smm.load_model(str(tmp_path / "m"), verify=False)


def test_reverse_recipe_from_an_mlflow_sklearn_model(
    tracking: str, lr_pipe: Pipeline
) -> None:
    X, _ = penguins_frame()
    with mlflow.start_run():
        # cloudpickle: MLflow's default (skops) needs skops, not a dependency of ours.
        info = mlflow.sklearn.log_model(lr_pipe, name="sk", serialization_format="cloudpickle")
    # The recipe of docs/mlflow.md:
    estimator = mlflow.sklearn.load_model(info.model_uri)
    bundle = sm.ModelBundle.from_training(estimator, X, name="penguins-from-mlflow",
                                          metadata={"mlflow_model_uri": info.model_uri})
    assert np.array_equal(bundle.predict_proba(X), lr_pipe.predict_proba(X))
    with pytest.raises(sm.BundleFormatError, match="no 'safemodel' flavor"):
        smm.load_model(info.model_uri)


# --------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs Java")
    from pyspark.sql import SparkSession

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYSPARK_PYTHON", sys.executable)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("safemodel-mlflow-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


# PySpark 4.x warns on every pandas conversion that it does not fully support pandas 3.
_pandas3_warning = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas >= 3.0.0:FutureWarning")


def _udf(spark: Any, uri: str) -> Any:
    return mlflow.pyfunc.spark_udf(
        spark, uri, env_manager="local",
        result_type="Adelie double, Chinstrap double, Gentoo double")


@pytest.mark.spark
@pytest.mark.slow
@_pandas3_warning
def test_spark_udf_scores_like_safemodel_spark(
    spark: Any, registered: Any, lr_bundle: sm.ModelBundle
) -> None:
    import safemodel.spark as sms

    frame = policy_frame(4_000)
    sdf = spark.createDataFrame(frame).repartition(4)
    columns = list(lr_bundle.contract.names)
    scored = sdf.withColumn("p", _udf(spark, "models:/penguins@champion")(*columns))
    got = (scored.select("id", "p.*").toPandas().sort_values("id").reset_index(drop=True))
    reference = (sms.score(lr_bundle, sdf).select("id", "proba_Adelie", "proba_Chinstrap",
                                                   "proba_Gentoo")
                 .toPandas().sort_values("id").reset_index(drop=True))
    assert got[["Adelie", "Chinstrap", "Gentoo"]].to_numpy().tobytes() == (
        reference[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy().tobytes())
    local = lr_bundle.predict_proba(frame.drop(columns="id"))
    assert np.array_equal(got[["Adelie", "Chinstrap", "Gentoo"]].to_numpy(), local)


@pytest.mark.spark
@pytest.mark.slow
@_pandas3_warning
def test_spark_udf_refuses_a_diverging_executor(
    spark: Any, registered: Any, lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    from pyspark.errors import PythonException

    # Executors whose scikit-learn scores 1e-9 higher (see tests/test_spark.py).
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression

        _original = LogisticRegression.predict_proba

        def predict_proba(self, X):
            return _original(self, X) * (1 + 1e-9)

        LogisticRegression.predict_proba = predict_proba
    """))
    sdf = spark.createDataFrame(policy_frame(400)).repartition(2)
    columns = list(lr_bundle.contract.names)
    udf = _udf(spark, "models:/penguins@champion")  # verified on the driver: it reproduces
    environment = spark.sparkContext.environment
    saved = dict(environment)
    environment["PYTHONPATH"] = str(tmp_path)  # a separate pool of Python workers
    try:
        with pytest.raises(PythonException, match="GoldenMismatchError"):
            sdf.withColumn("p", udf(*columns)).select("p.*").collect()
    finally:
        environment.clear()
        environment.update(saved)
