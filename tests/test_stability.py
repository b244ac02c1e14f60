"""§7.2 stability: the linear deviation, the drift estimator, the decay fit, twin runs,
the analytic mean-square condition and noise floor, and the ``stability`` command."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ import MarketConfig
from mesa_econ.analysis import stability
from mesa_econ.analysis.stability import (
    check_linear,
    drift_table,
    fit_decay_rate,
    foster_lyapunov_level,
    linear_prediction,
    linear_twin_exponent,
    lyapunov_v,
    mean_square_factor,
    mean_square_stable,
    perturb_deviation,
    run_stability,
    simulate_linear_deviation,
    twin_exponent,
)
from mesa_econ.cli import stability as stability_cli

# ---------------------------------------------------------------- the linear deviation


@pytest.mark.parametrize(("theta", "dt"), [(0.5, 1.0), (0.25, 2.0), (1.0, 0.5)])
def test_theta_dt_half_without_noise_is_stable_and_v_shrinks_by_a_quarter(theta, dt):
    """§7.2: X' = (1 − θdt) X with θdt = 0.5, so V = X² shrinks by (1 − θdt)² = 0.25."""
    x = simulate_linear_deviation(theta, dt, x0=2.0, steps=20)
    v = x**2
    np.testing.assert_allclose(v[1:] / v[:-1], 0.25, rtol=1e-12)
    check = check_linear(theta, dt, x0=2.0, steps=30)
    assert check.stable and check.measured_stable
    assert check.ms_factor == pytest.approx(0.25)
    assert check.measured_factor == pytest.approx(0.25, rel=1e-6)
    assert check.exponent == pytest.approx(math.log(0.5), abs=1e-6)


@pytest.mark.parametrize(("theta", "dt"), [(2.5, 1.0), (1.25, 2.0)])
def test_theta_dt_two_and_a_half_is_unstable(theta, dt):
    """θdt = 2.5: |1 − θdt| = 1.5, V grows by 2.25 per step. MarketConfig refuses it,
    so the standalone linear process is what shows it."""
    with pytest.raises(ValueError, match="theta"):
        MarketConfig(theta=theta, dt=dt)
    check = check_linear(theta, dt, x0=1.0, steps=30)
    assert not check.stable and not check.measured_stable
    assert check.ms_factor == pytest.approx(2.25)
    assert check.measured_factor == pytest.approx(2.25, rel=1e-6)
    assert check.exponent == pytest.approx(math.log(1.5), abs=1e-6)


@pytest.mark.parametrize(("theta", "dt", "sigma1", "factor", "stable"), [
    (0.5, 1.0, 0.0, 0.25, True),          # (1 − 0.5)²
    (1.9, 1.0, 0.0, 0.81, True),          # (1 − 1.9)² = 0.81: θdt < 2, oscillating
    (2.0, 1.0, 0.0, 1.0, False),          # θdt = 2: the boundary
    (0.0, 1.0, 0.0, 1.0, False),          # θ = 0: no mean reversion
    (0.2, 1.0, 0.5, 0.64 + 0.25, True),   # 0.8² + 0.5²·1
    (0.2, 1.0, 0.7, 0.64 + 0.49, False),  # 0.8² + 0.7²·1 > 1: noise-driven instability
    (1.0, 0.5, 1.0, 0.25 + 0.5, True),    # 0.5² + 1²·0.5
    (0.1, 0.1, 3.0, 0.99**2 + 0.9, False),  # 0.9801 + 9·0.1
])
def test_mean_square_condition_by_hand(theta, dt, sigma1, factor, stable):
    """§7.2: mean-square stable iff (1 − θdt)² + σ1²dt < 1."""
    assert mean_square_factor(theta, dt, sigma1) == pytest.approx(factor)
    assert mean_square_stable(theta, dt, sigma1) is stable


@pytest.mark.parametrize("sigma1", [0.5, 0.7])
def test_mean_square_condition_matches_simulation(sigma1):
    """E[X²] of many paths with X' = (0.8 + σ1 dW) X falls (σ1 = 0.5) or grows (0.7)
    by (1 − θdt)² + σ1²dt per step."""
    check = check_linear(0.2, 1.0, sigma1=sigma1, steps=6, n_paths=200_000, rng=3)
    assert check.measured_factor == pytest.approx(check.ms_factor, rel=0.05)
    assert check.measured_stable is check.stable


@pytest.mark.parametrize("theta_dt", [0.3, 0.5, 1.5, 1.9, 2.5])
def test_twin_exponent_is_log_abs_one_minus_theta_dt(theta_dt):
    """Same noise, x0 and x0 + ε: the additive noise cancels, δ(T) = (1 − θdt)^T ε."""
    lam = linear_twin_exponent(theta_dt, 1.0, sigma0=0.3, x0=0.7, epsilon=1e-4, steps=25,
                               rng=5)
    assert lam == pytest.approx(math.log(abs(1.0 - theta_dt)), abs=1e-6)  # rounding of δ
    # the same from the path estimator, over seeds
    deltas = []
    for seed in range(4):
        base = simulate_linear_deviation(theta_dt, 1.0, 0.3, 0.0, 0.7, 25, seed)
        twin = simulate_linear_deviation(theta_dt, 1.0, 0.3, 0.0, 0.7 + 1e-4, 25, seed)
        deltas.append(np.abs(twin - base))
    est = twin_exponent(np.array(deltas))
    assert est.mean == pytest.approx(math.log(abs(1.0 - theta_dt)), abs=1e-6)
    assert est.verdict == ("converge" if theta_dt < 2 else "diverge")


def test_twin_exponent_separates_a_lasting_offset_from_convergence():
    """δ(t) = 0.1·0.5^t + 0.01: λ < 0 over the horizon, but the tail no longer shrinks."""
    t = np.arange(61)
    rng = np.random.default_rng(0)
    delta = 0.1 * 0.5**t + 0.01 * (1 + 0.01 * rng.standard_normal((4, t.size)))
    est = twin_exponent(delta)
    assert est.ci_high < 0 and est.verdict == "persist"
    assert abs(est.tail) < 1e-3
    assert twin_exponent(0.1 * 0.5 ** np.tile(t[:30], (3, 1))).verdict == "converge"


@settings(max_examples=40, deadline=None)
@given(theta_dt=st.floats(0.05, 1.95).filter(lambda x: abs(x - 1.0) > 0.2),
       sigma0=st.floats(0.0, 2.0), x0=st.floats(-5.0, 5.0))
def test_twin_exponent_property(theta_dt, sigma0, x0):
    """|1 − θdt| >= 0.2 and 8 steps keep δ(T) >= 2.6e-8, far above the rounding of X."""
    lam = linear_twin_exponent(theta_dt, 1.0, sigma0=sigma0, x0=x0, epsilon=1e-2,
                               steps=8, rng=0)
    assert lam == pytest.approx(math.log(abs(1.0 - theta_dt)), abs=1e-6)


def test_linear_prediction_noise_floor_by_hand():
    """Var X = (b0²dt + ζ²s²) / (1 − (1 − θdt)²), E[V] = (Var X + σ_η²) / P*²."""
    pred = linear_prediction(0.5, 1.0, sigma0=0.1, p_star=2.0, sigma_eta=0.05, zeta=0.1,
                             factor_std=0.2)
    var_x = (0.1**2 + 0.1**2 * 0.2**2) / (1.0 - 0.25)
    assert pred.var_x == pytest.approx(var_x)
    assert pred.v_floor == pytest.approx((var_x + 0.05**2) / 4.0)
    assert pred.v_floor_eta == pytest.approx(0.05**2 / 4.0)
    assert pred.v_band == pytest.approx(3.841459 * pred.v_floor, rel=1e-6)
    # σ1 enters b0 = σ0 + σ1·P* and the multiplicative term σ1²(Var X + σ_η²)dt
    pred1 = linear_prediction(0.5, 1.0, sigma1=0.1, p_star=2.0, sigma_eta=0.05)
    assert pred1.var_x == pytest.approx((0.2**2 + 0.1**2 * 0.05**2) / (1 - 0.25 - 0.01))
    assert math.isinf(linear_prediction(2.5, 1.0, sigma0=0.1).var_x)


def test_stationary_variance_of_the_linear_process_matches_the_prediction():
    paths = simulate_linear_deviation(0.5, 1.0, sigma0=0.2, sigma1=0.3, x0=np.zeros(2000),
                                      steps=60, rng=1)
    pred = linear_prediction(0.5, 1.0, sigma0=0.2, sigma1=0.3, p_star=1e-12)
    # the standalone process has σ(X) = σ0 + σ1·X: b0 = σ0 when P* → 0
    assert paths[20:].var() == pytest.approx(pred.var_x, rel=0.05)


# ---------------------------------------------------------------- the estimators


def test_drift_table_finds_a_positive_drift():
    """V_{t+1} = V_t + 0.01 + noise: positive everywhere; no Foster-Lyapunov level."""
    rng = np.random.default_rng(0)
    v = np.cumsum(0.01 + 0.002 * rng.standard_normal((20, 200)), axis=1) + 1.0
    table = drift_table(v, n_bins=8)
    assert (table["sign"] == 1).all()
    assert table["drift"].to_numpy() == pytest.approx(0.01, abs=0.001)
    assert not foster_lyapunov_level(table).holds


def test_drift_table_finds_the_drift_of_a_mean_reverting_process():
    """X' = 0.8 X + ξ: E[ΔV | V] = (0.8² − 1) V + 1, zero at V* = 1/0.36 ≈ 2.78."""
    x = simulate_linear_deviation(0.2, 1.0, sigma0=1.0, x0=np.full(200, 6.0), steps=300,
                                  rng=2)
    table = drift_table((x**2).T, n_bins=10)
    expected = -0.36 * table["v_mean"] + 1.0
    inside = (table["ci_low"] <= expected) & (expected <= table["ci_high"])
    assert inside.sum() >= 8
    v_star = 1.0 / 0.36
    assert (table.loc[table["v_low"] > 2 * v_star, "sign"] == -1).all()
    assert (table.loc[table["v_high"] < v_star / 3, "sign"] == 1).all()
    fl = foster_lyapunov_level(table)
    assert fl.holds and v_star / 3 < fl.level < 3 * v_star
    assert fl.log_band == pytest.approx(math.sqrt(fl.level))


def test_drift_table_clusters_widen_the_interval_of_copies():
    """Three identical copies of each path are one observation each, not three."""
    rng = np.random.default_rng(4)
    v = np.abs(rng.standard_normal((10, 100))).cumsum(axis=1)
    plain = drift_table(v, n_bins=4)
    copies = [*v, *v, *v]
    labels = np.arange(10 * 99).reshape(10, 99)
    tripled = drift_table(copies, n_bins=4)
    clustered = drift_table(copies, n_bins=4, clusters=[*labels, *labels, *labels])
    width = {k: (t["ci_high"] - t["ci_low"]).to_numpy()
             for k, t in (("plain", plain), ("tripled", tripled), ("clustered", clustered))}
    assert np.all(width["tripled"] < width["plain"])
    np.testing.assert_allclose(width["clustered"], width["plain"], rtol=0.01)


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.01, 3.0), v0=st.floats(1e-6, 1e3), floor=st.floats(0.0, 1.0))
def test_fit_decay_rate_recovers_an_exponential_above_a_floor(rate, v0, floor):
    v = floor + v0 * np.exp(-rate * np.arange(12))
    fit = fit_decay_rate(v, floor)
    assert fit.rate == pytest.approx(rate, rel=1e-5)
    assert fit.factor == pytest.approx(math.exp(-rate), rel=1e-5)


def test_fit_decay_rate_stops_where_the_excess_is_unresolved():
    v = np.array([1.0, 0.5, 0.25, 0.125, 0.06])
    fit = fit_decay_rate(v, se=np.array([0.01, 0.01, 0.01, 0.1, 0.1]))
    assert fit.n_points == 3
    assert fit.factor == pytest.approx(0.5)
    assert math.isnan(fit_decay_rate(v, se=np.full(5, 1.0)).rate)


def test_lyapunov_v_by_hand():
    assert lyapunov_v(np.e, 1.0) == pytest.approx(1.0)
    np.testing.assert_allclose(lyapunov_v([2.0, 0.5], [1.0, 1.0]), np.log(2.0) ** 2)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("call", "field"), [
    (lambda: simulate_linear_deviation(-1.0, 1.0), "theta"),
    (lambda: simulate_linear_deviation(0.5, 0.0), "dt"),
    (lambda: simulate_linear_deviation(0.5, 1.0, sigma0=-0.1), "sigma0"),
    (lambda: simulate_linear_deviation(0.5, 1.0, sigma1=float("nan")), "sigma1"),
    (lambda: simulate_linear_deviation(0.5, 1.0, steps=0), "steps"),
    (lambda: simulate_linear_deviation(0.5, 1.0, x0=np.ones((2, 2))), "x0"),
    (lambda: linear_twin_exponent(0.5, 1.0, epsilon=0.0), "epsilon"),
    (lambda: linear_prediction(0.5, 1.0, p_star=0.0), "p_star"),
    (lambda: check_linear(0.5, 1.0, n_paths=0), "n_paths"),
    (lambda: drift_table(np.ones((2, 50)), n_bins=1), "n_bins"),
    (lambda: drift_table(np.ones((2, 50)), confidence=1.5), "confidence"),
    (lambda: drift_table(np.ones((1, 5)), n_bins=4), "trajectories"),
    (lambda: drift_table([np.ones(5)], clusters=[np.arange(3)]), "clusters"),
    (lambda: fit_decay_rate(np.ones(5), floor=-1.0), "floor"),
    (lambda: fit_decay_rate(np.ones(1)), "v_mean"),
    (lambda: twin_exponent(np.zeros((2, 5))), "delta"),
    (lambda: lyapunov_v([1.0, -1.0], 1.0), "prices"),
    (lambda: lyapunov_v(1.0, 0.0), "reference"),
    (lambda: run_stability("no_such_market"), "scenario"),
    (lambda: run_stability("defi_token_market", seeds=0), "seeds"),
    (lambda: run_stability("defi_token_market", steps=5), "steps"),
    (lambda: run_stability("defi_token_market", epsilon=0.0), "epsilon"),
    (lambda: run_stability("defi_token_market", epsilon=0.9), "epsilon"),
    (lambda: run_stability("defi_token_market", steps=100, perturb_step=95), "perturb_step"),
    (lambda: run_stability("defi_token_market", perturbation="shock"), "perturbation"),
    (lambda: run_stability("defi_token_market", perturbation="bump"), "perturbation"),
    (lambda: run_stability("defi_token_market", policy=""), "policy"),
    (lambda: run_stability("defi_token_market", policy="oracle"), "policy"),
    (lambda: run_stability("defi_token_market", overrides={"theta": 2.5}), "theta"),
])
def test_bad_input_raises_value_error_naming_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()


# ---------------------------------------------------------------- the model


@pytest.fixture(scope="module")
def defi_result():
    return run_stability("defi_token_market", policy="random", seeds=4, steps=200)


def test_agents_off_match_the_linear_analysis(defi_result):
    """Hold, κ = λ = 0: the deviation is the linear process; θ = 0.2, dt = 1, σ1 = 0.005."""
    pred, measured = defi_result.predictions[0], defi_result.measured_off[0]
    off = defi_result.off
    assert pred.stable and pred.ms_factor == pytest.approx(0.8**2 + 0.005**2)
    assert off.decay.factor == pytest.approx(pred.ms_factor, rel=0.03)
    assert off.twin.mean == pytest.approx(math.log(0.8), abs=0.005)
    assert off.twin.verdict == "converge"
    assert off.fl_curve.holds
    assert measured["v_floor"] == pytest.approx(pred.v_floor, rel=0.3)
    # ~190 correlated steps per seed: a 95% range of about ±30% for these two
    assert measured["var_x"] == pytest.approx(pred.var_x, rel=0.35)
    assert 0.85 < measured["share_in_band"] <= 1.0


def test_twins_share_the_noise_until_the_perturbation(defi_result):
    t0 = defi_result.perturb_step
    for arm in (defi_result.on, defi_result.off):
        for kind in ("twin", "twin_neg"):
            np.testing.assert_array_equal(arm.v_curve[kind][:, :t0], arm.v_curve["base"][:, :t0])
            assert np.all(arm.v_curve[kind][:, t0] != arm.v_curve["base"][:, t0])


def test_agents_on_report_and_summary(defi_result):
    on = defi_result.on
    assert on.twin.verdict == "converge" and on.twin.mean < 0
    assert on.decay.rate > 0
    assert on.fl_curve.holds
    summary = defi_result.summary()
    json.dumps(summary, allow_nan=False)
    assert summary["p_star"] == pytest.approx([math.exp(0.0002 * 500)])
    frame = defi_result.drift_frame()
    assert set(frame["agents"]) == {"agents on", "agents off"}
    assert set(frame["reference"]) == {"curve", "fixed"}


def test_shock_perturbation_decays():
    result = run_stability("shock_recovery", seeds=2, steps=90, progress=lambda label: None)
    assert result.perturbation == "shock" and result.perturb_step == 50
    assert "shock" in result.on.v_curve
    assert result.on.decay_start >= 50
    assert result.on.decay.rate > 0


def test_perturb_deviation_moves_deviation_and_quote():
    from mesa_econ.scenarios import build_model

    model = build_model("defi_token_market", policy="hold", rng=0)
    model.step()
    x, p = model.deviation.copy(), model.prices.copy()
    perturb_deviation(model, np.array([0.05]))
    np.testing.assert_allclose(model.deviation, x + 0.05)
    np.testing.assert_allclose(model.prices, p + 0.05)
    with pytest.raises(ValueError, match="read-only"):
        model.deviation[0] = 0.0
    model.step()  # and the market goes on from there


# ---------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mesa-econ")
    stability_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_stability_parser_imports_neither_torch_nor_matplotlib():
    import subprocess
    import sys

    code = ("import argparse, sys\n"
            "from mesa_econ.cli import stability\n"
            "p = argparse.ArgumentParser()\n"
            "stability.add_parser(p.add_subparsers())\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'mesa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_stability_command_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "stab"
    args = _parser().parse_args(["stability", "defi_token_market", "--seeds", "2",
                                 "--steps", "60", "--out", str(out), "--no-progress"])
    assert args.func(args) == 0
    for name in ("summary.json", "drift.csv", "v_paths.csv", "v_t.png", "drift.png"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"] == "defi_token_market" and summary["seeds"] == [0, 1]
    assert summary["notes"] and "agents off" in capsys.readouterr().out
    drift = pd.read_csv(out / "drift.csv")
    assert {"agents", "reference", "v_low", "drift", "ci_low", "ci_high"} <= set(drift)


def test_stability_command_checks_out_before_any_work(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    def no_work(*args, **kwargs):
        raise AssertionError("ran before checking --out")

    monkeypatch.setattr(stability, "run_stability", no_work)
    args = _parser().parse_args(["stability", "defi_token_market", "--out",
                                 str(blocker / "sub")])
    with pytest.raises(ValueError, match="--out"):
        args.func(args)
