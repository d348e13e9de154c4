"""Fused soft confusion sums: softmax/sigmoid and the per-class sums in one primitive, with a closed-form backward.

A region loss needs, per sample and class, ``psum_c = sum_m p_mc`` (or
``sum_m p_mc**2``, the V-Net form) and ``tp_c = sum_m p_mc t_mc`` over valid
pixels, where ``p`` is the softmax (or sigmoid) of the logits and ``t`` the
one-hot of integer labels (or dense targets). Autograd through the unfused
composition keeps ``p`` (and with dense targets ``p * t``) and every
intermediate alive at full size from forward to backward. Here the backward
is closed-form; with ``a = dL/dtp`` and ``b = dL/dpsum``::

    W_mc = a_c t_mc + b_c (2 p_mc if squared else 1),   W = 0 at ignored pixels
    softmax: dL/dx_mc = p_mc (W_mc - sum_k p_mk W_mk)
    sigmoid: dL/dx_mc = p_mc (1 - p_mc) W_mc

torch: one ``autograd.Function`` (traceable by ``torch.compile``) that keeps
``p`` for the backward and writes the gradient into one full-size buffer
(``_backend.torch_fused`` says why keeping beats recomputing). JAX: ``jax.custom_vjp``
saving the logits only (XLA fuses the recomputed softmax into the backward).
Every other namespace (NumPy, array-api-strict, CuPy): the unfused
composition of ``_backend`` primitives, which computes the same values.

Reference for the softmax vector-Jacobian product: Bridle, "Probabilistic
interpretation of feedforward classification network outputs", 1990; the
region sums are those of Milletari et al., V-Net, 2016, https://arxiv.org/abs/1606.04797.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Literal, NamedTuple

from .._backend import Array, class_sums, device, native_kind, sigmoid, softmax

__all__ = ["Activation", "SoftSums", "fused_class_sums"]

Activation = Literal["softmax", "sigmoid"]


class SoftSums(NamedTuple):
    """Per-sample, per-class sums, each ``(N, C)`` in the logits' dtype."""

    psum: Array  # sum of p (of p**2 when squared) over valid pixels; differentiable
    tp: Array  # sum of p * t over valid pixels (t: one-hot of the labels, or the dense targets); differentiable
    tsum: Array  # sum of t (of t**2 when squared) over valid pixels: the label count per class; constant


def fused_class_sums(
    x: Array, target: Array, valid: Array | None = None, /, *, axis: int, activation: Activation = "softmax",
    squared: bool = False, xp: ModuleType,
) -> SoftSums:
    """Soft confusion sums of ``activation(x)`` against ``target``, per sample and class.

    Args:
        x: logits ``(N, C, M)`` (``axis=1``) or ``(N, M, C)`` (``axis=2``), floating (float32 or wider:
            callers promote half precision first).
        target: integer labels ``(N, M)`` in ``[0, C)`` (ignored pixels already replaced by an in-range
            value), or dense floating targets of ``x``'s shape (one-hot or probabilities). Targets get
            no gradient.
        valid: optional bool mask of the pixels that count: ``(N, M)``, or ``x``'s shape for dense targets.
        axis: the class axis of ``x``, 1 or 2.
        activation: ``"softmax"`` over the class axis (multiclass) or ``"sigmoid"`` per entry
            (binary, multilabel).
        squared: return ``sum p**2`` and ``sum t**2`` (V-Net's squared denominator) in ``psum``/``tsum``.
        xp: the namespace of ``x``.

    Returns:
        ``SoftSums(psum, tp, tsum)``, each ``(N, C)`` in ``x``'s dtype. Summing over the batch
        (``per_image=False``) and ``all_reduce`` are the caller's.
    """
    if axis not in (1, 2) or x.ndim != 3:
        raise ValueError(f"fused_class_sums: x must be 3-D with class axis 1 or 2, got shape {tuple(x.shape)}, "
                         f"axis {axis}")
    kind = native_kind(xp)
    if kind == "torch":
        from .._backend.torch_fused import fused_class_sums as torch_sums  # importing polyloss never imports torch

        labels_or_t = target if target.ndim == 3 else target.long()
        return SoftSums(*torch_sums(x, labels_or_t, valid, axis, activation == "sigmoid", squared))
    if kind == "jax":
        return SoftSums(*_jax_sums(x, target, valid, axis, activation == "sigmoid", squared))
    return _generic_sums(x, target, valid, axis=axis, activation=activation, squared=squared, xp=xp)


def _generic_sums(x: Array, target: Array, valid: Array | None, /, *, axis: int, activation: Activation,
                  squared: bool, xp: ModuleType) -> SoftSums:
    """The unfused composition: the activation, then masked sums (``_xp.class_sums`` for labels)."""
    p = softmax(x, axis=axis, xp=xp) if activation == "softmax" else sigmoid(x, xp=xp)
    pix = 3 - axis
    if target.ndim == 2:
        psum, tp, count = class_sums(p, target, valid, axis=axis, xp=xp)
        if squared:
            psum = xp.sum(_masked(p * p, valid, axis, xp=xp), axis=pix)
        return SoftSums(psum, tp, count)
    t = target if target.dtype == x.dtype else xp.astype(target, x.dtype)
    pm, tm = _masked(p, valid, axis, xp=xp), _masked(t, valid, axis, xp=xp)
    tp = xp.sum(pm * tm, axis=pix)
    if squared:
        return SoftSums(xp.sum(pm * pm, axis=pix), tp, xp.sum(tm * tm, axis=pix))
    return SoftSums(xp.sum(pm, axis=pix), tp, xp.sum(tm, axis=pix))


def _masked(v: Array, valid: Array | None, axis: int, /, *, xp: ModuleType) -> Array:
    if valid is None:
        return v
    mask = xp.expand_dims(valid, axis=axis) if valid.ndim == 2 else valid
    return xp.where(mask, v, xp.zeros((), dtype=v.dtype, device=device(v)))


# --------------------------------------------------------------------------- #
# JAX: custom_vjp (built on first use so that importing polyloss never imports jax)
# --------------------------------------------------------------------------- #

_JAX_SUMS: dict[str, Any] = {}


def _jax_sums(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool, squared: bool
              ) -> tuple[Array, Array, Array]:
    if "f" not in _JAX_SUMS:
        _JAX_SUMS["f"] = _make_jax_sums()
    sums: tuple[Array, Array, Array] = _JAX_SUMS["f"](x, target, valid, axis, use_sigmoid, squared)
    return sums


def _make_jax_sums() -> Any:
    jax = sys.modules["jax"]
    jnp = jax.numpy

    def activate(x: Array, axis: int, use_sigmoid: bool) -> Array:
        return jax.nn.sigmoid(x) if use_sigmoid else jax.nn.softmax(x, axis=axis)

    def targets(x: Array, target: Array, axis: int) -> Array:
        """Dense targets in x's dtype; labels as a one-hot by comparison (XLA fuses it into its consumer)."""
        if target.ndim == 3:
            return target.astype(x.dtype)
        classes = jnp.arange(x.shape[axis]).reshape((-1, 1) if axis == 1 else (-1,))
        return (jnp.expand_dims(target, axis) == classes).astype(x.dtype)

    def mask(x: Array, valid: Array | None, axis: int) -> Array | None:
        if valid is None:
            return None
        return jnp.expand_dims(valid, axis) if valid.ndim == 2 else valid

    def forward(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool, squared: bool
                ) -> tuple[Array, Array, Array]:
        p, t, m = activate(x, axis, use_sigmoid), targets(x, target, axis), mask(x, valid, axis)
        if m is not None:
            p, t = jnp.where(m, p, 0), jnp.where(m, t, 0)
        pix = 3 - axis
        if squared:
            return jnp.sum(p * p, axis=pix), jnp.sum(p * t, axis=pix), jnp.sum(t * t, axis=pix)
        return jnp.sum(p, axis=pix), jnp.sum(p * t, axis=pix), jnp.sum(t, axis=pix)

    sums = jax.custom_vjp(forward, nondiff_argnums=(3, 4, 5))

    def fwd(x: Array, target: Array, valid: Array | None, axis: int, use_sigmoid: bool, squared: bool) -> Any:
        return forward(x, target, valid, axis, use_sigmoid, squared), (x, target, valid)

    def bwd(axis: int, use_sigmoid: bool, squared: bool, res: Any, cotangents: Any) -> Any:
        x, target, valid = res
        b, a, _ = cotangents
        pix = 3 - axis
        p = activate(x, axis, use_sigmoid)
        a, b = jnp.expand_dims(a, pix), jnp.expand_dims(b, pix)
        w = a * targets(x, target, axis) + (2 * b * p if squared else b)
        m = mask(x, valid, axis)
        if m is not None:
            w = jnp.where(m, w, 0)
        g = p * (1 - p) * w if use_sigmoid else p * (w - jnp.sum(p * w, axis=axis, keepdims=True))
        return g, None, None

    sums.defvjp(fwd, bwd)
    return sums
