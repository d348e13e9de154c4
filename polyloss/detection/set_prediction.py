"""Set prediction (DETR): batched linear assignment, pairwise GIoU, the Hungarian matcher and the set loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from .._backend import (
    Array,
    clip,
    device,
    is_concrete,
    log_sigmoid,
    sigmoid,
    sigmoid_cross_entropy,
    softmax,
    softmax_nll,
    stop_gradient,
    take_along_axis,
)
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import promote, restore
from .._core.typing import BoxFormat
from . import _lsa
from ._box_ops import Corners, centre_size, corners, inter_union, tiny_like

__all__ = ["generalized_box_iou", "hungarian_match", "linear_sum_assignment", "set_prediction_loss"]

ClassCost = Literal["softmax", "focal"]
ClassLoss = Literal["ce", "focal", "varifocal"]


def _check_mask(fn: str, name: str, mask: Array | None, shape: tuple[int, ...], *, xp: ModuleType) -> None:
    if mask is None:
        return
    if mask.dtype != xp.bool:
        raise TypeError(f"{fn}: {name} must be a bool array, got dtype {mask.dtype}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {tuple(mask.shape)}")


def _solver_dtype(x: Array, /, *, xp: ModuleType) -> Any:
    """float64 where the namespace has it on ``x``'s device (JAX without x64 has not), else float32."""
    kinds = xp.__array_namespace_info__().dtypes(device=device(x), kind="real floating")
    return xp.float64 if "float64" in kinds else xp.float32


def linear_sum_assignment(
    cost: Array, /, *, row_valid: Array | None = None, col_valid: Array | None = None, maximize: bool = False
) -> Array:
    r"""Batched min-cost bipartite matching: the column of each row, -1 where a row is unmatched.

    For each problem ``cost[..., :, :]`` (R rows, K columns) it finds the matching of
    ``min(valid rows, valid columns)`` pairs minimising sum_i cost[i, col(i)]
    (maximising with ``maximize=True``): SciPy's ``linear_sum_assignment`` on every
    problem, with the answer written per row.

    How: eager float NumPy arrays and eager CPU torch tensors go to SciPy, one C
    call per problem (exact, and faster than a lockstep loop on the host); JAX,
    torch while compiling or on an accelerator, and array-api-strict run the same
    algorithm (shortest augmenting paths, Jonker-Volgenant / Crouse 2016, as in
    SciPy) vectorised over the batch inside one backend ``while_loop`` (no host sync
    under ``jax.jit`` / ``torch.compile``; an eager CUDA tensor reads the loop's
    condition back each step), on the shorter side (a problem with R > K is solved
    transposed). The solver computes in float64 where the backend has it (float32
    for JAX without x64). Work: one augmentation per valid row of the shorter side,
    each scanning at most min(R, K) rows of K costs, so O(min(R, K) * R * K) per
    problem; the batch steps in lockstep, each step O(B (R + K)), the step count that
    of the slowest problem (at most about min(R, K)^2, typically a few per row).

    Args:
        cost: real array ``(..., R, K)``, integer or floating; leading axes are a
            batch of independent problems. +inf (-inf with ``maximize=True``) marks a
            forbidden pair. Not differentiable (the result is an index).
        row_valid: optional bool ``(..., R)``; rows marked False take no part and get -1.
        col_valid: optional bool ``(..., K)``; columns marked False are never matched.
        maximize: bool; maximise the total instead. Default False.

    Returns:
        ``(..., R)`` array of the namespace's index dtype (int64; int32 for JAX
        without x64): the column matched to each row, -1 where unmatched (R > K,
        masked rows or columns, or no finite partner). Where the optimum is not
        unique, any optimal matching may be returned (its total equals SciPy's).
        If the finite entries admit no matching of min(valid rows, valid columns)
        pairs (SciPy raises "infeasible"), the solver returns a maximum matching of
        the finite entries, not necessarily the cheapest one.

    Raises:
        ValueError: fewer than 2 axes, masks of the wrong shape, NaN or a wrong-signed
            infinity in ``cost`` (eager arrays; under ``jax.jit`` or
            ``torch.compile`` such entries count as forbidden).
        TypeError: a bool or complex ``cost``, non-bool masks, a non-bool ``maximize``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
        >>> pl.linear_sum_assignment(cost).tolist()
        [1, 0, 2]
        >>> pl.linear_sum_assignment(cost[:, :2]).tolist()
        [1, 0, -1]

    References:
        Crouse, On implementing 2D rectangular assignment algorithms, IEEE TAES 2016.
        https://doi.org/10.1109/TAES.2016.140952
        Peer: ``scipy.optimize.linear_sum_assignment`` (one problem, row and column indices).
    """
    fn = "linear_sum_assignment"
    xp = namespace(fn, cost=cost, row_valid=row_valid, col_valid=col_valid, optional=("row_valid", "col_valid"))
    if cost.ndim < 2:
        raise ValueError(f"{fn}: cost must have shape (..., R, K), got {tuple(cost.shape)}")
    if not xp.isdtype(cost.dtype, ("integral", "real floating")):
        raise TypeError(f"{fn}: cost must be a real (integer or floating) array, got dtype {cost.dtype}")
    *batch, r, k = cost.shape
    _check_mask(fn, "row_valid", row_valid, (*batch, r), xp=xp)
    _check_mask(fn, "col_valid", col_valid, (*batch, k), xp=xp)
    checks.check_flag(fn, "maximize", maximize)
    c = stop_gradient(xp.astype(cost, _solver_dtype(cost, xp=xp)), xp=xp)
    c = -c if maximize else c
    if is_concrete(c) and math.prod(c.shape) and not bool(xp.all(c > -float("inf"))):
        raise ValueError(f"{fn}: cost must not contain NaN or {'+' if maximize else '-'}inf")
    c = xp.where(xp.isnan(c) | (c == -float("inf")), float("inf"), c)
    b = math.prod(batch)
    rv = None if row_valid is None else xp.reshape(row_valid, (b, r))
    cv = None if col_valid is None else xp.reshape(col_valid, (b, k))
    out = _lsa.assign(xp.reshape(c, (b, r, k)), rv, cv, xp=xp)
    return xp.reshape(out, (*batch, r))


def _giou(a: Corners, b: Corners, /, *, xp: ModuleType) -> Array:
    """GIoU of boxes ``a`` and ``b`` given as corners that broadcast (pairwise or elementwise)."""
    inter, union = inter_union(a, b, xp=xp)
    tiny = tiny_like(union, xp=xp)
    zero = xp.zeros((), dtype=union.dtype, device=device(union))
    cw = xp.maximum(xp.maximum(a[2], b[2]) - xp.minimum(a[0], b[0]), zero)
    ch = xp.maximum(xp.maximum(a[3], b[3]) - xp.minimum(a[1], b[1]), zero)
    hull = cw * ch
    return inter / xp.maximum(union, tiny) - (hull - union) / xp.maximum(hull, tiny)


def generalized_box_iou(boxes1: Array, boxes2: Array, /, *, box_format: BoxFormat = "xyxy") -> Array:
    r"""Pairwise generalized IoU of every box of ``boxes1`` with every box of ``boxes2``, batched.

    GIoU = IoU - |C \ (A ∪ B)| / |C|, C the smallest box enclosing A and B; in [-1, 1].

    Equals ``torchvision.ops.generalized_box_iou`` where its denominators are
    positive; a zero union or zero enclosing area (degenerate boxes) is floored
    at the dtype's smallest normal number, so the result stays finite where
    torchvision gives NaN.

    Args:
        boxes1: floating array ``(..., N, 4)``.
        boxes2: floating array ``(..., M, 4)``; leading axes broadcast.
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.

    Returns:
        The GIoU matrix ``(..., N, M)`` in the inputs' dtype (computed in at least float32).

    Raises:
        ValueError: fewer than 2 axes, a last axis other than 4, an unknown format.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.array([[0.0, 0.0, 2.0, 2.0]]); b = np.array([[1.0, 1.0, 3.0, 3.0], [3.0, 0.0, 4.0, 2.0]])
        >>> np.round(pl.generalized_box_iou(a, b), 4).tolist()
        [[-0.0794, -0.25]]

    References:
        Rezatofighi et al., Generalized Intersection over Union, CVPR 2019. https://arxiv.org/abs/1902.09630
        Peer: ``torchvision.ops.generalized_box_iou(boxes1, boxes2)``.
    """
    fn = "generalized_box_iou"
    xp = namespace(fn, boxes1=boxes1, boxes2=boxes2)
    checks.check_boxes(fn, "boxes1", boxes1, xp=xp)
    checks.check_boxes(fn, "boxes2", boxes2, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    if boxes1.ndim < 2 or boxes2.ndim < 2:
        raise ValueError(f"{fn}: boxes1 and boxes2 must have shape (..., N, 4) and (..., M, 4), "
                         f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    a = promote(boxes1, xp=xp)
    b = xp.astype(boxes2, a.dtype)
    ca = tuple(v[..., :, None] for v in corners(a, box_format, xp=xp))
    cb = tuple(v[..., None, :] for v in corners(b, box_format, xp=xp))
    return restore(_giou(ca, cb, xp=xp), xp.result_type(boxes1.dtype, boxes2.dtype), xp=xp)


def _check_set_inputs(fn: str, class_logits: Array, boxes: Array, gt_labels: Array, gt_boxes: Array,
                      gt_valid: Array, box_format: str, /, *, xp: ModuleType, layered: bool) -> None:
    """Shapes and dtypes of the set-prediction inputs: ``(B, Q, C)`` logits (``(L, B, Q, C)`` when ``layered``),
    ``(..., Q, 4)`` boxes, ``(B, G)`` integer labels, ``(B, G, 4)`` boxes and a ``(B, G)`` bool mask."""
    checks.check_floating(fn, "class_logits", class_logits, xp=xp)
    checks.check_boxes(fn, "boxes", boxes, xp=xp)
    checks.check_boxes(fn, "gt_boxes", gt_boxes, xp=xp)
    checks.check_box_format(fn, "box_format", box_format)
    dims = (3, 4) if layered else (3,)
    if class_logits.ndim not in dims or tuple(boxes.shape) != (*class_logits.shape[:-1], 4):
        want = "(B, Q, C) or (L, B, Q, C)" if layered else "(B, Q, C)"
        raise ValueError(f"{fn}: class_logits and boxes must have shapes {want} and (..., Q, 4), "
                         f"got {tuple(class_logits.shape)} and {tuple(boxes.shape)}")
    if not xp.isdtype(gt_labels.dtype, "integral"):
        raise TypeError(f"{fn}: gt_labels must be an integer array, got dtype {gt_labels.dtype}")
    if gt_valid.dtype != xp.bool:
        raise TypeError(f"{fn}: gt_valid must be a bool array, got dtype {gt_valid.dtype}")
    b = class_logits.shape[-3]
    if gt_labels.ndim != 2 or gt_labels.shape[0] != b or tuple(gt_valid.shape) != tuple(gt_labels.shape) \
            or tuple(gt_boxes.shape) != (*gt_labels.shape, 4):
        raise ValueError(f"{fn}: gt_labels, gt_valid and gt_boxes must have shapes (B, G), (B, G) and (B, G, 4) "
                         f"with B = {b}, got {tuple(gt_labels.shape)}, {tuple(gt_valid.shape)} and "
                         f"{tuple(gt_boxes.shape)}")


def _focal_class_cost(x: Array, alpha: float, gamma: float, /, *, xp: ModuleType) -> Array:
    """Deformable DETR's class cost per class: alpha (1-p)^g (-log p) - (1-alpha) p^g (-log(1-p)), p = sigmoid(x)."""
    p = sigmoid(x, xp=xp)
    pos = alpha * (1 - p) ** gamma * -log_sigmoid(x, xp=xp)
    neg = (1 - alpha) * p**gamma * -log_sigmoid(-x, xp=xp)
    return pos - neg


def _match_cost(x: Array, bx: Array, gt_labels: Array, gt_boxes: Array, gt_valid: Array, /, *,
                weights: tuple[float, float, float], class_cost: str, alpha: float, gamma: float, box_format: str,
                xp: ModuleType) -> Array:
    """DETR's matching cost ``(..., Q, G)`` of logits ``x`` ``(..., Q, C)`` and boxes ``bx`` ``(..., Q, 4)``
    against padded ground truth ``(..., G)`` (no gradient)."""
    c = x.shape[-1]
    labels = clip(xp.where(gt_valid, gt_labels, xp.zeros_like(gt_labels)), 0, c - 1, xp=xp)
    per_class = -softmax(x, axis=-1, xp=xp) if class_cost == "softmax" else _focal_class_cost(x, alpha, gamma, xp=xp)
    shape = (*labels.shape[:-1], x.shape[-2], labels.shape[-1])
    cls = take_along_axis(per_class, xp.broadcast_to(labels[..., None, :], shape), axis=-1, xp=xp)
    p = xp.stack(centre_size(bx, box_format, xp=xp), axis=-1)
    t = xp.stack(centre_size(gt_boxes, box_format, xp=xp), axis=-1)
    l1 = xp.sum(xp.abs(p[..., :, None, :] - t[..., None, :, :]), axis=-1)
    giou = _giou(tuple(v[..., :, None] for v in corners(bx, box_format, xp=xp)),
                 tuple(v[..., None, :] for v in corners(gt_boxes, box_format, xp=xp)), xp=xp)
    w_cls, w_l1, w_giou = weights
    return w_cls * cls + w_l1 * l1 - w_giou * giou


def hungarian_match(
    class_logits: Array, boxes: Array, gt_labels: Array, gt_boxes: Array, gt_valid: Array, /, *,
    class_weight: float = 1.0, l1_weight: float = 5.0, giou_weight: float = 2.0, class_cost: ClassCost = "softmax",
    alpha: float = 0.25, gamma: float = 2.0, box_format: BoxFormat = "cxcywh",
) -> Array:
    r"""DETR's Hungarian matcher: the ground truth matched to each query, -1 for none, over a padded batch.

    C_qg = w_cls C_cls(q, label_g) + w_L1 |b_q - b_g|_1 - w_giou GIoU(b_q, b_g);  a min-cost matching per image.

    ``class_cost="softmax"`` (DETR): C_cls = -softmax(logits)[label] (the logits may
    carry a no-object column, never matched). ``"focal"`` (Deformable DETR, DINO,
    RT-DETR): with p = sigmoid(logit) at the label, C_cls = alpha (1-p)^gamma (-log p)
    - (1-alpha) p^gamma (-log(1-p)), computed in log-sigmoid form (the peers add
    1e-8 inside the logs). L1 is on ``(cx, cy, w, h)`` (boxes in another format are
    converted), GIoU on corners, as in both peers. Each image's cost ``(Q, G)`` goes
    to ``linear_sum_assignment`` with ``col_valid=gt_valid``: min(Q, valid G) pairs.
    No gradient flows (the result is an index).

    Args:
        class_logits: floating ``(B, Q, C)`` class scores per query (logits).
        boxes: floating ``(B, Q, 4)`` predicted boxes in ``box_format``.
        gt_labels: integer ``(B, G)`` class of each ground-truth slot, in ``[0, C)`` where valid.
        gt_boxes: floating ``(B, G, 4)`` ground-truth boxes in ``box_format``.
        gt_valid: bool ``(B, G)``; False marks padding slots (never matched).
        class_weight: weight of the class cost; default 1.0 (DETR's ``set_cost_class``).
        l1_weight: weight of the L1 box cost; default 5.0 (``set_cost_bbox``).
        giou_weight: weight of the GIoU cost; default 2.0 (``set_cost_giou``).
        class_cost: ``"softmax"`` (default) or ``"focal"``.
        alpha: focal cost's alpha; default 0.25.
        gamma: focal cost's gamma, >= 0; default 2.0.
        box_format: ``"cxcywh"`` (default, DETR's normalised boxes), ``"xyxy"`` or ``"xywh"``.

    Returns:
        ``(B, Q)`` index array (the namespace's index dtype): the ground-truth slot
        matched to each query, -1 where the query is unmatched.

    Raises:
        ValueError: shapes that do not fit, an unknown ``class_cost`` or ``box_format``,
            a negative ``gamma``, labels out of range (eager arrays).
        TypeError: non-floating logits or boxes, non-integer labels, a non-bool ``gt_valid``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> logits = np.array([[[0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]])
        >>> boxes = np.array([[[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2], [0.8, 0.8, 0.2, 0.2]]])
        >>> gt_boxes = np.array([[[0.8, 0.8, 0.2, 0.2], [0.2, 0.2, 0.2, 0.2]]])
        >>> pl.hungarian_match(logits, boxes, np.array([[1, 0]]), gt_boxes, np.array([[True, True]])).tolist()
        [[-1, 1, 0]]

    References:
        Carion et al., End-to-End Object Detection with Transformers (DETR), ECCV 2020. https://arxiv.org/abs/2005.12872
        Zhu et al., Deformable DETR, ICLR 2021. https://arxiv.org/abs/2010.04159
        Peers: ``HungarianMatcher`` in facebookresearch/detr and fundamentalvision/Deformable-DETR.
    """
    fn = "hungarian_match"
    xp = namespace(fn, class_logits=class_logits, boxes=boxes, gt_labels=gt_labels,
                   gt_boxes=gt_boxes, gt_valid=gt_valid)
    _check_set_inputs(fn, class_logits, boxes, gt_labels, gt_boxes, gt_valid, box_format, xp=xp, layered=False)
    checks.check_option(fn, "class_cost", class_cost, ("softmax", "focal"))
    checks.check_nonnegative(fn, "gamma", float(gamma))
    checks.check_integer_range(fn, "gt_labels", xp.where(gt_valid, gt_labels, xp.zeros_like(gt_labels)), 0,
                               class_logits.shape[-1] - 1, xp=xp)
    x = stop_gradient(promote(class_logits, xp=xp), xp=xp)
    cost = _match_cost(x, stop_gradient(xp.astype(boxes, x.dtype), xp=xp), gt_labels, xp.astype(gt_boxes, x.dtype),
                       gt_valid, weights=(float(class_weight), float(l1_weight), float(giou_weight)),
                       class_cost=class_cost, alpha=float(alpha), gamma=float(gamma), box_format=box_format, xp=xp)
    return linear_sum_assignment(cost, col_valid=gt_valid)


def _matched_targets(match: Array, gt_labels: Array, gt_boxes: Array, gt_valid: Array, /, *, xp: ModuleType
                     ) -> tuple[Array, Array, Array]:
    """For ``(L, B, Q)`` matches: whether each query is matched (to a valid slot), its label and its box."""
    g = gt_labels.shape[-1]
    shape = match.shape
    index = clip(match, 0, max(g - 1, 0), xp=xp)
    valid = take_along_axis(xp.broadcast_to(gt_valid, (*shape[:-1], g)), index, axis=-1, xp=xp) & (match >= 0)
    labels = take_along_axis(xp.broadcast_to(gt_labels, (*shape[:-1], g)), index, axis=-1, xp=xp)
    box_index = xp.broadcast_to(index[..., None], (*shape, 4))
    boxes = take_along_axis(xp.broadcast_to(gt_boxes, (*shape[:-1], g, 4)), box_index, axis=-2, xp=xp)
    return valid, labels, boxes


def _class_term(x: Array, matched: Array, labels: Array, iou: Array, /, *, class_loss: str, no_object_weight: float,
                alpha: float, gamma: float, vf_alpha: float, num_boxes: Array, xp: ModuleType) -> Array:
    """The classification term summed over layers: DETR's weighted CE mean per layer, or focal / varifocal sums
    divided by ``num_boxes``."""
    c = x.shape[-1]
    if class_loss == "ce":
        target = xp.where(matched, labels, xp.full_like(labels, c - 1))
        nll = softmax_nll(x, target, axis=-1, xp=xp)
        w = xp.where(matched, xp.ones_like(nll), xp.full_like(nll, no_object_weight))
        return xp.sum(xp.sum(w * nll, axis=(1, 2)) / xp.sum(w, axis=(1, 2)))
    classes = xp.arange(c, dtype=labels.dtype, device=device(labels))
    t = xp.astype((labels[..., None] == classes) & matched[..., None], x.dtype)
    if class_loss == "focal":  # Deformable DETR's sigmoid_focal_loss(...).mean(1).sum() / num_boxes * Q
        p = sigmoid(x, xp=xp)
        p_t = p * t + (1 - p) * (1 - t)
        loss = sigmoid_cross_entropy(x, t, xp=xp) * (1 - p_t) ** gamma * (alpha * t + (1 - alpha) * (1 - t))
        return xp.sum(loss) / num_boxes
    score = t * xp.where(matched, iou, xp.zeros_like(iou))[..., None]  # RT-DETR's VFL: IoU-aware targets
    p = stop_gradient(sigmoid(x, xp=xp), xp=xp)
    weight = vf_alpha * p**gamma * (1 - t) + score
    return xp.sum(weight * sigmoid_cross_entropy(x, score, xp=xp)) / num_boxes


def _num_boxes(gt_valid: Array, num_boxes: Any, all_reduce: Callable[[Array], Array] | None, like: Array, /, *,
               xp: ModuleType) -> Array:
    """The normaliser: ``num_boxes``, or the valid ground-truth count passed through ``all_reduce``; at least 1."""
    if num_boxes is None:
        n = xp.sum(xp.astype(gt_valid, like.dtype))
        n = n if all_reduce is None else all_reduce(n)
    else:
        n = xp.asarray(num_boxes, dtype=like.dtype, device=device(like))
    return xp.maximum(n, xp.ones((), dtype=like.dtype, device=device(like)))


def set_prediction_loss(
    class_logits: Array, boxes: Array, gt_labels: Array, gt_boxes: Array, gt_valid: Array, /, *,
    match: Array | None = None, class_loss: ClassLoss = "ce", no_object_weight: float = 0.1,
    class_weight: float = 1.0, l1_weight: float = 5.0, giou_weight: float = 2.0, num_boxes: Any = None,
    all_reduce: Callable[[Array], Array] | None = None, return_terms: bool = False, focal_alpha: float = 0.25,
    focal_gamma: float = 2.0, varifocal_alpha: float = 0.75, box_format: BoxFormat = "cxcywh",
) -> Any:
    r"""DETR's set criterion: Hungarian matching, then classification over all queries and box losses on pairs.

    L = w_cls L_class + w_L1 sum_m |b - b̂|_1 / N + w_giou sum_m (1 - GIoU(b, b̂)) / N, per decoder layer, summed.

    N is ``num_boxes``, or the count of valid ground truth in ``gt_valid`` passed
    through ``all_reduce`` (the global batch), at least 1. L_class is, for
    ``class_loss="ce"`` (DETR), softmax cross entropy over all B Q queries with
    unmatched queries labelled no-object (the last of C + 1 columns), weighted 1
    and ``no_object_weight``, divided by the sum of the weights (DETR's
    ``loss_ce``); for ``"focal"`` (Deformable DETR; C columns, no no-object
    one) the sigmoid focal loss summed over every query and class, / N (their
    ``sigmoid_focal_loss(...).mean(1).sum() / num_boxes * Q``); for
    ``"varifocal"`` (RT-DETR) BCE against the IoU of the matched pair at its
    class (0 elsewhere), weighted ``varifocal_alpha p^gamma`` on negatives and by
    the target on positives (p detached), summed, / N. L1 is on ``(cx, cy, w, h)``.
    DETR and Deformable DETR divide the all-reduced count by the world size:
    pass ``all_reduce`` as a mean over devices (``lax.pmean``) to get theirs.

    Args:
        class_logits: floating ``(B, Q, C + 1)`` for ``"ce"``, ``(B, Q, C)`` otherwise;
            a leading decoder-layer axis ``(L, B, Q, ...)`` adds auxiliary losses.
        boxes: floating ``(B, Q, 4)`` (or ``(L, B, Q, 4)``) predicted boxes in ``box_format``.
        gt_labels: integer ``(B, G)`` classes of the ground-truth slots, in ``[0, C)`` where valid.
        gt_boxes: floating ``(B, G, 4)`` ground-truth boxes in ``box_format``.
        gt_valid: bool ``(B, G)``; False marks padding slots.
        match: optional integer ``(B, Q)`` or ``(L, B, Q)`` slot of each query (-1 none);
            default: ``hungarian_match`` per layer with these weights (softmax cost for
            ``"ce"``, focal cost with ``focal_alpha``/``focal_gamma`` otherwise), no gradient.
        class_loss: ``"ce"`` (default), ``"focal"`` or ``"varifocal"``.
        no_object_weight: weight of no-object targets in ``"ce"``; default 0.1 (DETR's ``eos_coef``).
        class_weight: weight of the class term; default 1.0.
        l1_weight: weight of the L1 term; default 5.0.
        giou_weight: weight of the GIoU term; default 2.0.
        num_boxes: optional normaliser N (number or 0-d array); default: counted from ``gt_valid``.
        all_reduce: optional function applied to the counted N (e.g. a sum across devices).
        return_terms: bool; also return the unweighted terms. Default False.
        focal_alpha: focal alpha (loss and matching cost); default 0.25.
        focal_gamma: focal / varifocal gamma, >= 0; default 2.0.
        varifocal_alpha: varifocal weight of negatives; default 0.75 (RT-DETR).
        box_format: ``"cxcywh"`` (default), ``"xyxy"`` or ``"xywh"``, both box inputs.

    Returns:
        The 0-d loss in ``class_logits``' dtype (computed in at least float32); with
        ``return_terms=True`` a dict with ``"loss"`` (the total) and the unweighted
        ``"class"``, ``"l1"`` and ``"giou"`` terms, each summed over layers.

    Raises:
        ValueError: shapes that do not fit, unknown options, a negative ``focal_gamma``,
            labels out of range (eager arrays).
        TypeError: non-floating logits or boxes, non-integer labels or ``match``, a non-bool
            ``gt_valid`` or ``return_terms``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> logits = np.array([[[4.0, -4.0, -4.0], [-4.0, -4.0, 4.0]]])
        >>> boxes = np.array([[[0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.1, 0.1]]])
        >>> loss = pl.set_prediction_loss(logits, boxes, np.array([[0]]), boxes[:, :1], np.array([[True]]))
        >>> round(float(loss), 4)
        0.0007

    References:
        Carion et al., End-to-End Object Detection with Transformers (DETR), ECCV 2020. https://arxiv.org/abs/2005.12872
        Zhu et al., Deformable DETR, ICLR 2021. https://arxiv.org/abs/2010.04159
        Zhao et al., DETRs Beat YOLOs on Real-time Object Detection (RT-DETR), CVPR 2024. https://arxiv.org/abs/2304.08069
        Peers: ``SetCriterion`` in facebookresearch/detr and fundamentalvision/Deformable-DETR.
    """
    fn = "set_prediction_loss"
    xp = namespace(fn, class_logits=class_logits, boxes=boxes, gt_labels=gt_labels, gt_boxes=gt_boxes,
                   gt_valid=gt_valid, match=match, optional=("match",))
    _check_set_inputs(fn, class_logits, boxes, gt_labels, gt_boxes, gt_valid, box_format, xp=xp, layered=True)
    checks.check_option(fn, "class_loss", class_loss, ("ce", "focal", "varifocal"))
    checks.check_nonnegative(fn, "focal_gamma", float(focal_gamma))
    checks.check_flag(fn, "return_terms", return_terms)
    n_cls = class_logits.shape[-1] - (1 if class_loss == "ce" else 0)
    checks.check_integer_range(fn, "gt_labels", xp.where(gt_valid, gt_labels, xp.zeros_like(gt_labels)), 0,
                               n_cls - 1, xp=xp)
    x = promote(class_logits, xp=xp)
    x = x if x.ndim == 4 else x[None, ...]
    bx = xp.astype(boxes, x.dtype)
    bx = bx if bx.ndim == 4 else bx[None, ...]
    gtb = xp.astype(gt_boxes, x.dtype)
    match = _layer_match(fn, match, x, bx, gt_labels, gtb, gt_valid, class_loss, (class_weight, l1_weight, giou_weight),
                         focal_alpha, focal_gamma, box_format, xp=xp)
    matched, labels, tb = _matched_targets(match, gt_labels, gtb, gt_valid, xp=xp)
    tb = xp.where(matched[..., None], tb, stop_gradient(bx, xp=xp))  # unmatched: a finite stand-in, masked below
    n = _num_boxes(gt_valid, num_boxes, all_reduce, x, xp=xp)
    zero = xp.zeros((), dtype=x.dtype, device=device(x))
    p, t = xp.stack(centre_size(bx, box_format, xp=xp), axis=-1), xp.stack(centre_size(tb, box_format, xp=xp), axis=-1)
    l1 = xp.sum(xp.where(matched[..., None], xp.abs(p - t), zero)) / n
    pc, tc = corners(bx, box_format, xp=xp), corners(tb, box_format, xp=xp)
    giou = xp.sum(xp.where(matched, 1 - _giou(pc, tc, xp=xp), zero)) / n
    iou = _matched_iou(pc, tc, xp=xp) if class_loss == "varifocal" else zero
    cls = _class_term(x, matched, labels, iou, class_loss=class_loss, no_object_weight=float(no_object_weight),
                      alpha=float(focal_alpha), gamma=float(focal_gamma), vf_alpha=float(varifocal_alpha),
                      num_boxes=n, xp=xp)
    total = float(class_weight) * cls + float(l1_weight) * l1 + float(giou_weight) * giou
    dtype = class_logits.dtype
    if not return_terms:
        return restore(total, dtype, xp=xp)
    return {k: restore(v, dtype, xp=xp) for k, v in (("loss", total), ("class", cls), ("l1", l1), ("giou", giou))}


def _matched_iou(pc: Corners, tc: Corners, /, *, xp: ModuleType) -> Array:
    """The IoU of each query's box with its matched target, without gradient (RT-DETR detaches it)."""
    inter, union = inter_union(pc, tc, xp=xp)
    return stop_gradient(inter / xp.maximum(union, tiny_like(union, xp=xp)), xp=xp)


def _layer_match(fn: str, match: Array | None, x: Array, bx: Array, gt_labels: Array, gt_boxes: Array,
                 gt_valid: Array, class_loss: str, weights: tuple[Any, Any, Any], alpha: Any, gamma: Any,
                 box_format: str, /, *, xp: ModuleType) -> Array:
    """``(L, B, Q)`` matches: the given ones (broadcast over layers), else ``hungarian_match`` of every layer at
    once (the layers are a batch of independent problems)."""
    shape = x.shape[:-1]
    if match is not None:
        if not xp.isdtype(match.dtype, "integral"):
            raise TypeError(f"{fn}: match must be an integer array, got dtype {match.dtype}")
        if tuple(match.shape) not in (shape, shape[1:]):
            raise ValueError(f"{fn}: match must have shape {shape[1:]} or {shape}, got {tuple(match.shape)}")
        return xp.broadcast_to(match, shape)
    layers = shape[0]
    g = gt_labels.shape[-1]
    w_cls, w_l1, w_giou = (float(w) for w in weights)
    cost = _match_cost(stop_gradient(x, xp=xp), stop_gradient(bx, xp=xp),
                       xp.broadcast_to(gt_labels, (layers, *gt_labels.shape)),
                       xp.broadcast_to(gt_boxes, (layers, *gt_boxes.shape)),
                       xp.broadcast_to(gt_valid, (layers, *gt_valid.shape)), weights=(w_cls, w_l1, w_giou),
                       class_cost="softmax" if class_loss == "ce" else "focal", alpha=float(alpha), gamma=float(gamma),
                       box_format=box_format, xp=xp)
    return linear_sum_assignment(cost, col_valid=xp.broadcast_to(gt_valid, (layers, *shape[1:2], g)))
