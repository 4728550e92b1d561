"""Signing a bundle's manifest, so a loader can prove who wrote the bundle.

``manifest.json`` holds the SHA-256 of every other archive member, so signing the
manifest bytes signs the whole bundle. The signature is stored in the archive
member ``signature.json``::

    {"algorithm": "ed25519", "public_key": "<sha256 of the raw public key>",
     "signature": "<hex>"}

Two kinds of key:

* an HMAC secret, ``str`` (UTF-8) or ``bytes``: ``"hmac-sha256"``. Whoever can
  verify can also sign, so it suits one team that builds and serves its own models.
  The signature carries nothing about the secret, not even a hash of it.
* an Ed25519 key from the optional ``cryptography`` package
  (``pip install "safemodel[sign]"``): ``"ed25519"``. Sign with an
  ``Ed25519PrivateKey``; verify with its ``Ed25519PublicKey`` (or the private key).
  Either may also be given PEM-encoded, as ``str`` or ``bytes``.

The algorithm is decided by the key the *verifier* holds, never by the signature
file, and PEM text is always read as an Ed25519 key: otherwise a forger who knows a
public key could present an HMAC made with that public key as the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import TYPE_CHECKING, Any, Final, TypeAlias, TypeVar

from safemodel.errors import IntegrityError, SafeModelError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "SIGNATURE_MEMBER",
    "SIGNING_KEY_ENV",
    "SigningKey",
    "SigningKeyError",
    "VerifyKey",
    "resolve_key",
    "sign_manifest",
    "verify_manifest",
]

#: A key that can sign: an HMAC secret, an Ed25519 private key, or its PEM text.
SigningKey: TypeAlias = "str | bytes | Ed25519PrivateKey"
#: A key that can verify: any signing key, or an Ed25519 public key.
VerifyKey: TypeAlias = "str | bytes | Ed25519PrivateKey | Ed25519PublicKey"

#: The environment variable read when no key is passed: an HMAC secret (or PEM text).
SIGNING_KEY_ENV: Final = "SAFEMODEL_SIGNING_KEY"
#: The archive member that holds the signature.
SIGNATURE_MEMBER: Final = "signature.json"

_HMAC: Final = "hmac-sha256"
_ED25519: Final = "ed25519"
_ALGORITHMS: Final = (_HMAC, _ED25519)
_PEM_START: Final = b"-----BEGIN "
_INSTALL_HINT: Final = 'pip install "safemodel[sign]"'

_Key = TypeVar("_Key", bound="VerifyKey")


class SigningKeyError(SafeModelError, ValueError):
    """A signing key that cannot be used.

    It is empty, of an unsupported type, unreadable PEM, or a public key given
    where a private key is needed.
    """


def resolve_key(key: _Key | None) -> _Key | str | None:
    """Return the key to use: ``key`` if given, else ``$SAFEMODEL_SIGNING_KEY``.

    Parameters
    ----------
    key : str, bytes, Ed25519 key or None
        The key the caller passed.

    Returns
    -------
    str, bytes, Ed25519 key or None
        ``key`` unchanged when it is not ``None``; otherwise the value of the
        environment variable ``SAFEMODEL_SIGNING_KEY`` when it is set and not empty
        (an HMAC secret, or PEM text of an Ed25519 key); otherwise ``None``.

    Examples
    --------
    >>> resolve_key("team-secret")
    'team-secret'
    """
    if key is not None:
        return key
    return os.environ.get(SIGNING_KEY_ENV) or None


def sign_manifest(manifest: bytes, key: SigningKey) -> bytes:
    """Sign a bundle's manifest; return the content of ``signature.json``.

    Parameters
    ----------
    manifest : bytes
        The exact bytes of ``manifest.json`` as stored in the archive.
    key : str, bytes or Ed25519PrivateKey
        An HMAC secret (``str`` is encoded as UTF-8), an Ed25519 private key, or
        the PEM text of one.

    Returns
    -------
    bytes
        UTF-8 JSON with ``algorithm``, ``signature`` (hex) and, for Ed25519,
        ``public_key`` (SHA-256 hex of the raw public key, to tell keys apart).
        The secret is never included.

    Raises
    ------
    SigningKeyError
        If the key is empty, of an unsupported type, or an Ed25519 *public* key.
    ImportError
        If an Ed25519 key is given but ``cryptography`` is not installed.

    Examples
    --------
    >>> signature = sign_manifest(b'{"name": "churn"}', "team-secret")
    >>> json.loads(signature)["algorithm"]
    'hmac-sha256'
    """
    algorithm, material = _key_material(key)
    content: dict[str, str]
    if algorithm == _HMAC:
        content = {"algorithm": _HMAC, "signature": _hmac_digest(material, manifest).hex()}
    else:
        ed25519 = _ed25519()
        if not isinstance(material, ed25519.Ed25519PrivateKey):
            raise SigningKeyError(
                "An Ed25519 public key can verify a bundle but not sign it; pass the "
                "Ed25519PrivateKey (or its PEM text) to sign."
            )
        content = {
            "algorithm": _ED25519,
            "public_key": _fingerprint(material.public_key()),
            "signature": material.sign(manifest).hex(),
        }
    return (json.dumps(content, indent=1) + "\n").encode()


def verify_manifest(manifest: bytes, signature: bytes | None, key: VerifyKey) -> None:
    """Check that ``signature.json`` is a valid signature of the manifest by ``key``.

    Parameters
    ----------
    manifest : bytes
        The exact bytes of ``manifest.json`` as read from the archive.
    signature : bytes or None
        The content of ``signature.json``, or ``None`` if the archive has none.
    key : str, bytes, Ed25519PrivateKey or Ed25519PublicKey
        The key the bundle must be signed with. Its type decides the algorithm.

    Raises
    ------
    IntegrityError
        With ``member="signature.json"``, if the bundle is unsigned, the signature
        file is malformed, uses the other algorithm, or does not match: the bundle
        was signed with a different key or modified after signing.
    SigningKeyError
        If the key is empty or of an unsupported type.
    ImportError
        If an Ed25519 key is given but ``cryptography`` is not installed.

    Examples
    --------
    >>> manifest = b'{"name": "churn"}'
    >>> verify_manifest(manifest, sign_manifest(manifest, "team-secret"), "team-secret")
    """
    algorithm, material = _key_material(key)
    if signature is None:
        raise IntegrityError(
            f"The bundle is unsigned but a signing key was given: expected a "
            f"{SIGNATURE_MEMBER} made with {algorithm}. It was saved without a key, or "
            f"its signature was removed. Ask its author for a signed bundle, or load it "
            f"without a key (and without ${SIGNING_KEY_ENV}) if you trust it unsigned.",
            member=SIGNATURE_MEMBER,
            expected=algorithm,
            found=None,
        )
    content = _parse_signature(signature)
    if content["algorithm"] != algorithm:
        raise IntegrityError(
            f"The bundle is signed with {content['algorithm']!r} but the key given is "
            f"for {algorithm!r} ({_describe_key(algorithm)}). Pass the key the bundle "
            f"was signed with.",
            member=SIGNATURE_MEMBER,
            expected=algorithm,
            found=content["algorithm"],
        )
    digest = content["signature"]
    if algorithm == _HMAC:
        valid = hmac.compare_digest(_hmac_digest(material, manifest), digest)
        expected_key = found_key = None
    else:
        public_key = material if _is_public(material) else material.public_key()
        valid = _ed25519_valid(public_key, digest, manifest)
        expected_key, found_key = _fingerprint(public_key), content.get("public_key")
    if not valid:
        which = (
            f" It names public key {found_key}, the key given is {expected_key}."
            if found_key is not None and found_key != expected_key
            else ""
        )
        raise IntegrityError(
            "The bundle's signature does not match its manifest: it was signed with a "
            f"different key or modified after signing.{which} Do not use this bundle "
            "unless you can get it again from its author.",
            member=SIGNATURE_MEMBER,
            expected=expected_key,
            found=found_key,
        )


def _key_material(key: VerifyKey) -> tuple[str, Any]:
    # Returns the algorithm and what it needs: the secret bytes, or a cryptography key.
    if isinstance(key, str | bytes):
        raw = key.encode("utf-8") if isinstance(key, str) else key
        if raw.lstrip().startswith(_PEM_START):
            return _ED25519, _load_pem(raw)
        if not raw.strip():
            raise SigningKeyError(
                "The HMAC signing key is empty; an empty secret proves nothing. Pass a "
                f"long random secret, or set ${SIGNING_KEY_ENV}."
            )
        return _HMAC, raw
    try:
        ed25519 = _ed25519()
    except ImportError:
        ed25519 = None
    if ed25519 is not None and isinstance(
        key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey
    ):
        return _ED25519, key
    raise SigningKeyError(
        f"A signing key must be an HMAC secret (str or bytes), an Ed25519PrivateKey or "
        f"Ed25519PublicKey from the cryptography package, or PEM text of one; got "
        f"{type(key).__name__} instead."
    )


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise ImportError(
            f"Ed25519 signing keys need the optional 'cryptography' package: "
            f"{_INSTALL_HINT}. An HMAC secret (str or bytes) needs nothing extra."
        ) from exc
    return ed25519


def _load_pem(pem: bytes) -> Any:
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization

    key: object
    try:
        if b"PUBLIC KEY" in pem.lstrip().split(b"\n", 1)[0]:
            key = serialization.load_pem_public_key(pem)
        else:
            key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        # Also raised for an encrypted private key: this API takes no password.
        raise SigningKeyError(
            f"The signing key looks like PEM text but cannot be read as an unencrypted "
            f"Ed25519 key: {exc}"
        ) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        raise SigningKeyError(
            f"The PEM signing key is a {type(key).__name__}; safemodel signs with "
            "Ed25519 keys only (Ed25519PrivateKey.generate())."
        )
    return key


def _is_public(key: Any) -> bool:
    return isinstance(key, _ed25519().Ed25519PublicKey)


def _ed25519_valid(public_key: Any, signature: bytes, manifest: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public_key.verify(signature, manifest)
    except InvalidSignature:
        return False
    return True


def _fingerprint(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _hmac_digest(secret: bytes, manifest: bytes) -> bytes:
    return hmac.new(secret, manifest, hashlib.sha256).digest()


def _describe_key(algorithm: str) -> str:
    return "an HMAC secret" if algorithm == _HMAC else "an Ed25519 key"


def _parse_signature(signature: bytes) -> dict[str, Any]:
    def malformed(reason: str) -> IntegrityError:
        return IntegrityError(
            f"{SIGNATURE_MEMBER} is malformed ({reason}); the bundle's signature cannot "
            "be checked. The file was damaged or edited; get the bundle again from its "
            "author.",
            member=SIGNATURE_MEMBER,
            found=reason,
        )

    try:
        content = json.loads(signature.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(f"not UTF-8 JSON: {exc}") from exc
    if not isinstance(content, dict):
        raise malformed(f"expected a JSON object, found {type(content).__name__}")
    algorithm = content.get("algorithm")
    if algorithm not in _ALGORITHMS:
        raise malformed(f"'algorithm' must be one of {list(_ALGORITHMS)}, found {algorithm!r}")
    hex_signature = content.get("signature")
    if not isinstance(hex_signature, str):
        raise malformed(f"'signature' must be a hex string, found {hex_signature!r}")
    try:
        digest = bytes.fromhex(hex_signature)
    except ValueError as exc:
        raise malformed(f"'signature' is not hex: {hex_signature[:80]!r}") from exc
    public_key = content.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise malformed(f"'public_key' must be a hex string, found {public_key!r}")
    return {"algorithm": algorithm, "signature": digest, "public_key": public_key}
