"""The named reporters a model can collect, and the presets (no Mesa import).

:mod:`mesa_econ.collector` builds the DataCollector from these; they live here, apart
from it, so that validating a ``reporters=`` value (``ModelConfig``) does not load Mesa.
Every name is re-exported by :mod:`mesa_econ.collector`, their documented home.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from mesa_econ import reporters as rp

__all__ = ["DEFAULT_REPORTERS", "PRESETS", "REPORTERS", "RMW_REPORTERS", "Reporter",
           "resolve_reporters"]


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
