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
from typing import Any

import mesa

from mesa_econ import reporters as rp
from mesa_econ.reporter_sets import (
    DEFAULT_REPORTERS,
    PRESETS,
    REPORTERS,
    RMW_REPORTERS,
    Reporter,
    resolve_reporters,
)

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
