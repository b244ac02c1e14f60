"""MarketBatch: K markets stepped together equal the same seeds run alone, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ.batched import MarketBatch, batched_actions
from mesa_econ.model import EconomyModel
from mesa_econ.policies import PolicyEnsemble
from mesa_econ.policies.actor_critic import act_only
from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer
from mesa_econ.scenarios import scenario_params
from mesa_econ.testing import assert_float32_close

torch.set_num_threads(1)

SEEDS = (3, 11, 2026)
STATE = ("capital", "holdings", "supply", "reserve", "deviation", "prices", "curve_prices",
         "factors", "last_rewards", "last_orders")

CONFIGS = {
    # curve settlement, a sparse Watts-Strogatz graph with peer influence, fee, yield,
    # attributed stability (the DeFi scenario, shrunk)
    "defi_curve_sparse_peers": scenario_params("defi_token_market", n_agents=12,
                                               policy="random"),
    # spot settlement, small budgets against large orders: buys scaled to the budget
    "spot_budget_binding": dict(n_agents=9, n_assets=2, settlement="spot",
                                initial_capital=3.0, trade_scale=40.0, nu=0.1,
                                graph="erdos_renyi", graph_params={"p": 0.4},
                                kappa=1e-3, sigma0=0.01, zeta=0.05, policy="random"),
    # curve settlement where budgets bind: the Newton solve of the clearing prices
    "curve_budget_binding": dict(n_agents=8, n_assets=3, settlement="curve",
                                 initial_capital=2.0, trade_scale=50.0, omega=1.0,
                                 rho=0.2, cooperative_scope="neighbours",
                                 graph="barabasi_albert", nu=0.05, peer_cap=0.5,
                                 policy="random"),
    # the shock scenario: a spike in Z at step 5, decaying
    "shock": scenario_params("shock_recovery", n_agents=10, shock_step=5,
                             policy="informed"),
    # needs, capacities, congestion fees, minting (the resource network, shrunk)
    "resource_network": scenario_params("resource_network", n_agents=10,
                                        psi=0.5, policy="need_aware"),
}


def _assert_market_equal(batch: MarketBatch, k: int, single: EconomyModel) -> None:
    for name in STATE:
        got, want = getattr(batch, name)[k], getattr(single, name)
        assert np.array_equal(got, want), f"{name} of market {k} differs"
    model = batch.models[k]
    assert model.t == single.t
    for name in ("profit", "stability", "cooperative", "use_value", "total"):
        assert np.array_equal(getattr(model.last_breakdown, name),
                              getattr(single.last_breakdown, name)), name
    assert (model.income_paid, model.yield_paid, model.fees_paid) == (
        single.income_paid, single.yield_paid, single.fees_paid)
    assert model.rng.bit_generator.state == single.rng.bit_generator.state
    assert model.policy_rng.bit_generator.state == single.policy_rng.bit_generator.state
    assert np.array_equal(batch.observations()[k], single.observations())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_batch_equals_each_seed_alone(name):
    params = {**CONFIGS[name], "collect_every": 0}
    steps = 12
    batch = MarketBatch.from_seeds(SEEDS, **params)
    singles = [EconomyModel(**params, rng=s) for s in SEEDS]
    for k, single in enumerate(singles):  # before any step too
        assert np.array_equal(batch.observations()[k], single.observations())
    for _ in range(steps):
        batch.step()
        for single in singles:
            single.step()
    for k, single in enumerate(singles):
        _assert_market_equal(batch, k, single)
    assert batch.capital.shape == (len(SEEDS), params["n_agents"])
    assert batch.holdings.shape == (len(SEEDS), params["n_agents"], batch.n_assets)


@pytest.mark.parametrize("name", ["defi_curve_sparse_peers", "spot_budget_binding",
                                  "curve_budget_binding"])
def test_batch_with_submitted_orders_equals_each_seed_alone(name):
    """The trainers' path: orders from outside, the same for the batch and the singles."""
    params = {**CONFIGS[name], "policy": "hold", "collect_every": 0}
    batch = MarketBatch.from_seeds(SEEDS, **params)
    singles = [EconomyModel(**params, rng=s) for s in SEEDS]
    orders_rng = np.random.default_rng(7)
    scale = batch.trade_scale
    for _ in range(10):
        orders = scale * orders_rng.uniform(-1.5, 1.5, (len(SEEDS), batch.n_agents,
                                                        batch.n_assets))
        batch.step(orders)
        for k, single in enumerate(singles):
            single.submit_orders(orders[k])
            single.step()
    for k, single in enumerate(singles):
        _assert_market_equal(batch, k, single)


def test_budget_binding_case_actually_binds():
    """The budget-binding configurations do scale buys (else they would test nothing)."""
    params = {**CONFIGS["curve_budget_binding"], "policy": "hold", "collect_every": 0}
    batch = MarketBatch.from_seeds(SEEDS[:1], **params)
    orders = np.full((1, batch.n_agents, batch.n_assets), batch.trade_scale)
    batch.step(orders)
    executed = batch.models[0].last_info.executed
    assert np.all(executed < orders[0] - 1e-9)


def test_different_populations_per_seed_are_kept():
    """Without a population seed each seed draws its own graph, as it does alone."""
    params = {**CONFIGS["spot_budget_binding"], "collect_every": 0}
    batch = MarketBatch.from_seeds(SEEDS, **params)
    edges = [sorted(m.graph.edges()) for m in batch.models]
    assert edges[0] != edges[1]


def _policy(n: int, d: int, m: int, normalised: bool):
    ens = PolicyEnsemble(n, d, m, hidden=(16, 16), generator=torch.Generator().manual_seed(5))
    if not normalised:
        return ens
    norm = ObsNormalizer(n, d)
    rng = np.random.default_rng(0)
    for _ in range(20):
        norm(rng.normal(1.0, 2.0, (n, d)), update=True)
    return NormalizedPolicy(ens, norm)


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("deterministic", [False, True])
def test_batched_actions_match_single_market_acting(normalised, deterministic):
    params = {**CONFIGS["defi_curve_sparse_peers"], "n_agents": 40, "policy": "hold",
              "collect_every": 0}
    batch = MarketBatch.from_seeds(SEEDS, **params)
    for _ in range(3):
        batch.step()
    policy = _policy(batch.n_agents, batch.obs_dim, batch.n_assets, normalised)
    obs = torch.from_numpy(batch.observations())
    gens = [torch.Generator().manual_seed(s) for s in SEEDS]
    alone = [torch.Generator().manual_seed(s) for s in SEEDS]
    with torch.no_grad():
        u = batched_actions(policy, obs, gens, deterministic)
        for k in range(len(SEEDS)):
            want = act_only(policy, obs[k], alone[k], deterministic)
            # through the MLP: the reductions of widths obs_dim, 16 and 16
            assert_float32_close(u[k], want, terms=batch.obs_dim + 32, name=f"u[{k}]")
            assert torch.equal(gens[k].get_state(), alone[k].get_state())


def test_shared_learned_policy_acts_in_one_call_and_matches_each_market():
    params = {**CONFIGS["defi_curve_sparse_peers"], "policy": "hold", "collect_every": 0}
    batch = MarketBatch.from_seeds(SEEDS, **params)
    singles = [EconomyModel(**params, rng=s) for s in SEEDS]
    policy = _policy(batch.n_agents, batch.obs_dim, batch.n_assets, True)
    for model in (*batch.models, *singles):
        model.ensemble, model.scripted = policy, None
    orders = batch.act()
    for k, single in enumerate(singles):
        assert_float32_close(orders[k], single.policy_orders(), terms=batch.obs_dim + 32,
                             scale=batch.trade_scale, name=f"orders[{k}]")
        assert torch.equal(batch.models[k].torch_generator.get_state(),
                           single.torch_generator.get_state())


def test_rejects_mixed_configurations_and_bad_orders():
    a = EconomyModel(n_agents=5, rng=1, collect_every=0)
    b = EconomyModel(n_agents=6, rng=2, collect_every=0)
    with pytest.raises(ValueError, match="configuration"):
        MarketBatch([a, b])
    with pytest.raises(ValueError, match="at least one"):
        MarketBatch([])
    with pytest.raises(ValueError, match="seeds"):
        MarketBatch.from_seeds([1], n_agents=5, rng=3)
    c = EconomyModel(n_agents=5, rng=2, collect_every=0)
    c.step()
    with pytest.raises(ValueError, match=r"models\[1\]\.t=1"):
        MarketBatch([a, c])
    batch = MarketBatch([a])
    with pytest.raises(ValueError, match="orders shape"):
        batch.step(np.zeros((2, 5, 3)))


def test_configurations_with_array_fields_compare_by_value():
    kappa = [1e-3, 2e-3]
    models = [EconomyModel(n_agents=4, n_assets=2, kappa=np.array(kappa), rng=s,
                           collect_every=0) for s in (1, 2)]
    assert MarketBatch(models).n_markets == 2
    other = EconomyModel(n_agents=4, n_assets=2, kappa=np.array([1e-3, 3e-3]), rng=3,
                         collect_every=0)
    with pytest.raises(ValueError, match="configuration"):
        MarketBatch([models[0], other])


def test_a_market_that_raises_is_named_and_left_as_it_was():
    params = dict(n_agents=4, n_assets=1, policy="hold", collect_every=0)
    batch = MarketBatch.from_seeds([1, 2], **params)
    orders = np.zeros((2, 4, 1))
    orders[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN") as info:
        batch.step(orders)
    assert any("market 1" in note for note in info.value.__notes__)
    assert [m.t for m in batch.models] == [1, 0]


# ------------------------------------------------------------------ the reproduction's evaluation

def _arm_params(name: str) -> dict:
    return {**CONFIGS[name], "horizon": 16, "collect_every": 0}


@pytest.mark.parametrize(("name", "kind"), [("defi_curve_sparse_peers", "random"),
                                            ("shock", "informed"),
                                            ("resource_network", "need_aware")])
def test_batched_evaluation_of_a_scripted_arm_equals_the_per_seed_loop(name, kind):
    from mesa_econ.experiments import evaluate_arm

    params = _arm_params(name)
    frame, paths = evaluate_arm(None, params, [5, 6, 7], scripted=kind)
    alone, alone_paths = evaluate_arm(None, params, [5, 6, 7], scripted=kind, batched=False)
    pd.testing.assert_frame_equal(frame, alone, check_exact=True)
    for key, path in alone_paths.items():
        np.testing.assert_array_equal(paths[key], path)


def test_batched_evaluation_of_a_trained_arm_matches_the_per_seed_loop():
    from mesa_econ.experiments import evaluate_arm

    params = _arm_params("defi_curve_sparse_peers")
    probe = EconomyModel(**params, rng=0)
    policy = _policy(probe.n_agents, probe.obs_dim, probe.n_assets, True)
    frame, paths = evaluate_arm(policy, params, [5, 6, 7])
    alone, alone_paths = evaluate_arm(policy, params, [5, 6, 7], batched=False)
    assert frame.columns.tolist() == alone.columns.tolist()
    # actions equal to float32 rounding; the markets then stay within ~1e-6 relative
    np.testing.assert_allclose(frame.to_numpy(float), alone.to_numpy(float), rtol=1e-4,
                               atol=1e-9, equal_nan=True)
    np.testing.assert_allclose(paths["prices"], alone_paths["prices"], rtol=1e-6)
