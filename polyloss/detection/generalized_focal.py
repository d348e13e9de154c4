"""The generalized focal family of one-stage detectors: Quality Focal, Distribution Focal, Varifocal.

Every loss takes raw logits and works in log space (log-sigmoid,
log-softmax). The options are the detectors' own: ``weight`` (per element,
broadcast to the loss shape: per anchor ``(N, 1)``, per class ``(C,)``...),
``reduction`` and ``avg_factor`` (with ``"mean"``: divide the weighted sum by
it, typically the number of positive anchors, instead of the element count).
"""

from __future__ import annotations

from typing import Any

from .._backend import (
    Array,
    is_concrete,
    numel,
    sigmoid,
    sigmoid_cross_entropy,
    value_range,
)
from .._core import checks
from .._core.inputs import namespace, poison_if, poisoned
from .._core.reduce import as_float, check_weighting, promote, restore, weighted_reduction
from .._core.typing import Reduction
from ..segmentation._pixel import focal_modulation
from ._gfl_ops import distribution_focal, integral

__all__ = ["distribution_focal_loss", "integral_decode", "quality_focal_loss", "varifocal_loss"]



def _prepare(fn: str, y_pred: Array, y_true: Array, reduction: str, avg_factor: Any
             ) -> tuple[Any, Array, Array, Array | None]:
    """Validate a dense (logits, soft target) pair; both in the compute dtype, and the poison of the loss.

    Targets are IoU quality scores in [0, 1]: outside, a ValueError on concrete arrays; traced, the poison is NaN
    (``poisoned`` adds it to the reduced loss). NaN passes, to give NaN.
    """
    xp = namespace(fn, y_pred=y_pred, y_true=y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_same_shape(fn, y_pred, y_true)
    checks.check_reduction(fn, reduction)
    check_weighting(fn, reduction, avg_factor)
    if not xp.isdtype(y_true.dtype, ("real floating", "bool", "integral")):
        raise TypeError(f"{fn}: y_true must be a real (soft) target, got dtype {y_true.dtype}")
    x = promote(y_pred, xp=xp)
    poison = None
    if is_concrete(y_true):
        if numel(y_true) and y_true.dtype != xp.bool:
            low, high = value_range(y_true, xp=xp)
            if low < 0 or high > 1:
                raise ValueError(
                    f"{fn}: y_true must lie in [0, 1] (IoU quality scores), found {low if low < 0 else high!r}"
                )
    elif y_true.dtype != xp.bool:
        poison = poison_if((y_true < 0) | (y_true > 1), x, xp=xp)
    return xp, x, as_float(y_true, x, xp=xp), poison


def quality_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    beta: float = 2.0,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """Quality Focal Loss (Li et al. 2020, Generalized Focal Loss), elementwise.

    QFL(x, y) = |y - sigma(x)|^beta * BCE(x, y),
    BCE(x, y) = -(y log sigma(x) + (1 - y) log(1 - sigma(x)))

    The target ``y`` is a soft score in [0, 1]: the IoU of the predicted box
    with its ground truth at the positive's class, 0 elsewhere. ``beta = 0``
    gives binary cross entropy. mmdet's ``QualityFocalLoss`` takes
    ``(labels, scores)``; its dense target is ``y[i, labels[i]] = scores[i]``.

    Args:
        y_pred: logits, any shape, e.g. ``(num_anchors, num_classes)``; floating.
        y_true: soft targets in [0, 1], the shape of ``y_pred``.
        beta: focusing exponent (default 2.0, the paper's), >= 0.
        weight: per-element weights broadcast to ``y_pred``'s shape (per
            anchor ``(N, 1)``, per class ``(C,)``), or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this (the
            number of positives) instead of the element count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred``'s shape for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that differ, ``beta < 0``, an unknown ``reduction``,
            ``avg_factor`` with a reduction other than ``"mean"``.
        TypeError: a non-floating ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x = np.array([[2.0, -1.0], [0.5, -3.0]])
        >>> y = np.array([[0.9, 0.0], [0.0, 0.0]])
        >>> round(float(pl.quality_focal_loss(x, y, avg_factor=1.0)), 4)
        0.4003

    References:
        Li et al., Generalized Focal Loss: Learning Qualified and Distributed
        Bounding Boxes for Dense Object Detection, NeurIPS 2020.
        https://arxiv.org/abs/2006.04388
    """
    fn = "quality_focal_loss"
    beta = checks.check_nonnegative(fn, "beta", beta)
    xp, x, y, poison = _prepare(fn, y_pred, y_true, reduction, avg_factor)
    loss = sigmoid_cross_entropy(x, y, xp=xp) * focal_modulation(xp.abs(y - sigmoid(x, xp=xp)), beta, xp=xp)
    out = weighted_reduction(fn, loss, weight, reduction, avg_factor, xp=xp)
    return restore(poisoned(out, poison), y_pred.dtype, xp=xp)


def varifocal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float = 0.75,
    gamma: float = 2.0,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    r"""Varifocal Loss (Zhang et al. 2021, VarifocalNet), elementwise.

    VFL(x, q) = q * BCE(x, q)                          if q > 0,
                alpha * sigma(x)^gamma * BCE(x, 0)     if q = 0,

    with BCE as in ``quality_focal_loss``: positives (target IoU score
    ``q > 0``) are weighted by their own quality, negatives down-weighted
    like the focal loss. At ``q = 1`` it is BCE; at ``q = 0`` it is
    ``sigmoid_focal_loss`` with ``alpha`` there equal to ``1 - alpha`` here.
    Equals mmdet's ``varifocal_loss(..., iou_weighted=True)``.

    Args:
        y_pred: logits, any shape; floating.
        y_true: IoU-aware targets ``q`` in [0, 1], the shape of ``y_pred``.
        alpha: weight of the negatives (default 0.75), in [0, 1].
        gamma: focusing exponent on the negatives (default 2.0), >= 0.
        weight: per-element weights broadcast to ``y_pred``'s shape, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of
            the element count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred``'s shape for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that differ, ``alpha`` outside [0, 1], ``gamma < 0``,
            an unknown ``reduction``, ``avg_factor`` without ``"mean"``.
        TypeError: a non-floating ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x = np.array([1.5, -2.0, 0.3])
        >>> q = np.array([0.8, 0.0, 0.0])
        >>> round(float(pl.varifocal_loss(x, q, reduction="sum")), 4)
        0.6139

    References:
        Zhang et al., VarifocalNet: An IoU-aware Dense Object Detector, CVPR 2021.
        https://arxiv.org/abs/2008.13367
    """
    fn = "varifocal_loss"
    alpha = checks.check_in_unit_interval(fn, "alpha", alpha)
    gamma = checks.check_nonnegative(fn, "gamma", gamma)
    xp, x, q, poison = _prepare(fn, y_pred, y_true, reduction, avg_factor)
    negative = alpha * focal_modulation(sigmoid(x, xp=xp), gamma, xp=xp)
    loss = sigmoid_cross_entropy(x, q, xp=xp) * xp.where(q > 0, q, negative)
    out = weighted_reduction(fn, loss, weight, reduction, avg_factor, xp=xp)
    return restore(poisoned(out, poison), y_pred.dtype, xp=xp)


def distribution_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """Distribution Focal Loss (Li et al. 2020, Generalized Focal Loss), per box side.

    DFL(S, y) = -((y_{i+1} - y) log S_i + (y - y_i) log S_{i+1}),
    S = softmax(y_pred) over n bins at 0, 1, ..., n - 1,  y_i = floor(y), y_{i+1} = y_i + 1

    It pulls the predicted distribution onto the two bins around the
    continuous target ``y``; its minimum is where ``integral_decode`` gives
    ``y``. ``y = n - 1`` uses bins ``n - 2`` and ``n - 1``. mmdet's
    ``DistributionFocalLoss`` takes ``n = reg_max + 1`` bins, ultralytics'
    ``DFLoss`` the mean over the 4 sides (``reduction="none"`` then a mean over
    the side axis).

    Args:
        y_pred: logits over the bins on the last axis, shape ``(..., n)``,
            ``n >= 2``; floating.
        y_true: continuous targets in [0, n - 1] (distances in bin units),
            shape ``y_pred.shape[:-1]``; floating.
        weight: per-element weights broadcast to ``y_true``'s shape, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this (mmdet:
            4 x the number of positives) instead of the element count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_true``'s shape for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that do not match, fewer than 2 bins, targets
            outside [0, n - 1] (eager arrays), an unknown ``reduction``.
        TypeError: a non-floating ``y_pred`` or ``y_true``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> logits = np.log(np.array([[0.1, 0.6, 0.3, 1e-9]]))
        >>> round(float(pl.distribution_focal_loss(logits, np.array([1.25]))), 4)
        0.6841

    References:
        Li et al., Generalized Focal Loss: Learning Qualified and Distributed
        Bounding Boxes for Dense Object Detection, NeurIPS 2020.
        https://arxiv.org/abs/2006.04388
    """
    fn = "distribution_focal_loss"
    xp = namespace(fn, y_pred=y_pred, y_true=y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_floating(fn, "y_true", y_true, xp=xp)
    checks.check_reduction(fn, reduction)
    check_weighting(fn, reduction, avg_factor)
    if y_pred.ndim < 1 or y_pred.shape[-1] < 2:
        raise ValueError(f"{fn}: y_pred must have shape (..., n) with n >= 2 bins, got {tuple(y_pred.shape)}")
    n = y_pred.shape[-1]
    if tuple(y_true.shape) != tuple(y_pred.shape[:-1]):
        raise ValueError(
            f"{fn}: y_true must have the shape of y_pred without its bin axis {tuple(y_pred.shape[:-1])}, "
            f"got {tuple(y_true.shape)}"
        )
    if is_concrete(y_true) and 0 not in y_true.shape:
        low, high = value_range(y_true, xp=xp)
        if low < 0 or high > n - 1:
            raise ValueError(f"{fn}: y_true must lie in [0, {n - 1}] (the bin range), found [{low!r}, {high!r}]")
    x = promote(y_pred, xp=xp)
    y = as_float(y_true, x, xp=xp)
    poison = None if is_concrete(y_true) else poison_if((y < 0) | (y > n - 1), x, xp=xp)  # traced, out of range
    loss = distribution_focal(x, y, xp=xp)
    out = weighted_reduction(fn, loss, weight, reduction, avg_factor, xp=xp)
    return restore(poisoned(out, poison), y_pred.dtype, xp=xp)


def integral_decode(y_pred: Array, /) -> Array:
    r"""The expected bin of a distribution over bins: the GFL integral decode.

    d = sum_i i * softmax(y_pred)_i,  i = 0, ..., n - 1

    Multiply by the stride to get a distance in pixels. It inverts
    ``distribution_focal_loss``: the two-bin distribution that minimises DFL
    for a target ``y`` decodes to ``y``.

    Args:
        y_pred: logits over the bins on the last axis, shape ``(..., n)``; floating.

    Returns:
        Shape ``y_pred.shape[:-1]``, in ``y_pred``'s dtype, in [0, n - 1].

    Raises:
        TypeError: a non-floating ``y_pred``.
        ValueError: a 0-d ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> logits = np.log(np.array([0.0, 0.75, 0.25, 0.0]) + 1e-12)
        >>> round(float(pl.integral_decode(logits)), 4)
        1.25

    References:
        Li et al., Generalized Focal Loss, NeurIPS 2020 (Sec. 3.3).
        https://arxiv.org/abs/2006.04388
    """
    fn = "integral_decode"
    xp = namespace(fn, y_pred=y_pred)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    if y_pred.ndim < 1:
        raise ValueError(f"{fn}: y_pred must have shape (..., n), one distribution per row, got shape ()")
    return restore(integral(promote(y_pred, xp=xp), xp=xp), y_pred.dtype, xp=xp)
