"""Deprecated: ``mesa-econ train`` lives in :mod:`mesa_econ.cli.train`.

This module re-exports its public names for code that imported them from here; import
them from ``mesa_econ.cli.train`` instead. It will be removed in a later release.
"""

from __future__ import annotations

import warnings

from mesa_econ.cli.train import BASELINES, add_parser, compare_arms, run_training

__all__ = ["BASELINES", "add_parser", "compare_arms", "run_training"]

warnings.warn("mesa_econ.rl.cli is deprecated: import from mesa_econ.cli.train",
              DeprecationWarning, stacklevel=2)
