"""torch half of ``_fused.fused_class_sums``: an autograd.Function (imported only where torch is in use).

Nothing full-size is saved from forward: the backward recomputes ``p`` and
writes ``w = dL/dp`` into the buffer that becomes the gradient, so the
backward holds two full-size buffers (``p`` and the gradient) and the forward
one (``p``). Walking the pixels in blocks (commit fef28fe) traded 45% more time
for a peak that the resident-memory measurement could not show to be lower on
this machine's sizes; it is not used.
"""

from __future__ import annotations

from typing import Any

import torch


def _activate(x: Any, axis: int, use_sigmoid: bool) -> Any:
    return torch.sigmoid(x) if use_sigmoid else torch.softmax(x, dim=axis)


def _mask(valid: Any, axis: int) -> Any:
    return valid.unsqueeze(axis) if valid.ndim == 2 else valid


class FusedClassSums(torch.autograd.Function):
    """``SoftSums`` of ``activate(x)``; saves x, the targets and the mask, recomputes p in backward."""

    @staticmethod
    def forward(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool, squared: bool) -> Any:
        pix = 3 - axis
        wide = torch.float64 if torch.finfo(x.dtype).bits <= 32 else x.dtype
        p = _activate(x, axis, use_sigmoid)  # ours: updated in place below
        if target.ndim == 2:  # labels: the scatters accumulate in float64 (a float32 one drifts)
            at_label = torch.gather(p, axis, target.unsqueeze(axis)).squeeze(axis)
            counted = torch.ones((), dtype=wide, device=x.device).expand(target.shape)
            if valid is not None:
                at_label = torch.where(valid, at_label, 0)
                counted = valid.to(wide)
                p.masked_fill_(~_mask(valid, axis), 0)
            zeros = torch.zeros((x.shape[0], x.shape[axis]), dtype=wide, device=x.device)
            tp = zeros.scatter_add(1, target, at_label.to(wide)).to(x.dtype)
            tsum = zeros.scatter_add(1, target, counted).to(x.dtype)
        else:
            t = target.to(x.dtype)
            if valid is not None:
                p.masked_fill_(~valid, 0)
                t = torch.where(valid, t, 0)
            tp = torch.einsum("ncm,ncm->nc" if axis == 1 else "nmc,nmc->nc", p, t)  # a batched dot: no temporary
            tsum = (t.square() if squared else t).sum(pix)
        return (p.square_() if squared else p).sum(pix), tp, tsum

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
        b = grad_psum.unsqueeze(pix)
        p = _activate(x, axis, ctx.use_sigmoid)
        if target.ndim == 2:  # w = dL/dp, in the buffer that becomes the gradient
            w = p * (2 * b) if ctx.squared else b.expand(x.shape).contiguous()
            w.scatter_add_(axis, target.unsqueeze(axis), torch.gather(grad_tp, 1, target).unsqueeze(axis))
        else:
            w = target.to(x.dtype) * grad_tp.unsqueeze(pix)
            if ctx.squared:
                w.addcmul_(p, b, value=2)
            else:
                w.add_(b)
        if valid is not None:
            w.masked_fill_(~_mask(valid, axis), 0)
        w.mul_(p)  # p * w
        if ctx.use_sigmoid:
            w.addcmul_(w, p, value=-1)  # p (1 - p) w
        else:
            w.addcmul_(p, w.sum(axis, keepdim=True), value=-1)  # p (w - sum_k p_k w_k)
        return w, None, None, None, None, None
