"""Evaluating an arm (§9): one episode per held-out seed, common random numbers.

:func:`evaluate_arm` steps a trained policy or a scripted kind on each evaluation seed
(batched as one :class:`~mesa_econ.batched.MarketBatch` by default) and measures each
episode: returns per reward term, volatility, level variance, drift, utilisation and the
recovery from the scenario's shock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mesa_econ import metrics

RECOVERY_WINDOW, RECOVERY_BAND, RECOVERY_HOLD = 20, 2.0, 5
"""Shock recovery: the pre-shock band is the mean ± 2 std of the 20 quotes before the
shock; recovered once the quote stays inside it for 5 steps."""


def evaluate_arm(policy: Any, params: dict[str, Any], seeds: list[int],
                 scripted: str | None = None, deterministic: bool = False,
                 batched: bool = True) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run one H-step episode per held-out seed with a trained policy or a scripted kind.

    A trained policy samples its actions (the profile as trained) unless
    ``deterministic``, which acts with the policy means.

    Args:
        batched: step the seeds' markets together as one :class:`~mesa_econ.batched.
            MarketBatch` (one policy forward pass for all seeds per step). Each market's
            step is its seed's own, so a scripted arm gives the per-seed loop's results
            bit for bit; a trained arm's actions equal the per-seed loop's to float32
            rounding. False: the per-seed loop.

    Returns:
        One row per seed (return per agent of each reward term and in total, volatility,
        level variance, price and supply drift, utilisation at the end, recovery time and
        the peak deviation after a shock), and the per-step paths stacked over seeds:
        ``prices`` (S, H+1), ``curve_prices`` (S, H+1) (means over assets) and
        ``utilisation`` (S, H+1) where the scenario has capacities.
    """
    runs = (_episodes_batched if batched else _episodes_per_seed)(
        policy, params, seeds, scripted, deterministic)
    rows, paths = [], {"prices": [], "curve_prices": [], "utilisation": []}
    for seed, (model, terms, prices, curve, supply, util) in zip(seeds, runs, strict=True):
        p, c = np.array(prices), np.array(curve)
        row = {"seed": int(seed), **{f"return_{k}": float(v.mean()) for k, v in terms.items()},
               "return_income": float(model.income_paid) / model.n_agents,
               "return_cooperative_income": neighbours_income(model),
               "volatility": float(np.mean(metrics.volatility(p))),
               "level_variance": float(np.mean(metrics.level_variance(p))),
               "price_drift": float(np.mean(metrics.drift(p))),
               "supply_drift": float(np.mean(metrics.drift(np.maximum(np.array(supply),
                                                                       1e-12)))),
               "utilisation": float(np.mean(util[-16:]))}
        row.update(_recovery(model, p, c))
        rows.append(row)
        paths["prices"].append(p.mean(axis=1)), paths["curve_prices"].append(c.mean(axis=1))
        paths["utilisation"].append(np.array(util))
    return pd.DataFrame(rows), {k: np.array(v) for k, v in paths.items()}


_TERMS = ("profit", "stability", "cooperative", "use_value", "total")


def _episodes_per_seed(policy: Any, params: dict[str, Any], seeds: list[int],
                       scripted: str | None, deterministic: bool) -> list[tuple]:
    """Each seed's episode alone: (model, summed reward terms, price, curve-price, supply
    and utilisation paths)."""
    import torch

    from mesa_econ.model import EconomyModel
    from mesa_econ.policies.actor_critic import act_only

    runs = []
    horizon = int(params.get("horizon", 128))
    for seed in seeds:
        model = EconomyModel(**{**params, "policy": scripted or "hold"}, rng=int(seed))
        terms = {k: np.zeros(model.n_agents) for k in _TERMS}
        prices, curve, supply, util = ([model.prices.copy()], [model.curve_prices.copy()],
                                       [model.supply.copy()], [_util(model)])
        for _ in range(horizon):
            if scripted is None:
                with torch.no_grad():
                    u = act_only(policy, torch.from_numpy(model.observations()),
                                 model.torch_generator, deterministic)
                model.submit_orders(model.trade_scale * np.clip(u.numpy(), -1.0, 1.0))
            model.step()
            for k in terms:
                terms[k] += getattr(model.last_breakdown, k)
            prices.append(model.prices.copy()), curve.append(model.curve_prices.copy())
            supply.append(model.supply.copy()), util.append(_util(model))
        runs.append((model, terms, prices, curve, supply, util))
    return runs


def _episodes_batched(policy: Any, params: dict[str, Any], seeds: list[int],
                      scripted: str | None, deterministic: bool) -> list[tuple]:
    """:func:`_episodes_per_seed` with the seeds' markets stepped as one MarketBatch."""
    import torch

    from mesa_econ.batched import MarketBatch, batched_actions

    batch = MarketBatch.from_seeds(seeds, **{**params, "policy": scripted or "hold"})
    models = batch.models
    runs = [(m, {k: np.zeros(m.n_agents) for k in _TERMS}, [m.prices.copy()],
             [m.curve_prices.copy()], [m.supply.copy()], [_util(m)]) for m in models]
    gens = [m.torch_generator for m in models]
    for _ in range(int(params.get("horizon", 128))):
        orders = None
        if scripted is None:  # one forward pass for every seed; u as the per-seed loop
            with torch.no_grad():  # rounds it (float32 clip and scale)
                u = batched_actions(policy, torch.from_numpy(batch.observations()), gens,
                                    deterministic)
            orders = batch.trade_scale * np.clip(u.numpy(), -1.0, 1.0)
        batch.step(orders)
        for model, terms, prices, curve, supply, util in runs:
            for k in terms:
                terms[k] += getattr(model.last_breakdown, k)
            prices.append(model.prices.copy()), curve.append(model.curve_prices.copy())
            supply.append(model.supply.copy()), util.append(_util(model))
    return runs


def neighbours_income(model: Any) -> float:
    """The neighbours' income inside the cooperative term, per agent, over the episode so
    far: ρ·(the weights of agent i's neighbours, summed)·I per step, averaged over agents.

    The cooperative term (§4.3) adds ρ Σ_k A_ik r_k^profit, and every r_k^profit holds
    the income I that each agent receives alike, whatever it does. That part pays for
    nothing an agent chooses; the report shows it apart from the rest of the term, as it
    shows each agent's own income apart from its trading.
    """
    rho = model.config.rewards.rho
    n = model.n_agents
    if rho == 0:
        return 0.0
    if model.config.rewards.cooperative_scope == "all" or model.adjacency is None:
        weight = float(n - 1)  # Σ_{k≠i} 1
    else:
        weight = float(np.asarray(model.adjacency.sum(axis=1), dtype=float).mean())
    return float(rho * weight * model.income_paid / n)


def _util(model: Any) -> float:
    if model.demand is None or model.capacity is None:
        return float("nan")
    return float(metrics.utilisation(model.holdings, model.demand, model.capacity))


def _recovery(model: Any, prices: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """Recovery time of the quote after the scenario's shock (NaN without one; the steps
    left in the episode when it never recovers, flagged by ``recovered``)."""
    step = model.config.market.shock_step
    if step is None or step < RECOVERY_WINDOW or step >= prices.shape[0] - 1:
        return {"recovery_time": float("nan"), "recovered": float("nan"),
                "peak_deviation": float("nan")}
    # the shock's Z is drawn for step `step` and moves the quote recorded at step + 1
    out = metrics.shock_recovery(prices[:, 0], curve[:, 0], step + 1, window=RECOVERY_WINDOW,
                                 width=RECOVERY_BAND, hold=RECOVERY_HOLD)
    censored = prices.shape[0] - 1 - step
    rec = out["recovery_time"]
    return {"recovery_time": float(censored if rec is None else rec),
            "recovered": float(rec is not None), "peak_deviation": float(out["peak_deviation"])}
