#!/usr/bin/env python3
"""Benchmark safemodel against the raw estimator and its peers; write the results.

    python3 tasks.py bench                   # installs the `bench` extra, then runs this
    .venv/bin/python benchmarks/run.py       # full run, ~10 minutes -> docs/performance.md
    .venv/bin/python benchmarks/run.py --quick --output /tmp/perf.md   # smoke test, seconds
    .venv/bin/python benchmarks/run.py --threads 1   # one BLAS/OpenMP thread (busy machines)

On the palmer penguins pipelines, in one process, candidates interleaved and warmed up,
medians of repeated runs and per-round ratios to the raw estimator:

- scoring at 1 .. 100,000 rows: raw ``predict_proba``; ``bundle.predict_proba``; pandera
  ``validate`` then raw; an MLflow pyfunc with its signature enforcement;
- loading one model: ``safemodel.load`` (verified), joblib, cloudpickle, skops, MLflow,
  and ``joblib.load`` plus one call of each scoring method on the golden rows;
- file sizes; ``Monitor.observe`` overhead; 50 models loaded into a fresh process
  (time and resident memory); function-level profiles of the hot paths.

Peers (mlflow-skinny, skops, pyinstrument, psutil) are optional: one that is not
installed is reported as "not installed" and skipped. Nothing here asserts a time;
``tests/test_benchmarks.py`` only checks that ``--quick`` runs and writes its tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from _formats import FORMATS, folder_size, peer, peer_versions
from _loadmany import KINDS
from _pipelines import PIPELINES, penguins, rows
from _report import machine, table, write
from _timing import Timings, interleave

import safemodel as sm

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOT_INSTALLED = "not installed"

# The performance budget every release is held to (the first table of docs/performance.md).
SCORE_BUDGET = 1.05
LOAD_BUDGET = 1.25  # verified load / (joblib.load + one call of each verified method)
MANY_BUDGET = 1.5  # 50 bundles via the store, verified / the same floor summed
MEMORY_BUDGET = 1.3  # resident memory of 50 loaded bundles / 50 joblib.load


@dataclass(frozen=True)
class Plan:
    """How much to measure; the budgets are seconds per group of interleaved candidates."""

    pipelines: tuple[str, ...]
    sizes: tuple[int, ...]
    score_budget: float
    # For 100,000 rows and more: one round of the four candidates takes 0.5-3 s there, and
    # the 12 s of the smaller sizes gave 23 rounds for the LR pipeline, whose ratio's
    # quartiles then spanned 0.97-1.12.
    large_score_budget: float
    load_budget: float
    monitor_sizes: tuple[int, ...]
    monitor_pipelines: tuple[str, ...]
    monitor_budget: float
    warmup: int
    min_rounds: int
    max_rounds: int
    many: int
    many_repeats: int
    many_concurrently: bool  # start the fresh processes together (times then mean nothing)
    profile_seconds: float
    profile_pipelines: tuple[str, ...]  # bundle.predict_proba at 1 and 10,000 rows
    profile_loads: tuple[str, ...]  # safemodel.load

    def time(self, candidates: dict[str, Callable[[], object]], budget: float, *,
             clock: Callable[[], float] = time.perf_counter) -> Timings:
        return interleave(candidates, budget=budget, warmup=self.warmup,
                          min_rounds=self.min_rounds, max_rounds=self.max_rounds, clock=clock)


# About 10 minutes on an idle 2-core machine. Monitoring cost does not depend on the
# estimator when the scores are passed, so one pipeline shows it.
FULL = Plan(pipelines=tuple(PIPELINES), sizes=(1, 100, 10_000, 100_000), score_budget=12.0,
            large_score_budget=40.0, load_budget=10.0, monitor_sizes=(1, 100, 10_000, 100_000),
            monitor_pipelines=("lr",), monitor_budget=15.0, warmup=2, min_rounds=3,
            max_rounds=400, many=50, many_repeats=5, many_concurrently=False,
            profile_seconds=3.0, profile_pipelines=("lr", "hgb"),
            profile_loads=("lr", "hgb", "rf"))
# One pipeline, two rounds: every code path runs, no number means anything.
QUICK = Plan(pipelines=("lr",), sizes=(1, 100), score_budget=0.1, large_score_budget=0.1,
             load_budget=0.1,
             monitor_sizes=(100,), monitor_pipelines=("lr",), monitor_budget=0.1, warmup=1,
             min_rounds=2, max_rounds=10, many=3, many_repeats=1, many_concurrently=True,
             profile_seconds=0.15,
             profile_pipelines=("lr",), profile_loads=("lr",))


def say(*parts: object) -> None:
    print(*parts, flush=True)


_T = TypeVar("_T")


def phase(name: str, step: Callable[..., _T], *args: Any) -> _T:
    started = time.perf_counter()
    out = step(*args)
    say(f"[{name}: {time.perf_counter() - started:.1f} s]")
    return out


def ms(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.01:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e3:.2f} ms"


def ratio_cell(t: Timings, name: str, base: str) -> str:
    mid, q1, q3 = t.ratio(name, base)
    return f"{mid:.2f} ({q1:.2f}-{q3:.2f})"


def quietly(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` with warnings silenced (peers warn on every call about pickles and ints)."""
    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return call()
    return run


# --------------------------------------------------------------------------- setup


@dataclass
class Subject:
    """One pipeline, its saved files in every format, and its loaded bundle."""

    key: str
    label: str
    bundle: sm.ModelBundle  # as loaded from disk, the way a service holds it
    paths: dict[str, Path]
    sizes: dict[str, int]  # bytes on disk per format


def prepare(folder: Path, plan: Plan) -> tuple[pd.DataFrame, dict[str, Subject]]:
    X, y = penguins()
    subjects = {}
    for key in plan.pipelines:
        label, build = PIPELINES[key]
        started = time.perf_counter()
        built = sm.ModelBundle.from_training(build(X, y), X, name=f"penguins-{key}",
                                             version="1.0.0")
        paths = {}
        for fmt_key, fmt in FORMATS.items():
            if fmt.available:
                paths[fmt_key] = fmt.save(built, folder)
        bundle = sm.load(paths["safemodel"])
        sizes = {fmt: folder_size(path) for fmt, path in paths.items()}
        subjects[key] = Subject(key, label, bundle, paths, sizes)
        say(f"built {label} in {time.perf_counter() - started:.1f} s")
    return X, subjects


# ------------------------------------------------------------------------- scoring


def bench_scoring(X: pd.DataFrame, subjects: dict[str, Subject],
                  plan: Plan) -> dict[tuple[str, int], Timings]:
    results = {}
    mlflow_ok = peer("mlflow") is not None
    for key, subject in subjects.items():
        bundle = subject.bundle
        estimator = bundle.estimator
        schema = bundle.contract.schema
        pyfunc = FORMATS["mlflow"].load(subject.paths["mlflow"]) if mlflow_ok else None
        for n in plan.sizes:
            Xn = rows(X, n)
            expected = estimator.predict_proba(Xn)
            np.testing.assert_allclose(bundle.predict_proba(Xn), expected)
            candidates: dict[str, Callable[[], object]] = {
                "raw": lambda e=estimator, x=Xn: e.predict_proba(x),
                "bundle": lambda b=bundle, x=Xn: b.predict_proba(x),
                "pandera": lambda e=estimator, s=schema, x=Xn: e.predict_proba(s.validate(x)),
            }
            if pyfunc is not None:
                candidates["mlflow"] = quietly(lambda p=pyfunc, x=Xn: p.predict(x))
                np.testing.assert_allclose(np.asarray(candidates["mlflow"]()), expected)
            # CPU time: every candidate runs in this process; at 100,000 rows the raw
            # call's ~7,500 page faults a call made wall-time rounds swing by 10%.
            budget = plan.large_score_budget if n >= 100_000 else plan.score_budget
            t = plan.time(candidates, budget, clock=time.process_time)
            results[key, n] = t
            others = "; ".join(f"{c} {t.ratio(c, 'raw')[0]:.2f}x" for c in candidates
                               if c != "raw")
            say(f"scoring {key:>3} {n:>7,} rows: raw {ms(t.median('raw'))}; {others} "
                f"({t.rounds} rounds)")
    return results


def scoring_tables(subjects: dict[str, Subject], results: dict[tuple[str, int], Timings],
                   sizes: Sequence[int]) -> str:
    out = []
    for key, subject in subjects.items():
        body = []
        for n in sizes:
            t = results[key, n]
            mlflow = ratio_cell(t, "mlflow", "raw") if "mlflow" in t.samples else NOT_INSTALLED
            body.append([f"{n:,}", ms(t.median("raw")), ratio_cell(t, "bundle", "raw"),
                         ratio_cell(t, "pandera", "raw"), mlflow, t.rounds])
        out.append(f"**{subject.label}**\n\n" + table(
            ["rows", "raw `predict_proba`", "`bundle.predict_proba`",
             "pandera `validate` + raw", "MLflow pyfunc", "rounds"], body))
    return "\n\n".join(out)


# ---------------------------------------------------------------------------- load

LOADS = {
    "safemodel": "`safemodel.load` (verified)",
    "safemodel-noverify": "`safemodel.load(verify=False)`",
    "joblib": "`joblib.load`",
    "joblib+golden": "`joblib.load` + each verified method on the golden rows (floor)",
    "cloudpickle": "`cloudpickle.loads`",
    "skops": "`skops.io.load`",
    "mlflow": "`mlflow.pyfunc.load_model`",
}
LOAD_BASE = "joblib+golden"


def loader(path: Path, load: Callable[[Path], Any], golden: pd.DataFrame | None = None,
           methods: Sequence[str] = ()) -> Callable[[], object]:
    """Load ``path``; then call each of ``methods`` once on the golden rows, if given."""
    if golden is not None:
        def floor() -> object:
            model = load(path)
            for method in methods:
                getattr(model, method)(golden)
            return model
        return floor
    return quietly(lambda: load(path))


def bench_load(subjects: dict[str, Subject], plan: Plan) -> dict[str, Timings]:
    results = {}
    for key, subject in subjects.items():
        paths = subject.paths
        # The golden rows as the estimator sees them (verify scores them after the policy;
        # some raw edge rows, e.g. an Int64 column holding NA, a pipeline cannot take).
        golden = subject.bundle.prepare(subject.bundle.golden.inputs, invalid="drop").frame

        candidates: dict[str, Callable[[], object]] = {
            "safemodel": lambda p=paths["safemodel"]: sm.load(p),
            "safemodel-noverify": lambda p=paths["safemodel"]: sm.load(p, verify=False),
        }
        # The reference falls back to cloudpickle, which safemodel always has.
        base = "joblib" if "joblib" in paths else "cloudpickle"
        # The floor of a verified load: verification calls every method as a caller would.
        candidates["joblib+golden"] = loader(paths[base], FORMATS[base].load, golden,
                                             subject.bundle.methods)
        for fmt in ("joblib", "cloudpickle", "skops", "mlflow"):
            if fmt in paths:
                candidates[fmt] = loader(paths[fmt], FORMATS[fmt].load)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger("safemodel").setLevel(logging.ERROR)  # verify=False warns
            t = plan.time(candidates, plan.load_budget)
            logging.getLogger("safemodel").setLevel(logging.NOTSET)
        results[key] = t
        say(f"load {key:>3}: " + "; ".join(
            f"{c} {ms(t.median(c))}" for c in candidates) + f" ({t.rounds} rounds)")
    return results


def load_table(subjects: dict[str, Subject], results: dict[str, Timings]) -> str:
    body = []
    for cand, label in LOADS.items():
        row = [label]
        for key in subjects:
            t = results[key]
            if cand not in t.samples:
                row.append(NOT_INSTALLED)
            else:
                row.append(f"{ms(t.median(cand))} ({t.ratio(cand, LOAD_BASE)[0]:.2f}x)")
        body.append(row)
    return table(["load", *(s.label for s in subjects.values())], body)


def size_table(subjects: dict[str, Subject]) -> str:
    body = []
    for fmt_key, fmt in FORMATS.items():
        row = [fmt.label]
        for subject in subjects.values():
            size = subject.sizes.get(fmt_key)
            row.append(NOT_INSTALLED if size is None else f"{size / 1024:,.1f} KiB")
        body.append(row)
    return table(["format", *(s.label for s in subjects.values())], body)


# -------------------------------------------------------------------------- monitor


def bench_monitor(X: pd.DataFrame, subjects: dict[str, Subject],
                  plan: Plan) -> dict[tuple[str, int], Timings] | str:
    try:
        from safemodel.monitoring.monitor import Monitor
    except Exception as exc:  # not written yet, or broken: the table says why
        return f"n/a (safemodel.monitoring.monitor is not importable: {type(exc).__name__}: {exc})"
    results = {}
    for key in plan.monitor_pipelines:
        bundle = subjects[key].bundle
        for n in plan.monitor_sizes:
            Xn = rows(X, n)
            try:
                monitor = Monitor(bundle)
                monitor.observe(Xn)
            except Exception as exc:
                return f"n/a (Monitor(bundle).observe(X) failed: {type(exc).__name__}: {exc})"

            proba = bundle.predict_proba(Xn)
            raw = bundle.estimator
            # CPU time: observe and predict_proba run in this process only, and CPU time
            # is what other load on the shared machine disturbs least.
            t = plan.time({
                "raw": lambda e=raw, x=Xn: e.predict_proba(x),
                "with_scores": lambda m=monitor, x=Xn, p=proba: m.observe(x, scores=p),
                "bundle": lambda b=bundle, x=Xn: b.predict_proba(x),
                "observe": lambda m=monitor, x=Xn: m.observe(x),
            }, plan.monitor_budget, clock=time.process_time)
            results[key, n] = t
            say(f"monitor {key:>3} {n:>7,} rows: raw predict_proba {ms(t.median('raw'))}; "
                f"observe(X, scores) {t.ratio('with_scores', 'raw')[0]:.3f}x of it; "
                f"observe(X) {t.ratio('observe', 'bundle')[0]:.2f}x of bundle.predict_proba "
                f"({t.rounds} rounds)")
    return results


def monitor_table(subjects: dict[str, Subject],
                  results: dict[tuple[str, int], Timings] | str) -> str:
    if isinstance(results, str):
        return results
    body = []
    for (key, n), t in results.items():
        body.append([subjects[key].label, f"{n:,}", ms(t.median("raw")),
                     ms(t.median("with_scores")), ratio_cell(t, "with_scores", "raw"),
                     ms(t.median("observe")), ratio_cell(t, "observe", "bundle")])
    return table(["pipeline", "rows", "raw `predict_proba`", "`observe(X, scores=proba)`",
                  "`observe(X, scores)` / raw `predict_proba`", "`observe(X)`",
                  "`observe(X)` / `bundle.predict_proba`"], body)


# ---------------------------------------------------------------- many in a process


def build_many(X: pd.DataFrame, y: pd.Series, keys: Sequence[str], count: int,
               folder: Path) -> str | None:
    """Write ``count`` distinct bundles and joblib files (and a store if one exists).

    Returns how the store was filled ("n/a (...)" when it cannot be).
    """
    import joblib

    files = folder / "files"
    files.mkdir(parents=True)
    bundles = []
    for i in range(count + 1):
        key = keys[i % len(keys)]
        rng = np.random.default_rng(i)
        sample = rng.integers(0, len(X), len(X))  # a bootstrap: every model is distinct
        Xb, yb = X.iloc[sample].reset_index(drop=True), y.iloc[sample].reset_index(drop=True)
        estimator = PIPELINES[key][1](Xb, yb, random_state=i)
        name = "warmup" if i == count else f"penguins-{key}-{i:02d}"
        bundle = sm.ModelBundle.from_training(estimator, Xb, name=name, version="1.0.0")
        target = folder if i == count else files
        bundle.save(target / f"{name}.safemodel")
        joblib.dump(estimator, target / f"{name}.joblib")
        if i < count:
            bundles.append(bundle)
    try:
        from safemodel.store.store import BundleStore
    except Exception as exc:
        return f"n/a (safemodel.store.store is not importable: {type(exc).__name__})"
    try:
        store = BundleStore(folder / "store")
        for bundle in bundles:
            store.put(bundle)
            store.promote(bundle.name, bundle.version)
    except Exception as exc:
        return f"n/a (BundleStore put/promote failed: {type(exc).__name__}: {exc})"
    return None


def fresh_processes(kinds: Sequence[str], folder: Path,
                    concurrently: bool) -> list[tuple[dict[str, Any], str | None]]:
    """Run ``_loadmany.py`` once per kind; ``(result, error)`` for each."""
    def start(kind: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(HERE / "_loadmany.py"), kind, str(folder)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(proc: subprocess.Popen[str]) -> tuple[dict[str, Any], str | None]:
        out, err = proc.communicate()
        if proc.returncode:
            lines = err.strip().splitlines()
            return {}, lines[-1] if lines else f"exit status {proc.returncode}"
        return json.loads(out.strip().splitlines()[-1]), None

    if concurrently:
        return [finish(p) for p in [start(k) for k in kinds]]
    return [finish(start(k)) for k in kinds]


def bench_many(X: pd.DataFrame, plan: Plan, folder: Path) -> dict[str, Any]:
    y = penguins()[1]
    started = time.perf_counter()
    store_problem = build_many(X, y, plan.pipelines, plan.many, folder)
    say(f"built {plan.many} bundles and joblib files in {time.perf_counter() - started:.1f} s")
    kinds = [k for k in KINDS if k != "store" or store_problem is None]
    seconds: dict[str, list[float]] = {k: [] for k in kinds}
    rss: dict[str, list[int]] = {k: [] for k in kinds}
    errors: dict[str, str] = {}
    for r in range(plan.many_repeats):
        order = [kinds[(r + i) % len(kinds)] for i in range(len(kinds))]
        order = [k for k in order if k not in errors]
        for kind, (result, error) in zip(order, fresh_processes(order, folder,
                                                                plan.many_concurrently),
                                         strict=True):
            if error is None and result["count"] != plan.many:
                error = f"loaded {result['count']} models, expected {plan.many}"
            if error is not None:
                errors[kind] = error
                continue
            seconds[kind].append(result["seconds"])
            if result["rss_bytes"] is not None:
                rss[kind].append(result["rss_bytes"])
    for kind, error in errors.items():
        seconds.pop(kind)
        say(f"load {plan.many} x {kind}: failed: {error}")
    if "store" not in kinds:
        errors["store"] = store_problem or ""
    timings = Timings(seconds)
    for kind in seconds:
        vs = f" ({timings.ratio(kind, 'joblib')[0]:.2f}x joblib)" if "joblib" in seconds else ""
        say(f"load {plan.many} x {kind}: {ms(timings.median(kind))}{vs}")
    return {"timings": timings, "rss": rss, "errors": errors, "count": plan.many}


def many_table(many: dict[str, Any]) -> str:
    timings: Timings = many["timings"]
    rss: dict[str, list[int]] = many["rss"]
    labels = {"joblib": "`joblib.load` x{n}",
              "floor": "`joblib.load` + each method on the golden rows x{n} (floor)",
              "safemodel": "`safemodel.load` x{n} (verified)",
              "store": "`BundleStore` load-all ({n} bundles)"}
    body = []
    for kind in KINDS:
        label = labels[kind].format(n=many["count"])
        if kind not in timings.samples:
            body.append([label, many["errors"].get(kind) or "n/a", "", "", ""])
            continue
        base = "joblib" in timings.samples
        memory = rss.get(kind) or []
        mem_mib = float(np.median(memory)) / 2**20 if memory else None
        base_mem = rss.get("joblib") or []
        # Below a MiB the page granularity of RSS makes a ratio meaningless.
        mem_ratio = (f"{np.median(memory) / np.median(base_mem):.2f}"
                     if memory and base_mem and np.median(base_mem) >= 2**20 else "n/a")
        body.append([label, ms(timings.median(kind)),
                     ratio_cell(timings, kind, "joblib") if base else "n/a",
                     f"{mem_mib:,.1f} MiB" if mem_mib is not None else "n/a", mem_ratio])
    return table(["load into a fresh process", "time", "time / joblib",
                  "resident memory added", "memory / joblib"], body) + (
        f"\n\nEach row: a fresh process imports everything and loads one model of its kind "
        f"(warm-up), then loads the {many['count']} models; median of {timings.rounds} "
        "such processes, kinds alternating.")


# ------------------------------------------------------------------------- profiles


def bench_profiles(X: pd.DataFrame, subjects: dict[str, Subject], plan: Plan) -> str:
    if peer("pyinstrument") is None:
        return f"pyinstrument: {NOT_INSTALLED}; no profiles."
    from _profile import profile

    targets: list[tuple[str, Callable[[], object]]] = []
    for n in (1, 10_000):
        for key in plan.profile_pipelines:
            bundle, Xn = subjects[key].bundle, rows(X, n)
            targets.append((f"`bundle.predict_proba`, {n:,} rows, {subjects[key].label}",
                            lambda b=bundle, x=Xn: b.predict_proba(x)))
    for key in plan.profile_loads:
        path = subjects[key].paths["safemodel"]
        targets.append((f"`safemodel.load`, {subjects[key].label}", lambda p=path: sm.load(p)))
    from safemodel.monitoring.monitor import Monitor

    for n in plan.monitor_sizes[-1:]:
        bundle, Xn = subjects[plan.monitor_pipelines[0]].bundle, rows(X, n)
        monitor, proba = Monitor(bundle), bundle.predict_proba(Xn)
        targets.append((f"`Monitor.observe(X, scores=proba)`, {n:,} rows",
                        lambda m=monitor, x=Xn, p=proba: m.observe(x, scores=p)))
    out = []
    for title, call in targets:
        shares, calls = profile(call, plan.profile_seconds)
        say(f"profiled {title}: {calls} calls; top: " + ", ".join(
            f"{s.function} {s.cumulative:.0f}%" for s in shares[:6]))
        out.append(f"**{title}** ({calls} calls profiled)\n\n" + table(
            ["function", "cumulative %", "self %"],
            [[f"`{s.function}`", f"{s.cumulative:.1f}", f"{s.self:.1f}"] for s in shares]))
    return "\n\n".join(out)


# -------------------------------------------------------------------------- summary


def budget_table(subjects: dict[str, Subject], scoring: dict[tuple[str, int], Timings],
                 loads: dict[str, Timings], many: dict[str, Any]) -> str:
    def verdict(value: float, limit: float, strict: bool = False) -> str:
        ok = value < limit if strict else value <= limit
        return "within" if ok else "**over**"

    body = []
    for key, subject in subjects.items():
        ratios = {n: t.ratio("bundle", "raw")[0] for (k, n), t in scoring.items() if k == key}
        worst = max(ratios, key=lambda n: ratios[n])
        at = f"{worst:,} row{'s' if worst > 1 else ''}"
        body.append([f"`bundle.predict_proba` / raw, every size ({subject.label})",
                     f"<= {SCORE_BUDGET}", f"{ratios[worst]:.2f} (worst, at {at})",
                     verdict(ratios[worst], SCORE_BUDGET)])
    for key, subject in subjects.items():
        r = loads[key].ratio("safemodel", LOAD_BASE)[0]
        body.append([f"`safemodel.load` / (`joblib.load` + each method on the golden rows) "
                     f"({subject.label})", f"<= {LOAD_BUDGET}", f"{r:.2f}",
                     verdict(r, LOAD_BUDGET)])
    timings: Timings = many["timings"]
    n = many["count"]
    if "store" in timings.samples and "floor" in timings.samples:
        r = timings.ratio("store", "floor")[0]
        body.append([f"{n} bundles via `BundleStore` load-all, verified / the floor summed "
                     f"({n} x `joblib.load` + each method on the golden rows)",
                     f"<= {MANY_BUDGET}", f"{r:.2f}", verdict(r, MANY_BUDGET)])
    rss = many["rss"]
    if rss.get("safemodel") and rss.get("joblib"):
        r = float(np.median(rss["safemodel"]) / np.median(rss["joblib"]))
        body.append([f"resident memory of {n} loaded bundles / {n} `joblib.load`",
                     f"<= {MEMORY_BUDGET}", f"{r:.2f}", verdict(r, MEMORY_BUDGET)])
    return table(["budget", "limit", "measured", "verdict"], body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds: fewer sizes and rounds (a smoke test, not numbers)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md",
                        help="Markdown file to write (default: docs/performance.md)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="limit the BLAS and OpenMP thread pools to N (here and in the "
                             "fresh processes); default: as many as the libraries choose")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.threads:
        # On a busy machine an OpenMP pool as large as the core count waits for a
        # descheduled thread at every parallel region (HistGradientBoosting has one
        # per tree): latencies then measure the neighbours, not the code.
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=args.threads)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    warnings.simplefilter("ignore", FutureWarning)  # pandera imports pyspark on pandas 3
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="safemodel-bench-") as tmp:
        folder = Path(tmp)
        # MLflow runs offline: a file store inside this run's folder, no tracking server.
        os.environ.setdefault("MLFLOW_TRACKING_URI", (folder / "mlruns").as_uri())
        peers = peer_versions()
        logging.getLogger("mlflow").setLevel(logging.ERROR)  # a pickle warning per save
        say("peers: " + ", ".join(f"{k} {v}" for k, v in peers.items()))
        X, subjects = phase("setup", prepare, folder, plan)
        scoring = phase("scoring", bench_scoring, X, subjects, plan)
        loads = phase("load", bench_load, subjects, plan)
        monitor = phase("monitor", bench_monitor, X, subjects, plan)
        many = phase("many", bench_many, X, plan, folder / "many")
        profiles = phase("profiles", bench_profiles, X, subjects, plan)
    elapsed = time.perf_counter() - started
    options = (" --quick" if args.quick else "") + (
        f" --threads {args.threads}" if args.threads else "")
    command = (f"python3 tasks.py bench{options}"
               f"   # or: .venv/bin/python benchmarks/run.py{options}")
    sections = [
        ("Reproduce", f"```\n{command}\n```\n\nThis run took {elapsed / 60:.1f} minutes"
                      f"{' (--quick: a smoke test, not numbers to quote)' if args.quick else ''}."
                      " Ratios are medians of per-round ratios to the baseline measured in "
                      "the same round (interquartile range in parentheses); times are "
                      "medians. Candidates ran interleaved in one process after a warm-up, each "
                      "round in a shuffled order (seeded)."),
        ("Machine", "\n".join(f"- {k}: {v}" for k, v in machine(peers))),
        ("Budget", budget_table(subjects, scoring, loads, many)),
        ("Scoring", "`predict_proba` on a DataFrame of penguins rows (drawn with "
                    "replacement, the rows with NaN always included), ratio to the raw "
                    "estimator, CPU time (`time.process_time`) of interleaved calls.\n\n"
                    + scoring_tables(subjects, scoring, plan.sizes)),
        ("Loading one model", "Time to a usable model from a file on a warm page cache; in "
                              "parentheses the ratio to `joblib.load` followed by one call "
                              "of each scoring method on the golden rows, the floor of a "
                              "verified load (verification calls every method as a caller "
                              "would).\n\n" + load_table(subjects, loads)),
        ("File size", size_table(subjects)),
        ("Monitoring overhead", "`safemodel.monitoring.monitor.Monitor(bundle)`, CPU time "
                                "(`time.process_time`) of interleaved calls on the same rows: "
                                "`observe` with the scores passed, as a share of the raw "
                                "estimator's `predict_proba` (issue 18's measure), and "
                                "`observe(X)`, which scores the rows itself, as a share of "
                                "`bundle.predict_proba`.\n\n"
                                + monitor_table(subjects, monitor)),
        (f"{plan.many} models in one process", many_table(many)),
        ("Profiles", "pyinstrument, function level: share of the profiled time spent in a "
                     "function and what it called (cumulative) or on its own lines "
                     "(self).\n\n" + profiles),
    ]
    results = "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
    write(args.output, results)
    say(f"\nwrote {args.output} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
