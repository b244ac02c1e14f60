"""The model's state of record as read-only views, and the observation built from them.

:class:`StateViews` is a mixin of :class:`~mesa_econ.model.EconomyModel`: the arrays a
step replaces (``model.capital``, ``holdings``, ``prices`` ...), the marks and wealth
computed from them once per state, the rolling price window and the agents' observation
(§2.1). The helpers below keep the state arrays read-only and finite.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mesa_econ.dynamics import MarketState
from mesa_econ.fast_step import liquidation_marks

__all__ = ["PRICE_WINDOW", "ObservationScales", "StateViews"]

PRICE_WINDOW = 20
"""Length of the rolling price window behind the volatility and entropy reporters."""


@dataclass(frozen=True)
class ObservationScales:
    """What an observation row is scaled by (§2.1; :meth:`StateViews.observations`).

    Attributes:
        capital: B0, the initial capital.
        holdings: H0, the initial holdings (1 where they are 0); also scales the needs.
        price: P0 ``(M,)``, the curve price at the initial supply N·H0 (at least 1e-12).
        factor_mean: m ``(M,)``; factor_scale: s ``(M,)``, the factor std (1 where 0).
        horizon: H, the episode horizon of the time feature min(t, H) / H.
    """

    capital: float
    holdings: float
    price: np.ndarray
    factor_mean: np.ndarray
    factor_scale: np.ndarray
    horizon: int


class StateViews:
    """Read-only views of an :class:`~mesa_econ.model.EconomyModel`'s state arrays."""

    _state: MarketState
    _curve_price: np.ndarray
    _window: np.ndarray
    _window_len: int
    _wealth_cache: np.ndarray | None
    _marks_cache: tuple[MarketState, np.ndarray] | None
    config: Any
    curve: Any
    demand: np.ndarray | None
    factors: np.ndarray
    n_agents: int
    n_assets: int
    params: Any
    t: int
    _factor_std: np.ndarray

    @property
    def capital(self) -> np.ndarray:
        """B_i, shape (N,) (read-only)."""
        return self._state.capital

    @property
    def holdings(self) -> np.ndarray:
        """H_ij, shape (N, M) (read-only)."""
        return self._state.holdings

    @property
    def supply(self) -> np.ndarray:
        """S_j = Σ_i H_ij, shape (M,) (read-only)."""
        return self._state.supply

    @property
    def reserve(self) -> np.ndarray:
        """Base currency in each curve's reserve, shape (M,) (read-only)."""
        return self._state.reserve

    @property
    def prices(self) -> np.ndarray:
        """P_j, the quoted prices, shape (M,) (read-only)."""
        return self._state.price

    @property
    def deviation(self) -> np.ndarray:
        """X_j = persistent deviation of the quote from the curve, shape (M,) (read-only)."""
        return self._state.deviation

    @property
    def curve_prices(self) -> np.ndarray:
        """f_j(S_j), the bonding-curve price at the current supply (read-only)."""
        return self._curve_price

    @property
    def curve_reserve(self) -> np.ndarray:
        """R_j(S_j), the reserve the curve implies for the current supply."""
        return self.curve.reserve(self._state.supply)

    @property
    def token_marks(self) -> np.ndarray:
        """v_j, the value per token of the configured profit mark (§4.1): the liquidation
        share reserve_j / S_j (default) or the quoted price P_j ('quote') (read-only)."""
        state = self._state
        if self.config.rewards.profit_mark == "quote":
            return state.price
        cached = self._marks_cache
        if cached is None or cached[0] is not state:  # computed once per state
            cached = self._marks_cache = (state, _freeze(liquidation_marks(state.reserve,
                                                                           state.supply)))
        return cached[1]

    @property
    def wealth(self) -> np.ndarray:
        """B_i + Σ_j H_ij v_j, marked as the profit reward marks it (read-only)."""
        if self._wealth_cache is None:
            self._wealth_cache = _freeze(self._state.capital
                                         + self._state.holdings @ self.token_marks)
        return self._wealth_cache

    @property
    def price_window(self) -> np.ndarray:
        """The last (up to) ``PRICE_WINDOW`` quoted prices, shape (W, M), in ring-buffer
        order (not oldest first: the window reporters, volatility and entropy, do not
        depend on the order). Use the DataCollector frame for an ordered series."""
        return self._window[:self._window_len]

    def price_window_ordered(self) -> np.ndarray:
        """:attr:`price_window`, oldest first (a copy)."""
        if self._window_len < PRICE_WINDOW:
            return self._window[:self._window_len].copy()
        start = (self.t + 1) % PRICE_WINDOW  # the oldest row (np.roll's result, cheaper)
        return np.concatenate((self._window[start:], self._window[:start]))

    @property
    def state(self) -> MarketState:
        """The full market state (frozen dataclass of arrays)."""
        return self._state

    def observation_layout(self) -> list[tuple[str, int]]:
        """The blocks of an observation row in order, as (name, width) pairs."""
        m = self.n_assets
        layout = [("capital", 1), ("holdings", m), ("price", m), ("factor", m), ("time", 1)]
        if self.demand is not None:
            layout.append(("need", m))
        return layout

    @property
    def obs_dim(self) -> int:
        """Width of an agent's observation: 2 + 3M ([B_i, H_i, P, Z, t/H]), + M with needs."""
        return 2 + 3 * self.n_assets + (self.n_assets if self.demand is not None else 0)

    def observations(self) -> np.ndarray:
        """All agents' observations, shape (N, obs_dim), float32. Implements §2.1.

        Notes:
            S_i = [B_i / B0, H_i / H0, P / P0, (Z − m) / s, min(t, H) / H, d_i / H0],
            scaled by the initial capital B0, initial holdings H0 (1 if zero), initial
            curve price P0 and factor std s (1 where s = 0); H is the episode horizon; the
            needs d_i only when the model has them (see :meth:`observation_layout`).
        """
        mc = self.config.market
        n, m = self.n_agents, self.n_assets
        h0 = mc.initial_holdings or 1.0
        obs = np.empty((n, self.obs_dim), dtype=np.float32)
        obs[:, 0] = self._state.capital / mc.initial_capital
        obs[:, 1:1 + m] = self._state.holdings / h0
        obs[:, 1 + m:1 + 2 * m] = self._state.price / self._price_scale
        obs[:, 1 + 2 * m:1 + 3 * m] = self.standardised_factors()
        obs[:, 1 + 3 * m] = min(self.t, mc.horizon) / mc.horizon
        if self.demand is not None:
            obs[:, 2 + 3 * m:] = self.demand / h0
        return obs

    @property
    def observation_scales(self) -> ObservationScales:
        """The constants :meth:`observations` divides by (read-only arrays), e.g. to turn
        an observation back into B, H, P and Z, or to build observations elsewhere."""
        mc = self.config.market
        return ObservationScales(capital=mc.initial_capital,
                                 holdings=mc.initial_holdings or 1.0,
                                 price=self._price_scale, factor_mean=self.params.factor_mean,
                                 factor_scale=self._factor_scale, horizon=mc.horizon)

    def standardised_factors(self) -> np.ndarray:
        """(Z_j − m_j) / s_j for the coming step, shape (M,) (s = 1 where s_j = 0)."""
        return (self.factors - self.params.factor_mean) / self._factor_scale

    @functools.cached_property
    def _price_scale(self) -> np.ndarray:
        return _freeze(np.maximum(self.curve.price(np.full(
            self.n_assets, self.n_agents * self.config.market.initial_holdings)), 1e-12))

    @functools.cached_property
    def _factor_scale(self) -> np.ndarray:
        return _freeze(np.where(self._factor_std > 0, self._factor_std, 1.0))


_STATE_FIELDS = ("capital", "holdings", "supply", "reserve", "deviation", "price")


def _freeze(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _freeze_state(state: MarketState) -> MarketState:
    """Make the state arrays read-only so the model's views can be handed out as they are."""
    for name in _STATE_FIELDS:
        getattr(state, name).setflags(write=False)
    return state


def _check_finite(state: MarketState) -> None:
    """Never carry NaN/inf in the state: fail loudly with the offending array's name.

    Holdings and supply need no check here: a non-finite supply fails the curve's domain
    check inside the step already. The per-asset arrays are checked as Python floats when
    there are few assets (cheaper than numpy reductions); a sum is finite only if every
    term is, so one reduction serves otherwise.
    """
    per_asset = (state.reserve, state.deviation, state.price)
    if state.price.size <= 16:
        values = state.reserve.tolist() + state.deviation.tolist() + state.price.tolist()
        finite = all(map(math.isfinite, values))
    else:
        finite = math.isfinite(sum(a.sum() for a in per_asset))
    if finite and math.isfinite(state.capital.sum()):
        return
    for name in _STATE_FIELDS:
        if not np.all(np.isfinite(getattr(state, name))):
            raise FloatingPointError(
                f"market state '{name}' became non-finite; the parameters let prices "
                "diverge (lower kappa/zeta/sigma1 or the curve's growth)")
