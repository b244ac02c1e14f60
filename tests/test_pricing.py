"""§2.1, §3.1-§3.3 pricing: hand-computed values and the reduction to P = f(S) + η."""

from __future__ import annotations

import numpy as np
import pytest

from mesa_econ import pricing
from mesa_econ.model import EconomyModel


def test_market_impact_hand_value():
    """§3.2: κ=0.1, λ=0.01, Σa = 5, D = 8, S = 100 → 0.1·5 + 0.01·(8 − 100) = −0.42."""
    out = pricing.market_impact(np.array([5.0]), np.array([8.0]), np.array([100.0]),
                                np.array([0.1]), np.array([0.01]))
    np.testing.assert_allclose(out, [-0.42])


def test_price_volatility_hand_value():
    """§3.3: σ(P) = σ0 + σ1·P = 0.02 + 0.1·3 = 0.32."""
    np.testing.assert_allclose(pricing.price_volatility(np.array([3.0]), 0.02, 0.1), [0.32])


def test_update_deviation_hand_value():
    """X' = X + impact − θX dt + σ(P) dW + ζ(Z − m).

    X = 0.5, impact 0.1, θ = 0.2, dt = 0.5, P = 2, σ0 = 0.1, σ1 = 0.05, dW = 0.3,
    ζ = 2, Z = 1.5, m = 1: 0.5 + 0.1 − 0.05 + (0.1 + 0.1)·0.3 + 2·0.5 = 1.61.
    """
    out = pricing.update_deviation(
        np.array([0.5]), impact=np.array([0.1]), price=np.array([2.0]),
        factors=np.array([1.5]), factor_mean=np.array([1.0]), theta=np.array([0.2]),
        sigma0=np.array([0.1]), sigma1=np.array([0.05]), zeta=np.array([2.0]), dt=0.5,
        dW=np.array([0.3]))
    np.testing.assert_allclose(out, [1.61])


def test_quoted_price_adds_terms_and_floors():
    """§3.1: P = f(S) + X + η, clipped at the floor."""
    np.testing.assert_allclose(
        pricing.quoted_price(np.array([2.0, 1.0]), np.array([0.5, -3.0]),
                             np.array([0.1, 0.0]), 1e-6), [2.6, 1e-6])


def test_draw_factors_moments():
    """§2.1 Z ~ N(m, s²): sample mean and std over 20k draws within 4 standard errors."""
    rng = np.random.default_rng(0)
    mean, std = np.array([1.0, -2.0]), np.array([0.5, 0.1])
    z = np.array([pricing.draw_factors(rng, mean, std) for _ in range(20_000)])
    se = std / np.sqrt(len(z))
    assert np.all(np.abs(z.mean(0) - mean) < 4 * se)
    np.testing.assert_allclose(z.std(0), std, rtol=0.03)


@pytest.mark.parametrize("curve", ["linear", "exponential", "sigmoid"])
def test_reduces_to_the_papers_bonding_curve_price(curve):
    """θdt = 1 and κ = λ = ζ = σ0 = σ1 = 0: X stays 0 and P = f(S) + η exactly (§3.1)."""
    model = EconomyModel(n_agents=10, n_assets=2, curve=curve, theta=1.0, sigma_eta=0.0,
                         rng=3)
    for _ in range(20):
        model.step()
        np.testing.assert_array_equal(model.deviation, np.zeros(2))
        np.testing.assert_array_equal(model.prices, np.maximum(model.curve_prices, 1e-9))


def test_quote_noise_has_the_stated_std():
    """With only η on, P − f(S) are i.i.d. N(0, σ_η²) draws."""
    model = EconomyModel(n_agents=5, n_assets=1, sigma_eta=0.05, policy="hold", rng=4)
    gaps = []
    for _ in range(2000):
        model.step()
        gaps.append(model.prices[0] - model.curve_prices[0])
    assert abs(np.mean(gaps)) < 4 * 0.05 / np.sqrt(2000)
    assert np.std(gaps) == pytest.approx(0.05, rel=0.06)


def test_deviation_mean_reverts_without_trading():
    """§3.3 drift −θX: with no trading and no noise, X decays as (1 − θdt)^t."""
    model = EconomyModel(n_agents=5, n_assets=1, policy="hold", theta=0.25, zeta=1.0,
                         sigma_eta=0.0, factor_std=0.0, shock_step=0, shock_size=2.0,
                         rng=1)
    model.step()  # the shock: X = ζ·2 = 2
    assert model.deviation[0] == pytest.approx(2.0)
    for t in range(1, 6):
        model.step()
        assert model.deviation[0] == pytest.approx(2.0 * 0.75**t)
