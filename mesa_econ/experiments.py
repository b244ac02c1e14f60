"""The §9 reproduction: claims, arms, seeds, confidence intervals. Implements §9.

Each claim of the paper's §9 is tested by training and evaluating *arms* (trained PPO
profiles and scripted baselines) on one scenario, under both profit marks (§4.1: the
default liquidation share and the paper's literal quote). The protocol (docs/reproduction.md):

- one population seed per claim fixes the graph and the needs;
- each trained arm is trained once per training seed (the unit of replication), in
  episodes of H = 128 steps, each on a fresh noise seed;
- every arm is evaluated on the same held-out noise seeds (common random numbers: the
  market's noise does not depend on the policy), for one episode of H steps each;
- an arm's metric for a training seed is its mean over the evaluation seeds; intervals
  are 95% bootstrap intervals over training seeds (scipy.stats.bootstrap; paired where
  two arms are compared).

:func:`run_reproduction` runs everything and returns plain data; ``mesa_econ.cli.reproduce``
writes it out (report.md, results.json, CSVs, figures, checkpoints).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ import metrics
from mesa_econ.scenarios import scenario_params

__all__ = ["ARMS", "CLAIMS", "Arm", "Claim", "RunPlan", "evaluate_arm", "run_reproduction",
           "summarise_claim"]

PROFIT_MARKS = ("liquidation", "quote")
POPULATION_SEED = 20_261_206
"""Seed of every claim's population (graph and needs): fixed, stated, not tuned."""
EVAL_SEED_BASE = 1_000_000
"""Held-out evaluation noise seeds are EVAL_SEED_BASE + k; training draws its episode
seeds from the training seed's own generator, far from these."""
RECOVERY_WINDOW, RECOVERY_BAND, RECOVERY_HOLD = 20, 2.0, 5
"""Shock recovery: the pre-shock band is the mean ± 2 std of the 20 quotes before the
shock; recovered once the quote stays inside it for 5 steps."""


@dataclass(frozen=True)
class Arm:
    """One way of driving the agents: a scripted policy or a PPO profile trained with
    the given reward overrides."""

    name: str
    policy: str
    """'ppo' (trained), 'initial' (the PPO profile before training) or a scripted kind."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Model keyword overrides of the scenario (reward terms), used in training and
    evaluation alike."""

    @property
    def trained(self) -> bool:
        return self.policy in ("ppo", "initial")


@dataclass(frozen=True)
class Claim:
    """A §9 claim: the scenario, the arms, the metric and the paper's target."""

    key: str
    scenario: str
    paper: str
    """The paper's words."""
    metric: str
    """'volatility', 'utilisation' or 'recovery_time' (see :func:`evaluate_arm`)."""
    arms: tuple[Arm, ...]
    focus: str
    """The arm the claim is about."""
    baseline: str | None
    """The arm it is compared with (None: an absolute target)."""
    target: float
    """Relative reduction (volatility), level (utilisation) or steps (recovery)."""


_STAB_SHARED = Arm("PPO stability (shared)", "ppo", {"stability": "shared"})
_STAB_ATTR = Arm("PPO stability (attributed)", "ppo", {"stability": "attributed"})
_PROFIT = Arm("PPO profit only", "ppo", {"omega": 0.0})
_HOLD = Arm("hold (no trading)", "hold")
_RANDOM = Arm("random (clipped)", "random_clipped")

CLAIMS: tuple[Claim, ...] = (
    Claim("defi_volatility", "defi_token_market",
          "DeFi token market, 50 agents, exponential curve, PPO: 30% volatility reduction",
          "volatility",
          (_STAB_ATTR, _STAB_SHARED, _PROFIT, Arm("initial policy", "initial"),
           Arm("informed (scripted)", "informed"), _HOLD, _RANDOM),
          focus=_STAB_ATTR.name, baseline=_PROFIT.name, target=0.30),
    Claim("resource_utilisation", "resource_network",
          "Resource network, 100 agents, sigmoid pricing, cooperative rewards: 85% "
          "utilisation efficiency", "utilisation",
          (Arm("PPO cooperative", "ppo", {"rho": 0.2, "cooperative_scope": "neighbours"}),
           Arm("PPO profit", "ppo", {"rho": 0.0}), Arm("need-aware (scripted)", "need_aware"),
           _RANDOM, _HOLD),
          focus="PPO cooperative", baseline="PPO profit", target=0.85),
    Claim("shock_recovery", "shock_recovery",
          "Shock recovery: prices stabilise within 20 steps of a spike", "recovery_time",
          (Arm("PPO", "ppo"), Arm("informed (scripted)", "informed"), _RANDOM, _HOLD),
          focus="PPO", baseline=_HOLD.name, target=20.0),
)
ARMS = {claim.key: claim.arms for claim in CLAIMS}


@dataclass(frozen=True)
class RunPlan:
    """How much to run: ``quick`` (minutes, a smoke reproduction) or ``full``."""

    train_seeds: int = 5
    eval_seeds: int = 10
    iterations: dict[str, int] = field(default_factory=lambda: {
        "defi_token_market": 150, "resource_network": 150, "shock_recovery": 100})
    ppo: dict[str, Any] = field(default_factory=lambda: {"learning_rate": 1e-3})

    @classmethod
    def quick(cls, seeds: int | None = None) -> RunPlan:
        return cls(train_seeds=seeds or 2, eval_seeds=4, iterations={
            "defi_token_market": 60, "resource_network": 25, "shock_recovery": 40})

    @classmethod
    def full(cls, seeds: int | None = None) -> RunPlan:
        if seeds is not None and seeds < 5:
            raise ValueError(f"seeds={seeds} is invalid: the full run needs >= 5 training "
                             "seeds (use --quick for fewer)")
        return cls(train_seeds=seeds or 5)


def claim_params(claim: Claim, arm: Arm, mark: str) -> dict[str, Any]:
    """Model keyword arguments of an arm under a profit mark (population fixed)."""
    params = scenario_params(claim.scenario, **arm.overrides)
    params.update(profit_mark=mark, population_seed=POPULATION_SEED, collect_every=0)
    return params


def evaluate_arm(policy: Any, params: dict[str, Any], seeds: list[int],
                 scripted: str | None = None, deterministic: bool = False,
                 batched: bool = True) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run one H-step episode per held-out seed with a trained policy or a scripted kind.

    A trained policy samples its actions (the profile as trained) unless
    ``deterministic``, which acts with the policy means.

    Args:
        batched: step the seeds' markets together as one :class:`~mesa_econ.batched.
            MarketBatch` (one policy forward pass for all seeds per step). Each market's
            step is its seed's own, so a scripted arm gives the per-seed loop's results
            bit for bit; a trained arm's actions equal the per-seed loop's to float32
            rounding. False: the per-seed loop.

    Returns:
        One row per seed (return per agent of each reward term and in total, volatility,
        level variance, price and supply drift, utilisation at the end, recovery time and
        the peak deviation after a shock), and the per-step paths stacked over seeds:
        ``prices`` (S, H+1), ``curve_prices`` (S, H+1) (means over assets) and
        ``utilisation`` (S, H+1) where the scenario has capacities.
    """
    runs = (_episodes_batched if batched else _episodes_per_seed)(
        policy, params, seeds, scripted, deterministic)
    rows, paths = [], {"prices": [], "curve_prices": [], "utilisation": []}
    for seed, (model, terms, prices, curve, supply, util) in zip(seeds, runs, strict=True):
        p, c = np.array(prices), np.array(curve)
        row = {"seed": int(seed), **{f"return_{k}": float(v.mean()) for k, v in terms.items()},
               "return_income": float(model.income_paid) / model.n_agents,
               "volatility": float(np.mean(metrics.volatility(p))),
               "level_variance": float(np.mean(metrics.level_variance(p))),
               "price_drift": float(np.mean(metrics.drift(p))),
               "supply_drift": float(np.mean(metrics.drift(np.maximum(np.array(supply),
                                                                       1e-12)))),
               "utilisation": float(np.mean(util[-16:]))}
        row.update(_recovery(model, p, c))
        rows.append(row)
        paths["prices"].append(p.mean(axis=1)), paths["curve_prices"].append(c.mean(axis=1))
        paths["utilisation"].append(np.array(util))
    return pd.DataFrame(rows), {k: np.array(v) for k, v in paths.items()}


_TERMS = ("profit", "stability", "cooperative", "use_value", "total")


def _episodes_per_seed(policy: Any, params: dict[str, Any], seeds: list[int],
                       scripted: str | None, deterministic: bool) -> list[tuple]:
    """Each seed's episode alone: (model, summed reward terms, price, curve-price, supply
    and utilisation paths)."""
    import torch

    from mesa_econ.model import EconomyModel
    from mesa_econ.policies.actor_critic import act_only

    runs = []
    horizon = int(params.get("horizon", 128))
    for seed in seeds:
        model = EconomyModel(**{**params, "policy": scripted or "hold"}, rng=int(seed))
        terms = {k: np.zeros(model.n_agents) for k in _TERMS}
        prices, curve, supply, util = ([model.prices.copy()], [model.curve_prices.copy()],
                                       [model.supply.copy()], [_util(model)])
        for _ in range(horizon):
            if scripted is None:
                with torch.no_grad():
                    u = act_only(policy, torch.from_numpy(model.observations()),
                                 model.torch_generator, deterministic)
                model.submit_orders(model.trade_scale * np.clip(u.numpy(), -1.0, 1.0))
            model.step()
            for k in terms:
                terms[k] += getattr(model.last_breakdown, k)
            prices.append(model.prices.copy()), curve.append(model.curve_prices.copy())
            supply.append(model.supply.copy()), util.append(_util(model))
        runs.append((model, terms, prices, curve, supply, util))
    return runs


def _episodes_batched(policy: Any, params: dict[str, Any], seeds: list[int],
                      scripted: str | None, deterministic: bool) -> list[tuple]:
    """:func:`_episodes_per_seed` with the seeds' markets stepped as one MarketBatch."""
    import torch

    from mesa_econ.batched import MarketBatch, batched_actions

    batch = MarketBatch.from_seeds(seeds, **{**params, "policy": scripted or "hold"})
    models = batch.models
    runs = [(m, {k: np.zeros(m.n_agents) for k in _TERMS}, [m.prices.copy()],
             [m.curve_prices.copy()], [m.supply.copy()], [_util(m)]) for m in models]
    gens = [m.torch_generator for m in models]
    for _ in range(int(params.get("horizon", 128))):
        orders = None
        if scripted is None:  # one forward pass for every seed; u as the per-seed loop
            with torch.no_grad():  # rounds it (float32 clip and scale)
                u = batched_actions(policy, torch.from_numpy(batch.observations()), gens,
                                    deterministic)
            orders = batch.trade_scale * np.clip(u.numpy(), -1.0, 1.0)
        batch.step(orders)
        for model, terms, prices, curve, supply, util in runs:
            for k in terms:
                terms[k] += getattr(model.last_breakdown, k)
            prices.append(model.prices.copy()), curve.append(model.curve_prices.copy())
            supply.append(model.supply.copy()), util.append(_util(model))
    return runs


def _util(model: Any) -> float:
    if model.demand is None or model.capacity is None:
        return float("nan")
    return float(metrics.utilisation(model.holdings, model.demand, model.capacity))


def _recovery(model: Any, prices: np.ndarray, curve: np.ndarray) -> dict[str, float]:
    """Recovery time of the quote after the scenario's shock (NaN without one; the steps
    left in the episode when it never recovers, flagged by ``recovered``)."""
    step = model.config.market.shock_step
    if step is None or step < RECOVERY_WINDOW or step >= prices.shape[0] - 1:
        return {"recovery_time": float("nan"), "recovered": float("nan"),
                "peak_deviation": float("nan")}
    # the shock's Z is drawn for step `step` and moves the quote recorded at step + 1
    out = metrics.shock_recovery(prices[:, 0], curve[:, 0], step + 1, window=RECOVERY_WINDOW,
                                 width=RECOVERY_BAND, hold=RECOVERY_HOLD)
    censored = prices.shape[0] - 1 - step
    rec = out["recovery_time"]
    return {"recovery_time": float(censored if rec is None else rec),
            "recovered": float(rec is not None), "peak_deviation": float(out["peak_deviation"])}


def _train(params: dict[str, Any], seed: int, iterations: int, ppo: dict[str, Any],
           checkpoint: Path | None) -> tuple[Any, Any, pd.DataFrame]:
    """PPO on a fresh market of ``params``; returns (initial policy copy, trained policy,
    training log)."""
    import copy

    from mesa_econ.model import EconomyModel
    from mesa_econ.rl import PPO, PPOConfig

    model = EconomyModel(**{**params, "policy": "actor_critic"}, rng=int(seed))
    trainer = PPO(model, PPOConfig(seed=int(seed), **ppo))
    initial = copy.deepcopy(trainer.policy())
    log = trainer.train(iterations, progress=False)
    if checkpoint is not None:
        trainer.save(checkpoint)
    return initial, trainer.policy(), log


def run_reproduction(plan: RunPlan, out: Path | None = None, claims: tuple[Claim, ...] = CLAIMS,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train and evaluate every arm of every claim under both profit marks.

    Args:
        plan: seeds and budgets.
        out: where checkpoints go (``out/checkpoints/<claim>/<mark>/<arm>/seed<k>``);
            None: not saved.
        claims: the claims to run.
        progress: called with a short label after each unit of work (a progress bar).

    Returns:
        ``{"runs": DataFrame (one row per claim, mark, arm, training seed, eval seed),
        "training": DataFrame (training logs), "paths": {(claim, mark, arm): arrays},
        "seconds": float}``.
    """
    start = time.perf_counter()
    eval_seeds = [EVAL_SEED_BASE + k for k in range(plan.eval_seeds)]
    frames, logs, paths = [], [], {}
    tick = progress or (lambda _label: None)
    for claim in claims:
        for mark in PROFIT_MARKS:
            for arm in claim.arms:
                if arm.policy == "initial":
                    continue  # evaluated beside the PPO arm it starts from
                params = claim_params(claim, arm, mark)
                if not arm.trained:
                    frame, path = evaluate_arm(None, params, eval_seeds, scripted=arm.policy)
                    for s in range(plan.train_seeds):  # the same per training seed
                        frames.append(frame.assign(train_seed=s))
                    _tag(frames[-plan.train_seeds:], claim, mark, arm)
                    paths[(claim.key, mark, arm.name)] = path
                    tick(f"{claim.key}/{mark}/{arm.name}")
                    continue
                for s in range(plan.train_seeds):
                    ckpt = None if out is None else (out / "checkpoints" / claim.key / mark
                                                     / _slug(arm.name) / f"seed{s}")
                    initial, trained, log = _train(params, s, plan.iterations[claim.scenario],
                                                   plan.ppo, ckpt)
                    logs.append(log.assign(claim=claim.key, mark=mark, arm=arm.name,
                                           train_seed=s))
                    frame, path = evaluate_arm(trained, params, eval_seeds)
                    frames.append(frame.assign(train_seed=s))
                    _tag(frames[-1:], claim, mark, arm)
                    _stack(paths, (claim.key, mark, arm.name), path)
                    if arm.name == claim.focus and any(a.policy == "initial"
                                                       for a in claim.arms):
                        frame, path = evaluate_arm(initial, params, eval_seeds)
                        frames.append(frame.assign(train_seed=s))
                        _tag(frames[-1:], claim, mark, Arm("initial policy", "initial"))
                        _stack(paths, (claim.key, mark, "initial policy"), path)
                    tick(f"{claim.key}/{mark}/{arm.name}/seed{s}")
    runs = pd.concat(frames, ignore_index=True)
    training = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame()
    return {"runs": runs, "training": training, "paths": paths,
            "seconds": time.perf_counter() - start, "eval_seeds": eval_seeds}


def work_units(plan: RunPlan, claims: tuple[Claim, ...] = CLAIMS) -> int:
    """How many times :func:`run_reproduction` calls ``progress``."""
    per_mark = sum(plan.train_seeds if a.policy == "ppo" else 1
                   for c in claims for a in c.arms if a.policy != "initial")
    return per_mark * len(PROFIT_MARKS)


def _tag(frames: list[pd.DataFrame], claim: Claim, mark: str, arm: Arm) -> None:
    for i, frame in enumerate(frames):
        frame.insert(0, "arm", arm.name)
        frame.insert(0, "mark", mark)
        frame.insert(0, "claim", claim.key)
        frames[i] = frame


def _stack(paths: dict, key: tuple, path: dict[str, np.ndarray]) -> None:
    old = paths.get(key)
    paths[key] = path if old is None else {k: np.concatenate([old[k], v])
                                           for k, v in path.items()}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def arm_table(runs: pd.DataFrame, claim: Claim, mark: str, metric: str,
              seed: int = 0) -> pd.DataFrame:
    """Per arm: the metric's mean over training seeds (each a mean over evaluation seeds)
    with a 95% bootstrap interval over training seeds."""
    from mesa_econ.rl.evaluate import paired_difference

    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]
    rows = []
    for arm in [a.name for a in claim.arms]:
        per_seed = sub[sub.arm == arm].groupby("train_seed")[metric].mean()
        if per_seed.empty:
            continue
        values = per_seed.to_numpy(dtype=float)
        ci = paired_difference(values, np.zeros_like(values), rng=seed) \
            if np.all(np.isfinite(values)) else {"low": np.nan, "high": np.nan}
        rows.append({"arm": arm, "mean": float(values.mean()), "low": ci["low"],
                     "high": ci["high"], "n_train_seeds": len(values)})
    return pd.DataFrame(rows)


def summarise_claim(runs: pd.DataFrame, claim: Claim, mark: str,
                    seed: int = 0) -> dict[str, Any]:
    """The claim's measured number with its 95% interval and whether it holds.

    - volatility: relative reduction 1 − σ_focus / σ_baseline per training seed (paired);
      holds if its mean >= target.
    - utilisation: the focus arm's level; holds if its mean >= target.
    - recovery_time: the focus arm's steps to recover; holds if its mean <= target.
    """
    from mesa_econ.rl.evaluate import paired_difference

    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]

    def per_seed(arm: str) -> np.ndarray:
        return sub[sub.arm == arm].groupby("train_seed")[claim.metric].mean().to_numpy(float)

    focus = per_seed(claim.focus)
    base = per_seed(claim.baseline) if claim.baseline else None
    if claim.metric == "volatility":
        measured = 1.0 - focus / base
        holds = lambda m: m >= claim.target  # noqa: E731
    elif claim.metric == "utilisation":
        measured = focus
        holds = lambda m: m >= claim.target  # noqa: E731
    else:
        measured = focus
        holds = lambda m: m <= claim.target  # noqa: E731
    ci = paired_difference(measured, np.zeros_like(measured), rng=seed)
    out = {"claim": claim.key, "mark": mark, "metric": claim.metric, "target": claim.target,
           "measured": float(measured.mean()), "low": ci["low"], "high": ci["high"],
           "n_train_seeds": int(measured.size), "holds": bool(holds(measured.mean()))}
    if base is not None:
        diff = paired_difference(focus, base, rng=seed)
        out["vs_baseline"] = {"baseline": claim.baseline, "mean": diff["mean"],
                              "low": diff["low"], "high": diff["high"]}
    return out


def reward_shares(runs: pd.DataFrame, claim: Claim, mark: str) -> pd.DataFrame:
    """Each reward term's share of the total absolute reward, per arm (what the reward
    pays for): mean over seeds of the return of each term, and |term| / Σ|terms|. The
    profit term is split into the income every agent receives alike (``return_income``)
    and the rest (``return_trading``: marks, yield, fees), whose share is reported."""
    sub = runs[(runs.claim == claim.key) & (runs.mark == mark)]
    sub = sub.assign(return_trading=sub.return_profit - sub.return_income)
    terms = ["return_trading", "return_stability", "return_cooperative", "return_use_value"]
    table = sub.groupby("arm", sort=False)[[*terms, "return_income", "return_profit",
                                             "return_total", "price_drift",
                                             "supply_drift"]].mean()
    weight = table[terms].abs().sum(axis=1).replace(0.0, np.nan)
    for t in terms:
        table[t.replace("return_", "share_")] = table[t].abs() / weight
    return table.reset_index()


def config_hash(plan: RunPlan, claims: tuple[Claim, ...] = CLAIMS) -> str:
    """A short hash of everything that defines the runs (plan, claims, scenario params)."""
    import hashlib
    import json

    blob = {"plan": dataclasses.asdict(plan),
            "claims": [dataclasses.asdict(c) for c in claims],
            "scenarios": {c.scenario: scenario_params(c.scenario) for c in claims},
            "population_seed": POPULATION_SEED, "eval_seed_base": EVAL_SEED_BASE}
    text = json.dumps(blob, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pump_check(scenario: str, seeds: list[int], steps: int = 128,
               **overrides: Any) -> pd.DataFrame:
    """What the unilateral pump earns (issue 9 item 2), per seed.

    Agent 0 buys ``trade_scale`` every step while every other agent holds; the reference
    is the same seed with agent 0 holding too (common random numbers). Returns one row
    per seed: ``gain`` = its total-reward return minus the holder's, ``extra_yield`` = the
    yield paid on its extra tokens, Σ_t y·Z_t·(H_pump − H_hold), and ``net`` = gain −
    extra_yield (≤ 0: the pump does not pay beyond the yield its tokens earn).
    """
    from mesa_econ.model import EconomyModel

    rows = []
    for seed in seeds:
        params = {**scenario_params(scenario, **overrides), "policy": "hold",
                  "collect_every": 0}
        pump, hold = EconomyModel(**params, rng=seed), EconomyModel(**params, rng=seed)
        y = pump.params.yield_rate if pump.params.yield_rate is not None else 0.0
        gain = extra = 0.0
        for _ in range(steps):
            orders = np.zeros((pump.n_agents, pump.n_assets))
            orders[0] = pump.trade_scale
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
