"""Box formats, areas, pairwise IoU and the IoU-family regression losses.

Boxes are arrays of shape ``(..., 4)`` in one of three formats (``box_format``):
``"xyxy"`` (corners x1, y1, x2, y2, the default), ``"xywh"`` (top-left corner,
width, height) or ``"cxcywh"`` (centre, width, height). Every function is
batched over leading axes. The losses work on the four corner coordinates,
unstacked, so no ``(..., 4)`` intermediate is built twice. ``inner_ratio``
gives each IoU-family loss its Inner-IoU form (Zhang et al., Inner-IoU: More
Effective Intersection over Union Loss with Auxiliary Bounding Box, 2023,
https://arxiv.org/abs/2311.02877). The newer variants (SIoU, MPDIoU,
Wise-IoU, NWD) are in ``box_variants``.
"""

from __future__ import annotations

from .._backend import Array
from .._core import checks
from .._core.inputs import namespace
from .._core.typing import BoxFormat, Reduction, RotatedBoxFormat
from ._box_ops import LossPair, corners, pairwise_iou
from ._rotated_ops import ROTATED_FORMATS, rotated_box_convert

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

def box_convert(
    boxes: Array, /, *, in_fmt: BoxFormat | RotatedBoxFormat, out_fmt: BoxFormat | RotatedBoxFormat
) -> Array:
    r"""Convert boxes ``(..., 4)`` between the ``"xyxy"``, ``"xywh"`` and ``"cxcywh"`` formats.

    xyxy -> cxcywh: ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1);
    cxcywh -> xyxy: (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).

    Rotated boxes ``(..., 5)`` convert between ``"cxcywhr"`` and ``"xywhr"``
    (angle in radians; the convention is in ``polyloss.rotated``).

    Args:
        boxes: floating array ``(..., 4)``, one box per row, or ``(..., 5)``
            for the rotated formats.
        in_fmt: the format of ``boxes``: ``"xyxy"`` (corners), ``"xywh"``
            (top-left corner, width, height) or ``"cxcywh"`` (centre, size);
            or a rotated format, ``"cxcywhr"`` or ``"xywhr"`` (rotated
            formats convert only among themselves).
        out_fmt: the format wanted, one of the same three.

    Returns:
        ``boxes`` in ``out_fmt``, same shape, dtype and device (a copy when
        the formats agree).

    Raises:
        ValueError: a last axis other than 4, an unknown format.
        TypeError: non-floating ``boxes``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> pl.box_convert(np.array([[1.0, 2.0, 5.0, 4.0]]), in_fmt="xyxy", out_fmt="cxcywh").tolist()
        [[3.0, 3.0, 4.0, 2.0]]

    References:
        Peer: ``torchvision.ops.box_convert(boxes, in_fmt, out_fmt)``, same
        arithmetic (conversions between xywh and cxcywh pass through xyxy).
        https://pytorch.org/vision/stable/generated/torchvision.ops.box_convert.html
    """
    fn = "box_convert"
    if in_fmt in ROTATED_FORMATS or out_fmt in ROTATED_FORMATS:
        return rotated_box_convert(fn, boxes, in_fmt, out_fmt)
    xp = namespace(fn, boxes=boxes)
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


def box_area(boxes: Array, /, *, box_format: BoxFormat = "xyxy") -> Array:
    r"""Area of each box: (x2 - x1)(y2 - y1), or w h.

    Args:
        boxes: floating array ``(..., 4)``.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.

    Returns:
        The areas, shape ``boxes.shape[:-1]``, ``boxes``' dtype (negative for
        an inverted xyxy box, as torchvision).

    Raises:
        ValueError: a last axis other than 4, an unknown format.
        TypeError: non-floating ``boxes``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> pl.box_area(np.array([[1.0, 2.0, 5.0, 4.0], [0.0, 0.0, 1.0, 1.0]])).tolist()
        [8.0, 1.0]

    References:
        Peer: ``torchvision.ops.box_area(boxes)``.
        https://pytorch.org/vision/stable/generated/torchvision.ops.box_area.html
    """
    fn = "box_area"
    xp = namespace(fn, boxes=boxes)
    checks.check_boxes(fn, "boxes", boxes, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    if box_format == "xyxy":
        return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    return boxes[..., 2] * boxes[..., 3]


def box_iou(boxes1: Array, boxes2: Array, /, *, box_format: BoxFormat = "xyxy") -> Array:
    r"""Pairwise IoU = |A ∩ B| / |A ∪ B| of every box of ``boxes1`` with every box of ``boxes2``.

    A pair whose union is empty (two zero-area boxes) gets IoU 0 where
    torchvision gives NaN; elsewhere this equals torchvision's ``box_iou``.

    Args:
        boxes1: floating array ``(..., N, 4)``.
        boxes2: floating array ``(..., M, 4)``; leading axes broadcast.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.

    Returns:
        The IoU matrix ``(..., N, M)`` in the inputs' dtype.

    Raises:
        ValueError: fewer than 2 axes, a last axis other than 4, an unknown format.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.array([[0.0, 0.0, 2.0, 2.0]]); b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 1.0]])
        >>> np.round(pl.box_iou(a, b), 4).tolist()
        [[0.1429, 0.5]]

    References:
        Peer: ``torchvision.ops.box_iou(boxes1, boxes2)``.
        https://pytorch.org/vision/stable/generated/torchvision.ops.box_iou.html
    """
    fn = "box_iou"
    xp = namespace(fn, boxes1=boxes1, boxes2=boxes2)
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


def iou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    """IoU loss, elementwise over matching boxes: 1 - IoU.

    L = 1 - |A ∩ B| / (|A ∪ B| + eps)

    (Yu et al. 2016 use -ln IoU; this is the linear form used by GIoU, DIoU and CIoU.)

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: Inner-IoU (Zhang et al.
            2023), the IoU term computed on auxiliary boxes, both boxes scaled
            about their centres by this ratio (< 1 for high-IoU samples, > 1 for
            low ones); every other term is left as it is.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.iou_loss(p, t)), 4)
        0.8571

    References:
        Yu et al., UnitBox: An advanced object detection network, ACM MM 2016.
        https://arxiv.org/abs/1608.01471
    """
    pair = LossPair("iou_loss", y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps,
                    inner_ratio=inner_ratio)
    return pair.done(1 - pair.overlap)


def giou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    """Generalized IoU loss (Rezatofighi et al. 2019), elementwise over matching boxes.

    L = 1 - IoU + (|C| - |A ∪ B|) / (|C| + eps), C the smallest box enclosing both.

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: Inner-IoU (Zhang et al.
            2023), the IoU term computed on auxiliary boxes, both boxes scaled
            about their centres by this ratio (< 1 for high-IoU samples, > 1 for
            low ones); every other term is left as it is.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.giou_loss(p, t)), 4)
        1.0794

    References:
        Rezatofighi et al., Generalized intersection over union, CVPR 2019.
        https://arxiv.org/abs/1902.09630
        Peer: ``torchvision.ops.generalized_box_iou_loss`` (default reduction ``"none"``).
    """
    pair = LossPair("giou_loss", y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps,
                    inner_ratio=inner_ratio)
    eps = pair.eps
    area_c = pair.cw * pair.ch
    return pair.done(1 - pair.overlap + (area_c - pair.union) / (area_c + eps))


def diou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    """Distance IoU loss (Zheng et al. 2020), elementwise over matching boxes.

    L = 1 - IoU + rho^2(b, b_gt) / (c^2 + eps)

    rho is the distance between the box centres, c the diagonal of the
    smallest enclosing box.

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: Inner-IoU (Zhang et al.
            2023), the IoU term computed on auxiliary boxes, both boxes scaled
            about their centres by this ratio (< 1 for high-IoU samples, > 1 for
            low ones); every other term is left as it is.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.diou_loss(p, t)), 4)
        0.9683

    References:
        Zheng et al., Distance-IoU loss, AAAI 2020. https://arxiv.org/abs/1911.08287
        Peer: ``torchvision.ops.distance_box_iou_loss``.
    """
    pair = LossPair("diou_loss", y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps,
                    inner_ratio=inner_ratio)
    return pair.done(1 - pair.overlap + pair.centre_distance2())


def ciou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    """Complete IoU loss (Zheng et al. 2020), elementwise over matching boxes: DIoU loss + alpha v.

    v = 4 / pi^2 (atan(w_gt / h_gt) - atan(w / h))^2,  alpha = v / (1 - IoU + v + eps)

    alpha is held constant in the gradient and not gated on IoU >= 0.5; it
    takes the boxes' own IoU also with ``inner_ratio``.
    Heights below ``eps`` are clipped to ``eps`` inside the atan
    (torchvision divides by zero there).

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: Inner-IoU (Zhang et al.
            2023), the IoU term computed on auxiliary boxes, both boxes scaled
            about their centres by this ratio (< 1 for high-IoU samples, > 1 for
            low ones); every other term is left as it is.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.ciou_loss(p, t)), 4)
        0.9683

    References:
        Zheng et al., Distance-IoU loss, AAAI 2020. https://arxiv.org/abs/1911.08287
        Peer: ``torchvision.ops.complete_box_iou_loss`` (which always uses
        eps=1e-7 in its DIoU term, so they agree at the default ``eps``).
    """
    pair = LossPair("ciou_loss", y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps,
                    inner_ratio=inner_ratio)
    return pair.done(pair.ciou())


def eiou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    """Efficient IoU loss (Zhang et al. 2022, "Focal and Efficient IOU Loss"), elementwise.

    L = 1 - IoU + rho^2 / (c^2 + eps) + (w - w_gt)^2 / (C_w^2 + eps) + (h - h_gt)^2 / (C_h^2 + eps)

    C_w, C_h are the width and height of the smallest enclosing box and c its
    diagonal. This is the paper's formula; mmdet's ``EIoULoss`` is a different
    loss (Extended-IoU, Peng & Yu 2021: a smoothed 1 - IoU).

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: Inner-IoU (Zhang et al.
            2023), the IoU term computed on auxiliary boxes, both boxes scaled
            about their centres by this ratio (< 1 for high-IoU samples, > 1 for
            low ones); every other term is left as it is.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.eiou_loss(p, t)), 4)
        0.9683

    References:
        Zhang et al., Focal and efficient IOU loss for accurate bounding box
        regression, Neurocomputing 2022. https://arxiv.org/abs/2101.08158
    """
    pair = LossPair("eiou_loss", y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps,
                    inner_ratio=inner_ratio)
    eps = pair.eps
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    dw = (x2 - x1) - (x2g - x1g)
    dh = (y2 - y1) - (y2g - y1g)
    loss = 1 - pair.overlap + pair.centre_distance2() + dw**2 / (pair.cw**2 + eps) + dh**2 / (pair.ch**2 + eps)
    return pair.done(loss)
