"""The bonding-curve base class: the public methods, their domain checks and errors.

Each kind (``mesa_econ.curves.kinds``) supplies four private kernels, ``_price``,
``_derivative``, ``_cost`` and ``_delta_for``, on arrays already checked here. Implements
§3.1 (see the package docstring for the decisions a user should know).
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_SMALL = 16
"""Up to this many assets, checks loop over Python floats (cheaper than numpy calls)."""

MARKET_LIMIT = 1e150
"""Largest supply and reserve a market lets a curve reach (see ``supply_limit``)."""


def _as_float(value: Any) -> FloatArray | None:
    """``value`` as a float array if it is real and finite, else None."""
    try:
        arr = np.array(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if np.all(np.isfinite(arr)) else None


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

    @property
    def supply_limit(self) -> FloatArray:
        """Largest supply a market lets this curve reach: S <= ``max_supply``, S <= 1e150
        and R(S) <= 1e150 (``MARKET_LIMIT``).

        Within it f, f', R and every trade's cost are finite, and so are products of two
        such quantities (H·P, S², H·R/S), which the rewards and reporters form. Mints and
        buys stop there (docs/model.md, Feasibility).
        """
        limit = self.__dict__.get("_limit_cache")
        if limit is None:
            zeros = np.zeros(self._shape)
            with np.errstate(all="ignore"):  # R⁻¹(MARKET_LIMIT) by the closed form
                s = self._delta_for(zeros, np.full(self._shape, MARKET_LIMIT), zeros)
            s = np.where(np.isfinite(s) & (s > 0), s, MARKET_LIMIT)
            limit = np.minimum(np.minimum(s, MARKET_LIMIT), self._supply_bound)
            limit.setflags(write=False)
            self.__dict__["_limit_cache"] = limit
        return limit

    @property
    def supply_limit_list(self) -> list[float]:
        """``supply_limit`` as a list of Python floats (per asset; for cheap checks)."""
        values = self.__dict__.get("_limit_list")
        if values is None:
            values = self.__dict__["_limit_list"] = np.atleast_1d(self.supply_limit).tolist()
        return values

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
        if other is None and (self._fits(supply) or self._fits_rows(supply)):
            return [supply]  # fast path: the model's per-asset or per-agent arrays
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
        return self._in_domain(s)

    def _fits_rows(self, s: Any) -> bool:
        """Whether ``s`` is a float64 array of rows of the parameters' shape, e.g. the
        (N, M) counterfactual supplies of the stability term, all in [0, max_supply].

        ``broadcast_to(s, broadcast_shapes(shape, s.shape))`` would be ``s`` itself, so
        the slow path of :meth:`_inputs` gives the same values; anything failing here
        takes that path and its error.
        """
        shape = self._shape
        if (type(s) is not np.ndarray or s.dtype != np.float64
                or s.ndim != len(shape) + 1 or s.shape[1:] != shape):
            return False
        return self._in_domain(s)

    def _in_domain(self, s: FloatArray) -> bool:
        """Every entry of ``s`` (broadcasting against the parameters) in [0, max_supply];
        NaN and inf fail (the bound is finite)."""
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

