"""``mesa-econ nash CHECKPOINT --out DIR``: how far a trained profile is from a Nash equilibrium.

Trains a best response with PPO for each tested agent against the frozen others (§7.3,
:mod:`mesa_econ.analysis.equilibrium`), evaluates every deviation against the profile on
the same held-out noise seeds, and writes into DIR:

- ``summary.json`` / ``summary.md``: the game (scenario, reward configuration the best
  responses maximise, population seed), the agents and how they were picked, the budget,
  ε = max δ_i and NashConv = Σ δ_i with 95% intervals, each agent's gain with its
  interval and the spread over best-response seeds, the gradient check, and the note
  that a learned best response gives a lower bound;
- ``agents/agent<i>.csv``: agent i's returns under the profile and each deviation, per
  best-response seed and evaluation seed; ``agents.csv`` (the per-agent table),
  ``gradient.csv`` (every agent's gradient check), ``responses.csv`` (iterations and
  seconds used, the snapshot played and its validation gain);
- ``best_responses/agent<i>/seed<s>/``: each best response as a one-agent checkpoint with
  its training log. Rerunning the same command on the same DIR resumes: finished best
  responses are loaded, not retrained.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import check_writable, write_json, write_table, write_text, wrote
from mesa_econ.cli._params import int_at_least

__all__ = ["add_parser", "run_nash", "write_outputs"]


def _agents(text: str) -> int | None:
    if text == "all":
        return None
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--agents {text!r} is invalid: expected 'all' or "
                                         "an integer K >= 1") from None
    if k < 1:
        raise argparse.ArgumentTypeError(f"--agents {k} is invalid: expected 'all' or K >= 1")
    return k


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _ci(d: dict[str, Any]) -> str:
    return f"{_fmt(d['mean'])} [{_fmt(d['low'])}, {_fmt(d['high'])}]"


def _markdown(result: dict[str, Any]) -> str:
    setup, summary = result["setup"], result["summary"]
    table, responses = summary["agents"], result["responses"]
    eps, gradient = summary["epsilon"], result["gradient"]
    budget = (f"{setup['budget_s'] / 60:.3g} minutes of training in all "
              f"({setup['per_response_s']:.3g} s per best response)"
              if setup["budget_s"] is not None else
              f"{setup['iterations']} PPO iterations per best response")
    if setup["val_seeds"]:
        beat = int((responses.selected_iteration > 0).sum())
        rest = len(responses) - beat
        chosen = (f"The deviation played is whichever of the agent's own policy and "
                  f"{setup['snapshots']} snapshots of its training has the highest lower "
                  f"bound (mean − 2 se) of its gain on {len(setup['val_seeds'])} validation "
                  f"seeds (not the evaluation seeds): {beat} of {len(responses)} best "
                  "responses beat the own policy there" + (
                      f"; the rest ({rest}) play it (δ = 0 exactly)." if rest else "."))
    else:
        chosen = "The deviation played is each best response's final policy."
    lines = [f"# Nash gap (§7.3) of `{setup['source']}`", "",
             f"Game: scenario `{setup['scenario']}`, {setup['n_agents']} agents, "
             f"{setup['horizon']}-step episodes, population seed "
             f"{setup['population_seed']}. Every best response maximises the profile's "
             f"own reward configuration: `{json.dumps(setup['rewards'])}`.", "",
             f"Agents tested: {len(setup['agents'])} of {setup['n_agents']} "
             f"({setup['picked']}). Best responses: PPO from each agent's own policy with "
             f"the profile's settings (learning rate {setup['ppo']['learning_rate']}), the "
             f"others frozen, {setup['br_seeds']} seed(s) each; budget {budget}; iterations "
             f"run {responses.iterations.min()}–{responses.iterations.max()} "
             f"({int(responses.resumed.sum())} responses resumed from disk). {chosen} "
             "Evaluation: "
             f"{len(setup['eval_seeds'])} held-out noise seeds, the same for the profile and "
             "every deviation (common random numbers); δ_i = agent i's undiscounted "
             "episode return when it alone deviates minus its return under the profile.",
             "", "| quantity | estimate [95% CI] |", "|---|---|",
             f"| ε = max_i δ_i (agent {eps['agent']}) | {_ci(eps)} |",
             f"| NashConv over the tested agents, Σ δ_i | {_ci(summary['nash_conv'])} |"]
    if setup["picked"].startswith("stratified"):
        lines.append(f"| NashConv of all {setup['n_agents']} agents (stratified estimate, "
                     f"Σ w_i δ_i) | {_ci(summary['nash_conv_all'])} |")
    lines += ["", "| agent | weight | J_i (profile) | δ_i [95% CI] | δ_i / abs(J_i) | "
              "δ per BR seed | min–max |", "|---:|---:|---:|---|---:|---|---|"]
    seed_cols = [c for c in table.columns if c.startswith("gain_seed")]
    for row in table.itertuples(index=False):
        r = row._asdict()
        per_seed = ", ".join(_fmt(r[c], 3) for c in seed_cols)
        lines.append(f"| {r['agent']} | {_fmt(r['weight'], 3)} | {_fmt(r['profile_return'])} "
                     f"| {_fmt(r['gain'])} [{_fmt(r['gain_low'])}, {_fmt(r['gain_high'])}] | "
                     f"{_fmt(r['relative_gain'], 3)} | {per_seed} | {_fmt(r['gain_min'], 3)}"
                     f"–{_fmt(r['gain_max'], 3)} |")
    if gradient is not None:
        tested = gradient[gradient.agent.isin(setup["agents"])]
        lines += ["", "## Local stationarity (gradient check)", "",
                  f"Estimator: {setup['gradient_estimator']}; "
                  f"{int(gradient.n_episodes.iloc[0])} fresh episodes. snr = ‖ḡ‖ / noise "
                  "level (≈ 1 or below: no ascent direction detectable; ≫ 1: the agent gains "
                  "from a small change of its own policy).", "",
                  f"All {len(gradient)} agents: snr median {_fmt(gradient.snr.median(), 3)}, "
                  f"max {_fmt(gradient.snr.max(), 3)}; {int((gradient.snr > 3).sum())} "
                  "agent(s) with snr > 3; mean-shift snr median "
                  f"{_fmt(gradient.shift_snr.median(), 3)}, max "
                  f"{_fmt(gradient.shift_snr.max(), 3)}, {int((gradient.shift_snr > 3).sum())} "
                  "above 3.", "",
                  "| agent | ‖ḡ_i‖ | noise | snr | dJ/d(mean shift): norm | its snr |",
                  "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {int(r.agent)} | {_fmt(r.grad_norm, 3)} | {_fmt(r.noise_norm, 3)} | "
                  f"{_fmt(r.snr, 3)} | {_fmt(r.shift_grad_norm, 3)} | {_fmt(r.shift_snr, 3)} |"
                  for r in tested.itertuples()]
    lines += ["", "## What these numbers are", "", setup["lower_bound"], ""]
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN and inf as null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """Write summary.json, summary.md, agents.csv, agents/agent<i>.csv, gradient.csv and
    responses.csv of a :func:`~mesa_econ.analysis.equilibrium.nash_gap` result."""
    summary = result["summary"]
    (out / "agents").mkdir(parents=True, exist_ok=True)
    for agent, frame in result["returns"].groupby("agent"):
        write_table(frame.drop(columns="agent"), out / "agents" / f"agent{agent}.csv")
    write_table(summary["agents"], out / "agents.csv")
    write_table(result["responses"], out / "responses.csv")
    if result["gradient"] is not None:
        write_table(result["gradient"], out / "gradient.csv")
    blob = {"setup": result["setup"], "epsilon": summary["epsilon"],
            "nash_conv": summary["nash_conv"], "nash_conv_all": summary["nash_conv_all"],
            "agents": summary["agents"].to_dict(orient="records"),
            "responses": result["responses"].to_dict(orient="records"),
            "gradient": None if result["gradient"] is None
            else result["gradient"].to_dict(orient="records")}
    write_json(out / "summary.json", _clean(blob), default=None, allow_nan=False)
    write_text(out / "summary.md", _markdown(result))


def run_nash(args: argparse.Namespace) -> dict[str, Any]:
    """Check the output directory, load the profile, run the analysis, write the files."""
    out = check_writable(args.out)
    for name in ("budget_minutes", "br_seeds", "eval_seeds"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ValueError(f"--{name.replace('_', '-')} {value} is invalid: expected > 0")
    from mesa_econ.analysis.equilibrium import load_profile, nash_gap

    profile = load_profile(args.checkpoint, scenario=args.scenario,
                           population_seed=args.population_seed)
    budget = None if args.iterations is not None else 60.0 * args.budget_minutes
    result = nash_gap(profile, args.agents, budget_s=budget, iterations=args.iterations,
                      br_seeds=args.br_seeds, eval_seeds=args.eval_seeds,
                      val_seeds=args.val_seeds,
                      grad_episodes=args.grad_episodes, out=out,
                      progress=not args.no_progress, sample_seed=args.sample_seed)
    write_outputs(result, out)
    return result


def _command(args: argparse.Namespace) -> int:
    result = run_nash(args)
    s = result["summary"]
    print(f"epsilon (max gain, agent {s['epsilon']['agent']}): {_ci(s['epsilon'])}")
    print(f"NashConv (tested agents): {_ci(s['nash_conv'])}")
    print("a learned best response gives a lower bound on each gain")
    print(wrote(args.out, ["summary.md", "summary.json", "agents.csv", "agents/",
                           "gradient.csv", "responses.csv", "best_responses/"]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``nash`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe
    from mesa_econ.scenarios import SCENARIOS

    parser = subparsers.add_parser(
        "nash", help="Nash gap of a trained profile: best responses, ε and NashConv (§7.3)",
        description=describe(__doc__))
    parser.add_argument("checkpoint", help="a PPO checkpoint directory (policy.json + "
                                           "policy.safetensors) of all N agents")
    parser.add_argument("--scenario", default=None, choices=sorted(SCENARIOS),
                        help="the scenario the profile was trained on (default: that of the "
                             "`mesa-econ train` run holding the checkpoint, else "
                             "defi_token_market); rewards, horizon and N come from the "
                             "checkpoint")
    parser.add_argument("--agents", type=_agents, default=8,
                        help="'all', or K: a sample of K agents stratified by graph degree "
                             "or need (default 8; all when N <= K)")
    parser.add_argument("--budget-minutes", type=float, default=5.0,
                        help="training time of all best responses together (default 5)")
    parser.add_argument("--iterations", type=int_at_least(1), default=None,
                        help="PPO iterations per best response instead of a time budget "
                             "(reproducible)")
    parser.add_argument("--br-seeds", type=int_at_least(1), default=2,
                        help="best-response training seeds per agent (default 2)")
    parser.add_argument("--eval-seeds", type=int_at_least(2), default=10,
                        help="held-out evaluation noise seeds (default 10, >= 2)")
    parser.add_argument("--val-seeds", type=int_at_least(0), default=5,
                        help="validation seeds on which each best response's snapshots and "
                             "the agent's own policy are compared (0: play the final policy; "
                             "default 5)")
    parser.add_argument("--grad-episodes", type=int_at_least(0), default=16,
                        help="episodes of the gradient check (0: skip; default 16)")
    parser.add_argument("--population-seed", type=int, default=None,
                        help="population (graph, needs) of the game (default: that of the "
                             "`mesa-econ train` run holding the checkpoint, else the "
                             "reproduction's POPULATION_SEED)")
    parser.add_argument("--sample-seed", type=int, default=0,
                        help="seed of the stratified draw of agents")
    parser.add_argument("--out", required=True, help="output directory (resumes a run "
                                                     "interrupted there)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=_command)
    return parser
