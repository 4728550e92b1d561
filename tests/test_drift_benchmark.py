"""benchmarks/drift.py runs and writes its tables (a smoke test: no rate, no time asserted).

The rates themselves are measured by the benchmark, never in tests; see
docs/monitoring.md. ``tests/test_verdicts.py`` holds the properties tests can check.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_run_writes_its_tables_between_markers(tmp_path: Path) -> None:
    target = tmp_path / "monitoring.md"
    target.write_text("# Monitoring\n\nHand-written text stays.\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for _ in range(2):  # the second run replaces the block instead of appending one
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "drift.py"), "--quick", "--output",
             str(target)],
            check=True, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Monitoring\n\nHand-written text stays.\n")
    assert text.count("<!-- drift benchmark:") == 1
    for row in ("no shift (any column flagged)", "mean +0.25 sd", "variance x1.5",
                "unseen category at 5%", "missing 0% -> 10%", "Monitor.observe"):  # fmt: skip
        assert row in text
