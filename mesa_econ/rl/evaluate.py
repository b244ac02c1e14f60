"""Evaluate agent policies on held-out seeds and compare arms with paired bootstrap CIs.

A policy here is anything with ``act(obs, generator=None, deterministic=False) -> (u, ...)``
acting on raw model observations (a trained algorithm's ``policy()``, a loaded checkpoint),
or the name of a scripted baseline ('random', 'hold', 'mean_reversion', ...).

The evaluation protocol (docs/learning.md):

- one run per held-out noise seed, an episode of ``steps`` = H = 128 steps (the training
  horizon) on a fresh market whose population is the training one: pass the training
  model's ``population_seed`` in ``params``, so the graph and the needs are those the
  agents trained with and only the market noise differs;
- every arm has the same action limits: learned policies trade trade_scale·clip(u, −1, 1),
  scripted orders are clipped to ±trade_scale, and 'random' runs as the clipped random
  trader, the arm labelled "random (clipped)" (:func:`arm_label`);
- market noise (``model.rng``), learned-policy sampling (``model.torch_generator``) and
  the scripted policies' draws (``model.policy_rng``) are separate streams, so arms run on
  the same seed see the same market noise (common random numbers), and
  :func:`paired_difference` compares them seed by seed.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import torch

from mesa_econ import metrics
from mesa_econ.policies.actor_critic import act_only

__all__ = ["EVAL_STEPS", "arm_label", "evaluate_policy", "paired_difference",
           "price_level_variance", "price_volatility", "run_policy", "summarize_returns",
           "verdict"]

EVAL_STEPS = 128
"""Default evaluation horizon: one episode of H = 128 steps, the training horizon."""

_SCRIPTED_KIND = {"random": "random_clipped"}
"""Scripted arms that run as another policy kind (all arms share the action limits)."""


def arm_label(policy: Any) -> str:
    """The name an arm is reported under: 'random' → 'random (clipped)', other scripted
    names as they are, a policy object 'learned'."""
    if isinstance(policy, str):
        kind = _SCRIPTED_KIND.get(policy, policy)
        return "random (clipped)" if kind == "random_clipped" else policy
    return "learned"


def price_volatility(prices: npt.ArrayLike) -> float:
    """Std of the log returns of the quoted prices, mean over assets (NaN under 2 returns).

    Notes:
        σ = (1/M) Σ_j std_t(log P_j(t+1) − log P_j(t)), sample std (ddof = 1) over the
        whole series (:func:`mesa_econ.metrics.volatility`): the scale-free volatility
        the §9 claims are judged by.
    """
    p = np.asarray(prices, dtype=float).reshape(len(prices), -1)
    if p.shape[0] < 3:
        return float("nan")
    return float(np.mean(metrics.volatility(p)))


def price_level_variance(prices: npt.ArrayLike) -> float:
    """Population variance of the price levels, mean over assets. Implements §7.1
    (:func:`mesa_econ.metrics.level_variance`)."""
    p = np.asarray(prices, dtype=float).reshape(len(prices), -1)
    return float(np.mean(metrics.level_variance(p)))  # §7.1


def _make_model(params: Any, seed: int, policy: Any) -> Any:
    from mesa_econ.config import ModelConfig
    from mesa_econ.model import EconomyModel

    kind = _SCRIPTED_KIND.get(policy, policy) if isinstance(policy, str) else "hold"
    if isinstance(params, ModelConfig):
        import dataclasses

        pc = dataclasses.replace(params.policy, kind=kind)
        return EconomyModel.from_config(dataclasses.replace(params, policy=pc), rng=seed)
    if not isinstance(params, Mapping):
        raise ValueError(f"params={type(params).__name__} is invalid: expected EconomyModel "
                         "keyword arguments (a dict) or a ModelConfig")
    kwargs = {k: v for k, v in params.items() if k not in ("rng", "seed", "policy")}
    return EconomyModel(**kwargs, policy=kind, rng=seed)


@torch.no_grad()
def run_policy(policy: Any, model: Any, steps: int, deterministic: bool = False) -> dict[str,
                                                                                      Any]:
    """Run ``policy`` on ``model`` for ``steps`` steps (one batched call per step).

    Args:
        policy: a policy object (acts on raw observations with the model's
            ``torch_generator``), or None to let the model's own policy act; either way the
            orders are limited to ±trade_scale, the learned policies' action range.
        model: an EconomyModel (advanced in place).
        steps: number of steps (>= 1).
        deterministic: use the policy means instead of samples.

    Returns:
        ``{"returns": (N,) undiscounted sum of each agent's rewards, "prices": (steps+1, M)
        quoted prices including the start}``.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: expected an integer >= 1")
    returns = np.zeros(model.n_agents)
    prices = np.empty((steps + 1, model.n_assets))
    prices[0] = model.prices
    scale = model.trade_scale
    for t in range(steps):
        if policy is not None:
            obs = torch.from_numpy(model.observations())
            u = act_only(policy, obs, model.torch_generator, deterministic)
            model.submit_orders(scale * np.clip(u.numpy(), -1.0, 1.0))
        else:  # the model's own policy, held to the same limits
            model.submit_orders(np.clip(model.policy_orders(), -scale, scale))
        model.step()
        returns += model.last_rewards
        prices[t + 1] = model.prices
    return {"returns": returns, "prices": prices}


def evaluate_policy(policy: Any, params: Any, seeds: Iterable[int], steps: int = EVAL_STEPS,
                    deterministic: bool = False) -> pd.DataFrame:
    """Evaluate a policy on fresh markets, one per held-out noise seed.

    Args:
        policy: a policy object, or a scripted baseline name ('random' runs clipped to
            ±trade_scale, see :func:`arm_label`).
        params: EconomyModel keyword arguments (e.g. ``scenario_params(...)``; any
            rng/seed/policy entries are replaced) or a ModelConfig. Include the training
            model's ``population_seed`` to evaluate on its population.
        seeds: held-out noise seeds (not the training seed).
        steps: steps per evaluation run (default one episode of H = 128 steps).
        deterministic: act with the policy means.

    Returns:
        One row per seed: seed, mean_return (undiscounted return averaged over agents),
        volatility (std of the quoted prices' log returns), level_variance (§7.1
        population variance of the price levels) and final_price, each a mean over
        assets.
    """
    rows = []
    for seed in seeds:
        model = _make_model(params, int(seed), policy)
        out = run_policy(None if isinstance(policy, str) else policy, model, steps,
                         deterministic=deterministic)
        prices = out["prices"]
        rows.append({"seed": int(seed), "mean_return": float(out["returns"].mean()),
                     "volatility": price_volatility(prices),
                     "level_variance": price_level_variance(prices),  # §7.1
                     "final_price": float(prices[-1].mean())})
    if not rows:
        raise ValueError("seeds is empty: expected at least one evaluation seed")
    return pd.DataFrame(rows)


def summarize_returns(frame: pd.DataFrame) -> dict[str, float]:
    """Mean, standard deviation and a 95% normal interval half-width of each metric."""
    out: dict[str, float] = {"n_seeds": len(frame)}
    for col in ("mean_return", "volatility", "level_variance"):
        if col not in frame:
            continue
        values = frame[col].to_numpy(dtype=float)
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{col}_mean"] = float(values.mean())
        out[f"{col}_std"] = sd
        out[f"{col}_ci95"] = 1.96 * sd / np.sqrt(len(values))
    return out


def _bootstrap_ci(diff: np.ndarray, method: str, confidence: float, n_resamples: int,
                  rng: np.random.Generator) -> tuple[float, float]:
    from scipy import stats

    seeding = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters \
        else "random_state"  # scipy < 1.15
    with warnings.catch_warnings():
        warnings.simplefilter("error", stats.DegenerateDataWarning)
        res = stats.bootstrap((diff,), np.mean, confidence_level=confidence,
                              n_resamples=n_resamples, method=method, **{seeding: rng})
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"the {method} interval is not finite")
    return low, high


def paired_difference(a: npt.ArrayLike, b: npt.ArrayLike, *,
                      rng: np.random.Generator | int | None = None, confidence: float = 0.95,
                      n_resamples: int = 9999) -> dict[str, Any]:
    """Mean of the per-seed differences a − b and its bootstrap confidence interval.

    ``a`` and ``b`` are one value per evaluation seed, in the same seed order (common
    random numbers). The interval resamples seeds with replacement (a paired bootstrap:
    ``scipy.stats.bootstrap`` of the differences): percentile for n < 10 seeds, BCa from
    10 on (percentile if BCa fails, e.g. on degenerate data).

    Args:
        a, b: per-seed values of the two arms, shape (n,).
        rng: generator (or seed) of the resampling.
        confidence: confidence level of the interval, in (0, 1).
        n_resamples: bootstrap resamples.

    Returns:
        ``{"mean", "low", "high", "n", "method"}``. With identical differences the
        interval is that value; with one seed it is (NaN, NaN) and method None.
    """
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.ndim != 1 or a_arr.shape != b_arr.shape or a_arr.size == 0:
        raise ValueError(f"a {a_arr.shape} and b {b_arr.shape} are invalid: expected two "
                         "non-empty 1-D arrays of per-seed values of the same length")
    if not (np.all(np.isfinite(a_arr)) and np.all(np.isfinite(b_arr))):
        raise ValueError("a and b must be finite")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} is invalid: expected a level in (0, 1)")
    diff = a_arr - b_arr
    n, mean = diff.size, float(diff.mean())
    if n < 2:
        return {"mean": mean, "low": float("nan"), "high": float("nan"), "n": n,
                "method": None}
    if np.ptp(diff) == 0.0:  # every resample has this mean
        return {"mean": mean, "low": mean, "high": mean, "n": n, "method": "degenerate"}
    rng = np.random.default_rng(rng)
    method = "percentile" if n < 10 else "BCa"
    try:
        low, high = _bootstrap_ci(diff, method, confidence, n_resamples, rng)
    except (ValueError, Warning):  # BCa's degenerate-data warning, raised as an error
        if method == "percentile":
            raise
        method = "percentile"
        low, high = _bootstrap_ci(diff, method, confidence, n_resamples, rng)
    return {"mean": mean, "low": low, "high": high, "n": n, "method": method}


def verdict(difference: Mapping[str, Any], other: str, subject: str = "training") -> str:
    """A plain sentence on a paired difference ``subject − other`` (higher is better).

    "training improved on X (CI above 0)", "training made things worse than X (CI below
    0)" or "no significant difference from X", with the mean and the interval.
    """
    mean, low, high = difference["mean"], difference["low"], difference["high"]
    ci = f"mean {mean:+.4g}, 95% CI [{low:.4g}, {high:.4g}]"
    if np.isfinite(low) and low > 0:
        return f"{subject} improved on {other} (CI above 0): {ci}"
    if np.isfinite(high) and high < 0:
        return f"{subject} made things worse than {other} (CI below 0): {ci}"
    why = "" if np.isfinite(low) else " (one seed: no interval)"
    return f"no significant difference from {other}{why}: {ci}"
