"""§5 market step: hand-computed values, invariants (hypothesis), settlement semantics."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mesa_econ import pricing
from mesa_econ.config import MarketConfig
from mesa_econ.curves import make_curve
from mesa_econ.dynamics import (
    MarketParams,
    MarketState,
    StepNoise,
    _neighbour_sum,
    clip_short_sales,
    column_sums,
    market_step,
    mint_burn,
    peer_influence,
    scale_buys_to_budget,
    settle_curve,
    settle_spot,
)
from mesa_econ.settlement import _settle_curve, cap_buys_to_room


def _params(**kw) -> MarketParams:
    cfg = MarketConfig(n_agents=kw.pop("n_agents", 3), n_assets=kw.pop("n_assets", 1), **kw)
    return MarketParams.from_config(cfg)


def _state(capital, holdings, curve, price=None) -> MarketState:
    holdings = np.asarray(holdings, dtype=float)
    supply = column_sums(holdings)  # S = Σ_i H_ij as the market step sums it
    return MarketState(capital=np.asarray(capital, dtype=float), holdings=holdings,
                       supply=supply, reserve=curve.reserve(supply),
                       deviation=np.zeros(supply.shape),
                       price=curve.price(supply) if price is None else np.asarray(price))


def _quiet(m: int) -> StepNoise:
    return StepNoise(factors=np.zeros(m), dW=np.zeros(m), eta=np.zeros(m))


# ----------------------------------------------------------------- hand-computed values
def test_peer_influence_complete_graph_is_sum_over_others():
    """§5.3: ã_i = a_i + ν Σ_{k≠i} a_k. a = (1, 2, 3), ν = 0.1: Σ = 6 → (1.5, 2.4, 3.3)."""
    a = np.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(peer_influence(a, 0.1), [[1.5], [2.4], [3.3]])


def test_peer_influence_sparse_complete_equals_fast_path():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 2))
    dense = sp.csr_array(np.ones((6, 6)) - np.eye(6))
    np.testing.assert_allclose(peer_influence(a, 0.3, dense), peer_influence(a, 0.3))


def test_peer_influence_on_a_path_graph():
    """Path 0-1-2, ν = 0.5, a = (2, 0, -4): ã = (2 + 0, 0 + 0.5·(2 − 4), −4 + 0) = (2, −1, −4)."""
    adj = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    a = np.array([[2.0], [0.0], [-4.0]])
    np.testing.assert_allclose(peer_influence(a, 0.5, adj), [[2.0], [-1.0], [-4.0]])


def test_no_short_sales():
    out = clip_short_sales(np.array([[-5.0, 2.0], [-1.0, -3.0]]),
                           np.array([[3.0, 0.0], [2.0, 1.0]]))
    np.testing.assert_array_equal(out, [[-3.0, 2.0], [-1.0, -1.0]])


def test_buys_scaled_to_budget():
    """B = 10, orders (5, −2) at p = (4, 1): buys cost 20 > 10 → buys halved, sell kept."""
    out = scale_buys_to_budget(np.array([[5.0, -2.0]]), np.array([10.0]), np.array([4.0, 1.0]))
    np.testing.assert_allclose(out, [[2.5, -2.0]], rtol=1e-11)
    assert out[0, 0] * 4.0 <= 10.0


@pytest.mark.filterwarnings("ignore:overflow encountered in matmul")
def test_buys_of_any_size_are_scaled_without_overflow():
    """Orders of 1e300 cost beyond float64; the budget still buys their direction:
    (1, 0.3) · B / (p·(1, 0.3))."""
    out = scale_buys_to_budget(np.array([[1e300, 3e299]]), np.array([1.0]),
                               np.array([10.0, 1e9]))
    np.testing.assert_allclose(out, [[1.0 / (10.0 + 0.3e9), 0.3 / (10.0 + 0.3e9)]],
                               rtol=1e-11)


def test_buys_are_cut_alike_to_the_room():
    """Room 6 for asset 0: buys 4 + 8 become 2 + 4; sells and asset 1 untouched."""
    out = cap_buys_to_room(np.array([[4.0, 1.0], [8.0, -3.0], [-2.0, 1.0]]),
                           np.array([6.0, 100.0]))
    np.testing.assert_allclose(out, [[2.0, 1.0], [4.0, -3.0], [-2.0, 1.0]])


@pytest.mark.parametrize("kind", ["linear", "logarithmic", "exponential", "sigmoid", "power"])
@pytest.mark.parametrize("order", [1e4, 1e12, 1e300])
def test_a_lone_budget_bound_buyer_gets_the_curve_inverse(kind, order):
    """One buyer, no sellers: the fill is supply_for_deposit(S, B), whatever the order size
    beyond it (R(S + Δ) − R(S) = B: the whole budget, at the clearing price)."""
    curve = make_curve(kind, n_assets=1)
    supply, capital = np.array([20.0]), np.array([5.0])
    executed, pay, *_ = settle_curve(np.array([[order]]), capital, supply,
                                     curve.reserve(supply), curve)
    want = curve.supply_for_deposit(supply, capital * (1 - 1e-12))
    np.testing.assert_allclose(executed[0], want, rtol=1e-11)
    assert pay[0] <= capital[0]


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       n=st.integers(1, 8), m=st.integers(1, 3), dilution=st.sampled_from([0.3, 1.0]),
       scale=st.sampled_from([1.0, 100.0, 1e6]), wealth=st.floats(0.01, 100),
       seed=st.integers(0, 2**32 - 1))
def test_budget_bound_buyers_spend_their_budget_at_the_clearing_price(
        kind, n, m, dilution, scale, wealth, seed):
    """The budget-feasible fill: every buyer cut below its order pays exactly its budget
    (no more: feasibility; no less: nothing is left on the table), buyers and sellers
    mixed, reserves diluted, one to three assets."""
    curve, _, supply, reserve, capital, orders = _dump_and_overbid(
        kind, n, m, dilution, scale, wealth, seed)
    executed, pay, *_ = settle_curve(orders, capital, supply, reserve, curve)
    assert np.all(pay <= capital)
    buys, spent = np.maximum(orders, 0.0), np.maximum(executed, 0.0)
    cut = (spent < buys * (1 - 1e-9)).any(axis=1)
    price = settle_curve(orders, capital, supply, reserve, curve)[3]
    np.testing.assert_allclose((spent @ price)[cut], capital[cut], rtol=1e-9)


def test_curve_settlement_hand_example():
    """Linear f = S (m=1, b=0), S = 10: buying 2 costs R(12) − R(10) = 72 − 50 = 22, p̄ = 11."""
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    orders = np.array([[2.0], [0.0]])
    executed, pay, dres, price, fill = settle_curve(
        orders, np.array([100.0, 100.0]), np.array([10.0]), np.array([50.0]), curve)
    np.testing.assert_allclose(executed, orders)
    np.testing.assert_allclose(pay, [22.0, 0.0])
    np.testing.assert_allclose(dres, [22.0])
    np.testing.assert_allclose(price, [11.0])
    np.testing.assert_array_equal(fill, [1.0])


def test_curve_settlement_crossing_orders_clear_at_the_curve_price():
    """A buy of 3 and a sell of 3 net to Δ = 0: both trade at f(S), reserve unchanged."""
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    _, pay, dres, price, _ = settle_curve(np.array([[3.0], [-3.0]]), np.array([100.0, 0.0]),
                                          np.array([10.0]), np.array([50.0]), curve)
    np.testing.assert_allclose(price, [10.0])
    np.testing.assert_allclose(pay, [30.0, -30.0])
    np.testing.assert_allclose(dres, [0.0])


def test_curve_settlement_budget_uses_the_clearing_price():
    """f = S, S = 10, capital 22 buys exactly 2 tokens (cost 22): an order of 5 is cut."""
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    executed, pay, *_ = settle_curve(np.array([[5.0]]), np.array([22.0]), np.array([10.0]),
                                     np.array([50.0]), curve)
    assert pay[0] <= 22.0
    assert 1.5 < executed[0, 0] < 2.0 + 1e-9


def test_curve_settlement_reserve_shortfall_fills_sells_partially():
    """Reserve 10 but R(S) = 50: selling all 10 tokens would pay 50; only 10 is paid out."""
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    executed, pay, dres, _, fill = settle_curve(np.array([[-10.0]]), np.array([0.0]),
                                                np.array([10.0]), np.array([10.0]), curve)
    assert fill[0] < 1.0
    assert 10.0 + dres[0] >= 0.0
    np.testing.assert_allclose(-pay[0], 10.0, rtol=1e-9)
    # R(10) − R(10 − x) = 10 → 50 − (10 − x)²/2 = 10 → x = 10 − √80
    np.testing.assert_allclose(-executed[0, 0], 10.0 - np.sqrt(80.0), rtol=1e-9)


def test_reserve_shortfall_does_not_let_buyers_overspend():
    """f = S, S = 10, reserve 20 < R(S) = 50. A sells 10, B (capital 5) buys 1.

    The reserve pins the net flow at Δ* with R(10) − R(10 + Δ*) = 20, i.e.
    (10 + Δ*)² = 60, Δ* = √60 − 10, and the clearing price at p* = 20 / −Δ* ≈ 8.873.
    B's buy is budgeted at p*: it gets 5 / p* tokens, not the 1 / 5.5-priced amount the
    requested flow's average price would allow (which overspent before this was fixed).
    """
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    executed, pay, dres, price, fill = settle_curve(
        np.array([[-10.0], [1.0]]), np.array([0.0, 5.0]), np.array([10.0]),
        np.array([20.0]), curve)
    delta_star = np.sqrt(60.0) - 10.0
    np.testing.assert_allclose(price, [20.0 / -delta_star], rtol=1e-8)
    np.testing.assert_allclose(executed.sum(), delta_star, rtol=1e-8)
    assert pay[1] <= 5.0 and executed[1, 0] == pytest.approx(5.0 / price[0], rel=1e-8)
    assert 20.0 + dres[0] >= 0.0 and fill[0] < 1.0


def _dump_and_overbid(kind: str, n: int, m: int, dilution: float, scale: float,
                      wealth: float, seed: int) -> tuple:
    """A settlement case where a reserve shortfall and binding budgets meet: sellers dump
    their holdings into a reserve diluted to ``dilution`` of R(S) while buyers bid more
    than they can pay. Returns (curve, holdings, supply, reserve, capital, orders)."""
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=m)
    holdings = rng.uniform(0, 20, (n, m))
    supply = holdings.sum(axis=0)
    reserve = dilution * curve.reserve(supply)
    capital = rng.uniform(0, wealth, n)
    sellers = rng.random((n, 1)) < 0.5
    orders = np.where(sellers, -holdings * rng.uniform(0.5, 1.0, (n, m)),
                      np.abs(rng.normal(size=(n, m))) * scale)
    return curve, holdings, supply, reserve, capital, orders


@settings(max_examples=60, deadline=None)
@example(kind="linear", n=3, m=3, dilution=0.0, scale=10.0, wealth=43.0, seed=2)  # found by CI
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       n=st.integers(2, 8), m=st.integers(1, 3), dilution=st.floats(0.0, 1.0),
       scale=st.floats(0.01, 100), wealth=st.floats(0.01, 100),
       seed=st.integers(0, 2**32 - 1))
def test_curve_settlement_is_feasible_with_a_diluted_reserve(kind, n, m, dilution, scale,
                                                             wealth, seed):
    """Whatever the reserve, nobody overspends, the reserve never goes negative, and
    Σ payments = Σ reserve change (money is conserved)."""
    curve, holdings, supply, reserve, capital, orders = _dump_and_overbid(
        kind, n, m, dilution, scale, wealth, seed)
    executed, pay, dres, _, fill = settle_curve(orders, capital, supply, reserve, curve)
    assert np.all(capital - pay >= -1e-9 * np.maximum(capital, 1.0))
    assert np.all(reserve + dres >= -1e-9 * np.maximum(reserve, 1.0))
    assert np.all(executed >= -holdings - 1e-12)
    assert np.all((fill > 0) | (fill == 0)) and np.all(fill <= 1.0)
    np.testing.assert_allclose(pay.sum(), dres.sum(), rtol=1e-9, atol=1e-9)


def test_spot_settlement_hand_example():
    """§5.2 literal: B −= ã·P(t). P = 2, agent buys 3 → pays 6; reserve +6."""
    executed, pay, dres, price, _ = settle_spot(np.array([[3.0], [-1.0]]),
                                                np.array([100.0, 0.0]), np.array([50.0]),
                                                np.array([2.0]))
    np.testing.assert_allclose(pay, [6.0, -2.0])
    np.testing.assert_allclose(dres, [4.0])
    np.testing.assert_allclose(price, [2.0])
    np.testing.assert_allclose(executed, [[3.0], [-1.0]])


def test_mint_is_pro_rata():
    """§5.1 ψ = 6 on holdings (1, 2) (S = 3): each holder's share kept → (3, 6)."""
    out = mint_burn(np.array([[1.0], [2.0]]), np.array([3.0]), np.array([6.0]))
    np.testing.assert_allclose(out, [[3.0], [6.0]])


def test_burn_is_capped_at_supply():
    out = mint_burn(np.array([[1.0], [2.0]]), np.array([3.0]), np.array([-10.0]))
    np.testing.assert_allclose(out, [[0.0], [0.0]])
    assert np.all(out >= 0.0)


def test_mint_into_empty_asset_is_split_equally():
    out = mint_burn(np.zeros((4, 1)), np.array([0.0]), np.array([2.0]))
    np.testing.assert_allclose(out, np.full((4, 1), 0.5))


def test_mint_into_a_denormal_supply_keeps_every_share():
    """S = 3e-310: (S + ψ)/S overflows; each holder still gets its share of S + ψ."""
    out = mint_burn(np.array([[1e-310], [2e-310]]), np.array([3e-310]), np.array([9.0]))
    np.testing.assert_allclose(out, [[3.0], [6.0]], rtol=1e-6)  # denormal shares: few bits


def test_mint_stops_at_the_supply_limit():
    out = mint_burn(np.array([[1.0], [3.0]]), np.array([4.0]), np.array([100.0]),
                    limit=np.array([8.0]))
    np.testing.assert_allclose(out, [[2.0], [6.0]])


def test_market_step_hand_example_spot():
    """One asset, f = S (linear m=1, b=0), two agents with H = (5, 5) → S = 10, P = 10.

    Orders (1, 0), ν = 0, spot settlement, income I = 1, κ = 0.1, λ = 0.01, θdt = 1.
    Agent 0 pays 10 → B = (1000 − 10 + 1, 1000 + 1). S' = 11. Impact = 0.1·1 +
    0.01·(1 − 10) = 0.01; X' = 0 + 0.01 − 0 = 0.01; P' = f(11) + X' = 11.01.
    """
    curve = make_curve("linear", n_assets=1, slope=1.0, intercept=0.0)
    state = _state([1000.0, 1000.0], [[5.0], [5.0]], curve)
    params = _params(n_agents=2, settlement="spot", income=1.0, kappa=0.1, lam=0.01)
    new, info = market_step(state, np.array([[1.0], [0.0]]), params, curve, _quiet(1))
    np.testing.assert_allclose(new.capital, [991.0, 1001.0])
    np.testing.assert_allclose(new.supply, [11.0])
    np.testing.assert_allclose(new.deviation, [0.01])
    np.testing.assert_allclose(new.price, [11.01])
    np.testing.assert_allclose(info.demand, [1.0])


# ----------------------------------------------------------------- the reference workload
def _rmw_kernel_step(B, H, S, P, a, z, eps, adj, f):
    """WORKLOAD.md steps 3-7, written independently of the package."""
    a = a + 0.05 * (adj @ a)
    a = np.maximum(a, -H)
    spend = np.maximum(a, 0) @ P
    over = spend > B
    scale = np.where(over, B / np.where(over, spend, 1.0), 1.0)
    a = np.where(a > 0, a * scale[:, None], a)
    D = np.maximum(a, 0).sum(0)
    dP = 1e-3 * a.sum(0) + 1e-5 * (D - S)
    B = B - a @ P + 1.0
    H = H + a
    S = S + a.sum(0)
    P = f(S) + dP + 0.01 * eps + 0.5 * z
    return B, H, S, P


def test_market_step_reproduces_the_reference_workload():
    """With spot settlement, θdt = 1 and the RMW constants, market_step is the RMW step."""
    import networkx as nx

    n, m = 40, 3
    g = nx.watts_strogatz_graph(n, 4, 0.1, seed=3)
    adj = sp.csr_array(nx.to_scipy_sparse_array(g, nodelist=range(n), dtype=float))
    curve = make_curve("exponential", n_assets=m, a=1.0, k=0.05 / n)
    params = _params(n_agents=n, n_assets=m, settlement="spot", nu=0.05, kappa=1e-3,
                     lam=1e-5, zeta=0.5, income=1.0, theta=1.0)
    state = _state(np.full(n, 1000.0), np.full((n, m), 10.0), curve)
    # The RMW has no reserve limit: give the curve a reserve that never binds.
    state = replace(state, reserve=np.full(m, 1e12))
    B, H, S, P = state.capital, state.holdings, state.supply, state.price
    rng = np.random.default_rng(11)
    for _ in range(30):
        z, a, eps = (rng.normal(0, 0.1, m), rng.normal(size=(n, m)) * 40,
                     rng.normal(size=m))
        B, H, S, P = _rmw_kernel_step(B, H, S, P, a, z, eps, adj, curve.price)
        noise = StepNoise(factors=z, dW=np.zeros(m), eta=0.01 * eps)
        state, _ = market_step(state, a, params, curve, noise, adj)
        np.testing.assert_allclose(state.price, P, rtol=1e-9)
        np.testing.assert_allclose(state.capital, B, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(state.holdings, H, rtol=1e-9, atol=1e-9)


# ----------------------------------------------------------------- invariants (hypothesis)
@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       settlement=st.sampled_from(["curve", "spot"]),
       n=st.integers(1, 12), m=st.integers(1, 3), nu=st.floats(0, 0.5),
       psi=st.floats(-3, 3), scale=st.floats(0.1, 50), seed=st.integers(0, 2**32 - 1))
def test_invariants_hold_over_random_configs_and_order_streams(kind, settlement, n, m, nu,
                                                               psi, scale, seed):
    """S_j = Σ_i H_ij; B, H, reserve >= 0; finite; money conserved (modulo income)."""
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=m)
    params = _params(n_agents=n, n_assets=m, settlement=settlement, nu=nu, psi=psi,
                     kappa=1e-3, lam=1e-5, theta=0.5, sigma0=0.01, zeta=0.1, income=0.5)
    state = _state(rng.uniform(0, 100, n), rng.uniform(0, 20, (n, m)), curve)
    money0 = state.capital.sum() + state.reserve.sum()
    for t in range(15):
        orders = rng.normal(size=(n, m)) * scale
        noise = StepNoise(factors=rng.normal(size=m) * 0.1, dW=rng.normal(size=m),
                          eta=rng.normal(size=m) * 0.01)
        state, info = market_step(state, orders, params, curve, noise)
        np.testing.assert_allclose(state.supply, state.holdings.sum(0), rtol=1e-12)
        assert np.all(state.capital >= 0) and np.all(state.holdings >= 0)
        assert np.all(state.reserve >= 0) and np.all(state.price > 0)
        for arr in (state.capital, state.holdings, state.price, state.deviation):
            assert np.all(np.isfinite(arr))
        money = state.capital.sum() + state.reserve.sum() - 0.5 * n * (t + 1)
        assert abs(money - money0) <= 1e-9 * max(1.0, money0)
        np.testing.assert_allclose(info.payments.sum(), info.reserve_change.sum(),
                                   rtol=1e-9, atol=1e-9)
        if settlement == "curve" and psi == 0.0:
            np.testing.assert_allclose(state.reserve, curve.reserve(state.supply),
                                       rtol=1e-8, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       size=st.floats(0.01, 200), seed=st.integers(0, 2**32 - 1))
def test_round_trip_never_profits_under_curve_settlement(kind, size, seed):
    """Buy Δ then sell Δ (others holding) returns at most the capital spent."""
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=1)
    params = _params(n_agents=3, kappa=0.05, lam=1e-4, theta=0.5, sigma0=0.1, zeta=0.5)
    state = _state([500.0, 500.0, 500.0], [[10.0], [10.0], [10.0]], curve)
    start = state.capital[0]
    bought = None
    for order in (size, None):
        a = np.zeros((3, 1))
        a[0, 0] = order if order is not None else -bought
        noise = StepNoise(factors=rng.normal(size=1), dW=rng.normal(size=1),
                          eta=rng.normal(size=1) * 0.01)
        state, info = market_step(state, a, params, curve, noise)
        bought = info.executed[0, 0]
    assert state.holdings[0, 0] == pytest.approx(10.0, abs=1e-9)
    assert state.capital[0] <= start + 1e-9 * start


def test_round_trip_profits_under_spot_settlement():
    """The paper's literal §5.2 lets a trader profit from its own impact (documented).

    The profit is paid out of the reserve, i.e. by the other holders; a reserve that
    could not pay would fill the sale partially (tested above for curve settlement).
    """
    curve = make_curve("exponential", n_assets=1, a=1.0, k=0.01)
    params = _params(n_agents=2, settlement="spot", kappa=0.01, theta=1.0)
    state = _state([1000.0, 1000.0], [[10.0], [10.0]], curve)
    state = replace(state, reserve=np.array([1e6]))
    start = state.capital[0]
    state, _ = market_step(state, np.array([[50.0], [0.0]]), params, curve, _quiet(1))
    state, _ = market_step(state, np.array([[-50.0], [0.0]]), params, curve, _quiet(1))
    assert state.holdings[0, 0] == pytest.approx(10.0)
    assert state.capital[0] > start + 1.0


# ----------------------------------------------------------------- the fast path is exact
class _PublicQuote:
    """:class:`~mesa_econ.curves.SupplyQuote`'s interface through the public, checked curve
    methods (no trusted fast path)."""

    def __init__(self, curve, supply):
        self.curve, self.supply = curve, supply

    @property
    def spot(self):
        return self.curve.price(self.supply)

    def cost(self, delta):
        return self.curve.cost(self.supply, delta)

    def average_price(self, delta, cost):
        return self.curve.average_price(self.supply, delta)


def _reference_settle_curve(orders, capital, supply, reserve, curve):
    """settle_curve with every curve call through the public, checked method."""
    return _settle_curve(orders, capital, reserve, _PublicQuote(curve, supply))[:5]


def _reference_market_step(state, orders, params, curve, noise, adjacency=None):
    """market_step as first written: public curve methods, scipy's ``@``, no shortcuts (the
    column sums through the same kernel, ``column_sums``, so that the arrays compare bit for
    bit; ``column_sums`` itself is checked against numpy's sums below)."""
    if params.nu == 0.0:
        executed = orders
    elif adjacency is None:
        executed = orders + params.nu * (column_sums(orders) - orders)
    else:
        executed = orders + params.nu * (adjacency @ orders)
    executed = clip_short_sales(executed, state.holdings)
    if params.settlement == "curve":
        executed, payments, reserve_change, clearing, fill = _reference_settle_curve(
            executed, state.capital, state.supply, state.reserve, curve)
    else:
        executed, payments, reserve_change, clearing, fill = settle_spot(
            executed, state.capital, state.reserve, state.price,
            curve.supply_limit - state.supply)
    capital = state.capital - payments + params.income
    net_flow = column_sums(executed)
    holdings = mint_burn(state.holdings + executed, state.supply + net_flow, params.psi,
                         curve.supply_limit)
    supply = column_sums(holdings)
    reserve = np.maximum(state.reserve + reserve_change, 0.0)
    demand = column_sums(np.maximum(executed, 0.0))
    impact = pricing.market_impact(net_flow, demand, state.supply, params.kappa, params.lam)
    deviation = pricing.update_deviation(
        state.deviation, impact=impact, price=state.price, factors=noise.factors,
        factor_mean=params.factor_mean, theta=params.theta, sigma0=params.sigma0,
        sigma1=params.sigma1, zeta=params.zeta, dt=params.dt, dW=noise.dW)
    curve_price = curve.price(supply)
    price = pricing.quoted_price(curve_price, deviation, noise.eta, params.price_floor)
    return (MarketState(capital=capital, holdings=holdings, supply=supply, reserve=reserve,
                        deviation=deviation, price=price),
            (executed, net_flow, demand, clearing, payments, reserve_change, fill, curve_price))


def _same_bits(a, b) -> bool:
    """Equal to the last bit (sign of zero included), with the same dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


_INFO_FIELDS = ("executed", "net_flow", "demand", "clearing_price", "payments",
                "reserve_change", "sell_fill", "curve_price")
_STATE_FIELDS = ("capital", "holdings", "supply", "reserve", "deviation", "price")


@settings(max_examples=80, deadline=None)
@example(kind="linear", settlement="curve", n=3, m=3, nu=0.0, psi=0.0, graph=False,
         dilution=0.0, wealth=43.0, scale=10.0, seed=2)  # reserve short, budgets binding
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       settlement=st.sampled_from(["curve", "curve", "spot"]), n=st.integers(1, 30),
       m=st.sampled_from([1, 2, 3, 20]), nu=st.sampled_from([0.0, 0.3]),
       psi=st.sampled_from([0.0, 2.0, -3.0]), graph=st.booleans(),
       dilution=st.sampled_from([0.0, 0.3, 1.0]), wealth=st.floats(0.01, 1000.0),
       scale=st.floats(0.01, 50.0), seed=st.integers(0, 2**32 - 1))
def test_market_step_fast_path_equals_the_checked_reference_bit_for_bit(
        kind, settlement, n, m, nu, psi, graph, dilution, wealth, scale, seed):
    """market_step (trusted curve path, scipy's CSR kernel called directly, f(S) passed on)
    gives every array of the public-method reference bit for bit, over random states where
    budgets bind and reserves run short (M = 20 takes the numpy branches of the checks)."""
    rng = np.random.default_rng(seed)
    curve = make_curve(kind, n_assets=m)
    params = _params(n_agents=n, n_assets=m, settlement=settlement, nu=nu, psi=psi,
                     kappa=1e-3, lam=1e-5, theta=0.5, sigma0=0.01, sigma1=0.01, zeta=0.1,
                     income=0.5)
    adjacency = None
    if graph and n > 1:
        adjacency = sp.random_array((n, n), density=0.4, rng=rng, format="csr") * 2.0
        adjacency.setdiag(0.0)
        adjacency.eliminate_zeros()
    state = _state(rng.uniform(0, wealth, n), rng.uniform(0, 20, (n, m)), curve)
    state = replace(state, reserve=dilution * state.reserve)
    ref, curve_price = state, None
    for _ in range(5):
        orders = np.where(rng.random((n, m)) < 0.2, 0.0, rng.normal(size=(n, m)) * scale)
        noise = StepNoise(factors=rng.normal(size=m) * 0.1, dW=rng.normal(size=m),
                          eta=rng.normal(size=m) * 0.01)
        state, info = market_step(state, orders, params, curve, noise, adjacency,
                                  curve_price=curve_price)
        ref, ref_info = _reference_market_step(ref, orders, params, curve, noise, adjacency)
        for name in _STATE_FIELDS:
            assert _same_bits(getattr(state, name), getattr(ref, name)), name
        for name, want in zip(_INFO_FIELDS, ref_info, strict=True):
            assert _same_bits(getattr(info, name), want), name
        curve_price = info.curve_price if rng.random() < 0.5 else None


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       n=st.integers(1, 8), m=st.sampled_from([1, 3, 20]), dilution=st.floats(0.0, 1.0),
       scale=st.floats(0.01, 100), wealth=st.floats(0.01, 100),
       seed=st.integers(0, 2**32 - 1))
def test_settle_curve_equals_the_checked_reference_bit_for_bit(kind, n, m, dilution, scale,
                                                               wealth, seed):
    """settle_curve through a SupplyQuote returns the reference's arrays exactly, also
    where sellers dump into a short reserve while buyers bid beyond their budgets."""
    curve, _, supply, reserve, capital, orders = _dump_and_overbid(
        kind, n, m, dilution, scale, wealth, seed)
    orders[:, np.random.default_rng(seed + 1).random(m) < 0.3] = 0.0  # untraded: at f(S)
    got = settle_curve(orders, capital, supply, reserve, curve)
    want = _reference_settle_curve(orders, capital, supply, reserve, curve)
    assert all(_same_bits(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("m", [1, 3])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_neighbour_sum_is_scipys_product_bit_for_bit(m, index_dtype):
    """The direct CSR kernel call equals ``adjacency @ orders`` for weighted, unsorted and
    64-bit-indexed matrices; other layouts take the public product."""
    rng = np.random.default_rng(5)
    n = 40
    dense = np.where(rng.random((n, n)) < 0.2, rng.normal(size=(n, n)), 0.0)
    np.fill_diagonal(dense, 0.0)
    orders = rng.normal(size=(n, m)) * 10
    csr = sp.csr_array(dense)
    csr.indptr, csr.indices = csr.indptr.astype(index_dtype), csr.indices.astype(index_dtype)
    unsorted = csr.copy()
    for i in range(n):  # reverse each row's entries: same matrix, another summation order
        lo, hi = unsorted.indptr[i], unsorted.indptr[i + 1]
        unsorted.indices[lo:hi] = unsorted.indices[lo:hi][::-1].copy()
        unsorted.data[lo:hi] = unsorted.data[lo:hi][::-1].copy()
    unsorted.has_sorted_indices = False
    for adjacency in (csr, unsorted, sp.csr_matrix(dense), sp.coo_array(dense),
                      sp.csr_array(dense.astype(np.float32))):
        assert _same_bits(_neighbour_sum(adjacency, orders), adjacency @ orders)
    strided = np.asfortranarray(orders)  # not C-ordered: the public product
    assert _same_bits(_neighbour_sum(csr, strided), csr @ strided)
