"""Advantage actor-critic with Gaussian parameter noise on the actor (§6.3).

The paper's update for agent i is θ_i ← θ_i + α ∇_θ J(θ_i) + ξ_i, ξ_i ~ N(0, σ_ξ² I): an
ordinary policy-gradient step followed by a random perturbation of the policy parameters,
which explores in parameter space (consistent over a rollout) rather than only through
the per-step action noise of the Gaussian policy. Here:

- ∇J is the advantage actor-critic (A2C) gradient of each agent's own objective,
  E[A_t ∇ log π_θ(u_t|s_t)], with A_t from GAE (:func:`mesa_econ.rl.buffer.compute_gae`,
  bootstrapped at a rollout end inside an episode, not at the episode's end) and a
  critic trained on the GAE returns; one Adam step
  (:class:`~mesa_econ.rl.optim.StackedAdam`, per-agent clipping) per rollout, for all
  agents at once on the stacked :class:`~mesa_econ.policies.PolicyEnsemble`;
- ξ is added to the **actor** weights and biases only (not the critic, which is no part of
  the policy, and not ``log_std``: that is the action-noise scale, learned by the gradient;
  perturbing it too would turn the exploration scale into a random walk);
- σ_ξ follows a schedule over updates (:class:`~mesa_econ.rl.schedules.Schedule`), and ξ
  is drawn from the trainer's policy-sampling stream (``sampling_generator``).

Training follows the shared episodic protocol of :mod:`mesa_econ.rl.trainer` (episodes of
H = 128 steps on fresh markets, terminal at the episode's end).

Log-prob bookkeeping. With ``noise_mode="update"`` (the literal §6.3 update, the default)
the perturbed θ + ξ *is* the new policy: it collects the next rollout and is the policy the
next gradient is taken at, so behaviour and target policy coincide and the update is
on-policy (importance ratio exactly 1, no correction). With ``noise_mode="acting"`` the
learner keeps clean θ and only the rollout is collected with θ + ξ (ξ fresh per rollout,
as in Plappert et al. 2018); the policy gradient then weights each sample by the truncated
importance ratio ρ = min(π_θ(u|s) / π_{θ+ξ}(u|s), ``rho_clip``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from mesa_econ._validation import check_bool, check_choice, check_int, check_number
from mesa_econ.rl.episodes import check_episode_length
from mesa_econ.rl.normalize import NormalizedPolicy
from mesa_econ.rl.optim import StackedAdam
from mesa_econ.rl.schedules import SCHEDULE_KINDS, Schedule
from mesa_econ.rl.trainer import Trainer

__all__ = ["NOISE_MODES", "NoisyAC", "NoisyACConfig", "actor_parameters", "perturb_actor"]

NOISE_MODES = ("update", "acting")


@dataclass(frozen=True)
class NoisyACConfig:
    """Hyper-parameters of the parameter-noise actor-critic (§6.3)."""

    num_steps: int = 32
    """T, steps of the whole market per rollout (one gradient step per rollout)."""
    learning_rate: float = 1e-3
    """Adam step size α, > 0."""
    gamma: float = 0.95
    """Discount γ in [0, 1]."""
    gae_lambda: float = 0.95
    """GAE λ in [0, 1]."""
    norm_adv: bool = True
    """Normalise advantages per agent over the rollout."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient, >= 0."""
    vf_coef: float = 0.5
    """Value loss coefficient, >= 0."""
    max_grad_norm: float | None = 0.5
    """Per-agent gradient-norm clip (None: no clipping)."""
    adam_eps: float = 1e-5
    """Adam ε, > 0."""
    sigma_schedule: str = "exponential"
    """Annealing of σ_ξ over updates: 'constant', 'linear' or 'exponential'."""
    sigma_start: float = 0.02
    """σ_ξ at the first update, >= 0."""
    sigma_end: float = 0.002
    """σ_ξ from ``sigma_horizon`` updates on, >= 0."""
    sigma_horizon: int = 100
    """Updates over which σ_ξ anneals, >= 1."""
    noise_mode: str = "update"
    """'update': θ ← θ + α∇J + ξ, the perturbed θ is kept (literal §6.3, on-policy);
    'acting': θ stays clean, each rollout acts with θ + ξ (importance-weighted gradient)."""
    rho_clip: float | None = 10.0
    """Truncation of the importance ratio in 'acting' mode (None: untruncated), > 0."""
    norm_obs: bool = True
    """Per-agent running observation normalisation (saved in checkpoints)."""
    norm_reward: bool = True
    """Per-agent reward scaling by the std of the discounted return."""
    clip_obs: float = 10.0
    """Bound of normalised observations, > 0."""
    clip_reward: float = 10.0
    """Bound of scaled rewards, > 0."""
    episode_length: int | None = 128
    """H, steps per episode (a multiple of ``num_steps``, equal to the market's
    ``horizon``): every episode runs on a fresh market and its end is terminal (no
    bootstrap). None: one open-ended market."""
    seed: int | None = None
    """Seed of the trainer's streams: episode noise seeds and policy sampling, ξ included
    (None: drawn from model.rng)."""

    def __post_init__(self) -> None:
        check_int("num_steps", self.num_steps, 1)
        for name in ("norm_adv", "norm_obs", "norm_reward"):
            check_bool(name, getattr(self, name))
        for name in ("gamma", "gae_lambda"):
            check_number(name, getattr(self, name), 0.0, 1.0)
        for name in ("learning_rate", "adam_eps", "clip_obs", "clip_reward"):
            check_number(name, getattr(self, name), 0.0, low_open=True)
        for name in ("ent_coef", "vf_coef"):
            check_number(name, getattr(self, name), 0.0)
        for name in ("max_grad_norm", "rho_clip"):
            if getattr(self, name) is not None:
                check_number(name, getattr(self, name), 0.0, low_open=True)
        check_choice("sigma_schedule", self.sigma_schedule, SCHEDULE_KINDS)
        self.sigma  # noqa: B018 - validates start, end and horizon
        check_choice("noise_mode", self.noise_mode, NOISE_MODES)
        check_episode_length(self.episode_length, self.num_steps)
        if self.seed is not None:
            check_int("seed", self.seed)

    @property
    def sigma(self) -> Schedule:
        """σ_ξ(k) over update counts k."""
        return Schedule(self.sigma_schedule, self.sigma_start, self.sigma_end,
                        self.sigma_horizon, name="sigma")


def actor_parameters(ensemble: Any) -> list[torch.nn.Parameter]:
    """The parameters that get noise: the actor's stacked weights and biases (no log_std)."""
    return [*ensemble.actor_w, *ensemble.actor_b]


@torch.no_grad()
def perturb_actor(ensemble: Any, sigma: float, generator: torch.Generator) -> float:
    """θ ← θ + ξ, ξ ~ N(0, σ² I) on every actor weight and bias. Implements §6.3's ξ.

    Draws one standard-normal tensor per parameter, in :func:`actor_parameters` order, from
    ``generator``. Returns ‖ξ‖ (over all agents).
    """
    if sigma <= 0.0:
        return 0.0
    total = 0.0
    for p in actor_parameters(ensemble):
        xi = sigma * torch.randn(p.shape, generator=generator, dtype=p.dtype)
        p.add_(xi)  # §6.3: θ ← θ + α∇J + ξ
        total += float(xi.pow(2).sum())
    return math.sqrt(total)


class NoisyAC(Trainer):
    """Parameter-noise advantage actor-critic for all of a model's agents (§6.3).

    Like :class:`~mesa_econ.rl.ppo.PPO`, it trains ``model.ensemble`` (or a new
    :class:`~mesa_econ.policies.PolicyEnsemble` when the model has none) and switches the
    model to the learned policy, so ``model.step()`` runs the trained agents afterwards.

    Args:
        model: an :class:`~mesa_econ.model.EconomyModel`.
        config: a :class:`NoisyACConfig` (default: ``NoisyACConfig()``).
    """

    algo_name = "noisy_ac"
    config_class = NoisyACConfig

    def __init__(self, model: Any, config: NoisyACConfig | None = None) -> None:
        config = NoisyACConfig() if config is None else config
        if not isinstance(config, NoisyACConfig):
            raise ValueError(f"config={type(config).__name__} is invalid: expected a "
                             "NoisyACConfig")
        existing, loaded_normalizer = getattr(model, "ensemble", None), None
        if isinstance(existing, NormalizedPolicy):
            existing, loaded_normalizer = existing.policy, existing.normalizer
        super().__init__(model, config)
        self.ensemble = _make_ensemble(model, existing)
        if loaded_normalizer is not None and config.norm_obs:
            self.obs_normalizer = loaded_normalizer
        self.optimizer = StackedAdam(list(self.ensemble.parameters()), config.learning_rate,
                                     eps=config.adam_eps, max_grad_norm=config.max_grad_norm)
        counts = torch.bincount(self.ensemble.group_of, minlength=self.ensemble.n_groups)
        self._agent_weight = 1.0 / counts[self.ensemble.group_of].to(torch.float32)
        self.updates = 0
        model.ensemble, model.scripted = self.policy(), None

    # ------------------------------------------------------------------ Trainer hooks
    def rollout_policy(self) -> Any:
        """The ensemble (fed normalised observations by the trainer)."""
        return self.ensemble

    def collect(self, policy: Any, next_obs: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """One rollout; in 'acting' mode with θ + ξ, fresh ξ, clean θ restored after."""
        if self.config.noise_mode == "update":
            return super().collect(policy, next_obs)
        with self.perturbed(self.config.sigma(self.updates)):
            return super().collect(policy, next_obs)

    @contextlib.contextmanager
    def perturbed(self, sigma: float) -> Iterator[None]:
        """Act with θ + ξ inside the block; the clean θ is restored exactly on exit."""
        clean = [p.detach().clone() for p in actor_parameters(self.ensemble)]
        perturb_actor(self.ensemble, sigma, self.sampling_generator)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, c in zip(actor_parameters(self.ensemble), clean, strict=True):
                    p.copy_(c)

    @torch.no_grad()
    def bootstrap_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s_T) from the critic, for a rollout that ends inside an episode (a truncation;
        the trainer passes zeros at an episode's end)."""
        return self.ensemble(obs)[2]

    def update(self, iteration: int, iterations: int,
               last_value: torch.Tensor) -> dict[str, float]:
        """GAE, one actor-critic step for every agent, then the actor noise ξ (§6.3)."""
        cfg, buf = self.config, self.buffer
        buf.finish(last_value, cfg.gamma, cfg.gae_lambda)
        newlogprob, entropy, newvalue = self.ensemble.evaluate(buf.obs, buf.actions)
        logratio = newlogprob - buf.logprobs  # [T, N]; exactly 0 in 'update' mode
        adv = buf.advantages
        if cfg.norm_adv:  # per agent, over the rollout
            adv = (adv - adv.mean(0)) / (adv.std(0) + 1e-8)
        if cfg.noise_mode == "acting":
            rho = logratio.detach().exp()  # π_θ / π_{θ+ξ}, the behaviour was θ + ξ
            if cfg.rho_clip is not None:
                rho = rho.clamp(max=cfg.rho_clip)
            pg_loss = -(rho * adv * newlogprob).mean(0)  # [N]
        else:
            pg_loss = -(adv * newlogprob).mean(0)  # on-policy A2C, §6.3's α∇J
        v_loss = 0.5 * ((newvalue - buf.returns) ** 2).mean(0)
        entropy_loss = entropy.mean(0)
        loss_i = pg_loss - cfg.ent_coef * entropy_loss + cfg.vf_coef * v_loss
        self.optimizer.zero_grad()
        (loss_i * self._agent_weight).sum().backward()  # Σ_i: each agent its own gradient
        self.optimizer.step()
        sigma = cfg.sigma(self.updates)
        xi_norm = 0.0
        if cfg.noise_mode == "update":
            xi_norm = perturb_actor(self.ensemble, sigma, self.sampling_generator)
        self.updates += 1
        with torch.no_grad():
            ratio = logratio.exp()
            approx_kl = ((ratio - 1) - logratio).mean()
        return {"pg_loss": float(pg_loss.detach().mean()),
                "value_loss": float(v_loss.detach().mean()),
                "entropy": float(entropy_loss.detach().mean()),
                "approx_kl": float(approx_kl), "is_ratio": float(ratio.mean()),
                "sigma_xi": sigma, "xi_norm": xi_norm,
                "grad_norm": float(self.optimizer.last_grad_norm.mean())}


def _make_ensemble(model: Any, existing: Any) -> Any:
    """``model.ensemble`` if it is a PolicyEnsemble, else a new one from the model's settings."""
    from mesa_econ.policies import PolicyEnsemble

    if existing is None:
        pc = model.config.policy
        return PolicyEnsemble(model.n_agents, model.obs_dim, model.n_assets, hidden=pc.hidden,
                              n_groups=pc.n_groups, generator=model.torch_generator)
    if not isinstance(existing, PolicyEnsemble):
        raise ValueError(f"model.ensemble is a {type(existing).__name__}: the noisy "
                         "actor-critic trains a PolicyEnsemble (policy='actor_critic' or an "
                         "actor-critic checkpoint)")
    return existing


ALGORITHM = NoisyAC
"""The algorithm class ``mesa_econ.rl.ALGORITHMS['noisy_ac']`` resolves to."""
