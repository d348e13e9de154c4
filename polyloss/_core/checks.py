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

from .._backend import Array, is_concrete, value_range

REDUCTIONS = ("mean", "sum", "none")


def check_option(fn: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` must be one of ``choices`` (compared with ``==``, so ``None`` fails)."""
    if not isinstance(value, str | bool | int | type(None)) or value not in choices:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_reduction(fn: str, reduction: Any) -> None:
    check_option(fn, "reduction", reduction, REDUCTIONS)


def check_nonnegative(fn: str, name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {value!r}")


def check_in_unit_interval(fn: str, name: str, value: float, *, closed: bool = True) -> None:
    ok = 0 <= value <= 1 if closed else 0 < value < 1
    if not ok:
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{fn}: {name} must lie in {interval}, got {value!r}")


def check_floating(fn: str, name: str, x: Array, *, xp: ModuleType) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{fn}: {name} must have a real floating dtype, got {x.dtype}")


def check_same_shape(fn: str, y_pred: Array, y_true: Array) -> None:
    if tuple(y_pred.shape) != tuple(y_true.shape):
        raise ValueError(
            f"{fn}: y_true must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
        )


def normalize_axis(fn: str, name: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative index into an array of ``ndim`` dimensions."""
    if isinstance(axis, bool) or not isinstance(axis, int) or not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: {name} must be an integer in [{-ndim}, {ndim - 1}], got {axis!r}")
    return axis % ndim


def is_integer_target(fn: str, y_true: Array, *, xp: ModuleType) -> bool:
    """True for integer class indices, False for floating probabilities; else TypeError."""
    if xp.isdtype(y_true.dtype, "integral"):
        return True
    if xp.isdtype(y_true.dtype, "real floating"):
        return False
    raise TypeError(
        f"{fn}: y_true must hold integer class indices or floating class probabilities, got dtype {y_true.dtype}"
    )


def check_index_target_shape(fn: str, y_pred: Array, y_true: Array, axis: int) -> None:
    """Integer targets have ``y_pred``'s shape without the class axis."""
    want = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    if tuple(y_true.shape) != want:
        raise ValueError(
            f"{fn}: integer y_true must have the shape of y_pred without its class axis {axis}, "
            f"{want}, got {tuple(y_true.shape)}"
        )


def check_labels(fn: str, labels: Array, num_classes: int, ignore_index: int | None, *, xp: ModuleType) -> None:
    """Every label lies in ``[0, num_classes)`` (eager arrays only).

    Call it on labels whose ignored entries were already replaced by a valid
    class: two reductions then suffice, and they are the ones the loss reads.
    """
    if not is_concrete(labels) or 0 in labels.shape:
        return
    low, high = value_range(labels, xp=xp)
    if low < 0 or high >= num_classes:
        allowed = f"[0, {num_classes})" + ("" if ignore_index is None else f" or equal ignore_index={ignore_index}")
        raise ValueError(f"{fn}: y_true labels must lie in {allowed}, found {low if low < 0 else high}")


def check_ignore_index(fn: str, ignore_index: Any, integer_target: bool) -> None:
    if ignore_index is None:
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"{fn}: ignore_index must be an int or None, got {ignore_index!r}")
    if not integer_target:
        raise ValueError(f"{fn}: ignore_index applies to integer class-index targets only, got floating y_true")


def check_class_subset(fn: str, classes: Any, num_classes: int) -> tuple[int, ...]:
    """``classes``: a non-empty sequence of distinct class indices in ``[0, num_classes)``."""
    try:
        items = tuple(operator.index(c) for c in classes if not isinstance(c, bool))
        ok = 0 < len(items) == len(classes) == len(set(items)) and all(0 <= c < num_classes for c in items)
    except TypeError:
        ok = False
    if isinstance(classes, str) or not ok:
        raise ValueError(
            f"{fn}: classes must be a non-empty sequence of distinct integers in [0, {num_classes}), got {classes!r}"
        )
    return items


BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


def check_boxes(fn: str, name: str, boxes: Array, *, xp: ModuleType) -> None:
    """Boxes are a floating array of shape ``(..., 4)``."""
    check_floating(fn, name, boxes, xp=xp)
    if boxes.ndim < 1 or boxes.shape[-1] != 4:
        raise ValueError(f"{fn}: {name} must have shape (..., 4), one box per row, got {tuple(boxes.shape)}")


def check_box_format(fn: str, name: str, value: Any) -> None:
    check_option(fn, name, value, BOX_FORMATS)


def check_integer_range(fn: str, name: str, x: Array, low: int, high: int, *, xp: ModuleType) -> None:
    """Every value of integer ``x`` lies in ``[low, high]`` (eager arrays only)."""
    if not is_concrete(x) or 0 in x.shape:
        return
    lo, hi = int(xp.min(x)), int(xp.max(x))
    if lo < low or hi > high:
        raise ValueError(f"{fn}: {name} must lie in [{low}, {high}], found {lo if lo < low else hi}")
