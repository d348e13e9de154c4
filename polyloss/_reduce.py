"""Reductions, ignore masks, class weights and the dtype policy.

Dtype policy: float16 and bfloat16 inputs are computed in float32 and the
result is cast back (``promote`` at entry, ``restore`` at exit); float32 and
float64 are computed as given.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._xp import Array, numel


def promote(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` in its compute dtype: float32 for half precision, else unchanged."""
    if xp.finfo(x.dtype).bits < 32:
        return xp.astype(x, xp.float32)
    return x


def restore(out: Array, dtype: Any, /, *, xp: ModuleType) -> Array:
    """Cast a result back to the input's dtype (a no-op unless it was promoted)."""
    return out if out.dtype == dtype else xp.astype(out, dtype)


def as_float(x: Array, like: Array, /, *, xp: ModuleType) -> Array:
    """A target (bool, integer or floating) in the compute dtype of ``like``."""
    return x if x.dtype == like.dtype else xp.astype(x, like.dtype)


def safe_divide(num: Array, den: Array, /, *, xp: ModuleType) -> Array:
    """``num / den`` with 0 (and a zero gradient) where ``den == 0``; ``num`` must be 0 there."""
    return num / xp.where(den == 0, 1, den)


def reduce_loss(loss: Array, /, *, reduction: str, denominator: Array | None = None, xp: ModuleType) -> Array:
    """Reduce per-element losses that are already weighted and masked.

    ``"mean"`` divides the sum by ``denominator`` (a weight sum or a count of
    valid elements, 0 when everything is ignored, giving a loss of 0) or, if
    it is ``None``, by the number of elements.
    """
    if reduction == "none":
        return loss
    if reduction == "mean" and denominator is None:
        return xp.mean(loss) if numel(loss) else xp.sum(loss)
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    return safe_divide(total, denominator, xp=xp)


def reduce_classes(loss: Array, /, *, weight: Array | None, reduction: str, xp: ModuleType) -> Array:
    """Reduce per-class region losses of shape ``(C,)`` or ``(N, C)``.

    ``weight`` (shape ``(C,)``) multiplies each class's loss; ``"none"``
    returns the weighted losses, ``"sum"`` their sum, and ``"mean"`` divides
    that sum by the total weight (by ``C`` without weights) times the number
    of samples: a weighted mean over classes, a plain mean over samples.
    """
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    samples = numel(loss) // max(loss.shape[-1], 1)
    if weight is None:
        return total / max(numel(loss), 1)
    return safe_divide(total, xp.sum(weight) * samples, xp=xp)
