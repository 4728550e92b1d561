"""Coercion: bring one input column to its training dtype, losslessly.

Only lossless changes are made: int to float (up to 2**53), integral float to int,
str to category, and same-kind dtype changes such as ``float32`` to ``float64``.
:func:`coerce` returns a *working* series, of the target's kind but able to hold
missing values, and the mask of values that could not be coerced (they become
missing there and are reported as type failures). :func:`finish` casts the working
series to the training dtype once the policy has filled it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from safemodel._values import shorten
from safemodel.core.contract import ColumnSpec
from safemodel.errors import ContractViolation, Failure

__all__ = ["coerce", "finish", "is_na", "missing_mask", "number_from_text", "same_strings"]

Coerced = tuple[pd.Series, np.ndarray | None]


def coerce(s: pd.Series, spec: ColumnSpec, *, parse_text: bool = False) -> Coerced:
    """Return ``(working series, bad-type mask)``; bad values become missing.

    The mask is ``None`` when no value can be bad (same dtype, or a cast that
    cannot fail). ``parse_text`` reads numbers written as text into a numeric column
    when the text is exactly how the number prints (see :func:`number_from_text`).
    """
    target = spec.pandas_dtype
    found = s.dtype
    if spec.na is not None and target == np.dtype(object):
        working, bad = (s, None) if found == target else _to_text(s, target)
        return _with_marker(working, spec.na), bad
    if found == target or same_strings(found, target):
        return s, None
    if isinstance(target, pd.CategoricalDtype):
        return _to_categorical(s, spec)
    if _is_stringish(target):
        return _to_text(s, target)
    if _is_number(target):
        if parse_text and (_is_stringish(found) or found == np.dtype(object)):
            s = _numbers_from_text(s)
        return _to_number(s, target)
    if pd.api.types.is_bool_dtype(target):
        return _to_boolean(s, target)
    if pd.api.types.is_datetime64_any_dtype(target):
        return _to_datetime(s, target)
    return s, None  # "other": accepted as is


def _to_categorical(s: pd.Series, spec: ColumnSpec) -> Coerced:
    found = s.dtype
    if isinstance(found, pd.CategoricalDtype) or _is_stringish(found):
        values = s.to_numpy(dtype=object)
        cat_types = {type(c) for c in (spec.categories or ())} or {str}
        bad = _type_mask_objects(
            values, lambda v: type(v) in cat_types or isinstance(v, tuple(cat_types))
        )
    elif _is_number(found) and all(isinstance(c, int | float) for c in spec.categories or ()):
        values = s.to_numpy(dtype=object)
        bad = np.zeros(len(values), dtype=bool)
    else:
        return _all_bad(s)
    if bad.any():
        values = values.copy()
        values[bad] = None
    return pd.Series(values, index=s.index, dtype=object, name=s.name), bad


def _to_text(s: pd.Series, target: Any) -> Coerced:
    found = s.dtype
    if isinstance(found, pd.StringDtype) or (
        isinstance(found, pd.CategoricalDtype) and _is_stringish(found.categories.dtype)
    ):
        return s.astype(target), None
    if found == np.dtype(object):
        values = s.to_numpy(dtype=object)
        bad = _type_mask_objects(values, lambda v: isinstance(v, str))
        if bad.any():
            values = values.copy()
            values[bad] = None
        return pd.Series(values, index=s.index, name=s.name).astype(target), bad
    return _all_bad(s)


def _with_marker(s: pd.Series, na: str) -> pd.Series:
    """``s`` (object) with every missing value the one training held (None or NaN)."""
    values = s.to_numpy(dtype=object)
    missing = np.asarray(pd.isna(values), dtype=bool)
    if not missing.any():
        return s
    marker = None if na == "none" else float("nan")
    if na == "none":
        wrong = [i for i in np.flatnonzero(missing).tolist() if values[i] is not None]
    else:
        wrong = [i for i in np.flatnonzero(missing).tolist()
                 if not (isinstance(values[i], float) and values[i] != values[i])]
    if not wrong:
        return s
    values = values.copy()
    values[wrong] = marker
    return pd.Series(values, index=s.index, name=s.name, dtype=object)


def number_from_text(text: str) -> int | float | None:
    """The number ``text`` writes exactly, or ``None``.

    Exact means the text is how Python prints the number, so nothing is rounded or
    reinterpreted on the way: ``"34.1"`` and ``"-7"`` are numbers; ``"034"``,
    ``" 34"``, ``"1e3"``, ``"1,5"``, ``"nan"`` and ``"0.10"`` are not.
    """
    try:
        whole = int(text)
    except ValueError:
        pass
    else:
        return whole if str(whole) == text else None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) and repr(number) == text else None


def _numbers_from_text(s: pd.Series) -> pd.Series:
    """Strings that write a number exactly become that number; others stay as they are."""
    values = s.to_numpy(dtype=object)
    out = values.copy()
    changed = False
    for i, v in enumerate(values.tolist()):
        if isinstance(v, str):
            number = number_from_text(v)
            if number is not None:
                out[i] = number
                changed = True
    if not changed:
        return s
    return pd.Series(out, index=s.index, name=s.name, dtype=object)


def _to_number(s: pd.Series, target: Any) -> Coerced:
    found = s.dtype
    integer_target = pd.api.types.is_integer_dtype(target)
    if integer_target and pd.api.types.is_integer_dtype(found):
        return _integers_to_integer(s, target)
    if integer_target and found == np.dtype(object):
        return _objects_to_integer(s, target)
    if _is_number(found):
        x = s.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.zeros(len(x), dtype=bool)
        if pd.api.types.is_integer_dtype(found) and not integer_target:
            bad = np.abs(x) > 2.0**53
    elif found == np.dtype(object):
        x, bad = _objects_to_float(s.to_numpy(dtype=object))
    else:
        return _all_bad(s)
    if integer_target:
        return _floats_to_integer(s, target, x, bad)
    return _to_float(s, target, x, bad)


def _integer_info(target: Any) -> np.iinfo[Any]:
    return np.iinfo(getattr(target, "numpy_dtype", target))


def _integer_series(s: pd.Series, target: Any, values: np.ndarray, absent: np.ndarray
                    ) -> pd.Series:
    """``values`` (integers, or whole floats in range) as the nullable twin of ``target``,
    missing where ``absent``."""
    numpy_dtype = _integer_info(target).dtype
    data = np.where(absent, 0, values).astype(numpy_dtype)
    return pd.Series(pd.arrays.IntegerArray(data, absent.copy()), index=s.index, name=s.name)


def _integers_to_integer(s: pd.Series, target: Any) -> Coerced:
    """Integer dtypes to another: exact range checks (uint64 2**63 is no int64)."""
    info = _integer_info(target)
    found = s.dtype
    if isinstance(found, np.dtype):
        values = s.to_numpy()
        missing = np.zeros(len(values), dtype=bool)
    else:  # a nullable integer dtype: missing cells read as 0, then masked again
        values = s.to_numpy(dtype=found.numpy_dtype, na_value=0)
        missing = missing_mask(s)
    bad = (values < info.min) | (values > info.max)
    if not bad.any():
        return s.astype(_nullable_twin(target)), bad
    return _integer_series(s, target, values, bad | missing), bad


def _objects_to_integer(s: pd.Series, target: Any) -> Coerced:
    """Python numbers to integers, exactly: a Python int outside the target's range
    (2**63 in an int64 column) is a bad value, never clamped or rounded."""
    info = _integer_info(target)
    values = s.to_numpy(dtype=object)
    n = len(values)
    ints = np.zeros(n, dtype=info.dtype)
    bad = np.zeros(n, dtype=bool)
    absent = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            absent[i] = True
            continue
        whole = _as_whole_number(v)
        if whole is None or not info.min <= whole <= info.max:
            bad[i] = True
        else:
            ints[i] = whole
    return _integer_series(s, target, ints, bad | absent), bad


def _as_whole_number(v: Any) -> int | None:
    """``v`` as an exact int when it is a number with no fractional part, else None."""
    if isinstance(v, bool | np.bool_):
        return None
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating) and np.isfinite(v) and float(v).is_integer():
        return int(v)
    return None


def _objects_to_float(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Python numbers to float64; anything else (or an int too big for a float) is bad."""
    bad = _type_mask_objects(values, _is_plain_number)
    x = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if bad[i] or v is None or v is pd.NA:
            continue
        try:
            x[i] = v
        except (OverflowError, TypeError):  # 10**400; a complex number
            bad[i] = True
    return x, bad


def _floats_to_integer(s: pd.Series, target: Any, x: np.ndarray, bad: np.ndarray) -> Coerced:
    info = _integer_info(target)
    # Exact float bounds: float(info.max) rounds up to 2**63, which int64 cannot hold.
    low, high = float(info.min), float(info.max + 1)
    with np.errstate(invalid="ignore"):
        bad |= ~np.isnan(x) & (
            ~np.isfinite(x) | (x != np.floor(x)) | (x < low) | (x >= high)
        )
    absent = bad | np.isnan(x)
    # Every value left is whole and in range, so the cast is exact (and builds the
    # nullable array directly: pandas' float-to-Int64 astype checks it all again).
    return _integer_series(s, target, x, absent), bad


def _to_float(s: pd.Series, target: Any, x: np.ndarray, bad: np.ndarray) -> Coerced:
    with np.errstate(invalid="ignore"):
        xt = x.astype(getattr(target, "numpy_dtype", target))
        bad |= ~np.isnan(x) & (xt.astype("float64") != x) & np.isfinite(x)
    x = np.where(bad, np.nan, x)
    if isinstance(target, np.dtype):
        return pd.Series(x.astype(target), index=s.index, name=s.name), bad
    return pd.Series(x, index=s.index, name=s.name).astype(target), bad


def _to_boolean(s: pd.Series, target: Any) -> Coerced:
    found = s.dtype
    if pd.api.types.is_bool_dtype(found):
        return s.astype(_nullable_twin(target)), None
    if found == np.dtype(object):
        values = s.to_numpy(dtype=object)
        bad = _type_mask_objects(values, lambda v: isinstance(v, bool | np.bool_))
        values = np.where(bad, None, values)
        return pd.Series(values, index=s.index, name=s.name).astype("boolean"), bad
    return _all_bad(s)


def _to_datetime(s: pd.Series, target: Any) -> Coerced:
    found = s.dtype
    if pd.api.types.is_datetime64_any_dtype(found) and (
        isinstance(target, pd.DatetimeTZDtype) == isinstance(found, pd.DatetimeTZDtype)
    ):
        return s.astype(target), None
    return _all_bad(s)


def _all_bad(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    bad = ~s.isna().to_numpy()
    return pd.Series([None] * len(s), index=s.index, dtype=object, name=s.name), bad


def _is_plain_number(v: Any) -> bool:
    # Not complex: it has no lossless float, and numpy would drop its imaginary part.
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _is_stringish(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object)


def _is_number(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _type_mask_objects(values: np.ndarray, ok: Callable[[Any], bool]) -> np.ndarray:
    """True where an object value is present but not of an accepted type."""
    return np.fromiter(
        (not (v is None or v is pd.NA or (isinstance(v, float) and v != v) or ok(v))
         for v in values),
        dtype=bool, count=len(values),
    )


def same_strings(found: Any, target: Any) -> bool:
    """String dtypes that differ only in storage (python vs pyarrow) hold the same data."""
    return (
        isinstance(found, pd.StringDtype)
        and isinstance(target, pd.StringDtype)
        and (found.na_value is pd.NA) == (target.na_value is pd.NA)
    )


def _nullable_twin(target: Any) -> Any:
    """A dtype of the same kind as ``target`` that can hold missing values."""
    if isinstance(target, np.dtype):
        if target.kind in "iu":
            return pd.api.types.pandas_dtype(target.name.capitalize().replace("Uint", "UInt"))
        if target.kind == "b":
            return pd.BooleanDtype()
    return target


def is_na(v: Any) -> bool:
    """Whether a scalar is a missing value (None, NA, NaT, NaN), without ``pd.isna``."""
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def missing_mask(s: pd.Series) -> np.ndarray:
    """Where ``s`` holds a missing value, as a boolean array."""
    dtype = s.dtype
    if isinstance(dtype, np.dtype):
        values = s.to_numpy()
        if dtype.kind == "f":
            return np.asarray(np.isnan(values), dtype=bool)
        if dtype.kind in "iub":
            return np.zeros(len(values), dtype=bool)
        if dtype.kind in "mM":
            return np.asarray(np.isnat(values), dtype=bool)
        return np.asarray(pd.isna(values), dtype=bool)
    # ExtensionArray.isna skips the Series wrapper (about 20x cheaper on small frames).
    return np.asarray(s.array.isna(), dtype=bool)


def finish(s: pd.Series, spec: ColumnSpec, missing: np.ndarray) -> pd.Series:
    """Cast the working series to the training dtype (float64 if missing must pass)."""
    target = spec.pandas_dtype
    if s.dtype == target:
        return s
    if isinstance(target, pd.CategoricalDtype):
        present = s[~missing].unique().tolist() if len(s) else []
        extra = [v for v in present if v not in (spec.allowed or ())]
        if extra:  # unseen values passed through: extend the categories, do not lose them
            target = pd.CategoricalDtype([*target.categories, *extra], ordered=target.ordered)
        return s.astype(target)
    if isinstance(target, np.dtype) and target.kind in "iub" and missing.any():
        return s.astype("float64") if target.kind != "b" else s.astype(object)
    try:
        return s.astype(target)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        # Only dtypes coerce() accepts as they are ("other": period, interval ...) get
        # here; a value the policy filled in or let through may not take that dtype.
        raise _uncastable(s, spec, exc) from exc


def _uncastable(s: pd.Series, spec: ColumnSpec, exc: Exception) -> ContractViolation:
    found = str(s.dtype)
    failure = Failure(spec.name, f"type: expected {spec.dtype}, found {found}")
    return ContractViolation([failure], (
        f"Column {spec.name!r} cannot take its training dtype {spec.dtype!r}: its values "
        f"(dtype {found}) do not convert ({type(exc).__name__}: {shorten(str(exc))}). "
        f"Send {spec.dtype} values in that column; if the contract came from a file, "
        "check that its dtype for the column is the one the model was trained with."
    ))
