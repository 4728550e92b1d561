"""The members of a bundle archive: what each holds, written and read here only.

A bundle's content is a fixed set of members (``docs/format.md``): ``bundle.json``,
``estimator.pkl``, ``contract.json``, ``policy.json``, the golden inputs, meta and
outputs, ``metadata.json`` and, when the bundle has one, ``profile.json`` (with
``profile-moments.json`` when the profile holds moments). :func:`encode`
turns a :class:`ModelBundle` into those bytes; :func:`decode` and :func:`describe` turn
bytes whose hashes were already checked back into a bundle or a JSON-ready summary.
Every decoding failure is a :class:`BundleFormatError` naming its member.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from safemodel.core.bundle import ModelBundle
from safemodel.core.contract import Contract
from safemodel.core.golden import Golden
from safemodel.core.policy import Policy
from safemodel.errors import BundleFormatError
from safemodel.io import codec as _codec
from safemodel.io.manifest import Manifest
from safemodel.io.signing import SIGNATURE_MEMBER

__all__ = ["ESTIMATOR", "MANIFEST", "REQUIRED", "SIGNATURE", "decode", "describe", "encode"]

MANIFEST: Final = "manifest.json"
SIGNATURE: Final = SIGNATURE_MEMBER
ESTIMATOR: Final = "estimator.pkl"
REQUIRED: Final = ("bundle.json", ESTIMATOR, "contract.json", "policy.json",
                   "golden/inputs.json", "golden/golden.json", "metadata.json")
_OUTPUTS: Final = "golden/outputs/"
PROFILE_MOMENTS: Final = "profile-moments.json"


# ------------------------------------------------------------------------ write


def encode(bundle: ModelBundle) -> dict[str, bytes]:
    """Every content member of ``bundle``'s archive (not the manifest or signature)."""
    golden = bundle.golden
    members = {
        "bundle.json": _json({"name": bundle.name, "version": str(bundle.version),
                              "methods": list(bundle.methods)}),
        ESTIMATOR: bundle._pickle(),
        "contract.json": _json(bundle.contract.to_dict()),
        "policy.json": _json(bundle.policy.to_dict()),
        "golden/inputs.json": _json(_codec.encode_frame(golden.inputs)),
        "golden/golden.json": _json(golden.meta()),
        "metadata.json": _json(bundle.metadata),
    }
    for method, array in sorted(golden.outputs.items()):
        suffix, data = _codec.encode_array(array)
        members[f"{_OUTPUTS}{method}{suffix}"] = data
    if bundle.profile is not None:
        members["profile.json"] = _json(bundle.profile.to_dict())
        moments = bundle.profile.moments_to_dict()
        if moments is not None:
            # A member of its own: readers from before moments refuse unknown fields
            # in profile.json, and ignore unknown members (no format bump needed).
            members[PROFILE_MOMENTS] = _json(moments)
    return members


def _json(data: Any) -> bytes:
    return json.dumps(data, indent=1, sort_keys=False, allow_nan=False).encode()


# ------------------------------------------------------------------------ read


@contextlib.contextmanager
def _reading(member: str) -> Iterator[None]:
    """Name the member in a failure no decoder turned into a BundleFormatError itself."""
    try:
        yield
    except RecursionError:
        # json and the recursive decoders give up on deeply nested documents; a
        # bundle's own members are a few levels deep.
        raise BundleFormatError(
            f"Member {member!r} is nested too deeply to be read; the bundle was damaged "
            "or crafted. Rebuild it.", member=member, found="nesting depth",
        ) from None


def _document(members: Mapping[str, bytes], name: str) -> Any:
    with _reading(name):
        try:
            return json.loads(members[name])
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleFormatError(f"Member {name!r} is not valid JSON ({exc}).",
                                    member=name) from None


def _object(members: Mapping[str, bytes], name: str) -> dict[str, Any]:
    value = _document(members, name)
    if not isinstance(value, dict):
        raise BundleFormatError(f"Member {name!r} must hold a JSON object.", member=name)
    return value


def _golden(members: Mapping[str, bytes]) -> Golden:
    with _reading("golden/inputs.json"):
        inputs = _codec.decode_frame(_document(members, "golden/inputs.json"))
    meta = _object(members, "golden/golden.json")
    outputs = {}
    for name, data in members.items():
        if name.startswith(_OUTPUTS):
            stem, dot, suffix = name.rpartition(".")
            method = stem.rsplit("/", 1)[-1]
            with _reading(name):
                outputs[method] = _codec.decode_array(dot + suffix, data, name)
    with _reading("golden/golden.json"):
        return Golden.from_parts(meta, inputs, outputs)


def decode(
    manifest: Manifest,
    members: Mapping[str, bytes],
    unpickle: Callable[[bytes], Any],
    estimator_source: Callable[[], bytes | None] | None = None,
) -> ModelBundle:
    """The bundle the verified ``members`` hold; ``unpickle`` runs last, if at all.

    Every readable part is decoded and checked before the estimator is unpickled, so a
    malformed bundle is refused without running its pickle. With ``estimator_source``
    (a reader of the exact pickle bytes from the file), the bundle keeps no copy of them.
    """
    with _reading("contract.json"):
        contract = Contract.from_dict(_object(members, "contract.json"))
    with _reading("policy.json"):
        policy = Policy.from_dict(_object(members, "policy.json"))
    golden = _golden(members)
    # The bundle keeps these bytes (already hash-checked) and decodes them on use.
    golden_members = {name: data for name, data in members.items()
                      if name.startswith("golden/")}
    metadata = _object(members, "metadata.json")
    profile = None
    if "profile.json" in members:
        from safemodel.monitoring.profile import Profile

        moments = None
        if PROFILE_MOMENTS in members:
            with _reading(PROFILE_MOMENTS):
                moments = _document(members, PROFILE_MOMENTS)
        with _reading("profile.json"):
            profile = Profile.from_dict(_document(members, "profile.json"), moments=moments)
    estimator_bytes = members[ESTIMATOR]
    estimator = unpickle(estimator_bytes)
    return ModelBundle(
        estimator, contract, policy, golden,
        name=manifest.name, version=manifest.version, metadata=metadata, profile=profile,
        _environment=manifest.environment,
        _estimator_bytes=estimator_bytes if estimator_source is None else None,
        _estimator_source=estimator_source,
        _fingerprint=manifest.fingerprint,
        _golden_source=lambda: _golden(golden_members),
    )


def describe(members: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """The readable parts, as JSON (``contract``, ``policy``, ``golden``, ``metadata``)."""
    inputs = _object(members, "golden/inputs.json")
    return {
        "contract": _object(members, "contract.json"),
        "policy": _object(members, "policy.json"),
        "golden": {**_object(members, "golden/golden.json"), "rows": inputs.get("rows")},
        "metadata": _object(members, "metadata.json"),
    }
