"""Region (overlap) losses: Dice, Jaccard, Tversky and their kin, built on soft confusion statistics.

Every loss here takes the shared region options as keyword-only parameters
(``mode``, ``class_axis``, ``from_logits``, ``ignore_index``, ``classes``,
``per_image``, ``smooth=1e-5``, ``eps=1e-7``, ``weight``, ``reduction``,
``soft_label``, ``label_smoothing``, ``all_reduce``; docs/conventions.md,
"Region options"), builds them into one ``_confusion.RegionOptions`` record
and hands it to ``_confusion.region``, which validates once.
A class empty in both target and prediction scores index 1 (loss 0)
whatever ``smooth``. The compounds (a region term plus a pixel-wise term)
live in ``compound``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .._backend import Array, clip, stop_gradient
from .._core import checks
from .._core.inputs import poisoned, returned
from .._core.reduce import reduce_loss
from .._core.typing import AllReduce, Mode, Reduction, Weight
from ._confusion import (
    RegionOptions,
    dice_index,
    finish,
    jaccard_index,
    neg_log,
    power,
    ratio,
    region,
    tversky_index,
)

__all__ = [
    "dice_loss",
    "focal_tversky_loss",
    "generalized_dice_loss",
    "jaccard_loss",
    "log_cosh_dice_loss",
    "mcc_loss",
    "soft_confusion",
    "tversky_loss",
]

WeightType = Literal["square", "simple", "uniform"]
WEIGHT_TYPES = ("square", "simple", "uniform")


def soft_confusion(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    classes: Sequence[int] | None = None,
    per_image: bool = False,
    soft_label: bool = False,
    label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> tuple[Array, Array, Array]:
    """Soft TP, FP and FN per class: the statistics every region loss is built on.

    TP_c = sum p_c t_c,  FP_c = sum p_c (1 - t_c),  FN_c = sum (1 - p_c) t_c

    summed over the batch and space (shape ``(C,)``) or over space per sample
    (``per_image=True``, shape ``(N, C)``), C being the number of ``classes``.
    ``y_pred``: (N, C, *spatial) for ``class_axis=1`` or (N, *spatial, C) for
    ``-1``; ``mode="binary"`` takes any (N, ...) as one channel. ``y_true``:
    integer labels without the class axis (multiclass) or floating / integer /
    bool targets of ``y_pred``'s shape. Ignored pixels enter no sum.
    ``soft_label=True`` takes TP = (sum p + sum t - sum |p - t|) / 2 (Wang &
    Blaschko 2023), equal for hard targets. ``label_smoothing`` s takes the
    statistics of t (1 - s) + s / K (K: the softmax's classes, 2 for a
    sigmoid). With ``all_reduce`` the statistics
    returned are the reduced (global) ones. Half-precision inputs give float32
    statistics (counts overflow float16).

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        ``(tp, fp, fn)``, each ``(C,)`` or ``(N, C)`` with ``per_image=True``, in ``y_pred``'s dtype
        (float32 for half precision).

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> tp, fp, fn = pl.soft_confusion(x, y)
        >>> tuple(round(float(v), 4) for v in tp)
        (0.9526, 0.982)

    References:
        Milletari et al., V-Net, 2016. https://arxiv.org/abs/1606.04797
    """
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, soft_label=soft_label,
                            label_smoothing=label_smoothing, all_reduce=all_reduce)
    r = region("soft_confusion", y_pred, y_true, options)
    return poisoned(r.st.tp, r.seg.poison), poisoned(r.st.fp, r.seg.poison), poisoned(r.st.fn, r.seg.poison)


def dice_loss(
    y_pred: Array, y_true: Array, /, *, log_loss: bool = False, squared: bool = False,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Soft Dice loss (Milletari et al. 2016, V-Net), per class.

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

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        log_loss: return -log(D_c) instead of 1 - D_c.
        squared: the V-Net denominator, sums of squares.
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.dice_loss(x, y)), 4)
        0.0327

    References:
        Milletari et al., V-Net, 2016. https://arxiv.org/abs/1606.04797
    """
    checks.check_flags("dice_loss", log_loss=log_loss, squared=squared)
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    r = region("dice_loss", y_pred, y_true, options, squared=squared)
    index = dice_index(r)
    return finish(r, neg_log(index, r.opts["eps"], xp=r.xp) if log_loss else 1 - index)


def jaccard_loss(
    y_pred: Array, y_true: Array, /, *, log_loss: bool = False,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Soft Jaccard (IoU) loss, per class.

    J_c = (TP_c + s) / max(TP_c + FP_c + FN_c + s, eps);  L_c = 1 - J_c  (``log_loss``: -log J_c)

    Options as in ``dice_loss``.

    Peers: ``smp.losses.JaccardLoss(mode, smooth=s)`` equals this with the
    same ``s`` (smp zeroes classes absent from the target);
    ``monai.losses.DiceLoss(jaccard=True)`` with smooth s is ``smooth=s/2``.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        log_loss: return -log(J_c) instead of 1 - J_c.
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.jaccard_loss(x, y)), 4)
        0.0634

    References:
        Rahman & Wang, Optimizing intersection-over-union in deep neural networks, 2016.
        https://doi.org/10.1007/978-3-319-50835-1_22
    """
    checks.check_flags("jaccard_loss", log_loss=log_loss)
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    r = region("jaccard_loss", y_pred, y_true, options)
    index = jaccard_index(r)
    return finish(r, neg_log(index, r.opts["eps"], xp=r.xp) if log_loss else 1 - index)


def _tversky(fn: str, y_pred: Array, y_true: Array, alpha: float, beta: float, gamma: float,
             options: RegionOptions) -> Array:
    """(1 - TI_c)^gamma per class, reduced: the body of both Tversky losses."""
    alpha = checks.check_nonnegative(fn, "alpha", alpha)
    beta = checks.check_nonnegative(fn, "beta", beta)
    gamma = checks.check_nonnegative(fn, "gamma", gamma)
    r = region(fn, y_pred, y_true, options)
    return finish(r, power(1 - tversky_index(r, alpha, beta), gamma, xp=r.xp))


def tversky_loss(
    y_pred: Array, y_true: Array, /, *, alpha: float = 0.5, beta: float = 0.5, gamma: float = 1.0,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Tversky loss (Salehi et al. 2017), focal when ``gamma != 1``.

    TI_c = (TP_c + s) / max(TP_c + alpha FP_c + beta FN_c + s, eps);  L_c = (1 - TI_c)^gamma

    ``alpha`` weighs false positives, ``beta`` false negatives; alpha = beta
    = 0.5 is Dice, 1 and 1 Jaccard. The exponent applies per class, then
    classes are reduced. Other options as in ``dice_loss``.

    Peers: ``smp.losses.TverskyLoss(mode, alpha, beta, smooth=s)`` equals this
    at ``gamma=1`` (smp raises the class mean to gamma instead, and zeroes
    classes absent from the target); ``monai.losses.TverskyLoss`` (alpha on
    FP as well) with ``smooth_nr=smooth_dr=s`` equals ``smooth=s``.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        gamma: exponent applied per class (>= 0).
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.tversky_loss(x, y, alpha=0.3, beta=0.7)), 4)
        0.0328

    References:
        Salehi et al., Tversky loss function for image segmentation, 2017. https://arxiv.org/abs/1706.05721
    """
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    return _tversky("tversky_loss", y_pred, y_true, alpha, beta, gamma, options)


def focal_tversky_loss(
    y_pred: Array, y_true: Array, /, *, alpha: float = 0.3, beta: float = 0.7, gamma: float = 0.75,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Focal Tversky loss (Abraham & Khan 2019).

    L_c = (1 - TI_c)^gamma, TI_c as in ``tversky_loss``

    The paper writes the exponent as 1/gamma with gamma = 4/3 and weighs FN
    by 0.7: the defaults here (``gamma=0.75``, ``alpha=0.3`` on FP,
    ``beta=0.7`` on FN). Same as ``tversky_loss`` with these defaults.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        gamma: focal exponent per class (>= 0), the paper's 1/gamma.
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.focal_tversky_loss(x, y)), 4)
        0.0767

    References:
        Abraham & Khan, A novel focal Tversky loss function, 2019. https://arxiv.org/abs/1810.07842
    """
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    return _tversky("focal_tversky_loss", y_pred, y_true, alpha, beta, gamma, options)


def log_cosh_dice_loss(
    y_pred: Array, y_true: Array, /, *,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Log-cosh Dice loss (Jadon 2020), per class.

    L_c = log(cosh(1 - D_c)), D_c as in ``dice_loss``

    Applied per class, then reduced (the paper has one class). Options as in
    ``dice_loss``.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.log_cosh_dice_loss(x, y)), 4)
        0.0005

    References:
        Jadon, A survey of loss functions for semantic segmentation, 2020. https://arxiv.org/abs/2006.14822
    """
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    r = region("log_cosh_dice_loss", y_pred, y_true, options)
    return finish(r, r.xp.log(r.xp.cosh(1 - dice_index(r))))


def mcc_loss(
    y_pred: Array, y_true: Array, /, *,
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None, smooth_all: bool = False,
) -> Array:
    """Soft Matthews correlation loss (Abhishek & Hamarneh 2021), one-vs-rest per class.

    MCC_c = (TP TN - FP FN) / max(sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), eps);  L_c = 1 - MCC_c

    TN = valid pixels - TP - FP - FN; ``smooth`` is added to TP and TN (and to
    FP and FN with ``smooth_all``). Where prediction equals target (FP = FN =
    0), MCC is 1; a class empty in target and prediction scores 1, as in the
    other region losses.

    Peers: ``smp.losses.MCCLoss(eps=e)`` takes probabilities and one channel:
    it equals ``mode="binary", from_logits=False, smooth=e, smooth_all=True``.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, of the mean over classes; None: equal.
        reduction: ``"mean"`` (over classes, weighted by ``weight``), ``"sum"`` or ``"none"`` (one value per
            class, or per sample and class with ``per_image``).
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.
        smooth_all: False (default): ``smooth`` on TP and TN only, so a class empty in target and prediction
            scores 1; True: on TP, TN, FP and FN as smp's ``MCCLoss`` (such a class then scores 0.5).

    Returns:
        0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
        ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.mcc_loss(x, y)), 4)
        0.065

    References:
        Abhishek & Hamarneh, Matthews correlation coefficient loss, 2021. https://arxiv.org/abs/2010.13454
    """
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    smooth_all = checks.check_flag("mcc_loss", "smooth_all", smooth_all)
    r = region("mcc_loss", y_pred, y_true, options)
    xp, st, smooth = r.xp, r.st, r.opts["smooth"]
    # smooth on TP and TN: an empty class (TP = FN = 0, FP -> 0) tends to MCC 1 as sqrt(s / (s + FP)), the rule of
    # the other region losses; on FP and FN too (smp) it tends to 1/2
    tn = clip(st.n - st.tp - st.fp - st.fn, 0, None, xp=xp) + smooth
    off = smooth if smooth_all else 0.0
    tp, fp, fn_ = st.tp + smooth, st.fp + off, st.fn + off
    tiny = xp.finfo(tp.dtype).smallest_normal
    den = (xp.sqrt(clip((tp + fp) * (tp + fn_), tiny, None, xp=xp))
           * xp.sqrt(clip((tn + fp) * (tn + fn_), tiny, None, xp=xp)))
    perfect = (st.fp + st.fn) == 0
    mcc = xp.where(perfect, 1, (tp * tn - fp * fn_) / xp.where(perfect, 1, clip(den, r.opts["eps"], None, xp=xp)))
    return finish(r, 1 - mcc)


def generalized_dice_loss(
    y_pred: Array, y_true: Array, /, *, weight_type: WeightType = "square",
    mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True, ignore_index: int | None = None,
    classes: Sequence[int] | None = None, per_image: bool = False, smooth: float = 1e-5, eps: float = 1e-7,
    weight: Weight = None, reduction: Reduction = "mean", soft_label: bool = True, label_smoothing: float = 0.0,
    all_reduce: AllReduce = None,
) -> Array:
    """Generalised Dice loss (Sudre et al. 2017): one value per sample or per batch.

    GD = (2 sum_c w_c TP_c + s) / max(sum_c w_c (2 TP_c + FP_c + FN_c) + s, eps);  L = 1 - GD

    w_c = 1 / G_c^2 (``"square"``), 1 / G_c (``"simple"``) or 1 (``"uniform"``)
    with G_c = sum t_c the target volume, treated as a constant; a class with
    G_c = 0 takes the largest finite weight of its sample (MONAI's rule).
    ``weight`` multiplies w_c. ``per_image=True`` gives one value per sample
    (``"none"``: shape (N,)), otherwise one for the batch (shape ()).

    Peers: ``monai.losses.GeneralizedDiceLoss(w_type, smooth_nr=s,
    smooth_dr=s)`` equals ``smooth=s``, its ``batch=False`` (default) being
    ``per_image=True`` and ``include_background=False`` ``classes=range(1, C)``.

    Args:
        y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
            ``(N, ...)`` in binary mode.
        y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes").
        weight_type: ``"square"`` (1/G^2), ``"simple"`` (1/G) or ``"uniform"`` (1).
        mode: ``"multiclass"`` (softmax over ``class_axis``), ``"binary"`` (sigmoid, one channel) or
            ``"multilabel"`` (sigmoid per channel); docs/conventions.md, "Modes".
        class_axis: the class axis of ``y_pred``: 1 (``(N, C, *spatial)``) or -1 (``(N, *spatial, C)``).
        from_logits: ``True``: ``y_pred`` holds logits, activated inside; ``False``: probabilities.
        ignore_index: integer targets only: the label whose pixels enter no sum; None: every pixel counts.
        classes: the class indices scored, in this order; None: every class.
        per_image: statistics per sample, ``(N, C)``, instead of summed over the batch.
        smooth: s >= 0, added to the numerator and the denominator of every index.
        eps: the lower clamp (>= 0) of every denominator.
        weight: per-class weights ``(C,)``, a sequence or an array, multiplying w_c; None: all 1.
        reduction: ``"mean"`` or ``"sum"`` over samples (``per_image``), or ``"none"``: see Returns.
        soft_label: take TP from the L1 form (sum p + sum t - sum |p - t|) / 2 (Wang & Blaschko 2023), equal to
            sum p t for hard targets; with fractional targets an index then peaks at ``y_pred == y_true`` only.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / K, K the softmax's classes
            (``"multiclass"``) or 2 (``"binary"``, ``"multilabel"``); ignored pixels stay out.
        all_reduce: a callable applied to the stacked statistics before they are combined, e.g. a
            cross-device sum (``lambda s: jax.lax.psum(s, "data")``); needs ``per_image=False``. None: local.

    Returns:
        A 0-d array for ``"mean"`` and ``"sum"``; for ``"none"`` one value per sample ``(N,)`` with
        ``per_image=True``, else the batch value (0-d). In ``y_pred``'s dtype, on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.generalized_dice_loss(x, y)), 4)
        0.0327

    References:
        Sudre et al., Generalised Dice overlap as a deep learning loss function, 2017.
        https://arxiv.org/abs/1707.03237
    """
    fn = "generalized_dice_loss"
    checks.check_option(fn, "weight_type", weight_type, WEIGHT_TYPES)
    options = RegionOptions(mode, class_axis, from_logits, ignore_index, classes, per_image, smooth, eps, weight,
                            reduction, soft_label, label_smoothing, all_reduce)
    r = region(fn, y_pred, y_true, options)
    xp, st = r.xp, r.st
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
    loss = 1 - ratio(num, den, den == 0, smooth=r.opts["smooth"], eps=r.opts["eps"], xp=xp)
    return returned(r.seg, reduce_loss(loss, reduction=r.opts["reduction"], xp=xp))
