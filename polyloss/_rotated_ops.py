"""Rotated-box formats: validation and conversion, shared by ``boxes.box_convert`` and ``rotated``.

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
from typing import Literal

from . import _checks as checks
from ._xp import Array, array_namespace, unstack

RotatedBoxFormat = Literal["xywhr", "cxcywhr"]
ROTATED_FORMATS = ("xywhr", "cxcywhr")


def check_rotated_boxes(fn: str, name: str, boxes: Array, *, xp: ModuleType) -> None:
    """Rotated boxes are a floating array of shape ``(..., 5)``."""
    checks.check_floating(fn, name, boxes, xp=xp)
    if boxes.ndim < 1 or boxes.shape[-1] != 5:
        raise ValueError(
            f"{fn}: {name} must have shape (..., 5), one rotated box (x, y, w, h, theta) per row, "
            f"got {tuple(boxes.shape)}"
        )


def centre_form(boxes: Array, box_format: str, /, *, xp: ModuleType) -> tuple[Array, ...]:
    """``(cx, cy, w, h, theta)``, each of shape ``boxes.shape[:-1]``."""
    a, b, w, h, r = unstack(boxes, axis=-1, xp=xp)
    if box_format == "cxcywhr":
        return a, b, w, h, r
    c, s = xp.cos(r), xp.sin(r)
    return a + (w * c - h * s) / 2, b + (w * s + h * c) / 2, w, h, r


def rotated_box_convert(fn: str, boxes: Array, in_fmt: str, out_fmt: str) -> Array:
    """``box_convert`` between the rotated formats (``boxes.py`` delegates 5-column formats here)."""
    xp = array_namespace(boxes)
    if in_fmt not in ROTATED_FORMATS or out_fmt not in ROTATED_FORMATS:
        raise ValueError(
            f"{fn}: rotated formats convert only among themselves ({', '.join(map(repr, ROTATED_FORMATS))}), "
            f"got in_fmt={in_fmt!r}, out_fmt={out_fmt!r}"
        )
    check_rotated_boxes(fn, "boxes", boxes, xp=xp)
    if in_fmt == out_fmt:
        return xp.asarray(boxes, copy=True)
    if out_fmt == "cxcywhr":
        return xp.stack(centre_form(boxes, in_fmt, xp=xp), axis=-1)
    cx, cy, w, h, r = unstack(boxes, axis=-1, xp=xp)
    c, s = xp.cos(r), xp.sin(r)
    return xp.stack((cx - (w * c - h * s) / 2, cy - (w * s + h * c) / 2, w, h, r), axis=-1)
