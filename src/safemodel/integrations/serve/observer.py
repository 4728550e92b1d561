"""Drift observation off the request path: a bounded queue and one worker thread.

Counting a batch into a :class:`~safemodel.monitoring.monitor.Monitor` costs about as
much as parsing its JSON, and nothing in the answer depends on it; a request hands its
inputs and scores to :meth:`DriftObserver.submit` and returns. ``submit`` never blocks:
when the rows waiting exceed the capacity, the batch is dropped and counted (the
server's ``safemodel_drift_dropped_rows`` counter and the drift report's
``dropped_rows``), so a slow monitor can never slow or stall scoring. Reads of drift
(``/v1/models/{name}/drift``, ``/metrics``) call :meth:`DriftObserver.flush` first, so
they include every batch answered before them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any

from safemodel.errors import InvalidArgument
from safemodel.monitoring.monitor import Monitor

__all__ = ["DriftObserver"]

logger = logging.getLogger("safemodel.serve")


@dataclass(frozen=True)
class _Batch:
    monitor: Monitor
    frame: Any
    scores: Any
    rows: int


class DriftObserver:
    """Feeds served batches to their model's monitor from one background thread.

    Parameters
    ----------
    capacity : int, default 100,000
        Rows that may wait to be observed. A batch that would exceed it is dropped
        (unless nothing waits: one batch of any size is always accepted).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidArgument.of("DriftObserver", "capacity", "an integer >= 1", capacity)
        self.capacity = capacity
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
                batch = self._batches.popleft()
                self._waiting_rows -= batch.rows
            try:
                batch.monitor.observe(batch.frame, scores=batch.scores)
            except Exception:  # one bad batch must not end drift monitoring
                logger.exception("observing a batch of %d rows for drift failed", batch.rows)
            finally:
                with self._cond:
                    self._unfinished -= 1
                    self._cond.notify_all()
