"""Pixel-wise losses: the cross-entropy family, focal losses and Poly-1.

Each loss is computed per element, then reduced by ``_reduce.reduce_loss``.
Integer targets are gathered with ``take_along_axis`` (no one-hot); ignored
labels are replaced by class 0 before the gather and masked after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

from . import _checks as checks
from ._reduce import along_axis, as_float, class_weights, promote, reduce_loss, restore
from ._xp import (
    Array,
    array_namespace,
    clamped_log,
    clip,
    device,
    log_sigmoid,
    log_softmax,
    sigmoid,
    sigmoid_cross_entropy,
    softmax,
    softmax_nll,
    take_along_axis,
)

__all__ = [
    "balanced_binary_cross_entropy",
    "binary_cross_entropy",
    "cross_entropy",
    "poly1_cross_entropy",
    "poly1_focal_loss",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]

Weight = Sequence[float] | Array | None


# --------------------------------------------------------------------------- #
# Binary (sigmoid) losses, elementwise over y_pred's shape
# --------------------------------------------------------------------------- #


def _element_weight(fn: str, name: str, w: Any, x: Array, class_axis: int, *, xp: ModuleType) -> Array | float:
    """A scalar, a per-class vector laid along ``class_axis``, or an array broadcasting to ``x``."""
    if isinstance(w, int | float) and not isinstance(w, bool):
        return float(w)
    w = xp.asarray(w, dtype=x.dtype, device=device(x))
    if w.ndim == 1:
        axis = checks.normalize_axis(fn, "class_axis", class_axis, x.ndim)
        if w.shape[0] != x.shape[axis]:
            raise ValueError(
                f"{fn}: a 1-D {name} must have one entry per class ({x.shape[axis]} along class_axis "
                f"{class_axis}), got {w.shape[0]}"
            )
        return along_axis(w, axis, x.ndim, xp=xp)
    if w.ndim != x.ndim or any(a not in (1, b) for a, b in zip(w.shape, x.shape, strict=True)):
        raise ValueError(
            f"{fn}: {name} must be a scalar, a per-class vector, or broadcast to y_pred's shape "
            f"{tuple(x.shape)}, got shape {tuple(w.shape)}"
        )
    return w


class _Binary(NamedTuple):
    x: Array  # scores in the compute dtype
    t: Array  # targets in the compute dtype
    dtype: Any  # the dtype to return
    xp: ModuleType


def _binary_inputs(fn: str, y_pred: Array, y_true: Array, reduction: str, label_smoothing: float = 0.0) -> _Binary:
    xp = array_namespace(y_pred, y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_same_shape(fn, y_pred, y_true)
    checks.check_reduction(fn, reduction)
    checks.check_in_unit_interval(fn, "label_smoothing", label_smoothing)
    x = promote(y_pred, xp=xp)
    t = as_float(y_true, x, xp=xp)
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / 2
    return _Binary(x, t, y_pred.dtype, xp)


def _binary_log_likelihoods(x: Array, from_logits: bool, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(log p, log(1 - p))`` from logits (log space) or probabilities (clamped at -100)."""
    if from_logits:
        log_p = log_sigmoid(x, xp=xp)
        return log_p, log_p - x  # log(1 - sigmoid(x)) = log_sigmoid(x) - x
    return clamped_log(x, xp=xp), clamped_log(1 - x, xp=xp)


def _bce(x: Array, t: Array, *, from_logits: bool, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """Elementwise -(beta t log p + (1 - t) log(1 - p)): fused from logits, clamped logs from probabilities."""
    if from_logits:
        return sigmoid_cross_entropy(x, t, pos_weight=pos_weight, xp=xp)
    log_p, log_q = _binary_log_likelihoods(x, from_logits, xp=xp)
    return -((t if pos_weight is None else pos_weight * t) * log_p + (1 - t) * log_q)


def binary_cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    from_logits: bool = True,
    pos_weight: Weight | float = None,
    weight: Weight | float = None,
    label_smoothing: float = 0.0,
    class_axis: int = 1,
    reduction: str = "mean",
) -> Array:
    r"""Binary cross entropy, elementwise.

    l = -w [beta y log p + (1 - y) log(1 - p)],  y <- y (1 - s) + s / 2

    ``beta`` is ``pos_weight``, ``w`` is ``weight`` and ``s`` is
    ``label_smoothing``. Each of ``weight`` and ``pos_weight`` is a scalar, a
    per-class vector laid along ``class_axis``, or an array of ``y_pred``'s
    ndim that broadcasts to it (a per-pixel map such as ``unet_weight_map``).
    ``"mean"`` divides by the element count, as torch does.

    Peers: ``torch.nn.functional.binary_cross_entropy_with_logits`` (and
    ``binary_cross_entropy`` with ``from_logits=False``, whose -100 log clamp
    this shares); torch broadcasts a 1-D ``pos_weight`` along the last axis,
    which here is ``class_axis=-1``.
    """
    fn = "binary_cross_entropy"
    b = _binary_inputs(fn, y_pred, y_true, reduction, label_smoothing)
    xp, x, t = b.xp, b.x, b.t
    pw = None if pos_weight is None else _element_weight(fn, "pos_weight", pos_weight, x, class_axis, xp=xp)
    loss = _bce(x, t, from_logits=from_logits, pos_weight=pw, xp=xp)
    if weight is not None:
        loss = loss * _element_weight(fn, "weight", weight, x, class_axis, xp=xp)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), b.dtype, xp=xp)


def balanced_binary_cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    beta: float | None = None,
    from_logits: bool = True,
    weight: Weight | float = None,
    class_axis: int = 1,
    eps: float = 1e-7,
    reduction: str = "mean",
) -> Array:
    r"""Class-balanced binary cross entropy (Xie & Tu 2015, HED).

    l = -[beta y log p + (1 - beta) (1 - y) log(1 - p)]

    ``beta=None`` sets beta to the share of negatives in ``y_true`` (over the
    whole batch), clipped to ``[eps, 1 - eps]``, so rare positives weigh more.
    ``weight`` and ``reduction`` as in ``binary_cross_entropy``.
    """
    fn = "balanced_binary_cross_entropy"
    b = _binary_inputs(fn, y_pred, y_true, reduction)
    xp, x, t = b.xp, b.x, b.t
    if beta is None:
        beta = clip(1 - xp.mean(t), eps, 1 - eps, xp=xp)
    else:
        checks.check_in_unit_interval(fn, "beta", beta)
    log_p, log_q = _binary_log_likelihoods(x, from_logits, xp=xp)
    loss = -(beta * t * log_p + (1 - beta) * (1 - t) * log_q)
    if weight is not None:
        loss = loss * _element_weight(fn, "weight", weight, x, class_axis, xp=xp)
    return restore(reduce_loss(loss, reduction=reduction, xp=xp), b.dtype, xp=xp)


def _sigmoid_focal_terms(
    b: _Binary, alpha: float | None, gamma: float, from_logits: bool
) -> tuple[Array, Array]:
    """Per-element focal loss and ``1 - p_t`` (the Poly-1 term reuses it)."""
    xp, x, t = b.xp, b.x, b.t
    ce = _bce(x, t, from_logits=from_logits, xp=xp)
    p = sigmoid(x, xp=xp) if from_logits else x
    one_minus_pt = p + t - 2 * p * t  # 1 - (p t + (1 - p)(1 - t))
    loss = ce * _focal_modulation(one_minus_pt, gamma, xp=xp)
    if alpha is not None:
        loss = loss * ((1 - alpha) + (2 * alpha - 1) * t)  # alpha t + (1 - alpha)(1 - t)
    return loss, one_minus_pt


def _focal_modulation(one_minus_pt: Array, gamma: float, *, xp: ModuleType) -> Array | float:
    """``(1 - p_t) ** gamma`` with a finite gradient where ``1 - p_t = 0``.

    For ``gamma < 1`` the base is clipped at the smallest normal number, where
    the power's derivative would otherwise be infinite.
    """
    if gamma == 0:
        return 1.0
    if gamma < 1:
        one_minus_pt = clip(one_minus_pt, xp.finfo(one_minus_pt.dtype).smallest_normal, None, xp=xp)
    return one_minus_pt**gamma


def _check_focal(fn: str, alpha: float | None, gamma: float) -> None:
    checks.check_nonnegative(fn, "gamma", gamma)
    if alpha is not None:
        checks.check_in_unit_interval(fn, "alpha", alpha)


def sigmoid_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017, RetinaNet), elementwise.

    l = -alpha_t (1 - p_t)^gamma log p_t,  p_t = p y + (1 - p)(1 - y),
    alpha_t = alpha y + (1 - alpha)(1 - y)

    ``alpha=None`` drops alpha_t. Soft targets are allowed. For RetinaNet,
    take ``reduction="sum"`` and divide by the number of positive anchors.

    Peers: ``torchvision.ops.sigmoid_focal_loss`` (its ``alpha=-1`` is our
    ``alpha=None``); ``optax.sigmoid_focal_loss`` is ``reduction="none"``.
    """
    fn = "sigmoid_focal_loss"
    _check_focal(fn, alpha, gamma)
    b = _binary_inputs(fn, y_pred, y_true, reduction)
    loss, _ = _sigmoid_focal_terms(b, alpha, gamma, from_logits)
    return restore(reduce_loss(loss, reduction=reduction, xp=b.xp), b.dtype, xp=b.xp)


def poly1_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    epsilon: float = 1.0,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    from_logits: bool = True,
    reduction: str = "mean",
) -> Array:
    r"""Poly-1 focal loss (Leng et al. 2022), sigmoid form, elementwise.

    l = FL + epsilon (1 - p_t)^(gamma + 1)

    ``FL`` is ``sigmoid_focal_loss`` with the same ``alpha`` and ``gamma``;
    the polynomial term is not alpha-weighted, as in the paper's code.
    """
    fn = "poly1_focal_loss"
    _check_focal(fn, alpha, gamma)
    b = _binary_inputs(fn, y_pred, y_true, reduction)
    loss, one_minus_pt = _sigmoid_focal_terms(b, alpha, gamma, from_logits)
    loss = loss + epsilon * one_minus_pt ** (gamma + 1)
    return restore(reduce_loss(loss, reduction=reduction, xp=b.xp), b.dtype, xp=b.xp)


# --------------------------------------------------------------------------- #
# Multiclass (softmax) losses over a class axis
# --------------------------------------------------------------------------- #


class _Classes(NamedTuple):
    """A multiclass problem, validated and laid out for the per-pixel losses."""

    x: Array  # scores (logits, or probabilities if not from_logits), compute dtype
    from_logits: bool
    axis: int  # the class axis, non-negative
    num_classes: int
    # Exactly one of labels / target is set, the other is None (typed Array: mypy cannot see the invariant).
    labels: Array  # integer targets without the class axis, ignored ones replaced by 0
    target: Array  # floating targets, same shape as x
    valid: Array | None  # per-pixel mask (no class axis) when ignore_index is set
    dtype: Any
    xp: ModuleType


def _class_inputs(
    fn: str,
    y_pred: Array,
    y_true: Array,
    *,
    class_axis: int,
    from_logits: bool,
    ignore_index: int | None,
    reduction: str,
) -> _Classes:
    xp = array_namespace(y_pred, y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_reduction(fn, reduction)
    axis = checks.normalize_axis(fn, "class_axis", class_axis, y_pred.ndim)
    num_classes = y_pred.shape[axis]
    if num_classes < 2:
        raise ValueError(
            f"{fn}: softmax needs at least 2 classes along class_axis {class_axis}, "
            f"got {num_classes}; use the binary (sigmoid) losses for one channel"
        )
    integer = checks.is_integer_target(fn, y_true, xp=xp)
    checks.check_ignore_index(fn, ignore_index, integer)
    x = promote(y_pred, xp=xp)
    labels = target = valid = None
    if integer:
        checks.check_index_target_shape(fn, y_pred, y_true, axis)
        labels = y_true
        if ignore_index is not None:
            valid = labels != ignore_index
            labels = xp.where(valid, labels, 0)
        checks.check_labels(fn, labels, num_classes, ignore_index, xp=xp)
    else:
        checks.check_same_shape(fn, y_pred, y_true)
        target = as_float(y_true, x, xp=xp)
    return _Classes(x, from_logits, axis, num_classes, labels, target, valid, y_pred.dtype, xp)


def _log_probs(c: _Classes) -> Array:
    """Log-probabilities of every class (the class axis kept)."""
    if c.from_logits:
        return log_softmax(c.x, axis=c.axis, xp=c.xp)
    return clamped_log(c.x, xp=c.xp)


def _at_label(c: _Classes, v: Array) -> Array:
    """``v`` (class axis kept) at each pixel's label; the class axis dropped."""
    xp = c.xp
    index = xp.expand_dims(c.labels, axis=c.axis)
    return xp.squeeze(take_along_axis(v, index, axis=c.axis, xp=xp), axis=c.axis)


def _nll_at_label(c: _Classes) -> Array:
    """``-log p`` of each pixel's label, without the full log-softmax where possible."""
    if c.from_logits:
        return softmax_nll(c.x, c.labels, axis=c.axis, xp=c.xp)
    return -clamped_log(_at_label(c, c.x), xp=c.xp)


def _label_weight(c: _Classes, w: Array) -> Array:
    """The class weight of each pixel's label."""
    xp = c.xp
    return xp.reshape(xp.take(w, xp.reshape(c.labels, (-1,)), axis=0), c.labels.shape)


def _masked(c: _Classes, loss: Array) -> Array:
    return loss if c.valid is None else c.xp.where(c.valid, loss, 0)


def _valid_count(c: _Classes) -> Array | None:
    """The count of non-ignored pixels, or None when nothing is ignored."""
    xp = c.xp
    return None if c.valid is None else xp.sum(xp.astype(c.valid, c.x.dtype))


def _cross_entropy_terms(
    c: _Classes, fn: str, weight: Weight, label_smoothing: float
) -> tuple[Array, Array | None, Array | float]:
    """Per-pixel CE (masked), the mean's denominator, and each pixel's weight."""
    xp, axis, n = c.xp, c.axis, c.num_classes
    s = label_smoothing
    w = None if weight is None else class_weights(fn, weight, n, c.x, xp=xp)
    w_b = None if w is None else along_axis(w, axis, c.x.ndim, xp=xp)
    if c.labels is None:  # probability targets: mean over pixels, torch's rule
        t = c.target if not s else c.target * (1 - s) + s / n
        wt = t if w_b is None else w_b * t
        return -xp.sum(wt * _log_probs(c), axis=axis), None, 1.0
    if s:
        log_p = _log_probs(c)
        loss = -_at_label(c, log_p)
    else:
        loss = _nll_at_label(c)
    pixel_w: Array | float = 1.0
    if w is not None:
        pixel_w = _label_weight(c, w)
        loss = loss * pixel_w
    if s:
        w_log_p = log_p if w_b is None else w_b * log_p
        loss = (1 - s) * loss - (s / n) * xp.sum(w_log_p, axis=axis)
    loss = _masked(c, loss)
    if w is None:
        return loss, _valid_count(c), pixel_w
    return loss, xp.sum(_masked(c, pixel_w)), pixel_w


def cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    class_axis: int = 1,
    from_logits: bool = True,
    weight: Weight = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Multiclass cross entropy over ``class_axis``.

    Integer targets: l_i = -(1 - s) w_{y_i} log p_{i,y_i} - (s / C) sum_c w_c log p_{i,c};
    ``"mean"`` divides by sum_i w_{y_i} over non-ignored pixels (by their count
    without ``weight``). Probability targets t: l_i = -sum_c w_c t'_{i,c} log p_{i,c}
    with t' = (1 - s) t + s / C; ``"mean"`` divides by the pixel count.

    ``y_pred`` is (N, C, *spatial) for ``class_axis=1`` or (N, *spatial, C)
    for ``class_axis=-1``; ``y_true`` is integer labels without the class
    axis, or floating probabilities of ``y_pred``'s shape. ``"none"`` returns
    one value per pixel. All pixels ignored gives 0.

    Peers: equals ``torch.nn.functional.cross_entropy`` for every argument
    (``ignore_index`` default -100 there, None here); optax's
    ``softmax_cross_entropy_with_integer_labels`` is ``reduction="none"``.
    """
    fn = "cross_entropy"
    checks.check_in_unit_interval(fn, "label_smoothing", label_smoothing)
    c = _class_inputs(
        fn, y_pred, y_true, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
        reduction=reduction,
    )
    loss, denominator, _ = _cross_entropy_terms(c, fn, weight, label_smoothing)
    return restore(reduce_loss(loss, reduction=reduction, denominator=denominator, xp=c.xp), c.dtype, xp=c.xp)


def poly1_cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    epsilon: float = 1.0,
    class_axis: int = 1,
    from_logits: bool = True,
    weight: Weight = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> Array:
    r"""Poly-1 cross entropy (Leng et al. 2022): CE + epsilon (1 - p_t).

    p_t = sum_c t'_c p_c with the (smoothed) one-hot or probability target t'.
    For integer targets the epsilon term carries the pixel's class weight and
    shares cross_entropy's denominator; every other option is cross_entropy's.
    """
    fn = "poly1_cross_entropy"
    checks.check_in_unit_interval(fn, "label_smoothing", label_smoothing)
    c = _class_inputs(
        fn, y_pred, y_true, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
        reduction=reduction,
    )
    xp, s, n = c.xp, label_smoothing, c.num_classes
    ce, denominator, pixel_w = _cross_entropy_terms(c, fn, weight, s)
    if c.labels is None:
        t = c.target if not s else c.target * (1 - s) + s / n
        p_t = xp.sum(t * xp.exp(_log_probs(c)), axis=c.axis)
    else:
        p_t = xp.exp(-_nll_at_label(c))
        if s:
            p_all = softmax(c.x, axis=c.axis, xp=xp) if c.from_logits else c.x
            p_t = (1 - s) * p_t + (s / n) * xp.sum(p_all, axis=c.axis)
    loss = ce + _masked(c, epsilon * pixel_w * (1 - p_t))
    return restore(reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp), c.dtype, xp=xp)


def softmax_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float | Sequence[float] | Array | None = None,
    gamma: float = 2.0,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    r"""Softmax focal loss (Lin et al. 2017), per pixel.

    l_i = -sum_c alpha_c t_{i,c} (1 - p_{i,c})^gamma log p_{i,c}

    ``alpha`` a sequence: one weight per class; a scalar: 1 - alpha on class 0
    (background) and alpha on the others; None: 1. ``"mean"`` divides by the
    number of non-ignored pixels. ``gamma=0, alpha=None`` is ``cross_entropy``.

    Peers: ``kornia.losses.focal_loss`` and MONAI's ``FocalLoss(use_softmax=True)``
    average over classes x pixels, so they equal this divided by C.
    """
    fn = "softmax_focal_loss"
    checks.check_nonnegative(fn, "gamma", gamma)
    c = _class_inputs(
        fn, y_pred, y_true, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
        reduction=reduction,
    )
    xp, n = c.xp, c.num_classes
    a = None
    if isinstance(alpha, int | float) and not isinstance(alpha, bool):
        checks.check_in_unit_interval(fn, "alpha", alpha)
        a = class_weights(fn, [1 - alpha] + [alpha] * (n - 1), n, c.x, xp=xp)
    elif alpha is not None:
        a = class_weights(fn, alpha, n, c.x, xp=xp)
    if c.labels is None:
        log_p = _log_probs(c)
        focal = c.target * _focal_modulation(1 - xp.exp(log_p), gamma, xp=xp) * log_p
        if a is not None:
            focal = along_axis(a, c.axis, c.x.ndim, xp=xp) * focal
        loss = -xp.sum(focal, axis=c.axis)
    else:
        log_pt = -_nll_at_label(c)
        loss = -_focal_modulation(1 - xp.exp(log_pt), gamma, xp=xp) * log_pt
        if a is not None:
            loss = loss * _label_weight(c, a)
        loss = _masked(c, loss)
    return restore(reduce_loss(loss, reduction=reduction, denominator=_valid_count(c), xp=xp), c.dtype, xp=xp)
