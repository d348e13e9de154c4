"""Soft confusion statistics and the options every region loss shares.

A region loss reduces the batch to soft statistics per class (TP, FP, FN and
the count of valid pixels), lets ``all_reduce`` sum them across devices,
forms an overlap index per class and reduces over classes with
``_reduce.reduce_classes``. Integer targets never become a float one-hot: TP
is the prediction gathered at each pixel's label and summed per label
(``_xp.class_sums``), FP and FN follow from the per-class sums of
predictions and labels.

The shared options are one ``RegionOptions`` record (see ``REGION_DEFAULTS``
and docs/conventions.md, "Region options"); ``region`` resolves and validates
them with the inputs, once per public call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from textwrap import indent
from types import ModuleType
from typing import Any, TypedDict

from .._backend import Array, clamped_log, class_sums, clip, device, log_softmax, numel, sigmoid, softmax
from .._core import checks
from .._core.inputs import Dense, Labels, Mode, Reduction, Segmentation, Weight, class_vector, prepare
from .._core.reduce import reduce_classes, restore
from ._fused import fused_class_sums

AllReduce = Callable[[Array], Array] | None


class RegionOptions(TypedDict, total=False):
    """The options every region loss and compound takes (defaults in ``REGION_DEFAULTS``).

    mode: ``"binary"``, ``"multilabel"`` or ``"multiclass"``. class_axis: 1 or -1.
    from_logits: apply sigmoid/softmax inside. ignore_index: integer label whose
    pixels enter no sum. classes: class indices scored. per_image: statistics
    per sample. smooth: added to numerator and denominator of every index.
    eps: lower clamp of every denominator. weight: one per class, ``(C,)``.
    reduction: ``"mean"``, ``"sum"``, ``"none"``. soft_label: floating targets
    and smoothed labels take TP from the L1 form (Wang & Blaschko 2023), so
    ``loss(y, y)`` is the minimum for fractional ``y`` too; equal to the
    product form for hard targets (on by default). label_smoothing: s in [0, 1]; the target t
    becomes t (1 - s) + s / K, K the softmax's classes (multiclass) or 2
    (binary, multilabel); ignored pixels stay out. all_reduce: sums the
    statistics across devices.
    """

    mode: Mode
    class_axis: int
    from_logits: bool
    ignore_index: int | None
    classes: Sequence[int] | None
    per_image: bool
    smooth: float
    eps: float
    weight: Weight
    reduction: Reduction
    soft_label: bool
    label_smoothing: float
    all_reduce: AllReduce


# The docstring paragraphs every region loss shares (``_docs.fill_doc``), held once beside the options.
_INPUTS_DOC = """\
y_pred: scores, ``(N, C, *spatial)`` (``class_axis=1``), ``(N, *spatial, C)`` (``-1``), or any
    ``(N, ...)`` in binary mode.
y_true: integer labels ``(N, *spatial)``, or targets of ``y_pred``'s shape (conventions.md, "Modes")."""
_OPTIONS_DOC = """\
**options: the region options (``mode``, ``class_axis``, ``from_logits``, ``ignore_index``,
    ``classes``, ``per_image``, ``smooth=1e-5``, ``eps``, ``weight``, ``reduction``,
    ``soft_label``, ``label_smoothing``, ``all_reduce``), documented once in docs/conventions.md,
    "Region options"."""
_RAISES_DOC = """\
Raises:
    ValueError: bad option values, shapes, class axis, labels or targets (docs/conventions.md, "Errors").
    TypeError: bad dtypes, unknown option names, or inputs that are not arrays of one library."""
_RETURNS_DOC = """\
Returns:
    0-d for ``"mean"``/``"sum"``; ``(K,)`` per scored class, or ``(N, K)`` with ``per_image``, for
    ``"none"``; in ``y_pred``'s dtype (computed in at least float32), on its device."""
REGION_DOCS = {
    "inputs": _INPUTS_DOC,
    "options": _OPTIONS_DOC,
    "args": "Args:\n" + indent(_INPUTS_DOC + "\n" + _OPTIONS_DOC, "    "),
    "raises": _RAISES_DOC,
    "returns_raises": _RETURNS_DOC + "\n\n" + _RAISES_DOC,
    # compounds: a region term plus a pixel-wise term, each reduced to a scalar
    "compound_options": _OPTIONS_DOC + """
    ``reduction`` is ``"mean"`` or ``"sum"``, applied to each term; ``label_smoothing`` smooths the
    target of both terms, as a user of smoothing expects (MONAI's ``DiceCELoss`` smooths its CE only).""",
    "compound_returns_raises": """\
Returns:
    A 0-d array in ``y_pred``'s dtype (computed in at least float32), on its device.

""" + _RAISES_DOC,
    "example_inputs": """\
Example:
    >>> import numpy as np, polyloss as pl
    >>> x, y = np.array([[[[2.0, -1.0]], [[-1.0, 3.0]]]]), np.array([[[0, 1]]])  # (1, 2, 1, 2), (1, 1, 2)""",
}


REGION_DEFAULTS: RegionOptions = {
    "mode": "multiclass",
    "class_axis": 1,
    "from_logits": True,
    "ignore_index": None,
    "classes": None,
    "per_image": False,
    "smooth": 1e-5,
    "eps": 1e-7,
    "weight": None,
    "reduction": "mean",
    "soft_label": True,
    "label_smoothing": 0.0,
    "all_reduce": None,
}


@dataclass(frozen=True)
class Stats:
    """Soft statistics per (sample,) class after ``all_reduce``."""

    tp: Array
    fp: Array
    fn: Array
    n: Array  # valid pixels (elements of the channel) per (sample,) class
    extra: Array | None = None  # a compound's pixel-wise [sum, count], reduced with the statistics


@dataclass(frozen=True)
class PixelInputs:
    """What a compound's pixel-wise term reads, prepared once by ``region``."""

    seg: Segmentation  # dense targets arrive smoothed
    log_p: Array | None  # multiclass log-probabilities (the softmax taken once)
    s: float  # the label smoothing left to apply: to integer labels (0 for dense targets)
    weight: Array | None  # the class weights of every channel, (C,)


PixelSum = Callable[[PixelInputs], Array]  # a compound's pixel-wise [sum, count]


@dataclass(frozen=True)
class Region:
    """Statistics of the scored classes and everything a loss needs to finish."""

    seg: Segmentation
    opts: dict[str, Any]  # the resolved RegionOptions
    st: Stats  # statistics of the scored classes
    full: Stats  # statistics of every channel (compound denominators)
    weight: Array | None  # class weights of the scored classes
    log_p: Array | None  # log-probabilities in y_pred's layout (multiclass compounds only)

    @property
    def xp(self) -> ModuleType:
        return self.seg.xp


def resolve(fn: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` over ``REGION_DEFAULTS``; an unknown name is a TypeError, as for any keyword argument."""
    unknown = sorted(set(options) - set(REGION_DEFAULTS))
    if unknown:
        raise TypeError(f"{fn}() got an unexpected keyword argument {unknown[0]!r}")
    opts: dict[str, Any] = {**REGION_DEFAULTS, **options}
    opts["smooth"] = checks.check_nonnegative(fn, "smooth", opts["smooth"])
    opts["eps"] = checks.check_nonnegative(fn, "eps", opts["eps"])
    opts["label_smoothing"] = checks.check_in_unit_interval(fn, "label_smoothing", opts["label_smoothing"])
    opts["per_image"] = checks.check_flag(fn, "per_image", opts["per_image"])
    if opts["soft_label"] is not None:
        opts["soft_label"] = checks.check_flag(fn, "soft_label", opts["soft_label"])
    return opts


def region(fn: str, y_pred: Any, y_true: Any, options: dict[str, Any], /, *, squared: bool = False,
           extra: PixelSum | None = None, need_log_p: bool = False) -> Region:
    """Validate once and build the statistics of a region loss.

    ``extra(PixelInputs)``: a compound's pixel-wise ``[sum, count]``, reduced
    with the statistics. ``need_log_p``: keep the multiclass log-probabilities (the softmax is then
    taken once, as their exponential).
    """
    opts = resolve(fn, options)
    seg = prepare(fn, y_pred, y_true, mode=opts["mode"], class_axis=opts["class_axis"],
                  from_logits=opts["from_logits"], ignore_index=opts["ignore_index"], reduction=opts["reduction"],
                  region=True)
    all_reduce, per_image, s = opts["all_reduce"], opts["per_image"], opts["label_smoothing"]
    if all_reduce is not None:
        if not callable(all_reduce):
            raise TypeError(f"{fn}: all_reduce must be a callable or None, got {all_reduce!r}")
        if per_image:
            raise ValueError(
                f"{fn}: all_reduce needs per_image=False (per-image statistics belong to one device's samples; "
                "reduce the per-image losses instead)"
            )
    if not checks.is_zero(s) and isinstance(seg.target, Dense):
        seg = replace(seg, target=_smoothed(seg, seg.target, s))
    label_s = s if isinstance(seg.target, Labels) else 0.0
    full_weight = None if opts["weight"] is None else class_vector(seg, "weight", opts["weight"])
    log_p = None
    if need_log_p and seg.mode == "multiclass":
        log_p = log_softmax(seg.x, axis=seg.axis, xp=seg.xp) if seg.from_logits else clamped_log(seg.x, xp=seg.xp)
    # Softmax over integer labels: the fused primitive saves only the logits for its backward (issue 12). Smoothed
    # labels need the probabilities themselves for the L1 form (soft_label) and for the plain sum under ``squared``.
    fused = (log_p is None and seg.from_logits and isinstance(seg.target, Labels)
             and not (label_s and (squared or opts["soft_label"])))
    p, axis = _layout(seg, log_p, activate=not fused)
    full = _statistics(seg, p, axis, per_image=per_image, soft_label=opts["soft_label"], label_s=label_s,
                       all_reduce=all_reduce, squared=squared,
                       extra=None if extra is None else extra(PixelInputs(seg, log_p, label_s, full_weight)),
                       fused=fused)
    st, idx = _select(fn, full, opts["classes"], seg, xp=seg.xp)
    weight = full_weight if full_weight is None or idx is None else seg.xp.take(full_weight, idx, axis=0)
    return Region(seg, opts, st, full, weight, log_p)


def _smoothed(seg: Segmentation, target: Dense, s: float) -> Dense:
    """Dense targets smoothed to t (1 - s) + s / K (K: the softmax's classes, or 2 for a sigmoid); ignored ones 0."""
    t = target.target * (1 - s) + s / (seg.num_classes if seg.mode == "multiclass" else 2)
    return Dense(t if target.valid is None else seg.xp.where(target.valid, t, 0), target.valid)


def _layout(seg: Segmentation, log_p: Array | None, *, activate: bool = True) -> tuple[Array, int]:
    """Probabilities (the logits with ``activate=False``) as (N, C, M) or (N, M, C), and the class axis (1 or 2)."""
    xp, x = seg.xp, seg.x
    n = x.shape[0]
    if seg.mode == "binary":
        shape, axis = (n, 1, numel(x) // n if n else 0), 1
    elif seg.axis == 1:
        shape, axis = (n, seg.num_classes, _pixels(x.shape[2:])), 1
    else:
        shape, axis = (n, _pixels(x.shape[1:-1]), seg.num_classes), 2
    if not activate:
        p = x
    elif seg.mode != "multiclass":
        p = sigmoid(x, xp=xp) if seg.from_logits else x
    elif log_p is not None:
        p = xp.exp(log_p) if seg.from_logits else x
    else:
        p = softmax(x, axis=seg.axis, xp=xp) if seg.from_logits else x
    return xp.reshape(p, shape), axis


def _pixels(spatial: tuple[int, ...]) -> int:
    out = 1
    for size in spatial:
        out *= size
    return out


def _statistics(seg: Segmentation, p: Array, axis: int, *, per_image: bool, soft_label: bool, label_s: float,
                all_reduce: AllReduce, squared: bool, extra: Array | None, fused: bool = False) -> Stats:
    """TP, FP, FN and the valid count of every channel; ``squared`` takes the V-Net sums of squares.

    ``fused``: ``p`` holds the logits of integer-labelled pixels, and ``_fused.fused_class_sums``
    takes the softmax and the sums in one primitive with a closed-form backward. ``label_s``:
    the smoothing of integer labels (``_smoothed_label_sums``).
    """
    xp, target = seg.xp, seg.target
    pix = 3 - axis  # the pixel axis of the 3-D layout
    if isinstance(target, Labels):
        labels = xp.reshape(target.labels, (p.shape[0], p.shape[pix]))
        valid = None if target.valid is None else xp.reshape(target.valid, labels.shape)
        if fused:
            psum, tp, tsum = fused_class_sums(p, labels, valid, axis=axis, squared=squared, xp=xp)
        else:
            psum, tp, tsum = class_sums(p, labels, valid, axis=axis, xp=xp)
        n = xp.broadcast_to(xp.sum(tsum, axis=-1, keepdims=True), tsum.shape)
        if label_s:
            tp, tsum = _smoothed_label_sums(p, labels, valid, psum, tp, tsum, n, axis=axis, s=label_s,
                                            l1=soft_label and not squared, squared=squared, xp=xp)
        if squared and not fused:
            pm = p if valid is None else xp.where(xp.expand_dims(valid, axis=axis), p, 0)
            psum = xp.sum(pm * pm, axis=pix)
    else:
        t = xp.reshape(target.target, p.shape)
        valid = None if target.valid is None else xp.reshape(target.valid, p.shape)
        pm = p if valid is None else xp.where(valid, p, 0)
        tp = xp.sum(pm * t, axis=pix)
        psum = xp.sum(pm * pm if squared else pm, axis=pix)
        tsum = xp.sum(t * t if squared else t, axis=pix)
        if soft_label and not squared:
            tp = (psum + tsum - xp.sum(xp.abs(pm - t), axis=pix)) / 2
        if valid is None:
            n = xp.full(tp.shape, float(p.shape[pix]), dtype=p.dtype, device=device(p))
        else:
            n = xp.sum(xp.astype(valid, p.dtype), axis=pix)
    if not per_image:
        tp, psum, tsum, n = (xp.sum(s, axis=0) for s in (tp, psum, tsum, n))
    stats = xp.stack([tp, psum - tp, tsum - tp, n])
    if all_reduce is not None:
        if extra is None:
            stats = all_reduce(stats)
        else:
            flat = all_reduce(xp.concat([xp.reshape(stats, (-1,)), extra]))
            size = 4 * tp.shape[-1]
            stats, extra = xp.reshape(flat[:size], stats.shape), flat[size:]
    tp, fp, fn = stats[0, ...], stats[1, ...], stats[2, ...]
    if not squared:  # rounding may leave FP, FN a hair below 0; squared ones may be negative by design
        fp, fn = clip(fp, 0, None, xp=xp), clip(fn, 0, None, xp=xp)
    return Stats(tp, fp, fn, stats[3, ...], extra)


def _smoothed_label_sums(p: Array, labels: Array, valid: Array | None, psum: Array, tp: Array, count: Array,
                         pixels: Array, /, *, axis: int, s: float, l1: bool, squared: bool, xp: ModuleType
                         ) -> tuple[Array, Array]:
    """TP and the target sum of labels smoothed to t = (1 - s) onehot + s / C, from the hard sums; no one-hot.

    Product form: TP = (1 - s) TP_hard + (s / C) sum p. L1 form (``l1``, t fractional): TP = sum min(p, t)
    = sum min(p, s / C) + the sum over each class's labelled pixels of min(p, 1 - s + s / C) - min(p, s / C).
    sum t = (1 - s) count + (s / C) pixels; sum t^2 (``squared``) = ((1 - s)^2 + 2 (1 - s) s / C) count
    + (s / C)^2 pixels. ``psum``: the plain sum of p over valid pixels; ``pixels``: their count.
    """
    low, high = s / p.shape[axis], 1 - s + s / p.shape[axis]
    if l1:
        below = clip(p, None, low, xp=xp)
        masked = below if valid is None else xp.where(xp.expand_dims(valid, axis=axis), below, 0)
        _, at_label, _ = class_sums(clip(p, None, high, xp=xp) - below, labels, valid, axis=axis, xp=xp)
        tp = xp.sum(masked, axis=3 - axis) + at_label
    else:
        tp = (1 - s) * tp + low * psum
    if squared:
        return tp, ((1 - s) ** 2 + 2 * (1 - s) * low) * count + low * low * pixels
    return tp, (1 - s) * count + low * pixels


def _select(fn: str, st: Stats, classes: Sequence[int] | None, seg: Segmentation, *, xp: ModuleType
            ) -> tuple[Stats, Array | None]:
    """Statistics of the scored classes, and their indices (None for all)."""
    if classes is None:
        return st, None
    if seg.mode == "binary":
        raise ValueError(f"{fn}: classes applies to mode 'multiclass' or 'multilabel', got mode='binary'")
    idx = xp.asarray(checks.check_class_subset(fn, classes, seg.num_classes), device=device(st.tp))
    tp, fp, fn_, n = (xp.take(s, idx, axis=-1) for s in (st.tp, st.fp, st.fn, st.n))
    return Stats(tp, fp, fn_, n, st.extra), idx


# --------------------------------------------------------------------------- #
# Overlap indices
# --------------------------------------------------------------------------- #


def ratio(num: Array, den: Array, empty: Array, *, smooth: float, eps: float, xp: ModuleType) -> Array:
    """``(num + s) / max(den + s, eps)``, exactly 1 (zero gradient) where ``empty``."""
    den = xp.where(empty, 1, clip(den + smooth, eps, None, xp=xp))
    return xp.where(empty, 1, (num + smooth) / den)


def empty(st: Stats) -> Array:
    """Classes empty in both target and prediction (NaN statistics are not empty: NaN propagates)."""
    return (st.tp + st.fp + st.fn) == 0


def dice_index(r: Region) -> Array:
    st, o = r.st, r.opts
    return ratio(2 * st.tp, 2 * st.tp + st.fp + st.fn, empty(st), smooth=o["smooth"], eps=o["eps"], xp=r.xp)


def jaccard_index(r: Region) -> Array:
    st, o = r.st, r.opts
    return ratio(st.tp, st.tp + st.fp + st.fn, empty(st), smooth=o["smooth"], eps=o["eps"], xp=r.xp)


def tversky_index(r: Region, alpha: float, beta: float) -> Array:
    st, o = r.st, r.opts
    return ratio(st.tp, st.tp + alpha * st.fp + beta * st.fn, empty(st), smooth=o["smooth"], eps=o["eps"], xp=r.xp)


def power(base: Array, gamma: float, *, xp: ModuleType) -> Array:
    """``base ** gamma`` for ``base >= 0``: 0 at 0, finite gradients for ``gamma < 1``, NaN stays NaN."""
    if isinstance(gamma, int | float) and gamma == 1:  # a traced gamma takes the general form
        return base
    tiny = xp.finfo(base.dtype).smallest_normal
    return xp.where(base == 0, 0, clip(base, tiny, None, xp=xp) ** gamma)


def neg_log(index: Array, eps: float, *, xp: ModuleType) -> Array:
    """``-log(max(index, eps))``, finite at 0 (smp's log_loss)."""
    return -clamped_log(clip(index, eps, None, xp=xp), xp=xp)


def finish(r: Region, loss: Array) -> Array:
    """Weight and reduce per-class losses, in the input's dtype."""
    xp = r.xp
    out = reduce_classes(loss, weight=r.weight, reduction=r.opts["reduction"], xp=xp)
    return restore(out, r.seg.dtype, xp=xp)

