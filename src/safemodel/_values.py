"""Value rules shared by every layer: bundle names and versions.

One rule per concept, so the bundle, the archive reader and the store cannot disagree
about what a valid name is. Callers wrap :class:`NameProblem` in the error of their
own layer (``InvalidArgument`` for an argument, ``BundleFormatError`` for a file,
``StoreError`` for a store).
"""

from __future__ import annotations

import os

__all__ = ["bundle_name_problem"]


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
