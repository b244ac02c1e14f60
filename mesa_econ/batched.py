"""Many markets as one array program: K independent markets stepped together.

A :class:`MarketBatch` holds K markets of one configuration with different noise seeds
(each an :class:`~mesa_econ.model.EconomyModel`, built exactly as the same seed alone
would build it) and shows their state as arrays with a leading market axis: capital
``(K, N)``, holdings ``(K, N, M)``, prices ``(K, M)`` ... One batch step is:

1. the K markets' observations ``(K, N, obs_dim)``, built in one vectorised pass;
2. one policy call for all K·N agents (:func:`batched_actions`: per-agent weights shared
   across the markets, one forward pass; each market's sampling noise from that market's
   own generator, as its single run draws it);
3. each market's numpy step, market by market, through the model's own ``step`` with the
   orders submitted (so each market's state, rewards and generators stay bit-identical to
   the same seed run alone: the reductions of the market step, which depend on the shape
   of the arrays they run on, stay per market).

What is batched is everything around the market step (observations, the policy's
forward pass, the trainers' buffers; see :mod:`mesa_econ.rl.vec_rollout`); the market step
itself stays one call per market. Actions from the batched forward pass equal a single
market's to float32 rounding (the same products grouped with K rows instead of one), not
bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mesa_econ.config import ModelConfig
from mesa_econ.model import EconomyModel
from mesa_econ.policies.actor_critic import act_only

__all__ = ["MarketBatch", "batched_actions"]

_STACKED = ("capital", "holdings", "supply", "reserve", "deviation", "prices",
            "curve_prices", "factors", "last_rewards", "last_orders")


class MarketBatch:
    """K markets of one configuration, different seeds, stepped together.

    Args:
        models: the K markets (>= 1), all at the same step ``t``, with the same
            :class:`~mesa_econ.config.ModelConfig` (their populations may differ: a
            configuration without a ``population_seed`` draws one per seed).

    Attributes:
        models: the markets, in batch order (market k is ``models[k]``).
        n_markets, n_agents, n_assets, obs_dim: K, N, M and the observation width.

    Raises:
        ValueError: no models, markets of different configurations or at different steps.
    """

    def __init__(self, models: Sequence[EconomyModel]) -> None:
        models = tuple(models)
        if not models:
            raise ValueError("models=() is invalid: expected at least one EconomyModel")
        first = models[0]
        for k, model in enumerate(models):
            if not isinstance(model, EconomyModel):
                raise ValueError(f"models[{k}]={type(model).__name__} is invalid: expected "
                                 "an EconomyModel")
            if not _same_config(model.config, first.config):
                raise ValueError(f"models[{k}] has another configuration than models[0]: "
                                 "expected K markets of one configuration")
            if model.t != first.t:
                raise ValueError(f"models[{k}].t={model.t} is invalid: expected every "
                                 f"market at models[0].t={first.t}")
            if (model.demand is None) != (first.demand is None):
                raise ValueError(f"models[{k}] has needs where models[0] has none (or the "
                                 "reverse): expected one observation layout")
        self.models = models
        self.n_markets = len(models)
        self.n_agents, self.n_assets = first.n_agents, first.n_assets
        self.obs_dim = first.obs_dim
        self.config: ModelConfig = first.config
        self.trade_scale = first.trade_scale
        self._cache: dict[str, np.ndarray] = {}
        self._obs_constants: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_seeds(cls, seeds: Sequence[int], **model_kwargs: Any) -> MarketBatch:
        """K markets ``EconomyModel(**model_kwargs, rng=seed)``, one per seed."""
        if "rng" in model_kwargs or "seed" in model_kwargs:
            raise ValueError("rng/seed in model_kwargs is invalid: pass the seeds as `seeds`")
        return cls([EconomyModel(**model_kwargs, rng=int(s)) for s in _seed_list(seeds)])

    @classmethod
    def from_config(cls, cfg: ModelConfig, seeds: Sequence[int], *,
                    demand: Any = None) -> MarketBatch:
        """K markets ``EconomyModel.from_config(cfg, rng=seed, demand=demand)``."""
        return cls([EconomyModel.from_config(cfg, rng=int(s), demand=demand)
                    for s in _seed_list(seeds)])

    # ------------------------------------------------------------------ state
    @property
    def t(self) -> int:
        """The markets' common step count."""
        return self.models[0].t

    def __len__(self) -> int:
        return self.n_markets

    def __getattr__(self, name: str) -> np.ndarray:
        """The stacked state arrays (read-only copies, cached until the next step):
        capital ``(K, N)``, holdings ``(K, N, M)``, supply, reserve, deviation, prices,
        curve_prices, factors ``(K, M)``, last_rewards ``(K, N)``, last_orders
        ``(K, N, M)``."""
        if name not in _STACKED:
            raise AttributeError(name)
        cache = self.__dict__.get("_cache")
        if cache is None:
            raise AttributeError(name)
        if name not in cache:
            stacked = np.stack([getattr(m, name) for m in self.models])
            stacked.setflags(write=False)
            cache[name] = stacked
        return cache[name]

    @property
    def demand(self) -> np.ndarray | None:
        """The needs d ``(K, N, M)``, or None without needs."""
        if self.models[0].demand is None:
            return None
        return self._needs()

    def _needs(self) -> np.ndarray:
        if "demand" not in self._cache:
            self._cache["demand"] = np.stack([m.demand for m in self.models])
        return self._cache["demand"]

    # ------------------------------------------------------------------ acting
    def observations(self, out: np.ndarray | None = None) -> np.ndarray:
        """All markets' observations ``(K, N, obs_dim)`` float32, each market's rows equal
        (bit for bit) to its ``model.observations()``.

        Args:
            out: optional float32 array ``(K, N, obs_dim)`` to write them into.
        """
        mc = self.config.market
        k, n, m = self.n_markets, self.n_agents, self.n_assets
        if out is None:
            out = np.empty((k, n, self.obs_dim), dtype=np.float32)
        h0 = mc.initial_holdings or 1.0
        price_scale, factor_scale = self._constants()
        out[:, :, 0] = self.capital / mc.initial_capital
        out[:, :, 1:1 + m] = self.holdings / h0
        out[:, :, 1 + m:1 + 2 * m] = (self.prices / price_scale)[:, None, :]
        z = (self.factors - self.models[0].params.factor_mean) / factor_scale
        out[:, :, 1 + 2 * m:1 + 3 * m] = z[:, None, :]
        out[:, :, 1 + 3 * m] = min(self.t, mc.horizon) / mc.horizon
        if self.models[0].demand is not None:
            out[:, :, 2 + 3 * m:] = self._needs() / h0
        return out

    def _constants(self) -> tuple[np.ndarray, np.ndarray]:
        """The observation's price and factor scales (one configuration: market 0's)."""
        if self._obs_constants is None:
            scales = self.models[0].observation_scales
            self._obs_constants = (scales.price, scales.factor_scale)
        return self._obs_constants

    def act(self, policy: Any = None, deterministic: bool = False) -> np.ndarray:
        """Trade volumes ``(K, N, M)`` for the coming step.

        Args:
            policy: a policy over N agents acting on raw observations (a PolicyEnsemble,
                a NormalizedPolicy ...): one batched call for all markets, market k
                sampling from ``models[k].torch_generator``. None: each market's own
                policy (one batched call when they share one learned policy object,
                else ``model.policy_orders()`` market by market).
            deterministic: act with the policy means (a given ``policy`` only).
        """
        if policy is None:
            first = self.models[0]
            shared = first.ensemble is not None and all(
                m.ensemble is first.ensemble for m in self.models)
            if not shared:
                return np.stack([m.policy_orders() for m in self.models])
            policy = first.ensemble
        obs = torch.from_numpy(self.observations())
        gens = [m.torch_generator for m in self.models]
        with torch.no_grad():
            u = batched_actions(policy, obs, gens, deterministic)
        return self.trade_scale * np.clip(u.numpy().astype(float), -1.0, 1.0)

    # ------------------------------------------------------------------ stepping
    def step(self, orders: np.ndarray | None = None) -> None:
        """One step of every market.

        Args:
            orders: trade volumes ``(K, N, M)`` (as ``submit_orders`` takes them, market
                by market), or None for :meth:`act`'s (each market's own policy).

        Raises:
            ValueError: orders of the wrong shape or not finite.
            Exception: what a market's step raised, with the market's index in a note;
                markets before it have then stepped, it and those after it have not
                (each market's own step leaves it as it was when it raises).
        """
        if orders is None:
            orders = self.act()
        orders = np.asarray(orders, dtype=float)
        want = (self.n_markets, self.n_agents, self.n_assets)
        if orders.shape != want:
            raise ValueError(f"orders shape {orders.shape} is invalid: expected "
                             f"(n_markets, n_agents, n_assets)={want}")
        self._cache = {"demand": self._cache["demand"]} if "demand" in self._cache else {}
        for k, model in enumerate(self.models):
            try:
                model.submit_orders(orders[k])
                model.step()
            except Exception as exc:
                exc.add_note(f"in market {k} of the batch (seed-ordered); markets "
                             f"0..{k - 1} have stepped")
                raise

    def run(self, steps: int) -> None:
        """``steps`` steps of every market with their own policies."""
        for _ in range(int(steps)):
            self.step()


def batched_actions(policy: Any, obs: torch.Tensor, generators: Sequence[torch.Generator],
                    deterministic: bool = False) -> torch.Tensor:
    """Raw actions u ``(K, N, act_dim)`` of one policy over K markets in one forward pass.

    The policy acts on ``obs`` ``(K, N, obs_dim)`` in one call (per-agent weights shared
    across the markets); market k's Gaussian noise ε is drawn from ``generators[k]`` with
    the shape and order of a single market's ``sample`` call, so u_k = μ_k + σ·ε_k equals
    ``act_only(policy, obs[k], generators[k])`` to float32 rounding of μ. Policies without
    ``agent_log_std`` (not a Gaussian ensemble) act market by market.
    """
    k = obs.shape[0]
    if len(generators) != k:
        raise ValueError(f"generators has {len(generators)} entries: expected one per "
                         f"market ({k})")
    sampler = callable(getattr(type(policy), "sample", None))
    log_std_of = getattr(policy, "agent_log_std", None)
    if not sampler or (not deterministic and not callable(log_std_of)):
        return torch.stack([act_only(policy, obs[i], generators[i], deterministic)
                            for i in range(k)])
    mean = policy.sample(obs, deterministic=True)  # the means, one batched forward pass
    if deterministic:
        return mean
    std = torch.exp(log_std_of().expand_as(mean[0]))  # = sample_gaussian's exp(log σ)
    u = torch.empty_like(mean)
    for i, gen in enumerate(generators):  # ε of a single market's call, from its stream
        eps = torch.randn(mean[i].shape, generator=gen, dtype=mean.dtype, device=mean.device)
        torch.add(mean[i], std * eps, out=u[i])
    return u


def _same_config(a: ModelConfig, b: ModelConfig) -> bool:
    """Whether two configurations are equal (per-asset fields given as numpy arrays
    compare by value: dataclass equality of such fields is ambiguous)."""
    try:
        return bool(a == b)
    except ValueError:
        return repr(a) == repr(b)


def _seed_list(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds=[] is invalid: expected at least one seed")
    return seeds
