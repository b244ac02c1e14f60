"""Agent policies: a single actor-critic, the stacked ensemble, and scripted baselines.

- :class:`ActorCritic` is one agent's Gaussian actor-critic (CleanRL layout).
- :class:`PolicyEnsemble` stores every agent's (or group's) weights stacked and evaluates
  all agents in one batched call; :class:`PolicyView` is agent i's row of it.
- :class:`RandomPolicy`, :class:`HoldPolicy`, :class:`MeanReversionPolicy`,
  :class:`InformedPolicy`, :class:`NeedAwarePolicy` are scripted baselines returning
  trade volumes (N, M) from the model's state.
- :class:`NormalizedPolicy` runs a policy on normalised observations (a trained PPO
  population); :class:`NormalizedPolicyView` is agent i's row of it (``agent.policy`` in a
  model driven by a checkpoint). :class:`ObsNormalizer` and :class:`RewardNormalizer` are
  the per-agent running normalisers.
- :func:`load_policy` and :func:`load_ensemble` read checkpoints (safetensors + JSON,
  never pickle; see :mod:`mesa_econ.policies.checkpoint`); saving is in ``rl/``.
"""

from mesa_econ.policies.actor_critic import ActorCritic
from mesa_econ.policies.checkpoint import (
    load_ensemble,
    load_policy,
    read_metadata,
    register_policy_class,
)
from mesa_econ.policies.ensemble import PolicyEnsemble
from mesa_econ.policies.normalize import (
    NormalizedPolicy,
    NormalizedPolicyView,
    ObsNormalizer,
    RewardNormalizer,
    RunningMeanStd,
)
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
    "NormalizedPolicy",
    "NormalizedPolicyView",
    "ObsNormalizer",
    "PolicyEnsemble",
    "PolicyView",
    "RandomPolicy",
    "RewardNormalizer",
    "RunningMeanStd",
    "ScriptedPolicy",
    "load_ensemble",
    "load_policy",
    "read_metadata",
    "register_policy_class",
]
