"""benchmarks/drift.py runs and writes its tables (a smoke test: no rate, no time asserted).

The rates themselves are measured by the benchmark, never in tests; see
docs/monitoring.md. ``tests/test_verdicts.py`` holds the properties tests can check.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

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


def _drift_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_drift", ROOT / "benchmarks" / "drift.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_calibrated_threshold_lets_at_most_the_rate_through() -> None:
    bench = _drift_module()
    no_shift = [float(v) for v in range(1, 201)]  # 200 trials, strengths 1..200
    threshold = bench.calibrate(no_shift, 0.05)
    # floor(0.05 * 200) = 10 trials may lie above: the 11th largest is the threshold.
    assert threshold == 190.0
    assert bench.matched_rate(no_shift, threshold) == 0.05
    # Ties at the threshold do not alarm (strictly above), so ties make it stricter.
    tied = [5.0] * 30 + [1.0] * 170
    assert bench.matched_rate(tied, bench.calibrate(tied, 0.05)) == 0.0
    # Fewer trials than one alarm's worth: nothing may alarm.
    assert bench.calibrate([3.0, 2.0, 1.0], 0.05) == 3.0
    assert bench.matched_rate([3.0, 4.0, -math.inf], 3.0) == 1 / 3


def test_peer_strength_is_one_at_the_default_threshold() -> None:
    spec = importlib.util.spec_from_file_location("_bench_peers", ROOT / "benchmarks" / "_peers.py")
    assert spec is not None
    assert spec.loader is not None
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    assert peers.strength(0.05, 0.05, True) == pytest.approx(1.0)
    assert peers.strength(0.0005, 0.05, True) > peers.strength(0.01, 0.05, True) > 1.0
    assert peers.strength(0.1, 0.1, False) == pytest.approx(1.0)
    assert peers.strength(0.0, 0.05, True) > 100  # a p-value of 0 is the strongest, finite
    assert peers.strength(math.nan, 0.1, False) == -math.inf


def test_matched_tables_put_each_region_between_its_own_markers(tmp_path: Path) -> None:
    bench = _drift_module()
    cells = [
        bench.Cell("toy", bench.CALIBRATION, 200, 20, {"safemodel": 1, "evidently": 15},
                   {"evidently": [float(v) for v in range(20)]}),
        bench.Cell("toy", bench.NO_SHIFT, 200, 20, {"safemodel": 0, "evidently": 14},
                   {"evidently": [float(v) for v in range(1, 21)]}),
        bench.Cell("toy", "mean +0.25 sd", 200, 4, {"safemodel": 3, "evidently": 4},
                   {"evidently": [30.0, 19.0, 18.5, 2.0]}),
    ]  # fmt: skip
    target = tmp_path / "monitoring.md"
    target.write_text("# Monitoring\n\nText.\n", encoding="utf-8")
    bench.write(target, "main table", "")
    for _ in range(2):
        bench.write(target, bench.markdown(cells, [], False), "matched")
    text = target.read_text(encoding="utf-8")
    assert text.count("<!-- drift matched benchmark:") == 1
    assert text.count("<!-- drift benchmark:") == 1
    assert "main table" in text
    # 20 calibration trials: floor(0.05 * 20) = 1 may alarm, threshold 18 (the 2nd largest).
    assert "| calibration (no shift): threshold | 0.05 (20) | 0.75 (20) | 18 |" in text
    assert "| no shift (any column flagged) | 0.00 (20) | 0.70 (20) | 0.10 |" in text
    assert "| mean +0.25 sd | 0.75 (4) | 1.00 (4) | 0.75 |" in text


def test_a_run_without_costs_keeps_the_cost_table(tmp_path: Path) -> None:
    bench = _drift_module()
    target = tmp_path / "monitoring.md"
    bench.write(target, "old rates\n\n**Cost of monitoring** (kept)\n\n| a | b |", "")
    bench.write(target, "new rates", "")
    text = target.read_text(encoding="utf-8")
    assert "old rates" not in text
    assert "new rates\n\n**Cost of monitoring** (kept)\n\n| a | b |\n<!-- end of" in text


def test_combine_adds_streams_and_lets_a_rerun_replace_a_method() -> None:
    bench = _drift_module()
    base = bench.Cell("toy", "s", 200, 2, {"safemodel": 1, "evidently": 2},
                      {"evidently": [3.0, 4.0]}, 0)
    more = bench.Cell("toy", "s", 200, 3, {"safemodel": 0, "evidently": 1},
                      {"evidently": [0.0, 1.0, 5.0]}, 1)
    rerun = bench.Cell("toy", "s", 200, 2, {"safemodel": 2, "scipy": 0}, {}, 0)
    (joined,) = bench.combine([base, more])
    assert (joined.trials, joined.hits) == (5, {"safemodel": 1, "evidently": 3})
    assert joined.scores["evidently"] == [3.0, 4.0, 0.0, 1.0, 5.0]
    (replaced,) = bench.combine([base, rerun])  # same batches: the rerun's safemodel wins
    assert (replaced.trials, replaced.hits) == (2, {"safemodel": 2, "evidently": 2, "scipy": 0})
