"""The policy engine: check a frame against a contract, apply the policy, report.

:func:`apply` is the vectorised equivalent of the contract's pandera schema plus the
policy. It runs in small steps, one concept each:

1. **fast path** (:func:`_needs_nothing`): a frame already in the training columns,
   order and dtypes, with nothing to act on, is returned as it is, uncopied;
2. **columns** (:func:`_check_columns`): duplicate, missing and extra columns;
3. **coerce** (:mod:`safemodel.core.engine.coerce`): each column to its training dtype,
   losslessly; values that cannot be are type failures;
4. **check**: non-finite numbers, unseen categories, unexpected missing values,
   the contract's extra checks;
5. **fill**: the policy's imputations and unseen-category replacements;
6. **report**: a :class:`~safemodel.core.report.Prepared` frame and its
   :class:`~safemodel.core.report.PolicyReport`, or a
   :class:`~safemodel.errors.ContractViolation` listing every failure at once.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from safemodel._frame import absent_fields, as_frame, column_at
from safemodel._values import failure_value
from safemodel.core.contract import ColumnSpec, Contract
from safemodel.core.engine.coerce import coerce, finish, is_na, missing_mask, same_strings
from safemodel.core.policy import MissingAction, Policy, UnseenAction, check_option
from safemodel.core.report import ColumnAction, PolicyReport, Prepared
from safemodel.errors import ContractViolation, Failure, SafeModelError

__all__ = ["Invalid", "apply"]

Invalid = Literal["raise", "drop"]


def apply(
    contract: Contract, policy: Policy, X: Any, *, invalid: Invalid = "raise"
) -> Prepared:
    """Check ``X`` against ``contract`` and apply ``policy``.

    Parameters
    ----------
    contract : Contract
    policy : Policy
    X : DataFrame, list of dict, dict of lists, or dict
        The caller's input; never mutated.
    invalid : {"raise", "drop"}
        ``"raise"``: any failure raises :class:`ContractViolation` (every failure at
        once). ``"drop"``: rows with row-level failures are left out of the frame and
        listed in ``report.rejected``; column-level failures still raise.

    Returns
    -------
    Prepared

    Raises
    ------
    ContractViolation
        Listing every failure (column, check, value, row).
    InvalidArgument
        When ``invalid`` is not ``"raise"`` or ``"drop"``.
    """
    check_option("invalid", invalid, ("raise", "drop"), "prepare")
    frame = as_frame(X)
    if frame is not X:
        frame = _exact_integers(contract, X, frame)
    absent = absent_fields(X, frame)
    if not absent and _needs_nothing(contract, frame):
        return Prepared(frame, PolicyReport(len(frame)))
    run = _Run(len(frame), absent, parse_text=policy.numeric_text == "parse")
    extras = _check_columns(contract, policy, frame, run)
    # Each column looked up once: a lookup by name costs ~40 us in pandas 3.
    originals = {name: frame[name] for name in contract.names}
    for spec in contract.columns:
        _prepare_column(spec, policy, originals[spec.name], run)
    return _result(contract, frame, originals, run, extras, invalid)


@dataclass
class _Run:
    """What one call found so far: failures, actions, rejected rows, new columns."""

    n: int
    absent: dict[str, np.ndarray] = field(default_factory=dict)  # see absent_fields
    failures: list[Failure] = field(default_factory=list)
    actions: list[ColumnAction] = field(default_factory=list)
    replaced: dict[str, pd.Series] = field(default_factory=dict)
    # Before finish: the working series and its missing mask, for a cast after dropping.
    working: dict[str, tuple[pd.Series, np.ndarray]] = field(default_factory=dict)
    parse_text: bool = False  # Policy.numeric_text == "parse"
    bad_rows: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.bad_rows = np.zeros(self.n, dtype=bool)

    def fail(self, name: str, check: str, mask: np.ndarray, values: Any = None) -> None:
        """Row failures at ``mask``; ``values`` (an object array) gives their values."""
        self.failures.extend(
            Failure(name, check, None if values is None else failure_value(values[r]), int(r))
            for r in np.flatnonzero(mask)
        )
        self.bad_rows |= mask

    def act(self, name: str, action: str, mask: np.ndarray) -> None:
        self.actions.append(ColumnAction(name, action, _positions(mask)))


# ------------------------------------------------------------------ fast path


def _needs_nothing(contract: Contract, frame: pd.DataFrame) -> bool:
    """Whether ``frame`` already is what the estimator expects, checked on the arrays.

    The common case in production: training columns in training order and dtypes, no
    unexpected missing, unseen or infinite value. It skips the checks that cannot fail
    (an int64 column holds no NaN) and builds no Series. Anything else, including every
    case the policy would act on, goes through the general path.
    """
    if tuple(frame.columns) != contract.names:
        return False
    for i, spec in enumerate(contract.columns):
        if spec.checks or spec.custom_checks:
            return False
        values = column_at(frame, i)
        dtype = values.dtype
        if dtype != spec.pandas_dtype and not same_strings(dtype, spec.pandas_dtype):
            return False
        if isinstance(dtype, np.dtype):
            if not _numpy_column_ready(spec, dtype, values):
                return False
        elif not _extension_column_ready(spec, dtype, values):
            return False
    return True


def _numpy_column_ready(spec: ColumnSpec, dtype: np.dtype[Any], values: np.ndarray) -> bool:
    if dtype.kind in "iub":
        return True  # cannot hold a missing or infinite value
    if dtype.kind != "f":
        return False  # object, datetime64: the general path knows them
    if len(values) == 1:  # one request: the scalar, without NumPy's per-call costs
        value = float(values[0])
        if spec.kind == "number" and not spec.infinite_bound and math.isinf(value):
            return False
        return spec.nullable or value == value
    if spec.kind == "number" and not spec.infinite_bound:
        if spec.nullable:
            return not np.isinf(values).any()
        return bool(np.isfinite(values).all())
    return spec.nullable or not np.isnan(values).any()


def _extension_column_ready(spec: ColumnSpec, dtype: Any, values: Any) -> bool:
    if len(values) == 1:
        # One request, one row: reading the value costs a tenth of isna + pd.unique on
        # an Arrow string column (issue 18, the one-row scoring ratio); same outcome.
        value = values[0]
        if is_na(value):
            return spec.nullable
        return (spec.allowed is None or isinstance(dtype, pd.CategoricalDtype)
                or value in spec.allowed)
    if isinstance(values, pd.arrays.ArrowStringArray):
        # Arrow strings: the null count is kept, and pyarrow's distinct values cost a
        # quarter of isna + pd.unique at 100 rows (issue 18, the scoring ratio).
        arrow = values.__arrow_array__()
        if arrow.null_count and not spec.nullable:
            return False
        allowed = spec.allowed
        pc: Any = importlib.import_module("pyarrow.compute")  # no type stubs
        return allowed is None or all(
            u is None or u in allowed for u in pc.unique(arrow).to_pylist())
    if not spec.nullable and values.isna().any():
        return False
    if spec.allowed is not None and not isinstance(dtype, pd.CategoricalDtype):
        allowed = spec.allowed
        return not any(u not in allowed and not is_na(u) for u in pd.unique(values))
    return True


def _exact_integers(contract: Contract, X: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with integer columns that pandas read as float64 read again as sent.

    pandas makes ``[2**53 + 1, None]`` a float64 column, which rounds the integer;
    records and dicts of lists keep the exact values, so an integer column of the
    contract is taken from them (as objects) whenever pandas made it float.
    """
    for spec in contract.columns:
        name = spec.name
        if (name in frame.columns and frame[name].dtype.kind == "f"
                and pd.api.types.is_integer_dtype(spec.pandas_dtype)):
            if isinstance(X, Mapping):  # a dict of lists; arrays already hold a dtype
                column = X[name]
                values = list(column) if isinstance(column, list | tuple) else []
            else:
                values = [r.get(name) for r in X]
            if len(values) == len(frame) and any(
                    isinstance(v, int | np.integer) and abs(int(v)) > 2**53 for v in values):
                frame = frame.assign(**{name: pd.Series(values, index=frame.index,
                                                        dtype=object)})
    return frame


# -------------------------------------------------------------------- columns


def _check_columns(
    contract: Contract, policy: Policy, frame: pd.DataFrame, run: _Run
) -> list[Any]:
    """Refuse duplicate, missing and (under ``extra_columns="error"``) extra columns;
    return the extra columns the policy drops."""
    columns = frame.columns
    names = columns.tolist()
    # Distinct as a set is distinct to pandas too, but for missing-value names (pandas
    # counts two NaN names as one); only then ask the index, which builds a hash table.
    maybe_repeated = len(set(names)) != len(names) or any(is_na(c) for c in names)
    if maybe_repeated and not columns.is_unique:
        dupes = sorted({str(c) for c in columns[columns.duplicated()]})
        raise ContractViolation([Failure(c, "duplicate_column") for c in dupes])
    present = set(names)
    failures = [Failure(name, "missing_column") for name in contract.names
                if name not in present]
    known = contract.name_set
    extras = [c for c in names if c not in known]
    if extras and policy.extra_columns == "error":
        failures.extend(Failure(str(c), "unexpected_column") for c in extras)
    if failures:
        raise ContractViolation(failures)
    run.actions.extend(ColumnAction(str(c), "dropped_column", count=run.n) for c in extras)
    return extras


# --------------------------------------------------------------------- column


def _prepare_column(spec: ColumnSpec, policy: Policy, original: pd.Series, run: _Run) -> None:
    """Coerce, check and fill one column; record its failures, actions and new values."""
    s, skip = _coerce_column(spec, original, run)
    miss = missing_mask(s) & ~skip
    _check_finite(spec, s, run)
    if s is not original and original.dtype != s.dtype and not (miss | run.bad_rows).all():
        # (an all-missing column has no type to coerce: pandas merely calls it object)
        run.actions.append(ColumnAction(spec.name, f"coerced from {original.dtype}",
                                        count=run.n))
    unseen_action, missing_action = policy.for_column(spec.name)
    fills: list[tuple[np.ndarray, Any]] = []
    if spec.allowed is not None:
        miss = _handle_unseen(spec, unseen_action, s, miss, miss | skip, run, fills)
    if not spec.nullable and miss.any():
        miss = _handle_missing(spec, missing_action, miss, run, fills)
    s = _filled(s, fills)
    if s is not original:
        run.working[spec.name] = (s, miss)
        run.replaced[spec.name] = finish(s, spec, miss | run.bad_rows)
    if spec.checks or spec.custom_checks:
        failed = _extra_check_failures(spec, run.replaced.get(spec.name, original),
                                       run.bad_rows)
        run.failures.extend(failed)
        # Rows an extra check rejects are left out too, so outputs match Prepared.rows.
        run.bad_rows[[f.row for f in failed if f.row is not None]] = True


def _coerce_column(spec: ColumnSpec, original: pd.Series, run: _Run
                   ) -> tuple[pd.Series, np.ndarray]:
    """The coerced column, and the rows no later step looks at (bad type, absent)."""
    s, bad = coerce(original, spec, parse_text=run.parse_text)
    if bad is not None and bad.any():
        found = found_type(original, bad)
        run.fail(spec.name, f"type: expected {spec.dtype}, found {found}", bad,
                 original.to_numpy(dtype=object))
    absent = run.absent.get(spec.name)
    if absent is not None:
        # A field some records of a batch lack: the failure it is for a record alone.
        run.fail(spec.name, "missing_column", absent)
        bad = absent if bad is None else bad | absent
    return s, (bad if bad is not None else np.zeros(run.n, dtype=bool))


def _check_finite(spec: ColumnSpec, s: pd.Series, run: _Run) -> None:
    """Refuse infinite numbers unless training data had them.

    pandera's float check accepts inf; most estimators crash on it.
    """
    if spec.kind == "number" and s.dtype.kind == "f" and not spec.infinite_bound:
        infinite = np.isinf(s.to_numpy(dtype="float64", na_value=np.nan))
        if infinite.any():
            run.fail(spec.name, "non_finite", infinite, s.to_numpy(dtype=object))


def _handle_unseen(
    spec: ColumnSpec, action: UnseenAction, s: pd.Series, miss: np.ndarray,
    skip: np.ndarray, run: _Run, fills: list[tuple[np.ndarray, Any]],
) -> np.ndarray:
    """Apply the unseen-category rule: record its fills; return the missing mask."""
    unseen = _unseen_mask(s, spec, skip)
    if unseen is None:
        return miss
    if action == "error":
        run.fail(spec.name, "unseen_category", unseen, s.to_numpy(dtype=object))
    elif action == "missing":
        run.act(spec.name, "unseen_to_missing", unseen)
        fills.append((unseen, None))
        missing: np.ndarray = miss | unseen
        return missing
    elif action == "most_frequent":
        if spec.impute is None:
            run.fail(spec.name, "no_impute_value", unseen)
        else:
            run.act(spec.name, "unseen_to_most_frequent", unseen)
            fills.append((unseen, spec.impute))
    else:
        run.act(spec.name, "unseen_passthrough", unseen)
    return miss


def _handle_missing(
    spec: ColumnSpec, action: MissingAction, miss: np.ndarray, run: _Run,
    fills: list[tuple[np.ndarray, Any]],
) -> np.ndarray:
    """Apply the missing-value rule to a column that had none in training: record its
    fills; return the rows still missing."""
    if action == "error":
        run.fail(spec.name, "unexpected_missing", miss)
    elif action == "impute":
        if spec.impute is None:
            run.fail(spec.name, "no_impute_value", miss)
        else:
            run.act(spec.name, "imputed", miss)
            fills.append((miss, spec.impute))
            return np.zeros(run.n, dtype=bool)
    else:
        run.act(spec.name, "missing_passthrough", miss)
    return miss


def _unseen_mask(s: pd.Series, spec: ColumnSpec, skip: np.ndarray) -> np.ndarray | None:
    """Rows holding a value outside the allowed set (``None`` when there are none).

    Checks the distinct values first: a hash pass in C, then a few set lookups. The
    row mask is only built when something unseen is present (the slow path). Arrow
    strings take one pass of pyarrow's ``is_in`` against the allowed set instead, which
    answers both questions (about 1.5 ms per 125,000 rows a pass).
    """
    allowed = spec.allowed
    assert allowed is not None
    if isinstance(s.dtype, pd.CategoricalDtype) and s.dtype == spec.pandas_dtype:
        return None  # codes cannot hold anything else
    array = s.array
    if isinstance(array, pd.arrays.ArrowStringArray):
        return _unseen_arrow_strings(array, allowed, skip)
    uniques = pd.unique(array)
    unseen = [u for u in uniques if u not in allowed and not is_na(u)]
    if not unseen:
        return None
    mask = np.asarray(s.isin(unseen).to_numpy(), dtype=bool) & ~skip
    return mask if mask.any() else None


def _unseen_arrow_strings(array: Any, allowed: Any, skip: np.ndarray) -> np.ndarray | None:
    # An Arrow-backed array implies pyarrow is installed; it ships no type stubs.
    pa: Any = importlib.import_module("pyarrow")
    pc: Any = importlib.import_module("pyarrow.compute")
    arrow = array.__arrow_array__()
    # Only text can equal a text value (as `value in allowed` decides it in Python);
    # the null in the set makes a missing value known too (it is no unseen category).
    known_values = pa.array([*(v for v in allowed if isinstance(v, str)), None], arrow.type)
    known = pc.is_in(arrow, value_set=known_values, skip_nulls=False)
    if pc.all(known).as_py():
        return None
    mask = ~np.asarray(known.to_numpy(zero_copy_only=False), dtype=bool) & ~skip
    return mask if mask.any() else None


def _filled(s: pd.Series, fills: list[tuple[np.ndarray, Any]]) -> pd.Series:
    """``s`` after each ``(mask, value)`` fill in turn, as successive ``out[mask] = value``
    make it, writing each row once: a row a later fill covers is left to that fill (an
    unseen category made missing, then imputed, is filled with the imputed value only).
    """
    if len(fills) == 1:
        return _fill(s, *fills[0])
    covered = np.zeros(len(s), dtype=bool)
    last: list[tuple[np.ndarray, Any]] = []
    for mask, value in reversed(fills):
        own = mask & ~covered
        if own.any():
            last.append((own, value))
        covered |= mask
    for mask, value in reversed(last):
        s = _fill(s, mask, value)
    return s


def _fill(s: pd.Series, mask: np.ndarray, value: Any) -> pd.Series:
    """``s`` with ``value`` (``None``: missing) at ``mask``, as ``out[mask] = value`` makes it.

    On the arrays: ``Series.__setitem__`` with a mask costs about 10x more (index
    alignment, and Arrow strings converted element by element), which made the policy
    1.2-1.9x the raw estimator on a batch where a few rows need it. Cases not covered
    below take pandas' own assignment.
    """
    filled = _fill_array(s.array, s.dtype, mask, value)
    if filled is None:
        out = s.copy()
        out[mask] = value
        return out
    return pd.Series(filled, index=s.index, name=s.name, dtype=s.dtype, copy=False)


def _fill_array(array: Any, dtype: Any, mask: np.ndarray, value: Any) -> Any:
    if isinstance(dtype, np.dtype):
        if dtype.kind == "f" and (value is None or _is_real(value)):
            out = array.to_numpy(copy=True)
            out[mask] = np.nan if value is None else value
            return out
        if dtype.kind == "O":
            out = array.to_numpy(copy=True)
            out[mask] = value
            return out
        return None
    if isinstance(array, pd.arrays.ArrowStringArray) and (value is None or isinstance(value, str)):
        # An Arrow-backed array implies pyarrow is installed; it ships no type stubs.
        pa: Any = importlib.import_module("pyarrow")
        pc: Any = importlib.import_module("pyarrow.compute")
        values = array.__arrow_array__()
        filled = pc.if_else(pa.array(mask), pa.scalar(value, values.type), values)
        try:
            return pd.arrays.ArrowStringArray(filled, dtype=dtype)
        except TypeError:
            # pandas 2 takes no dtype; when its array is not this dtype, pandas' own
            # assignment (the caller's fallback) keeps the dtype exact.
            out = pd.arrays.ArrowStringArray(filled)
            return out if out.dtype == dtype else None
    if isinstance(array, pd.arrays.IntegerArray) and (
        value is None or (isinstance(value, int | np.integer) and not isinstance(value, bool))
    ):
        numbers = array.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        if value is not None and not np.can_cast(np.min_scalar_type(value), numbers.dtype):
            return None  # out of range: pandas' assignment raises what it raises
        missing = np.array(array.isna(), dtype=bool)
        if value is None:
            missing |= mask
        else:
            numbers[mask] = value
            missing &= ~mask
        return pd.arrays.IntegerArray(numbers, missing)
    return None


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_)


def _extra_check_failures(spec: ColumnSpec, s: pd.Series, skip: np.ndarray) -> list[Failure]:
    from safemodel.core.contract import _build_check

    failures: list[Failure] = []
    checks = [*(_build_check(c) for c in spec.checks), *spec.custom_checks]
    present = ~missing_mask(s) & ~skip
    for check in checks:
        try:
            result = check(s[present]).check_output
        except Exception as exc:  # a user's check must not crash scoring with a raw error
            raise SafeModelError(
                f"Check {check.name!r} of column {spec.name!r} failed to run: "
                f"{type(exc).__name__}: {exc}."
            ) from exc
        ok = np.ones(len(s), dtype=bool)
        ok[np.flatnonzero(present)] = np.asarray(result, dtype=bool)
        values = s.to_numpy(dtype=object)
        failures.extend(Failure(spec.name, str(check.name), failure_value(values[r]), int(r))
                        for r in np.flatnonzero(~ok))
    return failures


# --------------------------------------------------------------------- report


def _result(
    contract: Contract, frame: pd.DataFrame, originals: dict[str, pd.Series], run: _Run,
    extras: list[Any], invalid: Invalid,
) -> Prepared:
    """Raise the failures, or build the frame the estimator sees and its report."""
    rejected: tuple[Failure, ...] = ()
    if run.failures:
        if invalid == "raise" or any(f.row is None for f in run.failures):
            raise ContractViolation(run.failures)
        rejected = tuple(run.failures)
    report = PolicyReport(run.n, tuple(run.actions), rejected)
    if (not run.replaced and not extras and not rejected
            and list(frame.columns) == list(contract.names)):
        return Prepared(frame, report)  # nothing to change: no copy at all
    data = {name: run.replaced.get(name, originals[name]) for name in contract.names}
    out = pd.DataFrame(data, index=frame.index, copy=False)
    if rejected:
        kept = np.flatnonzero(~run.bad_rows)
        out = out.iloc[kept]
        narrowed = _narrowed(contract, run, out, kept)
        if narrowed:
            out = out.assign(**narrowed)
    return Prepared(out, report)


def _narrowed(contract: Contract, run: _Run, out: pd.DataFrame, kept: np.ndarray
              ) -> dict[str, Any]:
    """Integer and boolean columns cast again to their training dtype on the kept rows.

    ``finish`` made them float64 (object) to hold the missing values of rows that
    failed; once those rows are left out, a column with nothing missing takes its
    training dtype again: an int64 above 2**53 is exact only as int64.
    """
    narrowed: dict[str, Any] = {}
    for spec in contract.columns:
        target = spec.pandas_dtype
        if (spec.name in run.working and isinstance(target, np.dtype)
                and target.kind in "iub" and out[spec.name].dtype != target):
            s, miss = run.working[spec.name]
            if not miss[kept].any():
                narrowed[spec.name] = finish(s.iloc[kept], spec, miss[kept]).to_numpy()
    return narrowed


def _positions(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(np.flatnonzero(mask).tolist())  # Python ints, in C


#: Found-type names that do not depend on the engine: the same text column is ``str``
#: on one machine, ``string`` from Spark's Arrow batches and ``object`` from Dask.
_VALUE_KINDS = {"str": "text", "int": "integer", "float": "float", "bool": "boolean",
                "Timestamp": "datetime", "datetime": "datetime", "date": "date",
                "Decimal": "decimal", "bytes": "bytes"}


def _dtype_kind(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "text"
    return str(dtype)


def found_type(s: pd.Series, bad: np.ndarray | None = None) -> str:
    """The kind of the offending values, named the same on every engine.

    ``text``, ``integer``, ``float``, ``boolean``, ``datetime``, ``category``, or
    ``mixed(...)`` of those for an object column holding several.
    """
    if s.dtype != np.dtype(object):
        return _dtype_kind(s.dtype)
    values = s.to_numpy(dtype=object)
    if bad is not None:
        values = values[bad]
    kinds = sorted({_VALUE_KINDS.get(type(v).__name__.lstrip("_"), _numpy_kind(v))
                    for v in values.tolist() if not is_na(v)})
    if not kinds:
        return "missing"
    return kinds[0] if len(kinds) == 1 else "mixed(" + ", ".join(kinds) + ")"


def _numpy_kind(v: Any) -> str:
    if isinstance(v, np.generic):
        return _dtype_kind(np.asarray(v).dtype)
    return type(v).__name__
