"""mesa_econ.model after its split into _model_setup, _model_state and _model_rollback:
every name importable from it before still is, and is the object of its new home."""

from __future__ import annotations

import importlib

import pytest

import mesa_econ.model as model_module

MOVED = {
    "mesa_econ._model_setup": ["ModelSetup", "default_curve_params", "_split_kwargs",
                               "_build_graph", "_complete_neighbours", "_make_network",
                               "_check_demand", "_make_demand"],
    "mesa_econ._model_state": ["StateViews", "PRICE_WINDOW", "_STATE_FIELDS", "_freeze",
                               "_freeze_state", "_check_finite"],
    "mesa_econ._model_rollback": ["StepRollback", "_STEP_ATTRS", "_get_step_attrs",
                                  "_collect_or_undo"],
}
"""Where each name defined in mesa_econ.model before the split lives now."""

KEPT = ["EconomyModel", "MarketConfig", "ModelConfig", "PolicyConfig", "RewardConfig",
        "MarketParams", "MarketState", "StepNoise", "SpotStep", "TraderAgent", "BondingCurve",
        "make_curve", "make_collector", "market_step", "compute_rewards", "profit_rewards",
        "takes_profit_rewards", "takes_spot_step", "liquidation_marks", "act_only",
        "check_seed", "fail", "real_array", "pricing"]
"""Names mesa_econ.model imported (or defined) before the split, importable from it still."""


@pytest.mark.parametrize(("home", "name"), [(h, n) for h, names in MOVED.items()
                                            for n in names])
def test_a_moved_name_is_importable_from_mesa_econ_model(home, name):
    assert getattr(model_module, name) is getattr(importlib.import_module(home), name)


@pytest.mark.parametrize("name", KEPT)
def test_the_names_model_imported_are_still_there(name):
    assert hasattr(model_module, name)


def test_the_model_is_its_mixins_over_mesa_model():
    import mesa

    bases = model_module.EconomyModel.__mro__
    assert bases.index(model_module.StepRollback) < bases.index(mesa.Model)
    for method in ("_save", "_restore", "_reschedule_mesa_step"):
        assert method in vars(model_module.StepRollback)
    for view in ("capital", "prices", "wealth", "observations", "price_window_ordered"):
        assert view in vars(model_module.StateViews)
    for step in ("step", "_advance", "apply_shock", "_draw_factors", "policy_orders"):
        assert step in vars(model_module.EconomyModel)
