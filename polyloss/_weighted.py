"""Per-element weights and the detector-style ``avg_factor`` mean, shared by the focal and rotated families.

Detectors weigh each anchor's loss and divide the sum by the number of
positives (``avg_factor``) instead of the element count; mmdet's
``weight_reduce_loss`` is the model. Both families call ``weighted_reduction``
once, on per-element losses in the compute dtype.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ._checks import check_nonnegative
from ._reduce import reduce_loss
from ._xp import Array, device, is_eager


def check_weighting(fn: str, reduction: str, avg_factor: Any) -> None:
    """``avg_factor`` is a non-negative number or 0-d array, and only meaningful for ``"mean"``."""
    if avg_factor is None:
        return
    if reduction != "mean":
        raise ValueError(f"{fn}: avg_factor applies to reduction='mean' only, got reduction={reduction!r}")
    if isinstance(avg_factor, bool):
        raise TypeError(f"{fn}: avg_factor must be a number or a 0-d array, got {avg_factor!r}")
    if isinstance(avg_factor, int | float):
        check_nonnegative(fn, "avg_factor", avg_factor)
    elif getattr(avg_factor, "shape", None) != ():
        raise ValueError(f"{fn}: avg_factor must be a number or a 0-d array, got {avg_factor!r}")


def weighted_reduction(
    fn: str, loss: Array, weight: Any, reduction: str, avg_factor: Any, /, *, xp: ModuleType
) -> Array:
    """Multiply ``loss`` by ``weight`` (broadcast to ``loss.shape``, never widening it) and reduce.

    ``"mean"``: the sum divided by ``avg_factor`` when given (where it is 0 the
    sum itself is returned, which is 0 when nothing is weighted), else the
    element mean (0 for an empty ``loss``).
    """
    if weight is not None:
        w = xp.asarray(weight, dtype=loss.dtype, device=device(loss))
        if not _broadcasts_to(tuple(w.shape), tuple(loss.shape)):
            raise ValueError(
                f"{fn}: weight must broadcast to the loss shape {tuple(loss.shape)}, got {tuple(w.shape)}"
            )
        loss = loss * w
    if reduction != "mean" or avg_factor is None:
        return reduce_loss(loss, reduction=reduction, xp=xp)
    factor = xp.asarray(avg_factor, dtype=loss.dtype, device=device(loss))
    if is_eager(factor) and bool(factor < 0):
        raise ValueError(f"{fn}: avg_factor must be >= 0, got {float(factor)!r}")
    total = xp.sum(loss)
    return total / xp.where(factor == 0, 1, factor)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when an array of ``shape`` broadcasts to ``target`` without changing it."""
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))
