"""§7.1 curve tuning: search space, objectives, the Optuna study and ``mesa-econ tune``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("optuna")

import optuna

from mesa_econ.analysis import tuning
from mesa_econ.analysis.tuning_objectives import (
    Constraint,
    Objective,
    evaluate_curve,
    parse_constraint,
)
from mesa_econ.analysis.tuning_space import SCALE_PARAM, build_space, initial_point
from mesa_econ.curves import make_curve

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A small market whose quote is exactly the curve plus noise (§3.1 with θ·dt = 1 and no
# impact, SDE or factor terms): P(t) = f(S(t)) + η(t).
EXACT = dict(n_agents=10, horizon=32, kappa=0.0, lam=0.0, theta=1.0, sigma0=0.0,
             sigma1=0.0, zeta=0.0, sigma_eta=0.01, yield_rate=0.0, fee=0.0, nu=0.0)
TINY = dict(n_agents=5, horizon=8)


def _tune(trials=3, **kw):
    kw = {"seeds": 2, "holdout_seeds": 2, "overrides": TINY, **kw}
    return tuning.tune("defi_token_market", trials, **kw)


# ------------------------------------------------------------------ search space (§3.1)

@pytest.mark.parametrize("kind", ["exponential", "linear", "logarithmic", "sigmoid", "power"])
def test_anchored_candidates_keep_the_price_at_the_initial_supply(kind):
    """Every anchored candidate has f(S0) = P0: the search moves the shape, not the level."""
    s0, p0 = np.array([500.0, 500.0]), np.array([1.105, 1.105])
    space = build_space(kind, s0, p0, per_asset=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(5):
        _, params = space.suggest(study.ask())
        assert SCALE_PARAM[kind] in params
        curve = make_curve(kind, n_assets=2, **params)
        np.testing.assert_allclose(curve.price(s0), p0, rtol=1e-9)


def test_the_scenario_curve_is_a_point_of_its_own_space():
    params = tuning._model_params("defi_token_market", "hold", None)
    kind, curve_params, s0, p0 = initial_point(params)
    assert (kind, curve_params) == ("exponential", {"a": 1.0, "k": 0.0002})
    np.testing.assert_allclose(p0, np.exp(0.1))  # e^{0.0002 * 500}
    space = build_space(kind, s0, p0)
    point = space.baseline(kind, curve_params)
    assert point == {"k": 0.0002}
    assert space.curve_params(kind, point) == pytest.approx({"a": 1.0, "k": 0.0002})


def test_constraint_values_follow_optunas_sign_convention():
    c = parse_constraint("slippage<=0.05")
    assert c == Constraint("slippage", "<=", 0.05)
    assert c.violation(0.03) == pytest.approx(-0.02) and c.violation(0.07) > 0
    assert parse_constraint("reserve_coverage >= 0.9").violation(0.95) == pytest.approx(-0.05)


def test_slippage_of_the_reference_trade_by_hand():
    """Linear f(S) = m S + b: buying Q at S0 costs Q (b + m (S0 + Q/2)), so the slippage
    is m Q / (2 f(S0))."""
    params = {**tuning._model_params("defi_token_market", "hold", TINY)}
    frame = evaluate_curve(params, "linear", {"slope": 0.002, "intercept": 1.0}, [1], steps=2,
                           slippage_trade=10.0)
    s0 = 5 * 10.0
    assert frame.slippage[0] == pytest.approx(0.002 * 10 / (2 * (0.002 * s0 + 1.0)))
    assert frame.initial_reserve[0] == pytest.approx(1.0 * s0 + 0.002 * s0**2 / 2)


def test_candidates_are_measured_as_the_reproduction_measures_its_arms():
    """evaluate_curve's two volatility definitions equal experiments.evaluate_arm's on
    the same seeds and population."""
    from mesa_econ.experiments import evaluate_arm

    params = tuning._model_params("defi_token_market", "informed", TINY)
    arm, _ = evaluate_arm(None, params, [3, 4], scripted="informed")
    ours = evaluate_curve(params, "exponential", params["curve_params"], [3, 4])
    np.testing.assert_array_equal(ours.volatility, arm.volatility)
    np.testing.assert_array_equal(ours.level_variance, arm.level_variance)


# ------------------------------------------------------------------ the study

def test_tuning_finds_a_known_interior_optimum():
    """§7.1 with a trade-off: level variance plus a reserve target, price fixed at S0.

    With the quote P(t) = f(S(t)) + η(t) and an anchored linear curve
    f(S) = P0 + m (S − S0), the supply path does not depend on m (orders are random and
    budgets never bind), so the level variance is exactly a m² + b m + c; it is measured
    at three slopes. The reserve R(S0) = P0 S0 − m S0²/2 has a target R* (met at
    m_R = 0.8 P0/S0), weighted so that the penalty is a (m − m_R)². The loss's minimiser
    is m* = (2 a m_R − b) / (4 a), about 0.4 P0/S0: interior.
    """
    params = tuning._model_params("defi_token_market", "random_clipped", EXACT)
    _, _, s0, p0 = initial_point(params)
    s0, p0 = float(s0[0]), float(p0[0])
    seeds = [tuning.TUNING_SEED_BASE + k for k in range(4)]
    top = p0 / s0  # the steepest anchored slope (intercept 0)

    def level_variance(m):
        curve = {"slope": m, "intercept": p0 - m * s0}
        return float(evaluate_curve(params, "linear", curve, seeds).level_variance.mean())

    slopes = np.array([0.0, 0.5, 1.0, 0.3]) * top
    measured = [level_variance(m) for m in slopes]
    a, b, c = np.polyfit(slopes[:3], measured[:3], 2)
    assert np.polyval([a, b, c], slopes[3]) == pytest.approx(measured[3], rel=1e-9)  # exact
    m_reserve = 0.8 * top
    r_star = p0 * s0 - m_reserve * s0**2 / 2
    weight = a * (2 * r_star / s0**2) ** 2
    m_star = (2 * a * m_reserve - b) / (4 * a)
    assert 0.3 * top < m_star < 0.5 * top

    loss = Objective("loss", "minimize", lambda row: row["level_variance"]
                     + weight * (row["initial_reserve"] / r_star - 1.0) ** 2)
    result = tuning.tune("defi_token_market", 25, objectives=[loss], curve="linear",
                         seeds=4, holdout_seeds=0, overrides=EXACT, sampler_seed=0)
    best = result.summary["best"][0]
    assert best["params"]["slope"] == pytest.approx(m_star, abs=0.03 * top)
    optimum = np.polyval([a, b, c], m_star) + a * (m_star - m_reserve) ** 2
    assert best["values"]["loss"] == pytest.approx(optimum, rel=0.01)


def test_equal_candidates_get_identical_objectives():
    """Common random numbers: the same Φ twice gives the same numbers, seed by seed."""
    result = _tune(trials=4, objectives=["volatility", "level_variance"],
                   enqueue=[{"k": 1e-4}, {"k": 1e-4}, {"k": 5e-3}])
    trials = result.study.trials
    assert trials[1].params == trials[2].params == {"k": 1e-4}
    assert trials[1].values == trials[2].values
    assert trials[1].user_attrs["per_seed"] == trials[2].user_attrs["per_seed"]
    assert trials[3].values != trials[1].values  # another curve does change them


def test_sqlite_study_resumes_after_an_interruption(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def interrupt(study, trial):
        if len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 2:
            raise KeyboardInterrupt  # Ctrl-C after the second trial

    with pytest.raises(KeyboardInterrupt):
        _tune(trials=5, storage=storage, progress=interrupt)
    first = optuna.load_study(study_name="tune-defi_token_market", storage=storage)
    before = [t.params for t in first.trials]
    assert len(before) == 2

    result = _tune(trials=5, storage=storage)
    complete = result.table[result.table.state == "COMPLETE"]
    assert len(complete) == 5
    assert [t.params for t in result.study.trials[:2]] == before  # the earlier trials
    again = _tune(trials=5, storage=storage)  # nothing missing: nothing runs
    assert len(again.study.trials) == 5
    with pytest.raises(ValueError, match="other settings"):
        _tune(trials=6, storage=storage, seeds=3)


def test_several_objectives_give_a_pareto_front_and_constraints_filter_it():
    result = _tune(trials=8, objectives=["volatility", "slippage"],
                   constraints=["slippage<=0.05"], sampler="nsga2")
    table = result.table
    front = result.summary["best"]
    assert front and all(b["feasible"] for b in front)
    feasible = table[table.feasible]
    assert (table.slippage[table.feasible] <= 0.05).all()
    assert (table.slippage[~table.feasible & (table.state == "COMPLETE")] > 0.05).all()
    for b in front:  # no feasible trial dominates a front member
        v, s = b["values"]["volatility"], b["values"]["slippage"]
        dominated = ((feasible.value_volatility <= v) & (feasible.value_slippage <= s)
                     & ((feasible.value_volatility < v) | (feasible.value_slippage < s)))
        assert not dominated.any()


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(objectives=["volatility", "gini"]), "one objective"),
    (dict(constraints=["gini<=0.1"]), "no constraints"),
    (dict(curve=["sigmoid", "linear"]), "one curve kind"),
    (dict(curve="exponential"), ">= 2 continuous parameters"),
])
def test_cmaes_is_rejected_where_it_does_not_apply(kwargs, match):
    with pytest.raises(ValueError, match=f"sampler='cmaes' is invalid.*{match}"):
        _tune(sampler="cmaes", **{"curve": "sigmoid", **kwargs})


@pytest.mark.skipif(importlib.util.find_spec("cmaes") is None, reason="needs cmaes")
def test_cmaes_runs_on_one_kinds_continuous_parameters():
    result = _tune(trials=4, sampler="cmaes", curve="sigmoid")
    assert (result.table.state == "COMPLETE").all()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: tuning.tune("no_such_market", 3), "scenario='no_such_market'"),
    (lambda: _tune(trials=0), "trials=0 is invalid: expected an integer >= 1"),
    (lambda: _tune(seeds=1), "seeds=1 is invalid: expected an integer >= 2"),
    (lambda: _tune(steps=1), "steps=1 is invalid"),
    (lambda: _tune(objectives=["calm"]), "objective='calm' is invalid"),
    (lambda: _tune(constraints=["calm<=1"]), "metric='calm' is invalid"),
    (lambda: _tune(constraints=["slippage<0.1"]), "METRIC<=VALUE"),
    (lambda: _tune(sampler="grid"), "sampler='grid' is invalid"),
    (lambda: _tune(curve="cubic"), "kinds=\\['cubic'\\] is invalid"),
    (lambda: _tune(bounds={"k": (1e-3, 1e-4)}), "bounds\\['k'\\].*low < high"),
    (lambda: _tune(bounds={"k": (0.0, 1e-3)}), "bounds\\['k'\\].*low > 0"),
    (lambda: _tune(bounds={"slope": (0.0, 1.0)}), "bounds\\['slope'\\] is invalid"),
    (lambda: _tune(bounds={"a": (0.5, 2.0)}), "bounds\\['a'\\] is invalid"),
    (lambda: _tune(curve="linear", bounds={"slope": (0.0, 1.0)}), "slope must stay <="),
    (lambda: _tune(fixed={"a": 1.0}), "fixed\\['a'\\] is invalid under anchor=True"),
    (lambda: _tune(fixed={"zeta": 1.0}), "fixed\\['zeta'\\] is invalid"),
    (lambda: _tune(overrides={"curve": "linear"}), "overrides \\['curve'\\] is invalid"),
    (lambda: _tune(policy="checkpoint:/no/such/dir"), "no/such"),
])
def test_bad_input_names_the_field(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------ the command

def _parser():
    from mesa_econ.cli import tune as tune_cli

    parser = argparse.ArgumentParser(prog="mesa-econ")
    tune_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_registering_the_command_imports_neither_optuna_nor_the_study():
    code = ("import argparse, sys; from mesa_econ.cli import tune; "
            "tune.add_parser(argparse.ArgumentParser().add_subparsers()); "
            "print('optuna' in sys.modules, 'mesa_econ.analysis.tuning' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]


def test_tune_command_writes_its_outputs_and_resumes(tmp_path, capsys):
    out = tmp_path / "tune"
    argv = ["tune", "defi_token_market", "--trials", "3", "--seeds", "2", "--steps", "8",
            "--model", "n_agents=5", "--out", str(out), "--no-progress"]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "best Φ" in printed and "exponential k=" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 3}
    assert {"volatility", "level_variance"} <= set(summary["best"][0]["tuning"])
    for name in ("trials.csv", "objective_vs_params.png", "history.png", "study.db"):
        assert (out / name).stat().st_size > 0
    args = _parser().parse_args([*argv[:3], "5", *argv[4:]])
    args.func(args)
    assert json.loads((out / "summary.json").read_text())["trials"] == {"COMPLETE": 5}


def test_tune_command_checks_the_output_folder_first(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = _parser().parse_args(["tune", "defi_token_market", "--out", str(blocker / "d")])
    with pytest.raises(ValueError, match=r"--out .* is invalid"):
        args.func(args)


def test_an_optimum_at_the_edge_of_the_range_is_flagged():
    from mesa_econ.analysis.tuning_report import at_bound

    space = build_space("sigmoid", np.array([100.0]), np.array([1.0]))
    assert at_bound(space, {"midpoint": 0.5, "steepness": 0.02}) == ["midpoint"]
    assert at_bound(space, {"midpoint": 200.0, "steepness": 0.199}) == ["steepness"]
    assert at_bound(space, {"midpoint": 200.0, "steepness": 0.02}) == []
