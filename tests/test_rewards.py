"""Tests of mesa_econ.rewards: §4 equations by hand, properties, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mesa_econ.config import RewardConfig
from mesa_econ.rewards import (
    RewardBreakdown,
    compute_rewards,
    cooperative_bonus,
    liquidation_mark,
    profit_reward,
    stability_penalty,
    use_value_reward,
)

# Two agents, two assets; the step used by the hand-computed tests below.
STEP = {
    "capital_before": np.array([100.0, 50.0]),
    "capital_after": np.array([90.0, 60.0]),
    "holdings_before": np.array([[1.0, 2.0], [3.0, 0.0]]),
    "holdings_after": np.array([[2.0, 2.0], [2.0, 0.0]]),
    "price_before": np.array([10.0, 5.0]),
    "price_after": np.array([11.0, 4.0]),
}


# ------------------------------------------------------------------ equations by hand


def test_profit_reward_by_hand():
    """§4.1: r_i = B_i(t+1) − B_i(t) + Σ_j H_ij(t+1) P_j(t+1) − H_ij(t) P_j(t)."""
    # agent 0: (90 − 100) + (2·11 + 2·4) − (1·10 + 2·5) = −10 + 30 − 20 = 0
    # agent 1: (60 − 50) + (2·11 + 0·4) − (3·10 + 0·5) = 10 + 22 − 30 = 2
    np.testing.assert_allclose(profit_reward(**STEP), [0.0, 2.0])


def test_stability_penalty_by_hand():
    """§4.2: −ω Σ_j |P_j(t+1) − P_j(t)|."""
    # −0.5 · (|11 − 10| + |4 − 5|) = −0.5 · 2 = −1
    assert stability_penalty([10.0, 5.0], [11.0, 4.0], omega=0.5) == pytest.approx(-1.0)
    assert type(stability_penalty([10.0, 5.0], [11.0, 4.0], omega=0.5)) is float
    assert stability_penalty([10.0, 5.0], [11.0, 4.0], omega=0.0) == 0.0


def test_cooperative_bonus_all_by_hand():
    """§4.3: ρ Σ_{k≠i} r_k."""
    # Σr = 6; 0.1 · (6 − 1, 6 − 2, 6 − 3) = (0.5, 0.4, 0.3)
    np.testing.assert_allclose(cooperative_bonus([1.0, 2.0, 3.0], 0.1), [0.5, 0.4, 0.3])


def test_cooperative_bonus_neighbours_by_hand():
    """§4.3 over graph neighbours: ρ (A r)_i, here the path 0 − 1 − 2."""
    adjacency = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float))
    # A r = (r1, r0 + r2, r1) = (2, 4, 2); times ρ = 0.1
    np.testing.assert_allclose(cooperative_bonus([1.0, 2.0, 3.0], 0.1, adjacency), [0.2, 0.4, 0.2])
    # dense adjacency and old-style sparse matrices work the same
    np.testing.assert_allclose(
        cooperative_bonus([1.0, 2.0, 3.0], 0.1, adjacency.toarray()), [0.2, 0.4, 0.2]
    )
    np.testing.assert_allclose(
        cooperative_bonus([1.0, 2.0, 3.0], 0.1, sp.csr_matrix(adjacency)), [0.2, 0.4, 0.2]
    )


def test_use_value_by_hand():
    """§9 resource network: value · Σ_j min(H_ij, d_ij)."""
    holdings = [[1.0, 5.0], [0.0, 2.0]]
    demand = [[2.0, 3.0], [1.0, 1.0]]
    # min = [[1, 3], [0, 1]] -> row sums (4, 1) -> times 2 = (8, 2)
    np.testing.assert_allclose(use_value_reward(holdings, demand, 2.0), [8.0, 2.0])


def test_compute_rewards_by_hand():
    """§4.1-§4.3: total = w·profit + stability + cooperative + use value."""
    cfg = RewardConfig(profit_mark="quote", profit_weight=2.0, omega=0.5, rho=0.1, use_value=2.0)
    out = compute_rewards(cfg, **STEP, demand=np.ones((2, 2)))
    # profit (0, 2) from test_profit_reward_by_hand; stability −1 for both;
    # use value on holdings_after min([[2, 2], [2, 0]], 1) = [[1, 1], [1, 0]] -> 2·(2, 1)
    # = (4, 2); cooperative over the others' own payoff, profit + use value = (4, 4):
    # 0.1 · (8 − (4, 4)) = (0.4, 0.4); total = 2·(0, 2) + (−1, −1) + (0.4, 0.4) + (4, 2)
    assert isinstance(out, RewardBreakdown)
    np.testing.assert_allclose(out.profit, [0.0, 2.0])
    np.testing.assert_allclose(out.stability, [-1.0, -1.0])
    np.testing.assert_allclose(out.cooperative, [0.4, 0.4])
    np.testing.assert_allclose(out.use_value, [4.0, 2.0])
    np.testing.assert_allclose(out.total, [3.4, 5.4])
    for term in (out.profit, out.stability, out.cooperative, out.use_value, out.total):
        assert term.shape == (2,)


def test_compute_rewards_neighbour_scope_uses_adjacency():
    """§4.3 with cooperative_scope='neighbours': only neighbours' profit counts."""
    cfg = RewardConfig(profit_mark="quote", rho=0.5, cooperative_scope="neighbours")
    no_edges = sp.csr_array((2, 2))
    out = compute_rewards(cfg, **STEP, adjacency=no_edges)
    np.testing.assert_allclose(out.cooperative, [0.0, 0.0])
    # one edge: agent 0 gets 0.5 · r_1 = 1, agent 1 gets 0.5 · r_0 = 0
    edge = sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(compute_rewards(cfg, **STEP, adjacency=edge).cooperative, [1.0, 0.0])


def test_compute_rewards_defaults_are_profit_only():
    """§4.1: the default RewardConfig gives total == profit, other terms zero."""
    out = compute_rewards(RewardConfig(profit_mark="quote"), **STEP)
    np.testing.assert_allclose(out.total, out.profit)
    assert not out.stability.any() and not out.cooperative.any() and not out.use_value.any()


def test_breakdown_is_frozen():
    out = compute_rewards(RewardConfig(profit_mark="quote"), **STEP)
    with pytest.raises(AttributeError):
        out.total = np.zeros(2)  # type: ignore[misc]


# ----------------------------------------------------------------------- properties


@st.composite
def closed_economy_step(draw):
    """A step where money and assets only move between agents at unchanged prices."""
    n = draw(st.integers(2, 8))
    m = draw(st.integers(1, 3))
    money = st.floats(0.0, 1e3)
    capital = draw(arrays(float, n, elements=money))
    holdings = draw(arrays(float, (n, m), elements=st.floats(0.0, 1e2)))
    prices = draw(arrays(float, m, elements=st.floats(0.01, 1e2)))
    transfers = draw(arrays(float, n, elements=st.floats(-1e2, 1e2)))
    perm = draw(st.permutations(range(n)))
    return {
        "capital_before": capital,
        "capital_after": capital + transfers - transfers.mean(),
        "holdings_before": holdings,
        "holdings_after": holdings[list(perm)],
        "price_before": prices,
        "price_after": prices.copy(),
    }


@settings(max_examples=60, deadline=None)
@given(closed_economy_step())
def test_profit_sums_to_zero_in_closed_economy(step):
    """§4.1: with fixed prices, profits only redistribute: Σ_i r_i = 0."""
    total = profit_reward(**step).sum()
    scale = (
        1.0
        + np.abs(step["capital_before"]).sum()
        + np.abs(step["holdings_before"] @ step["price_before"]).sum()
    )
    assert abs(total) <= 1e-9 * scale


@settings(max_examples=60, deadline=None)
@given(arrays(float, st.integers(1, 12), elements=st.floats(-1e3, 1e3)), st.floats(0.0, 2.0))
def test_cooperative_all_is_rho_times_others(profit, rho):
    """§4.3: the O(N) form equals ρ Σ_{k≠i} r_k summed explicitly, and the complete graph."""
    n = profit.shape[0]
    explicit = np.array([rho * sum(profit[k] for k in range(n) if k != i) for i in range(n)])
    np.testing.assert_allclose(cooperative_bonus(profit, rho), explicit, atol=1e-8)
    complete = sp.csr_array(np.ones((n, n)) - np.eye(n))
    np.testing.assert_allclose(cooperative_bonus(profit, rho, complete), explicit, atol=1e-8)


@settings(max_examples=40, deadline=None)
@given(
    arrays(float, 3, elements=st.floats(0.01, 1e3)),
    arrays(float, 3, elements=st.floats(0.01, 1e3)),
    st.floats(0.0, 5.0),
)
def test_stability_penalty_is_nonpositive_and_symmetric(before, after, omega):
    """§4.2: the term is <= 0 and does not depend on the direction of the move."""
    forward = stability_penalty(before, after, omega)
    assert forward <= 0.0
    assert forward == pytest.approx(stability_penalty(after, before, omega))


# ----------------------------------------------------------------------- validation


def _with(**changes):
    return {**STEP, **changes}


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"capital_before": np.ones((2, 1))}, "capital_before"),
        ({"capital_after": np.ones(3)}, "capital_after"),
        ({"holdings_before": np.ones((3, 2))}, "holdings_before"),
        ({"holdings_after": np.ones((2, 3))}, "holdings_after"),
        ({"holdings_after": np.ones(2)}, "holdings_after"),
        ({"price_before": np.ones((2, 2))}, "price_before"),
        ({"price_after": np.ones(3)}, "price_after"),
        ({"price_after": np.array([1.0, np.nan])}, "price_after"),
        ({"capital_after": ["a", "b"]}, "capital_after"),
    ],
)
def test_profit_reward_rejects_bad_input(changes, name):
    with pytest.raises(ValueError, match=name):
        profit_reward(**_with(**changes))


def test_stability_penalty_rejects_bad_input():
    with pytest.raises(ValueError, match="omega"):
        stability_penalty([1.0], [2.0], -0.1)
    with pytest.raises(ValueError, match="price_after"):
        stability_penalty([1.0, 2.0], [2.0], 0.1)


def test_cooperative_bonus_rejects_bad_input():
    with pytest.raises(ValueError, match="rho"):
        cooperative_bonus([1.0, 2.0], -1.0)
    with pytest.raises(ValueError, match="adjacency"):
        cooperative_bonus([1.0, 2.0], 0.1, sp.csr_array((3, 3)))
    with pytest.raises(ValueError, match="adjacency"):
        cooperative_bonus([1.0, 2.0], 0.1, sp.eye_array(2, format="csr"))
    with pytest.raises(ValueError, match="profit"):
        cooperative_bonus([[1.0, 2.0]], 0.1)


def test_use_value_rejects_bad_input():
    with pytest.raises(ValueError, match="demand"):
        use_value_reward(np.ones((2, 2)), np.ones((2, 3)), 1.0)
    with pytest.raises(ValueError, match="demand"):
        use_value_reward(np.ones((2, 2)), -np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError, match="value"):
        use_value_reward(np.ones((2, 2)), np.ones((2, 2)), -1.0)


def test_compute_rewards_requires_adjacency_for_neighbours():
    cfg = RewardConfig(profit_mark="quote", rho=0.1, cooperative_scope="neighbours")
    with pytest.raises(ValueError, match="adjacency"):
        compute_rewards(cfg, **STEP)
    # not needed when the cooperative term is off
    compute_rewards(RewardConfig(profit_mark="quote", rho=0.0, cooperative_scope="neighbours"),
                    **STEP)


def test_compute_rewards_requires_demand_for_use_value():
    with pytest.raises(ValueError, match="demand"):
        compute_rewards(RewardConfig(profit_mark="quote", use_value=1.0), **STEP)
    with pytest.raises(ValueError, match="demand"):
        compute_rewards(RewardConfig(profit_mark="quote", use_value=1.0), **STEP,
                        demand=np.ones((3, 2)))
    compute_rewards(RewardConfig(profit_mark="quote", use_value=0.0), **STEP)


def test_compute_rewards_reports_shape_mismatch_by_name():
    with pytest.raises(ValueError, match="holdings_after"):
        compute_rewards(RewardConfig(profit_mark="quote"), **_with(holdings_after=np.ones((2, 5))))


@pytest.mark.parametrize(
    "name",
    [
        "capital_before",
        "capital_after",
        "holdings_before",
        "holdings_after",
        "price_before",
        "price_after",
        "demand",
    ],
)
def test_compute_rewards_names_non_finite_input(name):
    """The hot path checks finiteness once, on the total, and then names the culprit."""
    bad = {**STEP, "demand": np.ones((2, 2))}
    bad[name] = bad[name].copy()
    bad[name].flat[0] = np.nan
    with pytest.raises(ValueError, match=name):
        compute_rewards(RewardConfig(profit_mark="quote", use_value=1.0), **bad)


def test_compute_rewards_names_non_finite_adjacency():
    cfg = RewardConfig(profit_mark="quote", rho=0.1, cooperative_scope="neighbours")
    adjacency = np.array([[0.0, np.inf], [1.0, 0.0]])
    with pytest.raises(ValueError, match="adjacency"):
        compute_rewards(cfg, **STEP, adjacency=adjacency)


@pytest.mark.parametrize("scope", ["all", "neighbours"])
def test_compute_rewards_takes_float_arrays_as_they_are(scope):
    """The model's float64 arrays skip conversion; the terms are those computed from lists
    (the converting path), bit for bit, and a shape mismatch is still an error."""
    cfg = RewardConfig(profit_mark="quote", omega=0.5, rho=0.1, use_value=0.2,
                       cooperative_scope=scope)
    adjacency = sp.csr_array(np.array([[0.0, 1.0], [1.0, 0.0]]))
    demand = np.array([[1.0, 3.0], [2.0, 0.5]])
    fast = compute_rewards(cfg, **STEP, adjacency=adjacency, demand=demand)
    slow = compute_rewards(cfg, **{k: v.tolist() for k, v in STEP.items()},
                           adjacency=adjacency, demand=demand)
    for name in ("profit", "stability", "cooperative", "use_value", "total"):
        assert getattr(fast, name).tobytes() == getattr(slow, name).tobytes()
    with pytest.raises(ValueError, match="price_after"):
        compute_rewards(cfg, **{**STEP, "price_after": np.ones(3)})


# ------------------------------------------------------------------ issue 9: marks, attribution
RESERVES = {"reserve_before": np.array([40.0, 8.0]), "reserve_after": np.array([50.0, 6.0]),
            "supply_before": np.array([4.0, 2.0]), "supply_after": np.array([4.0, 2.0])}


def test_liquidation_mark_by_hand():
    """v_j = reserve_j / S_j (0 where S_j = 0)."""
    np.testing.assert_allclose(liquidation_mark([40.0, 8.0, 5.0], [4.0, 2.0, 0.0]),
                               [10.0, 4.0, 0.0])


def test_liquidation_profit_by_hand():
    """§4.1 with v = reserve/S: before v = (10, 4), after (12.5, 3).
    Agent 0: −10 + (2·12.5 + 2·3) − (1·10 + 2·4) = 3; agent 1: 10 + 2·12.5 − 3·10 = 5."""
    out = compute_rewards(RewardConfig(), **STEP, **RESERVES)
    np.testing.assert_allclose(out.profit, [3.0, 5.0])


def test_liquidation_mark_needs_the_reserves():
    with pytest.raises(ValueError, match="reserve_before"):
        compute_rewards(RewardConfig(), **STEP)


def test_attributed_stability_by_hand():
    """−ω Σ_j (|ΔP_j| − |P^{−i}_j − P_j|): |ΔP| = (1, 1); without agent 0 the prices would
    have been (10.5, 5) (moves 0.5, 0), without agent 1 (11, 4.5) (moves 1, 0.5)."""
    cfg = RewardConfig(profit_mark="quote", omega=2.0, stability="attributed")
    without = np.array([[10.5, 5.0], [11.0, 4.5]])
    out = compute_rewards(cfg, **STEP, price_without=without)
    np.testing.assert_allclose(out.stability, [-2.0 * (2 - 0.5), -2.0 * (2 - 1.5)])
    with pytest.raises(ValueError, match="price_without"):
        compute_rewards(cfg, **STEP)


def test_use_value_with_a_binding_capacity_by_hand():
    """§9 used = min(H, d)·min(1, C/Σ_k min(H_k, d_k)) with capacity C = (1, 10)."""
    cfg = RewardConfig(profit_mark="quote", use_value=1.0)
    demand = np.array([[2.0, 2.0], [2.0, 2.0]])
    out = compute_rewards(cfg, **STEP, demand=demand, capacity=np.array([1.0, 10.0]))
    # min(H_after, d) = [[2, 2], [2, 0]]; asset 0: Σ = 4 > C = 1 → scale 1/4; asset 1: 1
    np.testing.assert_allclose(out.use_value, [0.5 + 2.0, 0.5 + 0.0])
