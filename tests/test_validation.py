"""One validation module, one wording: every bad configuration value raises ValueError
``"{field}={value!r} is invalid: expected {valid}"`` at construction, never a TypeError,
an OverflowError or a failure many steps later."""

from __future__ import annotations

import inspect
import re
from dataclasses import fields

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ import metrics, rewards
from mesa_econ.config import MarketConfig, ModelConfig, PolicyConfig, RewardConfig
from mesa_econ.model import EconomyModel
from mesa_econ.policies import ActorCritic, PolicyEnsemble
from mesa_econ.rl.noisy_ac import NoisyACConfig
from mesa_econ.rl.ppo import PPOConfig
from mesa_econ.rl.qlearning import QLearningConfig

M = MarketConfig().n_assets

NUMERIC = {"int", "float", "int | None", "float | None", "PerAsset", "PerAsset | None"}
PER_ASSET = {"PerAsset", "PerAsset | None"}
NOT_HERE: set[tuple[type, str]] = set()  # (config, field) pairs checked elsewhere: none
CONFIGS = (MarketConfig, RewardConfig, PolicyConfig, ModelConfig, PPOConfig, QLearningConfig,
           NoisyACConfig)


def _numeric_fields(cls: type) -> list[tuple[str, bool]]:
    """(name, per_asset) of each numeric field of a config dataclass."""
    return [(f.name, f.type in PER_ASSET) for f in fields(cls)
            if f.type in NUMERIC and (cls, f.name) not in NOT_HERE]


SCALAR_GARBAGE = ["1.0", "1", True, False, [1.0], (2,), 10**400, -(10**400), {"x": 1},
                  1 + 2j, b"1"]
PER_ASSET_GARBAGE = ["1.0", True, False, 10**400, ["1.0"] * M, [True] * M,
                     [1.0, 10**400, 1.0], [[1.0]] * M, [1.0] * (M + 1), np.array(["1"] * M),
                     np.array([True] * M)]


def _id(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "..."


def _cases() -> list:
    cases = []
    for cls in CONFIGS:
        for name, per_asset in _numeric_fields(cls):
            for bad in PER_ASSET_GARBAGE if per_asset else SCALAR_GARBAGE:
                cases.append(pytest.param(cls, name, bad, id=f"{cls.__name__}.{name}={_id(bad)}"))
    return cases


def _message_names(exc: pytest.ExceptionInfo, name: str) -> None:
    """The house wording: ``name=value is invalid: expected valid``."""
    text = str(exc.value)
    assert re.match(rf"{re.escape(name)}=.* is invalid: expected \S", text, re.S), text


def test_every_config_has_numeric_fields_to_check():
    """Guard for the parametrisation below: the field types are read from annotations."""
    assert {name for name, _ in _numeric_fields(MarketConfig)} >= {
        "n_agents", "kappa", "dt", "capacity", "shock_step", "population_seed"}
    assert {name for name, _ in _numeric_fields(PPOConfig)} >= {"gamma", "num_steps", "seed"}


@pytest.mark.parametrize("cls,name,bad", _cases())
def test_config_numeric_fields_reject_strings_bools_lists_and_huge_ints(cls, name, bad):
    with pytest.raises(ValueError) as exc:
        cls(**{name: bad})
    _message_names(exc, "policy" if name == "kind" else name)


@pytest.mark.parametrize("cls,name", [(cls, f.name) for cls in CONFIGS for f in fields(cls)
                                       if f.type == "bool"])
@pytest.mark.parametrize("bad", [0, 1, "True", None, np.float64(1.0)])
def test_config_switches_take_only_booleans(cls, name, bad):
    """PPOConfig.norm_obs=1 or QLearningConfig.double_q="False" is refused, not read."""
    with pytest.raises(ValueError) as exc:
        cls(**{name: bad})
    _message_names(exc, name)


def _model_numeric_keywords() -> list[tuple[str, bool]]:
    signature = inspect.signature(EconomyModel.__init__).parameters
    known = {}
    for cls in (MarketConfig, RewardConfig, PolicyConfig, ModelConfig):
        known.update(dict(_numeric_fields(cls)))
    return [(name, known[name]) for name in signature if name in known]


def _model_cases() -> list:
    cases = []
    for name, per_asset in _model_numeric_keywords():
        for bad in PER_ASSET_GARBAGE if per_asset else SCALAR_GARBAGE:
            cases.append(pytest.param(name, bad, id=f"{name}={_id(bad)}"))
    for bad in ["1.0", True, [[1.0]], 10**400, -1.0, np.array([[1.0, "x"]]), {"a": 1}]:
        cases.append(pytest.param("demand", bad, id=f"demand={_id(bad)}"))
    return cases


def test_model_keywords_cover_the_config_fields():
    names = {name for name, _ in _model_numeric_keywords()}
    assert names >= {"n_agents", "kappa", "omega", "random_scale", "collect_every", "horizon"}


@pytest.mark.parametrize("name,bad", _model_cases())
def test_model_keywords_reject_strings_bools_lists_and_huge_ints(name, bad):
    with pytest.raises(ValueError) as exc:
        EconomyModel(**{"n_agents": 4, name: bad})
    _message_names(exc, name)


# ---------------------------------------------------------------- graph_params
@pytest.mark.parametrize("graph,params,key", [
    ("watts_strogatz", {"k": 4, "q": 0.1}, "q"),
    ("watts_strogatz", {"k": 4.0}, "k"),
    ("watts_strogatz", {"k": 4.5}, "k"),
    ("watts_strogatz", {"k": "4"}, "k"),
    ("watts_strogatz", {"k": True}, "k"),
    ("watts_strogatz", {"k": 10**400}, "k"),
    ("watts_strogatz", {"p": "0.1"}, "p"),
    ("watts_strogatz", {"p": 1.5}, "p"),
    ("erdos_renyi", {"k": 4}, "k"),
    ("erdos_renyi", {"p": [0.1]}, "p"),
    ("barabasi_albert", {"m": 2.0}, "m"),
    ("barabasi_albert", {"p": 0.1}, "p"),
    ("complete", {"k": 4}, "k"),
    ("complete", {"p": 0.1}, "p"),
    ("empty", {"m": 2}, "m"),
])
def test_graph_params_unknown_keys_non_integer_k_and_params_for_complete(graph, params, key):
    with pytest.raises(ValueError) as exc:
        MarketConfig(n_agents=10, graph=graph, graph_params=params)
    _message_names(exc, f"graph_params {key}")
    with pytest.raises(ValueError, match=rf"^graph_params {key}="):
        EconomyModel(n_agents=10, graph=graph, graph_params=params, rng=0)


@pytest.mark.parametrize("params", [["k", 4], "k=4", 4])
def test_graph_params_must_be_a_mapping(params):
    with pytest.raises(ValueError) as exc:
        EconomyModel(n_agents=10, graph="watts_strogatz", graph_params=params)
    _message_names(exc, "graph_params")


def test_graph_params_for_a_user_graph_are_rejected():
    with pytest.raises(ValueError, match=r"^graph_params k="):
        MarketConfig(n_agents=4, graph=nx.cycle_graph(4), graph_params={"k": 2})


def test_valid_graph_params_still_build_the_graph():
    model = EconomyModel(n_agents=10, graph="watts_strogatz", graph_params={"k": 4, "p": 0.0},
                         rng=0)
    assert sorted(d for _, d in model.graph.degree()) == [4] * 10  # p = 0: the ring lattice
    model = EconomyModel(n_agents=10, graph="barabasi_albert", graph_params={"m": np.int64(3)},
                         rng=0)
    assert model.graph.number_of_edges() == 3 * (10 - 3)  # m edges per node after the first m


# ---------------------------------------------------------------- hidden
@pytest.mark.parametrize("hidden", [(0,), (8, -1), (8.0,), (True,), ("8",), "64", 64, (),
                                    None, (10**400,), ((8,),)])
def test_hidden_must_be_a_sequence_of_positive_integers(hidden):
    for build in (lambda: PolicyConfig(hidden=hidden),
                  lambda: EconomyModel(n_agents=4, policy="actor_critic", hidden=hidden),
                  lambda: ActorCritic(4, 2, hidden=hidden),
                  lambda: PolicyEnsemble(3, 4, 2, hidden=hidden)):
        with pytest.raises(ValueError) as exc:
            build()
        _message_names(exc, "hidden")


def test_hidden_as_a_list_or_numpy_ints_becomes_a_tuple_of_ints():
    assert PolicyConfig(hidden=[16, np.int64(8)]).hidden == (16, 8)
    model = EconomyModel(n_agents=3, policy="actor_critic", hidden=[16, 8], rng=0)
    assert model.config.policy.hidden == (16, 8)
    assert model.ensemble.hidden == (16, 8)


@pytest.mark.parametrize("name,value", [("init_log_std", "0.5"), ("init_log_std", True),
                                        ("init_log_std", 10**400), ("obs_dim", 4.0),
                                        ("act_dim", "2"), ("obs_dim", 10**400)])
def test_actor_critic_sizes_reject_garbage(name, value):
    args = {"obs_dim": 4, "act_dim": 2, name: value}
    for cls in (ActorCritic, lambda **kw: PolicyEnsemble(3, **kw)):
        with pytest.raises(ValueError) as exc:
            cls(**args)
        _message_names(exc, name)


# ---------------------------------------------------------------- shock_assets, booleans
@pytest.mark.parametrize("assets", [(3,), (-1,), (0.5,), (True,), ("0",), [[0]], "0", 1.5,
                                    (10**400,), {"a": 0}])
def test_shock_assets_must_be_asset_indices(assets):
    with pytest.raises(ValueError) as exc:
        MarketConfig(n_assets=3, shock_step=2, shock_assets=assets)
    _message_names(exc, "shock_assets")
    with pytest.raises(ValueError) as exc:
        EconomyModel(n_agents=4, n_assets=3, shock_step=2, shock_assets=assets)
    _message_names(exc, "shock_assets")


def test_shock_assets_take_an_index_a_list_or_an_array():
    assert MarketConfig(shock_assets=[0, 2]).shock_assets == (0, 2)
    assert MarketConfig(shock_assets=1).shock_assets == (1,)
    assert MarketConfig(shock_assets=np.array([2])).shock_assets == (2,)
    model = EconomyModel(n_agents=4, n_assets=3, shock_step=0, shock_size=5.0,
                         shock_assets=[1], factor_std=0.0, rng=0)
    np.testing.assert_array_equal(model.factors, [0.0, 5.0, 0.0])  # only asset 1 spiked


@pytest.mark.parametrize("value", [1, 0, "yes", "False", None, 1.0, [True]])
def test_collect_agents_must_be_a_boolean(value):
    for build in (lambda: ModelConfig(collect_agents=value),
                  lambda: EconomyModel(n_agents=4, collect_agents=value)):
        with pytest.raises(ValueError) as exc:
            build()
        _message_names(exc, "collect_agents")


def test_collect_agents_accepts_numpy_booleans():
    assert ModelConfig(collect_agents=np.bool_(True)).collect_agents is True


# ---------------------------------------------------------------- seeds
@pytest.mark.parametrize("name,value", [("rng", -1), ("seed", -1), ("rng", "-1"),
                                        ("seed", -3.0), ("rng", 10**400), ("seed", True),
                                        ("rng", [1.5]), ("seed", "abc"), ("rng", 2.5)])
def test_negative_and_odd_seeds_name_the_field(name, value):
    with pytest.raises(ValueError) as exc:
        EconomyModel(n_agents=4, **{name: value})
    _message_names(exc, name)


def test_a_numpy_generator_is_still_a_valid_rng():
    a = EconomyModel(n_agents=4, rng=np.random.default_rng(5))
    b = EconomyModel(n_agents=4, rng=np.random.default_rng(5))
    a.step()
    b.step()
    np.testing.assert_array_equal(a.prices, b.prices)


# ---------------------------------------------------------------- neighbours on complete
def test_neighbours_scope_on_the_complete_graph_steps_as_every_other_agent():
    """On the complete graph every other agent is a neighbour: the cooperative term is
    ρ Σ_{k≠i} r_k, equal to the same market on an explicit complete networkx graph."""
    kwargs = {"n_agents": 6, "n_assets": 2, "rho": 0.3, "kappa": 1e-3, "sigma0": 0.01,
              "cooperative_scope": "neighbours"}
    implicit = EconomyModel(graph="complete", rng=4, **kwargs)
    explicit = EconomyModel(graph=nx.complete_graph(6), rng=4, **kwargs)
    for _ in range(4):
        implicit.step()
        explicit.step()
        coop = implicit.last_breakdown.cooperative
        profit = implicit.last_breakdown.profit
        np.testing.assert_allclose(coop, 0.3 * (profit.sum() - profit), rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(coop, explicit.last_breakdown.cooperative, rtol=1e-9,
                                   atol=1e-12)
    assert np.any(implicit.last_breakdown.cooperative != 0.0)


# ---------------------------------------------------------------- metrics and rewards
@pytest.mark.parametrize("call,name", [
    (lambda: metrics.volatility(["1.0", "2.0", "3.0"]), "prices"),
    (lambda: metrics.volatility(np.array([True, True, True])), "prices"),
    (lambda: metrics.hhi([[1, 2], [3, "4"]]), "holdings"),
    (lambda: metrics.price_entropy([1.0, 2.0], bins=10**400), "bins"),
    (lambda: metrics.gini([1.0, [2.0]]), "values"),
    (lambda: metrics.gini([1.0, 10**400]), "values"),
    (lambda: metrics.pre_shock_band([1.0, 2.0, 3.0, 4.0], shock_step=2, window=2,
                                    width="0.1"), "width"),
    (lambda: rewards.stability_penalty([1.0], [2.0], "0.1"), "omega"),
    (lambda: rewards.cooperative_bonus([1.0, 2.0], True), "rho"),
    (lambda: rewards.use_value_reward(np.ones((2, 2)), np.ones((2, 2)), [1.0]), "value"),
    (lambda: rewards.cooperative_bonus([1.0, 2.0], 0.1, sp.csr_array((3, 3))), "adjacency"),
    (lambda: rewards.cooperative_bonus([1.0, 2.0], 0.1, "ring"), "adjacency"),
])
def test_metric_and_reward_inputs_use_the_same_wording(call, name):
    with pytest.raises(ValueError) as exc:
        call()
    _message_names(exc, name)


# ---------------------------------------------------------------- hypothesis
def _garbage(per_asset: bool) -> st.SearchStrategy:
    """Values no numeric field accepts: text, bools, nested or mixed lists, huge ints,
    non-finite floats, mappings, bytes, complex numbers."""
    huge = st.integers(min_value=10**309, max_value=10**600)
    scalar_junk = st.one_of(st.text(max_size=8), st.booleans(), huge, huge.map(lambda x: -x),
                            st.sampled_from([float("nan"), float("inf"), -float("inf")]),
                            st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                            st.binary(max_size=4), st.complex_numbers(min_magnitude=1.0))
    if per_asset:  # a sequence of M entries with at least one bad one, or a nested one
        junk_list = st.tuples(st.integers(0, M - 1), scalar_junk).map(
            lambda t: [1.0 if j != t[0] else t[1] for j in range(M)])
        return st.one_of(scalar_junk, junk_list, st.just([[1.0] * M] * M))
    return st.one_of(scalar_junk, st.lists(st.floats(allow_nan=False), min_size=1,
                                           max_size=3))


_TARGETS = [(cls, name, per_asset) for cls in (*CONFIGS, EconomyModel)
            for name, per_asset in (_numeric_fields(cls) if cls is not EconomyModel
                                    else _model_numeric_keywords())]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_random_garbage_in_a_random_field_is_a_value_error_naming_it(data):
    cls, name, per_asset = data.draw(st.sampled_from(_TARGETS))
    bad = data.draw(_garbage(per_asset))
    kwargs = {**({"n_agents": 4} if cls is EconomyModel else {}), name: bad}
    try:
        cls(**kwargs)
    except ValueError as exc:
        expected = "policy" if name == "kind" else name
        assert str(exc).startswith(f"{expected}="), str(exc)
        assert " is invalid: expected " in str(exc), str(exc)
    else:
        raise AssertionError(f"{cls.__name__}({name}={bad!r}) was accepted")
