"""The visualisation's helpers without a browser: controls → model, errors, panels.

The page itself is driven in Chromium by tests/test_browser.py.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import pickle
import subprocess
import sys
from pathlib import Path

import mesa
import numpy as np
import pytest
from matplotlib.figure import Figure

from mesa_econ import viz  # imports mesa.visualization (its import-time warning filtered)
from mesa_econ.config import CURVE_KINDS
from mesa_econ.model import EconomyModel
from mesa_econ.scenarios import SCENARIOS, scenario_params

ROOT = Path(__file__).resolve().parents[1]


def _run(model: EconomyModel, steps: int) -> np.ndarray:
    for _ in range(steps):
        model.step()
    return np.array(model.datacollector.get_model_vars_dataframe())


def test_server_module_builds_the_page_with_telemetry_off():
    spec = importlib.util.spec_from_file_location("mesa_econ_server_page", ROOT / "server.py")
    server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(server)
    import solara.checks
    import solara.server.settings

    assert os.environ["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"
    assert solara.server.settings.telemetry.mixpanel_enable is False
    assert solara.checks.should_perform_solara_check() is False
    assert isinstance(server.model, viz.VizEconomyModel)
    assert server.model.error is None
    assert server.page.component.name == "SolaraViz"
    assert server.page.kwargs["model_params"].keys() == viz.model_params().keys()
    assert len(server.page.kwargs["components"]) == len(viz.PANELS)


def test_model_params_are_the_init_keywords_with_the_same_defaults():
    params = viz.model_params()
    signature = inspect.signature(viz.VizEconomyModel.__init__).parameters
    assert set(params) == set(signature) - {"self"}
    for name, control in params.items():
        assert control["value"] == signature[name].default, name
        if control["type"] == "Select":
            assert control["value"] in control["values"], name
    mesa.visualization.solara_viz._check_model_params(viz.VizEconomyModel.__init__, params)


def test_default_controls_are_the_default_scenario_with_seed_42():
    page_model = viz.VizEconomyModel()
    reference = EconomyModel(**scenario_params(viz.DEFAULT_SCENARIO), seed=42)
    assert page_model.error is None
    np.testing.assert_array_equal(_run(page_model, 6), _run(reference, 6))


def test_controls_override_the_scenario():
    params = viz.viz_params("resource_network", n_agents="30", n_assets=" 2 ", kappa="0.01",
                            lam="1e-4", nu="0.2", omega="3", rho="0.5", settlement="spot",
                            policy="hold", shock_step="5", shock_size="2.5", seed="7")
    expected = scenario_params("resource_network", n_agents=30, n_assets=2, kappa=0.01,
                               lam=1e-4, nu=0.2, omega=3.0, rho=0.5, settlement="spot",
                               policy="hold", shock_step=5, shock_size=2.5, seed=7)
    assert params == expected
    model = viz.VizEconomyModel("resource_network", n_agents="30", n_assets="2",
                                kappa="0.01", nu="0.2", settlement="spot", policy="hold",
                                shock_step="5", shock_size="2.5", seed="7")
    assert model.error is None
    market = model.config.market
    assert (model.n_agents, model.n_assets, market.settlement) == (30, 2, "spot")
    assert (market.kappa, market.nu, market.shock_step) == (0.01, 0.2, 5)
    assert model.config.policy.kind == "hold"


def test_blank_controls_keep_the_scenario():
    for name in SCENARIOS:
        assert viz.viz_params(name, n_agents="", kappa=" ", seed=None) == {
            **scenario_params(name), "policy": "random", "seed": None}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("curve", CURVE_KINDS)
def test_every_curve_choice_builds_and_steps(scenario, curve):
    model = viz.VizEconomyModel(scenario, curve=curve, n_agents="12", seed="1")
    assert model.error is None, model.error
    assert model.config.market.curve == curve
    same_curve = curve == scenario_params(scenario)["curve"]
    curve_params = scenario_params(scenario)["curve_params"] if same_curve else {}
    assert dict(model.config.market.curve_params) == curve_params
    _run(model, 3)
    assert model.error is None and model.t == 3


@pytest.mark.parametrize(("text", "seed"), [("12", 12), (" -3 ", -3), (5, 5), ("", None),
                                            (None, None)])
def test_seed_text_is_cast_to_int(text, seed):
    assert viz.parse_seed(text) == seed


def test_seed_string_gives_the_same_run_as_the_int():
    np.testing.assert_array_equal(_run(viz.VizEconomyModel(seed="9"), 4),
                                  _run(viz.VizEconomyModel(seed=9), 4))


BAD_CONTROLS = [
    ({"n_agents": "abc"}, "n_agents='abc'"),
    ({"n_agents": "2.5"}, "n_agents='2.5'"),
    ({"n_assets": "0"}, "n_assets=0"),
    ({"kappa": "-1"}, "kappa=-1.0"),
    ({"seed": "x1"}, "seed='x1'"),
    ({"scenario_name": "resource_network", "n_agents": "5"}, "graph_params k=6"),
    ({"scenario_name": "nowhere"}, "scenario='nowhere'"),
    ({"curve": "cubic"}, "curve='cubic'"),
    ({"settlement": "later"}, "settlement='later'"),
    ({"policy": "checkpoint"}, "checkpoint=''"),
    ({"shock_size": "2"}, "shock_step"),
]


@pytest.mark.parametrize(("controls", "names"), BAD_CONTROLS)
def test_bad_controls_give_a_readable_error_not_an_exception(controls, names):
    model = viz.VizEconomyModel(**controls)
    assert model.error is not None
    assert model.error.startswith("Invalid parameters: ")
    assert names in model.error
    assert "Traceback" not in model.error
    assert model.running is False and "t" not in vars(model)  # no EconomyModel was built
    model.step()  # Mesa's Step button: nothing happens, nothing raises
    assert model.error.startswith("Invalid parameters: ")
    first, *others = (panel(model) for panel in viz.PANELS)
    assert first.component.name == "Error"
    assert names in first.kwargs["label"]
    assert all(panel.component.name == "Text" for panel in others)


def test_missing_checkpoint_is_an_error_on_the_page(tmp_path):
    model = viz.VizEconomyModel(policy="checkpoint", checkpoint=str(tmp_path / "none"))
    assert model.error is not None and model.running is False


def test_a_failing_step_stops_the_model_with_a_message(monkeypatch):
    model = viz.VizEconomyModel(n_agents="10")

    def diverge(self):
        raise FloatingPointError("market state 'price' became non-finite")

    monkeypatch.setattr(EconomyModel, "step", diverge)
    model.step()
    assert model.error == ("The model failed (FloatingPointError): "
                           "market state 'price' became non-finite")
    assert model.running is False
    assert len(model.agents) == 10  # the failure did not re-initialise the Mesa model
    assert viz.PANELS[0](model).component.name == "Error"


def test_layout_is_computed_once_per_graph_and_seeded():
    model = viz.VizEconomyModel(n_agents="20", seed="4")
    first = viz.fixed_layout(model.graph, seed=model.layout_seed)
    assert viz.fixed_layout(model.graph, seed=123) is first  # cached, not recomputed
    assert list(first) == list(range(20))
    again = viz.VizEconomyModel(n_agents="20", seed="4")
    assert again.graph is not model.graph
    second = viz.fixed_layout(again.graph, seed=again.layout_seed)
    np.testing.assert_array_equal(np.array(list(first.values())),
                                  np.array(list(second.values())))


def test_network_nodes_are_coloured_by_relative_wealth_and_sized_by_holdings():
    model = viz.VizEconomyModel(n_agents="25", seed="3")
    _run(model, 8)
    relative, sizes, norm = viz.node_style(model)
    np.testing.assert_allclose(relative, model.wealth - model.wealth.mean())
    assert norm.vmin == -norm.vmax == -np.max(np.abs(relative))
    holdings = model.holdings.sum(axis=1)
    order = np.argsort(holdings)
    assert np.all(np.diff(sizes[order]) >= 0)  # bigger holdings, bigger node

    # Mesa's own network drawer places the nodes on the cached layout with these styles
    portrayal, _ = viz.network_portrayal(model)
    ax = Figure().add_subplot()
    mesa.visualization.draw_space(model.grid, portrayal, ax=ax, **viz.network_layout_kwargs(model))
    viz.apply_node_sizes(ax, model)  # what the panel's post_process does
    nodes = [c for c in ax.collections if len(c.get_offsets()) == model.n_agents]
    assert len(nodes) == 1
    layout = viz.fixed_layout(model.graph)
    rows = [agent.row for agent in model.grid.agents]
    np.testing.assert_allclose(nodes[0].get_offsets(), [layout[r] for r in rows])
    np.testing.assert_allclose(nodes[0].get_sizes(), sizes[rows])


def test_price_plot_dashes_the_curve_and_names_the_lines():
    ax = Figure().add_subplot()
    ax.plot([1, 2], label="price_0")
    ax.plot([1, 3], label="curve_price_0")
    viz._styled("t", "price", {"price_0": "P0 quoted", "curve_price_0": "f(S0) curve"})(ax)
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles == {"P0 quoted": "-", "f(S0) curve": "--"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["P0 quoted", "f(S0) curve"]


def test_panels_of_a_running_model_are_mesa_components():
    model = viz.VizEconomyModel(scenario_name="resource_network", n_agents="20", seed="2")
    _run(model, 2)
    names = [panel(model).component.name for panel in viz.PANELS]
    assert names == ["SpaceMatplotlib", *["PlotMatplotlib"] * 5, "Column"]


def test_the_model_class_needs_no_solara_and_pickles():
    code = ("import sys; from mesa_econ.viz_controls import VizEconomyModel; "
            "VizEconomyModel(n_agents='5'); print('solara' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
    model = viz.VizEconomyModel(n_agents="10", seed="5")
    _run(model, 2)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is viz.VizEconomyModel
    np.testing.assert_array_equal(_run(clone, 3), _run(model, 3))
