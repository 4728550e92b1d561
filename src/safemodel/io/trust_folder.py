"""A trust store folder: one JSON entry a file, named by the id of what it trusts.

The safemodel home folder holds three: ``trusted/`` (public keys,
:mod:`safemodel.io.keys`), ``trusted-ca/`` (CA certificates,
:mod:`safemodel.io.x509_trust`) and ``trusted-sigstore/`` (Sigstore signers,
:mod:`safemodel.io.sigstore_trust`). An entry is ``<id>.json``, where the id is a
SHA-256 of what the entry trusts, so each module's reader can tell a file edited or
renamed by hand. This module owns what the three share: where the folder is, writing
an entry atomically, reading every entry, and removing one by its id or a unique
prefix of it. What an entry holds, and how it is checked, stays with its module.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from safemodel.errors import InvalidArgument
from safemodel.io.files import write_atomic

__all__ = ["TrustFolder"]

E = TypeVar("E")


@dataclass(frozen=True)
class TrustFolder(Generic[E]):
    """One folder of trusted entries in the safemodel home folder.

    Every method takes ``home``, the home folder itself
    (:func:`safemodel.io.keys.safemodel_home`).

    Parameters
    ----------
    name : str
        The folder's name in the home folder (``"trusted-ca"``).
    read : callable
        ``read(path) -> entry``: parse one entry file and check it (raising the
        module's own error for a file edited by hand).
    entry_id : callable
        ``entry_id(entry) -> str``: the id an entry's file is named by.
    """

    name: str
    read: Callable[[Path], E]
    entry_id: Callable[[E], str]

    def folder(self, home: Path) -> Path:
        """The folder (which may not exist yet)."""
        return home / self.name

    def write(self, home: Path, entry_id: str, document: Mapping[str, Any]) -> Path:
        """Write ``document`` as the entry ``entry_id`` (replacing it) atomically."""
        folder = self.folder(home)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{entry_id}.json"
        write_atomic(path, json.dumps(document, indent=1).encode())
        return path

    def entries(self, home: Path) -> list[E]:
        """Every entry, read and checked, in file name order (empty without a folder)."""
        folder = self.folder(home)
        if not folder.is_dir():
            return []
        return [self.read(path) for path in sorted(folder.glob("*.json"))]

    def remove(self, home: Path, prefix: str, *, function: str, argument: str,
               expected: Callable[[list[E]], str]) -> E:
        """Remove the one entry whose id starts with ``prefix``; return it.

        Parameters
        ----------
        prefix : str
            An id, or a unique prefix of one (case and surrounding spaces ignored).
        function, argument : str
            The public function and its argument, for the error.
        expected : callable
            ``expected(entries) -> str``: what ``argument`` should have been, given
            every entry there is.

        Raises
        ------
        InvalidArgument
            When no entry, or more than one, matches (an empty prefix matches none).
        """
        wanted = prefix.strip().lower()
        entries = self.entries(home)
        matches = [e for e in entries if wanted and self.entry_id(e).startswith(wanted)]
        if len(matches) != 1:
            raise InvalidArgument.of(function, argument, expected(entries), prefix)
        (self.folder(home) / f"{self.entry_id(matches[0])}.json").unlink()
        return matches[0]
