"""Agent i's policy as a view onto a :class:`~mesa_econ.policies.PolicyEnsemble`.

``agent.policy`` in the Mesa model is a :class:`PolicyView`: one agent's row of the
stacked ensemble, computed through the same stacked weights and the same op sequence, so
it equals the ensemble's row for that agent (see the exactness note below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from mesa_econ.policies.actor_critic import (
    ActorCritic,
    check_action,
    check_obs,
    gaussian_entropy,
    gaussian_log_prob,
    sample_gaussian,
)

if TYPE_CHECKING:
    from mesa_econ.policies.ensemble import PolicyEnsemble

__all__ = ["PolicyView", "describe_row"]

Tensor = torch.Tensor


def describe_row(view: Any, normalized: str) -> str:
    """The inside of an agent policy's repr: which row of which ensemble, and its sizes.

    Args:
        view: an agent's view (attributes ``agent``, ``group``, ``ensemble`` where it has
            them; ``ensemble.hidden``, ``n_agents``, ``n_groups`` likewise).
        normalized: what to say about observation normalisation, e.g. ``"normalized=False"``.

    Returns:
        e.g. ``"agent=7, group=3, hidden=(16, 16), normalized=False, ensemble=PolicyEnsemble
        of 10 agents in 5 groups"``.
    """
    parts = [f"agent={getattr(view, 'agent', '?')}"]
    if getattr(view, "group", None) is not None:
        parts.append(f"group={view.group}")
    ensemble = getattr(view, "ensemble", None)
    if getattr(ensemble, "hidden", None) is not None:
        parts.append(f"hidden={tuple(ensemble.hidden)}")
    parts.append(normalized)
    if ensemble is not None:
        text = f"ensemble={type(ensemble).__name__} of {getattr(ensemble, 'n_agents', '?')} agents"
        n_groups = getattr(ensemble, "n_groups", None)
        parts.append(text if n_groups is None else f"{text} in {n_groups} groups")
    return ", ".join(parts)


class PolicyView:
    """Agent i's policy π_i: its row of a :class:`PolicyEnsemble`, usable on its own.

    ``view(obs)`` runs the same stacked weights (sliced to the agent's group) through the
    same op sequence as the ensemble. When G < N the agent's rows are placed in a batch of
    the same height as the ensemble's grouped batch (the input repeated ``ceil(N/G)``
    times), because MKL's GEMM rounds differently for different row counts.

    Exactness: with one intra-op thread (the model's default) and hidden widths that are
    multiples of 16 (the default ``(64, 64)``), the output equals row i of the ensemble's
    output bit for bit (tested with ``torch.equal``). Otherwise the two agree to float32
    rounding (~1e-7, tested within 1e-6). On this build (torch 2.13 CPU, MKL) differences
    were seen only for layer widths that are not a multiple of 16 floats and only for
    agents other than the first of the batch, which points at MKL choosing its kernel by
    memory alignment; with several threads MKL may also split one product differently
    from a batch of G.

    Args:
        ensemble: the ensemble holding the weights (not copied: training it changes the view).
        agent: the agent's index i in [0, N).
    """

    def __init__(self, ensemble: PolicyEnsemble, agent: int) -> None:
        self.group = ensemble.group_index(agent)
        self.ensemble = ensemble
        self.agent = int(agent)
        self._position = ensemble._position[self.agent]

    def __repr__(self) -> str:
        return f"PolicyView({describe_row(self, 'normalized=False')})"

    def __call__(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.forward(obs)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mean, log std and value for obs ``[obs_dim]`` or ``[B, obs_dim]``.

        Returns:
            ``(mean, log_std, value)`` of shapes ``[..., act_dim]``, ``[..., act_dim]``, ``[...]``.
        """
        ens = self.ensemble
        check_obs(obs, ens.obs_dim)
        if obs.ndim > 2:
            raise ValueError(
                f"obs has shape {tuple(obs.shape)}: expected [obs_dim] or "
                f"[B, obs_dim] with obs_dim={ens.obs_dim}"
            )
        x = obs.reshape(-1, ens.obs_dim)  # [B, D]
        batch = x.shape[0]
        xg = (x.repeat(ens._slots, 1) if ens._slots > 1 else x).unsqueeze(0)
        mean, value = ens._stacked(xg, slice(self.group, self.group + 1))
        rows = slice(self._position * batch, (self._position + 1) * batch)
        mean, value = mean[0, rows], value[0, rows, 0]
        log_std = ens.log_std[self.group].expand_as(mean)
        if obs.ndim == 1:
            return mean[0], log_std[0], value[0]
        return mean, log_std, value

    def act(
        self, obs: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sample u ~ N(mean, σ²) for this agent; see :meth:`PolicyEnsemble.act`.

        ``generator`` defaults to the ensemble's generator.
        """
        mean, log_std, value = self(obs)
        u = (
            mean
            if deterministic
            else sample_gaussian(mean, log_std, generator or self.ensemble.generator)
        )
        return u, gaussian_log_prob(u, mean, log_std), value

    def evaluate(self, obs: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-probability of ``u``, entropy and value for this agent."""
        mean, log_std, value = self(obs)
        check_action(u, mean)
        return gaussian_log_prob(u, mean, log_std), gaussian_entropy(log_std), value

    def module(self) -> ActorCritic:
        """A standalone copy of this agent's policy (see :meth:`PolicyEnsemble.to_module`)."""
        return self.ensemble.to_module(self.agent)
