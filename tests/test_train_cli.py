"""``mesa-econ train``: writes a loadable checkpoint, curves (CSV + PNG) and a summary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ.cli import main
from mesa_econ.cli._params import parse_pairs
from mesa_econ.cli.train import run_training
from mesa_econ.model import EconomyModel
from mesa_econ.rl import ALGORITHMS, PPO
from mesa_econ.scenarios import scenario_params

torch.set_num_threads(1)


def test_train_writes_checkpoint_curves_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "defi_token_market", "--algo", "ppo", "--iterations", "3",
                 "--seed", "4", "--out", str(out), "--n-agents", "6", "--set", "num_steps=16",
                 "--set", "num_minibatches=2", "--model", "omega=100", "--eval-seeds", "2",
                 "--eval-steps", "10", "--no-progress"])
    assert code == 0
    assert "trained 6 agents" in capsys.readouterr().out
    frame = pd.read_csv(out / "training.csv")
    assert frame["iteration"].tolist() == [1, 2, 3]
    assert {"mean_reward", "volatility", "approx_kl", "entropy", "value_loss"} <= set(frame)
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["num_steps"] == 16 and summary["config"]["seed"] == 4
    assert summary["config"]["episode_length"] == 128  # episodic by default
    assert summary["protocol"]["horizon"] == 128
    assert summary["eval_seeds"] == [1004, 1005] and summary["eval_steps"] == 10
    assert set(summary["evaluation"]) == {"initial", "trained", "random (clipped)", "hold"}
    assert list(summary["comparisons"]) == ["trained - initial", "trained - hold",
                                            "trained - random (clipped)"]
    for comp, sentence in zip(summary["comparisons"].values(), summary["verdict"],
                              strict=True):
        assert comp["low"] <= comp["mean"] <= comp["high"] and comp["n"] == 2
        assert sentence == comp["verdict"]
    text = (out / "summary.md").read_text()
    assert "| trained |" in text and "| random (clipped) |" in text and "## Verdict" in text
    per_seed = pd.read_csv(out / "evaluation.csv")
    assert len(per_seed) == 8 and set(per_seed["seed"]) == {1004, 1005}
    assert {"mean_return", "volatility", "level_variance", "final_price"} <= set(per_seed)
    # the checkpoint drives the scenario's market
    params = scenario_params("defi_token_market", n_agents=6, omega=100)
    model = EconomyModel(**params, policy=f"checkpoint:{out / 'checkpoint'}", rng=0)
    model.step()
    assert model.t == 1


def test_same_seed_same_cli_curves(tmp_path):
    frames = []
    for name in ("a", "b"):
        assert main(["train", "defi_token_market", "--iterations", "2", "--seed", "1",
                     "--out", str(tmp_path / name), "--n-agents", "5", "--set", "num_steps=8",
                     "--set", "num_minibatches=2", "--eval-seeds", "1", "--eval-steps", "5",
                     "--no-progress"]) == 0
        frames.append(pd.read_csv(tmp_path / name / "training.csv")
                      .drop(columns=["collect_s", "update_s", "agent_steps_per_s"]))
    pd.testing.assert_frame_equal(*frames)


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "no_such_field=1"], "no_such_field"),
    (["--set", "clip_coef=-1"], "clip_coef"),
    (["--set", "oops"], "KEY=VALUE"),
    (["--set", "clip_coef=abc"], "--set clip_coef=abc: clip_coef='abc' is invalid"),
    (["--model", "no_such_keyword=1"], "--model no_such_keyword=1: no_such_keyword is invalid"),
])
def test_bad_arguments_give_clear_errors(tmp_path, capsys, argv, message):
    code = main(["train", "defi_token_market", "--out", str(tmp_path), "--n-agents", "5",
                 "--no-progress", *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def test_unknown_algo_and_scenario_are_refused(tmp_path):
    for argv in (["defi_token_market", "--algo", "dqn"], ["no_such_market"]):
        with pytest.raises(SystemExit) as exc:
            main(["train", *argv, "--out", str(tmp_path)])
        assert exc.value.code == 2


def test_algorithm_registry():
    assert ALGORITHMS["ppo"] is PPO
    assert set(ALGORITHMS) == {"ppo", "qlearning", "noisy_ac"}
    with pytest.raises(KeyError):
        ALGORITHMS["dqn"]


def test_parse_pairs_reads_json_values():
    assert parse_pairs(["a=1", "b=0.5", "c=[64, 64]", "d=none", "e=text", "f-g=true"],
                       "--set") == {"a": 1, "b": 0.5, "c": (64, 64), "d": None,
                                    "e": "text", "f_g": True}


def test_train_checks_out_before_training(tmp_path, monkeypatch, capsys):
    """An --out that cannot be written fails at once (it used to train for minutes, then
    crash and lose the policy): no model is built."""
    import mesa_econ.model

    def no_work(*args, **kwargs):
        raise AssertionError("a model was built before --out was checked")

    monkeypatch.setattr(mesa_econ.model.EconomyModel, "_init_from_config", no_work)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["train", "defi_token_market", "--iterations", "1", "--n-agents", "5",
                 "--eval-seeds", "1", "--eval-steps", "2", "--no-progress",
                 "--out", str(blocker / "run")])
    assert code == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not a writable directory"):
        run_training("defi_token_market", "ppo", 1, 0, blocker / "run", n_agents=5)


@pytest.mark.parametrize("algo", ["ppo", "qlearning", "noisy_ac"])
def test_every_algorithm_trains_and_its_checkpoint_loads_in_a_fresh_process(tmp_path, algo):
    """The CLI resolves each algorithm through ALGORITHMS; a new interpreter (which never
    imported the trainer) drives a model from the checkpoint."""
    import subprocess
    import sys

    out = tmp_path / algo
    assert main(["train", "defi_token_market", "--algo", algo, "--iterations", "1",
                 "--seed", "2", "--out", str(out), "--n-agents", "5", "--eval-seeds", "1",
                 "--eval-steps", "3", "--no-progress"]) == 0
    assert len(pd.read_csv(out / "training.csv")) == 1
    script = ("import torch; torch.set_num_threads(1)\n"
              "from mesa_econ.model import EconomyModel\n"
              "from mesa_econ.scenarios import scenario_params\n"
              "m = EconomyModel(**scenario_params('defi_token_market', n_agents=5), "
              f"policy='checkpoint:{out / 'checkpoint'}', rng=0)\n"
              "m.step(); print(m.t)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "1"


# ------------------------------------------------------------------ paired CIs and verdicts

def test_paired_difference_by_hand():
    """Two seeds with differences (1, 3): the resampled means are 1, 2 or 3 with
    probabilities 1/4, 1/2, 1/4, so the 95% percentile interval is [1, 3]; differences
    (−1, 1) give [−1, 1]."""
    from mesa_econ.rl.evaluate import paired_difference

    diff = paired_difference([2.0, 5.0], [1.0, 2.0], rng=np.random.default_rng(0))
    assert diff == {"mean": 2.0, "low": 1.0, "high": 3.0, "n": 2, "method": "percentile"}
    diff = paired_difference([0.0, 1.0], [1.0, 0.0], rng=np.random.default_rng(0))
    assert (diff["mean"], diff["low"], diff["high"]) == (0.0, -1.0, 1.0)
    same = paired_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert (same["low"], same["high"]) == (1.0, 1.0)  # every resample: 1
    one = paired_difference([1.0], [0.0])
    assert one["mean"] == 1.0 and np.isnan(one["low"]) and np.isnan(one["high"])


def test_paired_difference_is_paired_and_uses_bca_from_ten_seeds():
    """Arms that share most of their variation (common random numbers): the paired CI is
    narrow and excludes 0, though each arm's spread is 10x the shift; BCa from n = 10."""
    from mesa_econ.rl.evaluate import paired_difference

    rng = np.random.default_rng(3)
    common = rng.normal(0.0, 10.0, size=12)
    a, b = common + 1.0 + rng.normal(0.0, 0.1, size=12), common
    diff = paired_difference(a, b, rng=np.random.default_rng(0))
    assert diff["method"] == "BCa" and 0.8 < diff["low"] < diff["mean"] < diff["high"] < 1.2
    again = paired_difference(a, b, rng=np.random.default_rng(0))
    assert again == diff  # seeded
    with pytest.raises(ValueError, match="same length"):
        paired_difference([1.0, 2.0], [1.0])


@pytest.mark.parametrize(("mean", "low", "high", "start"), [
    (2.0, 1.0, 3.0, "training improved on hold (CI above 0)"),
    (-2.0, -3.0, -1.0, "training made things worse than hold (CI below 0)"),
    (0.5, -1.0, 2.0, "no significant difference from hold"),
])
def test_verdict_wording(mean, low, high, start):
    from mesa_econ.rl.evaluate import verdict

    sentence = verdict({"mean": mean, "low": low, "high": high}, "hold")
    assert sentence.startswith(start + ":")
    assert f"{mean:+.4g}" in sentence and f"[{low:.4g}, {high:.4g}]" in sentence


def test_summary_says_when_training_made_things_worse(tmp_path, monkeypatch, capsys):
    """With evaluations in which the trained arm earns less than the initial policy and
    hold on every seed, train's summary says so, in JSON, markdown and on stdout."""
    import mesa_econ.rl.evaluate as evaluate

    returns = {"initial": 1.0, "trained": -1.0, "hold": 0.0, "random (clipped)": -1.0}
    calls = []

    def fake(policy, params, seeds, steps=128, deterministic=False):
        arm = evaluate.arm_label(policy) if isinstance(policy, str) else \
            ("initial" if not calls else "trained")
        calls.append(arm)
        seeds = list(seeds)
        noise = np.linspace(-0.1, 0.1, len(seeds))  # shared by the arms, seed by seed
        return pd.DataFrame({"seed": seeds, "mean_return": returns[arm] + noise,
                             "volatility": 0.01, "level_variance": 0.0, "final_price": 1.0})

    monkeypatch.setattr(evaluate, "evaluate_policy", fake)
    out = tmp_path / "run"
    assert main(["train", "defi_token_market", "--iterations", "1", "--seed", "3",
                 "--out", str(out), "--n-agents", "6", "--set", "num_steps=16",
                 "--set", "num_minibatches=2", "--eval-seeds", "3", "--no-progress"]) == 0
    assert calls == ["initial", "trained", "hold", "random (clipped)"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_steps"] == 128  # the horizon by default
    assert summary["worse_than"] == ["initial", "hold"]
    verdicts = summary["verdict"]
    assert verdicts[0].startswith("training made things worse than initial (CI below 0)")
    assert verdicts[1].startswith("training made things worse than hold (CI below 0)")
    assert verdicts[2].startswith("no significant difference from random (clipped)")
    comp = summary["comparisons"]["trained - initial"]
    assert comp["mean"] == pytest.approx(-2.0) and comp["low"] == comp["high"] == \
        pytest.approx(-2.0)
    text = (out / "summary.md").read_text()
    assert "training made things worse than hold (CI below 0)" in text
    assert "training made things worse than initial" in capsys.readouterr().out


def test_episode_length_sets_the_market_horizon(tmp_path):
    out = tmp_path / "short"
    assert main(["train", "defi_token_market", "--iterations", "2", "--seed", "1",
                 "--out", str(out), "--n-agents", "6", "--set", "num_steps=16",
                 "--set", "num_minibatches=2", "--set", "episode_length=32",
                 "--eval-seeds", "2", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["horizon"] == 32 and summary["eval_steps"] == 32
    assert pd.read_csv(out / "training.csv")["episode_end"].tolist() == [0.0, 1.0]


def test_horizon_and_episode_length_that_differ_are_refused(tmp_path, capsys):
    code = main(["train", "defi_token_market", "--out", str(tmp_path), "--n-agents", "6",
                 "--model", "horizon=64", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "episode_length=128" in err and "horizon=64" in err


def test_evaluation_metrics_on_a_hand_made_price_path():
    """Log returns (0.1, −0.1, 0.1): sample std sqrt(((1/15)² · 2 + (2/15)²) / 2) = 0.11547;
    a constant second asset has 0, so the mean over assets is half. §7.1's level variance
    is the population variance of the levels."""
    from mesa_econ.rl.evaluate import price_level_variance, price_volatility

    up = np.exp(0.1)
    prices = np.array([[1.0, 2.0], [up, 2.0], [1.0, 2.0], [up, 2.0]])
    assert price_volatility(prices) == pytest.approx(0.5 * np.sqrt(0.04 / 3), rel=1e-12)
    assert price_level_variance(prices) == pytest.approx(0.5 * ((up - 1) / 2) ** 2,
                                                         rel=1e-12)
    assert np.isnan(price_volatility(prices[:2]))  # one return: no sample std


def test_evaluation_runs_episodes_with_common_random_numbers_and_the_same_limits():
    """Arms on one seed share the market noise: hold and clipped random see the same Z(t);
    random's orders stay within ±trade_scale; rows carry the four metrics."""
    from mesa_econ.rl.evaluate import _make_model, arm_label, evaluate_policy, run_policy

    params = {**scenario_params("defi_token_market", n_agents=6), "population_seed": 11}
    frame = evaluate_policy("random", params, [5, 6], steps=12)
    assert list(frame.columns) == ["seed", "mean_return", "volatility", "level_variance",
                                   "final_price"]
    assert arm_label("random") == "random (clipped)" and arm_label("hold") == "hold"
    runs = {}
    for arm in ("hold", "random"):
        model = _make_model(params, 5, arm)
        assert model.population_seed == 11
        factors = []
        for _ in range(12):
            run_policy(None, model, 1)
            factors.append(model.factors.copy())
            assert np.abs(model.last_orders).max() <= model.trade_scale
        runs[arm] = np.array(factors)
    np.testing.assert_array_equal(runs["hold"], runs["random"])
