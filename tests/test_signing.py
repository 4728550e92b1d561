"""Tests for manifest signing (``safemodel.io.signing``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safemodel.errors import IntegrityError, SafeModelError
from safemodel.io.signing import (
    SIGNATURE_MEMBER,
    SIGNING_KEY_ENV,
    HmacKey,
    SigningKeyError,
    key_id,
    parse_key,
    sign_manifest,
    verify_manifest,
)
from safemodel.io.trust import signing_key_for_save

MANIFEST = json.dumps(
    {"format_version": 1, "name": "churn", "members": {"estimator.pkl": {"sha256": "ab" * 32}}},
    indent=1,
).encode()
SECRET = "correct horse battery staple"
KEY = HmacKey(SECRET)


@pytest.fixture(scope="module")
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _pem(key: Ed25519PrivateKey, *, public: bool) -> bytes:
    if public:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _flip_one_byte(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


# --------------------------------------------------------------------------------------
# HMAC


@pytest.mark.parametrize("key", [SECRET, SECRET.encode(), "ключ-секрет"])
def test_hmac_round_trip(key: str | bytes) -> None:
    signature = sign_manifest(MANIFEST, HmacKey(key))

    verify_manifest(MANIFEST, signature, HmacKey(key))
    content = json.loads(signature)
    assert content["algorithm"] == "hmac-sha256"
    secret = key.encode() if isinstance(key, str) else key
    assert content["signature"] == hmac.new(secret, MANIFEST, hashlib.sha256).hexdigest()
    assert set(content) == {"algorithm", "signature"}


def test_str_and_utf8_bytes_are_the_same_secret() -> None:
    verify_manifest(MANIFEST, sign_manifest(MANIFEST, KEY), HmacKey(SECRET.encode()))


def test_the_secret_never_appears_in_the_signature() -> None:
    signature = sign_manifest(MANIFEST, KEY)

    assert SECRET.encode() not in signature
    assert SECRET.encode().hex().encode() not in signature
    assert hashlib.sha256(SECRET.encode()).hexdigest().encode() not in signature


def test_wrong_hmac_key_is_refused() -> None:
    signature = sign_manifest(MANIFEST, KEY)

    with pytest.raises(IntegrityError, match="different key or modified after signing") as exc:
        verify_manifest(MANIFEST, signature, HmacKey(SECRET + "!"))
    assert exc.value.member == SIGNATURE_MEMBER


@pytest.mark.parametrize("position", [0, len(MANIFEST) // 2, len(MANIFEST) - 1])
def test_manifest_tampered_by_one_byte_is_refused(position: int) -> None:
    signature = sign_manifest(MANIFEST, KEY)

    with pytest.raises(IntegrityError, match="modified after signing"):
        verify_manifest(_flip_one_byte(MANIFEST, position), signature, KEY)


def test_signature_tampered_by_one_bit_is_refused() -> None:
    content = json.loads(sign_manifest(MANIFEST, KEY))
    digest = bytes.fromhex(content["signature"])
    content["signature"] = _flip_one_byte(digest, 5).hex()

    with pytest.raises(IntegrityError, match="does not match"):
        verify_manifest(MANIFEST, json.dumps(content).encode(), KEY)


def test_missing_signature_is_refused() -> None:
    with pytest.raises(IntegrityError, match="unsigned but a signing key was given") as exc:
        verify_manifest(MANIFEST, None, KEY)
    assert exc.value.member == SIGNATURE_MEMBER
    assert exc.value.expected == "hmac-sha256"
    assert SECRET not in str(exc.value)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"{}",
        b'{"algorithm": "hmac-sha256"}',
        b'{"algorithm": "hmac-sha256", "signature": 12}',
        b'{"algorithm": "hmac-sha256", "signature": "zz"}',
        b'{"algorithm": "none", "signature": ""}',
        b'{"algorithm": "HS256", "signature": "00"}',
        b'{"algorithm": "ed25519", "signature": "00", "public_key": 5}',
    ],
)
def test_malformed_signature_files_are_refused(signature: bytes) -> None:
    with pytest.raises(IntegrityError, match=f"{SIGNATURE_MEMBER} is malformed") as exc:
        verify_manifest(MANIFEST, signature, KEY)
    assert exc.value.member == SIGNATURE_MEMBER


@pytest.mark.parametrize("key", ["", b"", "   "])
def test_empty_hmac_keys_are_refused(key: str | bytes) -> None:
    with pytest.raises(SigningKeyError, match="empty") as exc:
        HmacKey(key)
    assert isinstance(exc.value, SafeModelError)
    assert isinstance(exc.value, ValueError)
    with pytest.raises(SigningKeyError, match="empty"):
        verify_manifest(MANIFEST, b"{}", b"hmac:" + (key.encode() if isinstance(key, str) else key))


@pytest.mark.parametrize("key", [42, None, ["secret"]])
def test_unsupported_key_types_are_refused(key: object) -> None:
    with pytest.raises(SigningKeyError, match="must be an HmacKey"):
        sign_manifest(MANIFEST, key)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Ed25519


def test_ed25519_sign_with_private_verify_with_public(private_key: Ed25519PrivateKey) -> None:
    signature = sign_manifest(MANIFEST, private_key)

    verify_manifest(MANIFEST, signature, private_key.public_key())
    verify_manifest(MANIFEST, signature, private_key)
    content = json.loads(signature)
    assert content["algorithm"] == "ed25519"
    assert content["public_key"] == hashlib.sha256(_raw_public(private_key)).hexdigest()
    assert set(content) == {"algorithm", "public_key", "signature"}


def test_ed25519_private_key_never_appears(private_key: Ed25519PrivateKey) -> None:
    raw = private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    signature = sign_manifest(MANIFEST, private_key)

    assert raw not in signature
    assert raw.hex().encode() not in signature


@pytest.mark.parametrize("as_text", [False, True])
def test_ed25519_keys_as_pem(private_key: Ed25519PrivateKey, as_text: bool) -> None:
    private_pem, public_pem = _pem(private_key, public=False), _pem(private_key, public=True)
    if as_text:
        signature = sign_manifest(MANIFEST, private_pem.decode())
        verify_manifest(MANIFEST, signature, public_pem.decode())
    else:
        signature = sign_manifest(MANIFEST, private_pem)
        verify_manifest(MANIFEST, signature, public_pem)

    verify_manifest(MANIFEST, signature, private_key.public_key())


def test_ed25519_wrong_key_names_both_keys(private_key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.generate()
    signature = sign_manifest(MANIFEST, private_key)

    with pytest.raises(IntegrityError, match="different key or modified after signing") as exc:
        verify_manifest(MANIFEST, signature, other.public_key())
    signer = hashlib.sha256(_raw_public(private_key)).hexdigest()
    assert exc.value.found == signer
    assert exc.value.expected == hashlib.sha256(_raw_public(other)).hexdigest()
    assert signer in str(exc.value)


def test_ed25519_tampered_manifest_is_refused(private_key: Ed25519PrivateKey) -> None:
    signature = sign_manifest(MANIFEST, private_key)

    with pytest.raises(IntegrityError, match="modified after signing"):
        verify_manifest(_flip_one_byte(MANIFEST, 10), signature, private_key.public_key())


def test_ed25519_public_key_cannot_sign(private_key: Ed25519PrivateKey) -> None:
    with pytest.raises(SigningKeyError, match="public key can verify a bundle but not sign"):
        sign_manifest(MANIFEST, private_key.public_key())  # type: ignore[arg-type]


def test_unreadable_pem_is_refused() -> None:
    pem = b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"
    with pytest.raises(SigningKeyError, match="PEM"):
        sign_manifest(MANIFEST, pem)


# --------------------------------------------------------------------------------------
# The algorithm comes from the verifier's key, never from the signature file.


def test_hmac_signature_refused_by_an_ed25519_key(private_key: Ed25519PrivateKey) -> None:
    signature = sign_manifest(MANIFEST, KEY)

    with pytest.raises(IntegrityError, match="signed with 'hmac-sha256'") as exc:
        verify_manifest(MANIFEST, signature, private_key.public_key())
    assert (exc.value.expected, exc.value.found) == ("ed25519", "hmac-sha256")


def test_ed25519_signature_refused_by_an_hmac_key(private_key: Ed25519PrivateKey) -> None:
    signature = sign_manifest(MANIFEST, private_key)

    with pytest.raises(IntegrityError, match="signed with 'ed25519'"):
        verify_manifest(MANIFEST, signature, KEY)


def test_hmac_forged_with_the_public_key_is_refused(private_key: Ed25519PrivateKey) -> None:
    # The classic algorithm-confusion forgery: the public key is public, so anyone
    # can compute an HMAC with it as the secret. A verifier holding the public key
    # as PEM text must still demand an Ed25519 signature.
    public_pem = _pem(private_key, public=True)
    forged = json.dumps(
        {
            "algorithm": "hmac-sha256",
            "signature": hmac.new(public_pem, MANIFEST, hashlib.sha256).hexdigest(),
        }
    ).encode()

    with pytest.raises(IntegrityError, match="signed with 'hmac-sha256'"):
        verify_manifest(MANIFEST, forged, public_pem)


# --------------------------------------------------------------------------------------
# Key resolution and the optional dependency.


def test_the_save_key_prefers_the_explicit_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "hmac:from-env")
    explicit = HmacKey(b"explicit")

    assert signing_key_for_save(explicit) is explicit


def test_the_save_key_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "hmac:from-env")

    key = signing_key_for_save(None)
    assert isinstance(key, HmacKey)
    verify_manifest(MANIFEST, sign_manifest(MANIFEST, key), HmacKey("from-env"))


@pytest.mark.parametrize("value", [None, ""])
def test_without_key_or_environment_the_save_key_is_the_users_own(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(SIGNING_KEY_ENV, value)

    key = signing_key_for_save(None, home=tmp_path)
    assert key_id(key) == key_id(signing_key_for_save(None, home=tmp_path))
    assert (tmp_path / "signing-key.pem").exists()


def test_importing_signing_does_not_import_cryptography() -> None:
    code = "import sys, safemodel.io.signing; print('cryptography' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"


def test_missing_cryptography_says_it_is_a_dependency(
    monkeypatch: pytest.MonkeyPatch, private_key: Ed25519PrivateKey
) -> None:
    pem = _pem(private_key, public=False)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.asymmetric", None)

    with pytest.raises(ImportError, match="dependency of safemodel"):
        sign_manifest(MANIFEST, pem)
    # HMAC needs nothing extra.
    verify_manifest(MANIFEST, sign_manifest(MANIFEST, KEY), KEY)


# --------------------------------------------------------------------------------------
# Key types are explicit: PEM variants never become HMAC secrets.


def _pem_variants(pem: bytes) -> list[bytes]:
    return [
        b"\xef\xbb\xbf" + pem,  # a UTF-8 byte-order mark
        b"Publisher key for the churn models\n\n" + pem,  # RFC 7468 explanatory text
        pem.replace(b"\n", b"\r\n"),  # Windows line ends
        b"  \n" + pem,
    ]


@pytest.mark.parametrize("variant", range(4))
@pytest.mark.parametrize("as_text", [False, True])
def test_pem_variants_parse_as_the_public_key_and_cannot_forge(
    private_key: Ed25519PrivateKey, variant: int, as_text: bool
) -> None:
    public = _pem_variants(_pem(private_key, public=True))[variant]
    key: str | bytes = public.decode("utf-8") if as_text else public
    assert key_id(parse_key(key)) == key_id(private_key)  # type: ignore[arg-type]
    verify_manifest(MANIFEST, sign_manifest(MANIFEST, private_key), key)
    # The forgery of issue 13: an HMAC made with the public key's own text.
    forged = json.dumps({"algorithm": "hmac-sha256", "signature": hmac.new(
        public, MANIFEST, hashlib.sha256).hexdigest()}).encode()
    with pytest.raises(IntegrityError, match="signed with 'hmac-sha256'"):
        verify_manifest(MANIFEST, forged, key)


@pytest.mark.parametrize("variant", range(4))
def test_private_pem_variants_sign(private_key: Ed25519PrivateKey, variant: int) -> None:
    private = _pem_variants(_pem(private_key, public=False))[variant]
    verify_manifest(MANIFEST, sign_manifest(MANIFEST, private), private_key.public_key())


def test_no_hmac_key_can_be_made_from_public_key_material(
    private_key: Ed25519PrivateKey,
) -> None:
    pem = _pem(private_key, public=True)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    openssh = private_key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    for material in [*_pem_variants(pem), pem.decode(), der, openssh, b"note\n" + openssh]:
        with pytest.raises(SigningKeyError, match="public-key material"):
            HmacKey(material)
        raw = material.encode() if isinstance(material, str) else material
        with pytest.raises(SigningKeyError, match="public-key material"):
            parse_key(b"hmac:" + raw)


@pytest.mark.parametrize(
    "text", ["team-secret", b"team-secret", "PUBLIC KEY", "-----BEGIN", b"\xef\xbb\xbfsecret"]
)
def test_text_in_neither_form_is_refused_not_guessed(text: str | bytes) -> None:
    with pytest.raises(SigningKeyError, match="neither form|PEM"):
        parse_key(text)


def test_broken_or_foreign_pem_is_refused_never_hmac() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    # P-256/384/521 are accepted key types now; secp256k1 stays foreign.
    ec_pem = ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for pem in [ec_pem, b"-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n",
                b"-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"]:
        with pytest.raises(SigningKeyError):
            verify_manifest(MANIFEST, sign_manifest(MANIFEST, KEY), pem)


def test_hmac_key_repr_hides_the_secret() -> None:
    assert SECRET not in repr(KEY)
    assert HmacKey(SECRET.encode()) == KEY


def test_signatures_of_the_current_format_keep_verifying(
    private_key: Ed25519PrivateKey,
) -> None:
    # signature.json as written before this change (same bytes for both algorithms).
    old_hmac = (json.dumps({"algorithm": "hmac-sha256", "signature": hmac.new(
        SECRET.encode(), MANIFEST, hashlib.sha256).hexdigest()}, indent=1) + "\n").encode()
    old_ed = (json.dumps({"algorithm": "ed25519", "public_key": hashlib.sha256(
        _raw_public(private_key)).hexdigest(), "signature": private_key.sign(MANIFEST).hex()},
        indent=1) + "\n").encode()

    verify_manifest(MANIFEST, old_hmac, KEY)
    verify_manifest(MANIFEST, old_ed, private_key.public_key())
    assert sign_manifest(MANIFEST, KEY) == old_hmac
    assert sign_manifest(MANIFEST, private_key) == old_ed
