"""Boundary losses against the peers themselves: MONAI and the OpenCV recipe of boundary-iou-api."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, random_binary, random_labels, random_logits, to_numpy
from reference import np_one_hot

import polyloss as pl

torch = pytest.importorskip("torch")


def monai_value_and_grad(loss, x, target):
    xt = torch.tensor(x, requires_grad=True)
    value = loss(xt, torch.tensor(target))
    (grad,) = torch.autograd.grad(value.sum(), xt)
    return value.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("spatial", "mode", "include_background", "batch", "alpha"), [
    ((9, 11), "multiclass", False, False, 2.0),
    ((9, 11), "multiclass", True, True, 1.0),
    ((5, 6, 7), "multiclass", False, True, 2.0),
    ((8, 10), "multilabel", True, False, 2.0),
    ((5, 6, 7), "binary", False, False, 1.5),
])
def test_hausdorff_dt_loss_equals_monai(backend, rng, spatial, mode, include_background, batch, alpha, reduction):
    monai_losses = pytest.importorskip("monai.losses")
    c = 1 if mode == "binary" else 3
    x = random_logits(rng, (2, c, *spatial))
    if mode == "multiclass":
        y = random_labels(rng, (2, *spatial), c)
        target = np_one_hot(y, c)
    else:
        y = target = random_binary(rng, x.shape, share=0.4)
        target[0, 0] = 0.0  # an empty mask: zero field
    peer = monai_losses.HausdorffDTLoss(alpha=alpha, include_background=include_background, batch=batch,
                                        reduction=reduction, sigmoid=mode != "multiclass",
                                        softmax=mode == "multiclass")
    want, want_grad = monai_value_and_grad(peer, x, target)
    xb = backend.asarray(x)
    # MONAI gives a channel with no foreground a zero field: our empty_field="zero" (the default is "diagonal")
    options = {"alpha": alpha, "mode": mode, "include_background": include_background, "per_image": not batch,
               "reduction": reduction, "empty_field": "zero"}
    got = pl.hausdorff_dt_loss(xb, backend.asarray(y), **options)
    # MONAI rounds its distance fields to float32 (relative 2**-24 each, 2**-23 squared for alpha = 2); every
    # value is a sum of non-negative terms, so it keeps that relative error. Its "none" keeps singleton axes.
    assert_close(got, want.reshape(to_numpy(got).shape), rtol=1e-6)
    _, grad = backend.value_and_grad(lambda z: pl.hausdorff_dt_loss(z, backend.asarray(y), **options).sum(), xb)
    # A softmax gradient sums C signed terms, each off by alpha * 2**-24 relative: an entry near 0 keeps an
    # absolute error of order C * alpha * 2**-24 times the largest term (7.8e-6 relative on 5.7e-5 was seen).
    float32_eps = float(np.finfo(np.float32).eps)
    assert_close(grad, want_grad, rtol=1e-6, atol=8 * float32_eps * np.abs(want_grad).max())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("spatial", "mode", "iterations", "include_background", "smooth"), [
    ((9, 11), "multiclass", 3, True, 1.0),
    ((12, 10), "multiclass", 5, False, 0.5),
    ((5, 6, 7), "multilabel", 3, True, 1.0),
    ((5, 6, 7), "binary", 1, True, 2.0),
])
def test_soft_cldice_loss_equals_monai(backend, rng, spatial, mode, iterations, include_background, smooth,
                                       reduction):
    monai_losses = pytest.importorskip("monai.losses")
    c = 1 if mode == "binary" else 3
    x = random_logits(rng, (2, c, *spatial))
    if mode == "multiclass":
        y = random_labels(rng, (2, *spatial), c)
        target = np_one_hot(y, c)
    else:
        y = target = random_binary(rng, x.shape, share=0.4)
    peer = monai_losses.SoftclDiceLoss(iter_=iterations, smooth_nr=smooth, smooth_dr=smooth,
                                       include_background=include_background, reduction=reduction,
                                       sigmoid=mode != "multiclass", softmax=mode == "multiclass")
    want, want_grad = monai_value_and_grad(peer, x, target)
    xb = backend.asarray(x)
    options = {"mode": mode, "iterations": iterations, "smooth": smooth, "include_background": include_background,
               "per_image": True, "reduction": reduction}
    assert_close(pl.soft_cldice_loss(xb, backend.asarray(y), **options), want, rtol=1e-10)
    _, grad = backend.value_and_grad(lambda z: pl.soft_cldice_loss(z, backend.asarray(y), **options).sum(), xb)
    assert_close(grad, want_grad, rtol=1e-9, atol=1e-14)


def cv2_boundary_iou(gt, dt, dilation_ratio):
    """boundary-iou-api's ``mask_to_boundary`` and ``boundary_iou``, with OpenCV, per image."""
    cv2 = pytest.importorskip("cv2")

    def mask_to_boundary(mask):
        h, w = mask.shape
        dilation = max(1, round(dilation_ratio * np.sqrt(h**2 + w**2)))
        padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, np.ones((3, 3), dtype=np.uint8), iterations=dilation)[1 : h + 1, 1 : w + 1]
        return mask - eroded

    out = []
    for g, d in zip(gt, dt, strict=True):
        bg, bd = mask_to_boundary(g), mask_to_boundary(d)
        union = ((bg + bd) > 0).sum()
        out.append(((bg * bd) > 0).sum() / union if union else 1.0)
    return np.array(out)


@pytest.mark.parametrize("dilation_ratio", [0.0, 0.02, 0.05, 0.2])
@pytest.mark.parametrize("spatial", [(37, 29), (64, 96), (11, 130)])
def test_boundary_iou_equals_opencv_recipe(backend, rng, spatial, dilation_ratio):
    ndimage = pytest.importorskip("scipy.ndimage")
    field = ndimage.gaussian_filter(rng.normal(size=(4, *spatial)), sigma=(0, 3, 3))
    gt = (field > 0).astype(np.uint8)
    dt = np.where(rng.random(gt.shape) < 0.05, 1 - gt, gt).astype(np.uint8)
    dt[3] = gt[3] = 0  # both empty: 1 (the reference divides 0 by 0)
    got = pl.boundary_iou(backend.asarray(dt), backend.asarray(gt), dilation_ratio=dilation_ratio)
    assert_close(got, cv2_boundary_iou(gt, dt, dilation_ratio), rtol=1e-6)
    hard = pl.boundary_iou_loss(backend.asarray(dt[:, None].astype(np.float64)), backend.asarray(gt[:, None]),
                                mode="binary", from_logits=False, dilation_ratio=dilation_ratio, reduction="none")
    assert_close(hard[:, 0], 1 - cv2_boundary_iou(gt, dt, dilation_ratio), rtol=1e-6, atol=1e-12)
