"""PettingZoo ``ParallelEnv`` over :class:`~mesa_econ.model.EconomyModel` (optional extra).

Other multi-agent RL libraries (RLlib, TorchRL, BenchMARL, SuperSuit + SB3 ...) speak the
PettingZoo API; this adapter lets them train on the same market the package's own trainers
use. Every step all live traders act at once, as in the model:

- agents ``"trader_0" .. "trader_{N-1}"`` (row i of the model's arrays);
- observation of agent i: ``model.observations()[i]``, a float32 vector of width 1 + 3M
  ([B_i, H_i, P, Z] scaled, §2.1);
- action of agent i: a float32 vector u in [-1, 1]^M; the executed request is
  ``trade_scale · clip(u, -1, 1)`` (§2.2), exactly what the model does with a policy sample;
- reward of agent i: ``model.last_rewards[i]`` (§4, as configured);
- the economy is open-ended: no agent terminates; every agent is truncated after
  ``max_steps`` steps and then removed from :attr:`agents`.

Install with ``pip install mesa_econ[rl]``. The core package never imports this module, so
it works without PettingZoo; importing this module without it raises an ImportError that
names the extra.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np

try:
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("mesa_econ.env needs PettingZoo and Gymnasium: "
                      "pip install 'mesa_econ[rl]'") from exc

from mesa_econ.model import EconomyModel

__all__ = ["EconomyParallelEnv", "agent_name"]

_SEED_BOUND = 2**63 - 1


def agent_name(row: int) -> str:
    """The PettingZoo name of the trader in row ``row``: ``"trader_{row}"``."""
    return f"trader_{row}"


class EconomyParallelEnv(ParallelEnv):
    """All N traders of an :class:`EconomyModel` as a PettingZoo parallel environment.

    Args:
        max_steps: episode length in model steps (>= 1); every agent is truncated then.
        **model_kwargs: keyword arguments of :class:`EconomyModel` (market, reward and
            policy fields). ``rng``/``seed`` seed the first :meth:`reset` without a seed;
            later seedless resets draw fresh seeds from that stream, so a sequence of
            resets is reproducible. The model's own ``policy`` is never used to act.

    Attributes:
        possible_agents: ``["trader_0", ..., "trader_{N-1}"]``.
        agents: the agents still live in this episode (empty after truncation).
        model: the current :class:`EconomyModel` (rebuilt by every :meth:`reset`).

    Raises:
        ValueError: if ``max_steps`` is not an integer >= 1, or a model keyword is invalid.
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "mesa_econ_v0", "render_modes": [],
                                "is_parallelizable": True}
    render_mode: str | None = None
    """No render modes (PettingZoo's wrappers read this attribute)."""

    def __init__(self, max_steps: int = 100, **model_kwargs: Any) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, numbers.Integral) \
                or max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} is invalid: expected an integer >= 1")
        self.max_steps = int(max_steps)
        seed = model_kwargs.pop("rng", None)
        legacy_seed = model_kwargs.pop("seed", None)
        seed = seed if seed is not None else legacy_seed
        self._model_kwargs = dict(model_kwargs)
        # Built once, here, to validate the keywords and to size the spaces.
        self.model = EconomyModel(**self._model_kwargs, rng=seed)
        self._seed_stream = np.random.default_rng(_as_seed(seed))
        self._first_seed = seed
        n, m, d = self.model.n_agents, self.model.n_assets, self.model.obs_dim
        self.possible_agents = [agent_name(i) for i in range(n)]
        self.agents: list[str] = []
        self._row = {name: i for i, name in enumerate(self.possible_agents)}
        # B_i, H_i and P are >= 0 (no short sales, price floor); the factor Z is unbounded.
        low = np.zeros(d, dtype=np.float32)
        low[1 + 2 * m:] = -np.inf
        self._observation_spaces = {
            a: spaces.Box(low, np.full(d, np.inf, dtype=np.float32), dtype=np.float32)
            for a in self.possible_agents}
        self._action_spaces = {
            a: spaces.Box(-1.0, 1.0, shape=(m,), dtype=np.float32) for a in self.possible_agents}
        self._steps = 0

    # ------------------------------------------------------------------ spaces
    def observation_space(self, agent: str) -> spaces.Box:
        """Box of shape (1 + 3M,), float32, >= 0 except Z; the same object on every call."""
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        """Box(-1, 1, (M,), float32); the same object on every call."""
        return self._action_spaces[agent]

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None,
              options: dict | None = None) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        """Start a new episode on a freshly built model.

        Args:
            seed: the new model's ``rng``. ``None``: the seed given at construction for
                the first reset, then seeds drawn from a stream seeded by the last explicit
                seed (so ``reset(seed=s); reset(); reset()`` is reproducible).
            options: accepted for API compatibility and ignored (change the market by
                building a new environment with other keyword arguments).

        Returns:
            ``(observations, infos)`` keyed by agent name.
        """
        del options
        if seed is not None:
            self._seed_stream = np.random.default_rng(_as_seed(seed))
            model_seed = seed
        elif self._first_seed is not None:
            model_seed = self._first_seed
        else:
            model_seed = int(self._seed_stream.integers(_SEED_BOUND))
        self._first_seed = None
        self.model = EconomyModel(**self._model_kwargs, rng=model_seed)
        self.agents = list(self.possible_agents)
        self._steps = 0
        obs = self.model.observations()
        return ({a: obs[i] for i, a in enumerate(self.agents)},
                {a: {} for a in self.agents})

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Every live agent trades at once; the model advances one step.

        Args:
            actions: agent name → u in [-1, 1]^M (values outside are clipped). A live
                agent without an entry does not trade this step.

        Returns:
            ``(observations, rewards, terminations, truncations, infos)`` for the agents
            that acted; after ``max_steps`` steps all are truncated and :attr:`agents`
            becomes empty.

        Raises:
            ValueError: for an unknown or finished agent, or an action of the wrong shape
                or with non-finite values.
        """
        if not self.agents:
            raise ValueError("step() called with no live agents: call reset() first")
        m = self.model.n_assets
        u = np.zeros((self.model.n_agents, m))
        for name, action in actions.items():
            if name not in self._row or name not in self.agents:
                raise ValueError(f"actions has key {name!r}: expected one of the live agents "
                                 f"{self.agents[0]!r} .. {self.agents[-1]!r}")
            a = np.asarray(action, dtype=float).reshape(-1)
            if a.shape != (m,) or not np.all(np.isfinite(a)):
                raise ValueError(f"actions[{name!r}]={action!r} is invalid: expected {m} "
                                 "finite values in [-1, 1]")
            u[self._row[name]] = a
        self.model.submit_orders(self.model.trade_scale * np.clip(u, -1.0, 1.0))  # §2.2
        self.model.step()
        self._steps += 1
        acted = self.agents
        obs = self.model.observations()
        rewards = self.model.last_rewards
        done = self._steps >= self.max_steps
        result = ({a: obs[self._row[a]] for a in acted},
                  {a: float(rewards[self._row[a]]) for a in acted},
                  dict.fromkeys(acted, False), dict.fromkeys(acted, done),
                  {a: {} for a in acted})
        if done:
            self.agents = []
        return result

    def state(self) -> np.ndarray:
        """The global state: every agent's observation stacked, shape (N·(1 + 3M),), float32."""
        return self.model.observations().reshape(-1)

    def render(self) -> None:
        """No rendering here: use the Solara app (``solara run server.py``)."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def _as_seed(seed: Any) -> int | None:
    """An integer seed for the env's own seed stream (strings cast like the model does)."""
    if seed is None:
        return None
    if isinstance(seed, str):
        seed = int(seed.strip())
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(_SEED_BOUND))
    return int(seed)
