"""The real ``model_signing`` CLI (model-signing 1.1.1) in a separate venv, for tests.

safemodel never depends on model-signing; the tests check interop against the real
tool, installed once in ``$XDG_CACHE_HOME/safemodel-tests`` (pip, from the package
index; skipped offline, failed in CI).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safemodel.io.signing import public_pem
from venvs import cached_venv

__all__ = ["CLI_REQUIREMENTS", "MODEL_SIGNING", "key_files", "model_signing_command", "run_cli"]

MODEL_SIGNING = "model-signing==1.1.1"
# model-signing imports OpenSSL (through sigstore) without declaring pyOpenSSL.
CLI_REQUIREMENTS = [MODEL_SIGNING, "pyopenssl"]


def model_signing_command() -> list[str]:
    """``python -m model_signing`` of a separate venv with model-signing 1.1.1.

    Created once (about 60 s here, downloads included: 35 packages) in
    ``$XDG_CACHE_HOME/safemodel-tests/model-signing-<key>`` and reused.
    """
    target = cached_venv("model-signing", CLI_REQUIREMENTS, MODEL_SIGNING)
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
