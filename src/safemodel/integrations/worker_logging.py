"""How much a Spark executor or Dask worker logs while it scores batches.

A service logs the policy's summary of each call on the ``safemodel`` logger; an engine
scoring a million rows in 4,096-row batches would log about 250 such lines per million
rows in every executor's log. So per-batch lines are held back by default: only
records at ``ERROR`` or above pass while a worker scores a batch. The ``log_level``
argument of :func:`safemodel.spark.score` and :func:`safemodel.dask.score` lowers that
(``"WARNING"`` shows each batch the policy changed, ``"INFO"`` every batch with an
action). The threshold holds only for the thread scoring the batch, so a Dask worker
sharing the client's process leaves the client's own logging alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from safemodel.errors import InvalidArgument

__all__ = ["DEFAULT_LEVEL", "batch_logging", "check_level"]

DEFAULT_LEVEL = "ERROR"
_LOGGER = "safemodel"
_local = threading.local()


class _ThreadThreshold(logging.Filter):
    """Drops records below the threshold the current thread set (none: keeps all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        level: int | None = getattr(_local, "level", None)
        return level is None or record.levelno >= level


_FILTER = _ThreadThreshold()


def check_level(level: int | str) -> int:
    """The numeric level of ``level`` (a name such as ``"WARNING"``, or a number)."""
    if isinstance(level, bool) or not isinstance(level, int | str):
        raise InvalidArgument.of("score", "log_level", "a logging level name or number",
                                 level)
    number = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise InvalidArgument.of("score", "log_level",
                                 "a logging level such as 'ERROR', 'WARNING' or 'INFO'", level)
    return number


@contextlib.contextmanager
def batch_logging(level: int) -> Iterator[None]:
    """While the block runs, this thread's ``safemodel`` records below ``level`` drop."""
    logger = logging.getLogger(_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)  # idempotent per process; inert for other threads
    previous = getattr(_local, "level", None)
    _local.level = level
    try:
        yield
    finally:
        _local.level = previous
