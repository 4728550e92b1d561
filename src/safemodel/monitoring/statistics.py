"""Distances and tests between two count vectors over the same bins.

Everything here works on counts per bin (the reference's, stored in the profile, and
the current batch's), never on rows, so it is the same for one batch and for
everything a monitor has observed.

- :func:`psi`: Population Stability Index, ``sum((q - p) * ln(q / p))``, with half a
  row added to every bin that is non-empty on either side (a Jeffreys correction), so
  an empty bin never gives an infinity; bins empty on both sides are left out.
- :func:`js_distance`: Jensen-Shannon distance (base 2, in ``[0, 1]``), uncorrected.
- :func:`chance_psi`: the PSI two samples of one distribution exceed only 0.1% of the
  time. With ``d + 1`` occupied bins, ``n`` current rows and ``N`` reference rows,
  PSI is about ``chi2(d) * (1/n + 1/N)`` by chance alone (PSI is a symmetrised
  Kullback-Leibler divergence, and ``n`` times it tends to a chi-square); the
  quantile uses the Wilson-Hilferty approximation.

Two-sample tests (each returns a p-value under "both samples come from one
distribution"):

- :func:`chi_square_test`: a chi-square test (Cressie-Read's power divergence,
  lambda 2/3, whose far tail stays chi-square's on small counts, where Pearson's
  grows heavy) on the 2 x G table of counts, after merging neighbouring bins until
  every group expects at least 5 rows on each side
  (so the chi-square approximation holds on 15 rows as on 100,000; categories, which
  are few, use 2, so that an 8% category stays apart on 50 rows). The groups are
  chosen from the reference alone, never from the batch under test.
- :func:`ks_test`: Kolmogorov-Smirnov on the binned distribution functions: the
  largest gap between the two cumulative shares at the bin edges. Binning can only
  hide part of the gap, so the test is conservative. p-value from Kolmogorov's limit
  distribution with Stephens' small-sample correction.
- :func:`rate_test`: Fisher's exact test (two-sided) of one rate (missing values,
  unseen categories) in the batch against the reference: exact at any sample size,
  so 15 rows with 5 missing values where training had none decide.
- :func:`mean_test`: a z-test of the batch mean against the reference mean, with the
  reference variance (from its moments; large and known, so the two-sided test is
  robust to skewness to first order). Effect: the standardised mean difference.
- :func:`variance_test`: a test of the log variance ratio, with the standard error
  that holds for any distribution with a fourth moment,
  ``Var(ln s^2) ~ (kurtosis - (n - 3) / (n - 1)) / n`` per side (for normal data
  kurtosis is 3, giving the classic ``2 / (n - 1)``). Effect: the variance ratio.
  That standard error holds for heavy tails, but the p-value's far tail does not: the
  log of a variance of heavy-tailed values is skewed to the right, so drift runs this
  test only on columns whose tails are no heavier than the normal's.
- :func:`holm`: Holm's step-down adjustment, which keeps the chance of any false
  alarm among all the tests of a report at most ``alpha``.

scipy's special functions compute the distributions; they are imported on the first
test, so counting batches never pays for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import numpy as np
import numpy.typing as npt

from safemodel.errors import InvalidArgument

__all__ = [
    "chance_psi",
    "chi_square_test",
    "holm",
    "js_distance",
    "ks_test",
    "mean_test",
    "psi",
    "rate_test",
    "variance_test",
]

FloatArray = npt.NDArray[np.float64]

# Pseudo-count added to every bin that is non-empty on either side before PSI.
_SMOOTHING = 0.5
# Fewest rows a chi-square group should expect on each side (Cochran's rule). With a
# dozen groups expecting 2 rows each, Pearson's statistic's far tail (where a Holm-corrected
# test decides) is about a third heavier than chi-square's: measured, not assumed.
_MIN_EXPECTED = 5.0
# Cressie and Read's power-divergence exponent: 1 is Pearson's chi-square, 0 the
# G-test; 2/3 is the one whose small-sample null distribution is closest to chi-square.
_LAMBDA = 2.0 / 3.0
# Standard normal quantile of the chance level chance_psi works at (99.9%).
_Z = 3.090232306167813


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

    Raises
    ------
    InvalidArgument
        Count vectors of different shapes, negative counts or an empty side.

    Examples
    --------
    >>> round(psi([25, 25, 25, 25], [10, 20, 30, 40]), 4)
    0.218
    """
    p, q = _pair("psi", reference, current)
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

    Raises
    ------
    InvalidArgument
        As for :func:`psi`.

    Examples
    --------
    >>> js_distance([1, 0], [0, 1])
    1.0
    """
    p, q = _pair("js_distance", reference, current)
    p /= p.sum()
    q /= q.sum()
    m = (p + q) / 2
    divergence = (_kl2(p, m) + _kl2(q, m)) / 2
    return float(min(math.sqrt(max(divergence, 0.0)), 1.0))


def chance_psi(occupied: int, rows: int, reference_rows: int) -> float:
    """99.9% quantile of PSI between two samples of one distribution (Wilson-Hilferty).

    Parameters
    ----------
    occupied : int
        Bins with at least one reference row.
    rows, reference_rows : int
        Current and reference rows (both positive).

    Returns
    -------
    float
        0.0 when fewer than two bins are occupied (PSI is then 0 or any change is new).
    """
    df = occupied - 1
    if df <= 0:
        return 0.0
    h = 2.0 / (9.0 * df)
    chi2 = df * (1.0 - h + _Z * math.sqrt(h)) ** 3
    return chi2 * (1.0 / rows + 1.0 / reference_rows)


def _pair(
    function: str, reference: npt.ArrayLike, current: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    p = np.array(reference, dtype=np.float64)
    q = np.array(current, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise InvalidArgument(
            f"{function} needs two 1-D count vectors of one length; got shapes {p.shape} "
            f"and {q.shape}. Count both samples into the same bins.",
            argument="current",
            expected="a 1-D count vector as long as reference",
            found=q.shape,
        )
    if p.sum() <= 0 or q.sum() <= 0 or (p < 0).any() or (q < 0).any():
        raise InvalidArgument(
            f"{function} needs non-negative counts with a positive total on each side; got "
            f"totals {p.sum():g} and {q.sum():g}.",
            argument="reference",
            expected="non-negative counts with a positive total",
            found=(float(p.sum()), float(q.sum())),
        )
    return p, q


def _kl2(a: FloatArray, m: FloatArray) -> float:
    keep = a > 0
    return float(np.sum(a[keep] * np.log2(a[keep] / m[keep])))


# -- two-sample tests --------------------------------------------------------------------


def _special() -> Any:
    # Imported on first use: scipy.special costs more to import than a Monitor to build.
    import scipy.special

    return scipy.special


def chi_square_test(
    reference: npt.ArrayLike, current: npt.ArrayLike, *, min_expected: float = _MIN_EXPECTED
) -> tuple[float, float]:
    """Chi-square test of homogeneity on two count vectors over ordered bins.

    Neighbouring bins are merged, in order, until every group holds at least
    ``min_expected`` expected rows in the smaller sample (judged from the reference
    shares alone). The statistic is Cressie and Read's power divergence with
    ``lambda = 2/3`` (``scipy.stats.chi2_contingency(..., lambda_="cressie-read")``),
    which follows the chi-square distribution in its far tail on small expected counts
    better than Pearson's: with groups expecting 5 to 10 rows, Pearson's statistic
    exceeded its 0.2% quantile 1.25 times as often as chi-square says, and its 0.05%
    quantile 1.7 times (400,000 multinomial draws), where a Holm-corrected test
    decides; Cressie-Read's 1.02 and 1.14 times. Both agree for large counts.

    Parameters
    ----------
    reference, current : array-like of int
        Counts per bin, same length. Order matters: only neighbours merge.
    min_expected : float, default 5
        Fewest expected rows per group.

    Returns
    -------
    (float, float)
        The statistic and its p-value; ``(0.0, 1.0)`` when fewer than two groups can
        be formed (nothing to compare).

    Examples
    --------
    >>> stat, p = chi_square_test([50, 50], [90, 10])
    >>> round(stat, 2), p < 1e-6
    (38.63, True)
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    n_ref, n_cur = r.sum(), c.sum()
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 1.0
    need = min_expected / min(n_ref, n_cur)  # the share a group needs
    groups = _groups(r / n_ref, need)
    if len(groups) < 2:
        return 0.0, 1.0
    rg = np.add.reduceat(r, groups)
    cg = np.add.reduceat(c, groups)
    total = rg + cg
    keep = total > 0
    rg, cg, total = rg[keep], cg[keep], total[keep]
    if len(total) < 2:
        return 0.0, 1.0
    share = total / (n_ref + n_cur)
    stat = _power_divergence(rg, n_ref * share) + _power_divergence(cg, n_cur * share)
    return stat, float(_special().chdtrc(len(total) - 1, stat))


def _power_divergence(observed: FloatArray, expected: FloatArray) -> float:
    """Cressie-Read's statistic (lambda 2/3) of one side; an empty group adds nothing."""
    terms = observed * ((observed / expected) ** _LAMBDA - 1.0)
    return float(2.0 / (_LAMBDA * (_LAMBDA + 1.0)) * np.sum(terms))


def _groups(shares: FloatArray, need: float) -> npt.NDArray[np.intp]:
    """Start index of each group of neighbouring bins whose shares reach ``need``."""
    starts: list[int] = []
    filled = need  # so the first bin opens a group
    for i, share in enumerate(shares):
        if filled >= need:
            starts.append(i)
            filled = 0.0
        filled += share
    if len(starts) > 1 and filled < need:
        starts.pop()  # the last group is short: fold it into the one before
    return np.asarray(starts, dtype=np.intp)


def ks_test(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test on binned distributions.

    Parameters
    ----------
    reference, current : array-like of int
        Counts per ordered bin, same length.

    Returns
    -------
    (float, float)
        ``D``, the largest gap between the cumulative shares, and its p-value
        (``(0.0, 1.0)`` when a side is empty).

    Examples
    --------
    >>> d, p = ks_test([25, 25, 25, 25], [10, 20, 30, 40])
    >>> round(d, 2), round(p, 3)
    (0.2, 0.031)
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    n_ref, n_cur = r.sum(), c.sum()
    if n_ref <= 0 or n_cur <= 0:
        return 0.0, 1.0
    d = float(np.max(np.abs(np.cumsum(r) / n_ref - np.cumsum(c) / n_cur)))
    root = math.sqrt(n_ref * n_cur / (n_ref + n_cur))
    p = float(_special().kolmogorov((root + 0.12 + 0.11 / root) * d))
    return d, min(max(p, 0.0), 1.0)


def rate_test(reference_hits: int, reference_rows: int, hits: int, rows: int) -> float:
    """Fisher's exact test (two-sided) that a rate is the same in both samples.

    Parameters
    ----------
    reference_hits, reference_rows : int
        E.g. missing values and rows in the reference.
    hits, rows : int
        The same in the current batch.

    Returns
    -------
    float
        The p-value: the chance, given the total hits, of a split at most as likely
        as the one observed. 1.0 when the total is 0 or every row is a hit.

    Examples
    --------
    >>> rate_test(0, 1000, 5, 15) < 1e-9   # 5 missing of 15, none in training
    True
    >>> rate_test(0, 1000, 0, 15)
    1.0
    """
    total = reference_rows + rows
    k = reference_hits + hits
    if k == 0 or k == total or rows == 0 or reference_rows == 0:
        return 1.0
    low, high = max(0, rows - (total - k)), min(rows, k)
    x = np.arange(low, high + 1, dtype=np.float64)
    gammaln = _special().gammaln
    # log P(x) of the hypergeometric distribution: C(k, x) C(total - k, rows - x) / C(total, rows)
    log_p = (
        _log_choose(gammaln, k, x)
        + _log_choose(gammaln, total - k, rows - x)
        - _log_choose(gammaln, total, np.float64(rows))
    )
    observed = log_p[hits - low]
    # Ties within a relative 1e-7, as scipy's fisher_exact does.
    p = float(np.exp(log_p[log_p <= observed + 1e-7]).sum())
    return min(p, 1.0)


def mean_test(
    reference_mean: float, reference_variance: float, reference_rows: int, mean: float, rows: int
) -> tuple[float, float, float]:
    """Two-sided z-test that a batch mean equals the reference mean.

    Parameters
    ----------
    reference_mean, reference_variance, reference_rows : float, float, int
        The reference moments (unbiased variance) and how many values they describe.
    mean, rows : float, int
        The batch mean and how many values it describes.

    Returns
    -------
    (float, float, float)
        ``z``, its p-value, and the standardised mean difference
        ``(mean - reference_mean) / sqrt(reference_variance)``; ``(0.0, 1.0, 0.0)``
        when the reference variance is 0 (the distribution tests decide there).

    Examples
    --------
    >>> z, p, d = mean_test(0.0, 1.0, 100_000, 0.25, 200)
    >>> round(z, 2), round(p, 4), d
    (3.53, 0.0004, 0.25)
    """
    if reference_variance <= 0 or rows <= 0 or reference_rows <= 0:
        return 0.0, 1.0, 0.0
    diff = mean - reference_mean
    z = diff / math.sqrt(reference_variance * (1.0 / rows + 1.0 / reference_rows))
    # Student's t with the reference's degrees of freedom: its variance is estimated
    # (from 89 rows on a small reference, where a normal tail was measured too thin).
    p = float(2.0 * _special().stdtr(max(reference_rows - 1, 1), -abs(z)))
    return z, min(p, 1.0), diff / math.sqrt(reference_variance)


def variance_test(
    reference_variance: float, reference_rows: int, kurtosis: float, variance: float, rows: int
) -> tuple[float, float, float]:
    """Two-sided test that a batch variance equals the reference variance.

    The statistic is ``ln(variance / reference_variance)`` over its standard error,
    ``sqrt(v(rows) + v(reference_rows))`` with ``v(n) = (kurtosis - (n - 3) / (n - 1))
    / n``, the variance of the log of an unbiased sample variance for a distribution
    of that kurtosis (delta method). Both sides use the reference kurtosis: under the
    hypothesis tested, they share one distribution. The p-value comes from the
    variance ratio's F distribution with degrees of freedom ``2 / v(n)`` per side
    (Shoemaker's kurtosis-adjusted F test; ``n - 1`` for normal data), which holds on
    small batches better than a normal approximation of the log ratio. It is exact for
    normal data and holds for lighter tails; with heavier ones its far tail is too thin
    (at the level 0.002, 1.2 to 1.6 times too many rejections for Student's t(10),
    about 6 times for a log-normal column of kurtosis 27, at 50 to 1,000 rows; see
    ``benchmarks/variance_calibration.py``), which is why drift does not run it there.

    Parameters
    ----------
    reference_variance, reference_rows : float, int
        Unbiased reference variance and its number of values.
    kurtosis : float
        The reference kurtosis, ``m4 / m2**2`` (3 for normal data).
    variance, rows : float, int
        Unbiased batch variance and its number of values (at least 2).

    Returns
    -------
    (float, float, float)
        The statistic, its p-value, and the variance ratio
        ``variance / reference_variance``; ``(0.0, 1.0, 1.0)`` when a variance is
        0 or a side has fewer than 2 values.

    Examples
    --------
    >>> stat, p, ratio = variance_test(1.0, 100_000, 3.0, 1.5, 200)
    >>> round(stat, 2), p < 1e-3, ratio
    (4.04, True, 1.5)
    """
    if reference_variance <= 0 or variance <= 0 or rows < 2 or reference_rows < 2:
        return 0.0, 1.0, 1.0
    ratio = variance / reference_variance

    def v(n: int) -> float:
        return max(kurtosis - (n - 3) / (n - 1), 0.0) / n

    vb, vr = v(rows), v(reference_rows)
    if vb <= 0 or vr <= 0:
        return 0.0, 1.0, ratio
    stat = math.log(ratio) / math.sqrt(vb + vr)
    special = _special()
    below = float(special.fdtr(2.0 / vb, 2.0 / vr, ratio))
    above = float(special.fdtrc(2.0 / vb, 2.0 / vr, ratio))  # exact in the far tail
    p = 2.0 * min(below, above)
    return stat, min(max(p, 0.0), 1.0), ratio


def _log_choose(gammaln: Any, n: float, k: Any) -> Any:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def holm(p_values: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """Holm-adjusted p-values: reject every test whose adjusted value is at most alpha.

    Controls the family-wise error rate (the chance of any false rejection) at
    ``alpha`` under any dependence between the tests, and rejects at least what
    Bonferroni rejects. With ``weights``, Holm's weighted procedure (Holm 1979): the
    tests are ordered by ``p / w`` and each step divides ``alpha`` in proportion to the
    weights of the tests not yet rejected, so a test of weight ``w`` in a family of
    total weight ``W`` first faces ``alpha * w / W``; weights fixed before the data are
    seen keep the guarantee. Equal weights give Holm's procedure; a test of weight 0
    never rejects.

    Parameters
    ----------
    p_values : sequence of float
    weights : sequence of float, optional
        Non-negative, one per p-value; default all 1.

    Raises
    ------
    InvalidArgument
        ``weights`` of another length than ``p_values``, or negative.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    >>> holm([0.01, 0.04, 0.03], weights=[2, 1, 1])
    [0.02, 0.06, 0.06]
    """
    m = len(p_values)
    w = [1.0] * m if weights is None else [float(x) for x in weights]
    if len(w) != m or any(not x >= 0 for x in w):
        raise InvalidArgument(
            f"holm needs one non-negative weight per p-value; got {len(w)} weights for "
            f"{m} p-values: {list(weights or [])!r}.",
            argument="weights",
            expected=f"{m} non-negative numbers",
            found=list(weights or []),
        )
    order = sorted(
        (i for i in range(m) if w[i] > 0), key=lambda i: (p_values[i] / w[i], -w[i])
    )
    # Weight of the tests not yet rejected at each step, summed from the far end so
    # the last step's is exactly its own weight.
    remaining = list(accumulate(w[i] for i in reversed(order)))[::-1]
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, p_values[i] * remaining[rank] / w[i]))
        adjusted[i] = running
    return adjusted
