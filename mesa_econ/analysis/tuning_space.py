"""Search spaces over curve parameters Φ for §7.1 tuning.

A candidate Φ is one curve kind (§3.1) and its parameters, shared by all assets or one set
per asset. By default the price at the initial supply is held at the scenario's
(*anchored*): the kind's scale parameter is solved from f(S0) = P0, so the search moves
the curve's shape, not its level. Without the anchor a flatter curve would also win by
raising the price level, which shrinks log returns of the additive noise.

Default ranges, with S0 the initial supply N·H0 and P0 the scenario's curve price at S0
(a log range is searched on a log scale):

======================  ====================================  ===========================
kind                    shape parameters (searched)           scale (anchored, or range)
======================  ====================================  ===========================
exponential             k ∈ [1e-3/S0, 5/S0] log               a = P0·e^{−k S0};
                                                              [1e-3·P0, 10·P0] log
linear                  slope ∈ [0, P0/S0] (≤ 2P0/S0 free)    intercept = P0 − slope·S0;
                                                              [0, 2·P0]
logarithmic             (none)                                k = P0/ln(1+S0);
                                                              [0.1, 10]·P0/ln(1+S0) log
sigmoid                 midpoint ∈ [0, 4 S0],                 height = P0/σ(k(S0 − s0));
                        steepness ∈ [0.1/S0, 20/S0] log       [P0, 100·P0] log
power                   n ∈ [0, 3]                            a = P0/S0ⁿ;
                                                              [0.1·P0/S0³, 10·P0] log
======================  ====================================  ===========================

``bounds`` overrides a range (checked against the kind's valid domain), ``fixed`` takes a
parameter out of the search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from mesa_econ.curves import CURVES, make_curve

__all__ = ["SCALE_PARAM", "Dim", "SearchSpace", "build_space"]

SCALE_PARAM = {"exponential": "a", "linear": "intercept", "logarithmic": "k",
               "sigmoid": "height", "power": "a"}
"""The parameter each kind's anchor f(S0) = P0 determines."""


@dataclass(frozen=True)
class Dim:
    """One searched number: parameter ``param`` of curve ``kind`` (of ``asset``, or of
    every asset when None), named ``name`` in the study."""

    name: str
    kind: str
    param: str
    asset: int | None
    low: float
    high: float
    log: bool


def _shape_ranges(kind: str, s0: float, p0: float, anchor: bool) -> dict[str, tuple]:
    """(low, high, log) of each parameter searched by default."""
    shapes = {
        "exponential": {"k": (1e-3 / s0, 5.0 / s0, True)},
        "linear": {"slope": (0.0, (1.0 if anchor else 2.0) * p0 / s0, False)},
        "logarithmic": {},
        "sigmoid": {"midpoint": (0.0, 4.0 * s0, False),
                    "steepness": (0.1 / s0, 20.0 / s0, True)},
        "power": {"n": (0.0, 3.0, False)},
    }[kind]
    if anchor:
        return shapes
    scale = {"exponential": (1e-3 * p0, 10.0 * p0, True),
             "linear": (0.0, 2.0 * p0, False),
             "logarithmic": (0.1 * p0 / math.log1p(s0), 10.0 * p0 / math.log1p(s0), True),
             "sigmoid": (p0, 100.0 * p0, True),
             "power": (0.1 * p0 / s0**3, 10.0 * p0, True)}[kind]
    return {**shapes, SCALE_PARAM[kind]: scale}


def anchored_scale(kind: str, params: Mapping[str, Any], s0: np.ndarray,
                   p0: np.ndarray) -> np.ndarray:
    """The scale parameter that puts the curve's price at S0 at P0 (per asset).

    Notes:
        exponential a = P0 e^{−k S0}; linear intercept = P0 − slope·S0; logarithmic
        k = P0 / ln(1 + S0); sigmoid height = P0 / σ(k (S0 − s0)); power a = P0 / S0ⁿ.
    """
    if kind == "exponential":
        return p0 * np.exp(-np.asarray(params["k"]) * s0)
    if kind == "linear":
        return p0 - np.asarray(params["slope"]) * s0
    if kind == "logarithmic":
        return p0 / np.log1p(s0)
    if kind == "sigmoid":
        steep, mid = np.asarray(params["steepness"]), np.asarray(params["midpoint"])
        return p0 / expit(steep * (s0 - mid))
    return p0 / s0 ** np.asarray(params["n"])


def _domain(kind: str, param: str) -> tuple[float, bool]:
    """(lower bound, strict) of a curve parameter, from the curve class."""
    for name, low, strict in CURVES[kind]._bounds:
        if name == param:
            return float(low), bool(strict)
    raise KeyError(param)


@dataclass(frozen=True)
class SearchSpace:
    """The candidates of a tuning study. Build it with :func:`build_space`."""

    kinds: tuple[str, ...]
    dims: tuple[Dim, ...]
    fixed: dict[str, float]
    anchor: bool
    n_assets: int
    initial_supply: np.ndarray = field(repr=False)
    """S0 per asset."""
    initial_price: np.ndarray = field(repr=False)
    """P0 per asset: the scenario's curve price at S0."""

    @property
    def names(self) -> list[str]:
        """Parameter names in the study ('curve' first when several kinds are searched)."""
        return (["curve"] if len(self.kinds) > 1 else []) + [d.name for d in self.dims]

    def suggest(self, trial: Any) -> tuple[str, dict[str, Any]]:
        """Draw a candidate from an Optuna trial: (curve kind, curve_params)."""
        kind = (trial.suggest_categorical("curve", list(self.kinds)) if len(self.kinds) > 1
                else self.kinds[0])
        values = {d.name: trial.suggest_float(d.name, d.low, d.high, log=d.log)
                  for d in self.dims if d.kind == kind}
        return kind, self.curve_params(kind, values)

    def curve_params(self, kind: str, values: Mapping[str, float]) -> dict[str, Any]:
        """Native curve parameters of a candidate (floats, or lists with one per asset)."""
        per_param: dict[str, np.ndarray] = {}
        for name, value in self.fixed.items():
            k, _, p = name.rpartition(".")
            if k in ("", kind) and p in _shape_ranges(kind, 1.0, 1.0, anchor=False):
                per_param[p] = np.full(self.n_assets, float(value))
        for d in (d for d in self.dims if d.kind == kind):
            arr = per_param.setdefault(d.param, np.full(self.n_assets, np.nan))
            arr[slice(None) if d.asset is None else d.asset] = values[d.name]
        if self.anchor:
            per_param[SCALE_PARAM[kind]] = anchored_scale(kind, per_param, self.initial_supply,
                                                          self.initial_price)
        return {p: (float(v[0]) if np.all(v == v[0]) else [float(x) for x in v])
                for p, v in per_param.items()}

    def baseline(self, kind: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The study's parameter values of a given curve (to enqueue it as a trial), or None
        where it lies outside the space."""
        if kind not in self.kinds:
            return None
        out: dict[str, Any] = {"curve": kind} if len(self.kinds) > 1 else {}
        for d in (d for d in self.dims if d.kind == kind):
            value = np.broadcast_to(np.asarray(params[d.param], dtype=float), (self.n_assets,))
            v = value if d.asset is None else value[d.asset:d.asset + 1]
            if np.ptp(v) > 0 or not d.low <= v[0] <= d.high:
                return None
            out[d.name] = float(v[0])
        return out


def build_space(kind: str | Sequence[str], initial_supply: np.ndarray,
                initial_price: np.ndarray, *, anchor: bool = True, per_asset: bool = False,
                bounds: Mapping[str, Sequence[float]] | None = None,
                fixed: Mapping[str, float] | None = None) -> SearchSpace:
    """The search space of one or more curve kinds (see the module's table).

    Args:
        kind: curve kind(s); several make a categorical parameter 'curve' and prefix
            each parameter with its kind ('exponential.k').
        initial_supply, initial_price: S0 and P0 per asset.
        anchor: hold f(S0) = P0 by solving the kind's scale parameter.
        per_asset: one set of parameters per asset ('k[0]', 'k[1]', ...) instead of one
            shared by all assets.
        bounds: ``{name: (low, high)}`` overrides; a plain parameter name applies to every
            kind and asset that has it.
        fixed: ``{name: value}`` parameters taken out of the search.

    Raises:
        ValueError: unknown kind or parameter, empty or invalid range, a fixed scale
            parameter under the anchor.
    """
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    if not kinds or any(k not in CURVES for k in kinds) or len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds={list(kinds)!r} is invalid: expected distinct curve kinds "
                         f"from {list(CURVES)}")
    s0 = np.asarray(initial_supply, dtype=float)
    p0 = np.asarray(initial_price, dtype=float)
    m = s0.shape[0]
    bounds, fixed = dict(bounds or {}), {k: float(v) for k, v in (fixed or {}).items()}
    known = {p for k in kinds for p in _shape_ranges(k, 1.0, 1.0, anchor=False)}
    known |= {f"{k}.{p}" for k in kinds for p in _shape_ranges(k, 1.0, 1.0, anchor=False)}
    for name in fixed:
        base = name.rpartition(".")[2]
        if name not in known:
            raise ValueError(f"fixed[{name!r}] is invalid: expected a parameter of "
                             f"{list(kinds)}: {sorted(known)}")
        if anchor and any(SCALE_PARAM[k] == base and name in (base, f"{k}.{base}")
                          for k in kinds):
            raise ValueError(f"fixed[{name!r}] is invalid under anchor=True: the scale "
                             "parameter is solved from f(S0) = P0; pass anchor=False")
    dims, used = [], set()
    for k in kinds:
        for param, (lo, hi, log) in _shape_ranges(k, float(s0.mean()), float(p0.mean()),
                                                  anchor).items():
            if param in fixed or f"{k}.{param}" in fixed:
                continue
            prefix = f"{k}." if len(kinds) > 1 else ""
            for asset in (range(m) if per_asset else [None]):
                name = prefix + param + ("" if asset is None else f"[{asset}]")
                keys = [key for key in (name, f"{k}.{param}", param) if key in bounds]
                if keys:
                    used.add(keys[0])
                    lo, hi = _check_bounds(keys[0], bounds[keys[0]], k, param, log, anchor,
                                           float(s0.min()), float(p0.min()))
                dims.append(Dim(name, k, param, asset, lo, hi, log))
    unused = sorted(set(bounds) - used)
    if unused:
        names = sorted({d.name for d in dims} | {f"{d.kind}.{d.param}" for d in dims}
                       | {d.param for d in dims})
        raise ValueError(f"bounds{unused} is invalid: expected searched parameters {names}")
    return SearchSpace(kinds, tuple(dims), fixed, anchor, m, s0, p0)


def _check_bounds(name: str, value: Sequence[float], kind: str, param: str, log: bool,
                  anchor: bool, s0: float, p0: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"bounds[{name!r}]={value!r} is invalid: expected (low, high)") \
            from None
    floor, strict = _domain(kind, param)
    if log:
        floor, strict = max(floor, 0.0), True
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi
            and (lo > floor if strict else lo >= floor)):
        op = ">" if strict else ">="
        raise ValueError(f"bounds[{name!r}]={value!r} is invalid: expected finite low < high "
                         f"with low {op} {floor:g} ({kind} {param}"
                         f"{', searched on a log scale' if log else ''})")
    if anchor and kind == "linear" and param == "slope" and hi > p0 / s0 * (1 + 1e-12):
        raise ValueError(f"bounds[{name!r}]={value!r} is invalid: under anchor=True the "
                         f"slope must stay <= P0/S0 = {p0 / s0:g} (a larger one makes the "
                         "intercept P0 − slope·S0 negative)")
    return lo, hi


def initial_point(params: Mapping[str, Any]) -> tuple[str, dict[str, Any], np.ndarray,
                                                      np.ndarray]:
    """(kind, curve_params, S0, P0) of a scenario's keyword arguments."""
    from mesa_econ.config import MarketConfig
    from mesa_econ.model import default_curve_params

    names = set(MarketConfig.__dataclass_fields__)
    mc = MarketConfig(**{k: v for k, v in params.items() if k in names})
    s0 = np.full(mc.n_assets, mc.n_agents * float(mc.initial_holdings))
    curve_params = dict(mc.curve_params) or default_curve_params(mc.curve, s0[0], mc.n_agents)
    p0 = make_curve(mc.curve, n_assets=mc.n_assets, **curve_params).price(s0)
    return mc.curve, curve_params, s0, np.asarray(p0, dtype=float)
