"""The package's one set of input validators, with one error wording.

Every check raises ``ValueError`` worded as::

    {field}={value!r} is invalid: expected {valid}

naming the field (or argument), the value (long values abbreviated: an array as its shape)
and the valid range. Never ``TypeError`` or ``OverflowError``: numeric strings (``"1.0"``),
booleans for numbers, lists for scalars and integers too large for a float (``10**400``)
are all refused here, before they reach numpy or torch. Configs, the model, the metric and
reward functions, the policies and the trainers import these functions; see
``docs/validation.md``.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "check_adjacency",
    "check_bool",
    "check_choice",
    "check_indices",
    "check_int",
    "check_mapping",
    "check_nonnegative",
    "check_number",
    "check_per_asset",
    "check_positive_ints",
    "check_real",
    "check_seed",
    "check_shape",
    "describe",
    "fail",
    "invalid",
    "is_real",
    "real_array",
]

FloatArray = npt.NDArray[np.float64]

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""Integers must fit in int64 (numpy's and torch's default integer)."""

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 6
_REPR.maxlong = 40


def describe(value: Any) -> str:
    """``repr(value)``, abbreviated: an array with more than 6 entries shows its shape."""
    if isinstance(value, np.ndarray) or type(value).__name__ == "Tensor":
        shape = tuple(value.shape)
        if math.prod(shape) > 6:
            return f"<{type(value).__name__} of shape {shape}>"
        return f"{type(value).__name__}({value.tolist()!r})"
    return _REPR.repr(value)


def invalid(field: str, value: Any, valid: str) -> ValueError:
    """The ValueError of the house wording (for ``raise invalid(...) from exc``)."""
    return ValueError(f"{field}={describe(value)} is invalid: expected {valid}")


def fail(field: str, value: Any, valid: str) -> NoReturn:
    """Raise the ValueError of the house wording."""
    raise invalid(field, value, valid)


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def _in(value: float, low: float, high: float, low_open: bool, high_open: bool) -> bool:
    return (value > low if low_open else value >= low) and \
        (value < high if high_open else value <= high)


def is_real(value: Any) -> bool:
    """Whether ``value`` is one finite real number: not a bool, not a string, not an
    array, not an integer beyond float range."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range
        return False


def check_number(field: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """One finite real (Python or numpy scalar, not a bool) in the interval.

    Returns:
        ``value`` as a Python float.
    """
    if not is_real(value) or not _in(value, low, high, low_open, high_open):
        fail(field, value, f"a finite real in {_interval(low, high, low_open, high_open)}")
    return float(value)


def check_int(field: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """An integer (Python or numpy, not a bool) in [low, high] and in int64 range.

    Returns:
        ``value`` as a Python int.
    """
    if high is None:
        valid = "an integer" if low is None else f"an integer >= {low}"
    else:
        valid = f"an integer in [{'-inf' if low is None else low}, {high}]"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        fail(field, value, valid)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(field, value, valid)
    if not INT_MIN <= value <= INT_MAX:
        lo = INT_MIN if low is None else max(INT_MIN, low)
        hi = INT_MAX if high is None else min(INT_MAX, high)
        fail(field, value, f"an integer in [{lo}, {hi}] (int64)")
    return int(value)


def check_bool(field: str, value: Any) -> bool:
    """``True`` or ``False`` (a numpy bool too); not 0/1, not a string."""
    if not isinstance(value, bool | np.bool_):
        fail(field, value, "True or False")
    return bool(value)


def check_choice(field: str, value: Any, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        fail(field, value, f"one of {list(choices)}")
    return value


def real_array(field: str, value: Any, ndims: int | tuple[int, ...] = (0, 1, 2), *,
               finite: bool = True, nonempty: bool = False) -> FloatArray:
    """``value`` as a float64 array of one of ``ndims`` dimensions.

    Refuses strings, booleans, objects and integers beyond float range (entries of an
    int or float array pass; a float64 array passes through without a copy).
    """
    ndims = (ndims,) if isinstance(ndims, int) else ndims
    if type(value) is np.ndarray and value.dtype == np.float64:
        arr = value  # the hot path: the model's own arrays
    else:
        arr = _as_float64(field, value)
    if arr.ndim not in ndims:
        dims = " or ".join(f"{d}-D" for d in ndims)
        fail(field, value, f"a {dims} real array")
    if nonempty and arr.size == 0:
        fail(field, value, "a non-empty real array")
    if finite and not np.isfinite(arr).all():
        fail(field, value, "finite reals (no NaN or inf)")
    return arr


def _as_float64(field: str, value: Any) -> FloatArray:
    valid = "real numbers (not strings or booleans)"
    if isinstance(value, str | bytes | Mapping):
        fail(field, value, valid)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError, OverflowError):  # ragged nesting, odd objects
        fail(field, value, valid)
    if arr.dtype.kind == "O" and all(map(is_real_or_inf, arr.flat)):
        try:  # e.g. Python ints beyond int64 but within float range
            return arr.astype(np.float64)
        except OverflowError:
            fail(field, value, "real numbers within float range")
    if arr.dtype.kind not in "iuf":
        fail(field, value, valid)
    return arr.astype(np.float64, copy=False)


def is_real_or_inf(value: Any) -> bool:
    """A real number (not a bool), finite or not, that converts to a float."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def check_real(field: str, value: Any, low: float = -math.inf, high: float = math.inf, *,
               low_open: bool = False, high_open: bool = False) -> None:
    """A finite real, or an array of them, with every entry in the interval."""
    arr = _as_float64(field, value)
    valid = f"finite reals in {_interval(low, high, low_open, high_open)}"
    if not np.isfinite(arr).all():
        fail(field, value, valid)
    too_low = np.any(arr <= low) if low_open else np.any(arr < low)
    too_high = np.any(arr >= high) if high_open else np.any(arr > high)
    if too_low or too_high:
        fail(field, value, valid)


def check_per_asset(field: str, value: Any, n_assets: int, low: float = -math.inf,
                    high: float = math.inf, *, low_open: bool = False,
                    high_open: bool = False) -> None:
    """A per-asset parameter: one finite real, or a flat sequence/array of ``n_assets``
    of them, each in the interval (no strings, booleans or nested lists)."""
    interval = _interval(low, high, low_open, high_open)
    valid = f"a finite real in {interval} or a sequence of {n_assets} (one per asset)"
    if isinstance(value, np.ndarray):
        ok = value.ndim <= 1 and value.dtype.kind in "iuf"
        entries = value.ravel().tolist() if ok else []
        ok = ok and (value.ndim == 0 or value.shape[0] == n_assets)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        entries, ok = list(value), len(value) == n_assets
    else:
        entries, ok = [value], True
    if not ok or not all(is_real(v) and _in(v, low, high, low_open, high_open)
                         for v in entries):
        fail(field, value, valid)


def check_positive_ints(field: str, value: Any) -> tuple[int, ...]:
    """A non-empty list or tuple of positive integers (layer widths), as a tuple of ints."""
    valid = "a non-empty tuple of positive integers, e.g. (64, 64)"
    if not isinstance(value, list | tuple) or len(value) == 0:
        fail(field, value, valid)
    for width in value:
        if isinstance(width, bool | np.bool_) or not isinstance(width, numbers.Integral) \
                or not 1 <= width <= INT_MAX:
            fail(field, value, valid)
    return tuple(int(w) for w in value)


def check_indices(field: str, value: Any, n: int) -> tuple[int, ...]:
    """One index or a flat sequence/array of indices in [0, n - 1], as a tuple of ints."""
    valid = f"an index or a sequence of indices in [0, {n - 1}]"
    if isinstance(value, np.ndarray):
        if value.ndim > 1 or value.dtype.kind not in "iu":
            fail(field, value, valid)
        entries = value.ravel().tolist()
    elif isinstance(value, list | tuple):
        entries = list(value)
    else:
        entries = [value]
    for j in entries:
        if isinstance(j, bool | np.bool_) or not isinstance(j, numbers.Integral) \
                or not 0 <= j < n:
            fail(field, value, valid)
    return tuple(int(j) for j in entries)


def check_mapping(field: str, value: Any) -> dict:
    """A mapping with string keys (parameter names), as a new dict."""
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        fail(field, value, "a mapping of parameter names to values")
    return dict(value)


_GENERATORS = (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)


def check_seed(field: str, value: Any) -> Any:
    """A seed: None, an integer >= 0 (also as a string, e.g. from a text box, or a float
    without a fractional part) or a numpy Generator/BitGenerator/SeedSequence.

    Returns:
        None, a Python int, or the numpy object unchanged.
    """
    valid = f"None, an integer seed in [0, {INT_MAX}] or a numpy Generator"
    if value is None or isinstance(value, _GENERATORS):
        return value
    number: Any = value
    if isinstance(value, str):
        if value.strip() == "":
            return None
        try:
            number = int(value.strip())
        except ValueError:
            fail(field, value, valid)
    elif isinstance(value, float | np.floating):
        number = int(value) if math.isfinite(value) and float(value).is_integer() else None
    if isinstance(number, bool | np.bool_) or not isinstance(number, numbers.Integral) \
            or not 0 <= number <= INT_MAX:
        fail(field, value, valid)
    return int(number)


def check_shape(field: str, arr: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    """``arr.shape == shape``; ``what`` says where the expected shape comes from."""
    if arr.shape != shape:
        fail(field, arr, f"shape {shape} ({what}), got {arr.shape}")


def check_nonnegative(field: str, arr: np.ndarray) -> None:
    """Every entry >= 0."""
    if (arr < 0).any():
        fail(field, arr, f"every entry >= 0, got min {float(arr.min())!r}")


def check_adjacency(field: str, adjacency: Any, n: int) -> None:
    """An (n, n) matrix (dense or scipy sparse) with a zero diagonal."""
    if getattr(adjacency, "shape", None) != (n, n) or not hasattr(adjacency, "diagonal"):
        fail(field, adjacency, f"an ({n}, {n}) matrix, got shape "
             f"{getattr(adjacency, 'shape', None)}")
    if np.any(np.asarray(adjacency.diagonal()) != 0):
        fail(field, adjacency, "a zero diagonal (an agent is not its own neighbour)")
