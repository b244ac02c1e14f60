"""Reinforcement learning for the economy's agents: PPO, Q-learning, noisy actor-critic.

- :class:`PPO` / :class:`PPOConfig` (§6.1) train every agent's actor-critic in one batched
  pass (``mesa_econ.rl.ppo``); the rollout loop, buffer, GAE and normalisers are shared.
- ``ALGORITHMS`` maps the CLI's ``--algo`` names to algorithm classes, each imported only
  when looked up, so this package imports even where a module is absent or broken. The
  package's other names are imported on first access too: ``import mesa_econ.rl`` alone
  does not import torch (``mesa-econ --help`` stays fast).
- Checkpoints (safetensors + JSON) are written by :func:`save_checkpoint` and read by
  :func:`load_policy`; ``EconomyModel(policy="checkpoint:PATH")`` uses
  :func:`load_ensemble`.

Every algorithm class follows the same interface: ``Algo(model, config)``,
``train(iterations, progress=True) -> DataFrame``, ``act(obs, deterministic=False)``,
``policy()``, ``save(path)``. All three train episodically by default (episodes of
``episode_length`` = H = 128 steps, the market's ``horizon``, each on a fresh market of the
same population, terminal at the end; see :mod:`mesa_econ.rl.trainer`), and
:func:`evaluate_policy` evaluates on H-step episodes of held-out noise seeds;
:func:`paired_difference` and :func:`verdict` compare two arms seed by seed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mesa_econ._lazy import lazy_names

if TYPE_CHECKING:
    from mesa_econ.rl.buffer import RolloutBuffer, compute_gae
    from mesa_econ.rl.checkpoint import (
        load_ensemble,
        load_policy,
        read_metadata,
        register_policy_class,
        save_checkpoint,
    )
    from mesa_econ.rl.evaluate import evaluate_policy, paired_difference, run_policy, verdict
    from mesa_econ.rl.loop import IterationRecord, Learner, train_loop
    from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer, RewardNormalizer
    from mesa_econ.rl.optim import StackedAdam
    from mesa_econ.rl.ppo import PPO, PPOConfig, ppo_update
    from mesa_econ.rl.trainer import Trainer

# Public name -> the module defining it, imported on first access (PEP 562), so that
# ``from mesa_econ.rl import ALGORITHMS`` (the CLI's --algo choices) does not import torch.
_LAZY = {
    **dict.fromkeys(("RolloutBuffer", "compute_gae"), "mesa_econ.rl.buffer"),
    **dict.fromkeys(("load_ensemble", "load_policy", "read_metadata",
                     "register_policy_class", "save_checkpoint"), "mesa_econ.rl.checkpoint"),
    **dict.fromkeys(("evaluate_policy", "paired_difference", "run_policy", "verdict"),
                    "mesa_econ.rl.evaluate"),
    **dict.fromkeys(("NormalizedPolicy", "ObsNormalizer", "RewardNormalizer"),
                    "mesa_econ.rl.normalize"),
    **dict.fromkeys(("IterationRecord", "Learner", "train_loop"), "mesa_econ.rl.loop"),
    "StackedAdam": "mesa_econ.rl.optim",
    **dict.fromkeys(("PPO", "PPOConfig", "ppo_update"), "mesa_econ.rl.ppo"),
    "Trainer": "mesa_econ.rl.trainer",
}


__getattr__, __dir__ = lazy_names(globals(), _LAZY)


__all__ = [
    "ALGORITHMS",
    "PPO",
    "IterationRecord",
    "Learner",
    "NormalizedPolicy",
    "ObsNormalizer",
    "PPOConfig",
    "RewardNormalizer",
    "RolloutBuffer",
    "StackedAdam",
    "Trainer",
    "compute_gae",
    "config_class",
    "evaluate_policy",
    "load_ensemble",
    "load_policy",
    "paired_difference",
    "ppo_update",
    "read_metadata",
    "register_policy_class",
    "run_policy",
    "save_checkpoint",
    "train_loop",
    "verdict",
]

_ALGORITHM_METHODS = ("train", "act", "policy", "save")


def _find_algorithm(module_name: str) -> type:
    """The algorithm class of a module: its ``ALGORITHM`` attribute, or the one class
    defined there with ``train``, ``act``, ``policy`` and ``save`` methods."""
    module = importlib.import_module(module_name)
    declared = getattr(module, "ALGORITHM", None)
    if declared is not None:
        return declared
    found = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if cls.__module__ == module.__name__
             and all(callable(getattr(cls, m, None)) for m in _ALGORITHM_METHODS)]
    if len(found) != 1:
        raise ImportError(f"{module_name} defines {len(found)} algorithm classes "
                          f"({[c.__name__ for c in found]}): set ALGORITHM = <class> there")
    return found[0]


class _Algorithms(Mapping[str, type]):
    """``--algo`` name → algorithm class, importing each module on first lookup."""

    _modules: ClassVar[dict[str, str]] = {"ppo": "mesa_econ.rl.ppo",
                                          "qlearning": "mesa_econ.rl.qlearning",
                                          "noisy_ac": "mesa_econ.rl.noisy_ac"}

    def __init__(self) -> None:
        self._cache: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        if name not in self._modules:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = _find_algorithm(self._modules[name])
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        return f"ALGORITHMS({list(self._modules)})"


ALGORITHMS: Mapping[str, type] = _Algorithms()
"""``{"ppo": PPO, "qlearning": ..., "noisy_ac": ...}``, each module imported on first lookup."""


def config_class(algo: type) -> type:
    """The config dataclass of an algorithm class: its ``config_class`` attribute, else the
    type annotation of its ``config`` constructor argument."""
    declared = getattr(algo, "config_class", None)
    if declared is not None:
        return declared
    import typing

    hints = typing.get_type_hints(algo.__init__)
    hint: Any = hints.get("config")
    for candidate in (hint, *typing.get_args(hint)):
        if inspect.isclass(candidate) and candidate is not type(None):
            return candidate
    raise ValueError(f"cannot tell the config class of {algo.__name__}: give it a "
                     "config_class attribute")
