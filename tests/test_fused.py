"""``_backend.fused_class_sums``: values, gradients, masks and compilation against unfused references.

References: a float64 NumPy loop over samples and classes (values), the unfused
composition (``generic.fused_class_sums``: the activation, then the masked sums)
differentiated by the backend's own autodiff, and central finite differences (gradients).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import assert_close, random_labels, random_logits, to_numpy

from polyloss import _backend
from polyloss._backend import generic

N, C, M = 3, 5, 37  # odd sizes: no power-of-two coincidences


def np_activate(x, activation):
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-x))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_sums(x, target, valid, *, axis, activation, squared):
    """float64 loops; every array is moved to (N, C, M) first."""
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 1)
    n, c, m = x.shape
    p = np_activate(x, activation)
    if target.ndim == 2:
        t = np.zeros_like(p)
        for i in range(n):
            for j in range(m):
                t[i, target[i, j], j] = 1.0
    else:
        t = np.moveaxis(target, axis, 1).astype(np.float64)
    if valid is None:
        v = np.ones_like(p)
    elif valid.ndim == 2:
        v = np.repeat(valid[:, None, :], c, axis=1).astype(np.float64)
    else:
        v = np.moveaxis(valid, axis, 1).astype(np.float64)
    psum, tp, tsum = (np.zeros((n, c)) for _ in range(3))
    for i in range(n):
        for k in range(c):
            pk, tk, vk = p[i, k], t[i, k], v[i, k]
            psum[i, k] = np.sum(vk * (pk * pk if squared else pk))
            tp[i, k] = np.sum(vk * pk * tk)
            tsum[i, k] = np.sum(vk * (tk * tk if squared else tk))
    return psum, tp, tsum


def make_inputs(rng, *, axis, form, masked, n=N, c=C, m=M):
    x = random_logits(rng, (n, c, m))
    if axis == 2:
        x = np.ascontiguousarray(np.moveaxis(x, 1, 2))
    if form == "labels":
        target = random_labels(rng, (n, m), c)
        valid = rng.random((n, m)) < 0.7 if masked else None
    else:
        target = rng.random(x.shape)
        valid = rng.random(x.shape) < 0.7 if masked else None
    return x, target, valid


def on(backend, x, target, valid, dtype="float64"):
    xs = backend.asarray(x, dtype=backend.float_dtype(dtype))
    ts = backend.asarray(target) if target.ndim == 2 else backend.asarray(target, dtype=backend.float_dtype(dtype))
    return xs, ts, None if valid is None else backend.asarray(valid)


class Sums(NamedTuple):
    psum: Any
    tp: Any
    tsum: Any


def fused(backend, x, target, valid, *, axis, activation="softmax", squared=False):
    """The primitive as the region losses call it: the backend's native entry where it has one."""
    return Sums(*_backend.fused_class_sums(x, target, valid, axis=axis, activation=activation, squared=squared,
                                           xp=backend.xp))


def unfused(backend, x, target, valid, *, axis, activation="softmax", squared=False):
    """The generic twin: the activation, then the masked sums, in the namespace's plain operations."""
    return Sums(*generic.fused_class_sums(x, target, valid, axis=axis, activation=activation, squared=squared,
                                          xp=backend.xp))


OPTIONS = pytest.mark.parametrize(
    ("axis", "activation", "form", "masked", "squared"),
    [
        (1, "softmax", "labels", False, False),
        (2, "softmax", "labels", True, False),
        (1, "softmax", "labels", True, True),
        (2, "softmax", "dense", True, False),
        (1, "softmax", "dense", False, True),
        (1, "sigmoid", "labels", True, False),
        (2, "sigmoid", "dense", True, True),
        (1, "sigmoid", "dense", False, False),
    ],
)


@OPTIONS
def test_values_match_float64_loops(backend, rng, axis, activation, form, masked, squared):
    x, target, valid = make_inputs(rng, axis=axis, form=form, masked=masked)
    got = fused(backend, *on(backend, x, target, valid), axis=axis, activation=activation, squared=squared)
    want = ref_sums(x, target, valid, axis=axis, activation=activation, squared=squared)
    for g, w in zip(got, want, strict=True):
        assert_close(g, w, rtol=1e-12, atol=1e-12)  # float64 sums of 37 terms: a few ulps


@pytest.mark.parametrize("axis", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_float32_equals_unfused_path(backend, rng, axis, masked):
    """Same float32 arithmetic as the dispatched softmax and ``class_sums``: bit-for-bit on torch and NumPy; JAX
    reorders its sums under XLA (1e-6)."""
    x, target, valid = make_inputs(rng, axis=axis, form="labels", masked=masked, n=2, c=4, m=301)
    args = on(backend, x, target, valid, "float32")
    got = fused(backend, *args, axis=axis, activation="softmax", squared=False)
    p = _backend.softmax(args[0], axis=axis, xp=backend.xp)
    want = _backend.class_sums(p, args[1], args[2], axis=axis, xp=backend.xp)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == backend.xp.float32
        if backend.is_jax:
            assert_close(g, to_numpy(w), rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(to_numpy(g), to_numpy(w))


def test_float32_sums_of_a_million_pixels(backend, rng):
    """10^6 float32 probabilities per class sum to 1e-6 relative of the float64 sums (no drift)."""
    if backend.name == "array_api_strict":
        pytest.skip("array_api_strict: the generic path is NumPy's arithmetic; one large case suffices")
    x, target, _ = make_inputs(rng, axis=1, form="labels", masked=False, n=1, c=2, m=1_000_000)
    got = fused(backend, *on(backend, x, target, None, "float32"), axis=1, activation="softmax")
    x32 = x.astype(np.float32).astype(np.float64)  # the float32 inputs, summed exactly enough in float64
    p = np_activate(x32, "softmax")
    hit = target[:, None, :] == np.arange(2)[None, :, None]
    assert_close(got.psum, p.sum(axis=2), rtol=1e-6, atol=0)
    assert_close(got.tp, np.where(hit, p, 0).sum(axis=2), rtol=1e-6, atol=0)
    assert_close(got.tsum, hit.sum(axis=2), rtol=0, atol=0)


@OPTIONS
def test_gradient_equals_unfused_autodiff(backend, rng, axis, activation, form, masked, squared):
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    x, target, valid = make_inputs(rng, axis=axis, form=form, masked=masked)
    _, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    kw = dict(axis=axis, activation=activation, squared=squared)

    def objective(impl):
        def f(z):
            s = impl(backend, z, t, v, **kw)
            return backend.xp.sum(a * s.tp + b * s.psum + s.tsum)

        return f

    xs = backend.asarray(x)
    got_value, got = backend.value_and_grad(objective(fused), xs)
    want_value, want = backend.value_and_grad(objective(unfused), xs)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)  # float64, two summation orders


@pytest.mark.parametrize(("activation", "form", "squared"),
                         [("softmax", "labels", False), ("softmax", "dense", True), ("sigmoid", "labels", True)])
def test_gradient_matches_finite_differences(backend, rng, activation, form, squared):
    x, target, valid = make_inputs(rng, axis=1, form=form, masked=True, n=2, c=3, m=5)
    _, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(2, 3))) for _ in range(2))

    def f(z):
        s = fused(backend, z, t, v, axis=1, activation=activation, squared=squared)
        return backend.xp.sum(a * s.tp + b * s.psum)

    backend.check_grad(f, x)  # central differences, eps 1e-6: ~1e-9 truncation, rtol 1e-5


@pytest.mark.parametrize("form", ["labels", "dense"])
def test_all_masked_and_empty_batch_give_zeros(backend, rng, form):
    for n, masked_share in ((2, 1.0), (0, 0.0)):
        x, target, _ = make_inputs(rng, axis=1, form=form, masked=False, n=n, c=3, m=4)
        valid = np.zeros(target.shape[:1] + target.shape[-1:] if form == "labels" else x.shape, dtype=bool)
        if masked_share == 0.0:
            valid = ~valid
        xs, t, v = on(backend, x, target, valid)
        s = fused(backend, xs, t, v, axis=1)
        for part in s:
            assert part.shape == (n, 3)
            np.testing.assert_array_equal(to_numpy(part), 0.0)
        if backend.has_autodiff:
            _, grad = backend.value_and_grad(
                lambda z, t=t, v=v: backend.xp.sum(fused(backend, z, t, v, axis=1).tp), xs)
            assert grad.shape == x.shape
            np.testing.assert_array_equal(grad, 0.0)


def test_masked_pixels_take_no_part(backend, rng):
    """Changing logits at ignored pixels changes neither the sums nor the other pixels' gradients."""
    x, target, valid = make_inputs(rng, axis=2, form="labels", masked=True)
    x2 = np.where(valid[:, :, None], x, 1e4 * rng.normal(size=x.shape))  # saturated junk where ignored
    one = fused(backend, *on(backend, x, target, valid), axis=2)
    two = fused(backend, *on(backend, x2, target, valid), axis=2)
    for g, w in zip(one, two, strict=True):
        assert_close(g, to_numpy(w), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("form", "activation", "squared"),
                         [("labels", "softmax", False), ("labels", "softmax", True), ("labels", "sigmoid", False),
                          ("dense", "softmax", False)])
def test_torch_backward_twice_with_retained_graph(backend, rng, form, activation, squared):
    """The kept probabilities are read, never overwritten, by the backward: a second backward agrees."""
    if not backend.is_torch:
        pytest.skip("the autograd.Function is torch's")
    import torch

    x, target, valid = make_inputs(rng, axis=1, form=form, masked=True)
    xs, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    z = xs.clone().requires_grad_(True)
    s = fused(backend, z, t, v, axis=1, activation=activation, squared=squared)
    loss = backend.xp.sum(a * s.tp + b * s.psum)
    (first,) = torch.autograd.grad(loss, z, retain_graph=True)
    (second,) = torch.autograd.grad(loss, z)
    np.testing.assert_array_equal(to_numpy(first), to_numpy(second))


def test_rejects_bad_layout(backend):
    x = backend.asarray(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="fused_class_sums: x must be 3-D"):
        _backend.fused_class_sums(x, backend.asarray(np.zeros((2, 20), dtype=np.int64)), None, axis=1,
                                  activation="softmax", squared=False, xp=backend.xp)


# --------------------------------------------------------------------------- #
# Compilation: torch.compile(fullgraph=True) and jax.jit give the eager values and gradients
# --------------------------------------------------------------------------- #


def _loss(backend, kw):
    def f(z, t, v, a, b):
        s = fused(backend, z, t, v, **kw)
        return backend.xp.sum(a * s.tp + b * s.psum)

    return f


@pytest.mark.parametrize("dynamic", [False, True])
@pytest.mark.parametrize(("form", "squared", "activation"),
                         [("labels", False, "softmax"), ("dense", True, "sigmoid")])
def test_torch_compile_fullgraph(backend, rng, dynamic, form, squared, activation):
    if not backend.is_torch:
        pytest.skip("torch.compile is torch's")
    import torch

    torch._dynamo.reset()
    x, target, valid = make_inputs(rng, axis=1, form=form, masked=True)
    xs, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    f = _loss(backend, dict(axis=1, activation=activation, squared=squared))
    compiled = torch.compile(f, fullgraph=True, dynamic=dynamic)
    want = backend.value_and_grad(lambda z: f(z, t, v, a, b), xs)
    got = backend.value_and_grad(lambda z: compiled(z, t, v, a, b), xs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)  # float64; inductor may reorder sums


@pytest.mark.parametrize(("form", "squared", "activation"),
                         [("labels", False, "softmax"), ("dense", True, "sigmoid")])
def test_jax_jit(backend, rng, form, squared, activation):
    if not backend.is_jax:
        pytest.skip("jax.jit is JAX's")
    import jax

    x, target, valid = make_inputs(rng, axis=2, form=form, masked=True)
    xs, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    f = _loss(backend, dict(axis=2, activation=activation, squared=squared))
    want = jax.value_and_grad(f)(xs, t, v, a, b)
    got = jax.jit(jax.value_and_grad(f))(xs, t, v, a, b)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(to_numpy(g), to_numpy(w), rtol=1e-12, atol=1e-14)



# --------------------------------------------------------------------------- #
# torch usage modes: double backward, torch.func, autocast (the fused Function against the unfused composition)
# --------------------------------------------------------------------------- #


def _torch_or_skip(backend):
    if not backend.is_torch:
        pytest.skip("the autograd.Function is torch's")
    import torch

    return torch


def _curved(impl, backend, t, v, a, b, kw):
    """A scalar that is not linear in the sums, so its Hessian holds both the softmax's and the ratio's curvature."""

    def f(z):
        s = impl(backend, z, t, v, **kw)
        return backend.xp.sum(a * s.tp / (s.psum + s.tsum + 1.0) + b * s.psum * s.psum)

    return f


@OPTIONS
def test_torch_double_backward_equals_unfused(backend, rng, axis, activation, form, masked, squared):
    """Gradient (with create_graph) and a Hessian-vector product through it equal the unfused composition's."""
    torch = _torch_or_skip(backend)
    x, target, valid = make_inputs(rng, axis=axis, form=form, masked=masked)
    _, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    direction = backend.asarray(rng.normal(size=x.shape))
    kw = dict(axis=axis, activation=activation, squared=squared)
    results = []
    for impl in (fused, unfused):
        z = backend.asarray(x).requires_grad_(True)
        (grad,) = torch.autograd.grad(_curved(impl, backend, t, v, a, b, kw)(z), z, create_graph=True)
        (hvp,) = torch.autograd.grad(torch.sum(grad * direction), z)
        results.append((grad.detach(), hvp))
    (grad, hvp), (want_grad, want_hvp) = results
    assert_close(grad, to_numpy(want_grad), rtol=1e-10, atol=1e-12)
    assert float(torch.linalg.vector_norm(want_hvp)) > 1e-3  # the check below can fail
    assert_close(hvp, to_numpy(want_hvp), rtol=1e-9, atol=1e-11)  # float64, two summation orders


@pytest.mark.parametrize("squared", [False, True])
def test_torch_hessian_vector_product_matches_finite_differences(backend, rng, squared):
    """An independent check of the second derivative: central differences of the first-order gradient."""
    torch = _torch_or_skip(backend)
    x, target, valid = make_inputs(rng, axis=1, form="labels", masked=True, n=2, c=3, m=7)
    _, t, v = on(backend, x, target, valid)
    a, b = (backend.asarray(rng.normal(size=(2, 3))) for _ in range(2))
    f = _curved(fused, backend, t, v, a, b, dict(axis=1, activation="softmax", squared=squared))
    direction = rng.normal(size=x.shape)
    z = backend.asarray(x).requires_grad_(True)
    (grad,) = torch.autograd.grad(f(z), z, create_graph=True)
    (hvp,) = torch.autograd.grad(torch.sum(grad * backend.asarray(direction)), z)

    def first(shift):
        z = backend.asarray(x + shift * direction).requires_grad_(True)
        return to_numpy(torch.autograd.grad(f(z), z)[0])

    eps = 1e-5
    assert_close(hvp, (first(eps) - first(-eps)) / (2 * eps), rtol=1e-6, atol=1e-8)


@OPTIONS
def test_torch_func_transforms_equal_unfused(backend, rng, axis, activation, form, masked, squared):
    """``torch.func``: per-sample gradients (``vmap(grad)``), ``jacrev`` and ``hessian`` (forward over reverse)."""
    torch = _torch_or_skip(backend)
    func = torch.func
    x, target, valid = make_inputs(rng, axis=axis, form=form, masked=masked, n=3, c=4, m=6)
    xs, t, v = on(backend, x, target, valid)
    v = torch.ones(t.shape, dtype=torch.bool) if v is None else v  # vmap needs an array to map over
    kw = dict(axis=axis, activation=activation, squared=squared)
    impls = {"fused": lambda *a, **kw: fused(backend, *a, **kw), "unfused": lambda *a, **kw: unfused(backend, *a, **kw)}

    def scalar(impl):
        def f(z, t, v):
            s = impl(z[None], t[None], v[None], **kw)
            return torch.sum(s.tp / (s.psum + s.tsum + 1.0) + s.psum * s.psum)

        return f

    got, want = ({"per_sample": func.vmap(func.grad(scalar(impl)))(xs, t, v),
                  "jacrev": func.jacrev(lambda z, impl=impl: impl(z, t, v, **kw).tp)(xs),
                  "hessian": func.hessian(lambda z, impl=impl: scalar(impl)(z, t[0], v[0]))(xs[0])}
                 for impl in impls.values())
    for name in got:
        assert got[name].shape == want[name].shape, name
        assert_close(got[name], to_numpy(want[name]), rtol=1e-10, atol=1e-12)


def test_torch_func_grad_of_region_losses(backend, rng):
    """``torch.func.grad`` of the public losses (the fused path) equals ``backward()``'s gradient."""
    torch = _torch_or_skip(backend)
    import polyloss as pl

    x = backend.asarray(random_logits(rng, (2, 3, 5, 4)))
    y = backend.asarray(random_labels(rng, (2, 5, 4), 3))
    for loss in (pl.dice_loss, pl.jaccard_loss, pl.tversky_loss, lambda z, y: pl.dice_loss(z, y, squared=True)):
        got = torch.func.grad(lambda z, loss=loss: loss(z, y))(x)
        z = x.clone().requires_grad_(True)
        loss(z, y).backward()
        assert_close(got, to_numpy(z.grad), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("form", "activation"), [("labels", "softmax"), ("dense", "sigmoid")])
def test_torch_autocast_keeps_float32(backend, rng, form, activation):
    """Under ``torch.autocast("cpu", bfloat16)`` (forward and backward inside it) float32 logits give the float32
    values and gradients: autocast would run the squared sums' matrix products in bfloat16 (1e-3 off)."""
    torch = _torch_or_skip(backend)
    import polyloss as pl

    x, target, valid = make_inputs(rng, axis=1, form=form, masked=True, n=2, c=4, m=300)
    xs, t, v = on(backend, x, target, valid, "float32")
    a = backend.asarray(rng.normal(size=(2, 4)), dtype=torch.float32)

    def run(f, z0):
        z = z0.clone().requires_grad_(True)
        value = f(z)
        value.backward()
        return value.detach(), z.grad

    def sums(z):
        s = fused(backend, z, t, v, axis=1, activation=activation, squared=True)
        return torch.sum(a * s.tp / (s.psum + 1.0))

    labels = backend.asarray(random_labels(rng, (2, 5, 6), 4))
    logits = backend.asarray(random_logits(rng, (2, 4, 5, 6)), dtype=torch.float32)
    for f, z0 in ((sums, xs), (lambda z: pl.dice_loss(z, labels, squared=True), logits)):
        want = run(f, z0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = run(f, z0)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == torch.float32
            assert_close(g, to_numpy(w), rtol=1e-6, atol=1e-7)  # float32 arithmetic, maybe reordered


# --------------------------------------------------------------------------- #
# The compound's pixel term folded in: fused_class_sums_nll
# --------------------------------------------------------------------------- #

NLL_OPTIONS = pytest.mark.parametrize(
    ("axis", "masked", "squared", "gamma", "weighted"),
    [(1, False, False, 0.0, False), (2, True, False, 0.0, True), (1, True, True, 0.0, True),
     (1, True, False, 2.0, True), (2, False, True, 1.0, False), (1, True, False, 3.5, False)],
)


def _nll_inputs(rng, backend, *, axis, masked, weighted, n=N, c=C, m=M):
    x, target, valid = make_inputs(rng, axis=axis, form="labels", masked=masked, n=n, c=c, m=m)
    weight = rng.uniform(0.2, 2.0, size=c) if weighted else None
    return x, target, valid, weight


def nll_fused(backend, x, t, v, w, **kw):
    return _backend.fused_class_sums_nll(x, t, v, w, xp=backend.xp, **kw)


def nll_unfused(backend, x, t, v, w, **kw):
    return generic.fused_class_sums_nll(x, t, v, w, xp=backend.xp, **kw)


def ref_nll(x, target, valid, weight, *, axis, gamma):
    """float64 loops: per sample, sum over valid pixels of -w_y (1 - p_y)^gamma log p_y."""
    xc = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 1)
    n, _, m = xc.shape
    out = np.zeros(n)
    for i in range(n):
        for j in range(m):
            if valid is not None and not valid[i, j]:
                continue
            z = xc[i, :, j]
            log_q = z[target[i, j]] - z.max() - np.log(np.exp(z - z.max()).sum())
            w = 1.0 if weight is None else weight[target[i, j]]
            out[i] -= w * (1 - np.exp(log_q)) ** gamma * log_q
    return out


@NLL_OPTIONS
def test_nll_values_match_float64_loops(backend, rng, axis, masked, squared, gamma, weighted):
    x, target, valid, weight = _nll_inputs(rng, backend, axis=axis, masked=masked, weighted=weighted)
    xs, t, v = on(backend, x, target, valid)
    w = None if weight is None else backend.asarray(weight)
    got = nll_fused(backend, xs, t, v, w, axis=axis, gamma=gamma, squared=squared)
    want = ref_sums(x, target, valid, axis=axis, activation="softmax", squared=squared)
    for g, expected in zip(got, (*want, ref_nll(x, target, valid, weight, axis=axis, gamma=gamma)), strict=True):
        assert_close(g, expected, rtol=1e-12, atol=1e-12)


@NLL_OPTIONS
def test_nll_first_and_second_derivatives_equal_unfused(backend, rng, axis, masked, squared, gamma, weighted):
    """The gradient (closed form) and, on torch, a Hessian-vector product through it (create_graph) equal the
    generic composition's autodiff."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    x, target, valid, weight = _nll_inputs(rng, backend, axis=axis, masked=masked, weighted=weighted)
    _, t, v = on(backend, x, target, valid)
    w = None if weight is None else backend.asarray(weight)
    a, b = (backend.asarray(rng.normal(size=(N, C))) for _ in range(2))
    d = backend.asarray(rng.normal(size=N))
    kw = dict(axis=axis, gamma=gamma, squared=squared)

    def objective(impl):
        def f(z):
            psum, tp, tsum, nll = impl(backend, z, t, v, w, **kw)
            return backend.xp.sum(a * tp / (psum + tsum + 1.0) + b * psum) + backend.xp.sum(d * nll * nll)

        return f

    xs = backend.asarray(x)
    got_value, got = backend.value_and_grad(objective(nll_fused), xs)
    want_value, want = backend.value_and_grad(objective(nll_unfused), xs)
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if backend.is_torch:
        import torch

        direction = backend.asarray(rng.normal(size=x.shape))
        hvps = []
        for impl in (nll_fused, nll_unfused):
            z = backend.asarray(x).requires_grad_(True)
            (grad,) = torch.autograd.grad(objective(impl)(z), z, create_graph=True)
            hvps.append(torch.autograd.grad(torch.sum(grad * direction), z)[0])
        assert_close(hvps[0], to_numpy(hvps[1]), rtol=1e-9, atol=1e-11)


@pytest.fixture
def generic_only(monkeypatch):
    """A context manager: ``_backend`` with every native table emptied (the unfused composition in plain ops)."""
    import contextlib

    @contextlib.contextmanager
    def patched():
        with monkeypatch.context() as patch:
            patch.setattr(_backend, "NATIVE", {kind: {} for kind in _backend.NATIVE})
            yield

    return patched


COMPOUNDS = pytest.mark.parametrize(("name", "options"), [
    ("dice_cross_entropy_loss", {}),
    ("dice_cross_entropy_loss", {"weight": [0.5, 2.0, 1.0, 0.25], "ignore_index": 255}),
    ("dice_cross_entropy_loss", {"class_axis": -1, "per_image": True, "reduction": "sum", "lambda_ce": 0.7}),
    ("dice_focal_loss", {"ignore_index": 255}),
    ("dice_focal_loss", {"gamma": 1.0, "alpha": 0.25, "class_axis": -1}),
    ("dice_focal_loss", {"gamma": 3.0, "alpha": [0.1, 0.2, 0.3, 0.4], "ignore_index": 255, "per_image": True}),
])


def _compound_inputs(rng, backend, options):
    x = random_logits(rng, (2, 4, 5, 3))
    y = random_labels(rng, (2, 5, 3), 4)
    if "ignore_index" in options:
        y[0, 1, :2] = 255
    if options.get("class_axis") == -1:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    return x, backend.asarray(y)


def _compound(name, options):
    import polyloss as pl

    return lambda z, y: getattr(pl, name)(z, y, **options)


@COMPOUNDS
def test_compound_values_and_derivatives_equal_unfused(backend, rng, generic_only, name, options):
    """The compound through the fused primitive (the pixel term folded in) against the same compound with every
    native table emptied: value, gradient, and on torch a Hessian-vector product (create_graph)."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    x, y = _compound_inputs(rng, backend, options)
    loss = _compound(name, options)
    got_value, got = backend.value_and_grad(lambda z: loss(z, y), backend.asarray(x))
    with generic_only():
        want_value, want = backend.value_and_grad(lambda z: loss(z, y), backend.asarray(x))
    np.testing.assert_allclose(got_value, want_value, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    if not backend.is_torch:
        return
    import torch

    direction = backend.asarray(rng.normal(size=x.shape))

    def hvp():
        z = backend.asarray(x).requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(z, y), z, create_graph=True)
        return torch.autograd.grad(torch.sum(grad * direction), z)[0]

    got_hvp = hvp()
    with generic_only():
        want_hvp = hvp()
    assert float(torch.linalg.vector_norm(want_hvp)) > 1e-3
    assert_close(got_hvp, to_numpy(want_hvp), rtol=1e-9, atol=1e-11)


def test_dice_cross_entropy_is_dice_plus_cross_entropy(backend, rng):
    """An independent reference: the public dice_loss plus cross_entropy (unweighted, ignored pixels)."""
    import polyloss as pl

    x, y = _compound_inputs(rng, backend, {"ignore_index": 255})
    xs = backend.asarray(x)
    got = pl.dice_cross_entropy_loss(xs, y, ignore_index=255)
    want = pl.dice_loss(xs, y, ignore_index=255) + pl.cross_entropy(xs, y, ignore_index=255)
    assert_close(got, to_numpy(want), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("gamma", "weighted"), [(0.0, True), (2.0, False)])
def test_nll_torch_func_transforms_equal_unfused(backend, rng, gamma, weighted):
    """Per-sample gradients and ``hessian`` (forward over reverse) through the pixel term too."""
    torch = _torch_or_skip(backend)
    func = torch.func
    x, target, valid, weight = _nll_inputs(rng, backend, axis=1, masked=True, weighted=weighted, n=3, c=4, m=6)
    xs, t, v = on(backend, x, target, valid)
    w = None if weight is None else backend.asarray(weight)

    def scalar(impl):
        def f(z, t, v):
            psum, tp, tsum, nll = impl(backend, z[None], t[None], v[None], w, axis=1, gamma=gamma, squared=False)
            return torch.sum(tp / (psum + tsum + 1.0)) + torch.sum(nll * nll)

        return f

    got, want = ({"per_sample": func.vmap(func.grad(scalar(impl)))(xs, t, v),
                  "hessian": func.hessian(lambda z, impl=impl: scalar(impl)(z, t[0], v[0]))(xs[0])}
                 for impl in (nll_fused, nll_unfused))
    for name in got:
        assert_close(got[name], to_numpy(want[name]), rtol=1e-10, atol=1e-12)
