"""Evaluation metrics (§7.1, §8, §9): pure functions of arrays, time along axis 0.

The metric functions validate their inputs (ValueError naming the argument). The
DataCollector reporters that compute them from a model every step are in
:mod:`mesa_econ.reporters`; they share the public, unchecked kernels below
(``hhi_kernel``, ``gini_kernel`` with ``gini_weights``, ``entropy_kernel`` with
``bin_counts`` and ``clogc_table``), which skip validation for the hot path.

Decisions a user should know:

- ``hhi``: an asset with zero supply has HHI 0.0 (no holder, no concentration); never NaN.
- ``price_entropy``: ``bins`` equal-width bins over the series' own [min, max] (the maximum
  falls in the last bin, as in ``np.histogram``); a constant series has entropy 0 (nats).
  The bins follow the series' range: the entropy measures the *shape* of the distribution.
- ``volatility`` is the sample std (ddof=1) of log returns over the last ``window`` returns,
  the number §9's claims are judged by; §7.1's variance of price levels is
  ``level_variance``.
- ``resilience`` is ``np.inf`` when the price does not move at all in the window.
- ``reserve_coverage`` is 1.0 for an asset whose curve reserve R(S) is 0 (nothing to cover).
- ``recovery_time`` counts from ``shock_step`` to the *first* step of a run of ``hold``
  in-band steps; a run cut off by the end of the series does not count (None).
- ``utilisation`` scales use down to each capacity C_j, so U <= 1; 1.0 with no demand.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import (
    check_int,
    check_nonnegative,
    check_real,
    check_shape,
    fail,
    real_array,
)

__all__ = [
    "CLOGC_MAX",
    "bin_counts",
    "clogc_table",
    "drift",
    "entropy_kernel",
    "gini",
    "gini_kernel",
    "gini_weights",
    "hhi",
    "hhi_kernel",
    "level_variance",
    "log_returns",
    "pre_shock_band",
    "price_entropy",
    "recovery_time",
    "reserve_coverage",
    "resilience",
    "shock_recovery",
    "used_units",
    "utilisation",
    "volatility",
]

FloatArray = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------- validation


def _array(name: str, value: npt.ArrayLike, ndims: tuple[int, ...]) -> FloatArray:
    return real_array(name, value, ndims, nonempty=True)


_nonnegative = check_nonnegative


def _int(name: str, value: Any, low: int) -> int:
    return check_int(name, value, low)


def _series(name: str, prices: npt.ArrayLike) -> FloatArray:
    """A price series of shape (T,) or (T, M), time along axis 0."""
    return _array(name, prices, (1, 2))


def _positive_series(name: str, value: npt.ArrayLike, min_steps: int) -> FloatArray:
    """A series (T,) or (T, M) with T >= min_steps and every entry > 0."""
    arr = _series(name, value)
    if arr.shape[0] < min_steps:
        fail(name, arr, f"a series of at least {min_steps} steps, got shape {arr.shape}")
    if (arr <= 0).any():
        fail(name, arr, f"every entry > 0, got min {float(arr.min())!r}")
    return arr


def _scalar_or_vector(result: FloatArray, ndim: int) -> float | FloatArray:
    return float(result[0]) if ndim == 1 else result


# ----------------------------------------------------------------------------- kernels
# Unchecked array kernels shared by the metric functions above and the DataCollector
# reporters (mesa_econ.reporters), which call them every step on a model's own arrays.
# They skip validation: pass float64 arrays of the documented shapes.


def hhi_kernel(holdings: FloatArray, supply: FloatArray) -> FloatArray:
    """HHI_j = Σ_i H_ij² / S_j² of each asset (§8.1), unchecked; 0.0 where S_j = 0.

    Args:
        holdings: H_ij, shape (N, M). supply: S_j, shape (M,).

    Returns:
        Shape (M,). (S² underflows for S <= 1e-162: the reporters then take Σ (H/S)².)
    """
    squares = np.einsum("ij,ij->j", holdings, holdings)
    out = np.zeros_like(squares)
    np.divide(squares, supply * supply, out=out, where=supply > 0)  # §8.1
    return out


CLOGC_MAX = 4096
"""Longest series whose entropy reads c·log(c) from :func:`clogc_table` (longer: logs)."""
_CLOGC = np.zeros(1)


def clogc_table(t: int) -> FloatArray:
    """c·log(c) for the integer counts c = 0, 1, ..., at least up to ``t`` (<= CLOGC_MAX).

    Grown on demand and shared, so that the entropy of windows of up to ``CLOGC_MAX``
    steps needs no log per call. Read-only: index it, do not write to it.
    """
    global _CLOGC
    if _CLOGC.shape[0] <= t:
        c = np.arange(min(max(2 * t, 64), CLOGC_MAX) + 1, dtype=float)
        _CLOGC = c * np.log(np.maximum(c, 1.0))
        _CLOGC.setflags(write=False)
    return _CLOGC


_OFFSETS: dict[tuple[int, int], npt.NDArray[np.intp]] = {}


def bin_counts(series: FloatArray, bins: int) -> npt.NDArray[np.intp]:
    """Histogram counts, shape (M, bins), of each column of a (T, M) series (unchecked).

    Bin b = min(floor(bins·(P − min P)/(max P − min P)), bins − 1); a constant column
    falls in bin 0. Columns are offset by j·bins so that one bincount serves all.
    """
    m = series.shape[1]
    ordered = np.sort(series, axis=0)  # cheaper than separate min and max reductions
    low = ordered[0]
    # A zero span gives a huge finite scale, and (P - low)·scale = 0·scale = 0: bin 0.
    scale = bins / np.maximum(ordered[-1] - low, 1e-300)
    np.subtract(ordered, low, out=ordered)
    np.multiply(ordered, scale, out=ordered)
    idx = ordered.astype(np.intp)
    np.minimum(idx, bins - 1, out=idx)  # the maximum belongs to the last bin
    if m > 1:
        offsets = _OFFSETS.get((m, bins))
        if offsets is None:
            offsets = np.arange(0, m * bins, bins, dtype=np.intp)
            _OFFSETS[(m, bins)] = offsets
        idx += offsets
    return np.bincount(idx.ravel(), minlength=m * bins).reshape(m, bins)


def entropy_kernel(series: FloatArray, bins: int) -> FloatArray:
    """Entropy (nats) per column of the bin counts c_b of a (T, M) series (§8.2), unchecked.

    H = −Σ_b (c_b/T) log(c_b/T) = (T log T − Σ_b c_b log c_b) / T; both terms come from one
    table, so a single occupied bin (c = T) gives exactly 0.

    Returns:
        Shape (M,).
    """
    t = series.shape[0]
    counts = bin_counts(series, bins)
    if t > CLOGC_MAX:  # long series: direct form, log(T/T) = 0 exactly
        return (counts * np.log(t / np.maximum(counts, 1))).sum(axis=1) / t  # §8.2
    table = clogc_table(t)
    return np.maximum((table[t] - table[counts].sum(axis=1)) / t, 0.0)  # §8.2


def gini_weights(n: int) -> FloatArray:
    """The (N, 2) weights of :func:`gini_kernel`: columns 2i − N − 1 (i = 1..N) and 1, so
    that one matmul of the sorted values gives the numerator and the total."""
    i = np.arange(1, n + 1, dtype=float)
    return np.stack([2.0 * i - n - 1.0, np.ones(n)], axis=1)


def gini_kernel(x: FloatArray, weights: FloatArray) -> float:
    """Gini coefficient of values x >= 0, shape (N,), unchecked (0.0 when Σx = 0).

    Args:
        x: the values. weights: ``gini_weights(N)`` (callers cache it per N).

    Notes:
        G = Σ_i (2i − N − 1) x_(i) / (N Σ x), x sorted ascending: one O(N log N) sort.
        NaN or inf where Σx overflows (the reporter rescales then).
    """
    num, total = (np.sort(x) @ weights).tolist()
    if total <= 0:
        return 0.0
    return max(num / (x.shape[0] * total), 0.0)  # G = Σ (2i−N−1) x_(i) / (N Σx); ≥ 0 exactly


# ------------------------------------------------------------------------------ metrics


def hhi(holdings: npt.ArrayLike, supply: npt.ArrayLike | None = None) -> FloatArray:
    """Herfindahl-Hirschman concentration index of each asset. Implements §8.1.

    Args:
        holdings: H_ij >= 0, shape (N, M).
        supply: S_j, shape (M,); defaults to ``holdings.sum(axis=0)``.

    Returns:
        HHI_j, shape (M,): 1 when one agent holds the whole supply, 1/N when N agents hold
        equal shares; 0.0 for an asset with zero supply.

    Raises:
        ValueError: wrong shapes or negative holdings/supply (named).

    Notes:
        HHI_j = Σ_i (H_ij / S_j)².
    """
    h = _array("holdings", holdings, (2,))
    _nonnegative("holdings", h)
    if supply is None:
        s = h.sum(axis=0)
    else:
        s = _array("supply", supply, (1,))
        check_shape("supply", s, (h.shape[1],), "M from holdings")
        _nonnegative("supply", s)
    return hhi_kernel(h, s)


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


def gini(values: npt.ArrayLike) -> float:
    """Gini coefficient of nonnegative values (inequality of wealth).

    Args:
        values: x_i >= 0, shape (N,).

    Returns:
        G in [0, 1 − 1/N]: 0 when all values are equal, → 1 when one holds everything.
        0.0 when every value is 0.

    Raises:
        ValueError: empty, not 1-D, non-finite or negative ``values``.

    Notes:
        G = Σ_i Σ_k |x_i − x_k| / (2 N² x̄) = Σ_i (2i − N − 1) x_(i) / (N Σ_i x_i),
        x_(1) <= ... <= x_(N) sorted, i from 1.
    """
    x = _array("values", values, (1,))
    _nonnegative("values", x)
    return gini_kernel(x, gini_weights(x.shape[0]))


def reserve_coverage(reserve: npt.ArrayLike, curve_reserve: npt.ArrayLike) -> FloatArray:
    """Fraction of the curve's reserve R(S) actually held (solvency of the curve, §5.1).

    Args:
        reserve: R_j held, >= 0, shape (M,).
        curve_reserve: R_j(S_j) = ∫_0^S f_j, >= 0, shape (M,).

    Returns:
        reserve / R(S), shape (M,); 1.0 where R(S) == 0.
    """
    r = _array("reserve", reserve, (1,))
    c = _array("curve_reserve", curve_reserve, (1,))
    check_shape("curve_reserve", c, r.shape, "the shape of reserve")
    _nonnegative("reserve", r)
    _nonnegative("curve_reserve", c)
    out = np.ones_like(r)
    np.divide(r, c, out=out, where=c > 0)
    return out


def recovery_time(
    prices: npt.ArrayLike,
    reference: float | npt.ArrayLike,
    shock_step: int,
    band: float | npt.ArrayLike,
    hold: int = 5,
) -> int | None:
    """Steps from a shock until prices stay near a reference. Implements §9 (shock recovery).

    Args:
        prices: series of shape (T,) or (T, M), time along axis 0.
        reference: P*, scalar or shape (M,).
        shock_step: index of the shock, in [0, T − 1].
        band: half-width of the band around P*, >= 0; scalar or shape (M,).
        hold: number of consecutive in-band steps that count as recovered, >= 1.

    Returns:
        t* − shock_step, where t* >= shock_step is the first step with
        |P(s) − P*| <= band for every s in [t*, t* + hold); for (T, M) input the maximum
        over assets. None if some asset never recovers within the series (a run of
        in-band steps cut off by the end of the series does not count).

    Raises:
        ValueError: bad ``prices``, ``reference``, ``shock_step``, ``band`` or ``hold``.
    """
    p = _series("prices", prices)
    t = p.shape[0]
    p2 = p.reshape(t, -1)
    m = p2.shape[1]
    shock_step = _int("shock_step", shock_step, 0)
    if shock_step > t - 1:
        raise ValueError(f"shock_step={shock_step} is invalid: expected <= T - 1 = {t - 1}")
    hold = _int("hold", hold, 1)
    ref = _per_asset("reference", reference, m)
    width = _per_asset("band", band, m)
    _nonnegative("band", width)
    inside = np.abs(p2[shock_step:] - ref) <= width  # §9: |P − P*| <= band
    n_windows = inside.shape[0] - hold + 1
    if n_windows < 1:
        return None
    runs = np.concatenate([np.zeros((1, m), dtype=np.intp), np.cumsum(inside, axis=0)])
    recovered = (runs[hold:] - runs[:n_windows]) == hold  # in band for `hold` steps from t
    if not recovered.any(axis=0).all():
        return None
    return int(recovered.argmax(axis=0).max())


def _per_asset(name: str, value: float | npt.ArrayLike, m: int) -> FloatArray:
    arr = _array(name, value, (0, 1))
    if arr.ndim == 1:
        check_shape(name, arr, (m,), "a scalar or one value per asset")
    return arr


def pre_shock_band(
    prices: npt.ArrayLike, shock_step: int, window: int = 20, width: float = 2.0
) -> tuple[float | FloatArray, float | FloatArray]:
    """Reference price and band before a shock. Implements §9 (shock recovery).

    Args:
        prices: series of shape (T,) or (T, M).
        shock_step: t_s, index of the first price the shock moves, in [window, T − 1].
        window: w >= 2, the pre-shock prices used, prices[t_s − w : t_s].
        width: k >= 0, half-width of the band in standard deviations.

    Returns:
        (P*, band): floats for (T,) input, shape (M,) each for (T, M).

    Notes:
        P* = mean of the w pre-shock prices, band = max(k·s, 1e-12·|P*|) with s their
        sample std (ddof=1); the floor keeps a flat market's band above 0.
    """
    p = _series("prices", prices)
    window = _int("window", window, 2)
    shock_step = _int("shock_step", shock_step, 0)
    if not window <= shock_step <= p.shape[0] - 1:
        raise ValueError(
            f"shock_step={shock_step} is invalid: expected in [window, T - 1] "
            f"= [{window}, {p.shape[0] - 1}]"
        )
    check_real("width", width, 0.0)
    before = p.reshape(p.shape[0], -1)[shock_step - window : shock_step]
    reference = before.mean(axis=0)
    band = np.maximum(width * before.std(axis=0, ddof=1), 1e-12 * np.abs(reference))  # §9
    return _scalar_or_vector(reference, p.ndim), _scalar_or_vector(band, p.ndim)


def shock_recovery(
    prices: npt.ArrayLike,
    curve_prices: npt.ArrayLike,
    shock_step: int,
    window: int = 20,
    width: float = 2.0,
    hold: int = 5,
) -> dict[str, Any]:
    """Recovery of the quoted price from a shock. Implements §9 (shock recovery).

    What recovers is the quoted price P, into the band of its own pre-shock prices
    (:func:`pre_shock_band`) for ``hold`` steps (:func:`recovery_time`). The deviation
    P − f(S) from the bonding curve is reported beside it; it does not decide recovery.

    Args:
        prices: quoted P(t), shape (T,) or (T, M).
        curve_prices: f(S(t)), the same shape.
        shock_step, window, width: as in :func:`pre_shock_band`.
        hold: in-band steps that count as recovered, in [1, T − shock_step].

    Returns:
        ``recovery_time`` (int, max over assets, or None), ``reference``, ``band``, ``hold``,
        ``peak_deviation``, ``final_deviation`` (floats for (T,), shape (M,) for (T, M)).

    Notes:
        peak_deviation = max_{t >= t_s} |P(t) − f(S(t))|; final_deviation = mean of
        |P(t) − f(S(t))| over the last ``hold`` steps of the series.
    """
    p = _series("prices", prices)
    curve = _array("curve_prices", curve_prices, (1, 2))
    check_shape("curve_prices", curve, p.shape, "the shape of prices")
    reference, band = pre_shock_band(p, shock_step, window, width)
    hold = _int("hold", hold, 1)
    if shock_step + hold > p.shape[0]:
        raise ValueError(
            f"hold={hold} is invalid: expected <= T - shock_step = {p.shape[0] - shock_step}"
        )
    deviation = np.abs(p - curve).reshape(p.shape[0], -1)[shock_step:]  # §9: |P − f(S)|
    return {
        "recovery_time": recovery_time(p, reference, shock_step, band, hold),
        "reference": reference,
        "band": band,
        "hold": hold,
        "peak_deviation": _scalar_or_vector(deviation.max(axis=0), p.ndim),
        "final_deviation": _scalar_or_vector(deviation[-hold:].mean(axis=0), p.ndim),
    }


def _resources(h: npt.ArrayLike, d: npt.ArrayLike, c: npt.ArrayLike) -> list[FloatArray]:
    """Checked holdings (N, M), demand (N, M) and capacity (M,) > 0."""
    h, d = _array("holdings", h, (2,)), _array("demand", d, (2,))
    c = _array("capacity", c, (1,))
    check_shape("demand", d, h.shape, "the shape of holdings")
    check_shape("capacity", c, (h.shape[1],), "M from holdings")
    _nonnegative("holdings", h)
    _nonnegative("demand", d)
    check_real("capacity", c, 0.0, low_open=True)
    return [h, d, c]


def used_units(
    holdings: npt.ArrayLike, demand: npt.ArrayLike, capacity: npt.ArrayLike
) -> FloatArray:
    """Units each agent uses, capacity binding. Implements §9 (resource network).

    Args:
        holdings: H_ij >= 0, shape (N, M).
        demand: d_ij >= 0, the agents' needs, shape (N, M).
        capacity: C_j > 0, shape (M,).

    Returns:
        used_ij, shape (N, M), with 0 <= used_ij <= d_ij and Σ_i used_ij <= C_j.

    Notes:
        used_ij = min(H_ij, d_ij)·min(1, C_j / Σ_k min(H_kj, d_kj)), 0 where the sum is 0:
        over capacity, every user's use shrinks by the same factor.
    """
    h, d, c = _resources(holdings, demand, capacity)
    wanted = np.minimum(h, d)
    total = wanted.sum(axis=0)
    scale = np.ones_like(c)
    np.divide(c, total, out=scale, where=total > c)  # min(1, C/Σ); 1 where Σ = 0
    return wanted * scale  # §9


def utilisation(holdings: npt.ArrayLike, demand: npt.ArrayLike, capacity: npt.ArrayLike) -> float:
    """Utilisation efficiency of a resource network. Implements §9 (resource network).

    Args:
        holdings, demand, capacity: as in :func:`used_units`.

    Returns:
        U in [0, 1]; 1.0 when there is no demand at all.

    Notes:
        U = Σ_ij used_ij / Σ_j min(C_j, Σ_i d_ij). Since Σ_i used_ij =
        min(C_j, Σ_i min(H_ij, d_ij)) <= min(C_j, Σ_i d_ij), U <= 1 by construction.
    """
    h, d, c = _resources(holdings, demand, capacity)
    # Σ_i used_ij in closed form: termwise <= the denominator's, also in floating point.
    used = float(np.minimum(c, np.minimum(h, d).sum(axis=0)).sum())
    achievable = float(np.minimum(c, d.sum(axis=0)).sum())
    return used / achievable if achievable > 0 else 1.0  # §9
