"""Mesa's batch_run on EconomyModel: parallel equals serial, agent data, seeds.

batch_run's signature moved between Mesa 3.3 (``iterations=``) and 3.5 (``rng=``,
``iterations`` deprecated): seeds go in ``parameters["rng"]``, which both accept, and
``iterations`` is passed only where the installed Mesa has no ``rng`` argument.
"""

from __future__ import annotations

import inspect

import mesa
import numpy as np
import pandas as pd
import torch

from mesa_econ.model import EconomyModel
from mesa_econ.sweep import run_sweep

torch.set_num_threads(1)

FIXED = {"n_agents": 5, "n_assets": 1, "theta": 0.3, "sigma0": 0.01}
PARAMS = {**FIXED, "kappa": [0.0, 0.01], "nu": [0.0, 0.05], "rng": [1, 2],
          "collect_agents": True}
MAX_STEPS = 4
SORT = ["RunId", "Step", "AgentID"]


def batch_frame(parameters: dict, number_processes: int) -> pd.DataFrame:
    """batch_run's rows as a frame sorted by RunId/Step/AgentID (they arrive unordered)."""
    version_kwargs = {}
    if "rng" not in inspect.signature(mesa.batch_run).parameters:  # Mesa < 3.5
        version_kwargs["iterations"] = 1
    rows = mesa.batch_run(EconomyModel, parameters=parameters,
                          number_processes=number_processes, data_collection_period=1,
                          max_steps=MAX_STEPS, display_progress=False, **version_kwargs)
    frame = pd.DataFrame(rows)
    return frame.sort_values([c for c in SORT if c in frame]).reset_index(drop=True)


def test_two_processes_return_the_same_rows_as_one():
    serial = batch_frame(PARAMS, number_processes=1)
    parallel = batch_frame(PARAMS, number_processes=2)
    pd.testing.assert_frame_equal(serial, parallel)
    # model-level and agent-level data both come back, one row per run, step and agent
    assert {"price_0", "volatility", "hhi", "capital", "wealth", "reward"} <= set(serial)
    assert serial["RunId"].nunique() == 8
    per_step = serial.groupby(["RunId", "Step"])["AgentID"].nunique()
    assert (per_step == FIXED["n_agents"]).all()
    # different seeds give different markets
    by_seed = serial[serial["Step"] == serial["Step"].max()].groupby("rng")["price_0"].mean()
    assert by_seed.loc[1] != by_seed.loc[2]


def test_batch_run_rows_equal_run_sweep_for_the_same_seed():
    batch = batch_frame(PARAMS, number_processes=1)
    sweep = run_sweep({**FIXED, "kappa": [0.0, 0.01], "nu": [0.0, 0.05]}, seeds=[1, 2],
                      steps=MAX_STEPS + 1, progress=False, collect_agents=True)
    assert len(batch) > 0
    merged = batch.merge(sweep, left_on=["kappa", "nu", "rng", "Step", "AgentID"],
                         right_on=["kappa", "nu", "seed", "step", "agent_id"],
                         suffixes=("_batch", "_sweep"), validate="one_to_one")
    assert len(merged) == len(batch)
    for col in ("price_0", "volatility", "capital", "wealth"):
        np.testing.assert_array_equal(merged[f"{col}_batch"], merged[f"{col}_sweep"])


def test_scenario_parameters_go_through_batch_parameters():
    from mesa_econ.scenarios import scenario_params
    from mesa_econ.sweep import batch_parameters

    curve_params = scenario_params("defi_token_market")["curve_params"]
    assert isinstance(curve_params, dict) and len(curve_params) > 1
    params = batch_parameters(scenario_params("defi_token_market", n_agents=6,
                                              kappa=[0.0, 0.01]), seeds=[3])
    assert params["curve_params"] == [curve_params]  # a dict is one value
    frame = batch_frame(params, number_processes=1)
    assert frame["RunId"].nunique() == 2
    assert (frame["curve_params"] == curve_params).all()
    assert frame.groupby("kappa")["price_0"].last().nunique() == 2


def test_a_checkpointed_policy_can_be_swept(tmp_path):
    from mesa_econ.policies import PolicyEnsemble
    from mesa_econ.rl.checkpoint import save_checkpoint

    n, m = FIXED["n_agents"], FIXED["n_assets"]
    policies = []
    for k in range(2):  # two freshly initialised ensembles with different weights
        ensemble = PolicyEnsemble(n, 2 + 3 * m, m, hidden=(8, 8),
                                  generator=torch.Generator().manual_seed(k))
        json_path = save_checkpoint(ensemble, tmp_path / f"agents{k}", algo="untrained")
        policies.append(f"checkpoint:{json_path}")
    params = {**FIXED, "policy": policies, "rng": [1, 2], "collect_agents": True}
    serial = batch_frame(params, number_processes=1)
    pd.testing.assert_frame_equal(serial, batch_frame(params, number_processes=2))
    # each row is what the checkpointed agents do when driving the model directly
    last_step = int(serial["Step"].max())
    for policy in policies:
        model = EconomyModel(**FIXED, policy=policy, rng=2)
        assert model.ensemble is not None
        for _ in range(last_step):
            model.step()
        direct = model.datacollector.get_model_vars_dataframe()["price_0"]
        rows = serial[(serial["policy"] == policy) & (serial["rng"] == 2)]
        per_step = rows.groupby("Step")["price_0"].first()
        np.testing.assert_array_equal(per_step.to_numpy(), direct.loc[per_step.index].to_numpy())
    final = serial[serial["Step"] == last_step].groupby(["policy", "rng"])["price_0"].first()
    assert final.loc[policies[0], 1] != final.loc[policies[1], 1]
    # and run_sweep takes the same checkpoint strings
    swept = run_sweep({**FIXED, "policy": policies}, seeds=[1], steps=3, progress=False)
    assert swept.groupby("policy")["run_id"].nunique().to_dict() == dict.fromkeys(policies, 1)
