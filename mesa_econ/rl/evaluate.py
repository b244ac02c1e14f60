"""Evaluate agent policies on held-out seeds: mean return per agent and price volatility.

A policy here is anything with ``act(obs, generator=None, deterministic=False) -> (u, ...)``
acting on raw model observations (a trained algorithm's ``policy()``, a loaded checkpoint),
or the name of a scripted baseline ('random', 'hold', 'mean_reversion').
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from mesa_econ.policies.actor_critic import act_only

__all__ = ["evaluate_policy", "run_policy", "summarize_returns"]


def _make_model(params: Any, seed: int, policy: Any) -> Any:
    from mesa_econ.config import ModelConfig, PolicyConfig
    from mesa_econ.model import EconomyModel

    kind = policy if isinstance(policy, str) else "hold"
    if isinstance(params, ModelConfig):
        import dataclasses

        pc = PolicyConfig(kind=kind, hidden=params.policy.hidden, n_groups=params.policy.n_groups)
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
        policy: a policy object (acts on raw observations with the model's generator), or
            None to let the model's own policy act.
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
    for t in range(steps):
        if policy is not None:
            obs = torch.from_numpy(model.observe())
            u = act_only(policy, obs, model.torch_generator, deterministic)
            model.submit_orders(model.trade_scale * np.clip(u.numpy(), -1.0, 1.0))
        model.step()
        returns += model.last_rewards
        prices[t + 1] = model.prices
    return {"returns": returns, "prices": prices}


def evaluate_policy(policy: Any, params: Any, seeds: Iterable[int], steps: int = 100,
                    deterministic: bool = False) -> pd.DataFrame:
    """Evaluate a policy on fresh markets, one per seed.

    Args:
        policy: a policy object, or a scripted baseline name ('random', 'hold', ...).
        params: EconomyModel keyword arguments (e.g. ``scenario_params(...)``; any
            rng/seed/policy entries are replaced) or a ModelConfig.
        seeds: held-out seeds (not the training seed).
        steps: steps per evaluation run.
        deterministic: act with the policy means.

    Returns:
        One row per seed: seed, mean_return (undiscounted return averaged over agents),
        volatility (§7.1 variance of the quoted prices, mean over assets), final_price
        (mean over assets).
    """
    rows = []
    for seed in seeds:
        model = _make_model(params, int(seed), policy)
        out = run_policy(None if isinstance(policy, str) else policy, model, steps,
                         deterministic=deterministic)
        rows.append({"seed": int(seed), "mean_return": float(out["returns"].mean()),
                     "volatility": float(out["prices"].var(axis=0).mean()),  # §7.1
                     "final_price": float(out["prices"][-1].mean())})
    if not rows:
        raise ValueError("seeds is empty: expected at least one evaluation seed")
    return pd.DataFrame(rows)


def summarize_returns(frame: pd.DataFrame) -> dict[str, float]:
    """Mean, standard deviation and a 95% normal interval half-width of each metric."""
    out: dict[str, float] = {"n_seeds": len(frame)}
    for col in ("mean_return", "volatility"):
        values = frame[col].to_numpy(dtype=float)
        sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[f"{col}_mean"] = float(values.mean())
        out[f"{col}_std"] = sd
        out[f"{col}_ci95"] = 1.96 * sd / np.sqrt(len(values))
    return out
