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
    * ``PowerCurve.derivative`` at S = 0 with 0 < n < 1 is infinite: it raises.
    * ``SupplyQuote`` is the market step's fast path: the public methods' checks and
      numbers, with the supply checked once for all the trades priced from it.
    * The sigmoid reserve does not saturate: past the midpoint f → L and R grows like L·S.
"""

from __future__ import annotations

import inspect
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import expit, lambertw, xlog1py

FloatArray = npt.NDArray[np.float64]

EXP_LOG_LIMIT = 700.0
"""Largest natural log of any value the exponential curve may produce (float64: ~709.78)."""

_SMALL = 16
"""Up to this many assets, checks loop over Python floats (cheaper than numpy calls)."""


def _g(x: FloatArray) -> FloatArray:
    """(1 + x) ln(1 + x) - x for x >= -1, with a series where it would cancel (|x| < 1e-3)."""
    small = np.abs(x) < 1e-3
    xs = np.where(small, x, 0.0)
    series = xs**2 / 2 - xs**3 / 6 + xs**4 / 12 - xs**5 / 20 + xs**6 / 30
    xb = np.where(small, 1.0, x)
    return np.where(small, series, xlog1py(1 + xb, xb) - xb)  # xlog1py: 0 at x = -1


def _softplus_diff(x0: FloatArray, d: FloatArray) -> FloatArray:
    """softplus(x0 + d) - softplus(x0), without cancellation for small or large d."""
    near = np.abs(d) < 1.0
    small = np.log1p(expit(x0) * np.expm1(np.where(near, d, 0.0)))
    x1 = x0 + d
    relu = np.where(x0 >= 0, np.maximum(d, -x0), np.maximum(x1, 0.0))
    large = relu + np.log1p(np.exp(-np.abs(x1))) - np.log1p(np.exp(-np.abs(x0)))
    return np.where(near, small, large)


class BondingCurve(ABC):
    """A family of bonding curves f_j, one per asset. Implements §3.1.

    Subclasses supply ``_price``, ``_derivative``, ``_cost`` and ``_delta_for`` on
    validated, broadcast arrays; this class checks inputs and refuses non-finite output.

    Attributes:
        kind: Short name used by :func:`make_curve`.
        params: Parameter name → float ndarray (0-d or shape (M,)).
    """

    kind: ClassVar[str]
    _bounds: ClassVar[tuple[tuple[str, float, bool], ...]]  # (name, lower bound, strict)
    params: dict[str, FloatArray]

    def __init__(self, **params: Any) -> None:
        self.params = {}
        for name, low, strict in self._bounds:
            arr = _as_float(params[name])
            below = arr is not None and np.any(arr <= low if strict else arr < low)
            if arr is None or arr.ndim > 1 or arr.size == 0 or below:
                valid = f"a finite real {'>' if strict else '>='} {low:g}"
                self._fail(name, params[name], f"{valid} (scalar or one value per asset)")
            self.params[name] = arr
            setattr(self, name, arr)
        shapes = {name: a.shape for name, a in self.params.items()}
        try:
            self._shape = np.broadcast_shapes(*shapes.values())
        except ValueError:
            raise ValueError(
                f"{self.kind} curve: parameter shapes {shapes} differ; "
                "give scalars or sequences of the same length"
            ) from None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v.tolist()!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    @property
    def max_supply(self) -> FloatArray:
        """Largest supply evaluated without float64 overflow (inf where unbounded)."""
        return np.full(self._shape, np.inf)

    @np.errstate(all="ignore")
    def price(self, supply: npt.ArrayLike) -> FloatArray:
        """Spot price of the curve. Implements §3.1.

        Args:
            supply: Supply S >= 0, broadcastable against the parameters.

        Returns:
            f(S), float ndarray of the broadcast shape.

        Notes:
            P_j(t) = f_j(S_j(t), Φ_j) + η_j(t); this is the deterministic part f_j(S_j).
        """
        (s,) = self._inputs(supply)
        return self._guard(self._price(s), "price", s)  # §3.1

    @np.errstate(all="ignore")
    def derivative(self, supply: npt.ArrayLike) -> FloatArray:
        """Slope f'(S) = df/dS of the curve at supply S >= 0. Implements §3.1."""
        (s,) = self._inputs(supply)
        return self._guard(self._derivative(s), "derivative", s)

    @np.errstate(all="ignore")
    def reserve(self, supply: npt.ArrayLike) -> FloatArray:
        """Reserve backing a supply. Implements §3.1.

        Args:
            supply: Supply S >= 0.

        Returns:
            R(S) >= 0.

        Notes:
            R(S) = ∫_0^S f(s) ds = cost(0, S), the total paid to mint S tokens from zero.
        """
        (s,) = self._inputs(supply)
        return self._guard(self._reserve_of(s), "reserve", s)  # §3.1

    def _reserve_of(self, s: FloatArray) -> FloatArray:
        """R(S) = cost(0, S); subclasses with a cheaper closed form override this."""
        return self._cost(np.zeros_like(s), s)

    @np.errstate(all="ignore")
    def cost(self, supply: npt.ArrayLike, delta: npt.ArrayLike) -> FloatArray:
        """Currency paid to mint ``delta`` tokens (negative: received). Implements §3.1.

        Args:
            supply: Supply S >= 0 before the trade.
            delta: Tokens minted, Δ >= -S (negative: sold back to the curve).

        Returns:
            R(S + Δ) - R(S).

        Notes:
            cost(S, Δ) = ∫_S^{S+Δ} f(s) ds, in a closed form that avoids cancellation.
        """
        s, d = self._inputs(supply, delta)
        self._check_supply(s + d, "supply + delta")
        return self._guard(self._cost(s, d), "cost", s)  # §3.1

    @np.errstate(all="ignore")
    def average_price(self, supply: npt.ArrayLike, delta: npt.ArrayLike) -> FloatArray:
        """Average price per token of a trade. Implements §3.1.

        Args:
            supply: Supply S >= 0 before the trade.
            delta: Tokens minted, Δ >= -S.

        Returns:
            cost(S, Δ) / Δ, and its limit f(S) where Δ == 0.

        Notes:
            (R(S + Δ) - R(S)) / Δ lies between f(S) and f(S + Δ) for nondecreasing f.
        """
        s, d = self._inputs(supply, delta)
        c = self.cost(s, d)
        nonzero = d != 0
        return np.where(nonzero, c / np.where(nonzero, d, 1.0), self._price(s))  # §3.1

    @np.errstate(all="ignore")
    def supply_for_deposit(self, supply: npt.ArrayLike, amount: npt.ArrayLike) -> FloatArray:
        """Tokens minted for a deposit, burned for a withdrawal. Implements §3.1.

        Args:
            supply: Supply S >= 0 before the trade.
            amount: Currency deposited, A >= -R(S) (negative: withdrawn from the reserve).

        Returns:
            Δ >= -S with cost(S, Δ) = A.

        Raises:
            ValueError: A < -R(S), or S + Δ beyond ``max_supply`` or float64.

        Notes:
            Δ = R⁻¹(R(S) + A) - S by each curve's closed form, then one Newton step
            Δ ← Δ - (cost(S, Δ) - A) / f(S + Δ), kept where it shrinks the residual.
        """
        s, amt = self._inputs(supply, amount, name="amount")
        r = self._guard(self._cost(np.zeros_like(s), s), "reserve", s)
        if np.any(short := amt < -r * (1 + 1e-12)):
            i = np.flatnonzero(short)[0]
            valid = f"amount >= -reserve(supply) = {-r.flat[i]:g} (withdraw at most the reserve)"
            self._fail("amount", float(amt.flat[i]), valid)
        amt = np.maximum(amt, -r)
        d = np.where(amt <= -r, -s, np.maximum(self._delta_for(s, amt, r), -s))  # §3.1
        self._check_supply(s + d, "supply after the deposit")
        resid = self._cost(s, d) - amt
        slope = self._price(s + d)
        step = np.where(slope > 0, resid / np.where(slope > 0, slope, 1.0), 0.0)
        better = np.clip(d - step, -s, self.max_supply - s)
        keep = np.abs(self._cost(s, better) - amt) < np.abs(resid)
        d, sign = np.where(keep, better, d), np.sign(amt)
        return sign * np.maximum(sign * d, 0.0) + 0.0  # Δ has the sign of A; no -0.0

    def supply_at_reserve(self, reserve: npt.ArrayLike) -> FloatArray:
        """Supply R⁻¹(reserve) backed by a reserve >= 0. Implements §3.1."""
        r = np.asarray(reserve, dtype=float)
        if not np.all(np.isfinite(r) & (r >= 0)):
            self._fail("reserve", reserve, "finite reals >= 0")
        return self.supply_for_deposit(np.zeros_like(r), r)

    @abstractmethod
    def _price(self, s: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _derivative(self, s: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray: ...

    @abstractmethod
    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        """Closed-form Δ with R(S + Δ) = R(S) + A, given A = amt and r = R(S)."""

    def _fail(self, name: str, value: Any, valid: str) -> None:
        raise ValueError(f"{self.kind} curve: {name}={value!r} is invalid: expected {valid}")

    def _inputs(
        self, supply: npt.ArrayLike, other: npt.ArrayLike | None = None, name: str = "delta"
    ) -> list[FloatArray]:
        if other is None and self._fits(supply):  # fast path: the model's per-asset arrays
            return [supply]
        if (
            type(other) is np.ndarray
            and other.dtype == np.float64
            and other.shape == self._shape
            and self._fits(supply)
            and bool(np.isfinite(other).all())
        ):
            return [supply, other]
        arrays = [np.asarray(supply, dtype=float)]
        if other is not None:
            arrays.append(np.asarray(other, dtype=float))
            if not np.all(np.isfinite(arrays[1])):
                self._fail(name, other, "finite reals")
        try:
            shape = np.broadcast_shapes(self._shape, *(x.shape for x in arrays))
        except ValueError:
            raise ValueError(
                f"{self.kind} curve: inputs of shapes {[x.shape for x in arrays]}"
                f" do not broadcast against parameters of shape {self._shape}"
            ) from None
        arrays = [np.broadcast_to(x, shape) for x in arrays]
        self._check_supply(arrays[0], "supply")
        return arrays

    @property
    def _supply_bound(self) -> FloatArray:
        """max_supply with inf replaced by the largest float (so inf/NaN fail `<=`)."""
        bound = self.__dict__.get("_bound_cache")
        if bound is None:
            bound = np.minimum(np.broadcast_to(self.max_supply, self._shape),
                               np.finfo(float).max)
            self.__dict__["_bound_cache"] = bound
        return bound

    def _fits(self, s: Any) -> bool:
        """Whether ``s`` is a float64 array of the parameters' shape in [0, max_supply].

        NaN and inf fail (the bound is finite). The model's per-asset arrays are small:
        for up to ``_SMALL`` entries, comparing Python floats costs less than numpy calls.
        """
        if type(s) is not np.ndarray or s.dtype != np.float64 or s.shape != self._shape:
            return False
        if s.ndim == 1 and s.size <= _SMALL:
            low, high = self._domain_lists()
            values = s.tolist()
            return all(map(operator.le, low, values)) and all(map(operator.le, values, high))
        return bool((s >= 0.0).all()) and bool((s <= self._supply_bound).all())

    def _domain_lists(self) -> tuple[list[float], list[float]]:
        """[0, ..., 0] and the supply bound as Python lists (for :meth:`_fits`)."""
        lists = self.__dict__.get("_domain_cache")
        if lists is None:
            high = self._supply_bound.tolist()
            lists = self.__dict__["_domain_cache"] = ([0.0] * len(high), high)
        return lists

    def _check_supply(self, s: FloatArray, name: str) -> None:
        if self._fits(s):  # the model's arrays: one cheap pass
            return
        limit = np.broadcast_to(self.max_supply, s.shape)
        if np.any(bad := ~(np.isfinite(s) & (s >= 0) & (s <= limit))):
            i = np.flatnonzero(bad)[0]
            valid = f"a finite real in [0, {limit.flat[i]:g}]" + self._limit_note(s.shape, i)
            self._fail(name, float(s.flat[i]), valid)

    def _limit_note(self, shape: tuple[int, ...], index: int) -> str:
        return ""

    def _guard(self, values: FloatArray, what: str, s: FloatArray) -> FloatArray:
        if math.isfinite(values.sum()):  # one reduction: NaN and inf both propagate
            return values
        if not np.all(finite := np.isfinite(values)):
            i = np.flatnonzero(~finite)[0]
            raise ValueError(
                f"{self.kind} curve: {what} overflows float64 at supply="
                f"{s.flat[i]:g} with {self!r}; use smaller supplies or rescale"
            )
        return values


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


def _as_float(value: Any) -> FloatArray | None:
    """``value`` as a float array if it is real and finite, else None."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if np.all(np.isfinite(arr)) else None


class LinearCurve(BondingCurve):
    """Linear curve f(S) = m S + b (the paper's first example). Implements §3.1.

    Args:
        slope: m >= 0, price increase per token.
        intercept: b >= 0, price of the first token (m and b not both 0).

    Notes:
        f'(S) = m;  R(S) = b S + m S²/2;  cost(S, Δ) = Δ (b + m (S + Δ/2));
        inverse Δ = 2A / (c + sqrt(c² + 2 m A)) with c = f(S) (the stable quadratic root).
    """

    kind = "linear"
    _bounds = (("slope", 0.0, False), ("intercept", 0.0, False))
    slope: FloatArray
    intercept: FloatArray

    def __init__(self, slope: npt.ArrayLike = 0.01, intercept: npt.ArrayLike = 1.0) -> None:
        super().__init__(slope=slope, intercept=intercept)
        if np.any((self.slope == 0) & (self.intercept == 0)):
            self._fail("slope", slope, f"slope > 0 where intercept == 0 (got {intercept!r})")

    def _price(self, s: FloatArray) -> FloatArray:
        return self.slope * s + self.intercept  # §3.1

    def _derivative(self, s: FloatArray) -> FloatArray:
        return np.broadcast_to(self.slope, s.shape).astype(float)

    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray:
        return d * (self.intercept + self.slope * (s + d / 2))  # §3.1

    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        c, m = self._price(s), self.slope
        # sqrt(c² + 2mA) without over/underflow: hypot for deposits; for withdrawals c > 0
        # and |2mA| <= c², so factor out c.
        deposit_root = np.hypot(c, np.sqrt(2 * m) * np.sqrt(np.maximum(amt, 0.0)))
        c_safe = np.where(c > 0, c, 1.0)
        withdraw_root = c * np.sqrt(np.maximum(1 + (2 * m / c_safe) * (amt / c_safe), 0.0))
        denom = c + np.where(amt >= 0, deposit_root, withdraw_root)
        return np.where(denom > 0, amt / np.where(denom > 0, denom, 1.0) * 2, 0.0)  # §3.1


class LogarithmicCurve(BondingCurve):
    """Logarithmic curve f(S) = k ln(S + 1) (the paper's second example). Implements §3.1.

    Args:
        k: Scale k > 0.

    Notes:
        f'(S) = k / (S + 1);  R(S) = k [(S + 1) ln(S + 1) - S] = k g(S);
        cost(S, Δ) = k [Δ ln(1 + S) + (1 + S) g(Δ / (1 + S))] with g(x) = (1+x)ln(1+x) - x;
        inverse: u = S + 1 solves u (ln u - 1) = R/k - 1, so u = exp(W((R/k - 1)/e) + 1)
        with W the principal branch of Lambert W (a series for small R/k).
    """

    kind = "logarithmic"
    _bounds = (("k", 0.0, True),)
    k: FloatArray

    def __init__(self, k: npt.ArrayLike = 1.0) -> None:
        super().__init__(k=k)

    def _price(self, s: FloatArray) -> FloatArray:
        return self.k * np.log1p(s)  # §3.1

    def _derivative(self, s: FloatArray) -> FloatArray:
        return self.k / (1 + s)

    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray:
        return self.k * (d * np.log1p(s) + (1 + s) * _g(d / (1 + s)))  # §3.1

    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        y = np.maximum(r + amt, 0.0) / self.k
        w = lambertw(np.maximum((y - 1) / np.e, -1 / np.e)).real
        t = np.sqrt(2 * y)  # g(x) = y inverted by series: x = t + t²/6 - t³/72 + O(t⁴)
        new_supply = np.where(y < 1e-6, t + t**2 / 6 - t**3 / 72, np.expm1(w + 1))  # §3.1
        return new_supply - s


class ExponentialCurve(BondingCurve):
    """Exponential curve f(S) = a exp(k S). Implements §3.1.

    Args:
        a: Price at zero supply, a > 0.
        k: Growth rate per token, k > 0.

    Notes:
        f'(S) = a k exp(k S);  R(S) = (a/k) expm1(k S);
        cost(S, Δ) = (a/k) exp(k S) expm1(k Δ);  inverse Δ = log1p(A k exp(-k S) / a) / k.
        Supplies are limited to k S + ln a + |ln k| <= 700 so that f, f' and R stay finite.
    """

    kind = "exponential"
    _bounds = (("a", 0.0, True), ("k", 0.0, True))
    a: FloatArray
    k: FloatArray

    def __init__(self, a: npt.ArrayLike = 1.0, k: npt.ArrayLike = 0.001) -> None:
        super().__init__(a=a, k=k)
        if np.any(np.log(self.a) + np.abs(np.log(self.k)) >= EXP_LOG_LIMIT):
            self._fail("a", a, f"ln a + |ln k| < {EXP_LOG_LIMIT:g} (k={k!r}): no supply fits")

    @property
    def max_supply(self) -> FloatArray:
        headroom = EXP_LOG_LIMIT - np.log(self.a) - np.abs(np.log(self.k))
        return np.broadcast_to(headroom / self.k, self._shape).astype(float)

    def _limit_note(self, shape: tuple[int, ...], index: int) -> str:
        k, a = (np.broadcast_to(p, shape).flat[index] for p in (self.k, self.a))
        return (
            f" (exponential overflow limit k*S + ln(a) + |ln(k)| <= {EXP_LOG_LIMIT:g}"
            f" with k={float(k):g}, a={float(a):g})"
        )

    def _price(self, s: FloatArray) -> FloatArray:
        return self.a * np.exp(self.k * s)  # §3.1

    def _derivative(self, s: FloatArray) -> FloatArray:
        return self.a * self.k * np.exp(self.k * s)

    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray:
        return self.a / self.k * np.exp(self.k * s) * np.expm1(self.k * d)  # §3.1

    def _reserve_of(self, s: FloatArray) -> FloatArray:
        return self.a / self.k * np.expm1(self.k * s)  # §3.1 R(S) = (a/k)(e^{kS} − 1)

    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        return np.log1p(amt * self.k / self.a * np.exp(-self.k * s)) / self.k  # §3.1


class SigmoidCurve(BondingCurve):
    """Logistic curve f(S) = L / (1 + exp(-k (S - s0))). Implements §3.1.

    Args:
        height: Ceiling price L > 0.
        midpoint: Supply s0 >= 0 where the price is L/2.
        steepness: Slope parameter k > 0.

    Notes:
        f'(S) = L k σ(x) σ(-x) with x = k (S - s0) and σ the logistic function;
        R(S) = (L/k) [softplus(k (S - s0)) - softplus(-k s0)], softplus(x) = ln(1 + eˣ);
        cost(S, Δ) = (L/k) ln(1 + σ(x) expm1(k Δ)) for |k Δ| < 1, else the softplus
        difference split into its linear and bounded parts;
        inverse: S' = s0 + softplus⁻¹(k R'/L + softplus(-k s0)) / k,
        softplus⁻¹(y) = y + ln(-expm1(-y)).
    """

    kind = "sigmoid"
    _bounds = (("height", 0.0, True), ("midpoint", 0.0, False), ("steepness", 0.0, True))
    height: FloatArray
    midpoint: FloatArray
    steepness: FloatArray

    def __init__(
        self,
        height: npt.ArrayLike = 2.0,
        midpoint: npt.ArrayLike = 1000.0,
        steepness: npt.ArrayLike = 0.01,
    ) -> None:
        super().__init__(height=height, midpoint=midpoint, steepness=steepness)

    def _price(self, s: FloatArray) -> FloatArray:
        return self.height * expit(self.steepness * (s - self.midpoint))  # §3.1

    def _derivative(self, s: FloatArray) -> FloatArray:
        x = self.steepness * (s - self.midpoint)
        return self.height * self.steepness * expit(x) * expit(-x)

    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray:
        k = self.steepness
        return self.height / k * _softplus_diff(k * (s - self.midpoint), k * d)  # §3.1

    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        k = self.steepness
        y = k * np.maximum(r + amt, 0.0) / self.height + np.logaddexp(0.0, -k * self.midpoint)
        x = y + np.log(-np.expm1(-y))  # softplus inverse; -inf when y underflows to 0
        return np.maximum(self.midpoint + x / k, 0.0) - s  # §3.1


class PowerCurve(BondingCurve):
    """Power (Bancor) curve f(S) = a Sⁿ, reserve ratio r = 1/(n + 1). Implements §3.1.

    Args:
        a: Scale a > 0.
        n: Exponent n >= 0 (n = 0: constant price a; n = 1: linear through the origin).

    Notes:
        f'(S) = a n S^(n-1);  R(S) = a S^(n+1) / (n + 1), so R = r S f(S);
        cost(S, Δ) = R(S) expm1((n + 1) log1p(Δ/S)) for |Δ| <= S/2, else R(S+Δ) - R(S);
        inverse S' = ((n + 1) R' / a)^(1/(n+1)), evaluated in logs.
    """

    kind = "power"
    _bounds = (("a", 0.0, True), ("n", 0.0, False))
    a: FloatArray
    n: FloatArray

    def __init__(self, a: npt.ArrayLike = 0.01, n: npt.ArrayLike = 1.0) -> None:
        super().__init__(a=a, n=n)

    def _price(self, s: FloatArray) -> FloatArray:
        return self.a * s**self.n  # §3.1

    def _derivative(self, s: FloatArray) -> FloatArray:
        n = np.broadcast_to(self.n, s.shape)
        if np.any((s == 0) & (n > 0) & (n < 1)):
            valid = "supply > 0 (f'(S) = a n S^(n-1) is unbounded at S = 0 for 0 < n < 1)"
            self._fail("supply", 0.0, valid)
        return np.where(n == 0, 0.0, self.a * n * s ** (n - 1))

    def _reserve(self, s: FloatArray) -> FloatArray:
        return self.a * s ** (self.n + 1) / (self.n + 1)  # §3.1

    def _cost(self, s: FloatArray, d: FloatArray) -> FloatArray:
        near = np.abs(d) <= s / 2
        x = np.where(near, d / np.where(s > 0, s, 1.0), 0.0)
        close = self._reserve(s) * np.expm1((self.n + 1) * np.log1p(x))
        return np.where(near, close, self._reserve(s + d) - self._reserve(s))  # §3.1

    def _delta_for(self, s: FloatArray, amt: FloatArray, r: FloatArray) -> FloatArray:
        n1 = self.n + 1
        log_target = np.log(n1) + np.log(np.maximum(r + amt, 0.0)) - np.log(self.a)
        return np.exp(log_target / n1) - s  # §3.1


CURVES: dict[str, type[BondingCurve]] = {
    cls.kind: cls
    for cls in (LinearCurve, LogarithmicCurve, ExponentialCurve, SigmoidCurve, PowerCurve)
}
"""Curve classes by ``kind``."""


def make_curve(kind: str, n_assets: int | None = None, **params: Any) -> BondingCurve:
    """Build a bonding curve by kind. Implements §3.1 (choice of f_j and Φ_j).

    Args:
        kind: One of ``CURVES`` ("linear", "logarithmic", "exponential", "sigmoid", "power").
        n_assets: If given, every parameter (defaults included) is broadcast to shape
            (n_assets,); a sequence of another length is an error.
        **params: The curve's parameters (see its class); missing ones take defaults.

    Returns:
        The curve.

    Raises:
        ValueError: Unknown kind or parameter name, wrong length, or an invalid value.
    """
    if kind not in CURVES:
        raise ValueError(f"curve kind {kind!r} is invalid: expected one of {list(CURVES)}")
    cls = CURVES[kind]
    signature = inspect.signature(cls.__init__).parameters
    names = [p for p in signature if p != "self"]
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise ValueError(f"{kind} curve: unknown parameter(s) {unknown}; expected some of {names}")
    if n_assets is None:
        return cls(**params)
    if isinstance(n_assets, bool) or not isinstance(n_assets, int | np.integer) or n_assets < 1:
        raise ValueError(f"n_assets={n_assets!r} is invalid: expected an integer >= 1")
    full = {}
    for name in names:
        value = params.get(name, signature[name].default)
        if np.ndim(value) == 0:
            value = value if _as_float(value) is None else np.full(n_assets, float(value))
        elif np.ndim(value) != 1 or len(value) != n_assets:
            raise ValueError(
                f"{kind} curve: {name}={value!r} is invalid: expected a scalar "
                f"or a sequence of length n_assets={n_assets}"
            )
        full[name] = value
    return cls(**full)
