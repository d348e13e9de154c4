"""Rotated-box kernels: formats (validation, conversion), the Gaussian closed forms and polygon clipping.

Shared by ``boxes.box_convert`` (formats) and ``rotated`` (everything).

Angle convention (radians): a box ``(cx, cy, w, h, theta)`` has its width
along ``u = (cos theta, sin theta)`` and its height along
``v = (-sin theta, cos theta)`` in the array's own ``(x, y)`` coordinates, so
with image coordinates (y pointing down) a positive theta turns the box
clockwise on screen. This is the convention of mmrotate ("le90"/"le135"
ranges are all accepted: every function here is invariant to the angle's
period) and of ultralytics' ``xywhr``, which is our ``"cxcywhr"``. Angles
in degrees, or turning the other way, convert as ``theta = +-degrees * pi / 180``.

``"cxcywhr"``: centre, size, angle. ``"xywhr"``: the corner ``c - u w/2 - v h/2``
(the top-left corner before the rotation about the centre), size, angle.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, NamedTuple

from .._backend import Array, clip, device, take_along_axis, unstack
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import check_weighting, promote, restore, weighted_reduction

ROTATED_FORMATS = ("xywhr", "cxcywhr")

# mmrotate clamps sizes to [1e-7, 1e7] before building Sigma (GWD, KLD, KFIoU)
MIN_SIZE, MAX_SIZE = 1e-7, 1e7


def check_rotated_boxes(caller: str, name: str, boxes: Array, *, xp: ModuleType) -> None:
    """Rotated boxes are a floating array of shape ``(..., 5)``."""
    checks.check_floating(caller, name, boxes, xp=xp)
    if boxes.ndim < 1 or boxes.shape[-1] != 5:
        raise ValueError(
            f"{caller}: {name} must have shape (..., 5), one rotated box (x, y, w, h, theta) per row, "
            f"got {tuple(boxes.shape)}"
        )


def centre_form(boxes: Array, box_format: str, /, *, xp: ModuleType) -> tuple[Array, ...]:
    """``(cx, cy, w, h, theta)``, each of shape ``boxes.shape[:-1]``."""
    a, b, w, h, r = unstack(boxes, axis=-1, xp=xp)
    if box_format == "cxcywhr":
        return a, b, w, h, r
    c, s = xp.cos(r), xp.sin(r)
    return a + (w * c - h * s) / 2, b + (w * s + h * c) / 2, w, h, r


def rotated_box_convert(caller: str, boxes: Array, in_fmt: str, out_fmt: str) -> Array:
    """``box_convert`` between the rotated formats (``boxes.py`` delegates 5-column formats here)."""
    xp = namespace(caller, boxes=boxes)
    if in_fmt not in ROTATED_FORMATS or out_fmt not in ROTATED_FORMATS:
        raise ValueError(
            f"{caller}: rotated formats convert only among themselves ({', '.join(map(repr, ROTATED_FORMATS))}), "
            f"got in_fmt={in_fmt!r}, out_fmt={out_fmt!r}"
        )
    check_rotated_boxes(caller, "boxes", boxes, xp=xp)
    if in_fmt == out_fmt:
        return xp.asarray(boxes, copy=True)
    if out_fmt == "cxcywhr":
        return xp.stack(centre_form(boxes, in_fmt, xp=xp), axis=-1)
    cx, cy, w, h, r = unstack(boxes, axis=-1, xp=xp)
    c, s = xp.cos(r), xp.sin(r)
    return xp.stack((cx - (w * c - h * s) / 2, cy - (w * s + h * c) / 2, w, h, r), axis=-1)


# --------------------------------------------------------------------------- #
# The Gaussian losses' shared pieces (``rotated``)
# --------------------------------------------------------------------------- #


class Box(NamedTuple):
    cx: Array
    cy: Array
    w: Array
    h: Array
    cos: Array
    sin: Array


class Pair(NamedTuple):
    """Matching predicted and target boxes in the compute dtype, with their relative angle."""

    p: Box
    t: Box
    cos2: Array  # cos^2 and sin^2 of theta_p - theta_t
    sin2: Array
    dx: Array  # centre offset, prediction minus target
    dy: Array
    xp: ModuleType


def box_pair(caller: str, y_pred: Array, y_true: Array, box_format: str, reduction: str, avg_factor: Any, *,
          clamp: bool) -> Pair:
    xp = namespace(caller, y_pred=y_pred, y_true=y_true)
    check_rotated_boxes(caller, "y_pred", y_pred, xp=xp)
    check_rotated_boxes(caller, "y_true", y_true, xp=xp)
    checks.check_same_shape(caller, y_pred, y_true)
    checks.check_option(caller, "box_format", box_format, ROTATED_FORMATS)
    checks.check_reduction(caller, reduction)
    check_weighting(caller, reduction, avg_factor)
    p = promote(y_pred, xp=xp)
    t = y_true if y_true.dtype == p.dtype else xp.astype(y_true, p.dtype)

    def box(b: Array) -> Box:
        cx, cy, w, h, r = centre_form(b, box_format, xp=xp)
        if clamp:
            w, h = clip(w, MIN_SIZE, MAX_SIZE, xp=xp), clip(h, MIN_SIZE, MAX_SIZE, xp=xp)
        return Box(cx, cy, w, h, xp.cos(r), xp.sin(r))

    bp, bt = box(p), box(t)
    turn = p[..., 4] - t[..., 4]  # the angle difference itself: exactly 0 for equal angles, whatever a compiler fuses
    cos_d, sin_d = xp.cos(turn), xp.sin(turn)
    return Pair(bp, bt, cos_d**2, sin_d**2, bp.cx - bt.cx, bp.cy - bt.cy, xp)


def det_sum(pair: Pair, a1: Array, b1: Array, a2: Array, b2: Array) -> Array:
    """det(Sigma_1 + Sigma_2) from the eigenvalues (a_i along the width, b_i along the height).

    det S1 + det S2 + tr(adj(S1) S2): every term is >= 0, so no cancellation.
    """
    return a1 * b1 + a2 * b2 + (a1 * b2 + b1 * a2) * pair.cos2 + (a1 * a2 + b1 * b2) * pair.sin2


def shape_term(pair: Pair, p1: Array, q1: Array, p2: Array, q2: Array) -> Array:
    """X^2 - Y^2 of the Wasserstein shape term X - Y, free of cancellation where the boxes match.

    X = Tr S_p + Tr S_t, Y = 2 Tr((S_p^1/2 S_t S_p^1/2)^1/2) = 2 sqrt(Tr(S_p S_t) + 2 sqrt(det S_p det S_t));
    ``p1, q1`` (``p2, q2``) are the eigenvalues of S_p^1/2 (S_t^1/2), half the sizes. With c, s = cos^2, sin^2
    of the angle difference, X^2 - Y^2 = [(p1-p2)^2 + (q1-q2)^2] [(p1+p2)^2 + (q1+q2)^2] + 4 s (p1^2-q1^2)
    (p2^2-q2^2): both terms vanish at the optimum and neither cancels near it. The same with the target's
    sizes swapped and c for s (the same Gaussian turned by 90 degrees) serves where c < s, so a box matched
    with w and h swapped is exact too. The shape term is (X^2 - Y^2) / (X + Y).
    """
    xp = pair.xp
    aligned = ((p1 - p2) ** 2 + (q1 - q2) ** 2) * ((p1 + p2) ** 2 + (q1 + q2) ** 2) + 4 * pair.sin2 * (
        (p1**2 - q1**2) * (p2**2 - q2**2))
    crossed = ((p1 - q2) ** 2 + (q1 - p2) ** 2) * ((p1 + q2) ** 2 + (q1 + p2) ** 2) + 4 * pair.cos2 * (
        (p1**2 - q1**2) * (q2**2 - p2**2))
    return xp.where(pair.cos2 >= pair.sin2, aligned, crossed)


def kl_shape_term(pair: Pair, *, xp: ModuleType) -> Array:
    """2 KL(N_t || N_p) at equal centres, Tr(S_p^-1 S_t) - ln(det S_t / det S_p) - 2, free of cancellation near 0.

    With u = (w_t / w_p)^2, v = (h_t / h_p)^2 and phi(r) = r - 1 - ln r >= 0 (by log1p of r - 1), it is
    phi(u) + phi(v) + s (h_t^2 - w_t^2)(h_p^2 - w_p^2) / (w_p h_p)^2: each term >= 0 near the optimum. Where
    c < s the target's sizes are swapped and c takes the place of s (the same Gaussian).
    """
    p, t = pair.p, pair.t

    def phi(num: Array, den: Array) -> Array:  # r - 1 - ln r for r = (num / den)^2
        e = (num - den) * (num + den) / den**2  # r - 1
        near = xp.abs(e) < 0.5  # log1p there; far from 1, where r itself may be below the precision of 1 + r
        return xp.where(near, e - xp.log1p(xp.where(near, e, 0)), e - 2 * (xp.log(num) - xp.log(den)))

    scale = (p.h - p.w) * (p.h + p.w) / p.w**2 / p.h**2  # one division at a time: (w h)^4 underflows float32
    aligned = phi(t.w, p.w) + phi(t.h, p.h) + pair.sin2 * (t.h**2 - t.w**2) * scale
    crossed = phi(t.h, p.w) + phi(t.w, p.h) + pair.cos2 * (t.w**2 - t.h**2) * scale
    return xp.where(pair.cos2 >= pair.sin2, aligned, crossed)


def along(box: Box, dx: Array, dy: Array) -> tuple[Array, Array]:
    """The offset ``(dx, dy)`` in the box's frame: its components along the width and the height."""
    return dx * box.cos + dy * box.sin, dy * box.cos - dx * box.sin


def floored_sqrt(x: Array, floor: float, *, xp: ModuleType) -> Array:
    """``sqrt(max(x, floor))``: a finite gradient where ``x`` reaches 0."""
    return xp.sqrt(clip(x, floor, None, xp=xp))


def postprocess(distance: Array, fun: str, tau: float, *, xp: ModuleType) -> Array:
    """mmrotate's normalisation: f(d) = log1p(d), sqrt(d) or d; then 1 - 1 / (tau + f(d)) if tau >= 1."""
    if fun == "log1p":
        distance = xp.log1p(distance)
    elif fun == "sqrt":
        distance = floored_sqrt(distance, xp.finfo(distance.dtype).eps ** 2, xp=xp)
    return 1 - 1 / (tau + distance) if tau >= 1 else distance


def check_fun(caller: str, fun: str, tau: Any) -> float:
    """``fun`` one of mmrotate's, ``tau >= 0`` (a concrete number: it picks the formula); returns ``tau``."""
    checks.check_option(caller, "fun", fun, ("log1p", "sqrt", "none"))
    tau = checks.check_nonnegative(caller, "tau", tau)
    if not isinstance(tau, float):
        raise TypeError(f"{caller}: tau must be a concrete number (it selects the formula), got a traced {tau!r}")
    return tau


def finish(caller: str, loss: Array, weight: Any, reduction: str, avg_factor: Any, dtype: Any, *,
          xp: ModuleType) -> Array:
    return restore(weighted_reduction(caller, loss, weight, reduction, avg_factor, xp=xp), dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Polygon clipping for the exact rotated IoU
# --------------------------------------------------------------------------- #


SLOTS = 12  # vertex slots kept after each clipping step


def clip_polygon(px: Array, py: Array, valid: Array, nx: Array, ny: Array, offset: Array, *,
          xp: ModuleType) -> tuple[Array, Array, Array]:
    """One Sutherland-Hodgman step: keep the part of each polygon where ``offset - n . p >= 0``.

    ``px, py, valid``: ``(..., K)`` polygons, valid vertices first, the others
    repeating vertex 0 (so ``roll`` reaches each vertex's successor); ``n``,
    ``offset``: ``(...)``. Returns the clipped polygons in the same layout with
    ``min(2K, SLOTS)`` slots.
    """
    s = offset[..., None] - nx[..., None] * px - ny[..., None] * py
    qx, qy, s_next = xp.roll(px, -1, axis=-1), xp.roll(py, -1, axis=-1), xp.roll(s, -1, axis=-1)
    inside = s >= 0
    cross = valid & (inside != (s_next >= 0))
    frac = s / xp.where(cross, s - s_next, 1)  # the denominator is nonzero where the edge crosses
    k2 = 2 * px.shape[-1]
    lead = px.shape[:-1]
    cand_x = xp.reshape(xp.stack((px, px + frac * (qx - px)), axis=-1), (*lead, k2))
    cand_y = xp.reshape(xp.stack((py, py + frac * (qy - py)), axis=-1), (*lead, k2))
    keep = xp.reshape(xp.stack((valid & inside, cross), axis=-1), (*lead, k2))
    slots = min(k2, SLOTS)
    position = xp.arange(k2, device=device(px))
    order = xp.argsort(xp.where(keep, position, position + k2), axis=-1, stable=True)[..., :slots]
    out_x = take_along_axis(cand_x, order, axis=-1, xp=xp)
    out_y = take_along_axis(cand_y, order, axis=-1, xp=xp)
    count = xp.sum(xp.astype(keep, xp.int32), axis=-1, keepdims=True)
    out_valid = xp.arange(slots, device=device(px)) < count
    return xp.where(out_valid, out_x, out_x[..., :1]), xp.where(out_valid, out_y, out_y[..., :1]), out_valid
