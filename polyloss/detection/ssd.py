"""Detection: the Smooth L1 family, SSD prior encoding, matching, hard negative mining, MultiBox.

Everything is batched with fixed shapes: ground truth is padded to ``G`` boxes
per image with a validity mask, so matching, mining and the MultiBox loss run
without Python loops over images and compile under ``jax.jit`` and
``torch.compile(fullgraph=True)``.

Label convention: class 0 is background; ground-truth labels are in ``[1, C)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Literal

from .._backend import Array, take_along_axis
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import promote, reduce_loss, restore, safe_divide
from .._core.typing import BoxFormat, Reduction
from . import _ssd as ssd
from ._box_ops import centre_size, smooth_l1

__all__ = [
    "balanced_l1_loss",
    "decode_boxes",
    "encode_boxes",
    "hard_negative_mining",
    "huber_loss",
    "match_priors",
    "multibox_loss",
    "smooth_l1_loss",
]


# --------------------------------------------------------------------------- #
# Elementwise regression losses
# --------------------------------------------------------------------------- #


def _regression_inputs(fn: str, y_pred: Array, y_true: Array, reduction: str) -> tuple[Array, ModuleType]:
    """``y_pred - y_true`` in the compute dtype, after the shared checks."""
    xp = namespace(fn, y_pred=y_pred, y_true=y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_floating(fn, "y_true", y_true, xp=xp)
    checks.check_same_shape(fn, y_pred, y_true)
    checks.check_reduction(fn, reduction)
    x = promote(y_pred, xp=xp)
    t = y_true if y_true.dtype == x.dtype else xp.astype(y_true, x.dtype)
    return x - t, xp


def smooth_l1_loss(y_pred: Array, y_true: Array, /, *, beta: float = 1.0, reduction: Reduction = "mean") -> Array:
    """Smooth L1 loss (Girshick 2015), elementwise on d = y_pred - y_true.

    l = 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta;  ``beta=0`` gives |d|.

    Args:
        y_pred: predictions, any floating shape.
        y_true: targets of ``y_pred``'s shape.
        beta: the width of the quadratic zone, >= 0; default 1.
        reduction: ``"mean"`` (default) or ``"sum"`` over every element, or
            ``"none"``. An empty input gives 0 (zero gradient) for ``"mean"``/``"sum"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred``'s shape for ``"none"``,
        in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ, an unknown ``reduction``, a negative ``beta``.
        TypeError: non-floating inputs.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> round(float(pl.smooth_l1_loss(np.array([0.5, 3.0]), np.zeros(2))), 4)
        1.3125

    References:
        Girshick, Fast R-CNN, ICCV 2015. https://arxiv.org/abs/1504.08083
        Peer: ``torch.nn.functional.smooth_l1_loss(y_pred, y_true, beta=beta)``.
    """
    fn = "smooth_l1_loss"
    beta = checks.check_nonnegative(fn, "beta", beta)
    d, xp = _regression_inputs(fn, y_pred, y_true, reduction)
    return restore(reduce_loss(smooth_l1(d, beta, xp=xp), reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


def huber_loss(y_pred: Array, y_true: Array, /, *, delta: float = 1.0, reduction: Reduction = "mean") -> Array:
    """Huber loss (Huber 1964), elementwise on d = y_pred - y_true.

    l = 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta), i.e. delta times
    ``smooth_l1_loss`` with ``beta=delta``.

    Args:
        y_pred: predictions, any floating shape.
        y_true: targets of ``y_pred``'s shape.
        delta: the threshold between the quadratic and linear zones, > 0; default 1.
        reduction: ``"mean"`` (default) or ``"sum"`` over every element, or
            ``"none"``. An empty input gives 0 (zero gradient) for ``"mean"``/``"sum"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred``'s shape for ``"none"``,
        in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ, an unknown ``reduction``, ``delta <= 0``.
        TypeError: non-floating inputs.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> round(float(pl.huber_loss(np.array([0.5, 3.0]), np.zeros(2))), 4)
        1.3125

    References:
        Huber, Robust estimation of a location parameter, Ann. Math. Statist.
        1964. https://doi.org/10.1214/aoms/1177703732
        Peers: ``torch.nn.functional.huber_loss(y_pred, y_true, delta=delta)``,
        ``optax.huber_loss`` (``reduction="none"``).
    """
    fn = "huber_loss"
    if not delta > 0:
        raise ValueError(f"{fn}: delta must be > 0, got {delta!r}")
    d, xp = _regression_inputs(fn, y_pred, y_true, reduction)
    loss = delta * smooth_l1(d, delta, xp=xp)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


def balanced_l1_loss(y_pred: Array, y_true: Array, /, *, alpha: float = 0.5, gamma: float = 1.5, beta: float = 1.0,
                     reduction: Reduction = "mean") -> Array:
    """Balanced L1 loss (Pang et al. 2019, Libra R-CNN), elementwise on x = |y_pred - y_true|.

    l = alpha / b (b x + 1) ln(b x / beta + 1) - alpha x   if x < beta
    l = gamma x + gamma / b - alpha beta                   otherwise,   b = e^(gamma / alpha) - 1

    The constant makes l continuous at x = beta; at ``beta=1`` this is the
    paper's formula.

    Args:
        y_pred: predictions, any floating shape.
        y_true: targets of ``y_pred``'s shape.
        alpha: the gradient boost of inliers, > 0; default 0.5.
        gamma: the bound of the gradient of outliers, > 0; default 1.5.
        beta: the inlier/outlier threshold, > 0; default 1.
        reduction: ``"mean"`` (default) or ``"sum"`` over every element, or
            ``"none"``. An empty input gives 0 (zero gradient) for ``"mean"``/``"sum"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred``'s shape for ``"none"``,
        in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ, an unknown ``reduction``, ``alpha``, ``gamma`` or ``beta`` <= 0.
        TypeError: non-floating inputs.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> round(float(pl.balanced_l1_loss(np.array([0.5, 3.0]), np.zeros(2))), 4)
        2.2396

    References:
        Pang et al., Libra R-CNN: Towards balanced learning for object
        detection, CVPR 2019. https://arxiv.org/abs/1904.02701
        Peer: mmdet's ``balanced_l1_loss`` with the same ``alpha``, ``gamma``, ``beta``.
    """
    fn = "balanced_l1_loss"
    alpha, gamma, beta = (checks.check_real(fn, name, v) for name, v in (("alpha", alpha), ("gamma", gamma),
                                                                           ("beta", beta)))
    for name, value in (("alpha", alpha), ("gamma", gamma), ("beta", beta)):
        if not value > 0:
            raise ValueError(f"{fn}: {name} must be > 0, got {value!r}")
    d, xp = _regression_inputs(fn, y_pred, y_true, reduction)
    x = xp.abs(d)
    b = math.exp(gamma / alpha) - 1
    inner = (alpha / b) * (b * x + 1) * xp.log1p((b / beta) * x) - alpha * x
    loss = xp.where(x < beta, inner, gamma * x + (gamma / b - alpha * beta))
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# SSD: prior offsets, matching, hard negative mining, MultiBox
# --------------------------------------------------------------------------- #


def encode_boxes(boxes: Array, priors: Array, /, *, variances: Sequence[float] = (0.1, 0.2),
                 box_format: BoxFormat = "xyxy", prior_format: BoxFormat = "cxcywh") -> Array:
    """SSD regression targets of ``boxes`` relative to ``priors`` (Liu et al. 2016).

    t = ((cx - p_cx) / (v0 p_w), (cy - p_cy) / (v0 p_h), ln(w / p_w) / v1, ln(h / p_h) / v1)

    Widths and heights at or below 0 are clipped to the smallest normal number
    before the log, so degenerate boxes give finite (very negative) size
    offsets. ``decode_boxes`` inverts it.

    Args:
        boxes: floating ``(..., 4)`` in ``box_format``.
        priors: floating ``(..., 4)`` in ``prior_format``, one prior per box:
            the leading axes of ``boxes`` and ``priors`` broadcast.
        variances: ``(v0, v1)``, the scales of the centre and size offsets,
            positive; default ``(0.1, 0.2)``.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
        prior_format: the format of ``priors``: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (default).

    Returns:
        The offsets ``(*broadcast, 4)`` in ``boxes``' dtype.

    Raises:
        ValueError: a last axis other than 4, leading axes that do not
            broadcast, an unknown format, bad ``variances``.
        TypeError: non-floating inputs.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> prior = np.array([0.5, 0.5, 0.25, 0.25])
        >>> np.round(pl.encode_boxes(np.array([0.5, 0.25, 1.0, 0.75]), prior), 4).tolist()  # ln 2 / 0.2
        [10.0, 0.0, 3.4657, 3.4657]

    References:
        Liu et al., SSD: Single shot multibox detector, ECCV 2016.
        https://arxiv.org/abs/1512.02325
        Peer: ssd.pytorch's ``encode`` (boxes xyxy, priors cxcywh, variances (0.1, 0.2)).
    """
    xp = namespace("encode_boxes", boxes=boxes, priors=priors)
    v = ssd.check_offset_inputs("encode_boxes", "boxes", boxes, priors, box_format, prior_format, variances, xp=xp)
    b = promote(boxes, xp=xp)
    p = priors if priors.dtype == b.dtype else xp.astype(priors, b.dtype)
    offsets = ssd.encode(centre_size(b, box_format, xp=xp), centre_size(p, prior_format, xp=xp), v, xp=xp)
    return restore(offsets, boxes.dtype, xp=xp)


def decode_boxes(offsets: Array, priors: Array, /, *, variances: Sequence[float] = (0.1, 0.2),
                 box_format: BoxFormat = "xyxy", prior_format: BoxFormat = "cxcywh") -> Array:
    """Boxes (in ``box_format``) from SSD offsets relative to ``priors``: the inverse of ``encode_boxes``.

    cx = p_cx + t0 v0 p_w, cy = p_cy + t1 v0 p_h, w = p_w exp(t2 v1), h = p_h exp(t3 v1)

    Args:
        offsets: floating ``(..., 4)``, as ``encode_boxes`` returns.
        priors: floating ``(..., 4)`` in ``prior_format``, broadcasting
            against ``offsets``' leading axes.
        variances: ``(v0, v1)``, the scales of the centre and size offsets,
            positive; default ``(0.1, 0.2)``.
        box_format: the format of the result: ``"xyxy"`` (default), ``"xywh"``
            or ``"cxcywh"``.
        prior_format: the format of ``priors``: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (default).

    Returns:
        The boxes ``(*broadcast, 4)`` in ``offsets``' dtype.

    Raises:
        ValueError: as ``encode_boxes``.
        TypeError: non-floating inputs.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> prior = np.array([0.5, 0.5, 0.25, 0.25])
        >>> pl.decode_boxes(np.array([10.0, 0.0, 0.0, 0.0]), prior).tolist()
        [0.625, 0.375, 0.875, 0.625]

    References:
        Liu et al., SSD: Single shot multibox detector, ECCV 2016.
        https://arxiv.org/abs/1512.02325
    """
    xp = namespace("decode_boxes", offsets=offsets, priors=priors)
    v = ssd.check_offset_inputs("decode_boxes", "offsets", offsets, priors, box_format, prior_format, variances,
                                xp=xp)
    t = promote(offsets, xp=xp)
    p = priors if priors.dtype == t.dtype else xp.astype(priors, t.dtype)
    return restore(ssd.decode(t, p, v, box_format, prior_format, xp=xp), offsets.dtype, xp=xp)


def match_priors(gt_boxes: Array, gt_labels: Array, gt_valid: Array, priors: Array, /, *, iou_threshold: float = 0.5,
                 box_format: BoxFormat = "xyxy", prior_format: BoxFormat = "cxcywh") -> tuple[Array, Array]:
    """SSD matching of padded ground truth to priors, batched (Liu et al. 2016).

    Each prior takes the valid ground truth of highest IoU and its label if
    that IoU >= ``iou_threshold``, else label 0 (background). Then every valid
    ground truth is forced onto its best prior (positive whatever the IoU).
    Ties, deterministically: a prior's best ground truth and a ground truth's
    best prior are the first maxima (lowest index); when several ground truths
    claim the same prior the one of highest index keeps it (the order of SSD's
    loop). An image with no valid ground truth gets all background. A
    degenerate valid box (width or height <= 0: a point, a line, or inverted
    corners) is treated as padding: it matches nothing and is not forced (its
    offsets would be log 0). Fixed shapes, no loop over images: it compiles
    under ``jax.jit`` and ``torch.compile``.

    Args:
        gt_boxes: floating ``(N, G, 4)`` in ``box_format``, G >= 1 slots per image.
        gt_labels: integer ``(N, G)``; valid boxes carry labels >= 1 (class 0
            is background; below C in ``multibox_loss``), padding any value.
        gt_valid: bool ``(N, G)``, False marks padding.
        priors: floating ``(P, 4)`` in ``prior_format``; P may be 0.
        iou_threshold: in [0, 1]; default 0.5.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
        prior_format: the format of ``priors``: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (default).

    Returns:
        ``(boxes, labels)``: the matched ground truth ``(N, P, 4)`` in
        ``box_format`` and ``gt_boxes``' dtype (meaningful where
        ``labels > 0``), and the labels ``(N, P)`` in ``gt_labels``' dtype.

    Raises:
        ValueError: shapes other than the above, an unknown format, a bad
            ``iou_threshold``, a valid label below 1 (concrete arrays).
        TypeError: non-floating boxes, non-integer labels, a non-bool ``gt_valid``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> priors = np.array([[0.25, 0.5, 0.5, 1.0], [0.75, 0.5, 0.5, 1.0]])
        >>> gt = np.array([[[0.5, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
        >>> _, labels = pl.match_priors(gt, np.array([[3, 0]]), np.array([[True, False]]), priors)
        >>> labels.tolist()
        [[0, 3]]

    References:
        Liu et al., SSD: Single shot multibox detector, ECCV 2016.
        https://arxiv.org/abs/1512.02325
    """
    xp = namespace("match_priors", gt_boxes=gt_boxes, gt_labels=gt_labels, gt_valid=gt_valid, priors=priors)
    iou_threshold = checks.check_real("match_priors", "iou_threshold", iou_threshold)
    gt = ssd.GroundTruth(gt_boxes, gt_labels, gt_valid, priors, box_format, prior_format, iou_threshold)
    ssd.check_ground_truth("match_priors", gt, xp=xp)
    ssd.check_gt_labels("match_priors", gt_labels, gt_valid, None, xp=xp)
    g = promote(gt_boxes, xp=xp)
    p = priors if priors.dtype == g.dtype else xp.astype(priors, g.dtype)
    index, labels = ssd.match(gt._replace(boxes=g, priors=p), xp=xp)
    n, num_priors = index.shape
    boxes = take_along_axis(gt_boxes, xp.broadcast_to(index[..., None], (n, num_priors, 4)), axis=1, xp=xp)
    return boxes, labels


def hard_negative_mining(conf_loss: Array, positive: Array, /, *, neg_pos_ratio: float = 3) -> Array:
    """Mask of the hardest negatives: per row, the floor(``neg_pos_ratio`` num_pos) negatives of highest loss.

    The result is the first k negatives of a stable descending sort along the
    last axis: equal losses are taken in prior order (lower index first). It
    is computed with one value sort (the k-th largest loss) and a running
    count of the ties, not an index sort. Positives are never selected; at
    most all negatives are kept. Fixed shapes, no gradient.

    Args:
        conf_loss: floating ``(..., P)``, the per-prior classification loss
            (background cross entropy for negatives).
        positive: bool of ``conf_loss``'s shape, the positive priors.
        neg_pos_ratio: negatives kept per positive, >= 0; default 3.

    Returns:
        A bool mask of ``conf_loss``'s shape (all False where P = 0).

    Raises:
        ValueError: a 0-d ``conf_loss``, ``positive`` of another shape, a
            negative ``neg_pos_ratio``.
        TypeError: non-floating ``conf_loss``, non-bool ``positive``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> loss = np.array([[0.1, 0.9, 0.5, 0.7, 0.2]])
        >>> pl.hard_negative_mining(loss, loss > 0.8, neg_pos_ratio=2).tolist()
        [[False, False, True, True, False]]

    References:
        Liu et al., SSD: Single shot multibox detector, ECCV 2016.
        https://arxiv.org/abs/1512.02325
    """
    xp = namespace("hard_negative_mining", conf_loss=conf_loss, positive=positive)
    neg_pos_ratio = checks.check_real("hard_negative_mining", "neg_pos_ratio", neg_pos_ratio)
    ssd.check_mining("hard_negative_mining", conf_loss, positive, neg_pos_ratio, xp=xp)
    return ssd.mine(conf_loss, positive, neg_pos_ratio, xp=xp)


def multibox_loss(
    loc_pred: Array, conf_pred: Array, gt_boxes: Array, gt_labels: Array, gt_valid: Array, priors: Array, /, *,
    iou_threshold: float = 0.5, neg_pos_ratio: float = 3, variances: Sequence[float] = (0.1, 0.2),
    loc_loss: Literal["smooth_l1", "l1"] = "smooth_l1", beta: float = 1.0, loc_weight: float = 1.0,
    box_format: BoxFormat = "xyxy", prior_format: BoxFormat = "cxcywh",
) -> Array:
    """SSD MultiBox loss (Liu et al. 2016): (L_conf + loc_weight L_loc) / N_pos.

    L_loc: Smooth L1 (``beta``) or L1 summed over the 4 offsets of the
    positive priors against ``encode_boxes`` of their matched ground truth;
    L_conf: cross entropy summed over the positives and the negatives that
    ``hard_negative_mining`` keeps (``neg_pos_ratio`` per positive, per image,
    ranked by their background CE). Matching as ``match_priors`` (degenerate
    valid boxes are padding). N_pos is the number of positives in the batch;
    with none (no valid box, 0 priors, or an empty batch) the loss is 0 with a
    zero gradient.

    Args:
        loc_pred: floating ``(N, P, 4)``, predicted offsets as ``encode_boxes``.
        conf_pred: floating ``(N, P, C)`` logits, C >= 2, class 0 background.
        gt_boxes: floating ``(N, G, 4)`` in ``box_format``, G >= 1 slots per image.
        gt_labels: integer ``(N, G)``; valid boxes carry labels >= 1 (class 0
            is background; below C in ``multibox_loss``), padding any value.
        gt_valid: bool ``(N, G)``, False marks padding.
        priors: floating ``(P, 4)`` in ``prior_format``.
        iou_threshold: matching threshold in [0, 1]; default 0.5.
        neg_pos_ratio: negatives kept per positive, >= 0; default 3.
        variances: ``(v0, v1)``, the scales of the centre and size offsets,
            positive; default ``(0.1, 0.2)``.
        loc_loss: ``"smooth_l1"`` (default) or ``"l1"``.
        beta: the Smooth L1 threshold, >= 0; default 1.
        loc_weight: the weight of L_loc; default 1.
        box_format: the format of ``gt_boxes``; default ``"xyxy"``.
        prior_format: the format of ``priors``: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"`` (default).

    Returns:
        A 0-d array in ``loc_pred``'s dtype.

    Raises:
        ValueError: shapes other than the above, C < 2, a valid label outside
            ``[1, C)`` (concrete arrays), a bad option.
        TypeError: non-floating predictions or boxes, non-integer labels,
            a non-bool ``gt_valid``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> priors = np.array([[0.25, 0.5, 0.5, 1.0], [0.75, 0.5, 0.5, 1.0]])
        >>> gt = np.array([[[0.5, 0.0, 1.0, 1.0]]])
        >>> loc, conf = np.zeros((1, 2, 4)), np.zeros((1, 2, 3))
        >>> round(float(pl.multibox_loss(loc, conf, gt, np.array([[2]]), np.array([[True]]), priors)), 4)
        2.1972

    References:
        Liu et al., SSD: Single shot multibox detector, ECCV 2016.
        https://arxiv.org/abs/1512.02325
        Peer: ssd.pytorch's ``MultiBoxLoss`` returns (L_loc / N, L_conf / N);
        their sum is this at ``loc_weight=1``. It caps the negatives at P - 1,
        this at the number of negatives (the same unless they run out).
    """
    xp = namespace("multibox_loss", loc_pred=loc_pred, conf_pred=conf_pred, gt_boxes=gt_boxes,
                   gt_labels=gt_labels, gt_valid=gt_valid, priors=priors)
    reals = {"beta": beta, "neg_pos_ratio": neg_pos_ratio, "iou_threshold": iou_threshold, "loc_weight": loc_weight}
    beta, neg_pos_ratio, iou_threshold, loc_weight = (
        checks.check_real("multibox_loss", k, v) for k, v in reals.items())
    gt = ssd.GroundTruth(gt_boxes, gt_labels, gt_valid, priors, box_format, prior_format, iou_threshold)
    v = ssd.check_multibox(loc_pred, conf_pred, gt, loc_loss=loc_loss, beta=beta, neg_pos_ratio=neg_pos_ratio,
                           variances=variances, xp=xp)

    loc = promote(loc_pred, xp=xp)
    conf = promote(conf_pred, xp=xp)
    g, p = xp.astype(gt_boxes, loc.dtype), xp.astype(priors, loc.dtype)
    conf_sum, d, positive, num_pos = ssd.multibox_terms(loc, conf, gt._replace(boxes=g, priors=p), neg_pos_ratio, v,
                                                        xp=xp)
    per_offset = smooth_l1(d, 0.0 if loc_loss == "l1" else beta, xp=xp)
    loc_sum = xp.sum(xp.where(positive[..., None], per_offset, 0))
    loss = safe_divide(conf_sum + loc_weight * loc_sum, num_pos, xp=xp)
    return restore(loss, loc_pred.dtype, xp=xp)
