"""A policy profile and the game it was trained on: the objects the Nash gap is about. §7.3.

A :class:`Profile` is the N agents' PPO policies (one per agent), their observation
normaliser and the keyword arguments of the market they were trained on: the scenario's
market, the checkpoint's reward configuration, horizon and N, and the population seed.
:func:`load_profile` builds one from a checkpoint; :func:`episode_returns` plays it (or a
deviation from it) on noise seeds with common random numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mesa_econ.rl.normalize import NormalizedPolicy, ObsNormalizer
from mesa_econ.rl.ppo import PPOConfig

__all__ = ["REWARD_KEYS", "Profile", "episode_returns", "load_profile"]

REWARD_KEYS = ("profit_weight", "omega", "rho", "cooperative_scope", "use_value",
               "profit_mark", "stability")

@dataclass
class Profile:
    """A policy profile and the game it was trained on."""

    ensemble: Any
    """The agents' :class:`~mesa_econ.policies.PolicyEnsemble`, one policy per agent."""
    obs_normalizer: ObsNormalizer | None
    """Its observation normaliser (frozen during the analysis), or None."""
    params: dict[str, Any]
    """EconomyModel keyword arguments of the game: scenario, rewards, population_seed."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """PPO settings of the best responses (the profile's own training settings)."""
    source: str = "memory"
    """Where the profile came from (a checkpoint path), for the report."""
    scenario: str | None = None
    """The scenario whose market the game is (None: built by hand), for the report."""

    def __post_init__(self) -> None:
        from mesa_econ.policies import PolicyEnsemble

        if not isinstance(self.ensemble, PolicyEnsemble):
            raise ValueError(f"ensemble={type(self.ensemble).__name__} is invalid: expected "
                             "a PolicyEnsemble (a PPO profile)")
        if self.ensemble.n_groups != self.ensemble.n_agents:
            raise ValueError(f"n_groups={self.ensemble.n_groups} is invalid: agents share "
                             "policies, and a unilateral deviation needs one policy per "
                             f"agent (n_groups = n_agents = {self.ensemble.n_agents})")

    @property
    def n_agents(self) -> int:
        return int(self.ensemble.n_agents)

    @property
    def horizon(self) -> int:
        return int(self.params.get("horizon", 128))

    @property
    def rewards(self) -> dict[str, Any]:
        """The reward configuration every agent maximises (the profile's, as trained)."""
        from mesa_econ.config import RewardConfig

        defaults = dataclasses.asdict(RewardConfig())
        return {k: self.params.get(k, defaults[k]) for k in REWARD_KEYS}

    def policy(self, ensemble: Any = None) -> Any:
        """``ensemble`` (default the profile's) acting on raw observations."""
        ens = self.ensemble if ensemble is None else ensemble
        return ens if self.obs_normalizer is None else NormalizedPolicy(ens,
                                                                        self.obs_normalizer)

    def model(self, seed: int) -> Any:
        """A fresh market of the game with noise ``seed`` (no policy attached: 'hold')."""
        from mesa_econ.model import EconomyModel

        return EconomyModel(**{**self.params, "policy": "hold"}, rng=int(seed))

    def digest(self) -> str:
        """A hash of the weights, normaliser statistics and game (the resume key)."""
        h = hashlib.sha256()
        for name, t in sorted(self.ensemble.state_dict().items()):
            h.update(name.encode()), h.update(t.detach().cpu().numpy().tobytes())
        if self.obs_normalizer is not None:
            h.update(self.obs_normalizer.rms.mean.tobytes())
            h.update(self.obs_normalizer.rms.var.tobytes())
        h.update(json.dumps(jsonable(self.params), sort_keys=True).encode())
        return h.hexdigest()[:16]


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value if value is None or isinstance(value, bool | int | float | str) \
        else repr(value)


def _train_summary(checkpoint: str | Path) -> dict[str, Any]:
    """Scenario and population seed of a ``mesa-econ train`` run (``DIR/checkpoint`` beside
    ``DIR/summary.json``), or {} when the checkpoint is not inside one."""
    path = Path(checkpoint).parent / "summary.json"
    try:
        summary = json.loads(path.read_text())
        return {"scenario": summary["scenario"],
                "population_seed": int(summary["protocol"]["population_seed"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def load_profile(checkpoint: str | Path, scenario: str | None = None,
                 population_seed: int | None = None) -> Profile:
    """A PPO checkpoint as a :class:`Profile` of the game it was trained on.

    The game is the scenario's market with the checkpoint's reward configuration (its
    JSON ``rewards``, profit mark included), ``horizon`` and ``n_agents``, on the
    population ``population_seed``. Defaults: the scenario and population seed of the
    ``mesa-econ train`` run holding the checkpoint (its ``summary.json``), else
    ``defi_token_market`` and :data:`mesa_econ.experiments.POPULATION_SEED` (the
    reproduction's). Other market parameters are the scenario's: a profile trained with
    market overrides (``--model theta=...``) needs a Profile built by hand.

    Raises:
        ValueError: a bad checkpoint, one saved without its training context (no
            ``rewards``), not a PPO profile, or one for another market than the scenario.
    """
    from mesa_econ.experiments import POPULATION_SEED
    from mesa_econ.rl.checkpoint import check_model, load_policy, read_metadata
    from mesa_econ.scenarios import scenario_params

    meta = read_metadata(checkpoint)
    if meta["policy_class"] != "actor_critic_ensemble" or meta["algo"] != "ppo":
        raise ValueError(f"checkpoint {checkpoint} holds a {meta['policy_class']!r} trained "
                         f"by {meta['algo']!r}: the Nash gap analysis needs a PPO profile")
    if meta["rewards"] is None or meta["horizon"] is None:
        raise ValueError(f"checkpoint {checkpoint} does not say which rewards or horizon it "
                         "was trained on (saved without a model): the best responses must "
                         "maximise the same reward")
    rewards = {k: v for k, v in meta["rewards"].items() if k in REWARD_KEYS}
    hints = _train_summary(checkpoint)
    scenario = scenario or hints.get("scenario", "defi_token_market")
    if population_seed is None:
        population_seed = hints.get("population_seed", POPULATION_SEED)
    params = scenario_params(scenario, **rewards)
    params.update(n_agents=int(meta["policy_kwargs"]["n_agents"]), horizon=int(meta["horizon"]),
                  population_seed=int(population_seed), collect_every=0)
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    ppo = PPOConfig(**{k: v for k, v in (meta["config"] or {}).items() if k in fields})
    loaded = load_policy(checkpoint)
    ensemble, norm = (loaded.policy, loaded.normalizer) if isinstance(
        loaded, NormalizedPolicy) else (loaded, None)
    profile = Profile(ensemble, norm, params, ppo, source=str(checkpoint), scenario=scenario)
    check_model(meta, profile.model(0), checkpoint)  # layout, sizes: ValueError on mismatch
    return profile


def episode_returns(policy: Any, profile: Profile, seeds: Sequence[int]) -> np.ndarray:
    """Every agent's undiscounted return ``[E, N]``, one H-step episode per noise seed.

    The markets and the policy's action noise come from each seed alone (the model's
    ``rng`` and ``torch_generator``), so two policies run on the same seeds see the same
    market noise and the same Gaussian draws: common random numbers.
    """
    from mesa_econ.rl.evaluate import run_policy

    out = [run_policy(policy, profile.model(int(s)), profile.horizon)["returns"]
           for s in seeds]
    return np.asarray(out, dtype=float)
