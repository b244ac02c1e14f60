"""Arithmetic of the Nash gap (§7.3): which agents to test, and ε / NashConv with intervals.

Pure numpy (no torch, no Mesa): :func:`stratified_sample` picks the agents whose best
responses are trained, and :func:`summarise_gains` turns the returns measured on held-out
evaluation seeds into each agent's gain δ_i, ε = max_i δ_i and NashConv = Σ_i δ_i, each
with a 95% interval over the evaluation seeds. :mod:`mesa_econ.analysis.equilibrium` does
the training and the rollouts.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["epsilon_interval", "stratified_sample", "stratify_by", "summarise_gains"]


def _count(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low \
            or (high is not None and value > high):
        upper = "" if high is None else f", <= {high}"
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {low}{upper}")
    return int(value)


def stratify_by(model: Any) -> tuple[str, np.ndarray]:
    """The key agents are stratified by, and its value per agent ``(N,)``.

    The degree in the interaction graph (§5.3) when degrees differ; else each agent's
    total need Σ_j d_ij when the market has needs that differ; else ``"none"`` (zeros:
    a simple random sample). Initial holdings and capital are the same for every agent
    in this package, so they cannot separate agents.
    """
    n = model.n_agents
    degree = np.array([model.graph.degree(i) for i in range(n)], dtype=float)
    if np.ptp(degree) > 0:
        return "degree", degree
    demand = getattr(model, "demand", None)
    if demand is not None:
        need = np.asarray(demand, dtype=float).reshape(n, -1).sum(axis=1)
        if np.ptp(need) > 0:
            return "need", need
    return "none", np.zeros(n)


def _strata(values: np.ndarray, n_strata: int) -> list[np.ndarray]:
    """Agents grouped into at most ``n_strata`` strata of ``values``: one per distinct
    value when there are few, else quantile bins (ties never split)."""
    distinct = np.unique(values)
    if distinct.size <= n_strata:
        return [np.flatnonzero(values == v) for v in distinct]
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n_strata + 1)[1:-1]))
    labels = np.searchsorted(edges, values, side="right")
    return [np.flatnonzero(labels == b) for b in np.unique(labels)]


def stratified_sample(values: npt.ArrayLike, k: int,
                      rng: np.random.Generator | int | None = None) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Pick ``k`` of N agents, stratified by ``values`` (e.g. degree or need).

    The agents are split into at most k strata of equal value or value quantile; stratum
    h of N_h agents gets k_h ≈ k·N_h/N picks (rounded down, at least one, then the largest
    shortfalls or excesses settled until Σ k_h = k), drawn without replacement within
    the stratum.

    Args:
        values: the stratification key per agent, shape (N,).
        k: agents to pick, 1 <= k <= N (k = N picks everyone).
        rng: generator or seed of the draws.

    Returns:
        ``(agents, weights)``: the picked agent indices in increasing order, and each
        one's expansion weight N_h / k_h (Σ weights = N), so Σ_i w_i δ_i estimates the
        NashConv of all N agents (a stratified estimator).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"values of shape {values.shape} is invalid: expected a non-empty "
                         "1-D array of finite numbers, one per agent")
    n = values.size
    k = _count("k", k, 1, n)
    rng = np.random.default_rng(rng)
    strata = _strata(values, k)
    sizes = np.array([s.size for s in strata])
    ideal = k * sizes / n  # proportional allocation, then at least one per stratum
    alloc = np.minimum(np.maximum(np.floor(ideal).astype(int), 1), sizes)
    while alloc.sum() < k:  # the largest shortfall among strata with room
        room = np.flatnonzero(alloc < sizes)
        alloc[room[np.argmax((ideal - alloc)[room])]] += 1
    while alloc.sum() > k:  # the largest excess among strata with more than one pick
        spare = np.flatnonzero(alloc > 1)
        alloc[spare[np.argmax((alloc - ideal)[spare])]] -= 1
    picked, weights = [], []
    for members, size, take in zip(strata, sizes, alloc, strict=True):
        chosen = rng.choice(members, size=int(take), replace=False)
        picked.extend(int(a) for a in chosen)
        weights.extend([size / take] * int(take))
    order = np.argsort(picked)
    return np.asarray(picked)[order], np.asarray(weights, dtype=float)[order]


def epsilon_interval(diffs: np.ndarray, confidence: float = 0.95, n_resamples: int = 9999,
                     rng: np.random.Generator | int | None = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ε = max_i mean_e D[e, i] over evaluation seeds e.

    ``diffs`` is ``[E, K]``: agent i's deviation return minus its profile return on seed
    e. Seeds are resampled with replacement (jointly for all agents: common random
    numbers); (NaN, NaN) with one seed.
    """
    diffs = np.asarray(diffs, dtype=float)
    if diffs.ndim != 2 or diffs.shape[0] < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(rng)
    idx = rng.integers(diffs.shape[0], size=(n_resamples, diffs.shape[0]))
    boot = diffs[idx].mean(axis=1).max(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return float(low), float(high)


def summarise_gains(profile: npt.ArrayLike, deviation: npt.ArrayLike,
                    agents: Sequence[int] | None = None,
                    weights: npt.ArrayLike | None = None,
                    rng: np.random.Generator | int | None = 0) -> dict[str, Any]:
    """Each tested agent's gain δ_i, ε = max_i δ_i and NashConv = Σ_i δ_i. Implements §7.3.

    Args:
        profile: ``[E, K]``, agent i's return under the profile on evaluation seed e.
        deviation: ``[S, E, K]``, agent i's return when it alone plays its best response
            from best-response seed s, on the same seed e (common random numbers).
        agents: the K agents' indices (default 0..K−1).
        weights: expansion weights of a stratified sample (default 1: all agents tested).
        rng: seed of the bootstrap resampling.

    Returns:
        ``{"agents": DataFrame, "epsilon": {...}, "nash_conv": {...},
        "nash_conv_all": {...}}``. The frame has one row per agent: profile_return,
        deviation_return, gain δ_i with its 95% paired bootstrap interval over evaluation
        seeds (gain_low, gain_high), relative_gain δ_i / |J_i|, the gain of each
        best-response seed (gain_seed<s>) and their spread (gain_min, gain_max, gain_std);
        weight. ε and the NashConvs are ``{"mean", "low", "high"}``; ε also names its
        agent.

    Notes:
        δ_{i,s} = (1/E) Σ_e [J_i(π_i^{BR,s}, π_{−i}; e) − J_i(π; e)];  δ_i = (1/S) Σ_s δ_{i,s}
        (the mean over best-response seeds: each seed's deviation is a valid lower bound,
        the best of them chosen on these seeds would not be); ε = max_i δ_i (interval: a
        percentile bootstrap of the max over resampled seeds); NashConv = Σ_i δ_i
        (interval: the paired bootstrap of Σ_i per seed); NashConv_all = Σ_i w_i δ_i.
    """
    from mesa_econ.rl.evaluate import paired_difference

    prof = np.asarray(profile, dtype=float)
    dev = np.asarray(deviation, dtype=float)
    if prof.ndim != 2 or dev.ndim != 3 or dev.shape[1:] != prof.shape or prof.size == 0:
        raise ValueError(f"profile {prof.shape} and deviation {dev.shape} are invalid: "
                         "expected [E, K] and [S, E, K] (seeds, agents) with S >= 1")
    if not (np.all(np.isfinite(prof)) and np.all(np.isfinite(dev))):
        raise ValueError("profile and deviation returns must be finite")
    n_seeds, _, k = dev.shape
    agents = list(range(k)) if agents is None else [int(a) for a in agents]
    w = np.ones(k) if weights is None else np.asarray(weights, dtype=float)
    if len(agents) != k or w.shape != (k,):
        raise ValueError(f"agents ({len(agents)}) and weights {w.shape} must have one entry "
                         f"per tested agent (K={k})")
    per_seed = (dev - prof[None]).mean(axis=1)  # [S, K]: δ_{i,s}
    mean_dev = dev.mean(axis=0)  # [E, K]
    diffs = mean_dev - prof
    rows = []
    for col, agent in enumerate(agents):
        ci = paired_difference(mean_dev[:, col], prof[:, col], rng=rng)
        j = float(prof[:, col].mean())
        row = {"agent": agent, "weight": float(w[col]), "profile_return": j,
               "deviation_return": float(mean_dev[:, col].mean()), "gain": ci["mean"],
               "gain_low": ci["low"], "gain_high": ci["high"],
               "relative_gain": ci["mean"] / abs(j) if j != 0 else float("nan")}
        row.update({f"gain_seed{s}": float(per_seed[s, col]) for s in range(n_seeds)})
        row.update(gain_min=float(per_seed[:, col].min()),
                   gain_max=float(per_seed[:, col].max()),
                   gain_std=float(per_seed[:, col].std(ddof=1)) if n_seeds > 1 else 0.0)
        rows.append(row)
    table = pd.DataFrame(rows)
    best = int(np.argmax(table["gain"].to_numpy()))
    low, high = epsilon_interval(diffs, rng=rng)
    zeros = np.zeros(prof.shape[0])

    def interval(values: np.ndarray) -> dict[str, float]:
        ci = paired_difference(values, zeros, rng=rng)
        return {"mean": ci["mean"], "low": ci["low"], "high": ci["high"]}

    return {"agents": table,
            "epsilon": {"mean": float(table["gain"].iloc[best]), "low": low, "high": high,
                        "agent": agents[best]},
            "nash_conv": interval(diffs.sum(axis=1)),
            "nash_conv_all": interval((diffs * w[None]).sum(axis=1)),
            "n_eval_seeds": int(prof.shape[0]), "n_br_seeds": int(n_seeds)}
