"""The environment a bundle was built in: package versions, and how they differ now.

A bundle records the versions of Python, the core packages and of every distribution
its estimator pickle references (:func:`capture_environment`); loading compares them
with what is installed (:func:`environment_diff`). Reading versions touches package
metadata only, never a bundle file, so this lives in ``core``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["CORE_PACKAGES", "capture_environment", "environment_diff"]

CORE_PACKAGES = (
    "scikit-learn", "numpy", "scipy", "pandas", "pandera", "cloudpickle", "safemodel",
)

# Top-level import names whose distribution name differs.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


@functools.cache
def _version_of(distribution: str) -> str | None:
    """Installed version, read once per process: importlib.metadata parses the package's
    metadata file on every call (about 1 ms), and a package upgraded on disk while the
    process runs is not the one it imported anyway."""
    try:
        return importlib.metadata.version(distribution)
    except (importlib.metadata.PackageNotFoundError, ValueError):  # ValueError: "" name
        return None


@functools.cache
def _module_owners() -> Mapping[str, list[str]]:
    """Top-level module -> distributions; slow (scans every installed package), so once."""
    try:
        return importlib.metadata.packages_distributions()
    except Exception:  # pragma: no cover - broken metadata must not stop a save
        return {}


def capture_environment(modules: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of Python, the core packages and the distributions of ``modules``.

    Parameters
    ----------
    modules : iterable of str
        Top-level module names the estimator pickle references.

    Returns
    -------
    dict of str to str or None
        ``"python"``, ``"platform"``, every core package (``None`` when absent) and
        every installed distribution that owns one of ``modules``.
    """
    env: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": sys.platform,
    }
    for dist in CORE_PACKAGES:
        env[dist] = _version_of(dist)
    owners = _module_owners()
    for module in sorted(set(modules)):
        if module in ("builtins", "__main__", "copyreg", "_codecs"):
            continue
        dists = owners.get(module) or [_DISTRIBUTIONS.get(module, module)]
        for dist in dists:
            if dist not in env:
                version = _version_of(dist)
                if version is not None:
                    env[dist] = version
    return env


def environment_diff(
    recorded: Mapping[str, Any], running: Mapping[str, Any] | None = None
) -> dict[str, tuple[str | None, str | None]]:
    """``name -> (recorded, running)`` for every entry whose value differs.

    Parameters
    ----------
    recorded : mapping
        What :func:`capture_environment` recorded at build time.
    running : mapping, optional
        Defaults to the versions installed in this process.
    """
    if running is None:
        here = {"python": platform.python_version(), "platform": sys.platform}
        running = {k: here[k] if k in here else _version_of(k) for k in recorded}
    return {
        k: (recorded.get(k), running.get(k))
        for k in sorted(set(recorded) | set(running))
        if recorded.get(k) != running.get(k)
    }
