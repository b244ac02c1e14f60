"""Estimators of §7.2 stability from simulated trajectories: pure functions of arrays.

- :func:`lyapunov_v`: V = (log P − log P*)², the squared log distance of the quote from
  a reference price (the curve f(S(t)), or a fixed f(S*)).
- :func:`drift_table` and :func:`foster_lyapunov_level`: the drift E[ΔV | V] in quantile
  bins of V, and the level above which it is negative (the Foster-Lyapunov condition:
  E[ΔV | V] ≤ −ε outside a bounded set {V ≤ v_c}).
- :func:`fit_decay_rate`: the rate at which the mean V returns to its noise floor after a
  perturbation (log-linear fit).
- :func:`twin_exponent`: the finite-time Lyapunov exponent of two runs with the same noise
  whose initial states differ by ε.

Reference: S. P. Meyn and R. L. Tweedie, *Markov Chains and Stochastic Stability*
(2nd ed., 2009), ch. 14-15 (drift conditions).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mesa_econ.config import check_int, check_number

__all__ = [
    "DecayFit",
    "FosterLyapunov",
    "TwinExponent",
    "drift_table",
    "fit_decay_rate",
    "foster_lyapunov_level",
    "lyapunov_v",
    "twin_exponent",
]

_ROUNDING = 1e-10
"""An excess V̄ − floor below this fraction of V̄ is left out of decay fits."""
LOG_RESOLUTION = 1e-12
"""Smallest difference of log prices taken as resolved: below it, float64 rounding of the
two runs' states (not the dynamics) sets the difference."""


def lyapunov_v(prices: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The Lyapunov function of §7.2: V = (log P − log P*)², elementwise.

    Args:
        prices: quoted prices P (> 0), any shape.
        reference: P*, broadcastable to ``prices`` (> 0): f(S(t)) for the deviation from
            the curve, or a fixed f(S*).
    """
    p, ref = np.asarray(prices, dtype=float), np.asarray(reference, dtype=float)
    if np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("prices is invalid: expected finite prices > 0")
    if np.any(~np.isfinite(ref)) or np.any(ref <= 0):
        raise ValueError("reference is invalid: expected finite reference prices > 0")
    return (np.log(p) - np.log(ref)) ** 2  # §7.2 V


def drift_table(trajectories: np.ndarray | Sequence[np.ndarray], n_bins: int = 10,
                confidence: float = 0.95,
                clusters: Sequence[np.ndarray] | None = None) -> pd.DataFrame:
    """E[ΔV | V] in quantile bins of V, with a confidence interval per bin. §7.2.

    Every transition (V_t, ΔV_t = V_{t+1} − V_t) of every trajectory goes into the bin of
    V_t; bin edges are quantiles of the V_t (ties merged, so there may be fewer bins).

    Notes:
        CI per bin: mean ± t_{G−1} · se, se² = G/(G−1) · Σ_g (Σ_{i∈g} (ΔV_i − mean))² / n²
        over the G clusters in the bin (each transition its own cluster by default, which
        gives sd/√n). For a Markov state the residuals ΔV_t − E[ΔV_t | state_t] are
        martingale differences, uncorrelated over t; runs that share their noise (twins
        of one seed) are correlated at the same t, so cluster them by (seed, t). With
        agents, V is not the whole state, and the interval is indicative.

    Args:
        trajectories: V paths, a 2-D array (runs, T+1) or a sequence of 1-D arrays.
        n_bins: number of quantile bins (>= 2).
        confidence: level of the intervals, in (0, 1).
        clusters: per trajectory, an integer label per transition (length T); the
            transitions with one label are correlated, others not.

    Returns:
        One row per bin: ``v_low``, ``v_high``, ``v_mean``, ``n``, ``drift`` (mean ΔV),
        ``ci_low``, ``ci_high`` and ``sign`` (−1 when the interval is below 0, +1 above,
        0 when it contains 0).
    """
    n_bins = check_int("n_bins", n_bins, low=2)
    check_number("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    v_now, dv, groups = _transitions(trajectories, clusters)
    if v_now.size < 2 * n_bins:
        raise ValueError(f"trajectories is invalid: {v_now.size} transitions for "
                         f"n_bins={n_bins}; expected at least 2 per bin")
    edges = np.unique(np.quantile(v_now, np.linspace(0.0, 1.0, n_bins + 1)))
    if edges.size < 2:
        edges = np.array([v_now[0], v_now[0]])
    index = np.clip(np.searchsorted(edges, v_now, side="right") - 1, 0, edges.size - 2)
    rows = []
    for k in range(edges.size - 1):
        d, v, g = dv[index == k], v_now[index == k], groups[index == k]
        if d.size == 0:
            continue
        mean = float(d.mean())
        _, label = np.unique(g, return_inverse=True)
        n_groups = int(label.max()) + 1
        sums = np.bincount(label, weights=d - mean)
        half = (float(stats.t.ppf(0.5 + confidence / 2, n_groups - 1) * math.sqrt(
            n_groups / (n_groups - 1) * float(np.sum(sums**2))) / d.size)
            if n_groups > 1 else math.inf)
        low, high = mean - half, mean + half
        rows.append({"v_low": float(edges[k]), "v_high": float(edges[k + 1]),
                     "v_mean": float(v.mean()), "n": int(d.size), "drift": mean,
                     "ci_low": low, "ci_high": high,
                     "sign": -1 if high < 0 else (1 if low > 0 else 0)})
    return pd.DataFrame(rows)


def _transitions(trajectories: np.ndarray | Sequence[np.ndarray],
                 clusters: Sequence[np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(trajectories, np.ndarray):
        arr = np.asarray(trajectories, dtype=float)
        paths = [arr] if arr.ndim == 1 else list(arr)
    else:
        paths = [np.asarray(p, dtype=float) for p in trajectories]
    if not paths or any(p.ndim != 1 or p.size < 2 for p in paths):
        raise ValueError("trajectories is invalid: expected V paths of length >= 2")
    if clusters is None:
        sizes = np.cumsum([0] + [p.size - 1 for p in paths])
        labels = [np.arange(a, b) for a, b in itertools.pairwise(sizes)]
    else:
        labels = [np.asarray(c) for c in clusters]
        if len(labels) != len(paths) or any(c.shape != (p.size - 1,)
                                             for c, p in zip(labels, paths, strict=False)):
            raise ValueError("clusters is invalid: expected one label per transition of "
                             "each trajectory")
    v_now = np.concatenate([p[:-1] for p in paths])
    dv = np.concatenate([np.diff(p) for p in paths])
    groups = np.concatenate(labels)
    keep = np.isfinite(v_now) & np.isfinite(dv)
    if not np.any(keep):
        raise ValueError("trajectories is invalid: no finite transitions")
    return v_now[keep], dv[keep], groups[keep]


@dataclass(frozen=True)
class FosterLyapunov:
    """Where the drift of V is negative (the Foster-Lyapunov condition)."""

    holds: bool
    """The drift is significantly negative in the top bin and every bin from v_c up."""
    level: float | None
    """v_c: the lower edge of the lowest such bin (None when the condition fails)."""
    log_band: float | None
    """√v_c: outside |log P − log P*| > √v_c the quote is pulled back on average."""
    max_drift_inside: float | None
    """The largest mean drift below v_c (bounded: the condition's b)."""
    v_max: float
    """The largest V visited: the condition is checked on [0, v_max] only."""


def foster_lyapunov_level(table: pd.DataFrame) -> FosterLyapunov:
    """The V level above which the binned drift is negative (CI below zero). §7.2.

    Args:
        table: the output of :func:`drift_table`.
    """
    if table.empty:
        raise ValueError("table is invalid: expected a non-empty drift table")
    negative = (table["sign"].to_numpy() == -1)
    v_max = float(table["v_high"].iloc[-1])
    if not negative[-1]:
        return FosterLyapunov(False, None, None, None, v_max)
    k = len(negative) - 1
    while k > 0 and negative[k - 1]:
        k -= 1
    level = float(table["v_low"].iloc[k])
    inside = table["drift"].iloc[:k]
    return FosterLyapunov(True, level, math.sqrt(level),
                          float(inside.max()) if len(inside) else None, v_max)


@dataclass(frozen=True)
class DecayFit:
    """Log-linear fit of the mean V's approach to its floor: V̄ − floor ∝ exp(−rate·t)."""

    rate: float
    """Per step; > 0 decays, < 0 grows; nan when fewer than 2 points rise above the floor
    (the perturbation is lost in the noise: raise it)."""
    factor: float
    """exp(−rate): the per-step factor of the excess V̄ − floor (compare (1 − θ·dt)²)."""
    half_life: float
    """ln 2 / rate steps (inf when not decaying)."""
    n_points: int
    """Steps used in the fit."""
    r2: float
    """R² of the fit (nan with 2 points: the line goes through both)."""


def fit_decay_rate(v_mean: np.ndarray, floor: float | np.ndarray = 0.0,
                   se: np.ndarray | None = None, *, z: float = 2.0,
                   min_relative: float = 1e-24) -> DecayFit:
    """Fit log(V̄_t − floor_t) = c − rate·t from the perturbation on. §7.2.

    The fit uses the leading run of points where the excess V̄ − floor is resolved: more
    than ``z`` standard errors ``se`` above zero (when given), above ``min_relative`` times
    the first excess (for a noise-free run) and 1e-10·V̄ (float rounding of the
    subtraction), and finite.

    Notes:
        With common random numbers, pass the mean V of the unperturbed runs with the same
        seeds as ``floor`` (a path) and the standard error of the paired differences as
        ``se``: the excess then has the expectation E[V_perturbed] − E[V_unperturbed] and
        far less noise than against a constant floor. For the linear deviation with
        κ = λ = 0 the excess decays by exactly (1 − θ·dt)² + σ1²·dt per step.

    Args:
        v_mean: mean V over seeds, V̄_t for t = 0 (the perturbation, or the peak after
            it) onwards.
        floor: the noise floor, a constant >= 0 or a path like ``v_mean``.
        se: standard errors of the excess per step (None: no such condition).
        z: the excess must exceed z·se (> 0).
        min_relative: stop when the excess falls to min_relative × the first one.
    """
    v = np.asarray(v_mean, dtype=float)
    if v.ndim != 1 or v.size < 2:
        raise ValueError(f"v_mean of shape {v.shape} is invalid: expected a 1-D path of "
                         "length >= 2")
    f = np.asarray(floor, dtype=float)
    if f.ndim not in (0, 1) or (f.ndim == 1 and f.shape != v.shape) or np.any(f < 0) \
            or not np.all(np.isfinite(f)):
        raise ValueError("floor is invalid: expected a finite noise floor >= 0, a scalar or "
                         f"a path of shape {v.shape}")
    check_number("z", z, 0.0, low_open=True)
    check_number("min_relative", min_relative, 0.0, 1.0, low_open=True, high_open=True)
    excess = v - f
    with np.errstate(invalid="ignore"):
        stop = ~np.isfinite(excess) | (excess <= 0) | (excess <= min_relative * excess[0]) \
            | (excess <= _ROUNDING * np.abs(v))  # V̄ − floor is then mostly rounding
        if se is not None:
            stop |= excess <= z * np.nan_to_num(np.asarray(se, dtype=float), nan=np.inf)
    n = int(np.argmax(stop)) if np.any(stop) else v.size
    if n < 2:
        return DecayFit(math.nan, math.nan, math.nan, n, math.nan)
    t = np.arange(n, dtype=float)
    y = np.log(excess[:n])
    slope, intercept = np.polyfit(t, y, 1)
    resid = y - (intercept + slope * t)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / total if total > 0 and n > 2 else math.nan
    rate = -float(slope)
    half_life = math.log(2.0) / rate if rate > 0 else math.inf
    return DecayFit(rate, math.exp(-rate), half_life, n, r2)


@dataclass(frozen=True)
class TwinExponent:
    """Finite-time Lyapunov exponents of twin runs, one per seed, and their summary."""

    per_seed: np.ndarray
    """λ_k = (1/T_k) log(δ_k(T_k) / δ_k(0)) per step."""
    horizon: np.ndarray
    """T_k: the horizon used (shorter where δ fell below the resolution first)."""
    mean: float
    ci_low: float
    ci_high: float
    tail: float
    """Mean over seeds of the slope of log δ over the second half of T_k, per step: still
    contracting (< 0), or stuck (≈ 0) or regrowing (> 0) at the end."""
    tail_ci_low: float
    tail_ci_high: float
    verdict: str
    """'converge' (λ and the tail slope both below 0 with their CIs), 'diverge' (λ's CI
    above 0), 'persist' (λ below 0 but the tail no longer contracting: the twins
    settled at a lasting offset, e.g. in supply) or 'neutral' (λ's CI contains 0)."""
    e_fold_steps: float
    """1 / |mean λ|: steps for the separation to shrink (or grow) by a factor e."""
    resolution_hit: bool
    """Some run's separation fell below :data:`LOG_RESOLUTION` before the end: its λ is
    a bound (the contraction is at least that fast)."""


def twin_exponent(delta: np.ndarray, confidence: float = 0.95,
                  resolution: float = LOG_RESOLUTION) -> TwinExponent:
    """Twin-run finite-time Lyapunov exponent from separations δ_k(t). §7.2.

    Notes:
        λ_k = (1/T) log(|δ_k(T)| / |δ_k(0)|), with T the full horizon, or the last step at
        which |δ_k| was still above ``resolution`` (an exact 0 counts as the smallest
        positive float, so λ stays finite: a bound). Intervals over seeds are
        t-intervals; with one seed, the point itself.

    Args:
        delta: separations, shape (seeds, T+1), δ(0) > 0 (the perturbation).
        confidence: level of the intervals over seeds.
        resolution: separations below this are rounding, not dynamics.
    """
    d = np.abs(np.asarray(delta, dtype=float))
    if d.ndim != 2 or d.shape[1] < 2:
        raise ValueError(f"delta of shape {d.shape} is invalid: expected (seeds, T+1), T >= 1")
    if np.any(~(d[:, 0] > 0)):
        raise ValueError("delta is invalid: expected a positive initial separation δ(0)")
    check_number("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    lams, tails, horizons, hit = [], [], [], False
    tiny = np.finfo(float).tiny
    for row in d:
        below = ~np.isfinite(row[1:]) | (row[1:] < resolution)
        if np.any(below):
            hit = True
            t_end = max(int(np.argmax(below)), 1)  # the last resolved step (at least 1)
        else:
            t_end = row.size - 1
        log_d = np.log(np.maximum(row[:t_end + 1], tiny))
        lams.append(float((log_d[-1] - log_d[0]) / t_end))
        half = log_d[t_end // 2:]
        tails.append(float(np.polyfit(np.arange(half.size), half, 1)[0]) if half.size > 2
                     else lams[-1])
        horizons.append(t_end)
    lam, tail = np.array(lams), np.array(tails)
    mean, low, high = _mean_ci(lam, confidence)
    tail_mean, tail_low, tail_high = _mean_ci(tail, confidence)
    if high < 0:
        verdict = "converge" if tail_high < 0 else "persist"
    else:
        verdict = "diverge" if low > 0 else "neutral"
    e_fold = 1.0 / abs(mean) if mean != 0 else math.inf
    return TwinExponent(lam, np.array(horizons), mean, low, high, tail_mean, tail_low,
                        tail_high, verdict, e_fold, hit)


def _mean_ci(x: np.ndarray, confidence: float) -> tuple[float, float, float]:
    mean = float(x.mean())
    half = (float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1)
                  / math.sqrt(x.size)) if x.size > 1 else 0.0)
    return mean, mean - half, mean + half
