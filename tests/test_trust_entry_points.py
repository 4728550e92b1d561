"""Every entry point applies the same trust rules (issue 13, phase 2).

``load``, ``BundleStore`` and the CLI unpickle only what a trusted key signed; a
store serves only what the manifest, the path and the history agree on. Each attack
here ran code, or served the wrong model, before these checks.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import Version

import safemodel as sm
from safemodel.cli import main
from safemodel.io import archive
from safemodel.io.signing import public_pem, sign_manifest
from safemodel.store import BundleStore
from test_mutation import members_of, pack, rehash


class _Touch:
    """Unpickling this creates ``target`` (the classic ``__reduce__`` payload)."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch '{self.target}'",))


def _payload(path: Path, pwned: Path, key: Any = None) -> bytes:
    """``path``'s bundle with an estimator that writes ``pwned``; signed by ``key``."""
    members = members_of(path.read_bytes())
    members["estimator.pkl"] = pickle.dumps(_Touch(pwned), protocol=5)
    members = rehash(members)
    if key is not None:
        members["signature.json"] = sign_manifest(members["manifest.json"], key)
    return bytes(pack(members))


@pytest.fixture
def loader_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own for the loading side, so trust added here stays here."""
    home = tmp_path / "loader-home"
    monkeypatch.setenv("SAFEMODEL_HOME", str(home))
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ load


def test_a_bundle_from_another_home_is_refused_then_trusted_through_the_cli(
    lr_bundle: sm.ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Bob, under his own home, saves a genuine bundle and a hostile one.
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "bob"))
    good, evil, pwned = tmp_path / "good.safemodel", tmp_path / "evil.safemodel", \
        tmp_path / "pwned"
    lr_bundle.save(good)
    code, bob_pem, _ = run(capsys, "keys", "show")
    assert code == 0
    assert "key id: " in bob_pem
    (tmp_path / "bob.pem").write_text(bob_pem.split("key id:")[0])
    from safemodel.io.keys import own_key

    evil.write_bytes(_payload(good, pwned, own_key()))
    assert sm.load(good).fingerprint == lr_bundle.fingerprint  # same user: no argument

    # Alice, elsewhere: refused before unpickling; nothing written.
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "alice"))
    for path in (good, evil):
        with pytest.raises(sm.UntrustedBundleError, match="which you do not trust") as info:
            sm.load(path)
        assert info.value.signer == sm.inspect(good).signer != "unsigned"
    assert "posix.system" in info.value.references
    assert not pwned.exists()
    info_text = sm.inspect(good)
    assert not info_text.trusted
    assert "no key trusted here" in info_text.trust_reason
    assert sm.load(good, trust=True).fingerprint == lr_bundle.fingerprint
    assert sm.load(good, trusted_keys=[tmp_path / "bob.pem"]).fingerprint == lr_bundle.fingerprint

    code, out, _ = run(capsys, "trust", "add", tmp_path / "bob.pem", "--label", "bob")
    assert code == 0
    assert "bob" in out
    assert sm.load(good).fingerprint == lr_bundle.fingerprint
    assert sm.inspect(good).trusted
    code, out, _ = run(capsys, "--json", "trust", "list")
    [entry] = json.loads(out)
    assert entry["label"] == "bob"
    # Trusted signer, hostile content, audit on: the audit still stops it.
    with pytest.raises(sm.IntegrityError, match="posix.system"):
        sm.load(evil, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)
    assert not pwned.exists()
    code, out, _ = run(capsys, "trust", "remove", entry["key_id"][:12])
    assert code == 0
    with pytest.raises(sm.UntrustedBundleError):
        sm.load(good)


def test_the_refusal_comes_before_any_unpickling(
    lr_bundle_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    monkeypatch.setattr(archive, "_unpickle", lambda data, *rest: calls.append(data))
    path = tmp_path / "foreign.safemodel"
    path.write_bytes(_payload(lr_bundle_path, tmp_path / "pwned",
                              Ed25519PrivateKey.generate()))
    with pytest.raises(sm.UntrustedBundleError):
        sm.load(path)
    assert calls == []


# ------------------------------------------------------------------ store


@pytest.fixture
def store(tmp_path: Path, lr_bundle: sm.ModelBundle, strict_bundle: sm.ModelBundle
          ) -> BundleStore:
    store = BundleStore(tmp_path / "store")
    store.put(lr_bundle)                      # penguins-lr 1.0.0
    store.put(strict_bundle)                  # penguins-strict 1.0.0
    return store


def _forge_put(store: BundleStore, name: str, version: str, source: Path) -> Path:
    """Place ``source`` as ``name==version`` and forge its history line, as anyone who
    can write the store's folder can."""
    target = store.root / name / "versions" / f"{version}.safemodel"
    shutil.copyfile(source, target)
    fingerprint = sm.inspect(source).fingerprint
    line = {"time": "2026-01-01T00:00:00+00:00", "action": "put", "alias": None,
            "from": None, "to": version, "fingerprint": fingerprint, "user": None,
            "host": None}
    with open(store.root / name / "history.jsonl", "a") as fh:
        fh.write(json.dumps(line) + "\n")
    return target


def test_another_models_bundle_placed_under_a_name_is_refused(store: BundleStore) -> None:
    other = store.path("penguins-strict", "1.0.0")
    _forge_put(store, "penguins-lr", "9.0.0", other)
    with pytest.raises(sm.IntegrityError, match="'penguins-strict'") as info:
        store.get("penguins-lr", "9.0.0")
    assert info.value.expected == "penguins-lr"
    with pytest.raises(sm.IntegrityError):
        store.promote("penguins-lr", "9.0.0")
    assert store.aliases("penguins-lr") == {}


def test_an_old_signed_bundle_replayed_as_a_new_version_is_refused(store: BundleStore) -> None:
    old = store.path("penguins-lr", "1.0.0")
    _forge_put(store, "penguins-lr", "2.0.0", old)
    assert store.resolve("penguins-lr") == Version("2.0.0")
    with pytest.raises(sm.IntegrityError, match="version '1.0.0'") as info:
        store.get("penguins-lr")
    assert info.value.expected == "2.0.0"


def test_a_file_copied_in_without_a_put_is_refused(store: BundleStore) -> None:
    old = store.path("penguins-lr", "1.0.0")
    shutil.copyfile(old, store.root / "penguins-lr" / "versions" / "1.0.1.safemodel")
    with pytest.raises(sm.StoreError, match="records no put"):
        store.get("penguins-lr", "1.0.1")


def test_a_version_rewritten_in_place_runs_no_code(
    store: BundleStore, tmp_path: Path, lr_bundle_path: Path,
) -> None:
    """Same inode and mtime, new content that passes its own hashes: refused unread."""
    target = store.path("penguins-lr", "1.0.0")
    pwned = tmp_path / "pwned"
    before = os.stat(target)
    os.chmod(target, 0o644)
    with open(target, "r+b") as fh:  # in place: the inode stays
        fh.truncate(0)
        fh.write(_payload(lr_bundle_path, pwned))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_ino == before.st_ino
    for reader in (store, BundleStore(store.root)):
        with pytest.raises(sm.IntegrityError):
            reader.get("penguins-lr", "1.0.0")
    assert not pwned.exists()


def test_aliases_move_only_to_trusted_versions(
    tmp_path: Path, lr_bundle: sm.ModelBundle,
) -> None:
    vendor = Ed25519PrivateKey.generate()
    (tmp_path / "vendor.pem").write_text(public_pem(vendor))
    signed = tmp_path / "vendor.safemodel"
    lr_bundle.save(signed, signing_key=vendor)
    root = tmp_path / "store"
    BundleStore(root).put(signed)             # put unpickles nothing: allowed
    with pytest.raises(sm.UntrustedBundleError):
        BundleStore(root).get("penguins-lr", "1.0.0")
    trusting = BundleStore(root, trust=True)
    assert trusting.get("penguins-lr", "1.0.0").fingerprint == lr_bundle.fingerprint
    with pytest.raises(sm.UntrustedBundleError, match="Refused to promote"):
        trusting.promote("penguins-lr", "1.0.0")
    assert trusting.aliases("penguins-lr") == {}
    vouched = BundleStore(root, trusted_keys=[tmp_path / "vendor.pem"])
    assert vouched.promote("penguins-lr", "1.0.0") is not None
    assert vouched.get("penguins-lr", "production").fingerprint == lr_bundle.fingerprint


# ------------------------------------------------------------------ CLI


def test_the_cli_refuses_an_untrusted_bundle_unless_told(
    lr_bundle: sm.ModelBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    vendor = Ed25519PrivateKey.generate()
    pem = tmp_path / "vendor.pem"
    pem.write_text(public_pem(vendor))
    path = tmp_path / "vendor.safemodel"
    lr_bundle.save(path, signing_key=vendor)
    code, _, err = run(capsys, "verify", path)
    assert code == 1
    assert "do not trust" in err
    for flags in (["--trust"], ["--trusted-key", pem]):
        code, out, _ = run(capsys, "verify", path, *flags)
        assert code == 0, out
        assert "signer:" in out
    code, _, err = run(capsys, "diff", path, path)
    assert code != 0
    assert "do not trust" in err
    assert run(capsys, "diff", path, path, "--trusted-key", pem)[0] == 0
    code, out, _ = run(capsys, "--json", "inspect", path)
    info = json.loads(out)
    assert info["signed"]
    assert not info["trusted"]
    assert info["signer"] != "unsigned"
    root = tmp_path / "store"
    assert run(capsys, "store", root, "put", path)[0] == 0
    code, _, err = run(capsys, "store", root, "get", "penguins-lr")
    assert code != 0
    assert "do not trust" in err
    assert run(capsys, "store", root, "get", "penguins-lr", "--trust")[0] == 0
    code, _, err = run(capsys, "store", root, "promote", "penguins-lr", "1.0.0", "--trust")
    assert code != 0
    assert "Refused to promote" in err
    assert run(capsys, "store", root, "promote", "penguins-lr", "1.0.0",
               "--trusted-key", pem)[0] == 0
    # --store goes through the store's checks too.
    assert run(capsys, "verify", "--store", root, "penguins-lr@production")[0] == 1
    assert run(capsys, "verify", "--store", root, "penguins-lr@production", "--trusted-key",
               pem)[0] == 0
