"""Scale: time and memory per step of large markets, and PPO at 10⁴-10⁵ agents.

Each measurement runs in a fresh Python process (``--one``), so its peak memory (the
kernel's high-water mark of the resident set, VmHWM) is its own. Reported per case:

- ``market N``: the reference market workload's configuration (``market_step.RMW``:
  random traders, Watts-Strogatz k = 4, p = 0.1, M = 3, spot settlement, the RMW's
  reporters) at N agents: construction seconds, resident memory after construction,
  seconds per step (median over ``--steps``), and the peak over construction and steps;
- ``ppo N G [T]``: one PPO iteration (``PPOConfig`` defaults but T steps per rollout and
  per episode, ``--ppo-steps`` where the case gives none: collection + update) on the
  same market with ``policy="actor_critic"`` and G policy groups (G = N: independent
  per-agent policies; G < N: agents share their group's policy), after one warm-up
  iteration: seconds for collection and update, peak memory.

The largest N that steps within a memory budget (``--budget-gib``, default 24 GiB, the
project machine's) is extrapolated from the measured bytes per agent of the largest
market measured (peak − a 5-agent process's baseline, over N): memory grows linearly
in N (the state arrays, the sparse graph, Mesa's agents and cells).

    python benchmarks/scale.py      # markets 10⁴, 10⁵, 10⁶; PPO 10⁴:10⁴ (T = 128), 10⁵:100:16
    python benchmarks/scale.py --markets 1000000 --ppo 100000:1000:32
    python benchmarks/scale.py --json scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_GIB = 2**30
sys.path.insert(0, str(Path(__file__).resolve().parent))  # market_step.RMW


def _memory() -> dict[str, int]:
    """Current and peak resident set of this process, bytes (Linux /proc)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return {"rss": out["VmRSS"], "peak": out["VmHWM"]}


def _market(n: int, seed: int, **extra: object) -> object:
    from market_step import RMW

    from mesa_econ.model import EconomyModel

    kwargs = {**RMW, "reporters": "rmw", **extra}
    return EconomyModel(n_agents=n, curve_params={"a": 1.0, "k": 0.05 / n}, rng=seed,
                        **kwargs)


def measure_market(n: int, steps: int) -> dict[str, float]:
    """Construction, then ``steps`` steps, of the RMW market at N agents."""
    import torch

    torch.set_num_threads(1)
    _market(5, seed=1)  # imports and first-use caches outside the measurement
    base = _memory()["rss"]
    t0 = time.perf_counter()
    model = _market(n, seed=0)
    build_s = time.perf_counter() - t0
    built = _memory()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.step()
        times.append(time.perf_counter() - t0)
    end = _memory()
    return {"n_agents": n, "build_s": build_s, "step_s": statistics.median(times),
            "step_s_min": min(times), "steps": steps, "baseline_rss_gib": base / _GIB,
            "built_rss_gib": built["rss"] / _GIB, "peak_gib": end["peak"] / _GIB,
            "step_growth_mib": (end["peak"] - built["rss"]) / 2**20}


def measure_ppo(n: int, groups: int, num_steps: int) -> dict[str, float]:
    """One PPO iteration (after a warm-up one) at N agents in G policy groups."""
    import torch

    from mesa_econ.rl.ppo import PPO, PPOConfig

    torch.set_num_threads(1)
    _market(5, seed=1)
    t0 = time.perf_counter()
    model = _market(n, seed=0, policy="actor_critic", n_groups=groups, collect_every=0,
                    reporters="none", horizon=num_steps)
    algo = PPO(model, PPOConfig(num_steps=num_steps, episode_length=num_steps))
    build_s = time.perf_counter() - t0
    built = _memory()
    frame = algo.train(2, progress=False)
    last = frame.iloc[-1]
    end = _memory()
    n_params = sum(p.numel() for p in algo.ensemble.parameters())
    return {"n_agents": n, "n_groups": groups, "num_steps": num_steps, "build_s": build_s,
            "collect_s": float(last["collect_s"]), "update_s": float(last["update_s"]),
            "iteration_s": float(last["collect_s"] + last["update_s"]),
            "first_iteration_s": float(frame.iloc[0]["collect_s"]
                                       + frame.iloc[0]["update_s"]),
            "agent_steps_per_s": n * num_steps / float(last["collect_s"] + last["update_s"]),
            "parameters": n_params, "built_rss_gib": built["rss"] / _GIB,
            "peak_gib": end["peak"] / _GIB}


def _run_one(args: list[str], timeout: float) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--one", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"case": args, "error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"case": args, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--ppo", nargs="*", default=["10000:10000", "100000:100:16"],
                        help="N:G[:T] cases (agents:policy groups[:rollout steps])")
    parser.add_argument("--ppo-steps", type=int, default=128,
                        help="T of the cases that give none")
    parser.add_argument("--budget-gib", type=float, default=24.0)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, *rest = args.one
        if kind == "market":
            result = measure_market(int(rest[0]), int(rest[1]))
        else:
            result = measure_ppo(int(rest[0]), int(rest[1]), int(rest[2]))
        print(json.dumps(result))
        return
    baseline = _run_one(["market", "5", "1"], args.timeout)
    markets = [_run_one(["market", str(n), str(args.steps)], args.timeout)
               for n in args.markets]
    ppo = []
    for case in args.ppo:
        n, g, *t = (int(x) for x in case.split(":"))
        ppo.append(_run_one(["ppo", str(n), str(g), str(t[0] if t else args.ppo_steps)],
                            args.timeout))
    load = os.getloadavg()
    print(f"Scale, {platform.processor() or platform.machine()}, 1 thread, load {load}")
    print(f"{'N':>9} {'build s':>9} {'ms/step':>9} {'RSS built GiB':>14} {'peak GiB':>9}")
    for r in markets:
        if "error" in r:
            print(f"{r['case']}: {r['error']}")
            continue
        print(f"{r['n_agents']:>9,} {r['build_s']:>9.1f} {1e3 * r['step_s']:>9.1f} "
              f"{r['built_rss_gib']:>14.2f} {r['peak_gib']:>9.2f}")
    ok = [r for r in markets if "error" not in r]
    estimate = None
    if ok and "error" not in baseline:
        top = max(ok, key=lambda r: r["n_agents"])
        per_agent = (top["peak_gib"] - baseline["peak_gib"]) * _GIB / top["n_agents"]
        estimate = int((args.budget_gib - baseline["peak_gib"]) * _GIB / per_agent)
        print(f"{per_agent:,.0f} bytes per agent at N = {top['n_agents']:,} (peak over a "
              f"5-agent process's {baseline['peak_gib']:.2f} GiB): about N = {estimate:,} "
              f"within {args.budget_gib:g} GiB (extrapolated, linear in N)")
    for r in ppo:
        if "error" in r:
            print(f"PPO {r['case']}: {r['error']}")
            continue
        print(f"PPO N = {r['n_agents']:,}, {r['n_groups']:,} policy groups, T = "
              f"{r['num_steps']}: iteration {r['iteration_s']:.1f} s (collect "
              f"{r['collect_s']:.1f} s, update {r['update_s']:.1f} s; first "
              f"{r['first_iteration_s']:.1f} s), {r['agent_steps_per_s']:,.0f} agent-steps/s, "
              f"{r['parameters']:,} parameters, peak {r['peak_gib']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"baseline": baseline, "markets": markets, "ppo": ppo,
                       "estimate_n_within_budget": estimate, "load": load}, fh, indent=2)


if __name__ == "__main__":
    main()
