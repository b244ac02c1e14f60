"""The summary of a §7.1 tuning study: the best Φ (or the Pareto front) and the baseline,
each with 95% bootstrap intervals over seeds, on the tuning seeds and on held-out seeds.

Why both: the best of many candidates on the tuning seeds is biased low (the selection
picks candidates whose noise happened to be kind); its value on held-out seeds is not.
The improvement over the scenario's own curve is a paired difference on the held-out
seeds (both curves see the same noise), so its interval is narrow where the curves'
outcomes move together.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.analysis.tuning_objectives import (
    Constraint,
    Objective,
    evaluate_curve,
    per_seed_values,
)
from mesa_econ.analysis.tuning_space import SearchSpace

__all__ = ["at_bound", "interval", "summarise"]


def interval(values: Sequence[float], baseline: Sequence[float] | None = None) -> dict[str,
                                                                                      Any]:
    """Mean of ``values`` (minus ``baseline``, paired by seed) with its 95% bootstrap
    interval over seeds (:func:`mesa_econ.rl.evaluate.paired_difference`)."""
    from mesa_econ.rl.evaluate import paired_difference

    a = np.asarray(values, dtype=float)
    b = np.zeros_like(a) if baseline is None else np.asarray(baseline, dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return {"mean": float(np.mean(a - b)), "low": math.nan, "high": math.nan,
                "n": int(a.size)}
    out = paired_difference(a, b, rng=0)
    return {k: out[k] for k in ("mean", "low", "high", "n")}


def _evaluate(params: Mapping[str, Any], kind: str, curve_params: Mapping[str, Any],
              seeds: Sequence[int], objectives: Sequence[Objective], steps: int | None,
              slippage_trade: float | None) -> dict[str, list]:
    frame = evaluate_curve(params, kind, curve_params, seeds, steps=steps,
                           slippage_trade=slippage_trade)
    return per_seed_values(frame, objectives)


def at_bound(space: SearchSpace, params: Mapping[str, Any], tol: float = 0.01) -> list[str]:
    """Searched parameters within ``tol`` of the range's width (in log where searched in
    log) of a bound: an optimum there says the objective improves beyond the range."""
    out = []
    for d in space.dims:
        if d.name not in params:
            continue
        lo, hi, x = d.low, d.high, float(params[d.name])
        if d.log:
            lo, hi, x = math.log(lo), math.log(hi), math.log(x)
        if min(x - lo, hi - x) <= tol * (hi - lo):
            out.append(d.name)
    return out


def _candidate(trial: Any, objectives: Sequence[Objective], holdout: dict | None,
               space: SearchSpace) -> dict[str, Any]:
    per_seed = trial.user_attrs["per_seed"]
    return {"trial": trial.number, "curve": trial.user_attrs["curve"],
            "params": dict(trial.params), "at_bound": at_bound(space, trial.params),
            "curve_params": trial.user_attrs["curve_params"],
            "values": {o.name: float(v) for o, v in zip(objectives, trial.values,
                                                         strict=True)},
            "tuning": {k: interval(v) for k, v in per_seed.items()},
            "holdout": None if holdout is None else {k: interval(v)
                                                     for k, v in holdout.items()},
            "constraints": dict(trial.constraints),
            "feasible": all(v <= 0 for v in trial.constraints.values())}


def _best_trials(study: Any, objectives: Sequence[Objective]) -> list[Any]:
    if len(objectives) == 1:
        try:
            return [study.best_trial]
        except ValueError:  # no complete, or no feasible, trial
            return []
    sign = 1.0 if objectives[0].direction == "minimize" else -1.0
    front = sorted(study.best_trials, key=lambda t: sign * t.values[0])
    if len(front) > 10:  # MAX_FRONT, spread evenly along the first objective
        front = [front[i] for i in np.linspace(0, len(front) - 1, 10).round().astype(int)]
    return front


def summarise(study: Any, table: pd.DataFrame, space: SearchSpace,
              objectives: Sequence[Objective], constraints: Sequence[Constraint],
              params: Mapping[str, Any], baseline: tuple[str, Mapping[str, Any]],
              tuning_seeds: Sequence[int], holdout_seeds: Sequence[int],
              steps: int | None, slippage_trade: float | None) -> dict[str, Any]:
    """The study's summary (JSON-ready): settings, trial counts, the best candidate(s),
    the baseline, and (one objective) the held-out improvement over the baseline."""
    run = {"objectives": objectives, "steps": steps, "slippage_trade": slippage_trade}
    best = []
    for trial in _best_trials(study, objectives):
        held = (_evaluate(params, trial.user_attrs["curve"], trial.user_attrs["curve_params"],
                          holdout_seeds, **run) if holdout_seeds else None)
        best.append((_candidate(trial, objectives, held, space), held))
    kind0, curve0 = baseline
    base_tune = _evaluate(params, kind0, curve0, tuning_seeds, **run)
    base_held = (_evaluate(params, kind0, curve0, holdout_seeds, **run)
                 if holdout_seeds else None)
    summary: dict[str, Any] = {
        "model": {k: v for k, v in params.items() if k not in ("curve", "curve_params")},
        "objectives": [{"name": o.name, "direction": o.direction} for o in objectives],
        "constraints": [c.label for c in constraints],
        "tuning_seeds": list(tuning_seeds), "holdout_seeds": list(holdout_seeds),
        "steps": steps or int(params.get("horizon", 128)),
        "population_seed": params.get("population_seed"),
        "anchor": space.anchor, "kinds": list(space.kinds), "fixed": space.fixed,
        "initial_supply": space.initial_supply.tolist(),
        "initial_price": space.initial_price.tolist(),
        "search_space": [{"name": d.name, "low": d.low, "high": d.high, "log": d.log}
                         for d in space.dims],
        "trials": {str(k): int(v) for k, v in table["state"].value_counts().items()},
        "best": [c for c, _ in best],
        "baseline": {"curve": kind0, "curve_params": dict(curve0),
                     "tuning": {k: interval(v) for k, v in base_tune.items()},
                     "holdout": None if base_held is None else {
                         k: interval(v) for k, v in base_held.items()}},
    }
    if len(objectives) == 1 and best and base_held is not None:
        held = best[0][1]
        summary["improvement"] = {k: interval(held[k], base_held[k]) for k in held}
    return summary
