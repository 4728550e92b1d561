"""Signing a bundle's manifest, so a loader can prove who wrote the bundle.

``manifest.json`` holds the SHA-256 of every other archive member, so signing the
manifest bytes signs the whole bundle. The signature is stored in the archive
member ``signature.json``::

    {"algorithm": "ed25519", "public_key": "<key id>", "signature": "<hex>"}

Two kinds of key, and the kind is always explicit:

* :class:`HmacKey` wraps a shared secret: ``"hmac-sha256"``. Whoever can verify can
  also sign, so it suits one team that builds and serves its own models. The
  signature carries nothing about the secret, not even a hash of it.
* an Ed25519 key from ``cryptography``: ``"ed25519"``. Sign with an
  ``Ed25519PrivateKey`` (every user has one, see :mod:`safemodel.io.keys`); verify
  with its ``Ed25519PublicKey``. The signature names the signer by its key id, the
  SHA-256 hex of the raw 32-byte public key (:func:`key_id`).
* an ECDSA key on NIST P-256 (``"ecdsa-p256"``, the one safemodel creates), P-384 or
  P-521 (``"ecdsa-p384"``, ``"ecdsa-p521"``): the key type OpenSSF model signing
  accepts (see :mod:`safemodel.io.model_signing`). Signed with SHA-256, SHA-384 and
  SHA-512 respectively, as model signing does; its key id is the SHA-256 hex of the
  public key's PEM (SubjectPublicKeyInfo), which is also the ``hint`` that model
  signing writes, so one id names the key in both formats.

Text (``str`` or ``bytes``: an argument, ``$SAFEMODEL_SIGNING_KEY``, a CLI option)
is read by :func:`parse_key` in exactly two forms: ``"hmac:<secret>"``, or a PEM
document (a UTF-8 byte-order mark and explanatory text before the armour are
allowed, as RFC 7468 allows them). Anything else is refused; nothing is guessed.
An :class:`HmacKey` refuses public-key material as its secret, so no HMAC key can
be made from a key everybody may know. The algorithm is decided by the key the
*verifier* holds, never by the signature file.

Signatures written by earlier versions (the same ``signature.json`` form, HMAC or
Ed25519) keep verifying.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from safemodel.errors import IntegrityError, SigningKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ECDSA_P256",
    "ECDSA_P384",
    "ECDSA_P521",
    "ED25519",
    "HMAC_PREFIX",
    "HMAC_SHA256",
    "SIGNATURE_MEMBER",
    "SIGNING_KEY_ENV",
    "HmacKey",
    "Signature",
    "SigningKey",
    "SigningKeyError",
    "VerifyKey",
    "key_id",
    "key_type",
    "load_pem_key",
    "parse_key",
    "public_key_valid",
    "public_pem",
    "read_signature",
    "short_key_id",
    "sign_bytes",
    "sign_manifest",
    "signature_valid",
    "verify_manifest",
]

#: A key that can sign: an HMAC key, an Ed25519 or ECDSA private key, or text for
#: :func:`parse_key`.
SigningKey: TypeAlias = "HmacKey | Ed25519PrivateKey | EllipticCurvePrivateKey | str | bytes"
#: A key that can verify: any signing key, or an Ed25519 or ECDSA public key.
VerifyKey: TypeAlias = (
    "HmacKey | Ed25519PrivateKey | Ed25519PublicKey | EllipticCurvePrivateKey"
    " | EllipticCurvePublicKey | str | bytes"
)

#: The environment variable read when no key is passed (``"hmac:<secret>"`` or PEM).
SIGNING_KEY_ENV: Final = "SAFEMODEL_SIGNING_KEY"
#: The archive member that holds the signature.
SIGNATURE_MEMBER: Final = "signature.json"
#: The prefix that marks text as an HMAC secret (``"hmac:team-secret"``).
HMAC_PREFIX: Final = "hmac:"
#: The ``algorithm`` values of ``signature.json``.
HMAC_SHA256: Final = "hmac-sha256"
ED25519: Final = "ed25519"
ECDSA_P256: Final = "ecdsa-p256"
ECDSA_P384: Final = "ecdsa-p384"
ECDSA_P521: Final = "ecdsa-p521"

_ALGORITHMS: Final = (HMAC_SHA256, ED25519, ECDSA_P256, ECDSA_P384, ECDSA_P521)
# The curves OpenSSF model signing accepts, by cryptography's curve name.
_EC_CURVES: Final = {"secp256r1": ECDSA_P256, "secp384r1": ECDSA_P384,
                     "secp521r1": ECDSA_P521}
_BOM: Final = b"\xef\xbb\xbf"
# RFC 7468 armour: the label line; text before it is explanatory and ignored.
_ARMOUR: Final = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
# What public keys look like in the formats people paste: PEM armour, OpenSSH lines.
_PUBLIC_MATERIAL: Final = re.compile(
    rb"-----(BEGIN|END) |\b(ssh-ed25519|ecdsa-sha2-|ssh-rsa) ", re.IGNORECASE
)
_SHORT_ID: Final = 16


@dataclass(frozen=True)
class HmacKey:
    """A shared HMAC-SHA256 secret, named as such so nothing has to guess.

    Parameters
    ----------
    secret : str or bytes
        The secret (``str`` is encoded as UTF-8). It must not be empty and must not
        be public-key material (PEM armour, an OpenSSH public key line, or DER that
        parses as a public key): a verifier's public key is public, so an HMAC made
        with it proves nothing.

    Raises
    ------
    SigningKeyError
        If the secret is empty, not text, or public-key material.

    Examples
    --------
    >>> HmacKey("team-secret")
    HmacKey(<secret>)
    """

    secret: bytes = field(repr=False)

    def __init__(self, secret: str | bytes) -> None:
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        if not isinstance(secret, bytes):
            raise SigningKeyError(
                f"An HMAC secret must be str or bytes; got {type(secret).__name__} instead."
            )
        if not secret.strip():
            raise SigningKeyError(
                "The HMAC signing key is empty; an empty secret proves nothing. Pass a "
                f"long random secret, or set ${SIGNING_KEY_ENV}={HMAC_PREFIX}<secret>."
            )
        if _PUBLIC_MATERIAL.search(secret) or _is_der_public_key(secret):
            raise SigningKeyError(
                "The HMAC secret is public-key material (PEM, OpenSSH or DER); anyone who "
                "knows the public key could forge its signatures. To verify with a public "
                "key pass the key itself (load_pem_key(text)), not HmacKey(text)."
            )
        object.__setattr__(self, "secret", secret)

    def __repr__(self) -> str:
        return "HmacKey(<secret>)"


@dataclass(frozen=True)
class Signature:
    """The parsed content of ``signature.json``.

    ``key_id`` is the signer's key id for Ed25519 (as the file claims it; only a
    successful verification proves it) and ``None`` for HMAC.
    """

    algorithm: str
    digest: bytes = field(repr=False)
    key_id: str | None


def parse_key(key: Any) -> Any:
    """Return ``key`` as an :class:`HmacKey` or a ``cryptography`` Ed25519 or ECDSA key.

    Parameters
    ----------
    key : HmacKey, Ed25519 or ECDSA key, str or bytes
        Key objects are returned as they are (an ECDSA key must be on a curve
        :func:`key_type` accepts). Text must be ``"hmac:<secret>"`` or a
        PEM document (see :func:`load_pem_key`); nothing else is accepted, so text
        is never silently taken for an HMAC secret.

    Returns
    -------
    HmacKey, or an Ed25519 or ECDSA private or public key

    Raises
    ------
    SigningKeyError
        If the key is of another type, or text in neither form.

    Examples
    --------
    >>> parse_key("hmac:team-secret")
    HmacKey(<secret>)
    """
    if isinstance(key, HmacKey):
        return key
    if isinstance(key, str | bytes):
        raw = key.encode("utf-8") if isinstance(key, str) else key
        raw = raw.removeprefix(_BOM)
        if raw.startswith(HMAC_PREFIX.encode()):
            return HmacKey(raw[len(HMAC_PREFIX) :])
        if _ARMOUR.search(raw):
            return load_pem_key(raw)
        raise SigningKeyError(
            f"A key given as text must be {HMAC_PREFIX!r} followed by an HMAC secret, or "
            "a PEM document of an Ed25519 or ECDSA key; got text in neither form (not shown, it "
            "may be a secret). In Python, pass HmacKey(secret) or the key object."
        )
    if _is_asymmetric(key):
        key_type(key)  # refuses an elliptic curve model signing does not accept
        return key
    raise SigningKeyError(
        "A signing key must be an HmacKey, an Ed25519 or ECDSA (P-256, P-384, P-521) "
        "private or public key from the cryptography package, or text for parse_key; "
        f"got {type(key).__name__} instead."
    )


def load_pem_key(pem: str | bytes) -> Any:
    """Read an Ed25519 or ECDSA private or public key from a PEM document.

    A UTF-8 byte-order mark and explanatory text before the armour are skipped (RFC
    7468 section 2); the armour's label decides private or public.

    Parameters
    ----------
    pem : str or bytes
        The document, e.g. the content of a ``.pem`` file.

    Returns
    -------
    Ed25519PrivateKey, Ed25519PublicKey, EllipticCurvePrivateKey or EllipticCurvePublicKey

    Raises
    ------
    SigningKeyError
        If there is no PEM armour, it cannot be read, the private key is encrypted,
        or the key is neither Ed25519 nor ECDSA on P-256, P-384 or P-521.
    """
    raw = pem.encode("utf-8") if isinstance(pem, str) else pem
    raw = raw.removeprefix(_BOM)
    armour = _ARMOUR.search(raw)
    if armour is None:
        raise SigningKeyError(
            "Expected a PEM document ('-----BEGIN PUBLIC KEY-----' ...); found no PEM "
            "armour. Export the key with `safemodel keys show`."
        )
    _ed25519()  # a clear ImportError if cryptography is missing
    from cryptography.hazmat.primitives import serialization

    label, body = armour.group(1).decode(), raw[armour.start() :]
    if label not in ("PUBLIC KEY", "PRIVATE KEY", "OPENSSH PRIVATE KEY", "EC PRIVATE KEY"):
        raise SigningKeyError(
            f"The PEM document cannot be read as an unencrypted Ed25519 key: the armour "
            f"label is {label!r}, not 'PUBLIC KEY' or 'PRIVATE KEY'. Export the key with "
            "`safemodel keys show`."
        )
    key: object
    try:
        if label == "PUBLIC KEY":
            key = serialization.load_pem_public_key(body)
        else:
            key = (
                serialization.load_ssh_private_key(body, password=None)
                if label.startswith("OPENSSH")
                else serialization.load_pem_private_key(body, password=None)
            )
    except (ValueError, TypeError) as exc:
        # Also raised for an encrypted private key: this API takes no password.
        raise SigningKeyError(
            f"The PEM document cannot be read as an unencrypted Ed25519 key: {exc}"
        ) from exc
    if not _is_asymmetric(key):
        raise SigningKeyError(
            f"The PEM key is a {type(key).__name__}; safemodel signs with Ed25519 and "
            "ECDSA (P-256, P-384, P-521) keys only (`safemodel keys show` prints yours)."
        )
    key_type(key)  # refuses another elliptic curve
    return key


def key_id(key: Any) -> str:
    """The key id of a public-key pair, the same for its private and public half.

    For Ed25519 the SHA-256 hex of the raw 32-byte public key; for ECDSA the SHA-256
    hex of the public key's PEM (SubjectPublicKeyInfo), which is the ``hint`` that
    OpenSSF model signing records in a signature.

    Raises
    ------
    SigningKeyError
        If the key is neither Ed25519 nor ECDSA on an accepted curve.

    Examples
    --------
    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> len(key_id(Ed25519PrivateKey.generate()))
    64
    """
    from cryptography.hazmat.primitives import serialization

    if key_type(key) != ED25519:
        return hashlib.sha256(public_pem(key).encode("ascii")).hexdigest()
    public: Any = key if _is_public(key) else key.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def key_type(key: Any) -> str:
    """The key type of a key object: decided by its class, never by text.

    Returns
    -------
    str
        ``"hmac-sha256"``, ``"ed25519"``, ``"ecdsa-p256"``, ``"ecdsa-p384"`` or
        ``"ecdsa-p521"`` (also the ``algorithm`` its signatures carry).

    Raises
    ------
    SigningKeyError
        If ``key`` is of another type, or an ECDSA key on another curve.

    Examples
    --------
    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> key_type(ec.generate_private_key(ec.SECP256R1()))
    'ecdsa-p256'
    """
    if isinstance(key, HmacKey):
        return HMAC_SHA256
    ed25519 = _ed25519()
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return ED25519
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        found = _EC_CURVES.get(key.curve.name)
        if found is None:
            raise SigningKeyError(
                f"The ECDSA key is on curve {key.curve.name!r}; safemodel (like OpenSSF "
                "model signing) accepts P-256 (secp256r1), P-384 and P-521 only. Create "
                "a key with `safemodel keys create --type ecdsa-p256`."
            )
        return found
    raise SigningKeyError(
        f"Expected an HmacKey, an Ed25519 key or an ECDSA key; got {type(key).__name__}."
    )


def short_key_id(full_id: str) -> str:
    """The form shown to people: the first 16 hex digits of a key id."""
    return full_id[:_SHORT_ID]


def public_pem(key: Any) -> str:
    """The public half of ``key`` as PEM text (SubjectPublicKeyInfo), safe to share."""
    from cryptography.hazmat.primitives import serialization

    public: Any = key if _is_public(key) else key.public_key()
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def sign_manifest(manifest: bytes, key: SigningKey) -> bytes:
    """Sign a bundle's manifest; return the content of ``signature.json``.

    Parameters
    ----------
    manifest : bytes
        The exact bytes of ``manifest.json`` as stored in the archive.
    key : HmacKey, Ed25519PrivateKey, EllipticCurvePrivateKey, str or bytes
        The key; text is read by :func:`parse_key`.

    Returns
    -------
    bytes
        UTF-8 JSON with ``algorithm`` (:func:`key_type`), ``signature`` (hex; DER for
        ECDSA) and, for Ed25519 and ECDSA, ``public_key`` (the signer's
        :func:`key_id`). The secret is never included.

    Raises
    ------
    SigningKeyError
        If the key cannot be used, or is a *public* key.

    Examples
    --------
    >>> signature = sign_manifest(b'{"name": "churn"}', HmacKey("team-secret"))
    >>> json.loads(signature)["algorithm"]
    'hmac-sha256'
    """
    material = parse_key(key)
    content: dict[str, str]
    if isinstance(material, HmacKey):
        digest = _hmac_digest(material.secret, manifest)
        content = {"algorithm": HMAC_SHA256, "signature": digest.hex()}
    elif _is_public(material):
        raise SigningKeyError(
            "A public key can verify a bundle but not sign it; pass the private key "
            "(or its PEM text) to sign."
        )
    else:
        content = {
            "algorithm": key_type(material),
            "public_key": key_id(material),
            "signature": sign_bytes(material, manifest).hex(),
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
    key : HmacKey, Ed25519 or ECDSA key, str or bytes
        The key the bundle must be signed with. Its type decides the algorithm.

    Raises
    ------
    IntegrityError
        With ``member="signature.json"``, if the bundle is unsigned, the signature
        file is malformed, uses the other algorithm, or does not match: the bundle
        was signed with a different key or modified after signing.
    SigningKeyError
        If the key cannot be used.

    Examples
    --------
    >>> manifest, key = b'{"name": "churn"}', HmacKey("team-secret")
    >>> verify_manifest(manifest, sign_manifest(manifest, key), key)
    """
    material = parse_key(key)
    algorithm = key_type(material)
    if signature is None:
        raise IntegrityError(
            f"The bundle is unsigned but a signing key was given: expected a "
            f"{SIGNATURE_MEMBER} made with {algorithm}. It was saved without a key, or "
            f"its signature was removed. Ask its author for a signed bundle.",
            member=SIGNATURE_MEMBER,
            expected=algorithm,
            found=None,
        )
    content = read_signature(signature)
    if content.algorithm != algorithm:
        raise IntegrityError(
            f"The bundle is signed with {content.algorithm!r} but the key given is "
            f"for {algorithm!r} ({_describe_key(algorithm)}). Pass the key the bundle "
            f"was signed with.",
            member=SIGNATURE_MEMBER,
            expected=algorithm,
            found=content.algorithm,
        )
    if isinstance(material, HmacKey):
        valid = hmac.compare_digest(_hmac_digest(material.secret, manifest), content.digest)
        expected_key = found_key = None
    else:
        public_key = material if _is_public(material) else material.public_key()
        valid = public_key_valid(public_key, content.digest, manifest)
        expected_key, found_key = key_id(public_key), content.key_id
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


def signature_valid(manifest: bytes, signature: Signature, key: VerifyKey) -> bool:
    """Whether ``signature`` (parsed) is a valid signature of ``manifest`` by ``key``.

    ``False`` also when the key is of the other algorithm; never raises for a
    mismatch, so a caller can try several trusted keys.
    """
    material = parse_key(key)
    if isinstance(material, HmacKey):
        return signature.algorithm == HMAC_SHA256 and hmac.compare_digest(
            _hmac_digest(material.secret, manifest), signature.digest
        )
    public_key = material if _is_public(material) else material.public_key()
    return signature.algorithm == key_type(public_key) and public_key_valid(
        public_key, signature.digest, manifest
    )


def read_signature(signature: bytes) -> Signature:
    """Parse ``signature.json``; nothing in it is trusted until verified.

    Raises
    ------
    IntegrityError
        With ``member="signature.json"``, if the content is not a well-formed
        signature of a known algorithm.
    """

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
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise malformed(f"not UTF-8 JSON: {type(exc).__name__}") from None
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
    except ValueError:
        raise malformed(f"'signature' is not hex: {hex_signature[:80]!r}") from None
    public_key = content.get("public_key")
    if public_key is not None and not isinstance(public_key, str):
        raise malformed(f"'public_key' must be a hex string, found {public_key!r}")
    return Signature(algorithm, digest, public_key if algorithm != HMAC_SHA256 else None)


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:
        raise ImportError(
            "safemodel needs the 'cryptography' package for Ed25519 keys, and it is a "
            f"dependency of safemodel: reinstall safemodel (pip install safemodel). {exc}"
        ) from exc
    return ed25519


def _is_der_public_key(data: bytes) -> bool:
    # DER SubjectPublicKeyInfo starts with a SEQUENCE tag; only then try to parse.
    if not data.startswith(b"\x30"):
        return False
    from cryptography.hazmat.primitives import serialization

    try:
        serialization.load_der_public_key(data)
    except (ValueError, TypeError):
        return False
    return True


def _is_public(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    return isinstance(key, _ed25519().Ed25519PublicKey | ec.EllipticCurvePublicKey)


def _is_asymmetric(key: Any) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    ed25519 = _ed25519()
    return isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey
                      | ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey)


def _ec_hash(key: Any) -> Any:
    # The hash model signing pairs with each curve (P-256: SHA-256, P-384: SHA-384,
    # P-521: SHA-512), so both formats sign the same way.
    from cryptography.hazmat.primitives import hashes

    size = key.curve.key_size
    return hashes.SHA256() if size == 256 else hashes.SHA384() if size == 384 else hashes.SHA512()


def sign_bytes(private_key: Any, data: bytes) -> bytes:
    """Sign ``data`` with an Ed25519 or ECDSA private key (ECDSA: DER signature)."""
    if key_type(private_key) == ED25519:
        signature: bytes = private_key.sign(data)
        return signature
    from cryptography.hazmat.primitives.asymmetric import ec

    der: bytes = private_key.sign(data, ec.ECDSA(_ec_hash(private_key)))
    return der


def public_key_valid(public_key: Any, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``data``; never raises."""
    from cryptography.exceptions import InvalidSignature

    try:
        if key_type(public_key) == ED25519:
            public_key.verify(signature, data)
        else:
            from cryptography.hazmat.primitives.asymmetric import ec

            public_key.verify(signature, data, ec.ECDSA(_ec_hash(public_key)))
    except InvalidSignature:
        return False
    return True


def _hmac_digest(secret: bytes, manifest: bytes) -> bytes:
    return hmac.new(secret, manifest, hashlib.sha256).digest()


def _describe_key(algorithm: str) -> str:
    if algorithm == HMAC_SHA256:
        return "an HMAC secret"
    return "an Ed25519 key" if algorithm == ED25519 else f"an {algorithm.upper()} key"
