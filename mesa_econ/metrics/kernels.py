"""Unchecked array kernels of the concentration and entropy metrics (§8.1, §8.2, Gini).

Shared by the checked metric functions (:mod:`mesa_econ.metrics.holdings`,
:mod:`mesa_econ.metrics.prices`) and the DataCollector reporters
(:mod:`mesa_econ.reporters`), which call them every step on a model's own arrays. They
skip validation: pass float64 arrays of the documented shapes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mesa_econ.metrics._checks import FloatArray


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
