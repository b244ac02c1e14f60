"""Metrics of who holds what: concentration (HHI, §8.1), inequality (Gini), reserve
coverage (§5.1)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import check_shape
from mesa_econ.metrics._checks import FloatArray, _array, _nonnegative
from mesa_econ.metrics.kernels import gini_kernel, gini_weights, hhi_kernel


def hhi(holdings: npt.ArrayLike, supply: npt.ArrayLike | None = None) -> FloatArray:
    """Herfindahl-Hirschman concentration index of each asset. Implements §8.1.

    Args:
        holdings: H_ij >= 0, shape (N, M).
        supply: S_j, shape (M,); defaults to ``holdings.sum(axis=0)``.

    Returns:
        HHI_j, shape (M,): 1 when one agent holds the whole supply, 1/N when N agents hold
        equal shares; 0.0 for an asset with zero supply.

    Raises:
        ValueError: wrong shapes or negative holdings/supply (named).

    Notes:
        HHI_j = Σ_i (H_ij / S_j)².
    """
    h = _array("holdings", holdings, (2,))
    _nonnegative("holdings", h)
    if supply is None:
        s = h.sum(axis=0)
    else:
        s = _array("supply", supply, (1,))
        check_shape("supply", s, (h.shape[1],), "M from holdings")
        _nonnegative("supply", s)
    return hhi_kernel(h, s)


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of nonnegative values (inequality of wealth).

    Args:
        values: x_i >= 0, shape (N,).

    Returns:
        G in [0, 1 − 1/N]: 0 when all values are equal, → 1 when one holds everything.
        0.0 when every value is 0.

    Raises:
        ValueError: empty, not 1-D, non-finite or negative ``values``.

    Notes:
        G = Σ_i Σ_k |x_i − x_k| / (2 N² x̄) = Σ_i (2i − N − 1) x_(i) / (N Σ_i x_i),
        x_(1) <= ... <= x_(N) sorted, i from 1.
    """
    x = _array("values", values, (1,))
    _nonnegative("values", x)
    return gini_kernel(x, gini_weights(x.shape[0]))


def reserve_coverage(reserve: npt.ArrayLike, curve_reserve: npt.ArrayLike) -> FloatArray:
    """Fraction of the curve's reserve R(S) actually held (solvency of the curve, §5.1).

    Args:
        reserve: R_j held, >= 0, shape (M,).
        curve_reserve: R_j(S_j) = ∫_0^S f_j, >= 0, shape (M,).

    Returns:
        reserve / R(S), shape (M,); 1.0 where R(S) == 0.
    """
    r = _array("reserve", reserve, (1,))
    c = _array("curve_reserve", curve_reserve, (1,))
    check_shape("curve_reserve", c, r.shape, "the shape of reserve")
    _nonnegative("reserve", r)
    _nonnegative("curve_reserve", c)
    out = np.ones_like(r)
    np.divide(r, c, out=out, where=c > 0)
    return out
