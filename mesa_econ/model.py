"""The Mesa model: owns the state arrays, the graph and the policies; wires one step.

A step is: draw Z (with any shock) → one batched policy call → ``dynamics.market_step``
→ ``rewards.compute_rewards`` → ``datacollector.collect``. No per-agent Python runs in
the hot path; the agents are views onto rows of the arrays held here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import operator
from dataclasses import fields
from typing import Any

import mesa
import networkx as nx
import numpy as np
import torch
from mesa.discrete_space import Network

from mesa_econ import pricing
from mesa_econ._validation import check_seed, fail, real_array
from mesa_econ.agents import TraderAgent
from mesa_econ.collector import make_collector
from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig, RewardConfig
from mesa_econ.curves import BondingCurve, make_curve
from mesa_econ.dynamics import MarketParams, MarketState, StepNoise, market_step
from mesa_econ.fast_step import (
    SpotStep,
    liquidation_marks,
    profit_rewards,
    takes_profit_rewards,
    takes_spot_step,
)
from mesa_econ.policies.actor_critic import act_only
from mesa_econ.rewards import compute_rewards

__all__ = ["EconomyModel", "default_curve_params"]

PRICE_WINDOW = 20
"""Length of the rolling price window behind the volatility and entropy reporters."""


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


class EconomyModel(mesa.Model):
    """N traders, M assets priced by stochastic bonding curves, over a NetworkX graph.

    Keyword arguments are the fields of :class:`~mesa_econ.config.MarketConfig`,
    :class:`~mesa_econ.config.RewardConfig` and :class:`~mesa_econ.config.PolicyConfig`
    (``policy`` is PolicyConfig.kind: by default every agent holds its own PyTorch
    actor-critic, ``"actor_critic"``; scripted baselines such as ``"random"`` are chosen by
    name) plus ``collect_agents``, ``collect_every``,
    ``torch_threads``,
    ``demand`` (needs d_ij for the use-value reward: an (N, M) array, or a mean need
    from which d_ij ~ U(0, 2·mean) is drawn with the population generator) and
    ``rng``/``seed``. Every value is validated; a bad one raises ValueError naming it.
    ``reporters`` (:attr:`ModelConfig.reporters <mesa_econ.config.ModelConfig.reporters>`)
    picks the DataCollector's model columns: ``"default"`` (or None), ``"rmw"`` (the
    reference workload's P_j, HHI_j, mean capital), ``"none"`` or a sequence of names
    (:mod:`mesa_econ.collector`); it changes what is recorded, never the run.
    A seed given as a string (Solara's text box) is cast to int.

    Attributes:
        capital, holdings, supply, reserve, prices, deviation: the state of record as
            read-only numpy arrays (shapes (N,), (N, M), (M,) ...).
        factors: Z(t) for the step about to run (drawn at the end of the previous step,
            so ``observations()`` shows it to agents acting inside or outside ``step()``).
        grid: the ``mesa.discrete_space.Network`` the agents sit on.
        graph: the interaction graph; ``adjacency`` its sparse matrix (None if complete).
        torch_generator: the model's torch.Generator, seeded from ``rng`` (learned policies
            sample from it); ``policy_rng``: numpy Generator of the scripted policies.
            ``rng`` itself then drives only the market's noise, so two models with the
            same seed and different policies see the same noise (common random numbers).
        population_seed: the seed of the graph and the needs (``population_seed`` if
            given, else drawn from ``rng``).
        income_paid, yield_paid, fees_paid: cumulative money paid in (income, yield) and
            out (fees) from outside the market; Σ B + Σ reserve changes by exactly
            income_paid + yield_paid − fees_paid.
        last_rewards: r_i of the last step; ``last_info``: its ``dynamics.StepInfo``.
    """

    def __init__(self, n_agents: int = 50, n_assets: int = 3, curve: str = "exponential",
                 curve_params: dict | None = None, graph: Any = "complete",
                 graph_params: dict | None = None, nu: float = 0.0,
                 peer_cap: float | None = None, kappa: Any = 0.0,
                 lam: Any = 0.0, theta: Any = 1.0, sigma0: Any = 0.0, sigma1: Any = 0.0,
                 zeta: Any = 0.0, sigma_eta: Any = 0.01, dt: float = 1.0,
                 factor_mean: Any = 0.0, factor_std: Any = 0.1, income: float = 0.0,
                 psi: Any = 0.0, settlement: str = "curve", initial_capital: float = 1000.0,
                 initial_holdings: float = 10.0, trade_scale: float = 1.0,
                 price_floor: float = 1e-9, shock_step: int | None = None,
                 shock_size: float = 0.0, shock_assets: tuple[int, ...] | None = None,
                 shock_decay: float = 0.0, yield_rate: Any = 0.0, fee: float = 0.0,
                 capacity: Any = None, congestion_fee: Any = 0.0, horizon: int = 128,
                 population_seed: int | None = None,
                 profit_weight: float = 1.0, omega: float = 0.0,
                 rho: float = 0.0, cooperative_scope: str = "all", use_value: float = 0.0,
                 profit_mark: str = "liquidation", stability: str = "shared",
                 policy: str = "actor_critic", hidden: tuple[int, ...] = (64, 64),
                 n_groups: int | None = None, random_scale: float = 1.0,
                 reversion_strength: float = 1.0, collect_agents: bool = False,
                 collect_every: int = 1, torch_threads: int | None = 1, demand: Any = None,
                 reporters: Any = "default", rng: Any = None, seed: Any = None) -> None:
        kwargs = {k: v for k, v in locals().items()
                  if k not in ("self", "rng", "seed", "demand", "__class__")}
        kwargs["curve_params"] = {} if curve_params is None else curve_params
        kwargs["graph_params"] = {} if graph_params is None else graph_params
        self._init_from_config(_split_kwargs(kwargs), rng=rng, seed=seed, demand=demand)

    @classmethod
    def from_config(cls, cfg: ModelConfig, *, rng: Any = None, seed: Any = None,
                    demand: Any = None, reporters: Any = None) -> EconomyModel:
        """Build a model from a validated :class:`~mesa_econ.config.ModelConfig`.

        ``reporters``, if given, replaces ``cfg.reporters`` (validated the same way).
        """
        if not isinstance(cfg, ModelConfig):
            raise ValueError(f"cfg={type(cfg).__name__} is invalid: expected a ModelConfig")
        if reporters is not None:
            cfg = dataclasses.replace(cfg, reporters=reporters)
        self = cls.__new__(cls)
        self._init_from_config(cfg, rng=rng, seed=seed, demand=demand)
        return self

    # ------------------------------------------------------------------ set-up
    def _init_from_config(self, cfg: ModelConfig, *, rng: Any, seed: Any,
                          demand: Any) -> None:
        rng = check_seed("rng", rng)
        seed = check_seed("seed", seed)
        if rng is not None and seed is not None:
            raise ValueError(f"rng={rng!r} and seed={seed!r} are both given: pass one of them")
        demand = _check_demand(demand, cfg.market.n_agents, cfg.market.n_assets)
        if cfg.rewards.use_value > 0 and demand is None:
            fail("demand", None, "a mean need or an (n_agents, n_assets) array when "
                 "use_value > 0")
        cfg = _complete_neighbours(cfg)
        if rng is None and seed is not None:
            rng = seed  # rng=42 equals seed=42 on every Mesa 3.x, without 3.5's warning
        super().__init__(rng=rng)
        if cfg.torch_threads is not None and torch.get_num_threads() != cfg.torch_threads:
            torch.set_num_threads(cfg.torch_threads)
        self.config = cfg
        mc = cfg.market
        self.n_agents, self.n_assets = mc.n_agents, mc.n_assets
        self.trade_scale = float(mc.trade_scale)
        self.torch_generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.policy_rng = np.random.default_rng(int(self.rng.integers(2**62)))
        self.population_seed = (int(mc.population_seed) if mc.population_seed is not None
                                else int(self.rng.integers(2**31)))
        population_rng = np.random.default_rng(self.population_seed)
        # the graph's seed first: the same population seed gives the same graph whether
        # the needs are drawn here or passed in as an array
        graph_seed = int(population_rng.integers(2**31))
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
        self.demand = _make_demand(demand, n, m, population_rng)
        self._build_space(mc, graph_seed)
        self._build_policy(cfg.policy)
        self._init_bookkeeping()
        self.datacollector = make_collector(self, cfg.reporters, cfg.collect_agents)
        self.datacollector.collect(self)

    def _build_space(self, mc: MarketConfig, graph_seed: int) -> None:
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

    # ------------------------------------------------------------------ state views
    @property
    def capital(self) -> np.ndarray:
        """B_i, shape (N,) (read-only)."""
        return self._state.capital

    @property
    def holdings(self) -> np.ndarray:
        """H_ij, shape (N, M) (read-only)."""
        return self._state.holdings

    @property
    def supply(self) -> np.ndarray:
        """S_j = Σ_i H_ij, shape (M,) (read-only)."""
        return self._state.supply

    @property
    def reserve(self) -> np.ndarray:
        """Base currency in each curve's reserve, shape (M,) (read-only)."""
        return self._state.reserve

    @property
    def prices(self) -> np.ndarray:
        """P_j, the quoted prices, shape (M,) (read-only)."""
        return self._state.price

    @property
    def deviation(self) -> np.ndarray:
        """X_j = persistent deviation of the quote from the curve, shape (M,) (read-only)."""
        return self._state.deviation

    @property
    def curve_prices(self) -> np.ndarray:
        """f_j(S_j), the bonding-curve price at the current supply (read-only)."""
        return self._curve_price

    @property
    def curve_reserve(self) -> np.ndarray:
        """R_j(S_j), the reserve the curve implies for the current supply."""
        return self.curve.reserve(self._state.supply)

    @property
    def token_marks(self) -> np.ndarray:
        """v_j, the value per token of the configured profit mark (§4.1): the liquidation
        share reserve_j / S_j (default) or the quoted price P_j ('quote') (read-only)."""
        state = self._state
        if self.config.rewards.profit_mark == "quote":
            return state.price
        cached = self._marks_cache
        if cached is None or cached[0] is not state:  # computed once per state
            cached = self._marks_cache = (state, _freeze(liquidation_marks(state.reserve,
                                                                           state.supply)))
        return cached[1]

    @property
    def wealth(self) -> np.ndarray:
        """B_i + Σ_j H_ij v_j, marked as the profit reward marks it (read-only)."""
        if self._wealth_cache is None:
            self._wealth_cache = _freeze(self._state.capital
                                         + self._state.holdings @ self.token_marks)
        return self._wealth_cache

    @property
    def price_window(self) -> np.ndarray:
        """The last (up to) ``PRICE_WINDOW`` quoted prices, shape (W, M), in ring-buffer
        order (not oldest first: the window reporters, volatility and entropy, do not
        depend on the order). Use the DataCollector frame for an ordered series."""
        return self._window[:self._window_len]

    def price_window_ordered(self) -> np.ndarray:
        """:attr:`price_window`, oldest first (a copy)."""
        if self._window_len < PRICE_WINDOW:
            return self._window[:self._window_len].copy()
        start = (self.t + 1) % PRICE_WINDOW  # the oldest row (np.roll's result, cheaper)
        return np.concatenate((self._window[start:], self._window[:start]))

    @property
    def state(self) -> MarketState:
        """The full market state (frozen dataclass of arrays)."""
        return self._state

    def observation_layout(self) -> list[tuple[str, int]]:
        """The blocks of an observation row in order, as (name, width) pairs."""
        m = self.n_assets
        layout = [("capital", 1), ("holdings", m), ("price", m), ("factor", m), ("time", 1)]
        if self.demand is not None:
            layout.append(("need", m))
        return layout

    @property
    def obs_dim(self) -> int:
        """Width of an agent's observation: 2 + 3M ([B_i, H_i, P, Z, t/H]), + M with needs."""
        return 2 + 3 * self.n_assets + (self.n_assets if self.demand is not None else 0)

    def policy_of(self, row: int) -> Any:
        """Agent ``row``'s policy (a PolicyView, or the shared scripted policy)."""
        return self.ensemble.agent_view(row) if self.ensemble is not None else self.scripted

    # ------------------------------------------------------------------ stepping
    def observations(self) -> np.ndarray:
        """All agents' observations, shape (N, obs_dim), float32. Implements §2.1.

        Notes:
            S_i = [B_i / B0, H_i / H0, P / P0, (Z − m) / s, min(t, H) / H, d_i / H0],
            scaled by the initial capital B0, initial holdings H0 (1 if zero), initial
            curve price P0 and factor std s (1 where s = 0); H is the episode horizon; the
            needs d_i only when the model has them (see :meth:`observation_layout`).
        """
        mc = self.config.market
        n, m = self.n_agents, self.n_assets
        h0 = mc.initial_holdings or 1.0
        obs = np.empty((n, self.obs_dim), dtype=np.float32)
        obs[:, 0] = self._state.capital / mc.initial_capital
        obs[:, 1:1 + m] = self._state.holdings / h0
        obs[:, 1 + m:1 + 2 * m] = self._state.price / self._price_scale
        obs[:, 1 + 2 * m:1 + 3 * m] = self.standardised_factors()
        obs[:, 1 + 3 * m] = min(self.t, mc.horizon) / mc.horizon
        if self.demand is not None:
            obs[:, 2 + 3 * m:] = self.demand / h0
        return obs

    def standardised_factors(self) -> np.ndarray:
        """(Z_j − m_j) / s_j for the coming step, shape (M,) (s = 1 where s_j = 0)."""
        return (self.factors - self.params.factor_mean) / self._factor_scale

    @functools.cached_property
    def _price_scale(self) -> np.ndarray:
        return np.maximum(self.curve.price(np.full(self.n_assets, self.n_agents
                                                   * self.config.market.initial_holdings)),
                          1e-12)

    @functools.cached_property
    def _factor_scale(self) -> np.ndarray:
        return np.where(self._factor_std > 0, self._factor_std, 1.0)

    def submit_orders(self, volumes: np.ndarray) -> None:
        """Use these trade volumes (N, M) for the next step instead of the policy's.

        Used by trainers and the PettingZoo adapter, which act outside the model.
        """
        volumes = np.asarray(volumes, dtype=float)
        if volumes.shape != (self.n_agents, self.n_assets):
            raise ValueError(f"volumes shape {volumes.shape} is invalid: expected "
                             f"(n_agents, n_assets)=({self.n_agents}, {self.n_assets})")
        if not math.isfinite(volumes.sum()):  # one reduction: NaN and inf propagate
            raise ValueError("volumes contain NaN or inf: expected finite trade volumes")
        self._pending_orders = volumes

    def policy_orders(self) -> np.ndarray:
        """Trade volumes (N, M) from the model's own policy: one batched call."""
        if self.scripted is not None:
            return self.scripted.orders(self)
        obs = torch.from_numpy(self.observations())
        with torch.no_grad():  # act's u without its value and log-probability
            u = act_only(self.ensemble, obs, generator=self.torch_generator)
        return self.trade_scale * np.clip(u.numpy().astype(float), -1.0, 1.0)

    def _draw_factors(self) -> np.ndarray:
        """Z for the step about to run (index ``self.t``), with any shock spike (§2.1, §9)."""
        p, mc = self.params, self.config.market
        if mc.shock_step is not None and self.t == mc.shock_step:
            assets = list(mc.shock_assets) if mc.shock_assets is not None else slice(None)
            self._shock[assets] += mc.shock_size
        z = pricing.draw_factors(self.rng, p.factor_mean, self._factor_std)  # §2.1
        if self._shock_live:  # (without a shock, Z is the draw as it is: no z + 0)
            z = z + self._shock  # §9 shock: a spike in Z_j
            self._shock *= mc.shock_decay
        return z

    def apply_shock(self, size: float, assets: Any = None) -> None:
        """A shock of ``size`` in Z_j from the coming step on, now (§9; the browser's button).

        Z for the coming step is drawn ahead (see :attr:`factors`), so the spike is added to
        it: the next observation shows it and the next :meth:`step` prices with it. It then
        decays as a scheduled shock does: the k-th following step's Z carries
        ``size·shock_decay^k``. The run is, bit for bit, the run of a model with
        ``shock_step`` set to this step (``t``) and the same size, assets and decay (tested);
        shocks add up (a shock on a live one equals their sum up to rounding).

        Args:
            size: the spike, a finite real (negative for a drop).
            assets: asset indices hit, or None for every asset.

        Raises:
            ValueError: ``size`` not a finite real, or ``assets`` not indices in [0, M-1].
        """
        from mesa_econ.config import check_int, check_number

        check_number("size", size)
        if assets is None:
            hit: Any = slice(None)
        else:
            items = list(assets) if np.ndim(assets) else [assets]
            if not items:
                raise ValueError(f"assets={assets!r} is invalid: expected asset indices in "
                                 f"[0, {self.n_assets - 1}] or None for every asset")
            hit = [check_int("assets", j, 0, self.n_assets - 1) for j in items]
        spike = np.zeros(self.n_assets)
        spike[hit] = size
        self.factors = self.factors + spike  # rebound, never mutated (see _STEP_ATTRS)
        decay = self.config.market.shock_decay
        if decay > 0 and size != 0:
            # what _draw_factors leaves in the shock after adding it to Z(t): size·decay
            self._shock = self._shock + spike * decay
            self._shock_live = True

    def step(self) -> None:
        """One period: batched policy call, market step with Z(t), rewards, data, Z(t+1).

        A step that raises leaves the model as it was before it: state arrays, ``t``, the
        three generators, the price window, the shock, the money paid in and out, the last
        orders/info/rewards and the DataCollector's rows (Mesa's own ``steps``/``time``
        counter, advanced by Mesa before the step runs, is Mesa's).
        """
        saved = self._save()
        try:
            self._advance()
        except BaseException:
            self._restore(saved)
            self._reschedule_mesa_step()
            raise

    def _reschedule_mesa_step(self) -> None:
        """Mesa >= 3.4 runs ``step`` from an event that reschedules itself only after the
        step returns: after a step that raised, put Mesa's clock back and schedule the step
        again, so the model can go on stepping (Mesa 3.3 needs nothing)."""
        generator = getattr(self, "_default_schedule", None)
        schedule_next = getattr(generator, "_schedule_next", None)
        if schedule_next is None or not hasattr(self, "time"):
            return
        self.time -= 1.0  # Mesa set its clock to this step's event time before the step
        self.steps -= 1
        schedule_next(self.time + 1.0)

    def _save(self) -> tuple:
        """What a step changes, cheaply: immutable values by reference, the rest copied.

        The policy generators are saved only when the step asks the model's policy for
        orders (a trainer's submitted orders draw from neither; scripted policies never
        draw from the torch generator), the shock only when one is live (scheduled or
        applied).
        """
        acting = self._pending_orders is None
        shock = self._shock.copy() if self._shock_live else None
        return (_get_step_attrs(self), shock, self._window.copy(),
                self.rng.bit_generator.state,
                self.policy_rng.bit_generator.state if acting else None,
                self.torch_generator.get_state()
                if acting and self.ensemble is not None else None)

    def _restore(self, saved: tuple) -> None:
        attrs, shock, window, rng_state, policy_state, torch_state = saved
        for name, value in zip(_STEP_ATTRS, attrs, strict=True):
            setattr(self, name, value)
        self._window = window
        if shock is not None:  # (without a live shock, the shock stays 0)
            self._shock = shock
        self.rng.bit_generator.state = rng_state
        if policy_state is not None:
            self.policy_rng.bit_generator.state = policy_state
        if torch_state is not None:
            self.torch_generator.set_state(torch_state)

    fast_paths: bool = True
    """Take the speed-only paths of the step (:mod:`mesa_econ.fast_step`) where they
    serve the configuration; False: always the readable reference (``market_step`` and
    ``compute_rewards``). The same run either way (tested); the benchmarks compare them."""

    def _fast_kinds(self) -> tuple[SpotStep | None, bool]:
        """(the spot step of this market if the fast path serves it, whether the profit-only
        reward path serves it), rebuilt if ``params``, ``curve``, ``adjacency`` or the reward
        config were replaced since."""
        cached = self.__dict__.get("_fast_cache")
        rc = self.config.rewards
        if (cached is None or cached[0] is not self.params or cached[1] is not self.curve
                or cached[2] is not self.adjacency or cached[3] is not rc):
            spot = (SpotStep(self.params, self.curve, self.adjacency)
                    if takes_spot_step(self.params) else None)
            cached = self._fast_cache = (self.params, self.curve, self.adjacency, rc,
                                         (spot, takes_profit_rewards(rc)))
        return cached[4]

    def _advance(self) -> None:
        """The body of :meth:`step` (which undoes it if it raises)."""
        if self._pending_orders is not None:
            orders, self._pending_orders = self._pending_orders, None
        else:
            orders = self.policy_orders()
        self.last_orders = orders
        p, before = self.params, self._state
        fast_spot, fast_rewards = self._fast_kinds() if self.fast_paths else (None, False)
        draws = self.rng.standard_normal((2, self.n_assets))
        noise = StepNoise(factors=self.factors,
                          dW=draws[0] if self._sqrt_dt == 1.0 else self._sqrt_dt * draws[0],
                          eta=self._sigma_eta * draws[1])  # (1.0·x is x, bit for bit)
        marks_before = self.token_marks if fast_rewards else None
        if fast_spot is not None:
            after, info = fast_spot(before, orders, noise, curve_price=self._curve_price)
        else:
            after, info = market_step(before, orders, p, self.curve, noise, self.adjacency,
                                      curve_price=self._curve_price)
        _check_finite(after)
        _freeze_state(after)
        _freeze(info.curve_price)
        self._state, self.last_info = after, info
        self._curve_price = info.curve_price
        self._wealth_cache = None
        self.income_paid += p.income * self.n_agents
        if info.yield_paid is not None:
            self.yield_paid += float(info.yield_paid.sum())
        if info.fees is not None:
            self.fees_paid += float(info.fees.sum())
        breakdown = None
        if fast_rewards:
            breakdown = profit_rewards(self.config.rewards, before.capital, after.capital,
                                       before.holdings, after.holdings, marks_before,
                                       self.token_marks, self._zero_rewards)
        if breakdown is None:  # the reference (and its error naming a non-finite input)
            breakdown = compute_rewards(
                self.config.rewards, capital_before=before.capital,
                capital_after=after.capital, holdings_before=before.holdings,
                holdings_after=after.holdings, price_before=before.price,
                price_after=after.price, adjacency=self.adjacency, demand=self.demand,
                reserve_before=before.reserve, reserve_after=after.reserve,
                supply_before=before.supply, supply_after=after.supply,
                price_without=info.price_without, capacity=self.capacity)
        self.last_breakdown = breakdown
        self.last_rewards = breakdown.total
        self.t += 1
        self._window[self.t % PRICE_WINDOW] = after.price
        self._window_len = min(self._window_len + 1, PRICE_WINDOW)
        self.factors = self._draw_factors()  # §2.1 Z(t+1), seen by the next observation
        every = self.config.collect_every
        if every and self.t % every == 0:
            _collect_or_undo(self.datacollector, self)

    @functools.cached_property
    def _zero_rewards(self) -> np.ndarray:
        """The zero reward terms of a profit-only reward, shared and read-only."""
        return _freeze(np.zeros(self.n_agents))


_STEP_ATTRS = ("_state", "_curve_price", "last_info", "last_breakdown", "last_rewards",
               "last_orders", "_pending_orders", "_wealth_cache", "_marks_cache", "t",
               "income_paid", "yield_paid", "fees_paid", "factors", "_window_len")
"""The model's attributes a step rebinds (never mutates in place): restored on failure."""
_get_step_attrs = operator.attrgetter(*_STEP_ATTRS)


def _collect_or_undo(collector: mesa.DataCollector, model: EconomyModel) -> None:
    """``collector.collect(model)``; if a reporter raises, drop the rows it had added."""
    columns = list(collector.model_vars.values())
    lengths = list(map(len, columns))
    steps = getattr(collector, "_collection_steps", None)  # Mesa >= 3.5
    n_steps = len(steps) if steps is not None else 0
    records = [getattr(collector, name, None)
               for name in ("_agent_records", "_agenttype_records")]
    counts = [len(r) if isinstance(r, dict) else 0 for r in records]
    try:
        collector.collect(model)
    except BaseException:
        for rows, length in zip(columns, lengths, strict=True):
            del rows[length:]
        if steps is not None:
            del steps[n_steps:]
        for record, count in zip(records, counts, strict=True):
            while isinstance(record, dict) and len(record) > count:
                record.popitem()  # the rows this collect inserted (dicts keep order)
        raise


_STATE_FIELDS = ("capital", "holdings", "supply", "reserve", "deviation", "price")


def _freeze(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _freeze_state(state: MarketState) -> MarketState:
    """Make the state arrays read-only so the model's views can be handed out as they are."""
    for name in _STATE_FIELDS:
        getattr(state, name).setflags(write=False)
    return state


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


def _check_finite(state: MarketState) -> None:
    """Never carry NaN/inf in the state: fail loudly with the offending array's name.

    Holdings and supply need no check here: a non-finite supply fails the curve's domain
    check inside the step already. The per-asset arrays are checked as Python floats when
    there are few assets (cheaper than numpy reductions); a sum is finite only if every
    term is, so one reduction serves otherwise.
    """
    per_asset = (state.reserve, state.deviation, state.price)
    if state.price.size <= 16:
        values = state.reserve.tolist() + state.deviation.tolist() + state.price.tolist()
        finite = all(map(math.isfinite, values))
    else:
        finite = math.isfinite(sum(a.sum() for a in per_asset))
    if finite and math.isfinite(state.capital.sum()):
        return
    for name in _STATE_FIELDS:
        if not np.all(np.isfinite(getattr(state, name))):
            raise FloatingPointError(
                f"market state '{name}' became non-finite; the parameters let prices "
                "diverge (lower kappa/zeta/sigma1 or the curve's growth)")
