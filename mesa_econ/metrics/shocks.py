"""Recovery from a price shock (§9): the pre-shock band, the steps until the quote stays
inside it, and the deviation from the curve beside it."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import check_real, check_shape
from mesa_econ.metrics._checks import (
    FloatArray,
    _array,
    _int,
    _nonnegative,
    _per_asset,
    _scalar_or_vector,
    _series,
)


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
