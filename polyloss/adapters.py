"""Adapters for frameworks whose loss signature differs from polyloss's ``loss(y_pred, y_true)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._xp import Array, array_namespace

__all__ = ["keras_loss"]


def keras_loss(loss: Callable[..., Array], /, *, integer_targets: bool = False, **options: Any) -> Callable[..., Array]:
    """A polyloss function as a Keras 3 loss, ``fn(y_true, y_pred)``, on the JAX or torch backend.

    Keras passes the target first and casts it to the prediction's dtype, so
    class indices arrive as floats: ``integer_targets=True`` casts them back
    to int32. ``options`` are passed to ``loss`` (use ``class_axis=-1`` for
    Keras's channels-last layout)::

        model.compile(optimizer="adam",
                      loss=polyloss.keras_loss(polyloss.dice_cross_entropy_loss,
                                               integer_targets=True, class_axis=-1))
    """

    def keras_fn(y_true: Array, y_pred: Array) -> Array:
        if integer_targets:
            xp = array_namespace(y_true)
            y_true = xp.astype(y_true, xp.int32)
        return loss(y_pred, y_true, **options)

    keras_fn.__name__ = getattr(loss, "__name__", "polyloss_loss")
    return keras_fn
