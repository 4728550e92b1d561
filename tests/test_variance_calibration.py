"""The drift variance test keeps its stated level in the far tail, or does not run.

A Holm-corrected report decides at small p-values (0.05 / 26 = 0.002 on a frame of
eight columns), so the variance test must reject no-shift batches at most at that
level there, heavy-tailed columns included. The full measurement, over many references
and batch sizes, is ``benchmarks/variance_calibration.py``; here a bounded version of
it with fixed seeds, through the accumulator's own moment tests.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from safemodel.monitoring.accumulator import (
    _VARIANCE_REFERENCE_ROWS,
    _VARIANCE_ROWS,
    _moment_tests,
    _variance_kurtosis,
    _variance_rows,
)
from safemodel.monitoring.drift import drift
from safemodel.monitoring.profile import Moments, Profile

Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]

COLUMNS: dict[str, Draw] = {
    "normal": lambda rng, shape: rng.normal(10.0, 2.0, shape),
    "exponential": lambda rng, shape: rng.exponential(1.0, shape),
    "t(5)": lambda rng, shape: rng.standard_t(5, shape),
    "log-normal": lambda rng, shape: rng.lognormal(0.0, 0.75, shape),  # kurtosis ~27
}
REFERENCES = 8  # a reference's own sampling error moves the rate: average over a few
DRAWS = 1_000  # per reference
LEVEL = 0.002


def _moments(draw: Draw, rows: int, seed: int) -> Moments:
    frame = pd.DataFrame({"x": draw(np.random.default_rng(seed), (1, rows))[0]})
    moments = Profile.build(frame, categorical={}).features["x"].moments  # type: ignore[union-attr]
    assert moments is not None
    return moments


def _variance_p_values(reference: Moments, draw: Draw, rows: int, seed: int) -> list[float]:
    """The variance test's p-value on ``DRAWS`` fresh no-shift batches (1.0 where it does
    not run), from the sums ``DriftAccumulator.add`` keeps."""
    d = draw(np.random.default_rng(seed), (DRAWS, rows)) - reference.mean
    sums = np.column_stack([np.full(DRAWS, float(rows)), d.sum(axis=1), (d * d).sum(axis=1)])
    out = []
    for row in sums:
        tests = {t.name: t for t in _moment_tests(reference, row)}
        out.append(tests["variance"].p_value if "variance" in tests else 1.0)
    return out


@pytest.mark.parametrize("column", list(COLUMNS))
def test_no_shift_batches_reject_at_most_at_the_level_in_the_far_tail(column: str) -> None:
    # 200-row batches against 5,000-row references. Before the kurtosis check the test
    # ran on every one of these columns and rejected at p <= 0.002 in 46 (t(5)) and 98
    # (log-normal) of these 8,000 batches (exponential: 22, normal: 11; 16 expected).
    draw = COLUMNS[column]
    p: list[float] = []
    for seed in range(REFERENCES):
        reference = _moments(draw, 5_000, seed=seed)
        p += _variance_p_values(reference, draw, 200, seed=100 + seed)
    rejected = sum(x <= LEVEL for x in p)
    # 16 expected at the level; a calibrated test exceeds 32 with chance 0.02%.
    assert rejected <= 2 * LEVEL * len(p), (column, rejected)
    if column == "normal":
        # Not vacuous: on normal data the test runs, and its level is about right.
        assert sum(x < 1.0 for x in p) >= 0.8 * len(p)
        assert 0.02 < sum(x <= 0.05 for x in p) / len(p) < 0.07


def test_the_moment_sums_here_are_the_accumulators() -> None:
    draw = COLUMNS["normal"]
    frame = pd.DataFrame({"x": draw(np.random.default_rng(3), (1, 5_000))[0]})
    profile = Profile.build(frame, categorical={})
    reference = profile.features["x"].moments  # type: ignore[union-attr]
    assert reference is not None
    batch = draw(np.random.default_rng(4), (1, 300))[0]
    report = drift(profile, pd.DataFrame({"x": batch}))
    via_drift = next(t for t in report.features["x"].tests if t.name == "variance")
    d = batch - reference.mean
    (direct,) = _moment_tests(reference, np.array([300.0, d.sum(), (d * d).sum()]))[1:]
    assert direct.p_value == pytest.approx(via_drift.p_value, rel=1e-9)


def _with(count: int, kurtosis: float, skewness: float = 0.0) -> Moments:
    variance = 4.0
    return Moments(count, 1.0, variance, skewness * variance**1.5, kurtosis * variance**2)


def test_variance_rows_runs_only_on_normal_like_tails_and_large_references() -> None:
    n = 10_000
    margin = 2.0 * math.sqrt(24.0 / n)
    assert _variance_rows(_with(n, 3.0)) == _VARIANCE_ROWS == 50
    assert _variance_rows(_with(n, 3.0 + 0.99 * margin)) == 50
    assert _variance_rows(_with(n, 3.0 + 1.01 * margin)) is None  # heavier than normal
    assert _variance_rows(_with(n, 9.0)) is None  # exponential
    assert _variance_rows(_with(n, 1.8)) == 50  # uniform: lighter tails hold
    # A (near) two-point column: kurtosis close to its floor 1 + skewness**2.
    assert _variance_rows(_with(n, 1.0 + 0.5**2 + 0.2, skewness=0.5)) is None
    assert _variance_rows(_with(n, 1.0 + 0.5**2 + 0.3, skewness=0.5)) == 50
    # Too few reference values to tell heavy tails from normal ones.
    assert _VARIANCE_REFERENCE_ROWS == 2_000
    assert _variance_rows(_with(1_999, 3.0)) is None
    assert _variance_rows(_with(2_000, 3.0)) == 50


def test_variance_kurtosis_is_the_upper_bound_of_the_reference_kurtosis() -> None:
    assert _variance_kurtosis(_with(2_400, 3.5)) == pytest.approx(3.5 + 2.0 * 0.1)
    assert _variance_kurtosis(_with(96_000, 2.0)) == pytest.approx(2.0 + 2.0 * (1 / 63.245553))


def test_drift_runs_the_variance_test_where_it_holds() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"normal": rng.normal(size=5_000), "heavy": rng.lognormal(0, 0.75, 5_000)})
    profile = Profile.build(frame, categorical={})
    small = Profile.build(frame.iloc[:1_000], categorical={})
    batch = frame.iloc[:1_000]
    names = {c: {t.name for t in r.tests} for c, r in drift(profile, batch).features.items()}
    assert "variance" in names["normal"]
    assert "variance" not in names["heavy"]
    assert {"chi_square", "ks"} <= names["heavy"]  # the binned tests still decide
    names = {c: {t.name for t in r.tests} for c, r in drift(small, batch).features.items()}
    assert "variance" not in names["normal"]
    assert "mean" in names["normal"]


def test_the_calibration_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # A smoke test of benchmarks/variance_calibration.py (no rate asserted): it imports
    # the accumulator's private run conditions, which a refactor could rename.
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "variance_calibration.py"
    spec = importlib.util.spec_from_file_location("_variance_calibration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--sizes", "200", "--columns", "normal", "t(5)"]) == 0
    out = capsys.readouterr().out
    assert "| normal (" in out
    assert "| t(5) (" in out
    assert "| off |" in out
