"""Per-agent rewards of one market step (§4): arrays in, arrays out.

Each term is a pure function of the state before and after a step, so the model, the
trainers and the tests compute rewards the same way. Shapes: N agents, M assets; capital
``(N,)``, holdings ``(N, M)``, prices ``(M,)``.

Decisions a user should know:

- Profit is the change of wealth B_i + Σ_j H_ij·v_j, with v_j the per-token mark (§4.1).
  The default mark is the liquidation share v_j = reserve_j / S_j: what uniform clearing
  pays each token if every holder sells at once. The marks of all agents sum to the
  reserve, so a buyer (alone or in a crowd) earns no reward from paper gains; buying
  moves value to the other holders instead. ``profit_mark='quote'`` is the paper's
  literal v_j = P_j (the quoted price), under which buying on a convex curve books paper
  wealth that no money backs: it teaches a pump (docs/model.md).
- The stability term −ω Σ_j |P_j(t+1) − P_j(t)| uses the realised change of the quoted
  price and is the same for every agent (§4.2, 'shared'); the 'attributed' variant charges
  agent i ω Σ_j (|ΔP_j| − |ΔP_j^{−i}|), the move its own executed trade caused on the curve
  and impact parts (negative, a reward, when its trade leans against the move).
- The cooperative term sums the other agents' *unweighted* profit rewards r_k^profit,
  as the paper writes it (§4.3); ``profit_weight`` scales only the agent's own profit.
  With a use value (resource network) r_k^profit is the agent's own payoff, profit plus
  use value: a cooperative agent then counts the use its congestion takes from others.
  Scope 'all' is the paper's Σ_{k≠i}; 'neighbours' sums over graph neighbours (A @ r).
- The use value (resource network, §9) pays ``value`` per used unit: held up to the need
  d_ij, scaled by min(1, C_j / Σ_k min(H_kj, d_kj)) when a capacity C_j binds; it is a
  flow paid every step, not a change in wealth.
- total = profit_weight·profit + stability + cooperative + use_value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import (
    check_adjacency,
    check_nonnegative,
    check_number,
    check_shape,
    fail,
    real_array,
)
from mesa_econ.config import RewardConfig
from mesa_econ.metrics import used_units

__all__ = [
    "RewardBreakdown",
    "compute_rewards",
    "cooperative_bonus",
    "liquidation_mark",
    "profit_reward",
    "stability_penalty",
    "use_value_reward",
]

FloatArray = npt.NDArray[np.float64]


_STEP_NAMES = (
    "capital_before",
    "capital_after",
    "holdings_before",
    "holdings_after",
    "price_before",
    "price_after",
)


def _array(name: str, value: npt.ArrayLike, ndim: int, *, finite: bool = True) -> FloatArray:
    """``value`` as a float array of ``ndim`` dimensions, or ValueError naming it."""
    return real_array(name, value, ndim, finite=finite)


_same_shape = check_shape


def _step_arrays(values: tuple[npt.ArrayLike, ...], *, finite: bool) -> tuple[FloatArray, ...]:
    """The six state arrays of a step as float arrays with consistent shapes (N, M)."""
    if not finite and _consistent_float_arrays(values):  # the model's arrays: as they are
        return values  # type: ignore[return-value]
    b0, b1, h0, h1, p0, p1 = (
        _array(name, value, ndim, finite=finite)
        for name, value, ndim in zip(_STEP_NAMES, values, (1, 1, 2, 2, 1, 1), strict=True)
    )
    n, m = b0.shape[0], p0.shape[0]
    _same_shape("capital_after", b1, (n,), "N from capital_before")
    _same_shape("holdings_before", h0, (n, m), "N from capital_before, M from price_before")
    _same_shape("holdings_after", h1, (n, m), "N from capital_before, M from price_before")
    _same_shape("price_after", p1, (m,), "M from price_before")
    return b0, b1, h0, h1, p0, p1


def _consistent_float_arrays(values: tuple[npt.ArrayLike, ...]) -> bool:
    """Whether the six step arrays are already float64 ndarrays of shapes (N,), (N,),
    (N, M), (N, M), (M,), (M,): then :func:`_step_arrays` would return them unchanged
    (``np.asarray`` of such an array is the array), and this check is cheaper."""
    for value in values:
        if type(value) is not np.ndarray or value.dtype != np.float64:
            return False
    b0, b1, h0, h1, p0, p1 = values
    if h0.ndim != 2:
        return False
    n, m = h0.shape
    return (b0.shape, b1.shape, h1.shape, p0.shape, p1.shape) == ((n,), (n,), (n, m), (m,), (m,))


def _profit(
    b0: FloatArray, b1: FloatArray, h0: FloatArray, h1: FloatArray, p0: FloatArray, p1: FloatArray
) -> FloatArray:
    return b1 - b0 + (h1 @ p1 - h0 @ p0)  # §4.1


def liquidation_mark(reserve: npt.ArrayLike, supply: npt.ArrayLike) -> FloatArray:
    """Per-token liquidation value reserve_j / S_j (0 where S_j = 0). Implements §4.1's
    mark (decision: docs/model.md).

    Notes:
        Σ_i H_ij · reserve_j / S_j = reserve_j: the marks of all holders sum to the reserve,
        what uniform clearing pays out if every holder sells at once. Where S_j is so
        small that reserve_j / S_j overflows (a denormal supply beside a reserve left over
        from spot settlement), the mark saturates at the largest float, so holdings stay
        finitely marked (their sum then falls short of the reserve).
    """
    r = np.asarray(reserve, dtype=float)
    s = np.asarray(supply, dtype=float)
    out = np.zeros(np.broadcast_shapes(r.shape, s.shape))
    np.divide(r, s, out=out, where=s > 0)  # §4.1 liquidation share
    small = out.ndim == 1 and out.size <= 16  # a few assets: Python floats, cheaper
    if (small and all(map(math.isfinite, out.tolist()))) or np.isfinite(out).all():
        return out
    return np.minimum(out, np.finfo(float).max, out=out)  # (the overflow warned once)


def _price_moves(p0: FloatArray, p1: FloatArray) -> float:
    """Σ_j |P_j(t+1) − P_j(t)|, reduced in Python: M is small and numpy calls cost µs.

    ``math.fsum`` (correctly rounded) rather than ``sum``, whose float summation changed in
    Python 3.12, so the same seed gives the same rewards on every supported Python.
    """
    pairs = zip(p0.tolist(), p1.tolist(), strict=True)
    return math.fsum(abs(after - before) for before, after in pairs)


def profit_reward(
    capital_before: npt.ArrayLike,
    capital_after: npt.ArrayLike,
    holdings_before: npt.ArrayLike,
    holdings_after: npt.ArrayLike,
    price_before: npt.ArrayLike,
    price_after: npt.ArrayLike,
) -> FloatArray:
    """Mark-to-market profit of each agent over one step. Implements §4.1.

    Args:
        capital_before: B_i(t), shape (N,).
        capital_after: B_i(t+1), shape (N,).
        holdings_before: H_ij(t), shape (N, M).
        holdings_after: H_ij(t+1), shape (N, M).
        price_before: quoted P_j(t), shape (M,).
        price_after: quoted P_j(t+1), shape (M,).

    Returns:
        r_i^profit, shape (N,).

    Raises:
        ValueError: an argument has the wrong shape or is not finite (named).

    Notes:
        r_i = B_i(t+1) − B_i(t) + Σ_j [H_ij(t+1) P_j(t+1) − H_ij(t) P_j(t)],
        the change of wealth B_i + Σ_j H_ij P_j at the quoted price.
    """
    values = (
        capital_before,
        capital_after,
        holdings_before,
        holdings_after,
        price_before,
        price_after,
    )
    return _profit(*_step_arrays(values, finite=True))


def stability_penalty(
    price_before: npt.ArrayLike, price_after: npt.ArrayLike, omega: float
) -> float:
    """Stability term of the reward, the same for every agent. Implements §4.2.

    Args:
        price_before: quoted P_j(t), shape (M,).
        price_after: quoted P_j(t+1), shape (M,).
        omega: ω >= 0, penalty per unit of absolute price change.

    Returns:
        −ω Σ_j |P_j(t+1) − P_j(t)| as a Python float (<= 0): the term *added* to a reward.

    Raises:
        ValueError: mismatched shapes, non-finite prices, or omega < 0 (named).

    Notes:
        ΔP_j(t) in §4.2 is read as the realised change P_j(t+1) − P_j(t) of the quote.
    """
    p0 = _array("price_before", price_before, 1)
    p1 = _array("price_after", price_after, 1)
    _same_shape("price_after", p1, p0.shape, "M from price_before")
    check_number("omega", omega, 0.0)
    return -float(omega) * _price_moves(p0, p1)  # §4.2


def cooperative_bonus(
    profit: npt.ArrayLike, rho: float, adjacency: Any | None = None
) -> FloatArray:
    """Share of the other agents' profit added to each agent's reward. Implements §4.3.

    Args:
        profit: r^profit, shape (N,).
        rho: ρ >= 0, weight of the others' profit.
        adjacency: optional (N, N) matrix (scipy.sparse or dense) with zero diagonal; when
            given, agent i receives ρ Σ_k A_ik r_k (graph neighbours only, weighted by A).

    Returns:
        Cooperative bonus, shape (N,).

    Raises:
        ValueError: bad ``profit``, ``rho`` < 0, or an ``adjacency`` of the wrong shape
            or with a nonzero diagonal (named).

    Notes:
        All agents (the paper): ρ Σ_{k≠i} r_k = ρ (Σ_k r_k − r_i), computed in O(N).
        Neighbours: ρ (A r)_i with A_ii = 0.
    """
    r = _array("profit", profit, 1)
    check_number("rho", rho, 0.0)
    if adjacency is None:
        return float(rho) * (r.sum() - r)  # §4.3
    _check_adjacency(adjacency, r.shape[0])
    return float(rho) * np.asarray(adjacency @ r, dtype=float).reshape(r.shape[0])  # §4.3


def _check_adjacency(adjacency: Any, n: int) -> None:
    """ValueError unless ``adjacency`` is (n, n) with a zero diagonal."""
    check_adjacency("adjacency", adjacency, n)


def use_value_reward(holdings: npt.ArrayLike, demand: npt.ArrayLike, value: float) -> FloatArray:
    """Use value of the held resources. Implements §9 (resource network).

    Args:
        holdings: H_ij, shape (N, M).
        demand: d_ij >= 0, units of asset j agent i can use, shape (N, M).
        value: value per used unit, >= 0.

    Returns:
        value · Σ_j min(H_ij, d_ij), shape (N,).

    Raises:
        ValueError: mismatched shapes, negative demand or negative value (named).
    """
    h = _array("holdings", holdings, 2)
    d = _array("demand", demand, 2)
    _same_shape("demand", d, h.shape, "the shape of holdings")
    check_nonnegative("demand", d)
    check_number("value", value, 0.0)
    return float(value) * np.minimum(h, d).sum(axis=1)  # §9 use value


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward terms of one step, each of shape (N,); ``total`` is their weighted sum."""

    profit: FloatArray
    """r^profit (§4.1), unweighted."""
    stability: FloatArray
    """−ω Σ_j |ΔP_j| (§4.2), the same for every agent."""
    cooperative: FloatArray
    """ρ Σ_{k≠i} r_k^profit or ρ (A r^profit)_i (§4.3)."""
    use_value: FloatArray
    """value · Σ_j min(H_ij, d_ij) (§9 resource network)."""
    total: FloatArray
    """profit_weight·profit + stability + cooperative + use_value."""


def compute_rewards(
    cfg: RewardConfig,
    *,
    capital_before: npt.ArrayLike,
    capital_after: npt.ArrayLike,
    holdings_before: npt.ArrayLike,
    holdings_after: npt.ArrayLike,
    price_before: npt.ArrayLike,
    price_after: npt.ArrayLike,
    adjacency: Any | None = None,
    demand: npt.ArrayLike | None = None,
    reserve_before: npt.ArrayLike | None = None,
    reserve_after: npt.ArrayLike | None = None,
    supply_before: npt.ArrayLike | None = None,
    supply_after: npt.ArrayLike | None = None,
    price_without: npt.ArrayLike | None = None,
    capacity: npt.ArrayLike | None = None,
) -> RewardBreakdown:
    """All reward terms of one step, composed as ``cfg`` says. Implements §4.1-§4.3.

    Args:
        cfg: weights and scope of the terms.
        capital_before, capital_after: B(t), B(t+1), shape (N,).
        holdings_before, holdings_after: H(t), H(t+1), shape (N, M).
        price_before, price_after: quoted P(t), P(t+1), shape (M,).
        adjacency: (N, N) interaction graph; required when ``cfg.rho > 0`` and
            ``cfg.cooperative_scope == 'neighbours'``, ignored otherwise.
        demand: d, shape (N, M); required when ``cfg.use_value > 0``, ignored otherwise.
            The use value is paid on ``holdings_after``.
        reserve_before, reserve_after, supply_before, supply_after: the curves' reserves
            and supplies, shape (M,); required by ``cfg.profit_mark == 'liquidation'``.
        price_without: P^{−i}(t+1), shape (N, M) (``dynamics.price_without_each``);
            required by ``cfg.stability == 'attributed'`` when ``cfg.omega > 0``.
        capacity: C_j, shape (M,) or None (unbounded); scales the use value.

    Returns:
        A :class:`RewardBreakdown`.

    Raises:
        ValueError: a shape mismatch, a non-finite input, or a missing ``adjacency`` or
            ``demand`` (named).

    Notes:
        total_i = profit_weight·r_i + stability_i + ρ Σ_{k≠i} r_k + value Σ_j used_ij, with
        r_i the change of B_i + Σ_j H_ij v_j (v the mark), stability_i = −ω Σ_j |ΔP_j|
        (shared) or −ω Σ_j (|ΔP_j| − |P^{−i}_j(t+1) − P_j(t)|) (attributed), and used_ij
        = min(H_ij, d_ij)·min(1, C_j / Σ_k min(H_kj, d_kj)).
    """
    # Hot path (every step): shapes are checked here, finiteness once on the total.
    values = (
        capital_before,
        capital_after,
        holdings_before,
        holdings_after,
        price_before,
        price_after,
    )
    b0, b1, h0, h1, p0, p1 = _step_arrays(values, finite=False)
    if cfg.profit_mark == "quote":
        v0, v1 = p0, p1  # the paper's literal mark at the quoted price
    else:
        if reserve_before is None or reserve_after is None or supply_before is None \
                or supply_after is None:
            fail("reserve_before", reserve_before, "the reserves and supplies before and "
                 "after the step (all four) when profit_mark='liquidation'")
        v0 = liquidation_mark(reserve_before, supply_before)
        v1 = liquidation_mark(reserve_after, supply_after)
    profit = _profit(b0, b1, h0, h1, v0, v1)  # §4.1
    n = profit.shape[0]
    stability = _stability_term(cfg, p0, p1, price_without, n)  # §4.2
    use_value = _use_value_term(cfg, h1, demand, capacity)  # §9
    # §4.3 over the others' own payoff: their profit plus the use they make of resources
    cooperative = _cooperative_term(cfg, profit + use_value if cfg.use_value else profit,
                                    adjacency)
    total = cfg.profit_weight * profit  # §4: the weighted sum of the terms
    total += stability
    total += cooperative
    total += use_value
    if not math.isfinite(total.sum()):  # one reduction; NaN and inf both propagate
        _raise_not_finite(dict(zip(_STEP_NAMES, values, strict=True)), demand)
    return RewardBreakdown(
        profit=profit,
        stability=stability,
        cooperative=cooperative,
        use_value=use_value,
        total=total,
    )


def _stability_term(cfg: RewardConfig, p0: FloatArray, p1: FloatArray,
                    price_without: Any | None, n: int) -> FloatArray:
    if cfg.omega == 0:
        return np.zeros(n)
    if cfg.stability == "shared":
        return np.full(n, -cfg.omega * _price_moves(p0, p1))  # §4.2
    if price_without is None:
        fail("price_without", None, "an (N, M) array when stability='attributed' and omega > 0")
    pw = _array("price_without", price_without, 2, finite=False)
    _same_shape("price_without", pw, (n, p0.shape[0]), "(N, M)")
    own = np.abs(p1 - p0).sum() - np.abs(pw - p0).sum(axis=1)  # |ΔP| − |ΔP^{−i}|
    return -cfg.omega * own  # §4.2, attributed


def _cooperative_term(cfg: RewardConfig, profit: FloatArray, adjacency: Any | None) -> FloatArray:
    n = profit.shape[0]
    if cfg.rho == 0:
        return np.zeros(n)
    if cfg.cooperative_scope == "all":
        return cfg.rho * (profit.sum() - profit)  # §4.3
    if adjacency is None:
        fail("adjacency", None, "an (N, N) matrix when cooperative_scope='neighbours' and "
             "rho > 0")
    _check_adjacency(adjacency, n)
    return cfg.rho * np.asarray(adjacency @ profit, dtype=float).reshape(n)  # §4.3


def _use_value_term(cfg: RewardConfig, holdings: FloatArray, demand: Any | None,
                    capacity: Any | None = None) -> FloatArray:
    if cfg.use_value == 0:
        return np.zeros(holdings.shape[0])
    if demand is None:
        fail("demand", None, "an (N, M) array when use_value > 0")
    d = _array("demand", demand, 2, finite=False)
    _same_shape("demand", d, holdings.shape, "the shape of holdings_after")
    check_nonnegative("demand", d)
    if capacity is None:
        return cfg.use_value * np.minimum(holdings, d).sum(axis=1)  # §9
    return cfg.use_value * used_units(holdings, d, capacity).sum(axis=1)  # §9


def _raise_not_finite(inputs: dict[str, Any], demand: Any | None) -> None:
    """Name the first non-finite input; the happy path never gets here."""
    if demand is not None:
        inputs = {**inputs, "demand": demand}
    for name, value in inputs.items():
        if not np.isfinite(np.asarray(value, dtype=float)).all():
            fail(name, value, "finite reals (no NaN or inf)")
    raise ValueError("rewards are not finite: check adjacency and the size of capital and prices")
