"""Bonding-curve tuning: minimise volatility over the curve parameters Φ. Implements §7.1.

§7.1 chooses Φ to minimise price volatility, min_Φ E[(1/T) Σ_t (P_j(t) − P̄_j)²]. The
study reports both definitions, the std of log returns (the headline, scale-free) and
§7.1's level variance, and can add objectives (reserve coverage, slippage of a reference
trade, Gini; several give a Pareto front) and constraints on any metric
(:mod:`.tuning_objectives`). The search space is in :mod:`.tuning_space`.

Protocol (docs/analysis.md):

- every candidate runs one episode on each of the same ``seeds`` noise seeds
  (``TUNING_SEED_BASE + k``) with the same population (``POPULATION_SEED``): common random
  numbers, so candidates differ only by their curves;
- the study is an Optuna study: TPE by default; CMA-ES for a single objective without
  constraints over one curve kind's continuous parameters (>= 2); NSGA-II or TPE with
  ``trial.set_constraint`` for constraints and several objectives;
- the best Φ (or each Pareto-optimal Φ, up to ``MAX_FRONT``) and the scenario's own curve
  (the baseline) are re-evaluated on held-out seeds (the reproduction's evaluation seeds
  ``EVAL_SEED_BASE + k``): the tuning seeds' best value is biased low by the selection,
  the held-out one is not. Intervals are 95% bootstrap intervals over seeds.
- with a storage URL (``sqlite:///DIR/study.db``) an interrupted study resumes: ``trials``
  is the number of complete trials wanted, and a new call runs the ones missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.analysis.tuning_objectives import (
    METRICS,
    Constraint,
    Objective,
    evaluate_curve,
    parse_constraint,
    per_seed_values,
    resolve_objectives,
)
from mesa_econ.analysis.tuning_space import SearchSpace, build_space, initial_point
from mesa_econ.experiments import EVAL_SEED_BASE, POPULATION_SEED
from mesa_econ.scenarios import scenario_params

__all__ = ["MAX_FRONT", "SAMPLERS", "TUNING_SEED_BASE", "CandidateFailed", "TuningResult",
           "make_sampler", "trial_table", "tune"]

TUNING_SEED_BASE = 2_000_000
"""Noise seeds of the tuning episodes are TUNING_SEED_BASE + k."""
SAMPLERS = ("tpe", "nsga2", "cmaes", "random")
MAX_FRONT = 10
"""Pareto-optimal candidates re-evaluated on the held-out seeds (lowest first objective)."""


class CandidateFailed(RuntimeError):
    """A candidate curve could not be simulated (invalid, or its prices diverged); the
    trial is recorded as failed with the reason in its ``error`` attribute."""


@dataclass
class TuningResult:
    """What :func:`tune` returns."""

    study: Any
    """The Optuna study (all trials, including those of earlier runs)."""
    table: pd.DataFrame
    """One row per trial (:func:`trial_table`)."""
    summary: dict[str, Any]
    """Settings, the best Φ (or the Pareto front) and the baseline, with intervals."""
    space: SearchSpace
    objectives: tuple[Objective, ...]


def make_sampler(name: str, seed: int, objectives: Sequence[Objective],
                 constraints: Sequence[Constraint], space: SearchSpace, trials: int) -> Any:
    """The Optuna sampler ``name`` (see :data:`SAMPLERS`), seeded.

    Raises:
        ValueError: unknown name, or CMA-ES where it does not apply (several objectives,
            constraints, several curve kinds, fewer than two parameters, or the ``cmaes``
            package missing).
    """
    import optuna

    if name == "cmaes":
        _check_cmaes(objectives, constraints, space)
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=max(4, min(50, trials // 4)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler={name!r} is invalid: expected one of {list(SAMPLERS)}")


def _check_cmaes(objectives: Sequence[Objective], constraints: Sequence[Constraint],
                 space: SearchSpace) -> None:
    import importlib.util

    why = None
    if len(objectives) > 1:
        why = (f"CMA-ES optimises one objective, got {len(objectives)} "
               f"({[o.name for o in objectives]}); use 'tpe' or 'nsga2'")
    elif constraints:
        why = (f"CMA-ES supports no constraints, got {[c.label for c in constraints]}; "
               "use 'tpe' or 'nsga2'")
    elif len(space.kinds) > 1:
        why = (f"CMA-ES searches continuous parameters of one curve kind, got kinds "
               f"{list(space.kinds)} (a categorical parameter); run one study per kind")
    elif len(space.dims) < 2:
        why = (f"CMA-ES needs >= 2 continuous parameters, the space has {len(space.dims)} "
               f"({[d.name for d in space.dims]}); use 'tpe'")
    elif importlib.util.find_spec("cmaes") is None:
        why = "CMA-ES needs the cmaes package (pip install cmaes)"
    if why:
        raise ValueError(f"sampler='cmaes' is invalid: {why}")


def _positive_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r} is invalid: expected an integer >= {low}")
    return int(value)


def _model_params(scenario: str, policy: str, overrides: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    import inspect

    from mesa_econ.model import EconomyModel

    overrides = dict(overrides or {})
    allowed = set(inspect.signature(EconomyModel.__init__).parameters) - {
        "self", "rng", "seed", "policy", "curve", "curve_params", "population_seed"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"overrides {unknown} is invalid: expected EconomyModel keywords "
                         "other than rng, seed, policy, population_seed (curve and "
                         f"curve_params are what is tuned): {sorted(allowed)}")
    if not isinstance(policy, str):
        raise ValueError(f"policy={policy!r} is invalid: expected a scripted kind or "
                         "'checkpoint:PATH'")
    params = scenario_params(scenario, **overrides)
    params.update(policy=policy, population_seed=POPULATION_SEED, collect_every=0)
    return params


def _check_runs(params: dict[str, Any], kind: str, curve_params: Mapping[str, Any]) -> None:
    """Build one model of the scenario's curve: a bad policy or checkpoint fails here,
    before any trial."""
    from mesa_econ.model import EconomyModel

    EconomyModel(**{**params, "curve": kind, "curve_params": dict(curve_params)}, rng=0)


def _spec(scenario: str, params: Mapping[str, Any], space: SearchSpace,
          objectives: Sequence[Objective], constraints: Sequence[Constraint],
          seeds: Sequence[int], steps: int | None, slippage_trade: float | None) -> dict:
    """What defines the study's numbers; a resumed study must match it."""
    spec = {"scenario": scenario, "model": {k: v for k, v in params.items()
                                            if k not in ("curve", "curve_params")},
            "kinds": list(space.kinds), "anchor": space.anchor, "fixed": space.fixed,
            "space": [[d.name, d.low, d.high, d.log] for d in space.dims],
            "objectives": [[o.name, o.direction] for o in objectives],
            "constraints": [c.label for c in constraints], "seeds": list(seeds),
            "steps": steps, "slippage_trade": slippage_trade}
    return json.loads(json.dumps(spec, default=str))


def _open_study(storage: str | None, study_name: str, objectives: Sequence[Objective],
                spec: dict) -> Any:
    import optuna

    study = optuna.create_study(storage=storage, study_name=study_name, load_if_exists=True,
                                directions=[o.direction for o in objectives])
    old = study.user_attrs.get("mesa_econ_spec")
    if old is None:
        study.set_user_attr("mesa_econ_spec", spec)
    elif old != spec:
        diff = sorted(k for k in set(old) | set(spec) if old.get(k) != spec.get(k))
        raise ValueError(f"study_name={study_name!r} is invalid: the storage holds a study "
                         f"of that name with other settings ({', '.join(diff)}); use "
                         "another study name or storage")
    return study


def _trial_objective(space: SearchSpace, params: dict[str, Any],
                     objectives: Sequence[Objective], constraints: Sequence[Constraint],
                     seeds: Sequence[int], steps: int | None,
                     slippage_trade: float | None) -> Callable[[Any], tuple[float, ...]]:
    def objective(trial: Any) -> tuple[float, ...]:
        kind, curve_params = space.suggest(trial)
        trial.set_user_attr("curve", kind)
        trial.set_user_attr("curve_params", curve_params)
        try:
            frame = evaluate_curve(params, kind, curve_params, seeds, steps=steps,
                                   slippage_trade=slippage_trade)
        except (ValueError, FloatingPointError, OverflowError) as exc:
            trial.set_user_attr("error", str(exc)[:500])
            raise CandidateFailed(str(exc)) from exc
        per_seed = per_seed_values(frame, objectives)
        trial.set_user_attr("per_seed", per_seed)  # few writes: each is a transaction
        trial.set_user_attr("metrics", {m: float(frame[m].mean()) for m in METRICS})
        for c in constraints:
            trial.set_constraint(c.label, c.violation(float(frame[c.metric].mean())))
        return tuple(float(np.mean(per_seed[o.name])) for o in objectives)

    return objective


def tune(scenario: str, trials: int, *,
         objectives: str | Objective | Sequence[str | Objective] = ("volatility",),
         constraints: Sequence[str | Constraint] = (), curve: str | Sequence[str] | None = None,
         sampler: str = "tpe", seeds: int = 8, holdout_seeds: int | None = None,
         steps: int | None = None, policy: str = "random_clipped", storage: str | None = None,
         study_name: str | None = None, sampler_seed: int = 0, anchor: bool = True,
         per_asset: bool = False, bounds: Mapping[str, Sequence[float]] | None = None,
         fixed: Mapping[str, float] | None = None, overrides: Mapping[str, Any] | None = None,
         slippage_trade: float | None = None, enqueue: Sequence[Mapping[str, Any]] = (),
         progress: bool | Callable[[Any, Any], None] = False) -> TuningResult:
    """Tune a scenario's bonding curve(s) over Φ. Implements §7.1.

    Args:
        scenario: a §9 scenario name (:data:`mesa_econ.scenarios.SCENARIOS`).
        trials: complete trials wanted in the study (>= 1); a resumed study runs the
            missing ones.
        objectives: names (volatility, level_variance, reserve_coverage, slippage, gini)
            or :class:`~mesa_econ.analysis.tuning_objectives.Objective` instances.
        constraints: ``"metric<=value"`` / ``"metric>=value"`` strings or Constraints.
        curve: curve kind(s) searched (default: the scenario's).
        sampler: 'tpe' (default), 'nsga2', 'cmaes' or 'random'.
        seeds: tuning noise seeds per candidate (>= 2: the intervals need two).
        holdout_seeds: held-out seeds for the best Φ and the baseline (default: seeds;
            0 skips the re-evaluation).
        steps: episode length (default: the scenario's horizon H).
        policy: the agents: a scripted kind ('random_clipped', 'informed', ...) or
            'checkpoint:PATH' (a trained profile of this scenario's population).
        storage: an Optuna storage URL (``sqlite:///DIR/study.db``); None: in memory.
        study_name: default ``tune-<scenario>``.
        sampler_seed: the sampler's seed; a resumed study adds its number of trials, so
            it does not replay the first run's draws.
        anchor, per_asset, bounds, fixed: the search space (:func:`.build_space`).
        overrides: EconomyModel keywords applied to the scenario (e.g. ``n_agents``).
        slippage_trade: Q of the slippage metric (default N·trade_scale).
        enqueue: parameter dicts evaluated first (a new study starts with the scenario's
            own curve where it lies in the space).
        progress: True for a tqdm bar, or a callback ``(study, trial)``.

    Returns:
        A :class:`TuningResult`.

    Raises:
        ValueError: a bad argument, naming it and its valid range.
    """
    trials = _positive_int("trials", trials, 1)
    seeds = _positive_int("seeds", seeds, 2)
    holdout = _positive_int("holdout_seeds", seeds if holdout_seeds is None else holdout_seeds,
                            0)
    if steps is not None:
        steps = _positive_int("steps", steps, 2)
    if slippage_trade is not None and not (math.isfinite(slippage_trade) and slippage_trade > 0):
        raise ValueError(f"slippage_trade={slippage_trade!r} is invalid: expected a number > 0")
    objs = resolve_objectives(objectives)
    cons = tuple(parse_constraint(c) for c in constraints)
    params = _model_params(scenario, policy, overrides)
    kind0, curve0, s0, p0 = initial_point(params)
    space = build_space(curve or kind0, s0, p0, anchor=anchor, per_asset=per_asset,
                        bounds=bounds, fixed=fixed)
    make_sampler(sampler, sampler_seed, objs, cons, space, trials)  # reject before any work
    _check_runs(params, kind0, curve0)
    tuning_seeds = [TUNING_SEED_BASE + k for k in range(seeds)]
    spec = _spec(scenario, params, space, objs, cons, tuning_seeds, steps, slippage_trade)
    study = _open_study(storage, study_name or f"tune-{scenario}", objs, spec)
    done = study.get_trials(deepcopy=False)
    study.sampler = make_sampler(sampler, sampler_seed + len(done), objs, cons, space, trials)
    if not done:
        base = space.baseline(kind0, curve0)
        for point in ([base] if base is not None else []) + [dict(p) for p in enqueue]:
            study.enqueue_trial(point)
    objective = _trial_objective(space, params, objs, cons, tuning_seeds, steps,
                                 slippage_trade)
    _optimize(study, objective, trials, progress)
    from mesa_econ.analysis.tuning_report import summarise

    table = trial_table(study, objs, cons)
    summary = summarise(study, table, space, objs, cons, params, (kind0, curve0),
                        tuning_seeds, [EVAL_SEED_BASE + k for k in range(holdout)],
                        steps, slippage_trade)
    summary.update(scenario=scenario, policy=policy, sampler=sampler,
                   sampler_seed=sampler_seed, storage=storage, study_name=study.study_name)
    return TuningResult(study, table, summary, space, objs)


def _optimize(study: Any, objective: Callable, trials: int,
              progress: bool | Callable[[Any, Any], None]) -> None:
    from optuna.trial import TrialState

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    remaining = max(trials - complete, 0)
    if remaining == 0:
        return
    callbacks, bar = [], None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=remaining, desc=f"tune {study.study_name}", unit="trial")
        callbacks.append(lambda s, t: _tick(bar, s, t))
    elif callable(progress):
        callbacks.append(progress)
    try:
        study.optimize(objective, n_trials=remaining, catch=(CandidateFailed,),
                       callbacks=callbacks)
    finally:
        if bar is not None:
            bar.close()


def _tick(bar: Any, study: Any, trial: Any) -> None:
    if len(study.directions) == 1:
        try:
            bar.set_postfix_str(f"best {study.best_value:.4g}")
        except ValueError:  # no complete (feasible) trial yet
            pass
    bar.update()


def trial_table(study: Any, objectives: Sequence[Objective],
                constraints: Sequence[Constraint] = ()) -> pd.DataFrame:
    """One row per trial: number, state, objective values (``value_<name>``), searched
    parameters (``param_<name>``), the native curve parameters (``curve_<name>``), the
    metric means, constraint values, feasibility, duration and any error."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        values = t.values if t.values is not None else [math.nan] * len(objectives)
        row: dict[str, Any] = {"number": t.number, "state": t.state.name,
                               "curve": t.user_attrs.get("curve")}
        row.update({f"value_{o.name}": float(v) for o, v in zip(objectives, values,
                                                                 strict=True)})
        row.update({f"param_{k}": v for k, v in t.params.items()})
        for k, v in (t.user_attrs.get("curve_params") or {}).items():
            row[f"curve_{k}"] = json.dumps(v) if isinstance(v, list) else v
        means = t.user_attrs.get("metrics", {})
        row.update({m: means.get(m, math.nan) for m in METRICS})
        cons = t.constraints
        row.update({f"constraint_{c.label}": cons.get(c.label, math.nan) for c in constraints})
        row["feasible"] = bool(t.state.name == "COMPLETE"
                               and all(v <= 0 for v in cons.values()))
        row["duration_s"] = (t.duration.total_seconds() if t.duration is not None
                             else math.nan)
        row["error"] = t.user_attrs.get("error", "")
        rows.append(row)
    return pd.DataFrame(rows)
