"""Parameter sweeps of :class:`~mesa_econ.model.EconomyModel`, on one machine or on Ray.

:func:`run_sweep` runs the full factorial of the list-valued parameters × seeds and returns
one tidy :class:`pandas.DataFrame`: a row per run and step (per run, step and agent with
``collect_agents=True``) with the swept parameters as columns beside ``run_id``,
``replicate`` and ``seed``. Both backends call the same module-level function
``run_task`` (:mod:`mesa_econ._sweep_batch`) on the same tasks and assemble the rows in
``run_id`` order, so ``backend="local"`` and ``backend="ray"`` give identical frames.

Seeds (see docs/sweeps.md): with ``seeds=R`` the run with value indices ``(i_1, ..., i_k)``
of the swept parameters (taken in *alphabetical* order of their names) and replicate ``r``
gets the child ``SeedSequence(base_seed).spawn(...)`` with spawn key ``(i_1, ..., i_k, r)``,
i.e. ``root.spawn(n_1)[i_1].spawn(n_2)[i_2] ... .spawn(R)[r]``, turned into a 63-bit int.
A child depends only on its key, so appending a value to a parameter's list or adding
replicates keeps every existing run's seed; inserting or reordering values shifts the
indices after them, and adding a new swept parameter changes every seed.

Seed batches (see docs/sweeps.md): one combination's seeds can be stepped together
as one :class:`~mesa_econ.batched.MarketBatch` (:mod:`mesa_econ._sweep_batch`), one policy
forward pass per step for all of them; a task of the process pool or of Ray is then a
whole seed group. ``batch_seeds`` decides: ``None`` (checkpoint policies only: one set
of weights for every seed, ~1.4x; untrained ``actor_critic`` seeds gain ~1.1x), ``True``
(every combination), ``False`` (each run alone) or ``k`` (at most k seeds per batch).
Scripted policies give the same frame either way, bit for bit; learned policies give
frames equal to the runs alone to float32 rounding. The grouping depends only on the
arguments, never on the backend or ``processes``, so every backend gives the same frame.

Failures: a run that raises is not retried; it is left out of the frame and recorded in
``frame.attrs["failures"]`` (a list of dicts: ``run_id``, ``replicate``, ``seed``, the
swept parameters, ``error``, ``traceback``), with a ``RuntimeWarning``. If every run fails,
``RuntimeError`` is raised with the first failure.

The ``mesa-econ sweep`` command (:mod:`mesa_econ.cli.sweep`) writes the frame as Parquet
and CSV, per-run means and a summary plot. This module holds no command-line code.
"""

from __future__ import annotations

import inspect
import itertools
import multiprocessing
import os
import traceback
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BACKENDS", "batch_parameters", "plan_sweep", "run_seed", "run_sweep"]

BACKENDS = ("local", "ray")
"""Where runs execute: this machine (``processes`` worker processes) or a Ray cluster."""
RESERVED = ("rng", "seed", "collect_agents")
"""Model keywords that run_sweep sets itself (use ``seeds=``/``collect_agents=`` instead)."""
ID_COLUMNS = ("run_id", "replicate", "seed")
RAY_HINT = "backend='ray' needs Ray: pip install 'mesa_econ[distributed]'"


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: everything a worker needs, picklable."""

    run_id: int
    replicate: int
    seed: int
    swept: dict[str, Any]
    kwargs: dict[str, Any]
    steps: int
    collect_agents: bool


# ---------------------------------------------------------------------------- seeds + plan
def run_seed(base_seed: int, key: Sequence[int]) -> int:
    """The model seed of the run with spawn key ``key``: a 63-bit int.

    The first 64-bit word of the child ``SeedSequence(base_seed).spawn(n_1)[key[0]] ...
    .spawn(n)[key[-1]]`` (the same for any ``n_*`` larger than the indices: a child depends
    only on its spawn key), shifted right by one bit so it fits an int64 column.
    """
    child = np.random.SeedSequence(base_seed, spawn_key=tuple(int(k) for k in key))
    return int(child.generate_state(1, dtype=np.uint64)[0]) >> 1


def _model_keywords() -> set[str]:
    from mesa_econ.model import EconomyModel

    return set(inspect.signature(EconomyModel.__init__).parameters) - {"self"}


def _axes(parameters: Mapping[str, Any]) -> tuple[dict[str, list], dict[str, Any]]:
    """Split parameters into swept axes (lists, ranges) and fixed values; validate names."""
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters={parameters!r} is invalid: expected a dict of "
                         "model keyword -> value or list of values")
    known = _model_keywords()
    swept: dict[str, list] = {}
    fixed: dict[str, Any] = {}
    for name, value in parameters.items():
        if name in RESERVED:
            raise ValueError(f"parameters[{name!r}] is invalid: run_sweep sets {name} itself "
                             "(use seeds=/base_seed= or collect_agents=)")
        if name not in known:
            raise ValueError(f"parameters[{name!r}] is invalid: expected a keyword of "
                             f"EconomyModel, one of {sorted(known - set(RESERVED))}")
        if isinstance(value, list | range):
            if len(value) == 0:
                raise ValueError(f"parameters[{name!r}]=[] is invalid: expected a non-empty "
                                 "list of values (or a single fixed value)")
            swept[name] = list(value)
        else:
            fixed[name] = value
    return swept, fixed


def _check_args(seeds: Any, steps: Any, backend: Any, processes: Any, base_seed: Any,
                ray_address: Any, batch_seeds: Any = None) -> list[int] | int:
    def is_int(x: Any) -> bool:
        return isinstance(x, int | np.integer) and not isinstance(x, bool)

    if is_int(seeds):
        if seeds < 1:
            raise ValueError(f"seeds={seeds} is invalid: expected a number of replicates >= 1 "
                             "or a non-empty list of non-negative integer seeds")
        seeds = int(seeds)
    elif (isinstance(seeds, list | tuple) and len(seeds) > 0
          and all(is_int(s) and s >= 0 for s in seeds)):
        seeds = [int(s) for s in seeds]
    else:
        raise ValueError(f"seeds={seeds!r} is invalid: expected a number of replicates >= 1 "
                         "or a non-empty list of non-negative integer seeds")
    if not is_int(steps) or steps < 1:
        raise ValueError(f"steps={steps!r} is invalid: expected an integer >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid: expected one of {list(BACKENDS)}")
    if not is_int(processes) or processes < 1:
        raise ValueError(f"processes={processes!r} is invalid: expected an integer >= 1")
    if not is_int(base_seed) or base_seed < 0:
        raise ValueError(f"base_seed={base_seed!r} is invalid: expected an integer >= 0")
    if ray_address is not None and (backend != "ray" or not isinstance(ray_address, str)):
        raise ValueError(f"ray_address={ray_address!r} is invalid: expected a string "
                         "('auto', 'ray://host:10001', 'host:6379') with backend='ray'")
    if not (batch_seeds is None or isinstance(batch_seeds, bool)
            or (is_int(batch_seeds) and batch_seeds >= 1)):
        raise ValueError(f"batch_seeds={batch_seeds!r} is invalid: expected None (batch the "
                         "seeds of checkpoint policies), True, False or an integer >= 1 (most "
                         "seeds per batch)")
    return seeds


def _plan(parameters: Mapping[str, Any], seeds: int | list[int], steps: int, base_seed: int,
          collect_agents: bool) -> list[RunSpec]:
    swept, fixed = _axes(parameters)
    names = list(swept)
    key_order = sorted(range(len(names)), key=lambda k: names[k])  # seeds ignore dict order
    n_rep = seeds if isinstance(seeds, int) else len(seeds)
    specs: list[RunSpec] = []
    index_sets = [range(len(swept[n])) for n in names]
    for idx in itertools.product(*index_sets):  # first parameter varies slowest
        combo = {n: swept[n][i] for n, i in zip(names, idx, strict=True)}
        for r in range(n_rep):
            if isinstance(seeds, int):
                seed = run_seed(base_seed, [idx[k] for k in key_order] + [r])
            else:
                seed = seeds[r]
            specs.append(RunSpec(run_id=len(specs), replicate=r, seed=seed, swept=combo,
                                 kwargs={**fixed, **combo}, steps=steps,
                                 collect_agents=collect_agents))
    return specs


def plan_sweep(parameters: Mapping[str, Any], *, seeds: int | list[int],
               base_seed: int = 0) -> pd.DataFrame:
    """The runs a sweep would make, without running them: run_id, replicate, seed, params."""
    seeds = _check_args(seeds, 1, "local", 1, base_seed, None)
    specs = _plan(parameters, seeds, 1, base_seed, False)
    return pd.DataFrame([{"run_id": s.run_id, "replicate": s.replicate, "seed": s.seed,
                          **s.swept} for s in specs])


def batch_parameters(parameters: Mapping[str, Any],
                     seeds: Sequence[int] | None = None) -> dict[str, Any]:
    """``parameters`` in the form ``mesa.batch_run`` expects, with run_sweep's convention.

    ``batch_run`` iterates over every non-string iterable, so a fixed dict (``curve_params``)
    or tuple (``hidden``) would be split into its keys or items. Here, as in
    :func:`run_sweep`, only lists and ranges are sweep axes; every other value is wrapped
    in a one-element list. ``seeds`` become the ``rng`` axis (one run per seed, which Mesa
    3.3 and 3.5 both pass to the model).
    """
    if not isinstance(parameters, Mapping):
        raise ValueError(f"parameters={parameters!r} is invalid: expected a dict")
    out = {name: list(v) if isinstance(v, list | range) else [v]
           for name, v in parameters.items()}
    if seeds is not None:
        if "rng" in parameters or "seed" in parameters:
            raise ValueError("seeds is invalid together with parameters['rng'/'seed']: "
                             "give the seeds once")
        out["rng"] = [int(s) for s in seeds]
    return out


# ---------------------------------------------------------------------------- one run
def _run_one(spec: RunSpec) -> tuple[int, pd.DataFrame | None, str | None, str | None]:
    """Build, step and collect one model; never raises (errors come back as text)."""
    try:
        from mesa_econ.model import EconomyModel

        model = EconomyModel(**spec.kwargs, rng=spec.seed, collect_agents=spec.collect_agents)
        for _ in range(spec.steps):
            model.step()
        return spec.run_id, _frame_of(model, spec.collect_agents), None, None
    except Exception as exc:  # reported with the run's parameters, the sweep goes on
        return spec.run_id, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()


def _frame_of(model: Any, collect_agents: bool) -> pd.DataFrame:
    """The DataCollector's data as one frame with integer ``step`` (0 = initial state)."""
    dc = model.datacollector
    model_vars = dc.get_model_vars_dataframe().reset_index(drop=True)
    model_vars.insert(0, "step", np.arange(len(model_vars), dtype=np.int64))
    if not collect_agents:
        return model_vars
    agent_vars = dc.get_agent_vars_dataframe().reset_index()
    # index levels are (Step, AgentID): Step is model.steps in Mesa 3.3, model.time in 3.5
    step_col, agent_col = agent_vars.columns[:2]
    codes = pd.factorize(agent_vars[step_col], sort=True)[0].astype(np.int64)
    agent_vars = agent_vars.drop(columns=[step_col]).rename(columns={agent_col: "agent_id"})
    agent_vars.insert(0, "step", codes)
    front = ["step", "agent_id"]
    if len(model_vars.columns) == 1:  # no model reporters (reporters="none"): no model rows
        return agent_vars[front + [c for c in agent_vars.columns if c not in front]]
    merged = model_vars.merge(agent_vars, on="step", how="inner", suffixes=("", "_agent"))
    return merged[front + [c for c in merged.columns if c not in front]]


def _lost(task: list[RunSpec], exc: BaseException) -> list[tuple]:
    """Every run of a task whose worker died (e.g. killed for memory) as failed."""
    error, trace = f"{type(exc).__name__}: {exc}", traceback.format_exc()
    return [(spec.run_id, None, error, trace) for spec in task]


# ---------------------------------------------------------------------------- backends
def _tqdm(total: int, progress: bool, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, desc=desc, unit="run")


def _run_local(tasks: list[list[RunSpec]], processes: int, progress: bool) -> dict[int, tuple]:
    from mesa_econ._sweep_batch import run_task

    results: dict[int, tuple] = {}
    with _tqdm(sum(map(len, tasks)), progress, "sweep (local)") as bar:
        if processes == 1:
            for task in tasks:
                results.update((r[0], r) for r in run_task(task))
                bar.update(len(task))
            return results
        # spawn, not fork: forking a process that has started torch's threads can deadlock
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=processes, mp_context=ctx) as pool:
            futures = {pool.submit(run_task, task): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    done = future.result()
                except Exception as exc:  # e.g. a worker killed for memory
                    done = _lost(task, exc)
                results.update((r[0], r) for r in done)
                bar.update(len(task))
    return results


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(RAY_HINT) from exc
    return ray


def _run_ray(tasks: list[list[RunSpec]], processes: int, address: str | None,
             progress: bool) -> dict[int, tuple]:
    from mesa_econ._sweep_batch import run_task

    ray = _import_ray()
    started = not ray.is_initialized()
    if not started and address is not None:
        warnings.warn(f"ray is already initialised; ray_address={address!r} is ignored",
                      RuntimeWarning, stacklevel=3)
    address = address or os.environ.get("RAY_ADDRESS") or None  # ray.init's own default
    if started and address is not None:
        ray.init(address=address)
    elif started:
        ray.init(num_cpus=processes, include_dashboard=False)
    results: dict[int, tuple] = {}
    try:
        remote = ray.remote(num_cpus=1)(run_task)
        task_of = {remote.remote(task): task for task in tasks}
        pending = list(task_of)
        with _tqdm(sum(map(len, tasks)), progress, "sweep (ray)") as bar:
            while pending:  # collect whatever finished in the last half second
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
                for ref in done:
                    task = task_of.pop(ref)
                    try:
                        finished = ray.get(ref)
                    except Exception as exc:  # the task's worker died (ray.exceptions.RayError)
                        finished = _lost(task, exc)
                    results.update((r[0], r) for r in finished)
                    bar.update(len(task))
    finally:
        if started:
            ray.shutdown()
    return results


# ---------------------------------------------------------------------------- run_sweep
def run_sweep(parameters: Mapping[str, Any], *, seeds: int | list[int], steps: int,
              backend: str = "local", processes: int = 1, base_seed: int = 0,
              ray_address: str | None = None, progress: bool = True,
              collect_agents: bool = False, batch_seeds: bool | int | None = None
              ) -> pd.DataFrame:
    """Run the full factorial of the list-valued parameters × seeds; return a tidy frame.

    Args:
        parameters: EconomyModel keyword -> value. A ``list`` (or ``range``) is a sweep
            axis and becomes a column; any other value (scalar, str, tuple, dict) is fixed
            for every run. To sweep a tuple-valued keyword, give a list of tuples.
        seeds: number of replicates R (seeds spawned from ``base_seed``, see the module
            docstring), or an explicit list of seeds used for every parameter combination.
        steps: model steps per run; each run gives ``steps + 1`` rows (step 0 = start).
        backend: ``"local"`` or ``"ray"``.
        processes: local worker processes (spawned); for ``"ray"``, the CPUs of the local
            Ray started when Ray is not initialised and no ``ray_address`` is given.
        base_seed: root entropy of the spawned seeds (unused with an explicit seed list).
        ray_address: address of a running Ray cluster (``"auto"``, ``"ray://host:10001"``;
            default: the ``RAY_ADDRESS`` environment variable, else a local Ray). If Ray is
            already initialised it is used as is; a Ray started here is shut down at the end.
        progress: show a tqdm progress bar over runs.
        collect_agents: also collect agent reporters; rows become one per run, step and
            agent (``agent_id``), with the model reporters repeated.
        batch_seeds: step a combination's seeds together as one MarketBatch (one policy
            forward pass per step for all of them; a pool or Ray task is then a seed
            group): ``None`` for checkpoint policies only, ``True`` always, ``False`` never,
            ``k`` in batches of at most k seeds. Scripted policies give the same frame
            either way; learned ones equal the runs alone to float32 rounding.

    Returns:
        Columns ``run_id, replicate, seed, <swept parameters>, step, [agent_id],
        <reporters>``, sorted by run_id (then step, agent). ``frame.attrs["failures"]``
        lists failed runs (empty list if none).

    Raises:
        ValueError: a bad argument or an unknown parameter name (named in the message).
        ImportError: ``backend="ray"`` without Ray installed.
        RuntimeError: every run failed.
    """
    seeds = _check_args(seeds, steps, backend, processes, base_seed, ray_address, batch_seeds)
    specs = _plan(parameters, seeds, int(steps), int(base_seed), bool(collect_agents))
    from mesa_econ._sweep_batch import plan_tasks

    tasks = plan_tasks(specs, seeds if isinstance(seeds, int) else len(seeds), batch_seeds)
    if backend == "ray":
        _import_ray()  # fail before any work if the extra is missing
        results = _run_ray(tasks, processes, ray_address, progress)
    else:
        results = _run_local(tasks, processes, progress)
    return _assemble(specs, results)


def _assemble(specs: list[RunSpec], results: dict[int, tuple]) -> pd.DataFrame:
    frames, failures = [], []
    for spec in specs:
        _, frame, error, trace = results[spec.run_id]
        if frame is None:
            failures.append({"run_id": spec.run_id, "replicate": spec.replicate,
                             "seed": spec.seed, **spec.swept, "error": error,
                             "traceback": trace})
            continue
        ids = {"run_id": spec.run_id, "replicate": spec.replicate, "seed": spec.seed,
               **spec.swept}
        head = pd.DataFrame({k: pd.Series([v] * len(frame)) for k, v in ids.items()})
        frames.append(pd.concat([head, frame], axis=1))
    if not frames:
        first = failures[0]
        which = ("the only run failed" if len(specs) == 1
                 else f"all {len(specs)} runs failed; first")
        raise RuntimeError(f"{which} (run_id=0, parameters "
                           f"{specs[0].swept}, seed {specs[0].seed}): {first['error']}")
    out = pd.concat(frames, ignore_index=True)
    if failures:
        first = failures[0]
        warnings.warn(f"{len(failures)} of {len(specs)} runs failed (see "
                      f"frame.attrs['failures']); first: run_id={first['run_id']} "
                      f"{ {k: first[k] for k in specs[0].swept} }: {first['error']}",
                      RuntimeWarning, stacklevel=3)
    out.attrs["failures"] = failures
    return out
