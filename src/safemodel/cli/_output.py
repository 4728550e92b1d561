"""What the command line prints: lines, errors, JSON and tables.

Only the command line prints; every command prints through these helpers, so a
``--json`` run writes exactly one JSON document on standard output.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Mapping
from typing import Any

from safemodel._text import cell, listing, pairs, table

__all__ = [
    "cell",
    "error",
    "first_line",
    "jsonable",
    "listing",
    "one_line",
    "pairs",
    "say",
    "say_json",
    "table",
]


def say(text: str = "") -> None:
    """One block of text on standard output."""
    print(text, file=sys.stdout)


def error(message: str) -> None:
    """One error line on standard error."""
    print(f"safemodel: error: {message}", file=sys.stderr)


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN and infinities become null, numpy scalars numbers."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        with contextlib.suppress(TypeError, ValueError):
            return jsonable(item())
    tolist = getattr(value, "tolist", None)  # numpy arrays
    if callable(tolist):
        return jsonable(tolist())
    return str(value)


def say_json(data: Any) -> None:
    """``data`` as indented, strict JSON on standard output."""
    say(json.dumps(jsonable(data), indent=2, allow_nan=False))


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (or its type's name)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def one_line(exc: BaseException) -> str:
    """An error's message on one line (or its type's name)."""
    return " ".join(str(exc).split()) or type(exc).__name__
