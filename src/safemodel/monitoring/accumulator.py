"""Counting batches into a profile's bins: :class:`DriftAccumulator`.

Every batch is counted into the profile's own bins; the counts are compared with the
reference counts when a report is asked for. Memory is one integer per bin, whatever
the traffic, and adding is vectorised and thread-safe.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from safemodel._frame import as_frame
from safemodel.errors import InvalidArgument
from safemodel.monitoring import binning as _binning
from safemodel.monitoring.performance import PerformanceCounter
from safemodel.monitoring.profile import (
    CategoricalProfile,
    FeatureProfile,
    Moments,
    NumericProfile,
    Profile,
    ProfileKind,
)
from safemodel.monitoring.report import (
    _SEVERITY,
    ALERT,
    ALPHA,
    MIN_ROWS,
    STATISTICS,
    WARN,
    DriftReport,
    DriftTest,
    FeatureDrift,
    Role,
    Status,
    Thresholds,
)
from safemodel.monitoring.statistics import (
    chance_psi,
    chi_square_test,
    holm,
    js_distance,
    ks_test,
    mean_test,
    psi,
    rate_test,
    variance_test,
)

__all__ = ["DriftAccumulator", "Scores", "check_thresholds"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Fewest batch values the moment tests need. The mean's z-test (reference variance) is
# right to first order whatever the skewness; its next error term grows with
# skewness**2 / n, so skewed columns need more rows.
_MEAN_ROWS = 20
_MEAN_ROWS_PER_SKEW2 = 10.0
# The variance test's F distribution (Shoemaker's, from the kurtosis) holds down to the
# far tail, where a Holm-corrected report decides, only for tails no heavier than the
# normal's. Measured by benchmarks/variance_calibration.py (no-shift batches of 50 to
# 1,000 rows, 5,000-row references), rejections at the level 0.002 were, as multiples
# of it: t(10) (kurtosis 4) 1.2 to 1.6, exponential 1.3 to 2.3, t(5) 3.8 to 4.5,
# log-normal (kurtosis 27) 5.6 to 6.9; t(6) still 1.6 at 5,000 rows, so no row floor
# helps. The test therefore runs only where the reference kurtosis is within two normal
# standard errors of 3 (or below it), and only against 2,000 reference values or more:
# on fewer, that check lets heavy tails through (a t(8) column passed it on 23% of
# 300-row references and then rejected at 3 to 4 times the level, the reference's
# variance being low exactly when its kurtosis is). Elsewhere, and on (near) two-point
# columns, whose ln(s^2) is not near normal at any size, the chi-square decides.
_VARIANCE_ROWS = 50
_VARIANCE_REFERENCE_ROWS = 2_000
_TWO_POINT_MARGIN = 0.25
# Largest |reference mean| / reference sd for which the moment sums are taken on the
# raw values (one pass fewer): the variance then loses about 1e4 ulps at most.
_RAW_SUMS_MAX_OFFSET = 100.0

Scores = Mapping[str, npt.ArrayLike] | npt.NDArray[Any]
"""Scoring outputs of a batch: ``name -> one value per row``, or one array whose columns
follow the profile's score order (e.g. the ``predict_proba`` result itself)."""


@dataclass(frozen=True)
class _Slot:
    """Where one column's bins live in the accumulator's flat count vector."""

    name: str
    role: Role
    kind: ProfileKind
    labels: tuple[str, ...]
    reference: IntArray
    start: int
    size: int
    count: Callable[[_binning.Array], IntArray]
    missing: int
    # Numbers with reference moments: counts and the batch's moment sums in one pass.
    measure: Callable[[_binning.Array], tuple[IntArray, FloatArray]] | None = None
    moments: Moments | None = None
    sums_start: int = 0
    unseen: int | None = None
    invalid: int | None = None
    out_of_range: tuple[int, ...] = ()
    # Positions of the bins of present values, in the order the distribution tests
    # read them (numbers: below, bins, above; categories: most frequent first).
    values: tuple[int, ...] = ()
    # Whether the value bins are ordered (numbers), so the KS test applies.
    ordered: bool = False

    @property
    def stop(self) -> int:
        return self.start + self.size


def _slot(
    name: str, role: Role, profile: FeatureProfile, start: int, sums_start: int = 0
) -> _Slot:
    if isinstance(profile, NumericProfile):
        layout = _binning.NumericBins(profile.edges)
        k = layout.bins
        moments = profile.moments
        centre = moments.mean if moments is not None else 0.0
        # Sums of powers of the raw values, moved to the centre afterwards, lose about
        # (centre / sd)**2 ulps of the variance: nothing for most columns, too much for
        # datetimes (nanoseconds since 1970) and the like, whose values are moved first.
        shift = moments is not None and abs(centre) > _RAW_SUMS_MAX_OFFSET * math.sqrt(
            max(moments.variance, 0.0)
        )

        def numeric(column: _binning.Array) -> IntArray:
            return layout.count(*_binning.numeric_values(column, reuse=True))

        def measure(column: _binning.Array) -> tuple[IntArray, FloatArray]:
            values, invalid = _binning.numeric_values(column, reuse=True)
            # Values that are not finite become the centre: nothing to the sums.
            counts, filled, present = layout.count_finite(values, invalid, fill=centre)
            return counts, _moment_sums(filled, present, centre, shift=shift)

        return _Slot(
            name, role, "number",
            labels=_numeric_labels(profile.edges),
            reference=np.array(
                [0, *profile.counts, 0, profile.missing, profile.invalid], dtype=np.int64
            ),
            start=start, size=layout.size, count=numeric,
            missing=k + 2, invalid=k + 3, out_of_range=(0, k + 1),
            values=tuple(range(k + 2)), ordered=True,
            measure=measure if moments is not None else None, moments=moments,
            sums_start=sums_start,
        )  # fmt: skip
    if isinstance(profile, CategoricalProfile):
        lookup = _binning.CategoryLookup(profile.categories)
        m = len(profile.categories)

        def categorical(column: _binning.Array) -> IntArray:
            return _binning.categorical_counts(column, lookup)

        return _Slot(
            name, role, "categorical",
            labels=(*(_category_label(c) for c in profile.categories), "(unseen)", "(missing)"),
            reference=np.array([*profile.counts, profile.unseen, profile.missing], np.int64),
            start=start, size=lookup.size, count=categorical, missing=m + 1, unseen=m,
            values=tuple(sorted(range(m), key=lambda i: -profile.counts[i])),
        )  # fmt: skip
    return _Slot(
        name, role, "text",
        labels=("(present)", "(missing)"),
        reference=np.array([profile.present, profile.missing], dtype=np.int64),
        start=start, size=2, count=_text_count, missing=1,
    )  # fmt: skip


def _moment_sums(values: FloatArray, count: int, centre: float, *, shift: bool) -> FloatArray:
    """``count`` and the sums of the first two powers of ``values`` about ``centre``
    (the reference mean), where ``values`` holds the ``count`` finite values of the
    batch and the centre in place of every other one."""
    # einsum, not np.dot: a 1-D dot goes to a multi-threaded BLAS, measured 500x slower
    # (31 ms on 100,000 values) on a busy machine.
    if shift:
        d = np.subtract(values, centre, out=_binning.scratch("shifted", values.size, np.float64))
        return np.array([float(count), float(d.sum()), float(np.einsum("i,i->", d, d))])
    # Raw sums, then moved: each value equal to the centre adds c and c**2, taken off.
    m = float(values.size)
    s1, s2 = float(values.sum()), float(np.einsum("i,i->", values, values))
    s1 -= m * centre
    return np.array([float(count), s1, s2 - 2.0 * centre * s1 - m * centre * centre])


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
    number of rows, plus a few scratch arrays per thread that adds batches of 4,096
    to 262,144 rows, reused from batch to batch (see
    :func:`~safemodel.monitoring.binning.scratch`). :meth:`report` on the accumulated
    counts equals :func:`drift` on the concatenation of every batch added.

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
        start = sums = 0
        for role, part in (("feature", profile.features), ("score", profile.scores)):
            for name, entry in part.items():
                slots.append(_slot(name, role, entry, start, sums))  # type: ignore[arg-type]
                start = slots[-1].stop
                sums += 3 if slots[-1].measure is not None else 0
        self._scores = {s.name: s for s in slots if s.role == "score"}
        self._slots = slots
        self._size = start
        self._lock = threading.Lock()
        self._counts = np.zeros(self._size, dtype=np.int64)
        # Per numeric slot with reference moments: values, sum and sum of squares
        # of their differences from the reference mean.
        self._sums = np.zeros(sums, dtype=np.float64)
        self._rows = 0
        self._performance = PerformanceCounter(list(self._scores))

    @property
    def rows(self) -> int:
        """Rows added since creation or the last :meth:`reset`."""
        return self._rows

    def add(
        self, X: pd.DataFrame | Any, scores: Scores | None = None, y: npt.ArrayLike | None = None
    ) -> None:
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
        y : array-like, optional
            The true labels of the rows, when known (missing ones as None or NaN), for
            the realised accuracy of a classifier (see
            :mod:`~safemodel.monitoring.performance`). Needs ``scores``.

        Raises
        ------
        ContractViolation
            ``X`` is not a DataFrame or another accepted input form.
        InvalidArgument
            ``scores`` names an unknown score or has the wrong shape; ``y`` without
            class probabilities or of the wrong length.
        """
        X = as_frame(X)
        n = len(X)
        score_columns = self._score_columns(scores, n)
        pieces: list[IntArray] = []
        sums = np.zeros_like(self._sums)
        for slot in self._slots:
            if slot.role == "feature":
                column = _binning.column_array(X, slot.name)
            else:
                column = score_columns.get(slot.name)
            if column is not None and slot.measure is not None:
                counts, sums[slot.sums_start : slot.sums_start + 3] = slot.measure(column)
                pieces.append(counts)
                continue
            if column is not None:
                pieces.append(slot.count(column))
                continue
            piece = np.zeros(slot.size, dtype=np.int64)
            if slot.role == "feature":
                piece[slot.missing] = n  # an absent column is missing on every row
            pieces.append(piece)
        delta = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        performance = self._performance.delta(score_columns, y, n)
        with self._lock:
            self._counts += delta
            self._sums += sums
            self._rows += n
            self._performance.add(performance)

    def _score_columns(self, scores: Scores | None, n: int) -> dict[str, npt.NDArray[Any]]:
        if scores is None:
            return {}
        names = list(self._scores)
        if isinstance(scores, Mapping):
            unknown = [k for k in scores if k not in self._scores]
            if unknown:
                raise InvalidArgument(
                    f"Unknown score name(s) {unknown!r}; the profile has scores {names!r}. "
                    "Name the scores as the profile does, or pass the predict_proba / predict "
                    "array itself.",
                    argument="scores",
                    expected=f"names among {names!r}",
                    found=unknown,
                )
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
                    argument="scores",
                    expected=f"shape (rows, {len(names)})",
                    found=array.shape,
                )
        for name, values in columns.items():
            if values.shape != (n,):
                raise InvalidArgument(
                    f"Score {name!r} must hold one value per row of X ({n}); got shape "
                    f"{values.shape}. Give rows that could not be scored NaN (they count "
                    "as missing scores) rather than leaving them out.",
                    argument="scores",
                    expected=f"{n} values per score",
                    found=values.shape,
                )
        return columns

    def report(
        self,
        *,
        warn: float = WARN,
        alert: float = ALERT,
        min_rows: int = MIN_ROWS,
        alpha: float = ALPHA,
    ) -> DriftReport:
        """Compare everything counted so far with the reference.

        Parameters
        ----------
        warn, alert : float, default 0.01 and 0.02
            Effect-size floors in PSI, ``0 < warn <= alert``: a significant change
            of distribution is an alert from ``alert`` up, a warning from ``warn``.
        min_rows : int, default 10
            Fewest rows that get a verdict; fewer get ``"insufficient"``.
        alpha : float, default 0.05
            The chance of any false alarm in the report: every test of every column
            and score is Holm-corrected to it.

        Returns
        -------
        DriftReport
        """
        check_thresholds(warn, alert, min_rows, alpha=alpha)
        with self._lock:
            counts = self._counts.copy()
            sums = self._sums.copy()
            rows = self._rows
            performance = self._performance.summary()
        parts = [counts[slot.start : slot.stop] for slot in self._slots]
        tests = [
            _tests(slot, part, sums[slot.sums_start : slot.sums_start + 3])
            if int(part.sum()) >= min_rows else []
            for slot, part in zip(self._slots, parts, strict=True)
        ]
        adjusted = iter(holm([t.p_value for group in tests for t in group]))
        settings = Thresholds(warn=float(warn), alert=float(alert), min_rows=min_rows,
                              alpha=float(alpha))  # fmt: skip
        results = [
            _assess(slot, part, [t.adjust(next(adjusted), settings) for t in group], settings)
            for slot, part, group in zip(self._slots, parts, tests, strict=True)
        ]
        return DriftReport(
            features={r.name: r for r in results if r.role == "feature"},
            scores={r.name: r for r in results if r.role == "score"},
            rows=rows,
            reference_rows=self.profile.rows,
            warn=settings.warn,
            alert=settings.alert,
            min_rows=min_rows,
            alpha=settings.alpha,
            performance=performance,
        )

    def reset(self) -> None:
        """Forget every batch counted."""
        with self._lock:
            self._counts[:] = 0
            self._sums[:] = 0.0
            self._rows = 0
            self._performance.reset()


def _tests(slot: _Slot, current: IntArray, sums: FloatArray) -> list[DriftTest]:
    """Every test that can decide for this column on these counts (before correction)."""
    reference = slot.reference
    n, n_ref = int(current.sum()), int(reference.sum())
    out: list[DriftTest] = []
    if slot.values:
        r = reference[list(slot.values)]
        c = current[list(slot.values)]
        if r.sum() and c.sum():
            effect = psi(r, c)
            # Few categories tolerate smaller groups than a dozen quantile bins do.
            statistic, p = chi_square_test(r, c, min_expected=5.0 if slot.ordered else 2.0)
            if statistic > 0:
                out.append(DriftTest("chi_square", statistic, p, "psi", effect))
            if slot.ordered and np.count_nonzero(r) > 1:
                statistic, p = ks_test(r, c)
                out.append(DriftTest("ks", statistic, p, "psi", effect))
    if slot.moments is not None and slot.measure is not None:
        out += _moment_tests(slot.moments, sums)
    for test, position in (("missing", slot.missing), ("unseen", slot.unseen),
                           ("invalid", slot.invalid)):  # fmt: skip
        if position is None:
            continue
        hits, reference_hits = int(current[position]), int(reference[position])
        if hits == 0 and reference_hits == 0:
            continue  # nothing to test: its p-value would be 1 whatever happened
        p = rate_test(reference_hits, n_ref, hits, n)
        change = hits / n - reference_hits / n_ref
        out.append(DriftTest(test, change, p, "rate_change", change))
    return out


def _moment_tests(reference: Moments, sums: FloatArray) -> list[DriftTest]:
    """The mean and variance tests, where the batch has the values they need."""
    n, s1, s2 = int(sums[0]), float(sums[1]), float(sums[2])
    big_n = reference.count
    if n < 2 or big_n < 2 or reference.variance <= 0:
        return []
    out: list[DriftTest] = []
    variance = reference.variance * big_n / (big_n - 1)
    skew = reference.skewness
    if n >= max(_MEAN_ROWS, math.ceil(_MEAN_ROWS_PER_SKEW2 * skew**2)):
        z, p, d = mean_test(reference.mean, variance, big_n, reference.mean + s1 / n, n)
        out.append(DriftTest("mean", z, p, "standardized_mean_difference", d))
    needed = _variance_rows(reference)
    if needed is not None and n >= needed:
        batch_variance = max(s2 - s1 * s1 / n, 0.0) / (n - 1)
        stat, p, ratio = variance_test(
            variance, big_n, _variance_kurtosis(reference), batch_variance, n
        )
        out.append(DriftTest("variance", stat, p, "variance_ratio", ratio))
    return out


def _variance_rows(reference: Moments) -> int | None:
    """Fewest batch values the variance test needs against ``reference``; ``None`` when
    it never runs: a reference under 2,000 values, tails heavier than the normal's, or a
    (near) two-point column (see the constants above)."""
    kurtosis, skew = reference.kurtosis, reference.skewness
    if reference.count < _VARIANCE_REFERENCE_ROWS:
        return None
    if kurtosis - 1.0 - skew**2 < _TWO_POINT_MARGIN:
        return None
    if kurtosis > 3.0 + _kurtosis_margin(reference.count):
        return None
    return _VARIANCE_ROWS


def _variance_kurtosis(reference: Moments) -> float:
    """The kurtosis the variance test assumes: the reference's, at its upper bound, so a
    sampled reference does not understate how much a variance varies."""
    return reference.kurtosis + _kurtosis_margin(reference.count)


def _kurtosis_margin(rows: int) -> float:
    """Two standard errors of the kurtosis of ``rows`` normal values (``sqrt(24 / rows)``)."""
    return 2.0 * math.sqrt(24.0 / rows)


def _assess(
    slot: _Slot, current: IntArray, tests: list[DriftTest], settings: Thresholds
) -> FeatureDrift:
    n = int(current.sum())
    reference_rows = int(slot.reference.sum())
    stats: dict[str, float | None] = dict.fromkeys(STATISTICS)
    if n and reference_rows:
        missing = float(current[slot.missing] / n)
        stats.update(
            psi=psi(slot.reference, current),
            js=js_distance(slot.reference, current),
            chance_psi=chance_psi(int(np.count_nonzero(slot.reference)), n, reference_rows),
            missing_rate=missing,
            unexpected_missing_rate=missing if slot.reference[slot.missing] == 0 else 0.0,
        )
        if slot.unseen is not None:
            stats["unseen_rate"] = float(current[slot.unseen] / n)
        if slot.invalid is not None:
            stats["invalid_rate"] = float(current[slot.invalid] / n)
            stats["out_of_range_rate"] = sum(int(current[i]) for i in slot.out_of_range) / n
    status: Status = "insufficient"
    decisive: DriftTest | None = None
    if n and reference_rows and n >= settings.min_rows:
        # The worst verdict decides; among equals, the most significant test.
        ranked = sorted(tests, key=lambda t: (-_SEVERITY[t.verdict], t.adjusted))
        decisive = ranked[0] if ranked else None
        status = decisive.verdict if decisive is not None else "ok"
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
        tests=tuple(tests),
        test=decisive.name if decisive is not None else None,
        p_value=decisive.adjusted if decisive is not None else None,
        effect_size=decisive.effect_size if decisive is not None else None,
    )


def check_thresholds(
    warn: float, alert: float, min_rows: int, *, alpha: float = ALPHA, caller: str = "drift"
) -> None:
    """Raise :class:`InvalidArgument` unless ``0 < warn <= alert``, ``min_rows >= 1``
    and ``0 < alpha < 1``."""
    if not (isinstance(alpha, int | float) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise InvalidArgument.of(caller, "alpha", "a number in (0, 1)", alpha)
    numbers = all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
        for t in (warn, alert)
    )
    if not numbers or not 0 < warn <= alert:
        raise InvalidArgument(
            f"The PSI thresholds of {caller} must satisfy 0 < warn <= alert; got "
            f"warn={warn!r}, alert={alert!r} (defaults: warn={WARN}, alert={ALERT}).",
            argument="warn" if numbers and warn > alert else "alert",
            expected="finite numbers with 0 < warn <= alert",
            found=(warn, alert),
        )
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise InvalidArgument.of(caller, "min_rows", "an integer >= 1", min_rows)
