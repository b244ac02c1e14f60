"""A sweep's seeds stepped as one MarketBatch vs each run alone (``run_sweep(batch_seeds=)``).

One parameter combination, S seeds, N agents, T steps, the default learned policy
(``actor_critic``: every seed's market has its own untrained PolicyEnsemble), in this
process (``processes=1``), with the DataCollector on as a sweep has it. ``batched``:
``run_sweep(..., batch_seeds=True)``, the S markets stepped together with one policy
forward pass for all S·N agents per step; ``per-run``: ``batch_seeds=False``, each run
alone. The two are timed in turn within every repeat (interleaved, so a change in the
load of a shared machine favours neither); reported: the median wall time of each, the
ratio per-run / batched, and the largest relative difference between the two frames
(float32 rounding of the actions, carried through the market).

Usage::

    python benchmarks/sweep_seeds.py [--seeds 16] [--agents 50] [--steps 128]
                                     [--repeats 5] [--policy actor_critic] [--json PATH]
"""

from __future__ import annotations

import os

# OpenMP spin-waiting distorts timings on a shared 2-core machine (docs: NOTES.md); the
# variable is read when torch loads, so it is set before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mesa_econ.sweep import run_sweep


def frames_gap(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """The largest |a − b| over the numeric columns, relative to the column's max |b|."""
    gap = 0.0
    for name in a.columns:
        if pd.api.types.is_numeric_dtype(a[name]):
            x, y = a[name].to_numpy(float), b[name].to_numpy(float)
            gap = max(gap, float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), 1.0)))
    return gap


def checkpoint_policy(agents: int, folder: str) -> str:
    """``"checkpoint:PATH"`` of an untrained ensemble for ``agents`` agents (every seed's
    market then loads the same weights)."""
    from mesa_econ.model import EconomyModel
    from mesa_econ.rl.checkpoint import save_checkpoint

    model = EconomyModel(n_agents=agents, rng=0)
    return "checkpoint:" + str(save_checkpoint(model.ensemble, Path(folder) / "agents",
                                               algo="untrained", model=model))


def bench(seeds: int, agents: int, steps: int, repeats: int, policy: str) -> dict:
    """Time ``run_sweep`` with and without seed batches, interleaved."""
    params = {"n_agents": agents, "policy": policy}
    kw = {"seeds": seeds, "steps": steps, "progress": False}
    times: dict[str, list[float]] = {"batched": [], "per-run": []}
    frames = {}
    for _ in range(repeats):
        for name, flag in (("batched", True), ("per-run", False)):
            start = time.perf_counter()
            frames[name] = run_sweep(params, batch_seeds=flag, **kw)
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(v) for name, v in times.items()}
    agent_steps = seeds * agents * steps
    return {"seeds": seeds, "agents": agents, "steps": steps, "policy": policy,
            "repeats": repeats, "batched_s": med["batched"], "per_run_s": med["per-run"],
            "batched_min_s": min(times["batched"]), "per_run_min_s": min(times["per-run"]),
            "batched_agent_steps_per_s": agent_steps / med["batched"],
            "per_run_agent_steps_per_s": agent_steps / med["per-run"],
            "ratio": med["per-run"] / med["batched"],
            "max_relative_gap": frames_gap(frames["batched"], frames["per-run"])}


def main() -> None:
    """Parse the options, run the benchmark, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--policy", nargs="+", default=["actor_critic", "checkpoint"],
                        help="policies to time; 'checkpoint' = one untrained ensemble "
                             "saved to a temporary checkpoint (shared by every seed)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for policy in args.policy:
            name = checkpoint_policy(args.agents, folder) if policy == "checkpoint" else policy
            row = bench(args.seeds, args.agents, args.steps, args.repeats, name)
            row["policy"] = policy
            rows.append(row)
            print(f"{row['seeds']} seeds x N = {row['agents']} x {row['steps']} steps, "
                  f"policy={policy}, median of {row['repeats']} (interleaved):")
            print(f"  batched  {row['batched_s']:.3f} s  "
                  f"({row['batched_agent_steps_per_s']:,.0f} agent-steps/s)")
            print(f"  per-run  {row['per_run_s']:.3f} s  "
                  f"({row['per_run_agent_steps_per_s']:,.0f} agent-steps/s)")
            print(f"  ratio per-run / batched: {row['ratio']:.2f}x "
                  f"(fastest repeats: {row['per_run_min_s'] / row['batched_min_s']:.2f}x); "
                  f"frames differ by <= {row['max_relative_gap']:.1e} relative")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
