"""Running the reproduction (§9): train every PPO arm per training seed, evaluate every arm
on the same held-out seeds, under both profit marks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mesa_econ.experiments.evaluate import evaluate_arm
from mesa_econ.experiments.protocol import (
    CLAIMS,
    EVAL_SEED_BASE,
    PROFIT_MARKS,
    Arm,
    Claim,
    RunPlan,
    claim_params,
)


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
        "seconds": float, "eval_seeds": list[int]}``.
    """
    start = time.perf_counter()
    eval_seeds = [EVAL_SEED_BASE + k for k in range(plan.eval_seeds)]
    got = _Collected()
    tick = progress or (lambda _label: None)
    for claim in claims:
        for mark in PROFIT_MARKS:
            for arm in claim.arms:
                if arm.policy == "initial":
                    continue  # evaluated beside the PPO arm it starts from
                params = claim_params(claim, arm, mark)
                if not arm.trained:
                    frame, path = evaluate_arm(None, params, eval_seeds, scripted=arm.policy)
                    got.add_scripted(frame, path, plan.train_seeds, claim, mark, arm)
                    tick(f"{claim.key}/{mark}/{arm.name}")
                    continue
                for s in range(plan.train_seeds):
                    ckpt = None if out is None else (out / "checkpoints" / claim.key / mark
                                                     / _slug(arm.name) / f"seed{s}")
                    _train_and_evaluate(got, plan, claim, mark, arm, params, s, eval_seeds, ckpt)
                    tick(f"{claim.key}/{mark}/{arm.name}/seed{s}")
    runs = pd.concat(got.frames, ignore_index=True)
    training = pd.concat(got.logs, ignore_index=True) if got.logs else pd.DataFrame()
    return {"runs": runs, "training": training, "paths": got.paths,
            "seconds": time.perf_counter() - start, "eval_seeds": eval_seeds}


@dataclass
class _Collected:
    """What :func:`run_reproduction` gathers: tagged evaluation frames, training logs and
    the per-step paths stacked over training seeds, keyed (claim, mark, arm)."""

    frames: list[pd.DataFrame] = field(default_factory=list)
    logs: list[pd.DataFrame] = field(default_factory=list)
    paths: dict = field(default_factory=dict)

    def add_scripted(self, frame: pd.DataFrame, path: dict[str, np.ndarray],
                     train_seeds: int, claim: Claim, mark: str, arm: Arm) -> None:
        """A scripted arm, evaluated once: the same rows for every training seed."""
        self.frames += [_tag(frame.assign(train_seed=s), claim, mark, arm)
                        for s in range(train_seeds)]  # the same per training seed
        self.paths[(claim.key, mark, arm.name)] = path

    def add_trained(self, frame: pd.DataFrame, path: dict[str, np.ndarray], seed: int,
                    claim: Claim, mark: str, arm: Arm) -> None:
        """One training seed's evaluation of a trained arm (its paths stacked)."""
        self.frames.append(_tag(frame.assign(train_seed=seed), claim, mark, arm))
        _stack(self.paths, (claim.key, mark, arm.name), path)


def _train_and_evaluate(got: _Collected, plan: RunPlan, claim: Claim, mark: str, arm: Arm,
                        params: dict[str, Any], seed: int, eval_seeds: list[int],
                        ckpt: Path | None) -> None:
    """One training seed of a PPO arm: train, evaluate; for the claim's focus arm, also
    evaluate the policy it started from (the claim's 'initial policy' arm)."""
    initial, trained, log = _train(params, seed, plan.iterations[claim.scenario], plan.ppo,
                                   ckpt)
    got.logs.append(log.assign(claim=claim.key, mark=mark, arm=arm.name, train_seed=seed))
    frame, path = evaluate_arm(trained, params, eval_seeds)
    got.add_trained(frame, path, seed, claim, mark, arm)
    if arm.name == claim.focus and any(a.policy == "initial" for a in claim.arms):
        frame, path = evaluate_arm(initial, params, eval_seeds)
        got.add_trained(frame, path, seed, claim, mark, Arm("initial policy", "initial"))


def _tag(frame: pd.DataFrame, claim: Claim, mark: str, arm: Arm) -> pd.DataFrame:
    """``frame`` (a fresh copy) with claim, mark and arm as its first columns."""
    frame.insert(0, "arm", arm.name)
    frame.insert(0, "mark", mark)
    frame.insert(0, "claim", claim.key)
    return frame


def _stack(paths: dict, key: tuple, path: dict[str, np.ndarray]) -> None:
    old = paths.get(key)
    paths[key] = path if old is None else {k: np.concatenate([old[k], v])
                                           for k, v in path.items()}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
