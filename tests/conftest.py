"""Shared pytest fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _checkpoint_model_in_fresh_process(market: dict[str, Any], path: Path) -> list[str]:
    """Build a model driven by the checkpoint at ``path`` in a fresh interpreter, step it
    once; return [its agent 0's policy class name, the sorted mesa_econ.rl modules loaded]."""
    code = ("import sys\n"
            "from mesa_econ.model import EconomyModel\n"
            f"model = EconomyModel(**{market!r}, policy={'checkpoint:' + str(path)!r}, rng=1)\n"
            "model.step()\n"
            "print(type(model.traders[0].policy).__name__)\n"
            "print(sorted(m for m in sys.modules if m.startswith('mesa_econ.rl')))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True).stdout.splitlines()


@pytest.fixture
def checkpoint_model_in_fresh_process() -> Callable[[dict[str, Any], Path], list[str]]:
    """:func:`_checkpoint_model_in_fresh_process` (no model module imported beforehand)."""
    return _checkpoint_model_in_fresh_process
