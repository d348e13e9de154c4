"""Adapters for frameworks whose loss signature differs from polyloss's ``loss(y_pred, y_true)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._backend import Array, array_namespace

__all__ = ["keras_loss"]


def keras_loss(loss: Callable[..., Array], /, *, integer_targets: bool = False, **options: Any) -> Callable[..., Array]:
    """A polyloss function as a Keras 3 loss, ``fn(y_true, y_pred)``, on the JAX or torch backend.

    Keras passes the target first and casts it to the prediction's dtype, so
    class indices arrive as floats: ``integer_targets=True`` casts them back
    to int32 before ``loss(y_pred, y_true, **options)`` is called.

    Args:
        loss: any polyloss loss taking ``(y_pred, y_true, /, **options)``.
        integer_targets: cast ``y_true`` to int32 first (class-index targets,
            e.g. for ``cross_entropy`` or the multiclass region losses).
            Default False: targets are passed as Keras gives them.
        **options: keyword options passed to ``loss`` on every call; Keras
            images are channels-last, so multiclass losses want ``class_axis=-1``.

    Returns:
        A function ``(y_true, y_pred) -> loss`` named after ``loss``, for
        ``model.compile(loss=...)``; it returns what ``loss`` returns.

    Raises:
        Nothing itself: ``loss``'s own errors surface on the first call.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> fn = pl.keras_loss(pl.cross_entropy, integer_targets=True, class_axis=-1)
        >>> y_true = np.zeros((1, 2, 2), dtype=np.float32)  # Keras hands labels over as floats
        >>> round(float(fn(y_true, np.zeros((1, 2, 2, 3), dtype=np.float32))), 4)  # log 3
        1.0986

    References:
        Keras 3 losses: https://keras.io/api/losses/
    """

    def keras_fn(y_true: Array, y_pred: Array) -> Array:
        if integer_targets:
            xp = array_namespace(y_true)
            y_true = xp.astype(y_true, xp.int32)
        return loss(y_pred, y_true, **options)

    keras_fn.__name__ = getattr(loss, "__name__", "polyloss_loss")
    return keras_fn
