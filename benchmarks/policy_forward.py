"""Batched ``PolicyEnsemble.act`` vs a Python loop over N ``ActorCritic`` modules.

Both do the same work: every agent samples an action from its own policy for one
observation (obs_dim 10, act_dim 3, hidden (64, 64)), without gradients, on one thread.
Reported: the median over repeats of the time per call acting for all N agents, and the
speed-up of the ensemble over the loop (the JSON adds the fastest repeat of each, less
sensitive to other load on a shared machine). A third column times an ensemble with 10 weight
groups (agents share weights in blocks) for comparison. The last two time the actor means
alone as PPO's rollouts compute them: ``PolicyEnsemble.actor_mean`` (torch) and
``PolicyEnsemble.numpy_actor()`` (numpy on views of the same weights, what the trainer
uses for independent policies).

Usage::

    python benchmarks/policy_forward.py [--sizes 10 100 1000] [--repeats 11] [--json PATH]
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
import time
from collections.abc import Callable

import numpy as np
import torch

from mesa_econ.policies import PolicyEnsemble

OBS_DIM, ACT_DIM, HIDDEN = 10, 3, (64, 64)


def calls_per_repeat(fn: Callable[[], object], min_seconds: float = 0.02) -> int:
    """How many back-to-back calls of ``fn`` take at least ``min_seconds``."""
    fn()  # warm-up
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_seconds:
            return number
        number *= 2


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """µs per call of each function, ``repeats`` samples each, taken in turn.

    Interleaving the candidates within each repeat keeps a change in machine load (other
    processes on a shared machine) from favouring whichever was timed first.
    """
    numbers = {name: calls_per_repeat(fn) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(numbers[name]):
                fn()
            samples[name].append((time.perf_counter() - start) / numbers[name] * 1e6)
    return samples


def bench(n_agents: int, repeats: int) -> dict[str, float | int]:
    """Time one batched act call and the equivalent module loop for ``n_agents`` agents."""
    init = torch.Generator().manual_seed(0)
    ensemble = PolicyEnsemble(n_agents, OBS_DIM, ACT_DIM, HIDDEN, generator=init)
    grouped = PolicyEnsemble(n_agents, OBS_DIM, ACT_DIM, HIDDEN, n_groups=10, generator=init)
    modules = ensemble.to_modules()
    obs = torch.randn(n_agents, OBS_DIM, generator=init)
    rows = [obs[i] for i in range(n_agents)]
    noise = torch.Generator().manual_seed(1)
    actor_np, obs_np = ensemble.numpy_actor(), obs.numpy()

    with torch.no_grad():
        # same policies: the deterministic actions agree to float rounding
        loop_mean = torch.stack(
            [m.act(o, deterministic=True)[0] for m, o in zip(modules, rows, strict=True)]
        )
        ens_mean = ensemble.act(obs, deterministic=True)[0]
        torch.testing.assert_close(ens_mean, loop_mean, atol=1e-5, rtol=1e-5)
        np.testing.assert_allclose(actor_np(obs_np), ens_mean.numpy(), atol=1e-6, rtol=1e-5)

        def batched() -> object:
            return ensemble.act(obs, generator=noise)

        def batched_grouped() -> object:
            return grouped.act(obs, generator=noise)

        def loop() -> object:
            return [m.act(o, generator=noise) for m, o in zip(modules, rows, strict=True)]

        samples = time_interleaved(
            {"ensemble": batched, "grouped10": batched_grouped, "loop": loop,
             "actor_mean": lambda: ensemble.actor_mean(obs),
             "numpy_actor": lambda: actor_np(obs_np)}, repeats
        )
    med = {name: statistics.median(values) for name, values in samples.items()}
    best = {name: min(values) for name, values in samples.items()}
    return {
        "n_agents": n_agents,
        "ensemble_us": med["ensemble"],
        "loop_us": med["loop"],
        "speedup": med["loop"] / med["ensemble"],
        "grouped10_us": med["grouped10"],
        "actor_mean_us": med["actor_mean"],
        "numpy_actor_us": med["numpy_actor"],
        "ensemble_min_us": best["ensemble"],
        "loop_min_us": best["loop"],
        "speedup_of_min": best["loop"] / best["ensemble"],
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--json", type=str, default=None, help="write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    rows = [bench(n, args.repeats) for n in args.sizes]
    print(
        f"PolicyEnsemble.act vs loop over ActorCritic modules (obs {OBS_DIM}, act {ACT_DIM}, "
        f"hidden {HIDDEN}, 1 thread, median of {args.repeats} repeats)"
    )
    print(
        f"{'N':>6} {'ensemble µs/call':>17} {'loop µs/call':>13} {'speed-up':>9} "
        f"{'ensemble G=10 µs':>17} {'actor_mean µs':>14} {'numpy actor µs':>15}"
    )
    for r in rows:
        print(
            f"{r['n_agents']:>6} {r['ensemble_us']:>17.1f} {r['loop_us']:>13.1f} "
            f"{r['speedup']:>8.1f}x {r['grouped10_us']:>17.1f} {r['actor_mean_us']:>14.1f} "
            f"{r['numpy_actor_us']:>15.1f}"
        )
    if args.json:
        meta = {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "obs_dim": OBS_DIM,
            "act_dim": ACT_DIM,
            "hidden": list(HIDDEN),
            "repeats": args.repeats,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
