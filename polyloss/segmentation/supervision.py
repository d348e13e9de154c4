"""Deep supervision: one loss over the outputs of several decoder levels.

``deep_supervision(loss_fn, weights=...)`` returns a loss that takes a list
of predictions at decreasing resolutions and one full-size target, resizes
the target to each prediction (nearest neighbour or max-pooling for labels,
average-pooling for soft targets and distance maps, all static-shape array
API code) and sums the weighted losses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, Literal

from .._backend import Array, array_namespace, device

__all__ = ["deep_supervision"]

Weights = Literal["nnunet", "same", "exp", "two"] | Sequence[float]
Resize = Literal["auto", "nearest", "max", "avg"]
WEIGHT_SCHEMES = ("nnunet", "same", "exp", "two")
RESIZES = ("auto", "nearest", "max", "avg")
FN = "deep_supervision"


def _weights(weights: Weights, levels: int) -> list[float]:
    """One weight per level, highest resolution first."""
    if isinstance(weights, str):
        if weights == "same":
            return [1.0] * levels
        if weights == "exp":
            return [max(0.5**i, 0.0625) for i in range(levels)]
        if weights == "two":
            return [1.0] + [0.5] * (levels - 1)
        if weights == "nnunet":
            raw = [1 / 2**i for i in range(levels)]
            if levels > 1:
                raw[-1] = 0.0  # nnU-Net drops the lowest resolution
            return [w / sum(raw) for w in raw]
        raise ValueError(f"{FN}: weights must be one of {', '.join(map(repr, WEIGHT_SCHEMES))} or a sequence, "
                         f"got {weights!r}")
    values = [float(w) for w in weights]
    if len(values) != levels:
        raise ValueError(f"{FN}: weights must have one entry per prediction ({levels}), got {len(values)}")
    return values


def _spatial_axes(pred: Array, target: Array, class_axis: int) -> tuple[int, ...]:
    """The target's spatial axes: those of ``pred`` (N, C, *spatial) or (N, *spatial, C), or all but the batch."""
    if target.ndim == pred.ndim - 1:
        return tuple(range(1, target.ndim))
    if target.ndim == pred.ndim:
        return tuple(range(2, pred.ndim)) if class_axis in (1, 1 - pred.ndim) else tuple(range(1, pred.ndim - 1))
    raise ValueError(
        f"{FN}: y_true must have the ndim of each prediction ({pred.ndim}) or one less (integer labels), "
        f"got shape {tuple(target.shape)}"
    )


def _resize(target: Array, axes: tuple[int, ...], size: tuple[int, ...], how: str, *, xp: ModuleType) -> Array:
    """``target`` resized along ``axes`` to ``size``: nearest (MONAI's "nearest-exact"), max- or average-pooling."""
    for axis, n in zip(axes, size, strict=True):
        m = target.shape[axis]
        if m == n:
            continue
        if how == "nearest":
            # the source pixel whose centre is nearest: floor((i + 1/2) m / n), torch's "nearest-exact"
            index = [min(math.floor((i + 0.5) * m / n), m - 1) for i in range(n)]
            target = xp.take(target, xp.asarray(index, device=device(target)), axis=axis)
            continue
        if m % n:
            raise ValueError(
                f"{FN}: resize={how!r} pools by whole factors; the target's axis {axis} has {m} pixels, "
                f"not a multiple of the prediction's {n} (use resize='nearest')"
            )
        shape = (*target.shape[:axis], n, m // n, *target.shape[axis + 1 :])
        blocks = xp.reshape(target, shape)
        target = xp.max(blocks, axis=axis + 1) if how == "max" else xp.mean(blocks, axis=axis + 1)
    return target


def deep_supervision(
    loss_fn: Callable[..., Array],
    /,
    *,
    weights: Weights = "nnunet",
    resize: Resize = "auto",
    class_axis: int = 1,
) -> Callable[..., Array]:
    r"""Wrap a loss for deep supervision: a weighted sum over decoder levels.

    L = sum_i w_i loss_fn(y_pred_i, resize(y_true, shape of y_pred_i))

    The returned function ``loss(y_preds, y_true)`` takes a sequence of
    predictions, highest resolution first (a single array is passed through
    as ``loss_fn(y_pred, y_true)``), and one full-size target; each level
    gets the target resized to its spatial shape. ``y_true`` may also be a
    sequence of targets already resized, one per level (nnU-Net's layout).

    Weights, highest resolution first (level i = 0, 1, ...):

    - ``"nnunet"`` (default): 1/2^i, the lowest resolution set to 0, then
      normalised to sum 1 (nnU-Net's ``DeepSupervisionWrapper``).
    - ``"same"``: 1 for every level; ``"exp"``: max(1/2^i, 1/16);
      ``"two"``: 1, then 1/2 for the others (all three unnormalised, as
      ``monai.losses.DeepSupervisionLoss(weight_mode=...)``).
    - a sequence: one weight per prediction.

    Args:
        loss_fn: a loss ``loss_fn(y_pred, y_true) -> array``, e.g.
            ``functools.partial(polyloss.dice_cross_entropy_loss, class_axis=-1)``.
        weights: a scheme name or a sequence of floats.
        resize: how the target shrinks: ``"auto"`` (default): ``"nearest"``
            for integer and bool targets, ``"avg"`` for floating ones;
            ``"nearest"``: the source pixel whose centre is nearest (torch's
            ``"nearest-exact"``, MONAI's default); ``"max"``: max-pooling by
            whole factors (keeps thin structures and small objects);
            ``"avg"``: average-pooling by whole factors (soft targets,
            distance maps).
        class_axis: 1 (default, channels first) or -1 (channels last): where
            the class axis of the predictions (and of dense targets) lies.

    Returns:
        ``loss(y_preds, y_true) -> array``: the weighted sum of the levels'
        losses, whatever ``loss_fn`` returns per level (0-d for reduced losses).

    Raises:
        ValueError: an unknown scheme or ``resize``, a ``weights`` sequence
            whose length differs from the number of predictions, a pooling
            factor that is not whole, a target of the wrong ndim (at call time).

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 8, 8), dtype=int); labels[0, 2:6, 2:6] = 1
        >>> def logits(y):
        ...     return np.stack([np.where(y == 0, 9.0, -9.0), np.where(y == 1, 9.0, -9.0)], axis=1)
        >>> loss = pl.deep_supervision(pl.dice_loss, weights="exp")
        >>> round(float(loss([logits(labels), logits(labels[:, ::2, ::2])], labels)), 4)
        0.0

    References:
        Lee et al., Deeply-Supervised Nets, AISTATS 2015. https://arxiv.org/abs/1409.5185;
        Isensee et al., nnU-Net, Nature Methods 2021. https://doi.org/10.1038/s41592-020-01008-z
    """
    if not callable(loss_fn):
        raise TypeError(f"{FN}: loss_fn must be callable, got {loss_fn!r}")
    if isinstance(weights, str) and weights not in WEIGHT_SCHEMES:
        _weights(weights, 1)  # raises with the message
    if not isinstance(resize, str) or resize not in RESIZES:
        raise ValueError(f"{FN}: resize must be one of {', '.join(map(repr, RESIZES))}, got {resize!r}")
    if isinstance(class_axis, bool) or class_axis not in (1, -1):
        raise ValueError(f"{FN}: class_axis must be 1 or -1, got {class_axis!r}")

    def loss(y_preds: Any, y_true: Any, /) -> Array:  # an array or a sequence of arrays each
        if not isinstance(y_preds, (list, tuple)):
            return loss_fn(y_preds, y_true)
        if not y_preds:
            raise ValueError(f"{FN}: y_preds must hold at least one prediction, got an empty sequence")
        w = _weights(weights, len(y_preds))
        if isinstance(y_true, (list, tuple)):
            if len(y_true) != len(y_preds):
                raise ValueError(f"{FN}: a sequence y_true needs one target per prediction ({len(y_preds)}), "
                                 f"got {len(y_true)}")
            targets = list(y_true)
        else:
            xp = array_namespace(y_true)
            how = resize
            if how == "auto":
                how = "avg" if xp.isdtype(y_true.dtype, "real floating") else "nearest"
            if how == "avg" and not xp.isdtype(y_true.dtype, "real floating"):
                raise ValueError(f"{FN}: resize='avg' needs a floating y_true, got dtype {y_true.dtype}")
            targets = []
            for pred in y_preds:
                axes = _spatial_axes(pred, y_true, class_axis)
                pred_axes = tuple(range(2, pred.ndim)) if class_axis == 1 else tuple(range(1, pred.ndim - 1))
                size = tuple(pred.shape[a] for a in pred_axes)
                targets.append(_resize(y_true, axes, size, how, xp=xp))
        total = None
        for wi, pred, target in zip(w, y_preds, targets, strict=True):
            if wi == 0:
                continue
            term = wi * loss_fn(pred, target)
            total = term if total is None else total + term
        return total if total is not None else 0.0 * loss_fn(y_preds[0], targets[0])

    return loss
