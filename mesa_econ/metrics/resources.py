"""Metrics of a resource network (§9): units used under capacity, utilisation efficiency."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import check_real, check_shape
from mesa_econ.metrics._checks import FloatArray, _array, _nonnegative


def _resources(h: npt.ArrayLike, d: npt.ArrayLike, c: npt.ArrayLike) -> list[FloatArray]:
    """Checked holdings (N, M), demand (N, M) and capacity (M,) > 0."""
    h, d = _array("holdings", h, (2,)), _array("demand", d, (2,))
    c = _array("capacity", c, (1,))
    check_shape("demand", d, h.shape, "the shape of holdings")
    check_shape("capacity", c, (h.shape[1],), "M from holdings")
    _nonnegative("holdings", h)
    _nonnegative("demand", d)
    check_real("capacity", c, 0.0, low_open=True)
    return [h, d, c]


def used_units(
    holdings: npt.ArrayLike, demand: npt.ArrayLike, capacity: npt.ArrayLike
) -> FloatArray:
    """Units each agent uses, capacity binding. Implements §9 (resource network).

    Args:
        holdings: H_ij >= 0, shape (N, M).
        demand: d_ij >= 0, the agents' needs, shape (N, M).
        capacity: C_j > 0, shape (M,).

    Returns:
        used_ij, shape (N, M), with 0 <= used_ij <= d_ij and Σ_i used_ij <= C_j.

    Notes:
        used_ij = min(H_ij, d_ij)·min(1, C_j / Σ_k min(H_kj, d_kj)), 0 where the sum is 0:
        over capacity, every user's use shrinks by the same factor.
    """
    h, d, c = _resources(holdings, demand, capacity)
    wanted = np.minimum(h, d)
    total = wanted.sum(axis=0)
    scale = np.ones_like(c)
    np.divide(c, total, out=scale, where=total > c)  # min(1, C/Σ); 1 where Σ = 0
    return wanted * scale  # §9


def utilisation(holdings: npt.ArrayLike, demand: npt.ArrayLike, capacity: npt.ArrayLike) -> float:
    """Utilisation efficiency of a resource network. Implements §9 (resource network).

    Args:
        holdings, demand, capacity: as in :func:`used_units`.

    Returns:
        U in [0, 1]; 1.0 when there is no demand at all.

    Notes:
        U = Σ_ij used_ij / Σ_j min(C_j, Σ_i d_ij). Since Σ_i used_ij =
        min(C_j, Σ_i min(H_ij, d_ij)) <= min(C_j, Σ_i d_ij), U <= 1 by construction.
    """
    h, d, c = _resources(holdings, demand, capacity)
    # Σ_i used_ij in closed form: termwise <= the denominator's, also in floating point.
    used = float(np.minimum(c, np.minimum(h, d).sum(axis=0)).sum())
    achievable = float(np.minimum(c, d.sum(axis=0)).sum())
    return used / achievable if achievable > 0 else 1.0  # §9
