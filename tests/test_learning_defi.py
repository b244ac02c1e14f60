"""Issue 9: PPO on the default `defi_token_market` learns something worth learning.

Trained on the scenario's own reward (profit marked at the liquidation share, the yield,
the fee and the attributed stability term), with the default episodic protocol, then
evaluated on held-out noise seeds of the same population against its initial policy and
`hold`, with common random numbers and paired 95% bootstrap intervals.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mesa_econ import EconomyModel
from mesa_econ.experiments import evaluate_arm
from mesa_econ.rl import PPO, PPOConfig, paired_difference
from mesa_econ.scenarios import scenario_params


@pytest.mark.slow
def test_ppo_beats_its_initial_policy_and_hold_on_held_out_seeds():
    torch.set_num_threads(1)
    params = scenario_params("defi_token_market", population_seed=3, collect_every=0)
    model = EconomyModel(**{**params, "policy": "actor_critic"}, rng=0)
    trainer = PPO(model, PPOConfig(seed=0, learning_rate=1e-3))
    initial = copy.deepcopy(trainer.policy())
    trainer.train(200, progress=False)
    seeds = [900 + k for k in range(16)]
    totals = {name: evaluate_arm(policy, params, seeds, scripted=kind)[0].return_total
              for name, policy, kind in (("trained", trainer.policy(), None),
                                         ("initial", initial, None), ("hold", None, "hold"))}
    for baseline in ("initial", "hold"):
        diff = paired_difference(totals["trained"], totals[baseline], rng=0)
        assert diff["low"] > 0, (baseline, diff)
