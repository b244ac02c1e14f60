"""The hand-written PPO gradients, the training MLP passes, the numpy rollout actor and the
two gradient-norm paths of StackedAdam, each against autograd or a hand value."""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings

from mesa_econ.policies import PolicyEnsemble
from mesa_econ.policies.stacked import mlp, mlp_backward, mlp_forward
from mesa_econ.rl import optim, ppo_grad
from mesa_econ.rl.optim import StackedAdam
from mesa_econ.rl.ppo import PPOConfig, _ppo_losses, ppo_update
from mesa_econ.testing import assert_float32_close

torch.set_num_threads(1)


def _minibatch(ens: PolicyEnsemble, batch: int, seed: int,
               off_policy: float = 0.3) -> dict[str, torch.Tensor]:
    """Agent-major data ``[N, B, ...]`` around the ensemble's own outputs: old log-probs
    and values perturbed so that ratios and value errors fall on both sides of the clips."""
    g = torch.Generator().manual_seed(seed)
    n = ens.n_agents
    obs = torch.randn(n, batch, ens.obs_dim, generator=g)
    with torch.no_grad():
        mean, _, value = ens(obs.transpose(0, 1))
    u = mean.transpose(0, 1) + torch.randn(n, batch, ens.act_dim, generator=g)
    with torch.no_grad():
        logp, _, _ = ens.evaluate(obs.transpose(0, 1), u.transpose(0, 1))
    return {"obs": obs, "actions": u,
            "logprobs": logp.T + off_policy * torch.randn(n, batch, generator=g),
            "advantages": torch.randn(n, batch, generator=g) * 2.0 + 0.5,
            "returns": value.T + torch.randn(n, batch, generator=g),
            "values": value.T + off_policy * torch.randn(n, batch, generator=g)}


def _autograd_grads(ens: PolicyEnsemble, mb: dict, cfg: PPOConfig,
                    weight: torch.Tensor | None) -> list[torch.Tensor]:
    ens.zero_grad()
    loss = _ppo_losses(ens, mb, cfg)["loss"]
    (loss if weight is None else loss * weight).sum().backward()
    grads = [p.grad.clone() for p in ens.parameters()]
    ens.zero_grad()
    return grads


def _group_weight(ens: PolicyEnsemble) -> torch.Tensor | None:
    if ens.n_groups == ens.n_agents:
        return None
    counts = torch.bincount(ens.group_of, minlength=ens.n_groups).float()
    return 1.0 / counts[ens.group_of]


@settings(max_examples=25, deadline=None)
@given(n_agents=st.integers(1, 7), groups=st.integers(1, 7), act_dim=st.integers(1, 3),
       hidden=st.sampled_from([(8,), (16, 16), (64, 64), (12, 20, 8)]),
       batch=st.integers(2, 33), clip_vloss=st.booleans(), norm_adv=st.booleans(),
       ent_coef=st.sampled_from([0.0, 0.01, 0.5]), seed=st.integers(0, 2**16))
def test_hand_gradients_equal_autograd(n_agents, groups, act_dim, hidden, batch, clip_vloss,
                                       norm_adv, ent_coef, seed):
    """∇ Σ_i w_i loss_i by hand == autograd of the reference loss, for independent
    policies and shared groups (with padded slots), both value losses, with and without
    advantage normalisation and entropy bonus; the logged statistics agree too."""
    n_groups = min(groups, n_agents)
    ens = PolicyEnsemble(n_agents, 5, act_dim, hidden=hidden, n_groups=n_groups,
                         generator=torch.Generator().manual_seed(seed))
    mb = _minibatch(ens, batch, seed + 1)
    cfg = PPOConfig(clip_vloss=clip_vloss, norm_adv=norm_adv, ent_coef=ent_coef, vf_coef=0.7)
    weight = _group_weight(ens)
    want = _autograd_grads(ens, mb, cfg, weight)
    stats = ppo_grad.ppo_minibatch_grads(ens, mb, cfg, weight, stats=True)
    # float32 rounding of sums over the minibatch rows (of a group's agents, for a shared
    # bias) and through the network; a sum that nearly cancels is exact only to the size
    # of its terms, so the scale is the largest gradient
    terms = batch * n_agents + 5 + sum(hidden) + act_dim
    scale = max(float(ref.abs().max()) for ref in want) + 1e-6
    for (name, p), ref in zip(ens.named_parameters(), want, strict=True):
        assert p.grad.shape == p.shape, name
        assert_float32_close(p.grad, ref, terms=terms, scale=scale, name=name)
    ref_stats = _ppo_losses(ens, mb, cfg)
    for key in ("loss", "pg_loss", "v_loss", "entropy", "approx_kl", "old_approx_kl",
                "clipfrac"):
        # means over the rows of per-row terms of order 1 (ratios, normalised advantages)
        want_stat = ref_stats[key].detach()
        assert_float32_close(stats[key], want_stat, terms=terms,
                             scale=max(1.0, float(want_stat.abs().max())), name=key)
    # the per-agent clip counts agree with the reference clipfrac (to boundary rounding)
    torch.testing.assert_close(stats["clipped"] / batch, ref_stats["clipfrac"], rtol=0,
                               atol=1.0 / batch + 1e-6)


def test_hand_gradients_of_a_known_case():
    """One agent, one row, inside the clip range: ∂L/∂log σ = −Â(z² − 1) − c_ent, the
    value head's bias gradient = c_v (V − R), by hand."""
    ens = PolicyEnsemble(1, 2, 1, hidden=(4,), generator=torch.Generator().manual_seed(0))
    obs = torch.tensor([[[0.5, -1.0]]])
    with torch.no_grad():
        mean, log_std, value = ens(obs.transpose(0, 1))
        logp, _, _ = ens.evaluate(obs.transpose(0, 1), mean.transpose(0, 1) + 0.3)
    sigma = float(torch.exp(log_std[0, 0, 0]).detach())
    mb = {"obs": obs, "actions": mean.transpose(0, 1) + 0.3, "logprobs": logp.T,
          "advantages": torch.tensor([[2.0]]), "returns": value.T - 0.25,
          "values": value.T}
    cfg = PPOConfig(norm_adv=False, ent_coef=0.1, vf_coef=0.5)
    ppo_grad.ppo_minibatch_grads(ens, mb, cfg)
    z = 0.3 / sigma
    # ratio = 1 (on-policy): ∂L/∂log π = −Â = −2
    assert float(ens.log_std.grad[0, 0]) == pytest.approx(-2.0 * (z * z - 1.0) - 0.1,
                                                          rel=1e-5)
    assert float(ens.critic_b[-1].grad.reshape(())) == pytest.approx(0.5 * 0.25, rel=1e-5)
    assert float(ens.actor_b[-1].grad.reshape(())) == pytest.approx(-2.0 * z / sigma,
                                                                    rel=1e-5)


@pytest.mark.parametrize(("n", "rows", "hidden"), [(3, 5, (7,)), (40, 32, (64, 64)),
                                                  (6, 32, (64, 64))])
@pytest.mark.parametrize("out_dim", [1, 3, 20])
def test_mlp_passes_equal_autograd(n, rows, hidden, out_dim):
    """mlp_forward == mlp (train path) and mlp_backward == autograd, both head forms and
    both tanh forms (the sigmoid form from 4096 hidden elements)."""
    g = torch.Generator().manual_seed(n + rows + out_dim)
    sizes = (6, *hidden, out_dim)
    weights = [torch.randn(n, a, b, generator=g) * 0.3 for a, b in itertools.pairwise(sizes)]
    biases = [torch.randn(n, 1, b, generator=g) * 0.1 for b in sizes[1:]]
    weights = [w.detach().requires_grad_() for w in weights]
    biases = [b.requires_grad_() for b in biases]
    x = torch.randn(n, rows, 6, generator=g)
    grad_out = torch.randn(n, rows, out_dim, generator=g)
    want = mlp(x, weights, biases, n, train=True)
    (want * grad_out).sum().backward()
    with torch.no_grad():
        got, acts = mlp_forward(x, weights, biases, n)
        dws, dbs = mlp_backward(acts, weights, grad_out)
    terms = sum(sizes)  # each layer's sums, carried through the network
    assert_float32_close(got, want.detach(), terms=terms, name="forward")
    for k, (dw, db) in enumerate(zip(dws, dbs, strict=True)):
        assert dw.is_contiguous() and db.shape == biases[k].shape
        # weight and bias gradients also sum over the rows
        assert_float32_close(dw, weights[k].grad, terms=terms + rows, name=f"W{k}")
        assert_float32_close(db, biases[k].grad, terms=terms + rows, name=f"b{k}")


def test_update_by_hand_equals_autograd_update(monkeypatch, random_rollout):
    """A whole ppo_update (4 epochs x 4 minibatches, target KL) gives the same parameters
    by hand as through autograd, and the same logged metrics."""
    results = []
    for by_hand in (True, False):
        monkeypatch.setattr(ppo_grad, "supports", lambda policy, flag=by_hand: flag)
        ens = PolicyEnsemble(6, 4, 2, hidden=(32, 32), generator=torch.Generator().manual_seed(1))
        buf = random_rollout(ens, 32, seed=2)
        cfg = PPOConfig(num_steps=32, ent_coef=0.01, target_kl=0.05, learning_rate=1e-3)
        opt = StackedAdam(list(ens.parameters()), cfg.learning_rate, eps=cfg.adam_eps,
                          max_grad_norm=cfg.max_grad_norm)
        metrics = ppo_update(ens, opt, buf, cfg, torch.Generator().manual_seed(3))
        results.append((ens, metrics))
    (fast, m_fast), (slow, m_slow) = results
    # gradients by hand and by autograd round differently (sums over a minibatch's rows
    # and through the network); each Adam step moves a parameter by about lr, far below
    # the parameter's size, which bounds the gap generously
    terms = 32 // cfg.num_minibatches + 4 + 32 + 32
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        assert_float32_close(p, q, terms=terms, name=name)
    for key in ("pg_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "epochs",
                "grad_norm"):
        assert m_fast[key] == pytest.approx(m_slow[key], rel=1e-3, abs=1e-5), key


def test_numpy_actor_equals_torch_actor_and_follows_training():
    """The rollout's numpy actor gives the torch actor's means to float32 rounding, reads
    the live weights (an optimizer step is seen without rebuilding it), and is None for
    shared groups."""
    # numpy's BLAS (OpenBLAS, whose kernel depends on the CPU) against torch's: float32
    # rounding of each layer's sums, carried through the network
    terms = 7 + 64 + 64
    for n, act_dim in ((5, 1), (40, 3)):  # 40: the torch actor's narrow first layer
        ens = PolicyEnsemble(n, 7, act_dim, generator=torch.Generator().manual_seed(n))
        actor = ens.numpy_actor()
        obs = torch.randn(n, 7, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert_float32_close(actor(obs.numpy()), ens.actor_mean(obs), terms=terms,
                                 name="means")
            for p in ens.parameters():
                p.add_(0.05)
            moved = ens.actor_mean(obs)
        assert_float32_close(actor(obs.numpy()), moved, terms=terms, name="moved means")
    assert PolicyEnsemble(4, 3, 1, n_groups=2,
                          generator=torch.Generator().manual_seed(0)).numpy_actor() is None


@pytest.mark.parametrize("cat_max", [0, 2**30])
def test_grad_norm_paths_give_the_hand_norms(monkeypatch, cat_max):
    """Both ways of forming each slice's norm (concatenated, per parameter) give
    ‖∇θ_g‖ over all parameters, and clip only the slices above max_grad_norm."""
    monkeypatch.setattr(optim, "CAT_NORM_MAX_NUMEL", cat_max)
    w = torch.nn.Parameter(torch.zeros(2, 2, 1))
    b = torch.nn.Parameter(torch.zeros(2, 1))
    opt = StackedAdam([w, b], lr=0.1, max_grad_norm=2.0)
    w.grad = torch.tensor([[[3.0], [0.0]], [[0.6], [0.0]]])
    b.grad = torch.tensor([[4.0], [0.8]])
    opt.step()
    torch.testing.assert_close(opt.last_grad_norm, torch.tensor([5.0, 1.0]))
    # slice 0 clipped to norm 2 (first moment 0.1 · g · 2/5), slice 1 untouched
    torch.testing.assert_close(opt.exp_avg[1], torch.tensor([[0.1 * 4.0 * 2.0 / 5.0],
                                                              [0.1 * 0.8]]), rtol=1e-5, atol=1e-7)


def test_surrogate_weights_by_hand():
    """−Â·w/B for two minibatches of two rows: Â normalised within each minibatch."""
    adv = torch.tensor([[1.0, 3.0, 10.0, 10.0]])
    got = ppo_grad.surrogate_weights(adv, 2, norm_adv=True)
    s = float(np.std([1.0, 3.0], ddof=1))
    want = torch.tensor([[1.0 / (s + 1e-8), -1.0 / (s + 1e-8), 0.0, 0.0]]) / 2.0
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(ppo_grad.surrogate_weights(adv, 4, norm_adv=False,
                                                          weight=torch.tensor([0.5])),
                               -adv * 0.5 / 4.0)


def test_workspace_reuse_gives_fresh_results():
    """With a kept workspace (reused activations, temporaries and .grad tensors) two
    minibatches in a row give exactly what fresh tensors give: nothing leaks between
    calls, the gradients are overwritten, not accumulated."""
    ens = PolicyEnsemble(5, 4, 2, hidden=(64, 64), generator=torch.Generator().manual_seed(0))
    cfg = PPOConfig(ent_coef=0.01)
    first, second = _minibatch(ens, 16, 1), _minibatch(ens, 16, 2)
    fresh = []
    for mb in (first, second):
        ens.zero_grad()
        ppo_grad.ppo_minibatch_grads(ens, mb, cfg)
        fresh.append([p.grad.clone() for p in ens.parameters()])
    ens.zero_grad()
    workspace: dict = {}
    for mb, want in zip((first, second), fresh, strict=True):
        ppo_grad.ppo_minibatch_grads(ens, mb, cfg, workspace=workspace)
        for (name, p), ref in zip(ens.named_parameters(), want, strict=True):
            assert torch.equal(p.grad, ref), name
    assert workspace["actor"][1].shape == (5, 16, 64)  # the kept activations
