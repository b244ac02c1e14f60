"""All agents' actor-critics as stacked tensors, evaluated in one batched call.

A model with N learning agents holds one :class:`PolicyEnsemble` instead of N modules: each
linear layer is a weight ``W`` of shape ``[G, in, out]`` and a bias ``b`` of shape
``[G, 1, out]``, where G is the number of distinct policies (one per agent, or one per group
of agents sharing weights). A forward pass is a few ``torch.baddbmm`` calls with the
policies as the batch dimension, instead of a Python loop over N modules (see
``benchmarks/policy_forward.py``).

Groups are contiguous blocks: agent i belongs to group ``i·G // N``. With G < N the agents
of a group are stacked as extra rows of that group's matrix product ("grouping the batch"),
so no weight is ever copied per agent.

``agent.policy`` in the Mesa model is a :class:`PolicyView`: agent i's row of the ensemble,
computed through the same stacked weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mesa_econ.policies.actor_critic import (
    ActorCritic,
    check_action,
    check_architecture,
    check_obs,
    fresh_generator,
    gaussian_entropy,
    gaussian_log_prob,
    is_count,
    layer_specs,
    orthogonal_weight,
    sample_gaussian,
)
from mesa_econ.policies.stacked import NumpyMLP, mlp, plist
from mesa_econ.policies.view import PolicyView

Tensor = torch.Tensor


class PolicyEnsemble(nn.Module):
    """N Gaussian actor-critics (or G shared ones) with stacked weights.

    Group g is initialised exactly as the g-th :class:`ActorCritic` built sequentially from
    ``generator`` (same architecture, same draws in the same order), so an ensemble and a
    list of modules made from equal generator states hold equal weights.

    Args:
        n_agents: N, number of agents (>= 1).
        obs_dim: width of an agent's observation.
        act_dim: width of an agent's raw action u.
        hidden: hidden-layer widths of every actor and critic MLP.
        n_groups: G, number of distinct policies; agent i uses group ``i·G // N``
            (contiguous blocks). ``None`` means one policy per agent (G = N).
        init_log_std: initial value of every entry of ``log_std``.
        generator: source of the initial weights and default source of ``act``'s samples;
            ``None`` makes a fresh generator seeded from OS entropy (not reproducible).

    Attributes:
        critic_w, critic_b, actor_w, actor_b: ``nn.ParameterList`` of the stacked layers,
            hidden layers first and the head last: W ``[G, in, out]``, b ``[G, 1, out]``.
        log_std: ``nn.Parameter`` ``[G, act_dim]``.
        group_of: LongTensor buffer ``(N,)``, agent → group.
        generator: the default generator of :meth:`act`.

    Raises:
        ValueError: naming ``n_agents``, ``n_groups``, ``obs_dim``, ``act_dim``, ``hidden``
            or ``init_log_std`` when invalid.
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        n_groups: int | None = None,
        init_log_std: float = -0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.hidden = check_architecture(obs_dim, act_dim, hidden, init_log_std)
        if not is_count(n_agents):
            raise ValueError(f"n_agents={n_agents!r} is invalid: expected an integer >= 1")
        n_groups = n_agents if n_groups is None else n_groups
        if not is_count(n_groups, 1, n_agents):
            raise ValueError(
                f"n_groups={n_groups!r} is invalid: expected an integer in "
                f"[1, n_agents={n_agents}] (or None for one policy per agent)"
            )
        self.n_agents, self.n_groups = int(n_agents), int(n_groups)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.generator = generator if generator is not None else fresh_generator()
        self._init_weights(float(init_log_std))
        self._init_layout()

    def _init_weights(self, init_log_std: float) -> None:
        specs = layer_specs(self.obs_dim, self.act_dim, self.hidden)
        drawn: list[list[Tensor]] = [[] for _ in specs]
        for _ in range(self.n_groups):  # group by group: the stream of sequential modules
            for k, (_, in_dim, out_dim, gain) in enumerate(specs):
                drawn[k].append(orthogonal_weight(in_dim, out_dim, gain, self.generator).T)
        lists: dict[str, tuple[list[nn.Parameter], list[nn.Parameter]]] = {
            "critic": ([], []),
            "actor": ([], []),
        }
        for (net, _, out_dim, _), weights in zip(specs, drawn, strict=True):
            lists[net][0].append(nn.Parameter(torch.stack(weights).contiguous()))
            lists[net][1].append(nn.Parameter(torch.zeros(self.n_groups, 1, out_dim)))
        self.critic_w = nn.ParameterList(lists["critic"][0])
        self.critic_b = nn.ParameterList(lists["critic"][1])
        self.actor_w = nn.ParameterList(lists["actor"][0])
        self.actor_b = nn.ParameterList(lists["actor"][1])
        self.log_std = nn.Parameter(torch.full((self.n_groups, self.act_dim), init_log_std))

    def _init_layout(self) -> None:
        """Where each agent's rows sit in the grouped batch ``[G, slots·B, ·]``."""
        n, g = self.n_agents, self.n_groups
        group_of = torch.arange(n) * g // n
        counts = torch.bincount(group_of, minlength=g)
        starts = torch.cumsum(counts, 0) - counts
        position = torch.arange(n) - starts[group_of]
        self.register_buffer("group_of", group_of)
        self._slots = int(counts.max())  # rows per group: ceil(N / G)
        self._position = position.tolist()
        pad_index = slot_of = None
        if bool((counts != self._slots).any()):  # unequal blocks: pad with a repeated agent
            slot = torch.arange(self._slots)
            pad_index = starts[:, None] + torch.minimum(slot[None, :], counts[:, None] - 1)
            pad_index = pad_index.reshape(-1)
            slot_of = group_of * self._slots + position
        self.register_buffer("_pad_index", pad_index, persistent=False)
        self.register_buffer("_slot_of", slot_of, persistent=False)

    # ------------------------------------------------------------------ batched math
    def _mlp(self, net: str, xg: Tensor, groups: slice | None = None,
             train: bool = False) -> Tensor:
        """One stacked MLP (``net`` 'actor' or 'critic') on a grouped batch ``[G', R, in]``.

        ``groups`` selects the weights' slice (``None``: all G). Acting, the ensemble and
        every PolicyView run this one op sequence (:func:`~mesa_econ.policies.stacked.mlp`,
        whose choices of op depend on the full G and the row count R, never on the
        slice), so a view's row equals the ensemble's bit for bit. ``train=True`` (the
        PPO update, :meth:`evaluate_agents`) picks the fastest ops under autograd instead.
        """
        ws, bs = (self.actor_w, self.actor_b) if net == "actor" else (self.critic_w,
                                                                       self.critic_b)
        weights, biases = plist(ws), plist(bs)
        if groups is not None:
            weights = [w[groups] for w in weights]
            biases = [b[groups] for b in biases]
        return mlp(xg, weights, biases, self.n_groups, train)

    def _stacked(self, xg: Tensor, groups: slice | None = None) -> tuple[Tensor, Tensor]:
        """Both MLPs on a grouped batch ``xg`` ``[G', R, obs_dim]`` (see :meth:`_mlp`).

        Returns the mean ``[G', R, act_dim]`` and the value ``[G', R, 1]``.
        """
        return self._mlp("actor", xg, groups), self._mlp("critic", xg, groups)

    def _to_groups(self, x: Tensor) -> Tensor:
        """``[N, B, D]`` agents-first → ``[G, slots·B, D]`` grouped (no copy when G == N)."""
        if self.n_groups == self.n_agents:
            return x
        if self._pad_index is not None:
            x = x.index_select(0, self._pad_index)
        return x.reshape(self.n_groups, self._slots * x.shape[1], x.shape[2])

    def _from_groups(self, y: Tensor, batch: int) -> Tensor:
        """Inverse of :meth:`_to_groups`: ``[G, slots·B, k]`` → ``[N, B, k]``."""
        if self.n_groups == self.n_agents:
            return y
        y = y.reshape(self.n_groups * self._slots, batch, y.shape[-1])
        return y if self._slot_of is None else y.index_select(0, self._slot_of)

    def agent_log_std(self) -> Tensor:
        """Each agent's log std, ``[N, act_dim]`` (gathered by group when G < N)."""
        if self.n_groups == self.n_agents:
            return self.log_std
        return self.log_std.index_select(0, self.group_of)

    # ------------------------------------------------------------------ public API
    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every agent's policy mean, log std and value in one batched call.

        Args:
            obs: ``[N, obs_dim]`` (one step) or ``[T, N, obs_dim]`` (a rollout); any further
                leading dims are treated like T.

        Returns:
            ``(mean, log_std, value)`` of shapes ``[..., N, act_dim]``, ``[..., N, act_dim]``
            and ``[..., N]``.
        """
        xg, lead, batch = self._grouped_input(obs)
        mean = self._output(self._mlp("actor", xg), lead, batch, self.act_dim)
        value = self._output(self._mlp("critic", xg), lead, batch)
        return mean, self.agent_log_std().expand_as(mean), value

    def actor_mean(self, obs: Tensor) -> Tensor:
        """The policy means ``[..., N, act_dim]`` alone (the actor half of :meth:`forward`).

        Bit-identical to ``forward(obs)[0]``; skips the critic (for rollouts whose values
        are computed afterwards in one batch, see :meth:`critic_value`).
        """
        n = self.n_agents
        if obs.shape == (n, self.obs_dim) and self.n_groups == n:
            # one step of independent policies (a rollout's hot path): [N, 1, D] is already
            # the grouped batch, so the reshapes of the general case are skipped
            out = mlp(obs.unsqueeze(1), plist(self.actor_w), plist(self.actor_b), n)
            return out.view(n, self.act_dim)
        xg, lead, batch = self._grouped_input(obs)
        return self._output(self._mlp("actor", xg), lead, batch, self.act_dim)

    def numpy_actor(self) -> NumpyMLP | None:
        """The actors as a :class:`~mesa_econ.policies.stacked.NumpyMLP` for rollouts.

        Maps one step's observations ``[N, obs_dim]`` (float32 ndarray) to the policy means
        ``[N, act_dim]``, equal to :meth:`actor_mean`'s to float32 rounding and ~2x faster
        per step. ``None`` when agents share groups or the weights are not on the CPU
        (the rollout then uses :meth:`actor_mean`).
        """
        if self.n_groups != self.n_agents or self.log_std.device.type != "cpu":
            return None
        return NumpyMLP(plist(self.actor_w), plist(self.actor_b))

    def critic_value(self, obs: Tensor) -> Tensor:
        """The values V(s) ``[..., N]`` alone (bit-identical to ``forward(obs)[2]``)."""
        xg, lead, batch = self._grouped_input(obs)
        return self._output(self._mlp("critic", xg), lead, batch)

    def _grouped_input(self, obs: Tensor) -> tuple[Tensor, torch.Size, int]:
        """Validate ``obs [..., N, obs_dim]``; return it grouped, its leading dims, B."""
        check_obs(obs, self.obs_dim)
        if obs.ndim < 2 or obs.shape[-2] != self.n_agents:
            raise ValueError(
                f"obs has shape {tuple(obs.shape)}: expected [..., n_agents="
                f"{self.n_agents}, obs_dim={self.obs_dim}]"
            )
        x = obs.reshape(-1, self.n_agents, self.obs_dim).transpose(0, 1)  # [N, B, D]
        return self._to_groups(x), obs.shape[:-2], x.shape[1]

    def _output(self, y: Tensor, lead: torch.Size, batch: int, *width: int) -> Tensor:
        """A grouped output ``[G, slots·B, k]`` back to ``[..., N, *width]`` (k = Π width)."""
        return self._from_groups(y, batch).transpose(0, 1).reshape(*lead, self.n_agents, *width)

    def act(
        self, obs: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Sample every agent's raw action u ~ N(mean, σ²) in one call.

        Args:
            obs: ``[..., N, obs_dim]``.
            generator: source of the noise; defaults to :attr:`generator`.
            deterministic: return the means instead of samples.

        Returns:
            ``(u, log_prob, value)``: u ``[..., N, act_dim]``; log π(u|s) (summed over the
            action dims) and V(s), both ``[..., N]``.
        """
        mean, log_std, value = self(obs)
        u = mean if deterministic else sample_gaussian(mean, log_std, generator or self.generator)
        return u, gaussian_log_prob(u, mean, log_std), value

    def sample(
        self, obs: Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> Tensor:
        """The actions u of :meth:`act` alone, ``[..., N, act_dim]``.

        The same numbers as ``act(obs, generator, deterministic)[0]`` (the same means, the
        same draw from ``generator``) without the critic and the log-probability: what a
        model step needs.
        """
        mean = self.actor_mean(obs)
        if deterministic:
            return mean
        log_std = self.agent_log_std().expand_as(mean)
        return sample_gaussian(mean, log_std, generator or self.generator)

    def evaluate(self, obs: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Log-probability of given actions, entropy and value, each ``[..., N]``."""
        mean, log_std, value = self(obs)
        check_action(u, mean)
        return gaussian_log_prob(u, mean, log_std), gaussian_entropy(log_std), value

    def evaluate_agents(self, obs: Tensor, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`evaluate` in agent-major layout, for training updates.

        Args:
            obs: ``[N, B, obs_dim]`` (agent i's B observations in row i).
            u: ``[N, B, act_dim]`` raw actions.

        Returns:
            ``(log_prob [N, B], entropy [N], value [N, B])``. Equal to :meth:`evaluate` on
            the transposed inputs up to float32 rounding (~1e-6 relative; the products
            are grouped differently, see :meth:`_mlp`).
        """
        if obs.ndim != 3 or obs.shape[0] != self.n_agents or obs.shape[2] != self.obs_dim:
            raise ValueError(f"obs has shape {tuple(obs.shape)}: expected [n_agents="
                             f"{self.n_agents}, B, obs_dim={self.obs_dim}]")
        batch = obs.shape[1]
        if u.shape != (self.n_agents, batch, self.act_dim):
            raise ValueError(f"u has shape {tuple(u.shape)}: expected "
                             f"{(self.n_agents, batch, self.act_dim)}")
        xg = self._to_groups(obs)
        mean = self._from_groups(self._mlp("actor", xg, train=True), batch)
        value = self._from_groups(self._mlp("critic", xg, train=True), batch)[..., 0]
        log_std = self.agent_log_std()
        return gaussian_log_prob(u, mean, log_std.unsqueeze(1)), gaussian_entropy(log_std), value

    def agent_view(self, i: int) -> PolicyView:
        """Agent i's policy as a :class:`~mesa_econ.policies.view.PolicyView` onto this
        ensemble's weights."""
        return PolicyView(self, i)

    def group_index(self, i: int) -> int:
        """The group of agent i (raises IndexError outside [0, N))."""
        if not is_count(i, 0, self.n_agents - 1):
            raise IndexError(f"agent index {i!r} is out of range [0, {self.n_agents})")
        return int(self.group_of[i])

    def _layers(self) -> list[tuple[Tensor, Tensor]]:
        """Stacked (W, b) pairs in :func:`layer_specs` order (critic first, then actor)."""
        return [
            *zip(self.critic_w, self.critic_b, strict=True),
            *zip(self.actor_w, self.actor_b, strict=True),
        ]

    def to_module(self, i: int) -> ActorCritic:
        """A standalone :class:`ActorCritic` holding a copy of agent i's weights.

        The copy shares this ensemble's default generator (for ``act``).
        """
        group = self.group_index(i)
        # A fixed-seed throwaway generator: its initial weights are overwritten below.
        module = ActorCritic(self.obs_dim, self.act_dim, self.hidden, generator=torch.Generator())
        module.generator = self.generator
        module.to(device=self.log_std.device, dtype=self.log_std.dtype)
        with torch.no_grad():
            for layer, (w, b) in zip(_module_layers(module), self._layers(), strict=True):
                layer.weight.copy_(w[group].T)
                layer.bias.copy_(b[group, 0])
            module.log_std.copy_(self.log_std[group])
        return module

    def to_modules(self) -> list[ActorCritic]:
        """One standalone module per group (per agent when G = N): :meth:`load_modules`'s input."""
        return [self.to_module(i) for i in self._group_starts()]

    def _group_starts(self) -> list[int]:
        """The first agent of each group."""
        counts = torch.bincount(self.group_of, minlength=self.n_groups)
        return (torch.cumsum(counts, 0) - counts).tolist()

    def load_modules(self, modules: Sequence[ActorCritic]) -> None:
        """Copy the weights of one :class:`ActorCritic` per group into this ensemble.

        The inverse of :meth:`to_modules` (and of ``[to_module(i) for i in range(N)]`` when
        every agent has its own policy).

        Raises:
            ValueError: if the number of modules is not ``n_groups``, or a module's type,
                ``obs_dim``, ``act_dim``, ``hidden`` or a parameter shape does not match.
        """
        modules = list(modules)
        if len(modules) != self.n_groups:
            raise ValueError(
                f"modules has {len(modules)} entries: expected n_groups="
                f"{self.n_groups} (one ActorCritic per group)"
            )
        for k, module in enumerate(modules):
            if not isinstance(module, ActorCritic):
                raise ValueError(
                    f"modules[{k}] is a {type(module).__name__}: expected an ActorCritic"
                )
            for name in ("obs_dim", "act_dim", "hidden"):
                if getattr(module, name) != getattr(self, name):
                    raise ValueError(
                        f"modules[{k}].{name}={getattr(module, name)!r} does not "
                        f"match the ensemble's {name}={getattr(self, name)!r}"
                    )
            pairs = zip(_module_layers(module), self._layers(), strict=True)
            for j, (layer, (w, _)) in enumerate(pairs):
                if tuple(layer.weight.shape) != tuple(w.shape[:0:-1]):
                    raise ValueError(
                        f"modules[{k}] linear layer {j} has weight shape "
                        f"{tuple(layer.weight.shape)}: expected "
                        f"{tuple(w.shape[:0:-1])}"
                    )
        with torch.no_grad():
            for g, module in enumerate(modules):
                for layer, (w, b) in zip(_module_layers(module), self._layers(), strict=True):
                    w[g].copy_(layer.weight.T)
                    b[g, 0].copy_(layer.bias)
                self.log_std[g].copy_(module.log_std)


def _module_layers(module: ActorCritic) -> list[nn.Linear]:
    """A module's linear layers in :func:`layer_specs` order (critic first, then actor)."""
    return [
        m for net in (module.critic, module.actor_mean) for m in net if isinstance(m, nn.Linear)
    ]
