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

from . import _checks as checks
from ._box_ops import BoxFormat, Corners, Reduction, centre_size, corners, from_centre_size, pairwise_iou
from ._reduce import promote, reduce_loss, restore, safe_divide
from ._xp import (
    Array,
    array_namespace,
    clip,
    cumulative_sum,
    device,
    is_eager,
    max_argmax,
    segment_max,
    softmax_nll,
    stop_gradient,
    take_along_axis,
    value_range,
)

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


def _smooth_l1(d: Array, beta: float, *, xp: ModuleType) -> Array:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta; |d| at beta = 0."""
    ad = xp.abs(d)
    if beta == 0:
        return ad
    return xp.where(ad < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)


def _regression_inputs(fn: str, y_pred: Array, y_true: Array, reduction: str) -> tuple[Array, ModuleType]:
    """``y_pred - y_true`` in the compute dtype, after the shared checks."""
    xp = array_namespace(y_pred, y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_floating(fn, "y_true", y_true, xp=xp)
    checks.check_same_shape(fn, y_pred, y_true)
    checks.check_reduction(fn, reduction)
    x = promote(y_pred, xp=xp)
    t = y_true if y_true.dtype == x.dtype else xp.astype(y_true, x.dtype)
    return x - t, xp


def smooth_l1_loss(y_pred: Array, y_true: Array, /, *, beta: float = 1.0, reduction: Reduction = "mean") -> Array:
    r"""Smooth L1 loss (Girshick 2015), elementwise on d = y_pred - y_true.

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
    checks.check_nonnegative(fn, "beta", beta)
    d, xp = _regression_inputs(fn, y_pred, y_true, reduction)
    return restore(reduce_loss(_smooth_l1(d, beta, xp=xp), reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


def huber_loss(y_pred: Array, y_true: Array, /, *, delta: float = 1.0, reduction: Reduction = "mean") -> Array:
    r"""Huber loss (Huber 1964), elementwise on d = y_pred - y_true.

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
    loss = delta * _smooth_l1(d, delta, xp=xp)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


def balanced_l1_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float = 0.5,
    gamma: float = 1.5,
    beta: float = 1.0,
    reduction: Reduction = "mean",
) -> Array:
    r"""Balanced L1 loss (Pang et al. 2019, Libra R-CNN), elementwise on x = |y_pred - y_true|.

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
# SSD prior offsets
# --------------------------------------------------------------------------- #


def _check_variances(fn: str, variances: Sequence[float]) -> tuple[float, float]:
    if len(variances) != 2 or not all(v > 0 for v in variances):
        raise ValueError(f"{fn}: variances must be two positive numbers (centre, size), got {variances!r}")
    return float(variances[0]), float(variances[1])


def _check_broadcast(fn: str, boxes_name: str, boxes: Array, priors: Array) -> None:
    """The leading axes of ``boxes`` and ``priors`` broadcast against each other (one prior per box)."""
    a, b = tuple(boxes.shape[:-1]), tuple(priors.shape[:-1])
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + a, (1,) * (width - len(b)) + b
    if any(m != n and 1 not in (m, n) for m, n in zip(a, b, strict=True)):
        raise ValueError(
            f"{fn}: {boxes_name} {tuple(boxes.shape)} and priors {tuple(priors.shape)} must broadcast against "
            f"each other (one prior per box), got leading shapes {tuple(boxes.shape[:-1])} and "
            f"{tuple(priors.shape[:-1])}; for every box against every prior use match_priors"
        )


def _encode(box: Corners, prior: Corners, v: tuple[float, float], *, xp: ModuleType) -> Array:
    """SSD offsets from centre-size coordinates of boxes and priors; sizes clipped below at the smallest normal."""
    cx, cy, w, h = box
    pcx, pcy, pw, ph = prior
    tiny = xp.finfo(w.dtype).smallest_normal
    w, h = clip(w, tiny, None, xp=xp), clip(h, tiny, None, xp=xp)
    return xp.stack(
        ((cx - pcx) / (v[0] * pw), (cy - pcy) / (v[0] * ph), xp.log(w / pw) / v[1], xp.log(h / ph) / v[1]), axis=-1
    )


def encode_boxes(
    boxes: Array,
    priors: Array,
    /,
    *,
    variances: Sequence[float] = (0.1, 0.2),
    box_format: BoxFormat = "xyxy",
    prior_format: BoxFormat = "cxcywh",
) -> Array:
    r"""SSD regression targets of ``boxes`` relative to ``priors`` (Liu et al. 2016).

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
        prior_format: the same choices; default ``"cxcywh"``.

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
    fn = "encode_boxes"
    xp = array_namespace(boxes, priors)
    checks.check_boxes(fn, "boxes", boxes, xp=xp)
    checks.check_boxes(fn, "priors", priors, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    checks.check_box_format(fn, "prior_format", prior_format)
    v = _check_variances(fn, variances)
    _check_broadcast(fn, "boxes", boxes, priors)
    b = promote(boxes, xp=xp)
    p = priors if priors.dtype == b.dtype else xp.astype(priors, b.dtype)
    offsets = _encode(centre_size(b, box_format, xp=xp), centre_size(p, prior_format, xp=xp), v, xp=xp)
    return restore(offsets, boxes.dtype, xp=xp)


def decode_boxes(
    offsets: Array,
    priors: Array,
    /,
    *,
    variances: Sequence[float] = (0.1, 0.2),
    box_format: BoxFormat = "xyxy",
    prior_format: BoxFormat = "cxcywh",
) -> Array:
    r"""Boxes (in ``box_format``) from SSD offsets relative to ``priors``: the inverse of ``encode_boxes``.

    cx = p_cx + t0 v0 p_w, cy = p_cy + t1 v0 p_h, w = p_w exp(t2 v1), h = p_h exp(t3 v1)

    Args:
        offsets: floating ``(..., 4)``, as ``encode_boxes`` returns.
        priors: floating ``(..., 4)`` in ``prior_format``, broadcasting
            against ``offsets``' leading axes.
        variances: ``(v0, v1)``, positive; default ``(0.1, 0.2)``.
        box_format: the format of the result: ``"xyxy"`` (default), ``"xywh"``
            or ``"cxcywh"``.
        prior_format: the same choices; default ``"cxcywh"``.

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
    fn = "decode_boxes"
    xp = array_namespace(offsets, priors)
    checks.check_boxes(fn, "offsets", offsets, xp=xp)
    checks.check_boxes(fn, "priors", priors, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    checks.check_box_format(fn, "prior_format", prior_format)
    v = _check_variances(fn, variances)
    _check_broadcast(fn, "offsets", offsets, priors)
    t = promote(offsets, xp=xp)
    p = priors if priors.dtype == t.dtype else xp.astype(priors, t.dtype)
    pcx, pcy, pw, ph = centre_size(p, prior_format, xp=xp)
    cx = pcx + t[..., 0] * (v[0] * pw)
    cy = pcy + t[..., 1] * (v[0] * ph)
    w = pw * xp.exp(t[..., 2] * v[1])
    h = ph * xp.exp(t[..., 3] * v[1])
    return restore(from_centre_size(cx, cy, w, h, box_format, xp=xp), offsets.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Matching and mining
# --------------------------------------------------------------------------- #


def _check_ground_truth(fn: str, gt_boxes: Array, gt_labels: Array, gt_valid: Array, priors: Array, *,
                        xp: ModuleType) -> None:
    checks.check_boxes(fn, "gt_boxes", gt_boxes, xp=xp)
    checks.check_boxes(fn, "priors", priors, xp=xp)
    if gt_boxes.ndim != 3 or gt_boxes.shape[1] < 1:
        raise ValueError(f"{fn}: gt_boxes must have shape (N, G, 4) with G >= 1, got {tuple(gt_boxes.shape)}")
    if priors.ndim != 2:
        raise ValueError(f"{fn}: priors must have shape (P, 4), got {tuple(priors.shape)}")
    want = tuple(gt_boxes.shape[:2])
    if not xp.isdtype(gt_labels.dtype, "integral"):
        raise TypeError(f"{fn}: gt_labels must hold integer class indices, got dtype {gt_labels.dtype}")
    if tuple(gt_labels.shape) != want:
        raise ValueError(f"{fn}: gt_labels must have shape {want}, got {tuple(gt_labels.shape)}")
    if gt_valid.dtype != xp.bool:
        raise TypeError(f"{fn}: gt_valid must be a boolean mask, got dtype {gt_valid.dtype}")
    if tuple(gt_valid.shape) != want:
        raise ValueError(f"{fn}: gt_valid must have shape {want}, got {tuple(gt_valid.shape)}")


def _check_gt_labels(fn: str, gt_labels: Array, gt_valid: Array, num_classes: int | None, *, xp: ModuleType) -> None:
    """The labels of valid ground truth lie in ``[1, num_classes)`` (``None``: are >= 1); eager arrays only."""
    if not is_eager(gt_labels) or 0 in gt_labels.shape:
        return
    low, high = value_range(xp.where(gt_valid, gt_labels, xp.ones_like(gt_labels)), xp=xp)
    if num_classes is None and low < 1:
        raise ValueError(f"{fn}: gt_labels of valid boxes must be >= 1 (0 is background), found {low}")
    if num_classes is not None and (low < 1 or high >= num_classes):
        raise ValueError(f"{fn}: gt_labels of valid boxes must lie in [1, {num_classes}) (0 is background), "
                         f"found {low if low < 1 else high}")


def _match(gt_boxes: Array, gt_labels: Array, gt_valid: Array, priors: Array, iou_threshold: float,
           box_format: str, prior_format: str, *, xp: ModuleType) -> tuple[Array, Array]:
    """Index of the ground truth matched to each prior (N, P) and the matched label (0: background).

    The IoU is laid out (N, G, P), priors last, so the broadcasts and the
    per-ground-truth argmax run along the long contiguous axis.
    """
    num_gt, num_priors = gt_boxes.shape[1], priors.shape[0]
    dev = device(gt_boxes)
    if num_priors == 0:  # nothing to match: empty (N, 0) results
        index_dtype = xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]
        empty = (gt_boxes.shape[0], 0)
        return xp.zeros(empty, dtype=index_dtype, device=dev), xp.zeros(empty, dtype=gt_labels.dtype, device=dev)
    x1, y1, x2, y2 = corners(gt_boxes, box_format, xp=xp)
    # a degenerate box (zero or negative width or height) is padding: it matches nothing and is not forced;
    # a NaN coordinate is not degenerate, so NaN in gives NaN out
    gt_valid = gt_valid & ~((x2 <= x1) | (y2 <= y1))
    gt = (x1[:, :, None], y1[:, :, None], x2[:, :, None], y2[:, :, None])  # (N, G, 1)
    pr = tuple(v[None, None, :] for v in corners(priors, prior_format, xp=xp))  # (1, 1, P)
    iou = xp.where(gt_valid[:, :, None], pairwise_iou(gt, pr, xp=xp), -1)  # (N, G, P); padding never wins
    best_iou, best_gt = max_argmax(iou, axis=1, xp=xp)  # first maximum: the lowest ground-truth index wins ties
    # every valid ground truth claims its best prior (first maximum); if several claim one prior, the last wins
    best_prior = xp.argmax(iou, axis=2)  # (N, G)
    n = best_prior.shape[0]
    slot = xp.reshape(xp.arange(n, dtype=best_prior.dtype, device=dev) * num_priors, (n, 1)) + best_prior
    gt_ids = xp.broadcast_to(xp.arange(num_gt, dtype=best_prior.dtype, device=dev), best_prior.shape)
    claimant = segment_max(  # (N, P): the highest valid claiming ground truth, -1 where none claims
        xp.reshape(xp.where(gt_valid, gt_ids, -1), (-1,)), xp.reshape(slot, (-1,)), num_segments=n * num_priors,
        fill=-1, xp=xp)
    claimant = xp.reshape(claimant, (n, num_priors))
    forced = claimant >= 0
    index = xp.where(forced, claimant, best_gt)
    positive = forced | (best_iou >= iou_threshold)
    labels = take_along_axis(gt_labels, index, axis=1, xp=xp)
    return index, xp.where(positive, labels, xp.zeros((), dtype=labels.dtype, device=dev))


def match_priors(
    gt_boxes: Array,
    gt_labels: Array,
    gt_valid: Array,
    priors: Array,
    /,
    *,
    iou_threshold: float = 0.5,
    box_format: BoxFormat = "xyxy",
    prior_format: BoxFormat = "cxcywh",
) -> tuple[Array, Array]:
    r"""SSD matching of padded ground truth to priors, batched (Liu et al. 2016).

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
            is background), padding any value.
        gt_valid: bool ``(N, G)``, False marks padding.
        priors: floating ``(P, 4)`` in ``prior_format``; P may be 0.
        iou_threshold: in [0, 1]; default 0.5.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``.
        prior_format: the same choices; default ``"cxcywh"``.

    Returns:
        ``(boxes, labels)``: the matched ground truth ``(N, P, 4)`` in
        ``box_format`` and ``gt_boxes``' dtype (meaningful where
        ``labels > 0``), and the labels ``(N, P)`` in ``gt_labels``' dtype.

    Raises:
        ValueError: shapes other than the above, an unknown format, a bad
            ``iou_threshold``, a valid label below 1 (eager arrays).
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
    fn = "match_priors"
    xp = array_namespace(gt_boxes, gt_labels, gt_valid, priors)
    _check_ground_truth(fn, gt_boxes, gt_labels, gt_valid, priors, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    checks.check_box_format(fn, "prior_format", prior_format)
    checks.check_in_unit_interval(fn, "iou_threshold", iou_threshold)
    _check_gt_labels(fn, gt_labels, gt_valid, None, xp=xp)
    g = promote(gt_boxes, xp=xp)
    p = priors if priors.dtype == g.dtype else xp.astype(priors, g.dtype)
    index, labels = _match(g, gt_labels, gt_valid, p, iou_threshold, box_format, prior_format, xp=xp)
    n, num_priors = index.shape
    boxes = take_along_axis(gt_boxes, xp.broadcast_to(index[..., None], (n, num_priors, 4)), axis=1, xp=xp)
    return boxes, labels


def _mine(conf_loss: Array, positive: Array, neg_pos_ratio: float, *, xp: ModuleType) -> Array:
    """Rank selection without a second sort: every negative above the k-th largest loss, then the
    first (lowest-index) negatives tied with it until k are kept; positives sort last as -inf."""
    dtype, num_priors = conf_loss.dtype, conf_loss.shape[-1]
    if num_priors == 0:  # no prior, no negative
        return xp.zeros(conf_loss.shape, dtype=xp.bool, device=device(conf_loss))
    key = xp.where(positive, -xp.inf, stop_gradient(conf_loss, xp=xp))
    k = xp.floor(neg_pos_ratio * xp.sum(xp.astype(positive, dtype), axis=-1, keepdims=True))
    values = xp.sort(key, axis=-1, descending=True, stable=False)
    index_dtype = xp.__array_namespace_info__().default_dtypes(device=device(values))["indexing"]
    kth = take_along_axis(values, xp.astype(clip(k - 1, 0, num_priors - 1, xp=xp), index_dtype), axis=-1, xp=xp)
    above = key > kth
    tied = key == kth
    room = k - xp.sum(xp.astype(above, dtype), axis=-1, keepdims=True)
    tie_rank = cumulative_sum(xp.astype(tied, dtype), axis=-1, xp=xp)  # 1, 2, ... along the row, in prior order
    return (above | (tied & (tie_rank <= room))) & ~positive


def hard_negative_mining(conf_loss: Array, positive: Array, /, *, neg_pos_ratio: float = 3) -> Array:
    r"""Mask of the hardest negatives: per row, the floor(``neg_pos_ratio`` num_pos) negatives of highest loss.

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
    fn = "hard_negative_mining"
    xp = array_namespace(conf_loss, positive)
    checks.check_floating(fn, "conf_loss", conf_loss, xp=xp)
    if positive.dtype != xp.bool:
        raise TypeError(f"{fn}: positive must be a boolean mask, got dtype {positive.dtype}")
    if tuple(positive.shape) != tuple(conf_loss.shape):
        raise ValueError(
            f"{fn}: positive must have the shape of conf_loss {tuple(conf_loss.shape)}, got {tuple(positive.shape)}"
        )
    checks.check_nonnegative(fn, "neg_pos_ratio", neg_pos_ratio)
    if conf_loss.ndim < 1:
        raise ValueError(f"{fn}: conf_loss must have shape (..., P), got a 0-d array")
    return _mine(conf_loss, positive, neg_pos_ratio, xp=xp)


def multibox_loss(
    loc_pred: Array,
    conf_pred: Array,
    gt_boxes: Array,
    gt_labels: Array,
    gt_valid: Array,
    priors: Array,
    /,
    *,
    iou_threshold: float = 0.5,
    neg_pos_ratio: float = 3,
    variances: Sequence[float] = (0.1, 0.2),
    loc_loss: Literal["smooth_l1", "l1"] = "smooth_l1",
    beta: float = 1.0,
    loc_weight: float = 1.0,
    box_format: BoxFormat = "xyxy",
    prior_format: BoxFormat = "cxcywh",
) -> Array:
    r"""SSD MultiBox loss (Liu et al. 2016): (L_conf + loc_weight L_loc) / N_pos.

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
        gt_boxes: floating ``(N, G, 4)`` in ``box_format``.
        gt_labels: integer ``(N, G)``; valid boxes carry labels in ``[1, C)``.
        gt_valid: bool ``(N, G)``, False marks padding.
        priors: floating ``(P, 4)`` in ``prior_format``.
        iou_threshold: matching threshold in [0, 1]; default 0.5.
        neg_pos_ratio: negatives kept per positive, >= 0; default 3.
        variances: ``(v0, v1)`` of the encoding; default ``(0.1, 0.2)``.
        loc_loss: ``"smooth_l1"`` (default) or ``"l1"``.
        beta: the Smooth L1 threshold, >= 0; default 1.
        loc_weight: the weight of L_loc; default 1.
        box_format: the format of ``gt_boxes``; default ``"xyxy"``.
        prior_format: the format of ``priors``; default ``"cxcywh"``.

    Returns:
        A 0-d array in ``loc_pred``'s dtype.

    Raises:
        ValueError: shapes other than the above, C < 2, a valid label outside
            ``[1, C)`` (eager arrays), a bad option.
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
    fn = "multibox_loss"
    xp = array_namespace(loc_pred, conf_pred, gt_boxes, gt_labels, gt_valid, priors)
    checks.check_floating(fn, "loc_pred", loc_pred, xp=xp)
    checks.check_floating(fn, "conf_pred", conf_pred, xp=xp)
    _check_ground_truth(fn, gt_boxes, gt_labels, gt_valid, priors, xp=xp)
    n, num_priors = gt_boxes.shape[0], priors.shape[0]
    if tuple(loc_pred.shape) != (n, num_priors, 4):
        raise ValueError(f"{fn}: loc_pred must have shape {(n, num_priors, 4)}, got {tuple(loc_pred.shape)}")
    if conf_pred.ndim != 3 or tuple(conf_pred.shape[:2]) != (n, num_priors):
        raise ValueError(f"{fn}: conf_pred must have shape ({n}, {num_priors}, C), got {tuple(conf_pred.shape)}")
    checks.check_option(fn, "loc_loss", loc_loss, ("smooth_l1", "l1"))
    checks.check_nonnegative(fn, "beta", beta)
    checks.check_nonnegative(fn, "neg_pos_ratio", neg_pos_ratio)
    checks.check_in_unit_interval(fn, "iou_threshold", iou_threshold)
    checks.check_box_format(fn, "box_format", box_format)
    checks.check_box_format(fn, "prior_format", prior_format)
    v = _check_variances(fn, variances)
    num_classes = conf_pred.shape[2]
    if num_classes < 2:
        raise ValueError(f"{fn}: conf_pred must have C >= 2 classes (class 0 is background), got C = {num_classes}")
    _check_gt_labels(fn, gt_labels, gt_valid, num_classes, xp=xp)

    loc = promote(loc_pred, xp=xp)
    conf = promote(conf_pred, xp=xp)
    g = xp.astype(gt_boxes, loc.dtype)
    p = xp.astype(priors, loc.dtype)
    index, labels = _match(g, gt_labels, gt_valid, p, iou_threshold, box_format, prior_format, xp=xp)
    positive = labels > 0
    num_pos = xp.sum(xp.astype(positive, loc.dtype))

    # CE on (N P, C) rows: the class axis contiguous, no transpose on torch
    ce = xp.reshape(softmax_nll(xp.reshape(conf, (-1, num_classes)), xp.reshape(labels, (-1,)), axis=1, xp=xp),
                    (n, num_priors))
    keep = positive | _mine(ce, positive, neg_pos_ratio, xp=xp)
    conf_sum = xp.sum(xp.where(keep, ce, 0))

    matched = take_along_axis(g, xp.broadcast_to(index[..., None], (n, num_priors, 4)), axis=1, xp=xp)
    cx, cy, w, h = centre_size(matched, box_format, xp=xp)
    prior = centre_size(p, prior_format, xp=xp)
    # off the positives the matched box may be padding of size 0: encode the prior itself there (no log 0)
    w, h = xp.where(positive, w, prior[2]), xp.where(positive, h, prior[3])
    target = _encode((cx, cy, w, h), prior, v, xp=xp)
    pos4 = positive[..., None]
    per_offset = _smooth_l1(loc - target, 0.0 if loc_loss == "l1" else beta, xp=xp)
    loc_sum = xp.sum(xp.where(pos4, per_offset, 0))
    loss = safe_divide(conf_sum + loc_weight * loc_sum, num_pos, xp=xp)
    return restore(loss, loc_pred.dtype, xp=xp)
