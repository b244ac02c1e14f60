"""Checks of a scenario beside the reproduction (issue 9): the informed arm against
``hold``, the unilateral pump, whether the stability objective is learned."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.experiments.evaluate import evaluate_arm
from mesa_econ.experiments.protocol import EVAL_SEED_BASE, POPULATION_SEED
from mesa_econ.experiments.reproduction import _train
from mesa_econ.scenarios import scenario_params

PATTERNS = ("buy", "sell", "round_trip")
"""The trivial unilateral strategies :func:`pump_check` runs: buy every step (the pump),
sell every step (the dump), and buy on even steps, sell on odd ones (the round trip)."""


def pump_check(scenario: str, seeds: list[int], steps: int = 128, pattern: str = "buy",
               **overrides: Any) -> pd.DataFrame:
    """What a trivial unilateral strategy earns (issue 9 item 2), per seed.

    Agent 0 trades ``trade_scale`` of every asset each step by ``pattern`` (``"buy"``:
    the pump; ``"sell"``: the dump, a sell beyond its holdings filling what it holds;
    ``"round_trip"``: buy on even steps, sell on odd ones) while every other agent holds;
    the reference is the same seed with agent 0 holding too (common random numbers).
    Returns one row per seed: ``gain`` = its total-reward return minus the holder's,
    ``extra_yield`` = the yield paid on its extra tokens, Σ_t y·Z_t·(H_0 − H_hold), and
    ``net`` = gain − extra_yield (for the pump ≤ 0: it does not pay beyond the yield its
    tokens earn).

    Raises:
        ValueError: ``pattern`` not in :data:`PATTERNS`.
    """
    from mesa_econ.model import EconomyModel

    if pattern not in PATTERNS:
        raise ValueError(f"pattern={pattern!r} is invalid: expected one of {list(PATTERNS)}")
    rows = []
    for seed in seeds:
        params = {**scenario_params(scenario, **overrides), "policy": "hold",
                  "collect_every": 0}
        pump, hold = EconomyModel(**params, rng=seed), EconomyModel(**params, rng=seed)
        y = pump.params.yield_rate if pump.params.yield_rate is not None else 0.0
        gain = extra = 0.0
        for t in range(steps):
            sign = -1.0 if pattern == "sell" or (pattern == "round_trip" and t % 2) else 1.0
            orders = np.zeros((pump.n_agents, pump.n_assets))
            orders[0] = sign * pump.trade_scale
            z = pump.factors.copy()
            pump.submit_orders(orders)
            pump.step(), hold.step()
            gain += float(pump.last_rewards[0] - hold.last_rewards[0])
            extra += float(np.sum(y * z * (pump.holdings[0] - hold.holdings[0])))
        rows.append({"seed": seed, "gain": gain, "extra_yield": extra, "net": gain - extra})
    return pd.DataFrame(rows)


def baseline_returns(scenario: str, policies: tuple[str, ...], seeds: list[int],
                     **overrides: Any) -> pd.DataFrame:
    """Mean return per agent of scripted policies on the same seeds (one H-step episode
    each), one column per reward term: the "what does the reward pay for" table."""
    params = {**scenario_params(scenario, **overrides), "collect_every": 0}
    frames = []
    for policy in policies:
        frame, _ = evaluate_arm(None, params, seeds, scripted=policy)
        frames.append(frame.assign(policy=policy))
    return pd.concat(frames, ignore_index=True)


def scenario_checks(scenario: str, seeds: list[int], informed: str = "informed",
                    term: str = "return_profit") -> dict[str, Any]:
    """The two checks of docs/scenarios.md for a scenario, on the same seeds:

    - the informed scripted arm against ``hold`` on ``term`` (paired mean difference and
      its 95% bootstrap CI over seeds);
    - the unilateral pump (:func:`pump_check`): its net return (gain − yield on its extra
      tokens), mean and maximum over seeds.
    """
    from mesa_econ.rl.evaluate import paired_difference

    pop = {"population_seed": POPULATION_SEED}
    table = baseline_returns(scenario, (informed, "hold"), seeds, **pop)
    a = table[table.policy == informed][term].to_numpy(float)
    b = table[table.policy == "hold"][term].to_numpy(float)
    pump = pump_check(scenario, seeds, **pop)
    return {"scenario": scenario, "informed": informed, "term": term,
            "informed_minus_hold": paired_difference(a, b, rng=0),
            "informed_return": float(a.mean()), "hold_return": float(b.mean()),
            "pump_gain": float(pump.gain.mean()), "pump_extra_yield": float(
                pump.extra_yield.mean()), "pump_net_mean": float(pump.net.mean()),
            "pump_net_max": float(pump.net.max())}


def learnability(ns: tuple[int, ...] = (5, 10, 50), kinds: tuple[str, ...] = ("shared",
                 "attributed"), seeds: tuple[int, ...] = (0, 1), iterations: int = 100,
                 eval_seeds: int = 4) -> pd.DataFrame:
    """Is the stability objective learned? (issue 9 item 6.)

    PPO on ``defi_token_market`` with the stability term alone (``profit_weight=0``), for
    each population size N and penalty kind, from a fresh initial policy. The optimum of
    that reward is not to trade (``hold``: return 0 under the attributed term, the noise's
    share under the shared one). Per (N, kind, training seed): the stability return of
    the initial policy, the trained policy and hold on the same held-out seeds, and the
    fraction of the initial-to-hold gap that training closed.
    """
    rows = []
    seeds_eval = [EVAL_SEED_BASE + k for k in range(eval_seeds)]
    for n in ns:
        for kind in kinds:
            params = {**scenario_params("defi_token_market", n_agents=n, profit_weight=0.0,
                                        stability=kind), "population_seed": POPULATION_SEED,
                      "collect_every": 0}
            hold, _ = evaluate_arm(None, params, seeds_eval, scripted="hold")
            for seed in seeds:
                start = time.perf_counter()
                initial, trained, _ = _train(params, seed, iterations, {"learning_rate": 1e-3},
                                             None)
                seconds = time.perf_counter() - start
                before, _ = evaluate_arm(initial, params, seeds_eval)
                after, _ = evaluate_arm(trained, params, seeds_eval)
                r0, r1 = before.return_stability.mean(), after.return_stability.mean()
                rh = hold.return_stability.mean()
                rows.append({"n_agents": n, "stability": kind, "train_seed": seed,
                             "iterations": iterations, "agent_steps": iterations * 128 * n,
                             "train_seconds": seconds, "initial": r0, "trained": r1,
                             "hold": rh, "gap_closed": (r1 - r0) / (rh - r0)
                             if rh != r0 else float("nan"),
                             "volatility_initial": before.volatility.mean(),
                             "volatility_trained": after.volatility.mean()})
    return pd.DataFrame(rows)


def learning_curve(claim: str, arm: str, budgets: tuple[int, ...] = (150, 300, 600),
                   train_seeds: int = 3, eval_seeds: int = 4, mark: str = "liquidation",
                   **overrides: Any) -> pd.DataFrame:
    """Does more training change a trained arm's result? The arm retrained from scratch
    at each budget of PPO iterations (the reproduction's protocol: its learning rate,
    annealed over the run), beside the claim's scripted arms under the same reward.

    Args:
        claim: a claim key of :data:`~mesa_econ.experiments.CLAIMS`.
        arm: the name of one of its PPO arms.
        budgets: PPO iterations, each >= 1 (each a fresh run, not a continuation).
        train_seeds: training seeds 0, 1, ... per budget (>= 1).
        eval_seeds: held-out evaluation seeds (>= 1), shared by every row.
        mark: the profit mark (``"liquidation"`` or ``"quote"``).
        **overrides: model keyword arguments on top of the arm's (e.g. ``n_agents``).

    Returns:
        One row per (budget, training seed) of the trained arm (``kind="trained"``) and
        one per scripted arm of the claim (``kind="scripted"``, ``iterations`` 0): the
        claim's metric and the return per agent of each reward term, means over the
        evaluation seeds, and the training time. The scripted arms run under the trained
        arm's reward configuration, so their ``return_total`` is what that reward pays
        them: the scale against which the trained arm's return is judged.

    Raises:
        ValueError: an unknown claim or arm, an arm that is not trained, or a bad count.
    """
    from mesa_econ._validation import check_int
    from mesa_econ.experiments.protocol import CLAIMS, PROFIT_MARKS, RunPlan, claim_params

    c = {c.key: c for c in CLAIMS}.get(claim)
    if c is None:
        raise ValueError(f"claim={claim!r} is invalid: expected one of "
                         f"{[c.key for c in CLAIMS]}")
    trained = [a for a in c.arms if a.trained]
    chosen = next((a for a in trained if a.name == arm), None)
    if chosen is None:
        raise ValueError(f"arm={arm!r} is invalid: expected a trained arm of {claim!r}, one "
                         f"of {[a.name for a in trained]}")
    if mark not in PROFIT_MARKS:
        raise ValueError(f"mark={mark!r} is invalid: expected one of {list(PROFIT_MARKS)}")
    if not budgets:
        raise ValueError("budgets=() is invalid: expected at least one budget")
    for b in budgets:
        check_int("budgets", b, 1)
    check_int("train_seeds", train_seeds, 1)
    check_int("eval_seeds", eval_seeds, 1)
    params = {**claim_params(c, chosen, mark), **overrides}
    seeds_eval = [EVAL_SEED_BASE + k for k in range(eval_seeds)]
    rows = []

    def row(frame: pd.DataFrame, **head: Any) -> dict[str, Any]:
        means = frame.drop(columns="seed").mean()
        return {**head, c.metric: float(means[c.metric]),
                **{k: float(v) for k, v in means.items() if k.startswith("return_")}}

    for a in c.arms:
        if not a.trained and a.policy != "initial":
            frame, _ = evaluate_arm(None, params, seeds_eval, scripted=a.policy)
            rows.append(row(frame, arm=a.name, kind="scripted", iterations=0,
                            train_seed=-1, train_seconds=0.0))
    for budget in budgets:
        for seed in range(train_seeds):
            start = time.perf_counter()
            _, policy, _ = _train(params, seed, int(budget), RunPlan().ppo, None)
            seconds = time.perf_counter() - start
            frame, _ = evaluate_arm(policy, params, seeds_eval)
            rows.append(row(frame, arm=chosen.name, kind="trained", iterations=int(budget),
                            train_seed=seed, train_seconds=seconds))
    return pd.DataFrame(rows)
