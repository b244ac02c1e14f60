"""The one training loop of every learner: collect, learn, log a row, advance the bar.

PPO (§6.1), the noisy actor-critic (§6.3) and mean-field Q-learning (§6.2) differ in what
they collect (an on-policy rollout, or steps into a replay buffer) and how they learn
from it, not in how an iteration is run. :func:`train_loop` runs ``iterations`` of::

    collected = learner.collect_step()               # the environment steps
    learned = learner.learn_step(k, iterations)      # the gradient steps
    learner.history.append(IterationRecord(...).row())

with one tqdm progress bar and one history row type (:class:`IterationRecord`): the
common columns iteration, env_steps, agent_steps, then the learner's collection
statistics, then its learning metrics, then the timings of :data:`TIMING_COLUMNS`.
A learner is any object with the attributes and methods of :class:`Learner`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd
from tqdm.auto import tqdm

from mesa_econ._validation import check_int

__all__ = ["TIMING_COLUMNS", "IterationRecord", "Learner", "train_loop"]

TIMING_COLUMNS = ("collect_s", "update_s", "agent_steps_per_s")
"""Columns of the training log that measure wall time (excluded from determinism checks)."""


@runtime_checkable
class Learner(Protocol):
    """What :func:`train_loop` needs of a learner.

    Attributes:
        algo_name: shown on the progress bar ("ppo training").
        n_agents: N, agents trained at once (agent_steps = N · env_steps).
        env_steps: model steps collected so far (advanced by :meth:`collect_step`).
        iteration: iterations completed so far, over all ``train`` calls.
        history: one row per iteration (:meth:`IterationRecord.row`), cumulative.
        progress_columns: (label, column, format) of the values on the progress bar.
    """

    algo_name: str
    n_agents: int
    env_steps: int
    iteration: int
    history: list[dict[str, Any]]
    progress_columns: tuple[tuple[str, str, str], ...]

    def collect_step(self) -> dict[str, Any]:
        """Step the environment for one iteration; return the collection statistics."""
        ...

    def learn_step(self, iteration: int, iterations: int) -> dict[str, Any]:
        """Learn from what :meth:`collect_step` gathered; return the learning metrics.

        ``iteration`` counts from 0 within this ``train`` call of ``iterations``.
        """
        ...


@dataclass(frozen=True)
class IterationRecord:
    """One iteration of any learner: the row type of every training log."""

    iteration: int
    """Iterations completed, this one included (1-based, cumulative over calls)."""
    env_steps: int
    """Model steps collected so far."""
    agent_steps: int
    """N · env_steps: transitions collected so far, all agents together."""
    collected: Mapping[str, Any]
    """The learner's collection statistics (mean_reward, volatility, ...)."""
    learned: Mapping[str, Any]
    """The learner's learning metrics (losses, learning rate, ...)."""
    collect_s: float
    """Wall seconds of the collection."""
    update_s: float
    """Wall seconds of the learning."""
    agent_steps_per_s: float
    """Agent steps of this iteration over its wall seconds."""

    def row(self) -> dict[str, Any]:
        """The record as one flat log row, in the column order of the module docstring."""
        return {"iteration": self.iteration, "env_steps": self.env_steps,
                "agent_steps": self.agent_steps, **self.collected, **self.learned,
                "collect_s": self.collect_s, "update_s": self.update_s,
                "agent_steps_per_s": self.agent_steps_per_s}


def train_loop(learner: Learner, iterations: int, progress: bool = True) -> pd.DataFrame:
    """Run ``iterations`` rounds of :meth:`Learner.collect_step` then
    :meth:`Learner.learn_step`, appending one :class:`IterationRecord` row each.

    Args:
        learner: the algorithm (see :class:`Learner`).
        iterations: number of iterations K (an integer >= 1).
        progress: show a tqdm progress bar.

    Returns:
        The learner's whole training log so far (cumulative over calls) as a DataFrame.

    Raises:
        ValueError: if ``iterations`` is not an integer >= 1 (before any work).
    """
    iterations = check_int("iterations", iterations, 1)
    bar = tqdm(range(iterations), desc=f"{learner.algo_name} training", unit="it",
               disable=not progress, leave=False)
    for k in bar:
        steps_before = learner.env_steps
        start = time.perf_counter()
        collected = learner.collect_step()
        mid = time.perf_counter()
        learned = learner.learn_step(k, iterations)
        done = time.perf_counter()
        learner.iteration += 1
        agent_steps = (learner.env_steps - steps_before) * learner.n_agents
        record = IterationRecord(
            iteration=learner.iteration, env_steps=learner.env_steps,
            agent_steps=learner.env_steps * learner.n_agents, collected=collected,
            learned=learned, collect_s=mid - start, update_s=done - mid,
            agent_steps_per_s=agent_steps / max(done - start, 1e-12))
        row = record.row()
        learner.history.append(row)
        bar.set_postfix({label: format(row[column], spec)
                         for label, column, spec in learner.progress_columns})
    return pd.DataFrame(learner.history)
