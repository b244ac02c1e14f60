"""mesa_econ.testing's float32 comparison: its tolerance and its failure message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mesa_econ.testing import EPS32, assert_float32_close, float32_tolerance


def test_tolerance_is_ulps_eps_terms_scale():
    assert EPS32 == 2.0 ** -23
    assert float32_tolerance(2.0, terms=64, ulps=4) == 4 * 2.0 ** -23 * 64 * 2.0


def test_two_summation_orders_agree_within_the_tolerance():
    """A 256-long float32 dot product in two orders: within the derived bound, not exact."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 200, 256)).astype(np.float32)
    forward = np.array([np.float32(0)] * 200)
    for k in range(256):
        forward = (forward + a[:, k] * b[:, k]).astype(np.float32)
    pairwise = np.einsum("ik,ik->i", a, b)
    assert not np.array_equal(forward, pairwise)
    assert_float32_close(forward, pairwise, terms=256, scale=float(np.abs(a * b).sum(1).max()))


def test_failure_names_the_largest_difference_and_where():
    want = torch.zeros(3, 4)
    got = want.clone()
    got[2, 1] = 1e-3
    got[0, 0] = 1e-4
    with pytest.raises(AssertionError) as exc:
        assert_float32_close(got, want, terms=8, scale=1.0, name="obs")
    message = str(exc.value)
    assert message.startswith("obs: largest difference 0.001 at index (2, 1)")
    assert "2 of 12 elements exceed it" in message


def test_shape_and_finiteness_are_checked():
    with pytest.raises(AssertionError, match="shape"):
        assert_float32_close(np.zeros(3), np.zeros(4))
    with pytest.raises(AssertionError, match="non-finite"):
        assert_float32_close(np.array([np.nan]), np.array([0.0]))
