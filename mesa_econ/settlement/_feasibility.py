"""Feasibility primitives of settlement: budgets, the supply limit, partial sell fills.

Pure functions of arrays (no Mesa, no torch), shared by curve and spot settlement
(:mod:`mesa_econ.settlement`): column sums by BLAS, the budget every buy must fit, buys
cut to the supply limit, sells filled to what the reserve pays.
"""

from __future__ import annotations

import numpy as np

# Buys are scaled to spend at most (1 - _BUDGET_MARGIN) of capital, so that rounding in
# the payment sum can never take capital below zero.
_BUDGET_MARGIN = 1e-12
_MONEY_TINY = 1e-300
"""Absolute budget margin (see :func:`_budget`)."""


_FEW_COLUMNS = 8
"""Up to this many assets, row maxima are taken column by column (:func:`_row_max`)."""
_ONES: dict[int, np.ndarray] = {}
_ONES_KEPT = 8
"""How many sizes of ones vectors :func:`column_sums` keeps (the sizes a process steps)."""


def column_sums(x: np.ndarray) -> np.ndarray:
    """Σ_i x_ij of an (N, M) array, shape (M,): one BLAS product ``ones @ x``.

    The same sums as ``x.sum(axis=0)`` in another order (the BLAS kernel's, fixed for a
    given N, CPU and thread count), so the same seed gives the same run; they agree with
    numpy's to float64 rounding, not to the bit. numpy reduces the rows of a narrow
    C-ordered array one at a time: ~80 µs at N = 5000, M = 3, against ~5 µs here.
    """
    n = x.shape[0]
    ones = _ONES.get(n)
    if ones is None:
        if len(_ONES) >= _ONES_KEPT:
            _ONES.clear()
        ones = _ONES[n] = np.ones(n)
        ones.setflags(write=False)
    return ones @ x


def scale_buys_to_budget(orders: np.ndarray, capital: np.ndarray,
                         unit_price: np.ndarray) -> np.ndarray:
    """Scale each agent's buys down so that Σ_j max(ã_ij, 0)·p_j <= B_i.

    Sells are untouched and their proceeds are not counted toward the budget (an agent
    cannot fund a purchase with a sale settling in the same batch).

    Notes:
        A bound agent executes d_i · B_i / (d_i·p), d_i = b_i / max_j b_ij its buys'
        direction: the same as b_i · B_i / (b_i·p), without a cost or a scale beyond
        float64 for orders of any size. The budget is B_i (1 − 10⁻¹²) − 10⁻³⁰⁰, at least
        0: the relative margin absorbs the rounding of the payment sum, the absolute one
        that of denormal amounts, where a relative margin is lost.

    Args:
        orders: ã_ij, shape (N, M). unit_price: price per token p_j, shape (M,).
        capital: B_i >= 0, shape (N,).
    """
    buys = np.maximum(orders, 0.0)
    spend = buys @ unit_price  # inf (with a warning) only for orders beyond ~1e300
    budget = capital * (1.0 - _BUDGET_MARGIN) - _MONEY_TINY  # a no-op above ~1e-284
    over = spend > budget
    if not over.any():
        return orders
    rows = np.flatnonzero(over & (spend > 0.0))  # (budget < 0 where B < 1e-300)
    if rows.size == 0:
        return orders
    peak = _row_max(buys[rows])
    direction = buys[rows] / peak[:, None]
    largest = np.maximum(budget[rows], 0.0) / (direction @ unit_price)  # the largest buy
    executed = orders.copy()
    executed[rows] = np.where(orders[rows] > 0.0, direction * largest[:, None], orders[rows])
    return executed


def _budget_binds(orders: np.ndarray, capital: np.ndarray, unit_price: np.ndarray) -> bool:
    """Whether :func:`scale_buys_to_budget` would cut any order (without cutting them)."""
    buys = np.maximum(orders, 0.0)
    with np.errstate(over="ignore"):
        spend = buys @ unit_price
    over = spend > capital * (1.0 - _BUDGET_MARGIN) - _MONEY_TINY
    return bool(over.any()) and bool((over & (spend > 0.0)).any())


def _row_max(x: np.ndarray) -> np.ndarray:
    """``x.max(axis=1)`` of an (N, M) array; for a few columns as M − 1 elementwise
    maxima (the same values, NaN included; numpy reduces short rows one at a time)."""
    if x.shape[1] > _FEW_COLUMNS or x.shape[1] == 0:
        return x.max(axis=1)
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        np.maximum(out, x[:, j], out=out)
    return out


def _budget(capital: np.ndarray) -> np.ndarray:
    """What buys may cost: B (1 − 10⁻¹²) − 10⁻³⁰⁰, at least 0 (see scale_buys_to_budget)."""
    return np.maximum(capital * (1.0 - _BUDGET_MARGIN) - _MONEY_TINY, 0.0)


def cap_buys_to_room(orders: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Scale every buy of asset j alike so that Σ_i max(ã_ij, 0) <= max(room_j, 0).

    The market's supply limit: ``room = curve.supply_limit − S`` keeps S + Δ within it
    whatever fraction of the sells fills.
    """
    buys = column_sums(np.maximum(orders, 0.0))
    room = np.maximum(room, 0.0)
    over = buys > room
    if not over.any():
        return orders
    factor = np.ones_like(room)
    factor[over] = room[over] / buys[over]
    return np.where(orders > 0.0, orders * factor, orders)


def _fill_sells_to(orders: np.ndarray, target_flow: np.ndarray, short: np.ndarray) -> tuple[
        np.ndarray, np.ndarray]:
    """Scale sells of the ``short`` assets so their net flow becomes ``target_flow``."""
    buys = column_sums(np.maximum(orders, 0.0))
    sells = column_sums(np.minimum(orders, 0.0))
    fill = np.ones(orders.shape[1])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        wanted = np.clip((target_flow - buys) / sells, 0.0, 1.0)
    fill[short] = wanted[short] * (1.0 - _BUDGET_MARGIN)
    return np.where(orders < 0.0, orders * fill, orders), fill


def _any_negative_sum(a: np.ndarray, b: np.ndarray) -> bool:
    """``(a + b < 0).any()``; for a few assets over Python floats (the same sums, cheaper)."""
    if a.ndim == 1 and a.shape == b.shape and a.size <= 16:
        return any(x + y < 0.0 for x, y in zip(a.tolist(), b.tolist(), strict=True))
    return bool((a + b < 0.0).any())


def _any_above(a: np.ndarray, b: np.ndarray) -> bool:
    """``(a > max(b, 0)).any()``; for a few assets over Python floats (cheaper)."""
    if a.ndim == 1 and a.shape == b.shape and a.size <= 16:
        return any(x > max(y, 0.0) for x, y in zip(a.tolist(), b.tolist(), strict=True))
    return bool((a > np.maximum(b, 0.0)).any())
