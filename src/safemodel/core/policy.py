"""The handling policy: what to do with unseen categories, missing values, extra columns.

:class:`Policy` is configuration (readable, stored in the bundle as JSON).
:func:`apply` is the engine: it checks a frame against a :class:`~safemodel.Contract`
(the vectorised equivalent of the contract's pandera schema), applies the policy and
returns a :class:`Prepared` frame plus a :class:`PolicyReport` of every action taken,
or raises :class:`~safemodel.ContractViolation` listing every failure at once.

Semantics (see DESIGN.md, "Policy semantics"):

- ``missing`` acts only on *unexpected* missing values (a column that had none in
  training). Expected missing values always reach the estimator unchanged.
- ``unseen_category="missing"`` turns an unseen value into a missing value of its
  column, which then follows the missing rule (imputed with the mode by default).
- Only lossless type coercions are made: int to float, integral float to int, str to
  category (and same-kind dtype changes such as ``float32`` to ``float64``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from safemodel._frame import as_frame, column_at
from safemodel.core.contract import ColumnSpec, Contract
from safemodel.errors import BundleFormatError, ContractViolation, Failure, SafeModelError

__all__ = [
    "ColumnAction",
    "ColumnPolicy",
    "Policy",
    "PolicyReport",
    "Prepared",
    "apply",
]

logger = logging.getLogger("safemodel")

UnseenAction = Literal["error", "missing", "most_frequent", "passthrough"]
MissingAction = Literal["error", "impute", "passthrough"]
ExtraAction = Literal["drop", "error"]
Invalid = Literal["raise", "drop"]

_UNSEEN: tuple[str, ...] = get_args(UnseenAction)
_MISSING: tuple[str, ...] = get_args(MissingAction)
_EXTRA: tuple[str, ...] = get_args(ExtraAction)


def _check_option(name: str, value: Any, options: tuple[str, ...], where: str = "Policy") -> None:
    if value not in options:
        raise SafeModelError(
            f"The {name!r} parameter of {where} must be one of {list(options)}; "
            f"got {value!r} instead."
        )


@dataclass(frozen=True)
class ColumnPolicy:
    """Per-column override of :class:`Policy`; ``None`` inherits the policy's value."""

    unseen_category: UnseenAction | None = None
    missing: MissingAction | None = None

    def __post_init__(self) -> None:
        if self.unseen_category is not None:
            _check_option("unseen_category", self.unseen_category, _UNSEEN, "ColumnPolicy")
        if self.missing is not None:
            _check_option("missing", self.missing, _MISSING, "ColumnPolicy")


@dataclass(frozen=True)
class Policy:
    """What to do when input deviates from the contract.

    Parameters
    ----------
    unseen_category : {"missing", "error", "most_frequent", "passthrough"}
        A value outside a categorical column's allowed set.
    missing : {"impute", "error", "passthrough"}
        A missing value in a column that had none in training. ``"impute"`` fills
        the training median (numbers) or mode (everything else).
    extra_columns : {"drop", "error"}
        Columns the contract does not know.
    columns : dict of str to ColumnPolicy
        Per-column overrides.

    Examples
    --------
    >>> import safemodel as sm
    >>> sm.Policy(columns={"island": sm.ColumnPolicy(unseen_category="error")})
    ... # doctest: +ELLIPSIS
    Policy(unseen_category='missing', missing='impute', ...)
    """

    unseen_category: UnseenAction = "missing"
    missing: MissingAction = "impute"
    extra_columns: ExtraAction = "drop"
    columns: Mapping[str, ColumnPolicy] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_option("unseen_category", self.unseen_category, _UNSEEN)
        _check_option("missing", self.missing, _MISSING)
        _check_option("extra_columns", self.extra_columns, _EXTRA)
        for name, cp in self.columns.items():
            if not isinstance(cp, ColumnPolicy):
                raise SafeModelError(
                    f"Policy.columns[{name!r}] must be a ColumnPolicy; got {type(cp).__name__}."
                )
        object.__setattr__(self, "columns", dict(self.columns))

    @classmethod
    def strict(cls) -> Policy:
        """Every deviation is an error: unseen categories, unexpected missing, extra columns."""
        return cls(unseen_category="error", missing="error", extra_columns="error")

    def for_column(self, name: str) -> tuple[UnseenAction, MissingAction]:
        """The effective ``(unseen_category, missing)`` actions for one column."""
        cp = self.columns.get(name)
        if cp is None:
            return self.unseen_category, self.missing
        return (cp.unseen_category or self.unseen_category, cp.missing or self.missing)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unseen_category": self.unseen_category,
            "missing": self.missing,
            "extra_columns": self.extra_columns,
        }
        if self.columns:
            out["columns"] = {
                name: {k: v for k, v in (("unseen_category", cp.unseen_category),
                                         ("missing", cp.missing)) if v is not None}
                for name, cp in self.columns.items()
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        try:
            return cls(
                unseen_category=data["unseen_category"],
                missing=data["missing"],
                extra_columns=data["extra_columns"],
                columns={str(k): ColumnPolicy(**v) for k, v in data.get("columns", {}).items()},
            )
        except (KeyError, TypeError, AttributeError, SafeModelError) as exc:
            raise BundleFormatError(
                f"The policy is malformed: {type(exc).__name__}: {exc}.", member="policy.json"
            ) from None


@dataclass(frozen=True)
class ColumnAction:
    """One action the policy took on one column, and the row positions it touched."""

    column: str
    action: str
    rows: tuple[int, ...] = ()
    count: int = -1  # -1: len(rows); whole-column actions give the count and no rows

    def __post_init__(self) -> None:
        if self.count < 0:
            object.__setattr__(self, "count", len(self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "action": self.action, "count": self.count,
                "rows": list(self.rows)}


# Actions that change what the estimator sees (logged at WARNING); the others are
# lossless (type coercion, dropping an unknown column the estimator never reads).
_CHANGING = frozenset({"imputed", "unseen_to_missing", "unseen_to_most_frequent",
                       "unseen_passthrough", "missing_passthrough"})


@dataclass(frozen=True)
class PolicyReport:
    """What the policy did in one call: actions per column, and rejected rows.

    ``rows`` is the number of input rows; ``rejected`` lists the failures of rows that
    were dropped (only with ``invalid="drop"``).
    """

    rows: int
    actions: tuple[ColumnAction, ...] = ()
    rejected: tuple[Failure, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether the policy changed any value the estimator sees (or dropped rows)."""
        return bool(self.rejected) or any(a.action in _CHANGING for a in self.actions)

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({f.row for f in self.rejected if f.row is not None})

    def counts(self) -> dict[str, dict[str, int]]:
        """``{column: {action: rows}}``."""
        out: dict[str, dict[str, int]] = {}
        for a in self.actions:
            out.setdefault(a.column, {})[a.action] = a.count
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rows": self.rows,
            "actions": [a.to_dict() for a in self.actions],
            "rejected_rows": self.rejected_rows,
            "rejected": [f.to_dict() for f in self.rejected],
        }

    def summary(self) -> str:
        """One line without raw values, for logs."""
        if not self.actions and not self.rejected:
            return f"{self.rows} row(s), no policy action"
        parts = [f"{a.column}: {a.action} x{a.count}" for a in self.actions]
        if self.rejected:
            parts.append(f"rejected {len(self.rejected_rows)} row(s)")
        return f"{self.rows} row(s); " + "; ".join(parts)


@dataclass(frozen=True)
class Prepared:
    """The frame the estimator will see, and the report of how it was made.

    ``rows`` are the positions, in the caller's input, of the rows in ``frame``
    (all rows unless invalid rows were dropped).
    """

    frame: pd.DataFrame
    report: PolicyReport

    @property
    def rows(self) -> np.ndarray:
        rejected = self.report.rejected_rows
        keep = np.ones(self.report.rows, dtype=bool)
        keep[rejected] = False
        return np.flatnonzero(keep)


# --------------------------------------------------------------------------- engine

def _positions(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(mask))


def _plain(v: Any) -> Any:
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
    return repr(v)


def _is_stringish(dtype: Any) -> bool:
    return isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object)


def _is_number(dtype: Any) -> bool:
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def _type_mask_objects(values: np.ndarray, ok: Any) -> np.ndarray:
    """True where an object value is present but not of an accepted type."""
    return np.fromiter(
        (not (v is None or v is pd.NA or (isinstance(v, float) and v != v) or ok(v))
         for v in values),
        dtype=bool, count=len(values),
    )


def _same_strings(found: Any, target: Any) -> bool:
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


def _coerce(s: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, np.ndarray | None]:
    """Return ``(working series, bad-type mask)``; bad values become missing.

    The working series has a dtype of the target's kind that can hold missing values;
    :func:`_finish` turns it into the target dtype once the policy has filled it.
    """
    target = spec.pandas_dtype
    found = s.dtype
    if found == target or _same_strings(found, target):
        return s, None
    index = s.index
    if isinstance(target, pd.CategoricalDtype):
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
        return pd.Series(values, index=index, dtype=object, name=s.name), bad
    if _is_stringish(target):
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
            return pd.Series(values, index=index, name=s.name).astype(target), bad
        return _all_bad(s)
    if _is_number(target):
        if _is_number(found):
            x = s.to_numpy(dtype="float64", na_value=np.nan)
            bad = np.zeros(len(x), dtype=bool)
            if pd.api.types.is_integer_dtype(found) and not pd.api.types.is_integer_dtype(target):
                bad = np.abs(x) > 2.0**53
        elif found == np.dtype(object):
            values = s.to_numpy(dtype=object)
            bad = _type_mask_objects(
                values, lambda v: isinstance(v, int | float | np.number) and not isinstance(
                    v, bool | np.bool_)
            )
            x = np.array([np.nan if b or v is None or v is pd.NA else v
                          for v, b in zip(values, bad, strict=True)], dtype="float64")
        else:
            return _all_bad(s)
        if pd.api.types.is_integer_dtype(target):
            info = np.iinfo(getattr(target, "numpy_dtype", target))
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(x) & (
                    ~np.isfinite(x) | (x != np.floor(x)) | (x < info.min) | (x > info.max)
                )
            if pd.api.types.is_integer_dtype(found) and not bad.any():
                return s.astype(_nullable_twin(target)), bad
            x = np.where(bad, np.nan, x)
            return pd.Series(x, index=index, name=s.name).astype(_nullable_twin(target)), bad
        with np.errstate(invalid="ignore"):
            xt = x.astype(getattr(target, "numpy_dtype", target))
            bad |= ~np.isnan(x) & (xt.astype("float64") != x) & np.isfinite(x)
        x = np.where(bad, np.nan, x)
        if isinstance(target, np.dtype):
            return pd.Series(x.astype(target), index=index, name=s.name), bad
        return pd.Series(x, index=index, name=s.name).astype(target), bad
    if pd.api.types.is_bool_dtype(target):
        if pd.api.types.is_bool_dtype(found):
            return s.astype(_nullable_twin(target)), None
        if found == np.dtype(object):
            values = s.to_numpy(dtype=object)
            bad = _type_mask_objects(values, lambda v: isinstance(v, bool | np.bool_))
            values = np.where(bad, None, values)
            return pd.Series(values, index=index, name=s.name).astype("boolean"), bad
        return _all_bad(s)
    if pd.api.types.is_datetime64_any_dtype(target):
        if pd.api.types.is_datetime64_any_dtype(found):
            aware_target = isinstance(target, pd.DatetimeTZDtype)
            aware_found = isinstance(found, pd.DatetimeTZDtype)
            if aware_target == aware_found:
                return s.astype(target), None
        return _all_bad(s)
    return s, None  # "other": accepted as is


def _all_bad(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    bad = ~s.isna().to_numpy()
    return pd.Series([None] * len(s), index=s.index, dtype=object, name=s.name), bad


def _missing_mask(s: pd.Series) -> np.ndarray:
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


def _unseen_mask(s: pd.Series, spec: ColumnSpec, skip: np.ndarray) -> np.ndarray | None:
    """Rows holding a value outside the allowed set (``None`` when there are none).

    Checks the distinct values first: a hash pass in C, then a few set lookups. The
    row mask is only built when something unseen is present (the slow path).
    """
    allowed = spec.allowed
    assert allowed is not None
    if isinstance(s.dtype, pd.CategoricalDtype) and s.dtype == spec.pandas_dtype:
        return None  # codes cannot hold anything else
    uniques = pd.unique(s.array)
    unseen = [u for u in uniques if u not in allowed and not _is_na(u)]
    if not unseen:
        return None
    mask = np.asarray(s.isin(unseen).to_numpy(), dtype=bool) & ~skip
    return mask if mask.any() else None


def _is_na(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _fill(s: pd.Series, mask: np.ndarray, value: Any) -> pd.Series:
    out = s.copy()
    out[mask] = value
    return out


def _finish(s: pd.Series, spec: ColumnSpec, missing: np.ndarray) -> pd.Series:
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
    return s.astype(target)


def _needs_nothing(contract: Contract, frame: pd.DataFrame) -> bool:
    """Whether ``frame`` already is what the estimator expects, checked on the arrays.

    The common case in production: training columns in training order and dtypes, no
    unexpected missing, unseen or infinite value. It skips the checks that cannot fail
    (an int64 column holds no NaN) and builds no Series. Anything else, including every
    case the policy would act on, goes through the general path below.
    """
    if tuple(frame.columns) != contract.names:
        return False
    for i, spec in enumerate(contract.columns):
        if spec.checks or spec.custom_checks:
            return False
        values = column_at(frame, i)
        dtype = values.dtype
        target = spec.pandas_dtype
        if dtype != target and not _same_strings(dtype, target):
            return False
        if isinstance(dtype, np.dtype):
            if dtype.kind in "iub":
                continue
            if dtype.kind != "f":
                return False  # object, datetime64: the general path knows them
            if spec.kind == "number" and not _had_infinity(spec):
                if spec.nullable:
                    if np.isinf(values).any():
                        return False
                elif not np.isfinite(values).all():
                    return False
            elif not spec.nullable and np.isnan(values).any():
                return False
            continue
        if not spec.nullable and values.isna().any():
            return False
        if spec.allowed is not None and not isinstance(dtype, pd.CategoricalDtype):
            allowed = spec.allowed
            if any(u not in allowed and not _is_na(u) for u in pd.unique(values)):
                return False
    return True


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
    """
    _check_option("invalid", invalid, ("raise", "drop"), "prepare")
    frame = as_frame(X)
    n = len(frame)
    if _needs_nothing(contract, frame):
        return Prepared(frame, PolicyReport(n))
    failures: list[Failure] = []
    actions: list[ColumnAction] = []

    columns = frame.columns
    if not columns.is_unique:
        dupes = sorted({str(c) for c in columns[columns.duplicated()]})
        raise ContractViolation([Failure(c, "duplicate_column") for c in dupes])
    present = set(columns)
    missing_cols = [name for name in contract.names if name not in present]
    failures.extend(Failure(name, "missing_column") for name in missing_cols)
    known = contract.name_set
    extras = [c for c in columns if c not in known]
    if extras:
        if policy.extra_columns == "error":
            failures.extend(Failure(str(c), "unexpected_column") for c in extras)
        else:
            actions.extend(ColumnAction(str(c), "dropped_column", count=n) for c in extras)
    if missing_cols or (extras and policy.extra_columns == "error"):
        raise ContractViolation(failures)

    replaced: dict[str, pd.Series] = {}
    bad_rows = np.zeros(n, dtype=bool)
    for spec in contract.columns:
        original = frame[spec.name]
        s, bad = _coerce(original, spec)
        if bad is not None and bad.any():
            raw = original.to_numpy(dtype=object)
            found = _found_type(original)
            failures.extend(
                Failure(spec.name, f"type: expected {spec.dtype}, found {found}",
                        _plain(raw[r]), int(r)) for r in np.flatnonzero(bad)
            )
            bad_rows |= bad
        miss = _missing_mask(s)
        if bad is not None:
            miss = miss & ~bad
        if spec.kind == "number" and s.dtype.kind == "f" and not _had_infinity(spec):
            # pandera's float check accepts inf; most estimators crash on it. Refuse it
            # unless training data had it.
            infinite = np.isinf(s.to_numpy(dtype="float64", na_value=np.nan))
            if infinite.any():
                values = s.to_numpy(dtype=object)
                failures.extend(Failure(spec.name, "non_finite", _plain(values[r]), int(r))
                                for r in np.flatnonzero(infinite))
                bad_rows |= infinite
        if s is not original and original.dtype != s.dtype and not (miss | bad_rows).all():
            # (an all-missing column has no type to coerce: pandas merely calls it object)
            actions.append(ColumnAction(spec.name, f"coerced from {original.dtype}", count=n))
        changed = False
        unseen_action, missing_action = policy.for_column(spec.name)
        if spec.allowed is not None:
            unseen = _unseen_mask(s, spec, miss if bad is None else miss | bad)
            if unseen is not None:
                if unseen_action == "error":
                    values = s.to_numpy(dtype=object)
                    failures.extend(
                        Failure(spec.name, "unseen_category", _plain(values[r]), int(r))
                        for r in np.flatnonzero(unseen)
                    )
                    bad_rows |= unseen
                elif unseen_action == "missing":
                    actions.append(ColumnAction(spec.name, "unseen_to_missing",
                                                _positions(unseen)))
                    s = _fill(s, unseen, None)
                    miss = miss | unseen
                    changed = True
                elif unseen_action == "most_frequent":
                    if spec.impute is None:
                        failures.extend(Failure(spec.name, "no_impute_value", None, int(r))
                                        for r in np.flatnonzero(unseen))
                        bad_rows |= unseen
                    else:
                        actions.append(ColumnAction(spec.name, "unseen_to_most_frequent",
                                                    _positions(unseen)))
                        s = _fill(s, unseen, spec.impute)
                        changed = True
                else:
                    actions.append(ColumnAction(spec.name, "unseen_passthrough",
                                                _positions(unseen)))
        if not spec.nullable and miss.any():
            if missing_action == "error":
                failures.extend(Failure(spec.name, "unexpected_missing", None, int(r))
                                for r in np.flatnonzero(miss))
                bad_rows |= miss
            elif missing_action == "impute":
                if spec.impute is None:
                    failures.extend(Failure(spec.name, "no_impute_value", None, int(r))
                                    for r in np.flatnonzero(miss))
                    bad_rows |= miss
                else:
                    actions.append(ColumnAction(spec.name, "imputed", _positions(miss)))
                    s = _fill(s, miss, spec.impute)
                    miss = np.zeros(n, dtype=bool)
                    changed = True
            else:
                actions.append(ColumnAction(spec.name, "missing_passthrough", _positions(miss)))
        if s is not original or changed:
            replaced[spec.name] = _finish(s, spec, miss | bad_rows)
        if spec.checks or spec.custom_checks:
            failures.extend(_extra_check_failures(spec, replaced.get(spec.name, original),
                                                  bad_rows))

    rejected: tuple[Failure, ...] = ()
    if failures:
        if invalid == "raise" or any(f.row is None for f in failures):
            raise ContractViolation(failures)
        rejected = tuple(failures)

    report = PolicyReport(n, tuple(actions), rejected)
    if not replaced and not extras and not rejected and list(columns) == list(contract.names):
        return Prepared(frame, report)  # nothing to change: no copy at all
    data = {name: replaced.get(name, frame[name]) for name in contract.names}
    out = pd.DataFrame(data, index=frame.index, copy=False)
    if rejected:
        out = out.iloc[np.flatnonzero(~bad_rows)]
    return Prepared(out, report)


def _had_infinity(spec: ColumnSpec) -> bool:
    return any(isinstance(v, float) and np.isinf(v) for v in (spec.minimum, spec.maximum))


def _found_type(s: pd.Series) -> str:
    if s.dtype == np.dtype(object):
        kinds = sorted({type(v).__name__ for v in s.dropna().tolist()})
        return "object(" + ", ".join(kinds) + ")" if kinds else "object"
    return str(s.dtype)


def _extra_check_failures(spec: ColumnSpec, s: pd.Series, skip: np.ndarray) -> list[Failure]:
    from safemodel.core.contract import _build_check

    failures: list[Failure] = []
    checks = [*(_build_check(c) for c in spec.checks), *spec.custom_checks]
    present = ~_missing_mask(s) & ~skip
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
        failures.extend(Failure(spec.name, str(check.name), _plain(values[r]), int(r))
                        for r in np.flatnonzero(~ok))
    return failures


def log_report(report: PolicyReport, bundle: str) -> None:
    """One line on the ``safemodel`` logger: WARNING if the policy changed something."""
    if report.changed:
        if logger.isEnabledFor(logging.WARNING):
            logger.warning("%s: %s", bundle, report.summary())
    elif report.actions and logger.isEnabledFor(logging.INFO):
        logger.info("%s: %s", bundle, report.summary())
