"""The array namespace and the primitives the array API standard lacks: native delegation over a generic core.

Three layers, one module each:

- ``_xp_generic``: every primitive in standard array API calls, complete on
  its own (what array-api-strict and any other conforming namespace get);
- ``_native_torch``, ``_native_jax``, ``_native_numpy`` (SciPy),
  ``_native_cupy``: each a table ``NATIVE`` of the backend's fused kernels,
  keyed by primitive name, each entry with its generic twin's signature;
- this module: the namespace helpers (``array_namespace``, ``device``,
  ``native_kind``, ``is_concrete``, ``index_dtype``...) and one dispatch per
  primitive, which asks the backend's table for the primitive and falls
  back to the generic one. ``min_pool`` and ``clamped_log`` are composed
  here from dispatched primitives.

Every primitive takes the namespace as a required keyword (``xp=``) so a
loss looks it up once. ``tests/test_xp.py`` enumerates the tables and checks
every entry against its generic twin on every backend present. Only this
module and the ``_native_*`` ones name a framework (besides
``_fused_torch``/``_torch_autograd``).

Under ``torch.compile``, nothing here calls array-api-compat's
``lru_cache``-wrapped helpers on torch tensors (``array_namespace``,
``device``, ``is_lazy_array``, ``is_torch_namespace`` all are): Dynamo traces
through such a cache and warns that it might be silently wrong. The torch
cases are answered with ``isinstance``/module-name checks instead, the
tables are built once at import (a dict filled while Dynamo traces would be
a guard that fails on the next call), and family modules call ``clip`` and
``cumulative_sum`` from here (``torch.clamp``/``torch.cumsum`` on torch),
never ``xp.clip``/``xp.cumulative_sum``.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar, cast

from array_api_compat import array_namespace as _compat_array_namespace
from array_api_compat import device as _compat_device
from array_api_compat import is_cupy_namespace, is_jax_namespace, is_lazy_array, is_numpy_namespace

from . import _native_cupy, _native_jax, _native_numpy, _native_torch
from . import _xp_generic as generic

Array = Any

__all__ = [
    "NATIVE",
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

# native kind -> primitive name -> kernel; built once, never mutated
NATIVE: Mapping[str, Mapping[str, Callable[..., Any]]] = {
    "torch": _native_torch.NATIVE,
    "jax": _native_jax.NATIVE,
    "numpy": _native_numpy.NATIVE,
    "cupy": _native_cupy.NATIVE,
    "generic": {},
}

_TORCH_NAMESPACES = frozenset({"torch", "array_api_compat.torch"})


def native_kind(xp: ModuleType) -> str:
    """Which table of native kernels serves ``xp``: 'torch', 'jax', 'numpy', 'cupy' or 'generic'.

    Not memoised: the checks are name comparisons (tens of ns), and a cache
    mutated while ``torch.compile`` traces costs a recompilation. torch is
    recognised by module name first, without array-api-compat's cached
    ``is_torch_namespace`` (see the module docstring).
    """
    if getattr(xp, "__name__", None) in _TORCH_NAMESPACES:
        return "torch"
    if is_jax_namespace(xp):
        return "jax"
    if is_numpy_namespace(xp):
        return "numpy"
    if is_cupy_namespace(xp):
        return "cupy"
    return "generic"


_F = TypeVar("_F", bound=Callable[..., Any])


def _delegated(generic_impl: _F) -> _F:
    """The primitive ``generic_impl`` implements: the entry of its name in ``xp``'s native table, else itself."""
    name = generic_impl.__name__

    @functools.wraps(generic_impl)
    def primitive(*args: Any, xp: ModuleType, **kwargs: Any) -> Any:
        return NATIVE[native_kind(xp)].get(name, generic_impl)(*args, xp=xp, **kwargs)

    primitive.__module__ = __name__
    return cast(_F, primitive)


# --------------------------------------------------------------------------- #
# The namespace, devices and concrete values
# --------------------------------------------------------------------------- #


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
        return not sys.modules["torch"].compiler.is_compiling()
    return not is_lazy_array(x)


def is_concrete(x: Array) -> bool:
    """True when ``x``'s values can be read now: eager arrays, and JAX arrays that are not traced.

    ``array_api_compat.is_lazy_array`` is True for every JAX array, concrete
    or not, so ``is_eager`` skips value checks on eager JAX too; a JAX array
    is only unreadable inside a transformation, where it is a ``Tracer``.
    """
    if type(x).__module__.startswith("jax"):
        return not isinstance(x, sys.modules["jax"].core.Tracer)
    return is_eager(x)


def numel(x: Array) -> int:
    """The element count of ``x`` (shapes are static on every supported backend)."""
    return math.prod(x.shape)


def default_float(xp: ModuleType, dev: Any) -> Any:
    """The namespace's default real floating dtype on ``dev`` (float32 for torch and JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes(device=dev)["real floating"]


def index_dtype(xp: ModuleType, dev: Any) -> Any:
    """The namespace's default index dtype on ``dev`` (int64, or int32 for JAX without x64)."""
    return xp.__array_namespace_info__().default_dtypes(device=dev)["indexing"]


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


# --------------------------------------------------------------------------- #
# The primitives: the backend's native kernel, else the generic one (docs: ``_xp_generic``)
# --------------------------------------------------------------------------- #

clip = _delegated(generic.clip)
cumulative_sum = _delegated(generic.cumulative_sum)
log_softmax = _delegated(generic.log_softmax)
softmax = _delegated(generic.softmax)
logsumexp = _delegated(generic.logsumexp)
softplus = _delegated(generic.softplus)
log_sigmoid = _delegated(generic.log_sigmoid)
sigmoid = _delegated(generic.sigmoid)
sigmoid_cross_entropy = _delegated(generic.sigmoid_cross_entropy)
take_along_axis = _delegated(generic.take_along_axis)
sort_descending = _delegated(generic.sort_descending)
softmax_nll = _delegated(generic.softmax_nll)
value_range = _delegated(generic.value_range)
one_hot = _delegated(generic.one_hot)
class_sums = _delegated(generic.class_sums)
max_argmax = _delegated(generic.max_argmax)
segment_max = _delegated(generic.segment_max)
unstack = _delegated(generic.unstack)
stop_gradient = _delegated(generic.stop_gradient)
max_pool = _delegated(generic.max_pool)


def min_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving minimum (erosion), ``-max_pool(-x)``; outside counts as ``pad_value`` (``None``: left out)."""
    return -max_pool(-x, window=window, pad_value=None if pad_value is None else -pad_value, xp=xp)


def clamped_log(p: Array, /, *, xp: ModuleType) -> Array:
    """``log(p)`` clamped below at -100, as ``torch.nn.functional.binary_cross_entropy``.

    ``p`` is first clipped to the smallest normal number of its dtype so that
    ``p = 0`` yields a finite value and a zero (not NaN) gradient.
    """
    tiny = xp.finfo(p.dtype).smallest_normal
    return clip(xp.log(clip(p, tiny, None, xp=xp)), -100.0, None, xp=xp)


def native_distance_transform(fg: Array, /, *, sampling: tuple[float, ...], xp: ModuleType) -> Array | None:
    """A host or device kernel's exact EDT of boolean ``fg`` over its trailing ``len(sampling)`` axes, or ``None``.

    The ``distance_transform`` entry of ``xp``'s table: SciPy for NumPy and
    eager torch CPU tensors, ``cupyx.scipy.ndimage`` for CuPy. ``None``
    elsewhere (JAX, torch on other devices or while compiling,
    array-api-strict, no SciPy): the caller (``_edt``) takes its exact
    array-API path. An image without zeros gets the kernel's value (measured
    from outside the image); the caller replaces it. Returns float64 on
    ``fg``'s device.
    """
    kernel = NATIVE[native_kind(xp)].get("distance_transform")
    return None if kernel is None else kernel(fg, sampling=sampling, xp=xp)
