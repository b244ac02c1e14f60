"""Annealing schedules for exploration: ε of ε-greedy (§6.2) and σ_ξ of parameter noise (§6.3).

A schedule maps a step count t >= 0 to a value that moves from ``start`` to ``end`` over
``horizon`` steps and stays at ``end`` afterwards:

- ``"constant"``: v(t) = start;
- ``"linear"``: v(t) = start + (end − start) · min(t / T, 1);
- ``"exponential"``: v(t) = start · (end / start)^{min(t / T, 1)} (geometric decay that
  reaches ``end`` exactly at T; needs start, end > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from mesa_econ._validation import check_int, check_number

__all__ = ["SCHEDULE_KINDS", "Schedule"]

SCHEDULE_KINDS = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class Schedule:
    """A value annealed from ``start`` to ``end`` over ``horizon`` steps.

    Args:
        kind: one of :data:`SCHEDULE_KINDS`.
        start: v(0), >= 0.
        end: v(t) for t >= horizon, >= 0 (> 0 with start for ``"exponential"``).
        horizon: T, number of steps of the decay (>= 1).
        name: the config field this schedule belongs to (used in error messages).

    Raises:
        ValueError: naming the field when a value is out of range.
    """

    kind: str = "linear"
    start: float = 1.0
    end: float = 0.05
    horizon: int = 1000
    name: str = "schedule"

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"{self.name}_schedule={self.kind!r} is invalid: expected one of "
                             f"{list(SCHEDULE_KINDS)}")
        for label, value in ((f"{self.name}_start", self.start), (f"{self.name}_end", self.end)):
            check_number(label, value, 0.0)
        if self.kind == "exponential" and (self.start <= 0 or self.end <= 0):
            raise ValueError(f"{self.name}_end={self.end!r} with {self.name}_start="
                             f"{self.start!r} is invalid: an exponential schedule needs both "
                             "> 0")
        check_int(f"{self.name}_horizon", self.horizon, 1)

    def __call__(self, t: int) -> float:
        """The value at step ``t`` (>= 0)."""
        if t < 0:
            raise ValueError(f"t={t!r} is invalid: expected a step count >= 0")
        frac = min(t / self.horizon, 1.0)
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * frac)
        return float(self.start * (self.end / self.start) ** frac)
