"""Scripted baseline traders: random, hold and mean reversion.

Each baseline returns trade VOLUMES directly (shape (N, M), positive = buy), already in
units of assets: unlike a learned policy's raw action u, they are not clipped to
``[-1, 1] × trade_scale`` by the model. They read only the attributes listed in
:class:`MarketView` and draw randomness only from ``model.policy_rng`` (a numpy Generator
apart from the market's noise stream ``model.rng``, so that arms compared on the same seed
share the market's random numbers; a model without one falls back to ``model.rng``).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np


class MarketView(Protocol):
    """What a scripted policy reads from the model."""

    n_agents: int
    n_assets: int
    trade_scale: float
    prices: np.ndarray
    """Quoted prices P_j, shape (M,)."""
    curve_prices: np.ndarray
    """Bonding-curve prices f_j(S_j), shape (M,)."""
    rng: np.random.Generator
    """The market's noise stream (fallback when there is no ``policy_rng``)."""
    policy_rng: np.random.Generator
    """The policies' own stream."""


class ScriptedPolicy(Protocol):
    """A policy that needs no observation tensor: ``orders(model) -> (N, M) volumes``."""

    def orders(self, model: MarketView) -> np.ndarray:
        """Trade volumes for every agent and asset, shape (N, M), positive = buy."""
        ...


def _check_gain(name: str, value: float) -> float:
    if isinstance(value, bool) or not math.isfinite(float(value)) or float(value) < 0.0:
        raise ValueError(f"{name}={value!r} is invalid: expected a finite real >= 0")
    return float(value)


class RandomPolicy:
    """Random trader: i.i.d. Gaussian orders, the reference workload's trader.

    Notes:
        a_ij = scale · trade_scale · ε_ij, ε_ij ~ N(0, 1), drawn as one
        ``model.policy_rng.normal(size=(N, M))`` call (docs: WORKLOAD.md, step 2). With
        ``scale = trade_scale = 1`` the orders are exactly the raw draws. With ``clip``
        the orders are clipped to ±trade_scale, the action limits of a learned policy
        (the "random (clipped)" arm of the reproduction).

    Args:
        scale: standard deviation of the orders in units of ``trade_scale`` (>= 0).
        clip: clip the orders to [−trade_scale, trade_scale].
    """

    def __init__(self, scale: float = 1.0, clip: bool = False) -> None:
        self.scale = _check_gain("scale", scale)
        self.clip = bool(clip)

    def __repr__(self) -> str:
        return f"RandomPolicy(scale={self.scale!r}, clip={self.clip!r})"

    def orders(self, model: MarketView) -> np.ndarray:
        """Gaussian volumes of shape (N, M) drawn from ``model.policy_rng``."""
        rng = getattr(model, "policy_rng", None) or model.rng
        draws = rng.normal(size=(model.n_agents, model.n_assets))
        volumes = draws * (self.scale * model.trade_scale)
        if self.clip:
            np.clip(volumes, -model.trade_scale, model.trade_scale, out=volumes)
        return volumes


class HoldPolicy:
    """Never trades: all-zero orders (the "no trading" baseline of §9 shock recovery)."""

    def __repr__(self) -> str:
        return "HoldPolicy()"

    def orders(self, model: MarketView) -> np.ndarray:
        """Zeros of shape (N, M)."""
        return np.zeros((model.n_agents, model.n_assets))


class MeanReversionPolicy:
    """Trades toward the bonding-curve price: buys when the quote is below f(S), sells above.

    Every agent places the same order (the rule sees only market-wide prices); feasibility
    (no short sales, budget) is applied by the market step, not here.

    Notes:
        a_ij = trade_scale · clip(−strength · (P_j − f_j(S_j)) / f_j(S_j), −1, 1),
        the same for every agent i.

    Args:
        strength: gain on the relative mispricing (>= 0).
    """

    def __init__(self, strength: float = 1.0) -> None:
        self.strength = _check_gain("strength", strength)

    def __repr__(self) -> str:
        return f"MeanReversionPolicy(strength={self.strength!r})"

    def orders(self, model: MarketView) -> np.ndarray:
        """Volumes of shape (N, M), equal rows.

        Raises:
            ValueError: if a curve price f_j(S_j) is not positive (the gap is relative).
        """
        fair = np.asarray(model.curve_prices, dtype=float)
        if np.any(~(fair > 0.0)):
            raise ValueError(
                f"curve_prices={fair!r} is invalid: mean reversion needs positive curve prices f(S)"
            )
        gap = (np.asarray(model.prices, dtype=float) - fair) / fair
        volume = np.clip(-self.strength * gap, -1.0, 1.0) * model.trade_scale
        return np.tile(volume, (model.n_agents, 1))


class InformedPolicy:
    """Trades on the yield signal: holds more of an asset while its factor Z is high.

    The documented "informed" baseline of docs/scenarios.md: with a yield y_j (Z_j − m_j)
    per token held, a profit-seeking agent should hold more while Z_j > m_j. Each agent
    moves toward a target position around its initial holding.

    Notes:
        target_ij = H0 + ½ trade_scale · clip(gain · (Z_j − m_j) / s_j, −1, 1);
        a_ij = clip(target_ij − H_ij, −trade_scale, trade_scale).

    Args:
        gain: how strongly the target follows the standardised signal (>= 0).
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = _check_gain("gain", gain)

    def __repr__(self) -> str:
        return f"InformedPolicy(gain={self.gain!r})"

    def orders(self, model) -> np.ndarray:
        """Volumes of shape (N, M) toward each agent's target position."""
        signal = np.clip(self.gain * model.standardised_factors(), -1.0, 1.0)
        target = model.config.market.initial_holdings + 0.5 * model.trade_scale * signal
        return np.clip(target - model.holdings, -model.trade_scale, model.trade_scale)


class NeedAwarePolicy:
    """Buys toward each agent's need d_ij and sells what it holds beyond it (§9 resources).

    Notes:
        a_ij = clip(d_ij − H_ij, −trade_scale, trade_scale); without needs, no trade.
    """

    def __repr__(self) -> str:
        return "NeedAwarePolicy()"

    def orders(self, model) -> np.ndarray:
        """Volumes of shape (N, M) toward the needs."""
        if model.demand is None:
            return np.zeros((model.n_agents, model.n_assets))
        return np.clip(model.demand - model.holdings, -model.trade_scale, model.trade_scale)
