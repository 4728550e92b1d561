"""Archive format versions: which ones this safemodel reads, and how old ones migrate.

``format_version`` (an integer in ``manifest.json``) names the layout of a bundle file:
the zip container (:mod:`safemodel.io.zipbytes`), the manifest fields
(:mod:`safemodel.io.manifest`) and the members with their encodings
(:mod:`safemodel.io.layout`, :mod:`safemodel.io.codec`). It is independent of the
library version. ``docs/format.md`` specifies the current format.

Bump rules
----------
1. Bump :data:`FORMAT_VERSION` when a file written by the new code could be read
   wrongly, or not at all, by a reader of the current version: a member added that
   loading needs, a member renamed or removed, a changed encoding or meaning of an
   existing field, a changed zip layout. Do not bump for what old readers already
   ignore or accept unchanged: a new optional manifest field (readers keep unknown
   fields in ``Manifest.extra``), a new optional member that the manifest lists (such as
   ``profile.json``, added within format 1), a new JSON key that decoders default.
2. With every bump, freeze a small real bundle of the previous format under
   ``tests/data/format-N/`` (never regenerated; ``tests/test_format_versions.py`` loads
   each and compares its outputs exactly), add a ``CHANGELOG.md`` "Format" note and
   update ``docs/format.md``.
3. Old formats stay loadable through :data:`MIGRATIONS`: ``MIGRATIONS[n]`` is a *pure*
   function that turns the verified content members of a format-``n`` bundle into
   those of format ``n + 1`` (no I/O, no unpickling, no global state), so loading a
   format-``k`` file runs ``MIGRATIONS[k]``, ``MIGRATIONS[k + 1]``, ... up to
   :data:`FORMAT_VERSION`, after the member hashes were checked against the manifest
   as stored and before any member is decoded. The manifest's envelope (``format_version``,
   ``name``, ``version``, ``members``, ``fingerprint``) keeps its meaning across
   versions, so hashes and signatures of old files still check; a bundle keeps the
   fingerprint it was saved with (re-saving writes the current format).
4. A reader refuses a newer format with a ``BundleFormatError`` that says to upgrade.

Format history
--------------
1. safemodel 0.1: stored zip; ``manifest.json`` first; ``bundle.json``,
   ``estimator.pkl`` (cloudpickle), ``contract.json``, ``policy.json``,
   ``golden/inputs.json``, ``golden/golden.json``, ``golden/outputs/METHOD.(npy|json)``,
   ``metadata.json``, optional ``profile.json`` and ``signature.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from safemodel.errors import BundleFormatError

__all__ = ["FORMAT_VERSION", "MIGRATIONS", "check_readable", "migrate"]

FORMAT_VERSION: Final = 1
"""The archive format this safemodel writes (and the newest it reads)."""

Members = Mapping[str, bytes]
Migration = Callable[[Members], dict[str, bytes]]

#: ``n -> function`` turning format-``n`` content members into format ``n + 1``.
MIGRATIONS: Final[Mapping[int, Migration]] = {}


def check_readable(format_version: int, member: str = "manifest.json") -> None:
    """Refuse a format this safemodel cannot read, saying what to do.

    Raises
    ------
    BundleFormatError
        For a newer format (upgrade safemodel) or a version below 1.
    """
    if format_version > FORMAT_VERSION:
        raise BundleFormatError(
            f"This bundle uses archive format {format_version}, newer than the "
            f"{FORMAT_VERSION} this safemodel reads. Upgrade safemodel "
            "(pip install -U safemodel) to load it.",
            member=member, expected=FORMAT_VERSION, found=format_version,
        )
    if format_version < 1:
        raise BundleFormatError(f"Unknown archive format version {format_version}.",
                                member=member, found=format_version)


def migrate(format_version: int, members: Members) -> dict[str, bytes]:
    """The content members of a format-``format_version`` bundle, in the current format."""
    check_readable(format_version)
    current = dict(members)
    for version in range(format_version, FORMAT_VERSION):
        current = MIGRATIONS[version](current)
    return current
