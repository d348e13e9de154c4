"""CuPy's native kernels for the ``_backend`` primitives (``cupyx.scipy``, ``bincount``, ``scatter_max``): ``NATIVE``.

Each entry is the twin of ``_backend.generic``'s function of the same name.
Loaded with ``_backend`` but importing CuPy only inside the functions: ``_backend``
dispatches here only for CuPy arrays, so CuPy is installed by then, and
importing polyloss never imports it. ``cupyx.scipy.special``'s activations
(CuPy >= 13, the supported minimum, has them all) are SciPy's on the GPU;
``class_sums`` scatters with ``bincount`` as NumPy does; the EDT is
``cupyx.scipy.ndimage``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from array_api_compat import device

from . import generic
from .generic import Array
from .numpy import bincount_class_sums


def _special() -> Any:
    import cupyx.scipy.special

    return cupyx.scipy.special


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _special().log_softmax(x, axis=axis)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _special().softmax(x, axis=axis)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _special().log_expit(x)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _special().expit(x)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    return generic.cross_entropy_of_log_sigmoid(x, t, _special().log_expit(x), pos_weight=pos_weight)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    import cupy

    return bincount_class_sums(p, labels, valid, axis=axis, bincount=cupy.bincount, xp=xp)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    import cupyx

    out = xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
    cupyx.scatter_max(out, ids, values)
    return out


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    """``cupyx.scipy.ndimage.distance_transform_edt`` per image (trailing ``len(sampling)`` axes)."""
    import cupyx.scipy.ndimage

    nd = len(sampling)
    images = xp.reshape(fg, (-1, *fg.shape[fg.ndim - nd :]))
    out = [cupyx.scipy.ndimage.distance_transform_edt(image, sampling=sampling) for image in images]
    return generic.with_diagonal(xp.reshape(xp.stack(out), fg.shape), fg, sampling=sampling, dtype=dtype, xp=xp)


NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    log_softmax, softmax, log_sigmoid, sigmoid, sigmoid_cross_entropy, class_sums, segment_max, distance_transform,
)}


# --------------------------------------------------------------------------- #
# Fused region sums
# --------------------------------------------------------------------------- #


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """The generic composition over this table's kernels:
    ``cupyx.scipy.special``'s activations and the ``bincount`` class sums; no autodiff to fuse."""
    p = softmax(x, axis=axis, xp=xp) if activation == "softmax" else sigmoid(x, xp=xp)
    return generic.sums_of_probabilities(p, target, valid, axis=axis, squared=squared, class_sums=class_sums, xp=xp)


NATIVE[fused_class_sums.__name__] = fused_class_sums

