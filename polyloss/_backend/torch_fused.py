"""torch entries of ``_backend.fused_class_sums`` and ``fused_class_sums_nll``: one autograd.Function (imported
only where torch is in use).

The forward keeps ``p`` (zeroed at ignored pixels) and ``p`` at each label
for the backward, which writes the gradient into one new full-size buffer.
Keep or recompute (the issue-12 design recomputed): the backward needs ``p``
and the gradient buffer alive together whichever way ``p`` arrives, so
recomputing lowers no peak (2.14x the logits by torch's allocator either way,
and a loss's backward runs while the network's activations are still alive);
it only costs a second softmax, which made the step 1.33x slower on CPU
(8 x 21 x 128^2, interleaved CPU-time medians). So ``p`` is kept, always.

Softmax with integer labels, ``a = dL/dtp``, ``b = dL/dpsum`` (``psum = sum p``)::

    W_mc = b_c + a_c [y_m = c],   S_m = sum_c p_mc W_mc = (b . p)_m + a_y p_y
    dL/dx_mc = p_mc (W_mc - S_m)

so the buffer is the outer difference ``b_c - S_m`` (``S`` by one batched
matrix-vector product), ``a`` scattered in at the labels, times ``p`` in
place: no second full-size buffer. Scatters at the labels accumulate in
float64 (a sequential float32 one drifts by 1e-5 over 10^6 pixels); they
touch ``(N, M)`` values, not ``(N, C, M)``.

Second derivatives: ``p`` is saved untracked, so the in-place fast backward
is invisible to autograd. When the backward itself is recorded
(``create_graph=True``: Hessian-vector products, gradient penalties), it
recomputes ``p`` from the saved logits and writes the same closed form in
out-of-place ops instead, which autograd differentiates again; so does every
``torch.func`` transform (the Function has ``setup_context``, a generated vmap
rule, and, for eager calls, a ``jvp``). Autocast is off inside forward and
backward: float32 logits get float32 sums and gradients.

The compound's pixel term (``fused_class_sums_nll``: cross entropy, or focal
with ``gamma``): one log-softmax whose exponential, in place, is ``p``; the
term's gradient ``e_m (p_m - onehot_m)`` (``e = dL/dnll * c``) joins the
buffer as ``b_c - S_m + e_m`` before the multiplication by ``p``, and
``a_y p_y - e_m`` is scattered at the labels after it: still one full-size
buffer and one scatter (2.5x the logits' peak on the 3-D case, against 5.3x
for the unfused Dice + CE).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch


def _activate(x: Any, axis: int, use_sigmoid: bool) -> Any:
    return torch.sigmoid(x) if use_sigmoid else torch.softmax(x, dim=axis)


class FusedClassSums(torch.autograd.Function):
    """``(psum, tp, tsum, nll)``, and ``p`` (0 at ignored pixels), ``p`` at the labels and the pixel term's
    gradient coefficient for the backward.

    ``gamma`` None: no pixel term (``nll`` a placeholder). Otherwise (softmax over labels) ``nll`` is the
    per-sample sum of ``-w_y (1 - p_y)**gamma log p_y`` over valid pixels (``w``: ``weight`` at the label, 1
    without), whose gradient ``c_m (p_m - onehot_m)``, ``c = w_y ((1 - q)**gamma - gamma (1 - q)**(gamma - 1)
    q log q)`` at ``q = p_y``, the backward adds into the same buffer. Forward and ``setup_context`` are apart
    and the vmap rule generated, so ``torch.func`` transforms it; the extra outputs carry what the backward
    reads (``setup_context`` sees only inputs and outputs) and are not differentiable.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool, squared: bool, weight: Any,
                gamma: float | None) -> Any:
        if target.ndim == 3:
            return (*_dense_sums(x, target, valid, axis, use_sigmoid, squared), x.new_zeros(()))
        functorch = torch._C._are_functorch_transforms_active()  # in-place updates of batched tensors fail
        if gamma is None:
            p, log_q = _activate(x, axis, use_sigmoid), None
        else:  # log p at the labels from the log-softmax, whose exponential is p (in place)
            p = torch.log_softmax(x, dim=axis)
            log_q = torch.gather(p, axis, target.unsqueeze(axis)).squeeze(axis)
            p = p.exp() if functorch else p.exp_()
        if valid is not None:  # the mask covers whole pixels: zero p there, so no sum and no gradient sees them
            hidden = ~valid.unsqueeze(axis)
            p = p.masked_fill(hidden, 0) if functorch else p.masked_fill_(hidden, 0)
        wide = torch.float64 if torch.finfo(x.dtype).bits <= 32 else x.dtype
        if log_q is None:
            at_label = torch.gather(p, axis, target.unsqueeze(axis)).squeeze(axis)  # 0 where ignored
        else:  # the same exponential as p's entry, without a second gather over the classes
            at_label = log_q.exp() if valid is None else torch.where(valid, log_q.exp(), 0)
        counted = torch.ones((), dtype=wide, device=x.device).expand(target.shape) if valid is None \
            else valid.to(wide)
        zeros = torch.zeros((x.shape[0], x.shape[axis]), dtype=wide, device=x.device)
        tp = zeros.scatter_add(1, target, at_label.to(wide)).to(x.dtype)
        tsum = zeros.scatter_add(1, target, counted).to(x.dtype)
        psum = _dot(p, p, axis) if squared else p.sum(3 - axis)
        if gamma is None or log_q is None:
            return psum, tp, tsum, x.new_zeros(()), p, at_label, x.new_zeros(())
        loss, coefficient = _pixel_term(at_label, log_q, _pixel_weight(target, valid, weight, x), gamma)
        return psum, tp, tsum, loss.to(wide).sum(1).to(x.dtype), p, at_label, coefficient

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
        x, target, valid, axis, use_sigmoid, squared, weight, gamma = inputs
        _, _, tsum, nll, p, at_label, coefficient = output
        ctx.save_for_backward(x, target, valid, weight, p, at_label, coefficient)
        ctx.save_for_forward(x, target, valid, weight)
        ctx.axis, ctx.use_sigmoid, ctx.squared, ctx.gamma = axis, use_sigmoid, squared, gamma
        ctx.mark_non_differentiable(tsum, p, at_label, coefficient, *(() if gamma is not None else (nll,)))
        if not torch._C._are_functorch_transforms_active():  # (functorch's forward-over-reverse wants them)
            ctx.set_materialize_grads(False)  # else the backward gets a zero-filled full-size gradient of ``p``

    @staticmethod
    def backward(ctx: Any, grad_psum: Any, grad_tp: Any, _: Any, grad_nll: Any, *__: Any) -> Any:
        x, target, valid, weight, p, at_label, coefficient = ctx.saved_tensors
        axis, use_sigmoid, squared, gamma = ctx.axis, ctx.use_sigmoid, ctx.squared, ctx.gamma
        zeros = x.new_zeros((x.shape[0], x.shape[axis])).expand  # a sum nothing depends on: zero gradient
        grad_psum = zeros(-1, -1) if grad_psum is None else grad_psum
        grad_tp = zeros(-1, -1) if grad_tp is None else grad_tp
        grad_nll = x.new_zeros(x.shape[:1]) if grad_nll is None and gamma is not None else grad_nll
        with _full_precision(x):  # a backward called under autocast
            if torch.is_grad_enabled() or torch._C._are_functorch_transforms_active():
                # a recorded backward (create_graph, torch.func): out-of-place ops autograd can differentiate again
                g = _differentiable_grad(x, target, valid, weight, grad_psum, grad_tp, grad_nll, axis, use_sigmoid,
                                         squared, gamma)
            elif target.ndim == 2:
                e = None if gamma is None else grad_nll.unsqueeze(1) * coefficient
                g = _label_grad(p, target, at_label, e, grad_psum, grad_tp, axis, use_sigmoid, squared)
            else:
                g = _dense_grad(p, target, valid, grad_psum, grad_tp, axis, use_sigmoid, squared)
        return g, None, None, None, None, None, None, None


class FusedClassSumsForward(FusedClassSums):
    """``FusedClassSums`` with forward mode (``torch.func.jvp``, ``jacfwd``, ``hessian``), for eager calls:
    Dynamo refuses to trace a Function that defines ``jvp``, so compiled graphs take the parent."""

    @staticmethod
    def jvp(ctx: Any, dx: Any, *_: Any) -> Any:
        """The tangents of ``psum``, ``tp`` and ``nll`` in out-of-place ops."""
        x, target, valid, weight = ctx.saved_tensors
        axis, pix = ctx.axis, 3 - ctx.axis
        p, t, mask = _recompute(x, target, valid, axis, ctx.use_sigmoid)
        dp = p * (1 - p) * dx if ctx.use_sigmoid else p * (dx - (p * dx).sum(axis, keepdim=True))
        if mask is not None:
            dp = torch.where(mask, dp, 0)
        dpsum, dtp = (2 * p * dp if ctx.squared else dp).sum(pix), (t * dp).sum(pix)
        if ctx.gamma is None:
            return dpsum, dtp, None, None, None, None, None
        c = _differentiable_coefficient(x, target, valid, weight, axis, ctx.gamma)
        dnll = (c * ((p * dx).sum(axis) - torch.gather(dx, axis, target.unsqueeze(axis)).squeeze(axis))).sum(1)
        return dpsum, dtp, None, dnll, None, None, None


def fused_class_sums(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool, squared: bool,
                     weight: Any = None, gamma: float | None = None) -> tuple[Any, ...]:
    """``FusedClassSums.apply`` (typed; ``Function.apply`` is untyped in torch): ``(psum, tp, tsum)``, and
    ``nll`` after them when ``gamma`` is given."""
    apply: Any = FusedClassSums.apply if torch.compiler.is_compiling() else FusedClassSumsForward.apply
    with _full_precision(x):
        psum, tp, tsum, nll, _, _, _ = apply(x, target, valid, axis, use_sigmoid, squared, weight, gamma)
    return (psum, tp, tsum) if gamma is None else (psum, tp, tsum, nll)


def _dense_sums(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool, squared: bool) -> tuple[Any, ...]:
    """Dense targets: an element mask (a masked class still moves its pixel's softmax, so p stays whole)."""
    pix = 3 - axis
    p = _activate(x, axis, use_sigmoid)
    t, pm = target.to(x.dtype), p
    if valid is not None:
        t, pm = torch.where(valid, t, 0), torch.where(valid, p, 0)
    tsum = (t.square() if squared else t).sum(pix)
    psum = _dot(pm, pm, axis) if squared else pm.sum(pix)
    return psum, _dot(pm, t, axis), tsum, x.new_zeros(()), p, x.new_zeros(())


def _pixel_weight(target: Any, valid: Any, weight: Any, x: Any) -> Any:
    """``w_y`` at each pixel, 0 where ignored, ``(N, M)`` in ``x``'s dtype."""
    w = torch.ones((), dtype=x.dtype, device=x.device).expand(target.shape) if weight is None else weight[target]
    return w if valid is None else torch.where(valid, w, 0)


def _pixel_term(q: Any, log_q: Any, w: Any, gamma: float) -> tuple[Any, Any]:
    """The focal (cross entropy at ``gamma = 0``) loss per pixel and its gradient coefficient ``c``."""
    if gamma == 0:
        return -w * log_q, w
    one_minus = 1 - q
    modulation = one_minus**gamma
    return -w * modulation * log_q, w * (modulation - gamma * one_minus ** (gamma - 1) * q * log_q)


def _differentiable_coefficient(x: Any, target: Any, valid: Any, weight: Any, axis: int, gamma: float) -> Any:
    log_q = torch.gather(torch.log_softmax(x, dim=axis), axis, target.unsqueeze(axis)).squeeze(axis)
    return _pixel_term(log_q.exp(), log_q, _pixel_weight(target, valid, weight, x), gamma)[1]


def _full_precision(x: Any) -> Any:
    """Autocast off on ``x``'s device: the sums (einsum, bmm) and the gradient stay in ``x``'s dtype, as the
    unfused composition in float32 would compute them (autocast would run the matrix products in bfloat16)."""
    device_type = x.device.type
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _label_grad(p: Any, target: Any, at_label: Any, e: Any, grad_psum: Any, grad_tp: Any, axis: int,
                use_sigmoid: bool, squared: bool) -> Any:
    """The in-place closed form for integer labels (the module docstring's derivation); ``e`` ``(N, M)``: the
    pixel term's ``dL/dnll * c``, which adds ``e (p - onehot)`` (softmax only)."""
    pix = 3 - axis
    b = grad_psum.unsqueeze(pix)
    y = target.unsqueeze(axis)
    a_y = torch.gather(grad_tp, 1, target).unsqueeze(axis)
    if use_sigmoid:  # p (1 - p) W, W = b (2 b p when squared) + a at the label
        g = p * (2 * b) if squared else b.expand(p.shape).contiguous()
        g.scatter_add_(axis, y, a_y).mul_(p)
        return g.addcmul_(g, p, value=-1)
    p_y = at_label.unsqueeze(axis)
    e = None if e is None else e.unsqueeze(axis)
    if squared:  # W = 2 b p + a at the label: p W - p S with S = sum_c p W (- e: the pixel term)
        g = torch.mul(p, 2 * b).mul_(p)
        s = g.sum(axis, keepdim=True).addcmul_(p_y, a_y)
        g.addcmul_(p, s if e is None else s.sub_(e), value=-1)
        at_y = a_y.mul_(p_y)
        return g.scatter_add_(axis, y, at_y if e is None else at_y.sub_(e))
    if e is not None:  # (W - S + e) p with S = b . p + a_y p_y, then a_y p_y - e at the labels: one scatter
        at_y = a_y.mul_(p_y).sub_(e)
        s = _add_bdot(at_y.clone(), grad_psum, p, axis)  # S - e
        g = b - s
        del s
        return g.mul_(p).scatter_add_(axis, y, at_y)
    # (W - S) p with S = b . p + a_y p_y, built in the (N, M) buffer of a_y
    s = _add_bdot(a_y.mul_(p_y), grad_psum, p, axis)
    g = b - s
    del s, a_y  # before the next (N, M) buffer: the peak is p, the gradient, p_y and S
    g.scatter_add_(axis, y, torch.gather(grad_tp, 1, target).unsqueeze(axis))
    return g.mul_(p)


def _add_bdot(s: Any, b: Any, p: Any, axis: int) -> Any:
    """``s += sum_c p_mc b_c`` in place, ``s`` ``(N, 1, M)`` or ``(N, M, 1)``: a batched matrix-vector product."""
    return s.baddbmm_(b.unsqueeze(1), p) if axis == 1 else s.baddbmm_(p, b.unsqueeze(2))


def _dense_grad(p: Any, target: Any, valid: Any, grad_psum: Any, grad_tp: Any, axis: int, use_sigmoid: bool,
                squared: bool) -> Any:
    """The in-place closed form for dense targets: W = a t + b (2 b p when squared), masked, then the activation's."""
    pix = 3 - axis
    b = grad_psum.unsqueeze(pix)
    g = target.to(p.dtype) * grad_tp.unsqueeze(pix)
    if squared:
        g.addcmul_(p, b, value=2)
    else:
        g.add_(b)
    if valid is not None:
        g.masked_fill_(~valid, 0)
    g.mul_(p)  # p W
    if use_sigmoid:
        return g.addcmul_(g, p, value=-1)  # p (1 - p) W
    return g.addcmul_(p, g.sum(axis, keepdim=True), value=-1)  # p (W - sum_k p W)


def _recompute(x: Any, target: Any, valid: Any, axis: int, use_sigmoid: bool) -> tuple[Any, Any, Any]:
    """``p`` from the logits, the targets as floats (labels one-hot) and the mask in ``x``'s rank, out of place."""
    p = _activate(x, axis, use_sigmoid)
    if target.ndim == 2:
        classes = torch.arange(x.shape[axis], device=x.device).view((-1, 1) if axis == 1 else (-1,))
        t = (target.unsqueeze(axis) == classes).to(x.dtype)
        return p, t, None if valid is None else valid.unsqueeze(axis)
    return p, target.to(x.dtype), valid


def _differentiable_grad(x: Any, target: Any, valid: Any, weight: Any, grad_psum: Any, grad_tp: Any, grad_nll: Any,
                         axis: int, use_sigmoid: bool, squared: bool, gamma: float | None) -> Any:
    """The closed-form gradient in out-of-place ops of ``x`` (``p`` recomputed), so that autograd can
    differentiate it again (double backward, Hessian-vector products, gradient penalties)."""
    pix = 3 - axis
    p, t, mask = _recompute(x, target, valid, axis, use_sigmoid)
    w = grad_tp.unsqueeze(pix) * t + grad_psum.unsqueeze(pix) * (2 * p if squared else 1)
    if mask is not None:
        w = torch.where(mask, w, 0)
    if use_sigmoid:
        return p * (1 - p) * w
    g = p * (w - (p * w).sum(axis, keepdim=True))
    if gamma is None:
        return g
    e = grad_nll.unsqueeze(1) * _differentiable_coefficient(x, target, valid, weight, axis, gamma)
    return g + e.unsqueeze(axis) * (p - t)


def _dot(u: Any, v: Any, axis: int) -> Any:
    """``sum(u * v)`` over the pixel axis, ``(N, C)``, as a batched dot (no full-size temporary)."""
    return torch.einsum("ncm,ncm->nc" if axis == 1 else "nmc,nmc->nc", u, v)
