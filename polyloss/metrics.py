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
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Literal

from . import _checks as checks
from ._xp import Array, array_namespace, clip, default_float, device, min_pool, numel, one_hot, take_along_axis
from .distance import distance_transform

__all__ = ["average_surface_distance", "dice_score", "hausdorff_distance", "iou_score", "surface_dice"]

Sampling = float | Sequence[float] | None
Reduction = Literal["mean", "sum", "none"]


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #


def _check_masks(fn: str, pred: Array, true: Array, spatial_ndim: int, *, xp: ModuleType) -> None:
    if isinstance(spatial_ndim, bool) or spatial_ndim not in (1, 2, 3):
        raise ValueError(f"{fn}: spatial_ndim must be 1, 2 or 3, got {spatial_ndim!r}")
    for name, m in (("pred_mask", pred), ("true_mask", true)):
        if not (xp.isdtype(m.dtype, "bool") or xp.isdtype(m.dtype, ("integral", "real floating"))):
            raise TypeError(f"{fn}: {name} must have a boolean, integer or real floating dtype, got {m.dtype}")
        if m.ndim < spatial_ndim or 0 in m.shape[m.ndim - spatial_ndim :]:
            raise ValueError(
                f"{fn}: {name} must have at least spatial_ndim={spatial_ndim} non-empty trailing axes, "
                f"got shape {tuple(m.shape)}"
            )
    if tuple(pred.shape) != tuple(true.shape):
        raise ValueError(
            f"{fn}: true_mask must have the shape of pred_mask {tuple(pred.shape)}, got {tuple(true.shape)}"
        )


def _spacing(fn: str, sampling: Sampling, nd: int) -> tuple[float, ...]:
    """``sampling`` as one positive finite spacing per spatial axis (``distance_transform`` checks it too)."""
    if sampling is None:
        return (1.0,) * nd
    values = (sampling,) * nd if isinstance(sampling, int | float) else tuple(sampling)
    if len(values) != nd or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf for v in values
    ):
        raise ValueError(f"{fn}: sampling must be None, a positive number or {nd} positive numbers, got {sampling!r}")
    return tuple(float(v) for v in values)


def _foreground(m: Array, *, xp: ModuleType) -> Array:
    return m if xp.isdtype(m.dtype, "bool") else m != 0


def _surface(fg: Array, nd: int, dtype: Any, *, xp: ModuleType) -> Array:
    """Foreground pixels with a background face-neighbour (outside the image is background)."""
    f = xp.astype(fg, dtype)
    eroded = f
    for i in range(nd):
        window = tuple(3 if j == i else 1 for j in range(nd))
        eroded = xp.minimum(eroded, min_pool(f, window=window, pad_value=0.0, xp=xp))
    return f > eroded


class _Surfaces:
    """Both surfaces, each pixel's distance to the other surface, and the counts, for one call."""

    def __init__(self, fn: str, pred: Array, true: Array, sampling: Sampling, nd: int) -> None:
        xp = array_namespace(pred, true)
        _check_masks(fn, pred, true, nd, xp=xp)
        spacing = _spacing(fn, sampling, nd)
        self.xp, self.nd = xp, nd
        self.dtype = default_float(xp, device(pred))
        self.index_dtype = xp.__array_namespace_info__().default_dtypes(device=device(pred))["indexing"]
        self.axes = tuple(range(pred.ndim - nd, pred.ndim))
        self.diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(pred.shape[pred.ndim - nd :], spacing, strict=True)))
        self.edge_p = _surface(_foreground(pred, xp=xp), nd, self.dtype, xp=xp)
        self.edge_t = _surface(_foreground(true, xp=xp), nd, self.dtype, xp=xp)
        # distance of every pixel to the nearest surface pixel of the other mask (diagonal if it has none)
        self.to_t = distance_transform(~self.edge_t, spatial_ndim=nd, sampling=spacing, dtype=self.dtype)
        self.to_p = distance_transform(~self.edge_p, spatial_ndim=nd, sampling=spacing, dtype=self.dtype)
        self.n_p = xp.sum(xp.astype(self.edge_p, self.dtype), axis=self.axes)
        self.n_t = xp.sum(xp.astype(self.edge_t, self.dtype), axis=self.axes)

    def empty_rule(self, value: Array, *, both: float, one: float) -> Array:
        """``value`` where both surfaces exist; ``both`` where neither does, ``one`` where one does."""
        xp = self.xp
        has_p, has_t = self.n_p > 0, self.n_t > 0
        one_ = xp.asarray(one, dtype=self.dtype, device=device(value))
        return xp.where(has_p & has_t, value, xp.where(has_p | has_t, one_, both))

    def masked_sum(self, edge: Array, dist: Array) -> Array:
        return self.xp.sum(self.xp.where(edge, dist, 0.0), axis=self.axes)

    def quantile(self, edge: Array, dist: Array, count: Array, q: float | None) -> Array:
        """The ``q``-th percentile (linear, as ``numpy.percentile``) of ``dist`` over ``edge``; max if None."""
        xp = self.xp
        if q is None:
            return xp.max(xp.where(edge, dist, 0.0), axis=self.axes)  # distances are >= 0
        lead = edge.shape[: edge.ndim - self.nd]
        beyond = 2 * self.diagonal + 1  # sorts after every distance in the image, finite (no inf - inf below)
        flat = xp.reshape(xp.where(edge, dist, beyond), (*lead, -1))
        ordered = xp.sort(flat, axis=-1)
        pos = clip(count - 1, 0, None, xp=xp) * (q / 100)
        low = xp.floor(pos)
        high = xp.minimum(low + 1, clip(count - 1, 0, None, xp=xp))
        frac = pos - low

        def at(i: Array) -> Array:
            index = xp.expand_dims(xp.astype(i, self.index_dtype), axis=-1)
            return xp.squeeze(take_along_axis(ordered, index, axis=-1, xp=xp), axis=-1)

        v_low, v_high = at(low), at(high)
        return xp.where(count > 0, v_low + (v_high - v_low) * frac, 0.0)


# --------------------------------------------------------------------------- #
# Surface metrics
# --------------------------------------------------------------------------- #


def hausdorff_distance(
    pred_mask: Array,
    true_mask: Array,
    /,
    *,
    percentile: float | None = None,
    directed: bool = False,
    sampling: Sampling = None,
    spatial_ndim: int = 2,
) -> Array:
    r"""Hausdorff distance between the surfaces of two masks, or its percentile (HD95).

    d(x, B) = min_{y in dB} ||(x - y) s||;  h(A, B) = P_q {d(x, B) : x in dA}
    HD = max(h(P, T), h(T, P)), or h(P, T) alone with ``directed=True``

    dA is the surface of mask A: its foreground pixels with a background
    face-neighbour (outside the image counts as background). P_q is the
    maximum (``percentile=None``) or the q-th percentile with linear
    interpolation (``numpy.percentile``); ``percentile=95`` gives HD95.

    Empty masks: both empty gives 0, exactly one empty the image diagonal
    sqrt(sum_k (n_k s_k)^2) (MONAI: NaN and inf).

    Args:
        pred_mask: predicted mask, bool, integer or floating (nonzero is
            foreground); the trailing ``spatial_ndim`` axes are an image, the
            leading axes a batch (e.g. ``(N, C, H, W)`` one-hot).
        true_mask: the reference mask, ``pred_mask``'s shape.
        percentile: None (default) for the maximum, or q in [0, 100].
        directed: False (default): the symmetric distance; True: from the
            prediction's surface to the reference's only.
        sampling: voxel spacing s_k, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape (``(N, C)`` for one-hot ``(N, C, H, W)`` masks) in
        the namespace's default float dtype, on the masks' device.

    Raises:
        ValueError: shapes that differ, ``percentile`` outside [0, 100], a bad
            ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 4:7] = True
        >>> round(float(pl.hausdorff_distance(a, b)[0]), 4)
        2.0

    Peers: ``monai.metrics.compute_hausdorff_distance(pred, true,
    include_background=True, percentile, directed, spacing)`` on one-hot
    ``(N, C, ...)`` masks where both are non-empty.

    References:
        Huttenlocher et al., Comparing images using the Hausdorff distance, TPAMI 1993.
        https://doi.org/10.1109/34.232073
    """
    fn = "hausdorff_distance"
    if percentile is not None and not 0 <= percentile <= 100:
        raise ValueError(f"{fn}: percentile must be None or lie in [0, 100], got {percentile!r}")
    s = _Surfaces(fn, pred_mask, true_mask, sampling, spatial_ndim)
    value = s.quantile(s.edge_p, s.to_t, s.n_p, percentile)
    if not directed:
        value = s.xp.maximum(value, s.quantile(s.edge_t, s.to_p, s.n_t, percentile))
    return s.empty_rule(value, both=0.0, one=s.diagonal)


def average_surface_distance(
    pred_mask: Array,
    true_mask: Array,
    /,
    *,
    symmetric: bool = False,
    sampling: Sampling = None,
    spatial_ndim: int = 2,
) -> Array:
    r"""Average surface distance from the prediction's surface to the reference's.

    ASD = mean_{x in dP} d(x, dT);  symmetric: (sum_{dP} d(x, dT) + sum_{dT} d(x, dP)) / (|dP| + |dT|)

    Surfaces and d as in ``hausdorff_distance``; the symmetric form averages
    the distances of both surfaces together (MONAI's concatenation, not the
    mean of the two directed means). Empty masks: both empty gives 0,
    exactly one empty the image diagonal (MONAI: NaN and inf).

    Args:
        pred_mask: predicted mask (nonzero is foreground), leading axes a batch.
        true_mask: the reference mask, ``pred_mask``'s shape.
        symmetric: False (default): from the prediction to the reference; True: both ways.
        sampling: voxel spacing, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape in the namespace's default float dtype.

    Raises:
        ValueError: shapes that differ, a bad ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 3:6] = True
        >>> round(float(pl.average_surface_distance(a, b)[0]), 4)
        0.5

    Peers: ``monai.metrics.compute_average_surface_distance(pred, true,
    include_background=True, symmetric, spacing)`` where both are non-empty.

    References:
        Heimann et al., Comparison and evaluation of methods for liver
        segmentation from CT datasets, IEEE TMI 2009. https://doi.org/10.1109/TMI.2009.2013851
    """
    s = _Surfaces("average_surface_distance", pred_mask, true_mask, sampling, spatial_ndim)
    xp = s.xp
    total, count = s.masked_sum(s.edge_p, s.to_t), s.n_p
    if symmetric:
        total, count = total + s.masked_sum(s.edge_t, s.to_p), count + s.n_t
    return s.empty_rule(total / xp.where(count > 0, count, 1.0), both=0.0, one=s.diagonal)


def surface_dice(
    pred_mask: Array,
    true_mask: Array,
    /,
    *,
    tolerance: float,
    sampling: Sampling = None,
    spatial_ndim: int = 2,
) -> Array:
    r"""Normalised surface Dice (NSD) at a tolerance, counting surface pixels.

    NSD = (|{x in dP : d(x, dT) <= tau}| + |{x in dT : d(x, dP) <= tau}|) / (|dP| + |dT|)

    Surfaces and d as in ``hausdorff_distance``; each surface pixel counts
    once (MONAI's ``use_subvoxels=False``). Both masks empty gives 1 (MONAI:
    NaN); exactly one empty gives 0.

    Args:
        pred_mask: predicted mask (nonzero is foreground), leading axes a batch.
        true_mask: the reference mask, ``pred_mask``'s shape.
        tolerance: tau >= 0, in the units of ``sampling``.
        sampling: voxel spacing, a number or one per spatial axis; None: 1.
        spatial_ndim: 1, 2 (default) or 3.

    Returns:
        The leading shape in the namespace's default float dtype, in [0, 1].

    Raises:
        ValueError: shapes that differ, a negative ``tolerance``, a bad
            ``sampling`` or ``spatial_ndim``.
        TypeError: a mask dtype that is not bool, integer or floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.zeros((1, 8, 8), dtype=bool); a[0, 2:5, 2:5] = True
        >>> b = np.zeros((1, 8, 8), dtype=bool); b[0, 2:5, 4:7] = True
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
    s = _Surfaces(fn, pred_mask, true_mask, sampling, spatial_ndim)
    xp = s.xp
    close = xp.sum(xp.astype(s.edge_p & (s.to_t <= tolerance), s.dtype), axis=s.axes) + xp.sum(
        xp.astype(s.edge_t & (s.to_p <= tolerance), s.dtype), axis=s.axes
    )
    total = s.n_p + s.n_t
    return s.empty_rule(close / xp.where(total > 0, total, 1.0), both=1.0, one=0.0)


# --------------------------------------------------------------------------- #
# Overlap metrics
# --------------------------------------------------------------------------- #


def _confusion(
    fn: str, pred: Array, true: Array, *, num_classes: int | None, class_axis: int, ignore_index: int | None,
    per_image: bool, include_background: bool,
) -> tuple[Array, Array, Array, ModuleType]:
    """Hard TP, FP, FN per (sample,) class, shape (N, C) or (C,), in the default float dtype."""
    xp = array_namespace(pred, true)
    if tuple(pred.shape) != tuple(true.shape):
        raise ValueError(f"{fn}: true must have the shape of pred {tuple(pred.shape)}, got {tuple(true.shape)}")
    if pred.ndim < 2:
        raise ValueError(f"{fn}: pred must have a batch axis and at least one more, got shape {tuple(pred.shape)}")
    dtype = default_float(xp, device(pred))
    valid = None
    if num_classes is not None:  # integer label maps (N, *spatial)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"{fn}: num_classes must be a positive int or None, got {num_classes!r}")
        for name, m in (("pred", pred), ("true", true)):
            if not xp.isdtype(m.dtype, "integral"):
                raise TypeError(f"{fn}: {name} must hold integer labels when num_classes is given, got {m.dtype}")
        checks.check_ignore_index(fn, ignore_index, True)
        if ignore_index is not None:
            valid = true != ignore_index
            true, pred = xp.where(valid, true, 0), xp.where(valid, pred, 0)
        checks.check_integer_range(fn, "true", true, 0, num_classes - 1, xp=xp)
        checks.check_integer_range(fn, "pred", pred, 0, num_classes - 1, xp=xp)
        p = one_hot(pred, num_classes=num_classes, axis=1, dtype=dtype, xp=xp)
        t = one_hot(true, num_classes=num_classes, axis=1, dtype=dtype, xp=xp)
        if valid is not None:
            v = xp.expand_dims(xp.astype(valid, dtype), axis=1)
            p, t = p * v, t * v
    else:  # masks (N, C, *spatial) or (N, *spatial, C)
        if ignore_index is not None:
            raise ValueError(f"{fn}: ignore_index needs integer label maps and num_classes, got masks")
        axis = checks.normalize_axis(fn, "class_axis", class_axis, pred.ndim)
        if axis not in (1, pred.ndim - 1):
            raise ValueError(f"{fn}: class_axis must be 1 or -1, got {class_axis!r}")
        p = xp.astype(_foreground(pred, xp=xp), dtype)
        t = xp.astype(_foreground(true, xp=xp), dtype)
        if axis != 1:
            p, t = xp.moveaxis(p, axis, 1), xp.moveaxis(t, axis, 1)
    if not include_background and p.shape[1] > 1:
        p, t = p[:, 1:, ...], t[:, 1:, ...]
    axes = tuple(range(2, p.ndim)) if per_image else (0, *range(2, p.ndim))
    tp = xp.sum(p * t, axis=axes)
    return tp, xp.sum(p, axis=axes) - tp, xp.sum(t, axis=axes) - tp, xp


def _finish_score(num: Array, den: Array, reduction: str, *, xp: ModuleType) -> Array:
    """num / den, 1 where den == 0 (a class empty in both), then reduced."""
    score = xp.where(den > 0, num / xp.where(den > 0, den, 1.0), 1.0)
    if reduction == "none":
        return score
    total = xp.sum(score)
    return total if reduction == "sum" else total / max(numel(score), 1)


def dice_score(
    pred: Array,
    true: Array,
    /,
    *,
    num_classes: int | None = None,
    class_axis: int = 1,
    ignore_index: int | None = None,
    include_background: bool = True,
    per_image: bool = False,
    reduction: Reduction = "none",
) -> Array:
    r"""Dice score of hard segmentations, per class.

    Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c),  1 where class c is empty in both

    Counts sum over space, and over the batch too unless ``per_image``. A
    class absent from both prediction and reference scores 1, the losses'
    empty-class rule (MONAI's ``DiceMetric`` gives NaN, or 1 with
    ``ignore_empty=False`` only when the prediction is empty too).

    Args:
        pred: integer label maps ``(N, *spatial)`` with ``num_classes``, or
            masks ``(N, C, *spatial)`` / ``(N, *spatial, C)`` (bool, integer
            or floating; nonzero is foreground).
        true: the reference, ``pred``'s shape and kind.
        num_classes: the class count for label maps; None for masks.
        class_axis: 1 (default) or -1, the class axis of masks.
        ignore_index: label maps only: pixels whose reference label equals it
            count nowhere.
        include_background: False drops class 0 (when there are 2+ classes).
        per_image: scores per sample instead of over the batch.
        reduction: ``"none"`` (default): ``(C,)``, or ``(N, C)`` with
            ``per_image``; ``"mean"``/``"sum"`` over those.

    Returns:
        The scores in the namespace's default float dtype.

    Raises:
        ValueError: shapes that differ, labels out of range (eager arrays),
            ``ignore_index`` with masks, an unknown ``reduction``.
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
    fn = "dice_score"
    checks.check_reduction(fn, reduction)
    tp, fp, fn_, xp = _confusion(fn, pred, true, num_classes=num_classes, class_axis=class_axis,
                                 ignore_index=ignore_index, per_image=per_image, include_background=include_background)
    return _finish_score(2 * tp, 2 * tp + fp + fn_, reduction, xp=xp)


def iou_score(
    pred: Array,
    true: Array,
    /,
    *,
    num_classes: int | None = None,
    class_axis: int = 1,
    ignore_index: int | None = None,
    include_background: bool = True,
    per_image: bool = False,
    reduction: Reduction = "none",
) -> Array:
    r"""Intersection over union (Jaccard index) of hard segmentations, per class.

    IoU_c = TP_c / (TP_c + FP_c + FN_c),  1 where class c is empty in both

    Inputs, options and the empty-class rule as in ``dice_score``.

    Args:
        pred: integer label maps ``(N, *spatial)`` with ``num_classes``, or
            masks ``(N, C, *spatial)`` / ``(N, *spatial, C)``.
        true: the reference, ``pred``'s shape and kind.
        num_classes: the class count for label maps; None for masks.
        class_axis: 1 (default) or -1, the class axis of masks.
        ignore_index: label maps only: pixels whose reference label equals it count nowhere.
        include_background: False drops class 0 (when there are 2+ classes).
        per_image: scores per sample instead of over the batch.
        reduction: ``"none"`` (default): ``(C,)`` or ``(N, C)``; ``"mean"``/``"sum"`` over those.

    Returns:
        The scores in the namespace's default float dtype.

    Raises:
        ValueError: shapes that differ, labels out of range (eager arrays),
            ``ignore_index`` with masks, an unknown ``reduction``.
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
    fn = "iou_score"
    checks.check_reduction(fn, reduction)
    tp, fp, fn_, xp = _confusion(fn, pred, true, num_classes=num_classes, class_axis=class_axis,
                                 ignore_index=ignore_index, per_image=per_image, include_background=include_background)
    return _finish_score(tp, tp + fp + fn_, reduction, xp=xp)
