"""RewardNormalizer: one market's rewards (N,) and K markets' rewards (K, N) in one class.

The K-market path must stay what ``BatchRewardNormalizer`` computed (the K-markets
trainer's pinned results depend on it), and with K = 1 it must equal the one-market path
bit for bit.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesa_econ.rl.normalize import RewardNormalizer
from mesa_econ.rl.vec_rollout import BatchRewardNormalizer

_REWARD = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def _reward_stream(draw: st.DrawFn, k: int | None = None) -> tuple[np.ndarray, float, float]:
    """(rewards [T, K, N], gamma, clip); K drawn in [2, 4] unless given."""
    k = draw(st.integers(2, 4)) if k is None else k
    n, t = draw(st.integers(1, 4)), draw(st.integers(1, 12))
    flat = draw(st.lists(_REWARD, min_size=t * k * n, max_size=t * k * n))
    gamma = draw(st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0]))
    clip = draw(st.sampled_from([0.25, 1.0, 10.0, np.inf]))
    return np.array(flat, dtype=np.float64).reshape(t, k, n), gamma, clip


def _bits(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x).tobytes()


@settings(max_examples=60, deadline=None)
@given(stream=_reward_stream(k=1), reset_at=st.integers(0, 12))
def test_one_market_of_the_k_market_path_is_the_n_agent_path_bit_for_bit(stream, reset_at):
    """RewardNormalizer(N, n_markets=1) on rewards (1, N) equals RewardNormalizer(N) on
    rewards (N,) bit for bit: scaled rewards (returned and written to a float32 ``out``),
    running returns and statistics, across a reset."""
    rewards, gamma, clip = stream
    n = rewards.shape[2]
    single = RewardNormalizer(n, gamma, clip=clip)
    markets = RewardNormalizer(n, gamma, clip=clip, n_markets=1)
    for t, reward in enumerate(rewards):
        if t == reset_at:
            single.reset()
            markets.reset()
        if t % 2:
            out_single, out_markets = np.empty(n, np.float32), np.empty((1, n), np.float32)
            assert single(reward[0], out=out_single) is out_single
            assert markets(reward, out=out_markets) is out_markets
        else:
            out_single, out_markets = single(reward[0]), markets(reward)
            assert out_single.dtype == out_markets.dtype == np.float64
        assert out_markets.shape == (1, n)
        assert _bits(out_single) == _bits(out_markets[0])
        assert _bits(single.returns) == _bits(markets.returns[0])
        assert _bits(single.rms.mean) == _bits(markets.rms.mean)
        assert _bits(single.rms.var) == _bits(markets.rms.var)
        assert single.rms.count == markets.rms.count


def _reference_k_market_step(state: dict, reward: np.ndarray, gamma: float, clip: float,
                             epsilon: float = 1e-8) -> np.ndarray:
    """BatchRewardNormalizer's step as it was written before the merge: G ← γ G + r over
    (K, N), agent statistics merged over the K rows (the parallel update), np.clip."""
    state["returns"] = state["returns"] * gamma + reward
    batch = state["returns"]
    k = batch.shape[0]
    delta = batch.mean(axis=0) - state["mean"]
    total = state["count"] + k
    state["mean"] = state["mean"] + delta * (k / total)
    m2 = state["var"] * state["count"] + batch.var(axis=0) * k \
        + delta**2 * (state["count"] * k / total)
    state["var"], state["count"] = m2 / total, total
    return np.clip(reward / np.sqrt(state["var"] + epsilon), -clip, clip)


@settings(max_examples=60, deadline=None)
@given(stream=_reward_stream())
def test_k_market_path_is_the_former_batch_normaliser_bit_for_bit(stream):
    """With K >= 2 markets, each step equals the former BatchRewardNormalizer arithmetic
    (written out above) to the bit, and the old name and signature build the same
    normaliser."""
    rewards, gamma, clip = stream
    _, k, n = rewards.shape
    norm = RewardNormalizer(n, gamma, clip=clip, n_markets=k)
    alias = BatchRewardNormalizer(k, n, gamma, clip=clip)
    assert isinstance(alias, RewardNormalizer) and alias.n_markets == k
    state = {"returns": np.zeros((k, n)), "mean": np.zeros(n), "var": np.ones(n),
             "count": 1e-4}
    for reward in rewards:
        want = _reference_k_market_step(state, reward, gamma, clip)
        got, got_alias = norm(reward), alias(reward)
        assert _bits(got) == _bits(want)
        assert _bits(got_alias) == _bits(want)
        assert _bits(norm.returns) == _bits(state["returns"])
        assert _bits(norm.rms.var) == _bits(state["var"])


def test_two_markets_by_hand():
    """K = 2, N = 2, γ = 0.5, ε = 0, statistics started empty (count 0): each market keeps
    its own return, agent i's variance is over its two markets' returns, not over agents.

    Agent 0: rewards (2, 4) then (1, −2): G = (2, 4), mean 3, var 1; then G = (2, 0),
    batch mean 1, batch var 1, δ = −2: mean 3 − 2·2/4 = 2, M2 = 1·2 + 1·2 + 4·(2·2/4) = 8,
    var 8/4 = 2.
    Agent 1: rewards (1, 3) then (3, −1): G = (1, 3), mean 2, var 1; then G = (3.5, 0.5),
    batch mean 2, batch var 2.25, δ = 0: M2 = 1·2 + 2.25·2 = 6.5, var 6.5/4 = 1.625.
    """
    norm = RewardNormalizer(2, gamma=0.5, clip=2.5, epsilon=0.0, n_markets=2)
    norm.rms.load(np.zeros(2), np.ones(2), 0.0)
    first = norm(np.array([[2.0, 1.0], [4.0, 3.0]]))
    np.testing.assert_array_equal(first, [[2.0, 1.0], [2.5, 2.5]])  # 4 and 3 clipped to c
    np.testing.assert_array_equal(norm.rms.var, [1.0, 1.0])
    second = norm(np.array([[1.0, 3.0], [-2.0, -1.0]]))
    np.testing.assert_array_equal(norm.returns, [[2.0, 3.5], [0.0, 0.5]])
    np.testing.assert_array_equal(norm.rms.mean, [2.0, 2.0])
    np.testing.assert_array_equal(norm.rms.var, [2.0, 1.625])
    assert norm.rms.count == 4.0
    np.testing.assert_array_equal(second, [[1 / np.sqrt(2.0), 3 / np.sqrt(1.625)],
                                           [-2 / np.sqrt(2.0), -1 / np.sqrt(1.625)]])
    norm.reset()  # new episodes: both markets' returns restart, the variance stays
    np.testing.assert_array_equal(norm.returns, np.zeros((2, 2)))
    np.testing.assert_array_equal(norm.rms.var, [2.0, 1.625])


@pytest.mark.parametrize("n_markets", [None, 2])
def test_the_clip_is_np_clip_bit_for_bit_for_finite_rewards(n_markets):
    """One clip for both paths (np.minimum then np.maximum): the bits of
    np.clip(r / sqrt(var + ε), −c, c) on finite rewards, clipped ones and −0.0 included
    (the one-market path used min/max, the K-market path np.clip)."""
    rng = np.random.default_rng(12)
    shape = (5,) if n_markets is None else (n_markets, 5)
    norm = RewardNormalizer(5, gamma=0.9, clip=1.5, n_markets=n_markets)
    clipped = negative_zero = 0
    for t in range(40):
        reward = rng.normal(size=shape) * 3
        reward.flat[t % reward.size] = -0.0
        got = norm(reward)
        want = np.clip(reward / np.sqrt(norm.rms.var + norm.epsilon), -1.5, 1.5)
        assert _bits(got) == _bits(want)
        clipped += int((np.abs(got) == 1.5).sum())
        negative_zero += int((np.signbit(got) & (got == 0)).sum())
    assert clipped > 0 and negative_zero == 40


def test_a_nan_or_infinite_reward_poisons_that_agent_alone():
    """What happens to a NaN (or ±inf) reward, as documented: that scaled reward is NaN,
    the agent's running return is NaN until reset, its variance NaN for good, so its
    scaled rewards stay NaN in every market; the other agents are untouched."""
    rng = np.random.default_rng(5)
    one = RewardNormalizer(3, gamma=0.9, clip=5.0)
    many = RewardNormalizer(3, gamma=0.9, clip=5.0, n_markets=2)
    one(rng.normal(size=3))
    many(rng.normal(size=(2, 3)))
    bad_one = np.array([1.0, np.nan, -2.0])
    bad_many = np.array([[np.inf, 0.5, 1.0], [0.3, -1.0, np.nan]])  # agents 0 and 2
    with np.errstate(invalid="ignore"):
        got_one, got_many = one(bad_one), many(bad_many)
        np.testing.assert_array_equal(np.isnan(got_one), [False, True, False])
        np.testing.assert_array_equal(np.isnan(got_many), [[True, False, True]] * 2)
        assert np.isnan(one.returns[1]) and np.isfinite(one.returns[[0, 2]]).all()
        assert np.isnan(many.returns[1, 2]) and np.isfinite(many.returns[0, 2])
        one.reset()
        many.reset()
        assert not np.isnan(one.returns).any() and not np.isnan(many.returns).any()
        later_one, later_many = one(rng.normal(size=3)), many(rng.normal(size=(2, 3)))
    np.testing.assert_array_equal(np.isnan(later_one), [False, True, False])
    np.testing.assert_array_equal(np.isnan(later_many), [[True, False, True]] * 2)
    np.testing.assert_array_equal(np.isnan(one.rms.var), [False, True, False])
    np.testing.assert_array_equal(np.isnan(many.rms.var), [True, False, True])
    assert np.all(np.abs(later_many[:, 1]) <= 5.0)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_agents": 0}, "n_agents"),
    ({"n_agents": 2.0}, "n_agents"),
    ({"n_markets": 0}, "n_markets"),
    ({"n_markets": True}, "n_markets"),
    ({"gamma": 1.5}, "gamma"),
    ({"gamma": float("nan")}, "gamma"),
    ({"clip": 0.0}, "clip"),
    ({"clip": float("nan")}, "clip"),
    ({"clip": -np.inf}, "clip"),
    ({"epsilon": -1e-8}, "epsilon"),
])
def test_bad_arguments_raise_naming_the_field(kwargs, field):
    args = {"n_agents": 2, "gamma": 0.9, **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}=.* is invalid: expected"):
        RewardNormalizer(**args)


@pytest.mark.parametrize(("n_markets", "shape"), [(None, (3,)), (None, (2, 2)),
                                                  (2, (2,)), (2, (3, 2)), (1, (2,))])
def test_a_reward_of_the_wrong_shape_raises(n_markets, shape):
    norm = RewardNormalizer(2, gamma=0.9, n_markets=n_markets)
    want = re.escape(f"reward.shape={shape!r} is invalid: expected "
                     f"{norm.returns.shape} (n_markets={n_markets}, n_agents=2)")
    with pytest.raises(ValueError, match=f"^{want}$"):
        norm(np.ones(shape))
    assert not norm.returns.any() and norm.rms.count == 1e-4  # nothing was merged

