"""Loading, saving and inspecting bundle files: the entry points and their check order.

A bundle is one zip file (:mod:`safemodel.io.zipbytes`) whose first member,
``manifest.json`` (:mod:`safemodel.io.manifest`), lists the SHA-256 and size of every
other member (:mod:`safemodel.io.layout`). Loading checks, in order: that the file is
a canonical zip with safe, unique member names; the manifest and its format version;
every member's size and hash; what the caller expects of the file (a store's name,
version and fingerprint); the signer, against the keys trusted here
(:mod:`safemodel.io.trust`); the pickle's references (when an allow-list is given, then
enforced while unpickling); every readable part; and only then unpickles the estimator
and re-runs the golden inputs. The file is read once: the bytes hashed are the bytes
unpickled. Nothing is unpickled unless a trusted key signed it or the caller passed
``trust=True``. Every save signs (:func:`safemodel.io.trust.signing_key_for_save`: the
user's own key unless one is given). See ``docs/format.md``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NoReturn

from safemodel._values import bundle_name_problem
from safemodel._versions import parse_version
from safemodel.core.bundle import ModelBundle
from safemodel.core.fingerprint import fingerprint_of
from safemodel.core.references import UNRESOLVED, pickle_references
from safemodel.core.writer import register_writer
from safemodel.errors import (
    BundleFormatError,
    IntegrityError,
    InvalidArgument,
    SafeModelError,
    UntrustedBundleError,
)
from safemodel.io import layout, unpickling
from safemodel.io.audit import disallowed_references, refusal_advice, restricted_loads
from safemodel.io.files import atomic_file, hashing, write_atomic
from safemodel.io.formats import FORMAT_VERSION, migrate
from safemodel.io.keys import trusted_keys as gather_trusted_keys
from safemodel.io.layout import ESTIMATOR, MANIFEST, REQUIRED, SIGNATURE
from safemodel.io.manifest import BundleInfo, Manifest, MemberInfo
from safemodel.io.model_signing import (
    SIDECAR_SUFFIX,
    check_sidecar_key,
    decide_trust_with_sidecar,
    require_sidecar,
    sidecar_beside,
    sidecar_path,
    sign_sidecar_digest,
    usable_sidecar,
)
from safemodel.io.signing import sign_manifest
from safemodel.io.trust import TrustDecision, decide_trust, signing_key_for_save
from safemodel.io.upgrade import (
    check_environment_strict,
    environment_refusal,
    verification_refusal,
)
from safemodel.io.zipbytes import DAMAGED_NEXT_STEP, ZipReader, ZipWriter

__all__ = ["Environment", "Expected", "Loaded", "check_integrity", "inspect", "inspect_bytes",
           "load", "load_bytes", "load_unverified", "read_file", "recorded_fingerprint",
           "save", "signed_parts"]

logger = logging.getLogger("safemodel")

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_SIGNATURE_BYTES = 64 * 2**10

Environment = Literal["warn", "strict", "ignore"]
_ENVIRONMENTS = ("warn", "strict", "ignore")


def _path(path: Any, function: str) -> Path:
    """``path`` as a Path, or an InvalidArgument (not a TypeError from os.fspath)."""
    if isinstance(path, str | PathLike):
        text = os.fspath(path)
        if isinstance(text, str) and text and "\0" not in text:
            return Path(text)
    raise InvalidArgument.of(function, "path", "a non-empty str or os.PathLike of str "
                             "without NUL characters", path)


def _flag(value: Any, function: str, argument: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument.of(function, argument, "True or False", value)
    return value


# ------------------------------------------------------------------------ save


def save(
    bundle: ModelBundle,
    path: str | PathLike[str],
    *,
    overwrite: bool = False,
    signing_key: Any = None,
    sidecar: bool = False,
) -> None:
    """Write ``bundle`` to ``path`` atomically (see :meth:`ModelBundle.save`).

    With ``sidecar=True`` the OpenSSF model signing signature of the written bytes goes
    to ``<path>.sig`` (atomically too, after the bundle), signed by the same key, which
    must then be an ECDSA key (:func:`safemodel.io.model_signing.check_sidecar_key`).
    A ``<path>.sig`` already there signs other bytes: without ``overwrite`` the save is
    refused; with it, that file is removed just before the new bundle takes its place,
    so a reader never finds the new bundle beside the old signature.
    """
    target = _path(path, "save")
    _flag(overwrite, "save", "overwrite")
    _flag(sidecar, "save", "sidecar")
    pair = sidecar_path(target)
    try:
        is_dir, exists, paired = target.is_dir(), target.exists(), pair.exists()
        folder = target.parent if str(target.parent) else Path(".")
        folder_exists = folder.is_dir()
    except OSError as exc:  # a name too long, a loop of links...
        raise InvalidArgument(
            f"Cannot save to {str(target)!r}: {type(exc).__name__}: {exc}. Give a path "
            "this system can create.", argument="path", expected="a writable file path",
            found=str(target),
        ) from None
    if is_dir:
        raise SafeModelError(f"{str(target)!r} is a folder; give a file path to save to.")
    if exists and not overwrite:
        raise SafeModelError(
            f"{str(target)!r} already exists; pass overwrite=True to replace it."
        )
    if paired and not overwrite:
        raise SafeModelError(
            f"{str(pair)!r} exists beside {str(target)!r}: a signature of other bytes, "
            "which must not stay beside the new bundle. Pass overwrite=True to replace it "
            "(with sidecar=True) or remove it (without), or remove it yourself."
        )
    members = bundle._members()
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    manifest = Manifest(
        name=bundle.name,
        version=str(bundle.version),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        methods=bundle.methods,
        environment=bundle.environment,
        members={n: MemberInfo(hashes[n], len(members[n])) for n in members},
        fingerprint=fingerprint_of(hashes),
        pickle_references=tuple(pickle_references(members[ESTIMATOR])),
    )
    manifest_bytes = json.dumps(manifest.to_dict(), indent=1).encode()
    key = signing_key_for_save(signing_key)
    if sidecar:
        check_sidecar_key(key)  # before anything is written
    signature = sign_manifest(manifest_bytes, key)

    if not folder_exists:
        raise SafeModelError(f"Folder {str(folder)!r} does not exist; create it first.")
    digest, signed = hashlib.sha256(), None
    try:
        # The old <path>.sig goes before the new bundle arrives, the new one after: a
        # reader sees a matching pair or a bundle alone, never a mismatching pair.
        with atomic_file(target, overwrite=overwrite, stale=pair if overwrite else None) as fh:
            writer = ZipWriter(hashing(fh, digest))
            writer.add(MANIFEST, manifest_bytes)
            if signature is not None:
                writer.add(SIGNATURE, signature)
            for name, data in members.items():
                writer.add(name, data)
            writer.finish()
            if sidecar:  # signs the digest of the bytes written, never a re-read file
                signed = sign_sidecar_digest(digest.hexdigest(), target.name, key)
    except FileExistsError:
        raise SafeModelError(
            f"{str(target)!r} already exists; pass overwrite=True to replace it."
        ) from None
    if signed is not None:
        write_atomic(pair, signed)


class _Writer:
    """What :class:`ModelBundle` needs from this layer (see ``register_writer``)."""

    def members(self, bundle: ModelBundle) -> dict[str, bytes]:
        return layout.encode(bundle)

    def save(self, bundle: ModelBundle, path: str | PathLike[str], *, overwrite: bool,
             signing_key: Any, sidecar: bool = False) -> None:
        save(bundle, path, overwrite=overwrite, signing_key=signing_key, sidecar=sidecar)


register_writer(_Writer())


# ------------------------------------------------------------------------ read


@dataclass(frozen=True)
class _Archive:
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    members: dict[str, bytes]


@dataclass(frozen=True)
class Expected:
    """What a caller knows a bundle file must be, checked before anything is unpickled.

    A store knows the name and version a file's path promises and the fingerprint its
    history recorded; a Spark or Dask driver knows the SHA-256 of the file whose
    signer it trusted. Fields left ``None`` are not checked.

    Attributes
    ----------
    name, version, fingerprint : str or None
        Must equal the manifest's (``version`` compared as a version).
    sha256 : str or None
        The SHA-256 of the whole file, as the caller computed it when it established
        trust in these very bytes. When given and equal, no key is consulted: the
        trust decision was made by whoever computed it (a driver, for its executors).
    """

    name: str | None = None
    version: str | None = None
    fingerprint: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Loaded:
    """A bundle unpickled from bytes checked once, and how its signer was judged."""

    bundle: ModelBundle
    trust: TrustDecision
    sha256: str


def read_file(path: Any, function: str = "load") -> bytes:
    """The bytes of a bundle file, read once (every check then runs on these bytes).

    Raises
    ------
    InvalidArgument
        ``path`` is not a path.
    BundleFormatError
        No such file, a folder, or unreadable.
    """
    target = _path(path, function)
    try:
        exists, is_dir = target.exists(), target.is_dir()
    except OSError as exc:  # a name too long, a loop of links...
        raise BundleFormatError(f"{str(target)!r} cannot be read ({type(exc).__name__}: "
                                f"{exc}).", found=type(exc).__name__) from None
    if not exists:
        raise BundleFormatError(f"No bundle at {str(target)!r}: the file does not exist.")
    if is_dir:
        raise BundleFormatError(f"{str(target)!r} is a folder, not a bundle file.")
    try:
        return target.read_bytes()
    except OSError as exc:
        raise BundleFormatError(
            f"{str(target)!r} cannot be read ({type(exc).__name__}: {exc}).",
            found=type(exc).__name__,
        ) from None


def _read(
    path: Any, function: str, *, unverified: Iterable[str] = (), members: bool = True
) -> _Archive:
    target = _path(path, function)
    if members:
        return _parse(read_file(target, function), repr(str(target)), set(unverified))
    read_file(target, function)  # the same refusals for a missing file or a folder
    try:  # the manifest alone: the structure is checked, no member is read
        with open(target, "rb") as fh:
            return _read_checked(ZipReader(fh, repr(str(target))), set(), False)
    except OSError as exc:
        raise BundleFormatError(
            f"{str(target)!r} cannot be read ({type(exc).__name__}: {exc}).",
            found=type(exc).__name__,
        ) from None


def _parse(data: bytes, source: str, unverified: Iterable[str] = ()) -> _Archive:
    return _read_checked(ZipReader(io.BytesIO(data), source), set(unverified), True)


def _read_checked(zf: ZipReader, unverified: set[str], read_members: bool) -> _Archive:
    by_name = {entry.name: entry for entry in zf.entries}
    if MANIFEST not in by_name:
        raise BundleFormatError(
            f"The file is a zip archive but not a safemodel bundle: it has no {MANIFEST}.",
            member=MANIFEST,
        )
    manifest_bytes = zf.read(by_name[MANIFEST], MAX_MANIFEST_BYTES)
    manifest = _manifest(manifest_bytes)
    declared = set(manifest.members)
    present = set(by_name) - {MANIFEST, SIGNATURE}
    if present - declared:
        extra = sorted(present - declared)
        raise IntegrityError(f"The archive holds members the manifest does not list: "
                             f"{extra}; it was modified after saving. {DAMAGED_NEXT_STEP}",
                             member=extra[0], found=extra)
    absent = sorted(declared - present)
    if absent:
        raise IntegrityError(f"Members listed in the manifest are missing: {absent}. "
                             f"{DAMAGED_NEXT_STEP}",
                             member=absent[0], expected=absent)
    missing_required = [m for m in REQUIRED if m not in declared]
    if missing_required:
        raise BundleFormatError(f"The bundle lacks required members {missing_required}.",
                                member=missing_required[0])
    if not read_members:
        return _Archive(manifest, manifest_bytes, None, {})
    members: dict[str, bytes] = {}
    for name, info in manifest.members.items():
        data = zf.read(by_name[name], info.size)
        digest = hashlib.sha256(data).hexdigest()
        if name not in unverified and (len(data) != info.size or digest != info.sha256):
            raise IntegrityError(
                f"Member {name!r} does not match its recorded SHA-256: the bundle was "
                f"modified or damaged after saving. {DAMAGED_NEXT_STEP}",
                member=name, expected=info.sha256, found=digest,
            )
        members[name] = data
    fp = fingerprint_of({n: i.sha256 for n, i in manifest.members.items()})
    if fp != manifest.fingerprint:
        raise IntegrityError("The manifest's fingerprint does not match its members. "
                             + DAMAGED_NEXT_STEP,
                             member=MANIFEST, expected=manifest.fingerprint, found=fp)
    signature = (zf.read(by_name[SIGNATURE], MAX_SIGNATURE_BYTES)
                 if SIGNATURE in by_name else None)
    return _Archive(manifest, manifest_bytes, signature,
                    migrate(manifest.format_version, members))


def signed_parts(data: bytes, source: str) -> tuple[bytes, bytes | None]:
    """The exact ``manifest.json`` and ``signature.json`` bytes of a bundle's bytes."""
    archive = _parse(data, source)
    return archive.manifest_bytes, archive.signature


def _manifest(data: bytes) -> Manifest:
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"{MANIFEST} is not valid JSON ({exc}).",
                                member=MANIFEST) from None
    except RecursionError:
        raise BundleFormatError(f"{MANIFEST} is nested too deeply to be read; the bundle "
                                "was damaged or crafted.", member=MANIFEST) from None
    manifest = Manifest.from_dict(raw)
    # ModelBundle refuses these too, but only after unpickling; a manifest that
    # carries them is a malformed file.
    problem = bundle_name_problem(manifest.name)
    if problem is not None:
        raise BundleFormatError(f"{MANIFEST}: {problem}.", member=MANIFEST,
                                found=manifest.name)
    try:
        parse_version(manifest.version)
    except SafeModelError as exc:
        raise BundleFormatError(f"{MANIFEST}: {exc}", member=MANIFEST,
                                found=manifest.version) from None
    return manifest


def load(
    path: str | PathLike[str],
    *,
    verify: bool = True,
    signing_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    trust: bool = False,
    allowed_modules: Iterable[str] | None = None,
    environment: Environment = "warn",
    sidecar: bool = False,
) -> ModelBundle:
    """Load a bundle, unpickling it only if a trusted key signed it.

    The file is read once, and every check runs on those bytes, in this order: the
    zip structure and manifest (format version), every member's size and SHA-256, the
    signature against the keys trusted here (:func:`safemodel.io.trust.decide_trust`),
    then unpickling (through the restricted unpickler when ``allowed_modules`` is
    given), then the golden re-run. A bundle no trusted key signed is refused before
    anything is unpickled, unless ``trust=True``.

    Parameters
    ----------
    path : str or path-like
    verify : bool, default True
        Re-run the golden inputs and refuse the bundle if outputs changed. ``False``
        skips this (logged as a warning).
    signing_key : HmacKey, Ed25519 key, str or bytes, optional
        The one key the bundle must be signed with (defaults to
        ``$SAFEMODEL_SIGNING_KEY``); text is ``"hmac:<secret>"`` or a PEM document.
        A bundle it does not verify is refused, even with ``trust=True``.
    trusted_keys : iterable, optional
        Public keys (objects, PEM text or paths to PEM files) to trust for this call,
        besides your own key, the trust store (``safemodel trust add``) and
        ``$SAFEMODEL_TRUSTED_KEYS``.
    trust : bool, default False
        Load a bundle that no trusted key signed, on purpose: its pickle runs code.
        A signature that names a trusted key but does not verify is still refused.
    allowed_modules : iterable of str, optional
        Unpickle with an allow-list: the pickle's references are audited before
        unpickling and enforced while it runs. Entries are an exact global name, a module
        (its classes only), or ``"package.*"`` (everything in it). Start from
        ``safemodel.DEFAULT_ALLOWED_MODULES``; ``safemodel.NOTEBOOK_ALLOWED_MODULES``
        adds what code pickled by value (defined in a notebook) needs. It narrows what a
        pickle can do; it does not replace a trusted signer.
    environment : {"warn", "strict", "ignore"}, default "warn"
        ``"warn"``: log one INFO line when package versions differ but outputs still
        reproduce. ``"strict"``: refuse any major/minor difference in scikit-learn,
        numpy, scipy, pandas. ``"ignore"``: say nothing.
    sidecar : bool, default False
        Require ``<path>.sig``, an OpenSSF model signing signature (``save(...,
        sidecar=True)`` writes one), to verify over the bytes loaded with a trusted ECDSA
        key, besides the bundle's own signature. Without it such a file is consulted
        only when the bundle's own signature is absent or untrusted.

    Returns
    -------
    ModelBundle

    Raises
    ------
    InvalidArgument
        A parameter of the wrong type or value.
    BundleFormatError
        Not a bundle, damaged layout, or a newer format.
    UntrustedBundleError
        No trusted key signed the bundle (it names the signer's key id or
        "unsigned", and the pickle's references); nothing was unpickled.
    IntegrityError
        Hash, signature or pickle-audit failure; nothing was unpickled, or unpickling
        stopped at the first global the allow-list refuses.
    GoldenMismatchError
        The estimator's outputs no longer reproduce.

    Examples
    --------
    >>> bundle = sm.load("churn.safemodel")                        # doctest: +SKIP
    >>> sm.load("vendor.safemodel", trusted_keys=["vendor.pem"])   # doctest: +SKIP
    """
    _flag(verify, "load", "verify")
    _flag(sidecar, "load", "sidecar")
    data = read_file(path)
    beside = sidecar_beside(path, trust=trust and not sidecar)  # required: never skipped
    if sidecar:  # the bytes read once above and here are the bytes checked and unpickled
        require_sidecar(data, beside, sidecar_path(path), gather_trusted_keys(trusted_keys),
                        why="sidecar=True requires a model signing signature",
                        fix="sign the file (`safemodel sidecar sign PATH`, or save it with "
                            "sidecar=True), or load it without sidecar=True (or --sidecar)")
    return load_bytes(data, source=str(path), verify=verify,
                      signing_key=signing_key, trusted_keys=trusted_keys, trust=trust,
                      allowed_modules=allowed_modules, environment=environment,
                      sidecar=beside, path=path).bundle


def _decide(archive: Any, *, decide: Any = decide_trust, **options: Any) -> TrustDecision:
    """The trust decision on ``archive``'s signature (and a sidecar, when one is given)."""
    return decide(archive.manifest_bytes, archive.signature, **options)  # type: ignore[no-any-return]


def load_unverified(
    path: str | PathLike[str],
    *,
    signing_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    trust: bool = False,
    allowed_modules: Iterable[str] | None = None,
    environment: Environment = "warn",
) -> ModelBundle:
    """Every check of :func:`load` (trust included) but the golden re-run, silently.

    For callers that verified this very content (same fingerprint) earlier in the
    process, such as the store reloading an evicted bundle, and for callers that
    verify the golden outputs themselves (``safemodel.testing``).
    """
    return load_bytes(read_file(path), source=str(path), verify=False, quiet=True,
                      signing_key=signing_key, trusted_keys=trusted_keys, trust=trust,
                      allowed_modules=allowed_modules, environment=environment,
                      path=path).bundle


def load_bytes(
    data: bytes,
    *,
    source: str = "<bytes>",
    verify: bool = True,
    quiet: bool = False,
    expected: Expected | None = None,
    signing_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    trust: bool = False,
    allowed_modules: Iterable[str] | None = None,
    environment: Environment = "warn",
    sidecar: bytes | None = None,
    path: str | PathLike[str] | None = None,
) -> Loaded:
    """:func:`load` on the bytes of a bundle file, checked against ``expected`` too.

    The bytes hashed, judged and unpickled are ``data``; nothing is read again. The
    store passes what a path promises (:class:`Expected`), a Spark or Dask executor
    the SHA-256 its driver trusted.

    Parameters
    ----------
    data : bytes
        The whole bundle file.
    source : str
        Its path or name, for messages.
    verify : bool, default True
        Re-run the golden inputs; ``False`` skips it (a warning unless ``quiet``).
    quiet : bool, default False
        Log nothing when ``verify`` is false (the caller verified this content before).
    expected : Expected, optional
        Name, version, fingerprint and whole-file SHA-256 the file must have; checked
        after the hashes, before the signer. A matching ``sha256`` stands for the
        trust its computer established: no key is consulted.
    signing_key, trusted_keys, trust, allowed_modules, environment
        As for :func:`load`.
    path : path-like, optional
        The file ``data`` was read from: a re-save of the loaded bundle reads the
        estimator's exact bytes back from it (checked against the manifest), so the
        loaded bundle need not keep them in memory.
    sidecar : bytes, optional
        An OpenSSF model signing signature of ``data`` (``<source>.sig``, the file its
        errors name): when the in-bundle signature is absent or untrusted, a trusted
        ECDSA key's valid sidecar establishes trust instead
        (:mod:`safemodel.io.model_signing`).

    Returns
    -------
    Loaded
        The bundle, the trust decision, and the SHA-256 of ``data``.
    """
    if environment not in _ENVIRONMENTS:
        raise InvalidArgument.of("load", "environment", f"one of {list(_ENVIRONMENTS)}",
                                 environment)
    _flag(trust, "load", "trust")
    allowed = None if allowed_modules is None else _names(allowed_modules)
    archive = _parse(data, repr(source))
    sha256 = hashlib.sha256(data).hexdigest()
    _check_expected(archive.manifest, sha256, expected or Expected(), source)
    estimator = archive.members[ESTIMATOR]
    if expected is not None and expected.sha256 is not None:
        decision = TrustDecision(True, "verified by the caller", None,
                                 f"the SHA-256 {sha256[:16]} its caller trusted")
    else:
        options = {"signing_key": signing_key, "trusted_keys": trusted_keys, "source": source}
        if sidecar is not None and trust:
            sidecar = usable_sidecar(sidecar, source)
        if sidecar is not None:
            options.update(decide=decide_trust_with_sidecar, data=data, sidecar=sidecar,
                           sidecar_name=f"{source}{SIDECAR_SUFFIX}")
        decision = _decide(archive, trust=True, **options)
        if not decision.trusted and not trust:
            # Again, to raise the refusal with the pickle's references, read only now:
            # reading every opcode of a large pickle would slow every trusted load.
            _decide(archive, references=_references(estimator), **options)
    if allowed is not None:
        _audit(estimator, allowed)
    if environment == "strict":
        check_environment_strict(archive.manifest.environment)
    try:
        bundle = layout.decode(archive.manifest, archive.members,
                               lambda raw: _unpickle(raw, archive.manifest, allowed),
                               None if path is None
                               else _estimator_source(path, archive.manifest))
    except ImportError as exc:  # e.g. pandas' pyarrow string storage, absent here
        raise (_environment_refusal(exc, archive.manifest, "golden inputs")
               or BundleFormatError(f"Reading the golden inputs needs what this environment "
                                    f"lacks ({exc}).", member="golden/inputs.json")) from exc
    if not decision.trusted:
        logger.warning("%s==%s from %s: %s.", bundle.name, bundle.version, source,
                       decision.reason)
    if verify:
        _verify_golden(bundle, environment)
    elif not quiet:
        logger.warning("%s==%s loaded with verify=False: golden outputs were not checked.",
                       bundle.name, bundle.version)
    return Loaded(bundle, decision, sha256)


def _verify_golden(bundle: ModelBundle, environment: Environment) -> None:
    report = bundle.verify()
    if not report.ok:
        raise verification_refusal(report, bundle=f"{bundle.name}=={bundle.version}",
                                   environment=bundle.environment)
    if report.environment_diff and environment == "warn":
        logger.info("%s==%s: golden outputs reproduce although package versions differ "
                    "from build time: %s", bundle.name, bundle.version,
                    ", ".join(f"{k} {a} -> {b}"
                              for k, (a, b) in report.environment_diff.items()))


def _check_expected(manifest: Manifest, sha256: str, expected: Expected, source: str) -> None:
    found = {"name": manifest.name, "version": manifest.version,
             "fingerprint": manifest.fingerprint, "sha256": sha256}
    for field, want in (("name", expected.name), ("version", expected.version),
                        ("fingerprint", expected.fingerprint), ("sha256", expected.sha256)):
        if want is None or _same(field, want, found[field]):
            continue
        where = MANIFEST if field != "sha256" else "(file)"
        raise IntegrityError(
            f"{source} holds {field} {found[field]!r}, but {want!r} was expected here: it "
            "was replaced or damaged, or replayed under another name or version, after it "
            "was checked. It was not unpickled; restore the file, or put the bundle under "
            "its own name and version.",
            member=where, expected=want, found=found[field],
        )


def _same(field: str, want: str, found: str) -> bool:
    if field == "version":
        return parse_version(want) == parse_version(found)
    return want == found



def _estimator_source(path: Any, manifest: Manifest) -> Callable[[], bytes | None] | None:
    """A reader of the estimator's exact bytes from ``path``, checked against ``manifest``.

    ``None`` (the bundle keeps the bytes) when the file's format was migrated on
    reading, as its members may then differ from what is stored.
    """
    if manifest.format_version != FORMAT_VERSION:
        return None
    target = os.path.abspath(_path(path, "load"))  # the process may change directory
    info = manifest.members[ESTIMATOR]

    def read() -> bytes | None:
        try:
            with open(target, "rb") as fh:
                zf = ZipReader(fh, repr(target))
                entry = next((e for e in zf.entries if e.name == ESTIMATOR), None)
                data = zf.read(entry, info.size) if entry is not None else None
        except (OSError, SafeModelError):
            return None
        if data is None or len(data) != info.size:
            return None
        return data if hashlib.sha256(data).hexdigest() == info.sha256 else None

    return read


def _names(allowed_modules: Any) -> tuple[str, ...]:
    expected = "a collection of module or global names, such as ('sklearn', 'numpy.ndarray')"
    if isinstance(allowed_modules, str | bytes) or not isinstance(allowed_modules, Iterable):
        raise InvalidArgument.of("load", "allowed_modules", expected, allowed_modules)
    names = tuple(allowed_modules)
    if not all(isinstance(name, str) for name in names):
        raise InvalidArgument.of("load", "allowed_modules", expected, names)
    return names


def _audit(estimator_bytes: bytes, allowed_modules: Iterable[str]) -> None:
    try:
        refs = pickle_references(estimator_bytes)
    except IntegrityError as exc:
        raise IntegrityError(str(exc), member=ESTIMATOR) from None
    bad = disallowed_references(refs, allowed_modules)
    if bad:
        raise IntegrityError(
            f"The estimator pickle references {bad}, outside the allowed modules; it "
            f"was not unpickled. {refusal_advice(bad)}", member=ESTIMATOR, found=bad,
        )


def _unpickle(data: bytes, manifest: Manifest, allowed: tuple[str, ...] | None) -> Any:
    try:
        if allowed is not None:
            return restricted_loads(data, allowed)
        return unpickling.loads(data)  # cloudpickle.loads, arrays owning their data
    except IntegrityError as exc:  # the restricted unpickler stopped at a global
        raise IntegrityError(str(exc), member=ESTIMATOR, expected=exc.expected,
                             found=exc.found) from None
    except Exception as exc:
        refusal = _environment_refusal(exc, manifest, "estimator")
        if refusal is not None:
            raise refusal from exc
        _raise_unpickle_error(exc)


def _environment_refusal(exc: Exception, manifest: Manifest, part: str
                         ) -> SafeModelError | None:
    # Under changed package versions the environment is the cause (issue 20).
    return environment_refusal(exc, bundle=f"{manifest.name}=={manifest.version}",
                               environment=manifest.environment, part=part)


def _raise_unpickle_error(exc: Exception) -> NoReturn:
    if isinstance(exc, ModuleNotFoundError):
        raise BundleFormatError(
            f"The estimator needs module {exc.name!r}, which is not installed here. "
            "Install it (see `safemodel inspect` for the recorded environment).",
            member=ESTIMATOR, expected=exc.name,
        ) from None
    raise BundleFormatError(
        f"The estimator could not be unpickled ({type(exc).__name__}: {exc}). Its "
        "bytes match the manifest, so this environment lacks what it needs; compare "
        "with `safemodel inspect`.", member=ESTIMATOR,
    ) from None


def recorded_fingerprint(path: str | PathLike[str]) -> str:
    """The fingerprint the manifest records, after the structural checks only.

    Cheap (no member is read); for callers that load the bundle next, since loading
    checks every member against the manifest.
    """
    return _read(path, "recorded_fingerprint", members=False).manifest.fingerprint


def check_integrity(path: str | PathLike[str]) -> None:
    """Check every member's size and hash (the estimator's too) without unpickling."""
    _read(path, "check_integrity")


def inspect(path: str | PathLike[str]) -> BundleInfo:
    """Read a bundle's manifest and readable parts; never unpickles anything.

    Member hashes of everything but the estimator pickle are checked (so a bundle with
    a damaged estimator can still be described). ``pickle_references`` are read from
    the pickle's opcodes, never copied from the manifest, which the author of an
    unsigned bundle controls; ``"<unresolved>"`` stands for a pickle too malformed to
    read.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    BundleInfo

    Raises
    ------
    InvalidArgument
        ``path`` is not a path.
    BundleFormatError, IntegrityError
        As :func:`load`, but for the estimator's hash.
    """
    return _describe(_read(path, "inspect", unverified=(ESTIMATOR,)), path)


def inspect_bytes(data: bytes, path: str | PathLike[str]) -> BundleInfo:
    """:func:`inspect` of ``data``, the bytes of ``path`` as the caller read them (to
    describe the very bytes it checked a sidecar signature over)."""
    return _describe(_parse(data, repr(str(path)), {ESTIMATOR}), path)


def _describe(archive: _Archive, path: str | PathLike[str]) -> BundleInfo:
    m = archive.manifest
    try:
        decision = decide_trust(archive.manifest_bytes, archive.signature, source=str(path))
        signer, trusted, reason = decision.signer, decision.trusted, decision.reason
    except UntrustedBundleError as exc:
        signer, trusted = exc.signer, False
        reason = (f"{'unsigned' if exc.signer == 'unsigned' else 'signed by ' + exc.signer[:16]}"
                  ", which no key trusted here verifies: load refuses it unless trust=True")
    except SafeModelError as exc:  # a signature that does not verify, an unusable key
        signer, trusted, reason = "invalid signature", False, str(exc)
    parts = layout.describe(archive.members)
    return BundleInfo(
        path=str(path),
        name=m.name,
        version=parse_version(m.version),
        format_version=m.format_version,
        fingerprint=m.fingerprint,
        environment=m.environment,
        created=m.created,
        methods=m.methods,
        pickle_references=_references(archive.members[ESTIMATOR]),
        signed=archive.signature is not None,
        signer=signer,
        trusted=trusted,
        trust_reason=reason,
        members=m.members,
        contract=parts["contract"],
        policy=parts["policy"],
        golden=parts["golden"],
        metadata=parts["metadata"],
    )


def _references(estimator_bytes: bytes) -> tuple[str, ...]:
    try:
        return tuple(pickle_references(estimator_bytes))
    except IntegrityError:
        return (UNRESOLVED,)
