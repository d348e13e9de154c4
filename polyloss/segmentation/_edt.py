"""The Euclidean distance transform of masks, the mask plumbing and the mask Args shared by distance and boundary.

Private kernels: names without a leading underscore because the module itself
is private. The transform is the ``distance_transform`` primitive of
``_backend`` (SciPy for NumPy and eager torch CPU tensors, cupyx for CuPy, the
exact separable array-API transform elsewhere); ``native=False`` forces the
array-API one.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from .._backend import Array, default_float, device, distance_transform, generic, stop_gradient
from .._core import checks
from .._core.typing import Sampling


def spatial_ndim_of(caller: str, name: str, x: Array, spatial_ndim: int | None, *, channels: bool = True) -> int:
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
                f"{caller}: {name} of shape {tuple(x.shape)} is ambiguous ({hint}); "
                "pass spatial_ndim=2 or spatial_ndim=3 (the trailing axes that form one image)"
            )
        return inferred
    if isinstance(spatial_ndim, bool) or spatial_ndim not in (1, 2, 3):
        raise ValueError(f"{caller}: spatial_ndim must be 1, 2 or 3 (or None to infer it), got {spatial_ndim!r}")
    if x.ndim < spatial_ndim:
        raise ValueError(
            f"{caller}: {name} must have at least spatial_ndim={spatial_ndim} axes, got shape {tuple(x.shape)}"
        )
    return int(spatial_ndim)


def spacing_of(caller: str, sampling: Sampling, spatial_ndim: int) -> tuple[float, ...]:
    """``sampling`` as one positive finite spacing per spatial axis."""
    if sampling is None:
        return (1.0,) * spatial_ndim
    values: tuple[Any, ...] = (sampling,) * spatial_ndim if checks.is_real_scalar(sampling) else tuple(sampling)  # type: ignore[arg-type]
    ok = len(values) == spatial_ndim and all(checks.is_real_scalar(v) and 0 < float(v) < math.inf for v in values)
    if not ok:
        raise ValueError(
            f"{caller}: sampling must be None, a positive number or {spatial_ndim} positive numbers "
            f"(one per spatial axis), got {sampling!r}"
        )
    return tuple(float(v) for v in values)


def check_mask(
    caller: str, name: str, mask: Array, spatial_ndim: int | None, *, channels: bool = True, xp: ModuleType
) -> int:
    """Validate a mask and return its number of spatial axes (see ``spatial_ndim_of``)."""
    nd = spatial_ndim_of(caller, name, mask, spatial_ndim, channels=channels)
    if 0 in mask.shape[mask.ndim - nd :]:
        raise ValueError(f"{caller}: {name} must have non-empty spatial axes, got shape {tuple(mask.shape)}")
    if not (xp.isdtype(mask.dtype, "bool") or xp.isdtype(mask.dtype, ("integral", "real floating"))):
        raise TypeError(f"{caller}: {name} must have a boolean, integer or real floating dtype, got {mask.dtype}")
    return nd


def foreground(mask: Array, /, *, xp: ModuleType) -> Array:
    """``mask != 0`` as a boolean array, detached."""
    if xp.isdtype(mask.dtype, "bool"):
        return mask
    return stop_gradient(mask, xp=xp) != 0


def out_dtype(caller: str, mask: Array, dtype: Any, *, xp: ModuleType) -> Any:
    """``dtype`` if given; else a floating mask's dtype (at least float32); else the default float."""
    if dtype is not None:
        if not xp.isdtype(dtype, "real floating"):
            raise TypeError(f"{caller}: dtype must be a real floating dtype, got {dtype}")
        return dtype
    if xp.isdtype(mask.dtype, "real floating") and xp.finfo(mask.dtype).bits >= 32:
        return mask.dtype
    return default_float(xp, device(mask))


def edt(fg: Array, /, *, spacing: tuple[float, ...], dtype: Any, native: bool, xp: ModuleType) -> Array:
    """Distance of every True element of boolean ``fg`` to the nearest False one (trailing axes).

    An image with no False element gets its diagonal length everywhere.
    ``native=False`` forces the exact array-API transform (``generic``'s).
    """
    kernel = distance_transform if native else generic.distance_transform
    return kernel(fg, sampling=spacing, dtype=dtype, xp=xp)
