"""Segmentation inputs laid out channels first, for the losses that look at space (``topology``).

``channels_first`` validates through ``_inputs.prepare`` (the one place for
``mode``, ``class_axis``, ``ignore_index``, ``reduction`` and the targets),
then lays everything out as ``(N, C, *spatial)`` with 1 to 3 spatial axes,
the shape the pooling of ``_skeleton`` works on: the scores, the
probabilities, the targets as floats (a one-hot for integer labels, ignored
pixels zeroed) and the mask of valid pixels. Private kernels: names without
a leading underscore because the module itself is private.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._backend import Array, one_hot, sigmoid, softmax, stop_gradient
from .._core.inputs import Labels, Segmentation, prepare

__all__ = ["Channels", "channels_first", "check_layout", "target_channels"]


class Channels(NamedTuple):
    """Validated inputs of one call, channels first."""

    x: Array  # y_pred in the compute dtype (logits or probabilities as given), (N, C, *spatial)
    p: Array  # probabilities (N, C, *spatial)
    t: Array  # targets as floats (N, C, *spatial), ignored pixels zeroed, no gradient
    valid: Array | None  # 1 where the pixel counts, (N, 1, *spatial) for labels, (N, C, *spatial) else; None: all
    dtype: Any  # the dtype to return
    xp: ModuleType


def channels_first(fn: str, y_pred: Any, y_true: Any, /, *, mode: Any, class_axis: Any, from_logits: bool,
                   ignore_index: Any, reduction: Any) -> Channels:
    """Validate once (``_inputs.prepare``) and lay the inputs out as ``(N, C, *spatial)``."""
    seg = prepare(fn, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                  ignore_index=ignore_index, reduction=reduction, region=True)
    check_layout(seg)
    xp, x = seg.xp, seg.x
    if seg.axis != 1:
        x = xp.moveaxis(x, seg.axis, 1)
    p = x
    if from_logits:
        p = softmax(x, axis=1, xp=xp) if mode == "multiclass" else sigmoid(x, xp=xp)
    t, valid = target_channels(seg)
    return Channels(x, p, t, valid, seg.dtype, xp)


def target_channels(seg: Segmentation) -> tuple[Array, Array | None]:
    """The target as floats ``(N, C, *spatial)`` (a one-hot for labels), zero and without gradient where
    ignored, and the float mask of valid pixels, ``(N, 1, *spatial)`` for labels (None: all count)."""
    xp, target, dtype = seg.xp, seg.target, seg.x.dtype
    if isinstance(target, Labels):
        t = one_hot(target.labels, num_classes=seg.num_classes, axis=1, dtype=dtype, xp=xp)
        valid = None if target.valid is None else xp.expand_dims(xp.astype(target.valid, dtype), axis=1)
    else:
        t = target.target if seg.axis == 1 else xp.moveaxis(target.target, seg.axis, 1)
        valid = target.valid
        if valid is not None:
            valid = xp.astype(valid if seg.axis == 1 else xp.moveaxis(valid, seg.axis, 1), dtype)
    if valid is not None:
        t = t * valid
    return stop_gradient(t, xp=xp), valid


def check_layout(seg: Segmentation) -> None:
    """``(N, C, *spatial)`` (or channels last) with 1 to 3 spatial axes; one channel in binary mode."""
    shape = tuple(seg.x.shape)
    if not 3 <= len(shape) <= 5:
        raise ValueError(f"{seg.fn}: y_pred must have shape (N, C, *spatial) with 1 to 3 spatial axes, got {shape}")
    if seg.mode == "binary" and shape[seg.axis] != 1:
        raise ValueError(f"{seg.fn}: mode='binary' needs one channel along the class axis {seg.axis}, got "
                         f"{shape[seg.axis]}")
