"""``mesa-econ train``: writes a loadable checkpoint, curves (CSV + PNG) and a summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from mesa_econ.cli import main
from mesa_econ.model import EconomyModel
from mesa_econ.rl import ALGORITHMS, PPO
from mesa_econ.rl.cli import _parse_pairs
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
    assert summary["eval_seeds"] == [1004, 1005]
    assert set(summary["evaluation"]) == {"initial", "trained", "random", "hold"}
    assert "| trained |" in (out / "summary.md").read_text()
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
    (["--iterations", "0"], "iterations"),
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
    assert _parse_pairs(["a=1", "b=0.5", "c=[64, 64]", "d=none", "e=text", "f-g=true"],
                        "--set") == {"a": 1, "b": 0.5, "c": (64, 64), "d": None,
                                     "e": "text", "f_g": True}


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
