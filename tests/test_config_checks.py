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


# ---------------------------------------------------------------- mesa_econ._validation
def test_config_re_exports_the_validation_module():
    from mesa_econ import _validation, config

    for name in ("check_choice", "check_int", "check_number", "check_real"):
        assert getattr(config, name) is getattr(_validation, name)


@pytest.mark.parametrize("value", [10**400, 2**63], ids=["10**400", "2**63"])
def test_check_int_refuses_integers_beyond_int64(value):
    with pytest.raises(ValueError, match=r"^n=.* is invalid: expected an integer in \[1, "
                                         r"9223372036854775807\] \(int64\)$"):
        check_int("n", value, 1)
    with pytest.raises(ValueError, match=r"^n=.* is invalid: expected an integer in "
                                         r"\[-9223372036854775808, 9223372036854775807\]"):
        check_int("n", -value - 1)


@pytest.mark.parametrize("value", [10**400, "0.5", True, np.bool_(False), 1 + 0j])
def test_check_number_refuses_huge_ints_strings_and_bools(value):
    with pytest.raises(ValueError, match=r"^x=.* is invalid: expected a finite real in "):
        check_number("x", value)


def test_check_number_accepts_big_ints_within_float_range_and_returns_a_float():
    got = check_number("x", 10**300)
    assert got == 1e300 and type(got) is float


def test_describe_abbreviates_long_values():
    from mesa_econ._validation import describe

    assert describe(np.zeros((20, 3))) == "<ndarray of shape (20, 3)>"
    assert describe(np.array([1.0, 2.0])) == "ndarray([1.0, 2.0])"
    assert len(describe("x" * 500)) <= 60
    assert len(describe(10**400)) <= 60


@pytest.mark.parametrize("value,expected", [("7", 7), (" 12 ", 12), ("", None), (None, None),
                                            (3.0, 3), (np.int64(4), 4), (0, 0)])
def test_check_seed_casts_text_and_integral_floats(value, expected):
    from mesa_econ._validation import check_seed

    got = check_seed("seed", value)
    assert got == expected and (got is None or type(got) is int)


def test_check_seed_passes_numpy_generators_through_and_names_bad_seeds():
    from mesa_econ._validation import check_seed

    generator = np.random.default_rng(1)
    assert check_seed("rng", generator) is generator
    for bad in (-1, "-1", 1.5, True, [1], 2**63, float("nan")):
        with pytest.raises(ValueError, match=r"^rng=.* is invalid: expected None, an integer "
                                             r"seed in \[0, "):
            check_seed("rng", bad)


def test_check_per_asset_takes_a_scalar_or_one_real_per_asset():
    from mesa_econ._validation import check_per_asset

    for good in (0.5, [0.1, 0.2, 0.3], np.array([1, 2, 3]), np.float32(2.0), (0, 0, 1e300)):
        check_per_asset("kappa", good, 3, 0.0)
    for bad in ([0.1, True, 0.3], [0.1, 0.2], [[0.1, 0.2, 0.3]], np.zeros((3, 1)),
                [0.1, -0.2, 0.3], "0.1", [0.1, float("nan"), 0.3], np.array(["1", "2", "3"])):
        with pytest.raises(ValueError, match=r"^kappa=.* is invalid: expected a finite real "
                                             r"in \[0.0, inf\] or a sequence of 3"):
            check_per_asset("kappa", bad, 3, 0.0)


def test_real_array_refuses_strings_bools_and_ragged_input_and_keeps_float64_arrays():
    from mesa_econ._validation import real_array

    arr = np.ones(3)
    assert real_array("x", arr, 1) is arr  # the model's arrays: no copy
    np.testing.assert_array_equal(real_array("x", [1, 10**20], 1), [1.0, 1e20])
    for bad in (["1", "2"], [True, False], [1.0, [2.0]], "12", {"a": 1}, [None], [10**400]):
        with pytest.raises(ValueError, match=r"^x=.* is invalid: expected real numbers"):
            real_array("x", bad, 1)
    with pytest.raises(ValueError, match=r"^x=.* is invalid: expected a 2-D real array$"):
        real_array("x", [1.0], 2)
    with pytest.raises(ValueError, match=r"expected finite reals \(no NaN or inf\)"):
        real_array("x", [1.0, float("inf")], 1)


def test_check_indices_and_positive_ints_return_tuples_of_ints():
    from mesa_econ._validation import check_indices, check_positive_ints

    assert check_indices("shock_assets", np.int64(2), 3) == (2,)
    assert check_indices("shock_assets", np.array([0, 2]), 3) == (0, 2)
    assert check_positive_ints("hidden", [np.int32(8), 4]) == (8, 4)
    with pytest.raises(ValueError, match=r"^shock_assets=\(0, 3\) is invalid: expected an "
                                         r"index or a sequence of indices in \[0, 2\]$"):
        check_indices("shock_assets", (0, 3), 3)


def test_check_bool_refuses_integers_and_strings():
    from mesa_econ._validation import check_bool

    assert check_bool("flag", np.bool_(True)) is True
    for bad in (1, 0, "True", None):
        with pytest.raises(ValueError, match=r"^flag=.* is invalid: expected True or False$"):
            check_bool("flag", bad)
