"""Loading checkpoints of all agents' policies: ``policy.safetensors`` + ``policy.json``.

Never pickle. Saving is :func:`mesa_econ.rl.checkpoint.save_checkpoint`; loading lives
here, under ``policies/``, because ``EconomyModel(policy="checkpoint:PATH")`` loads a
checkpoint and the model never imports ``rl/``.

Layout: a directory holding the two files, or a file pair given by either file's path
(``run/agents.safetensors`` + ``run/agents.json``).

- ``policy.safetensors``: the policy's ``state_dict`` tensors under their own names, and
  the observation normaliser's float64 statistics as ``obs_normalizer.mean`` /
  ``obs_normalizer.var`` ``[N, obs_dim]``.
- ``policy.json``: ``format`` (``"mesa_econ.policy_checkpoint"``), ``format_version``,
  ``mesa_econ_version``, ``torch_version``, ``policy_class`` (a registry key such as
  ``"actor_critic_ensemble"``), ``policy_kwargs`` (n_agents, obs_dim, act_dim, hidden,
  n_groups, ...), ``tensors`` (name → shape and dtype), ``obs_normalizer`` (null, or its
  count, clip and epsilon and the names of its two tensors), ``algo``, the training
  ``config``, and what the policy was trained on: ``observation_layout`` (``[[name,
  width], ...]``), ``rewards`` (the RewardConfig as a dict) and ``horizon`` (the market's
  H). Saved without a model these three are null.

Format versions: 2 (this one) added the training context above, with the time feature in
the observation. A file without ``format_version`` is version 1; version 1 files are
refused with a message to retrain.

Loading trusts nothing in the files and checks before it allocates, in this order
(file-level checks in :mod:`mesa_econ.policies.checkpoint_io`):

1. the JSON: at most ``MAX_JSON_BYTES``, valid, not nested too deeply, ours
   (``format``), every key present, sizes positive integers;
2. the tensor file's size and safetensors header, read alone (at most
   ``MAX_HEADER_BYTES``): a file larger or smaller than its header plus the tensors
   the JSON declares is refused before it is read, and every header entry (name, dtype,
   shape, byte range) must equal the JSON's;
3. the declared tensors against the policy class's parameters for ``policy_kwargs``
   (computed without building the policy), so that a ``hidden`` or ``n_agents`` the file
   cannot hold is refused before any weight is allocated;
4. only then the tensor data (finite values), the policy and the normaliser.

Every failure is a ``ValueError`` naming the file and what is wrong (``MemoryError``
included); a model/checkpoint mismatch in n_agents, obs_dim, act_dim or the observation
layout is a ``ValueError`` naming both values, and another reward configuration or
horizon a ``UserWarning``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mesa_econ.policies.actor_critic import is_count
from mesa_econ.policies.checkpoint_io import (
    check_tensor_file,
    check_tensor_specs,
    out_of_memory,
    read_json,
    read_tensors,
)
from mesa_econ.policies.normalize import NormalizedPolicy, ObsNormalizer
from mesa_econ.policies.registry import entry as _entry
from mesa_econ.policies.registry import register_policy_class, registered_key

__all__ = ["FORMAT", "FORMAT_VERSION", "NORM_PREFIX", "check_model",
           "checkpoint_paths", "jsonable", "load_ensemble", "load_policy", "read_metadata",
           "register_policy_class", "registered_key", "training_context"]

FORMAT = "mesa_econ.policy_checkpoint"
FORMAT_VERSION = 2
REQUIRED_KEYS = ("format", "format_version", "policy_class", "policy_kwargs", "tensors",
                 "obs_normalizer", "algo", "config", "observation_layout", "rewards",
                 "horizon")
NORM_PREFIX = "obs_normalizer."
def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(tensor file, json file)`` of a checkpoint directory or file pair."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    return path / "policy.safetensors", path / "policy.json"


def _source_paths(path: str | Path) -> tuple[Path, Path]:
    """:func:`checkpoint_paths` for reading: a file that is not one of a pair is refused."""
    path = Path(path)
    if path.suffix not in (".safetensors", ".json") and path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint path {path} is a file but not a checkpoint: expected a "
                         "directory holding policy.json + policy.safetensors, or the .json or "
                         ".safetensors file of a pair")
    return checkpoint_paths(path)


def jsonable(value: Any) -> Any:
    """Config values as JSON (tuples → lists, numpy scalars → Python, others → str)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def training_context(model: Any) -> dict[str, Any]:
    """What a policy trained on ``model`` depends on: ``observation_layout`` (``[[name,
    width], ...]``), ``rewards`` (the RewardConfig as a dict) and ``horizon`` (H)."""
    return {"observation_layout": [[str(name), int(width)]
                                   for name, width in model.observation_layout()],
            "rewards": jsonable(dataclasses.asdict(model.config.rewards)),
            "horizon": int(model.config.market.horizon)}


# ------------------------------------------------------------------ loading


def _check_version(version: Any, json_path: Path) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION \
            or version < 1:
        raise ValueError(f"checkpoint format_version={version!r} is not supported: expected "
                         f"an integer <= {FORMAT_VERSION} (written by a newer mesa_econ?)")
    if version < FORMAT_VERSION:
        raise ValueError(f"checkpoint {json_path} has format_version={version}: this "
                         f"mesa_econ reads format_version={FORMAT_VERSION} only. Version "
                         f"{version} policies saw observations without the time feature t/H "
                         "and were trained on other rewards: retrain the policy "
                         "(`mesa-econ train ...`)")


def _check_context(meta: dict[str, Any], json_path: Path) -> None:
    layout, rewards, horizon = meta["observation_layout"], meta["rewards"], meta["horizon"]
    if layout is not None and (not isinstance(layout, list) or not all(
            isinstance(b, list) and len(b) == 2 and isinstance(b[0], str)
            and isinstance(b[1], int) for b in layout)):
        raise ValueError(f"checkpoint {json_path} observation_layout={layout!r} is invalid: "
                         "expected null or a list of [name, width] pairs")
    if rewards is not None and not isinstance(rewards, dict):
        raise ValueError(f"checkpoint {json_path} rewards={rewards!r} is invalid: expected "
                         "null or the reward configuration as an object")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)):
        raise ValueError(f"checkpoint {json_path} horizon={horizon!r} is invalid: expected "
                         "null or an integer")


def _check_kwargs(kwargs: Any, json_path: Path) -> None:
    if not isinstance(kwargs, dict) or any(k not in kwargs for k in
                                           ("n_agents", "obs_dim", "act_dim")):
        raise ValueError(f"checkpoint policy_kwargs={kwargs!r} must hold n_agents, obs_dim "
                         "and act_dim")
    for key in ("n_agents", "obs_dim", "act_dim"):
        if not is_count(kwargs[key]):
            raise ValueError(f"checkpoint {json_path} policy_kwargs {key}={kwargs[key]!r} "
                             "is invalid: expected an integer >= 1")
    hidden = kwargs.get("hidden", [1])
    if not isinstance(hidden, list) or not hidden or not all(is_count(h) for h in hidden):
        raise ValueError(f"checkpoint {json_path} policy_kwargs hidden={hidden!r} is "
                         "invalid: expected a non-empty list of integers >= 1")


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON, validated (ValueError naming what is missing or wrong).

    ``path`` is a checkpoint directory or either file of a pair; any other existing file
    is refused as not a checkpoint, and so is a JSON file that is not ours.
    """
    _, json_path = _source_paths(path)
    if not json_path.is_file():
        raise ValueError(f"checkpoint metadata {json_path} not found: expected a directory "
                         "with policy.json + policy.safetensors, or a file pair")
    meta = read_json(json_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format", "missing") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"checkpoint metadata {json_path} is not a mesa_econ policy "
                         f"checkpoint: format={found!r} is invalid: expected {FORMAT!r}")
    _check_version(meta.get("format_version", 1), json_path)  # none written: version 1
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata {json_path} lacks the key(s) {missing}")
    _check_context(meta, json_path)
    _entry(meta["policy_class"])
    _check_kwargs(meta["policy_kwargs"], json_path)
    check_tensor_specs(meta["tensors"], json_path)
    return meta


def _check_declared(meta: dict[str, Any], json_path: Path) -> None:
    """The JSON's tensors against the class's parameters for ``policy_kwargs``, and the
    normaliser's two tensors, all before anything is built."""
    declared, kwargs = meta["tensors"], meta["policy_kwargs"]
    values = sum(math.prod(spec["shape"]) for spec in declared.values())
    for key, value in sorted(kwargs.items()):  # every size shows in some tensor's shape
        sizes = value if isinstance(value, list) else [value]
        if any(is_count(v) and v > values for v in sizes):
            raise ValueError(f"checkpoint {json_path} policy_kwargs {key}={value!r} is "
                             "invalid: expected sizes its tensors can hold (they hold "
                             f"{values} values in all)")
    try:
        expected = _entry(meta["policy_class"]).shapes(dict(kwargs))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint policy_kwargs={kwargs!r} are invalid for "
                         f"{meta['policy_class']}: {exc}") from None
    except (NotImplementedError, RuntimeError):  # a constructor the meta device cannot run:
        expected = None  # checked after building instead (register_policy_class(shapes=))
    weights = {k: v for k, v in declared.items() if not k.startswith(NORM_PREFIX)}
    if expected is not None and set(weights) != set(expected):
        raise ValueError(f"checkpoint tensors {sorted(weights)} do not match "
                         f"{meta['policy_class']}'s parameters {sorted(expected)}")
    for name in sorted(weights) if expected is not None else ():  # sorted: same first error
        shape, dtype = expected[name]
        if weights[name]["shape"] != list(shape) or weights[name]["dtype"] != dtype:
            raise ValueError(f"checkpoint tensor {name!r} has shape {weights[name]['shape']} "
                             f"({weights[name]['dtype']}): expected {list(shape)} ({dtype}) "
                             f"for policy_kwargs {kwargs}")
    spec = meta["obs_normalizer"]
    keys = ("mean", "var", "count", "clip", "epsilon")
    if spec is None:
        return
    if not isinstance(spec, dict) or any(k not in spec for k in keys):
        raise ValueError(f"checkpoint obs_normalizer={spec!r} must hold {list(keys)}")
    for k in ("count", "clip", "epsilon"):
        if not isinstance(spec[k], int | float) or not math.isfinite(spec[k]) or spec[k] <= 0:
            raise ValueError(f"checkpoint obs_normalizer {k}={spec[k]!r} is invalid: "
                             "expected a finite real > 0")
    shape = [kwargs["n_agents"], kwargs["obs_dim"]]
    for k in ("mean", "var"):
        if not isinstance(spec[k], str) or spec[k] not in declared:
            raise ValueError(f"checkpoint obs_normalizer tensor {spec[k]!r} is missing")
        if declared[spec[k]]["shape"] != shape:
            raise ValueError(f"checkpoint obs_normalizer {k} has shape "
                             f"{declared[spec[k]]['shape']}: expected [n_agents, obs_dim]="
                             f"{shape}")


def _build_policy(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    try:
        policy = _entry(meta["policy_class"]).build(dict(meta["policy_kwargs"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint policy_kwargs={meta['policy_kwargs']!r} are invalid "
                         f"for {meta['policy_class']}: {exc}") from None
    expected = policy.state_dict()
    weights = {k: v for k, v in tensors.items() if not k.startswith(NORM_PREFIX)}
    if set(weights) != set(expected):  # a shapes() function that disagrees with build()
        raise ValueError(f"checkpoint tensors {sorted(weights)} do not match "
                         f"{meta['policy_class']}'s parameters {sorted(expected)}")
    for name, t in sorted(weights.items()):
        if t.shape != expected[name].shape or t.dtype != expected[name].dtype:
            raise ValueError(f"checkpoint tensor {name!r} has shape {list(t.shape)} "
                             f"({t.dtype}): expected {list(expected[name].shape)} "
                             f"({expected[name].dtype}) for policy_kwargs "
                             f"{meta['policy_kwargs']}")
    policy.load_state_dict(weights, strict=True)
    return policy


def _build_normalizer(meta: dict[str, Any],
                      tensors: dict[str, torch.Tensor]) -> ObsNormalizer | None:
    spec = meta["obs_normalizer"]
    if spec is None:
        return None
    arrays = {k: tensors[spec[k]].numpy().astype(np.float64) for k in ("mean", "var")}
    if np.any(arrays["var"] < 0):
        raise ValueError("checkpoint obs_normalizer var holds negative values (corrupted?)")
    return ObsNormalizer.from_state({**arrays, "count": spec["count"], "clip": spec["clip"],
                                     "epsilon": spec["epsilon"]})


def load_policy(path: str | Path) -> Any:
    """Load a checkpoint's policy (wrapped in a :class:`NormalizedPolicy` if it has one).

    Everything declared is checked against everything else before the tensor data is read
    or the policy allocated (see the module docstring).

    Raises:
        ValueError: not a checkpoint, missing, corrupted, oversized or inconsistent files,
            or too little memory (the message names the file and says which).
    """
    meta = read_metadata(path)
    tensor_path, json_path = _source_paths(path)
    check_tensor_file(tensor_path, meta["tensors"], check_tensor_specs(meta["tensors"],
                                                                       json_path))
    _check_declared(meta, json_path)
    tensors = read_tensors(tensor_path, meta["tensors"])
    try:
        policy = _build_policy(meta, tensors)
        normalizer = _build_normalizer(meta, tensors)
    except MemoryError:
        raise out_of_memory(tensor_path, "building the policy") from None
    return policy if normalizer is None else NormalizedPolicy(policy, normalizer)


def check_model(meta: dict[str, Any], model: Any, path: str | Path) -> None:
    """Check a checkpoint's metadata against the model it is to drive.

    Raises ``ValueError`` (naming the field and both values) when n_agents, obs_dim,
    act_dim (= n_assets) or the observation layout differ; warns (``UserWarning``) when
    the reward configuration or the horizon differ.
    """
    kw = meta["policy_kwargs"]
    for name, have in (("n_agents", model.n_agents), ("obs_dim", model.obs_dim),
                       ("act_dim", model.n_assets)):
        if kw[name] != have:
            raise ValueError(f"checkpoint {path} has {name}={kw[name]!r} but the model "
                             f"has {name}={have}: train a checkpoint for this market")
    context = training_context(model)
    saved = meta["observation_layout"]
    if saved is not None and saved != context["observation_layout"]:
        raise ValueError(f"checkpoint {path} has observation_layout={saved!r} but the model "
                         f"has observation_layout={context['observation_layout']!r}: the "
                         "policy reads observations of another shape; train a checkpoint "
                         "for this market")
    rewards = meta["rewards"]
    if rewards is not None:
        differ = sorted(k for k in set(rewards) | set(context["rewards"])
                        if rewards.get(k) != context["rewards"].get(k))
        if differ:
            pairs = ", ".join(f"{k}={rewards.get(k)!r} (model: {context['rewards'].get(k)!r})"
                              for k in differ)
            warnings.warn(f"checkpoint {path} was trained with the reward configuration "
                          f"{pairs}: the policy runs, but it learned another objective",
                          UserWarning, stacklevel=3)
    if meta["horizon"] is not None and meta["horizon"] != context["horizon"]:
        warnings.warn(f"checkpoint {path} was trained with horizon={meta['horizon']} but the "
                      f"model has horizon={context['horizon']}: its time feature t/H means "
                      "another point of the episode", UserWarning, stacklevel=3)


def load_ensemble(path: str | Path, model: Any = None) -> Any:
    """Load a checkpoint to drive ``model`` (``EconomyModel(policy="checkpoint:PATH")``).

    Checks the checkpoint against the model before loading any tensor
    (:func:`check_model`: n_agents, obs_dim, act_dim and the observation layout must
    match; a different reward configuration or horizon warns), and makes the model's
    ``torch_generator`` the policy's default generator.

    Raises:
        ValueError: a mismatch (naming the field and both values) or a bad file.
    """
    meta = read_metadata(path)
    if model is not None:
        check_model(meta, model, path)
    policy = load_policy(path)
    inner = policy.policy if isinstance(policy, NormalizedPolicy) else policy
    if model is not None and hasattr(inner, "generator"):
        inner.generator = model.torch_generator
    return policy
