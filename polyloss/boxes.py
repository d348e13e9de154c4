"""Box formats, areas, pairwise IoU and the IoU-family regression losses.

Boxes are arrays of shape ``(..., 4)`` in one of three formats (``box_format``):
``"xyxy"`` (corners x1, y1, x2, y2, the default), ``"xywh"`` (top-left corner,
width, height) or ``"cxcywh"`` (centre, width, height). Every function is
batched over leading axes. The losses work on the four corner coordinates,
unstacked, so no ``(..., 4)`` intermediate is built twice.
"""

from __future__ import annotations

import math
from types import ModuleType

from . import _checks as checks
from ._reduce import promote, reduce_loss, restore
from ._xp import Array, array_namespace, clip, stop_gradient, unstack

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "ciou_loss",
    "diou_loss",
    "eiou_loss",
    "giou_loss",
    "iou_loss",
]

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
        return unstack(boxes, axis=-1, xp=xp)
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


def box_convert(boxes: Array, /, *, in_fmt: str, out_fmt: str) -> Array:
    r"""Convert boxes ``(..., 4)`` between ``"xyxy"``, ``"xywh"`` and ``"cxcywh"``.

    xyxy -> cxcywh: ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1);
    cxcywh -> xyxy: (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).

    Peers: ``torchvision.ops.box_convert(boxes, in_fmt, out_fmt)``, same
    arithmetic (conversions between xywh and cxcywh pass through xyxy).
    """
    fn = "box_convert"
    xp = array_namespace(boxes)
    checks.check_boxes(fn, "boxes", boxes, xp=xp)
    checks.check_box_format(fn, "in_fmt", in_fmt)
    checks.check_box_format(fn, "out_fmt", out_fmt)
    if in_fmt == out_fmt:
        return xp.asarray(boxes, copy=True)
    x1, y1, x2, y2 = corners(boxes, in_fmt, xp=xp)
    if out_fmt == "xyxy":
        return xp.stack((x1, y1, x2, y2), axis=-1)
    if out_fmt == "xywh":
        return xp.stack((x1, y1, x2 - x1, y2 - y1), axis=-1)
    return xp.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), axis=-1)


def box_area(boxes: Array, /, *, box_format: str = "xyxy") -> Array:
    r"""Area of each box, shape ``boxes.shape[:-1]``: (x2 - x1)(y2 - y1), or w h.

    Peers: ``torchvision.ops.box_area(boxes, fmt=box_format)``.
    """
    fn = "box_area"
    xp = array_namespace(boxes)
    checks.check_boxes(fn, "boxes", boxes, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    if box_format == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def pairwise_iou(a: Corners, b: Corners, /, *, xp: ModuleType) -> Array:
    """IoU of every pair; ``a`` has a trailing singleton axis, ``b`` a second-to-last one."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    w = clip(xp.minimum(ax2, bx2) - xp.maximum(ax1, bx1), 0, None, xp=xp)
    h = clip(xp.minimum(ay2, by2) - xp.maximum(ay1, by1), 0, None, xp=xp)
    inter = w * h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / clip(union, xp.finfo(union.dtype).smallest_normal, None, xp=xp)  # 0 where the union is empty


def box_iou(boxes1: Array, boxes2: Array, /, *, box_format: str = "xyxy") -> Array:
    r"""Pairwise IoU = |A ∩ B| / |A ∪ B| of ``boxes1`` (..., N, 4) and ``boxes2`` (..., M, 4): (..., N, M).

    Leading axes broadcast. A pair whose union is empty (two zero-area boxes)
    gets IoU 0 where torchvision gives NaN; elsewhere this equals
    ``torchvision.ops.box_iou(boxes1, boxes2, fmt=box_format)``.
    """
    fn = "box_iou"
    xp = array_namespace(boxes1, boxes2)
    checks.check_boxes(fn, "boxes1", boxes1, xp=xp)
    checks.check_boxes(fn, "boxes2", boxes2, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    if boxes1.ndim < 2 or boxes2.ndim < 2:
        raise ValueError(
            f"box_iou: boxes1 and boxes2 must have shape (..., N, 4) and (..., M, 4), "
            f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    a = tuple(v[..., :, None] for v in corners(boxes1, box_format, xp=xp))
    b = tuple(v[..., None, :] for v in corners(boxes2, box_format, xp=xp))
    return pairwise_iou(a, b, xp=xp)


# --------------------------------------------------------------------------- #
# IoU-family losses, elementwise over matching boxes
# --------------------------------------------------------------------------- #


class _Pair:
    """Two sets of matching boxes as corners in the compute dtype, with their IoU terms."""

    def __init__(self, fn: str, y_pred: Array, y_true: Array, box_format: str, reduction: str, eps: float) -> None:
        xp = array_namespace(y_pred, y_true)
        checks.check_boxes(fn, "y_pred", y_pred, xp=xp)
        checks.check_boxes(fn, "y_true", y_true, xp=xp)
        checks.check_same_shape(fn, y_pred, y_true)
        checks.check_box_format(fn, "box_format", box_format)
        checks.check_reduction(fn, reduction)
        checks.check_nonnegative(fn, "eps", eps)
        p = promote(y_pred, xp=xp)
        t = y_true if y_true.dtype == p.dtype else xp.astype(y_true, p.dtype)
        self.xp, self.dtype, self.eps, self.reduction = xp, y_pred.dtype, eps, reduction
        self.p = corners(p, box_format, xp=xp)
        self.t = corners(t, box_format, xp=xp)
        x1, y1, x2, y2 = self.p
        x1g, y1g, x2g, y2g = self.t
        iw = xp.minimum(x2, x2g) - xp.maximum(x1, x1g)
        ih = xp.minimum(y2, y2g) - xp.maximum(y1, y1g)
        inter = xp.where((iw > 0) & (ih > 0), iw * ih, 0)
        self.union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
        self.iou = inter / (self.union + eps)
        # the smallest enclosing box
        self.cw = xp.maximum(x2, x2g) - xp.minimum(x1, x1g)
        self.ch = xp.maximum(y2, y2g) - xp.minimum(y1, y1g)

    def centre_distance2(self) -> Array:
        """rho^2 between the centres, divided by the squared enclosing diagonal c^2 + eps."""
        x1, y1, x2, y2 = self.p
        x1g, y1g, x2g, y2g = self.t
        dx = (x2 + x1) / 2 - (x1g + x2g) / 2
        dy = (y2 + y1) / 2 - (y1g + y2g) / 2
        return (dx**2 + dy**2) / (self.cw**2 + self.ch**2 + self.eps)

    def done(self, loss: Array) -> Array:
        return restore(reduce_loss(loss, reduction=self.reduction, xp=self.xp), self.dtype, xp=self.xp)


def iou_loss(
    y_pred: Array, y_true: Array, /, *, box_format: str = "xyxy", eps: float = 1e-7, reduction: str = "mean"
) -> Array:
    r"""IoU loss, elementwise over matching boxes ``(..., 4)``: 1 - IoU.

    IoU = |A ∩ B| / (|A ∪ B| + eps). ``"none"`` returns shape ``y_pred.shape[:-1]``.
    (Yu et al. 2016 use -ln IoU; this is the linear form used by GIoU, DIoU and CIoU.)
    """
    pair = _Pair("iou_loss", y_pred, y_true, box_format, reduction, eps)
    return pair.done(1 - pair.iou)


def giou_loss(
    y_pred: Array, y_true: Array, /, *, box_format: str = "xyxy", eps: float = 1e-7, reduction: str = "mean"
) -> Array:
    r"""Generalized IoU loss (Rezatofighi et al. 2019), elementwise: 1 - IoU + (|C| - |A ∪ B|) / (|C| + eps).

    C is the smallest box enclosing both. Peers: equals
    ``torchvision.ops.generalized_box_iou_loss(y_pred, y_true, reduction, eps)``
    (whose default reduction is ``"none"``).
    """
    pair = _Pair("giou_loss", y_pred, y_true, box_format, reduction, eps)
    area_c = pair.cw * pair.ch
    return pair.done(1 - pair.iou + (area_c - pair.union) / (area_c + eps))


def diou_loss(
    y_pred: Array, y_true: Array, /, *, box_format: str = "xyxy", eps: float = 1e-7, reduction: str = "mean"
) -> Array:
    r"""Distance IoU loss (Zheng et al. 2020), elementwise: 1 - IoU + rho^2(b, b_gt) / (c^2 + eps).

    rho is the distance between the box centres, c the diagonal of the
    smallest enclosing box. Peers: equals ``torchvision.ops.distance_box_iou_loss``.
    """
    pair = _Pair("diou_loss", y_pred, y_true, box_format, reduction, eps)
    return pair.done(1 - pair.iou + pair.centre_distance2())


def _aspect(w: Array, h: Array, eps: float, *, xp: ModuleType) -> Array:
    """atan(w / h), with h clipped below at eps so zero-height boxes stay finite."""
    return xp.atan(w / clip(h, max(eps, xp.finfo(h.dtype).smallest_normal), None, xp=xp))


def ciou_loss(
    y_pred: Array, y_true: Array, /, *, box_format: str = "xyxy", eps: float = 1e-7, reduction: str = "mean"
) -> Array:
    r"""Complete IoU loss (Zheng et al. 2020), elementwise: DIoU loss + alpha v.

    v = 4 / pi^2 (atan(w_gt / h_gt) - atan(w / h))^2, alpha = v / (1 - IoU + v + eps),
    alpha held constant in the gradient and not gated on IoU >= 0.5.

    Peers: equals ``torchvision.ops.complete_box_iou_loss`` (which always uses
    eps=1e-7 in its DIoU term, so they agree at the default ``eps``).
    Heights below ``eps`` are clipped to ``eps`` inside the atan (torchvision
    divides by zero there).
    """
    pair = _Pair("ciou_loss", y_pred, y_true, box_format, reduction, eps)
    xp = pair.xp
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    v = (4 / math.pi**2) * (_aspect(x2g - x1g, y2g - y1g, eps, xp=xp) - _aspect(x2 - x1, y2 - y1, eps, xp=xp)) ** 2
    alpha = stop_gradient(v / (1 - pair.iou + v + eps), xp=xp)
    return pair.done(1 - pair.iou + pair.centre_distance2() + alpha * v)


def eiou_loss(
    y_pred: Array, y_true: Array, /, *, box_format: str = "xyxy", eps: float = 1e-7, reduction: str = "mean"
) -> Array:
    r"""Efficient IoU loss (Zhang et al. 2022, "Focal and Efficient IOU Loss"), elementwise.

    L = 1 - IoU + rho^2(b, b_gt) / (c^2 + eps) + (w - w_gt)^2 / (C_w^2 + eps) + (h - h_gt)^2 / (C_h^2 + eps)

    C_w, C_h are the width and height of the smallest enclosing box and c its
    diagonal. This is the paper's formula; mmdet's ``EIoULoss`` is a different
    loss (Extended-IoU, Peng & Yu 2021: a smoothed 1 - IoU).
    """
    pair = _Pair("eiou_loss", y_pred, y_true, box_format, reduction, eps)
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    dw = (x2 - x1) - (x2g - x1g)
    dh = (y2 - y1) - (y2g - y1g)
    loss = 1 - pair.iou + pair.centre_distance2() + dw**2 / (pair.cw**2 + eps) + dh**2 / (pair.ch**2 + eps)
    return pair.done(loss)
