"""Settlement: which orders execute, at which price, within budgets and reserves. Implements §5.2.

Pure functions of arrays (no Mesa, no torch); :func:`mesa_econ.dynamics.market_step` calls
them after peer influence and the no-short-sale rule. Decisions (docs/model.md, Feasibility):

- **Supply limit.** Trades never take an asset's supply past its curve's
  ``supply_limit`` (the asset's buyers cut alike: until S + Δ = limit under curve
  settlement, the buys to limit − S under spot): prices, reserves and their products
  stay finite.
- **Curve settlement.** Each asset's net flow Δ_j clears at the uniform price
  p̄_j = (R(S+Δ) − R(S))/Δ; the reserve moves by exactly R(S+Δ) − R(S). A buyer whose order
  does not fit its budget at the clearing prices is scaled down (one scale per agent,
  proportionally across assets) until it spends exactly its budget there: the unit prices
  u solve u = p̄(Δ(u)) (:func:`settle_curve`). A larger order never fills less.
- **Spot settlement.** Every trade at the pre-trade quote P_j(t) (the paper's §5.2).
- **Reserve shortfall.** A net sale the reserve cannot pay is filled partially, every
  seller of that asset alike, the fill reported.
"""

# the private names other modules import from here (dynamics, fast_step, tests)
from mesa_econ.settlement._feasibility import _BUDGET_MARGIN as _BUDGET_MARGIN
from mesa_econ.settlement._feasibility import _MONEY_TINY as _MONEY_TINY
from mesa_econ.settlement._feasibility import _budget_binds as _budget_binds
from mesa_econ.settlement._feasibility import (
    cap_buys_to_room,
    column_sums,
    scale_buys_to_budget,
)
from mesa_econ.settlement.curve import _settle_curve as _settle_curve
from mesa_econ.settlement.curve import settle_curve
from mesa_econ.settlement.spot import _settle_spot as _settle_spot
from mesa_econ.settlement.spot import settle_spot

__all__ = [
    "cap_buys_to_room",
    "column_sums",
    "scale_buys_to_budget",
    "settle_curve",
    "settle_spot",
]
