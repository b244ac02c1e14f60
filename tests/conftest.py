"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from mesa_econ.policies import PolicyEnsemble
from mesa_econ.rl.buffer import RolloutBuffer


def _random_rollout(ens: PolicyEnsemble, horizon: int, seed: int) -> RolloutBuffer:
    """A rollout of the ensemble's own actions on random observations, random returns."""
    g = torch.Generator().manual_seed(seed)
    buf = RolloutBuffer(horizon, ens.n_agents, ens.obs_dim, ens.act_dim)
    with torch.no_grad():
        buf.obs.copy_(torch.randn(buf.obs.shape, generator=g))
        u, logp, value = ens.act(buf.obs, generator=g)
    buf.actions.copy_(u)
    buf.logprobs.copy_(logp)
    buf.values.copy_(value)
    buf.advantages.copy_(torch.randn(buf.advantages.shape, generator=g) * 3.0 + 1.0)
    buf.returns.copy_(buf.values + buf.advantages)
    return buf


@pytest.fixture
def random_rollout() -> Callable[[PolicyEnsemble, int, int], RolloutBuffer]:
    """``random_rollout(ens, horizon, seed)``: a filled buffer for testing PPO updates."""
    return _random_rollout
