"""Strict JSON in and out of the server: no NaN tokens, no duplicate keys, bounded echoes.

Python's ``json`` module reads ``NaN`` and ``Infinity`` and writes them back, and keeps
the last of two equal keys; neither is JSON, and a server that accepts them answers
something other than what the client meant. Everything the server writes passes
``json.dumps(..., allow_nan=False)``: non-finite numbers become strings, and values
echoed from a request are truncated so a 1 MB bad value never makes a 2 MB answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["InvalidJSON", "dumps", "loads", "strict"]

_MAX_DEPTH = 32


class InvalidJSON(Exception):
    """The body is not strict JSON (raised by :func:`loads`; the router answers 400)."""


def _reject_constant(token: str) -> Any:
    raise InvalidJSON(f"{token} is not JSON; send a missing value as null and numbers as "
                      "finite decimals")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"the number {text[:40]!r} is outside the range of a 64-bit float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidJSON(f"the key {truncate(key, 64)!r} appears twice in one object")
            seen.add(key)
    return out


def loads(raw: bytes) -> Any:
    """Parse a request body as strict JSON.

    Raises
    ------
    InvalidJSON
        Not UTF-8 JSON, a ``NaN``/``Infinity`` token, a number beyond float64, an
        integer literal too long to convert, a duplicate key, or nesting deep enough
        to exhaust the parser.
    """
    try:
        # UTF-8 only (RFC 8259); a BOM or UTF-16 is refused rather than guessed.
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except InvalidJSON:
        raise
    except RecursionError:
        raise InvalidJSON("the body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise InvalidJSON(truncate(str(exc), 200)) from None


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def strict(value: Any, *, max_string: int = 256, max_items: int = 100, _depth: int = 0) -> Any:
    """``value`` made strict JSON: non-finite floats as strings, numpy as Python, echoes cut.

    Strings longer than ``max_string`` and lists longer than ``max_items`` are
    truncated (the cut is stated in the value itself); unknown objects become a
    truncated ``repr``.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _float_name(value)
    if isinstance(value, str):
        return truncate(value, max_string)
    if isinstance(value, np.generic):
        return strict(value.item(), max_string=max_string, max_items=max_items, _depth=_depth)
    if _depth >= _MAX_DEPTH:
        return truncate(repr(value), max_string)
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {truncate(str(k), max_string): strict(v, max_string=max_string,
                                                    max_items=max_items, _depth=_depth + 1)
               for k, v in items[:max_items]}
        if len(items) > max_items:
            out["..."] = f"{len(items) - max_items} more"
        return out
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        seq = list(value.tolist() if isinstance(value, np.ndarray) else value)
        out_list = [strict(v, max_string=max_string, max_items=max_items, _depth=_depth + 1)
                    for v in seq[:max_items]]
        if len(seq) > max_items:
            out_list.append(f"... {len(seq) - max_items} more")
        return out_list
    if isinstance(value, bytes):
        return truncate(repr(value), max_string)
    return truncate(str(value) if _is_plain(value) else repr(value), max_string)


def _is_plain(value: Any) -> bool:
    # Timestamps, Decimals and the like print as their value; others as their repr.
    return type(value).__module__ in ("datetime", "decimal", "pandas._libs.tslibs.timestamps")


def _float_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def dumps(value: Any) -> bytes:
    """Compact strict JSON bytes; falls back to :func:`strict` only when needed."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError):
        return json.dumps(strict(value, max_string=1 << 20, max_items=1 << 30),
                          allow_nan=False, separators=(",", ":")).encode()
