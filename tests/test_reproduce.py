"""The §9 reproduction (``mesa_econ.experiments``, ``mesa-econ reproduce``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mesa_econ import experiments as ex
from mesa_econ.cli.reproduce import check_writable, rewrite_report, write_outputs

TINY = ex.RunPlan(train_seeds=2, eval_seeds=2,
                  iterations={"defi_token_market": 1, "resource_network": 1,
                              "shock_recovery": 1})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    result = ex.run_reproduction(TINY, out)
    results = write_outputs(result, TINY, out, "tiny")
    return out, result, results


def test_every_claim_mark_and_arm_is_run_on_the_same_seeds(tiny_run):
    _, result, _ = tiny_run
    runs = result["runs"]
    for claim in ex.CLAIMS:
        for mark in ex.PROFIT_MARKS:
            sub = runs[(runs.claim == claim.key) & (runs["mark"] == mark)]
            assert set(sub.arm) == {a.name for a in claim.arms}
            for _, arm_rows in sub.groupby("arm"):
                assert sorted(arm_rows.seed.unique()) == result["eval_seeds"]
                assert sorted(arm_rows.train_seed.unique()) == [0, 1]
    assert ex.work_units(TINY) > 0


def test_report_numbers_equal_results_json(tiny_run):
    out, _, results = tiny_run
    assert json.loads((out / "results.json").read_text())["claims"] == json.loads(
        json.dumps(results["claims"], default=float))
    report = (out / "report.md").read_text()
    rows = [line for line in report.splitlines()
            if line.startswith("| ") and line.count("|") == 7 and "claim" not in line]
    assert len(rows) == len(results["claims"])
    for row, s in zip(rows, results["claims"], strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == s["claim"] and cells[1] == s["mark"]
        number = float(re.match(r"-?[\d.]+", cells[3]).group())
        scale = 1.0 if s["metric"] == "recovery_time" else 100.0
        assert number == pytest.approx(scale * s["measured"], abs=0.051)
        assert cells[5] == ("yes" if s["holds"] else "no")
    provenance = results["provenance"]
    assert {"commit", "config_hash", "machine", "versions"} <= set(provenance)
    import mesa_econ

    assert provenance["versions"]["mesa_econ"] == mesa_econ.__version__  # not stale metadata
    for name in ("runs.csv", "training.csv", "reward_shares.csv", "figures/price_paths.png",
                 "figures/volatility.png", "figures/utilisation.png", "figures/shock.png",
                 "figures/training.png"):
        assert (out / name).exists(), name
    ckpts = list((out / "checkpoints").glob("*/*/*/seed*/policy.json"))
    assert len(ckpts) == 2 * 2 * sum(a.policy == "ppo" for c in ex.CLAIMS for a in c.arms)
    meta = json.loads(ckpts[0].read_text())
    assert "profit_mark" in json.dumps(meta)


def test_common_random_numbers_across_scripted_arms():
    """hold and random see the same market noise: with no trading, the price path of the
    hold arm equals a hand run of the same seed."""
    claim = ex.CLAIMS[0]
    params = ex.claim_params(claim, ex.Arm("hold", "hold"), "liquidation")
    frame, paths = ex.evaluate_arm(None, params, [5, 6], scripted="hold")
    again, paths2 = ex.evaluate_arm(None, params, [5, 6], scripted="hold")
    np.testing.assert_array_equal(paths["prices"], paths2["prices"])
    pd.testing.assert_frame_equal(frame, again)


def test_summaries_on_hand_made_runs():
    """Relative volatility reduction 1 − σ_focus/σ_base per training seed, and the
    absolute utilisation and recovery targets."""
    claim = ex.CLAIMS[0]
    rows = []
    for seed, (focus, base) in enumerate([(0.7, 1.0), (0.5, 1.0), (0.6, 1.0)]):
        rows += [{"claim": claim.key, "mark": "liquidation", "arm": claim.focus,
                  "train_seed": seed, "seed": 0, "volatility": focus},
                 {"claim": claim.key, "mark": "liquidation", "arm": claim.baseline,
                  "train_seed": seed, "seed": 0, "volatility": base}]
    s = ex.summarise_claim(pd.DataFrame(rows), claim, "liquidation")
    assert s["measured"] == pytest.approx(0.4) and s["holds"]
    assert s["low"] <= 0.4 <= s["high"]
    assert s["vs_baseline"]["mean"] == pytest.approx(-0.4)


def test_full_run_needs_five_seeds():
    with pytest.raises(ValueError, match="seeds"):
        ex.RunPlan.full(3)


def test_out_must_be_writable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="--out"):
        check_writable(blocker / "sub")


@pytest.mark.slow
def test_reproduce_quick_end_to_end(tmp_path):
    """`mesa-econ reproduce --quick` as a user runs it: report and results agree."""
    out = tmp_path / "quick"
    proc = subprocess.run([sys.executable, "-m", "mesa_econ.cli", "reproduce", "--quick",
                           "--no-progress", "--out", str(out)], capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "quick" and len(results["claims"]) == 6
    assert "| claim | mark |" in (out / "report.md").read_text()


def test_learnability_rows_and_gap():
    """One row per (N, kind, seed); gap closed = (trained − initial)/(hold − initial)."""
    frame = ex.learnability(ns=(5,), kinds=("shared", "attributed"), seeds=(0,),
                            iterations=1, eval_seeds=1)
    assert list(frame.stability) == ["shared", "attributed"]
    row = frame.iloc[1]
    assert row.gap_closed == pytest.approx((row.trained - row.initial)
                                           / (row.hold - row.initial))
    assert row.hold == pytest.approx(0.0, abs=1e-12)  # not trading moves no price by itself


def test_report_can_be_rewritten_from_the_csvs(tiny_run):
    out, _, results = tiny_run
    before = (out / "report.md").read_text()
    again = rewrite_report(out)
    assert json.loads(json.dumps(again["claims"], default=float)) == json.loads(
        json.dumps(results["claims"], default=float))
    assert again["provenance"] == results["provenance"]
    assert (out / "report.md").read_text() == before


def test_rewrite_report_needs_a_finished_run(tmp_path):
    with pytest.raises(ValueError, match="not a finished reproduction"):
        rewrite_report(tmp_path)


@pytest.mark.parametrize(("scope", "per_agent_weight"), [("neighbours", 4.0), ("all", 9.0)])
def test_neighbours_income_is_the_whole_cooperative_term_when_nobody_holds_or_trades(
        scope, per_agent_weight):
    """With no holdings and no trades every agent's profit is its income I = 1 per step,
    so the cooperative term is exactly ρ·(its neighbours' weight)·I·T: 0.2·4·1·8 = 6.4 on
    a ring of degree 4, 0.2·9·1·8 = 14.4 over the 9 others; all of it is income."""
    from mesa_econ.scenarios import scenario_params

    params = scenario_params("resource_network", n_agents=10, initial_holdings=0.0,
                             rho=0.2, cooperative_scope=scope,
                             graph_params={"k": 4, "p": 0.0}, horizon=8)
    frame, _ = ex.evaluate_arm(None, params, [3, 4], scripted="hold")
    expected = 0.2 * per_agent_weight * 1.0 * 8
    np.testing.assert_allclose(frame.return_cooperative_income, expected, rtol=1e-12)
    np.testing.assert_allclose(frame.return_cooperative, expected, rtol=1e-12)


def test_neighbours_income_is_zero_without_a_cooperative_term():
    from mesa_econ.scenarios import scenario_params

    params = scenario_params("resource_network", n_agents=8, horizon=4)  # rho = 0
    frame, _ = ex.evaluate_arm(None, params, [1], scripted="random")
    assert frame.return_cooperative_income.tolist() == [0.0]
    assert frame.return_cooperative.tolist() == [0.0]


def test_reward_shares_take_own_and_neighbours_income_out():
    """Hand-made runs: profit 10 of which income 8 → trading 2; cooperative 7 of which
    the neighbours' income 4 → net 3; stability −1, use value 4: shares of |2|+|−1|+|3|+|4|
    = 10 are 0.2, 0.1, 0.3, 0.4."""
    claim = ex.CLAIMS[0]
    row = {"claim": claim.key, "mark": "liquidation", "arm": claim.focus, "train_seed": 0,
           "seed": 0, "return_profit": 10.0, "return_income": 8.0, "return_stability": -1.0,
           "return_cooperative": 7.0, "return_cooperative_income": 4.0,
           "return_use_value": 4.0, "return_total": 20.0, "price_drift": 0.0,
           "supply_drift": 0.0}
    table = ex.reward_shares(pd.DataFrame([row]), claim, "liquidation").iloc[0]
    assert table.return_trading == 2.0 and table.return_cooperative_net == 3.0
    assert [table.share_trading, table.share_stability, table.share_cooperative,
            table.share_use_value] == pytest.approx([0.2, 0.1, 0.3, 0.4])
    old = {k: v for k, v in row.items() if k != "return_cooperative_income"}
    table = ex.reward_shares(pd.DataFrame([old]), claim, "liquidation").iloc[0]
    assert table.return_cooperative_net == 7.0  # a run from before the split: all net
    assert table.share_cooperative == pytest.approx(7.0 / 14.0)


def test_learning_curve_retrains_from_scratch_at_each_budget():
    """Each budget's row is a fresh run: the same as training that many iterations alone
    and evaluating on the same held-out seeds; scripted arms run under the trained arm's
    reward (ρ = 0.2 here: the cooperative term is paid to `hold` too)."""
    from mesa_econ.experiments.reproduction import _train

    kw = dict(budgets=(2, 1), train_seeds=1, eval_seeds=2, n_agents=10)
    frame = ex.learning_curve("resource_utilisation", "PPO cooperative", **kw)
    assert list(frame.kind) == ["scripted"] * 3 + ["trained"] * 2
    assert list(frame.iterations) == [0, 0, 0, 2, 1]
    claim, arm = ex.CLAIMS[1], ex.CLAIMS[1].arms[0]
    params = {**ex.claim_params(claim, arm, "liquidation"), "n_agents": 10}
    _, policy, _ = _train(params, 0, 1, ex.RunPlan().ppo, None)
    alone, _ = ex.evaluate_arm(policy, params, [ex.EVAL_SEED_BASE, ex.EVAL_SEED_BASE + 1])
    one = frame[frame.iterations == 1].iloc[0]
    assert one.utilisation == alone.utilisation.mean()
    assert one.return_total == alone.return_total.mean()
    hold = frame[frame.arm == "hold (no trading)"].iloc[0]
    assert hold.return_cooperative > 0 and hold.return_cooperative_income > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"claim": "nope", "arm": "PPO"}, "claim='nope' is invalid"),
    ({"claim": "shock_recovery", "arm": "hold (no trading)"}, "arm='hold .no trading.' is "
                                                               "invalid: expected a trained"),
    ({"claim": "shock_recovery", "arm": "PPO", "mark": "mid"}, "mark='mid' is invalid"),
    ({"claim": "shock_recovery", "arm": "PPO", "budgets": ()}, "budgets=.. is invalid"),
    ({"claim": "shock_recovery", "arm": "PPO", "budgets": (0,)}, "budgets=0 is invalid"),
    ({"claim": "shock_recovery", "arm": "PPO", "train_seeds": 0}, "train_seeds=0 is invalid"),
    ({"claim": "shock_recovery", "arm": "PPO", "eval_seeds": 0}, "eval_seeds=0 is invalid"),
])
def test_learning_curve_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ex.learning_curve(**kwargs)


def test_the_deviation_snippet_in_docs_runs_and_need_aware_pays_alone():
    """docs/reproduction.md's snippet, run as printed: agent 0 switching to need-aware
    while the others hold gains (the docs: +2.08 to +13.07 over 30 cases)."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "reproduction.md").read_text()
    code = re.search(r"```python\n(import numpy as np\nfrom mesa_econ.experiments import "
                     r"CLAIMS.*?)```", text, re.S).group(1)
    ns: dict = {}
    exec(code, ns)  # the project's own documentation
    alone = np.zeros(100)
    alone[0] = 1.0
    gain = ns["returns"](1000, alone)[0] - ns["returns"](1000, np.zeros(100))[0]
    assert 2.0 < gain < 13.1
