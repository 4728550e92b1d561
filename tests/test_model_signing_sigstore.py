"""Sigstore keyless model signing signatures, verified offline from a pinned trust root.

The signatures are upstream's real ones (tests/data/model_signing, see its README):
a folder signed by ``stefanb@us.ibm.com`` through ``https://sigstore.verify.ibm.com/oauth2``
on the public-good instance, with Rekor entries. Nothing here uses the network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import safemodel as sm
from safemodel.errors import IntegrityError, UntrustedBundleError
from safemodel.io import model_signing as ms
from safemodel.io.sigstore_trust import sigstore_add, sigstore_list, sigstore_remove

pytest.importorskip("sigstore", reason="the safemodel[sigstore] extra is not installed")

DATA = Path(__file__).parent / "data" / "model_signing"
ROOT = DATA / "sigstore-trusted_root.json"
IDENTITY = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"


def _digests(folder: Path) -> dict[str, str]:
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest()
            for n in ("signme-1", "signme-2")}


@pytest.mark.parametrize("version", ["v1.0.0", "v1.1.0"])
def test_upstream_keyless_signatures_verify_offline(version: str, tmp_path: Path) -> None:
    folder = DATA / f"{version}-sigstore"
    sidecar = (folder / "model.sig").read_bytes()
    with pytest.raises(UntrustedBundleError, match="no Sigstore signer is trusted"):
        ms.verified_resources(sidecar, [], home=tmp_path)
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)
    signer, resources = ms.verified_resources(sidecar, [], home=tmp_path)
    assert resources == _digests(folder)
    assert signer.label == f"{IDENTITY} via {ISSUER}"
    assert signer.source == "trusted Sigstore signer"
    # A folder signature is not a signature of one bundle file.
    with pytest.raises(IntegrityError, match="not sign one file"):
        ms.verify_sidecar_bytes((folder / "signme-1").read_bytes(), sidecar, [], home=tmp_path)


@pytest.mark.parametrize(("identity", "issuer"), [
    ("alice@example.com", ISSUER),                      # identity not checked: naive
    (IDENTITY, "https://accounts.google.com"),          # issuer not checked: naive
    ("stefanb@us.ibm.co", ISSUER),                      # a prefix is not the identity
])
def test_another_identity_or_issuer_is_refused(identity: str, issuer: str,
                                               tmp_path: Path) -> None:
    sidecar = (DATA / "v1.1.0-sigstore" / "model.sig").read_bytes()
    sigstore_add(identity, issuer, ROOT, home=tmp_path)
    with pytest.raises(UntrustedBundleError, match="which you do not trust") as err:
        ms.verified_resources(sidecar, [], home=tmp_path)
    assert IDENTITY in str(err.value)
    assert ISSUER in err.value.signer


def test_a_stale_trust_root_is_refused_with_how_to_refresh(tmp_path: Path) -> None:
    sidecar = (DATA / "v1.1.0-sigstore" / "model.sig").read_bytes()
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path, max_age_days=30,
                 now=datetime.now(UTC) - timedelta(days=31))
    with pytest.raises(UntrustedBundleError, match="older than its maximum age") as err:
        ms.verified_resources(sidecar, [], home=tmp_path)
    assert "update-trust-root" in str(err.value)
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path, max_age_days=30)  # refreshed
    assert ms.verified_resources(sidecar, [], home=tmp_path)[1]


def _edit(sidecar: bytes, change: object) -> bytes:
    content = json.loads(sidecar)
    change(content)  # type: ignore[operator]
    return json.dumps(content).encode()


def test_a_statement_over_other_bytes_is_refused(tmp_path: Path) -> None:
    sidecar = (DATA / "v1.1.0-sigstore" / "model.sig").read_bytes()
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)

    def other_digest(content: dict[str, object]) -> None:
        envelope = content["dsseEnvelope"]
        assert isinstance(envelope, dict)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["resources"][0]["digest"] = hashlib.sha256(b"evil").hexdigest()
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()

    with pytest.raises(IntegrityError, match="does not verify against any pinned"):
        ms.verified_resources(_edit(sidecar, other_digest), [], home=tmp_path)


def test_a_certificate_from_another_signature_is_refused(tmp_path: Path) -> None:
    # The envelope of one signing event with the certificate and log entry of another.
    newer = json.loads((DATA / "v1.1.0-sigstore" / "model.sig").read_bytes())
    older = json.loads((DATA / "v1.0.0-sigstore" / "model.sig").read_bytes())
    newer["verificationMaterial"] = older["verificationMaterial"]
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)
    with pytest.raises(IntegrityError, match="does not verify"):
        ms.verified_resources(json.dumps(newer).encode(), [], home=tmp_path)


def test_the_root_of_another_instance_is_refused(tmp_path: Path) -> None:
    # Sigstore's staging instance: real Fulcio and Rekor keys, but not the signer's.
    sigstore_add(IDENTITY, ISSUER, DATA / "sigstage-trusted_root.json", home=tmp_path)
    with pytest.raises(IntegrityError, match="does not verify against any pinned"):
        ms.verified_resources((DATA / "v1.1.0-sigstore" / "model.sig").read_bytes(), [],
                              home=tmp_path)
    root = json.loads(ROOT.read_text())
    root["certificateAuthorities"] = []
    (tmp_path / "no_ca.json").write_text(json.dumps(root))
    with pytest.raises(sm.InvalidArgument, match="trusted_root"):
        sigstore_add(IDENTITY, ISSUER, tmp_path / "no_ca.json", home=tmp_path)


def test_the_trust_store_of_sigstore_signers(tmp_path: Path) -> None:
    entry = sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)
    assert [e.identity for e in sigstore_list(tmp_path)] == [IDENTITY]
    stored = tmp_path / "trusted-sigstore" / f"{entry.entry_id}.json"
    edited = json.loads(stored.read_text()) | {"identity": "mallory@example.com"}
    stored.write_text(json.dumps(edited))
    with pytest.raises(IntegrityError, match="edited by hand"):
        sigstore_list(tmp_path)
    stored.unlink()
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)
    assert sigstore_remove(entry.entry_id[:8], home=tmp_path).identity == IDENTITY
    with pytest.raises(sm.InvalidArgument, match="trusted_root"):
        sigstore_add(IDENTITY, ISSUER, DATA / "signing-key-pub.pem", home=tmp_path)
    with pytest.raises(sm.InvalidArgument, match="max_age_days"):
        sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path, max_age_days=0)


def test_without_the_extra_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    sigstore_add(IDENTITY, ISSUER, ROOT, home=tmp_path)
    for name in [m for m in sys.modules if m == "sigstore" or m.startswith("sigstore.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sigstore", None)  # import sigstore fails
    with pytest.raises(sm.SafeModelError, match=r"safemodel\[sigstore\]"):
        ms.verified_resources((DATA / "v1.1.0-sigstore" / "model.sig").read_bytes(), [],
                              home=tmp_path)


def test_import_safemodel_does_not_import_sigstore() -> None:
    code = ("import sys, safemodel, safemodel.io.archive, safemodel.io.model_signing; "
            "safemodel.load; assert not any(m.split('.')[0] == 'sigstore' "
            "for m in sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_cli_trusts_sigstore_signers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    from safemodel.cli import main

    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "home"))
    assert main(["trust", "sigstore", "add", "--identity", IDENTITY, "--issuer", ISSUER,
                 "--trusted-root", str(ROOT), "--max-age-days", "7", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["max_age_days"] == 7
    assert main(["trust", "sigstore", "list"]) == 0
    assert IDENTITY in capsys.readouterr().out
    sidecar = (DATA / "v1.1.0-sigstore" / "model.sig").read_bytes()
    assert ms.verified_resources(sidecar, [])[0].label == f"{IDENTITY} via {ISSUER}"
    assert main(["trust", "sigstore", "remove", added["entry_id"][:10]]) == 0
    assert main(["trust", "sigstore", "add", "--identity", IDENTITY, "--issuer", ISSUER,
                 "--trusted-root", str(DATA / "signing-key-pub.pem")]) == 2
