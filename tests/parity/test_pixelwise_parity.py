"""Pixel-wise losses against the peers themselves (the ``parity`` nox session)."""

from __future__ import annotations

import pytest
from helpers import assert_close, random_binary, random_labels, random_logits
from reference import np_one_hot

import polyloss as pl

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (None, 2.0), (0.7, 0.0), (0.5, 1.3)])
def test_sigmoid_focal_loss_equals_torchvision(backend, rng, reduction, alpha, gamma):
    ops = pytest.importorskip("torchvision.ops")
    x = random_logits(rng, (3, 4, 9, 5), scale=3.0)
    t = random_binary(rng, x.shape)
    got = pl.sigmoid_focal_loss(backend.asarray(x), backend.asarray(t), alpha=alpha, gamma=gamma,
                                reduction=reduction)
    want = ops.sigmoid_focal_loss(torch.tensor(x), torch.tensor(t), alpha=-1 if alpha is None else alpha,
                                  gamma=gamma, reduction=reduction)
    assert_close(got, want.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(("alpha", "gamma"), [(None, 2.0), (0.25, 2.0), (0.6, 0.5)])
def test_softmax_focal_loss_is_num_classes_times_kornia(backend, rng, reduction, alpha, gamma):
    kornia = pytest.importorskip("kornia")
    c = 5
    x = random_logits(rng, (3, c, 7, 6))
    y = random_labels(rng, (3, 7, 6), c)
    got = pl.softmax_focal_loss(backend.asarray(x), backend.asarray(y), alpha=alpha, gamma=gamma,
                                reduction=reduction)
    want = kornia.losses.focal_loss(torch.tensor(x), torch.tensor(y), alpha=alpha, gamma=gamma, reduction=reduction)
    scale = c if reduction == "mean" else 1  # kornia's mean divides by classes x pixels
    assert_close(got, scale * want.numpy())


def test_softmax_focal_loss_is_num_classes_times_monai(backend, rng):
    monai_losses = pytest.importorskip("monai.losses")
    c = 4
    x = random_logits(rng, (2, c, 5, 7))
    y = random_labels(rng, (2, 5, 7), c)
    got = pl.softmax_focal_loss(backend.asarray(x), backend.asarray(y), gamma=2.0)
    want = monai_losses.FocalLoss(use_softmax=True, gamma=2.0)(torch.tensor(x), torch.tensor(np_one_hot(y, c)))
    assert_close(got, c * want.numpy(), rtol=1e-6)  # MONAI computes in float32
