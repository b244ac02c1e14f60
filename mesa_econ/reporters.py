"""DataCollector reporters: a model's metrics as plain floats, every step (§7.1, §8, §9).

The ``report_*`` functions read a model's arrays every step, so they skip validation (the
model's arrays are trusted), run in a few microseconds and return plain Python ``float``
(per-asset ones, ``prices_of`` etc., a list of M floats), which the model's
:class:`~mesa_econ.collector.MarketCollector` appends without a copy. Which of them a
model collects is its ``reporters=`` option (:mod:`mesa_econ.collector`). They are
module-level so that ``batch_run`` can pickle them; per-asset reporters are used as
``functools.partial(price_of, asset=j)``, agent reporters take a TraderAgent. The
numbers are those of the pure functions in :mod:`mesa_econ.metrics` (tested against them).

Decisions a user should know:

- ``report_gini`` assumes wealth >= 0 (the model never lets agents go negative).
- ``report_level_variance`` and ``report_price_entropy`` do not depend on the order of the
  rows of ``price_window``: a model may hand over its ring buffer without rolling it.
  ``report_volatility`` (log returns) needs the order: it reads
  ``price_window_ordered()``.
- ``report_price_entropy`` uses 20 bins, the default of ``price_entropy``.
- Reporters never raise and return finite numbers on any state a step can produce
  (issue 10): a supply whose square underflows (S <= 1e-150) or overflows takes HHI's
  scaled form Σ_i (H_ij / S_j)²; returns whose ratio overflows are differences of logs;
  a sum or variance that overflows is recomputed on scaled values and, if the true value
  itself exceeds float64, saturates at the largest float. Ordinary states keep the fast
  path's numbers bit for bit.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from mesa_econ.metrics import (
    CLOGC_MAX,
    FloatArray,
    bin_counts,
    clogc_table,
    entropy_kernel,
    gini_kernel,
    gini_weights,
    utilisation,
)

__all__ = [
    "agent_capital",
    "agent_reward",
    "agent_wealth",
    "curve_price_of",
    "curve_prices_of",
    "hhi_of",
    "hhis_of",
    "price_of",
    "prices_of",
    "report_gini",
    "report_hhi",
    "report_level_variance",
    "report_mean_capital",
    "report_mean_price",
    "report_mean_reward",
    "report_price_drift",
    "report_price_entropy",
    "report_reserve_coverage",
    "report_supply_drift",
    "report_total_wealth",
    "report_utilisation",
    "report_volatility",
    "supplies_of",
    "supply_of",
]


# Hot path: no validation, Python floats out, few numpy calls. M (assets) is small, so
# (M,) vectors are reduced in Python after .tolist(), which beats numpy's call overhead.

_MAX = float(np.finfo(float).max)
_SQUARE_SAFE = (1e-150, 1e150)
"""Supplies whose square is a normal float64 (HHI's fast form q / S² is exact there)."""


def _mean(values: np.ndarray) -> float:
    """Σx / n, or Σ(x / n) where Σx overflows (then finite unless the mean itself is not)."""
    total = float(values.sum())
    if math.isfinite(total):
        return total / values.shape[0]
    return _saturate(float((values / values.shape[0]).sum()))


def _saturate(value: float) -> float:
    """``value`` clipped to ±the largest float64 (a true value beyond float64)."""
    return min(max(value, -_MAX), _MAX)


def report_mean_price(model: Any) -> float:
    """Mean quoted price over assets."""
    prices = model.prices.tolist()
    try:
        return math.fsum(prices) / len(prices)
    except OverflowError:  # fsum's intermediate overflow
        return _mean(model.prices)


def report_hhi(model: Any) -> float:
    """Mean over assets of HHI_j (§8.1), with S_j = ``model.supply``."""
    squares = np.einsum("ij,ij->j", model.holdings, model.holdings).tolist()
    supply = model.supply.tolist()
    low, high = _SQUARE_SAFE
    total = math.fsum(q / (s * s) if low < s < high else _hhi_scaled(model, j, s)
                      for j, (q, s) in enumerate(zip(squares, supply, strict=True)))
    return total / len(supply)  # §8.1, averaged over assets


def hhis_of(model: Any) -> list[float]:
    """HHI_j (§8.1) of every asset, a list of M floats (0.0 where S_j = 0)."""
    squares = np.einsum("ij,ij->j", model.holdings, model.holdings).tolist()
    low, high = _SQUARE_SAFE
    return [q / (s * s) if low < s < high else _hhi_scaled(model, j, s)
            for j, (q, s) in enumerate(zip(squares, model.supply.tolist(), strict=True))]


def _hhi_scaled(model: Any, asset: int, supply: float) -> float:
    """HHI_j = Σ_i (H_ij / S_j)² without forming S² (0.0 when S_j = 0)."""
    if not supply > 0:
        return 0.0
    shares = model.holdings[:, asset] / supply
    return float(shares @ shares)  # §8.1


# Per-size caches for the reporters (sizes are N and the window lengths: few entries).
_REPORT_GINI_WEIGHTS: dict[int, FloatArray] = {}
_REPORT_MEAN_WEIGHTS: dict[int, FloatArray] = {}


def report_gini(model: Any) -> float:
    """Gini coefficient of the agents' wealth (assumed >= 0)."""
    wealth = model.wealth
    weights = _REPORT_GINI_WEIGHTS.get(wealth.shape[0])
    if weights is None:
        weights = _REPORT_GINI_WEIGHTS.setdefault(wealth.shape[0], gini_weights(wealth.shape[0]))
    gini = gini_kernel(wealth, weights)
    if math.isfinite(gini):
        return gini
    return gini_kernel(wealth / float(wealth.max()), weights)  # scale-free; Σ overflowed


def report_reserve_coverage(model: Any) -> float:
    """Smallest reserve coverage R_j / R_j(S_j) over assets (1.0 where R(S) == 0)."""
    pairs = zip(model.reserve.tolist(), model.curve_reserve.tolist(), strict=True)
    with np.errstate(over="ignore"):
        return _saturate(min(r / c if c > 0 else 1.0 for r, c in pairs))


def report_volatility(model: Any) -> float:
    """Mean over assets of the std of log returns over the price window (oldest first,
    ``PRICE_WINDOW`` prices; :func:`mesa_econ.metrics.volatility`); 0.0 before the window
    has three prices."""
    window = model.price_window_ordered()
    if window.shape[0] < 3 or not window.min() > 0.0:
        return 0.0
    with np.errstate(over="ignore"):
        returns = np.log(window[1:] / window[:-1])
    if not math.isfinite(returns.sum()):  # a ratio beyond float64: difference of logs
        logs = np.log(window)
        returns = logs[1:] - logs[:-1]
    std = _column_std(returns)
    return float(np.add.reduce(std)) / std.shape[0]  # the mean: the headline volatility


def _column_std(x: np.ndarray) -> np.ndarray:
    """``x.std(axis=0, ddof=1)`` of a (T, M) array, T >= 2: numpy's own operations in its
    order (the same bits), without its Python-level dispatch."""
    n = x.shape[0]
    dev = x - np.add.reduce(x, axis=0, keepdims=True) / n
    np.square(dev, out=dev)
    return np.sqrt(np.add.reduce(dev, axis=0) / (n - 1))


def report_level_variance(model: Any) -> float:
    """Mean over assets of the §7.1 level variance of ``model.price_window``."""
    window = model.price_window
    mean_weights = _REPORT_MEAN_WEIGHTS.get(window.shape[0])
    if mean_weights is None:
        mean_weights = _REPORT_MEAN_WEIGHTS.setdefault(
            window.shape[0], np.full(window.shape[0], 1.0 / window.shape[0])
        )
    with np.errstate(over="ignore", invalid="ignore"):
        dev = window - mean_weights @ window  # one matmul: the mean of every column
        variance = float(np.vdot(dev, dev)) / dev.size  # §7.1, averaged over assets
    if math.isfinite(variance):
        return variance
    scale = float(np.abs(window).max())  # prices of ~1e154 and more: square after scaling
    dev = window / scale - mean_weights @ (window / scale)
    with np.errstate(over="ignore"):
        return _saturate(float(np.vdot(dev, dev)) / dev.size * scale * scale)


def report_price_drift(model: Any) -> float:
    """Mean over assets of the quote's drift over the price window: (log P(t) − log
    P(t−W+1))/(W − 1), the mean log change per step (:func:`mesa_econ.metrics.drift`);
    0.0 before the window has two prices."""
    window = model.price_window_ordered()
    if window.shape[0] < 2:
        return 0.0
    return _mean_log_change(window[0], window[-1], window.shape[0] - 1)


def report_supply_drift(model: Any) -> float:
    """Mean over assets of the supply's drift since the start, (log S(t) − log S(0))/t
    (:func:`mesa_econ.metrics.drift` of the supply series); 0.0 at t = 0 or where a
    supply is 0."""
    if model.t == 0:
        return 0.0
    return _mean_log_change(model.initial_supply, model.supply, model.t)


def _mean_log_change(start: np.ndarray, end: np.ndarray, steps: int) -> float:
    """mean_j (log end_j − log start_j) / steps (logs: no ratio overflow); 0.0 unless
    every value is > 0. For a few assets on Python floats (cheaper than numpy calls)."""
    if start.size <= 16:
        a, b = start.tolist(), end.tolist()
        if not (min(a) > 0.0 and min(b) > 0.0):
            return 0.0
        return math.fsum(map(operator.sub, map(math.log, b), map(math.log, a))) / len(a) / steps
    if not ((start > 0).all() and (end > 0).all()):
        return 0.0
    return float((np.log(end) - np.log(start)).mean()) / steps


def report_price_entropy(model: Any) -> float:
    """Mean over assets of the price entropy (§8.2, 20 bins) of ``model.price_window``."""
    window = model.price_window
    t, m = window.shape
    if t > CLOGC_MAX:
        return float(entropy_kernel(window, 20).mean())
    table = clogc_table(t)
    total = float(table[bin_counts(window, 20)].sum())  # Σ over assets and bins of c log c
    return max((m * float(table[t]) - total) / (t * m), 0.0)  # §8.2, averaged over assets


def report_utilisation(model: Any) -> float:
    """Utilisation U of the resource network (§9; 0.0 without needs or capacity)."""
    if model.demand is None or model.capacity is None:
        return 0.0
    return float(utilisation(model.holdings, model.demand, model.capacity))


def report_mean_capital(model: Any) -> float:
    """Mean capital B_i over agents."""
    return _mean(model.capital)


def report_total_wealth(model: Any) -> float:
    """Total wealth Σ_i (B_i + Σ_j H_ij v_j), v the model's profit mark."""
    with np.errstate(over="ignore"):
        return _saturate(float(model.wealth.sum()))


def report_mean_reward(model: Any) -> float:
    """Mean over agents of the last step's total reward."""
    return _mean(model.last_rewards)


def prices_of(model: Any) -> list[float]:
    """Quoted prices P_j of every asset, a list of M floats."""
    return model.prices.tolist()


def curve_prices_of(model: Any) -> list[float]:
    """Curve prices f_j(S_j) of every asset, a list of M floats."""
    return model.curve_prices.tolist()


def supplies_of(model: Any) -> list[float]:
    """Supplies S_j of every asset, a list of M floats."""
    return model.supply.tolist()


def price_of(model: Any, asset: int) -> float:
    """Quoted price P_j of one asset."""
    return float(model.prices[asset])


def curve_price_of(model: Any, asset: int) -> float:
    """Curve price f_j(S_j) of one asset."""
    return float(model.curve_prices[asset])


def supply_of(model: Any, asset: int) -> float:
    """Supply S_j of one asset."""
    return float(model.supply[asset])


def hhi_of(model: Any, asset: int) -> float:
    """HHI_j (§8.1) of one asset; 0.0 when its supply is 0 (the same number as
    :func:`hhis_of`, which the collector calls once for every asset)."""
    return hhis_of(model)[asset]


def agent_capital(agent: Any) -> float:
    """Capital B_i of a TraderAgent."""
    return float(agent.capital)


def agent_wealth(agent: Any) -> float:
    """Wealth of a TraderAgent (marked as the profit reward marks it)."""
    return float(agent.wealth)


def agent_reward(agent: Any) -> float:
    """Last reward of a TraderAgent."""
    return float(agent.reward)
