"""The linearised price deviation with agents off, and its analytic stability. Implements §7.2.

With no trading (policy ``hold``) and κ = λ = 0, one Euler-Maruyama step of the deviation
(§3.2-§3.3, :func:`mesa_econ.pricing.update_deviation`) is the affine recursion

    X' = a X + σ(P) dW + ζ (Z − m),   a = 1 − θ·dt,   σ(P) = σ0 + σ1·P,   dW ~ N(0, dt),

with P = f(S*) + X + η. Linearised around the curve, σ(P) = b0 + σ1·(X + η) with
b0 = σ0 + σ1·f(S*), so the second moment obeys

    E[X'²] = ((1 − θ·dt)² + σ1²·dt) E[X²] + (b0² + σ1²σ_η²)·dt + ζ² s².

Mean-square stability is ``(1 − θ·dt)² + σ1²·dt < 1`` (``0 < θ·dt < 2`` when σ1 = 0),
and then X has the stationary variance

    Var X = ((b0² + σ1²σ_η²)·dt + ζ² s²) / (1 − (1 − θ·dt)² − σ1²·dt).

The quote adds η ~ N(0, σ_η²) on top, which no mean reversion removes, so
V = (log P − log f)² ≈ ((X + η) / f)² cannot settle below

    E[V] ≈ (Var X + σ_η²) / f(S*)²        (the noise floor; σ_η²/f² alone with no SDE noise).

``MarketConfig`` rejects θ·dt ≥ 2, so the unstable side is studied with the standalone
process :func:`simulate_linear_deviation`, which takes any θ·dt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mesa_econ.config import check_int, check_number, check_real

__all__ = [
    "LinearCheck",
    "LinearPrediction",
    "check_linear",
    "linear_prediction",
    "linear_twin_exponent",
    "mean_square_factor",
    "mean_square_stable",
    "simulate_linear_deviation",
]


def mean_square_factor(theta: float, dt: float, sigma1: float = 0.0) -> float:
    """Per-step factor of E[X²] for the noise-free part of the deviation. Implements §7.2.

    Notes:
        E[X_{t+1}²] = ((1 − θ·dt)² + σ1²·dt) · E[X_t²] when the additive noise is off.

    Args:
        theta: θ, mean-reversion rate (>= 0).
        dt: time step (> 0).
        sigma1: σ1, the price-proportional volatility coefficient (>= 0).
    """
    _check_coefficients(theta, dt, 0.0, sigma1)
    return (1.0 - theta * dt) ** 2 + sigma1**2 * dt  # §7.2 mean-square factor


def mean_square_stable(theta: float, dt: float, sigma1: float = 0.0) -> bool:
    """Whether the linearised deviation is mean-square stable: (1 − θ·dt)² + σ1²·dt < 1."""
    return mean_square_factor(theta, dt, sigma1) < 1.0


def simulate_linear_deviation(theta: float, dt: float, sigma0: float = 0.0,
                              sigma1: float = 0.0, x0: float | np.ndarray = 1.0,
                              steps: int = 50,
                              rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Paths of the standalone linear deviation X' = (1 − θ·dt) X + (σ0 + σ1·X) dW.

    Unlike ``MarketConfig`` it accepts any θ·dt ≥ 0, so the unstable side (θ·dt ≥ 2) can
    be simulated. ``sigma0`` is the additive volatility (in the model, σ0 + σ1·f(S*)).

    Args:
        theta: θ (>= 0); dt: time step (> 0).
        sigma0, sigma1: additive and multiplicative volatility (>= 0).
        x0: the initial deviation, a scalar or a 1-D array of independent paths.
        steps: number of steps (>= 1).
        rng: generator or seed of the Wiener increments (dW = √dt · N(0, 1)).

    Returns:
        X of shape (steps + 1,) + shape(x0), X[0] = x0.
    """
    _check_coefficients(theta, dt, sigma0, sigma1)
    x0 = _check_x0(x0)
    steps = check_int("steps", steps, low=1)
    xi = np.random.default_rng(rng).standard_normal((steps, *x0.shape))
    return _linear_paths(theta, dt, sigma0, sigma1, x0, xi)


def _linear_paths(theta: float, dt: float, sigma0: float, sigma1: float, x0: np.ndarray,
                  xi: np.ndarray) -> np.ndarray:
    a, sqrt_dt = 1.0 - theta * dt, math.sqrt(dt)
    out = np.empty((xi.shape[0] + 1, *x0.shape))
    out[0] = x0
    with np.errstate(over="ignore", invalid="ignore"):  # the unstable side may overflow
        for t in range(xi.shape[0]):
            x = out[t]
            out[t + 1] = a * x + (sigma0 + sigma1 * x) * sqrt_dt * xi[t]  # §3.3, linearised
    return out


def linear_twin_exponent(theta: float, dt: float, sigma0: float = 0.0, sigma1: float = 0.0,
                         x0: float = 0.0, epsilon: float = 1e-3, steps: int = 50,
                         rng: np.random.Generator | int | None = None) -> float:
    """Twin-run finite-time Lyapunov exponent of the linear deviation, per step.

    Notes:
        Two paths with the same Wiener increments, started at x0 and x0 + ε:
        λ = (1/T) log(|δ(T)| / |δ(0)|). Then δ' = (a + σ1 dW) δ, so λ = log|1 − θ·dt|
        exactly when σ1 = 0 (the additive noise cancels), and E log|a + σ1 dW| otherwise.

    Returns:
        λ per step (−inf when δ(T) = 0 exactly, e.g. θ·dt = 1 and σ1 = 0).
    """
    _check_coefficients(theta, dt, sigma0, sigma1)
    check_number("x0", x0)
    check_number("epsilon", epsilon, 0.0, low_open=True)
    steps = check_int("steps", steps, low=1)
    xi = np.random.default_rng(rng).standard_normal((steps, 2))
    xi[:, 1] = xi[:, 0]  # same noise
    paths = _linear_paths(theta, dt, sigma0, sigma1, np.array([x0, x0 + epsilon]), xi)
    delta = abs(paths[-1, 1] - paths[-1, 0])
    with np.errstate(divide="ignore"):
        return float(np.log(delta / epsilon) / steps)


@dataclass(frozen=True)
class LinearPrediction:
    """What the linearised deviation predicts for one asset (agents off, κ = λ = 0)."""

    ms_factor: float
    """(1 − θ·dt)² + σ1²·dt, the per-step factor of the excess E[X²] (and of E[V])."""
    stable: bool
    """ms_factor < 1: mean-square stable."""
    var_x: float
    """Stationary Var X (inf when not stable)."""
    v_floor_eta: float
    """σ_η² / f(S*)²: the part of E[V] that the quote noise alone puts under V."""
    v_floor: float
    """(Var X + σ_η²) / f(S*)², the stationary E[V] (to second order in (X + η)/f)."""
    v_band: float
    """The 95% quantile of V at stationarity, 3.84 · v_floor ((X + η)/f is Gaussian)."""
    log_band: float
    """Half-width of the 95% band of log P − log f(S*): 1.96 · √v_floor."""
    exponent: float
    """log|1 − θ·dt|, the twin-run exponent per step without σ1 (σ1 lowers it slightly)."""


def linear_prediction(theta: float, dt: float, *, sigma0: float = 0.0, sigma1: float = 0.0,
                      p_star: float = 1.0, sigma_eta: float = 0.0, zeta: float = 0.0,
                      factor_std: float = 0.0) -> LinearPrediction:
    """Stability, stationary variance and noise floor of the linearised deviation. §7.2.

    Notes:
        b0 = σ0 + σ1·P*, Var X = ((b0² + σ1²σ_η²)·dt + ζ²s²) / (1 − (1 − θ·dt)² − σ1²·dt),
        E[V] ≈ (Var X + σ_η²) / P*², with P* = f(S*) (see the module docstring).

    Args:
        theta, dt, sigma0, sigma1: the deviation's coefficients (model units).
        p_star: P* = f(S*), the curve price at the steady state (> 0).
        sigma_eta: σ_η, the quote noise; zeta: ζ; factor_std: s, the std of Z.
    """
    factor = mean_square_factor(theta, dt, sigma1)
    check_number("p_star", p_star, 0.0, low_open=True)
    for name, value in (("sigma_eta", sigma_eta), ("zeta", zeta), ("factor_std", factor_std)):
        check_number(name, value, 0.0)
    b0 = sigma0 + sigma1 * p_star
    source = (b0**2 + sigma1**2 * sigma_eta**2) * dt + zeta**2 * factor_std**2
    stable = factor < 1.0
    var_x = source / (1.0 - factor) if stable else math.inf
    if stable and source == 0.0:
        var_x = 0.0
    floor = (var_x + sigma_eta**2) / p_star**2
    q95 = float(stats.chi2.ppf(0.95, 1))
    with np.errstate(divide="ignore"):
        exponent = float(np.log(abs(1.0 - theta * dt)))
    return LinearPrediction(ms_factor=factor, stable=stable, var_x=var_x,
                            v_floor_eta=sigma_eta**2 / p_star**2, v_floor=floor,
                            v_band=q95 * floor, log_band=1.96 * math.sqrt(floor),
                            exponent=exponent)


@dataclass(frozen=True)
class LinearCheck:
    """The analytic condition of the linear deviation beside a simulation of it."""

    theta_dt: float
    ms_factor: float
    """Analytic per-step factor of E[X²]."""
    stable: bool
    """Analytic: ms_factor < 1."""
    measured_factor: float
    """exp(−rate) of the log-linear fit of the mean V = X² over paths."""
    measured_stable: bool
    """measured_factor < 1."""
    exponent: float
    """Twin-run exponent per step, measured (same noise, x0 and x0 + ε)."""
    n_paths: int
    steps: int


def check_linear(theta: float, dt: float, *, sigma0: float = 0.0, sigma1: float = 0.0,
                 x0: float = 1.0, steps: int = 30, n_paths: int = 1,
                 rng: np.random.Generator | int | None = 0) -> LinearCheck:
    """Simulate the linear deviation and set the measured decay beside the analytic one.

    V = X² is averaged over ``n_paths`` paths from x0; its per-step factor is exp(−rate)
    of :func:`~mesa_econ.analysis.stability_estimators.fit_decay_rate` with no floor (so
    use σ0 = 0: additive noise would put a floor under V). The twin-run exponent uses
    the first path's noise with x0 and x0 + 1e-6·|x0|.
    """
    from mesa_econ.analysis.stability_estimators import fit_decay_rate

    n_paths = check_int("n_paths", n_paths, low=1)
    check_number("x0", x0)
    if x0 == 0.0:
        raise ValueError("x0=0.0 is invalid: expected a nonzero initial deviation")
    gen = np.random.default_rng(rng)
    paths = simulate_linear_deviation(theta, dt, sigma0, sigma1, np.full(n_paths, x0),
                                      steps, gen)
    with np.errstate(over="ignore", invalid="ignore"):
        v_mean = np.mean(paths**2, axis=1)
    fit = fit_decay_rate(v_mean)
    exponent = linear_twin_exponent(theta, dt, sigma0, sigma1, x0, 1e-6 * abs(x0), steps,
                                    gen)
    factor = mean_square_factor(theta, dt, sigma1)
    measured = math.exp(-fit.rate) if math.isfinite(fit.rate) else math.nan
    return LinearCheck(theta_dt=theta * dt, ms_factor=factor, stable=factor < 1.0,
                       measured_factor=measured, measured_stable=measured < 1.0,
                       exponent=exponent, n_paths=n_paths, steps=int(steps))


def _check_coefficients(theta: float, dt: float, sigma0: float, sigma1: float) -> None:
    check_number("theta", theta, 0.0)
    check_number("dt", dt, 0.0, low_open=True)
    check_number("sigma0", sigma0, 0.0)
    check_number("sigma1", sigma1, 0.0)


def _check_x0(x0: float | np.ndarray) -> np.ndarray:
    arr = np.asarray(x0, dtype=float)
    if arr.ndim > 1:
        raise ValueError(f"x0 of shape {arr.shape} is invalid: expected a scalar or a 1-D "
                         "array of initial deviations")
    check_real("x0", arr)
    return arr
