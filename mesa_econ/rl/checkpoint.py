"""Checkpoints of all agents' policies: ``policy.safetensors`` + ``policy.json``, never pickle.

Layout: a directory holding the two files, or a file pair given by either file's path
(``run/agents.safetensors`` + ``run/agents.json``).

- ``policy.safetensors``: the policy's ``state_dict`` tensors under their own names, and
  the observation normaliser's float64 statistics as ``obs_normalizer.mean`` /
  ``obs_normalizer.var`` ``[N, obs_dim]``.
- ``policy.json``: ``format`` (``"mesa_econ.policy_checkpoint"``), ``format_version``,
  ``mesa_econ_version``, ``torch_version``, ``policy_class`` (a registry key such as
  ``"actor_critic_ensemble"``), ``policy_kwargs`` (n_agents, obs_dim, act_dim, hidden,
  n_groups, ...), ``tensors`` (name → shape and dtype, checked on load), ``obs_normalizer``
  (null, or its count, clip and epsilon and the names of its two tensors), ``algo``, the
  training ``config``, and what the policy was trained on: ``observation_layout``
  (``[[name, width], ...]``, the model's ``observation_layout()``), ``rewards`` (the
  model's RewardConfig as a dict, profit mark included) and ``horizon`` (the market's H).
  Saved without a model these three are null.

Format versions: 2 (this one) added the training context above, with the time feature in
the observation. A file without ``format_version`` is version 1; version 1 files are
refused with a message to retrain (their observations lack t/H and their rewards marked
holdings at the quote).

Loading checks everything before building anything: a missing or unparsable file, a
missing JSON key, an unknown policy class, a tensor whose name, shape or dtype differs
from what the class and JSON say, non-finite values, or a checkpoint whose n_agents,
obs_dim, act_dim or observation layout differ from the model's all raise ``ValueError``
saying which. A reward configuration or horizon that differs from the model's gives a
``UserWarning`` (the policy runs, but was trained for another objective or episode length).
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer

__all__ = ["FORMAT", "FORMAT_VERSION", "check_model", "checkpoint_paths", "load_ensemble",
           "load_policy", "read_metadata", "register_policy_class", "save_checkpoint",
           "training_context"]

FORMAT = "mesa_econ.policy_checkpoint"
FORMAT_VERSION = 2
REQUIRED_KEYS = ("format", "format_version", "policy_class", "policy_kwargs", "tensors",
                 "obs_normalizer", "algo", "config", "observation_layout", "rewards",
                 "horizon")
_NORM_PREFIX = "obs_normalizer."

# key -> (class, build(kwargs) -> policy, kwargs_of(policy) -> dict)
_REGISTRY: dict[str, tuple[type, Callable[[dict], Any], Callable[[Any], dict]]] = {}
# keys whose module registers them on import: loaded on demand, so that
# EconomyModel(policy="checkpoint:...") works in a process that never imported the trainer
_REGISTERED_BY = {"q_ensemble": "mesa_econ.rl.q_ensemble"}


def register_policy_class(key: str, cls: type, *, build: Callable[[dict], Any] | None = None,
                          kwargs_of: Callable[[Any], dict] | None = None) -> None:
    """Make a policy class savable and loadable under the registry key ``key``.

    Args:
        key: name stored in the JSON (``policy_class``).
        cls: the class (an ``nn.Module`` with ``state_dict``/``load_state_dict``, and
            ``act(obs, generator=None, deterministic=False)`` and ``agent_view(i)``).
        build: makes an instance from the saved kwargs (default ``cls(**kwargs)``); its
            initial weights are overwritten by the saved tensors.
        kwargs_of: the JSON-serialisable constructor kwargs of an instance (default: its
            ``checkpoint_kwargs()`` method). They must include n_agents, obs_dim, act_dim.
    """
    _REGISTRY[key] = (cls, build or (lambda kw: cls(**kw)),
                      kwargs_of or (lambda policy: policy.checkpoint_kwargs()))


def _register_builtin() -> None:
    from mesa_econ.policies import PolicyEnsemble

    def build(kw: dict) -> PolicyEnsemble:  # a throwaway generator: weights get overwritten
        return PolicyEnsemble(**kw, generator=torch.Generator())

    def kwargs_of(p: PolicyEnsemble) -> dict:
        return {"n_agents": p.n_agents, "obs_dim": p.obs_dim, "act_dim": p.act_dim,
                "hidden": list(p.hidden), "n_groups": p.n_groups}

    register_policy_class("actor_critic_ensemble", PolicyEnsemble, build=build,
                          kwargs_of=kwargs_of)


_register_builtin()


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(tensor file, json file)`` of a checkpoint directory or file pair."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        return path.with_suffix(".safetensors"), path.with_suffix(".json")
    return path / "policy.safetensors", path / "policy.json"


def _registry_key(policy: Any) -> str:
    for key, (cls, _, _) in _REGISTRY.items():
        if type(policy) is cls:
            return key
    raise ValueError(f"policy of type {type(policy).__name__} is not registered: call "
                     "register_policy_class(key, cls) first")


def _jsonable(value: Any) -> Any:
    """Config values as JSON (tuples → lists, numpy scalars → Python, others → str)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("mesa_econ")
    except Exception:  # not installed as a distribution (e.g. a source checkout)
        return "unknown"


def training_context(model: Any) -> dict[str, Any]:
    """What a policy trained on ``model`` depends on: ``observation_layout`` (``[[name,
    width], ...]``), ``rewards`` (the RewardConfig as a dict) and ``horizon`` (H)."""
    return {"observation_layout": [[str(name), int(width)]
                                   for name, width in model.observation_layout()],
            "rewards": _jsonable(dataclasses.asdict(model.config.rewards)),
            "horizon": int(model.config.market.horizon)}


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
    key = _registry_key(policy)
    kwargs = _jsonable(_REGISTRY[key][2](policy))
    tensors = {name: t.detach().cpu().contiguous() for name, t in policy.state_dict().items()}
    norm_meta = None
    if obs_normalizer is not None:
        state = obs_normalizer.state()
        tensors[_NORM_PREFIX + "mean"] = torch.from_numpy(state["mean"])
        tensors[_NORM_PREFIX + "var"] = torch.from_numpy(state["var"])
        norm_meta = {"mean": _NORM_PREFIX + "mean", "var": _NORM_PREFIX + "var",
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
            "obs_normalizer": norm_meta, "algo": str(algo), "config": _jsonable(config),
            **context}
    tensor_path, json_path = checkpoint_paths(path)
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tensor_path), metadata={"format": FORMAT})
    json_path.write_text(json.dumps(meta, indent=2, allow_nan=False))
    return json_path


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


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON, validated (ValueError naming what is missing or wrong)."""
    _, json_path = checkpoint_paths(path)
    if not json_path.is_file():
        raise ValueError(f"checkpoint metadata {json_path} not found: expected a directory "
                         "with policy.json + policy.safetensors, or a file pair")
    try:
        meta = json.loads(json_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint metadata {json_path} is not valid JSON "
                         f"(corrupted?): {exc}") from None
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint metadata {json_path} is not a JSON object")
    if "format" in meta and meta["format"] != FORMAT:
        raise ValueError(f"checkpoint format={meta['format']!r} is invalid: expected {FORMAT!r}")
    _check_version(meta.get("format_version", 1), json_path)  # none written: version 1
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ValueError(f"checkpoint metadata {json_path} lacks the key(s) {missing}")
    _check_context(meta, json_path)
    if meta["policy_class"] not in _REGISTRY and meta["policy_class"] in _REGISTERED_BY:
        import importlib

        importlib.import_module(_REGISTERED_BY[meta["policy_class"]])
    if meta["policy_class"] not in _REGISTRY:
        raise ValueError(f"checkpoint policy_class={meta['policy_class']!r} is unknown: "
                         f"expected one of {sorted(_REGISTRY)} (register_policy_class)")
    kwargs = meta["policy_kwargs"]
    if not isinstance(kwargs, dict) or any(k not in kwargs for k in
                                           ("n_agents", "obs_dim", "act_dim")):
        raise ValueError(f"checkpoint policy_kwargs={kwargs!r} must hold n_agents, obs_dim "
                         "and act_dim")
    if not isinstance(meta["tensors"], dict):
        raise ValueError("checkpoint 'tensors' must map tensor names to shape and dtype")
    return meta


def _read_tensors(tensor_path: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    if not tensor_path.is_file():
        raise ValueError(f"checkpoint tensors {tensor_path} not found")
    try:
        tensors = load(tensor_path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types on bad bytes
        raise ValueError(f"checkpoint tensors {tensor_path} are not a valid safetensors "
                         f"file (truncated or corrupted?): {exc}") from None
    declared = meta["tensors"]
    if set(tensors) != set(declared):
        raise ValueError(f"checkpoint tensors {sorted(tensors)} differ from those listed in "
                         f"the JSON {sorted(declared)}")
    for name, t in sorted(tensors.items()):
        spec = declared[name]
        if not isinstance(spec, dict) or list(t.shape) != spec.get("shape") \
                or str(t.dtype).removeprefix("torch.") != spec.get("dtype"):
            raise ValueError(f"checkpoint tensor {name!r} has shape {list(t.shape)} and dtype "
                             f"{t.dtype}: the JSON says {spec!r}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"checkpoint tensor {name!r} holds NaN or inf (corrupted?)")
    return tensors


def _build_policy(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    _, build, _ = _REGISTRY[meta["policy_class"]]
    try:
        policy = build(dict(meta["policy_kwargs"]))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint policy_kwargs={meta['policy_kwargs']!r} are invalid "
                         f"for {meta['policy_class']}: {exc}") from None
    expected = policy.state_dict()
    weights = {k: v for k, v in tensors.items() if not k.startswith(_NORM_PREFIX)}
    if set(weights) != set(expected):
        raise ValueError(f"checkpoint tensors {sorted(weights)} do not match "
                         f"{meta['policy_class']}'s parameters {sorted(expected)}")
    for name, t in sorted(weights.items()):  # sorted: the same first complaint every time
        if t.shape != expected[name].shape or t.dtype != expected[name].dtype:
            raise ValueError(f"checkpoint tensor {name!r} has shape {list(t.shape)} "
                             f"({t.dtype}): expected {list(expected[name].shape)} "
                             f"({expected[name].dtype}) for policy_kwargs "
                             f"{meta['policy_kwargs']}")
    policy.load_state_dict(weights, strict=True)
    return policy


def _build_normalizer(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Any:
    spec = meta["obs_normalizer"]
    if spec is None:
        return None
    keys = ("mean", "var", "count", "clip", "epsilon")
    if not isinstance(spec, dict) or any(k not in spec for k in keys):
        raise ValueError(f"checkpoint obs_normalizer={spec!r} must hold {list(keys)}")
    for k in ("count", "clip", "epsilon"):
        if not isinstance(spec[k], int | float) or not math.isfinite(spec[k]) or spec[k] <= 0:
            raise ValueError(f"checkpoint obs_normalizer {k}={spec[k]!r} is invalid: "
                             "expected a finite real > 0")
    kw = meta["policy_kwargs"]
    shape = (kw["n_agents"], kw["obs_dim"])
    arrays = {}
    for k in ("mean", "var"):
        if spec[k] not in tensors:
            raise ValueError(f"checkpoint obs_normalizer tensor {spec[k]!r} is missing")
        arr = tensors[spec[k]].numpy().astype(np.float64)
        if arr.shape != shape or (k == "var" and np.any(arr < 0)):
            raise ValueError(f"checkpoint obs_normalizer {k} has shape {arr.shape}: expected "
                             f"[n_agents, obs_dim]={list(shape)} (and var >= 0)")
        arrays[k] = arr
    return ObsNormalizer.from_state({**arrays, "count": spec["count"], "clip": spec["clip"],
                                     "epsilon": spec["epsilon"]})


def load_policy(path: str | Path) -> Any:
    """Load a checkpoint's policy (wrapped in a :class:`NormalizedPolicy` if it has one).

    Raises:
        ValueError: missing, corrupted or inconsistent files (the message says which).
    """
    tensor_path, _ = checkpoint_paths(path)
    meta = read_metadata(path)
    tensors = _read_tensors(tensor_path, meta)
    policy = _build_policy(meta, tensors)
    normalizer = _build_normalizer(meta, tensors)
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
