"""Which metrics a model records each step, and the DataCollector that records them.

A model's ``reporters=`` option picks named reporters from :data:`REPORTERS`; each gives
one column (``"gini"``) or one per asset (``"price"`` → ``price_0``, ``price_1``, ...).
Presets:

- ``"default"`` (:data:`DEFAULT_REPORTERS`): prices, curve prices and supplies per asset,
  HHI, Gini, volatility, level variance, price and supply drift, price entropy, reserve
  coverage, mean capital, mean reward, and utilisation where the model has needs and
  capacities. Gini sorts the agents' wealth every step (O(N log N)).
- ``"rmw"`` (:data:`RMW_REPORTERS`): what the reference market workload records
  (``../shared/WORKLOAD.md`` step 8): P_j, HHI_j per asset and mean capital.
- ``"none"``: no model columns (the DataCollector still exists, e.g. for agent data; its
  model frame is empty).

A sequence of names picks those reporters, in that order. The selection changes which
columns are collected and nothing else: reporters read the model and never change it,
so the state path is the same bit for bit whatever is collected.

:class:`MarketCollector` is a ``mesa.DataCollector`` (``get_model_vars_dataframe``,
``batch_run`` and agent reporters work as in Mesa). Mesa deep-copies every reporter's
value; the built-in reporters return plain floats (per-asset ones a list of floats, one
``tolist()`` for M columns), which need no copy, so it appends them directly. A reporter a
user adds to ``model_reporters`` afterwards is collected the Mesa way (deep-copied).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import mesa

from mesa_econ import reporters as rp

__all__ = [
    "DEFAULT_REPORTERS",
    "PRESETS",
    "REPORTERS",
    "RMW_REPORTERS",
    "MarketCollector",
    "Reporter",
    "make_collector",
    "resolve_reporters",
]


class Reporter(NamedTuple):
    """A named metric: one column, or one per asset (``{name}_{j}``)."""

    compute: Callable[[Any], Any]
    """model → a float, or for a per-asset reporter a list of M floats."""
    column: Callable[..., float] | None
    """model → the float of one column (``asset=j`` for per-asset reporters): what
    ``model_reporters`` shows Mesa and users; None for a one-column reporter (then
    ``compute`` itself)."""
    per_asset: bool = False
    prefix: str | None = None
    """Column prefix of a per-asset reporter (default: the reporter's name)."""


REPORTERS: dict[str, Reporter] = {
    "price": Reporter(rp.prices_of, rp.price_of, per_asset=True),
    "curve_price": Reporter(rp.curve_prices_of, rp.curve_price_of, per_asset=True),
    "supply": Reporter(rp.supplies_of, rp.supply_of, per_asset=True),
    "asset_hhi": Reporter(rp.hhis_of, rp.hhi_of, per_asset=True, prefix="hhi"),
    "hhi": Reporter(rp.report_hhi, None),
    "gini": Reporter(rp.report_gini, None),
    "volatility": Reporter(rp.report_volatility, None),
    "level_variance": Reporter(rp.report_level_variance, None),
    "price_drift": Reporter(rp.report_price_drift, None),
    "supply_drift": Reporter(rp.report_supply_drift, None),
    "price_entropy": Reporter(rp.report_price_entropy, None),
    "reserve_coverage": Reporter(rp.report_reserve_coverage, None),
    "mean_capital": Reporter(rp.report_mean_capital, None),
    "mean_reward": Reporter(rp.report_mean_reward, None),
    "mean_price": Reporter(rp.report_mean_price, None),
    "total_wealth": Reporter(rp.report_total_wealth, None),
    "utilisation": Reporter(rp.report_utilisation, None),
}
"""Every reporter a model can collect, by name."""

DEFAULT_REPORTERS: tuple[str, ...] = (
    "price", "curve_price", "supply", "hhi", "gini", "volatility", "level_variance",
    "price_drift", "supply_drift", "price_entropy", "reserve_coverage", "mean_capital",
    "mean_reward", "utilisation")
"""The ``"default"`` preset (``utilisation`` only where the model has needs and capacities)."""

RMW_REPORTERS: tuple[str, ...] = ("price", "asset_hhi", "mean_capital")
"""The ``"rmw"`` preset: the reference market workload's records (P_j, HHI_j, mean B)."""

PRESETS: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_REPORTERS, "rmw": RMW_REPORTERS, "none": ()}


def resolve_reporters(spec: Any, *, has_resources: bool = False) -> tuple[str, ...]:
    """The reporter names a ``reporters=`` value selects.

    Args:
        spec: None or a preset name (``"default"``, ``"rmw"``, ``"none"``), or a sequence
            of names from :data:`REPORTERS` (no repeats).
        has_resources: whether the model has needs and capacities (the default preset
            collects ``utilisation`` only then).

    Raises:
        ValueError: an unknown preset or name, a repeated name, or another type.
    """
    valid = (f"a preset in {sorted(PRESETS)} or a sequence of reporter names from "
             f"{sorted(REPORTERS)}")
    if spec is None or spec == "default":
        return tuple(name for name in DEFAULT_REPORTERS
                     if name != "utilisation" or has_resources)
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"reporters={spec!r} is invalid: expected {valid}")
        return PRESETS[spec]
    if not isinstance(spec, Sequence) or not all(isinstance(s, str) for s in spec):
        raise ValueError(f"reporters={spec!r} is invalid: expected {valid}")
    unknown = [s for s in spec if s not in REPORTERS]
    if unknown or len(set(spec)) != len(spec):
        raise ValueError(f"reporters={tuple(spec)!r} is invalid: expected {valid}, "
                         f"each at most once")
    return tuple(spec)


def _columns(names: Sequence[str], n_assets: int) -> dict[str, Callable[..., float]]:
    """Column name → one-column reporter: the per-asset columns first, asset by asset
    (``price_0, curve_price_0, supply_0, price_1, ...``), then the others in order."""
    columns: dict[str, Callable[..., float]] = {}
    per_asset = [n for n in names if REPORTERS[n].per_asset]
    for j in range(n_assets):
        for name in per_asset:
            rep = REPORTERS[name]
            columns[f"{rep.prefix or name}_{j}"] = functools.partial(rep.column, asset=j)
    for name in names:
        if not REPORTERS[name].per_asset:
            columns[name] = REPORTERS[name].compute
    return columns


class MarketCollector(mesa.DataCollector):
    """A ``mesa.DataCollector`` of the selected reporters, without deep copies.

    Args:
        names: reporter names (see :func:`resolve_reporters`).
        n_assets: M, for the per-asset columns.
        agent_reporters: Mesa agent reporters, or None.
    """

    def __init__(self, names: Sequence[str], n_assets: int,
                 agent_reporters: dict[str, Any] | None = None) -> None:
        columns = _columns(names, n_assets)
        super().__init__(model_reporters=columns, agent_reporters=agent_reporters)
        self.reporter_names = tuple(names)
        self._own = frozenset(columns)
        self._groups: list[tuple[Callable[[Any], Any], bool,
                                 tuple[Callable[[Any], None], ...]]] = []
        for name in names:
            rep = REPORTERS[name]
            cols = ([f"{rep.prefix or name}_{j}" for j in range(n_assets)] if rep.per_asset
                    else [name])
            self._groups.append((rep.compute, rep.per_asset,
                                 tuple(self.model_vars[c].append for c in cols)))

    def collect(self, model: Any) -> None:
        """Append one row: the built-in reporters' floats as they are, anything else (agent
        reporters, model reporters added later) the Mesa way."""
        extra = ({k: v for k, v in self.model_reporters.items() if k not in self._own}
                 if len(self.model_reporters) != len(self._own) else None)
        steps = getattr(self, "_collection_steps", None)  # Mesa >= 3.5 records model.time
        if steps is not None and self.model_reporters and not extra:
            steps.append(model.time)
        for compute, per_asset, appends in self._groups:
            if per_asset:
                for append, value in zip(appends, compute(model), strict=True):
                    append(value)
            else:
                appends[0](compute(model))
        if extra or self.agent_reporters or self.agenttype_reporters:
            own, self.model_reporters = self.model_reporters, extra or {}
            try:
                super().collect(model)
            finally:
                self.model_reporters = own


    def get_model_vars_dataframe(self) -> Any:
        """Mesa's frame of the model columns; an empty frame where none is collected
        (``reporters="none"``; Mesa raises a UserWarning then)."""
        if not self.model_reporters:
            import pandas as pd

            return pd.DataFrame()
        return super().get_model_vars_dataframe()


def make_collector(model: Any, spec: Any = None, collect_agents: bool = False
                   ) -> MarketCollector:
    """The collector of ``model`` for a ``reporters=`` value (and agent data if asked)."""
    names = resolve_reporters(spec, has_resources=getattr(model, "demand", None) is not None
                              and getattr(model, "capacity", None) is not None)
    agent_reporters = ({"capital": rp.agent_capital, "wealth": rp.agent_wealth,
                        "reward": rp.agent_reward} if collect_agents else None)
    return MarketCollector(names, model.n_assets, agent_reporters)
