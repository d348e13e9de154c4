"""Dense task-aligned assignment (TOOD, YOLOv8) and the YOLOv8 detection loss built on it.

Ground truth is padded: ``gt_labels`` ``(B, G)``, ``gt_boxes`` ``(B, G, 4)``
xyxy in pixels and ``gt_valid`` ``(B, G)`` bool; every output has a fixed
shape, nothing reads a value back to the host, and no Python loop runs over
images, so both functions compile under ``jax.jit`` and
``torch.compile(fullgraph=True)``. The kernels are in ``_tal``.
"""

from __future__ import annotations

import operator
from types import ModuleType
from typing import Any, Literal

from .._backend import Array, device, host_view, is_concrete, stop_gradient
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import promote, restore
from ._tal import Assignment, LossTerms, assign, background, yolo_terms

__all__ = ["task_aligned_assign", "task_aligned_loss"]

Overlap = Literal["ciou", "iou"]


def _check_shape(fn: str, name: str, x: Array, want: tuple[int | None, ...], text: str) -> None:
    got = tuple(x.shape)
    if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want, strict=True)):
        raise ValueError(f"{fn}: {name} must have shape {text}, got {got}")


def _check_ground_truth(fn: str, gt_labels: Array, gt_boxes: Array, gt_valid: Array, b: int, c: int, *,
                        xp: ModuleType) -> None:
    """Shapes and dtypes of the padded ground truth; labels of valid boxes in [0, C) on eager arrays."""
    g = gt_boxes.shape[1] if gt_boxes.ndim == 3 else None
    _check_shape(fn, "gt_boxes", gt_boxes, (b, None, 4), f"(B, G, 4) with B = {b}")
    checks.check_floating(fn, "gt_boxes", gt_boxes, xp=xp)
    _check_shape(fn, "gt_labels", gt_labels, (b, g), f"(B, G) = ({b}, {g})")
    _check_shape(fn, "gt_valid", gt_valid, (b, g), f"(B, G) = ({b}, {g})")
    if not xp.isdtype(gt_labels.dtype, "integral"):
        raise TypeError(f"{fn}: gt_labels must have an integer dtype, got {gt_labels.dtype}")
    if gt_valid.dtype != xp.bool:
        raise TypeError(f"{fn}: gt_valid must be bool, got {gt_valid.dtype}")
    if is_concrete(gt_labels) and is_concrete(gt_valid) and 0 not in gt_labels.shape:
        labels, hp = host_view(gt_labels, xp=xp)  # read on the host: a closed-over JAX array stages no check
        valid, _ = host_view(gt_valid, xp=xp)
        if bool(hp.any(valid & ((labels < 0) | (labels >= c)))):
            raise ValueError(f"{fn}: gt_labels of valid boxes must lie in [0, {c - 1}], found one outside")


def _options(fn: str, top_k: Any, alpha: Any, beta: Any, eps: Any, min_size: Any, overlap: Any) -> dict[str, Any]:
    """The assignment options, checked, as Python scalars."""
    top_k = checks.check_count(fn, "top_k", top_k, 1)
    values = {"alpha": alpha, "beta": beta, "eps": eps, "min_size": min_size}
    checked = {name: checks.check_nonnegative(fn, name, value) for name, value in values.items()}
    checks.check_option(fn, "overlap", overlap, ("ciou", "iou"))
    return {"top_k": top_k, **checked, "overlap": overlap}


def _poison(found: Assignment, gt_labels: Array, gt_valid: Array, c: int, *, xp: ModuleType) -> Assignment:
    """Target scores NaN where a valid label is out of range (values not checked under tracing)."""
    bad = xp.any(gt_valid & ((gt_labels < 0) | (gt_labels >= c)))
    nan = xp.asarray(float("nan"), dtype=found.scores.dtype, device=device(found.scores))
    return found._replace(scores=found.scores + xp.where(bad, nan, 0))


def task_aligned_assign(
    scores: Array,
    boxes: Array,
    anchor_points: Array,
    gt_labels: Array,
    gt_boxes: Array,
    gt_valid: Array,
    /,
    *,
    top_k: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    eps: float = 1e-9,
    min_size: float = 0.0,
    overlap: Overlap = "ciou",
) -> Assignment:
    r"""Task-aligned assignment of anchors to padded ground truth (TOOD; ultralytics' YOLOv8 assigner).

    t = s^alpha u^beta for every (ground truth, anchor) pair whose anchor point
    lies inside the box; each ground truth takes its ``top_k`` anchors of
    largest t; target score = t u_max / (t_max + eps) at the ground truth's class.

    ``s`` is the anchor's score at the ground truth's class, ``u`` the overlap
    of the anchor's predicted box with the ground-truth box: CIoU clamped at
    0 (``overlap="ciou"``, what ultralytics' ``TaskAlignedAssigner`` computes
    in 8.x, checked against 8.4.190) or IoU (``"iou"``, TOOD's). An anchor point
    is inside a box when it is more than ``eps`` from every side. An anchor
    claimed by several ground truths goes to the one of highest overlap with
    it, taken over every candidate ground truth (as ultralytics; the first on
    ties). ``t_max``, ``u_max``: the largest t and u over each ground truth's
    final anchors. Ties in the top-k go to the lower anchor index (a stable
    sort); ``torch.topk`` leaves their order unspecified, so the two can pick
    different anchors only among equal t, in practice t = 0 (an anchor inside
    the box whose predicted box does not overlap it, which then gets a target
    score of 0 and weighs nothing in the loss). ultralytics' ``topk2`` (a
    second top-k) is not supported. The inputs are held constant in the
    gradient (the assignment is not differentiated).

    To reproduce ultralytics 8.4's assigner, whose candidate test widens a
    side shorter than the second model stride (16 px for strides 8, 16, 32)
    to that length about the box centre, pass ``min_size=16``; its
    background anchors carry the first ground truth's label and box where
    these outputs carry ``C`` and zeros (compare under ``fg_mask``).

    Args:
        scores: predicted class probabilities (after the sigmoid), ``(B, A, C)``; floating.
        boxes: predicted boxes, xyxy in pixels, ``(B, A, 4)``; floating.
        anchor_points: anchor centres in pixels, ``(A, 2)`` as (x, y).
        gt_labels: ground-truth classes ``(B, G)``, integer in [0, C) where valid.
        gt_boxes: ground-truth boxes, xyxy in pixels, ``(B, G, 4)``.
        gt_valid: ``(B, G)`` bool, False for padding.
        top_k: anchors kept per ground truth, >= 1 (default 10, ultralytics'
            v8 loss; its assigner's own default is 13); at most A.
        alpha: exponent of the score, >= 0 (default 0.5, as the v8 loss; TOOD: 1).
        beta: exponent of the overlap, >= 0 (default 6).
        eps: >= 0: the margin of the inside test and the normaliser's
            denominator (default 1e-9).
        min_size: sides shorter than this are widened to it for the inside
            test only (default 0: no widening).
        overlap: ``"ciou"`` (default) or ``"iou"``.

    Returns:
        An ``Assignment`` (a NamedTuple): ``labels`` ``(B, A)`` in
        ``gt_labels``' dtype (``C`` on background), ``boxes`` ``(B, A, 4)``
        (zeros on background), ``scores`` ``(B, A, C)`` the normalised target
        scores in ``scores``' dtype (0 on background), ``fg_mask`` ``(B, A)``
        bool, ``gt_index`` ``(B, A)`` the assigned ground truth (-1 on background).

    Raises:
        ValueError: shapes that do not match, ``top_k < 1``, a negative
            ``alpha``, ``beta``, ``eps`` or ``min_size``, an unknown
            ``overlap``, a valid label outside [0, C) (eager arrays; under
            tracing the target scores become NaN instead).
        TypeError: non-floating scores or boxes, integer-free labels, a
            non-bool ``gt_valid``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> anchors = np.array([[2.0, 2.0], [6.0, 2.0], [2.0, 6.0], [6.0, 6.0]])
        >>> scores = np.full((1, 4, 2), 0.5)
        >>> boxes = np.array([[[0.0, 0.0, 4.0, 4.0]] * 4])
        >>> out = pl.task_aligned_assign(scores, boxes, anchors, np.array([[1]]), np.array([[[0.0, 0.0, 5.0, 5.0]]]),
        ...                              np.array([[True]]), top_k=2)
        >>> out.fg_mask.tolist(), out.labels.tolist(), out.gt_index.tolist()
        ([[True, False, False, False]], [[1, 2, 2, 2]], [[0, -1, -1, -1]])

    References:
        Feng et al., TOOD: Task-aligned One-stage Object Detection, ICCV 2021.
        https://arxiv.org/abs/2108.07755
        Peer: ``ultralytics.utils.tal.TaskAlignedAssigner`` (YOLOv8).
    """
    fn = "task_aligned_assign"
    xp = namespace(fn, scores=scores, boxes=boxes, anchor_points=anchor_points,
                   gt_labels=gt_labels, gt_boxes=gt_boxes, gt_valid=gt_valid)
    options = _options(fn, top_k, alpha, beta, eps, min_size, overlap)
    checks.check_floating(fn, "scores", scores, xp=xp)
    checks.check_floating(fn, "boxes", boxes, xp=xp)
    checks.check_floating(fn, "anchor_points", anchor_points, xp=xp)
    _check_shape(fn, "scores", scores, (None, None, None), "(B, A, C)")
    b, a, c = scores.shape
    _check_shape(fn, "boxes", boxes, (b, a, 4), f"(B, A, 4) = ({b}, {a}, 4)")
    _check_shape(fn, "anchor_points", anchor_points, (a, 2), f"(A, 2) = ({a}, 2)")
    _check_ground_truth(fn, gt_labels, gt_boxes, gt_valid, b, c, xp=xp)
    s = stop_gradient(promote(scores, xp=xp), xp=xp)
    cast = [stop_gradient(xp.astype(x, s.dtype), xp=xp) for x in (boxes, anchor_points, gt_boxes)]
    if gt_boxes.shape[1] == 0 or a == 0:
        found = background(s, cast[0], gt_labels, xp=xp)
    else:
        found = _poison(assign(s, cast[0], cast[1], gt_labels, cast[2], gt_valid, xp=xp, **options),
                        gt_labels, gt_valid, c, xp=xp)
    return found._replace(scores=restore(found.scores, scores.dtype, xp=xp),
                          boxes=restore(found.boxes, gt_boxes.dtype, xp=xp))


def task_aligned_loss(
    cls_logits: Array,
    box_dist: Array,
    anchor_points: Array,
    stride: Array | float,
    gt_labels: Array,
    gt_boxes: Array,
    gt_valid: Array,
    /,
    *,
    reg_max: int = 16,
    box_weight: float = 7.5,
    cls_weight: float = 0.5,
    dfl_weight: float = 1.5,
    top_k: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    eps: float = 1e-9,
    min_size: float = 0.0,
    overlap: Overlap = "ciou",
    batch_scale: bool = True,
    return_terms: bool = False,
) -> Array | tuple[Array, dict[str, Array]]:
    r"""The YOLOv8 detection loss (ultralytics' ``v8DetectionLoss``) on ``task_aligned_assign``.

    L = B (box_weight L_box + cls_weight L_cls + dfl_weight L_dfl),  each term a sum divided by max(sum t, 1)

    The box distribution ``box_dist`` is decoded by the DFL integral (the
    expected bin of a softmax over ``reg_max`` bins per side: distances
    l, t, r, b in strides from the anchor) into xyxy boxes; the assignment
    takes the sigmoid of ``cls_logits`` and the decoded boxes in pixels, both
    held constant. With ``t`` the target scores: L_cls is the BCE with logits
    against ``t`` summed over anchors and classes; L_box is 1 - CIoU of each
    foreground box, weighted by its anchor's target-score sum; L_dfl the
    distribution focal loss of each side (the mean over the 4), targets
    clipped to [0, reg_max - 1.01], weighted the same way. The box and DFL
    terms are computed in stride units, as ultralytics does. ultralytics
    returns the weighted terms times the batch size B and trains on their
    sum: that is the default; ``batch_scale=False`` leaves out the factor B.

    Args:
        cls_logits: class logits ``(B, A, C)``; floating.
        box_dist: bin logits ``(B, A, 4 reg_max)``, side-major (l, t, r, b),
            as ultralytics' head output permuted to anchors first.
        anchor_points: anchor centres in pixels ``(A, 2)`` (ultralytics'
            ``make_anchors`` points times their stride).
        stride: each anchor's stride, ``(A,)`` or ``(A, 1)``, or one number.
        gt_labels: ground-truth classes ``(B, G)``, integer in [0, C) where valid.
        gt_boxes: ground-truth boxes, xyxy in pixels, ``(B, G, 4)``.
        gt_valid: ``(B, G)`` bool, False for padding.
        reg_max: bins per side, >= 2 (default 16).
        box_weight: gain of the CIoU term (default 7.5, ultralytics' ``box``).
        cls_weight: gain of the BCE term (default 0.5, ``cls``).
        dfl_weight: gain of the DFL term (default 1.5, ``dfl``).
        top_k: ``task_aligned_assign``'s ``top_k`` (default 10).
        alpha: ``task_aligned_assign``'s ``alpha`` (default 0.5).
        beta: ``task_aligned_assign``'s ``beta`` (default 6).
        eps: ``task_aligned_assign``'s ``eps`` (default 1e-9).
        min_size: ``task_aligned_assign``'s ``min_size`` (default 0; 16 is
            ultralytics 8.4 with strides 8, 16, 32).
        overlap: ``task_aligned_assign``'s ``overlap`` (default ``"ciou"``).
        batch_scale: multiply by the batch size B, as ultralytics (default True).
        return_terms: also return a dict of the weighted terms ``"box"``,
            ``"cls"``, ``"dfl"`` (without the factor B: ultralytics'
            ``loss_items``) and the ``"assignment"``.

    Returns:
        A 0-d array in ``cls_logits``' dtype; with ``return_terms``, the pair
        ``(loss, terms)``.

    Raises:
        ValueError: shapes that do not match, ``reg_max < 2``, a ``stride``
            of the wrong shape, the options ``task_aligned_assign`` rejects.
        TypeError: non-floating inputs, non-integer labels, a non-bool
            ``gt_valid`` or flag.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> anchors = np.array([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])
        >>> logits, dist = np.zeros((1, 4, 2)), np.zeros((1, 4, 4 * 4))
        >>> loss = pl.task_aligned_loss(logits, dist, anchors, 8.0, np.array([[0]]),
        ...                             np.array([[[1.0, 1.0, 9.0, 9.0]]]), np.array([[True]]), reg_max=4)
        >>> round(float(loss), 4)
        3.7298

    References:
        Jocher et al., Ultralytics YOLOv8, 2023. https://github.com/ultralytics/ultralytics
        (``ultralytics.utils.loss.v8DetectionLoss``, the peer).
        Feng et al., TOOD, ICCV 2021. https://arxiv.org/abs/2108.07755
        Li et al., Generalized Focal Loss, NeurIPS 2020. https://arxiv.org/abs/2006.04388
    """
    fn = "task_aligned_loss"
    xp = namespace(fn, cls_logits=cls_logits, box_dist=box_dist, anchor_points=anchor_points,
                   gt_labels=gt_labels, gt_boxes=gt_boxes, gt_valid=gt_valid)
    options = _options(fn, top_k, alpha, beta, eps, min_size, overlap)
    checks.check_flags(fn, batch_scale=batch_scale, return_terms=return_terms)
    reg_max = checks.check_count(fn, "reg_max", reg_max, 2)
    box_weight, cls_weight, dfl_weight = (checks.check_nonnegative(fn, name, w) for name, w in (
        ("box_weight", box_weight), ("cls_weight", cls_weight), ("dfl_weight", dfl_weight)))
    for name, x in (("cls_logits", cls_logits), ("box_dist", box_dist), ("anchor_points", anchor_points)):
        checks.check_floating(fn, name, x, xp=xp)
    _check_shape(fn, "cls_logits", cls_logits, (None, None, None), "(B, A, C)")
    b, a, c = cls_logits.shape
    _check_shape(fn, "box_dist", box_dist, (b, a, 4 * reg_max), f"(B, A, 4 reg_max) = ({b}, {a}, {4 * reg_max})")
    _check_shape(fn, "anchor_points", anchor_points, (a, 2), f"(A, 2) = ({a}, 2)")
    _check_ground_truth(fn, gt_labels, gt_boxes, gt_valid, b, c, xp=xp)
    x = promote(cls_logits, xp=xp)
    steps = _strides(fn, stride, a, x, xp=xp)
    terms: LossTerms = yolo_terms(x, xp.astype(box_dist, x.dtype), xp.astype(anchor_points, x.dtype), steps,
                                  gt_labels, xp.astype(gt_boxes, x.dtype), gt_valid, reg_max=operator.index(reg_max),
                                  options=options, xp=xp)
    gains = {k: checks.check_real(fn, f"{k}_weight", v) for k, v in (("box", box_weight), ("cls", cls_weight),
                                                                      ("dfl", dfl_weight))}
    weighted = {k: gains[k] * getattr(terms, k) for k in ("box", "cls", "dfl")}
    loss = (weighted["box"] + weighted["cls"] + weighted["dfl"]) * (b if batch_scale else 1)
    loss = restore(_poison_loss(loss, gt_labels, gt_valid, c, xp=xp), cls_logits.dtype, xp=xp)
    if not return_terms:
        return loss
    out: dict[str, Any] = {k: restore(v, cls_logits.dtype, xp=xp) for k, v in weighted.items()}
    return loss, {**out, "assignment": terms.assignment}


def _strides(fn: str, stride: Any, a: int, like: Array, *, xp: ModuleType) -> Array:
    """``stride`` as ``(A,)`` in ``like``'s dtype: from a number, or an array ``(A,)``/``(A, 1)``/0-d."""
    if isinstance(stride, (int, float)) and not isinstance(stride, bool):
        return xp.full((a,), float(stride), dtype=like.dtype, device=device(like))
    checks.check_array(fn, "stride", stride)  # else a number (above)
    arr = xp.asarray(stride, dtype=like.dtype, device=device(like))
    if arr.ndim == 0:
        return xp.broadcast_to(arr, (a,))
    flat = arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1)
    # a symbolic size (torch.compile(dynamic=True)) is not an int; shapes are static everywhere else
    if flat and (arr.shape[0] == a or not isinstance(arr.shape[0], int)):
        return xp.reshape(arr, (-1,))
    raise ValueError(f"{fn}: stride must be a number or have shape (A,) or (A, 1) with A = {a}, got {tuple(arr.shape)}")


def _poison_loss(loss: Array, gt_labels: Array, gt_valid: Array, c: int, *, xp: ModuleType) -> Array:
    """``loss`` NaN where a valid label is out of range (not checked under tracing)."""
    if 0 in gt_labels.shape:
        return loss
    bad = xp.any(gt_valid & ((gt_labels < 0) | (gt_labels >= c)))
    return xp.where(bad, xp.asarray(float("nan"), dtype=loss.dtype, device=device(loss)), loss)
