"""The array namespace and the primitives the array API standard lacks.

This is the only module that names a framework. Every primitive takes the
namespace as a required keyword (``xp=``) so a loss looks it up once. Where a
backend has a fused native kernel (``torch.nn.functional``, ``jax.nn``,
``scipy.special``) the primitive uses it; otherwise it falls back to a
numerically stable composition of standard functions, which is what
array-api-strict, CuPy and any other conforming namespace get.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from array_api_compat import (
    array_namespace,
    device,
    is_cupy_namespace,
    is_jax_namespace,
    is_lazy_array,
    is_numpy_namespace,
    is_torch_array,
    is_torch_namespace,
)

try:  # optional: fused NumPy kernels; the generic path serves without SciPy
    import scipy.special as _scipy_special
except ImportError:  # pragma: no cover - exercised only where SciPy is absent
    _scipy_special = None

Array = Any

__all__ = [
    "Array",
    "array_namespace",
    "class_sums",
    "clamped_log",
    "default_float",
    "device",
    "is_eager",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "max_argmax",
    "max_pool",
    "min_pool",
    "native_distance_transform",
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


def _backend(xp: ModuleType) -> str:
    """Which fast path a namespace gets: 'torch', 'jax', 'numpy' or 'generic'.

    Not memoised: the checks are name comparisons (tens of ns), and a cache
    mutated while ``torch.compile`` traces costs a recompilation.
    """
    if is_torch_namespace(xp):
        return "torch"
    if is_jax_namespace(xp):
        return "jax"
    if is_numpy_namespace(xp) and _scipy_special is not None:
        return "numpy"
    return "generic"


def _torch() -> ModuleType:
    return sys.modules["torch"]


def _jax() -> ModuleType:
    return sys.modules["jax"]


def is_eager(x: Array) -> bool:
    """True when ``x`` holds concrete values that can be read cheaply.

    False for lazy arrays (JAX, traced or not, per ``array_api_compat``) and
    for torch tensors while ``torch.compile`` traces: value checks are skipped
    there rather than breaking the graph.
    """
    if is_lazy_array(x):
        return False
    if is_torch_array(x):
        return not _torch().compiler.is_compiling()
    return True


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.log_softmax(x, dim=axis)
    if kind == "jax":
        return _jax().nn.log_softmax(x, axis=axis)
    if kind == "numpy":
        return _scipy_special.log_softmax(x, axis=axis)
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum for stability."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().softmax(x, dim=axis)
    if kind == "jax":
        return _jax().nn.softmax(x, axis=axis)
    if kind == "numpy":
        return _scipy_special.softmax(x, axis=axis)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    """``log(sum(exp(x), axis))`` without overflow."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().logsumexp(x, dim=axis, keepdim=keepdims)
    if kind == "jax":
        return _jax().nn.logsumexp(x, axis=axis, keepdims=keepdims)
    m = xp.max(x, axis=axis, keepdims=True)
    out = m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(1 + exp(x))``, exact for large ``|x|``."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.softplus(x)
    if kind == "jax":
        return _jax().nn.softplus(x)
    return xp.logaddexp(x, zero_like(x, xp=xp))


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite at ``|x| = 1e4``."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().nn.functional.logsigmoid(x)
    if kind == "jax":
        return _jax().nn.log_sigmoid(x)
    if kind == "numpy":
        return _scipy_special.log_expit(x)
    return -softplus(-x, xp=xp)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``1 / (1 + exp(-x))`` without overflow in either tail."""
    kind = _backend(xp)
    if kind == "torch":
        return _torch().sigmoid(x)
    if kind == "jax":
        return _jax().nn.sigmoid(x)
    if kind == "numpy":
        return _scipy_special.expit(x)
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))


def clamped_log(p: Array, /, *, xp: ModuleType) -> Array:
    """``log(p)`` clamped below at -100, as ``torch.nn.functional.binary_cross_entropy``.

    ``p`` is first clipped to the smallest normal number of its dtype so that
    ``p = 0`` yields a finite value and a zero (not NaN) gradient.
    """
    tiny = xp.finfo(p.dtype).smallest_normal
    return xp.clip(xp.log(xp.clip(p, tiny, None)), -100.0, None)


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
    return xp.take_along_axis(x, index, axis=axis)


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
        perm = xp.argsort(x, axis=-1, descending=True, stable=stable)
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
    index = xp.expand_dims(labels, axis=axis)
    picked = xp.squeeze(take_along_axis(x, index, axis=axis, xp=xp), axis=axis)
    if kind == "jax":
        m = _jax().lax.stop_gradient(xp.max(x, axis=axis, keepdims=True))
        return xp.log(xp.sum(xp.exp(x - m), axis=axis)) + xp.squeeze(m, axis=axis) - picked
    return logsumexp(x, axis=axis, xp=xp) - picked


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[int, int]:
    """``(min(x), max(x))`` of a non-empty eager integer array, as Python ints."""
    if _backend(xp) == "torch":
        low, high = _torch().aminmax(x)
        return int(low), int(high)
    return int(xp.min(x)), int(xp.max(x))


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
    """One-hot encoding of in-range integer ``labels``, the class axis inserted at ``axis``."""
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

    A sequential float32 scatter-add drifts by about 1e-5 relative over 10^6
    values, so scatters accumulate in float64. torch: one custom autograd
    function (``_torch_autograd.ClassSums``) whose backward writes ``p``'s
    gradient in one pass; NumPy: the probability at each label into
    ``np.bincount``. JAX and other namespaces compare each label with every
    class and sum (a tree reduction; XLA fuses the comparison into it).
    """
    kind = _backend(xp)
    num, c, pix = labels.shape[0], p.shape[axis], 3 - axis
    if kind == "torch":
        torch = _torch()
        from ._torch_autograd import ClassSums

        labels = labels.to(torch.int64)
        total, labelled = ClassSums.apply(p, labels, valid, axis)
        ones = torch.ones((), dtype=torch.float64, device=p.device).expand(labels.shape)
        counted = ones if valid is None else valid.to(torch.float64)
        count = torch.zeros((num, c), dtype=torch.float64, device=p.device).scatter_add(1, labels, counted)
        return total, labelled, count.to(p.dtype)
    total = xp.sum(p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, 0), axis=pix)
    if kind == "numpy":
        np = sys.modules["numpy"]
        at_label = np.squeeze(take_along_axis(p, np.expand_dims(labels, axis), axis=axis, xp=xp), axis=axis)
        flat = (np.asarray(labels, dtype=np.int64) + np.arange(num)[:, None] * c).reshape(-1)
        weight = 1.0 if valid is None else valid

        def per_class(w: Array) -> Array:
            return xp.asarray(np.bincount(flat, weights=w.reshape(-1), minlength=num * c).reshape(num, c),
                              dtype=p.dtype)

        return total, per_class(at_label * weight), per_class(np.broadcast_to(weight, labels.shape))
    classes = xp.reshape(xp.arange(c, device=device(p)), (c, 1) if axis == 1 else (c,))
    hits = xp.expand_dims(labels, axis=axis) == classes
    if valid is not None:
        hits = hits & xp.expand_dims(valid, axis=axis)
    labelled = xp.sum(xp.where(hits, p, zero_like(p, xp=xp)), axis=pix)
    return total, labelled, xp.sum(xp.astype(hits, p.dtype), axis=pix)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``(max(x, axis), argmax(x, axis))``, the first maximum on ties.

    torch's ``max(dim)`` returns both in one pass, and over a short outer axis
    runs several times faster than its ``argmax``.
    """
    if _backend(xp) == "torch":
        values, index = _torch().max(x, dim=axis)
        return values, index
    return xp.max(x, axis=axis), xp.argmax(x, axis=axis)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    """``out[j] = max(fill, max(values[i] for ids[i] == j))`` for 1-D ``values`` and in-range ``ids``: (num_segments,).

    Not differentiable (used on indices). torch scatters with ``scatter_reduce``,
    JAX with ``segment_max``, NumPy with ``maximum.at``; other namespaces
    compare every id against every segment.
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
    if values.shape[0] == 0:
        return xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
    hits = ids[:, None] == xp.arange(num_segments, dtype=ids.dtype, device=device(ids))
    return xp.max(xp.where(hits, values[:, None], fill), axis=0)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """The slices of ``x`` along ``axis``; torch's ``unbind`` has a single (stacking) backward node."""
    if _backend(xp) == "torch":
        return _torch().unbind(x, dim=axis)
    return tuple(xp.unstack(x, axis=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` with no gradient flowing back (identity where there is no autodiff)."""
    kind = _backend(xp)
    if kind == "torch":
        return x.detach()
    if kind == "jax":
        return _jax().lax.stop_gradient(x)
    return x


def numel(x: Array) -> int:
    """The element count of ``x`` (shapes are static on every supported backend)."""
    return math.prod(x.shape)


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
    for i, size in enumerate(window):
        if size == 1:
            continue
        axis = x.ndim - nd + i
        if kind == "torch" and nd <= 3:
            x = _torch_max_along(x, axis, nd, size, pad_value)
        elif kind == "jax":
            x = _jax_max_along(x, axis, size, pad_value)
        else:
            x = _sliced_max_along(x, axis, size, pad_value, xp=xp)
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


def _sliced_max_along(x: Array, axis: int, size: int, pad_value: float | None, *, xp: ModuleType) -> Array:
    half = size // 2
    n = x.shape[axis]
    fill = -math.inf if pad_value is None else pad_value
    edge = xp.full((*x.shape[:axis], half, *x.shape[axis + 1 :]), fill, dtype=x.dtype, device=device(x))
    padded = xp.concat([edge, x, edge], axis=axis)
    lead = (slice(None),) * axis
    windows = [(*lead, slice(shift, shift + n), ...) for shift in range(size)]
    out = padded[windows[0]]
    for window in windows[1:]:
        out = xp.maximum(out, padded[window])
    return out


def default_float(xp: ModuleType, dev: Any) -> Any:
    """The namespace's default real floating dtype on ``dev`` (float32 for torch and JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]


def native_distance_transform(fg: Array, /, *, sampling: tuple[float, ...], xp: ModuleType) -> Array | None:
    """A host kernel's exact EDT of boolean ``fg`` over its trailing ``len(sampling)`` axes, or ``None``.

    - NumPy: ``scipy.ndimage.distance_transform_edt``, one C call per image
      (a single call with a long spacing on a batch axis is exact too but
      about 2.5x slower);
    - torch CPU tensors: the same SciPy kernel registered as the custom op
      ``polyloss::distance_transform_edt`` (with a fake kernel), so eager
      calls run it directly and ``torch.compile`` puts one opaque node in
      the graph, for static and dynamic shapes, instead of tracing a host call;
    - CuPy: ``cupyx.scipy.ndimage.distance_transform_edt`` per image.

    ``None`` elsewhere (JAX, torch on other devices, array-api-strict, no
    SciPy): the caller takes the array-API path. An image without zeros gets
    the kernel's value (measured from outside the image); the caller replaces
    it. Returns float64 on ``fg``'s device.
    """
    nd = len(sampling)
    if is_numpy_namespace(xp):
        ndimage = _scipy_ndimage()
        return None if ndimage is None else xp.asarray(_per_image_edt(ndimage, fg, sampling))
    if is_torch_namespace(xp):
        if fg.device.type != "cpu" or _scipy_ndimage() is None:
            return None
        return _torch_edt_op()(fg, list(sampling))
    if is_cupy_namespace(xp):  # pragma: no cover - needs a CUDA device
        try:
            import cupyx.scipy.ndimage as cupy_ndimage  # type: ignore[import-not-found]
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
    return ndimage


def _per_image_edt(ndimage: Any, fg: Any, sampling: Sequence[float]) -> Any:
    """SciPy's EDT of each image of a NumPy-convertible boolean array, as a float64 NumPy array."""
    np = sys.modules["numpy"]
    nd = len(sampling)
    images = np.reshape(np.asarray(fg), (-1, *fg.shape[fg.ndim - nd :]))
    out = np.empty(images.shape, dtype=np.float64)
    for image, dist in zip(images, out, strict=True):
        ndimage.distance_transform_edt(image, sampling=tuple(sampling), distances=dist)
    return np.reshape(out, fg.shape)


_TORCH_EDT_OP: Any = None


def _torch_edt_op() -> Any:
    """The custom op ``polyloss::distance_transform_edt(Tensor fg, float[] sampling) -> Tensor`` (float64).

    Registered on first use (the package imports no framework eagerly).
    """
    global _TORCH_EDT_OP
    if _TORCH_EDT_OP is None:
        torch = _torch()

        def kernel(fg: Any, sampling: list[float]) -> Any:
            return torch.from_numpy(_per_image_edt(_scipy_ndimage(), fg.numpy(), sampling))

        def fake(fg: Any, sampling: list[float]) -> Any:
            return fg.new_empty(fg.shape, dtype=torch.float64)

        op = torch.library.custom_op(
            "polyloss::distance_transform_edt", kernel, mutates_args=(), device_types="cpu",
            schema="(Tensor fg, float[] sampling) -> Tensor",
        )
        op.register_fake(fake)
        _TORCH_EDT_OP = op
    return _TORCH_EDT_OP


# --------------------------------------------------------------------------- #
# Appended by the segmentation-input layer (polyloss/_inputs.py)
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
