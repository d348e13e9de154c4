"""SSD machinery behind ``detection``: argument checks, prior offsets, batched matching, hard negative mining.

Private kernels with public names (``detection`` imports them): the checks
raise in the calling public function's name ``caller``; the kernels take arrays
that are already checked and promoted, and the namespace as ``xp=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import NamedTuple

from .._backend import (
    Array,
    clip,
    cumulative_sum,
    device,
    host_view,
    index_dtype,
    is_concrete,
    kth_largest,
    max_argmax,
    segment_max,
    softmax_nll,
    stop_gradient,
    take_along_axis,
    unstack,
    value_range,
)
from .._core import checks
from ._box_ops import Corners, centre_size, corners, from_centre_size


class GroundTruth(NamedTuple):
    """A batch of padded ground truth and the priors it is matched to, as the public function got them."""

    boxes: Array  # (N, G, 4) in ``box_format``
    labels: Array  # (N, G) integer; valid boxes >= 1
    valid: Array  # (N, G) bool, False marks padding
    priors: Array  # (P, 4) in ``prior_format``
    box_format: str
    prior_format: str
    iou_threshold: float


# --------------------------------------------------------------------------- #
# Checks (raising in the public function's name)
# --------------------------------------------------------------------------- #


def check_variances(caller: str, variances: Sequence[float]) -> tuple[float, float]:
    """``(v0, v1)`` as floats, both positive."""
    if len(variances) != 2 or not all(v > 0 for v in variances):
        raise ValueError(f"{caller}: variances must be two positive numbers (centre, size), got {variances!r}")
    return float(variances[0]), float(variances[1])


def check_broadcast(caller: str, boxes_name: str, boxes: Array, priors: Array) -> None:
    """The leading axes of ``boxes`` and ``priors`` broadcast against each other (one prior per box)."""
    a, b = tuple(boxes.shape[:-1]), tuple(priors.shape[:-1])
    width = max(len(a), len(b))
    a, b = (1,) * (width - len(a)) + a, (1,) * (width - len(b)) + b
    if any(m != n and 1 not in (m, n) for m, n in zip(a, b, strict=True)):
        raise ValueError(
            f"{caller}: {boxes_name} {tuple(boxes.shape)} and priors {tuple(priors.shape)} must broadcast against "
            f"each other (one prior per box), got leading shapes {tuple(boxes.shape[:-1])} and "
            f"{tuple(priors.shape[:-1])}; for every box against every prior use match_priors"
        )


def check_offset_inputs(caller: str, boxes_name: str, boxes: Array, priors: Array, box_format: str, prior_format: str,
                        variances: Sequence[float], *, xp: ModuleType) -> tuple[float, float]:
    """The checks ``encode_boxes`` and ``decode_boxes`` share; returns the variances."""
    checks.check_boxes(caller, boxes_name, boxes, xp=xp)
    checks.check_boxes(caller, "priors", priors, xp=xp)
    checks.check_box_format(caller, "box_format", box_format)
    checks.check_box_format(caller, "prior_format", prior_format)
    v = check_variances(caller, variances)
    check_broadcast(caller, boxes_name, boxes, priors)
    return v


def check_ground_truth(caller: str, gt: GroundTruth, /, *, xp: ModuleType) -> None:
    """Padded ground truth ``(N, G, 4)``, ``(N, G)``, ``(N, G)``, priors ``(P, 4)`` and the matching options.

    The shapes and dtypes; label values are ``check_gt_labels``'s.
    """
    gt_boxes, gt_labels, gt_valid, priors = gt.boxes, gt.labels, gt.valid, gt.priors
    checks.check_boxes(caller, "gt_boxes", gt_boxes, xp=xp)
    checks.check_boxes(caller, "priors", priors, xp=xp)
    if gt_boxes.ndim != 3 or gt_boxes.shape[1] < 1:
        raise ValueError(f"{caller}: gt_boxes must have shape (N, G, 4) with G >= 1, got {tuple(gt_boxes.shape)}")
    if priors.ndim != 2:
        raise ValueError(f"{caller}: priors must have shape (P, 4), got {tuple(priors.shape)}")
    want = tuple(gt_boxes.shape[:2])
    if not xp.isdtype(gt_labels.dtype, "integral"):
        raise TypeError(f"{caller}: gt_labels must hold integer class indices, got dtype {gt_labels.dtype}")
    if tuple(gt_labels.shape) != want:
        raise ValueError(f"{caller}: gt_labels must have shape {want}, got {tuple(gt_labels.shape)}")
    if gt_valid.dtype != xp.bool:
        raise TypeError(f"{caller}: gt_valid must be a boolean mask, got dtype {gt_valid.dtype}")
    if tuple(gt_valid.shape) != want:
        raise ValueError(f"{caller}: gt_valid must have shape {want}, got {tuple(gt_valid.shape)}")
    checks.check_box_format(caller, "box_format", gt.box_format)
    checks.check_box_format(caller, "prior_format", gt.prior_format)
    checks.check_in_unit_interval(caller, "iou_threshold", gt.iou_threshold)


def check_multibox(loc_pred: Array, conf_pred: Array, gt: GroundTruth, /, *, loc_loss: str, beta: float,
                   neg_pos_ratio: float, variances: Sequence[float], xp: ModuleType) -> tuple[float, float]:
    """Every argument of ``multibox_loss``; returns the variances."""
    caller = "multibox_loss"
    checks.check_floating(caller, "loc_pred", loc_pred, xp=xp)
    checks.check_floating(caller, "conf_pred", conf_pred, xp=xp)
    check_ground_truth(caller, gt, xp=xp)
    n, num_priors = gt.boxes.shape[0], gt.priors.shape[0]
    if tuple(loc_pred.shape) != (n, num_priors, 4):
        raise ValueError(f"{caller}: loc_pred must have shape {(n, num_priors, 4)}, got {tuple(loc_pred.shape)}")
    if conf_pred.ndim != 3 or tuple(conf_pred.shape[:2]) != (n, num_priors):
        raise ValueError(f"{caller}: conf_pred must have shape ({n}, {num_priors}, C), got {tuple(conf_pred.shape)}")
    checks.check_option(caller, "loc_loss", loc_loss, ("smooth_l1", "l1"))
    checks.check_nonnegative(caller, "beta", beta)
    checks.check_nonnegative(caller, "neg_pos_ratio", neg_pos_ratio)
    v = check_variances(caller, variances)
    num_classes = conf_pred.shape[2]
    if num_classes < 2:
        raise ValueError(f"{caller}: conf_pred must have C >= 2 classes (class 0 is background), got C = {num_classes}")
    check_gt_labels(caller, gt.labels, gt.valid, num_classes, xp=xp)
    return v


def check_mining(caller: str, conf_loss: Array, positive: Array, neg_pos_ratio: float, *, xp: ModuleType) -> None:
    """``conf_loss`` floating ``(..., P)``, ``positive`` a bool mask of its shape, ``neg_pos_ratio >= 0``."""
    checks.check_floating(caller, "conf_loss", conf_loss, xp=xp)
    if positive.dtype != xp.bool:
        raise TypeError(f"{caller}: positive must be a boolean mask, got dtype {positive.dtype}")
    if tuple(positive.shape) != tuple(conf_loss.shape):
        raise ValueError(
            f"{caller}: positive must have the shape of conf_loss {tuple(conf_loss.shape)}, got {tuple(positive.shape)}"
        )
    checks.check_nonnegative(caller, "neg_pos_ratio", neg_pos_ratio)
    if conf_loss.ndim < 1:
        raise ValueError(f"{caller}: conf_loss must have shape (..., P), got a 0-d array")


def check_gt_labels(caller: str, gt_labels: Array, gt_valid: Array, num_classes: int | None, *, xp: ModuleType) -> None:
    """The labels of valid ground truth lie in ``[1, num_classes)`` (``None``: are >= 1).

    Concrete arrays only (NumPy, eager torch, JAX outside a trace); traced
    ones are not read.
    """
    if not (is_concrete(gt_labels) and is_concrete(gt_valid)) or 0 in gt_labels.shape:
        return
    (gt_labels, hxp), gt_valid = host_view(gt_labels, xp=xp), host_view(gt_valid, xp=xp)[0]
    low, high = value_range(hxp.where(gt_valid, gt_labels, hxp.ones_like(gt_labels)), xp=hxp)
    if num_classes is None and low < 1:
        raise ValueError(f"{caller}: gt_labels of valid boxes must be >= 1 (0 is background), found {low}")
    if num_classes is not None and (low < 1 or high >= num_classes):
        raise ValueError(f"{caller}: gt_labels of valid boxes must lie in [1, {num_classes}) (0 is background), "
                         f"found {low if low < 1 else high}")


# --------------------------------------------------------------------------- #
# Kernels
# --------------------------------------------------------------------------- #


def encode(box: Corners, prior: Corners, v: tuple[float, float], *, xp: ModuleType) -> Array:
    """SSD offsets from centre-size coordinates of boxes and priors; sizes clipped below at the smallest normal."""
    cx, cy, w, h = box
    pcx, pcy, pw, ph = prior
    tiny = xp.finfo(w.dtype).smallest_normal
    w, h = clip(w, tiny, None, xp=xp), clip(h, tiny, None, xp=xp)
    return xp.stack(
        ((cx - pcx) / (v[0] * pw), (cy - pcy) / (v[0] * ph), xp.log(w / pw) / v[1], xp.log(h / ph) / v[1]), axis=-1
    )


def decode(t: Array, p: Array, v: tuple[float, float], box_format: str, prior_format: str, *,
           xp: ModuleType) -> Array:
    """Boxes in ``box_format`` from offsets ``t`` relative to priors ``p``: the inverse of ``encode``."""
    pcx, pcy, pw, ph = centre_size(p, prior_format, xp=xp)
    cx = pcx + t[..., 0] * (v[0] * pw)
    cy = pcy + t[..., 1] * (v[0] * ph)
    w = pw * xp.exp(t[..., 2] * v[1])
    h = ph * xp.exp(t[..., 3] * v[1])
    return from_centre_size(cx, cy, w, h, box_format, xp=xp)


def match(gt: GroundTruth, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """Index of the ground truth matched to each prior (N, P) and the matched label (0: background).

    The IoU is laid out (N, G, P), priors last, so the broadcasts and the
    per-ground-truth argmax run along the long contiguous axis. It takes 12
    passes over that grid (the generic IoU and a mask took 14): each overlap
    is the length of the ground-truth interval clipped to the prior's
    (``clip`` with array bounds, one pass per end), which equals
    ``max(min(x2, X2) - max(x1, X1), 0)`` bit for bit once padding is the
    empty box (0, 0, 0, 0) and inverted priors have zero
    size; padding then scores IoU - 2 (< 0), so it never wins a prior.
    """
    gt_boxes, gt_labels, gt_valid, priors = gt.boxes, gt.labels, gt.valid, gt.priors
    num_gt, num_priors = gt_boxes.shape[1], priors.shape[0]
    dev = device(gt_boxes)
    if num_priors == 0:  # nothing to match: empty (N, 0) results
        empty = (gt_boxes.shape[0], 0)
        return (xp.zeros(empty, dtype=index_dtype(xp, dev), device=dev),
                xp.zeros(empty, dtype=gt_labels.dtype, device=dev))
    x1, y1, x2, y2 = corners(stop_gradient(gt_boxes, xp=xp), gt.box_format, xp=xp)
    # a degenerate box (zero or negative width or height) is padding: it matches nothing and is not forced;
    # a NaN coordinate is not degenerate, so NaN in gives NaN out
    gt_valid = gt_valid & ~((x2 <= x1) | (y2 <= y1))
    zero = xp.zeros((), dtype=x1.dtype, device=dev)
    x1, y1, x2, y2 = (xp.where(gt_valid, c, zero)[:, :, None] for c in (x1, y1, x2, y2))  # (N, G, 1)
    px1, py1, px2, py2 = corners(stop_gradient(priors, xp=xp), gt.prior_format, xp=xp)  # (P,)
    px2, py2 = xp.maximum(px2, px1), xp.maximum(py2, py1)  # an inverted prior has zero size (it overlaps nothing)
    inter = (clip(x2, px1, px2, xp=xp) - clip(x1, px1, px2, xp=xp)) * (clip(y2, py1, py2, xp=xp) - clip(
        y1, py1, py2, xp=xp))
    union = ((x2 - x1) * (y2 - y1) + (px2 - px1) * (py2 - py1)) - inter
    tiny = xp.asarray(xp.finfo(union.dtype).smallest_normal, dtype=union.dtype, device=dev)
    padding = xp.astype(~gt_valid, union.dtype)[:, :, None] * 2
    iou = inter / xp.maximum(union, tiny) - padding  # (N, G, P)
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
    positive = forced | (best_iou >= gt.iou_threshold)
    labels = take_along_axis(gt_labels, index, axis=1, xp=xp)
    return index, xp.where(positive, labels, xp.zeros((), dtype=labels.dtype, device=dev))


def mine(conf_loss: Array, positive: Array, neg_pos_ratio: float, *, xp: ModuleType) -> Array:
    """Rank selection without a sort of the rows: every negative above the k-th largest loss
    (``kth_largest``: bisection on the float bits on torch and JAX), then the first (lowest-index)
    negatives tied with it until k are kept; positives rank last as -inf."""
    dtype, num_priors = conf_loss.dtype, conf_loss.shape[-1]
    if num_priors == 0:  # no prior, no negative
        return xp.zeros(conf_loss.shape, dtype=xp.bool, device=device(conf_loss))
    key = xp.where(positive, -xp.inf, stop_gradient(conf_loss, xp=xp))
    k = xp.floor(neg_pos_ratio * xp.sum(xp.astype(positive, dtype), axis=-1, keepdims=True))
    kth = kth_largest(key, xp.astype(clip(k, 1, num_priors, xp=xp), index_dtype(xp, device(key))), xp=xp)
    above = key > kth  # never a positive (-inf)
    tied = (key == kth) & ~positive  # a negative of loss -inf ties with the positives' key: rank negatives only
    room = k - xp.sum(xp.astype(above, dtype), axis=-1, keepdims=True)
    tie_rank = cumulative_sum(xp.astype(tied, dtype), axis=-1, xp=xp)  # 1, 2, ... along the row, in prior order
    return above | (tied & (tie_rank <= room))


def multibox_terms(loc: Array, conf: Array, gt: GroundTruth, neg_pos_ratio: float, v: tuple[float, float], /, *,
                   xp: ModuleType) -> tuple[Array, Array, Array, Array]:
    """``(conf_sum, d, positive, num_pos)``: the CE summed over the positives and the mined negatives, the
    offset errors ``loc - target`` ``(N, P, 4)`` (meaningful on the positives), the positive mask ``(N, P)``
    and the number of positives."""
    n, num_priors, num_classes = conf.shape
    index, labels = match(gt, xp=xp)
    positive = labels > 0
    # CE on (N P, C) rows: the class axis contiguous, no transpose on torch
    ce = xp.reshape(softmax_nll(xp.reshape(conf, (-1, num_classes)), xp.reshape(labels, (-1,)), axis=1, xp=xp),
                    (n, num_priors))
    keep = positive | mine(ce, positive, neg_pos_ratio, xp=xp)
    # centre-size form on the (N, G) ground truth, then one gather to (N, P, 4); off the positives the matched
    # box may be padding of size 0: ``encode`` clips sizes at the smallest normal (no log 0), and the caller
    # masks those offsets out
    gt_centre_size = xp.stack(centre_size(gt.boxes, gt.box_format, xp=xp), axis=-1)
    matched = take_along_axis(gt_centre_size, xp.broadcast_to(index[..., None], (n, num_priors, 4)), axis=1, xp=xp)
    cx, cy, w, h = unstack(matched, axis=-1, xp=xp)
    d = loc - encode((cx, cy, w, h), centre_size(gt.priors, gt.prior_format, xp=xp), v, xp=xp)
    return xp.sum(xp.where(keep, ce, 0)), d, positive, xp.sum(xp.astype(positive, loc.dtype))
