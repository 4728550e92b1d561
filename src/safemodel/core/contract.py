"""The input contract: what the estimator was trained on, column by column.

A :class:`Contract` is a tuple of :class:`ColumnSpec` (dtype, kind, nullability,
allowed categories, observed range, impute value, extra checks). Its pandera
``DataFrameSchema`` (:attr:`Contract.schema`) is the source of truth for what is
valid; the policy engine runs a vectorised equivalent on the hot path, and the
test-suite proves the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from safemodel._frame import as_frame
from safemodel._values import plain as _plain
from safemodel.errors import (
    BundleFormatError,
    ContractViolation,
    Failure,
    InvalidArgument,
    SafeModelError,
)

if TYPE_CHECKING:
    import pandera.pandas as pa

__all__ = ["ColumnSpec", "Contract", "Kind"]


def _pandera() -> ModuleType:
    """pandera, imported on first use: scoring never needs it, and importing it is slow
    (it imports pyspark.pandas whenever pyspark is installed)."""
    import pandera.pandas

    return pandera.pandas


Kind = Literal["number", "boolean", "categorical", "text", "datetime", "other"]
_KINDS: tuple[str, ...] = ("number", "boolean", "categorical", "text", "datetime", "other")

# pandera's built-in checks that rebuild exactly from ``Check.<name>(**statistics)``.
_SERIALISABLE_CHECKS = frozenset(
    {
        "equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to", "less_than",
        "less_than_or_equal_to", "in_range", "isin", "notin", "str_matches", "str_contains",
        "str_startswith", "str_endswith", "str_length", "unique_values_eq",
    }
)


@dataclass(frozen=True)
class ColumnSpec:
    """What one input column must look like.

    Attributes
    ----------
    name : str
    dtype : str
        The pandas dtype the estimator was trained with (``"float64"``, ``"Int64"``,
        ``"str"``, ``"category"``, ``"datetime64[us, UTC]"`` ...).
    kind : {"number", "boolean", "categorical", "text", "datetime", "other"}
    nullable : bool
        Whether training data had missing values in this column.
    categories : tuple or None
        The allowed set of a categorical column, in training order.
    ordered : bool
        Whether a ``category`` dtype is ordered.
    minimum, maximum : float or None
        Observed range of a numeric column (recorded, not enforced).
    impute : scalar or None
        Training median (numbers) or mode (everything else): the policy's fill value.
    checks : tuple of dict
        Extra pandera built-in checks, as ``{"name": ..., "statistics": {...}}``.
    na : {"none", "nan"} or None
        For an ``object`` column: the missing value training data held (``None`` or
        ``NaN``), which the estimator sees for every missing value, whatever the input
        shape (records turn ``None`` into ``NaN`` under pandas 3). ``None``: not
        recorded (mixed markers, or a bundle built before this existed).
    """

    name: str
    dtype: str
    kind: Kind
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    ordered: bool = False
    minimum: float | None = None
    maximum: float | None = None
    impute: Any = None
    checks: tuple[Mapping[str, Any], ...] = ()
    na: Literal["none", "nan"] | None = None
    # Checks a user schema carried that cannot be written as text; saving refuses them.
    custom_checks: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    @cached_property
    def pandas_dtype(self) -> Any:
        """The dtype object (a ``CategoricalDtype`` carries the allowed categories)."""
        if self.dtype == "category":
            cats = list(self.categories) if self.categories is not None else None
            return pd.CategoricalDtype(cats, ordered=self.ordered)
        return pd.api.types.pandas_dtype(self.dtype)

    @cached_property
    def allowed(self) -> frozenset[Any] | None:
        """The allowed categories as a set, for membership tests."""
        return None if self.categories is None else frozenset(self.categories)

    @cached_property
    def infinite_bound(self) -> bool:
        """Whether the observed range reaches an infinity (training data held one)."""
        return any(isinstance(v, float) and math.isinf(v) for v in (self.minimum, self.maximum))

    def to_dict(self) -> dict[str, Any]:
        if self.custom_checks:
            raise SafeModelError(
                f"Column {self.name!r} has custom pandera check(s) "
                f"{[_check_label(c) for c in self.custom_checks]} that cannot be saved as "
                "text. Use pandera's built-in checks (in_range, isin, str_matches, ...) or "
                "drop the custom check before saving; safemodel never drops a check silently."
            )
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "nullable": self.nullable,
        }
        if self.categories is not None:
            out["categories"] = [_json_scalar(c) for c in self.categories]
        if self.ordered:
            out["ordered"] = True
        if self.minimum is not None:
            out["minimum"] = _json_scalar(self.minimum)
            out["maximum"] = _json_scalar(self.maximum)
        if self.impute is not None:
            out["impute"] = _json_scalar(self.impute)
        if self.checks:
            out["checks"] = [dict(c) for c in self.checks]
        if self.na is not None:
            out["na"] = self.na
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        try:
            kind = data["kind"]
            if kind not in _KINDS:
                raise _malformed(f"unknown kind {kind!r}", expected=list(_KINDS), found=kind)
            cats = data.get("categories")
            spec = cls(
                name=str(data["name"]),
                dtype=str(data["dtype"]),
                kind=kind,
                nullable=bool(data["nullable"]),
                categories=None if cats is None else tuple(_from_json_scalar(c) for c in cats),
                ordered=bool(data.get("ordered", False)),
                minimum=_from_json_scalar(data.get("minimum")),
                maximum=_from_json_scalar(data.get("maximum")),
                impute=_from_json_scalar(data.get("impute")),
                checks=tuple(dict(c) for c in data.get("checks", ())),
                na=data.get("na"),
            )
            if spec.na not in (None, "none", "nan"):
                raise _malformed(f"unknown missing marker {spec.na!r}",
                                 expected=["none", "nan"], found=spec.na)
            _check_values(spec)
            for c in spec.checks:
                _build_check(c)
        except BundleFormatError as exc:
            raise _malformed(f"Contract column {data.get('name', '?')!r} is malformed: {exc}.",
                             expected=exc.expected, found=exc.found) from None
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise _malformed(
                f"Contract column {data.get('name', '?')!r} is malformed: "
                f"{type(exc).__name__}: {exc}."
            ) from None
        return spec


def _malformed(message: str, *, expected: Any = None, found: Any = None) -> BundleFormatError:
    return BundleFormatError(message, member="contract.json", expected=expected, found=found)


def _check_values(spec: ColumnSpec) -> None:
    """The dtype parses, categories are scalars, and the impute value fits the dtype."""
    dtype = spec.pandas_dtype  # parses the dtype string
    for value in (*(spec.categories or ()), spec.impute, spec.minimum, spec.maximum):
        if not isinstance(value, str | int | float | bool | pd.Timestamp | None):
            raise _malformed(f"{value!r} is not a scalar",
                             expected="str, int, float, bool, timestamp or null",
                             found=type(value).__name__)
    value = spec.impute
    if value is None:
        return
    if isinstance(dtype, pd.CategoricalDtype) or spec.categories is not None:
        ok = value in (spec.allowed or ())
    elif pd.api.types.is_bool_dtype(dtype):
        ok = isinstance(value, bool)
    elif pd.api.types.is_numeric_dtype(dtype):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and pd.api.types.is_integer_dtype(dtype):
            info = np.iinfo(getattr(dtype, "numpy_dtype", dtype))
            ok = float(value).is_integer() and info.min <= value <= info.max
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        ok = isinstance(value, pd.Timestamp)
    elif pd.api.types.is_string_dtype(dtype):
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise _malformed(f"impute value {value!r} does not fit dtype {spec.dtype}",
                         expected=spec.dtype, found=value)


def _json_scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return {"$": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    if isinstance(v, pd.Timestamp):
        return {"$": "timestamp", "v": v.isoformat()}
    if v is None or isinstance(v, str | int | float | bool):
        return v
    raise SafeModelError(
        f"Cannot write {v!r} ({type(v).__name__}) into the contract: categories and "
        "statistics must be str, int, float, bool or timestamps."
    )


def _from_json_scalar(v: Any) -> Any:
    if isinstance(v, dict):
        tag = v.get("$")
        if tag == "timestamp":
            return pd.Timestamp(v["v"])
        if tag in ("nan", "inf", "-inf"):
            return float(tag)
        raise _malformed(f"unknown tag {tag!r}", expected=["nan", "inf", "-inf", "timestamp"],
                         found=tag)
    return v


def _check_label(check: Any) -> str:
    return str(getattr(check, "name", None) or getattr(check, "error", None) or repr(check))


def _build_check(spec: Mapping[str, Any]) -> pa.Check:
    name = spec["name"]
    if name not in _SERIALISABLE_CHECKS:
        raise _malformed(f"unknown check {name!r}", expected=sorted(_SERIALISABLE_CHECKS),
                         found=name)
    stats = {k: _from_json_scalar(v) for k, v in dict(spec.get("statistics", {})).items()}
    check: pa.Check = getattr(_pandera().Check, name)(**stats)
    return check


def _is_missing_scalar(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _mode(s: pd.Series) -> Any:
    counts = s.dropna().value_counts(sort=False)
    if counts.empty:
        return None
    top = counts[counts == counts.max()].index.tolist()
    value = sorted(top, key=lambda x: (str(type(x)), x))[0] if len(top) > 1 else top[0]
    return value.item() if isinstance(value, np.generic) else value


def _object_marker(s: pd.Series, missing: pd.Series) -> Literal["none", "nan"] | None:
    """The one missing value an object column holds (``None`` when it holds none)."""
    values = s[missing].tolist()
    if all(v is None for v in values):
        return "none"
    if all(isinstance(v, float) and v != v for v in values):
        return "nan"
    return None


def _infer_column(name: str, s: pd.Series, max_categories: int) -> ColumnSpec:
    spec = _infer_spec(name, s, max_categories)
    if s.dtype == np.dtype(object):
        return replace(spec, na=_object_marker(s, s.isna()))
    return spec


def _infer_spec(name: str, s: pd.Series, max_categories: int) -> ColumnSpec:
    dtype = s.dtype
    missing = s.isna()
    nullable = bool(missing.any())
    present = s[~missing]
    dtype_str = str(dtype)
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnSpec(
            name, "category", "categorical", nullable,
            categories=tuple(_plain(c) for c in dtype.categories),
            ordered=bool(dtype.ordered), impute=_mode(s),
        )
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnSpec(name, dtype_str, "boolean", nullable, impute=_mode(s))
    if pd.api.types.is_numeric_dtype(dtype):
        values = present.to_numpy(dtype="float64")
        if values.size == 0:
            return ColumnSpec(name, dtype_str, "number", nullable)
        integer = pd.api.types.is_integer_dtype(dtype)
        with np.errstate(invalid="ignore"):  # inf - inf inside the interpolation
            median = np.percentile(values, 50, method="lower" if integer else "linear")
        return ColumnSpec(
            name, dtype_str, "number", nullable,
            minimum=_plain(present.min()), maximum=_plain(present.max()),
            impute=int(median) if integer else float(median),
        )
    if pd.api.types.is_datetime64_any_dtype(dtype):
        impute = present.sort_values().iloc[(len(present) - 1) // 2] if len(present) else None
        return ColumnSpec(name, dtype_str, "datetime", nullable, impute=impute)
    if pd.api.types.is_string_dtype(dtype) or dtype == np.dtype(object):
        values = present.tolist()
        if all(isinstance(v, str) for v in values):
            uniques = present.unique()
            if len(uniques) <= max_categories:
                return ColumnSpec(
                    name, dtype_str, "categorical", nullable,
                    categories=tuple(sorted(str(u) for u in uniques)), impute=_mode(s),
                )
            return ColumnSpec(name, dtype_str, "text", nullable, impute=_mode(s))
    return ColumnSpec(name, dtype_str, "other", nullable)


@dataclass(frozen=True)
class Contract:
    """The input contract of a bundle: one :class:`ColumnSpec` per training column.

    Build one with :meth:`infer` (from training data) or :meth:`from_schema` (from a
    pandera ``DataFrameSchema`` or ``DataFrameModel``). Column order is training order.

    Examples
    --------
    >>> import pandas as pd, safemodel as sm
    >>> c = sm.Contract.infer(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    >>> [(s.name, s.kind) for s in c.columns]
    [('x', 'number'), ('c', 'categorical')]
    """

    columns: tuple[ColumnSpec, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidArgument(
                f"A contract needs unique column names; repeated: {dupes}.",
                argument="columns", expected="unique column names", found=dupes,
            )

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Column names in training order."""
        return tuple(c.name for c in self.columns)

    @cached_property
    def name_set(self) -> frozenset[str]:
        return frozenset(self.names)

    def __repr__(self) -> str:
        shown = ", ".join(f"{c.name}: {c.kind}" for c in self.columns[:6])
        more = f", ... (+{len(self.columns) - 6} more)" if len(self.columns) > 6 else ""
        return f"<Contract {len(self.columns)} column(s): {shown}{more}>"

    def _repr_html_(self) -> str:
        from safemodel.core._display import contract_html

        return contract_html(self)

    def __getitem__(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @classmethod
    def infer(cls, X: Any, *, max_categories: int = 100) -> Contract:
        """Infer the contract from training data.

        Parameters
        ----------
        X : DataFrame or records
            Training inputs. Column names must be strings.
        max_categories : int, default 100
            A string column with at most this many distinct values is categorical
            (its allowed set is recorded); above it, free text.

        Returns
        -------
        Contract

        Raises
        ------
        SafeModelError
            When a column name is not a string or names repeat.
        """
        frame = as_frame(X)
        if (isinstance(max_categories, bool) or not isinstance(max_categories, int | np.integer)
                or max_categories < 1):
            raise InvalidArgument.of("Contract.infer", "max_categories", "an integer >= 1",
                                     max_categories)
        bad = [c for c in frame.columns if not isinstance(c, str)]
        if bad:
            raise InvalidArgument(
                f"Contract column names must be strings; found {bad!r}. Rename the columns "
                "(e.g. X.columns = X.columns.astype(str)) before building the bundle.",
                argument="X", expected="string column names", found=bad,
            )
        return cls(tuple(_infer_column(n, frame[n], max_categories) for n in frame.columns))

    @classmethod
    def from_schema(cls, schema: Any, X: Any = None, *, max_categories: int = 100) -> Contract:
        """Build a contract from a pandera ``DataFrameSchema`` or ``DataFrameModel``.

        Dtypes, nullability and ``isin`` checks (the allowed categories) come from the
        schema; when training data ``X`` is given, the impute values and observed
        ranges come from it. Other built-in checks are kept and enforced; custom
        checks are enforced but refused at save time (they cannot be written as text).
        """
        if isinstance(schema, type) and hasattr(schema, "to_schema"):
            schema = schema.to_schema()
        if not isinstance(schema, _pandera().DataFrameSchema):
            raise InvalidArgument(
                "Expected a pandera DataFrameSchema or DataFrameModel; got "
                f"{type(schema).__name__}.",
                argument="schema", expected="a pandera DataFrameSchema or DataFrameModel",
                found=type(schema).__name__,
            )
        inferred = cls.infer(X, max_categories=max_categories) if X is not None else None
        specs = []
        for name, col in schema.columns.items():
            dtype = _dtype_string(col.dtype)
            base = (
                inferred[name]
                if inferred is not None and name in inferred.names
                else ColumnSpec(str(name), dtype, _kind_of_dtype(dtype))
            )
            categories = base.categories
            checks, custom = [], []
            for check in col.checks:
                if check.name == "isin":
                    categories = tuple(_plain(v) for v in check.statistics["allowed_values"])
                elif check.name in _SERIALISABLE_CHECKS:
                    checks.append({
                        "name": check.name,
                        "statistics": {k: _json_scalar(v) for k, v in check.statistics.items()},
                    })
                else:
                    custom.append(check)
            kind = base.kind
            if categories is not None and kind in ("text", "other"):
                kind = "categorical"
            specs.append(replace(
                base, name=str(name), dtype=dtype, kind=kind, nullable=bool(col.nullable),
                categories=categories, checks=tuple(checks), custom_checks=tuple(custom),
            ))
        return cls(tuple(specs))

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        """The pandera schema equivalent to this contract (built once, then cached).

        Columns are required, unordered and not coerced; categorical columns carry an
        ``isin`` check with the allowed set. Edit it and pass it back through
        :meth:`from_schema` to change the contract.
        """
        pandera = _pandera()
        columns = {}
        for spec in self.columns:
            checks = []
            if spec.categories is not None and spec.dtype != "category":
                checks.append(pandera.Check.isin(list(spec.categories)))
            checks.extend(_build_check(c) for c in spec.checks)
            checks.extend(spec.custom_checks)
            columns[spec.name] = pandera.Column(
                spec.pandas_dtype, nullable=spec.nullable, checks=checks or None,
                required=True, coerce=False,
            )
        schema: pa.DataFrameSchema = pandera.DataFrameSchema(columns, strict=False,
                                                             ordered=False)
        return schema

    def validate(self, X: Any) -> pd.DataFrame:
        """Validate ``X`` with pandera (every failure at once); return it unchanged.

        This is the strict reference check (no coercion, no policy). Scoring goes
        through :meth:`safemodel.ModelBundle.prepare`, which applies the policy.

        Raises
        ------
        ContractViolation
            Listing every failure (column, check, value, row).
        """
        frame = as_frame(X)
        schema = self.schema
        try:
            schema.validate(frame, lazy=True)
        except _pandera().errors.SchemaErrors as exc:
            raise ContractViolation(_failures_from_pandera(exc.failure_cases, frame)) from None
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready text form; exact round trip through :meth:`from_dict`."""
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        if not isinstance(data, Mapping) or not isinstance(data.get("columns"), list):
            raise BundleFormatError(
                "The contract must be an object with a 'columns' list.", member="contract.json"
            )
        try:
            return cls(tuple(ColumnSpec.from_dict(c) for c in data["columns"]))
        except AttributeError:
            raise BundleFormatError(
                "Each contract column must be an object.", member="contract.json"
            ) from None

    def to_json_schema(
        self, *, policy: Any = None, examples: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of one input record.

        Parameters
        ----------
        policy : Policy, optional
            When given, the schema accepts what the policy accepts: any string for a
            categorical column whose unseen values are handled, ``null`` for a column
            whose missing values are handled. Without it, the contract as recorded
            (enums and non-nullable columns enforced).
        examples : DataFrame, optional
            Rows to include as ``examples`` (the bundle passes its golden inputs).
        """
        properties: dict[str, Any] = {}
        for spec in self.columns:
            unseen, missing = ("error", "error")
            if policy is not None:
                unseen, missing = policy.for_column(spec.name)
            prop = _json_type(spec)
            if spec.categories is not None:
                if unseen == "error":
                    prop = {"enum": [_json_scalar(c) for c in spec.categories]}
                else:
                    prop["examples"] = [_json_scalar(c) for c in spec.categories[:20]]
            if spec.nullable or missing != "error":
                if "enum" in prop:
                    prop["enum"] = [*prop["enum"], None]
                else:
                    prop["type"] = [*_as_list(prop["type"]), "null"]
            properties[spec.name] = prop
        schema: dict[str, Any] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": list(self.names),
        }
        if policy is None or getattr(policy, "extra_columns", "drop") == "error":
            schema["additionalProperties"] = False
        if examples is not None and len(examples):
            schema["examples"] = [_json_record(r) for r in examples.to_dict("records")]
        return schema


def _as_list(t: Any) -> list[Any]:
    return list(t) if isinstance(t, list) else [t]


def _json_type(spec: ColumnSpec) -> dict[str, Any]:
    if spec.kind == "number":
        integer = pd.api.types.is_integer_dtype(spec.pandas_dtype)
        return {"type": "integer" if integer else "number"}
    if spec.kind == "boolean":
        return {"type": "boolean"}
    if spec.kind == "datetime":
        return {"type": "string", "format": "date-time"}
    if spec.kind == "categorical" and spec.categories:
        types = sorted({_json_type_name(c) for c in spec.categories})
        return {"type": types[0] if len(types) == 1 else types}
    if spec.kind in ("categorical", "text"):
        return {"type": "string"}
    return {"type": ["string", "number", "integer", "boolean"]}


def _json_type_name(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "string"


def _json_record(record: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if _is_missing_scalar(v):
            out[k] = None
        elif isinstance(v, pd.Timestamp):
            out[k] = v.isoformat()
        else:
            out[k] = _plain(v)
    return out


def _dtype_string(dtype: Any) -> str:
    """The pandas dtype string of a pandera DataType (or a dtype) ."""
    raw = getattr(dtype, "type", dtype)
    try:
        text = str(pd.api.types.pandas_dtype(raw))
    except TypeError:
        text = str(dtype)
    return "category" if text.startswith("category") else text


def _kind_of_dtype(dtype: str) -> Kind:
    pdtype = pd.api.types.pandas_dtype(dtype) if dtype != "category" else None
    if pdtype is None:
        return "categorical"
    if pd.api.types.is_bool_dtype(pdtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(pdtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(pdtype):
        return "datetime"
    if pd.api.types.is_string_dtype(pdtype):
        return "text"
    return "other"


def _failures_from_pandera(cases: pd.DataFrame, frame: pd.DataFrame) -> list[Failure]:
    """Translate pandera's failure_cases into safemodel failures (row positions)."""
    positions = {label: i for i, label in enumerate(frame.index)} if len(frame) else {}
    failures = []
    for case in cases.to_dict("records"):
        column = case.get("column")
        index = case.get("index")
        row = positions.get(index) if index is not None and not _is_missing_scalar(index) else None
        value = case.get("failure_case")
        failures.append(Failure(
            column=str(column) if column is not None else "*",
            check=_pandera_check_name(str(case.get("check"))),
            value=_json_record({"v": value})["v"] if not isinstance(value, list | dict) else value,
            row=row,
        ))
    return failures


def _pandera_check_name(check: str) -> str:
    if check.startswith("isin"):
        return "unseen_category"
    if check == "not_nullable":
        return "unexpected_missing"
    if check.startswith("dtype") or check.startswith("pandas_dtype"):
        return "type"
    if check.startswith("column_in_dataframe"):
        return "missing_column"
    return check.split("(")[0]


def _contract_for(X: Any, contract: Any, max_categories: int) -> Contract:
    """The contract a bundle uses: given, from a pandera schema, or inferred from X."""
    if contract is None:
        return Contract.infer(X, max_categories=max_categories)
    if isinstance(contract, Contract):
        return contract
    return Contract.from_schema(contract, X, max_categories=max_categories)
