"""Metrics of a price series: entropy (§8.2), volatility and log returns (§9), level
variance (§7.1), drift, resilience (§8.3)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mesa_econ.metrics._checks import (
    FloatArray,
    _int,
    _positive_series,
    _scalar_or_vector,
    _series,
)
from mesa_econ.metrics.kernels import entropy_kernel


def price_entropy(prices: npt.ArrayLike, bins: int = 20) -> float | FloatArray:
    """Shannon entropy of the histogram of a price series. Implements §8.2.

    Args:
        prices: series of shape (T,) or (T, M), time along axis 0.
        bins: number of equal-width bins (>= 1) spanning each series' own [min, max];
            the maximum falls in the last bin.

    Returns:
        Entropy in nats: a float for (T,) input, shape (M,) for (T, M). A constant series
        has entropy 0; the value is at most log(min(bins, T)).

    Raises:
        ValueError: bad ``prices`` or ``bins`` < 1 (named).

    Notes:
        H(P_j) = −Σ_b p_b log p_b with p_b = c_b / T, c_b the number of steps whose price
        falls in bin b = min(floor(bins·(P − min P)/(max P − min P)), bins − 1).
    """
    p = _series("prices", prices)
    bins = _int("bins", bins, 1)
    result = entropy_kernel(p.reshape(p.shape[0], -1), bins)
    return _scalar_or_vector(result, p.ndim)


def log_returns(prices: npt.ArrayLike) -> FloatArray:
    """One-step log returns r(t) = log(P(t+1) / P(t)) of a positive price series.

    Args:
        prices: P(t) > 0, shape (T,) or (T, M) with T >= 2.

    Returns:
        r, shape (T − 1,) or (T − 1, M).
    """
    p = _positive_series("prices", prices, 2)
    return np.log(p[1:] / p[:-1])


def volatility(prices: npt.ArrayLike, window: int | None = None) -> float | FloatArray:
    """Volatility: sample std of log returns, the number §9's claims are judged by.

    Scale-free, unlike §7.1's :func:`level_variance`, which grows with the price level.

    Args:
        prices: P(t) > 0, shape (T,) or (T, M), oldest first.
        window: n, the most recent log returns used, in [2, T − 1]; None: all T − 1.

    Returns:
        σ: a float for (T,) input, shape (M,) for (T, M).

    Notes:
        σ_j = sqrt(Σ_t (r_j(t) − r̄_j)² / (n − 1)) over the last n returns
        r_j(t) = log(P_j(t+1) / P_j(t)), r̄_j their mean.
    """
    p = _positive_series("prices", prices, 3 if window is None else 2)
    t = p.shape[0]
    n = t - 1 if window is None else _int("window", window, 2)
    if n > t - 1:
        raise ValueError(f"window={n} is invalid: expected <= T - 1 = {t - 1} returns")
    r = log_returns(p[t - n - 1 :]).reshape(n, -1)
    return _scalar_or_vector(r.std(axis=0, ddof=1), p.ndim)  # §9: std of n log returns


def level_variance(prices: npt.ArrayLike) -> float | FloatArray:
    """Variance of price levels, the curve-tuning objective. Implements §7.1.

    Args:
        prices: series of shape (T,) or (T, M).

    Returns:
        A float for (T,) input, shape (M,) for (T, M).

    Notes:
        (1/T) Σ_t (P_j(t) − P̄_j)², P̄_j the mean over the series (population variance).
    """
    p = _series("prices", prices)
    result = p.reshape(p.shape[0], -1).var(axis=0)  # §7.1
    return _scalar_or_vector(result, p.ndim)


def drift(series: npt.ArrayLike) -> float | FloatArray:
    """Mean log change per step of a positive series (price drift, supply drift).

    Args:
        series: x(t) > 0, shape (T,) or (T, M) with T >= 2.

    Returns:
        A float for (T,) input, shape (M,) for (T, M); log g for x(t) = x(0)·g^t.

    Notes:
        (log x(T−1) − log x(0)) / (T − 1), the mean of the one-step log returns.
    """
    x = _positive_series("series", series, 2)
    result = np.log(x[-1] / x[0]).reshape(-1) / (x.shape[0] - 1)
    return _scalar_or_vector(result, x.ndim)


def resilience(prices: npt.ArrayLike, shock_step: int, window: int) -> float | FloatArray:
    """Resilience of prices after a shock. Implements §8.3.

    Args:
        prices: series of shape (T,) or (T, M), time along axis 0.
        shock_step: t_s, index of the first price of the post-shock window (>= 0).
        window: number of one-step changes averaged (>= 1); needs
            ``shock_step + window <= T - 1``.

    Returns:
        R_j: a float for (T,) input, shape (M,) for (T, M). ``np.inf`` where the price
        does not move at all in the window (a market that does not move is infinitely
        resilient).

    Raises:
        ValueError: bad ``prices``, or ``shock_step``/``window`` outside the series (named).

    Notes:
        R_j = 1 / mean_{t ∈ [t_s, t_s + window)} |P_j(t+1) − P_j(t)|. The first change is
        prices[t_s + 1] − prices[t_s]: pass the index of the last pre-shock price as
        ``shock_step`` to include the jump itself, the first post-shock index to exclude it.
    """
    p = _series("prices", prices)
    t = p.shape[0]
    shock_step = _int("shock_step", shock_step, 0)
    window = _int("window", window, 1)
    if shock_step > t - 2:
        raise ValueError(f"shock_step={shock_step} is invalid: expected <= T - 2 = {t - 2}")
    if shock_step + window > t - 1:
        raise ValueError(
            f"window={window} is invalid: expected shock_step + window <= "
            f"T - 1 = {t - 1} (at most {t - 1 - shock_step})"
        )
    seg = p.reshape(t, -1)[shock_step : shock_step + window + 1]
    mean_change = np.abs(np.diff(seg, axis=0)).mean(axis=0)
    with np.errstate(divide="ignore"):
        result = 1.0 / mean_change  # §8.3; 1/0 -> inf on purpose
    return _scalar_or_vector(result, p.ndim)
