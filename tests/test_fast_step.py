"""The speed-only paths (mesa_econ.fast_step, settlement.column_sums) against the reference.

SpotStep, liquidation_marks and profit_rewards must give the readable reference's arrays
(market_step, rewards.liquidation_mark, rewards.compute_rewards) bit for bit, over random
states where budgets bind, the supply limit binds and reserves run short (those steps go to
the reference itself); a model steps the same run with ``fast_paths`` on or off.
column_sums sums in another order than numpy: equal to float64 rounding.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mesa_econ import EconomyModel
from mesa_econ.config import MarketConfig, RewardConfig
from mesa_econ.curves import make_curve
from mesa_econ.dynamics import MarketParams, MarketState, StepNoise, market_step
from mesa_econ.fast_step import (
    SpotStep,
    liquidation_marks,
    profit_rewards,
    spot_step,
    takes_profit_rewards,
    takes_spot_step,
)
from mesa_econ.rewards import compute_rewards, liquidation_mark
from mesa_econ.settlement import column_sums

KINDS = ["linear", "logarithmic", "exponential", "sigmoid", "power"]
_STATE = ("capital", "holdings", "supply", "reserve", "deviation", "price")
_INFO = ("executed", "net_flow", "demand", "clearing_price", "payments", "reserve_change",
         "sell_fill", "curve_price", "fees", "yield_paid", "price_without")


def _same_bits(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------- column sums
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 3000), m=st.integers(1, 5), scale=st.sampled_from([1e-3, 1.0, 1e9]),
       seed=st.integers(0, 2**32 - 1))
def test_column_sums_equal_numpys_sums_to_rounding(n, m, scale, seed):
    """Σ_i x_ij in the BLAS kernel's order: |difference| <= n·eps64·Σ_i |x_ij| (Higham's
    bound for two summation orders), and exact for small integers."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, m)) * scale
    got, want = column_sums(x), x.sum(axis=0)
    bound = n * np.finfo(float).eps * np.abs(x).sum(axis=0)  # any two orders, any machine
    diff = np.abs(got - want)
    j = int(np.argmax(diff / bound))
    assert got.shape == (m,) and np.all(diff <= bound), (
        f"column {j}: |{got[j]!r} - {want[j]!r}| = {diff[j]:.3g} > bound {bound[j]:.3g}")
    ints = np.round(x / scale * 100)
    assert _same_bits(column_sums(ints), ints.sum(axis=0))


def test_column_sums_by_hand_and_non_finite():
    assert column_sums(np.array([[1.0, 2.0], [3.0, -4.0], [0.5, 0.0]])).tolist() == [4.5, -2.0]
    out = column_sums(np.array([[np.inf, 1.0, np.nan], [1.0, -np.inf, 0.0]]))
    assert out[0] == np.inf and out[1] == -np.inf and np.isnan(out[2])


# ------------------------------------------------------------------------- the spot step
def _market(kind, n, m, nu, graph, seed, **kw):
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=m)
    params = MarketParams.from_config(MarketConfig(
        n_agents=n, n_assets=m, settlement="spot", nu=nu, kappa=1e-3, lam=1e-5, theta=0.5,
        sigma0=0.01, sigma1=0.01, zeta=0.1, income=0.5, **kw))
    adjacency = None
    if graph and n > 1:
        adjacency = sp.random_array((n, n), density=0.4, rng=rng, format="csr") * 2.0
        adjacency.setdiag(0.0)
        adjacency.eliminate_zeros()
    return rng, curve, params, adjacency


@settings(max_examples=80, deadline=None)
@example(kind="linear", n=3, m=3, nu=0.0, graph=False, dilution=0.0, wealth=43.0,
         scale=10.0, seed=2)  # short reserve, binding budgets: the reference's own step
@given(kind=st.sampled_from(KINDS), n=st.integers(1, 30), m=st.sampled_from([1, 2, 3, 20]),
       nu=st.sampled_from([0.0, 0.3]), graph=st.booleans(),
       dilution=st.sampled_from([0.0, 0.3, 1.0]), wealth=st.floats(0.01, 1e4),
       scale=st.floats(0.01, 50.0), seed=st.integers(0, 2**32 - 1))
def test_spot_step_equals_market_step_bit_for_bit(kind, n, m, nu, graph, dilution, wealth,
                                                  scale, seed):
    """Every array of the state and the step info, over five steps, as market_step gives
    them (M = 20 takes the numpy tail, M <= 3 the Python-float one)."""
    rng, curve, params, adjacency = _market(kind, n, m, nu, graph, seed)
    step = SpotStep(params, curve, adjacency)
    holdings = rng.uniform(0, 20, (n, m))
    supply = column_sums(holdings)
    state = MarketState(capital=rng.uniform(0, wealth, n), holdings=holdings, supply=supply,
                        reserve=dilution * curve.reserve(supply), deviation=np.zeros(m),
                        price=curve.price(supply))
    ref, curve_price = state, None
    for _ in range(5):
        orders = np.where(rng.random((n, m)) < 0.2, 0.0, rng.normal(size=(n, m)) * scale)
        noise = StepNoise(factors=rng.normal(size=m) * 0.1, dW=rng.normal(size=m),
                          eta=rng.normal(size=m) * 0.01)
        state, info = step(state, orders, noise, curve_price=curve_price)
        ref, ref_info = market_step(ref, orders, params, curve, noise, adjacency,
                                    curve_price=curve_price)
        for name in _STATE:
            assert _same_bits(getattr(state, name), getattr(ref, name)), name
        for name in _INFO:
            assert _same_bits(getattr(info, name), getattr(ref_info, name)), name
        curve_price = info.curve_price if rng.random() < 0.5 else None


def test_spot_step_serves_only_its_configurations():
    """Fees, yield, congestion, ψ, a peer cap, curve settlement or the attributed price:
    not served (SpotStep refuses them by name; spot_step hands them to market_step)."""
    base = {"n_agents": 3, "n_assets": 1, "settlement": "spot"}
    assert takes_spot_step(MarketParams.from_config(MarketConfig(**base)))
    curve = make_curve("linear", n_assets=1)
    for extra in ({"fee": 0.01}, {"yield_rate": 0.1}, {"psi": 1.0}, {"peer_cap": 1.0},
                  {"settlement": "curve"}, {"congestion_fee": 0.1, "capacity": 5.0}):
        params = MarketParams.from_config(MarketConfig(**{**base, **extra}))
        assert not takes_spot_step(params), extra
        with pytest.raises(ValueError, match=r"params=.* is invalid"):
            SpotStep(params, curve)
    attributed = replace(MarketParams.from_config(MarketConfig(**base)), attribute_price=True)
    assert not takes_spot_step(attributed)
    holdings = np.full((3, 1), 10.0)
    state = MarketState(capital=np.full(3, 100.0), holdings=holdings,
                        supply=column_sums(holdings), reserve=curve.reserve(np.array([30.0])),
                        deviation=np.zeros(1), price=curve.price(np.array([30.0])))
    params = MarketParams.from_config(MarketConfig(**{**base, "fee": 0.01}))
    noise = StepNoise(factors=np.zeros(1), dW=np.zeros(1), eta=np.zeros(1))
    orders = np.array([[1.0], [-2.0], [0.0]])
    got = spot_step(state, orders, params, curve, noise)[0]
    want = market_step(state, orders, params, curve, noise)[0]
    assert all(_same_bits(getattr(got, f), getattr(want, f)) for f in _STATE)


# ------------------------------------------------------------------------- marks, rewards
@pytest.mark.parametrize("reserve, supply", [
    ([5.0, 0.0, 3.0], [2.0, 0.0, 7.0]),          # an empty asset: mark 0
    ([1e300, 2.0, 0.0], [1e-300, 4.0, 1.0]),     # overflow: saturated
    ([1.0] * 20, list(np.linspace(0.0, 3.0, 20))),  # many assets: the reference itself
])
@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_liquidation_marks_equal_the_reference_bit_for_bit(reserve, supply):
    r, s = np.array(reserve), np.array(supply)
    assert _same_bits(liquidation_marks(r, s), liquidation_mark(r, s))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), m=st.integers(1, 4), weight=st.sampled_from([1.0, 0.5, 2.0]),
       mark=st.sampled_from(["liquidation", "quote"]), seed=st.integers(0, 2**32 - 1))
def test_profit_rewards_equal_compute_rewards(n, m, weight, mark, seed):
    """The same reward terms as compute_rewards (equal values; its zero total may be
    +0.0 where this one is −0.0)."""
    rng = np.random.default_rng(seed)
    cfg = RewardConfig(profit_weight=weight, profit_mark=mark)
    assert takes_profit_rewards(cfg)
    b0, b1 = rng.uniform(0, 100, n), rng.uniform(0, 100, n)
    h0, h1 = rng.uniform(0, 10, (n, m)), rng.uniform(0, 10, (n, m))
    p0, p1 = rng.uniform(0.5, 2, m), rng.uniform(0.5, 2, m)
    r0, r1, s0, s1 = (rng.uniform(1, 50, m) for _ in range(4))
    v0, v1 = (p0, p1) if mark == "quote" else (liquidation_marks(r0, s0),
                                                liquidation_marks(r1, s1))
    got = profit_rewards(cfg, b0, b1, h0, h1, v0, v1, np.zeros(n))
    want = compute_rewards(cfg, capital_before=b0, capital_after=b1, holdings_before=h0,
                           holdings_after=h1, price_before=p0, price_after=p1,
                           reserve_before=r0, reserve_after=r1, supply_before=s0,
                           supply_after=s1)
    for name in ("profit", "stability", "cooperative", "use_value", "total"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert not takes_profit_rewards(RewardConfig(omega=1.0))
    assert profit_rewards(cfg, b0, b1 * np.inf, h0, h1, v0, v1, np.zeros(n)) is None


# ------------------------------------------------------------------------- the model
@pytest.mark.parametrize("kw", [
    {"settlement": "spot", "graph": "watts_strogatz", "nu": 0.05, "trade_scale": 30.0},
    {"settlement": "spot", "initial_capital": 20.0, "trade_scale": 50.0},  # budgets bind
    {"settlement": "spot", "profit_mark": "quote", "income": 2.0, "dt": 0.5},
    {"settlement": "curve", "kappa": 1e-3},  # the reward path alone
    {"settlement": "spot", "omega": 0.5, "fee": 0.01},  # neither path
])
def test_fast_paths_run_the_same_model(kw):
    """A model with ``fast_paths`` on and one with it off step the same run: state arrays
    bit for bit, rewards equal, the same DataCollector frame."""
    models = []
    for fast in (True, False):
        model = EconomyModel(n_agents=12, n_assets=3, **{"kappa": 1e-3, "lam": 1e-5,
                                                         "zeta": 0.5, "income": 1.0, **kw},
                             rng=4)
        model.fast_paths = fast
        for _ in range(15):
            model.step()
        models.append(model)
    fast, ref = models
    for name in ("capital", "holdings", "supply", "reserve", "deviation", "prices",
                 "factors", "token_marks"):
        assert _same_bits(getattr(fast, name), getattr(ref, name)), name
    np.testing.assert_array_equal(fast.last_rewards, ref.last_rewards)
    a = fast.datacollector.get_model_vars_dataframe()
    b = ref.datacollector.get_model_vars_dataframe()
    assert a.equals(b)


def test_fast_path_follows_replaced_parameters():
    """Parameters replaced between steps (a notebook tweaking ν, then a fee) are what the
    next step uses, on the fast path as on the reference."""
    models = []
    for fast in (True, False):
        model = EconomyModel(n_agents=8, n_assets=2, settlement="spot", graph="watts_strogatz",
                             graph_params={"k": 2, "p": 0.3}, nu=0.05, kappa=1e-3,
                             trade_scale=10.0, rng=9)
        model.fast_paths = fast
        for change in ({}, {"nu": 0.4}, {"fee": 0.05}, {"fee": 0.0}):
            model.params = replace(model.params, **change)
            for _ in range(3):
                model.step()
        models.append(model)
    for name in (*_STATE[:-1], "prices"):
        assert _same_bits(getattr(models[0], name), getattr(models[1], name)), name
    assert models[0].fees_paid == models[1].fees_paid > 0.0
