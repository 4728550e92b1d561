"""Tests for the user's keys, the trust store and the trust decision.

``safemodel.io.keys`` and ``safemodel.io.trust``: primitives first, then end to end
on real bundle files (members read with ``zipfile``), as phase 2's ``load`` will.
"""

from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import safemodel as sm
from safemodel.io.audit import pickle_references, restricted_loads
from safemodel.io.keys import (
    HOME_ENV,
    PRIVATE_KEY_FILE,
    TRUST_STORE_FOLDER,
    TRUSTED_KEYS_ENV,
    default_signing_key,
    own_key,
    safemodel_home,
    trust_add,
    trust_list,
    trust_remove,
    trusted_keys,
)
from safemodel.io.signing import (
    SIGNATURE_MEMBER,
    SIGNING_KEY_ENV,
    HmacKey,
    SigningKeyError,
    key_id,
    public_pem,
    sign_manifest,
)
from safemodel.io.trust import UNSIGNED, decide_trust, signing_key_for_save
from test_mutation import members_of, pack, rehash

MANIFEST = b'{"format_version": 1, "name": "churn"}'


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (SIGNING_KEY_ENV, TRUSTED_KEYS_ENV):
        monkeypatch.delenv(name, raising=False)
    # Never the developer's real home folder.
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "default-home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "alice"


@pytest.fixture
def other_home(tmp_path: Path) -> Path:
    return tmp_path / "bob"


# ------------------------------------------------------------------ the home folder


def test_home_folder_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert safemodel_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "env"))
    assert safemodel_home() == tmp_path / "env"
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert safemodel_home() == tmp_path / "xdg" / "safemodel"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert safemodel_home() == tmp_path / "user" / ".config" / "safemodel"


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_first_use_creates_a_private_key_only_the_owner_can_read(home: Path) -> None:
    assert own_key(home) is None
    key = default_signing_key(home)

    assert stat.S_IMODE((home / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert key_id(default_signing_key(home)) == key_id(key)  # the same key every time
    assert [p.name for p in home.iterdir()] == [PRIVATE_KEY_FILE]  # no temporary left


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_a_key_others_can_read_is_refused(home: Path) -> None:
    default_signing_key(home)
    (home / PRIVATE_KEY_FILE).chmod(0o644)

    with pytest.raises(SigningKeyError, match="chmod 600"):
        own_key(home)


def test_two_processes_creating_the_key_at_once_agree(home: Path) -> None:
    code = (
        "import sys; from safemodel.io.keys import default_signing_key; "
        "from safemodel.io.signing import key_id; "
        "print(key_id(default_signing_key(sys.argv[1])))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE,
                         text=True, env=env)
        for _ in range(2)
    ]
    ids = {proc.communicate()[0].strip() for proc in procs}

    assert ids == {key_id(own_key(home))}  # type: ignore[arg-type]


def test_show_prints_the_public_key_only(home: Path) -> None:
    key = default_signing_key(home)
    text = public_pem(key)

    assert text.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in text
    assert key_id(sm.io.signing.load_pem_key(text)) == key_id(key)


# ------------------------------------------------------------------ the trust store


def test_trust_add_list_remove(home: Path, tmp_path: Path) -> None:
    publisher = Ed25519PrivateKey.generate()
    pem_file = tmp_path / "publisher.pem"
    pem_file.write_text(public_pem(publisher))

    added = trust_add(pem_file, home=home)
    assert (added.label, added.key_type, added.key_id) == ("publisher", "ed25519",
                                                           key_id(publisher))
    entry = json.loads((home / TRUST_STORE_FOLDER / f"{key_id(publisher)}.json").read_text())
    assert entry["key_type"] == "ed25519"
    assert [k.key_id for k in trust_list(home)] == [key_id(publisher)]

    removed = trust_remove(key_id(publisher)[:8], home=home)
    assert removed.key_id == key_id(publisher)
    assert trust_list(home) == []
    with pytest.raises(sm.InvalidArgument, match="trusted: none"):
        trust_remove("abc", home=home)


def test_a_trust_store_entry_edited_into_another_key_is_refused(home: Path) -> None:
    trusted, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trust_add(trusted.public_key(), label="ci", home=home)
    path = home / TRUST_STORE_FOLDER / f"{key_id(trusted)}.json"
    entry = json.loads(path.read_text())
    path.write_text(json.dumps({**entry, "public_key": public_pem(other)}))

    with pytest.raises(SigningKeyError, match="edited by hand"):
        trust_list(home)


def test_the_trust_store_never_holds_a_secret(home: Path) -> None:
    with pytest.raises(SigningKeyError, match="never stored"):
        trust_add(HmacKey("team-secret"), home=home)
    with pytest.raises(SigningKeyError, match="no PEM armour"):
        trust_add("hmac-looking text", home=home)


def test_trusted_keys_gathers_every_source(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = default_signing_key(home)
    stored, env_file, env_dir_key, explicit = (Ed25519PrivateKey.generate() for _ in range(4))
    trust_add(stored.public_key(), label="stored", home=home)
    (tmp_path / "one.pem").write_text(public_pem(env_file))
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "two.pem").write_text(public_pem(env_dir_key))
    monkeypatch.setenv(TRUSTED_KEYS_ENV,
                       os.pathsep.join([str(tmp_path / "one.pem"), str(tmp_path / "folder")]))

    keys = trusted_keys([explicit.public_key()], home=home)

    assert [(k.key_id, k.source) for k in keys] == [
        (key_id(mine), "own key"),
        (key_id(stored), "trust store"),
        (key_id(env_file), f"${TRUSTED_KEYS_ENV}: {tmp_path / 'one.pem'}"),
        (key_id(env_dir_key), f"${TRUSTED_KEYS_ENV}: {tmp_path / 'folder'}"),
        (key_id(explicit), "trusted_keys[0]"),
    ]
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(tmp_path / "missing.pem"))
    with pytest.raises(SigningKeyError, match="Cannot read the key file"):
        trusted_keys(home=home)
    monkeypatch.delenv(TRUSTED_KEYS_ENV)
    with pytest.raises(sm.InvalidArgument, match="trusted_keys"):
        trusted_keys(public_pem(explicit), home=home)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the decision


def test_the_users_own_signature_is_trusted_without_arguments(home: Path) -> None:
    signature = sign_manifest(MANIFEST, signing_key_for_save(home=home))

    decision = decide_trust(MANIFEST, signature, home=home)

    assert decision.trusted
    assert decision.signer == key_id(own_key(home))  # type: ignore[arg-type]
    assert decision.verified_by is not None
    assert decision.verified_by.source == "own key"


def test_another_users_signature_is_refused_naming_the_key(home: Path,
                                                           other_home: Path) -> None:
    signature = sign_manifest(MANIFEST, default_signing_key(other_home))
    bob = key_id(own_key(other_home))  # type: ignore[arg-type]

    with pytest.raises(sm.UntrustedBundleError) as info:
        decide_trust(MANIFEST, signature, home=home, references=["posix.system"],
                     source="churn.safemodel")
    error = info.value
    assert isinstance(error, sm.IntegrityError)
    assert (error.signer, error.references, error.member) == (bob, ["posix.system"],
                                                              SIGNATURE_MEMBER)
    for fragment in (bob[:16], "posix.system", "safemodel trust add", "trusted_keys=",
                     "trust=True", "'churn.safemodel'"):
        assert fragment in str(error)
    assert pickle.loads(pickle.dumps(error)).signer == bob  # workers send it to parents

    assert not decide_trust(MANIFEST, signature, home=home, trust=True).trusted
    assert decide_trust(MANIFEST, signature, home=home,
                        trusted_keys=[own_key(other_home).public_key()]).trusted  # type: ignore[union-attr]
    trust_add(public_pem(own_key(other_home)), label="bob", home=home)  # type: ignore[arg-type]
    assert decide_trust(MANIFEST, signature, home=home).verified_by.label == "bob"  # type: ignore[union-attr]


def test_unsigned_and_hmac_bundles_are_untrusted_unless_told(home: Path) -> None:
    with pytest.raises(sm.UntrustedBundleError, match="unsigned") as info:
        decide_trust(MANIFEST, None, home=home)
    assert info.value.signer == UNSIGNED

    hmac_signature = sign_manifest(MANIFEST, HmacKey("team-secret"))
    with pytest.raises(sm.UntrustedBundleError, match=r"HmacKey\(secret\)"):
        decide_trust(MANIFEST, hmac_signature, home=home)
    assert decide_trust(MANIFEST, hmac_signature, home=home,
                        signing_key="hmac:team-secret").trusted
    assert decide_trust(MANIFEST, hmac_signature, home=home,
                        trusted_keys=[HmacKey("team-secret")]).trusted


def test_an_explicit_key_that_fails_is_refused_even_with_trust(home: Path) -> None:
    signature = sign_manifest(MANIFEST, default_signing_key(home))

    with pytest.raises(sm.IntegrityError, match="does not match") as info:
        decide_trust(MANIFEST, signature, home=home, trust=True,
                     signing_key=Ed25519PrivateKey.generate().public_key())
    assert not isinstance(info.value, sm.UntrustedBundleError)


def test_a_trusted_signature_over_a_modified_manifest_is_tampering(home: Path) -> None:
    signature = sign_manifest(MANIFEST, default_signing_key(home))

    with pytest.raises(sm.IntegrityError, match="modified after signing") as info:
        decide_trust(MANIFEST.replace(b"churn", b"chirn"), signature, home=home, trust=True)
    assert not isinstance(info.value, sm.UntrustedBundleError)


def test_the_environment_key_is_explicit(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signature = sign_manifest(MANIFEST, HmacKey("from-env"))
    monkeypatch.setenv(SIGNING_KEY_ENV, "hmac:from-env")
    assert decide_trust(MANIFEST, signature, home=home).verified_by.source == (  # type: ignore[union-attr]
        f"${SIGNING_KEY_ENV}")
    monkeypatch.setenv(SIGNING_KEY_ENV, "from-env")  # no prefix: refused, never guessed
    with pytest.raises(SigningKeyError, match="'hmac:'"):
        decide_trust(MANIFEST, signature, home=home)


# ------------------------------------------------------------------ real bundle files


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_a_bundle_from_another_home_is_refused_before_unpickling(
    lr_bundle: sm.ModelBundle, lr_bundle_path: Path, home: Path, other_home: Path,
    tmp_path: Path,
) -> None:
    # Bob signs a bundle whose pickle writes a file; Alice's decision refuses it.
    pwned = tmp_path / "pwned"
    members = members_of(lr_bundle_path.read_bytes())
    members["estimator.pkl"] = pickle.dumps(
        _Touch(str(pwned)), protocol=5
    )
    members = rehash(members)
    members[SIGNATURE_MEMBER] = sign_manifest(members["manifest.json"],
                                              default_signing_key(other_home))
    path = tmp_path / "evil.safemodel"
    path.write_bytes(pack(members))

    stored = _members(path)
    references = pickle_references(stored["estimator.pkl"])
    with pytest.raises(sm.UntrustedBundleError) as info:
        decide_trust(stored["manifest.json"], stored.get(SIGNATURE_MEMBER), home=home,
                     references=references, source=str(path))
    assert references == ["io.open"]
    assert "io.open" in str(info.value)
    assert info.value.signer == key_id(own_key(other_home))  # type: ignore[arg-type]
    # Trusted on purpose, the audit still stops the payload while unpickling.
    decide_trust(stored["manifest.json"], stored[SIGNATURE_MEMBER], home=home, trust=True)
    with pytest.raises(sm.IntegrityError, match="io.open"):
        restricted_loads(stored["estimator.pkl"], sm.DEFAULT_ALLOWED_MODULES)
    assert not pwned.exists()

    # A genuine bundle by Bob loads after Alice trusts Bob's key.
    good = tmp_path / "good.safemodel"
    lr_bundle.save(good, signing_key=default_signing_key(other_home))
    stored = _members(good)
    with pytest.raises(sm.UntrustedBundleError):
        decide_trust(stored["manifest.json"], stored[SIGNATURE_MEMBER], home=home)
    trust_add(public_pem(own_key(other_home)), label="bob", home=home)  # type: ignore[arg-type]
    assert decide_trust(stored["manifest.json"], stored[SIGNATURE_MEMBER], home=home).trusted
    estimator = restricted_loads(stored["estimator.pkl"], sm.DEFAULT_ALLOWED_MODULES)
    assert type(estimator).__name__ == "Pipeline"


class _Touch:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.target, "w"))
