"""Newer box-regression losses: SIoU, MPDIoU, Wise-IoU (v1, v3) and the Normalized Wasserstein Distance.

Same conventions as the IoU-family losses of ``polyloss.boxes``: elementwise
over matching boxes ``(..., 4)``, ``box_format`` (``"xyxy"`` by default,
``"xywh"``, ``"cxcywh"``), ``eps`` added to denominators, ``reduction``, and
``inner_ratio`` (Inner-IoU: the IoU term on boxes scaled about their centres)
on the losses built on an IoU term. The shared terms are the kernels of
``_box_ops``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from .._backend import Array, device, numel, stop_gradient, zero_like
from .._core import checks
from .._core.reduce import reduce_loss, restore
from .._core.typing import BoxFormat, Reduction
from ._box_ops import LossPair

__all__ = ["mpdiou_loss", "nwd_loss", "siou_loss", "wiou_loss"]


def _positive(fn: str, name: str, value: Any) -> float:
    """A real option > 0 (Python, NumPy or 0-d array) as a Python float."""
    if isinstance(value, bool) or not float(value) > 0:
        raise ValueError(f"{fn}: {name} must be a real > 0, got {value!r}")
    return float(value)


def siou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    theta: float = 4.0,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    r"""SCYLLA-IoU loss (Gevorgyan 2022), elementwise over matching boxes.

    L = 1 - IoU + (Delta + Omega) / 2,  Delta = sum_{t=x,y} (1 - exp(-(2 - Lambda) rho_t)),
    Lambda = sin(2 a),  rho_x = (dx / C_w)^2,  Omega = sum_{t=w,h} (1 - exp(-|t - t_gt| / max(t, t_gt)))^theta

    ``a`` is the angle between the line joining the box centres (offset
    ``(dx, dy)``) and an axis: the paper's angle cost
    1 - 2 sin^2(arcsin(sin a) - pi/4), computed on the smaller of the angles to
    the x and y axes, equals sin(2 a) = 2 |dx dy| / (dx^2 + dy^2) for either
    angle, which is what is computed (with ``eps`` in the denominator, so
    concentric boxes have Lambda = 0). ``C_w``, ``C_h``: the smallest enclosing box.
    This follows the paper. mmyolo's ``bbox_overlaps(mode="siou")`` and
    YOLOv6 write the distance cost as 2 - exp(g rho_x) - exp(g rho_y) with
    g = Lambda - 2, the same value; an implementation that puts g = 2 - Lambda
    in exp(g rho) flips the sign of the exponent and is not this loss.

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        theta: exponent of the shape cost, > 0 (default 4, the paper's).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: the IoU term on both
            boxes scaled about their centres by it (Inner-IoU, Zhang et al.
            2023); the angle, distance and shape costs are unchanged.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, a ``theta`` or
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.siou_loss(p, t)), 4)
        0.9623

    References:
        Gevorgyan, SIoU Loss: More Powerful Learning for Bounding Box
        Regression, 2022. https://arxiv.org/abs/2205.12740
    """
    fn = "siou_loss"
    eps = checks.check_nonnegative(fn, "eps", eps)
    theta = _positive(fn, "theta", theta)
    pair = LossPair(fn, y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps, inner_ratio=inner_ratio)
    xp = pair.xp
    dx, dy = pair.centre_offset()
    angle = 2 * xp.abs(dx * dy) / (dx**2 + dy**2 + eps)
    gamma = 2 - angle
    distance = 2 - xp.exp(-gamma * dx**2 / (pair.cw**2 + eps)) - xp.exp(-gamma * dy**2 / (pair.ch**2 + eps))
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    shape = zero_like(dx, xp=xp)
    for size, size_gt in ((x2 - x1, x2g - x1g), (y2 - y1, y2g - y1g)):
        omega = xp.abs(size - size_gt) / (xp.maximum(size, size_gt) + eps)
        shape = shape + (1 - xp.exp(-omega)) ** theta
    return pair.done(1 - pair.overlap + (distance + shape) / 2)


def mpdiou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    image_size: Sequence[float],
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array:
    r"""Minimum Point Distance IoU loss (Ma & Xu 2023), elementwise over matching boxes.

    L = 1 - MPDIoU,  MPDIoU = IoU - d1^2 / (W^2 + H^2) - d2^2 / (W^2 + H^2)

    ``d1``, ``d2``: the distances between the top-left corners and between
    the bottom-right corners of the two boxes; ``(H, W)`` the input image's
    size (the paper's normaliser, fixed per call, not the enclosing box).

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        image_size: ``(H, W)``, height and width of the input image in the
            boxes' units, both > 0 (keyword, required).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: the IoU term on both
            boxes scaled about their centres by it (Inner-MPDIoU); the corner
            distances are the boxes' own.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, an
            ``image_size`` that is not two positive reals, an unknown
            ``box_format`` or ``reduction``, a negative ``eps``, an
            ``inner_ratio`` that is not positive.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.mpdiou_loss(p, t, image_size=(4, 4))), 4)
        0.9821

    References:
        Ma & Xu, MPDIoU: A Loss for Efficient and Accurate Bounding Box
        Regression, 2023. https://arxiv.org/abs/2307.07662
    """
    fn = "mpdiou_loss"
    if isinstance(image_size, str) or not isinstance(image_size, Sequence) or len(image_size) != 2:
        raise ValueError(f"{fn}: image_size must be a pair (H, W) of reals > 0, got {image_size!r}")
    height, width = (_positive(fn, "image_size", v) for v in image_size)
    pair = LossPair(fn, y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps, inner_ratio=inner_ratio)
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    corners2 = (x1 - x1g) ** 2 + (y1 - y1g) ** 2 + (x2 - x2g) ** 2 + (y2 - y2g) ** 2
    return pair.done(1 - pair.overlap + corners2 / (width**2 + height**2))


def wiou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    version: Literal[1, 3] = 1,
    mean_iou_loss: float | Array | None = None,
    momentum: float = 1 - 0.5 ** (1 / 7000),
    alpha: float = 1.9,
    delta: float = 3.0,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
    inner_ratio: float | None = None,
) -> Array | tuple[Array, Array]:
    r"""Wise-IoU loss (Tong et al. 2023), v1 or v3, elementwise over matching boxes.

    v1: L = R L_IoU,  R = exp(((x - x_gt)^2 + (y - y_gt)^2) / (W_g^2 + H_g^2)*),  L_IoU = 1 - IoU
    v3: L = r R L_IoU,  r = b / (delta alpha^(b - delta)),  b = L_IoU* / mean(L_IoU)

    ``(x, y)`` are box centres, ``W_g``, ``H_g`` the smallest enclosing box;
    ``*`` marks a value held constant in the gradient (the enclosing size,
    and in v3 ``L_IoU*`` and the mean). The mean of v3 is a running mean over
    training, which is the caller's state, never kept here: pass the previous
    value as ``mean_iou_loss`` and keep the one returned,
    ``mean' = (1 - momentum) mean_iou_loss + momentum batch_mean``, where
    ``batch_mean`` is the mean of ``L_IoU`` over every box of this call;
    ``b`` uses ``mean'`` (the official code updates before scaling). The
    official code starts from 1.0 with momentum 1 - 0.5^(1/7000), this
    function's default momentum.

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        version: 1 (default) or 3 (non-monotonic focusing).
        mean_iou_loss: v3 only: the running mean of ``L_IoU`` so far, a
            float or a 0-d array; None (default) starts from this call's
            ``batch_mean`` (as if ``momentum`` were 1). Must be None for v1.
        momentum: v3: weight of this call's mean in the update, in [0, 1]
            (default 1 - 0.5^(1/7000), about 9.9e-5).
        alpha: v3 focusing parameter, > 0 (default 1.9, the paper's).
        delta: v3 focusing parameter, > 0 (default 3; r = 1 where b = delta).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added to denominators; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.
        inner_ratio: None (default), or a ratio > 0: ``L_IoU`` (also inside
            ``b``) on both boxes scaled about their centres by it (Inner-WIoU);
            ``R`` uses the boxes' own centres.

    Returns:
        v1: the loss, a 0-d array for ``"mean"``/``"sum"``, shape
        ``y_pred.shape[:-1]`` for ``"none"``, in ``y_pred``'s dtype.
        v3: a pair ``(loss, new_mean)``: that loss, and ``mean'`` above, a 0-d
        array in ``y_pred``'s dtype with no gradient, to pass as
        ``mean_iou_loss`` next time (an empty batch leaves the mean unchanged).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, a ``version``
            other than 1 or 3, ``mean_iou_loss`` with v1, ``momentum`` outside
            [0, 1], a non-positive ``alpha``, ``delta`` or ``inner_ratio``, an
            unknown ``box_format`` or ``reduction``, a negative ``eps``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.wiou_loss(p, t)), 4)
        0.9579
        >>> loss, mean = pl.wiou_loss(p, t, version=3, mean_iou_loss=1.0)
        >>> round(float(loss), 4), round(float(mean), 6)
        (1.0829, 0.999986)

    References:
        Tong et al., Wise-IoU: Bounding Box Regression Loss with Dynamic
        Focusing Mechanism, 2023. https://arxiv.org/abs/2301.10051
    """
    fn = "wiou_loss"
    eps = checks.check_nonnegative(fn, "eps", eps)
    if version not in (1, 3) or isinstance(version, bool):
        raise ValueError(f"{fn}: version must be 1 or 3, got {version!r}")
    if version == 1 and mean_iou_loss is not None:
        raise ValueError(f"{fn}: mean_iou_loss is a v3 option; got {mean_iou_loss!r} with version=1")
    if isinstance(momentum, bool) or not 0 <= float(momentum) <= 1:
        raise ValueError(f"{fn}: momentum must lie in [0, 1], got {momentum!r}")
    alpha, delta = _positive(fn, "alpha", alpha), _positive(fn, "delta", delta)
    pair = LossPair(fn, y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps, inner_ratio=inner_ratio)
    xp = pair.xp
    dx, dy = pair.centre_offset()
    enclosing2 = stop_gradient(pair.cw**2 + pair.ch**2 + eps, xp=xp)
    iou_loss = 1 - pair.overlap
    loss = xp.exp((dx**2 + dy**2) / enclosing2) * iou_loss
    if version == 1:
        return pair.done(loss)
    fixed = stop_gradient(iou_loss, xp=xp)
    dev = device(fixed)
    batch_mean = xp.mean(fixed) if numel(fixed) else None
    if mean_iou_loss is None:
        mean = batch_mean if batch_mean is not None else xp.ones((), dtype=fixed.dtype, device=dev)
    else:
        previous = stop_gradient(xp.asarray(mean_iou_loss, dtype=fixed.dtype, device=dev), xp=xp)
        mean = previous if batch_mean is None else (1 - float(momentum)) * previous + float(momentum) * batch_mean
    beta = fixed / xp.maximum(mean, xp.asarray(xp.finfo(fixed.dtype).smallest_normal, dtype=fixed.dtype, device=dev))
    focus = beta / (delta * xp.exp((beta - delta) * math.log(alpha)))
    out = restore(reduce_loss(focus * loss, reduction=reduction, xp=xp), pair.dtype, xp=xp)
    return out, restore(mean, pair.dtype, xp=xp)


def nwd_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    constant: float = 12.8,
    box_format: BoxFormat = "xyxy",
    eps: float = 1e-7,
    reduction: Reduction = "mean",
) -> Array:
    r"""Normalized Gaussian Wasserstein Distance loss (Wang et al. 2021), elementwise over matching boxes.

    L = 1 - exp(-sqrt(W2^2 + eps) / C),  W2^2 = ||(cx, cy, w/2, h/2) - (cx', cy', w'/2, h'/2)||^2

    W2 is the 2-Wasserstein distance between the boxes' Gaussians
    N((cx, cy), diag(w^2/4, h^2/4)). ``eps`` inside the square root keeps the
    gradient finite at identical boxes (the authors' code adds it there too).

    Args:
        y_pred: predicted boxes, floating ``(..., 4)``.
        y_true: target boxes of ``y_pred``'s shape (matched elementwise).
        constant: ``C`` > 0, in the boxes' units, about the dataset's mean
            object size (default 12.8, the paper's for AI-TOD).
        box_format: ``"xyxy"`` (default), ``"xywh"`` or ``"cxcywh"``, both inputs.
        eps: >= 0, added under the square root; default 1e-7.
        reduction: ``"mean"`` (default) or ``"sum"`` over every box, or
            ``"none"``. An empty batch gives 0 (zero gradient) for
            ``"mean"``/``"sum"``.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, shape ``y_pred.shape[:-1]`` for
        ``"none"``, in ``y_pred``'s dtype (computed in at least float32).

    Raises:
        ValueError: shapes that differ or lack a last axis of 4, a
            non-positive ``constant``, an unknown ``box_format`` or
            ``reduction``, a negative ``eps``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
        >>> round(float(pl.nwd_loss(p, t)), 4)
        0.1046

    References:
        Wang et al., A Normalized Gaussian Wasserstein Distance for Tiny
        Object Detection, 2021. https://arxiv.org/abs/2110.13389
    """
    fn = "nwd_loss"
    eps = checks.check_nonnegative(fn, "eps", eps)
    constant = _positive(fn, "constant", constant)
    pair = LossPair(fn, y_pred, y_true, box_format=box_format, reduction=reduction, eps=eps, inner_ratio=None)
    xp = pair.xp
    x1, y1, x2, y2 = pair.p
    x1g, y1g, x2g, y2g = pair.t
    dx, dy = pair.centre_offset()
    dw, dh = (x2 - x1) - (x2g - x1g), (y2 - y1) - (y2g - y1g)
    w2 = dx**2 + dy**2 + (dw**2 + dh**2) / 4
    return pair.done(1 - xp.exp(-xp.sqrt(w2 + eps) / constant))
