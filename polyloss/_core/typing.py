"""The shared type aliases, each declared here once; every module above ``_backend`` imports them from here.

``Array`` is declared in ``_backend`` (which imports nothing above it) and
re-exported here: one definition, one name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, TypeAlias

from .._backend import Array

__all__ = [
    "AllReduce",
    "Array",
    "BoxFormat",
    "ElementWeight",
    "Mode",
    "Reduction",
    "RotatedBoxFormat",
    "Sampling",
    "Weight",
]

Reduction = Literal["mean", "sum", "none"]
"""How a loss reduces: over the counted elements, their sum, or none (per element / per class)."""

Mode = Literal["binary", "multilabel", "multiclass"]
"""A segmentation loss's activation: sigmoid per channel, or softmax over the class axis."""

Weight: TypeAlias = Sequence[float] | Array | None
"""Per-class weights, ``(C,)``."""

ElementWeight: TypeAlias = Weight | float
"""A weight per element: a scalar, one per class, or a map that broadcasts to the prediction."""

AllReduce: TypeAlias = Callable[[Array], Array] | None
"""A cross-device sum of per-class statistics (e.g. ``torch.distributed.all_reduce`` wrapped), or none."""

Sampling: TypeAlias = float | Sequence[float] | None
"""Grid spacing: one positive number, one per spatial axis, or ``None`` (1)."""

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
"""Axis-aligned box layouts."""

RotatedBoxFormat = Literal["xywhr", "cxcywhr"]
"""Rotated box layouts (angle in radians last)."""
