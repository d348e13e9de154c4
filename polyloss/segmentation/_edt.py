"""The exact Euclidean distance transform, the mask plumbing and the mask Args shared by distance and boundary.

Private kernels: names without a leading underscore because the module itself
is private. The transform is separable (Felzenszwalb & Huttenlocher 2012,
Meijster et al. 2000): squared distances are built one axis at a time,
d_k(x) = min_y d_{k-1}(y) + ((x_k - y_k) s_k)^2 along axis k,
the last axis by a prefix-max/suffix-min scan over the positions of zeros in
O(P log n) (P elements, n the axis length) and every further axis by an exact
minimum over that axis, O(P n), computed in chunks of at most
``CHUNK_ELEMENTS`` of scratch. ``native=True`` hands the transform to a host
kernel first where one serves the array (``_xp.native_distance_transform``:
SciPy for NumPy and torch CPU tensors, cupyx for CuPy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._backend import Array, default_float, device, native_distance_transform, numel, stop_gradient
from .._core import checks

Sampling = float | Sequence[float] | None

CHUNK_ELEMENTS = 1 << 22  # scratch per chunk of the exact minimum along an axis

_SAMPLING = """\
sampling: the grid spacing ``s_k`` (voxel size), a positive number or one per spatial axis;
    default 1."""

DISTANCE_DOCS = {  # Args paragraphs of the functions on masks (``_docs.fill_doc``)
    "sampling": _SAMPLING,
    "mask_args": """\
mask: bool, integer or floating array (nonzero is foreground), ``(*batch, *spatial)``.
spatial_ndim: the number of trailing axes that form one image (1, 2 or 3), leading axes being a
    batch. ``None`` (default) infers it from the layout: ``(H, W)`` and ``(N, H, W)`` are 2-D,
    ``(N, C, D, H, W)`` is 3-D; a 4-D mask, ``(N, D, H, W)`` or ``(N, C, H, W)``, is ambiguous and
    raises (pass ``spatial_ndim``). See ``docs/conventions.md``.
""" + _SAMPLING + """
dtype: the output's real floating dtype; default the mask's floating dtype (at least float32),
    else the namespace's default float.
native: use a host kernel where one serves the array (SciPy for NumPy and eager torch CPU
    tensors, cupyx for CuPy); ``False`` forces the exact array-API path (the one JAX and
    array-api-strict always take).""",
}


def spatial_ndim_of(fn: str, name: str, x: Array, spatial_ndim: int | None, *, channels: bool = True) -> int:
    """The number of trailing spatial axes of ``x``: ``spatial_ndim``, or inferred from ``x.ndim``.

    The rule for ``spatial_ndim=None`` follows the library's layouts: a batch
    axis first, then (``channels=True``) possibly a channel axis, then 1 to 3
    spatial axes. ``channels=False`` is for label maps, which have none.

    ========  ===================================  ==============================
    ``ndim``  ``channels=True`` (masks)            ``channels=False`` (labels)
    ========  ===================================  ==============================
    1, 2      one 1-D or 2-D image                 one 1-D or 2-D image
    3         ``(N, H, W)``: 2                     ``(N, H, W)``: 2
    4         ambiguous, ``(N, D, H, W)`` or       ``(N, D, H, W)``: 3
              ``(N, C, H, W)``: ValueError
    5         ``(N, C, D, H, W)``: 3               ambiguous: ValueError
    other     ValueError                           ValueError
    ========  ===================================  ==============================

    A single volume ``(D, H, W)`` therefore needs ``spatial_ndim=3`` (or a
    batch axis). An explicit ``spatial_ndim`` must be 1, 2 or 3 and at most
    ``x.ndim``.
    """
    if spatial_ndim is None:
        rule = {1: 1, 2: 2, 3: 2, 5: 3} if channels else {1: 1, 2: 2, 3: 2, 4: 3}
        inferred = rule.get(x.ndim)
        if inferred is None:
            if channels and x.ndim == 4:
                hint = "(N, D, H, W) volumes or (N, C, H, W) channels of 2-D images"
            else:
                hint = "the spatial axes cannot be inferred from that rank"
            raise ValueError(
                f"{fn}: {name} of shape {tuple(x.shape)} is ambiguous ({hint}); "
                "pass spatial_ndim=2 or spatial_ndim=3 (the trailing axes that form one image)"
            )
        return inferred
    if isinstance(spatial_ndim, bool) or spatial_ndim not in (1, 2, 3):
        raise ValueError(f"{fn}: spatial_ndim must be 1, 2 or 3 (or None to infer it), got {spatial_ndim!r}")
    if x.ndim < spatial_ndim:
        raise ValueError(
            f"{fn}: {name} must have at least spatial_ndim={spatial_ndim} axes, got shape {tuple(x.shape)}"
        )
    return int(spatial_ndim)


def spacing_of(fn: str, sampling: Sampling, spatial_ndim: int) -> tuple[float, ...]:
    """``sampling`` as one positive finite spacing per spatial axis."""
    if sampling is None:
        return (1.0,) * spatial_ndim
    values: tuple[Any, ...] = (sampling,) * spatial_ndim if checks.is_real_scalar(sampling) else tuple(sampling)  # type: ignore[arg-type]
    ok = len(values) == spatial_ndim and all(checks.is_real_scalar(v) and 0 < float(v) < math.inf for v in values)
    if not ok:
        raise ValueError(
            f"{fn}: sampling must be None, a positive number or {spatial_ndim} positive numbers "
            f"(one per spatial axis), got {sampling!r}"
        )
    return tuple(float(v) for v in values)


def check_mask(
    fn: str, name: str, mask: Array, spatial_ndim: int | None, *, channels: bool = True, xp: ModuleType
) -> int:
    """Validate a mask and return its number of spatial axes (see ``spatial_ndim_of``)."""
    nd = spatial_ndim_of(fn, name, mask, spatial_ndim, channels=channels)
    if 0 in mask.shape[mask.ndim - nd :]:
        raise ValueError(f"{fn}: {name} must have non-empty spatial axes, got shape {tuple(mask.shape)}")
    if not (xp.isdtype(mask.dtype, "bool") or xp.isdtype(mask.dtype, ("integral", "real floating"))):
        raise TypeError(f"{fn}: {name} must have a boolean, integer or real floating dtype, got {mask.dtype}")
    return nd


def foreground(mask: Array, /, *, xp: ModuleType) -> Array:
    """``mask != 0`` as a boolean array, detached."""
    if xp.isdtype(mask.dtype, "bool"):
        return mask
    return stop_gradient(mask, xp=xp) != 0


def out_dtype(fn: str, mask: Array, dtype: Any, *, xp: ModuleType) -> Any:
    """``dtype`` if given; else a floating mask's dtype (at least float32); else the default float."""
    if dtype is not None:
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"{fn}: dtype must be a real floating dtype, got {dtype}")
        return dtype
    if xp.isdtype(mask.dtype, "real floating") and xp.finfo(mask.dtype).bits >= 32:
        return mask.dtype
    return default_float(xp, device(mask))


def diagonal(shape: Sequence[int], spacing: tuple[float, ...]) -> float:
    """Length of the image diagonal, sqrt(sum (n_k s_k)^2): longer than any in-image distance."""
    return math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True)))


def any_spatial(fg: Array, nd: int, *, xp: ModuleType) -> Array:
    """Whether each image of ``fg`` has a True element, kept broadcastable against ``fg``."""
    return xp.any(fg, axis=tuple(range(fg.ndim - nd, fg.ndim)), keepdims=True)


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
    chunk = max(1, min(n, CHUNK_ELEMENTS // max(numel(g), 1)))
    parts = []
    for start in range(0, n, chunk):
        x = xp.arange(start, min(start + chunk, n), dtype=g.dtype, device=dev)
        offsets = ((x[:, None] - y[None, :]) * step) ** 2
        offsets = xp.reshape(offsets, (x.shape[0], n) + (1,) * rest)
        parts.append(xp.min(expanded + offsets, axis=axis))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=axis)


def edt(fg: Array, /, *, spacing: tuple[float, ...], dtype: Any, native: bool, xp: ModuleType) -> Array:
    """Distance of every True element of boolean ``fg`` to the nearest False one (trailing axes).

    An image with no False element gets its diagonal length everywhere.
    """
    nd = len(spacing)
    diag = diagonal(fg.shape[fg.ndim - nd :], spacing)
    if native:
        d = native_distance_transform(fg, sampling=spacing, xp=xp)
        if d is not None:
            return xp.astype(xp.where(any_spatial(~fg, nd, xp=xp), d, diag), dtype)
    far2 = diag * diag
    g = _scan_last_axis(fg, spacing[-1], far2, dtype, xp=xp)
    for k in range(2, nd + 1):
        g = _min_along(g, -k, spacing[-k], xp=xp)
    # an image with a zero has every squared distance < diag^2; one without has all >= diag^2
    return xp.sqrt(xp.where(g < far2, g, far2))  # not clip: far2 is symbolic under torch.compile(dynamic=True)
