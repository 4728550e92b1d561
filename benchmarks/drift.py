"""Drift detection benchmark: how often each method flags an injected shift.

Reproduces and extends the table of issue 16: per dataset, batch size and shift, the
share of trials in which the shifted column was flagged (for "no shift": in which any
column was flagged, the per-batch false-alarm rate).

    .venv/bin/python benchmarks/drift.py                      # full run, minutes
    .venv/bin/python benchmarks/drift.py --quick              # smoke test, seconds
    .venv/bin/python benchmarks/drift.py --output docs/monitoring.md

Methods:

- ``safemodel``: ``Profile.build`` on the reference, ``drift(profile, batch)``;
  flagged = the column is in ``report.alerts`` (defaults: alpha 0.05, PSI floors).
- ``scipy``: the plain baseline of the issue, on the raw reference rows: two-sample
  KS for numbers (missing values dropped), chi-square on the contingency table for
  categories, Bonferroni over the columns at 0.05.
- ``evidently`` (optional): Evidently's default per-column drift tests, run by
  ``benchmarks/_peers.py`` in another Python (``--peer-python``) that has Evidently
  installed, never in the project's environment.
- ``nannyml`` (optional): NannyML's univariate drift with its default methods, run the
  same way (``--nannyml-python``), with ``NML_DISABLE_USAGE_LOGGING=1``.

Data. ``synthetic``: a mixed frame (five normal columns, one log-normal, two
categorical, one with a category at 8%); the reference is 100,000 fresh rows and
every batch is drawn fresh from the generator, so no-shift batches are data the
reference did not see and no pool drifts by itself. ``diabetes`` and ``wine``
(scikit-learn) and ``penguins`` (palmerpenguins) are small: every trial splits the
rows anew at random, half reference, batch from the other half (batch sizes larger
than that half are skipped).

Shifts (on one column): mean +0.1 / +0.25 / +0.5 / +1 standard deviation, variance
x1.5, a category's share doubled (8% -> 16% on the synthetic frame), an unseen
category in 5% of rows, 10% of values missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from safemodel.monitoring.drift import drift
from safemodel.monitoring.profile import Profile

Shift = Callable[[pd.DataFrame, "Dataset", np.random.Generator], pd.DataFrame]

SIZES = (15, 50, 200, 1000, 10_000)


@dataclass
class Dataset:
    name: str
    numeric: str  # the column numeric shifts apply to
    categorical: str | None  # the column category shifts apply to
    categories: dict[str, list[str]]
    frame: pd.DataFrame | None = None  # small data sets: split anew every trial
    generate: Callable[[int, np.random.Generator], pd.DataFrame] | None = None

    @property
    def max_batch(self) -> int:
        return 10**9 if self.frame is None else len(self.frame) // 2


# -- data -------------------------------------------------------------------------------


def _synthetic(n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({
        "n0": rng.normal(50, 10, n),
        "n1": rng.normal(0, 1, n),
        "n2": rng.normal(-3, 0.5, n),
        "n3": rng.normal(100, 25, n),
        "n4": rng.normal(0, 5, n),
        "n5": rng.lognormal(0, 0.75, n),
        "c0": rng.choice(["a", "b", "c", "d"], n, p=[0.08, 0.32, 0.3, 0.3]),
        "c1": rng.choice([f"k{i}" for i in range(6)], n),
    })  # fmt: skip


def datasets(quick: bool, names: Sequence[str] | None = None) -> list[Dataset]:
    out = _datasets(quick)
    return [d for d in out if d.name in names] if names else out


def _datasets(quick: bool) -> list[Dataset]:
    out = [
        Dataset("synthetic", "n0", "c0", {"c0": list("abcd"), "c1": [f"k{i}" for i in range(6)]},
                generate=_synthetic),
    ]  # fmt: skip
    if quick:
        return out
    from palmerpenguins import load_penguins
    from sklearn.datasets import load_diabetes, load_wine

    diabetes = load_diabetes(as_frame=True).data
    wine = load_wine(as_frame=True).data
    penguins = load_penguins().drop(columns=["species"])
    cats = {c: sorted(penguins[c].dropna().unique().tolist()) for c in ("island", "sex")}
    for c in cats:
        penguins[c] = penguins[c].astype(object)
    out += [
        Dataset("diabetes", "bmi", None, {}, frame=diabetes),
        Dataset("wine", "alcohol", None, {}, frame=wine),
        Dataset("penguins", "bill_length_mm", "island", cats, frame=penguins),
    ]
    return out


# -- shifts -----------------------------------------------------------------------------


def _mean(k: float) -> Shift:
    def shift(batch: pd.DataFrame, data: Dataset, rng: np.random.Generator) -> pd.DataFrame:
        col = data.numeric
        return batch.assign(**{col: batch[col] + k * _sd(data)})

    return shift


def _variance(batch: pd.DataFrame, data: Dataset, rng: np.random.Generator) -> pd.DataFrame:
    col = data.numeric
    centre = _centre(data)
    return batch.assign(**{col: centre + (batch[col] - centre) * math.sqrt(1.5)})


def _share(batch: pd.DataFrame, data: Dataset, rng: np.random.Generator) -> pd.DataFrame:
    # Double the share of the rarest category by moving rows of the others to it.
    col = data.categorical
    assert col is not None
    values = batch[col].to_numpy(dtype=object).copy()
    rare, share = _rarest(data)  # from the population, not from the batch
    others = np.flatnonzero(values != rare)
    move = rng.random(len(others)) < share / (1 - share)
    values[others[move]] = rare
    return batch.assign(**{col: values})


_RAREST_CACHE: dict[str, tuple[str, float]] = {}


def _rarest(data: Dataset) -> tuple[str, float]:
    if data.name not in _RAREST_CACHE:
        _RAREST_CACHE[data.name] = _find_rarest(data)
    return _RAREST_CACHE[data.name]


def _find_rarest(data: Dataset) -> tuple[str, float]:
    assert data.categorical is not None
    if data.frame is not None:
        column = data.frame[data.categorical]
    else:
        assert data.generate is not None
        column = data.generate(100_000, np.random.default_rng(99))[data.categorical]
    shares = column.value_counts(normalize=True)
    return str(shares.idxmin()), float(shares.min())


def _unseen(batch: pd.DataFrame, data: Dataset, rng: np.random.Generator) -> pd.DataFrame:
    col = data.categorical
    assert col is not None
    values = batch[col].to_numpy(dtype=object).copy()
    values[rng.random(len(values)) < 0.05] = "never-seen"
    return batch.assign(**{col: values})


def _missing(batch: pd.DataFrame, data: Dataset, rng: np.random.Generator) -> pd.DataFrame:
    col = data.numeric
    values = batch[col].to_numpy(dtype=np.float64).copy()
    values[rng.random(len(values)) < 0.10] = np.nan
    return batch.assign(**{col: values})


SHIFTS: dict[str, tuple[Shift | None, bool]] = {
    # name -> (shift, needs a categorical column)
    "no shift (any column flagged)": (None, False),
    "mean +0.1 sd": (_mean(0.1), False),
    "mean +0.25 sd": (_mean(0.25), False),
    "mean +0.5 sd": (_mean(0.5), False),
    "mean +1 sd": (_mean(1.0), False),
    "variance x1.5": (_variance, False),
    "a category's share doubled": (_share, True),
    "unseen category at 5%": (_unseen, True),
    "missing 0% -> 10%": (_missing, False),
}

_STATS_CACHE: dict[str, tuple[float, float]] = {}


def _sd(data: Dataset) -> float:
    return _moments(data)[1]


def _centre(data: Dataset) -> float:
    return _moments(data)[0]


def _moments(data: Dataset) -> tuple[float, float]:
    if data.name not in _STATS_CACHE:
        if data.frame is not None:
            column = data.frame[data.numeric]
        else:
            assert data.generate is not None
            column = data.generate(100_000, np.random.default_rng(99))[data.numeric]
        _STATS_CACHE[data.name] = (float(column.mean()), float(column.std()))
    return _STATS_CACHE[data.name]


# -- methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What one method said about one batch."""

    flags: set[str]  # columns flagged at the method's own (default) thresholds
    # Per column, a drift strength on a common scale (larger = more drift, >= 1 where
    # the default flags); None for a method compared only at its own thresholds.
    scores: dict[str, float] | None = None
    methods: dict[str, str] | None = None  # per column, the test the method chose


def safemodel_flags(profile: Profile, batch: pd.DataFrame) -> Found:
    # Not recalibrated: its 5% false-alarm rate is a design property (Holm at alpha).
    return Found(set(drift(profile, batch).alerts))


_REFERENCE_CACHE: dict[int, dict[str, object]] = {}


def _prepared(reference: pd.DataFrame, data: Dataset) -> dict[str, object]:
    """Per reference frame: sorted numbers and category counts, computed once."""
    key = id(reference)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE.clear()  # one reference at a time
        _REFERENCE_CACHE[key] = {
            col: reference[col].dropna().astype(str).value_counts()
            if col in data.categories
            else np.sort(reference[col].dropna().to_numpy(dtype=np.float64))
            for col in reference.columns
        }
    return _REFERENCE_CACHE[key]


def _ks_p(ref_sorted: np.ndarray, cur: np.ndarray) -> float:
    """scipy.stats.ks_2samp's two-sided p-value ("auto" method), on a pre-sorted reference."""
    n1, n2 = len(ref_sorted), len(cur)
    if n1 * n2 <= 10_000:
        return float(stats.ks_2samp(ref_sorted, cur).pvalue)
    # The gap between two step functions peaks at a step: checking both sides of every
    # batch value is enough, O(n2 log n1) instead of sorting the reference again.
    cur = np.sort(cur)
    gaps = [
        np.searchsorted(ref_sorted, cur, side=side) / n1 - np.searchsorted(cur, cur, side=side) / n2
        for side in ("left", "right")
    ]
    d = max(float(np.max(np.abs(g))) for g in gaps)
    return float(stats.kstwo.sf(d, np.round(n1 * n2 / (n1 + n2))))


def scipy_flags(reference: pd.DataFrame, batch: pd.DataFrame, data: Dataset) -> Found:
    flagged, scores = set(), {}
    k = len(reference.columns)
    level = 0.05 / k
    prepared = _prepared(reference, data)
    for col in reference.columns:
        if col in data.categories:
            ref_counts = prepared[col]
            assert isinstance(ref_counts, pd.Series)
            cur_counts = batch[col].dropna().astype(str).value_counts()
            if cur_counts.empty:
                continue
            table = pd.concat([ref_counts, cur_counts], axis=1).fillna(0).to_numpy().T
            if table.shape[1] < 2:
                continue
            p = stats.chi2_contingency(table, correction=False).pvalue
        else:
            ref_sorted = prepared[col]
            assert isinstance(ref_sorted, np.ndarray)
            cur_values = batch[col].dropna().to_numpy(dtype=np.float64)
            if len(cur_values) == 0:
                continue
            p = _ks_p(ref_sorted, cur_values)
        scores[col] = math.log(max(p, 1e-300)) / math.log(level)
        if p < level:
            flagged.add(col)
    return Found(flagged, scores)


# -- trials -----------------------------------------------------------------------------

CALIBRATION = "calibration (no shift)"
NO_SHIFT = "no shift (any column flagged)"
FALSE_ALARMS = 0.05  # the any-column false-alarm rate methods are matched at


@dataclass
class Cell:
    dataset: str
    shift: str
    size: int
    trials: int
    hits: dict[str, int]
    # Per method with scores, one number per trial: the largest strength over the columns
    # (no shift), or the shifted column's (a shift). -inf: not scored.
    scores: dict[str, list[float]] = field(default_factory=dict)
    stream: int = 0  # the --stream its batches came from


def calibrate(no_shift: Sequence[float], rate: float = FALSE_ALARMS) -> float:
    """The threshold at which at most ``rate`` of no-shift trials would alarm.

    ``no_shift`` holds, per no-shift trial, the largest drift strength over the columns.
    Rule: a batch alarms when a column's strength is strictly above the threshold, and
    the threshold is the ``k + 1``-th largest value, ``k = floor(rate * trials)``: at most
    ``k`` of these trials lie above it (fewer with ties), the lowest threshold that does.
    """
    ordered = sorted((v for v in no_shift), reverse=True)
    if not ordered:
        return math.inf
    k = math.floor(rate * len(ordered) + 1e-9)
    return ordered[k] if k < len(ordered) else -math.inf


def matched_rate(scores: Sequence[float], threshold: float) -> float:
    """Share of trials whose strength is above a calibrated threshold."""
    return sum(s > threshold for s in scores) / len(scores) if scores else math.nan


def run(
    quick: bool,
    peers: dict[str, Callable[..., Found]] | None,
    sizes: Sequence[int] | None = None,
    seed: int = 0,
    trials: int | None = None,
    no_shift_trials: int | None = None,
    calibration_trials: int = 0,
    names: Sequence[str] | None = None,
    shifts: Sequence[str] | None = None,
    stream: int = 0,
) -> list[Cell]:
    rng = np.random.default_rng(seed)
    cells: list[Cell] = []
    sizes = sizes or ((50, 200) if quick else SIZES)
    for data in datasets(quick, names):
        fixed_profile, fixed_reference = None, None
        if data.generate is not None:
            fixed_reference = data.generate(2_000 if quick else 100_000, rng)
            fixed_profile = Profile.build(fixed_reference, categorical=data.categories)
        if stream:
            # Same reference, other batches: more trials of a cell from another process.
            rng = np.random.default_rng([seed, stream])
        for size in sizes:
            if size > data.max_batch:
                continue
            # Calibration trials are no-shift trials of their own, apart from the ones
            # that report the matched false-alarm rate.
            calibrate_here = calibration_trials and (shifts is None or CALIBRATION in shifts)
            plan = [(CALIBRATION, None, calibration_trials)] if calibrate_here else []
            for name, (shift, needs_category) in SHIFTS.items():
                if needs_category and data.categorical is None:
                    continue
                if shifts is not None and name not in shifts:
                    continue
                count = trials or _trials(quick, shift is None, size)
                if shift is None and no_shift_trials:
                    count = no_shift_trials
                plan.append((name, shift, count))
            for name, shift, count in plan:
                hits = {"safemodel": 0, "scipy": 0} | dict.fromkeys(peers or {}, 0)
                cell = Cell(data.name, name, size, count, hits, stream=stream)
                for _ in range(count):
                    _trial(data, size, shift, rng, fixed_reference, fixed_profile, peers, cell)
                cells.append(cell)
                print(f"{data.name:9s} {size:6d} {name:30s} "
                      + " ".join(f"{m}={h / count:.2f}" for m, h in cell.hits.items()),
                      file=sys.stderr, flush=True)  # fmt: skip
    return cells


def _trial(
    data: Dataset,
    size: int,
    shift: Shift | None,
    rng: np.random.Generator,
    fixed_reference: pd.DataFrame | None,
    fixed_profile: Profile | None,
    peers: dict[str, Callable[..., Found]] | None,
    cell: Cell,
) -> None:
    if data.generate is not None:
        reference, profile = fixed_reference, fixed_profile
        batch = data.generate(size, rng)
    else:
        reference, batch = _split(data, size, rng)
        profile = Profile.build(reference, categorical=data.categories)
    assert reference is not None
    assert profile is not None
    target = data.numeric
    if shift is not None:
        batch = shift(batch, data, rng)
        if shift in (_share, _unseen):
            target = data.categorical or target
    found = {
        "safemodel": safemodel_flags(profile, batch),
        "scipy": scipy_flags(reference, batch, data),
    }
    for peer_name, peer in (peers or {}).items():
        found[peer_name] = peer(reference, batch, data)
    for method, result in found.items():
        cell.hits[method] += bool(result.flags) if shift is None else target in result.flags
        if result.scores is None:
            continue
        if shift is None:
            score = max(result.scores.values(), default=-math.inf)
        else:
            score = result.scores.get(target, -math.inf)
        cell.scores.setdefault(method, []).append(score)


def _trials(quick: bool, no_shift: bool, size: int) -> int:
    if quick:
        return 2
    if no_shift:
        return 100
    return 100 if size <= 1000 else 30


def _split(data: Dataset, size: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    assert data.frame is not None
    order = rng.permutation(len(data.frame))
    half = len(order) // 2
    reference = data.frame.iloc[order[:half]].reset_index(drop=True)
    batch = data.frame.iloc[order[half : half + size]].reset_index(drop=True)
    return reference, batch


# -- cost of monitoring ------------------------------------------------------------------


@dataclass
class Cost:
    rows: int
    call: str
    ms: float  # median seconds per call, in ms
    ratio: tuple[float, float, float]  # median, q1, q3 of call / raw predict_proba


def monitor_cost(quick: bool) -> list[Cost]:
    """Monitoring next to scoring, with the penguins LogisticRegression pipeline.

    Interleaved, paired rounds (``benchmarks/_timing.py``) in CPU time: per round, each
    call's time over the raw estimator's ``predict_proba`` on the same rows; medians and
    quartiles.
    """
    from _pipelines import lr_pipeline, penguins, rows
    from _timing import interleave

    import safemodel as sm

    X, y = penguins()
    model = lr_pipeline(X, y)
    bundle = sm.ModelBundle.from_training(model, X, name="penguins-lr")
    out: list[Cost] = []
    for n in (1000,) if quick else (10_000, 100_000):
        batch = rows(X, n)
        proba = bundle.predict_proba(batch)
        monitor = sm.Monitor(bundle)
        timings = interleave(
            {
                "raw estimator predict_proba": lambda b=batch: model.predict_proba(b),
                "bundle.predict_proba": lambda b=batch: bundle.predict_proba(b),
                "Monitor.observe(X, scores=proba)":
                    lambda b=batch, p=proba, m=monitor: m.observe(b, scores=p),
                "Monitor.report()": lambda m=monitor: m.report(),
            },
            budget=2.0 if quick else 40.0, min_rounds=3 if quick else 15, max_rounds=200,
            # CPU time of this process: all four calls stay in it, and CPU time is what
            # other load on a shared machine disturbs least.
            clock=time.process_time,
        )  # fmt: skip
        base = "raw estimator predict_proba"
        out += [
            Cost(n, name, timings.median(name) * 1e3, timings.ratio(name, base))
            for name in timings.samples
        ]
    return out


# -- output -----------------------------------------------------------------------------


def markdown(cells: Sequence[Cell], costs: Sequence[Cost], quick: bool) -> str:
    methods = list(cells[0].hits) if cells else []
    lines = [
        f"Generated by `benchmarks/drift.py{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}; numpy {np.__version__}, pandas {pd.__version__}, "
        f"scipy {__import__('scipy').__version__}."
        + (" `--quick`: a smoke test, not numbers to quote." if quick else ""),
        "",
    ]
    if any(c.shift == CALIBRATION for c in cells):
        return "\n".join(lines + matched_tables(cells))
    lines += [
        "Share of trials in which the shifted column was flagged ("
        + " / ".join(methods)
        + '); for "no shift", the share in which any column was flagged. Trials per cell '
        "in brackets.",
        "",
    ]
    for dataset in dict.fromkeys(c.dataset for c in cells):
        mine = [c for c in cells if c.dataset == dataset]
        sizes = sorted({c.size for c in mine})
        lines += [f"**{dataset}**", ""]
        lines.append("| shift | " + " | ".join(f"{s:,} rows" for s in sizes) + " |")
        lines.append("| --- |" + " --- |" * len(sizes))
        for shift in dict.fromkeys(c.shift for c in mine):
            row = [shift]
            for size in sizes:
                cell = next((c for c in mine if c.shift == shift and c.size == size), None)
                if cell is None:
                    row.append("")
                    continue
                row.append(" / ".join(f"{cell.hits[m] / cell.trials:.2f}" for m in methods)
                           + f" ({cell.trials})")  # fmt: skip
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if costs:
        lines += [
            f"{COSTS} (penguins LogisticRegression pipeline; interleaved "
            "paired rounds, CPU time; ratio to the raw estimator's `predict_proba` on the "
            "same rows: "
            "median [quartiles])",
            "",
            "| rows | call | ms (median) | share of raw predict_proba |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.rows:,} | `{c.call}` | {c.ms:.2f} | {c.ratio[0]:.1%} "
            f"[{c.ratio[1]:.1%}, {c.ratio[2]:.1%}] |"
            for c in costs
        ]
        lines.append("")
    return "\n".join(lines)


def matched_tables(cells: Sequence[Cell]) -> list[str]:
    """One table per data set and size: each method at its defaults and, for methods
    with scores, at the threshold calibrated to a 5% false-alarm rate."""
    methods = list(cells[0].hits)
    lines = [
        "Share of trials in which the shifted column was flagged; for \"no shift\", in "
        "which any column was flagged (trials in brackets). *default*: the method's own "
        "thresholds. *matched*: one threshold on the method's per-column drift strength, "
        f"calibrated on separate no-shift trials so that {FALSE_ALARMS:.0%} of them alarm "
        "(`calibrate()`); the no-shift row then shows the rate on the held-out no-shift "
        "trials. safemodel is not recalibrated: its shipped thresholds throughout.",
        "",
    ]
    for dataset in dict.fromkeys(c.dataset for c in cells):
        for size in sorted({c.size for c in cells if c.dataset == dataset}):
            mine = [c for c in cells if c.dataset == dataset and c.size == size]
            calibration = next(c for c in mine if c.shift == CALIBRATION)
            scored = [m for m in methods if m in calibration.scores]
            thresholds = {m: calibrate(calibration.scores[m]) for m in scored}
            header = ["shift"]
            for m in methods:
                header += [f"{m} default", f"{m} matched"] if m in scored else [m]
            lines += [f"**{dataset}, {size:,} rows**", "",
                      "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]  # fmt: skip
            cal_row = [f"{CALIBRATION}: threshold"]
            for m in methods:
                alarms = calibration.hits[m] / calibration.trials
                if m in scored:
                    cal_row += [f"{alarms:.2f} ({calibration.trials})",
                                f"{thresholds[m]:.3g}"]  # fmt: skip
                else:
                    cal_row.append(f"{alarms:.2f} ({calibration.trials})")
            for cell in mine:
                if cell.shift == CALIBRATION:
                    continue
                row = [cell.shift]
                for m in methods:
                    row.append(f"{cell.hits[m] / cell.trials:.2f} ({cell.trials})")
                    if m in scored:
                        row.append(f"{matched_rate(cell.scores[m], thresholds[m]):.2f}")
                lines.append("| " + " | ".join(row) + " |")
            lines += ["| " + " | ".join(cal_row) + " |", ""]
    return lines


COSTS = "**Cost of monitoring**"


def write(path: Path, body: str, region: str = "") -> None:
    """Put ``body`` between the markers of a generated region, replacing what was there.

    A body without the cost table (``--no-cost``) keeps the cost table already there.
    """
    name = f"drift {region} benchmark" if region else "drift benchmark"
    begin = f"<!-- {name}: generated by benchmarks/drift.py, do not edit by hand -->"
    end = f"<!-- end of {name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        old, tail = rest.split(end, 1)
        if COSTS in old and COSTS not in body:
            body = body.rstrip("\n") + "\n\n" + COSTS + old.split(COSTS, 1)[1].rstrip("\n")
        text = head + f"{begin}\n{body}\n{end}" + tail
    else:
        text = text.rstrip("\n") + "\n\n" + f"{begin}\n{body}\n{end}" + "\n"
    path.write_text(text, encoding="utf-8")


def _peer(python: str, tool: str = "evidently") -> Callable[..., Found]:
    """A peer tool in another interpreter, over a pipe: one JSON line per batch."""
    script = Path(__file__).with_name("_peers.py")
    # NannyML sends usage telemetry unless told not to; _peers.py sets this too.
    env = os.environ | {"NML_DISABLE_USAGE_LOGGING": "1"}
    process = subprocess.Popen(
        [python, str(script), tool], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, env=env,
    )

    sent: set[str] = set()

    def flags(reference: pd.DataFrame, batch: pd.DataFrame, data: Dataset) -> Found:
        assert process.stdin is not None
        assert process.stdout is not None
        key = data.name if data.generate is not None else None
        message = {
            # A fixed reference crosses the pipe once; the peer keeps it by key.
            "reference": None if key in sent else reference.to_json(orient="split"),
            "batch": batch.to_json(orient="split"),
            "categorical": sorted(data.categories),
            "key": key,
        }
        if key is not None:
            sent.add(key)
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        answer = json.loads(process.stdout.readline())
        scores = {c: -math.inf if v is None else float(v) for c, v in answer["scores"].items()}
        METHODS_SEEN.setdefault((tool, data.name), set()).update(answer["methods"].values())
        return Found(set(answer["flags"]), scores, answer["methods"])

    return flags


# (peer, data set) -> the per-column tests the peer chose, for the text beside the tables
METHODS_SEEN: dict[tuple[str, str], set[str]] = {}


def combine(cells: Sequence[Cell]) -> list[Cell]:
    """Cells of the same data set, shift, size and trial count merged, later methods winning.

    Runs with the same ``--seed`` draw the same batches whatever methods they run (no
    method draws random numbers), so a rerun of safemodel alone can be set beside the
    peers of an earlier run.
    """
    merged: dict[tuple[str, str, int], Cell] = {}
    for cell in cells:
        key = (cell.dataset, cell.shift, cell.size)
        into = merged.get(key)
        if into is None:
            merged[key] = Cell(*key, cell.trials, dict(cell.hits), dict(cell.scores),
                               cell.stream)  # fmt: skip
        elif into.hits.keys() & cell.hits.keys() and cell.stream != into.stream:
            # Other batches (another --stream): more trials of the same cell.
            into.trials += cell.trials
            for method, hits in cell.hits.items():
                into.hits[method] += hits
            for method, scores in cell.scores.items():
                into.scores[method] = into.scores[method] + scores
        else:  # the same batches: methods of a later run replace or join the earlier
            into.hits.update(cell.hits)
            into.scores.update(cell.scores)
    return list(merged.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test in seconds")
    parser.add_argument("--output", type=Path, help="Markdown file to write the tables into")
    parser.add_argument("--peer-python", help="a Python with Evidently installed")
    parser.add_argument("--nannyml-python", help="a Python with NannyML installed")
    parser.add_argument("--sizes", help="batch sizes, comma-separated (default: all five)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost table")
    parser.add_argument("--trials", type=int, help="trials per cell (default: 100, 30 at 10,000)")
    parser.add_argument("--no-shift-trials", type=int,
                        help="trials of the no-shift cell (default: as --trials)")
    parser.add_argument("--calibration-trials", type=int, default=0,
                        help="extra no-shift trials per size to calibrate each method's "
                        "threshold to a 5%% false-alarm rate (the matched comparison; "
                        "its tables go to their own region of --output)")  # fmt: skip
    parser.add_argument("--datasets", help="data sets, comma-separated (default: all)")
    parser.add_argument("--shifts", help="shifts to run, by name, separated by ';' (default: all;"
                        f" '{CALIBRATION}' is one)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw (default 0)")
    parser.add_argument("--stream", type=int, default=0,
                        help="draw other batches (same reference): 1, 2, ... for more trials "
                        "of a cell in parallel processes, joined by --combine")  # fmt: skip
    parser.add_argument("--save", type=Path, help="also write the raw cells to this JSON file")
    parser.add_argument("--combine", type=Path, nargs="+",
                        help="no trials: tables from cells saved by earlier runs")  # fmt: skip
    args = parser.parse_args(argv)
    if args.combine:
        cells = combine([Cell(**c) for path in args.combine for c in json.loads(path.read_text())])
        body = markdown(cells, [], args.quick)
        calibrated = any(c.shift == CALIBRATION for c in cells)
        if args.output:
            write(args.output, body, "matched" if calibrated else "")
        else:
            print(body)
        return 0
    peers = {}
    if args.peer_python:
        peers["evidently"] = _peer(args.peer_python, "evidently")
    if args.nannyml_python:
        peers["nannyml"] = _peer(args.nannyml_python, "nannyml")
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    cells = run(args.quick, peers, sizes, seed=args.seed, trials=args.trials,
                no_shift_trials=args.no_shift_trials,
                calibration_trials=args.calibration_trials,
                names=args.datasets.split(",") if args.datasets else None,
                shifts=args.shifts.split(";") if args.shifts else None,
                stream=args.stream)  # fmt: skip
    if args.save:
        args.save.write_text(json.dumps([asdict(c) for c in cells]))
    costs = [] if args.no_cost or args.calibration_trials else monitor_cost(args.quick)
    body = markdown(cells, costs, args.quick)
    for (tool, dataset), names in sorted(METHODS_SEEN.items()):
        print(f"{tool} on {dataset}: {', '.join(sorted(names))}", file=sys.stderr)
    if args.output:
        write(args.output, body, "matched" if args.calibration_trials else "")
    else:
        print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
