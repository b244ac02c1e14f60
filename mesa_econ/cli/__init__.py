"""The mesa-econ command: reproduce the paper, run a demo, train agents, run sweeps.

Subcommands other than ``demo`` live in their own modules (``mesa_econ.cli.reproduce``,
``mesa_econ.rl.cli``, ``mesa_econ.sweep``) and register themselves through an
``add_parser(subparsers)`` function, so this module stays a thin router. Building the
parser imports neither torch nor Mesa (``mesa-econ --help`` answers at once): modules
import them inside the functions that run a command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "run_demo"]

# subcommand -> module providing add_parser(subparsers) (which sets func=...)
_PLUGINS = {"reproduce": "mesa_econ.cli.reproduce", "train": "mesa_econ.rl.cli",
            "sweep": "mesa_econ.sweep", "tune": "mesa_econ.cli.tune",
            "stability": "mesa_econ.cli.stability", "nash": "mesa_econ.cli.nash"}


def describe(doc: str | None) -> str:
    """A module docstring's first line as ``--help`` text: without RST's double
    backquotes (argparse prints them as they are)."""
    return (doc or "").strip().splitlines()[0].replace("``", "")


def run_demo(scenario: str, steps: int, seed: int, out: Path, policy: str = "random",
             n_agents: int | None = None) -> dict[str, Any]:
    """Run one scenario and write its DataCollector frame, a plot and a summary.

    Writes ``model_vars.csv``, ``prices.png`` and ``summary.json`` into ``out``.

    Returns:
        The summary dictionary.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    from mesa_econ import metrics
    from mesa_econ.scenarios import build_model

    overrides: dict[str, Any] = {"policy": policy, "rng": seed}
    if n_agents is not None:
        overrides["n_agents"] = n_agents
    model = build_model(scenario, **overrides)
    for _ in tqdm(range(steps), desc=f"{scenario} (seed {seed})", unit="step"):
        model.step()
    out.mkdir(parents=True, exist_ok=True)
    frame = model.datacollector.get_model_vars_dataframe()
    frame.index.name = "step"
    frame.to_csv(out / "model_vars.csv")
    price_cols = [f"price_{j}" for j in range(model.n_assets)]
    prices = frame[price_cols].to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for j, col in enumerate(price_cols):
        axes[0].plot(frame.index, frame[col], label=f"quoted P_{j}")
        axes[0].plot(frame.index, frame[f"curve_price_{j}"], "--", label=f"curve f(S_{j})")
    axes[0].set(xlabel="step", ylabel="price", title=f"{scenario}: prices")
    axes[0].legend(fontsize="small")
    for col in ("hhi", "gini", "reserve_coverage"):
        axes[1].plot(frame.index, frame[col], label=col)
    axes[1].set(xlabel="step", title="concentration and coverage")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "prices.png", dpi=110)
    plt.close(fig)
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _demo_command(args: argparse.Namespace) -> int:
    summary = run_demo(args.scenario, args.steps, args.seed, Path(args.out), args.policy,
                       args.n_agents)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/model_vars.csv, prices.png, summary.json")
    return 0


def _add_demo_parser(sub: Any) -> None:
    from mesa_econ.scenarios import SCENARIOS

    demo = sub.add_parser(
        "demo", help="run one scenario and write its results",
        description="Run one scenario without training and write its DataCollector frame "
                    "(model_vars.csv), a price plot (prices.png) and summary.json.")
    demo.add_argument("--scenario", default="defi_token_market", choices=sorted(SCENARIOS),
                      help="the §9 scenario preset to run (default: %(default)s)")
    demo.add_argument("--steps", type=_positive_int, default=200,
                      help="model steps to run, >= 1 (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0,
                      help="the model's random seed (default: %(default)s)")
    demo.add_argument("--policy", default="random",
                      help="every agent's policy: random, hold, mean_reversion, actor_critic "
                           "(untrained) or checkpoint:PATH, a trained checkpoint "
                           "(default: %(default)s)")
    demo.add_argument("--n-agents", type=_positive_int, default=None,
                      help="number of agents N, >= 1 (default: the scenario's own)")
    demo.add_argument("--out", default="results/demo",
                      help="output directory (default: %(default)s)")
    demo.set_defaults(func=_demo_command)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: expected an integer >= 1")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesa-econ", description=describe(__doc__))
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(sub)
    for name, module in _PLUGINS.items():
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional extra is not installed
            sub.add_parser(name, help=f"unavailable: {exc}")
            continue
        plugin.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mesa-econ`` console script."""
    args = _build_parser().parse_args(argv)
    if not hasattr(args, "func"):
        print(f"mesa-econ {args.command} is unavailable in this install", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    raise SystemExit(main())
