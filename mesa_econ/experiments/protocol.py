"""The §9 protocol: claims, arms, budgets, seeds. Implements §9.

What the reproduction runs, as data: the three claims (:data:`CLAIMS`) with their arms and
targets, the budgets (:class:`RunPlan`), the fixed population seed and the held-out
evaluation seeds, and the hash of all of it that a report carries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mesa_econ.scenarios import scenario_params

PROFIT_MARKS = ("liquidation", "quote")
POPULATION_SEED = 20_261_206
"""Seed of every claim's population (graph and needs): fixed, stated, not tuned."""
EVAL_SEED_BASE = 1_000_000
"""Held-out evaluation noise seeds are EVAL_SEED_BASE + k; training draws its episode
seeds from the training seed's own generator, far from these."""


@dataclass(frozen=True)
class Arm:
    """One way of driving the agents: a scripted policy or a PPO profile trained with
    the given reward overrides."""

    name: str
    policy: str
    """'ppo' (trained), 'initial' (the PPO profile before training) or a scripted kind."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Model keyword overrides of the scenario (reward terms), used in training and
    evaluation alike."""

    @property
    def trained(self) -> bool:
        return self.policy in ("ppo", "initial")


@dataclass(frozen=True)
class Claim:
    """A §9 claim: the scenario, the arms, the metric and the paper's target."""

    key: str
    scenario: str
    paper: str
    """The paper's words."""
    metric: str
    """'volatility', 'utilisation' or 'recovery_time' (see :func:`evaluate_arm`)."""
    arms: tuple[Arm, ...]
    focus: str
    """The arm the claim is about."""
    baseline: str | None
    """The arm it is compared with (None: an absolute target)."""
    target: float
    """Relative reduction (volatility), level (utilisation) or steps (recovery)."""


_STAB_SHARED = Arm("PPO stability (shared)", "ppo", {"stability": "shared"})
_STAB_ATTR = Arm("PPO stability (attributed)", "ppo", {"stability": "attributed"})
_PROFIT = Arm("PPO profit only", "ppo", {"omega": 0.0})
_HOLD = Arm("hold (no trading)", "hold")
_RANDOM = Arm("random (clipped)", "random_clipped")

CLAIMS: tuple[Claim, ...] = (
    Claim("defi_volatility", "defi_token_market",
          "DeFi token market, 50 agents, exponential curve, PPO: 30% volatility reduction",
          "volatility",
          (_STAB_ATTR, _STAB_SHARED, _PROFIT, Arm("initial policy", "initial"),
           Arm("informed (scripted)", "informed"), _HOLD, _RANDOM),
          focus=_STAB_ATTR.name, baseline=_PROFIT.name, target=0.30),
    Claim("resource_utilisation", "resource_network",
          "Resource network, 100 agents, sigmoid pricing, cooperative rewards: 85% "
          "utilisation efficiency", "utilisation",
          (Arm("PPO cooperative", "ppo", {"rho": 0.2, "cooperative_scope": "neighbours"}),
           Arm("PPO profit", "ppo", {"rho": 0.0}), Arm("need-aware (scripted)", "need_aware"),
           _RANDOM, _HOLD),
          focus="PPO cooperative", baseline="PPO profit", target=0.85),
    Claim("shock_recovery", "shock_recovery",
          "Shock recovery: prices stabilise within 20 steps of a spike", "recovery_time",
          (Arm("PPO", "ppo"), Arm("informed (scripted)", "informed"), _RANDOM, _HOLD),
          focus="PPO", baseline=_HOLD.name, target=20.0),
)
ARMS = {claim.key: claim.arms for claim in CLAIMS}


@dataclass(frozen=True)
class RunPlan:
    """How much to run: ``quick`` (minutes, a smoke reproduction) or ``full``."""

    train_seeds: int = 5
    eval_seeds: int = 10
    iterations: dict[str, int] = field(default_factory=lambda: {
        "defi_token_market": 150, "resource_network": 150, "shock_recovery": 100})
    ppo: dict[str, Any] = field(default_factory=lambda: {"learning_rate": 1e-3})

    @classmethod
    def quick(cls, seeds: int | None = None) -> RunPlan:
        return cls(train_seeds=seeds or 2, eval_seeds=4, iterations={
            "defi_token_market": 60, "resource_network": 25, "shock_recovery": 40})

    @classmethod
    def full(cls, seeds: int | None = None) -> RunPlan:
        if seeds is not None and seeds < 5:
            raise ValueError(f"seeds={seeds} is invalid: the full run needs >= 5 training "
                             "seeds (use --quick for fewer)")
        return cls(train_seeds=seeds or 5)


def claim_params(claim: Claim, arm: Arm, mark: str) -> dict[str, Any]:
    """Model keyword arguments of an arm under a profit mark (population fixed)."""
    params = scenario_params(claim.scenario, **arm.overrides)
    params.update(profit_mark=mark, population_seed=POPULATION_SEED, collect_every=0)
    return params



def work_units(plan: RunPlan, claims: tuple[Claim, ...] = CLAIMS) -> int:
    """How many times :func:`run_reproduction` calls ``progress``."""
    per_mark = sum(plan.train_seeds if a.policy == "ppo" else 1
                   for c in claims for a in c.arms if a.policy != "initial")
    return per_mark * len(PROFIT_MARKS)



def config_hash(plan: RunPlan, claims: tuple[Claim, ...] = CLAIMS) -> str:
    """A short hash of everything that defines the runs (plan, claims, scenario params)."""
    import hashlib
    import json

    blob = {"plan": dataclasses.asdict(plan),
            "claims": [dataclasses.asdict(c) for c in claims],
            "scenarios": {c.scenario: scenario_params(c.scenario) for c in claims},
            "population_seed": POPULATION_SEED, "eval_seed_base": EVAL_SEED_BASE}
    text = json.dumps(blob, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
