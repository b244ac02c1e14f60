"""Per-agent running normalisation of observations and rewards (as SB3's VecNormalize).

Every agent has its own statistics: the mean and variance are arrays ``[N, obs_dim]`` (and
``[N]`` for rewards), updated with one sample per agent per step. All agents see the same
number of samples, so one count serves them all.

- Observations: ô_i = clip((o_i − μ_i) / sqrt(σ²_i + ε), −c, c) with running μ_i, σ²_i.
- Rewards: r̂_i = clip(r_i / sqrt(Var[G_i] + ε), −c, c), where G_i is agent i's running
  discounted return G_i ← γ·G_i + r_i (SB3's VecNormalize: scale, do not shift, so the
  sign of a reward is kept). With K markets at once (rewards ``[K, N]``) each market keeps
  its own G_ki and agent i's variance is that of its returns over all K markets.

Statistics are float64 numpy arrays; the normalised observation is float32. The same
function normalises during training and inside a loaded checkpoint
(:class:`NormalizedPolicy`), so a loaded policy sees bit-identical inputs.
:class:`NormalizedPolicyView` is one agent's row of a :class:`NormalizedPolicy` (what
``agent.policy`` is in a model driven by a checkpoint).

These classes live under ``policies/`` because the model uses them to run a loaded
checkpoint; ``mesa_econ.rl.normalize`` re-exports them for the trainers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mesa_econ._validation import check_int, check_number, fail, is_real_or_inf
from mesa_econ.policies.actor_critic import act_only
from mesa_econ.policies.view import describe_row

__all__ = ["NormalizedPolicy", "NormalizedPolicyView", "ObsNormalizer", "RewardNormalizer",
           "RunningMeanStd"]


class RunningMeanStd:
    """Running mean and variance of a stream of arrays of shape ``shape``.

    Uses the parallel (Chan et al.) update of SB3/OpenAI baselines: a batch of k samples
    with mean m_b and variance v_b merges into (μ, σ², n) exactly.

    Args:
        shape: shape of one sample (e.g. ``(N, obs_dim)`` for per-agent observations).
        epsilon: initial pseudo-count (keeps the first division finite).
    """

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)
        self._delta = np.empty(shape, dtype=np.float64)

    def update(self, x: np.ndarray) -> None:
        """Merge one sample ``x`` (of shape ``shape``) into the statistics.

        The k = 1 case of :meth:`update_batch` (batch variance 0), without its reductions,
        computed in place (the same float64 operations as
        ``μ ← μ + δ/n'``, ``σ² ← (σ²·n + δ²·n/n') / n'`` with δ = x − μ, n' = n + 1).
        """
        delta, total = self._delta, self.count + 1.0
        np.subtract(x, self.mean, out=delta)
        self.mean += delta * (1.0 / total)
        np.square(delta, out=delta)
        delta *= self.count / total
        self.var *= self.count
        self.var += delta
        self.var /= total
        self.count = total

    def update_batch(self, batch: np.ndarray, k: int | None = None) -> None:
        """Merge a batch ``[k, *shape]`` of samples into the statistics."""
        k = int(batch.shape[0]) if k is None else k
        batch_mean = batch.mean(axis=0)
        batch_var = batch.var(axis=0)
        delta = batch_mean - self.mean
        total = self.count + k
        self.mean = self.mean + delta * (k / total)
        m2 = self.var * self.count + batch_var * k + delta**2 * (self.count * k / total)
        self.var = m2 / total
        self.count = total

    def state(self) -> dict[str, Any]:
        """Arrays and scalars that restore these statistics."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load(self, mean: np.ndarray, var: np.ndarray, count: float) -> None:
        """Restore statistics saved by :meth:`state` (shapes must match)."""
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"normaliser statistics have shapes {mean.shape}, {var.shape}: "
                             f"expected {self.mean.shape}")
        self.mean = np.asarray(mean, dtype=np.float64).copy()
        self.var = np.asarray(var, dtype=np.float64).copy()
        self.count = float(count)


class ObsNormalizer:
    """Per-agent running normalisation of observations ``[N, obs_dim]``.

    Args:
        n_agents: N.
        obs_dim: width of an observation.
        clip: bound c of the normalised values.
        epsilon: ε added to the variance.
    """

    def __init__(self, n_agents: int, obs_dim: int, clip: float = 10.0,
                 epsilon: float = 1e-8) -> None:
        if clip <= 0:
            raise ValueError(f"clip={clip!r} is invalid: expected a real > 0")
        self.n_agents, self.obs_dim = int(n_agents), int(obs_dim)
        self.clip, self.epsilon = float(clip), float(epsilon)
        self.rms = RunningMeanStd((self.n_agents, self.obs_dim))

    def __call__(self, obs: np.ndarray, update: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
        """Normalise ``obs`` ``[..., N, obs_dim]`` (updating the statistics first if asked).

        Returns:
            float32 array of the same shape (``out`` when given).
        """
        if update:
            # both uses subtract float64 statistics: cast (exactly) once, not in each ufunc
            obs = np.asarray(obs, dtype=np.float64)
            self.rms.update(obs)
        return self.normalize(obs, out=out)

    def normalize(self, obs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """ô = clip((o − μ) / sqrt(σ² + ε), −c, c) as float32, without updating.

        Args:
            obs: ``[..., N, obs_dim]``.
            out: optional float32 array of ``obs``'s shape to write the result into.
        """
        if obs.shape[-2:] != (self.n_agents, self.obs_dim):
            raise ValueError(f"obs has shape {obs.shape}: expected [..., n_agents="
                             f"{self.n_agents}, obs_dim={self.obs_dim}]")
        scaled = self._scaled(obs, self.rms.mean, self.rms.var)
        if out is None:
            return scaled.astype(np.float32)
        np.copyto(out, scaled, casting="same_kind")
        return out

    def normalize_agent(self, obs: np.ndarray, agent: int) -> np.ndarray:
        """:meth:`normalize` with agent ``agent``'s statistics, obs ``[..., obs_dim]``."""
        return self._scaled(obs, self.rms.mean[agent], self.rms.var[agent]).astype(np.float32)

    def _scaled(self, obs: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        scaled = np.subtract(obs, mean, dtype=np.float64)
        scaled /= np.sqrt(var + self.epsilon)
        np.minimum(scaled, self.clip, out=scaled)  # = np.clip(scaled, -c, c), NaN kept
        np.maximum(scaled, -self.clip, out=scaled)
        return scaled

    def state(self) -> dict[str, Any]:
        """Everything a checkpoint needs to rebuild this normaliser."""
        return {**self.rms.state(), "clip": self.clip, "epsilon": self.epsilon}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ObsNormalizer:
        """Rebuild a normaliser from :meth:`state`."""
        mean = np.asarray(state["mean"], dtype=np.float64)
        if mean.ndim != 2:
            raise ValueError(f"obs normaliser mean has shape {mean.shape}: expected "
                             "[n_agents, obs_dim]")
        norm = cls(mean.shape[0], mean.shape[1], clip=float(state["clip"]),
                   epsilon=float(state["epsilon"]))
        norm.rms.load(mean, np.asarray(state["var"], dtype=np.float64), state["count"])
        return norm


class RewardNormalizer:
    """Per-agent reward scaling by the std of the running discounted return, in one market
    or in K markets at once.

    - One market (``n_markets=None``): rewards ``(N,)``; agent i's running return
      G_i ← γ·G_i + r_i is one sample a step of agent i's statistics
      (:meth:`RunningMeanStd.update`).
    - K markets (``n_markets=K``): rewards ``(K, N)``; each market keeps its own running
      return G_ki ← γ·G_ki + r_ki, and agent i's statistics merge its K returns of each
      step (:meth:`RunningMeanStd.update_batch`), so agent i's scale is the std of its
      returns over all markets. With K = 1 this is the one-market normaliser bit for bit
      for finite rewards (tested).

    The scaled reward is r̂ = clip(r / sqrt(Var_i[G] + ε), −c, c), clipped by
    ``np.minimum`` then ``np.maximum``: the same bits as ``np.clip(·, −c, c)`` for every
    finite or infinite value (±0.0 included). A NaN stays NaN: a NaN (or infinite) reward
    of agent i makes that scaled reward NaN, its running return NaN until :meth:`reset`,
    and agent i's variance NaN for good (:meth:`reset` keeps it), so from that step on
    every scaled reward of agent i, in every market, is NaN; other agents are untouched.

    Args:
        n_agents: N.
        gamma: discount γ in [0, 1] of the running returns.
        clip: bound c > 0 of the scaled reward (``inf``: no clipping).
        epsilon: ε >= 0 added to the variance.
        n_markets: K >= 1 markets whose rewards ``(K, N)`` arrive together, or None for
            one market's rewards ``(N,)``.

    Attributes:
        returns: the running returns, ``(N,)`` or ``(K, N)`` like the rewards.
        rms: agent i's statistics of its returns, shape ``(N,)``.

    Raises:
        ValueError: for an argument outside its range.
    """

    def __init__(self, n_agents: int, gamma: float, clip: float = 10.0,
                 epsilon: float = 1e-8, n_markets: int | None = None) -> None:
        n = check_int("n_agents", n_agents, 1)
        self.n_markets = None if n_markets is None else check_int("n_markets", n_markets, 1)
        if not is_real_or_inf(clip) or not clip > 0:
            fail("clip", clip, "a real > 0 (inf: no clipping)")
        self.gamma = check_number("gamma", gamma, 0.0, 1.0)
        self.clip, self.epsilon = float(clip), check_number("epsilon", epsilon, 0.0)
        self.n_agents = n
        shape = (n,) if self.n_markets is None else (self.n_markets, n)
        self.returns = np.zeros(shape, dtype=np.float64)
        self.rms = RunningMeanStd((n,))

    def __call__(self, reward: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Update the returns and agent statistics with this step's rewards; return r / std.

        Args:
            reward: ``(N,)``, or ``(K, N)`` with ``n_markets=K``.
            out: optional array of ``reward``'s shape (any float dtype) to write into.

        Returns:
            The scaled rewards as float64 (``out`` when given).
        """
        returns = self.returns
        if np.shape(reward) != returns.shape:
            # the shape, not the array: a long reward vector would flood the message
            fail("reward.shape", np.shape(reward), f"{returns.shape} (n_markets="
                 f"{self.n_markets}, n_agents={self.n_agents})")
        returns *= self.gamma
        returns += reward
        if self.n_markets is None:
            self.rms.update(returns)
        else:
            self.rms.update_batch(returns)
        scaled = reward / np.sqrt(self.rms.var + self.epsilon)
        np.minimum(scaled, self.clip, out=scaled)  # = np.clip(scaled, -c, c), NaN kept
        np.maximum(scaled, -self.clip, out=scaled)
        if out is None:
            return scaled
        np.copyto(out, scaled, casting="same_kind")
        return out

    def reset(self) -> None:
        """Start new discounted returns (new episodes), keeping the variance estimate."""
        self.returns[:] = 0.0


class NormalizedPolicy:
    """A policy that normalises raw model observations before the wrapped policy acts.

    This is what a trained PPO agent population is outside the trainer (and what a
    checkpoint loads): ``act(raw_obs)`` equals ``policy.act(normalizer(raw_obs))`` with the
    normaliser frozen. Other attributes (``n_agents``, ``state_dict`` ...) are the wrapped
    policy's.

    Args:
        policy: an object with ``act(obs, generator=None, deterministic=False)`` and
            ``agent_view(i)`` (e.g. a :class:`~mesa_econ.policies.PolicyEnsemble`).
        normalizer: the observation normaliser (not copied: training updates show through).
    """

    def __init__(self, policy: Any, normalizer: ObsNormalizer) -> None:
        self.policy = policy
        self.normalizer = normalizer

    def __getattr__(self, name: str) -> Any:
        if name in ("policy", "normalizer"):  # not yet set (e.g. during copy/unpickle)
            raise AttributeError(name)
        return getattr(self.policy, name)

    def __repr__(self) -> str:
        p = self.policy
        text = f"{type(p).__name__} of {getattr(p, 'n_agents', '?')} agents"
        if getattr(p, "n_groups", None) is not None:
            text += f" in {p.n_groups} groups"
        if getattr(p, "hidden", None) is not None:
            text += f", hidden={tuple(p.hidden)}"
        return f"NormalizedPolicy({text}, normalized=True, clip={self.normalizer.clip})"

    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.normalizer.normalize(obs.detach().cpu().numpy()))

    def __call__(self, obs: torch.Tensor) -> Any:
        return self.policy(self._normalize(obs))

    def act(self, obs: torch.Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(u, log_prob, value)`` for raw observations ``[..., N, obs_dim]``."""
        return self.policy.act(self._normalize(obs), generator=generator,
                               deterministic=deterministic)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None,
               deterministic: bool = False) -> torch.Tensor:
        """The actions u of :meth:`act` alone, for raw observations (see
        :func:`~mesa_econ.policies.actor_critic.act_only`)."""
        return act_only(self.policy, self._normalize(obs), generator, deterministic)

    def evaluate(self, obs: torch.Tensor,
                 u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_prob, entropy, value)`` of actions ``u`` for raw observations."""
        return self.policy.evaluate(self._normalize(obs), u)

    def agent_view(self, i: int) -> NormalizedPolicyView:
        """Agent i's policy, normalising with agent i's statistics."""
        return NormalizedPolicyView(self.policy.agent_view(i), self.normalizer, i)


class NormalizedPolicyView:
    """Agent i's row of a :class:`NormalizedPolicy`: raw observations in, actions out.

    What ``agent.policy`` is in a model driven by a checkpoint saved with an observation
    normaliser: ``act(raw_obs)`` equals ``view.act(normalizer.normalize_agent(raw_obs, i))``
    with the normaliser frozen. Other attributes (``ensemble``, ``group``, ``module()``
    ...) are the wrapped view's.

    Args:
        view: agent i's view of the wrapped policy (e.g. a
            :class:`~mesa_econ.policies.PolicyView`).
        normalizer: the population's observation normaliser (not copied).
        agent: the agent's index i (its row of the normaliser's statistics).
    """

    def __init__(self, view: Any, normalizer: ObsNormalizer, agent: int) -> None:
        self.view, self.normalizer, self.agent = view, normalizer, int(agent)

    def __getattr__(self, name: str) -> Any:
        if name in ("view", "normalizer", "agent"):
            raise AttributeError(name)
        return getattr(self.view, name)

    def __repr__(self) -> str:
        return (f"NormalizedPolicyView("
                f"{describe_row(self.view, f'normalized=True, clip={self.normalizer.clip}')})")

    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.detach().cpu().numpy()
        return torch.from_numpy(self.normalizer.normalize_agent(x, self.agent))

    def __call__(self, obs: torch.Tensor) -> Any:
        return self.view(self._normalize(obs))

    def act(self, obs: torch.Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(u, log_prob, value)`` of agent i for raw observations."""
        return self.view.act(self._normalize(obs), generator=generator,
                             deterministic=deterministic)

    def evaluate(self, obs: torch.Tensor,
                 u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_prob, entropy, value)`` of agent i's actions for raw observations."""
        return self.view.evaluate(self._normalize(obs), u)
