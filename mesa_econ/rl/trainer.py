"""The common training loop: batched rollouts from an EconomyModel, logging, progress.

A rollout of T steps runs all N agents in one batched policy call per step::

    obs = normalise(model.observations())                        # [N, obs_dim], per agent
    u, logp, v = policy.act(obs, generator=sampling)         # the trainer's own stream
    model.submit_orders(model.trade_scale * clip(u, -1, 1))
    model.step()
    r = normalise_reward(model.last_rewards)                # [N], per agent

With ``defer_critic`` (PPO) the step runs the actor alone, ``u = μ(obs) + σ·ε`` (ε for the
whole rollout drawn in one call at its start; the actor in numpy when the policy offers
``numpy_actor``), and log π(u_t|s_t) and V(s_t) for all T + 1 observations follow after
the rollout in one batched pass (the critic reads its weights once instead of T times).

Training protocol (docs/learning.md). Training is episodic by default: an episode is
``episode_length`` = H = 128 steps (the evaluation horizon, and the market's
``horizon``, whose t/H the agents observe), a multiple of the rollout length T. The
episode end is terminal: the rollout that ends it sets ``dones[T − 1] = 1`` and GAE does
not bootstrap across it; a rollout that ends inside an episode is a truncation and
bootstraps from the critic. Every episode runs on a fresh market at t = 0 (the first one
too: a model passed in with t > 0 is rebuilt) with the model's population (its graph,
needs and ``population_seed``) and a new noise seed. The trainer's ``seed`` spawns three
independent streams: minibatch shuffling, the episodes' noise seeds, and policy
sampling, so market noise (each market's ``rng``) never depends on how the policy
samples. The protocol's pieces live in :mod:`mesa_econ.rl.episodes`.
``episode_length=None`` keeps the old open-ended protocol: one market that is never
reset, every rollout end a truncation.

:class:`Trainer` holds the parts every on-policy algorithm shares: the environment model,
the per-agent normalisers and the rollout collection. Its :meth:`Trainer.collect_step` and
:meth:`Trainer.learn_step` are the hooks of the training loop that every learner, Q-learning
included, runs (:func:`mesa_econ.rl.loop.train_loop`: the per-iteration log and the tqdm
progress bar). Subclasses implement :meth:`Trainer.update`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import torch

from mesa_econ.policies.actor_critic import gaussian_log_prob
from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.episodes import (
    TrainingStreams,
    check_episode_length,
    check_horizon,
    first_env,
    fresh_env,
    training_generators,
)
from mesa_econ.rl.evaluate import price_level_variance, price_volatility
from mesa_econ.rl.loop import TIMING_COLUMNS, train_loop
from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer, RewardNormalizer

__all__ = [
    "TIMING_COLUMNS",
    "Trainer",
    "TrainingStreams",
    "check_episode_length",
    "check_horizon",
    "first_env",
    "fresh_env",
    "training_generators",
]



class Trainer:
    """Shared rollout collection and logging of the on-policy algorithms.

    Args:
        model: the EconomyModel whose agents are trained (the first environment when it
            is at t = 0, see :func:`first_env`). Episodic training needs its market
            ``horizon`` to equal ``episode_length`` (:func:`check_horizon`).
        config: a frozen dataclass with at least ``num_steps``, ``gamma``, ``norm_obs``,
            ``norm_reward``, ``clip_obs``, ``clip_reward``, ``episode_length`` and ``seed``.

    Attributes:
        env: the model currently stepped.
        generator: minibatch shuffling; ``sampling_generator``: policy sampling (the
            streams of :func:`training_generators`).
        history: list of per-iteration metric dicts (see :meth:`train`).
    """

    algo_name = "trainer"
    progress_columns = (("reward", "mean_reward", ".4g"), ("vol", "volatility", ".3g"))
    """(label, log column, format) of the values the progress bar shows."""

    def __init__(self, model: Any, config: Any) -> None:
        check_horizon(model, config.episode_length)
        self.model, self.config = model, config
        n, d, m = model.n_agents, model.obs_dim, model.n_assets
        self.n_agents, self.obs_dim, self.act_dim = n, d, m
        streams = training_generators(config.seed, model)
        self.generator, self._env_seeds = streams.shuffle, streams.env_seeds
        self.sampling_generator = streams.sampling
        self.env = first_env(model, config.episode_length, self._env_seeds)
        self.obs_normalizer = ObsNormalizer(n, d, clip=config.clip_obs) if config.norm_obs \
            else None
        self.reward_normalizer = (RewardNormalizer(n, config.gamma, clip=config.clip_reward)
                                  if config.norm_reward else None)
        self.buffer = RolloutBuffer(config.num_steps, n, d, m)
        self._prices = np.empty((config.num_steps + 1, m))
        self._episode_t = 0
        self.rollout_terminal = False
        """Whether the last rollout ended its episode (GAE then does not bootstrap)."""
        self._next_obs: tuple[Any, int, torch.Tensor] | None = None
        self._means: torch.Tensor | None = None
        self._last_value: tuple[torch.Tensor, torch.Tensor] | None = None
        self.env_steps = 0
        self.iteration = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ environment
    def observe(self, update: bool = True, out: np.ndarray | None = None) -> torch.Tensor:
        """The current environment's observations, normalised per agent ``[N, obs_dim]``.

        Args:
            update: merge them into the observation normaliser's statistics first.
            out: optional float32 array ``[N, obs_dim]`` to write them into (the returned
                tensor then shares its memory).
        """
        return torch.from_numpy(self.observe_np(update, out))

    def observe_np(self, update: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`observe` as a float32 ndarray (no tensor made)."""
        raw = self.env.observations()
        if self.obs_normalizer is not None:
            return self.obs_normalizer(raw, update=update, out=out)
        if out is not None:
            np.copyto(out, raw)
            return out
        return raw

    def _maybe_reset(self) -> bool:
        """Rebuild the market if the episode is over; return whether it was rebuilt."""
        length = self.config.episode_length
        if length is None or self._episode_t < length:
            return False
        self.env = fresh_env(self.model, int(self._env_seeds.integers(2**62)))
        self._episode_t = 0
        if self.reward_normalizer is not None:
            self.reward_normalizer.reset()
        return True

    def _start_obs(self) -> torch.Tensor:
        """The observation to continue from: the cached one if the market has not moved."""
        cached = self._next_obs
        if cached is not None and cached[0] is self.env and cached[1] == self.env.t:
            return cached[2]
        return self.observe()

    # ------------------------------------------------------------------ rollouts
    defer_critic = False
    """Whether :meth:`collect` leaves V(s_t) and log π(u_t|s_t) to one batched pass after
    the rollout (for policies with ``actor_mean``, ``critic_value`` and ``agent_log_std``:
    the per-step work is then the actor alone). The noise ε of the whole rollout is one
    draw ``[T, N, act_dim]`` from the model's torch generator at its start (the same
    distribution as per-step ``policy.act`` draws, a different stream). Given the same ε,
    the actions and log-probabilities are those of per-step acting (bit for bit with
    the torch actor, to float32 rounding with the numpy actor) and the values agree to
    float32 rounding (products of another shape). Subclasses whose policy changes during
    a rollout keep it False."""

    @torch.no_grad()
    def collect(self, policy: Any, next_obs: torch.Tensor) -> tuple[torch.Tensor, dict[str,
                                                                                     float]]:
        """Fill :attr:`buffer` with one rollout of ``num_steps`` steps of all agents.

        Args:
            policy: acts on normalised observations ``[N, obs_dim]`` in one batched call:
                ``policy.act(obs, generator=...) -> (u, log_prob, value)``.
            next_obs: the normalised observation the rollout starts from.

        Returns:
            The normalised observation after the rollout, and rollout statistics:
            mean_reward (raw, per agent-step), volatility (std of the quoted prices' log
            returns) and level_variance (§7.1), each a mean over assets.
        """
        env, buf, horizon = self.env, self.buffer, self.config.num_steps
        scale, gen = env.trade_scale, self.sampling_generator
        deferred = self.defer_critic and all(  # methods of the class: a NormalizedPolicy
            callable(getattr(type(policy), name, None))  # (normalises) does not qualify
            for name in ("actor_mean", "critic_value", "agent_log_std"))
        # numpy views of the buffer (shared memory): the loop writes each step in place
        obs_np, act_np, rew_np = buf.obs.numpy(), buf.actions.numpy(), buf.rewards.numpy()
        actor_np = None
        if deferred:
            log_std = policy.agent_log_std()
            std = torch.exp(log_std)  # = sample_gaussian's exp(log_std), once per rollout
            std_np, means_np = std.numpy(), self._means_buffer().numpy()
            # the actors in numpy when the policy offers it (PolicyEnsemble: ~2x faster per
            # step; means equal to float32 rounding), else its torch actor_mean
            if callable(getattr(type(policy), "numpy_actor", None)):
                actor_np = policy.numpy_actor()
            # ε ~ N(0, I) for the whole rollout in one draw (the per-step torch call costs
            # more than the rest of the policy's step); u_t = μ_t + σ·ε_t below
            torch.randn(buf.actions.shape, generator=gen, out=buf.actions)
        torch_obs = not deferred or actor_np is None  # the loop needs `obs` as a tensor
        reward_sum = 0.0
        self._prices[0] = env.prices
        buf.obs[0].copy_(next_obs)
        obs = buf.obs[0]
        for t in range(horizon):
            if deferred:  # u = μ + σ·ε as sample_gaussian computes it, in the buffer
                if actor_np is not None:
                    means_np[t] = actor_np(obs_np[t])
                else:
                    means_np[t] = policy.actor_mean(obs).numpy()
                u_np = act_np[t]
                u_np *= std_np
                u_np += means_np[t]
            else:
                u, logp, value = policy.act(obs, generator=gen)
                buf.logprobs[t] = logp
                buf.values[t] = value
                u_np = u.numpy()
                act_np[t] = u_np
            volumes = np.minimum(u_np, 1.0)  # = np.clip(u, -1, 1), without its overhead
            np.maximum(volumes, -1.0, out=volumes)
            if scale != 1.0:
                volumes *= scale
            env.submit_orders(volumes)
            env.step()
            raw_reward = env.last_rewards
            reward_sum += float(raw_reward.sum())
            if self.reward_normalizer is not None:
                self.reward_normalizer(raw_reward, out=rew_np[t])
            else:
                rew_np[t] = raw_reward
            self._prices[t + 1] = env.prices
            if t + 1 < horizon:
                self.observe_np(out=obs_np[t + 1])
                if torch_obs:
                    obs = buf.obs[t + 1]
            else:
                obs = self.observe()
        if deferred:
            buf.logprobs.copy_(gaussian_log_prob(buf.actions, self._means, log_std))
            values = policy.critic_value(torch.cat([buf.obs, obs.unsqueeze(0)]))
            buf.values.copy_(values[:-1])
            self._last_value = (obs, values[-1])
        self.env_steps += horizon
        self._episode_t += horizon
        length = self.config.episode_length
        self.rollout_terminal = length is not None and self._episode_t >= length
        buf.dones.zero_()
        if self.rollout_terminal:  # s_T ends the episode: GAE stops there
            buf.dones[-1] = 1.0
        stats = {"mean_reward": reward_sum / (horizon * self.n_agents),
                 "volatility": price_volatility(self._prices),
                 "level_variance": price_level_variance(self._prices)}
        return obs, stats

    def _means_buffer(self) -> torch.Tensor:
        """Per-step policy means ``[T, N, act_dim]`` of a deferred rollout (allocated once)."""
        if self._means is None:
            self._means = torch.empty(self.config.num_steps, self.n_agents, self.act_dim)
        return self._means

    def cached_value(self, obs: torch.Tensor) -> torch.Tensor | None:
        """V(``obs``) if the last deferred rollout computed it (its final observation)."""
        cached = self._last_value
        if cached is not None and cached[0] is obs:
            self._last_value = None
            return cached[1]
        return None

    # ------------------------------------------------------------------ training loop
    def update(self, iteration: int, iterations: int, last_value: torch.Tensor) -> dict[str,
                                                                                      float]:
        """Learn from :attr:`buffer`; return the algorithm's metrics. Subclasses implement."""
        raise NotImplementedError

    def bootstrap_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s_T) of every agent for the rollout's last observation. Subclasses implement."""
        raise NotImplementedError

    def rollout_policy(self) -> Any:
        """The object whose ``act`` collects rollouts (on normalised obs). Subclasses implement."""
        raise NotImplementedError

    def collect_step(self) -> dict[str, float]:
        """One iteration's environment steps (the :class:`~mesa_econ.rl.loop.Learner` hook).

        Rebuilds the market when the episode is over, continues from the cached
        observation otherwise, and fills :attr:`buffer` with one :meth:`collect` rollout of
        :meth:`rollout_policy`. Returns the rollout statistics and ``episode_end`` (1.0
        where the rollout ended an episode).
        """
        self._maybe_reset()
        obs, stats = self.collect(self.rollout_policy(), self._start_obs())
        self._next_obs = (self.env, self.env.t, obs)
        return {**stats, "episode_end": float(self.rollout_terminal)}

    def learn_step(self, iteration: int, iterations: int) -> dict[str, float]:
        """V(s_T) for GAE, then :meth:`update` (the :class:`~mesa_econ.rl.loop.Learner`
        hook): zeros at an episode's end, the critic's value after a truncation."""
        if self._next_obs is None:
            raise RuntimeError("learn_step needs a rollout: call collect_step first")
        obs = self._next_obs[2]
        if self.rollout_terminal:  # no value beyond the episode's end
            last_value, self._last_value = torch.zeros(self.n_agents), None
        else:  # a truncation inside the episode: bootstrap from the critic
            last_value = self.bootstrap_value(obs)
        return self.update(iteration, iterations, last_value)

    def train(self, iterations: int, progress: bool = True) -> pd.DataFrame:
        """Run ``iterations`` rounds of rollout + update (:func:`~mesa_econ.rl.loop.train_loop`).

        Args:
            iterations: number of iterations K (>= 1).
            progress: show a tqdm progress bar.

        Returns:
            The whole training log so far (one row per iteration, cumulative over calls):
            iteration, env_steps, agent_steps, mean_reward, volatility, level_variance,
            episode_end (1.0 where the rollout ended an episode), the algorithm's metrics,
            lr, and the timings collect_s, update_s, agent_steps_per_s.
        """
        return train_loop(self, iterations, progress)

    # ------------------------------------------------------------------ public API
    def policy(self) -> Any:
        """The trained agents as one policy object acting on raw model observations."""
        if self.obs_normalizer is None:
            return self.ensemble
        return NormalizedPolicy(self.ensemble, self.obs_normalizer)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Raw actions u ``[N, act_dim]`` for raw observations (the model's generator)."""
        u, _, _ = self.policy().act(obs, generator=self.env.torch_generator,
                                    deterministic=deterministic)
        return u

    def save(self, path: Any) -> Any:
        """Write a checkpoint (see :mod:`mesa_econ.rl.checkpoint`); returns its directory."""
        from mesa_econ.rl.checkpoint import save_checkpoint

        return save_checkpoint(self.ensemble, path, algo=self.algo_name,
                               config=dataclasses.asdict(self.config),
                               obs_normalizer=self.obs_normalizer, model=self.model)
