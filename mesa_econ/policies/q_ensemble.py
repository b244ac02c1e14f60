"""Every agent's mean-field Q-network as stacked tensors, factorised per asset (§6.2).

Agent i's action is a trade size per asset chosen from a grid of K levels
``u ∈ {-1, ..., 1}`` (volume = trade_scale · u), so the joint action space of one agent has
K^M elements. The Q-function is factorised over assets (action branching, Tavakoli et al.
2018): one shared torso and one K-way head per asset,

    Q_i(s, ā, a) = (1/M) Σ_j Q_ij(s, ā, a_j),

so a forward pass costs O(M·K) outputs instead of K^M and the greedy action is the per-asset
argmax. ā is agent i's mean-field input (Yang et al. 2018): the weighted mean over its graph
neighbours of their trade sizes u_k at the previous step,

    ā_i = Σ_k w_ik u_k / Σ_k w_ik   (complete graph: the mean over all k ≠ i),

which stands in for the other agents' actions a_{−i} in Q_i(s, a_i, a_{−i}).

The N networks are stored like :class:`~mesa_econ.policies.PolicyEnsemble`: each linear
layer is a weight ``[N, in, out]`` and a bias ``[N, 1, out]``, and one ``baddbmm`` per
layer evaluates all agents. :class:`QEnsemble` is also the policy object a checkpoint stores
(``act`` / ``agent_view``): it keeps the last joint action to form ā at the next step.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mesa_econ.config import check_int
from mesa_econ.policies.actor_critic import check_obs, fresh_generator, orthogonal_weight

__all__ = ["QAgentView", "QEnsemble", "graph_edges", "neighbour_mean"]

Tensor = torch.Tensor
HIDDEN_GAIN = float(np.sqrt(2.0))
"""Orthogonal-init gain of the ReLU hidden layers."""
HEAD_GAIN = 1.0
"""Orthogonal-init gain of the Q heads."""


def graph_edges(adjacency: Any, n_agents: int) -> tuple[Tensor, Tensor]:
    """The interaction graph as ``(edge_index [2, E], edge_weight [E])`` tensors.

    Args:
        adjacency: ``model.adjacency``: a scipy sparse (N, N) matrix with w_ik in row i,
            column k (zero diagonal), or ``None`` for the complete graph.
        n_agents: N.

    Returns:
        Row 0 of ``edge_index`` is the receiving agent i, row 1 the neighbour k. Empty
        (E = 0) for ``adjacency=None``; use ``complete_graph=True`` then.
    """
    if adjacency is None:
        return torch.zeros(2, 0, dtype=torch.long), torch.zeros(0)
    coo = adjacency.tocoo()
    if coo.shape != (n_agents, n_agents):
        raise ValueError(f"adjacency has shape {coo.shape}: expected (n_agents, n_agents)="
                         f"({n_agents}, {n_agents})")
    keep = coo.row != coo.col
    index = torch.as_tensor(np.stack([coo.row[keep], coo.col[keep]]), dtype=torch.long)
    return index, torch.as_tensor(coo.data[keep], dtype=torch.float32)


def neighbour_mean(actions: Tensor, edge_index: Tensor, edge_weight: Tensor,
                   complete_graph: bool) -> Tensor:
    """Mean-field action of every agent: its neighbours' weighted mean action (§6.2).

    Args:
        actions: u_k, ``[..., N, M]``.
        edge_index, edge_weight: from :func:`graph_edges` (ignored for a complete graph).
        complete_graph: use every other agent as a neighbour.

    Returns:
        ā, ``[..., N, M]``: ā_i = Σ_k w_ik u_k / Σ_k w_ik; zero for an agent without
        neighbours (or N = 1).
    """
    n = actions.shape[-2]
    if complete_graph:
        if n == 1:
            return torch.zeros_like(actions)
        return (actions.sum(-2, keepdim=True) - actions) / (n - 1)
    receiver, sender = edge_index[0], edge_index[1]
    weight = edge_weight.to(actions.dtype)
    total = torch.zeros_like(actions).index_add_(-2, receiver,
                                                 actions.index_select(-2, sender) * weight[:, None])
    degree = torch.zeros(n, dtype=actions.dtype).index_add_(0, receiver, weight)
    safe = torch.where(degree > 0, degree, torch.ones_like(degree))
    return torch.where(degree[:, None] > 0, total / safe[:, None], torch.zeros_like(total))


class QEnsemble(nn.Module):
    """N per-asset-factorised, mean-field Q-networks with stacked weights (§6.2).

    Args:
        n_agents: N (>= 1).
        obs_dim: width of an agent's observation.
        act_dim: M, number of assets (one K-way head each).
        n_levels: K, grid points of the trade size per asset, ``linspace(-1, 1, K)`` (>= 2).
        hidden: widths of the ReLU hidden layers.
        mean_field: append the neighbours' mean action ā (M values) to the input.
        complete_graph: the interaction graph is complete (no edges are stored).
        n_edges: E, number of stored directed edges (set by :meth:`set_graph`).
        generator: source of the initial weights and of ``act``'s exploration;
            ``None``: a fresh generator seeded from OS entropy (not reproducible).

    Attributes:
        weights, biases: ``nn.ParameterList`` of W ``[N, in, out]`` and b ``[N, 1, out]``;
            the last layer has M·K outputs (asset-major).
        levels: buffer ``[K]``, the grid of trade sizes u.
        edge_index, edge_weight: buffers describing the graph (saved with the weights).
        last_action: ``[N, M]``, the joint action of the previous step (zeros at start).
            It belongs to one market: :meth:`act` resets it (nobody has traded) when it is
            called with a different generator than the previous call, since every
            ``EconomyModel`` passes its own ``torch_generator``; :meth:`reset_state` resets
            it explicitly.
        epsilon: exploration rate of :meth:`act` when not deterministic (default 0: greedy).
    """

    def __init__(self, n_agents: int, obs_dim: int, act_dim: int, n_levels: int = 5,
                 hidden: Sequence[int] = (64, 64), mean_field: bool = True,
                 complete_graph: bool = True, n_edges: int = 0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n_agents = check_int("n_agents", n_agents, 1)
        self.obs_dim = check_int("obs_dim", obs_dim, 1)
        self.act_dim = check_int("act_dim", act_dim, 1)
        self.n_levels = check_int("n_levels", n_levels, 2)
        self.hidden = tuple(check_int("hidden", h, 1) for h in hidden)
        if not self.hidden:
            raise ValueError("hidden=() is invalid: expected at least one hidden layer width")
        self.mean_field, self.complete_graph = bool(mean_field), bool(complete_graph)
        self.generator = generator if generator is not None else fresh_generator()
        self.epsilon = 0.0
        in_dim = self.obs_dim + (self.act_dim if self.mean_field else 0)
        sizes = (in_dim, *self.hidden, self.act_dim * self.n_levels)
        weights, biases = [], []
        for k, (a, b) in enumerate(itertools.pairwise(sizes)):
            gain = HEAD_GAIN if k == len(sizes) - 2 else HIDDEN_GAIN
            drawn = [orthogonal_weight(a, b, gain, self.generator).T for _ in range(n_agents)]
            weights.append(nn.Parameter(torch.stack(drawn).contiguous()))
            biases.append(nn.Parameter(torch.zeros(n_agents, 1, b)))
        self.weights, self.biases = nn.ParameterList(weights), nn.ParameterList(biases)
        self.register_buffer("levels", torch.linspace(-1.0, 1.0, self.n_levels))
        self.register_buffer("edge_index",
                             torch.zeros(2, check_int("n_edges", n_edges, 0), dtype=torch.long))
        self.register_buffer("edge_weight", torch.zeros(int(n_edges)))
        self.register_buffer("last_action", torch.zeros(n_agents, act_dim), persistent=False)
        self._market: torch.Generator | None = None  # whose steps last_action belongs to

    @classmethod
    def for_model(cls, model: Any, n_levels: int = 5, hidden: Sequence[int] = (64, 64),
                  mean_field: bool = True) -> QEnsemble:
        """A Q ensemble sized for ``model``, on its graph, drawing from its torch generator."""
        index, weight = graph_edges(model.adjacency, model.n_agents)
        q = cls(model.n_agents, model.obs_dim, model.n_assets, n_levels=n_levels, hidden=hidden,
                mean_field=mean_field, complete_graph=model.adjacency is None,
                n_edges=index.shape[1], generator=model.torch_generator)
        q.edge_index.copy_(index)
        q.edge_weight.copy_(weight)
        return q

    def checkpoint_kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments (what a checkpoint's JSON stores as policy_kwargs)."""
        return {"n_agents": self.n_agents, "obs_dim": self.obs_dim, "act_dim": self.act_dim,
                "n_levels": self.n_levels, "hidden": list(self.hidden),
                "mean_field": self.mean_field, "complete_graph": self.complete_graph,
                "n_edges": int(self.edge_index.shape[1])}

    # ------------------------------------------------------------------ mean field
    def mean_action(self, actions: Tensor | None = None) -> Tensor:
        """ā for every agent from joint actions ``[..., N, M]`` (default: :attr:`last_action`)."""
        actions = self.last_action if actions is None else actions
        return neighbour_mean(actions, self.edge_index, self.edge_weight, self.complete_graph)

    def remember(self, actions: Tensor, generator: torch.Generator | None = None) -> None:
        """Record the joint action just executed (the next step's ā) in the market of
        ``generator`` (default :attr:`generator`); used by trainers that act themselves."""
        self.last_action.copy_(actions)
        self._market = generator if generator is not None else self.generator

    def reset_state(self) -> None:
        """Forget the previous joint action (start of a new episode: nobody has traded)."""
        self.last_action.zero_()
        self._market = None

    # ------------------------------------------------------------------ Q values
    def _inputs(self, obs: Tensor, mean_action: Tensor | None) -> Tensor:
        check_obs(obs, self.obs_dim)
        if obs.ndim < 2 or obs.shape[-2] != self.n_agents:
            raise ValueError(f"obs has shape {tuple(obs.shape)}: expected [..., n_agents="
                             f"{self.n_agents}, obs_dim={self.obs_dim}]")
        if not self.mean_field:
            return obs
        if mean_action is None or mean_action.shape != (*obs.shape[:-1], self.act_dim):
            shape = None if mean_action is None else tuple(mean_action.shape)
            raise ValueError(f"mean_action has shape {shape}: expected "
                             f"{(*obs.shape[:-1], self.act_dim)}")
        return torch.cat([obs, mean_action.to(obs.dtype)], dim=-1)

    def forward(self, obs: Tensor, mean_action: Tensor | None = None) -> Tensor:
        """Per-asset Q values Q_ij(s, ā, k) of every agent in one batched call.

        Args:
            obs: ``[..., N, obs_dim]``.
            mean_action: ā ``[..., N, M]`` (required when ``mean_field``).

        Returns:
            ``[..., N, M, K]``.
        """
        x = self._inputs(obs, mean_action)
        lead = x.shape[:-2]
        h = x.reshape(-1, self.n_agents, x.shape[-1]).transpose(0, 1)  # [N, B, in]
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        q = h.transpose(0, 1).reshape(*lead, self.n_agents, self.act_dim, self.n_levels)
        return q

    def greedy(self, q: Tensor) -> Tensor:
        """Per-asset argmax level index ``[..., N, M]`` of per-asset Q values."""
        return q.argmax(-1)

    def explore(self, greedy: Tensor, epsilon: float, generator: torch.Generator) -> Tensor:
        """ε-greedy per agent and asset: with probability ε a uniform level, else greedy.

        Draws (uniforms, then levels, each of ``greedy``'s shape) from ``generator``.
        """
        if epsilon <= 0.0:
            return greedy
        coin = torch.rand(greedy.shape, generator=generator) < epsilon
        random = torch.randint(self.n_levels, greedy.shape, generator=generator)
        return torch.where(coin, random, greedy)

    # ------------------------------------------------------------------ policy API
    def act(self, obs: Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Every agent's trade sizes for one step; remembers them for the next ā.

        Args:
            obs: ``[N, obs_dim]``.
            generator: exploration source (default :attr:`generator`); used only when
                ``epsilon > 0`` and not ``deterministic``. A generator other than the
                previous call's marks another market and resets :attr:`last_action`.
            deterministic: greedy actions.

        Returns:
            ``(u, log_prob, value)``: u ``[N, M]`` grid values; log-probability of u under
            the ε-greedy policy (summed over assets) and max_a Q_i(s, ā, a), both ``[N]``.
        """
        if obs.ndim != 2:
            raise ValueError(f"obs has shape {tuple(obs.shape)}: expected [n_agents, obs_dim] "
                             "(one step; the mean-field state advances with every call)")
        generator = generator if generator is not None else self.generator
        if generator is not self._market:  # another market (or the first call): ā = 0
            self.reset_state()
            self._market = generator
        with torch.no_grad():
            q = self(obs, self.mean_action() if self.mean_field else None)
            greedy = self.greedy(q)
            eps = 0.0 if deterministic else float(self.epsilon)
            index = self.explore(greedy, eps, generator)
            prob = eps / self.n_levels + (1.0 - eps) * (index == greedy).to(q.dtype)
            u = self.levels[index]
            self.remember(u, generator)
        return u, torch.log(prob).sum(-1), q.max(-1).values.mean(-1)

    def agent_view(self, i: int) -> QAgentView:
        """Agent i's Q-network as a :class:`QAgentView` onto these weights."""
        return QAgentView(self, i)

    def to_module(self, i: int) -> nn.Sequential:
        """A standalone ``nn.Sequential`` (Linear/ReLU) holding a copy of agent i's weights.

        Its output for input ``[obs, ā]`` is agent i's ``[M·K]`` Q values (asset-major).
        """
        QAgentView(self, i)  # validates i
        layers: list[nn.Module] = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            linear = torch.nn.utils.skip_init(nn.Linear, w.shape[1], w.shape[2])
            with torch.no_grad():
                linear.weight.copy_(w[i].T)
                linear.bias.copy_(b[i, 0])
            layers.append(linear)
            if k < len(self.weights) - 1:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)


class QAgentView:
    """Agent i's factorised Q-network: its row of a :class:`QEnsemble` (shares the weights).

    Args:
        ensemble: the stacked Q networks.
        agent: i in [0, N).
    """

    def __init__(self, ensemble: QEnsemble, agent: int) -> None:
        if isinstance(agent, bool) or not isinstance(agent, numbers.Integral) \
                or not 0 <= agent < ensemble.n_agents:
            raise IndexError(f"agent index {agent!r} is out of range [0, {ensemble.n_agents})")
        self.ensemble, self.agent = ensemble, int(agent)

    def __repr__(self) -> str:
        return f"QAgentView(agent={self.agent}, ensemble of {self.ensemble.n_agents} agents)"

    def q_values(self, obs: Tensor, mean_action: Tensor | None = None) -> Tensor:
        """Q_ij(s, ā, k) for obs ``[..., obs_dim]`` (and ā ``[..., M]``): ``[..., M, K]``."""
        ens = self.ensemble
        check_obs(obs, ens.obs_dim)
        if ens.mean_field:
            if mean_action is None:
                mean_action = ens.mean_action()[self.agent].expand(*obs.shape[:-1], ens.act_dim)
            x = torch.cat([obs, mean_action.to(obs.dtype)], dim=-1)
        else:
            x = obs
        lead = x.shape[:-1]
        h = x.reshape(1, -1, x.shape[-1])
        for k, (w, b) in enumerate(zip(ens.weights, ens.biases, strict=True)):
            i = slice(self.agent, self.agent + 1)
            h = torch.baddbmm(b[i], h, w[i])
            if k < len(ens.weights) - 1:
                h = torch.relu(h)
        return h.reshape(*lead, ens.act_dim, ens.n_levels)

    def act(self, obs: Tensor, generator: torch.Generator | None = None,
            deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """Greedy (or ε-greedy) trade sizes for this agent given the ensemble's current ā.

        Does not advance the ensemble's mean-field state. Returns ``(u, log_prob, value)``
        with u ``[..., M]``, log_prob and value ``[...]``.
        """
        ens = self.ensemble
        with torch.no_grad():
            q = self.q_values(obs)
            greedy = q.argmax(-1)
            eps = 0.0 if deterministic else float(ens.epsilon)
            index = ens.explore(greedy, eps, generator if generator is not None
                                else ens.generator)
            prob = eps / ens.n_levels + (1.0 - eps) * (index == greedy).to(q.dtype)
        return ens.levels[index], torch.log(prob).sum(-1), q.max(-1).values.mean(-1)


def _register() -> None:
    """Make Q ensembles savable/loadable as checkpoint policy_class ``"q_ensemble"``."""
    from mesa_econ.policies.registry import register_policy_class

    def build(kwargs: dict) -> QEnsemble:  # a throwaway generator: weights get overwritten
        return QEnsemble(**kwargs, generator=torch.Generator())

    register_policy_class("q_ensemble", QEnsemble, build=build,
                          kwargs_of=QEnsemble.checkpoint_kwargs)


_register()
