"""The array namespace and the primitives the array API standard lacks: native delegation over a generic core.

Three layers, one module each:

- ``_backend.generic``: every primitive in standard array API calls, complete on
  its own (what array-api-strict and any other conforming namespace get);
- ``_backend.torch``, ``_backend.jax``, ``_backend.numpy`` (SciPy),
  ``_backend.cupy``: each a table ``NATIVE`` of the backend's fused kernels,
  keyed by primitive name, each entry with its generic twin's signature;
- this module: the namespace helpers (``array_namespace``, ``device``,
  ``native_kind``, ``is_concrete``, ``index_dtype``...) and one dispatch per
  primitive, which asks the backend's table for the primitive and falls
  back to the generic one. ``min_pool`` and ``clamped_log`` are composed
  here from dispatched primitives.

One dispatch rule: a backend's fast path (a fused kernel, an autograd
Function, a host routine such as SciPy's distance transform) is the entry
of the primitive's name in that backend's table, found by ``_delegate``; an
entry that cannot serve a call (a device, a dtype, ``torch.compile``) calls
its generic twin itself. Every primitive takes the namespace as a required
keyword (``xp=``) so a loss looks it up once. ``tests/test_xp.py`` enumerates
the tables and checks every entry against its generic twin on every backend
present. Only this package names a framework.

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

import math
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, TypeVar, cast

from array_api_compat import array_namespace as _compat_array_namespace
from array_api_compat import device as _compat_device
from array_api_compat import is_lazy_array

from . import cupy as _native_cupy
from . import generic, policy
from . import jax as _native_jax
from . import numpy as _native_numpy
from . import torch as _native_torch
from .generic import Array, any_spatial, diagonal

__all__ = [
    "NATIVE",
    "PYTHON_SCALARS",
    "Array",
    "any_spatial",
    "array_namespace",
    "clamped_log",
    "class_sums",
    "clip",
    "cumulative_sum",
    "default_float",
    "diagonal",
    "device",
    "distance_transform",
    "host_view",
    "index_dtype",
    "is_concrete",
    "kth_largest",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "map_problems",
    "max_argmax",
    "max_pool",
    "min_pool",
    "moveaxis",
    "native_kind",
    "native_linear_sum_assignment",
    "numel",
    "one_hot",
    "reduced_sigmoid_cross_entropy",
    "segment_max",
    "sigmoid",
    "sigmoid_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "softmax_nll",
    "softplus",
    "sort_descending",
    "stop_gradient",
    "take_along_axis",
    "unpermute",
    "unstack",
    "value_range",
    "while_loop",
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

# namespace module name -> native kind: the names array-api-compat's ``is_*_namespace`` recognise (those
# are not used: some are ``lru_cache``-wrapped, which Dynamo warns about, and a dict lookup is faster)
_KINDS = {
    "torch": "torch", "array_api_compat.torch": "torch",
    "jax.numpy": "jax", "jax.experimental.array_api": "jax",
    "numpy": "numpy", "array_api_compat.numpy": "numpy",
    "cupy": "cupy", "array_api_compat.cupy": "cupy",
}


def native_kind(xp: ModuleType) -> str:
    """Which table of native kernels serves ``xp``: 'torch', 'jax', 'numpy', 'cupy' or 'generic'."""
    return _KINDS.get(getattr(xp, "__name__", ""), "generic")


_F = TypeVar("_F", bound=Callable[..., Any])


def _delegate(generic_impl: _F, xp: ModuleType, /) -> _F:
    """The kernel for primitive ``generic_impl`` on ``xp``: the entry of its name in ``xp``'s table, else itself."""
    return cast(_F, NATIVE[native_kind(xp)].get(generic_impl.__name__, generic_impl))


# --------------------------------------------------------------------------- #
# The namespace, devices and concrete values
# --------------------------------------------------------------------------- #


def _is_tensor(x: object) -> bool:
    """True for a torch tensor, without importing torch (it is in ``sys.modules`` if ``x`` is one)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


# the Python numbers ``array_namespace`` skips; a tuple: isinstance over a union type is several times slower
PYTHON_SCALARS = (bool, int, float, complex)


def array_namespace(*xs: Any) -> ModuleType:
    """The array-api-compat namespace of ``xs`` (``None`` and Python scalars ignored).

    All-torch inputs are answered without array-api-compat's cached lookup
    (see the module docstring); anything else, including mixed namespaces
    (a ``TypeError``), goes to ``array_api_compat.array_namespace``.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        tensors = 0
        for x in xs:  # a loop, not all(...) over a generator: this runs once per call, on tiny inputs too
            if isinstance(x, torch.Tensor):
                tensors += 1
            elif not (x is None or isinstance(x, PYTHON_SCALARS)):
                break
        else:
            if tensors:
                # an import statement, not a sys.modules lookup: Dynamo would guard on sys.modules and fail that
                # guard in the frame where array-api-compat imports its torch namespace on a first compiled call
                import array_api_compat.torch as compat_torch

                return compat_torch
    return _compat_array_namespace(*xs)


def device(x: Array, /) -> Any:
    """The device of array ``x`` (``array_api_compat.device``; a torch tensor's own ``device``)."""
    if _is_tensor(x):
        return x.device
    return _compat_device(x)


def is_concrete(x: Array) -> bool:
    """True when a value check may read ``x`` now: the one test in front of every value check.

    False for arrays whose values cannot be read: torch tensors while
    ``torch.compile`` traces or under a ``torch.func`` transform (``grad``,
    ``vmap``: functorch-wrapped tensors), and JAX ``Tracer``s (inside
    ``jax.jit``, ``grad``...), where a check would break the graph. False too,
    by the check policy (``policy.set_checks``), for arrays on an accelerator
    (``"auto"``, the default: reading them would stall the device) or for every
    array (``"never"``). Where this is False an invalid value makes the loss
    NaN instead. A concrete JAX array is read through ``host_view`` (a closed-over
    one inside ``jax.jit`` would stage any ``jnp`` operation on it).
    """
    mode = policy.checks_policy()
    if mode == "never":
        return False
    if _is_tensor(x):  # the common case first: this test runs once per call
        torch = sys.modules["torch"]
        if torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x):
            return False
        return mode == "always" or policy.on_host(x)
    if type(x).__module__.startswith("jax"):
        if isinstance(x, sys.modules["jax"].core.Tracer):
            return False
    elif is_lazy_array(x):
        return False
    return mode == "always" or policy.on_host(x)


def host_view(x: Array, /, *, xp: ModuleType) -> tuple[Array, ModuleType]:
    """``(x, xp)`` to read the values of an ``is_concrete`` array with: eager operations that stage nothing.

    A JAX array becomes a NumPy array (its buffer read on the host: inside a
    ``jax.jit`` trace every ``jnp`` operation is staged, even on a concrete
    array the traced function closed over); other arrays are returned as they
    are (their operations run eagerly).
    """
    if native_kind(xp) == "jax":
        import array_api_compat.numpy as np_compat

        host: ModuleType = np_compat
        return host.asarray(x), host
    return x, xp


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
# The primitives: the backend's native kernel, else the generic one (what each computes: its generic
# twin's docstring; a native entry's own docstring says what is native about it)
# --------------------------------------------------------------------------- #

def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    return _delegate(generic.clip, xp)(x, min, max, xp=xp)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _delegate(generic.cumulative_sum, xp)(x, axis=axis, xp=xp)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _delegate(generic.log_softmax, xp)(x, axis=axis, xp=xp)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _delegate(generic.softmax, xp)(x, axis=axis, xp=xp)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    return _delegate(generic.logsumexp, xp)(x, axis=axis, keepdims=keepdims, xp=xp)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.softplus, xp)(x, xp=xp)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.log_sigmoid, xp)(x, xp=xp)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.sigmoid, xp)(x, xp=xp)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    return _delegate(generic.sigmoid_cross_entropy, xp)(x, t, pos_weight=pos_weight, xp=xp)


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _delegate(generic.take_along_axis, xp)(x, index, axis=axis, xp=xp)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    return _delegate(generic.sort_descending, xp)(x, stable=stable, xp=xp)


def unpermute(x: Array, perm: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.unpermute, xp)(x, perm, xp=xp)


def kth_largest(x: Array, k: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.kth_largest, xp)(x, k, xp=xp)


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _delegate(generic.softmax_nll, xp)(x, labels, axis=axis, xp=xp)


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[float, float]:
    x, xp = host_view(x, xp=xp)
    return _delegate(generic.value_range, xp)(x, xp=xp)


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    return _delegate(generic.one_hot, xp)(labels, num_classes=num_classes, axis=axis, dtype=dtype, xp=xp)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    return _delegate(generic.class_sums, xp)(p, labels, valid, axis=axis, xp=xp)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    return _delegate(generic.max_argmax, xp)(x, axis=axis, xp=xp)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    return _delegate(generic.segment_max, xp)(values, ids, num_segments=num_segments, fill=fill, xp=xp)


def map_problems(fn: Callable[..., Array], arrays: tuple[Array | None, ...], /, *, xp: ModuleType) -> Array:
    return _delegate(generic.map_problems, xp)(fn, arrays, xp=xp)


def moveaxis(x: Array, /, *, source: int, destination: int, xp: ModuleType) -> Array:
    return _delegate(generic.moveaxis, xp)(x, source=source, destination=destination, xp=xp)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    return _delegate(generic.unstack, xp)(x, axis=axis, xp=xp)


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    return _delegate(generic.stop_gradient, xp)(x, xp=xp)


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    return _delegate(generic.max_pool, xp)(x, window=window, pad_value=pad_value, xp=xp)


def while_loop(cond: Callable[[tuple[Array, ...]], Array], body: Callable[[tuple[Array, ...]], tuple[Array, ...]],
               init: tuple[Array, ...], /, *, xp: ModuleType) -> tuple[Array, ...]:
    return _delegate(generic.while_loop, xp)(cond, body, init, xp=xp)


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


def softmax_cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                          label_smoothing: float, reduction: str, xp: ModuleType) -> Array:
    return _delegate(generic.softmax_cross_entropy, xp)(x, labels, axis=axis, weight=weight, ignore_index=ignore_index,
                                                        label_smoothing=label_smoothing, reduction=reduction, xp=xp)


def reduced_sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None, reduction: str,
                                  xp: ModuleType) -> Array:
    return _delegate(generic.reduced_sigmoid_cross_entropy, xp)(x, t, pos_weight=pos_weight, reduction=reduction,
                                                                xp=xp)


def native_linear_sum_assignment(cost: Array, row_valid: Array, col_valid: Array, /, *, xp: ModuleType
                                 ) -> Array | None:
    """A host kernel's min-cost matching of each problem of float64 ``cost`` ``(B, R, K)``, or ``None``.

    The ``linear_sum_assignment`` entry of ``xp``'s table: SciPy per problem
    for NumPy and eager torch CPU tensors, restricted to the rows and columns
    that ``row_valid`` ``(B, R)`` and ``col_valid`` ``(B, K)`` keep; +inf
    entries are forbidden. Returns the column of each row, -1 where unmatched
    (int64). ``None`` elsewhere, without SciPy, or when a problem has no
    complete matching of finite entries: the caller runs its solver.
    """
    kernel = NATIVE[native_kind(xp)].get("linear_sum_assignment")
    return None if kernel is None else kernel(cost, row_valid, col_valid, xp=xp)


# --------------------------------------------------------------------------- #
# Fused region sums
# --------------------------------------------------------------------------- #

__all__ += ["fused_class_sums"]


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """``(psum, tp, tsum)`` of ``activation(x)`` against labels or dense targets (``generic.fused_class_sums``)."""
    if axis not in (1, 2) or x.ndim != 3:
        raise ValueError(f"fused_class_sums: x must be 3-D with class axis 1 or 2, got shape {tuple(x.shape)}, "
                         f"axis {axis}")
    return _delegate(generic.fused_class_sums, xp)(x, target, valid, axis=axis, activation=activation,
                                                   squared=squared, xp=xp)

__all__ += ["fused_class_sums_nll"]


def fused_class_sums_nll(x: Array, labels: Array, valid: Array | None, weight: Array | None, /, *, axis: int,
                         gamma: float, squared: bool, xp: ModuleType) -> tuple[Array, Array, Array, Array]:
    """``fused_class_sums`` of the softmax and a compound's pixel term (``generic.fused_class_sums_nll``).

    A table with an entry (torch: one Function shares the softmax and the backward) serves it; elsewhere it
    is composed here from the dispatched ``fused_class_sums`` and ``log_softmax``, so each backend's own
    kernels serve the composition without a copy of it in every table.
    """
    entry = NATIVE[native_kind(xp)].get("fused_class_sums_nll")
    if entry is not None:
        return cast(tuple[Array, Array, Array, Array], entry(x, labels, valid, weight, axis=axis, gamma=gamma,
                                                             squared=squared, xp=xp))
    sums = fused_class_sums(x, labels, valid, axis=axis, activation="softmax", squared=squared, xp=xp)
    term = generic.focal_label_sums(log_softmax(x, axis=axis, xp=xp), labels, valid, weight, axis=axis, gamma=gamma,
                                    xp=xp)
    return (*sums, term)


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    return _delegate(generic.distance_transform, xp)(fg, sampling=sampling, dtype=dtype, xp=xp)
