"""Exact Euclidean distance transforms, signed distance maps and U-Net border weights.

Everything here is computed from masks (hard labels) and carries no gradient:
the inputs are passed through ``stop_gradient``, as the papers compute their
distance maps once from the ground truth or from a detached prediction.

The distance transform is written in the array API, so it runs and jits on
every backend. It is separable (Felzenszwalb & Huttenlocher 2012, Meijster et
al. 2000): squared distances are built one axis at a time,
d_k(x) = min_y d_{k-1}(y) + ((x_k - y_k) s_k)^2 along axis k,
the first axis by a prefix-max/suffix-min scan over the positions of zeros in
O(P log n) (P elements, n the axis length) and every further axis by an exact
minimum over that axis, O(P n), computed in chunks of at most 2^22 elements
of scratch. NumPy inputs go to ``scipy.ndimage.distance_transform_edt`` per
image when SciPy is installed (``native=False`` forces the array-API path).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from . import _checks as checks
from ._xp import (
    Array,
    array_namespace,
    clip,
    default_float,
    device,
    native_distance_transform,
    numel,
    stop_gradient,
)

__all__ = ["distance_transform", "signed_distance_map", "unet_weight_map"]

Sampling = float | Sequence[float] | None

_CHUNK_ELEMENTS = 1 << 22  # scratch per chunk of the exact minimum along an axis


# --------------------------------------------------------------------------- #
# Validation and shared plumbing
# --------------------------------------------------------------------------- #


def _spacing(fn: str, sampling: Sampling, spatial_ndim: int) -> tuple[float, ...]:
    """``sampling`` as one positive finite spacing per spatial axis."""
    if sampling is None:
        return (1.0,) * spatial_ndim
    values = (sampling,) * spatial_ndim if isinstance(sampling, int | float) else tuple(sampling)
    ok = len(values) == spatial_ndim and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf for v in values
    )
    if not ok:
        raise ValueError(
            f"{fn}: sampling must be None, a positive number or {spatial_ndim} positive numbers "
            f"(one per spatial axis), got {sampling!r}"
        )
    return tuple(float(v) for v in values)


def _check_mask(fn: str, name: str, mask: Array, spatial_ndim: int, *, xp: ModuleType) -> None:
    if isinstance(spatial_ndim, bool) or spatial_ndim not in (1, 2, 3):
        raise ValueError(f"{fn}: spatial_ndim must be 1, 2 or 3, got {spatial_ndim!r}")
    if mask.ndim < spatial_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least spatial_ndim={spatial_ndim} axes, got shape {tuple(mask.shape)}"
        )
    if 0 in mask.shape[mask.ndim - spatial_ndim :]:
        raise ValueError(f"{fn}: {name} must have non-empty spatial axes, got shape {tuple(mask.shape)}")
    if not (xp.isdtype(mask.dtype, "bool") or xp.isdtype(mask.dtype, ("integral", "real floating"))):
        raise TypeError(f"{fn}: {name} must have a boolean, integer or real floating dtype, got {mask.dtype}")


def _foreground(mask: Array, /, *, xp: ModuleType) -> Array:
    """``mask != 0`` as a boolean array, detached."""
    if xp.isdtype(mask.dtype, "bool"):
        return mask
    return stop_gradient(mask, xp=xp) != 0


def _out_dtype(fn: str, mask: Array, dtype: Any, *, xp: ModuleType) -> Any:
    """``dtype`` if given; else a floating mask's dtype (at least float32); else the default float."""
    if dtype is not None:
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"{fn}: dtype must be a real floating dtype, got {dtype}")
        return dtype
    if xp.isdtype(mask.dtype, "real floating") and xp.finfo(mask.dtype).bits >= 32:
        return mask.dtype
    return default_float(xp, device(mask))


def _diagonal(shape: Sequence[int], spacing: tuple[float, ...]) -> float:
    """Length of the image diagonal, sqrt(sum (n_k s_k)^2): longer than any in-image distance."""
    return math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True)))


# --------------------------------------------------------------------------- #
# The separable exact EDT
# --------------------------------------------------------------------------- #


def _scan_last_axis(fg: Array, step: float, far2: float, dtype: Any, *, xp: ModuleType) -> Array:
    """Squared distance to the nearest zero along the last axis; ``far2`` where a row has none.

    The nearest zero at or left of x is a prefix maximum of the zero positions,
    the one at or right of x a suffix minimum; both by doubling shifts, log2(n)
    steps of O(P).
    """
    n = fg.shape[-1]
    dev = device(fg)
    pos = xp.arange(n, dtype=dtype, device=dev)
    far = float(2 * n)
    left = xp.where(fg, -far, pos)
    right = xp.where(fg, far + n, pos)
    shift = 1
    while shift < n:
        fill = xp.full((*fg.shape[:-1], shift), far, dtype=dtype, device=dev)
        left = xp.maximum(left, xp.concat([-fill, left[..., :-shift]], axis=-1))
        right = xp.minimum(right, xp.concat([right[..., shift:], fill + n], axis=-1))
        shift *= 2
    d = xp.minimum(pos - left, right - pos)  # >= 2n where the row has no zero
    return xp.where(d < n, (d * step) ** 2, far2)


def _min_along(g: Array, axis: int, step: float, *, xp: ModuleType) -> Array:
    """Exact d(x) = min_y g(y) + ((x - y) step)^2 along negative ``axis``: O(P n), chunked over x."""
    n = g.shape[axis]
    rest = -axis - 1  # axes after ``axis``
    dev = device(g)
    y = xp.arange(n, dtype=g.dtype, device=dev)
    expanded = xp.expand_dims(g, axis=axis - 1)  # (..., 1, n, *rest)
    chunk = max(1, min(n, _CHUNK_ELEMENTS // max(numel(g), 1)))
    parts = []
    for start in range(0, n, chunk):
        x = xp.arange(start, min(start + chunk, n), dtype=g.dtype, device=dev)
        offsets = ((x[:, None] - y[None, :]) * step) ** 2
        offsets = xp.reshape(offsets, (x.shape[0], n) + (1,) * rest)
        parts.append(xp.min(expanded + offsets, axis=axis))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=axis)


def _edt(fg: Array, /, *, spacing: tuple[float, ...], dtype: Any, native: bool, xp: ModuleType) -> Array:
    """Distance of every True element of boolean ``fg`` to the nearest False one (trailing axes).

    An image with no False element gets its diagonal length everywhere.
    """
    nd = len(spacing)
    diag = _diagonal(fg.shape[fg.ndim - nd :], spacing)
    if native:
        d = native_distance_transform(fg, sampling=spacing, xp=xp)
        if d is not None:
            return xp.astype(xp.where(_any_spatial(~fg, nd, xp=xp), d, diag), dtype)
    far2 = diag * diag
    g = _scan_last_axis(fg, spacing[-1], far2, dtype, xp=xp)
    for k in range(2, nd + 1):
        g = _min_along(g, -k, spacing[-k], xp=xp)
    # an image with a zero has every squared distance < diag^2; one without has all >= diag^2
    return xp.sqrt(clip(g, None, far2, xp=xp))


def _any_spatial(fg: Array, nd: int, *, xp: ModuleType) -> Array:
    """Whether each image of ``fg`` has a True element, kept broadcastable against ``fg``."""
    return xp.any(fg, axis=tuple(range(fg.ndim - nd, fg.ndim)), keepdims=True)


# --------------------------------------------------------------------------- #
# Public functions
# --------------------------------------------------------------------------- #


def distance_transform(
    mask: Array,
    /,
    *,
    spatial_ndim: int = 2,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    r"""Exact Euclidean distance transform: each nonzero element's distance to the nearest zero.

    D(x) = min_{y: mask(y) = 0} sqrt(sum_k ((x_k - y_k) s_k)^2),  0 where mask(x) = 0

    The trailing ``spatial_ndim`` axes (1, 2 or 3) are the image; leading axes
    are a batch. ``sampling`` is the spacing ``s_k``, a number or one per axis.
    An image with no zero gets the length of its diagonal,
    sqrt(sum_k (n_k s_k)^2), everywhere (finite, longer than any distance in
    the image); an image of zeros gets zeros.

    Complexity: O(P log n_last + P (n_1 + ... + n_{d-1})) for P elements, the
    last axis by a scan and every other axis by an exact chunked minimum; no
    pairwise O(P^2) step. NumPy arrays use ``scipy.ndimage`` per image when
    SciPy is importable; ``native=False`` forces the array-API path.

    ``mask``: bool, integer or floating (nonzero is foreground); no gradient.
    Returns ``dtype`` (default: the mask's floating dtype, at least float32,
    or the namespace's default float).

    Peers: ``scipy.ndimage.distance_transform_edt(mask, sampling)`` per image
    (which measures an image with no zero from outside the image instead).
    """
    fn = "distance_transform"
    xp = array_namespace(mask)
    _check_mask(fn, "mask", mask, spatial_ndim, xp=xp)
    spacing = _spacing(fn, sampling, spatial_ndim)
    out = _out_dtype(fn, mask, dtype, xp=xp)
    return _edt(_foreground(mask, xp=xp), spacing=spacing, dtype=out, native=native, xp=xp)


def signed_distance_map(
    mask: Array,
    /,
    *,
    spatial_ndim: int = 2,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    r"""Signed distance map of Kervadec et al. 2019: negative inside, positive outside.

    phi(x) = D_out(x) outside (distance to the nearest foreground element);
    phi(x) = -(D_in(x) - s_min) inside (D_in: distance to the nearest background element)

    ``s_min`` is the smallest spacing (1 without ``sampling``), so phi is
    exactly 0 on the inner boundary: the foreground elements with a background
    neighbour one step away along an axis of the finest spacing (with unit
    spacing, those with a background 4- or 6-neighbour); deeper foreground is
    negative, every background element positive (>= s_min). This is the
    authors' ``one_hot2dist`` (``edt(~m) * ~m - (edt(m) - 1) * m``) for unit
    spacing. An image without foreground gets zeros (as in ``one_hot2dist``);
    one without background gets -(diagonal - s_min) everywhere. Batched over
    leading axes like ``distance_transform``; computed from ``mask`` only
    (no gradient). Pass one channel per class of a one-hot target to get the
    ``distance_map`` of ``boundary_loss``.
    """
    fn = "signed_distance_map"
    xp = array_namespace(mask)
    _check_mask(fn, "mask", mask, spatial_ndim, xp=xp)
    spacing = _spacing(fn, sampling, spatial_ndim)
    out = _out_dtype(fn, mask, dtype, xp=xp)
    fg = _foreground(mask, xp=xp)
    inside = _edt(fg, spacing=spacing, dtype=out, native=native, xp=xp)
    outside = _edt(~fg, spacing=spacing, dtype=out, native=native, xp=xp)
    phi = xp.where(fg, min(spacing) - inside, outside)
    return xp.where(_any_spatial(fg, spatial_ndim, xp=xp), phi, xp.zeros((), dtype=out, device=device(mask)))


def unet_weight_map(
    instance_labels: Array,
    /,
    *,
    num_instances: int,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weight: Sequence[float] | None = None,
    spatial_ndim: int = 2,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    r"""U-Net border weight map of Ronneberger et al. 2015.

    w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2)) [x is background]

    ``instance_labels`` holds integer instance ids: 0 is background and
    1..``num_instances`` are instances (an id absent from an image is
    padding, so a fixed ``num_instances`` keeps shapes static under
    ``jax.jit``). d1, d2 are the distances to the nearest and second-nearest
    instance; as in the paper's use (separating touching cells) the border
    term applies to background pixels only, and only in images with at least
    two instances (else there is no second-nearest one and it is 0).

    ``class_weight``: ``(w_background, w_foreground)``, or ``None`` for
    balanced weights per image, w_c = P / (2 P_c) (P pixels, P_c of class c;
    a class absent from the image gets 1). Batched over leading axes; no
    gradient. Returns the label map's shape: pass ``w[:, None]`` as
    ``weight=`` of ``binary_cross_entropy`` on (N, 1, H, W), or multiply
    ``cross_entropy(..., reduction="none")`` by ``w``.
    """
    fn = "unet_weight_map"
    xp = array_namespace(instance_labels)
    _check_mask(fn, "instance_labels", instance_labels, spatial_ndim, xp=xp)
    if not xp.isdtype(instance_labels.dtype, "integral"):
        raise TypeError(f"{fn}: instance_labels must have an integer dtype, got {instance_labels.dtype}")
    if isinstance(num_instances, bool) or not isinstance(num_instances, int) or num_instances < 0:
        raise ValueError(f"{fn}: num_instances must be a non-negative int, got {num_instances!r}")
    checks.check_nonnegative(fn, "w0", w0)
    if not sigma > 0:
        raise ValueError(f"{fn}: sigma must be > 0, got {sigma!r}")
    spacing = _spacing(fn, sampling, spatial_ndim)
    out = _out_dtype(fn, instance_labels, dtype, xp=xp)
    checks.check_integer_range(fn, "instance_labels", instance_labels, 0, num_instances, xp=xp)
    dev = device(instance_labels)
    spatial_axes = tuple(range(instance_labels.ndim - spatial_ndim, instance_labels.ndim))
    background = instance_labels == 0

    if class_weight is None:
        total = float(math.prod(instance_labels.shape[instance_labels.ndim - spatial_ndim :]))
        n_bg = xp.sum(xp.astype(background, out), axis=spatial_axes, keepdims=True)
        n_fg = total - n_bg
        w_bg = xp.where(n_bg > 0, total / (2 * xp.where(n_bg > 0, n_bg, 1.0)), 1.0)
        w_fg = xp.where(n_fg > 0, total / (2 * xp.where(n_fg > 0, n_fg, 1.0)), 1.0)
    else:
        values = tuple(class_weight)
        if len(values) != 2:
            raise ValueError(f"{fn}: class_weight must be (w_background, w_foreground), got {class_weight!r}")
        w_bg, w_fg = (xp.asarray(float(v), dtype=out, device=dev) for v in values)
    weight = xp.where(background, w_bg, w_fg)
    if num_instances < 2 or w0 == 0:
        return xp.astype(weight, out) if weight.dtype != out else weight

    # distance of every pixel to each instance: (K, ..., *spatial), K static; an absent one is diag away
    ids = xp.arange(1, num_instances + 1, dtype=instance_labels.dtype, device=dev)
    ids = xp.reshape(ids, (-1,) + (1,) * instance_labels.ndim)
    d = _edt(instance_labels[None, ...] != ids, spacing=spacing, dtype=out, native=native, xp=xp)
    d = xp.sort(d, axis=0, stable=False)
    d1, d2 = d[0, ...], d[1, ...]
    diag = _diagonal(instance_labels.shape[instance_labels.ndim - spatial_ndim :], spacing)
    border = w0 * xp.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return weight + xp.where(background & (d2 < diag), border, 0.0)
