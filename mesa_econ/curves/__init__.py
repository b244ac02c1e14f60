"""Bonding curves: spot price f(S), reserve R(S), trade cost and its inverse. Implements §3.1.

A bonding curve prices an asset by its outstanding supply S: the spot price is f(S) and
the reserve backing S tokens is R(S) = ∫_0^S f(s) ds, so minting Δ tokens costs
R(S + Δ) - R(S). The paper names linear and logarithmic curves; exponential, sigmoid
(logistic) and power (Bancor) are the other shapes common in token markets.

Decisions a user should know:
    * Parameters are scalars or arrays of shape (M,), one per asset; methods broadcast
      ``supply`` (and ``delta``/``amount``) against them and return float64 ndarrays
      (0-d for scalar input).
    * Domain: ``supply`` finite and >= 0, ``delta >= -supply``, ``amount >= -reserve(supply)``
      (1e-12 relative slack; ``amount == -reserve`` burns exactly the whole supply). A
      violation raises ``ValueError`` naming the argument, the value and the valid range.
    * Overflow: no method returns inf or NaN. The exponential curve takes supplies with
      k·S + ln a + |ln k| <= 700 (``max_supply``) so that f, f' and R fit in float64; any
      other overflowing result raises ``ValueError``.
    * Numerics: ``cost`` never subtracts two large reserves except for the power curve with
      |Δ| > S/2. ``supply_for_deposit`` takes the closed-form inverse, then one Newton step
      on ``cost`` kept only where it shrinks the residual, so a tiny deposit on a large
      supply is accurate to rounding. Δ always has the sign of the amount.
    * ``supply_limit``: the largest supply a market lets the curve reach (within
      ``max_supply``, S <= 1e150 and R(S) <= 1e150), where buys and mints stop.
    * ``PowerCurve.derivative`` at S = 0 with 0 < n < 1 is infinite: it raises.
    * ``SupplyQuote`` is the market step's fast path: the public methods' checks and
      numbers, with the supply checked once for all the trades priced from it.
    * The sigmoid reserve does not saturate: past the midpoint f → L and R grows like L·S.
"""

from mesa_econ.curves.base import BondingCurve, FloatArray
from mesa_econ.curves.kinds import (
    CURVES,
    EXP_LOG_LIMIT,
    ExponentialCurve,
    LinearCurve,
    LogarithmicCurve,
    PowerCurve,
    SigmoidCurve,
    make_curve,
)
from mesa_econ.curves.quote import SupplyQuote

__all__ = [
    "CURVES",
    "EXP_LOG_LIMIT",
    "BondingCurve",
    "ExponentialCurve",
    "FloatArray",
    "LinearCurve",
    "LogarithmicCurve",
    "PowerCurve",
    "SigmoidCurve",
    "SupplyQuote",
    "make_curve",
]
