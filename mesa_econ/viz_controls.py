"""Moved to :mod:`mesa_econ.viz.controls`; this name stays importable (no Solara import)."""

from mesa_econ.viz.controls import (
    DEFAULT_SCENARIO,
    FROM_SCENARIO,
    POLICY_CHOICES,
    VizEconomyModel,
    describe_error,
    model_params,
    parse_number,
    parse_seed,
    viz_params,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "FROM_SCENARIO",
    "POLICY_CHOICES",
    "VizEconomyModel",
    "describe_error",
    "model_params",
    "parse_number",
    "parse_seed",
    "viz_params",
]
