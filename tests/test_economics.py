"""What the rewards pay for (§4, issue 9): no reward from paper gains, exact money, the
yield, the fee and the attributed stability term.

The pump tests compare an agent's return when it buys with its return when it holds, the
other agents' orders and the market noise being the same (same seed: common random
numbers), under curve settlement with ν = 0, ψ = 0 and no yield.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ import EconomyModel
from mesa_econ.config import CURVE_KINDS
from mesa_econ.rewards import liquidation_mark

N = 12


def _market(curve: str, seed: int, **overrides) -> EconomyModel:
    kw = dict(n_agents=N, n_assets=1, curve=curve, policy="hold", sigma_eta=0.01,
              theta=0.2, kappa=1e-3, zeta=0.05, sigma0=0.005, income=1.0, trade_scale=2.0,
              nu=0.0, psi=0.0, omega=0.0, rho=0.0, collect_every=0, rng=seed)
    kw.update(overrides)
    return EconomyModel(**kw)


def _returns(model: EconomyModel, buyers: list[int], size: float, steps: int,
             warm: int, term: str = "profit") -> np.ndarray:
    """Each agent's summed reward term over ``steps`` steps in which ``buyers`` buy
    ``size`` every step, after ``warm`` steps of random trading (unequal holdings)."""
    for _ in range(warm):
        model.submit_orders(3.0 * model.policy_rng.normal(size=(model.n_agents, 1)))
        model.step()
    total = np.zeros(model.n_agents)
    for _ in range(steps):
        orders = np.zeros((model.n_agents, 1))
        orders[buyers] = size
        model.submit_orders(orders)
        model.step()
        total += getattr(model.last_breakdown, term)
    return total


pump_cases = st.fixed_dictionaries({
    "curve": st.sampled_from(CURVE_KINDS),
    "crowd": st.sampled_from([1, 10, N]),
    "size": st.sampled_from([0.5, 2.0, 1e3]),  # 1e3: every buy scaled to the budget
    "warm": st.sampled_from([0, 8]),
    "seed": st.integers(0, 2**16),
})


@settings(max_examples=40, deadline=None)
@given(case=pump_cases)
def test_no_buyer_earns_more_than_holding(case):
    """§4.1 liquidation mark: buying alone, among 10 or with all N never beats holding."""
    buyers = list(range(case["crowd"]))
    args = (case["size"], 15, case["warm"])
    bought = _returns(_market(case["curve"], case["seed"]), buyers, *args)
    held = _returns(_market(case["curve"], case["seed"]), buyers[1:], *args)
    assert bought[0] <= held[0] + 1e-9 * (1 + abs(held[0])), (bought[0], held[0])


@settings(max_examples=25, deadline=None)
@given(case=pump_cases, rho=st.sampled_from([0.5, 1.0]),
       scope=st.sampled_from(["all", "neighbours"]))
def test_no_pump_pays_with_the_cooperative_term_on(case, rho, scope):
    """§4.3 with ρ <= 1: a buyer's profit plus its share of the others' profit never
    beats holding (buying moves value to the other holders, at most one for one)."""
    buyers = list(range(case["crowd"]))
    kw = dict(rho=rho, cooperative_scope=scope, graph="watts_strogatz")
    args = (case["size"], 10, case["warm"])
    bought = _returns(_market(case["curve"], case["seed"], **kw), buyers, *args, term="total")
    held = _returns(_market(case["curve"], case["seed"], **kw), buyers[1:], *args,
                    term="total")
    assert bought[0] <= held[0] + 1e-9 * (1 + abs(held[0])), (bought[0], held[0])


def test_the_quote_mark_pays_the_pump():
    """The paper's literal mark (profit_mark='quote') on a convex curve rewards buying:
    paper wealth at the quoted price that no money backs. Kept as an option; this test
    documents why it is not the default."""
    kw = dict(curve_params={"a": 1.0, "k": 0.01}, profit_mark="quote")
    bought = _returns(_market("exponential", 0, **kw), [0], 2.0, 30, 0)
    held = _returns(_market("exponential", 0, **kw), [], 2.0, 30, 0)
    assert bought[0] > held[0] + 1.0


@settings(max_examples=30, deadline=None)
@given(curve=st.sampled_from(CURVE_KINDS), seed=st.integers(0, 2**16),
       psi=st.sampled_from([0.0, 0.5, -0.5]), fee=st.sampled_from([0.0, 0.01]),
       yield_rate=st.sampled_from([0.0, 0.2]), settlement=st.sampled_from(["curve", "spot"]),
       nu=st.sampled_from([0.0, 0.1]))
def test_marks_sum_to_the_reserve_and_money_is_exact(curve, seed, psi, fee, yield_rate,
                                                     settlement, nu):
    """Σ_i H_ij·reserve_j/S_j = reserve_j, and Σ B + Σ reserve moves only by income +
    yield − fees, whatever the settlement, minting, fee, yield or peer influence."""
    model = _market(curve, seed, psi=psi, fee=fee, yield_rate=yield_rate, factor_mean=0.1,
                    settlement=settlement, nu=nu, policy="random", n_assets=2)
    money0 = model.capital.sum() + model.reserve.sum()
    for _ in range(20):
        model.step()
        marks = model.holdings @ liquidation_mark(model.reserve, model.supply)
        assert marks.sum() == pytest.approx(model.reserve.sum(), rel=1e-9, abs=1e-9)
        assert (model.wealth - model.capital).sum() <= model.reserve.sum() * (1 + 1e-9) + 1e-9
        assert np.all(model.capital >= 0)
    money = model.capital.sum() + model.reserve.sum()
    assert money == pytest.approx(money0 + model.income_paid + model.yield_paid
                                  - model.fees_paid, rel=1e-10)


def _two_agents(**kw) -> EconomyModel:
    """Linear curve f(S) = 0.1·S + 1, two agents with 10 tokens each: S = 20, R = 40."""
    base = dict(n_agents=2, n_assets=1, curve="linear",
                curve_params={"slope": 0.1, "intercept": 1.0}, initial_holdings=10.0,
                initial_capital=100.0, sigma_eta=0.0, factor_std=0.0, policy="hold",
                collect_every=0, rng=0)
    base.update(kw)
    return EconomyModel(**base)


def test_seller_reward_is_cash_received_less_lost_share_by_hand():
    """Agent 0 sells 5 of S = 20: it receives R(20) − R(15) = 40 − 26.25 = 13.75; its
    share falls from 10·40/20 = 20 to 5·26.25/15 = 8.75 (−11.25); reward 2.5. The holder's
    share falls from 20 to 10·26.25/15 = 17.5: reward −2.5."""
    model = _two_agents()
    model.submit_orders(np.array([[-5.0], [0.0]]))
    model.step()
    assert model.capital[0] == pytest.approx(113.75)
    np.testing.assert_allclose(model.last_breakdown.profit, [2.5, -2.5], rtol=1e-12)


def test_fee_by_hand():
    """Fee φ = 0.01 on the same sale: 1% of 13.75 goes to the external account."""
    model = _two_agents(fee=0.01)
    model.submit_orders(np.array([[-5.0], [0.0]]))
    model.step()
    assert model.capital[0] == pytest.approx(100 + 13.75 * 0.99)
    assert model.fees_paid == pytest.approx(0.1375)
    np.testing.assert_allclose(model.last_breakdown.profit, [2.5 - 0.1375, -2.5], rtol=1e-12)


@pytest.mark.parametrize("order", [30.0, 50.0, 1e3])
def test_fee_is_inside_the_budget(order):
    """A buyer asking for more than it can pay never pays more than its capital, fee
    included, and the fee is φ times what it paid the curve."""
    model = _two_agents(fee=0.05)
    model.submit_orders(np.array([[order], [0.0]]))
    model.step()
    paid = model.reserve[0] - 40.0
    assert model.capital[0] >= 0.0
    assert model.capital[0] == pytest.approx(100.0 - 1.05 * paid)
    assert model.fees_paid == pytest.approx(0.05 * paid)


def test_yield_by_hand_with_limited_liability():
    """Yield y·Z per token: Z = 0.3 (std 0) pays 2·0.3·10 = 6 to each holder; Z = −50
    would take 1000 from a 100-capital agent: it pays its capital and no more."""
    model = _two_agents(yield_rate=2.0, factor_mean=0.3)
    model.step()
    np.testing.assert_allclose(model.capital, [106.0, 106.0])
    assert model.yield_paid == pytest.approx(12.0)
    np.testing.assert_allclose(model.last_breakdown.profit, [6.0, 6.0])
    broke = _two_agents(yield_rate=2.0, factor_mean=-50.0)
    broke.step()
    np.testing.assert_array_equal(broke.capital, [0.0, 0.0])
    assert broke.yield_paid == pytest.approx(-200.0)


def test_attributed_stability_by_hand():
    """Agent 0 buys 5 on f(S) = 0.1·S + 1 (θdt = 1, no impact, no noise): the quote moves
    from f(20) = 3 to f(25) = 3.5; without agent 0 it would not move. Attributed: agent 0
    pays ω·0.5, agent 1 pays nothing. Shared: both pay ω·0.5."""
    orders = np.array([[5.0], [0.0]])
    for kind, expected in (("attributed", [-0.5, 0.0]), ("shared", [-0.5, -0.5])):
        model = _two_agents(omega=1.0, stability=kind)
        model.submit_orders(orders)
        model.step()
        np.testing.assert_allclose(model.last_breakdown.stability, expected, atol=1e-12)


def test_trading_against_a_move_is_rewarded_under_attribution():
    """An exogenous jump (ζ·(Z − m) = +1) lifts the quote by 1; agent 0 sells 5, pulling
    the curve part down by 0.5: |ΔP| = 0.5 with it, 1.0 without it, so its attributed
    term is −ω·(0.5 − 1.0) = +0.5, a reward for leaning against the move."""
    model = _two_agents(omega=1.0, stability="attributed", zeta=1.0, factor_mean=1.0)
    model.factors = np.array([2.0])  # Z − m = 1 this step
    model.submit_orders(np.array([[-5.0], [0.0]]))
    model.step()
    assert model.prices[0] == pytest.approx(3.0 - 0.5 + 1.0)
    np.testing.assert_allclose(model.last_breakdown.stability, [0.5, 0.0], atol=1e-12)


@pytest.mark.parametrize("extra", [0.0, 2.0])
def test_use_value_pays_up_to_the_need_not_beyond(extra):
    """With use value, buying up to the need pays; buying beyond it earns less than
    stopping at the need (the extra units bring no use value and cost their share)."""
    def run(target):
        model = _market("sigmoid", 3, n_assets=1, use_value=0.05, initial_holdings=1.0,
                        demand=np.full((N, 1), 4.0), capacity=100.0,
                        curve_params={"height": 4.0, "midpoint": 40.0, "steepness": 0.1})
        total = np.zeros(N)
        for _ in range(40):
            orders = np.zeros((N, 1))
            orders[0] = np.clip(target - model.holdings[0], -1.0, 1.0)
            model.submit_orders(orders)
            model.step()
            total += model.last_breakdown.total
        return total[0]

    hold, to_need, beyond = run(1.0), run(4.0), run(4.0 + extra)
    assert to_need > hold
    assert beyond <= to_need + 1e-9


def test_congestion_fee_by_hand():
    """Capacity 15 on S = 20: 5 units over, c = 0.1 → 0.5 per step, 0.25 for each holder."""
    model = _two_agents(capacity=15.0, congestion_fee=0.1)
    model.step()
    np.testing.assert_allclose(model.capital, [99.75, 99.75])
    assert model.fees_paid == pytest.approx(0.5)


def test_congestion_fee_needs_a_capacity():
    with pytest.raises(ValueError, match="congestion_fee"):
        _two_agents(congestion_fee=0.1)


@pytest.mark.parametrize(("scenario", "informed", "term"), [
    ("defi_token_market", "informed", "return_profit"),
    ("shock_recovery", "informed", "return_profit"),
    ("resource_network", "need_aware", "return_total"),
])
def test_each_scenario_has_something_to_learn_and_no_pump(scenario, informed, term):
    """docs/scenarios.md: the informed scripted arm beats hold (paired 95% CI above 0),
    and the unilateral pump, less the yield on its extra tokens, earns <= 0 on every seed."""
    from mesa_econ.experiments import scenario_checks

    checks = scenario_checks(scenario, [11, 12, 13, 14, 15, 16], informed, term)
    assert checks["informed_minus_hold"]["low"] > 0, checks
    assert checks["pump_net_max"] <= 0, checks


def test_buying_toward_a_need_beyond_capacity_does_not_pay():
    """Capacity binds: 20 agents hold their needs of 3 (S = 60 > C = 40); agent 0 needs
    10. Buying toward its need raises its rationed use, but over capacity the congestion
    fee and the price it pays outweigh it: it ends below holding."""
    def run(buy: bool) -> float:
        demand = np.full((20, 1), 3.0)
        demand[0] = 10.0
        model = EconomyModel(
            n_agents=20, n_assets=1, curve="sigmoid",
            curve_params={"height": 4.0, "midpoint": 40.0, "steepness": 0.1},
            capacity=40.0, congestion_fee=0.02, use_value=0.01, demand=demand,
            initial_holdings=3.0, initial_capital=200.0, income=1.0, policy="hold",
            collect_every=0, rng=1)
        total = 0.0
        for _ in range(60):
            orders = np.zeros((20, 1))
            if buy:
                orders[0] = np.clip(10.0 - model.holdings[0], -1.0, 1.0)
            model.submit_orders(orders)
            model.step()
            total += model.last_breakdown.total[0]
        return total

    assert run(buy=True) < run(buy=False)


def test_pump_check_patterns_trade_as_named():
    """Agent 0 trades q = trade_scale = 2 a step; after steps 1 and 2 it holds 2 and 4
    tokens more than the holder (buy), 2 and 4 fewer (sell, 4 < its 10 tokens), 2 more
    and then the same (round trip), so the yield on those extra tokens, Σ_t y·Z_t·ΔH_t,
    is y·q·(Z_0 + 2 Z_1), its negative, and y·q·Z_0 (the same Z: common random numbers)."""
    from mesa_econ.experiments import pump_check

    seeds = [3, 4]
    buy = pump_check("defi_token_market", seeds, steps=2)
    assert buy.equals(pump_check("defi_token_market", seeds, steps=2, pattern="buy"))
    sell = pump_check("defi_token_market", seeds, steps=2, pattern="sell")
    trip = pump_check("defi_token_market", seeds, steps=2, pattern="round_trip")
    for row, seed in enumerate(seeds):
        model = EconomyModel(**{**_defi(), "rng": seed})
        y, q = model.params.yield_rate, model.trade_scale
        assert model.holdings[0, 0] == 10.0 and q == 2.0
        z0 = float(model.factors.sum())
        model.step()
        z1 = float(model.factors.sum())
        assert buy.extra_yield[row] == pytest.approx(y * q * (z0 + 2 * z1), rel=1e-12)
        assert sell.extra_yield[row] == pytest.approx(-y * q * (z0 + 2 * z1), rel=1e-12)
        assert trip.extra_yield[row] == pytest.approx(y * q * z0, rel=1e-12)


def _defi() -> dict:
    from mesa_econ.scenarios import scenario_params

    return {**scenario_params("defi_token_market"), "policy": "hold", "collect_every": 0}


def test_pump_check_rejects_an_unknown_pattern():
    from mesa_econ.experiments import pump_check

    with pytest.raises(ValueError, match=r"pattern='hold' is invalid: expected one of"):
        pump_check("defi_token_market", [0], steps=1, pattern="hold")
