"""JAX's native kernels for the ``_backend`` primitives (``jax.nn``, ``jax.lax``, ``jax.ops``): ``NATIVE``.

Each entry is the twin of ``_backend.generic``'s function of the same name.
Loaded with ``_backend`` but naming JAX only inside the functions (``_jax()``
reads ``sys.modules``): ``_backend`` dispatches here only for JAX arrays, so JAX
is imported by then, and importing polyloss never imports JAX. Every entry
traces under ``jax.jit``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import generic
from .generic import Array


def _jax() -> ModuleType:
    return sys.modules["jax"]


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _jax().nn.log_softmax(x, axis=axis)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _jax().nn.softmax(x, axis=axis)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    return _jax().nn.logsumexp(x, axis=axis, keepdims=keepdims)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    return _jax().nn.softplus(x)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _jax().nn.log_sigmoid(x)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _jax().nn.sigmoid(x)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """float32: ``generic.packed_argsort`` of the int32 key, as int64 under ``jax.enable_x64`` (JAX >= 0.8
    mixes widths in one program); float64 (or float32 without ``enable_x64``): ``lax.sort`` of the key
    with an index operand; other dtypes: generic. XLA's index-carrying sort is several times slower than
    its single-operand integer sort; timings in ``benchmarks/lovasz.py``."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    if x.dtype not in (jnp.float32, jnp.float64):
        return generic.sort_descending(x, stable=stable, xp=xp)
    if x.dtype == jnp.float32 and x.shape[-1] < 2**31 and hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            perm = xp.astype(generic.packed_argsort(_descending_key(x), xp=xp), xp.int32)
    else:
        index = lax.broadcasted_iota(xp.int32, x.shape, x.ndim - 1)
        perm = lax.sort((_descending_key(x), index), dimension=x.ndim - 1, num_keys=1, is_stable=stable)[1]
    return xp.take_along_axis(x, perm, axis=-1), perm


def _descending_key(x: Array) -> Array:
    jnp = _jax().numpy
    bits = _jax().lax.bitcast_convert_type(x, jnp.int32 if x.dtype == jnp.float32 else jnp.int64)
    return generic.descending_key(bits, width=8 * bits.dtype.itemsize)


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``logsumexp(x) - x[label]`` with the shift held out of the gradient (``lax.stop_gradient``)."""
    index = xp.expand_dims(labels, axis=axis)
    picked = xp.squeeze(xp.take_along_axis(x, index, axis=axis), axis=axis)
    m = _jax().lax.stop_gradient(xp.max(x, axis=axis, keepdims=True))
    return xp.log(xp.sum(xp.exp(x - m), axis=axis)) + xp.squeeze(m, axis=axis) - picked


def softmax_cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                          label_smoothing: float, reduction: str, xp: ModuleType) -> Array:
    """The generic composition over this table's ``softmax_nll`` and ``jax.nn.log_softmax``, which hold the
    shift out of the gradient (the generic ones differentiate through the maximum: about 2x the backward)."""
    return generic.cross_entropy_with(x, labels, nll=softmax_nll, log_softmax=log_softmax, axis=axis, weight=weight,
                                      ignore_index=ignore_index, label_smoothing=label_smoothing,
                                      reduction=reduction, xp=xp)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    jax = _jax()
    return jax.numpy.maximum(jax.ops.segment_max(values, ids, num_segments=num_segments), fill)


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    return _jax().lax.stop_gradient(x)


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """``lax.reduce_window`` one axis at a time."""
    return generic.each_window_axis(x, window, lambda v, axis, size: _max_along(v, axis, size, pad_value))


def _max_along(x: Array, axis: int, size: int, pad_value: float | None) -> Array:
    jax = _jax()
    half = size // 2
    padding = [(0, 0)] * x.ndim
    if pad_value is None:
        padding[axis] = (half, half)
    else:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (half, half)
        x = jax.numpy.pad(x, widths, constant_values=pad_value)
    dims = [1] * x.ndim
    dims[axis] = size
    # a Python -inf init lets JAX see the max monoid, whose reduce_window is differentiable
    return jax.lax.reduce_window(x, -math.inf, jax.lax.max, tuple(dims), (1,) * x.ndim, padding)


NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    log_softmax, softmax, logsumexp, softplus, log_sigmoid, sigmoid, sort_descending, softmax_nll,
    softmax_cross_entropy, segment_max, stop_gradient, max_pool,
)}
