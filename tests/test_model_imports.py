"""mesa_econ.model after its split into _model_setup, _model_state and _model_rollback: its
public names keep their path (the objects of their new homes), the step's functions are
still looked up there."""

from __future__ import annotations

import importlib

import pytest

import mesa_econ.model as model_module

PUBLIC = {"EconomyModel": "mesa_econ.model", "default_curve_params": "mesa_econ._model_setup",
          "PRICE_WINDOW": "mesa_econ._model_state"}
"""The public names mesa_econ.model had before the split, and where each lives now."""

PATCH_POINTS = ["market_step", "compute_rewards", "profit_rewards"]
"""Functions the step looks up in mesa_econ.model (tests patch them there)."""


@pytest.mark.parametrize("name", list(PUBLIC))
def test_a_public_name_keeps_its_path_and_is_its_homes_object(name):
    assert getattr(model_module, name) is getattr(importlib.import_module(PUBLIC[name]), name)


@pytest.mark.parametrize("name", PATCH_POINTS)
def test_the_steps_patch_points_are_looked_up_in_mesa_econ_model(name, monkeypatch):
    """Patching the name in mesa_econ.model reaches the step (the robustness tests rely
    on it): a model whose step function is patched to raise, raises."""
    from mesa_econ.model import EconomyModel

    model = EconomyModel(n_agents=4, n_assets=2, policy="random", rng=0,
                         **({"profit_mark": "quote", "omega": 0.5}
                            if name == "compute_rewards" else {}))

    def _failing(*_args, **_kwargs):
        raise RuntimeError(f"patched {name}")

    monkeypatch.setattr(model_module, name, _failing)
    if name == "profit_rewards":
        model.fast_paths = True
    with pytest.raises(RuntimeError, match=f"patched {name}"):
        model.step()


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
