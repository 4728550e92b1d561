"""The archive manifest: the validated form of ``manifest.json``.

This module imports neither pandas nor scikit-learn, so reading a bundle's manifest
(``safemodel.inspect``) is cheap and never runs a bundle's code.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from safemodel.errors import BundleFormatError

__all__ = [
    "FORMAT_VERSION",
    "CORE_PACKAGES",
    "BundleInfo",
    "Manifest",
    "MemberInfo",
    "capture_environment",
    "environment_diff",
    "fingerprint_of",
]

FORMAT_VERSION = 1
"""The archive format this safemodel writes (and the newest it reads)."""

CORE_PACKAGES = (
    "scikit-learn", "numpy", "scipy", "pandas", "pandera", "cloudpickle", "safemodel",
)

# Top-level import names whose distribution name differs.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


@functools.cache
def _version_of(distribution: str) -> str | None:
    """Installed version, read once per process: importlib.metadata parses the package's
    metadata file on every call (about 1 ms), and a package upgraded on disk while the
    process runs is not the one it imported anyway."""
    try:
        return importlib.metadata.version(distribution)
    except (importlib.metadata.PackageNotFoundError, ValueError):  # ValueError: "" name
        return None


@functools.cache
def _module_owners() -> Mapping[str, list[str]]:
    """Top-level module -> distributions; slow (scans every installed package), so once."""
    try:
        return importlib.metadata.packages_distributions()
    except Exception:  # pragma: no cover - broken metadata must not stop a save
        return {}


def capture_environment(modules: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of Python, the core packages and the distributions of ``modules``.

    ``modules`` are top-level module names the estimator pickle references.
    """
    env: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": sys.platform,
    }
    for dist in CORE_PACKAGES:
        env[dist] = _version_of(dist)
    owners = _module_owners()
    for module in sorted(set(modules)):
        if module in ("builtins", "__main__", "copyreg", "_codecs"):
            continue
        dists = owners.get(module) or [_DISTRIBUTIONS.get(module, module)]
        for dist in dists:
            if dist not in env:
                version = _version_of(dist)
                if version is not None:
                    env[dist] = version
    return env


def environment_diff(
    recorded: Mapping[str, Any], running: Mapping[str, Any] | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """``name -> (recorded, running)`` for every entry whose value differs."""
    if running is None:
        here = {"python": platform.python_version(), "platform": sys.platform}
        running = {k: here[k] if k in here else _version_of(k) for k in recorded}
    return {
        k: (recorded.get(k), running.get(k))
        for k in sorted(set(recorded) | set(running))
        if recorded.get(k) != running.get(k)
    }


def fingerprint_of(members: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``member name -> sha256`` pairs of a bundle's content."""
    h = hashlib.sha256()
    for name in sorted(members):
        h.update(name.encode())
        h.update(b"\0")
        h.update(members[name].encode())
        h.update(b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class MemberInfo:
    sha256: str
    size: int


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise BundleFormatError(
            f"manifest.json has no {key!r} field; the file was not written by safemodel "
            "or is damaged.", member="manifest.json", expected=key,
        )
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BundleFormatError(
            f"manifest.json field {key!r} must be {names}; found {type(value).__name__} "
            f"{value!r:.60}.", member="manifest.json", expected=names,
            found=type(value).__name__,
        )
    return value


@dataclass(frozen=True)
class Manifest:
    """Validated ``manifest.json``.

    ``members`` maps every other archive member (except ``signature.json``) to its
    SHA-256 and size.
    """

    name: str
    version: str
    created: str
    methods: tuple[str, ...]
    environment: Mapping[str, str | None]
    members: Mapping[str, MemberInfo]
    fingerprint: str
    pickle_references: tuple[str, ...] = ()
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "fingerprint": self.fingerprint,
            "methods": list(self.methods),
            "environment": dict(self.environment),
            "pickle_references": list(self.pickle_references),
            "members": {k: {"sha256": v.sha256, "size": v.size}
                        for k, v in sorted(self.members.items())},
            **dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        """Validate the raw JSON (format version first) and build the manifest."""
        if not isinstance(data, Mapping):
            raise BundleFormatError(
                f"manifest.json must hold a JSON object; found {type(data).__name__}.",
                member="manifest.json",
            )
        fv = _require(data, "format_version", int)
        if fv > FORMAT_VERSION:
            raise BundleFormatError(
                f"This bundle uses archive format {fv}, newer than the {FORMAT_VERSION} this "
                "safemodel reads. Upgrade safemodel (pip install -U safemodel) to load it.",
                member="manifest.json", expected=FORMAT_VERSION, found=fv,
            )
        if fv < 1:
            raise BundleFormatError(
                f"Unknown archive format version {fv}.", member="manifest.json", found=fv
            )
        raw_members = _require(data, "members", dict)
        members = {}
        for name, info in raw_members.items():
            if not isinstance(info, Mapping):
                raise BundleFormatError(f"manifest entry for {name!r} must be an object.",
                                        member="manifest.json")
            sha = _require(info, "sha256", str)
            size = _require(info, "size", int)
            if len(sha) != 64 or size < 0:
                raise BundleFormatError(f"manifest entry for {name!r} is malformed.",
                                        member="manifest.json")
            members[str(name)] = MemberInfo(sha, size)
        env = _require(data, "environment", dict)
        if not all(isinstance(v, str | None) for v in env.values()):
            raise BundleFormatError("manifest environment values must be strings.",
                                    member="manifest.json")
        methods = _require(data, "methods", list)
        refs = data.get("pickle_references", [])
        if not isinstance(refs, list) or not all(isinstance(m, str) for m in [*methods, *refs]):
            raise BundleFormatError("manifest methods and pickle_references must be lists "
                                    "of strings.", member="manifest.json")
        known = {"format_version", "name", "version", "created", "fingerprint", "methods",
                 "environment", "pickle_references", "members"}
        return cls(
            name=_require(data, "name", str),
            version=_require(data, "version", str),
            created=_require(data, "created", str),
            methods=tuple(methods),
            environment=dict(env),
            members=members,
            fingerprint=_require(data, "fingerprint", str),
            pickle_references=tuple(refs),
            format_version=fv,
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class BundleInfo:
    """What :func:`safemodel.inspect` reports; read from the manifest, nothing unpickled."""

    path: str
    name: str
    version: Version
    format_version: int
    fingerprint: str
    environment: Mapping[str, str | None]
    created: str
    methods: tuple[str, ...]
    pickle_references: tuple[str, ...]
    signed: bool
    members: Mapping[str, MemberInfo]
    contract: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] | None = None
    golden: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "name": self.name,
            "version": str(self.version),
            "format_version": self.format_version,
            "fingerprint": self.fingerprint,
            "created": self.created,
            "methods": list(self.methods),
            "signed": self.signed,
            "environment": dict(self.environment),
            "pickle_references": list(self.pickle_references),
            "members": {k: {"sha256": v.sha256, "size": v.size}
                        for k, v in self.members.items()},
            "contract": self.contract,
            "policy": self.policy,
            "golden": self.golden,
            "metadata": self.metadata,
        }


def parse_version(version: Any) -> Version:
    """A :class:`packaging.version.Version`, or a clear error."""
    if isinstance(version, Version):
        return version
    try:
        return Version(str(version))
    except InvalidVersion:
        from safemodel.errors import SafeModelError

        raise SafeModelError(
            f"Bundle version must be a PEP 440 version such as '1.2.0' or '2.0rc1'; "
            f"got {version!r}."
        ) from None
