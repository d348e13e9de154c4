"""Segmentation metrics on hard masks: Dice, IoU and the surface distances, on every backend.

Nothing here is differentiable and nothing leaves the device: the surface
metrics take each mask's surface by one erosion (``_xp.min_pool`` over the
face-neighbour cross, zeros outside the image, as ``scipy.ndimage.binary_erosion``
in MONAI's ``get_mask_edges``), the distance of every pixel to the other
mask's surface by the exact ``polyloss.distance_transform``, and a
percentile by one sort of a fixed-size masked array, so they run under
``jax.jit`` and ``torch.compile`` with no host loop over images or classes.

Empty masks (MONAI returns NaN or inf there; we return finite values):
both masks empty gives distance 0 and surface Dice 1 (as Dice and IoU: a
class empty in both scores 1); exactly one empty gives the image diagonal
sqrt(sum_k (n_k s_k)^2), longer than any distance inside the image, and
surface Dice 0. ``xp.where`` on the masks' ``any`` restores MONAI's values.
"""

from __future__ import annotations

import math
from types import ModuleType

from .._backend import Array, class_sums, default_float, device, is_concrete, moveaxis, one_hot
from .._core import checks
from .._core.inputs import class_axis_index, drop_ignored, namespace, poison_if, poisoned
from .._core.reduce import reduce_classes
from .._core.typing import Reduction, Sampling
from ._confusion import ratio
from ._edt import foreground
from ._surface import Surfaces

__all__ = ["average_surface_distance", "dice_score", "hausdorff_distance", "iou_score", "surface_dice"]


# --------------------------------------------------------------------------- #
# Surface metrics
# --------------------------------------------------------------------------- #


def hausdorff_distance(
    pred_mask: Array, true_mask: Array, /, *, percentile: float | None = None, directed: bool = False,
    sampling: Sampling = None, spatial_ndim: int = 2,
) -> Array:
    """Hausdorff distance between the surfaces of two masks, or its percentile (HD95).

    d(x, B) = min_{y in dB} ||(x - y) s||;  h(A, B) = P_q {d(x, B) : x in dA}
    HD = max(h(P, T), h(T, P)), or h(P, T) alone with ``directed=True``

    dA is the surface of mask A: its foreground pixels with a background
    face-neighbour (outside the image counts as background). P_q is the
    maximum (``percentile=None``) or the q-th percentile with linear
    interpolation (``numpy.percentile``); ``percentile=95`` gives HD95.

    Empty masks: both empty gives 0, exactly one empty the image diagonal
    sqrt(sum_k (n_k s_k)^2) (MONAI: NaN and inf).

    Args:
        pred_mask: predicted mask, bool, integer or floating (nonzero is foreground); the trailing
            ``spatial_ndim`` axes are an image, the leading axes a batch (e.g. ``(N, C, H, W)`` one-hot).
        true_mask: the reference mask, ``pred_mask``'s shape.
        percentile: None (default) for the maximum, or q in [0, 100].
        directed: False (default): the symmetric distance; True: from the
            prediction's surface to the reference's only.
        sampling: voxel spacing s_k, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape (``(N, C)`` for one-hot ``(N, C, H, W)`` masks) in the namespace's default
        float dtype, on the masks' device.

    Raises:
        ValueError: shapes that differ, ``percentile`` outside [0, 100], a bad
            ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True  # a 3 x 3 square
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 4:7] = True  # moved right by 2
        >>> round(float(pl.hausdorff_distance(a, b)[0]), 4)
        2.0

    Peers: ``monai.metrics.compute_hausdorff_distance(pred, true,
    include_background=True, percentile, directed, spacing)`` on one-hot
    ``(N, C, ...)`` masks where both are non-empty.

    References:
        Huttenlocher et al., Comparing images using the Hausdorff distance, TPAMI 1993.
        https://doi.org/10.1109/34.232073
    """
    checks.check_flags("hausdorff_distance", directed=directed)
    fn = "hausdorff_distance"
    if percentile is not None and not 0 <= percentile <= 100:
        raise ValueError(f"{fn}: percentile must be None or lie in [0, 100], got {percentile!r}")
    s = Surfaces(fn, pred_mask, true_mask, sampling, spatial_ndim)
    value = s.quantile(s.edge_p, s.to_t, s.n_p, percentile)
    if not directed:
        value = s.xp.maximum(value, s.quantile(s.edge_t, s.to_p, s.n_t, percentile))
    return s.empty_rule(value, both=0.0, one=s.diagonal)


def average_surface_distance(
    pred_mask: Array, true_mask: Array, /, *, symmetric: bool = False, sampling: Sampling = None,
    spatial_ndim: int = 2,
) -> Array:
    """Average surface distance from the prediction's surface to the reference's.

    ASD = mean_{x in dP} d(x, dT);  symmetric: (sum_{dP} d(x, dT) + sum_{dT} d(x, dP)) / (|dP| + |dT|)

    Surfaces and d as in ``hausdorff_distance``; the symmetric form averages
    the distances of both surfaces together (MONAI's concatenation, not the
    mean of the two directed means). Empty masks: both empty gives 0,
    exactly one empty the image diagonal (MONAI: NaN and inf).

    Args:
        pred_mask: predicted mask, bool, integer or floating (nonzero is foreground); the trailing
            ``spatial_ndim`` axes are an image, the leading axes a batch (e.g. ``(N, C, H, W)`` one-hot).
        true_mask: the reference mask, ``pred_mask``'s shape.
        symmetric: False (default): from the prediction to the reference; True: both ways.
        sampling: voxel spacing s_k, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape (``(N, C)`` for one-hot ``(N, C, H, W)`` masks) in the namespace's default
        float dtype, on the masks' device.

    Raises:
        ValueError: shapes that differ, a bad ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True  # a 3 x 3 square
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 4:7] = True  # moved right by 2
        >>> round(float(pl.average_surface_distance(a, b)[0]), 4)
        1.0

    Peers: ``monai.metrics.compute_average_surface_distance(pred, true,
    include_background=True, symmetric, spacing)`` where both are non-empty.

    References:
        Heimann et al., Comparison and evaluation of methods for liver
        segmentation from CT datasets, IEEE TMI 2009. https://doi.org/10.1109/TMI.2009.2013851
    """
    s = Surfaces("average_surface_distance", pred_mask, true_mask, sampling, spatial_ndim)
    xp = s.xp
    total, count = s.masked_sum(s.edge_p, s.to_t), s.n_p
    if symmetric:
        total, count = total + s.masked_sum(s.edge_t, s.to_p), count + s.n_t
    return s.empty_rule(total / xp.where(count > 0, count, 1.0), both=0.0, one=s.diagonal)


def surface_dice(
    pred_mask: Array, true_mask: Array, /, *, tolerance: float, sampling: Sampling = None, spatial_ndim: int = 2,
) -> Array:
    """Normalised surface Dice (NSD) at a tolerance, counting surface pixels.

    NSD = (|{x in dP : d(x, dT) <= tau}| + |{x in dT : d(x, dP) <= tau}|) / (|dP| + |dT|)

    Surfaces and d as in ``hausdorff_distance``; each surface pixel counts
    once (MONAI's ``use_subvoxels=False``), so NSD lies in [0, 1]. Both masks
    empty gives 1 (MONAI: NaN); exactly one empty gives 0.

    Args:
        pred_mask: predicted mask, bool, integer or floating (nonzero is foreground); the trailing
            ``spatial_ndim`` axes are an image, the leading axes a batch (e.g. ``(N, C, H, W)`` one-hot).
        true_mask: the reference mask, ``pred_mask``'s shape.
        tolerance: tau >= 0, in the units of ``sampling``.
        sampling: voxel spacing s_k, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape (``(N, C)`` for one-hot ``(N, C, H, W)`` masks) in the namespace's default
        float dtype, on the masks' device.

    Raises:
        ValueError: shapes that differ, a negative ``tolerance``, a bad
            ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True  # a 3 x 3 square
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 4:7] = True  # moved right by 2
        >>> round(float(pl.surface_dice(a, b, tolerance=1.0)[0]), 4)
        0.625

    Peers: ``monai.metrics.compute_surface_dice(pred, true, class_thresholds=[tau] * C,
    include_background=True, spacing)`` where not both are empty.

    References:
        Nikolov et al., Clinically applicable segmentation of head and neck
        anatomy for radiotherapy, JMIR 2021. https://arxiv.org/abs/1809.04430
    """
    fn = "surface_dice"
    if not 0 <= tolerance < math.inf:
        raise ValueError(f"{fn}: tolerance must be a finite number >= 0, got {tolerance!r}")
    s = Surfaces(fn, pred_mask, true_mask, sampling, spatial_ndim)
    close = s.count(s.edge_p & (s.to_t <= tolerance)) + s.count(s.edge_t & (s.to_p <= tolerance))
    total = s.n_p + s.n_t
    return s.empty_rule(close / s.xp.where(total > 0, total, 1.0), both=1.0, one=0.0)


# --------------------------------------------------------------------------- #
# Overlap metrics
# --------------------------------------------------------------------------- #


def _overlap(fn: str, pred: Array, true: Array, dice: bool, *, num_classes: int | None, class_axis: int,
             ignore_index: int | None, include_background: bool, per_image: bool, reduction: str) -> Array:
    """Hard Dice (``dice``) or IoU per (sample,) class from the hard TP, FP, FN, then reduced."""
    checks.check_reduction(fn, reduction)
    xp = namespace(fn, pred=pred, true=true)
    if tuple(pred.shape) != tuple(true.shape):
        raise ValueError(f"{fn}: true must have the shape of pred {tuple(pred.shape)}, got {tuple(true.shape)}")
    if pred.ndim < 2:
        raise ValueError(f"{fn}: pred must have a batch axis and at least one more, got shape {tuple(pred.shape)}")
    dtype = default_float(xp, device(pred))
    poison = None
    if num_classes is None:
        psum, tp, tsum = _mask_sums(fn, pred, true, class_axis, ignore_index, dtype, xp=xp)
    else:
        psum, tp, tsum, poison = _label_sums(fn, pred, true, num_classes, ignore_index, dtype, xp=xp)
    if not include_background and tp.shape[1] > 1:
        psum, tp, tsum = psum[:, 1:], tp[:, 1:], tsum[:, 1:]
    if not per_image:
        psum, tp, tsum = (xp.sum(v, axis=0) for v in (psum, tp, tsum))
    num, den = (2 * tp, psum + tsum) if dice else (tp, psum + tsum - tp)
    # counts: a non-zero denominator is at least 1, so eps=1 clamps nothing; a class empty in both scores 1
    score = ratio(num, den, den == 0, smooth=0.0, eps=1.0, xp=xp)
    return poisoned(reduce_classes(score, weight=None, reduction=reduction, xp=xp), poison)


def _label_sums(fn: str, pred: Array, true: Array, num_classes: int, ignore_index: int | None, dtype: object, *,
                xp: ModuleType) -> tuple[Array, Array, Array, Array | None]:
    """Per-sample, per-class pixel counts of integer label maps: predicted, both, reference; each (N, C).

    And the poison of the scores: None on concrete labels (checked), NaN if a traced label is out of range.
    """
    num_classes = checks.check_count(fn, "num_classes", num_classes, 1)
    for name, m in (("pred", pred), ("true", true)):
        if not xp.isdtype(m.dtype, "integral"):
            raise TypeError(f"{fn}: {name} must hold integer labels when num_classes is given, got {m.dtype}")
    ignore_index = checks.check_ignore_index(fn, ignore_index, True)
    true, valid = drop_ignored(true, ignore_index, xp=xp)
    pred = pred if valid is None else xp.where(valid, pred, 0)
    checks.check_integer_range(fn, "true", true, 0, num_classes - 1, xp=xp)
    checks.check_integer_range(fn, "pred", pred, 0, num_classes - 1, xp=xp)
    poison = None
    if not (is_concrete(true) and is_concrete(pred)):  # traced: a label out of range makes the scores NaN
        bad = (true < 0) | (true >= num_classes) | (pred < 0) | (pred >= num_classes)
        poison = poison_if(bad, xp.zeros((), dtype=dtype, device=device(pred)), xp=xp)
    n, m = true.shape[0], math.prod(true.shape[1:])
    hot = xp.reshape(one_hot(pred, num_classes=num_classes, axis=1, dtype=dtype, xp=xp), (n, num_classes, m))
    psum, tp, tsum = class_sums(hot, xp.reshape(true, (n, m)), None if valid is None else xp.reshape(valid, (n, m)),
                                axis=1, xp=xp)
    return psum, tp, tsum, poison


def _mask_sums(fn: str, pred: Array, true: Array, class_axis: int, ignore_index: int | None, dtype: object, *,
               xp: ModuleType) -> tuple[Array, Array, Array]:
    """Per-sample, per-class pixel counts of masks: predicted, both, reference; each (N, C)."""
    if ignore_index is not None:
        raise ValueError(f"{fn}: ignore_index needs integer label maps and num_classes, got masks")
    axis = class_axis_index(fn, class_axis, pred.ndim, first_or_last=True)
    p, t = (xp.astype(foreground(m, xp=xp), dtype) for m in (pred, true))
    if axis != 1:
        p, t = moveaxis(p, source=axis, destination=1, xp=xp), moveaxis(t, source=axis, destination=1, xp=xp)
    spatial = tuple(range(2, p.ndim))
    return xp.sum(p, axis=spatial), xp.sum(p * t, axis=spatial), xp.sum(t, axis=spatial)


def dice_score(
    pred: Array, true: Array, /, *, num_classes: int | None = None, class_axis: int = 1,
    ignore_index: int | None = None, include_background: bool = True, per_image: bool = False,
    reduction: Reduction = "none",
) -> Array:
    """Dice score of hard segmentations, per class.

    Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c),  1 where class c is empty in both

    Counts sum over space, and over the batch too unless ``per_image``. A
    class absent from both prediction and reference scores 1, the losses'
    empty-class rule (MONAI's ``DiceMetric`` gives NaN, or 1 with
    ``ignore_empty=False`` only when the prediction is empty too).

    Args:
        pred: integer label maps ``(N, *spatial)`` with ``num_classes``, or masks ``(N, C, *spatial)`` /
            ``(N, *spatial, C)`` (bool, integer or floating; nonzero is foreground).
        true: the reference, ``pred``'s shape and kind.
        num_classes: the class count for label maps; None for masks.
        class_axis: 1 (default) or -1, the class axis of masks.
        ignore_index: label maps only: pixels whose reference label equals it count nowhere.
        include_background: False drops class 0 (when there are 2+ classes).
        per_image: scores per sample instead of over the batch.
        reduction: ``"none"`` (default): ``(C,)``, or ``(N, C)`` with ``per_image``; ``"mean"``/``"sum"``
            over those.

    Returns:
        The scores in the namespace's default float dtype.

    Raises:
        ValueError: shapes that differ, labels out of range (eager arrays), ``ignore_index`` with masks,
            an unknown ``reduction``.
        TypeError: floating label maps with ``num_classes``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> pred = np.array([[0, 1, 1, 0]]); true = np.array([[0, 1, 0, 0]])
        >>> tuple(round(float(v), 4) for v in pl.dice_score(pred, true, num_classes=2))
        (0.8, 0.6667)

    References:
        Dice, Measures of the amount of ecologic association between species, Ecology 1945.
        https://doi.org/10.2307/1932409
    """
    checks.check_flags("dice_score", include_background=include_background, per_image=per_image)
    return _overlap("dice_score", pred, true, True, num_classes=num_classes, class_axis=class_axis,
                    ignore_index=ignore_index, include_background=include_background, per_image=per_image,
                    reduction=reduction)


def iou_score(
    pred: Array, true: Array, /, *, num_classes: int | None = None, class_axis: int = 1,
    ignore_index: int | None = None, include_background: bool = True, per_image: bool = False,
    reduction: Reduction = "none",
) -> Array:
    """Intersection over union (Jaccard index) of hard segmentations, per class.

    IoU_c = TP_c / (TP_c + FP_c + FN_c),  1 where class c is empty in both

    Inputs, options and the empty-class rule as in ``dice_score``.

    Args:
        pred: integer label maps ``(N, *spatial)`` with ``num_classes``, or masks ``(N, C, *spatial)`` /
            ``(N, *spatial, C)`` (bool, integer or floating; nonzero is foreground).
        true: the reference, ``pred``'s shape and kind.
        num_classes: the class count for label maps; None for masks.
        class_axis: 1 (default) or -1, the class axis of masks.
        ignore_index: label maps only: pixels whose reference label equals it count nowhere.
        include_background: False drops class 0 (when there are 2+ classes).
        per_image: scores per sample instead of over the batch.
        reduction: ``"none"`` (default): ``(C,)``, or ``(N, C)`` with ``per_image``; ``"mean"``/``"sum"``
            over those.

    Returns:
        The scores in the namespace's default float dtype.

    Raises:
        ValueError: shapes that differ, labels out of range (eager arrays), ``ignore_index`` with masks,
            an unknown ``reduction``.
        TypeError: floating label maps with ``num_classes``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> pred = np.array([[0, 1, 1, 0]]); true = np.array([[0, 1, 0, 0]])
        >>> round(float(pl.iou_score(pred, true, num_classes=2, reduction="mean")), 4)
        0.5833

    References:
        Jaccard, The distribution of the flora in the alpine zone, New Phytologist 1912.
        https://doi.org/10.1111/j.1469-8137.1912.tb05611.x
    """
    checks.check_flags("iou_score", include_background=include_background, per_image=per_image)
    return _overlap("iou_score", pred, true, False, num_classes=num_classes, class_axis=class_axis,
                    ignore_index=ignore_index, include_background=include_background, per_image=per_image,
                    reduction=reduction)
