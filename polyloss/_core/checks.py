"""Argument validation shared by every public function.

Every message names the function, the argument, what was expected and what
was given. Shape, dtype and option checks always run (they are static under
``jax.jit`` and ``torch.compile``); checks that read values run only on eager
arrays (see ``_xp.is_concrete``: NumPy, eager torch, concrete JAX) and are
skipped, never an error, while tracing. The segmentation losses validate
through ``_inputs.prepare``, which builds on these.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._backend import Array, is_concrete

REDUCTIONS = ("mean", "sum", "none")


def check_option(caller: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` must be one of ``choices`` (compared with ``==``, so ``None`` fails)."""
    if not isinstance(value, str | bool | int | type(None)) or value not in choices:
        raise ValueError(f"{caller}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_reduction(caller: str, reduction: Any) -> None:
    check_option(caller, "reduction", reduction, REDUCTIONS)


def check_nonnegative(caller: str, name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{caller}: {name} must be >= 0, got {value!r}")


def check_in_unit_interval(caller: str, name: str, value: float, *, closed: bool = True) -> None:
    ok = 0 <= value <= 1 if closed else 0 < value < 1
    if not ok:
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{caller}: {name} must lie in {interval}, got {value!r}")


def check_floating(caller: str, name: str, x: Array, *, xp: ModuleType) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{caller}: {name} must have a real floating dtype, got {x.dtype}")


def check_same_shape(caller: str, y_pred: Array, y_true: Array) -> None:
    if tuple(y_pred.shape) != tuple(y_true.shape):
        raise ValueError(
            f"{caller}: y_true must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
        )


def normalize_axis(caller: str, name: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative index into an array of ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{caller}: {name} must be an integer in [{-ndim}, {ndim - 1}], got {axis!r}")
    return axis % ndim


def check_ignore_index(caller: str, ignore_index: Any, integer_target: bool) -> None:
    if ignore_index is None:
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"{caller}: ignore_index must be an int or None, got {ignore_index!r}")
    if not integer_target:
        raise ValueError(f"{caller}: ignore_index applies to integer class-index targets only, got floating y_true")


def check_class_subset(caller: str, classes: Any, num_classes: int) -> tuple[int, ...]:
    """``classes``: a non-empty sequence of distinct class indices in ``[0, num_classes)``."""
    try:
        items = tuple(operator.index(c) for c in classes if not isinstance(c, bool))
        ok = 0 < len(items) == len(classes) == len(set(items)) and all(0 <= c < num_classes for c in items)
    except TypeError:
        ok = False
    if isinstance(classes, str) or not ok:
        raise ValueError(
            f"{caller}: classes must be a non-empty sequence of distinct integers in [0, {num_classes}), "
            f"got {classes!r}"
        )
    return items


BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(caller: str, name: str, boxes: Array, *, xp: ModuleType) -> None:
    """Boxes are a floating array of shape ``(..., 4)``."""
    check_floating(caller, name, boxes, xp=xp)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{caller}: {name} must have shape (..., 4), one box per row, got {tuple(boxes.shape)}")


def check_box_format(caller: str, name: str, value: Any) -> None:
    check_option(caller, name, value, BOX_FORMATS)


def check_integer_range(caller: str, name: str, x: Array, low: int, high: int, *, xp: ModuleType) -> None:
    """Every value of integer ``x`` lies in ``[low, high]`` (eager arrays only)."""
    if not is_concrete(x) or 0 in x.shape:
        return
    lo, hi = int(xp.min(x)), int(xp.max(x))
    if lo < low or hi > high:
        raise ValueError(f"{caller}: {name} must lie in [{low}, {high}], found {lo if lo < low else hi}")
