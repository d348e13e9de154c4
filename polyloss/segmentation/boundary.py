"""Boundary losses: boundary (signed distance), Hausdorff-DT, Boundary IoU and clDice.

Distance maps come from ``polyloss.distance`` and carry no gradient: each loss
says whether it builds them from ``y_true`` or from a detached prediction.
The kernels (inputs laid out channels first, weighted sums, the unsigned
field, the box erosion of Boundary IoU) live in ``_boundary_ops``, clDice's
soft skeleton in ``_skeleton``. Rules shared by every loss here
(``docs/conventions.md``):

- Inputs are validated once by the segmentation-input layer (``_inputs``,
  region-loss rules; 2 or 3 spatial axes): integer labels in [0, C) for
  ``"multiclass"``, 0/1 (bool, integer) or floats in [0, 1] otherwise.
  Concrete arrays (JAX outside a transformation included) outside that
  domain raise a ``ValueError``; traced ones (``jax.jit``, ``torch.compile``)
  cannot be read, so an out-of-domain target makes the loss NaN instead.
- ``include_background=False`` drops class 0 after the activation (ignored
  when there is a single channel, as MONAI does).
- Left-out pixels (``ignore_index``, or ``mask`` 0) count as background in
  both the prediction and the target wherever a neighbourhood is read
  (erosions, skeletons, distance fields), and take part in no sum; ``mask``
  values are pixel weights. A loss whose pixels are all left out is 0 with
  a zero gradient; so is the mean of an empty batch (``"none"`` returns the
  empty array). NaN in a kept pixel of ``y_pred`` gives a NaN loss.
"""

from __future__ import annotations

from typing import Literal

from .._backend import Array, default_float, device, numel, stop_gradient
from .._core import checks
from .._core.inputs import REGION, check_scores, check_spatial_layout, mask_weight, namespace, poisoned
from .._core.reduce import promote, reduce_loss, restore
from .._core.typing import Mode, Reduction, Sampling
from ._boundary_ops import (
    channels_first,
    detached_field,
    drop_background,
    erosion_radius,
    inner_boundary,
    inputs,
    soft_iou,
    spatial_axes,
    unsigned_field,
    weighted_mean,
    weighted_sum,
)
from ._channels import activate
from ._edt import check_mask, foreground, spacing_of, spatial_ndim_of
from ._skeleton import soft_skeleton

__all__ = ["boundary_iou", "boundary_iou_loss", "boundary_loss", "hausdorff_dt_loss", "soft_cldice_loss"]

EmptyField = Literal["diagonal", "zero"]


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
    """Boundary loss of Kervadec et al. 2019: mean of probabilities times signed distance.

    L = sum_{n, c, x} w(x) p_{n,c}(x) phi_{n,c}(x) / sum_{n, c, x} w(x)   (w = 1 without ``mask``)

    ``distance_map`` is the signed distance map phi of the ground truth, one
    channel per class: ``signed_distance_map`` of the (one-hot) target,
    computed once from ``y_true`` (no gradient flows into it). Class 0 is
    left out by default (the authors score the foreground classes,
    ``idc=[1]`` for a two-class softmax). The loss is negative at best; it is
    meant to be added to a region loss (the authors ramp its weight up over
    training). It reads no labels, so it has no ``ignore_index``: pass
    ``mask`` instead; ``mode`` picks only the activation.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), floating, shape
            ``(N, C, *spatial)`` with 2 or 3 spatial axes (``class_axis=1``) or ``(N, *spatial, C)``
            (``class_axis=-1``).
        distance_map: floating signed distance maps of ``y_pred``'s shape (no gradient).
        mode: ``"multiclass"`` (default; softmax over the class axis), ``"multilabel"`` (sigmoid per
            channel) or ``"binary"`` (sigmoid, one channel).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        include_background: keep class 0 (default ``False``; a single channel is always kept).
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; a pixel of weight 0 is left out (it takes part in no sum).
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
    checks.check_flags("boundary_loss", from_logits=from_logits, include_background=include_background)
    fn = "boundary_loss"
    xp = namespace(fn, y_pred=y_pred, distance_map=distance_map, mask=mask, optional=("mask",))
    axis = check_scores(fn, y_pred, mode=mode, class_axis=class_axis, reduction=reduction, layout=REGION, xp=xp)
    check_spatial_layout(fn, y_pred, axis, mode, min_spatial=2)
    p = activate(promote(y_pred, xp=xp), axis, mode, checks.check_flag(fn, "from_logits", from_logits), xp=xp)
    phi = detached_field(fn, "distance_map", distance_map, y_pred, p, xp=xp)
    loss = drop_background(p * phi, axis, include_background)
    denominator = None
    if mask is not None:
        w = drop_background(mask_weight(fn, mask, p, axis, xp=xp), axis, include_background)
        loss = xp.where(w > 0, w * loss, 0.0)
        denominator = xp.sum(xp.broadcast_to(w, loss.shape))
    return restore(reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp), y_pred.dtype, xp=xp)


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
    """Distance-transform Hausdorff loss of Karimi & Salcudean 2019 (their "HD_DT").

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
            ``(N, C, *spatial)`` with 2 or 3 spatial axes (``class_axis=1``) or ``(N, *spatial, C)``
            (``class_axis=-1``).
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)`` (any integer width),
            or class probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``: ``y_pred``'s
            shape, bool, integer 0/1 or floats in [0, 1].
        alpha: exponent of the distances (>= 0, default 2).
        mode: ``"multiclass"`` (default; softmax over the class axis), ``"multilabel"`` (sigmoid per
            channel) or ``"binary"`` (sigmoid, one channel).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        include_background: keep class 0 (default ``False``, MONAI's default).
        per_image: one value per (sample, class) instead of per class over the batch.
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; a pixel of weight 0 is left out (it takes part in no sum).
        sampling: the grid spacing ``s_k`` (voxel size), a positive number or one per spatial axis;
            default 1.
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
        ValueError: bad options (outside the ranges given above), shapes that do not match,
            ``y_true`` outside its domain (eager arrays; traced ones give NaN), negative ``mask``
            weights.
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
    checks.check_flags(
        "hausdorff_dt_loss", from_logits=from_logits, include_background=include_background, per_image=per_image
    )
    fn = "hausdorff_dt_loss"
    alpha = checks.check_nonnegative(fn, "alpha", alpha)
    checks.check_option(fn, "empty_field", empty_field, ("diagonal", "zero"))
    p, t, w, xp, axis, poison = inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                               include_background=include_background, ignore_index=ignore_index, mask=mask,
                               reduction=reduction)
    spacing = spacing_of(fn, sampling, p.ndim - 2)
    d_p = unsigned_field(stop_gradient(p, xp=xp) > 0.5, spacing, empty_field, p.dtype, xp=xp)
    if distance_map is None:
        d_t = unsigned_field(t > 0.5, spacing, empty_field, p.dtype, xp=xp)
    else:
        namespace(fn, y_pred=y_pred, distance_map=distance_map)
        d_t = detached_field(fn, "distance_map", distance_map, y_pred, p, xp=xp)
        d_t = channels_first(d_t, axis, include_background, xp=xp)
    weight = d_p**alpha + d_t**alpha
    axes = spatial_axes(p) if per_image else (0, *spatial_axes(p))
    values = weighted_mean((p - t) ** 2 * weight, w, axes, xp=xp)
    return restore(poisoned(reduce_loss(values, reduction=reduction, xp=xp), poison), y_pred.dtype, xp=xp)


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
    radius = erosion_radius(fn, tuple(pred_mask.shape[pred_mask.ndim - nd :]), dilation_ratio)
    dtype = default_float(xp, device(pred_mask))
    bp = inner_boundary(xp.astype(foreground(pred_mask, xp=xp), dtype), radius, nd, xp=xp)
    bt = inner_boundary(xp.astype(foreground(true_mask, xp=xp), dtype), radius, nd, xp=xp)
    return soft_iou(bp, bt, tuple(range(pred_mask.ndim - nd, pred_mask.ndim)), xp=xp)


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
    """Differentiable Boundary IoU: 1 - soft Boundary IoU per (sample, class).

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
            ``(N, C, *spatial)`` with 2 or 3 spatial axes (``class_axis=1``) or ``(N, *spatial, C)``
            (``class_axis=-1``).
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)`` (any integer width),
            or class probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``: ``y_pred``'s
            shape, bool, integer 0/1 or floats in [0, 1].
        mode: ``"multiclass"`` (default; softmax over the class axis), ``"multilabel"`` (sigmoid per
            channel) or ``"binary"`` (sigmoid, one channel).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        dilation_ratio: boundary width as a share of the image diagonal (>= 0, default 0.02).
        include_background: keep class 0 (default ``True``).
        smooth: s >= 0, added to both sums (default 0).
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; a pixel of weight 0 is left out (it takes part in no sum).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; ``"none"``: shape (N, C'). In ``y_pred``'s dtype, on
        its device. An empty batch gives 0 (``"none"``: shape (0, C')).

    Raises:
        ValueError: bad options (outside the ranges given above), shapes that do not match,
            ``y_true`` outside its domain (eager arrays; traced ones give NaN), negative ``mask``
            weights.
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
    checks.check_flags("boundary_iou_loss", from_logits=from_logits, include_background=include_background)
    fn = "boundary_iou_loss"
    smooth = checks.check_nonnegative(fn, "smooth", smooth)
    p, t, w, xp, _, poison = inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                            include_background=include_background, ignore_index=ignore_index, mask=mask,
                            reduction=reduction)
    nd = p.ndim - 2
    radius = erosion_radius(fn, tuple(p.shape[2:]), dilation_ratio)
    bp, bt = inner_boundary(p, radius, nd, xp=xp), inner_boundary(t, radius, nd, xp=xp)
    iou = soft_iou(bp, bt, spatial_axes(p), smooth, w, xp=xp)
    return restore(poisoned(reduce_loss(1 - iou, reduction=reduction, xp=xp), poison), y_pred.dtype, xp=xp)


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
    """Soft centerline Dice (clDice) loss of Shit et al. 2021.

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
            ``(N, C, *spatial)`` with 2 or 3 spatial axes (``class_axis=1``) or ``(N, *spatial, C)``
            (``class_axis=-1``).
        y_true: ``"multiclass"``: integer labels in [0, C) of shape ``(N, *spatial)`` (any integer width),
            or class probabilities of ``y_pred``'s shape; ``"binary"``/``"multilabel"``: ``y_pred``'s
            shape, bool, integer 0/1 or floats in [0, 1].
        mode: ``"multiclass"`` (default; softmax over the class axis), ``"multilabel"`` (sigmoid per
            channel) or ``"binary"`` (sigmoid, one channel).
        class_axis: ``1`` (default) or ``-1``.
        from_logits: ``True`` (default): apply the activation; ``False``: ``y_pred`` holds probabilities.
        iterations: soft erosions of the skeleton (int >= 0, default 3).
        smooth: s > 0 (default 1).
        harmonic_smooth: h >= 0 (default 1e-4, MONAI's epsilon; 0 is the paper's formula).
        include_background: keep class 0 (default ``True``).
        per_image: one value per sample instead of one over the batch.
        ignore_index: integer targets only: a label value whose pixels are left out.
        mask: optional pixel weights, bool or non-negative numbers, of ``y_pred``'s shape or its
            shape without the class axis; a pixel of weight 0 is left out (it takes part in no sum).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``; ``"none"``: shape (N,) with ``per_image``, else 0-d.
        In ``y_pred``'s dtype, on its device. An empty batch gives 0 (``"none"``: shape (0,)).

    Raises:
        ValueError: bad options (outside the ranges given above), shapes that do not match,
            ``y_true`` outside its domain (eager arrays; traced ones give NaN), negative ``mask``
            weights.
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
    checks.check_flags(
        "soft_cldice_loss", from_logits=from_logits, include_background=include_background, per_image=per_image
    )
    fn = "soft_cldice_loss"
    iterations = checks.check_count(fn, "iterations", iterations, 0)
    smooth = checks.check_real(fn, "smooth", smooth)
    if isinstance(smooth, float) and not smooth > 0:
        raise ValueError(f"{fn}: smooth must be > 0, got {smooth!r}")
    harmonic_smooth = checks.check_nonnegative(fn, "harmonic_smooth", harmonic_smooth)
    p, t, w, xp, _, poison = inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                            include_background=include_background, ignore_index=ignore_index, mask=mask,
                            reduction=reduction)
    axes = tuple(range(1, p.ndim)) if per_image else tuple(range(p.ndim))
    if numel(p) == 0:  # nothing to score: 0 (the empty sum), with the shape "none" promises
        return restore(reduce_loss(xp.sum(p, axis=axes), reduction=reduction, xp=xp), y_pred.dtype, xp=xp)
    nd = p.ndim - 2
    skel_p = soft_skeleton(p, iterations, nd, xp=xp)
    skel_t = soft_skeleton(t, iterations, nd, xp=xp)
    tprec = (weighted_sum(skel_p * t, w, axes, xp=xp) + smooth) / (weighted_sum(skel_p, w, axes, xp=xp) + smooth)
    tsens = (weighted_sum(skel_t * p, w, axes, xp=xp) + smooth) / (weighted_sum(skel_t, w, axes, xp=xp) + smooth)
    loss = 1 - 2 * tprec * tsens / (tprec + tsens + harmonic_smooth)
    return restore(poisoned(reduce_loss(loss, reduction=reduction, xp=xp), poison), y_pred.dtype, xp=xp)
