"""Pixel-wise losses: the cross-entropy family, focal losses and Poly-1.

Each public function validates once (``_inputs.prepare``: ``class_axis``,
targets, ``ignore_index``, ``reduction``), computes per element with the
kernels of ``_pixel`` (shared with ``compound``), zeroes ignored elements and
reduces with ``_reduce.reduce_loss``, the mean dividing by the non-ignored
count (by the summed class weights for integer-target cross entropy, as torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._backend import Array, clip, numel, reduced_sigmoid_cross_entropy, softmax
from .._core import checks
from .._core.inputs import Dense, Segmentation, class_vector, element_weight, prepare, returned
from .._core.reduce import reduce_loss
from .._core.typing import ElementWeight, Reduction, Weight
from ._pixel import (
    balanced_bce,
    bce,
    cross_entropy_terms,
    focal_alpha,
    log_probs,
    masked,
    nll_at_label,
    reduced_ce,
    sigmoid_focal,
    smoothed,
    softmax_focal,
    valid_count,
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



def _finish(seg: Segmentation, loss: Array, reduction: str, denominator: Array | None = None) -> Array:
    xp = seg.xp
    return returned(seg, reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp))


def _binary(fn: str, y_pred: Array, y_true: Array, class_axis: int, ignore_index: int | None, reduction: str,
            from_logits: bool) -> Segmentation:
    """Prepare the inputs of a sigmoid loss."""
    return prepare(fn, y_pred, y_true, mode="binary", class_axis=class_axis, ignore_index=ignore_index,
                   reduction=reduction, from_logits=from_logits)


def _focal_options(fn: str, alpha: Any, gamma: Any) -> tuple[Any, Any]:
    """The sigmoid focal ``alpha`` (in [0, 1] or None) and ``gamma`` (>= 0), as floats or traced 0-d arrays."""
    alpha = None if alpha is None else checks.check_in_unit_interval(fn, "alpha", alpha)
    return alpha, checks.check_nonnegative(fn, "gamma", gamma)


def _finish_elements(seg: Segmentation, loss: Array, weight: ElementWeight, reduction: str) -> Array:
    """Per-element losses weighted by ``weight``, ignored elements zeroed, the mean over the non-ignored ones."""
    if weight is not None:
        loss = loss * element_weight(seg, "weight", weight)
    return _finish(seg, masked(seg.target.valid, loss, xp=seg.xp), reduction, valid_count(seg))


def binary_cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    from_logits: bool = True,
    pos_weight: ElementWeight = None,
    weight: ElementWeight = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    class_axis: int = 1,
    reduction: Reduction = "mean",
) -> Array:
    """Binary cross entropy, elementwise.

    l = -w [beta y log p + (1 - y) log(1 - p)],  y <- y (1 - s) + s / 2

    ``beta`` is ``pos_weight``, ``w`` is ``weight`` and ``s`` is
    ``label_smoothing``. Each of ``weight`` and ``pos_weight`` is a scalar, a
    per-class vector laid along ``class_axis``, or an array of ``y_pred``'s
    ndim that broadcasts to it (a per-pixel map such as ``unet_weight_map``).
    ``"mean"`` divides by the element count, as torch does (the non-ignored
    count with ``ignore_index``).

    Peers: ``torch.nn.functional.binary_cross_entropy_with_logits`` (and
    ``binary_cross_entropy`` with ``from_logits=False``, whose -100 log clamp
    this shares); torch broadcasts a 1-D ``pos_weight`` along the last axis,
    which here is ``class_axis=-1``.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), floating.
        y_true: targets of ``y_pred``'s shape: 0/1 (integer, bool) or in [0, 1] (floating).
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        pos_weight: beta, on positives: a scalar, one per class along ``class_axis``, or a map.
        weight: w: a scalar, one per class along ``class_axis``, or a map broadcasting to ``y_pred`` (e.g.
            ``unet_weight_map``); it multiplies each element's loss and leaves the mean's count alone.
        label_smoothing: s in [0, 1]; the target t becomes t (1 - s) + s / 2.
        ignore_index: integer ``y_true`` value whose elements enter no sum (integer targets only).
        class_axis: where per-class weights are laid; validated on every call.
        reduction: ``"mean"`` (over the non-ignored elements), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
        >>> round(float(pl.binary_cross_entropy(x, y)), 4)
        0.3048

    References:
        https://pytorch.org/docs/stable/generated/torch.nn.functional.binary_cross_entropy_with_logits.html
    """
    fn = "binary_cross_entropy"
    label_smoothing = checks.check_in_unit_interval(fn, "label_smoothing", label_smoothing)
    seg = _binary(fn, y_pred, y_true, class_axis, ignore_index, reduction, from_logits)
    t = seg.dense.target
    if not checks.is_zero(label_smoothing):
        t = t * (1 - label_smoothing) + label_smoothing / 2
    pw = None if pos_weight is None else element_weight(seg, "pos_weight", pos_weight)
    if from_logits and weight is None and seg.target.valid is None and reduction != "none" and numel(seg.x):
        fused = reduced_sigmoid_cross_entropy(seg.x, t, pos_weight=pw, reduction=reduction, xp=seg.xp)
        return returned(seg, fused)  # one pass, reduced inside (torch)
    return _finish_elements(seg, bce(seg.x, t, from_logits=from_logits, pos_weight=pw, xp=seg.xp), weight, reduction)


def balanced_binary_cross_entropy(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    beta: float | None = None,
    from_logits: bool = True,
    weight: ElementWeight = None,
    ignore_index: int | None = None,
    class_axis: int = 1,
    eps: float = 1e-7,
    reduction: Reduction = "mean",
) -> Array:
    """Class-balanced binary cross entropy (Xie & Tu 2015, HED).

    l = -[beta y log p + (1 - beta) (1 - y) log(1 - p)]

    ``beta=None`` sets beta to the share of negatives among the non-ignored
    elements of ``y_true`` (over the whole batch), clipped to
    ``[eps, 1 - eps]``, so rare positives weigh more.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), floating.
        y_true: targets of ``y_pred``'s shape: 0/1 (integer, bool) or in [0, 1] (floating).
        beta: weight of positives in [0, 1]; None: the share of negatives in ``y_true``.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: w: a scalar, one per class along ``class_axis``, or a map broadcasting to ``y_pred`` (e.g.
            ``unet_weight_map``); it multiplies each element's loss and leaves the mean's count alone.
        ignore_index: integer ``y_true`` value whose elements enter no sum (integer targets only).
        class_axis: where per-class weights are laid; validated on every call.
        eps: clip of the automatic beta to [eps, 1 - eps].
        reduction: ``"mean"`` (over the non-ignored elements), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
        >>> round(float(pl.balanced_binary_cross_entropy(x, y)), 4)
        0.1364

    References:
        Xie & Tu, Holistically-nested edge detection, 2015. https://arxiv.org/abs/1504.06375
    """
    fn = "balanced_binary_cross_entropy"
    if beta is not None:
        beta = checks.check_in_unit_interval(fn, "beta", beta)
    eps = checks.check_nonnegative(fn, "eps", eps)
    seg = _binary(fn, y_pred, y_true, class_axis, ignore_index, reduction, from_logits)
    xp, t, count = seg.xp, seg.dense.target, valid_count(seg)
    if beta is None and not numel(t):  # an empty batch has no share of negatives; any beta scores it 0
        beta = 0.5
    elif beta is None:
        positives = xp.mean(t) if count is None else xp.sum(t) / clip(count, 1, None, xp=xp)
        beta = clip(1 - positives, eps, 1 - eps, xp=xp)
    return _finish_elements(seg, balanced_bce(seg.x, t, beta, from_logits=from_logits, xp=xp), weight, reduction)


def sigmoid_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    from_logits: bool = True,
    weight: ElementWeight = None,
    ignore_index: int | None = None,
    class_axis: int = 1,
    reduction: Reduction = "mean",
) -> Array:
    """Sigmoid focal loss (Lin et al. 2017, RetinaNet), elementwise.

    l = -w alpha_t (1 - p_t)^gamma log p_t,  p_t = p y + (1 - p)(1 - y),
    alpha_t = alpha y + (1 - alpha)(1 - y)

    ``alpha=None`` drops alpha_t. Soft targets are allowed. For RetinaNet,
    take ``reduction="sum"`` and divide by the number of positive anchors.

    Peers: ``torchvision.ops.sigmoid_focal_loss`` (its ``alpha=-1`` is our
    ``alpha=None``); ``optax.sigmoid_focal_loss`` is ``reduction="none"``.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), floating.
        y_true: targets of ``y_pred``'s shape: 0/1 (integer, bool) or in [0, 1] (floating).
        alpha: weight of positives in [0, 1], or None.
        gamma: focusing exponent (>= 0).
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: w: a scalar, one per class along ``class_axis``, or a map broadcasting to ``y_pred`` (e.g.
            ``unet_weight_map``); it multiplies each element's loss and leaves the mean's count alone.
        ignore_index: integer ``y_true`` value whose elements enter no sum (integer targets only).
        class_axis: where per-class weights are laid; validated on every call.
        reduction: ``"mean"`` (over the non-ignored elements), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
        >>> round(float(pl.sigmoid_focal_loss(x, y)), 4)
        0.0114

    References:
        Lin et al., Focal loss for dense object detection, 2017. https://arxiv.org/abs/1708.02002
    """
    alpha, gamma = _focal_options("sigmoid_focal_loss", alpha, gamma)
    seg = _binary("sigmoid_focal_loss", y_pred, y_true, class_axis, ignore_index, reduction, from_logits)
    loss, _ = sigmoid_focal(seg.x, seg.dense.target, alpha=alpha, gamma=gamma, from_logits=from_logits, xp=seg.xp)
    return _finish_elements(seg, loss, weight, reduction)


def poly1_focal_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    epsilon: float = 1.0,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    from_logits: bool = True,
    weight: ElementWeight = None,
    ignore_index: int | None = None,
    class_axis: int = 1,
    reduction: Reduction = "mean",
) -> Array:
    """Poly-1 focal loss (Leng et al. 2022), sigmoid form, elementwise.

    l = w [FL + epsilon (1 - p_t)^(gamma + 1)]

    ``FL`` is ``sigmoid_focal_loss`` with the same ``alpha`` and ``gamma``;
    the polynomial term is not alpha-weighted, as in the paper's code.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), floating.
        y_true: targets of ``y_pred``'s shape: 0/1 (integer, bool) or in [0, 1] (floating).
        epsilon: weight of the polynomial term.
        alpha: weight of positives in [0, 1], or None.
        gamma: focusing exponent (>= 0).
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: w: a scalar, one per class along ``class_axis``, or a map broadcasting to ``y_pred`` (e.g.
            ``unet_weight_map``); it multiplies each element's loss and leaves the mean's count alone.
        ignore_index: integer ``y_true`` value whose elements enter no sum (integer targets only).
        class_axis: where per-class weights are laid; validated on every call.
        reduction: ``"mean"`` (over the non-ignored elements), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
        >>> round(float(pl.poly1_focal_loss(x, y)), 4)
        0.0364

    References:
        Leng et al., PolyLoss, 2022. https://arxiv.org/abs/2204.12511
    """
    alpha, gamma = _focal_options("poly1_focal_loss", alpha, gamma)
    epsilon = checks.check_real("poly1_focal_loss", "epsilon", epsilon)
    seg = _binary("poly1_focal_loss", y_pred, y_true, class_axis, ignore_index, reduction, from_logits)
    loss, one_minus_pt = sigmoid_focal(seg.x, seg.dense.target, alpha=alpha, gamma=gamma, from_logits=from_logits,
                                       xp=seg.xp)
    return _finish_elements(seg, loss + epsilon * one_minus_pt ** (gamma + 1), weight, reduction)


def _softmax(fn: str, y_pred: Array, y_true: Array, class_axis: int, from_logits: bool, ignore_index: int | None,
             reduction: str, label_smoothing: Any = 0.0) -> tuple[Segmentation, Any]:
    """Prepare the inputs of a softmax loss; ``label_smoothing`` validated (a float, or a traced 0-d array)."""
    label_smoothing = checks.check_in_unit_interval(fn, "label_smoothing", label_smoothing)
    seg = prepare(fn, y_pred, y_true, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
                  reduction=reduction)
    return seg, label_smoothing


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
    reduction: Reduction = "mean",
) -> Array:
    """Multiclass cross entropy over ``class_axis``.

    Integer targets: l_i = -(1 - s) w_{y_i} log p_{i,y_i} - (s / C) sum_c w_c log p_{i,c};
    ``"mean"`` divides by sum_i w_{y_i} over non-ignored pixels (by their count
    without ``weight``). Probability targets t: l_i = -sum_c w_c t'_{i,c} log p_{i,c}
    with t' = (1 - s) t + s / C; ``"mean"`` divides by the pixel count.

    ``y_pred`` is (N, C, *spatial) for ``class_axis=1`` or (N, *spatial, C)
    for ``class_axis=-1``; ``y_true`` is integer labels without the class
    axis, or floating probabilities of ``y_pred``'s shape. ``"none"`` returns
    one value per pixel. All pixels ignored gives 0.

    Peers: equals ``torch.nn.functional.cross_entropy`` for every argument
    (``ignore_index`` default -100 there, None here), and on torch runs its
    fused kernel for integer targets; optax's
    ``softmax_cross_entropy_with_integer_labels`` is ``reduction="none"``.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with
            ``class_axis=1`` or ``(N, *spatial, C)`` with ``-1``.
        y_true: integer labels (``y_pred``'s shape without the class axis) or class probabilities of
            ``y_pred``'s shape (floating).
        class_axis: the class axis of ``y_pred``.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: one weight per class, ``(C,)``.
        ignore_index: integer label whose pixels are left out (integer targets only).
        label_smoothing: s in [0, 1]; the target becomes (1 - s) t + s / C, t the one-hot labels or the
            class probabilities (torch's rule).
        reduction: ``"mean"`` (over the non-ignored pixels), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.cross_entropy(x, y)), 4)
        0.0334

    References:
        https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html
    """
    seg, label_smoothing = _softmax("cross_entropy", y_pred, y_true, class_axis, from_logits, ignore_index, reduction,
                                    label_smoothing)
    w = None if weight is None else class_vector(seg, "weight", weight)
    loss = reduced_ce(seg, w, label_smoothing, reduction)
    if loss is not None:
        return returned(seg, loss)
    loss, denominator, _ = cross_entropy_terms(seg, w, label_smoothing)
    return _finish(seg, loss, reduction, denominator)


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
    reduction: Reduction = "mean",
) -> Array:
    """Poly-1 cross entropy (Leng et al. 2022): CE + epsilon (1 - p_t).

    p_t = sum_c t'_c p_c with the (smoothed) one-hot or probability target t'.
    For integer targets the epsilon term carries the pixel's class weight and
    shares cross_entropy's denominator; every other option is cross_entropy's.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with
            ``class_axis=1`` or ``(N, *spatial, C)`` with ``-1``.
        y_true: integer labels (``y_pred``'s shape without the class axis) or class probabilities of
            ``y_pred``'s shape (floating).
        epsilon: weight of the polynomial term.
        class_axis: the class axis of ``y_pred``.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: one weight per class, ``(C,)``.
        ignore_index: integer label whose pixels are left out (integer targets only).
        label_smoothing: s in [0, 1]; the target becomes (1 - s) t + s / C, t the one-hot labels or the
            class probabilities (torch's rule).
        reduction: ``"mean"`` (over the non-ignored pixels), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.poly1_cross_entropy(x, y)), 4)
        0.0661

    References:
        Leng et al., PolyLoss, 2022. https://arxiv.org/abs/2204.12511
    """
    epsilon = checks.check_real("poly1_cross_entropy", "epsilon", epsilon)
    seg, s = _softmax("poly1_cross_entropy", y_pred, y_true, class_axis, from_logits, ignore_index, reduction,
                      label_smoothing)
    xp, n, target = seg.xp, seg.num_classes, seg.target
    w = None if weight is None else class_vector(seg, "weight", weight)
    ce, denominator, pixel_w = cross_entropy_terms(seg, w, s)
    if isinstance(target, Dense):
        p_t = xp.sum(smoothed(target, s, n) * xp.exp(log_probs(seg)), axis=seg.axis)
    else:
        p_t = xp.exp(-nll_at_label(seg, target))
        if not checks.is_zero(s):
            p_all = softmax(seg.x, axis=seg.axis, xp=xp) if seg.from_logits else seg.x
            p_t = (1 - s) * p_t + (s / n) * xp.sum(p_all, axis=seg.axis)
    loss = ce + masked(target.valid, epsilon * pixel_w * (1 - p_t), xp=xp)
    return _finish(seg, loss, reduction, denominator)


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
    reduction: Reduction = "mean",
) -> Array:
    """Softmax focal loss (Lin et al. 2017), per pixel.

    l_i = -sum_c alpha_c t_{i,c} (1 - p_{i,c})^gamma log p_{i,c}

    ``alpha`` a sequence: one weight per class; a scalar: 1 - alpha on class 0
    (background) and alpha on the others; None: 1. ``"mean"`` divides by the
    number of non-ignored pixels. ``gamma=0, alpha=None`` is ``cross_entropy``.

    Peers: ``kornia.losses.focal_loss`` and MONAI's ``FocalLoss(use_softmax=True)``
    average over classes x pixels, so they equal this divided by C.

    Args:
        y_pred: scores (logits, or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with
            ``class_axis=1`` or ``(N, *spatial, C)`` with ``-1``.
        y_true: integer labels (``y_pred``'s shape without the class axis) or class probabilities of
            ``y_pred``'s shape (floating).
        alpha: one weight per class, a scalar (1 - alpha on class 0, alpha on the others), or None.
        gamma: focusing exponent (>= 0).
        class_axis: the class axis of ``y_pred``.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        ignore_index: integer label whose pixels are left out (integer targets only).
        reduction: ``"mean"`` (over the non-ignored pixels), ``"sum"`` or ``"none"``.

    Returns:
        0-d for ``"mean"``/``"sum"``; for ``"none"`` one value per element (per pixel for the multiclass
        losses); in ``y_pred``'s dtype (computed in at least float32), on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.softmax_focal_loss(x, y)), 4)
        0.0001

    References:
        Lin et al., Focal loss for dense object detection, 2017. https://arxiv.org/abs/1708.02002
    """
    fn = "softmax_focal_loss"
    gamma = checks.check_nonnegative(fn, "gamma", gamma)
    seg, _ = _softmax(fn, y_pred, y_true, class_axis, from_logits, ignore_index, reduction)
    loss = softmax_focal(seg, focal_alpha(seg, alpha), gamma)
    return _finish(seg, loss, reduction, valid_count(seg))
