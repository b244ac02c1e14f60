"""The page's matplotlib figures, updated in place: one Figure per panel and model.

A frame sets the data of the moving artists (lines, node colours and sizes, the step
label) and redraws only those over a cached picture of everything else (blitting). Axis
limits and the wealth colour scale are *sticky*: they stay while the data fit them well
and jump, with headroom, when the data leave them, so the full redraw (axes, ticks,
legend, colour bar: ~90% of a frame's cost) happens every so often, not every step.
Frames are JPEG bytes (quality 85), ~10x faster to encode than PNG.

No Solara here: the figures work (and are tested) without a browser.
"""

from __future__ import annotations

import io
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["FIGSIZE", "LinePlot", "NetworkPlot", "Series", "fixed_layout", "nice_ceiling",
           "node_style", "sticky_limits"]

FIGSIZE = (6.4, 3.9)
"""Inches of every panel's figure (at 100 dpi): wide enough to fill Mesa's grid cell."""
DPI = 100
FRAME_FORMAT = "jpeg"
WEALTH_CMAP = colormaps["RdBu"]
MIN_WEALTH_SPAN = 1e-4
"""The wealth colour scale spans at least ±0.01% of the mean wealth: equal wealth (t = 0)
is white on a scale in the units of the wealth, not on ±1e-9."""


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is >= ``value`` (> 0)."""
    exponent = math.floor(math.log10(value))
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        ceiling = mantissa * 10.0 ** exponent
        if ceiling >= value * (1 - 1e-12):
            return ceiling
    raise AssertionError("unreachable")  # mantissa 10 always fits


def sticky_limits(current: tuple[float, float] | None, low: float, high: float, *,
                  min_span: float, bounds: tuple[float | None, float | None] = (None, None),
                  pad: float = 0.25, slack: float = 4.0) -> tuple[float, float]:
    """Axis limits for data in [low, high]: ``current`` while it holds the data and spans
    1 to ``slack`` times their span, else new limits with ``pad`` × span of headroom.

    The span counted is at least ``min_span``, so a flat series (one point at t = 0) gets a
    readable axis around its value. ``bounds`` clip the limits (e.g. 0 for a variance).
    """
    span = max(high - low, min_span)
    if current is not None:
        c_low, c_high = current
        if c_low <= low and high <= c_high and span <= c_high - c_low <= slack * span:
            return current
    middle, half = (low + high) / 2, span * (0.5 + pad)
    new_low, new_high = middle - half, middle + half
    b_low, b_high = bounds
    if b_low is not None and new_low < b_low:
        new_low, new_high = b_low, new_high + (b_low - new_low)
    if b_high is not None and new_high > b_high:
        new_high = b_high
        new_low = max(new_low - (new_high - b_high), b_low if b_low is not None else -math.inf)
    return (new_low, new_high)


class _Blitted:
    """One figure drawn in full only when :meth:`_invalidate` was called, else blitted."""

    def __init__(self) -> None:
        self.figure = Figure(figsize=FIGSIZE, dpi=DPI)
        self.canvas = FigureCanvasAgg(self.figure)
        self.full_draws = 0
        """How many full redraws so far (tests and the benchmark read it)."""
        self._moving: list[Artist] = []
        self._background: Any = None
        self._key: Any = None
        self._frame = b""
        self._lock = threading.Lock()  # a frame is drawn by one thread at a time

    def _animate(self, *artists: Artist) -> None:
        for artist in artists:
            artist.set_animated(True)  # left out of the full draw, drawn per frame
            self._moving.append(artist)

    def _invalidate(self) -> None:
        self._background = None

    def _update(self, model: Any) -> None:
        raise NotImplementedError

    def frame(self, model: Any) -> bytes:
        """The picture of ``model`` now, as JPEG bytes (cached while ``model.t`` and the
        number of collected rows stay the same)."""
        with self._lock:
            key = (model.t, _rows(model))
            if key == self._key:
                return self._frame
            self._update(model)
            if self._background is None:
                self.canvas.draw()
                self._background = self.canvas.copy_from_bbox(self.figure.bbox)
                self.full_draws += 1
            else:
                self.canvas.restore_region(self._background)
            for artist in self._moving:
                if artist.get_visible():
                    self.figure.draw_artist(artist)
            self._frame, self._key = _encode(self.canvas), key
            return self._frame


def _encode(canvas: FigureCanvasAgg) -> bytes:
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGB", (width, height), canvas.buffer_rgba(), "raw", "RGBX", 0, 1)
    out = io.BytesIO()
    image.save(out, format="jpeg", quality=85)
    return out.getvalue()


def _rows(model: Any) -> int:
    collector = getattr(model, "datacollector", None)
    columns = getattr(collector, "model_vars", None) or {}
    return max((len(rows) for rows in columns.values()), default=0)


# ------------------------------------------------------------------ time series


@dataclass(frozen=True)
class Series:
    """One line of a :class:`LinePlot`: a DataCollector column and how it is drawn."""

    column: str
    label: str
    color: str
    dashed: bool = False


class LinePlot(_Blitted):
    """Time series of DataCollector columns against t, each with a dot on its last value.

    Args:
        title: the figure's title.
        ylabel: the y axis label.
        series: the lines; a column the model does not collect is drawn empty and a note
            in the axes names it.
        min_span: the y axis spans at least this much (a flat series at t = 0).
        relative_span: ... and at least this fraction of the largest |value| shown.
        bounds: limits the y axis never passes (e.g. (0, None) for a variance).
        legend_columns: columns of the legend above the axes (filled column by column);
            default: one row. No legend for a single series.
    """

    def __init__(self, title: str, ylabel: str, series: Sequence[Series], *,
                 min_span: float, relative_span: float = 0.0,
                 bounds: tuple[float | None, float | None] = (None, None),
                 legend_columns: int | None = None) -> None:
        super().__init__()
        self.series = tuple(series)
        self._min_span, self._relative_span, self._bounds = min_span, relative_span, bounds
        self._xlim: tuple[float, float] | None = None
        self._ylim: tuple[float, float] | None = None
        legend = len(self.series) > 1
        columns = legend_columns or len(self.series)
        rows = math.ceil(len(self.series) / columns) if legend else 0
        top = 0.88 - 0.055 * rows
        self.figure.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=top)
        self.figure.text(0.5, 0.975, title, ha="center", va="top", fontsize="large")
        self.axes = self.figure.add_subplot()
        self.axes.set_xlabel("t (steps)")
        self.axes.set_ylabel(ylabel)
        self.lines = []
        for s in self.series:
            (line,) = self.axes.plot([], [], color=s.color, linestyle="--" if s.dashed else "-",
                                     linewidth=1.4, marker="o", markersize=5, label=s.label)
            self.lines.append(line)
        self._animate(*self.lines)
        if legend:
            self.axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=columns,
                             frameon=False, fontsize="small", borderaxespad=0.2)
        self.note = self.axes.text(0.5, 0.5, "", transform=self.axes.transAxes, ha="center",
                                   va="center", color="0.4")

    def _update(self, model: Any) -> None:
        columns = model.datacollector.model_vars
        every = getattr(model.config, "collect_every", 1) or 1
        low, high, last_x = math.inf, -math.inf, 0.0
        for s, line in zip(self.series, self.lines, strict=True):
            y = np.asarray(columns.get(s.column, ()), dtype=float)
            x = np.arange(len(y), dtype=float) * every
            line.set_data(x, y)
            line.set_visible(len(y) > 0)
            if len(y):
                line.set_markevery([len(y) - 1])
                last_x = max(last_x, float(x[-1]))
            finite = y[np.isfinite(y)]
            if len(finite):
                low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        missing = [s.label for s in self.series if s.column not in columns]
        note = f"not collected by this model: {', '.join(missing)}" if missing else ""
        if note != self.note.get_text():
            self.note.set_text(note)
            self._invalidate()
        if low > high:  # nothing finite to show yet
            low = high = 0.0
        scale = max(abs(low), abs(high))
        min_span = max(self._min_span, self._relative_span * scale)
        ylim = sticky_limits(self._ylim, low, high, min_span=min_span, bounds=self._bounds)
        right = nice_ceiling(max(10.0, 1.1 * last_x))
        xlim = (-0.02 * right, right)  # the t = 0 dot clear of the y axis
        if (xlim, ylim) != (self._xlim, self._ylim):
            self._xlim, self._ylim = xlim, ylim
            self.axes.set_xlim(*xlim)
            self.axes.set_ylim(*ylim)
            self._invalidate()


# ------------------------------------------------------------------ network

_LAYOUTS: weakref.WeakKeyDictionary[nx.Graph, dict[int, np.ndarray]] = (
    weakref.WeakKeyDictionary())


def fixed_layout(graph: nx.Graph, seed: int = 0) -> dict[int, np.ndarray]:
    """Spring layout of ``graph``, computed once per graph object and then reused.

    Nodes are ordered 0..N-1 (Mesa's network drawer indexes positions by node number).
    """
    pos = _LAYOUTS.get(graph)
    if pos is None:
        raw = nx.spring_layout(graph, seed=seed)
        pos = {node: raw[node] for node in sorted(graph.nodes)}
        _LAYOUTS[graph] = pos
    return pos


def node_style(model: Any) -> tuple[np.ndarray, np.ndarray, Normalize]:
    """Per-agent colour values, marker sizes and the colour scale of one network frame.

    Colour: relative wealth = wealth_i − mean wealth, on a scale symmetric about 0 (red
    behind the average, blue ahead); income paid to everyone alike does not wash it out.
    Size: total holdings Σ_j H_ij relative to the mean, clipped to [0.15, 4] × a base
    size that shrinks with N. The scale is this frame's largest |relative wealth|
    (:class:`NetworkPlot` keeps a sticky one instead).
    """
    wealth = np.asarray(model.wealth)
    relative = wealth - wealth.mean()
    span = max(float(np.max(np.abs(relative))), 1e-9)
    total = np.asarray(model.holdings).sum(axis=1)
    rel = total / max(float(total.mean()), 1e-12)
    base = float(np.clip(3000.0 / model.n_agents, 8.0, 90.0))
    return relative, base * np.clip(rel, 0.15, 4.0), Normalize(-span, span)


class NetworkPlot(_Blitted):
    """The interaction network on its fixed layout: colour relative wealth, size holdings.

    Edges, axes and the colour bar are the background; the nodes and the "t = ..." label
    move. The colour scale is symmetric, at least ±``MIN_WEALTH_SPAN`` × mean wealth, and
    sticky (see :func:`sticky_limits`).
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        pos = fixed_layout(model.graph, seed=getattr(model, "layout_seed", 0))
        self.positions = np.array([pos[i] for i in range(model.n_agents)])
        self.figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.9)
        self.figure.text(0.5, 0.975, "Interaction network (colour: wealth, size: holdings)",
                         ha="center", va="top", fontsize="large")
        self.axes = ax = self.figure.add_subplot()
        ax.set_axis_off()
        ax.set_aspect("equal", adjustable="box")
        edges = [(self.positions[u], self.positions[v]) for u, v in model.graph.edges]
        ax.add_collection(LineCollection(edges, colors="0.6", linewidths=0.6, zorder=1))
        self.norm = Normalize(-1.0, 1.0)
        self.nodes = ax.scatter(self.positions[:, 0], self.positions[:, 1],
                                c=np.zeros(model.n_agents), cmap=WEALTH_CMAP, norm=self.norm,
                                edgecolors="black", linewidths=0.4, zorder=2)
        low, high = self.positions.min(axis=0), self.positions.max(axis=0)
        margin = 0.08 * max(float((high - low).max()), 1e-9)
        ax.set_xlim(low[0] - margin, high[0] + margin)
        ax.set_ylim(low[1] - margin, high[1] + margin)
        self.colorbar = self.figure.colorbar(self.nodes, ax=ax, shrink=0.8,
                                             label="wealth − mean wealth")
        self.label = ax.text(0.0, 0.0, "", transform=ax.transAxes, fontsize="medium")
        self._animate(self.nodes, self.label)
        self._span: float | None = None

    def _update(self, model: Any) -> None:
        relative, sizes, _ = node_style(model)
        largest = float(np.max(np.abs(relative)))
        floor = MIN_WEALTH_SPAN * abs(float(np.mean(model.wealth)))
        current = None if self._span is None else (-self._span, self._span)
        limits = sticky_limits(current, -largest, largest, min_span=max(2 * floor, 1e-12))
        if limits != current:
            self._span = limits[1]
            self.nodes.set_clim(-self._span, self._span)  # the colour bar follows
            self._invalidate()
        self.nodes.set_array(relative)
        self.nodes.set_sizes(sizes)
        self.label.set_text(f"t = {model.t}")
