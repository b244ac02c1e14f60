"""Tests for mesa_econ.curves (§3.1 bonding curves).

Three layers: equations against hand-computed values, properties with hypothesis
(reserve = ∫ price, round trips, inverse, monotonicity, finiteness, vectorisation) and
the error contract (every bad parameter or input raises a ValueError that names it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from mesa_econ.curves import (
    CURVES,
    BondingCurve,
    ExponentialCurve,
    LinearCurve,
    LogarithmicCurve,
    PowerCurve,
    SigmoidCurve,
    SupplyQuote,
    make_curve,
)

E = math.e
LN2, LN3 = math.log(2.0), math.log(3.0)

# Parameter ranges the properties draw from, per kind: name -> (low, high).
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "linear": {"slope": (0.0, 10.0), "intercept": (0.0, 10.0)},
    "logarithmic": {"k": (0.01, 100.0)},
    "exponential": {"a": (0.01, 100.0), "k": (1e-4, 1.0)},
    "sigmoid": {"height": (0.1, 100.0), "midpoint": (0.0, 1000.0), "steepness": (1e-3, 1.0)},
    "power": {"a": (0.01, 10.0), "n": (0.0, 4.0)},
}
# One fixed curve per kind with array parameters (M = 3), for vectorisation and quad checks.
ARRAY_PARAMS: dict[str, dict[str, list[float]]] = {
    "linear": {"slope": [0.5, 0.0, 2.0], "intercept": [2.0, 1.0, 0.0]},
    "logarithmic": {"k": [2.0, 0.1, 30.0]},
    "exponential": {"a": [2.0, 0.5, 1.0], "k": [LN2, 0.01, 1e-3]},
    "sigmoid": {
        "height": [2.0, 1.0, 50.0],
        "midpoint": [1.0, 0.0, 300.0],
        "steepness": [LN3, 0.5, 0.02],
    },
    "power": {"a": [3.0, 1.5, 0.01], "n": [2.0, 0.5, 0.0]},
}
REL = 1e-9  # relative tolerance of the properties (the closed forms are accurate to ~1e-14)
PROPS = settings(max_examples=150, deadline=None)


def close(x: float, y: float, scale: float = 0.0, rel: float = REL) -> bool:
    return abs(x - y) <= rel * max(abs(x), abs(y), scale) + 1e-300


@st.composite
def curve_and_cap(draw: st.DrawFn) -> tuple[BondingCurve, float]:
    """A curve with drawn scalar parameters and a supply cap well inside its domain."""
    kind = draw(st.sampled_from(list(RANGES)))
    # no subnormal parameters: an intercept of 5e-324 prices 187.5 tokens at 9.3e-322,
    # which carries too few bits for supply_for_deposit to recover the trade
    params = {name: draw(st.floats(lo, hi, allow_subnormal=False))
              for name, (lo, hi) in RANGES[kind].items()}
    if kind == "linear" and params["slope"] == params["intercept"] == 0.0:
        params["intercept"] = 1.0
    curve = make_curve(kind, **params)
    return curve, float(min(1000.0, 0.9 * curve.max_supply))


fractions = st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-9, 1.0))


@st.composite
def state_and_trade(draw: st.DrawFn) -> tuple[BondingCurve, float, float]:
    """(curve, supply S, trade Δ) with 0 <= S + Δ <= cap."""
    curve, cap = draw(curve_and_cap())
    supply = draw(fractions) * cap
    buy = draw(st.booleans())
    delta = draw(fractions) * (cap - supply) if buy else -draw(fractions) * supply
    return curve, supply, delta


# --- §3.1 equations against hand-computed values ------------------------------------------


def test_linear_hand_values():
    """§3.1 linear, m=0.5, b=2, S=3."""
    c = LinearCurve(slope=0.5, intercept=2.0)
    assert c.price(3.0) == pytest.approx(3.5)  # 0.5·3 + 2
    assert c.derivative(3.0) == pytest.approx(0.5)  # m
    assert c.reserve(3.0) == pytest.approx(8.25)  # 2·3 + 0.25·9
    assert c.cost(3.0, 2.0) == pytest.approx(8.0)  # R(5) - R(3) = 16.25 - 8.25 = 2·(2 + 0.5·4)
    assert c.supply_for_deposit(3.0, 8.0) == pytest.approx(2.0)
    assert c.supply_for_deposit(3.0, -8.25) == pytest.approx(-3.0)  # withdraw the whole reserve
    assert c.supply_at_reserve(16.25) == pytest.approx(5.0)
    flat = LinearCurve(slope=0.0, intercept=4.0)  # m = 0: constant price, Δ = A / b
    assert flat.supply_for_deposit(10.0, 6.0) == pytest.approx(1.5)


def test_logarithmic_hand_values():
    """§3.1 logarithmic, k=2: R(S) = 2[(S+1)ln(S+1) - S]."""
    c = LogarithmicCurve(k=2.0)
    assert c.price(E - 1) == pytest.approx(2.0)  # 2·ln e
    assert c.derivative(3.0) == pytest.approx(0.5)  # 2 / (3 + 1)
    assert c.reserve(E - 1) == pytest.approx(2.0)  # 2[e·1 - (e - 1)] = 2
    assert c.reserve(3.0) == pytest.approx(2 * (4 * math.log(4) - 3))  # = 5.0903548889...
    # S + Δ = e² - 1: R = 2[e²·2 - (e² - 1)] = 2(e² + 1); cost = 2(e² + 1) - 2 = 2e²
    assert c.cost(E - 1, E**2 - E) == pytest.approx(2 * E**2)
    assert c.supply_for_deposit(E - 1, 2 * E**2) == pytest.approx(E**2 - E)
    assert c.supply_at_reserve(2.0) == pytest.approx(E - 1)
    assert c.supply_at_reserve(2e-14) == pytest.approx(1.4142135e-7, rel=1e-6)  # R ≈ kS²/2


@pytest.mark.parametrize("supply", [1e-8, 5e-4, 0.000999, 0.001001, 0.01])
def test_logarithmic_reserve_near_zero(supply):
    """§3.1: R(S) = k[(S+1)ln(S+1) - S] = k Σ_{n>=2} (-1)^n Sⁿ / (n(n-1)), no cancellation."""
    series = math.fsum((-1) ** n * supply**n / (n * (n - 1)) for n in range(2, 40))
    assert LogarithmicCurve(k=3.0).reserve(supply) == pytest.approx(3.0 * series, rel=1e-13, abs=0)


@pytest.mark.parametrize("kind", list(CURVES))
@pytest.mark.parametrize("supply", [0.0, 1e-3, 5.0, 400.0])
def test_deposit_sign_and_zero(kind, supply):
    """§3.1 inverse: a zero deposit mints exactly nothing; Δ has the sign of the amount."""
    curve = make_curve(kind, **ARRAY_PARAMS[kind])
    assert np.all(curve.supply_for_deposit(supply, 0.0) == 0.0)
    assert np.all(curve.supply_for_deposit(supply, 1e-9) > 0.0)
    if supply > 0:
        assert np.all(curve.supply_for_deposit(supply, -1e-9 * curve.reserve(supply)) < 0.0)


def test_exponential_hand_values():
    """§3.1 exponential, a=2, k=ln 2, so f(S) = 2·2^S."""
    c = ExponentialCurve(a=2.0, k=LN2)
    assert c.price(3.0) == pytest.approx(16.0)  # 2·2³
    assert c.derivative(3.0) == pytest.approx(16 * LN2)
    assert c.reserve(3.0) == pytest.approx(14 / LN2)  # (2/ln2)(2³ - 1)
    assert c.cost(3.0, 1.0) == pytest.approx(16 / LN2)  # (2/ln2)·2³·(2 - 1)
    assert c.cost(3.0, -3.0) == pytest.approx(-14 / LN2)  # sell everything: -R(3)
    assert ExponentialCurve(k=1.0).supply_for_deposit(630.0, -np.expm1(630.0)) == -630.0
    assert c.supply_for_deposit(3.0, 16 / LN2) == pytest.approx(1.0)
    assert c.supply_at_reserve(14 / LN2) == pytest.approx(3.0)
    # max supply: k·S + ln a + |ln k| <= 700
    assert c.max_supply == pytest.approx((700 - LN2 - abs(math.log(LN2))) / LN2)


def test_sigmoid_hand_values():
    """§3.1 sigmoid, L=2, s0=1, k=ln 3: f(0) = 2/(1+3), f(1) = 1, f(2) = 2/(1+1/3)."""
    c = SigmoidCurve(height=2.0, midpoint=1.0, steepness=LN3)
    np.testing.assert_allclose(c.price([0.0, 1.0, 2.0]), [0.5, 1.0, 1.5])
    assert c.derivative(1.0) == pytest.approx(2 * LN3 / 4)  # L k σ(0)(1 - σ(0))
    # R(2) = (2/ln3)[softplus(ln3) - softplus(-ln3)] = (2/ln3)[ln 4 - ln(4/3)] = 2
    assert c.reserve(2.0) == pytest.approx(2.0)
    r1 = 2 / LN3 * math.log(1.5)  # (2/ln3)[ln 2 - ln(4/3)]
    assert c.reserve(1.0) == pytest.approx(r1)
    assert c.cost(1.0, 1.0) == pytest.approx(2.0 - r1)
    assert c.supply_for_deposit(1.0, 2.0 - r1) == pytest.approx(1.0)
    assert c.supply_at_reserve(2.0) == pytest.approx(2.0)


def test_power_hand_values():
    """§3.1 power (Bancor), a=3, n=2: f = 3S², R = S³, reserve ratio 1/3."""
    c = PowerCurve(a=3.0, n=2.0)
    assert c.price(2.0) == pytest.approx(12.0)  # 3·4
    assert c.derivative(2.0) == pytest.approx(12.0)  # 3·2·2
    assert c.reserve(2.0) == pytest.approx(8.0)  # 3·8/3
    assert c.reserve(2.0) == pytest.approx(c.price(2.0) * 2.0 / 3)  # R = r·S·f(S)
    assert c.cost(2.0, 1.0) == pytest.approx(19.0)  # 27 - 8
    assert c.supply_for_deposit(2.0, 19.0) == pytest.approx(1.0)
    assert c.supply_at_reserve(27.0) == pytest.approx(3.0)
    sqrt_curve = PowerCurve(a=1.5, n=0.5)  # f(4) = 1.5·2, R(4) = 1.5·8/1.5
    assert sqrt_curve.price(4.0) == pytest.approx(3.0)
    assert sqrt_curve.reserve(4.0) == pytest.approx(8.0)
    const = PowerCurve(a=3.0, n=0.0)  # n = 0: constant price a, f' = 0 even at S = 0
    assert const.price(0.0) == 3.0 and const.derivative(0.0) == 0.0
    assert PowerCurve(a=3.0, n=2.0).derivative(0.0) == 0.0


@pytest.mark.parametrize("kind", list(CURVES))
@pytest.mark.parametrize("supply", [0.0, 0.7, 3.0, 250.0])
def test_reserve_is_integral_of_price(kind, supply):
    """§3.1: R(S) = ∫_0^S f(s) ds, checked with adaptive quadrature per asset."""
    curve = make_curve(kind, **ARRAY_PARAMS[kind])
    reserve = curve.reserve(supply)
    for j in range(3):
        expected, _ = quad(
            lambda s, j=j: curve.price(s)[j], 0.0, supply, epsabs=1e-13, epsrel=1e-11, limit=200
        )
        assert reserve[j] == pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", list(CURVES))
def test_derivative_matches_finite_difference(kind):
    """§3.1: derivative is df/dS (central difference, h = 1e-5)."""
    curve = make_curve(kind, **ARRAY_PARAMS[kind])
    s = np.array([0.5, 2.0, 350.0])
    numeric = (curve.price(s + 1e-5) - curve.price(s - 1e-5)) / 2e-5
    np.testing.assert_allclose(curve.derivative(s), numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("kind", list(CURVES))
def test_small_trade_on_large_supply_is_accurate(kind):
    """§3.1 numerics: cost and its inverse stay exact to rounding when Δ ≪ S."""
    curve = make_curve(kind, **ARRAY_PARAMS[kind])
    s, delta = np.array([200.0, 400.0, 600.0]), 1e-7
    # second-order expansion of ∫_S^{S+Δ} f = f(S)Δ + f'(S)Δ²/2 (error O(Δ³ f''))
    expansion = curve.price(s) * delta + curve.derivative(s) * delta**2 / 2
    np.testing.assert_allclose(curve.cost(s, delta), expansion, rtol=1e-12)
    np.testing.assert_allclose(curve.supply_for_deposit(s, expansion), delta, rtol=1e-10)
    np.testing.assert_allclose(curve.average_price(s, 0.0), curve.price(s))


# --- properties ---------------------------------------------------------------------------


@PROPS
@given(state_and_trade())
def test_average_price_lies_between_end_prices(case):
    """§3.1: (R(S+Δ) - R(S))/Δ lies between f(S) and f(S+Δ) (mean value of ∫ f)."""
    curve, s, d = case
    avg = float(curve.average_price(s, d))
    lo, hi = sorted([float(curve.price(s)), float(curve.price(s + d))])
    assert np.isfinite(avg)
    assert lo * (1 - REL) - 1e-12 <= avg <= hi * (1 + REL) + 1e-12


@PROPS
@given(state_and_trade())
def test_round_trip_costs_nothing(case):
    """§3.1: cost(S, Δ) + cost(S+Δ, -Δ) = 0: buying and selling back along the curve."""
    curve, s, d = case
    there, back = float(curve.cost(s, d)), float(curve.cost(s + d, -d))
    assert np.isfinite(there) and np.isfinite(back)
    assert close(there, -back, scale=float(curve.reserve(s + max(d, 0.0))) * 1e-3)


@PROPS
@given(curve_and_cap(), fractions, fractions, st.booleans())
def test_supply_for_deposit_inverts_cost(case, frac_s, frac_a, deposit):
    """§3.1: cost(S, supply_for_deposit(S, A)) = A for deposits and withdrawals."""
    curve, cap = case
    s = frac_s * cap
    reserve = float(curve.reserve(s))
    amount = frac_a * (float(curve.reserve(cap)) - reserve) if deposit else -frac_a * reserve
    delta = float(curve.supply_for_deposit(s, amount))
    assert np.isfinite(delta) and delta >= -s
    assert close(float(curve.cost(s, delta)), amount, scale=1e-3 * reserve)


@PROPS
@given(state_and_trade())
def test_deposit_of_cost_returns_the_trade(case):
    """§3.1: supply_for_deposit(S, cost(S, Δ)) = Δ."""
    curve, s, d = case
    c = float(curve.cost(s, d))
    back = float(curve.supply_for_deposit(s, c))
    # c pins Δ down only to its rounding: δΔ ≈ eps·(|c| + R(S)) / f at the low end
    low_price = float(curve.price(min(s, s + d)))
    slack = 1e-12 * (abs(c) + float(curve.reserve(s))) / low_price if low_price > 0 else math.inf
    assert abs(back - d) <= REL * max(abs(d), s) + slack


@PROPS
@given(curve_and_cap(), st.lists(fractions, min_size=2, max_size=2), fractions)
def test_average_price_nondecreasing_in_delta(case, fracs, frac_s):
    """§3.1: for nondecreasing f the average price of a larger trade is not lower."""
    curve, cap = case
    s = frac_s * cap
    d1, d2 = sorted(f * (cap - s) - g * s for f, g in zip(fracs, fracs[::-1], strict=True))
    a1, a2 = curve.average_price(s, [d1, d2])
    assert a1 <= a2 * (1 + REL) + 1e-12


@PROPS
@given(curve_and_cap(), st.lists(fractions, min_size=2, max_size=8))
def test_price_nonnegative_nondecreasing_and_finite(case, fracs):
    """§3.1: f >= 0, f' >= 0, f nondecreasing, R >= 0; no NaN or inf anywhere."""
    curve, cap = case
    s = np.sort(np.array(fracs) * cap)
    s = s[(s > 0) | (curve.params.get("n", 1.0) >= 1)]  # f'(0) is infinite for n < 1
    for values in (curve.price(s), curve.derivative(s), curve.reserve(s)):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(np.diff(curve.price(s)) >= -1e-12 * curve.price(s)[1:])


@pytest.mark.parametrize("kind", list(CURVES))
def test_vectorised_equals_elementwise(kind):
    """Parameters of shape (M,) and supplies of shape (2, M) match per-asset scalar curves."""
    curve = make_curve(kind, **ARRAY_PARAMS[kind])
    s = np.array([[0.0, 2.5, 40.0], [7.0, 0.3, 500.0]])
    d = np.array([[1.0, -0.5, 3.0], [-7.0, 0.0, -100.0]])
    amount = np.array([[1.0, -0.1, 2.0], [-5.0, 0.0, 1e3]])
    for j in range(3):
        single = make_curve(kind, **{k: v[j] for k, v in ARRAY_PARAMS[kind].items()})
        for method, args in [
            ("price", (s,)),
            ("reserve", (s,)),
            ("cost", (s, d)),
            ("average_price", (s, d)),
            ("supply_for_deposit", (s, amount)),
            ("derivative", (s + 1.0,)),
        ]:
            full = getattr(curve, method)(*args)
            assert full.shape == (2, 3)
            for i in range(2):
                one = getattr(single, method)(*(a[i, j] for a in args))
                assert full[i, j] == pytest.approx(float(one), rel=1e-13, abs=1e-300)


def test_scalar_supply_broadcasts_against_array_parameters():
    """A scalar supply is evaluated for every asset of an (M,) curve."""
    curve = make_curve("linear", n_assets=3, slope=[1.0, 2.0, 3.0], intercept=1.0)
    np.testing.assert_allclose(curve.price(2.0), [3.0, 5.0, 7.0])
    assert curve.params["intercept"].shape == (3,)


# --- error contract ------------------------------------------------------------------------

BAD_VALUES = {  # per parameter: values outside its valid range
    ("linear", "slope"): [-1.0],
    ("linear", "intercept"): [-0.5],
    ("logarithmic", "k"): [0.0, -2.0],
    ("exponential", "a"): [0.0, -1.0],
    ("exponential", "k"): [0.0, -1.0],
    ("sigmoid", "height"): [0.0, -1.0],
    ("sigmoid", "midpoint"): [-1.0],
    ("sigmoid", "steepness"): [0.0, -0.1],
    ("power", "a"): [0.0, -3.0],
    ("power", "n"): [-0.5],
}
COMMON_BAD = [math.nan, math.inf, -math.inf, [[1.0, 2.0]], "abc", []]
BAD_CASES = [
    (kind, name, bad) for (kind, name), values in BAD_VALUES.items() for bad in values + COMMON_BAD
]


@pytest.mark.parametrize(("kind", "name", "bad"), BAD_CASES)
def test_invalid_parameter_names_itself(kind, name, bad):
    """Each bad parameter raises ValueError naming the curve, the parameter and the range."""
    with pytest.raises(ValueError, match=rf"{kind} curve: {name}=.*expected a finite real"):
        make_curve(kind, **{name: bad})
    with pytest.raises(ValueError, match=rf"{name}="):
        CURVES[kind](**{name: bad})


def test_exponential_parameter_message_matches_spec():
    with pytest.raises(
        ValueError,
        match=r"exponential curve: k=-1.0 is invalid: expected a "
        r"finite real > 0",
    ):
        ExponentialCurve(k=-1.0)
    # ln(1e303) + |ln 0.001| = 697.7 + 6.9 > 700: not even S = 0 is representable
    with pytest.raises(ValueError, match=r"a=1e\+303 .*ln a \+ \|ln k\|"):
        ExponentialCurve(a=1e303, k=0.001)
    assert ExponentialCurve(a=1e300, k=0.001).max_supply == pytest.approx(
        (700 - math.log(1e300) + math.log(0.001)) / 0.001
    )


def test_linear_needs_slope_or_intercept():
    with pytest.raises(ValueError, match=r"linear curve: slope=0.0 .*intercept"):
        LinearCurve(slope=0.0, intercept=0.0)
    with pytest.raises(ValueError, match="slope"):
        LinearCurve(slope=[1.0, 0.0], intercept=[0.0, 0.0])


def test_mismatched_parameter_lengths():
    with pytest.raises(ValueError, match="parameter shapes"):
        ExponentialCurve(a=[1.0, 2.0], k=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="do not broadcast"):
        ExponentialCurve(a=[1.0, 2.0]).price([1.0, 2.0, 3.0])


@pytest.mark.parametrize("kind", list(CURVES))
@pytest.mark.parametrize("bad", [-1.0, -1e-12, math.nan, math.inf])
def test_invalid_supply_raises(kind, bad):
    """Negative, NaN or infinite supply → ValueError naming `supply` and the range [0, ...]."""
    curve = make_curve(kind)
    for method, args in [
        ("price", (bad,)),
        ("reserve", (bad,)),
        ("cost", (bad, 1.0)),
        ("supply_for_deposit", (bad, 1.0)),
        ("derivative", ([1.0, bad],)),
    ]:
        with pytest.raises(
            ValueError,
            match=rf"{kind} curve: supply=.* expected a finite "
            r"real in \[0, ",
        ):
            getattr(curve, method)(*args)


@pytest.mark.parametrize("kind", list(CURVES))
def test_trades_beyond_the_domain_raise(kind):
    """Selling more than the supply, withdrawing more than the reserve, or a non-finite input."""
    curve = make_curve(kind)
    with pytest.raises(ValueError, match=r"supply \+ delta="):
        curve.cost(5.0, -5.5)
    with pytest.raises(ValueError, match=r"amount=.*-reserve\(supply\)"):
        curve.supply_for_deposit(5.0, -1.01 * float(curve.reserve(5.0)) - 1e-9)
    with pytest.raises(ValueError, match="delta="):
        curve.cost(5.0, math.nan)
    with pytest.raises(ValueError, match="amount="):
        curve.supply_for_deposit(5.0, math.inf)
    with pytest.raises(ValueError, match="reserve="):
        curve.supply_at_reserve(-1.0)
    assert curve.cost(5.0, -5.0) == pytest.approx(-curve.reserve(5.0))


def test_exponential_overflow_raises_not_inf():
    """exp(k S) beyond float64 → ValueError naming the curve, k, the supply and the limit."""
    curve = ExponentialCurve(a=1.0, k=1.0)
    msg = r"exponential curve: supply=800.0 .*\[0, 700\].*k=1"
    for method, args in [
        ("price", (800.0,)),
        ("reserve", (800.0,)),
        ("derivative", (800.0,)),
        ("cost", (0.0, 800.0)),
        ("average_price", (0.0, 800.0)),
    ]:
        with pytest.raises(ValueError, match=msg.replace("supply=", r"supply( \+ delta)?=")):
            getattr(curve, method)(*args)
    with pytest.raises(ValueError, match=r"supply after the deposit=.*k\*S"):
        curve.supply_for_deposit(10.0, 1e308)
    assert np.isfinite(curve.price(700.0))  # the limit itself is still representable


def test_other_overflow_raises_not_inf():
    """Any result beyond float64 → ValueError, never inf (here m S²/2 and a S^(n+1))."""
    with pytest.raises(ValueError, match="linear curve: reserve overflows"):
        LinearCurve(slope=10.0).reserve(1e160)
    with pytest.raises(ValueError, match="power curve: price overflows"):
        PowerCurve(a=1.0, n=4.0).price(1e100)


def test_power_derivative_at_zero_for_root_curves():
    """f'(0) = a n 0^(n-1) is infinite for 0 < n < 1: ValueError, not inf."""
    with pytest.raises(ValueError, match=r"supply=0.0 .*unbounded"):
        PowerCurve(a=1.0, n=0.5).derivative(0.0)


def test_make_curve_contract():
    """make_curve: kinds, parameter names, n_assets broadcasting and lengths."""
    with pytest.raises(ValueError, match=r"'cubic'.*'linear', 'logarithmic', 'exponential'"):
        make_curve("cubic")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['b'\].*\['a', 'k'\]"):
        make_curve("exponential", b=1.0)
    with pytest.raises(ValueError, match=r"k=\[0.1, 0.2\] .*n_assets=3"):
        make_curve("exponential", n_assets=3, k=[0.1, 0.2])
    with pytest.raises(ValueError, match="n_assets=0"):
        make_curve("linear", n_assets=0)
    curve = make_curve("sigmoid", n_assets=4, height=[1.0, 2.0, 3.0, 4.0])
    assert {k: v.shape for k, v in curve.params.items()} == dict.fromkeys(curve.params, (4,))
    assert curve.params["midpoint"].tolist() == [1000.0] * 4  # default broadcast
    assert curve.kind == "sigmoid" and isinstance(curve, SigmoidCurve)
    assert make_curve("power").params == {"a": 0.01, "n": 1.0}
    assert repr(make_curve("logarithmic", k=2.0)) == "LogarithmicCurve(k=2.0)"


# --- the market step's fast path: SupplyQuote ---------------------------------------------


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to the last bit (sign of zero included), with the same dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _curve_of(kind: str, m: int) -> BondingCurve:
    """ARRAY_PARAMS' curve of this kind, its parameters repeated to M assets."""
    return make_curve(kind, **{k: np.resize(v, m) for k, v in ARRAY_PARAMS[kind].items()})


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(list(ARRAY_PARAMS)), m=st.sampled_from([1, 3, 20]),
       seed=st.integers(0, 2**32 - 1), zeros=st.booleans())
def test_supply_quote_equals_the_public_methods_bit_for_bit(kind, m, seed, zeros):
    """cost, average price and spot price from a SupplyQuote are the public methods' numbers
    (M = 20 takes the numpy branch of the checks), with f(S) given or computed."""
    rng = np.random.default_rng(seed)
    curve = _curve_of(kind, m)
    cap = np.minimum(1000.0, 0.9 * curve.max_supply)
    supply = rng.uniform(0.0, 1.0, m) * cap
    buy = rng.random(m) < 0.5
    delta = np.where(buy, rng.uniform(0.0, 1.0, m) * (cap - supply),
                     -rng.uniform(0.0, 1.0, m) * supply)
    if zeros:  # some assets do not trade: the average price there is f(S)
        delta[rng.random(m) < 0.5] = 0.0
    for quote in (SupplyQuote(curve, supply), SupplyQuote(curve, supply, curve.price(supply))):
        cost = quote.cost(delta)
        assert _same_bits(cost, curve.cost(supply, delta))
        assert _same_bits(quote.average_price(delta, cost), curve.average_price(supply, delta))
        assert _same_bits(quote.spot, curve.price(supply))


def _outcome(call) -> tuple[str, object]:
    """("error", message) if ``call()`` raises ValueError, else ("value", its bytes)."""
    try:
        return "value", call().tobytes()
    except ValueError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("kind", list(CURVES))
@pytest.mark.parametrize("m", [3, 20])
def test_supply_quote_raises_what_the_public_methods_raise(kind, m):
    """Inputs outside the domain, non-finite trades and overflowing results give the public
    methods' errors (or, where those accept the input, their values)."""
    curve = _curve_of(kind, m)
    supply = np.full(m, 5.0)
    errors = 0
    for bad in (-5.5, math.nan, math.inf, 1e300):  # oversold, NaN, inf, beyond float64/limit
        delta = np.zeros(m)
        delta[0] = bad
        fast = _outcome(lambda d=delta: SupplyQuote(curve, supply).cost(d))
        assert fast == _outcome(lambda d=delta: curve.cost(supply, d))
        errors += fast[0] == "error"
    assert errors >= 3
    bad_supply = supply.copy()
    bad_supply[2] = -1.0
    quote = SupplyQuote(curve, bad_supply)
    assert _outcome(lambda: quote.cost(np.zeros(m))) \
        == _outcome(lambda: curve.cost(bad_supply, np.zeros(m)))
    assert _outcome(lambda: quote.spot) == _outcome(lambda: curve.price(bad_supply))
    assert _outcome(lambda: quote.spot)[0] == "error"


def test_supply_quote_overflow_names_the_limit_or_the_overflow():
    """The exponential domain limit and results beyond float64 raise as the public methods
    do: naming the limit, or the quantity that overflowed."""
    exp = make_curve("exponential", n_assets=2, a=1.0, k=1.0)
    with pytest.raises(ValueError, match=r"supply \+ delta=800.0 .*\[0, 700\].*k=1"):
        SupplyQuote(exp, np.array([0.0, 1.0])).cost(np.array([800.0, 0.0]))
    lin = make_curve("linear", n_assets=2, slope=10.0)
    with pytest.raises(ValueError, match="linear curve: cost overflows"):
        SupplyQuote(lin, np.full(2, 1e160)).cost(np.full(2, 1e160))
    with pytest.raises(ValueError, match="power curve: price overflows"):
        _ = SupplyQuote(make_curve("power", n_assets=2, a=1.0, n=4.0), np.full(2, 1e100)).spot


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(list(ARRAY_PARAMS)), m=st.sampled_from([1, 3, 20]),
       n=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_per_agent_rows_take_the_fast_check_with_the_same_bits(kind, m, n, seed):
    """(N, M) supplies (the stability term's counterfactuals) checked by ``_fits_rows``
    price, derive and reserve exactly as the general path (a list input) does."""
    rng = np.random.default_rng(seed)
    curve = _curve_of(kind, m)
    cap = np.minimum(1000.0, 0.9 * curve.max_supply)
    rows = rng.uniform(0.0, 1.0, (n, m)) * cap
    rows[rng.random((n, m)) < 0.2] = 0.0
    assert curve._fits_rows(rows)
    assert _same_bits(curve.price(rows), curve.price(rows.tolist()))
    for method in (curve.derivative, curve.reserve):  # f'(0) may be refused: alike
        assert _outcome(lambda f=method: f(rows)) == _outcome(lambda f=method: f(rows.tolist()))


@pytest.mark.parametrize("kind", list(CURVES))
def test_per_agent_rows_outside_the_domain_raise_the_general_error(kind):
    curve = _curve_of(kind, 3)
    for bad in (-1.0, math.nan, math.inf):
        rows = np.full((4, 3), 5.0)
        rows[2, 1] = bad
        assert not curve._fits_rows(rows)
        fast, slow = _outcome(lambda r=rows: curve.price(r)), \
            _outcome(lambda r=rows: curve.price(r.tolist()))
        assert fast == slow and fast[0] == "error"
    assert not curve._fits_rows(np.full((4, 2), 5.0))  # rows of another width
    assert not curve._fits_rows(np.full((2, 4, 3), 5.0))  # not rows
    assert not curve._fits_rows(np.full((4, 3), 5, dtype=np.int64))  # not float64
