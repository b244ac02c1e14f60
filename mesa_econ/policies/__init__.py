"""Agent policies: a single actor-critic, the stacked ensemble, and scripted baselines.

- :class:`ActorCritic` is one agent's Gaussian actor-critic (CleanRL layout).
- :class:`PolicyEnsemble` stores every agent's (or group's) weights stacked and evaluates
  all agents in one batched call; :class:`PolicyView` is agent i's row of it.
- :class:`RandomPolicy`, :class:`HoldPolicy`, :class:`MeanReversionPolicy`,
  :class:`InformedPolicy`, :class:`NeedAwarePolicy` are scripted baselines returning
  trade volumes (N, M) from the model's state.
"""

from mesa_econ.policies.actor_critic import ActorCritic
from mesa_econ.policies.ensemble import PolicyEnsemble
from mesa_econ.policies.scripted import (
    HoldPolicy,
    InformedPolicy,
    MarketView,
    MeanReversionPolicy,
    NeedAwarePolicy,
    RandomPolicy,
    ScriptedPolicy,
)
from mesa_econ.policies.view import PolicyView

__all__ = [
    "ActorCritic",
    "HoldPolicy",
    "InformedPolicy",
    "MarketView",
    "MeanReversionPolicy",
    "NeedAwarePolicy",
    "PolicyEnsemble",
    "PolicyView",
    "RandomPolicy",
    "ScriptedPolicy",
]
