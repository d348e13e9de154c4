"""Argument validation shared by every public function.

Every message names the function, the argument, what was expected and what
was given. Shape, dtype and option checks always run (they are static under
``jax.jit`` and ``torch.compile``); checks that read values run only on eager
arrays (see ``_xp.is_concrete``: NumPy, eager torch, concrete JAX) and are
skipped, never an error, while tracing. The segmentation losses validate
through ``_inputs.prepare``, which builds on these.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from array_api_compat import is_array_api_obj

from .._backend import Array, array_namespace, device, host_view, is_concrete, value_range

REDUCTIONS = ("mean", "sum", "none")


def check_option(caller: str, name: str, value: Any, choices: Sequence[Any]) -> None:
    """``value`` must be one of ``choices`` (compared with ``==``, so ``None`` fails)."""
    if not isinstance(value, (str, bool, int, type(None))) or value not in choices:
        raise ValueError(f"{caller}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_reduction(caller: str, reduction: Any) -> None:
    check_option(caller, "reduction", reduction, REDUCTIONS)


def is_real_scalar(value: Any) -> bool:
    """True for a real number option: a Python or NumPy number (not a bool), or a 0-d real array (traced too)."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        return False
    if isinstance(value, (int, float, numbers.Real)):
        return True
    return getattr(value, "shape", None) == () and hasattr(value, "dtype") and not _is_bool_dtype(value.dtype)


def _is_bool_dtype(dtype: Any) -> bool:
    return str(dtype).rsplit(".", 1)[-1] == "bool"


def check_real(caller: str, name: str, value: Any) -> Any:
    """A real option as a Python ``float`` (numbers, NumPy scalars, concrete 0-d arrays); a traced 0-d array as is.

    A traced value (a JAX tracer under ``jit``/``vmap``, a tensor while compiling or on an accelerator, see
    ``is_concrete``) flows into the formula unread, so hyper-parameters can be swept; its range checks are
    skipped. Anything else (``None``, a bool, a string, an array of more than one value) is a TypeError.
    """
    if not is_real_scalar(value):
        raise TypeError(f"{caller}: {name} must be a real number (or a 0-d array), got {value!r}")
    if isinstance(value, (int, float, numbers.Real)):
        return float(value)
    if not is_concrete(value):
        return value
    host, _ = host_view(value, xp=array_namespace(value))
    return float(host)


def check_int(caller: str, name: str, value: Any) -> int:
    """An integer option through ``operator.index`` (Python and NumPy integers, 0-d integer arrays); not a bool."""
    if isinstance(value, bool):
        raise TypeError(f"{caller}: {name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{caller}: {name} must be an integer, got {value!r}") from None


def check_count(caller: str, name: str, value: Any, low: int) -> int:
    """An integer option (``check_int``) that is at least ``low``."""
    count = check_int(caller, name, value)
    if count < low:
        what = "a positive" if low == 1 else "a non-negative" if low == 0 else f"an (>= {low})"
        raise ValueError(f"{caller}: {name} must be {what} int, got {count}")
    return count


def check_flag(caller: str, name: str, value: Any) -> bool:
    """A flag is a Python bool: ``"False"``, 0 or 1 are TypeErrors (a string would read as True)."""
    if not isinstance(value, bool):
        raise TypeError(f"{caller}: {name} must be True or False, got {value!r}")
    return value


def is_zero(value: Any) -> bool:
    """True for a validated real option known to be 0 (a traced one is not known: False)."""
    return isinstance(value, (int, float)) and value == 0


def check_flags(caller: str, /, **flags: Any) -> None:
    """Every keyword is a bool flag (``check_flag``); ``None`` passes for flags whose default is None."""
    for name, value in flags.items():
        if value is not None:
            check_flag(caller, name, value)


def check_nonnegative(caller: str, name: str, value: Any) -> Any:
    """``check_real``, and ``>= 0`` where the value is known (NaN fails)."""
    value = check_real(caller, name, value)
    if isinstance(value, float) and not value >= 0:
        raise ValueError(f"{caller}: {name} must be >= 0, got {value!r}")
    return value


def check_in_unit_interval(caller: str, name: str, value: Any, *, closed: bool = True) -> Any:
    """``check_real``, and within [0, 1] (``closed``) or (0, 1) where the value is known."""
    value = check_real(caller, name, value)
    if isinstance(value, float) and not (0 <= value <= 1 if closed else 0 < value < 1):
        interval = "[0, 1]" if closed else "(0, 1)"
        raise ValueError(f"{caller}: {name} must lie in {interval}, got {value!r}")
    return value


def check_floating(caller: str, name: str, x: Array, *, xp: ModuleType) -> None:
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{caller}: {name} must have a real floating dtype, got {x.dtype}")


def check_same_shape(caller: str, y_pred: Array, y_true: Array, name: str = "y_true") -> None:
    """``y_true`` (called ``name`` by the caller) has ``y_pred``'s shape."""
    if tuple(y_pred.shape) != tuple(y_true.shape):
        raise ValueError(
            f"{caller}: {name} must have the shape of y_pred {tuple(y_pred.shape)}, got {tuple(y_true.shape)}"
        )


def normalize_axis(caller: str, name: str, axis: Any, ndim: int) -> int:
    """``axis`` (any integer, ``operator.index``) as a non-negative index into an array of ``ndim`` dimensions."""
    index = check_int(caller, name, axis)
    if not -ndim <= index < ndim:
        raise ValueError(f"{caller}: {name} must be an integer in [{-ndim}, {ndim - 1}], got {index}")
    return index % ndim


def check_ignore_index(caller: str, ignore_index: Any, integer_target: bool, target_name: str = "y_true"
                       ) -> int | None:
    """``ignore_index`` as a Python int (``operator.index``), or None; only for integer targets (``target_name``:
    what the caller calls them)."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool):
        raise TypeError(f"{caller}: ignore_index must be an int or None, got {ignore_index!r}")
    try:
        index = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"{caller}: ignore_index must be an int or None, got {ignore_index!r}") from None
    if not integer_target:
        raise ValueError(
            f"{caller}: ignore_index applies to integer class-index targets only, got floating {target_name}")
    return index


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
    lo, hi = value_range(x, xp=xp)
    if lo < low or hi > high:
        raise ValueError(f"{caller}: {name} must lie in [{low}, {high}], found {lo if lo < low else hi}")


def check_array(caller: str, name: str, x: Any) -> None:
    """``x`` is an array of a supported library: None, a Python number, a string or a list is a TypeError."""
    if isinstance(x, (bool, int, float, complex, str, bytes)) or not is_array_api_obj(x):
        raise TypeError(
            f"{caller}: {name} must be an array (NumPy, PyTorch, JAX, CuPy, ...), got {type(x).__name__}; "
            "convert it with your library's asarray first"
        )


def weight_array(caller: str, name: str, w: Any, /, *, like: Array, xp: ModuleType) -> Array:
    """``w`` (a number, a sequence of numbers or an array) as an array in ``like``'s dtype, on its device.

    Anything else (a string, None inside a sequence) is a TypeError naming ``caller`` and ``name``.
    """
    if isinstance(w, (str, bytes)):
        raise TypeError(f"{caller}: {name} must be a number, a sequence of numbers or an array, got {w!r}")
    try:
        return xp.asarray(w, dtype=like.dtype, device=device(like))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{caller}: {name} must be a number, a sequence of numbers or an array, got {w!r}"
        ) from error
