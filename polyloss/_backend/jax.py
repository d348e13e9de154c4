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


def unpermute(x: Array, perm: Array, /, *, xp: ModuleType) -> Array:
    """One scatter along the last axis (``.at[].set`` with unique indices)."""
    jnp = _jax().numpy
    rows = jnp.indices(perm.shape, sparse=True)[:-1]
    index = (*rows, perm)
    return jnp.empty_like(x).at[index].set(x, unique_indices=True)


def kth_largest(x: Array, k: Array, /, *, xp: ModuleType) -> Array:
    """float32/float64: ``generic.kth_largest_key`` on the bits, no sort (XLA's CPU sort is slow)."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    if x.dtype not in (jnp.float32, jnp.float64):
        return generic.kth_largest(x, k, xp=xp)
    itype = jnp.int32 if x.dtype == jnp.float32 else jnp.int64
    width = 8 * jnp.dtype(itype).itemsize
    key = generic.ascending_key(lax.bitcast_convert_type(x + 0.0, itype), width=width)
    t = generic.ascending_key(generic.kth_largest_key(key, k, width=width, xp=xp), width=width)
    return lax.bitcast_convert_type(t, x.dtype)


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


def while_loop(cond: Callable[[tuple[Array, ...]], Array], body: Callable[[tuple[Array, ...]], tuple[Array, ...]],
               init: tuple[Array, ...], /, *, xp: ModuleType) -> tuple[Array, ...]:
    """``jax.lax.while_loop``: one XLA loop, traced once, the condition read on the device."""
    return tuple(_jax().lax.while_loop(cond, lambda state: tuple(body(state)), tuple(init)))


NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    log_softmax, softmax, logsumexp, softplus, log_sigmoid, sigmoid, sort_descending, unpermute, kth_largest,
    softmax_nll, softmax_cross_entropy, segment_max, stop_gradient, max_pool, while_loop,
)}


# --------------------------------------------------------------------------- #
# Fused region sums: a custom_vjp built on first use (importing polyloss never imports JAX)
# --------------------------------------------------------------------------- #

_FUSED: dict[str, Any] = {}


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """``jax.custom_vjp`` saving the logits only: the backward recomputes the activation, which XLA fuses into
    the closed-form gradient (``generic.fused_class_sums`` gives it). Differentiable again (``grad`` of
    ``grad``): the backward is written in JAX operations."""
    if "sums" not in _FUSED:
        _FUSED["sums"] = _make_fused_class_sums()
    sums: tuple[Array, Array, Array] = _FUSED["sums"](x, target, valid, axis, activation == "sigmoid", squared)
    return sums


def _fused_parts(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool
                 ) -> tuple[Array, Array, Array | None]:
    """``p``, the targets in ``x``'s dtype (labels one-hot by a comparison XLA fuses into its consumer) and the
    mask in ``x``'s rank."""
    jax = _jax()
    jnp = jax.numpy
    p = jax.nn.sigmoid(x) if use_sigmoid else jax.nn.softmax(x, axis=axis)
    if target.ndim == 3:
        return p, target.astype(x.dtype), valid
    classes = jnp.arange(x.shape[axis]).reshape((-1, 1) if axis == 1 else (-1,))
    t = (jnp.expand_dims(target, axis) == classes).astype(x.dtype)
    return p, t, None if valid is None else jnp.expand_dims(valid, axis)


def _make_fused_class_sums() -> Any:
    jax = _jax()
    jnp = jax.numpy

    def forward(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool, squared: bool
                ) -> tuple[Array, Array, Array]:
        p, t, m = _fused_parts(x, target, valid, axis, use_sigmoid)
        if m is not None:
            p, t = jnp.where(m, p, 0), jnp.where(m, t, 0)
        pix = 3 - axis
        if squared:
            return jnp.sum(p * p, axis=pix), jnp.sum(p * t, axis=pix), jnp.sum(t * t, axis=pix)
        return jnp.sum(p, axis=pix), jnp.sum(p * t, axis=pix), jnp.sum(t, axis=pix)

    sums = jax.custom_vjp(forward, nondiff_argnums=(3, 4, 5))

    def fwd(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool, squared: bool) -> Any:
        return forward(x, target, valid, axis, use_sigmoid, squared), (x, target, valid)

    def bwd(axis: int, use_sigmoid: bool, squared: bool, res: Any, cotangents: Any) -> Any:
        x, target, valid = res
        b, a, _ = cotangents
        pix = 3 - axis
        p, t, m = _fused_parts(x, target, valid, axis, use_sigmoid)
        a, b = jnp.expand_dims(a, pix), jnp.expand_dims(b, pix)
        w = a * t + (2 * b * p if squared else b)
        if m is not None:
            w = jnp.where(m, w, 0)
        g = p * (1 - p) * w if use_sigmoid else p * (w - jnp.sum(p * w, axis=axis, keepdims=True))
        return g, None, None

    sums.defvjp(fwd, bwd)
    return sums


NATIVE[fused_class_sums.__name__] = fused_class_sums


def fused_class_sums_nll(x: Array, labels: Array, valid: Array | None, weight: Array | None, /, *, axis: int,
                         gamma: float, squared: bool, xp: ModuleType) -> tuple[Array, Array, Array, Array]:
    """One ``log_softmax``, ``p`` its exponential, and both terms in JAX operations that XLA differentiates:
    it shares the softmax between the terms and fuses both backwards into one pass (``fused_class_sums``'s
    custom_vjp beside a second softmax for the pixel term took 2.2x the time and 1.5x the memory)."""
    log_p = log_softmax(x, axis=axis, xp=xp)
    sums = generic.sums_of_probabilities(xp.exp(log_p), labels, valid, axis=axis, squared=squared,
                                         class_sums=generic.class_sums, xp=xp)
    return (*sums, generic.focal_label_sums(log_p, labels, valid, weight, axis=axis, gamma=gamma, xp=xp))


NATIVE[fused_class_sums_nll.__name__] = fused_class_sums_nll

