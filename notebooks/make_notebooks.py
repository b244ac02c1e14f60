"""Write the example notebooks (outputs stripped) from the cell sources below.

Run ``python notebooks/make_notebooks.py`` after editing a cell here; the notebooks are
stored without outputs so that git diffs stay readable. Editing a notebook in Jupyter is
fine too: clear its outputs before committing (tests/test_notebooks.py checks it).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

NB01 = [
    ("md", """# 01 · Quick start

Build a market, step it, read the Mesa `DataCollector` frames and plot them. Every number
here comes from the model's own generators, so `rng=42` gives the same market every time."""),
    ("code", """import matplotlib.pyplot as plt

from mesa_econ import metrics
from mesa_econ.scenarios import SCENARIOS, build_model, scenario_params

STEPS = 150  # small enough to run in seconds"""),
    ("md", """A scenario (§9) is a dict of `EconomyModel` keyword arguments; `build_model` builds
it, with any keyword overridden (`policy`, `n_agents`, `rng`, ...)."""),
    ("code", """print(sorted(SCENARIOS))
scenario_params("defi_token_market")"""),
    ("code", """model = build_model("defi_token_market", rng=42, collect_agents=True)
print(f"{model.n_agents} agents, {model.n_assets} asset(s), "
      f"start price {model.prices.round(3)}")
for _ in range(STEPS):
    model.step()
print(f"after {model.t} steps: quoted P = {model.prices.round(3)}, "
      f"curve f(S) = {model.curve_prices.round(3)}")"""),
    ("md", """## Model-level data
One row per step (row 0 is the initial state): quoted and curve prices, concentration
(HHI), wealth inequality (Gini), rolling volatility and entropy, reserve coverage."""),
    ("code", """frame = model.datacollector.get_model_vars_dataframe()
frame.tail()"""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(frame.index, frame["price_0"], label="quoted price P")
axes[0].plot(frame.index, frame["curve_price_0"], "--", label="curve price f(S)")
axes[0].set(xlabel="step", ylabel="price", title="price and bonding curve")
axes[0].legend()
for column in ("hhi", "gini", "reserve_coverage"):
    axes[1].plot(frame.index, frame[column], label=column)
axes[1].set(xlabel="step", title="concentration, inequality, coverage")
axes[1].legend()
fig.tight_layout()
plt.show()"""),
    ("md", """## Agent-level data
With `collect_agents=True` the agent reporters (capital, wealth, reward) are indexed by
(Step, AgentID)."""),
    ("code", """agents = model.datacollector.get_agent_vars_dataframe()
last = agents.xs(agents.index.get_level_values("Step").max(), level="Step")
ax = last["wealth"].plot.hist(bins=15, title=f"wealth after {model.t} steps")
ax.set_xlabel("wealth B + Σ H·reserve/S (liquidation share)")
plt.show()
last.describe()"""),
    ("md", """## Scripted baselines
The same market and seed with no trading (`hold`), random traders and mean-reversion
traders; volatility is the std of log returns of the quote over the run (§7.1's level
variance (1/T) Σ (P − P̄)² is `metrics.level_variance`)."""),
    ("code", """for policy in ("hold", "random", "mean_reversion"):
    run = build_model("defi_token_market", rng=42, policy=policy)
    for _ in range(STEPS):
        run.step()
    prices = run.datacollector.get_model_vars_dataframe()["price_0"].to_numpy()
    print(f"{policy:15s} volatility {metrics.volatility(prices):.5f}")"""),
]

NB02 = [
    ("md", """# 02 · Training agents with PPO

Every agent has its own actor-critic (one row of a stacked `PolicyEnsemble`); PPO (§6.1)
trains them all in one batched update. The budget here is tiny so that the notebook runs
in seconds: the numbers show *how* to train and compare, they are not a result. The §9
claim (30% lower volatility for stability-rewarded than for profit-only agents) is tested
with seeds, baselines and intervals by `mesa-econ reproduce` (docs/reproduction.md).
Training is episodic: 128-step episodes on fresh markets of one population."""),
    ("code", """import matplotlib.pyplot as plt
import pandas as pd
import torch

from mesa_econ.model import EconomyModel
from mesa_econ.rl import PPO, PPOConfig, evaluate_policy
from mesa_econ.rl.evaluate import summarize_returns
from mesa_econ.scenarios import scenario_params
from mesa_econ.sweep import run_sweep

torch.set_num_threads(1)
N_AGENTS = 10        # the scenario has 50
ITERATIONS = 15      # PPO iterations of NUM_STEPS market steps each
NUM_STEPS = 64
EVAL_SEEDS = [100, 101, 102]  # held out: training uses seed 0
EVAL_STEPS = 100
params = scenario_params("defi_token_market", n_agents=N_AGENTS, hidden=(32, 32))"""),
    ("code", """model = EconomyModel(**params, policy="actor_critic", rng=0)
ppo = PPO(model, PPOConfig(num_steps=NUM_STEPS, num_minibatches=4, seed=0))
log = ppo.train(ITERATIONS, progress=False)
log[["iteration", "agent_steps", "mean_reward", "volatility", "approx_kl", "entropy"]].tail()"""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].plot(log["iteration"], log["mean_reward"])
axes[0].set(xlabel="iteration", ylabel="mean reward per agent-step", title="training reward")
axes[1].plot(log["iteration"], log["volatility"])
axes[1].set(xlabel="iteration", ylabel="std of log returns in the rollout",
            title="volatility")
fig.tight_layout()
plt.show()"""),
    ("md", """## Trained vs untrained agents on held-out seeds
`evaluate_policy` runs a policy for one 128-step episode per seed and reports the
volatility of the quoted price (std of log returns) and the agents' mean return. "Untrained" is a freshly
initialised actor-critic ensemble; `random` and `hold` are the scripted baselines."""),
    ("code", """# a freshly initialised ensemble (seed 1): the same architecture, untrained
untrained = EconomyModel(**params, policy="actor_critic", rng=1).ensemble
candidates = {"PPO (trained)": ppo.policy(), "untrained actor-critic": untrained,
              "random": "random", "hold (no trading)": "hold"}
rows = []
for name, policy in candidates.items():
    evaluation = evaluate_policy(policy, params, EVAL_SEEDS, steps=EVAL_STEPS)
    rows.append({"agents": name, **summarize_returns(evaluation)})
table = pd.DataFrame(rows).set_index("agents")
table[["volatility_mean", "volatility_ci95", "mean_return_mean", "mean_return_ci95"]]"""),
    ("code", """ax = table["volatility_mean"].plot.barh(xerr=table["volatility_ci95"],
                                        figsize=(7, 3))
ax.set(xlabel=f"volatility, mean over {len(EVAL_SEEDS)} held-out seeds (95% interval)",
       ylabel="")
ax.invert_yaxis()
plt.show()
change = 1 - table.loc["PPO (trained)", "volatility_mean"] / table.loc[
    "untrained actor-critic", "volatility_mean"]
print(f"volatility change of trained vs untrained agents: {-change:+.0%} "
      f"(tiny budget, {len(EVAL_SEEDS)} seeds)")"""),
    ("md", """## Checkpoints in sweeps
`ppo.save(path)` writes safetensors + JSON; `policy="checkpoint:PATH"` makes any model,
`batch_run` or `run_sweep` use the trained agents (the market must have the same number of
agents and assets)."""),
    ("code", """checkpoint = ppo.save("results/ppo_defi_tiny")
sweep = run_sweep({**params, "policy": [f"checkpoint:{checkpoint}", "actor_critic", "random"]},
                  seeds=EVAL_SEEDS, steps=EVAL_STEPS, progress=False)
per_run = sweep.groupby(["policy", "seed"])["price_0"].var(ddof=0)  # §7.1 per run
per_run.groupby("policy").mean().rename("level variance (§7.1)").to_frame()"""),
]

NB03 = [
    ("md", """# 03 · Sweeps: κ × ν with `batch_run` and `run_sweep`

How price impact κ (§3.2) and peer influence ν (§5.3) move volatility in the DeFi market,
with Mesa's own `batch_run` and with `mesa_econ.sweep.run_sweep`."""),
    ("code", """import matplotlib.pyplot as plt
import mesa
import numpy as np
import pandas as pd

from mesa_econ import metrics
from mesa_econ.model import EconomyModel
from mesa_econ.scenarios import scenario_params
from mesa_econ.sweep import batch_parameters, run_sweep

KAPPAS = [0.0, 0.002, 0.005, 0.01]
NUS = [0.0, 0.05, 0.1]
SEEDS = [0, 1]
STEPS = 100
N_AGENTS = 20  # small for a quick run; the scenario has 50"""),
    ("md", """## `mesa.batch_run`
`batch_run` sweeps every iterable it is given, so a scenario's fixed dicts
(`curve_params`) would be split into their keys: `batch_parameters` wraps every non-list
value and puts the seeds in the `rng` axis (Mesa 3.3 and 3.5 both pass it to the model,
so no `iterations=` is needed). In a notebook keep `number_processes=1`; in a script,
`number_processes=k` works under `if __name__ == "__main__":` (workers are spawned and
import the model from the package)."""),
    ("code", """params = batch_parameters(
    scenario_params("defi_token_market", n_agents=N_AGENTS, kappa=KAPPAS, nu=NUS), seeds=SEEDS)
rows = mesa.batch_run(EconomyModel, parameters=params, number_processes=1,
                      data_collection_period=1, max_steps=STEPS, display_progress=False)
results = pd.DataFrame(rows).sort_values(["RunId", "Step"])
results[["RunId", "kappa", "nu", "rng", "Step", "price_0", "volatility"]].head()"""),
    ("code", """def volatility_grid(frame, seed_column, step_column):
    \"\"\"§7.1 level variance of each run's price series, averaged over seeds: kappa × nu.\"\"\"
    per_run = (frame.sort_values(step_column)
               .groupby(["kappa", "nu", seed_column])["price_0"]
               .agg(lambda prices: metrics.level_variance(prices.to_numpy())))
    return per_run.groupby(["kappa", "nu"]).mean().unstack("nu")


def heatmap(grid, title):
    fig, ax = plt.subplots(figsize=(6, 4))
    image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    ax.set(xlabel="peer influence ν", ylabel="price impact κ", title=title)
    for (i, j), value in np.ndenumerate(grid.to_numpy()):
        ax.text(j, i, f"{value:.3g}", ha="center", va="center", color="white")
    fig.colorbar(image, label="level variance (1/T) Σ (P − P̄)²")
    plt.show()


grid = volatility_grid(results, "rng", "Step")
heatmap(grid, f"batch_run: mean over {len(SEEDS)} seeds")
grid"""),
    ("md", """## `run_sweep`
The same grid as one tidy frame: a row per run and step, the swept parameters as columns,
and a seed per run spawned from `SeedSequence(base_seed)` (appending a value to a list
keeps the other runs' seeds). `backend="ray"` runs the same runs on a Ray cluster with an
identical result; `mesa-econ sweep --param kappa=... --param nu=...` does it from the shell.
See docs/sweeps.md."""),
    ("code", """grid_params = scenario_params("defi_token_market", n_agents=N_AGENTS,
                              kappa=KAPPAS, nu=NUS)
sweep = run_sweep(grid_params, seeds=len(SEEDS), steps=STEPS, progress=False)
print(f"{sweep['run_id'].nunique()} runs, {len(sweep.attrs['failures'])} failed")
sweep.groupby("run_id")[["kappa", "nu", "replicate", "seed"]].first().head()"""),
    ("code", """heatmap(volatility_grid(sweep, "seed", "step"),
        f"run_sweep: mean over {len(SEEDS)} spawned seeds")"""),
    ("md", """## Curve tuning (§7.1)
`mesa_econ.analysis.tuning.tune` searches the curve parameters Φ with Optuna (TPE by
default), every candidate on the same seeds (common random numbers), and reports the best
Φ with a 95% interval over seeds beside the scenario's own curve, on held-out seeds too.
The price at the initial supply is held fixed (only the curve's shape is searched).
Volatility alone is always lowest for the flattest curve, so this asks for the calmest
curve whose reference trade (150 units) still moves the price: a constraint on slippage.
Ten trials in memory here; `mesa-econ tune` stores the study in SQLite and resumes it
(docs/analysis.md)."""),
    ("code", """from mesa_econ.analysis import tuning

result = tuning.tune("defi_token_market", trials=10, seeds=2, holdout_seeds=2, steps=60,
                     policy="informed", constraints=["slippage>=0.01"],
                     slippage_trade=150.0, overrides={"n_agents": 20})
best, base = result.summary["best"][0], result.summary["baseline"]
print("best Φ:", best["curve_params"], "feasible:", best["feasible"])
for name, arm in (("best", best), ("scenario's curve", base)):
    v = arm["holdout"]["volatility"]
    print(f"{name:17s} held-out volatility {v['mean']:.4f} [{v['low']:.4f}, {v['high']:.4f}]")
result.table[["number", "param_k", "volatility", "level_variance", "slippage", "feasible"]]"""),
]

NB04 = [
    ("md", """# 04 · Stability and shock recovery

The `shock_recovery` scenario (§9) adds a spike to the stochastic factor Z at a chosen
step. The deviation's own mean reversion θ brings prices back without any agent, so
recovery is compared for no trading (`hold`), random traders and mean-reversion traders
on the same seeds: what the agents add is the difference to `hold`."""),
    ("code", """import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mesa_econ import metrics
from mesa_econ.scenarios import scenario_params
from mesa_econ.sweep import run_sweep

POLICIES = ["hold", "random", "mean_reversion"]
SEEDS = [0, 1, 2]  # the same seeds for every policy (common random numbers)
STEPS = 120
N_AGENTS = 20  # small for a quick run; the scenario has 50
params = scenario_params("shock_recovery", n_agents=N_AGENTS, policy=POLICIES)
SHOCK = params["shock_step"]
{key: params[key] for key in ("theta", "zeta", "shock_step", "shock_size", "shock_decay")}"""),
    ("code", """frame = run_sweep(params, seeds=SEEDS, steps=STEPS, progress=False)
prices = {(policy, seed): run.sort_values("step")["price_0"].to_numpy()
          for (policy, seed), run in frame.groupby(["policy", "seed"])}"""),
    ("md", """Row t of the DataCollector is the state after t steps, so the spike added during step
`SHOCK + 1` first shows in row `SHOCK + 1`. The reference P* is the mean price over the
30 steps before the shock and the band is twice their standard deviation; a run has
recovered when the price stays in the band for 5 consecutive steps (`metrics.recovery_time`,
None if it never does). Resilience (§8.3) is 1 / mean |ΔP| over the 20 steps from the last
pre-shock price (the jump included)."""),
    ("code", """records = []
for (policy, seed), p in prices.items():
    before = p[SHOCK - 30:SHOCK + 1]
    records.append({
        "policy": policy, "seed": seed,
        "recovery_time": metrics.recovery_time(p, before.mean(), SHOCK + 1, 2 * before.std(),
                                               hold=5),
        "resilience": metrics.resilience(p, SHOCK, 20),
    })
table = pd.DataFrame(records)
table.groupby("policy").agg(
    recovered=("recovery_time", lambda s: f"{s.notna().sum()}/{len(s)}"),
    mean_recovery_steps=("recovery_time", "mean"),
    mean_resilience=("resilience", "mean"),
).loc[POLICIES]"""),
    ("md", """## Price paths and a Lyapunov-style view
V(t) = (P(t) − P*)² should fall back to its pre-shock level after the spike (§7.2 uses
P* = f(S*) at the steady state; here P* is the pre-shock mean)."""),
    ("code", """fig, axes = plt.subplots(1, 2, figsize=(12, 4))
steps = np.arange(STEPS + 1)
for policy in POLICIES:
    paths = np.stack([prices[policy, seed] for seed in SEEDS])
    line, = axes[0].plot(steps, paths.mean(axis=0), label=policy)
    axes[0].fill_between(steps, paths.min(axis=0), paths.max(axis=0), alpha=0.2,
                         color=line.get_color())
    reference = paths[:, SHOCK - 30:SHOCK + 1].mean(axis=1, keepdims=True)
    axes[1].semilogy(steps, ((paths - reference) ** 2).mean(axis=0), label=policy)
for ax in axes:
    ax.axvline(SHOCK + 1, color="grey", linestyle=":")
    ax.set_xlabel("step")
    ax.legend()
axes[0].set(ylabel="quoted price P (mean and range over seeds)", title="shock and recovery")
axes[1].set(ylabel="V = (P − P*)²", title="distance to the pre-shock level")
fig.tight_layout()
plt.show()"""),
    ("md", """## The formal stability test (§7.2)
`mesa_econ.analysis.stability.run_stability` perturbs the deviation X in twin runs (same
noise), with the agents on and off: it reports the drift E[ΔV | V] of
V = (log P − log P*)² binned by V (negative above some level: the Foster–Lyapunov
condition), the fitted decay rate of V after the perturbation, the twin-run exponent, and
the analytic mean-square condition (1 − θ·dt)² + σ1²·dt < 1 of the linearised deviation
with agents off, checked against the simulation (docs/analysis.md)."""),
    ("code", """from mesa_econ.analysis import stability

result = stability.run_stability("shock_recovery", policy="random", seeds=2, steps=100,
                                 overrides={"n_agents": N_AGENTS})
summary = result.summary()
{"analytic (agents off)": summary["analytic"][0],
 "agents on": {k: summary["agents_on"][k] for k in list(summary["agents_on"])[:6]}}"""),
    ("md", """The Nash gap of trained agents (§7.3) needs a trained profile: `mesa-econ nash
CHECKPOINT --budget-minutes M` (docs/analysis.md); `mesa-econ reproduce` writes the
profiles it trains under `checkpoints/`."""),
]

NOTEBOOKS = {
    "01_quick_start.ipynb": NB01,
    "02_training_agents.ipynb": NB02,
    "03_batch_sweeps.ipynb": NB03,
    "04_stability_and_shocks.ipynb": NB04,
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    """A notebook with these (kind, source) cells and no outputs."""
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                             for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating gives no diff
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), HERE / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
