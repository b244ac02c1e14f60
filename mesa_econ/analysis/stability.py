"""Stability of the quoted price (§7.2): Lyapunov drift, decay, twin runs, analytic check.

:func:`run_stability` simulates a scenario with its agents ("agents on") and with them off
(policy ``hold``, κ = λ = 0: the linearised deviation of :mod:`.stability_linear`), on the
same seeds, and measures for V = (log P − log P*)²:

1. the drift E[ΔV | V] in quantile bins of V, for P* = f(S(t)) (the deviation from the
   curve) and, agents on, for a fixed P* = f(S*) with S* the initial supply; negative drift
   above a level v_c is the Foster-Lyapunov condition (:mod:`.stability_estimators`);
2. the decay rate of the mean V after a perturbation: ε·f(S*) added to the deviation X
   (and so to the quote) after step t0, or the scenario's shock in Z at t0;
3. the twin-run finite-time Lyapunov exponent: the same seed run twice, once with X
   perturbed by ε·f(S*) at t0. The market's noise comes only from ``model.rng`` and the policies
   draw from their own streams, so the twins see the same noise;
4. with agents off, the analytic mean-square condition (1 − θ·dt)² + σ1²·dt < 1, the
   stationary variance of X and the noise floor of V, beside the simulation.

The estimators and the linear process are pure; this module runs the model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.analysis.stability_estimators import (
    DecayFit,
    FosterLyapunov,
    TwinExponent,
    drift_table,
    fit_decay_rate,
    foster_lyapunov_level,
    lyapunov_v,
    twin_exponent,
)
from mesa_econ.analysis.stability_linear import (
    LinearCheck,
    LinearPrediction,
    check_linear,
    linear_prediction,
    linear_twin_exponent,
    mean_square_factor,
    mean_square_stable,
    simulate_linear_deviation,
)
from mesa_econ.config import check_choice, check_int, check_number
from mesa_econ.scenarios import scenario_params

__all__ = [
    "ArmResult",
    "DecayFit",
    "FosterLyapunov",
    "LinearCheck",
    "LinearPrediction",
    "StabilityResult",
    "TwinExponent",
    "check_linear",
    "drift_table",
    "fit_decay_rate",
    "foster_lyapunov_level",
    "linear_prediction",
    "linear_twin_exponent",
    "lyapunov_v",
    "mean_square_factor",
    "mean_square_stable",
    "perturb_deviation",
    "run_stability",
    "simulate_linear_deviation",
    "twin_exponent",
]

PERTURBATIONS = ("deviation", "shock")


@dataclass
class ArmResult:
    """Agents on or off: the V paths and what was measured on them."""

    name: str
    v_curve: dict[str, np.ndarray]
    """V with P* = f(S(t)), per run kind ('base', 'twin', 'twin_neg', and 'shock' when
    used), each of shape (seeds, T+1, M). The twins are perturbed by ±ε·P* at t0 (their
    record t0 is after the perturbation); before t0 they equal 'base' (same noise)."""
    v_fixed: dict[str, np.ndarray]
    """The same with P* = f(S*) fixed."""
    deviation: np.ndarray
    """X of the base runs, (seeds, T+1, M)."""
    drift_curve: pd.DataFrame
    drift_fixed: pd.DataFrame
    fl_curve: FosterLyapunov
    fl_fixed: FosterLyapunov
    floor: float
    """Mean V (P* = f(S(t))) of the base runs from t0 on: the noise floor. The decay fit
    subtracts the base runs' mean V step by step (same seeds: common random numbers)."""
    decay: DecayFit
    decay_start: int
    """Step of the peak of the perturbed mean V, where the fit starts."""
    twin: TwinExponent
    separation: np.ndarray
    """‖log P_twin − log P_base‖ over assets, (seeds, T+1−t0), from t0 on."""


@dataclass
class StabilityResult:
    """Everything :func:`run_stability` measured (``summary()`` gives it as plain data)."""

    scenario: str
    policy: str
    seeds: list[int]
    steps: int
    perturb_step: int
    perturbation: str
    epsilon: float
    """ε relative to P*: the deviation perturbation is ε·f(S*) in price units."""
    s_star: np.ndarray
    p_star: np.ndarray
    on: ArmResult
    off: ArmResult
    predictions: list[LinearPrediction]
    """Per asset, for the agents-off market."""
    measured_off: list[dict[str, float]] = field(default_factory=list)
    """Per asset, agents off: var_x, v_floor and the share of V inside the 95% band."""

    def drift_frame(self) -> pd.DataFrame:
        """All drift tables in one frame, with ``agents`` and ``reference`` columns."""
        frames = []
        for arm in (self.on, self.off):
            for ref, table in (("curve", arm.drift_curve), ("fixed", arm.drift_fixed)):
                frames.append(table.assign(agents=arm.name, reference=ref))
        return pd.concat(frames, ignore_index=True)[
            ["agents", "reference", *frames[0].columns[:-2]]]

    def summary(self) -> dict[str, Any]:
        """Plain data for ``summary.json``."""
        return {
            "scenario": self.scenario, "policy": self.policy, "seeds": self.seeds,
            "steps": self.steps, "perturb_step": self.perturb_step,
            "perturbation": self.perturbation, "epsilon_relative": self.epsilon,
            "s_star": self.s_star.tolist(), "p_star": self.p_star.tolist(),
            "agents_on": _arm_summary(self.on), "agents_off": _arm_summary(self.off),
            "analytic": [
                {**_plain(dataclasses.asdict(p)), **{f"measured_{k}": _num(v)
                                                      for k, v in m.items()}}
                for p, m in zip(self.predictions, self.measured_off, strict=True)],
        }


def perturb_deviation(model: Any, epsilon: np.ndarray) -> None:
    """Add ε_j to the deviation X_j of a model, and so to its quote P_j = f + X + η.

    Uses the model's state of record directly (``EconomyModel`` has no public setter);
    the state stays read-only and the quote stays at or above ``price_floor``.
    """
    state = model.state
    eps = np.broadcast_to(np.asarray(epsilon, dtype=float), state.deviation.shape)
    floor = model.config.market.price_floor
    new = dataclasses.replace(state, deviation=state.deviation + eps,
                              price=np.maximum(state.price + eps, floor))
    for name in ("deviation", "price"):
        getattr(new, name).setflags(write=False)
    model._state = new
    model._wealth_cache = None


def _simulate(params: dict[str, Any], seed: int, steps: int, t0: int,
              epsilon: np.ndarray | None) -> dict[str, np.ndarray]:
    from mesa_econ.model import EconomyModel

    model = EconomyModel(**params, rng=int(seed))
    m = model.n_assets
    out = {k: np.empty((steps + 1, m)) for k in ("price", "curve", "deviation")}
    for t in range(steps + 1):
        if t > 0:
            model.step()
        if t == t0 and epsilon is not None:
            perturb_deviation(model, epsilon)
        out["price"][t], out["curve"][t] = model.prices, model.curve_prices
        out["deviation"][t] = model.deviation
    return out


def run_stability(scenario: str, *, policy: str = "random", seeds: int = 5,
                  steps: int = 200, perturb_step: int | None = None, epsilon: float = 0.1,
                  perturbation: str | None = None, n_bins: int = 10, seed_base: int = 0,
                  overrides: dict[str, Any] | None = None,
                  progress: bool | Callable[[str], None] = False) -> StabilityResult:
    """Measure the §7.2 stability of a scenario with its agents on and off.

    Args:
        scenario: a §9 scenario name (:data:`mesa_econ.scenarios.SCENARIOS`).
        policy: the agents: a scripted kind ('random', 'informed', 'mean_reversion' ...)
            or ``checkpoint:PATH``.
        seeds: number of noise seeds (seed_base, seed_base + 1, ...), >= 1 (>= 2 for
            intervals over seeds).
        steps: steps per run (>= 20).
        perturb_step: t0 (default: the scenario's shock step with ``perturbation='shock'``,
            else min(50, steps // 4)); 1 <= t0 <= steps − 10.
        epsilon: the deviation perturbation relative to P* = f(S*), in (0, 0.5] (the
            twins move X by +ε·P* and −ε·P*).
        perturbation: 'deviation' or 'shock' (the scenario's shock in Z at t0, against the
            same seeds without it). Default: 'shock' when the scenario has one.
        n_bins: quantile bins of the drift tables.
        overrides: model keyword overrides of the scenario.
        progress: show a tqdm bar (True) or call ``progress(label)`` after each run.

    Runs per seed, agents on and off alike: the base run and two deviation twins (X
    moved by +ε·P* and by −ε·P* after step t0); agents on, also the shock twin. The
    scenario's own shock is off except in the shock twin. The mean of the two twins' V
    cancels the term 2·(log P − log P*)·δ that a steady offset of the price from the
    curve (e.g. λ's discount) gives a one-sided perturbation, leaving δ².
    """
    params = scenario_params(scenario, **(overrides or {}))
    seeds = check_int("seeds", seeds, low=1)
    steps = check_int("steps", steps, low=20)
    seed_base = check_int("seed_base", seed_base)
    check_number("epsilon", epsilon, 0.0, 0.5, low_open=True)
    if not isinstance(policy, str) or not policy:
        raise ValueError(f"policy={policy!r} is invalid: expected a policy kind or "
                         "'checkpoint:PATH'")
    has_shock = params.get("shock_step") is not None and params.get("shock_size", 0.0) != 0
    perturbation = perturbation or ("shock" if has_shock else "deviation")
    check_choice("perturbation", perturbation, PERTURBATIONS)
    if perturbation == "shock" and not has_shock:
        raise ValueError(f"perturbation='shock' is invalid for scenario={scenario!r}: it has "
                         "no shock (shock_step and a nonzero shock_size); use 'deviation'")
    if perturb_step is None:
        perturb_step = (int(params["shock_step"]) if perturbation == "shock"
                        else min(50, steps // 4))
    t0 = check_int("perturb_step", perturb_step, low=1, high=steps - 10)
    base = {**params, "policy": policy, "collect_every": 0, "shock_step": None}
    off = {**base, "policy": "hold", "kappa": 0.0, "lam": 0.0}
    from mesa_econ.model import EconomyModel

    probe = EconomyModel(**base, rng=seed_base)  # fails here on a bad policy or override
    s_star, p_star = probe.supply.copy(), probe.curve_prices.copy()
    eps = epsilon * p_star
    plans = {arm: [("base", p, None), ("twin", p, eps), ("twin_neg", p, -eps)]
             for arm, p in (("on", base), ("off", off))}
    if perturbation == "shock":
        plans["on"].append(("shock", {**base, "shock_step": t0,
                                      "shock_size": params["shock_size"]}, None))
    tick, close = _progress(progress, seeds * sum(len(p) for p in plans.values()))
    runs: dict[str, dict[str, list[dict[str, np.ndarray]]]] = {
        arm: {kind: [] for kind, _, _ in plan} for arm, plan in plans.items()}
    try:
        for k in range(seeds):
            for arm, plan in plans.items():
                for kind, p, e in plan:
                    runs[arm][kind].append(_simulate(p, seed_base + k, steps, t0, e))
                    tick(f"agents {arm}, {kind}, seed {seed_base + k}")
    finally:
        close()
    arms = {arm: _measure(f"agents {arm}", runs[arm], p_star, t0, n_bins)
            for arm in plans}
    predictions, measured = _analytic(probe, p_star, arms["off"], runs["off"]["base"], t0)
    return StabilityResult(scenario=scenario, policy=policy,
                           seeds=[seed_base + k for k in range(seeds)], steps=steps,
                           perturb_step=t0, perturbation=perturbation, epsilon=epsilon,
                           s_star=s_star, p_star=p_star, on=arms["on"], off=arms["off"],
                           predictions=predictions, measured_off=measured)


def _measure(name: str, runs: dict[str, list[dict[str, np.ndarray]]], p_star: np.ndarray,
             t0: int, n_bins: int) -> ArmResult:
    stack = {kind: {key: np.stack([r[key] for r in rs]) for key in rs[0]}
             for kind, rs in runs.items()}
    v_curve = {kind: lyapunov_v(s["price"], s["curve"]) for kind, s in stack.items()}
    v_fixed = {kind: lyapunov_v(s["price"], p_star) for kind, s in stack.items()}

    def paths(v: dict[str, np.ndarray]) -> list[np.ndarray]:
        # base runs whole, the deviation twins from their perturbation on (the jump at t0
        # is the experimenter's, not the dynamics'); the shock twin's injected steps are not
        # homogeneous dynamics either, so it stays out of the drift tables
        return [*_per_asset(v["base"]), *_per_asset(v["twin"][:, t0:]),
                *_per_asset(v["twin_neg"][:, t0:])]

    # a seed's runs share their noise: cluster the transitions by (seed, asset, step)
    seeds, steps, m = v_curve["base"].shape
    label = np.arange(seeds * m * steps).reshape(seeds, m, steps)[..., :-1]
    clusters = [*label.reshape(-1, steps - 1), *label[..., t0:].reshape(-1, steps - 1 - t0),
                *label[..., t0:].reshape(-1, steps - 1 - t0)]
    drift_curve = drift_table(paths(v_curve), n_bins, clusters=clusters)
    drift_fixed = drift_table(paths(v_fixed), n_bins, clusters=clusters)
    floor = float(v_curve["base"][:, t0:].mean())
    perturbed = (v_curve["shock"] if "shock" in v_curve
                 else 0.5 * (v_curve["twin"] + v_curve["twin_neg"]))
    decay, peak = _decay(perturbed[:, t0:], v_curve["base"][:, t0:])
    delta = np.linalg.norm(np.log(stack["twin"]["price"][:, t0:])
                           - np.log(stack["base"]["price"][:, t0:]), axis=2)
    return ArmResult(name=name, v_curve=v_curve, v_fixed=v_fixed,
                     deviation=stack["base"]["deviation"], drift_curve=drift_curve,
                     drift_fixed=drift_fixed, fl_curve=foster_lyapunov_level(drift_curve),
                     fl_fixed=foster_lyapunov_level(drift_fixed), floor=floor, decay=decay,
                     decay_start=t0 + peak, twin=twin_exponent(delta), separation=delta)


def _decay(perturbed: np.ndarray, base: np.ndarray) -> tuple[DecayFit, int]:
    """Fit the paired excess mean V (perturbed − base, same seeds) from its peak on."""
    diff = (perturbed - base).transpose(1, 0, 2).reshape(perturbed.shape[1], -1)
    n = diff.shape[1]
    se = diff.std(axis=1, ddof=1) / math.sqrt(n) if n > 1 else None
    excess = diff.mean(axis=1)
    peak = int(np.argmax(excess))
    base_mean = base.mean(axis=(0, 2))[peak:]
    return fit_decay_rate(base_mean + excess[peak:], base_mean,
                          None if se is None else se[peak:]), peak


def _per_asset(v: np.ndarray) -> list[np.ndarray]:
    return [v[i, :, j] for i in range(v.shape[0]) for j in range(v.shape[2])]


def _analytic(model: Any, p_star: np.ndarray, off: ArmResult,
              base_runs: list[dict[str, np.ndarray]], t0: int
              ) -> tuple[list[LinearPrediction], list[dict[str, float]]]:
    """The linear prediction per asset beside the agents-off base runs."""
    p, mc = model.params, model.config.market
    sigma_eta, factor_std = mc.per_asset("sigma_eta"), mc.per_asset("factor_std")
    predictions, measured = [], []
    x = np.stack([r["deviation"] for r in base_runs])
    for j in range(model.n_assets):
        pred = linear_prediction(float(p.theta[j]), p.dt, sigma0=float(p.sigma0[j]),
                                 sigma1=float(p.sigma1[j]), p_star=float(p_star[j]),
                                 sigma_eta=float(sigma_eta[j]), zeta=float(p.zeta[j]),
                                 factor_std=float(factor_std[j]))
        burn = _burn_in(pred.ms_factor, t0)
        v = off.v_curve["base"][:, burn:, j]
        measured.append({"burn_in": float(burn), "var_x": float(x[:, burn:, j].var()),
                         "v_floor": float(v.mean()),
                         "share_in_band": float(np.mean(v <= pred.v_band)),
                         "ms_factor": off.decay.factor,
                         "exponent": off.twin.mean})
        predictions.append(pred)
    return predictions, measured


def _burn_in(factor: float, t0: int) -> int:
    """Steps for the start-up transient of E[X²] (factor^t) to fall below e^-5."""
    if not 0.0 < factor < 1.0:
        return min(t0, 1) if factor == 0.0 else t0
    return int(min(t0, max(1, math.ceil(5.0 / -math.log(factor)))))


def _progress(progress: bool | Callable[[str], None], total: int
              ) -> tuple[Callable[[str], None], Callable[[], None]]:
    if callable(progress):
        return progress, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="stability", unit="run", disable=not progress)

    def tick(label: str) -> None:
        bar.set_postfix_str(label)
        bar.update()

    return tick, bar.close


def _trend(v: np.ndarray) -> float:
    """Mean V of the base runs over the last quarter of steps / over the second quarter:
    about 1 for a stationary V; well above 1 where V still grows (a transient)."""
    q = v.shape[1] // 4
    return float(v[:, 3 * q:].mean() / max(v[:, q:2 * q].mean(), 1e-300))


def _arm_summary(arm: ArmResult) -> dict[str, Any]:
    return {
        "v_trend": {"curve": _trend(arm.v_curve["base"]), "fixed": _trend(arm.v_fixed["base"])},
        "foster_lyapunov_curve": _plain(dataclasses.asdict(arm.fl_curve)),
        "foster_lyapunov_fixed": _plain(dataclasses.asdict(arm.fl_fixed)),
        "noise_floor_v": arm.floor,
        "decay": {**_plain(dataclasses.asdict(arm.decay)), "start_step": arm.decay_start},
        "twin_exponent": {"mean": arm.twin.mean, "ci_low": arm.twin.ci_low,
                          "ci_high": arm.twin.ci_high, "tail": arm.twin.tail,
                          "tail_ci_low": arm.twin.tail_ci_low,
                          "tail_ci_high": arm.twin.tail_ci_high, "verdict": arm.twin.verdict,
                          "e_fold_steps": arm.twin.e_fold_steps,
                          "resolution_hit": arm.twin.resolution_hit,
                          "per_seed": arm.twin.per_seed.tolist(),
                          "horizon": arm.twin.horizon.tolist()},
    }


def _num(x: Any) -> Any:
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else str(float(x))
    return x


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe values (inf/nan as strings, numpy scalars as Python numbers)."""
    return {k: (bool(v) if isinstance(v, bool | np.bool_) else _num(v)) for k, v in d.items()}
