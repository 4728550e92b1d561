"""Drift observation off the request path: a bounded queue and one worker thread.

Counting a batch into a :class:`~safemodel.monitoring.monitor.Monitor` costs about as
much as parsing its JSON, and nothing in the answer depends on it; a request hands its
inputs and scores to :meth:`DriftObserver.submit` and returns. ``submit`` never blocks:
when the rows waiting exceed the capacity, the batch is dropped and counted (the
server's ``safemodel_drift_dropped_rows`` counter and the drift report's
``dropped_rows``), so a slow monitor can never slow or stall scoring. Reads of drift
(``/v1/models/{name}/drift``, ``/metrics``) call :meth:`DriftObserver.flush` first, so
they include every batch answered before them.

Under load the queue holds many small batches, and observing costs mostly per call
(about 0.4 ms for a one-row batch of the penguins model, 1.9 ms for fifty rows at
once against 22 ms one by one). The worker therefore takes the waiting batches of one
monitor whose frames have the same columns and dtypes (and scores of the same shape),
up to ``batch_rows`` rows, and observes them as one frame: the counts are exactly
those of observing each batch, since the concatenated columns keep their dtypes. If
the joined batch fails, each is observed alone, so one bad batch loses only itself.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from safemodel.errors import InvalidArgument
from safemodel.monitoring.monitor import Monitor

__all__ = ["DriftObserver"]

logger = logging.getLogger("safemodel.serve")

# How many waiting batches the worker looks through for ones it can join to the first.
_SCAN = 256


@dataclass(frozen=True)
class _Batch:
    monitor: Monitor
    frame: Any
    scores: Any
    rows: int

    @cached_property
    def join_key(self) -> tuple[Any, ...]:
        """What batches must share to be observed as one frame with the same counts
        (computed once: a batch left out of one join is looked at again by the next)."""
        scores = self.scores
        if isinstance(scores, np.ndarray):
            shape: Any = (scores.dtype, scores.shape[1:])
        elif isinstance(scores, dict) and not scores:
            shape = "inputs only"
        else:
            shape = object()  # anything else is observed alone
        return tuple(self.frame.columns), tuple(self.frame.dtypes), shape


class DriftObserver:
    """Feeds served batches to their model's monitor from one background thread.

    Parameters
    ----------
    capacity : int, default 100,000
        Rows that may wait to be observed. A batch that would exceed it is dropped
        (unless nothing waits: one batch of any size is always accepted).
    batch_rows : int, default 10,000
        Most rows observed in one call when waiting batches are joined (1: never join).
    """

    def __init__(self, capacity: int = 100_000, batch_rows: int = 10_000) -> None:
        for name, value in (("capacity", capacity), ("batch_rows", batch_rows)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgument.of("DriftObserver", name, "an integer >= 1", value)
        self.capacity = capacity
        self.batch_rows = batch_rows
        self._batches: deque[_Batch] = deque()
        self._waiting_rows = 0
        self._unfinished = 0  # batches queued or being observed
        self._dropped: weakref.WeakKeyDictionary[Monitor, int] = weakref.WeakKeyDictionary()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._generation = 0  # stop() ends the worker of the current generation

    def submit(self, monitor: Monitor, frame: Any, scores: Any) -> bool:
        """Queue ``frame`` (and its ``scores``) for ``monitor``; False if dropped.

        Never waits for the worker. The caller must not modify ``frame`` or ``scores``
        afterwards.
        """
        rows = len(frame)
        with self._cond:
            if self._waiting_rows and self._waiting_rows + rows > self.capacity:
                self._dropped[monitor] = self._dropped.get(monitor, 0) + rows
                return False
            self._batches.append(_Batch(monitor, frame, scores, rows))
            self._waiting_rows += rows
            self._unfinished += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(self._generation,),
                                                daemon=True, name="safemodel-serve-drift")
                self._thread.start()
            self._cond.notify()
        return True

    def dropped(self, monitor: Monitor) -> int:
        """Rows of ``monitor``'s model dropped because the queue was full."""
        with self._cond:
            return self._dropped.get(monitor, 0)

    def flush(self, timeout: float) -> bool:
        """Wait until every batch submitted so far is observed (at most ``timeout`` s)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._unfinished == 0, timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Observe what is queued, then stop the worker (a later submit restarts it)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._generation += 1
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def _run(self, generation: int) -> None:
        while True:
            with self._cond:
                while not self._batches and generation == self._generation:
                    self._cond.wait()
                if not self._batches:
                    return
                first = self._batches.popleft()
                waiting: list[_Batch] = []
                if first.rows < self.batch_rows and isinstance(first.frame, pd.DataFrame):
                    waiting = [self._batches.popleft()
                               for _ in range(min(_SCAN, len(self._batches)))]
            # Outside the lock (comparing dtypes takes ~50 us a batch): submit never
            # waits for it. The batches not joined go back to the front, in order.
            try:
                group, kept = self._join(first, waiting)
            except Exception:  # frames that cannot be compared: none is joined, none lost
                group, kept = [first], waiting
            with self._cond:
                self._batches.extendleft(reversed(kept))
                self._waiting_rows -= sum(b.rows for b in group)
            try:
                _observe(group)
            finally:
                with self._cond:
                    self._unfinished -= len(group)
                    self._cond.notify_all()

    def _join(self, first: _Batch, waiting: list[_Batch]) -> tuple[list[_Batch], list[_Batch]]:
        """The batches of ``waiting`` that can be observed with ``first``, and the others."""
        group, kept, rows = [first], [], first.rows
        for batch in waiting:
            if (batch.monitor is first.monitor and rows + batch.rows <= self.batch_rows
                    and isinstance(batch.frame, pd.DataFrame)
                    and batch.join_key == first.join_key):
                group.append(batch)
                rows += batch.rows
            else:
                kept.append(batch)
        return group, kept


def _observe(group: list[_Batch]) -> None:
    """Observe the group as one batch; if that fails, each batch alone."""
    if len(group) > 1:
        first = group[0]
        try:
            frame = pd.concat([b.frame for b in group], ignore_index=True)
            scores = first.scores if not isinstance(first.scores, np.ndarray) else \
                np.concatenate([b.scores for b in group])
            first.monitor.observe(frame, scores=scores)
            return
        except Exception:  # each batch alone then says which one fails
            pass  # (a failed observe adds nothing: counts are added at its very end)
    for batch in group:
        try:
            batch.monitor.observe(batch.frame, scores=batch.scores)
        except Exception:  # one bad batch must not end drift monitoring
            logger.exception("observing a batch of %d rows for drift failed", batch.rows)
