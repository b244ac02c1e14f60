"""The ``mesa-econ sweep`` command: argument parsing and the files it writes.

Writes the frame of :func:`mesa_econ.sweep.run_sweep` as Parquet and CSV, the per-run
means (summary.csv) and a summary plot (summary.png); failed runs go to failures.csv.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mesa_econ.sweep import BACKENDS, ID_COLUMNS, run_sweep

__all__ = ["add_sweep_parser", "parse_params", "parse_value", "per_run_means", "plot_summary",
           "write_outputs"]

_INDEX_COLUMNS = ("step", "agent_id")


def per_run_means(frame: pd.DataFrame, swept: Sequence[str]) -> pd.DataFrame:
    """One row per run: ids, swept parameters, reporter means and the run's volatility.

    Reporter means are over steps 1..T (the initial state, step 0, is left out) and, with
    agent rows, over agents too. ``price_variance`` is §7.1's volatility of the whole run,
    (1/(T+1)) Σ_t (P_j(t) − P̄_j)² over steps 0..T, averaged over assets.
    """
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


def _labels(means: pd.DataFrame, swept: Sequence[str]) -> list[str]:
    """``"kappa=0.01, nu=0.05"`` per run, naming only the parameters that vary."""
    varying = [n for n in swept if means[n].astype(str).nunique() > 1]
    columns = [means[n].tolist() for n in varying]  # column-wise keeps ints as ints
    return [", ".join(f"{n}={v}" for n, v in zip(varying, values, strict=True)) or "all runs"
            for values in zip(*columns, strict=True)] if varying else ["all runs"] * len(means)


def plot_summary(frame: pd.DataFrame, swept: Sequence[str], path: Path) -> Path:
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
    fig.savefig(path, dpi=110)
    return path


def write_outputs(frame: pd.DataFrame, out: Path, swept: Sequence[str]) -> list[Path]:
    """Write sweep.parquet, sweep.csv, summary.csv, summary.png (+ failures.csv).

    Returns:
        The paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    plain = frame.copy()
    failures = plain.attrs.pop("failures", [])
    plain.attrs = {}  # attrs may hold objects Parquet's JSON metadata cannot store
    written = [out / "sweep.parquet", out / "sweep.csv", out / "summary.csv"]
    plain.to_parquet(written[0], index=False)
    plain.to_csv(written[1], index=False)
    per_run_means(plain, swept).to_csv(written[2], index=False)
    written.append(plot_summary(plain, swept, out / "summary.png"))
    if failures:
        written.append(out / "failures.csv")
        pd.DataFrame(failures).to_csv(written[-1], index=False)
    return written
def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``mesa-econ`` (sets ``func``)."""
    from mesa_econ.scenarios import SCENARIOS

    p = subparsers.add_parser(
        "sweep", help="run a parameter sweep and write Parquet/CSV, per-run means and a plot",
        description="Full factorial of --param lists × seeds. Example: mesa-econ sweep "
                    "--param kappa=0.001,0.01 --param nu=0,0.05 --seeds 3 --steps 100 "
                    "--out results/sweep")
    p.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="an EconomyModel keyword and its comma-separated values (repeatable)")
    p.add_argument("--seeds", default="3",
                   help="number of replicates (spawned seeds) or a comma list of seeds")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--scenario", default=None, choices=sorted(SCENARIOS),
                   help="start from a scenario's parameters (--param values override them)")
    p.add_argument("--backend", default="local", choices=BACKENDS)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--base-seed", type=int, default=0)
    p.add_argument("--ray-address", default=None, help="e.g. auto or ray://head:10001")
    p.add_argument("--collect-agents", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="results/sweep")
    p.set_defaults(func=_sweep_command)
    return p


def parse_value(text: str) -> Any:
    """A CLI value: int, float, true/false, none, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_params(items: Sequence[str]) -> dict[str, list]:
    """``["kappa=0.001,0.01", "nu=0"]`` -> ``{"kappa": [0.001, 0.01], "nu": [0]}``."""
    out: dict[str, list] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ValueError(f"--param {item!r} is invalid: expected NAME=V1,V2,...")
        out[name.strip()] = [parse_value(v) for v in values.split(",")]
    return out


def _sweep_command(args: argparse.Namespace) -> int:
    import json
    import sys

    from mesa_econ.scenarios import scenario_params

    swept = parse_params(args.param)
    params: dict[str, Any] = scenario_params(args.scenario) if args.scenario else {}
    params.update(swept)
    try:
        seeds = ([int(s) for s in args.seeds.split(",")] if "," in args.seeds
                 else int(args.seeds))
    except ValueError:
        raise ValueError(f"--seeds {args.seeds!r} is invalid: expected a number of "
                         "replicates or a comma-separated list of integer seeds") from None
    try:
        frame = run_sweep(params, seeds=seeds, steps=args.steps, backend=args.backend,
                          processes=args.processes, base_seed=args.base_seed,
                          ray_address=args.ray_address, progress=not args.no_progress,
                          collect_agents=args.collect_agents)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    written = write_outputs(frame, out, list(swept))
    settings = {"scenario": args.scenario, "parameters": params, "seeds": seeds,
                "steps": args.steps, "base_seed": args.base_seed, "backend": args.backend}
    (out / "sweep.json").write_text(json.dumps(settings, indent=2, default=repr))
    written.append(out / "sweep.json")
    print(f"{frame['run_id'].nunique()} runs, {len(frame.attrs['failures'])} failed; wrote "
          + ", ".join(str(p) for p in written))
    return 0
