"""Value rules shared by every layer: bundle names and versions.

One rule per concept, so the bundle, the archive reader and the store cannot disagree
about what a valid name is. Callers wrap :class:`NameProblem` in the error of their
own layer (``InvalidArgument`` for an argument, ``BundleFormatError`` for a file,
``StoreError`` for a store).
"""

from __future__ import annotations

import os
from typing import Any

from packaging.version import InvalidVersion, Version

from safemodel.errors import InvalidArgument

__all__ = ["bundle_name_problem", "parse_version"]


def bundle_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a bundle, or ``None`` when it can.

    A bundle name is a non-empty string, not only whitespace, without slashes or
    backslashes, that does not start with ``'.'`` (it becomes a folder of a store).
    """
    if not isinstance(name, str):
        return f"a bundle name must be a string; got {type(name).__name__}"
    if not name.strip():
        return "a bundle name must not be empty"
    if name.startswith("."):
        return f"a bundle name must not start with '.'; got {name!r}"
    if any(sep in name for sep in ("/", "\\", os.sep)):
        return f"a bundle name must not contain slashes; got {name!r}"
    return None


def parse_version(version: Any) -> Version:
    """``version`` as a :class:`packaging.version.Version` (PEP 440).

    Raises
    ------
    InvalidArgument
        When ``version`` is not a PEP 440 version; an archive reader wraps it in a
        ``BundleFormatError``.
    """
    if isinstance(version, Version):
        return version
    try:
        return Version(str(version))
    except InvalidVersion:
        raise InvalidArgument(
            f"Bundle version must be a PEP 440 version such as '1.2.0' or '2.0rc1'; "
            f"got {version!r}.", argument="version", expected="a PEP 440 version",
            found=version,
        ) from None
