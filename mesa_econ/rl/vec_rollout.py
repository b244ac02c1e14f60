"""PPO rollouts from K markets at once: one policy, K·N agent-steps per model step.

With ``PPOConfig(n_markets=K)`` the trainer collects every rollout from a
:class:`~mesa_econ.batched.MarketBatch` of K markets of the training model's
configuration and population, each on its own noise seed. The N per-agent policies are
shared across the markets: agent i of every market acts with policy i, so one rollout
of T steps gives each policy K·T samples. Per step::

    obs  = normalise(batch.observations())             # [K, N, D], per-agent statistics
    μ    = actor(obs)                               # one forward pass for K·N rows
    u    = μ + σ·ε                                  # ε: one draw [T, K·N, A] per rollout
    batch.step(trade_scale · clip(u, -1, 1))        # each market's own numpy step
    r    = normalise_reward(batch.last_rewards)     # [K, N]

and after the rollout log π(u|s) and V(s) of all (T + 1)·K·N rows in one pass (the
deferred critic of :class:`~mesa_econ.rl.trainer.Trainer`). The buffer is
:class:`~mesa_econ.rl.buffer.RolloutBuffer` with ``n_markets=K``: column k·N + i is agent i
of market k. GAE runs per column; the PPO update regroups each agent's K·T samples.

Normalisation is per agent over all markets: the observation statistics of agent i merge
its K observations of each step (:meth:`RunningMeanStd.update_batch`); the reward scale of
agent i is the std of its discounted returns over the K markets (each market keeps its
own running return).

Episodes (episodic protocol): every episode starts K fresh markets (:func:`fresh_env`) with
K noise seeds from the trainer's episode-seed stream; the markets end their episodes
together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mesa_econ.batched import MarketBatch
from mesa_econ.policies.actor_critic import gaussian_log_prob
from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.episodes import fresh_env
from mesa_econ.rl.evaluate import price_level_variance, price_volatility
from mesa_econ.rl.normalize import ObsNormalizer, RewardNormalizer

__all__ = ["BatchRewardNormalizer", "VecRollout", "numpy_actor_rows"]


class BatchRewardNormalizer(RewardNormalizer):
    """``RewardNormalizer(n_agents, gamma, clip, epsilon, n_markets=n_markets)`` with the
    markets first: the K-market reward normaliser's former name and signature, kept so
    old imports and calls work (see :class:`~mesa_econ.rl.normalize.RewardNormalizer`).

    Args:
        n_markets: K; n_agents: N; gamma: γ; clip: bound of the scaled rewards;
        epsilon: added to the variance.
    """

    def __init__(self, n_markets: int, n_agents: int, gamma: float, clip: float = 10.0,
                 epsilon: float = 1e-8) -> None:
        super().__init__(n_agents, gamma, clip=clip, epsilon=epsilon, n_markets=n_markets)


def numpy_actor_rows(weights: list[np.ndarray], biases: list[np.ndarray],
                     x: np.ndarray) -> np.ndarray:
    """Stacked tanh MLPs (linear head) on K rows per policy: ``x`` ``[K, N, in]`` →
    ``[K, N, out]`` with policy i's weights on column i (one BLAS product per policy
    and layer, as :class:`~mesa_econ.policies.stacked.NumpyMLP` with K rows)."""
    h = x.transpose(1, 0, 2)  # [N, K, in]
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        h = np.matmul(h, w)
        h += b
        np.tanh(h, out=h)
    out = np.matmul(h, weights[-1])
    out += biases[-1]
    return out.transpose(1, 0, 2)


class VecRollout:
    """Rollout collection of a PPO trainer from K markets (see the module docstring).

    Args:
        trainer: the PPO trainer (its model, config, streams, observation normaliser).
        n_markets: K >= 2.

    Attributes:
        batch: the current :class:`~mesa_econ.batched.MarketBatch`.
        buffer: ``RolloutBuffer(T, N, D, A, n_markets=K)``.
        reward_normalizer: a :class:`~mesa_econ.rl.normalize.RewardNormalizer` with
            ``n_markets=K`` (None without reward scaling).
    """

    def __init__(self, trainer: Any, n_markets: int) -> None:
        cfg, model = trainer.config, trainer.model
        self.trainer, self.n_markets = trainer, int(n_markets)
        n, d, a = trainer.n_agents, trainer.obs_dim, trainer.act_dim
        self.buffer = RolloutBuffer(cfg.num_steps, n, d, a, n_markets=self.n_markets)
        self.reward_normalizer = (RewardNormalizer(n, cfg.gamma, clip=cfg.clip_reward,
                                                   n_markets=self.n_markets)
                                  if cfg.norm_reward else None)
        self._model = model
        self.batch = self._fresh_batch()
        self._episode_t = 0
        self._prices = np.empty((cfg.num_steps + 1, self.n_markets * model.n_assets))
        self._means = torch.empty(cfg.num_steps, self.n_markets * n, a)
        self._obs: torch.Tensor | None = None
        """Normalised observation to continue from ``[K·N, D]`` (None: observe anew)."""
        self.last_value: torch.Tensor | None = None
        self.terminal = False

    def _fresh_batch(self) -> MarketBatch:
        seeds = self.trainer._env_seeds.integers(2**62, size=self.n_markets)
        return MarketBatch([fresh_env(self._model, int(s)) for s in seeds])

    def _observe(self, out: np.ndarray | None = None) -> np.ndarray:
        """Normalised observations ``[K, N, D]`` (statistics updated with these K rows)."""
        raw = self.batch.observations()
        norm: ObsNormalizer | None = self.trainer.obs_normalizer
        if norm is None:
            if out is None:
                return raw
            np.copyto(out, raw)
            return out
        norm.rms.update_batch(raw.astype(np.float64))
        return norm.normalize(raw, out=out)

    @torch.no_grad()
    def collect(self, ensemble: Any) -> dict[str, float]:
        """Fill :attr:`buffer` with one rollout of T steps of the K markets.

        Returns:
            mean_reward (raw, per agent-step, over all markets), volatility and
            level_variance (means over markets and assets), episode_end.
        """
        cfg, buf = self.trainer.config, self.buffer
        k, n = self.n_markets, self.trainer.n_agents
        length = cfg.episode_length
        if length is not None and self._episode_t >= length:
            self.batch, self._episode_t, self._obs = self._fresh_batch(), 0, None
            if self.reward_normalizer is not None:
                self.reward_normalizer.reset()
        batch, horizon, scale = self.batch, cfg.num_steps, self.batch.trade_scale
        obs_np, act_np, rew_np = buf.obs.numpy(), buf.actions.numpy(), buf.rewards.numpy()
        grid = obs_np.reshape(horizon, k, n, -1)  # [T, K, N, D] views of the buffer
        log_std = ensemble.agent_log_std()
        std_np = torch.exp(log_std).numpy()  # [N, A], the same σ in every market
        means_np = self._means.numpy().reshape(horizon, k, n, -1)
        actor = ensemble.numpy_actor()
        layers = None if actor is None else (actor.weights, actor.biases)
        torch.randn(buf.actions.shape, generator=self.trainer.sampling_generator,
                    out=buf.actions)
        if self._obs is None:
            self._observe(out=grid[0])
        else:
            buf.obs[0].copy_(self._obs)
        reward_sum = 0.0
        self._prices[0] = batch.prices.reshape(-1)
        for t in range(horizon):
            if layers is not None:
                means_np[t] = numpy_actor_rows(*layers, grid[t])
            else:
                means_np[t] = ensemble.actor_mean(torch.from_numpy(grid[t])).numpy()
            u = act_np[t].reshape(k, n, -1)
            u *= std_np
            u += means_np[t]
            volumes = np.clip(u, -1.0, 1.0)
            if scale != 1.0:
                volumes *= scale
            batch.step(volumes)
            raw = batch.last_rewards
            reward_sum += float(raw.sum())
            out = rew_np[t].reshape(k, n)
            if self.reward_normalizer is not None:
                self.reward_normalizer(raw, out=out)
            else:
                out[...] = raw
            self._prices[t + 1] = batch.prices.reshape(-1)
            if t + 1 < horizon:
                self._observe(out=grid[t + 1])
        last = torch.from_numpy(self._observe()).reshape(k * n, -1)
        buf.logprobs.copy_(gaussian_log_prob(buf.actions, self._means, log_std.repeat(k, 1)))
        values = ensemble.critic_value(torch.cat([buf.obs, last.unsqueeze(0)]).reshape(
            horizon + 1, k, n, -1)).reshape(horizon + 1, k * n)
        buf.values.copy_(values[:-1])
        self._obs, self.last_value = last, values[-1]
        self._episode_t += horizon
        self.terminal = length is not None and self._episode_t >= length
        buf.dones.zero_()
        if self.terminal:
            buf.dones[-1] = 1.0
        return {"mean_reward": reward_sum / (horizon * k * n),
                "volatility": price_volatility(self._prices),
                "level_variance": price_level_variance(self._prices),
                "episode_end": float(self.terminal)}

    def bootstrap(self) -> torch.Tensor:
        """V(s_T) ``[K·N]`` for GAE: zeros at an episode's end, else the critic's value."""
        if self.terminal or self.last_value is None:
            return torch.zeros(self.n_markets * self.trainer.n_agents)
        return self.last_value
