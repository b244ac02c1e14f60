"""Rollout storage ``[T, N, ...]`` and generalised advantage estimation per agent.

One rollout holds T steps of all N agents: observations ``[T, N, obs_dim]``, raw actions u
``[T, N, act_dim]``, log-probabilities, values and (normalised) rewards ``[T, N]``. The
tensors are allocated once and overwritten every iteration. A rollout of K markets
(``n_markets=K``, :mod:`mesa_econ.rl.vec_rollout`) holds K·N columns, market-major:
column k·N + i is agent i of market k.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["RolloutBuffer", "compute_gae"]

Tensor = torch.Tensor


def compute_gae(rewards: Tensor, values: Tensor, last_value: Tensor, gamma: float,
                gae_lambda: float, dones: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimates for every agent at once. Implements §6.1 (GAE).

    Args:
        rewards: r_t, ``[T, N]``, the reward received after acting at step t.
        values: V(s_t), ``[T, N]``.
        last_value: V(s_T), ``[N]``, the critic's value of the state after the rollout.
            A rollout that ends inside an episode is truncated and bootstraps from it; one
            that ends the episode sets ``dones[T − 1] = 1``, which ignores it (pass zeros).
        gamma: discount γ in [0, 1].
        gae_lambda: λ in [0, 1].
        dones: optional ``[T, N]`` flags, 1 where s_{t+1} is terminal (the episode ends
            after step t: no bootstrap through it). ``None``: no terminal states.

    Returns:
        ``(advantages, returns)``, both ``[T, N]``, with returns = advantages + values.

    Notes:
        δ_t = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t),
        A_t = δ_t + γ λ (1 − d_t) A_{t+1},  A_T = 0, V(s_T) = ``last_value``.
    """
    if rewards.ndim != 2 or values.shape != rewards.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and values {tuple(values.shape)} "
                         "must both have shape [T, N]")
    if last_value.shape != rewards.shape[1:]:
        raise ValueError(f"last_value has shape {tuple(last_value.shape)}: expected "
                         f"[N]=({rewards.shape[1]},)")
    if dones is not None and dones.shape != rewards.shape:
        raise ValueError(f"dones has shape {tuple(dones.shape)}: expected {tuple(rewards.shape)}")
    if not 0.0 <= gamma <= 1.0 or not 0.0 <= gae_lambda <= 1.0:
        raise ValueError(f"gamma={gamma!r}, gae_lambda={gae_lambda!r} are invalid: expected "
                         "reals in [0, 1]")
    tensors = (rewards, values, last_value) + (() if dones is None else (dones,))
    if all(x.device.type == "cpu" and not x.requires_grad for x in tensors):
        # the same recursion on numpy views (identical float ops, ~5x less overhead per step)
        adv = _gae_loop(*(x.numpy() for x in tensors[:3]), gamma, gae_lambda,
                        None if dones is None else dones.numpy())
        advantages = torch.from_numpy(adv)
        return advantages, advantages + values
    advantages = _gae_loop(rewards, values, last_value, gamma, gae_lambda, dones)
    return advantages, advantages + values


def _gae_loop(rewards: Any, values: Any, last_value: Any, gamma: float, gae_lambda: float,
              dones: Any | None) -> Any:
    """:func:`compute_gae`'s backward recursion, on numpy arrays or torch tensors alike."""
    lib = torch if isinstance(rewards, torch.Tensor) else np
    advantages = lib.empty_like(rewards)
    next_adv = lib.zeros_like(last_value)
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        if dones is None:
            delta = rewards[t] + gamma * next_value - values[t]  # §6.1 GAE δ_t
            next_adv = delta + (gamma * gae_lambda) * next_adv
        else:
            live = 1.0 - dones[t]
            delta = rewards[t] + gamma * live * next_value - values[t]
            next_adv = delta + (gamma * gae_lambda) * live * next_adv
        advantages[t] = next_adv
        next_value = values[t]
    return advantages


class RolloutBuffer:
    """Preallocated storage for one rollout of T steps of N agents.

    Args:
        horizon: T, steps per rollout (>= 1).
        n_agents: N.
        obs_dim: width of an observation.
        act_dim: width of a raw action u.
        n_markets: K, markets collected at once (>= 1): the tensors have K·N columns,
            column k·N + i for agent i of market k.

    Attributes:
        obs: ``[T, N, obs_dim]`` float32 (normalised observations the policy saw);
            ``[T, K·N, obs_dim]`` with K markets, as every tensor below.
        actions: ``[T, N, act_dim]`` raw actions u (before clipping to the trade range).
        logprobs, values, rewards: ``[T, N]``.
        dones: ``[T, N]``, 1 where the episode ends after step t (the trainer sets the
            last row when a rollout ends an episode), else 0.
        advantages, returns: ``[T, N]``, filled by :meth:`finish`.
    """

    def __init__(self, horizon: int, n_agents: int, obs_dim: int, act_dim: int,
                 n_markets: int = 1) -> None:
        if horizon < 1:
            raise ValueError(f"horizon={horizon!r} is invalid: expected an integer >= 1")
        if isinstance(n_markets, bool) or not isinstance(n_markets, int) or n_markets < 1:
            raise ValueError(f"n_markets={n_markets!r} is invalid: expected an integer >= 1")
        self.horizon, self.n_agents = int(horizon), int(n_agents)
        self.n_markets = n_markets
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        t, n = self.horizon, self.n_agents * n_markets
        self.obs = torch.zeros(t, n, self.obs_dim)
        self.actions = torch.zeros(t, n, self.act_dim)
        self.logprobs = torch.zeros(t, n)
        self.values = torch.zeros(t, n)
        self.rewards = torch.zeros(t, n)
        self.dones = torch.zeros(t, n)
        self.advantages = torch.zeros(t, n)
        self.returns = torch.zeros(t, n)

    def add(self, t: int, obs: Tensor, actions: Tensor, logprobs: Tensor, values: Tensor,
            rewards: Tensor) -> None:
        """Store step t (copies into the preallocated tensors)."""
        self.obs[t].copy_(obs)
        self.actions[t].copy_(actions)
        self.logprobs[t].copy_(logprobs)
        self.values[t].copy_(values)
        self.rewards[t].copy_(rewards)

    def finish(self, last_value: Tensor, gamma: float, gae_lambda: float) -> None:
        """Compute advantages and returns: GAE cut at :attr:`dones`, bootstrapping from
        V(s_T) = ``last_value`` unless the rollout ends the episode."""
        adv, ret = compute_gae(self.rewards, self.values, last_value, gamma, gae_lambda,
                               self.dones)
        self.advantages.copy_(adv)
        self.returns.copy_(ret)
