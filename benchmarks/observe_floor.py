"""How close ``Monitor.observe`` is to the floor of the work it must do.

Issue 18 asks for ``Monitor.observe(X, scores=proba)`` at most 5% of the raw
``predict_proba`` at 10,000 and 100,000 rows. This script measures, side by side in
CPU time, the raw call, ``observe``, and the bare NumPy / pyarrow passes that any
exact implementation on these libraries makes on the same batch (a hash lookup per
string column, one comparison per bin edge per numeric column, the moment sums, the
two bin counts per class of the expected ROC AUC), with no Python around them. The
sum of those passes is the floor of a NumPy implementation; what ``observe`` costs
above it is Python and bookkeeping.

With ``--numba`` (numba installed, e.g. in its own environment), it also times
compiled one-pass kernels for the numeric and string columns: a measure of what a
compiled dependency would buy.

Usage::

    .venv/bin/python benchmarks/observe_floor.py [--rows 10000 100000] [--budget 30]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from _pipelines import lr_pipeline, penguins, rows
from _timing import interleave
from threadpoolctl import threadpool_limits

import safemodel as sm
from safemodel.monitoring.accumulator import DriftAccumulator
from safemodel.monitoring.binning import NumericBins, column_array

Calls = dict[str, Callable[[], object]]


def floor_parts(acc: DriftAccumulator, X: Any, proba: np.ndarray) -> Calls:
    """The bare passes over the batch, grouped as the table reports them."""
    strings, numbers, sums = [], [], []
    for slot, values, profile in _columns(acc, X, proba):
        if slot.kind == "categorical":
            data = pa.array(values)
            value_set = pa.array(list(profile.categories), type=data.type)
            strings.append(lambda d=data, v=value_set: pc.index_in(d, value_set=v))
        elif slot.kind == "number":
            v = np.ascontiguousarray(values, dtype=np.float64)
            cuts = NumericBins(profile.edges)._cut_list
            mask = np.empty(len(v), dtype=bool)
            numbers.append(lambda v=v, c=cuts, m=mask: [
                np.count_nonzero(np.greater_equal(v, x, out=m)) for x in c])
            if slot.moments is not None:
                sums.append(lambda v=v: (v.sum(), np.einsum("i,i->", v, v)))
    fixed = [np.rint(np.ascontiguousarray(proba[:, k]) * 2.0**24) for k in range(proba.shape[1])]
    index = [np.minimum((f * 2.0**-14).astype(np.intp), 1023) for f in fixed]
    auc = [lambda i=i, f=f: (np.bincount(i, minlength=1024),
                             np.bincount(i, weights=f, minlength=1024))
           for i, f in zip(index, fixed, strict=True)]
    groups = {"strings: index_in": strings, "numbers: a comparison per edge": numbers,
              "numbers: moment sums": sums, "scores: AUC bin counts": auc}
    calls = {name: _all(fs) for name, fs in groups.items()}
    calls["floor (all of the above)"] = _all([f for fs in groups.values() for f in fs])
    return calls


def _columns(acc: DriftAccumulator, X: Any, proba: np.ndarray) -> list[tuple[Any, Any, Any]]:
    """(slot, column values, column profile) for every profiled column and score."""
    scores = acc._score_columns(proba, len(X))
    profile = acc.profile
    return [(slot, column_array(X, slot.name), profile.features[slot.name])
            if slot.role == "feature" else (slot, scores[slot.name], profile.scores[slot.name])
            for slot in acc._slots]


def _all(calls: list[Callable[[], object]]) -> Callable[[], object]:
    def run() -> None:
        for call in calls:
            call()
    return run


def numba_parts(acc: DriftAccumulator, X: Any, proba: np.ndarray) -> Calls:
    """Compiled one-pass kernels (numba) for the numeric and string columns."""
    import numba

    @numba.njit(cache=False, nogil=True)
    def at_or_above(values: Any, cuts: Any, out: Any) -> None:
        for j in range(cuts.size):
            c, acc_ = cuts[j], 0
            for i in range(values.size):
                acc_ += values[i] >= c
            out[j] = acc_

    @numba.njit(cache=False, nogil=True)
    def match(offsets: Any, data: Any, cat_offsets: Any, cat_data: Any, counts: Any) -> None:
        m = cat_offsets.size - 1
        for i in range(offsets.size - 1):
            a, length = offsets[i], offsets[i + 1] - offsets[i]
            found = m
            for c in range(m):
                ca = cat_offsets[c]
                if cat_offsets[c + 1] - ca != length:
                    continue
                same = True
                for t in range(length):
                    if data[a + t] != cat_data[ca + t]:
                        same = False
                        break
                if same:
                    found = c
                    break
            counts[found] += 1

    numbers, strings = [], []
    for slot, values, profile in _columns(acc, X, proba):
        if slot.kind == "number":
            v = np.ascontiguousarray(values, dtype=np.float64)
            cuts = np.asarray(NumericBins(profile.edges)._cuts)
            out = np.zeros(len(cuts), dtype=np.int64)
            at_or_above(v, cuts, out)  # compile outside the timing
            numbers.append(lambda v=v, c=cuts, o=out: at_or_above(v, c, o))
        elif slot.kind == "categorical":
            data = pa.array(values)
            cats = [str(c).encode() for c in profile.categories]
            cat_offsets = np.cumsum([0, *map(len, cats)]).astype(np.int64)
            cat_data = np.frombuffer(b"".join(cats), dtype=np.uint8)

            def run(d: Any = data, co: Any = cat_offsets, cd: Any = cat_data) -> object:
                buffers = d.buffers()
                offsets = np.frombuffer(buffers[1], dtype=np.int64)[d.offset:d.offset + len(d) + 1]
                counts = np.zeros(len(co) + 1, dtype=np.int64)
                match(offsets, np.frombuffer(buffers[2], dtype=np.uint8), co, cd, counts)
                return counts
            run()
            strings.append(run)
    return {"numba: numbers, one pass per edge": _all(numbers),
            "numba: strings, byte compare": _all(strings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per size")
    parser.add_argument("--numba", action="store_true", help="also time numba kernels")
    args = parser.parse_args()
    X, y = penguins()
    model = lr_pipeline(X, y)
    bundle = sm.ModelBundle.from_training(model, X, name="penguins")
    # After the imports: threadpoolctl limits only the libraries already loaded. An
    # OpenMP pool loaded later keeps its threads, which spin after each parallel region
    # and are charged to whatever runs next in this process's CPU time.
    threadpool_limits(1)
    print("| rows | part | CPU time | share of raw `predict_proba` |")
    print("| ---: | --- | ---: | ---: |")
    for n in args.rows:
        batch = rows(X, n)
        proba = bundle.predict_proba(batch)
        monitor = sm.Monitor(bundle)
        acc = DriftAccumulator(bundle.profile)  # type: ignore[arg-type]
        calls: Calls = {
            "raw": lambda b=batch: model.predict_proba(b),
            "Monitor.observe(X, scores=proba)":
                lambda m=monitor, b=batch, p=proba: m.observe(b, scores=p),
        }
        calls.update(floor_parts(acc, batch, proba))
        if args.numba:
            calls.update(numba_parts(acc, batch, proba))
        t = interleave(calls, budget=args.budget, min_rounds=20, max_rounds=5000,
                       clock=time.process_time)
        print(f"| {n:,} | raw `predict_proba` | {t.median('raw') * 1e3:.2f} ms | 1 |")
        for name in calls:
            if name != "raw":
                r = t.ratio(name, "raw")
                print(f"| {n:,} | {name} | {t.median(name) * 1e3:.3f} ms "
                      f"| {r[0]:.3f} ({r[1]:.3f}-{r[2]:.3f}) |", flush=True)


if __name__ == "__main__":
    main()
