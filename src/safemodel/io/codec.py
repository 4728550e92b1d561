"""Readable, dtype-preserving encoding of frames and arrays (golden inputs and outputs).

A frame becomes ``{"columns": [{"name", "dtype", "values", ...}], "rows": n}``.
Floats are written with ``repr`` precision (exact round trip), non-finite floats as
the strings ``"nan"``, ``"inf"``, ``"-inf"``; missing values of nullable dtypes as
``null``; categoricals as their categories (encoded recursively) plus integer codes;
datetimes as integers in their own unit. Object columns tag every value that JSON
would lose (``{"$": "nan"}``, ``{"$": "NA"}``, ``{"$": "float", "v": ...}``).

Numeric arrays are stored as ``.npy`` bytes (``allow_pickle=False``); arrays of
labels (strings, objects) as JSON through the same value encoding.
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from safemodel.errors import BundleFormatError, SafeModelError

__all__ = ["decode_array", "decode_frame", "encode_array", "encode_frame"]

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _float_out(x: float) -> float | str:
    if math.isfinite(x):
        return float(x)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _float_in(v: Any) -> float:
    if isinstance(v, str):
        return _NONFINITE[v]
    return float(v)


def _object_out(v: Any) -> Any:
    if v is None or isinstance(v, str | bool):
        return v
    if v is pd.NA:
        return {"$": "NA"}
    if v is pd.NaT:
        return {"$": "NaT"}
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return {"$": "float", "v": _float_out(float(v))}
    raise SafeModelError(
        f"Cannot store a value of type {type(v).__name__!r} ({v!r}) in golden data: "
        "expected str, int, float, bool or a missing value. Convert the column to a "
        "standard dtype before building the bundle."
    )


def _object_in(v: Any) -> Any:
    if isinstance(v, dict):
        tag = v.get("$")
        if tag == "NA":
            return pd.NA
        if tag == "NaT":
            return pd.NaT
        if tag == "float":
            return _float_in(v["v"])
        raise BundleFormatError(f"Unknown value tag {tag!r} in golden data.", found=tag)
    return v


def _encode_values(s: pd.Series) -> dict[str, Any]:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = pd.Series(dtype.categories)
        return {
            "dtype": "category",
            "ordered": bool(dtype.ordered),
            "categories": _encode_values(cats),
            "codes": s.cat.codes.astype("int64").tolist(),
        }
    if isinstance(dtype, pd.DatetimeTZDtype) or (
        isinstance(dtype, np.dtype) and dtype.kind in "mM"
    ):
        ints = s.array.asi8 if hasattr(s.array, "asi8") else s.to_numpy().view("i8")
        missing = s.isna().to_numpy()
        return {
            "dtype": str(dtype),
            "values": [None if m else int(i) for i, m in zip(ints, missing, strict=True)],
        }
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f":
            return {"dtype": str(dtype), "values": [_float_out(x) for x in s.tolist()]}
        if dtype.kind in "iub":
            return {"dtype": str(dtype), "values": s.tolist()}
        if dtype.kind == "O":
            return {"dtype": "object", "values": [_object_out(v) for v in s.tolist()]}
    # pandas extension dtypes: nullable ints/floats/booleans and strings.
    missing = s.isna().to_numpy()
    if isinstance(dtype, pd.StringDtype):
        values: list[Any] = [
            None if m else str(v) for v, m in zip(s.tolist(), missing, strict=True)
        ]
        return {"dtype": str(dtype), "na": _string_na(dtype), "storage": dtype.storage,
                "values": values}
    kind = getattr(dtype, "kind", "O")
    if kind in "iubf":
        conv = _float_out if kind == "f" else (bool if kind == "b" else int)
        values = [None if m else conv(v) for v, m in zip(s.tolist(), missing, strict=True)]
        return {"dtype": str(dtype), "values": values}
    raise SafeModelError(
        f"Cannot store column {s.name!r} of dtype {dtype!s} in golden data: supported are "
        "numeric, boolean, string, object, category and datetime dtypes."
    )


def _string_na(dtype: pd.StringDtype) -> str:
    return "nan" if dtype.na_value is not pd.NA else "NA"


def _decode_values(col: dict[str, Any], name: str) -> pd.Series:
    dtype = col["dtype"]
    if dtype == "category":
        cats = _decode_values(col["categories"], name)
        codes = np.asarray(col["codes"], dtype="int64")
        if len(cats) and (codes.max(initial=-1) >= len(cats) or codes.min(initial=0) < -1):
            raise BundleFormatError(f"Category codes of column {name!r} are out of range.")
        cat = pd.Categorical.from_codes(
            codes, categories=pd.Index(cats.array, name=None), ordered=col["ordered"]
        )
        return pd.Series(cat, name=name)
    values = col["values"]
    if dtype == "object":
        return pd.Series([_object_in(v) for v in values], dtype="object", name=name)
    if "na" in col:  # a pandas string dtype
        na = np.nan if col["na"] == "nan" else pd.NA
        sdtype = pd.StringDtype(storage=col.get("storage", "python"), na_value=na)
        return pd.Series(values, dtype=sdtype, name=name)
    pdtype = pd.api.types.pandas_dtype(dtype)
    if isinstance(pdtype, pd.DatetimeTZDtype) or (
        isinstance(pdtype, np.dtype) and pdtype.kind in "mM"
    ):
        ints = np.array([np.iinfo("int64").min if v is None else v for v in values], dtype="i8")
        if isinstance(pdtype, pd.DatetimeTZDtype):
            naive = ints.view(f"M8[{pdtype.unit}]")
            arr = pd.array(naive).tz_localize("UTC").tz_convert(pdtype.tz)
            return pd.Series(arr, name=name)
        return pd.Series(ints.view(pdtype), name=name)
    if isinstance(pdtype, np.dtype):
        if pdtype.kind == "f":
            return pd.Series(np.array([_float_in(v) for v in values], dtype=pdtype), name=name)
        return pd.Series(np.array(values, dtype=pdtype), name=name)
    kind = getattr(pdtype, "kind", "O")
    if kind == "f":
        values = [None if v is None else _float_in(v) for v in values]
    return pd.Series(pd.array(values, dtype=pdtype), name=name)


def encode_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Encode ``frame`` (string column names) as a JSON-ready dict."""
    columns = []
    for name in frame.columns:
        col = _encode_values(frame[name])
        columns.append({"name": str(name), **col})
    return {"rows": len(frame), "columns": columns}


def decode_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Rebuild the frame written by :func:`encode_frame` (RangeIndex)."""
    try:
        series = [_decode_values(c, c["name"]) for c in data["columns"]]
        rows = int(data["rows"])
    except BundleFormatError:
        raise
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise BundleFormatError(
            f"Golden inputs are malformed ({type(exc).__name__}: {exc}); the bundle "
            "was damaged or written by an incompatible tool. Rebuild it.",
            member="golden/inputs.json",
        ) from None
    if any(len(s) != rows for s in series):
        raise BundleFormatError(
            "Golden input columns have different lengths.", member="golden/inputs.json"
        )
    frame = pd.concat(series, axis=1) if series else pd.DataFrame(index=pd.RangeIndex(rows))
    frame.index = pd.RangeIndex(rows)
    return frame


def encode_array(array: np.ndarray) -> tuple[str, bytes]:
    """Return ``(suffix, bytes)``: ``.npy`` for numeric arrays, ``.json`` for labels."""
    if array.dtype.kind in "biufcmM":
        buf = io.BytesIO()
        np.save(buf, array, allow_pickle=False)
        return ".npy", buf.getvalue()
    if array.ndim not in (1, 2):
        raise SafeModelError(
            f"Cannot store a {array.ndim}-dimensional array of dtype {array.dtype} as golden "
            "output: non-numeric outputs must be labels, one per row or one per row and "
            "output."
        )
    payload: dict[str, Any] = {
        "dtype": str(array.dtype) if array.dtype.kind == "U" else "object",
        "values": [_object_out(v) for v in array.ravel().tolist()]}
    if array.ndim == 2:  # multi-output labels; a 1-D payload has no shape (older files)
        payload["shape"] = list(array.shape)
    return ".json", json.dumps(payload).encode()


def decode_array(suffix: str, data: bytes, member: str) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    try:
        if suffix == ".npy":
            return _load_npy(data)
        payload = json.loads(data)
        values = [_object_in(v) for v in payload["values"]]
        if payload["dtype"] == "object":
            out = np.empty(len(values), dtype=object)
            out[:] = values
        else:
            out = np.array(values, dtype=payload["dtype"])
        shape = payload.get("shape")
        if shape is None:
            return out
        if (not isinstance(shape, list) or len(shape) != 2
                or not all(type(n) is int and n >= 0 for n in shape)
                or shape[0] * shape[1] != len(values)):
            raise BundleFormatError(f"shape {shape!r} does not fit {len(values)} values")
        return out.reshape(shape)
    except BundleFormatError as exc:
        raise BundleFormatError(f"Golden output {member!r} is malformed: {exc}",
                                member=member) from None
    except Exception as exc:  # numpy's header parser raises SyntaxError, TokenError...
        raise BundleFormatError(
            f"Golden output {member!r} is malformed ({type(exc).__name__}: {exc}).",
            member=member,
        ) from None


def _load_npy(data: bytes) -> np.ndarray:
    """``np.load`` after checking that the header's shape fits the bytes that follow
    (np.load allocates whatever the header declares before reading)."""
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(buf)
    elif version == (2, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(buf)
    else:
        raise BundleFormatError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise BundleFormatError("object arrays are never stored as .npy")
    count = 1
    for n in shape:
        count *= int(n)
    if count * dtype.itemsize != len(data) - buf.tell():
        raise BundleFormatError(
            f"the header declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes) "
            f"but {len(data) - buf.tell()} bytes follow"
        )
    return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))
