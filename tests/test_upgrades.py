"""Library upgrades: a bundle that cannot run, or gives other outputs, under changed
package versions is refused with the versions named and advice to pin or rebuild.

The fast tests change a real bundle the way an upgrade does (a fitted attribute the
running scikit-learn expects is absent; a class's module is gone; outputs differ) and
record another build environment. The slow ones build the eleven penguins pipelines
of issue 20 under an older scikit-learn in a separate virtual environment (created
once, cached outside the repository; see ``_old_venv``), load them here, and the
reverse; and run the upgrade workflow of ``docs/upgrades.md`` as written.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import safemodel as sm
from safemodel.cli import main
from safemodel.core.environment import capture_environment
from safemodel.io.upgrade import requirement_lines
from venvs import cached_venv

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = Path(__file__).with_name("upgrade_scenario.py")
SKLEARN_HERE = importlib.metadata.version("scikit-learn")
OLD_SKLEARN = "1.7.2"


def _as_built_with(bundle: sm.ModelBundle, estimator: Any, **versions: str) -> sm.ModelBundle:
    """``bundle`` with ``estimator``, recording ``versions`` as its build environment."""
    env = {**capture_environment(["sklearn", "numpy"]), **versions}
    return sm.ModelBundle(estimator, bundle.contract, bundle.policy, bundle.golden,
                          name=bundle.name, version=bundle.version, _environment=env)


@pytest.fixture
def lr_bundle(lr_pipe: Any, penguins: Any) -> sm.ModelBundle:
    import copy

    return sm.ModelBundle.from_training(copy.deepcopy(lr_pipe), penguins[0], name="lr",
                                        version="1.0.0")


def _without_fill_dtype(bundle: sm.ModelBundle) -> Any:
    """The estimator as an older scikit-learn pickled it: no SimpleImputer._fill_dtype."""
    import copy

    from sklearn.impute import SimpleImputer

    est = copy.deepcopy(bundle.estimator)
    imputers = [s for s in _walk(est) if isinstance(s, SimpleImputer)]
    assert imputers, "the pipeline has SimpleImputers"
    for imputer in imputers:
        del imputer._fill_dtype
    return est


def _walk(est: Any) -> Iterator[Any]:
    yield est
    for _, step in getattr(est, "steps", []):
        yield from _walk(step)
    for _, step, _ in getattr(est, "transformers_", []):
        yield from _walk(step)


def test_estimator_that_cannot_run_after_an_upgrade_is_refused_with_both_versions(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    est = _without_fill_dtype(lr_bundle)
    old = _as_built_with(lr_bundle, est, **{"scikit-learn": OLD_SKLEARN})
    old.save(tmp_path / "lr.safemodel")
    with pytest.raises(sm.IncompatibleEnvironmentError) as info:
        sm.load(tmp_path / "lr.safemodel")
    exc = info.value
    message = str(exc)
    assert isinstance(exc, RuntimeError)
    assert f"built with scikit-learn {OLD_SKLEARN}" in message
    assert f"this process runs scikit-learn {SKLEARN_HERE}" in message
    assert "_fill_dtype" in message
    assert f"pip install scikit-learn=={OLD_SKLEARN}" in message
    assert "rebuild the bundle under the new versions" in message
    assert "policy" not in message  # the policy is not the cause
    assert exc.stage == "golden"
    assert exc.diff["scikit-learn"] == (OLD_SKLEARN, SKLEARN_HERE)
    assert exc.built_with["scikit-learn"] == OLD_SKLEARN
    assert exc.running["scikit-learn"] == SKLEARN_HERE
    assert exc.requirements == [f"scikit-learn=={OLD_SKLEARN}"]
    again = pickle.loads(pickle.dumps(exc))
    assert (type(again), str(again), again.to_dict()) == (type(exc), message, exc.to_dict())


def test_promotion_refused_for_the_environment_says_so_first(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    old = _as_built_with(lr_bundle, _without_fill_dtype(lr_bundle),
                         **{"scikit-learn": OLD_SKLEARN})
    store = sm.BundleStore(tmp_path / "store")
    store.put(old)
    with pytest.raises(sm.IncompatibleEnvironmentError) as info:
        store.promote("lr", "1.0.0")
    exc = info.value
    assert str(exc).startswith("Refused to promote lr==1.0.0 to 'production'; 'production' "
                               "stays unset.\n")
    assert f"pip install scikit-learn=={OLD_SKLEARN}" in str(exc)
    assert (exc.stage, exc.requirements) == ("golden", [f"scikit-learn=={OLD_SKLEARN}"])
    assert exc.diff["scikit-learn"] == (OLD_SKLEARN, SKLEARN_HERE)
    assert store.aliases("lr") == {}


def test_estimator_that_raises_without_a_version_change_names_no_policy(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    same = _as_built_with(lr_bundle, _without_fill_dtype(lr_bundle))
    same.save(tmp_path / "lr.safemodel")
    with pytest.raises(sm.GoldenMismatchError) as info:
        sm.load(tmp_path / "lr.safemodel")
    message = str(info.value)
    assert "raised AttributeError" in message
    assert "_fill_dtype" in message
    assert "policy passes" not in message
    assert "pin the build versions" not in message
    assert info.value.mismatches[0]["raised"] == "AttributeError"


def test_changed_outputs_under_changed_versions_advise_pin_or_rebuild(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    import copy

    est = copy.deepcopy(lr_bundle.estimator)
    est[-1].intercept_ = est[-1].intercept_ + 0.5
    for versions, advised in (({"scikit-learn": OLD_SKLEARN}, True), ({}, False)):
        path = tmp_path / f"lr-{advised}.safemodel"
        _as_built_with(lr_bundle, est, **versions).save(path)
        with pytest.raises(sm.GoldenMismatchError) as info:
            sm.load(path)
        message = str(info.value)
        assert "rows differ" in message
        assert ("pin the build versions in this environment: pip install "
                f"scikit-learn=={OLD_SKLEARN}" in message) is advised
        assert (f"built with scikit-learn {OLD_SKLEARN}; this process runs scikit-learn "
                f"{SKLEARN_HERE}" in message) is advised


@pytest.fixture
def vanishing_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable module holding an estimator class, removed again after use."""
    name = "upgrade_vanishing_model"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        from sklearn.linear_model import LogisticRegression

        class Model(LogisticRegression):
            pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_estimator_module_gone_after_an_upgrade_names_versions_not_install(
    penguins: Any, vanishing_module: str, tmp_path: Path
) -> None:
    import importlib

    module = importlib.import_module(vanishing_module)
    X, y = penguins
    numeric = X[["bill_length_mm", "bill_depth_mm"]].dropna()
    model = module.Model(max_iter=500).fit(numeric, y[numeric.index])
    bundle = sm.ModelBundle.from_training(model, numeric, name="gone", version="1.0.0")
    folder = tmp_path / "out"
    folder.mkdir()
    _as_built_with(bundle, model, **{"scikit-learn": OLD_SKLEARN}).save(folder / "old.safemodel")
    _as_built_with(bundle, model).save(folder / "same.safemodel")
    sys.modules.pop(vanishing_module)
    (tmp_path / f"{vanishing_module}.py").unlink()

    with pytest.raises(sm.IncompatibleEnvironmentError) as info:
        sm.load(folder / "old.safemodel")
    message = str(info.value)
    assert info.value.stage == "unpickle"
    assert f"No module named {vanishing_module!r}" in message
    assert f"built with scikit-learn {OLD_SKLEARN}" in message
    assert f"runs scikit-learn {SKLEARN_HERE}" in message
    assert "moved or was renamed" in message
    assert f"pip install scikit-learn=={OLD_SKLEARN}" in message
    # Without a version change, the module is simply missing here: install it.
    with pytest.raises(sm.BundleFormatError, match="Install it"):
        sm.load(folder / "same.safemodel")


def test_requirement_lines_leave_out_python_and_unknown_versions() -> None:
    env = {"python": "3.11.7", "platform": "linux", "scikit-learn": "1.7.2",
           "numpy": "2.3.5", "safemodel": None, "xgboost": "2.1.0"}
    assert requirement_lines(env) == ["scikit-learn==1.7.2", "numpy==2.3.5", "xgboost==2.1.0"]
    assert requirement_lines(env, only=("numpy", "python")) == ["numpy==2.3.5"]


def test_cli_requirements_prints_installable_lines(
    lr_bundle: sm.ModelBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lr.safemodel"
    lr_bundle.save(path)
    assert main(["requirements", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# lr==1.0.0 was built with")
    pins = {Requirement(line).name: str(Requirement(line).specifier) for line in out[1:]}
    assert pins["scikit-learn"] == f"=={SKLEARN_HERE}"
    for name, spec in pins.items():
        assert spec == f"=={importlib.metadata.version(name)}"
    assert main(["requirements", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["requirements"] == out[1:]
    assert data["bundle"] == "lr==1.0.0"


def test_cli_verify_json_carries_the_environment_diff(
    lr_bundle: sm.ModelBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lr.safemodel"
    _as_built_with(lr_bundle, _without_fill_dtype(lr_bundle),
                   **{"scikit-learn": OLD_SKLEARN}).save(path)
    assert main(["verify", "--json", str(path)]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["error"] == "IncompatibleEnvironmentError"
    assert data["environment_diff"]["scikit-learn"] == [OLD_SKLEARN, SKLEARN_HERE]
    assert data["built_with"]["scikit-learn"] == OLD_SKLEARN
    assert data["requirements"] == [f"scikit-learn=={OLD_SKLEARN}"]
    assert data["stage"] == "golden"


def test_pytest_plugin_failure_carries_the_environment_diff(
    lr_bundle: sm.ModelBundle, pytester: pytest.Pytester
) -> None:
    path = pytester.path / "lr.safemodel"
    _as_built_with(lr_bundle, _without_fill_dtype(lr_bundle),
                   **{"scikit-learn": OLD_SKLEARN}).save(path)
    result = pytester.runpytest_inprocess("--safemodel-bundles", "lr.safemodel",
                                          "--junitxml=report.xml", "-p", "no:cacheprovider")
    # golden fails with the versions; robustness too (valid inputs cannot score either)
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*IncompatibleEnvironmentError: lr==1.0.0 cannot run*"])
    xml = (pytester.path / "report.xml").read_text()
    found = re.search(r'name="safemodel_environment" value="([^"]*)"', xml)
    assert found is not None
    import html

    data = json.loads(html.unescape(found.group(1)))
    assert data["environment_diff"]["scikit-learn"] == [OLD_SKLEARN, SKLEARN_HERE]
    assert data["requirements"] == [f"scikit-learn=={OLD_SKLEARN}"]


# ----------------------------------------------------- across real environments


def _old_requirements() -> list[str]:
    """An older scikit-learn with the numpy/scipy/pandas of its time; safemodel's other
    dependencies at the versions installed here."""
    same = [f"{name}=={importlib.metadata.version(name)}"
            for name in ("pandera", "cloudpickle", "packaging", "pyarrow", "cryptography")]
    return [f"scikit-learn=={OLD_SKLEARN}", "numpy==2.3.5", "scipy==1.16.3",
            "pandas==2.3.3", "palmerpenguins==0.1.6", *same]


@pytest.fixture(scope="session")
def old_python() -> Path:
    """Python of a virtual environment with :func:`_old_requirements`.

    Created once (about 80 s here, downloads included) and kept in
    ``$XDG_CACHE_HOME/safemodel-tests/venv-<key>``, keyed on the requirement set and
    this Python; later runs reuse it. safemodel itself comes from this checkout
    (``PYTHONPATH``), so the cache never holds a stale copy of it.
    """
    requirements = _old_requirements()
    return cached_venv("venv", requirements, "the old environment") / "bin" / "python"


def _run(python: Path | str, *args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "ignore"}
    env.pop("SAFEMODEL_SIGNING_KEY", None)
    done = subprocess.run([str(python), *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def old_bundles(old_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("built-old")
    _run(old_python, str(SCENARIO), "build", str(folder))
    return folder


def _check_outcomes(outcomes: dict[str, dict[str, Any]], built: str, running: str) -> None:
    from upgrade_scenario import PIPELINES

    assert sorted(outcomes) == sorted(PIPELINES)
    for name, outcome in outcomes.items():
        if outcome["outcome"] == "loaded":
            continue
        assert outcome["outcome"] in ("IncompatibleEnvironmentError", "GoldenMismatchError"), (
            name, outcome)
        message = outcome["message"]
        assert f"built with scikit-learn {built}" in message, (name, message)
        assert f"this process runs scikit-learn {running}" in message, (name, message)
        assert f"pip install scikit-learn=={built}" in message, (name, message)
        assert "rebuild the bundle under the new versions" in message, (name, message)
        assert "policy passes" not in message, (name, message)
        if outcome["outcome"] == "IncompatibleEnvironmentError":
            data = outcome["data"]
            assert data["environment_diff"]["scikit-learn"] == [built, running]
            assert f"scikit-learn=={built}" in data["requirements"]


@pytest.mark.slow
def test_bundles_built_under_an_older_scikit_learn_load_exactly_or_are_refused(
    old_bundles: Path,
) -> None:
    outcomes = json.loads(_run(sys.executable, str(SCENARIO), "load", str(old_bundles)))
    _check_outcomes(outcomes, built=OLD_SKLEARN, running=SKLEARN_HERE)


@pytest.mark.slow
def test_bundles_built_here_load_exactly_or_are_refused_under_an_older_scikit_learn(
    old_python: Path, tmp_path: Path
) -> None:
    _run(sys.executable, str(SCENARIO), "build", str(tmp_path))
    outcomes = json.loads(_run(old_python, str(SCENARIO), "load", str(tmp_path)))
    _check_outcomes(outcomes, built=SKLEARN_HERE, running=OLD_SKLEARN)


@pytest.mark.slow
def test_requirements_of_an_old_bundle_are_what_its_environment_installed(
    old_python: Path, old_bundles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["requirements", str(old_bundles / "hgb.safemodel")]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    frozen = _run(sys.executable, "-m", "pip", "--python", str(old_python), "freeze",
                  "--disable-pip-version-check")
    installed = {Requirement(ln).name.lower(): str(Requirement(ln).specifier)
                 for ln in frozen.splitlines() if "==" in ln}
    assert lines
    assert f"scikit-learn=={OLD_SKLEARN}" in lines
    for line in lines:
        req = Requirement(line)
        assert installed[req.name.lower()] == str(req.specifier), line


def _documented_check(doc: Path) -> str:
    text = doc.read_text()
    found = re.search(r"<!-- check-upgrade -->\s*```bash\n(.*?)```", text, re.S)
    assert found is not None, "docs/upgrades.md has the marked check script"
    return textwrap.dedent(found.group(1))  # the block is indented inside a list item


@pytest.mark.slow
def test_upgrade_workflow_runs_as_documented(
    old_python: Path, old_bundles: Path, tmp_path: Path
) -> None:
    """Production bundles promoted under the old versions; the candidate environment
    (this one, newer scikit-learn) runs the check script of docs/upgrades.md."""
    store = tmp_path / "store"
    paths = [str(old_bundles / f"{name}.safemodel") for name in ("lr", "hgb", "tree")]
    _run(old_python, "-m", "safemodel", "store", str(store), "put", *paths)
    for name in ("lr", "hgb", "tree"):
        _run(old_python, "-m", "safemodel", "store", str(store), "promote", name, "1.0.0")
    script = tmp_path / "check-upgrade.sh"
    script.write_text(_documented_check(ROOT / "docs" / "upgrades.md"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONWARNINGS": "ignore",
           "STORE": str(store), "PY": sys.executable}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr  # something would break
    reports = {p.stem: json.loads(p.read_text())
               for p in (tmp_path / "upgrade-report").glob("*.json")}
    assert sorted(reports) == ["hgb", "lr", "tree"]
    for name, report in reports.items():
        if report["ok"]:
            continue
        assert report["error"] in ("IncompatibleEnvironmentError", "GoldenMismatchError"), name
        assert report["environment_diff"]["scikit-learn"] == [OLD_SKLEARN, SKLEARN_HERE]
    assert f"scikit-learn {OLD_SKLEARN} -> {SKLEARN_HERE}" in done.stdout
