"""Figures of ``mesa-econ reproduce``: price paths with bands per arm, volatility by arm,
utilisation over time, the shock with recovery marked, and training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mesa_econ.cli._output import pyplot, save_figure

__all__ = ["write_figures"]


def _band(ax: Any, series: np.ndarray, label: str) -> None:
    """Mean path with a 5-95% band over runs (rows)."""
    steps = np.arange(series.shape[1])
    ax.plot(steps, series.mean(axis=0), label=label, lw=1.2)
    lo, hi = np.percentile(series, [5, 95], axis=0)
    ax.fill_between(steps, lo, hi, alpha=0.15)


def _price_paths(result: dict[str, Any], out: Path, claims: list[str], marks: list[str]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(len(claims), len(marks), figsize=(6 * len(marks), 3.6 * len(claims)),
                             squeeze=False)
    for r, claim in enumerate(claims):
        for c, mark in enumerate(marks):
            ax = axes[r][c]
            for (k, m, arm), path in result["paths"].items():
                if k == claim and m == mark:
                    _band(ax, path["prices"], arm)
            ax.set(title=f"{claim} ({mark} mark)", xlabel="step", ylabel="quoted price")
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, out / "price_paths.png", dpi=90)


def _bars(result: dict[str, Any], out: Path, claims: list[str], metric: str,
          name: str) -> None:
    runs = result["runs"]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(claims), figsize=(6 * len(claims), 4), squeeze=False)
    for ax, claim in zip(axes[0], claims, strict=True):
        sub = runs[runs.claim == claim]
        per_seed = sub.groupby(["mark", "arm", "train_seed"], sort=False)[metric].mean()
        stats = per_seed.groupby(level=[0, 1], sort=False).agg(["mean", "std", "count"])
        labels = [f"{arm}\n({mark})" for mark, arm in stats.index]
        err = 1.96 * stats["std"].fillna(0.0) / np.sqrt(stats["count"])
        ax.barh(range(len(stats)), stats["mean"], xerr=err, color="tab:blue", alpha=0.7)
        ax.set_yticks(range(len(stats)), labels, fontsize="x-small")
        ax.set(title=f"{claim}: {metric} (mean ± 1.96 s.e. over training seeds)", xlabel=metric)
    fig.tight_layout()
    save_figure(fig, out / name, dpi=90)


def _utilisation(result: dict[str, Any], out: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
    for ax, mark in zip(axes[0], ("liquidation", "quote"), strict=True):
        for (k, m, arm), path in result["paths"].items():
            if k == "resource_utilisation" and m == mark:
                _band(ax, path["utilisation"], arm)
        ax.axhline(0.85, color="k", ls=":", lw=1, label="paper: 85%")
        ax.set(title=f"resource network: utilisation ({mark} mark)", xlabel="step",
               ylabel="U", ylim=(0, 1.05))
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, out / "utilisation.png", dpi=90)


def _shock(result: dict[str, Any], out: Path) -> None:
    from mesa_econ import experiments as ex
    from mesa_econ.scenarios import scenario_params

    step = scenario_params("shock_recovery")["shock_step"]
    runs = result["runs"]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), squeeze=False)
    for ax, mark in zip(axes[0], ("liquidation", "quote"), strict=True):
        for (k, m, arm), path in result["paths"].items():
            if k != "shock_recovery" or m != mark:
                continue
            _band(ax, path["prices"], arm)
            rec = runs[(runs.claim == k) & (runs["mark"] == m) & (runs.arm == arm)]
            t = float(rec["recovery_time"].mean())
            ax.axvline(step + 1 + t, ls="--", lw=0.8, color=ax.lines[-1].get_color())
        ax.axvspan(step + 1 - ex.RECOVERY_WINDOW, step + 1, color="grey", alpha=0.1,
                   label="pre-shock band window")
        ax.axvline(step + 1, color="k", lw=1, label="shock")
        ax.set(title=f"shock recovery ({mark} mark): dashed = mean recovery", xlabel="step",
               ylabel="quoted price")
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, out / "shock.png", dpi=90)


def _training(result: dict[str, Any], out: Path) -> None:
    log = result["training"]
    if log.empty:
        return
    groups = list(log.groupby(["claim", "mark"], sort=False))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
    for ax, ((claim, mark), sub) in zip(axes[0], groups, strict=True):
        for arm, frame in sub.groupby("arm", sort=False):
            curve = frame.groupby("iteration")["mean_reward"].mean()
            ax.plot(curve.index, curve.to_numpy(), label=arm)
        ax.set(title=f"{claim} ({mark})", xlabel="iteration", ylabel="mean reward per step")
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    save_figure(fig, out / "training.png", dpi=90)


def write_figures(result: dict[str, Any], out: Path) -> list[Path]:
    """Write every figure that the runs in ``result`` support; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    claims = sorted(set(result["runs"].claim), key=list(result["runs"].claim).index)
    marks = sorted(set(result["runs"]["mark"]), key=list(result["runs"]["mark"]).index)
    _price_paths(result, out, claims, marks)
    _bars(result, out, claims, "volatility", "volatility.png")
    if "resource_utilisation" in claims:
        _utilisation(result, out)
    if "shock_recovery" in claims:
        _shock(result, out)
    _training(result, out)
    return sorted(out.glob("*.png"))
