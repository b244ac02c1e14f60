"""EconomyModel.apply_shock: the browser's "shock now" button, a spike in Z for the coming step."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mesa_econ.model import EconomyModel

BASE = {"n_agents": 12, "n_assets": 3, "zeta": 0.5, "seed": 5}  # zeta: Z moves the price


def _frames(model: EconomyModel, steps: int, shock_at: int | None = None, **shock) -> np.ndarray:
    for _ in range(steps):
        if model.t == shock_at:
            model.apply_shock(**shock)
        model.step()
    return np.array(model.datacollector.get_model_vars_dataframe())


@pytest.mark.parametrize("assets", [None, [1], (0, 2)])
def test_a_shock_now_equals_the_scheduled_shock_at_this_step(assets):
    scheduled = EconomyModel(**BASE, shock_step=4, shock_size=2.5, shock_decay=0.0,
                             shock_assets=assets)
    manual = EconomyModel(**BASE)
    plain = EconomyModel(**BASE)
    expected = _frames(scheduled, 9)
    np.testing.assert_array_equal(_frames(manual, 9, shock_at=4, size=2.5, assets=assets),
                                  expected)
    assert not np.array_equal(_frames(plain, 9), expected)  # the shock moved the market


def test_the_spike_is_added_to_the_coming_steps_factors_only():
    model = EconomyModel(**BASE)
    model.step()
    before = model.factors.copy()
    model.apply_shock(-1.5, assets=[2])
    np.testing.assert_array_equal(model.factors, before + np.array([0.0, 0.0, -1.5]))
    model.apply_shock(0.25)  # shocks add up
    np.testing.assert_array_equal(model.factors, before + np.array([0.25, 0.25, -1.25]))
    twin = EconomyModel(**BASE)
    twin.step()
    twin.step()
    model.step()
    # the following step's Z is a fresh draw without the spike: the generators are unmoved
    np.testing.assert_array_equal(model.factors, twin.factors)


@pytest.mark.parametrize(("size", "assets", "message"), [
    ("3", None, "size='3' is invalid"),
    (True, None, "size=True is invalid"),
    (math.nan, None, "size=nan is invalid"),
    (math.inf, None, "size=inf is invalid"),
    (1.0, [3], "assets=3 is invalid: expected an integer in [0, 2]"),
    (1.0, [-1], "assets=-1 is invalid"),
    (1.0, [0.5], "assets=0.5 is invalid"),
    (1.0, [], "assets=[] is invalid"),
    (1.0, "1", "assets='1' is invalid"),
])
def test_bad_shocks_are_refused_and_change_nothing(size, assets, message):
    model = EconomyModel(**BASE)
    before = model.factors.copy()
    with pytest.raises(ValueError) as err:
        model.apply_shock(size, assets=assets)
    assert message in str(err.value)
    np.testing.assert_array_equal(model.factors, before)
