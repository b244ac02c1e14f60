"""run_sweep (local and Ray backends), its seeds, failure reporting and the sweep CLI."""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ import cli
from mesa_econ.cli._params import parse_lists, parse_value
from mesa_econ.model import EconomyModel
from mesa_econ.sweep import plan_sweep, run_seed, run_sweep
from mesa_econ.testing import assert_float32_close

torch.set_num_threads(1)

SMALL = {"n_agents": 6, "n_assets": 1, "theta": 0.3, "sigma0": 0.01}
GRID = {**SMALL, "kappa": [0.001, 0.01], "nu": [0.0, 0.05]}


def _manual_run(seed: int, steps: int, **kwargs) -> pd.DataFrame:
    """What one run of a sweep must contain: the model's own DataCollector frame."""
    model = EconomyModel(**kwargs, rng=seed)
    for _ in range(steps):
        model.step()
    return model.datacollector.get_model_vars_dataframe().reset_index(drop=True)


def test_frame_layout_and_values_match_single_runs():
    frame = run_sweep(GRID, seeds=2, steps=4, progress=False, batch_seeds=False)
    assert list(frame.columns[:6]) == ["run_id", "replicate", "seed", "kappa", "nu", "step"]
    assert len(frame) == 4 * 2 * 5  # combos x replicates x (steps + 1)
    assert frame.attrs["failures"] == []
    plan = plan_sweep(GRID, seeds=2)
    assert plan["run_id"].tolist() == list(range(8))
    for run in plan.itertuples():  # (iterrows would turn the 63-bit seeds into floats)
        rows = frame[frame["run_id"] == run.run_id]
        assert rows["step"].tolist() == list(range(5))
        assert (rows["seed"] == run.seed).all()
        expected = _manual_run(run.seed, 4, **SMALL, kappa=run.kappa, nu=run.nu)
        got = rows[expected.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)


def test_same_inputs_give_identical_frames_and_base_seed_matters():
    a = run_sweep(GRID, seeds=2, steps=5, progress=False)
    b = run_sweep(GRID, seeds=2, steps=5, progress=False)
    pd.testing.assert_frame_equal(a, b)
    c = run_sweep(GRID, seeds=2, steps=5, base_seed=1, progress=False)
    assert not np.array_equal(a["seed"].to_numpy(), c["seed"].to_numpy())
    assert not np.allclose(a["price_0"].to_numpy(), c["price_0"].to_numpy())


def test_two_processes_give_the_same_frame_as_one():
    one = run_sweep(GRID, seeds=2, steps=5, progress=False)
    two = run_sweep(GRID, seeds=2, steps=5, processes=2, progress=False)
    pd.testing.assert_frame_equal(one, two)


def test_seeds_are_seedsequence_children_keyed_by_value_indices():
    plan = plan_sweep({"nu": [0.0, 0.05], "kappa": [0.001, 0.01, 0.1]}, seeds=2, base_seed=7)
    root = np.random.SeedSequence(7)
    # keys use the parameters in alphabetical order (kappa, nu), then the replicate
    for run in plan.itertuples():
        i_kappa = [0.001, 0.01, 0.1].index(run.kappa)
        i_nu = [0.0, 0.05].index(run.nu)
        child = root.spawn(3)[i_kappa].spawn(2)[i_nu].spawn(2)[run.replicate]
        root = np.random.SeedSequence(7)  # spawn() advances the parent: start afresh
        assert isinstance(run.seed, int)
        assert run.seed == int(child.generate_state(1, dtype=np.uint64)[0]) >> 1
        assert run.seed == run_seed(7, (i_kappa, i_nu, run.replicate))
    assert plan["seed"].nunique() == len(plan)


def test_appending_values_or_replicates_keeps_existing_seeds():
    def seeds_of(plan):
        return {(r.kappa, r.nu, r.replicate): r.seed for r in plan.itertuples()}

    base = seeds_of(plan_sweep({"kappa": [0.001, 0.01], "nu": [0.0, 0.05]}, seeds=2))
    bigger = seeds_of(plan_sweep({"nu": [0.0, 0.05, 0.1], "kappa": [0.001, 0.01, 0.1]},
                                 seeds=3))
    assert all(bigger[k] == v for k, v in base.items())
    # inserting a value before others shifts their indices, hence their seeds
    shifted = seeds_of(plan_sweep({"kappa": [0.0001, 0.001, 0.01], "nu": [0.0, 0.05]},
                                  seeds=2))
    assert all(shifted[k] != v for k, v in base.items())


def test_explicit_seed_list_is_used_for_every_combination():
    frame = run_sweep(GRID, seeds=[11, 12], steps=3, progress=False)
    per_run = frame.groupby("run_id")[["replicate", "seed"]].first()
    assert per_run["seed"].tolist() == [11, 12] * 4
    assert per_run["replicate"].tolist() == [0, 1] * 4


def test_failed_run_is_reported_with_its_parameters_and_others_kept():
    params = {**SMALL, "theta": [0.3, 5.0], "kappa": [0.0, 0.01]}  # theta*dt must be < 2
    with pytest.warns(RuntimeWarning, match="2 of 4 runs failed"):
        frame = run_sweep(params, seeds=1, steps=3, progress=False)
    assert sorted(frame["run_id"].unique()) == [0, 1]
    assert (frame["theta"] == 0.3).all()
    failures = frame.attrs["failures"]
    assert [(f["run_id"], f["theta"], f["kappa"]) for f in failures] == [(2, 5.0, 0.0),
                                                                         (3, 5.0, 0.01)]
    assert all(f["error"].startswith("ValueError: theta=5.0") for f in failures)
    assert all("Traceback" in f["traceback"] for f in failures)


def test_all_runs_failing_raises():
    with pytest.raises(RuntimeError, match=r"all 2 runs failed.*theta=5\.0"):
        run_sweep({**SMALL, "theta": 5.0}, seeds=2, steps=2, progress=False)


def test_collect_agents_gives_one_row_per_run_step_and_agent():
    frame = run_sweep({**SMALL, "kappa": [0.0, 0.01]}, seeds=1, steps=3, progress=False,
                      collect_agents=True)
    assert len(frame) == 2 * 4 * SMALL["n_agents"]
    assert {"agent_id", "capital", "wealth", "reward", "price_0"} <= set(frame.columns)
    run0 = frame[frame["run_id"] == 0]
    assert sorted(run0["agent_id"].unique()) == list(range(1, SMALL["n_agents"] + 1))
    # model reporters repeat per agent; agent mean capital equals the model reporter
    by_step = run0.groupby("step")
    assert (by_step["price_0"].nunique() == 1).all()
    np.testing.assert_allclose(by_step["capital"].mean(), by_step["mean_capital"].first())


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"seeds": 0}, "seeds"),
    ({"seeds": [1, -2]}, "seeds"),
    ({"seeds": "3"}, "seeds"),
    ({"steps": 0}, "steps"),
    ({"backend": "dask"}, "backend"),
    ({"processes": 0}, "processes"),
    ({"base_seed": -1}, "base_seed"),
    ({"ray_address": "auto"}, "ray_address"),  # only with backend='ray'
    ({"batch_seeds": 0}, "batch_seeds"),
    ({"batch_seeds": "on"}, "batch_seeds"),
    ({"batch_seeds": 2.0}, "batch_seeds"),
    ({"parameters": {"kapa": [0.1]}}, "kapa"),
    ({"parameters": {"kappa": []}}, "kappa"),
    ({"parameters": {"rng": [1, 2]}}, "rng"),
    ({"parameters": {"collect_agents": True}}, "collect_agents"),
    ({"parameters": [("kappa", 0.1)]}, "parameters"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = {"parameters": SMALL, "seeds": 1, "steps": 2, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=name):
        run_sweep(args.pop("parameters"), **args)


def test_ray_backend_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ImportError, match=r"mesa_econ\[distributed\]"):
        run_sweep(SMALL, seeds=1, steps=2, backend="ray", progress=False)


def test_cli_values_are_parsed():
    assert [parse_value(v) for v in ["3", "0.5", "1e-3", "true", "None", "hold"]] == [
        3, 0.5, 1e-3, True, None, "hold"]
    assert parse_lists(["kappa=0.001,0.01", "policy=hold"], "--param") == {
        "kappa": [0.001, 0.01], "policy": ["hold"]}
    with pytest.raises(ValueError, match="--param"):
        parse_lists(["kappa"], "--param")


def test_cli_sweep_writes_frame_summary_and_plot(tmp_path, capsys):
    out = tmp_path / "sweep"
    rc = cli.main(["sweep", "--scenario", "defi_token_market", "--param", "n_agents=8",
                   "--param", "kappa=0.001,0.01", "--param", "nu=0,0.05", "--seeds", "2",
                   "--steps", "4", "--no-progress", "--out", str(out)])
    assert rc == 0
    assert "8 runs: 8 ok, 0 failed" in capsys.readouterr().out
    parquet = pd.read_parquet(out / "sweep.parquet")
    csv = pd.read_csv(out / "sweep.csv")
    from mesa_econ.scenarios import scenario_params

    expected = run_sweep(scenario_params("defi_token_market", n_agents=[8],
                                         kappa=[0.001, 0.01], nu=[0, 0.05]),
                         seeds=2, steps=4, progress=False)
    pd.testing.assert_frame_equal(parquet, expected)
    pd.testing.assert_frame_equal(csv, expected, check_dtype=False)
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 8
    manual = expected[expected["step"] > 0].groupby("run_id")["volatility"].mean()
    np.testing.assert_allclose(summary["volatility"], manual.to_numpy())
    run_variance = expected.groupby("run_id")["price_0"].agg(lambda p: p.to_numpy().var())
    np.testing.assert_allclose(summary["price_variance"], run_variance.to_numpy())
    assert summary[["kappa", "nu", "seed"]].equals(
        expected.groupby("run_id")[["kappa", "nu", "seed"]].first().reset_index(drop=True))
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_param_returns_error_code(tmp_path, capsys):
    rc = cli.main(["sweep", "--param", "kappa", "--out", str(tmp_path)])
    assert rc == 2
    assert "--param" in capsys.readouterr().err


def test_cli_value_of_the_wrong_kind_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    out = tmp_path / "never"
    rc = cli.main(["sweep", "--param", "kappa=abc", "--seeds", "1", "--steps", "2",
                   "--no-progress", "--out", str(out)])
    assert rc == 2
    assert capsys.readouterr().err == ("error: --param kappa=abc: kappa='abc' is invalid: "
                                       "expected a number (the default is 0.0)\n")
    assert not out.exists()


def test_cli_counts_every_run_once_failed_or_not(tmp_path, capsys):
    """theta=5 fails the model's validation: 2 runs, 1 ok and 1 failed (it used to print
    "1 runs, 1 failed"); the failure is in failures.csv and one warning line."""
    out = tmp_path / "sweep"
    rc = cli.main(["sweep", "--param", "n_agents=4", "--param", "theta=0.3,5", "--seeds", "1",
                   "--steps", "2", "--no-progress", "--out", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("2 runs: 1 ok, 1 failed; wrote ")
    assert captured.err.startswith("warning: 1 of 2 runs failed")
    assert captured.err.count("\n") == 1
    failures = pd.read_csv(out / "failures.csv")
    assert failures["theta"].tolist() == [5] and "theta=5" in failures["error"].iloc[0]
    assert pd.read_csv(out / "summary.csv")["theta"].tolist() == [0.3]


def test_cli_sweep_where_every_run_fails_says_so_in_one_line(tmp_path, capsys):
    rc = cli.main(["sweep", "--param", "n_agents=4", "--param", "theta=5", "--seeds", "1",
                   "--steps", "2", "--no-progress", "--out", str(tmp_path / "s")])
    assert rc == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the only run failed (run_id=0, parameters {'n_agents': 4, "
                          "'theta': 5}")
    assert "theta=5 is invalid" in err and err.count("\n") == 1


def test_run_summary_wording():
    from mesa_econ.cli.sweep import run_summary

    assert run_summary(1, 1) == "2 runs: 1 ok, 1 failed"
    assert run_summary(1, 0) == "1 run: 1 ok, 0 failed"
    assert run_summary(0, 3) == "3 runs: 0 ok, 3 failed"


def test_sweep_module_holds_no_command_line_code():
    import mesa_econ.sweep as sweep

    assert not hasattr(sweep, "add_parser") and "argparse" not in vars(sweep)


# ---------------------------------------------------------------------------- seed batches
LEARNED = {"n_agents": 40, "n_assets": 2, "hidden": (16, 16), "kappa": [0.001, 0.01]}


def _ids_equal_and_float32_close(batched, alone, terms):
    """Same columns, rows and ids; every reporter equal to float32 rounding of the actions
    (the differences carried through the market stay far below this)."""
    assert batched.columns.tolist() == alone.columns.tolist()
    ids = ["run_id", "replicate", "seed", "step", "kappa"]
    pd.testing.assert_frame_equal(batched[ids], alone[ids], check_exact=True)
    for name in alone.columns.difference(ids):
        want = alone[name].to_numpy(float)
        assert_float32_close(batched[name].to_numpy(float), want, terms=terms,
                             scale=max(1.0, float(np.abs(want).max())), name=name)


@pytest.mark.parametrize("collect_agents", [False, True])
@pytest.mark.parametrize("policy", ["random", "informed"])
def test_batched_scripted_seeds_give_the_per_run_frame_bit_for_bit(policy, collect_agents):
    params = {**SMALL, "n_agents": 8, "n_assets": 2, "policy": policy, "kappa": [0.0, 0.01]}
    kw = {"seeds": 3, "steps": 6, "progress": False, "collect_agents": collect_agents}
    batched = run_sweep(params, batch_seeds=True, **kw)
    alone = run_sweep(params, batch_seeds=False, **kw)
    pd.testing.assert_frame_equal(batched, alone, check_exact=True)
    assert np.array_equal(batched["price_0"].to_numpy(), alone["price_0"].to_numpy())
    model_rows = alone.drop_duplicates(["run_id", "step"])
    assert model_rows["price_0"].nunique() > len(model_rows) // 2  # prices move, seeds differ


def _checkpoint(tmp_path, n_agents, n_assets):
    """A checkpoint of an ensemble with a fitted observation normaliser."""
    from mesa_econ.policies import PolicyEnsemble
    from mesa_econ.rl.checkpoint import save_checkpoint
    from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer

    model = EconomyModel(n_agents=n_agents, n_assets=n_assets, hidden=(16, 16), rng=0)
    ens = PolicyEnsemble(n_agents, model.obs_dim, n_assets, hidden=(16, 16),
                         generator=torch.Generator().manual_seed(3))
    norm = ObsNormalizer(n_agents, model.obs_dim)
    rng = np.random.default_rng(0)
    for _ in range(20):
        norm(rng.normal(1.0, 0.5, (n_agents, model.obs_dim)), update=True)
    path = save_checkpoint(NormalizedPolicy(ens, norm), tmp_path / "agents", algo="untrained",
                           model=model)
    return f"checkpoint:{path}"


@pytest.mark.parametrize("kind", ["actor_critic", "actor_critic_groups", "checkpoint"])
def test_batched_learned_seeds_match_the_per_run_frame_to_float32(kind, tmp_path):
    params = dict(LEARNED)
    if kind == "actor_critic_groups":
        params["n_groups"] = 6  # uneven blocks of 40 agents: padded grouped batches
    if kind == "checkpoint":
        params["policy"] = _checkpoint(tmp_path, LEARNED["n_agents"], LEARNED["n_assets"])
    kw = {"seeds": 3, "steps": 8, "progress": False}
    batched = run_sweep(params, **kw)  # the default for learned policies
    alone = run_sweep(params, batch_seeds=False, **kw)
    obs_dim = 2 + 3 * LEARNED["n_assets"]
    _ids_equal_and_float32_close(batched, alone, terms=obs_dim + 32)
    assert alone["price_0"].nunique() > len(alone) // 2


def test_learned_seeds_act_in_one_forward_pass_per_step(monkeypatch):
    from mesa_econ import _sweep_batch

    calls = {"means": [], "policy_orders": 0}
    means, policy_orders = _sweep_batch.StackedPolicies.means, EconomyModel.policy_orders

    def counted_means(self, obs):
        calls["means"].append(obs.shape)
        return means(self, obs)

    def counted_orders(self):
        calls["policy_orders"] += 1
        return policy_orders(self)

    monkeypatch.setattr(_sweep_batch.StackedPolicies, "means", counted_means)
    monkeypatch.setattr(EconomyModel, "policy_orders", counted_orders)
    n = LEARNED["n_agents"]
    run_sweep(LEARNED, seeds=3, steps=5, progress=False, batch_seeds=True)  # 2 x 5 steps
    assert calls == {"means": [(3, n, 2 + 3 * 2)] * 10, "policy_orders": 0}
    calls["means"].clear()
    # batches of 2 + 1 per combination: the single seed runs alone, through its own step
    run_sweep(LEARNED, seeds=3, steps=5, progress=False, batch_seeds=2)
    assert calls == {"means": [(2, n, 8)] * 10, "policy_orders": 2 * 5}
    calls["means"].clear()
    calls["policy_orders"] = 0
    run_sweep(LEARNED, seeds=3, steps=5, progress=False, batch_seeds=False)
    assert calls == {"means": [], "policy_orders": 2 * 3 * 5}


def test_tasks_group_one_combinations_seeds_as_asked():
    from mesa_econ._sweep_batch import plan_tasks
    from mesa_econ.sweep import _plan

    def sizes(params, batch_seeds):
        specs = _plan(params, 3, 2, 0, False)
        tasks = plan_tasks(specs, 3, batch_seeds)
        assert [s.run_id for t in tasks for s in t] == list(range(len(specs)))
        assert all(len({str(s.swept) for s in t}) == 1 for t in tasks)  # one combination
        return [len(t) for t in tasks]

    learned = {**SMALL, "kappa": [0.0, 0.01]}  # the default policy, actor_critic
    scripted = {**learned, "policy": "random"}
    mixed = {**SMALL, "policy": ["random", "actor_critic", "checkpoint:x.json"]}
    assert sizes(learned, None) == [1] * 6  # own weights per seed: alone unless asked
    assert sizes(scripted, None) == [1] * 6
    assert sizes(mixed, None) == [1] * 6 + [3]  # a checkpoint's seeds share its weights
    assert sizes(learned, True) == [3, 3]
    assert sizes(scripted, True) == [3, 3]
    assert sizes(learned, False) == [1] * 6
    assert sizes(learned, 2) == [2, 1, 2, 1]


@pytest.mark.parametrize("policy", ["actor_critic", "random"])
def test_a_run_failing_inside_a_seed_batch_is_reported_as_alone(policy, monkeypatch):
    """Replicate 1's market raises at step 3 (the middle market of its batch); the others
    go on; the frame and the failures equal the per-run sweep's."""
    params = {**LEARNED, "policy": policy}
    bad = set(plan_sweep(params, seeds=3).query("replicate == 1")["seed"])
    init, advance = EconomyModel.__init__, EconomyModel._advance

    @functools.wraps(init)  # (run_sweep reads the keywords from the signature)
    def init_noting_seed(self, *args, rng=None, **kwargs):
        self.test_seed = rng
        init(self, *args, rng=rng, **kwargs)

    def failing_advance(self):
        if self.t == 2 and self.test_seed in bad:
            raise ValueError("boom")
        advance(self)

    monkeypatch.setattr(EconomyModel, "__init__", init_noting_seed)
    monkeypatch.setattr(EconomyModel, "_advance", failing_advance)
    frames = []
    for batch_seeds in (True, False):
        with pytest.warns(RuntimeWarning, match="2 of 6 runs failed"):
            frames.append(run_sweep(params, seeds=3, steps=5, progress=False,
                                    batch_seeds=batch_seeds))
    batched, alone = frames
    assert sorted(batched["run_id"].unique()) == [0, 2, 3, 5]
    if policy == "random":
        pd.testing.assert_frame_equal(batched, alone, check_exact=True)
    else:
        _ids_equal_and_float32_close(batched, alone, terms=8 + 32)

    def strip(failures):
        return [{k: v for k, v in f.items() if k != "traceback"} for f in failures]

    assert strip(batched.attrs["failures"]) == strip(alone.attrs["failures"])
    assert [f["error"] for f in batched.attrs["failures"]] == ["ValueError: boom"] * 2


def test_stacked_policies_act_as_each_market_alone():
    from mesa_econ._sweep_batch import StackedPolicies
    from mesa_econ.batched import MarketBatch
    from mesa_econ.policies.actor_critic import act_only

    for extra in ({}, {"n_groups": 7}):
        models = [EconomyModel(**{**LEARNED, "kappa": 0.01, **extra}, rng=s) for s in (1, 2)]
        twins = [EconomyModel(**{**LEARNED, "kappa": 0.01, **extra}, rng=s) for s in (1, 2)]
        stacked = StackedPolicies([m.ensemble for m in models])
        assert not stacked.shared  # each seed's own initial weights
        obs = MarketBatch(models).observations()
        u = stacked.actions(obs, [m.torch_generator for m in models])
        for k, twin in enumerate(twins):
            with torch.no_grad():
                want = act_only(twin.ensemble, torch.from_numpy(twin.observations()),
                                twin.torch_generator)
            assert_float32_close(u[k], want, terms=8 + 32, name=f"u[{k}]")
            assert torch.equal(models[k].torch_generator.get_state(),
                               twin.torch_generator.get_state())
    with pytest.raises(ValueError, match="architecture"):
        StackedPolicies([models[0].ensemble, EconomyModel(**{**LEARNED, "kappa": 0.0},
                                                          rng=3).ensemble])
    assert StackedPolicies.of([models[0].ensemble, "not a policy"]) is None


def test_markets_loading_one_checkpoint_share_its_weights(tmp_path):
    from mesa_econ._sweep_batch import StackedPolicies

    policy = _checkpoint(tmp_path, 6, 1)
    models = [EconomyModel(n_agents=6, n_assets=1, hidden=(16, 16), policy=policy, rng=s)
              for s in (1, 2, 3)]
    assert StackedPolicies([m.ensemble for m in models]).shared


def test_cli_batch_seeds_values():
    from mesa_econ.cli.sweep import parse_batch_seeds

    assert [parse_batch_seeds(v) for v in ["auto", "on", "OFF", "4"]] == [None, True, False, 4]
    for bad in ["0", "yes", "-2"]:
        with pytest.raises(argparse.ArgumentTypeError, match="auto, on, off"):
            parse_batch_seeds(bad)


def test_cli_batch_seeds_off_writes_the_per_run_frame(tmp_path):
    args = ["sweep", "--param", "n_agents=40", "--param", "hidden=[16,16]", "--param",
            "kappa=0,0.01", "--seeds", "2", "--steps", "3", "--no-progress",
            "--batch-seeds", "off", "--out", str(tmp_path)]
    assert cli.main(args) == 0
    expected = run_sweep({"n_agents": [40], "hidden": [(16, 16)], "kappa": [0, 0.01]},
                         seeds=2, steps=3, progress=False, batch_seeds=False)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sweep.parquet"), expected)
    assert json.loads((tmp_path / "sweep.json").read_text())["batch_seeds"] is False


# ---------------------------------------------------------------------------- Ray
@pytest.fixture
def short_tmp():
    """A temp dir with a short path: Ray's socket paths must stay under 107 bytes."""
    path = tempfile.mkdtemp(prefix="mray")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray():
    """One local 2-CPU Ray for this module, on loopback, quiet, in its own temp dir."""
    ray = pytest.importorskip("ray")
    temp_dir = tempfile.mkdtemp(prefix="mray")
    env = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _temp_dir=temp_dir)
    yield ray
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_ray_matches_local_including_failures(local_ray, capsys):
    params = {**GRID, "theta": [0.3, 5.0]}  # half the runs fail validation
    with pytest.warns(RuntimeWarning, match="4 of 8 runs failed"):
        local = run_sweep(params, seeds=1, steps=5, progress=False)
    with pytest.warns(RuntimeWarning, match="4 of 8 runs failed"):
        remote = run_sweep(params, seeds=1, steps=5, backend="ray", progress=True)
    pd.testing.assert_frame_equal(local, remote)

    def strip(failures):
        return [{k: v for k, v in f.items() if k != "traceback"} for f in failures]

    assert strip(remote.attrs["failures"]) == strip(local.attrs["failures"])
    assert "sweep (ray)" in capsys.readouterr().err  # the tqdm bar
    assert local_ray.is_initialized()  # an existing Ray is reused, not shut down


def test_ray_collect_agents_matches_local(local_ray):
    kw = {"seeds": 2, "steps": 3, "progress": False, "collect_agents": True}
    local = run_sweep({**SMALL, "nu": [0.0, 0.1]}, **kw)
    remote = run_sweep({**SMALL, "nu": [0.0, 0.1]}, backend="ray", **kw)
    pd.testing.assert_frame_equal(local, remote)



def test_cli_sweep_on_ray_writes_the_same_frame(local_ray, tmp_path):
    args = ["sweep", "--param", "n_agents=6", "--param", "kappa=0,0.01", "--seeds", "2",
            "--steps", "3", "--no-progress"]
    assert cli.main([*args, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    assert cli.main([*args, "--out", str(tmp_path / "local")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / "sweep.parquet"),
                                  pd.read_parquet(tmp_path / "local" / "sweep.parquet"))


@pytest.mark.slow  # a second Ray start (~8 s idle, > 20 s on a busy machine)
def test_ray_backend_starts_and_stops_its_own_local_ray(monkeypatch, short_tmp):
    """Without a running Ray or an address, run_sweep starts a local one and shuts it down."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # the module fixture's Ray is torn down before this test
        ray.shutdown()
    for key, value in {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                       "RAY_TMPDIR": short_tmp}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    params = {**SMALL, "kappa": [0.0, 0.01]}
    remote = run_sweep(params, seeds=2, steps=4, backend="ray", processes=2, progress=False)
    assert not ray.is_initialized()
    pd.testing.assert_frame_equal(remote, run_sweep(params, seeds=2, steps=4, progress=False))


@pytest.mark.parametrize("batch_seeds", [False, True])
def test_reporters_none_keeps_the_agent_rows(batch_seeds):
    """Without model columns the agent rows still come back (they used to be merged away)."""
    kwargs = {"seeds": 2, "steps": 3, "progress": False, "collect_agents": True,
              "batch_seeds": batch_seeds}
    bare = run_sweep({**SMALL, "reporters": "none"}, **kwargs)
    full = run_sweep({**SMALL, "reporters": "rmw"}, **kwargs)
    assert len(bare) == len(full) == 2 * 4 * SMALL["n_agents"]
    assert not {"price_0", "mean_capital"} & set(bare.columns)
    cols = ["run_id", "step", "agent_id", "capital", "wealth", "reward"]
    pd.testing.assert_frame_equal(bare[cols].reset_index(drop=True),
                                  full[cols].reset_index(drop=True))
