"""Tests of mesa_econ.metrics: §7.1/§8/§9 formulas by hand, properties, reporters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mesa_econ.metrics import (
    gini,
    hhi,
    price_entropy,
    recovery_time,
    reserve_coverage,
    resilience,
    utilisation,
    volatility,
)


def _histogram_entropy(series, bins):
    """Reference entropy (nats) from np.histogram over the series' own range."""
    counts, _ = np.histogram(series, bins=bins)
    p = counts[counts > 0] / len(series)
    return float(-(p * np.log(p)).sum())


# ------------------------------------------------------------------------------ HHI §8.1


def test_hhi_by_hand():
    """§8.1: HHI_j = Σ_i (H_ij / S_j)²; zero supply gives 0."""
    holdings = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.0]])
    # asset 0: S = 4, (1/4)² + (3/4)² = 1/16 + 9/16 = 0.625; asset 1: S = 0 -> 0
    np.testing.assert_allclose(hhi(holdings), [0.625, 0.0])
    # explicit supply S = 8: (1/8)² + (3/8)² = 10/64 = 0.15625
    np.testing.assert_allclose(hhi(holdings, supply=[8.0, 0.0]), [0.15625, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    arrays(float, st.tuples(st.integers(1, 10), st.integers(1, 3)), elements=st.floats(0.01, 1e3))
)
def test_hhi_between_one_over_n_and_one(holdings):
    """§8.1: with every holder holding a positive amount, 1/N <= HHI <= 1."""
    n = holdings.shape[0]
    values = hhi(holdings)
    assert np.all(values >= 1.0 / n - 1e-12)
    assert np.all(values <= 1.0 + 1e-12)


@pytest.mark.parametrize("n", [1, 2, 7])
def test_hhi_single_holder_and_equal_shares(n):
    """§8.1: one holder of everything gives 1; N equal holders give 1/N."""
    single = np.zeros((n, 2))
    single[n - 1] = [5.0, 0.5]
    np.testing.assert_allclose(hhi(single), [1.0, 1.0])
    np.testing.assert_allclose(hhi(np.full((n, 2), 3.0)), [1.0 / n, 1.0 / n])


def test_hhi_rejects_bad_input():
    with pytest.raises(ValueError, match="holdings"):
        hhi(np.ones(3))
    with pytest.raises(ValueError, match="holdings"):
        hhi(-np.ones((2, 2)))
    with pytest.raises(ValueError, match="supply"):
        hhi(np.ones((2, 2)), supply=np.ones(3))
    with pytest.raises(ValueError, match="supply"):
        hhi(np.ones((2, 2)), supply=-np.ones(2))


# -------------------------------------------------------------------------- entropy §8.2


@pytest.mark.parametrize(
    ("series", "bins", "expected"),
    [
        # bins [0, .5), [.5, 1]: counts (2, 2) -> −2·(½ log ½) = log 2
        ([0.0, 0.0, 1.0, 1.0], 2, math.log(2)),
        # span 3, 4 bins of width 0.75: 1, 2, 3, 4 fall in bins 0, 1, 2, 3 -> log 4
        ([1.0, 2.0, 3.0, 4.0], 4, math.log(4)),
        # 3 bins of width 1: counts (3, 0, 1) -> −(¾ log ¾ + ¼ log ¼) ≈ 0.5623
        ([1.0, 1.0, 1.0, 4.0], 3, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))),
        # one bin: everything together, entropy 0
        ([1.0, 5.0, 3.0], 1, 0.0),
        # a single observation
        ([2.0], 20, 0.0),
    ],
)
def test_price_entropy_by_hand(series, bins, expected):
    """§8.2: H = −Σ_b p_b log p_b over equal-width bins spanning [min, max]."""
    value = price_entropy(series, bins=bins)
    assert type(value) is float
    assert value == pytest.approx(expected, abs=1e-12)


def test_price_entropy_columns_are_independent():
    """§8.2 on a (T, M) series: one entropy per column, each over its own range."""
    series = np.array([[0.0, 1.0, 7.0], [0.0, 2.0, 7.0], [1.0, 3.0, 7.0], [1.0, 4.0, 7.0]])
    np.testing.assert_allclose(
        price_entropy(series, bins=4), [math.log(2), math.log(4), 0.0], atol=1e-12
    )


@pytest.mark.parametrize("bins", [1, 2, 7, 20, 50])
@pytest.mark.parametrize("length", [3, 40, 5000])
def test_price_entropy_matches_numpy_histogram(bins, length):
    """§8.2: the bincount kernel agrees with np.histogram (continuous data, no ties)."""
    rng = np.random.default_rng(bins * 1000 + length)
    series = rng.lognormal(size=(length, 3))
    expected = [_histogram_entropy(series[:, j], bins) for j in range(3)]
    np.testing.assert_allclose(price_entropy(series, bins=bins), expected, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(1, 60), elements=st.floats(-1e6, 1e6)), st.integers(1, 30))
def test_price_entropy_bounds(series, bins):
    """§8.2: 0 <= H <= log(min(bins, T))."""
    value = price_entropy(series, bins=bins)
    assert -1e-12 <= value <= math.log(min(bins, len(series))) + 1e-12


@settings(max_examples=30, deadline=None)
@given(st.floats(-1e6, 1e6), st.integers(1, 50), st.integers(1, 30))
def test_price_entropy_of_constant_series_is_zero(price, length, bins):
    """§8.2: a constant price is perfectly predictable."""
    assert price_entropy(np.full(length, price), bins=bins) == 0.0


@pytest.mark.parametrize("bins", [0, -3, 2.5, True])
def test_price_entropy_rejects_bad_bins(bins):
    with pytest.raises(ValueError, match="bins"):
        price_entropy([1.0, 2.0], bins=bins)


@pytest.mark.parametrize("prices", [[], [[[1.0]]], [1.0, np.inf]])
def test_price_series_rejected(prices):
    for fn in (price_entropy, volatility):
        with pytest.raises(ValueError, match="prices"):
            fn(prices)


# ----------------------------------------------------------------------- volatility §7.1


def test_volatility_by_hand():
    """§7.1: (1/T) Σ_t (P(t) − P̄)²."""
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; 5 / 4 = 1.25
    value = volatility([1.0, 2.0, 3.0, 4.0])
    assert type(value) is float
    assert value == pytest.approx(1.25)
    np.testing.assert_allclose(volatility([[1.0, 5.0], [3.0, 5.0]]), [1.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(1, 50), elements=st.floats(-1e3, 1e3)), st.floats(-1e3, 1e3))
def test_volatility_invariant_to_shift(series, shift):
    """§7.1: adding a constant to every price leaves the volatility unchanged."""
    assert volatility(series + shift) == pytest.approx(volatility(series), rel=1e-6, abs=1e-6)


# ----------------------------------------------------------------------- resilience §8.3


def test_resilience_by_hand():
    """§8.3: R = 1 / mean |P(t+1) − P(t)| over [shock_step, shock_step + window)."""
    prices = np.array([10.0, 10.0, 14.0, 12.0, 13.0, 13.0])
    # t = 1, 2, 3: |14 − 10| + |12 − 14| + |13 − 12| = 4 + 2 + 1 = 7; mean 7/3 -> R = 3/7
    value = resilience(prices, shock_step=1, window=3)
    assert type(value) is float
    assert value == pytest.approx(3.0 / 7.0)
    # from t = 3: |13 − 12| + |13 − 13| = 1; mean ½ -> R = 2
    assert resilience(prices, shock_step=3, window=2) == pytest.approx(2.0)
    two = np.stack([prices, np.full(6, 4.0)], axis=1)
    np.testing.assert_allclose(resilience(two, 1, 3), [3.0 / 7.0, np.inf])


def test_resilience_of_still_market_is_inf():
    """§8.3: no movement at all -> infinitely resilient (documented)."""
    assert resilience(np.ones(5), 0, 4) == math.inf


@pytest.mark.parametrize(
    ("shock_step", "window", "name"),
    [
        (-1, 2, "shock_step"),
        (5, 1, "shock_step"),
        (1.5, 1, "shock_step"),
        (0, 0, "window"),
        (2, 4, "window"),
        (0, 6, "window"),
    ],
)
def test_resilience_rejects_bad_window(shock_step, window, name):
    with pytest.raises(ValueError, match=name):
        resilience(np.arange(6.0), shock_step, window)


# --------------------------------------------------------------------------------- Gini


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 1.0, 1.0, 1.0], 0.0),
        # Σ_{i,k} |x_i − x_k| = 2·(1+2+3+1+2+1) = 20; 2 N² x̄ = 2·16·2.5 = 80 -> 0.25
        ([4.0, 1.0, 3.0, 2.0], 0.25),
        # one holds all of N = 4: (2·4 − 4 − 1)·1 / (4·1) = 3/4 = 1 − 1/N
        ([0.0, 0.0, 5.0, 0.0], 0.75),
        ([0.0, 0.0], 0.0),
        ([7.0], 0.0),
    ],
)
def test_gini_by_hand(values, expected):
    """Gini: Σ_i Σ_k |x_i − x_k| / (2 N² x̄)."""
    value = gini(values)
    assert type(value) is float
    assert value == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(1, 30), elements=st.floats(0.0, 1e6)), st.floats(1e-3, 1e3))
def test_gini_properties(values, scale):
    """Gini is in [0, 1), matches the pairwise definition and ignores the scale."""
    value = gini(values)
    assert 0.0 <= value < 1.0
    if values.sum() > 0:
        # N·Σx, not N²·x̄: x̄ of subnormal values can underflow to 0 (e.g. [5e-324, 0])
        pairwise = np.abs(values[:, None] - values[None, :]).sum() / (
            2 * len(values) * values.sum()
        )
        assert value == pytest.approx(pairwise, abs=1e-9)
        assert gini(values * scale) == pytest.approx(value, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.0, 1e6), st.integers(1, 30))
def test_gini_of_equal_values_is_zero(value, n):
    assert gini(np.full(n, value)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("values", [[1.0, -0.5], [], [[1.0, 2.0]], [np.nan]])
def test_gini_rejects_bad_values(values):
    with pytest.raises(ValueError, match="values"):
        gini(values)


# ------------------------------------------------------------------- reserve coverage


def test_reserve_coverage_by_hand():
    """R / R(S), with 1.0 where R(S) = 0."""
    # 50/100 = 0.5; R(S) = 0 -> 1.0; 3/2 = 1.5
    np.testing.assert_allclose(
        reserve_coverage([50.0, 0.0, 3.0], [100.0, 0.0, 2.0]), [0.5, 1.0, 1.5]
    )


def test_reserve_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="curve_reserve"):
        reserve_coverage([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="reserve"):
        reserve_coverage([-1.0], [1.0])
    with pytest.raises(ValueError, match="curve_reserve"):
        reserve_coverage([1.0], [-1.0])


# ---------------------------------------------------------------------- recovery time §9

SHOCK = np.array([0.0, 0.0, 5.0, 3.0, 1.5, 0.5, 0.2, 0.1, 0.0, 0.0])


@pytest.mark.parametrize(
    ("hold", "expected"),
    [
        # from t_s = 2, |P − 0| <= 1 is F F F T T T T T: the run starts 3 steps after t_s
        (1, 3),
        (3, 3),
        (5, 3),
        # only 5 in-band steps remain: a 6-step hold is never confirmed
        (6, None),
    ],
)
def test_recovery_time_by_hand(hold, expected):
    """§9 shock recovery: steps until |P − P*| <= band for `hold` consecutive steps."""
    assert recovery_time(SHOCK, reference=0.0, shock_step=2, band=1.0, hold=hold) == expected


def test_recovery_time_restarts_after_leaving_the_band():
    """§9: a run broken by an out-of-band step does not count."""
    prices = [5.0, 0.5, 0.5, 2.0, 0.5, 0.5, 0.5]
    # in band: F T T F T T T -> first run of 3 starts at step 4
    assert recovery_time(prices, 0.0, 0, band=1.0, hold=3) == 4
    assert recovery_time(prices, 0.0, 0, band=1.0, hold=2) == 1
    # already in band at the shock step: 0 (and the band edge counts as inside)
    assert recovery_time(prices, 0.0, 1, band=0.5, hold=2) == 0
    # the window after shock_step is shorter than hold
    assert recovery_time(prices, 0.0, 5, band=1.0, hold=3) is None


def test_recovery_time_is_max_over_assets():
    """§9 on (T, M): the slowest asset decides; None if any asset never recovers."""
    slow = np.stack([SHOCK, np.zeros(10)], axis=1)
    result = recovery_time(slow, reference=[0.0, 0.0], shock_step=2, band=1.0, hold=3)
    assert result == 3 and type(result) is int
    # per-asset reference and band: asset 1 is 10 away from its reference until the end
    never = np.stack([SHOCK, np.zeros(10)], axis=1)
    assert recovery_time(never, reference=[0.0, 10.0], shock_step=2, band=[1.0, 1.0]) is None
    assert recovery_time(never, [0.0, 10.0], 2, band=[1.0, 10.0], hold=3) == 3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"band": -0.1}, "band"),
        ({"band": [1.0, 1.0]}, "band"),
        ({"hold": 0}, "hold"),
        ({"hold": 2.0}, "hold"),
        ({"shock_step": 10}, "shock_step"),
        ({"shock_step": -1}, "shock_step"),
        ({"reference": [0.0, 0.0]}, "reference"),
    ],
)
def test_recovery_time_rejects_bad_input(kwargs, name):
    args = {"prices": SHOCK, "reference": 0.0, "shock_step": 2, "band": 1.0, **kwargs}
    with pytest.raises(ValueError, match=name):
        recovery_time(**args)


# ------------------------------------------------------------------------ utilisation §9


def test_utilisation_by_hand():
    """§9: U = Σ_ij min(H_ij, d_ij) / Σ_j min(C_j, Σ_i d_ij)."""
    holdings = [[2.0, 0.0], [1.0, 5.0]]
    demand = [[1.0, 1.0], [2.0, 3.0]]
    # used: min = [[1, 0], [1, 3]] -> 5; needed: Σ_i d = (3, 4)
    # C = (10, 2): min(C, (3, 4)) = (3, 2) -> 5 -> U = 1
    assert utilisation(holdings, demand, [10.0, 2.0]) == pytest.approx(1.0)
    # C = (10, 10): (3, 4) -> 7 -> U = 5/7
    assert utilisation(holdings, demand, [10.0, 10.0]) == pytest.approx(5.0 / 7.0)
    assert utilisation(holdings, np.zeros((2, 2)), [1.0, 1.0]) == 1.0


def test_utilisation_rejects_bad_input():
    with pytest.raises(ValueError, match="capacity"):
        utilisation(np.ones((2, 2)), np.ones((2, 2)), [1.0, 0.0])
    with pytest.raises(ValueError, match="capacity"):
        utilisation(np.ones((2, 2)), np.ones((2, 2)), [1.0])
    with pytest.raises(ValueError, match="demand"):
        utilisation(np.ones((2, 2)), np.ones((3, 2)), [1.0, 1.0])
    with pytest.raises(ValueError, match="demand"):
        utilisation(np.ones((2, 2)), -np.ones((2, 2)), [1.0, 1.0])
    with pytest.raises(ValueError, match="holdings"):
        utilisation(-np.ones((2, 2)), np.ones((2, 2)), [1.0, 1.0])
