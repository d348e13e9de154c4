"""Box utilities and IoU-family losses against torchvision.ops itself (parity session, torch backend)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, to_numpy

import polyloss as pl

torch = pytest.importorskip("torch")
ops = pytest.importorskip("torchvision.ops")

FORMATS = ["xyxy", "xywh", "cxcywh"]


@pytest.fixture(autouse=True)
def _torch_only(backend):
    if not backend.is_torch:
        pytest.skip("torchvision parity runs on the torch backends")


def random_boxes(rng, shape, fmt="xyxy"):
    xy = rng.random((*shape, 2)) * 10
    wh = rng.random((*shape, 2)) * 5 + 0.05
    boxes = torch.tensor(np.concatenate([xy, xy + wh], axis=-1))
    return boxes if fmt == "xyxy" else ops.box_convert(boxes, "xyxy", fmt)


def near_pairs(rng, n):
    t = random_boxes(rng, (n,))
    p = t + torch.tensor(rng.normal(scale=1.5, size=(n, 4)))
    p[:, 2:] = torch.maximum(p[:, 2:], p[:, :2] + 0.05)
    return p, t


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert(backend, rng, in_fmt, out_fmt):
    b = random_boxes(rng, (3, 5), in_fmt)
    got = pl.box_convert(backend.asarray(b.numpy()), in_fmt=in_fmt, out_fmt=out_fmt)
    assert_close(got, ops.box_convert(b, in_fmt, out_fmt).numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_box_area_and_iou(backend, rng, fmt, dtype):
    a, b = random_boxes(rng, (2, 6), fmt).to(dtype), random_boxes(rng, (2, 4), fmt).to(dtype)
    a[0, 1] = b[0, 2]
    got = pl.box_area(backend.asarray(a.numpy()), box_format=fmt)
    assert_close(got, ops.box_area(a, fmt=fmt).numpy(), rtol=1e-6 if dtype == torch.float32 else 1e-12)
    got = pl.box_iou(backend.asarray(a.numpy()), backend.asarray(b.numpy()), box_format=fmt)
    want = ops.box_iou(a, b, fmt=fmt).numpy()
    assert_close(got, want, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-7)


LOSSES = {
    "giou_loss": ops.generalized_box_iou_loss,
    "diou_loss": ops.distance_box_iou_loss,
    "ciou_loss": ops.complete_box_iou_loss,
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iou_losses_values_and_gradients(backend, rng, name, reduction, dtype):
    p, t = near_pairs(rng, 37)
    p, t = p.to(dtype), t.to(dtype)
    xp_, xt = p.clone().requires_grad_(True), p.clone().requires_grad_(True)
    got = getattr(pl, name)(xp_, t, reduction=reduction)
    want = LOSSES[name](xt, t, reduction=reduction)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    assert_close(got, want.detach().numpy(), **tol)
    got.sum().backward()
    want.sum().backward()
    assert_close(xp_.grad, xt.grad.numpy(), **tol)


@pytest.mark.parametrize("name", list(LOSSES))
def test_iou_losses_on_disjoint_identical_and_touching_boxes(backend, name):
    p = torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 2.0, 4.0, 5.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 2.0, 3.0]],
                     dtype=torch.float64)
    t = torch.tensor([[5.0, 6.0, 7.0, 9.0], [1.0, 2.0, 4.0, 5.0], [1.0, 0.0, 2.0, 1.0], [1.0, 1.0, 3.0, 2.0]],
                     dtype=torch.float64)
    got = getattr(pl, name)(p, t, reduction="none")
    assert_close(got, LOSSES[name](p, t).numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_iou_losses_other_formats_equal_torchvision_after_conversion(backend, rng, fmt):
    p, t = near_pairs(rng, 11)
    pf, tf = ops.box_convert(p, "xyxy", fmt), ops.box_convert(t, "xyxy", fmt)
    for name, peer in LOSSES.items():
        got = getattr(pl, name)(pf, tf, box_format=fmt, reduction="none")
        want = peer(ops.box_convert(pf, fmt, "xyxy"), ops.box_convert(tf, fmt, "xyxy"))
        assert_close(got, to_numpy(want), rtol=1e-12, atol=1e-14)


def test_sigmoid_focal_loss_for_retinanet_equals_torchvision(backend, rng):
    # RetinaNet: focal loss summed over anchors x classes, divided by the number of positive anchors
    logits = torch.tensor(rng.normal(size=(2, 50, 7)))
    target = torch.zeros_like(logits)
    anchors = torch.tensor(rng.integers(0, 50, size=(2, 6)))
    classes = torch.tensor(rng.integers(0, 7, size=(2, 6)))
    for i in range(2):
        target[i, anchors[i], classes[i]] = 1.0
    num_pos = max(float((target.sum(-1) > 0).sum()), 1.0)
    got = pl.sigmoid_focal_loss(logits, target, reduction="sum") / num_pos
    want = ops.sigmoid_focal_loss(logits, target, reduction="sum") / num_pos
    assert_close(got, want.numpy(), rtol=1e-12)
