"""How far a trained profile is from a Nash equilibrium: learned best responses. Implements §7.3.

A *profile* is the N agents' policies of a checkpoint, with the market they were trained
on (scenario, reward configuration, population). For each tested agent i, the others are
frozen and a best response π_i^BR is trained with PPO from agent i's own policy, on the
same reward, within a time budget. Then agent i's gain from deviating alone,

    δ_i = J_i(π_i^BR, π_−i) − J_i(π),

is measured on held-out noise seeds with common random numbers (the same seeds, hence the
same market noise and the same action noise draws, for the profile and the deviation).
The deviation played is whichever of the agent's own policy and four snapshots of its
training beats the own policy most surely on separate validation seeds (PPO restarted from
a converged policy often dips before it improves), so δ_i is rarely below 0 and not
inflated by the choice.
ε = max_i δ_i and NashConv = Σ_i δ_i follow (:mod:`.equilibrium_stats`). A learned best
response is a deviation, not the best one: δ_i is a **lower bound** on agent i's true
gain, and ε a lower bound on the profile's exploitability.

Best responses are checkpointed as they finish (``out/best_responses/agent<i>/seed<s>``),
so an interrupted :func:`nash_gap` resumes with the responses it has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.analysis.equilibrium_br import (
    BestResponse,
    best_response,
    check_budget,
    deviation_policy,
    load_response,
    save_response,
    select_response,
)
from mesa_econ.analysis.equilibrium_profile import (
    Profile,
    episode_returns,
    jsonable,
    load_profile,
)
from mesa_econ.analysis.equilibrium_stats import stratified_sample, stratify_by, summarise_gains

__all__ = ["GRAD_SEED_BASE", "LOWER_BOUND_NOTE", "SNAPSHOTS", "VALIDATION_SEED_BASE", "Profile",
           "episode_returns", "load_profile", "nash_gap"]

VALIDATION_SEED_BASE = 1_800_000
"""Noise seeds on which a best response's snapshots are compared: VALIDATION_SEED_BASE + k
(apart from the evaluation seeds EVAL_SEED_BASE + k of :mod:`mesa_econ.experiments`)."""
GRAD_SEED_BASE = 1_900_000
"""Noise seeds of the gradient check's episodes: GRAD_SEED_BASE + k."""
SNAPSHOTS = 4
"""Snapshots kept per best response (the ends of four equal parts of its training)."""
LOWER_BOUND_NOTE = (
    "A learned best response is one deviation, not the best one: each δ_i is a lower "
    "bound on agent i's true gain from deviating, ε a lower bound on the profile's "
    "exploitability and NashConv a lower bound on its NashConv (given the training "
    "budget; a larger budget can only find more). δ_i ≈ 0 says PPO found no profitable "
    "deviation within the budget, not that none exists.")


def _pick_agents(profile: Profile, agents: int | Sequence[int] | None,
                 sample_seed: int) -> tuple[list[int], np.ndarray, str]:
    """(agents, expansion weights, what they were stratified by)."""
    n = profile.n_agents
    if agents is None or (isinstance(agents, int) and not isinstance(agents, bool)
                          and agents >= n):
        return list(range(n)), np.ones(n), "all agents"
    if isinstance(agents, int) and not isinstance(agents, bool):
        if agents < 1:
            raise ValueError(f"agents={agents!r} is invalid: expected 'all' or an integer "
                             f"in [1, {n}]")
        key, values = stratify_by(profile.model(0))
        picked, weights = stratified_sample(values, agents, rng=sample_seed)
        return [int(a) for a in picked], weights, f"stratified by {key}"
    picked = sorted({int(a) for a in agents})
    if not picked or picked[0] < 0 or picked[-1] >= n:
        raise ValueError(f"agents={list(agents)!r} is invalid: expected indices in [0, {n})")
    return picked, np.ones(len(picked)), "given"


def _seeds(value: int | Sequence[int], base: int, name: str, minimum: int) -> list[int]:
    """A count k → [base, base + k), or distinct given seeds; at least ``minimum``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < minimum:
            raise ValueError(f"{name}={value!r} is invalid: expected >= {minimum} seeds")
        return [base + k for k in range(value)]
    seeds = [int(x) for x in value]
    if len(seeds) < minimum or len(set(seeds)) != len(seeds):
        raise ValueError(f"{name}={seeds!r} is invalid: expected >= {minimum} distinct seeds")
    return seeds


def _run_key(profile: Profile, agents: list[int], br_seeds: int, budget: dict[str, Any],
             val_seeds: list[int]) -> str:
    blob = {"profile": profile.digest(), "agents": agents, "br_seeds": br_seeds, **budget,
            "val_seeds": val_seeds, "snapshots": SNAPSHOTS,
            "ppo": dataclasses.asdict(profile.ppo)}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _check_run(out: Path, key: str) -> None:
    """Write ``out/run.json`` with the run key, or check an existing one matches."""
    path = out / "run.json"
    if path.is_file():
        old = json.loads(path.read_text()).get("run_key")
        if old != key:
            raise ValueError(f"{out} holds another Nash-gap run (key {old!r}, this run "
                             f"{key!r}: another profile, agents, seeds or budget): use a "
                             "fresh --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_key": key}, indent=2))


def _train_responses(profile: Profile, tasks: list[tuple[int, int]], budget: dict[str, Any],
                     val_seeds: list[int], root: Path | None, key: str,
                     progress: bool) -> tuple[dict[tuple[int, int], BestResponse],
                                              pd.DataFrame]:
    """Train (or load, when ``root`` holds it) every best response, and pick its snapshot."""
    from tqdm.auto import tqdm

    own = episode_returns(profile.policy(), profile, val_seeds) if val_seeds else None
    responses, rows = {}, []
    bar = tqdm(tasks, desc="best responses", unit="response", disable=not progress)
    for agent, seed in bar:
        path = None if root is None else root / "best_responses" / f"agent{agent}" / f"seed{seed}"
        found = None if path is None else load_response(path, key)
        resumed = found is not None
        if found is None:
            def tick(k: int, agent: int = agent, seed: int = seed) -> None:
                bar.set_postfix(agent=agent, seed=seed, iteration=k)

            found, _ = best_response(profile, agent, seed=seed, snapshots=SNAPSHOTS,
                                     tick=tick, **budget)
            if own is not None:
                bar.set_postfix(agent=agent, seed=seed, validating=True)
                found = select_response(profile, found, val_seeds, own[:, agent])
            if path is not None:
                save_response(found, path, profile, key)
        responses[(agent, seed)] = found
        nan = {"gain": float("nan"), "lower": float("nan")}
        last = found.validation[-1] if found.validation else nan
        chosen = next((v for v in found.validation if v["iteration"] == found.selected), nan)
        rows.append({"agent": agent, "seed": seed, "iterations": found.iterations,
                     "seconds": found.seconds, "selected_iteration": found.selected,
                     "validation_gain": chosen["gain"], "validation_lower": chosen["lower"],
                     "validation_gain_final": last["gain"], "resumed": resumed})
    return responses, pd.DataFrame(rows)


def _evaluate(profile: Profile, picked: list[int], br_seeds: int,
              responses: dict[tuple[int, int], BestResponse], seeds: list[int],
              progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Agent i's returns under the profile ``[E, K]`` and under each deviation
    ``[S, E, K]`` on the evaluation seeds (common random numbers)."""
    from tqdm.auto import tqdm

    prof = episode_returns(profile.policy(), profile, seeds)[:, picked]
    dev = np.empty((br_seeds, len(seeds), len(picked)))
    for (agent, seed), found in tqdm(responses.items(), desc="evaluation", unit="deviation",
                                     disable=not progress):
        col = picked.index(agent)
        if found.selected == 0:  # the agent's own policy: the profile, seed by seed
            dev[seed, :, col] = prof[:, col]
            continue
        policy = deviation_policy(profile, agent, found.response)
        dev[seed, :, col] = episode_returns(policy, profile, seeds)[:, agent]
    return prof, dev


def nash_gap(profile: Profile, agents: int | Sequence[int] | None = None, *,
             budget_s: float | None = None, iterations: int | None = None,
             br_seeds: int = 2, eval_seeds: int | Sequence[int] = 10,
             val_seeds: int | Sequence[int] = 5, grad_episodes: int = 16,
             out: str | Path | None = None, progress: bool = True,
             sample_seed: int = 0) -> dict[str, Any]:
    """ε-Nash gap and NashConv of a profile from learned best responses. Implements §7.3.

    Args:
        profile: the policy profile and its game (:func:`load_profile`).
        agents: None tests every agent; an integer K < N a stratified sample of K agents
            (:func:`~.equilibrium_stats.stratified_sample` by graph degree or need); a
            sequence those agents.
        budget_s: total training time in seconds, split evenly over the K agents × S
            best-response seeds (validation, evaluation and the gradient check come on
            top).
        iterations: PPO iterations per best response instead of a budget (reproducible).
        br_seeds: S, best-response training seeds per agent (0..S−1).
        eval_seeds: held-out noise seeds (a count E >= 2: EVAL_SEED_BASE + k, the
            reproduction's), the same for the profile and every deviation.
        val_seeds: validation seeds (a count: VALIDATION_SEED_BASE + k) on which each best
            response's snapshots and the agent's own policy are compared; the best is the
            deviation played (:func:`~.equilibrium_br.select_response`). 0: play the
            final policy.
        grad_episodes: episodes of the gradient check (0: skip it).
        out: directory for best-response checkpoints; a run interrupted there resumes
            with the responses it finished. None: nothing written.
        progress: show progress bars.
        sample_seed: seed of the stratified draw.

    Returns:
        ``{"summary": summarise_gains(...) (agents table, epsilon, nash_conv,
        nash_conv_all), "returns": DataFrame (agent, br_seed, eval_seed, profile_return,
        deviation_return, gain), "responses": DataFrame (agent, seed, iterations,
        seconds, selected_iteration, validation gains, resumed), "gradient": DataFrame or
        None, "setup": dict}`` where setup states the game (scenario parameters, rewards,
        population seed), the agents and how they were picked, the seeds, the budget and
        :data:`LOWER_BOUND_NOTE`.
    """
    from mesa_econ.analysis.equilibrium_grad import ESTIMATOR, policy_gradient_check
    from mesa_econ.experiments import EVAL_SEED_BASE

    picked, weights, how = _pick_agents(profile, agents, sample_seed)
    seeds = _seeds(eval_seeds, EVAL_SEED_BASE, "eval_seeds", 2)
    val = _seeds(val_seeds, VALIDATION_SEED_BASE, "val_seeds", 0)
    if isinstance(br_seeds, bool) or not isinstance(br_seeds, int) or br_seeds < 1:
        raise ValueError(f"br_seeds={br_seeds!r} is invalid: expected an integer >= 1")
    check_budget(budget_s, iterations)
    tasks = [(a, s) for a in picked for s in range(br_seeds)]
    budget = {"budget_s": None if budget_s is None else budget_s / len(tasks),
              "iterations": iterations}
    key = _run_key(profile, picked, br_seeds, budget, val)
    root = None if out is None else Path(out)
    if root is not None:
        _check_run(root, key)
    start = time.perf_counter()
    responses, table = _train_responses(profile, tasks, budget, val, root, key, progress)
    prof, dev = _evaluate(profile, picked, br_seeds, responses, seeds, progress)
    long = pd.DataFrame([{"agent": a, "br_seed": s, "eval_seed": e,
                          "profile_return": prof[j, c], "deviation_return": dev[s, j, c],
                          "gain": dev[s, j, c] - prof[j, c]}
                         for c, a in enumerate(picked) for s in range(br_seeds)
                         for j, e in enumerate(seeds)])
    gradient = None if not grad_episodes else policy_gradient_check(
        profile, [GRAD_SEED_BASE + k for k in range(grad_episodes)])
    setup = {"source": profile.source, "scenario": profile.scenario,
             "params": jsonable(profile.params), "rewards": jsonable(profile.rewards),
             "population_seed": profile.params.get("population_seed"),
             "n_agents": profile.n_agents, "horizon": profile.horizon, "agents": picked,
             "weights": weights.tolist(), "picked": how, "br_seeds": br_seeds,
             "eval_seeds": seeds, "val_seeds": val, "snapshots": SNAPSHOTS,
             "budget_s": budget_s, "per_response_s": budget["budget_s"],
             "iterations": iterations, "ppo": dataclasses.asdict(profile.ppo),
             "gradient_estimator": ESTIMATOR if grad_episodes else None,
             "lower_bound": LOWER_BOUND_NOTE, "run_key": key,
             "seconds": time.perf_counter() - start}
    return {"summary": summarise_gains(prof, dev, picked, weights), "returns": long,
            "responses": table, "gradient": gradient, "setup": setup}
