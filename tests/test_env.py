"""The PettingZoo adapter: PettingZoo's own API and seed tests, and the mapping onto the model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils.conversions import parallel_to_aec

from mesa_econ.env import EconomyParallelEnv
from mesa_econ.model import EconomyModel

MARKET = {"n_agents": 4, "n_assets": 2, "kappa": 0.01, "omega": 1.0, "trade_scale": 2.0}


def make_env(max_steps: int = 25, **overrides) -> EconomyParallelEnv:
    return EconomyParallelEnv(max_steps=max_steps, **{**MARKET, **overrides})


def test_parallel_api_test_passes_without_warnings():
    env = make_env(rng=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Live agent was not given ..." etc. would fail
        parallel_api_test(env, num_cycles=60)


def test_parallel_seed_test_passes():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_seed_test(lambda: make_env(max_steps=20), num_cycles=20)


def test_aec_conversion_passes_api_test():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # The factor Z is genuinely unbounded, which api_test warns about; nothing else may.
        warnings.filterwarnings("ignore", message=".*observation space value is.*infinity")
        api_test(parallel_to_aec(make_env(max_steps=10, rng=1)), num_cycles=30)


def test_spaces_are_cached_boxes_of_the_right_shape():
    env = make_env()
    m, d = MARKET["n_assets"], 2 + 3 * MARKET["n_assets"]  # [B, H, P, Z, t/H]
    assert env.possible_agents == [f"trader_{i}" for i in range(MARKET["n_agents"])]
    for agent in env.possible_agents:
        obs_space, act_space = env.observation_space(agent), env.action_space(agent)
        assert obs_space is env.observation_space(agent)
        assert act_space is env.action_space(agent)
        assert obs_space.shape == (d,) and obs_space.dtype == np.float32
        assert act_space.shape == (m,) and act_space.dtype == np.float32
        np.testing.assert_array_equal(act_space.low, -1.0)
        np.testing.assert_array_equal(act_space.high, 1.0)
    # distinct objects per agent, so PettingZoo's per-agent seeding works
    assert env.action_space("trader_0") is not env.action_space("trader_1")


def test_observations_are_float32_rows_of_model_observe_and_inside_the_space():
    env = make_env()
    obs, infos = env.reset(seed=5)
    expected = EconomyModel(**MARKET, rng=5).observations()
    assert set(obs) == set(infos) == set(env.possible_agents)
    for i, agent in enumerate(env.possible_agents):
        assert obs[agent].dtype == np.float32
        np.testing.assert_array_equal(obs[agent], expected[i])
        assert env.observation_space(agent).contains(obs[agent])


def test_step_equals_driving_the_model_with_clipped_scaled_orders():
    """Volume = trade_scale · clip(u, -1, 1) (§2.2); rewards are model.last_rewards."""
    env = make_env()
    env.reset(seed=11)
    model = EconomyModel(**MARKET, rng=11)
    rng = np.random.default_rng(0)
    for _ in range(8):
        u = rng.uniform(-1.5, 1.5, size=(MARKET["n_agents"], MARKET["n_assets"]))
        obs, rewards, terms, truncs, _ = env.step(
            {f"trader_{i}": u[i].astype(np.float32) for i in range(len(u))})
        model.submit_orders(MARKET["trade_scale"] * np.clip(u.astype(np.float32), -1, 1))
        model.step()
        np.testing.assert_array_equal(np.stack([obs[a] for a in env.possible_agents]),
                                      model.observations())
        assert [rewards[a] for a in env.possible_agents] == model.last_rewards.tolist()
        assert not any(terms.values()) and not any(truncs.values())
    np.testing.assert_array_equal(env.model.holdings, model.holdings)


def test_missing_agent_does_not_trade():
    env = make_env(policy="random")
    env.reset(seed=2)
    env.step({"trader_1": np.ones(2, dtype=np.float32)})
    orders = env.model.last_orders
    np.testing.assert_array_equal(orders[[0, 2, 3]], 0.0)
    np.testing.assert_array_equal(orders[1], MARKET["trade_scale"])


def test_truncation_at_max_steps_removes_agents():
    env = make_env(max_steps=3)
    env.reset(seed=0)
    zero = {a: np.zeros(2, dtype=np.float32) for a in env.possible_agents}
    for t in range(3):
        _, _, terms, truncs, _ = env.step(dict(zero))
        assert set(truncs) == set(env.possible_agents)
        assert all(truncs.values()) == (t == 2)
        assert not any(terms.values())
    assert env.agents == []
    with pytest.raises(ValueError, match="reset"):
        env.step(zero)


def test_reset_seed_sequence_is_reproducible():
    def trajectory(env):
        out = [env.reset(seed=42)[0]["trader_0"]]
        for _ in range(2):
            obs, _ = env.reset()
            out.append(obs["trader_0"])
            out.append(env.step({a: np.full(2, 0.5, np.float32) for a in env.agents})[0]
                       ["trader_0"])
        return np.stack(out)

    a, b = trajectory(make_env()), trajectory(make_env())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[2], a[4])  # seedless resets draw new markets


def test_state_stacks_all_observations():
    env = make_env()
    env.reset(seed=1)
    np.testing.assert_array_equal(env.state(), env.model.observations().reshape(-1))


@pytest.mark.parametrize("max_steps", [0, -1, 2.5, True, "10"])
def test_bad_max_steps_rejected(max_steps):
    with pytest.raises(ValueError, match="max_steps"):
        EconomyParallelEnv(max_steps=max_steps, **MARKET)


def test_bad_model_keyword_rejected():
    with pytest.raises(ValueError, match="n_assets"):
        EconomyParallelEnv(n_assets=0)


@pytest.mark.parametrize("actions", [{"trader_9": np.zeros(2)}, {"trader_0": np.zeros(3)},
                                     {"trader_0": np.array([np.nan, 0.0])}])
def test_bad_actions_rejected(actions):
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions"):
        env.step(actions)
