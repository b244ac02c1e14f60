"""Reference market workload (../shared/WORKLOAD.md) through EconomyModel vs plain numpy.

Runs the RMW (random traders, Watts-Strogatz k=4 p=0.1, M=3, the stated constants) through
the public ``EconomyModel`` with its DataCollector on, and through a plain numpy kernel of
the same step written here, and prints agent-steps/s and the ratio model/kernel.

    python benchmarks/market_step.py [--sizes 50 500 5000] [--steps 100] [--repeats 5]
                                     [--json PATH]

Targets (issue 2): ratio >= 0.5 at N = 5000 and >= 0.25 at N = 50.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import networkx as nx
import numpy as np
import torch

from mesa_econ.model import EconomyModel

torch.set_num_threads(1)

RMW = {
    "n_assets": 3, "graph": "watts_strogatz", "graph_params": {"k": 4, "p": 0.1},
    "nu": 0.05, "kappa": 1e-3, "lam": 1e-5, "sigma_eta": 0.01, "zeta": 0.5, "income": 1.0,
    "psi": 0.0, "theta": 1.0, "factor_mean": 0.0, "factor_std": 0.1, "settlement": "spot",
    "initial_capital": 1000.0, "initial_holdings": 10.0, "trade_scale": 1.0,
    "policy": "random", "curve": "exponential",
}


def rmw_model(n: int, seed: int) -> EconomyModel:
    """The RMW as an EconomyModel (f(S) = exp(0.05·S/N), spot settlement, θdt = 1)."""
    return EconomyModel(n_agents=n, curve_params={"a": 1.0, "k": 0.05 / n}, rng=seed, **RMW)


def rmw_kernel(n: int, steps: int, seed: int) -> dict[str, list]:
    """WORKLOAD.md steps 1-8 in plain numpy (CSR matrix product for the peer effect)."""
    rng = np.random.default_rng(seed)
    m = 3
    g = nx.watts_strogatz_graph(n, 4, 0.1, seed=seed)
    adj = nx.to_scipy_sparse_array(g, nodelist=range(n), format="csr", dtype=float)
    B = np.full(n, 1000.0)
    H = np.full((n, m), 10.0)
    S = H.sum(0)
    P = np.exp(0.05 * S / n)
    rec: dict[str, list] = {"P": [], "HHI": [], "meanB": []}
    for _ in range(steps):
        Z = rng.normal(0.0, 0.1, m)  # 1
        a = rng.normal(size=(n, m))  # 2
        a = a + 0.05 * (adj @ a)  # 3
        a = np.maximum(a, -H)  # 4
        spend = np.maximum(a, 0.0) @ P
        over = spend > B
        if over.any():
            scale = np.where(over, B / np.where(over, spend, 1.0), 1.0)
            a = np.where(a > 0, a * scale[:, None], a)
        D = np.maximum(a, 0.0).sum(0)  # 5
        flow = a.sum(0)
        dP = 1e-3 * flow + 1e-5 * (D - S)
        B = B - a @ P + 1.0  # 6
        H = H + a
        S = S + flow
        P = np.exp(0.05 * S / n) + dP + 0.01 * rng.normal(size=m) + 0.5 * Z  # 7
        rec["P"].append(P.tolist())  # 8
        rec["HHI"].append(((H / S) ** 2).sum(0).tolist())
        rec["meanB"].append(float(B.mean()))
    return rec


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(n: int, steps: int, repeats: int) -> dict[str, float]:
    """Median wall time of `steps` steps, model (construction excluded) vs kernel."""

    def run_model() -> None:
        model = run_model.model
        for _ in range(steps):
            model.step()

    def timed_model() -> float:
        run_model.model = rmw_model(n, seed=1)
        t0 = time.perf_counter()
        run_model()
        return time.perf_counter() - t0

    model_s = statistics.median(timed_model() for _ in range(repeats))
    kernel_s = _time(lambda: rmw_kernel(n, steps, seed=1), repeats)
    return {"n_agents": n, "steps": steps,
            "model_agent_steps_per_s": n * steps / model_s,
            "kernel_agent_steps_per_s": n * steps / kernel_s,
            "ratio": kernel_s / model_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [bench(n, args.steps, args.repeats) for n in args.sizes]
    print(f"RMW market step, T={args.steps}, median of {args.repeats}, "
          f"{platform.processor() or platform.machine()}, torch threads 1")
    print(f"{'N':>6} {'model agent-steps/s':>20} {'numpy kernel':>14} {'ratio':>7}")
    for r in rows:
        print(f"{r['n_agents']:>6} {r['model_agent_steps_per_s']:>20,.0f} "
              f"{r['kernel_agent_steps_per_s']:>14,.0f} {r['ratio']:>7.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
