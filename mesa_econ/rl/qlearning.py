"""Multi-agent mean-field Q-learning with stacked, per-asset factorised Q-networks (§6.2).

The paper's update for agent i,

    Q_i(s, a_i) ← (1 − α) Q_i(s, a_i) + α [ r_i + γ E_{A−i} max_{a'} Q_i(s', a') ],

needs the expectation over the other agents' actions A−i. We make it explicit with
mean-field Q-learning (Yang et al. 2018): Q_i is conditioned on ā_i, the neighbours' mean
trade size at the previous step (over ``model.adjacency``; complete graph: all others), so
the other agents enter through the state (s, ā) and the target is

    y_i = r_i + γ (1 − d) (1/M) Σ_j max_k Q̄_ij(s', ā'_i, k),

with Q̄ a target network, ā'_i the mean of the actions just taken (the next step's
input) and d = 1 when s' ends the episode (training is episodic, see QLearning). The
tabular step size α becomes Adam on the Huber loss of Q_i(s, ā, a) − y_i over
minibatches from a replay buffer (DQN). See docs/marl.md for the derivation and the
factorisation Q_i = (1/M) Σ_j Q_ij(s, ā, a_j).

All N agents act, store and learn in stacked form: one batched forward per step, one
replay buffer ``[C, N, ...]``, one Adam over stacked weights whose loss is the sum of
per-agent losses with per-agent gradient clipping (so it equals N independent learners).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from mesa_econ._validation import check_bool, check_choice, check_int, check_number
from mesa_econ.policies.q_ensemble import QEnsemble
from mesa_econ.rl.episodes import check_horizon, first_env, fresh_env, training_generators
from mesa_econ.rl.evaluate import price_level_variance
from mesa_econ.rl.loop import train_loop
from mesa_econ.rl.schedules import SCHEDULE_KINDS, Schedule

__all__ = ["QLearning", "QLearningConfig", "ReplayBuffer", "clip_grad_norm_per_agent"]

Tensor = torch.Tensor
TARGET_UPDATES = ("hard", "polyak")


@dataclass(frozen=True)
class QLearningConfig:
    """Hyper-parameters of mean-field Q-learning (§6.2). Steps count joint model steps."""

    n_levels: int = 5
    """K, trade sizes per asset on the grid linspace(-1, 1, K) × trade_scale (>= 2)."""
    hidden: tuple[int, ...] = (64, 64)
    """ReLU hidden widths of each agent's Q-network."""
    mean_field: bool = True
    """Condition Q_i on the neighbours' mean action ā_i (False: independent Q-learners)."""
    learning_rate: float = 1e-3
    """Adam step size (the role of α in the paper's tabular update), > 0."""
    gamma: float = 0.9
    """Discount γ in [0, 1)."""
    buffer_size: int = 10_000
    """Replay capacity in joint steps (each holds all N agents' transitions), >= 1."""
    batch_size: int = 64
    """Joint steps per minibatch, >= 1."""
    steps_per_iteration: int = 50
    """Model steps collected per training iteration, >= 1."""
    gradient_steps: int = 25
    """Minibatch updates per iteration (after collection), >= 0."""
    learning_starts: int = 100
    """Model steps collected before the first update, >= 0."""
    epsilon_schedule: str = "linear"
    """Annealing of ε over model steps: 'constant', 'linear' or 'exponential'."""
    epsilon_start: float = 1.0
    """ε at step 0, in [0, 1]."""
    epsilon_end: float = 0.05
    """ε from ``epsilon_horizon`` steps on, in [0, 1]."""
    epsilon_horizon: int = 1_000
    """Model steps over which ε anneals, >= 1."""
    target_update: str = "hard"
    """'hard': copy the online weights every ``target_update_interval`` updates;
    'polyak': θ̄ ← (1 − τ) θ̄ + τ θ after every update."""
    target_update_interval: int = 100
    """Updates between hard target copies, >= 1."""
    tau: float = 0.005
    """Polyak coefficient τ in (0, 1]."""
    double_q: bool = True
    """Double Q-learning: the online network picks a', the target network values it."""
    huber_delta: float = 1.0
    """δ of the Huber TD loss, > 0."""
    max_grad_norm: float | None = 10.0
    """Per-agent gradient-norm clip (None: no clipping), > 0."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning, > 0."""
    episode_length: int | None = 128
    """H, model steps per episode (equal to the market's ``horizon``): every episode runs
    on a fresh market (the mean-field state restarts at "nobody traded") and its end is
    terminal (the TD target does not bootstrap through it). None: one open-ended market."""
    seed: int | None = None
    """Seed of the trainer's streams: replay sampling, episode noise seeds and exploration
    (None: drawn from model.rng)."""

    def __post_init__(self) -> None:
        check_int("n_levels", self.n_levels, 2)
        for name in ("mean_field", "double_q"):
            check_bool(name, getattr(self, name))
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, numbers.Integral)
                                  or h < 1 for h in self.hidden):
            raise ValueError(f"hidden={self.hidden!r} is invalid: expected a non-empty tuple "
                             "of positive integers")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check_number("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_number("gamma", self.gamma, 0.0, 1.0, high_open=True)  # open-ended economy
        for name, low in (("buffer_size", 1), ("batch_size", 1), ("steps_per_iteration", 1),
                          ("gradient_steps", 0), ("learning_starts", 0),
                          ("target_update_interval", 1)):
            check_int(name, getattr(self, name), low)
        for name in ("epsilon_start", "epsilon_end"):
            check_number(name, getattr(self, name), 0.0, 1.0)
        check_choice("target_update", self.target_update, TARGET_UPDATES)
        check_choice("epsilon_schedule", self.epsilon_schedule, SCHEDULE_KINDS)
        self.epsilon  # noqa: B018 - validates the schedule (horizon, exponential > 0)
        check_number("tau", self.tau, 0.0, 1.0, low_open=True)
        check_number("huber_delta", self.huber_delta, 0.0, low_open=True)
        if self.max_grad_norm is not None:
            check_number("max_grad_norm", self.max_grad_norm, 0.0, low_open=True)
        check_number("reward_scale", self.reward_scale, 0.0, low_open=True)
        if self.episode_length is not None:
            check_int("episode_length", self.episode_length, 1)
        if self.seed is not None:
            check_int("seed", self.seed, 0)

    @property
    def epsilon(self) -> Schedule:
        """ε(t) over model steps t."""
        return Schedule(self.epsilon_schedule, self.epsilon_start, self.epsilon_end,
                        self.epsilon_horizon, name="epsilon")


class ReplayBuffer:
    """Ring buffer of joint transitions, stacked over agents: ``[C, N, ...]``.

    Stores (s, ā, a, r, s', ā', d) for all N agents of one model step in one slot, d = 1
    when s' ends the episode (terminal); a minibatch is B slots, i.e. B transitions of every
    agent.

    Args:
        capacity: C, slots (joint steps).
        n_agents, obs_dim, n_assets: N, observation width, M.
    """

    def __init__(self, capacity: int, n_agents: int, obs_dim: int, n_assets: int) -> None:
        check_int("capacity", capacity, 1)
        c, n = int(capacity), int(n_agents)
        self.capacity, self.size, self._next = c, 0, 0
        self.obs = torch.zeros(c, n, obs_dim)
        self.mean_action = torch.zeros(c, n, n_assets)
        self.action = torch.zeros(c, n, n_assets, dtype=torch.long)
        self.reward = torch.zeros(c, n)
        self.next_obs = torch.zeros(c, n, obs_dim)
        self.next_mean_action = torch.zeros(c, n, n_assets)
        self.done = torch.zeros(c)

    def add(self, obs: Tensor, mean_action: Tensor, action: Tensor, reward: Tensor,
            next_obs: Tensor, next_mean_action: Tensor, done: bool = False) -> None:
        """Store one joint step (overwrites the oldest slot when full); ``done``: the step
        ended the episode."""
        k = self._next
        self.obs[k], self.mean_action[k], self.action[k] = obs, mean_action, action
        self.reward[k], self.next_obs[k], self.next_mean_action[k] = (reward, next_obs,
                                                                      next_mean_action)
        self.done[k] = float(done)
        self._next = (k + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        """B slots drawn uniformly with replacement from ``generator``: tensors ``[B, N, ...]``
        (``done``: ``[B]``)."""
        if self.size == 0:
            raise ValueError("the replay buffer is empty: collect steps before sampling")
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return {name: getattr(self, name)[idx] for name in
                ("obs", "mean_action", "action", "reward", "next_obs", "next_mean_action",
                 "done")}


def clip_grad_norm_per_agent(params: list[torch.nn.Parameter], max_norm: float) -> Tensor:
    """Clip each agent's gradient norm separately over stacked params ``[N, ...]``.

    The norm of agent i is taken over slice i of every parameter, so one optimizer over the
    stack behaves like N optimizers each clipping its own module. Returns the norms ``[N]``.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norms = torch.sqrt(sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads))
    scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.reshape(-1, *([1] * (g.ndim - 1))))
    return norms


class QLearning:
    """Mean-field multi-agent Q-learning on an :class:`~mesa_econ.model.EconomyModel` (§6.2).

    The model's agents are trained in place: the Q ensemble becomes ``model.ensemble``
    (greedy policy), so after training ``model.step()`` lets the trained agents trade and
    the UI, batch runs and notebooks show them.

    Training follows the episodic protocol of :mod:`mesa_econ.rl.trainer`: episodes of
    ``episode_length`` = H steps (the market's ``horizon``), each on a fresh market with the
    model's population and a new noise seed; the TD target stops at an episode's end.

    Args:
        model: the economy (its ``torch_generator`` draws the initial Q weights; its
            ``rng`` the first market's noise). Exploration, replay sampling and the
            episodes' noise seeds come from the streams of ``config.seed``
            (:func:`~mesa_econ.rl.episodes.training_generators`).
        config: :class:`QLearningConfig` (default if None).
    """

    algo_name = "qlearning"
    algo = algo_name  # the name this class used before the shared loop
    progress_columns = (("reward", "mean_reward", ".4g"), ("eps", "epsilon", ".3f"))

    def __init__(self, model: Any, config: QLearningConfig | None = None) -> None:
        config = QLearningConfig() if config is None else config
        if not isinstance(config, QLearningConfig):
            raise ValueError(f"config={type(config).__name__} is invalid: expected a "
                             "QLearningConfig")
        check_horizon(model, config.episode_length)
        self.model, self.config = model, config
        streams = training_generators(config.seed, model)
        self.generator, self._env_seeds = streams.sampling, streams.env_seeds
        self.replay_generator = streams.shuffle
        self.env = first_env(model, config.episode_length, self._env_seeds)
        self._episode_t = 0
        self.q = QEnsemble.for_model(model, n_levels=config.n_levels, hidden=config.hidden,
                                     mean_field=config.mean_field)
        self.target = QEnsemble(**self.q.checkpoint_kwargs(), generator=torch.Generator())
        self.target.load_state_dict(self.q.state_dict())
        self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q.parameters(), lr=config.learning_rate)
        self.buffer = ReplayBuffer(config.buffer_size, model.n_agents, model.obs_dim,
                                   model.n_assets)
        self.n_agents = model.n_agents
        self.env_steps, self.updates, self.iteration = 0, 0, 0
        self.history: list[dict[str, Any]] = []
        model.ensemble, model.scripted = self.q, None  # the model now acts with the Q policy

    # ------------------------------------------------------------------ interface
    def policy(self) -> QEnsemble:
        """The trained policy object (greedy): what a checkpoint stores."""
        return self.q

    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Trade sizes u ``[N, M]`` for one step (ε-greedy at the current ε unless
        ``deterministic``, exploring with :attr:`generator`, the trainer's sampling
        stream); advances the mean-field state like a model step does."""
        self.q.epsilon = self.config.epsilon(self.env_steps)
        try:
            u, _, _ = self.q.act(obs, generator=self.generator, deterministic=deterministic)
        finally:
            self.q.epsilon = 0.0
        return u

    def save(self, path: Any) -> None:
        """Write the Q ensemble and this config as a safetensors + JSON checkpoint."""
        from mesa_econ.rl.checkpoint import save_checkpoint

        save_checkpoint(self.q, path, algo=self.algo_name, config=asdict(self.config),
                        model=self.model)

    def train(self, iterations: int, progress: bool = True) -> pd.DataFrame:
        """Collect and learn for ``iterations`` iterations; one metrics row per iteration
        (:func:`~mesa_econ.rl.loop.train_loop`).

        Returns the whole log so far (cumulative over calls), columns: iteration,
        env_steps, agent_steps, mean_reward (per agent and step, unscaled), volatility
        (std of the quoted prices' log returns over the iteration, start price included)
        and level_variance (§7.1), each a mean over assets, episodes (episodes ended
        during the iteration), epsilon (at the iteration's last step), td_loss (mean
        Huber loss of the iteration's updates, NaN before ``learning_starts``), q_mean
        (mean Q of the replayed actions), updates (cumulative), collect_s, update_s,
        agent_steps_per_s.
        """
        return train_loop(self, iterations, progress)

    # ------------------------------------------------------------------ loop hooks
    def collect_step(self) -> dict[str, float]:
        """``steps_per_iteration`` ε-greedy steps into the replay buffer (a
        :class:`~mesa_econ.rl.loop.Learner` hook); returns the collection statistics."""
        cfg = self.config
        reward_sum, episodes = 0.0, 0
        # quotes before and after each step: log returns never span two markets
        before = np.empty((cfg.steps_per_iteration, self.model.n_assets))
        after = np.empty_like(before)
        eps = cfg.epsilon(self.env_steps)
        for t in range(cfg.steps_per_iteration):
            if self._episode_over():
                self.env = fresh_env(self.model, int(self._env_seeds.integers(2**62)))
                self.q.reset_state()
                self._episode_t = 0
            eps = cfg.epsilon(self.env_steps)
            before[t] = self.env.prices
            reward_sum += self._explore_step(eps)
            after[t] = self.env.prices
            self.env_steps += 1
            episodes += self._episode_over()
        log_returns = np.log(after) - np.log(before)
        volatility = (float(log_returns.std(axis=0, ddof=1).mean()) if len(log_returns) > 1
                      else math.nan)
        return {"mean_reward": reward_sum / cfg.steps_per_iteration,
                "volatility": volatility,
                "level_variance": price_level_variance(np.vstack([before[:1], after])),
                "episodes": episodes, "epsilon": eps}

    def learn_step(self, iteration: int, iterations: int) -> dict[str, float]:
        """``gradient_steps`` minibatch updates once ``learning_starts`` steps are in (a
        :class:`~mesa_econ.rl.loop.Learner` hook; the iteration counts are not used)."""
        cfg = self.config
        losses, q_means = [], []
        if self.env_steps >= cfg.learning_starts:
            for _ in range(cfg.gradient_steps):
                loss, q_mean = self._update()
                losses.append(loss)
                q_means.append(q_mean)
        return {"td_loss": float(np.mean(losses)) if losses else math.nan,
                "q_mean": float(np.mean(q_means)) if q_means else math.nan,
                "updates": self.updates}

    # ------------------------------------------------------------------ internals
    def _episode_over(self) -> bool:
        """Whether the current market has run its ``episode_length`` steps."""
        length = self.config.episode_length
        return length is not None and self._episode_t >= length

    def _explore_step(self, eps: float) -> float:
        """One ε-greedy step of every agent in :attr:`env`, stored in the replay buffer;
        returns the mean raw reward per agent."""
        model = self.env
        obs = torch.from_numpy(model.observations())
        mean_action = self.q.mean_action()
        with torch.no_grad():
            greedy = self.q.greedy(self.q(obs, mean_action))
        index = self.q.explore(greedy, eps, self.generator)
        u = self.q.levels[index]
        model.submit_orders(model.trade_scale * u.double().numpy())  # §2.2
        model.step()
        self.q.remember(u, model.torch_generator)  # ā' of this market
        self._episode_t += 1
        done = self._episode_over()
        reward = torch.as_tensor(model.last_rewards, dtype=torch.float32)
        self.buffer.add(obs, mean_action, index, reward, torch.from_numpy(model.observations()),
                        self.q.mean_action(), done=done)
        return float(model.last_rewards.mean())

    def td_target(self, batch: dict[str, Tensor]) -> Tensor:
        """y_i = r_i + γ (1 − d) (1/M) Σ_j Q̄_ij(s', ā', a*_j), ``[B, N]``. Implements §6.2.

        a*_j = argmax_k Q_ij(s', ā', k) of the online network (double Q) or of the target;
        d = ``batch["done"]`` ``[B]`` is 1 where s' ends the episode (no bootstrap).
        """
        cfg = self.config
        with torch.no_grad():
            next_q = self.target(batch["next_obs"], batch["next_mean_action"])
            if cfg.double_q:
                best = self.q(batch["next_obs"], batch["next_mean_action"]).argmax(-1)
                next_value = next_q.gather(-1, best.unsqueeze(-1)).squeeze(-1)
            else:
                next_value = next_q.max(-1).values
            # §6.2: r + γ E_{A−i} max Q', the expectation carried by ā' (mean field)
            live = (1.0 - batch["done"]).unsqueeze(-1)  # [B, 1]: every agent's episode ends
            return cfg.reward_scale * batch["reward"] + cfg.gamma * live * next_value.mean(-1)

    def _update(self) -> tuple[float, float]:
        cfg = self.config
        batch = self.buffer.sample(cfg.batch_size, self.replay_generator)
        target = self.td_target(batch)
        q = self.q(batch["obs"], batch["mean_action"])  # [B, N, M, K]
        q_taken = q.gather(-1, batch["action"].unsqueeze(-1)).squeeze(-1).mean(-1)  # [B, N]
        per_agent = F.huber_loss(q_taken, target, reduction="none",
                                 delta=cfg.huber_delta).mean(0)
        loss = per_agent.sum()  # Σ_i L_i: each agent's weights see only its own loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm is not None:
            clip_grad_norm_per_agent(list(self.q.parameters()), cfg.max_grad_norm)
        self.optimizer.step()
        self.updates += 1
        self._update_target()
        return float(per_agent.detach().mean()), float(q_taken.detach().mean())

    def _update_target(self) -> None:
        cfg = self.config
        with torch.no_grad():
            if cfg.target_update == "polyak":
                for p_t, p in zip(self.target.parameters(), self.q.parameters(), strict=True):
                    p_t.lerp_(p, cfg.tau)
            elif self.updates % cfg.target_update_interval == 0:
                self.target.load_state_dict(self.q.state_dict())


ALGORITHM = QLearning
"""The algorithm class ``mesa_econ.rl.ALGORITHMS["qlearning"]`` resolves to."""
