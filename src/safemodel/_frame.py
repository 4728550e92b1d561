"""Turn the input shapes a caller may send into one DataFrame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from safemodel.errors import ContractViolation, Failure

__all__ = ["Input", "absent_fields", "as_frame", "column_at"]

Input: TypeAlias = pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]


def as_frame(X: Any) -> pd.DataFrame:
    """Return ``X`` as a DataFrame without copying a DataFrame.

    Accepted: a DataFrame; a list of dict records (a JSON request body); a dict of
    lists (columns); one dict of scalars (one row). Anything else is a
    :class:`ContractViolation`.
    """
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, Mapping):
        if not X:
            return pd.DataFrame()
        values = list(X.values())
        if all(_is_column(v) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) > 1:
                raise ContractViolation(
                    [Failure("*", "column_lengths", sorted(lengths))],
                    "A dict of lists must have lists of equal length; found lengths "
                    f"{sorted(lengths)}. Send one list per column, all of the same length.",
                )
            return pd.DataFrame(dict(X))
        if any(_is_column(v) for v in values):
            raise ContractViolation(
                [Failure("*", "input_shape", "mixed")],
                "A dict input must be either one record (every value a scalar) or columns "
                "(every value a list); found a mix of both.",
            )
        return pd.DataFrame([dict(X)])
    if isinstance(X, Sequence) and not isinstance(X, str | bytes):
        if not all(isinstance(r, Mapping) for r in X):
            bad = next(i for i, r in enumerate(X) if not isinstance(r, Mapping))
            raise ContractViolation(
                [Failure("*", "record_type", type(X[bad]).__name__, bad)],
                f"A list input must hold dict records; row {bad} is a "
                f"{type(X[bad]).__name__}. Send a list of {{column: value}} objects.",
            )
        return pd.DataFrame(list(X)) if X else pd.DataFrame()
    raise ContractViolation(
        [Failure("*", "input_type", type(X).__name__)],
        f"Expected a DataFrame, a list of dict records, a dict of lists or one dict; "
        f"got {type(X).__name__}. {_conversion_hint(X)}",
    )


def _conversion_hint(X: Any) -> str:
    """How to turn what was sent into a form the contract can read (it needs names)."""
    if isinstance(X, pd.Series):
        return ("A Series is one row or one column: for one row whose index holds the "
                "column names, pass X.to_frame().T (or X.to_dict()); for one column, "
                "X.to_frame().")
    if isinstance(X, np.ndarray) or hasattr(X, "__array__"):
        return ("An array has no column names, and the contract checks columns by name: "
                "wrap it as pd.DataFrame(X, columns=bundle.contract.names) (columns in "
                "training order).")
    return "Convert it to a DataFrame whose columns are named as in training."


def absent_fields(X: Any, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """For a list of records: per key, the rows whose record lacks it.

    ``frame`` is ``as_frame(X)``. pandas fills a key absent from one record with NaN,
    which would make it look like a missing value; the policy must see it as an absent
    field, as when the record is sent alone. Empty for every other input shape, and
    when all records share keys (the common case, found with one C-speed pass).
    """
    if isinstance(X, Mapping | str | bytes) or not isinstance(X, Sequence) or len(X) < 2:
        return {}
    # The frame's columns are the union of the records' keys.
    width = len(frame.columns)
    lengths = np.fromiter(map(len, X), dtype=np.intp, count=len(X))
    short = np.flatnonzero(lengths < width)
    if not len(short):
        return {}
    keys = set(frame.columns)
    out: dict[str, np.ndarray] = {}
    for i in short.tolist():
        for key in keys.difference(X[i]):
            out.setdefault(key, np.zeros(len(X), dtype=bool))[i] = True
    return out


def _is_column(v: Any) -> bool:
    return (isinstance(v, Sequence | pd.Series | pd.Index) and not isinstance(v, str | bytes)) or (
        hasattr(v, "ndim") and getattr(v, "ndim", 0) == 1
    )


def column_at(frame: pd.DataFrame, i: int) -> Any:
    """The values of the ``i``-th column (ndarray or ExtensionArray), without a Series.

    ``frame.iloc[:, i]`` or ``frame[name]`` costs ~10 us, more than checking a one-row
    column; pandas' internal ``_get_column_array`` costs ~0.5 us. The public route stays
    as the fallback should pandas remove it.
    """
    getter = getattr(frame, "_get_column_array", None)
    if getter is not None:
        return getter(i)
    return frame.iloc[:, i].array
