"""Actor-critic with parameter noise (§6.3): noise on the actor only, schedules, bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ.model import EconomyModel
from mesa_econ.policies import PolicyEnsemble
from mesa_econ.rl.noisy_ac import NoisyAC, NoisyACConfig, actor_parameters, perturb_actor
from mesa_econ.testing import assert_float32_close, float32_tolerance

torch.set_num_threads(1)

# The stability market of tests/test_qlearning.py: reward −ω Σ_j |ΔP_j| only, a linear
# curve, holdings and capital too large to sell or spend out within an episode. The best
# policy is not to trade (zero net flow); its return is what the 'hold' policy earns.
MARKET = {"n_agents": 3, "n_assets": 2, "curve": "linear",
          "curve_params": {"slope": 0.02, "intercept": 0.5}, "initial_holdings": 500.0,
          "initial_capital": 1e5, "profit_weight": 0.0, "omega": 10.0, "sigma_eta": 0.01,
          "trade_scale": 5.0, "factor_std": 0.1}
EVAL_SEEDS = range(1000, 1005)
EVAL_STEPS = 50
TIMING = ["collect_s", "update_s", "agent_steps_per_s"]
SMALL = {"num_steps": 8, "norm_obs": False, "norm_reward": False}


def mean_return(policy, horizon: int = 128) -> float:
    """Mean reward per agent and step over the held-out seeds, acting as the model does
    (sampled actions); None: the 'hold' optimum."""
    from mesa_econ.rl.evaluate import run_policy

    total = 0.0
    for seed in EVAL_SEEDS:
        model = EconomyModel(**MARKET, horizon=horizon, policy="hold", rng=seed)
        total += run_policy(policy, model, EVAL_STEPS)["returns"].mean() / EVAL_STEPS
    return total / len(EVAL_SEEDS)


def make(seed: int = 0, hidden: tuple[int, ...] = (16,), **config) -> NoisyAC:
    """A trainer on MARKET; the market's horizon follows ``episode_length``."""
    horizon = config.get("episode_length") or 128
    model = EconomyModel(**MARKET, hidden=hidden, horizon=horizon, rng=seed)
    return NoisyAC(model, NoisyACConfig(**config))


# ---------------------------------------------------------------------- learning
def test_learning_closes_most_of_the_gap_to_the_no_trade_optimum():
    """§6.3 (literal update) learns to stop trading in the stability market.

    closure = (R_trained − R_initial) / (R_optimum − R_initial) on held-out seeds. Measured
    over training seeds 0..5 with this budget (9,600 steps, ~7 s): closure 0.88 ± 0.04
    (mean ± sd, min 0.82); the initial policy (mean ≈ 0, σ = e^-0.5) earns −1.65 per step,
    the optimum −0.23. The threshold 0.6 is more than 5 sd below the mean.
    """
    algo = make(0, hidden=(32, 32), num_steps=32, learning_rate=1e-2, episode_length=64,
                gamma=0.5, gae_lambda=0.5)
    initial = mean_return(algo.policy(), horizon=64)
    log = algo.train(300, progress=False)
    trained = mean_return(algo.policy(), horizon=64)
    optimum = mean_return(None, horizon=64)
    assert optimum > initial
    closure = (trained - initial) / (optimum - initial)
    assert closure >= 0.6, (initial, trained, optimum)
    assert log["sigma_xi"].iloc[0] == 0.02 and log["sigma_xi"].iloc[-1] == 0.002


def test_same_seed_same_training_curve():
    logs = [make(5, **SMALL, episode_length=16).train(5, progress=False).drop(columns=TIMING)
            for _ in range(2)]
    pd.testing.assert_frame_equal(*logs)
    other = make(6, **SMALL, episode_length=16).train(5, progress=False)
    assert not np.array_equal(logs[0]["mean_reward"], other["mean_reward"])


# ---------------------------------------------------------------------- noise and schedules
@pytest.mark.parametrize(("kind", "k", "expected"), [
    ("exponential", 0, 0.02), ("exponential", 50, 0.02 * 0.1 ** 0.5),
    ("exponential", 100, 0.002), ("exponential", 400, 0.002), ("linear", 25, 0.0155),
    ("linear", 100, 0.002), ("constant", 60, 0.02)])
def test_sigma_schedule_hand_values(kind, k, expected):
    cfg = NoisyACConfig(sigma_schedule=kind, sigma_start=0.02, sigma_end=0.002,
                        sigma_horizon=100)
    assert cfg.sigma(k) == pytest.approx(expected, rel=1e-12)


def test_logged_sigma_follows_the_schedule():
    algo = make(1, **SMALL, sigma_schedule="linear", sigma_start=0.04, sigma_end=0.01,
                sigma_horizon=3)
    log = algo.train(5, progress=False)
    np.testing.assert_allclose(log["sigma_xi"], [0.04, 0.03, 0.02, 0.01, 0.01])
    assert (log["xi_norm"] > 0).all()


def test_perturb_actor_adds_sigma_times_generator_normals_to_actor_only():
    ens = PolicyEnsemble(3, 7, 2, hidden=(8, 8), generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in ens.state_dict().items()}
    gen = torch.Generator().manual_seed(42)
    replay = torch.Generator().manual_seed(42)
    norm = perturb_actor(ens, 0.05, gen)
    after = ens.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if k.startswith("actor_")}  # not log_std, not critic
    total, count = 0.0, 0
    for name, p in zip([k for k in before if k.startswith("actor_w")]
                       + [k for k in before if k.startswith("actor_b")],
                       actor_parameters(ens), strict=True):
        xi = 0.05 * torch.randn(p.shape, generator=replay)  # §6.3: θ ← θ + ξ
        # (θ + ξ) − θ recovers ξ up to the rounding of θ + ξ, half an ulp of |θ + ξ|
        assert_float32_close(after[name] - before[name], xi, ulps=1,
                             scale=float(after[name].abs().max()), name=name)
        total += float(xi.pow(2).sum())
        count += p.numel()
    # ‖ξ‖ is a float32 sum of `count` squares in the package, in float64 here
    assert norm == pytest.approx(total ** 0.5, rel=float32_tolerance(1.0, terms=count))
    assert perturb_actor(ens, 0.0, gen) == 0.0


def test_literal_update_noise_is_the_only_difference_from_plain_a2c():
    """θ ← θ + α∇J + ξ: after one update the actor differs from σ_ξ = 0 by ξ ~ N(0, σ²)."""
    sigma = 0.01
    noisy = make(2, hidden=(32,), **SMALL, sigma_schedule="constant", sigma_start=sigma)
    plain = make(2, hidden=(32,), **SMALL, sigma_schedule="constant", sigma_start=0.0)
    noisy.train(1, progress=False)
    plain.train(1, progress=False)
    a, b = noisy.ensemble.state_dict(), plain.ensemble.state_dict()
    for name in a:
        if name.startswith("actor_"):
            continue
        assert torch.equal(a[name], b[name]), name  # critic and log_std: no noise
    diff = torch.cat([(a[k] - b[k]).reshape(-1) for k in a if k.startswith("actor_")])
    # 966 entries of N(0, σ²): the sample sd is within 10% of σ (about 4 standard errors)
    assert diff.std().item() == pytest.approx(sigma, rel=0.1)
    assert abs(diff.mean().item()) < 4 * sigma / diff.numel() ** 0.5


def test_literal_update_is_on_policy():
    """The perturbed θ collects the next rollout and is differentiated: ratio exactly 1."""
    log = make(3, **SMALL).train(4, progress=False)
    np.testing.assert_allclose(log["is_ratio"], 1.0, atol=1e-5)
    np.testing.assert_allclose(log["approx_kl"], 0.0, atol=1e-6)


def test_acting_mode_restores_clean_weights_and_logs_behaviour_probabilities():
    """'acting': the rollout uses θ + ξ; the stored log-probs are π_{θ+ξ}; θ is restored."""
    algo = make(4, **SMALL, noise_mode="acting", sigma_schedule="constant", sigma_start=0.05)
    clean = {k: v.clone() for k, v in algo.ensemble.state_dict().items()}
    state = algo.sampling_generator.get_state()  # ξ is the rollout's first draw of it
    algo.collect(algo.rollout_policy(), algo.observe())
    for name, value in algo.ensemble.state_dict().items():
        assert torch.equal(value, clean[name]), name
    behaviour = PolicyEnsemble(3, 8, 2, hidden=(16,), generator=torch.Generator())
    behaviour.load_state_dict(clean)
    perturb_actor(behaviour, 0.05, torch.Generator().set_state(state))
    buf = algo.buffer
    with torch.no_grad():
        logp_behaviour = behaviour.evaluate(buf.obs, buf.actions)[0]
        logp_clean = algo.ensemble.evaluate(buf.obs, buf.actions)[0]
    # the rollout's actor (numpy's BLAS) against torch's: float32 rounding of the network's
    # sums (obs 8, hidden 16) and of the sum over the 2 actions
    assert_float32_close(buf.logprobs, logp_behaviour, terms=8 + 16 + 2, name="log-probs")
    assert not torch.allclose(logp_clean, buf.logprobs, atol=1e-3)  # ratios π_θ/π_{θ+ξ} ≠ 1
    row = algo.train(1, progress=False).iloc[-1]
    assert abs(row["is_ratio"] - 1.0) > 1e-4 and row["xi_norm"] == 0.0


def test_acting_mode_with_zero_noise_is_plain_a2c():
    logs = [make(5, **SMALL, noise_mode=mode, sigma_schedule="constant", sigma_start=0.0)
            .train(3, progress=False).drop(columns=TIMING) for mode in ("update", "acting")]
    pd.testing.assert_frame_equal(*logs)


# ---------------------------------------------------------------------- model, checkpoints
def test_model_runs_the_trained_agents_and_checkpoint_round_trips(tmp_path):
    from mesa_econ.rl.checkpoint import load_policy, read_metadata

    algo = make(7, num_steps=8)  # observation normalisation on (the default)
    algo.train(2, progress=False)
    policy = algo.policy()
    assert algo.model.ensemble is not None and algo.model.scripted is None
    algo.model.step()  # the model's own batched policy call uses the trained agents
    algo.save(tmp_path / "run")
    meta = read_metadata(tmp_path / "run")
    assert meta["algo"] == "noisy_ac" and meta["config"]["noise_mode"] == "update"
    loaded = load_policy(tmp_path / "run")
    obs = torch.from_numpy(algo.model.observations())
    with torch.no_grad():
        expected = policy.act(obs, deterministic=True)
        got = loaded.act(obs, deterministic=True)
    for x, y in zip(expected, got, strict=True):
        assert torch.equal(x, y)
    torch.testing.assert_close(algo.act(obs, deterministic=True), expected[0])


def test_wraps_an_existing_actor_critic_ensemble():
    model = EconomyModel(**MARKET, policy="actor_critic", hidden=(8,), rng=0)
    ens = model.ensemble
    algo = NoisyAC(model, NoisyACConfig(**SMALL))
    assert algo.ensemble is ens and model.ensemble is ens


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(("field", "value"), [
    ("num_steps", 0), ("learning_rate", 0.0), ("gamma", 1.5), ("gae_lambda", -0.1),
    ("ent_coef", -1.0), ("vf_coef", float("inf")), ("max_grad_norm", 0.0), ("adam_eps", 0.0),
    ("sigma_schedule", "cosine"), ("sigma_start", -0.1), ("sigma_end", float("nan")),
    ("sigma_horizon", 0), ("noise_mode", "both"), ("rho_clip", 0.0), ("clip_obs", 0.0),
    ("episode_length", 7), ("seed", 1.5)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        NoisyACConfig(**{field: value})


def test_bad_arguments_rejected():
    model = EconomyModel(**MARKET, rng=0)
    with pytest.raises(ValueError, match="config"):
        NoisyAC(model, {"gamma": 0.5})
    with pytest.raises(ValueError, match="iterations"):
        NoisyAC(model, NoisyACConfig(**SMALL)).train(0)
    from mesa_econ.rl.qlearning import QLearning, QLearningConfig

    q_model = EconomyModel(**MARKET, rng=0)
    QLearning(q_model, QLearningConfig(hidden=(8,)))
    with pytest.raises(ValueError, match="PolicyEnsemble"):
        NoisyAC(q_model, NoisyACConfig(**SMALL))


# ---------------------------------------------------------------------- episodic protocol
def test_episodes_are_terminal_and_match_the_horizon():
    """Default: episodes of 128 steps (4 rollouts of 32); every episode's last rollout is
    terminal; the market's horizon must equal the episode length."""
    assert NoisyACConfig().episode_length == 128 and 128 % NoisyACConfig().num_steps == 0
    algo = make(8, **SMALL, episode_length=16)
    log = algo.train(4, progress=False)
    assert log["episode_end"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert algo.env is not algo.model and algo.env.t == 16
    with pytest.raises(ValueError, match=r"episode_length=16 .*horizon=128"):
        NoisyAC(EconomyModel(**MARKET, rng=0), NoisyACConfig(**SMALL, episode_length=16))
