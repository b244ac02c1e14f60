"""A cheap check of local stationarity: each agent's policy gradient of its own return. §7.3.

At a Nash equilibrium no agent gains by changing its own policy, so the gradient of agent
i's expected return J_i with respect to its own actor parameters θ_i vanishes (the
converse does not hold: a zero gradient is necessary, not sufficient, for a best
response). :func:`policy_gradient_check` estimates ∇_{θ_i} J_i for every agent at once on
fresh episodes of the profile and says whether it is distinguishable from noise.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from mesa_econ.policies.actor_critic import act_only

__all__ = ["ESTIMATOR", "policy_gradient_check"]

ESTIMATOR = ("REINFORCE on the undiscounted episode return: g_e = Σ_t ∇_θi log π_i(u_t|s_t)"
             " (G_t − b_t), G_t agent i's reward-to-go from step t, b_t the mean of G_t "
             "over the other episodes (leave-one-out baseline); θ_i = agent i's actor "
             "weights and log std")


def _rollout(profile: Any, ensemble: Any, seed: int) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """One H-step episode of the profile: normalised observations ``[T, N, D]``, raw
    actions u ``[T, N, A]`` and rewards ``[T, N]`` (as ``run_policy`` plays it)."""
    model = profile.model(seed)
    horizon, norm = profile.horizon, profile.obs_normalizer
    obs = np.empty((horizon, model.n_agents, model.obs_dim), dtype=np.float32)
    acts = np.empty((horizon, model.n_agents, model.n_assets), dtype=np.float32)
    rewards = np.empty((horizon, model.n_agents))
    for t in range(horizon):
        raw = model.observations()
        obs[t] = raw if norm is None else norm.normalize(raw)
        with torch.no_grad():
            acts[t] = act_only(ensemble, torch.from_numpy(obs[t]), model.torch_generator).numpy()
        model.submit_orders(model.trade_scale * np.clip(acts[t], -1.0, 1.0))
        model.step()
        rewards[t] = model.last_rewards
    return obs, acts, rewards


def policy_gradient_check(profile: Any, seeds: Sequence[int]) -> pd.DataFrame:
    """Each agent's estimated policy gradient of its own return, with its noise level.

    Args:
        profile: a :class:`~mesa_econ.analysis.equilibrium.Profile`.
        seeds: noise seeds of the fresh episodes (>= 2; not the evaluation seeds).

    Returns:
        One row per agent: ``grad_norm`` ‖ḡ_i‖ (ḡ the mean over episodes of the per-episode
        estimates g_e, over all of agent i's actor parameters), ``noise_norm``
        sqrt(tr Cov(g_e) / E), the norm ḡ would have from noise alone if the true gradient
        were 0, ``snr`` = grad_norm / noise_norm (≈ 1 or below: no ascent direction
        detectable; ≫ 1: agent i gains from a small change of its own policy, so the
        profile is not locally stationary for it), ``grad_norm_debiased``
        sqrt(max(0, ‖ḡ‖² − noise_norm²)) (its square is the unbiased U-statistic of
        ‖∇J_i‖²), and the same four for the actor's output bias alone (``shift_*``: a
        shift of agent i's mean raw action in every state, in return per unit of u; with
        one asset ``shift_snr`` is the |t| statistic of dJ_i/db_i), and ``n_episodes``.
        The all-parameter norm sums noise over thousands of weights, so with few
        episodes its snr has little power; the shift's has more.

    Notes:
        The estimator is :data:`ESTIMATOR`: unbiased for ∇_{θ_i} E[Σ_t r_i,t], the return
        δ_i is measured in. Norms are in return units per unit of parameter, so they
        compare agents of one profile, not profiles of different architectures; the
        snr is scale-free.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ValueError(f"seeds has {len(seeds)} entries: the gradient check needs >= 2 "
                         "episodes (a leave-one-out baseline and a noise estimate)")
    ens = copy.deepcopy(profile.ensemble)  # gradients are written on a copy
    episodes = [_rollout(profile, ens, s) for s in seeds]
    to_go = np.stack([np.cumsum(r[::-1], axis=0)[::-1] for _, _, r in episodes])  # [E, T, N]
    baseline = (to_go.sum(axis=0, keepdims=True) - to_go) / (len(seeds) - 1)
    advantages = to_go - baseline
    params = [*ens.actor_w, *ens.actor_b, ens.log_std]
    full, shift = [], []
    for (obs, acts, _), adv in zip(episodes, advantages, strict=True):
        for p in params:
            p.grad = None
        logp, _, _ = ens.evaluate_agents(torch.from_numpy(obs).transpose(0, 1),
                                         torch.from_numpy(acts).transpose(0, 1))  # [N, T]
        weight = torch.from_numpy(adv.T.astype(np.float32))
        (logp * weight).sum().backward()  # Σ_i: each agent's gradient lands in its own rows
        full.append(torch.cat([p.grad.reshape(ens.n_agents, -1) for p in params],
                              1).double().numpy())
        shift.append(ens.actor_b[-1].grad.reshape(ens.n_agents, -1).double().numpy())
    frame = pd.DataFrame({"agent": np.arange(ens.n_agents), "n_episodes": len(seeds)})
    for prefix, g in (("", np.stack(full)), ("shift_", np.stack(shift))):  # [E, N, P]
        norm = np.linalg.norm(g.mean(axis=0), axis=1)
        noise = np.sqrt(g.var(axis=0, ddof=1).sum(axis=1) / len(seeds))
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[f"{prefix}snr"] = np.where(norm == 0, 0.0, norm / noise)
        frame[f"{prefix}grad_norm"], frame[f"{prefix}noise_norm"] = norm, noise
        frame[f"{prefix}grad_norm_debiased"] = np.sqrt(np.maximum(norm**2 - noise**2, 0.0))
    return frame
