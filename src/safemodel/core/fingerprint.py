"""A bundle's fingerprint: one SHA-256 that names its content."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

__all__ = ["fingerprint_of"]


def fingerprint_of(members: Mapping[str, str]) -> str:
    """SHA-256 over the sorted ``member name -> sha256`` pairs of a bundle's content.

    Parameters
    ----------
    members : mapping of str to str
        Every content member's name and the hex SHA-256 of its bytes (the manifest and
        the signature are not content).

    Returns
    -------
    str
        64 hex digits; equal content gives an equal fingerprint, whatever the order.
    """
    h = hashlib.sha256()
    for name in sorted(members):
        h.update(name.encode())
        h.update(b"\0")
        h.update(members[name].encode())
        h.update(b"\n")
    return h.hexdigest()
