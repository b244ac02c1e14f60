"""Curve settlement: every asset's net flow clears at the curve's average price (§5.2).

Budget-bound buyers are scaled to spend exactly their budget at the clearing prices, the
unit prices found by Newton's method on u = G(u) (:func:`settle_curve`). Pure functions of
arrays (no Mesa, no torch).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from mesa_econ.curves import SupplyQuote
from mesa_econ.settlement._feasibility import (
    _BUDGET_MARGIN,
    _any_negative_sum,
    _budget,
    _budget_binds,
    _row_max,
    column_sums,
)

if TYPE_CHECKING:
    from mesa_econ.curves import BondingCurve

_TINY_PRICE = 1e-300
"""Unit prices below this are taken as this (the solver works on log u)."""
_NEWTON_STEPS = 40
_NEWTON_TOL = 1e-13
"""Newton stops when every |ln u_j − ln p̄_j(u)| is below this."""
_ROUNDING_MARGIN = 1e-15
"""Relative margin on the solved unit prices (a few ulps), so p̄ <= u despite rounding."""


def settle_curve(orders: np.ndarray, capital: np.ndarray, supply: np.ndarray,
                 reserve: np.ndarray, curve: BondingCurve) -> tuple[np.ndarray, ...]:
    """Clear every asset's net flow against its bonding curve. Implements §5.2 (curve).

    Notes:
        Δ_j = Σ_i ã_ij clears at p̄_j = (R_j(S_j + Δ_j) − R_j(S_j)) / Δ_j (p̄ = f(S) when
        Δ = 0); agent i pays Σ_j ã_ij p̄_j and the reserve moves by R(S+Δ) − R(S), so
        Σ_i payment_i = Σ_j reserve change exactly.

        Budgets (the budget-feasible fill): at unit prices u agent i executes
        s_i(u)·b_i of its buys b_i, s_i(u) = min(1, B_i / (b_i·u)) (sells untouched). The
        unit prices solve u = G(u) := p̄(Δ(u)), so every agent whose budget binds spends
        exactly B_i at the clearing prices. G is nonincreasing in u (higher u, smaller
        buys, lower p̄ on a nondecreasing f), so the root is unique in the box
        [G(Û), Û], Û = max(U, G(U)), U the p̄ of the requested flow. It is found by
        Newton's method on ln u (backtracking on the residual, to 1e-13; typically 2-3
        steps) and then w = max(u, G(u))·(1 + 1e-15) is taken: G(w) <= G(u) <= w, so
        nobody pays more than its capital even where Newton stopped short. With one
        buyer and no sellers this is the curve's inverse: the buyer gets
        ``supply_for_deposit(S, B)`` tokens. A larger order never fills less: where a
        budget binds, the fill B_i·b_i/(b_i·u) does not depend on the order's size.

        An asset whose net sale the reserve cannot pay is filled partially: its net flow
        is pinned at the Δ* with R(S) − R(S + Δ*) = reserve (G stays nonincreasing).

    Returns:
        (executed, payments, reserve_change, clearing_price, sell_fill)
    """
    return _settle_curve(orders, capital, reserve, SupplyQuote(curve, supply))[:5]


def _settle_curve(orders: np.ndarray, capital: np.ndarray, reserve: np.ndarray,
                  quote: SupplyQuote) -> tuple[np.ndarray, ...]:
    """:func:`settle_curve` pricing through ``quote`` (the curve at S); also returns Δ.

    The fast path: when the requested flow stays within the supply limit, no budget binds
    at its p̄ and the reserve pays every sale, the requested orders execute at that p̄
    (one cost evaluation).

    Returns:
        (executed, payments, reserve_change, clearing_price, sell_fill, net_flow)
    """
    flow = column_sums(orders)
    if not _within_limit(quote.curve, quote.supply, flow):
        room = quote.curve.supply_limit - quote.supply
        clearing = _Clearing(orders, capital, reserve, quote, room)
        return clearing.settle(clearing.budget_prices(None))
    cost = quote.cost(flow)
    unit = quote.average_price(flow, cost)  # p̄ of the requested flow
    if (not _budget_binds(orders, capital, unit)
            and not _any_negative_sum(reserve, cost)):
        return orders, orders @ unit, cost, unit, np.ones(orders.shape[1]), flow  # p̄_j
    clearing = _Clearing(orders, capital, reserve, quote, None)
    return clearing.settle(clearing.budget_prices(unit))


def _within_limit(curve: BondingCurve, supply: np.ndarray, flow: np.ndarray) -> bool:
    """Whether S + Δ <= the supply limit for every asset (Python floats for a few assets,
    cheaper than numpy calls)."""
    if supply.ndim == 1 and supply.size <= 16:
        return all(map(operator.le, map(operator.add, supply.tolist(), flow.tolist()),
                       curve.supply_limit_list))
    return bool((supply + flow <= curve.supply_limit).all())


class _Fill(NamedTuple):
    """What executes when buyers are budgeted at unit prices u, in aggregate (per asset)."""

    bound: np.ndarray
    """Agents whose budget binds at u, shape (N,)."""
    largest: np.ndarray
    """Each bound agent's largest buy, B_i / (d_i·u) (its buys are d_i times it)."""
    per_unit: np.ndarray
    """d_i·u, shape (N,)."""
    factor: np.ndarray
    """Cut of each asset's buys to the supply limit (1: none), shape (M,)."""
    fill: np.ndarray
    """Fill of each asset's sells (1 unless the reserve is short), shape (M,)."""
    flow: np.ndarray
    cost: np.ndarray
    price: np.ndarray
    pinned: np.ndarray
    """Assets whose Δ the supply limit or the reserve pins (p̄ does not move with u)."""


class _Clearing:
    """Curve settlement of one batch of orders: G(u) and its fixed point (see settle_curve).

    The solver prices aggregates (each asset's total buys and sells); the final pass
    builds the executed orders and prices their sums, raising u past any difference of
    rounding between the two.
    """

    def __init__(self, orders: np.ndarray, capital: np.ndarray, reserve: np.ndarray,
                 quote: SupplyQuote, room: np.ndarray | None) -> None:
        self.orders, self.reserve, self.quote, self.room = orders, reserve, quote, room
        buys = np.maximum(orders, 0.0)
        self.buys, self.sells = buys, column_sums(np.minimum(orders, 0.0))
        self.peak = _row_max(buys)
        """Largest buy of each agent: b_i = peak_i · d_i, so costs never overflow."""
        self.direction = buys / np.where(self.peak > 0.0, self.peak, 1.0)[:, None]
        self.budget = _budget(capital)

    def at(self, unit: np.ndarray | None) -> _Fill:
        """G(u): buys budgeted at ``unit`` (None: unbudgeted), cut to the supply limit,
        sells filled to what the reserve pays, priced in aggregate (called inside the
        callers' ``np.errstate``: a cost of ~1e300 tokens may overflow)."""
        n, m = self.orders.shape
        per_unit = self.direction @ unit if unit is not None else np.zeros(n)
        bound = (self.peak * per_unit > self.budget) & (per_unit > 0.0)
        largest = np.where(bound, self.budget / np.where(bound, per_unit, 1.0), 0.0)
        buys = self.buys.T @ ~bound + self.direction.T @ largest
        factor, fill, pinned = np.ones(m), np.ones(m), np.zeros(m, dtype=bool)
        if self.room is not None and (buys + self.sells > self.room).any():
            pinned = buys + self.sells > self.room  # Δ pinned at the limit
            factor = np.where(pinned & (buys > 0.0), np.clip(
                (self.room - self.sells) / np.where(buys > 0.0, buys, 1.0), 0.0, 1.0), 1.0)
            buys = buys * factor
        flow = buys + self.sells
        cost = self.quote.cost(flow)
        if _any_negative_sum(self.reserve, cost):  # the reserve cannot pay these sales
            short = self.reserve + cost < 0.0
            target = self.quote.curve.supply_for_deposit(
                self.quote.supply, -np.where(short, self.reserve, 0.0))
            wanted = np.clip((target - buys) / self.sells, 0.0, 1.0) * (1.0 - _BUDGET_MARGIN)
            fill, pinned = np.where(short, wanted, 1.0), pinned | short
            flow = buys + fill * self.sells
            cost = self.quote.cost(flow)
        price = self.quote.average_price(flow, cost)
        return _Fill(bound, largest, per_unit, factor, fill, flow, cost, price, pinned)

    def executed(self, g: _Fill) -> np.ndarray:
        """The executed orders of ``g``: bound agents' buys d_i·largest_i, the buys cut to
        the supply limit, the sells filled."""
        buys = np.where(g.bound[:, None], self.direction * g.largest[:, None], self.orders)
        return np.where(self.orders > 0.0, buys * g.factor, self.orders * g.fill)

    @np.errstate(all="ignore")  # ~1e300 tokens: costs overflow, fills do not; sells of 0
    def settle(self, unit: np.ndarray) -> tuple[np.ndarray, ...]:
        """Trades at budget prices ``unit``, raised to any clearing price above them.

        u only rises, so buys only shrink; the passes end with p̄ <= u.
        """
        for _ in range(4 * self.orders.shape[1] + 4):
            g = self.at(unit)
            executed = self.executed(g)
            flow = column_sums(executed)
            cost = self.quote.cost(flow)
            price = self.quote.average_price(flow, cost)
            if np.all(price <= unit):
                return executed, executed @ price, cost, price, g.fill, flow
            unit = np.maximum(unit, price * (1.0 + 1e-12))  # headroom for rounding
        raise FloatingPointError("curve settlement did not find budget-feasible trades; "
                                 f"unit prices {unit}, clearing prices {price}")

    @np.errstate(all="ignore")  # trial prices may overflow a slope: Newton then stops
    def budget_prices(self, requested: np.ndarray | None) -> np.ndarray:
        """Unit prices w >= G(w) at (or just above) the root of u = G(u).

        ``requested``: p̄ of the requested flow, or None to price it here (cut to the
        supply limit). Newton's method on x = ln u: r(x) = x − ln G(eˣ),
        ∂r/∂x = I + diag(p̄'/p̄)·K·diag(u), K_jk = Σ_{i bound} B_i b_ij b_ik / (b_i·u)²,
        kept in the box [ln G(Û), ln Û].
        """
        if requested is None:
            requested = self.at(None).price
        first = self.at(requested)
        high = np.maximum(requested, first.price)
        upper = first if high is requested else self.at(high)
        if not upper.bound.any():
            return high  # no budget binds at Û, nor below it: G is flat
        lo = np.log(np.maximum(upper.price, _TINY_PRICE))
        x = hi = np.log(np.maximum(high, _TINY_PRICE))
        g, r = upper, x - lo
        for _ in range(_NEWTON_STEPS):
            if np.max(np.abs(r)) <= _NEWTON_TOL:
                break
            step = _newton_step(self._jacobian(np.exp(x), g), r)
            moved = None if step is None else self._backtrack(x, step, r, lo, hi)
            if moved is None:
                break
            x, g, r = moved
        # feasible: G(w) <= G(u) <= w; the margin of a few ulps absorbs G's rounding
        return np.maximum(np.exp(x), g.price) * (1.0 + _ROUNDING_MARGIN)

    def _backtrack(self, x: np.ndarray, step: np.ndarray, r: np.ndarray, lo: np.ndarray,
                   hi: np.ndarray) -> tuple[np.ndarray, _Fill, np.ndarray] | None:
        """The first of x + t·step, t = 1, 1/2, ..., (clipped to the box) that lowers |r|."""
        norm = float(r @ r)
        t = 1.0
        for _ in range(30):
            trial = np.clip(x + t * step, lo, hi)
            g = self.at(np.exp(trial))
            r_new = trial - np.log(np.maximum(g.price, _TINY_PRICE))
            if float(r_new @ r_new) < norm:
                return trial, g, r_new
            t *= 0.5
        return None

    def _jacobian(self, unit: np.ndarray, g: _Fill) -> np.ndarray:
        """∂r/∂ln u at ``unit`` (see :meth:`budget_prices`).

        B_i b_ij b_ik / (b_i·u)² = B_i d_ij d_ik / (d_i·u)² with b_i = peak_i · d_i.
        """
        per_unit = np.where(g.bound, g.per_unit, 1.0)
        weight = np.where(g.bound, self.budget / per_unit / per_unit, 0.0)
        k = (self.direction * weight[:, None]).T @ self.direction
        elasticity = self._price_slope(g) / np.maximum(g.price, _TINY_PRICE)
        return np.eye(unit.shape[0]) + elasticity[:, None] * k * unit[None, :]

    def _price_slope(self, g: _Fill) -> np.ndarray:
        """dp̄/dΔ = (f(S + Δ) − p̄)/Δ (0 where Δ = 0 or is pinned)."""
        end = self.quote.curve._price(np.maximum(self.quote.supply + g.flow, 0.0))  # in domain
        moved = (g.flow != 0.0) & ~g.pinned
        slope = (end - g.price) / np.where(moved, g.flow, 1.0)
        return np.where(moved & np.isfinite(slope), np.maximum(slope, 0.0), 0.0)


def _newton_step(jacobian: np.ndarray, residual: np.ndarray) -> np.ndarray | None:
    """−J⁻¹ r, or None where J is not finite or singular (Newton stops there)."""
    if not np.isfinite(jacobian).all():
        return None
    if jacobian.shape == (1, 1):  # one asset: a division (solve's overhead is 10 µs)
        step = -residual / jacobian[0]
    else:
        try:
            step = np.linalg.solve(jacobian, -residual)
        except np.linalg.LinAlgError:
            return None
    return step if np.isfinite(step).all() else None
