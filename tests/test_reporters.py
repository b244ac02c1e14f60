"""The DataCollector reporters: plain floats, picklable, the metrics' numbers, no side
effects, robust to degenerate states."""

from __future__ import annotations

import functools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ import reporters
from mesa_econ.metrics import (
    gini,
    hhi,
    level_variance,
    price_entropy,
    reserve_coverage,
    utilisation,
    volatility,
)


class FakeModel:
    """The attributes the reporters read, as the EconomyModel holds them."""

    def __init__(self, n=6, m=3, window=12, seed=0):
        rng = np.random.default_rng(seed)
        self.holdings = rng.uniform(0.0, 10.0, (n, m))
        self.supply = self.holdings.sum(axis=0)
        self.prices = rng.uniform(1.0, 2.0, m)
        self.curve_prices = self.prices + 0.1
        self.reserve = rng.uniform(0.0, 100.0, m)
        self.curve_reserve = self.reserve * rng.uniform(0.5, 2.0, m)
        self.capital = rng.uniform(0.0, 1000.0, n)
        self.wealth = self.capital + self.holdings @ self.prices
        self.last_rewards = rng.normal(size=n)
        self.price_window = rng.lognormal(size=(window, m))
        self.initial_supply = self.supply * 0.5
        self.t = 4
        self.demand = rng.uniform(0.0, 5.0, (n, m))
        self.capacity = rng.uniform(1.0, 20.0, m)

    def price_window_ordered(self):
        return self.price_window.copy()  # the fake's window is already oldest first


class FakeAgent:
    capital = np.float64(3.0)
    wealth = np.float64(4.5)
    reward = np.float32(-0.25)


MODEL_REPORTERS = [getattr(reporters, name) for name in reporters.__all__
                   if name.startswith("report_")]
ASSET_REPORTERS = [reporters.price_of, reporters.curve_price_of, reporters.supply_of,
                   reporters.hhi_of]


@pytest.mark.parametrize("window", [1, 2, 12])
@pytest.mark.parametrize("reporter", MODEL_REPORTERS, ids=lambda f: f.__name__)
def test_model_reporters_return_python_float(reporter, window):
    assert type(reporter(FakeModel(window=window))) is float


@pytest.mark.parametrize("reporter", ASSET_REPORTERS, ids=lambda f: f.__name__)
def test_asset_reporters_return_python_float_and_pickle(reporter):
    model = FakeModel()
    bound = functools.partial(reporter, asset=2)
    assert type(bound(model)) is float
    assert pickle.loads(pickle.dumps(bound))(model) == bound(model)


def test_reporters_agree_with_metric_functions():
    """The unchecked hot-path reporters compute the same numbers as the metrics."""
    model = FakeModel()
    approx = functools.partial(pytest.approx, rel=1e-12, abs=1e-12)
    assert reporters.report_mean_price(model) == approx(model.prices.mean())
    assert reporters.report_hhi(model) == approx(hhi(model.holdings, model.supply).mean())
    assert reporters.report_gini(model) == approx(gini(model.wealth))
    assert reporters.report_reserve_coverage(model) == approx(
        reserve_coverage(model.reserve, model.curve_reserve).min()
    )
    assert reporters.report_volatility(model) == approx(volatility(model.price_window).mean())
    assert reporters.report_level_variance(model) == approx(
        level_variance(model.price_window).mean())
    assert reporters.report_utilisation(model) == approx(
        utilisation(model.holdings, model.demand, model.capacity))
    assert reporters.report_price_entropy(model) == approx(
        price_entropy(model.price_window, bins=20).mean()
    )
    assert reporters.report_mean_capital(model) == approx(model.capital.mean())
    assert reporters.report_total_wealth(model) == approx(model.wealth.sum())
    assert reporters.report_mean_reward(model) == approx(model.last_rewards.mean())
    for j in range(3):
        assert reporters.price_of(model, asset=j) == model.prices[j]
        assert reporters.curve_price_of(model, asset=j) == model.curve_prices[j]
        assert reporters.supply_of(model, asset=j) == model.supply[j]
        assert reporters.hhi_of(model, asset=j) == approx(hhi(model.holdings)[j])


def test_reporters_handle_degenerate_states():
    """Zero supply, zero curve reserve, a constant window: finite, documented values."""
    model = FakeModel(window=5)
    model.holdings[:, 0] = 0.0
    model.supply[0] = 0.0
    model.curve_reserve[:] = 0.0
    model.price_window[:] = 1.5
    model.wealth[:] = 0.0
    assert reporters.hhi_of(model, asset=0) == 0.0
    assert reporters.report_reserve_coverage(model) == 1.0
    assert reporters.report_volatility(model) == pytest.approx(0.0, abs=1e-24)
    assert reporters.report_level_variance(model) == pytest.approx(0.0, abs=1e-24)
    assert reporters.report_price_entropy(model) == pytest.approx(0.0, abs=1e-12)
    assert reporters.report_gini(model) == 0.0


def test_reporters_do_not_modify_the_model():
    model = FakeModel()
    before = {k: np.copy(v) for k, v in vars(model).items()}
    for reporter in MODEL_REPORTERS:
        reporter(model)
    for key, value in before.items():
        np.testing.assert_array_equal(getattr(model, key), value)


@pytest.mark.parametrize(
    ("reporter", "expected"),
    [
        (reporters.agent_capital, 3.0),
        (reporters.agent_wealth, 4.5),
        (reporters.agent_reward, -0.25),
    ],
)
def test_agent_reporters_return_python_float(reporter, expected):
    value = reporter(FakeAgent())
    assert type(value) is float
    assert value == expected


def test_window_reporters_ignore_row_order():
    """Level variance and entropy of the window are order-free: a ring buffer needs no
    roll (volatility of log returns is not: it reads the ordered window)."""
    model = FakeModel(window=20)
    expected = (reporters.report_level_variance(model), reporters.report_price_entropy(model))
    model.price_window = np.roll(model.price_window, 7, axis=0)
    assert reporters.report_level_variance(model) == pytest.approx(expected[0], rel=1e-12)
    assert reporters.report_price_entropy(model) == pytest.approx(expected[1], rel=1e-12)


def test_utilisation_reporter_without_needs_is_zero():
    model = FakeModel()
    model.demand = None
    assert reporters.report_utilisation(model) == 0.0


def test_model_volatility_reporter_reads_the_ordered_window():
    """The DataCollector's volatility equals metrics.volatility of the last 20 quotes."""
    from mesa_econ import EconomyModel
    from mesa_econ.model import PRICE_WINDOW

    model = EconomyModel(n_agents=5, n_assets=2, policy="random", rng=4)
    for _ in range(PRICE_WINDOW + 13):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    last = frame[["price_0", "price_1"]].to_numpy()[-PRICE_WINDOW:]
    assert frame["volatility"].iloc[-1] == pytest.approx(volatility(last).mean(), rel=1e-12)


def test_drift_reporters_equal_the_metric_on_the_model_series():
    """price_drift over the last 20 quotes and supply_drift since t = 0 are
    metrics.drift of the DataCollector's own series."""
    from mesa_econ import EconomyModel, metrics
    from mesa_econ.model import PRICE_WINDOW

    model = EconomyModel(n_agents=6, n_assets=2, policy="random", trade_scale=3.0, rng=5)
    for _ in range(PRICE_WINDOW + 7):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    prices = frame[["price_0", "price_1"]].to_numpy()[-PRICE_WINDOW:]
    supply = frame[["supply_0", "supply_1"]].to_numpy()
    assert frame["price_drift"].iloc[-1] == pytest.approx(metrics.drift(prices).mean(),
                                                          rel=1e-12)
    assert frame["supply_drift"].iloc[-1] == pytest.approx(metrics.drift(supply).mean(),
                                                           rel=1e-12)
    assert frame["supply_drift"].iloc[0] == 0.0 and frame["price_drift"].iloc[0] == 0.0


def test_drift_reporters_by_hand():
    """A window 1, 2, 4 (doubling): drift log 2 per step; supply 10 → 40 in 2 steps."""
    model = FakeModel(m=1)
    model.price_window = np.array([[1.0], [2.0], [4.0]])
    model.initial_supply, model.supply, model.t = np.array([10.0]), np.array([40.0]), 2
    assert reporters.report_price_drift(model) == pytest.approx(np.log(2.0))
    assert reporters.report_supply_drift(model) == pytest.approx(np.log(2.0))


# ----------------------------------------------------------------- reporter selection
_DEFAULT_COLUMNS = ["price_0", "curve_price_0", "supply_0", "price_1", "curve_price_1",
                    "supply_1", "hhi", "gini", "volatility", "level_variance", "price_drift",
                    "supply_drift", "price_entropy", "reserve_coverage", "mean_capital",
                    "mean_reward"]


def _selection_model(spec, **kw):
    from mesa_econ import EconomyModel

    return EconomyModel(n_agents=7, n_assets=2, graph="watts_strogatz",
                        graph_params={"k": 2, "p": 0.2}, nu=0.05, kappa=1e-3, income=1.0,
                        policy="random", trade_scale=20.0, reporters=spec, rng=11, **kw)


@pytest.mark.parametrize("spec, columns", [
    (None, _DEFAULT_COLUMNS),
    ("default", _DEFAULT_COLUMNS),
    ("rmw", ["price_0", "hhi_0", "price_1", "hhi_1", "mean_capital"]),
    ("none", []),
    (("gini", "price", "mean_reward"), ["price_0", "price_1", "gini", "mean_reward"]),
])
def test_reporter_selection_picks_the_columns(spec, columns):
    model = _selection_model(spec)
    for _ in range(3):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert list(frame.columns) == columns
    assert len(frame) == (4 if columns else 0)  # t = 0 and three steps
    steps = getattr(model.datacollector, "_collection_steps", None)  # Mesa >= 3.5
    assert steps is None or len(steps) == (4 if columns else 0)


def test_reporter_selection_changes_nothing_but_the_columns():
    """The same seed with the default, RMW, no and a custom reporter set: every state
    array, the rewards and the generators' states are the same bit for bit, and the
    columns two sets share hold the same numbers."""
    models = [_selection_model(spec, settlement=settlement)
              for settlement in ("spot", "curve")
              for spec in ("default", "rmw", "none", ("hhi", "supply"))]
    for model in models:
        for _ in range(12):
            model.step()
    for group in (models[:4], models[4:]):
        first = group[0]
        for other in group[1:]:
            for name in ("capital", "holdings", "supply", "reserve", "deviation", "prices",
                         "last_rewards", "factors"):
                a, b = getattr(first, name), getattr(other, name)
                assert a.tobytes() == b.tobytes(), name
            assert first.rng.bit_generator.state == other.rng.bit_generator.state
            assert (first.policy_rng.bit_generator.state
                    == other.policy_rng.bit_generator.state)
        frames = [m.datacollector.get_model_vars_dataframe() for m in group]
        for column in ("price_1", "hhi"):
            assert frames[0][column].tolist() == frames[3 if column == "hhi" else 1][
                column].tolist()


def test_rmw_reporters_are_the_workloads_records():
    """P_j, HHI_j = Σ_i (H_ij/S_j)², mean_i B_i, equal to the metrics on the model's arrays."""
    model = _selection_model("rmw")
    for _ in range(5):
        model.step()
    row = model.datacollector.get_model_vars_dataframe().iloc[-1]
    np.testing.assert_array_equal([row["price_0"], row["price_1"]], model.prices)
    np.testing.assert_allclose([row["hhi_0"], row["hhi_1"]], hhi(model.holdings,
                                                                  model.supply), rtol=1e-13)
    assert row["mean_capital"] == pytest.approx(model.capital.mean(), rel=1e-14)


def test_default_reporters_add_utilisation_with_needs_and_capacity():
    model = _selection_model(None, demand=2.0, capacity=50.0)
    assert list(model.datacollector.model_vars)[-1] == "utilisation"


@pytest.mark.parametrize("spec", ["everything", ("price", "nope"), ("gini", "gini"), 3,
                                  [1, 2], {"gini": 1}])
def test_bad_reporter_selection_is_refused_by_name(spec):
    with pytest.raises(ValueError, match=r"reporters=.* is invalid: expected"):
        _selection_model(spec)


def test_builtin_reporters_are_not_deep_copied(monkeypatch):
    """Mesa's DataCollector deep-copies every reporter's value; the model's collector
    appends its reporters' plain floats as they are, and still deep-copies a reporter a
    user adds (Mesa's semantics for values that might be mutable)."""
    import mesa.datacollection

    calls = []

    def counting_deepcopy(value, *args):
        calls.append(value)
        return value

    monkeypatch.setattr(mesa.datacollection, "deepcopy", counting_deepcopy)
    model = _selection_model("default", collect_agents=True)
    model.step()
    assert calls == []
    model.datacollector.model_reporters["window"] = lambda m: m.price_window.copy()
    model.datacollector.model_vars["window"] = []
    model.step()
    assert len(calls) == 1 and isinstance(calls[0], np.ndarray)
    assert len(model.datacollector.model_vars["window"]) == 1
    assert len(model.datacollector.model_vars["gini"]) == 3
    agents = model.datacollector.get_agent_vars_dataframe()
    assert len(agents) == 3 * 7  # agent rows at t = 0, 1, 2


def test_collector_groups_equal_the_one_column_reporters():
    """What the collector appends per asset (prices_of, hhis_of, ...) equals the
    one-column reporters Mesa is shown (price_of(asset=j), hhi_of(asset=j), ...)."""
    model = FakeModel()
    for group, single in ((reporters.prices_of, reporters.price_of),
                          (reporters.curve_prices_of, reporters.curve_price_of),
                          (reporters.supplies_of, reporters.supply_of),
                          (reporters.hhis_of, reporters.hhi_of)):
        values = group(model)
        assert all(type(v) is float for v in values)
        assert values == [single(model, asset=j) for j in range(3)]


@settings(max_examples=50, deadline=None)
@given(t=st.integers(2, 40), m=st.integers(1, 4), exponent=st.integers(-8, 8),
       seed=st.integers(0, 2**32 - 1))
def test_column_std_is_numpys_std_bit_for_bit(t, m, exponent, seed):
    """The volatility reporter's std (numpy's operations without its dispatch)."""
    x = np.random.default_rng(seed).normal(size=(t, m)) * 10.0**exponent
    assert reporters._column_std(x).tobytes() == x.std(axis=0, ddof=1).tobytes()


def test_drift_reporters_are_zero_for_a_non_positive_series():
    model = FakeModel(m=2)
    model.price_window = np.array([[1.0, 2.0], [0.0, 3.0]])
    model.supply = np.array([5.0, 0.0])
    assert reporters.report_price_drift(model) == 0.0
    assert reporters.report_supply_drift(model) == 0.0
