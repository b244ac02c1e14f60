"""Validated configuration for markets, rewards and policies.

Every field is checked in ``__post_init__``; a bad value raises ``ValueError`` naming the
field, the value and the valid range, so that a mistyped parameter fails at construction
instead of turning into NaN prices a hundred steps later.

Per-asset parameters (``kappa``, ``lam``, ``theta`` ...) accept a scalar (the same for every
asset) or a sequence of length ``n_assets``; :meth:`MarketConfig.per_asset` broadcasts them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

CURVE_KINDS = ("linear", "logarithmic", "exponential", "sigmoid", "power")
GRAPH_KINDS = ("complete", "watts_strogatz", "erdos_renyi", "barabasi_albert", "empty")
SETTLEMENTS = ("curve", "spot")
COOPERATIVE_SCOPES = ("all", "neighbours")
PROFIT_MARKS = ("liquidation", "quote")
STABILITY_KINDS = ("shared", "attributed")

PerAsset = float | Sequence[float]


def _fail(field_name: str, value: Any, valid: str) -> None:
    raise ValueError(f"{field_name}={value!r} is invalid: expected {valid}")


def check_real(field_name: str, value: Any, low: float = -math.inf, high: float = math.inf,
               *, low_open: bool = False, high_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` (scalar or array) is finite and within range.

    Args:
        field_name: name used in the error message.
        value: scalar or array-like of reals.
        low, high: bounds of the valid interval.
        low_open, high_open: exclude the bound itself.
    """
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        _fail(field_name, value, "a real number")
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    valid = f"a finite real in {lo}{low}, {high}{hi}"
    if not np.all(np.isfinite(arr)):
        _fail(field_name, value, valid)
    too_low = np.any(arr <= low) if low_open else np.any(arr < low)
    too_high = np.any(arr >= high) if high_open else np.any(arr > high)
    if too_low or too_high:
        _fail(field_name, value, valid)


def _check_per_asset(name: str, value: PerAsset, n_assets: int) -> None:
    if np.ndim(value) > 1 or (np.ndim(value) == 1 and len(value) != n_assets):
        _fail(name, value, f"a scalar or a sequence of length n_assets={n_assets}")


def check_int(field_name: str, value: Any, low: int | None = None,
              high: int | None = None) -> int:
    """Raise ``ValueError`` unless ``value`` is an integer (not a bool) in [low, high].

    Returns:
        ``value`` as a Python int.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(field_name, value, "an integer" if low is None else f"an integer >= {low}")
    if (low is not None and value < low) or (high is not None and value > high):
        valid = (f"an integer >= {low}" if high is None
                 else f"an integer in [{low if low is not None else '-inf'}, {high}]")
        _fail(field_name, value, valid)
    return int(value)


def check_number(field_name: str, value: Any, low: float = -math.inf,
                 high: float = math.inf, *, low_open: bool = False,
                 high_open: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is one finite real (not a bool, not an array)
    within the interval; the scalar counterpart of :func:`check_real`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        ok = False
    else:
        ok = (value > low if low_open else value >= low) \
            and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        _fail(field_name, value, f"a finite real in {lo}{low}, {high}{hi}")


def check_choice(field_name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        _fail(field_name, value, f"one of {list(choices)}")


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
        check_int("n_assets", self.n_assets, 1)
        check_choice("curve", self.curve, CURVE_KINDS)
        if not isinstance(self.graph, str):
            if not hasattr(self.graph, "number_of_nodes"):
                _fail("graph", self.graph, f"one of {list(GRAPH_KINDS)} or a networkx graph")
            if self.graph.number_of_nodes() != self.n_agents:
                _fail("graph", f"<graph with {self.graph.number_of_nodes()} nodes>",
                      f"a networkx graph with n_agents={self.n_agents} nodes")
        else:
            check_choice("graph", self.graph, GRAPH_KINDS)
        check_real("nu", self.nu, 0.0)
        if self.peer_cap is not None:
            check_number("peer_cap", self.peer_cap, 0.0, low_open=True)
        m = self.n_assets
        for name, low in (("kappa", 0.0), ("lam", 0.0), ("sigma0", 0.0), ("sigma1", 0.0),
                          ("sigma_eta", 0.0), ("factor_std", 0.0)):
            _check_per_asset(name, getattr(self, name), m)
            check_real(name, getattr(self, name), low)
        for name in ("zeta", "factor_mean", "psi"):
            _check_per_asset(name, getattr(self, name), m)
            check_real(name, getattr(self, name))
        check_real("dt", self.dt, 0.0, low_open=True)
        _check_per_asset("theta", self.theta, m)
        check_real("theta", self.theta, 0.0)
        theta_dt = np.asarray(self.theta, dtype=float) * self.dt
        if np.any(theta_dt >= 2.0):
            _fail("theta", self.theta, f"theta*dt in [0, 2) for a stable Euler step (dt={self.dt})")
        check_real("income", self.income, 0.0)
        check_choice("settlement", self.settlement, SETTLEMENTS)
        check_real("initial_capital", self.initial_capital, 0.0, low_open=True)
        check_real("initial_holdings", self.initial_holdings, 0.0)
        check_real("trade_scale", self.trade_scale, 0.0, low_open=True)
        check_real("price_floor", self.price_floor, 0.0, low_open=True)
        if self.shock_step is not None:
            check_int("shock_step", self.shock_step, 0)
        check_real("shock_size", self.shock_size)
        check_real("shock_decay", self.shock_decay, 0.0, 1.0, high_open=True)
        if self.shock_assets is not None:
            bad = [j for j in self.shock_assets if not 0 <= int(j) < m]
            if bad:
                _fail("shock_assets", self.shock_assets, f"asset indices in [0, {m - 1}]")
        _check_per_asset("yield_rate", self.yield_rate, m)
        check_real("yield_rate", self.yield_rate, 0.0)
        check_real("fee", self.fee, 0.0, 1.0, high_open=True)
        if self.capacity is not None:
            _check_per_asset("capacity", self.capacity, m)
            check_real("capacity", self.capacity, 0.0, low_open=True)
        _check_per_asset("congestion_fee", self.congestion_fee, m)
        check_real("congestion_fee", self.congestion_fee, 0.0)
        if np.any(np.asarray(self.congestion_fee) > 0) and self.capacity is None:
            _fail("congestion_fee", self.congestion_fee, "0 when capacity is None (set a "
                  "capacity for the fee to apply above)")
        check_int("horizon", self.horizon, 1)
        if self.population_seed is not None:
            check_int("population_seed", self.population_seed, 0)

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
    """'all' sums over every k != i (the paper); 'neighbours' over graph neighbours only."""
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
        check_real("profit_weight", self.profit_weight, 0.0)
        check_real("omega", self.omega, 0.0)
        check_real("rho", self.rho, 0.0)
        check_choice("cooperative_scope", self.cooperative_scope, COOPERATIVE_SCOPES)
        check_real("use_value", self.use_value, 0.0)
        check_choice("profit_mark", self.profit_mark, PROFIT_MARKS)
        check_choice("stability", self.stability, STABILITY_KINDS)


POLICY_KINDS = ("actor_critic", "random", "random_clipped", "hold", "mean_reversion",
                "informed", "need_aware")


@dataclass(frozen=True)
class PolicyConfig:
    """Which policy drives the agents."""

    kind: str = "random"
    """'random', 'random_clipped' (clipped to ±trade_scale), 'hold', 'mean_reversion',
    'informed', 'need_aware', 'actor_critic', or 'checkpoint:PATH'."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer widths of each agent's actor and critic MLPs."""
    n_groups: int | None = None
    """Number of policy groups sharing weights (None: one policy per agent)."""
    random_scale: float = 1.0
    """Std of the random baseline's Gaussian orders, in units of trade_scale."""
    reversion_strength: float = 1.0
    """Gain of the mean-reversion baseline: order = -gain * (P - f(S)) / f(S)."""

    def __post_init__(self) -> None:
        if not (self.kind in POLICY_KINDS or (isinstance(self.kind, str)
                                              and self.kind.startswith("checkpoint:"))):
            _fail("policy", self.kind, f"one of {list(POLICY_KINDS)} or 'checkpoint:PATH'")
        if len(self.hidden) == 0 or any(isinstance(h, bool) or int(h) != h or h < 1
                                        for h in self.hidden):
            _fail("hidden", self.hidden, "a non-empty tuple of positive integers")
        if self.n_groups is not None:
            check_int("n_groups", self.n_groups, 1)
        check_real("random_scale", self.random_scale, 0.0)
        check_real("reversion_strength", self.reversion_strength, 0.0)


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

    def __post_init__(self) -> None:
        if self.policy.n_groups is not None and self.policy.n_groups > self.market.n_agents:
            _fail("n_groups", self.policy.n_groups, f"at most n_agents={self.market.n_agents}")
        if self.torch_threads is not None:
            check_int("torch_threads", self.torch_threads, 1)
        check_int("collect_every", self.collect_every, 0)


def field_names(cls: type) -> tuple[str, ...]:
    """Names of a config dataclass's fields (used to route keyword arguments)."""
    return tuple(f.name for f in fields(cls))
