"""The shared validators every config uses: a clear ValueError naming the field and the
valid range for each kind of bad input, and the value through when it is good."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mesa_econ.config import check_choice, check_int, check_number
from mesa_econ.rl.trainer import check_episode_length


@pytest.mark.parametrize("value", [True, 1.0, "3", None, np.array([3]), 0, -2])
def test_check_int_rejects_non_integers_and_values_below_low(value):
    with pytest.raises(ValueError, match=r"steps=.*expected an integer >= 1"):
        check_int("steps", value, 1)


def test_check_int_returns_a_python_int_and_checks_high():
    got = check_int("steps", np.int64(4), 1, 5)
    assert got == 4 and type(got) is int
    with pytest.raises(ValueError, match=r"steps=6 .*an integer in \[1, 5\]"):
        check_int("steps", 6, 1, 5)
    assert check_int("seed", -7) == -7  # no bound: any integer


@pytest.mark.parametrize("value", [True, "0.1", None, [0.1], np.array(0.1), math.nan,
                                   math.inf, 0.0, 1.0, 1.5])
def test_check_number_rejects_non_scalars_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"gamma=.*a finite real in \(0.0, 1.0\)"):
        check_number("gamma", value, 0.0, 1.0, low_open=True, high_open=True)


def test_check_number_accepts_closed_bounds_and_numpy_scalars():
    check_number("gamma", 0.0, 0.0, 1.0)
    check_number("gamma", 1, 0.0, 1.0)
    check_number("gamma", np.float32(0.5), 0.0, 1.0)


def test_check_choice_names_the_choices():
    check_choice("kind", "a", ("a", "b"))
    with pytest.raises(ValueError, match=r"kind='c' .*one of \['a', 'b'\]"):
        check_choice("kind", "c", ("a", "b"))


@pytest.mark.parametrize("value", [64, 100, 0, -128, True, 256.0, "256"])
def test_episode_length_must_be_a_multiple_of_the_rollout(value):
    with pytest.raises(ValueError, match=r"episode_length=.*multiple of num_steps=128"):
        check_episode_length(value, 128)


def test_episode_length_none_or_a_multiple_passes():
    check_episode_length(None, 128)
    check_episode_length(256, 128)
