"""Topology and boundary-aware losses for thin structures: Skeleton Recall, clCE, Boundary DoU.

``tubed_skeleton`` is a host-side target helper (NumPy in, NumPy out, with
scikit-image); the losses run, jit and differentiate on every backend.
clCE reuses the soft skeleton of clDice (``_skeleton``); Boundary DoU counts
the target's boundary pixels with a face-neighbour erosion (``_skeleton.surface``),
no distance transform. Inputs are validated once and laid out channels first
by ``_channels``.

Shapes: ``y_pred`` is (N, C, *spatial) with 1 to 3 spatial axes, or
channels-last with ``class_axis=-1``; ``mode`` and ``from_logits`` as in the
region losses (softmax over the class axis for ``"multiclass"``, whose
targets are integer labels or class probabilities; sigmoid per channel for
``"binary"`` and ``"multilabel"``). ``ignore_index`` (integer targets):
ignored pixels enter no sum.
"""

from __future__ import annotations

from typing import Any, cast

from .._backend import Array, clamped_log, clip, log_softmax, numel
from .._core import checks
from .._core.inputs import check_spatial_layout, poisoned
from .._core.reduce import reduce_loss, restore
from .._core.typing import AllReduce, Mode, Reduction
from ._channels import spatial_inputs, target_channels
from ._confusion import PixelInputs, RegionOptions, finish, ratio, region
from ._pixel import bce
from ._skeleton import soft_skeleton, surface

__all__ = ["boundary_dou_loss", "cl_cross_entropy_loss", "skeleton_recall_loss", "tubed_skeleton"]


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
    dilation = checks.check_count(fn, "dilation", dilation, 0)
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
    y_pred: Array, skeleton: Array, /, *, mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True,
    ignore_index: int | None = None, per_image: bool = False, smooth: float = 1e-5, reduction: Reduction = "mean",
    all_reduce: AllReduce = None,
) -> Array:
    """Skeleton Recall loss: 1 - soft recall of the prediction on the tubed skeleton.

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
        y_pred: logits (or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with 1 to 3
            spatial axes, or channels-last with ``class_axis=-1``.
        skeleton: the tubed skeleton: integer labels ``(N, *spatial)`` for
            ``"multiclass"``, or ``y_pred``'s shape (one-hot or binary).
        mode: ``"multiclass"`` (default, softmax), ``"binary"`` (one channel) or ``"multilabel"`` (sigmoid).
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        per_image: statistics per sample (``"none"`` then gives ``(N, C')``) instead of summed over the batch.
        smooth: s >= 0, added to numerator and denominator.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(C',)``
            or ``(N, C')``, C' the foreground channels).
        all_reduce: a cross-device sum of the stacked statistics, or None (needs ``per_image=False``).

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype (computed in at least float32),
        on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

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
    r = region("skeleton_recall_loss", y_pred, skeleton, RegionOptions(
        mode=mode, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
        per_image=per_image, smooth=smooth, eps=1e-8, reduction=reduction, soft_label=False,
        all_reduce=all_reduce,
    ), target_name="skeleton")
    check_spatial_layout(r.seg.caller, r.seg.x, r.seg.axis, r.seg.mode)
    st = r.st
    tp, fn = (st.tp[..., 1:], st.fn[..., 1:]) if mode == "multiclass" else (st.tp, st.fn)  # the foreground classes
    recall = ratio(tp, tp + fn, tp + fn == 0, smooth=r.opts["smooth"], eps=1e-8, xp=r.xp)
    return finish(r, 1 - recall)


# --------------------------------------------------------------------------- #
# clCE (Acebes et al., MICCAI 2024)
# --------------------------------------------------------------------------- #


def cl_cross_entropy_loss(
    y_pred: Array, y_true: Array, /, *, iterations: int = 3, mode: Mode = "multiclass", class_axis: int = 1,
    from_logits: bool = True, ignore_index: int | None = None, reduction: Reduction = "mean",
) -> Array:
    """Centerline cross entropy (clCE): cross entropy weighted by the soft skeletons of target and prediction.

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
        y_pred: logits (or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with 1 to 3
            spatial axes, or channels-last with ``class_axis=-1``.
        y_true: integer labels ``(N, *spatial)`` for ``"multiclass"``, or targets of ``y_pred``'s shape
            (probabilities, one-hot or binary).
        iterations: soft-skeleton iterations, >= 0 (default 3, the authors').
        mode: ``"multiclass"`` (default, softmax), ``"binary"`` (one channel) or ``"multilabel"`` (sigmoid).
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``: one value per
            pixel ``(N, *spatial)`` for multiclass, per element (``y_pred``'s
            shape, channels first) otherwise.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype (computed in at least float32),
        on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

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
    iterations = checks.check_count(fn, "iterations", iterations, 0)
    inp = spatial_inputs(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                         ignore_index=ignore_index, reduction=reduction)
    xp, p, t = inp.xp, inp.p, inp.t
    nd = p.ndim - 2
    weight = p * 0  # an empty batch: torch's pooling refuses zero-size inputs
    if numel(p):
        weight = soft_skeleton(t, iterations, nd, xp=xp) + soft_skeleton(p, iterations, nd, xp=xp)
    if mode == "multiclass":
        log_p = log_softmax(inp.x, axis=1, xp=xp) if from_logits else clamped_log(p, xp=xp)
        ce = -xp.sum(t * log_p, axis=1)
        weight = xp.sum(weight[:, 1:, ...], axis=1)
        valid = None if inp.w is None else inp.w[:, 0, ...]
    else:
        ce, valid = bce(inp.x, t, from_logits=from_logits, xp=xp), inp.w
    loss = ce * weight
    if valid is not None:
        loss = loss * valid
    denominator = None if valid is None else xp.sum(valid)
    out = reduce_loss(loss, reduction=reduction, denominator=denominator, xp=xp)
    return restore(poisoned(out, inp.poison), inp.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Boundary DoU (Sun et al., MICCAI 2023)
# --------------------------------------------------------------------------- #


def boundary_dou_loss(
    y_pred: Array, y_true: Array, /, *, mode: Mode = "multiclass", class_axis: int = 1, from_logits: bool = True,
    ignore_index: int | None = None, include_background: bool = True, per_image: bool = False, smooth: float = 1e-5,
    alpha_max: float = 0.8, reduction: Reduction = "mean", all_reduce: AllReduce = None,
) -> Array:
    """Boundary Difference over Union loss of Sun et al. 2023, with the boundary-adaptive alpha.

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
        y_pred: logits (or probabilities with ``from_logits=False``), ``(N, C, *spatial)`` with 1 to 3
            spatial axes, or channels-last with ``class_axis=-1``.
        y_true: integer labels ``(N, *spatial)`` for ``"multiclass"``, or targets of ``y_pred``'s shape
            (probabilities, one-hot or binary).
        mode: ``"multiclass"`` (default, softmax), ``"binary"`` (one channel) or ``"multilabel"`` (sigmoid).
        class_axis: 1 (default) or -1.
        from_logits: True (default): ``y_pred`` holds logits.
        ignore_index: integer targets: pixels with this label count nowhere.
        include_background: False drops channel 0 in ``"multiclass"`` mode.
        per_image: statistics per sample (``"none"`` then gives ``(N, C')``) instead of summed over the batch.
        smooth: s >= 0 (the authors: 1e-5).
        alpha_max: the upper clip of alpha (the authors recommend 0.8); < 1.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (``(C',)`` or ``(N, C')``).
        all_reduce: a cross-device sum of the stacked statistics, or None (needs ``per_image=False``).

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, in ``y_pred``'s dtype (computed in at least float32),
        on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

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
    checks.check_flags(
        "boundary_dou_loss", from_logits=from_logits, include_background=include_background, per_image=per_image
    )
    fn = "boundary_dou_loss"
    alpha_max, smooth = checks.check_real(fn, "alpha_max", alpha_max), checks.check_nonnegative(fn, "smooth", smooth)
    if isinstance(alpha_max, float) and not alpha_max < 1:
        raise ValueError(f"{fn}: alpha_max must be < 1, got {alpha_max!r}")

    def target_counts(inputs: PixelInputs) -> Array:
        """Pixels and boundary pixels of each hard target class, summed like (and reduced with) the statistics."""
        seg = inputs.seg
        check_spatial_layout(seg.caller, seg.x, seg.axis, seg.mode)
        xp = seg.xp
        t = target_channels(seg)[0]
        hard = xp.astype(t > 0.5, t.dtype)
        edges = xp.astype(surface(hard, hard.ndim - 2, xp=xp), t.dtype)
        axes = tuple(range(2, t.ndim)) if per_image else (0, *range(2, t.ndim))
        return xp.reshape(xp.stack([xp.sum(hard, axis=axes), xp.sum(edges, axis=axes)]), (-1,))

    # squared statistics: TP = sum pt, TP + FP = sum p^2, TP + FN = sum t^2
    r = region(fn, y_pred, y_true, RegionOptions(
        mode=mode, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
        per_image=per_image, smooth=smooth, reduction=reduction, all_reduce=all_reduce,
    ), squared=True, extra=target_counts)
    xp, st = r.xp, r.st
    area, edge = (xp.reshape(cast(Array, st.extra), (2, *st.tp.shape))[i, ...] for i in range(2))
    pt, pp, tt = st.tp, st.tp + st.fp, st.tp + st.fn
    if mode == "multiclass" and not include_background:
        pt, pp, tt, area, edge = (v[..., 1:] for v in (pt, pp, tt, area, edge))
    alpha = clip(1 - 2 * (edge + smooth) / xp.where(area + smooth > 0, area + smooth, 1.0), None, alpha_max, xp=xp)
    alpha = xp.where(area > 0, alpha, 0.0)
    den = pp + tt - (1 + alpha) * pt + smooth
    absent = tt == 0  # the authors' ratio is (sum p^2 + s) / (sum p^2 + s) = 1 there, whatever p: 0 instead
    return finish(r, xp.where(absent, 0.0, (pp + tt - 2 * pt + smooth) / xp.where(absent, 1.0, den)))
