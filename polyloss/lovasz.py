"""Lovasz hinge and Lovasz-Softmax (Berman, Rannen Triki & Blaschko, CVPR 2018).

Both are the Lovasz extension of the Jaccard loss evaluated at per-pixel
errors: sort a row's errors in decreasing order, and weigh the k-th by the
increment of the Jaccard loss when the k-th pixel joins the error set
(Algorithm 1 of the paper, the reference's ``lovasz_grad``):

    J_k = 1 - (G - F_k) / (G + k - F_k) = k / (G + k - F_k),  g_k = J_k - J_{k-1},  loss = sum_k e_(k) g_k

with ``G`` the row's foreground count and ``F_k`` the foreground among the
first ``k`` sorted pixels. A row is one image (or the whole batch) for the
hinge, one class of one image (or of the batch) for the softmax. Every row is
sorted in ONE batched sort (``_xp.sort_descending``); ignored pixels are not
removed (shapes stay fixed) but get an error of 0 and a foreground of 0: they
sort after every positive error, so they change no count a contributing
pixel sees, and contribute 0 themselves. The hinge's errors are clipped at 0
before the sort (the reference clips after it: the same value, since
non-positive errors contribute nothing and come last either way).

Autodiff differentiates through the gather of the sorted errors, so the
gradient with respect to pixel i's error is ``g`` at i's sorted position:
the Lovasz extension's gradient (the reference's ``lovasz_grad`` vector).
Equal errors may sort in any order (``stable=False``, as the reference's
``torch.sort``; about 10% faster on torch): the value does not depend on it,
and at exact ties the gradient is the subgradient of the order the backend
picks.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Literal

from . import _checks as checks
from ._reduce import as_float, promote, restore, safe_divide
from ._xp import Array, array_namespace, cumulative_sum, device, numel, softmax, sort_descending, take_along_axis

__all__ = ["lovasz_hinge_loss", "lovasz_softmax_loss"]


def _lovasz_rows(errors: Array, fg: Array, /, *, xp: ModuleType) -> tuple[Array, Array]:
    """Lovasz extension of the Jaccard loss along the last axis, and each row's foreground count.

    ``errors`` (..., P) are non-negative, 0 at ignored pixels; ``fg`` (..., P)
    is the 0/1 foreground in ``errors``' dtype, 0 at ignored pixels. Ignored
    pixels then sort among (or after) the zero errors, change no count that
    a positive error sees, and contribute 0. Counts are exact below 2**24
    pixels per row in float32, as the reference's. Both results have shape
    ``errors.shape[:-1]``.
    """
    e_sorted, perm = sort_descending(errors, stable=False, xp=xp)  # ties: any order gives the same value
    fg_sorted = take_along_axis(fg, perm, axis=-1, xp=xp)
    cum_fg = cumulative_sum(fg_sorted, axis=-1, xp=xp)  # F_k
    seen = xp.arange(1, errors.shape[-1] + 1, dtype=errors.dtype, device=device(errors))  # k
    total = cum_fg[..., -1:]  # G
    union = (total + seen) - cum_fg  # G + k - F_k >= k >= 1
    jaccard = seen / union  # 1 - (G - F_k) / union
    grad = xp.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)
    return xp.sum(e_sorted * grad, axis=-1), total[..., 0]


def lovasz_hinge_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Array:
    r"""Binary Lovasz hinge loss (Berman et al. 2018), on logits.

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
    """
    fn = "lovasz_hinge_loss"
    xp = array_namespace(y_pred, y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    checks.check_same_shape(fn, y_pred, y_true)
    checks.check_reduction(fn, reduction)
    checks.check_ignore_index(fn, ignore_index, xp.isdtype(y_true.dtype, "integral"))
    if per_image and y_pred.ndim < 1:
        raise ValueError(f"{fn}: per_image=True needs y_pred with a batch axis, got a 0-d array")
    rows = (y_pred.shape[0], -1) if per_image else (1, -1)
    if numel(y_pred) == 0:
        rows = (rows[0], 0)
    x = xp.reshape(promote(y_pred, xp=xp), rows)
    t = xp.reshape(y_true, rows)
    valid = None if ignore_index is None else t != ignore_index
    checks.check_binary_labels(fn, t, valid, xp=xp)
    fg = as_float(t, x, xp=xp) if valid is None else xp.where(valid, as_float(t, x, xp=xp), 0)
    errors = 1 - x * (2 * fg - 1)
    positive = errors > 0 if valid is None else (errors > 0) & valid
    loss, _ = _lovasz_rows(xp.where(positive, errors, 0), fg, xp=xp)  # (rows,)
    if not per_image:
        loss = loss[0]
    elif reduction == "mean":
        loss = xp.sum(loss) / max(loss.shape[0], 1)
    elif reduction == "sum":
        loss = xp.sum(loss)
    return restore(loss, y_pred.dtype, xp=xp)


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
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> Array:
    r"""Multiclass Lovasz-Softmax loss (Berman et al. 2018).

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

    ``reduction``: ``"mean"`` is the reference's value (mean over classes,
    then over images); ``"sum"`` sums the class losses (of every image);
    ``"none"`` returns them, shape ``(K,)`` or ``(N, K)`` with ``per_image``,
    ``K`` the number of scored classes (``C``, or ``len(classes)``), with 0
    for classes that ``"present"`` leaves out.

    Peers: reference LovaszSoftmax ``lovasz_softmax(probas, labels, classes,
    per_image, ignore)`` equals this with ``from_logits=False`` on its
    probabilities (an image with only ignored pixels breaks its per-image
    mean). smp ``LovaszLoss("multiclass", per_image, ignore_index)`` equals
    this on logits with ``classes="present"``. kornia
    ``lovasz_softmax_loss(pred, target)`` equals this with ``per_image=True,
    classes="all"``.
    """
    fn = "lovasz_softmax_loss"
    xp = array_namespace(y_pred, y_true)
    checks.check_floating(fn, "y_pred", y_pred, xp=xp)
    if y_pred.ndim < 2:
        raise ValueError(f"{fn}: y_pred must have a batch and a class axis, got shape {tuple(y_pred.shape)}")
    axis = checks.normalize_axis(fn, "class_axis", class_axis, y_pred.ndim)
    if not checks.is_integer_target(fn, y_true, xp=xp):
        raise TypeError(f"{fn}: y_true must hold integer class indices, got dtype {y_true.dtype}")
    checks.check_index_target_shape(fn, y_pred, y_true, axis)
    checks.check_ignore_index(fn, ignore_index, True)
    checks.check_reduction(fn, reduction)
    num_classes = y_pred.shape[axis]
    if from_logits and num_classes < 2:
        raise ValueError(f"{fn}: softmax needs at least 2 classes along class_axis {class_axis}, got {num_classes}")
    present_only = isinstance(classes, str) and classes == "present"
    if isinstance(classes, str):
        checks.check_option(fn, "classes", classes, ("present", "all"))
        subset = None
    else:
        subset = checks.check_class_subset(fn, classes, num_classes)

    x = promote(y_pred, xp=xp)
    p = softmax(x, axis=axis, xp=xp) if from_logits else x
    # Rows: (N, C, M) per image, (C, N * M) for the batch; the class axis is `cdim`.
    n = y_true.shape[0]
    pixels = numel(y_true) // n if n else 0
    if per_image:
        cdim, p = 1, xp.reshape(xp.moveaxis(p, axis, 1), (n, num_classes, pixels))
        labels = xp.reshape(y_true, (n, 1, pixels))
    else:
        cdim, p = 0, xp.reshape(xp.moveaxis(p, axis, 0), (num_classes, n * pixels))
        labels = xp.reshape(y_true, (1, n * pixels))
    ids = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    if subset is not None:
        ids = xp.asarray(subset, dtype=labels.dtype, device=device(labels))
        p = xp.take(p, ids, axis=cdim)
    ids = xp.reshape(ids, (-1, 1))

    valid = None if ignore_index is None else labels != ignore_index
    checks.check_labels(fn, labels if valid is None else xp.where(valid, labels, 0), num_classes, ignore_index, xp=xp)
    fg = labels == ids if valid is None else (labels == ids) & valid  # rows' shape
    fg_float = xp.astype(fg, p.dtype)
    errors = xp.abs(fg_float - p)
    if valid is not None:
        errors = xp.where(valid, errors, 0)
    loss, total = _lovasz_rows(errors, fg_float, xp=xp)  # (N, K) or (K,)

    present = total > 0  # read only with classes="present"
    if present_only:
        loss = xp.where(present, loss, 0)
    if reduction == "sum":
        loss = xp.sum(loss)
    elif reduction == "mean":
        if present_only:  # mean over present classes; none present (nothing valid): 0
            loss = safe_divide(xp.sum(loss, axis=-1), xp.sum(xp.astype(present, loss.dtype), axis=-1), xp=xp)
        else:
            loss = xp.mean(loss, axis=-1)
        if per_image:
            loss = xp.sum(loss) / max(n, 1)
    return restore(loss, y_pred.dtype, xp=xp)
