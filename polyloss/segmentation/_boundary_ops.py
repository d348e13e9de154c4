"""The private kernels of the boundary losses (``boundary.py``) and their shared docstring paragraphs.

Names without a leading underscore because the module itself is private.
Validation is the input layer's (``_channels.spatial_inputs``: ``prepare``,
``check_spatial_layout``, ``pixel_weight``); what this module adds is class 0
dropped on request, weighted sums over space, the unsigned distance field of
the Hausdorff-DT loss, and the box erosion of Boundary IoU (``_xp.min_pool``).
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

from .._backend import Array, any_spatial, device, min_pool, moveaxis, numel, stop_gradient
from .._core import checks
from .._core.reduce import as_float, safe_divide
from ._channels import spatial_inputs
from ._edt import edt


class Inputs(NamedTuple):
    """Validated inputs as (N, C', *spatial) arrays in the compute dtype."""

    p: Array  # probabilities, 0 at left-out pixels
    t: Array  # detached targets, 0 at left-out pixels
    w: Array | None  # pixel weights (N, 1 or C', *spatial), 0 where left out; None: every pixel, weight 1
    xp: ModuleType
    axis: int  # y_pred's class axis, non-negative (to lay out other arrays of its layout alike)
    poison: Array | None  # add to the reduced loss (``poisoned``): NaN where a traced target is out of its domain


def drop_background(x: Array, axis: int, include_background: bool) -> Array:
    """``x`` without channel 0 along ``axis``, unless kept or the only channel."""
    if include_background or x.shape[axis] == 1:
        return x
    return x[(slice(None),) * axis + (slice(1, None), ...)]


def channels_first(x: Array, axis: int, include_background: bool, *, xp: ModuleType) -> Array:
    x = drop_background(x, axis, include_background)
    return x if axis == 1 else moveaxis(x, source=axis, destination=1, xp=xp)


def inputs(
    caller: str,
    y_pred: Array,
    y_true: Array,
    *,
    mode: str,
    class_axis: int,
    from_logits: bool,
    include_background: bool,
    ignore_index: int | None,
    mask: Array | None,
    reduction: str,
) -> Inputs:
    """``_channels.spatial_inputs`` (2 or 3 spatial axes), probabilities zeroed where left out, class 0
    dropped unless ``include_background``."""
    c = spatial_inputs(caller, y_pred, y_true, mode=mode, class_axis=class_axis, from_logits=from_logits,
                       ignore_index=ignore_index, reduction=reduction, mask=mask, min_spatial=2)
    xp, w = c.xp, c.w
    p = c.p if w is None else xp.where(w > 0, c.p, 0.0)
    w = None if w is None else drop_background(w, 1, include_background)
    return Inputs(drop_background(p, 1, include_background), drop_background(c.t, 1, include_background), w, xp,
                  c.axis, c.poison)


def spatial_axes(x: Array) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


def weighted_sum(v: Array, w: Array | None, axes: tuple[int, ...], *, xp: ModuleType) -> Array:
    return xp.sum(v if w is None else w * v, axis=axes)


def weighted_mean(v: Array, w: Array | None, axes: tuple[int, ...], *, xp: ModuleType) -> Array:
    """Mean of ``v`` over ``axes`` weighted by ``w``; 0 (zero gradient) where nothing is kept or the axes are empty."""
    if w is None:
        empty = any([v.shape[a] == 0 for a in axes])  # a list: torch.compile cannot trace a generator here
        return xp.sum(v, axis=axes) if empty else xp.mean(v, axis=axes)
    total = xp.sum(w * v, axis=axes)
    return safe_divide(total, xp.sum(xp.broadcast_to(w, v.shape), axis=axes), xp=xp)


def detached_field(caller: str, name: str, field: Array, y_pred: Array, like: Array, *, xp: ModuleType) -> Array:
    """A precomputed floating distance field of ``y_pred``'s shape, in ``like``'s dtype, detached."""
    checks.check_floating(caller, name, field, xp=xp)
    if tuple(field.shape) != tuple(y_pred.shape):
        raise ValueError(
            f"{caller}: {name} must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(field.shape)}"
        )
    return stop_gradient(as_float(field, like, xp=xp), xp=xp)


def unsigned_field(fg: Array, spacing: tuple[float, ...], empty: str, dtype: Any, *, xp: ModuleType) -> Array:
    """D_in + D_out (distance to the other side, on both sides) over the trailing ``len(spacing)`` axes.

    An all-0 or all-1 image gets its diagonal everywhere (``empty="diagonal"``, the rule of
    ``distance_transform``) or zeros (``"zero"``, MONAI's rule).
    """
    if numel(fg) == 0:
        return xp.zeros(fg.shape, dtype=dtype, device=device(fg))
    field = edt(fg, spacing=spacing, dtype=dtype, native=True, xp=xp) + edt(
        ~fg, spacing=spacing, dtype=dtype, native=True, xp=xp
    )
    if empty == "diagonal":
        return field
    nd = len(spacing)
    both = any_spatial(fg, nd, xp=xp) & any_spatial(~fg, nd, xp=xp)
    return xp.where(both, field, xp.zeros((), dtype=dtype, device=device(fg)))


def erosion_radius(caller: str, spatial: tuple[int, ...], dilation_ratio: float) -> int:
    """round(dilation_ratio * image diagonal), at least 1, as boundary-iou-api's ``mask_to_boundary``.

    Any finite ratio >= 0 is the reference's (a radius past the image erodes everything: capped at the largest side,
    which erodes everything too, so a huge ratio builds no huge window); inf, NaN and a traced ratio (the radius
    shapes the window) are a ValueError.
    """
    ratio = checks.check_real(caller, "dilation_ratio", dilation_ratio)
    if not (isinstance(ratio, float) and 0 <= ratio < math.inf):  # NaN fails too (math.isfinite breaks compile)
        raise ValueError(f"{caller}: dilation_ratio must be a finite number >= 0, got {dilation_ratio!r}")
    radius = max(1, round(ratio * math.sqrt(sum(n * n for n in spatial))))
    return min(radius, max((1, *spatial)))  # max(..., default=) breaks torch.compile


def inner_boundary(m: Array, radius: int, nd: int, *, xp: ModuleType) -> Array:
    """``m`` minus its erosion by a (2 radius + 1) box over the trailing ``nd`` axes, with zeros outside the image."""
    if numel(m) == 0:
        return m
    return m - min_pool(m, window=(2 * radius + 1,) * nd, pad_value=0.0, xp=xp)


def soft_iou(
    a: Array, b: Array, axes: tuple[int, ...], smooth: float = 0.0, w: Array | None = None, *, xp: ModuleType
) -> Array:
    """Soft IoU (sum w ab + s) / (sum w (a + b - ab) + s) over ``axes``; 1 where both are empty."""
    inter = weighted_sum(a * b, w, axes, xp=xp) + smooth
    union = weighted_sum(a + b - a * b, w, axes, xp=xp) + smooth
    empty = union == 0
    return xp.where(empty, 1.0, inter / xp.where(empty, 1.0, union))
