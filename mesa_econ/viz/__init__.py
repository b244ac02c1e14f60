"""The browser page: Mesa/Solara panels (``panels``), their figures (``figures``) and the
controls → model mapping (``controls``). ``server.py`` serves :func:`make_page`.

Names resolve on first use (PEP 562): ``mesa_econ.viz.controls`` and ``VizEconomyModel``
import no Solara and no Mesa visualisation; the panels do.
"""

from __future__ import annotations

from mesa_econ._lazy import lazy_names

_CONTROLS = "mesa_econ.viz.controls"
_FIGURES = "mesa_econ.viz.figures"
_PANELS = "mesa_econ.viz.panels"

_TABLE = {
    "DEFAULT_SCENARIO": _CONTROLS,
    "FROM_SCENARIO": _CONTROLS,
    "POLICY_CHOICES": _CONTROLS,
    "VizEconomyModel": _CONTROLS,
    "describe_error": _CONTROLS,
    "model_params": _CONTROLS,
    "parse_number": _CONTROLS,
    "parse_seed": _CONTROLS,
    "viz_params": _CONTROLS,
    "FIGSIZE": _FIGURES,
    "LinePlot": _FIGURES,
    "NetworkPlot": _FIGURES,
    "Series": _FIGURES,
    "fixed_layout": _FIGURES,
    "nice_ceiling": _FIGURES,
    "node_style": _FIGURES,
    "sticky_limits": _FIGURES,
    "EconomyPage": _PANELS,
    "PANELS": _PANELS,
    "PanelGrid": _PANELS,
    "TITLE": _PANELS,
    "apply_node_sizes": _PANELS,
    "grid_layout": _PANELS,
    "make_page": _PANELS,
    "network_layout_kwargs": _PANELS,
    "network_portrayal": _PANELS,
}

__all__ = sorted(_TABLE)

__getattr__, __dir__ = lazy_names(globals(), _TABLE)
