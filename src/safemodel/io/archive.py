"""Loading, saving and inspecting bundle files: the entry points and their check order.

A bundle is one zip file (:mod:`safemodel.io.zipbytes`) whose first member,
``manifest.json`` (:mod:`safemodel.io.manifest`), lists the SHA-256 and size of every
other member (:mod:`safemodel.io.layout`). Loading checks, in order: that the file is
a canonical zip with safe, unique member names; the manifest and its format version;
every member's size and hash; the signature (when a key is given); the pickle's
references (when an allow-list is given); every readable part; and only then unpickles
the estimator and re-runs the golden inputs. Nothing is unpickled before its bytes are
verified. See ``docs/format.md``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NoReturn

from safemodel._values import bundle_name_problem
from safemodel._versions import parse_version
from safemodel.core.bundle import ModelBundle, register_writer
from safemodel.core.environment import environment_diff
from safemodel.core.fingerprint import fingerprint_of
from safemodel.core.references import UNRESOLVED, pickle_references
from safemodel.errors import (
    BundleFormatError,
    IntegrityError,
    InvalidArgument,
    SafeModelError,
)
from safemodel.io import layout
from safemodel.io.audit import disallowed_references, refusal_advice
from safemodel.io.files import atomic_file
from safemodel.io.formats import FORMAT_VERSION, migrate
from safemodel.io.layout import ESTIMATOR, MANIFEST, REQUIRED, SIGNATURE
from safemodel.io.manifest import BundleInfo, Manifest, MemberInfo
from safemodel.io.signing import resolve_key, sign_manifest, verify_manifest
from safemodel.io.upgrade import environment_refusal, verification_refusal
from safemodel.io.zipbytes import DAMAGED_NEXT_STEP, ZipReader, ZipWriter

__all__ = ["Environment", "check_integrity", "inspect", "load", "load_unverified",
           "recorded_fingerprint", "save"]

logger = logging.getLogger("safemodel")

MAX_MANIFEST_BYTES = 16 * 2**20
MAX_SIGNATURE_BYTES = 64 * 2**10

Environment = Literal["warn", "strict", "ignore"]
_ENVIRONMENTS = ("warn", "strict", "ignore")
_MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas")


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
) -> None:
    """Write ``bundle`` to ``path`` atomically (see :meth:`ModelBundle.save`)."""
    target = _path(path, "save")
    _flag(overwrite, "save", "overwrite")
    try:
        is_dir, exists = target.is_dir(), target.exists()
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
    key = resolve_key(signing_key)
    signature = sign_manifest(manifest_bytes, key) if key is not None else None

    if not folder_exists:
        raise SafeModelError(f"Folder {str(folder)!r} does not exist; create it first.")
    try:
        with atomic_file(target, overwrite=overwrite) as fh:
            writer = ZipWriter(fh)
            writer.add(MANIFEST, manifest_bytes)
            if signature is not None:
                writer.add(SIGNATURE, signature)
            for name, data in members.items():
                writer.add(name, data)
            writer.finish()
    except FileExistsError:
        raise SafeModelError(
            f"{str(target)!r} already exists; pass overwrite=True to replace it."
        ) from None


class _Writer:
    """What :class:`ModelBundle` needs from this layer (see ``register_writer``)."""

    def members(self, bundle: ModelBundle) -> dict[str, bytes]:
        return layout.encode(bundle)

    def save(self, bundle: ModelBundle, path: str | PathLike[str], *, overwrite: bool,
             signing_key: Any) -> None:
        save(bundle, path, overwrite=overwrite, signing_key=signing_key)


register_writer(_Writer())


# ------------------------------------------------------------------------ read


@dataclass(frozen=True)
class _Archive:
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    members: dict[str, bytes]


def _read(
    path: Any, function: str, *, unverified: Iterable[str] = (), members: bool = True
) -> _Archive:
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
        with open(target, "rb") as fh:
            return _read_checked(ZipReader(fh, repr(str(target))), set(unverified), members)
    except OSError as exc:
        raise BundleFormatError(
            f"{str(target)!r} cannot be read ({type(exc).__name__}: {exc}).",
            found=type(exc).__name__,
        ) from None


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
    allowed_modules: Iterable[str] | None = None,
    environment: Environment = "warn",
) -> ModelBundle:
    """Load a bundle, checking everything before and after unpickling.

    Parameters
    ----------
    path : str or path-like
    verify : bool, default True
        Re-run the golden inputs and refuse the bundle if outputs changed. ``False``
        skips this (logged as a warning).
    signing_key : str, bytes or Ed25519 key, optional
        Require a valid signature (defaults to ``SAFEMODEL_SIGNING_KEY``). An unsigned
        bundle or a wrong signature is refused before anything is unpickled.
    allowed_modules : iterable of str, optional
        Refuse, before unpickling, a pickle that references any global these entries
        do not permit: an exact global name, a module (its classes only), or
        ``"package.*"`` (everything in it). Start from
        ``safemodel.DEFAULT_ALLOWED_MODULES``; ``safemodel.NOTEBOOK_ALLOWED_MODULES``
        adds what code pickled by value (defined in a notebook) needs.
    environment : {"warn", "strict", "ignore"}, default "warn"
        ``"warn"``: log one INFO line when package versions differ but outputs still
        reproduce. ``"strict"``: refuse any major/minor difference in scikit-learn,
        numpy, scipy, pandas. ``"ignore"``: say nothing.

    Returns
    -------
    ModelBundle

    Raises
    ------
    InvalidArgument
        A parameter of the wrong type or value.
    BundleFormatError
        Not a bundle, damaged layout, or a newer format.
    IntegrityError
        Hash, signature or pickle-audit failure.
    GoldenMismatchError
        The estimator's outputs no longer reproduce.
    """
    _flag(verify, "load", "verify")
    bundle = load_unverified(path, signing_key=signing_key,
                             allowed_modules=allowed_modules, environment=environment)
    if verify:
        report = bundle.verify()
        if not report.ok:
            raise verification_refusal(report, bundle=f"{bundle.name}=={bundle.version}",
                                       environment=bundle.environment)
        if report.environment_diff and environment == "warn":
            logger.info("%s==%s: golden outputs reproduce although package versions differ "
                        "from build time: %s", bundle.name, bundle.version,
                        ", ".join(f"{k} {a} -> {b}"
                                  for k, (a, b) in report.environment_diff.items()))
    else:
        logger.warning("%s==%s loaded with verify=False: golden outputs were not checked.",
                       bundle.name, bundle.version)
    return bundle


def load_unverified(
    path: str | PathLike[str],
    *,
    signing_key: Any = None,
    allowed_modules: Iterable[str] | None = None,
    environment: Environment = "warn",
) -> ModelBundle:
    """Every check of :func:`load` but the golden re-run, silently.

    For callers that verified this very content (same fingerprint) earlier in the
    process, such as the store reloading an evicted bundle, and for callers that
    verify the golden outputs themselves (``safemodel.testing``).
    """
    if environment not in _ENVIRONMENTS:
        raise InvalidArgument.of("load", "environment", f"one of {list(_ENVIRONMENTS)}",
                                 environment)
    allowed = None if allowed_modules is None else _names(allowed_modules)
    archive = _read(path, "load")
    key = resolve_key(signing_key)
    if key is not None:
        verify_manifest(archive.manifest_bytes, archive.signature, key)
    if allowed is not None:
        _audit(archive.members[ESTIMATOR], allowed)
    if environment == "strict":
        _check_environment_strict(archive.manifest.environment)
    try:
        return layout.decode(archive.manifest, archive.members,
                             lambda data: _unpickle(data, archive.manifest),
                             _estimator_source(path, archive.manifest))
    except ImportError as exc:  # e.g. pandas' pyarrow string storage, absent here
        raise (_environment_refusal(exc, archive.manifest, "golden inputs")
               or BundleFormatError(f"Reading the golden inputs needs what this environment "
                                    f"lacks ({exc}).", member="golden/inputs.json")) from exc


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


def _unpickle(data: bytes, manifest: Manifest) -> Any:
    import cloudpickle

    try:
        return cloudpickle.loads(data)
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


def _check_environment_strict(recorded: Mapping[str, str | None]) -> None:
    from packaging.version import InvalidVersion, Version

    diff = environment_diff({k: recorded.get(k) for k in _MODEL_PACKAGES if k in recorded})
    bad = {}
    for name, (before, after) in diff.items():
        try:
            a, b = Version(before or ""), Version(after or "")
            if a.release[:2] == b.release[:2]:
                continue
        except InvalidVersion:
            pass
        bad[name] = (before, after)
    if bad:
        raise IntegrityError(
            "environment='strict': package versions differ from build time in major or "
            "minor version: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in bad.items())
            + ". Install the recorded versions or load with environment='warn'.",
            expected={k: a for k, (a, _) in bad.items()},
            found={k: b for k, (_, b) in bad.items()},
        )


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
    archive = _read(path, "inspect", unverified=(ESTIMATOR,))
    m = archive.manifest
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
