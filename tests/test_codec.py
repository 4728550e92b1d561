"""Golden inputs and outputs survive the readable codec with values and dtypes identical."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safemodel.errors import BundleFormatError, SafeModelError
from safemodel.io import codec as _codec

MAYBE = st.none()


def _roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    # Through real JSON text, as in the archive.
    return _codec.decode_frame(json.loads(json.dumps(_codec.encode_frame(frame))))


def _assert_identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist()
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b, check_exact=True)
    for col in a.columns:  # bitwise for floats: -0.0 and NaN payload-free equality
        if a[col].dtype.kind == "f":
            x, y = a[col].to_numpy(), b[col].to_numpy()
            real = ~np.isnan(x)
            assert np.array_equal(np.signbit(x[real]), np.signbit(y[real]))


floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
texts = st.text(max_size=12)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=12))
    cols: dict[str, pd.Series] = {}
    cols["f64"] = pd.Series(draw(st.lists(floats, min_size=n, max_size=n)), dtype="float64")
    cols["f32"] = pd.Series(
        draw(st.lists(st.floats(width=32), min_size=n, max_size=n)), dtype="float32")
    cols["i64"] = pd.Series(draw(st.lists(ints, min_size=n, max_size=n)), dtype="int64")
    cols["Int64"] = pd.Series(
        pd.array(draw(st.lists(st.one_of(MAYBE, ints), min_size=n, max_size=n)), dtype="Int64"))
    cols["boolean"] = pd.Series(pd.array(
        draw(st.lists(st.one_of(MAYBE, st.booleans()), min_size=n, max_size=n)), dtype="boolean"))
    cols["bool"] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    cols["string"] = pd.Series(
        draw(st.lists(st.one_of(MAYBE, texts), min_size=n, max_size=n)), dtype="string")
    cols["str"] = pd.Series(
        draw(st.lists(st.one_of(MAYBE, texts), min_size=n, max_size=n)), dtype="str")
    cats = draw(st.lists(texts, min_size=1, max_size=4, unique=True))
    cols["category"] = pd.Series(pd.Categorical(
        draw(st.lists(st.one_of(MAYBE, st.sampled_from(cats)), min_size=n, max_size=n)),
        categories=cats, ordered=draw(st.booleans())))
    stamps = st.integers(min_value=-(2**62), max_value=2**62)
    tz = draw(st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]))
    cols["when"] = pd.Series(
        pd.to_datetime(draw(st.lists(st.one_of(MAYBE, stamps), min_size=n, max_size=n)),
                       unit="ns", utc=True)).dt.tz_convert(tz)
    cols["naive"] = pd.Series(
        pd.to_datetime(draw(st.lists(st.one_of(MAYBE, stamps), min_size=n, max_size=n)),
                       unit="ns"))
    cols["object"] = pd.Series(draw(st.lists(
        st.one_of(MAYBE, texts, st.integers(-5, 5), st.floats(allow_nan=True), st.booleans()),
        min_size=n, max_size=n)), dtype=object)
    return pd.DataFrame(cols)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_frame_roundtrip_is_exact(frame: pd.DataFrame) -> None:
    _assert_identical(frame, _roundtrip(frame))


def test_negative_zero_and_nonfinite_survive() -> None:
    frame = pd.DataFrame({"x": [-0.0, np.nan, np.inf, -np.inf, 1e-310, 0.1]})
    _assert_identical(frame, _roundtrip(frame))


@pytest.mark.parametrize("array", [
    np.array([[0.1, 0.9], [np.nan, 1.0]]),
    np.array([1, 2, 3], dtype="int32"),
    np.array(["Adelie", "Gentoo"], dtype=object),
    np.array(["a", "bc"]),
    np.array([True, False]),
])
def test_array_roundtrip(array: np.ndarray) -> None:
    suffix, data = _codec.encode_array(array)
    back = _codec.decode_array(suffix, data, "m")
    assert back.dtype == array.dtype
    assert back.shape == array.shape
    assert np.array_equal(back, array, equal_nan=array.dtype.kind == "f")


def test_unstorable_values_are_refused_clearly() -> None:
    frame = pd.DataFrame({"x": pd.Series([{"a": 1}], dtype=object)})
    with pytest.raises(SafeModelError, match="Cannot store a value of type 'dict'"):
        _codec.encode_frame(frame)
    with pytest.raises(SafeModelError, match="3-dimensional array .* must be labels"):
        _codec.encode_array(np.array([[["a"]]], dtype=object))
    # multi-output labels (one per row and output) are stored, with their shape
    two = np.array([["a", "b"], ["c", None]], dtype=object)
    suffix, data = _codec.encode_array(two)
    np.testing.assert_array_equal(_codec.decode_array(suffix, data, "m"), two)


@pytest.mark.parametrize("bad", [
    {"rows": 1},
    {"rows": 1, "columns": [{"name": "x", "dtype": "nonsense", "values": [1]}]},
    {"rows": 2, "columns": [{"name": "x", "dtype": "int64", "values": [1]}]},
    {"rows": 1, "columns": [{"name": "x", "dtype": "category", "ordered": False,
                             "categories": {"dtype": "object", "values": ["a"]},
                             "codes": [3]}]},
    {"rows": 1, "columns": [{"name": "x", "dtype": "object", "values": [{"$": "??"}]}]},
])
def test_malformed_frames_raise_bundle_format_error(bad: dict) -> None:
    with pytest.raises(BundleFormatError):
        _codec.decode_frame(bad)


def test_malformed_array_raises_bundle_format_error() -> None:
    with pytest.raises(BundleFormatError):
        _codec.decode_array(".npy", b"not numpy", "golden/outputs/predict.npy")
    with pytest.raises(BundleFormatError):
        _codec.decode_array(".json", b"{}", "golden/outputs/predict.json")
