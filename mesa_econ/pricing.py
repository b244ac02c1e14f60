"""Quoted prices: bonding curve plus a persistent deviation. Implements §2.1, §3.1-§3.3.

The quoted price of asset j is

    P_j(t) = f_j(S_j(t)) + X_j(t) + η_j(t),    η_j ~ N(0, σ_η,j²)          (§3.1)

where the deviation X carries the market interaction term (§3.2), the Itô price SDE
(§3.3) and the stochastic factors Z (§2.1), integrated with one Euler-Maruyama step:

    X_j(t+1) = X_j + [κ_j Δ_j + λ_j (D_j − S_j)] − θ_j X_j dt
               + σ_j(P_j) dW_j + ζ_j (Z_j − m_j),     σ_j(P) = σ0_j + σ1_j·P, dW ~ N(0, dt).

The drift −θX is the paper's μ(P, S) written as mean reversion of P toward the curve
f(S). With θ·dt = 1 and κ = λ = ζ = σ0 = σ1 = 0 the price is exactly the paper's §3.1
P = f(S) + η. The quote is clipped below at ``price_floor`` so prices stay positive.

All functions are pure: random draws (Z, dW, η) are passed in, drawn by the caller from
the model's generator.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "draw_factors",
    "market_impact",
    "price_volatility",
    "quoted_price",
    "update_deviation",
]


def draw_factors(rng: np.random.Generator, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Draw the stochastic market factors. Implements §2.1.

    Notes:
        Z_j(t) ~ N(m_j, s_j²), independent across assets and steps.

    Args:
        rng: the model's numpy generator.
        mean: m_j, shape (M,).
        std: s_j, shape (M,), nonnegative.

    Returns:
        Z of shape (M,).
    """
    return mean + std * rng.standard_normal(np.shape(mean))  # §2.1


def market_impact(net_flow: np.ndarray, buy_volume: np.ndarray, supply: np.ndarray,
                  kappa: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Price adjustment from order flow. Implements §3.2 (market interaction term).

    Notes:
        ΔP_j = κ_j Σ_i ã_ij + λ_j (D_j − S_j),  D_j = Σ_i max(ã_ij, 0).

    Args:
        net_flow: Σ_i ã_ij, the executed net order flow per asset, shape (M,).
        buy_volume: D_j, the executed aggregate demand per asset, shape (M,).
        supply: S_j before the trade, shape (M,).
        kappa: κ_j, impact per unit of net flow.
        lam: λ_j, weight of excess demand.
    """
    return kappa * net_flow + lam * (buy_volume - supply)  # §3.2


def price_volatility(price: np.ndarray, sigma0: np.ndarray, sigma1: np.ndarray) -> np.ndarray:
    """State-dependent SDE volatility. Implements §3.3 σ_j(P) = σ0_j + σ1_j·P."""
    return sigma0 + sigma1 * price  # §3.3


def update_deviation(deviation: np.ndarray, *, impact: np.ndarray, price: np.ndarray,
                     factors: np.ndarray, factor_mean: np.ndarray, theta: np.ndarray,
                     sigma0: np.ndarray, sigma1: np.ndarray, zeta: np.ndarray, dt: float,
                     dW: np.ndarray) -> np.ndarray:
    """One Euler-Maruyama step of the price deviation X. Implements §3.2, §3.3 and §2.1.

    Notes:
        X' = X + impact − θ X dt + σ(P) dW + ζ (Z − m),  σ(P) = σ0 + σ1·P, dW ~ N(0, dt).

    Args:
        deviation: X_j(t), shape (M,).
        impact: the §3.2 term κΔ + λ(D − S), shape (M,).
        price: the current quoted price P_j(t) (σ(P) is evaluated there).
        factors: Z_j(t); factor_mean: m_j.
        theta: θ_j, mean-reversion rate; dt: time step.
        sigma0, sigma1: volatility coefficients; zeta: factor loading ζ_j.
        dW: Wiener increment, N(0, dt) draws, shape (M,).

    Returns:
        X_j(t+1), shape (M,).
    """
    drift = -theta * deviation * dt  # §3.3 μ(P, S) dt, mean reversion toward f(S)
    diffusion = price_volatility(price, sigma0, sigma1) * dW  # §3.3 σ(P) dW
    factor_term = zeta * (factors - factor_mean)  # §2.1 Z enters the price
    return deviation + impact + drift + diffusion + factor_term


def quoted_price(curve_price: np.ndarray, deviation: np.ndarray, eta: np.ndarray,
                 price_floor: float) -> np.ndarray:
    """The quoted price. Implements §3.1 P = f(S) + X + η (clipped at ``price_floor``).

    Args:
        curve_price: f_j(S_j) at the post-trade supply.
        deviation: X_j.
        eta: quote noise η_j ~ N(0, σ_η²), drawn by the caller.
        price_floor: lowest allowed quote (> 0).
    """
    return np.maximum(curve_price + deviation + eta, price_floor)  # §3.1
