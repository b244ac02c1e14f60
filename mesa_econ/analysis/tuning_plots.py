"""Figures of a §7.1 tuning study, from its trial table and summary (plain matplotlib).

- :func:`plot_params`: each objective, and both volatility definitions, against each
  searched parameter (infeasible or failed trials grey, the best Φ marked, the scenario's
  own curve as a dashed line);
- :func:`plot_history`: the optimisation history, each trial's value and the best so far;
- :func:`plot_front`: the first two objectives with the Pareto front (several objectives).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["plot_front", "plot_history", "plot_params", "write_figures"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rows(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(table column, label) of each plotted quantity: objectives, then the volatility
    definitions that are not objectives."""
    names = [o["name"] for o in summary["objectives"]]
    rows = [(f"value_{n}", f"{n} ({o['direction'][:3]})")
            for n, o in zip(names, summary["objectives"], strict=True)]
    rows += [(m, m) for m in ("volatility", "level_variance") if m not in names]
    return rows


def _log_y(ax: Any, values: pd.Series) -> None:
    """A log y-axis where positive values span more than a factor of 20."""
    v = values.dropna()
    if len(v) and (v > 0).all() and v.max() > 20 * v.min():
        ax.set_yscale("log")


def _best_numbers(summary: Mapping[str, Any]) -> set[int]:
    return {int(b["trial"]) for b in summary.get("best", [])}


def plot_params(table: pd.DataFrame, summary: Mapping[str, Any], path: Path) -> None:
    """Objective (and volatility definitions) vs each searched parameter, one panel each."""
    plt = _pyplot()
    params = [c for c in table.columns if c.startswith("param_")]
    rows, logs = _rows(summary), {d["name"]: d["log"] for d in summary["search_space"]}
    ok = (table["state"] == "COMPLETE") & table["feasible"]
    best = table["number"].isin(_best_numbers(summary))
    fig, axes = plt.subplots(len(rows), max(len(params), 1), squeeze=False,
                             figsize=(3.6 * max(len(params), 1) + 0.6, 2.8 * len(rows)))
    for i, (col, label) in enumerate(rows):
        base = summary["baseline"]["tuning"].get(col.removeprefix("value_"), {}).get("mean")
        for j, p in enumerate(params):
            ax, x = axes[i, j], table[p]
            if x.dtype == object:  # the categorical curve kind
                cats = sorted(x.dropna().unique())
                x = x.map({c: k for k, c in enumerate(cats)})
                ax.set_xticks(range(len(cats)), cats, rotation=20, fontsize="small")
            ax.scatter(x[~ok], table.loc[~ok, col], s=12, c="0.7", label="infeasible/failed")
            ax.scatter(x[ok], table.loc[ok, col], s=14, c="tab:blue", label="trial")
            ax.scatter(x[best], table.loc[best, col], s=80, marker="*", c="tab:red",
                       label="best", zorder=3)
            if base is not None:
                ax.axhline(base, ls="--", c="k", lw=0.8, label="scenario's curve")
            if logs.get(p.removeprefix("param_")):
                ax.set_xscale("log")
            _log_y(ax, table.loc[ok, col])
            ax.set(xlabel=p.removeprefix("param_"), ylabel=label if j == 0 else None)
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle(f"{summary.get('scenario', '')}\nmeans over "
                 f"{len(summary['tuning_seeds'])} tuning seeds", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(table: pd.DataFrame, summary: Mapping[str, Any], path: Path) -> None:
    """Each objective per trial, feasible trials coloured, with the best so far."""
    plt = _pyplot()
    objectives = summary["objectives"]
    ok = (table["state"] == "COMPLETE") & table["feasible"]
    fig, axes = plt.subplots(len(objectives), 1, squeeze=False,
                             figsize=(7, 2.8 * len(objectives)))
    for ax, obj in zip(axes[:, 0], objectives, strict=True):
        col = f"value_{obj['name']}"
        ax.scatter(table.loc[~ok, "number"], table.loc[~ok, col], s=12, c="0.7",
                   label="infeasible/failed")
        ax.scatter(table.loc[ok, "number"], table.loc[ok, col], s=14, c="tab:blue",
                   label="trial")
        if len(objectives) == 1 and ok.any():
            values = table[col].where(ok)
            values = values if obj["direction"] == "minimize" else -values
            running = values.ffill().cummin()
            running = running if obj["direction"] == "minimize" else -running
            ax.step(table["number"], running, where="post", c="tab:red", label="best so far")
        _log_y(ax, table.loc[ok, col])
        ax.set(xlabel="trial", ylabel=f"{obj['name']} ({obj['direction'][:3]})")
    axes[0, 0].legend(fontsize="x-small")
    fig.suptitle("optimisation history")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_front(table: pd.DataFrame, summary: Mapping[str, Any], path: Path) -> None:
    """The first two objectives of every feasible trial, the Pareto front marked."""
    plt = _pyplot()
    a, b = (o["name"] for o in summary["objectives"][:2])
    ok = (table["state"] == "COMPLETE") & table["feasible"]
    best = table["number"].isin(_best_numbers(summary))
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.scatter(table.loc[~ok, f"value_{a}"], table.loc[~ok, f"value_{b}"], s=12, c="0.7",
               label="infeasible/failed")
    ax.scatter(table.loc[ok, f"value_{a}"], table.loc[ok, f"value_{b}"], s=14, c="tab:blue",
               label="trial")
    front = table[best].sort_values(f"value_{a}")
    ax.plot(front[f"value_{a}"], front[f"value_{b}"], "*-", c="tab:red", ms=10,
            label="Pareto front")
    ax.set(xlabel=a, ylabel=b, title="Pareto front")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_figures(table: pd.DataFrame, summary: Mapping[str, Any], folder: Path) -> list[str]:
    """Write the figures that apply into ``folder``; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    if any(c.startswith("param_") for c in table.columns) and len(table):
        plot_params(table, summary, folder / "objective_vs_params.png")
        names.append("objective_vs_params.png")
    if len(table):
        plot_history(table, summary, folder / "history.png")
        names.append("history.png")
    if len(summary["objectives"]) > 1 and np.any(table["feasible"]):
        plot_front(table, summary, folder / "pareto_front.png")
        names.append("pareto_front.png")
    return names
