"""Compound losses: an overlap term plus a pixel-wise term, validated once.

Each compound prepares its inputs once (``_confusion.region``), computes the
multiclass softmax once (the pixel-wise term reads the log-probabilities
whose exponential the statistics use), and adds the pixel-wise sum and the
count its mean divides by to the statistics, so ``all_reduce`` makes both
terms global. The pixel-wise kernels are ``_pixel``'s, the ones the public
pixel-wise losses run. Options: the shared region options, keyword-only
parameters as in the region losses (docs/conventions.md, "Region options"); ``reduction`` is ``"mean"`` or
``"sum"``, applied to each term; ``label_smoothing`` smooths the target of
both terms (dense targets arrive smoothed; integer labels are smoothed here,
each term being affine in the target: l(t_s) = (1 - s) l(onehot) + s l(1/C)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._backend import Array, clamped_log, device, numel
from .._core import checks
from .._core.inputs import Dense, Segmentation, along_class_axis, returned
from .._core.reduce import reduce_classes, safe_divide
from .._core.typing import AllReduce, Mode, Reduction, Weight
from ._confusion import (
    FusedPixel,
    PixelInputs,
    Region,
    RegionOptions,
    dice_index,
    jaccard_index,
    neg_log,
    region,
)
from ._pixel import (
    at_label,
    balanced_bce,
    bce,
    cross_entropy_terms,
    focal_alpha,
    focal_modulation,
    masked,
    sigmoid_focal,
    softmax_focal,
)

__all__ = ["bce_jaccard_loss", "combo_loss", "dice_cross_entropy_loss", "dice_focal_loss"]


def _check(fn: str, options: RegionOptions, **lambdas: Any) -> tuple[RegionOptions, list[Any]]:
    """The compound's own checks (``region`` validates the rest), and the non-negative ``lambdas`` in order,
    as floats or traced 0-d arrays."""
    if options.reduction == "none":
        raise ValueError(
            f"{fn}: reduction must be 'mean' or 'sum' (the region term is per class, the pixel-wise term per "
            "pixel), got 'none'; call the two losses separately for unreduced values"
        )
    return options, [checks.check_nonnegative(fn, name, value) for name, value in lambdas.items()]


def _pixel_sum(seg: Segmentation, loss: Array, den: Array | None = None, *, per: int = 1) -> Array:
    """``[sum, count]`` of a pixel-wise term: its sum (ignored entries masked) and what its mean divides by.

    ``den``: the mean's denominator where the kernel gives one (torch's weighted CE); otherwise the
    count of valid entries of ``loss``, times ``per`` (the channels a per-pixel sum stands for).
    """
    xp, valid = seg.xp, seg.target.valid
    if isinstance(seg.target, Dense):
        loss = masked(valid, loss, xp=xp)
    total = xp.sum(loss)
    if den is None:
        if valid is None:
            den = xp.full((), float(numel(loss)), dtype=total.dtype, device=device(total))
        else:
            den = xp.sum(xp.astype(valid, total.dtype))
        den = den * per
    return xp.stack([total, den])


def _pixel_mean(r: Region) -> Array:
    """The pixel-wise term from its reduced ``[sum, count]``: the sum, or the mean."""
    assert r.full.extra is not None
    total, den = r.full.extra[0], r.full.extra[1]
    return total if r.opts["reduction"] == "sum" else safe_divide(total, den, xp=r.xp)


def _region_term(r: Region, per_class: Array) -> Array:
    return reduce_classes(per_class, weight=r.weight, reduction=r.opts["reduction"], xp=r.xp)


def dice_cross_entropy_loss(
    y_pred: Array, y_true: Array, /, *, lambda_dice: float = 1.0, lambda_ce: float = 1.0,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Dice + cross entropy ("DiceCE", nnU-Net's default).

    L = lambda_dice * dice_loss + lambda_ce * CE

    CE is ``cross_entropy`` (multiclass, torch's weighted mean over non-ignored
    pixels) or ``binary_cross_entropy`` (sigmoid modes, mean over valid
    elements), always over every class; ``classes`` and ``smooth`` apply to
    the Dice term only; ``weight`` and ``label_smoothing`` to both. With
    ``all_reduce``, the CE sum and its count are reduced with the statistics,
    so both terms are global.

    Peers: ``monai.losses.DiceCELoss(softmax=True, to_onehot_y=True)``
    equals ``per_image=True, smooth=1e-5`` (its ``smooth_nr = smooth_dr``);
    with MONAI ``weight`` w, the Dice term differs by the factor mean(w); its
    ``label_smoothing`` smooths the CE term only.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        lambda_dice: weight of the Dice term (>= 0).
        lambda_ce: weight of the cross-entropy term (>= 0).
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array; None: equal. Which terms they
            weigh: above.
        reduction: ``"mean"`` or ``"sum"``, applied to each term before they are added (``"none"`` raises:
            the region term is per class, the pixel-wise term per pixel).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t of both terms becomes t (1 - s) + s / K, K the
            softmax's classes (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out (MONAI's
            ``DiceCELoss`` smooths its cross entropy only).
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        A 0-d array in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.dice_cross_entropy_loss(x, y)), 4)
        0.0661

    References:
        Isensee et al., nnU-Net, 2021. https://doi.org/10.1038/s41592-020-01008-z
    """
    fn = "dice_cross_entropy_loss"
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    opts, (lambda_dice, lambda_ce) = _check(fn, options, lambda_dice=lambda_dice, lambda_ce=lambda_ce)

    def ce(px: PixelInputs) -> Array:
        seg, w = px.seg, px.weight
        if seg.mode == "multiclass":
            loss, den, _ = cross_entropy_terms(seg, w, px.s, px.log_p)
            return _pixel_sum(seg, loss, den)
        loss = bce(seg.x, seg.dense.target, from_logits=seg.from_logits, xp=seg.xp)
        return _pixel_sum(seg, loss if w is None else loss * along_class_axis(w, seg))

    # softmax over labels: the CE inside the fused statistics (one softmax, one backward); ``ce`` elsewhere
    fused_ce = FusedPixel(lambda seg, w: w, gamma=0.0, by_weight=True)
    r = region(fn, y_pred, y_true, opts, extra=ce, need_log_p=True, pixel=fused_ce)
    return returned(r.seg, lambda_dice * _region_term(r, 1 - dice_index(r)) + lambda_ce * _pixel_mean(r))


def dice_focal_loss(
    y_pred: Array, y_true: Array, /, *, lambda_dice: float = 1.0, lambda_focal: float = 1.0,
    alpha: float | Sequence[float] | None = None, gamma: float = 2.0,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Dice + focal loss (Zhu et al. 2019).

    L = lambda_dice * dice_loss + lambda_focal * FL

    FL follows ``mode``: ``softmax_focal_loss(alpha, gamma)`` for multiclass
    (mean over non-ignored pixels; ``alpha`` a scalar or one per class),
    ``sigmoid_focal_loss(alpha, gamma)`` otherwise (mean over valid elements;
    ``alpha`` a scalar). ``weight``, ``classes`` and ``smooth`` apply to the
    Dice term; smoothed targets t enter FL as -sum_c alpha_c t_c (1 - p_c)^gamma log p_c.

    Peers: MONAI's ``DiceFocalLoss`` averages its focal term over classes x
    pixels: its softmax focal term is FL / C.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        lambda_dice: weight of the Dice term (>= 0).
        lambda_focal: weight of the focal term (>= 0).
        alpha: focal alpha: a scalar in [0, 1], one per class (multiclass), or None.
        gamma: focal exponent (>= 0).
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array; None: equal. Which terms they
            weigh: above.
        reduction: ``"mean"`` or ``"sum"``, applied to each term before they are added (``"none"`` raises:
            the region term is per class, the pixel-wise term per pixel).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t of both terms becomes t (1 - s) + s / K, K the
            softmax's classes (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out (MONAI's
            ``DiceCELoss`` smooths its cross entropy only).
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        A 0-d array in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.dice_focal_loss(x, y)), 4)
        0.0328

    References:
        Zhu et al., AnatomyNet, 2019. https://arxiv.org/abs/1808.05238
    """
    fn = "dice_focal_loss"
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    opts, (lambda_dice, lambda_focal, gamma) = _check(fn, options, lambda_dice=lambda_dice, lambda_focal=lambda_focal,
                                                      gamma=gamma)
    scalar = alpha is None or checks.is_real_scalar(alpha)
    if mode != "multiclass" and not scalar:
        raise ValueError(f"{fn}: alpha must be a scalar or None with mode={mode!r}, got {alpha!r}")
    if scalar and alpha is not None:
        alpha = checks.check_in_unit_interval(fn, "alpha", alpha)

    def focal(px: PixelInputs) -> Array:
        seg, log_p, s = px.seg, px.log_p, px.s
        if seg.mode != "multiclass":
            loss, _ = sigmoid_focal(seg.x, seg.dense.target, alpha=alpha, gamma=gamma,  # type: ignore[arg-type]
                                    from_logits=seg.from_logits, xp=seg.xp)
            return _pixel_sum(seg, loss)
        xp, a = seg.xp, focal_alpha(seg, alpha)
        loss = softmax_focal(seg, a, gamma, log_p)
        if not checks.is_zero(s) and log_p is not None:  # linear in t: (1 - s) FL(onehot) + s FL(1/C)
            uniform = -focal_modulation(1 - xp.exp(log_p), gamma, xp=xp) * log_p
            uniform = xp.mean(uniform if a is None else along_class_axis(a, seg) * uniform, axis=seg.axis)
            loss = (1 - s) * loss + s * masked(seg.target.valid, uniform, xp=xp)
        return _pixel_sum(seg, loss)

    # softmax over labels (gamma 0 or >= 1): the focal term inside the fused statistics; ``focal`` elsewhere,
    # and for a traced gamma (a swept hyper-parameter), since the fused kernel's form depends on its value
    fused_focal = FusedPixel(lambda seg, w: focal_alpha(seg, alpha), gamma=gamma) if isinstance(gamma, float) else None
    r = region(fn, y_pred, y_true, opts, extra=focal, need_log_p=True, pixel=fused_focal)
    return returned(r.seg, lambda_dice * _region_term(r, 1 - dice_index(r)) + lambda_focal * _pixel_mean(r))


def _one_vs_rest_bce(seg: Segmentation, beta: float, log_p: Array, s: float) -> Array:
    """Per pixel (labels) or element (dense), -[beta t log p + (1 - beta)(1 - t) log(1 - p)] with softmax p.

    Labels smoothed by ``s`` (t = (1 - s) onehot + b, b = s / C), summed over classes:
    -[(1 - s)(beta log p_y - (1 - beta) log q_y) + beta b sum log p + (1 - beta)(1 - b) sum log q].
    """
    xp, target = seg.xp, seg.target
    p = xp.exp(log_p) if seg.from_logits else seg.x
    log_q = clamped_log(1 - p, xp=xp)
    if isinstance(target, Dense):
        t = target.target
        return -(beta * t * log_p + (1 - beta) * (1 - t) * log_q)
    at = beta * at_label(seg, target, log_p) - (1 - beta) * at_label(seg, target, log_q)
    if not s:
        return -masked(target.valid, at + (1 - beta) * xp.sum(log_q, axis=seg.axis), xp=xp)
    b = s / seg.num_classes
    rest = beta * b * xp.sum(log_p, axis=seg.axis) + (1 - beta) * (1 - b) * xp.sum(log_q, axis=seg.axis)
    return -masked(target.valid, (1 - s) * at + rest, xp=xp)


def combo_loss(
    y_pred: Array, y_true: Array, /, *, alpha: float = 0.5, beta: float = 0.5,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Combo loss (Taghanaki et al. 2019): weighted cross entropy plus Dice.

    L = alpha * L_wce + (1 - alpha) * dice_loss,
    L_wce = -mean[beta t log p + (1 - beta)(1 - t) log(1 - p)]

    ``alpha`` weighs the cross entropy against Dice; ``beta`` > 0.5 punishes
    false negatives more than false positives. The mean runs over valid
    elements (pixels x channels; multiclass: one-vs-rest on the softmax
    probabilities). ``weight``, ``classes`` and ``smooth`` apply to the Dice
    term. The paper writes ``- (1 - alpha) * Dice``: this minus the
    constant ``1 - alpha``, the same gradients.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        alpha: weight of the cross entropy against Dice, in [0, 1].
        beta: weight of false negatives in the cross entropy, in [0, 1].
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array; None: equal. Which terms they
            weigh: above.
        reduction: ``"mean"`` or ``"sum"``, applied to each term before they are added (``"none"`` raises:
            the region term is per class, the pixel-wise term per pixel).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t of both terms becomes t (1 - s) + s / K, K the
            softmax's classes (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out (MONAI's
            ``DiceCELoss`` smooths its cross entropy only).
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        A 0-d array in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.combo_loss(x, y)), 4)
        0.0247

    References:
        Taghanaki et al., Combo loss, 2019. https://arxiv.org/abs/1805.02798
    """
    fn = "combo_loss"
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    opts, _ = _check(fn, options)
    alpha = checks.check_in_unit_interval(fn, "alpha", alpha)
    beta = checks.check_in_unit_interval(fn, "beta", beta)

    def wce(px: PixelInputs) -> Array:
        seg = px.seg
        if px.log_p is None:
            return _pixel_sum(seg, balanced_bce(seg.x, seg.dense.target, beta, from_logits=seg.from_logits, xp=seg.xp))
        # a label's per-pixel sum stands for its C one-vs-rest elements
        per = 1 if isinstance(seg.target, Dense) else seg.num_classes
        return _pixel_sum(seg, _one_vs_rest_bce(seg, beta, px.log_p, px.s), per=per)

    r = region(fn, y_pred, y_true, opts, extra=wce, need_log_p=True)
    return returned(r.seg, alpha * _pixel_mean(r) + (1 - alpha) * _region_term(r, 1 - dice_index(r)))


def bce_jaccard_loss(
    y_pred: Array, y_true: Array, /, *, alpha: float = 0.5,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Cross entropy plus log-Jaccard (Iglovikov et al. 2018, TernausNet).

    L = alpha * BCE + (1 - alpha) * (-log J)

    -log J is ``jaccard_loss(log_loss=True)`` per class, reduced over classes.
    BCE is ``binary_cross_entropy`` (mean over valid elements) in the sigmoid
    modes and ``cross_entropy`` (mean over non-ignored pixels) for
    multiclass. ``weight``, ``classes`` and ``smooth`` apply to the Jaccard
    term.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        alpha: weight of the cross entropy against -log Jaccard, in [0, 1].
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array; None: equal. Which terms they
            weigh: above.
        reduction: ``"mean"`` or ``"sum"``, applied to each term before they are added (``"none"`` raises:
            the region term is per class, the pixel-wise term per pixel).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t of both terms becomes t (1 - s) + s / K, K the
            softmax's classes (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out (MONAI's
            ``DiceCELoss`` smooths its cross entropy only).
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        A 0-d array in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.bce_jaccard_loss(x, y)), 4)
        0.0494

    References:
        Iglovikov et al., TernausNetV2, 2018. https://arxiv.org/abs/1806.00844
    """
    fn = "bce_jaccard_loss"
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    opts, _ = _check(fn, options)
    alpha = checks.check_in_unit_interval(fn, "alpha", alpha)

    def ce(px: PixelInputs) -> Array:
        seg = px.seg
        if seg.mode == "multiclass":
            loss, den, _ = cross_entropy_terms(seg, None, px.s, px.log_p)
            return _pixel_sum(seg, loss, den)
        return _pixel_sum(seg, bce(seg.x, seg.dense.target, from_logits=seg.from_logits, xp=seg.xp))

    r = region(fn, y_pred, y_true, opts, extra=ce, need_log_p=True)
    jac = _region_term(r, neg_log(jaccard_index(r), r.opts["eps"], xp=r.xp))
    return returned(r.seg, alpha * _pixel_mean(r) + (1 - alpha) * jac)
