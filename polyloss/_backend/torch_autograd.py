"""torch-only autograd functions behind ``_backend`` fast paths (imported only where torch is in use)."""

from __future__ import annotations

from typing import Any

import torch


class ClassSums(torch.autograd.Function):
    """Per-sample, per-class sums of ``p`` over valid pixels, and of ``p`` at each pixel's label.

    ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2);
    ``labels`` ``(N, M)`` in range, ``valid`` the mask of pixels that count
    (or None). The scatter at the labels accumulates in float64 (a
    sequential float32 one drifts). The backward writes the gradient of ``p``
    in one pass (the per-class gradient of the total broadcast, plus a
    scatter at the labels) instead of autograd's zero-filled scatter added to
    a broadcast.
    """

    @staticmethod
    def forward(p: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None, axis: int) -> Any:
        wide = torch.float64 if torch.finfo(p.dtype).bits <= 32 else p.dtype
        at_label = torch.gather(p, axis, labels.unsqueeze(axis)).squeeze(axis)
        total = p.sum(3 - axis) if valid is None else torch.where(valid.unsqueeze(axis), p, 0).sum(3 - axis)
        if valid is not None:
            at_label = torch.where(valid, at_label, 0)
        labelled = torch.zeros(total.shape, dtype=wide, device=p.device).scatter_add(1, labels, at_label.to(wide))
        return total, labelled.to(p.dtype)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        p, labels, valid, axis = inputs
        ctx.save_for_backward(labels, valid)
        ctx.axis, ctx.shape = axis, p.shape

    @staticmethod
    def backward(ctx: Any, grad_total: torch.Tensor, grad_labelled: torch.Tensor) -> Any:
        labels, valid = ctx.saved_tensors
        axis = ctx.axis
        grad = grad_total.unsqueeze(3 - axis).expand(ctx.shape).contiguous()
        at_label = torch.gather(grad_labelled, 1, labels)
        if valid is not None:
            grad = grad.masked_fill_(~valid.unsqueeze(axis), 0)
            at_label = at_label.masked_fill(~valid, 0)
        return grad.scatter_add_(axis, labels.unsqueeze(axis), at_label.unsqueeze(axis)), None, None, None


def class_sums(p: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None, axis: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``ClassSums.apply``, typed (``Function.apply`` is untyped in torch)."""
    apply: Any = ClassSums.apply
    total, labelled = apply(p, labels, valid, axis)
    return total, labelled
