"""Atomic file writes, shared by bundle saves and the store's own files.

A reader of the target path sees the old file or the new one, never a partial one:
data goes to a temporary file beside the target (``.NAME.<random>.tmp``, same folder so
the rename stays on one file system), is flushed to disk, and is then moved into place
with one atomic call; the folder is flushed too, so the rename survives a power cut.
A process killed midway leaves at most that temporary file.

The file gets the mode any new file of the process gets (``0o666`` less the umask, as
``open()`` gives): with umask 022 other users may read a bundle, with 077 only its owner.
Private keys never come through here (``safemodel.io.keys`` writes them owner-only).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

__all__ = ["atomic_file", "fsync_dir", "hashing", "write_atomic"]

# What open() asks for; the kernel removes the umask's bits (mkstemp would force 0o600).
_MODE = 0o666
_ATTEMPTS = 100


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform can."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(target: Path, *, overwrite: bool,
                stale: Path | None = None) -> Iterator[IO[bytes]]:
    """A temporary file that replaces ``target`` when the block ends without error.

    ``stale`` names a file derived from the old ``target`` (its detached signature):
    it is removed after the new content is on disk and just before it is published,
    so no reader finds the new file beside it, and nothing is lost if writing fails.

    Raises
    ------
    FileExistsError
        With ``overwrite=False``, when ``target`` exists at the moment of publishing
        (also when another process created it meanwhile); nothing is replaced.
    """
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if stale is not None:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        _publish(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def _create_temporary(target: Path) -> tuple[int, Path]:
    """A new, exclusive ``.NAME.<random>.tmp`` beside ``target``, with umask-honouring mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, _MODE), tmp
        except FileExistsError:  # a name collision: draw another
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


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


class _Hashing:
    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self._fh, self._digest = fh, digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return self._fh.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)  # flush, fileno...: the file's own


def hashing(fh: IO[bytes], digest: Any) -> IO[bytes]:
    """A write-only view of ``fh`` that feeds every byte written to ``digest`` too.

    So a save can sign the digest of the bytes it wrote, without reading the file
    back (which another process may have replaced meanwhile).
    """
    return cast("IO[bytes]", _Hashing(fh, digest))
