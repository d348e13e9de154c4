"""The segmentation-input layer: one validation pass for the pixel-wise, region, Lovasz and boundary losses.

``prepare`` runs once per public call and returns a ``Segmentation``: the
namespace, the scores in their compute dtype, the class axis, and the target
as a tagged type, ``Labels`` (integer class indices, no class axis) or
``Dense`` (targets of ``y_pred``'s shape). Every message names the public
function (``caller``) and its own argument.

Rules held here, and only here (docs/conventions.md states them for users):

- ``class_axis`` is validated on every call, used or not, against
  ``y_pred.ndim`` (at least 2, so the defaults 1 and -1 pass for inputs
  without a class axis); region losses take 1 or -1 only.
- Targets of the sigmoid modes (``"binary"``, ``"multilabel"``) are 0/1
  (integer, bool) or lie in [0, 1] (floating); a 0/255 mask is an error on
  concrete arrays, never a silent loss.
- Integer labels narrower than int32 (or unsigned) are cast to the
  namespace's index dtype at entry, so class ids are never built in a narrow
  label dtype. Ignored labels are replaced by
  class 0 and masked by ``valid``. Concrete labels out of range (and sigmoid
  targets outside their domain) are a ``ValueError``; while tracing
  (``jax.jit``, ``torch.compile``) they set ``Segmentation.poison`` (NaN),
  which ``returned`` adds to the reduced loss, so the loss is NaN, never a
  plausible finite number. The returned value itself is poisoned: NaN put
  into the scores is dropped by compilers through softmax, clamps and
  compares (nondeterministically, issue 18).
- A pixel ``mask`` (the boundary losses) holds non-negative weights of
  ``y_pred``'s shape or its shape without the class axis; ``pixel_weight``
  multiplies it by the ignore mask, so a left-out pixel has weight 0.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple, TypeAlias, get_args

from .._backend import (
    PYTHON_SCALARS,
    Array,
    array_namespace,
    device,
    host_view,
    index_dtype,
    is_concrete,
    numel,
    stop_gradient,
    value_range,
)
from . import checks
from .reduce import as_float, promote, restore
from .typing import Mode

MODES: tuple[str, ...] = get_args(Mode)


def namespace(caller: str, /, *, optional: tuple[str, ...] = (), **arrays: Any) -> ModuleType:
    """The one namespace of ``arrays``; a TypeError naming ``caller`` and the argument that is not an array.

    ``optional``: the names that may be None (skipped); None anywhere else is a TypeError.
    """
    present = {name: a for name, a in arrays.items() if a is not None or name not in optional}
    for a in present.values():  # a loop, not any(...) over a generator: this runs once per call
        if a is None or isinstance(a, PYTHON_SCALARS):  # array_namespace skips those: they are errors here
            break
    else:
        try:  # the common case first: is_array_api_obj makes torch.compile warn (an lru_cache it traces through)
            return array_namespace(*present.values())
        except TypeError:
            pass
    for name, a in present.items():
        checks.check_array(caller, name, a)
    kinds = ", ".join(f"{name} is {type(a).__module__}.{type(a).__name__}" for name, a in present.items())
    raise TypeError(
        f"{caller}: {' and '.join(present)} must come from the same array library, got {kinds}; "
        "convert them to one library first"
    )


def class_axis_index(caller: str, class_axis: Any, ndim: int, *, first_or_last: bool = False) -> int:
    """``class_axis`` as a non-negative axis of an ``ndim``-array (at least 2-D for the check).

    ``first_or_last``: only 1 or -1 (the region losses' layouts).
    """
    axis = checks.normalize_axis(caller, "class_axis", class_axis, max(ndim, 2))
    if first_or_last and axis not in (1, max(ndim, 2) - 1):
        raise ValueError(f"{caller}: class_axis must be 1 or -1, got {class_axis!r}")
    return axis


class Labels(NamedTuple):
    """Integer class indices: ``y_pred``'s shape without the class axis, in the index dtype.

    Ignored pixels hold class 0 and are False in ``valid`` (None: nothing ignored). ``checked``: the labels
    before that replacement, ``ignore_index`` kept, where a host check found every other label in range (None
    where none ran: traced or on an accelerator), for a native kernel that skips ``ignore_index`` itself.
    """

    labels: Array
    valid: Array | None
    checked: Array | None = None
    ignore_index: int | None = None


class Dense(NamedTuple):
    """Targets of ``y_pred``'s shape in the compute dtype: 0/1 or [0, 1] (sigmoid modes), probabilities (multiclass).

    Ignored entries (integer targets with ``ignore_index``) hold 0 and are False in ``valid``.
    """

    target: Array
    valid: Array | None


Target: TypeAlias = Labels | Dense


class Segmentation(NamedTuple):
    """Validated inputs of one call (a NamedTuple: built once per call, it costs a third of a frozen dataclass)."""

    caller: str  # the public function, for messages
    xp: ModuleType
    x: Array  # y_pred in the compute dtype
    mode: Mode
    axis: int  # the class axis, non-negative (may equal ndim for 0-/1-D inputs of the sigmoid losses)
    num_classes: int  # along ``axis`` (1 in binary mode)
    target: Target
    from_logits: bool
    dtype: Any  # the dtype to return
    poison: Array | None = None  # 0-d, NaN where a traced target is out of its domain, else 0; None: eager

    @property
    def dense(self) -> Dense:
        """The target of a sigmoid mode, which is always ``Dense``."""
        if not isinstance(self.target, Dense):  # pragma: no cover - prepare never builds this
            raise TypeError(f"{self.caller}: expected dense targets")
        return self.target


class Layout(NamedTuple):
    """What a family requires of ``y_pred`` and ``y_true`` beyond the shared rules (``prepare``, ``check_scores``)."""

    region: bool = False  # the region-loss rules: a batch axis, class axis 1 or -1, binary mode one channel
    batched: bool = False  # a batch axis (and a class axis outside binary mode) is required
    dense: bool = True  # probability targets are accepted (False: integer labels only, multiclass)
    min_classes: int = 2  # the fewest classes a multiclass ``y_pred`` may have (2 for a softmax)


PIXEL = Layout()  # the pixel-wise losses
REGION = Layout(region=True)  # the region, topology and boundary losses
LABELS = Layout(batched=True, dense=False)  # batched integer labels (Lovasz-Softmax from logits)
LABELS_OF_PROBABILITIES = Layout(batched=True, dense=False, min_classes=1)  # ... from probabilities


def prepare(caller: str, y_pred: Any, y_true: Any, /, *, mode: Any = "multiclass", class_axis: Any = 1,
            from_logits: bool = True, ignore_index: Any = None, reduction: Any = "mean", layout: Layout = PIXEL,
            target_name: str = "y_true") -> Segmentation:
    """Validate and lay out the inputs of a segmentation loss, by the rules of the family's ``layout``.

    ``target_name``: what the caller calls ``y_true`` (``skeleton``), for messages.
    """
    xp = namespace(caller, **{"y_pred": y_pred, target_name: y_true})
    from_logits = checks.check_flag(caller, "from_logits", from_logits)
    axis = check_scores(caller, y_pred, mode=mode, class_axis=class_axis, reduction=reduction, layout=layout, xp=xp)
    ndim = y_pred.ndim
    x = promote(y_pred, xp=xp)
    if mode != "multiclass":
        c = 1 if mode == "binary" or axis >= ndim else y_pred.shape[axis]
        target, poison = _sigmoid_target(caller, y_pred, y_true, ignore_index, target_name, xp=xp, like=x)
        return Segmentation(caller, xp, x, mode, axis, c, target, from_logits, y_pred.dtype, poison)
    c = y_pred.shape[axis] if axis < ndim else 1
    integer = _is_integer_target(caller, y_true, target_name, xp=xp)
    ignore_index = checks.check_ignore_index(caller, ignore_index, integer, target_name)
    if integer:
        _check_index_target_shape(caller, y_pred, y_true, axis, target_name)
        labels, poison = _labels(caller, y_true, c, ignore_index, x, target_name, xp=xp)
        return Segmentation(caller, xp, x, mode, axis, c, labels, from_logits, y_pred.dtype, poison)
    if not layout.dense:
        raise TypeError(f"{caller}: {target_name} must hold integer class indices, got dtype {y_true.dtype}")
    label_shape = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    if tuple(y_true.shape) == label_shape:
        raise ValueError(
            f"{caller}: floating {target_name} is read as class probabilities and must have the shape of y_pred "
            f"{tuple(y_pred.shape)}, got {tuple(y_true.shape)} (the shape of class indices); class indices "
            "need an integer dtype"
        )
    checks.check_same_shape(caller, y_pred, y_true, target_name)
    dense = Dense(as_float(y_true, x, xp=xp), None)
    return Segmentation(caller, xp, x, mode, axis, c, dense, from_logits, y_pred.dtype)


def check_scores(caller: str, y_pred: Any, /, *, mode: Any, class_axis: Any, reduction: Any, layout: Layout = PIXEL,
                 xp: ModuleType) -> int:
    """Validate ``y_pred`` and the options about it alone (``prepare``'s rules); return the class axis.

    For a loss whose second input is not a target (``boundary_loss`` takes a distance map).
    """
    checks.check_option(caller, "mode", mode, MODES)
    checks.check_reduction(caller, reduction)
    checks.check_floating(caller, "y_pred", y_pred, xp=xp)
    ndim = y_pred.ndim
    region, min_classes = layout.region, layout.min_classes
    if (region or layout.batched) and ndim < (1 if mode == "binary" else 2):
        want = "a batch axis, (N, ...)" if mode == "binary" else "a batch and a class axis, (N, C, ...) or (N, ..., C)"
        raise ValueError(f"{caller}: y_pred must have {want}, got shape {tuple(y_pred.shape)}")
    axis = class_axis_index(caller, class_axis, ndim, first_or_last=region)
    c = y_pred.shape[axis] if axis < ndim else 1
    if mode == "multiclass" and c < min_classes:
        what, instead = ("mode='multiclass' (softmax)", "mode='binary'") if region else ("softmax", "a sigmoid loss")
        raise ValueError(
            f"{caller}: {what} needs at least {min_classes} classes along class_axis {class_axis}, got {c}; "
            f"use {instead} for one channel"
        )
    return axis


def _is_integer_target(caller: str, y_true: Array, name: str, /, *, xp: ModuleType) -> bool:
    """True for integer class indices, False for floating probabilities; else TypeError."""
    if xp.isdtype(y_true.dtype, "integral"):
        return True
    if xp.isdtype(y_true.dtype, "real floating"):
        return False
    raise TypeError(
        f"{caller}: {name} must hold integer class indices or floating class probabilities, got dtype {y_true.dtype}"
    )


def _check_index_target_shape(caller: str, y_pred: Array, y_true: Array, axis: int, name: str) -> None:
    """Integer targets have ``y_pred``'s shape without the class axis."""
    want = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    if tuple(y_true.shape) != want:
        raise ValueError(
            f"{caller}: integer {name} must have the shape of y_pred without its class axis {axis}, "
            f"{want}, got {tuple(y_true.shape)}"
        )


def check_spatial_layout(caller: str, y_pred: Array, axis: int, mode: str, /, *, min_spatial: int = 1) -> None:
    """The layout of the losses that look at space: ``(N, C, *spatial)`` (or channels last) with
    ``min_spatial`` to 3 spatial axes, and one channel in binary mode."""
    shape = tuple(y_pred.shape)
    if not 2 + min_spatial <= len(shape) <= 5:
        axes = "1 to 3" if min_spatial == 1 else "2 or 3"
        raise ValueError(f"{caller}: y_pred must have shape (N, C, *spatial) with {axes} spatial axes, got {shape}")
    if mode == "binary" and shape[axis] != 1:
        raise ValueError(f"{caller}: mode='binary' needs one channel along class_axis {axis}, got {shape[axis]}")


def _labels(caller: str, y_true: Array, num_classes: int, ignore_index: int | None, x: Array, name: str, /, *,
            xp: ModuleType) -> tuple[Labels, Array | None]:
    """Labels in the index dtype, ignored ones replaced by 0, and the poison of the loss (``poison_if``).

    Out of range: an error on concrete labels; if traced, replaced by 0 and the poison is NaN.
    """
    # int32 and int64 hold any class id; narrower or unsigned labels are cast, never used to build ids
    wide = y_true.dtype == xp.int64 or y_true.dtype == xp.int32
    given = y_true if wide else xp.astype(y_true, index_dtype(xp, device(y_true)))
    labels, valid = drop_ignored(given, ignore_index, xp=xp)
    poison = None
    if is_concrete(labels):
        if numel(labels):
            low, high = value_range(labels, xp=xp)
            if low < 0 or high >= num_classes:
                allowed = f"[0, {num_classes})"
                if ignore_index is not None:
                    allowed += f" or equal ignore_index={ignore_index}"
                raise ValueError(f"{caller}: {name} labels must lie in {allowed}, found {low if low < 0 else high}")
        return Labels(labels, valid, given, ignore_index), None
    # traced: no value can be read; a NaN loss signals the bad label
    bad = (labels < 0) | (labels >= num_classes)
    poison = poison_if(bad, x, xp=xp)
    return Labels(xp.where(bad, 0, labels), valid), poison


def poison_if(bad: Array, like: Array, /, *, xp: ModuleType) -> Array:
    """A 0-d array in ``like``'s dtype and device: NaN if any of ``bad`` is true, else 0 (add it to the result)."""
    return xp.where(xp.any(bad), math.nan, xp.zeros((), dtype=like.dtype, device=device(like)))


def poisoned(out: Array, poison: Array | None, /) -> Array:
    """``out`` plus ``poison`` (NaN when a traced input was invalid), the last step before the dtype is restored.

    The poison goes on the reduced result, never on the scores: a compiler may drop a NaN through a softmax, a
    clamp or a compare (jax.jit and torch.compile did, in some runs and not others).
    """
    return out if poison is None else out + poison


def returned(seg: Segmentation, out: Array, /) -> Array:
    """The loss ``out`` (compute dtype) as returned: poisoned if a traced target was invalid, in ``seg.dtype``."""
    return restore(poisoned(out, seg.poison), seg.dtype, xp=seg.xp)


def drop_ignored(labels: Array, ignore_index: int | None, /, *, xp: ModuleType) -> tuple[Array, Array | None]:
    """``labels`` with the entries equal to ``ignore_index`` replaced by 0, and the mask of the others (or None)."""
    if ignore_index is None:
        return labels, None
    valid = labels != ignore_index
    return xp.where(valid, labels, 0), valid


def _sigmoid_target(caller: str, y_pred: Array, y_true: Array, ignore_index: Any, name: str, /, *, xp: ModuleType,
                    like: Array) -> tuple[Dense, Array | None]:
    """Targets of a sigmoid mode: 0/1 or [0, 1], ignored entries zeroed; and the poison (NaN if traced and out of
    domain)."""
    integer = xp.isdtype(y_true.dtype, "integral")
    if not (integer or y_true.dtype == xp.bool or xp.isdtype(y_true.dtype, "real floating")):
        raise TypeError(f"{caller}: {name} must be floating, integer or bool, got dtype {y_true.dtype}")
    ignore_index = checks.check_ignore_index(caller, ignore_index, integer, name)
    checks.check_same_shape(caller, y_pred, y_true, name)
    t, valid = drop_ignored(y_true, ignore_index, xp=xp)
    poison = None
    if is_concrete(t):
        check_binary_target(caller, name, t, valid, xp=xp)
    elif t.dtype != xp.bool:  # traced: a target outside its domain makes the loss NaN
        bad = ~((t >= 0) & (t <= 1))  # NaN too
        poison = poison_if(bad if valid is None else bad & valid, like, xp=xp)
    return Dense(as_float(t, like, xp=xp), valid), poison


def check_binary_target(caller: str, name: str, t: Array, valid: Array | None, /, *, xp: ModuleType) -> None:
    """Integer targets are 0 or 1, floating ones lie in [0, 1] (concrete arrays; NaN passes, to give NaN)."""
    if not is_concrete(t) or numel(t) == 0 or t.dtype == xp.bool:
        return
    t, xp = host_view(t, xp=xp)
    valid = None if valid is None else host_view(valid, xp=xp)[0]
    if valid is None:  # the common case in one pass; NaN fails the range test and passes the exact one below
        low, high = value_range(t, xp=xp)
        if low >= 0 and high <= 1:
            return
    bad = (t < 0) | (t > 1)
    if valid is not None:
        bad = bad & valid
    if not bool(xp.any(bad)):
        return
    found = xp.max(xp.where(bad, t, 0))
    if not found > 1:
        found = xp.min(xp.where(bad, t, 0))
    if xp.isdtype(t.dtype, "integral"):
        raise ValueError(
            f"{caller}: {name} must hold binary labels 0 or 1, found {int(found)} (integer {name} labels must lie in "
            f"[0, 2)); for a 0/255 mask pass `{name} > 0`"
        )
    raise ValueError(
        f"{caller}: {name} must lie in [0, 1] (targets of a sigmoid loss), found {float(found)!r}; "
        f"for a 0/255 mask pass `{name} > 0` (hard) or `{name} / 255` (soft)"
    )


def along_class_axis(v: Array, seg: Segmentation, /) -> Array:
    """A per-class vector ``(C,)`` shaped to broadcast along ``seg.x``'s class axis (every element in binary mode)."""
    shape = [1] * seg.x.ndim
    if seg.mode != "binary" and seg.axis < seg.x.ndim:
        shape[seg.axis] = v.shape[0]
    return seg.xp.reshape(v, tuple(shape))


def class_vector(seg: Segmentation, name: str, w: Any, /) -> Array:
    """``w`` (a sequence or array of length C) as a float vector on ``seg.x``'s device."""
    w = checks.weight_array(seg.caller, name, w, like=seg.x, xp=seg.xp)
    if w.shape != (seg.num_classes,):
        raise ValueError(
            f"{seg.caller}: {name} must have shape ({seg.num_classes},), one per class, got {tuple(w.shape)}"
        )
    return w


def element_weight(seg: Segmentation, name: str, w: Any, /) -> Array | float:
    """A scalar, a per-class vector laid along the class axis, or an array that broadcasts to ``y_pred``."""
    if isinstance(w, (int, float)) and not isinstance(w, bool):
        return float(w)
    xp, x = seg.xp, seg.x
    w = checks.weight_array(seg.caller, name, w, like=x, xp=xp)
    if w.ndim == 1:
        if seg.axis >= x.ndim or w.shape[0] != x.shape[seg.axis]:
            have = x.shape[seg.axis] if seg.axis < x.ndim else "none"
            raise ValueError(
                f"{seg.caller}: a 1-D {name} must have one entry per class ({have} along class_axis "
                f"{seg.axis}), got {w.shape[0]}"
            )
        shape = [1] * x.ndim
        shape[seg.axis] = w.shape[0]
        return xp.reshape(w, tuple(shape))
    if w.ndim != x.ndim or any(a not in (1, b) for a, b in zip(w.shape, x.shape, strict=True)):
        raise ValueError(
            f"{seg.caller}: {name} must be a scalar, a per-class vector, or broadcast to y_pred's shape "
            f"{tuple(x.shape)}, got shape {tuple(w.shape)}"
        )
    return w


def mask_weight(caller: str, mask: Any, like: Array, axis: int, /, *, xp: ModuleType) -> Array:
    """A pixel ``mask`` as detached weights in ``like``'s dtype, with a class axis at ``axis``.

    ``like`` is ``y_pred`` or computed from it; ``mask`` is bool or non-negative numbers of its shape or of its
    shape without the class axis (weight 0 leaves a pixel out). Negative weights are an error on concrete arrays.
    """
    namespace(caller, y_pred=like, mask=mask)
    label_shape = tuple(like.shape[:axis]) + tuple(like.shape[axis + 1 :])
    if tuple(mask.shape) == label_shape:
        mask = xp.expand_dims(mask, axis=axis)
    elif tuple(mask.shape) != tuple(like.shape):
        raise ValueError(
            f"{caller}: mask must have y_pred's shape {tuple(like.shape)} or its shape without the class axis "
            f"{label_shape}, got {tuple(mask.shape)}"
        )
    if not xp.isdtype(mask.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{caller}: mask must have a boolean, integer or real floating dtype, got {mask.dtype}")
    if not xp.isdtype(mask.dtype, "bool") and is_concrete(mask) and numel(mask):
        low = value_range(mask, xp=xp)[0]
        if low < 0:
            raise ValueError(f"{caller}: mask must hold non-negative pixel weights, found {low!r}")
    return stop_gradient(as_float(mask, like, xp=xp), xp=xp)


def pixel_weight(seg: Segmentation, mask: Any, like: Array, /) -> Array | None:
    """The weight of each element of ``like`` (``seg.x``'s layout): ``mask`` times the ignore mask, 0 where left out.

    Broadcasts along the class axis where only one of them has it; ``None``: every element has weight 1.
    """
    xp = seg.xp
    w = None if mask is None else mask_weight(seg.caller, mask, like, seg.axis, xp=xp)
    keep = seg.target.valid
    if keep is not None:
        keep = xp.expand_dims(keep, axis=seg.axis) if isinstance(seg.target, Labels) else keep
        w = xp.astype(keep, like.dtype) if w is None else xp.where(keep, w, 0.0)
    return w
