"""torch's native kernels for the ``_backend`` primitives: ``NATIVE``, each entry the twin of ``_backend.generic``'s.

Loaded with ``_backend`` but naming torch only inside the functions (``_torch()``
reads ``sys.modules``): ``_backend`` dispatches here only for torch tensors, so
torch is imported by then, and importing polyloss never imports torch. The
autograd Functions of the primitives live here too, each built on first use
(the module's ``__getattr__``).

Everything here must trace under ``torch.compile(fullgraph=True)`` without a
warning: no array-api-compat helper that looks the namespace up through an
``lru_cache`` (Dynamo warns that it might be silently wrong), no host kernel
while compiling, nothing mutated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, cast

from . import generic, policy
from .generic import Array
from .numpy import scipy_assignment, scipy_edt


def _torch() -> ModuleType:
    return sys.modules["torch"]


def clip(x: Array, /, min: Any = None, max: Any = None, *, xp: ModuleType) -> Array:
    """``torch.clamp``: it takes symbolic bounds under ``torch.compile(dynamic=True)`` (a bound from a
    parameter, a default or a shape), where array-api-compat's ``clip`` calls ``math.isnan`` on them
    and breaks the graph."""
    if min is None and max is None:
        return x
    return _torch().clamp(x, min, max)


def cumulative_sum(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """``torch.cumsum`` (array-api-compat's ``cumulative_sum`` looks the namespace up again)."""
    return _torch().cumsum(x, dim=axis)


def log_softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _torch().nn.functional.log_softmax(x, dim=axis)


def softmax(x: Array, /, *, axis: int, xp: ModuleType) -> Array:
    return _torch().softmax(x, dim=axis)


def logsumexp(x: Array, /, *, axis: int, keepdims: bool = False, xp: ModuleType) -> Array:
    return _torch().logsumexp(x, dim=axis, keepdim=keepdims)


def softplus(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().nn.functional.softplus(x)


def log_sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().nn.functional.logsigmoid(x)


def sigmoid(x: Array, /, *, xp: ModuleType) -> Array:
    return _torch().sigmoid(x)


def sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None = None, xp: ModuleType) -> Array:
    """The fused ``binary_cross_entropy_with_logits`` kernel."""
    return _bce_with_logits(x, t, pos_weight, "none")


def reduced_sigmoid_cross_entropy(x: Array, t: Array, /, *, pos_weight: Array | float | None, reduction: str,
                                  xp: ModuleType) -> Array:
    """``binary_cross_entropy_with_logits`` with its own reduction (one pass, no elementwise loss kept)."""
    return _bce_with_logits(x, t, pos_weight, reduction)


def _bce_with_logits(x: Array, t: Array, pos_weight: Array | float | None, reduction: str) -> Array:
    torch = _torch()
    if pos_weight is not None and not isinstance(pos_weight, torch.Tensor):
        pos_weight = torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    return torch.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=pos_weight, reduction=reduction)


def take_along_axis(x: Array, index: Array, /, *, axis: int, xp: ModuleType) -> Array:
    torch = _torch()
    if index.dtype != torch.int64:
        index = index.to(torch.int64)
    return torch.gather(x, axis, index)


def unpermute(x: Array, perm: Array, /, *, xp: ModuleType) -> Array:
    """One ``scatter`` along the last axis."""
    return _torch().empty_like(x).scatter_(-1, perm, x)


def sort_descending(x: Array, /, *, stable: bool, xp: ModuleType) -> tuple[Array, Array]:
    """float32/float64: ``torch.sort`` of the integer key (``generic.descending_key``) with its indices."""
    torch = _torch()
    if x.dtype not in (torch.float32, torch.float64):
        return generic.sort_descending(x, stable=stable, xp=xp)
    bits = x.view(torch.int32 if x.dtype == torch.float32 else torch.int64)
    key = generic.descending_key(bits, width=8 * bits.element_size())
    perm = torch.sort(key, dim=-1, stable=stable).indices
    return take_along_axis(x, perm, axis=-1, xp=xp), perm


def kth_largest(x: Array, k: Array, /, *, xp: ModuleType) -> Array:
    """float32/float64: ``generic.kth_largest_key`` on the bits, no sort (half a ``torch.sort``'s time on
    32 x 8732; ``benchmarks/detection.py``); ``+ 0.0`` first, so -0 counts as +0, as it compares."""
    torch = _torch()
    if x.dtype not in (torch.float32, torch.float64):
        return generic.kth_largest(x, k, xp=xp)
    width = 8 * x.element_size()
    key = generic.ascending_key((x + 0.0).view(torch.int32 if width == 32 else torch.int64), width=width)
    return generic.ascending_key(generic.kth_largest_key(key, k, width=width, xp=xp), width=width).view(x.dtype)


def softmax_nll(x: Array, labels: Array, /, *, axis: int, xp: ModuleType) -> Array:
    """The fused ``cross_entropy`` kernel."""
    return _cross_entropy(x, labels, axis, reduction="none")


def softmax_cross_entropy(x: Array, labels: Array, /, *, axis: int, weight: Array | None, ignore_index: int | None,
                          label_smoothing: float, reduction: str, xp: ModuleType) -> Array:
    """The fused ``F.cross_entropy``, whose options these are; its ``"mean"`` over ignored or weighted pixels
    is NaN where every pixel is ignored, so that mean divides the sum by the summed weights here: from the NLL
    kernel itself without smoothing (``_weighted_mean_nll``). The generic composition for a ``weight`` that
    needs a gradient (learnable class weights, or one a ``torch.func`` transform differentiates): the fused
    kernel does not differentiate its weight."""
    torch = _torch()
    if weight is not None and (weight.requires_grad or (not torch.compiler.is_compiling()
                                                         and _functorch_wrapped(weight))):
        return generic.softmax_cross_entropy(x, labels, axis=axis, weight=weight, ignore_index=ignore_index,
                                             label_smoothing=label_smoothing, reduction=reduction, xp=xp)
    ignore = -100 if ignore_index is None else ignore_index
    if reduction != "mean" or (weight is None and ignore_index is None):
        return _cross_entropy(x, labels, axis, weight=weight, ignore_index=ignore, label_smoothing=label_smoothing,
                              reduction=reduction)
    if isinstance(label_smoothing, (int, float)) and label_smoothing == 0:
        return _weighted_mean_nll(x, labels, axis, weight, ignore)
    total = _cross_entropy(x, labels, axis, weight=weight, ignore_index=ignore, label_smoothing=label_smoothing,
                           reduction="sum")
    keep = labels != ignore
    counted = keep.to(total.dtype) if weight is None else torch.where(keep, weight[torch.where(keep, labels, 0)], 0)
    denominator = counted.sum()
    return total / torch.where(denominator == 0, 1, denominator)


def _weighted_mean_nll(x: Array, labels: Array, axis: int, weight: Array | None, ignore_index: int) -> Array:
    """sum_m w_y NLL_m / sum_m w_y over kept pixels, 0 (zero gradient) where the denominator is 0.

    ATen's ``nll_loss_forward``/``nll_loss2d_forward`` with the sum reduction
    return the summed ``w_y`` beside the sum, from the same pass over the
    labels (``F.cross_entropy``'s mean divides by it too, and gives NaN for 0).
    """
    torch = _torch()
    x, labels = _class_first(x, labels, axis)
    log_p = torch.log_softmax(x, 1)
    if log_p.ndim == 2:
        total, weight_sum = torch.ops.aten.nll_loss_forward(log_p, labels, weight, _SUM, ignore_index)
    else:  # (N, C, *spatial) as (N, C, 1, P), F.cross_entropy's own layout for the 2-D kernel
        n, c = log_p.shape[:2]
        total, weight_sum = torch.ops.aten.nll_loss2d_forward(log_p.reshape(n, c, 1, -1), labels.reshape(n, 1, -1),
                                                              weight, _SUM, ignore_index)
    return total / torch.where(weight_sum == 0, 1, weight_sum)


_SUM = 2  # ATen's reduction enum: 0 none, 1 mean, 2 sum


def _cross_entropy(x: Array, labels: Array, axis: int, **options: Any) -> Array:
    """``F.cross_entropy`` of logits ``x`` with class ``axis`` at ``labels``."""
    return _torch().nn.functional.cross_entropy(*_class_first(x, labels, axis), **options)


def _class_first(x: Array, labels: Array, axis: int) -> tuple[Array, Array]:
    """Logits with the class ``axis`` moved to 1 and int64 labels: the layout of torch's NLL kernels."""
    torch = _torch()
    if labels.dtype != torch.int64:
        labels = labels.to(torch.int64)
    return (x if axis == 1 else torch.movedim(x, axis, 1)), labels


def value_range(x: Array, /, *, xp: ModuleType) -> tuple[float, float]:
    """``torch.aminmax``: one pass (``item()`` gives ints for integer tensors)."""
    low, high = _torch().aminmax(x)
    return low.item(), high.item()


def one_hot(labels: Array, /, *, num_classes: int, axis: int, dtype: Any, xp: ModuleType) -> Array:
    """The generic comparison with the tensor's own device (array-api-compat's ``device`` is cached)."""
    torch = _torch()
    hot = (labels[..., None] == torch.arange(num_classes, dtype=labels.dtype, device=labels.device)).to(dtype)
    return hot if axis in (-1, labels.ndim) else torch.movedim(hot, -1, axis)


def class_sums(p: Array, labels: Array, valid: Array | None, /, *, axis: int, xp: ModuleType
               ) -> tuple[Array, Array, Array]:
    """One autograd Function (``ClassSums``, below) whose backward writes ``p``'s gradient in one pass;
    the counts by a float64 ``scatter_add``."""
    torch = _torch()
    from .torch import ClassSums  # built on first use (``__getattr__``); an import runs eagerly under Dynamo

    num, c = labels.shape[0], p.shape[axis]
    labels = labels.to(torch.int64)
    total, labelled = ClassSums.apply(p, labels, valid, axis)
    ones = torch.ones((), dtype=torch.float64, device=p.device).expand(labels.shape)
    counted = ones if valid is None else valid.to(torch.float64)
    count = torch.zeros((num, c), dtype=torch.float64, device=p.device).scatter_add(1, labels, counted)
    return total, labelled, count.to(p.dtype)


def max_argmax(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, Array]:
    """``torch.max(dim)``: both in one pass, and over a short outer axis several times faster than ``argmax``."""
    values, index = _torch().max(x, dim=axis)
    return values, index


def segment_max(values: Array, ids: Array, /, *, num_segments: int, fill: int | float, xp: ModuleType) -> Array:
    torch = _torch()
    out = torch.full((num_segments,), fill, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, ids.to(torch.int64), values, "amax")


def map_problems(fn: Callable[..., Array], arrays: tuple[Array | None, ...], /, *, xp: ModuleType) -> Array:
    """Under ``torch.func`` transforms: the ``ProblemMap`` Function, whose vmap rule folds ``vmap``'s batch into
    the problem axis so that ``fn`` (an eager loop reading its stop condition) runs on plain tensors; else ``fn``."""
    torch = _torch()
    if torch.compiler.is_compiling() or not any(a is not None and _functorch_wrapped(a) for a in arrays):
        return fn(*arrays)
    from .torch import ProblemMap

    return cast(Array, ProblemMap.apply(fn, *arrays))


def moveaxis(x: Array, /, *, source: int, destination: int, xp: ModuleType) -> Array:
    """``torch.movedim``: ``torch.func.vmap`` has a batching rule for it, not for ``moveaxis`` with int axes."""
    return _torch().movedim(x, source, destination)


def unstack(x: Array, /, *, axis: int, xp: ModuleType) -> tuple[Array, ...]:
    """``torch.unbind``: a single (stacking) backward node."""
    return tuple(_torch().unbind(x, dim=axis))


def stop_gradient(x: Array, /, *, xp: ModuleType) -> Array:
    return x.detach()


def max_pool(x: Array, /, *, window: tuple[int, ...], pad_value: float | None = None, xp: ModuleType) -> Array:
    """``max_pool{1,2,3}d`` one axis at a time (a window of 1 on the others); more axes: generic."""
    nd = len(window)
    if nd > 3:
        return generic.max_pool(x, window=window, pad_value=pad_value, xp=xp)
    return generic.each_window_axis(x, window, lambda v, axis, size: _max_along(v, axis, nd, size, pad_value))


def _max_along(x: Array, axis: int, nd: int, size: int, pad_value: float | None) -> Array:
    """``max_pool{nd}d`` over the trailing ``nd`` axes with a window of ``size`` along ``axis`` only."""
    functional = _torch().nn.functional
    shape = x.shape
    flat = x.reshape((-1, *shape[x.ndim - nd :]))  # (batch, *spatial): the unbatched layout of max_pool
    kernel = [1] * nd
    kernel[axis - (x.ndim - nd)] = size
    padding = [k // 2 for k in kernel]
    if pad_value is not None:
        pads = [p for k in reversed(padding) for p in (k, k)]
        flat = functional.pad(flat, pads, value=pad_value)
        padding = [0] * nd
    pool = (functional.max_pool1d, functional.max_pool2d, functional.max_pool3d)[nd - 1]
    return pool(flat, tuple(kernel), stride=1, padding=tuple(padding)).reshape(shape)


def while_loop(cond: Callable[[tuple[Array, ...]], Array], body: Callable[[tuple[Array, ...]], tuple[Array, ...]],
               init: tuple[Array, ...], /, *, xp: ModuleType) -> tuple[Array, ...]:
    """While ``torch.compile`` traces: the ``while_loop`` higher-order op (one loop in the graph, no
    graph break; the condition is read on the device). Eagerly: the generic Python loop (the op's own
    eager mode is the same loop), which reads the condition back each step, a host sync per step on
    CUDA: a data-dependent stop cannot be known on the host otherwise."""
    torch = _torch()
    if not torch.compiler.is_compiling():
        return generic.while_loop(cond, body, init, xp=xp)
    from torch._higher_order_ops import while_loop as torch_while_loop

    def step(*state: Array) -> tuple[Array, ...]:  # the op wants the carried layouts kept: contiguous both ways
        return tuple(x.contiguous() for x in body(state))

    loop = cast(Callable[..., tuple[Array, ...]], torch_while_loop)  # untyped in torch
    return tuple(loop(lambda *state: cond(state), step, tuple(x.contiguous() for x in init)))


def distance_transform(fg: Array, /, *, sampling: tuple[float, ...], dtype: Any, xp: ModuleType) -> Array:
    """Eager CPU tensors: SciPy's EDT on a zero-copy NumPy view; otherwise the generic one.

    While ``torch.compile`` traces, the generic one: the tracer must never call
    a host kernel (a custom op registered lazily would have to be registered
    inside the trace, and a module-level flag would become a Dynamo guard), so
    compiled graphs take the exact array-API path; so do tensors under a
    ``torch.func`` transform (a functorch wrapper has no data pointer) and
    tensors off the host (``policy.on_host``: a NumPy view would sync).
    """
    torch = _torch()
    out = None
    if policy.on_host(fg) and not torch.compiler.is_compiling() and not _functorch_wrapped(fg):
        out = scipy_edt(fg.numpy(), sampling)
    if out is None:
        return generic.exact_edt(fg, sampling, dtype, fg.device, xp=xp)
    return generic.with_diagonal(torch.from_numpy(out), fg, sampling=sampling, dtype=dtype, xp=xp)


def linear_sum_assignment(cost: Array, row_valid: Array, col_valid: Array, /, *, xp: ModuleType) -> Array | None:
    """Eager host tensors: SciPy per problem on zero-copy NumPy views (``scipy_assignment``); ``None``
    while compiling, under ``torch.func`` transforms and off the host (the caller's solver)."""
    torch = _torch()
    if not policy.on_host(cost) or torch.compiler.is_compiling() or _functorch_wrapped(cost):
        return None
    out = scipy_assignment(cost.detach().numpy(), row_valid.numpy(), col_valid.numpy())
    return None if out is None else torch.from_numpy(out)


def _functorch_wrapped(x: Array) -> bool:
    """True for a tensor inside ``torch.func.grad``/``vmap`` (it has no NumPy view)."""
    functorch = getattr(_torch()._C, "_functorch", None)
    return functorch is not None and bool(functorch.is_functorch_wrapped_tensor(x))


NATIVE: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    clip, cumulative_sum, log_softmax, softmax, logsumexp, softplus, log_sigmoid, sigmoid, sigmoid_cross_entropy,
    take_along_axis, unpermute, sort_descending, kth_largest, softmax_nll, value_range, one_hot, class_sums,
    max_argmax, segment_max, map_problems, moveaxis, unstack, stop_gradient, max_pool, distance_transform,
    softmax_cross_entropy, reduced_sigmoid_cross_entropy, while_loop, linear_sum_assignment,
)}


# --------------------------------------------------------------------------- #
# Fused region sums
# --------------------------------------------------------------------------- #


def fused_class_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: str, squared: bool,
                     xp: ModuleType) -> tuple[Array, Array, Array]:
    """One autograd.Function (``torch_fused.FusedClassSums``): the activation and the sums in one forward,
    ``p`` kept, the closed-form gradient written in place into one buffer (out of place, so differentiable
    again, under ``create_graph`` and ``torch.func``); autocast off inside."""
    from .torch_fused import fused_class_sums as torch_fused_class_sums  # its own module: torch imported lazily

    labels_or_t = target.to(_torch().int64) if target.ndim == 2 else target
    return torch_fused_class_sums(x, labels_or_t, valid, axis, activation == "sigmoid", squared)


NATIVE[fused_class_sums.__name__] = fused_class_sums


def fused_class_sums_nll(x: Array, labels: Array, valid: Array | None, weight: Array | None, /, *, axis: int,
                         gamma: float, squared: bool, xp: ModuleType) -> tuple[Array, Array, Array, Array]:
    """The same autograd.Function with the pixel term: one log-softmax (its exponential, in place, is ``p``)
    and the term's gradient added into the one gradient buffer."""
    from .torch_fused import fused_class_sums as torch_fused_class_sums

    psum, tp, tsum, nll = torch_fused_class_sums(x, labels.to(_torch().int64), valid, axis, False, squared, weight,
                                                 float(gamma))
    return psum, tp, tsum, nll


NATIVE[fused_class_sums_nll.__name__] = fused_class_sums_nll


# --------------------------------------------------------------------------- #
# autograd Functions, built on first use: importing polyloss never imports torch
# --------------------------------------------------------------------------- #


ClassSums: Any  # ``class_sums``'s autograd Function: a name declared here, built by ``__getattr__``
ProblemMap: Any  # ``map_problems``'s autograd Function, likewise


def __getattr__(name: str) -> Any:
    """The module's lazily built autograd Functions (``ClassSums``, ``ProblemMap``), each built once and kept.

    Callers write ``from .torch import ClassSums`` inside the function that
    uses it: under ``torch.compile`` Dynamo runs an import statement for real,
    so the class is built outside the trace even on a first, compiled call.
    """
    builders = {"ClassSums": _class_sums_function, "ProblemMap": _problem_map_function}
    if name not in builders:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    built = globals()[name] = builders[name]()
    return built


def _class_sums_function() -> Any:
    """``class_sums``'s autograd Function (see its docstring)."""
    import torch

    class ClassSums(torch.autograd.Function):
        """Per-sample, per-class sums of ``p`` over valid pixels, and of ``p`` at each pixel's label.

        ``p`` is ``(N, C, M)`` or ``(N, M, C)`` (class ``axis`` 1 or 2);
        ``labels`` ``(N, M)`` int64 in range, ``valid`` the mask of pixels that
        count (or None). The scatter at the labels accumulates in float64 (a
        sequential float32 one drifts). The backward writes the gradient of
        ``p`` in one pass (the per-class gradient of the total broadcast, plus
        a scatter at the labels) instead of autograd's zero-filled scatter
        added to a broadcast.
        """

        generate_vmap_rule = True  # torch.func.vmap: forward and backward are torch operations with batching rules

        @staticmethod
        def forward(p: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None, axis: int) -> Any:
            wide = torch.float64 if torch.finfo(p.dtype).bits <= 32 else p.dtype
            at_label = torch.gather(p, axis, labels.unsqueeze(axis)).squeeze(axis)
            total = p.sum(3 - axis) if valid is None else torch.where(valid.unsqueeze(axis), p, 0).sum(3 - axis)
            if valid is not None:
                at_label = torch.where(valid, at_label, 0)
            labelled = torch.zeros(total.shape, dtype=wide, device=p.device).scatter_add(1, labels, at_label.to(wide))
            return total, labelled.to(p.dtype)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            p, labels, valid, axis = inputs
            ctx.save_for_backward(labels, valid)
            ctx.axis, ctx.shape = axis, p.shape

        @staticmethod
        def backward(ctx: Any, grad_total: torch.Tensor, grad_labelled: torch.Tensor) -> Any:
            labels, valid = ctx.saved_tensors
            axis = ctx.axis
            grad = grad_total.unsqueeze(3 - axis).expand(ctx.shape).contiguous()
            at_label = torch.gather(grad_labelled, 1, labels)
            if valid is not None:
                grad = grad.masked_fill_(~valid.unsqueeze(axis), 0)
                at_label = at_label.masked_fill(~valid, 0)
            return grad.scatter_add_(axis, labels.unsqueeze(axis), at_label.unsqueeze(axis)), None, None, None

    return ClassSums


def _problem_map_function() -> Any:
    """``map_problems``'s autograd Function (see its docstring)."""
    import torch

    class ProblemMap(torch.autograd.Function):
        """``fn(*arrays)`` for a ``fn`` that solves the independent problems stacked on axis 0 of its inputs.

        Its output is not differentiable (an assignment). Under
        ``torch.func.vmap`` the ``vmap`` rule moves each input's batch axis
        first (broadcasting an unbatched input), folds it into the problem
        axis, calls ``fn`` once on the plain tensors and unfolds the result.
        """

        @staticmethod
        def forward(fn: Callable[..., Array], *arrays: Any) -> Any:
            return fn(*arrays)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            ctx.mark_non_differentiable(output)

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:  # pragma: no cover - the output is non-differentiable
            raise RuntimeError("map_problems: its output (an assignment) has no gradient")

        @staticmethod
        def vmap(info: Any, in_dims: tuple[int | None, ...], fn: Callable[..., Array], *arrays: Any) -> Any:
            size, folded = info.batch_size, []
            for a, dim in zip(arrays, in_dims[1:], strict=True):
                if a is not None:
                    a = a.expand(size, *a.shape) if dim is None else a.movedim(dim, 0)
                    a = a.reshape(size * a.shape[1], *a.shape[2:])
                folded.append(a)
            out = ProblemMap.apply(fn, *folded)
            return out.reshape(size, out.shape[0] // size, *out.shape[1:]), 0

    return ProblemMap
