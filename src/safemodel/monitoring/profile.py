"""Reference profile: the training distribution that drift is measured against.

A :class:`Profile` is computed once, when a bundle is built, and travels inside it
as readable JSON. It holds, per input column and per scoring output, how the training
rows fell into a fixed set of bins. Its size depends on the number of columns and
bins, never on the number of training rows (a few kilobytes for a typical table).

Column kinds:

- :class:`NumericProfile` -- numbers, booleans (0/1) and datetimes (int64 nanoseconds
  since the epoch, UTC). ``edges`` are the reference quantiles (``bins + 1`` of them,
  plus finer quantiles in the tails where the reference has the rows for them,
  deduplicated); bin ``i`` is ``[edges[i-1], edges[i])`` and the last bin is closed, so
  ``edges[0]`` and ``edges[-1]`` are the observed minimum and maximum. A column with at
  most ``bins`` distinct values gets one bin per value instead (edges half-way between
  them); a constant column has ``edges == [c, c]`` and one bin; an always-missing column
  has no edges. Infinite values (allowed when the training data had them) are counted
  as ``invalid``, as they are in production batches.
- :class:`CategoricalProfile` -- exact counts per allowed category, in the given order,
  plus values outside the allowed set (``unseen``) and missing values.
- :class:`TextProfile` -- any other column (free text, mixed objects): only how many
  values were present and how many missing.

JSON form (``Profile.to_dict``), version 2::

    {"version": 2,
     "rows": 344,
     "features": {
       "bill_length_mm": {"kind": "number", "edges": [32.1, 36.6, ..., 59.6],
                          "counts": [34, 35, ..., 36], "missing": 2, "invalid": 0},
       "island": {"kind": "categorical", "categories": ["Biscoe", "Dream", "Torgersen"],
                  "counts": [168, 124, 52], "unseen": 0, "missing": 0},
       "comment": {"kind": "text", "present": 300, "missing": 44}},
     "scores": {"proba[Adelie]": {"kind": "number", "edges": [...], "counts": [...],
                                  "missing": 0, "invalid": 0}}}

Numeric input columns also carry :class:`Moments` of their present finite values
(count, mean, variance, third and fourth central moments) for the mean and variance
tests. They are written apart, by :meth:`Profile.moments_to_dict` (a bundle's
``profile-moments.json``), so that ``profile.json`` keeps the version-2 form that
readers from before moments accept; :meth:`Profile.from_dict` takes them as
``moments=``, and a profile without them simply has ``moments=None``.

Every entry accounts for every row: ``sum(counts) + missing + invalid == rows``,
``sum(counts) + unseen + missing == rows``, ``present + missing == rows``, which
:meth:`Profile.from_dict` checks. Version 1 (safemodel 0.1) named the scores part
``"score"`` and the numeric kind ``"numeric"``, and had no ``invalid`` count (its
reference could not hold infinities); :meth:`Profile.from_dict` reads it as version 2.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from safemodel.errors import BundleFormatError, InvalidArgument
from safemodel.monitoring import binning as _binning

__all__ = [
    "CategoricalProfile",
    "FeatureProfile",
    "Moments",
    "NumericProfile",
    "Profile",
    "ProfileKind",
    "TextProfile",
]

Category = str | int | float | bool
ProfileKind = Literal["number", "categorical", "text"]
"""How a column is profiled; the contract's column kind names, where they overlap."""

# A tail bin is added only where it holds at least this many reference rows, so that
# small references keep plain quantile bins (finer tails there would be noise).
_TAIL_ROWS = 20
_TAILS = (0.01, 0.025, 0.05)


@dataclass(frozen=True)
class Moments:
    """Moments of a numeric column's present, finite values: what the mean and variance
    tests compare a batch with.

    Attributes
    ----------
    count : int
        Present, finite values.
    mean : float
    variance : float
        Second central moment (divided by ``count``).
    m3, m4 : float
        Third and fourth central moments (divided by ``count``): the skewness and
        kurtosis that decide how many rows the tests need and the variance test's
        standard error.
    """

    count: int
    mean: float
    variance: float
    m3: float
    m4: float

    @classmethod
    def of(cls, values: npt.ArrayLike) -> Moments | None:
        """The moments of ``values`` (all assumed finite); ``None`` for none."""
        x = np.asarray(values, dtype=np.float64)
        if x.size == 0:
            return None
        mean = float(x.mean())
        d = x - mean
        d2 = d * d
        return cls(int(x.size), mean, float(d2.mean()), float((d2 * d).mean()),
                   float((d2 * d2).mean()))  # fmt: skip

    @property
    def skewness(self) -> float:
        """``m3 / variance**1.5`` (0.0 for a constant column)."""
        return self.m3 / self.variance**1.5 if self.variance > 0 else 0.0

    @property
    def kurtosis(self) -> float:
        """``m4 / variance**2`` (3 for a normal distribution; 0.0 for a constant column)."""
        return self.m4 / self.variance**2 if self.variance > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"count": self.count, "mean": self.mean, "variance": self.variance,
                "m3": self.m3, "m4": self.m4}  # fmt: skip


@dataclass(frozen=True)
class NumericProfile:
    """Binned distribution of a numeric column (or of a numeric score).

    Attributes
    ----------
    edges : tuple of float
        Bin edges: strictly increasing, or ``(c, c)`` for a constant column, or empty
        for a column that was always missing.
    counts : tuple of int
        Rows per bin; ``len(edges) - 1`` of them (none when ``edges`` is empty).
    missing : int
        Rows with a missing value.
    invalid : int
        Rows holding an infinity (counted apart, as in production batches).
    moments : Moments or None
        Moments of the present finite values (``None`` in profiles written before
        safemodel stored them, and for an always-missing column).
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0
    invalid: int = 0
    moments: Moments | None = None

    kind: ClassVar[Literal["number"]] = "number"

    @property
    def rows(self) -> int:
        """Rows described (binned, missing and invalid)."""
        return sum(self.counts) + self.missing + self.invalid

    @property
    def missing_rate(self) -> float:
        """Share of rows that were missing (0.0 for an empty profile)."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def min(self) -> float | None:
        """Smallest value seen, ``None`` if every value was missing."""
        return self.edges[0] if self.edges else None

    @property
    def max(self) -> float | None:
        """Largest value seen, ``None`` if every value was missing."""
        return self.edges[-1] if self.edges else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "edges": list(self.edges),
            "counts": list(self.counts),
            "missing": self.missing,
            "invalid": self.invalid,
        }


@dataclass(frozen=True)
class CategoricalProfile:
    """Exact category counts of a categorical column (or of a label-valued score).

    Attributes
    ----------
    categories : tuple
        The allowed categories (str, int, float or bool), in their given order.
    counts : tuple of int
        Rows per category.
    unseen : int
        Rows whose value was outside ``categories``.
    missing : int
        Rows with a missing value.
    """

    categories: tuple[Category, ...]
    counts: tuple[int, ...]
    unseen: int = 0
    missing: int = 0

    kind: ClassVar[Literal["categorical"]] = "categorical"

    @property
    def rows(self) -> int:
        """Rows described."""
        return sum(self.counts) + self.unseen + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of rows that were missing (0.0 for an empty profile)."""
        return self.missing / self.rows if self.rows else 0.0

    @property
    def frequencies(self) -> dict[Category, int]:
        """``category -> count``."""
        return dict(zip(self.categories, self.counts, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "counts": list(self.counts),
            "unseen": self.unseen,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class TextProfile:
    """Presence of a column that is neither numeric nor categorical (free text).

    Only the missing rate is tracked: a text column drifts when it starts or stops
    being filled in.
    """

    present: int
    missing: int = 0

    kind: ClassVar[Literal["text"]] = "text"

    @property
    def rows(self) -> int:
        """Rows described."""
        return self.present + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of rows that were missing (0.0 for an empty profile)."""
        return self.missing / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"kind": self.kind, "present": self.present, "missing": self.missing}


FeatureProfile = NumericProfile | CategoricalProfile | TextProfile


@dataclass(frozen=True)
class Profile:
    """Reference distribution of every input column and every scoring output.

    Attributes
    ----------
    features : dict of str to FeatureProfile
        One entry per input column, in column order.
    scores : dict of str to FeatureProfile
        One entry per scoring output: ``"proba[<class>]"`` per class of a classifier,
        ``"prediction"`` for a regressor (the names are the bundle's choice).
    rows : int
        Training rows the profile was computed on.

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "a"]})
    >>> p = Profile.build(X, categorical={"c": ["a", "b"]}, bins=2)
    >>> p.features["c"].counts
    (3, 1)
    >>> Profile.from_dict(p.to_dict(), moments=p.moments_to_dict()) == p
    True
    """

    features: dict[str, FeatureProfile]
    scores: dict[str, FeatureProfile]
    rows: int

    VERSION: ClassVar[int] = 2

    @classmethod
    def build(
        cls,
        X: pd.DataFrame,
        *,
        categorical: Mapping[str, Sequence[object]],
        scores: Mapping[str, npt.ArrayLike] | None = None,
        bins: int = 10,
    ) -> Profile:
        """Profile a training frame and, optionally, the estimator's scores on it.

        Parameters
        ----------
        X : DataFrame
            The training inputs. Column names must be strings.
        categorical : mapping of str to sequence
            Categorical column -> its allowed categories (str, int, float or bool),
            typically the contract's. Every other column is numeric if its dtype is
            numeric, boolean or datetime (nullable ``Int64``/``Float64``/``boolean``
            included), and text otherwise.
        scores : mapping of str to array, optional
            Scoring output name -> one value per row of ``X`` (e.g.
            ``{"proba[Adelie]": proba[:, 0], ...}`` or ``{"prediction": y_hat}``).
            Numeric arrays are binned like numeric columns; label arrays get exact
            counts of the labels seen.
        bins : int, default 10
            Quantile bins per numeric column. Where the reference has the rows for
            them (20 rows per bin), the outer bins are split further at the 5%, 2.5%
            and 1% quantiles on each side, so that a change of spread shows.

        Returns
        -------
        Profile

        Raises
        ------
        InvalidArgument
            ``bins`` below 1, a ``categorical`` column missing from ``X``, a score
            that is not one value per row, a column name that is not a string, or a
            category that is not a JSON scalar.
        """
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise InvalidArgument.of("Profile.build", "bins", "an integer >= 1", bins)
        if any(not isinstance(c, str) for c in X.columns):
            bad = [c for c in X.columns if not isinstance(c, str)]
            raise InvalidArgument(
                f"Column names must be strings to be profiled; found {bad!r}. Rename the "
                "columns (e.g. X.columns = X.columns.astype(str)).",
                argument="X",
                expected="string column names",
                found=bad,
            )
        unknown = [c for c in categorical if c not in X.columns]
        if unknown:
            raise InvalidArgument(
                f"categorical names column(s) {unknown!r} that X does not have; "
                f"X has {list(X.columns)!r}.",
                argument="categorical",
                expected=f"names among {list(X.columns)!r}",
                found=unknown,
            )
        features: dict[str, FeatureProfile] = {}
        for name in X.columns:
            column = _binning.array_of(X[name])
            if name in categorical:
                cats = tuple(_category(c, name) for c in categorical[name])
                features[name] = _categorical_profile(column, cats, name)
            elif _is_numeric(column.dtype):
                features[name] = _numeric_profile(column, bins, moments=True)
            else:
                features[name] = TextProfile(*_text_counts(column))
        profiled: dict[str, FeatureProfile] = {}
        for name, values in (scores or {}).items():
            array = np.asarray(values)
            if array.ndim != 1 or len(array) != len(X):
                raise InvalidArgument(
                    f"Score {name!r} must be a 1-D array with one value per row of X "
                    f"({len(X)}); got shape {array.shape}. Give each output of a "
                    "multi-output estimator its own name (e.g. 'prediction[0]').",
                    argument="scores",
                    expected=f"shape ({len(X)},)",
                    found=array.shape,
                )
            if array.dtype.kind in "fiub":
                profiled[name] = _numeric_profile(array, bins)
            else:
                profiled[name] = _categorical_profile(array, _labels(array, name), name)
        return cls(features=features, scores=profiled, rows=len(X))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see the module docstring); :meth:`from_dict` inverts it."""
        return {
            "version": self.VERSION,
            "rows": self.rows,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
        }

    def moments_to_dict(self) -> dict[str, Any] | None:
        """JSON-ready moments of the numeric columns and scores (``None`` if none has them).

        Kept apart from :meth:`to_dict` (a bundle stores them as its own member,
        ``profile-moments.json``) because readers of ``profile.json`` from before the
        moments refuse unknown fields: a bundle with moments stays loadable by them.
        Form: ``{"version": 1, "features": {name: {"count", "mean", "variance", "m3",
        "m4"}}, "scores": {...}}``.
        """
        parts = {
            part: {k: v.moments.to_dict() for k, v in entries.items()
                   if isinstance(v, NumericProfile) and v.moments is not None}
            for part, entries in (("features", self.features), ("scores", self.scores))
        }  # fmt: skip
        if not any(parts.values()):
            return None
        return {"version": _MOMENTS_VERSION, **parts}

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, moments: Mapping[str, Any] | None = None
    ) -> Profile:
        """Rebuild a profile from :meth:`to_dict` output, checking every field.

        Parameters
        ----------
        data : mapping
            What :meth:`to_dict` returned (``profile.json``).
        moments : mapping, optional
            What :meth:`moments_to_dict` returned; without it (profiles written before
            safemodel stored moments) the numeric entries have ``moments=None`` and
            drift reports skip the mean and variance tests.

        Raises
        ------
        BundleFormatError
            A field is missing, has the wrong type, or the counts do not add up; the
            message names the field (e.g. ``features.island.counts``). Also raised for
            a profile ``version`` newer than this safemodel understands.
        """
        profile = cls._from_dict(data)
        return profile if moments is None else _with_moments(profile, moments)

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> Profile:
        _expect(isinstance(data, Mapping), "profile", "a JSON object", data)
        version = data.get("version")
        _expect(
            type(version) is int and 1 <= version <= cls.VERSION,
            "version",
            f"an integer from 1 to {cls.VERSION} (a newer profile needs a newer safemodel)",
            "nothing" if version is None else version,
        )
        assert isinstance(version, int)  # checked just above
        scores_key = "score" if version == 1 else "scores"
        _keys(data, "", {"version", "rows", "features", scores_key})
        rows = _count(data["rows"], "rows")
        parts: dict[str, dict[str, FeatureProfile]] = {}
        for part in ("features", scores_key):
            entries = data[part]
            _expect(isinstance(entries, Mapping), part, "a JSON object", entries)
            parts[part] = {}
            for name, entry in entries.items():
                field = f"{part}.{name}"
                _expect(isinstance(name, str), field, "a string key", name)
                profile = _feature_from_dict(entry, field, version)
                _expect(
                    profile.rows == rows,
                    field,
                    f"counts adding up to rows={rows}",
                    profile.rows,
                )
                parts[part][name] = profile
        return cls(features=parts["features"], scores=parts[scores_key], rows=rows)


# -- building -------------------------------------------------------------------------


def _is_numeric(dtype: Any) -> bool:
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return bool(
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_datetime64_any_dtype(dtype)
    )


def _numeric_profile(
    column: _binning.Array, bins: int, *, moments: bool = False
) -> NumericProfile:
    # Moments for input columns only: scores follow the inputs, and every moment test
    # of a score would widen the Holm family (and cost a pass over each batch).
    values, _ = _binning.numeric_values(column)
    # Infinities (the contract allows them when training had them) are binned as
    # "invalid", the bin production infinities land in, so the edges stay finite.
    finite = values[np.isfinite(values)]
    edges = tuple(float(e) for e in _edges(finite, bins))
    layout = _binning.NumericBins(edges)
    counts = layout.count(values)
    return NumericProfile(
        edges=edges,
        counts=tuple(int(c) for c in counts[1 : layout.bins + 1]),
        missing=int(counts[layout.bins + 2]),
        invalid=int(counts[layout.bins + 3]),
        moments=Moments.of(finite) if moments else None,
    )


def _edges(present: _binning.FloatArray, bins: int) -> _binning.FloatArray:
    if present.size == 0:
        return np.empty(0, dtype=np.float64)
    distinct = np.unique(present)
    if distinct.size == 1:
        return np.array([distinct[0], distinct[0]], dtype=np.float64)
    if distinct.size <= bins:
        # One bin per value: quantile edges would merge neighbouring values.
        inner = (distinct[:-1] + distinct[1:]) / 2
        edges = np.concatenate([distinct[:1], inner, distinct[-1:]])
    else:
        levels = np.linspace(0.0, 1.0, bins + 1)
        tails = [q for q in _TAILS if q * present.size >= _TAIL_ROWS and q < 1.0 / bins]
        levels = np.unique(np.concatenate([levels, tails, [1.0 - q for q in tails]]))
        edges = np.quantile(present, levels)
    edges = np.unique(edges)
    if len(edges) > 2 and math.isfinite(float(edges[-1] - edges[0])):
        # Inner edges are arbitrary cut points: round them to a millionth of the range
        # so the JSON reads 38.34, not 38.339999999999996. The outer edges are the
        # observed extremes and stay exact.
        lo, hi = float(edges[0]), float(edges[-1])
        decimals = 6 - math.floor(math.log10(hi - lo))
        cuts = sorted({round(float(e), decimals) for e in edges[1:-1]})
        edges = np.array([lo, *(e for e in cuts if lo < e < hi), hi])
    return np.asarray(edges, dtype=np.float64)


def _categorical_profile(
    column: _binning.Array, categories: tuple[Category, ...], name: str
) -> CategoricalProfile:
    if len(set(categories)) != len(categories):
        # 1, 1.0 and True are one value to pandas (and to the lookup), so one category.
        raise InvalidArgument(
            f"Categories of {name!r} repeat a value: {list(categories)!r} (1, 1.0 and True "
            "are one value). List each category once.",
            argument="categorical",
            expected="distinct categories",
            found=list(categories),
        )
    m = len(categories)
    lookup = _binning.CategoryLookup(categories)
    counts = np.bincount(_binning.categorical_index(column, lookup), minlength=lookup.size)
    return CategoricalProfile(
        categories=categories,
        counts=tuple(int(c) for c in counts[:m]),
        unseen=int(counts[m]),
        missing=int(counts[m + 1]),
    )


def _text_counts(column: _binning.Array) -> tuple[int, int]:
    missing = int(_binning.missing_mask(column).sum())
    return len(column) - missing, missing


def _labels(array: npt.NDArray[Any], name: str) -> tuple[Category, ...]:
    present = array[~_binning.missing_mask(array)]
    labels = [_category(v, name) for v in pd.unique(present)]
    try:
        return tuple(sorted(labels))
    except TypeError:
        return tuple(labels)


def _category(value: object, column: str) -> Category:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise InvalidArgument(
        f"Category {value!r} of {column!r} is a {type(value).__name__}; a reference "
        "profile stores categories as JSON scalars (str, int, finite float, bool).",
        argument="categorical",
        expected="JSON scalars",
        found=value,
    )


# -- reading --------------------------------------------------------------------------

_MOMENTS_VERSION = 1
_MOMENT_FIELDS = {"count", "mean", "variance", "m3", "m4"}


def _with_moments(profile: Profile, data: Mapping[str, Any]) -> Profile:
    field = "moments"
    _expect(isinstance(data, Mapping), field, "a JSON object", data)
    version = data.get("version")
    _expect(version == _MOMENTS_VERSION, f"{field}.version",
            f"{_MOMENTS_VERSION} (newer moments need a newer safemodel)", version)  # fmt: skip
    _keys(data, field + ".", {"version", "features", "scores"})
    parts: dict[str, dict[str, FeatureProfile]] = {}
    for part, entries in (("features", profile.features), ("scores", profile.scores)):
        given = data[part]
        _expect(isinstance(given, Mapping), f"{field}.{part}", "a JSON object", given)
        parts[part] = dict(entries)
        for name, raw in given.items():
            where = f"{field}.{part}.{name}"
            entry = entries.get(name)
            _expect(isinstance(entry, NumericProfile), where,
                    "the name of a numeric entry of the profile", name)  # fmt: skip
            assert isinstance(entry, NumericProfile)
            moments = _moments_from_dict(raw, where)
            _expect(moments.count == sum(entry.counts), f"{where}.count",
                    f"the entry's binned rows ({sum(entry.counts)})", moments.count)  # fmt: skip
            parts[part][name] = NumericProfile(entry.edges, entry.counts, entry.missing,
                                               entry.invalid, moments)  # fmt: skip
    return Profile(features=parts["features"], scores=parts["scores"], rows=profile.rows)


def _moments_from_dict(data: Any, field: str) -> Moments:
    _expect(isinstance(data, Mapping), field, "a JSON object", data)
    _keys(data, field + ".", _MOMENT_FIELDS)
    count = _count(data["count"], f"{field}.count")
    values = {}
    for key in ("mean", "variance", "m3", "m4"):
        value = data[key]
        signed = key in ("mean", "m3")
        ok = type(value) in (int, float) and math.isfinite(value) and (signed or value >= 0)
        _expect(ok, f"{field}.{key}", "a finite number" + ("" if signed else " >= 0"), value)
        values[key] = float(value)
    return Moments(count, values["mean"], values["variance"], values["m3"], values["m4"])


_FIELDS: dict[str, set[str]] = {
    "number": {"kind", "edges", "counts", "missing", "invalid"},
    "categorical": {"kind", "categories", "counts", "unseen", "missing"},
    "text": {"kind", "present", "missing"},
}


# Version 1 spelled the numeric kind "numeric" and had no "invalid" count.
_V1_FIELDS: dict[str, set[str]] = {
    "numeric": {"kind", "edges", "counts", "missing"},
    "categorical": _FIELDS["categorical"],
    "text": _FIELDS["text"],
}


def _feature_from_dict(data: Any, field: str, version: int) -> FeatureProfile:
    _expect(isinstance(data, Mapping), field, "a JSON object", data)
    fields = _V1_FIELDS if version == 1 else _FIELDS
    kind = data.get("kind")
    _expect(
        isinstance(kind, str) and kind in fields,
        f"{field}.kind",
        f"one of {sorted(fields)}",
        kind,
    )
    _keys(data, field + ".", fields[kind])
    missing = _count(data["missing"], f"{field}.missing")
    if kind == "text":
        return TextProfile(present=_count(data["present"], f"{field}.present"), missing=missing)
    counts = _counts(data["counts"], f"{field}.counts")
    if kind in ("number", "numeric"):
        edges = _floats(data["edges"], f"{field}.edges")
        increasing = all(a < b for a, b in pairwise(edges))
        _expect(
            increasing or (len(edges) == 2 and edges[0] == edges[1]),
            f"{field}.edges",
            "strictly increasing numbers (or [c, c] for a constant column)",
            edges,
        )
        _expect(
            len(counts) == max(len(edges) - 1, 0),
            f"{field}.counts",
            f"{max(len(edges) - 1, 0)} counts, one per bin between the edges",
            counts,
        )
        invalid = _count(data["invalid"], f"{field}.invalid") if "invalid" in data else 0
        return NumericProfile(edges=edges, counts=counts, missing=missing, invalid=invalid)
    raw = data["categories"]
    _expect(isinstance(raw, list), f"{field}.categories", "a list", raw)
    categories = tuple(raw)
    valid = all(
        isinstance(c, str | int) or (isinstance(c, float) and math.isfinite(c)) for c in categories
    )
    _expect(valid, f"{field}.categories", "str, int, finite float or bool values", raw)
    _expect(
        len(set(categories)) == len(categories),
        f"{field}.categories",
        "distinct values",
        raw,
    )
    _expect(
        len(counts) == len(categories),
        f"{field}.counts",
        f"{len(categories)} counts, one per category",
        counts,
    )
    return CategoricalProfile(
        categories=categories,
        counts=counts,
        unseen=_count(data["unseen"], f"{field}.unseen"),
        missing=missing,
    )


def _keys(data: Mapping[str, Any], prefix: str, expected: set[str]) -> None:
    for key in sorted(expected - set(data)):
        _expect(False, prefix + key, "present", "nothing")
    for key in sorted(set(data) - expected):
        _expect(False, prefix + str(key), f"absent (known fields: {sorted(expected)})", key)


def _count(value: Any, field: str) -> int:
    _expect(type(value) is int and value >= 0, field, "a non-negative integer", value)
    return int(value)


def _counts(value: Any, field: str) -> tuple[int, ...]:
    ok = isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)
    _expect(ok, field, "a list of non-negative integers", value)
    return tuple(value)


def _floats(value: Any, field: str) -> tuple[float, ...]:
    ok = isinstance(value, list) and all(
        type(v) in (int, float) and math.isfinite(v) for v in value
    )
    _expect(ok, field, "a list of finite numbers", value)
    return tuple(float(v) for v in value)


def _expect(condition: bool, field: str, expected: str, found: Any) -> None:
    if not condition:
        raise BundleFormatError(
            f"Reference profile field {field!r} must be {expected}; found "
            f"{reprlib.repr(found)}. The profile is damaged or was written by another "
            "tool; rebuild the bundle with ModelBundle.from_training to recompute it.",
            expected=expected,
            found=reprlib.repr(found),
        )
