"""Reusable checks for mesa_econ models: conservation, feasibility, determinism.

Users extending the package (new curves, policies, scenarios) can call these from their
own tests, as PettingZoo ships its API tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mesa_econ.model import EconomyModel

__all__ = ["assert_invariants", "assert_same_run", "total_money"]


def total_money(model: EconomyModel) -> float:
    """Base currency in the economy net of income paid in: Σ_i B_i + Σ_j reserve_j − ΣI."""
    return float(model.capital.sum() + model.reserve.sum() - model.income_paid)


def assert_invariants(model: EconomyModel, money_before: float | None = None,
                      rtol: float = 1e-9) -> None:
    """Assert the market's invariants hold for ``model`` now.

    Checks: S_j = Σ_i H_ij; capital, holdings and reserve nonnegative; every state array
    finite; with ``money_before`` (from :func:`total_money` earlier) money is conserved;
    under curve settlement with ψ = 0 the reserve equals R(S).

    Raises:
        AssertionError: naming the violated invariant.
    """
    s = model.state
    for name in ("capital", "holdings", "supply", "reserve", "deviation", "price"):
        assert np.all(np.isfinite(getattr(s, name))), f"{name} is not finite"
    scale = max(1.0, float(np.abs(s.holdings).sum()))
    assert np.allclose(s.supply, s.holdings.sum(axis=0), rtol=rtol, atol=rtol * scale), \
        "supply != sum of holdings"
    assert np.all(s.capital >= 0.0), f"negative capital {s.capital.min()}"
    assert np.all(s.holdings >= 0.0), f"negative holdings {s.holdings.min()}"
    assert np.all(s.reserve >= 0.0), f"negative reserve {s.reserve.min()}"
    assert np.all(s.price > 0.0), "non-positive price"
    money_scale = max(1.0, float(s.capital.sum() + s.reserve.sum()))
    if money_before is not None:
        drift = abs(total_money(model) - money_before)
        assert drift <= rtol * money_scale * 10, f"money not conserved: drift {drift}"
    mc = model.config.market
    if mc.settlement == "curve" and not np.any(model.params.psi):
        assert np.allclose(s.reserve, model.curve.reserve(s.supply), rtol=1e-7,
                           atol=1e-7 * money_scale), "reserve != R(S) under curve settlement"


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
