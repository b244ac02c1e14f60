"""Validated configuration for markets, rewards and policies.

Every field is checked in ``__post_init__``; a bad value raises ``ValueError`` naming the
field, the value and the valid range, so that a mistyped parameter fails at construction
instead of turning into NaN prices a hundred steps later.

Per-asset parameters (``kappa``, ``lam``, ``theta`` ...) accept a scalar (the same for every
asset) or a sequence of length ``n_assets``; :meth:`MarketConfig.per_asset` broadcasts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from mesa_econ._validation import (
    check_bool,
    check_choice,
    check_indices,
    check_int,
    check_mapping,
    check_number,
    check_per_asset,
    check_positive_ints,
    check_real,
    fail,
)

__all__ = [  # the validators are re-exported: their home is mesa_econ._validation
    "CURVE_KINDS", "GRAPH_KINDS", "GRAPH_PARAMS", "MarketConfig", "ModelConfig",
    "PolicyConfig", "RewardConfig", "check_choice", "check_int", "check_number",
    "check_real", "field_names",
]

CURVE_KINDS = ("linear", "logarithmic", "exponential", "sigmoid", "power")
GRAPH_KINDS = ("complete", "watts_strogatz", "erdos_renyi", "barabasi_albert", "empty")
GRAPH_PARAMS: dict[str, dict[str, int | float]] = {
    "complete": {}, "empty": {}, "watts_strogatz": {"k": 4, "p": 0.1},
    "erdos_renyi": {"p": 0.1}, "barabasi_albert": {"m": 2}}
"""Each graph kind's generator parameters and their defaults (a user graph takes none)."""
SETTLEMENTS = ("curve", "spot")
COOPERATIVE_SCOPES = ("all", "neighbours")
PROFIT_MARKS = ("liquidation", "quote")
STABILITY_KINDS = ("shared", "attributed")

PerAsset = float | Sequence[float]

_PER_ASSET_BOUNDS = (("kappa", 0.0), ("lam", 0.0), ("theta", 0.0), ("sigma0", 0.0),
                     ("sigma1", 0.0), ("sigma_eta", 0.0), ("factor_std", 0.0),
                     ("zeta", -np.inf), ("factor_mean", -np.inf), ("psi", -np.inf),
                     ("yield_rate", 0.0), ("congestion_fee", 0.0))
_SCALAR_BOUNDS = (("nu", 0.0, False), ("dt", 0.0, True), ("income", 0.0, False),
                  ("initial_capital", 0.0, True), ("initial_holdings", 0.0, False),
                  ("trade_scale", 0.0, True), ("price_floor", 0.0, True),
                  ("shock_size", -np.inf, False))


def _check_graph_params(graph: Any, params: Any, n: int) -> dict[str, Any]:
    """``graph_params`` as a dict: only the kind's own keys (none for the complete, the
    empty or a user graph), ``k`` and ``m`` integers below n_agents, ``p`` a probability."""
    keys = GRAPH_PARAMS.get(graph, {}) if isinstance(graph, str) else {}
    params = check_mapping("graph_params", params)
    for key in params:
        if key not in keys:
            kind = f"the {graph} graph" if isinstance(graph, str) else "a user graph"
            fail(f"graph_params {key}", params[key], f"no such parameter: {kind} takes "
                 f"{' and '.join(keys) if keys else 'none'}")
    settings = {**keys, **params}
    if "k" in settings:  # watts_strogatz: k nearest neighbours in the ring
        check_int("graph_params k", settings["k"], 1, n - 1)
    if "m" in settings:  # barabasi_albert: edges from each new node
        check_int("graph_params m", settings["m"], 1, n - 1)
    if "p" in settings:
        check_number("graph_params p", settings["p"], 0.0, 1.0)
    return params


@dataclass(frozen=True)
class MarketConfig:
    """The market: agents, assets, bonding curves, price dynamics and the graph.

    Symbols follow the paper (§2-§5); ``docs/equations.md`` maps each to its function.
    """

    n_agents: int = 50
    """N, number of trader agents (>= 1)."""
    n_assets: int = 3
    """M, number of assets (>= 1)."""
    curve: str = "exponential"
    """Bonding curve kind f_j (§3.1): one of CURVE_KINDS."""
    curve_params: Mapping[str, PerAsset] = field(default_factory=dict)
    """Keyword parameters of the curve (see ``curves.make_curve``); defaults per kind."""
    graph: Any = "complete"
    """Interaction graph (§5.3): a kind in GRAPH_KINDS or a networkx graph on N nodes."""
    graph_params: Mapping[str, Any] = field(default_factory=dict)
    """Generator parameters: k and p (watts_strogatz), p (erdos_renyi), m (barabasi_albert)."""
    nu: float = 0.0
    """ν, peer-influence weight (§5.3), >= 0."""
    peer_cap: float | None = None
    """Cap on the forced part of an executed order, in units of trade_scale: ν Σ_k w_ik a_kj
    is clipped to ±peer_cap·trade_scale (> 0). None (default): uncapped, the paper's §5.3,
    where one agent's huge order forces its neighbours to trade as much (docs/model.md)."""
    kappa: PerAsset = 0.0
    """κ_j, price impact per unit of net order flow (§3.2), >= 0."""
    lam: PerAsset = 0.0
    """λ_j, weight of excess demand D_j - S_j (§3.2), >= 0."""
    theta: PerAsset = 1.0
    """θ_j, mean-reversion rate of the price deviation (§3.3 drift), θ·dt in [0, 2)."""
    sigma0: PerAsset = 0.0
    """σ0_j, constant part of the SDE volatility σ(P) = σ0 + σ1·P (§3.3), >= 0."""
    sigma1: PerAsset = 0.0
    """σ1_j, price-proportional part of the SDE volatility (§3.3), >= 0."""
    zeta: PerAsset = 0.0
    """ζ_j, loading of the stochastic factor Z_j on the price deviation, real."""
    sigma_eta: PerAsset = 0.01
    """σ_η,j, std of the i.i.d. quote noise η_j (§3.1), >= 0."""
    dt: float = 1.0
    """Euler-Maruyama time step of the deviation SDE, > 0."""
    factor_mean: PerAsset = 0.0
    """m_j, mean of the stochastic factor Z_j ~ N(m_j, s_j²) (§2.1)."""
    factor_std: PerAsset = 0.1
    """s_j, std of the stochastic factor Z_j (§2.1), >= 0."""
    income: float = 0.0
    """I, external income added to every agent's capital each step (§5.2), >= 0."""
    psi: PerAsset = 0.0
    """ψ_j, tokens minted (>0) or burned (<0) per step, spread pro rata (§5.1)."""
    settlement: str = "curve"
    """'curve' (uniform clearing price, exact reserve) or 'spot' (paper's literal §5.2)."""
    initial_capital: float = 1000.0
    """B_i(0) for every agent, > 0."""
    initial_holdings: float = 10.0
    """H_ij(0) for every agent and asset, >= 0."""
    trade_scale: float = 1.0
    """Volume of a full-size order: a policy output u maps to trade_scale·clip(u, -1, 1)."""
    price_floor: float = 1e-9
    """Lowest quoted price; the quote f(S) + X + η is clipped to it (prices stay > 0)."""
    shock_step: int | None = None
    """Step at which a spike is added to Z (shock recovery, §9); None for no shock."""
    shock_size: float = 0.0
    """Size of the spike added to Z_j at shock_step."""
    shock_assets: tuple[int, ...] | None = None
    """Assets hit by the shock (None: all)."""
    shock_decay: float = 0.0
    """Fraction of the spike kept each following step, in [0, 1)."""
    yield_rate: PerAsset = 0.0
    """y_j >= 0: each step agent i receives y_j·Z_j·H_ij(t+1) in cash from an external
    account (negative when Z_j < 0; a payment is capped at the agent's capital). With
    Z_j ~ N(m_j, s_j²), y_j·m_j is the token's carry and y_j·(Z_j − m_j) the news agents
    observe before trading: a motive to trade that is not a pump (docs/model.md)."""
    fee: float = 0.0
    """Trading fee, a fraction in [0, 1) of the traded value |ã_ij|·p̄_j, paid by buyers and
    sellers alike to the external account."""
    capacity: PerAsset | None = None
    """C_j > 0, capacity of each resource (use value and utilisation, §9); None: unbounded."""
    congestion_fee: PerAsset = 0.0
    """c_j >= 0, paid each step per unit of supply above capacity C_j, shared by the holders
    pro rata (H_ij·c_j·max(S_j − C_j, 0)/S_j) to the external account: over capacity,
    units bring no use value and cost money (§9 resource network). Needs ``capacity``."""
    horizon: int = 128
    """H, the episode length (>= 1); the observation carries min(t, H)/H."""
    population_seed: int | None = None
    """Seed of the graph and the drawn needs d_ij (None: drawn from the model's rng), so
    that episodes with different noise seeds share one population."""

    def __post_init__(self) -> None:
        check_int("n_agents", self.n_agents, 1)
        m = check_int("n_assets", self.n_assets, 1)
        check_choice("curve", self.curve, CURVE_KINDS)
        curve_params = check_mapping("curve_params", self.curve_params)
        for name, value in curve_params.items():  # bounds: the curve's (curves.make_curve)
            check_per_asset(f"curve_params {name}", value, m)
        object.__setattr__(self, "curve_params", curve_params)
        if isinstance(self.graph, str):
            check_choice("graph", self.graph, GRAPH_KINDS)
        elif not hasattr(self.graph, "number_of_nodes"):
            fail("graph", self.graph, f"one of {list(GRAPH_KINDS)} or a networkx graph")
        elif self.graph.number_of_nodes() != self.n_agents:
            fail("graph", f"<graph with {self.graph.number_of_nodes()} nodes>",
                 f"a networkx graph with n_agents={self.n_agents} nodes")
        object.__setattr__(self, "graph_params",
                           _check_graph_params(self.graph, self.graph_params, self.n_agents))
        for name, low, low_open in _SCALAR_BOUNDS:
            check_number(name, getattr(self, name), low, low_open=low_open)
        for name, low in _PER_ASSET_BOUNDS:
            check_per_asset(name, getattr(self, name), m, low)
        if self.peer_cap is not None:
            check_number("peer_cap", self.peer_cap, 0.0, low_open=True)
        if np.any(self.per_asset("theta") * self.dt >= 2.0):
            fail("theta", self.theta, f"theta*dt in [0, 2) for a stable Euler step (dt={self.dt})")
        check_choice("settlement", self.settlement, SETTLEMENTS)
        if self.shock_step is not None:
            check_int("shock_step", self.shock_step, 0)
        check_number("shock_decay", self.shock_decay, 0.0, 1.0, high_open=True)
        if self.shock_assets is not None:
            object.__setattr__(self, "shock_assets",
                               check_indices("shock_assets", self.shock_assets, m))
        check_number("fee", self.fee, 0.0, 1.0, high_open=True)
        if self.capacity is not None:
            check_per_asset("capacity", self.capacity, m, 0.0, low_open=True)
        if np.any(self.per_asset("congestion_fee") > 0) and self.capacity is None:
            fail("congestion_fee", self.congestion_fee, "0 when capacity is None (set a "
                 "capacity for the fee to apply above)")
        check_int("horizon", self.horizon, 1)
        if self.population_seed is not None:
            check_int("population_seed", self.population_seed, 0)

    def graph_settings(self) -> dict[str, Any]:
        """The graph generator's parameters: ``graph_params`` over the kind's defaults."""
        defaults = GRAPH_PARAMS.get(self.graph, {}) if isinstance(self.graph, str) else {}
        return {**defaults, **self.graph_params}

    def per_asset(self, name: str) -> np.ndarray:
        """The named per-asset parameter broadcast to a float array of shape (M,)."""
        return np.broadcast_to(np.asarray(getattr(self, name), dtype=float),
                               (self.n_assets,)).copy()


@dataclass(frozen=True)
class RewardConfig:
    """Reward composition (§4): profit + stability + cooperative + use value."""

    profit_weight: float = 1.0
    """Weight of the mark-to-market profit reward (§4.1), >= 0."""
    omega: float = 0.0
    """ω, penalty per unit of absolute price change Σ_j |ΔP_j| (§4.2), >= 0."""
    rho: float = 0.0
    """ρ, weight of the other agents' profit (§4.3), >= 0."""
    cooperative_scope: str = "all"
    """'all' sums over every k != i (the paper); 'neighbours' over graph neighbours only.
    On the complete graph every other agent is a neighbour: the model then records 'all'."""
    use_value: float = 0.0
    """Value per used unit per step (resource network, §9), >= 0: units held up to the
    agent's need d_ij, scaled down pro rata where the users' total exceeds capacity C_j."""
    profit_mark: str = "liquidation"
    """How holdings are marked in the profit reward and in ``model.wealth`` (§4.1):
    'liquidation' marks H_ij at its share of the reserve, H_ij·reserve_j/S_j (the marks of
    all agents sum to the reserve, so no one earns reward from paper gains); 'quote' is the
    paper's literal H_ij·P_j at the quoted price (teaches a pump on a convex curve)."""
    stability: str = "shared"
    """'shared': every agent pays ω Σ_j |ΔP_j| (the paper, §4.2); 'attributed': agent i pays
    ω Σ_j (|ΔP_j| − |ΔP_j without agent i's executed trade|), noise unattributed."""

    def __post_init__(self) -> None:
        for name in ("profit_weight", "omega", "rho", "use_value"):
            check_number(name, getattr(self, name), 0.0)
        check_choice("cooperative_scope", self.cooperative_scope, COOPERATIVE_SCOPES)
        check_choice("profit_mark", self.profit_mark, PROFIT_MARKS)
        check_choice("stability", self.stability, STABILITY_KINDS)


POLICY_KINDS = ("actor_critic", "random", "random_clipped", "hold", "mean_reversion",
                "informed", "need_aware")


@dataclass(frozen=True)
class PolicyConfig:
    """Which policy drives the agents."""

    kind: str = "actor_critic"
    """'actor_critic' (default: each agent's own PyTorch actor-critic, untrained until a
    learner trains it), 'checkpoint:PATH' (trained ones), or a scripted baseline chosen by
    name: 'random', 'random_clipped' (clipped to ±trade_scale), 'hold', 'mean_reversion',
    'informed', 'need_aware'."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of each agent's actor and critic MLPs."""
    n_groups: int | None = None
    """Number of policy groups sharing weights (None: one policy per agent)."""
    random_scale: float = 1.0
    """Std of the random baseline's Gaussian orders, in units of trade_scale."""
    reversion_strength: float = 1.0
    """Gain of the mean-reversion baseline: order = -gain * (P - f(S)) / f(S)."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not (self.kind in POLICY_KINDS
                                                  or self.kind.startswith("checkpoint:")):
            fail("policy", self.kind, f"one of {list(POLICY_KINDS)} or 'checkpoint:PATH'")
        object.__setattr__(self, "hidden", check_positive_ints("hidden", self.hidden))
        if self.n_groups is not None:
            check_int("n_groups", self.n_groups, 1)
        check_number("random_scale", self.random_scale, 0.0)
        check_number("reversion_strength", self.reversion_strength, 0.0)


@dataclass(frozen=True)
class ModelConfig:
    """Everything an ``EconomyModel`` needs: market, rewards, policy, data collection."""

    market: MarketConfig = field(default_factory=MarketConfig)
    rewards: RewardConfig = field(default_factory=RewardConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    collect_agents: bool = False
    """Record per-agent data (capital, wealth, reward) in the DataCollector each step."""
    collect_every: int = 1
    """Collect DataCollector rows every k steps (0: only the initial row, e.g. in training)."""
    torch_threads: int | None = 1
    """torch.set_num_threads for this process (None: leave torch's setting alone)."""
    reporters: str | tuple[str, ...] = "default"
    """The DataCollector's model columns (:mod:`mesa_econ.collector`): a preset,
    ``"default"``, ``"rmw"`` (the reference workload's P_j, HHI_j, mean capital) or
    ``"none"``, or a sequence of reporter names (kept as a tuple). None means
    ``"default"``. It changes what is recorded, never the run."""

    def __post_init__(self) -> None:
        for name, cls in (("market", MarketConfig), ("rewards", RewardConfig),
                          ("policy", PolicyConfig)):
            if not isinstance(getattr(self, name), cls):
                fail(name, getattr(self, name), f"a {cls.__name__}")
        if self.policy.n_groups is not None and self.policy.n_groups > self.market.n_agents:
            fail("n_groups", self.policy.n_groups, f"at most n_agents={self.market.n_agents}")
        object.__setattr__(self, "collect_agents",
                           check_bool("collect_agents", self.collect_agents))
        if self.torch_threads is not None:
            check_int("torch_threads", self.torch_threads, 1)
        check_int("collect_every", self.collect_every, 0)
        object.__setattr__(self, "reporters", _check_reporters(self.reporters))


def _check_reporters(spec: Any) -> str | tuple[str, ...]:
    """``reporters`` validated: a preset name, or the reporter names as a tuple."""
    # reporter_sets imports neither config (no cycle) nor Mesa
    from mesa_econ.reporter_sets import resolve_reporters

    if spec is None:
        return "default"
    resolve_reporters(spec)  # ValueError naming reporters and the valid choices
    return spec if isinstance(spec, str) else tuple(spec)


def field_names(cls: type) -> tuple[str, ...]:
    """Names of a config dataclass's fields (used to route keyword arguments)."""
    return tuple(f.name for f in fields(cls))
