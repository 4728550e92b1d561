"""ModelBundle: building, scoring, golden verification and the save/load round trip."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from packaging.version import Version
from sklearn.linear_model import LogisticRegression

import safemodel as sm
from helpers import (
    CATEGORICAL,
    hgb_pipeline,
    lr_pipeline,
    penguins_frame,
    record,
    rf_regressor,
)

ROOT = Path(__file__).resolve().parents[1]


def test_from_training_records_every_method_and_the_edge_cases(lr_bundle: sm.ModelBundle) -> None:
    golden = lr_bundle.golden
    assert set(golden.outputs) == {"predict", "predict_proba", "decision_function"}
    assert lr_bundle.methods == ("predict", "predict_proba", "decision_function")
    n_cols = len(lr_bundle.contract.names)
    # one unseen value per categorical column, one missing value per column
    assert golden.edge_rows == len(CATEGORICAL) + n_cols
    assert len(golden.inputs) == 64 + golden.edge_rows
    edges = golden.inputs.iloc[64:]
    for col in lr_bundle.contract.names:
        assert edges[col].isna().sum() >= 1
    assert "__safemodel_unseen__" in set(edges["island"].dropna())
    # default policy: nothing rejected, the edge rows were handled and counted
    assert dict(golden.rejected) == {}
    assert golden.report["island"]["unseen_to_missing"] == 1
    assert len(golden.outputs["predict_proba"]) == len(golden.inputs)


def test_golden_sample_is_reproducible(lr_pipe, penguins) -> None:
    X, _ = penguins
    a = sm.ModelBundle.from_training(lr_pipe, X, name="a", random_state=3)
    b = sm.ModelBundle.from_training(lr_pipe, X, name="a", random_state=3)
    pd.testing.assert_frame_equal(a.golden.inputs, b.golden.inputs)
    assert a.fingerprint == b.fingerprint
    c = sm.ModelBundle.from_training(lr_pipe, X, name="a", random_state=4)
    assert a.fingerprint != c.fingerprint


def test_identity_and_environment(lr_bundle: sm.ModelBundle) -> None:
    assert lr_bundle.name == "penguins-lr"
    assert lr_bundle.version == Version("1.0.0")
    env = lr_bundle.environment
    for pkg in ("python", "scikit-learn", "numpy", "scipy", "pandas", "pandera", "cloudpickle"):
        assert env[pkg]
    assert len(lr_bundle.fingerprint) == 64


@pytest.mark.parametrize("version", ["not a version", "1.0.0.dev-x", ""])
def test_invalid_version_is_a_clear_error(lr_pipe, penguins, version: str) -> None:
    with pytest.raises(sm.SafeModelError, match="PEP 440"):
        sm.ModelBundle.from_training(lr_pipe, penguins[0], name="x", version=version)


def test_bad_arguments_are_clear(lr_pipe, penguins) -> None:
    X = penguins[0]
    with pytest.raises(sm.SafeModelError, match="name"):
        sm.ModelBundle.from_training(lr_pipe, X, name="a/b")
    with pytest.raises(sm.SafeModelError, match="golden_rows"):
        sm.ModelBundle.from_training(lr_pipe, X, name="a", golden_rows=0)
    with pytest.raises(sm.SafeModelError, match="JSON"):
        sm.ModelBundle.from_training(lr_pipe, X, name="a", metadata={"x": object()})
    with pytest.raises(sm.SafeModelError, match="none of"):
        sm.ModelBundle.from_training(object(), X, name="a")
    with pytest.raises(sm.SafeModelError, match="tolerances"):
        sm.ModelBundle.from_training(lr_pipe, X, name="a", rtol=-1.0)


def test_scoring_methods_exist_only_if_the_estimator_has_them(penguins) -> None:
    X, _ = penguins
    reg = rf_regressor(X)
    feats = X.drop(columns=["body_mass_g"])
    bundle = sm.ModelBundle.from_training(reg, feats, name="mass")
    assert bundle.methods == ("predict",)
    assert not hasattr(bundle, "predict_proba")
    with pytest.raises(AttributeError, match="has no predict_proba"):
        bundle.predict_proba(feats)


def test_predictions_equal_the_raw_estimator_on_clean_rows(lr_bundle, lr_pipe, penguins) -> None:
    X, _ = penguins
    clean = X.dropna()
    np.testing.assert_array_equal(lr_bundle.predict_proba(clean), lr_pipe.predict_proba(clean))
    np.testing.assert_array_equal(lr_bundle.predict(clean), lr_pipe.predict(clean))


def test_input_shapes_give_identical_results(lr_bundle, penguins) -> None:
    X, _ = penguins
    rows = X.dropna().iloc[:5]
    records = [record(rows, i) for i in range(5)]
    expected = lr_bundle.predict_proba(rows)
    np.testing.assert_array_equal(lr_bundle.predict_proba(records), expected)
    columns = {k: [r[k] for r in records] for k in records[0]}
    np.testing.assert_array_equal(lr_bundle.predict_proba(columns), expected)
    # One dict is one row: compare with the one-row frame, since BLAS may round a
    # one-row product differently from a five-row one (the estimator's doing, not ours).
    np.testing.assert_array_equal(lr_bundle.predict_proba(records[0]),
                                  lr_bundle.predict_proba(rows.iloc[:1]))


def test_empty_input_gives_empty_output_of_the_right_shape(lr_bundle, penguins) -> None:
    X, _ = penguins
    assert lr_bundle.predict_proba(X.iloc[:0]).shape == (0, 3)
    assert lr_bundle.predict(X.iloc[:0]).shape == (0,)
    with pytest.raises(sm.ContractViolation, match=r"missing column\(s\) .island."):
        lr_bundle.predict_proba([])


def test_verify_passes_and_reports(lr_bundle) -> None:
    report = lr_bundle.verify()
    assert report.ok
    assert report.to_dict()["ok"] is True
    assert "reproduce" in report.describe()


def _perturb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate a library upgrade that changes LogisticRegression's scores slightly."""
    original_proba = LogisticRegression.predict_proba
    original_decision = LogisticRegression.decision_function

    def proba(self, X):  # type: ignore[no-untyped-def]
        p = original_proba(self, X)
        p[:, 0] += 1e-9
        return p

    def decision(self, X):  # type: ignore[no-untyped-def]
        return original_decision(self, X) * (1 + 1e-12)

    monkeypatch.setattr(LogisticRegression, "predict_proba", proba)
    monkeypatch.setattr(LogisticRegression, "decision_function", decision)


def test_changed_scores_are_refused_with_a_diff(lr_bundle_path, monkeypatch) -> None:
    _perturb(monkeypatch)
    with pytest.raises(sm.GoldenMismatchError) as info:
        sm.load(lr_bundle_path)
    err = info.value
    methods = {m["method"]: m for m in err.mismatches}
    assert set(methods) == {"predict_proba", "decision_function"}
    proba = methods["predict_proba"]
    assert proba["rows_differing"] == proba["rows_total"]
    assert proba["max_abs_diff"] == pytest.approx(1e-9, rel=1e-3)
    assert proba["examples"][0]["row"] == 0
    assert len(proba["examples"]) == 5
    text = str(err)
    assert "predict_proba" in text
    assert "rows differ" in text
    assert "expected" in text
    assert "no recorded package version changed" in text
    # ... and what to do next, last
    assert text.endswith("rebuild with from_training(..., rtol=..., atol=...).")
    assert "safemodel diff" in text.splitlines()[-1]


def test_tolerances_are_recorded_and_used(lr_pipe, penguins, tmp_path, monkeypatch) -> None:
    bundle = sm.ModelBundle.from_training(lr_pipe, penguins[0], name="tol", rtol=1e-6, atol=1e-8)
    path = tmp_path / "tol.safemodel"
    bundle.save(path)
    _perturb(monkeypatch)
    loaded = sm.load(path)
    assert loaded.golden.rtol == 1e-6
    assert loaded.golden.atol == 1e-8


def test_environment_diff_is_named(lr_bundle_path, monkeypatch) -> None:
    _perturb(monkeypatch)
    from safemodel.core import bundle as bundle_module

    monkeypatch.setattr(bundle_module, "environment_diff",
                        lambda recorded: {"scikit-learn": (recorded["scikit-learn"], "99.0")})
    with pytest.raises(sm.GoldenMismatchError, match=r"scikit-learn .* -> 99\.0") as info:
        sm.load(lr_bundle_path)
    assert info.value.environment_diff["scikit-learn"][1] == "99.0"


def test_verify_false_loads_and_warns(lr_bundle_path, monkeypatch, caplog) -> None:
    _perturb(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="safemodel"):
        bundle = sm.load(lr_bundle_path, verify=False)
    assert not bundle.verify().ok
    assert "verify=False" in caplog.text


def test_strict_policy_records_rejections_and_verifies(strict_bundle, tmp_path) -> None:
    golden = strict_bundle.golden
    non_nullable = [c.name for c in strict_bundle.contract.columns if not c.nullable]
    assert non_nullable == ["island", "year"]  # penguins has gaps in the other columns
    # rejected: the two unseen categories and a missing value in each non-nullable column
    checks = sorted(c for checks in golden.rejected.values() for c in checks)
    assert checks == ["unexpected_missing"] * 2 + ["unseen_category"] * 2
    assert len(golden.outputs["predict"]) == len(golden.inputs) - 4
    path = tmp_path / "strict.safemodel"
    strict_bundle.save(path)
    assert sm.load(path).verify().ok


def test_a_policy_change_is_caught_by_verification(strict_bundle) -> None:
    relaxed = sm.ModelBundle(strict_bundle.estimator, strict_bundle.contract, sm.Policy(),
                             strict_bundle.golden, name="x", version="1")
    report = relaxed.verify()
    assert not report.ok
    assert any("recorded rejected" in d for d in report.policy_diff)


# ---------------------------------------------------------------- fresh processes

SCRIPT_BUILD = textwrap.dedent('''
    import sys
    import numpy as np
    import safemodel as sm
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import make_pipeline
    sys.path.insert(0, {root!r})
    from helpers import penguins_frame, lr_pipeline, hgb_pipeline, rf_regressor

    class LogMass(BaseEstimator, TransformerMixin):
        """Defined in __main__: must travel by value."""
        def fit(self, X, y=None):
            return self
        def transform(self, X):
            X = X.copy()
            X["body_mass_g"] = np.log(X["body_mass_g"])
            return X

    X, y = penguins_frame()
    # held-out rows the policy leaves untouched: identical to the raw estimator
    train, held = X.iloc[::2], X.iloc[1::2].dropna()
    models = {{
        "lr": (lr_pipeline(train, y.iloc[::2]), train, held),
        "hgb": (hgb_pipeline(train, y.iloc[::2]), train, held),
        "rf": (rf_regressor(train), train.drop(columns=["body_mass_g"]),
               held.drop(columns=["body_mass_g"])),
    }}
    main_pipe = make_pipeline(LogMass(), lr_pipeline(train, y.iloc[::2]))
    main_pipe.fit(train, y.iloc[::2])
    models["main"] = (main_pipe, train, held)
    for name, (est, fit_X, held_X) in models.items():
        bundle = sm.ModelBundle.from_training(est, fit_X, name=name, version="1.0.0")
        bundle.save(f"{{sys.argv[1]}}/{{name}}.safemodel")
        method = "predict_proba" if hasattr(est, "predict_proba") else "predict"
        np.save(f"{{sys.argv[1]}}/{{name}}.npy", getattr(est, method)(held_X))
        held_X.to_pickle(f"{{sys.argv[1]}}/{{name}}.held.pkl")
''')

SCRIPT_LOAD = textwrap.dedent('''
    import sys
    import numpy as np
    import pandas as pd
    import safemodel as sm
    for name in ("lr", "hgb", "rf", "main"):
        bundle = sm.load(f"{sys.argv[1]}/{name}.safemodel")
        held = pd.read_pickle(f"{sys.argv[1]}/{name}.held.pkl")
        method = "predict_proba" if "predict_proba" in bundle.methods else "predict"
        got = getattr(bundle, method)(held)
        want = np.load(f"{sys.argv[1]}/{name}.npy")
        assert np.array_equal(got, want), name
        print(name, "identical", got.shape)
''')


def test_fresh_process_predictions_are_identical(tmp_path: Path) -> None:
    """LR, HGB, RF regressor and a pipeline with a __main__-defined transformer."""
    script = SCRIPT_BUILD.format(root=str(ROOT / "tests"))
    subprocess.run([sys.executable, "-c", script, str(tmp_path)],
                   check=True, cwd=tmp_path, capture_output=True, text=True)
    # The loading process has neither the tests package nor the __main__ class.
    out = subprocess.run([sys.executable, "-c", SCRIPT_LOAD, str(tmp_path)], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("identical") == 4


def test_models_round_trip_in_process(tmp_path: Path, penguins) -> None:
    X, y = penguins
    for name, est in (("lr", lr_pipeline(X, y)), ("hgb", hgb_pipeline(X, y))):
        bundle = sm.ModelBundle.from_training(est, X, name=name, metadata={"auc": 0.9})
        path = tmp_path / f"{name}.safemodel"
        bundle.save(path)
        loaded = sm.load(path)
        assert loaded.fingerprint == bundle.fingerprint
        assert loaded.metadata == {"auc": 0.9}
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


def test_penguins_frame_helper_has_missing_values() -> None:
    X, _ = penguins_frame()
    assert X.isna().any().any()
    assert json.dumps(record(X, 3))


def test_each_scoring_call_can_emit_one_structured_record(lr_bundle, penguins, caplog) -> None:
    X = penguins[0].iloc[:7].assign(island="Atlantis")
    with caplog.at_level(logging.DEBUG, logger="safemodel.predictions"):
        lr_bundle.predict_proba(X)
    records = [r for r in caplog.records if r.name == "safemodel.predictions"]
    assert len(records) == 1
    data = records[0].safemodel  # type: ignore[attr-defined]
    assert data["bundle"] == "penguins-lr"
    assert data["version"] == "1.0.0"
    assert data["fingerprint"] == lr_bundle.fingerprint
    assert data["rows"] == 7
    assert data["method"] == "predict_proba"
    assert data["actions"]["island"] == {"unseen_to_missing": 7, "imputed": 7}
    assert data["latency_ms"] > 0
    assert "Atlantis" not in records[0].getMessage()
    json.dumps(data)


# ------------------------------------------------------- errors never leak raw


class _Breakable:
    """A classifier that scores like ``inner`` until ``broken`` is set."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.classes_ = inner.classes_  # type: ignore[attr-defined]
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise ArithmeticError("the estimator broke")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        return self.inner.predict(X)  # type: ignore[attr-defined,no-any-return]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check()
        return self.inner.predict_proba(X)  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("call", ["drift", "reference_scores", "predict_proba"])
def test_an_estimator_failure_is_a_scoring_error_in_drift_as_in_predict(
        lr_pipe, penguins, call: str) -> None:
    X = penguins[0]
    estimator = _Breakable(lr_pipe)
    bundle = sm.ModelBundle.from_training(estimator, X, name="breakable", golden_rows=8)
    estimator.broken = True
    with pytest.raises(sm.ScoringError, match="the estimator broke") as info:
        getattr(bundle, call)(X.head(40))
    assert isinstance(info.value.__cause__, ArithmeticError)
    assert info.value.method in ("predict", "predict_proba")


@pytest.mark.parametrize(("make", "argument"), [
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name="a/b"), "name"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name=".hidden"), "name"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name="a", golden_rows=0),
     "golden_rows"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name="a", rtol=float("nan")), "rtol"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name="a", max_categories=0),
     "max_categories"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X, name="a", policy="strict"), "policy"),
    (lambda X, pipe: sm.ModelBundle.from_training(pipe, X.head(0), name="a"), "X"),
    (lambda X, pipe: sm.ModelBundle.from_training(object(), X, name="a"), "estimator"),
    (lambda X, pipe: sm.Contract.from_schema({"x": "float64"}), "schema"),
    (lambda X, pipe: sm.Policy(missing="drop"), "missing"),
    (lambda X, pipe: sm.ColumnPolicy(unseen_category="ignore"), "unseen_category"),
    (lambda X, pipe: sm.Policy(columns={"island": "error"}), "columns"),
])
def test_bad_arguments_are_invalid_argument_errors(penguins, lr_pipe, make, argument) -> None:
    with pytest.raises(sm.InvalidArgument) as info:
        make(penguins[0], lr_pipe)
    assert isinstance(info.value, ValueError)
    assert info.value.argument == argument


def test_bad_call_arguments_are_invalid_argument_errors(lr_bundle, penguins) -> None:
    X = penguins[0].head(3)
    with pytest.raises(sm.InvalidArgument, match="'invalid' parameter") as info:
        lr_bundle.prepare(X, invalid="skip")
    assert info.value.found == "skip"
    with pytest.raises(sm.InvalidArgument, match="'method' parameter") as info:
        lr_bundle.score(X, method="transform")
    assert info.value.argument == "method"


def test_deeply_nested_metadata_is_an_invalid_argument(lr_pipe, penguins) -> None:
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(sm.InvalidArgument, match="JSON-ready") as info:
        sm.ModelBundle.from_training(lr_pipe, penguins[0], name="deep", golden_rows=4,
                                     metadata={"deep": nested})
    assert info.value.argument == "metadata"


def test_an_array_or_series_input_says_how_to_convert_it(lr_bundle: sm.ModelBundle,
                                                        penguins) -> None:
    X, _ = penguins
    with pytest.raises(sm.ContractViolation, match="got ndarray") as info:
        lr_bundle.predict_proba(X.to_numpy())
    assert str(info.value).endswith(
        "wrap it as pd.DataFrame(X, columns=bundle.contract.names) (columns in training "
        "order).")
    # ... and the advice works as written
    bundle = lr_bundle
    converted = pd.DataFrame(X.to_numpy(), columns=bundle.contract.names).astype(X.dtypes)
    assert (bundle.predict_proba(converted) == bundle.predict_proba(X)).all()

    row = X.iloc[0]
    with pytest.raises(sm.ContractViolation, match="got Series") as info:
        lr_bundle.predict(row)
    assert "pass X.to_frame().T (or X.to_dict())" in str(info.value)
    assert lr_bundle.predict(row.to_dict()) == lr_bundle.predict(X.head(1))


def test_a_rejected_value_says_which_policy_setting_would_accept_it(
        strict_bundle: sm.ModelBundle, penguins) -> None:
    X, _ = penguins
    bad = X.head(3).assign(island=["Atlantis", "Biscoe", "Dream"])
    required = next(c.name for c in strict_bundle.contract.columns
                    if not c.nullable and c.name != "island")
    bad.loc[1, required] = None
    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict(bad)
    message = str(info.value)
    assert "'Atlantis' (row 0)" in message
    assert message.endswith("rebuild the bundle with a policy that handles them "
                            "(unseen_category='missing', missing='impute').")
    assert "Add the missing column" not in message

    with pytest.raises(sm.ContractViolation) as info:
        strict_bundle.predict(X.head(3).assign(extra=1))
    assert "unexpected column(s) 'extra'." in str(info.value)
    assert str(info.value).endswith("(extra_columns='drop').")


@pytest.mark.parametrize(("change", "acted"), [
    ({}, False), ({"island": "Atlantis"}, True), ({"island": None}, True),
    # sex and the measurements had missing values in training: a missing one is
    # expected, not acted on.
    ({"sex": None}, False), ({"sex": "unknown"}, True),
    ({"bill_length_mm": float("nan")}, False)])
def test_one_row_is_prepared_as_it_is_within_a_batch(
        lr_bundle: sm.ModelBundle, penguins: tuple[pd.DataFrame, pd.Series],
        change: dict, acted: bool) -> None:
    """Issue 18: one row takes its own fast path; the policy acts on it exactly as on
    the same row in a batch."""
    row = penguins[0].iloc[[0]].reset_index(drop=True)
    for column, value in change.items():
        row[column] = pd.array([value], dtype=row[column].dtype)
    one = lr_bundle.prepare(row)
    two = lr_bundle.prepare(pd.concat([row, row], ignore_index=True))
    pd.testing.assert_frame_equal(one.frame, two.frame.iloc[:1], check_exact=True)
    assert {c: {a: 2 * n for a, n in acts.items()} for c, acts in one.report.counts().items()
            } == two.report.counts()
    assert bool(one.report.counts()) == acted


@pytest.mark.parametrize("change", [{"bill_length_mm": float("inf")},
                                    {"body_mass_g": -float("inf")}])
def test_one_infinite_value_is_refused_as_within_a_batch(
        lr_bundle: sm.ModelBundle, penguins: tuple[pd.DataFrame, pd.Series],
        change: dict) -> None:
    """The one-row fast path reads the scalar: an infinity training never held is
    refused there as in a batch (the contract records a finite range)."""
    row = penguins[0].iloc[[0]].reset_index(drop=True)
    for column, value in change.items():
        row[column] = pd.array([value], dtype=row[column].dtype)
    failures = []
    for frame in (row, pd.concat([row, row], ignore_index=True)):
        with pytest.raises(sm.ContractViolation) as info:
            lr_bundle.prepare(frame)
        failures.append({(f.column, f.check, f.row) for f in info.value.failures if f.row == 0})
    assert failures[0] == failures[1] == {(next(iter(change)), "non_finite", 0)}
