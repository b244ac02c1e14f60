"""``mesa-econ train SCENARIO --algo ppo|qlearning|noisy_ac --iterations K --seed S --out DIR``.

Trains a scenario's agents and writes into DIR:

- ``checkpoint/policy.safetensors`` + ``checkpoint/policy.json`` (load it with
  ``EconomyModel(policy="checkpoint:DIR/checkpoint", ...)``);
- ``training.csv`` (one row per iteration) and ``training.png`` (the curves);
- ``evaluation.csv``: one row per arm and held-out seed;
- ``summary.json`` and ``summary.md``: the run's settings and protocol, the last
  iteration's metrics, an evaluation on held-out noise seeds (S+1000, S+1001, ..., the
  training population) of the initial policy, the trained policy, ``hold`` and
  ``random (clipped)``, and a verdict: trained − initial, trained − hold and trained −
  random as paired mean differences of the return with 95% bootstrap CIs, each with a
  sentence ("training improved on X (CI above 0)", "training made things worse than X
  (CI below 0)" or "no significant difference from X").

Training is episodic by default (episodes of H = 128 steps on fresh markets; see
:mod:`mesa_econ.rl.trainer`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import (
    check_writable,
    pyplot,
    save_figure,
    write_json,
    write_table,
    write_text,
    wrote,
)
from mesa_econ.cli._params import dataclass_defaults, int_at_least, parse_pairs, signature_defaults

__all__ = ["BASELINES", "add_parser", "compare_arms", "run_training"]

_CURVES = ("mean_reward", "volatility", "level_variance", "approx_kl", "entropy",
           "value_loss", "pg_loss", "explained_variance", "clipfrac", "epsilon", "td_loss",
           "sigma_xi")


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
    """The training curves of ``_CURVES`` that the trainer logged, against env steps."""
    cols = [c for c in _CURVES if c in frame.columns]
    ncols = 3
    nrows = -(-len(cols) // ncols)
    fig, axes = pyplot().subplots(nrows, ncols, figsize=(12, 3.2 * nrows), squeeze=False)
    for ax, col in zip(axes.ravel(), cols, strict=False):
        ax.plot(frame["env_steps"], frame[col])
        ax.set(xlabel="environment steps", title=col)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _markdown(summary: dict[str, Any]) -> str:
    proto = summary["protocol"]
    episodic = (f"episodes of {proto['episode_length']} steps on fresh markets (terminal "
                "end)" if proto["episode_length"] is not None else "one open-ended market")
    lines = [f"# Training: {summary['scenario']} with {summary['algo']}", "",
             f"- seed {summary['seed']}, {summary['iterations']} iterations, "
             f"{summary['env_steps']} environment steps, {summary['n_agents']} agents, "
             f"{episodic}",
             f"- population seed {proto['population_seed']} (graph and needs, shared by "
             f"training and evaluation), market horizon H = {proto['horizon']}",
             f"- training time {summary['train_seconds']:.1f} s "
             f"({summary['agent_steps_per_s']:.0f} agent-steps/s)",
             f"- checkpoint: `{summary['checkpoint']}`", "",
             "## Verdict", "",
             "Paired differences of the mean return per agent over the held-out seeds "
             "(same seeds for every arm, 95% bootstrap CI over seeds):", "",
             "| comparison | mean difference | 95% CI | verdict |", "|---|---|---|---|"]
    for name, comp in summary["comparisons"].items():
        lines.append(f"| {name} | {_fmt(comp['mean'])} | [{_fmt(comp['low'])}, "
                     f"{_fmt(comp['high'])}] | {comp['verdict'].split(':')[0]} |")
    lines += [""] + [f"- {sentence}" for sentence in summary["verdict"]]
    lines += ["", f"## Evaluation on held-out seeds {summary['eval_seeds']} "
              f"({summary['eval_steps']} steps each, mean ± 95% normal interval over seeds)",
              "", "| policy | mean return per agent | volatility (std of log returns) "
              "| level variance (§7.1) |", "|---|---|---|---|"]
    for name, ev in summary["evaluation"].items():
        lines.append(f"| {name} | {_fmt(ev['mean_return_mean'])} ± "
                     f"{ev['mean_return_ci95']:.2g} | {_fmt(ev['volatility_mean'])} ± "
                     f"{ev['volatility_ci95']:.2g} | {_fmt(ev['level_variance_mean'])} ± "
                     f"{ev['level_variance_ci95']:.2g} |")
    lines += ["", "## Last iteration", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in summary["last_iteration"].items()]
    return "\n".join(lines) + "\n"


BASELINES = ("hold", "random")
"""Scripted arms of the summary ('random' runs clipped, as "random (clipped)")."""


def compare_arms(frames: dict[str, Any], seed: int,
                 reference: str = "trained") -> dict[str, dict[str, Any]]:
    """Paired differences ``reference − other`` of the mean return for every other arm,
    each with its 95% bootstrap CI and a :func:`~mesa_econ.rl.evaluate.verdict` sentence.

    Args:
        frames: arm label → :func:`~mesa_econ.rl.evaluate.evaluate_policy` frame (the same
            seeds in the same order for every arm).
        seed: seed of the bootstrap resampling.
        reference: the arm compared with all others.
    """
    import numpy as np

    from mesa_econ.rl.evaluate import paired_difference, verdict

    ref = frames[reference]
    out = {}
    for k, (name, frame) in enumerate(frames.items()):
        if name == reference:
            continue
        if not np.array_equal(frame["seed"].to_numpy(), ref["seed"].to_numpy()):
            raise ValueError(f"arm {name!r} was evaluated on other seeds than {reference!r}")
        diff = paired_difference(ref["mean_return"], frame["mean_return"],
                                 rng=np.random.default_rng([seed, k]))
        vol = paired_difference(ref["volatility"], frame["volatility"],
                                rng=np.random.default_rng([seed, k, 1]))
        out[f"{reference} - {name}"] = {
            "metric": "mean_return", **diff, "verdict": verdict(diff, name),
            "volatility_difference": {key: vol[key] for key in ("mean", "low", "high")}}
    return out


def run_training(scenario: str, algo: str, iterations: int, seed: int, out: str | Path, *,
                 n_agents: int | None = None, config: dict[str, Any] | None = None,
                 model_kwargs: dict[str, Any] | None = None, eval_seeds: int = 10,
                 eval_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Train, save, evaluate and report one run (what ``mesa-econ train`` does).

    Training follows the episodic protocol (see :mod:`mesa_econ.rl.trainer`): with the
    algorithm's ``episode_length`` set (128 by default) the market's ``horizon`` is set to
    it unless ``model_kwargs`` gives one. The evaluation runs the initial policy, the
    trained policy, ``hold`` and ``random (clipped)`` on the same held-out noise seeds
    (S+1000, S+1001, ...) with the training population (its ``population_seed``), for
    ``eval_steps`` steps (default: the horizon, H = 128), and states a verdict: trained −
    initial, trained − hold and trained − random, each a paired mean difference of the
    return with its 95% bootstrap CI.

    ``out`` is checked to be a writable directory before anything is built or trained.

    Returns:
        The summary dictionary (also written to ``out/summary.json`` and ``summary.md``).

    Raises:
        ValueError: a bad argument or configuration field (named in the message), or an
            ``out`` that cannot be written.
    """
    from mesa_econ.rl import ALGORITHMS

    if algo not in ALGORITHMS:
        raise ValueError(f"algo={algo!r} is invalid: expected one of {list(ALGORITHMS)}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations={iterations!r} is invalid: expected an integer >= 1")
    if eval_seeds < 1 or (eval_steps is not None and eval_steps < 1):
        raise ValueError(f"eval_seeds={eval_seeds}, eval_steps={eval_steps} are invalid: "
                         "expected integers >= 1")
    out = check_writable(out)
    import torch

    from mesa_econ.model import EconomyModel
    from mesa_econ.rl import config_class
    from mesa_econ.rl.evaluate import arm_label, evaluate_policy, summarize_returns
    from mesa_econ.scenarios import scenario_params

    torch.set_num_threads(1)
    algo_cls = ALGORITHMS[algo]
    cfg = _build_config(config_class(algo_cls), dict(config or {}), seed)
    params = scenario_params(scenario, **dict(model_kwargs or {}))
    if n_agents is not None:
        params["n_agents"] = n_agents
    for key in ("policy", "rng", "seed", "collect_every"):  # owned by the trainer and --seed
        params.pop(key, None)
    episode_length = getattr(cfg, "episode_length", None)
    if episode_length is not None and "horizon" not in (model_kwargs or {}):
        params["horizon"] = episode_length  # the agents observe t/H: H = the episode
    # nothing reads the training market's DataCollector: the trainer logs its own metrics
    model = EconomyModel(**params, rng=seed, collect_every=0)
    trainer = algo_cls(model, cfg)
    params["population_seed"] = model.population_seed  # evaluate on the same population
    horizon = model.config.market.horizon
    steps = horizon if eval_steps is None else eval_steps
    seeds = [seed + 1000 + k for k in range(eval_seeds)]
    frames = {"initial": evaluate_policy(trainer.policy(), params, seeds, steps=steps)}
    start = time.perf_counter()
    frame = trainer.train(iterations, progress=progress)
    seconds = time.perf_counter() - start
    trainer.save(out / "checkpoint")
    write_table(frame, out / "training.csv")
    _plot(frame, out / "training.png", f"{scenario}: {algo}, seed {seed}")
    frames["trained"] = evaluate_policy(trainer.policy(), params, seeds, steps=steps)
    for baseline in BASELINES:
        frames[arm_label(baseline)] = evaluate_policy(baseline, params, seeds, steps=steps)
    import pandas as pd

    write_table(pd.concat([f.assign(arm=name) for name, f in frames.items()]),
                out / "evaluation.csv")
    comparisons = compare_arms(frames, seed)
    last = frame.iloc[-1]
    summary = {"scenario": scenario, "algo": algo, "seed": seed, "iterations": iterations,
               "n_agents": model.n_agents, "n_assets": model.n_assets,
               "env_steps": int(last["env_steps"]), "train_seconds": seconds,
               "agent_steps_per_s": int(last["env_steps"]) * model.n_agents / seconds,
               "checkpoint": str(out / "checkpoint"), "config": dataclasses.asdict(cfg),
               "protocol": {"episode_length": episode_length, "horizon": horizon,
                            "population_seed": model.population_seed},
               "eval_seeds": seeds, "eval_steps": steps,
               "evaluation": {name: summarize_returns(f) for name, f in frames.items()},
               "comparisons": comparisons,
               "verdict": [c["verdict"] for c in comparisons.values()],
               "worse_than": [name.split(" - ", 1)[1] for name, c in comparisons.items()
                              if c["high"] < 0],
               "last_iteration": {k: float(v) for k, v in last.items()}}
    write_json(out / "summary.json", summary)
    write_text(out / "summary.md", _markdown(summary))
    return summary


def _command(args: argparse.Namespace) -> int:
    from mesa_econ.model import EconomyModel
    from mesa_econ.rl import ALGORITHMS, config_class

    config = parse_pairs(args.set, "--set",
                         defaults=dataclass_defaults(config_class(ALGORITHMS[args.algo])))
    model_kwargs = parse_pairs(args.model, "--model",
                               defaults=signature_defaults(EconomyModel.__init__))
    summary = run_training(args.scenario, args.algo, args.iterations, args.seed, args.out,
                           n_agents=args.n_agents, config=config, model_kwargs=model_kwargs,
                           eval_seeds=args.eval_seeds, eval_steps=args.eval_steps,
                           progress=not args.no_progress)
    ev = summary["evaluation"]
    print(f"trained {summary['n_agents']} agents on {args.scenario} with {args.algo}: "
          f"mean return {ev['initial']['mean_return_mean']:.4g} (initial) -> "
          f"{ev['trained']['mean_return_mean']:.4g} (trained), "
          f"hold {ev['hold']['mean_return_mean']:.4g}, "
          f"random (clipped) {ev['random (clipped)']['mean_return_mean']:.4g}")
    for sentence in summary["verdict"]:
        print(f"  {sentence}")
    print(wrote(args.out, ["checkpoint", "training.csv", "training.png", "evaluation.csv",
                           "summary.json", "summary.md"]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe
    from mesa_econ.rl import ALGORITHMS
    from mesa_econ.scenarios import SCENARIOS

    parser = subparsers.add_parser(
        "train", help="train a scenario's agents (PPO, Q-learning, noisy actor-critic)",
        description=describe(__doc__))
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--algo", default="ppo", choices=list(ALGORITHMS),
                        help="training algorithm (default: %(default)s)")
    parser.add_argument("--iterations", type=int_at_least(1), default=50,
                        help="training iterations K, >= 1 (default: %(default)s)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed of the market and trainer, >= 0 (default: %(default)s)")
    parser.add_argument("--out", default="results/train",
                        help="output directory (default: %(default)s)")
    parser.add_argument("--n-agents", type=int_at_least(1), default=None,
                        help="number of agents N, >= 1 (default: the scenario's own)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="algorithm config field, e.g. --set num_steps=64 (repeatable)")
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                        help="EconomyModel keyword, e.g. --model omega=100 (repeatable)")
    parser.add_argument("--eval-seeds", type=int_at_least(1), default=10,
                        help="held-out evaluation seeds (noise seeds S+1000, S+1001, ...), "
                             ">= 1 (default: %(default)s)")
    parser.add_argument("--eval-steps", type=int_at_least(1), default=None,
                        help="steps per evaluation, >= 1 (default: the horizon H, 128)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_command)
    return parser
