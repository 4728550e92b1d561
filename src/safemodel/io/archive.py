"""Reading and writing bundle files (the only module that touches them).

A bundle is one zip file. ``manifest.json`` comes first and lists the SHA-256 and size
of every other member. Loading checks, in order: that the file is a zip with safe,
unique member names; the manifest and its format version; every member's size and
hash; the signature (when a key is given); the pickle's references (when an
allow-list is given); and only then unpickles the estimator and re-runs the golden
inputs. Nothing is unpickled before its bytes are verified. See ``docs/format.md``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from typing import Any, Literal, NoReturn

from safemodel.core.bundle import ModelBundle
from safemodel.core.contract import Contract
from safemodel.core.golden import Golden
from safemodel.core.policy import Policy
from safemodel.errors import BundleFormatError, IntegrityError, SafeModelError
from safemodel.io import codec as _codec
from safemodel.io.audit import UNRESOLVED, disallowed_references, pickle_references
from safemodel.io.manifest import (
    BundleInfo,
    Manifest,
    MemberInfo,
    environment_diff,
    fingerprint_of,
    parse_version,
)
from safemodel.io.signing import SIGNATURE_MEMBER, resolve_key, sign_manifest, verify_manifest
from safemodel.io.upgrade import environment_refusal, verification_refusal

__all__ = ["inspect", "load", "save"]

logger = logging.getLogger("safemodel")

MANIFEST = "manifest.json"
SIGNATURE = SIGNATURE_MEMBER
ESTIMATOR = "estimator.pkl"
REQUIRED = ("bundle.json", ESTIMATOR, "contract.json", "policy.json", "golden/inputs.json",
            "golden/golden.json", "metadata.json")
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_MEMBERS = 256
# A zip header may declare anything; we never read more than the manifest declares,
# and never trust a declaration above this.
MAX_MEMBER_BYTES = 8 * 2**30

Environment = Literal["warn", "strict", "ignore"]
_MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas")


# ------------------------------------------------------------------------ save


def save(
    bundle: ModelBundle,
    path: str | PathLike[str],
    *,
    overwrite: bool = False,
    signing_key: Any = None,
) -> None:
    """Write ``bundle`` to ``path`` atomically (see :meth:`ModelBundle.save`)."""
    target = Path(path)
    if target.is_dir():
        raise SafeModelError(f"{str(target)!r} is a folder; give a file path to save to.")
    if target.exists() and not overwrite:
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

    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise SafeModelError(f"Folder {str(folder)!r} does not exist; create it first.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w") as zf:
                _write(zf, MANIFEST, manifest_bytes)
                if signature is not None:
                    _write(zf, SIGNATURE, signature)
                for name, data in members.items():
                    _write(zf, name, data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


# Every header field is fixed, so the reader can require canonical headers: a changed
# byte anywhere in the file is then either in a hashed member or a refused header.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_CENTRAL_DIR = "<4s4B4HL2L5H2L"  # a central directory record (APPNOTE 4.3.12), as zipfile
_ATTR = 0o644 << 16


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    # Stored, not deflated: the hashed bytes are then the file's bytes (deflate streams
    # have padding bits a flip can change without changing the content), and loading
    # skips decompression. The JSON members are a few kilobytes.
    info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _ATTR
    zf.writestr(info, data)


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished temporary file into place, never exposing a partial file."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # atomic and refuses to clobber a file created meanwhile
    except FileExistsError:
        raise SafeModelError(
            f"{str(target)!r} already exists; pass overwrite=True to replace it."
        ) from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise SafeModelError(
                f"{str(target)!r} already exists; pass overwrite=True to replace it."
            ) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------ read


@dataclass(frozen=True)
class _Archive:
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    members: dict[str, bytes]


def _open(path: str | PathLike[str]) -> zipfile.ZipFile:
    p = Path(path)
    if not p.exists():
        raise BundleFormatError(f"No bundle at {str(p)!r}: the file does not exist.")
    if p.is_dir():
        raise BundleFormatError(f"{str(p)!r} is a folder, not a bundle file.")
    try:
        return zipfile.ZipFile(p)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise BundleFormatError(
            f"{str(p)!r} is not a safemodel bundle: it is not a readable zip archive "
            f"({type(exc).__name__}: {exc}). It may be truncated or another kind of file; "
            "save it again with ModelBundle.save.", found=type(exc).__name__,
        ) from None


def _check_names(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise BundleFormatError(f"The archive has {len(infos)} members; a bundle has at "
                                f"most {MAX_MEMBERS}.", found=len(infos))
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
            raise BundleFormatError(f"Unsafe member name {name!r} in the archive: bundles "
                                    "never hold absolute or parent-relative paths.",
                                    member=name)
        if name in seen:
            raise BundleFormatError(f"Member {name!r} appears twice in the archive; the "
                                    "file was tampered with or badly written.", member=name)
        seen.add(name)


def _check_canonical(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> None:
    """Require the headers safemodel writes; zipfile itself ignores several fields."""
    if zf.comment:
        raise BundleFormatError("The archive has a comment; bundles never do.", found="comment")
    fp = zf.fp
    assert fp is not None
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    start = zf.start_dir
    end_record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(infos), len(infos),
                             size - 22 - start, start, 0)
    fp.seek(size - 22)
    if fp.read(22) != end_record:
        raise IntegrityError("The zip end record is not the one safemodel writes: the file "
                             "was modified after saving.", member="(end record)")
    records = []
    for info in infos:
        y, mo, d, h, mi, s = info.date_time
        name = info.filename.encode()
        records.append(struct.pack(
            _CENTRAL_DIR, b"PK\x01\x02", info.create_version,
            info.create_system, info.extract_version, info.reserved, info.flag_bits,
            info.compress_type, h << 11 | mi << 5 | s // 2, (y - 1980) << 9 | mo << 5 | d,
            info.CRC, info.compress_size, info.file_size, len(name), 0, 0, 0,
            info.internal_attr, info.external_attr, info.header_offset,
        ) + name)
    fp.seek(start)
    if fp.read(size - 22 - start) != b"".join(records):
        raise IntegrityError("The zip central directory is not the one safemodel writes: "
                             "the file was modified after saving.", member="(directory)")
    # Members lie back to back from byte 0 up to the central directory, so a declared
    # size can never exceed the file (zipfile allocates a read buffer of the declared
    # size before finding out) and no byte lies outside a header or a hashed member.
    offset = 0
    for info in infos:
        if info.header_offset != offset:
            raise IntegrityError(
                f"Member {info.filename!r} starts at byte {info.header_offset}, not at byte "
                f"{offset} where the one before it ends: a declared size is false or bytes "
                "were added; the file was modified after saving.",
                member=info.filename, expected=offset, found=info.header_offset,
            )
        canonical = (
            info.date_time == _DATE_TIME and info.external_attr == _ATTR
            and info.internal_attr == 0 and info.flag_bits == 0 and not info.extra
            and not info.comment and info.volume == 0
            and info.compress_type == zipfile.ZIP_STORED
            and info.compress_size == info.file_size
            and info.create_system == 3 and info.create_version == zipfile.DEFAULT_VERSION
            and info.extract_version == zipfile.DEFAULT_VERSION
        )
        if canonical:
            header = info.FileHeader()
            fp.seek(info.header_offset)
            canonical = fp.read(len(header)) == header
        if not canonical:
            raise IntegrityError(
                f"The zip headers of member {info.filename!r} are not the ones safemodel "
                "writes: the file was modified after saving or written by another tool.",
                member=info.filename,
            )
        offset += len(header) + info.compress_size
    if offset != start:
        raise IntegrityError(
            f"The zip members end at byte {offset}, but the central directory starts at "
            f"byte {start}: a declared size is false or bytes were added; the file was "
            "modified after saving.", member="(directory)", expected=start, found=offset,
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read at most ``limit`` bytes; more means the member is not what was declared."""
    if info.file_size > limit:
        raise IntegrityError(
            f"Member {info.filename!r} declares {info.file_size} bytes; expected at most "
            f"{limit}.", member=info.filename, expected=limit, found=info.file_size,
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        raise IntegrityError(
            f"Member {info.filename!r} cannot be read ({type(exc).__name__}: {exc}); the "
            "file is damaged.", member=info.filename,
        ) from None
    except Exception as exc:  # zlib.error and friends
        raise IntegrityError(
            f"Member {info.filename!r} cannot be decompressed ({type(exc).__name__}); the "
            "file is damaged.", member=info.filename,
        ) from None
    if len(data) > limit:
        raise IntegrityError(f"Member {info.filename!r} is larger than declared.",
                             member=info.filename, expected=limit)
    return data


def _read(
    path: str | PathLike[str], *, unverified: Iterable[str] = (), members: bool = True
) -> _Archive:
    try:
        return _read_checked(path, set(unverified), members)
    except SafeModelError:
        raise
    except Exception as exc:  # zipfile raises many kinds on crafted files: none escape raw
        raise BundleFormatError(
            f"{str(path)!r} is not a readable safemodel bundle ({type(exc).__name__}: {exc}).",
            found=type(exc).__name__,
        ) from None


def _read_checked(path: str | PathLike[str], unverified: set[str], read_members: bool
                  ) -> _Archive:
    with _open(path) as zf:
        infos = zf.infolist()
        _check_names(infos)
        _check_canonical(zf, infos)
        by_name = {i.filename: i for i in infos}
        if MANIFEST not in by_name:
            raise BundleFormatError(
                f"{str(path)!r} is a zip file but not a safemodel bundle: it has no "
                f"{MANIFEST}.", member=MANIFEST,
            )
        manifest_bytes = _read_member(zf, by_name[MANIFEST], MAX_MANIFEST_BYTES)
        try:
            raw = json.loads(manifest_bytes)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleFormatError(f"{MANIFEST} is not valid JSON ({exc}).",
                                    member=MANIFEST) from None
        manifest = Manifest.from_dict(raw)
        _check_identity(manifest)
        declared = set(manifest.members)
        present = set(by_name) - {MANIFEST, SIGNATURE}
        if present - declared:
            extra = sorted(present - declared)
            raise IntegrityError(f"The archive holds members the manifest does not list: "
                                 f"{extra}; it was modified after saving.",
                                 member=extra[0], found=extra)
        absent = sorted(declared - present)
        if absent:
            raise IntegrityError(f"Members listed in the manifest are missing: {absent}.",
                                 member=absent[0], expected=absent)
        missing_required = [m for m in REQUIRED if m not in declared]
        if missing_required:
            raise BundleFormatError(f"The bundle lacks required members {missing_required}.",
                                    member=missing_required[0])
        if not read_members:
            return _Archive(manifest, manifest_bytes, None, {})
        members: dict[str, bytes] = {}
        for name, info in manifest.members.items():
            data = _read_member(zf, by_name[name], min(info.size, MAX_MEMBER_BYTES))
            if name in unverified:
                members[name] = data
                continue
            digest = hashlib.sha256(data).hexdigest()
            if len(data) != info.size or digest != info.sha256:
                raise IntegrityError(
                    f"Member {name!r} does not match its recorded SHA-256: the bundle was "
                    "modified or damaged after saving. Do not use it; rebuild or re-download "
                    "it.", member=name, expected=info.sha256, found=digest,
                )
            members[name] = data
        fp = fingerprint_of({n: i.sha256 for n, i in manifest.members.items()})
        if fp != manifest.fingerprint:
            raise IntegrityError("The manifest's fingerprint does not match its members.",
                                 member=MANIFEST, expected=manifest.fingerprint, found=fp)
        signature = (_read_member(zf, by_name[SIGNATURE], 64 * 2**10)
                     if SIGNATURE in by_name else None)
    return _Archive(manifest, manifest_bytes, signature, members)


def _json_member(archive: _Archive, name: str) -> Any:
    try:
        return json.loads(archive.members[name])
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleFormatError(f"Member {name!r} is not valid JSON ({exc}).",
                                member=name) from None


def _golden(archive: _Archive) -> Golden:
    inputs = _codec.decode_frame(_json_member(archive, "golden/inputs.json"))
    meta = _json_member(archive, "golden/golden.json")
    if not isinstance(meta, dict):
        raise BundleFormatError("golden/golden.json must hold an object.",
                                member="golden/golden.json")
    outputs = {}
    for name, data in archive.members.items():
        if name.startswith("golden/outputs/"):
            stem, dot, suffix = name.rpartition(".")
            method = stem.rsplit("/", 1)[-1]
            outputs[method] = _codec.decode_array(dot + suffix, data, name)
    return Golden.from_parts(meta, inputs, outputs)


def _mapping(value: Any, member: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BundleFormatError(f"Member {member!r} must hold a JSON object.", member=member)
    return value


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
        Refuse, before unpickling, a pickle that references any global outside these
        module prefixes (see ``safemodel.DEFAULT_ALLOWED_MODULES``).
    environment : {"warn", "strict", "ignore"}, default "warn"
        ``"warn"``: log one INFO line when package versions differ but outputs still
        reproduce. ``"strict"``: refuse any major/minor difference in scikit-learn,
        numpy, scipy, pandas. ``"ignore"``: say nothing.

    Returns
    -------
    ModelBundle

    Raises
    ------
    BundleFormatError
        Not a bundle, damaged layout, or a newer format.
    IntegrityError
        Hash, signature or pickle-audit failure.
    GoldenMismatchError
        The estimator's outputs no longer reproduce.
    """
    if environment not in ("warn", "strict", "ignore"):
        raise SafeModelError(f"The 'environment' parameter of load must be one of "
                             f"['warn', 'strict', 'ignore']; got {environment!r} instead.")
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
    process, such as the store reloading an evicted bundle.
    """
    archive = _read(path)
    manifest = archive.manifest
    key = resolve_key(signing_key)
    if key is not None:
        verify_manifest(archive.manifest_bytes, archive.signature, key)
    estimator_bytes = archive.members[ESTIMATOR]
    if allowed_modules is not None:
        try:
            refs = pickle_references(estimator_bytes)
        except IntegrityError as exc:
            raise IntegrityError(str(exc), member=ESTIMATOR) from None
        bad = disallowed_references(refs, allowed_modules)
        if bad:
            raise IntegrityError(
                f"The estimator pickle references {bad}, outside the allowed modules; it "
                "was not unpickled. If you trust this bundle, add those modules to "
                "allowed_modules.", member=ESTIMATOR, found=bad,
            )
    if environment == "strict":
        _check_environment_strict(manifest.environment)
    contract = Contract.from_dict(_mapping(_json_member(archive, "contract.json"),
                                           "contract.json"))
    policy = Policy.from_dict(_mapping(_json_member(archive, "policy.json"), "policy.json"))
    try:
        golden = _golden(archive)
    except ImportError as exc:  # e.g. pandas' pyarrow string storage, absent here
        raise (_environment_refusal(exc, manifest, "golden inputs")
               or BundleFormatError(f"Reading the golden inputs needs what this environment "
                                    f"lacks ({exc}).", member="golden/inputs.json")) from exc
    metadata = _mapping(_json_member(archive, "metadata.json"), "metadata.json")
    profile = None
    if "profile.json" in archive.members:
        from safemodel.monitoring.profile import Profile

        profile = Profile.from_dict(_json_member(archive, "profile.json"))
    estimator = _unpickle(estimator_bytes, manifest)
    return ModelBundle(
        estimator, contract, policy, golden,
        name=manifest.name, version=manifest.version, metadata=metadata, profile=profile,
        _environment=manifest.environment, _estimator_bytes=estimator_bytes,
        _fingerprint=manifest.fingerprint,
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


def _check_identity(manifest: Manifest) -> None:
    # ModelBundle refuses these too, but only after unpickling and with a bare
    # SafeModelError; a manifest that carries them is a malformed file.
    name = manifest.name
    if not name.strip() or "/" in name or "\\" in name:
        raise BundleFormatError(f"manifest.json: the bundle name {name!r} is empty or has "
                                "slashes.", member=MANIFEST, found=name)
    try:
        parse_version(manifest.version)
    except SafeModelError as exc:
        raise BundleFormatError(f"manifest.json: {exc}", member=MANIFEST,
                                found=manifest.version) from None


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
    return _read(path, members=False).manifest.fingerprint


def check_integrity(path: str | PathLike[str]) -> None:
    """Check every member's size and hash (the estimator's too) without unpickling."""
    _read(path)


def inspect(path: str | PathLike[str]) -> BundleInfo:
    """Read a bundle's manifest and readable parts; never unpickles anything.

    Member hashes of everything but the estimator pickle are checked (so a bundle with
    a damaged estimator can still be described). ``pickle_references`` are read from
    the pickle's opcodes, never copied from the manifest, which the author of an
    unsigned bundle controls; ``"<unresolved>"`` stands for a pickle too malformed to
    read.

    Returns
    -------
    BundleInfo
    """
    archive = _read(path, unverified=(ESTIMATOR,))
    m = archive.manifest
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
        contract=_mapping(_json_member(archive, "contract.json"), "contract.json"),
        policy=_mapping(_json_member(archive, "policy.json"), "policy.json"),
        golden=_golden_summary(archive),
        metadata=_mapping(_json_member(archive, "metadata.json"), "metadata.json"),
    )


def _references(estimator_bytes: bytes) -> tuple[str, ...]:
    try:
        return tuple(pickle_references(estimator_bytes))
    except IntegrityError:
        return (UNRESOLVED,)


def _golden_summary(archive: _Archive) -> dict[str, Any]:
    meta = _mapping(_json_member(archive, "golden/golden.json"), "golden/golden.json")
    inputs = _mapping(_json_member(archive, "golden/inputs.json"), "golden/inputs.json")
    return {**meta, "rows": inputs.get("rows")}

