"""The visualisation without a browser: controls → model, errors, the figures, the page.

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

import ipyvuetify as v
import ipywidgets
import mesa
import numpy as np
import pytest
import solara
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure

from mesa_econ import viz
from mesa_econ.config import CURVE_KINDS
from mesa_econ.model import EconomyModel
from mesa_econ.scenarios import SCENARIOS, scenario_params
from mesa_econ.viz import figures, panels  # panels imports mesa.visualization (warning filtered)

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
    assert server.page.component.name == "EconomyPage"
    assert server.page.kwargs["model"] is server.model


OLD_PUBLIC_NAMES = ["DEFAULT_SCENARIO", "FIGSIZE", "FROM_SCENARIO", "PANELS", "VizEconomyModel",
                    "apply_node_sizes", "fixed_layout", "make_page", "model_params",
                    "network_layout_kwargs", "network_portrayal", "node_style", "parse_number",
                    "parse_seed", "viz_params"]


def test_the_names_of_the_former_viz_module_still_import():
    """``mesa_econ.viz`` was one module before it became a package."""
    code = "from mesa_econ.viz import " + ", ".join(OLD_PUBLIC_NAMES)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert set(OLD_PUBLIC_NAMES) <= set(viz.__all__)


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
    reference = EconomyModel(**scenario_params(viz.DEFAULT_SCENARIO), policy="actor_critic",
                               seed=42)
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
            **scenario_params(name), "policy": "actor_critic", "seed": None}


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

    # Mesa's own network drawer (notebooks) places the nodes on the cached layout with these
    # styles
    portrayal, _ = viz.network_portrayal(model)
    ax = Figure().add_subplot()
    mesa.visualization.draw_space(model.grid, portrayal, ax=ax, **viz.network_layout_kwargs(model))
    viz.apply_node_sizes(ax, model)  # Mesa 3.3.1's drawer drops the sizes
    nodes = [c for c in ax.collections if len(c.get_offsets()) == model.n_agents]
    assert len(nodes) == 1
    layout = viz.fixed_layout(model.graph)
    rows = [agent.row for agent in model.grid.agents]
    np.testing.assert_allclose(nodes[0].get_offsets(), [layout[r] for r in rows])
    np.testing.assert_allclose(nodes[0].get_sizes(), sizes[rows])


def test_the_page_network_draws_the_node_style_with_a_sticky_colour_scale():
    model = viz.VizEconomyModel(n_agents="25", seed="3")
    plot = viz.NetworkPlot(model)
    _run(model, 8)
    plot.frame(model)
    relative, sizes, _ = viz.node_style(model)
    layout = viz.fixed_layout(model.graph)
    np.testing.assert_allclose(plot.nodes.get_offsets(), [layout[i] for i in range(25)])
    np.testing.assert_allclose(plot.nodes.get_sizes(), sizes)
    np.testing.assert_allclose(plot.nodes.get_array(), relative)
    span = plot.nodes.norm.vmax
    assert plot.nodes.norm.vmin == -span and span >= np.max(np.abs(relative))
    assert plot.colorbar.norm is plot.nodes.norm  # the colour bar shows the nodes' scale
    assert plot.label.get_text() == "t = 8"


def test_at_t0_the_panels_show_the_initial_state_on_sensible_axes():
    model = viz.VizEconomyModel(n_agents="100", seed="1")  # defi_token_market: M = 1
    assert model.t == 0
    price = float(model.prices[0])
    assert float(model.curve_prices[0]) == price  # quoted = f(S) at t = 0

    prices = panels.price_plot(model)
    prices.frame(model)
    assert prices.axes.get_xlim() == (-0.2, 10.0)  # t = 0..10, the first dot clear of the axis
    # one point at the price, on ± 7.5% of it: span 10% of the value, 25% headroom a side
    np.testing.assert_allclose(prices.axes.get_ylim(), (0.925 * price, 1.075 * price))
    for line in prices.lines:
        assert line.get_visible() and line.get_markevery() == [0]  # a dot, not nothing
        np.testing.assert_array_equal(line.get_xydata(), [[0.0, price]])

    concentration = panels.concentration_plot(model)
    concentration.frame(model)
    hhi, gini = (model.datacollector.model_vars[c][0] for c in ("hhi", "gini"))
    assert (hhi, gini) == pytest.approx((1 / 100, 0.0))  # equal holdings and wealth
    # data [0, 0.01], span raised to 0.05 → 0.005 ± 0.0375, moved up to start at 0
    np.testing.assert_allclose(concentration.axes.get_ylim(), (0.0, 0.075))

    network = viz.NetworkPlot(model)
    network.frame(model)
    wealth = float(np.mean(model.wealth))
    # everybody equal: white (up to the rounding of the mean)
    np.testing.assert_allclose(network.nodes.get_array(), 0.0, atol=1e-12 * wealth)
    # the colour bar spans ± 1.5e-4 × mean wealth (not ± 1e-9)
    np.testing.assert_allclose(network.nodes.norm.vmax, 1.5e-4 * wealth)
    assert network.nodes.norm.vmin == -network.nodes.norm.vmax


def _buffer(plot) -> np.ndarray:
    return np.asarray(plot.canvas.buffer_rgba()).copy()


@pytest.mark.parametrize("make", [viz.NetworkPlot, panels.price_plot, panels.volatility_plot])
def test_a_blitted_frame_is_the_picture_drawn_from_scratch(make):
    model = viz.VizEconomyModel(scenario_name="shock_recovery", n_agents="30", n_assets="2",
                                seed="8")
    plot = make(model)
    blitted = 0
    for _ in range(60):
        model.step()
        full_before = plot.full_draws
        plot.frame(model)
        blitted += plot.full_draws == full_before
        frame = _buffer(plot)
        plot._invalidate()
        plot._key = None
        plot.frame(model)  # everything drawn again
        np.testing.assert_array_equal(frame, _buffer(plot))
    assert blitted >= 30  # most frames reuse the background


FIGURES = (viz.NetworkPlot, panels.price_plot, panels.concentration_plot, panels.entropy_plot,
           panels.volatility_plot, panels.coverage_plot)


def test_frames_change_with_each_step_and_are_cached_in_between():
    model = viz.VizEconomyModel(n_agents="20", seed="2")
    plots = [make(model) for make in FIGURES]
    first = [plot.frame(model) for plot in plots]
    assert all(frame[:2] == b"\xff\xd8" for frame in first)  # JPEG
    assert [plot.frame(model) for plot in plots] == first  # same t: the cached bytes
    for _ in range(3):
        model.step()
    assert all(plot.frame(model) != old for plot, old in zip(plots, first, strict=True))


@pytest.mark.parametrize(("scenario", "n_assets"), [(name, "") for name in sorted(SCENARIOS)]
                         + [("defi_token_market", "10")])
def test_every_figure_draws_every_scenario(scenario, n_assets):
    model = viz.VizEconomyModel(scenario, n_agents="16", n_assets=n_assets, seed="5")
    plots = [panel_figure(model) for panel_figure in FIGURES]
    for _ in range(4):
        model.step()
        for plot in plots:
            plot.frame(model)
    prices = plots[1]
    assert len(prices.lines) == 2 * model.n_assets
    assert all(len(line.get_xdata()) == 5 for line in prices.lines)  # t = 0..4
    assert prices.axes.get_legend() is not None


def test_a_column_the_model_does_not_collect_is_named_not_drawn():
    model = viz.VizEconomyModel(n_agents="10", seed="2")
    plot = viz.LinePlot("t", "y", [viz.Series("hhi", "HHI", "C0"),
                                   viz.Series("no_such_column", "utopia", "C1")], min_span=1.0)
    plot.frame(model)
    assert plot.note.get_text() == "not collected by this model: utopia"
    assert plot.lines[0].get_visible() and not plot.lines[1].get_visible()


@pytest.mark.parametrize(("value", "ceiling"), [(10, 10), (10.5, 20), (20, 20), (21, 50),
                                                (51, 100), (0.3, 0.5), (1e-3, 1e-3)])
def test_nice_ceiling(value, ceiling):
    assert figures.nice_ceiling(value) == pytest.approx(ceiling)


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(finite, st.floats(0, 1e6), st.floats(1e-6, 1e3),
       st.one_of(st.none(), st.tuples(finite, st.floats(0, 1e6))))
def test_sticky_limits_hold_the_data_and_move_only_when_needed(low, width, min_span, current):
    high = low + width
    if current is not None:
        current = (current[0], current[0] + current[1])
    lo, hi = figures.sticky_limits(current, low, high, min_span=min_span)
    span = max(width, min_span)
    rounding = 4 * np.finfo(float).eps * max(abs(low), abs(high), 1.0)
    assert lo <= low and high <= hi  # the data are inside
    assert hi - lo >= span - rounding  # at least the minimum span
    if current is not None and current[0] <= low and high <= current[1] \
            and span <= current[1] - current[0] <= 4 * span:
        assert (lo, hi) == current  # it fitted: no redraw
    else:
        assert hi - lo <= 1.5 * span + rounding  # fresh limits: 25% headroom a side


@given(st.floats(0, 1), st.floats(0, 1), st.floats(1e-3, 2))
def test_sticky_limits_stay_within_bounds(a, b, min_span):
    low, high = min(a, b), max(a, b)
    lo, hi = figures.sticky_limits(None, low, high, min_span=min_span, bounds=(0.0, 1.0))
    assert 0.0 <= lo <= low and high <= hi <= 1.0


def test_panels_of_a_running_model():
    model = viz.VizEconomyModel(scenario_name="resource_network", n_agents="20", seed="2")
    _run(model, 2)
    names = [panel(model).component.name for panel in viz.PANELS]
    assert names == [*["LiveFigure"] * 6, "SummaryPanel"]


def test_the_page_renders_titled_with_every_figure_and_shocks_now():
    model = viz.VizEconomyModel(n_agents="12", seed="4")
    _box, rc = solara.render(viz.make_page(model), handle_error=False)
    titles = rc.find(solara.components.title.TitleWidget).widgets
    assert [w.title for w in titles] == [viz.TITLE]  # the browser tab, not "Solara"
    images = rc.find(ipywidgets.Image).widgets
    assert len(images) == 6 and all(w.format == "jpeg" for w in images)
    before = [w.value for w in images]
    model.step()
    mesa.visualization.utils.force_update()  # what Mesa's Step button does after a step
    assert all(w.value != old for w, old in zip(images, before, strict=True))

    factors = model.factors.copy()
    rc.find(v.Btn, children=["Shock now"]).widget.click()
    size = panels.DEFAULT_SHOCK
    np.testing.assert_array_equal(model.factors, factors + size)
    assert model.shock_log == [(1, size)]
    rc.find(children=[f"Shock of {size:+.4g} added to Z of every asset at t = 1: it hits "
                      "step 2."]).assert_single()
    rc.close()


def test_shock_now_is_apply_shock_on_every_asset_and_refuses_without_a_model():
    model = viz.VizEconomyModel(n_agents="10", n_assets="2", seed="3")
    twin = viz.VizEconomyModel(n_agents="10", n_assets="2", seed="3")
    model.shock_now(-1.25)
    twin.apply_shock(-1.25)
    np.testing.assert_array_equal(model.factors, twin.factors)
    assert model.shock_log == [(0, -1.25)]
    with pytest.raises(ValueError, match="size=nan is invalid"):
        model.shock_now(float("nan"))
    assert model.shock_log == [(0, -1.25)]
    broken = viz.VizEconomyModel(n_agents="abc")
    with pytest.raises(ValueError, match="no model to shock: Invalid parameters"):
        broken.shock_now(1.0)


@pytest.mark.parametrize("module", ["mesa_econ.viz.controls", "mesa_econ.viz_controls",
                                    "mesa_econ.viz"])
def test_the_model_class_needs_no_solara_and_pickles(module):
    code = (f"import sys; from {module} import VizEconomyModel; "
            "VizEconomyModel(n_agents='5'); print('solara' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"
    model = viz.VizEconomyModel(n_agents="10", seed="5")
    _run(model, 2)
    clone = pickle.loads(pickle.dumps(model))
    assert type(clone) is viz.VizEconomyModel
    np.testing.assert_array_equal(_run(clone, 3), _run(model, 3))
