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
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from safemodel.errors import InvalidArgument

__all__ = ["chance_psi", "js_distance", "psi"]

FloatArray = npt.NDArray[np.float64]

# Pseudo-count added to every bin that is non-empty on either side before PSI.
_SMOOTHING = 0.5
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
