"""GAE (§6.1) against hand computations, the rollout buffer, and the per-agent normalisers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mesa_econ.rl.buffer import RolloutBuffer, compute_gae
from mesa_econ.rl.normalize import ObsNormalizer, RewardNormalizer, RunningMeanStd

torch.set_num_threads(1)


def _gae_by_hand(rewards, values, last_value, gamma, lam, dones=None):
    """A_t = Σ_l (γλ)^l δ_{t+l}, summed explicitly per agent (no recursion)."""
    t_steps, n = rewards.shape
    dones = np.zeros_like(rewards) if dones is None else dones
    adv = np.zeros((t_steps, n))
    for i in range(n):
        nxt = np.append(values[1:, i], last_value[i])
        delta = rewards[:, i] + gamma * (1 - dones[:, i]) * nxt - values[:, i]
        for t in range(t_steps):
            total, weight = 0.0, 1.0
            for k in range(t, t_steps):
                total += weight * delta[k]
                if dones[k, i]:
                    break
                weight *= gamma * lam
            adv[t, i] = total
    return adv


def test_gae_three_steps_by_hand():
    """§6.1: r = (1, 2, 3), V = (0.5, 1, 1.5), V(s_3) = 2, γ = 0.9, λ = 0.8.

    δ = (1.4, 2.35, 3.3); A_2 = 3.3, A_1 = 2.35 + 0.72·3.3 = 4.726,
    A_0 = 1.4 + 0.72·4.726 = 4.80272; returns = A + V.
    """
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)
    adv, ret = compute_gae(rewards, values, torch.tensor([2.0], dtype=torch.float64), 0.9, 0.8)
    np.testing.assert_allclose(adv[:, 0], [4.80272, 4.726, 3.3], rtol=1e-12)
    np.testing.assert_allclose(ret[:, 0], [5.30272, 5.726, 4.8], rtol=1e-12)


@pytest.mark.parametrize("last_value", [2.0, 100.0])
def test_gae_episode_end_is_terminal_by_hand(last_value):
    """§6.1 at an episode end: the rollout of test_gae_three_steps_by_hand ends the episode
    (d = (0, 0, 1)), so V(s_3) is not used, whatever it is.

    δ_2 = 3 − 1.5 = 1.5, δ_1 = 2 + 0.9·1.5 − 1 = 2.35, δ_0 = 1 + 0.9·1 − 0.5 = 1.4;
    A_2 = 1.5, A_1 = 2.35 + 0.72·1.5 = 3.43, A_0 = 1.4 + 0.72·3.43 = 3.8696.
    """
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)
    dones = torch.tensor([[0.0], [0.0], [1.0]], dtype=torch.float64)
    adv, ret = compute_gae(rewards, values, torch.tensor([last_value], dtype=torch.float64),
                           0.9, 0.8, dones=dones)
    np.testing.assert_allclose(adv[:, 0], [3.8696, 3.43, 1.5], rtol=1e-12)
    np.testing.assert_allclose(ret[:, 0], [4.3696, 4.43, 3.0], rtol=1e-12)


def test_buffer_finish_cuts_gae_at_its_dones():
    """The buffer's dones (set by the trainer at an episode end) stop the bootstrap; all
    zero (a truncation) they give exactly the bootstrapped GAE of dones=None."""
    g = torch.Generator().manual_seed(2)
    buf = RolloutBuffer(6, 3, 2, 1)
    buf.rewards.copy_(torch.randn(6, 3, generator=g))
    buf.values.copy_(torch.randn(6, 3, generator=g))
    last = torch.randn(3, generator=g)
    buf.finish(last, 0.99, 0.95)
    want, _ = compute_gae(buf.rewards, buf.values, last, 0.99, 0.95)
    assert torch.equal(buf.advantages, want)  # float32, bit for bit
    buf.dones[-1] = 1.0
    buf.finish(last, 0.99, 0.95)
    want, _ = compute_gae(buf.rewards, buf.values, torch.zeros(3), 0.99, 0.95)
    torch.testing.assert_close(buf.advantages, want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(buf.advantages[-1], buf.rewards[-1] - buf.values[-1])


def test_gae_lambda_one_is_bootstrapped_return_minus_value():
    """λ = 1: A_t = Σ_k γ^(k−t) r_k + γ^(T−t) V(s_T) − V(s_t) (Monte Carlo + bootstrap)."""
    rewards = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    values = torch.tensor([[0.5], [1.0], [1.5]], dtype=torch.float64)
    _, ret = compute_gae(rewards, values, torch.tensor([2.0], dtype=torch.float64), 0.9, 1.0)
    np.testing.assert_allclose(ret[:, 0], [6.688, 6.32, 4.8], rtol=1e-12)


@pytest.mark.parametrize("n_agents", [1, 3, 17])
@pytest.mark.parametrize(("gamma", "lam"), [(0.99, 0.95), (0.5, 0.0), (1.0, 1.0)])
def test_gae_matches_hand_loop_per_agent(n_agents, gamma, lam):
    rng = np.random.default_rng(n_agents)
    rewards, values = rng.normal(size=(25, n_agents)), rng.normal(size=(25, n_agents))
    last = rng.normal(size=n_agents)
    adv, ret = compute_gae(torch.from_numpy(rewards), torch.from_numpy(values),
                           torch.from_numpy(last), gamma, lam)
    expected = _gae_by_hand(rewards, values, last, gamma, lam)
    np.testing.assert_allclose(adv.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ret.numpy(), expected + values, rtol=1e-10, atol=1e-12)


def test_gae_with_terminal_states_matches_hand_loop():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    dones = (rng.random((12, 4)) < 0.2).astype(float)
    last = rng.normal(size=4)
    adv, _ = compute_gae(torch.from_numpy(rewards), torch.from_numpy(values),
                         torch.from_numpy(last), 0.97, 0.9, dones=torch.from_numpy(dones))
    np.testing.assert_allclose(adv.numpy(), _gae_by_hand(rewards, values, last, 0.97, 0.9,
                                                         dones), rtol=1e-10, atol=1e-12)


def test_gae_agents_are_independent():
    """Changing agent 1's rewards leaves agent 0's advantages unchanged."""
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(10, 2, generator=g), torch.randn(10, 2, generator=g)
    adv_a, _ = compute_gae(rewards, values, torch.zeros(2), 0.99, 0.95)
    rewards[:, 1] += 100.0
    adv_b, _ = compute_gae(rewards, values, torch.zeros(2), 0.99, 0.95)
    torch.testing.assert_close(adv_a[:, 0], adv_b[:, 0], rtol=0, atol=0)
    assert not torch.allclose(adv_a[:, 1], adv_b[:, 1])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"values": torch.zeros(4, 3)}, "values"),
    ({"last_value": torch.zeros(3)}, "last_value"),
    ({"gamma": 1.5}, "gamma"),
    ({"dones": torch.zeros(5)}, "dones"),
])
def test_gae_rejects_bad_inputs(kwargs, match):
    args = {"rewards": torch.zeros(5, 2), "values": torch.zeros(5, 2),
            "last_value": torch.zeros(2), "gamma": 0.9, "gae_lambda": 0.9}
    with pytest.raises(ValueError, match=match):
        compute_gae(**{**args, **kwargs})


def test_buffer_stores_and_finishes():
    buf = RolloutBuffer(3, 2, 4, 1)
    for t in range(3):
        buf.add(t, torch.full((2, 4), float(t)), torch.full((2, 1), -t), torch.zeros(2),
                torch.zeros(2), torch.tensor([1.0, 2.0]))
    buf.finish(torch.zeros(2), gamma=1.0, gae_lambda=1.0)
    assert buf.obs.shape == (3, 2, 4) and buf.actions.shape == (3, 2, 1)
    torch.testing.assert_close(buf.obs[2], torch.full((2, 4), 2.0))
    torch.testing.assert_close(buf.returns[:, 1], torch.tensor([6.0, 4.0, 2.0]))
    with pytest.raises(ValueError, match="horizon"):
        RolloutBuffer(0, 2, 4, 1)


# ------------------------------------------------------------------ normalisers

def test_running_mean_std_matches_batch_statistics():
    rng = np.random.default_rng(1)
    data = rng.normal(loc=[[3.0, -1.0]], scale=[[2.0, 0.1]], size=(500, 1, 2))
    rms = RunningMeanStd((1, 2), epsilon=1e-12)
    for x in data[:200]:
        rms.update(x)
    rms.update_batch(data[200:])
    np.testing.assert_allclose(rms.mean, data.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(rms.var, data.var(axis=0), rtol=1e-9)


def test_obs_normalizer_is_per_agent():
    """Two agents observing different scales are each normalised to mean 0, std 1."""
    rng = np.random.default_rng(2)
    norm = ObsNormalizer(2, 3, clip=100.0)
    scale = np.array([[1.0], [1000.0]])
    stream = [(rng.normal(size=(2, 3)) * scale + 5 * scale).astype(np.float32)
              for _ in range(2000)]
    for obs in stream:
        out = norm(obs, update=True)
        assert out.dtype == np.float32 and out.shape == (2, 3)
    normed = np.stack([norm.normalize(obs) for obs in stream])
    np.testing.assert_allclose(normed.mean(axis=0), 0.0, atol=0.05)
    np.testing.assert_allclose(normed.std(axis=0), 1.0, atol=0.05)
    assert np.abs(norm.normalize(np.full((2, 3), 1e9, dtype=np.float32))).max() == 100.0
    restored = ObsNormalizer.from_state(norm.state())
    np.testing.assert_array_equal(restored.normalize(stream[0]), norm.normalize(stream[0]))


def test_reward_normalizer_scales_by_std_of_discounted_return():
    """r̂_i = r_i / sqrt(Var[G_i] + ε) with G_i ← γ G_i + r_i, per agent (SB3 VecNormalize)."""
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=(50, 2)) * np.array([1.0, 10.0])
    norm = RewardNormalizer(2, gamma=0.9, clip=1e6)
    got = np.stack([norm(r) for r in rewards])
    returns, seen = np.zeros(2), []
    expected = []
    for r in rewards:
        returns = 0.9 * returns + r
        seen.append(returns.copy())
        # running variance with the initial pseudo-sample (mean 0, var 1, count 1e-4)
        hist = np.array(seen)
        count = 1e-4 + len(hist)
        m2 = 1e-4 + ((hist - hist.mean(axis=0)) ** 2).sum(axis=0) \
            + (hist.mean(axis=0) ** 2) * (1e-4 * len(hist) / count)
        expected.append(r / np.sqrt(m2 / count + 1e-8))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-8)
    assert np.std(got[:, 0]) == pytest.approx(np.std(got[:, 1]), rel=0.5)  # scale removed


def test_normalisers_update_in_place_with_the_reference_arithmetic():
    """The in-place updates are the textbook formulas bit for bit, and ``out=`` writes
    the same numbers the return value holds (the trainer normalises into its buffer)."""
    rng = np.random.default_rng(4)
    obs_norm, rew_norm = ObsNormalizer(3, 2, clip=2.0), RewardNormalizer(3, gamma=0.9, clip=3.0)
    mean, var, count = np.zeros((3, 2)), np.ones((3, 2)), 1e-4
    ret, r_mean, r_var, r_count = np.zeros(3), np.zeros(3), np.ones(3), 1e-4
    clipped = 0
    for _ in range(50):
        obs = (rng.normal(size=(3, 2)) * 5).astype(np.float32)
        out = np.empty((3, 2), dtype=np.float32)
        assert obs_norm(obs, update=True, out=out) is out
        delta = obs.astype(np.float64) - mean
        total = count + 1.0
        mean = mean + delta * (1.0 / total)
        var = (var * count + delta**2 * (count / total)) / total
        count = total
        want = np.clip((obs - mean) / np.sqrt(var + 1e-8), -2.0, 2.0).astype(np.float32)
        np.testing.assert_array_equal(out, want)
        np.testing.assert_array_equal(obs_norm.normalize(obs), want)
        clipped += int((np.abs(want) == 2.0).sum())
        reward = rng.normal(size=3) * 4
        rew_out = np.empty(3, dtype=np.float32)
        rew_norm(reward, out=rew_out)
        ret = ret * 0.9 + reward
        delta = ret - r_mean
        total = r_count + 1.0
        r_mean = r_mean + delta * (1.0 / total)
        r_var = (r_var * r_count + delta**2 * (r_count / total)) / total
        r_count = total
        scaled = np.clip(reward / np.sqrt(r_var + 1e-8), -3.0, 3.0)
        np.testing.assert_array_equal(rew_out, scaled.astype(np.float32))
    np.testing.assert_array_equal(obs_norm.rms.mean, mean)
    np.testing.assert_array_equal(rew_norm.rms.var, r_var)
    assert clipped > 0  # the clip was exercised


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("terminal", [False, True])
def test_gae_numpy_loop_equals_torch_loop(dtype, terminal):
    """CPU tensors run the recursion on numpy views: the same numbers as the torch loop
    (taken for tensors that require grad)."""
    g = torch.Generator().manual_seed(5)
    rewards, values = (torch.randn(40, 6, generator=g, dtype=dtype) for _ in range(2))
    last = torch.randn(6, generator=g, dtype=dtype)
    dones = (torch.rand(40, 6, generator=g) < 0.1).to(dtype) if terminal else None
    adv, ret = compute_gae(rewards, values, last, 0.97, 0.9, dones)
    adv_t, ret_t = compute_gae(rewards, values, last.requires_grad_(), 0.97, 0.9, dones)
    assert adv.dtype == dtype and not adv.requires_grad and adv_t.requires_grad
    assert torch.equal(adv, adv_t.detach()) and torch.equal(ret, ret_t.detach())


def test_normalized_agent_view_equals_the_batched_row():
    """A NormalizedPolicy's agent_view(i) normalises with agent i's statistics exactly as
    the batched call does for row i (same float32 input to the same ensemble row)."""
    from mesa_econ.policies import PolicyEnsemble
    from mesa_econ.rl.normalize import NormalizedPolicy

    rng = np.random.default_rng(0)
    norm = ObsNormalizer(n_agents=5, obs_dim=4, clip=2.0)
    for _ in range(8):
        norm(rng.normal(3.0, 4.0, size=(5, 4)), update=True)
    policy = NormalizedPolicy(PolicyEnsemble(5, 4, 2, hidden=(16, 16),
                                             generator=torch.Generator().manual_seed(1)), norm)
    obs = torch.from_numpy(rng.normal(3.0, 9.0, size=(5, 4)).astype(np.float32))
    mean, _, value = policy(obs)
    for i in range(5):
        np.testing.assert_array_equal(norm.normalize_agent(obs[i].numpy(), i),
                                      norm.normalize(obs.numpy())[i])
        m_i, _, v_i = policy.agent_view(i)(obs[i])
        torch.testing.assert_close(m_i.reshape(-1), mean[i], rtol=0, atol=1e-6)
        torch.testing.assert_close(v_i.reshape(-1), value[i].reshape(-1), rtol=0, atol=1e-6)


def test_normalized_sample_normalises_then_samples():
    """NormalizedPolicy.sample gives act's u for raw observations (normalised first), bit
    for bit; the model's step uses it."""
    from mesa_econ.policies import PolicyEnsemble
    from mesa_econ.rl.normalize import NormalizedPolicy

    rng = np.random.default_rng(1)
    norm = ObsNormalizer(n_agents=5, obs_dim=4)
    norm(rng.normal(3.0, 4.0, size=(5, 4)), update=True)
    policy = NormalizedPolicy(PolicyEnsemble(5, 4, 2, hidden=(16, 16),
                                             generator=torch.Generator().manual_seed(1)), norm)
    obs = torch.from_numpy(rng.normal(3.0, 9.0, size=(5, 4)).astype(np.float32))
    with torch.no_grad():
        want = policy.act(obs, generator=torch.Generator().manual_seed(2))[0]
        got = policy.sample(obs, generator=torch.Generator().manual_seed(2))
        raw = policy.policy.sample(obs, generator=torch.Generator().manual_seed(2))
    assert torch.equal(got, want)
    assert not torch.equal(raw, want)  # the inner policy on raw observations differs
