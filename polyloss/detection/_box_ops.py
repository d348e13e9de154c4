"""Box algebra shared by the box families: format conversion, pairwise IoU, the IoU-family terms, smooth L1.

Private kernels: no validation (the public function that calls them has done
it), the namespace passed as ``xp=``.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from .._backend import Array, clip, device, stop_gradient, unstack
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import promote, reduce_loss, restore

Corners = tuple[Array, Array, Array, Array]


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
    inter, union = inter_union(a, b, xp=xp)
    return inter / xp.maximum(union, tiny_like(union, xp=xp))


def inter_union(a: Corners, b: Corners, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """Intersection and union areas of the boxes ``a`` and ``b`` (corners that broadcast against each other)."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    zero = xp.zeros((), dtype=ax1.dtype, device=device(ax1))
    w = xp.maximum(xp.minimum(ax2, bx2) - xp.maximum(ax1, bx1), zero)
    h = xp.maximum(xp.minimum(ay2, by2) - xp.maximum(ay1, by1), zero)
    inter = w * h
    return inter, ((ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)) - inter


def tiny_like(x: Array, /, *, xp: ModuleType) -> Array:
    """The smallest normal number of ``x``'s dtype as a 0-d array on its device (a floor for denominators)."""
    return xp.asarray(xp.finfo(x.dtype).smallest_normal, dtype=x.dtype, device=device(x))


def smooth_l1(d: Array, beta: Any, *, xp: ModuleType) -> Array:
    """Smooth L1 (Huber / beta) of ``d``: 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; |d| at beta = 0.

    ``beta`` a number or a traced 0-d array (which must then be positive)."""
    ad = xp.abs(d)
    if isinstance(beta, (int, float)) and beta == 0:
        return ad
    return xp.where(ad < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)


def scaled_about_centre(c: Corners, ratio: float, /) -> Corners:
    """The boxes ``c`` scaled by ``ratio`` about their centres (Inner-IoU's auxiliary boxes)."""
    x1, y1, x2, y2 = c
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * (ratio / 2), (y2 - y1) * (ratio / 2)
    return cx - hw, cy - hh, cx + hw, cy + hh


def elementwise_iou(p: Corners, t: Corners, eps: float, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(IoU, union)`` of matching boxes, IoU = |A ∩ B| / (|A ∪ B| + eps)."""
    x1, y1, x2, y2 = p
    x1g, y1g, x2g, y2g = t
    iw = xp.minimum(x2, x2g) - xp.maximum(x1, x1g)
    ih = xp.minimum(y2, y2g) - xp.maximum(y1, y1g)
    inter = xp.where((iw > 0) & (ih > 0), iw * ih, 0)
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
    return inter / (union + eps), union


class BoxPair:
    """Matching boxes (corners in the compute dtype) and the terms the IoU-family losses share.

    ``iou`` and ``union`` are the boxes' own; ``overlap`` is the IoU term of
    the loss: ``iou``, or with ``inner_ratio`` the IoU of the boxes scaled
    about their centres (Inner-IoU). ``cw``, ``ch``: the smallest enclosing box.
    """

    def __init__(self, p: Corners, t: Corners, /, *, eps: float, inner_ratio: float | None, xp: ModuleType) -> None:
        self.xp, self.p, self.t, self.eps = xp, p, t, eps
        self.iou, self.union = elementwise_iou(p, t, eps, xp=xp)
        self.overlap = self.iou
        if inner_ratio is not None:
            inner_p, inner_t = scaled_about_centre(p, inner_ratio), scaled_about_centre(t, inner_ratio)
            self.overlap = elementwise_iou(inner_p, inner_t, eps, xp=xp)[0]
        x1, y1, x2, y2 = p
        x1g, y1g, x2g, y2g = t
        self.cw = xp.maximum(x2, x2g) - xp.minimum(x1, x1g)
        self.ch = xp.maximum(y2, y2g) - xp.minimum(y1, y1g)

    def centre_offset(self) -> tuple[Array, Array]:
        """The centre of the prediction minus the centre of the target, (dx, dy)."""
        x1, y1, x2, y2 = self.p
        x1g, y1g, x2g, y2g = self.t
        return (x2 + x1) / 2 - (x1g + x2g) / 2, (y2 + y1) / 2 - (y1g + y2g) / 2

    def centre_distance2(self) -> Array:
        """rho^2 between the centres, divided by the squared enclosing diagonal c^2 + eps."""
        dx, dy = self.centre_offset()
        return (dx**2 + dy**2) / (self.cw**2 + self.ch**2 + self.eps)

    def ciou(self) -> Array:
        """The CIoU loss 1 - overlap + rho^2 / c^2 + alpha v, alpha = v / (1 - IoU + v + eps) held constant."""
        xp, eps = self.xp, self.eps
        x1, y1, x2, y2 = self.p
        x1g, y1g, x2g, y2g = self.t
        v = (4 / math.pi**2) * (_aspect(x2g - x1g, y2g - y1g, eps, xp=xp) - _aspect(x2 - x1, y2 - y1, eps, xp=xp)) ** 2
        alpha = stop_gradient(v / (1 - self.iou + v + eps), xp=xp)
        return 1 - self.overlap + self.centre_distance2() + alpha * v


def check_ratio(fn: str, name: str, value: Any) -> float | None:
    """An optional positive real option (``inner_ratio``) as a Python float."""
    if value is None:
        return None
    if isinstance(value, bool) or not float(value) > 0:
        raise ValueError(f"{fn}: {name} must be None or a real > 0, got {value!r}")
    return float(value)


class LossPair(BoxPair):
    """The ``BoxPair`` of a public loss's inputs, validated and promoted; ``done`` reduces and casts back."""

    def __init__(self, fn: str, y_pred: Array, y_true: Array, /, *, box_format: str, reduction: str, eps: float,
                 inner_ratio: float | None) -> None:
        xp = namespace(fn, y_pred=y_pred, y_true=y_true)
        checks.check_boxes(fn, "y_pred", y_pred, xp=xp)
        checks.check_boxes(fn, "y_true", y_true, xp=xp)
        checks.check_same_shape(fn, y_pred, y_true)
        checks.check_box_format(fn, "box_format", box_format)
        checks.check_reduction(fn, reduction)
        eps = checks.check_nonnegative(fn, "eps", eps)
        ratio = check_ratio(fn, "inner_ratio", inner_ratio)
        p = promote(y_pred, xp=xp)
        t = y_true if y_true.dtype == p.dtype else xp.astype(y_true, p.dtype)
        self.dtype, self.reduction = y_pred.dtype, reduction
        super().__init__(corners(p, box_format, xp=xp), corners(t, box_format, xp=xp), eps=float(eps),
                         inner_ratio=ratio, xp=xp)

    def done(self, loss: Array) -> Array:
        """``loss`` reduced as asked, in the input dtype."""
        return restore(reduce_loss(loss, reduction=self.reduction, xp=self.xp), self.dtype, xp=self.xp)


def _aspect(w: Array, h: Array, eps: float, *, xp: ModuleType) -> Array:
    """atan(w / h), with h clipped below at eps so zero-height boxes stay finite."""
    return xp.atan(w / clip(h, max(eps, xp.finfo(h.dtype).smallest_normal), None, xp=xp))
