"""Whether a bundle may be unpickled: one decision, made from the manifest and signature.

A pickle runs code, so the bundle's signer is the trust boundary. Every entry point
(``load``, ``BundleStore``, the CLI, the pytest plugin, Spark and Dask drivers) calls
:func:`decide_trust` with the exact bytes of ``manifest.json`` and ``signature.json``
*before* anything is unpickled, and the save side calls :func:`signing_key_for_save`::

    from safemodel.io.audit import pickle_references
    from safemodel.io.trust import decide_trust

    decision = decide_trust(
        manifest_bytes, signature_bytes,          # signature_bytes None if unsigned
        signing_key=signing_key,                  # explicit key: must verify
        trusted_keys=trusted_keys,                # the caller's extra keys
        trust=trust,                              # True: load an untrusted bundle on purpose
        references=pickle_references(estimator_bytes),   # listed in the refusal
        source=str(path),
    )
    # decision.trusted, decision.signer, decision.verified_by.source

The rules, in order:

1. ``signature.json``, when present, must be well formed (else ``IntegrityError``).
2. An explicit ``signing_key`` (or ``$SAFEMODEL_SIGNING_KEY``) must verify the
   signature; if it does not, ``IntegrityError``, even with ``trust=True``: the
   caller named the one key they accept.
3. Otherwise the signature is checked against :func:`safemodel.io.keys.trusted_keys`:
   the user's own key, the trust store, ``$SAFEMODEL_TRUSTED_KEYS`` and
   ``trusted_keys=``. A signature that names a trusted key but does not verify is
   tampering: ``IntegrityError``, even with ``trust=True``.
4. A bundle that is unsigned, or signed by a key nobody trusts, raises
   :class:`~safemodel.errors.UntrustedBundleError` naming the signer's key id (or
   "unsigned"), the pickle's references and the three ways to trust it; with
   ``trust=True`` the decision says untrusted and the caller loads on purpose.

The decision reads no archive and unpickles nothing; callers pass the bytes they
hashed (:func:`safemodel.io.archive.load_bytes` reads a file once), so the bytes
trusted are the bytes later unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from safemodel.errors import IntegrityError, UntrustedBundleError
from safemodel.io.keys import (
    TRUSTED_KEYS_ENV,
    TrustedKey,
    default_signing_key,
    safemodel_home,
)
from safemodel.io.keys import (
    trusted_keys as gather_trusted_keys,
)
from safemodel.io.signing import (
    HMAC_SHA256,
    SIGNATURE_MEMBER,
    SIGNING_KEY_ENV,
    HmacKey,
    Signature,
    key_id,
    key_type,
    parse_key,
    read_signature,
    short_key_id,
    signature_valid,
    verify_manifest,
)

__all__ = [
    "UNSIGNED",
    "TrustDecision",
    "decide_trust",
    "default_signing_key",
    "signing_key_for_save",
]

#: The ``signer`` of a bundle without ``signature.json``.
UNSIGNED: Final = "unsigned"
_REFERENCES_SHOWN: Final = 20


@dataclass(frozen=True)
class TrustDecision:
    """What :func:`decide_trust` concluded.

    Attributes
    ----------
    trusted : bool
        A trusted (or explicitly given) key verified the signature.
    signer : str
        The verified signer's key id; for an untrusted bundle the key id the
        signature *names* (unverified), ``"unsigned"``, or ``"hmac-sha256"``.
    verified_by : TrustedKey or None
        The key that verified, with its ``source`` ("own key", "trust store",
        "signing_key", ...); ``None`` when untrusted.
    reason : str
        One sentence for logs and ``safemodel verify``.
    """

    trusted: bool
    signer: str
    verified_by: TrustedKey | None
    reason: str


def decide_trust(
    manifest: bytes,
    signature: bytes | None,
    *,
    signing_key: Any = None,
    trusted_keys: Iterable[Any] | None = None,
    trust: bool = False,
    home: str | os.PathLike[str] | None = None,
    references: Sequence[str] = (),
    source: str | None = None,
) -> TrustDecision:
    """Decide, before unpickling, whether a bundle's signer is trusted.

    Parameters
    ----------
    manifest : bytes
        The exact bytes of ``manifest.json``.
    signature : bytes or None
        The exact bytes of ``signature.json``, or ``None`` if the bundle has none.
    signing_key : HmacKey, Ed25519 key, str or bytes, optional
        A key the bundle *must* be signed with (text as for
        :func:`safemodel.io.signing.parse_key`). Defaults to
        ``$SAFEMODEL_SIGNING_KEY`` when set.
    trusted_keys : iterable, optional
        Extra keys to trust for this call (see :func:`safemodel.io.keys.trusted_keys`).
    trust : bool, default False
        Return an untrusted decision instead of raising: the caller loads an
        untrusted bundle on purpose.
    home : path, optional
        The safemodel home folder (own key and trust store).
    references : sequence of str
        The pickle's references from :func:`safemodel.io.audit.pickle_references`,
        listed in the refusal so the reader can judge what would run.
    source : str, optional
        The bundle's path or name, for the message.

    Returns
    -------
    TrustDecision

    Raises
    ------
    UntrustedBundleError
        If no trusted key signed the bundle and ``trust`` is false.
    IntegrityError
        With ``member="signature.json"``: a malformed signature, an explicit key
        that does not verify, or a signature naming a trusted key that does not
        verify (the bundle was modified after signing).
    """
    parsed = read_signature(signature) if signature is not None else None
    explicit = _explicit_key(signing_key)
    if explicit is not None:
        key, origin = explicit
        verify_manifest(manifest, signature, key)
        assert parsed is not None  # verify_manifest refuses an unsigned bundle
        return _trusted(parsed, _as_trusted(key, origin))
    candidates = gather_trusted_keys(trusted_keys, home=home)
    verified = _verify_with(manifest, parsed, candidates) if parsed is not None else None
    if verified is not None:
        assert parsed is not None
        return _trusted(parsed, verified)
    signer = UNSIGNED if parsed is None else parsed.key_id or parsed.algorithm
    if parsed is not None and parsed.algorithm != HMAC_SHA256 and parsed.key_id is None:
        signer = f"an unnamed {parsed.algorithm} key"
    message = _refusal(signer, parsed, references, source, home)
    if not trust:
        raise UntrustedBundleError(
            message, signer=signer, references=references, member=SIGNATURE_MEMBER,
            expected="a signature by a trusted key", found=signer,
        )
    return TrustDecision(False, signer, None, f"untrusted ({signer}), loaded with trust=True")


def signing_key_for_save(
    signing_key: Any = None, *, home: str | os.PathLike[str] | None = None
) -> Any:
    """The key a save signs with: explicit, else ``$SAFEMODEL_SIGNING_KEY``, else the user's.

    Parameters
    ----------
    signing_key : HmacKey, Ed25519PrivateKey, str or bytes, optional
        The caller's key (text as for :func:`safemodel.io.signing.parse_key`).
    home : path, optional
        The home folder holding the user's key, created on first use.

    Returns
    -------
    HmacKey or Ed25519PrivateKey
        Ready for :func:`safemodel.io.signing.sign_manifest`.
    """
    explicit = _explicit_key(signing_key)
    if explicit is not None:
        return explicit[0]
    return default_signing_key(home)


def _explicit_key(signing_key: Any) -> tuple[Any, str] | None:
    if signing_key is not None:
        return parse_key(signing_key), "signing_key"
    from_env = os.environ.get(SIGNING_KEY_ENV)
    if from_env:
        return parse_key(from_env), f"${SIGNING_KEY_ENV}"
    return None


def _as_trusted(key: Any, origin: str) -> TrustedKey:
    if isinstance(key, HmacKey):
        return TrustedKey(key, HMAC_SHA256, None, "HMAC secret", origin)
    public = key.public_key() if hasattr(key, "sign") else key
    return TrustedKey(public, key_type(public), key_id(public), "given key", origin)


def _trusted(parsed: Signature, key: TrustedKey) -> TrustDecision:
    signer = key.key_id or HMAC_SHA256
    return TrustDecision(True, signer, key,
                         f"signed by {key.short_id} ({key.label}, from {key.source})")


def _verify_with(
    manifest: bytes, parsed: Signature, candidates: list[TrustedKey]
) -> TrustedKey | None:
    if parsed.algorithm == HMAC_SHA256:
        hmac_keys = [c for c in candidates if c.key_type == HMAC_SHA256]
        return next((c for c in hmac_keys if signature_valid(manifest, parsed, c.key)), None)
    # Only the key the signature names is tried: a trusted key's id is public, and a
    # signature naming it that fails to verify is evidence of tampering, not a miss.
    # The recorded key type must be the signature's algorithm: an ECDSA signature is
    # never checked with an Ed25519 key of the same id, or the reverse.
    named = [c for c in candidates
             if c.key_type == parsed.algorithm and c.key_id == parsed.key_id]
    for candidate in named:
        if signature_valid(manifest, parsed, candidate.key):
            return candidate
    if named:
        raise IntegrityError(
            f"The bundle's signature names the trusted key {short_key_id(named[0].key_id or '')} "
            f"({named[0].label}) but does not verify with it: the bundle was modified after "
            "signing, or the signature was forged. It was not unpickled; get the bundle "
            "again from its author.",
            member=SIGNATURE_MEMBER, expected=named[0].key_id, found=parsed.key_id,
        )
    return None


def _refusal(
    signer: str,
    parsed: Signature | None,
    references: Sequence[str],
    source: str | None,
    home: str | os.PathLike[str] | None,
) -> str:
    what = f"The bundle {source!r}" if source else "The bundle"
    if parsed is None:
        who = "is unsigned, so nothing proves who wrote it"
    elif parsed.algorithm == HMAC_SHA256:
        who = "is signed with an HMAC secret you did not give"
    else:
        who = f"is signed by key {short_key_id(signer)}, which you do not trust"
    shown = ", ".join(references[:_REFERENCES_SHOWN]) or "none listed"
    if len(references) > _REFERENCES_SHOWN:
        shown += f" and {len(references) - _REFERENCES_SHOWN} more"
    if parsed is not None and parsed.algorithm == HMAC_SHA256:
        how = (f"pass signing_key=HmacKey(secret), or set ${SIGNING_KEY_ENV}=hmac:<secret> "
               "(CLI: --signing-key)")
    else:
        how = (
            "ask its author for their public key (`safemodel keys show`) and run "
            "`safemodel trust add KEY.pem`, or pass trusted_keys=[public_key] (CLI: "
            f"--trusted-key KEY.pem, or ${TRUSTED_KEYS_ENV})"
        )
    return (
        f"{what} {who}; it was not unpickled, because unpickling runs code. Its pickle "
        f"would import: {shown}. If you trust its author, {how}; or load it on purpose "
        f"with trust=True (CLI: --trust). Trust store: {safemodel_home(home)}."
    )
