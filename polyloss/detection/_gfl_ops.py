"""Kernels of the generalized focal family shared with the YOLO loss: the DFL per side and the integral decode.

Private kernels: no validation, inputs already promoted, the namespace as ``xp=``.
"""

from __future__ import annotations

from types import ModuleType

from .._backend import Array, clip, device, index_dtype, log_softmax, softmax, take_along_axis


def distribution_focal(x: Array, y: Array, /, *, xp: ModuleType) -> Array:
    """DFL of bin logits ``x`` ``(..., n)`` at targets ``y`` ``(...)``, elementwise; ``y`` is clipped to [0, n - 1].

    -((y_{i+1} - y) log S_i + (y - y_i) log S_{i+1}), y_i = floor(y) (at most n - 2), S = softmax(x). A NaN
    target reads bin 0 and gives NaN (the weights keep it).
    """
    n = x.shape[-1]
    nan = xp.isnan(y)
    clipped = clip(xp.where(nan, 0, y), 0, n - 1, xp=xp)
    left = clip(xp.floor(clipped), 0, n - 2, xp=xp)
    y = xp.where(nan, y, clipped)
    index = xp.astype(left, index_dtype(xp, device(x)))[..., None]
    log_s = log_softmax(x, axis=-1, xp=xp)
    log_left = xp.squeeze(take_along_axis(log_s, index, axis=-1, xp=xp), axis=-1)
    log_right = xp.squeeze(take_along_axis(log_s, index + 1, axis=-1, xp=xp), axis=-1)
    return -((left + 1 - y) * log_left + (y - left) * log_right)


def integral(x: Array, /, *, xp: ModuleType) -> Array:
    """The expected bin sum_i i softmax(x)_i over the last axis of bin logits ``x``."""
    bins = xp.arange(x.shape[-1], dtype=x.dtype, device=device(x))
    return xp.sum(softmax(x, axis=-1, xp=xp) * bins, axis=-1)
