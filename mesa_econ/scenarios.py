"""§9 scenario presets: keyword arguments for :class:`~mesa_econ.model.EconomyModel`.

Each preset is plain data (so Solara controls, ``batch_run`` and the CLI can use it) chosen
for sensible economics first; see docs/scenarios.md for the reasoning behind each number.

- ``defi_token_market``: 50 traders, one token on an exponential bonding curve, price
  impact and a mean-reverting deviation; agents rewarded for profit and price stability.
- ``resource_network``: 100 agents, 3 resources with logistic (sigmoid) curves acting as
  congestion pricing around each resource's capacity; agents value units up to their
  need d_ij (use value) and share in the others' profit (cooperative reward).
- ``shock_recovery``: the DeFi market hit by a spike in the stochastic factor Z at step
  50; the deviation's mean reversion θ = 0.1 (a half-life of about 7 steps) is stated so
  that recovery attributable to agents can be separated from the market's own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCENARIOS", "build_model", "scenario_params"]

_DEFI: dict[str, Any] = {
    "n_agents": 50,
    "n_assets": 1,
    "curve": "exponential",
    "curve_params": {"a": 1.0, "k": 0.001},
    "graph": "watts_strogatz",
    "graph_params": {"k": 4, "p": 0.1},
    "nu": 0.05,
    "kappa": 1e-3,
    "lam": 1e-5,
    "theta": 0.2,
    "sigma0": 0.005,
    "sigma1": 0.005,
    "zeta": 0.05,
    "sigma_eta": 0.005,
    "factor_std": 0.1,
    "income": 1.0,
    "initial_capital": 1000.0,
    "initial_holdings": 10.0,
    "trade_scale": 2.0,
    "omega": 50.0,
    "settlement": "curve",
}

_RESOURCE: dict[str, Any] = {
    "n_agents": 100,
    "n_assets": 3,
    "curve": "sigmoid",
    # capacity C_j = 300 units per resource: f ≈ 0.07 at S0 = 100, 2 at capacity, → 4
    "curve_params": {"height": 4.0, "midpoint": 300.0, "steepness": 0.02},
    "graph": "watts_strogatz",
    "graph_params": {"k": 6, "p": 0.1},
    "nu": 0.0,
    "kappa": 5e-4,
    "theta": 0.5,
    "sigma0": 0.005,
    "sigma_eta": 0.005,
    "factor_std": 0.05,
    "zeta": 0.05,
    "income": 2.0,
    "initial_capital": 200.0,
    "initial_holdings": 1.0,
    "trade_scale": 1.0,
    "use_value": 0.5,
    "demand": 3.0,
    "rho": 0.01,
    "cooperative_scope": "neighbours",
}

_SHOCK: dict[str, Any] = {
    **_DEFI,
    "theta": 0.1,
    "zeta": 0.5,
    "shock_step": 50,
    "shock_size": 3.0,
    "shock_decay": 0.5,
}

SCENARIOS: dict[str, dict[str, Any]] = {
    "defi_token_market": _DEFI,
    "resource_network": _RESOURCE,
    "shock_recovery": _SHOCK,
}


def scenario_params(name: str, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of a scenario, with ``overrides`` applied.

    Raises:
        ValueError: unknown scenario name.
    """
    if name not in SCENARIOS:
        raise ValueError(f"scenario={name!r} is invalid: expected one of {sorted(SCENARIOS)}")
    params = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SCENARIOS[name].items()}
    params.update(overrides)
    return params


def build_model(name: str, **overrides: Any):
    """An :class:`~mesa_econ.model.EconomyModel` of the named scenario."""
    from mesa_econ.model import EconomyModel

    return EconomyModel(**scenario_params(name, **overrides))
