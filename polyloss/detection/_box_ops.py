"""Box algebra shared by boxes.py, detection.py and rotated.py: format conversion, pairwise IoU, smooth L1.

Private kernels: no validation (the public function that calls them has done
it), the namespace passed as ``xp=``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

from .._backend import Array, device, unstack

Corners = tuple[Array, Array, Array, Array]
BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
Reduction = Literal["mean", "sum", "none"]


def corners(boxes: Array, box_format: str, /, *, xp: ModuleType) -> Corners:
    """``(x1, y1, x2, y2)``, each of shape ``boxes.shape[:-1]``, from boxes in ``box_format``."""
    a, b, c, d = unstack(boxes, axis=-1, xp=xp)
    if box_format == "xyxy":
        return a, b, c, d
    if box_format == "xywh":
        return a, b, a + c, b + d
    return a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d  # cxcywh, rounded as torchvision


def centre_size(boxes: Array, box_format: str, /, *, xp: ModuleType) -> Corners:
    """``(cx, cy, w, h)``, each of shape ``boxes.shape[:-1]``, from boxes in ``box_format``."""
    if box_format == "cxcywh":
        cx, cy, w, h = unstack(boxes, axis=-1, xp=xp)
        return cx, cy, w, h
    x1, y1, x2, y2 = corners(boxes, box_format, xp=xp)
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def from_centre_size(cx: Array, cy: Array, w: Array, h: Array, box_format: str, /, *, xp: ModuleType) -> Array:
    """Stack centre-size coordinates into boxes of ``box_format``."""
    if box_format == "cxcywh":
        return xp.stack((cx, cy, w, h), axis=-1)
    x1, y1 = cx - 0.5 * w, cy - 0.5 * h
    if box_format == "xywh":
        return xp.stack((x1, y1, w, h), axis=-1)
    return xp.stack((x1, y1, cx + 0.5 * w, cy + 0.5 * h), axis=-1)


def pairwise_iou(a: Corners, b: Corners, /, *, xp: ModuleType) -> Array:
    """IoU of every pair; ``a`` has a trailing singleton axis, ``b`` a second-to-last one.

    0 where the union is empty (two zero-area boxes). The areas are computed
    on the small operands before broadcasting, and the clips are maxima with
    0-d arrays (array-api-compat's ``clip`` costs several passes on torch):
    11 passes over the pair grid.
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    zero = xp.zeros((), dtype=ax1.dtype, device=device(ax1))
    w = xp.maximum(xp.minimum(ax2, bx2) - xp.maximum(ax1, bx1), zero)
    h = xp.maximum(xp.minimum(ay2, by2) - xp.maximum(ay1, by1), zero)
    inter = w * h
    union = ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)) - inter
    tiny = xp.asarray(xp.finfo(union.dtype).smallest_normal, dtype=union.dtype, device=device(ax1))
    return inter / xp.maximum(union, tiny)


def smooth_l1(d: Array, beta: Any, *, xp: ModuleType) -> Array:
    """Smooth L1 (Huber / beta) of ``d``: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; |d| at beta = 0.

    ``beta`` a number or a traced 0-d array (which must then be positive)."""
    ad = xp.abs(d)
    if isinstance(beta, int | float) and beta == 0:
        return ad
    return xp.where(ad < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)
