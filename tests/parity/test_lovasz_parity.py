"""Lovasz hinge and Lovasz-Softmax against smp's LovaszLoss (the reference code) and kornia."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, random_labels, random_logits, to_numpy

import polyloss as pl

torch = pytest.importorskip("torch")


def _torch_value_and_grad(loss, x, *rest, dtype=torch.float64):
    x = torch.tensor(x, dtype=dtype, requires_grad=True)
    value = loss(x, *rest)
    value.backward()
    return value.detach().numpy(), x.grad.numpy()


def _ours_value_and_grad(backend, f, x):
    if backend.has_autodiff:
        return backend.value_and_grad(f, backend.asarray(x))
    return to_numpy(f(backend.asarray(x))), None


def _binary(rng, shape, ignore=None):
    t = (rng.random(shape) < 0.4).astype(np.int64)
    if ignore is not None:
        t[rng.random(shape) < 0.2] = ignore
    return t


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [None, 255])
def test_lovasz_hinge_equals_smp_binary_mode(backend, rng, per_image, ignore):
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    x = random_logits(rng, (3, 1, 9, 7))
    t = _binary(rng, x.shape, ignore)
    smp = smp_losses.LovaszLoss("binary", per_image=per_image, ignore_index=ignore)
    # smp computes lovasz_grad in float32 (``.float()``) and fails on a float64 dot: compare in float32
    want, want_grad = _torch_value_and_grad(smp, x, torch.tensor(t), dtype=torch.float32)
    tt = backend.asarray(t)
    got, grad = _ours_value_and_grad(
        backend, lambda v: pl.lovasz_hinge_loss(v, tt, per_image=per_image, ignore_index=ignore), x
    )
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    if grad is not None:
        assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore", [None, -1])
def test_lovasz_softmax_equals_smp_multiclass_mode(backend, rng, per_image, ignore):
    smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")
    x = random_logits(rng, (3, 5, 8, 6))
    y = random_labels(rng, (3, 8, 6), 4, ignore_index=ignore)  # class 4 absent: "present" skips it
    smp = smp_losses.LovaszLoss("multiclass", per_image=per_image, ignore_index=ignore)
    want, want_grad = _torch_value_and_grad(smp, x, torch.tensor(y), dtype=torch.float32)  # as for the hinge
    yy = backend.asarray(y)
    got, grad = _ours_value_and_grad(
        backend, lambda v: pl.lovasz_softmax_loss(v, yy, per_image=per_image, ignore_index=ignore), x
    )
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    if grad is not None:
        assert_close(grad, want_grad, rtol=1e-5, atol=1e-6)


def test_lovasz_softmax_equals_kornia(backend, rng):
    kornia = pytest.importorskip("kornia")
    x = random_logits(rng, (3, 4, 7, 5))
    y = random_labels(rng, (3, 7, 5), 3)  # class 3 absent: kornia scores every class
    want, want_grad = _torch_value_and_grad(kornia.losses.lovasz_softmax_loss, x, torch.tensor(y))
    yy = backend.asarray(y)
    got, grad = _ours_value_and_grad(
        backend, lambda v: pl.lovasz_softmax_loss(v, yy, per_image=True, classes="all"), x
    )
    assert_close(got, want)
    if grad is not None:
        assert_close(grad, want_grad)


def test_lovasz_hinge_equals_kornia(backend, rng):
    kornia = pytest.importorskip("kornia")
    x = random_logits(rng, (3, 1, 7, 5))
    t = _binary(rng, (3, 7, 5))
    want, want_grad = _torch_value_and_grad(kornia.losses.lovasz_hinge_loss, x, torch.tensor(t))
    tt = backend.asarray(t[:, None])
    got, grad = _ours_value_and_grad(backend, lambda v: pl.lovasz_hinge_loss(v, tt), x)
    assert_close(got, want)
    if grad is not None:
        assert_close(grad, want_grad)
