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

Rules shared by every loss here (``docs/conventions.md``):

- Inputs are validated once by the segmentation-input layer
  (``_inputs.prepare``, region-loss rules): integer labels in [0, C) for
  ``"multiclass"``, 0/1 (bool, integer) or floats in [0, 1] otherwise.
  Concrete arrays (JAX outside a transformation included) outside that
  domain raise a ``ValueError``; traced ones (``jax.jit``, ``torch.compile``)
  cannot be read, so an out-of-domain target makes the loss NaN instead.
- Left-out pixels (``ignore_index``, or ``mask`` 0) count as background in
  both the prediction and the target wherever a neighbourhood is read
  (erosions, skeletons, distance fields), and take part in no sum; ``mask``
  values are pixel weights. A loss whose pixels are all left out is 0 with
  a zero gradient; so is the mean of an empty batch (``"none"`` returns the
  empty array). NaN in a kept pixel of ``y_pred`` gives a NaN loss.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, Literal, NamedTuple

from . import _checks as checks
from ._edt import Sampling, any_spatial, check_mask, edt, foreground, spacing_of, spatial_ndim_of
from ._inputs import MODES, Labels, Mode, Reduction, class_axis_index, namespace, prepare
from ._reduce import as_float, promote, reduce_loss, restore, safe_divide
from ._skeleton import soft_skeleton
from ._xp import (
    Array,
    default_float,
    device,
    is_concrete,
    min_pool,
    numel,
    one_hot,
    sigmoid,
    softmax,
    stop_gradient,
)

__all__ = ["boundary_iou", "boundary_iou_loss", "boundary_loss", "hausdorff_dt_loss", "soft_cldice_loss"]

EmptyField = Literal["diagonal", "zero"]


# --------------------------------------------------------------------------- #
# Inputs: probabilities, targets and pixel weights, channels first
# --------------------------------------------------------------------------- #


class _Inputs(NamedTuple):
    """Validated inputs as (N, C', *spatial) arrays in the compute dtype."""

    p: Array  # probabilities, 0 at left-out pixels; NaN where a traced target is out of its domain
    t: Array  # detached targets, 0 at left-out pixels
    w: Array | None  # pixel weights (N, 1 or C', *spatial), 0 where left out; None: every pixel, weight 1
    xp: ModuleType


def _check_layout(fn: str, y_pred: Array, axis: int, mode: str) -> None:
    """What the boundary losses add to the region-loss layout: 2 or 3 spatial axes, one channel in binary mode."""
    if y_pred.ndim not in (4, 5):
        raise ValueError(
            f"{fn}: y_pred must have shape (N, C, *spatial) with 2 or 3 spatial axes, got {tuple(y_pred.shape)}"
        )
    classes = y_pred.shape[axis]
    if mode == "binary" and classes != 1:
        raise ValueError(f"{fn}: mode='binary' needs one channel along class_axis {axis}, got {classes}")


def _activate(x: Array, axis: int, mode: str, from_logits: bool, *, xp: ModuleType) -> Array:
    """Probabilities: softmax over ``axis`` (multiclass) or sigmoid, unless ``x`` holds them already."""
    if not from_logits:
        return x
    return softmax(x, axis=axis, xp=xp) if mode == "multiclass" else sigmoid(x, xp=xp)


def _pixel_weights(fn: str, mask: Array, p: Array, axis: int, *, xp: ModuleType) -> Array:
    """``mask`` (bool or non-negative numbers; the label shape or ``y_pred``'s) as weights with a class axis."""
    label_shape = tuple(p.shape[:axis]) + tuple(p.shape[axis + 1 :])
    if tuple(mask.shape) == label_shape:
        mask = xp.expand_dims(mask, axis=axis)
    elif tuple(mask.shape) != tuple(p.shape):
        raise ValueError(
            f"{fn}: mask must have y_pred's shape {tuple(p.shape)} or its shape without the class axis "
            f"{label_shape}, got {tuple(mask.shape)}"
        )
    if not xp.isdtype(mask.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{fn}: mask must have a boolean, integer or real floating dtype, got {mask.dtype}")
    if not xp.isdtype(mask.dtype, "bool") and is_concrete(mask) and numel(mask) and bool(xp.any(mask < 0)):
        raise ValueError(f"{fn}: mask must hold non-negative pixel weights, found {float(xp.min(mask))!r}")
    return stop_gradient(as_float(mask, p, xp=xp), xp=xp)


def _drop_background(x: Array, axis: int, include_background: bool) -> Array:
    if include_background or x.shape[axis] == 1:
        return x
    return x[(slice(None),) * axis + (slice(1, None), ...)]


def _channels_first(x: Array, axis: int, include_background: bool, *, xp: ModuleType) -> Array:
    x = _drop_background(x, axis, include_background)
    return x if axis == 1 else xp.moveaxis(x, axis, 1)


def _inputs(
    fn: str,
    y_pred: Array,
    y_true: Array,
    *,
    mode: str,
    class_axis: int,
    from_logits: bool,
    include_background: bool,
    ignore_index: int | None,
    mask: Array | None,
    reduction: str,
) -> _Inputs:
    """Probabilities, targets and pixel weights as (N, C', *spatial), validated once by ``_inputs.prepare``."""
    seg = prepare(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                  ignore_index=ignore_index, reduction=reduction, region=True)
    xp, axis = seg.xp, seg.axis
    _check_layout(fn, y_pred, axis, mode)
    p = _activate(seg.x, axis, mode, from_logits, xp=xp)
    if isinstance(seg.target, Labels):
        t = one_hot(seg.target.labels, num_classes=seg.num_classes, axis=axis, dtype=p.dtype, xp=xp)
        keep = None if seg.target.valid is None else xp.expand_dims(seg.target.valid, axis=axis)
    else:
        t, keep = stop_gradient(seg.target.target, xp=xp), seg.target.valid
    w = None
    if mask is not None:
        namespace(fn, y_pred=y_pred, mask=mask)
        w = _pixel_weights(fn, mask, p, axis, xp=xp)
    if keep is not None:
        w = xp.astype(keep, p.dtype) if w is None else xp.where(keep, w, 0.0)
    if w is not None:
        p = xp.where(w > 0, p, 0.0)
        t = xp.where(w > 0, t, 0.0)
        w = _channels_first(w, axis, include_background, xp=xp)
    return _Inputs(
        _channels_first(p, axis, include_background, xp=xp), _channels_first(t, axis, include_background, xp=xp), w, xp
    )


def _spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def _weighted_sum(v: Array, w: Array | None, axes: tuple[int, ...], *, xp: ModuleType) -> Array:
    return xp.sum(v if w is None else w * v, axis=axes)


def _weighted_mean(v: Array, w: Array | None, axes: tuple[int, ...], *, xp: ModuleType) -> Array:
    """Mean of ``v`` over ``axes`` weighted by ``w``; 0 (zero gradient) where nothing is kept or the axes are empty."""
    if w is None:
        empty = any([v.shape[a] == 0 for a in axes])  # a list: torch.compile cannot trace a generator here
        return xp.sum(v, axis=axes) if empty else xp.mean(v, axis=axes)
    total = xp.sum(w * v, axis=axes)
    return safe_divide(total, xp.sum(xp.broadcast_to(w, v.shape), axis=axes), xp=xp)


# --------------------------------------------------------------------------- #
# Boundary loss (Kervadec et al. 2019)
# --------------------------------------------------------------------------- #


def boundary_loss(
    y_pred: Array,
    distance_map: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    include_background: bool = False,
    mask: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Boundary loss of Kervadec et al. 2019: mean of probabilities times signed distance.

    L = sum_{n, c, x} w(x) p_{n,c}(x) phi_{n,c}(x) / sum_{n, c, x} w(x)   (w = 1 without ``mask``)

    ``distance_map`` is the signed distance map phi of the ground truth, one
    channel per class: ``signed_distance_map`` of the (one-hot) target,
    computed once from ``y_true`` (no gradient flows into it). Class 0 is
    left out by default (the authors score the foreground classes,
    ``idc=[1]`` for a two-class softmax). The loss is negative at best; it is
    meant to be added to a region loss (the authors ramp its weight up over
    training). It reads no labels, so it has no ``ignore_index``: pass
    ``mask`` instead.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), floating, shape
            ``(N, C, *spatial)`` with 2 or 3 spatial axes (``class_axis=1``) or ``(N, *spatial, C)``
            (``class_axis=-1``).
        distance_map: floating signed distance maps of ``y_pred``'s shape (no gradient).
        mode: ``"multiclass"`` (default; softmax over the class axis), ``"multilabel"`` (sigmoid per
            channel) or ``"binary"`` (sigmoid, one channel). Only the activation depends on it.
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        include_background: keep class 0 (default ``False``; a single channel is always kept).
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its shape
            without the class axis; a pixel of weight 0 takes part in no sum.
        reduction: ``"mean"`` (default; the weighted mean above, 0 when nothing is kept), ``"sum"``
            or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; for ``"none"`` the weighted products w p phi in
        ``y_pred``'s layout (without class 0 unless kept). In ``y_pred``'s dtype (computed in at
        least float32), on its device.

    Raises:
        ValueError: bad ``mode``/``reduction``/``class_axis``, shapes that do not match, negative
            ``mask`` weights (eager arrays).
        TypeError: non-floating ``y_pred`` or ``distance_map``, arrays of different libraries.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> target = np.zeros((1, 2, 6, 6)); target[:, 1, 1:4, 1:4] = 1; target[:, 0] = 1 - target[:, 1]
        >>> phi = pl.signed_distance_map(target, spatial_ndim=2)
        >>> round(float(pl.boundary_loss(20 * (target - 0.5), phi)), 4)  # -1 at the centre, 0 on the rim: -1/36
        -0.0278

    References:
        Kervadec et al., Boundary loss for highly unbalanced segmentation, MIDL 2019.
        https://arxiv.org/abs/1812.07032
    """
    fn = "boundary_loss"
    xp = namespace(fn, y_pred=y_pred, distance_map=distance_map, mask=mask)
    checks.check_option(fn, "mode", mode, MODES)
    checks.check_reduction(fn, reduction)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    axis = class_axis_index(fn, class_axis, y_pred.ndim, first_or_last=True)
    _check_layout(fn, y_pred, axis, mode)
    if mode == "multiclass" and y_pred.shape[axis] < 2:
        raise ValueError(
            f"{fn}: mode='multiclass' (softmax) needs at least 2 classes along class_axis {class_axis}, "
            f"got {y_pred.shape[axis]}; use mode='binary' for one channel"
        )
    p = _activate(promote(y_pred, xp=xp), axis, mode, from_logits, xp=xp)
    phi = _field(fn, "distance_map", distance_map, y_pred, p, xp=xp)
    loss = p * phi
    denominator = None
    if mask is not None:
        w = _pixel_weights(fn, mask, p, axis, xp=xp)
        loss = xp.where(w > 0, w * loss, 0.0)
        denominator = xp.sum(xp.broadcast_to(_drop_background(w, axis, include_background),
                                             _drop_background(loss, axis, include_background).shape))
    loss = _drop_background(loss, axis, include_background)
    return restore(reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp), y_pred.dtype, xp=xp)


def _field(fn: str, name: str, field: Array, y_pred: Array, like: Array, *, xp: ModuleType) -> Array:
    """A precomputed floating distance field of ``y_pred``'s shape, in ``like``'s dtype, detached."""
    checks.check_floating(fn, name, field, xp=xp)
    if tuple(field.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"{fn}: {name} must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(field.shape)}"
        )
    return stop_gradient(as_float(field, like, xp=xp), xp=xp)


# --------------------------------------------------------------------------- #
# Hausdorff distance-transform loss (Karimi & Salcudean 2019)
# --------------------------------------------------------------------------- #


def _unsigned_field(fg: Array, spacing: tuple[float, ...], empty: str, dtype: Any, *, xp: ModuleType) -> Array:
    """D_in + D_out (distance to the other side, on both sides) over the trailing ``len(spacing)`` axes.

    An all-0 or all-1 image gets its diagonal everywhere (``empty="diagonal"``, the rule of
    ``distance_transform``) or zeros (``"zero"``, MONAI's rule).
    """
    if numel(fg) == 0:
        return xp.zeros(fg.shape, dtype=dtype, device=device(fg))
    field = edt(fg, spacing=spacing, dtype=dtype, native=True, xp=xp) + edt(
        ~fg, spacing=spacing, dtype=dtype, native=True, xp=xp
    )
    if empty == "diagonal":
        return field
    nd = len(spacing)
    both = any_spatial(fg, nd, xp=xp) & any_spatial(~fg, nd, xp=xp)
    return xp.where(both, field, xp.zeros((), dtype=dtype, device=device(fg)))


def hausdorff_dt_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float = 2.0,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    include_background: bool = False,
    per_image: bool = False,
    ignore_index: int | None = None,
    mask: Array | None = None,
    sampling: Sampling = None,
    distance_map: Array | None = None,
    empty_field: EmptyField = "diagonal",
    reduction: Reduction = "mean",
) -> Array:
    r"""Distance-transform Hausdorff loss of Karimi & Salcudean 2019 (their "HD_DT").

    L_{n,c} = sum_x w (p - t)^2 (d_p^alpha + d_t^alpha) / sum_x w   (w = 1 without ``mask``/``ignore_index``)

    d_t is the unsigned distance field of the target mask ``t > 0.5`` (each
    element's distance to the other side: the EDT of the mask plus the EDT
    of its complement, in units of ``sampling``), d_p that of the detached
    prediction ``p > 0.5``; both are fixed weights (no gradient flows
    through them). A mask with no foreground (or no background) has no other
    side: with ``empty_field="diagonal"`` (default) its field is the image
    diagonal sqrt(sum_k (n_k s_k)^2) everywhere, longer than any distance in
    the image, so false positives on an empty target cost at least as much
    as the farthest ones on a non-empty target (the rule of
    ``distance_transform``); ``"zero"`` gives a zero field (MONAI's rule,
    under which they cost nothing once the prediction is below 0.5).
    Left-out pixels are background in both fields and take part in no sum.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), floating, shape
            ``(N, C, *spatial)`` with 2 or 3 spatial axes, or ``(N, *spatial, C)`` with ``class_axis=-1``.
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)`` (any integer
            width), or class probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``:
            ``y_pred``'s shape, bool, integer 0/1 or floats in [0, 1].
        alpha: exponent of the distances (>= 0, default 2).
        mode: ``"multiclass"`` (default, softmax), ``"multilabel"`` or ``"binary"`` (sigmoid).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        include_background: keep class 0 (default ``False``, MONAI's default).
        per_image: one value per (sample, class) instead of per class over the batch.
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; weight 0 leaves a pixel out.
        sampling: voxel spacing, a positive number or one per spatial axis (default 1).
        distance_map: the target field d_t, precomputed (e.g. in the data pipeline), floating, of
            ``y_pred``'s shape, used as given (``sampling``, ``empty_field`` and left-out pixels do not
            change it); no gradient. ``None`` (default): computed from ``y_true``.
        empty_field: ``"diagonal"`` (default) or ``"zero"``, the field of an image with one side only.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; ``"none"``: shape (C',), or (N, C') with
        ``per_image=True`` (C' classes kept). In ``y_pred``'s dtype, on its device. An empty batch
        gives 0 (``"none"``: the empty array with ``per_image``).

    Raises:
        ValueError: bad options, shapes that do not match, ``y_true`` outside its domain (eager
            arrays; traced ones give NaN), negative ``mask`` weights or ``alpha``, bad ``sampling``.
        TypeError: bad dtypes, arrays of different libraries.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 6, 6), dtype=int); labels[:, 1:4, 1:4] = 1
        >>> logits = np.stack([np.full((1, 6, 6), 0.0), 2.0 * labels - 1.0], axis=1)
        >>> round(float(pl.hausdorff_dt_loss(logits, labels)), 4)
        0.3375

    Peers: ``monai.losses.HausdorffDTLoss(alpha, include_background, sigmoid=True)`` equals
    ``mode="multilabel", empty_field="zero"``, ``softmax=True`` equals ``mode="multiclass",
    empty_field="zero"`` (MONAI's one-hot target; ``to_onehot_y`` matches integer targets), neither
    equals ``from_logits=False``; MONAI's ``batch=False`` is ``per_image=True`` (the two agree for
    ``"mean"``). MONAI's ``"none"`` keeps trailing singleton axes: (N, C', 1, 1).

    References:
        Karimi & Salcudean, Reducing the Hausdorff distance in medical image segmentation with
        convolutional neural networks, IEEE TMI 2019. https://arxiv.org/abs/1904.10030
    """
    fn = "hausdorff_dt_loss"
    checks.check_reduction(fn, reduction)
    checks.check_nonnegative(fn, "alpha", alpha)
    checks.check_option(fn, "empty_field", empty_field, ("diagonal", "zero"))
    p, t, w, xp = _inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                          include_background=include_background, ignore_index=ignore_index, mask=mask,
                          reduction=reduction)
    spacing = spacing_of(fn, sampling, p.ndim - 2)
    d_p = _unsigned_field(stop_gradient(p, xp=xp) > 0.5, spacing, empty_field, p.dtype, xp=xp)
    if distance_map is None:
        d_t = _unsigned_field(t > 0.5, spacing, empty_field, p.dtype, xp=xp)
    else:
        namespace(fn, y_pred=y_pred, distance_map=distance_map)
        d_t = _field(fn, "distance_map", distance_map, y_pred, p, xp=xp)
        d_t = _channels_first(d_t, class_axis % y_pred.ndim, include_background, xp=xp)
    weight = d_p**alpha + d_t**alpha
    axes = _spatial_axes(p) if per_image else (0, *_spatial_axes(p))
    values = _weighted_mean((p - t) ** 2 * weight, w, axes, xp=xp)
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
    if numel(m) == 0:
        return m
    return m - min_pool(m, window=(2 * radius + 1,) * nd, pad_value=0.0, xp=xp)


def _iou(
    a: Array, b: Array, axes: tuple[int, ...], smooth: float = 0.0, w: Array | None = None, *, xp: ModuleType
) -> Array:
    """Soft IoU (sum w ab + s) / (sum w (a + b - ab) + s) over ``axes``; 1 where both are empty."""
    inter = _weighted_sum(a * b, w, axes, xp=xp) + smooth
    union = _weighted_sum(a + b - a * b, w, axes, xp=xp) + smooth
    empty = union == 0
    return xp.where(empty, 1.0, inter / xp.where(empty, 1.0, union))


def boundary_iou(
    pred_mask: Array,
    true_mask: Array,
    /,
    *,
    dilation_ratio: float = 0.02,
    spatial_ndim: Literal[1, 2, 3] | None = None,
) -> Array:
    r"""Boundary IoU of Cheng et al. 2021 between hard masks, one value per image.

    B(m) = m minus its erosion by a 3x3 square applied r times, zero outside the image,
    r = max(1, round(dilation_ratio * diagonal));  BIoU = |B(p) ∩ B(t)| / |B(p) ∪ B(t)|

    This is boundary-iou-api's ``mask_to_boundary`` (pad one zero pixel,
    ``cv2.erode`` r times, crop, subtract) and ``boundary_iou``; r erosions by
    a 3x3 square are one erosion by a (2r + 1) square. Two empty boundaries
    give 1 (the reference divides 0 by 0). A 3-D image uses cubes and the
    3-D diagonal. Not differentiable: see ``boundary_iou_loss``.

    Args:
        pred_mask: predicted masks, bool, integer or floating (nonzero is foreground).
        true_mask: target masks of ``pred_mask``'s shape and kind.
        dilation_ratio: boundary width as a share of the image diagonal (>= 0, default 0.02).
        spatial_ndim: how many trailing axes form one image (1, 2 or 3); leading axes are a batch.
            ``None`` (default) reads the layout: ``(N, H, W)`` is a batch of 2-D images and
            ``(N, D, H, W)`` a batch of volumes; any other rank needs it (pass ``spatial_ndim=2``
            for ``(N, C, H, W)`` masks of 2-D classes).

    Returns:
        The leading (batch) shape, in the namespace's default float dtype, on the masks' device;
        ``(0,)`` for an empty batch.

    Raises:
        ValueError: masks of different shapes, empty spatial axes, an ambiguous rank without
            ``spatial_ndim``, a bad ``spatial_ndim`` or negative ``dilation_ratio``.
        TypeError: masks of an unsupported dtype, arrays of different libraries.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> true = np.zeros((1, 8, 8), dtype=bool); true[:, 2:6, 2:6] = True
        >>> pred = np.zeros_like(true); pred[:, 2:6, 3:7] = True
        >>> round(float(pl.boundary_iou(pred, true, dilation_ratio=0.1)[0]), 4)  # rings of 12, 6 shared
        0.3333

    References:
        Cheng et al., Boundary IoU: Improving object-centric image segmentation evaluation,
        CVPR 2021. https://arxiv.org/abs/2103.16562
    """
    fn = "boundary_iou"
    xp = namespace(fn, pred_mask=pred_mask, true_mask=true_mask)
    nd = spatial_ndim_of(fn, "pred_mask", pred_mask, spatial_ndim, channels=False)
    check_mask(fn, "pred_mask", pred_mask, nd, xp=xp)
    check_mask(fn, "true_mask", true_mask, nd, xp=xp)
    if tuple(pred_mask.shape) != tuple(true_mask.shape):
        raise ValueError(
            f"{fn}: true_mask must have the shape of pred_mask {tuple(pred_mask.shape)}, got {tuple(true_mask.shape)}"
        )
    radius = _erosion_radius(fn, tuple(pred_mask.shape[pred_mask.ndim - nd :]), dilation_ratio)
    dtype = default_float(xp, device(pred_mask))
    bp = _boundary(xp.astype(foreground(pred_mask, xp=xp), dtype), radius, nd, xp=xp)
    bt = _boundary(xp.astype(foreground(true_mask, xp=xp), dtype), radius, nd, xp=xp)
    return _iou(bp, bt, tuple(range(pred_mask.ndim - nd, pred_mask.ndim)), xp=xp)


def boundary_iou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    dilation_ratio: float = 0.02,
    include_background: bool = True,
    smooth: float = 0.0,
    ignore_index: int | None = None,
    mask: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Differentiable Boundary IoU: 1 - soft Boundary IoU per (sample, class).

    b(p) = p - erode(p);  L_{n,c} = 1 - (sum w b(p) b(t) + s) / (sum w (b(p) + b(t) - b(p) b(t)) + s)

    ``erode`` is the moving minimum over a (2r + 1) box with zeros outside
    the image, r as in ``boundary_iou``, so b(p) is in [0, 1] and on hard
    probabilities it is the metric's boundary: at ``smooth=0`` the loss is
    exactly 1 - ``boundary_iou`` when p is 0/1, and approaches it as p
    hardens wherever the target has a boundary. The gradient reaches each
    window's minimum (soft erosion by min-pooling). Both boundaries empty:
    loss 0; but a target without boundary against a nearly empty prediction
    gives a loss near 1 (0 overlap over a tiny union) with zero gradient;
    ``smooth`` > 0 (e.g. 1) makes that case near 0 at the cost of exactness.
    Left-out pixels (w = 0) are background in p and t before the erosion,
    and take part in no sum.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), floating, shape
            ``(N, C, *spatial)`` with 2 or 3 spatial axes, or ``(N, *spatial, C)`` with ``class_axis=-1``.
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)``, or class
            probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``: ``y_pred``'s shape,
            bool, integer 0/1 or floats in [0, 1].
        mode: ``"multiclass"`` (default, softmax), ``"multilabel"`` or ``"binary"`` (sigmoid).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        dilation_ratio: boundary width as a share of the image diagonal (>= 0, default 0.02).
        include_background: keep class 0 (default ``True``).
        smooth: s >= 0, added to both sums (default 0).
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; weight 0 leaves a pixel out.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; ``"none"``: shape (N, C'). In ``y_pred``'s dtype, on
        its device. An empty batch gives 0 (``"none"``: shape (0, C')).

    Raises:
        ValueError: bad options, shapes that do not match, ``y_true`` outside its domain (eager
            arrays; traced ones give NaN), negative ``mask`` weights, ``dilation_ratio`` or ``smooth``.
        TypeError: bad dtypes, arrays of different libraries.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 8, 8), dtype=int); labels[:, 2:6, 2:6] = 1
        >>> logits = 9.0 * np.stack([1 - 2 * labels, 2 * labels - 1], axis=1)
        >>> round(float(pl.boundary_iou_loss(logits, labels, dilation_ratio=0.1)), 4)
        0.0

    References:
        Cheng et al., Boundary IoU: Improving object-centric image segmentation evaluation,
        CVPR 2021. https://arxiv.org/abs/2103.16562
    """
    fn = "boundary_iou_loss"
    checks.check_reduction(fn, reduction)
    checks.check_nonnegative(fn, "smooth", smooth)
    p, t, w, xp = _inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                          include_background=include_background, ignore_index=ignore_index, mask=mask,
                          reduction=reduction)
    nd = p.ndim - 2
    radius = _erosion_radius(fn, tuple(p.shape[2:]), dilation_ratio)
    bp, bt = _boundary(p, radius, nd, xp=xp), _boundary(t, radius, nd, xp=xp)
    iou = _iou(bp, bt, _spatial_axes(p), smooth, w, xp=xp)
    return restore(reduce_loss(1 - iou, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# clDice (Shit et al. 2021)
# --------------------------------------------------------------------------- #


def soft_cldice_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    iterations: int = 3,
    smooth: float = 1.0,
    harmonic_smooth: float = 1e-4,
    include_background: bool = True,
    per_image: bool = False,
    ignore_index: int | None = None,
    mask: Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Soft centerline Dice (clDice) loss of Shit et al. 2021.

    Tprec = (sum w S(p) t + s) / (sum w S(p) + s);  Tsens = (sum w S(t) p + s) / (sum w S(t) + s)
    L = 1 - 2 Tprec Tsens / (Tprec + Tsens + h)

    S is the soft skeleton (``iterations`` soft erosions: minimum over the
    3-cross; soft opening: then maximum over the 3-box). Sums run over the
    classes kept and space, and over the batch too unless ``per_image``.
    Gradients flow through both S(p) and p; S(t) is fixed. Left-out pixels
    (w = 0) are background in p and t before skeletonisation and take part
    in no sum; with every pixel left out the loss is its value at a perfect
    prediction, 1 - 2 / (2 + h), with a zero gradient.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), floating, shape
            ``(N, C, *spatial)`` with 2 or 3 spatial axes, or ``(N, *spatial, C)`` with ``class_axis=-1``.
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)``, or class
            probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``: ``y_pred``'s shape,
            bool, integer 0/1 or floats in [0, 1].
        mode: ``"multiclass"`` (default, softmax), ``"multilabel"`` or ``"binary"`` (sigmoid).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        iterations: soft erosions of the skeleton (int >= 0, default 3).
        smooth: s > 0 (default 1).
        harmonic_smooth: h >= 0 (default 1e-4, MONAI's epsilon; 0 is the paper's formula).
        include_background: keep class 0 (default ``True``).
        per_image: one value per sample instead of one over the batch.
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; weight 0 leaves a pixel out.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; ``"none"``: shape (N,) with ``per_image``, else 0-d.
        In ``y_pred``'s dtype, on its device. An empty batch gives 0 (``"none"``: shape (0,)).

    Raises:
        ValueError: bad options, shapes that do not match, ``y_true`` outside its domain (eager
            arrays; traced ones give NaN), negative ``mask`` weights, bad ``iterations``/``smooth``.
        TypeError: bad dtypes, arrays of different libraries.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 9, 9), dtype=int); labels[:, 4, 1:8] = 1
        >>> logits = 9.0 * np.stack([1 - 2 * labels, 2 * labels - 1], axis=1)
        >>> round(float(pl.soft_cldice_loss(logits, labels)), 4)
        0.0001
        >>> logits[:, :, 4, 4] *= -1  # a gap in the line breaks its skeleton
        >>> round(float(pl.soft_cldice_loss(logits, labels)), 4)
        0.0286

    Peers: ``monai.losses.SoftclDiceLoss(iter_=iterations, smooth_nr=s, smooth_dr=s, smooth=h,
    include_background)`` with ``sigmoid=True`` equals ``mode="multilabel", per_image=True``, with
    ``softmax=True`` ``mode="multiclass", per_image=True``. The authors' reference code sums over
    the batch (``per_image=False``) without class 0 (``include_background=False``) and
    ``harmonic_smooth=0``.

    References:
        Shit et al., clDice - a novel topology-preserving loss function for tubular structure
        segmentation, CVPR 2021. https://arxiv.org/abs/2003.07311
    """
    fn = "soft_cldice_loss"
    checks.check_reduction(fn, reduction)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{fn}: iterations must be a non-negative int, got {iterations!r}")
    if not smooth > 0:
        raise ValueError(f"{fn}: smooth must be > 0, got {smooth!r}")
    checks.check_nonnegative(fn, "harmonic_smooth", harmonic_smooth)
    p, t, w, xp = _inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                          include_background=include_background, ignore_index=ignore_index, mask=mask,
                          reduction=reduction)
    axes = tuple(range(1, p.ndim)) if per_image else tuple(range(p.ndim))
    if numel(p) == 0:  # nothing to score: 0 (the empty sum), with the shape "none" promises
        return restore(reduce_loss(xp.sum(p, axis=axes), reduction=reduction, xp=xp), y_pred.dtype, xp=xp)
    nd = p.ndim - 2
    skel_p = soft_skeleton(p, iterations, nd, xp=xp)
    skel_t = soft_skeleton(t, iterations, nd, xp=xp)
    tprec = (_weighted_sum(skel_p * t, w, axes, xp=xp) + smooth) / (_weighted_sum(skel_p, w, axes, xp=xp) + smooth)
    tsens = (_weighted_sum(skel_t * p, w, axes, xp=xp) + smooth) / (_weighted_sum(skel_t, w, axes, xp=xp) + smooth)
    loss = 1 - 2 * tprec * tsens / (tprec + tsens + harmonic_smooth)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), y_pred.dtype, xp=xp)
