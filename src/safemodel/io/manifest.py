"""The archive manifest: the validated form of ``manifest.json``.

This module imports neither pandas nor scikit-learn, so reading a bundle's manifest
(``safemodel.inspect``) is cheap and never runs a bundle's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from safemodel.errors import BundleFormatError
from safemodel.io.formats import FORMAT_VERSION, check_readable

__all__ = ["BundleInfo", "Manifest", "MemberInfo"]


@dataclass(frozen=True)
class MemberInfo:
    """One content member's SHA-256 (hex) and size in bytes, as the manifest lists it."""

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
        check_readable(fv)
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
    #: The signer's key id (verified when ``trusted``), ``"unsigned"`` or ``"hmac-sha256"``.
    signer: str = "unsigned"
    #: A key trusted here (own key, trust store, environment) verified the signature.
    trusted: bool = False
    #: One sentence: who signed and why it is (not) trusted here.
    trust_reason: str = ""
    contract: Mapping[str, Any] | None = None
    policy: Mapping[str, Any] | None = None
    golden: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        return (f"<BundleInfo {self.name}=={self.version} format={self.format_version} "
                f"methods={list(self.methods)} signed={self.signed} "
                f"fingerprint={self.fingerprint[:12]}\u2026>")

    def _repr_html_(self) -> str:
        from safemodel import _html

        packages = ", ".join(f"{k} {v}" for k, v in self.environment.items() if v)
        return _html.box(f"BundleInfo {self.name}=={self.version}", _html.pairs([
            ("path", self.path), ("created", self.created),
            ("format version", self.format_version), ("methods", ", ".join(self.methods)),
            ("signed", self.signed), ("fingerprint", self.fingerprint),
            ("environment", packages),
            ("pickle references", f"{len(self.pickle_references)} global(s)"),
            ("members", ", ".join(self.members)),
        ]))

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
            "signer": self.signer,
            "trusted": self.trusted,
            "trust_reason": self.trust_reason,
            "environment": dict(self.environment),
            "pickle_references": list(self.pickle_references),
            "members": {k: {"sha256": v.sha256, "size": v.size}
                        for k, v in self.members.items()},
            "contract": self.contract,
            "policy": self.policy,
            "golden": self.golden,
            "metadata": self.metadata,
        }
