"""Boundary losses: boundary (signed distance), Hausdorff-DT, Boundary IoU and clDice.

Distance maps come from ``polyloss.distance`` and carry no gradient: each loss
says whether it builds them from ``y_true`` or from a detached prediction.
Morphology (erosion, dilation) is ``_xp.min_pool`` / ``_xp.max_pool``, shared
by the Boundary IoU metric, its soft version and clDice's soft skeleton.

Shapes: ``y_pred`` is (N, C, *spatial) with 2 or 3 spatial axes, or
channels-last with ``class_axis=-1``; ``mode`` and ``from_logits`` as in the
region losses (sigmoid for ``"binary"``/``"multilabel"``, softmax over the
class axis for ``"multiclass"``, whose ``y_true`` is integer indices or
probabilities). ``include_background=False`` drops class 0 after the
activation (ignored when there is a single channel, as MONAI does).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from . import _checks as checks
from ._reduce import as_float, promote, reduce_loss, restore
from ._skeleton import soft_skeleton
from ._xp import (
    Array,
    array_namespace,
    default_float,
    device,
    min_pool,
    one_hot,
    sigmoid,
    softmax,
    stop_gradient,
)
from ._edt import any_spatial as _any_spatial, check_mask as _check_mask, edt as _edt, foreground as _foreground

__all__ = ["boundary_iou", "boundary_iou_loss", "boundary_loss", "hausdorff_dt_loss", "soft_cldice_loss"]

MODES = ("binary", "multilabel", "multiclass")


# --------------------------------------------------------------------------- #
# Inputs: probabilities and targets, channels first
# --------------------------------------------------------------------------- #


def _probabilities(
    fn: str, y_pred: Array, mode: str, class_axis: int, from_logits: bool, *, xp: ModuleType
) -> tuple[Array, int]:
    """Validated ``y_pred`` as probabilities in the compute dtype, and its class axis (1 or ndim - 1)."""
    checks.check_option(fn, "mode", mode, MODES)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    if y_pred.ndim not in (4, 5):
        raise ValueError(
            f"{fn}: y_pred must have shape (N, C, *spatial) with 2 or 3 spatial axes, got {tuple(y_pred.shape)}"
        )
    axis = checks.normalize_axis(fn, "class_axis", class_axis, y_pred.ndim)
    if axis not in (1, y_pred.ndim - 1):
        raise ValueError(f"{fn}: class_axis must be 1 (channels first) or -1 (channels last), got {class_axis!r}")
    classes = y_pred.shape[axis]
    if mode == "binary" and classes != 1:
        raise ValueError(f"{fn}: mode='binary' needs one channel along class_axis {class_axis}, got {classes}")
    if mode == "multiclass" and classes < 2:
        raise ValueError(f"{fn}: mode='multiclass' (softmax) needs C >= 2 along class_axis {class_axis}, got {classes}")
    x = promote(y_pred, xp=xp)
    if from_logits:
        x = softmax(x, axis=axis, xp=xp) if mode == "multiclass" else sigmoid(x, xp=xp)
    return x, axis


def _targets(fn: str, y_true: Array, p: Array, axis: int, mode: str, *, xp: ModuleType) -> Array:
    """``y_true`` as floats of ``p``'s shape: one-hot for integer multiclass targets, else cast."""
    if mode == "multiclass" and checks.is_integer_target(fn, y_true, xp=xp):
        checks.check_index_target_shape(fn, p, y_true, axis)
        checks.check_labels(fn, y_true, p.shape[axis], None, xp=xp)
        return one_hot(y_true, num_classes=p.shape[axis], axis=axis, dtype=p.dtype, xp=xp)
    checks.check_same_shape(fn, p, y_true)
    if mode != "multiclass" and xp.isdtype(y_true.dtype, "integral"):
        checks.check_labels(fn, y_true, 2, None, xp=xp)
    return stop_gradient(as_float(y_true, p, xp=xp), xp=xp)


def _drop_background(x: Array, axis: int, include_background: bool) -> Array:
    if include_background or x.shape[axis] == 1:
        return x
    return x[(slice(None),) * axis + (slice(1, None), ...)]


def _channels_first(x: Array, axis: int, include_background: bool, *, xp: ModuleType) -> Array:
    x = _drop_background(x, axis, include_background)
    return x if axis == 1 else xp.moveaxis(x, axis, 1)


def _inputs(
    fn: str, y_pred: Array, y_true: Array, mode: str, class_axis: int, from_logits: bool, include_background: bool
) -> tuple[Array, Array, ModuleType]:
    """Probabilities and targets as (N, C', *spatial) in the compute dtype, and the namespace."""
    xp = array_namespace(y_pred, y_true)
    p, axis = _probabilities(fn, y_pred, mode, class_axis, from_logits, xp=xp)
    t = _targets(fn, y_true, p, axis, mode, xp=xp)
    return (
        _channels_first(p, axis, include_background, xp=xp),
        _channels_first(t, axis, include_background, xp=xp),
        xp,
    )


def _spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


# --------------------------------------------------------------------------- #
# Boundary loss (Kervadec et al. 2019)
# --------------------------------------------------------------------------- #


def boundary_loss(
    y_pred: Array,
    distance_map: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    include_background: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Boundary loss of Kervadec et al. 2019: mean of probabilities times signed distance.

    L = mean_{n, c, x} p_{n,c}(x) phi_{n,c}(x)

    ``distance_map`` (``y_pred``'s shape, floating) is the signed distance map
    phi of the ground truth, one channel per class: ``signed_distance_map`` of
    the (one-hot) target, computed once from ``y_true`` (no gradient flows
    into it). ``y_pred`` holds logits (``from_logits=True``: softmax for
    ``"multiclass"``, sigmoid otherwise) or probabilities. Class 0 is left
    out by default (the authors score the foreground classes, ``idc=[1]`` for
    a two-class softmax); ``include_background=True`` keeps it. ``"none"``
    returns the per-element products in ``y_pred``'s layout (without class 0
    unless included). The loss is negative at best; it is meant to be added
    to a region loss (the authors ramp its weight up over training).
    """
    fn = "boundary_loss"
    xp = array_namespace(y_pred, distance_map)
    checks.check_reduction(fn, reduction)
    p, axis = _probabilities(fn, y_pred, mode, class_axis, from_logits, xp=xp)
    checks.check_floating(fn, "distance_map", distance_map, xp=xp)
    if tuple(distance_map.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"{fn}: distance_map must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(distance_map.shape)}"
        )
    phi = stop_gradient(as_float(distance_map, p, xp=xp), xp=xp)
    loss = _drop_background(p * phi, axis, include_background)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Hausdorff distance-transform loss (Karimi & Salcudean 2019)
# --------------------------------------------------------------------------- #


def _unsigned_field(fg: Array, nd: int, dtype: Any, *, xp: ModuleType) -> Array:
    """D_in + D_out (distance to the other side, on both sides); zero for all-0 or all-1 images."""
    spacing = (1.0,) * nd
    field = _edt(fg, spacing=spacing, dtype=dtype, native=True, xp=xp) + _edt(
        ~fg, spacing=spacing, dtype=dtype, native=True, xp=xp
    )
    both = _any_spatial(fg, nd, xp=xp) & _any_spatial(~fg, nd, xp=xp)
    return xp.where(both, field, xp.zeros((), dtype=dtype, device=device(fg)))


def hausdorff_dt_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float = 2.0,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    include_background: bool = False,
    per_image: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Distance-transform Hausdorff loss of Karimi & Salcudean 2019 (their "HD_DT").

    L_{n,c} = mean_x (p - t)^2 (d_p^alpha + d_t^alpha)

    d_t is the unsigned distance field of the target mask ``t > 0.5`` (each
    element's distance to the other side: the EDT of the mask plus the EDT of
    its complement), d_p that of the detached prediction ``p > 0.5``; both
    are fixed weights (no gradient flows through them) and a mask that is all
    0 or all 1 gets a zero field. The mean runs over space per (sample,
    class); ``per_image=False`` also averages over the batch, so ``"none"``
    returns shape (C',), and (N, C') with ``per_image=True``. ``"mean"``
    averages those values. Class 0 is left out by default (MONAI's default).

    Peers: ``monai.losses.HausdorffDTLoss(alpha, include_background,
    sigmoid=True)`` equals ``mode="multilabel"``, ``softmax=True`` equals
    ``mode="multiclass"`` (MONAI's one-hot target; ``to_onehot_y`` matches
    integer targets), neither equals ``from_logits=False``; MONAI's
    ``batch=False`` is ``per_image=True`` (the two agree for ``"mean"``).
    MONAI's ``"none"`` keeps trailing singleton axes: (N, C', 1, 1).
    """
    fn = "hausdorff_dt_loss"
    checks.check_reduction(fn, reduction)
    checks.check_nonnegative(fn, "alpha", alpha)
    p, t, xp = _inputs(fn, y_pred, y_true, mode, class_axis, from_logits, include_background)
    nd = p.ndim - 2
    d_p = _unsigned_field(stop_gradient(p, xp=xp) > 0.5, nd, p.dtype, xp=xp)
    d_t = _unsigned_field(t > 0.5, nd, p.dtype, xp=xp)
    weight = d_p**alpha + d_t**alpha
    axes = _spatial_axes(p) if per_image else (0, *_spatial_axes(p))
    values = xp.mean((p - t) ** 2 * weight, axis=axes)
    return restore(reduce_loss(values, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Boundary IoU (Cheng et al. 2021): the metric and its soft version
# --------------------------------------------------------------------------- #


def _erosion_radius(fn: str, spatial: tuple[int, ...], dilation_ratio: float) -> int:
    """round(dilation_ratio * image diagonal), at least 1, as boundary-iou-api's ``mask_to_boundary``."""
    checks.check_nonnegative(fn, "dilation_ratio", dilation_ratio)
    return max(1, round(dilation_ratio * math.sqrt(sum(n * n for n in spatial))))


def _boundary(m: Array, radius: int, nd: int, *, xp: ModuleType) -> Array:
    """``m`` minus its erosion by a (2 radius + 1) box, with zeros outside the image."""
    return m - min_pool(m, window=(2 * radius + 1,) * nd, pad_value=0.0, xp=xp)


def _iou(a: Array, b: Array, axes: tuple[int, ...], smooth: float = 0.0, *, xp: ModuleType) -> Array:
    """Soft IoU (sum(ab) + s) / (sum(a + b - ab) + s) over ``axes``; 1 where both are empty."""
    inter = xp.sum(a * b, axis=axes) + smooth
    union = xp.sum(a + b - a * b, axis=axes) + smooth
    empty = union == 0
    return xp.where(empty, 1.0, inter / xp.where(empty, 1.0, union))


def boundary_iou(
    pred_mask: Array,
    true_mask: Array,
    /,
    *,
    dilation_ratio: float = 0.02,
    spatial_ndim: int = 2,
) -> Array:
    r"""Boundary IoU of Cheng et al. 2021 between hard masks, one value per image.

    B(m) = m minus its erosion by a 3x3 square applied r times, zero outside the image,
    r = max(1, round(dilation_ratio * diagonal));  BIoU = |B(p) ∩ B(t)| / |B(p) ∪ B(t)|

    This is boundary-iou-api's ``mask_to_boundary`` (pad one zero pixel,
    ``cv2.erode`` r times, crop, subtract) and ``boundary_iou``; r erosions by
    a 3x3 square are one erosion by a (2r + 1) square. Two empty boundaries
    give 1 (the reference divides 0 by 0). Masks: bool, integer or floating
    (nonzero is foreground), one shape, the trailing ``spatial_ndim`` axes an
    image (3-D uses cubes and the 3-D diagonal); returns the leading shape in
    the namespace's default float dtype. Not differentiable: see
    ``boundary_iou_loss``.
    """
    fn = "boundary_iou"
    xp = array_namespace(pred_mask, true_mask)
    _check_mask(fn, "pred_mask", pred_mask, spatial_ndim, xp=xp)
    _check_mask(fn, "true_mask", true_mask, spatial_ndim, xp=xp)
    if tuple(pred_mask.shape) != tuple(true_mask.shape):
        raise ValueError(
            f"{fn}: true_mask must have the shape of pred_mask {tuple(pred_mask.shape)}, got {tuple(true_mask.shape)}"
        )
    nd = spatial_ndim
    radius = _erosion_radius(fn, tuple(pred_mask.shape[pred_mask.ndim - nd :]), dilation_ratio)
    dtype = default_float(xp, device(pred_mask))
    bp = _boundary(xp.astype(_foreground(pred_mask, xp=xp), dtype), radius, nd, xp=xp)
    bt = _boundary(xp.astype(_foreground(true_mask, xp=xp), dtype), radius, nd, xp=xp)
    return _iou(bp, bt, tuple(range(pred_mask.ndim - nd, pred_mask.ndim)), xp=xp)


def boundary_iou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    dilation_ratio: float = 0.02,
    include_background: bool = True,
    smooth: float = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Differentiable Boundary IoU: 1 - soft Boundary IoU per (sample, class).

    b(p) = p - erode(p);  L_{n,c} = 1 - (sum b(p) b(t) + s) / (sum (b(p) + b(t) - b(p) b(t)) + s)

    ``erode`` is the moving minimum over a (2r + 1) box with zeros outside
    the image, r as in ``boundary_iou``, so b(p) is in [0, 1] and on hard
    probabilities it is the metric's boundary: at ``smooth=0`` the loss is
    exactly 1 - ``boundary_iou`` when p is 0/1, and approaches it as p
    hardens wherever the target has a boundary. The gradient reaches each
    window's minimum (soft erosion by min-pooling). Both boundaries empty:
    loss 0; but a target without boundary against a nearly empty prediction
    gives a loss near 1 (0 overlap over a tiny union) with zero gradient;
    ``smooth`` > 0 (e.g. 1) makes that case near 0 at the cost of exactness.
    ``"none"`` returns (N, C').
    """
    fn = "boundary_iou_loss"
    checks.check_reduction(fn, reduction)
    checks.check_nonnegative(fn, "smooth", smooth)
    p, t, xp = _inputs(fn, y_pred, y_true, mode, class_axis, from_logits, include_background)
    nd = p.ndim - 2
    radius = _erosion_radius(fn, tuple(p.shape[2:]), dilation_ratio)
    iou = _iou(_boundary(p, radius, nd, xp=xp), _boundary(t, radius, nd, xp=xp), _spatial_axes(p), smooth, xp=xp)
    return restore(reduce_loss(1 - iou, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# clDice (Shit et al. 2021)
# --------------------------------------------------------------------------- #


def soft_cldice_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    iterations: int = 3,
    smooth: float = 1.0,
    harmonic_smooth: float = 1e-4,
    include_background: bool = True,
    per_image: bool = False,
    reduction: str = "mean",
) -> Array:
    r"""Soft centerline Dice (clDice) loss of Shit et al. 2021.

    Tprec = (sum S(p) t + s) / (sum S(p) + s);  Tsens = (sum S(t) p + s) / (sum S(t) + s)
    L = 1 - 2 Tprec Tsens / (Tprec + Tsens + h)

    S is the soft skeleton (``iterations`` soft erosions: minimum over the
    3-cross; soft opening: then maximum over the 3-box). Sums run over the
    classes kept and space, and over the batch too unless ``per_image``
    (then ``"none"`` returns (N,); otherwise a scalar). ``s`` is ``smooth``
    (> 0), ``h`` is ``harmonic_smooth`` (MONAI's epsilon; 0 is the paper's
    formula). Gradients flow through both S(p) and p; S(t) is fixed.

    Peers: ``monai.losses.SoftclDiceLoss(iter_=iterations, smooth_nr=s,
    smooth_dr=s, smooth=h, include_background)`` with ``sigmoid=True`` equals
    ``mode="multilabel", per_image=True``, with ``softmax=True``
    ``mode="multiclass", per_image=True``. The authors' reference code sums
    over the batch (``per_image=False``) without class 0
    (``include_background=False``) and ``harmonic_smooth=0``.
    """
    fn = "soft_cldice_loss"
    checks.check_reduction(fn, reduction)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{fn}: iterations must be a non-negative int, got {iterations!r}")
    if not smooth > 0:
        raise ValueError(f"{fn}: smooth must be > 0, got {smooth!r}")
    checks.check_nonnegative(fn, "harmonic_smooth", harmonic_smooth)
    p, t, xp = _inputs(fn, y_pred, y_true, mode, class_axis, from_logits, include_background)
    nd = p.ndim - 2
    skel_p = soft_skeleton(p, iterations, nd, xp=xp)
    skel_t = soft_skeleton(t, iterations, nd, xp=xp)
    axes = tuple(range(1, p.ndim)) if per_image else tuple(range(p.ndim))
    tprec = (xp.sum(skel_p * t, axis=axes) + smooth) / (xp.sum(skel_p, axis=axes) + smooth)
    tsens = (xp.sum(skel_t * p, axis=axes) + smooth) / (xp.sum(skel_t, axis=axes) + smooth)
    loss = 1 - 2 * tprec * tsens / (tprec + tsens + harmonic_smooth)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)

