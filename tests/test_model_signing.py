"""OpenSSF model signing interop: ECDSA keys, ``<bundle>.sig`` written and verified.

Checked three ways: upstream's published key-mode signatures (tests/data/model_signing,
signed by model-signing 0.3.1, 1.0.0 and 1.1.0), our own signatures, and the real
``model_signing`` CLI in a separate virtual environment, in both directions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import safemodel as sm
from model_signing_cli import key_files, model_signing_command, run_cli
from safemodel.errors import IntegrityError, UntrustedBundleError
from safemodel.io import archive
from safemodel.io import model_signing as ms
from safemodel.io.keys import (
    TRUST_STORE_FOLDER,
    default_signing_key,
    trust_add,
    trust_list,
    trusted_keys,
)
from safemodel.io.signing import (
    SIGNATURE_MEMBER,
    SigningKeyError,
    key_id,
    key_type,
    load_pem_key,
    public_pem,
    sign_manifest,
    verify_manifest,
)
from safemodel.io.zipbytes import pack

DATA = Path(__file__).parent / "data" / "model_signing"
UPSTREAM_KEY = DATA / "signing-key-pub.pem"  # ECDSA P-384, with gnutls text before the PEM


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAFEMODEL_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("SAFEMODEL_SIGNING_KEY", raising=False)
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def bundle_file(lr_bundle: sm.ModelBundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    signed = tmp_path_factory.mktemp("osms-signed") / "penguins-lr.safemodel"
    lr_bundle.save(signed)  # every save signs; drop the member, so the sidecar is the
    with zipfile.ZipFile(signed) as zf:  # only signature
        members = [(i.filename, zf.read(i)) for i in zf.infolist()
                   if i.filename != SIGNATURE_MEMBER]
    path = tmp_path_factory.mktemp("osms") / "penguins-lr.safemodel"
    path.write_bytes(pack(members))
    return path


def _copy(path: Path, folder: Path) -> Path:
    target = folder / path.name
    shutil.copyfile(path, target)
    return target


# --- ECDSA as a key type -------------------------------------------------------------


@pytest.mark.parametrize(("curve", "expected"), [
    (ec.SECP256R1(), "ecdsa-p256"), (ec.SECP384R1(), "ecdsa-p384"),
    (ec.SECP521R1(), "ecdsa-p521"),
])
def test_ecdsa_key_types_are_named_by_the_key_object(curve: Any, expected: str) -> None:
    key = ec.generate_private_key(curve)
    assert key_type(key) == key_type(key.public_key()) == expected
    pem = public_pem(key)
    assert key_type(load_pem_key(pem)) == expected
    # The key id is the hint model signing writes: SHA-256 of the public PEM.
    assert key_id(key) == hashlib.sha256(pem.encode()).hexdigest()


def test_other_curves_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(SigningKeyError, match="secp256k1"):
        key_type(key)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(SigningKeyError, match="P-256"):
        load_pem_key(pem)


def test_in_bundle_signature_with_p256(p256: ec.EllipticCurvePrivateKey) -> None:
    manifest = b'{"name": "churn"}'
    signature = sign_manifest(manifest, p256)
    assert json.loads(signature)["algorithm"] == "ecdsa-p256"
    verify_manifest(manifest, signature, p256.public_key())
    with pytest.raises(IntegrityError):
        verify_manifest(manifest + b" ", signature, p256.public_key())
    with pytest.raises(IntegrityError, match="ed25519"):
        verify_manifest(manifest, signature, Ed25519PrivateKey.generate().public_key())


def test_bundle_saved_with_p256_loads_with_its_public_key(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "p256.safemodel"
    lr_bundle.save(path, signing_key=p256)
    assert sm.load(path, signing_key=public_pem(p256)).name == lr_bundle.name
    with pytest.raises(IntegrityError):
        sm.load(path, signing_key=ec.generate_private_key(ec.SECP256R1()).public_key())


def test_user_key_can_be_created_as_p256(tmp_path: Path) -> None:
    key = default_signing_key(tmp_path / "h", key_type="ecdsa-p256")
    assert key_type(key) == "ecdsa-p256"
    assert (tmp_path / "h" / "signing-key.pem").stat().st_mode & 0o077 == 0
    # An existing key is kept, whatever type a later call asks for.
    assert key_id(default_signing_key(tmp_path / "h")) == key_id(key)
    with pytest.raises(sm.InvalidArgument, match="key_type"):
        default_signing_key(tmp_path / "other", key_type="rsa")


def test_trust_store_records_the_key_type_and_refuses_a_mismatch(
    p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    entry = trust_add(public_pem(p256), label="publisher", home=tmp_path)
    assert entry.key_type == "ecdsa-p256"
    stored = tmp_path / TRUST_STORE_FOLDER / f"{entry.key_id}.json"
    assert json.loads(stored.read_text())["key_type"] == "ecdsa-p256"
    assert [e.key_type for e in trust_list(tmp_path)] == ["ecdsa-p256"]
    edited = json.loads(stored.read_text()) | {"key_type": "ed25519"}
    stored.write_text(json.dumps(edited))
    with pytest.raises(SigningKeyError, match="edited by hand"):
        trust_list(tmp_path)


# --- our signatures ------------------------------------------------------------------


def test_sidecar_verifies_with_a_trusted_key(
    bundle_file: Path, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = _copy(bundle_file, tmp_path)
    sig = ms.write_sidecar(path, p256)
    assert sig == tmp_path / "penguins-lr.safemodel.sig"
    content = json.loads(sig.read_bytes())
    assert content["mediaType"] == ms.BUNDLE_MEDIA_TYPE
    assert content["verificationMaterial"] == {"publicKey": {"hint": key_id(p256)},
                                               "tlogEntries": []}
    statement = json.loads(base64.b64decode(content["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == ms.PREDICATE_TYPE
    assert statement["predicate"]["resources"] == [
        {"name": ".", "algorithm": "sha256",
         "digest": hashlib.sha256(path.read_bytes()).hexdigest()}]
    signer = ms.verify_sidecar(path, trusted_keys=[p256.public_key()])
    assert signer.key_id == key_id(p256)
    assert signer.source == "trusted_keys[0]"
    trust_add(public_pem(p256))  # the trust store works the same way
    assert ms.verify_sidecar(path).source == "trust store"


def test_untrusted_key_is_refused(bundle_file: Path, tmp_path: Path) -> None:
    path = _copy(bundle_file, tmp_path)
    signer_key = ec.generate_private_key(ec.SECP256R1())
    ms.write_sidecar(path, signer_key)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(UntrustedBundleError, match="do not trust") as err:
        ms.verify_sidecar(path, trusted_keys=[other, Ed25519PrivateKey.generate()])
    assert err.value.signer == key_id(signer_key)


def test_every_modified_byte_is_refused(
    p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 4
    sidecar = ms.sign_sidecar(data, "m", p256)
    candidates = trusted_keys([p256.public_key()], home=tmp_path)
    assert ms.verify_sidecar_bytes(data, sidecar, candidates).key_id == key_id(p256)
    for i in range(len(data)):
        changed = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
        with pytest.raises(IntegrityError, match="modified after signing"):
            ms.verify_sidecar_bytes(changed, sidecar, candidates)
    with pytest.raises(IntegrityError, match="modified after signing"):
        ms.verify_sidecar_bytes(data + b"\0", sidecar, candidates)


def _edit(sidecar: bytes, change: Any) -> bytes:
    content = json.loads(sidecar)
    change(content)
    return json.dumps(content).encode()


def _edit_payload(content: dict[str, Any], change: Any) -> None:
    statement = json.loads(base64.b64decode(content["dsseEnvelope"]["payload"]))
    change(statement)
    content["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def test_a_forged_statement_is_refused_even_with_the_right_digest(
    p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    data, other = b"the signed bundle", b"an attacker's bundle"
    sidecar = ms.sign_sidecar(data, "m", p256)
    digest = hashlib.sha256(other).hexdigest()

    def point_at_other(statement: dict[str, Any]) -> None:
        statement["predicate"]["resources"][0]["digest"] = digest
        statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(
            bytes.fromhex(digest)).hexdigest()

    forged = _edit(sidecar, lambda c: _edit_payload(c, point_at_other))
    candidates = trusted_keys([p256.public_key()], home=tmp_path)
    with pytest.raises(IntegrityError, match="does not verify"):
        ms.verify_sidecar_bytes(other, forged, candidates)


@pytest.mark.parametrize(("change", "match"), [
    (lambda c: c.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=0.2"),
     "mediaType"),
    (lambda c: c["verificationMaterial"].pop("publicKey"),
     "not a public key hint, a certificate chain or a Sigstore certificate"),
    (lambda c: c["verificationMaterial"].pop("publicKey") and c["verificationMaterial"]
     .update(x509CertificateChain={"certificates": [{"rawBytes": "not base64!"}]}),
     "certificate chain is not a list of base64"),
    (lambda c: c["dsseEnvelope"].update(payloadType="text/plain"), "DSSE"),
    (lambda c: c["dsseEnvelope"]["signatures"].append({"sig": "AA==", "keyid": ""}),
     "exactly one"),
    (lambda c: c["dsseEnvelope"].update(payload="not base64!"), "base64"),
    (lambda c: c["verificationMaterial"]["publicKey"].update(hint=7), "hint"),
])
def test_malformed_signatures_are_refused(
    p256: ec.EllipticCurvePrivateKey, tmp_path: Path, change: Any, match: str
) -> None:
    data = b"bundle"
    bad = _edit(ms.sign_sidecar(data, "m", p256), change)
    with pytest.raises(IntegrityError, match=match) as err:
        ms.verify_sidecar_bytes(data, bad, trusted_keys([p256.public_key()], home=tmp_path),
                                source="m.sig")
    assert err.value.member == "m.sig"


@pytest.mark.parametrize("junk", [b"", b"\xff", b"[]", b"[" * 100_000 + b"]" * 100_000,
                                  b" " * (9 << 20)])
def test_hostile_signature_files_raise_integrity_error(junk: bytes, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError):
        ms.verify_sidecar_bytes(b"bundle", junk, [])


def test_only_ecdsa_private_keys_sign() -> None:
    for key in [Ed25519PrivateKey.generate(), "hmac:team-secret",
                ec.generate_private_key(ec.SECP256R1()).public_key()]:
        with pytest.raises(SigningKeyError, match="ECDSA private key"):
            ms.sign_sidecar(b"bundle", "m", key)


# --- the loader's hook ---------------------------------------------------------------


def _members(path: Path) -> tuple[bytes, bytes | None]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        signature = archive.read("signature.json") if "signature.json" in names else None
        return archive.read("manifest.json"), signature


def test_decide_trust_accepts_a_trusted_sidecar_for_an_unsigned_bundle(
    bundle_file: Path, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    data = bundle_file.read_bytes()
    manifest, signature = _members(bundle_file)
    assert signature is None
    sidecar = ms.sign_sidecar(data, bundle_file.name, p256)
    decision = ms.decide_trust_with_sidecar(
        manifest, signature, data=data, sidecar=sidecar,
        trusted_keys=[p256.public_key()], home=tmp_path)
    assert decision.trusted
    assert decision.signer == key_id(p256)
    assert "model signing signature" in decision.reason
    with pytest.raises(UntrustedBundleError, match="unsigned.*do not trust") as err:
        ms.decide_trust_with_sidecar(manifest, signature, data=data, sidecar=sidecar,
                                     home=tmp_path, references=["builtins.eval"])
    assert err.value.references == ["builtins.eval"]
    assert "builtins.eval" in str(err.value)
    untrusted = ms.decide_trust_with_sidecar(manifest, signature, data=data, sidecar=sidecar,
                                             home=tmp_path, trust=True)
    assert not untrusted.trusted
    # No sidecar: exactly decide_trust.
    with pytest.raises(UntrustedBundleError, match="unsigned"):
        ms.decide_trust_with_sidecar(manifest, signature, data=data, sidecar=None,
                                     home=tmp_path)


def test_decide_trust_refuses_a_modified_bundle_even_with_trust(
    bundle_file: Path, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    data = bundle_file.read_bytes()
    manifest, signature = _members(bundle_file)
    sidecar = ms.sign_sidecar(data, bundle_file.name, p256)
    changed = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(IntegrityError, match="modified after signing"):
        ms.decide_trust_with_sidecar(manifest, signature, data=changed, sidecar=sidecar,
                                     trusted_keys=[p256.public_key()], home=tmp_path,
                                     trust=True)


def test_in_bundle_signature_is_decided_first(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "signed.safemodel"
    lr_bundle.save(path, signing_key=p256)
    data = path.read_bytes()
    manifest, signature = _members(path)
    decision = ms.decide_trust_with_sidecar(
        manifest, signature, data=data, sidecar=b"not even JSON",
        trusted_keys=[p256.public_key()], home=tmp_path)
    assert decision.trusted
    assert "model signing" not in decision.reason


# --- upstream's published signatures -------------------------------------------------


@pytest.mark.parametrize("version", ["v0.3.1", "v1.0.0"])
def test_upstream_single_file_signatures_verify(version: str, tmp_path: Path) -> None:
    folder = DATA / f"{version}-elliptic-key"
    candidates = trusted_keys([UPSTREAM_KEY], home=tmp_path)
    assert candidates[0].key_type == "ecdsa-p384"
    data, sidecar = (folder / "signme-1").read_bytes(), (folder / "model.sig").read_bytes()
    assert ms.verify_sidecar_bytes(data, sidecar, candidates).label == "signing-key-pub"
    with pytest.raises(IntegrityError, match="modified after signing"):
        ms.verify_sidecar_bytes(data + b"!", sidecar, candidates)
    # These carry no hint, so every trusted ECDSA key is tried; none of them signed it.
    other = trusted_keys([ec.generate_private_key(ec.SECP384R1()).public_key()],
                         home=tmp_path)
    with pytest.raises(UntrustedBundleError, match="does not name"):
        ms.verify_sidecar_bytes(data, sidecar, other)


def test_upstream_folder_signature_verifies(tmp_path: Path) -> None:
    folder = DATA / "v1.1.0-elliptic-key"
    sidecar = (folder / "model.sig").read_bytes()
    candidates = trusted_keys([UPSTREAM_KEY], home=tmp_path)
    signer, resources = ms.verified_resources(sidecar, candidates)
    assert signer.key_id == key_id(load_pem_key(UPSTREAM_KEY.read_bytes()))
    assert resources == {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                         for name in ("signme-1", "signme-2")}
    # A folder signature is not a signature of one bundle file.
    with pytest.raises(IntegrityError, match="not sign one file"):
        ms.verify_sidecar_bytes((folder / "signme-1").read_bytes(), sidecar, candidates)
    with pytest.raises(UntrustedBundleError):
        ms.verified_resources(sidecar, [])


# --- the real model_signing CLI, both directions -------------------------------------


@pytest.fixture(scope="session")
def model_signing_cli() -> list[str]:
    return model_signing_command()


@pytest.mark.slow
def test_model_signing_cli_verifies_our_signature(
    model_signing_cli: list[str], bundle_file: Path, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    path = _copy(bundle_file, tmp_path)
    _, public = key_files(tmp_path, p256)
    sig = ms.write_sidecar(path, p256)
    done = run_cli(model_signing_cli, "verify", "key", "--signature", sig, "--public_key", public,
                path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verification succeeded" in done.stdout + done.stderr
    with open(path, "r+b") as fh:  # modified after signing: upstream refuses too
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 1]))
    done = run_cli(model_signing_cli, "verify", "key", "--signature", sig, "--public_key", public,
                path)
    assert done.returncode != 0
    assert "Verification succeeded" not in done.stdout


@pytest.mark.slow
def test_we_verify_a_model_signing_cli_signature(
    model_signing_cli: list[str], bundle_file: Path, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    path = _copy(bundle_file, tmp_path)
    private, public = key_files(tmp_path, p256)
    sig = ms.sidecar_path(path)
    done = run_cli(model_signing_cli, "sign", "key", "--private_key", private, "--signature", sig,
                path)
    assert done.returncode == 0, done.stdout + done.stderr
    trust_add(public)
    signer = ms.verify_sidecar(path)
    assert signer.key_id == key_id(p256)
    assert signer.key_type == "ecdsa-p256"
    manifest, signature = _members(path)
    data = path.read_bytes()
    assert ms.decide_trust_with_sidecar(manifest, signature, data=data,
                                        sidecar=sig.read_bytes()).trusted
    with pytest.raises(UntrustedBundleError):
        ms.verify_sidecar(path, home=tmp_path / "elsewhere")
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(IntegrityError, match="modified after signing"):
        ms.verify_sidecar(path)


# --- the CLI -------------------------------------------------------------------------


def test_cli_signs_and_verifies(
    bundle_file: Path, p256: ec.EllipticCurvePrivateKey, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from safemodel.cli import main

    path = _copy(bundle_file, tmp_path)
    private, public = key_files(tmp_path, p256)
    assert main(["sidecar", "verify", str(path)]) == 1
    assert "no signature file" in capsys.readouterr().err
    assert main(["sidecar", "sign", str(path), "--key", str(private)]) == 0
    assert ms.sidecar_path(path).is_file()
    assert main(["sidecar", "verify", str(path)]) == 1
    assert "do not trust" in capsys.readouterr().err
    assert main(["sidecar", "verify", str(path), "--trusted-key", str(public), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["key_id"] == key_id(p256)
    assert out["key_type"] == "ecdsa-p256"
    path.write_bytes(path.read_bytes() + b"\0")
    assert main(["sidecar", "verify", str(path), "--trusted-key", str(public)]) == 1
    assert "modified after signing" in capsys.readouterr().err
    # Your own key signs when it is ECDSA; an Ed25519 one is refused with advice.
    default_signing_key()
    assert main(["sidecar", "sign", str(path)]) == 2
    assert "ECDSA private key" in capsys.readouterr().err


# --- safemodel.load reads <bundle>.sig -----------------------------------------------


def test_load_trusts_a_sidecar_from_a_trusted_p256_key_and_refuses_otherwise(
    bundle_file: Path, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _copy(bundle_file, tmp_path)
    ms.write_sidecar(path, p256)
    other = tmp_path / "other.safemodel"
    hgb_bundle.save(other)  # signed by this session's key, which "elsewhere" does not trust
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "elsewhere"))  # another machine
    unpickled: list[bytes] = []
    original = archive._unpickle
    monkeypatch.setattr(archive, "_unpickle",
                        lambda data, *rest: unpickled.append(data) or original(data, *rest))
    with pytest.raises(UntrustedBundleError):
        sm.load(path)  # the sidecar's key is not trusted here
    assert unpickled == []
    loaded = sm.load(path, trusted_keys=[p256.public_key()])
    assert loaded.fingerprint == sm.inspect(bundle_file).fingerprint
    # The file changes after signing (another model written over it): refused before
    # anything is unpickled, even by a caller who trusts the key.
    unpickled.clear()
    path.write_bytes(other.read_bytes())
    with pytest.raises(IntegrityError):
        sm.load(path, trusted_keys=[p256.public_key()])
    assert unpickled == []
