"""Moved to :mod:`mesa_econ.policies.normalize` (the model runs normalised checkpoints and
must not import ``rl/``); this module re-exports its names so old imports keep working."""

from mesa_econ.policies.normalize import (
    NormalizedPolicy,
    NormalizedPolicyView,
    ObsNormalizer,
    RewardNormalizer,
    RunningMeanStd,
)

__all__ = ["NormalizedPolicy", "NormalizedPolicyView", "ObsNormalizer", "RewardNormalizer",
           "RunningMeanStd"]
