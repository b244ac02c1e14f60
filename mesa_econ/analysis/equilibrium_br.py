"""Best responses to a frozen profile: PPO of one agent while the others stay fixed. §7.3.

:func:`best_response` trains agent i's best response from its own policy, against the
other N − 1 policies of a :class:`~mesa_econ.analysis.equilibrium.Profile`, with the
profile's reward and PPO settings (:class:`DeviationPPO`), for a number of iterations or a
time budget. :func:`save_response` / :func:`load_response` keep finished responses on
disk (a one-agent policy checkpoint and a ``result.json``), which is how
:func:`~mesa_econ.analysis.equilibrium.nash_gap` resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer
from mesa_econ.rl.optim import StackedAdam
from mesa_econ.rl.ppo import PPO, PPOConfig, ppo_update

__all__ = ["BR_SEED_BASE", "BestResponse", "DeviationPPO", "agent_slice", "best_response",
           "check_budget", "deviation_policy", "load_response", "save_response", "select_response"]

BR_SEED_BASE = 7_000_000
"""Noise seed of a best response's first training market: BR_SEED_BASE + 1000·seed + agent
(later episodes draw theirs from the trainer's own stream, as in any PPO run)."""


def agent_slice(ensemble: Any, agent: int) -> Any:
    """Agent ``agent``'s policy as a one-agent PolicyEnsemble (a copy of its weights)."""
    from mesa_econ.policies import PolicyEnsemble

    one = PolicyEnsemble(1, ensemble.obs_dim, ensemble.act_dim, hidden=ensemble.hidden,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for dst, src in zip(one.parameters(), ensemble.parameters(), strict=True):
            dst[0].copy_(src[agent])
    return one


def _write_row(ensemble: Any, agent: int, one: Any) -> None:
    """Copy a one-agent ensemble's weights into row ``agent`` of ``ensemble``."""
    with torch.no_grad():
        for dst, src in zip(ensemble.parameters(), one.parameters(), strict=True):
            dst[agent].copy_(src[0])


def deviation_policy(profile: Any, agent: int, response: Any) -> Any:
    """The profile with agent ``agent`` alone playing ``response`` (a one-agent
    ensemble), acting on raw observations; the others are the profile's own weights."""
    ens = copy.deepcopy(profile.ensemble)
    _write_row(ens, agent, response)
    return profile.policy(ens)


class DeviationPPO(PPO):
    """PPO of one agent against a frozen profile (the other N − 1 policies fixed).

    The rollouts run all N agents as usual; the update trains only a one-agent copy of
    agent i's actor-critic on agent i's column of the rollout (its own advantages, its own
    :class:`~mesa_econ.rl.optim.StackedAdam`), then writes it into row i of the
    ensemble. The other rows are never written, so they stay bit for bit the profile's.
    The observation normaliser is frozen at the profile's statistics (the others must see
    what they were trained on; agent i starts from exactly its own policy).

    Args:
        model: a fresh market whose ``ensemble`` is (a copy of) the profile.
        config: PPO settings (``anneal_lr`` follows :attr:`progress`, see below).
        agent: i, the deviating agent.

    Attributes:
        progress: fraction of the training done, in [0, 1], set by the caller before each
            iteration; the learning rate is ``(1 − progress)·learning_rate`` when
            ``anneal_lr`` (so a time budget anneals like an iteration count).
        response: the one-agent ensemble being trained.
    """

    algo_name = "ppo_best_response"

    def __init__(self, model: Any, config: PPOConfig, agent: int) -> None:
        super().__init__(model, config)
        self.agent, self.progress = int(agent), 0.0
        self.response = agent_slice(self.ensemble, self.agent)
        self.optimizer = StackedAdam(list(self.response.parameters()), config.learning_rate,
                                     eps=config.adam_eps, max_grad_norm=config.max_grad_norm)
        self._column = RolloutBuffer(config.num_steps, 1, self.obs_dim, self.act_dim)
        self._agent_reward = 0.0
        if self.reward_normalizer is not None:  # record agent i's raw rewards on the way
            self.reward_normalizer = _RewardTap(self.reward_normalizer, self)

    def observe_np(self, update: bool = True, out: np.ndarray | None = None) -> np.ndarray:
        """The observations, normalised with the profile's frozen statistics."""
        return super().observe_np(False, out)

    def update(self, iteration: int, iterations: int, last_value: torch.Tensor) -> dict[str,
                                                                                      float]:
        """GAE on agent i's column, one PPO update of its policy alone, write-back."""
        cfg, i, col = self.config, self.agent, self._column
        for name in ("obs", "actions", "logprobs", "values", "rewards", "dones"):
            getattr(col, name).copy_(getattr(self.buffer, name)[:, i:i + 1])
        col.finish(last_value[i:i + 1], cfg.gamma, cfg.gae_lambda)
        if cfg.anneal_lr:
            self.optimizer.lr = max(0.0, 1.0 - self.progress) * cfg.learning_rate
        metrics = ppo_update(self.response, self.optimizer, col, cfg, self.generator,
                             self._workspace)
        _write_row(self.ensemble, i, self.response)
        metrics["lr"] = self.optimizer.lr
        raw = self._agent_reward if self.reward_normalizer is not None \
            else float(col.rewards.sum())
        metrics["agent_reward"] = raw / cfg.num_steps  # agent i's raw reward per step
        self._agent_reward = 0.0
        return metrics


class _RewardTap:
    """A reward normaliser that also adds up the deviating agent's raw rewards."""

    def __init__(self, inner: Any, trainer: DeviationPPO) -> None:
        self.inner, self.trainer = inner, trainer

    def __call__(self, reward: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        self.trainer._agent_reward += float(reward[self.trainer.agent])
        return self.inner(reward, out=out)

    def reset(self) -> None:
        self.inner.reset()


@dataclass
class BestResponse:
    """A trained best response of one agent (from one best-response seed)."""

    agent: int
    seed: int
    response: Any
    """The one-agent PolicyEnsemble played as the deviation (splice it with
    :func:`deviation_policy`): the selected snapshot, see :func:`select_response`."""
    log: pd.DataFrame
    """Training log, one row per iteration (``agent_reward``: its raw reward per step)."""
    seconds: float
    iterations: int
    snapshots: list[tuple[int, Any]] = field(default_factory=list)
    """(iteration, one-agent ensemble) at the end of each part of the training; iteration
    0 is the agent's own policy. Not saved."""
    selected: int | None = None
    """The iteration of the snapshot played (0: the agent's own policy); None: the last
    snapshot, unselected."""
    validation: list[dict[str, float]] = field(default_factory=list)
    """Each snapshot's mean gain over the validation seeds (``iteration``, ``gain``)."""


def check_budget(budget_s: float | None, iterations: int | None) -> None:
    """Raise ``ValueError`` unless exactly one of a positive budget and iterations >= 1."""
    if (budget_s is None) == (iterations is None):
        raise ValueError("give exactly one of budget_s and iterations")
    if iterations is not None and (isinstance(iterations, bool) or int(iterations) < 1):
        raise ValueError(f"iterations={iterations!r} is invalid: expected an integer >= 1")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget_s={budget_s!r} is invalid: expected seconds > 0")


def best_response(profile: Any, agent: int, *, seed: int = 0,
                  budget_s: float | None = None, iterations: int | None = None,
                  snapshots: int = 4,
                  tick: Callable[[int], None] | None = None) -> tuple[BestResponse, Any]:
    """Train agent ``agent``'s best response to the rest of ``profile`` with PPO.

    Starts from the agent's own policy and maximises the profile's reward (the same
    market, rewards and population) with the profile's PPO settings, trainer seed
    ``seed``. Give ``iterations`` (reproducible) or ``budget_s`` (wall seconds: iterations
    run until the budget is spent, the learning rate annealed over the budget). A copy of
    the policy is kept at the end of each of ``snapshots`` equal parts of the training
    (PPO restarted from a converged policy often dips before it improves; see
    :func:`select_response`).

    Returns:
        ``(BestResponse, trainer)``; ``response`` is the final policy, ``snapshots`` the
        own policy (iteration 0) and the copies; ``trainer.ensemble`` is the whole
        profile with row ``agent`` replaced (the other rows equal the profile's bit for
        bit).
    """
    if isinstance(agent, bool) or not 0 <= int(agent) < profile.n_agents:
        raise ValueError(f"agent={agent!r} is invalid: expected an index in "
                         f"[0, {profile.n_agents})")
    check_budget(budget_s, iterations)
    if isinstance(snapshots, bool) or not isinstance(snapshots, int) or snapshots < 1:
        raise ValueError(f"snapshots={snapshots!r} is invalid: expected an integer >= 1")
    model = profile.model(BR_SEED_BASE + 1000 * int(seed) + int(agent))
    ensemble = copy.deepcopy(profile.ensemble)  # the trainer writes row i of this copy
    norm = copy.deepcopy(profile.obs_normalizer)
    model.ensemble = ensemble if norm is None else NormalizedPolicy(ensemble, norm)
    # the profile's settings; observations normalised exactly when the profile's are
    cfg = dataclasses.replace(profile.ppo, seed=int(seed), norm_obs=norm is not None)
    trainer = DeviationPPO(model, cfg, int(agent))
    kept = [(0, copy.deepcopy(trainer.response))]
    start, k, part = time.perf_counter(), 0, 1
    while True:
        elapsed = time.perf_counter() - start
        done = k / iterations if iterations is not None else min(1.0, elapsed / budget_s)
        if k and done >= part / snapshots:  # the end of a part (and of the training)
            kept.append((k, copy.deepcopy(trainer.response)))
            part = int(done * snapshots) + 1
        if k and done >= 1.0:
            break
        trainer.progress = done
        trainer.train(1, progress=False)
        k += 1
        if tick is not None:
            tick(k)
    log = pd.DataFrame(trainer.history)
    return BestResponse(int(agent), int(seed), trainer.response, log,
                        time.perf_counter() - start, k, snapshots=kept), trainer


def select_response(profile: Any, response: BestResponse, seeds: Sequence[int],
                    own_returns: np.ndarray) -> BestResponse:
    """Play the snapshot that beats the agent's own policy most surely on validation seeds.

    Each snapshot of ``response`` (iteration 0 is the agent's own policy, gain 0 on every
    seed by definition) is run as agent i's deviation on the validation ``seeds``, paired
    with ``own_returns`` (agent i's returns under the profile on those seeds). The one with
    the highest lower bound mean − 2·se of its per-seed gains wins (ties: the earliest), so
    a snapshot replaces the own policy only when it is better beyond the validation noise.
    The validation seeds are not the evaluation seeds, so the gain measured afterwards is
    not inflated by the choice. Returns ``response`` with ``response``, ``selected`` and
    ``validation`` (iteration, gain, lower bound of each snapshot) set.
    """
    from mesa_econ.analysis.equilibrium_profile import episode_returns

    agent, table = response.agent, []
    for iteration, candidate in response.snapshots:
        if iteration == 0:
            gains = np.zeros(len(own_returns))  # the profile itself, seed by seed
        else:
            dev = episode_returns(deviation_policy(profile, agent, candidate), profile, seeds)
            gains = dev[:, agent] - own_returns
        se = gains.std(ddof=1) / np.sqrt(gains.size) if gains.size > 1 else 0.0
        table.append({"iteration": int(iteration), "gain": float(gains.mean()),
                      "lower": float(gains.mean() - 2.0 * se)})
    best = int(np.argmax([row["lower"] for row in table]))
    response.response = response.snapshots[best][1]
    response.selected, response.validation = table[best]["iteration"], table
    return response


def save_response(response: BestResponse, path: Path, profile: Any, key: str) -> None:
    """Write a finished best response into directory ``path``: ``policy.*`` (the policy
    played, a one-agent checkpoint with the agent's row of the frozen normaliser),
    ``training.csv`` and, last, ``result.json`` (its presence marks the response
    finished; ``key`` ties it to a run)."""
    from mesa_econ.rl.checkpoint import save_checkpoint

    norm = None
    if profile.obs_normalizer is not None:
        state = profile.obs_normalizer.state()
        i = response.agent
        norm = ObsNormalizer.from_state({**state, "mean": state["mean"][i:i + 1],
                                         "var": state["var"][i:i + 1]})
    path.mkdir(parents=True, exist_ok=True)
    save_checkpoint(response.response, path, algo=DeviationPPO.algo_name,
                    config={**dataclasses.asdict(profile.ppo), "seed": response.seed},
                    obs_normalizer=norm)
    response.log.to_csv(path / "training.csv", index=False)
    result = {"run_key": key, "agent": response.agent, "seed": response.seed,
              "seconds": response.seconds, "iterations": response.iterations,
              "selected": response.selected, "validation": response.validation}
    tmp = path / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path / "result.json")


def load_response(path: Path, key: str) -> BestResponse | None:
    """The finished best response in ``path``, or None if there is none (or an
    unfinished one). Raises ``ValueError`` if it belongs to another run (``key``)."""
    from mesa_econ.rl.checkpoint import load_policy

    marker = path / "result.json"
    if not marker.is_file():
        return None
    result = json.loads(marker.read_text())
    if result.get("run_key") != key:
        raise ValueError(f"{path} holds a best response of another run (key "
                         f"{result.get('run_key')!r}, this run {key!r}): use a fresh --out")
    policy = load_policy(path)
    one = policy.policy if isinstance(policy, NormalizedPolicy) else policy
    log_path = path / "training.csv"
    log = pd.read_csv(log_path) if log_path.is_file() else pd.DataFrame()
    return BestResponse(int(result["agent"]), int(result["seed"]), one, log,
                        float(result["seconds"]), int(result["iterations"]),
                        selected=result.get("selected"),
                        validation=result.get("validation", []))
