"""Proximal policy optimisation for every agent at once. Implements §6.1.

Each agent i has its own actor-critic (a row of a stacked
:class:`~mesa_econ.policies.PolicyEnsemble`) and its own PPO objective; the N objectives are
summed so one backward pass and one :class:`~mesa_econ.rl.optim.StackedAdam` step train
all agents, exactly as N independent PPO learners would (per-agent advantage
normalisation, per-agent gradient clipping, per-agent Adam statistics, per-agent target-KL
early stop). The update reads like CleanRL's ``ppo_continuous_action.py``:

    ratio = exp(log π_θ(u|s) − log π_old(u|s))
    pg_loss = E[max(−A·ratio, −A·clip(ratio, 1 − clip_coef, 1 + clip_coef))]
    v_loss  = ½ E[max((V − R)², (V_old + clip(V − V_old, ±clip_coef) − R)²)]   (clip_vloss)
    loss_i  = pg_loss − ent_coef · entropy + vf_coef · v_loss

Minibatches split the rollout along time and keep all agents, so each forward pass is
still one batched matrix product per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mesa_econ._validation import check_bool
from mesa_econ.config import check_int, check_number
from mesa_econ.policies.stacked import kept_tensor
from mesa_econ.rl import ppo_grad
from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.episodes import check_episode_length
from mesa_econ.rl.normalize import NormalizedPolicy
from mesa_econ.rl.optim import StackedAdam
from mesa_econ.rl.trainer import Trainer

__all__ = ["PPO", "PPOConfig", "ppo_update"]


@dataclass(frozen=True)
class PPOConfig:
    """Hyperparameters of PPO (names as in CleanRL / SB3)."""

    num_steps: int = 128
    """T, steps of the whole market per rollout (each agent contributes T samples)."""
    learning_rate: float = 3e-4
    """Adam learning rate (start value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the iterations of a ``train`` call."""
    gamma: float = 0.99
    """Discount γ."""
    gae_lambda: float = 0.95
    """GAE λ."""
    num_minibatches: int = 4
    """Minibatches per epoch; the rollout is split along time, all agents in each."""
    update_epochs: int = 4
    """Epochs K over each rollout."""
    norm_adv: bool = True
    """Normalise advantages per agent within each minibatch."""
    clip_coef: float = 0.2
    """Surrogate clipping ε (also the value-clipping range when ``clip_vloss``)."""
    clip_vloss: bool = True
    """Use the clipped value loss."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float | None = 0.5
    """Per-agent gradient-norm clip (None: no clipping)."""
    target_kl: float | None = None
    """Per-agent early stop: an agent whose approx KL exceeds this after an epoch stops
    updating for the rest of the iteration (None: never stop)."""
    adam_eps: float = 1e-5
    """Adam ε (CleanRL's 1e-5 rather than torch's 1e-8)."""
    norm_obs: bool = True
    """Per-agent running observation normalisation (saved in checkpoints)."""
    norm_reward: bool = True
    """Per-agent reward scaling by the std of the discounted return."""
    clip_obs: float = 10.0
    """Bound of normalised observations."""
    clip_reward: float = 10.0
    """Bound of scaled rewards."""
    episode_length: int | None = 128
    """H, steps per episode (a multiple of ``num_steps``, equal to the market's
    ``horizon``): every episode runs on a fresh market and its end is terminal (no
    bootstrap). None: one open-ended market for the whole training (every rollout end a
    truncation)."""
    seed: int | None = None
    """Seed of the trainer's streams: minibatch shuffling, episode noise seeds and policy
    sampling (None: drawn from model.rng)."""
    n_markets: int = 1
    """K, markets collected per rollout (:mod:`mesa_econ.rl.vec_rollout`): K markets of
    the model's configuration and population on their own noise seeds, the N per-agent
    policies shared across them, so each rollout gives every policy K·T samples (and each
    minibatch K times the rows). 1: the model's own market, as before."""

    def __post_init__(self) -> None:
        for name in ("num_steps", "num_minibatches", "update_epochs", "n_markets"):
            check_int(name, getattr(self, name), 1)
        if self.num_steps // self.num_minibatches < 2 or self.num_steps % self.num_minibatches:
            raise ValueError(f"num_minibatches={self.num_minibatches!r} is invalid: expected a "
                             f"divisor of num_steps={self.num_steps} that leaves >= 2 steps "
                             "per minibatch")
        for name in ("gamma", "gae_lambda"):
            check_number(name, getattr(self, name), 0.0, 1.0)
        for name in ("learning_rate", "clip_coef", "adam_eps", "clip_obs", "clip_reward"):
            check_number(name, getattr(self, name), 0.0, low_open=True)
        for name in ("ent_coef", "vf_coef"):
            check_number(name, getattr(self, name), 0.0)
        for name in ("max_grad_norm", "target_kl"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), 0.0, low_open=True)
        for name in ("anneal_lr", "norm_adv", "clip_vloss", "norm_obs", "norm_reward"):
            check_bool(name, getattr(self, name))
        check_episode_length(self.episode_length, self.num_steps)
        if self.seed is not None:
            check_int("seed", self.seed)


def _group_mean(per_agent: torch.Tensor, group_of: torch.Tensor, n_groups: int,
                counts: torch.Tensor) -> torch.Tensor:
    """Mean over each group's agents of a per-agent quantity ``[N]`` → ``[G]``."""
    if n_groups == per_agent.shape[0]:
        return per_agent
    return torch.zeros(n_groups).index_add_(0, group_of, per_agent) / counts


def _ppo_losses(policy: Any, mb: dict[str, torch.Tensor],
                config: PPOConfig) -> dict[str, torch.Tensor]:
    """Each agent's PPO loss on one minibatch ``mb`` (agent-major ``[n, B, ...]``) and its
    statistics, all ``[n]``: loss, pg_loss, v_loss, entropy, approx_kl, old_approx_kl,
    clipfrac."""
    newlogprob, entropy, newvalue = policy.evaluate_agents(mb["obs"], mb["actions"])
    logratio = newlogprob - mb["logprobs"]  # [n, B]
    ratio = logratio.exp()
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        out["old_approx_kl"] = (-logratio).mean(1)
        out["approx_kl"] = ((ratio - 1) - logratio).mean(1)
        out["clipfrac"] = ((ratio - 1.0).abs() > config.clip_coef).float().mean(1)
    mb_adv = mb["advantages"]
    if config.norm_adv:  # per agent: statistics over this minibatch's time steps
        mb_adv = (mb_adv - mb_adv.mean(1, keepdim=True)) / (mb_adv.std(1, keepdim=True) + 1e-8)
    pg_loss1 = -mb_adv * ratio
    pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean(1)
    mb_returns, mb_values = mb["returns"], mb["values"]
    v_loss_unclipped = (newvalue - mb_returns) ** 2
    if config.clip_vloss:
        v_clipped = mb_values + torch.clamp(newvalue - mb_values, -config.clip_coef,
                                            config.clip_coef)
        v_loss_clipped = (v_clipped - mb_returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean(1)
    else:
        v_loss = 0.5 * v_loss_unclipped.mean(1)
    out["loss"] = pg_loss - config.ent_coef * entropy + v_loss * config.vf_coef
    out["pg_loss"], out["v_loss"], out["entropy"] = pg_loss, v_loss, entropy
    return out


def _agent_major(shuffled: torch.Tensor, markets: int,
                 workspace: dict[str, Any]) -> torch.Tensor:
    """Time-major rollout rows ``[T, K·N, C]`` as each agent's samples ``[N, T·K, C]``
    (a view when K = 1; K markets: agent i's K·T samples copied together, time-major)."""
    if markets == 1:
        return shuffled.transpose(0, 1)
    t_steps, columns, width = shuffled.shape
    n = columns // markets
    grid = shuffled.view(t_steps, markets, n, width).permute(2, 0, 1, 3)  # [N, T, K, C]
    out = kept_tensor(workspace, "agent_major", (n, t_steps * markets, width))
    out.view(n, t_steps, markets, width).copy_(grid)
    return out


def ppo_update(policy: Any, optimizer: StackedAdam, buf: RolloutBuffer, config: PPOConfig,
               generator: torch.Generator,
               workspace: dict[str, Any] | None = None) -> dict[str, float]:
    """One PPO update (epochs × minibatches over time) of all agents. Implements §6.1.

    Args:
        policy: a PolicyEnsemble (``evaluate_agents(obs, u) -> (log_prob, entropy, value)``
            in agent-major layout; ``group_of``, ``n_groups``).
        optimizer: a StackedAdam over the policy's parameters (its ``lr`` is used as is).
        buf: a finished rollout buffer (advantages and returns computed).
        config: the PPO hyperparameters.
        generator: source of the minibatch permutations.
        workspace: reusable tensors of the hand-written gradient pass (a dict the caller
            keeps across updates; see :func:`~mesa_econ.rl.ppo_grad.ppo_minibatch_grads`).
            None: a fresh one for this update.

    Returns:
        Metrics: pg_loss, value_loss, entropy, approx_kl, old_approx_kl (last minibatch,
        mean over agents, as CleanRL logs them), clipfrac (mean over all minibatches),
        explained_variance, epochs (mean over agents of epochs run), grad_norm.
    """
    t_steps = buf.horizon
    n_groups, group_of = policy.n_groups, policy.group_of
    counts = torch.bincount(group_of, minlength=n_groups).to(torch.float32)
    # groups: a group's loss is the mean of its agents' losses (independent: weight 1)
    weight = None if n_groups == policy.n_agents else 1.0 / counts[group_of]
    active = torch.ones(n_groups, dtype=torch.bool)
    epochs_run = torch.zeros(n_groups)
    mb_size = t_steps // config.num_minibatches
    markets = getattr(buf, "n_markets", 1)  # K markets: each minibatch has mb_size·K rows
    mb_rows = mb_size * markets
    clipped = torch.zeros(policy.n_agents)  # rows outside [1 − ε, 1 + ε], per agent
    by_hand = ppo_grad.supports(policy)
    workspace = {} if workspace is None else workspace
    # all per-sample data agent-major in one tensor [N, T, D + A + 4]: one gather per
    # epoch shuffles it, each minibatch is a slice along time of every agent's rows
    # (K markets: [N, T·K, C], a minibatch is mb_size steps of all K markets)
    d, a = buf.obs.shape[-1], buf.actions.shape[-1]
    parts = [buf.obs, buf.actions, buf.logprobs[..., None], buf.advantages[..., None],
             buf.returns[..., None], buf.values[..., None]]
    # kept across updates: fresh ~0.5 MB tensors every update and epoch page-fault
    packed = kept_tensor(workspace, "packed",
                         (*buf.obs.shape[:2], sum(x.shape[-1] for x in parts)))
    torch.cat(parts, -1, out=packed)  # [T, N, C]
    columns = {"obs": slice(0, d), "actions": slice(d, d + a), "logprobs": d + a,
               "advantages": d + a + 1, "returns": d + a + 2, "values": d + a + 3}
    minibatches = 0
    for _ in range(config.update_epochs):
        perm = torch.randperm(t_steps, generator=generator)
        shuffled = torch.index_select(packed, 0, perm,
                                      out=kept_tensor(workspace, "shuffled", packed.shape))
        shuffled = _agent_major(shuffled, markets, workspace)  # [N, T·K, C]
        if by_hand:  # −Â·w/B of every minibatch of the epoch at once
            pg_weight = ppo_grad.surrogate_weights(shuffled[..., columns["advantages"]],
                                                   mb_rows, config.norm_adv, weight)
        for start in range(0, t_steps * markets, mb_rows):
            rows = shuffled[:, start:start + mb_rows]
            mb = {k: rows[..., c] for k, c in columns.items()}
            last = start + mb_rows == t_steps * markets  # the epoch's last minibatch
            if by_hand:  # the same gradients as autograd below, without the graph
                mb["pg_weight"] = pg_weight[:, start:start + mb_rows]
                stats = ppo_grad.ppo_minibatch_grads(policy, mb, config, weight, stats=last,
                                                     workspace=workspace)  # overwrites .grad
                clipped += stats["clipped"]
            else:
                optimizer.zero_grad()
                stats = _ppo_losses(policy, mb, config)
                loss_i = stats["loss"] if weight is None else stats["loss"] * weight
                loss_i.sum().backward()  # Σ_i: each agent's gradient is its own
                clipped += stats["clipfrac"] * mb_rows
            minibatches += 1
            optimizer.step(active)
        epochs_run += active.float()
        if config.target_kl is not None:
            group_kl = _group_mean(stats["approx_kl"], group_of, n_groups, counts)
            active = active & (group_kl <= config.target_kl)
            if not bool(active.any()):
                break
    y_pred, y_true = buf.values.numpy().ravel(), buf.returns.numpy().ravel()
    var_y = np.var(y_true)
    explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
    last = {k: float(v.detach().float().mean()) for k, v in stats.items()}
    return {"pg_loss": last["pg_loss"], "value_loss": last["v_loss"],
            "entropy": last["entropy"], "approx_kl": last["approx_kl"],
            "old_approx_kl": last["old_approx_kl"],
            "clipfrac": float(clipped.sum()) / (policy.n_agents * minibatches * mb_rows),
            "explained_variance": float(explained_var),
            "epochs": float(epochs_run.mean()),
            "grad_norm": float(optimizer.last_grad_norm.mean())}


class PPO(Trainer):
    """PPO trainer of all of a model's agents (independent policies, or groups).

    The agents' policies are ``model.ensemble`` when the model has one (policy
    'actor_critic' or a PPO checkpoint, whose observation normaliser is kept); otherwise a
    new :class:`~mesa_econ.policies.PolicyEnsemble` is built from the model's policy
    settings (``hidden``, ``n_groups``) and ``model.torch_generator``. Either way the
    model is switched to the learned policy (``model.ensemble`` becomes :meth:`policy`),
    so after training ``model.step()`` runs the trained agents.

    Args:
        model: an :class:`~mesa_econ.model.EconomyModel`.
        config: a :class:`PPOConfig` (default: ``PPOConfig()``).
    """

    algo_name = "ppo"
    config_class = PPOConfig
    defer_critic = True  # the ensemble is fixed during a rollout

    def __init__(self, model: Any, config: PPOConfig | None = None) -> None:
        config = PPOConfig() if config is None else config
        if not isinstance(config, PPOConfig):
            raise ValueError(f"config={type(config).__name__} is invalid: expected a PPOConfig")
        loaded_normalizer = None
        existing = getattr(model, "ensemble", None)
        if isinstance(existing, NormalizedPolicy):
            existing, loaded_normalizer = existing.policy, existing.normalizer
            if not config.norm_obs:
                raise ValueError("norm_obs=False is invalid for this model: its policy was "
                                 "trained on normalised observations (keep norm_obs=True)")
        super().__init__(model, config)
        self.ensemble = self._make_ensemble(model, existing)
        if loaded_normalizer is not None and config.norm_obs:
            self.obs_normalizer = loaded_normalizer
        self.optimizer = StackedAdam(list(self.ensemble.parameters()), config.learning_rate,
                                     eps=config.adam_eps, max_grad_norm=config.max_grad_norm)
        model.ensemble, model.scripted = self.policy(), None
        self._workspace: dict[str, Any] = {}  # tensors the update reuses across iterations
        self._vec = None
        if config.n_markets > 1:  # K markets per rollout (the buffer then has K·N columns)
            from mesa_econ.rl.vec_rollout import VecRollout

            self._vec = VecRollout(self, config.n_markets)
            self.buffer = self._vec.buffer

    @staticmethod
    def _make_ensemble(model: Any, existing: Any) -> Any:
        from mesa_econ.policies import PolicyEnsemble

        if existing is None:
            pc = model.config.policy
            return PolicyEnsemble(model.n_agents, model.obs_dim, model.n_assets,
                                  hidden=pc.hidden, n_groups=pc.n_groups,
                                  generator=model.torch_generator)
        if not isinstance(existing, PolicyEnsemble):
            raise ValueError(f"model.ensemble is a {type(existing).__name__}: PPO trains a "
                             "PolicyEnsemble (policy='actor_critic' or a PPO checkpoint)")
        return existing

    # ------------------------------------------------------------------ Trainer hooks
    def collect_step(self) -> dict[str, float]:
        """One rollout: the model's market, or K markets with ``n_markets=K`` (then
        ``env_steps`` counts the steps of all K markets, so agent_steps = N·env_steps)."""
        if self._vec is None:
            return super().collect_step()
        stats = self._vec.collect(self.ensemble)
        self.env_steps += self.config.num_steps * self._vec.n_markets
        return stats

    def learn_step(self, iteration: int, iterations: int) -> dict[str, float]:
        """GAE from V(s_T) (zeros at an episode's end) and one update."""
        if self._vec is None:
            return super().learn_step(iteration, iterations)
        return self.update(iteration, iterations, self._vec.bootstrap())

    def rollout_policy(self) -> Any:
        """The ensemble itself: the trainer feeds it normalised observations."""
        return self.ensemble

    @torch.no_grad()
    def bootstrap_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s_T) from the critic, for a rollout that ends inside an episode (a truncation;
        the trainer passes zeros at an episode's end)."""
        cached = self.cached_value(obs)
        return self.ensemble.critic_value(obs) if cached is None else cached

    def update(self, iteration: int, iterations: int, last_value: torch.Tensor) -> dict[str,
                                                                                      float]:
        """GAE, learning-rate annealing and one :func:`ppo_update`."""
        cfg = self.config
        self.buffer.finish(last_value, cfg.gamma, cfg.gae_lambda)
        if cfg.anneal_lr:  # CleanRL: frac = 1 − (iteration − 1) / num_iterations
            self.optimizer.lr = (1.0 - iteration / iterations) * cfg.learning_rate
        metrics = ppo_update(self.ensemble, self.optimizer, self.buffer, cfg, self.generator,
                             self._workspace)
        metrics["lr"] = self.optimizer.lr
        return metrics
