"""Building an EconomyModel: keyword routing, the market's arrays, graph, agents, policy.

The functions turn the constructor's flat keywords into a :class:`~mesa_econ.config.
ModelConfig`, check ``rng``/``seed``/``demand`` and build the graph, its Mesa network and
the needs; :class:`ModelSetup` is the mixin of :class:`~mesa_econ.model.EconomyModel`
whose methods fill in the model's arrays, space, policy and bookkeeping, in the order
``EconomyModel._init_from_config`` calls them (the order of the generators' draws).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import fields
from typing import Any

import networkx as nx
import numpy as np
from mesa.discrete_space import Network

from mesa_econ._model_state import PRICE_WINDOW, _freeze, _freeze_state
from mesa_econ._validation import check_seed, fail, real_array
from mesa_econ.agents import TraderAgent
from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig, RewardConfig
from mesa_econ.curves import BondingCurve, make_curve
from mesa_econ.dynamics import MarketParams, MarketState

__all__ = ["ModelSetup", "default_curve_params"]


def default_curve_params(kind: str, initial_supply: float, n_agents: int) -> dict[str, float]:
    """Curve parameters scaled to the initial supply S0 when the user gives none.

    The exponential default is the reference workload's f(S) = exp(0.05·S/N); the others
    put the price near 1 at S0 so that initial capital buys comparable amounts.
    """
    s0 = max(float(initial_supply), 1.0)
    if kind == "exponential":
        return {"a": 1.0, "k": 0.05 / n_agents}
    if kind == "linear":
        return {"slope": 1.0 / s0, "intercept": 0.5}
    if kind == "logarithmic":
        return {"k": 1.0 / np.log1p(s0)}
    if kind == "sigmoid":
        return {"height": 2.0, "midpoint": s0, "steepness": 4.0 / s0}
    return {"a": 1.0 / s0, "n": 1.0}  # power (Bancor)


def _split_kwargs(kwargs: dict[str, Any]) -> ModelConfig:
    """Route flat keyword arguments to the config dataclasses."""
    groups: dict[type, dict[str, Any]] = {MarketConfig: {}, RewardConfig: {}, PolicyConfig: {}}
    top: dict[str, Any] = {}
    names = {cls: {f.name for f in fields(cls)} for cls in groups}
    for key, value in kwargs.items():
        if key == "policy":
            groups[PolicyConfig]["kind"] = value
            continue
        for cls, cls_names in names.items():
            if key in cls_names:
                groups[cls][key] = value
                break
        else:
            top[key] = value
    return ModelConfig(market=MarketConfig(**groups[MarketConfig]),
                       rewards=RewardConfig(**groups[RewardConfig]),
                       policy=PolicyConfig(**groups[PolicyConfig]), **top)


def _build_graph(cfg: MarketConfig, seed: int) -> nx.Graph:
    """The interaction graph (§5.3); ``graph_params`` were validated by the config."""
    n, gp = cfg.n_agents, cfg.graph_settings()
    if not isinstance(cfg.graph, str):
        return nx.convert_node_labels_to_integers(cfg.graph)
    if cfg.graph == "complete":
        return nx.complete_graph(n)
    if cfg.graph == "empty":
        return nx.empty_graph(n)
    if cfg.graph == "watts_strogatz":
        return nx.watts_strogatz_graph(n, int(gp["k"]), float(gp["p"]), seed=seed)
    if cfg.graph == "erdos_renyi":
        return nx.fast_gnp_random_graph(n, float(gp["p"]), seed=seed)
    return nx.barabasi_albert_graph(n, int(gp["m"]), seed=seed)


def _complete_neighbours(cfg: ModelConfig) -> ModelConfig:
    """On the complete graph every other agent is a neighbour: the cooperative scope
    'neighbours' is then 'all' (Σ_{k≠i} r_k, in O(N) without an adjacency matrix)."""
    if cfg.market.graph == "complete" and cfg.rewards.cooperative_scope == "neighbours":
        rewards = dataclasses.replace(cfg.rewards, cooperative_scope="all")
        return dataclasses.replace(cfg, rewards=rewards)
    return cfg


def _make_network(graph: nx.Graph, random: Any) -> Network:
    """A Mesa Network over the graph, without Mesa 3.5's unseeded default layout."""
    if "layout" in inspect.signature(Network.__init__).parameters:
        return Network(graph, capacity=1, random=random, layout=None)
    return Network(graph, capacity=1, random=random)


def _check_inputs(cfg: ModelConfig, rng: Any, seed: Any,
                  demand: Any) -> tuple[Any, float | np.ndarray | None]:
    """``(rng for Mesa, demand)`` checked: ``rng`` or ``seed`` (not both), the needs."""
    rng = check_seed("rng", rng)
    seed = check_seed("seed", seed)
    if rng is not None and seed is not None:
        raise ValueError(f"rng={rng!r} and seed={seed!r} are both given: pass one of them")
    demand = _check_demand(demand, cfg.market.n_agents, cfg.market.n_assets)
    if cfg.rewards.use_value > 0 and demand is None:
        fail("demand", None, "a mean need or an (n_agents, n_assets) array when "
             "use_value > 0")
    if rng is None and seed is not None:
        rng = seed  # rng=42 equals seed=42 on every Mesa 3.x, without 3.5's warning
    return rng, demand


def _check_demand(demand: Any, n: int, m: int) -> float | np.ndarray | None:
    """``demand`` validated: None, a finite mean need >= 0, or finite needs >= 0 of shape
    (n_agents, n_assets) (a float array)."""
    if demand is None:
        return None
    valid = f"a finite mean need >= 0 or finite needs >= 0 of shape ({n}, {m})"
    arr = real_array("demand", demand, (0, 2), finite=False)
    if (arr.ndim == 2 and arr.shape != (n, m)) or not np.isfinite(arr).all() \
            or (arr < 0).any():
        fail("demand", demand, valid)
    return float(arr) if arr.ndim == 0 else arr.copy()


def _make_demand(demand: float | np.ndarray | None, n: int, m: int,
                 rng: np.random.Generator) -> np.ndarray | None:
    """Needs d_ij: the (N, M) array, or d_ij ~ U(0, 2·mean) drawn from a mean need."""
    if demand is None or isinstance(demand, np.ndarray):
        return demand
    return rng.uniform(0.0, 2.0 * demand, size=(n, m))


class ModelSetup:
    """The set-up steps of :class:`~mesa_econ.model.EconomyModel` that fill in its arrays."""

    config: ModelConfig
    n_agents: int
    n_assets: int
    obs_dim: int
    random: Any
    torch_generator: Any
    agents_by_type: Any
    _state: MarketState

    def _build_market(self, cfg: ModelConfig) -> None:
        """Parameters, curve and the initial state: S(0) = N·H0, P(0) = f(S(0))."""
        mc = cfg.market
        rc = cfg.rewards
        self.params = dataclasses.replace(
            MarketParams.from_config(mc),
            attribute_price=rc.stability == "attributed" and rc.omega > 0)
        self.capacity = mc.per_asset("capacity") if mc.capacity is not None else None
        self._factor_std = mc.per_asset("factor_std")
        self._sigma_eta = mc.per_asset("sigma_eta")
        self._sqrt_dt = float(np.sqrt(mc.dt))
        n, m = self.n_agents, self.n_assets
        holdings = np.full((n, m), float(mc.initial_holdings))
        supply = holdings.sum(axis=0)
        params = dict(mc.curve_params) or default_curve_params(mc.curve, supply[0], n)
        self.curve: BondingCurve = make_curve(mc.curve, n_assets=m, **params)
        curve_price = self.curve.price(supply)
        self._state = MarketState(
            capital=np.full(n, float(mc.initial_capital)), holdings=holdings, supply=supply,
            reserve=self.curve.reserve(supply), deviation=np.zeros(m),
            price=np.maximum(curve_price, mc.price_floor))
        _freeze_state(self._state)
        self._curve_price = _freeze(curve_price)
        self.initial_supply = _freeze(supply.copy())  # S(0), for the supply drift

    def _build_space(self, mc: MarketConfig, graph_seed: int) -> None:
        """The graph (§5.3), its Mesa network, its adjacency and one agent per node."""
        self.graph = _build_graph(mc, seed=graph_seed)
        self.grid = _make_network(self.graph, self.random)
        if isinstance(mc.graph, str) and mc.graph == "complete":
            self.adjacency = None  # §5.3 Σ_{k≠i} computed in O(N·M)
        else:
            adj = nx.to_scipy_sparse_array(self.graph, nodelist=range(self.n_agents),
                                           format="csr", dtype=float)
            adj.setdiag(0.0)
            adj.eliminate_zeros()
            self.adjacency = adj
        cells = [self.grid[i] for i in range(self.n_agents)]  # public on Mesa 3.3 and 3.5
        for i, cell in enumerate(cells):
            agent = TraderAgent(self, i)
            agent.cell = cell
        self.traders = self.agents_by_type[TraderAgent]

    def _build_policy(self, pc: PolicyConfig) -> None:
        """The agents' policy: a PolicyEnsemble (learned) or a scripted baseline."""
        from mesa_econ import policies

        self.ensemble = None
        self.scripted = None
        if pc.kind in ("random", "random_clipped"):
            self.scripted = policies.RandomPolicy(scale=pc.random_scale,
                                                  clip=pc.kind == "random_clipped")
        elif pc.kind == "informed":
            self.scripted = policies.InformedPolicy()
        elif pc.kind == "need_aware":
            self.scripted = policies.NeedAwarePolicy()
        elif pc.kind == "hold":
            self.scripted = policies.HoldPolicy()
        elif pc.kind == "mean_reversion":
            self.scripted = policies.MeanReversionPolicy(strength=pc.reversion_strength)
        elif pc.kind == "actor_critic":
            self.ensemble = policies.PolicyEnsemble(
                self.n_agents, self.obs_dim, self.n_assets, hidden=pc.hidden,
                n_groups=pc.n_groups, generator=self.torch_generator)
        else:  # checkpoint:PATH
            from mesa_econ.policies.checkpoint import load_ensemble

            self.ensemble = load_ensemble(pc.kind.split(":", 1)[1], model=self)
        self._pending_orders: np.ndarray | None = None

    def _init_bookkeeping(self) -> None:
        """t = 0, nothing paid yet, the price window, the shock, and Z(0) drawn ahead."""
        m = self.n_assets
        self._shock = np.zeros(m)
        # whether Z carries the decaying shock: from the start with a scheduled shock, from
        # the first decaying apply_shock without one (a run without shocks never adds it)
        self._shock_live = self.config.market.shock_step is not None
        self.last_rewards = np.zeros(self.n_agents)
        self.last_breakdown = None
        self.last_info = None
        self.last_orders = np.zeros((self.n_agents, m))
        self.t = 0
        self.income_paid = 0.0
        self.yield_paid = 0.0
        self.fees_paid = 0.0
        self._window = np.empty((PRICE_WINDOW, m))
        self._window[0] = self._state.price
        self._window_len = 1
        self._wealth_cache: np.ndarray | None = None
        self._marks_cache: tuple[MarketState, np.ndarray] | None = None
        # Z for the coming step is drawn ahead, so observations() shows the agents the factors
        # that will move this step's price, whether they act inside step() or outside it.
        self.factors = self._draw_factors()
