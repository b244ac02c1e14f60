"""The page's controls → an EconomyModel: parsing, the scenario base, readable errors.

Mesa's ``SolaraViz`` re-creates the model on Reset as ``type(model)(**controls)``, so
:class:`VizEconomyModel` takes the controls' raw values (a scenario name, selects, text
boxes) and turns them into :class:`~mesa_econ.model.EconomyModel` keyword arguments with
:func:`viz_params`. A bad combination never raises out of a button click: the model keeps
a readable ``error`` and the page shows it. No Solara import here: the model class is
usable (and picklable) without the ``viz`` extra.

The page's shock button calls :meth:`VizEconomyModel.shock_now`, which waits for a step in
progress (Play steps the model in another thread) and then applies the shock.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import mesa

from mesa_econ.config import CURVE_KINDS, SETTLEMENTS
from mesa_econ.model import EconomyModel
from mesa_econ.scenarios import SCENARIOS, scenario_params

__all__ = [
    "DEFAULT_SCENARIO",
    "FROM_SCENARIO",
    "POLICY_CHOICES",
    "VizEconomyModel",
    "describe_error",
    "model_params",
    "parse_number",
    "parse_seed",
    "viz_params",
]

logger = logging.getLogger(__name__)

DEFAULT_SCENARIO = "defi_token_market"
FROM_SCENARIO = "scenario"
"""Select entry (and the meaning of a blank text box): keep the scenario's own value."""
POLICY_CHOICES = ("actor_critic", "random", "hold", "mean_reversion", "checkpoint")

_STEPPING = threading.Lock()
"""Held by a page model's step and shock: a shock never lands in the middle of a step.
(Module-level, so the model itself stays picklable.)"""


def parse_number(name: str, value: Any, kind: type = float) -> float | int | None:
    """A control's value as a number; blank (or None) means "the scenario's value".

    Raises:
        ValueError: text that is not a number (not an integer for ``kind=int``).
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = float(text)
        if kind is int:
            if not number.is_integer():
                raise ValueError
            return int(number)
        return number
    except (ValueError, OverflowError):
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"{name}={value!r} is invalid: expected {what} "
                         "(or leave it blank for the scenario's value)") from None


def parse_seed(value: Any) -> int | None:
    """The seed text box as an int; blank gives None (a fresh random seed)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip()
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"seed={value!r} is invalid: expected an integer seed "
                         "(or leave it blank for a random one)") from None


_NUMBER_CONTROLS = (("n_agents", int), ("n_assets", int), ("kappa", float), ("lam", float),
                    ("nu", float), ("omega", float), ("rho", float), ("shock_step", int),
                    ("shock_size", float))


def viz_params(scenario: str = DEFAULT_SCENARIO, *, curve: str = FROM_SCENARIO,
               settlement: str = FROM_SCENARIO, policy: str = "actor_critic", checkpoint: str = "",
               seed: Any = None, **numbers: Any) -> dict[str, Any]:
    """EconomyModel keyword arguments from the page's controls.

    Args:
        scenario: a name in :data:`~mesa_econ.scenarios.SCENARIOS`: the base parameters.
        curve: a curve kind, or ``FROM_SCENARIO``. Another kind than the scenario's drops
            the scenario's ``curve_params`` (the model then scales its defaults to S0).
        settlement: 'curve', 'spot' or ``FROM_SCENARIO``.
        policy: one of ``POLICY_CHOICES``; 'checkpoint' loads ``checkpoint`` (a path).
        seed: integer or its text; blank for a fresh random seed.
        **numbers: n_agents, n_assets, kappa, lam, nu, omega, rho, shock_step, shock_size as
            numbers or text; blank or None keeps the scenario's value.

    Raises:
        ValueError: naming the control and the valid values. The model validates ranges.
    """
    unknown = set(numbers) - {name for name, _ in _NUMBER_CONTROLS}
    if unknown:
        raise ValueError(f"unknown controls {sorted(unknown)}: expected a subset of "
                         f"{[name for name, _ in _NUMBER_CONTROLS]}")
    params = scenario_params(scenario)
    for name, kind in _NUMBER_CONTROLS:
        value = parse_number(name, numbers.get(name), kind)
        if value is not None:
            params[name] = value
    if curve != FROM_SCENARIO and curve != params.get("curve", "exponential"):
        params["curve"] = curve
        params["curve_params"] = {}
    if settlement != FROM_SCENARIO:
        params["settlement"] = settlement
    if policy == "checkpoint":
        path = str(checkpoint or "").strip()
        if not path:
            raise ValueError("checkpoint='' is invalid: policy 'checkpoint' needs the path "
                             "of a saved checkpoint in the checkpoint box")
        params["policy"] = f"checkpoint:{path}"
    else:
        params["policy"] = policy
    if params.get("shock_size") and params.get("shock_step") is None:
        raise ValueError(f"shock_size={params['shock_size']} has no effect without "
                         "shock_step: give the step at which the shock hits")
    params["seed"] = parse_seed(seed)
    return params


def describe_error(exc: BaseException) -> str:
    """One readable line for the page (the traceback goes to the server log)."""
    if isinstance(exc, ValueError):
        return f"Invalid parameters: {exc}"
    return f"The model failed ({type(exc).__name__}): {exc}"


class VizEconomyModel(EconomyModel):
    """An EconomyModel built from the page's controls; never raises out of the page.

    Keyword arguments are the controls of :func:`model_params` (see :func:`viz_params`).
    If the model cannot be built, or a step fails, ``error`` holds a readable message,
    ``running`` is False and ``step()`` does nothing; the panels show the message.

    Attributes:
        error: None, or the message the page shows instead of the panels.
        scenario_name: the scenario the controls started from. (Not ``scenario``: Mesa
            3.5's ``Model.scenario`` is a property holding a Scenario object, and SolaraViz
            passes its own ``scenario=`` to a model whose ``__init__`` takes one.)
        layout_seed: seed of the network layout (the model's seed, 0 if unseeded).
        shock_log: the shocks applied from the page, as (t when applied, size) pairs.
    """

    def __init__(self, scenario_name: str = DEFAULT_SCENARIO, n_agents: Any = "",
                 n_assets: Any = "", curve: str = FROM_SCENARIO, kappa: Any = "",
                 lam: Any = "", nu: Any = "", omega: Any = "", rho: Any = "",
                 settlement: str = FROM_SCENARIO, policy: str = "actor_critic",
                 checkpoint: str = "", shock_step: Any = "", shock_size: Any = "",
                 seed: Any = "42") -> None:
        self.error: str | None = None
        self.scenario_name = scenario_name
        self.layout_seed = 0
        self.shock_log: list[tuple[int, float]] = []
        try:
            params = viz_params(scenario_name, curve=curve, settlement=settlement, policy=policy,
                                checkpoint=checkpoint, seed=seed, n_agents=n_agents,
                                n_assets=n_assets, kappa=kappa, lam=lam, nu=nu, omega=omega,
                                rho=rho, shock_step=shock_step, shock_size=shock_size)
            self.layout_seed = abs(params["seed"] or 0) % 2**32
            super().__init__(**params)
        except Exception as exc:  # any failure becomes a message on the page
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        # a user's bad input needs no traceback in the server log; anything else does
        logger.warning("mesa_econ visualisation: %s", exc,
                       exc_info=None if isinstance(exc, ValueError) else exc)
        self.error = describe_error(exc)
        if "rng" not in self.__dict__:  # failed before mesa.Model.__init__ ran (every
            # Mesa version sets rng there; mesa 4 has no model.steps)
            mesa.Model.__init__(self)
        self.running = False

    def step(self) -> None:
        """One model step; a failure stops the model with a message instead of raising."""
        if self.error is not None:
            return
        with _STEPPING:
            try:
                super().step()
            except Exception as exc:
                self._fail(exc)

    def shock_now(self, size: float) -> None:
        """The page's shock button: :meth:`~mesa_econ.model.EconomyModel.apply_shock` on
        every asset, after any step in progress; the coming step prices with it.

        Raises:
            ValueError: ``size`` is not a finite real, or there is no model (``error``).
        """
        if self.error is not None:
            raise ValueError(f"no model to shock: {self.error}")
        with _STEPPING:
            self.apply_shock(size)
            self.shock_log.append((self.t, float(size)))


def model_params() -> dict[str, Any]:
    """SolaraViz controls; their keys are VizEconomyModel's keyword arguments."""
    blank = "blank: scenario's value"

    def text(label: str, value: str = "") -> dict[str, Any]:
        return {"type": "InputText", "value": value, "label": label}

    def select(label: str, values: list[str], value: str) -> dict[str, Any]:
        return {"type": "Select", "value": value, "values": values, "label": label}

    return {
        "scenario_name": select("Scenario", list(SCENARIOS), DEFAULT_SCENARIO),
        "n_agents": text(f"Agents N ({blank})"),
        "n_assets": text(f"Assets M ({blank})"),
        "curve": select("Bonding curve", [FROM_SCENARIO, *CURVE_KINDS], FROM_SCENARIO),
        "kappa": text(f"κ price impact ({blank})"),
        "lam": text(f"λ excess-demand weight ({blank})"),
        "nu": text(f"ν peer influence ({blank})"),
        "omega": text(f"ω stability penalty ({blank})"),
        "rho": text(f"ρ cooperative weight ({blank})"),
        "settlement": select("Settlement", [FROM_SCENARIO, *SETTLEMENTS], FROM_SCENARIO),
        "policy": select("Policy", list(POLICY_CHOICES), "actor_critic"),
        "checkpoint": text("Checkpoint path (policy = checkpoint)"),
        "shock_step": text(f"Shock step ({blank})"),
        "shock_size": text(f"Shock size added to Z ({blank})"),
        "seed": text("Seed (integer; blank: random)", "42"),
    }
