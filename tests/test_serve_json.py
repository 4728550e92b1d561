"""The server's JSON in and out: orjson when it can be proven to agree, else the stdlib.

Both paths stay tested: every body is read with orjson available and without it, and
the two readings must be identical (the same value, or the same refusal with the same
words); every answer written both ways must read back the same.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

orjson = pytest.importorskip("orjson")

from safemodel.integrations.serve import _json  # noqa: E402


def read(raw: bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """``_json.loads(raw)`` as ("value", repr) or ("refused", message)."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(_json, "_orjson", None)
        try:
            return "value", repr(_json.loads(raw))
        except _json.InvalidJSON as exc:
            return "refused", str(exc)


def write(value: Any, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> bytes:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(_json, "_orjson", None)
        return _json.dumps(value)


# JSON text built from fragments, to reach every case the proof must catch: repeated
# keys (a small key set), colons and brackets inside strings, integers around 64 bits,
# floats beyond float64, non-JSON tokens, odd spacing, records with nested values.
ints = st.one_of(st.integers(), st.sampled_from(
    [2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 10**30, -(10**19)]))
numbers = st.one_of(
    ints.map(str), st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e400", "-1e400", "1E2", "-0", "-0.0", "1e-400", "01", "1.", "NaN",
                     "Infinity", "-Infinity", "12345678901234567890.5", "1e19"]))
strings = st.one_of(
    st.text(max_size=6).map(json.dumps),
    st.sampled_from(['"a:b"', '"{"', '"["', '"]}"', '"\\ud800"', '"\\u003a"',
                     '"0000000000000000000"']))
keys = st.one_of(st.sampled_from(['"a"', '"b"', '"a:"', '"{"', '"instances"']), strings)
scalars = st.one_of(numbers, strings, st.sampled_from(["true", "false", "null", "nul"]))
seps = st.sampled_from([",", ", ", " ,\n"])


def _object(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(st.tuples(keys, children), max_size=4), seps).map(
        lambda ks: "{" + ks[1].join(f"{k}:{v}" for k, v in ks[0]) + "}")


def _array(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(children, max_size=4), seps).map(
        lambda xs: "[" + xs[1].join(xs[0]) + "]")


documents = st.recursive(scalars, lambda c: st.one_of(_object(c), _array(c)), max_leaves=16)
records = _object(st.one_of(scalars, scalars, documents))
requests = st.lists(records, max_size=4).map(lambda rs: '{"instances": [' + ",".join(rs) + "]}")


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.one_of(requests, documents))
def test_orjson_reads_exactly_what_the_strict_parser_reads(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert read(raw, fast=True, monkeypatch=monkeypatch) == \
        read(raw, fast=False, monkeypatch=monkeypatch)


def test_the_fast_read_is_taken_only_when_proven() -> None:
    clean = json.dumps({"instances": [{"island": "Biscoe", "bill_length_mm": 39.1,
                                       "year": 2007, "sex": None}] * 3}).encode()
    assert _json._fast_loads(clean) == json.loads(clean)
    for raw in (b'{"instances": [{"a": 1, "a": 2}]}',           # a repeated key
                b'{"instances": [{"a": 1}, {"b": 2, "b": 2}]}',
                b'{"instances": [{"a": 18446744073709551616}]}',  # orjson: a float
                b'{"instances": [{"a": -9223372036854775809}]}',
                b'{"instances": [{"a": "12:30"}]}',               # a colon in a string
                b'{"instances": [{"a": {"b": 1, "b": 2}}]}',      # a container in a record
                b'{"instances": [{"a": [1, {"b": 1}]}]}',
                b'{"instances": [{"a": NaN}]}'):
        assert _json._fast_loads(raw) is _json._UNPROVEN, raw


def test_repeated_keys_and_wide_integers_keep_their_strict_answers() -> None:
    with pytest.raises(_json.InvalidJSON, match="appears twice"):
        _json.loads(b'{"instances": [{"a": 1, "a": 2}]}')
    wide = _json.loads(b'{"instances": [{"a": 18446744073709551616, "b": -9223372036854775809}]}')
    assert wide["instances"][0] == {"a": 2**64, "b": -(2**63) - 1}
    assert all(type(v) is int for v in wide["instances"][0].values())


answers = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
              st.sampled_from([np.float64(0.5), np.int64(3), np.float64("nan"), 2**70])),
    lambda c: st.one_of(st.lists(c, max_size=3),
                        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), c,
                                        max_size=3)),
    max_leaves=10)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=answers)
def test_orjson_writes_what_the_strict_writer_writes(
        value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = write(value, fast=True, monkeypatch=monkeypatch)
    slow = write(value, fast=False, monkeypatch=monkeypatch)

    def refuse(token: str) -> Any:
        raise AssertionError(f"non-strict JSON token {token}")

    assert repr(json.loads(fast, parse_constant=refuse)) == \
        repr(json.loads(slow, parse_constant=refuse))


def test_non_finite_answers_are_strings_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"predictions": [[0.5, math.nan], [math.inf, -math.inf]], "classes": ["a", "b"]}
    for fast in (True, False):
        assert json.loads(write(value, fast=fast, monkeypatch=monkeypatch)) == {
            "predictions": [[0.5, "NaN"], ["Infinity", "-Infinity"]], "classes": ["a", "b"]}
    clean = {"predictions": [{"a": 0.25, "b": 0.75}], "policy": {"rows": 1, "actions": []}}
    assert _json.dumps(clean) == orjson.dumps(clean)  # the fast path is taken
