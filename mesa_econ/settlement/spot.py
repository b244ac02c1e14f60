"""Spot settlement: every trade at the pre-trade quoted price P_j(t) (§5.2, literally).

Pure functions of arrays (no Mesa, no torch).
"""

from __future__ import annotations

import numpy as np

from mesa_econ.settlement._feasibility import (
    _BUDGET_MARGIN,
    _MONEY_TINY,
    _any_above,
    _any_negative_sum,
    _fill_sells_to,
    cap_buys_to_room,
    column_sums,
    scale_buys_to_budget,
)


def settle_spot(orders: np.ndarray, capital: np.ndarray, reserve: np.ndarray,
                price: np.ndarray, room: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Settle every order at the pre-trade quoted price. Implements §5.2 literally.

    Notes:
        B_i(t+1) = B_i(t) − Σ_j ã_ij P_j(t) + I_i(t). The reserve moves by Δ_j P_j(t).
        A trader can profit from its own price impact here (buy, the price rises, sell);
        ``settle_curve`` is the default for that reason. With ``room`` (the curve's
        supply limit − S), budgeted buys are then cut to it (every buyer of an asset
        alike): a buy at the price floor can ask for more tokens than the curve can price.

    Returns:
        (executed, payments, reserve_change, clearing_price, sell_fill)
    """
    return _settle_spot(orders, capital, reserve, price, room)[:5]


def _settle_spot(orders: np.ndarray, capital: np.ndarray, reserve: np.ndarray,
                 price: np.ndarray, room: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """:func:`settle_spot`; also returns the net flow Δ and the demand D (column sums).

    The fast path: when no budget binds, nothing passes the supply limit and the reserve
    pays every sale, the orders execute as they are; their buys, found once, give the
    budget check, the room check and D.

    Returns:
        (executed, payments, reserve_change, clearing_price, sell_fill, net_flow, demand)
    """
    buys = np.maximum(orders, 0.0)
    with np.errstate(over="ignore"):  # buys of ~1e300 tokens: costs overflow, fills do not
        spend = buys @ price
    budget = capital * (1.0 - _BUDGET_MARGIN) - _MONEY_TINY  # as scale_buys_to_budget
    demand = column_sums(buys)
    if (spend > budget).any() or (room is not None and _any_above(demand, room)):
        with np.errstate(over="ignore"):
            orders = scale_buys_to_budget(orders, capital, price)
        if room is not None:
            orders = cap_buys_to_room(orders, room)
        demand = None
    flow = column_sums(orders)
    fill = np.ones(orders.shape[1])
    if _any_negative_sum(reserve, flow * price):  # the reserve cannot pay these sales
        short = reserve + flow * price < 0.0
        orders, fill = _fill_sells_to(orders, -reserve / price, short)
        flow = column_sums(orders)
        demand = None
    if demand is None:
        demand = column_sums(np.maximum(orders, 0.0))
    return orders, orders @ price, flow * price, price.copy(), fill, flow, demand
