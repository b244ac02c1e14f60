"""``mesa-econ sweep``: a parameter sweep written as Parquet/CSV, per-run means and a plot.

Runs :func:`mesa_econ.sweep.run_sweep` over the full factorial of the ``--param`` lists ×
seeds and writes into ``--out``: the frame (sweep.parquet, sweep.csv), the per-run means
(summary.csv), a summary plot (summary.png), the settings (sweep.json) and, when some runs
failed, failures.csv. ``--batch-seeds`` sets :func:`~mesa_econ.sweep.run_sweep`'s
``batch_seeds``. ``--param`` values go through the one ``KEY=VALUE`` parser
(:mod:`mesa_econ.cli._params`), so a value of the wrong kind (``kappa=abc``) is refused
before any run starts.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import check_writable, save_figure, write_json, write_table, wrote
from mesa_econ.cli._params import int_at_least, parse_lists, parse_seeds, signature_defaults

__all__ = ["add_parser", "parse_batch_seeds", "per_run_means", "plot_summary", "run_summary",
           "write_outputs"]

_INDEX_COLUMNS = ("step", "agent_id")


def per_run_means(frame: Any, swept: Sequence[str]) -> Any:
    """One row per run: ids, swept parameters, reporter means and the run's volatility.

    Reporter means are over steps 1..T (the initial state, step 0, is left out) and, with
    agent rows, over agents too. ``price_variance`` is §7.1's volatility of the whole run,
    (1/(T+1)) Σ_t (P_j(t) − P̄_j)² over steps 0..T, averaged over assets.
    """
    import pandas as pd

    from mesa_econ.sweep import ID_COLUMNS

    keys = [*ID_COLUMNS, *swept]
    body = frame[frame["step"] > 0] if (frame["step"] > 0).any() else frame
    values = [c for c in body.columns if c not in (*keys, *_INDEX_COLUMNS)
              and pd.api.types.is_numeric_dtype(body[c])]
    # group on run_id only (swept values may be unhashable tuples), then add the keys back
    means = body.groupby("run_id", sort=True)[values].mean()
    first = body.groupby("run_id", sort=True)[keys[1:]].first()
    model_rows = frame.drop_duplicates(["run_id", "step"])
    prices = [c for c in frame.columns if re.fullmatch(r"price_\d+", c)]  # not price_entropy
    variance = model_rows.groupby("run_id", sort=True)[prices].var(ddof=0).mean(axis=1)
    return pd.concat([first, means, variance.rename("price_variance")], axis=1).reset_index()


def _labels(means: Any, swept: Sequence[str]) -> list[str]:
    """``"kappa=0.01, nu=0.05"`` per run, naming only the parameters that vary."""
    varying = [n for n in swept if means[n].astype(str).nunique() > 1]
    columns = [means[n].tolist() for n in varying]  # column-wise keeps ints as ints
    return [", ".join(f"{n}={v}" for n, v in zip(varying, values, strict=True)) or "all runs"
            for values in zip(*columns, strict=True)] if varying else ["all runs"] * len(means)


def plot_summary(frame: Any, swept: Sequence[str], path: Path) -> Path:
    """Mean price path per parameter combination, and its §7.1 volatility across seeds.

    Draws on a bare ``matplotlib.figure.Figure``: no pyplot, no backend switch, headless.
    """
    from matplotlib.figure import Figure

    means = per_run_means(frame, swept)
    means["combo"] = _labels(means, swept)
    labels = list(dict.fromkeys(means["combo"]))  # first-seen order = run order
    runs_of = {label: means.loc[means["combo"] == label, "run_id"].tolist() for label in labels}
    model_rows = frame.drop_duplicates(["run_id", "step"])
    fig = Figure(figsize=(12, 4.5), layout="tight")
    axes = fig.subplots(1, 2)
    for label in labels:
        rows = model_rows[model_rows["run_id"].isin(runs_of[label])]
        path_mean = rows.groupby("step")["price_0"].mean()
        axes[0].plot(path_mean.index, path_mean.to_numpy(), label=label)
    axes[0].set(xlabel="step", ylabel="quoted price P_0 (mean over seeds)",
                title="price path per combination")
    if len(labels) <= 12:
        axes[0].legend(fontsize="small")
    stats = means.groupby("combo", sort=False)["price_variance"].agg(["mean", "std"])
    stats = stats.loc[labels]
    axes[1].barh(range(len(labels)), stats["mean"], xerr=stats["std"].fillna(0.0))
    axes[1].set_yticks(range(len(labels)), labels, fontsize="small")
    axes[1].invert_yaxis()
    axes[1].set(xlabel="volatility: variance of P over the run (mean ± std over seeds)",
                title="volatility per combination (§7.1)")
    return save_figure(fig, path)


def write_outputs(frame: Any, out: Path, swept: Sequence[str]) -> list[Path]:
    """Write sweep.parquet, sweep.csv, summary.csv, summary.png (+ failures.csv).

    Returns:
        The paths written.
    """
    import pandas as pd

    out = check_writable(out)
    plain = frame.copy()
    failures = plain.attrs.pop("failures", [])
    plain.attrs = {}  # attrs may hold objects Parquet's JSON metadata cannot store
    written = [write_table(plain, out / "sweep.parquet"), write_table(plain, out / "sweep.csv"),
               write_table(per_run_means(plain, swept), out / "summary.csv"),
               plot_summary(plain, swept, out / "summary.png")]
    if failures:
        written.append(write_table(pd.DataFrame(failures), out / "failures.csv"))
    return written


def run_summary(ok: int, failed: int) -> str:
    """``"2 runs: 1 ok, 1 failed"``: every run counted once, whether it failed or not."""
    total = ok + failed
    return f"{total} run{'s' if total != 1 else ''}: {ok} ok, {failed} failed"


def parse_batch_seeds(text: str) -> bool | int | None:
    """``--batch-seeds``: ``auto`` (None), ``on`` (True), ``off`` (False) or an integer >= 1."""
    words = {"auto": None, "on": True, "off": False}
    if text.lower() in words:
        return words[text.lower()]
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected auto, on, off or an "
                                         "integer >= 1 (most seeds per batch)")
    return value


parse_batch_seeds.__name__ = "auto, on, off or an integer >= 1"


def _command(args: argparse.Namespace) -> int:
    from mesa_econ.model import EconomyModel
    from mesa_econ.scenarios import scenario_params
    from mesa_econ.sweep import run_sweep

    swept = parse_lists(args.param, "--param",
                        defaults=signature_defaults(EconomyModel.__init__))
    params: dict[str, Any] = scenario_params(args.scenario) if args.scenario else {}
    params.update(swept)
    out = check_writable(args.out)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            frame = run_sweep(params, seeds=args.seeds, steps=args.steps,
                              backend=args.backend, processes=args.processes,
                              base_seed=args.base_seed, ray_address=args.ray_address,
                              progress=not args.no_progress,
                              collect_agents=args.collect_agents,
                              batch_seeds=args.batch_seeds)
    except (ImportError, RuntimeError) as exc:  # Ray missing; every run failed
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ImportError) else 1
    for warning in caught:  # one line each, without the source line Python would show
        print(f"warning: {warning.message}", file=sys.stderr)
    written = write_outputs(frame, out, list(swept))
    settings = {"scenario": args.scenario, "parameters": params, "seeds": args.seeds,
                "steps": args.steps, "base_seed": args.base_seed, "backend": args.backend,
                "batch_seeds": args.batch_seeds}
    written.append(write_json(out / "sweep.json", settings, default=repr))
    print(f"{run_summary(frame['run_id'].nunique(), len(frame.attrs['failures']))}; "
          + wrote(out, [p.name for p in written]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe
    from mesa_econ.scenarios import SCENARIOS
    from mesa_econ.sweep import BACKENDS

    p = subparsers.add_parser(
        "sweep", help="run a parameter sweep and write Parquet/CSV, per-run means and a plot",
        description=describe(__doc__) + " Full factorial of --param lists × seeds. "
                    "Example: mesa-econ sweep --param kappa=0.001,0.01 --param nu=0,0.05 "
                    "--seeds 3 --steps 100 --out results/sweep")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="an EconomyModel keyword and its comma-separated values (repeatable)")
    p.add_argument("--seeds", type=parse_seeds, default=3,
                   help="number of replicates (spawned seeds), >= 1, or a comma list of "
                        "seeds >= 0 (default: %(default)s)")
    p.add_argument("--steps", type=int_at_least(1), default=100,
                   help="model steps per run, >= 1 (default: %(default)s)")
    p.add_argument("--scenario", default=None, choices=sorted(SCENARIOS),
                   help="start from a scenario's parameters (--param values override them)")
    p.add_argument("--backend", default="local", choices=BACKENDS,
                   help="where runs execute (default: %(default)s)")
    p.add_argument("--processes", type=int_at_least(1), default=1,
                   help="local worker processes, >= 1 (default: %(default)s)")
    p.add_argument("--base-seed", type=int_at_least(0), default=0,
                   help="root seed of the spawned seeds, >= 0 (default: %(default)s)")
    p.add_argument("--ray-address", default=None, help="e.g. auto or ray://head:10001")
    p.add_argument("--collect-agents", action="store_true",
                   help="also collect agent reporters (one row per run, step and agent)")
    p.add_argument("--batch-seeds", type=parse_batch_seeds, default=None, metavar="WHEN",
                   help="step a combination's seeds together (one policy forward pass per "
                        "step): auto (checkpoint policies), on, off, or at most K seeds per "
                        "batch (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", default="results/sweep",
                   help="output directory (default: %(default)s)")
    p.set_defaults(func=_command)
    return p
