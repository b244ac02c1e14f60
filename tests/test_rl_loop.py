"""The one training loop (mesa_econ.rl.loop) that PPO, Q-learning and the noisy AC share.

Three layers: the loop itself on a stub learner (call order, one row type, validation);
each learner's history split over several ``train`` calls equals one call (same process,
bit for bit); and short seeded runs of the three learners pinned to the values the
per-learner loops gave before they were merged (commit d846e21), compared to float32
rounding so that another BLAS kernel does not fail them.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch

from mesa_econ.model import EconomyModel
from mesa_econ.rl import loop as loop_module
from mesa_econ.rl.loop import TIMING_COLUMNS, IterationRecord, Learner, train_loop
from mesa_econ.rl.noisy_ac import NoisyAC, NoisyACConfig
from mesa_econ.rl.ppo import PPO, PPOConfig
from mesa_econ.rl.qlearning import QLearning, QLearningConfig
from mesa_econ.testing import assert_float32_close

torch.set_num_threads(1)

# The stability market of tests/test_qlearning.py (linear curve, budgets too large to bind),
# 'hold' so that every learner builds its own networks from the model's torch generator.
MARKET = {"n_agents": 3, "n_assets": 2, "curve": "linear",
          "curve_params": {"slope": 0.02, "intercept": 0.5}, "initial_holdings": 500.0,
          "initial_capital": 1e5, "profit_weight": 0.0, "omega": 10.0, "sigma_eta": 0.01,
          "trade_scale": 5.0, "factor_std": 0.1, "policy": "hold", "hidden": (8,),
          "horizon": 16}


def make_ppo(**overrides) -> PPO:
    """PPO with two 8-step rollouts per 16-step episode, normalisers on."""
    cfg = {"num_steps": 8, "num_minibatches": 2, "update_epochs": 2, "episode_length": 16,
           "learning_rate": 1e-2, "seed": 3, **overrides}
    return PPO(EconomyModel(**MARKET, rng=0), PPOConfig(**cfg))


def make_qlearning(**overrides) -> QLearning:
    """Q-learning whose 10-step iterations straddle the 16-step episodes."""
    cfg = {"hidden": (8,), "n_levels": 3, "steps_per_iteration": 10, "learning_starts": 10,
           "gradient_steps": 3, "batch_size": 4, "buffer_size": 64, "epsilon_horizon": 40,
           "target_update_interval": 2, "episode_length": 16, "seed": 5, **overrides}
    return QLearning(EconomyModel(**MARKET, rng=1), QLearningConfig(**cfg))


def make_noisy_ac(**overrides) -> NoisyAC:
    """The §6.3 learner, 8-step rollouts, 16-step episodes, normalisers on."""
    cfg = {"num_steps": 8, "episode_length": 16, "learning_rate": 1e-2, "seed": 7,
           "sigma_start": 0.05, **overrides}
    return NoisyAC(EconomyModel(**MARKET, rng=2), NoisyACConfig(**cfg))


def weight_sums_of(state: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Per state_dict tensor: (Σ w, Σ |w|) in float64."""
    return {name: (float(t.double().sum()), float(t.double().abs().sum()))
            for name, t in state.items()}


def fingerprint(learner, iterations: int) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
    """Train; return the history (timings dropped) and the trained weights."""
    frame = learner.train(iterations, progress=False)
    net = learner.q if isinstance(learner, QLearning) else learner.ensemble
    return frame.drop(columns=list(TIMING_COLUMNS)), net.state_dict()


# ---------------------------------------------------------------------- the loop itself
class StubLearner:
    """Collects 5 steps of 2 agents per iteration and logs every hook call."""

    algo_name = "stub"
    progress_columns = (("reward", "mean_reward", ".3g"),)

    def __init__(self) -> None:
        self.n_agents, self.env_steps, self.iteration = 2, 0, 0
        self.history: list[dict] = []
        self.calls: list[tuple] = []

    def collect_step(self) -> dict:
        self.calls.append(("collect",))
        self.env_steps += 5
        return {"mean_reward": -float(self.env_steps), "volatility": 0.5}

    def learn_step(self, iteration: int, iterations: int) -> dict:
        self.calls.append(("learn", iteration, iterations))
        return {"loss": 10.0 * iteration}


def test_loop_collects_then_learns_and_logs_one_row_per_iteration():
    learner = StubLearner()
    assert isinstance(learner, Learner)
    frame = train_loop(learner, 3, progress=False)
    assert learner.calls == [("collect",), ("learn", 0, 3), ("collect",), ("learn", 1, 3),
                             ("collect",), ("learn", 2, 3)]
    assert list(frame.columns) == ["iteration", "env_steps", "agent_steps", "mean_reward",
                                   "volatility", "loss", *TIMING_COLUMNS]
    assert frame["iteration"].tolist() == [1, 2, 3]
    assert frame["env_steps"].tolist() == [5, 10, 15]
    assert frame["agent_steps"].tolist() == [10, 20, 30]  # N · env_steps
    assert frame["mean_reward"].tolist() == [-5.0, -10.0, -15.0]
    assert frame["loss"].tolist() == [0.0, 10.0, 20.0]
    assert (frame[["collect_s", "update_s"]] >= 0).all().all()
    assert (frame["agent_steps_per_s"] > 0).all()
    # a second call continues the log; the iteration count restarts within the call
    frame = train_loop(learner, np.int64(1), progress=False)  # numpy integers count
    assert learner.calls[-2:] == [("collect",), ("learn", 0, 1)]
    assert type(learner.calls[-1][2]) is int
    assert frame["iteration"].tolist() == [1, 2, 3, 4] and learner.iteration == 4


def test_record_row_puts_common_columns_first_and_timings_last():
    record = IterationRecord(iteration=2, env_steps=8, agent_steps=24,
                             collected={"mean_reward": -1.0}, learned={"lr": 0.1},
                             collect_s=0.25, update_s=0.5, agent_steps_per_s=16.0)
    assert record.row() == {"iteration": 2, "env_steps": 8, "agent_steps": 24,
                            "mean_reward": -1.0, "lr": 0.1, "collect_s": 0.25,
                            "update_s": 0.5, "agent_steps_per_s": 16.0}
    assert list(record.row())[-3:] == list(TIMING_COLUMNS)


LEARNERS = {"stub": StubLearner, "ppo": make_ppo, "qlearning": make_qlearning,
            "noisy_ac": make_noisy_ac}


@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("iterations", [0, -2, True, 2.0, "3", None, 10**400],
                         ids=["0", "-2", "True", "2.0", "str", "None", "10**400"])
def test_bad_iterations_are_rejected_before_any_step(name, iterations):
    learner = LEARNERS[name]()
    train = learner.train if name != "stub" else lambda k, progress: train_loop(
        learner, k, progress)
    with pytest.raises(ValueError, match=r"iterations=.* is invalid: expected an integer"):
        train(iterations, progress=False)
    assert learner.env_steps == 0 and learner.history == []


class RecordingBar:
    """Stands in for tqdm: records the description and every postfix."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, iterable, desc: str, **kwargs) -> None:
        self.iterable, self.desc, self.postfixes = iterable, desc, []
        RecordingBar.made.append(self)

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, values: dict) -> None:
        self.postfixes.append(dict(values))


@pytest.mark.parametrize(("name", "labels"), [("ppo", ["reward", "vol"]),
                                              ("qlearning", ["reward", "eps"]),
                                              ("noisy_ac", ["reward", "vol"])])
def test_every_learner_trains_through_the_shared_loop_and_bar(monkeypatch, name, labels):
    monkeypatch.setattr(loop_module, "tqdm", RecordingBar)
    RecordingBar.made.clear()
    learner = LEARNERS[name]()
    assert isinstance(learner, Learner)
    frame = learner.train(2, progress=True)
    (bar,) = RecordingBar.made
    assert bar.desc == f"{name} training"
    assert [list(p) for p in bar.postfixes] == [labels, labels]
    column = dict((label, col) for label, col, _ in learner.progress_columns)["reward"]
    assert bar.postfixes[-1]["reward"] == format(frame[column].iloc[-1], ".4g")
    assert list(frame.columns[:3]) == ["iteration", "env_steps", "agent_steps"]
    assert list(frame.columns[-3:]) == list(TIMING_COLUMNS)


def test_learn_step_before_any_rollout_is_an_error():
    with pytest.raises(RuntimeError, match="collect_step"):
        make_ppo().learn_step(0, 1)


# ---------------------------------------------------------------------- same process
SPLITTABLE = {"ppo": lambda: make_ppo(anneal_lr=False), "qlearning": make_qlearning,
              "noisy_update": make_noisy_ac,
              "noisy_acting": lambda: make_noisy_ac(noise_mode="acting")}


@pytest.mark.parametrize("name", list(SPLITTABLE))
def test_training_split_over_calls_equals_one_call_bit_for_bit(name):
    """1 + 2 + 1 iterations over three calls = 4 in one call (episodes cross the calls;
    PPO without learning-rate annealing, whose schedule spans one call)."""
    whole, whole_weights = fingerprint(SPLITTABLE[name](), 4)
    learner = SPLITTABLE[name]()
    learner.train(1, progress=False)
    learner.train(2, progress=False)
    split, split_weights = fingerprint(learner, 1)
    pd.testing.assert_frame_equal(split, whole, check_exact=True)
    assert list(split_weights) == list(whole_weights)
    for key, value in whole_weights.items():
        assert torch.equal(split_weights[key], value), key


# ---------------------------------------------------------------------- pinned runs
# Three iterations of each learner on MARKET, recorded with the per-learner loops that
# the shared loop replaced (commit d846e21, Python 3.11, torch CPU); the shared loop gave
# the same values bit for bit on that machine. History: column -> one value per
# iteration (timings dropped); weights: state_dict entry -> (Σ w, Σ |w|) in float64.
PPO_PINS = {
    "history": {
        "iteration": [1, 2, 3],
        "env_steps": [8, 16, 24],
        "agent_steps": [24, 48, 72],
        "mean_reward": [-1.087056443685892, -1.4777343513160979, -1.9681362264260471],
        "volatility": [0.0022503030897038246, 0.003041664661612626, 0.002850663526210135],
        "level_variance": [0.014821896070756757, 0.009877845039380655, 0.06981179885713637],
        "episode_end": [0.0, 1.0, 0.0],
        "pg_loss": [-0.008337621577084064, -0.021123448386788368, -0.01028820127248764],
        "value_loss": [27.04311180114746, 1.652969479560852, 2.9685821533203125],
        "entropy": [1.858843207359314, 1.8805303573608398, 1.8838294744491577],
        "approx_kl": [0.019660338759422302, 0.0014253407716751099, 0.0003083348274230957],
        "old_approx_kl": [0.022834107279777527, 0.014766003005206585, 0.004361117724329233],
        "clipfrac": [0.16666666666666666, 0.0, 0.0],
        "explained_variance": [-0.07089900970458984, -0.9722694158554077, -0.27242302894592285],
        "epochs": [2.0, 2.0, 2.0],
        "grad_norm": [3.1412432193756104, 2.17707896232605, 3.347269058227539],
        "lr": [0.01, 0.006666666666666668, 0.003333333333333334],
    },
    "weights": {
        "log_std": (-2.8644447028636932, 2.8644447028636932),
        "group_of": (3.0, 3.0),
        "critic_w.0": (-3.2372417878359556, 77.23842465505004),
        "critic_w.1": (1.2321002539247274, 6.894920723512769),
        "critic_b.0": (-0.35175390914082527, 1.3107279911637306),
        "critic_b.1": (-0.2046085223555565, 0.2046085223555565),
        "actor_w.0": (2.0801889314316213, 78.52878590626642),
        "actor_w.1": (0.20764678937848657, 1.2119071587221697),
        "actor_b.0": (0.04164504655636847, 0.7249158730264753),
        "actor_b.1": (-0.01282101683318615, 0.15752632357180119),
    },
}
QLEARNING_PINS = {
    "history": {
        "iteration": [1, 2, 3],
        "env_steps": [10, 20, 30],
        "agent_steps": [30, 60, 90],
        "mean_reward": [-1.8252095765471381, -1.4516840413097398, -1.7403830840357948],
        "volatility": [0.0038230873504631726, 0.0027735191790637767, 0.0036552845520700828],
        "level_variance": [0.03151705096183082, 0.14199991888207547, 0.01864086029785083],
        "episodes": [0, 1, 0],
        "epsilon": [0.78625, 0.5487500000000001, 0.31125],
        "td_loss": [0.717984194556872, 1.4997218052546184, 0.7671608626842499],
        "q_mean": [0.09180298447608948, 0.11584652215242386, 0.0680314302444458],
        "updates": [3, 6, 9],
    },
    "weights": {
        "levels": (0.0, 2.0),
        "edge_index": (0.0, 0.0),
        "edge_weight": (0.0, 0.0),
        "weights.0": (-3.4397184691624716, 86.76382468163501),
        "weights.1": (3.1958051978144795, 42.9127743744757),
        "biases.0": (-0.04020049050450325, 0.11023446405306458),
        "biases.1": (-0.10229015187360346, 0.11524915625341237),
    },
}
NOISY_UPDATE_PINS = {
    "history": {
        "iteration": [1, 2, 3],
        "env_steps": [8, 16, 24],
        "agent_steps": [24, 48, 72],
        "mean_reward": [-1.5101709999094304, -1.6087869651532793, -1.6524739960879176],
        "volatility": [0.003348223613471578, 0.0029541494032547634, 0.0034051256894613],
        "level_variance": [0.0074322938884650745, 0.02590375906508719, 0.008439637328347406],
        "episode_end": [0.0, 1.0, 0.0],
        "pg_loss": [0.12244722247123718, 0.045848995447158813, 0.06597524881362915],
        "value_loss": [19.513761520385742, 0.9873314499855042, 1.3580117225646973],
        "entropy": [1.8378769159317017, 1.8445439338684082, 1.8484697341918945],
        "approx_kl": [0.0, 0.0, 0.0],
        "is_ratio": [1.0, 1.0, 1.0],
        "sigma_xi": [0.05, 0.0484161892862815, 0.04688254770010078],
        "xi_norm": [0.8344653301129471, 0.7851835520111109, 0.7476013602414093],
        "grad_norm": [3.8412201404571533, 2.818394899368286, 2.158689260482788],
    },
    "weights": {
        "log_std": (-2.9459278881549835, 2.9459278881549835),
        "group_of": (3.0, 3.0),
        "critic_w.0": (-11.582494017900899, 79.40365247684531),
        "critic_w.1": (0.3306715227663517, 7.60460465028882),
        "critic_b.0": (0.0019766055047512054, 0.6273957304656506),
        "critic_b.1": (-0.0823837611824274, 0.0823837611824274),
        "actor_w.0": (0.7504859929904342, 79.51234273146838),
        "actor_w.1": (-0.08482909807935357, 2.851432559546083),
        "actor_b.0": (0.49708319874480367, 1.8197403573431075),
        "actor_b.1": (0.2925537284463644, 0.5608702059835196),
    },
}
NOISY_ACTING_PINS = {
    "history": {
        "iteration": [1, 2, 3],
        "env_steps": [8, 16, 24],
        "agent_steps": [24, 48, 72],
        "mean_reward": [-1.3793932713473023, -1.4672248345156635, -1.9711617479643273],
        "volatility": [0.003035686571389978, 0.0027928238082724688, 0.0040069248120760195],
        "level_variance": [0.007541756942571502, 0.008890189590068789, 0.017308563239938013],
        "episode_end": [0.0, 1.0, 0.0],
        "pg_loss": [0.06247517839074135, -0.35907992720603943, 0.1617686003446579],
        "value_loss": [19.800939559936523, 1.3696640729904175, 1.6471081972122192],
        "entropy": [1.8378769159317017, 1.8246139287948608, 1.8167179822921753],
        "approx_kl": [0.016295894980430603, 0.04147068411111832, 0.03119831532239914],
        "is_ratio": [1.050258994102478, 1.073048710823059, 1.0794434547424316],
        "sigma_xi": [0.05, 0.0484161892862815, 0.04688254770010078],
        "xi_norm": [0.0, 0.0, 0.0],
        "grad_norm": [3.488936185836792, 2.8206193447113037, 2.5735867023468018],
    },
    "weights": {
        "log_std": (-3.073358327150345, 3.073358327150345),
        "group_of": (3.0, 3.0),
        "critic_w.0": (-11.496120546013117, 79.4955881871283),
        "critic_w.1": (0.2970668897032738, 7.58560886234045),
        "critic_b.0": (-0.008382953703403473, 0.6302692331373692),
        "critic_b.1": (-0.08347210474312305, 0.08347210474312305),
        "actor_w.0": (1.5968262740643695, 80.01681700919289),
        "actor_w.1": (0.15649164433125407, 0.7854012799216434),
        "actor_b.0": (-0.13796648243442178, 0.4445195747539401),
        "actor_b.1": (0.03185718972235918, 0.14441525656729937),
    },
}

PINNED = {"ppo": (make_ppo, PPO_PINS), "qlearning": (make_qlearning, QLEARNING_PINS),
          "noisy_update": (make_noisy_ac, NOISY_UPDATE_PINS),
          "noisy_acting": (lambda: make_noisy_ac(noise_mode="acting"), NOISY_ACTING_PINS)}
EXACT = {"iteration", "env_steps", "agent_steps", "episode_end", "episodes", "epochs",
         "updates", "lr", "epsilon", "sigma_xi"}
"""Counts and schedule values: no float32 arithmetic on the way, compared exactly."""
TERMS = 256
"""Float32 rounding allowed for the rest: 3 iterations of a few hundred float32 operations
each (an 8-step rollout of 3 agents, 2 epochs of 2 minibatches), so another BLAS kernel's
summation order passes while any change to what is computed (an extra draw from a
generator, another order of collection and update) moves the values by far more."""


@pytest.mark.parametrize("name", list(PINNED))
def test_three_iterations_give_the_values_of_the_per_learner_loops(name):
    make, pins = PINNED[name]
    frame, weights = fingerprint(make(), 3)
    assert list(frame.columns) == list(pins["history"])
    for column, expected in pins["history"].items():
        if column in EXACT:
            np.testing.assert_array_equal(frame[column].to_numpy(), expected,
                                          err_msg=column)
        else:
            assert_float32_close(frame[column].to_numpy(), expected, terms=TERMS,
                                 name=column)
    assert list(weight_sums_of(weights)) == list(pins["weights"])
    for key, (total, magnitude) in weight_sums_of(weights).items():
        want_total, want_magnitude = pins["weights"][key]
        # Σ w can cancel to near 0: its rounding is that of Σ |w|
        assert_float32_close(total, want_total, terms=TERMS, scale=want_magnitude,
                             name=f"sum of {key}")
        assert_float32_close(magnitude, want_magnitude, terms=TERMS, name=f"|{key}|")
