"""Value rules shared by every layer: bundle names, and values made JSON-ready.

One rule per concept, so the bundle, the archive reader and the store cannot disagree
about what a valid name is, and every module writes a value into JSON the same way.
Callers wrap a name problem in the error of their own layer (``InvalidArgument`` for
an argument, ``BundleFormatError`` for a file, ``StoreError`` for a store).

Two JSON forms, for two purposes (the contract's exact, tagged form of its stored
scalars lives with the contract):

- :func:`echo`: what an error sends back to a caller about an offending value:
  always strict JSON, always short (never the 1 MB string that was sent);
- :func:`plain`: numpy scalars as Python scalars (for ``repr`` and JSON).

This module imports nothing from safemodel: :mod:`safemodel.errors` uses it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ECHO_LIMIT",
    "bundle_name_problem",
    "echo",
    "echo_repr",
    "failure_value",
    "flatten",
    "json_text",
    "plain",
    "shorten",
]

# Longest string an error echoes back; longer ones are cut with a note of their length.
ECHO_LIMIT = 200
# Items of a list or dict an error echoes back.
_ECHO_ITEMS = 20


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


def plain(v: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def failure_value(v: Any) -> Any:
    """An offending input value as a :class:`~safemodel.errors.Failure` holds it.

    Python scalars stay as they are (an ``inf`` stays a float; :func:`echo` makes it
    JSON); missing values become ``None``; timestamps their ISO text; other objects
    their ``repr``.
    """
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if v is None or isinstance(v, str | int | float | bool):
        return v
    return _safe_repr(v)


def shorten(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated: {len(text)} characters]"


def echo(v: Any, limit: int = ECHO_LIMIT) -> Any:
    """A short, strict-JSON form of a value an error echoes back to the caller.

    ``json.dumps(echo(v), allow_nan=False)`` succeeds for any ``v``: non-finite floats
    become ``"inf"``, ``"-inf"``, ``"nan"``; strings over ``limit`` characters are cut
    (with their length); lists and dicts keep their first items; integers too long to
    print and other objects become a short ``repr``.
    """
    v = plain(v)
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        # Python prints at most 4300 digits by default; json.dumps would raise.
        return v if v.bit_length() <= 1024 else f"<int of {v.bit_length()} bits>"
    if isinstance(v, float):
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return shorten(v, limit)
    if isinstance(v, _dt.datetime | _dt.date):
        return v.isoformat()
    inner = max(limit // 4, 20)  # items of a list or dict are cut shorter
    if isinstance(v, list | tuple):
        items = [echo(x, inner) for x in v[:_ECHO_ITEMS]]
        if len(v) > _ECHO_ITEMS:
            items.append(f"... [truncated: {len(v)} items]")
        return items
    if isinstance(v, Mapping):
        out = {shorten(str(k), inner): echo(x, inner)
               for k, x in list(v.items())[:_ECHO_ITEMS]}
        if len(v) > _ECHO_ITEMS:
            out["..."] = f"[truncated: {len(v)} items]"
        return out
    return shorten(_safe_repr(v), limit)


def echo_repr(v: Any, limit: int = ECHO_LIMIT) -> str:
    """A short ``repr`` of an offending value, for an error message."""
    v = plain(v)
    if isinstance(v, str):
        return repr(v) if len(v) <= limit else repr(shorten(v, limit))
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 1024:
        return f"<int of {v.bit_length()} bits>"
    return shorten(_safe_repr(v), limit)


def json_text(value: Any) -> str:
    """``value`` as one line of JSON for a message; anything unknown as its ``str``."""
    return json.dumps(value, default=str, ensure_ascii=False)


def _safe_repr(v: Any) -> str:
    try:
        return repr(v)
    except Exception:  # a broken __repr__ must not turn an error report into a crash
        return f"<{type(v).__name__}>"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"a": {"b": 1}} -> {"a.b": 1}``).

    Empty mappings stay values, so a diff still sees them.
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
