"""Saving checkpoints of all agents' policies: ``policy.safetensors`` + ``policy.json``.

The format and its loading live in :mod:`mesa_econ.policies.checkpoint` (the model loads
checkpoints and never imports ``rl/``); this module writes them, and re-exports the loading
names (``load_policy``, ``load_ensemble``, ``read_metadata``, ``check_model``,
``checkpoint_paths``, ``register_policy_class``, ``training_context``, ``FORMAT``,
``FORMAT_VERSION``) so that ``mesa_econ.rl.checkpoint`` keeps working as before.
Never pickle.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from mesa_econ.policies.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    NORM_PREFIX,
    check_model,
    checkpoint_paths,
    jsonable,
    load_ensemble,
    load_policy,
    read_metadata,
    register_policy_class,
    registered_key,
    training_context,
)
from mesa_econ.policies.normalize import NormalizedPolicy, ObsNormalizer
from mesa_econ.policies.registry import entry

__all__ = ["FORMAT", "FORMAT_VERSION", "check_model", "checkpoint_paths", "load_ensemble",
           "load_policy", "read_metadata", "register_policy_class", "save_checkpoint",
           "training_context"]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mesa_econ")
    except Exception:  # not installed as a distribution (e.g. a source checkout)
        return "unknown"


def save_checkpoint(policy: Any, path: str | Path, *, algo: str, config: Any = None,
                    obs_normalizer: ObsNormalizer | None = None,
                    model: Any = None) -> Path:
    """Write ``policy`` (and its observation normaliser) as safetensors + JSON.

    Args:
        policy: a registered policy object, or a :class:`NormalizedPolicy` around one (its
            normaliser is saved unless ``obs_normalizer`` is given).
        path: a directory (created) or a ``.safetensors``/``.json`` file path of the pair.
        algo: name of the training algorithm (e.g. ``"ppo"``).
        config: the training config (a dict or a dataclass), stored as JSON.
        obs_normalizer: the observation normaliser the policy was trained with.
        model: the model the policy was trained on: its observation layout, reward
            configuration and horizon are stored and checked on loading
            (:func:`training_context`). None: stored as null, nothing to check.

    Returns:
        The path of the JSON file.
    """
    from safetensors.torch import save_file

    if isinstance(policy, NormalizedPolicy):
        obs_normalizer = obs_normalizer or policy.normalizer
        policy = policy.policy
    key = registered_key(policy)
    kwargs = jsonable(entry(key).kwargs_of(policy))
    tensors = {name: t.detach().cpu().contiguous() for name, t in policy.state_dict().items()}
    norm_meta = None
    if obs_normalizer is not None:
        state = obs_normalizer.state()
        tensors[NORM_PREFIX + "mean"] = torch.from_numpy(state["mean"])
        tensors[NORM_PREFIX + "var"] = torch.from_numpy(state["var"])
        norm_meta = {"mean": NORM_PREFIX + "mean", "var": NORM_PREFIX + "var",
                     "count": state["count"], "clip": state["clip"],
                     "epsilon": state["epsilon"]}
    if config is not None and not isinstance(config, dict):
        config = dataclasses.asdict(config)
    context = (training_context(model) if model is not None
               else {"observation_layout": None, "rewards": None, "horizon": None})
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "mesa_econ_version": _version(), "torch_version": torch.__version__,
            "policy_class": key, "policy_kwargs": kwargs,
            "tensors": {k: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
                        for k, t in tensors.items()},
            "obs_normalizer": norm_meta, "algo": str(algo), "config": jsonable(config),
            **context}
    tensor_path, json_path = checkpoint_paths(path)
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tensor_path), metadata={"format": FORMAT})
    json_path.write_text(json.dumps(meta, indent=2, allow_nan=False))
    return json_path
