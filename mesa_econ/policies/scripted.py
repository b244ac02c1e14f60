"""Scripted baseline traders: random, hold and mean reversion.

Each baseline returns trade VOLUMES directly (shape (N, M), positive = buy), already in
units of assets: unlike a learned policy's raw action u, they are not clipped to
``[-1, 1] × trade_scale`` by the model. They read only the attributes listed in
:class:`MarketView` and draw randomness only from ``model.rng`` (a numpy Generator).
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
        ``model.rng.normal(size=(N, M))`` call (docs: WORKLOAD.md, step 2). With
        ``scale = trade_scale = 1`` the orders are exactly the raw draws.

    Args:
        scale: standard deviation of the orders in units of ``trade_scale`` (>= 0).
    """

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = _check_gain("scale", scale)

    def __repr__(self) -> str:
        return f"RandomPolicy(scale={self.scale!r})"

    def orders(self, model: MarketView) -> np.ndarray:
        """Gaussian volumes of shape (N, M) drawn from ``model.rng``."""
        draws = model.rng.normal(size=(model.n_agents, model.n_assets))
        return draws * (self.scale * model.trade_scale)


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
