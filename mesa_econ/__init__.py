"""mesa_econ: agent-based economies with learning agents and dynamic asset pricing.

N trader agents (Mesa agents, each with a PyTorch actor-critic policy) trade M assets
priced by stochastic bonding curves over a NetworkX interaction graph. See README.md and
docs/equations.md for the mapping from the paper's equations to the code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesa_econ._lazy import lazy_names

if TYPE_CHECKING:
    from mesa_econ.agents import TraderAgent
    from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig, RewardConfig
    from mesa_econ.curves import make_curve
    from mesa_econ.model import EconomyModel
    from mesa_econ.scenarios import SCENARIOS, build_model, scenario_params

# Public name -> the module defining it, imported on first access (PEP 562): importing a
# submodule (the ``mesa-econ`` command's router, config, scenarios) does not import Mesa
# and torch through this file.
_LAZY = {
    "TraderAgent": "mesa_econ.agents",
    **dict.fromkeys(("MarketConfig", "ModelConfig", "PolicyConfig", "RewardConfig"),
                    "mesa_econ.config"),
    "make_curve": "mesa_econ.curves",
    "EconomyModel": "mesa_econ.model",
    **dict.fromkeys(("SCENARIOS", "build_model", "scenario_params"), "mesa_econ.scenarios"),
}


__getattr__, __dir__ = lazy_names(globals(), _LAZY)


__version__ = "0.3.2"

__all__ = [
    "SCENARIOS",
    "EconomyModel",
    "MarketConfig",
    "ModelConfig",
    "PolicyConfig",
    "RewardConfig",
    "TraderAgent",
    "__version__",
    "build_model",
    "make_curve",
    "scenario_params",
]
