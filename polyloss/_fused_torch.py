"""torch half of ``_fused.fused_class_sums``: an autograd.Function (imported only where torch is in use).

Nothing full-size is saved from forward: the backward recomputes ``p``. In
eager mode both passes walk the pixel axis in blocks (about 2^18 elements of
``x`` on CPU, at most 4 blocks on an accelerator, where each block costs kernel
launches), so besides the gradient itself only two blocks (``p`` and
``w = dL/dp``) are alive at a time. Under ``torch.compile`` one block covers
everything and the compiler fuses the passes.
"""

from __future__ import annotations

from typing import Any

import torch

BLOCK = 1 << 18  # elements of x per block on CPU (1 MiB of float32): measured 1.25x the logits at peak, 2x at 1 << 20
MAX_DEVICE_BLOCKS = 4


def _activate(x: Any, axis: int, use_sigmoid: bool) -> Any:
    return torch.sigmoid(x) if use_sigmoid else torch.softmax(x, dim=axis)


def _mask(valid: Any, axis: int) -> Any:
    return valid.unsqueeze(axis) if valid.ndim == 2 else valid


def _blocks(x: Any, axis: int) -> list[slice]:
    """Slices of the pixel axis: one under torch.compile, else blocks of about ``BLOCK`` elements."""
    m = x.shape[3 - axis]
    if torch.compiler.is_compiling() or m == 0:
        return [slice(None)]
    per_pixel = max(1, x.shape[0] * x.shape[axis])
    step = max(1, BLOCK // per_pixel)
    if x.device.type != "cpu":
        step = max(step, -(-m // MAX_DEVICE_BLOCKS))
    return [slice(i, i + step) for i in range(0, m, step)]


def _take(t: Any, pix: int, sl: slice) -> Any:
    """The block ``sl`` of the pixel axis of a 3-D (or, with ``pix=1``, 2-D) tensor: a view."""
    return t[:, sl] if pix == 1 else t[:, :, sl]


class FusedClassSums(torch.autograd.Function):
    """``SoftSums`` of ``activate(x)``; saves x, the targets and the mask, recomputes p in backward."""

    @staticmethod
    def forward(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool, squared: bool) -> Any:
        pix = 3 - axis
        wide = torch.float64 if torch.finfo(x.dtype).bits <= 32 else x.dtype
        sums = torch.zeros((3, x.shape[0], x.shape[axis]), dtype=wide, device=x.device)  # psum, tp, tsum
        labels = target.ndim == 2
        for sl in _blocks(x, axis):
            p = _activate(_take(x, pix, sl), axis, use_sigmoid)  # ours: updated in place below
            vb = None if valid is None else _take(valid, 1 if valid.ndim == 2 else pix, sl)
            if labels:  # the scatters accumulate in float64 (a float32 one drifts)
                lb = target[:, sl]
                at_label = torch.gather(p, axis, lb.unsqueeze(axis)).squeeze(axis)
                counted = torch.ones((), dtype=wide, device=x.device).expand(lb.shape)
                if vb is not None:
                    at_label = torch.where(vb, at_label, 0)
                    counted = vb.to(wide)
                sums[1].scatter_add_(1, lb, at_label.to(wide))
                sums[2].scatter_add_(1, lb, counted)
                if vb is not None:
                    p.masked_fill_(~_mask(vb, axis), 0)
            else:
                t = _take(target, pix, sl).to(x.dtype)
                if vb is not None:
                    p.masked_fill_(~vb, 0)
                    t = torch.where(vb, t, 0)
                sums[1] += torch.einsum("ncm,ncm->nc" if axis == 1 else "nmc,nmc->nc", p, t).to(wide)
                sums[2] += (t.square() if squared else t).sum(pix).to(wide)
            sums[0] += (p.square_() if squared else p).sum(pix).to(wide)
        psum, tp, tsum = sums.to(x.dtype).unbind(0)
        return psum, tp, tsum

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        x, target, valid, axis, use_sigmoid, squared = inputs
        ctx.save_for_backward(x, target, valid)
        ctx.axis, ctx.use_sigmoid, ctx.squared = axis, use_sigmoid, squared
        ctx.mark_non_differentiable(output[2])

    @staticmethod
    def backward(ctx: Any, grad_psum: Any, grad_tp: Any, grad_tsum: Any) -> Any:
        x, target, valid = ctx.saved_tensors
        axis, pix = ctx.axis, 3 - ctx.axis
        b, a = grad_psum.unsqueeze(pix), grad_tp.unsqueeze(pix)
        grad = torch.empty_like(x, memory_format=torch.contiguous_format)
        for sl in _blocks(x, axis):
            p = _activate(_take(x, pix, sl), axis, ctx.use_sigmoid)
            w = _take(grad, pix, sl)  # w = dL/dp, written where the gradient goes
            if target.ndim == 2:
                lb = _take(target, 1, sl)
                w.copy_(b.expand(w.shape))
                if ctx.squared:
                    w.mul_(p).mul_(2)
                w.scatter_add_(axis, lb.unsqueeze(axis), torch.gather(grad_tp, 1, lb).unsqueeze(axis))
            else:
                w.copy_(_take(target, pix, sl))
                w.mul_(a)
                if ctx.squared:
                    w.addcmul_(p, b, value=2)
                else:
                    w.add_(b)
            if valid is not None:
                w.masked_fill_(~_mask(_take(valid, 1 if valid.ndim == 2 else pix, sl), axis), 0)
            w.mul_(p)  # p * w
            if ctx.use_sigmoid:
                w.addcmul_(w, p, value=-1)  # p (1 - p) w
            else:
                w.addcmul_(p, w.sum(axis, keepdim=True), value=-1)  # p (w - sum_k p_k w_k)
        return grad, None, None, None, None, None
