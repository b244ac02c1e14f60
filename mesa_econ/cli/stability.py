"""``mesa-econ stability SCENARIO``: §7.2 stability of the quoted price, measured.

Runs :func:`mesa_econ.analysis.stability.run_stability` (the scenario with its agents and
with them off, on the same seeds) and writes into ``--out``:

- ``summary.json``: the Foster-Lyapunov level of the drift of V = (log P − log P*)² for
  P* = f(S(t)) and a fixed P* = f(S*), the decay rate of V after a perturbation, the
  twin-run Lyapunov exponent, the analytic mean-square condition with the noise floor
  beside the simulation, and notes on what the numbers can and cannot say;
- ``drift.csv``: the drift tables E[ΔV | V] (quantile bins, 95% intervals);
- ``v_paths.csv``: mean V per step and run kind;
- ``v_t.png`` (V(t) and the twin separation) and ``drift.png`` (the drift curves).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mesa_econ.cli._output import (
    check_writable,
    pyplot,
    save_figure,
    write_json,
    write_table,
    wrote,
)
from mesa_econ.cli._params import int_at_least

__all__ = ["add_parser", "notes", "stability"]


def stability(scenario: str, out: Path, *, policy: str = "random", seeds: int = 5,
              steps: int = 200, perturbation: str | None = None,
              perturb_step: int | None = None, epsilon: float = 0.1, n_bins: int = 10,
              progress: bool = True) -> dict[str, Any]:
    """What ``mesa-econ stability`` does; returns the summary.json dictionary."""
    out = check_writable(out)
    from mesa_econ.analysis.stability import run_stability

    result = run_stability(scenario, policy=policy, seeds=seeds, steps=steps,
                           perturbation=perturbation, perturb_step=perturb_step,
                           epsilon=epsilon, n_bins=n_bins, progress=progress)
    summary = result.summary()
    summary["notes"] = notes(summary)
    write_json(out / "summary.json", summary, default=None)
    write_table(result.drift_frame(), out / "drift.csv")
    write_table(_paths_frame(result), out / "v_paths.csv")
    _plot_v(result, out / "v_t.png")
    _plot_drift(result, out / "drift.png")
    return summary


def notes(summary: dict[str, Any]) -> list[str]:
    """Plain-language reading of a summary: what holds, what could not be measured."""
    lines = []
    for key in ("agents_on", "agents_off"):
        arm, who = summary[key], key.replace("_", " ")
        for ref, label in (("curve", "f(S(t))"), ("fixed", "f(S*)")):
            fl = arm[f"foster_lyapunov_{ref}"]
            lines.append(
                f"{who}, P* = {label}: drift of V negative (95% CI) for V >= {fl['level']:.3g}"
                f" (|log P − log P*| > {fl['log_band']:.3g}), checked up to V = "
                f"{fl['v_max']:.3g}" if fl["holds"] else
                f"{who}, P* = {label}: the drift is not significantly negative in the top "
                f"bin (V up to {fl['v_max']:.3g}): Foster-Lyapunov not shown")
            if arm["v_trend"][ref] > 2.0:
                lines.append(
                    f"{who}, P* = {label}: mean V of the unperturbed runs grew "
                    f"{arm['v_trend'][ref]:.3g}x from the second to the last quarter of the "
                    "run: V is not stationary here, the drift table describes a transient")
        d, tw = arm["decay"], arm["twin_exponent"]
        lines.append(
            f"{who}: the perturbation was lost in the noise floor V = "
            f"{arm['noise_floor_v']:.3g}; no decay rate (raise --epsilon)"
            if not isinstance(d["factor"], float) else
            f"{who}: excess V decays by {d['factor']:.3g} per step (half-life "
            f"{d['half_life']:.3g} steps, {d['n_points']} steps fitted from step "
            f"{d['start_step']})")
        e_fold = tw["e_fold_steps"]
        lines.append(f"{who}: twin runs {tw['verdict']}, λ = {tw['mean']:.3g} per step "
                     f"(95% CI [{tw['ci_low']:.3g}, {tw['ci_high']:.3g}]"
                     + (f", e-fold {e_fold:.3g} steps" if isinstance(e_fold, float) else "")
                     + f"; slope of log δ over the last half {tw['tail']:.3g} per step)"
                     + (", the separation reached float resolution: a bound"
                        if tw["resolution_hit"] else "")
                     + (": the twins stopped converging and kept an offset"
                        if tw["verdict"] == "persist" else ""))
    for j, a in enumerate(summary["analytic"]):
        lines.append(
            f"asset {j}, agents off: (1 − θdt)² + σ1²dt = {a['ms_factor']:.4g} "
            f"({'stable' if a['stable'] else 'NOT mean-square stable'}); measured "
            f"{_g(a['measured_ms_factor'])}. Noise floor E[V] = {_g(a['v_floor'])} "
            f"(η alone {_g(a['v_floor_eta'])}), measured {_g(a['measured_v_floor'])}; "
            f"{100 * a['measured_share_in_band']:.1f}% of V inside the 95% band "
            f"V <= {_g(a['v_band'])}")
    return lines


def _g(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _paths_frame(result: Any) -> Any:
    import numpy as np
    import pandas as pd

    rows = []
    for arm in (result.on, result.off):
        for kind, v in arm.v_curve.items():
            rows.append(pd.DataFrame({
                "agents": arm.name, "run": kind, "t": np.arange(v.shape[1]),
                "v_curve_mean": v.mean(axis=(0, 2)),
                "v_fixed_mean": arm.v_fixed[kind].mean(axis=(0, 2))}))
    return pd.concat(rows, ignore_index=True)


def _plot_v(result: Any, path: Path) -> None:
    plt = pyplot()
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, arm in zip(axes[:2], (result.on, result.off), strict=True):
        for kind, v in arm.v_curve.items():
            ax.plot(v.mean(axis=(0, 2)), label=f"{kind}, P* = f(S(t))")
        if arm is result.on:
            ax.plot(arm.v_fixed["base"].mean(axis=(0, 2)), ":", label="base, P* = f(S*)")
        else:
            pred = result.predictions[0]
            ax.axhline(pred.v_floor, color="k", ls="--", label="analytic floor E[V]")
            ax.axhline(pred.v_band, color="grey", ls=":", label="95% band")
        ax.axvline(result.perturb_step, color="r", lw=0.8)
        ax.set(yscale="log", xlabel="step", ylabel="mean V over seeds",
               title=f"{arm.name}: V = (log P − log P*)²")
        ax.legend(fontsize="small")
    for arm in (result.on, result.off):
        sep = np.maximum(arm.separation, 1e-300)
        axes[2].plot(np.arange(sep.shape[1]) + result.perturb_step,
                     np.exp(np.log(sep).mean(axis=0)),
                     label=f"{arm.name}: λ = {arm.twin.mean:.3g}/step")
    axes[2].set(yscale="log", xlabel="step", ylabel="‖log P_twin − log P_base‖ (geo. mean)",
                title="twin runs, same noise")
    axes[2].legend(fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)


def _plot_drift(result: Any, path: Path) -> None:
    plt = pyplot()

    tables = [(result.on, "curve"), (result.on, "fixed"), (result.off, "curve")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (arm, ref) in zip(axes, tables, strict=True):
        table = getattr(arm, f"drift_{ref}")
        fl = getattr(arm, f"fl_{ref}")
        ax.errorbar(table["v_mean"], table["drift"],
                    yerr=[table["drift"] - table["ci_low"], table["ci_high"] - table["drift"]],
                    fmt="o-", capsize=3)
        ax.axhline(0.0, color="k", lw=0.8)
        if fl.holds:
            ax.axvline(fl.level, color="r", ls="--", label=f"negative above V = {fl.level:.3g}")
            ax.legend(fontsize="small")
        star = "f(S(t))" if ref == "curve" else "f(S*)"
        ax.set(xscale="log", xlabel="V (bin mean)", ylabel="E[ΔV | V] (95% CI)",
               title=f"{arm.name}, P* = {star}")
    fig.tight_layout()
    save_figure(fig, path)


def _command(args: argparse.Namespace) -> int:
    summary = stability(args.scenario, Path(args.out), policy=args.policy, seeds=args.seeds,
                        steps=args.steps, perturbation=args.perturbation,
                        perturb_step=args.perturb_step, epsilon=args.epsilon,
                        n_bins=args.bins, progress=not args.no_progress)
    for line in summary["notes"]:
        print(line)
    print(wrote(args.out, ["summary.json", "drift.csv", "v_paths.csv", "v_t.png",
                           "drift.png"]))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``stability`` subcommand to the ``mesa-econ`` parser."""
    from mesa_econ.cli import describe

    parser = subparsers.add_parser(
        "stability", help="§7.2 stability: Lyapunov drift, decay, twin runs, analytic check",
        description=describe(__doc__))
    parser.add_argument("scenario", help="defi_token_market | resource_network | "
                                         "shock_recovery")
    parser.add_argument("--policy", default="random",
                        help="the agents: random | informed | mean_reversion | hold | "
                             "checkpoint:PATH (default random)")
    parser.add_argument("--seeds", type=int_at_least(1), default=5,
                        help="noise seeds, >= 1 (default 5)")
    parser.add_argument("--steps", type=int_at_least(20), default=200,
                        help="steps per run, >= 20 (default 200)")
    parser.add_argument("--perturbation", choices=("deviation", "shock"), default=None,
                        help="deviation: X ± ε·f(S*) at --perturb-step; shock: the "
                             "scenario's shock in Z (default: shock if the scenario has one)")
    parser.add_argument("--perturb-step", type=int_at_least(1), default=None,
                        help="t0 (default: the shock step, else min(50, steps/4))")
    parser.add_argument("--epsilon", type=float, default=0.1,
                        help="deviation perturbation relative to f(S*), in (0, 0.5]")
    parser.add_argument("--bins", type=int_at_least(2), default=10,
                        help="quantile bins of V, >= 2 (default 10)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=_command)
    return parser


if __name__ == "__main__":  # pragma: no cover - python -m mesa_econ.cli.stability
    _p = argparse.ArgumentParser(prog="mesa-econ")
    add_parser(_p.add_subparsers(dest="command", required=True))
    _args = _p.parse_args()
    raise SystemExit(_args.func(_args))
