"""NumPy's native kernels for the ``_backend`` primitives (SciPy where installed): ``NATIVE``.

Each entry is the twin of ``_backend.generic``'s function of the same name.
``scipy.special``'s fused ufuncs serve the activations when SciPy is
installed (an optional dependency; without it those take the generic path);
``bincount``, ``maximum.at`` and the packed integer sort need NumPy only.
``scipy.ndimage`` (the EDT) is imported on first use. ``bincount_class_sums``
and ``scipy_edt`` also serve CuPy and torch CPU tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, cast

import numpy as np
from array_api_compat import device

from . import generic
from .generic import Array

try:  # optional: fused NumPy kernels; the generic path serves without SciPy
    import scipy.special as special
except ImportError:  # pragma: no cover - exercised only where SciPy is absent
    special = None



def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return special.log_softmax(x, axis=axis)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return special.softmax(x, axis=axis)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return special.log_expit(x)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return special.expit(x)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    return generic.cross_entropy_of_log_sigmoid(x, t, special.log_expit(x), pos_weight=pos_weight)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """float32 rows: ``generic.packed_argsort`` of the int32 key (always stable); others: generic."""
    if x.dtype != np.float32 or x.shape[-1] >= 2**31:
        return generic.sort_descending(x, stable=stable, xp=xp)
    perm = generic.packed_argsort(generic.descending_key(x.view(np.int32), width=32), xp=xp)
    return np.take_along_axis(x, perm, axis=-1), perm


def unpermute(x: Array, perm: Array, /, *, xp: ModuleType) -> Array:
    """One ``put_along_axis`` along the last axis."""
    out = np.empty_like(x)
    np.put_along_axis(out, perm, x, axis=-1)
    return out


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    return bincount_class_sums(p, labels, valid, axis=axis, bincount=np.bincount, xp=xp)


def bincount_class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int,
                        bincount: Callable[..., Array], xp: ModuleType) -> tuple[Array, Array, Array]:
    """``class_sums`` by ``bincount`` (NumPy's or CuPy's) over ``label + C * sample``: O(N * M), no autodiff.

    The probability at each label and the valid mask are the weights,
    accumulated in float64.
    """
    dev = device(labels)
    num, c, pix = labels.shape[0], p.shape[axis], 3 - axis
    total = xp.sum(p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, 0), axis=pix)
    at_label = xp.squeeze(xp.take_along_axis(p, xp.expand_dims(labels, axis=axis), axis=axis), axis=axis)
    offsets = xp.arange(num, dtype=xp.int64, device=dev)[:, None] * c
    flat = xp.reshape(xp.astype(labels, xp.int64) + offsets, (-1,))
    weight = xp.ones(labels.shape, dtype=xp.float64, device=dev) if valid is None else xp.astype(valid, xp.float64)

    def per_class(w: Array) -> Array:
        sums = bincount(flat, weights=xp.reshape(w, (-1,)), minlength=num * c)
        return xp.astype(xp.reshape(sums, (num, c)), p.dtype)

    return total, per_class(xp.astype(at_label, xp.float64) * weight), per_class(weight)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    out = np.full((num_segments,), fill, dtype=values.dtype)
    np.maximum.at(out, ids, values)
    return out


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    """``scipy.ndimage.distance_transform_edt`` per image; without SciPy, the generic one."""
    out = scipy_edt(fg, sampling)
    if out is None:  # pragma: no cover - exercised only where SciPy is absent
        return generic.distance_transform(fg, sampling=sampling, dtype=dtype, xp=xp)
    return generic.with_diagonal(out, fg, sampling=sampling, dtype=dtype, xp=xp)


def scipy_edt(fg: Array, sampling: Sequence[float]) -> Array | None:
    """SciPy's exact EDT of each image (trailing ``len(sampling)`` axes) of a boolean NumPy array, float64.

    One C call per image: a single call with a long spacing on a batch axis
    is exact too but about 2.5x slower. An image without zeros gets SciPy's
    value (measured from outside the image): ``generic.with_diagonal`` replaces it.
    ``None`` where SciPy is not installed.
    """
    ndimage = _scipy_ndimage()
    if ndimage is None:
        return None
    nd = len(sampling)
    images = np.reshape(fg, (-1, *fg.shape[fg.ndim - nd :]))
    out = np.empty(images.shape, dtype=np.float64)
    for image, dist in zip(images, out, strict=True):
        ndimage.distance_transform_edt(image, sampling=tuple(sampling), distances=dist)
    return np.reshape(out, fg.shape)


def _scipy_ndimage() -> ModuleType | None:
    try:
        import scipy.ndimage as ndimage
    except ImportError:  # pragma: no cover - exercised only where SciPy is absent
        return None
    return cast(ModuleType, ndimage)


def linear_sum_assignment(cost: Array, row_valid: Array, col_valid: Array, /, *, xp: ModuleType) -> Array | None:
    """SciPy's ``linear_sum_assignment`` on each problem's valid rows and columns; ``None`` without SciPy.

    ``scipy_assignment`` on NumPy arrays.
    """
    return scipy_assignment(cost, row_valid, col_valid)


def scipy_assignment(cost: Array, row_valid: Array, col_valid: Array) -> Array | None:
    """The column of each row of the min-cost matching of each problem of float64 NumPy ``cost`` ``(B, R, K)``
    (+inf: forbidden) restricted to the rows and columns ``row_valid`` ``(B, R)`` and ``col_valid`` ``(B, K)``
    keep: ``(B, R)`` int64, -1 where unmatched.

    One C call per problem (Jonker-Volgenant shortest augmenting paths,
    O(n^3)). ``None`` where SciPy is not installed or a problem has no
    complete matching of finite entries (SciPy raises; the caller's solver
    defines that case).
    """
    try:
        from scipy.optimize import linear_sum_assignment as scipy_lsa
    except ImportError:  # pragma: no cover - exercised only where SciPy is absent
        return None
    out = np.full(cost.shape[:2], -1, dtype=np.int64)
    for b in range(cost.shape[0]):
        rows, cols = np.flatnonzero(row_valid[b]), np.flatnonzero(col_valid[b])
        try:
            r, c = scipy_lsa(cost[b][np.ix_(rows, cols)])
        except ValueError:  # infeasible
            return None
        out[b, rows[r]] = cols[c]
    return out


_SCIPY = (log_softmax, softmax, log_sigmoid, sigmoid, sigmoid_cross_entropy) if special is not None else ()
NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    *_SCIPY, sort_descending, unpermute, class_sums, segment_max, distance_transform, linear_sum_assignment,
)}


# --------------------------------------------------------------------------- #
# Fused region sums
# --------------------------------------------------------------------------- #


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """The generic composition over this table's kernels:
    SciPy's activations and the ``bincount`` class sums (O(N M), float64 accumulation); no autodiff to fuse."""
    p = softmax(x, axis=axis, xp=xp) if activation == "softmax" else sigmoid(x, xp=xp)
    return generic.sums_of_probabilities(p, target, valid, axis=axis, squared=squared, class_sums=class_sums, xp=xp)


NATIVE[fused_class_sums.__name__] = fused_class_sums

