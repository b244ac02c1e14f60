"""The one KEY=VALUE parser of `mesa-econ` (mesa_econ.cli._params) and its argument types."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesa_econ.cli import main
from mesa_econ.cli._params import (
    ParamError,
    dataclass_defaults,
    int_at_least,
    parse_interval,
    parse_lists,
    parse_pairs,
    parse_seeds,
    parse_value,
    signature_defaults,
    split_values,
)

DEFAULTS = {"kappa": 0.0, "n_agents": 50, "policy": "random", "collect_agents": False,
            "capacity": None}


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("-5", -5), (" 7 ", 7), ("0.5", 0.5), ("1e-3", 1e-3), ("-inf", -math.inf),
    ("true", True), ("False", False), ("none", None), ("NULL", None), ("hold", "hold"),
    ("checkpoint:/a/b", "checkpoint:/a/b"), ("[64, 64]", (64, 64)), ('"3"', "3"),
    ('{"k": 0.001}', {"k": 0.001}), ("[]", ()),
])
def test_values_are_read_as_typed(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_malformed_json_is_refused():
    with pytest.raises(ValueError, match=r"'\[64, 64' is invalid: expected valid JSON"):
        parse_value("[64, 64")


@given(st.one_of(st.integers(-10**100, 10**100), st.floats(allow_nan=False)))
def test_numbers_round_trip(x):
    """Every int and float survives str → parse_value (ints stay ints)."""
    parsed = parse_value(str(x))
    assert parsed == x and type(parsed) is type(x)


@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=6))
def test_comma_lists_of_numbers_parse_to_the_list(xs):
    assert parse_lists([f"kappa={','.join(map(str, xs))}"], "--param") == {"kappa": xs}


def test_commas_inside_brackets_do_not_split():
    assert split_values("[1,2],[3,[4,5]],6") == ["[1,2]", "[3,[4,5]]", "6"]
    assert parse_lists(["hidden=[32,32],[64,64]"], "--param") == {
        "hidden": [(32, 32), (64, 64)]}


def test_pairs_normalise_dashes_and_keep_the_last_value():
    assert parse_pairs(["num-steps=64", "lr=1e-3", "lr=2e-3"], "--set") == {
        "num_steps": 64, "lr": 2e-3}


@pytest.mark.parametrize(("items", "message"), [
    (["kappa=abc"],
     "--param kappa=abc: kappa='abc' is invalid: expected a number (the default is 0.0)"),
    (["kappa=0.1,abc"],
     "--param kappa=0.1,abc: kappa='abc' is invalid: expected a number (the default is 0.0)"),
    (["n_agents=true"],
     "--param n_agents=true: n_agents=True is invalid: expected a number (the default is 50)"),
    (["collect_agents=1"], "--param collect_agents=1: collect_agents=1 is invalid: expected "
                           "true or false (the default is false)"),
    (["kapa=0.1"], "--param kapa=0.1: kapa is invalid: expected one of ['capacity', "
                   "'collect_agents', 'kappa', 'n_agents', 'policy']"),
    (["kappa"], "--param kappa: 'kappa' is invalid: expected NAME=V1,V2,..."),
    (["kappa="], "--param kappa=: 'kappa=' is invalid: expected NAME=V1,V2,..."),
    (["=1"], "--param =1: '=1' is invalid: expected NAME=V1,V2,..."),
    (["kappa=0.1,,0.2"], "--param kappa=0.1,,0.2: kappa='0.1,,0.2' is invalid: expected "
                         "comma-separated values, none of them empty"),
    (["kappa=[0.1"], "--param kappa=[0.1: '[0.1' is invalid: expected valid JSON"),
])
def test_bad_items_give_one_message_naming_option_and_item(items, message):
    with pytest.raises(ParamError) as exc:
        parse_lists(items, "--param", defaults=DEFAULTS)
    assert str(exc.value).startswith(message)
    assert isinstance(exc.value, ValueError)  # the router prints it as one error line


def test_values_the_parser_cannot_judge_pass_to_the_model():
    """Ranges, per-asset tuples and parameters without a typed default are the model's to
    check; the parser lets them through."""
    assert parse_lists(["kappa=-1,[0.1,0.2]", "capacity=abc", "policy=hold"], "--param",
                       defaults=DEFAULTS) == {"kappa": [-1, (0.1, 0.2)], "capacity": ["abc"],
                                              "policy": ["hold"]}


def test_pairs_with_a_converter():
    assert parse_pairs(["k=1e-5:1e-3"], "--bound", convert=parse_interval) == {
        "k": (1e-5, 1e-3)}
    with pytest.raises(ParamError, match=r"^--bound k=1: '1' is invalid: expected LOW:HIGH"):
        parse_pairs(["k=1"], "--bound", convert=parse_interval)
    with pytest.raises(ParamError, match="finite"):
        parse_pairs(["k=0:inf"], "--bound", convert=parse_interval)


@pytest.mark.parametrize(("low", "text", "value"), [(1, "1", 1), (1, "200", 200),
                                                    (0, "0", 0)])
def test_int_at_least_accepts(low, text, value):
    assert int_at_least(low)(text) == value


@pytest.mark.parametrize(("low", "text", "message"), [
    (1, "-5", "argument --steps: -5 is invalid: expected an integer >= 1"),
    (1, "0", "argument --steps: 0 is invalid: expected an integer >= 1"),
    (0, "-1", "argument --steps: -1 is invalid: expected an integer >= 0"),
    (1, "2.5", "argument --steps: '2.5' is invalid: expected an integer >= 1"),
])
def test_int_at_least_is_an_argparse_error_naming_option_and_range(capsys, low, text,
                                                                   message):
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--steps", type=int_at_least(low))
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--steps", text])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_seeds_are_a_count_or_a_list():
    assert parse_seeds("3") == 3
    assert parse_seeds("0,5,9") == [0, 5, 9]
    for text in ("0", "-2", "a", "1,-2", "1,,2"):
        with pytest.raises(argparse.ArgumentTypeError, match="is invalid: expected"):
            parse_seeds(text)


def test_defaults_from_signatures_and_dataclasses():
    def f(a, b=2, *args, c="x", **kwargs):
        return a

    @dataclasses.dataclass
    class C:
        a: int
        b: float = 0.5
        c: tuple = dataclasses.field(default_factory=lambda: (1, 2))

    assert signature_defaults(f) == {"a": None, "b": 2, "c": "x"}
    assert dataclass_defaults(C) == {"a": None, "b": 0.5, "c": (1, 2)}


# ------------------------------------------------------------------ every command uses it

@pytest.mark.parametrize(("argv", "line"), [
    (["sweep", "--param", "kappa=abc"],
     "error: --param kappa=abc: kappa='abc' is invalid: expected a number (the default is "
     "0.0)"),
    (["train", "defi_token_market", "--set", "num_steps=abc"],
     "error: --set num_steps=abc: num_steps='abc' is invalid: expected a number"),
    (["train", "defi_token_market", "--model", "omega=lots"],
     "error: --model omega=lots: omega='lots' is invalid: expected a number"),
    (["tune", "defi_token_market", "--fix", "k=abc"],
     "error: --fix k=abc: 'abc' is invalid: expected a finite number"),
    (["tune", "defi_token_market", "--bound", "k=1"],
     "error: --bound k=1: '1' is invalid: expected LOW:HIGH"),
    (["tune", "defi_token_market", "--model", "n_agents=five"],
     "error: --model n_agents=five: n_agents='five' is invalid: expected a number"),
])
def test_every_command_reports_a_bad_item_in_one_line_before_any_work(tmp_path, capsys,
                                                                      argv, line):
    out = tmp_path / "never"
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
