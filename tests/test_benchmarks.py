"""The benchmark script runs and writes its tables (a smoke test: no time is asserted).

Times are measured by ``benchmarks/run.py`` itself, never in tests; see
docs/performance.md. The peers it compares with (mlflow-skinny, skops, ...) are not
installed in CI: ``--quick`` must then report them as "not installed" and carry on.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
HEADINGS = ("## Reproduce", "## Machine", "## Budget", "## Scoring", "## Loading one model",
            "## File size", "## Monitoring overhead", "models in one process", "## Profiles")
OPTIONAL_PEERS = ("mlflow", "skops", "pyinstrument", "psutil")


def _hide(folder: Path, modules: tuple[str, ...]) -> None:
    """Make ``import <module>`` fail in processes with ``folder`` first on the path."""
    for name in modules:
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(
            f"raise ImportError('{name} hidden by tests/test_benchmarks.py')\n")


@pytest.mark.parametrize("peers", ["as installed", "hidden"])
def test_quick_run_writes_every_table(tmp_path: Path, peers: str) -> None:
    env = None
    if peers == "hidden":
        hidden = tmp_path / "hidden"
        hidden.mkdir()
        _hide(hidden, OPTIONAL_PEERS)
        env = {**os.environ, "PYTHONPATH": str(hidden)}
    output = tmp_path / "performance.md"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--output", str(output)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    text = output.read_text()
    for heading in HEADINGS:
        assert heading in text, heading
    assert "| 1 | " in text
    assert "| 100 | " in text
    assert "`bundle.predict_proba`" in text
    if peers == "hidden":
        assert "mlflow-skinny not installed" in text
        assert "pyinstrument: not installed" in text


def _report_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_report", BENCHMARKS / "_report.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rerun_keeps_the_text_around_the_results(tmp_path: Path) -> None:
    report = _report_module()
    doc = tmp_path / "performance.md"
    report.write(doc, "first results")
    doc.write_text("# Notes before\n\n" + doc.read_text() + "\n## Analysis by hand\n")
    report.write(doc, "second results")
    text = doc.read_text()
    assert "second results" in text
    assert "first results" not in text
    assert text.startswith("# Notes before")
    assert text.rstrip().endswith("## Analysis by hand")


def test_observe_floor_prints_observe_and_every_floor_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "observe_floor.py"), "--rows", "300",
         "--budget", "0.2"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 300 |")]
    parts = [row.split(" | ")[1] for row in rows]
    assert parts == [
        "raw `predict_proba`", "Monitor.observe(X, scores=proba)", "strings: index_in",
        "numbers: a comparison per edge", "numbers: moment sums", "scores: AUC bin counts",
        "floor (all of the above)",
    ]
    # Each share is a positive number (the table is parsed, not just printed).
    assert all(float(row.split(" | ")[3].split()[0]) > 0 for row in rows)


def test_serve_observer_benchmark_observes_the_whole_backlog(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "serve.py"), "--observer", "--quick"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert "300 one-row batches waiting, 3 rounds" in done.stdout
