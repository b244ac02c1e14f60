"""The §9 reproduction: claims, arms, seeds, confidence intervals. Implements §9.

Each claim of the paper's §9 is tested by training and evaluating *arms* (trained PPO
profiles and scripted baselines) on one scenario, under both profit marks (§4.1: the
default liquidation share and the paper's literal quote). The protocol (docs/reproduction.md):

- one population seed per claim fixes the graph and the needs;
- each trained arm is trained once per training seed (the unit of replication), in
  episodes of H = 128 steps, each on a fresh noise seed;
- every arm is evaluated on the same held-out noise seeds (common random numbers: the
  market's noise does not depend on the policy), for one episode of H steps each;
- an arm's metric for a training seed is its mean over the evaluation seeds; intervals
  are 95% bootstrap intervals over training seeds (scipy.stats.bootstrap; paired where
  two arms are compared).

:func:`run_reproduction` runs everything and returns plain data; ``mesa_econ.cli.reproduce``
writes it out (report.md, results.json, CSVs, figures, checkpoints).

One module per idea, every name re-exported here (``mesa_econ.experiments.CLAIMS``):

- :mod:`~mesa_econ.experiments.protocol`: claims, arms, budgets, seeds, ``config_hash``;
- :mod:`~mesa_econ.experiments.evaluate`: ``evaluate_arm`` (one episode per held-out seed);
- :mod:`~mesa_econ.experiments.reproduction`: ``run_reproduction``;
- :mod:`~mesa_econ.experiments.summary`: ``arm_table``, ``summarise_claim``,
  ``reward_shares``;
- :mod:`~mesa_econ.experiments.diagnostics`: ``pump_check``, ``baseline_returns``,
  ``scenario_checks``, ``learnability`` (issue 9's checks of a scenario),
  ``learning_curve`` (an arm retrained at several budgets beside the scripted arms).
"""

from __future__ import annotations

# Every public name of the submodules stays importable from here; the `X as X` form marks
# a re-export beyond __all__ (which keeps the eight names `import *` has always given).
from mesa_econ.experiments.diagnostics import baseline_returns as baseline_returns
from mesa_econ.experiments.diagnostics import learnability as learnability
from mesa_econ.experiments.diagnostics import learning_curve as learning_curve
from mesa_econ.experiments.diagnostics import pump_check as pump_check
from mesa_econ.experiments.diagnostics import scenario_checks as scenario_checks
from mesa_econ.experiments.evaluate import RECOVERY_BAND as RECOVERY_BAND
from mesa_econ.experiments.evaluate import RECOVERY_HOLD as RECOVERY_HOLD
from mesa_econ.experiments.evaluate import RECOVERY_WINDOW as RECOVERY_WINDOW
from mesa_econ.experiments.evaluate import evaluate_arm
from mesa_econ.experiments.protocol import ARMS, CLAIMS, Arm, Claim, RunPlan
from mesa_econ.experiments.protocol import EVAL_SEED_BASE as EVAL_SEED_BASE
from mesa_econ.experiments.protocol import POPULATION_SEED as POPULATION_SEED
from mesa_econ.experiments.protocol import PROFIT_MARKS as PROFIT_MARKS
from mesa_econ.experiments.protocol import claim_params as claim_params
from mesa_econ.experiments.protocol import config_hash as config_hash
from mesa_econ.experiments.protocol import work_units as work_units
from mesa_econ.experiments.reproduction import run_reproduction
from mesa_econ.experiments.summary import arm_table as arm_table
from mesa_econ.experiments.summary import reward_shares as reward_shares
from mesa_econ.experiments.summary import summarise_claim

__all__ = ["ARMS", "CLAIMS", "Arm", "Claim", "RunPlan", "evaluate_arm", "run_reproduction",
           "summarise_claim"]
