"""Every code example of README.md and docs/ runs, as written, in the test suite.

Per page, the fenced ``python``, ``sh`` and ``bash`` blocks run in order in one fresh
namespace, inside a temporary folder, so a later block sees what an earlier one built
(as a reader typing them in would). A failure names the page and the block's line.

What a page may assume, as the user guide says: ``sm`` (``import safemodel as sm``),
``pd``, ``np``, ``pipe`` (a fitted penguin-species pipeline), ``X_train`` (its training
features), ``X_prod`` (a production batch whose flippers grew 20 mm), ``batch`` and
``df`` (penguins with the edits the default policy handles), ``records`` (two rows as
JSON records), ``bundle`` (``penguin-species`` 1.0.0 built from them); the files
``batch.csv`` and ``batch.parquet`` (that batch). A page holding the comment
``<!-- docs-test: store -->`` also gets ``models/``, a bundle store with ``churn`` 1.2.0
(production), 1.3.0 and ``fraud`` 3.1.0 (production).

Markers, each an HTML comment on the line right before a block:

- ``<!-- skip: why -->``: the block is not run (needs a cluster, a server, a network);
  the reason is required.
- ``<!-- file: name -->``: the block is written to ``name`` instead of run (a test
  module, a configuration file) for the blocks after it to use.

``console``, ``text``, ``json`` and unlabelled blocks are transcripts and samples; they
are not run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import safemodel as sm
from helpers import lr_pipeline, penguins_frame, policy_frame

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = {"python", "sh", "bash"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<lang>[\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>skip|file)\s*:?\s*(?P<arg>.*?)\s*-->\s*$")
SHELL_TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    page: str
    line: int          # 1-based line of the first code line
    lang: str
    code: str
    skip: str | None   # the reason, when marked skip
    file: str | None   # the file to write, when marked file

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with their markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = path.relative_to(ROOT).as_posix()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        close = re.compile(rf"^ *{re.escape(m['fence'][0])}{{{len(m['fence'])},}}\s*$")
        end = i + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        marker = None
        for j in range(i - 1, -1, -1):  # the HTML comments right before the fence
            if not lines[j].strip():
                continue
            if not lines[j].strip().startswith("<!--"):
                break
            marker = marker or MARKER.match(lines[j])
        code = textwrap.dedent("\n".join(lines[i + 1:end])) + "\n"
        found.append(Block(
            page, i + 2, m["lang"].lower(), code,
            skip=marker["arg"] if marker and marker["kind"] == "skip" else None,
            file=marker["arg"] if marker and marker["kind"] == "file" else None,
        ))
        i = end + 1
    return found


def test_every_page_is_found() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/guide.md", "docs/store.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_markers_are_well_formed(page: Path) -> None:
    """Every skip gives a reason, every marker precedes a block it applies to."""
    text = page.read_text(encoding="utf-8")
    for n, line in enumerate(text.splitlines(), 1):
        if re.match(r"^\s*<!--\s*skip\b", line):
            m = MARKER.match(line)
            assert m is not None, f"{page.name}:{n}: not a skip marker: {line!r}"
            assert m["arg"], f"{page.name}:{n}: a skip marker needs a reason: {line!r}"
    by_line = {b.line: b for b in blocks(page)}
    for b in by_line.values():
        assert b.skip is None or b.lang in RUN, (
            f"{b.where}: skip marker before a {b.lang or 'plain'} block, which never runs")
        assert b.file is None or b.file, f"{b.where}: a file marker needs a file name"


# -- the world the examples live in ------------------------------------------------------

@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    X, y = penguins_frame()
    pipe = lr_pipeline(X, y)
    bundle = sm.ModelBundle.from_training(pipe, X, name="penguin-species", version="1.0.0")
    X_prod = X.sample(120, random_state=1).reset_index(drop=True)
    X_prod["flipper_length_mm"] = X_prod["flipper_length_mm"] + 20.0
    batch = policy_frame(200).drop(columns=["id"])
    files = tmp_path_factory.mktemp("docs-files")
    batch.to_csv(files / "batch.csv", index=False)
    batch.to_parquet(files / "batch.parquet", index=False)

    store_root = tmp_path_factory.mktemp("docs-store") / "models"
    store = sm.BundleStore(store_root)
    for name, version in [("churn", "1.2.0"), ("churn", "1.3.0"), ("fraud", "3.1.0")]:
        store.put(sm.ModelBundle.from_training(pipe, X, name=name, version=version,
                                               golden_rows=16))
    store.promote("churn", "1.2.0")
    store.promote("fraud", "3.1.0")
    return {
        "namespace": {
            "sm": sm, "pd": pd, "np": np, "pipe": pipe, "X_train": X, "X_prod": X_prod,
            "batch": batch, "df": batch, "records": [_record(X, 0), _record(X, 1)],
            "bundle": bundle,
        },
        "files": files,
        "store": store_root,
    }


def _record(X: pd.DataFrame, i: int) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v)
            for k, v in X.iloc[i].to_dict().items()}


def _shims(folder: Path) -> dict[str, str]:
    """An environment whose ``python`` and ``safemodel`` are this interpreter's."""
    folder.mkdir()
    for name, argv in {"python": [sys.executable],
                       "pytest": [sys.executable, "-m", "pytest"],
                       "safemodel": [sys.executable, "-m", "safemodel"]}.items():
        shim = folder / name
        shim.write_text("#!/bin/sh\nexec " + " ".join(f'"{a}"' for a in argv) + ' "$@"\n')
        shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{folder}{os.pathsep}{env.get('PATH', '')}"
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _mlflow_registry(work: Path, namespace: dict[str, Any],
                     monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A local tracking store and registry, standing in for the reader's server; in it,
    the pipeline logged with ``mlflow.sklearn`` as ``penguins-sk@champion``."""
    for name, value in {"MLFLOW_ALLOW_FILE_STORE": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
                        "DO_NOT_TRACK": "true"}.items():
        monkeypatch.setenv(name, value)
    pytest.importorskip("mlflow")
    import mlflow
    import mlflow.sklearn

    uri = (work / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    # An explicitly set URI wins over the environment; set ours, put the old one back.
    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    with mlflow.start_run():
        logged = mlflow.sklearn.log_model(namespace["pipe"], name="model",
                                          registered_model_name="penguins-sk",
                                          serialization_format="cloudpickle")
    mlflow.MlflowClient().set_registered_model_alias(
        "penguins-sk", "champion", logged.registered_model_version)

    def restore() -> None:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)

    return restore


def _run_python(block: Block, namespace: dict[str, Any]) -> None:
    # Leading newlines put the block's lines at their place in the page, so a traceback
    # names the page's own line numbers.
    code = compile("\n" * (block.line - 1) + block.code, block.page, "exec")
    try:
        exec(code, namespace)
    except Exception:
        pytest.fail(f"{block.where}: this python block failed:\n{traceback.format_exc()}",
                    pytrace=False)


def _run_shell(block: Block, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=SHELL_TIMEOUT, check=False)
    if done.returncode:
        pytest.fail(f"{block.where}: this {block.lang} block exited {done.returncode}:\n"
                    f"{block.code}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}",
                    pytrace=False)


# docs/index.md is README.md (test_home_page_is_the_readme); its blocks run once, there.
RUNNABLE = [p for p in PAGES if p.name != "index.md"
            and any(b.lang in RUN and not b.skip for b in blocks(p))]


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_run(page: Path, world: dict[str, Any], tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    shutil.copytree(world["files"], work)
    if "<!-- docs-test: store -->" in page.read_text(encoding="utf-8"):
        shutil.copytree(world["store"], work / "models")
    restore: Callable[[], None] = lambda: None  # noqa: E731
    if "<!-- docs-test: mlflow -->" in page.read_text(encoding="utf-8"):
        restore = _mlflow_registry(work, world["namespace"], monkeypatch)
    monkeypatch.chdir(work)
    env = _shims(tmp_path / "bin")
    namespace: dict[str, Any] = {"__name__": "__docs__", **world["namespace"]}
    try:
        for block in blocks(page):
            if block.file:
                (work / block.file).write_text(block.code, encoding="utf-8")
            elif block.lang not in RUN or block.skip:
                continue
            elif block.lang == "python":
                _run_python(block, namespace)
            else:
                _run_shell(block, env, work)
    finally:
        restore()


def test_home_page_is_the_readme() -> None:
    """docs/index.md is README.md with its links made relative to docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8").split("\n", 1)[1]
    assert home == readme.replace("(docs/", "(").replace("(CHANGELOG.md)", "(changelog.md)"), (
        "docs/index.md differs from README.md: copy README.md below its first line")


def test_reference_covers_the_public_api() -> None:
    """Every name of ``safemodel.__all__`` has an entry in the API reference."""
    text = "\n".join(p.read_text(encoding="utf-8")
                     for p in (ROOT / "docs" / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: [\w.]*?\.(\w+)$", text, re.M))
    documented |= set(re.findall(r"members: \[(.*)\]", text)[0].replace(" ", "").split(","))
    missing = set(sm.__all__) - documented - {"__version__", "testing"}
    assert not missing, f"not in docs/reference/: {sorted(missing)}"
    for module in ("testing", "integrations.spark", "integrations.dask",
                   "integrations.serve", "integrations.mlflow"):
        assert f"::: safemodel.{module}\n" in text, module


def test_tutorial_notebook_runs(tmp_path: Path) -> None:
    """The tutorial executes top to bottom and shows a bundle, a violation and a drift
    report (nbclient raises, naming the cell, when one fails)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(ROOT / "docs" / "tutorials" / "penguins.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = {c.source.splitlines()[-1]: c.outputs for c in notebook.cells
             if c.cell_type == "code"}
    for last_line in ("bundle", "violation", "report"):
        assert any(o.output_type == "execute_result" for o in shown[last_line]), last_line
