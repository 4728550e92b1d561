"""Trust, end to end: signing, the pickle audit against a malicious bundle, and the
environment verdict of ``load``.

The malicious bundle models an attacker who can write the file but holds no signing
key: a real bundle whose ``estimator.pkl`` is replaced by a pickle that writes a file
when unpickled, with the manifest's hashes and fingerprint recomputed so it passes every
integrity check (and the manifest's ``pickle_references`` left claiming the original,
harmless list).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import pickle
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from packaging.version import Version
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

import safemodel as sm
import safemodel.core.bundle
from safemodel.io import archive
from safemodel.io.audit import ARBITRARY_CODE_MODULES
from safemodel.io.signing import (
    SIGNATURE_MEMBER,
    SIGNING_KEY_ENV,
    HmacKey,
    SigningKeyError,
    sign_manifest,
)
from test_mutation import members_of, pack, rehash

SECRET = HmacKey("correct horse battery staple, but longer and random")
ATTACKER = HmacKey("the attacker's own secret")


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV, raising=False)


@pytest.fixture
def no_unpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(data: bytes) -> object:
        raise AssertionError("unpickled a bundle that should have been refused first")

    monkeypatch.setattr(archive, "_unpickle", refuse)


@pytest.fixture(scope="module")
def author_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _public_pem(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _resign(path: Path, key: Any, dst: Path | None = None) -> Path:
    """Replace (or add) the signature with one made by ``key``: what a key holder does."""
    members = members_of(path.read_bytes())
    members.pop(SIGNATURE_MEMBER, None)
    manifest = members.pop("manifest.json")
    out = {"manifest.json": manifest, SIGNATURE_MEMBER: sign_manifest(manifest, key), **members}
    target = dst or path
    target.write_bytes(pack(out))
    return target


# ------------------------------------------------------------------ signing


def test_a_signed_bundle_loads_with_its_key(lr_bundle: sm.ModelBundle, tmp_path: Path) -> None:
    path = tmp_path / "signed.safemodel"
    lr_bundle.save(path, signing_key=SECRET)
    assert sm.inspect(path).signed
    assert sm.load(path, signing_key=SECRET).fingerprint == lr_bundle.fingerprint
    # Without the secret nothing trusted verifies it: refused before unpickling, unless
    # trusted on purpose.
    with pytest.raises(sm.UntrustedBundleError, match="HMAC secret you did not give"):
        sm.load(path)
    assert sm.load(path, trust=True).fingerprint == lr_bundle.fingerprint


def test_the_key_is_never_stored_in_the_bundle(lr_bundle: sm.ModelBundle, tmp_path: Path,
                                               author_key: Ed25519PrivateKey) -> None:
    hmac_path, ed_path = tmp_path / "hmac.safemodel", tmp_path / "ed.safemodel"
    lr_bundle.save(hmac_path, signing_key=SECRET)
    lr_bundle.save(ed_path, signing_key=author_key)
    raw_private = author_key.private_bytes(serialization.Encoding.Raw,
                                           serialization.PrivateFormat.Raw,
                                           serialization.NoEncryption())
    for path, secret in [(hmac_path, SECRET.secret), (ed_path, raw_private)]:
        data = path.read_bytes()
        for form in (secret, secret.hex().encode(), hashlib.sha256(secret).hexdigest().encode()):
            assert form not in data
    signature = json.loads(members_of(hmac_path.read_bytes())[SIGNATURE_MEMBER])
    assert set(signature) == {"algorithm", "signature"}


def _unsigned(path: Path, dst: Path) -> Path:
    """``path`` with its signature removed (hashes still valid)."""
    members = members_of(path.read_bytes())
    del members[SIGNATURE_MEMBER]
    dst.write_bytes(pack(members))
    return dst


def test_an_unsigned_bundle_is_refused_when_a_key_is_given(
    lr_bundle_path: Path, no_unpickle: None, author_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    unsigned = _unsigned(lr_bundle_path, tmp_path / "unsigned.safemodel")
    for key in (SECRET, author_key.public_key()):
        with pytest.raises(sm.IntegrityError, match="unsigned") as info:
            sm.load(unsigned, signing_key=key)
        assert info.value.member == SIGNATURE_MEMBER


def test_a_wrong_key_is_refused_before_unpickling(
    lr_bundle: sm.ModelBundle, tmp_path: Path, no_unpickle: None,
    author_key: Ed25519PrivateKey,
) -> None:
    hmac_path, ed_path = tmp_path / "hmac.safemodel", tmp_path / "ed.safemodel"
    lr_bundle.save(hmac_path, signing_key=SECRET)
    lr_bundle.save(ed_path, signing_key=author_key)
    cases = [
        (hmac_path, ATTACKER, "does not match"),
        (ed_path, Ed25519PrivateKey.generate().public_key(), "does not match"),
        (hmac_path, author_key.public_key(), "signed with 'hmac-sha256'"),
        (ed_path, SECRET, "signed with 'ed25519'"),
    ]
    for path, key, message in cases:
        with pytest.raises(sm.IntegrityError, match=message) as info:
            sm.load(path, signing_key=key)
        assert info.value.member == SIGNATURE_MEMBER


def test_the_environment_variable_supplies_the_key(
    lr_bundle: sm.ModelBundle, lr_bundle_path: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "hmac:" + SECRET.secret.decode())
    path = tmp_path / "env.safemodel"
    lr_bundle.save(path)  # signed with the key from the environment
    assert sm.inspect(path).signed
    assert sm.load(path).fingerprint == lr_bundle.fingerprint
    with pytest.raises(sm.IntegrityError, match="unsigned"):  # with the variable set,
        sm.load(_unsigned(lr_bundle_path, tmp_path / "unsigned.safemodel"))  # refused
    with pytest.raises(sm.IntegrityError, match="does not match"):
        sm.load(path, signing_key=ATTACKER)  # an explicit key wins over the variable


def test_a_service_verifies_ed25519_with_the_public_key_only(
    lr_bundle: sm.ModelBundle, tmp_path: Path, author_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "ed.safemodel"
    lr_bundle.save(path, signing_key=author_key)
    for public in (author_key.public_key(), _public_pem(author_key),
                   _public_pem(author_key).encode()):
        assert sm.load(path, signing_key=public).fingerprint == lr_bundle.fingerprint


def test_a_public_key_cannot_sign_and_nothing_is_written(
    lr_bundle: sm.ModelBundle, tmp_path: Path, author_key: Ed25519PrivateKey
) -> None:
    for key in (author_key.public_key(), _public_pem(author_key)):
        with pytest.raises(SigningKeyError, match="public key"):
            lr_bundle.save(tmp_path / "x.safemodel", signing_key=key)
    assert list(tmp_path.iterdir()) == []


def test_a_stripped_signature_is_refused(lr_bundle: sm.ModelBundle, tmp_path: Path,
                                         no_unpickle: None) -> None:
    path = tmp_path / "signed.safemodel"
    lr_bundle.save(path, signing_key=SECRET)
    members = members_of(path.read_bytes())
    del members[SIGNATURE_MEMBER]
    path.write_bytes(pack(members))
    with pytest.raises(sm.IntegrityError, match="unsigned"):
        sm.load(path, signing_key=SECRET)


def test_a_member_edited_after_signing_is_refused(
    lr_bundle: sm.ModelBundle, tmp_path: Path, no_unpickle: None,
    author_key: Ed25519PrivateKey,
) -> None:
    for key, verify_with in [(SECRET, SECRET), (author_key, author_key.public_key())]:
        path = tmp_path / "signed.safemodel"
        lr_bundle.save(path, signing_key=key, overwrite=True)
        members = members_of(path.read_bytes())
        policy = json.loads(members["policy.json"])
        policy["unseen_category"] = "passthrough"
        # Hashes recomputed, the old signature kept: the manifest bytes changed under it.
        edited = rehash({**members, "policy.json": json.dumps(policy).encode()})
        path.write_bytes(pack({**edited, SIGNATURE_MEMBER: members[SIGNATURE_MEMBER]}))
        with pytest.raises(sm.IntegrityError, match="does not match") as info:
            sm.load(path, signing_key=verify_with)
        assert info.value.member == SIGNATURE_MEMBER


# ------------------------------------------------------------------ a malicious bundle


class _WritesAFile:
    """Unpickling this runs ``touch target`` (the classic ``__reduce__`` exploit)."""

    def __init__(self, target: Path, via: str) -> None:
        self.target = target
        self.via = via

    def __reduce__(self) -> tuple[Any, ...]:
        if self.via == "os.system":
            return (os.system, (f"touch {shlex.quote(str(self.target))}",))
        if self.via == "builtins.exec":
            return (builtins.exec, (f"open({str(self.target)!r}, 'w').close()",))
        return (subprocess.call, (["touch", str(self.target)],))


REFERENCE = {"os.system": "posix.system", "builtins.exec": "builtins.exec",
             "subprocess.call": "subprocess.call"}


@pytest.fixture(params=list(REFERENCE))
def malicious(request: pytest.FixtureRequest, lr_bundle_path: Path,
              tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """(bundle path, the file its pickle writes, the reference that does it)."""
    pwned = tmp_path / "pwned"
    members = members_of(lr_bundle_path.read_bytes())
    members["estimator.pkl"] = pickle.dumps(_WritesAFile(pwned, request.param), protocol=5)
    path = tmp_path / "evil.safemodel"
    path.write_bytes(pack(rehash(members)))
    yield path, pwned, REFERENCE[request.param]
    assert {p.name for p in tmp_path.iterdir()} <= {"evil.safemodel", "pwned",
                                                   "signed.safemodel"}


def test_inspect_shows_the_offending_reference_and_writes_nothing(
    malicious: tuple[Path, Path, str]
) -> None:
    path, pwned, reference = malicious
    manifest = json.loads(members_of(path.read_bytes())["manifest.json"])
    assert reference not in manifest["pickle_references"]  # the manifest lies ...
    info = sm.inspect(path)
    assert reference in info.pickle_references  # ... inspect reads the pickle itself
    assert not pwned.exists()


def test_a_signing_key_keeps_a_malicious_bundle_out(
    malicious: tuple[Path, Path, str], author_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    path, pwned, _ = malicious
    for key in (SECRET, author_key.public_key()):
        with pytest.raises(sm.IntegrityError, match="unsigned"):
            sm.load(path, signing_key=key)
    # Signed by the attacker with a key of their own: still not the author's.
    signed = tmp_path / "signed.safemodel"
    for attacker_key, verify_with in [(ATTACKER, SECRET),
                                      (Ed25519PrivateKey.generate(), author_key.public_key())]:
        _resign(path, attacker_key, signed)
        with pytest.raises(sm.IntegrityError, match="does not match"):
            sm.load(signed, signing_key=verify_with)
    assert not pwned.exists()


def test_the_default_allow_list_keeps_a_malicious_bundle_out(
    malicious: tuple[Path, Path, str]
) -> None:
    path, pwned, reference = malicious
    # Trusted on purpose, so that the allow-list is what stands in the way.
    with pytest.raises(sm.IntegrityError, match="not unpickled") as info:
        sm.load(path, trust=True, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)
    assert reference in str(info.value)
    assert info.value.found == [reference]
    assert info.value.member == "estimator.pkl"
    assert not pwned.exists()


def test_by_default_a_malicious_unsigned_bundle_is_refused_before_unpickling(
    malicious: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """In a fresh process, as a service would: nothing runs, the refusal names what would."""
    path, pwned, reference = malicious
    script = ("import sys, safemodel as sm\n"
              "try:\n    sm.load(sys.argv[1])\n"
              "except sm.UntrustedBundleError as exc:\n    print(exc.signer, exc.references)\n")
    env = {k: v for k, v in os.environ.items() if k != SIGNING_KEY_ENV}
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("unsigned")
    assert reference in done.stdout
    assert not pwned.exists()


def test_without_protection_the_malicious_bundle_does_run(
    malicious: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """The control: the fixture is really malicious, so the tests above can fail."""
    path, pwned, _ = malicious
    script = ("import sys, safemodel as sm\n"
              "try:\n    sm.load(sys.argv[1], trust=True)\n"
              "except sm.SafeModelError as exc:\n    print(type(exc).__name__)\n")
    env = {k: v for k, v in os.environ.items() if k != SIGNING_KEY_ENV}
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert pwned.exists()


def test_code_pickled_by_value_needs_an_explicit_opt_in(tmp_path: Path) -> None:
    class Threshold:  # defined in a function, so cloudpickle stores its code by value
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return np.asarray(X["a"] > 0.5, dtype="int64")

    X = pd.DataFrame({"a": np.linspace(0, 1, 20)})
    bundle = sm.ModelBundle.from_training(Threshold(), X, name="by-value", golden_rows=4)
    path = tmp_path / "by-value.safemodel"
    bundle.save(path)
    assert any(r.startswith("cloudpickle.") for r in sm.inspect(path).pickle_references)
    with pytest.raises(sm.IntegrityError, match="cloudpickle") as info:
        sm.load(path, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)
    assert all(not r.startswith("sklearn.") for r in info.value.found)
    loaded = sm.load(path, allowed_modules=sm.DEFAULT_ALLOWED_MODULES + ARBITRARY_CODE_MODULES)
    assert loaded.fingerprint == bundle.fingerprint


def test_a_real_pipeline_passes_the_default_allow_list(lr_bundle_path: Path) -> None:
    info = sm.inspect(lr_bundle_path)
    assert "sklearn.pipeline.Pipeline" in info.pickle_references
    bundle = sm.load(lr_bundle_path, allowed_modules=sm.DEFAULT_ALLOWED_MODULES)
    assert bundle.name == "penguins-lr"


# ------------------------------------------------------------------ environment verdict


@pytest.fixture
def build_recording(
    lr_pipe: Pipeline, penguins: tuple[pd.DataFrame, pd.Series], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Path]:
    """Save a bundle whose manifest records other package versions than installed.

    The manifest is hashed, so the versions are changed where the bundle captures them.
    """
    def build(**versions: str | None) -> Path:
        real = safemodel.core.bundle.capture_environment
        with monkeypatch.context() as patch:
            patch.setattr(safemodel.core.bundle, "capture_environment",
                          lambda modules=(): {**real(modules), **versions})
            bundle = sm.ModelBundle.from_training(lr_pipe, penguins[0], name="env",
                                                  version="1.0.0", golden_rows=8)
            path = tmp_path / f"env-{len(list(tmp_path.iterdir()))}.safemodel"
            bundle.save(path)
        return path

    return build


def _installed(distribution: str) -> Version:
    from importlib.metadata import version

    return Version(version(distribution))


def _other_minor(distribution: str) -> str:
    v = _installed(distribution)
    return f"{v.major}.{v.minor + 1}.0"


def _other_patch(distribution: str) -> str:
    v = _installed(distribution)
    return f"{v.major}.{v.minor}.{v.micro + 1}"


def _shift_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library change that moves every probability a little (as an upgrade may)."""
    original = LogisticRegression.predict_proba

    def predict_proba(self: LogisticRegression, X: Any) -> np.ndarray:
        return np.asarray(original(self, X)) * 0.999 + 0.001 / 3

    monkeypatch.setattr(LogisticRegression, "predict_proba", predict_proba)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("safemodel")
            and r.levelno >= logging.INFO]


def test_warn_says_nothing_when_versions_match(
    build_recording: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = build_recording()
    caplog.set_level(logging.INFO, logger="safemodel")
    for environment in ("warn", "strict", "ignore"):
        sm.load(path, environment=environment)
    assert _records(caplog) == []


def test_warn_logs_one_info_line_when_versions_differ_but_outputs_reproduce(
    build_recording: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    recorded = _other_minor("numpy")
    path = build_recording(numpy=recorded)
    caplog.set_level(logging.DEBUG, logger="safemodel")
    sm.load(path)
    [record] = _records(caplog)
    assert record.levelno == logging.INFO
    assert f"numpy {recorded} -> {_installed('numpy')}" in record.getMessage()
    assert "reproduce" in record.getMessage()


def test_ignore_logs_nothing_when_versions_differ(
    build_recording: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = build_recording(numpy=_other_minor("numpy"))
    caplog.set_level(logging.INFO, logger="safemodel")
    sm.load(path, environment="ignore")
    assert _records(caplog) == []


def test_a_mismatch_names_the_packages_that_differ(
    build_recording: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = _other_minor("scikit-learn")
    path = build_recording(**{"scikit-learn": recorded})
    _shift_scores(monkeypatch)
    for environment in ("warn", "ignore"):
        with pytest.raises(sm.GoldenMismatchError, match="predict_proba") as info:
            sm.load(path, environment=environment)
        assert info.value.environment_diff["scikit-learn"] == (
            recorded, str(_installed("scikit-learn")))
        assert f"scikit-learn {recorded} -> {_installed('scikit-learn')}" in str(info.value)


def test_a_mismatch_says_when_no_package_changed(
    build_recording: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = build_recording()
    _shift_scores(monkeypatch)
    with pytest.raises(sm.GoldenMismatchError, match="no recorded package version changed"):
        sm.load(path)


@pytest.mark.parametrize("distribution", ["scikit-learn", "numpy", "scipy", "pandas"])
def test_strict_refuses_a_minor_version_difference_before_unpickling(
    build_recording: Callable[..., Path], distribution: str, no_unpickle: None
) -> None:
    recorded = _other_minor(distribution)
    path = build_recording(**{distribution: recorded})
    with pytest.raises(sm.IntegrityError, match=f"{distribution} {recorded} ->") as info:
        sm.load(path, environment="strict")
    assert info.value.expected == {distribution: recorded}
    assert info.value.found == {distribution: str(_installed(distribution))}


def test_strict_refuses_a_major_version_difference(
    build_recording: Callable[..., Path], no_unpickle: None
) -> None:
    v = _installed("pandas")
    path = build_recording(pandas=f"{v.major - 1}.{v.minor}.{v.micro}")
    with pytest.raises(sm.IntegrityError, match="environment='strict'"):
        sm.load(path, environment="strict")


def test_strict_accepts_patch_differences_and_other_packages(
    build_recording: Callable[..., Path]
) -> None:
    path = build_recording(numpy=_other_patch("numpy"), pandera="0.0.1", python="3.0.0")
    assert sm.load(path, environment="strict").name == "env"


def test_an_unknown_environment_mode_is_refused(lr_bundle_path: Path) -> None:
    with pytest.raises(sm.SafeModelError, match="'warn', 'strict', 'ignore'"):
        sm.load(lr_bundle_path, environment="lenient")  # type: ignore[arg-type]
