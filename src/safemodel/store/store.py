"""A folder of bundles: names, immutable versions, aliases and their history.

A :class:`BundleStore` keeps every version of every named model as a plain bundle
file, moves aliases (``"production"``, ``"staging"`` ...) only to versions that load
and reproduce their golden outputs in this environment, and records every change in an
append-only history. Several processes may use one store at once: every change is
made under a per-name file lock and published with an atomic rename.

This module is the facade; each concept has its module: :mod:`~safemodel.store.layout`
(paths, name and alias rules), :mod:`~safemodel.store.history` (the append-only log and
the aliases it sets), :mod:`~safemodel.store.locks`, :mod:`~safemodel.store.selection`
(versions, specifiers, aliases), :mod:`~safemodel.store.cache` (verified bundles) and
:mod:`~safemodel.store.service` (:class:`ModelService`).

A service that serves many models uses :meth:`BundleStore.load_all`: bundles load on
first use, each fingerprint's golden outputs are verified once per process, at most
``max_loaded`` bundles stay cached, and a promotion is seen on the next lookup.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Any

from packaging.version import Version

from safemodel.core.bundle import ModelBundle
from safemodel.errors import (
    BundleFormatError,
    BundleNotFoundError,
    GoldenMismatchError,
    IncompatibleEnvironmentError,
    IntegrityError,
    InvalidArgument,
    SafeModelError,
    StoreError,
    UntrustedBundleError,
)
from safemodel.io.archive import (
    Environment,
    Expected,
    Loaded,
    check_integrity,
    inspect,
    load_bytes,
    read_file,
    recorded_fingerprint,
)
from safemodel.io.files import fsync_dir
from safemodel.io.manifest import BundleInfo
from safemodel.io.model_signing import read_sidecar_file, sidecar_path
from safemodel.store import history as _history
from safemodel.store import sidecars
from safemodel.store.cache import VerifiedCache
from safemodel.store.history import HistoryEntry, new_entry, rollback_stack
from safemodel.store.layout import (
    BUNDLE_SUFFIX,
    INCOMING,
    VERSIONS,
    check_alias,
    check_name,
    version_files,
)
from safemodel.store.locks import holding
from safemodel.store.selection import Selector, select
from safemodel.store.service import ModelService

__all__ = ["BundleStore"]

logger = logging.getLogger("safemodel.store")

_ROLLBACK_ATTEMPTS = 5


class BundleStore:
    """Versions and aliases of many bundles in one local folder.

    Parameters
    ----------
    root : str or path-like
        The store's folder; created by the first :meth:`put`.
    max_loaded : int, default 16
        Most bundles :meth:`get` keeps loaded (least recently used are dropped).
    signing_key : HmacKey, Ed25519 key, str or bytes, optional
        The one key every bundle must be signed with (defaults to
        ``$SAFEMODEL_SIGNING_KEY``); see :func:`safemodel.load`.
    trusted_keys : iterable, optional
        Public keys to trust besides your own, the trust store and
        ``$SAFEMODEL_TRUSTED_KEYS``.
    trust : bool, default False
        Serve bundles no trusted key signed (their pickles run code). Aliases still
        move only to trusted versions.
    allowed_modules : iterable of str, optional
        Unpickle through the enforced allow-list (see :func:`safemodel.load`).
    environment : {"warn", "strict", "ignore"}, default "warn"
        Passed to :func:`safemodel.load`.
    sidecar : bool, default False
        Keep an OpenSSF model signing signature (``<version>.safemodel.sig``) beside
        every bundle and require it to verify, with a trusted ECDSA key, on every
        load (:mod:`safemodel.store.sidecars`).

    Notes
    -----
    Versions are immutable: a name and version, once put, always mean the same
    content (fingerprint). Before anything is unpickled, a file's manifest must name
    the name and version its path says, and the fingerprint its ``put`` recorded, and
    a trusted key must have signed it; the file is read once, so the bytes checked are
    the bytes unpickled. Aliases move only through :meth:`promote` and
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
        trusted_keys: Iterable[Any] | None = None,
        trust: bool = False,
        allowed_modules: Iterable[str] | None = None,
        environment: Environment = "warn",
        sidecar: bool = False,
    ) -> None:
        self._root = Path(root)
        if self._root.exists() and not self._root.is_dir():
            raise StoreError(f"Store root {str(self._root)!r} is a file; give a folder.")
        if isinstance(max_loaded, bool) or not isinstance(max_loaded, int) or max_loaded < 1:
            raise InvalidArgument.of("BundleStore", "max_loaded", "an int >= 1", max_loaded)
        # Passed to every load; kept as one mapping so new load options need one line.
        if not isinstance(trust, bool):
            raise InvalidArgument.of("BundleStore", "trust", "True or False", trust)
        if not isinstance(sidecar, bool):
            raise InvalidArgument.of("BundleStore", "sidecar", "True or False", sidecar)
        self._sidecar = sidecar
        self._load_options: dict[str, Any] = {
            "signing_key": signing_key,
            "trusted_keys": None if trusted_keys is None else tuple(trusted_keys),
            "trust": trust,
            "allowed_modules": None if allowed_modules is None else tuple(allowed_modules),
            "environment": environment,
        }
        self._lock = threading.Lock()  # guards _fingerprints
        self._cache: VerifiedCache[ModelBundle] = VerifiedCache(max_loaded)
        self._fingerprints: dict[Path, tuple[tuple[int, int, int], str]] = {}

    def __repr__(self) -> str:
        return f"<BundleStore {str(self._root)!r}>"

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self._root

    @property
    def load_options(self) -> dict[str, Any]:
        """The trust and load options every load of this store uses (a copy)."""
        return dict(self._load_options)

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
            raise BundleNotFoundError(f"No bundle named {name!r} in store "
                                      f"{str(self._root)!r}; names: {known}.",
                                      name=name, known=known)
        return sorted(files)

    def aliases(self, name: str) -> dict[str, Version]:
        """``alias -> version`` for every alias of ``name``."""
        promised = _history.read_aliases(self._folder(name))
        return {alias: target for alias, (target, _) in promised.items()}

    def history(self, name: str) -> list[HistoryEntry]:
        """Every put, promotion and rollback of ``name``, oldest first."""
        return _history.read_history(self._folder(name))

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
                "are immutable; restore the file or put the new content as a new version.",
                name=name, version=str(target), alias=str(version))
        return self._cached(name, target, path, fingerprint)

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
        check_alias(alias)
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
        incoming = self._root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f"{uuid.uuid4().hex}{BUNDLE_SUFFIX}"
        try:
            if isinstance(bundle, ModelBundle):
                bundle.save(tmp, signing_key=signing_key, sidecar=self._sidecar)
            else:
                shutil.copyfile(bundle, tmp)
            check_integrity(tmp)  # inspect leaves the estimator's hash to load
            if self._sidecar and not isinstance(bundle, ModelBundle):
                sidecars.adopt(bundle, tmp, signing_key, self._load_options)
            return self._publish(tmp, inspect(tmp))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            sidecars.discard(tmp)

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
        check_alias(alias)
        target = self.resolve(name, version)
        refusal = f"Refused to promote {name}=={target} to {alias!r}"
        fingerprint = self._verify_for(name, target, alias, refusal)
        folder = self._folder(name)
        with holding(folder):
            self._check_unchanged(name, target, fingerprint, refusal)
            current = _history.read_aliases(folder).get(alias)
            if current == (target, fingerprint):
                return None
            entry = new_entry("promote", alias, None if current is None else current[0],
                              target, fingerprint)
            _history.record(folder, entry)
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
        check_alias(alias)
        for _ in range(_ROLLBACK_ATTEMPTS):
            current, previous = self._rollback_plan(name, alias)
            refusal = f"Refused to roll {alias!r} of {name} back to {previous}"
            fingerprint = self._verify_for(name, previous, alias, refusal)
            with holding(self._folder(name)):
                if self._rollback_plan(name, alias) != (current, previous):
                    continue  # another process moved the alias meanwhile; plan again
                self._check_unchanged(name, previous, fingerprint, refusal)
                entry = new_entry("rollback", alias, current, previous, fingerprint)
                _history.record(self._folder(name), entry)
            logger.info("%s: %r rolled back %s -> %s", name, alias, current, previous)
            return entry
        raise StoreError(f"Alias {alias!r} of {name!r} kept changing during rollback; retry.",
                         name=name, alias=alias)

    # ----------------------------------------------------------- internals

    def _folder(self, name: str) -> Path:
        check_name(name)
        return self._root / name

    def _file(self, name: str, version: Version) -> Path:
        path = self._files(name).get(version)
        if path is None:
            raise BundleNotFoundError(f"{name}=={version} is not in store {str(self._root)!r}.",
                                      name=name, version=str(version))
        return path

    def _files(self, name: str) -> dict[Version, Path]:
        return version_files(self._folder(name) / VERSIONS)

    def _resolve(self, name: str, selector: Selector) -> tuple[Version, str | None]:
        """The selected version, and the fingerprint an alias promised (else ``None``)."""
        return select(name, selector, self.versions(name),
                      lambda: _history.read_aliases(self._folder(name)))

    def _fingerprint(self, path: Path) -> str:
        """The file's fingerprint, read once per file state (versions never change)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise StoreError(f"{str(path)!r} disappeared from the store; put it again or "
                             "restore it from a backup.") from None
        state = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._fingerprints.get(path)
        if known is not None and known[0] == state:
            return known[1]
        fingerprint = recorded_fingerprint(path)  # the load that follows checks the members
        with self._lock:
            self._fingerprints[path] = (state, fingerprint)
        return fingerprint

    def _load(self, name: str, version: Version, *, verify: bool,
              sidecar: bytes | None) -> Loaded:
        """Read the file once; check path, history, hashes and signer; then unpickle.

        ``sidecar``: in a store that keeps sidecars, the ``.sig`` as the caller read it
        (:meth:`_sidecar_now`) and keys the result by. It is verified here as given,
        never read again: see :meth:`_cached` for why.
        """
        path = self._file(name, version)
        expected = Expected(name=name, version=str(version),
                            fingerprint=self._put_fingerprint(name, version))
        data = read_file(path)
        if self._sidecar:
            sidecars.check(path, data, sidecar, self._load_options)
        # path=: the bundle re-reads its pickle from the file when saved, keeping no copy.
        return load_bytes(data, source=str(path), verify=verify, quiet=not verify,
                          expected=expected, sidecar=sidecar if self._sidecar else None,
                          path=path, **self._load_options)

    def _sidecar_now(self, path: Path) -> bytes | None:
        """The content of ``path``'s ``.sig`` now, in a store that keeps sidecars
        (``None`` when absent, or when the store keeps none): read once per lookup."""
        if not self._sidecar:
            return None
        return read_sidecar_file(sidecar_path(path))

    def _cache_key(self, fingerprint: str, sidecar: bytes | None) -> str:
        """A bundle's key in the cache: its fingerprint, with the SHA-256 of the ``.sig``
        it was checked with, so a bundle whose ``.sig`` changed (replaced, removed) is
        checked again, never served from the cache."""
        if not self._sidecar:
            return fingerprint
        return f"{fingerprint} sig:{'none' if sidecar is None else _digest(sidecar)}"

    def _put_fingerprint(self, name: str, version: Version) -> str:
        """The fingerprint the history recorded when ``name==version`` was put."""
        recorded = [e.fingerprint for e in self.history(name)
                    if e.action == "put" and e.to_version == version]
        if not recorded:
            raise StoreError(
                f"{name}=={version} is in the store's folder but its history records no "
                "put of it: the file was copied in by hand, so nothing vouches for it. It "
                "was not unpickled; add it with `BundleStore.put` (`safemodel store put`).",
                name=name, version=str(version))
        return recorded[-1]

    def _cached(self, name: str, version: Version, path: Path,
                fingerprint: str) -> ModelBundle:
        # One read of the .sig serves both the key and the check. The bytes hashed for
        # the key must be the bytes verified: with two reads, a .sig swapped between
        # them (a forged or untrusted one read for the key, a good one verified) would
        # leave the bundle cached under the bad one's digest, and every later lookup
        # that finds the bad .sig would be served from the cache unchecked.
        sidecar = self._sidecar_now(path)

        def load_file(verified_before: bool) -> ModelBundle:
            bundle = self._load(name, version, verify=not verified_before,
                                sidecar=sidecar).bundle
            if verified_before:
                logger.debug("%s reloaded; golden outputs were verified earlier for "
                             "fingerprint %s", path, fingerprint)
            if bundle.fingerprint != fingerprint:
                raise StoreError(f"{str(path)!r} changed while it was being loaded "
                                 f"(expected fingerprint {fingerprint}); try again.")
            return bundle

        return self._cache.get(self._cache_key(fingerprint, sidecar), load_file)

    def _verify_for(self, name: str, target: Version, alias: str, what: str) -> str:
        """Load and verify ``target`` now, whatever the cache says; its fingerprint."""
        current = self.aliases(name).get(alias)
        state = (f"{alias!r} still points at {current}" if current is not None
                 else f"{alias!r} stays unset")
        try:
            sidecar = self._sidecar_now(self._file(name, target))  # one read, as in _cached
            loaded = self._load(name, target, verify=True, sidecar=sidecar)
        except (GoldenMismatchError, IntegrityError, BundleFormatError,
                IncompatibleEnvironmentError, StoreError) as exc:
            raise _refused(exc, what, state) from exc
        if not loaded.trust.trusted:
            raise UntrustedBundleError(
                f"{what}; {state}. {loaded.trust.reason}: an alias moves only to a version "
                "a trusted key signed. Trust its signer (`safemodel trust add KEY.pem`), or "
                "put a bundle you signed.", signer=loaded.trust.signer,
                member="signature.json", expected="a signature by a trusted key",
                found=loaded.trust.signer)
        self._cache.put(self._cache_key(loaded.bundle.fingerprint, sidecar), loaded.bundle)
        return loaded.bundle.fingerprint

    def _check_unchanged(self, name: str, version: Version, fingerprint: str,
                         what: str) -> None:
        found = self._fingerprint(self._file(name, version))
        if found != fingerprint:
            raise StoreError(f"{what}; nothing was changed. {name}=={version} changed on "
                             f"disk during verification (verified {fingerprint}, now "
                             f"{found}). Versions are immutable: put new content as a new "
                             "version.", name=name, version=str(version), refused=True)

    def _rollback_plan(self, name: str, alias: str) -> tuple[Version, Version]:
        current = self.aliases(name).get(alias)
        if current is None:
            raise BundleNotFoundError(f"{name!r} has no alias {alias!r} to roll back.",
                                      name=name, alias=alias, known=sorted(self.aliases(name)))
        stack = rollback_stack(self.history(name), alias)
        if not stack:
            raise StoreError(f"Alias {alias!r} of {name!r} has no earlier target to roll back "
                             f"to; it has pointed only at {current}.", name=name, alias=alias,
                             version=str(current))
        return current, stack[-1]

    def _publish(self, tmp: Path, info: BundleInfo) -> BundleInfo:
        """Move the checked file ``tmp`` into place as ``info``'s version, under lock."""
        name, version = info.name, info.version
        folder = self._folder(name)
        versions = folder / VERSIONS
        with holding(folder):
            versions.mkdir(parents=True, exist_ok=True)
            for v, path in self._files(name).items():
                if v != version:
                    continue
                found = self._fingerprint(path)
                if found == info.fingerprint:
                    if not sidecar_path(path).exists():
                        sidecars.install(tmp, path)  # the same content, now signed
                    return inspect(path)
                raise StoreError(
                    f"{name}=={v} is already in the store with fingerprint {found}; the "
                    f"bundle put has fingerprint {info.fingerprint}. Versions are immutable: "
                    "give the new content a new version.", name=name, version=str(v),
                )
            final = versions / f"{version}{BUNDLE_SUFFIX}"
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o444)  # a reminder for people; the lock is the guarantee
            # Equal versions may be spelled apart ("1.0", "1.0.0"), so the check above,
            # made under the lock, is what refuses a second copy; the rename is atomic.
            sidecars.install(tmp, final)
            os.replace(tmp, final)
            fsync_dir(versions)
            _history.record(folder, new_entry("put", None, None, version, info.fingerprint))
        logger.info("%s==%s added (%s)", name, version, info.fingerprint[:12])
        return inspect(final)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _refused(exc: SafeModelError, what: str, state: str) -> SafeModelError:
    """``exc`` again (same type and context), its message prefixed with the refusal."""
    text = str(exc)
    message = f"{what}; {state}. {text}" if "\n" not in text else f"{what}; {state}.\n{text}"
    if isinstance(exc, GoldenMismatchError):
        return GoldenMismatchError(message, mismatches=exc.mismatches,
                                   environment_diff=exc.environment_diff)
    if isinstance(exc, UntrustedBundleError):
        return UntrustedBundleError(message, signer=exc.signer, references=exc.references,
                                    member=exc.member, expected=exc.expected, found=exc.found)
    if isinstance(exc, IntegrityError | BundleFormatError):
        return type(exc)(message, member=exc.member, expected=exc.expected, found=exc.found)
    if isinstance(exc, IncompatibleEnvironmentError):
        return IncompatibleEnvironmentError(message, bundle=exc.bundle, diff=exc.diff,
                                            stage=exc.stage, cause=exc.cause,
                                            requirements=exc.requirements)
    if isinstance(exc, StoreError):  # a file gone, or copied in without a put
        return type(exc)(message, name=exc.name, version=exc.version, alias=exc.alias,
                         known=exc.known, refused=True)
    return exc
