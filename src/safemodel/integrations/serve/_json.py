"""Strict JSON in and out of the server: no NaN tokens, no duplicate keys, bounded echoes.

Python's ``json`` module reads ``NaN`` and ``Infinity`` and writes them back, and keeps
the last of two equal keys; neither is JSON, and a server that accepts them answers
something other than what the client meant. Everything the server writes passes
``json.dumps(..., allow_nan=False)``: non-finite numbers become strings, and values
echoed from a request are truncated so a 1 MB bad value never makes a 2 MB answer.

When orjson is installed (the ``serve`` extra requires it) both directions take it
first, because it parses and writes several times faster than ``json``, and each of its
results is used only when a cheap proof shows the strict stdlib path would have given
the same: everything else goes through that path, which decides and words the answer.
orjson refuses ``NaN``/``Infinity`` tokens and out-of-range floats itself; what it
does differently is keep the last of two equal keys, turn an integer literal beyond
64 bits into a float, and write NaN and infinities as ``null``; the proofs rule out
exactly these (see :func:`_fast_loads` and :func:`dumps`).
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Iterable, Mapping
from itertools import compress, repeat
from typing import Any

import numpy as np

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the serve extra installs it; the fallback is tested
    _orjson = None  # type: ignore[assignment]

__all__ = ["InvalidJSON", "dumps", "loads", "of_type", "strict", "truncate"]

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
    if _orjson is not None:
        value = _fast_loads(raw)
        if value is not _UNPROVEN:
            return value
    return _strict_loads(raw)


_UNPROVEN = object()
# Bytes to b"0" for an ASCII digit, b" " otherwise: a run of 19 digits is then a search.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
# orjson parses an integer literal outside [-2**63, 2**64) as a float; such a literal has
# at least 19 digits.
_LONG_NUMBER = b"0" * 19
_MAX_FAST_DEPTH = 8


def _fast_loads(raw: bytes) -> Any:
    """orjson's parse of ``raw`` if it provably equals the strict parser's, else _UNPROVEN.

    The proof, in passes over the bytes and over the containers (never over every
    value): (1) no run of 19 digits, so no integer literal became a float; (2) the
    text has as many ``{`` and ``[`` as the walk of :func:`_shape` visited containers,
    so it visited them all (a bracket inside a string, or a container the walk does
    not open, makes the counts differ); (3) the text has as many ``:`` as the visited
    objects have keys, so no key was repeated (a repeated key is lost in the parse) and
    no string holds a colon. Anything unproven goes to the strict parser, which decides.
    """
    if _LONG_NUMBER in raw.translate(_DIGITS):
        return _UNPROVEN
    try:
        value = _orjson.loads(raw)
    except _orjson.JSONDecodeError:
        return _UNPROVEN  # the strict parser refuses it too, and says why in its words
    shape = _shape(value, 0)
    if shape is None or shape != (raw.count(b"{") + raw.count(b"["), raw.count(b":")):
        return _UNPROVEN
    return value


def _shape(value: Any, depth: int) -> tuple[int, int] | None:
    """``(containers, keys)`` of ``value``, without looking at scalar values one by one.

    A list whose items are all objects (records) counts them and their keys but does not
    open them: if a record holds a container, the bracket count of :func:`_fast_loads`
    differs. None: a shape this path leaves to the strict parser.
    """
    kind = type(value)
    if kind is list:
        if not value:
            return 1, 0
        kinds = set(map(type, value))
        if kinds == {dict}:
            return 1 + len(value), sum(map(len, value))
        return None if dict in kinds or list in kinds else (1, 0)
    if kind is not dict:
        return 0, 0
    containers, keys = 1, len(value)
    for child in value.values():
        if type(child) is dict or type(child) is list:
            inner = _shape(child, depth + 1) if depth < _MAX_FAST_DEPTH else None
            if inner is None:
                return None
            containers += inner[0]
            keys += inner[1]
    return containers, keys


def of_type(values: list[Any], kind: type) -> Iterable[Any]:
    """The values whose type is exactly ``kind`` (so ``bool`` is not an ``int``)."""
    return compress(values, map(operator.is_, map(type, values), repeat(kind)))


def _strict_loads(raw: bytes) -> Any:
    """The strict parser: ``json`` with hooks for constants, float range and duplicates."""
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
    """Compact strict JSON bytes; falls back to :func:`strict` only when needed.

    orjson writes both ``None`` and a non-finite float as ``null``; its output is used
    only when it holds no ``null`` at all, so no NaN or infinity was silently nulled.
    """
    if _orjson is not None:
        try:
            out: bytes = _orjson.dumps(value)
        except (TypeError, _orjson.JSONEncodeError):
            pass  # numpy scalars, non-string keys, huge integers: the stdlib path below
        else:
            if b"null" not in out:
                return out
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError):
        return json.dumps(strict(value, max_string=1 << 20, max_items=1 << 30),
                          allow_nan=False, separators=(",", ":")).encode()
