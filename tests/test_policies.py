"""Tests for mesa_econ.policies: ActorCritic, PolicyEnsemble/PolicyView, scripted baselines."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mesa_econ.policies import (
    ActorCritic,
    HoldPolicy,
    MeanReversionPolicy,
    NormalizedPolicy,
    NormalizedPolicyView,
    ObsNormalizer,
    PolicyEnsemble,
    PolicyView,
    RandomPolicy,
)
from mesa_econ.policies.actor_critic import (
    TANH_FAST_MIN_NUMEL,
    Tanh,
    gaussian_entropy,
    gaussian_log_prob,
    tanh,
)
from mesa_econ.testing import assert_float32_close, float32_tolerance

OBS, ACT = 7, 3


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread, the model's default: bit-for-bit comparisons assume it, and on a
    shared 2-core machine OpenMP spin-waiting makes multi-threaded tiny ops 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("lead", [(), (5,), (2, 4)])
def test_actor_critic_shapes(lead):
    ac = ActorCritic(OBS, ACT, generator=gen(0))
    obs = torch.randn(*lead, OBS, generator=gen(1))
    mean, log_std, value = ac(obs)
    assert mean.shape == log_std.shape == (*lead, ACT)
    assert value.shape == lead
    u, log_prob, value2 = ac.act(obs, generator=gen(2))
    assert u.shape == (*lead, ACT) and log_prob.shape == lead and value2.shape == lead
    log_prob, entropy, value3 = ac.evaluate(obs, u)
    assert log_prob.shape == entropy.shape == value3.shape == lead
    assert ac.log_std.shape == (ACT,)


@pytest.mark.parametrize("n_groups", [None, 1, 4])
@pytest.mark.parametrize("lead", [(), (6,), (2, 3)])
def test_ensemble_shapes(n_groups, lead):
    n = 10
    ens = PolicyEnsemble(n, OBS, ACT, hidden=(16, 8), n_groups=n_groups, generator=gen(0))
    g = n if n_groups is None else n_groups
    assert ens.actor_w[0].shape == (g, OBS, 16) and ens.actor_b[0].shape == (g, 1, 16)
    assert ens.critic_w[-1].shape == (g, 8, 1) and ens.log_std.shape == (g, ACT)
    assert ens.group_of.shape == (n,) and ens.group_of.dtype == torch.long
    obs = torch.randn(*lead, n, OBS, generator=gen(1))
    mean, log_std, value = ens(obs)
    assert mean.shape == log_std.shape == (*lead, n, ACT) and value.shape == (*lead, n)
    u, log_prob, value = ens.act(obs, generator=gen(2))
    assert u.shape == (*lead, n, ACT) and log_prob.shape == value.shape == (*lead, n)
    log_prob, entropy, value = ens.evaluate(obs, u)
    assert log_prob.shape == entropy.shape == value.shape == (*lead, n)


def test_group_assignment_is_contiguous_blocks():
    ens = PolicyEnsemble(10, OBS, ACT, n_groups=4, generator=gen(0))
    assert ens.group_of.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3]  # i·G // N
    assert (ens.n_agents, ens.n_groups, ens.obs_dim, ens.act_dim) == (10, 4, OBS, ACT)
    assert ens.hidden == (64, 64)


# ---------------------------------------------------------------- initialisation
@pytest.mark.parametrize("n_agents,n_groups", [(4, None), (7, 3)])
def test_ensemble_groups_equal_sequential_actor_critics(n_agents, n_groups):
    """Group g holds exactly the weights of the g-th ActorCritic drawn from the same stream."""
    ens = PolicyEnsemble(
        n_agents, OBS, ACT, hidden=(32, 16), n_groups=n_groups, init_log_std=-0.3, generator=gen(5)
    )
    stream = gen(5)
    modules = [
        ActorCritic(OBS, ACT, (32, 16), init_log_std=-0.3, generator=stream)
        for _ in range(ens.n_groups)
    ]
    for module, copy in zip(modules, ens.to_modules(), strict=True):
        for (name, p), q in zip(module.named_parameters(), copy.parameters(), strict=True):
            assert torch.equal(p, q), name
    obs = torch.randn(n_agents, OBS, generator=gen(6))
    mean, log_std, value = ens(obs)
    terms = OBS + 32 + 16  # batched vs per-module kernels: rounding of each layer's sums
    for i in range(n_agents):
        m, s, v = modules[int(ens.group_of[i])](obs[i])
        assert_float32_close(mean[i], m, terms=terms, scale=float(mean.detach().abs().max()),
                             name=f"mean of agent {i}")
        torch.testing.assert_close(log_std[i], s)
        assert_float32_close(value[i], v, terms=terms, scale=float(value.detach().abs().max()),
                             name=f"value of agent {i}")


def test_orthogonal_init_gains_and_zero_biases():
    """CleanRL init: orthogonal W with gain √2 (hidden), 0.01 (actor head), 1 (critic head)."""
    ac = ActorCritic(OBS, ACT, hidden=(64, 64), generator=gen(0))
    # each entry of W Wᵀ is a float32 sum of 64 products (Σ|w_ik w_jk| <= the gain²)
    hidden_w = ac.critic[2].weight  # 64x64, gain √2: W Wᵀ = 2 I
    assert_float32_close(hidden_w @ hidden_w.T, 2.0 * torch.eye(64), terms=64, name="W Wᵀ")
    head = ac.actor_mean[-1].weight  # 3x64, rows orthonormal × 0.01
    assert_float32_close(head @ head.T, 1e-4 * torch.eye(ACT), terms=64, name="head headᵀ")
    value_head = ac.critic[-1].weight
    assert value_head.norm().item() == pytest.approx(1.0, abs=float32_tolerance(1.0, 64))
    assert all(
        torch.count_nonzero(m.bias) == 0
        for m in [*ac.critic, *ac.actor_mean]
        if isinstance(m, torch.nn.Linear)
    )
    assert torch.equal(ac.log_std, torch.full((ACT,), -0.5))


def test_no_global_rng_is_touched():
    state = torch.get_rng_state()
    ac = ActorCritic(OBS, ACT)  # no generator: a fresh OS-seeded one, never the global RNG
    ens = PolicyEnsemble(5, OBS, ACT, n_groups=2)
    ac.act(torch.zeros(OBS))
    ens.act(torch.zeros(5, OBS))
    ens.agent_view(3).act(torch.zeros(OBS))
    ens.to_module(1)
    assert torch.equal(state, torch.get_rng_state())


# ---------------------------------------------------------------- PolicyView exactness
@pytest.mark.parametrize("n_agents,n_groups", [(9, None), (10, 1), (10, 5), (10, 4)])
@pytest.mark.parametrize("steps", [None, 6])
def test_view_equals_ensemble_row_bitwise(n_agents, n_groups, steps):
    """agent_view(i)(obs) is row i of the ensemble's output, bit for bit (default widths)."""
    ens = PolicyEnsemble(n_agents, OBS, ACT, n_groups=n_groups, generator=gen(3))
    shape = (n_agents, OBS) if steps is None else (steps, n_agents, OBS)
    obs = torch.randn(shape, generator=gen(4))
    mean, log_std, value = ens(obs)
    for i in range(n_agents):
        view_mean, view_log_std, view_value = ens.agent_view(i)(obs[..., i, :])
        assert torch.equal(view_mean, mean[..., i, :]), i
        assert torch.equal(view_log_std, log_std[..., i, :]), i
        assert torch.equal(view_value, value[..., i]), i


@pytest.mark.parametrize("hidden", [(50,), (17, 8)])
def test_view_matches_ensemble_row_for_odd_widths(hidden):
    """Widths that are not multiples of 16: equal to float32 rounding (see PolicyView)."""
    ens = PolicyEnsemble(12, OBS, ACT, hidden=hidden, n_groups=5, generator=gen(3))
    obs = torch.randn(4, 12, OBS, generator=gen(4))
    mean, _, value = ens(obs)
    terms = OBS + sum(hidden)
    for i in range(12):
        view_mean, _, view_value = ens.agent_view(i)(obs[:, i])
        assert_float32_close(view_mean, mean[:, i], terms=terms,
                             scale=float(mean.detach().abs().max()), name=f"mean of agent {i}")
        assert_float32_close(view_value, value[:, i], terms=terms,
                             scale=float(value.detach().abs().max()), name=f"value of agent {i}")


def test_view_act_and_module():
    ens = PolicyEnsemble(6, OBS, ACT, generator=gen(0))
    view = ens.agent_view(2)
    obs = torch.randn(OBS, generator=gen(1))
    u, log_prob, value = view.act(obs, generator=gen(2))
    assert u.shape == (ACT,) and log_prob.shape == value.shape == ()
    u_det, _, _ = view.act(obs, deterministic=True)
    assert torch.equal(u_det, view(obs)[0])
    module = view.module()
    assert isinstance(module, ActorCritic)
    assert_float32_close(module(obs)[0], view(obs)[0], terms=OBS + 64 + 64, name="mean")
    assert "agent=2" in repr(view)


def _normalized_population() -> tuple[PolicyEnsemble, ObsNormalizer, NormalizedPolicy]:
    ens = PolicyEnsemble(10, OBS, ACT, hidden=(16, 16), n_groups=5, generator=gen(0))
    norm = ObsNormalizer(10, OBS, clip=2.0, epsilon=0.0)
    norm.rms.mean = np.arange(10 * OBS, dtype=np.float64).reshape(10, OBS) / 4  # exact
    norm.rms.var = np.full((10, OBS), 4.0)
    return ens, norm, NormalizedPolicy(ens, norm)


def test_agent_views_have_public_classes_and_say_what_they_are():
    """agent.policy shows which row of which ensemble, its sizes and normalisation."""
    ens, _, population = _normalized_population()
    view, normalized = ens.agent_view(7), population.agent_view(7)
    assert type(view) is PolicyView and type(normalized) is NormalizedPolicyView
    assert repr(view) == ("PolicyView(agent=7, group=3, hidden=(16, 16), normalized=False, "
                          "ensemble=PolicyEnsemble of 10 agents in 5 groups)")
    assert repr(normalized) == ("NormalizedPolicyView(agent=7, group=3, hidden=(16, 16), "
                                "normalized=True, clip=2.0, ensemble=PolicyEnsemble of 10 "
                                "agents in 5 groups)")
    assert normalized.group == 3 and normalized.ensemble is ens  # the view's attributes
    assert repr(population) == ("NormalizedPolicy(PolicyEnsemble of 10 agents in 5 groups, "
                                "hidden=(16, 16), normalized=True, clip=2.0)")


def test_normalized_view_acts_on_hand_normalized_observations():
    """Agent 7: ô = clip((o − μ₇) / sqrt(σ²₇), −2, 2) with μ₇ = (49..55)/4 and σ² = 4
    (every value exact in float32, so both paths see the same input bit for bit)."""
    ens, _, population = _normalized_population()
    raw = torch.tensor([12.25, 12.5, 16.75, 5.5, 13.25, 14.5, 13.75])
    # (o - mu) / 2 = [0, 0, 2, -3.75 -> -2, 0, 0.5, 0]
    want_input = torch.tensor([0.0, 0.0, 2.0, -2.0, 0.0, 0.5, 0.0])
    got = population.agent_view(7).act(raw, deterministic=True)
    expected = ens.agent_view(7).act(want_input, deterministic=True)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------- modules round trip
@pytest.mark.parametrize("n_groups", [None, 3])
def test_to_module_load_modules_round_trip(n_groups):
    source = PolicyEnsemble(7, OBS, ACT, hidden=(16, 16), n_groups=n_groups, generator=gen(0))
    with torch.no_grad():
        source.log_std.add_(torch.randn(source.log_std.shape, generator=gen(9)))
    target = PolicyEnsemble(7, OBS, ACT, hidden=(16, 16), n_groups=n_groups, generator=gen(1))
    target.load_modules(source.to_modules())
    for key, tensor in source.state_dict().items():
        assert torch.equal(tensor, target.state_dict()[key]), key
    if n_groups is None:  # one module per agent: to_module(i) for every i is the inverse too
        other = PolicyEnsemble(7, OBS, ACT, hidden=(16, 16), generator=gen(2))
        other.load_modules([source.to_module(i) for i in range(7)])
        assert torch.equal(other.actor_w[1], source.actor_w[1])


def test_load_modules_rejects_mismatches():
    ens = PolicyEnsemble(4, OBS, ACT, hidden=(16,), n_groups=2, generator=gen(0))
    good = ens.to_modules()
    with pytest.raises(ValueError, match="n_groups=2"):
        ens.load_modules(good[:1])
    with pytest.raises(ValueError, match=r"modules\[1\].hidden"):
        ens.load_modules([good[0], ActorCritic(OBS, ACT, hidden=(8,), generator=gen(1))])
    with pytest.raises(ValueError, match=r"modules\[0\].obs_dim"):
        ens.load_modules([ActorCritic(OBS + 1, ACT, hidden=(16,), generator=gen(1)), good[1]])
    with pytest.raises(ValueError, match=r"modules\[0\] is a Linear"):
        ens.load_modules([torch.nn.Linear(2, 2), good[1]])


def test_state_dict_round_trip():
    a = PolicyEnsemble(5, OBS, ACT, n_groups=2, generator=gen(0))
    b = PolicyEnsemble(5, OBS, ACT, n_groups=2, generator=gen(1))
    b.load_state_dict(a.state_dict())
    obs = torch.randn(5, OBS, generator=gen(2))
    assert all(torch.equal(x, y) for x, y in zip(a(obs), b(obs), strict=True))
    assert "group_of" in a.state_dict() and "actor_w.0" in a.state_dict()


# ---------------------------------------------------------------- groups
def test_groups_share_weights_and_are_independent():
    ens = PolicyEnsemble(6, OBS, ACT, n_groups=2, generator=gen(0))  # agents 0-2 | 3-5
    row = torch.randn(OBS, generator=gen(1))
    obs = row.expand(6, OBS).clone()
    mean, _, value = ens(obs)
    assert torch.equal(mean[0], mean[1]) and torch.equal(value[0], value[2])
    assert not torch.equal(mean[0], mean[3])
    with torch.no_grad():
        ens.actor_b[-1][1].add_(1.0)
        ens.critic_b[-1][1].add_(1.0)
    mean2, _, value2 = ens(obs)
    assert torch.equal(mean2[:3], mean[:3]) and torch.equal(value2[:3], value[:3])
    assert not torch.equal(mean2[3:], mean[3:]) and not torch.equal(value2[3:], value[3:])


def test_agent_loss_only_moves_its_own_weights():
    """Stacked weights behave as independent per-agent networks under backprop."""
    ens = PolicyEnsemble(4, OBS, ACT, hidden=(8,), generator=gen(0))
    obs = torch.randn(3, 4, OBS, generator=gen(1))
    u = torch.randn(3, 4, ACT, generator=gen(2))
    log_prob, entropy, value = ens.evaluate(obs, u)
    (log_prob[:, 2] + entropy[:, 2] + value[:, 2]).sum().backward()
    for p in ens.parameters():
        others = torch.cat([p.grad[:2].flatten(), p.grad[3:].flatten()])
        assert torch.count_nonzero(others) == 0 and torch.count_nonzero(p.grad[2]) > 0


# ---------------------------------------------------------------- Gaussian maths
def test_log_prob_and_entropy_hand_values():
    """log N(1; 0, 1) + log N(1; 1, 2²) = −½ − log 2 − log 2π; H = Σ(½ + ½ log 2π + log σ)."""
    mean = torch.tensor([0.0, 1.0])
    log_std = torch.tensor([0.0, math.log(2.0)])
    u = torch.tensor([1.0, 1.0])
    expected = -0.5 - math.log(2.0) - math.log(2.0 * math.pi)
    assert gaussian_log_prob(u, mean, log_std).item() == pytest.approx(expected, rel=1e-6)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(gaussian_log_prob(u, mean, log_std), normal.log_prob(u).sum())
    torch.testing.assert_close(gaussian_entropy(log_std), normal.entropy().sum())
    assert gaussian_entropy(log_std).item() == pytest.approx(
        1.0 + math.log(2.0 * math.pi) + math.log(2.0), rel=1e-6
    )


@pytest.mark.parametrize("policy", ["module", "ensemble"])
def test_act_log_prob_matches_normal_and_evaluate(policy):
    if policy == "module":
        net = ActorCritic(OBS, ACT, generator=gen(0))
        obs = torch.randn(5, OBS, generator=gen(1))
    else:
        net = PolicyEnsemble(5, OBS, ACT, n_groups=2, generator=gen(0))
        obs = torch.randn(3, 5, OBS, generator=gen(1))
    u, log_prob, value = net.act(obs, generator=gen(2))
    mean, log_std, _ = net(obs)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(log_prob, normal.log_prob(u).sum(-1))
    log_prob2, entropy, value2 = net.evaluate(obs, u)
    assert torch.equal(log_prob2, log_prob) and torch.equal(value2, value)
    torch.testing.assert_close(entropy, normal.entropy().sum(-1))
    u_det, _, _ = net.act(obs, deterministic=True)
    assert torch.equal(u_det, mean)


@pytest.mark.parametrize("policy", ["module", "ensemble"])
def test_same_seed_same_samples(policy):
    def build():
        if policy == "module":
            return ActorCritic(OBS, ACT, generator=gen(0)), torch.ones(4, OBS)
        return PolicyEnsemble(4, OBS, ACT, generator=gen(0)), torch.ones(4, OBS)

    (a, obs), (b, _) = build(), build()
    ua = a.act(obs, generator=gen(11))[0]
    assert torch.equal(ua, b.act(obs, generator=gen(11))[0])
    assert not torch.equal(ua, b.act(obs, generator=gen(12))[0])
    # the default generator is the construction one, continuing its stream
    assert torch.equal(a.act(obs)[0], b.act(obs)[0])


# ---------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"n_groups": 6}, "n_groups"),
        ({"n_groups": 0}, "n_groups"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"n_agents": 0}, "n_agents"),
        ({"obs_dim": 0}, "obs_dim"),
        ({"act_dim": 0}, "act_dim"),
        ({"init_log_std": float("nan")}, "init_log_std"),
    ],
)
def test_ensemble_rejects_bad_arguments(kwargs, name):
    args = {"n_agents": 5, "obs_dim": OBS, "act_dim": ACT, **kwargs}
    with pytest.raises(ValueError, match=name):
        PolicyEnsemble(**args)


def test_bad_obs_and_actions_raise():
    ens = PolicyEnsemble(5, OBS, ACT, generator=gen(0))
    ac = ActorCritic(OBS, ACT, generator=gen(0))
    for call in (
        lambda: ens(torch.zeros(5, OBS + 1)),
        lambda: ens(torch.zeros(4, OBS)),
        lambda: ens(torch.zeros(OBS)),
        lambda: ac(torch.zeros(3, OBS - 1)),
        lambda: ens.agent_view(0)(torch.zeros(OBS + 2)),
        lambda: ens.agent_view(0)(torch.zeros(2, 2, OBS)),
    ):
        with pytest.raises(ValueError, match="obs"):
            call()
    with pytest.raises(ValueError, match="u has shape"):
        ens.evaluate(torch.zeros(5, OBS), torch.zeros(5, ACT + 1))
    with pytest.raises(ValueError, match="hidden"):
        ActorCritic(OBS, ACT, hidden=())
    with pytest.raises(IndexError, match="agent index"):
        ens.agent_view(5)


def test_float64_ensemble():
    ens = PolicyEnsemble(4, OBS, ACT, n_groups=2, generator=gen(0)).double()
    obs = torch.randn(4, OBS, dtype=torch.float64, generator=gen(1))
    mean, _, _ = ens(obs)
    assert mean.dtype == torch.float64
    module = ens.to_module(3)
    assert module.log_std.dtype == torch.float64
    torch.testing.assert_close(module(obs[3])[0], mean[3])


# ---------------------------------------------------------------- fast paths
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2.5e-7), (torch.float64, 1e-15)])
def test_fast_tanh_is_tanh(dtype, tol):
    """The sigmoid form 2σ(2z) − 1 is tanh to float rounding, with tanh's derivative."""
    z = torch.linspace(-12.0, 12.0, 20001, dtype=dtype)
    exact = torch.tanh(z.double())
    fast = tanh(z, fast=True)
    assert fast.dtype == dtype
    assert float((fast.double() - exact).abs().max()) <= tol
    assert torch.equal(tanh(z, fast=False), torch.tanh(z))
    assert torch.equal(tanh(z.clone(), fast=True, inplace=True), fast)  # same numbers
    assert torch.equal(tanh(z), fast)  # >= TANH_FAST_MIN_NUMEL elements: the fast form
    small = z[:100]
    assert small.numel() < TANH_FAST_MIN_NUMEL and torch.equal(tanh(small), torch.tanh(small))
    zg = z.clone().requires_grad_()
    tanh(zg, fast=True).backward(torch.ones_like(z))
    torch.testing.assert_close(zg.grad, 1.0 - fast.detach() ** 2)
    assert torch.equal(tanh(torch.tensor([30.0, -30.0, 0.0]), fast=True),
                       torch.tensor([1.0, -1.0, 0.0]))
    assert repr(Tanh()) == "Tanh()"


@pytest.mark.parametrize("n_groups", [None, 8])
@pytest.mark.parametrize("steps", [None, 8])
def test_view_equals_ensemble_row_bitwise_on_fast_paths(n_groups, steps):
    """N >= 32 (multiply-and-sum first layer for one step) and N·B·64 >= 4096 (sigmoid
    form of tanh): the views still reproduce the ensemble's rows bit for bit."""
    n = 40
    ens = PolicyEnsemble(n, OBS, ACT, n_groups=n_groups, generator=gen(3))
    shape = (n, OBS) if steps is None else (steps, n, OBS)
    obs = torch.randn(shape, generator=gen(4))
    mean, _, value = ens(obs)
    with torch.no_grad():  # the in-place activation path gives the same numbers
        mean_ng, _, value_ng = ens(obs)
    assert torch.equal(mean_ng, mean) and torch.equal(value_ng, value)
    for i in range(n):
        view_mean, _, view_value = ens.agent_view(i)(obs[..., i, :])
        assert torch.equal(view_mean, mean[..., i, :]), i
        assert torch.equal(view_value, value[..., i]), i
    assert torch.equal(ens.actor_mean(obs), mean) and torch.equal(ens.critic_value(obs), value)


@pytest.mark.parametrize("n_agents,n_groups,act_dim,batch", [
    (6, None, ACT, 4),  # small: plain autograd ops
    (40, None, 1, 32),  # hand-written layers and one-column heads
    (40, None, ACT, 32),  # transposed narrow head
    (40, 8, 2, 16),  # groups
])
def test_evaluate_agents_matches_evaluate(n_agents, n_groups, act_dim, batch):
    """The training path (agent-major, other op forms) equals evaluate, values and grads."""
    ens = PolicyEnsemble(n_agents, OBS, act_dim, n_groups=n_groups, generator=gen(3))
    obs = torch.randn(batch, n_agents, OBS, generator=gen(4))
    u = torch.randn(batch, n_agents, act_dim, generator=gen(5))
    weights = torch.randn(2, batch, n_agents, generator=gen(6))

    def grads(log_prob, entropy, value):
        loss = (weights[0] * log_prob).sum() + (weights[1] * value).sum() + entropy.sum()
        return torch.autograd.grad(loss, list(ens.parameters()))

    log_prob, entropy, value = ens.evaluate(obs, u)
    want = grads(log_prob, entropy[0], value)
    log_prob2, entropy2, value2 = ens.evaluate_agents(obs.transpose(0, 1).contiguous(),
                                                      u.transpose(0, 1).contiguous())
    terms = OBS + sum(ens.hidden) + act_dim  # through the network, then over the actions
    assert_float32_close(log_prob2.T, log_prob, terms=terms, name="log_prob")
    assert_float32_close(value2.T, value, terms=terms, name="value")
    assert torch.equal(entropy2, entropy[0])
    got = grads(log_prob2.T, entropy2, value2.T)
    scale = max(float(g.abs().max()) for g in want)  # gradients sum over the batch too
    for name, g_want, g_got in zip(dict(ens.named_parameters()), want, got, strict=True):
        assert_float32_close(g_got, g_want, terms=terms + batch, scale=scale, name=name)
    with pytest.raises(ValueError, match="obs has shape"):
        ens.evaluate_agents(obs, u)
    with pytest.raises(ValueError, match="u has shape"):
        ens.evaluate_agents(obs.transpose(0, 1), u)


def test_float64_fast_paths():
    ens = PolicyEnsemble(40, OBS, 1, generator=gen(0)).double()
    obs = torch.randn(40, 32, OBS, dtype=torch.float64, generator=gen(1))
    log_prob, _, value = ens.evaluate_agents(obs, torch.zeros(40, 32, 1, dtype=torch.float64))
    assert log_prob.dtype == value.dtype == torch.float64
    mean, _, value_ref = ens(obs.transpose(0, 1))
    torch.testing.assert_close(value.T, value_ref, rtol=1e-12, atol=1e-12)
    module = ens.to_module(7)
    torch.testing.assert_close(module(obs[7])[0], mean[:, 7], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- scripted baselines
def fake_model(prices, curve_prices, n_agents=3, trade_scale=1.0, seed=0):
    prices = np.asarray(prices, dtype=float)
    return SimpleNamespace(
        n_agents=n_agents,
        n_assets=len(prices),
        trade_scale=trade_scale,
        prices=prices,
        curve_prices=np.asarray(curve_prices, dtype=float),
        rng=np.random.default_rng(seed),
    )


def test_random_policy_is_one_scaled_normal_draw():
    model = fake_model([1.0, 2.0], [1.0, 2.0], n_agents=4, trade_scale=0.5, seed=3)
    orders = RandomPolicy(scale=2.0).orders(model)
    expected = np.random.default_rng(3).normal(size=(4, 2)) * (2.0 * 0.5)
    np.testing.assert_array_equal(orders, expected)
    unit = RandomPolicy().orders(fake_model([1.0, 2.0], [1.0, 2.0], n_agents=4, seed=3))
    np.testing.assert_array_equal(unit, np.random.default_rng(3).normal(size=(4, 2)))


def test_hold_policy_is_zero():
    orders = HoldPolicy().orders(fake_model([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], n_agents=5))
    np.testing.assert_array_equal(orders, np.zeros((5, 3)))


def test_mean_reversion_hand_values():
    """a_j = trade_scale · clip(−k (P − f)/f, −1, 1): sells above the curve, buys below."""
    model = fake_model([11.0, 9.0, 10.0, 30.0], [10.0] * 4, n_agents=2, trade_scale=0.5)
    state = model.rng.bit_generator.state
    orders = MeanReversionPolicy(strength=2.0).orders(model)
    # gaps (0.1, −0.1, 0, 2) → −2·gap = (−0.2, 0.2, 0, −4) → clip → ×0.5
    np.testing.assert_allclose(orders, np.tile([-0.1, 0.1, 0.0, -0.5], (2, 1)))
    assert model.rng.bit_generator.state == state  # no randomness used
    with pytest.raises(ValueError, match="curve_prices"):
        MeanReversionPolicy().orders(fake_model([1.0], [0.0]))


@pytest.mark.parametrize(
    "make,name",
    [
        (lambda: RandomPolicy(scale=-1.0), "scale"),
        (lambda: MeanReversionPolicy(strength=math.inf), "strength"),
    ],
)
def test_scripted_reject_bad_gains(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("n_groups", [None, 3])
@pytest.mark.parametrize("lead", [(), (5,)])
@pytest.mark.parametrize("deterministic", [False, True])
def test_sample_is_act_without_value_and_log_prob(n_groups, lead, deterministic):
    """sample(obs) returns act(obs)[0] bit for bit (same means, same draw), for independent
    and grouped policies, one step or a batch, sampled or deterministic."""
    ens = PolicyEnsemble(40, OBS, ACT, n_groups=n_groups, generator=gen(5))
    obs = torch.randn((*lead, 40, OBS), generator=gen(6))
    with torch.no_grad():
        want = ens.act(obs, generator=gen(7), deterministic=deterministic)[0]
        got = ens.sample(obs, generator=gen(7), deterministic=deterministic)
    assert torch.equal(got, want)


def test_act_only_asks_the_class_for_sample():
    """act_only uses a class's sample, else act's u; a wrapper that merely forwards unknown
    attributes (skipping its own work) is given act, not the inner sample."""
    from mesa_econ.policies.actor_critic import act_only

    ens = PolicyEnsemble(4, OBS, ACT, generator=gen(0))
    obs = torch.randn(4, OBS, generator=gen(1))

    class Forwarding:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def act(self, obs, generator=None, deterministic=False):
            return self.inner.act(obs * 0.0, generator, deterministic)  # its own work

    with torch.no_grad():
        assert torch.equal(act_only(ens, obs, gen(2)), ens.act(obs, gen(2))[0])
        wrapped = act_only(Forwarding(ens), obs, gen(2))
        assert torch.equal(wrapped, ens.act(obs * 0.0, gen(2))[0])
