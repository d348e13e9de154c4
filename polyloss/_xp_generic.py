"""The generic core of the primitives: standard array API calls only, for any conforming namespace.

Each function here is the complete, numerically stable implementation of a
primitive that ``_xp`` exports; ``_xp`` delegates to a backend's fused kernel
where one exists and to this module otherwise (array-api-strict, CuPy where
no native kernel serves, any other namespace). ``tests/test_xp.py`` checks
every native path against these on every backend, so this module names no
framework and must stay free of backend-specific calls.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from array_api_compat import device

Array = Any


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``x`` clipped to ``[min, max]`` (``None``: unbounded on that side)."""
    return xp.clip(x, min, max)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Running sum of ``x`` along ``axis`` (the first entry is ``x``'s first)."""
    return xp.cumulative_sum(x, axis=axis)


def clamped_log(p: Array, /, *, xp: ModuleType) -> Array:
    """``log(p)`` clamped below at -100, ``p`` first clipped to the smallest normal number (see ``_xp``)."""
    tiny = xp.finfo(p.dtype).smallest_normal
    return clip(xp.log(clip(p, tiny, None, xp=xp)), -100.0, None, xp=xp)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability."""
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum for stability."""
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    """``log(sum(exp(x), axis))`` without overflow."""
    m = xp.max(x, axis=axis, keepdims=True)
    out = m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(1 + exp(x))``, exact for large ``|x|``."""
    return xp.logaddexp(x, zero_like(x, xp=xp))


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite at ``|x| = 1e4``."""
    return -softplus(-x, xp=xp)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``1 / (1 + exp(-x))`` without overflow in either tail."""
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Gather ``x`` along ``axis`` at in-range ``index`` (same ndim, size 1 on ``axis``)."""
    return xp.take_along_axis(x, index, axis=axis)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """``(values, perm)``: each row of real ``x`` (last axis) in descending order, and its permutation."""
    perm = xp.argsort(x, axis=-1, descending=True, stable=stable)
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``logsumexp(x, axis) - x[label]`` at in-range integer ``labels`` (the class axis dropped)."""
    index = xp.expand_dims(labels, axis=axis)
    picked = xp.squeeze(take_along_axis(x, index, axis=axis, xp=xp), axis=axis)
    return logsumexp(x, axis=axis, xp=xp) - picked


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[int, int]:
    """``(min(x), max(x))`` of a non-empty eager integer array, as Python ints."""
    return int(xp.min(x)), int(xp.max(x))


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """Elementwise ``(1 - t) x - (1 + (beta - 1) t) log_sigmoid(x)``, beta = ``pos_weight``."""
    log_p = log_sigmoid(x, xp=xp)
    if pos_weight is None:
        return (1 - t) * x - log_p
    return (1 - t) * x - (1 + (pos_weight - 1) * t) * log_p


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """One-hot encoding of in-range integer ``labels``, the class axis inserted at ``axis``."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    hot = xp.astype(labels[..., None] == classes, dtype)
    if axis in (-1, labels.ndim):
        return hot
    return xp.moveaxis(hot, -1, axis)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """``(total, labelled, count)``, each ``(N, C)``: see ``_xp.class_sums``.

    Compares each label with every class and sums (a tree reduction;
    XLA fuses the comparison into it): O(N * C * M) work.
    """
    c, pix = p.shape[axis], 3 - axis
    total = xp.sum(p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, zero_like(p, xp=xp)),
                   axis=pix)
    classes = xp.reshape(xp.arange(c, device=device(p)), (c, 1) if axis == 1 else (c,))
    hits = xp.expand_dims(labels, axis=axis) == classes
    if valid is not None:
        hits = hits & xp.expand_dims(valid, axis=axis)
    labelled = xp.sum(xp.where(hits, p, zero_like(p, xp=xp)), axis=pix)
    return total, labelled, xp.sum(xp.astype(hits, p.dtype), axis=pix)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``(max(x, axis), argmax(x, axis))``, the first maximum on ties."""
    return xp.max(x, axis=axis), xp.argmax(x, axis=axis)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    """``out[j] = max(fill, max(values[i] for ids[i] == j))``: every id compared with every segment."""
    if values.shape[0] == 0:
        return xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
    hits = ids[:, None] == xp.arange(num_segments, dtype=ids.dtype, device=device(ids))
    return xp.max(xp.where(hits, values[:, None], fill), axis=0)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """The slices of ``x`` along ``axis``."""
    return tuple(xp.unstack(x, axis=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` itself: a namespace without autodiff has no gradient to stop."""
    return x


def max_along(x: Array, /, *, axis: int, size: int, pad_value: float | None, xp: ModuleType) -> Array:
    """Moving maximum along one ``axis`` (centred odd window ``size``): the maximum of shifted slices."""
    half = size // 2
    n = x.shape[axis]
    fill = -math.inf if pad_value is None else pad_value
    edge = xp.full((*x.shape[:axis], half, *x.shape[axis + 1 :]), fill, dtype=x.dtype, device=device(x))
    padded = xp.concat([edge, x, edge], axis=axis)
    windows = [(*(slice(None),) * axis, slice(shift, shift + n), ...) for shift in range(size)]
    out = padded[windows[0]]
    for window in windows[1:]:
        out = xp.maximum(out, padded[window])
    return out


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving maximum over the trailing ``len(window)`` axes, one separable axis at a time."""
    for i, size in enumerate(window):
        if size != 1:
            x = max_along(x, axis=x.ndim - len(window) + i, size=size, pad_value=pad_value, xp=xp)
    return x


def min_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving minimum, ``-max_pool(-x)``."""
    return -max_pool(-x, window=window, pad_value=None if pad_value is None else -pad_value, xp=xp)
