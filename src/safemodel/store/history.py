"""The append-only history of a name, and the aliases it determines.

Every put, promotion and rollback is one JSON line of ``NAME/history.jsonl``, written
(and fsynced) before ``aliases.json`` changes: ``aliases.json`` is the history's
current state, rewritten atomically after each alias change, so readers never lock.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from safemodel.errors import StoreError
from safemodel.io.files import write_atomic
from safemodel.store.layout import ALIASES, HISTORY

__all__ = [
    "Action",
    "HistoryEntry",
    "new_entry",
    "read_aliases",
    "read_history",
    "record",
    "rollback_stack",
]

logger = logging.getLogger("safemodel.store")

Action = Literal["put", "promote", "rollback"]
_ACTIONS: tuple[str, ...] = ("put", "promote", "rollback")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a name's ``history.jsonl``.

    Attributes
    ----------
    time : str
        UTC time of the change, ISO 8601.
    action : {"put", "promote", "rollback"}
    alias : str or None
        The alias moved (``None`` for ``put``).
    from_version : packaging.version.Version or None
        The alias's target before the change (JSON key ``"from"``).
    to_version : packaging.version.Version
        The version added, or the alias's new target (JSON key ``"to"``).
    fingerprint : str
        Fingerprint of ``to_version``'s bundle.
    user, host : str or None
        Who made the change, and on which machine.
    """

    time: str
    action: Action
    alias: str | None
    from_version: Version | None
    to_version: Version
    fingerprint: str
    user: str | None
    host: str | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form written to ``history.jsonl``."""
        return {
            "time": self.time,
            "action": self.action,
            "alias": self.alias,
            "from": None if self.from_version is None else str(self.from_version),
            "to": str(self.to_version),
            "fingerprint": self.fingerprint,
            "user": self.user,
            "host": self.host,
        }

    @classmethod
    def from_dict(cls, data: Any) -> HistoryEntry:
        """Validate one parsed history line.

        Raises
        ------
        StoreError
            When a field is missing or malformed.
        """
        try:
            action = data["action"]
            previous = data.get("from")
            entry = cls(
                time=str(data["time"]),
                action=action,
                alias=None if data.get("alias") is None else str(data["alias"]),
                from_version=None if previous is None else Version(str(previous)),
                to_version=Version(str(data["to"])),
                fingerprint=str(data["fingerprint"]),
                user=None if data.get("user") is None else str(data["user"]),
                host=None if data.get("host") is None else str(data["host"]),
            )
        except (KeyError, TypeError, AttributeError, InvalidVersion) as exc:
            raise StoreError(f"Malformed history entry {data!r:.200}: "
                             f"{type(exc).__name__}: {exc}.") from None
        if action not in _ACTIONS:
            raise StoreError(f"Malformed history entry {data!r:.200}: action {action!r} is "
                             f"not one of {list(_ACTIONS)}.")
        return entry


def new_entry(action: Action, alias: str | None, previous: Version | None, target: Version,
              fingerprint: str) -> HistoryEntry:
    """An entry for a change made now, by this user on this host."""
    return HistoryEntry(time=_now(), action=action, alias=alias, from_version=previous,
                        to_version=target, fingerprint=fingerprint, user=_user(),
                        host=socket.gethostname() or None)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


def rollback_stack(entries: Iterable[HistoryEntry], alias: str) -> list[Version]:
    """Earlier targets of ``alias``, most recent last: what rollbacks return to."""
    stack: list[Version] = []
    for e in entries:
        if e.alias != alias:
            continue
        if e.action == "promote" and e.from_version is not None:
            stack.append(e.from_version)
        elif e.action == "rollback" and stack:
            stack.pop()
    return stack


def read_history(folder: Path) -> list[HistoryEntry]:
    """Every entry of the name whose folder is ``folder``, oldest first.

    A line that does not parse is logged and skipped: a torn last line after a crash
    must not hide every other entry.
    """
    path = folder / HISTORY
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(HistoryEntry.from_dict(json.loads(line)))
        except (ValueError, StoreError) as exc:
            logger.warning("%s line %d skipped: %s", path, number, exc)
    return entries


def read_aliases(folder: Path) -> dict[str, tuple[Version, str]]:
    """``alias -> (version, fingerprint promised)`` from the folder's ``aliases.json``.

    Raises
    ------
    StoreError
        When the file is not valid JSON or not of the expected shape.
    """
    path = folder / ALIASES
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise StoreError(f"{str(path)!r} is not valid JSON ({exc}); restore it from "
                         "history.jsonl or a backup.", name=folder.name) from None
    try:
        return {str(alias): (Version(str(t["version"])), str(t["fingerprint"]))
                for alias, t in raw.items()}
    except (AttributeError, KeyError, TypeError, InvalidVersion) as exc:
        raise StoreError(f"{str(path)!r} is malformed ({type(exc).__name__}: {exc}); restore "
                         "it from history.jsonl or a backup.", name=folder.name) from None


def record(folder: Path, entry: HistoryEntry) -> None:
    """Append ``entry`` to the history, then apply it to ``aliases.json``.

    The caller holds the name's lock (:func:`safemodel.store.locks.holding`).
    """
    line = json.dumps(entry.to_dict(), sort_keys=False).encode() + b"\n"
    with open(folder / HISTORY, "a+b") as fh:
        if fh.seek(0, os.SEEK_END) > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = b"\n" + line  # after a torn write, start a fresh line
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
    if entry.alias is None:
        return
    path = folder / ALIASES
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raw = {}
    raw[entry.alias] = {"version": str(entry.to_version), "fingerprint": entry.fingerprint,
                        "time": entry.time}
    write_atomic(path, (json.dumps(raw, indent=1, sort_keys=True) + "\n").encode())
