"""PPO training throughput (agent-steps/s, rollout collection + update) against a naive loop.

The batched trainer (``mesa_econ.rl.PPO``: stacked weights, one batched call per step,
one StackedAdam over the stack) is timed at N = 10, 100, 1000 agents on the
``defi_token_market`` scenario with PPO's default settings (T = 128 steps per rollout,
4 epochs × 4 minibatches, hidden (64, 64), per-agent observation and reward
normalisation). The naive baseline, written here, does the same work the way a first
implementation would: one ``ActorCritic`` module and one ``torch.optim.Adam`` per agent,
a Python loop over agents for every action and every minibatch update, with
``clip_grad_norm_`` per module. Market, normalisers, GAE and minibatch indices are shared,
so the difference is the policy side. Both build their markets with ``collect_every=0``
(no DataCollector rows while training: neither trainer reads them).

    python benchmarks/training.py                 # N = 10, 100, 1000, table on stdout
    python benchmarks/training.py --sizes 100 --json results.json
    python benchmarks/training.py --markets-only  # K markets per rollout against K = 1

K markets per rollout (``PPOConfig(n_markets=K)``, :mod:`mesa_econ.rl.vec_rollout`) are
timed against K = 1 in the same run at N = 50 and 100 (``--market-sizes``), K = 16
(``--markets``), interleaved (K iterations of K = 1, then one of K markets, per round) so
both see the same load; the ratios of agent-steps/s are printed for training (collect +
update) and for the collection alone. Targets (issue 12): N = 50, K = 16: >= 4x; N = 100:
>= 2x. The update's work grows with the samples (K·T per agent per iteration) at a cost
per sample that falls only a little with K, so the training ratio stays near or below
(collect + update) / update of K = 1 however fast the markets step.

Run with one intra-op thread (set below); OMP_WAIT_POLICY=PASSIVE is recommended on a
shared machine. Timings are medians over the timed iterations after one warm-up.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from mesa_econ.model import EconomyModel
from mesa_econ.policies import PolicyEnsemble
from mesa_econ.rl.buffer import RolloutBuffer
from mesa_econ.rl.normalize import ObsNormalizer, RewardNormalizer
from mesa_econ.rl.ppo import PPO, PPOConfig
from mesa_econ.scenarios import scenario_params

HIDDEN = (64, 64)
"""Hidden widths of every actor and critic (the model's default; ``--hidden`` changes it)."""


def _market(n_agents: int, seed: int = 0) -> EconomyModel:
    # collect_every=0: no DataCollector rows during training (neither trainer reads them)
    return EconomyModel(**scenario_params("defi_token_market", n_agents=n_agents),
                        policy="actor_critic",
                        hidden=HIDDEN, rng=seed, collect_every=0)


def bench_batched(n_agents: int, iterations: int, cfg: PPOConfig) -> dict[str, float]:
    """Median seconds per iteration of the batched PPO trainer (collect, update)."""
    algo = PPO(_market(n_agents), cfg)  # (the markets' construction counts in collect_s)
    algo.train(1, progress=False)  # warm-up
    frame = algo.train(iterations, progress=False).iloc[1:]
    collect = statistics.median(frame["collect_s"])
    update = statistics.median(frame["update_s"])
    return {"collect_s": collect, "update_s": update}


class NaivePPO:
    """PPO with one module and one Adam per agent, looped in Python (the baseline)."""

    def __init__(self, model: EconomyModel, cfg: PPOConfig) -> None:
        self.model, self.cfg = model, cfg
        n, d, m = model.n_agents, model.obs_dim, model.n_assets
        ens = PolicyEnsemble(n, d, m, hidden=HIDDEN,  # same initial weights
                             generator=model.torch_generator)
        self.modules = [ens.to_module(i) for i in range(n)]
        self.opts = [torch.optim.Adam(mod.parameters(), lr=cfg.learning_rate, eps=cfg.adam_eps)
                     for mod in self.modules]
        self.obs_norm = ObsNormalizer(n, d)
        self.rew_norm = RewardNormalizer(n, cfg.gamma)
        self.buf = RolloutBuffer(cfg.num_steps, n, d, m)
        self.gen = torch.Generator().manual_seed(0)

    @torch.no_grad()
    def collect(self) -> None:
        model, buf = self.model, self.buf
        obs = torch.from_numpy(self.obs_norm(model.observations(), update=True))
        for t in range(self.cfg.num_steps):
            outs = [mod.act(obs[i], generator=model.torch_generator)
                    for i, mod in enumerate(self.modules)]  # one call per agent
            u = torch.stack([o[0] for o in outs])
            logp = torch.stack([o[1] for o in outs])
            value = torch.stack([o[2] for o in outs])
            model.submit_orders(model.trade_scale * np.clip(u.numpy(), -1, 1))
            model.step()
            reward = torch.from_numpy(self.rew_norm(model.last_rewards))
            buf.add(t, obs, u, logp, value, reward)
            obs = torch.from_numpy(self.obs_norm(model.observations(), update=True))
        last = torch.stack([mod(obs[i])[2] for i, mod in enumerate(self.modules)])
        buf.finish(last, self.cfg.gamma, self.cfg.gae_lambda)

    def update(self) -> None:
        cfg, buf = self.cfg, self.buf
        mb = cfg.num_steps // cfg.num_minibatches
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(cfg.num_steps, generator=self.gen)
            for start in range(0, cfg.num_steps, mb):
                idx = perm[start:start + mb]
                for i, (mod, opt) in enumerate(zip(self.modules, self.opts, strict=True)):
                    newlogp, ent, newv = mod.evaluate(buf.obs[idx, i], buf.actions[idx, i])
                    logratio = newlogp - buf.logprobs[idx, i]
                    ratio = logratio.exp()
                    adv = buf.advantages[idx, i]
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    pg = torch.max(-adv * ratio, -adv * ratio.clamp(
                        1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
                    ret, val = buf.returns[idx, i], buf.values[idx, i]
                    v_clip = val + (newv - val).clamp(-cfg.clip_coef, cfg.clip_coef)
                    v_loss = 0.5 * torch.max((newv - ret) ** 2, (v_clip - ret) ** 2).mean()
                    loss = pg - cfg.ent_coef * ent.mean() + cfg.vf_coef * v_loss
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(mod.parameters(), cfg.max_grad_norm)
                    opt.step()


def bench_naive(n_agents: int, iterations: int, cfg: PPOConfig) -> dict[str, float]:
    """Median seconds per iteration of the naive per-agent loop (collect, update)."""
    naive = NaivePPO(_market(n_agents), cfg)
    if n_agents < 1000:  # at N >= 1000 one iteration is thousands of calls: no warm-up
        naive.collect()
        naive.update()
    collect, update = [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        naive.collect()
        t1 = time.perf_counter()
        naive.update()
        t2 = time.perf_counter()
        collect.append(t1 - t0)
        update.append(t2 - t1)
    return {"collect_s": statistics.median(collect), "update_s": statistics.median(update)}


def bench_env(n_agents: int, steps: int) -> float:
    """Seconds per market step with fixed orders (the floor no trainer can beat)."""
    model = _market(n_agents)
    zeros = np.zeros((n_agents, model.n_assets))
    for _ in range(5):
        model.submit_orders(zeros)
        model.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        model.submit_orders(zeros)
        model.step()
    return (time.perf_counter() - t0) / steps


def bench_markets(n_agents: int, markets: int, iterations: int,
                  cfg: PPOConfig) -> dict[str, float]:
    """K = ``markets`` against K = 1 at N = ``n_agents``: agent-steps/s of each and ratios.

    Interleaved so that both see the same machine load: each of ``iterations`` rounds
    runs K iterations of the K = 1 trainer, then one of the K-markets trainer (the same
    agent-steps); the figures are totals over the rounds, after one warm-up iteration each.
    """
    trainers = {k: PPO(_market(n_agents), dataclasses.replace(cfg, n_markets=k))
                for k in (1, markets)}
    for algo in trainers.values():
        algo.train(1, progress=False)  # warm-up
    sums = {k: {"collect_s": 0.0, "update_s": 0.0, "agent_steps": 0} for k in trainers}
    for _ in range(iterations):
        for k, algo in trainers.items():
            frame = algo.train(markets if k == 1 else 1, progress=False)
            done = frame.iloc[-(markets if k == 1 else 1):]
            sums[k]["collect_s"] += float(done["collect_s"].sum())
            sums[k]["update_s"] += float(done["update_s"].sum())
            sums[k]["agent_steps"] += n_agents * cfg.num_steps * markets
    row: dict[str, float] = {"n_agents": n_agents, "markets": markets}
    for k, tag in ((1, "k1"), (markets, "kK")):
        c, u, work = sums[k]["collect_s"], sums[k]["update_s"], sums[k]["agent_steps"]
        row[f"{tag}_collect_s"] = c / (iterations * (markets if k == 1 else 1))
        row[f"{tag}_update_s"] = u / (iterations * (markets if k == 1 else 1))
        row[f"{tag}_agent_steps_per_s"] = work / (c + u)
        row[f"{tag}_collect_agent_steps_per_s"] = work / c
    row["ratio"] = row["kK_agent_steps_per_s"] / row["k1_agent_steps_per_s"]
    row["collect_ratio"] = (row["kK_collect_agent_steps_per_s"]
                            / row["k1_collect_agent_steps_per_s"])
    # the ceiling of the training ratio if the update's cost per sample stayed K = 1's
    # (it falls only a little with K: the products are already large at K = 1)
    row["ratio_bound"] = (row["k1_collect_s"] + row["k1_update_s"]) / row["k1_update_s"]
    # a hard bound from the K-markets run itself: its ratio if its collection cost nothing
    # (its update, measured, alone against K = 1's whole iterations for the same samples)
    row["ratio_free_collection"] = ((row["k1_collect_s"] + row["k1_update_s"]) * markets
                                    / row["kK_update_s"])
    return row


def main(argv: list[str] | None = None) -> dict:
    global HIDDEN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--iterations", type=int, default=5,
                        help="timed iterations of the batched trainer")
    parser.add_argument("--naive-iterations", type=int, default=2,
                        help="timed iterations of the naive loop")
    parser.add_argument("--num-steps", type=int, default=128, help="T per rollout")
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN),
                        help="hidden widths of the actor and critic MLPs")
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--markets", type=int, default=16,
                        help="K, markets per rollout, timed against K = 1")
    parser.add_argument("--market-sizes", type=int, nargs="+", default=[50, 100],
                        help="N of the K-markets comparison")
    parser.add_argument("--market-iterations", type=int, default=2,
                        help="timed rounds of the K-markets comparison (each: K "
                             "iterations of K = 1, one of K markets)")
    parser.add_argument("--markets-only", action="store_true",
                        help="skip the batched-vs-naive table (only the K-markets one)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (every configuration alike)")
    args = parser.parse_args(argv)
    HIDDEN = tuple(args.hidden)
    torch.set_num_threads(args.threads)
    cfg = PPOConfig(num_steps=args.num_steps, seed=0)
    rows = []
    for n in [] if args.markets_only else args.sizes:
        work = n * cfg.num_steps  # agent-steps per iteration
        env_s = bench_env(n, 200)
        fast = bench_batched(n, args.iterations, cfg)
        slow = bench_naive(n, args.naive_iterations, cfg)
        row = {"n_agents": n, "agent_steps_per_iteration": work,
               "env_step_s": env_s, "env_agent_steps_per_s": n / env_s,
               "batched_collect_s": fast["collect_s"], "batched_update_s": fast["update_s"],
               "batched_agent_steps_per_s": work / (fast["collect_s"] + fast["update_s"]),
               "naive_collect_s": slow["collect_s"], "naive_update_s": slow["update_s"],
               "naive_agent_steps_per_s": work / (slow["collect_s"] + slow["update_s"])}
        row["speedup"] = row["batched_agent_steps_per_s"] / row["naive_agent_steps_per_s"]
        rows.append(row)
        print(f"N={n}: batched {row['batched_agent_steps_per_s']:,.0f} agent-steps/s "
              f"(collect {fast['collect_s']:.3f} s + update {fast['update_s']:.3f} s), naive "
              f"{row['naive_agent_steps_per_s']:,.0f} (collect {slow['collect_s']:.3f} s + "
              f"update {slow['update_s']:.3f} s), speed-up {row['speedup']:.1f}x; "
              f"market alone {row['env_agent_steps_per_s']:,.0f}", flush=True)
    market_rows = []
    for n in args.market_sizes:
        row = bench_markets(n, args.markets, args.market_iterations, cfg)
        market_rows.append(row)
        print(f"N={n}: K={args.markets} {row['kK_agent_steps_per_s']:,.0f} agent-steps/s "
              f"(collect {row['kK_collect_s']:.3f} s + update {row['kK_update_s']:.3f} s), "
              f"K=1 {row['k1_agent_steps_per_s']:,.0f} (collect {row['k1_collect_s']:.3f} s "
              f"+ update {row['k1_update_s']:.3f} s): ratio {row['ratio']:.2f}x "
              f"(collection alone {row['collect_ratio']:.2f}x; ceiling at K=1's update "
              f"cost per sample {row['ratio_bound']:.2f}x; with K={args.markets}'s update "
              f"alone, collection free {row['ratio_free_collection']:.2f}x)", flush=True)
    if rows:
        _print_table(rows)
    if market_rows:
        print()
        print(f"| N | K | K=1 agent-steps/s | K={args.markets} agent-steps/s | ratio "
              "| collection ratio | ceiling (K=1 total / update) "
              "| bound (K's update alone) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in market_rows:
            print(f"| {r['n_agents']} | {r['markets']} | {r['k1_agent_steps_per_s']:,.0f} | "
                  f"{r['kK_agent_steps_per_s']:,.0f} | {r['ratio']:.2f}x | "
                  f"{r['collect_ratio']:.2f}x | {r['ratio_bound']:.2f}x | "
                  f"{r['ratio_free_collection']:.2f}x |")
    result = {"config": {"num_steps": cfg.num_steps, "update_epochs": cfg.update_epochs,
                         "num_minibatches": cfg.num_minibatches, "hidden": list(HIDDEN),
                         "scenario": "defi_token_market", "torch_threads": args.threads},
              "machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpu_count": os.cpu_count(), "torch": torch.__version__,
                          "loadavg_at_end": list(os.getloadavg())},
              "rows": rows, "markets": market_rows}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


def _print_table(rows: list[dict]) -> None:
    print()
    print("| N | batched agent-steps/s | collect s/it | update s/it | naive agent-steps/s "
          "| speed-up | market-only agent-steps/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n_agents']} | {r['batched_agent_steps_per_s']:,.0f} | "
              f"{r['batched_collect_s']:.3f} | {r['batched_update_s']:.3f} | "
              f"{r['naive_agent_steps_per_s']:,.0f} | {r['speedup']:.1f}x | "
              f"{r['env_agent_steps_per_s']:,.0f} |")


if __name__ == "__main__":
    main()
