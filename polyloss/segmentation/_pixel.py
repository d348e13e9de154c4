"""Per-pixel kernels on prepared inputs (``_inputs.Segmentation``), shared by ``pixelwise`` and ``compound``.

No validation here: the public function validated once. Integer targets are
gathered with ``take_along_axis`` (no one-hot); ignored labels hold class 0
and are masked after the gather. Kernels that need log-probabilities take
them as ``log_p`` when the caller already has them (a compound computes the
softmax once).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from .._backend import (
    Array,
    clamped_log,
    clip,
    log_sigmoid,
    log_softmax,
    numel,
    sigmoid,
    sigmoid_cross_entropy,
    softmax_cross_entropy,
    softmax_nll,
    take_along_axis,
)
from .._core import checks
from .._core.inputs import Dense, Labels, Segmentation, along_class_axis, class_vector


def binary_log_likelihoods(x: Array, from_logits: bool, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """``(log p, log(1 - p))`` from logits (log space) or probabilities (clamped at -100)."""
    if from_logits:
        log_p = log_sigmoid(x, xp=xp)
        return log_p, log_p - x  # log(1 - sigmoid(x)) = log_sigmoid(x) - x
    return clamped_log(x, xp=xp), clamped_log(1 - x, xp=xp)


def bce(x: Array, t: Array, /, *, from_logits: bool, pos_weight: Array | float | None = None, xp: ModuleType
        ) -> Array:
    """Elementwise -(beta t log p + (1 - t) log(1 - p)): fused from logits, clamped logs from probabilities."""
    if from_logits:
        return sigmoid_cross_entropy(x, t, pos_weight=pos_weight, xp=xp)
    log_p, log_q = binary_log_likelihoods(x, from_logits, xp=xp)
    return -((t if pos_weight is None else pos_weight * t) * log_p + (1 - t) * log_q)


def balanced_bce(x: Array, t: Array, beta: Array | float, /, *, from_logits: bool, xp: ModuleType) -> Array:
    """Elementwise -(beta t log p + (1 - beta)(1 - t) log(1 - p))."""
    log_p, log_q = binary_log_likelihoods(x, from_logits, xp=xp)
    return -(beta * t * log_p + (1 - beta) * (1 - t) * log_q)


def focal_modulation(one_minus_pt: Array, gamma: float, /, *, xp: ModuleType) -> Array | float:
    """``(1 - p_t) ** gamma`` with a finite gradient where ``1 - p_t = 0``.

    For ``gamma < 1`` the base is clipped at the smallest normal number, where
    the power's derivative would otherwise be infinite; so is it for a traced
    ``gamma`` (whose value is unknown).
    """
    known = isinstance(gamma, (int, float))
    if known and gamma == 0:
        return 1.0
    if not known or gamma < 1:
        one_minus_pt = clip(one_minus_pt, xp.finfo(one_minus_pt.dtype).smallest_normal, None, xp=xp)
    return one_minus_pt**gamma


def sigmoid_focal(x: Array, t: Array, /, *, alpha: float | None, gamma: float, from_logits: bool, xp: ModuleType
                  ) -> tuple[Array, Array]:
    """Per-element sigmoid focal loss and ``1 - p_t`` (the Poly-1 term reuses it)."""
    ce = bce(x, t, from_logits=from_logits, xp=xp)
    p = sigmoid(x, xp=xp) if from_logits else x
    one_minus_pt = p + t - 2 * p * t  # 1 - (p t + (1 - p)(1 - t))
    loss = ce * focal_modulation(one_minus_pt, gamma, xp=xp)
    if alpha is not None:
        loss = loss * ((1 - alpha) + (2 * alpha - 1) * t)  # alpha t + (1 - alpha)(1 - t)
    return loss, one_minus_pt


# --------------------------------------------------------------------------- #
# Multiclass (softmax) kernels over the class axis
# --------------------------------------------------------------------------- #


def log_probs(seg: Segmentation, /) -> Array:
    """Log-probabilities of every class (the class axis kept)."""
    if seg.from_logits:
        return log_softmax(seg.x, axis=seg.axis, xp=seg.xp)
    return clamped_log(seg.x, xp=seg.xp)


def at_label(seg: Segmentation, labels: Labels, v: Array, /) -> Array:
    """``v`` (class axis kept) at each pixel's label; the class axis dropped."""
    xp = seg.xp
    index = xp.expand_dims(labels.labels, axis=seg.axis)
    return xp.squeeze(take_along_axis(v, index, axis=seg.axis, xp=xp), axis=seg.axis)


def nll_at_label(seg: Segmentation, labels: Labels, /, log_p: Array | None = None) -> Array:
    """``-log p`` of each pixel's label, without the full log-softmax unless ``log_p`` is given."""
    if log_p is not None:
        return -at_label(seg, labels, log_p)
    if seg.from_logits:
        return softmax_nll(seg.x, labels.labels, axis=seg.axis, xp=seg.xp)
    return -clamped_log(at_label(seg, labels, seg.x), xp=seg.xp)


def label_weight(seg: Segmentation, labels: Labels, w: Array, /) -> Array:
    """The class weight of each pixel's label."""
    xp = seg.xp
    return xp.reshape(xp.take(w, xp.reshape(labels.labels, (-1,)), axis=0), labels.labels.shape)


def masked(valid: Array | None, loss: Array, /, *, xp: ModuleType) -> Array:
    """``loss`` with ignored entries zeroed."""
    return loss if valid is None else xp.where(valid, loss, 0)


def valid_count(seg: Segmentation, /) -> Array | None:
    """The count of non-ignored pixels, or None when nothing is ignored."""
    valid = seg.target.valid
    return None if valid is None else seg.xp.sum(seg.xp.astype(valid, seg.x.dtype))


def smoothed(target: Dense, s: float, num_classes: int, /) -> Array:
    """Probability targets with label smoothing ``s``: (1 - s) t + s / C."""
    return target.target if not s else target.target * (1 - s) + s / num_classes


def weighted_denominator(seg: Segmentation, labels: Labels, w: Array | None, /) -> tuple[Array | None, Array | float]:
    """The mean's denominator of integer-target CE (None: the pixel count) and each pixel's class weight.

    torch's rule: the summed ``w_y`` of the valid pixels, or their count without ``w``.
    """
    if w is None:
        return valid_count(seg), 1.0
    pixel_w = label_weight(seg, labels, w)
    return seg.xp.sum(masked(labels.valid, pixel_w, xp=seg.xp)), pixel_w


def cross_entropy_terms(seg: Segmentation, w: Array | None, s: float, /, log_p: Array | None = None
                        ) -> tuple[Array, Array | None, Array | float]:
    """Per-pixel CE (masked), the mean's denominator (None: the pixel count), and each pixel's weight.

    Integer targets: l = -(1 - s) w_y log p_y - (s / C) sum_c w_c log p_c, the
    mean dividing by the summed w_y of valid pixels (torch's rule).
    Probability targets: l = -sum_c w_c t'_c log p_c.
    """
    xp, axis, n, target = seg.xp, seg.axis, seg.num_classes, seg.target
    w_b = None if w is None else along_class_axis(w, seg)
    if isinstance(target, Dense):
        t = smoothed(target, s, n)
        wt = t if w_b is None else w_b * t
        return -xp.sum(wt * (log_probs(seg) if log_p is None else log_p), axis=axis), None, 1.0
    if not checks.is_zero(s) and log_p is None:
        log_p = log_probs(seg)
    loss = nll_at_label(seg, target, log_p)
    denominator, pixel_w = weighted_denominator(seg, target, w)
    if w is not None:
        loss = loss * pixel_w
    if not checks.is_zero(s):
        w_log_p = log_p if w_b is None else w_b * log_p
        loss = (1 - s) * loss - (s / n) * xp.sum(w_log_p, axis=axis)
    return masked(target.valid, loss, xp=xp), denominator, pixel_w


def reduced_ce(seg: Segmentation, w: Array | None, s: float, reduction: str, /) -> Array | None:
    """Integer-target CE from logits in one ``softmax_cross_entropy`` call (torch's fused kernel), reduced
    (its ``"mean"`` is 0 when every pixel is ignored); None for probabilities, probability targets or empty
    inputs (the caller composes those).

    Ignored pixels reach the kernel as the labels given with their ``ignore_index`` where a host check ran
    (``Labels.checked``), else as -1.
    """
    target = seg.target
    if not (seg.from_logits and isinstance(target, Labels)) or seg.x.ndim < 2 or numel(seg.x) == 0:
        return None
    xp, labels, ignore = seg.xp, target.labels, None
    if target.valid is not None and target.checked is not None:
        labels, ignore = target.checked, target.ignore_index
    elif target.valid is not None:
        labels, ignore = xp.where(target.valid, labels, -1), -1
    return softmax_cross_entropy(seg.x, labels, axis=seg.axis, weight=w, ignore_index=ignore, label_smoothing=s,
                                 reduction=reduction, xp=xp)


def softmax_focal(seg: Segmentation, alpha: Array | None, gamma: float, /, log_p: Array | None = None) -> Array:
    """Per-pixel -sum_c alpha_c t_c (1 - p_c)^gamma log p_c (masked); ``alpha`` a per-class vector or None."""
    xp, target = seg.xp, seg.target
    if isinstance(target, Dense):
        log_p = log_probs(seg) if log_p is None else log_p
        focal = target.target * focal_modulation(1 - xp.exp(log_p), gamma, xp=xp) * log_p
        if alpha is not None:
            focal = along_class_axis(alpha, seg) * focal
        return -xp.sum(focal, axis=seg.axis)
    log_pt = -nll_at_label(seg, target, log_p)
    loss = -focal_modulation(1 - xp.exp(log_pt), gamma, xp=xp) * log_pt
    if alpha is not None:
        loss = loss * label_weight(seg, target, alpha)
    return masked(target.valid, loss, xp=xp)


def focal_alpha(seg: Segmentation, alpha: float | Sequence[float] | Array | None, /) -> Array | None:
    """The per-class alpha of the softmax focal loss: a scalar is 1 - alpha on class 0, alpha on the others."""
    if checks.is_real_scalar(alpha):
        a = checks.check_in_unit_interval(seg.caller, "alpha", alpha)
        return class_vector(seg, "alpha", [1 - a] + [a] * (seg.num_classes - 1))
    return None if alpha is None else class_vector(seg, "alpha", alpha)
