"""Atomic file writes, shared by bundle saves and the store's own files.

A reader of the target path sees the old file or the new one, never a partial one:
data goes to a temporary file beside the target (``.NAME.<random>.tmp``, same folder so
the rename stays on one file system), is flushed to disk, and is then moved into place
with one atomic call; the folder is flushed too, so the rename survives a power cut.
A process killed midway leaves at most that temporary file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_file", "fsync_dir", "write_atomic"]

_MODE = 0o644  # mkstemp makes files private; bundles and store files are meant to be read


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform can."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(target: Path, *, overwrite: bool) -> Iterator[IO[bytes]]:
    """A temporary file that replaces ``target`` when the block ends without error.

    Raises
    ------
    FileExistsError
        With ``overwrite=False``, when ``target`` exists at the moment of publishing
        (also when another process created it meanwhile); nothing is replaced.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                    dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _MODE)
        _publish(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see the module docstring)."""
    with atomic_file(path, overwrite=True) as fh:
        fh.write(data)


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished temporary file into place, never exposing a partial file."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # atomic and refuses to clobber a file created meanwhile
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.replace(tmp, target)
        return
    tmp.unlink()
