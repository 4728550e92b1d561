"""Separate virtual environments for tests that need other packages (built once, cached).

Kept in ``$XDG_CACHE_HOME/safemodel-tests/<prefix>-<key>``, keyed on the requirement set
and this Python; an offline machine skips the test, CI fails it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["cache_root", "cached_venv"]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "safemodel-tests"


def cached_venv(prefix: str, requirements: Sequence[str], what: str) -> Path:
    """The folder of a venv with ``requirements`` (pip), created on first use.

    ``what`` names it in the skip/fail message. xdist workers wait for one builder (a
    file lock); a half-built folder is never used (``complete`` is written last, then
    the folder is renamed into place: venv's ``bin/python`` finds ``pyvenv.cfg`` beside
    it, so the folder can move).
    """
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{prefix}-{key}"
    with open(root / f"{prefix}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "complete").exists():
            building = root / f"{prefix}-{key}.building"
            shutil.rmtree(building, ignore_errors=True)
            shutil.rmtree(target, ignore_errors=True)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", building], check=True)
            done = subprocess.run(
                [sys.executable, "-m", "pip", "--python", building / "bin" / "python",
                 "install", "-q", "--disable-pip-version-check", *requirements],
                capture_output=True, text=True)
            if done.returncode:
                shutil.rmtree(building, ignore_errors=True)
                reason = f"cannot create {what}: {done.stderr[-2000:]}"
                if os.environ.get("CI"):
                    pytest.fail(reason)
                pytest.skip(reason)  # offline machine; CI always runs it
            (building / "complete").write_text(
                "\n".join(requirements) + f"\ncreated in {time.perf_counter() - started:.0f} s\n")
            building.rename(target)
    return target
