"""Bundle versions: one PEP 440 rule for the bundle, the archive and the store."""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from safemodel.errors import InvalidArgument

__all__ = ["parse_version"]


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
