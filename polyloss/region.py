"""Region (overlap) losses: soft confusion statistics and the losses built on them.

Every loss reduces the batch to soft statistics per class (``soft_confusion``:
TP, FP, FN, plus the count of valid pixels), lets ``all_reduce`` sum them
across devices, forms an overlap index per class and reduces over classes
with ``_reduce.reduce_classes``. Integer targets never become a float one-hot:
TP is the prediction gathered at each pixel's label and summed per label
(``_xp.class_sums``), FP and FN follow from the per-class sums of predictions
and labels. Compounds add a pixel-wise term from ``pixelwise``.

Shared options: ``mode`` ("binary", "multilabel", "multiclass"),
``class_axis`` (1 or -1), ``from_logits``, ``ignore_index`` (integer targets:
ignored pixels enter no sum), ``classes`` (indices scored), ``per_image``,
``smooth`` (added to numerator and denominator of every index), ``eps``
(lower clamp of every denominator), ``weight`` (one per channel, shape
``(C,)``), ``reduction``, ``all_reduce`` and ``soft_label``. A class empty in
both target and prediction scores index 1 (loss 0) whatever ``smooth``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple, cast

from . import _checks as checks
from ._reduce import as_float, class_weights, promote, reduce_classes, restore, safe_divide
from ._xp import (
    Array,
    array_namespace,
    clamped_log,
    class_sums,
    clip,
    device,
    log_softmax,
    sigmoid,
    softmax,
    stop_gradient,
    take_along_axis,
)
from .pixelwise import (
    balanced_binary_cross_entropy,
    binary_cross_entropy,
    cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

__all__ = [
    "bce_jaccard_loss",
    "combo_loss",
    "dice_cross_entropy_loss",
    "dice_focal_loss",
    "dice_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "jaccard_loss",
    "log_cosh_dice_loss",
    "mcc_loss",
    "soft_confusion",
    "tversky_loss",
]

MODES = ("binary", "multilabel", "multiclass")
WEIGHT_TYPES = ("square", "simple", "uniform")
Weight = Sequence[float] | Array | None
AllReduce = Callable[[Array], Array] | None


# --------------------------------------------------------------------------- #
# Inputs and statistics
# --------------------------------------------------------------------------- #


class _Inputs(NamedTuple):
    """Validated inputs of a region loss, laid out as (N, C, M) or (N, M, C)."""

    x: Array  # y_pred in the compute dtype, original shape
    p: Array  # probabilities, 3-D layout
    axis: int  # class axis of the 3-D layout: 1 or 2
    # Exactly one of labels / t is set, the other is None (typed Array: mypy cannot see the invariant).
    labels: Array  # multiclass integer targets (N, M), ignored ones replaced by 0
    t: Array  # floating targets, 3-D layout, ignored ones zeroed
    valid: Array | None  # mask of non-ignored entries: (N, M) for labels, 3-D for t
    num_classes: int
    mode: str
    dtype: Any  # the dtype to return
    xp: ModuleType


def _prepare(
    fn: str, y_pred: Array, y_true: Array, *, mode: str, class_axis: int, from_logits: bool,
    ignore_index: int | None,
) -> _Inputs:
    xp = array_namespace(y_pred, y_true)
    checks.check_option(fn, "mode", mode, MODES)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    x = promote(y_pred, xp=xp)
    n = y_pred.shape[0] if y_pred.ndim else 1
    if mode == "binary":
        if y_pred.ndim < 1:
            raise ValueError(f"{fn}: y_pred must have a batch axis, got shape {tuple(y_pred.shape)}")
        axis, c, layout = 1, 1, (n, 1, -1)
    else:
        if y_pred.ndim < 2:
            raise ValueError(f"{fn}: y_pred must have shape (N, C, ...) or (N, ..., C), got {tuple(y_pred.shape)}")
        cax = checks.normalize_axis(fn, "class_axis", class_axis, y_pred.ndim)
        if cax not in (1, y_pred.ndim - 1):
            raise ValueError(f"{fn}: class_axis must be 1 or -1, got {class_axis!r}")
        c = y_pred.shape[cax]
        axis, layout = (1, (n, c, -1)) if cax == 1 else (2, (n, -1, c))
    if mode == "multiclass" and c < 2:
        raise ValueError(
            f"{fn}: mode='multiclass' (softmax) needs at least 2 classes along class_axis {class_axis}, got {c}; "
            "use mode='binary' for one channel"
        )
    integer = xp.isdtype(y_true.dtype, "integral")
    if mode != "multiclass" and not (integer or y_true.dtype == xp.bool or xp.isdtype(y_true.dtype, "real floating")):
        raise TypeError(f"{fn}: y_true must be floating, integer or bool, got dtype {y_true.dtype}")
    if mode == "multiclass":
        integer = checks.is_integer_target(fn, y_true, xp=xp)
    checks.check_ignore_index(fn, ignore_index, integer)
    if mode == "multiclass":
        p = softmax(x, axis=cax, xp=xp) if from_logits else x
    else:
        p = sigmoid(x, xp=xp) if from_logits else x
    p = xp.reshape(p, layout)
    labels = t = valid = None
    if mode == "multiclass" and integer:
        checks.check_index_target_shape(fn, y_pred, y_true, cax)
        labels = xp.reshape(y_true, (n, -1))
        if ignore_index is not None:
            valid = labels != ignore_index
            labels = xp.where(valid, labels, 0)
        checks.check_labels(fn, labels, c, ignore_index, xp=xp)
    else:
        checks.check_same_shape(fn, y_pred, y_true)
        t = xp.reshape(y_true, layout)
        if integer and ignore_index is not None:
            valid = t != ignore_index
            t = xp.where(valid, t, 0)
        if integer:
            checks.check_labels(fn, t, 2, ignore_index, xp=xp)
        t = as_float(t, p, xp=xp)
    return _Inputs(x, p, axis, labels, t, valid, c, mode, y_pred.dtype, xp)


class _Stats(NamedTuple):
    """Soft statistics per (sample,) class after ``all_reduce``."""

    tp: Array
    fp: Array
    fn: Array
    n: Array  # valid pixels (elements of the channel) per (sample,) class
    extra: Array  # reduced extra sums (a compound's pixel-wise term); None for a plain region loss


def _statistics(
    fn: str, inp: _Inputs, *, per_image: bool, soft_label: bool, all_reduce: AllReduce, squared: bool = False,
    extra: Array | None = None,
) -> _Stats:
    """TP, FP, FN and the valid count for every channel; ``squared`` takes the V-Net sums of squares."""
    xp, p = inp.xp, inp.p
    if all_reduce is not None:
        if not callable(all_reduce):
            raise TypeError(f"{fn}: all_reduce must be a callable or None, got {all_reduce!r}")
        if per_image:
            raise ValueError(
                f"{fn}: all_reduce needs per_image=False (per-image statistics belong to one device's samples; "
                "reduce the per-image losses instead)"
            )
    pix = 3 - inp.axis  # the pixel axis of the 3-D layout
    m = p.shape[pix]
    if inp.labels is not None:
        psum, tp, tsum, n = _label_sums(inp, per_image=per_image)
        if squared:
            psum = xp.sum(_mask(inp, p * p), axis=pix)
            if not per_image:
                psum = xp.sum(psum, axis=0)
    else:
        t = inp.t
        pm = _mask(inp, p)
        tp = xp.sum(pm * t, axis=pix)
        psum = xp.sum(pm * pm if squared else pm, axis=pix)
        tsum = xp.sum(t * t if squared else t, axis=pix)
        if soft_label and not squared:
            tp = (psum + tsum - xp.sum(xp.abs(pm - t), axis=pix)) / 2
        if inp.valid is None:
            n = xp.full(tp.shape, float(m), dtype=p.dtype, device=device(p))
        else:
            n = xp.sum(xp.astype(inp.valid, p.dtype), axis=pix)
        if not per_image:
            tp, psum, tsum, n = (xp.sum(s, axis=0) for s in (tp, psum, tsum, n))
    stats = xp.stack([tp, psum - tp, tsum - tp, n])
    if all_reduce is not None:
        if extra is None:
            stats = all_reduce(stats)
        else:
            flat = all_reduce(xp.concat([xp.reshape(stats, (-1,)), extra]))
            size = 4 * tp.shape[-1]
            stats, extra = xp.reshape(flat[:size], stats.shape), flat[size:]
    tp, fp, fn = stats[0, ...], stats[1, ...], stats[2, ...]
    if not squared:  # rounding may leave FP, FN a hair below 0; squared ones may be negative by design
        fp, fn = clip(fp, 0, None, xp=xp), clip(fn, 0, None, xp=xp)
    return _Stats(tp, fp, fn, stats[3, ...], extra)


def _mask(inp: _Inputs, v: Array) -> Array:
    """``v`` (3-D layout) with ignored entries zeroed."""
    if inp.valid is None:
        return v
    valid = inp.valid if inp.labels is None else inp.xp.expand_dims(inp.valid, axis=inp.axis)
    return inp.xp.where(valid, v, 0)


def _label_sums(inp: _Inputs, *, per_image: bool) -> tuple[Array, Array, Array, Array]:
    """Sums of p, TP, label counts and valid counts per (sample,) class for integer labels (``_xp.class_sums``)."""
    xp = inp.xp
    psum, tp, count = class_sums(inp.p, inp.labels, inp.valid, axis=inp.axis, xp=xp)
    if not per_image:
        psum, tp, count = xp.sum(psum, axis=0), xp.sum(tp, axis=0), xp.sum(count, axis=0)
    n = xp.broadcast_to(xp.sum(count, axis=-1, keepdims=True), count.shape)
    return psum, tp, count, n


def _select(fn: str, st: _Stats, classes: Sequence[int] | None, num_classes: int, mode: str, *, xp: ModuleType
            ) -> tuple[_Stats, Array | None]:
    """Statistics of the scored classes, and their indices (None for all)."""
    if classes is None:
        return st, None
    if mode == "binary":
        raise ValueError(f"{fn}: classes applies to mode 'multiclass' or 'multilabel', got mode='binary'")
    idx = xp.asarray(checks.check_class_subset(fn, classes, num_classes), device=device(st.tp))
    tp, fp, fn_, n = (xp.take(s, idx, axis=-1) for s in st[:4])
    return _Stats(tp, fp, fn_, n, st.extra), idx


def _weights(fn: str, weight: Weight, num_classes: int, idx: Array | None, like: Array, *, xp: ModuleType
             ) -> Array | None:
    if weight is None:
        return None
    w = class_weights(fn, weight, num_classes, like, xp=xp)
    return w if idx is None else xp.take(w, idx, axis=0)


def _check_common(fn: str, smooth: float, eps: float, reduction: str) -> None:
    checks.check_nonnegative(fn, "smooth", smooth)
    checks.check_nonnegative(fn, "eps", eps)
    checks.check_reduction(fn, reduction)


class _Region(NamedTuple):
    """Statistics of the scored classes and everything a loss needs to finish."""

    st: _Stats
    weight: Array | None
    inp: _Inputs
    full: _Stats  # statistics of every channel (compound denominators)


def _region(
    fn: str, y_pred: Array, y_true: Array, *, mode: str, class_axis: int, from_logits: bool,
    ignore_index: int | None, classes: Sequence[int] | None, per_image: bool, weight: Weight, soft_label: bool,
    all_reduce: AllReduce, squared: bool = False, extra: Callable[[_Inputs], Array] | None = None,
) -> _Region:
    inp = _prepare(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                   ignore_index=ignore_index)
    full = _statistics(fn, inp, per_image=per_image, soft_label=soft_label, all_reduce=all_reduce,
                       squared=squared, extra=None if extra is None else extra(inp))
    st, idx = _select(fn, full, classes, inp.num_classes, mode, xp=inp.xp)
    return _Region(st, _weights(fn, weight, inp.num_classes, idx, st.tp, xp=inp.xp), inp, full)


def _index(num: Array, den: Array, empty: Array, *, smooth: float, eps: float, xp: ModuleType) -> Array:
    """``(num + s) / max(den + s, eps)``, exactly 1 (zero gradient) where ``empty``."""
    den = xp.where(empty, 1, clip(den + smooth, eps, None, xp=xp))
    return xp.where(empty, 1, (num + smooth) / den)


def _empty(st: _Stats) -> Array:
    return (st.tp + st.fp + st.fn) == 0


def _pow(base: Array, gamma: float, *, xp: ModuleType) -> Array:
    """``base ** gamma`` for ``base >= 0``: 0 at 0, finite gradients for ``gamma < 1``."""
    if gamma == 1:
        return base
    tiny = xp.finfo(base.dtype).smallest_normal
    return xp.where(base > 0, clip(base, tiny, None, xp=xp) ** gamma, 0)


def _neg_log(index: Array, eps: float, *, xp: ModuleType) -> Array:
    """``-log(max(index, eps))``, finite at 0 (smp's log_loss)."""
    return -clamped_log(clip(index, eps, None, xp=xp), xp=xp)


def _dice_index(st: _Stats, smooth: float, eps: float, *, xp: ModuleType) -> Array:
    return _index(2 * st.tp, 2 * st.tp + st.fp + st.fn, _empty(st), smooth=smooth, eps=eps, xp=xp)


def _jaccard_index(st: _Stats, smooth: float, eps: float, *, xp: ModuleType) -> Array:
    return _index(st.tp, st.tp + st.fp + st.fn, _empty(st), smooth=smooth, eps=eps, xp=xp)


def _tversky_index(st: _Stats, alpha: float, beta: float, smooth: float, eps: float, *, xp: ModuleType) -> Array:
    return _index(st.tp, st.tp + alpha * st.fp + beta * st.fn, _empty(st), smooth=smooth, eps=eps, xp=xp)


def _finish(r: _Region, loss: Array, reduction: str) -> Array:
    xp = r.inp.xp
    return restore(reduce_classes(loss, weight=r.weight, reduction=reduction, xp=xp), r.inp.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Public: statistics and the overlap losses
# --------------------------------------------------------------------------- #


def soft_confusion(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> tuple[Array, Array, Array]:
    r"""Soft TP, FP and FN per class: the statistics every region loss is built on.

    TP_c = sum p_c t_c,  FP_c = sum p_c (1 - t_c),  FN_c = sum (1 - p_c) t_c

    summed over the batch and space (shape ``(C,)``) or over space per sample
    (``per_image=True``, shape ``(N, C)``), C being the number of ``classes``.
    ``y_pred``: (N, C, *spatial) for ``class_axis=1`` or (N, *spatial, C) for
    ``-1``; ``mode="binary"`` takes any (N, ...) as one channel. ``y_true``:
    integer labels without the class axis (multiclass) or floating / integer /
    bool targets of ``y_pred``'s shape. Ignored pixels enter no sum.
    ``soft_label=True`` takes TP = (sum p + sum t - sum |p - t|) / 2 (Wang &
    Blaschko 2023), equal for hard targets. With ``all_reduce`` the statistics
    returned are the reduced (global) ones. Half-precision inputs give float32
    statistics (counts overflow float16).
    """
    fn = "soft_confusion"
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=None, soft_label=soft_label,
                all_reduce=all_reduce)
    return r.st.tp, r.st.fp, r.st.fn


def dice_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    log_loss: bool = False,
    squared: bool = False,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Soft Dice loss (Milletari et al. 2016, V-Net), per class.

    D_c = (2 TP_c + s) / max(2 TP_c + FP_c + FN_c + s, eps);  L_c = 1 - D_c  (``log_loss``: -log D_c)

    ``squared``: the V-Net denominator sum p^2 + sum t^2 + s. Reduced over
    classes by ``reduction`` (weighted mean by default); ``"none"`` gives
    (C,) or (N, C) with ``per_image``. A class absent from target and
    prediction scores 0.

    Peers: ``smp.losses.DiceLoss(mode, smooth=s)`` equals ``smooth=2s`` here
    (smp zeroes classes absent from the target); ``monai.losses.DiceLoss``
    (``smooth_nr=smooth_dr=s``, ``batch=True``) equals ``smooth=s``, its
    ``batch=False`` is ``per_image=True``, ``squared_pred`` is ``squared``,
    and its ``weight`` w gives our weighted mean times mean(w);
    ``kornia.losses.dice_loss`` is ``per_image=True`` with eps added to the
    denominator.
    """
    fn = "dice_loss"
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce, squared=squared)
    xp = r.inp.xp
    index = _dice_index(r.st, smooth, eps, xp=xp)
    return _finish(r, _neg_log(index, eps, xp=xp) if log_loss else 1 - index, reduction)


def jaccard_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    log_loss: bool = False,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Soft Jaccard (IoU) loss, per class.

    J_c = (TP_c + s) / max(TP_c + FP_c + FN_c + s, eps);  L_c = 1 - J_c  (``log_loss``: -log J_c)

    Options as in ``dice_loss``.

    Peers: ``smp.losses.JaccardLoss(mode, smooth=s)`` equals this with the
    same ``s`` (smp zeroes classes absent from the target);
    ``monai.losses.DiceLoss(jaccard=True)`` with smooth s is ``smooth=s/2``.
    """
    fn = "jaccard_loss"
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp = r.inp.xp
    index = _jaccard_index(r.st, smooth, eps, xp=xp)
    return _finish(r, _neg_log(index, eps, xp=xp) if log_loss else 1 - index, reduction)


def _check_tversky(fn: str, alpha: float, beta: float, gamma: float) -> None:
    checks.check_nonnegative(fn, "alpha", alpha)
    checks.check_nonnegative(fn, "beta", beta)
    checks.check_nonnegative(fn, "gamma", gamma)


def tversky_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 1.0,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Tversky loss (Salehi et al. 2017), focal when ``gamma != 1``.

    TI_c = (TP_c + s) / max(TP_c + alpha FP_c + beta FN_c + s, eps);  L_c = (1 - TI_c)^gamma

    ``alpha`` weighs false positives, ``beta`` false negatives; alpha = beta
    = 0.5 is Dice, 1 and 1 Jaccard. The exponent applies per class, then
    classes are reduced. Other options as in ``dice_loss``.

    Peers: ``smp.losses.TverskyLoss(mode, alpha, beta, smooth=s)`` equals this
    at ``gamma=1`` (smp raises the class mean to gamma instead, and zeroes
    classes absent from the target); ``monai.losses.TverskyLoss`` (alpha on
    FP as well) with ``smooth_nr=smooth_dr=s`` equals ``smooth=s``.
    """
    fn = "tversky_loss"
    _check_tversky(fn, alpha, beta, gamma)
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp = r.inp.xp
    index = _tversky_index(r.st, alpha, beta, smooth, eps, xp=xp)
    return _finish(r, _pow(1 - index, gamma, xp=xp), reduction)


def focal_tversky_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 0.75,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Focal Tversky loss (Abraham & Khan 2019).

    L_c = (1 - TI_c)^gamma, TI_c as in ``tversky_loss``

    The paper writes the exponent as 1/gamma with gamma = 4/3 and weighs FN
    by 0.7: the defaults here (``gamma=0.75``, ``alpha=0.3`` on FP,
    ``beta=0.7`` on FN). Same as ``tversky_loss`` with these defaults.
    """
    fn = "focal_tversky_loss"
    _check_tversky(fn, alpha, beta, gamma)
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp = r.inp.xp
    index = _tversky_index(r.st, alpha, beta, smooth, eps, xp=xp)
    return _finish(r, _pow(1 - index, gamma, xp=xp), reduction)


def log_cosh_dice_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Log-cosh Dice loss (Jadon 2020), per class.

    L_c = log(cosh(1 - D_c)), D_c as in ``dice_loss``

    Applied per class, then reduced (the paper has one class). Options as in
    ``dice_loss``.
    """
    fn = "log_cosh_dice_loss"
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp = r.inp.xp
    d = 1 - _dice_index(r.st, smooth, eps, xp=xp)
    return _finish(r, xp.log(xp.cosh(d)), reduction)


def mcc_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Soft Matthews correlation loss (Abhishek & Hamarneh 2021), one-vs-rest per class.

    MCC_c = (TP TN - FP FN) / max(sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), eps);  L_c = 1 - MCC_c

    TN = valid pixels - TP - FP - FN; ``smooth`` is added to each of TP, TN,
    FP, FN. Where prediction equals target (FP = FN = 0), MCC is 1.

    Peers: ``smp.losses.MCCLoss(eps=e)`` takes probabilities and one channel:
    it equals ``mode="binary", from_logits=False, smooth=e``.
    """
    fn = "mcc_loss"
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp, st = r.inp.xp, r.st
    tn = clip(st.n - st.tp - st.fp - st.fn, 0, None, xp=xp) + smooth
    tp, fp, fn_ = st.tp + smooth, st.fp + smooth, st.fn + smooth
    tiny = xp.finfo(tp.dtype).smallest_normal
    den = (xp.sqrt(clip((tp + fp) * (tp + fn_), tiny, None, xp=xp))
           * xp.sqrt(clip((tn + fp) * (tn + fn_), tiny, None, xp=xp)))
    perfect = (st.fp + st.fn) == 0
    mcc = xp.where(perfect, 1, (tp * tn - fp * fn_) / xp.where(perfect, 1, clip(den, eps, None, xp=xp)))
    return _finish(r, 1 - mcc, reduction)


def generalized_dice_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    weight_type: str = "square",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Generalised Dice loss (Sudre et al. 2017): one value per sample or per batch.

    GD = (2 sum_c w_c TP_c + s) / max(sum_c w_c (2 TP_c + FP_c + FN_c) + s, eps);  L = 1 - GD

    w_c = 1 / G_c^2 (``"square"``), 1 / G_c (``"simple"``) or 1 (``"uniform"``)
    with G_c = sum t_c the target volume, treated as a constant; a class with
    G_c = 0 takes the largest finite weight of its sample (MONAI's rule).
    ``weight`` multiplies w_c. ``per_image=True`` gives one value per sample
    (``"none"``: shape (N,)), otherwise one for the batch (shape ()).

    Peers: ``monai.losses.GeneralizedDiceLoss(w_type, smooth_nr=s,
    smooth_dr=s)`` equals ``smooth=s``, its ``batch=False`` (default) being
    ``per_image=True`` and ``include_background=False`` ``classes=range(1, C)``.
    """
    fn = "generalized_dice_loss"
    checks.check_option(fn, "weight_type", weight_type, WEIGHT_TYPES)
    _check_common(fn, smooth, eps, reduction)
    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce)
    xp, st = r.inp.xp, r.st
    volume = stop_gradient(st.tp + st.fn, xp=xp)
    present = volume > 0
    if weight_type == "uniform":
        w = xp.ones_like(volume)
    else:
        inv = 1 / xp.where(present, volume, 1)
        w = xp.where(present, inv * inv if weight_type == "square" else inv, 0)
        w = xp.where(present, w, xp.max(w, axis=-1, keepdims=True))
    if r.weight is not None:
        w = w * r.weight
    num = 2 * xp.sum(w * st.tp, axis=-1)
    den = xp.sum(w * (2 * st.tp + st.fp + st.fn), axis=-1)
    loss = 1 - _index(num, den, den == 0, smooth=smooth, eps=eps, xp=xp)
    if reduction == "mean":
        loss = xp.mean(loss)
    elif reduction == "sum":
        loss = xp.sum(loss)
    return restore(loss, r.inp.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Compounds: an overlap term plus a pixel-wise term
# --------------------------------------------------------------------------- #


def _pixel_sum(inp: _Inputs, binary: Callable[..., Array], multiclass: Callable[..., Array]) -> Array:
    """The summed pixel-wise term, as a 1-element array (it joins the all-reduced statistics).

    ``binary(x, t)`` gives per-element losses (sigmoid modes; ignored entries
    are masked here); ``multiclass(x, y_true)`` gives the sum itself.
    """
    xp = inp.xp
    if inp.mode == "multiclass":
        total = multiclass(inp)
    else:
        layout_t = xp.reshape(inp.t, inp.x.shape)
        loss = binary(inp.x, layout_t)
        if inp.valid is not None:
            loss = xp.where(xp.reshape(inp.valid, inp.x.shape), loss, 0)
        total = xp.sum(loss)
    return xp.reshape(total, (1,))


def _pixel_mean(r: _Region, reduction: str, per: str, weight: Array | None = None) -> Array:
    """The pixel-wise term from its (reduced) sum: a mean over valid pixels or elements, or the sum.

    ``per="pixels"``: divide by the valid pixel count (weighted by the class
    weight of each pixel's label when ``weight`` is given, as torch's CE);
    ``"elements"``: by the valid element count of every channel.
    """
    xp, full = r.inp.xp, r.full
    total = full.extra[0]
    if reduction == "sum":
        return total
    if per == "elements":
        den = xp.sum(full.n)
    elif weight is not None:
        den = xp.sum(stop_gradient(full.tp + full.fn, xp=xp) * weight)
    else:
        den = xp.sum(full.n[..., 0])
    return safe_divide(total, den, xp=xp)


def _check_compound(fn: str, reduction: str, **lambdas: float) -> None:
    if reduction == "none":
        raise ValueError(
            f"{fn}: reduction must be 'mean' or 'sum' (the region term is per class, the pixel-wise term per "
            "pixel), got 'none'; call the two losses separately for unreduced values"
        )
    for name, value in lambdas.items():
        checks.check_nonnegative(fn, name, value)


def _full_weight(fn: str, weight: Weight, inp: _Inputs) -> Array | None:
    return None if weight is None else class_weights(fn, weight, inp.num_classes, inp.p, xp=inp.xp)


def _element_class_weight(w: Array | None, inp: _Inputs) -> Array | None:
    """Class weights shaped to broadcast along ``y_pred``'s class axis (every element for binary)."""
    if w is None:
        return None
    shape = [1] * inp.x.ndim
    if inp.mode != "binary":
        shape[1 if inp.axis == 1 else -1] = inp.num_classes
    return inp.xp.reshape(w, tuple(shape))


def dice_cross_entropy_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    lambda_dice: float = 1.0,
    lambda_ce: float = 1.0,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Dice + cross entropy ("DiceCE", nnU-Net's default).

    L = lambda_dice * dice_loss + lambda_ce * CE

    CE is ``cross_entropy`` (multiclass, torch's weighted mean over non-ignored
    pixels) or ``binary_cross_entropy`` (sigmoid modes, mean over valid
    elements), always over every class; ``classes`` and ``smooth`` apply to
    the Dice term only; ``weight`` to both. ``reduction`` is ``"mean"`` or
    ``"sum"`` (applied to each term). With ``all_reduce``, the CE sum and its
    count are reduced with the statistics, so both terms are global.

    Peers: ``monai.losses.DiceCELoss(softmax=True, to_onehot_y=True)``
    equals ``per_image=True, smooth=1e-5`` (its ``smooth_nr = smooth_dr``);
    with MONAI ``weight`` w, the Dice term differs by the factor mean(w).
    """
    fn = "dice_cross_entropy_loss"
    _check_compound(fn, reduction, lambda_dice=lambda_dice, lambda_ce=lambda_ce)
    _check_common(fn, smooth, eps, reduction)

    def ce(inp: _Inputs) -> Array:
        w = _full_weight(fn, weight, inp)
        return _pixel_sum(
            inp,
            lambda x, t: binary_cross_entropy(x, t, from_logits=from_logits, weight=_element_class_weight(w, inp),
                                              reduction="none"),
            lambda inp: cross_entropy(inp.x, y_true, class_axis=class_axis, from_logits=from_logits, weight=w,
                                      ignore_index=ignore_index, reduction="sum"),
        )

    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce, extra=ce)
    xp = r.inp.xp
    dice = reduce_classes(1 - _dice_index(r.st, smooth, eps, xp=xp), weight=r.weight, reduction=reduction, xp=xp)
    per = "pixels" if mode == "multiclass" else "elements"
    term = _pixel_mean(r, reduction, per, _full_weight(fn, weight, r.inp) if r.inp.labels is not None else None)
    return restore(lambda_dice * dice + lambda_ce * term, r.inp.dtype, xp=xp)


def dice_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    lambda_dice: float = 1.0,
    lambda_focal: float = 1.0,
    alpha: float | Sequence[float] | None = None,
    gamma: float = 2.0,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Dice + focal loss (Zhu et al. 2019).

    L = lambda_dice * dice_loss + lambda_focal * FL

    FL follows ``mode``: ``softmax_focal_loss(alpha, gamma)`` for multiclass
    (mean over non-ignored pixels; ``alpha`` a scalar or one per class),
    ``sigmoid_focal_loss(alpha, gamma)`` otherwise (mean over valid elements;
    ``alpha`` a scalar). ``weight``, ``classes`` and ``smooth`` apply to the
    Dice term. ``reduction``: ``"mean"`` or ``"sum"``, applied to each term.

    Peers: MONAI's ``DiceFocalLoss`` averages its focal term over classes x
    pixels: its softmax focal term is FL / C.
    """
    fn = "dice_focal_loss"
    _check_compound(fn, reduction, lambda_dice=lambda_dice, lambda_focal=lambda_focal)
    _check_common(fn, smooth, eps, reduction)
    if mode != "multiclass" and not (alpha is None or isinstance(alpha, int | float)):
        raise ValueError(f"{fn}: alpha must be a scalar or None with mode={mode!r}, got {alpha!r}")
    sigmoid_alpha = cast(float | None, alpha)  # used only in the sigmoid modes, where it was checked just above

    def focal(inp: _Inputs) -> Array:
        return _pixel_sum(
            inp,
            lambda x, t: sigmoid_focal_loss(x, t, alpha=sigmoid_alpha, gamma=gamma, from_logits=from_logits,
                                            reduction="none"),
            lambda inp: softmax_focal_loss(inp.x, y_true, alpha=alpha, gamma=gamma, class_axis=class_axis,
                                           from_logits=from_logits, ignore_index=ignore_index, reduction="sum"),
        )

    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce, extra=focal)
    xp = r.inp.xp
    dice = reduce_classes(1 - _dice_index(r.st, smooth, eps, xp=xp), weight=r.weight, reduction=reduction, xp=xp)
    term = _pixel_mean(r, reduction, "pixels" if mode == "multiclass" else "elements")
    return restore(lambda_dice * dice + lambda_focal * term, r.inp.dtype, xp=xp)


def _one_vs_rest_bce_sum(inp: _Inputs, beta: float, from_logits: bool) -> Array:
    """sum over valid pixels and classes of -[beta t log p + (1 - beta)(1 - t) log(1 - p)], softmax p."""
    xp = inp.xp
    axis = inp.axis
    x3 = xp.reshape(inp.x, inp.p.shape)
    log_p = log_softmax(x3, axis=axis, xp=xp) if from_logits else clamped_log(x3, xp=xp)
    log_q = clamped_log(1 - inp.p, xp=xp)
    if inp.labels is None:
        t = inp.t
        return -xp.sum(beta * t * log_p + (1 - beta) * (1 - t) * log_q)
    lab = xp.expand_dims(inp.labels, axis=axis)
    at_label = beta * take_along_axis(log_p, lab, axis=axis, xp=xp) - (1 - beta) * take_along_axis(
        log_q, lab, axis=axis, xp=xp)
    per_pixel = xp.squeeze(at_label, axis=axis) + (1 - beta) * xp.sum(log_q, axis=axis)
    if inp.valid is not None:
        per_pixel = xp.where(inp.valid, per_pixel, 0)
    return -xp.sum(per_pixel)


def combo_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    alpha: float = 0.5,
    beta: float = 0.5,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Combo loss (Taghanaki et al. 2019): weighted cross entropy plus Dice.

    L = alpha * L_wce + (1 - alpha) * dice_loss,
    L_wce = -mean[beta t log p + (1 - beta)(1 - t) log(1 - p)]

    ``alpha`` weighs the cross entropy against Dice; ``beta`` > 0.5 punishes
    false negatives more than false positives. The mean runs over valid
    elements (pixels x channels; multiclass: one-vs-rest on the softmax
    probabilities). The paper writes ``- (1 - alpha) * Dice``: this minus the
    constant ``1 - alpha``, the same gradients. ``reduction``: ``"mean"`` or
    ``"sum"``, applied to each term.
    """
    fn = "combo_loss"
    _check_compound(fn, reduction)
    checks.check_in_unit_interval(fn, "alpha", alpha)
    checks.check_in_unit_interval(fn, "beta", beta)
    _check_common(fn, smooth, eps, reduction)

    def wce(inp: _Inputs) -> Array:
        return _pixel_sum(
            inp,
            lambda x, t: balanced_binary_cross_entropy(x, t, beta=beta, from_logits=from_logits, reduction="none"),
            lambda inp: _one_vs_rest_bce_sum(inp, beta, from_logits),
        )

    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce, extra=wce)
    xp = r.inp.xp
    dice = reduce_classes(1 - _dice_index(r.st, smooth, eps, xp=xp), weight=r.weight, reduction=reduction, xp=xp)
    term = _pixel_mean(r, reduction, "elements")
    return restore(alpha * term + (1 - alpha) * dice, r.inp.dtype, xp=xp)


def bce_jaccard_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: str = "multiclass",
    alpha: float = 0.5,
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    smooth: float = 0.0,
    eps: float = 1e-7,
    weight: Weight = None,
    reduction: str = "mean",
    soft_label: bool = False,
    all_reduce: AllReduce = None,
) -> Array:
    r"""Cross entropy plus log-Jaccard (Iglovikov et al. 2018, TernausNet).

    L = alpha * BCE + (1 - alpha) * (-log J)

    -log J is ``jaccard_loss(log_loss=True)`` per class, reduced over classes.
    BCE is ``binary_cross_entropy`` (mean over valid elements) in the sigmoid
    modes and ``cross_entropy`` (mean over non-ignored pixels) for
    multiclass. ``weight``, ``classes`` and ``smooth`` apply to the Jaccard
    term. ``reduction``: ``"mean"`` or ``"sum"``, applied to each term.
    """
    fn = "bce_jaccard_loss"
    _check_compound(fn, reduction)
    checks.check_in_unit_interval(fn, "alpha", alpha)
    _check_common(fn, smooth, eps, reduction)

    def ce(inp: _Inputs) -> Array:
        return _pixel_sum(
            inp,
            lambda x, t: binary_cross_entropy(x, t, from_logits=from_logits, reduction="none"),
            lambda inp: cross_entropy(inp.x, y_true, class_axis=class_axis, from_logits=from_logits,
                                      ignore_index=ignore_index, reduction="sum"),
        )

    r = _region(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                ignore_index=ignore_index, classes=classes, per_image=per_image, weight=weight, soft_label=soft_label,
                all_reduce=all_reduce, extra=ce)
    xp = r.inp.xp
    jac = _neg_log(_jaccard_index(r.st, smooth, eps, xp=xp), eps, xp=xp)
    jac = reduce_classes(jac, weight=r.weight, reduction=reduction, xp=xp)
    term = _pixel_mean(r, reduction, "pixels" if mode == "multiclass" else "elements")
    return restore(alpha * term + (1 - alpha) * jac, r.inp.dtype, xp=xp)
