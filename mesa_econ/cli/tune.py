"""``mesa-econ tune SCENARIO --trials K [--storage URL] --out DIR``: §7.1 curve tuning.

Searches the curve parameters Φ of a scenario for the lowest volatility (or other
objectives, under constraints) with Optuna, every candidate on the same seeds (see
:mod:`mesa_econ.analysis.tuning`), and writes into DIR:

- ``summary.json``: settings, the best Φ (or the Pareto front) with each objective and
  both volatility definitions, 95% intervals over the tuning seeds and over held-out
  seeds, the scenario's own curve beside it and the paired improvement;
- ``trials.csv``: one row per trial;
- ``objective_vs_params.png``, ``history.png`` (and ``pareto_front.png`` with several
  objectives);
- ``study.db``: the Optuna study (default storage). Run the same command again to resume
  an interrupted study or to add trials (``--trials`` is the total wanted).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import check_writable, write_json, write_table, wrote
from mesa_econ.cli._params import int_at_least, parse_interval, parse_pairs, signature_defaults

__all__ = ["add_parser", "format_best", "run_tune"]


def run_tune(scenario: str, trials: int, out: Path, *, storage: str | None = None,
             progress: bool = True, **options: Any) -> dict[str, Any]:
    """What ``mesa-econ tune`` does; returns the summary written to summary.json.

    ``options`` go to :func:`mesa_econ.analysis.tuning.tune`; ``storage`` defaults to
    ``sqlite:///OUT/study.db``.
    """
    out = check_writable(out)
    import optuna

    from mesa_econ.analysis.tuning import tune
    from mesa_econ.analysis.tuning_plots import write_figures

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    result = tune(scenario, trials, storage=storage, progress=progress, **options)
    write_table(result.table, out / "trials.csv")
    summary = {**result.summary, "figures": write_figures(result.table, result.summary, out)}
    write_json(out / "summary.json", summary)
    return summary


def _ci(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "n/a"
    return f"{entry['mean']:.4g} [{entry['low']:.4g}, {entry['high']:.4g}]"


def format_best(summary: dict[str, Any]) -> list[str]:
    """The lines ``mesa-econ tune`` prints: the best Φ (or the front) and the baseline."""
    names = [o["name"] for o in summary["objectives"]]
    shown = names + [m for m in ("volatility", "level_variance") if m not in names]
    lines = [f"trials: {summary['trials']}"]
    if not summary["best"]:
        return [*lines, "no complete feasible trial: no best Φ"]
    label = "best Φ" if len(names) == 1 else "Pareto front"
    lines.append(f"{label} (mean [95% CI] over {len(summary['tuning_seeds'])} tuning seeds | "
                 f"{len(summary['holdout_seeds'])} held-out seeds):")
    for b in summary["best"]:
        phi = ", ".join(f"{k}={json.dumps(v) if isinstance(v, list) else f'{v:.6g}'}"
                        for k, v in b["curve_params"].items())
        lines.append(f"  trial {b['trial']}: {b['curve']} {phi}")
        if b.get("at_bound"):
            lines.append(f"    at the edge of the search range: {', '.join(b['at_bound'])} "
                         "(the objective may improve beyond it: widen --bound to look)")
        for m in shown:
            held = (b["holdout"] or {}).get(m)
            lines.append(f"    {m}: {_ci(b['tuning'].get(m))} | {_ci(held)}")
    base = summary["baseline"]
    phi = ", ".join(f"{k}={v}" for k, v in base["curve_params"].items())
    lines.append(f"scenario's curve: {base['curve']} {phi}")
    for m in shown:
        lines.append(f"    {m}: {_ci(base['tuning'].get(m))} | "
                     f"{_ci((base['holdout'] or {}).get(m))}")
    for m, diff in summary.get("improvement", {}).items():
        lines.append(f"best − scenario's curve, held-out seeds (paired), {m}: {_ci(diff)}")
    return lines


def _finite(text: str) -> float:
    """A ``--fix`` value: a finite number."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is invalid: expected a finite number")
    return value


def _model_defaults() -> dict[str, Any]:
    from mesa_econ.model import EconomyModel

    return signature_defaults(EconomyModel.__init__)


def _command(args: argparse.Namespace) -> int:
    import sys

    bounds = parse_pairs(args.bound, "--bound", convert=parse_interval,
                         expected="NAME=LOW:HIGH, e.g. k=1e-5:1e-3")
    fixed = parse_pairs(args.fix, "--fix", convert=_finite, expected="NAME=VALUE")
    overrides = parse_pairs(args.model, "--model", defaults=_model_defaults())
    try:
        summary = run_tune(
            args.scenario, args.trials, Path(args.out), storage=args.storage,
            progress=not args.no_progress, study_name=args.study_name, seeds=args.seeds,
            holdout_seeds=args.holdout_seeds, steps=args.steps, policy=args.policy,
            objectives=args.objective or ["volatility"], constraints=args.constraint,
            curve=args.curve or None, sampler=args.sampler, sampler_seed=args.sampler_seed,
            anchor=not args.no_anchor, per_asset=args.per_asset,
            bounds=bounds, fixed=fixed, overrides=overrides,
            slippage_trade=args.slippage_trade)
    except KeyboardInterrupt:
        where = args.storage or f"{args.out}/study.db"
        print(f"\ninterrupted: the finished trials are stored in {where}; run the same "
              "command again to resume", file=sys.stderr)
        return 130
    print("\n".join(format_best(summary)))
    print(wrote(args.out, ["summary.json", "trials.csv", *summary["figures"]]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tune`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe
    from mesa_econ.scenarios import SCENARIOS

    p = subparsers.add_parser("tune", help="tune bonding-curve parameters for low "
                              "volatility (§7.1, Optuna)", description=describe(__doc__))
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--trials", type=int_at_least(1), default=50,
                   help="complete trials wanted in the study (a resumed study runs the rest)")
    p.add_argument("--out", default="results/tune", help="output directory")
    p.add_argument("--storage", default=None,
                   help="Optuna storage URL (default sqlite:///OUT/study.db)")
    p.add_argument("--study-name", default=None, help="default tune-SCENARIO")
    p.add_argument("--seeds", type=int_at_least(2), default=8,
                   help="tuning noise seeds per candidate, >= 2 (default: %(default)s)")
    p.add_argument("--holdout-seeds", type=int_at_least(0), default=None,
                   help="held-out seeds for the best Φ and the baseline (default --seeds)")
    p.add_argument("--steps", type=int_at_least(2), default=None,
                   help="episode length, >= 2 (default H)")
    p.add_argument("--policy", default="random_clipped",
                   help="agents: a scripted kind (random_clipped, informed, need_aware, "
                        "mean_reversion, hold) or checkpoint:PATH")
    p.add_argument("--objective", action="append", default=[],
                   choices=["volatility", "level_variance", "reserve_coverage", "slippage",
                            "gini"], help="objective (repeatable; default volatility)")
    p.add_argument("--constraint", action="append", default=[], metavar="METRIC<=VALUE",
                   help="constraint on a metric's mean over seeds, e.g. slippage<=0.02")
    p.add_argument("--curve", action="append", default=[],
                   help="curve kind searched (repeatable; default the scenario's)")
    p.add_argument("--sampler", default="tpe", choices=["tpe", "nsga2", "cmaes", "random"])
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--no-anchor", action="store_true",
                   help="also search the price level (default: f(S0) held at the scenario's)")
    p.add_argument("--per-asset", action="store_true", help="one Φ per asset")
    p.add_argument("--bound", action="append", default=[], metavar="NAME=LOW:HIGH",
                   help="search range of a parameter (repeatable)")
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="hold a parameter fixed (repeatable)")
    p.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                   help="EconomyModel keyword override, e.g. --model n_agents=20")
    p.add_argument("--slippage-trade", type=float, default=None,
                   help="Q of the reference trade of the slippage metric (default N·trade_scale)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_command)
    return p
