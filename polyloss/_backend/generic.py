"""The generic core of the primitives: standard array API calls only, for any conforming namespace.

Each primitive here is complete and numerically stable on its own and calls
only its siblings in this module. ``_backend`` serves it unchanged to every
backend whose native table (``_backend.<backend>.NATIVE``) lacks an entry of
the same name (array-API-strict, and any other conforming namespace, get
only these) and otherwise hands the call to that entry, which has this
function's name and signature. ``tests/test_xp.py`` checks every native entry
against its twin here on every backend, so this module names no framework.

The last section holds array-API building blocks that native entries share
(the sort key, the packed sort, the one-axis moving window, the sigmoid
cross entropy from a given ``log_sigmoid``): they are not primitives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

from array_api_compat import device

Array = Any
"""An array of any namespace that conforms to the array API standard (the one declaration of the alias)."""


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``x`` clipped to ``[min, max]`` (``None``: unbounded on that side); ``x`` floating, or integer
    with integer bounds."""
    return xp.clip(x, min, max)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Running sum of floating ``x`` along ``axis`` (the first entry is ``x``'s first)."""
    return xp.cumulative_sum(x, axis=axis)


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


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """Elementwise ``-(beta t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``, beta = ``pos_weight``."""
    return cross_entropy_of_log_sigmoid(x, t, log_sigmoid(x, xp=xp), pos_weight=pos_weight)


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Gather ``x`` along ``axis`` at ``index`` (same ndim, size 1 on ``axis``).

    ``index`` must be in range: callers replace ignored labels first, since
    torch wraps out-of-range indices and JAX fills them with NaN.
    """
    return xp.take_along_axis(x, index, axis=axis)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """Each row of real ``x`` (last axis) in descending order, and the permutation that sorts it.

    Returns ``(values, perm)`` with ``values == take_along_axis(x, perm, axis=-1)``,
    differentiable in ``x``. ``stable=True`` keeps equal values in their
    original order.
    """
    perm = xp.argsort(x, axis=-1, descending=True, stable=stable)
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``-log_softmax(x, axis)`` at in-range integer ``labels`` (the class axis dropped), computed as
    ``logsumexp(x) - x[label]`` without the full log-softmax."""
    index = xp.expand_dims(labels, axis=axis)
    picked = xp.squeeze(take_along_axis(x, index, axis=axis, xp=xp), axis=axis)
    return logsumexp(x, axis=axis, xp=xp) - picked


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[float, float]:
    """``(min(x), max(x))`` of a non-empty concrete real array, as Python numbers (ints for integer arrays)."""
    number = int if xp.isdtype(x.dtype, "integral") else float
    return number(xp.min(x)), number(xp.max(x))


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """One-hot encoding of integer ``labels``, the class axis inserted at ``axis``; a label outside
    ``[0, num_classes)`` gives a row of zeros."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    hot = xp.astype(labels[..., None] == classes, dtype)
    if axis in (-1, labels.ndim):
        return hot
    return xp.moveaxis(hot, -1, axis)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """Per-sample, per-class sums for integer labels, without a float one-hot.

    ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2),
    ``labels`` ``(N, M)`` in ``[0, C)``, ``valid`` the mask of pixels that
    count (or None). Returns ``(N, C)`` arrays in ``p``'s dtype: the sum of
    ``p`` over valid pixels, the sum of ``p`` over the valid pixels labelled
    with each class (both differentiable in ``p``), and the pixel count of
    each class.

    Here each label is compared with every class and summed: O(N * C * M)
    work, a tree reduction into which XLA fuses the comparison. Native
    scatters accumulate in float64 (a sequential float32 scatter-add drifts
    by about 1e-5 relative over 10^6 values).
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
    """``out[j] = max(fill, max(values[i] for ids[i] == j))`` for 1-D ``values`` and in-range ``ids``:
    ``(num_segments,)``. Not differentiable (used on indices); here every id meets every segment."""
    if values.shape[0] == 0:
        return xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
    hits = ids[:, None] == xp.arange(num_segments, dtype=ids.dtype, device=device(ids))
    return xp.max(xp.where(hits, values[:, None], fill), axis=0)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """The slices of ``x`` along ``axis``."""
    return tuple(xp.unstack(x, axis=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` with no gradient flowing back: ``x`` itself, a namespace without autodiff has none to stop."""
    return x


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving maximum over the trailing ``len(window)`` axes: centred odd windows, stride 1, same shape.

    Outside the array counts as ``pad_value``; ``None`` leaves it out (as
    -inf, what ``torch.nn.functional.max_pool2d`` padding does). A box window
    is separable, so it runs one axis at a time, O(size * sum(window)); here
    each axis takes the maximum of shifted slices. Differentiable (the
    gradient goes to the maximum). ``x`` must be floating.
    """
    return each_window_axis(x, window, lambda v, axis, size: _max_along(v, axis, size, pad_value, xp=xp))


def _max_along(x: Array, axis: int, size: int, pad_value: float | None, /, *, xp: ModuleType) -> Array:
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


# --------------------------------------------------------------------------- #
# Building blocks shared by native entries (array API code, not primitives)
# --------------------------------------------------------------------------- #


def each_window_axis(x: Array, window: tuple[int, ...], along: Callable[[Array, int, int], Array]) -> Array:
    """``x = along(x, axis, size)`` for each trailing axis whose window ``size`` exceeds 1 (a box is separable)."""
    for i, size in enumerate(window):
        if size != 1:
            x = along(x, x.ndim - len(window) + i, size)
    return x


def cross_entropy_of_log_sigmoid(x: Array, t: Array, log_p: Array, /, *, pos_weight: Array | float | None) -> Array:
    """The sigmoid cross entropy of logits ``x`` from ``log_p = log_sigmoid(x)``.

    ``log(1 - sigmoid(x)) = log_p - x``, so the loss is
    ``(1 - t) x - (1 + (beta - 1) t) log_p`` with beta = ``pos_weight``.
    """
    if pos_weight is None:
        return (1 - t) * x - log_p
    return (1 - t) * x - (1 + (pos_weight - 1) * t) * log_p


def descending_key(bits: Array, /, *, width: int) -> Array:
    """From a float array's bits (viewed as the same-width signed integer): an integer whose ascending
    order is the floats' descending order.

    Flip the magnitude bits of negative values (IEEE order then equals signed
    integer order), and complement (reversing the order). Integers sort faster
    than floats on every backend here.
    """
    return ~(bits ^ ((bits >> (width - 1)) & ((1 << (width - 1)) - 1)))


def packed_argsort(key: Array, /, *, xp: ModuleType) -> Array:
    """The stable ascending order of each row of int32 ``key``: one int64 sort of ``key << 32 | index``.

    Index-carrying sorts (NumPy's ``argsort``, a multi-operand ``lax.sort``)
    are several times slower than a single-operand integer sort; the index
    is read back from the low half.
    """
    index = xp.arange(key.shape[-1], dtype=xp.int64, device=device(key))
    packed = xp.sort(xp.bitwise_left_shift(xp.astype(key, xp.int64), 32) | index, axis=-1, stable=False)
    return packed & 0xFFFFFFFF
