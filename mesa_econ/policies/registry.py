"""Registry of the policy classes a checkpoint can hold (``policy_class`` in its JSON).

Each entry says how to build the class from the saved ``policy_kwargs``, how to get those
kwargs from an instance, and which state-dict shapes the kwargs imply, so that a loader can
check a file's tensors before allocating anything. ``"actor_critic_ensemble"``
(:class:`~mesa_econ.policies.PolicyEnsemble`) is built in; ``"q_ensemble"`` registers
itself when :mod:`mesa_econ.policies.q_ensemble` is imported (done on demand by
:func:`entry`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from mesa_econ.policies.actor_critic import check_architecture, is_count, layer_specs

__all__ = ["PolicyClass", "Shapes", "entry", "register_policy_class", "registered_key"]

Shapes = dict[str, tuple[list[int], str]]


class PolicyClass(NamedTuple):
    """A registered policy class: how to build it, describe it and size its tensors."""

    cls: type
    build: Callable[[dict], Any]
    kwargs_of: Callable[[Any], dict]
    shapes: Callable[[dict], Shapes]


_REGISTRY: dict[str, PolicyClass] = {}
# keys whose module registers them on import: loaded on demand, so that
# EconomyModel(policy="checkpoint:...") works in a process that never imported the trainer
_REGISTERED_BY = {"q_ensemble": "mesa_econ.policies.q_ensemble"}


def _meta_shapes(build: Callable[[dict], Any]) -> Callable[[dict], Shapes]:
    """State-dict shapes of ``build(kwargs)`` built on the meta device (no memory)."""
    def shapes(kwargs: dict) -> Shapes:
        with torch.device("meta"):
            policy = build(kwargs)
        return {k: (list(v.shape), str(v.dtype).removeprefix("torch."))
                for k, v in policy.state_dict().items()}
    return shapes


def register_policy_class(key: str, cls: type, *, build: Callable[[dict], Any] | None = None,
                          kwargs_of: Callable[[Any], dict] | None = None,
                          shapes: Callable[[dict], Shapes] | None = None) -> None:
    """Make a policy class savable and loadable under the registry key ``key``.

    Args:
        key: name stored in the JSON (``policy_class``).
        cls: the class (an ``nn.Module`` with ``state_dict``/``load_state_dict``, and
            ``act(obs, generator=None, deterministic=False)`` and ``agent_view(i)``).
        build: makes an instance from the saved kwargs (default ``cls(**kwargs)``); its
            initial weights are overwritten by the saved tensors.
        kwargs_of: the JSON-serialisable constructor kwargs of an instance (default: its
            ``checkpoint_kwargs()`` method). They must include n_agents, obs_dim, act_dim.
        shapes: ``{name: (shape, dtype)}`` of the state dict for the saved kwargs, checked
            against the file before anything is built (default: ``build`` run on the
            meta device, which allocates nothing). Give it when the constructor cannot
            run there; without either, the shapes are checked only after building.
    """
    build = build or (lambda kw: cls(**kw))
    _REGISTRY[key] = PolicyClass(cls, build,
                                 kwargs_of or (lambda policy: policy.checkpoint_kwargs()),
                                 shapes or _meta_shapes(build))


def _ensemble_shapes(kw: dict) -> Shapes:
    """State-dict shapes of ``PolicyEnsemble(**kw)``, computed without building it."""
    n_agents, obs_dim, act_dim = kw["n_agents"], kw["obs_dim"], kw["act_dim"]
    hidden = check_architecture(obs_dim, act_dim, kw.get("hidden", (64, 64)))
    groups = kw.get("n_groups")
    groups = n_agents if groups is None else groups
    if not is_count(groups, 1, n_agents):
        raise ValueError(f"n_groups={groups!r} is invalid: expected an integer in "
                         f"[1, n_agents={n_agents}]")
    out: Shapes = {}
    index = {"critic": 0, "actor": 0}
    for net, d_in, d_out, _ in layer_specs(obs_dim, act_dim, hidden):
        k = index[net]
        out[f"{net}_w.{k}"] = ([groups, d_in, d_out], "float32")
        out[f"{net}_b.{k}"] = ([groups, 1, d_out], "float32")
        index[net] = k + 1
    out["log_std"] = ([groups, act_dim], "float32")
    out["group_of"] = ([n_agents], "int64")
    return out


def _register_builtin() -> None:
    from mesa_econ.policies.ensemble import PolicyEnsemble

    def build(kw: dict) -> PolicyEnsemble:  # a throwaway generator: weights get overwritten
        return PolicyEnsemble(**kw, generator=torch.Generator())

    def kwargs_of(p: PolicyEnsemble) -> dict:
        return {"n_agents": p.n_agents, "obs_dim": p.obs_dim, "act_dim": p.act_dim,
                "hidden": list(p.hidden), "n_groups": p.n_groups}

    register_policy_class("actor_critic_ensemble", PolicyEnsemble, build=build,
                          kwargs_of=kwargs_of, shapes=_ensemble_shapes)


_register_builtin()


def entry(key: str) -> PolicyClass:
    """The registered :class:`PolicyClass` under ``key`` (importing its module if known)."""
    if key not in _REGISTRY and key in _REGISTERED_BY:
        import importlib

        importlib.import_module(_REGISTERED_BY[key])
    if key not in _REGISTRY:
        raise ValueError(f"checkpoint policy_class={key!r} is unknown: expected one of "
                         f"{sorted(_REGISTRY)} (register_policy_class)")
    return _REGISTRY[key]


def registered_key(policy: Any) -> str:
    """The registry key of ``policy``'s class (ValueError if it is not registered)."""
    for key, entry in _REGISTRY.items():
        if type(policy) is entry.cls:
            return key
    raise ValueError(f"policy of type {type(policy).__name__} is not registered: call "
                     "register_policy_class(key, cls) first")
