"""The pytest plugin, end to end in temporary projects (``pytester``).

Each project holds three bundles (logistic regression with the default policy, the
same under ``Policy.strict()``, a random-forest regressor) and an ordinary test. Most
runs lower the robustness budget with ``--safemodel-examples`` to stay quick; the
acceptance run keeps the default.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import safemodel as sm
from helpers import rf_regressor
from safemodel.testing import assert_contract_consistent

CHECKS = ["integrity", "golden", "contract", "policy", "robustness"]
BUNDLES = ["lr", "rf", "strict"]  # file stems, in collection order

INI = """\
[pytest]
testpaths = tests
addopts = --strict-markers --strict-config
filterwarnings =
    error
    ignore:PySpark does not yet fully support pandas:FutureWarning
"""
WITH_BUNDLES = INI + "safemodel_bundles = models/*.safemodel\n"

# A library upgrade in the test environment: the forest now scores 1% higher, and
# scikit-learn reports another version.
CHANGED_FOREST = """\
import importlib.metadata

import pytest
from sklearn.ensemble import RandomForestRegressor

patch = pytest.MonkeyPatch()


def pytest_configure(config):
    predict = RandomForestRegressor.predict
    patch.setattr(RandomForestRegressor, "predict", lambda self, X: predict(self, X) * 1.01)
    version = importlib.metadata.version
    patch.setattr(importlib.metadata, "version",
                  lambda name: "9.9.9" if name == "scikit-learn" else version(name))
    forget_versions()


def pytest_unconfigure(config):
    patch.undo()
    forget_versions()


def forget_versions():
    # safemodel reads each version once per process; this in-process run shares it.
    import safemodel.core.environment

    safemodel.core.environment._version_of.cache_clear()
"""


@pytest.fixture(scope="module")
def bundle_files(
    lr_bundle: sm.ModelBundle,
    strict_bundle: sm.ModelBundle,
    penguins: tuple[pd.DataFrame, pd.Series],
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Path]:
    # In-process runs drop the modules they imported; import what the checks import
    # lazily (pandera's backends, jsonschema) out here so that every run shares them.
    assert_contract_consistent(lr_bundle)
    X = penguins[0]
    rf = sm.ModelBundle.from_training(rf_regressor(X), X.drop(columns=["body_mass_g"]),
                                      name="penguins-rf", version="2.0.0")
    folder = tmp_path_factory.mktemp("plugin-bundles")
    files = []
    for stem, bundle in zip(BUNDLES, [lr_bundle, rf, strict_bundle], strict=True):
        path = folder / f"{stem}.safemodel"
        bundle.save(path)
        files.append(path)
    return files


@pytest.fixture
def project(pytester: pytest.Pytester, bundle_files: list[Path]) -> pytest.Pytester:
    """Three bundles under models/, an ordinary test under tests/, no plugin settings."""
    models = pytester.mkdir("models")
    for path in bundle_files:
        shutil.copy(path, models / path.name)
    pytester.makepyfile(**{"tests/test_ordinary": "def test_ordinary():\n    assert True\n"})
    pytester.makeini(INI)
    return pytester


def item_ids(bundles: list[str] = BUNDLES) -> list[str]:
    return [f"models/{b}.safemodel::{c}" for b in bundles for c in CHECKS]


def flip_estimator_byte(path: Path) -> None:
    """Damage the estimator's bytes inside the archive, as a bad disk or copy would."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("estimator.pkl")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# --------------------------------------------------------------- registration


def test_options_form_one_group_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "safemodel (check model bundle files):",
        "  --safemodel-bundles=GLOB",
        "*collect the bundle files matching GLOB*",
        "  --safemodel-seed=N *",
        "  --safemodel-examples=N",
    ])
    result.stdout.fnmatch_lines([
        "  safemodel_bundles (args):*",
        "  safemodel_seed (string):*",
        "  safemodel_examples (string):*",
    ])


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.safemodel: a check of a safemodel bundle file*"])


def test_runs_without_bundles_are_untouched(project: pytest.Pytester) -> None:
    result = project.runpytest("-v")
    result.assert_outcomes(passed=1)
    assert ".safemodel::" not in result.stdout.str()


# ----------------------------------------------------------------- acceptance


def test_the_entry_point_imports_no_data_library() -> None:
    # Every pytest run imports the entry point; only collected bundles may cost more.
    code = ("import sys, safemodel.integrations.pytest_plugin; "
            "heavy = sorted({'pandas', 'numpy', 'sklearn', 'safemodel.core'} & set(sys.modules)); "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_one_passing_item_per_check_per_bundle(project: pytest.Pytester) -> None:
    project.makeini(WITH_BUNDLES)
    collected = project.runpytest("--collect-only", "-q")
    collected.stdout.fnmatch_lines(["tests/test_ordinary.py::test_ordinary", *item_ids(),
                                    "", "16 tests collected*"], consecutive=True)
    result = project.runpytest("-v")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines([f"{i} PASSED*" for i in item_ids()])


def test_changed_scores_fail_exactly_the_golden_item_with_the_diff(
    project: pytest.Pytester,
) -> None:
    project.makeini(WITH_BUNDLES)
    project.makeconftest(CHANGED_FOREST)
    result = project.runpytest("--safemodel-examples", "5")
    result.assert_outcomes(passed=15, failed=1)
    result.stdout.fnmatch_lines([
        "_* models/rf.safemodel::golden: the golden outputs reproduce in this environment _*",
        "penguins-rf==2.0.0: golden outputs do not reproduce.",
        "  predict: * of * rows differ; max abs diff *, max rel diff 0.01",
        "    row *: expected *, obtained *",
        "    row *: expected *, obtained *",
        "*",
        "*",
        "*",
        "  packages changed since the bundle was built: scikit-learn * -> 9.9.9",
        "  Package versions changed since the bundle was built (it was built with "
        "scikit-learn *; this process runs scikit-learn 9.9.9)*",
        "    - pin the build versions in this environment: pip install scikit-learn==*",
        "*",
        "    - or rebuild the bundle under the new versions*",
        "  compared with the recorded tolerances (rtol=0, atol=0)",
        "*= short test summary info =*",
        "FAILED models/rf.safemodel::golden - penguins-rf==2.0.0: golden*",
    ], consecutive=True)
    out = result.stdout.str()
    assert "Traceback" not in out
    assert "dtype" not in out
    assert "Captured log" not in out


def test_a_damaged_bundle_fails_integrity_and_the_others_still_run(
    project: pytest.Pytester,
) -> None:
    project.makeini(WITH_BUNDLES)
    flip_estimator_byte(project.path / "models" / "strict.safemodel")
    (project.path / "models" / "truncated.safemodel").write_bytes(b"PK\x03\x04 not really")
    result = project.runpytest("--safemodel-examples", "5", "-rfs")
    result.assert_outcomes(passed=11, failed=2, skipped=8)
    result.stdout.fnmatch_lines([
        "_* models/strict.safemodel::integrity: *",
        "IntegrityError: *'estimator.pkl'*",
    ])
    result.stdout.fnmatch_lines([
        "_* models/truncated.safemodel::integrity: *",
        "BundleFormatError: *is not a safemodel bundle*",
    ])
    result.stdout.fnmatch_lines([
        "SKIPPED [[]4] models/strict.safemodel:1: strict.safemodel did not load (its "
        "integrity item fails): IntegrityError: *",
        "SKIPPED [[]4] models/truncated.safemodel:1: truncated.safemodel did not load (its "
        "integrity item fails): BundleFormatError: *",
    ])
    result.stdout.fnmatch_lines([
        "FAILED models/strict.safemodel::integrity - IntegrityError: *",
        "FAILED models/truncated.safemodel::integrity - BundleFormatError: *",
    ])


def test_works_under_xdist(project: pytest.Pytester) -> None:
    project.makeini(WITH_BUNDLES)
    project.makeconftest(CHANGED_FOREST)
    flip_estimator_byte(project.path / "models" / "strict.safemodel")
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", "--safemodel-examples", "5")
    result.assert_outcomes(passed=10, failed=2, skipped=4)
    result.stdout.fnmatch_lines(["FAILED models/rf.safemodel::golden - *"])
    result.stdout.fnmatch_lines(["FAILED models/strict.safemodel::integrity - IntegrityError: *"])
    result.stdout.fnmatch_lines([
        "_* models/rf.safemodel::golden: the golden outputs reproduce in this environment _*",
        "[[]gw?[]] linux -- Python *",
        "penguins-rf==2.0.0: golden outputs do not reproduce.",
        "  predict: * rows differ*",
    ], consecutive=True)


# ------------------------------------------------------------------ selection


def test_command_line_patterns_add_bundles_to_any_run(project: pytest.Pytester) -> None:
    result = project.runpytest("tests", "--safemodel-bundles", "models/lr.safemodel",
                               "--safemodel-examples", "5", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f"{i} PASSED*" for i in item_ids(["lr"])])


def test_ini_patterns_join_default_runs_only(project: pytest.Pytester) -> None:
    project.makeini(WITH_BUNDLES)
    project.runpytest("tests").assert_outcomes(passed=1)
    one = project.runpytest("models/rf.safemodel::golden", "models/lr.safemodel",
                            "--safemodel-examples", "5")
    one.assert_outcomes(passed=6)


def test_a_bundle_file_named_as_argument_is_collected(project: pytest.Pytester) -> None:
    result = project.runpytest("models/rf.safemodel::policy", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["models/rf.safemodel::policy PASSED*"])


def test_recursive_patterns_and_marker_selection(project: pytest.Pytester) -> None:
    nested = project.mkdir("models/archive")
    shutil.copy(project.path / "models" / "lr.safemodel", nested / "old.safemodel")
    project.makeini(INI + "safemodel_bundles =\n    models/**/old.safemodel\n    "
                          "models/rf.safemodel\n")
    result = project.runpytest("--collect-only", "-q", "-m", "safemodel")
    result.stdout.fnmatch_lines([*[f"models/archive/old.safemodel::{c}" for c in CHECKS],
                                 *item_ids(["rf"]), "", "10/11 tests collected*"],
                                consecutive=True)


def test_a_pattern_matching_nothing_is_reported(project: pytest.Pytester) -> None:
    project.makeini(INI.replace("    error\n", "") + "safemodel_bundles = modles/*.safemodel\n")
    warned = project.runpytest()
    warned.assert_outcomes(passed=1, warnings=1)
    warned.stdout.fnmatch_lines(["*PytestConfigWarning: safemodel: no bundle file matches "
                                 "'modles/*.safemodel' (looked in *)*"])
    # Under filterwarnings = error, a usage error rather than a crash.
    project.makeini(INI + "safemodel_bundles = modles/*.safemodel\n")
    refused = project.runpytest()
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["ERROR: safemodel: no bundle file matches "
                                  "'modles/*.safemodel' (looked in *)."])


@pytest.mark.parametrize(("args", "ini", "message"), [
    (["--safemodel-examples", "0"], "",
     "ERROR: --safemodel-examples must be at least 1; got 0."),
    ([], "safemodel_examples = many\n",
     "ERROR: ini option safemodel_examples must be an integer; got 'many'."),
    ([], "safemodel_seed = 1.5\n",
     "ERROR: ini option safemodel_seed must be an integer; got '1.5'."),
])
def test_bad_settings_are_usage_errors(
    project: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    project.makeini(WITH_BUNDLES + ini)
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# ----------------------------------------------------------------- robustness


def test_robustness_failure_shows_the_input_and_how_to_reproduce(
    project: pytest.Pytester,
) -> None:
    # Scores turn into non-probabilities for bill lengths finer than the 0.1 mm the
    # training data (and so the golden inputs) were measured in.
    project.makeconftest("""\
        import pytest
        from sklearn.pipeline import Pipeline

        patch = pytest.MonkeyPatch()


        def pytest_configure(config):
            predict_proba = Pipeline.predict_proba

            def finer(self, X):
                lengths = X["bill_length_mm"].dropna()
                scale = 1.5 if (lengths.round(1) != lengths).any() else 1.0
                return predict_proba(self, X) * scale

            patch.setattr(Pipeline, "predict_proba", finer)


        def pytest_unconfigure(config):
            patch.undo()
    """)
    result = project.runpytest("--safemodel-bundles", "models/lr.safemodel",
                               "--safemodel-seed", "3", "--safemodel-examples", "20")
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines([
        "_* models/lr.safemodel::robustness: *",
        "penguins-lr==1.0.0: on input that meets the contract, predict_proba row 0 *",
        "  input: 1 row(s), sent as *",
        '    row 0: {"island": *, "bill_length_mm": *}',
        "  generated with seed 3, 20 examples per property (--safemodel-seed, "
        "--safemodel-examples)",
    ], consecutive=True)
    assert "Captured log" not in result.stdout.str()


def test_checks_skip_when_their_library_is_missing(project: pytest.Pytester) -> None:
    project.makeconftest("""\
        import sys

        import pytest

        patch = pytest.MonkeyPatch()


        def pytest_configure(config):
            patch.setitem(sys.modules, "jsonschema", None)
            patch.setitem(sys.modules, "hypothesis", None)


        def pytest_unconfigure(config):
            patch.undo()
    """)
    result = project.runpytest("-p", "no:hypothesispytest", "-rs",
                               "--safemodel-bundles", "models/lr.safemodel")
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1] models/lr.safemodel:1: contract check not run: jsonschema is not "
        "installed (pip install jsonschema)",
        "SKIPPED [[]1] models/lr.safemodel:1: robustness check not run: hypothesis is not "
        "installed (pip install hypothesis)",
    ])


# ----------------------------------------------------------------- trust


class _TouchOnLoad:
    """Unpickling this runs ``touch target``: the classic ``__reduce__`` payload."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, (f"touch '{self.target}'",))


def _vendor_signed(path: Path, key: Any) -> bytes:
    """``path``'s bundle signed by ``key`` instead of by this user."""
    from safemodel.io.signing import sign_manifest
    from test_mutation import members_of, pack

    members = members_of(path.read_bytes())
    members["signature.json"] = sign_manifest(members["manifest.json"], key)
    return bytes(pack(members))


def test_a_hostile_bundle_in_a_collected_folder_runs_no_code_and_fails_the_run(
    project: pytest.Pytester, tmp_path: Path,
) -> None:
    import pickle

    from test_mutation import members_of, pack, rehash

    pwned = tmp_path / "pwned"
    members = members_of((project.path / "models" / "lr.safemodel").read_bytes())
    members["estimator.pkl"] = pickle.dumps(_TouchOnLoad(pwned), protocol=5)
    (project.path / "models" / "lr.safemodel").write_bytes(pack(rehash(members)))
    project.makeini(WITH_BUNDLES)
    result = project.runpytest("-v", "--safemodel-examples", "5")
    result.stdout.fnmatch_lines(["models/lr.safemodel::integrity FAILED*",
                                 "*UntrustedBundleError: *unsigned*posix.system*"])
    result.assert_outcomes(passed=11, failed=1, skipped=4)
    assert result.ret != 0
    assert not pwned.exists()


def test_a_bundle_signed_elsewhere_loads_only_when_its_key_is_trusted(
    project: pytest.Pytester,
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from safemodel.io.signing import public_pem

    vendor = Ed25519PrivateKey.generate()
    lr = project.path / "models" / "lr.safemodel"
    lr.write_bytes(_vendor_signed(lr, vendor))
    (project.path / "vendor.pem").write_text(public_pem(vendor))
    project.makeini(WITH_BUNDLES)
    refused = project.runpytest("--safemodel-examples", "5")
    refused.assert_outcomes(passed=11, failed=1, skipped=4)
    refused.stdout.fnmatch_lines(["*UntrustedBundleError*which you do not trust*"])
    for extra_ini, args in [("safemodel_trusted_keys = vendor.pem\n", ()),
                            ("", ("--safemodel-trusted-key", "vendor.pem")),
                            ("safemodel_trust = true\n", ()),
                            ("", ("--safemodel-trust",))]:
        project.makeini(WITH_BUNDLES + extra_ini)
        project.runpytest("--safemodel-examples", "5", *args).assert_outcomes(passed=16)
