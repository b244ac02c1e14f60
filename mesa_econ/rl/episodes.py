"""The episodic training protocol: episode length and horizon checks, seed streams, markets.

Training is episodic by default: an episode is ``episode_length`` = H = 128 steps, the
evaluation horizon and the market's ``horizon`` (agents observe min(t, H)/H, so the two
must agree: :func:`check_horizon`). Every episode runs on a fresh market at t = 0 with the
training model's population (graph and needs) and a new noise seed (:func:`fresh_env`,
:func:`first_env`). A trainer's seed spawns independent streams (:func:`training_generators`)
for minibatch order, the episodes' noise seeds and policy sampling, so market noise never
depends on how a policy samples.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, NamedTuple

import numpy as np
import torch

from mesa_econ._validation import INT_MAX, fail

__all__ = ["TrainingStreams", "check_episode_length", "check_horizon", "first_env",
           "fresh_env", "training_generators"]


def check_episode_length(episode_length: Any, num_steps: int) -> None:
    """Raise ``ValueError`` unless ``episode_length`` is None or a positive multiple of
    ``num_steps`` (market rebuilds fall on rollout boundaries)."""
    if episode_length is None:
        return
    if isinstance(episode_length, bool) or not isinstance(episode_length, numbers.Integral) \
            or not num_steps <= episode_length <= INT_MAX or episode_length % num_steps:
        fail("episode_length", episode_length,
             f"None or a positive multiple of num_steps={num_steps} (int64)")


def check_horizon(model: Any, episode_length: int | None) -> None:
    """Raise ``ValueError`` unless an episodic trainer's ``episode_length`` equals the
    market's ``horizon`` H (the observation's time feature is min(t, H) / H)."""
    if episode_length is None:
        return
    horizon = model.config.market.horizon
    if horizon != episode_length:
        fail("episode_length", episode_length,
             f"the market's horizon={horizon}: the agents observe min(t, H)/H, so an episode "
             f"must last H steps (build the model with horizon={episode_length} or train "
             f"with episode_length={horizon})")


class TrainingStreams(NamedTuple):
    """The trainer's independent random streams, spawned from one seed."""

    shuffle: torch.Generator
    """Minibatch order (PPO's permutations, Q-learning's replay samples)."""
    env_seeds: np.random.Generator
    """Noise seeds of the episodes' fresh markets."""
    sampling: torch.Generator
    """Policy sampling during training (action noise, ε-greedy, parameter noise ξ)."""


def _torch_generator(seq: np.random.SeedSequence) -> torch.Generator:
    return torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0]
                                             >> np.uint64(1)))


def training_generators(seed: int | None, model: Any) -> TrainingStreams:
    """The trainer's own streams: ``SeedSequence(seed).spawn(3)``, see :class:`TrainingStreams`.

    Seeded from ``seed``; with ``seed=None`` one integer is drawn from ``model.rng``, so a
    seeded model still trains reproducibly.
    """
    if seed is None:
        seed = int(model.rng.integers(2**62))
    shuffle, env_seeds, sampling = np.random.SeedSequence(int(seed)).spawn(3)
    return TrainingStreams(_torch_generator(shuffle), np.random.default_rng(env_seeds),
                           _torch_generator(sampling))


def fresh_env(model: Any, seed: int) -> Any:
    """A new market at t = 0 with ``model``'s configuration and population, noise ``seed``.

    The population (graph and needs) is the model's: its ``population_seed`` goes into the
    market config, and its demand array and generated graph are passed on as they are
    (the population generator draws the graph after the needs only when the needs are
    drawn, so the seed alone would not reproduce a generated graph next to a demand
    array); only the market noise (the new model's ``rng``) differs. The new model uses
    the 'hold' policy (the trainer submits every order) and is returned without any
    learned policy attached.
    """
    from mesa_econ.config import PolicyConfig

    cfg = model.config
    pc = PolicyConfig(kind="hold", hidden=cfg.policy.hidden, n_groups=cfg.policy.n_groups)
    graph, graph_params = cfg.market.graph, cfg.market.graph_params
    if isinstance(graph, str) and graph != "complete":  # a generated graph: keep this one
        graph, graph_params = model.graph, {}  # (a given graph takes no parameters)
    market = dataclasses.replace(cfg.market, population_seed=model.population_seed,
                                 graph=graph, graph_params=graph_params)
    return type(model).from_config(dataclasses.replace(cfg, market=market, policy=pc),
                                   rng=int(seed), demand=model.demand)


def first_env(model: Any, episode_length: int | None, env_seeds: np.random.Generator) -> Any:
    """The market of the first episode: ``model`` itself when it is at t = 0 or training is
    open-ended, else a :func:`fresh_env` with a seed from ``env_seeds``."""
    if episode_length is None or model.t == 0:
        return model
    return fresh_env(model, int(env_seeds.integers(2**62)))
