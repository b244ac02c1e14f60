"""The common training loop: batched rollouts from an EconomyModel, logging, progress.

A rollout of T steps runs all N agents in one batched policy call per step::

    obs = normalise(model.observe())                        # [N, obs_dim], per agent
    u, logp, v = policy.act(obs, generator=model.torch_generator)
    model.submit_orders(model.trade_scale * clip(u, -1, 1))
    model.step()
    r = normalise_reward(model.last_rewards)                # [N], per agent

Environment decision (documented in docs/learning.md): the economy is open-ended, so by
default the model keeps running across iterations and every rollout end is a truncation
(GAE bootstraps from the critic). With ``episode_length`` set (a multiple of the rollout
length) the market is rebuilt every ``episode_length`` steps from a fresh seed drawn from a
generator seeded by the training seed, always at a rollout boundary.

:class:`Trainer` holds the parts every on-policy algorithm shares: the environment model,
the per-agent normalisers, the rollout loop, the per-iteration log (a DataFrame) and the
tqdm progress bar. Subclasses implement :meth:`Trainer.update`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.normalize import ObsNormalizer, RewardNormalizer

__all__ = ["Trainer", "fresh_env", "training_generators"]

TIMING_COLUMNS = ("collect_s", "update_s", "agent_steps_per_s")
"""Columns of the training log that measure wall time (excluded from determinism checks)."""


def training_generators(seed: int | None, model: Any) -> tuple[torch.Generator,
                                                             np.random.Generator]:
    """The trainer's own generators: minibatch shuffling (torch) and environment seeds.

    Seeded from ``seed``; with ``seed=None`` one integer is drawn from ``model.rng``, so a
    seeded model still trains reproducibly.
    """
    if seed is None:
        seed = int(model.rng.integers(2**62))
    root = np.random.SeedSequence(int(seed))
    torch_seed, env_seed = root.spawn(2)
    shuffle = torch.Generator().manual_seed(int(torch_seed.generate_state(1, np.uint64)[0]
                                                >> np.uint64(1)))
    return shuffle, np.random.default_rng(env_seed)


def fresh_env(model: Any, seed: int) -> Any:
    """A new market with ``model``'s configuration, seeded with ``seed``.

    The new model uses the 'hold' policy (the trainer submits every order), keeps the
    model's demand array, and is returned without any learned policy attached.
    """
    from mesa_econ.config import PolicyConfig

    cfg = model.config
    pc = PolicyConfig(kind="hold", hidden=cfg.policy.hidden, n_groups=cfg.policy.n_groups)
    return type(model).from_config(dataclasses.replace(cfg, policy=pc), rng=int(seed),
                                   demand=model.demand)


class Trainer:
    """Shared rollout collection and logging of the on-policy algorithms.

    Args:
        model: the EconomyModel whose agents are trained (it becomes the first environment).
        config: a frozen dataclass with at least ``num_steps``, ``gamma``, ``norm_obs``,
            ``norm_reward``, ``clip_obs``, ``clip_reward``, ``episode_length`` and ``seed``.

    Attributes:
        env: the model currently stepped (``model`` until the first reset).
        history: list of per-iteration metric dicts (see :meth:`train`).
    """

    algo_name = "trainer"

    def __init__(self, model: Any, config: Any) -> None:
        self.model, self.env, self.config = model, model, config
        n, d, m = model.n_agents, model.obs_dim, model.n_assets
        self.n_agents, self.obs_dim, self.act_dim = n, d, m
        self.generator, self._env_seeds = training_generators(config.seed, model)
        self.obs_normalizer = ObsNormalizer(n, d, clip=config.clip_obs) if config.norm_obs \
            else None
        self.reward_normalizer = (RewardNormalizer(n, config.gamma, clip=config.clip_reward)
                                  if config.norm_reward else None)
        self.buffer = RolloutBuffer(config.num_steps, n, d, m)
        self._prices = np.empty((config.num_steps + 1, m))
        self._episode_t = 0
        self._next_obs: tuple[Any, int, torch.Tensor] | None = None
        self.env_steps = 0
        self.iteration = 0
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ environment
    def observe(self, update: bool = True) -> torch.Tensor:
        """The current environment's observations, normalised per agent ``[N, obs_dim]``."""
        raw = self.env.observe()
        if self.obs_normalizer is None:
            return torch.from_numpy(raw)
        return torch.from_numpy(self.obs_normalizer(raw, update=update))

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
    @torch.no_grad()
    def collect(self, policy: Any, next_obs: torch.Tensor) -> tuple[torch.Tensor, dict[str,
                                                                                     float]]:
        """Fill :attr:`buffer` with one rollout of ``num_steps`` steps of all agents.

        Args:
            policy: acts on normalised observations ``[N, obs_dim]`` in one batched call:
                ``policy.act(obs, generator=...) -> (u, log_prob, value)``.
            next_obs: the normalised observation the rollout starts from.

        Returns:
            The normalised observation after the rollout, and rollout statistics
            (mean raw reward per agent-step, volatility of the quoted prices).
        """
        env, buf = self.env, self.buffer
        scale, gen = env.trade_scale, env.torch_generator
        reward_sum = 0.0
        self._prices[0] = env.prices
        obs = next_obs
        for t in range(self.config.num_steps):
            u, logp, value = policy.act(obs, generator=gen)
            env.submit_orders(scale * np.clip(u.numpy(), -1.0, 1.0))
            env.step()
            raw_reward = env.last_rewards
            reward_sum += float(raw_reward.sum())
            reward = (self.reward_normalizer(raw_reward) if self.reward_normalizer is not None
                      else raw_reward)
            buf.add(t, obs, u, logp, value, torch.from_numpy(reward))
            self._prices[t + 1] = env.prices
            obs = self.observe()
        self.env_steps += self.config.num_steps
        self._episode_t += self.config.num_steps
        prices = self._prices
        stats = {"mean_reward": reward_sum / (self.config.num_steps * self.n_agents),
                 "volatility": float(np.mean(prices.var(axis=0)))}  # §7.1, mean over assets
        return obs, stats

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

    def train(self, iterations: int, progress: bool = True) -> pd.DataFrame:
        """Run ``iterations`` rounds of rollout + update.

        Args:
            iterations: number of iterations K (>= 1).
            progress: show a tqdm progress bar.

        Returns:
            The whole training log so far (one row per iteration, cumulative over calls):
            iteration, env_steps, agent_steps, mean_reward, volatility, the algorithm's
            metrics, lr, and the timings collect_s, update_s, agent_steps_per_s.
        """
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations={iterations!r} is invalid: expected an integer >= 1")
        bar = tqdm(range(iterations), desc=f"{self.algo_name} training", unit="it",
                   disable=not progress, leave=False)
        obs = None
        for k in bar:
            if self._maybe_reset() or obs is None:
                obs = self._start_obs()
            start = time.perf_counter()
            obs, stats = self.collect(self.rollout_policy(), obs)
            self._next_obs = (self.env, self.env.t, obs)
            collected = time.perf_counter()
            last_value = self.bootstrap_value(obs)
            metrics = self.update(k, iterations, last_value)
            done = time.perf_counter()
            self.iteration += 1
            agent_steps = self.config.num_steps * self.n_agents
            row = {"iteration": self.iteration, "env_steps": self.env_steps,
                   "agent_steps": self.env_steps * self.n_agents, **stats, **metrics,
                   "collect_s": collected - start, "update_s": done - collected,
                   "agent_steps_per_s": agent_steps / max(done - start, 1e-12)}
            self.history.append(row)
            bar.set_postfix(reward=f"{stats['mean_reward']:.4g}",
                            vol=f"{stats['volatility']:.3g}")
        return pd.DataFrame(self.history)
