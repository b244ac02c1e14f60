"""Undoing a step that raised: what a step changes, saved and restored, and Mesa's clock.

:class:`StepRollback` is a mixin of :class:`~mesa_econ.model.EconomyModel`, whose
``step`` saves (:meth:`~StepRollback._save`) before it advances the model and restores
(:meth:`~StepRollback._restore`) if anything raises; :func:`_collect_or_undo` drops the
rows a failed DataCollector collect had added.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

if TYPE_CHECKING:
    from mesa_econ.model import EconomyModel

__all__ = ["StepRollback"]

_STEP_ATTRS = ("_state", "_curve_price", "last_info", "last_breakdown", "last_rewards",
               "last_orders", "_pending_orders", "_wealth_cache", "_marks_cache", "t",
               "income_paid", "yield_paid", "fees_paid", "factors", "_window_len")
"""The model's attributes a step rebinds (never mutates in place): restored on failure."""
_get_step_attrs = operator.attrgetter(*_STEP_ATTRS)


class StepRollback:
    """Save and restore what a step changes (the model's attributes in ``_STEP_ATTRS``, the
    shock, the price window and the generators)."""

    _pending_orders: np.ndarray | None
    _shock: np.ndarray
    _shock_live: bool
    _window: np.ndarray
    ensemble: Any
    rng: np.random.Generator
    policy_rng: np.random.Generator
    torch_generator: Any

    def _reschedule_mesa_step(self) -> None:
        """Mesa >= 3.4 runs ``step`` from an event that reschedules itself only after the
        step returns: after a step that raised, put Mesa's clock back and schedule the step
        again, so the model can go on stepping (Mesa 3.3 needs nothing)."""
        generator = getattr(self, "_default_schedule", None)
        schedule_next = getattr(generator, "_schedule_next", None)
        if schedule_next is None or not hasattr(self, "time"):
            return
        self.time -= 1.0  # Mesa set its clock to this step's event time before the step
        self.steps -= 1
        schedule_next(self.time + 1.0)

    def _save(self) -> tuple:
        """What a step changes, cheaply: immutable values by reference, the rest copied.

        The policy generators are saved only when the step asks the model's policy for
        orders (a trainer's submitted orders draw from neither; scripted policies never
        draw from the torch generator), the shock only when one is live (scheduled or
        applied).
        """
        acting = self._pending_orders is None
        shock = self._shock.copy() if self._shock_live else None
        return (_get_step_attrs(self), shock, self._window.copy(),
                self.rng.bit_generator.state,
                self.policy_rng.bit_generator.state if acting else None,
                self.torch_generator.get_state()
                if acting and self.ensemble is not None else None)

    def _restore(self, saved: tuple) -> None:
        attrs, shock, window, rng_state, policy_state, torch_state = saved
        for name, value in zip(_STEP_ATTRS, attrs, strict=True):
            setattr(self, name, value)
        self._window = window
        if shock is not None:  # (without a live shock, the shock stays 0)
            self._shock = shock
        self.rng.bit_generator.state = rng_state
        if policy_state is not None:
            self.policy_rng.bit_generator.state = policy_state
        if torch_state is not None:
            self.torch_generator.set_state(torch_state)


def _collect_or_undo(collector: mesa.DataCollector, model: EconomyModel) -> None:
    """``collector.collect(model)``; if a reporter raises, drop the rows it had added."""
    columns = list(collector.model_vars.values())
    lengths = list(map(len, columns))
    steps = getattr(collector, "_collection_steps", None)  # Mesa >= 3.5
    n_steps = len(steps) if steps is not None else 0
    records = [getattr(collector, name, None)
               for name in ("_agent_records", "_agenttype_records")]
    counts = [len(r) if isinstance(r, dict) else 0 for r in records]
    try:
        collector.collect(model)
    except BaseException:
        for rows, length in zip(columns, lengths, strict=True):
            del rows[length:]
        if steps is not None:
            del steps[n_steps:]
        for record, count in zip(records, counts, strict=True):
            while isinstance(record, dict) and len(record) > count:
                record.popitem()  # the rows this collect inserted (dicts keep order)
        raise
