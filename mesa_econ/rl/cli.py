"""``mesa-econ train SCENARIO --algo ppo|qlearning|noisy_ac --iterations K --seed S --out DIR``.

Trains a scenario's agents and writes into DIR:

- ``checkpoint/policy.safetensors`` + ``checkpoint/policy.json`` (load it with
  ``EconomyModel(policy="checkpoint:DIR/checkpoint", ...)``);
- ``training.csv`` (one row per iteration) and ``training.png`` (the curves);
- ``summary.json`` and ``summary.md``: the run's settings, the last iteration's metrics,
  and an evaluation on held-out seeds (seeds S+1000, S+1001, ...) of the initial policy,
  the trained policy and the random and hold baselines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run_training"]

_CURVES = ("mean_reward", "volatility", "approx_kl", "entropy", "value_loss", "pg_loss",
           "explained_variance", "clipfrac", "epsilon", "td_loss", "sigma_xi")


def _parse_pairs(pairs: list[str], what: str) -> dict[str, Any]:
    """``["key=value", ...]`` → dict; values parsed as JSON where possible (lists → tuples)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{what} {pair!r} is invalid: expected KEY=VALUE")
        key, text = pair.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = {"none": None, "true": True, "false": False}.get(text.lower(), text)
        out[key.strip().replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    return out


def _build_config(config_cls: type, overrides: dict[str, Any], seed: int) -> Any:
    names = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"--set {unknown} is invalid: expected fields of "
                         f"{config_cls.__name__}: {sorted(names)}")
    if "seed" in names and "seed" not in overrides:
        overrides = {**overrides, "seed": seed}
    return config_cls(**overrides)


def _plot(frame: Any, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in _CURVES if c in frame.columns]
    ncols = 3
    nrows = -(-len(cols) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(12, 3.2 * nrows), squeeze=False)
    for ax, col in zip(axes.ravel(), cols, strict=False):
        ax.plot(frame["env_steps"], frame[col])
        ax.set(xlabel="environment steps", title=col)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(summary: dict[str, Any]) -> str:
    lines = [f"# Training: {summary['scenario']} with {summary['algo']}", "",
             f"- seed {summary['seed']}, {summary['iterations']} iterations, "
             f"{summary['env_steps']} environment steps, {summary['n_agents']} agents",
             f"- training time {summary['train_seconds']:.1f} s "
             f"({summary['agent_steps_per_s']:.0f} agent-steps/s)",
             f"- checkpoint: `{summary['checkpoint']}`", "",
             f"## Evaluation on held-out seeds {summary['eval_seeds']} "
             f"({summary['eval_steps']} steps each, mean ± 95% interval)", "",
             "| policy | mean return per agent | price volatility |", "|---|---|---|"]
    for name, ev in summary["evaluation"].items():
        lines.append(f"| {name} | {ev['mean_return_mean']:.4g} ± {ev['mean_return_ci95']:.2g} "
                     f"| {ev['volatility_mean']:.4g} ± {ev['volatility_ci95']:.2g} |")
    lines += ["", "## Last iteration", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in summary["last_iteration"].items()]
    return "\n".join(lines) + "\n"


def run_training(scenario: str, algo: str, iterations: int, seed: int, out: str | Path, *,
                 n_agents: int | None = None, config: dict[str, Any] | None = None,
                 model_kwargs: dict[str, Any] | None = None, eval_seeds: int = 5,
                 eval_steps: int = 100, progress: bool = True) -> dict[str, Any]:
    """Train, save, evaluate and report one run (what ``mesa-econ train`` does).

    Returns:
        The summary dictionary (also written to ``out/summary.json``).
    """
    import torch

    from mesa_econ.model import EconomyModel
    from mesa_econ.rl import ALGORITHMS, config_class
    from mesa_econ.rl.evaluate import evaluate_policy, summarize_returns
    from mesa_econ.scenarios import scenario_params

    if algo not in ALGORITHMS:
        raise ValueError(f"algo={algo!r} is invalid: expected one of {list(ALGORITHMS)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r} is invalid: expected an integer >= 1")
    if eval_seeds < 1 or eval_steps < 1:
        raise ValueError(f"eval_seeds={eval_seeds}, eval_steps={eval_steps} are invalid: "
                         "expected integers >= 1")
    torch.set_num_threads(1)
    algo_cls = ALGORITHMS[algo]
    cfg = _build_config(config_class(algo_cls), dict(config or {}), seed)
    params = scenario_params(scenario, **dict(model_kwargs or {}))
    if n_agents is not None:
        params["n_agents"] = n_agents
    for key in ("policy", "rng", "seed", "collect_every"):  # owned by the trainer and --seed
        params.pop(key, None)
    # nothing reads the training market's DataCollector: the trainer logs its own metrics
    model = EconomyModel(**params, rng=seed, collect_every=0)
    trainer = algo_cls(model, cfg)
    seeds = [seed + 1000 + k for k in range(eval_seeds)]
    evaluation = {"initial": summarize_returns(
        evaluate_policy(trainer.policy(), params, seeds, steps=eval_steps))}
    start = time.perf_counter()
    frame = trainer.train(iterations, progress=progress)
    seconds = time.perf_counter() - start
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer.save(out / "checkpoint")
    frame.to_csv(out / "training.csv", index=False)
    _plot(frame, out / "training.png", f"{scenario}: {algo}, seed {seed}")
    evaluation["trained"] = summarize_returns(
        evaluate_policy(trainer.policy(), params, seeds, steps=eval_steps))
    for baseline in ("random", "hold"):
        evaluation[baseline] = summarize_returns(
            evaluate_policy(baseline, params, seeds, steps=eval_steps))
    last = frame.iloc[-1]
    summary = {"scenario": scenario, "algo": algo, "seed": seed, "iterations": iterations,
               "n_agents": model.n_agents, "n_assets": model.n_assets,
               "env_steps": int(last["env_steps"]), "train_seconds": seconds,
               "agent_steps_per_s": int(last["env_steps"]) * model.n_agents / seconds,
               "checkpoint": str(out / "checkpoint"), "config": dataclasses.asdict(cfg),
               "eval_seeds": seeds, "eval_steps": eval_steps, "evaluation": evaluation,
               "last_iteration": {k: float(v) for k, v in last.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "summary.md").write_text(_markdown(summary))
    return summary


def _train_command(args: argparse.Namespace) -> int:
    summary = run_training(args.scenario, args.algo, args.iterations, args.seed, args.out,
                           n_agents=args.n_agents, config=_parse_pairs(args.set, "--set"),
                           model_kwargs=_parse_pairs(args.model, "--model"),
                           eval_seeds=args.eval_seeds, eval_steps=args.eval_steps,
                           progress=not args.no_progress)
    ev = summary["evaluation"]
    print(f"trained {summary['n_agents']} agents on {args.scenario} with {args.algo}: "
          f"mean return {ev['initial']['mean_return_mean']:.4g} (initial) -> "
          f"{ev['trained']['mean_return_mean']:.4g} (trained), "
          f"random {ev['random']['mean_return_mean']:.4g}, "
          f"hold {ev['hold']['mean_return_mean']:.4g}")
    print(f"wrote {args.out}/checkpoint, training.csv, training.png, summary.json, summary.md")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.rl import ALGORITHMS
    from mesa_econ.scenarios import SCENARIOS

    parser = subparsers.add_parser(
        "train", help="train a scenario's agents (PPO, Q-learning, noisy actor-critic)",
        description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--algo", default="ppo", choices=list(ALGORITHMS))
    parser.add_argument("--iterations", type=int, default=50, help="training iterations K")
    parser.add_argument("--seed", type=int, default=0, help="seed of the market and trainer")
    parser.add_argument("--out", default="results/train", help="output directory")
    parser.add_argument("--n-agents", type=int, default=None, help="override N")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="algorithm config field, e.g. --set num_steps=64 (repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                        help="EconomyModel keyword, e.g. --model omega=100 (repeatable)")
    parser.add_argument("--eval-seeds", type=int, default=5, help="held-out evaluation seeds")
    parser.add_argument("--eval-steps", type=int, default=100, help="steps per evaluation")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_train_command)
    return parser
