"""``mesa-econ reproduce [--quick] [--seeds K] [--out DIR]``: the paper's §9, measured.

Trains and evaluates every arm of the three §9 claims under both profit marks (see
:mod:`mesa_econ.experiments`) and writes into DIR:

- ``report.md``: claim | mark | paper | measured | 95% CI | holds?, the arms of each claim
  with intervals, each reward term's share, and a paragraph per claim on why;
- ``results.json``: the same numbers with provenance (commit, configuration hash, seeds,
  machine, package versions);
- ``runs.csv`` (one row per claim, mark, arm, training seed and evaluation seed),
  ``training.csv`` (training logs), ``reward_shares.csv``;
- ``figures/``: price paths with bands, volatility by arm, utilisation over time, the
  shock with recovery marked, training curves;
- ``checkpoints/<claim>/<mark>/<arm>/seed<k>``: every trained profile, with its reward
  configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import check_writable, write_json, write_table, write_text, wrote
from mesa_econ.cli._params import int_at_least

__all__ = ["add_parser", "check_writable", "reproduce"]


def _provenance(plan: Any) -> dict[str, Any]:
    import importlib.metadata as md

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10,
                                check=False).stdout.strip() or "unknown"
        dirty = bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                     "--untracked-files=no"], capture_output=True, text=True,
                                    timeout=10, check=False).stdout.strip())
    except OSError:
        commit, dirty = "unknown", False
    import mesa_econ

    # the package's own version from the code that ran (an editable install's metadata
    # keeps the version of its last `pip install -e`)
    versions: dict[str, str | None] = {"mesa_econ": mesa_econ.__version__}
    for name in ("mesa", "numpy", "scipy", "pandas", "torch", "networkx"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    import os

    from mesa_econ.experiments import config_hash

    return {"commit": commit, "dirty_worktree": dirty, "config_hash": config_hash(plan),
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpus": os.cpu_count(), "python": platform.python_version()},
            "versions": versions}


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}g}"


def _measured_text(s: dict[str, Any]) -> tuple[str, str, str]:
    """(paper, measured, CI) cells of the headline table."""
    if s["metric"] == "volatility":
        return ("30% lower volatility", f"{100 * s['measured']:.1f}% lower",
                f"[{100 * s['low']:.1f}%, {100 * s['high']:.1f}%]")
    if s["metric"] == "utilisation":
        return ("85% utilisation", f"{100 * s['measured']:.1f}%",
                f"[{100 * s['low']:.1f}%, {100 * s['high']:.1f}%]")
    return ("recovery within 20 steps", f"{s['measured']:.1f} steps",
            f"[{_fmt(s['low'])}, {_fmt(s['high'])}]")


_WHY = {
    "defi_volatility": (
        "Volatility is the std of one-step log returns of the quoted price over the "
        "128-step evaluation episode. The stability-rewarded arm pays for the price moves "
        "its own trades cause (attributed) or a share of every move (shared, the paper's "
        "term); the profit-only arm pays nothing for them. Agents trade because the token "
        "pays a yield y·Z whose news they see; trading on it moves the curve price, so the "
        "stability term trades off against the yield. `hold` trivially has the lowest "
        "volatility (exogenous noise only)."),
    "resource_utilisation": (
        "Utilisation is Σ used / Σ_j min(C_j, Σ_i d_ij), with use scaled down pro rata "
        "over capacity (U ≤ 1), averaged over the last 16 steps of the episode. The "
        "sigmoid curve prices congestion: near capacity a unit's price exceeds the use "
        "value it can earn in the episode, so a profit-seeking agent stops short of "
        "capacity. The cooperative reward adds a share of the neighbours' payoff (profit "
        "plus use value), which internalises part of the congestion externality."),
    "shock_recovery": (
        "A spike of 3 in Z at step 50 (decaying by half each step) reaches the agents' "
        "money through the yield and the quote through ζ·(Z − m). Recovery time counts "
        "the steps until the quoted price stays inside its pre-shock band (mean ± 2 std "
        "of the 20 quotes before) for 5 steps; an episode that never recovers counts the "
        "steps left (censored). The market's own mean reversion (θ = 0.1) recovers the "
        "deviation without any agent, so `hold` (no trading) is the reference: the claim "
        "is about what agents add."),
}


def _claim_paragraph(claim: Any, s: dict[str, Any], arms: Any, shares: Any) -> list[str]:
    from mesa_econ.experiments.summary import SHARE_TERMS

    lines = [f"### {claim.key} — profit mark `{s['mark']}`", "", f"Paper: {claim.paper}.", ""]
    verdict = "holds" if s["holds"] else "does not hold"
    paper, measured, ci = _measured_text(s)
    lines.append(f"Measured: **{measured}** (95% CI {ci}, {s['n_train_seeds']} training "
                 f"seeds); the claim ({paper}) **{verdict}**.")
    vb = s.get("vs_baseline")
    if vb:
        lines.append(f"{claim.focus} − {vb['baseline']} in {claim.metric}: "
                     f"{_fmt(vb['mean'])} (95% CI [{_fmt(vb['low'])}, {_fmt(vb['high'])}]).")
    lines += ["", _WHY[claim.key], "",
              f"| arm | {claim.metric} | 95% CI | price drift | return per agent | income "
              "| neighbours' income | trading | stability | cooperative | use value |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    share = shares.set_index("arm")
    for _, row in arms.iterrows():
        sh = share.loc[row["arm"]] if row["arm"] in share.index else None
        cells = ["n/a"] * 8 if sh is None else [
            _fmt(sh["price_drift"]), _fmt(sh["return_total"], 4), _fmt(sh["return_income"], 4),
            _fmt(sh["return_cooperative_income"], 4),
            *(f"{_fmt(sh[ret])} ({100 * sh[c]:.0f}%)" if sh[c] == sh[c] else "n/a"
              for c, ret in SHARE_TERMS.items())]
        lines.append(f"| {row['arm']} | {_fmt(row['mean'], 4)} | [{_fmt(row['low'], 4)}, "
                     f"{_fmt(row['high'], 4)}] | " + " | ".join(cells) + " |")
    lines += ["", "Returns per agent over the episode. `trading` is the profit term less the "
              "income every agent receives alike (marks, yield, fees); `cooperative` is the "
              "cooperative term less the neighbours' income inside it (the neighbours' "
              "trading and use value); income, own or neighbours', pays for nothing an agent "
              "does and is shown apart. Each term's share in brackets is its |return| over "
              "the sum of the four terms' |returns|. Price drift: mean log change of the "
              "quote per step.", ""]
    lines += _caveats(claim, s, share)
    return lines


def _caveats(claim: Any, s: dict[str, Any], share: Any) -> list[str]:
    """Sentences the numbers call for: the pump under the quote mark, and a recovery
    judged against a band that a trend has widened."""
    hold = "hold (no trading)"
    trained = [a.name for a in claim.arms if a.policy == "ppo" and a.name in share.index]
    if not trained or hold not in share.index:
        return []
    out = []
    if s["mark"] == "quote":
        gains = ", ".join(f"{a} {_fmt(share.loc[a, 'return_trading'], 4)} (price drift "
                          f"{_fmt(share.loc[a, 'price_drift'])})" for a in trained)
        out.append(f"Under the quote mark the trained arms' trading return per agent is "
                   f"{gains}, against {_fmt(share.loc[hold, 'return_trading'], 4)} for hold "
                   f"(drift {_fmt(share.loc[hold, 'price_drift'])}): what the literal mark "
                   "pays for buying on a rising curve, wealth that no money backs. Compare "
                   "the same arms under the liquidation mark.")
    if claim.metric == "recovery_time":
        drift = max(abs(float(share.loc[a, "price_drift"])) for a in trained)
        out.append(f"Recovery is judged against the band of the 20 pre-shock quotes. Where "
                   f"agents move the price steadily (largest |drift| of a trained arm here: "
                   f"{_fmt(drift)} per step), the band widens with the trend and a short "
                   "recovery says little about stability: read it with the price paths "
                   "(figures/shock.png) and the drift.")
    return [*out, ""] if out else []


def write_outputs(result: dict[str, Any], plan: Any, out: Path, mode: str,
                  provenance: dict[str, Any] | None = None,
                  figures: bool = True) -> dict[str, Any]:
    """Write report.md, results.json, the CSVs and the figures; return results.json's dict.

    ``provenance`` should be taken before the runs start (the commit that ran); None:
    taken now."""
    from mesa_econ import experiments as ex
    from mesa_econ.cli.reproduce_figures import write_figures

    runs = result["runs"]
    write_table(runs, out / "runs.csv")
    if not result["training"].empty:
        write_table(result["training"], out / "training.csv")
    summaries, arm_tables, share_tables = [], {}, []
    for claim in ex.CLAIMS:
        if claim.key not in set(runs.claim):
            continue
        for mark in ex.PROFIT_MARKS:
            summaries.append(ex.summarise_claim(runs, claim, mark))
            arm_tables[(claim.key, mark)] = ex.arm_table(runs, claim, mark, claim.metric)
            share_tables.append(ex.reward_shares(runs, claim, mark).assign(claim=claim.key,
                                                                             mark=mark))
    import pandas as pd

    shares = pd.concat(share_tables, ignore_index=True)
    write_table(shares, out / "reward_shares.csv")
    results = {"mode": mode, "seconds": result["seconds"], "plan": {
                   "train_seeds": plan.train_seeds, "eval_seeds": result["eval_seeds"],
                   "iterations": plan.iterations, "ppo": plan.ppo,
                   "population_seed": ex.POPULATION_SEED},
               "provenance": provenance or _provenance(plan), "claims": summaries,
               "arms": {f"{k[0]}/{k[1]}": t.to_dict(orient="records")
                        for k, t in arm_tables.items()}}
    write_json(out / "results.json", results, default=float)
    lines = ["# Reproduction of the paper's §9 results", "",
             f"Mode `{mode}`: {plan.train_seeds} training seeds, {len(result['eval_seeds'])} "
             f"held-out evaluation seeds, PPO iterations {plan.iterations}; "
             f"{result['seconds'] / 60:.1f} min. Commit `{results['provenance']['commit'][:12]}`"
             f", configuration hash `{results['provenance']['config_hash']}`.", "",
             "| claim | mark | paper's number | measured | 95% CI | holds? |",
             "|---|---|---|---|---|---|"]
    for s in summaries:
        paper, measured, ci = _measured_text(s)
        lines.append(f"| {s['claim']} | {s['mark']} | {paper} | {measured} | {ci} | "
                     f"{'yes' if s['holds'] else 'no'} |")
    lines += ["", "Intervals: 95% bootstrap over training seeds (the unit of replication), "
              "each seed's value a mean over the evaluation seeds; all arms share the "
              "evaluation seeds' market noise (common random numbers). `liquidation` is the "
              "default profit mark (holdings at their share of the reserve); `quote` is the "
              "paper's literal mark at the quoted price, which rewards a pump.", ""]
    for claim in ex.CLAIMS:
        for s in summaries:
            if s["claim"] == claim.key:
                sub = shares[(shares.claim == claim.key) & (shares["mark"] == s["mark"])]
                lines += _claim_paragraph(claim, s, arm_tables[(claim.key, s["mark"])], sub)
    write_text(out / "report.md", "\n".join(lines) + "\n")
    if figures:
        write_figures(result, out / "figures")
    return results


def rewrite_report(out: Path) -> dict[str, Any]:
    """Rewrite report.md and results.json of a finished run from its runs.csv and
    training.csv (the runs, plan and provenance as they were; figures untouched)."""
    import pandas as pd

    from mesa_econ import experiments as ex

    out = Path(out)
    try:
        old = json.loads((out / "results.json").read_text())
        runs = pd.read_csv(out / "runs.csv")
    except (OSError, ValueError) as exc:
        raise ValueError(f"--out {str(out)!r} is invalid: not a finished reproduction "
                         f"({exc})") from None
    check_writable(out)
    training = (pd.read_csv(out / "training.csv") if (out / "training.csv").exists()
                else pd.DataFrame())
    p = old["plan"]
    plan = ex.RunPlan(train_seeds=p["train_seeds"], eval_seeds=len(p["eval_seeds"]),
                      iterations=p["iterations"], ppo=p["ppo"])
    result = {"runs": runs, "training": training, "paths": {}, "seconds": old["seconds"],
              "eval_seeds": p["eval_seeds"]}
    return write_outputs(result, plan, out, old["mode"], old["provenance"], figures=False)


def reproduce(out: Path, quick: bool = False, seeds: int | None = None,
              progress: bool = True) -> dict[str, Any]:
    """What ``mesa-econ reproduce`` does; returns the results.json dictionary."""
    import torch
    from tqdm.auto import tqdm

    from mesa_econ import experiments as ex

    out = Path(out)
    if seeds is not None and (isinstance(seeds, bool) or seeds < 1):
        raise ValueError(f"--seeds {seeds!r} is invalid: expected an integer >= 1")
    check_writable(out)
    plan = ex.RunPlan.quick(seeds) if quick else ex.RunPlan.full(seeds)
    provenance = _provenance(plan)  # the code that runs, before anything can change it
    torch.set_num_threads(1)
    with tqdm(total=ex.work_units(plan), desc="reproduce", unit="run",
              disable=not progress) as bar:
        def tick(label: str) -> None:
            bar.set_postfix_str(label[-40:])
            bar.update()

        result = ex.run_reproduction(plan, out, progress=tick)
    return write_outputs(result, plan, out, "quick" if quick else "full", provenance)


def _command(args: argparse.Namespace) -> int:
    if args.report_only:
        results = rewrite_report(Path(args.out))
    else:
        results = reproduce(Path(args.out), quick=args.quick, seeds=args.seeds,
                            progress=not args.no_progress)
    for s in results["claims"]:
        paper, measured, ci = _measured_text(s)
        print(f"{s['claim']:22s} {s['mark']:12s} paper: {paper:26s} measured: {measured} "
              f"{ci} -> {'holds' if s['holds'] else 'does not hold'}")
    print(wrote(args.out, ["report.md", "results.json", "runs.csv", "training.csv",
                           "reward_shares.csv", "figures/", "checkpoints/"]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``reproduce`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe

    parser = subparsers.add_parser(
        "reproduce", help="reproduce the paper's §9 claims with seeds, CIs and baselines",
        description=describe(__doc__))
    parser.add_argument("--quick", action="store_true",
                        help="a smaller run (2 training seeds, short training; minutes)")
    parser.add_argument("--seeds", type=int_at_least(1), default=None,
                        help="training seeds (default 5; 2 with --quick; >= 5 for a full run)")
    parser.add_argument("--out", default="results/reproduce", help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite report.md and results.json of the finished run in "
                             "--out from its CSVs, without running anything")
    parser.set_defaults(func=_command)
    return parser
