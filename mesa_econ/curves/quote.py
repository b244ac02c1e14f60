"""The market step's fast path: one curve at one supply, checked once. Implements §3.1.

See :class:`SupplyQuote`: the public methods' numbers and errors, with the supply checked
once for all the trades priced from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mesa_econ.curves.base import _SMALL, BondingCurve, FloatArray


class SupplyQuote:
    """One curve at one supply S: the costs and average prices of trades from S, checked once.

    This is the market step's fast path (curve settlement prices several flows from the
    same supply each step). The public methods check ``supply`` on every call and each
    enter an ``np.errstate``; at the model's sizes (a few assets) that costs more than the
    arithmetic. Here ``supply`` is checked once, each Δ by the one further condition that
    :meth:`BondingCurve.cost` needs (S + Δ in the domain, which also rules out a non-finite
    Δ), and the result must be finite, as ``cost`` requires. The same private kernel
    then gives bit-for-bit the values of the public method. Any input that fails a check,
    and any non-finite result, goes to the public method itself, so the error raised is
    the one it raises (and values it accepts, e.g. a sum that overflows while every entry
    is finite, come back unchanged).

    Args:
        curve: the assets' bonding curves.
        supply: S, float64 of the curve's parameter shape (others take the public path).
        spot: f(S) as ``curve.price(supply)`` returned it, if the caller has it (the model
            keeps the last step's); otherwise computed, with ``price``'s checks, when needed.
    """

    __slots__ = ("_spot", "_supply_ok", "curve", "supply")

    def __init__(self, curve: BondingCurve, supply: FloatArray,
                 spot: FloatArray | None = None) -> None:
        self.curve, self.supply, self._spot = curve, supply, spot
        self._supply_ok = curve._fits(supply)

    @property
    def spot(self) -> FloatArray:
        """f(S), with :meth:`BondingCurve.price`'s result and errors."""
        if self._spot is None:
            if self._supply_ok:
                values = _quiet(self.curve._price, self.supply)
                if _all_finite(values):
                    self._spot = values
                    return values
            self._spot = self.curve.price(self.supply)
        return self._spot

    def cost(self, delta: FloatArray) -> FloatArray:
        """R(S + Δ) − R(S): ``curve.cost(supply, delta)``, bit for bit, with its errors."""
        curve, s = self.curve, self.supply
        if self._supply_ok and curve._fits(s + delta):
            values = _quiet(curve._cost, s, delta)
            if _all_finite(values):
                return values
        return curve.cost(s, delta)

    def average_price(self, delta: FloatArray, cost: FloatArray) -> FloatArray:
        """(R(S + Δ) − R(S)) / Δ, and f(S) where Δ = 0, given ``cost = self.cost(delta)``.

        The numbers of ``curve.average_price(supply, delta)``. f(S) is :attr:`spot`, read
        only where some Δ is 0 (where every asset moved there is nothing to select).
        """
        if delta.ndim == 1 and delta.size <= _SMALL and 0.0 not in delta.tolist():  # moved
            return cost / delta  # §3.1
        moved = delta != 0.0
        return np.where(moved, cost / np.where(moved, delta, 1.0), self.spot)  # §3.1


@np.errstate(all="ignore")
def _quiet(kernel: Callable[..., FloatArray], *args: FloatArray) -> FloatArray:
    """``kernel(*args)`` with floating-point warnings off, as the public methods run it.

    (The decorator form of ``np.errstate`` costs half its ``with`` form per call.)
    """
    return kernel(*args)


def _all_finite(values: FloatArray) -> bool:
    """Whether every entry is finite (what ``_guard`` accepts), cheaply for the model's sizes."""
    if values.ndim == 1 and values.size <= _SMALL:
        return all(map(math.isfinite, values.tolist()))
    return math.isfinite(values.sum()) or bool(np.isfinite(values).all())
