"""``save(..., sidecar=True)`` and ``BundleStore(root, sidecar=True)``: sidecars beside bundles."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import safemodel as sm
import safemodel.store.sidecars as store_sidecars
import safemodel.store.store as store_module
from model_signing_cli import key_files, model_signing_command, run_cli
from safemodel.errors import IntegrityError, SigningKeyError, StoreError, UntrustedBundleError
from safemodel.io import files
from safemodel.io import model_signing as ms
from safemodel.io.keys import default_signing_key, trusted_keys
from safemodel.io.signing import key_id, public_pem


@pytest.fixture(autouse=True)
def _own_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAFEMODEL_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("SAFEMODEL_SIGNING_KEY", raising=False)
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another machine: a home that trusts nothing (its own fresh key only)."""
    monkeypatch.setenv("SAFEMODEL_HOME", str(tmp_path / "elsewhere"))


# --- save --------------------------------------------------------------------------


def test_save_writes_a_sidecar_of_the_written_bytes(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    sig = ms.sidecar_path(path)
    assert json.loads(sig.read_bytes())["verificationMaterial"]["publicKey"]["hint"] \
        == key_id(p256)
    assert ms.verify_sidecar(path, trusted_keys=[p256.public_key()]).key_id == key_id(p256)
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != "home")
    assert names == ["m.safemodel", "m.safemodel.sig"]  # no temporary file left
    # Without sidecar=True nothing is written beside the bundle.
    lr_bundle.save(tmp_path / "plain.safemodel", signing_key=p256)
    assert not ms.sidecar_path(tmp_path / "plain.safemodel").exists()


def test_save_with_an_ed25519_key_says_how_to_get_a_p256_one(
    lr_bundle: sm.ModelBundle, tmp_path: Path
) -> None:
    default_signing_key()  # the user's own key: Ed25519, the default
    path = tmp_path / "m.safemodel"
    with pytest.raises(SigningKeyError, match="keys create --type ecdsa-p256"):
        lr_bundle.save(path, sidecar=True)
    assert not path.exists()  # nothing written
    assert not ms.sidecar_path(path).exists()
    with pytest.raises(SigningKeyError, match="ECDSA private key"):
        lr_bundle.save(path, signing_key="hmac:team-secret", sidecar=True)
    with pytest.raises(sm.InvalidArgument, match="sidecar"):
        lr_bundle.save(path, sidecar="yes")  # type: ignore[arg-type]


def test_save_with_the_users_p256_key(lr_bundle: sm.ModelBundle, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from safemodel.cli import main

    assert main(["keys", "create", "--type", "ecdsa-p256", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["key_type"] == "ecdsa-p256"
    assert main(["keys", "create", "--type", "ed25519"]) == 2  # one key is kept
    assert "already have a ecdsa-p256 key" in capsys.readouterr().err
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, sidecar=True)
    assert ms.verify_sidecar(path).key_id == created["key_id"]


def test_overwrite_replaces_or_removes_the_old_sidecar_and_a_refusal_leaves_it(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    before = ms.sidecar_path(path).read_bytes()
    with pytest.raises(sm.SafeModelError, match="already exists"):
        hgb_bundle.save(path, signing_key=p256, sidecar=True)
    assert ms.sidecar_path(path).read_bytes() == before
    hgb_bundle.save(path, signing_key=p256, sidecar=True, overwrite=True)
    assert ms.verify_sidecar(path, trusted_keys=[p256.public_key()])  # the new bytes
    # Without sidecar=True the old .sig signs bytes that are gone: it must not stay.
    lr_bundle.save(path, signing_key=p256, overwrite=True)
    assert not ms.sidecar_path(path).exists()
    assert sm.load(path, trusted_keys=[p256.public_key()]).fingerprint == lr_bundle.fingerprint
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "home") == ["m.safemodel"]


def test_a_saved_sidecar_alone_establishes_trust_on_another_machine(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    _elsewhere(monkeypatch, tmp_path)
    with pytest.raises(UntrustedBundleError):
        sm.load(path)
    assert sm.load(path, trusted_keys=[p256.public_key()]).name == lr_bundle.name


def test_load_with_sidecar_requires_one_over_the_bytes_loaded(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    trusted = [p256.public_key()]
    path = tmp_path / "m.safemodel"
    sig = ms.sidecar_path(path)
    lr_bundle.save(path, signing_key=p256)  # its own signature is trusted; no .sig
    assert sm.load(path, trusted_keys=trusted).fingerprint == lr_bundle.fingerprint
    with pytest.raises(IntegrityError, match="missing") as missing:
        sm.load(path, trusted_keys=trusted, sidecar=True)
    assert missing.value.member == str(sig)
    # A trusted key's signature of other bytes: refused, the bundle's own one regardless.
    other = tmp_path / "other.safemodel"
    hgb_bundle.save(other, signing_key=p256)
    sig.write_bytes(ms.sign_sidecar(other.read_bytes(), path.name, p256))
    with pytest.raises(IntegrityError, match="modified after signing") as modified:
        sm.load(path, trusted_keys=trusted, sidecar=True)
    assert modified.value.member == str(sig)
    assert sm.load(path, trusted_keys=trusted).name == lr_bundle.name  # not required: unread
    # By a key not trusted here: refused, even when the caller trusts the file on purpose.
    stranger = ec.generate_private_key(ec.SECP256R1())
    sig.write_bytes(ms.sign_sidecar(path.read_bytes(), path.name, stranger))
    with pytest.raises(UntrustedBundleError):
        sm.load(path, trusted_keys=trusted, sidecar=True, trust=True)
    sig.write_bytes(b"not a signature")
    with pytest.raises(IntegrityError):
        sm.load(path, trusted_keys=trusted, sidecar=True, trust=True)
    sig.write_bytes(ms.sign_sidecar(path.read_bytes(), path.name, p256))
    assert sm.load(path, trusted_keys=trusted, sidecar=True).fingerprint \
        == lr_bundle.fingerprint
    with pytest.raises(sm.InvalidArgument, match="sidecar"):
        sm.load(path, sidecar="yes")  # type: ignore[arg-type]


@pytest.mark.slow
def test_model_signing_cli_verifies_a_sidecar_written_by_save(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    command = model_signing_command()
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    _, public = key_files(tmp_path, p256)
    done = run_cli(command, "verify", "key", "--signature", ms.sidecar_path(path),
                   "--public_key", public, path)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "other").mkdir()
    _, other_public = key_files(tmp_path / "other", ec.generate_private_key(ec.SECP256R1()))
    done = run_cli(command, "verify", "key", "--signature", ms.sidecar_path(path),
                   "--public_key", other_public, path)
    assert done.returncode != 0


# --- the store ---------------------------------------------------------------------


def _stored(store: sm.BundleStore, name: str, version: str) -> Path:
    return store.path(name, version)


def test_store_keeps_and_requires_sidecars(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    trusted = [p256.public_key()]
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    info = store.put(lr_bundle, signing_key=p256)
    path = _stored(store, info.name, str(info.version))
    assert ms.verify_sidecar(path, trusted_keys=trusted).key_id == key_id(p256)
    assert store.get(info.name, str(info.version)).fingerprint == info.fingerprint
    assert store.promote(info.name, str(info.version)) is not None
    assert store.load_all(preload=True)[info.name].fingerprint == info.fingerprint
    assert not list((tmp_path / "s" / ".incoming").iterdir())

    # A sidecar that signs other bytes (a valid signature by the trusted key!) is refused.
    good = ms.sidecar_path(path).read_bytes()
    other = tmp_path / "other.safemodel"
    hgb_bundle.save(other, signing_key=p256)
    ms.sidecar_path(path).write_bytes(ms.sign_sidecar(other.read_bytes(), path.name, p256))
    fresh = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    with pytest.raises(IntegrityError, match="modified after signing"):
        fresh.get(info.name, str(info.version))
    with pytest.raises(IntegrityError, match="Refused to promote"):
        fresh.promote(info.name, str(info.version), alias="staging")
    # Missing: refused too, although the bundle's own signature is trusted.
    ms.sidecar_path(path).unlink()
    with pytest.raises(IntegrityError, match="missing") as missing:
        sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted).get(
            info.name, str(info.version))
    assert missing.value.member == str(ms.sidecar_path(path))  # the real file, by path
    # By a key not trusted here: refused.
    stranger = ec.generate_private_key(ec.SECP256R1())
    ms.sidecar_path(path).write_bytes(ms.sign_sidecar(path.read_bytes(), path.name, stranger))
    with pytest.raises(UntrustedBundleError):
        sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted).get(
            info.name, str(info.version))
    ms.sidecar_path(path).write_bytes(good)
    assert sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted).get(
        info.name, str(info.version)).fingerprint == info.fingerprint


def test_store_put_of_a_file_keeps_its_verified_sidecar(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path
) -> None:
    trusted = [p256.public_key()]
    vendor_key = ec.generate_private_key(ec.SECP256R1())
    build = tmp_path / "build"
    build.mkdir()
    path = build / "m.safemodel"
    lr_bundle.save(path, signing_key=vendor_key, sidecar=True)
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    with pytest.raises(UntrustedBundleError, match="Refused to put"):
        store.put(path)  # the vendor's key is not trusted here
    assert store.names() == []
    store = sm.BundleStore(tmp_path / "s", sidecar=True,
                           trusted_keys=[*trusted, vendor_key.public_key()])
    # A sidecar that does not match the file: refused, nothing added.
    shutil.copyfile(ms.sidecar_path(path), tmp_path / "keep.sig")
    hgb_bundle.save(path, signing_key=vendor_key, overwrite=True)
    shutil.copyfile(tmp_path / "keep.sig", ms.sidecar_path(path))
    with pytest.raises(IntegrityError, match="modified after signing"):
        store.put(path)
    assert store.names() == []
    lr_bundle.save(path, signing_key=vendor_key, sidecar=True, overwrite=True)
    info = store.put(path)
    stored = _stored(store, info.name, str(info.version))
    assert ms.sidecar_path(stored).read_bytes() == ms.sidecar_path(path).read_bytes()
    assert store.get(info.name, str(info.version)).fingerprint == info.fingerprint


def test_store_signs_a_file_without_sidecar_only_if_a_trusted_key_signed_it(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    trusted = [p256.public_key()]
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    stranger = ec.generate_private_key(ec.SECP256R1())
    foreign = tmp_path / "foreign.safemodel"
    lr_bundle.save(foreign, signing_key=stranger)
    # Signing it would launder "somebody put this" into "a trusted key vouches for it".
    with pytest.raises(StoreError, match="will not vouch"):
        store.put(foreign, signing_key=p256)
    assert store.names() == []
    own = tmp_path / "own.safemodel"
    lr_bundle.save(own, signing_key=p256)
    info = store.put(own, signing_key=p256)
    stored = _stored(store, info.name, str(info.version))
    assert ms.verify_sidecar(stored, trusted_keys=trusted).key_id == key_id(p256)
    assert not ms.sidecar_path(own).exists()  # the source is left as it was


def test_store_without_sidecars_is_unchanged(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    store = sm.BundleStore(tmp_path / "s", trusted_keys=[p256.public_key()])
    info = store.put(lr_bundle, signing_key=p256)
    assert not ms.sidecar_path(_stored(store, info.name, str(info.version))).exists()
    with pytest.raises(sm.InvalidArgument, match="sidecar"):
        sm.BundleStore(tmp_path / "s", sidecar=1)  # type: ignore[arg-type]


# --- a save never leaves a signature of other bytes beside the bundle ---------------


def test_a_stray_sidecar_is_replaced_only_with_overwrite(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    path = tmp_path / "m.safemodel"
    stray = ms.sidecar_path(path)
    stray.write_bytes(b"a signature of some other file")
    for sidecar in (False, True):
        with pytest.raises(sm.SafeModelError, match=r"m\.safemodel\.sig.*overwrite=True"):
            lr_bundle.save(path, signing_key=p256, sidecar=sidecar)
        assert not path.exists()  # nothing written
        assert stray.read_bytes() == b"a signature of some other file"
    lr_bundle.save(path, signing_key=p256, overwrite=True)
    assert not stray.exists()
    stray.write_bytes(b"a signature of some other file")
    lr_bundle.save(path, signing_key=p256, sidecar=True, overwrite=True)
    assert ms.verify_sidecar(path, trusted_keys=[p256.public_key()]).key_id == key_id(p256)


@pytest.mark.parametrize("sidecar", [False, True])
def test_no_reader_sees_the_new_bundle_beside_the_old_sidecar(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sidecar: bool
) -> None:
    """What a reader finds around each rename of an overwrite: never a mismatching pair."""
    path = tmp_path / "m.safemodel"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    sig, trusted = ms.sidecar_path(path), trusted_keys([p256.public_key()])
    seen: list[str] = []

    def observe() -> None:
        if not sig.exists():
            seen.append("no signature")
            return
        try:
            ms.verify_sidecar_bytes(path.read_bytes(), sig.read_bytes(), trusted)
        except IntegrityError:
            seen.append("a signature of other bytes")
        else:
            seen.append("its signature")

    replace = os.replace

    def spying(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        observe()
        replace(src, dst)
        observe()

    monkeypatch.setattr(files.os, "replace", spying)
    hgb_bundle.save(path, signing_key=p256, sidecar=sidecar, overwrite=True)
    assert "a signature of other bytes" not in seen
    assert seen[-1] == ("its signature" if sidecar else "no signature")
    assert ms.sidecar_path(path).exists() is sidecar


def test_sidecar_errors_name_the_real_signature_file(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "churn.safemodel"
    sig = str(ms.sidecar_path(path))
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    _elsewhere(monkeypatch, tmp_path)
    with pytest.raises(UntrustedBundleError) as untrusted:
        sm.load(path)  # neither signature is by a key trusted here
    assert untrusted.value.member == sig
    assert f"{sig!r}" in str(untrusted.value)
    assert "'model.sig'" not in str(untrusted.value)
    # By a stranger inside, and a trusted key's .sig of other bytes beside it.
    stranger = ec.generate_private_key(ec.SECP256R1())
    lr_bundle.save(path, signing_key=stranger, overwrite=True)
    other = tmp_path / "other.safemodel"
    hgb_bundle.save(other, signing_key=p256)
    ms.sidecar_path(path).write_bytes(ms.sign_sidecar(other.read_bytes(), path.name, p256))
    with pytest.raises(IntegrityError, match="modified after signing") as modified:
        sm.load(path, trusted_keys=[p256.public_key()])
    assert modified.value.member == sig
    assert f"{sig!r}" in str(modified.value)


def test_store_rechecks_a_cached_bundle_when_its_sidecar_changes(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    trusted = [p256.public_key()]
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    info = store.put(lr_bundle, signing_key=p256)
    name, version = info.name, str(info.version)
    sig = ms.sidecar_path(_stored(store, name, version))
    good = sig.read_bytes()
    store.promote(name, version)
    cached = store.get(name, version)
    assert store.get(name, "production") is cached  # served from the cache
    # The same store, the same bundle file, another .sig: checked again, not served.
    stranger = ec.generate_private_key(ec.SECP256R1())
    sig.write_bytes(ms.sign_sidecar(_stored(store, name, version).read_bytes(), sig.name,
                                    stranger))
    with pytest.raises(UntrustedBundleError):
        store.get(name, version)
    sig.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.get(name, version)
    service = store.load_all()  # serving many models goes through the same check
    with pytest.raises(IntegrityError, match="missing"):
        service[name]
    sig.write_bytes(good)
    assert store.get(name, version).fingerprint == info.fingerprint


def _sidecar_reads(monkeypatch: pytest.MonkeyPatch,
                   then: list[Callable[[], object]] | None = None) -> list[Path]:
    """Every read of a ``.sig`` the store makes, in order; after each read the next
    action of ``then`` runs, if any (a file swapped in between two reads)."""
    reads: list[Path] = []
    read = ms.read_sidecar_file

    def reading(path: str | os.PathLike[str]) -> bytes | None:
        content = read(path)
        reads.append(Path(path))
        if then:
            then.pop(0)()
        return content

    for module in (store_module, store_sidecars):
        monkeypatch.setattr(module, "read_sidecar_file", reading)
    return reads


def test_store_reads_a_sidecar_once_per_lookup(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = [p256.public_key()]
    info = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted).put(
        lr_bundle, signing_key=p256)
    name, version = info.name, str(info.version)
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=trusted)
    sig = ms.sidecar_path(store.path(name, version))
    reads = _sidecar_reads(monkeypatch)
    store.get(name, version)  # a miss: the cache key and the check, from one read
    assert reads == [sig]
    store.get(name, version)  # a hit: the read for the cache key
    assert reads == [sig] * 2
    store.promote(name, version)  # verified again, whatever the cache says
    assert reads == [sig] * 3


def test_store_never_caches_a_bundle_under_a_signature_it_was_not_checked_with(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sm.BundleStore(tmp_path / "s", sidecar=True, trusted_keys=[p256.public_key()])
    info = store.put(lr_bundle, signing_key=p256)
    name, version = info.name, str(info.version)
    path = store.path(name, version)
    sig = ms.sidecar_path(path)
    good = sig.read_bytes()
    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = ms.sign_sidecar(path.read_bytes(), sig.name, stranger)
    sig.write_bytes(forged)
    # The stranger's .sig is read, then the good one is back before any second read:
    # the bundle must be judged by the bytes its cache key is made of.
    swaps: list[Callable[[], object]] = [lambda: sig.write_bytes(good)]
    _sidecar_reads(monkeypatch, swaps)
    with pytest.raises(UntrustedBundleError):
        store.get(name, version)
    # Had the good .sig been verified under the stranger's digest, this would be served.
    sig.write_bytes(forged)
    with pytest.raises(UntrustedBundleError):
        store.get(name, version)
    swaps.append(lambda: sig.write_bytes(good))
    with pytest.raises(UntrustedBundleError, match="Refused to promote"):
        store.promote(name, version)
    assert store.aliases(name) == {}
    assert store.get(name, version).fingerprint == info.fingerprint  # the good .sig
    assert store.promote(name, version) is not None


# --- the store's command line ------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    from safemodel.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_store_cli_keeps_and_requires_sidecars_with_sidecar_flag(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    from safemodel.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE

    assert _cli(capsys, "keys", "create", "--type", "ecdsa-p256")[0] == EXIT_OK
    root, build = tmp_path / "s", tmp_path / "build"
    build.mkdir()
    signed = build / "lr.safemodel"
    lr_bundle.save(signed, sidecar=True)  # by your own P-256 key: trusted here
    code, out, _ = _cli(capsys, "store", root, "put", signed, "--sidecar", "--json")
    assert code == EXIT_OK
    name, version = json.loads(out)[0]["name"], json.loads(out)[0]["version"]
    stored = root / name / "versions" / f"{version}.safemodel"
    assert ms.sidecar_path(stored).read_bytes() == ms.sidecar_path(signed).read_bytes()
    # A file by a key trusted nowhere, without a .sig: the store will not vouch for it.
    foreign = build / "hgb.safemodel"
    hgb_bundle.save(foreign, signing_key=ec.generate_private_key(ec.SECP256R1()))
    code, _, err = _cli(capsys, "store", root, "put", foreign, "--sidecar")
    assert code == EXIT_USAGE
    assert "will not vouch" in err
    code, out, _ = _cli(capsys, "store", root, "get", name, version, "--sidecar", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["verified"] is True
    assert _cli(capsys, "store", root, "promote", name, version, "--sidecar")[0] == EXIT_OK

    ms.sidecar_path(stored).unlink()
    code, _, err = _cli(capsys, "store", root, "get", name, version, "--sidecar")
    assert code == EXIT_FAILED  # an integrity check failed: exit 1, as verify and promote
    assert "missing" in err
    assert _cli(capsys, "store", root, "get", name, version)[0] == EXIT_OK  # without: as before
    code, _, err = _cli(capsys, "store", root, "promote", name, version, "--alias", "staging",
                        "--sidecar")
    assert code == EXIT_FAILED
    assert "missing" in err
    assert _cli(capsys, "store", root, "promote", name, version, "--alias", "staging")[0] \
        == EXIT_OK
    # Rollback verifies the earlier target the same way.
    ms.sidecar_path(stored).write_bytes(ms.sidecar_path(signed).read_bytes())
    newer = build / "lr2.safemodel"
    sm.ModelBundle(lr_bundle.estimator, lr_bundle.contract, lr_bundle.policy, lr_bundle.golden,
                   name=name, version="9.0.0").save(newer, sidecar=True)
    assert _cli(capsys, "store", root, "put", newer, "--sidecar")[0] == EXIT_OK
    assert _cli(capsys, "store", root, "promote", name, "9.0.0", "--sidecar")[0] == EXIT_OK
    ms.sidecar_path(stored).write_bytes(b"junk")
    code, _, err = _cli(capsys, "store", root, "rollback", name, "--sidecar")
    assert code == EXIT_FAILED
    assert "Refused to roll" in err
    ms.sidecar_path(stored).write_bytes(ms.sidecar_path(signed).read_bytes())
    assert _cli(capsys, "store", root, "rollback", name, "--sidecar")[0] == EXIT_OK


def _same_model(bundle: sm.ModelBundle, version: str) -> sm.ModelBundle:
    return sm.ModelBundle(bundle.estimator, bundle.contract, bundle.policy, bundle.golden,
                          name=bundle.name, version=version)


def test_bundle_commands_require_sidecars_with_sidecar_flag(
    lr_bundle: sm.ModelBundle, hgb_bundle: sm.ModelBundle,
    penguins: tuple[pd.DataFrame, pd.Series], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``inspect``, ``verify``, ``diff`` and ``drift`` take ``--sidecar`` as the store
    actions do: on files, and on a store's versions with ``--store``."""
    from safemodel.cli import EXIT_FAILED, EXIT_OK

    code, out, _ = _cli(capsys, "keys", "create", "--type", "ecdsa-p256", "--json")
    assert code == EXIT_OK
    own = json.loads(out)["key_id"]
    signed, plain = tmp_path / "signed.safemodel", tmp_path / "plain.safemodel"
    lr_bundle.save(signed, sidecar=True)  # by your own P-256 key: trusted here
    _same_model(lr_bundle, "2.0.0").save(plain)  # your key too, but no .sig
    data = tmp_path / "data.csv"
    penguins[0].to_csv(data, index=False)

    code, out, _ = _cli(capsys, "inspect", signed, "--sidecar", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["sidecar"] == {
        "path": f"{signed}.sig", "ok": True, "key_id": own, "key_type": "ecdsa-p256",
        "label": "your own key", "source": "own key",
        "signer": f"{own[:16]} (your own key, ecdsa-p256, from own key)"}
    # One read of the bundle: what is described is what the .sig was checked over.
    from safemodel.io import archive

    reads: list[str] = []
    real_read = archive.read_file
    monkeypatch.setattr(archive, "read_file",
                        lambda path, *a: (reads.append(str(path)), real_read(path, *a))[1])
    code, out, err = _cli(capsys, "inspect", signed, "--sidecar")
    assert code == EXIT_OK, err
    assert reads == [str(signed)]
    monkeypatch.setattr(archive, "read_file", real_read)
    code, out, err = _cli(capsys, "inspect", plain, "--sidecar", "--json")
    assert code == EXIT_FAILED  # described all the same, then the failed check
    assert json.loads(out)["sidecar"]["ok"] is False
    assert "missing" in err
    code, out, _ = _cli(capsys, "inspect", plain)
    assert code == EXIT_OK
    assert "sidecar" not in out  # not asked: not looked at

    code, out, _ = _cli(capsys, "verify", signed, "--sidecar", "--json")
    assert code == EXIT_OK
    assert json.loads(out)["sidecar"] == f"{signed}.sig"
    code, _, err = _cli(capsys, "verify", plain, "--sidecar")
    assert code == EXIT_FAILED
    assert "missing" in err
    assert _cli(capsys, "verify", plain)[0] == EXIT_OK  # without: as before
    code, _, err = _cli(capsys, "diff", signed, plain, "--sidecar")
    assert code == EXIT_FAILED
    assert "plain.safemodel.sig" in err
    assert _cli(capsys, "diff", signed, plain)[0] == EXIT_OK
    code, _, err = _cli(capsys, "drift", plain, data, "--sidecar")
    assert code == EXIT_FAILED
    assert "missing" in err
    assert _cli(capsys, "drift", signed, data, "--sidecar")[0] == EXIT_OK

    # A trusted key's signature of other bytes beside the file: every command refuses.
    other = tmp_path / "other.safemodel"
    hgb_bundle.save(other, sidecar=True)
    shutil.copyfile(ms.sidecar_path(other), ms.sidecar_path(plain))
    for command in (["inspect", plain], ["verify", plain], ["diff", signed, plain]):
        code, _, err = _cli(capsys, *command, "--sidecar")
        assert code == EXIT_FAILED, command
        assert "modified after signing" in err, command

    # --store: the version's <version>.safemodel.sig, as `store get --sidecar` reads it.
    root = tmp_path / "s"
    assert _cli(capsys, "store", root, "put", signed, "--sidecar")[0] == EXIT_OK
    newer = tmp_path / "newer.safemodel"
    _same_model(lr_bundle, "3.0.0").save(newer, sidecar=True)
    assert _cli(capsys, "store", root, "put", newer, "--sidecar")[0] == EXIT_OK
    name = lr_bundle.name
    stored = root / name / "versions" / f"{lr_bundle.version}.safemodel"
    for command in (["inspect", name], ["verify", f"{name}@{lr_bundle.version}"],
                    ["diff", f"{name}@{lr_bundle.version}", f"{name}@3.0.0"],
                    ["drift", f"{name}@{lr_bundle.version}", data]):
        assert _cli(capsys, *command, "--store", root, "--sidecar")[0] == EXIT_OK, command
    ms.sidecar_path(stored).unlink()
    for command in (["verify", f"{name}@{lr_bundle.version}"],
                    ["diff", f"{name}@{lr_bundle.version}", f"{name}@3.0.0"]):
        code, _, err = _cli(capsys, *command, "--store", root, "--sidecar")
        assert code == EXIT_FAILED, command
        assert "missing" in err, command
        assert _cli(capsys, *command, "--store", root)[0] == EXIT_OK, command
    code, out, err = _cli(capsys, "inspect", f"{name}@{lr_bundle.version}", "--store", root,
                          "--sidecar")
    assert code == EXIT_FAILED
    assert f"{stored}.sig: FAILED" in out


def test_store_cli_sidecar_flag_through_python_m(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    import subprocess
    import sys

    path, public, root = tmp_path / "m.safemodel", tmp_path / "publisher.pem", tmp_path / "s"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    public.write_text(public_pem(p256))
    env = {**os.environ, "SAFEMODEL_TRUSTED_KEYS": str(public),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "safemodel", "store", str(root), "put",
                           str(path), "--sidecar"], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in root.glob("*/versions/*.sig")] == [f"{lr_bundle.version}.safemodel.sig"]


def test_verify_and_inspect_sidecar_flag_through_python_m(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    import subprocess
    import sys

    path, public = tmp_path / "m.safemodel", tmp_path / "publisher.pem"
    lr_bundle.save(path, signing_key=p256, sidecar=True)
    public.write_text(public_pem(p256))
    env = {**os.environ, "SAFEMODEL_TRUSTED_KEYS": str(public),
           "PYTHONPATH": os.pathsep.join(sys.path)}

    def safemodel(*argv: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "safemodel", *map(str, argv)],
                              capture_output=True, text=True, env=env, check=False)

    done = safemodel("verify", path, "--sidecar")
    assert done.returncode == 0, done.stderr
    assert f"sidecar: {path}.sig verified" in done.stdout
    done = safemodel("inspect", path, "--sidecar")
    assert done.returncode == 0, done.stderr
    assert f"{path}.sig: verified, signed by {key_id(p256)[:16]}" in done.stdout
    ms.sidecar_path(path).unlink()
    done = safemodel("verify", path, "--sidecar")
    assert done.returncode == 1
    assert "m.safemodel.sig' is missing" in done.stderr


def test_serve_sidecar_flag_opens_the_store_requiring_them(
    lr_bundle: sm.ModelBundle, p256: ec.EllipticCurvePrivateKey, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi")
    import safemodel.integrations.serve as serving
    from safemodel.cli import main

    root = tmp_path / "s"
    info = sm.BundleStore(root).put(lr_bundle, signing_key=p256)  # kept no .sig
    opened: list[sm.BundleStore] = []
    monkeypatch.setattr(serving, "run", lambda store, alias, *, load_options, **_: opened.append(
        sm.BundleStore(store, **load_options)))  # what the server opens, without serving
    assert main(["serve", str(root), "--trusted-key", str(_public(tmp_path, p256)),
                 "--sidecar"]) == 0
    with pytest.raises(IntegrityError, match="missing"):
        opened[0].get(info.name, str(info.version))
    assert main(["serve", str(root), "--trusted-key", str(_public(tmp_path, p256))]) == 0
    assert opened[1].get(info.name, str(info.version)).fingerprint == info.fingerprint


def _public(folder: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path = folder / "publisher.pem"
    path.write_text(public_pem(key))
    return path
