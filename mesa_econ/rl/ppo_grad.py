"""PPO's per-agent loss gradients written out by hand, for a PolicyEnsemble. Implements §6.1.

At small N the PPO update spends most of its time in per-op overhead: autograd records
and replays ~150 small ops per minibatch. :func:`ppo_minibatch_grads` computes the
same gradients as ``_ppo_losses(...)["loss"].sum().backward()`` (mesa_econ.rl.ppo) with the
chain rule written out — one forward pass of both stacked MLPs keeping their activations,
the loss derivatives in closed form, one backward pass (:func:`~mesa_econ.policies.stacked.
mlp_backward`) — about half the ops and no graph. ``tests/test_ppo_grad.py`` checks it against
autograd of ``_ppo_losses`` (groups, value clipping, entropy bonus, unnormalised
advantages) and the whole update against N separate torch modules with their own Adams.

Derivatives, per agent i and minibatch row b (B rows, weight w_i = 1, or 1/|group| with
shared groups), with z = (u − μ)/σ, log π = Σ_a (−z_a²/2 − log σ_a − ½ log 2π) and
r = exp(log π − log π_old):

    ∂L/∂r      = −Â · 1[(−Â r > −Â clip(r)) or r ∈ [1−ε, 1+ε]] · w_i / B
    ∂L/∂log π  = r · ∂L/∂r
    ∂L/∂μ_a    = ∂L/∂log π · z_a / σ_a
    ∂L/∂log σ_a = Σ_b ∂L/∂log π · (z_a² − 1) − c_ent · w_i
    ∂L/∂V      = c_v · w_i / B · (V − R)                                 (no value clipping)
               = c_v · w_i / B · [(V − R) if e₁ >= e₂, else (V_c − R)·1[|V − V_old| <= ε]]
                                                                          (clip_vloss)

with e₁ = (V − R)², V_c = V_old + clip(V − V_old, ±ε), e₂ = (V_c − R)². These follow torch's
subgradient conventions (``clamp`` passes the gradient on its closed interval, ``maximum``
splits a tie) except at a tie e₁ = e₂ of the value errors: nearly always V_c = V there and
both branches agree; where V_c ≠ V autograd would average them and this takes the
unclipped one. Otherwise the result matches autograd up to float32 rounding.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from mesa_econ.policies.stacked import mlp_backward, mlp_forward, plist

__all__ = ["ppo_minibatch_grads", "supports", "surrogate_weights"]

Tensor = torch.Tensor
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def supports(policy: Any) -> bool:
    """Whether :func:`ppo_minibatch_grads` can train ``policy`` (a PolicyEnsemble)."""
    from mesa_econ.policies import PolicyEnsemble

    return isinstance(policy, PolicyEnsemble)


def _groups_adjoint(policy: Any, grad: Tensor) -> Tensor:
    """The adjoint of ``policy._from_groups``: ``[N, B, k]`` → ``[G, slots·B, k]``.

    Rows of padding slots (a group with fewer agents than ``slots``) get zero gradient.
    """
    if policy.n_groups == policy.n_agents:
        return grad
    n_slots = policy.n_groups * policy._slots
    if policy._slot_of is not None:
        full = grad.new_zeros(n_slots, grad.shape[1], grad.shape[2])
        grad = full.index_copy_(0, policy._slot_of, grad)
    return grad.reshape(policy.n_groups, policy._slots * grad.shape[1], grad.shape[2])


def surrogate_weights(advantages: Tensor, batch: int, norm_adv: bool,
                      weight: Tensor | None = None) -> Tensor:
    """−Â · w_i / B for minibatches of ``batch`` consecutive rows of ``advantages`` ``[N, K·B]``.

    Â is the advantage normalised per agent over each minibatch's rows (unbiased std, as
    torch's ``std``) when ``norm_adv``. Computing it for all K minibatches of an epoch at
    once saves five small ops per minibatch.
    """
    n, rows = advantages.shape
    adv = advantages.reshape(n, rows // batch, batch)
    if norm_adv:  # std written out: torch's std over a short last axis is ~7x slower
        centred = adv - adv.mean(-1, keepdim=True)
        std = (centred * centred).sum(-1, keepdim=True).div_(batch - 1).sqrt_()
        adv = centred / std.add_(1e-8)
    factor = -1.0 / batch if weight is None else (weight * (-1.0 / batch)).view(n, 1, 1)
    return (adv * factor).reshape(n, rows)


@torch.no_grad()
def ppo_minibatch_grads(policy: Any, mb: dict[str, Tensor], config: Any,
                        weight: Tensor | None = None, stats: bool = False,
                        workspace: dict[str, Any] | None = None) -> dict[str, Tensor]:
    """Set ``p.grad`` of every parameter of ``policy`` to ∇ Σ_i w_i · loss_i on one minibatch.

    Args:
        policy: a PolicyEnsemble (see :func:`supports`).
        mb: agent-major minibatch ``[N, B, ...]``: obs, actions, logprobs, advantages,
            returns, values (any strides); optionally ``pg_weight``, the
            :func:`surrogate_weights` of these rows (else computed from ``advantages``).
        config: a PPOConfig (clip_coef, clip_vloss, norm_adv, ent_coef, vf_coef).
        weight: per-agent loss weights ``[N]`` (None: 1).
        stats: also return the per-agent losses and KL estimates (for logging and the
            target-KL check; a few extra reductions).
        workspace: a dict kept across calls (filled here) whose activation and scratch
            tensors are reused, as are the parameters' existing ``.grad`` tensors, which
            are overwritten (not accumulated). None: fresh tensors, ``.grad`` replaced.
            Reusing them saves ~20% of an update at N = 100: fresh ~1 MB temporaries
            every minibatch cost page faults.

    Returns:
        ``clipped`` ``[N]``, each agent's count of rows whose ratio left [1 − ε, 1 + ε]
        (``|r − 1| > ε`` up to the rounding of r − 1), and with ``stats``: loss,
        pg_loss, v_loss, entropy, approx_kl, old_approx_kl, clipfrac, all ``[N]``.
    """
    n, a_dim, g = policy.n_agents, policy.act_dim, policy.n_groups
    obs, u = mb["obs"], mb["actions"]
    batch = obs.shape[1]
    eps = config.clip_coef
    # forward: both stacked MLPs, keeping their activations
    xg = policy._to_groups(obs)
    actor_w, actor_b = plist(policy.actor_w), plist(policy.actor_b)
    critic_w, critic_b = plist(policy.critic_w), plist(policy.critic_b)
    ws = {} if workspace is None else workspace
    mean_g, actor_acts = mlp_forward(xg, actor_w, actor_b, g, ws.get("actor"))
    value_g, critic_acts = mlp_forward(xg, critic_w, critic_b, g, ws.get("critic"))
    if workspace is not None:
        workspace["actor"], workspace["critic"] = actor_acts, critic_acts
    mean = policy._from_groups(mean_g, batch)  # [N, B, A]
    value = policy._from_groups(value_g, batch)[..., 0]  # [N, B]
    log_std = policy.agent_log_std().detach()  # [N, A]
    inv_std = torch.exp(-log_std).unsqueeze(1)  # [N, 1, A]
    z = (u - mean).mul_(inv_std)  # [N, B, A]
    z2 = z * z
    logp = z2.sum(-1).mul_(-0.5).sub_((log_std.sum(-1) + a_dim * _HALF_LOG_2PI).unsqueeze(1))
    logratio = logp - mb["logprobs"]
    ratio = logratio.exp()
    pg_weight = mb.get("pg_weight")
    if pg_weight is None:
        pg_weight = surrogate_weights(mb["advantages"], batch, config.norm_adv, weight)
    # surrogate, scaled by w_i / B (> 0, so the max picks the same term)
    clipped_ratio = torch.clamp(ratio, 1.0 - eps, 1.0 + eps)
    pg1 = pg_weight * ratio
    pg2 = pg_weight * clipped_ratio
    # ∂L/∂log π = r ∂L/∂r = −Â r w_i/B where the unclipped term is the max; a tie means
    # r is inside [1 − ε, 1 + ε] (clamp returned r itself), where both terms pass it
    d_logp = torch.where(pg1 >= pg2, pg1, 0.0)
    out = {"clipped": (clipped_ratio != ratio).sum(1)}
    # value loss
    returns, old_values = mb["returns"], mb["values"]
    err = value - returns
    v_scale = config.vf_coef / batch if weight is None else \
        (weight * (config.vf_coef / batch)).unsqueeze(1)
    if config.clip_vloss:
        delta = value - old_values
        clipped_delta = torch.clamp(delta, -eps, eps)
        err_c = (old_values + clipped_delta).sub_(returns)
        e1, e2 = err * err, err_c * err_c
        # the larger error's branch; the clipped one passes no gradient where V − V_old was
        # clipped; a tie (e₁ = e₂, nearly always V_c = V) takes the unclipped branch
        d_value = torch.where(e1 >= e2, err, torch.where(clipped_delta == delta, err_c, 0.0))
    else:
        e1 = e2 = err * err
        d_value = err
    d_value = d_value * v_scale
    # through the Gaussian: ∂ log π/∂μ = z/σ, ∂ log π/∂ log σ = z² − 1
    dl = d_logp.unsqueeze(-1)
    d_mean = (dl * z).mul_(inv_std)
    d_log_std = (dl * (z2 - 1.0)).sum(1)  # [N, A]
    ent_grad = config.ent_coef if weight is None else config.ent_coef * weight.unsqueeze(1)
    d_log_std = d_log_std - ent_grad
    if g != n:  # agents of a group share its log σ
        d_log_std = torch.zeros(g, a_dim).index_add_(0, policy.group_of, d_log_std)
    # backward through both MLPs
    reuse = workspace is not None
    scratch = ws.setdefault("scratch", {}) if reuse else None
    grads: dict[Tensor, Tensor] = {policy.log_std: d_log_std}
    for weights, biases, acts, grad_out in (
            (actor_w, actor_b, actor_acts, _groups_adjoint(policy, d_mean)),
            (critic_w, critic_b, critic_acts, _groups_adjoint(policy, d_value.unsqueeze(-1)))):
        old = [(w.grad, b.grad) for w, b in zip(weights, biases, strict=True)] if reuse \
            else None
        dws, dbs = mlp_backward(acts, weights, grad_out, old, scratch)
        grads.update(zip(weights, dws, strict=True))
        grads.update(zip(biases, dbs, strict=True))
    for p, grad in grads.items():
        if p.grad is not grad:
            p.grad = grad
    if stats:
        adv = mb["advantages"]
        if config.norm_adv:
            adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-8)
        entropy = (0.5 + _HALF_LOG_2PI + log_std).sum(-1)
        pg_loss = torch.maximum(-adv * ratio, -adv * clipped_ratio).mean(1)
        v_loss = 0.5 * torch.maximum(e1, e2).mean(1)
        out.update(loss=pg_loss - config.ent_coef * entropy + v_loss * config.vf_coef,
                   pg_loss=pg_loss, v_loss=v_loss, entropy=entropy,
                   approx_kl=((ratio - 1) - logratio).mean(1),
                   old_approx_kl=(-logratio).mean(1),
                   clipfrac=((ratio - 1.0).abs_() > eps).float().mean(1))
    return out
