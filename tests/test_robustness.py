"""Steps that never crash on valid input (issue 10, item 5): each case found by attacking
the model with random and adversarial inputs, then random configurations and order
streams, extremes included, through every invariant of :mod:`mesa_econ.testing`."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from mesa_econ import EconomyModel, reporters
from mesa_econ.curves import make_curve
from mesa_econ.model import default_curve_params
from mesa_econ.settlement import settle_curve
from mesa_econ.testing import assert_invariants, assert_reports_finite, total_money

CURVES = ["linear", "logarithmic", "exponential", "sigmoid", "power"]


def _step_with(model: EconomyModel, orders) -> None:
    model.submit_orders(np.broadcast_to(np.asarray(orders, dtype=float),
                                        (model.n_agents, model.n_assets)))
    model.step()


# ----------------------------------------------------------------- exponential, large buy
def test_exponential_large_buy_is_scaled_to_the_budget():
    """trade_scale = 1e5 asks for supplies past the exponential curve's float64 range; the
    price was evaluated on that requested flow before any scaling, a curve domain error.
    Now buys are cut to the budget at the clearing price (and never past the supply limit)."""
    model = EconomyModel(trade_scale=1e5, rng=0, policy="random")
    money = total_money(model)
    model.step()
    assert_invariants(model, money)
    info = model.last_info
    spent = np.maximum(info.executed, 0.0) @ info.clearing_price  # buys at the clearing p̄
    buyers = (info.executed > 0).any(axis=1)
    assert buyers.any()
    np.testing.assert_allclose(spent[buyers], 1000.0, rtol=1e-9)  # each spends its budget


# ----------------------------------------------------------------- fills grow with orders
def _lone_buyer_fill(order: float) -> float:
    """Linear curve, one agent holding 10 of S = 10, capital 1000, buying ``order``."""
    model = EconomyModel(n_agents=1, n_assets=1, curve="linear", policy="hold", rng=0,
                         collect_every=0)
    _step_with(model, order)
    return float(model.last_info.executed[0, 0])


def test_fill_never_shrinks_as_the_order_grows():
    """Orders of 50 / 500 / 5e4 / 5e6 filled 50 / 37.7 / 0.40 / 0.004 (budgeted at the
    requested flow's price). Now the budget-bound fill is the curve's inverse: the tokens
    R(S + Δ) − R(S) = B buys, whatever the size of the order beyond it."""
    curve = make_curve("linear", n_assets=1, **default_curve_params("linear", 10.0, 1))
    budget_fill = float(curve.supply_for_deposit(np.array([10.0]),
                                                 np.array([1000.0 * (1 - 1e-12)]))[0])
    fills = [_lone_buyer_fill(order) for order in (50.0, 500.0, 5e4, 5e6)]
    assert fills[0] == 50.0
    np.testing.assert_allclose(fills[1:], budget_fill, rtol=1e-12)
    assert all(b >= a * (1 - 1e-12) for a, b in itertools.pairwise(fills))


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(CURVES), n=st.integers(1, 6), m=st.integers(1, 2),
       wealth=st.floats(0.1, 1e4), seed=st.integers(0, 2**32 - 1))
def test_fill_is_nondecreasing_in_the_order_size(kind, n, m, wealth, seed):
    """With the other orders fixed (buys and sells, budgets binding or not), scaling agent
    0's order up never fills less of it, over the five curve kinds."""
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=m, **default_curve_params(kind, 20.0 * n, n))
    holdings = rng.uniform(0, 20, (n, m))
    supply = holdings.sum(axis=0)
    capital = rng.uniform(0, wealth, n)
    orders = np.maximum(rng.normal(size=(n, m)) * rng.choice([1.0, 30.0, 1e4]), -holdings)
    direction = rng.uniform(0.1, 1.0, m)
    fills = []
    for size in (0.0, 1e-3, 0.1, 1.0, 10.0, 100.0, 1e3, 1e5, 1e8):
        orders[0] = direction * size
        executed = settle_curve(orders, capital, supply, curve.reserve(supply), curve)[0]
        fills.append(executed[0].copy())
    for smaller, larger in itertools.pairwise(fills):
        assert np.all(larger >= smaller * (1 - 1e-9) - 1e-300), (smaller, larger)


# ----------------------------------------------------------------- HHI and the half step
@pytest.mark.parametrize("holding", [1e-163, 5e-324, 1e-200, 1e160])
def test_hhi_of_an_underflowing_or_huge_supply_is_finite(holding):
    """S in (0, 1e-162] made S*S underflow to 0: ZeroDivisionError from the DataCollector
    (at construction and after every step). HHI = Σ (H/S)² is 1/N here, for any S."""
    model = EconomyModel(n_agents=4, n_assets=2, curve="linear", initial_holdings=holding,
                         policy="hold", rng=0)
    model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    np.testing.assert_allclose(frame["hhi"], 0.25, rtol=1e-9)
    assert reporters.hhi_of(model, asset=1) == pytest.approx(0.25, rel=1e-9)
    assert_reports_finite(model)


def _snapshot(model: EconomyModel) -> dict:
    """Everything a step may change, copied."""
    return {
        "state": {name: getattr(model, name).copy() for name in
                  ("capital", "holdings", "supply", "reserve", "deviation", "prices",
                   "curve_prices", "factors")},
        "t": model.t, "money": (model.income_paid, model.yield_paid, model.fees_paid),
        "rng": model.rng.bit_generator.state, "policy_rng": model.policy_rng.bit_generator.state,
        "torch": model.torch_generator.get_state().clone(),
        "window": model.price_window_ordered(), "rows": len(model.datacollector.model_vars["hhi"]),
        "last": (model.last_orders.copy(), model.last_rewards.copy()),
    }


def _assert_same_snapshot(a: dict, b: dict) -> None:
    for name, value in a["state"].items():
        np.testing.assert_array_equal(value, b["state"][name], err_msg=name)
    assert (a["t"], a["money"], a["rows"]) == (b["t"], b["money"], b["rows"])
    assert a["rng"] == b["rng"] and a["policy_rng"] == b["policy_rng"]
    assert torch.equal(a["torch"], b["torch"])
    np.testing.assert_array_equal(a["window"], b["window"])
    for x, y in zip(a["last"], b["last"], strict=True):
        np.testing.assert_array_equal(x, y)


def _failing(*args, **kwargs):
    raise RuntimeError("injected failure")


@pytest.mark.parametrize("where", ["reporter", "market_step", "compute_rewards",
                                   "profit_rewards", "draw_factors"])
def test_a_step_that_raises_leaves_the_model_as_it_was(where, monkeypatch):
    """A failure anywhere in a step (here injected after the generators have drawn, the
    state advanced or the DataCollector half-written) leaves the model as before the
    step, so the next step runs as if the failed one had never been tried."""
    def build():
        return EconomyModel(n_agents=5, n_assets=2, yield_rate=0.2, fee=0.01, income=1.0,
                            policy="random", rng=3)
    model, twin = build(), build()
    for m in (model, twin):
        for _ in range(3):
            m.step()
    before = _snapshot(model)
    with monkeypatch.context() as patch:
        if where == "reporter":
            model.datacollector.model_reporters["broken"] = _failing
            model.datacollector.model_vars["broken"] = []
        elif where == "draw_factors":
            patch.setattr(model, "_draw_factors", _failing)
        elif where == "compute_rewards":  # the reference path (profit alone takes the other)
            patch.setattr(model, "fast_paths", False)
            patch.setattr(f"mesa_econ.model.{where}", _failing)
        else:
            patch.setattr(f"mesa_econ.model.{where}", _failing)
        with pytest.raises(RuntimeError, match="injected"):
            model.step()
    _assert_same_snapshot(before, _snapshot(model))
    model.datacollector.model_reporters.pop("broken", None)
    model.datacollector.model_vars.pop("broken", None)
    model.step()
    twin.step()
    _assert_same_snapshot(_snapshot(twin), _snapshot(model))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_a_diverging_step_raises_and_leaves_the_model_as_it_was():
    """Parameters that make the quote explode (σ1 = 1e300) raise FloatingPointError from
    the finiteness check, after the market step: the model is as before the step."""
    model = EconomyModel(n_agents=3, n_assets=1, sigma1=1e300, sigma_eta=0.0, rng=1,
                         policy="hold")
    before = _snapshot(model)
    with pytest.raises(FloatingPointError, match="non-finite"):
        for _ in range(5):
            before = _snapshot(model)
            model.step()
    _assert_same_snapshot(before, _snapshot(model))


# ----------------------------------------------------------------- denormal supply, ψ
def test_minting_into_a_denormal_supply_stays_finite():
    """ψ = 10 minted into S ≈ 1e-310 (logarithmic curve, no initial holdings, orders of
    ±1e-310): (S + ψ)/S overflowed, holdings became inf/NaN. Each holder now keeps its
    share of S + ψ."""
    model = EconomyModel(n_agents=2, n_assets=1, curve="logarithmic", initial_holdings=0.0,
                         psi=10.0, policy="hold", rng=0)
    money = total_money(model)
    for _ in range(3):
        _step_with(model, [[1e-310], [-1e-310]])
        assert_invariants(model, money)
        assert_reports_finite(model)
    np.testing.assert_allclose(model.supply, [30.0], rtol=1e-12)


# ----------------------------------------------------------------- spot after a dump
@pytest.mark.parametrize("kind", CURVES)
def test_spot_buy_after_a_dump_stays_within_the_curve(kind):
    """Under spot settlement every holder dumps, the quote falls to the price floor
    (κ = 1), and a budget-sized buy asks for 2.7e13 tokens at 1e-9: past the exponential
    curve's domain. Buys now stop at the curve's supply limit."""
    model = EconomyModel(n_agents=5, n_assets=1, curve=kind, settlement="spot", kappa=1.0,
                         initial_capital=27000.0, policy="hold", rng=0)
    money = total_money(model)
    _step_with(model, -model.holdings)
    assert model.prices[0] == pytest.approx(1e-9)
    for orders in (1e20, 0.0, -1e20, 1e20):
        _step_with(model, orders)
        assert_invariants(model, money)
        assert_reports_finite(model)
        assert model.supply[0] <= model.curve.supply_limit[0] * (1 + 1e-12)


# ----------------------------------------------------------------- reporters at huge prices
class _WindowModel:
    def __init__(self, window):
        self.price_window = window

    def price_window_ordered(self):
        return self.price_window


@pytest.mark.parametrize("window", [
    1e174 * np.exp(np.random.default_rng(0).normal(size=(20, 2))),  # prices around 1e174
    np.array([[1e-9], [1e300], [1e-9], [1e300], [5.0]]),  # ratios past float64
    np.array([[1.7e308], [1e-9], [1.7e308]]),  # a variance beyond float64: saturates
])
def test_volatility_and_level_variance_are_finite_at_huge_prices(window):
    """The volatility reporter returned inf at prices around 1e174 (and level variance
    squares them); both are finite, and volatility is scale-free."""
    model = _WindowModel(window)
    vol, var = reporters.report_volatility(model), reporters.report_level_variance(model)
    assert np.isfinite(vol) and np.isfinite(var) and var > 0
    scaled = reporters.report_volatility(_WindowModel(window * 1e-150))
    assert vol == pytest.approx(scaled, rel=1e-9)


def test_level_variance_squares_after_scaling_and_saturates_beyond_float64():
    """One price of 3e154 among 1.0s: each squared deviation overflows, the variance
    (≈ 4.3e307) does not, and is computed on scaled prices. Prices around 1e174 have a
    variance of ~1e348, beyond float64: it saturates at the largest float."""
    window = np.ones((20, 1))
    window[3] = 3e154
    want = float(np.var(window / 3e154)) * 3e154 * 3e154
    assert reporters.report_level_variance(_WindowModel(window)) == pytest.approx(want)
    huge = 1e174 * np.exp(np.random.default_rng(1).normal(size=(20, 3)))
    assert reporters.report_level_variance(_WindowModel(huge)) == np.finfo(float).max


# ----------------------------------------------------------------- peer influence
def _peer_step(peer_cap, whale):
    model = EconomyModel(n_agents=4, n_assets=1, nu=0.5, peer_cap=peer_cap, policy="hold",
                         initial_holdings=100.0, rng=0)
    _step_with(model, [[-whale], [0.0], [0.0], [0.0]])
    return model.last_info.executed[:, 0]


def test_peer_influence_forces_neighbours_to_dump_at_any_size_unless_capped():
    """ν = 0.5: agent 0's sell of 60 forces each other agent to sell 30 (uncapped, §5.3 as
    written, the exploit docs/model.md describes). With peer_cap = 1 the forced part is
    at most trade_scale = 1 token, whatever the whale's order."""
    np.testing.assert_allclose(_peer_step(None, 60.0)[1:], -30.0)
    np.testing.assert_allclose(_peer_step(1.0, 60.0)[1:], -1.0)
    np.testing.assert_allclose(_peer_step(1.0, 1e9)[1:], -1.0)
    np.testing.assert_allclose(_peer_step(1.0, 1.0)[1:], -0.5)  # under the cap: ν a


def test_peer_cap_is_validated():
    with pytest.raises(ValueError, match="peer_cap"):
        EconomyModel(n_agents=3, peer_cap=0.0)


# ----------------------------------------------------------------- random attacks
_CONFIG = st.fixed_dictionaries({
    "curve": st.sampled_from(CURVES),
    "n_agents": st.integers(1, 6),
    "n_assets": st.integers(1, 3),
    "graph": st.sampled_from(["complete", "complete", "erdos_renyi", "empty"]),
    "settlement": st.sampled_from(["curve", "curve", "spot"]),
    "psi": st.sampled_from([0.0, 0.0, 10.0, -3.0, 1e-310, 1e6, -1e6]),
    "fee": st.sampled_from([0.0, 0.001, 0.5, 0.99]),
    "yield_rate": st.sampled_from([0.0, 0.2, 5.0]),
    "factor_std": st.sampled_from([0.1, 5.0]),
    "congestion": st.sampled_from([None, (5.0, 0.5), (1e-3, 100.0)]),
    "nu": st.sampled_from([0.0, 0.3]),
    "peer_cap": st.sampled_from([None, 1.0]),
    "kappa": st.sampled_from([0.0, 1e-3, 1.0]),
    "lam": st.sampled_from([0.0, 1e-5]),
    "theta": st.sampled_from([1.0, 0.2, 1.9]),
    "sigma1": st.sampled_from([0.0, 0.1]),
    "zeta": st.sampled_from([0.0, 0.1]),
    "income": st.sampled_from([0.0, 1.0, 1e12]),
    "initial_capital": st.sampled_from([1e-300, 1.0, 1000.0, 1e12, 1e200]),
    "initial_holdings": st.sampled_from([0.0, 1e-310, 1e-163, 10.0, 1e6]),
    "shock": st.sampled_from([None, (1, 50.0), (0, -50.0)]),
    "omega": st.sampled_from([0.0, 5.0]),
    "stability": st.sampled_from(["shared", "attributed"]),
    "profit_mark": st.sampled_from(["liquidation", "quote"]),
    "rho": st.sampled_from([0.0, 0.5]),
})
_ORDERS = st.lists(st.tuples(
    st.sampled_from(["normal", "dump", "whale", "all_in", "denormal", "zero"]),
    st.sampled_from([1e-310, 1.0, 1e3, 1e12, 1e300])), min_size=1, max_size=6)


def _orders(model: EconomyModel, kind: str, size: float, rng: np.random.Generator):
    n, m = model.n_agents, model.n_assets
    if kind == "dump":
        return -model.holdings * rng.uniform(1.0, 2.0)
    if kind == "whale":
        orders = np.zeros((n, m))
        orders[rng.integers(n)] = size * rng.choice([-1.0, 1.0])
        return orders
    if kind == "all_in":
        return np.full((n, m), size)
    if kind == "denormal":
        return rng.choice([-1.0, 1.0], (n, m)) * 1e-310
    if kind == "zero":
        return np.zeros((n, m))
    return rng.normal(size=(n, m)) * size


def _model(config: dict, seed: int) -> EconomyModel:
    kwargs = dict(config)
    congestion, shock = kwargs.pop("congestion"), kwargs.pop("shock")
    if congestion is not None:
        kwargs["capacity"], kwargs["congestion_fee"] = congestion
    if shock is not None:
        kwargs["shock_step"], kwargs["shock_size"] = shock
    return EconomyModel(policy="hold", rng=seed, **kwargs)


@settings(max_examples=80, deadline=None)
@given(config=_CONFIG, stream=_ORDERS, seed=st.integers(0, 2**16))
def test_random_configurations_never_raise_and_keep_every_invariant(config, stream, seed):
    """Random configurations (each curve kind, both settlements, ψ, fee, yield, capacity
    with a congestion fee, peer influence) and order streams with extremes (denormal and
    1e300 orders, dumps, whales, everyone all-in): no step raises, every invariant holds,
    money moves by exactly the income and yield paid in less the fees paid out, and
    every reporter is finite."""
    try:
        model = _model(config, seed)
    except ValueError as error:  # refused at construction (S0 past the exponential's range)
        assert "is invalid" in str(error)
        reject()
    rng = np.random.default_rng(seed)
    money = total_money(model)
    assert_reports_finite(model)
    for kind, size in stream:
        _step_with(model, _orders(model, kind, size, rng))
        assert_invariants(model, money)
        assert_reports_finite(model)
