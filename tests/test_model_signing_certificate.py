"""Model signing's certificate mode: a signature carrying an X.509 chain to a trusted CA.

A CA, an intermediate and leaves are made here with ``cryptography.x509`` (P-256); the
real ``model_signing`` CLI signs and verifies them in both directions, and upstream's
certificate-mode fixtures (tests/data/model_signing, model-signing 1.0.0 and 1.1.0)
verify against upstream's CA.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import safemodel as sm
from model_signing_cli import model_signing_command, run_cli
from safemodel.errors import IntegrityError, UntrustedBundleError
from safemodel.io import model_signing as ms
from safemodel.io.x509_trust import ca_add, ca_list, ca_remove, verify_chain

DATA = Path(__file__).parent / "data" / "model_signing"
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _own_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAFEMODEL_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("SAFEMODEL_SIGNING_KEY", raising=False)
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "home"))


@dataclass
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(cn: str, issuer: Issued | None, *, ca: bool, email: str | None = None,
           usage: str = "code", not_before: datetime = NOW - timedelta(days=1),
           not_after: datetime = NOW + timedelta(days=30)) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key = issuer.key if issuer else key
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer.cert.subject if issuer else _name(cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   signer_key.public_key()), critical=False))
    flags = dict(content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, encipher_only=False, decipher_only=False, crl_sign=ca)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(digital_signature=False,
                                                      key_cert_sign=True, **flags),
                                        critical=True)
    elif usage == "code":
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True,
                                                      key_cert_sign=False, **flags),
                                        critical=True).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    elif usage == "server":  # digitalSignature, but extended key usage for TLS only
        builder = builder.add_extension(x509.KeyUsage(digital_signature=True,
                                                      key_cert_sign=False, **flags),
                                        critical=True).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif usage == "encipher":  # may not sign at all
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, key_cert_sign=False, **(flags | {"key_agreement": True})),
            critical=True)
    if email:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return Issued(key, builder.sign(signer_key, hashes.SHA256()))


@pytest.fixture(scope="module")
def pki() -> dict[str, Issued]:
    since = NOW - timedelta(days=365)
    root = _issue("safemodel test root", None, ca=True, not_before=since,
                  not_after=NOW + timedelta(days=3650))
    inter = _issue("safemodel test intermediate", root, ca=True, not_before=since)
    return {"root": root, "inter": inter,
            "leaf": _issue("publisher", inter, ca=False, email="models@example.com")}


def _pem(path: Path, *items: Any) -> Path:
    path.write_bytes(b"".join(
        i.public_bytes(serialization.Encoding.PEM) if isinstance(i, x509.Certificate)
        else i.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) for i in items))
    return path


def _bundle(lr_bundle_path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    return Path(shutil.copyfile(lr_bundle_path, folder / "m.safemodel"))


# --- upstream's published certificate-mode signatures -------------------------------


@pytest.mark.parametrize("version", ["v1.0.0", "v1.1.0"])
def test_upstream_certificate_signatures_verify(version: str, tmp_path: Path) -> None:
    folder = DATA / f"{version}-certificate"
    sidecar = (folder / "model.sig").read_bytes()
    with pytest.raises(UntrustedBundleError, match="no CA is trusted"):
        ms.verified_resources(sidecar, [], home=tmp_path)
    ca_add(DATA / "certificate" / "ca-cert.pem", home=tmp_path)
    signer, resources = ms.verified_resources(sidecar, [], home=tmp_path)
    assert resources == {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
                         for n in ("signme-1", "signme-2")}
    assert signer.key_type == "ecdsa-p384"
    assert signer.source.startswith("trusted CA")
    # Pinned to another identity: refused; to the leaf's (its CN, it has no SAN): accepted.
    ca_add(DATA / "certificate" / "ca-cert.pem", identities=["someone-else"], home=tmp_path)
    with pytest.raises(UntrustedBundleError, match="trusted only for"):
        ms.verified_resources(sidecar, [], home=tmp_path)
    ca_add(DATA / "certificate" / "ca-cert.pem", identities=["intermediate-ca"], home=tmp_path)
    assert ms.verified_resources(sidecar, [], home=tmp_path)[0].label.startswith(
        "intermediate-ca")
    # Upstream's intermediate is a CA too, but not the one that is trusted: its chain
    # must end at a registered CA, whatever it carries.
    ca_remove(ca_list(tmp_path)[0].ca_id, home=tmp_path)
    with pytest.raises(UntrustedBundleError):
        ms.verified_resources(sidecar, [], home=tmp_path)


def test_a_leaf_is_not_a_trust_anchor(pki: dict[str, Issued], tmp_path: Path) -> None:
    with pytest.raises(sm.InvalidArgument, match="CA certificate"):
        ca_add(pki["leaf"].cert.public_bytes(serialization.Encoding.PEM), home=tmp_path)


# --- our chain, both ways -----------------------------------------------------------


def _sign(path: Path, leaf: Issued, pki: dict[str, Issued]) -> Path:
    return ms.write_sidecar(path, leaf.key, certificates=[leaf.cert, pki["inter"].cert])


def test_load_accepts_a_chain_to_a_trusted_ca_and_refuses_otherwise(
    lr_bundle_path: Path, hgb_bundle: sm.ModelBundle, pki: dict[str, Issued], tmp_path: Path
) -> None:
    path = _bundle(lr_bundle_path, tmp_path / "b")
    _sign(path, pki["leaf"], pki)
    other = _issue("another root", None, ca=True)
    ca_add(other.cert, home=None)
    assert sm.load(path, trust=True)  # its own signature is by a key not trusted here
    with pytest.raises(UntrustedBundleError, match="does not lead to a trusted CA"):
        ms.verify_sidecar(path)
    ca_add(pki["root"].cert, identities=["models@example.com"])
    signer = ms.verify_sidecar(path)
    assert signer.label == "models@example.com (CA CN=safemodel test root)"
    loaded = sm.load(path)  # the sidecar establishes trust; nothing else does here
    assert loaded.fingerprint == sm.inspect(path).fingerprint
    stranger = ec.generate_private_key(ec.SECP256R1())
    signed = ms.sidecar_path(path).read_bytes()
    hgb_bundle.save(path, overwrite=True, signing_key=stranger)  # written over the signed file
    ms.sidecar_path(path).write_bytes(signed)  # save removed it; put the old one back
    with pytest.raises(IntegrityError, match="modified after signing"):
        sm.load(path, trust=True)


def test_identity_pin_refuses_another_leaf_of_the_same_ca(
    lr_bundle_path: Path, pki: dict[str, Issued], tmp_path: Path
) -> None:
    path = _bundle(lr_bundle_path, tmp_path / "b")
    mallory = _issue("mallory", pki["inter"], ca=False, email="mallory@example.com")
    _sign(path, mallory, pki)
    ca_add(pki["root"].cert, identities=["models@example.com"])
    with pytest.raises(UntrustedBundleError, match="mallory@example.com"):
        ms.verify_sidecar(path)


def test_a_signature_by_another_key_than_the_certificates_is_refused(
    pki: dict[str, Issued], tmp_path: Path
) -> None:
    data = b"bundle"
    good = ms.sign_sidecar(data, "m", pki["leaf"].key, [pki["leaf"].cert, pki["inter"].cert])
    # An attacker keeps the trusted chain and signs their own statement with their key.
    attacker = ec.generate_private_key(ec.SECP256R1())
    forged = ms.sign_sidecar(b"evil", "m", attacker).decode()
    spliced = json.loads(forged)
    spliced["verificationMaterial"] = json.loads(good)["verificationMaterial"]
    ca_add(pki["root"].cert, home=tmp_path)
    with pytest.raises(IntegrityError, match="forged or edited"):
        ms.verify_sidecar_bytes(b"evil", json.dumps(spliced).encode(), [], home=tmp_path)
    assert ms.verify_sidecar_bytes(data, good, [], home=tmp_path)


@pytest.mark.parametrize(("usage", "match"), [
    ("server", "without codeSigning"), ("encipher", "digitalSignature")])
def test_a_leaf_that_may_not_sign_code_is_refused(
    pki: dict[str, Issued], tmp_path: Path, usage: str, match: str
) -> None:
    leaf = _issue("tls", pki["inter"], ca=False, usage=usage)
    ca_add(pki["root"].cert, home=tmp_path)
    sidecar = ms.sign_sidecar(b"x", "m", leaf.key, [leaf.cert, pki["inter"].cert])
    with pytest.raises(IntegrityError, match=match):
        ms.verify_sidecar_bytes(b"x", sidecar, [], home=tmp_path)


def test_an_expired_or_future_leaf_is_refused(pki: dict[str, Issued], tmp_path: Path) -> None:
    ca_add(pki["root"].cert, home=tmp_path)
    for window in [(NOW - timedelta(days=30), NOW - timedelta(days=1)),
                   (NOW + timedelta(days=1), NOW + timedelta(days=30))]:
        leaf = _issue("p", pki["inter"], ca=False, not_before=window[0], not_after=window[1])
        sidecar = ms.sign_sidecar(b"x", "m", leaf.key, [leaf.cert, pki["inter"].cert])
        with pytest.raises(IntegrityError, match="not now"):
            ms.verify_sidecar_bytes(b"x", sidecar, [], home=tmp_path)
    chain = [pki["leaf"].cert.public_bytes(serialization.Encoding.DER)]
    with pytest.raises(UntrustedBundleError):  # the intermediate is missing
        verify_chain(chain, ca_list(tmp_path))


def test_signing_with_a_certificate_of_another_key_is_refused(pki: dict[str, Issued]) -> None:
    with pytest.raises(sm.SigningKeyError, match="signing key's certificate"):
        ms.sign_sidecar(b"x", "m", pki["leaf"].key, [pki["inter"].cert])


@pytest.mark.slow
def test_model_signing_cli_and_safemodel_agree_on_certificates(
    lr_bundle_path: Path, hgb_bundle: sm.ModelBundle, pki: dict[str, Issued], tmp_path: Path
) -> None:
    command = model_signing_command()
    ca_file = _pem(tmp_path / "ca.pem", pki["root"].cert)
    ca_add(pki["root"].cert)

    def upstream_sign(leaf: Issued, name: str) -> Path:
        path = _bundle(lr_bundle_path, tmp_path / name)
        key = _pem(tmp_path / f"{name}.key", leaf.key)
        cert = _pem(tmp_path / f"{name}.crt", leaf.cert)
        chain = _pem(tmp_path / f"{name}-chain.pem", pki["inter"].cert)
        done = run_cli(command, "sign", "certificate", "--private_key", key,
                       "--signing_certificate", cert, "--certificate_chain", chain,
                       "--signature", ms.sidecar_path(path), path)
        assert done.returncode == 0, done.stdout + done.stderr
        return path

    verdicts: list[str] = []

    def upstream_verify(path: Path) -> bool:
        done = run_cli(command, "verify", "certificate", "--signature", ms.sidecar_path(path),
                       "--certificate_chain", ca_file, path)
        verdicts.append(done.stdout + done.stderr)
        return done.returncode == 0 and "Verification succeeded" in done.stdout + done.stderr

    # model_signing signs, safemodel loads.
    path = upstream_sign(pki["leaf"], "theirs")
    assert sm.load(path).name == sm.inspect(lr_bundle_path).name
    # safemodel signs, model_signing verifies; both refuse a modified file.
    ours = _bundle(lr_bundle_path, tmp_path / "ours")
    _sign(ours, pki["leaf"], pki)
    assert upstream_verify(ours)
    signed = ms.sidecar_path(ours).read_bytes()
    hgb_bundle.save(ours, overwrite=True, signing_key=ec.generate_private_key(ec.SECP256R1()))
    ms.sidecar_path(ours).write_bytes(signed)  # save removed it; put the old one back
    assert not upstream_verify(ours)
    with pytest.raises(IntegrityError, match="modified after signing"):
        sm.load(ours, trust=True)
    # Both refuse a leaf that may not sign at all.
    encipher = upstream_sign(_issue("e", pki["inter"], ca=False, usage="encipher"), "enc")
    assert not upstream_verify(encipher)
    with pytest.raises(IntegrityError, match="digitalSignature"):
        sm.load(encipher)
    # Where they differ (docs/security.md): model_signing checks the chain at the leaf's
    # notBefore, so it accepts an expired leaf; safemodel checks now and refuses it. It
    # accepts a digitalSignature leaf whose extended key usage is TLS only; safemodel
    # requires codeSigning when extended key usage is stated.
    old = _issue("old", pki["inter"], ca=False, not_before=NOW - timedelta(days=60),
                 not_after=NOW - timedelta(days=30))
    expired = upstream_sign(old, "expired")
    assert upstream_verify(expired), verdicts[-1]
    with pytest.raises(IntegrityError, match="not now"):
        sm.load(expired)
    server = upstream_sign(_issue("s", pki["inter"], ca=False, usage="server"), "server")
    assert upstream_verify(server)
    with pytest.raises(IntegrityError, match="without codeSigning"):
        sm.load(server)


def test_cli_trusts_cas_and_signs_in_certificate_mode(
    lr_bundle_path: Path, pki: dict[str, Issued], tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from safemodel.cli import main

    path = _bundle(lr_bundle_path, tmp_path / "b")
    key = _pem(tmp_path / "leaf.key", pki["leaf"].key)
    chain = _pem(tmp_path / "chain.pem", pki["leaf"].cert, pki["inter"].cert)
    assert main(["sidecar", "sign", str(path), "--key", str(key), "--certificate",
                 str(chain)]) == 0
    assert main(["sidecar", "verify", str(path)]) == 1
    assert "no CA is trusted" in capsys.readouterr().err
    ca = _pem(tmp_path / "ca.pem", pki["root"].cert)
    assert main(["trust", "ca", "add", str(ca), "--identity", "models@example.com"]) == 0
    assert main(["trust", "ca", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert listed[0]["identities"] == ["models@example.com"]
    assert main(["sidecar", "verify", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"].startswith("models@example.com")
    assert main(["trust", "ca", "remove", listed[0]["ca_id"][:8]]) == 0
    assert main(["sidecar", "verify", str(path)]) == 1
    assert main(["sidecar", "sign", str(path), "--key", str(key), "--certificate",
                 str(ca)]) == 2  # not the key's certificate
    assert "signing key's certificate" in capsys.readouterr().err
