"""Reusable checks for mesa_econ models: conservation, feasibility, determinism.

Users extending the package (new curves, policies, scenarios) can call these from their
own tests, as PettingZoo ships its API tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mesa_econ.model import EconomyModel

__all__ = ["assert_invariants", "assert_reports_finite", "assert_same_run", "total_money"]


def total_money(model: EconomyModel) -> float:
    """Base currency in the economy net of what came from outside it.

    Notes:
        Σ_i B_i + Σ_j reserve_j − income_paid − yield_paid + fees_paid: constant over a run,
        since Σ B + Σ reserve changes by exactly income_paid + yield_paid − fees_paid.
    """
    inside = float(model.capital.sum() + model.reserve.sum())
    return inside - model.income_paid - model.yield_paid + model.fees_paid


def _money_scale(model: EconomyModel) -> float:
    """The size of the money terms, for a relative tolerance on their sum."""
    return max(1.0, float(model.capital.sum() + model.reserve.sum()) + model.income_paid
               + abs(model.yield_paid) + model.fees_paid)


def assert_invariants(model: EconomyModel, money_before: float | None = None,
                      rtol: float = 1e-9) -> None:
    """Assert the market's invariants hold for ``model`` now.

    Checks: S_j = Σ_i H_ij; capital, holdings and reserve nonnegative; every state array
    and the last rewards finite; with ``money_before`` (from :func:`total_money` earlier)
    Σ B + Σ reserve changed by exactly the income and yield paid in less the fees paid out;
    under curve settlement with ψ = 0 the reserve equals R(S).

    Raises:
        AssertionError: naming the violated invariant.
    """
    s = model.state
    for name in ("capital", "holdings", "supply", "reserve", "deviation", "price"):
        assert np.all(np.isfinite(getattr(s, name))), f"{name} is not finite"
    assert np.all(np.isfinite(model.last_rewards)), "rewards are not finite"
    scale = max(1.0, float(np.abs(s.holdings).sum()))
    assert np.allclose(s.supply, s.holdings.sum(axis=0), rtol=rtol, atol=rtol * scale), \
        "supply != sum of holdings"
    assert np.all(s.capital >= 0.0), f"negative capital {s.capital.min()}"
    assert np.all(s.holdings >= 0.0), f"negative holdings {s.holdings.min()}"
    assert np.all(s.reserve >= 0.0), f"negative reserve {s.reserve.min()}"
    assert np.all(s.price > 0.0), "non-positive price"
    money_scale = _money_scale(model)
    if money_before is not None:
        drift = abs(total_money(model) - money_before)
        assert drift <= rtol * money_scale * 10, (
            f"money not conserved: Σ B + Σ reserve − income − yield + fees drifted by {drift}")
    mc = model.config.market
    if mc.settlement == "curve" and not np.any(model.params.psi):
        assert np.allclose(s.reserve, model.curve.reserve(s.supply), rtol=1e-7,
                           atol=1e-7 * money_scale), "reserve != R(S) under curve settlement"


def assert_reports_finite(model: EconomyModel) -> None:
    """Assert every model reporter's latest DataCollector value is a finite float."""
    for name, rows in model.datacollector.model_vars.items():
        value = rows[-1]
        assert type(value) is float and math.isfinite(value), f"reporter {name} gave {value!r}"


def assert_same_run(factory: Callable[[], EconomyModel], steps: int = 25) -> pd.DataFrame:
    """Build two models with ``factory``, run both, assert identical DataCollector frames.

    Returns:
        The model-level frame of the first run.
    """
    frames = []
    for _ in range(2):
        model = factory()
        for _ in range(steps):
            model.step()
        frames.append(model.datacollector.get_model_vars_dataframe())
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    return frames[0]


# ---------------------------------------------------------------- float32 across code paths
EPS32 = float(np.finfo(np.float32).eps)
"""Machine epsilon of float32, 2**-23 ≈ 1.19e-7 (twice the unit roundoff u)."""


def float32_tolerance(scale: float, terms: int = 1, ulps: float = 4.0) -> float:
    """The gap allowed between two float32 computations of one quantity in another order.

    Two code paths computing the same float32 value (another BLAS kernel, which one depends
    on the CPU; another batch shape; another summation order) differ by rounding alone. A
    sum of n products differs from the exact one by at most about n·u·Σ|a_k·b_k|, with
    u = eps32/2 (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1),
    so two such paths differ by at most n·eps32·Σ|a_k·b_k|.

    Args:
        scale: the magnitude of the summed terms, Σ|a_k·b_k| (the quantity's own size
            where there is no cancellation).
        terms: n, the length of the reductions; through a network, the sum of its layers'
            input widths (each layer's rounding carries through tanh, whose slope is <= 1).
        ulps: a factor for the elementwise operations around the sums.

    Returns:
        ulps · eps32 · terms · scale.
    """
    return ulps * EPS32 * max(int(terms), 1) * float(scale)


def assert_float32_close(actual: object, desired: object, *, terms: int = 1,
                         scale: float | None = None, ulps: float = 4.0,
                         name: str = "value") -> None:
    """Assert two float32 results agree to the rounding of ``terms``-long sums.

    Elementwise ``|actual − desired| <= float32_tolerance(scale, terms, ulps)`` with
    ``scale`` defaulting to max|desired|. Accepts numpy arrays, torch tensors (detached)
    and scalars; shapes must match and every value must be finite.

    Raises:
        AssertionError: naming the largest difference, where it occurs, both values there,
            the tolerance and how many elements exceed it.
    """
    got, want = (np.asarray(_as_numpy(x), dtype=np.float64) for x in (actual, desired))
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape}"
    assert np.isfinite(got).all() and np.isfinite(want).all(), f"{name}: non-finite values"
    if scale is None:
        scale = float(np.abs(want).max()) if want.size else 0.0
    tol = float32_tolerance(scale, terms, ulps)
    diff = np.abs(got - want)
    if diff.size == 0 or diff.max() <= tol:
        return
    where = np.unravel_index(int(diff.argmax()), diff.shape)
    raise AssertionError(
        f"{name}: largest difference {diff[where]:.3g} at index {tuple(map(int, where))} "
        f"(actual {float(got[where])!r}, desired {float(want[where])!r}) > tolerance {tol:.3g} "
        f"= {ulps:g} ulps · eps32 · {terms} terms · scale {scale:.3g}; "
        f"{int((diff > tol).sum())} of {diff.size} elements exceed it")


def _as_numpy(value: object) -> object:
    detach = getattr(value, "detach", None)  # a torch tensor, without importing torch here
    return detach().cpu().numpy() if callable(detach) else value


__all__ += ["EPS32", "assert_float32_close", "float32_tolerance"]
