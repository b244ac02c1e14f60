"""Reference market workload (../shared/WORKLOAD.md): EconomyModel against the plain numpy loop.

The baseline is ``../shared/bench/rmw_numpy.py`` itself (imported from there, not copied):
the fastest plain numpy loop of the workload we know (BLAS column sums, in-place updates,
no per-step allocations). The model runs the workload's own configuration, pinned here so
that later changes of the package's defaults do not move it: random traders, Watts-Strogatz
k = 4, p = 0.1, M = 3, the stated constants, spot settlement, θ·dt = 1, a profit-only
reward (liquidation mark), and the workload's records (``reporters="rmw"``: P_j, HHI_j,
mean B). Rows, each timed over the same steps, interleaved, median of the repeats:

- ``rmw_numpy``: the baseline loop (set-up excluded);
- ``model rmw``: EconomyModel.step with the RMW's reporters (the targets' row);
- ``model default``: the same model with the default reporter set (Gini's sort, the window
  metrics), reported separately;
- ``model reference``: the RMW model with ``fast_paths=False`` (``dynamics.market_step`` and
  ``rewards.compute_rewards``), to show what the speed-only paths buy.

Then the parts the issue asks about: the rollback snapshot taken before every step, and a
curve-settlement step whose budgets bind (the Newton solve) against one where none binds.

    python benchmarks/market_step.py [--sizes 50 500 5000] [--steps 200] [--repeats 7]
                                     [--rmw-dir ../shared/bench] [--json PATH]

Targets (issue 12, item 2): model rmw / rmw_numpy >= 0.5 at N = 5000 and >= 0.35 at N = 50.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

from mesa_econ.model import EconomyModel

torch.set_num_threads(1)

RMW = {
    "n_assets": 3, "graph": "watts_strogatz", "graph_params": {"k": 4, "p": 0.1},
    "nu": 0.05, "kappa": 1e-3, "lam": 1e-5, "sigma_eta": 0.01, "zeta": 0.5, "income": 1.0,
    "psi": 0.0, "theta": 1.0, "factor_mean": 0.0, "factor_std": 0.1, "settlement": "spot",
    "initial_capital": 1000.0, "initial_holdings": 10.0, "trade_scale": 1.0,
    "policy": "random", "random_scale": 1.0, "curve": "exponential",
    # the pinned reward: profit alone, marked at the liquidation share
    "profit_weight": 1.0, "omega": 0.0, "rho": 0.0, "use_value": 0.0,
    "profit_mark": "liquidation",
}
"""The RMW as EconomyModel keywords (with ``curve_params`` f(S) = exp(0.05·S/N))."""

_DEFAULT_RMW_DIR = Path(__file__).resolve().parents[2] / "shared" / "bench"


def load_rmw_numpy(directory: Path) -> object:
    """Import ``rmw_numpy`` (and its ``rmw_common``) from ``directory``."""
    if not (directory / "rmw_numpy.py").is_file():
        raise SystemExit(f"--rmw-dir={str(directory)!r} is invalid: expected the folder "
                         "holding rmw_numpy.py and rmw_common.py (../shared/bench)")
    sys.path.insert(0, str(directory))
    return importlib.import_module("rmw_numpy")


def rmw_model(n: int, seed: int, reporters: str = "rmw", fast: bool = True) -> EconomyModel:
    """The RMW as an EconomyModel (f(S) = exp(0.05·S/N), spot settlement, θdt = 1)."""
    model = EconomyModel(n_agents=n, curve_params={"a": 1.0, "k": 0.05 / n}, rng=seed,
                         reporters=reporters, **RMW)
    model.fast_paths = fast
    return model


def _time_model(n: int, steps: int, seed: int, **kwargs: object) -> float:
    model = rmw_model(n, seed, **kwargs)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.step()
    return time.perf_counter() - t0


def _time_numpy(rmw: object, n: int, steps: int, seed: int) -> float:
    adj, rng, b, h, s, p = rmw.setup(n, seed)
    t0 = time.perf_counter()
    rmw.simulate(adj, rng, b, h, s, p, steps)
    return time.perf_counter() - t0


VARIANTS = {
    "model rmw": {"reporters": "rmw"},
    "model default": {"reporters": "default"},
    "model reference": {"reporters": "rmw", "fast": False},
}


def bench(rmw: object, n: int, steps: int, repeats: int) -> dict[str, object]:
    """Median wall time per step of each row, the rows interleaved in every repeat."""
    times: dict[str, list[float]] = {"rmw_numpy": [], **{k: [] for k in VARIANTS}}
    for r in range(repeats):
        times["rmw_numpy"].append(_time_numpy(rmw, n, steps, seed=r))
        for name, kwargs in VARIANTS.items():
            times[name].append(_time_model(n, steps, seed=r, **kwargs))
    per_step = {k: statistics.median(v) / steps for k, v in times.items()}
    base = per_step["rmw_numpy"]
    return {"n_agents": n, "steps": steps,
            "us_per_step": {k: v * 1e6 for k, v in per_step.items()},
            "agent_steps_per_s": {k: n / v for k, v in per_step.items()},
            "ratio": {k: base / v for k, v in per_step.items() if k != "rmw_numpy"}}


def _median_us(fn: object, number: int, repeats: int = 7) -> float:
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - t0) / number)
    return statistics.median(runs) * 1e6


def parts(n: int) -> dict[str, float]:
    """µs of the rollback snapshot, and of curve-settlement steps with and without a
    binding budget (the Newton solve), at N agents."""
    from mesa_econ.dynamics import StepNoise, market_step

    model = rmw_model(n, seed=0)
    model.step()
    out = {"snapshot_us": _median_us(model._save, 2000)}
    for label, capital in (("curve_step_free_us", 1e6), ("curve_step_newton_us", 2.0)):
        m = EconomyModel(n_agents=n, curve_params={"a": 1.0, "k": 0.05 / n}, rng=0,
                         reporters="none", **{**RMW, "settlement": "curve",
                                              "initial_capital": capital})
        orders = np.abs(m.policy_rng.normal(size=(n, 3))) * 5.0  # buys, every agent
        noise = StepNoise(factors=np.zeros(3), dW=np.zeros(3), eta=np.zeros(3))
        args = (m.state, orders, m.params, m.curve, noise, m.adjacency)
        out[label] = _median_us(lambda args=args: market_step(*args), 200)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rmw-dir", type=Path, default=_DEFAULT_RMW_DIR)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rmw = load_rmw_numpy(args.rmw_dir)
    rows = [bench(rmw, n, args.steps, args.repeats) for n in args.sizes]
    extra = {n: parts(n) for n in args.sizes}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"RMW market step, T={args.steps}, median of {args.repeats} interleaved repeats, "
          f"{platform.processor() or platform.machine()}, 1 thread, load {load}")
    names = ["rmw_numpy", *VARIANTS]
    print(f"{'N':>6} " + " ".join(f"{k + ' µs':>20}" for k in names)
          + "  " + " ".join(f"{'ratio ' + k.split()[-1]:>14}" for k in VARIANTS))
    for r in rows:
        print(f"{r['n_agents']:>6} " + " ".join(f"{r['us_per_step'][k]:>20.1f}" for k in names)
              + "  " + " ".join(f"{r['ratio'][k]:>14.3f}" for k in VARIANTS))
    print("agent-steps/s: " + "; ".join(
        f"N={r['n_agents']}: " + ", ".join(f"{k} {v:,.0f}" for k, v in
                                           r["agent_steps_per_s"].items()) for r in rows))
    for n, e in extra.items():
        print(f"N={n}: rollback snapshot {e['snapshot_us']:.1f} µs; curve-settlement "
              f"market_step {e['curve_step_free_us']:.1f} µs without a binding budget, "
              f"{e['curve_step_newton_us']:.1f} µs with every budget binding (Newton)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "parts": extra, "load": load}, fh, indent=2)


if __name__ == "__main__":
    main()
