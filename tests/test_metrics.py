"""Tests of mesa_econ.metrics: §7.1/§8/§9 formulas by hand, properties, reporters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mesa_econ.metrics import (
    drift,
    gini,
    hhi,
    level_variance,
    log_returns,
    pre_shock_band,
    price_entropy,
    recovery_time,
    reserve_coverage,
    resilience,
    shock_recovery,
    used_units,
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
    for fn in (price_entropy, level_variance, volatility, log_returns):
        with pytest.raises(ValueError, match="prices"):
            fn(prices)


# ------------------------------------------------------------------- level variance §7.1


def test_level_variance_by_hand():
    """§7.1: (1/T) Σ_t (P(t) − P̄)²."""
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; 5 / 4 = 1.25
    value = level_variance([1.0, 2.0, 3.0, 4.0])
    assert type(value) is float
    assert value == pytest.approx(1.25)
    np.testing.assert_allclose(level_variance([[1.0, 5.0], [3.0, 5.0]]), [1.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(1, 50), elements=st.floats(-1e3, 1e3)), st.floats(-1e3, 1e3))
def test_level_variance_invariant_to_shift(series, shift):
    """§7.1: adding a constant to every price leaves the level variance unchanged."""
    assert level_variance(series + shift) == pytest.approx(
        level_variance(series), rel=1e-6, abs=1e-6
    )


# ---------------------------------------------------------- volatility of log returns, drift

E = math.e
SAWTOOTH = [1.0, E, 1.0, E]  # log returns 1, −1, 1


def test_log_returns_by_hand():
    """r(t) = log(P(t+1)/P(t)): 2 → 4 → 1 gives log 2, log ¼."""
    np.testing.assert_allclose(log_returns([2.0, 4.0, 1.0]), [math.log(2), -math.log(4)])
    np.testing.assert_allclose(log_returns(SAWTOOTH), [1.0, -1.0, 1.0], atol=1e-15)
    assert log_returns(np.ones((5, 3))).shape == (4, 3)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        # returns 1, −1, 1: mean 1/3, squares 4/9 + 16/9 + 4/9 = 24/9, / (3 − 1) = 4/3
        (None, 2.0 / math.sqrt(3.0)),
        (3, 2.0 / math.sqrt(3.0)),
        # last two returns −1, 1: mean 0, squares 2, / (2 − 1) = 2
        (2, math.sqrt(2.0)),
    ],
)
def test_volatility_by_hand(window, expected):
    """σ = sample std (ddof=1) of the last `window` log returns."""
    value = volatility(SAWTOOTH, window=window)
    assert type(value) is float
    assert value == pytest.approx(expected)


def test_volatility_per_column():
    """(T, M) → (M,): a sawtooth, a constant price and steady 10% growth."""
    prices = np.stack([SAWTOOTH, np.full(4, 3.0), 2.0 * 1.1 ** np.arange(4)], axis=1)
    np.testing.assert_allclose(volatility(prices), [2.0 / math.sqrt(3.0), 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(volatility(prices, window=2), [math.sqrt(2.0), 0.0, 0.0], atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    arrays(float, st.tuples(st.integers(3, 40), st.integers(1, 3)), elements=st.floats(1e-3, 1e3)),
    st.floats(1e-3, 1e3),
)
def test_volatility_is_scale_free(prices, scale):
    """Log returns, hence volatility, ignore the unit of the price; σ matches np.std."""
    value = volatility(prices)
    np.testing.assert_allclose(volatility(prices * scale), value, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        value, np.diff(np.log(prices), axis=0).std(axis=0, ddof=1), rtol=1e-6, atol=1e-9
    )
    assert np.all(value >= 0.0)


@pytest.mark.parametrize(
    ("prices", "window", "name"),
    [
        ([1.0, 0.0, 2.0], None, "prices"),
        ([1.0, -2.0, 2.0], None, "prices"),
        ([1.0, 2.0], None, "prices"),  # one return: no sample std
        (SAWTOOTH, 1, "window"),
        (SAWTOOTH, 4, "window"),  # only 3 returns
        (SAWTOOTH, 2.0, "window"),
        (SAWTOOTH, True, "window"),
    ],
)
def test_volatility_rejects_bad_input(prices, window, name):
    with pytest.raises(ValueError, match=name):
        volatility(prices, window=window)


def test_log_returns_rejects_bad_prices():
    for prices in ([1.0], [1.0, 0.0], [[1.0, -1.0], [1.0, 1.0]]):
        with pytest.raises(ValueError, match="prices"):
            log_returns(prices)


def test_drift_by_hand():
    """(log x(T−1) − log x(0)) / (T − 1)."""
    # 2, 4, 8: log(8/2) / 2 = log 2
    value = drift([2.0, 4.0, 8.0])
    assert type(value) is float
    assert value == pytest.approx(math.log(2))
    # supply 100, 50, 100, 200: log(200/100) / 3, whatever the path between
    supply = np.array([[100.0, 5.0], [50.0, 5.0], [100.0, 5.0], [200.0, 5.0]])
    np.testing.assert_allclose(drift(supply), [math.log(2) / 3.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(2, 40), elements=st.floats(1e-3, 1e3)))
def test_drift_is_mean_log_return(series):
    assert drift(series) == pytest.approx(log_returns(series).mean(), abs=1e-9)


@pytest.mark.parametrize("series", [[1.0], [1.0, 0.0], [2.0, -1.0], [1.0, np.nan]])
def test_drift_rejects_bad_series(series):
    with pytest.raises(ValueError, match="series"):
        drift(series)


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
        if values[values > 0].min() * scale >= np.finfo(float).tiny:  # no subnormal rounding
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


# ------------------------------------------------------------------- shock recovery §9

# Pre-shock prices 1, 3, 1, 3 (mean 2, std ddof=1 = sqrt(4/3) = 2/√3); shock at step 4.
BEFORE = [1.0, 3.0, 1.0, 3.0]
QUOTED = np.array([*BEFORE, 10.0, 6.0, 4.0, 3.0, 2.5, 2.0, 2.0])
CURVE = np.array([*BEFORE, 6.0, 5.0, 4.0, 3.0, 2.0, 2.0, 2.5])


def test_pre_shock_band_by_hand():
    """§9: P* = mean of the window before t_s, band = width · std (ddof=1)."""
    reference, band = pre_shock_band(QUOTED, shock_step=4, window=4)
    assert type(reference) is float and type(band) is float
    assert reference == pytest.approx(2.0)
    assert band == pytest.approx(4.0 / math.sqrt(3.0))  # 2 · 2/√3
    # window 2 before step 4: 1, 3 -> mean 2, std √2; width 1
    assert pre_shock_band(QUOTED, 4, window=2, width=1.0) == pytest.approx((2.0, math.sqrt(2)))
    # per column; a flat pre-shock market gets the floor 1e-12·|P*|
    two = np.stack([QUOTED, np.full(11, 5.0)], axis=1)
    reference, band = pre_shock_band(two, 4, window=4)
    np.testing.assert_allclose(reference, [2.0, 5.0])
    np.testing.assert_allclose(band, [4.0 / math.sqrt(3.0), 5e-12])


def test_shock_recovery_by_hand():
    """§9: recovery of P into its pre-shock band; |P − f(S)| reported beside it."""
    result = shock_recovery(QUOTED, CURVE, shock_step=4, window=4, hold=2)
    # |P − 2| <= 2.309 from t_s: 10 F, 6 F, 4 T, 3 T, ... -> recovered 2 steps after t_s
    assert result["recovery_time"] == 2 and type(result["recovery_time"]) is int
    assert result["reference"] == pytest.approx(2.0)
    assert result["band"] == pytest.approx(4.0 / math.sqrt(3.0))
    assert result["hold"] == 2
    # |P − f(S)| from t_s: 4, 1, 0, 0, 0.5, 0, 0.5 -> peak 4; last 2 steps (0 + 0.5)/2
    assert result["peak_deviation"] == pytest.approx(4.0)
    assert result["final_deviation"] == pytest.approx(0.25)


def test_shock_recovery_flat_market_and_columns():
    """§9: a flat pre-shock price recovers only on returning to it exactly (floor band)."""
    flat = np.array([5.0, 5.0, 5.0, 5.0, 7.0, 5.0, 5.0, 6.0, 5.0, 5.0])
    result = shock_recovery(flat, flat, shock_step=4, window=4, hold=2)
    # in band: 7 F, 5 T, 5 T -> 1; P = f(S) throughout -> deviations 0
    assert result["recovery_time"] == 1
    assert result["peak_deviation"] == 0.0 and result["final_deviation"] == 0.0
    # hold 3: in band F T T F T T -> no run of 3 before the end -> None
    assert shock_recovery(flat, flat, 4, window=4, hold=3)["recovery_time"] is None
    # (T, M): the slowest asset decides; deviations per asset
    both = shock_recovery(
        np.stack([QUOTED[:10], flat], axis=1),
        np.stack([CURVE[:10], flat + 1.0], axis=1),
        4,
        window=4,
        hold=2,
    )
    assert both["recovery_time"] == 2
    np.testing.assert_allclose(both["peak_deviation"], [4.0, 1.0])
    # last 2 steps: asset 0 (|2.5 − 2| + |2 − 2|)/2 = 0.25; asset 1 always 1
    np.testing.assert_allclose(both["final_deviation"], [0.25, 1.0])


@settings(max_examples=60, deadline=None)
@given(
    arrays(float, st.integers(6, 40), elements=st.floats(1e-2, 1e3)),
    st.integers(2, 5),
    st.floats(0.0, 5.0),
)
def test_shock_recovery_properties(prices, window, width):
    """§9: the band is at least its floor; P == f(S) has zero deviation; a price back at
    P* from the shock on recovers at once; a recovery time fits in the series."""
    result = shock_recovery(prices, prices, window, window=window, width=width, hold=1)
    assert result["band"] >= 1e-12 * abs(result["reference"])
    assert result["peak_deviation"] == 0.0 and result["final_deviation"] == 0.0
    time = result["recovery_time"]
    assert time is None or 0 <= time <= len(prices) - 1 - window
    settled = prices.copy()
    settled[window:] = result["reference"]
    assert shock_recovery(settled, prices, window, window, width, hold=1)["recovery_time"] == 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"shock_step": 3}, "shock_step"),  # fewer than `window` prices before it
        ({"shock_step": 11}, "shock_step"),
        ({"window": 1}, "window"),
        ({"width": -1.0}, "width"),
        ({"hold": 0}, "hold"),
        ({"shock_step": 10, "hold": 2}, "hold"),  # one post-shock step left
        ({"curve_prices": CURVE[:5]}, "curve_prices"),
        ({"prices": [np.nan] * 11}, "prices"),
    ],
)
def test_shock_recovery_rejects_bad_input(kwargs, name):
    args = {"prices": QUOTED, "curve_prices": CURVE, "shock_step": 4, "window": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        shock_recovery(**args)


def test_pre_shock_band_rejects_bad_input():
    with pytest.raises(ValueError, match="width"):
        pre_shock_band(QUOTED, 4, window=4, width=np.nan)
    with pytest.raises(ValueError, match="window"):
        pre_shock_band(QUOTED, 4, window=2.5)
    with pytest.raises(ValueError, match="shock_step"):
        pre_shock_band(QUOTED, -1, window=2)


# ------------------------------------------------------------------------ utilisation §9

HOLDINGS = [[2.0, 0.0], [1.0, 5.0]]
DEMAND = [[1.0, 1.0], [2.0, 3.0]]


def test_used_units_by_hand():
    """§9: used_ij = min(H_ij, d_ij)·min(1, C_j / Σ_k min(H_kj, d_kj))."""
    # min(H, d) = [[1, 0], [1, 3]]; column sums (2, 3)
    # C = (10, 2): asset 0 under capacity (factor 1); asset 1 scaled by 2/3 -> [0, 2]
    np.testing.assert_allclose(used_units(HOLDINGS, DEMAND, [10.0, 2.0]), [[1.0, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(used_units(HOLDINGS, DEMAND, [10.0, 10.0]), [[1.0, 0.0], [1.0, 3.0]])
    # nobody holds asset 1: used 0 there, not NaN
    np.testing.assert_array_equal(used_units([[1.0, 0.0]], [[2.0, 4.0]], [1.0, 1.0]), [[1.0, 0.0]])


def test_utilisation_by_hand():
    """§9: U = Σ_ij used_ij / Σ_j min(C_j, Σ_i d_ij)."""
    # C = (10, 2): used 1 + 1 + 0 + 2 = 4; min(C, Σd = (3, 4)) = (3, 2) -> 5 -> U = 4/5
    assert utilisation(HOLDINGS, DEMAND, [10.0, 2.0]) == pytest.approx(0.8)
    # C = (10, 10): used 5; (3, 4) -> 7 -> U = 5/7
    assert utilisation(HOLDINGS, DEMAND, [10.0, 10.0]) == pytest.approx(5.0 / 7.0)
    # two agents each holding and needing 3 of a resource of capacity 4: the old
    # Σ min(H, d) / Σ min(C, Σd) gave 6/4; with capacity binding, 4/4
    assert utilisation([[3.0], [3.0]], [[3.0], [3.0]], [4.0]) == 1.0
    assert utilisation(HOLDINGS, np.zeros((2, 2)), [1.0, 1.0]) == 1.0


_RESOURCE = arrays(float, (4, 3), elements=st.floats(0.0, 1e3))


@settings(max_examples=100, deadline=None)
@given(_RESOURCE, _RESOURCE, arrays(float, (3,), elements=st.floats(1e-3, 1e4)))
def test_utilisation_bounded_and_capacity_respected(holdings, demand, capacity):
    """§9: 0 <= U <= 1; used_ij <= d_ij; Σ_i used_ij <= C_j."""
    value = utilisation(holdings, demand, capacity)
    assert 0.0 <= value <= 1.0
    used = used_units(holdings, demand, capacity)
    assert np.all(used >= 0.0)
    assert np.all(used <= demand)
    assert np.all(used.sum(axis=0) <= capacity * (1 + 1e-12))
    achievable = np.minimum(capacity, demand.sum(axis=0)).sum()
    if achievable > 0:  # U is the used units' share of what could be used
        assert used.sum() == pytest.approx(value * achievable, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(_RESOURCE, arrays(float, (3,), elements=st.floats(0.0, 1e3)))
def test_utilisation_is_one_when_needs_met_within_capacity(demand, headroom):
    """§9: every agent holds exactly its need and Σ needs <= C -> U = 1."""
    capacity = demand.sum(axis=0) + headroom + 1e-3
    assert utilisation(demand, demand, capacity) == 1.0
    np.testing.assert_array_equal(used_units(demand, demand, capacity), demand)


def test_utilisation_rejects_bad_input():
    for fn in (utilisation, used_units):
        with pytest.raises(ValueError, match="capacity"):
            fn(np.ones((2, 2)), np.ones((2, 2)), [1.0, 0.0])
        with pytest.raises(ValueError, match="capacity"):
            fn(np.ones((2, 2)), np.ones((2, 2)), [1.0])
        with pytest.raises(ValueError, match="demand"):
            fn(np.ones((2, 2)), np.ones((3, 2)), [1.0, 1.0])
        with pytest.raises(ValueError, match="demand"):
            fn(np.ones((2, 2)), -np.ones((2, 2)), [1.0, 1.0])
        with pytest.raises(ValueError, match="holdings"):
            fn(-np.ones((2, 2)), np.ones((2, 2)), [1.0, 1.0])
        with pytest.raises(ValueError, match="holdings"):
            fn(np.ones(2), np.ones((2, 2)), [1.0, 1.0])


# ----------------------------------------------------------------- public kernels
def test_reporters_import_only_public_metric_kernels():
    """reporters.py shares metrics' kernels through public, documented names (issue 10)."""
    import ast
    import inspect

    from mesa_econ import metrics, reporters

    tree = ast.parse(inspect.getsource(reporters))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and node.module == "mesa_econ.metrics" for alias in node.names]
    assert names and not [n for n in names if n.startswith("_")], names
    for name in ("hhi_kernel", "gini_kernel", "gini_weights", "entropy_kernel",
                 "bin_counts", "clogc_table", "CLOGC_MAX"):
        assert name in metrics.__all__, name
        if callable(getattr(metrics, name)):
            assert getattr(metrics, name).__doc__, name


def test_metric_kernels_by_hand():
    """HHI of (3, 1) / 4 = 0.625; Gini of (0, 0, 4) = 2/3; entropy of a series split 2/2
    over two bins = log 2; c·log c table at c = 4 is 4 log 4."""
    from mesa_econ.metrics import (
        bin_counts,
        clogc_table,
        entropy_kernel,
        gini_kernel,
        gini_weights,
        hhi_kernel,
    )

    h = np.array([[3.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(hhi_kernel(h, np.array([4.0, 0.0])), [0.625, 0.0])
    assert gini_kernel(np.array([0.0, 4.0, 0.0]), gini_weights(3)) == pytest.approx(2 / 3)
    series = np.array([[1.0], [1.0], [3.0], [3.0]])
    assert bin_counts(series, 2).tolist() == [[2, 2]]
    assert entropy_kernel(series, 2)[0] == pytest.approx(math.log(2.0))
    assert clogc_table(4)[4] == pytest.approx(4 * math.log(4))
    with pytest.raises(ValueError):
        clogc_table(4)[0] = 1.0  # the shared table is read-only


@settings(max_examples=40, deadline=None)
@given(values=arrays(np.float64, st.integers(1, 30), elements=st.floats(0, 1e6)))
def test_gini_kernel_equals_the_checked_gini(values):
    from mesa_econ.metrics import gini_kernel, gini_weights

    assert gini_kernel(values, gini_weights(values.shape[0])) == gini(values)
