"""The array namespace and the primitives the array API standard lacks: native delegation.

This is the only module that names a framework. Every primitive takes the
namespace as a required keyword (``xp=``) so a loss looks it up once. Each
primitive hands a backend its fused native kernel where one exists
(``torch.nn.functional``, ``jax.nn``/``jax.lax``, ``scipy.special``,
``cupyx.scipy.special``, ``np.bincount``/``cupy.bincount``...) and delegates to
the generic array-API implementation in ``_xp_generic`` otherwise (what
array-api-strict and any other conforming namespace get). The generic core
stands alone; ``tests/test_xp.py`` checks every native path against it.

Under ``torch.compile``, nothing here calls array-api-compat's
``lru_cache``-wrapped helpers on torch tensors (``array_namespace``,
``device``, ``is_lazy_array``, ``is_torch_namespace`` all are): Dynamo traces
through such a cache and warns that it might be silently wrong. The torch
cases are answered here with ``isinstance``/module-name checks instead, and
``clip`` is ``torch.clamp`` (array-api-compat's torch ``clip`` calls
``math.isnan`` on its bounds, a graph break when a bound is symbolic under
dynamic shapes, and both it and ``cumulative_sum`` look the namespace up
again); family modules call ``clip`` and ``cumulative_sum`` from here, never
``xp.clip`` / ``xp.cumulative_sum``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast

from array_api_compat import array_namespace as _compat_array_namespace
from array_api_compat import device as _compat_device
from array_api_compat import is_cupy_namespace, is_jax_namespace, is_lazy_array, is_numpy_namespace

from . import _xp_generic as generic

try:  # optional: fused NumPy kernels; the generic path serves without SciPy
    import scipy.special as _scipy_special
except ImportError:  # pragma: no cover - exercised only where SciPy is absent
    _scipy_special = None

Array = Any

__all__ = [
    "Array",
    "array_namespace",
    "clamped_log",
    "class_sums",
    "clip",
    "cumulative_sum",
    "default_float",
    "device",
    "index_dtype",
    "is_concrete",
    "is_eager",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "max_argmax",
    "max_pool",
    "min_pool",
    "native_distance_transform",
    "native_kind",
    "numel",
    "one_hot",
    "segment_max",
    "sigmoid",
    "sigmoid_cross_entropy",
    "softmax",
    "softmax_nll",
    "softplus",
    "sort_descending",
    "stop_gradient",
    "take_along_axis",
    "unstack",
    "value_range",
    "zero_like",
]

_TORCH_NAMESPACES = frozenset({"torch", "array_api_compat.torch"})


def _backend(xp: ModuleType) -> str:
    """Which native path a namespace gets: 'torch', 'jax', 'numpy', 'cupy' or 'generic'.

    Not memoised: the checks are name comparisons (tens of ns), and a cache
    mutated while ``torch.compile`` traces costs a recompilation. torch is
    recognised by module name first, without array-api-compat's cached
    ``is_torch_namespace`` (see the module docstring).
    """
    if getattr(xp, "__name__", None) in _TORCH_NAMESPACES:
        return "torch"
    if is_jax_namespace(xp):
        return "jax"
    if is_numpy_namespace(xp) and _scipy_special is not None:
        return "numpy"
    if is_cupy_namespace(xp):
        return "cupy"
    return "generic"


def native_kind(xp: ModuleType) -> str:
    """Which native kernels serve ``xp``: 'torch', 'jax', 'numpy', 'cupy' or 'generic'.

    For private kernel modules (``_fused``) that dispatch on the backend
    without array-api-compat's cached ``is_*_namespace`` (Dynamo warns on those).
    """
    return _backend(xp)


def _torch() -> ModuleType:
    return sys.modules["torch"]


def _jax() -> ModuleType:
    return sys.modules["jax"]


def _is_tensor(x: object) -> bool:
    """True for a torch tensor, without importing torch (it is in ``sys.modules`` if ``x`` is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def array_namespace(*xs: Any) -> ModuleType:
    """The array-api-compat namespace of ``xs`` (``None`` and Python scalars ignored).

    All-torch inputs are answered without array-api-compat's cached lookup
    (see the module docstring); anything else, including mixed namespaces
    (a ``TypeError``), goes to ``array_api_compat.array_namespace``.
    """
    arrays = [x for x in xs if x is not None and not isinstance(x, bool | int | float | complex)]
    if arrays and all(_is_tensor(x) for x in arrays):
        # an import statement, not a sys.modules lookup: Dynamo would guard on sys.modules and fail that
        # guard in the very frame where array-api-compat imports its torch namespace on a first compiled call
        import array_api_compat.torch as compat_torch

        return compat_torch
    return _compat_array_namespace(*xs)


def device(x: Array, /) -> Any:
    """The device of array ``x`` (``array_api_compat.device``; a torch tensor's own ``device``)."""
    if _is_tensor(x):
        return x.device
    return _compat_device(x)


def is_eager(x: Array) -> bool:
    """True when ``x`` holds concrete values that can be read cheaply.

    False for lazy arrays (JAX, traced or not, per ``array_api_compat``) and
    for torch tensors while ``torch.compile`` traces: value checks are skipped
    there rather than breaking the graph.
    """
    if _is_tensor(x):
        return not _torch().compiler.is_compiling()
    return not is_lazy_array(x)


def _cupyx_special(name: str) -> Any:
    """``cupyx.scipy.special.<name>``, or None where this CuPy lacks it."""
    try:
        import cupyx.scipy.special as special
    except ImportError:  # pragma: no cover - CuPy without its SciPy layer
        return None
    return getattr(special, name, None)


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``x`` clipped to ``[min, max]`` (``None``: unbounded on that side); use it instead of ``xp.clip``.

    torch: ``torch.clamp``, which takes symbolic bounds under ``torch.compile(dynamic=True)``
    (a bound from a parameter, a default or a shape), where array-api-compat's ``clip``
    breaks the graph. ``x`` floating, or integer with integer bounds.
    """
    if _backend(xp) == "torch":
        if min is None and max is None:
            return x
        return _torch().clamp(x, min, max)
    return generic.clip(x, min, max, xp=xp)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Running sum of floating ``x`` along ``axis``; use it instead of ``xp.cumulative_sum``.

    torch: ``torch.cumsum`` (array-api-compat's ``cumulative_sum`` looks up the
    namespace through its cached helpers, which ``torch.compile`` warns about).
    """
    if _backend(xp) == "torch":
        return _torch().cumsum(x, dim=axis)
    return generic.cumulative_sum(x, axis=axis, xp=xp)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.log_softmax(x, dim=axis)
    if kind == "jax":
        return _jax().nn.log_softmax(x, axis=axis)
    if kind == "numpy":
        return _scipy_special.log_softmax(x, axis=axis)
    if kind == "cupy" and (native := _cupyx_special("log_softmax")) is not None:
        return native(x, axis=axis)
    return generic.log_softmax(x, axis=axis, xp=xp)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum for stability."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().softmax(x, dim=axis)
    if kind == "jax":
        return _jax().nn.softmax(x, axis=axis)
    if kind == "numpy":
        return _scipy_special.softmax(x, axis=axis)
    if kind == "cupy" and (native := _cupyx_special("softmax")) is not None:
        return native(x, axis=axis)
    return generic.softmax(x, axis=axis, xp=xp)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    """``log(sum(exp(x), axis))`` without overflow."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().logsumexp(x, dim=axis, keepdim=keepdims)
    if kind == "jax":
        return _jax().nn.logsumexp(x, axis=axis, keepdims=keepdims)
    return generic.logsumexp(x, axis=axis, keepdims=keepdims, xp=xp)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(1 + exp(x))``, exact for large ``|x|``."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.softplus(x)
    if kind == "jax":
        return _jax().nn.softplus(x)
    return generic.softplus(x, xp=xp)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite at ``|x| = 1e4``."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.logsigmoid(x)
    if kind == "jax":
        return _jax().nn.log_sigmoid(x)
    if kind == "numpy":
        return _scipy_special.log_expit(x)
    if kind == "cupy" and (native := _cupyx_special("log_expit")) is not None:
        return native(x)
    return generic.log_sigmoid(x, xp=xp)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``1 / (1 + exp(-x))`` without overflow in either tail."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().sigmoid(x)
    if kind == "jax":
        return _jax().nn.sigmoid(x)
    if kind == "numpy":
        return _scipy_special.expit(x)
    if kind == "cupy" and (native := _cupyx_special("expit")) is not None:
        return native(x)
    return generic.sigmoid(x, xp=xp)


def clamped_log(p: Array, /, *, xp: ModuleType) -> Array:
    """``log(p)`` clamped below at -100, as ``torch.nn.functional.binary_cross_entropy``.

    ``p`` is first clipped to the smallest normal number of its dtype so that
    ``p = 0`` yields a finite value and a zero (not NaN) gradient.
    """
    tiny = xp.finfo(p.dtype).smallest_normal
    return clip(xp.log(clip(p, tiny, None, xp=xp)), -100.0, None, xp=xp)


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Gather ``x`` along ``axis`` at ``index`` (same ndim, size 1 on ``axis``).

    ``index`` must be in range: callers replace ignored labels first, since
    torch wraps out-of-range indices and JAX fills them with NaN.
    """
    if _backend(xp) == "torch":
        torch = _torch()
        if index.dtype != torch.int64:
            index = index.to(torch.int64)
        return torch.gather(x, axis, index)
    return generic.take_along_axis(x, index, axis=axis, xp=xp)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """Each row of real ``x`` (last axis) in descending order, and the permutation that sorts it.

    Returns ``(values, perm)`` with ``values == take_along_axis(x, perm, axis=-1)``,
    differentiable in ``x``. ``stable=True`` keeps equal values in their
    original order (the packed path below always does).

    Integers sort faster than floats on every backend here, so each value
    is bitcast to a same-width signed integer whose order is the reverse of
    the float order (``_descending_int_key``, float32 and float64; other
    dtypes take ``argsort``). torch sorts that key with its indices (``torch.sort`` always
    returns them). NumPy's and XLA's index-carrying sorts (``argsort``, a
    multi-operand ``lax.sort``) are several times slower than their
    single-operand integer sorts, so for float32 the int32 key is packed with
    the index into one int64 (key high, index low), sorted alone, and the
    index read back from the low half. JAX without x64 builds that int64
    under ``jax.enable_x64`` (JAX >= 0.8 mixes widths in one program).
    float64 rows use ``lax.sort`` with an index operand on JAX and
    ``argsort`` elsewhere. Timings: ``benchmarks/lovasz.py``.
    """
    kind = _backend(xp)
    wide = x.dtype in (xp.float32, xp.float64)
    float32 = x.dtype == xp.float32 and x.shape[-1] < 2**31
    if kind == "torch" and wide:
        perm = _torch().sort(_descending_int_key(x, kind=kind), dim=-1, stable=stable).indices
    elif kind == "numpy" and float32:
        perm = _packed_argsort(_descending_int_key(x, kind=kind), xp=xp)
    elif kind == "jax" and float32 and hasattr(_jax(), "enable_x64"):
        with _jax().enable_x64(True):
            perm = xp.astype(_packed_argsort(_descending_int_key(x, kind=kind), xp=xp), xp.int32)
    elif kind == "jax" and wide:
        lax = _jax().lax
        index = lax.broadcasted_iota(xp.int32, x.shape, x.ndim - 1)
        perm = lax.sort(
            (_descending_int_key(x, kind=kind), index), dimension=x.ndim - 1, num_keys=1, is_stable=stable
        )[1]
    else:
        return generic.sort_descending(x, stable=stable, xp=xp)
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def _descending_int_key(x: Array, /, *, kind: str) -> Array:
    """A signed integer of ``x``'s width whose ascending order is ``x``'s descending order.

    Bitcast the float, flip the magnitude bits of negative values (IEEE order
    then equals signed integer order), and complement (reversing the order).
    """
    if kind == "jax":
        jnp = _jax().numpy
        bits = _jax().lax.bitcast_convert_type(x, jnp.int32 if x.dtype == jnp.float32 else jnp.int64)
        width = 8 * bits.dtype.itemsize
    elif kind == "torch":
        torch = _torch()
        bits = x.view(torch.int32 if x.dtype == torch.float32 else torch.int64)
        width = 8 * bits.element_size()
    else:
        np = sys.modules["numpy"]
        bits = x.view(np.int32 if x.dtype == np.float32 else np.int64)
        width = 8 * bits.dtype.itemsize
    return ~(bits ^ ((bits >> (width - 1)) & ((1 << (width - 1)) - 1)))


def _packed_argsort(key: Array, /, *, xp: ModuleType) -> Array:
    """The stable ascending order of each row of int32 ``key``: one int64 sort of ``key << 32 | index``."""
    index = xp.arange(key.shape[-1], dtype=xp.int64, device=device(key))
    packed = xp.sort(xp.bitwise_left_shift(xp.astype(key, xp.int64), 32) | index, axis=-1, stable=False)
    return packed & 0xFFFFFFFF


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``-log_softmax(x, axis)`` gathered at in-range integer ``labels`` (the class axis dropped).

    Computed as ``logsumexp(x) - x[label]`` without materialising the full
    log-softmax; torch uses its fused ``cross_entropy`` kernel.
    """
    kind = _backend(xp)
    if kind == "torch":
        torch = _torch()
        if labels.dtype != torch.int64:
            labels = labels.to(torch.int64)
        if axis != 1:
            x = torch.movedim(x, axis, 1)
        return torch.nn.functional.cross_entropy(x, labels, reduction="none")
    if kind == "jax":
        index = xp.expand_dims(labels, axis=axis)
        picked = xp.squeeze(take_along_axis(x, index, axis=axis, xp=xp), axis=axis)
        m = _jax().lax.stop_gradient(xp.max(x, axis=axis, keepdims=True))
        return xp.log(xp.sum(xp.exp(x - m), axis=axis)) + xp.squeeze(m, axis=axis) - picked
    return generic.softmax_nll(x, labels, axis=axis, xp=xp)


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[int, int]:
    """``(min(x), max(x))`` of a non-empty eager integer array, as Python ints (one pass on torch)."""
    if _backend(xp) == "torch":
        low, high = _torch().aminmax(x)
        return int(low), int(high)
    return generic.value_range(x, xp=xp)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """Elementwise ``-(beta t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``, beta = ``pos_weight``.

    Uses ``(1 - t) x - (1 + (beta - 1) t) log_sigmoid(x)``; torch uses its
    fused ``binary_cross_entropy_with_logits`` kernel.
    """
    if _backend(xp) == "torch":
        torch = _torch()
        if pos_weight is not None and not isinstance(pos_weight, torch.Tensor):
            pos_weight = torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
        return torch.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight, reduction="none")
    log_p = log_sigmoid(x, xp=xp)
    if pos_weight is None:
        return (1 - t) * x - log_p
    return (1 - t) * x - (1 + (pos_weight - 1) * t) * log_p


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """One-hot encoding of in-range integer ``labels``, the class axis inserted at ``axis``.

    A label outside ``[0, num_classes)`` gives a row of zeros. torch: the same
    comparison with the tensor's own device (the generic path asks
    array-api-compat for it, which ``torch.compile`` warns about).
    """
    if _backend(xp) == "torch":
        torch = _torch()
        hot = (labels[..., None] == torch.arange(num_classes, dtype=labels.dtype, device=labels.device)).to(dtype)
        return hot if axis in (-1, labels.ndim) else torch.movedim(hot, -1, axis)
    return generic.one_hot(labels, num_classes=num_classes, axis=axis, dtype=dtype, xp=xp)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """Per-sample, per-class sums for integer labels, without a float one-hot.

    ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2),
    ``labels`` ``(N, M)`` in ``[0, C)``, ``valid`` the mask of pixels that
    count (or None). Returns ``(N, C)`` arrays in ``p``'s dtype: the sum of
    ``p`` over valid pixels, the sum of ``p`` over the valid pixels labelled
    with each class (both differentiable in ``p``), and the pixel count of
    each class.

    A sequential float32 scatter-add drifts by about 1e-5 relative over 10^6
    values, so scatters accumulate in float64. torch: one custom autograd
    function (``_torch_autograd.ClassSums``) whose backward writes ``p``'s
    gradient in one pass; NumPy and CuPy: the probability at each label into
    ``bincount`` (O(N * M)). JAX and other namespaces take the generic path:
    compare each label with every class and sum (a tree reduction; XLA fuses
    the comparison into it).
    """
    kind = _backend(xp)
    if kind == "torch":
        torch = _torch()
        from ._torch_autograd import class_sums as torch_class_sums

        num, c = labels.shape[0], p.shape[axis]
        labels = labels.to(torch.int64)
        total, labelled = torch_class_sums(p, labels, valid, axis)
        ones = torch.ones((), dtype=torch.float64, device=p.device).expand(labels.shape)
        counted = ones if valid is None else valid.to(torch.float64)
        count = torch.zeros((num, c), dtype=torch.float64, device=p.device).scatter_add(1, labels, counted)
        return total, labelled, count.to(p.dtype)
    if kind in ("numpy", "cupy"):
        return _bincount_class_sums(p, labels, valid, axis=axis, xp=xp)
    return generic.class_sums(p, labels, valid, axis=axis, xp=xp)


def _bincount_class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
                         ) -> tuple[Array, Array, Array]:
    """``class_sums`` with ``bincount`` over ``label + C * sample`` (NumPy and CuPy; no autodiff there)."""
    native = sys.modules["numpy" if _backend(xp) == "numpy" else "cupy"]
    num, c, pix = labels.shape[0], p.shape[axis], 3 - axis
    total = xp.sum(p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, 0), axis=pix)
    at_label = xp.squeeze(take_along_axis(p, xp.expand_dims(labels, axis=axis), axis=axis, xp=xp), axis=axis)
    offsets = xp.arange(num, dtype=xp.int64, device=device(labels))[:, None] * c
    flat = xp.reshape(xp.astype(labels, xp.int64) + offsets, (-1,))
    weight = xp.ones(labels.shape, dtype=xp.float64, device=device(labels)) if valid is None else (
        xp.astype(valid, xp.float64))

    def per_class(w: Array) -> Array:
        sums = native.bincount(flat, weights=xp.reshape(w, (-1,)), minlength=num * c)
        return xp.astype(xp.reshape(sums, (num, c)), p.dtype)

    return total, per_class(xp.astype(at_label, xp.float64) * weight), per_class(weight)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``(max(x, axis), argmax(x, axis))``, the first maximum on ties.

    torch's ``max(dim)`` returns both in one pass, and over a short outer axis
    runs several times faster than its ``argmax``.
    """
    if _backend(xp) == "torch":
        values, index = _torch().max(x, dim=axis)
        return values, index
    return generic.max_argmax(x, axis=axis, xp=xp)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    """``out[j] = max(fill, max(values[i] for ids[i] == j))`` for 1-D ``values`` and in-range ``ids``: (num_segments,).

    Not differentiable (used on indices). torch scatters with ``scatter_reduce``,
    JAX with ``segment_max``, NumPy with ``maximum.at``, CuPy with
    ``cupyx.scatter_max``; other namespaces compare every id against every segment.
    """
    kind = _backend(xp)
    if kind == "torch":
        torch = _torch()
        out = torch.full((num_segments,), fill, dtype=values.dtype, device=values.device)
        return out.scatter_reduce(0, ids.to(torch.int64), values, "amax")
    if kind == "jax":
        jax = _jax()
        return jax.numpy.maximum(jax.ops.segment_max(values, ids, num_segments=num_segments), fill)
    if kind == "numpy":
        out = xp.full((num_segments,), fill, dtype=values.dtype)
        sys.modules["numpy"].maximum.at(out, ids, values)
        return out
    if kind == "cupy":
        import cupyx

        out = xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
        cupyx.scatter_max(out, ids, values)
        return out
    return generic.segment_max(values, ids, num_segments=num_segments, fill=fill, xp=xp)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """The slices of ``x`` along ``axis``; torch's ``unbind`` has a single (stacking) backward node."""
    if _backend(xp) == "torch":
        return tuple(_torch().unbind(x, dim=axis))
    return generic.unstack(x, axis=axis, xp=xp)


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` with no gradient flowing back (identity where there is no autodiff)."""
    kind = _backend(xp)
    if kind == "torch":
        return x.detach()
    if kind == "jax":
        return _jax().lax.stop_gradient(x)
    return generic.stop_gradient(x, xp=xp)


def numel(x: Array) -> int:
    """The element count of ``x`` (shapes are static on every supported backend)."""
    return math.prod(x.shape)


def default_float(xp: ModuleType, dev: Any) -> Any:
    """The namespace's default real floating dtype on ``dev`` (float32 for torch and JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]


# --------------------------------------------------------------------------- #
# Morphology (moving max/min) and the native distance-transform kernel
# --------------------------------------------------------------------------- #


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving maximum over the trailing ``len(window)`` axes: centred odd windows, stride 1, same shape.

    Outside the array counts as ``pad_value``; ``None`` leaves it out (as
    -inf, what ``torch.nn.functional.max_pool2d`` padding does). A box window
    is separable, so it runs one axis at a time: O(size * sum(window)).
    torch: ``max_pool{1,2,3}d``; JAX: ``lax.reduce_window``; otherwise the
    maximum of shifted slices. Differentiable (the gradient goes to the
    maximum). ``x`` must be floating.
    """
    kind = _backend(xp)
    nd = len(window)
    if kind not in ("torch", "jax") or (kind == "torch" and nd > 3):
        return generic.max_pool(x, window=window, pad_value=pad_value, xp=xp)
    for i, size in enumerate(window):
        if size == 1:
            continue
        axis = x.ndim - nd + i
        x = _torch_max_along(x, axis, nd, size, pad_value) if kind == "torch" else _jax_max_along(
            x, axis, size, pad_value)
    return x


def min_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving minimum (erosion), ``-max_pool(-x)``; outside counts as ``pad_value`` (``None``: left out)."""
    return -max_pool(-x, window=window, pad_value=None if pad_value is None else -pad_value, xp=xp)


def _torch_max_along(x: Array, axis: int, nd: int, size: int, pad_value: float | None) -> Array:
    """``max_pool{nd}d`` over the trailing ``nd`` axes with a window of ``size`` along ``axis`` only."""
    functional = _torch().nn.functional
    shape = x.shape
    flat = x.reshape((-1, *shape[x.ndim - nd :]))  # (batch, *spatial): the unbatched layout of max_pool
    kernel = [1] * nd
    kernel[axis - (x.ndim - nd)] = size
    padding = [k // 2 for k in kernel]
    if pad_value is not None:
        pads = [p for k in reversed(padding) for p in (k, k)]
        flat = functional.pad(flat, pads, value=pad_value)
        padding = [0] * nd
    pool = (functional.max_pool1d, functional.max_pool2d, functional.max_pool3d)[nd - 1]
    return pool(flat, tuple(kernel), stride=1, padding=tuple(padding)).reshape(shape)


def _jax_max_along(x: Array, axis: int, size: int, pad_value: float | None) -> Array:
    jax = _jax()
    jnp = jax.numpy
    half = size // 2
    padding = [(0, 0)] * x.ndim
    if pad_value is None:
        padding[axis] = (half, half)
    else:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (half, half)
        x = jnp.pad(x, widths, constant_values=pad_value)
    dims = [1] * x.ndim
    dims[axis] = size
    # a Python -inf init lets JAX see the max monoid, whose reduce_window is differentiable
    return jax.lax.reduce_window(x, -math.inf, jax.lax.max, tuple(dims), (1,) * x.ndim, padding)


def native_distance_transform(fg: Array, /, *, sampling: tuple[float, ...], xp: ModuleType) -> Array | None:
    """A host kernel's exact EDT of boolean ``fg`` over its trailing ``len(sampling)`` axes, or ``None``.

    - NumPy: ``scipy.ndimage.distance_transform_edt``, one C call per image
      (a single call with a long spacing on a batch axis is exact too but
      about 2.5x slower);
    - eager torch CPU tensors: the same SciPy kernel on a zero-copy NumPy
      view. While ``torch.compile`` traces, ``None``: the tracer must never
      call a host kernel (a custom op registered lazily would have to be
      registered inside the trace, and a module-level flag would become a
      Dynamo guard), so compiled graphs take the exact array-API path;
    - CuPy: ``cupyx.scipy.ndimage.distance_transform_edt`` per image.

    ``None`` elsewhere (JAX, torch on other devices, array-api-strict, no
    SciPy): the caller takes the array-API path. An image without zeros gets
    the kernel's value (measured from outside the image); the caller replaces
    it. Returns float64 on ``fg``'s device.
    """
    nd = len(sampling)
    kind = _backend(xp)
    if kind == "numpy" or (kind == "generic" and is_numpy_namespace(xp)):
        ndimage = _scipy_ndimage()
        return None if ndimage is None else xp.asarray(_per_image_edt(ndimage, fg, sampling))
    if kind == "torch":
        if fg.device.type != "cpu" or _scipy_ndimage() is None:
            return None
        if _torch().compiler.is_compiling():
            return None
        return _torch().from_numpy(_per_image_edt(_scipy_ndimage(), fg.numpy(), sampling))
    if kind == "cupy":  # pragma: no cover - needs a CUDA device
        try:
            import cupyx.scipy.ndimage as cupy_ndimage
        except ImportError:
            return None
        images = xp.reshape(fg, (-1, *fg.shape[fg.ndim - nd :]))
        out = xp.stack([cupy_ndimage.distance_transform_edt(image, sampling=sampling) for image in images])
        return xp.reshape(out, fg.shape)
    return None


def _scipy_ndimage() -> ModuleType | None:
    try:
        import scipy.ndimage as ndimage
    except ImportError:  # pragma: no cover - exercised only where SciPy is absent
        return None
    return cast(ModuleType, ndimage)


def _per_image_edt(ndimage: Any, fg: Any, sampling: Sequence[float]) -> Any:
    """SciPy's EDT of each image of a NumPy-convertible boolean array, as a float64 NumPy array."""
    np = sys.modules["numpy"]
    nd = len(sampling)
    images = np.reshape(np.asarray(fg), (-1, *fg.shape[fg.ndim - nd :]))
    out = np.empty(images.shape, dtype=np.float64)
    for image, dist in zip(images, out, strict=True):
        ndimage.distance_transform_edt(image, sampling=tuple(sampling), distances=dist)
    return np.reshape(out, fg.shape)


# --------------------------------------------------------------------------- #
# Concrete values and index dtypes (the segmentation-input layer's value checks)
# --------------------------------------------------------------------------- #


def is_concrete(x: Array) -> bool:
    """True when ``x``'s values can be read now: eager arrays, and JAX arrays that are not traced.

    ``array_api_compat.is_lazy_array`` is True for every JAX array, concrete
    or not, so ``is_eager`` skips value checks on eager JAX too; a JAX array
    is only unreadable inside a transformation, where it is a ``Tracer``.
    """
    if type(x).__module__.startswith("jax"):
        return not isinstance(x, _jax().core.Tracer)
    return is_eager(x)


def index_dtype(xp: ModuleType, dev: Any) -> Any:
    """The namespace's default index dtype on ``dev`` (int64, or int32 for JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]


def native_cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                         label_smoothing: float, reduction: str, xp: ModuleType) -> Array | None:
    """torch's fused ``cross_entropy`` of logits ``x`` (class ``axis``, at least 2-D) at integer ``labels``.

    Labels lie in ``[0, C)`` or equal ``ignore_index``; ``weight``, ``label_smoothing`` and
    ``reduction`` are torch's. None for any other namespace (the caller composes the generic kernels).
    """
    if _backend(xp) != "torch":
        return None
    torch = _torch()
    if labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    if axis != 1:
        x = torch.movedim(x, axis, 1)
    return torch.nn.functional.cross_entropy(
        x, labels, weight=weight, ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )
