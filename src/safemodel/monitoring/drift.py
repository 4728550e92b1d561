"""Drift of production data against a bundle's reference profile (:class:`Profile`).

Every batch is counted into the profile's own bins (:class:`DriftAccumulator`), and
the counts are compared with the reference counts (:class:`DriftReport`).
:func:`drift` is one batch counted once; :class:`~safemodel.monitoring.monitor.Monitor` keeps
counting across batches. Both go through the same code.

Per column (and per scoring output) the report gives:

- ``psi``: Population Stability Index, ``sum((q - p) * ln(q / p))`` over the
  profile's bins plus explicit bins for values below / above the reference range,
  unseen categories, missing and unparseable values. Half a row is added to every bin
  that is non-empty on either side (a Jeffreys correction), so an empty bin never
  gives an infinity; bins empty on both sides are left out.
- ``js``: Jensen-Shannon distance (base 2, in ``[0, 1]``) on the same bins, uncorrected.
- rates over the batch's rows: missing, unexpected missing (the reference had none),
  unseen category, out of range, invalid (not a finite number).
- ``status``: ``"alert"`` when ``psi >= alert``, ``"warn"`` when ``psi >= warn``,
  otherwise ``"ok"`` -- with a guard for small samples, below.

Small samples. Two samples of one distribution already differ: with ``d + 1``
occupied bins, ``n`` current rows and ``N`` reference rows, PSI is about
``chi2(d) * (1/n + 1/N)`` by chance alone (PSI is a symmetrised Kullback-Leibler
divergence, and ``n`` times it tends to a chi-square). So 50 rows on 10 bins give a
PSI near 0.2 with no drift at all, which is why fixed thresholds cry wolf on small
batches. A status is therefore raised only when PSI also reaches ``chance_psi``, the
99.9% quantile of that chance distribution at this sample size (Wilson-Hilferty
approximation of the chi-square quantile); and batches of fewer than ``min_rows``
rows (default 30, below which that approximation is unreliable) get
``"insufficient"`` instead of a verdict. A large drift (a new category in 30% of
rows, a shift of two standard deviations) still alerts on a few dozen rows.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from safemodel.errors import InvalidArgument
from safemodel.monitoring import binning as _binning
from safemodel.monitoring import html as _drift_html
from safemodel.monitoring.profile import CategoricalProfile, FeatureProfile, NumericProfile, Profile

__all__ = [
    "DriftAccumulator",
    "DriftReport",
    "FeatureDrift",
    "Scores",
    "Status",
    "drift",
    "js_distance",
    "psi",
]

Status = Literal["ok", "warn", "alert", "insufficient"]
Role = Literal["feature", "score"]
Kind = Literal["numeric", "categorical", "text"]
IntArray = npt.NDArray[np.int64]

Scores = Mapping[str, npt.ArrayLike] | npt.NDArray[Any]
"""Scoring outputs of a batch: ``name -> one value per row``, or one array whose columns
follow the profile's score order (e.g. the ``predict_proba`` result itself)."""

# Pseudo-count added to every bin that is non-empty on either side before PSI.
_SMOOTHING = 0.5
# Standard normal quantile of the chance level the small-sample guard works at (99.9%).
_Z = 3.090232306167813
_SEVERITY: dict[str, int] = {"alert": 3, "warn": 2, "insufficient": 1, "ok": 0}


def psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Population Stability Index between two count vectors over the same bins.

    Bins that are empty on both sides are dropped; every remaining bin gets half a
    row added on both sides (a Jeffreys correction), so the result is always finite.

    Parameters
    ----------
    reference, current : array-like of int
        Counts per bin (not proportions), same length, each with a positive total.

    Returns
    -------
    float
        ``sum((q - p) * ln(q / p))``, 0 for identical proportions.

    Examples
    --------
    >>> round(psi([25, 25, 25, 25], [10, 20, 30, 40]), 4)
    0.218
    """
    p, q = _pair(reference, current)
    keep = (p + q) > 0
    p = p[keep] + _SMOOTHING
    q = q[keep] + _SMOOTHING
    p /= p.sum()
    q /= q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2) between two count vectors over the same bins.

    The square root of the Jensen-Shannon divergence: 0 for identical distributions,
    1 for distributions with no bin in common. No smoothing is needed.

    Examples
    --------
    >>> js_distance([1, 0], [0, 1])
    1.0
    """
    p, q = _pair(reference, current)
    p /= p.sum()
    q /= q.sum()
    m = (p + q) / 2
    divergence = (_kl2(p, m) + _kl2(q, m)) / 2
    return float(min(math.sqrt(max(divergence, 0.0)), 1.0))


def _pair(
    reference: npt.ArrayLike, current: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    p = np.array(reference, dtype=np.float64)
    q = np.array(current, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"Count vectors must be 1-D of one length; got {p.shape}, {q.shape}.")
    if p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise ValueError("Counts must be non-negative with a positive total on each side.")
    return p, q


def _kl2(a: npt.NDArray[np.float64], m: npt.NDArray[np.float64]) -> float:
    keep = a > 0
    return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))


def _chance_psi(occupied: int, rows: int, reference_rows: int) -> float:
    """99.9% quantile of PSI between two samples of one distribution (Wilson-Hilferty)."""
    df = occupied - 1
    if df <= 0:
        return 0.0
    h = 2.0 / (9.0 * df)
    chi2 = df * (1.0 - h + _Z * math.sqrt(h)) ** 3
    return chi2 * (1.0 / rows + 1.0 / reference_rows)


# -- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one input column or one scoring output.

    Attributes
    ----------
    name : str
    role : {"feature", "score"}
    kind : {"numeric", "categorical", "text"}
    status : {"ok", "warn", "alert", "insufficient"}
    rows : int
        Rows of current data counted for it.
    reference_rows : int
    psi : float or None
        Population Stability Index (``None`` without current rows).
    js : float or None
        Jensen-Shannon distance, base 2.
    chance_psi : float or None
        The PSI that chance alone exceeds 0.1% of the time at this sample size; a
        status needs PSI at or above both it and the threshold.
    missing_rate, unexpected_missing_rate : float or None
        Share of rows missing; the same, but only where the reference had no missing
        value (0.0 otherwise).
    unseen_rate : float or None
        Share of rows with a category outside the reference set (categorical only).
    out_of_range_rate, invalid_rate : float or None
        Share of rows outside the reference range / not a finite number (numeric only).
    bins : tuple of str
        Bin labels, in layout order.
    reference_counts, current_counts : tuple of int
        Rows per bin on each side: the distributions that were compared.
    """

    name: str
    role: Role
    kind: Kind
    status: Status
    rows: int
    reference_rows: int
    psi: float | None
    js: float | None
    chance_psi: float | None
    missing_rate: float | None
    unexpected_missing_rate: float | None
    unseen_rate: float | None
    out_of_range_rate: float | None
    invalid_rate: float | None
    bins: tuple[str, ...]
    reference_counts: tuple[int, ...]
    current_counts: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (plain Python numbers, lists)."""
        return {
            "name": self.name,
            "role": self.role,
            "kind": self.kind,
            "status": self.status,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            **{stat: getattr(self, stat) for stat in _STATS},
            "bins": list(self.bins),
            "reference_counts": list(self.reference_counts),
            "current_counts": list(self.current_counts),
        }


_STATS = (
    "psi",
    "js",
    "chance_psi",
    "missing_rate",
    "unexpected_missing_rate",
    "unseen_rate",
    "out_of_range_rate",
    "invalid_rate",
)


@dataclass(frozen=True, repr=False)
class DriftReport:
    """Drift of a batch (or of everything a monitor observed) against the profile.

    Attributes
    ----------
    features : dict of str to FeatureDrift
        One per input column of the profile, in profile order.
    scores : dict of str to FeatureDrift
        One per scoring output of the profile.
    rows : int
        Rows of current data counted.
    reference_rows : int
        Rows the profile was built on.
    warn, alert : float
        PSI thresholds used.
    min_rows : int
        Fewest rows that get a verdict.
    """

    features: dict[str, FeatureDrift]
    scores: dict[str, FeatureDrift]
    rows: int
    reference_rows: int
    warn: float
    alert: float
    min_rows: int

    @property
    def results(self) -> list[FeatureDrift]:
        """Every result: features first, then scores."""
        return [*self.features.values(), *self.scores.values()]

    @property
    def alerts(self) -> list[str]:
        """Names of the columns and scores with status ``"alert"``."""
        return [r.name for r in self.results if r.status == "alert"]

    @property
    def warnings(self) -> list[str]:
        """Names of the columns and scores with status ``"warn"``."""
        return [r.name for r in self.results if r.status == "warn"]

    @property
    def ok(self) -> bool:
        """True when nothing alerts (warnings allowed)."""
        return not self.alerts

    def by_severity(self) -> list[FeatureDrift]:
        """Results sorted worst first: alert, warn, insufficient, ok; then by PSI."""
        return sorted(
            self.results,
            key=lambda r: (-_SEVERITY[r.status], -(r.psi if r.psi is not None else -1.0)),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per column and per score, indexed by name, with the statistics."""
        columns = ["role", "kind", "status", "rows", *_STATS]
        frame = pd.DataFrame(
            [[getattr(r, c) for c in columns] for r in self.results],
            columns=columns,
            index=pd.Index([r.name for r in self.results], name="name", dtype=object),
        )
        for stat in _STATS:
            frame[stat] = frame[stat].astype("float64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, suitable for ``json.dumps`` and an HTTP response."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "thresholds": {"warn": self.warn, "alert": self.alert, "min_rows": self.min_rows},
            "alerts": self.alerts,
            "warnings": self.warnings,
            "features": {k: v.to_dict() for k, v in self.features.items()},
            "scores": {k: v.to_dict() for k, v in self.scores.items()},
        }

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as one self-contained HTML file (inline SVG, no script).

        Per column and score, worst first: the verdict, the statistics and a bar chart
        of the reference vs the current distribution. Readable offline.

        Returns
        -------
        Path
            The file written (overwritten if it existed).
        """
        target = Path(path)
        target.write_text(_drift_html.render(self), encoding="utf-8")
        return target

    def _repr_html_(self) -> str:
        return _drift_html.fragment(self)

    def __repr__(self) -> str:
        return (
            f"<DriftReport rows={self.rows} columns={len(self.features)} "
            f"scores={len(self.scores)} alerts={self.alerts!r} warnings={self.warnings!r}>"
        )


# -- counting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """Where one column's bins live in the accumulator's flat count vector."""

    name: str
    role: Role
    kind: Kind
    labels: tuple[str, ...]
    reference: IntArray
    start: int
    size: int
    count: Callable[[_binning.Array], IntArray]
    missing: int
    unseen: int | None = None
    invalid: int | None = None
    out_of_range: tuple[int, ...] = ()

    @property
    def stop(self) -> int:
        return self.start + self.size


def _slot(name: str, role: Role, profile: FeatureProfile, start: int) -> _Slot:
    if isinstance(profile, NumericProfile):
        layout = _binning.NumericBins(profile.edges)
        k = layout.bins

        def numeric(column: _binning.Array) -> IntArray:
            return layout.count(*_binning.numeric_values(column))

        return _Slot(
            name, role, "numeric",
            labels=_numeric_labels(profile.edges),
            reference=np.array([0, *profile.counts, 0, profile.missing, 0], dtype=np.int64),
            start=start, size=layout.size, count=numeric,
            missing=k + 2, invalid=k + 3, out_of_range=(0, k + 1),
        )  # fmt: skip
    if isinstance(profile, CategoricalProfile):
        lookup = _binning.CategoryLookup(profile.categories)
        m = len(profile.categories)

        def categorical(column: _binning.Array) -> IntArray:
            return np.bincount(_binning.categorical_index(column, lookup), minlength=lookup.size)

        return _Slot(
            name, role, "categorical",
            labels=(*(_category_label(c) for c in profile.categories), "(unseen)", "(missing)"),
            reference=np.array([*profile.counts, profile.unseen, profile.missing], np.int64),
            start=start, size=lookup.size, count=categorical, missing=m + 1, unseen=m,
        )  # fmt: skip
    return _Slot(
        name, role, "text",
        labels=("(present)", "(missing)"),
        reference=np.array([profile.present, profile.missing], dtype=np.int64),
        start=start, size=2, count=_text_count, missing=1,
    )  # fmt: skip


def _text_count(column: _binning.Array) -> IntArray:
    return np.bincount(_binning.text_index(column), minlength=2)


def _numeric_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    if not edges:
        # The reference was always missing: any value is out of its (empty) range.
        return ("(value, no reference range)", "(above range)", "(missing)", "(invalid)")
    shown = [f"{e:.6g}" for e in edges]
    inner = [f"[{a}, {b})" for a, b in pairwise(shown)]
    inner[-1] = inner[-1][:-1] + "]"
    return (f"< {shown[0]}", *inner, f"> {shown[-1]}", "(missing)", "(invalid)")


def _category_label(category: object) -> str:
    return category if isinstance(category, str) else repr(category)


class DriftAccumulator:
    """Counts batches into a profile's bins, keeping no rows.

    :meth:`add` is vectorised (``np.searchsorted``, hash lookups, one
    ``np.bincount``) and holds the lock only to add the batch's integer counts, so
    several threads may call it at once. Memory is one integer per bin, whatever the
    number of rows. :meth:`report` on the accumulated counts equals :func:`drift` on
    the concatenation of every batch added.

    Parameters
    ----------
    profile : Profile
        The reference the batches are counted against.

    Examples
    --------
    >>> import pandas as pd
    >>> from safemodel.monitoring.profile import Profile
    >>> ref = pd.DataFrame({"x": [float(i) for i in range(100)]})
    >>> acc = DriftAccumulator(Profile.build(ref, categorical={}))
    >>> acc.add(ref.iloc[:50])
    >>> acc.add(ref.iloc[50:])
    >>> acc.rows, acc.report().ok
    (100, True)
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        slots: list[_Slot] = []
        start = 0
        for role, part in (("feature", profile.features), ("score", profile.score)):
            for name, entry in part.items():
                slots.append(_slot(name, role, entry, start))  # type: ignore[arg-type]
                start = slots[-1].stop
        self._scores = {s.name: s for s in slots if s.role == "score"}
        self._slots = slots
        self._size = start
        self._lock = threading.Lock()
        self._counts = np.zeros(self._size, dtype=np.int64)
        self._rows = 0

    @property
    def rows(self) -> int:
        """Rows added since creation or the last :meth:`reset`."""
        return self._rows

    def add(self, X: pd.DataFrame, scores: Scores | None = None) -> None:
        """Count a batch.

        Parameters
        ----------
        X : DataFrame
            The batch, as received (before any imputation, so that unseen and missing
            values show). A profile column absent from ``X`` counts as missing; extra
            columns are ignored. Values that do not parse as numbers in a numeric
            column count as invalid.
        scores : mapping of str to array, or array, optional
            The batch's scoring outputs, one value per row: ``{name: values}`` with
            the profile's score names, or one array with one column per profile score,
            in profile order (a ``predict_proba`` result). Without it, only the
            columns are counted.

        Raises
        ------
        TypeError
            ``X`` is not a DataFrame.
        ValueError
            ``scores`` names an unknown score or has the wrong shape.
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame; got {type(X).__name__}.")
        n = len(X)
        score_columns = self._score_columns(scores, n)
        pieces: list[IntArray] = []
        for slot in self._slots:
            if slot.role == "feature":
                column = _binning.column_array(X, slot.name)
            else:
                column = score_columns.get(slot.name)
            if column is not None:
                pieces.append(slot.count(column))
                continue
            piece = np.zeros(slot.size, dtype=np.int64)
            if slot.role == "feature":
                piece[slot.missing] = n  # an absent column is missing on every row
            pieces.append(piece)
        delta = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        with self._lock:
            self._counts += delta
            self._rows += n

    def _score_columns(self, scores: Scores | None, n: int) -> dict[str, npt.NDArray[Any]]:
        if scores is None:
            return {}
        names = list(self._scores)
        if isinstance(scores, Mapping):
            unknown = [k for k in scores if k not in self._scores]
            if unknown:
                raise InvalidArgument(
                    f"Unknown score name(s) {unknown!r}; the profile has scores {names!r}. "
                    "Name the scores as the profile does, or pass the predict_proba / "
                    "predict array itself.",
                    argument="scores", expected=f"names among {names!r}", found=unknown)
            columns = {k: np.asarray(v) for k, v in scores.items()}
        else:
            array = np.asarray(scores)
            if array.ndim == 1 and len(names) == 1:
                columns = {names[0]: array}
            elif array.ndim == 2 and array.shape[1] == len(names):
                columns = {name: array[:, i] for i, name in enumerate(names)}
            else:
                raise InvalidArgument(
                    f"A score array must have one column per profile score {names!r} "
                    f"(or be 1-D for a single score); got shape {array.shape}. Pass what "
                    "the bundle's predict_proba (or predict) returns, or a dict by name.",
                    argument="scores", expected=f"{len(names)} column(s)", found=array.shape)
        for name, values in columns.items():
            if values.shape != (n,):
                raise InvalidArgument(
                    f"Score {name!r} must hold one value per row of X ({n}); got shape "
                    f"{values.shape}. Give rows that could not be scored NaN (they count "
                    "as missing scores) rather than leaving them out.",
                    argument="scores", expected=f"shape ({n},)", found=values.shape)
        return columns

    def report(self, *, warn: float = 0.1, alert: float = 0.25, min_rows: int = 30) -> DriftReport:
        """Compare everything counted so far with the reference.

        Parameters
        ----------
        warn, alert : float, default 0.1 and 0.25
            PSI thresholds, ``0 < warn <= alert``.
        min_rows : int, default 30
            Fewest rows that get a verdict; fewer get ``"insufficient"``.

        Returns
        -------
        DriftReport
        """
        _check_thresholds(warn, alert, min_rows)
        with self._lock:
            counts = self._counts.copy()
            rows = self._rows
        results = [
            _assess(slot, counts[slot.start : slot.stop], warn, alert, min_rows)
            for slot in self._slots
        ]
        return DriftReport(
            features={r.name: r for r in results if r.role == "feature"},
            scores={r.name: r for r in results if r.role == "score"},
            rows=rows,
            reference_rows=self.profile.rows,
            warn=float(warn),
            alert=float(alert),
            min_rows=min_rows,
        )

    def reset(self) -> None:
        """Forget every batch counted."""
        with self._lock:
            self._counts[:] = 0
            self._rows = 0


def _assess(
    slot: _Slot, current: IntArray, warn: float, alert: float, min_rows: int
) -> FeatureDrift:
    n = int(current.sum())
    reference_rows = int(slot.reference.sum())
    stats: dict[str, float | None] = dict.fromkeys(_STATS)
    status: Status = "insufficient"
    if n and reference_rows:
        value = psi(slot.reference, current)
        floor = _chance_psi(int(np.count_nonzero(slot.reference)), n, reference_rows)
        missing = float(current[slot.missing] / n)
        stats.update(
            psi=value,
            js=js_distance(slot.reference, current),
            chance_psi=floor,
            missing_rate=missing,
            unexpected_missing_rate=missing if slot.reference[slot.missing] == 0 else 0.0,
        )
        if slot.unseen is not None:
            stats["unseen_rate"] = float(current[slot.unseen] / n)
        if slot.invalid is not None:
            stats["invalid_rate"] = float(current[slot.invalid] / n)
            stats["out_of_range_rate"] = sum(int(current[i]) for i in slot.out_of_range) / n
        if n >= min_rows:
            if value >= max(alert, floor):
                status = "alert"
            elif value >= max(warn, floor):
                status = "warn"
            else:
                status = "ok"
    return FeatureDrift(
        name=slot.name,
        role=slot.role,
        kind=slot.kind,
        status=status,
        rows=n,
        reference_rows=reference_rows,
        **stats,
        bins=slot.labels,
        reference_counts=tuple(int(c) for c in slot.reference),
        current_counts=tuple(int(c) for c in current),
    )


def _check_thresholds(warn: float, alert: float, min_rows: int) -> None:
    numbers = all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
        for t in (warn, alert)
    )
    if not numbers or not 0 < warn <= alert:
        raise ValueError(
            f"PSI thresholds must satisfy 0 < warn <= alert; got warn={warn!r}, "
            f"alert={alert!r} (defaults: warn=0.1, alert=0.25)."
        )
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValueError(f"min_rows must be an integer of at least 1; got {min_rows!r}.")


def drift(
    profile: Profile,
    X: pd.DataFrame,
    *,
    scores: Scores | None = None,
    warn: float = 0.1,
    alert: float = 0.25,
    min_rows: int = 30,
) -> DriftReport:
    """Measure how far a batch has drifted from a reference profile.

    Parameters
    ----------
    profile : Profile
        The reference, usually ``bundle.profile``.
    X : DataFrame
        The batch, as received (see :meth:`DriftAccumulator.add`).
    scores : mapping of str to array, or array, optional
        The estimator's outputs on ``X`` under the profile's score names (or one
        array, columns in profile order); without it the scores get ``"insufficient"``.
    warn, alert : float, default 0.1 and 0.25
        PSI thresholds, ``0 < warn <= alert``.
    min_rows : int, default 30
        Fewest rows that get a verdict; fewer get ``"insufficient"``. A verdict also
        needs PSI above what chance gives at this sample size (see the module notes).

    Returns
    -------
    DriftReport

    Raises
    ------
    TypeError
        ``X`` is not a DataFrame.
    ValueError
        Bad thresholds, or ``scores`` with unknown names or the wrong shape.

    Examples
    --------
    >>> import pandas as pd
    >>> from safemodel.monitoring.profile import Profile
    >>> ref = pd.DataFrame({"c": ["a"] * 50 + ["b"] * 50})
    >>> profile = Profile.build(ref, categorical={"c": ["a", "b"]})
    >>> drift(profile, ref).ok
    True
    >>> drift(profile, pd.DataFrame({"c": ["a"] * 40 + ["new"] * 60})).alerts
    ['c']
    """
    _check_thresholds(warn, alert, min_rows)
    accumulator = DriftAccumulator(profile)
    accumulator.add(X, scores=scores)
    return accumulator.report(warn=warn, alert=alert, min_rows=min_rows)
