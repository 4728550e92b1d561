"""OpenSSF model signing: detached signatures a ``model_signing`` user can check, and back.

`OpenSSF model signing <https://github.com/sigstore/model-transparency>`_ (the
``model-signing`` package, ``model_signing sign|verify``) writes a signature file
beside a model. In its *key* mode that file is a Sigstore bundle v0.3 (JSON) holding
a DSSE envelope around an in-toto Statement v1::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": "<SHA-256 hex of the key's PEM>"},
                              "tlogEntries": []},
     "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json",
                      "payload": "<base64 of the statement>",
                      "signatures": [{"sig": "<base64 DER ECDSA>", "keyid": ""}]}}

The statement's ``predicateType`` is ``https://model_signing/signature/v1.0``; its
``predicate.resources`` list the SHA-256 of each signed file, and its one
``subject`` carries the SHA-256 over those digests in order. A single file is
signed as one resource named ``"."`` (the file relative to itself), which is how
``model_signing sign key bundle.safemodel`` names it. The ECDSA signature (P-256
with SHA-256, P-384 with SHA-384, P-521 with SHA-512) is over the DSSE
pre-authentication encoding ``DSSEv1 <len> <type> <len> <payload>``.

The signature carries a *hint* (the SHA-256 of the public key's PEM, which is the
key's :func:`~safemodel.io.signing.key_id`), never a key: the verifier must already
trust the key, and the key's type comes from the trust store entry, not from the
signature file. Because the signature covers the whole file, it lives beside the
bundle as ``<bundle>.sig`` (inside the zip it would change the hash it signs).

This module needs only ``cryptography``. A signature's ``verificationMaterial``
decides who may have signed it: a key hint (key mode, the trusted keys), an X.509
chain (certificate mode, :mod:`safemodel.io.x509_trust`: CAs in the trust store), or
a Fulcio certificate with a Rekor entry (Sigstore keyless,
:mod:`safemodel.io.sigstore_trust`, which imports ``sigstore`` only then).

:func:`decide_trust_with_sidecar` is the hook a loader calls instead of
:func:`safemodel.io.trust.decide_trust` when a sidecar exists: the in-bundle
signature is tried first, then the sidecar, and either way nothing is unpickled
before a trusted key has verified the exact bytes passed in.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from safemodel.errors import BundleFormatError, IntegrityError, UntrustedBundleError
from safemodel.io.files import write_atomic
from safemodel.io.keys import TRUSTED_KEYS_ENV, TrustedKey, safemodel_home
from safemodel.io.keys import trusted_keys as gather_trusted_keys
from safemodel.io.signing import (
    SigningKeyError,
    key_id,
    key_type,
    parse_key,
    public_key_valid,
    short_key_id,
    sign_bytes,
)
from safemodel.io.trust import TrustDecision, decide_trust
from safemodel.io.x509_trust import ca_list, verify_chain

logger = logging.getLogger("safemodel")

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIDECAR_SUFFIX",
    "STATEMENT_TYPE",
    "SidecarSignature",
    "check_sidecar_key",
    "decide_trust_with_sidecar",
    "read_sidecar",
    "read_sidecar_file",
    "require_sidecar",
    "sidecar_beside",
    "sidecar_path",
    "sign_sidecar",
    "sign_sidecar_digest",
    "usable_sidecar",
    "verified_resources",
    "verify_sidecar",
    "verify_sidecar_bytes",
    "write_sidecar",
    "write_sidecar_digest",
]

#: The file name suffix of the signature beside a bundle (``churn.safemodel.sig``).
SIDECAR_SUFFIX: Final = ".sig"
#: The Sigstore bundle media type model signing writes in key mode.
BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: The DSSE payload type of an in-toto statement.
IN_TOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"
#: The in-toto statement type.
STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"
#: The model signing predicate type (v1.0, model-signing 1.0 and later).
PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"

# A key-mode signature of one file is about 1.5 kB; one of a large folder lists a
# resource per file. Anything bigger than this is not read (a hostile file).
_MAX_SIDECAR: Final = 8 << 20
_SINGLE_FILE: Final = "."
_ECDSA_TYPES: Final = ("ecdsa-p256", "ecdsa-p384", "ecdsa-p521")
_CURVES: Final = ("secp256r1", "secp384r1", "secp521r1")


@dataclass(frozen=True)
class SidecarSignature:
    """A parsed model signing signature; nothing in it is trusted until verified.

    Attributes
    ----------
    hint : str or None
        The signer's key hint as the file claims it (``None`` in signatures written
        by model-signing before 1.0.1, which carry no hint).
    payload : bytes
        The signed in-toto statement, as signed.
    signature : bytes
        The DER ECDSA signature over the DSSE encoding of ``payload``.
    mode : {"key", "certificate", "sigstore"}
        What ``verificationMaterial`` holds: a key hint, an X.509 chain
        (:mod:`safemodel.io.x509_trust`), or a Sigstore (keyless) certificate and
        transparency log entry (:mod:`safemodel.io.sigstore_trust`).
    certificates : tuple of bytes
        In certificate mode, the DER chain, signing certificate first.
    """

    hint: str | None
    payload: bytes
    signature: bytes
    mode: str = "key"
    certificates: tuple[bytes, ...] = ()


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The signature file beside ``path``: ``path`` with ``.sig`` appended."""
    return Path(os.fspath(path) + SIDECAR_SUFFIX)


def sign_sidecar(data: bytes, name: str, key: Any,
                 certificates: Sequence[Any] | None = None) -> bytes:
    """Sign a file's bytes in the model signing key-mode format; return the signature.

    Parameters
    ----------
    data : bytes
        The exact bytes of the file (the bundle).
    name : str
        The file's name, recorded as the statement's subject name (informative only:
        model signing ignores it when verifying, so a renamed file still verifies).
    key : EllipticCurvePrivateKey or PEM text
        An ECDSA private key on P-256 (or P-384, P-521); model signing's key mode
        accepts no other type.
    certificates : sequence of cryptography.x509.Certificate, optional
        Write a *certificate-mode* signature instead (``model_signing verify
        certificate`` accepts it): the signing certificate of ``key`` first, then the
        intermediates up to (not including) the root.

    Returns
    -------
    bytes
        The content of the signature file (``<bundle>.sig``), JSON.

    Raises
    ------
    SigningKeyError
        If the key is not an ECDSA private key on an accepted curve.

    Examples
    --------
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> signature = sign_sidecar(b"model bytes", "m.safemodel",
    ...                          ec.generate_private_key(ec.SECP256R1()))
    >>> json.loads(signature)["mediaType"]
    'application/vnd.dev.sigstore.bundle.v0.3+json'
    """
    return sign_sidecar_digest(hashlib.sha256(data).hexdigest(), name, key, certificates)


def check_sidecar_key(key: Any) -> Any:
    """``key`` parsed, if it can sign a model signing signature; else a clear error.

    Raises
    ------
    SigningKeyError
        If the key is not an ECDSA private key on P-256, P-384 or P-521 (model
        signing's key mode accepts no other type); the message says how to create one.
    """
    material = parse_key(key)
    kind = key_type(material)
    if kind not in _ECDSA_TYPES or not hasattr(material, "sign"):
        raise SigningKeyError(
            f"A model signing signature needs an ECDSA private key (P-256, P-384 or "
            f"P-521); got {'a public key' if kind in _ECDSA_TYPES else kind!r}. Create "
            "one with `safemodel keys create --type ecdsa-p256` (your own key: move the "
            "Ed25519 one aside first), or pass signing_key=<EllipticCurvePrivateKey or "
            "its PEM>."
        )
    return material


def sign_sidecar_digest(digest: str, name: str, key: Any,
                        certificates: Sequence[Any] | None = None) -> bytes:
    """:func:`sign_sidecar` of a file whose SHA-256 (hex) is ``digest``."""
    material = check_sidecar_key(key)
    verification: dict[str, Any] = {"publicKey": {"hint": key_id(material)}}
    if certificates:
        from cryptography.hazmat.primitives.serialization import Encoding

        if certificates[0].public_key() != material.public_key():
            raise SigningKeyError(
                "The first certificate must be the signing key's certificate; its public "
                f"key is not the key's ({certificates[0].subject.rfc4514_string()!r}).")
        verification = {"x509CertificateChain": {"certificates": [
            {"rawBytes": base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii")}
            for c in certificates]}}
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": _root_digest([digest])}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256",
                              "allow_symlinks": False},
            "resources": [{"name": _SINGLE_FILE, "algorithm": "sha256", "digest": digest}],
        },
    }
    payload = json.dumps(statement, indent=2).encode("utf-8")
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**verification, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(sign_bytes(material, _pae(payload)))
                            .decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(bundle, separators=(",", ":")).encode("utf-8")


def write_sidecar(
    path: str | os.PathLike[str], key: Any, *, sig_path: str | os.PathLike[str] | None = None,
    certificates: Sequence[Any] | None = None,
) -> Path:
    """Sign the file at ``path`` and write ``<path>.sig`` (atomically); return its path.

    ``model_signing verify key --signature <path>.sig --public_key KEY.pub <path>``
    accepts the result (``verify certificate`` when ``certificates`` are given). See
    :func:`sign_sidecar` for ``key`` and ``certificates``.
    """
    target = Path(path)
    out = Path(sig_path) if sig_path is not None else sidecar_path(target)
    write_atomic(out, sign_sidecar(target.read_bytes(), target.name, key, certificates))
    return out


def write_sidecar_digest(path: str | os.PathLike[str], digest: str, key: Any) -> Path:
    """Write ``<path>.sig`` atomically, signing a file whose SHA-256 (hex) is ``digest``.

    Used by ``save(..., sidecar=True)``, which hashes the bytes as it writes them.
    """
    target = Path(path)
    out = sidecar_path(target)
    write_atomic(out, sign_sidecar_digest(digest, target.name, key))
    return out


def read_sidecar(content: bytes, *, source: str = "model.sig") -> SidecarSignature:
    """Parse a model signing key-mode signature (the Sigstore bundle JSON).

    Raises
    ------
    IntegrityError
        With ``member=source``, if the content is not a key-mode Sigstore bundle v0.3
        with one DSSE signature over an in-toto payload; certificate and Sigstore
        (keyless) signatures are refused with a message saying so.
    """

    def malformed(reason: str) -> IntegrityError:
        return IntegrityError(
            f"The model signing signature {source!r} cannot be used: {reason}.",
            member=source, expected="a model signing key-mode signature", found=reason,
        )

    if len(content) > _MAX_SIDECAR:
        raise malformed(f"it is {len(content)} bytes, more than a signature can be")
    try:
        bundle = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise malformed(f"not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(bundle, dict) or bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        found = bundle.get("mediaType") if isinstance(bundle, dict) else type(bundle).__name__
        raise malformed(f"expected mediaType {BUNDLE_MEDIA_TYPE!r}, found {found!r}")
    material = bundle.get("verificationMaterial")
    mode, certificates = _material(material, malformed)
    hint = material["publicKey"].get("hint") if mode == "key" and material else None
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
        raise malformed(f"expected a DSSE envelope of {IN_TOTO_PAYLOAD_TYPE!r}")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 \
            or not isinstance(signatures[0], dict):
        raise malformed("expected exactly one DSSE signature")
    payload, signature = _base64(envelope.get("payload")), _base64(signatures[0].get("sig"))
    if payload is None or signature is None:
        raise malformed("the payload or signature is not base64")
    if hint is not None and not isinstance(hint, str):
        raise malformed(f"the key hint must be a string, found {hint!r}")
    return SidecarSignature(hint or None, payload, signature, mode, certificates)


def _material(material: Any, malformed: Any) -> tuple[str, tuple[bytes, ...]]:
    """The signature's mode, and its DER certificate chain in certificate mode."""
    if isinstance(material, dict) and isinstance(material.get("publicKey"), dict):
        return "key", ()
    if isinstance(material, dict) and isinstance(material.get("x509CertificateChain"), dict):
        listed = material["x509CertificateChain"].get("certificates")
        chain = [_base64(c.get("rawBytes")) if isinstance(c, dict) else None
                 for c in (listed if isinstance(listed, list) else [None])]
        if not chain or any(c is None for c in chain):
            raise malformed("its certificate chain is not a list of base64 certificates")
        return "certificate", tuple(c for c in chain if c is not None)
    if isinstance(material, dict) and isinstance(material.get("certificate"), dict):
        return "sigstore", ()
    kinds = sorted(material) if isinstance(material, dict) else material
    raise malformed(f"its verificationMaterial holds {kinds!r}, not a public key hint, "
                    "a certificate chain or a Sigstore certificate")


def verify_sidecar_bytes(
    data: bytes,
    sidecar: bytes,
    candidates: Iterable[TrustedKey],
    *,
    source: str = "model.sig",
    home: str | os.PathLike[str] | None = None,
) -> TrustedKey:
    """Check a model signing signature of ``data`` against trusted keys; return the signer.

    Parameters
    ----------
    data : bytes
        The exact bytes of the signed file, the bytes later unpickled.
    sidecar : bytes
        The content of the signature file.
    candidates : iterable of TrustedKey
        The keys to accept (:func:`safemodel.io.keys.trusted_keys`); only ECDSA
        entries can match, whatever the signature file says.
    source : str
        The signature file's name, for messages and ``member``.

    Returns
    -------
    TrustedKey
        The trusted key that verified the signature.

    Raises
    ------
    UntrustedBundleError
        If no trusted key is the one the signature names (``signer`` is the hint).
    IntegrityError
        If the file is malformed, the signature names a trusted key but does not
        verify with it (forged or edited), or it verifies but the file's SHA-256 is
        not the signed one (the file was modified after signing).
    """
    signer, resources = verified_resources(sidecar, candidates, source=source, home=home)
    _check_single_file(resources, hashlib.sha256(data).hexdigest(), source)
    return signer


def verified_resources(
    sidecar: bytes, candidates: Iterable[TrustedKey], *, source: str = "model.sig",
    home: str | os.PathLike[str] | None = None,
) -> tuple[TrustedKey, dict[str, str]]:
    """Verify a model signing key-mode signature; return the signer and what it signs.

    Works for a signature of a folder too (``model_signing sign key FOLDER``): the
    caller compares the returned digests with the files it holds.

    Parameters
    ----------
    sidecar : bytes
        The content of the signature file.
    candidates : iterable of TrustedKey
        The keys to accept; only ECDSA entries can match.
    source : str
        The signature file's name, for messages and ``member``.

    Returns
    -------
    tuple of (TrustedKey, dict)
        The key that verified, and ``{resource name: SHA-256 hex}`` as signed
        (``{".": digest}`` for a single file).

    Raises
    ------
    UntrustedBundleError, IntegrityError
        As for :func:`verify_sidecar_bytes`, except the comparison with a file.
    """
    parsed = read_sidecar(sidecar, source=source)
    if parsed.mode == "certificate":
        return _by_certificate(parsed, source, home)
    if parsed.mode == "sigstore":
        from safemodel.io.sigstore_trust import verify_keyless

        keyless, payload = verify_keyless(sidecar, source=source, home=home)
        return keyless, _statement_resources(payload, source)
    ecdsa = [c for c in candidates if c.key_type in _ECDSA_TYPES]
    # Only the key the hint names is tried; a signature without a hint (written by
    # model-signing 1.0.0 and earlier) is tried against every trusted ECDSA key.
    named = [c for c in ecdsa if c.key_id == parsed.hint] if parsed.hint else ecdsa
    signer = next((c for c in named
                   if public_key_valid(c.key, parsed.signature, _pae(parsed.payload))), None)
    if signer is None and named and parsed.hint:
        raise IntegrityError(
            f"The model signing signature {source!r} names the trusted key "
            f"{short_key_id(parsed.hint)} ({named[0].label}) but does not verify with it: "
            "it was forged or edited. Nothing was unpickled; get the file and its "
            "signature again from their author.",
            member=source, expected=named[0].key_id, found=parsed.hint,
        )
    if signer is None:
        who = parsed.hint or "an unnamed key"
        shown = f"key {short_key_id(who)}" if parsed.hint else "a key it does not name"
        raise UntrustedBundleError(
            f"The model signing signature {source!r} is by {shown}, which "
            "you do not trust. If you trust its author, add their ECDSA public key "
            f"(`safemodel trust add KEY.pub`, trusted_keys=[...] or ${TRUSTED_KEYS_ENV}).",
            signer=who, member=source, expected="a signature by a trusted key", found=who,
        )
    return signer, _statement_resources(parsed.payload, source)


def _by_certificate(parsed: SidecarSignature, source: str,
                    home: str | os.PathLike[str] | None) -> tuple[TrustedKey, dict[str, str]]:
    from cryptography.hazmat.primitives.asymmetric import ec

    key, ca, who = verify_chain(parsed.certificates, ca_list(home), source=source)
    kind = type(key).__name__
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES \
            or not public_key_valid(key, parsed.signature, _pae(parsed.payload)):
        raise IntegrityError(
            f"The model signing signature {source!r} carries a trusted certificate for "
            f"{who!r}, but its signature does not verify with that certificate's key "
            f"({kind}): it was forged or edited. Nothing was unpickled.",
            member=source, expected="a signature by the certificate's key", found=who)
    signer = TrustedKey(key, key_type(key), key_id(key), f"{who} (CA {ca.label})",
                        f"trusted CA {ca.ca_id[:16]}")
    return signer, _statement_resources(parsed.payload, source)


def verify_sidecar(
    path: str | os.PathLike[str],
    sig_path: str | os.PathLike[str] | None = None,
    trusted_keys: Iterable[Any] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
) -> TrustedKey:
    """Verify the model signing signature beside a file; return the trusted signer.

    Parameters
    ----------
    path : path
        The signed file.
    sig_path : path, optional
        Its signature; defaults to ``<path>.sig``.
    trusted_keys : iterable, optional
        Extra keys to trust, as for ``load(trusted_keys=...)``; the user's own key,
        the trust store and ``$SAFEMODEL_TRUSTED_KEYS`` are trusted too.
    home : path, optional
        The safemodel home folder.

    Returns
    -------
    TrustedKey

    Raises
    ------
    UntrustedBundleError, IntegrityError
        As for :func:`verify_sidecar_bytes`; nothing is unpickled here.
    """
    signature_file = Path(sig_path) if sig_path is not None else sidecar_path(path)
    sidecar = read_sidecar_file(signature_file)
    if sidecar is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(signature_file))
    candidates = gather_trusted_keys(trusted_keys, home=home)
    return verify_sidecar_bytes(Path(path).read_bytes(), sidecar, candidates,
                                source=signature_file.name, home=home)


def require_sidecar(
    data: bytes,
    content: bytes | None,
    sig_path: str | os.PathLike[str],
    candidates: Iterable[TrustedKey],
    *,
    why: str,
    fix: str,
) -> TrustedKey:
    """Check a sidecar its caller requires (``sidecar=True``) over ``data``; its signer.

    Parameters
    ----------
    data : bytes
        The exact bytes of the bundle file, the bytes later unpickled.
    content : bytes or None
        The content of ``sig_path`` as the caller read it (``None``: no such file).
        The caller reads it once, so what it checks is what it keeps or keys by.
    sig_path : path
        The signature file, for messages and ``member``.
    candidates : iterable of TrustedKey
        The keys to accept, as for :func:`verify_sidecar_bytes`.
    why, fix : str
        Why a signature is required, and what to do when it is missing (messages).

    Raises
    ------
    IntegrityError
        The sidecar is missing, malformed, forged, or signs other bytes.
    UntrustedBundleError
        The sidecar's key is not trusted here.
    """
    sig = os.fspath(sig_path)
    if content is None:
        raise IntegrityError(f"{why}, but {sig!r} is missing. Nothing was unpickled; {fix}.",
                             member=sig, expected="a model signing signature",
                             found="no file")
    return verify_sidecar_bytes(data, content, candidates, source=sig)


def read_sidecar_file(path: str | os.PathLike[str]) -> bytes | None:
    """The content of the signature file ``path``, or ``None`` when there is none.

    At most one byte more than a signature may be (8 MiB), so a hostile file cannot
    make a load read gigabytes (the verifier refuses a longer one as oversized). The
    read is sized by the file, not by that bound: a 1.5 kB signature costs a 1.5 kB
    buffer, which matters to a store that reads it on every lookup.

    Raises
    ------
    OSError
        When the file exists but cannot be read (not ``FileNotFoundError``).
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(min(os.fstat(fh.fileno()).st_size, _MAX_SIDECAR) + 1)
    except FileNotFoundError:
        return None


def sidecar_beside(path: str | os.PathLike[str], *, trust: bool = False) -> bytes | None:
    """The OpenSSF model signing signature beside the file (``<path>.sig``), if any."""
    sig = Path(os.fspath(path) + SIDECAR_SUFFIX)
    try:
        return read_sidecar_file(sig)
    except (IsADirectoryError, NotADirectoryError):
        return None
    except OSError as exc:
        if trust:
            logger.warning("%s ignored (trust=True): it cannot be read (%s).", sig, exc)
            return None
        raise BundleFormatError(f"The signature {str(sig)!r} beside the bundle cannot be read "
                                f"({exc}); remove it or make it readable.",
                                member=sig.name) from None


def usable_sidecar(sidecar: bytes, source: str) -> bytes | None:
    """``sidecar``, or ``None`` with a warning when it is no signature at all.

    Under ``trust=True`` an unrelated, malformed ``.sig`` must not block the load the
    caller asked for; a well-formed one is still checked (a forgery of a trusted key
    is refused whatever ``trust`` says).
    """
    try:
        read_sidecar(sidecar, source=f"{source}{SIDECAR_SUFFIX}")
    except IntegrityError as exc:
        logger.warning("%s ignored (trust=True): %s", f"{source}{SIDECAR_SUFFIX}", exc)
        return None
    return sidecar


def decide_trust_with_sidecar(
    manifest: bytes,
    signature: bytes | None,
    *,
    data: bytes,
    sidecar: bytes | None,
    sidecar_name: str = "model.sig",
    trust: bool = False,
    trusted_keys: Iterable[Any] | None = None,
    home: str | os.PathLike[str] | None = None,
    references: Sequence[str] = (),
    **options: Any,
) -> TrustDecision:
    """:func:`~safemodel.io.trust.decide_trust`, also accepting a model signing sidecar.

    The in-bundle ``signature.json`` is decided first, by the same rules (an explicit
    ``signing_key`` must verify it; a signature naming a trusted key that does not
    verify raises). If it is absent or untrusted and ``sidecar`` is given, the
    sidecar is checked against the same trusted keys with
    :func:`verify_sidecar_bytes`; a sidecar naming a trusted key that fails, or
    whose file digest differs, raises :class:`IntegrityError` even with
    ``trust=True``.

    Parameters
    ----------
    manifest, signature
        As for ``decide_trust``.
    data : bytes
        The exact bytes of the bundle file, the bytes later unpickled.
    sidecar : bytes or None
        The content of ``<bundle>.sig``, or ``None`` when there is none.
    sidecar_name : str
        Its file name, for messages.
    trust, trusted_keys, home, references, **options
        As for ``decide_trust`` (``signing_key``, ``source``).

    Returns
    -------
    TrustDecision
        ``verified_by`` is the ECDSA key that verified the sidecar when the sidecar
        decided.

    Raises
    ------
    UntrustedBundleError
        If neither signature is by a trusted key and ``trust`` is false.
    IntegrityError
        As for ``decide_trust`` and :func:`verify_sidecar_bytes`.
    """
    common: dict[str, Any] = dict(trusted_keys=trusted_keys, home=home,
                                  references=references, **options)
    if sidecar is None:
        return decide_trust(manifest, signature, trust=trust, **common)
    decision = decide_trust(manifest, signature, trust=True, **common)
    if decision.trusted:
        return decision
    candidates = gather_trusted_keys(trusted_keys, home=home)
    try:
        signer = verify_sidecar_bytes(data, sidecar, candidates, source=sidecar_name,
                                      home=home)
    except UntrustedBundleError as exc:
        if trust:
            return decision
        source = options.get("source")
        what = f"The bundle {source!r}" if source else "The bundle"
        shown = ", ".join(references[:20]) or "none listed"
        raise UntrustedBundleError(
            f"{what} has no signature by a trusted key: its own signature is "
            f"{decision.signer}, and {exc} It was not unpickled; its pickle would import: "
            f"{shown}. Or load it on purpose with trust=True (CLI: --trust). Trust store: "
            f"{safemodel_home(home)}.",
            signer=exc.signer, references=references, member=sidecar_name,
            expected="a signature by a trusted key", found=exc.signer,
        ) from None
    return TrustDecision(
        True, signer.key_id or "", signer,
        f"model signing signature {sidecar_name} by {signer.short_id} ({signer.label}, "
        f"from {signer.source})",
    )


def _base64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _pae(payload: bytes) -> bytes:
    # DSSE v1 pre-authentication encoding; lengths are byte counts in decimal.
    kind = IN_TOTO_PAYLOAD_TYPE.encode("ascii")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _root_digest(hex_digests: Sequence[str]) -> str:
    # The subject digest: SHA-256 over the resources' raw digests, in order.
    hasher = hashlib.sha256()
    for digest in hex_digests:
        hasher.update(bytes.fromhex(digest))
    return hasher.hexdigest()


def _is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value
    )


def _statement_resources(payload: bytes, source: str) -> dict[str, str]:
    # Called only after the signature verified: the statement is the signer's.
    def refuse(reason: str) -> IntegrityError:
        return IntegrityError(
            f"The model signing signature {source!r} verifies, but {reason}. Nothing was "
            "unpickled; get the file and its signature again from their author.",
            member=source, expected="a model signing v1.0 statement", found=reason,
        )

    try:
        statement = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise refuse("its payload is not UTF-8 JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
        raise refuse(f"its payload is not an in-toto {STATEMENT_TYPE} statement")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise refuse(f"its predicate type is {statement.get('predicateType')!r}, not "
                     f"{PREDICATE_TYPE!r} (re-sign with model-signing 1.0 or later)")
    predicate = statement.get("predicate")
    predicate = predicate if isinstance(predicate, dict) else {}
    serialization = predicate.get("serialization")
    if not isinstance(serialization, dict) or serialization.get("method") != "files" \
            or serialization.get("hash_type") != "sha256":
        raise refuse(f"it was made with serialization {serialization!r}; only "
                     "method 'files' with hash_type 'sha256' is read")
    resources = predicate.get("resources")
    if not isinstance(resources, list) or not all(
        isinstance(r, dict) and isinstance(r.get("name"), str)
        and r.get("algorithm") == "sha256" and _is_sha256_hex(r.get("digest"))
        for r in resources
    ):
        raise refuse("its resources are not a list of SHA-256 file digests")
    subjects = statement.get("subject")
    root = _root_digest([r["digest"] for r in resources])
    if not (isinstance(subjects, list) and len(subjects) == 1
            and isinstance(subjects[0], dict)
            and subjects[0].get("digest") == {"sha256": root}):
        raise refuse("its subject digest does not match its resources")
    found = {r["name"]: r["digest"] for r in resources}
    if len(found) != len(resources):
        raise refuse("it lists a resource twice")
    return found


def _check_single_file(resources: dict[str, str], file_sha256: str, source: str) -> None:
    if list(resources) != [_SINGLE_FILE]:
        raise IntegrityError(
            f"The model signing signature {source!r} verifies, but it does not sign one "
            f"file: its resources are {sorted(resources)!r}, not ['.']. Sign the bundle "
            "file itself (`model_signing sign key bundle.safemodel`), not its folder.",
            member=source, expected=[_SINGLE_FILE], found=sorted(resources),
        )
    if resources[_SINGLE_FILE] != file_sha256:
        raise IntegrityError(
            f"The model signing signature {source!r} verifies, but the file's SHA-256 is "
            f"{file_sha256}, not the signed {resources[_SINGLE_FILE]}: the file was "
            "modified after signing. Nothing was unpickled; get the file and its "
            "signature again from their author.",
            member=source, expected=resources[_SINGLE_FILE], found=file_sha256,
        )
