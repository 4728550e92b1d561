"""Is the drift variance test's stated level its real one, down to the far tail?

A Holm-corrected report decides at small p-values (0.05 / 26 = 0.002 on the synthetic
frame), so the per-column ``variance`` test must reject no-shift batches at its
nominal level there too, on heavy-tailed columns as on normal ones. This script
measures that: for each column type and batch size, ``--draws`` batches drawn fresh
from the column's distribution (never resampled from a pool), the share whose
variance-test p-value is at most 0.05, 0.01, 0.002 and 0.0005, divided by that level
(1.00 = as stated), and the share of those rejections with a variance ratio below 1
(which tail).

The reference is a fresh sample of ``--reference-rows`` values, profiled by the real
``Profile.build``; the draws are split over ``--references`` such samples, so the
rate includes how a reference's variance and kurtosis vary. A batch's statistic comes
from the real ``variance_test``, with the accumulator's kurtosis bound, on the sums
``DriftAccumulator.add`` keeps (count, sum and sum of squares of the differences from
the reference mean), computed here vectorised (checked against a real report first).
Rates are among the references the test runs on (the accumulator's own conditions),
``runs`` their share; ``off``: it runs on none. ``--ungated`` tests every reference
and ``--oracle`` uses the distribution's true kurtosis (both to diagnose, not what a
report does). The first five columns are the default; the others (``--columns``) fill
in kurtosis between the normal's and the exponential's.

With ``--shift 1.5`` the batches have their variance multiplied by 1.5 (about the
reference mean), and the table gives detection rates instead.

    nice -n 10 .venv/bin/python benchmarks/variance_calibration.py           # ~30 s
    nice -n 10 .venv/bin/python benchmarks/variance_calibration.py --quick   # seconds
    .venv/bin/python benchmarks/variance_calibration.py --columns normal --sizes 200 1000 \
        --shift 1.5                                                          # power

docs/monitoring.md ("The variance test's far tail") quotes the default run.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from safemodel.monitoring.accumulator import (
    DriftAccumulator,
    _variance_kurtosis,
    _variance_rows,
)
from safemodel.monitoring.profile import Moments, Profile
from safemodel.monitoring.statistics import variance_test

Draw = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

LEVELS = (0.05, 0.01, 0.002, 0.0005)
SIZES = (50, 100, 200, 500, 1000)


def _t(df: int) -> Draw:
    return lambda rng, shape: rng.standard_t(df, shape)


def _lognormal(sigma: float) -> Draw:
    return lambda rng, shape: rng.lognormal(0.0, sigma, shape)


def _lognormal_kurtosis(sigma: float) -> float:
    a = sigma * sigma
    return math.exp(4 * a) + 2 * math.exp(3 * a) + 3 * math.exp(2 * a) - 3


# name -> (draw, true kurtosis). The first five are the brief's; the others fill in
# kurtosis between normal and exponential.
COLUMNS: dict[str, tuple[Draw, float]] = {
    "normal": (lambda rng, shape: rng.normal(0.0, 1.0, shape), 3.0),
    "exponential": (lambda rng, shape: rng.exponential(1.0, shape), 9.0),
    "t(5)": (_t(5), 9.0),
    "log-normal 0.6": (_lognormal(0.6), _lognormal_kurtosis(0.6)),
    "log-normal 0.75": (_lognormal(0.75), _lognormal_kurtosis(0.75)),
    "t(24)": (_t(24), 3.3),
    "t(16)": (_t(16), 3.5),
    "t(12)": (_t(12), 3.75),
    "t(10)": (_t(10), 4.0),
    "log-normal 0.25": (_lognormal(0.25), _lognormal_kurtosis(0.25)),
    "gamma(4)": (lambda rng, shape: rng.gamma(4.0, 1.0, shape), 4.5),
    "t(8)": (_t(8), 4.5),
    "log-normal 0.4": (_lognormal(0.4), _lognormal_kurtosis(0.4)),
    "gamma(2)": (lambda rng, shape: rng.gamma(2.0, 1.0, shape), 6.0),
    "t(6)": (_t(6), 6.0),
    "uniform": (lambda rng, shape: rng.uniform(0.0, 1.0, shape), 1.8),
}
BRIEF = ("normal", "exponential", "t(5)", "log-normal 0.6", "log-normal 0.75")


def reference_moments(draw: Draw, rows: int, rng: np.random.Generator) -> Moments:
    """The moments the real profile stores for a fresh sample of ``rows`` values."""
    profile = Profile.build(pd.DataFrame({"x": draw(rng, (rows,))}), categorical={})
    moments = profile.features["x"].moments  # type: ignore[union-attr]
    assert moments is not None
    return moments


def p_values(
    reference: Moments,
    draw: Draw,
    n: int,
    draws: int,
    rng: np.random.Generator,
    shift: float = 1.0,
    kurtosis: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Variance-test p-values and variance ratios of ``draws`` fresh batches of ``n``
    (with ``kurtosis``: that one, not the accumulator's bound, for diagnosis)."""
    big_n = reference.count
    variance = reference.variance * big_n / (big_n - 1)
    if kurtosis is None:
        kurtosis = _variance_kurtosis(reference)
    p = np.empty(draws)
    ratio = np.empty(draws)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, draws, chunk):
        k = min(chunk, draws - start)
        d = draw(rng, (k, n)) - reference.mean
        if shift != 1.0:
            d *= math.sqrt(shift)
        s1 = d.sum(axis=1)
        s2 = np.einsum("ij,ij->i", d, d)
        batch = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1)
        for i in range(k):
            _, p[start + i], ratio[start + i] = variance_test(
                variance, big_n, kurtosis, float(batch[i]), n
            )
    return p, ratio


def check_against_accumulator(draw: Draw, rng: np.random.Generator) -> None:
    """The vectorised sums give the p-value a real DriftAccumulator report gives
    (on a column whose test runs on 2,000 values)."""
    frame = pd.DataFrame({"x": draw(rng, (5_000,))})
    profile = Profile.build(frame, categorical={})
    moments = profile.features["x"].moments  # type: ignore[union-attr]
    assert moments is not None
    batch = draw(rng, (2_000,))
    acc = DriftAccumulator(profile)
    acc.add(pd.DataFrame({"x": batch}))
    test = next(t for t in acc.report().features["x"].tests if t.name == "variance")
    seeded = np.random.default_rng(0)
    p, _ = p_values(moments, lambda _r, shape: batch.reshape(shape), 2_000, 1, seeded)
    assert math.isclose(test.p_value, p[0], rel_tol=1e-6), (test.p_value, p[0])


def _runs(reference: Moments, n: int) -> bool:
    """Whether a report runs the variance test on ``n`` batch values against ``reference``."""
    needed = _variance_rows(reference)
    return needed is not None and n >= needed


def run(
    columns: Sequence[str],
    sizes: Sequence[int],
    draws: int,
    references: int,
    reference_rows: int,
    seed: int,
    shift: float,
    oracle: bool = False,
    ungated: bool = False,
) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    check_against_accumulator(COLUMNS["uniform"][0], rng)
    rows: list[dict[str, object]] = []
    for name in columns:
        draw, truth = COLUMNS[name]
        refs = [reference_moments(draw, reference_rows, rng) for _ in range(references)]
        for n in sizes:
            running = [r for r in refs if _runs(r, n)]
            tested = refs if ungated else running
            ps, below = [np.zeros(0)], [np.zeros(0, dtype=bool)]
            per = -(-draws // len(tested)) if tested else 0
            for ref in tested:
                p, ratio = p_values(ref, draw, n, per, rng, shift, truth if oracle else None)
                ps.append(p)
                below.append(ratio < 1.0)
            p_all, low = np.concatenate(ps), np.concatenate(below)
            rejected = p_all <= 0.002
            rows.append({
                "column": name, "n": n, "draws": p_all.size,
                "kurtosis": float(np.median([r.kurtosis for r in refs])),
                "runs": len(running) / len(refs),
                **{f"{a:g}": float(np.mean(p_all <= a)) if p_all.size else math.nan
                   for a in LEVELS},
                # Which tail: the share of the 0.002 rejections with a ratio below 1.
                "low": float(np.mean(low[rejected])) if rejected.any() else math.nan,
            })  # fmt: skip
    return rows


def table(rows: Sequence[dict[str, object]], shift: float) -> str:
    what = "rejection rate / level" if shift == 1.0 else f"detection of variance x{shift:g}"
    head = ["column (ref kurtosis, median)", "rows", "draws", *(f"{a:g}" for a in LEVELS),
            "low tail @0.002", "runs"]  # fmt: skip
    lines = [f"{what} among the references the test runs on; 'runs' = their share",
             "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]  # fmt: skip
    for r in rows:
        if not r["draws"]:
            lines.append(
                f"| {r['column']} ({float(r['kurtosis']):.1f}) | {r['n']:,} | 0 | "  # type: ignore[arg-type]
                + " | ".join(["off"] * (len(LEVELS) + 1))
                + " | 0.000 |"
            )
            continue
        if shift == 1.0:
            cells = [f"{float(r[f'{a:g}']) / a:.2f}" for a in LEVELS]  # type: ignore[arg-type]
        else:
            cells = [f"{float(r[f'{a:g}']):.3f}" for a in LEVELS]  # type: ignore[arg-type]
        lines.append(
            f"| {r['column']} ({float(r['kurtosis']):.1f}) | {r['n']:,} | {r['draws']:,} | "  # type: ignore[arg-type]
            + " | ".join(cells)
            + f" | {float(r['low']):.2f} | {float(r['runs']):.3f} |"  # type: ignore[arg-type]
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", nargs="+", default=list(BRIEF), choices=list(COLUMNS))
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--draws", type=int, default=20_000)
    parser.add_argument("--references", type=int, default=400)
    parser.add_argument("--reference-rows", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--shift", type=float, default=1.0)
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="use the true kurtosis (diagnosis), not the reference's bound",
    )
    parser.add_argument(
        "--ungated",
        action="store_true",
        help="test every reference, also those the test does not run on",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 draws, 2 references")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws, args.references = 1_000, 2
    began = time.perf_counter()
    rows = run(args.columns, args.sizes, args.draws, args.references, args.reference_rows,
               args.seed, args.shift, args.oracle, args.ungated)  # fmt: skip
    print(f"reference rows {args.reference_rows}, {args.references} references, seed {args.seed}")
    print(table(rows, args.shift))
    print(f"({time.perf_counter() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
