"""The page ``server.py`` serves: Mesa's SolaraViz with the economy's panels.

:func:`make_page` wraps ``SolaraViz`` over a :class:`~mesa_econ.viz.controls.VizEconomyModel`
(its keyword arguments are the page's controls) and names the browser tab. A model that
could not be built keeps a readable ``error``; the first panel shows it.

Panels: the interaction network, quoted price against the curve price f(S) per asset, HHI
and Gini, price entropy, volatility, reserve coverage, and a summary with the shock button.
The six figures are :mod:`mesa_econ.viz.figures` objects, one per panel and model, updated
in place on every step (Mesa's own plot components rebuild each figure, ~0.1 s apiece).
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable
from typing import Any

import solara
from matplotlib.collections import PathCollection

with warnings.catch_warnings():
    # Mesa 3.3.1's ComponentsView trips solara's hook linter at import; harmless, not ours
    warnings.filterwarnings("ignore", message=".*use_state.*found despite early return",
                            category=UserWarning)
    from mesa.visualization import SolaraViz
    from mesa.visualization.components import AgentPortrayalStyle
    from mesa.visualization.utils import update_counter

from mesa_econ.model import PRICE_WINDOW, EconomyModel
from mesa_econ.scenarios import scenario_params
from mesa_econ.viz.controls import VizEconomyModel, model_params
from mesa_econ.viz.figures import (
    FRAME_FORMAT,
    WEALTH_CMAP,
    LinePlot,
    NetworkPlot,
    Series,
    fixed_layout,
    node_style,
)

__all__ = ["PANELS", "TITLE", "EconomyPage", "PanelGrid", "apply_node_sizes", "grid_layout",
           "make_page", "network_layout_kwargs", "network_portrayal"]

TITLE = "mesa_econ: bonding-curve economy"
"""The page's title: the browser tab and the app bar."""
# Mesa's Play waits this long before each step (its default is 100 ms); a step and its
# redraw take ~15 ms of server time at N = 100, so 50 ms keeps Play near 10 steps/s.
PLAY_INTERVAL_MS = 50
SHOCK_LABEL = "Size of the shock (added to Z now)"
DEFAULT_SHOCK = float(scenario_params("shock_recovery")["shock_size"])
"""The shock button's size until the user picks one (shock_recovery's own shock)."""


# ------------------------------------------------------------------ figures


def price_plot(model: EconomyModel) -> LinePlot:
    """Quoted price P_j (solid) and curve price f(S_j) (dashed, same colour) per asset."""
    series = []
    for j in range(model.n_assets):
        series.append(Series(f"price_{j}", f"P{j} quoted", f"C{j % 10}"))
        series.append(Series(f"curve_price_{j}", f"f(S{j}) curve", f"C{j % 10}", dashed=True))
    return LinePlot("Quoted price P_j vs bonding-curve price f(S_j)", "price", series,
                    min_span=1e-12, relative_span=0.1, bounds=(0.0, None),
                    legend_columns=min(model.n_assets, 5))


def concentration_plot(model: EconomyModel) -> LinePlot:
    """HHI of holdings and Gini of wealth, both in [0, 1]."""
    return LinePlot("Concentration: HHI of holdings, Gini of wealth", "index",
                    [Series("hhi", "HHI", "tab:purple"), Series("gini", "Gini", "tab:orange")],
                    min_span=0.05, bounds=(0.0, 1.0))


def entropy_plot(model: EconomyModel) -> LinePlot:
    """Price entropy over the price window, on its whole range [0, log 20]."""
    top = math.log(min(20, PRICE_WINDOW))  # 20 bins, at most PRICE_WINDOW prices
    return LinePlot(f"Price entropy (last {PRICE_WINDOW} steps)", "entropy",
                    [Series("price_entropy", "entropy", "tab:blue")],
                    min_span=top, bounds=(0.0, 1.05 * top))


def volatility_plot(model: EconomyModel) -> LinePlot:
    """Std of log returns over the price window (dimensionless)."""
    return LinePlot(f"Price volatility (last {PRICE_WINDOW} steps)", "volatility",
                    [Series("volatility", "volatility", "tab:red")],
                    min_span=0.01, bounds=(0.0, None))


def coverage_plot(model: EconomyModel) -> LinePlot:
    """Reserve coverage R / R(S) of the lowest asset (1: fully backed)."""
    return LinePlot("Reserve coverage R / R(S) (lowest asset)", "coverage",
                    [Series("reserve_coverage", "coverage", "tab:green")],
                    min_span=0.1, bounds=(0.0, None))


@solara.component
def LiveFigure(model: EconomyModel, make: Callable[[EconomyModel], Any], tick: int = 0) -> Any:
    """One figure: made once per model by ``make``, its frame redrawn when ``tick`` moves."""
    figure = solara.use_memo(lambda: make(model), [model, make])
    return solara.Image(figure.frame(model), format=FRAME_FORMAT, width="100%")


# ------------------------------------------------------------------ text panels


def _table(header: list[str], rows: list[list[str]]) -> Any:
    """A small table as one HTML widget (one update per step, not one per cell)."""
    cell = 'style="padding: 2px 14px 2px 0; text-align: left"'
    head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in row)
                   + "</tr>" for row in rows)
    return solara.HTML(tag="div", unsafe_innerHTML=f"<table><tr>{head}</tr>{body}</table>",
                       style="font-size: 0.85em")


def _shock_text(model: VizEconomyModel) -> str:
    if not model.shock_log:
        return "No shock applied from the page yet."
    t, size = model.shock_log[-1]
    return (f"Shock of {size:+.4g} added to Z of every asset at t = {t}: "
            f"it hits step {t + 1}.")


@solara.component
def SummaryPanel(model: VizEconomyModel, tick: int = 0) -> Any:
    """Scenario, policy, sizes, t, a per-asset table, and the shock button."""
    size = solara.use_reactive(DEFAULT_SHOCK)
    message, set_message = solara.use_state("")

    def shock() -> None:
        try:
            model.shock_now(size.value)
        except ValueError as exc:
            set_message(str(exc))
            return
        set_message(_shock_text(model))

    # plain text and a table: solara.Markdown would fetch KaTeX, which is not shipped offline
    rows = [[str(j), f"{model.prices[j]:.4g}", f"{model.curve_prices[j]:.4g}",
             f"{model.supply[j]:.4g}", f"{model.reserve[j]:.4g}"]
            for j in range(model.n_assets)]
    line = (f"{getattr(model, 'scenario_name', 'custom')} · policy {model.config.policy.kind} · "
            f"N = {model.n_agents} agents · M = {model.n_assets} assets · "
            f"t = {model.t} steps completed")
    with solara.Column() as column:
        solara.Text(line)
        _table(["asset", "price P", "curve f(S)", "supply S", "reserve R"], rows)
        with solara.Row():
            solara.InputFloat(SHOCK_LABEL, value=size)
            solara.Button("Shock now", color="warning", on_click=shock)
        solara.Text(message or _shock_text(model))
    return column


def _error_panel(model: Any) -> Any:
    """The first panel of a model that could not be built or stopped: its message."""
    return solara.Error(label=f"{model.error}. Fix the control and press Reset.")


def _no_data(model: Any) -> Any:
    return solara.Text("No data: see the message in the first panel.")


def _figure_panel(make: Callable[[EconomyModel], Any], name: str,
                  on_error: Callable[[Any], Any] = _no_data) -> Callable[..., Any]:
    def panel(model: Any, tick: int = 0) -> Any:
        if getattr(model, "error", None) is not None:
            return on_error(model)
        return LiveFigure(model=model, make=make, tick=tick)

    panel.__name__ = panel.__qualname__ = name
    return panel


def summary_panel(model: Any, tick: int = 0) -> Any:
    """The summary and shock panel (or "no data" for a model that could not be built)."""
    if getattr(model, "error", None) is not None:
        return _no_data(model)
    return SummaryPanel(model=model, tick=tick)


PANELS = (
    _figure_panel(NetworkPlot, "network_panel", on_error=_error_panel),
    _figure_panel(price_plot, "price_panel"),
    _figure_panel(concentration_plot, "concentration_panel"),
    _figure_panel(entropy_plot, "entropy_panel"),
    _figure_panel(volatility_plot, "volatility_panel"),
    _figure_panel(coverage_plot, "coverage_panel"),
    summary_panel,
)
"""The page's panels, in order: ``panel(model, tick=0)`` returns the panel's Solara element
(a new ``tick`` redraws it)."""


def grid_layout(n_panels: int) -> list[dict[str, Any]]:
    """Two columns of equal cells, in panel order (the layout Mesa gives its components)."""
    return [{"i": i, "w": 6, "h": 10, "x": 6 * (i % 2), "y": 10 * (i // 2), "moved": False}
            for i in range(n_panels)]


@solara.component
def PanelGrid(model: solara.Reactive) -> Any:
    """The panels of the current model, in a draggable, resizable grid.

    The only component that listens to Mesa's step counter: each panel it re-renders gets
    the new ``tick``. (Mesa's own grid makes every panel listen, and Solara renders once
    per listener: seven render passes per step instead of one.)
    """
    tick = update_counter.get()
    layout, set_layout = solara.use_state(grid_layout(len(PANELS)))
    current = model.value
    return solara.GridDraggable(items=[panel(current, tick) for panel in PANELS],
                                grid_layout=layout, resizable=True, draggable=True,
                                on_grid_layout=set_layout)


@solara.component
def EconomyPage(model: Any) -> None:
    """SolaraViz's controls (Reset, Step, Play, parameters) over the panel grid, under the
    page's title in the browser tab."""
    current = solara.use_reactive(model)
    solara.Title(TITLE)
    SolaraViz(current, components=[], model_params=model_params(), name=TITLE,
              play_interval=PLAY_INTERVAL_MS)
    PanelGrid(model=current)


def make_page(model: EconomyModel | None = None) -> Any:
    """The element ``server.py`` exposes as ``page``."""
    if model is None:
        model = VizEconomyModel()
    return EconomyPage(model=model)


# ------------------------------------------------------------------ Mesa's own drawer


def network_layout_kwargs(model: EconomyModel) -> dict[str, Any]:
    """Keyword arguments for Mesa's network drawer (``draw_space``, notebooks): the cached,
    seeded layout the page uses."""
    return {"layout_alg": fixed_layout,
            "layout_kwargs": {"seed": getattr(model, "layout_seed", 0)}}


def network_portrayal(model: EconomyModel) -> tuple[Any, Any]:
    """A Mesa agent portrayal of one frame for Mesa's drawer (colour: relative wealth, size:
    holdings), and its colour scale. See :func:`~mesa_econ.viz.figures.node_style`."""
    relative, sizes, norm = node_style(model)
    rgba = WEALTH_CMAP(norm(relative))

    def portrayal(agent: Any) -> AgentPortrayalStyle:
        return AgentPortrayalStyle(color=tuple(rgba[agent.row]), size=float(sizes[agent.row]),
                                   edgecolors="black", linewidths=0.4)

    return portrayal, norm


def apply_node_sizes(ax: Any, model: EconomyModel) -> None:
    """Give nodes drawn by Mesa's drawer their portrayal sizes.

    Mesa 3.3.1's ``draw_network`` drops the portrayal's ``size`` for ordinary markers (its
    ``_scatter`` pops "s"); this sets them on the scatter of the N nodes (agents in
    ``model.grid.agents`` order, as the drawer collects them).
    """
    _, sizes, _ = node_style(model)
    rows = [agent.row for agent in model.grid.agents]
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()) == len(rows):
            collection.set_sizes(sizes[rows])
