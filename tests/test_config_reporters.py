"""``reporters`` as a ModelConfig field: chosen by the constructor, ``from_config``,
``run_sweep``/``mesa.batch_run`` parameters and ``mesa-econ sweep --param``; it changes
which columns are collected, never the run."""

from __future__ import annotations

import dataclasses

import mesa
import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ.cli import main
from mesa_econ.collector import DEFAULT_REPORTERS, RMW_REPORTERS
from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig
from mesa_econ.model import EconomyModel
from mesa_econ.sweep import batch_parameters, run_sweep

RMW_COLUMNS = ["price_0", "hhi_0", "price_1", "hhi_1", "mean_capital"]
"""The rmw preset's columns for M = 2: per-asset ones asset by asset, then the others."""

CFG = ModelConfig(market=MarketConfig(n_agents=6, n_assets=2, zeta=0.4, kappa=1e-3),
                  policy=PolicyConfig(kind="random"))


def _state(model: EconomyModel) -> list[np.ndarray]:
    return [np.array(a) for a in (model.capital, model.holdings, model.supply, model.reserve,
                                  model.prices, model.deviation, model.factors,
                                  model.last_rewards)]


def _bits(model: EconomyModel) -> tuple:
    """Everything the run decides: the state arrays and the three generators."""
    return (_state(model), model.rng.bit_generator.state,
            model.policy_rng.bit_generator.state, model.torch_generator.get_state())


def _assert_same_run(a: EconomyModel, b: EconomyModel) -> None:
    (state_a, *gens_a), (state_b, *gens_b) = _bits(a), _bits(b)
    for x, y in zip(state_a, state_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert gens_a[:2] == gens_b[:2]
    assert torch.equal(gens_a[2], gens_b[2])


def test_the_default_is_the_default_preset_and_none_means_it():
    assert ModelConfig().reporters == "default"
    assert ModelConfig(reporters=None).reporters == "default"
    assert EconomyModel(n_agents=3, seed=0).config.reporters == "default"
    assert EconomyModel(n_agents=3, reporters=None, seed=0).config.reporters == "default"


def test_a_sequence_is_kept_as_a_tuple():
    cfg = ModelConfig(reporters=["gini", "price"])
    assert cfg.reporters == ("gini", "price")
    assert dataclasses.asdict(cfg)["reporters"] == ("gini", "price")


@pytest.mark.parametrize("spec", ["bogus", "price", ["price", "nope"], ["gini", "gini"], 3,
                                  [1, 2]])
def test_a_bad_value_names_reporters_and_the_valid_choices(spec):
    for build in (lambda: ModelConfig(reporters=spec),
                  lambda: EconomyModel(n_agents=3, reporters=spec, seed=0),
                  lambda: EconomyModel.from_config(CFG, reporters=spec, seed=0)):
        with pytest.raises(ValueError) as err:
            build()
        message = str(err.value)
        assert message.startswith("reporters=") and " is invalid: expected a preset in " \
            "['default', 'none', 'rmw'] or a sequence of reporter names from [" in message
        assert "'mean_capital'" in message


@pytest.mark.parametrize(("spec", "columns"), [
    ("rmw", RMW_COLUMNS),
    ("none", []),
    (("gini", "supply"), ["supply_0", "supply_1", "gini"]),
])
def test_from_config_selects_the_columns_and_nothing_else(spec, columns):
    default = EconomyModel.from_config(CFG, seed=4)
    chosen = EconomyModel.from_config(dataclasses.replace(CFG, reporters=spec), seed=4)
    for _ in range(5):
        default.step()
        chosen.step()
    _assert_same_run(default, chosen)
    assert chosen.datacollector.reporter_names == tuple(
        RMW_REPORTERS if spec == "rmw" else () if spec == "none" else spec)
    assert list(chosen.datacollector.model_vars) == columns
    wide = default.datacollector.get_model_vars_dataframe()
    narrow = chosen.datacollector.get_model_vars_dataframe()
    shared = [c for c in columns if c in wide.columns]  # (hhi_j is rmw's alone)
    assert len(shared) == len(columns) - (2 if spec == "rmw" else 0)
    if columns:  # the columns both collect are the default run's, value for value
        pd.testing.assert_frame_equal(narrow[shared], wide[shared])
    else:
        assert narrow.empty
    assert set(wide.columns) >= {"gini", "hhi", "volatility", "price_0"}


def test_from_configs_keyword_replaces_the_configs_choice():
    model = EconomyModel.from_config(dataclasses.replace(CFG, reporters="none"),
                                     reporters="rmw", seed=1)
    assert model.config.reporters == "rmw"
    assert list(model.datacollector.model_vars) == RMW_COLUMNS


def test_the_constructor_keyword_is_the_config_field():
    model = EconomyModel(n_agents=6, n_assets=2, reporters=["price", "mean_capital"], seed=2)
    assert model.config.reporters == ("price", "mean_capital")
    twin = EconomyModel.from_config(model.config, seed=2)
    assert list(twin.datacollector.model_vars) == ["price_0", "price_1", "mean_capital"]


def test_a_two_run_sweep_over_reporters_changes_the_columns_only():
    """Two runs with one explicit seed: the rmw run's columns equal the default run's,
    bit for bit, and the columns only the default preset collects are empty (NaN) in it."""
    frame = run_sweep({"n_agents": 6, "n_assets": 2, "zeta": 0.4, "kappa": 1e-3,
                       "policy": "random", "reporters": ["rmw", "default"]},
                      seeds=[9], steps=4, progress=False)
    assert frame["run_id"].nunique() == 2 and list(frame["reporters"].unique()) == [
        "rmw", "default"]
    rmw = frame[frame["reporters"] == "rmw"].reset_index(drop=True)
    default = frame[frame["reporters"] == "default"].reset_index(drop=True)
    shared = ["step", "price_0", "price_1", "mean_capital"]
    pd.testing.assert_frame_equal(rmw[shared], default[shared])
    only_default = [c for c in frame.columns if c.startswith(("gini", "curve_price"))]
    assert only_default and rmw[only_default].isna().all().all()
    assert default[only_default].notna().all().all()
    assert rmw[["hhi_0", "hhi_1"]].notna().all().all()
    assert default[["hhi_0", "hhi_1"]].isna().all().all()


def test_mesa_batch_run_takes_reporters_as_a_parameter():
    results = mesa.batch_run(
        EconomyModel, batch_parameters({"n_agents": 5, "n_assets": 2, "policy": "random",
                                        "reporters": ["rmw", "default"]}, seeds=[3]),
        max_steps=2, number_processes=1, display_progress=False)
    last = {row["reporters"]: row for row in results if row["Step"] == 2}
    assert set(last) == {"rmw", "default"}
    assert "gini" not in last["rmw"] and "gini" in last["default"]
    assert last["rmw"]["price_1"] == last["default"]["price_1"]
    assert last["rmw"]["mean_capital"] == last["default"]["mean_capital"]


def test_the_sweep_command_takes_reporters_as_a_param(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--param", "reporters=rmw,default", "--param", "n_agents=5",
                 "--param", "n_assets=2", "--param", "policy=random", "--seeds", "1",
                 "--steps", "2", "--no-progress", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(out / "sweep.csv")
    assert sorted(frame["reporters"].unique()) == ["default", "rmw"]
    rmw = frame[frame["reporters"] == "rmw"]
    assert rmw["gini"].isna().all() and rmw["hhi_1"].notna().all()
    per_asset = {"price", "curve_price", "supply"}
    assert set(DEFAULT_REPORTERS) - {"utilisation"} - per_asset <= set(frame.columns)
