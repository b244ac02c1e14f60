"""The Mesa model: owns the state arrays, the graph and the policies; wires one step.

A step is: draw Z (with any shock) → one batched policy call → ``dynamics.market_step``
→ ``rewards.compute_rewards`` → ``datacollector.collect``. No per-agent Python runs in
the hot path; the agents are views onto rows of the arrays held here.

:class:`EconomyModel` is assembled from mixins, one idea each: :mod:`mesa_econ._model_setup`
(keyword routing, construction of the arrays, graph, agents and policy),
:mod:`mesa_econ._model_state` (read-only state views and the observation) and
:mod:`mesa_econ._model_rollback` (undoing a step that raised). The step itself, the
orders and the shock are here. The public names (``EconomyModel``,
``default_curve_params``, ``PRICE_WINDOW``) keep this path.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import mesa
import numpy as np
import torch

from mesa_econ import pricing
from mesa_econ._model_rollback import StepRollback, _collect_or_undo
from mesa_econ._model_setup import (
    ModelSetup,
    _check_inputs,
    _complete_neighbours,
    _make_demand,
    _split_kwargs,
    default_curve_params,
)
from mesa_econ._model_state import (
    PRICE_WINDOW,
    StateViews,
    _check_finite,
    _freeze,
    _freeze_state,
)
from mesa_econ.collector import make_collector
from mesa_econ.config import ModelConfig
from mesa_econ.dynamics import MarketState, StepNoise, market_step
from mesa_econ.fast_step import (
    SpotStep,
    profit_rewards,
    takes_profit_rewards,
    takes_spot_step,
)
from mesa_econ.policies.actor_critic import act_only
from mesa_econ.rewards import RewardBreakdown, compute_rewards

__all__ = ["EconomyModel", "default_curve_params"]


class EconomyModel(ModelSetup, StateViews, StepRollback, mesa.Model):
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
        """Build the model; the generators draw in this order (seeds, population, graph)."""
        rng, demand = _check_inputs(cfg, rng, seed, demand)
        cfg = _complete_neighbours(cfg)
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
        self._build_market(cfg)
        n, m = self.n_agents, self.n_assets
        self.demand = _make_demand(demand, n, m, population_rng)
        self._build_space(mc, graph_seed)
        self._build_policy(cfg.policy)
        self._init_bookkeeping()
        self.datacollector = make_collector(self, cfg.reporters, cfg.collect_agents)
        self.datacollector.collect(self)

    # ------------------------------------------------------------------ orders
    def policy_of(self, row: int) -> Any:
        """Agent ``row``'s policy (a PolicyView, or the shared scripted policy)."""
        return self.ensemble.agent_view(row) if self.ensemble is not None else self.scripted

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

    # ------------------------------------------------------------------ shock
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

    # ------------------------------------------------------------------ stepping
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
        before = self._state
        fast_spot, fast_rewards = self._fast_kinds() if self.fast_paths else (None, False)
        noise = self._step_noise()
        marks_before = self.token_marks if fast_rewards else None
        if fast_spot is not None:
            after, info = fast_spot(before, orders, noise, curve_price=self._curve_price)
        else:
            after, info = market_step(before, orders, self.params, self.curve, noise,
                                      self.adjacency, curve_price=self._curve_price)
        self._record_market(after, info)
        breakdown = None
        if fast_rewards:
            breakdown = profit_rewards(self.config.rewards, before.capital, after.capital,
                                       before.holdings, after.holdings, marks_before,
                                       self.token_marks, self._zero_rewards)
        if breakdown is None:  # the reference (and its error naming a non-finite input)
            breakdown = self._reference_rewards(before, after, info)
        self.last_breakdown = breakdown
        self.last_rewards = breakdown.total
        self._end_step(after.price)

    def _step_noise(self) -> StepNoise:
        """This step's Z (drawn ahead), dW and η: the market's two normal draws."""
        draws = self.rng.standard_normal((2, self.n_assets))
        return StepNoise(factors=self.factors,
                         dW=draws[0] if self._sqrt_dt == 1.0 else self._sqrt_dt * draws[0],
                         eta=self._sigma_eta * draws[1])  # (1.0·x is x, bit for bit)

    def _record_market(self, after: MarketState, info: Any) -> None:
        """Keep the step's state (checked finite, frozen) and the money paid in and out."""
        _check_finite(after)
        _freeze_state(after)
        _freeze(info.curve_price)
        self._state, self.last_info = after, info
        self._curve_price = info.curve_price
        self._wealth_cache = None
        self.income_paid += self.params.income * self.n_agents
        if info.yield_paid is not None:
            self.yield_paid += float(info.yield_paid.sum())
        if info.fees is not None:
            self.fees_paid += float(info.fees.sum())

    def _reference_rewards(self, before: MarketState, after: MarketState,
                           info: Any) -> RewardBreakdown:
        """``rewards.compute_rewards`` (§4) of the step from ``before`` to ``after``."""
        return compute_rewards(
            self.config.rewards, capital_before=before.capital,
            capital_after=after.capital, holdings_before=before.holdings,
            holdings_after=after.holdings, price_before=before.price,
            price_after=after.price, adjacency=self.adjacency, demand=self.demand,
            reserve_before=before.reserve, reserve_after=after.reserve,
            supply_before=before.supply, supply_after=after.supply,
            price_without=info.price_without, capacity=self.capacity)

    def _end_step(self, price: np.ndarray) -> None:
        """t + 1, the price window, Z(t+1) drawn ahead, and the DataCollector's row."""
        self.t += 1
        self._window[self.t % PRICE_WINDOW] = price
        self._window_len = min(self._window_len + 1, PRICE_WINDOW)
        self.factors = self._draw_factors()  # §2.1 Z(t+1), seen by the next observation
        every = self.config.collect_every
        if every and self.t % every == 0:
            _collect_or_undo(self.datacollector, self)

    @functools.cached_property
    def _zero_rewards(self) -> np.ndarray:
        """The zero reward terms of a profit-only reward, shared and read-only."""
        return _freeze(np.zeros(self.n_agents))
