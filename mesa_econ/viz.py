"""Browser visualisation: the Mesa/Solara panels and the page ``server.py`` serves.

``server.py`` builds its ``page`` with :func:`make_page`: Mesa's ``SolaraViz`` over a
:class:`~mesa_econ.viz_controls.VizEconomyModel`, whose keyword arguments are the page's
controls (:func:`~mesa_econ.viz_controls.model_params`). A model that could not be built
keeps a readable ``error``; the first panel shows it instead of the network.

Panels: the interaction network (Mesa's matplotlib space drawer with a layout computed once
per graph), quoted price against the curve price f(S) per asset, HHI and Gini, price
entropy, volatility, reserve coverage, and a text summary.
"""

from __future__ import annotations

import warnings
import weakref
from typing import Any

import networkx as nx
import numpy as np
import solara
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PathCollection
from matplotlib.colors import Normalize

with warnings.catch_warnings():
    # Mesa 3.3.1's ComponentsView trips solara's hook linter at import; harmless, not ours
    warnings.filterwarnings("ignore", message=".*use_state.*found despite early return",
                            category=UserWarning)
    from mesa.visualization import SolaraViz, make_plot_component, make_space_component
    from mesa.visualization.components import AgentPortrayalStyle

from mesa_econ.model import PRICE_WINDOW, EconomyModel
from mesa_econ.viz_controls import (
    DEFAULT_SCENARIO,
    FROM_SCENARIO,
    VizEconomyModel,
    model_params,
    parse_number,
    parse_seed,
    viz_params,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "FROM_SCENARIO",
    "PANELS",
    "VizEconomyModel",
    "apply_node_sizes",
    "fixed_layout",
    "make_page",
    "model_params",
    "network_layout_kwargs",
    "network_portrayal",
    "node_style",
    "parse_number",
    "parse_seed",
    "viz_params",
]

_WEALTH_CMAP = colormaps["RdBu"]
FIGSIZE = (6.4, 3.9)
"""Inches of every panel's figure: wide enough to fit Mesa's default grid cell."""

# ------------------------------------------------------------------ network panel

_LAYOUTS: weakref.WeakKeyDictionary[nx.Graph, dict[int, np.ndarray]] = (
    weakref.WeakKeyDictionary())


def fixed_layout(graph: nx.Graph, seed: int = 0) -> dict[int, np.ndarray]:
    """Spring layout of ``graph``, computed once per graph object and then reused.

    Passed to Mesa's network drawer as ``layout_alg``, which calls it on every frame.
    Nodes are ordered 0..N-1 because the drawer indexes positions by node number.
    """
    pos = _LAYOUTS.get(graph)
    if pos is None:
        raw = nx.spring_layout(graph, seed=seed)
        pos = {node: raw[node] for node in sorted(graph.nodes)}
        _LAYOUTS[graph] = pos
    return pos


def node_style(model: EconomyModel) -> tuple[np.ndarray, np.ndarray, Normalize]:
    """Per-agent colour values, marker sizes and the colour scale of the network panel.

    Colour: relative wealth = wealth_i − mean wealth, on a scale symmetric about 0 (red
    behind the average, blue ahead); income paid to everyone alike does not wash it out.
    Size: total holdings Σ_j H_ij relative to the mean, clipped to [0.15, 4] × a base
    size that shrinks with N.
    """
    wealth = np.asarray(model.wealth)
    relative = wealth - wealth.mean()
    span = max(float(np.max(np.abs(relative))), 1e-9)
    total = np.asarray(model.holdings).sum(axis=1)
    rel = total / max(float(total.mean()), 1e-12)
    base = float(np.clip(3000.0 / model.n_agents, 8.0, 90.0))
    return relative, base * np.clip(rel, 0.15, 4.0), Normalize(-span, span)


def network_portrayal(model: EconomyModel) -> tuple[Any, Normalize]:
    """Mesa agent portrayal of one frame (colour: relative wealth, size: holdings), and
    its colour scale. See :func:`node_style`."""
    relative, sizes, norm = node_style(model)
    rgba = _WEALTH_CMAP(norm(relative))

    def portrayal(agent: Any) -> AgentPortrayalStyle:
        return AgentPortrayalStyle(color=tuple(rgba[agent.row]), size=float(sizes[agent.row]),
                                   edgecolors="black", linewidths=0.4)

    return portrayal, norm


def apply_node_sizes(ax: Any, model: EconomyModel) -> None:
    """Give the drawn nodes their portrayal sizes.

    Mesa 3.3.1's ``draw_network`` drops the portrayal's ``size`` for ordinary markers (its
    ``_scatter`` pops "s"), so every node came out the same; this sets them on the scatter
    of the N nodes (agents in ``model.grid.agents`` order, as the drawer collects them).
    """
    _, sizes, _ = node_style(model)
    rows = [agent.row for agent in model.grid.agents]
    for collection in ax.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()) == len(rows):
            collection.set_sizes(sizes[rows])


def _network_panel(model: EconomyModel) -> Any:
    portrayal, norm = network_portrayal(model)

    def decorate(ax: Any) -> None:
        apply_node_sizes(ax, model)
        ax.get_figure().set_size_inches(*FIGSIZE)
        ax.get_figure().colorbar(ScalarMappable(norm=norm, cmap=_WEALTH_CMAP), ax=ax,
                                 shrink=0.8, label="wealth − mean wealth")
        ax.set_title(f"Interaction network, t = {model.t} (size: holdings)")

    draw = make_space_component(portrayal, post_process=decorate, backend="matplotlib",
                                **network_layout_kwargs(model))
    return draw(model)


def network_layout_kwargs(model: EconomyModel) -> dict[str, Any]:
    """Keyword arguments for Mesa's network drawer: the cached, seeded layout."""
    return {"layout_alg": fixed_layout,
            "layout_kwargs": {"seed": getattr(model, "layout_seed", 0)}}


# ------------------------------------------------------------------ plot panels


def _error_panel(model: Any) -> Any:
    """The first panel of a model that could not be built or stopped: its message."""
    return solara.Error(label=f"{model.error}. Fix the control and press Reset.")


def _no_data(model: Any) -> Any:
    return solara.Text("No data: see the message in the first panel.")


def _guard(panel: Any, on_error: Any = _no_data) -> Any:
    """A panel function that shows ``on_error(model)`` instead of drawing a broken model."""

    def view(model: Any) -> Any:
        if getattr(model, "error", None) is not None:
            return on_error(model)
        return panel(model)

    view.__name__ = view.__qualname__ = panel.__name__.lstrip("_")
    return view


def _styled(title: str, ylabel: str, labels: dict[str, str] | None = None) -> Any:
    """A post_process for Mesa's plot: title, y label and (optionally) renamed lines.

    Lines whose new label starts with "f(" (curve prices) are dashed.
    """

    def post_process(ax: Any) -> None:
        ax.get_figure().set_size_inches(*FIGSIZE)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if labels:
            for line in ax.get_lines():
                label = labels.get(line.get_label(), line.get_label())
                line.set_label(label)
                if label.startswith("f("):
                    line.set_linestyle("--")
            ax.legend(loc="best", fontsize="small", ncols=2)

    return post_process


def _price_panel(model: EconomyModel) -> Any:
    measure, labels = {}, {}
    for j in range(model.n_assets):
        measure[f"price_{j}"] = measure[f"curve_price_{j}"] = f"C{j % 10}"
        labels[f"price_{j}"] = f"P{j} quoted"
        labels[f"curve_price_{j}"] = f"f(S{j}) curve"
    title = "Quoted price P_j vs bonding-curve price f(S_j)"
    draw, _ = make_plot_component(measure, post_process=_styled(title, "price", labels))
    return draw(model)


def _metric_panel(measure: str | dict[str, str], title: str, ylabel: str) -> Any:
    draw, _ = make_plot_component(measure, post_process=_styled(title, ylabel))

    def metric_panel(model: EconomyModel) -> Any:
        return draw(model)

    metric_panel.__name__ = f"_{ylabel.replace(' ', '_')}_panel"
    return metric_panel


def _table(header: list[str], rows: list[list[str]]) -> Any:
    cells = [solara.v.Html(tag="tr", children=[solara.v.Html(tag="th", children=[h])
                                               for h in header])]
    cells += [solara.v.Html(tag="tr", children=[solara.v.Html(tag="td", children=[c])
                                                for c in row]) for row in rows]
    return solara.v.SimpleTable(dense=True, children=[solara.v.Html(tag="tbody",
                                                                    children=cells)])


def _summary_panel(model: EconomyModel) -> Any:
    # plain text and a table: solara.Markdown would fetch KaTeX, which is not shipped offline
    rows = [[str(j), f"{model.prices[j]:.4g}", f"{model.curve_prices[j]:.4g}",
             f"{model.supply[j]:.4g}", f"{model.reserve[j]:.4g}"]
            for j in range(model.n_assets)]
    line = (f"{getattr(model, 'scenario_name', 'custom')} · policy {model.config.policy.kind} · "
            f"N = {model.n_agents} agents · M = {model.n_assets} assets · "
            f"t = {model.t} steps completed")
    return solara.Column(children=[
        solara.Text(line), _table(["asset", "price P", "curve f(S)", "supply S", "reserve R"],
                                  rows)])


PANELS = (
    _guard(_network_panel, on_error=_error_panel),
    _guard(_price_panel),
    _guard(_metric_panel({"hhi": "tab:purple", "gini": "tab:orange"},
                         "Concentration: HHI of holdings, Gini of wealth", "index")),
    _guard(_metric_panel("price_entropy", f"Price entropy (last {PRICE_WINDOW} steps)",
                         "entropy")),
    _guard(_metric_panel("volatility", f"Price volatility (last {PRICE_WINDOW} steps)",
                         "volatility")),
    _guard(_metric_panel("reserve_coverage", "Reserve coverage R / R(S) (lowest asset)",
                         "coverage")),
    _guard(_summary_panel),
)
"""The page's panels, in order: functions of the model returning a Solara element."""


def make_page(model: EconomyModel | None = None) -> Any:
    """The SolaraViz element ``server.py`` exposes as ``page``."""
    if model is None:
        model = VizEconomyModel()
    return SolaraViz(model, components=[(panel, 0) for panel in PANELS],
                     model_params=model_params(), name="mesa_econ: bonding-curve economy")
