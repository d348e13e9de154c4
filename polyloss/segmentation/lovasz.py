"""Lovasz hinge and Lovasz-Softmax (Berman, Rannen Triki & Blaschko, CVPR 2018).

Both are the Lovasz extension of the Jaccard loss evaluated at per-pixel
errors: sort a row's errors in decreasing order, and weigh the k-th by the
increment of the Jaccard loss when the k-th pixel joins the error set
(Algorithm 1 of the paper, the reference's ``lovasz_grad``):

    J_k = 1 - (G - F_k) / (G + k - F_k) = k / (G + k - F_k),  g_k = J_k - J_{k-1},  loss = sum_k e_(k) g_k

with ``G`` the row's foreground count and ``F_k`` the foreground among the
first ``k`` sorted pixels. A row is one image (or the whole batch) for the
hinge, one class of one image (or of the batch) for the softmax. Rows are
sorted in batched sorts (``_backend.sort_descending``), as many rows per sort
as fit ``ROW_CHUNK_ELEMENTS`` (every row at once below it: a single sort on
the 2-D inputs of the benchmarks), so the sort's permutation and the
Jaccard weights' scratch of a 3-D volume stay a fraction of the logits' size
(one sort of every row held an int64 permutation twice the logits); ignored pixels are not
removed (shapes stay fixed) but get an error of 0 and a foreground of 0: they
sort after every positive error, so they change no count a contributing
pixel sees, and contribute 0 themselves. The hinge's errors are clipped at 0
before the sort (the reference clips after it: the same value, since
non-positive errors contribute nothing and come last either way).

The gradient with respect to pixel i's error is ``g`` at i's sorted
position: the Lovasz extension's gradient (the reference's ``lovasz_grad``
vector). ``g`` is computed without gradient and scattered back to each
pixel's position (``_backend.unpermute``), so the loss is ``sum(errors * g)``
and autograd keeps ``g`` alone, not the sort's permutation and outputs.
Equal errors may sort in any order (``stable=False``, as the reference's
``torch.sort``; about 10% faster on torch): the value does not depend on it,
and at exact ties the gradient is the subgradient of the order the backend
picks.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Literal

from .._backend import (
    Array,
    cumulative_sum,
    device,
    moveaxis,
    numel,
    softmax,
    sort_descending,
    stop_gradient,
    take_along_axis,
    unpermute,
)
from .._core import checks
from .._core.inputs import LABELS, LABELS_OF_PROBABILITIES, Labels, class_vector, prepare, returned
from .._core.reduce import reduce_loss, safe_divide
from .._core.typing import Reduction

__all__ = ["lovasz_hinge_loss", "lovasz_softmax_loss"]


ROW_CHUNK_ELEMENTS = 1 << 22  # elements sorted at once (16 MiB of float32 errors); a row is never split


def _lovasz_rows(errors: Array, fg: Array, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """``_lovasz_sorted_rows`` over groups of whole rows of at most ``ROW_CHUNK_ELEMENTS`` elements (one row at
    least), concatenated: the same values and gradients, with the sort's scratch bounded by the group."""
    lead, pixels = tuple(errors.shape[:-1]), errors.shape[-1]
    rows = numel(errors) // pixels if pixels else 0
    per_group = max(1, ROW_CHUNK_ELEMENTS // max(pixels, 1))
    if rows <= per_group:
        return _lovasz_sorted_rows(errors, fg, xp=xp)
    errors, fg = xp.reshape(errors, (rows, pixels)), xp.reshape(fg, (rows, pixels))
    parts = [_lovasz_sorted_rows(errors[r : r + per_group], fg[r : r + per_group], xp=xp)
             for r in range(0, rows, per_group)]
    loss, total = (xp.reshape(xp.concat([part[i] for part in parts]), lead) for i in (0, 1))
    return loss, total


def _lovasz_sorted_rows(errors: Array, fg: Array, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """Lovasz extension of the Jaccard loss along the last axis, and each row's foreground count.

    ``errors`` (..., P) are non-negative, 0 at ignored pixels; ``fg`` (..., P)
    is the 0/1 foreground (bool, or ``errors``' dtype), 0 at ignored pixels. Ignored
    pixels then sort among (or after) the zero errors, change no count that
    a positive error sees, and contribute 0. Counts are exact below 2**24
    pixels per row in float32, as the reference's. Both results have shape
    ``errors.shape[:-1]``; rows without pixels score 0 with a zero gradient.

    The weights ``g`` depend on the errors only through their order, so they
    are computed without gradient, written back to each pixel's own position
    (``unpermute``, the inverse of the sort's gather) and the loss is
    ``sum(errors * g)``: the same value and gradient as differentiating
    through the sort, but autograd keeps one full-size array (``g``) instead
    of the permutation, the sorted errors and the weights.
    """
    if errors.shape[-1] == 0:
        zero = xp.sum(errors, axis=-1)
        return zero, zero
    e_sorted, perm = sort_descending(stop_gradient(errors, xp=xp), stable=False, xp=xp)  # ties: any order
    del e_sorted
    # Each full-size intermediate is dropped as soon as the next exists.
    fg_sorted = xp.astype(take_along_axis(fg, perm, axis=-1, xp=xp), errors.dtype, copy=False)
    total = xp.sum(fg_sorted, axis=-1, keepdims=True)  # G (exact: integer counts), no view of the running sum
    union = cumulative_sum(fg_sorted, axis=-1, xp=xp)  # F_k
    del fg_sorted
    seen = xp.arange(1, errors.shape[-1] + 1, dtype=errors.dtype, device=device(errors))  # k
    union = (total + seen) - union  # G + k - F_k >= k >= 1
    jaccard = seen / union  # 1 - (G - F_k) / union
    del union
    grad = xp.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)
    del jaccard
    grad = unpermute(grad, perm, xp=xp)  # g at each pixel's own position
    del perm
    return xp.sum(errors * grad, axis=-1), total[..., 0]


def lovasz_hinge_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """Binary Lovasz hinge loss (Berman et al. 2018), on logits.

    e_i = 1 - x_i (2 y_i - 1);  loss = sum_k max(e_(k), 0) g_k  (module docstring)

    ``y_pred`` holds logits of any shape ``(N, ...)``; ``y_true`` has the same
    shape with binary labels (float, bool or integer 0/1). ``per_image=True``
    scores each sample on its own (one row per sample), ``False`` the whole
    batch as one row. ``ignore_index`` (integer ``y_true`` only) drops pixels
    with that label; an image (or batch) with no valid pixel scores 0 with a
    zero gradient and, with ``per_image``, still counts in the mean over
    images, as in the reference.

    ``reduction``: ``"mean"`` over images, ``"sum"`` over images, ``"none"``
    the per-image losses ``(N,)``; with ``per_image=False`` all three return
    the single batch loss (0-d).

    Peers: reference LovaszSoftmax ``lovasz_hinge(logits, labels, per_image,
    ignore)`` equals this with the same arguments (it has no ``reduction``:
    ``"mean"``). smp ``LovaszLoss("binary" or "multilabel", per_image,
    ignore_index)`` is the reference code; mind smp's default
    ``per_image=False`` against ours ``True``. kornia ``lovasz_hinge_loss(pred
    (B, 1, H, W), target (B, H, W))`` equals this at ``per_image=True`` with
    ``y_true`` given the channel axis.

    Args:
        y_pred: logits, any shape ``(N, ...)``.
        y_true: binary labels of ``y_pred``'s shape (float, bool or integer 0/1).
        per_image: one row per sample (default) or the batch as one row.
        ignore_index: integer label whose pixels are left out.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over images.

    Returns:
        A 0-d array, or ``(N,)`` for ``"none"`` with ``per_image``; in ``y_pred``'s dtype, on its device.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[2.0, -1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]])
        >>> round(float(pl.lovasz_hinge_loss(x, y)), 4)
        0.25

    References:
        Berman et al., The Lovasz-Softmax loss, CVPR 2018. https://arxiv.org/abs/1705.08790
    """
    checks.check_flags("lovasz_hinge_loss", per_image=per_image)
    fn = "lovasz_hinge_loss"
    seg = prepare(fn, y_pred, y_true, mode="binary", ignore_index=ignore_index, reduction=reduction)
    xp, target = seg.xp, seg.dense
    if per_image and y_pred.ndim < 1:
        raise ValueError(f"{fn}: per_image=True needs y_pred with a batch axis, got a 0-d array")
    rows = (y_pred.shape[0] if per_image else 1, 0)
    if numel(y_pred):
        rows = (rows[0], numel(y_pred) // rows[0])
    x = xp.reshape(seg.x, rows)
    fg = xp.reshape(target.target, rows)
    valid = None if target.valid is None else xp.reshape(target.valid, rows)
    errors = 1 - x * (2 * fg - 1)
    keep = ~(errors <= 0)  # positive errors, and NaN, so a NaN logit gives a NaN loss
    if valid is not None:
        keep = keep & valid
    loss, _ = _lovasz_rows(xp.where(keep, errors, 0), fg, xp=xp)  # (rows,)
    loss = reduce_loss(loss, reduction=reduction, xp=xp) if per_image else loss[0]
    return returned(seg, loss)


def lovasz_softmax_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    classes: Literal["present", "all"] | Sequence[int] = "present",
    per_image: bool = False,
    ignore_index: int | None = None,
    class_axis: int = 1,
    from_logits: bool = True,
    weight: Sequence[float] | Array | None = None,
    reduction: Reduction = "mean",
) -> Array:
    """Multiclass Lovasz-Softmax loss (Berman et al. 2018).

    e_ic = |[y_i = c] - p_ic|;  L_c = sum_k e_(k)c g_kc  (module docstring);  loss = mean_c L_c

    ``y_pred`` (N, C, *spatial) with ``class_axis=1`` (``-1``: channels last)
    holds logits (``from_logits=True``, softmax over the class axis inside)
    or probabilities; ``y_true`` integer class indices of ``y_pred``'s shape
    without the class axis.

    ``classes``: ``"present"`` averages over the classes that occur among the
    valid pixels (of the batch, or of each image with ``per_image``);
    ``"all"`` over every class (an absent class scores its largest
    probability); a sequence of distinct class indices over those, present or
    not. ``per_image=False`` scores each class over the whole batch;
    ``True`` scores each image on its own and averages the image losses; an
    image with no valid pixel (all ``ignore_index``) scores 0 and still counts,
    as in the reference. With nothing valid at all the loss is 0 with a zero
    gradient.

    ``weight``: one weight per class, shape ``(C,)`` (kornia PR #2879): each
    class loss is multiplied by its weight, and ``"mean"`` divides by the
    summed weights of the classes averaged over instead of their count.

    ``reduction``: ``"mean"`` is the reference's value (mean over classes,
    then over images); ``"sum"`` sums the (weighted) class losses (of every
    image); ``"none"`` returns them, shape ``(K,)`` or ``(N, K)`` with
    ``per_image``, ``K`` the number of scored classes (``C``, or
    ``len(classes)``), with 0 for classes that ``"present"`` leaves out.

    Peers: reference LovaszSoftmax ``lovasz_softmax(probas, labels, classes,
    per_image, ignore)`` equals this with ``from_logits=False`` on its
    probabilities (an image with only ignored pixels breaks its per-image
    mean). smp ``LovaszLoss("multiclass", per_image, ignore_index)`` equals
    this on logits with ``classes="present"``. kornia
    ``lovasz_softmax_loss(pred, target)`` equals this with ``per_image=True,
    classes="all"``.

    Args:
        y_pred: scores ``(N, C, *spatial)`` (``class_axis=1``) or ``(N, *spatial, C)`` (``-1``).
        y_true: integer labels, ``y_pred``'s shape without the class axis.
        classes: ``"present"``, ``"all"`` or a sequence of class indices.
        per_image: score each image on its own.
        ignore_index: integer label whose pixels are left out.
        class_axis: the class axis of ``y_pred``.
        from_logits: ``y_pred`` holds logits (default) or probabilities.
        weight: one weight per class, ``(C,)``, or None.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        A 0-d array, or the class losses ``(K,)`` / ``(N, K)`` for ``"none"``; in ``y_pred``'s dtype.

    Raises:
        ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
        TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)
        >>> round(float(pl.lovasz_softmax_loss(x, y)), 4)
        0.0401

    References:
        Berman et al., The Lovasz-Softmax loss, CVPR 2018. https://arxiv.org/abs/1705.08790
    """
    checks.check_flags("lovasz_softmax_loss", per_image=per_image, from_logits=from_logits)
    fn = "lovasz_softmax_loss"
    seg = prepare(fn, y_pred, y_true, class_axis=class_axis, from_logits=from_logits, ignore_index=ignore_index,
                  reduction=reduction, layout=LABELS if from_logits else LABELS_OF_PROBABILITIES)
    xp, axis, num_classes, target = seg.xp, seg.axis, seg.num_classes, seg.target
    if not isinstance(target, Labels):  # pragma: no cover - LABELS admit labels only
        raise TypeError(f"{fn}: y_true must hold integer class indices")
    present_only = isinstance(classes, str) and classes == "present"
    if isinstance(classes, str):
        checks.check_option(fn, "classes", classes, ("present", "all"))
        subset = None
    else:
        subset = checks.check_class_subset(fn, classes, num_classes)

    p = softmax(seg.x, axis=axis, xp=xp) if from_logits else seg.x
    # Rows: (N, C, M) per image, (C, N * M) for the batch; the class axis is `cdim`.
    n = y_pred.shape[0]
    pixels = numel(target.labels) // n if n else 0
    if per_image:
        cdim, p = 1, xp.reshape(moveaxis(p, source=axis, destination=1, xp=xp), (n, num_classes, pixels))
        labels = xp.reshape(target.labels, (n, 1, pixels))
    else:
        cdim, p = 0, xp.reshape(moveaxis(p, source=axis, destination=0, xp=xp), (num_classes, n * pixels))
        labels = xp.reshape(target.labels, (1, n * pixels))
    ids = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    w = None if weight is None else class_vector(seg, "weight", weight)
    if subset is not None:
        ids = xp.asarray(subset, dtype=labels.dtype, device=device(labels))
        p = xp.take(p, ids, axis=cdim)
        w = None if w is None else xp.take(w, ids, axis=0)
    ids = xp.reshape(ids, (-1, 1))

    valid = None if target.valid is None else xp.reshape(target.valid, labels.shape)
    fg = labels == ids if valid is None else (labels == ids) & valid  # rows' shape
    errors = xp.where(fg, 1 - p, p)  # |fg - p|; its backward keeps the bool mask only
    if valid is not None:
        errors = xp.where(valid, errors, 0)
    del p  # the rows' copy of the probabilities: autograd keeps the softmax output, not this
    loss, total = _lovasz_rows(errors, fg, xp=xp)  # (N, K) or (K,); fg stays bool: a quarter of the memory

    counted = xp.ones_like(loss)  # the classes averaged over, times their weights
    if present_only:
        counted = xp.astype(total > 0, loss.dtype)
        loss = xp.where(total > 0, loss, 0)
    if w is not None:
        loss, counted = loss * w, counted * w
    if reduction == "mean":  # over the classes of each image, then over images; none counted (nothing valid): 0
        loss = safe_divide(xp.sum(loss, axis=-1), xp.sum(counted, axis=-1), xp=xp)
    return returned(seg, reduce_loss(loss, reduction=reduction, xp=xp))
