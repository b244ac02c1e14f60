"""Deprecated: ``mesa-econ sweep`` lives in :mod:`mesa_econ.cli.sweep`.

This module re-exports the names it used to define, for code that imported them from
here: the writers from :mod:`mesa_econ.cli.sweep`, the value parsers from
:mod:`mesa_econ.cli._params`. It will be removed in a later release.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from mesa_econ.cli._params import parse_lists, parse_value
from mesa_econ.cli.sweep import add_parser as add_sweep_parser
from mesa_econ.cli.sweep import per_run_means, plot_summary, write_outputs

__all__ = ["add_sweep_parser", "parse_params", "parse_value", "per_run_means", "plot_summary",
           "write_outputs"]

warnings.warn("mesa_econ.sweep_cli is deprecated: import from mesa_econ.cli.sweep",
              DeprecationWarning, stacklevel=2)


def parse_params(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["kappa=0.001,0.01", "nu=0"]`` -> ``{"kappa": [0.001, 0.01], "nu": [0]}``."""
    return parse_lists(items, "--param")
