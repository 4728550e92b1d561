"""Interleaved timing for a noisy, shared machine.

Every round runs each candidate once, in a fresh order (shuffled with a fixed seed), so
slow phases of the machine hit them all alike and no candidate always follows the same
one; each is warmed up first; the number of rounds adapts to a time budget.
Ratios are taken per round against the baseline of the same round, then the median
is reported: a paired measure, robust to drift in the machine's speed.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Timings", "interleave"]


@dataclass(frozen=True)
class Timings:
    """Seconds per call, per candidate, one entry per round (same round, same index)."""

    samples: Mapping[str, list[float]]

    @property
    def rounds(self) -> int:
        return min((len(v) for v in self.samples.values()), default=0)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def ratio(self, name: str, base: str) -> tuple[float, float, float]:
        """Median, first and third quartile of the per-round ratios ``name / base``."""
        ratios = sorted(a / b for a, b in zip(self.samples[name], self.samples[base],
                                              strict=True))
        if len(ratios) < 4:
            mid = statistics.median(ratios)
            return mid, ratios[0], ratios[-1]
        q1, mid, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        return mid, q1, q3


def interleave(
    candidates: Mapping[str, Callable[[], object]],
    *,
    budget: float,
    min_rounds: int,
    max_rounds: int,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> Timings:
    """Run rounds of every candidate, interleaved, until about ``budget`` seconds pass.

    At least ``min_rounds`` and at most ``max_rounds`` rounds. Each candidate is first
    called ``warmup`` times (once if a call takes over 0.25 s: one-time costs such as
    lazy imports are paid by the small, fast groups that run first). Each call is
    timed with ``clock``: wall time by default; ``time.process_time`` (this process's
    CPU time) for work that stays in the process, which other load on a shared machine
    disturbs less.

    The order within a round is shuffled (seeded, so reruns repeat it): a call pays for
    the caches and allocator state its predecessor left, and with a fixed rotation
    (A B C, B C A, ...) each candidate nearly always has the same predecessor. Measured
    on the LR pipeline at 100,000 rows, CPU time, ~105 rounds each: ``bundle/raw`` 0.995
    when the bundle ran after the raw call, 1.030 when the raw call ran after the bundle.
    """
    names = list(candidates)
    calls = [candidates[n] for n in names]
    for call in calls:
        for _ in range(warmup):
            started = time.perf_counter()
            call()
            if time.perf_counter() - started > 0.25:
                break
    samples: dict[str, list[float]] = {n: [] for n in names}
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection lands on whichever candidate runs then
    deadline = time.perf_counter() + budget
    try:
        r = 0
        order = list(range(len(names)))
        shuffle = random.Random(0).shuffle
        while r < max_rounds and (r < min_rounds or time.perf_counter() < deadline):
            shuffle(order)
            for k in order:
                call = calls[k]
                started = clock()
                call()
                samples[names[k]].append(clock() - started)
            r += 1
            if r % 16 == 0:
                gc.collect()  # between rounds, untimed
    finally:
        if was_enabled:
            gc.enable()
    return Timings(samples)
