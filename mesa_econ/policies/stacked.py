"""Batched math on stacked per-policy weights: the layers of a PolicyEnsemble.

Every policy g has its own weights ``W[g]`` ``[in, out]`` and bias ``b[g]`` ``[1, out]``,
stacked along a leading dimension G; a layer maps a grouped batch h ``[G, R, in]`` (R rows
per policy) to ``[G, R, out]``. :func:`mlp` runs one tanh MLP this way and picks, per
layer, the fastest op for the shapes at hand (measured on the 2-core benchmark machine,
torch 2.13 CPU with MKL, one thread; see docs/learning.md):

- acting (no autograd, usually R = 1): a narrow first layer (obs_dim <= 16) of G >= 32
  policies as multiply-and-sum (MKL's batched GEMM spends ~0.3 µs per policy on a
  ``[1, obs_dim]`` product), and tanh in its sigmoid form above
  :data:`~mesa_econ.policies.actor_critic.TANH_FAST_MIN_NUMEL` elements, in place;
- training (autograd, R = minibatch length): above :data:`TRAIN_FUSED_MIN_NUMEL` output
  elements, :class:`TanhLayer` and :class:`ColumnHead` (hand-written backward passes with
  fewer full-size temporaries), and a narrow head (2-15 outputs) as the transposed
  product ``(Wᵀ hᵀ)ᵀ``, ~2x faster than ``h W`` in MKL when W has few columns.

Every choice depends only on G, R and the layer widths, so a PolicyView (one policy's
slice of the weights, the same R) takes the same ops as the full ensemble and gets the same
numbers bit for bit. The training forms differ from the acting ones by float32 rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mesa_econ.policies.actor_critic import _MINUS_ONE, TANH_FAST_MIN_NUMEL, tanh

__all__ = ["ColumnHead", "NumpyMLP", "TanhLayer", "affine", "kept_tensor", "mlp",
           "mlp_backward", "mlp_forward", "narrow_affine", "plist"]

Tensor = torch.Tensor

TRAIN_FUSED_MIN_NUMEL = 4 * TANH_FAST_MIN_NUMEL
"""Training layers with at least this many output elements use :class:`TanhLayer` and
:class:`ColumnHead`; below it their ~25 µs of Python per call outweighs the gain."""


def plist(params: nn.ParameterList) -> list[Tensor]:
    """The parameters of a ParameterList, in order (without its slow ``__getitem__``)."""
    return list(params._parameters.values())


def narrow_affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """``b + x @ w`` for one row per policy (x ``[G, 1, in]``) as multiply-and-sum over ``in``."""
    return (x.mT * w).sum(1, keepdim=True).add_(b)


def affine(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """Stacked affine map ``b + h @ w`` for h ``[G, R, in]``, w ``[G, in, out]``, b ``[G, 1, out]``.

    A width-1 output (the value head) is computed as a multiply-and-sum instead: MKL's
    batched GEMM with one output column rounds differently for different batch counts,
    which would break the bit-for-bit agreement between the ensemble and a PolicyView.
    """
    if w.shape[-1] == 1:
        return (h * w.mT).sum(-1, keepdim=True) + b
    return torch.baddbmm(b, h, w)


class TanhLayer(torch.autograd.Function):
    """tanh(b + h @ w) for stacked h ``[G, R, in]``, w ``[G, in, out]``, b ``[G, 1, out]``.

    The sigmoid form of :func:`~mesa_econ.policies.actor_critic.tanh` with the factor 2
    folded into the product (``baddbmm`` with α = β = 2 gives 2z exactly), and the
    backward written out: dz = (1 − y²)·dy, dh = dz wᵀ, dw = hᵀ dz, db = Σ_R dz.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: Tensor, w: Tensor,
                b: Tensor) -> Tensor:
        """y = 2·σ(2(b + h w)) − 1, saving h, w and y."""
        y = torch.baddbmm(b, h, w, beta=2.0, alpha=2.0).sigmoid_()
        y = torch.add(_MINUS_ONE, y, alpha=2.0, out=y)
        ctx.save_for_backward(h, w, y)
        return y

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        """(dh, dw, db) from dy."""
        h, w, y = ctx.saved_tensors
        dz = torch.ops.aten.tanh_backward(grad, y)
        dh = torch.bmm(dz, w.mT) if ctx.needs_input_grad[0] else None
        return dh, torch.bmm(h.mT, dz), dz.sum(1, keepdim=True)


class ColumnHead(torch.autograd.Function):
    """b + h @ w for a one-column head (w ``[G, in, 1]``) without a ``[G, R, in]`` temporary.

    Forward as the row product wᵀ hᵀ; backward dh = dv wᵀ (broadcast), dw = (dvᵀ h)ᵀ (a
    row-vector product, ~2x faster than reducing dv·h), db = Σ_R dv.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: Tensor, w: Tensor,
                b: Tensor) -> Tensor:
        """v = b + h w as ``[G, R, 1]``, saving h and w."""
        ctx.save_for_backward(h, w)
        return torch.baddbmm(b, w.mT, h.mT).mT

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx,
                 grad: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(dh, dw, db) from dv."""
        h, w = ctx.saved_tensors
        return grad * w.mT, torch.bmm(grad.mT, h).mT, grad.sum(1, keepdim=True)


def mlp(xg: Tensor, weights: list[Tensor], biases: list[Tensor], n_groups: int,
        train: bool = False) -> Tensor:
    """A stacked tanh MLP (linear head) on a grouped batch ``xg`` ``[G', R, in]``.

    Args:
        xg: the input rows of each policy.
        weights, biases: the layers, ``[G', in, out]`` and ``[G', 1, out]`` (G' = G, or a
            slice of the policies).
        n_groups: G of the whole ensemble: with R it decides the ops (never the slice's
            G', so a slice computes its rows exactly as the whole ensemble does).
        train: pick the fastest ops under autograd (see the module docstring).

    Returns:
        ``[G', R, out]`` of the last layer.
    """
    rows = xg.shape[-2]
    h = xg
    for k, (w, b) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
        numel = n_groups * rows * w.shape[-1]
        if train and numel >= TRAIN_FUSED_MIN_NUMEL:
            h = TanhLayer.apply(h, w, b)
            continue
        if k == 0 and rows == 1 and n_groups >= 32 and w.shape[-2] <= 16:
            z = narrow_affine(h, w, b)
        else:
            z = torch.baddbmm(b, h, w)
        h = tanh(z, not train and numel >= TANH_FAST_MIN_NUMEL, inplace=True)
    w, b = weights[-1], biases[-1]
    if train and w.shape[-1] == 1 and n_groups * rows * w.shape[-2] >= TRAIN_FUSED_MIN_NUMEL:
        return ColumnHead.apply(h, w, b)
    if train and 1 < w.shape[-1] < 16:
        return torch.baddbmm(b.mT, w.mT, h.mT).mT
    return affine(h, w, b)


# ---------------------------------------------------------------- hand-written training pass
def _head(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """The linear head ``b + h @ w`` ``[G, R, k]``; a narrow one (k < 16) as ``(Wᵀ hᵀ)ᵀ``."""
    if w.shape[-1] < 16:  # MKL: ~2x faster with the few output columns as rows
        return torch.baddbmm(b.mT, w.mT, h.mT).mT
    return torch.baddbmm(b, h, w)


def _reuse(buffer: Tensor | None, shape: torch.Size) -> Tensor | None:
    """``buffer`` if it is a contiguous tensor of ``shape`` (to write into), else None."""
    if buffer is not None and buffer.shape == shape and buffer.is_contiguous():
        return buffer
    return None


def kept_tensor(store: dict, key: object, shape: tuple[int, ...]) -> Tensor:
    """``store[key]`` if it is a contiguous tensor of ``shape``, else a new (uninitialised)
    one, kept there: a training loop's temporaries reused instead of allocated afresh."""
    buf = _reuse(store.get(key), torch.Size(shape))
    if buf is None:
        buf = store[key] = torch.empty(shape)
    return buf


def mlp_forward(xg: Tensor, weights: list[Tensor], biases: list[Tensor], n_groups: int,
                buffers: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
    """A stacked tanh MLP for training without autograd: the output and what
    :func:`mlp_backward` needs.

    The same function as :func:`mlp` (tanh hidden layers, linear head) on a grouped batch
    ``xg`` ``[G, R, in]``; the sigmoid form of tanh above
    :data:`~mesa_econ.policies.actor_critic.TANH_FAST_MIN_NUMEL` elements, the factor 2
    folded into the product (``baddbmm`` with α = β = 2 gives 2z exactly).

    Args:
        xg, weights, biases, n_groups: as for :func:`mlp`.
        buffers: tensors to write the hidden activations into (the previous call's
            activations, reused when their shapes fit: a training loop that allocates
            ~1 MB activations afresh every minibatch pays for page faults).

    Returns:
        The head's output ``[G, R, out]`` and the activations ``[xg, y_1, ..., y_L]`` (the
        input and every hidden layer's output).
    """
    rows = xg.shape[-2]
    acts = [xg]
    h = xg
    for k, (w, b) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
        shape = torch.Size((w.shape[0], rows, w.shape[-1]))
        out = _reuse(buffers[k + 1] if buffers and len(buffers) > k + 1 else None, shape)
        if n_groups * rows * w.shape[-1] >= TANH_FAST_MIN_NUMEL:
            h = torch.baddbmm(b, h, w, beta=2.0, alpha=2.0, out=out).sigmoid_()
            h = torch.add(_MINUS_ONE, h, alpha=2.0, out=h)
        else:
            h = torch.baddbmm(b, h, w, out=out).tanh_()
        acts.append(h)
    return _head(h, weights[-1], biases[-1]), acts


def mlp_backward(acts: list[Tensor], weights: list[Tensor], grad_out: Tensor,
                 grads: list[tuple[Tensor | None, Tensor | None]] | None = None,
                 scratch: dict | None = None,
                 ) -> tuple[list[Tensor], list[Tensor]]:
    """Gradients of the weights and biases of :func:`mlp_forward` given d(loss)/d(output).

    Per layer, from the head down: dW = hᵀ dz, db = Σ_R dz, dh = dz Wᵀ, and through each
    tanh dz = (1 − y²)·dy (in place in dh's memory). The input's gradient is not formed.

    Args:
        acts: the activations returned by :func:`mlp_forward`.
        weights: the layers' weights ``[G, in, out]`` (as passed to the forward pass).
        grad_out: d(loss)/d(output) ``[G, R, out]``.
        grads: per layer ``(dW, db)`` tensors to write the gradients into (e.g. the
            parameters' previous ``.grad``), used when contiguous and of the right shape.
        scratch: reusable temporaries for dh, by shape (filled on first use).

    Returns:
        ``(dW, db)``, lists in layer order, contiguous, shaped like the weights and biases.
    """
    n_layers = len(weights)
    outs = grads if grads is not None else [(None, None)] * n_layers

    def dw_db(k: int, h: Tensor, dz: Tensor) -> tuple[Tensor, Tensor]:
        dw_buf = _reuse(outs[k][0], weights[k].shape)
        db_buf = _reuse(outs[k][1], torch.Size((dz.shape[0], 1, dz.shape[-1])))
        if weights[k].shape[-1] == 1:  # one column: the row product [G, 1, R] @ [G, R, in]
            dw = torch.bmm(dz.mT, h, out=None if dw_buf is None else dw_buf.mT).mT
        elif weights[k].shape[-1] < 16:  # few columns as rows again, then transposed
            dw = torch.bmm(dz.mT, h).mT
            dw = dw.contiguous() if dw_buf is None else dw_buf.copy_(dw)
        else:
            dw = torch.bmm(h.mT, dz, out=dw_buf)
        return dw, torch.sum(dz, 1, keepdim=True, out=db_buf)

    def temp(shape: torch.Size, avoid: Tensor | None = None) -> Tensor | None:
        """A scratch tensor of ``shape`` that is not ``avoid`` (two per shape at most)."""
        if scratch is None:
            return None
        buf = kept_tensor(scratch, (shape, 0), shape)
        return buf if buf is not avoid else kept_tensor(scratch, (shape, 1), shape)

    w = weights[-1]
    dw, db = dw_db(n_layers - 1, acts[-1], grad_out)
    dws, dbs = [dw], [db]
    dh_shape = torch.Size((grad_out.shape[0], grad_out.shape[1], w.shape[-2]))
    if w.shape[-1] == 1:  # dh = dv wᵀ as a broadcast product
        dh = torch.mul(grad_out, w.mT, out=temp(dh_shape))
    else:
        dh = torch.bmm(grad_out, w.mT, out=temp(dh_shape))
    for k in range(n_layers - 2, -1, -1):
        dz = torch.ops.aten.tanh_backward.grad_input(dh, acts[k + 1], grad_input=dh)
        dw, db = dw_db(k, acts[k], dz)
        dws.append(dw)
        dbs.append(db)
        if k > 0:
            shape = torch.Size((dz.shape[0], dz.shape[1], weights[k].shape[-2]))
            dh = torch.bmm(dz, weights[k].mT, out=temp(shape, avoid=dz))
    return dws[::-1], dbs[::-1]


class NumpyMLP:
    """A stacked tanh MLP evaluated in numpy on one row per policy, for rollouts.

    Holds numpy views of the torch weights (shared memory: in-place optimizer steps are
    seen at once; build a new one after replacing a parameter tensor). ``np.matmul`` on a
    stack ``[G, 1, in] @ [G, in, out]`` runs one BLAS product per policy with little
    overhead per call; for a rollout step of independent policies it is ~2x faster than
    the torch ops of :func:`mlp` (``benchmarks/policy_forward.py``: 2.4x, 2.2x and 1.8x
    at G = 10, 100 and 1000 on the benchmark machine, one thread). The result equals
    :func:`mlp`'s to float32 rounding (~1e-9 absolute on the actor's means), not bit for
    bit.

    Args:
        weights, biases: the layers, ``[G, in, out]`` and ``[G, 1, out]`` float32 tensors.
    """

    def __init__(self, weights: list[Tensor], biases: list[Tensor]) -> None:
        self.weights = [w.detach().numpy() for w in weights]
        self.biases = [b.detach().numpy() for b in biases]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The output ``[G, out]`` for inputs ``x`` ``[G, in]`` (one row per policy)."""
        h = x[:, None, :]
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.matmul(h, w)
            h += b
            np.tanh(h, out=h)
        out = np.matmul(h, self.weights[-1])
        out += self.biases[-1]
        return out[:, 0, :]
