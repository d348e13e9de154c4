"""The generic core of the primitives: standard array API calls only, for any conforming namespace.

Each primitive here is complete and numerically stable on its own and calls
only its siblings in this module. ``_backend`` serves it unchanged to every
backend whose native table (``_backend.<backend>.NATIVE``) lacks an entry of
the same name (array-API-strict, and any other conforming namespace, get
only these) and otherwise hands the call to that entry, which has this
function's name and signature. ``tests/test_xp.py`` checks every native entry
against its twin here on every backend, so this module names no framework.

The last section holds array-API building blocks that native entries share
(the sort key, the packed sort, the one-axis moving window, the sigmoid
cross entropy from a given ``log_sigmoid``): they are not primitives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from array_api_compat import device

Array = Any
"""An array of any namespace that conforms to the array API standard (the one declaration of the alias)."""


def zero_like(x: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d zero of ``x``'s dtype and device (Python scalars break torch.compile)."""
    return xp.zeros((), dtype=x.dtype, device=device(x))


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``x`` clipped to ``[min, max]`` (``None``: unbounded on that side); ``x`` floating, or integer
    with integer bounds."""
    return xp.clip(x, min, max)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Running sum of floating ``x`` along ``axis`` (the first entry is ``x``'s first)."""
    return xp.cumulative_sum(x, axis=axis)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``x - logsumexp(x, axis)``, shifted by the maximum for stability."""
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum for stability."""
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    """``log(sum(exp(x), axis))`` without overflow."""
    m = xp.max(x, axis=axis, keepdims=True)
    out = m + xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else xp.squeeze(out, axis=axis)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(1 + exp(x))``, exact for large ``|x|``."""
    return xp.logaddexp(x, zero_like(x, xp=xp))


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite at ``|x| = 1e4``."""
    return -softplus(-x, xp=xp)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    """``1 / (1 + exp(-x))`` without overflow in either tail."""
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """Elementwise ``-(beta t log sigmoid(x) + (1 - t) log(1 - sigmoid(x)))``, beta = ``pos_weight``."""
    return cross_entropy_of_log_sigmoid(x, t, log_sigmoid(x, xp=xp), pos_weight=pos_weight)


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """Gather ``x`` along ``axis`` at ``index`` (same ndim, size 1 on ``axis``).

    ``index`` must be in range: callers replace ignored labels first, since
    torch wraps out-of-range indices and JAX fills them with NaN.
    """
    return xp.take_along_axis(x, index, axis=axis)


def unpermute(x: Array, perm: Array, /, *, xp: ModuleType) -> Array:
    """The inverse of gathering with a permutation along the last axis: ``out[..., perm[..., k]] = x[..., k]``.

    ``perm`` holds, per row, a permutation of ``range(x.shape[-1])`` (as from
    ``sort_descending``), so ``unpermute(take_along_axis(y, perm), perm) == y``.
    Generic: gather at the inverse permutation, which is ``argsort(perm)``
    (the standard has no scatter); native: one scatter.
    """
    return xp.take_along_axis(x, xp.argsort(perm, axis=-1), axis=-1)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """Each row of real ``x`` (last axis) in descending order, and the permutation that sorts it.

    Returns ``(values, perm)`` with ``values == take_along_axis(x, perm, axis=-1)``,
    differentiable in ``x``. ``stable=True`` keeps equal values in their
    original order.
    """
    perm = xp.argsort(x, axis=-1, descending=True, stable=stable)
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def kth_largest(x: Array, k: Array, /, *, xp: ModuleType) -> Array:
    """The ``k``-th largest value of each row of real ``x`` (last axis), shape ``(..., 1)``.

    ``k`` is an integer array of shape ``(..., 1)`` with values in ``[1, M]``
    (1: the maximum); a descending sort of each row, read at ``k - 1``.
    """
    values = xp.sort(x, axis=-1, descending=True, stable=False)
    return take_along_axis(values, k - 1, axis=-1, xp=xp)


def kth_largest_key(key: Array, k: Array, /, *, width: int, xp: ModuleType) -> Array:
    """``kth_largest`` of signed ``width``-bit integer ``key`` without a sort: the largest ``t`` with
    ``count(key >= t) >= k``, built one bit at a time from the sign bit down (``width`` passes of a
    compare and a row count). The natives run it on a float's bits (``ascending_key``)."""
    t = xp.full_like(k, -(1 << (width - 1)), dtype=key.dtype)
    for bit in range(width - 1, -1, -1):
        candidate = xp.zeros_like(t) if bit == width - 1 else t | (1 << bit)
        t = xp.where(xp.sum(key >= candidate, axis=-1, keepdims=True) >= k, candidate, t)
    return t


def ascending_key(bits: Array, /, *, width: int) -> Array:
    """From a float array's bits (viewed as the same-width signed integer): an integer whose ascending
    order is the floats' ascending order (-0 sorts below +0). Its own inverse."""
    return bits ^ ((bits >> (width - 1)) & ((1 << (width - 1)) - 1))


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``-log_softmax(x, axis)`` at in-range integer ``labels`` (the class axis dropped), computed as
    ``logsumexp(x) - x[label]`` without the full log-softmax."""
    index = xp.expand_dims(labels, axis=axis)
    picked = xp.squeeze(take_along_axis(x, index, axis=axis, xp=xp), axis=axis)
    return logsumexp(x, axis=axis, xp=xp) - picked


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[float, float]:
    """``(min(x), max(x))`` of a non-empty concrete real array, as Python numbers (ints for integer arrays)."""
    number = int if xp.isdtype(x.dtype, "integral") else float
    return number(xp.min(x)), number(xp.max(x))


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """One-hot encoding of integer ``labels``, the class axis inserted at ``axis``; a label outside
    ``[0, num_classes)`` gives a row of zeros."""
    classes = xp.arange(num_classes, dtype=labels.dtype, device=device(labels))
    hot = xp.astype(labels[..., None] == classes, dtype)
    if axis in (-1, labels.ndim):
        return hot
    return xp.moveaxis(hot, -1, axis)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """Per-sample, per-class sums for integer labels, without a float one-hot.

    ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2),
    ``labels`` ``(N, M)`` in ``[0, C)``, ``valid`` the mask of pixels that
    count (or None). Returns ``(N, C)`` arrays in ``p``'s dtype: the sum of
    ``p`` over valid pixels, the sum of ``p`` over the valid pixels labelled
    with each class (both differentiable in ``p``), and the pixel count of
    each class.

    Here each label is compared with every class and summed: O(N * C * M)
    work, a tree reduction into which XLA fuses the comparison. Native
    scatters accumulate in float64 (a sequential float32 scatter-add drifts
    by about 1e-5 relative over 10^6 values).
    """
    c, pix = p.shape[axis], 3 - axis
    total = xp.sum(p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, zero_like(p, xp=xp)),
                   axis=pix)
    classes = xp.reshape(xp.arange(c, device=device(p)), (c, 1) if axis == 1 else (c,))
    hits = xp.expand_dims(labels, axis=axis) == classes
    if valid is not None:
        hits = hits & xp.expand_dims(valid, axis=axis)
    labelled = xp.sum(xp.where(hits, p, zero_like(p, xp=xp)), axis=pix)
    return total, labelled, xp.sum(xp.astype(hits, p.dtype), axis=pix)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``(max(x, axis), argmax(x, axis))``, the first maximum on ties."""
    return xp.max(x, axis=axis), xp.argmax(x, axis=axis)


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    """``out[j] = max(fill, max(values[i] for ids[i] == j))`` for 1-D ``values`` and in-range ``ids``:
    ``(num_segments,)``. Not differentiable (used on indices); here every id meets every segment."""
    if values.shape[0] == 0:
        return xp.full((num_segments,), fill, dtype=values.dtype, device=device(values))
    hits = ids[:, None] == xp.arange(num_segments, dtype=ids.dtype, device=device(ids))
    return xp.max(xp.where(hits, values[:, None], fill), axis=0)


def map_problems(fn: Callable[..., Array], arrays: tuple[Array | None, ...], /, *, xp: ModuleType) -> Array:
    """``fn(*arrays)``: ``fn`` solves a batch of independent problems stacked on axis 0 of each array (None
    passes through) and returns one array with that axis first. A backend whose vectorising transform cannot
    trace ``fn`` (a loop that reads its stop condition) folds the transform's batch into axis 0 instead."""
    return fn(*arrays)


def moveaxis(x: Array, /, *, source: int, destination: int, xp: ModuleType) -> Array:
    """``x`` with axis ``source`` moved to ``destination``, the others in their order."""
    return xp.moveaxis(x, source, destination)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """The slices of ``x`` along ``axis``."""
    return tuple(xp.unstack(x, axis=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    """``x`` with no gradient flowing back: ``x`` itself, a namespace without autodiff has none to stop."""
    return x


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """Moving maximum over the trailing ``len(window)`` axes: centred odd windows, stride 1, same shape.

    Outside the array counts as ``pad_value``; ``None`` leaves it out (as
    -inf, what ``torch.nn.functional.max_pool2d`` padding does). A box window
    is separable, so it runs one axis at a time, O(size * sum(window)); here
    each axis takes the maximum of shifted slices. Differentiable (the
    gradient goes to the maximum). ``x`` must be floating.
    """
    return each_window_axis(x, window, lambda v, axis, size: _max_along(v, axis, size, pad_value, xp=xp))


def _max_along(x: Array, axis: int, size: int, pad_value: float | None, /, *, xp: ModuleType) -> Array:
    """Moving maximum along one ``axis`` (centred odd window ``size``): the maximum of shifted slices."""
    half = size // 2
    n = x.shape[axis]
    fill = -math.inf if pad_value is None else pad_value
    edge = xp.full((*x.shape[:axis], half, *x.shape[axis + 1 :]), fill, dtype=x.dtype, device=device(x))
    padded = xp.concat([edge, x, edge], axis=axis)
    windows = [(*(slice(None),) * axis, slice(shift, shift + n), ...) for shift in range(size)]
    out = padded[windows[0]]
    for window in windows[1:]:
        out = xp.maximum(out, padded[window])
    return out


def while_loop(cond: Callable[[tuple[Array, ...]], Array], body: Callable[[tuple[Array, ...]], tuple[Array, ...]],
               init: tuple[Array, ...], /, *, xp: ModuleType) -> tuple[Array, ...]:
    """``state = init; while cond(state): state = body(state)``; returns the final state.

    ``state`` is a tuple of arrays whose shapes and dtypes ``body`` keeps;
    ``cond`` returns a 0-d boolean array. Here a Python loop reads the
    condition each step (concrete arrays: NumPy, array-api-strict); native
    entries keep the loop on the device (``jax.lax.while_loop``, torch's
    ``while_loop`` higher-order op while compiling). Not differentiable.
    """
    state = tuple(init)
    while bool(cond(state)):
        state = tuple(body(state))
    return state


def softmax_cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                          label_smoothing: float, reduction: str, xp: ModuleType) -> Array:
    """Cross entropy of logits ``x`` (class ``axis``) at integer ``labels``, torch's ``F.cross_entropy``.

    l_m = -(1 - s) w_y log p_my - (s / C) sum_c w_c log p_mc, s = ``label_smoothing``, w = ``weight``
    (``(C,)`` or None: 1), p = softmax(x); 0 where the label is ``ignore_index``. Labels lie in
    ``[0, C)`` or equal ``ignore_index``. ``reduction``: ``"none"`` (``labels``' shape), ``"sum"``, or
    ``"mean"``: the sum over the summed ``w_y`` of the kept pixels (their count without ``weight``),
    0 with a zero gradient where that is 0 (every pixel ignored; torch gives NaN).
    """
    return cross_entropy_with(x, labels, nll=softmax_nll, log_softmax=log_softmax, axis=axis, weight=weight,
                              ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction, xp=xp)


def reduced_sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None, reduction: str,
                                  xp: ModuleType) -> Array:
    """The mean (``reduction="mean"``) or sum (``"sum"``) of ``sigmoid_cross_entropy(x, t, pos_weight)``."""
    loss = sigmoid_cross_entropy(x, t, pos_weight=pos_weight, xp=xp)
    return xp.mean(loss) if reduction == "mean" else xp.sum(loss)


CHUNK_ELEMENTS = 1 << 22  # scratch per chunk of the exact minimum along an axis (``distance_transform``)


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    """Exact Euclidean distance of every True element of boolean ``fg`` to the nearest False one.

    Over the trailing ``len(sampling)`` axes (leading axes a batch), with grid
    spacing ``sampling``; in real floating ``dtype``. An image without a False
    element gets its diagonal length everywhere. Not differentiable.

    Separable (Felzenszwalb & Huttenlocher 2012, Meijster et al. 2000): squared
    distances are built one axis at a time, d_k(x) = min_y d_{k-1}(y) + ((x_k - y_k) s_k)^2;
    the last axis by a prefix-max/suffix-min scan over the positions of zeros,
    O(P log n) (P elements, n the axis length), every further axis by an exact
    minimum, O(P n), in chunks of at most ``CHUNK_ELEMENTS`` of scratch.
    """
    return exact_edt(fg, sampling, dtype, device(fg), xp=xp)


def exact_edt(fg: Array, sampling: tuple[float, ...], dtype: Any, dev: Any, /, *, xp: ModuleType) -> Array:
    """``distance_transform`` on device ``dev`` (``fg``'s), given rather than looked up: a native entry
    passes its array's own device (array-api-compat's ``device`` is ``lru_cache``-wrapped, which Dynamo warns
    about)."""
    nd = len(sampling)
    diag = diagonal(fg.shape[fg.ndim - nd :], sampling)
    far2 = diag * diag
    g = _scan_last_axis(fg, sampling[-1], far2, dtype, dev, xp=xp)
    for k in range(2, nd + 1):
        g = _min_along(g, -k, sampling[-k], dev, xp=xp)
    # an image with a zero has every squared distance < diag^2; one without has all >= diag^2
    return xp.sqrt(xp.where(g < far2, g, far2))  # not clip: far2 may be a symbolic bound (a traced shape)


def _scan_last_axis(fg: Array, step: float, far2: float, dtype: Any, dev: Any, *, xp: ModuleType) -> Array:
    """Squared distance to the nearest zero along the last axis; ``far2`` where a row has none.

    The nearest zero at or left of x is a prefix maximum of the zero positions,
    the one at or right of x a suffix minimum; both by doubling shifts, log2(n)
    steps of O(P).
    """
    n = fg.shape[-1]
    pos = xp.arange(n, dtype=dtype, device=dev)
    far = float(2 * n)
    left = xp.where(fg, -far, pos)
    right = xp.where(fg, far + n, pos)
    shift = 1
    while shift < n:
        fill = xp.full((*fg.shape[:-1], shift), far, dtype=dtype, device=dev)
        left = xp.maximum(left, xp.concat([-fill, left[..., :-shift]], axis=-1))
        right = xp.minimum(right, xp.concat([right[..., shift:], fill + n], axis=-1))
        shift *= 2
    d = xp.minimum(pos - left, right - pos)  # >= 2n where the row has no zero
    return xp.where(d < n, (d * step) ** 2, far2)


def _min_along(g: Array, axis: int, step: float, dev: Any, *, xp: ModuleType) -> Array:
    """Exact d(x) = min_y g(y) + ((x - y) step)^2 along negative ``axis``: O(P n), chunked over x."""
    n = g.shape[axis]
    rest = -axis - 1  # axes after ``axis``
    y = xp.arange(n, dtype=g.dtype, device=dev)
    expanded = xp.expand_dims(g, axis=axis - 1)  # (..., 1, n, *rest)
    chunk = max(1, min(n, CHUNK_ELEMENTS // max(math.prod(g.shape), 1)))
    parts = []
    for start in range(0, n, chunk):
        x = xp.arange(start, min(start + chunk, n), dtype=g.dtype, device=dev)
        offsets = ((x[:, None] - y[None, :]) * step) ** 2
        offsets = xp.reshape(offsets, (x.shape[0], n) + (1,) * rest)
        parts.append(xp.min(expanded + offsets, axis=axis))
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=axis)


# --------------------------------------------------------------------------- #
# Building blocks shared by native entries (array API code, not primitives)
# --------------------------------------------------------------------------- #


def each_window_axis(x: Array, window: tuple[int, ...], along: Callable[[Array, int, int], Array]) -> Array:
    """``x = along(x, axis, size)`` for each trailing axis whose window ``size`` exceeds 1 (a box is separable)."""
    for i, size in enumerate(window):
        if size != 1:
            x = along(x, x.ndim - len(window) + i, size)
    return x


def cross_entropy_of_log_sigmoid(x: Array, t: Array, log_p: Array, /, *, pos_weight: Array | float | None) -> Array:
    """The sigmoid cross entropy of logits ``x`` from ``log_p = log_sigmoid(x)``.

    ``log(1 - sigmoid(x)) = log_p - x``, so the loss is
    ``(1 - t) x - (1 + (beta - 1) t) log_p`` with beta = ``pos_weight``.
    """
    if pos_weight is None:
        return (1 - t) * x - log_p
    return (1 - t) * x - (1 + (pos_weight - 1) * t) * log_p


def descending_key(bits: Array, /, *, width: int) -> Array:
    """From a float array's bits (viewed as the same-width signed integer): an integer whose ascending
    order is the floats' descending order.

    Flip the magnitude bits of negative values (IEEE order then equals signed
    integer order), and complement (reversing the order). Integers sort faster
    than floats on every backend here.
    """
    return ~(bits ^ ((bits >> (width - 1)) & ((1 << (width - 1)) - 1)))


def packed_argsort(key: Array, /, *, xp: ModuleType) -> Array:
    """The stable ascending order of each row of int32 ``key``: one int64 sort of ``key << 32 | index``.

    Index-carrying sorts (NumPy's ``argsort``, a multi-operand ``lax.sort``)
    are several times slower than a single-operand integer sort; the index
    is read back from the low half.
    """
    index = xp.arange(key.shape[-1], dtype=xp.int64, device=device(key))
    packed = xp.sort(xp.bitwise_left_shift(xp.astype(key, xp.int64), 32) | index, axis=-1, stable=False)
    return packed & 0xFFFFFFFF


# --------------------------------------------------------------------------- #
# Fused region sums (a primitive: the unfused composition; torch's and JAX's entries fuse it)
# --------------------------------------------------------------------------- #


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """Soft confusion sums of ``p = activation(x)`` against ``target``, per sample and class.

    ``x``: logits ``(N, C, M)`` (``axis=1``) or ``(N, M, C)`` (``axis=2``),
    float32 or wider. ``target``: integer labels ``(N, M)`` in ``[0, C)``
    (ignored pixels replaced by an in-range value), or dense floating targets
    of ``x``'s shape; no gradient. ``valid``: bool mask of the pixels that
    count, ``(N, M)``, or ``x``'s shape for dense targets (or None).
    ``activation``: ``"softmax"`` over the class axis or ``"sigmoid"``.
    Returns ``(psum, tp, tsum)``, each ``(N, C)`` in ``x``'s dtype: the
    sums over valid pixels of ``p`` (``p**2`` when ``squared``), ``p t`` and
    ``t`` (``t**2``), ``t`` the one-hot of the labels or the dense targets.

    Here: the activation, then the masked sums (``class_sums`` for labels).
    The native entries (torch's autograd.Function, JAX's custom_vjp) keep
    less for the backward and write it in closed form; with ``a = dL/dtp``,
    ``b = dL/dpsum``: ``W = a t + b (2 p if squared else 1)`` (0 where
    masked), ``dL/dx = p (W - sum_c p W)`` (softmax) or ``p (1 - p) W``
    (sigmoid). References: Bridle 1990 (the softmax's vector-Jacobian
    product); Milletari et al., V-Net, 2016 (the squared sums).
    """
    p = softmax(x, axis=axis, xp=xp) if activation == "softmax" else sigmoid(x, xp=xp)
    return sums_of_probabilities(p, target, valid, axis=axis, squared=squared, class_sums=class_sums, xp=xp)


def sums_of_probabilities(p: Array, target: Array, valid: Array | None, /, *, axis: int, squared: bool,
                          class_sums: Callable[..., tuple[Array, Array, Array]], xp: ModuleType
                          ) -> tuple[Array, Array, Array]:
    """``fused_class_sums``'s sums from the probabilities ``p``, with a given ``class_sums`` kernel for labels
    (a building block the NumPy and CuPy entries share with their ``bincount`` kernel)."""
    pix = 3 - axis
    if target.ndim == 2:
        psum, tp, count = class_sums(p, target, valid, axis=axis, xp=xp)
        if squared:
            psum = xp.sum(_masked_sums_input(p * p, valid, axis, xp=xp), axis=pix)
        return psum, tp, count
    t = target if target.dtype == p.dtype else xp.astype(target, p.dtype)
    pm, tm = _masked_sums_input(p, valid, axis, xp=xp), _masked_sums_input(t, valid, axis, xp=xp)
    tp = xp.sum(pm * tm, axis=pix)
    if squared:
        return xp.sum(pm * pm, axis=pix), tp, xp.sum(tm * tm, axis=pix)
    return xp.sum(pm, axis=pix), tp, xp.sum(tm, axis=pix)


def _masked_sums_input(v: Array, valid: Array | None, axis: int, /, *, xp: ModuleType) -> Array:
    """``v`` with the entries outside ``valid`` (a pixel mask, or one of ``v``'s shape) set to 0."""
    if valid is None:
        return v
    mask = xp.expand_dims(valid, axis=axis) if valid.ndim == 2 else valid
    return xp.where(mask, v, zero_like(v, xp=xp))


def fused_class_sums_nll(x: Array, labels: Array, valid: Array | None, weight: Array | None, /, *, axis: int,
                         gamma: float, squared: bool, xp: ModuleType) -> tuple[Array, Array, Array, Array]:
    """``fused_class_sums`` of the softmax against integer labels, and a compound's pixel term beside them.

    The fourth output, ``(N,)``: per sample, the sum over valid pixels of
    ``-w_y (1 - p_y)**gamma log p_y`` (``w``: ``weight`` ``(C,)`` at the label,
    1 without): the cross entropy at ``gamma = 0``, the focal loss otherwise
    (``gamma`` 0 or at least 1: below 1 the closed-form gradient of the native
    entries is 0 * inf at ``p_y = 1``). Native entries share the softmax and
    fold the term's gradient, ``c_m (p_m - onehot_m)`` with ``c = w_y ((1 - q)**gamma
    - gamma (1 - q)**(gamma - 1) q log q)``, ``q = p_y``, into the sums' backward.
    Here: ``fused_class_sums`` and the term from ``log_softmax``.
    """
    sums = fused_class_sums(x, labels, valid, axis=axis, activation="softmax", squared=squared, xp=xp)
    return (*sums, focal_label_sums(log_softmax(x, axis=axis, xp=xp), labels, valid, weight, axis=axis, gamma=gamma,
                                    xp=xp))


def focal_label_sums(log_p: Array, labels: Array, valid: Array | None, weight: Array | None, /, *, axis: int,
                     gamma: float, xp: ModuleType) -> Array:
    """Per sample, the sum over valid pixels of ``-w_y (1 - p_y)**gamma log p_y`` from the log-probabilities
    ``log_p`` (``fused_class_sums_nll``'s fourth output; a building block its native entries share)."""
    log_q = xp.squeeze(take_along_axis(log_p, xp.expand_dims(labels, axis=axis), axis=axis, xp=xp), axis=axis)
    loss = -log_q if gamma == 0 else -((1 - xp.exp(log_q)) ** gamma) * log_q
    if weight is not None:
        loss = loss * xp.reshape(xp.take(weight, xp.reshape(labels, (-1,)), axis=0), labels.shape)
    if valid is not None:
        loss = xp.where(valid, loss, zero_like(loss, xp=xp))
    return xp.sum(loss, axis=1)


def diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Length of the image diagonal, sqrt(sum (n_k s_k)^2): longer than any in-image distance."""
    return math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True)))


def any_spatial(fg: Array, nd: int, *, xp: ModuleType) -> Array:
    """Whether each image of ``fg`` (trailing ``nd`` axes) has a True element, kept broadcastable against ``fg``."""
    return xp.any(fg, axis=tuple(range(fg.ndim - nd, fg.ndim)), keepdims=True)


def with_diagonal(d: Array, fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    """A host kernel's EDT ``d`` of ``fg`` in ``dtype``, with the diagonal length in images without a zero
    (where kernels measure from outside the image): ``distance_transform``'s contract."""
    nd = len(sampling)
    diag = diagonal(fg.shape[fg.ndim - nd :], sampling)
    return xp.astype(xp.where(any_spatial(~fg, nd, xp=xp), d, diag), dtype)


def cross_entropy_with(x: Array, labels: Array, /, *, nll: Callable[..., Array], log_softmax: Callable[..., Array],
                       axis: int, weight: Array | None, ignore_index: int | None, label_smoothing: float,
                       reduction: str, xp: ModuleType) -> Array:
    """``softmax_cross_entropy`` composed from a given ``nll`` (``softmax_nll``) and ``log_softmax``."""
    axis = axis % x.ndim
    keep = None if ignore_index is None else labels != ignore_index
    safe = labels if keep is None else xp.where(keep, labels, xp.zeros((), dtype=labels.dtype, device=device(labels)))
    if label_smoothing:
        log_p = log_softmax(x, axis=axis, xp=xp)
        nll_y = -xp.squeeze(xp.take_along_axis(log_p, xp.expand_dims(safe, axis=axis), axis=axis), axis=axis)
    else:
        nll_y = nll(x, safe, axis=axis, xp=xp)
    w_y = None if weight is None else xp.reshape(xp.take(weight, xp.reshape(safe, (-1,)), axis=0), safe.shape)
    loss = nll_y if w_y is None else w_y * nll_y
    if label_smoothing:
        w_c = log_p if weight is None else xp.reshape(weight, (-1,) + (1,) * (x.ndim - 1 - axis)) * log_p
        loss = (1 - label_smoothing) * loss - (label_smoothing / x.shape[axis]) * xp.sum(w_c, axis=axis)
    if keep is not None:
        loss = xp.where(keep, loss, zero_like(loss, xp=xp))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    counted = xp.ones(loss.shape, dtype=loss.dtype, device=device(loss)) if w_y is None else w_y
    denominator = xp.sum(counted if keep is None else xp.where(keep, counted, zero_like(counted, xp=xp)))
    return xp.sum(loss) / xp.where(denominator == 0, xp.ones_like(denominator), denominator)
