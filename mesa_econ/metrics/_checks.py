"""Input checks shared by the metric functions (ValueError naming the argument)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mesa_econ._validation import check_int, check_nonnegative, check_shape, fail, real_array

FloatArray = npt.NDArray[np.float64]


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


def _per_asset(name: str, value: float | npt.ArrayLike, m: int) -> FloatArray:
    arr = _array(name, value, (0, 1))
    if arr.ndim == 1:
        check_shape(name, arr, (m,), "a scalar or one value per asset")
    return arr


def _scalar_or_vector(result: FloatArray, ndim: int) -> float | FloatArray:
    return float(result[0]) if ndim == 1 else result
