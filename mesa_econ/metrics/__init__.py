"""Evaluation metrics (§7.1, §8, §9): pure functions of arrays, time along axis 0.

One module per idea, every name re-exported here (``mesa_econ.metrics.hhi``):

- :mod:`~mesa_econ.metrics.holdings`: who holds what: ``hhi`` (§8.1), ``gini``,
  ``reserve_coverage`` (§5.1).
- :mod:`~mesa_econ.metrics.prices`: a price series: ``price_entropy`` (§8.2),
  ``log_returns``, ``volatility`` (§9), ``level_variance`` (§7.1), ``drift``,
  ``resilience`` (§8.3).
- :mod:`~mesa_econ.metrics.shocks`: recovery from a shock (§9): ``pre_shock_band``,
  ``recovery_time``, ``shock_recovery``.
- :mod:`~mesa_econ.metrics.resources`: a resource network (§9): ``used_units``,
  ``utilisation``.
- :mod:`~mesa_econ.metrics.kernels`: the unchecked kernels (below).

The metric functions validate their inputs (ValueError naming the argument). The
DataCollector reporters that compute them from a model every step are in
:mod:`mesa_econ.reporters`; they share the public, unchecked kernels
(``hhi_kernel``, ``gini_kernel`` with ``gini_weights``, ``entropy_kernel`` with
``bin_counts`` and ``clogc_table``), which skip validation for the hot path. Nothing here
imports Mesa or torch.

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

from mesa_econ.metrics._checks import FloatArray as FloatArray
from mesa_econ.metrics.holdings import gini, hhi, reserve_coverage
from mesa_econ.metrics.kernels import (
    CLOGC_MAX,
    bin_counts,
    clogc_table,
    entropy_kernel,
    gini_kernel,
    gini_weights,
    hhi_kernel,
)
from mesa_econ.metrics.prices import (
    drift,
    level_variance,
    log_returns,
    price_entropy,
    resilience,
    volatility,
)
from mesa_econ.metrics.resources import used_units, utilisation
from mesa_econ.metrics.shocks import pre_shock_band, recovery_time, shock_recovery

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
