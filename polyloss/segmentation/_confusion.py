"""Soft confusion statistics and the options every region loss shares.

A region loss reduces the batch to soft statistics per class (TP, FP, FN and
the count of valid pixels), lets ``all_reduce`` sum them across devices,
forms an overlap index per class and reduces over classes with
``_reduce.reduce_classes``. Integer targets never become a float one-hot: TP
is the prediction gathered at each pixel's label and summed per label
(``_xp.class_sums``), FP and FN follow from the per-class sums of
predictions and labels.

The shared options are one ``RegionOptions`` record, which each public
loss builds from its explicit keyword-only parameters; ``region`` validates
them with the inputs, once per public call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NamedTuple

from .._backend import (
    Array,
    clamped_log,
    class_sums,
    clip,
    device,
    fused_class_sums,
    fused_class_sums_nll,
    log_softmax,
    numel,
    sigmoid,
    softmax,
)
from .._core import checks
from .._core.inputs import REGION, Dense, Labels, Segmentation, class_vector, prepare, returned
from .._core.reduce import reduce_classes
from .._core.typing import AllReduce, Mode, Reduction, Weight


class RegionOptions(NamedTuple):
    """The options every region loss and compound takes, one frozen record built by the public function.

    The fields, their order and their defaults are the keyword-only parameters of every region loss
    (``tests/test_docstrings.py`` keeps the signatures in step); each loss's docstring says what they mean.
    """

    mode: Mode = "multiclass"
    class_axis: int = 1
    from_logits: bool = True
    ignore_index: int | None = None
    classes: Sequence[int] | None = None
    per_image: bool = False
    smooth: float = 1e-5
    eps: float = 1e-7
    weight: Weight = None
    reduction: Reduction = "mean"
    soft_label: bool = True
    label_smoothing: float = 0.0
    all_reduce: AllReduce = None


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
class FusedPixel:
    """A compound's pixel term that ``_backend.fused_class_sums_nll`` computes with the statistics.

    Per valid pixel ``-w_y (1 - p_y)**gamma log p_y`` on the softmax of logits
    against integer labels, unsmoothed; elsewhere (and for ``0 < gamma < 1``)
    the compound's ``extra`` runs instead. ``weight(seg, class_weight)``: the
    ``(C,)`` weights ``w`` (or None); ``by_weight``: the mean divides by the
    summed ``w_y`` (torch's weighted cross entropy) instead of the pixel count.
    """

    weight: Callable[[Segmentation, Array | None], Array | None]
    gamma: float = 0.0
    by_weight: bool = False


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


def resolve(caller: str, options: RegionOptions) -> dict[str, Any]:
    """The options as a dict, their values checked (reals as floats or traced 0-d arrays, flags as bools)."""
    opts: dict[str, Any] = options._asdict()
    opts["smooth"] = checks.check_nonnegative(caller, "smooth", opts["smooth"])
    opts["eps"] = checks.check_nonnegative(caller, "eps", opts["eps"])
    opts["label_smoothing"] = checks.check_in_unit_interval(caller, "label_smoothing", opts["label_smoothing"])
    opts["per_image"] = checks.check_flag(caller, "per_image", opts["per_image"])
    if opts["soft_label"] is not None:
        opts["soft_label"] = checks.check_flag(caller, "soft_label", opts["soft_label"])
    return opts


def region(caller: str, y_pred: Any, y_true: Any, options: RegionOptions, /, *, squared: bool = False,
           extra: PixelSum | None = None, need_log_p: bool = False, pixel: FusedPixel | None = None,
           target_name: str = "y_true") -> Region:
    """Validate once and build the statistics of a region loss.

    ``extra(PixelInputs)``: a compound's pixel-wise ``[sum, count]``, reduced
    with the statistics. ``need_log_p``: keep the multiclass log-probabilities (the softmax is then
    taken once, as their exponential). ``pixel``: ``extra``'s term in the form the fused primitive computes
    (one softmax and one backward for both terms) where the inputs allow it. ``target_name``: what the caller
    calls ``y_true``, for messages.
    """
    opts = resolve(caller, options)
    seg = prepare(caller, y_pred, y_true, mode=opts["mode"], class_axis=opts["class_axis"],
                  from_logits=opts["from_logits"], ignore_index=opts["ignore_index"], reduction=opts["reduction"],
                  layout=REGION, target_name=target_name)
    all_reduce, per_image, s = opts["all_reduce"], opts["per_image"], opts["label_smoothing"]
    if all_reduce is not None:
        if not callable(all_reduce):
            raise TypeError(f"{caller}: all_reduce must be a callable or None, got {all_reduce!r}")
        if per_image:
            raise ValueError(
                f"{caller}: all_reduce needs per_image=False (per-image statistics belong to one device's samples; "
                "reduce the per-image losses instead)"
            )
    if not checks.is_zero(s) and isinstance(seg.target, Dense):
        seg = seg._replace(target=_smoothed(seg, seg.target, s))
    label_s = s if isinstance(seg.target, Labels) else 0.0
    full_weight = None if opts["weight"] is None else class_vector(seg, "weight", opts["weight"])
    plain_labels = seg.mode == "multiclass" and seg.from_logits and isinstance(seg.target, Labels)
    if pixel is not None and not (plain_labels and not label_s and (pixel.gamma == 0 or pixel.gamma >= 1)):
        pixel = None
    log_p = None
    if need_log_p and seg.mode == "multiclass" and pixel is None:
        log_p = log_softmax(seg.x, axis=seg.axis, xp=seg.xp) if seg.from_logits else clamped_log(seg.x, xp=seg.xp)
    # Softmax over integer labels: the fused primitive saves only the logits for its backward (issue 12). Smoothed
    # labels need the probabilities themselves for the L1 form (soft_label) and for the plain sum under ``squared``.
    fused = (log_p is None and seg.from_logits and isinstance(seg.target, Labels)
             and not (label_s and (squared or opts["soft_label"])))
    p, axis = _layout(seg, log_p, activate=not fused)
    if pixel is not None:
        pixel_sum = (pixel.weight(seg, full_weight), pixel.gamma, pixel.by_weight)
    elif extra is not None:
        pixel_sum = extra(PixelInputs(seg, log_p, label_s, full_weight))
    else:
        pixel_sum = None
    full = _statistics(seg, p, axis, per_image=per_image, soft_label=opts["soft_label"], label_s=label_s,
                       all_reduce=all_reduce, squared=squared, extra=pixel_sum, fused=fused)
    if all_reduce is not None and seg.poison is not None:  # the poison, summed across devices with the statistics
        seg = seg._replace(poison=seg.xp.sum(full.n) * 0)
    st, idx = _select(caller, full, opts["classes"], seg, xp=seg.xp)
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
                all_reduce: AllReduce, squared: bool, extra: Array | tuple[Array | None, float, bool] | None,
                fused: bool = False) -> Stats:
    """TP, FP, FN and the valid count of every channel; ``squared`` takes the V-Net sums of squares.

    ``fused``: ``p`` holds the logits of integer-labelled pixels, and ``_backend.fused_class_sums``
    takes the softmax and the sums in one primitive with a closed-form backward; an ``extra`` of
    ``(weight, gamma, by_weight)`` (``FusedPixel``) is the pixel term that primitive adds. ``label_s``:
    the smoothing of integer labels (``_smoothed_label_sums``).
    """
    xp, target = seg.xp, seg.target
    pix = 3 - axis  # the pixel axis of the 3-D layout
    if isinstance(target, Labels):
        labels = xp.reshape(target.labels, (p.shape[0], p.shape[pix]))
        valid = None if target.valid is None else xp.reshape(target.valid, labels.shape)
        if fused and isinstance(extra, tuple):
            w, gamma, by_weight = extra
            psum, tp, tsum, nll = fused_class_sums_nll(p, labels, valid, w, axis=axis, gamma=gamma, squared=squared,
                                                       xp=xp)
            extra = xp.stack([xp.sum(nll), xp.sum(tsum if w is None or not by_weight else tsum * w)])
        elif fused:
            psum, tp, tsum = fused_class_sums(p, labels, valid, axis=axis, activation="softmax", squared=squared,
                                              xp=xp)
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
    if all_reduce is not None and seg.poison is not None:  # every device's poison reaches every device's loss
        stats = stats + seg.poison
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


def _select(caller: str, st: Stats, classes: Sequence[int] | None, seg: Segmentation, *, xp: ModuleType
            ) -> tuple[Stats, Array | None]:
    """Statistics of the scored classes, and their indices (None for all)."""
    if classes is None:
        return st, None
    if seg.mode == "binary":
        raise ValueError(f"{caller}: classes applies to mode 'multiclass' or 'multilabel', got mode='binary'")
    idx = xp.asarray(checks.check_class_subset(caller, classes, seg.num_classes), device=device(st.tp))
    tp, fp, fn, n = (xp.take(s, idx, axis=-1) for s in (st.tp, st.fp, st.fn, st.n))
    return Stats(tp, fp, fn, n, st.extra), idx


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
    if isinstance(gamma, (int, float)) and gamma == 1:  # a traced gamma takes the general form
        return base
    tiny = xp.finfo(base.dtype).smallest_normal
    return xp.where(base == 0, 0, clip(base, tiny, None, xp=xp) ** gamma)


def neg_log(index: Array, eps: float, *, xp: ModuleType) -> Array:
    """``-log(max(index, eps))``, finite at 0 (smp's log_loss)."""
    return -clamped_log(clip(index, eps, None, xp=xp), xp=xp)


def finish(r: Region, loss: Array) -> Array:
    """Weight and reduce per-class losses, in the input's dtype (NaN if a traced target was out of its domain)."""
    return returned(r.seg, reduce_classes(loss, weight=r.weight, reduction=r.opts["reduction"], xp=r.xp))

