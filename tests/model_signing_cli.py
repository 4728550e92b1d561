"""The real ``model_signing`` CLI (model-signing 1.1.1) in a separate venv, for tests.

safemodel never depends on model-signing; the tests check interop against the real
tool, installed once in ``$XDG_CACHE_HOME/safemodel-tests`` (pip, from the package
index; skipped offline, failed in CI).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safemodel.io.signing import public_pem

__all__ = ["CLI_REQUIREMENTS", "MODEL_SIGNING", "key_files", "model_signing_command", "run_cli"]

MODEL_SIGNING = "model-signing==1.1.1"
# model-signing imports OpenSSL (through sigstore) without declaring pyOpenSSL.
CLI_REQUIREMENTS = [MODEL_SIGNING, "pyopenssl"]


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "safemodel-tests"


def model_signing_command() -> list[str]:
    """``python -m model_signing`` of a separate venv with model-signing 1.1.1.

    Created once (about 60 s here, downloads included: 35 packages) in
    ``$XDG_CACHE_HOME/safemodel-tests/model-signing-<key>`` and reused.
    """
    key = hashlib.sha256("\n".join([sys.version, *CLI_REQUIREMENTS]).encode()).hexdigest()[:16]
    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"model-signing-{key}"
    with open(root / f"model-signing-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "complete").exists():
            building = root / f"model-signing-{key}.building"
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", building], check=True)
            done = subprocess.run(
                [sys.executable, "-m", "pip", "--python", building / "bin" / "python",
                 "install", "-q", "--disable-pip-version-check", *CLI_REQUIREMENTS],
                capture_output=True, text=True)
            if done.returncode:
                shutil.rmtree(building, ignore_errors=True)
                reason = f"cannot install {MODEL_SIGNING}: {done.stderr[-2000:]}"
                if os.environ.get("CI"):
                    pytest.fail(reason)
                pytest.skip(reason)  # offline machine; CI always runs it
            (building / "complete").write_text(
                f"{' '.join(CLI_REQUIREMENTS)}\ncreated in {time.perf_counter() - started:.0f} s\n")
            building.rename(target)
    return [str(target / "bin" / "python"), "-m", "model_signing"]


def run_cli(command: list[str], *args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def key_files(folder: Path, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    private, public = folder / "key.pem", folder / "key.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_text(public_pem(key))
    return private, public
