"""What a §7.1 tuning candidate is scored on: metrics, objectives and constraints.

Every candidate curve runs one episode per noise seed on the same seeds and the same
population (common random numbers: the scenario's graph, needs and market noise do not
depend on Φ), so two candidates differ only by their curves. Per seed,
:func:`evaluate_curve` measures

- ``volatility``: std of one-step log returns of the quoted price (mean over assets);
- ``level_variance``: §7.1's (1/T) Σ_t (P_j(t) − P̄_j)² (mean over assets);
- ``reserve_coverage``: the smallest reserve_j / R_j(S_j) over steps and assets;
- ``gini``: Gini of the agents' wealth at the end (marked as the profit reward marks it);
- ``slippage``: of a reference buy of Q tokens at the initial supply, the relative gap
  between its average price and the spot price, (R(S0 + Q) − R(S0)) / (Q f(S0)) − 1
  (largest over assets; the same on every seed);
- ``initial_price``, ``initial_reserve``: f(S0) and R(S0), means over assets.

An :class:`Objective` turns a seed's row into one number; a study minimises or maximises
its mean over seeds. A :class:`Constraint` bounds a metric's mean over seeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ import metrics

__all__ = ["METRICS", "OBJECTIVES", "REPORTED", "Constraint", "Objective", "evaluate_curve",
           "parse_constraint", "per_seed_values", "resolve_objectives"]

METRICS = ("volatility", "level_variance", "reserve_coverage", "gini", "slippage",
           "initial_price", "initial_reserve")
"""The per-seed columns of :func:`evaluate_curve`."""
REPORTED = ("volatility", "level_variance")
"""Metrics reported per seed beside the objectives: both definitions of volatility."""


@dataclass(frozen=True)
class Objective:
    """A number to minimise or maximise: the mean over seeds of ``per_seed(row)``."""

    name: str
    direction: str
    """'minimize' or 'maximize'."""
    per_seed: Callable[[Mapping[str, float]], float]
    """A seed's value from its row of :func:`evaluate_curve`."""

    def __post_init__(self) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ValueError(f"direction={self.direction!r} is invalid: expected 'minimize' "
                             "or 'maximize'")


def _column(name: str) -> Callable[[Mapping[str, float]], float]:
    def value(row: Mapping[str, float]) -> float:
        return float(row[name])

    value.__name__ = name
    return value


OBJECTIVES: dict[str, Objective] = {
    "volatility": Objective("volatility", "minimize", _column("volatility")),
    "level_variance": Objective("level_variance", "minimize", _column("level_variance")),
    "reserve_coverage": Objective("reserve_coverage", "maximize",
                                  _column("reserve_coverage")),
    "slippage": Objective("slippage", "minimize", _column("slippage")),
    "gini": Objective("gini", "minimize", _column("gini")),
}
"""The built-in objectives, by name."""


def resolve_objectives(objectives: str | Objective | Sequence[str | Objective]
                       ) -> tuple[Objective, ...]:
    """Objectives from names (see :data:`OBJECTIVES`) or :class:`Objective` instances."""
    items = [objectives] if isinstance(objectives, str | Objective) else list(objectives)
    out = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str) and item in OBJECTIVES:
            out.append(OBJECTIVES[item])
        else:
            raise ValueError(f"objective={item!r} is invalid: expected one of "
                             f"{sorted(OBJECTIVES)} or an Objective")
    names = [o.name for o in out]
    if not out or len(set(names)) != len(names):
        raise ValueError(f"objectives={names!r} is invalid: expected one or more distinct "
                         "objectives")
    return tuple(out)


@dataclass(frozen=True)
class Constraint:
    """``metric op bound`` on the mean over seeds, e.g. ``slippage <= 0.05``.

    Optuna's constraint value (feasible when <= 0) is ``mean − bound`` for ``<=`` and
    ``bound − mean`` for ``>=``.
    """

    metric: str
    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"constraint metric={self.metric!r} is invalid: expected one "
                             f"of {list(METRICS)}")
        if self.op not in ("<=", ">="):
            raise ValueError(f"constraint op={self.op!r} is invalid: expected '<=' or '>='")
        if not np.isfinite(self.bound):
            raise ValueError(f"constraint bound={self.bound!r} is invalid: expected a "
                             "finite number")

    @property
    def label(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: float) -> float:
        """Optuna's constraint value: <= 0 when ``value`` satisfies the constraint."""
        return float(value - self.bound if self.op == "<=" else self.bound - value)


def parse_constraint(text: str | Constraint) -> Constraint:
    """``"slippage<=0.05"`` → Constraint('slippage', '<=', 0.05)."""
    if isinstance(text, Constraint):
        return text
    match = re.fullmatch(r"\s*(\w+)\s*(<=|>=)\s*(\S+)\s*", str(text))
    if match is None:
        raise ValueError(f"constraint={text!r} is invalid: expected METRIC<=VALUE or "
                         f"METRIC>=VALUE with METRIC one of {list(METRICS)}")
    try:
        bound = float(match.group(3))
    except ValueError:
        raise ValueError(f"constraint={text!r} is invalid: {match.group(3)!r} is not a "
                         "number") from None
    return Constraint(match.group(1), match.group(2), bound)


def reference_slippage(curve: Any, supply: np.ndarray, quantity: float) -> float:
    """(R(S0 + Q) − R(S0)) / (Q f(S0)) − 1, the largest over assets. Implements §3.1's
    cost of a trade as a slippage."""
    average = curve.average_price(supply, np.full_like(supply, quantity))
    return float(np.max(average / curve.price(supply) - 1.0))


def evaluate_curve(params: Mapping[str, Any], kind: str, curve_params: Mapping[str, Any],
                   seeds: Sequence[int], *, steps: int | None = None,
                   slippage_trade: float | None = None) -> pd.DataFrame:
    """Run one episode per noise seed with the given curve; one row of metrics per seed.

    Args:
        params: EconomyModel keyword arguments (scenario, ``policy``, ``population_seed``).
        kind, curve_params: the candidate curve.
        seeds: noise seeds (``rng=`` of each episode's model).
        steps: episode length (default: the model's ``horizon``).
        slippage_trade: Q of the reference trade (default: N·trade_scale, every agent
            buying its largest order in one step).

    Returns:
        One row per seed: ``seed`` and the :data:`METRICS`.

    Raises:
        ValueError or FloatingPointError: the curve is invalid or its prices diverge.
    """
    from mesa_econ.model import EconomyModel

    base = {**params, "curve": kind, "curve_params": dict(curve_params), "collect_every": 0}
    rows = []
    for seed in seeds:
        model = EconomyModel(**base, rng=int(seed))
        horizon = int(steps or model.config.market.horizon)
        supply0 = model.supply.copy()
        q = slippage_trade if slippage_trade is not None else model.n_agents * model.trade_scale
        prices = np.empty((horizon + 1, model.n_assets))
        prices[0] = model.prices
        coverage = _coverage(model)
        for t in range(horizon):
            model.step()
            prices[t + 1] = model.prices
            coverage = min(coverage, _coverage(model))
        rows.append({
            "seed": int(seed),
            "volatility": float(np.mean(metrics.volatility(prices))),
            "level_variance": float(np.mean(metrics.level_variance(prices))),  # §7.1
            "reserve_coverage": coverage,
            "gini": float(metrics.gini(model.wealth)),
            "slippage": reference_slippage(model.curve, supply0, float(q)),
            "initial_price": float(np.mean(model.curve.price(supply0))),
            "initial_reserve": float(np.mean(model.curve.reserve(supply0))),
        })
    return pd.DataFrame(rows)


def per_seed_values(frame: pd.DataFrame, objectives: Sequence[Objective]
                    ) -> dict[str, list[float]]:
    """Each objective's value per seed (and the :data:`REPORTED` metrics'), in seed
    order, from the rows of :func:`evaluate_curve`."""
    rows = frame.to_dict(orient="records")
    out = {o.name: [float(o.per_seed(r)) for r in rows] for o in objectives}
    for metric in REPORTED:
        out.setdefault(metric, frame[metric].astype(float).tolist())
    return out


def _coverage(model: Any) -> float:
    curve_reserve = model.curve_reserve
    safe = np.where(curve_reserve > 0, curve_reserve, 1.0)
    return float(np.min(np.where(curve_reserve > 0, model.reserve / safe, 1.0)))
