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
    # f(S) = e^{0.0002 S}: 1.105 at S0 = 500; the gap between marginal and average price
    # (what a first seller gains over the liquidation share) is about 5% there
    "curve_params": {"a": 1.0, "k": 0.0002},
    "graph": "watts_strogatz",
    "graph_params": {"k": 4, "p": 0.1},
    "nu": 0.05,
    "kappa": 1e-3,
    "lam": 1e-5,
    "theta": 0.2,
    "sigma0": 0.005,
    "sigma1": 0.005,
    "zeta": 0.025,
    "sigma_eta": 0.005,
    # the token's yield y·Z per step: carry y·m = 0.004 (0.25% of the price), news
    # y·(Z − m) with std 0.04 that agents see before they trade
    "yield_rate": 0.2,
    "factor_mean": 0.02,
    "factor_std": 0.2,
    "fee": 0.001,
    "income": 1.0,
    "initial_capital": 1000.0,
    "initial_holdings": 10.0,
    "trade_scale": 2.0,
    # ω = 25: a one-token trade moves the quote by ≈ 0.0012 (mostly the impact κ), so its
    # own price move costs ≈ 0.03 per step, the news edge of a one-token position
    "omega": 25.0,
    "stability": "attributed",
    "settlement": "curve",
    "horizon": 128,
}

_RESOURCE: dict[str, Any] = {
    "n_agents": 100,
    "n_assets": 3,
    "curve": "sigmoid",
    # congestion pricing: f ≈ 0.04 at S0 = 100, 0.73 at 200, 2 at capacity C = 250, → 4
    "curve_params": {"height": 4.0, "midpoint": 250.0, "steepness": 0.03},
    "capacity": 250.0,
    # each unit above capacity costs its holders 0.02 per step (2.56 per episode), more
    # than any use value it could bring
    "congestion_fee": 0.02,
    "graph": "watts_strogatz",
    "graph_params": {"k": 6, "p": 0.1},
    "nu": 0.0,
    "kappa": 1e-4,
    "theta": 0.5,
    "sigma0": 0.001,
    "sigma_eta": 0.001,
    "factor_std": 0.05,
    "zeta": 0.01,
    "fee": 0.003,
    "income": 1.0,
    "initial_capital": 200.0,
    "initial_holdings": 1.0,
    "trade_scale": 1.0,
    # needs d_ij ~ U(0, 6): Σ_i d_ij ≈ 300 > C = 250, so capacity binds
    "use_value": 0.01,
    "demand": 3.0,
    "rho": 0.0,
    "cooperative_scope": "all",
    "horizon": 128,
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
