"""One change to a name at a time, across threads and processes: a lock file.

The lock is an advisory whole-file lock (``flock`` on POSIX, ``msvcrt.locking`` on
Windows) on ``NAME/.lock``; it is released when the holder's file closes, so a
process that dies while holding it cannot block the store.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from safemodel.store.layout import LOCK

__all__ = ["holding"]


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def holding(folder: Path) -> Iterator[None]:
    """Hold the lock file of a name's ``folder`` (created if needed) for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+b") as fh:
        _lock(fh)
        try:
            yield
        finally:
            _unlock(fh)
