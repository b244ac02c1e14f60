"""The five bonding-curve kinds and ``make_curve``. Implements §3.1.

Linear and logarithmic (named by the paper), exponential, sigmoid (logistic) and power
(Bancor): each gives f, f', the closed-form cost R(S + Δ) − R(S) and its inverse.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit, lambertw, xlog1py

from mesa_econ.curves.base import BondingCurve, FloatArray, _as_float

EXP_LOG_LIMIT = 700.0
"""Largest natural log of any value the exponential curve may produce (float64: ~709.78)."""


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
