"""torch's native kernels for the ``_backend`` primitives: ``NATIVE``, each entry the twin of ``_backend.generic``'s.

Loaded with ``_backend`` but naming torch only inside the functions (``_torch()``
reads ``sys.modules``): ``_backend`` dispatches here only for torch tensors, so
torch is imported by then, and importing polyloss never imports torch.

Everything here must trace under ``torch.compile(fullgraph=True)`` without a
warning: no array-api-compat helper that looks the namespace up through an
``lru_cache`` (Dynamo warns that it might be silently wrong), no host kernel
while compiling, nothing mutated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import generic, policy
from .numpy import scipy_edt

Array = Any


def _torch() -> ModuleType:
    return sys.modules["torch"]


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``torch.clamp``: it takes symbolic bounds under ``torch.compile(dynamic=True)`` (a bound from a
    parameter, a default or a shape), where array-api-compat's ``clip`` calls ``math.isnan`` on them
    and breaks the graph."""
    if min is None and max is None:
        return x
    return _torch().clamp(x, min, max)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``torch.cumsum`` (array-api-compat's ``cumulative_sum`` looks the namespace up again)."""
    return _torch().cumsum(x, dim=axis)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _torch().nn.functional.log_softmax(x, dim=axis)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _torch().softmax(x, dim=axis)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    return _torch().logsumexp(x, dim=axis, keepdim=keepdims)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().nn.functional.softplus(x)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().nn.functional.logsigmoid(x)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().sigmoid(x)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """The fused ``binary_cross_entropy_with_logits`` kernel."""
    torch = _torch()
    if pos_weight is not None and not isinstance(pos_weight, torch.Tensor):
        pos_weight = torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    return torch.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight, reduction="none")


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    torch = _torch()
    if index.dtype != torch.int64:
        index = index.to(torch.int64)
    return torch.gather(x, axis, index)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """float32/float64: ``torch.sort`` of the integer key (``generic.descending_key``) with its indices."""
    torch = _torch()
    if x.dtype not in (torch.float32, torch.float64):
        return generic.sort_descending(x, stable=stable, xp=xp)
    bits = x.view(torch.int32 if x.dtype == torch.float32 else torch.int64)
    key = generic.descending_key(bits, width=8 * bits.element_size())
    perm = torch.sort(key, dim=-1, stable=stable).indices
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """The fused ``cross_entropy`` kernel."""
    torch = _torch()
    if labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    if axis != 1:
        x = torch.movedim(x, axis, 1)
    return torch.nn.functional.cross_entropy(x, labels, reduction="none")


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[float, float]:
    """``torch.aminmax``: one pass (``item()`` gives ints for integer tensors)."""
    low, high = _torch().aminmax(x)
    return low.item(), high.item()


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """The generic comparison with the tensor's own device (array-api-compat's ``device`` is cached)."""
    torch = _torch()
    hot = (labels[..., None] == torch.arange(num_classes, dtype=labels.dtype, device=labels.device)).to(dtype)
    return hot if axis in (-1, labels.ndim) else torch.movedim(hot, -1, axis)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """One custom autograd function (``torch_autograd.ClassSums``) whose backward writes ``p``'s
    gradient in one pass; the counts by a float64 ``scatter_add``."""
    torch = _torch()
    from .torch_autograd import class_sums as torch_class_sums

    num, c = labels.shape[0], p.shape[axis]
    labels = labels.to(torch.int64)
    total, labelled = torch_class_sums(p, labels, valid, axis)
    ones = torch.ones((), dtype=torch.float64, device=p.device).expand(labels.shape)
    counted = ones if valid is None else valid.to(torch.float64)
    count = torch.zeros((num, c), dtype=torch.float64, device=p.device).scatter_add(1, labels, counted)
    return total, labelled, count.to(p.dtype)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``torch.max(dim)``: both in one pass, and over a short outer axis several times faster than ``argmax``."""
    values, index = _torch().max(x, dim=axis)
    return values, index


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    torch = _torch()
    out = torch.full((num_segments,), fill, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, ids.to(torch.int64), values, "amax")


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """``torch.unbind``: a single (stacking) backward node."""
    return tuple(_torch().unbind(x, dim=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    return x.detach()


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """``max_pool{1,2,3}d`` one axis at a time (a window of 1 on the others); more axes: generic."""
    nd = len(window)
    if nd > 3:
        return generic.max_pool(x, window=window, pad_value=pad_value, xp=xp)
    return generic.each_window_axis(x, window, lambda v, axis, size: _max_along(v, axis, nd, size, pad_value))


def _max_along(x: Array, axis: int, nd: int, size: int, pad_value: float | None) -> Array:
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


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], xp: ModuleType) -> Array | None:
    """Eager CPU tensors: SciPy's EDT on a zero-copy NumPy view; ``None`` otherwise.

    While ``torch.compile`` traces, ``None``: the tracer must never call a
    host kernel (a custom op registered lazily would have to be registered
    inside the trace, and a module-level flag would become a Dynamo guard), so
    compiled graphs take the exact array-API path; so do tensors under a
    ``torch.func`` transform (a functorch wrapper has no data pointer) and
    tensors off the host (``policy.on_host``: a NumPy view would sync).
    """
    torch = _torch()
    if (not policy.on_host(fg) or torch.compiler.is_compiling()
            or torch._C._functorch.is_functorch_wrapped_tensor(fg)):
        return None
    out = scipy_edt(fg.numpy(), sampling)
    return None if out is None else torch.from_numpy(out)


def cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                  label_smoothing: float, reduction: str, xp: ModuleType) -> Array | None:
    """torch's fused ``F.cross_entropy`` of logits ``x`` (class ``axis``) at integer ``labels``.

    ``None`` for a ``weight`` that needs a gradient (learnable class weights, or one a ``torch.func``
    transform differentiates): the fused kernel does not differentiate its weight, the composed path does.
    """
    torch = _torch()
    if weight is not None and (weight.requires_grad or (not torch.compiler.is_compiling()
                                                         and torch._C._functorch.is_functorch_wrapped_tensor(weight))):
        return None
    if labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    if axis != 1:
        x = torch.movedim(x, axis, 1)
    return torch.nn.functional.cross_entropy(
        x, labels, weight=weight, ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )


def binary_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None, reduction: str,
                         xp: ModuleType) -> Array:
    """torch's fused ``F.binary_cross_entropy_with_logits`` with its own reduction (one pass, no elementwise loss)."""
    torch = _torch()
    if pos_weight is not None and not isinstance(pos_weight, torch.Tensor):
        pos_weight = torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    return torch.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight, reduction=reduction)


NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    clip, cumulative_sum, log_softmax, softmax, logsumexp, softplus, log_sigmoid, sigmoid, sigmoid_cross_entropy,
    take_along_axis, sort_descending, softmax_nll, value_range, one_hot, class_sums, max_argmax, segment_max,
    unstack, stop_gradient, max_pool, distance_transform, cross_entropy,
    binary_cross_entropy,
)}
