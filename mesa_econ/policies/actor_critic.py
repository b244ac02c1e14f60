"""A single agent's Gaussian actor-critic (the policy π_i of §2.2), CleanRL style.

The actor is a tanh MLP giving the mean of a diagonal Gaussian over the raw action u ∈ R^M;
its log standard deviation is a state-independent parameter. The critic is a separate tanh
MLP giving the state value V(s). Initialisation follows CleanRL's
``ppo_continuous_action.py``: orthogonal weights with gain √2 on hidden layers, 0.01 on the
actor head and 1.0 on the critic head, zero biases.

The helpers here (architecture checks, the initialisation order, Gaussian log-probability,
entropy and sampling) are shared with :class:`~mesa_econ.policies.PolicyEnsemble`, so that
an ensemble's group g is initialised exactly like the g-th ``ActorCritic`` drawn from the
same generator.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from mesa_econ._validation import INT_MAX, check_int, check_number, check_positive_ints

HIDDEN_GAIN = math.sqrt(2.0)
"""Orthogonal-init gain of hidden layers (tanh MLPs, CleanRL)."""
ACTOR_HEAD_GAIN = 0.01
"""Orthogonal-init gain of the actor's mean head: near-zero initial means."""
CRITIC_HEAD_GAIN = 1.0
"""Orthogonal-init gain of the critic's value head."""
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def is_count(value: object, low: int = 1, high: float = INT_MAX) -> bool:
    """Whether ``value`` is an integer (not a bool) in ``[low, high]`` (int64 at most)."""
    return (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high
    )


def check_architecture(
    obs_dim: int, act_dim: int, hidden: Sequence[int], init_log_std: float = 0.0
) -> tuple[int, ...]:
    """Validate the sizes of an actor-critic and return ``hidden`` as a tuple.

    Raises:
        ValueError: naming ``obs_dim``, ``act_dim``, ``hidden`` or ``init_log_std``.
    """
    check_int("obs_dim", obs_dim, 1)
    check_int("act_dim", act_dim, 1)
    hidden = check_positive_ints("hidden", hidden)
    check_number("init_log_std", init_log_std)
    return hidden


def layer_specs(
    obs_dim: int, act_dim: int, hidden: tuple[int, ...]
) -> list[tuple[str, int, int, float]]:
    """The linear layers in initialisation order: ``(net, in, out, gain)``.

    The critic's layers come first, then the actor's (CleanRL's order). Both
    :class:`ActorCritic` and the ensemble draw their weights in this order, which is what
    makes their initial weights equal for the same generator stream.
    """
    specs: list[tuple[str, int, int, float]] = []
    for net, out_dim, head_gain in (
        ("critic", 1, CRITIC_HEAD_GAIN),
        ("actor", act_dim, ACTOR_HEAD_GAIN),
    ):
        sizes = (obs_dim, *hidden)
        specs += [(net, a, b, HIDDEN_GAIN) for a, b in itertools.pairwise(sizes)]
        specs.append((net, hidden[-1], out_dim, head_gain))
    return specs


def orthogonal_weight(
    in_dim: int, out_dim: int, gain: float, generator: torch.Generator
) -> torch.Tensor:
    """An orthogonally initialised weight of shape ``(out_dim, in_dim)`` (nn.Linear layout)."""
    weight = torch.empty(out_dim, in_dim)
    return nn.init.orthogonal_(weight, gain=gain, generator=generator)


def fresh_generator() -> torch.Generator:
    """A new CPU generator seeded from OS entropy (used only when none is given)."""
    generator = torch.Generator()
    generator.seed()
    return generator


def gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Log-density of ``u`` under N(mean, exp(log_std)²), summed over the last (action) dim.

    Notes:
        log π(u|s) = Σ_k [ −(u_k − μ_k)² / (2σ_k²) − log σ_k − ½ log 2π ].
    """
    var = torch.exp(2.0 * log_std)
    return (-((u - mean) ** 2) / (2.0 * var) - log_std - _HALF_LOG_2PI).sum(-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of N(μ, exp(log_std)²) summed over the last dim: Σ_k (½ + ½ log 2π + log σ_k)."""
    return (0.5 + _HALF_LOG_2PI + log_std).sum(-1)


def sample_gaussian(
    mean: torch.Tensor, log_std: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Draw u = μ + σ·ε, ε ~ N(0, I) from ``generator`` (never the global RNG)."""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + torch.exp(log_std) * eps


def act_only(policy: object, obs: torch.Tensor, generator: torch.Generator | None = None,
             deterministic: bool = False) -> torch.Tensor:
    """A policy's actions u for ``obs``: ``policy.sample`` where its class defines it (the
    same u as ``act``, without the value and log-probability), else ``policy.act(...)[0]``.

    The class is asked, not the object, so a wrapper that forwards unknown attributes to
    an inner policy (and would skip its own work, e.g. normalising) never qualifies.
    """
    if callable(getattr(type(policy), "sample", None)):
        return policy.sample(obs, generator=generator, deterministic=deterministic)
    return policy.act(obs, generator=generator, deterministic=deterministic)[0]


TANH_FAST_MIN_NUMEL = 4096
"""Tensors with at least this many elements take the sigmoid form of :func:`tanh`."""


_MINUS_ONE = torch.tensor(-1.0)


def _sigmoid_tanh(z: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """tanh(z) = 2·σ(2z) − 1 (no autograd graph), into a new tensor or into ``z``.

    Three passes: 2z (exact), σ in place, then −1 + 2·σ in place (one rounding).
    """
    y = z.mul_(2.0) if inplace else torch.mul(z, 2.0)
    y.sigmoid_()
    return torch.add(_MINUS_ONE, y, alpha=2.0, out=y)


class _SigmoidTanh(torch.autograd.Function):
    """Autograd of :func:`_sigmoid_tanh`: d/dz (2σ(2z) − 1) = 1 − y², as ``tanh_backward``."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, z: torch.Tensor) -> torch.Tensor:
        y = _sigmoid_tanh(z)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


def tanh(z: torch.Tensor, fast: bool | None = None, inplace: bool = False) -> torch.Tensor:
    """The hidden-layer activation of every actor-critic: tanh, computed fast when large.

    On this CPU build ``torch.tanh`` costs ~3.5 ns per float32 element, ``torch.sigmoid``
    ~0.4 ns, so a large tensor takes the form tanh(z) = 2·σ(2z) − 1 (4 vectorised passes,
    ~3.7x faster forward and ~2.5x faster forward + backward; the two differ by <= 2e-7
    absolutely in float32). Below :data:`TANH_FAST_MIN_NUMEL` elements the per-op overhead
    of the extra passes dominates and ``torch.tanh`` is used.

    Args:
        z: pre-activations.
        fast: force the sigmoid form (True) or ``torch.tanh`` (False). ``None`` decides by
            ``z.numel()``. Callers that must agree bit for bit on different slices of one
            computation (a PolicyEnsemble and its PolicyViews) pass the same decision.
        inplace: ``z`` is a temporary of the caller's: outside autograd, overwrite it
            (same values, no new tensor).
    """
    if fast is None:
        fast = z.numel() >= TANH_FAST_MIN_NUMEL
    grad = z.requires_grad and torch.is_grad_enabled()
    if not fast:
        return torch.tanh_(z) if inplace and not grad else torch.tanh(z)
    if grad:
        return _SigmoidTanh.apply(z)
    return _sigmoid_tanh(z, inplace)


class Tanh(nn.Module):
    """``nn.Tanh`` computed by :func:`tanh` (same output up to 2e-7, faster when large)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Apply :func:`tanh` to ``z``."""
        return tanh(z)


def check_obs(obs: torch.Tensor, obs_dim: int) -> None:
    """Raise ``ValueError`` naming ``obs`` unless its last dimension is ``obs_dim``."""
    if obs.ndim < 1 or obs.shape[-1] != obs_dim:
        raise ValueError(
            f"obs has shape {tuple(obs.shape)}: expected a last dimension of obs_dim={obs_dim}"
        )


def check_action(u: torch.Tensor, mean: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``u`` unless it has the policy mean's shape."""
    if u.shape != mean.shape:
        raise ValueError(
            f"u has shape {tuple(u.shape)}: expected {tuple(mean.shape)} "
            "(the shape of the policy mean for these observations)"
        )


class _PresetLinear(nn.Linear):
    """``nn.Linear`` whose constructor leaves the parameters to its owner.

    nn.Linear's own initialisation draws from torch's global RNG; ActorCritic overwrites the
    parameters from an explicit generator anyway, so ``reset_parameters`` does nothing here
    (and costs nothing: ``torch.nn.utils.skip_init`` was 15x slower).
    """

    def reset_parameters(self) -> None:
        """No-op: the owner sets the weights (see ActorCritic)."""

    def _get_name(self) -> str:
        return "Linear"


class ActorCritic(nn.Module):
    """Gaussian actor with a state-independent log std, and a separate critic.

    Implements the policy π_i of §2.2 and the actor-critic of §6.1: u ~ N(μ_θ(s), diag σ²),
    V_φ(s). The model maps the raw action u to a trade volume, trade_scale·clip(u, −1, 1).

    Args:
        obs_dim: width of an observation (1 + 3M for the economy, §2.1).
        act_dim: width of an action (M, one net trade volume per asset, §2.2).
        hidden: widths of the hidden layers of both the actor and the critic MLP.
        init_log_std: initial value of every entry of ``log_std``.
        generator: source of the initial weights and the default source of ``act``'s
            samples. ``None`` makes a fresh generator seeded from OS entropy (not
            reproducible); pass the model's ``torch.Generator`` for reproducible runs.

    Attributes:
        critic: ``nn.Sequential`` obs → value, output width 1.
        actor_mean: ``nn.Sequential`` obs → mean of u.
        log_std: ``nn.Parameter`` of shape ``(act_dim,)``.
        generator: the default generator of :meth:`act`.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (64, 64),
        init_log_std: float = -0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.hidden = check_architecture(obs_dim, act_dim, hidden, init_log_std)
        self.obs_dim = int(obs_dim)
        self.act_dim = int(act_dim)
        self.generator = generator if generator is not None else fresh_generator()
        nets: dict[str, list[nn.Module]] = {"critic": [], "actor": []}
        for net, in_dim, out_dim, gain in layer_specs(self.obs_dim, self.act_dim, self.hidden):
            layer = _PresetLinear(in_dim, out_dim)
            with torch.no_grad():
                layer.weight.copy_(orthogonal_weight(in_dim, out_dim, gain, self.generator))
                layer.bias.zero_()
            nets[net] += [layer, Tanh()]
        self.critic = nn.Sequential(*nets["critic"][:-1])  # no tanh after the heads
        self.actor_mean = nn.Sequential(*nets["actor"][:-1])
        self.log_std = nn.Parameter(torch.full((self.act_dim,), float(init_log_std)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Policy mean, log std and value for observations of shape ``[..., obs_dim]``.

        Returns:
            ``(mean, log_std, value)`` with shapes ``[..., act_dim]``, ``[..., act_dim]``
            (``log_std`` expanded) and ``[...]``.
        """
        check_obs(obs, self.obs_dim)
        mean = self.actor_mean(obs)
        return mean, self.log_std.expand_as(mean), self.critic(obs).squeeze(-1)

    def act(
        self,
        obs: torch.Tensor,
        generator: torch.Generator | None = None,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample a raw action u ~ N(mean, σ²) (or take the mean if ``deterministic``).

        Args:
            obs: observations ``[..., obs_dim]``.
            generator: source of the noise; defaults to :attr:`generator`.
            deterministic: return the mean instead of a sample.

        Returns:
            ``(u, log_prob, value)``: u ``[..., act_dim]``; log π(u|s) summed over the action
            dims and V(s), both ``[...]``.
        """
        mean, log_std, value = self(obs)
        u = mean if deterministic else sample_gaussian(mean, log_std, generator or self.generator)
        return u, gaussian_log_prob(u, mean, log_std), value

    def evaluate(
        self, obs: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probability of given actions, policy entropy and value (for the PPO update).

        Returns:
            ``(log_prob, entropy, value)``, each of shape ``[...]``.
        """
        mean, log_std, value = self(obs)
        check_action(u, mean)
        return gaussian_log_prob(u, mean, log_std), gaussian_entropy(log_std), value
