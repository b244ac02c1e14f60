"""Our Model and Agent subclasses do not shadow Mesa's names, today's or Mesa 4's.

Mesa 3.5 added ``Model.scenario`` (a property): ``VizEconomyModel`` set ``self.scenario =
"defi_token_market"`` and the page failed to start on Mesa 3.5 with ``'str' object has no
attribute 'model'``. An attribute of our own that Mesa also defines is such a clash waiting
to happen, so the names our classes add must be disjoint from those of the installed Mesa
and from those of Mesa 4.0 (pinned below, as Mesa 4 is not installable beside Mesa 3).
"""

from __future__ import annotations

import mesa
import networkx as nx
import pytest
from mesa.discrete_space import FixedAgent, Network

from mesa_econ.agents import TraderAgent
from mesa_econ.model import EconomyModel
from mesa_econ.viz_controls import VizEconomyModel

# Every name, dunders aside, in ``set(dir(mesa.Model)) | set(vars(mesa.Model(rng=1)))`` of
# mesa 4.0.0a0 (the pre-release on PyPI, wheel sha256 bd665c8e...b61815), read on
# 2026-12-06 with `pip download mesa==4.0.0a0 --no-deps` and the wheel's mesa/ on
# PYTHONPATH (Python 3.12; not installed into any venv).
MESA4_MODEL_NAMES = frozenset({
    "_advance_time", "_agents_by_type", "_all_agents", "_batch_context",
    "_class_subscribers", "_clear_all_subscriptions", "_default_schedule",
    "_event_generators", "_event_list", "_has_subscribers", "_mesa_notify", "_process_name",
    "_process_signal_type", "_register_observer", "_scenario", "_suppress", "_time",
    "_unregister_observer", "_user_step", "_wrapped_step", "agent_id_counter", "agent_types",
    "agents", "agents_by_type", "batch", "clear_all_class_subscriptions",
    "clear_all_subscriptions", "data_registry", "deregister_agent", "notify", "observables",
    "observe", "observe_class", "random", "register_agent", "remove_all_agents", "rng",
    "run_for", "run_model", "run_until", "running", "scenario", "schedule_event",
    "schedule_recurring", "step", "subscribers", "suppress", "time", "unobserve",
    "unobserve_class",
})
# The same for ``mesa.Agent`` (``set(dir(mesa.Agent)) | set(vars(mesa.Agent(model)))``).
MESA4_AGENT_NAMES = frozenset({
    "_datasets", "advance", "cancel_action", "create_agents", "current_action",
    "from_dataframe", "interrupt_for", "is_busy", "model", "random", "remove", "rng",
    "scenario", "start_action", "step", "unique_id",
})
# Names our subclasses define on purpose, as Mesa asks them to.
OVERRIDES = frozenset({"step"})
# No known clash is left (EconomyModel.observe became observations() in 0.3.0): any clash
# fails the test below.


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _mesa_names(cls: type, instance: object) -> set[str]:
    return {n for n in set(dir(cls)) | set(vars(instance)) if not _dunder(n)}


def _from_mesa(cls: type) -> bool:
    return cls.__module__.split(".")[0] == "mesa"


def _own_names(obj: object, base_instance: object) -> set[str]:
    """Names that ``obj``'s own classes (those not from the mesa package) define, and
    instance attributes that Mesa's own ``__init__`` does not set (those Mesa sets are
    Mesa's, even when we assign them). Names Mesa writes into every subclass (its
    ``__init_subclass__`` hooks) are Mesa's too."""
    mro = type(obj).__mro__
    mesa_base = next(cls for cls in mro if _from_mesa(cls))
    injected = set(vars(type("_Probe", (mesa_base,), {})))
    defined = {name for cls in mro if cls is not object and not _from_mesa(cls)
               for name in vars(cls)} - injected
    instance = set(vars(obj)) - set(vars(base_instance))
    return {n for n in defined | instance if not _dunder(n)} - OVERRIDES


def _models() -> list[mesa.Model]:
    built = [EconomyModel(n_agents=8, rng=1),
             EconomyModel(n_agents=8, seed=2, collect_agents=True, settlement="spot"),
             VizEconomyModel(n_agents="8", seed="3"),
             VizEconomyModel(n_agents="abc")]  # a page model that failed to build
    for model in built:
        model.step()
    return built


def _bare_fixed_agent() -> FixedAgent:
    """What Mesa itself sets on an agent placed in a cell, as TraderAgent is."""
    model = mesa.Model(rng=0)
    grid = Network(nx.path_graph(1), capacity=1, random=model.random)
    agent = FixedAgent(model)
    agent.cell = grid[0]
    return agent


@pytest.fixture(scope="module")
def models() -> list[mesa.Model]:
    return _models()


def test_the_pinned_mesa4_names_are_a_superset_of_the_clash_we_had():
    assert "scenario" in MESA4_MODEL_NAMES and "time" in MESA4_MODEL_NAMES
    assert not any(_dunder(n) for n in MESA4_MODEL_NAMES | MESA4_AGENT_NAMES)


@pytest.mark.parametrize("mesa_names", ["installed", "mesa 4.0"])
def test_model_attribute_names_are_not_mesa_names(models, mesa_names):
    bare = mesa.Model(rng=0)
    reserved = (_mesa_names(mesa.Model, bare) if mesa_names == "installed"
                else MESA4_MODEL_NAMES)
    for model in models:
        own = _own_names(model, bare)
        assert len(own) > 5, "no names found: the check itself is broken"
        clash = sorted(own & reserved)
        assert clash == [], (f"{type(model).__name__} defines {clash}, which mesa "
                             f"{mesa.__version__ if mesa_names == 'installed' else '4.0'}'s "
                             "Model defines too: rename ours")


@pytest.mark.parametrize("mesa_names", ["installed", "mesa 4.0"])
def test_agent_attribute_names_are_not_mesa_names(models, mesa_names):
    bare = _bare_fixed_agent()
    for model in models[:3]:
        agent = next(iter(model.agents))
        assert isinstance(agent, TraderAgent)
        mesa_bases = [cls for cls in type(agent).__mro__ if _from_mesa(cls)]
        reserved = (set().union(*(_mesa_names(cls, bare) for cls in mesa_bases))
                    if mesa_names == "installed" else MESA4_AGENT_NAMES)
        own = _own_names(agent, bare)
        assert len(own) > 3, "no names found: the check itself is broken"
        clash = sorted(own & reserved)
        assert clash == [], f"TraderAgent defines {clash}, which Mesa's Agent defines too"


def test_the_check_catches_the_scenario_clash():
    """The Mesa 3.5 bug, replayed on any Mesa: an own ``scenario`` attribute is caught."""

    class Clashing(EconomyModel):
        def __init__(self) -> None:
            super().__init__(n_agents=8, rng=0)
            vars(self)["scenario"] = "defi_token_market"  # as the page once did

    bare = mesa.Model(rng=0)
    assert "scenario" in _own_names(Clashing(), bare) & MESA4_MODEL_NAMES
