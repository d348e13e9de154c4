"""Every reduction of the package, and the dtype policy.

``reduce_loss`` (per-element losses, a mean over a count or a weight sum),
``reduce_classes`` (per-class region losses, a weighted class mean) and
``weighted_reduction`` (detector style: an element weight and mmdet's
``avg_factor``, used by the focal and rotated families) are the only places
a loss is reduced.

Dtype policy: float16 and bfloat16 inputs are computed in float32 and the
result is cast back (``promote`` at entry, ``restore`` at exit); float32 and
float64 are computed as given.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .._backend import Array, device, is_concrete, numel, value_range
from .checks import check_nonnegative, weight_array


def promote(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` in its compute dtype: float32 for half precision, else unchanged."""
    if x.dtype == xp.float32 or x.dtype == xp.float64:  # the common case without finfo (once per call)
        return x
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


def check_weighting(caller: str, reduction: str, avg_factor: Any) -> None:
    """``avg_factor`` is a non-negative number or 0-d array, and only meaningful for ``"mean"``."""
    if avg_factor is None:
        return
    if reduction != "mean":
        raise ValueError(f"{caller}: avg_factor applies to reduction='mean' only, got reduction={reduction!r}")
    if isinstance(avg_factor, bool):
        raise TypeError(f"{caller}: avg_factor must be a number or a 0-d array, got {avg_factor!r}")
    if isinstance(avg_factor, (int, float)):
        check_nonnegative(caller, "avg_factor", avg_factor)
    elif getattr(avg_factor, "shape", None) != ():
        raise ValueError(f"{caller}: avg_factor must be a number or a 0-d array, got {avg_factor!r}")


def weighted_reduction(
    caller: str, loss: Array, weight: Any, reduction: str, avg_factor: Any, /, *, xp: ModuleType
) -> Array:
    """Multiply ``loss`` by ``weight`` (broadcast to ``loss.shape``, never widening it) and reduce.

    Detectors weigh each anchor's loss and divide the sum by the number of
    positives (``avg_factor``, as mmdet's ``weight_reduce_loss``) instead of the
    element count: ``"mean"`` is the sum over ``avg_factor`` when given (where it
    is 0 the sum itself, which is 0 when nothing is weighted), else the element
    mean (0 for an empty ``loss``).
    """
    if weight is not None:
        w = weight_array(caller, "weight", weight, like=loss, xp=xp)
        if not _broadcasts_to(tuple(w.shape), tuple(loss.shape)):
            raise ValueError(
                f"{caller}: weight must broadcast to the loss shape {tuple(loss.shape)}, got {tuple(w.shape)}"
            )
        loss = loss * w
    if reduction != "mean" or avg_factor is None:
        return reduce_loss(loss, reduction=reduction, xp=xp)
    factor = xp.asarray(avg_factor, dtype=loss.dtype, device=device(loss))
    if is_concrete(factor) and (low := value_range(factor, xp=xp)[0]) < 0:
        raise ValueError(f"{caller}: avg_factor must be >= 0, got {low!r}")
    return reduce_loss(loss, reduction="mean", denominator=factor, xp=xp)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when an array of ``shape`` broadcasts to ``target`` without changing it."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))
