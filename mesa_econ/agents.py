"""Trader agents: Mesa agents that are views onto their row of the model's arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from mesa.discrete_space import FixedAgent

if TYPE_CHECKING:
    from mesa_econ.model import EconomyModel

__all__ = ["TraderAgent"]


class TraderAgent(FixedAgent):
    """A trader i: capital B_i, holdings H_i, and a policy π_i (§2).

    The agent holds no market state of its own: ``capital``, ``holdings``, ``wealth`` and
    ``reward`` read row ``row`` of the model's arrays, so a step is a few vectorised calls
    and Mesa's AgentSet, ``select`` and agent reporters still see up-to-date values. The
    agent sits on node ``row`` of the model's ``mesa.discrete_space.Network``.

    Attributes:
        row: index i of this agent in the model's arrays (0-based, = graph node).
    """

    def __init__(self, model: EconomyModel, row: int) -> None:
        super().__init__(model)
        self.row = row

    @property
    def capital(self) -> float:
        """B_i, the agent's base-currency capital."""
        return float(self.model.capital[self.row])

    @property
    def holdings(self) -> np.ndarray:
        """H_i, the agent's holdings of each asset (a read-only view)."""
        return self.model.holdings[self.row]

    @property
    def wealth(self) -> float:
        """Wealth B_i + Σ_j H_ij v_j, v the model's profit mark (``model.token_marks``)."""
        return float(self.model.wealth[self.row])

    @property
    def net_position(self) -> float:
        """Value of the agent's holdings Σ_j H_ij P_j."""
        return float(self.model.holdings[self.row] @ self.model.prices)

    @property
    def reward(self) -> float:
        """The reward r_i received in the last step (0 before the first step)."""
        return float(self.model.last_rewards[self.row])

    @property
    def policy(self) -> Any:
        """This agent's policy π_i.

        For learning policies a :class:`~mesa_econ.policies.PolicyView`: callable on an
        observation, giving exactly the model's batched ensemble output for row i. For
        scripted baselines the (shared) scripted policy object.
        """
        return self.model.policy_of(self.row)

    def observation(self) -> np.ndarray:
        """The agent's observation S_i = [B_i, H_i, P, Z], normalised (§2.1)."""
        return self.model.observations()[self.row]

    def step(self) -> None:
        """Agents act in one batched call from the model; per-agent stepping is a no-op."""
