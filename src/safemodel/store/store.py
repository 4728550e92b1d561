"""A folder of bundles: names, immutable versions, aliases and their history.

A :class:`BundleStore` keeps every version of every named model as a plain bundle
file, moves aliases (``"production"``, ``"staging"`` ...) only to versions that load
and reproduce their golden outputs in this environment, and records every change in an
append-only history. Several processes may use one store at once: every change is
made under a per-name file lock and published with an atomic rename.

Layout (see ``docs/store.md``; plain folders and JSON, readable without safemodel)::

    ROOT/
      NAME/
        versions/VERSION.safemodel   one immutable bundle file per version
        aliases.json                 {"production": {"version", "fingerprint", "time"}}
        history.jsonl                one JSON object per line, append-only
        .lock                        lock file for changes to this name

A service that serves many models uses :meth:`BundleStore.load_all`: bundles load on
first use, each fingerprint's golden outputs are verified once per process, at most
``max_loaded`` bundles stay cached, and a promotion is seen on the next lookup.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import re
import shutil
import socket
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import IO, Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from safemodel.core.bundle import ModelBundle
from safemodel.errors import (
    BundleFormatError,
    GoldenMismatchError,
    IntegrityError,
    SafeModelError,
    StoreError,
)
from safemodel.io.archive import (
    Environment,
    check_integrity,
    inspect,
    load,
    load_unverified,
    recorded_fingerprint,
)
from safemodel.io.files import fsync_dir, write_atomic
from safemodel.io.manifest import BundleInfo

__all__ = ["BundleStore", "HistoryEntry", "ModelService"]

logger = logging.getLogger("safemodel.store")

BUNDLE_SUFFIX = ".safemodel"
VERSIONS = "versions"
ALIASES = "aliases.json"
HISTORY = "history.jsonl"
LOCK = ".lock"

Action = Literal["put", "promote", "rollback"]
_ACTIONS: tuple[str, ...] = ("put", "promote", "rollback")

# Alias names are words that can never be read as a version or a specifier.
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ROLLBACK_ATTEMPTS = 5


# ------------------------------------------------------------------- history


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
            if action not in _ACTIONS:
                raise ValueError(f"unknown action {action!r}")
            previous = data.get("from")
            return cls(
                time=str(data["time"]),
                action=action,
                alias=None if data.get("alias") is None else str(data["alias"]),
                from_version=None if previous is None else Version(str(previous)),
                to_version=Version(str(data["to"])),
                fingerprint=str(data["fingerprint"]),
                user=None if data.get("user") is None else str(data["user"]),
                host=None if data.get("host") is None else str(data["host"]),
            )
        except (KeyError, TypeError, ValueError, InvalidVersion) as exc:
            raise StoreError(f"Malformed history entry {data!r:.200}: {exc}.") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


def _entry(action: Action, alias: str | None, previous: Version | None, target: Version,
           fingerprint: str) -> HistoryEntry:
    return HistoryEntry(time=_now(), action=action, alias=alias, from_version=previous,
                        to_version=target, fingerprint=fingerprint, user=_user(),
                        host=socket.gethostname() or None)


def _rollback_stack(entries: Iterable[HistoryEntry], alias: str) -> list[Version]:
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


# ----------------------------------------------------------------- file locks


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


# ---------------------------------------------------------------------- store


class BundleStore:
    """Versions and aliases of many bundles in one local folder.

    Parameters
    ----------
    root : str or path-like
        The store's folder; created by the first :meth:`put`.
    max_loaded : int, default 16
        Most bundles :meth:`get` keeps loaded (least recently used are dropped).
    signing_key : str, bytes or Ed25519 key, optional
        Require valid signatures when loading (defaults to ``SAFEMODEL_SIGNING_KEY``).
    allowed_modules : iterable of str, optional
        Refuse, before unpickling, estimators that reference other modules.
    environment : {"warn", "strict", "ignore"}, default "warn"
        Passed to :func:`safemodel.load`.

    Notes
    -----
    Versions are immutable: a name and version, once put, always mean the same
    content (fingerprint). Aliases move only through :meth:`promote` and
    :meth:`rollback`, which load and verify the target first. Changes to one name are
    serialised across threads and processes by a lock file; lookups take no lock.
    One ``BundleStore`` may be shared by many threads.

    Examples
    --------
    >>> store = sm.BundleStore("models")                          # doctest: +SKIP
    >>> store.put(bundle)                                         # doctest: +SKIP
    >>> store.promote("churn", "1.2.0")                           # doctest: +SKIP
    >>> store.get("churn", "production").predict_proba(records)   # doctest: +SKIP
    >>> store.get("churn", ">=1.2,<2")                            # doctest: +SKIP
    """

    def __init__(
        self,
        root: str | PathLike[str],
        *,
        max_loaded: int = 16,
        signing_key: Any = None,
        allowed_modules: Iterable[str] | None = None,
        environment: Environment = "warn",
    ) -> None:
        self._root = Path(root)
        if self._root.exists() and not self._root.is_dir():
            raise StoreError(f"Store root {str(self._root)!r} is a file; give a folder.")
        if isinstance(max_loaded, bool) or not isinstance(max_loaded, int) or max_loaded < 1:
            raise StoreError(f"The 'max_loaded' parameter of BundleStore must be an int >= 1; "
                             f"got {max_loaded!r} instead.")
        self._max_loaded = max_loaded
        self._signing_key = signing_key
        self._allowed_modules = None if allowed_modules is None else tuple(allowed_modules)
        self._environment: Environment = environment
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, ModelBundle] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._verified: set[str] = set()
        self._fingerprints: dict[Path, tuple[tuple[int, int, int], str]] = {}

    def __repr__(self) -> str:
        return f"<BundleStore {str(self._root)!r}>"

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self._root

    # ------------------------------------------------------------ lookups

    def names(self) -> list[str]:
        """Names that have at least one version, sorted."""
        if not self._root.is_dir():
            return []
        return sorted(
            p.name for p in self._root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and self._files(p.name)
        )

    def versions(self, name: str) -> list[Version]:
        """Every version of ``name``, sorted as versions (1.10.0 after 1.9.0).

        Raises
        ------
        StoreError
            When the store has no bundle called ``name``.
        """
        files = self._files(name)
        if not files:
            known = self.names()
            raise StoreError(f"No bundle named {name!r} in store {str(self._root)!r}; "
                             f"names: {known}.")
        return sorted(files)

    def aliases(self, name: str) -> dict[str, Version]:
        """``alias -> version`` for every alias of ``name``."""
        return {alias: target for alias, (target, _) in self._read_aliases(name).items()}

    def history(self, name: str) -> list[HistoryEntry]:
        """Every put, promotion and rollback of ``name``, oldest first."""
        path = self._folder(name) / HISTORY
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
                # A torn last line after a crash must not hide every other entry.
                logger.warning("%s line %d skipped: %s", path, number, exc)
        return entries

    def resolve(self, name: str, version: str | Version | None = None) -> Version:
        """The version that ``version`` selects for ``name``.

        Parameters
        ----------
        name : str
        version : str, packaging.version.Version or None
            An exact version (``"1.2.0"``), a specifier (``">=1.2,<2"``: the highest
            match; pre-releases only when the specifier names one), an alias
            (``"production"``), or ``None`` for the highest release.

        Returns
        -------
        packaging.version.Version

        Raises
        ------
        StoreError
            When nothing matches; the message lists what is there.
        """
        return self._resolve(name, version)[0]

    def path(self, name: str, version: str | Version | None = None) -> Path:
        """The bundle file that ``version`` selects (see :meth:`resolve`)."""
        return self._file(name, self.resolve(name, version))

    def get(self, name: str, version: str | Version | None = None) -> ModelBundle:
        """Load the bundle that ``version`` selects, verified.

        Parameters
        ----------
        name : str
        version : str, packaging.version.Version or None
            As for :meth:`resolve`. An alias is read from disk on every call, so a
            promotion made by another process is seen at once.

        Returns
        -------
        ModelBundle
            Loaded once per content and kept in a bounded cache; golden outputs are
            verified the first time this process loads that fingerprint.

        Raises
        ------
        StoreError
            Unknown name or no matching version.
        GoldenMismatchError, IntegrityError, BundleFormatError
            As for :func:`safemodel.load`.

        Examples
        --------
        >>> store.get("churn", "production").predict_proba(records)  # doctest: +SKIP
        """
        target, expected = self._resolve(name, version)
        path = self._file(name, target)
        fingerprint = self._fingerprint(path)
        if expected is not None and expected != fingerprint:
            raise StoreError(
                f"{name}=={target} has fingerprint {fingerprint}, but alias {version!r} was "
                f"promoted with {expected}: the file was replaced after promotion. Versions "
                "are immutable; restore the file or put the new content as a new version.")
        return self._cached(path, fingerprint)

    def load_all(self, alias: str = "production", *, preload: bool = False) -> ModelService:
        """Every bundle behind ``alias``, for a service that serves many models.

        Parameters
        ----------
        alias : str, default "production"
        preload : bool, default False
            Load and verify them all now, so a broken bundle fails at start-up
            rather than on the first request.

        Returns
        -------
        ModelService
            ``service[name]`` is the bundle ``alias`` points at for ``name`` now.

        Examples
        --------
        >>> service = store.load_all("production")               # doctest: +SKIP
        >>> service["churn"].predict_proba(records)               # doctest: +SKIP
        """
        _check_alias(alias)
        service = ModelService(self, alias)
        if preload:
            service.preload()
        return service

    # ------------------------------------------------------------ changes

    def put(self, bundle: ModelBundle | str | PathLike[str], *,
            signing_key: Any = None) -> BundleInfo:
        """Add a bundle (or a bundle file) as a new version of its name.

        Parameters
        ----------
        bundle : ModelBundle, or path of a bundle file
            A file is checked (format, hashes of every member) and copied; nothing in
            it is unpickled.
        signing_key : optional
            Sign the file written for a ``ModelBundle`` (see :meth:`ModelBundle.save`).

        Returns
        -------
        BundleInfo
            Of the stored file.

        Raises
        ------
        StoreError
            When the store already holds this name and version with other content;
            the message names both fingerprints. The same content again is a no-op.
        IntegrityError, BundleFormatError
            When a file is damaged or not a bundle; nothing is added.

        Examples
        --------
        >>> store.put(bundle).fingerprint                       # doctest: +SKIP
        'eb339bf8e5c3...'
        >>> store.put("build/churn-1.3.0.safemodel")            # doctest: +SKIP
        """
        incoming = self._root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f"{uuid.uuid4().hex}{BUNDLE_SUFFIX}"
        try:
            if isinstance(bundle, ModelBundle):
                bundle.save(tmp, signing_key=signing_key)
            else:
                shutil.copyfile(bundle, tmp)
            check_integrity(tmp)  # inspect leaves the estimator's hash to load
            return self._publish(tmp, inspect(tmp))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def promote(self, name: str, version: str | Version,
                alias: str = "production") -> HistoryEntry | None:
        """Point ``alias`` at a version, after verifying it in this environment.

        The bundle is loaded (integrity, signature and pickle checks) and its golden
        inputs re-run before the alias moves; if any check fails the alias keeps its
        old target. The change is appended to :meth:`history`.

        Parameters
        ----------
        name : str
        version : str or packaging.version.Version
            Anything :meth:`resolve` accepts, e.g. ``"1.2.0"`` or ``"staging"``.
        alias : str, default "production"
            A word that cannot be read as a version.

        Returns
        -------
        HistoryEntry or None
            The change recorded; ``None`` when the alias already pointed there.

        Raises
        ------
        GoldenMismatchError
            The outputs do not reproduce here (``.mismatches``); promotion refused.
        IntegrityError, BundleFormatError
            The file is damaged, unsigned, or needs what is missing; refused.
        StoreError
            Unknown name, version, or a bad alias name.

        Examples
        --------
        >>> store.promote("churn", "1.3.0")                       # doctest: +SKIP
        >>> store.promote("churn", "staging", alias="production")  # doctest: +SKIP
        """
        _check_alias(alias)
        target = self.resolve(name, version)
        fingerprint = self._verify_for(
            name, target, alias, f"Refused to promote {name}=={target} to {alias!r}")
        with self._changing(name):
            self._check_unchanged(name, target, fingerprint)
            current = self._read_aliases(name).get(alias)
            if current == (target, fingerprint):
                return None
            entry = _entry("promote", alias, None if current is None else current[0],
                           target, fingerprint)
            self._record(name, entry)
        logger.info("%s: %r -> %s (was %s)", name, alias, target, entry.from_version)
        return entry

    def rollback(self, name: str, alias: str = "production") -> HistoryEntry:
        """Return ``alias`` to the target it had before its last promotion.

        Successive rollbacks walk further back. The earlier target is verified as for
        :meth:`promote`; if it no longer reproduces, the alias stays where it is.

        Returns
        -------
        HistoryEntry

        Raises
        ------
        StoreError
            When the alias has no earlier target.
        GoldenMismatchError, IntegrityError, BundleFormatError
            The earlier target fails verification; rollback refused.

        Examples
        --------
        >>> store.rollback("churn").to_version                   # doctest: +SKIP
        <Version('1.2.0')>
        """
        _check_alias(alias)
        for _ in range(_ROLLBACK_ATTEMPTS):
            current, previous = self._rollback_plan(name, alias)
            fingerprint = self._verify_for(
                name, previous, alias, f"Refused to roll {alias!r} of {name} back to {previous}")
            with self._changing(name):
                if self._rollback_plan(name, alias) != (current, previous):
                    continue  # another process moved the alias meanwhile; plan again
                self._check_unchanged(name, previous, fingerprint)
                entry = _entry("rollback", alias, current, previous, fingerprint)
                self._record(name, entry)
            logger.info("%s: %r rolled back %s -> %s", name, alias, current, previous)
            return entry
        raise StoreError(f"Alias {alias!r} of {name!r} kept changing during rollback; retry.")

    # ----------------------------------------------------------- internals

    def _folder(self, name: str) -> Path:
        _check_name(name)
        return self._root / name

    def _versions_folder(self, name: str) -> Path:
        return self._folder(name) / VERSIONS

    def _file(self, name: str, version: Version) -> Path:
        path = self._files(name).get(version)
        if path is None:
            raise StoreError(f"{name}=={version} is not in store {str(self._root)!r}.")
        return path

    def _files(self, name: str) -> dict[Version, Path]:
        folder = self._versions_folder(name)
        if not folder.is_dir():
            return {}
        files = {}
        for p in folder.iterdir():
            if p.name.startswith(".") or not p.name.endswith(BUNDLE_SUFFIX):
                continue
            with contextlib.suppress(InvalidVersion):
                files[Version(p.name[: -len(BUNDLE_SUFFIX)])] = p
        return files

    def _resolve(self, name: str, selector: str | Version | None) -> tuple[Version, str | None]:
        """The selected version, and the fingerprint an alias promised (else ``None``)."""
        versions = self.versions(name)
        if selector is None:
            releases = [v for v in versions if not v.is_prerelease]
            if not releases:
                raise StoreError(f"{name!r} has only pre-releases {_strs(versions)}; ask for "
                                 "one by version or with a specifier such as '>=2.0rc1'.")
            return releases[-1], None
        if isinstance(selector, Version):
            return self._exact(name, selector, versions), None
        text = str(selector).strip()
        try:
            return self._exact(name, Version(text), versions), None
        except InvalidVersion:
            pass
        if _ALIAS.fullmatch(text):
            aliases = self._read_aliases(name)
            if text not in aliases:
                raise StoreError(f"{name!r} has no alias {text!r}; aliases: {sorted(aliases)}. "
                                 f"Set one with promote({name!r}, VERSION, alias={text!r}).")
            return aliases[text]
        try:
            spec = SpecifierSet(text)
        except InvalidSpecifier:
            raise StoreError(
                f"{selector!r} is neither a version ('1.2.0'), a specifier ('>=1.2,<2') nor "
                "an alias ('production')."
            ) from None
        matches = list(spec.filter(versions, prereleases=bool(spec.prereleases)))
        if not matches:
            raise StoreError(f"No version of {name!r} matches {text!r}; versions: "
                             f"{_strs(versions)}.")
        return max(matches), None

    @staticmethod
    def _exact(name: str, wanted: Version, versions: list[Version]) -> Version:
        for v in versions:
            if v == wanted:
                return v
        raise StoreError(f"{name!r} has no version {str(wanted)!r}; versions: "
                         f"{_strs(versions)}.")

    def _read_aliases(self, name: str) -> dict[str, tuple[Version, str]]:
        path = self._folder(name) / ALIASES
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise StoreError(f"{str(path)!r} is not valid JSON ({exc}).") from None
        try:
            return {str(alias): (Version(str(t["version"])), str(t["fingerprint"]))
                    for alias, t in raw.items()}
        except (AttributeError, KeyError, TypeError, InvalidVersion) as exc:
            raise StoreError(f"{str(path)!r} is malformed ({type(exc).__name__}: {exc}).") \
                from None

    def _fingerprint(self, path: Path) -> str:
        """The file's fingerprint, read once per file state (versions never change)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise StoreError(f"{str(path)!r} disappeared from the store.") from None
        state = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._fingerprints.get(path)
        if known is not None and known[0] == state:
            return known[1]
        fingerprint = recorded_fingerprint(path)  # the load that follows checks the members
        with self._lock:
            self._fingerprints[path] = (state, fingerprint)
        return fingerprint

    def _load(self, path: Path, *, verify: bool) -> ModelBundle:
        return load(path, verify=verify, signing_key=self._signing_key,
                    allowed_modules=self._allowed_modules, environment=self._environment)

    def _cached(self, path: Path, fingerprint: str) -> ModelBundle:
        with self._lock:
            bundle = self._loaded.get(fingerprint)
            if bundle is not None:
                self._loaded.move_to_end(fingerprint)
                return bundle
            loading = self._loading.setdefault(fingerprint, threading.Lock())
        with loading:  # one thread loads a given bundle; the others wait for it
            with self._lock:
                bundle = self._loaded.get(fingerprint)
                verified = fingerprint in self._verified
            if bundle is not None:
                return bundle
            if verified:
                bundle = load_unverified(path, signing_key=self._signing_key,
                                         allowed_modules=self._allowed_modules,
                                         environment=self._environment)
                logger.debug("%s reloaded; golden outputs were verified earlier for "
                             "fingerprint %s", path, fingerprint)
            else:
                bundle = self._load(path, verify=True)
            if bundle.fingerprint != fingerprint:
                raise StoreError(f"{str(path)!r} changed while it was being loaded "
                                 f"(expected fingerprint {fingerprint}).")
            self._keep(bundle, fingerprint)
            return bundle

    def _keep(self, bundle: ModelBundle, fingerprint: str) -> None:
        with self._lock:
            self._verified.add(fingerprint)
            self._loaded[fingerprint] = bundle
            self._loaded.move_to_end(fingerprint)
            while len(self._loaded) > self._max_loaded:
                self._loaded.popitem(last=False)
            self._loading.pop(fingerprint, None)

    def _verify_for(self, name: str, target: Version, alias: str, what: str) -> str:
        """Load and verify ``target`` now, whatever the cache says; its fingerprint."""
        path = self._file(name, target)
        try:
            bundle = self._load(path, verify=True)
        except (GoldenMismatchError, IntegrityError, BundleFormatError) as exc:
            current = self.aliases(name).get(alias)
            state = (f"{alias!r} still points at {current}" if current is not None
                     else f"{alias!r} stays unset")
            raise _refused(exc, what, state) from exc
        fingerprint = bundle.fingerprint
        self._keep(bundle, fingerprint)
        return fingerprint

    def _check_unchanged(self, name: str, version: Version, fingerprint: str) -> None:
        found = self._fingerprint(self._file(name, version))
        if found != fingerprint:
            raise StoreError(f"{name}=={version} changed on disk during verification "
                             f"(verified {fingerprint}, now {found}); nothing was changed.")

    def _rollback_plan(self, name: str, alias: str) -> tuple[Version, Version]:
        current = self.aliases(name).get(alias)
        if current is None:
            raise StoreError(f"{name!r} has no alias {alias!r} to roll back.")
        stack = _rollback_stack(self.history(name), alias)
        if not stack:
            raise StoreError(f"Alias {alias!r} of {name!r} has no earlier target to roll back "
                             f"to; it has pointed only at {current}.")
        return current, stack[-1]

    @contextlib.contextmanager
    def _changing(self, name: str) -> Iterator[None]:
        """Hold ``name``'s lock file: one change at a time, across processes."""
        folder = self._folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK, "a+b") as fh:
            _lock(fh)
            try:
                yield
            finally:
                _unlock(fh)

    def _record(self, name: str, entry: HistoryEntry) -> None:
        """Append ``entry`` to the history, then apply it to aliases.json (under lock)."""
        folder = self._folder(name)
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

    def _publish(self, tmp: Path, info: BundleInfo) -> BundleInfo:
        """Move the checked file ``tmp`` into place as ``info``'s version, under lock."""
        name, version = info.name, info.version
        folder = self._versions_folder(name)
        with self._changing(name):
            folder.mkdir(parents=True, exist_ok=True)
            for v, path in self._files(name).items():
                if v != version:
                    continue
                found = self._fingerprint(path)
                if found == info.fingerprint:
                    return inspect(path)
                raise StoreError(
                    f"{name}=={v} is already in the store with fingerprint {found}; the "
                    f"bundle put has fingerprint {info.fingerprint}. Versions are immutable: "
                    "give the new content a new version."
                )
            final = folder / f"{version}{BUNDLE_SUFFIX}"
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o444)  # a reminder for people; the lock is the guarantee
            # Equal versions may be spelled apart ("1.0", "1.0.0"), so the check above,
            # made under the lock, is what refuses a second copy; the rename is atomic.
            os.replace(tmp, final)
            fsync_dir(folder)
            self._record(name, _entry("put", None, None, version, info.fingerprint))
        logger.info("%s==%s added (%s)", name, version, info.fingerprint[:12])
        return inspect(final)


class ModelService:
    """The bundles behind one alias, loaded on first use (see :meth:`BundleStore.load_all`).

    ``service[name]`` (or :meth:`get`) reads the alias from disk and returns that
    version's bundle from the store's bounded, thread-safe cache, so a promotion is
    served on the next call without a restart.

    Examples
    --------
    >>> service = sm.BundleStore("models").load_all("production")   # doctest: +SKIP
    >>> service["churn"].predict_proba(records)                     # doctest: +SKIP
    """

    def __init__(self, store: BundleStore, alias: str) -> None:
        self._store = store
        self._alias = alias

    def __repr__(self) -> str:
        return f"<ModelService {self._alias!r} of {self._store!r}>"

    @property
    def alias(self) -> str:
        return self._alias

    def names(self) -> list[str]:
        """Names that have the alias now, sorted."""
        return [n for n in self._store.names() if self._alias in self._store.aliases(n)]

    def version(self, name: str) -> Version:
        """The version the alias points at for ``name`` now."""
        return self._store.resolve(name, self._alias)

    def get(self, name: str) -> ModelBundle:
        """The verified bundle the alias points at for ``name`` now.

        Raises
        ------
        StoreError
            When ``name`` is unknown or has no such alias.
        """
        return self._store.get(name, self._alias)

    def preload(self) -> dict[str, Version]:
        """Load and verify every bundle behind the alias now; ``name -> version``."""
        return {name: self.get(name).version for name in self.names()}

    def __getitem__(self, name: str) -> ModelBundle:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


# ------------------------------------------------------------------- helpers


def _check_name(name: str) -> None:
    if (not isinstance(name, str) or not name.strip() or name.startswith(".")
            or any(sep in name for sep in ("/", "\\", os.sep))):
        raise StoreError(f"{name!r} cannot be a store name: use a non-empty name without "
                         "slashes that does not start with '.'.")


def _check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise StoreError(f"Alias {alias!r} must be one word of letters, digits, '_', '-' and "
                         "'.', starting with a letter or '_', such as 'production'.")
    with contextlib.suppress(InvalidVersion):
        Version(alias)
        raise StoreError(f"Alias {alias!r} reads as a version; choose a word such as "
                         "'production' or 'staging'.")


def _strs(versions: Iterable[Version]) -> list[str]:
    return [str(v) for v in versions]


def _refused(exc: SafeModelError, what: str, state: str) -> SafeModelError:
    """``exc`` again (same type and context), its message prefixed with the refusal."""
    text = str(exc)
    message = f"{what}; {state}. {text}" if "\n" not in text else f"{what}; {state}.\n{text}"
    if isinstance(exc, GoldenMismatchError):
        return GoldenMismatchError(message, mismatches=exc.mismatches,
                                   environment_diff=exc.environment_diff)
    if isinstance(exc, IntegrityError | BundleFormatError):
        return type(exc)(message, member=exc.member, expected=exc.expected, found=exc.found)
    return exc
