"""Reading the runs (§9): per-arm tables, each claim's verdict, what the reward pays for.

Intervals are 95% bootstrap intervals over training seeds
(:func:`mesa_econ.rl.evaluate.paired_difference`; paired where two arms are compared).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mesa_econ.experiments.protocol import Claim

def arm_table(runs: pd.DataFrame, claim: Claim, mark: str, metric: str,
              seed: int = 0) -> pd.DataFrame:
    """Per arm: the metric's mean over training seeds (each a mean over evaluation seeds)
    with a 95% bootstrap interval over training seeds."""
    from mesa_econ.rl.evaluate import paired_difference

    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]
    rows = []
    for arm in [a.name for a in claim.arms]:
        per_seed = sub[sub.arm == arm].groupby("train_seed")[metric].mean()
        if per_seed.empty:
            continue
        values = per_seed.to_numpy(dtype=float)
        ci = paired_difference(values, np.zeros_like(values), rng=seed) \
            if np.all(np.isfinite(values)) else {"low": np.nan, "high": np.nan}
        rows.append({"arm": arm, "mean": float(values.mean()), "low": ci["low"],
                     "high": ci["high"], "n_train_seeds": len(values)})
    return pd.DataFrame(rows)


def summarise_claim(runs: pd.DataFrame, claim: Claim, mark: str,
                    seed: int = 0) -> dict[str, Any]:
    """The claim's measured number with its 95% interval and whether it holds.

    - volatility: relative reduction 1 − σ_focus / σ_baseline per training seed (paired);
      holds if its mean >= target.
    - utilisation: the focus arm's level; holds if its mean >= target.
    - recovery_time: the focus arm's steps to recover; holds if its mean <= target.
    """
    from mesa_econ.rl.evaluate import paired_difference

    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]

    def per_seed(arm: str) -> np.ndarray:
        return sub[sub.arm == arm].groupby("train_seed")[claim.metric].mean().to_numpy(float)

    focus = per_seed(claim.focus)
    base = per_seed(claim.baseline) if claim.baseline else None
    if claim.metric == "volatility":
        measured = 1.0 - focus / base
        holds = lambda m: m >= claim.target  # noqa: E731
    elif claim.metric == "utilisation":
        measured = focus
        holds = lambda m: m >= claim.target  # noqa: E731
    else:
        measured = focus
        holds = lambda m: m <= claim.target  # noqa: E731
    ci = paired_difference(measured, np.zeros_like(measured), rng=seed)
    out = {"claim": claim.key, "mark": mark, "metric": claim.metric, "target": claim.target,
           "measured": float(measured.mean()), "low": ci["low"], "high": ci["high"],
           "n_train_seeds": int(measured.size), "holds": bool(holds(measured.mean()))}
    if base is not None:
        diff = paired_difference(focus, base, rng=seed)
        out["vs_baseline"] = {"baseline": claim.baseline, "mean": diff["mean"],
                              "low": diff["low"], "high": diff["high"]}
    return out


SHARE_TERMS: dict[str, str] = {
    "share_trading": "return_trading", "share_stability": "return_stability",
    "share_cooperative": "return_cooperative_net", "share_use_value": "return_use_value"}
"""The four terms whose shares :func:`reward_shares` reports: share column → return
column, in the report's column order."""


def reward_shares(runs: pd.DataFrame, claim: Claim, mark: str) -> pd.DataFrame:
    """Each reward term's share of the total absolute reward, per arm (what the reward
    pays for): mean over seeds of the return of each term, and |term| / Σ|terms|.

    Income that every agent receives alike, whatever it does, is taken out before the
    shares: the profit term is split into the agent's own income (``return_income``) and
    the rest (``return_trading``: marks, yield, fees), and the cooperative term into the
    neighbours' income (``return_cooperative_income``) and the rest
    (``return_cooperative_net``: the neighbours' trading and use value). The shares are
    those of trading, stability, the net cooperative term and use value. Runs recorded
    before ``return_cooperative_income`` existed count it as 0 (the whole term is net).
    """
    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]
    coop_income = (sub.return_cooperative_income if "return_cooperative_income" in sub
                   else 0.0)
    sub = sub.assign(return_trading=sub.return_profit - sub.return_income,
                     return_cooperative_income=coop_income,
                     return_cooperative_net=sub.return_cooperative - coop_income)
    terms = list(SHARE_TERMS.values())
    table = sub.groupby("arm", sort=False)[[*terms, "return_income",
                                             "return_cooperative_income",
                                             "return_cooperative", "return_profit",
                                             "return_total", "price_drift",
                                             "supply_drift"]].mean()
    weight = table[terms].abs().sum(axis=1).replace(0.0, np.nan)
    for share, term in SHARE_TERMS.items():
        table[share] = table[term].abs() / weight
    return table.reset_index()
