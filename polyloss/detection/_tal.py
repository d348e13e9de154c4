"""Task-aligned assignment (TOOD / YOLOv8) and the YOLOv8 loss terms, behind ``task_aligned``.

Private kernels: inputs already checked and promoted, the namespace as
``xp=``. Pairwise quantities are ``(B, G, A)`` (images, ground truths,
anchors), anchors last so the top-k is one sort along the last axis; nothing
is ``(B, G, A, C)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._backend import (
    Array,
    clip,
    cumulative_sum,
    device,
    index_dtype,
    max_argmax,
    one_hot,
    sigmoid,
    sigmoid_cross_entropy,
    sort_descending,
    stop_gradient,
    take_along_axis,
    unstack,
)
from ._box_ops import BoxPair, Corners
from ._gfl_ops import distribution_focal, integral

CIOU_EPS = 1e-7  # ultralytics' bbox_iou eps


class Assignment(NamedTuple):
    """What ``task_aligned_assign`` returns; every field ``(B, A, ...)``."""

    labels: Array
    boxes: Array
    scores: Array
    fg_mask: Array
    gt_index: Array


def candidates(anchors: Array, gt: Corners, valid: Array, min_size: float, eps: float, /, *, xp: ModuleType) -> Array:
    """``(B, G, A)``: the anchor centre lies inside the (valid) ground truth by more than ``eps``.

    A side shorter than ``min_size`` is widened to it about the box centre first.
    """
    x1, y1, x2, y2 = (c[..., None] for c in gt)
    if min_size > 0:
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        w, h = xp.where(w < min_size, min_size, w), xp.where(h < min_size, min_size, h)
        x1, y1, x2, y2 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    ax, ay = anchors[:, 0], anchors[:, 1]
    inside = (ax - x1 > eps) & (ay - y1 > eps) & (x2 - ax > eps) & (y2 - ay > eps)
    return inside & valid[..., None]


def top_k_mask(metric: Array, k: int, /, *, xp: ModuleType) -> Array:
    """``(..., A)`` bool: the ``k`` largest entries of each row, ties to the lower index (a stable sort).

    One sort gives the k-th value; everything above it is in, and of the
    entries equal to it the first ones (a cumulative count) fill the rest.
    """
    values, _ = sort_descending(metric, stable=True, xp=xp)
    kth = values[..., k - 1 : k]
    above = metric > kth
    need = k - xp.sum(xp.astype(above, xp.int32), axis=-1, keepdims=True)
    tie = metric == kth
    return above | (tie & (cumulative_sum(xp.astype(tie, xp.int32), axis=-1, xp=xp) <= need))


def class_scores(scores: Array, labels: Array, /, *, xp: ModuleType) -> Array:
    """``(B, G, A)``: the score of every anchor at each ground truth's class (labels already in range)."""
    b, a, _ = scores.shape
    index = xp.broadcast_to(labels[:, None, :], (b, a, labels.shape[1]))
    return xp.permute_dims(take_along_axis(scores, index, axis=-1, xp=xp), (0, 2, 1))


def pairwise_overlap(pred: Array, gt: Corners, overlap: str, /, *, xp: ModuleType) -> Array:
    """``(B, G, A)``: CIoU (clamped at 0) or IoU of every ground truth with every predicted box."""
    pair = BoxPair(tuple(c[..., None] for c in gt), tuple(c[:, None, :] for c in unstack(pred, axis=-1, xp=xp)),
                   eps=CIOU_EPS, inner_ratio=None, xp=xp)
    if overlap == "iou":
        return pair.iou
    return clip(1 - pair.ciou(), 0, None, xp=xp)


def resolve(pos: Array, overlaps: Array, /, *, xp: ModuleType) -> tuple[Array, Array, Array]:
    """An anchor claimed by several ground truths goes to the one of highest overlap (first on ties).

    Returns ``(pos, fg, gt_index)``: the resolved ``(B, G, A)`` mask, the
    foreground ``(B, A)`` and the first ground truth of each anchor's column
    (0 on background), as ultralytics' ``select_highest_overlaps``.
    """
    g = pos.shape[1]
    claims = xp.sum(xp.astype(pos, xp.int32), axis=1)
    best = max_argmax(overlaps, axis=1, xp=xp)[1]
    ids = xp.arange(g, dtype=best.dtype, device=device(best))[None, :, None]
    pos = xp.where((claims > 1)[:, None, :], ids == best[:, None, :], pos)
    fg, gt_index = max_argmax(xp.astype(pos, overlaps.dtype), axis=1, xp=xp)
    return pos, fg > 0, gt_index


def assign(scores: Array, boxes: Array, anchors: Array, labels: Array, gt_boxes: Array, valid: Array, /, *,
           top_k: int, alpha: float, beta: float, eps: float, min_size: float, overlap: str,
           xp: ModuleType) -> Assignment:
    """The task-aligned assignment of ``task_aligned_assign`` on checked inputs with ``G, A >= 1``."""
    b, a, c = scores.shape
    gt = unstack(gt_boxes, axis=-1, xp=xp)
    labels_in = clip(labels, 0, c - 1, xp=xp)
    cand = candidates(anchors, gt, valid, min_size, eps, xp=xp)
    overlaps = xp.where(cand, pairwise_overlap(boxes, gt, overlap, xp=xp), 0)
    metric = xp.where(cand, class_scores(scores, labels_in, xp=xp) ** alpha * overlaps**beta, 0)
    pos = top_k_mask(metric, min(top_k, a), xp=xp) & cand
    pos, fg, gt_index = resolve(pos, overlaps, xp=xp)
    # normalise: each ground truth's metrics scaled so its best anchor gets its best overlap
    metric = xp.where(pos, metric, 0)
    best_overlap = xp.max(xp.where(pos, overlaps, 0), axis=-1, keepdims=True)
    norm = xp.max(metric * best_overlap / (xp.max(metric, axis=-1, keepdims=True) + eps), axis=1)
    target_labels = take_along_axis(labels_in, gt_index, axis=1, xp=xp)
    index = xp.broadcast_to(gt_index[..., None], (b, a, 4))
    target_boxes = xp.where(fg[..., None], take_along_axis(gt_boxes, index, axis=1, xp=xp), 0)
    hot = one_hot(target_labels, num_classes=c, axis=-1, dtype=scores.dtype, xp=xp)
    target_scores = hot * xp.where(fg, norm, 0)[..., None]
    return Assignment(xp.where(fg, target_labels, c), target_boxes, target_scores, fg,
                      xp.where(fg, xp.astype(gt_index, index_dtype(xp, device(scores))), -1))


def background(scores: Array, boxes: Array, labels: Array, /, *, xp: ModuleType) -> Assignment:
    """The assignment with no foreground (no ground truth or no anchor)."""
    b, a, c = scores.shape
    dev = device(scores)
    return Assignment(xp.full((b, a), c, dtype=labels.dtype, device=dev), xp.zeros_like(boxes),
                      xp.zeros_like(scores), xp.zeros((b, a), dtype=xp.bool, device=dev),
                      xp.full((b, a), -1, dtype=index_dtype(xp, dev), device=dev))


class LossTerms(NamedTuple):
    """The three unweighted YOLOv8 loss terms, each normalised by the target-score sum, and the assignment."""

    box: Array
    cls: Array
    dfl: Array
    assignment: Assignment


def decode(dist: Array, grid: Array, reg_max: int, /, *, xp: ModuleType) -> tuple[Array, Corners]:
    """Bin logits ``(B, A, 4 reg_max)`` -> the bins ``(B, A, 4, reg_max)`` and xyxy corners in stride units."""
    b, a, _ = dist.shape
    bins = xp.reshape(dist, (b, a, 4, reg_max))
    left, top, right, bottom = unstack(integral(bins, xp=xp), axis=-1, xp=xp)
    gx, gy = grid[:, 0], grid[:, 1]
    return bins, (gx - left, gy - top, gx + right, gy + bottom)


def yolo_terms(logits: Array, dist: Array, anchors: Array, stride: Array, labels: Array, gt_boxes: Array,
               valid: Array, /, *, reg_max: int, options: dict[str, Any], xp: ModuleType) -> LossTerms:
    """ultralytics' v8DetectionLoss terms on checked, promoted inputs; ``stride`` ``(A,)``, anchors in pixels."""
    s = stride[:, None]
    grid = anchors / s
    bins, pred = decode(dist, grid, reg_max, xp=xp)
    pred_px = stop_gradient(xp.stack(pred, axis=-1) * s, xp=xp)
    probs = sigmoid(stop_gradient(logits, xp=xp), xp=xp)
    if gt_boxes.shape[1] and logits.shape[1]:
        found = assign(probs, pred_px, anchors, labels, gt_boxes, valid, xp=xp, **options)
    else:
        found = background(probs, pred_px, labels, xp=xp)
    total = xp.maximum(xp.sum(found.scores), xp.ones((), dtype=logits.dtype, device=device(logits)))
    cls = xp.sum(sigmoid_cross_entropy(logits, found.scores, xp=xp)) / total
    weight = xp.where(found.fg_mask, xp.sum(found.scores, axis=-1), 0)
    fg = found.fg_mask
    target = tuple(xp.where(fg, t, stop_gradient(p, xp=xp))
                   for t, p in zip(unstack(found.boxes / s, axis=-1, xp=xp), pred, strict=True))
    box = xp.sum(BoxPair(pred, target, eps=CIOU_EPS, inner_ratio=None, xp=xp).ciou() * weight) / total
    gx, gy = grid[:, 0], grid[:, 1]
    ltrb = xp.stack((gx - target[0], gy - target[1], target[2] - gx, target[3] - gy), axis=-1)
    ltrb = clip(ltrb, 0, reg_max - 1.01, xp=xp)
    dfl = xp.mean(distribution_focal(bins, ltrb, xp=xp), axis=-1)
    return LossTerms(box, cls, xp.sum(dfl * weight) / total, found)
