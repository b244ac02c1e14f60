"""EconomyModel: Mesa integration, agents as views, determinism, invariants, bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ.agents import TraderAgent
from mesa_econ.config import MarketConfig, ModelConfig
from mesa_econ.model import EconomyModel
from mesa_econ.testing import assert_invariants, assert_same_run, total_money


def test_same_seed_same_run():
    frame = assert_same_run(lambda: EconomyModel(n_agents=20, graph="watts_strogatz",
                                                 kappa=1e-3, sigma0=0.01, rng=7))
    assert len(frame) == 26


def test_same_seed_same_run_with_learning_policies():
    assert_same_run(lambda: EconomyModel(n_agents=8, policy="actor_critic", rng=5), steps=10)


def test_seed_keyword_equals_rng_and_string_seed_is_cast():
    runs = [EconomyModel(n_agents=5, seed=3), EconomyModel(n_agents=5, rng="3"),
            EconomyModel(n_agents=5, rng=3)]
    for m in runs:
        for _ in range(5):
            m.step()
    frames = [m.datacollector.get_model_vars_dataframe() for m in runs]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    pd.testing.assert_frame_equal(frames[0], frames[2])


def test_different_seeds_differ():
    a, b = EconomyModel(n_agents=5, rng=1), EconomyModel(n_agents=5, rng=2)
    a.step()
    b.step()
    assert not np.array_equal(a.prices, b.prices)


def test_agents_are_views_on_the_arrays():
    model = EconomyModel(n_agents=6, n_assets=2, rng=0)
    for _ in range(3):
        model.step()
    agents = list(model.agents)
    assert len(agents) == 6 and all(isinstance(a, TraderAgent) for a in agents)
    for agent in agents:
        i = agent.row
        assert agent.capital == model.capital[i]
        np.testing.assert_array_equal(agent.holdings, model.holdings[i])
        assert agent.wealth == pytest.approx(model.capital[i]
                                             + model.holdings[i] @ model.token_marks)
        assert agent.reward == model.last_rewards[i]
        assert agent.cell.coordinate == i
    rich = model.agents.select(lambda a: a.capital > np.median(model.capital))
    assert 0 < len(rich) < 6


def test_state_arrays_are_read_only():
    model = EconomyModel(n_agents=3, rng=0)
    for name in ("capital", "holdings", "supply", "reserve", "prices", "curve_prices"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(model, name)[0] = 1.0


def test_agent_policy_equals_the_ensemble_row():
    """agent.policy(obs) is exactly row i of the batched ensemble call (one thread)."""
    model = EconomyModel(n_agents=7, n_assets=2, policy="actor_critic", rng=2)
    obs = torch.from_numpy(model.observations())
    mean, log_std, value = model.ensemble(obs)
    for agent in model.agents:
        m_i, ls_i, v_i = agent.policy(obs[agent.row])
        assert torch.equal(m_i.reshape(-1), mean[agent.row])
        assert torch.equal(ls_i.reshape(-1), log_std[agent.row])
        assert torch.equal(v_i.reshape(-1), value[agent.row].reshape(-1))


def test_observation_layout():
    """§2.1 S_i = [B_i/B0, H_i/H0, P/P0, (Z − m)/s, t/H]: at t = 0 ones, Z(0)/s, then 0."""
    model = EconomyModel(n_agents=4, n_assets=2, factor_std=0.5, horizon=8, rng=0)
    obs = model.observations()
    assert obs.shape == (4, 8) and obs.dtype == np.float32
    assert model.observation_layout() == [("capital", 1), ("holdings", 2), ("price", 2),
                                          ("factor", 2), ("time", 1)]
    np.testing.assert_allclose(obs[:, :5], 1.0)
    np.testing.assert_allclose(obs[:, 5:7], np.tile(model.factors / 0.5, (4, 1)), rtol=1e-6)
    np.testing.assert_array_equal(obs[:, 7], 0.0)
    for _ in range(3):
        model.step()
    np.testing.assert_array_equal(model.observations()[:, 7], 3 / 8)
    for _ in range(7):
        model.step()
    np.testing.assert_array_equal(model.observations()[:, 7], 1.0)  # min(t, H)/H past the horizon


def test_observation_scales_rebuild_the_observation():
    """B0 = 200, H0 = 2 (initial_holdings), P0 = f(N·H0) of a linear curve a + bS at
    S = 4·2: 1 + 0.5·8 = 5; s = 0.5 (factor_std), m = 0.1; H = 8: the observation row is
    [B/B0, H/H0, P/P0, (Z − m)/s, t/H] with exactly these constants, which are read-only."""
    model = EconomyModel(n_agents=4, n_assets=2, curve="linear",
                         curve_params={"intercept": 1.0, "slope": 0.5}, initial_capital=200.0,
                         initial_holdings=2.0, factor_mean=0.1, factor_std=0.5, horizon=8,
                         policy="random", rng=3)
    scales = model.observation_scales
    assert (scales.capital, scales.holdings, scales.horizon) == (200.0, 2.0, 8)
    np.testing.assert_array_equal(scales.price, [5.0, 5.0])
    np.testing.assert_array_equal(scales.factor_mean, [0.1, 0.1])
    np.testing.assert_array_equal(scales.factor_scale, [0.5, 0.5])
    for _ in range(3):
        model.step()
    want = np.concatenate([model.capital[:, None] / 200.0, model.holdings / 2.0,
                           np.tile(model.prices / 5.0, (4, 1)),
                           np.tile((model.factors - 0.1) / 0.5, (4, 1)),
                           np.full((4, 1), 3 / 8)], axis=1).astype(np.float32)
    np.testing.assert_array_equal(model.observations(), want)
    with pytest.raises(ValueError, match="read-only"):
        scales.price[0] = 1.0


def test_observation_carries_the_needs():
    """With needs d_ij, the last M columns are d_i / H0, fixed per agent."""
    demand = np.arange(6.0).reshape(3, 2)
    model = EconomyModel(n_agents=3, n_assets=2, initial_holdings=2.0, demand=demand, rng=0)
    assert model.observation_layout()[-1] == ("need", 2) and model.obs_dim == 2 + 3 * 2 + 2
    np.testing.assert_allclose(model.observations()[:, -2:], demand / 2.0)


def test_population_seed_fixes_graph_and_needs_not_noise():
    """Same population seed, different noise seeds: same graph and needs, other prices."""
    kw = dict(n_agents=12, n_assets=1, graph="watts_strogatz", demand=2.0, population_seed=5,
              policy="random")
    a, b = EconomyModel(**kw, rng=1), EconomyModel(**kw, rng=2)
    assert sorted(a.graph.edges) == sorted(b.graph.edges)
    np.testing.assert_array_equal(a.demand, b.demand)
    a.step(), b.step()
    assert not np.array_equal(a.prices, b.prices)
    assert a.population_seed == b.population_seed == 5
    given = EconomyModel(**{**kw, "demand": a.demand}, rng=3)  # needs passed in: same graph
    assert sorted(given.graph.edges) == sorted(a.graph.edges)


def test_policies_do_not_consume_the_market_noise():
    """Common random numbers: the same seed gives the same market noise whatever the policy."""
    kw = dict(n_agents=5, n_assets=2, rng=3)
    draws = []
    for policy in ("hold", "random", "actor_critic", "informed"):
        model = EconomyModel(**kw, policy=policy)
        model.step()
        draws.append(model.rng.bit_generator.state["state"]["state"])
    assert len(set(draws)) == 1


def test_observed_factors_are_the_ones_the_step_uses():
    """An agent acting outside step() (trainer, PettingZoo) sees this step's Z.

    θdt = 1 and only ζ on: the deviation after the step is exactly ζ·(Z − m) for the Z
    that observations() showed before the step.
    """
    model = EconomyModel(n_agents=3, n_assets=2, policy="hold", zeta=0.7, factor_mean=0.2,
                         factor_std=0.3, sigma_eta=0.0, rng=9)
    for _ in range(5):
        seen = model.observations()[0, 5:7] * 0.3 + 0.2
        model.step()
        np.testing.assert_allclose(model.deviation, 0.7 * (seen - 0.2), rtol=1e-6)


def test_collect_every():
    model = EconomyModel(n_agents=3, collect_every=3, rng=0)
    for _ in range(7):
        model.step()
    assert len(model.datacollector.get_model_vars_dataframe()) == 3  # t = 0, 3, 6
    quiet = EconomyModel(n_agents=3, collect_every=0, rng=0)
    for _ in range(4):
        quiet.step()
    assert len(quiet.datacollector.get_model_vars_dataframe()) == 1
    np.testing.assert_array_equal(quiet.prices, _run(EconomyModel(n_agents=3, rng=0), 4).prices)


def _run(model, steps):
    for _ in range(steps):
        model.step()
    return model


@pytest.mark.parametrize("graph,params", [("complete", {}),
                                          ("watts_strogatz", {"k": 4, "p": 0.2}),
                                          ("erdos_renyi", {"p": 0.3}),
                                          ("barabasi_albert", {"m": 2}), ("empty", {})])
def test_graph_kinds(graph, params):
    model = EconomyModel(n_agents=12, graph=graph, graph_params=params, nu=0.1, rng=1)
    assert model.graph.number_of_nodes() == 12
    assert len(model.grid.all_cells) == 12
    money = total_money(model)
    for _ in range(5):
        model.step()
    assert_invariants(model, money)


def test_user_graph_and_its_size_check():
    g = nx.cycle_graph(["a", "b", "c", "d"])
    model = EconomyModel(n_agents=4, graph=g, nu=0.1, rng=0)
    assert model.adjacency.shape == (4, 4) and model.adjacency.sum() == 8
    with pytest.raises(ValueError, match="graph"):
        EconomyModel(n_agents=5, graph=g)


def test_from_config_equals_keywords():
    cfg = ModelConfig(market=MarketConfig(n_agents=6, kappa=1e-3, settlement="spot"))
    a = EconomyModel.from_config(cfg, rng=4)
    b = EconomyModel(n_agents=6, kappa=1e-3, settlement="spot", rng=4)
    for m in (a, b):
        for _ in range(5):
            m.step()
    pd.testing.assert_frame_equal(a.datacollector.get_model_vars_dataframe(),
                                  b.datacollector.get_model_vars_dataframe())


def test_submitted_orders_replace_the_policy():
    model = EconomyModel(n_agents=3, n_assets=1, policy="random", sigma_eta=0.0, rng=0)
    model.submit_orders(np.zeros((3, 1)))
    model.step()
    np.testing.assert_array_equal(model.holdings, np.full((3, 1), 10.0))
    with pytest.raises(ValueError, match="volumes shape"):
        model.submit_orders(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="NaN"):
        model.submit_orders(np.full((3, 1), np.nan))


def test_shock_adds_a_spike_to_z():
    """The spike enters Z of the step that starts at t = shock_step, then decays."""
    model = EconomyModel(n_agents=3, n_assets=2, factor_std=0.0, shock_step=2,
                         shock_size=5.0, shock_assets=(1,), shock_decay=0.5, rng=0)
    zs = []
    for _ in range(5):
        zs.append(model.factors.copy())  # Z(t) used by the coming step
        model.step()
    np.testing.assert_allclose(np.array(zs)[:, 1], [0.0, 0.0, 5.0, 2.5, 1.25])
    np.testing.assert_allclose(np.array(zs)[:, 0], 0.0)


def test_datacollector_reporters_are_plain_floats():
    model = EconomyModel(n_agents=5, collect_agents=True, rng=0)
    model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert {"price_0", "curve_price_0", "hhi", "gini", "volatility", "price_entropy",
            "reserve_coverage", "mean_capital", "mean_reward"} <= set(frame.columns)
    for value in frame.iloc[-1]:
        assert type(value) is float
    agents = model.datacollector.get_agent_vars_dataframe()
    assert len(agents) == 10 and set(agents.columns) == {"capital", "wealth", "reward"}


@settings(max_examples=15, deadline=None)
@given(curve=st.sampled_from(["linear", "logarithmic", "exponential", "sigmoid", "power"]),
       policy=st.sampled_from(["random", "mean_reversion", "actor_critic"]),
       settlement=st.sampled_from(["curve", "spot"]), psi=st.sampled_from([0.0, 0.5]),
       seed=st.integers(0, 10_000))
def test_model_invariants_over_random_configs(curve, policy, settlement, psi, seed):
    model = EconomyModel(n_agents=6, n_assets=2, curve=curve, policy=policy,
                         settlement=settlement, psi=psi, kappa=1e-3, theta=0.3, sigma0=0.01,
                         zeta=0.1, income=1.0, trade_scale=5.0, graph="watts_strogatz",
                         graph_params={"k": 2}, nu=0.1, rng=seed)
    money = total_money(model)
    for _ in range(10):
        model.step()
        assert_invariants(model, money)


@pytest.mark.parametrize("kwargs,field", [
    ({"n_agents": 0}, "n_agents"), ({"n_assets": -1}, "n_assets"),
    ({"curve": "cubic"}, "curve"), ({"graph": "ring"}, "graph"), ({"nu": -0.1}, "nu"),
    ({"kappa": -1.0}, "kappa"), ({"kappa": [0.1, 0.2]}, "kappa"), ({"lam": -1}, "lam"),
    ({"theta": 2.5}, "theta"), ({"sigma0": -0.1}, "sigma0"), ({"sigma1": np.nan}, "sigma1"),
    ({"sigma_eta": -1}, "sigma_eta"), ({"dt": 0}, "dt"), ({"factor_std": -1}, "factor_std"),
    ({"income": -1}, "income"), ({"settlement": "market"}, "settlement"),
    ({"initial_capital": 0}, "initial_capital"), ({"initial_holdings": -1}, "initial_holdings"),
    ({"trade_scale": 0}, "trade_scale"), ({"shock_decay": 1.0}, "shock_decay"),
    ({"shock_assets": (7,)}, "shock_assets"), ({"omega": -1}, "omega"), ({"rho": -1}, "rho"),
    ({"cooperative_scope": "world"}, "cooperative_scope"), ({"policy": "greedy"}, "policy"),
    ({"hidden": ()}, "hidden"), ({"n_groups": 0}, "n_groups"), ({"n_groups": 99}, "n_groups"),
    ({"rng": "abc"}, "rng"), ({"seed": 1.5}, "seed"), ({"rng": 1, "seed": 2}, "both"),
    ({"use_value": 1.0}, "demand"),
    ({"demand": -1.0}, "demand"), ({"graph": "watts_strogatz", "graph_params": {"k": 60}}, "k"),
    ({"curve": "exponential", "curve_params": {"k": -1.0}}, "k"),
    ({"torch_threads": 0}, "torch_threads"), ({"collect_every": -1}, "collect_every"),
])
def test_invalid_parameters_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        EconomyModel(n_agents=kwargs.pop("n_agents", 10), **kwargs)


def test_buys_stop_at_the_supply_limit_instead_of_overflowing():
    """An exponential curve that random whales would push past float64 (f = e^{5S}): buys
    stop at the curve's supply limit (R(S) <= 1e150), so every step runs and stays finite.
    Here S0 = 120 is already past the limit (f ≈ 1e260): no buy executes, sells do."""
    model = EconomyModel(n_agents=4, n_assets=1, curve_params={"a": 1.0, "k": 5.0},
                         initial_holdings=30.0, initial_capital=1e300, trade_scale=50.0,
                         policy="random", rng=0)
    limit = float(model.curve.supply_limit[0])
    assert limit < 120.0
    for _ in range(200):
        supply = float(model.supply[0])
        model.step()
        assert float(model.supply[0]) <= max(supply, limit) * (1 + 1e-12)
        assert_invariants(model)
    assert model.supply[0] < 120.0  # the sells went through


def test_a_buy_past_the_exponential_limit_is_cut_to_the_limit():
    """Four buys of 50 from S = 4 on f = e^{5S} would reach S = 204 (e^{1020}, beyond
    float64): each is cut alike, to a quarter of the room up to the supply limit."""
    model = EconomyModel(n_agents=4, n_assets=1, curve_params={"a": 1.0, "k": 5.0},
                         initial_holdings=1.0, initial_capital=1e300, collect_every=0, rng=0)
    limit = float(model.curve.supply_limit[0])
    model.submit_orders(np.full((4, 1), 50.0))
    model.step()
    np.testing.assert_allclose(model.last_info.executed, (limit - 4.0) / 4, rtol=1e-9)
    assert model.supply[0] <= limit and np.all(np.isfinite(model.prices))


@pytest.mark.parametrize("m", [2, 20])
@pytest.mark.parametrize("name", ["capital", "reserve", "deviation", "price"])
def test_non_finite_state_is_an_error_naming_the_array(m, name):
    """_check_finite (Python floats for few assets, reductions for many) names the array."""
    from mesa_econ.dynamics import MarketState
    from mesa_econ.model import _check_finite

    arrays = {"capital": np.ones(3), "holdings": np.ones((3, m)), "supply": np.full(m, 3.0),
              "reserve": np.ones(m), "deviation": np.zeros(m), "price": np.ones(m)}
    _check_finite(MarketState(**arrays))
    for bad in (np.nan, np.inf, -np.inf):
        broken = {**arrays, name: arrays[name].copy()}
        broken[name][-1] = bad
        with pytest.raises(FloatingPointError, match=f"'{name}' became non-finite"):
            _check_finite(MarketState(**broken))
    huge = {**arrays, "price": np.full(m, 1e308)}  # finite, though the sum overflows
    with np.errstate(over="ignore"):
        _check_finite(MarketState(**huge))


def test_default_policy_is_each_agents_own_actor_critic():
    """Issue 10 item 7: every agent holds a PyTorch actor-critic unless a baseline is named."""
    import inspect

    from mesa_econ.config import PolicyConfig
    from mesa_econ.policies import PolicyEnsemble, PolicyView

    assert inspect.signature(EconomyModel.__init__).parameters["policy"].default == "actor_critic"
    assert PolicyConfig().kind == "actor_critic"
    model = EconomyModel(n_agents=5, n_assets=2, hidden=(8,), rng=0)
    assert isinstance(model.ensemble, PolicyEnsemble) and model.scripted is None
    policies = [agent.policy for agent in model.traders]
    assert all(type(p) is PolicyView for p in policies)
    assert not type(policies[0]).__name__.startswith("_")
    model.step()
    assert np.isfinite(model.prices).all()
    baseline = EconomyModel(n_agents=5, n_assets=2, policy="random", rng=0)
    assert baseline.ensemble is None and type(baseline.scripted).__name__ == "RandomPolicy"
