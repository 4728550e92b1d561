"""The ``safemodel`` command line, run in-process through ``main(argv) -> int``."""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import safemodel as sm
from helpers import CATEGORICAL, lr_pipeline
from safemodel.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from safemodel.cli._common import EXIT_BROKEN_PIPE

NAMES = ["adelie", "biscoe", "chinstrap", "dream", "gentoo"]
VERSIONS = ["0.9.0", "1.0.0", "1.2.0", "1.9.0", "1.10.0", "2.0.0rc1"]


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The error output: exactly one line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("safemodel: error: ")
    return lines[0]


def stale(bundle: sm.ModelBundle, X: pd.DataFrame, y: pd.Series, version: str) -> sm.ModelBundle:
    """Estimator re-trained after the golden outputs were recorded: they do not reproduce."""
    sample = X.sample(frac=0.6, random_state=99)
    other = lr_pipeline(sample, y.loc[sample.index])
    return sm.ModelBundle(other, bundle.contract, bundle.policy, bundle.golden, name=bundle.name,
                          version=version)


@pytest.fixture(scope="module")
def stale_path(tmp_path_factory: pytest.TempPathFactory, lr_bundle: sm.ModelBundle,
               penguins: tuple[pd.DataFrame, pd.Series]) -> Path:
    path = tmp_path_factory.mktemp("stale") / "stale.safemodel"
    stale(lr_bundle, *penguins, version="1.0.1").save(path)
    return path


# ---------------------------------------------------------------- basics


def test_help_version_and_usage_errors(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == EXIT_OK
    assert "inspect" in out
    assert "Exit codes" in out
    code, out, _ = run(capsys, "--version")
    assert code == EXIT_OK
    assert out.startswith("safemodel ")
    monkeypatch.setattr(sys, "argv", ["safemodel", "--version"])
    assert main() == EXIT_OK                              # argv defaults to sys.argv[1:]
    capsys.readouterr()
    for argv in ([], ["verify"], ["frobnicate"], ["store", "x", "launch"],
                 ["verify", "x.safemodel", "--allowed-modules", ","]):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_USAGE, argv
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith("safemodel: error: ")


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "safemodel", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert done.stdout.startswith("safemodel ")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
@pytest.mark.parametrize("argv", [["--json", "inspect"], ["inspect"]])
def test_a_reader_that_leaves_ends_the_cli_quietly(lr_bundle_path: Path,
                                                   argv: list[str]) -> None:
    """``safemodel --json inspect m | head``: the reader is gone before the CLI writes;
    no traceback, no 'Exception ignored' at exit, the code a shell gives SIGPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, whatever the output's size
    try:
        done = subprocess.run([sys.executable, "-m", "safemodel", *argv, str(lr_bundle_path)],
                              stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == EXIT_BROKEN_PIPE == 141


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell")
def test_piping_into_head_prints_no_traceback(lr_bundle_path: Path) -> None:
    done = subprocess.run(
        f"{shlex.quote(sys.executable)} -m safemodel --json inspect "
        f"{shlex.quote(str(lr_bundle_path))} | head -n 2",
        shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0  # the pipeline's status is head's
    assert done.stdout.splitlines()[0] == "{"
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr


# --------------------------------------------------------------- inspect


def test_inspect_shows_everything_without_unpickling(
    capsys: pytest.CaptureFixture[str], lr_bundle_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("inspect must never unpickle")

    monkeypatch.setattr(cloudpickle, "loads", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    code, out, err = run(capsys, "inspect", lr_bundle_path)
    assert code == EXIT_OK, err
    info = sm.inspect(lr_bundle_path)
    for text in ("penguins-lr 1.0.0", info.fingerprint, "format", "scikit-learn",
                 "Contract: 7 columns", "island", "Biscoe, Dream, Torgersen", "nullable",
                 "unseen_category", "impute", "Golden outputs", "edge cases",
                 "sklearn.linear_model._logistic.LogisticRegression"):
        assert text in out, text
    code, out, _ = run(capsys, "inspect", lr_bundle_path, "--json")
    data = json.loads(out)
    assert data["fingerprint"] == info.fingerprint
    assert {c["name"] for c in data["contract"]["columns"]} >= set(CATEGORICAL)
    assert data["policy"]["missing"] == "impute"
    assert data["pickle_references"]


def test_inspect_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = tmp_path / "notes.safemodel"
    text.write_text("not a zip")
    code, _, err = run(capsys, "inspect", text)
    assert code == EXIT_USAGE
    assert "not a readable zip" in one_line_error(err)
    code, _, err = run(capsys, "inspect", tmp_path / "missing.safemodel")
    assert code == EXIT_USAGE
    assert "does not exist" in one_line_error(err)
    code, out, err = run(capsys, "inspect", text, "--json")
    assert code == EXIT_USAGE
    assert json.loads(out)["error"] == "BundleFormatError"
    code, _, err = run(capsys, "--debug", "inspect", text)
    assert code == EXIT_USAGE
    assert "Traceback" in err


# ---------------------------------------------------------------- verify


def test_verify_ok(capsys: pytest.CaptureFixture[str], lr_bundle_path: Path) -> None:
    code, out, err = run(capsys, "verify", lr_bundle_path)
    assert code == EXIT_OK, err
    assert "OK" in out
    assert "golden" in out
    code, out, _ = run(capsys, "verify", lr_bundle_path, "--json")
    data = json.loads(out)
    assert data["ok"] is True
    assert data["mismatches"] == []


def test_verify_fails_with_the_diff_when_outputs_change(
    capsys: pytest.CaptureFixture[str], stale_path: Path,
) -> None:
    code, out, err = run(capsys, "verify", stale_path)
    assert code == EXIT_FAILED
    assert "do not reproduce" in out
    assert "rows differ" in out
    assert "expected" in out
    assert "verification failed" in one_line_error(err)
    code, out, _ = run(capsys, "verify", stale_path, "--json")
    data = json.loads(out)
    assert code == EXIT_FAILED
    assert data["ok"] is False
    assert {m["method"] for m in data["mismatches"]} >= {"predict_proba"}


def test_verify_fails_on_a_tampered_file(capsys: pytest.CaptureFixture[str],
                                         lr_bundle_path: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.safemodel"
    with zipfile.ZipFile(lr_bundle_path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "policy.json":
                data = data.replace(b'"impute"', b'"error"')
            dst.writestr(info, data)
    code, _, err = run(capsys, "verify", tampered)
    assert code == EXIT_FAILED
    assert "policy.json" in one_line_error(err)
    # A failed integrity check is exit 1 whichever command meets it (diff and drift
    # exited 2, as for a usage error).
    data = tmp_path / "rows.csv"
    data.write_text("island\nDream\n")
    for argv in (["diff", lr_bundle_path, tampered], ["drift", tampered, data]):
        code, _, err = run(capsys, *argv)
        assert code == EXIT_FAILED, argv
        assert "policy.json" in one_line_error(err)


def test_verify_allowed_modules_and_signing_key(
    capsys: pytest.CaptureFixture[str], lr_bundle: sm.ModelBundle, lr_bundle_path: Path,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SAFEMODEL_SIGNING_KEY", raising=False)
    code, _, err = run(capsys, "verify", lr_bundle_path, "--allowed-modules", "numpy,builtins")
    assert code == EXIT_FAILED
    assert "allowed modules" in one_line_error(err)
    code, _, err = run(capsys, "verify", lr_bundle_path, "--allowed-modules", "default, mine")
    assert code == EXIT_OK, err

    signed = tmp_path / "signed.safemodel"
    lr_bundle.save(signed, signing_key="hmac:team-secret")
    assert run(capsys, "verify", signed, "--signing-key", "hmac:team-secret")[0] == EXIT_OK
    code, _, err = run(capsys, "verify", signed, "--signing-key", "hmac:other-secret")
    assert code == EXIT_FAILED
    assert "signature" in one_line_error(err)
    code, _, err = run(capsys, "verify", lr_bundle_path, "--signing-key", "hmac:team-secret")
    assert code == EXIT_FAILED                                  # unsigned
    key_file = tmp_path / "key.txt"
    key_file.write_text("hmac:team-secret\n")
    assert run(capsys, "verify", signed, "--signing-key", f"@{key_file}")[0] == EXIT_OK
    code, _, err = run(capsys, "verify", signed, "--signing-key", f"@{tmp_path / 'nope'}")
    assert code == EXIT_USAGE
    assert "signing key file" in one_line_error(err)
    monkeypatch.setenv("SAFEMODEL_SIGNING_KEY", "hmac:other-secret")
    assert run(capsys, "verify", signed)[0] == EXIT_FAILED
    monkeypatch.setenv("SAFEMODEL_SIGNING_KEY", "hmac:team-secret")
    assert run(capsys, "verify", signed)[0] == EXIT_OK


# ------------------------------------------------------------------ diff


def narrow_pipeline(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    pre = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), CATEGORICAL),
    ])
    return make_pipeline(pre, LogisticRegression(C=0.05)).fit(X, y)


def test_diff_contract_policy_environment_and_outputs(
    capsys: pytest.CaptureFixture[str], lr_bundle_path: Path, tmp_path: Path,
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = penguins
    keep = X["island"] != "Torgersen"
    X2 = X[keep].drop(columns=["year"])
    other = sm.ModelBundle.from_training(narrow_pipeline(X2, y[keep]), X2, name="penguins-lr",
                                         version="2.0.0", golden_rows=16,
                                         policy=sm.Policy(unseen_category="most_frequent"))
    b_path = tmp_path / "b.safemodel"
    other.save(b_path)

    code, out, err = run(capsys, "diff", lr_bundle_path, b_path, "--json")
    assert code == EXIT_OK, err
    diff = json.loads(out)
    assert diff["a"]["version"] == "1.0.0"
    assert diff["b"]["version"] == "2.0.0"
    assert diff["same_content"] is False
    assert diff["contract"]["removed"] == ["year"]
    assert diff["contract"]["added"] == []
    assert diff["contract"]["changed"]["island"]["categories"] == {
        "added": [], "removed": ["Torgersen"]}
    assert diff["policy"] == {"unseen_category": ["missing", "most_frequent"]}
    assert diff["environment"] == {}
    outputs = diff["outputs"]
    assert outputs["rows"] > 64
    assert outputs["scored_by_both"] == outputs["rows"]
    proba = outputs["methods"]["predict_proba"]
    assert proba["rows_compared"] == outputs["rows"]
    assert 0 < proba["rows_differing"] <= proba["rows_compared"]
    assert proba["max_abs_diff"] > 0
    assert proba["examples"]

    code, out, _ = run(capsys, "diff", lr_bundle_path, b_path)
    for text in ("columns removed: year", "categories removed Torgersen",
                 "unseen_category: missing -> most_frequent", "union of both golden inputs",
                 "predict_proba"):
        assert text in out, text
    code, out, _ = run(capsys, "diff", lr_bundle_path, lr_bundle_path)
    assert "Same content" in out
    assert "no change" in out


# ----------------------------------------------------------------- store


@pytest.fixture(scope="module")
def bundle_files(tmp_path_factory: pytest.TempPathFactory,
                 penguins: tuple[pd.DataFrame, pd.Series]) -> list[Path]:
    """5 names x 6 versions, as bundle files."""
    X, y = penguins
    folder = tmp_path_factory.mktemp("cli-files")
    paths = []
    for i, name in enumerate(NAMES):
        sample = X.sample(frac=0.8, random_state=i)
        pipe = lr_pipeline(sample, y.loc[sample.index])
        for version in VERSIONS:
            paths.append(folder / f"{name}-{version}.safemodel")
            sm.ModelBundle.from_training(pipe, X, name=name, version=version,
                                         golden_rows=16).save(paths[-1])
    return paths


def test_store_commands_on_five_names_by_six_versions(
    capsys: pytest.CaptureFixture[str], bundle_files: list[Path], tmp_path: Path,
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    root = tmp_path / "models"
    code, _, err = run(capsys, "store", root, "list")
    assert code == EXIT_USAGE
    assert "No store" in one_line_error(err)

    code, out, err = run(capsys, "store", root, "put", *bundle_files)
    assert code == EXIT_OK, err
    assert out.count("stored") == 30
    code, out, _ = run(capsys, "store", root, "put", bundle_files[0], "--json")
    assert code == EXIT_OK
    assert json.loads(out)[0]["name"] == "adelie"

    code, out, _ = run(capsys, "store", root, "list")
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "versions", "latest"]
    assert [line.split()[:3] for line in lines[1:]] == [[n, "6", "1.10.0"] for n in NAMES]

    code, out, _ = run(capsys, "store", root, "versions", "dream")
    assert [line.split()[0] for line in out.strip().splitlines()[1:]] == VERSIONS

    assert run(capsys, "store", root, "promote", "dream", "1.2.0")[0] == EXIT_OK
    code, out, _ = run(capsys, "store", root, "promote", "dream", ">=1.9,<2", "--json")
    entry = json.loads(out)
    assert code == EXIT_OK
    assert entry["changed"]
    assert (entry["from"], entry["to"]) == (
        "1.2.0", "1.10.0")
    code, out, _ = run(capsys, "store", root, "promote", "dream", "1.10.0")
    assert code == EXIT_OK
    assert "already points at 1.10.0" in out
    code, out, _ = run(capsys, "store", root, "promote", "dream", "1.0.0", "--alias", "staging")
    assert code == EXIT_OK
    assert "'staging' now points at 1.0.0" in out

    code, out, _ = run(capsys, "store", root, "list", "--json")
    listing = {r["name"]: r for r in json.loads(out)}
    assert listing["dream"]["aliases"] == {"production": "1.10.0", "staging": "1.0.0"}
    code, out, _ = run(capsys, "store", root, "versions", "dream")
    assert "production" in out
    assert "staging" in out

    code, out, _ = run(capsys, "store", root, "get", "dream", "production", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["version"] == "1.10.0"

    code, out, _ = run(capsys, "store", root, "rollback", "dream")
    assert code == EXIT_OK
    assert "rolled back from 1.10.0 to 1.2.0" in out
    code, _, err = run(capsys, "store", root, "rollback", "dream", "--alias", "staging")
    assert code == EXIT_USAGE
    assert "no earlier target" in one_line_error(err)

    code, out, _ = run(capsys, "store", root, "history", "dream", "--json")
    history = json.loads(out)
    assert [(h["action"], h["alias"], h["to"]) for h in history if h["action"] != "put"] == [
        ("promote", "production", "1.2.0"), ("promote", "production", "1.10.0"),
        ("promote", "staging", "1.0.0"), ("rollback", "production", "1.2.0")]
    code, out, _ = run(capsys, "store", root, "history", "dream")
    assert "rollback" in out
    assert "production" in out

    # diff between two store versions, by alias and by version
    code, out, _ = run(capsys, "diff", "--store", root, "dream@production", "dream@1.9.0",
                       "--json")
    diff = json.loads(out)
    assert (diff["a"]["version"], diff["b"]["version"]) == ("1.2.0", "1.9.0")
    assert code == EXIT_OK
    assert diff["outputs"]["methods"]["predict"]["rows_differing"] == 0
    code, out, _ = run(capsys, "inspect", "--store", root, "dream")
    assert code == EXIT_OK
    assert "dream 1.10.0" in out
    assert run(capsys, "verify", "--store", root, "dream@staging")[0] == EXIT_OK

    # A version whose outputs no longer reproduce is refused; the alias is untouched.
    broken = tmp_path / "broken.safemodel"
    stale(sm.load(root / "dream" / "versions" / "1.2.0.safemodel"), *penguins,
          version="3.0.0").save(broken)
    assert run(capsys, "store", root, "put", broken)[0] == EXIT_OK
    code, out, err = run(capsys, "store", root, "promote", "dream", "3.0.0")
    assert code == EXIT_FAILED
    assert "do not reproduce" in out
    assert "'production' still points at 1.2.0" in one_line_error(err)
    code, out, _ = run(capsys, "store", root, "promote", "dream", "3.0.0", "--json")
    assert code == EXIT_FAILED
    assert json.loads(out)["refused"] is True
    assert sm.BundleStore(root).aliases("dream")["production"] == sm.BundleStore(
        root).resolve("dream", "1.2.0")

    for argv, message in ((["versions", "emperor"], "No bundle named 'emperor'"),
                          (["get", "dream", "9.9"], "no version '9.9'"),
                          (["promote", "dream", "1.0.0", "--alias", "v1"], "reads as a version")):
        code, _, err = run(capsys, "store", root, *argv)
        assert code == EXIT_USAGE
        assert message in one_line_error(err)

    # A target found wanting by the store itself while it is verified (a file copied in
    # without a put, a file gone) is a refusal too: exit 1, as the exit-code table says.
    copied = root / "dream" / "versions" / "1.0.1.safemodel"
    shutil.copyfile(root / "dream" / "versions" / "1.2.0.safemodel", copied)
    code, out, err = run(capsys, "store", root, "promote", "dream", "1.0.1", "--json")
    assert code == EXIT_FAILED
    assert json.loads(out)["refused"] is True
    assert "records no put" in one_line_error(err)
    copied.unlink()
    run(capsys, "store", root, "promote", "dream", "1.10.0", "--alias", "staging")
    (root / "dream" / "versions" / "1.0.0.safemodel").unlink()
    code, _, err = run(capsys, "store", root, "rollback", "dream", "--alias", "staging")
    assert code == EXIT_FAILED
    assert "Refused to roll 'staging' of dream back to 1.0.0" in one_line_error(err)


# ------------------------------------------------------------------ demo


def test_demo_runs_the_demo_module(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    fake = types.ModuleType("safemodel.cli.demo")
    fake.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "safemodel.cli.demo", fake)
    assert run(capsys, "demo", "--output", tmp_path)[0] == EXIT_OK
    assert run(capsys, "demo")[0] == EXIT_OK
    assert calls == [["--output", str(tmp_path)], []]


# ----------------------------------------------------------------- drift


def test_drift_table_json_html_and_alerts(
    capsys: pytest.CaptureFixture[str], lr_bundle_path: Path, tmp_path: Path,
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    pytest.importorskip("safemodel.monitoring.drift")
    X = penguins[0]
    steady = tmp_path / "steady.csv"
    X.sample(150, random_state=3).to_csv(steady, index=False)
    code, out, err = run(capsys, "drift", lr_bundle_path, steady)
    assert code == EXIT_OK, err
    assert "island" in out
    assert "psi" in out
    assert "alert" not in out

    shifted = X.sample(150, random_state=4).assign(
        island="Dream", body_mass_g=lambda f: f["body_mass_g"] + 2500)
    parquet = tmp_path / "shifted.parquet"
    shifted.to_parquet(parquet)
    html = tmp_path / "report.html"
    code, out, err = run(capsys, "drift", lr_bundle_path, parquet, "--html", html, "--json")
    assert code == EXIT_FAILED
    report = json.loads(out)
    assert {"island", "body_mass_g"} <= set(report["alerts"])
    assert "drift alert" in one_line_error(err)
    assert html.read_text().lstrip().lower().startswith("<!doctype html")

    notes = tmp_path / "data.txt"
    notes.write_text("a,b\n")
    code, _, err = run(capsys, "drift", lr_bundle_path, notes)
    assert code == EXIT_USAGE
    assert ".csv or .parquet" in one_line_error(err)


def test_a_missing_column_says_to_add_it_in_command_line_words(
    capsys: pytest.CaptureFixture[str], lr_bundle_path: Path, tmp_path: Path,
    penguins: tuple[pd.DataFrame, pd.Series],
) -> None:
    """No Python attribute (.failures) in the CLI's words, no advice to relax a policy
    (a policy cannot bring back a column); --json lists every failure."""
    data = tmp_path / "partial.csv"
    penguins[0].drop(columns=["island", "bill_depth_mm"]).head(50).to_csv(data, index=False)

    code, out, err = run(capsys, "drift", lr_bundle_path, data)
    message = one_line_error(err)
    assert code == EXIT_USAGE
    assert "missing column(s) 'island', 'bill_depth_mm'" in message
    assert message.endswith("(send missing values instead, where the contract allows them).")
    assert ".failures" not in message
    assert "policy that handles" not in message

    code, out, err = run(capsys, "--json", "drift", lr_bundle_path, data)
    payload = json.loads(out)
    assert [f["column"] for f in payload["failures"]] == ["island", "bill_depth_mm"]
    assert {f["check"] for f in payload["failures"]} == {"missing_column"}
