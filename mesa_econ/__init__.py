"""mesa_econ: agent-based economies with learning agents and dynamic asset pricing.

N trader agents (Mesa agents, each with a PyTorch actor-critic policy) trade M assets
priced by stochastic bonding curves over a NetworkX interaction graph. See README.md and
docs/equations.md for the mapping from the paper's equations to the code.
"""

from mesa_econ.agents import TraderAgent
from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig, RewardConfig
from mesa_econ.curves import make_curve
from mesa_econ.model import EconomyModel
from mesa_econ.scenarios import SCENARIOS, build_model, scenario_params

__version__ = "0.2.0"

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
