"""Speed-only paths of the market step and the rewards, equal to the reference bit for bit.

The readable reference is :func:`mesa_econ.dynamics.market_step` with
:func:`mesa_econ.rewards.compute_rewards`; every model step can take it. For the common
configurations the model takes these paths instead, which give the same arrays bit for
bit (tests/test_fast_step.py) with fewer calls:

- :class:`SpotStep` (:func:`spot_step`): spot settlement without fees, yield, congestion,
  ψ, a peer cap or the attributed price, on a step where no budget binds, no buy passes
  the supply limit and the reserve pays every sale; any other step goes to
  ``market_step`` itself. The per-asset arithmetic (impact, deviation, quote, reserve)
  runs on Python floats for a few assets (the same IEEE operations in the same order as
  the numpy expressions, which cost more in call overhead than in arithmetic at M = 3).
- :func:`profit_rewards`: the reward when it is profit alone (ω = ρ = use value = 0),
  with the token marks passed in (the model keeps them per state).

``EconomyModel.fast_paths = False`` turns them off; ``benchmarks/market_step.py`` times the
model both ways ("model reference" is without them). They earn their place at small N: on
the reference workload they took a step from ~111 to ~80 µs at N = 50 and from ~586 to
~511 µs at N = 5000 (2026-12-06, 2-core AMD EPYC, load ~1.3).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mesa_econ import pricing
from mesa_econ.curves import SupplyQuote
from mesa_econ.dynamics import MarketParams, MarketState, StepInfo, market_step, peer_influence
from mesa_econ.rewards import RewardBreakdown, liquidation_mark
from mesa_econ.settlement import _BUDGET_MARGIN, _MONEY_TINY, column_sums

if TYPE_CHECKING:
    from mesa_econ.config import RewardConfig
    from mesa_econ.curves import BondingCurve
    from mesa_econ.dynamics import StepNoise

__all__ = ["SpotStep", "liquidation_marks", "profit_rewards", "spot_step",
           "takes_profit_rewards", "takes_spot_step"]

_SMALL = 16
"""Up to this many assets, the per-asset arithmetic runs on Python floats."""
_MAX = float(np.finfo(float).max)


def takes_spot_step(params: MarketParams) -> bool:
    """Whether :class:`SpotStep` serves a market with these parameters."""
    return (params.settlement == "spot" and params.fee == 0.0 and params.yield_rate is None
            and params.congestion is None and not params.attribute_price
            and params.peer_cap is None and not params.psi.any())


class SpotStep:
    """``market_step`` of one market that :func:`takes_spot_step` serves, bit for bit.

    Built once per market (the per-asset coefficients as Python floats); called as
    ``step(state, orders, noise, curve_price=...)`` with ``market_step``'s other arguments
    fixed. A step where a budget binds, a buy passes the supply limit or the reserve runs
    short is ``market_step``'s own.
    """

    def __init__(self, params: MarketParams, curve: BondingCurve, adjacency: Any = None
                 ) -> None:
        if not takes_spot_step(params):
            raise ValueError(f"params={params!r} is invalid: expected spot settlement "
                             "without fee, yield, congestion, psi, peer cap or attribution")
        self.params, self.curve, self.adjacency = params, curve, adjacency
        p = params
        self._floats = p.kappa.size <= _SMALL
        self._coefficients = list(zip(
            p.kappa.tolist(), p.lam.tolist(), p.theta.tolist(), p.sigma0.tolist(),
            p.sigma1.tolist(), p.zeta.tolist(), p.factor_mean.tolist(),
            np.broadcast_to(curve.supply_limit, p.kappa.shape).tolist(), strict=True))
        self._ones = np.ones(p.kappa.shape[0])
        self._ones.setflags(write=False)

    def __call__(self, state: MarketState, orders: np.ndarray, noise: StepNoise, *,
                 curve_price: np.ndarray | None = None) -> tuple[MarketState, StepInfo]:
        p, curve = self.params, self.curve
        executed = peer_influence(orders, p.nu, self.adjacency)  # §5.3
        if executed is orders:
            executed = np.maximum(orders, -state.holdings)  # no short sales
        else:
            np.maximum(executed, -state.holdings, out=executed)
        capital, price = state.capital, state.price
        buys = np.maximum(executed, 0.0)
        with np.errstate(over="ignore"):
            spend = buys @ price
        demand = column_sums(buys)
        flow = column_sums(executed)
        reserve_change = flow * price
        if ((spend > capital * (1.0 - _BUDGET_MARGIN) - _MONEY_TINY).any()
                or self._binds(state, demand, reserve_change)):
            return market_step(state, orders, p, curve, noise, self.adjacency,
                               curve_price=curve_price)  # the general step
        payments = executed @ price
        new_capital = capital - payments + p.income  # §5.2
        holdings = state.holdings + executed  # §5.3
        supply = column_sums(holdings)  # §5.1
        spot = SupplyQuote(curve, supply).spot  # f(S), with the curve's checks
        if self._floats:
            reserve, deviation, new_price = self._tail_floats(state, noise, flow, demand,
                                                              reserve_change, spot)
        else:
            reserve, deviation, new_price = _tail_arrays(state, p, noise, flow, demand,
                                                         reserve_change, spot)
        new_state = MarketState(capital=new_capital, holdings=holdings, supply=supply,
                                reserve=reserve, deviation=deviation, price=new_price)
        info = StepInfo(executed=executed, net_flow=flow, demand=demand,
                        clearing_price=price if not price.flags.writeable else price.copy(),
                        payments=payments, reserve_change=reserve_change,
                        sell_fill=self._ones, curve_price=spot)
        return new_state, info

    def _binds(self, state: MarketState, demand: np.ndarray, reserve_change: np.ndarray
               ) -> bool:
        """Whether buys pass the supply limit (D_j > max(limit_j − S_j, 0)) or the reserve
        cannot pay the sales (R_j + Δ_j P_j < 0)."""
        if not self._floats:
            return (bool((demand > np.maximum(self.curve.supply_limit - state.supply,
                                              0.0)).any())
                    or bool((state.reserve + reserve_change < 0.0).any()))
        for d, s, r, c, coefficients in zip(demand.tolist(), state.supply.tolist(),
                                            state.reserve.tolist(), reserve_change.tolist(),
                                            self._coefficients, strict=True):
            if d > max(coefficients[-1] - s, 0.0) or r + c < 0.0:
                return True
        return False

    def _tail_floats(self, state: MarketState, noise: StepNoise, flow: np.ndarray,
                     demand: np.ndarray, reserve_change: np.ndarray, spot: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:func:`_tail_arrays` on Python floats: each operation of the numpy expressions,
        in their order (IEEE float64 either way, so the same bits; ``np.maximum``'s choice
        of +0.0 over −0.0 included)."""
        dt, floor = self.params.dt, self.params.price_floor
        reserve, deviation, price = [], [], []
        for (r, rc, x, s0, pr, fl, dm, z, dw, eta, f,
             (kap, lam, th, sg0, sg1, zeta, zm, _)) in zip(
                state.reserve.tolist(), reserve_change.tolist(), state.deviation.tolist(),
                state.supply.tolist(), state.price.tolist(), flow.tolist(), demand.tolist(),
                noise.factors.tolist(), noise.dW.tolist(), noise.eta.tolist(), spot.tolist(),
                self._coefficients, strict=True):
            held = r + rc
            reserve.append(held if held > 0.0 or held != held else 0.0)
            impact = kap * fl + lam * (dm - s0)  # §3.2
            xn = x + impact + (-th) * x * dt + (sg0 + sg1 * pr) * dw + zeta * (z - zm)  # §3.3
            deviation.append(xn)
            quote = f + xn + eta  # §3.1
            price.append(quote if quote > floor or quote != quote else floor)
        return np.array(reserve), np.array(deviation), np.array(price)


def spot_step(state: MarketState, orders: np.ndarray, params: MarketParams,
              curve: BondingCurve, noise: StepNoise, adjacency: Any = None, *,
              curve_price: np.ndarray | None = None) -> tuple[MarketState, StepInfo]:
    """``market_step``'s signature through a one-off :class:`SpotStep` (where
    :func:`takes_spot_step` holds; ``market_step`` otherwise)."""
    if not takes_spot_step(params):
        return market_step(state, orders, params, curve, noise, adjacency,
                           curve_price=curve_price)
    return SpotStep(params, curve, adjacency)(state, orders, noise, curve_price=curve_price)


def _tail_arrays(state: MarketState, p: MarketParams, noise: StepNoise, flow: np.ndarray,
                 demand: np.ndarray, reserve_change: np.ndarray, spot: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reserve, deviation X' and quote P' through the :mod:`mesa_econ.pricing` functions."""
    reserve = np.maximum(state.reserve + reserve_change, 0.0)
    impact = pricing.market_impact(flow, demand, state.supply, p.kappa, p.lam)
    deviation = pricing.update_deviation(
        state.deviation, impact=impact, price=state.price, factors=noise.factors,
        factor_mean=p.factor_mean, theta=p.theta, sigma0=p.sigma0, sigma1=p.sigma1,
        zeta=p.zeta, dt=p.dt, dW=noise.dW)
    return reserve, deviation, pricing.quoted_price(spot, deviation, noise.eta, p.price_floor)


def liquidation_marks(reserve: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """:func:`mesa_econ.rewards.liquidation_mark` of two (M,) float arrays, bit for bit; on
    Python floats for a few assets."""
    if reserve.ndim != 1 or reserve.shape != supply.shape or reserve.size > _SMALL:
        return liquidation_mark(reserve, supply)
    marks = [r / s if s > 0.0 else 0.0 for r, s in zip(reserve.tolist(), supply.tolist(),
                                                          strict=True)]
    return np.array([_MAX if v > _MAX else v for v in marks])  # saturate, as the reference


def takes_profit_rewards(cfg: RewardConfig) -> bool:
    """Whether :func:`profit_rewards` serves a reward configuration (profit alone)."""
    return cfg.omega == 0 and cfg.rho == 0 and cfg.use_value == 0


def profit_rewards(cfg: RewardConfig, capital_before: np.ndarray, capital_after: np.ndarray,
                   holdings_before: np.ndarray, holdings_after: np.ndarray,
                   marks_before: np.ndarray, marks_after: np.ndarray,
                   zeros: np.ndarray) -> RewardBreakdown | None:
    """``compute_rewards`` for a profit-only ``cfg`` (:func:`takes_profit_rewards`), with
    the token marks v(t), v(t+1) given (``liquidation_mark`` of the reserves and supplies,
    or the quotes). Equal to it (its zero terms are ``zeros``, a read-only (N,) array, and
    a zero total may be −0.0 where it gives +0.0); None where the total is not finite (the
    caller then takes ``compute_rewards``, which names the input at fault).
    """
    profit = capital_after - capital_before + (holdings_after @ marks_after
                                               - holdings_before @ marks_before)  # §4.1
    total = cfg.profit_weight * profit
    if not math.isfinite(total.sum()):
        return None
    return RewardBreakdown(profit=profit, stability=zeros, cooperative=zeros,
                           use_value=zeros, total=total)
