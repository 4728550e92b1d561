"""Where a store keeps things, and which names and aliases it accepts.

Layout (see ``docs/store.md``; plain folders and JSON, readable without safemodel)::

    ROOT/
      NAME/
        versions/VERSION.safemodel   one immutable bundle file per version
        aliases.json                 {"production": {"version", "fingerprint", "time"}}
        history.jsonl                one JSON object per line, append-only
        .lock                        lock file for changes to this name
      .incoming/                     files being checked before they are published
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from safemodel._values import bundle_name_problem
from safemodel.errors import StoreError

__all__ = [
    "ALIASES",
    "BUNDLE_SUFFIX",
    "HISTORY",
    "INCOMING",
    "LOCK",
    "VERSIONS",
    "check_alias",
    "check_name",
    "is_alias",
    "version_files",
]

BUNDLE_SUFFIX = ".safemodel"
VERSIONS = "versions"
ALIASES = "aliases.json"
HISTORY = "history.jsonl"
LOCK = ".lock"
INCOMING = ".incoming"

# Alias names are words that can never be read as a version or a specifier.
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def check_name(name: str) -> None:
    """Refuse a name that cannot be a store folder (the rule every layer shares).

    Raises
    ------
    StoreError
        With ``name`` set, when ``name`` is not a valid bundle name.
    """
    problem = bundle_name_problem(name)
    if problem is not None:
        raise StoreError(f"{name!r} cannot be a store name: {problem}. Use a non-empty name "
                         "without slashes that does not start with '.'.",
                         name=name if isinstance(name, str) else None)


def is_alias(text: str) -> bool:
    """Whether ``text`` has the shape of an alias (it may still read as a version)."""
    return _ALIAS.fullmatch(text) is not None


def check_alias(alias: str) -> None:
    """Refuse an alias that is not one word, or that reads as a version.

    Raises
    ------
    StoreError
        With ``alias`` set.
    """
    if not isinstance(alias, str) or not is_alias(alias):
        raise StoreError(f"Alias {alias!r} must be one word of letters, digits, '_', '-' and "
                         "'.', starting with a letter or '_', such as 'production'.",
                         alias=alias if isinstance(alias, str) else None)
    with contextlib.suppress(InvalidVersion):
        Version(alias)
        raise StoreError(f"Alias {alias!r} reads as a version; choose a word such as "
                         "'production' or 'staging'.", alias=alias)


def version_files(folder: Path) -> dict[Version, Path]:
    """``version -> file`` for the bundle files in a name's ``versions`` folder."""
    if not folder.is_dir():
        return {}
    files = {}
    for p in folder.iterdir():
        if p.name.startswith(".") or not p.name.endswith(BUNDLE_SUFFIX):
            continue
        with contextlib.suppress(InvalidVersion):
            files[Version(p.name[: -len(BUNDLE_SUFFIX)])] = p
    return files
