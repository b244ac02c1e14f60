"""Nash gap (§7.3): best responses, ε / NashConv arithmetic, sampling, freeze, CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mesa_econ.analysis.equilibrium import Profile, load_profile, nash_gap
from mesa_econ.analysis.equilibrium_br import (
    agent_slice,
    best_response,
    deviation_policy,
    select_response,
)
from mesa_econ.analysis.equilibrium_grad import policy_gradient_check
from mesa_econ.analysis.equilibrium_stats import (
    epsilon_interval,
    stratified_sample,
    stratify_by,
    summarise_gains,
)
from mesa_econ.model import EconomyModel
from mesa_econ.policies import PolicyEnsemble
from mesa_econ.rl import ObsNormalizer, PPOConfig, save_checkpoint

HORIZON = 32
OPTIMUM = 1 + 2 + 3 + 4 + 5 * (HORIZON - 4)  # buy one unit a step until holding the need 5


def _need_market(n: int) -> dict:
    """A game with a known equilibrium: each agent values units up to its need 5 (use value
    1, no profit term), the price is fixed (linear curve, slope 0.001, no impact), there is
    no market noise and no peer influence. Each agent's reward depends on its own trades
    alone, so buying the full trade size every step (return 150 over 32 steps) is a
    dominant strategy and the profile where everyone does it is a Nash equilibrium."""
    return {"n_agents": n, "n_assets": 1, "curve": "linear",
            "curve_params": {"slope": 0.001, "intercept": 1.0}, "sigma_eta": 0.0,
            "factor_std": 0.0, "profit_weight": 0.0, "use_value": 1.0,
            "demand": np.full((n, 1), 5.0), "initial_capital": 1000.0,
            "initial_holdings": 0.0, "trade_scale": 1.0, "horizon": HORIZON,
            "collect_every": 0}


def _profile(mean: float, log_std: float, n: int = 2) -> Profile:
    """Every agent plays u ~ N(mean, exp(log_std)²) whatever it observes (head weights 0),
    with an observation normaliser fitted on a hold episode."""
    params = _need_market(n)
    model = EconomyModel(**params, policy="hold", rng=0)
    norm = ObsNormalizer(n, model.obs_dim)
    for _ in range(HORIZON):
        norm(model.observations(), update=True)
        model.step()
    ens = PolicyEnsemble(n, model.obs_dim, 1, hidden=(16, 16),
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ens.actor_w[-1].zero_()
        ens.actor_b[-1].fill_(mean)
        ens.log_std.fill_(log_std)
    ppo = PPOConfig(num_steps=HORIZON, learning_rate=3e-3, episode_length=HORIZON)
    return Profile(ens, norm, params, ppo)


OPTIMAL = (3.0, -3.0)  # u ≈ 3 ± 0.05: always clipped to a full buy
BAD = (-0.5, -0.5)  # mostly sells nothing: returns of a few units


# ------------------------------------------------------------------ the known equilibrium

@pytest.mark.parametrize("val_seeds", [0, 3])  # the final policy; the best snapshot
def test_optimal_profile_has_no_profitable_deviation(val_seeds):
    """§7.3: at the equilibrium of the need game every δ_i is 0 within its interval."""
    result = nash_gap(_profile(*OPTIMAL), iterations=10, br_seeds=1, eval_seeds=5,
                      val_seeds=val_seeds, grad_episodes=0, progress=False)
    table, eps = result["summary"]["agents"], result["summary"]["epsilon"]
    assert table.profile_return.tolist() == [OPTIMUM, OPTIMUM]
    assert ((table.gain_low <= 0) & (table.gain_high >= 0)).all()
    assert eps["low"] <= 0 <= eps["high"] and abs(eps["mean"]) < 1.0
    assert abs(result["summary"]["nash_conv"]["mean"]) < 1.0


def test_bad_profile_gain_is_clearly_positive():
    """A profile that rarely buys: each agent's best response gains most of the gap to the
    optimum, with an interval far above 0."""
    result = nash_gap(_profile(*BAD), iterations=10, br_seeds=1, eval_seeds=5,
                      grad_episodes=0, progress=False)
    table, summary = result["summary"]["agents"], result["summary"]
    assert (table.profile_return < 20).all()
    assert (table.gain_low > 20).all()
    assert summary["epsilon"]["low"] > 20
    assert summary["nash_conv"]["mean"] == pytest.approx(table.gain.sum())
    assert (table.deviation_return <= OPTIMUM + 1e-9).all()  # nothing beats the optimum
    assert (result["responses"].selected_iteration > 0).all()  # a trained snapshot won
    assert (result["responses"].validation_gain > 20).all()


def test_snapshots_and_selection_keep_the_own_policy_when_nothing_beats_it():
    profile = _profile(*OPTIMAL)
    response, _ = best_response(profile, 0, seed=0, iterations=6, snapshots=3)
    assert [k for k, _ in response.snapshots] == [0, 2, 4, 6]
    assert response.selected is None  # unselected: the final policy is played
    for a, b in zip(response.response.parameters(), response.snapshots[-1][1].parameters(),
                    strict=True):
        assert torch.equal(a, b)
    # replace the last snapshot by a bad policy: validation must not pick it
    response.snapshots[-1] = (6, agent_slice(_profile(*BAD).ensemble, 0))
    own = np.full(3, float(OPTIMUM))
    chosen = select_response(profile, response, [10, 11, 12], own)
    assert chosen.validation[0] == {"iteration": 0, "gain": 0.0, "lower": 0.0}
    assert chosen.validation[-1]["gain"] < -50
    assert chosen.selected in (0, 2, 4)  # the optimum kept (ties go to the earliest)
    assert chosen.validation[[v["iteration"] for v in chosen.validation].index(
        chosen.selected)]["gain"] == 0.0


def test_gradient_check_zero_at_optimum_and_detects_bad_profile():
    """At the optimum every action is clipped to the same full buy: all returns are equal,
    so the REINFORCE estimate is exactly 0. The bad profile's mean-shift gradient stands
    clear of its noise (measured: shift_snr 3.8 and 4.5 on these 64 seeds)."""
    flat = policy_gradient_check(_profile(*OPTIMAL), range(4))
    assert (flat.grad_norm == 0).all() and (flat.snr == 0).all()
    steep = policy_gradient_check(_profile(*BAD), range(64))
    assert (steep.shift_snr > 3).all()
    assert (steep.grad_norm_debiased > 0).all()


# ------------------------------------------------------------------ freeze and splice

def test_best_response_freezes_the_other_agents_bit_for_bit():
    profile = _profile(*BAD, n=3)
    before = {k: v.clone() for k, v in profile.ensemble.state_dict().items()}
    norm_before = profile.obs_normalizer.rms.mean.copy()
    response, trainer = best_response(profile, 1, seed=0, iterations=3)
    others = torch.tensor([True, False, True])
    for (name, new), old in zip(trainer.ensemble.state_dict().items(), before.values(),
                                strict=True):
        if name == "group_of":
            continue
        assert torch.equal(new[others], old[others]), name
    assert not torch.equal(trainer.ensemble.actor_b[-1][1], before["actor_b.2"][1])
    # the profile itself is untouched, and so is the (frozen) normaliser
    for name, t in profile.ensemble.state_dict().items():
        assert torch.equal(t, before[name])
    np.testing.assert_array_equal(trainer.obs_normalizer.rms.mean, norm_before)
    assert response.iterations == 3 and len(response.log) == 3
    for a, b in zip(response.response.parameters(), agent_slice(trainer.ensemble, 1)
                    .parameters(), strict=True):
        assert torch.equal(a, b)


def test_best_response_is_reproducible_and_starts_from_own_policy():
    profile = _profile(*BAD)
    first, _ = best_response(profile, 0, seed=3, iterations=1)
    second, _ = best_response(profile, 0, seed=3, iterations=1)
    for a, b in zip(first.response.parameters(), second.response.parameters(), strict=True):
        assert torch.equal(a, b)
    # one clipped PPO step away from agent 0's own policy, not from a fresh one
    start = agent_slice(profile.ensemble, 0)
    for a, b in zip(first.response.parameters(), start.parameters(), strict=True):
        assert float((a - b).detach().abs().max()) < 0.05
    assert first.response.actor_b[-1].item() == pytest.approx(BAD[0], abs=0.05)


def test_deviation_policy_changes_only_that_agent():
    profile = _profile(*OPTIMAL, n=3)
    response = agent_slice(_profile(*BAD, n=3).ensemble, 2)
    policy = deviation_policy(profile, 2, response)
    obs = torch.zeros(3, profile.ensemble.obs_dim)
    means = policy.policy.actor_mean(torch.from_numpy(profile.obs_normalizer.normalize(
        obs.numpy())))
    assert means[:2].flatten().tolist() == [OPTIMAL[0]] * 2
    assert means[2].item() == pytest.approx(BAD[0])


# ------------------------------------------------------------------ arithmetic on hand numbers

def test_summarise_gains_on_hand_numbers():
    """δ_i = mean over seeds of deviation − profile; ε = max δ_i; NashConv = Σ δ_i."""
    profile = np.array([[10.0, 20.0], [12.0, 18.0], [11.0, 22.0]])  # [E=3, K=2]
    shifts = np.array([[1.0, 0.0], [3.0, 1.0]])  # per best-response seed and agent
    deviation = profile[None] + shifts[:, None, :]  # [S=2, E, K]
    out = summarise_gains(profile, deviation, agents=[4, 7], weights=[3.0, 5.0])
    table = out["agents"]
    assert table.agent.tolist() == [4, 7]
    assert table.gain.tolist() == [2.0, 0.5]
    assert table.gain_seed0.tolist() == [1.0, 0.0] and table.gain_seed1.tolist() == [3.0, 1.0]
    assert table.gain_std[0] == pytest.approx(np.sqrt(2.0))
    assert table.relative_gain[0] == pytest.approx(2.0 / 11.0)
    assert table.gain_low.tolist() == [2.0, 0.5] == table.gain_high.tolist()  # constant
    assert out["epsilon"] == {"mean": 2.0, "low": 2.0, "high": 2.0, "agent": 4}
    assert out["nash_conv"] == {"mean": 2.5, "low": 2.5, "high": 2.5}
    assert out["nash_conv_all"]["mean"] == pytest.approx(3.0 * 2.0 + 5.0 * 0.5)


def test_summarise_gains_interval_covers_the_mean():
    rng = np.random.default_rng(0)
    profile = rng.normal(100.0, 5.0, size=(12, 3))
    deviation = profile[None] + rng.normal([1.0, 0.0, -1.0], 0.5, size=(2, 12, 3))
    out = summarise_gains(profile, deviation)
    table = out["agents"]
    assert ((table.gain_low < table.gain) & (table.gain < table.gain_high)).all()
    assert out["epsilon"]["agent"] == 0
    assert out["epsilon"]["low"] < out["epsilon"]["mean"] < out["epsilon"]["high"]
    assert out["nash_conv"]["mean"] == pytest.approx(table.gain.sum())


def test_epsilon_interval_of_one_seed_is_nan():
    assert all(np.isnan(epsilon_interval(np.ones((1, 3)))))


@pytest.mark.parametrize(("profile", "deviation"), [
    (np.ones((3, 2)), np.ones((3, 2))),  # deviation without a seed axis
    (np.ones((3, 2)), np.ones((1, 3, 3))),  # agents differ
    (np.ones(3), np.ones((1, 3))),
    (np.full((2, 2), np.nan), np.ones((1, 2, 2))),
])
def test_summarise_gains_rejects_bad_shapes(profile, deviation):
    with pytest.raises(ValueError, match=r"profile|finite"):
        summarise_gains(profile, deviation)


# ------------------------------------------------------------------ stratified sampling

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_sample_is_proportional_with_every_stratum(seed):
    values = np.array([1] * 10 + [2] * 30 + [3] * 10, dtype=float)
    agents, weights = stratified_sample(values, 5, rng=seed)
    assert len(set(agents.tolist())) == 5 and list(agents) == sorted(agents)
    assert sorted(values[agents].tolist()) == [1, 2, 2, 2, 3]  # 5·(10, 30, 10)/50
    np.testing.assert_allclose(weights, 10.0)
    assert weights.sum() == pytest.approx(50.0)


def test_stratified_sample_small_strata_and_weights():
    values = np.array([3] * 8 + [4] * 38 + [5] * 3 + [6], dtype=float)  # degrees
    agents, weights = stratified_sample(values, 8, rng=0)
    assert set(values[agents]) == {3, 4, 5, 6}  # the lone degree-6 agent is in
    assert weights.sum() == pytest.approx(50.0)
    assert weights[values[agents] == 6].tolist() == [1.0]
    again, _ = stratified_sample(values, 8, rng=0)
    np.testing.assert_array_equal(agents, again)


def test_stratified_sample_quantile_bins_and_all():
    agents, weights = stratified_sample(np.arange(50.0), 8, rng=0)
    assert len(agents) == 8 and weights.sum() == pytest.approx(50.0)
    everyone, ones = stratified_sample(np.arange(6.0), 6, rng=0)
    assert everyone.tolist() == list(range(6)) and ones.tolist() == [1.0] * 6


@pytest.mark.parametrize(("values", "k"), [(np.ones(5), 0), (np.ones(5), 6), (np.ones(5), 2.5),
                                           (np.ones((5, 2)), 2), (np.array([1.0, np.nan]), 1),
                                           (np.array([]), 1)])
def test_stratified_sample_rejects_bad_input(values, k):
    with pytest.raises(ValueError, match="invalid"):
        stratified_sample(values, k)


def test_stratify_by_degree_then_need():
    ws = EconomyModel(n_agents=20, n_assets=1, graph="watts_strogatz",
                      graph_params={"k": 4, "p": 0.5}, rng=0, collect_every=0)
    key, values = stratify_by(ws)
    assert key == "degree" and values.tolist() == [ws.graph.degree(i) for i in range(20)]
    need = EconomyModel(**_need_market(4) | {"demand": np.arange(4.0)[:, None]}, rng=0)
    assert stratify_by(need)[0] == "need"  # complete graph: degrees equal
    assert stratify_by(EconomyModel(**_need_market(4), rng=0))[0] == "none"


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize(("kwargs", "match"), [
    ({"iterations": 1, "budget_s": 1.0}, "exactly one"),
    ({}, "exactly one"),
    ({"iterations": 1, "eval_seeds": 1}, "eval_seeds"),
    ({"iterations": 1, "eval_seeds": [5, 5]}, "eval_seeds"),
    ({"iterations": 1, "val_seeds": -1}, "val_seeds"),
    ({"iterations": 1, "br_seeds": 0}, "br_seeds"),
    ({"budget_s": -1.0}, "budget_s"),
    ({"iterations": 1, "agents": [0, 2]}, "agents"),
    ({"iterations": 1, "agents": 0}, "agents"),
])
def test_nash_gap_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nash_gap(_profile(*BAD), progress=False, **kwargs)


@pytest.mark.parametrize(("agent", "kwargs", "match"), [
    (2, {"iterations": 1}, "agent"), (-1, {"iterations": 1}, "agent"),
    (0, {"iterations": 0}, "iterations"), (0, {"budget_s": 0.0}, "budget_s"),
    (0, {"iterations": 1, "snapshots": 0}, "snapshots"),
])
def test_best_response_rejects_bad_input(agent, kwargs, match):
    with pytest.raises(ValueError, match=match):
        best_response(_profile(*BAD), agent, **kwargs)


def test_profile_rejects_shared_policies_and_other_objects():
    ens = PolicyEnsemble(4, 5, 1, n_groups=2, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="n_groups"):
        Profile(ens, None, _need_market(4))
    with pytest.raises(ValueError, match="PolicyEnsemble"):
        Profile("hold", None, _need_market(4))


def test_gradient_check_needs_two_episodes():
    with pytest.raises(ValueError, match=">= 2"):
        policy_gradient_check(_profile(*BAD), [0])


def test_load_profile_rejects_checkpoints_without_their_game(tmp_path):
    profile = _profile(*BAD)
    save_checkpoint(profile.ensemble, tmp_path / "bare", algo="ppo")  # no model: no rewards
    with pytest.raises(ValueError, match="rewards"):
        load_profile(tmp_path / "bare")
    save_checkpoint(profile.ensemble, tmp_path / "q", algo="qlearning",
                    model=EconomyModel(**_need_market(2), rng=0))
    with pytest.raises(ValueError, match="PPO profile"):
        load_profile(tmp_path / "q")
    with pytest.raises(ValueError, match="not found"):
        load_profile(tmp_path / "missing")


# ------------------------------------------------------------------ resume and CLI

def test_interrupted_run_resumes_with_its_best_responses(tmp_path):
    profile = _profile(*BAD)
    kwargs = {"iterations": 2, "br_seeds": 1, "eval_seeds": 3, "grad_episodes": 0,
              "progress": False, "out": tmp_path}
    first = nash_gap(profile, **kwargs)
    # as if interrupted before agent 1's response was written
    (tmp_path / "best_responses" / "agent1" / "seed0" / "result.json").unlink()
    second = nash_gap(profile, **kwargs)
    assert second["responses"].resumed.tolist() == [True, False]
    assert second["responses"].selected_iteration.tolist() == \
        first["responses"].selected_iteration.tolist()
    assert second["summary"]["agents"].gain[0] == first["summary"]["agents"].gain[0]
    assert second["summary"]["agents"].gain.tolist() == first["summary"]["agents"].gain.tolist()
    with pytest.raises(ValueError, match="another Nash-gap run"):
        nash_gap(profile, **{**kwargs, "iterations": 3})


def _defi_checkpoint(path, mark: str = "quote") -> None:
    from mesa_econ.experiments import POPULATION_SEED
    from mesa_econ.rl import PPO
    from mesa_econ.scenarios import scenario_params

    params = scenario_params("defi_token_market", n_agents=6, profit_mark=mark,
                             population_seed=POPULATION_SEED, collect_every=0)
    model = EconomyModel(**params, policy="actor_critic", rng=0)
    algo = PPO(model, PPOConfig(num_steps=64, seed=0, learning_rate=1e-3))
    algo.train(1, progress=False)
    algo.save(path)


def test_cli_writes_summary_csvs_and_checkpoints(tmp_path):
    from mesa_econ.cli import nash

    _defi_checkpoint(tmp_path / "ckpt")
    parser = argparse.ArgumentParser(prog="mesa-econ")
    nash.add_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "out"
    args = parser.parse_args(["nash", str(tmp_path / "ckpt"), "--agents", "2", "--iterations",
                              "1", "--br-seeds", "1", "--eval-seeds", "2", "--grad-episodes",
                              "2", "--out", str(out), "--no-progress"])
    assert args.func(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["setup"]["rewards"]["profit_mark"] == "quote"
    assert summary["setup"]["population_seed"] == 20_261_206
    assert summary["setup"]["picked"].startswith("stratified by")
    assert len(summary["agents"]) == 2 and "lower bound" in summary["setup"]["lower_bound"]
    md = (out / "summary.md").read_text()
    assert "ε = max_i δ_i" in md and "lower bound" in md and "profit_mark" in md
    for agent in summary["setup"]["agents"]:
        assert (out / "agents" / f"agent{agent}.csv").is_file()
        assert (out / "best_responses" / f"agent{agent}" / "seed0" / "policy.json").is_file()
    assert (out / "gradient.csv").is_file() and (out / "responses.csv").is_file()


def test_load_profile_reads_the_game_of_a_train_run(tmp_path):
    """Rewards, horizon and N from the checkpoint; scenario and population seed from the
    `mesa-econ train` summary beside it (else the reproduction's POPULATION_SEED)."""
    _defi_checkpoint(tmp_path / "run" / "checkpoint", mark="liquidation")
    profile = load_profile(tmp_path / "run" / "checkpoint")
    assert profile.params["population_seed"] == 20_261_206
    assert profile.rewards["profit_mark"] == "liquidation" and profile.n_agents == 6
    (tmp_path / "run" / "summary.json").write_text(json.dumps(
        {"scenario": "defi_token_market", "protocol": {"population_seed": 5}}))
    profile = load_profile(tmp_path / "run" / "checkpoint")
    assert profile.params["population_seed"] == 5 and profile.scenario == "defi_token_market"
    assert load_profile(tmp_path / "run" / "checkpoint",
                        population_seed=9).params["population_seed"] == 9
    with pytest.raises(ValueError, match=r"n_agents|obs_dim|act_dim|observation|graph_params k=6"):
        load_profile(tmp_path / "run" / "checkpoint", scenario="resource_network")


@pytest.mark.parametrize("argv", [["--agents", "0"], ["--agents", "some"]])
def test_cli_rejects_bad_agents(argv, capsys):
    from mesa_econ.cli import nash

    parser = argparse.ArgumentParser(prog="mesa-econ")
    nash.add_parser(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(["nash", "ckpt", "--out", "x", *argv])
    assert "--agents" in capsys.readouterr().err


def test_cli_checks_out_before_loading(tmp_path):
    from mesa_econ.cli import nash

    parser = argparse.ArgumentParser(prog="mesa-econ")
    nash.add_parser(parser.add_subparsers(dest="command", required=True))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = parser.parse_args(["nash", str(tmp_path / "missing"), "--out", str(blocker / "o")])
    with pytest.raises(ValueError, match="--out"):
        args.func(args)


def test_cli_module_imports_no_analysis_code():
    """`mesa-econ --help` builds the parser: the analysis is imported only when run."""
    code = ("import sys, argparse; from mesa_econ.cli import nash; "
            "p = argparse.ArgumentParser(); nash.add_parser(p.add_subparsers()); "
            "print(any(m.startswith('mesa_econ.analysis') or m == 'tqdm' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_profile_rewards_state_the_game():
    profile = _profile(*BAD)
    assert profile.rewards["use_value"] == 1.0 and profile.rewards["profit_weight"] == 0.0
    assert profile.digest() == _profile(*BAD).digest() != _profile(*OPTIMAL).digest()
    replaced = dataclasses.replace(profile, params={**profile.params, "use_value": 2.0})
    assert replaced.digest() != profile.digest()
