"""EconomyModel.apply_shock: the browser's "shock now" button, a spike in Z from the coming
step on that decays by ``shock_decay`` as a scheduled shock does."""

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


def _trace(model: EconomyModel, steps: int, shock_at: int | None = None,
           **shock) -> dict[str, np.ndarray]:
    """Z, P, X, B and H before every step and after the last, the shock applied (if
    asked) when ``model.t == shock_at``, before the step that starts there."""
    rows: dict[str, list] = {"factors": [], "prices": [], "deviation": [], "capital": [],
                             "holdings": []}
    for _ in range(steps + 1):
        if model.t == shock_at:
            model.apply_shock(**shock)
        for name, row in rows.items():
            row.append(np.array(getattr(model, name)))
        if len(rows["factors"]) <= steps:
            model.step()
    return {name: np.array(row) for name, row in rows.items()}


@pytest.mark.parametrize("assets", [None, [1], (0, 2)])
@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9])
def test_a_shock_now_equals_the_scheduled_shock_at_this_step(assets, decay):
    scheduled = EconomyModel(**BASE, shock_step=4, shock_size=2.5, shock_decay=decay,
                             shock_assets=assets)
    manual = EconomyModel(**BASE, shock_decay=decay)
    plain = EconomyModel(**BASE, shock_decay=decay)
    expected = _frames(scheduled, 12)
    np.testing.assert_array_equal(_frames(manual, 12, shock_at=4, size=2.5, assets=assets),
                                  expected)
    assert not np.array_equal(_frames(plain, 12), expected)  # the shock moved the market


@pytest.mark.parametrize(("step", "decay", "assets", "size"), [
    (0, 0.5, None, 3.0), (3, 0.8, [2], -1.75), (6, 0.25, (0, 1), 0.5), (2, 0.0, [0], 4.0)])
def test_the_factors_and_prices_bit_for_bit_equal_a_scheduled_shocks(step, decay, assets,
                                                                      size):
    """Z(t) of the scheduled shock at step s is drawn at the end of the step that brings t
    to s (at construction for s = 0); apply_shock at ``model.t == s`` adds to that same Z,
    and the steps after see the same size·decay^k: every step's Z, P, X, B and H agree."""
    scheduled = EconomyModel(**BASE, shock_step=step, shock_size=size, shock_decay=decay,
                             shock_assets=assets)
    manual = EconomyModel(**BASE, shock_decay=decay)
    want = _trace(scheduled, 10)
    got = _trace(manual, 10, shock_at=step, size=size, assets=assets)
    for name, values in want.items():
        np.testing.assert_array_equal(got[name], values, err_msg=name)
    assert not np.array_equal(_trace(EconomyModel(**BASE), 10)["prices"], want["prices"])


def test_later_steps_see_the_spike_times_decay_to_the_k():
    """With Z's noise off (s_j = 0, m_j = 0) Z is the shock alone: size·decay^k, k steps on."""
    model = EconomyModel(n_agents=4, n_assets=2, factor_std=0.0, shock_decay=0.5, seed=1)
    zs = []
    for _ in range(7):
        if model.t == 2:
            model.apply_shock(4.0, assets=[1])
        zs.append(model.factors.copy())
        model.step()
    np.testing.assert_array_equal(np.array(zs)[:, 1], [0.0, 0.0, 4.0, 2.0, 1.0, 0.5, 0.25])
    np.testing.assert_array_equal(np.array(zs)[:, 0], 0.0)


def test_a_failed_step_restores_an_applied_shock():
    """The rollback of a step that raises keeps an applied shock as it was (the draw of Z
    decays it in place before the DataCollector runs): with no shock_step configured."""
    def build():
        model = EconomyModel(**BASE, shock_decay=0.5)
        model.step()
        model.apply_shock(2.0, assets=[0])
        return model

    model, twin = build(), build()

    def broken(_model):
        raise RuntimeError("injected failure")

    model.datacollector.model_reporters["broken"] = broken
    model.datacollector.model_vars["broken"] = []
    with pytest.raises(RuntimeError, match="injected"):
        model.step()
    del model.datacollector.model_reporters["broken"], model.datacollector.model_vars["broken"]
    for _ in range(3):
        model.step()
        twin.step()
        np.testing.assert_array_equal(model.factors, twin.factors)
        np.testing.assert_array_equal(model.prices, twin.prices)


def test_a_run_without_shocks_keeps_the_draws_as_drawn():
    """No shock, scheduled or applied: Z is the draw itself, never draw + 0 (which turns a
    drawn −0.0 into +0.0). With m_j = −0.0 and s_j = 0, Z_j = −0.0 + 0·x is −0.0 whenever
    x < 0."""
    model = EconomyModel(n_agents=3, n_assets=4, factor_mean=-0.0, factor_std=0.0, seed=2)
    signs = []
    for _ in range(5):
        signs.append(np.signbit(model.factors))
        model.step()
    assert np.any(signs) and not np.all(signs)


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


def test_with_decay_the_following_steps_factors_carry_the_decayed_spike():
    model = EconomyModel(**BASE, shock_decay=0.5)
    twin = EconomyModel(**BASE, shock_decay=0.5)
    model.apply_shock(-2.0, assets=[2])
    model.step()
    twin.step()
    np.testing.assert_array_equal(model.factors, twin.factors + np.array([0.0, 0.0, -1.0]))


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
