"""Topology and boundary-aware losses for thin structures: Skeleton Recall, clCE, Boundary DoU.

``tubed_skeleton`` is a host-side target helper (NumPy in, NumPy out, with
scikit-image); the losses run, jit and differentiate on every backend.
clCE reuses the soft skeleton of clDice (``_skeleton``); Boundary DoU counts
the target's boundary pixels with a face-neighbour erosion (``_xp.min_pool``),
no distance transform.

Shapes: ``y_pred`` is (N, C, *spatial) with 1 to 3 spatial axes, or
channels-last with ``class_axis=-1``; ``mode`` and ``from_logits`` as in the
region losses (softmax over the class axis for ``"multiclass"``, whose
targets are integer labels or class probabilities; sigmoid per channel for
``"binary"`` and ``"multilabel"``). ``ignore_index`` (integer targets):
ignored pixels enter no sum.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal, NamedTuple, cast

from . import _checks as checks
from ._reduce import as_float, promote, reduce_loss, restore
from ._skeleton import soft_skeleton
from ._xp import (
    Array,
    array_namespace,
    clamped_log,
    clip,
    log_sigmoid,
    log_softmax,
    min_pool,
    numel,
    one_hot,
    sigmoid,
    softmax,
    stop_gradient,
)

__all__ = ["boundary_dou_loss", "cl_cross_entropy_loss", "skeleton_recall_loss", "tubed_skeleton"]

Mode = Literal["binary", "multilabel", "multiclass"]
Reduction = Literal["mean", "sum", "none"]
AllReduce = Callable[[Array], Array] | None
MODES = ("binary", "multilabel", "multiclass")


# --------------------------------------------------------------------------- #
# Inputs: channels first, targets as floats, the ignore mask
# --------------------------------------------------------------------------- #


class _Inputs(NamedTuple):
    x: Array  # y_pred in the compute dtype, channels first (logits or probabilities as given)
    p: Array  # probabilities (N, C, *spatial)
    t: Array  # targets as floats (N, C, *spatial), ignored pixels zeroed, no gradient
    valid: Array | None  # (N, 1, *spatial) floats, 1 where the pixel counts; None: all count
    labels: Array | None  # multiclass integer targets (N, *spatial), ignored ones replaced by 0
    mode: str
    dtype: Any  # the dtype to return
    xp: ModuleType


def _prepare(
    fn: str, y_pred: Array, y_true: Array, *, mode: str, class_axis: int, from_logits: bool, ignore_index: int | None
) -> _Inputs:
    xp = array_namespace(y_pred, y_true)
    checks.check_option(fn, "mode", mode, MODES)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    if not 3 <= y_pred.ndim <= 5:
        raise ValueError(
            f"{fn}: y_pred must have shape (N, C, *spatial) with 1 to 3 spatial axes, got {tuple(y_pred.shape)}"
        )
    axis = checks.normalize_axis(fn, "class_axis", class_axis, y_pred.ndim)
    if axis not in (1, y_pred.ndim - 1):
        raise ValueError(f"{fn}: class_axis must be 1 (channels first) or -1 (channels last), got {class_axis!r}")
    c = y_pred.shape[axis]
    if mode == "binary" and c != 1:
        raise ValueError(f"{fn}: mode='binary' needs one channel along class_axis {class_axis}, got {c}")
    if mode == "multiclass" and c < 2:
        raise ValueError(f"{fn}: mode='multiclass' (softmax) needs C >= 2 along class_axis {class_axis}, got {c}")
    if not (xp.isdtype(y_true.dtype, ("integral", "real floating")) or xp.isdtype(y_true.dtype, "bool")):
        raise TypeError(f"{fn}: y_true must be integer, bool or floating, got dtype {y_true.dtype}")
    integer = xp.isdtype(y_true.dtype, "integral")
    checks.check_ignore_index(fn, ignore_index, integer)
    x = promote(y_pred, xp=xp)
    if axis != 1:
        x = xp.moveaxis(x, axis, 1)
    p = x
    if from_logits:
        p = softmax(x, axis=1, xp=xp) if mode == "multiclass" else sigmoid(x, xp=xp)
    labels = valid = None
    if mode == "multiclass" and integer:
        checks.check_index_target_shape(fn, y_pred, y_true, axis)
        labels = y_true
        if ignore_index is not None:
            keep = labels != ignore_index
            labels = xp.where(keep, labels, 0)
            valid = xp.expand_dims(xp.astype(keep, p.dtype), axis=1)
        checks.check_labels(fn, labels, c, ignore_index, xp=xp)
        t = one_hot(labels, num_classes=c, axis=1, dtype=p.dtype, xp=xp)
    else:
        checks.check_same_shape(fn, y_pred, y_true)
        t = y_true if axis == 1 else xp.moveaxis(y_true, axis, 1)
        if integer and ignore_index is not None:
            keep = t != ignore_index
            t = xp.where(keep, t, 0)
            valid = xp.astype(keep, p.dtype)
        if integer:
            checks.check_labels(fn, t, 2, ignore_index, xp=xp)
        t = as_float(t, p, xp=xp)
    if valid is not None:
        t = t * valid
    return _Inputs(x, p, stop_gradient(t, xp=xp), valid, labels, mode, y_pred.dtype, xp)


def _masked(inp: _Inputs, v: Array) -> Array:
    return v if inp.valid is None else v * inp.valid


def _foreground_channels(inp: _Inputs, v: Array) -> Array:
    """The foreground channels of ``v``: all but channel 0 for multiclass, all otherwise."""
    return v[:, 1:, ...] if inp.mode == "multiclass" else v


def _check_all_reduce(fn: str, all_reduce: AllReduce, per_image: bool) -> None:
    if all_reduce is None:
        return
    if not callable(all_reduce):
        raise TypeError(f"{fn}: all_reduce must be a callable or None, got {all_reduce!r}")
    if per_image:
        raise ValueError(f"{fn}: all_reduce needs per_image=False (reduce the per-image losses instead)")


def _sums(stats: list[Array], per_image: bool, all_reduce: AllReduce, *, xp: ModuleType) -> list[Array]:
    """Spatial sums of each (N, C, *spatial) statistic, over the batch too unless ``per_image``, then all_reduce."""
    axes = tuple(range(2, stats[0].ndim))
    sums = [xp.sum(s, axis=axes if per_image else (0, *axes)) for s in stats]
    if all_reduce is None:
        return sums
    reduced = all_reduce(xp.stack(sums))
    return [reduced[i, ...] for i in range(len(sums))]


def _check_smooth(fn: str, smooth: float) -> None:
    checks.check_nonnegative(fn, "smooth", smooth)


def _mean_classes(loss: Array, reduction: str, *, xp: ModuleType) -> Array:
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    return total if reduction == "sum" else total / max(numel(loss), 1)


# --------------------------------------------------------------------------- #
# Skeleton Recall (Kirchhoff et al., ECCV 2024)
# --------------------------------------------------------------------------- #


def tubed_skeleton(
    labels: Any,
    /,
    *,
    dilation: int = 2,
    spatial_ndim: int | None = None,
    ignore_index: int | None = None,
) -> Any:
    r"""Tubed skeleton of a label map, the target of ``skeleton_recall_loss`` (host side, NumPy).

    K_c = dilate^k(skeletonize(labels == c)) AND (labels == c);  out = sum_c c K_c

    For every foreground class c > 0 of every image, scikit-image's
    ``skeletonize`` thins the class mask to a one-pixel skeleton, which is
    dilated ``dilation`` times by the face-neighbour cross (a tube about
    2k + 1 pixels wide) and kept inside the class, labelled c. The authors
    skeletonize the union of the foreground classes once (their
    ``SkeletonTransform``); the two agree for binary labels, and per class
    keeps touching classes apart. Run it in the data pipeline, once per
    sample; it loops over images and classes on the host.

    Args:
        labels: integer label map, NumPy (or anything ``numpy.asarray``
            takes), ``(N, *spatial)`` or one image; 0 is background.
        dilation: k >= 0, the number of cross dilations (the authors: 2).
        spatial_ndim: 2 or 3, the trailing image axes; None: ``labels.ndim - 1``
            for 3-D and 4-D input (a leading batch axis), 2 for 2-D input.
        ignore_index: pixels with this label are not skeletonized and keep it
            in the output, so the loss ignores them too.

    Returns:
        A NumPy array of ``labels``' shape and dtype: 0 off the skeleton tube,
        the class label on it.

    Raises:
        ImportError: scikit-image is missing (``pip install "polyloss[skeleton]"``).
        ValueError: non-integer labels, a bad ``dilation`` or ``spatial_ndim``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 7, 9), dtype=int); labels[0, 2:5, 1:8] = 1  # a 3 x 7 bar
        >>> int(pl.tubed_skeleton(labels, dilation=0).sum()), int(pl.tubed_skeleton(labels, dilation=1).sum())
        (6, 18)

    References:
        Kirchhoff et al., Skeleton Recall Loss for Connectivity Conserving and
        Resource Efficient Segmentation of Thin Tubular Structures, ECCV 2024.
        https://arxiv.org/abs/2404.03010
    """
    import numpy as np

    fn = "tubed_skeleton"
    try:
        from skimage.morphology import skeletonize
    except ImportError as err:  # pragma: no cover - exercised only where scikit-image is absent
        raise ImportError(
            f"{fn} needs scikit-image: pip install scikit-image (the package's `skeleton` extra)"
        ) from err
    from scipy import ndimage

    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{fn}: labels must hold integer class labels, got dtype {arr.dtype}")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"{fn}: dilation must be a non-negative int, got {dilation!r}")
    nd = (arr.ndim - 1 if arr.ndim > 2 else 2) if spatial_ndim is None else spatial_ndim
    if nd not in (2, 3) or arr.ndim < nd:
        raise ValueError(f"{fn}: spatial_ndim must be 2 or 3 and at most labels.ndim, got {spatial_ndim!r} "
                         f"for labels of shape {arr.shape}")
    images = arr.reshape((-1, *arr.shape[arr.ndim - nd :]))
    out = np.zeros_like(images)
    cross = ndimage.generate_binary_structure(nd, 1)
    for image, result in zip(images, out, strict=True):
        for c in np.unique(image):
            if c == 0 or c == ignore_index:
                continue
            mask = image == c
            tube = cast(Any, skeletonize)(mask)  # scikit-image ships no type hints
            if dilation:
                tube = ndimage.binary_dilation(tube, structure=cross, iterations=dilation)
            result[tube & mask] = c
        if ignore_index is not None:
            result[image == ignore_index] = ignore_index
    return out.reshape(arr.shape)


def skeleton_recall_loss(
    y_pred: Array,
    skeleton: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    per_image: bool = False,
    smooth: float = 1e-5,
    reduction: Reduction = "mean",
    all_reduce: AllReduce = None,
) -> Array:
    r"""Skeleton Recall loss: 1 - soft recall of the prediction on the tubed skeleton.

    R_c = (sum_x p_c(x) K_c(x) + s) / max(sum_x K_c(x) + s, 1e-8);  L = mean_c (1 - R_c)

    K is the tubed skeleton of the target (``tubed_skeleton``, computed once
    per sample in the data pipeline), p the predicted probabilities. Classes
    c are the foreground ones: the background channel 0 is left out in
    ``"multiclass"`` mode (the authors' ``do_bg=False``); every channel counts
    in ``"binary"``/``"multilabel"``. Sums run over space, and over the batch
    too unless ``per_image``; ``all_reduce`` sums them across devices first.
    A class with an empty skeleton scores R = 1 (loss 0). The authors'
    trainer adds this to nnU-Net's Dice + CE with weight 1 and uses
    ``smooth=1e-5`` (the default here); their loss is -R, ours 1 - R.

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``),
            ``(N, C, *spatial)`` or channels-last with ``class_axis=-1``.
        skeleton: the tubed skeleton: integer labels ``(N, *spatial)`` for
            ``"multiclass"``, or ``y_pred``'s shape (one-hot or binary).
        mode: ``"multiclass"`` (default, softmax), ``"binary"`` or ``"multilabel"`` (sigmoid).
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        per_image: recall per sample (``"none"`` then gives ``(N, C')``).
        smooth: s >= 0, added to numerator and denominator.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(C',)``
            or ``(N, C')``, C' the foreground channels).
        all_reduce: a cross-device sum of the stacked statistics, or None.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that do not match, labels out of range (eager
            arrays), an unknown ``mode``/``reduction``, negative ``smooth``,
            ``all_reduce`` with ``per_image``.
        TypeError: non-floating ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> skel = np.zeros((1, 5, 5), dtype=int); skel[0, 2, :] = 1
        >>> logits = np.stack([np.zeros((1, 5, 5)), np.where(skel == 1, 9.0, -9.0)], axis=1)
        >>> round(float(pl.skeleton_recall_loss(logits, skel)), 4)
        0.0001

    References:
        Kirchhoff et al., Skeleton Recall Loss for Connectivity Conserving and
        Resource Efficient Segmentation of Thin Tubular Structures, ECCV 2024.
        https://arxiv.org/abs/2404.03010
    """
    fn = "skeleton_recall_loss"
    checks.check_reduction(fn, reduction)
    _check_smooth(fn, smooth)
    _check_all_reduce(fn, all_reduce, per_image)
    inp = _prepare(fn, y_pred, skeleton, mode=mode, class_axis=class_axis, from_logits=from_logits,
                   ignore_index=ignore_index)
    xp = inp.xp
    p, k = _foreground_channels(inp, _masked(inp, inp.p)), _foreground_channels(inp, inp.t)
    inter, total = _sums([p * k, k], per_image, all_reduce, xp=xp)
    recall = (inter + smooth) / clip(total + smooth, 1e-8, None, xp=xp)
    recall = xp.where(total > 0, recall, 1.0)
    return restore(_mean_classes(1 - recall, reduction, xp=xp), inp.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# clCE (Acebes et al., MICCAI 2024)
# --------------------------------------------------------------------------- #


def cl_cross_entropy_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    iterations: int = 3,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Array:
    r"""Centerline cross entropy (clCE): cross entropy weighted by the soft skeletons of target and prediction.

    L = mean_x CE(x) sum_{c >= 1} S(t)_c(x) + mean_x CE(x) sum_{c >= 1} S(p)_c(x)

    CE(x) is the pixel's cross entropy (``"multiclass"``: -sum_c t_c log p_c;
    ``"binary"``/``"multilabel"``: the binary cross entropy of each channel,
    weighted by that channel's skeletons), S the soft skeleton of clDice
    (``iterations`` soft erosions). The sum over c >= 1 leaves out the
    background channel in ``"multiclass"`` mode; with two classes it is the
    authors' ``skel[:, 1]``. Gradients flow through CE and S(p); S(t) is
    fixed. The means run over the valid pixels (``ignore_index``; ignored
    pixels count as background in S(t), and their own terms are dropped). clCE is
    meant to be added to a region loss (the authors: Dice + clCE, or CE +
    clCE with weight 1).

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``),
            ``(N, C, *spatial)`` or channels-last with ``class_axis=-1``.
        y_true: integer labels ``(N, *spatial)`` for ``"multiclass"``, or
            targets of ``y_pred``'s shape (probabilities, one-hot or binary).
        iterations: soft-skeleton iterations, >= 0 (default 3, the authors').
        mode: ``"multiclass"`` (default), ``"binary"`` or ``"multilabel"``.
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``: one value per
            pixel ``(N, *spatial)`` for multiclass, per element (``y_pred``'s
            shape, channels first) otherwise.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that do not match, labels out of range (eager
            arrays), an unknown ``mode``/``reduction``, negative ``iterations``.
        TypeError: non-floating ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 7, 7), dtype=int); labels[0, 3, :] = 1
        >>> logits = np.stack([np.where(labels == 0, 9.0, -9.0), np.where(labels == 1, 9.0, -9.0)], axis=1)
        >>> round(float(pl.cl_cross_entropy_loss(logits, labels)), 4)
        0.0

    References:
        Acebes et al., The Centerline-Cross Entropy Loss for Vessel-Like
        Structure Segmentation: Better Topology Consistency Without Sacrificing
        Accuracy, MICCAI 2024. https://doi.org/10.1007/978-3-031-72111-3_67
        (code: https://github.com/cesaracebes/centerline_CE)
    """
    fn = "cl_cross_entropy_loss"
    checks.check_reduction(fn, reduction)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"{fn}: iterations must be a non-negative int, got {iterations!r}")
    inp = _prepare(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                   ignore_index=ignore_index)
    xp, p, t = inp.xp, inp.p, inp.t
    nd = p.ndim - 2
    weight = p * 0  # an empty batch: torch's pooling refuses zero-size inputs
    if numel(p):
        weight = soft_skeleton(t, iterations, nd, xp=xp) + soft_skeleton(p, iterations, nd, xp=xp)
    if mode == "multiclass":
        log_p = log_softmax(inp.x, axis=1, xp=xp) if from_logits else clamped_log(p, xp=xp)
        ce = -xp.sum(t * log_p, axis=1)
        weight = xp.sum(weight[:, 1:, ...], axis=1)
        valid = None if inp.valid is None else inp.valid[:, 0, ...]
    else:
        if from_logits:
            ce = (1 - t) * inp.x - log_sigmoid(inp.x, xp=xp)
        else:
            ce = -(t * clamped_log(p, xp=xp) + (1 - t) * clamped_log(1 - p, xp=xp))
        valid = inp.valid
    loss = ce * weight
    if valid is not None:
        loss = loss * valid
    denominator = None if valid is None else xp.sum(valid)
    return restore(reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp), inp.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Boundary DoU (Sun et al., MICCAI 2023)
# --------------------------------------------------------------------------- #


def _boundary_pixels(m: Array, *, xp: ModuleType) -> Array:
    """Foreground pixels of hard ``m`` (N, C, *spatial) with a background face-neighbour (outside: background)."""
    nd = m.ndim - 2
    if not numel(m):  # an empty batch: torch's pooling refuses zero-size inputs
        return m
    eroded = m
    for i in range(nd):
        window = tuple(3 if j == i else 1 for j in range(nd))
        eroded = xp.minimum(eroded, min_pool(m, window=window, pad_value=0.0, xp=xp))
    return m - eroded


def boundary_dou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    mode: Mode = "multiclass",
    class_axis: int = 1,
    from_logits: bool = True,
    ignore_index: int | None = None,
    include_background: bool = True,
    per_image: bool = False,
    smooth: float = 1e-5,
    alpha_max: float = 0.8,
    reduction: Reduction = "mean",
    all_reduce: AllReduce = None,
) -> Array:
    r"""Boundary Difference over Union loss of Sun et al. 2023, with the boundary-adaptive alpha.

    alpha_c = min(1 - 2 (B_c + s) / (S_c + s), alpha_max)
    L_c = (sum p^2 + sum t^2 - 2 sum pt + s) / (sum p^2 + sum t^2 - (1 + alpha_c) sum pt + s)

    S_c counts the target's pixels of class c (t > 0.5), B_c those of them
    with a background face-neighbour (4-neighbours in 2-D, 6 in 3-D; outside
    the image is background): the paper's boundary length over area, from the
    target only (no gradient, no distance transform). alpha is clipped from
    above only, at 0.8, as in the authors' code (small objects get alpha < 0).
    Sums run over space, and over the batch too unless ``per_image``;
    ``all_reduce`` sums the statistics across devices before alpha is
    formed. A class absent from the target scores 0: the authors' ratio is
    the constant (sum p^2 + s) / (sum p^2 + s) = 1 there, whatever the
    prediction, so only the value changes (the gradient is 0 either way) and
    a perfect prediction scores 0. The authors average over every class, the
    background included (``include_background=True``).

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``),
            ``(N, C, *spatial)`` or channels-last with ``class_axis=-1``.
        y_true: integer labels ``(N, *spatial)`` for ``"multiclass"``, or
            targets of ``y_pred``'s shape.
        mode: ``"multiclass"`` (default), ``"binary"`` or ``"multilabel"``.
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        include_background: False drops channel 0 in ``"multiclass"`` mode.
        per_image: the loss per sample (``"none"`` then gives ``(N, C')``).
        smooth: s >= 0 (the authors: 1e-5).
        alpha_max: the upper clip of alpha (the authors recommend 0.8); < 1.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(C',)`` or ``(N, C')``).
        all_reduce: a cross-device sum of the stacked statistics, or None.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes that do not match, labels out of range (eager
            arrays), an unknown ``mode``/``reduction``, ``alpha_max >= 1``.
        TypeError: non-floating ``y_pred``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 6, 6), dtype=int); labels[0, 1:5, 1:5] = 1
        >>> logits = np.stack([np.where(labels == 0, 9.0, -9.0), np.where(labels == 1, 9.0, -9.0)], axis=1)
        >>> round(float(pl.boundary_dou_loss(logits, labels)), 4)
        0.0

    References:
        Sun et al., Boundary Difference Over Union Loss For Medical Image
        Segmentation, MICCAI 2023. https://arxiv.org/abs/2308.00220
        (code: https://github.com/sunfan-bvb/BoundaryDoULoss)
    """
    fn = "boundary_dou_loss"
    checks.check_reduction(fn, reduction)
    _check_smooth(fn, smooth)
    if not alpha_max < 1:
        raise ValueError(f"{fn}: alpha_max must be < 1, got {alpha_max!r}")
    _check_all_reduce(fn, all_reduce, per_image)
    inp = _prepare(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                   ignore_index=ignore_index)
    xp = inp.xp
    p, t = _masked(inp, inp.p), inp.t
    if mode == "multiclass" and not include_background:
        p, t = p[:, 1:, ...], t[:, 1:, ...]
    hard = xp.astype(t > 0.5, t.dtype)
    pp, tt, pt, area, edge = _sums([p * p, t * t, p * t, hard, _boundary_pixels(hard, xp=xp)], per_image,
                                   all_reduce, xp=xp)
    alpha = clip(1 - 2 * (edge + smooth) / xp.where(area + smooth > 0, area + smooth, 1.0), None, alpha_max, xp=xp)
    alpha = xp.where(area > 0, alpha, 0.0)
    den = pp + tt - (1 + alpha) * pt + smooth
    absent = tt == 0  # the authors' ratio is (sum p^2 + s) / (sum p^2 + s) = 1 there, whatever p: 0 instead
    loss = xp.where(absent, 0.0, (pp + tt - 2 * pt + smooth) / xp.where(absent, 1.0, den))
    return restore(_mean_classes(loss, reduction, xp=xp), inp.dtype, xp=xp)
