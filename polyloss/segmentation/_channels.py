"""The one input adapter of the losses that look at space (``topology``, ``boundary``): channels first.

``spatial_inputs`` validates through ``_core.inputs.prepare`` (the one place
for ``mode``, ``class_axis``, ``ignore_index``, ``reduction`` and the
targets) and ``check_spatial_layout``, then lays everything out as
``(N, C, *spatial)`` with 1 (or 2) to 3 spatial axes, the shape the pooling of
``_skeleton`` and the distance fields work on: the scores, the
probabilities, the targets as floats (a one-hot for integer labels, zero
where left out) and the pixel weights (an optional mask times the ignore
mask). Private kernels: names without a leading underscore because the
module itself is private.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._backend import Array, moveaxis, one_hot, sigmoid, softmax, stop_gradient
from .._core.inputs import REGION, Labels, Segmentation, check_spatial_layout, pixel_weight, prepare

__all__ = ["Channels", "activate", "spatial_inputs", "target_channels"]


class Channels(NamedTuple):
    """Validated inputs of one call, channels first."""

    x: Array  # y_pred in the compute dtype (logits or probabilities as given), (N, C, *spatial)
    p: Array  # probabilities (N, C, *spatial)
    t: Array  # targets as floats (N, C, *spatial), 0 where left out, no gradient
    w: Array | None  # pixel weights, 0 where left out: (N, 1, *spatial) for labels without a mask, else
    #                  (N, C, *spatial); None: every pixel, weight 1
    dtype: Any  # the dtype to return
    xp: ModuleType
    axis: int  # y_pred's class axis, non-negative (to lay out other arrays of its layout alike)
    poison: Array | None = None  # add to the reduced loss (``poisoned``): NaN where a traced target is out of domain


def spatial_inputs(caller: str, y_pred: Any, y_true: Any, /, *, mode: Any, class_axis: Any, from_logits: bool,
                   ignore_index: Any, reduction: Any, mask: Any = None, min_spatial: int = 1) -> Channels:
    """Validate once (``prepare``, ``check_spatial_layout``) and lay the inputs out as ``(N, C, *spatial)``.

    ``mask``: optional pixel weights (``_core.inputs.mask_weight``), multiplied
    into ``w``.
    """
    seg = prepare(caller, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                  ignore_index=ignore_index, reduction=reduction, layout=REGION)
    check_spatial_layout(caller, seg.x, seg.axis, seg.mode, min_spatial=min_spatial)
    xp = seg.xp
    p = activate(seg.x, seg.axis, seg.mode, from_logits, xp=xp)
    t, w = target_channels(seg, mask)
    return Channels(_first(seg.x, seg), _first(p, seg), t, w, seg.dtype, xp, seg.axis, seg.poison)


def activate(x: Array, axis: int, mode: str, from_logits: bool, *, xp: ModuleType) -> Array:
    """Probabilities: softmax over ``axis`` (multiclass) or sigmoid, unless ``x`` holds them already."""
    if not from_logits:
        return x
    return softmax(x, axis=axis, xp=xp) if mode == "multiclass" else sigmoid(x, xp=xp)


def target_channels(seg: Segmentation, mask: Any = None, /) -> tuple[Array, Array | None]:
    """The target as floats ``(N, C, *spatial)`` (a one-hot for labels), zero and without gradient where
    left out, and the pixel weights channels first (see ``Channels.w``; None: all count, weight 1)."""
    xp, target = seg.xp, seg.target
    if isinstance(target, Labels):
        t = one_hot(target.labels, num_classes=seg.num_classes, axis=seg.axis, dtype=seg.x.dtype, xp=xp)
    else:
        t = target.target
    w = pixel_weight(seg, mask, seg.x)
    if w is not None:
        t = xp.where(w > 0, t, 0.0)
    return _first(stop_gradient(t, xp=xp), seg), None if w is None else _first(w, seg)


def _first(v: Array, seg: Segmentation) -> Array:
    """``v`` (``seg.x``'s layout) with the class axis moved to 1."""
    return v if seg.axis == 1 else moveaxis(v, source=seg.axis, destination=1, xp=seg.xp)
