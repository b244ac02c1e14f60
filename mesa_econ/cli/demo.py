"""``mesa-econ demo``: run one scenario without training and write its results.

Writes the DataCollector frame (model_vars.csv), a price plot (prices.png) and
summary.json into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import check_writable, pyplot, save_figure, write_json, wrote
from mesa_econ.cli._params import int_at_least

__all__ = ["add_parser", "run_demo"]

_FILES = ("model_vars.csv", "prices.png", "summary.json")


def run_demo(scenario: str, steps: int, seed: int, out: str | Path, policy: str = "random",
             n_agents: int | None = None) -> dict[str, Any]:
    """Run one scenario and write its DataCollector frame, a plot and a summary.

    Writes ``model_vars.csv``, ``prices.png`` and ``summary.json`` into ``out``, which is
    checked to be writable before the model is built.

    Returns:
        The summary dictionary.

    Raises:
        ValueError: ``out`` is not a writable directory, or a bad scenario parameter.
    """
    out = check_writable(out)
    import numpy as np
    from tqdm import tqdm

    from mesa_econ import metrics
    from mesa_econ.scenarios import build_model

    overrides: dict[str, Any] = {"policy": policy, "rng": seed}
    if n_agents is not None:
        overrides["n_agents"] = n_agents
    model = build_model(scenario, **overrides)
    for _ in tqdm(range(steps), desc=f"{scenario} (seed {seed})", unit="step"):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    frame.index.name = "step"
    frame.to_csv(out / "model_vars.csv")
    prices = frame[[f"price_{j}" for j in range(model.n_assets)]].to_numpy()
    _plot(frame, model.n_assets, scenario, out / "prices.png")
    summary = {
        "scenario": scenario, "policy": policy, "seed": seed, "steps": steps,
        "n_agents": model.n_agents, "n_assets": model.n_assets,
        "volatility_per_asset": [float(v) for v in np.atleast_1d(metrics.volatility(prices))],
        "price_entropy_per_asset": [float(v) for v in
                                    np.atleast_1d(metrics.price_entropy(prices))],
        "final_prices": [float(p) for p in model.prices],
        "final_hhi": float(frame["hhi"].iloc[-1]),
        "final_gini": float(frame["gini"].iloc[-1]),
        "final_reserve_coverage": float(frame["reserve_coverage"].iloc[-1]),
    }
    write_json(out / "summary.json", summary)
    return summary


def _plot(frame: Any, n_assets: int, scenario: str, path: Path) -> None:
    """Quoted and curve prices per asset; HHI, Gini and reserve coverage."""
    fig, axes = pyplot().subplots(1, 2, figsize=(11, 4))
    for j in range(n_assets):
        axes[0].plot(frame.index, frame[f"price_{j}"], label=f"quoted P_{j}")
        axes[0].plot(frame.index, frame[f"curve_price_{j}"], "--", label=f"curve f(S_{j})")
    axes[0].set(xlabel="step", ylabel="price", title=f"{scenario}: prices")
    axes[0].legend(fontsize="small")
    for col in ("hhi", "gini", "reserve_coverage"):
        axes[1].plot(frame.index, frame[col], label=col)
    axes[1].set(xlabel="step", title="concentration and coverage")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)


def _command(args: argparse.Namespace) -> int:
    summary = run_demo(args.scenario, args.steps, args.seed, args.out, args.policy,
                       args.n_agents)
    print(json.dumps(summary, indent=2))
    print(wrote(args.out, _FILES))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``demo`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.scenarios import SCENARIOS

    demo = subparsers.add_parser(
        "demo", help="run one scenario and write its results",
        description="Run one scenario without training and write its DataCollector frame "
                    "(model_vars.csv), a price plot (prices.png) and summary.json.")
    demo.add_argument("--scenario", default="defi_token_market", choices=sorted(SCENARIOS),
                      help="the §9 scenario preset to run (default: %(default)s)")
    demo.add_argument("--steps", type=int_at_least(1), default=200,
                      help="model steps to run, >= 1 (default: %(default)s)")
    demo.add_argument("--seed", type=int_at_least(0), default=0,
                      help="the model's random seed, >= 0 (default: %(default)s)")
    demo.add_argument("--policy", default="random",
                      help="every agent's policy: random, hold, mean_reversion, actor_critic "
                           "(untrained) or checkpoint:PATH, a trained checkpoint "
                           "(default: %(default)s)")
    demo.add_argument("--n-agents", type=int_at_least(1), default=None,
                      help="number of agents N, >= 1 (default: the scenario's own)")
    demo.add_argument("--out", default="results/demo",
                      help="output directory (default: %(default)s)")
    demo.set_defaults(func=_command)
    return demo
