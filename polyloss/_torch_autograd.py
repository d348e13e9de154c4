"""torch-only autograd functions behind ``_xp`` fast paths (imported only where torch is in use)."""

from __future__ import annotations

from typing import Any

import torch


class ClassSums(torch.autograd.Function):
    """Per-sample, per-class sums of ``p`` over valid pixels, and of ``p`` at each pixel's label.

    ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2); ``bins``
    ``(N, M)`` holds labels, with ``C`` for ignored pixels. The scatter at the
    labels accumulates in float64 (a sequential float32 one drifts). The
    backward writes the gradient of ``p`` in one pass (the per-class gradient
    of the total broadcast, plus a scatter at the labels) instead of
    autograd's zero-filled scatter added to a broadcast.
    """

    @staticmethod
    def forward(p: torch.Tensor, bins: torch.Tensor, valid: torch.Tensor | None, axis: int) -> Any:
        num, c = bins.shape[0], p.shape[axis]
        wide = torch.float64 if torch.finfo(p.dtype).bits <= 32 else p.dtype
        at_label = torch.gather(p, axis, bins.clamp(max=c - 1).unsqueeze(axis)).squeeze(axis).to(wide)
        labelled = torch.zeros((num, c + 1), dtype=wide, device=p.device).scatter_add(1, bins, at_label)
        pix = 3 - axis
        total = (p if valid is None else torch.where(valid.unsqueeze(axis), p, 0)).sum(pix)  # pairwise: accurate
        return total, labelled[:, :c].to(p.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        p, bins, valid, axis = inputs
        ctx.save_for_backward(bins, valid)
        ctx.axis, ctx.shape = axis, p.shape

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor, grad_labelled: torch.Tensor) -> Any:
        bins, valid = ctx.saved_tensors
        axis, shape = ctx.axis, ctx.shape
        grad = grad_total.unsqueeze(3 - axis).expand(shape).contiguous()
        if valid is not None:
            grad = grad.masked_fill_(~valid.unsqueeze(axis), 0)
        c = shape[axis]
        index = bins.clamp(max=c - 1).unsqueeze(axis)
        at_label = torch.gather(grad_labelled, 1, index.squeeze(axis))
        if valid is not None:
            at_label = at_label.masked_fill(~valid, 0)
        return grad.scatter_add_(axis, index, at_label.unsqueeze(axis)), None, None, None
