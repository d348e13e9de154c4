"""SIoU, MPDIoU, Wise-IoU, NWD and the Inner-IoU option against float64 formulas written from the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, to_numpy

import polyloss as pl

lazy_xp_modules = [pl]

EPS = 1e-7
REDUCTIONS = ["mean", "sum", "none"]


def pairs(rng, n):
    """Predicted boxes near their targets (most overlap, some do not), xyxy, positive sizes."""
    xy = rng.random((n, 2)) * 10
    t = np.concatenate([xy, xy + rng.random((n, 2)) * 5 + 0.1], axis=-1)
    p = t + rng.normal(scale=1.5, size=(n, 4))
    p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 0.1)
    return p, t


def iou_ref(p, t, ratio=None):
    """IoU with eps in the denominator; Inner-IoU: both boxes scaled by ``ratio`` about their centres."""
    if ratio is not None:
        p, t = (np.array([(b[0] + b[2]) / 2 - ratio * (b[2] - b[0]) / 2, (b[1] + b[3]) / 2 - ratio * (b[3] - b[1]) / 2,
                          (b[0] + b[2]) / 2 + ratio * (b[2] - b[0]) / 2, (b[1] + b[3]) / 2 + ratio * (b[3] - b[1]) / 2])
                for b in (p, t))
    iw, ih = min(p[2], t[2]) - max(p[0], t[0]), min(p[3], t[3]) - max(p[1], t[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
    return inter / (union + EPS)


def geometry(p, t):
    """Centre offset (pred - target), enclosing width/height, widths and heights."""
    dx = (p[0] + p[2]) / 2 - (t[0] + t[2]) / 2
    dy = (p[1] + p[3]) / 2 - (t[1] + t[3]) / 2
    cw, ch = max(p[2], t[2]) - min(p[0], t[0]), max(p[3], t[3]) - min(p[1], t[1])
    return dx, dy, cw, ch, p[2] - p[0], p[3] - p[1], t[2] - t[0], t[3] - t[1]


def siou_ref(p, t, ratio=None, theta=4.0):  # Gevorgyan 2022, eqs. for Lambda, Delta, Omega
    dx, dy, cw, ch, w, h, wg, hg = geometry(p, t)
    sigma = math.hypot(dx, dy)
    if sigma == 0:
        angle = 0.0
    else:
        sin_a = abs(dy) / sigma
        if sin_a > math.sqrt(2) / 2:  # the smaller angle: to the y axis
            sin_a = abs(dx) / sigma
        angle = 1 - 2 * math.sin(math.asin(sin_a) - math.pi / 4) ** 2
    gamma = 2 - angle
    distance = sum(1 - math.exp(-gamma * rho) for rho in ((dx / cw) ** 2, (dy / ch) ** 2))
    shape = sum((1 - math.exp(-abs(a - b) / max(a, b))) ** theta for a, b in ((w, wg), (h, hg)))
    return 1 - iou_ref(p, t, ratio) + (distance + shape) / 2


def mpdiou_ref(p, t, size, ratio=None):  # Ma & Xu 2023
    hh, ww = size
    d1 = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2
    d2 = (p[2] - t[2]) ** 2 + (p[3] - t[3]) ** 2
    return 1 - (iou_ref(p, t, ratio) - d1 / (ww**2 + hh**2) - d2 / (ww**2 + hh**2))


def wiou_v1_ref(p, t, ratio=None):  # Tong et al. 2023
    dx, dy, cw, ch, *_ = geometry(p, t)
    return math.exp((dx**2 + dy**2) / (cw**2 + ch**2)) * (1 - iou_ref(p, t, ratio))


def nwd_ref(p, t, c=12.8):  # Wang et al. 2021
    dx, dy, _, _, w, h, wg, hg = geometry(p, t)
    w2 = dx**2 + dy**2 + (w / 2 - wg / 2) ** 2 + (h / 2 - hg / 2) ** 2
    return 1 - math.exp(-math.sqrt(w2) / c)


def reduce(values, reduction):
    values = np.asarray(values)
    return values if reduction == "none" else (values.mean() if reduction == "mean" else values.sum())


CASES = {
    "siou_loss": ({}, lambda p, t: siou_ref(p, t)),
    "mpdiou_loss": ({"image_size": (13.0, 17.0)}, lambda p, t: mpdiou_ref(p, t, (13.0, 17.0))),
    "wiou_loss": ({}, wiou_v1_ref),
    "nwd_loss": ({}, nwd_ref),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(xp, rng, name, reduction):
    p, t = pairs(rng, 23)
    options, ref = CASES[name]
    got = getattr(pl, name)(xp.asarray(p), xp.asarray(t), reduction=reduction, **options)
    assert_close(got, reduce([ref(a, b) for a, b in zip(p, t, strict=True)], reduction), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_box_formats_agree(xp, rng, name, fmt):
    p, t = pairs(rng, 9)
    options = CASES[name][0]
    want = getattr(pl, name)(xp.asarray(p), xp.asarray(t), reduction="none", **options)
    conv = (pl.box_convert(xp.asarray(b), in_fmt="xyxy", out_fmt=fmt) for b in (p, t))
    got = getattr(pl, name)(*conv, box_format=fmt, reduction="none", **options)
    assert_close(got, to_numpy(want), rtol=1e-6, atol=1e-6)


INNER_REFS = {
    "iou_loss": lambda p, t, r: 1 - iou_ref(p, t, r),
    "siou_loss": lambda p, t, r: siou_ref(p, t, r),
    "mpdiou_loss": lambda p, t, r: mpdiou_ref(p, t, (13.0, 17.0), r),
    "wiou_loss": wiou_v1_ref,
}


@pytest.mark.parametrize("ratio", [0.7, 1.3])
@pytest.mark.parametrize("name", ["iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss", "siou_loss",
                                  "mpdiou_loss", "wiou_loss"])
def test_inner_ratio_changes_only_the_iou_term(xp, rng, name, ratio):
    """Inner-IoU (Zhang et al. 2023): L_inner = L + IoU - IoU_inner, for every loss that has an IoU term."""
    p, t = pairs(rng, 17)
    options = {"image_size": (13.0, 17.0)} if name == "mpdiou_loss" else {}
    f = getattr(pl, name)
    plain = to_numpy(f(xp.asarray(p), xp.asarray(t), reduction="none", **options))
    got = f(xp.asarray(p), xp.asarray(t), reduction="none", inner_ratio=ratio, **options)
    if name == "wiou_loss":  # R (1 - IoU_inner)
        want = [wiou_v1_ref(a, b, ratio) for a, b in zip(p, t, strict=True)]
    else:
        want = plain + np.array([iou_ref(a, b) - iou_ref(a, b, ratio) for a, b in zip(p, t, strict=True)])
    assert_close(got, want, rtol=1e-5, atol=1e-6)
    if name in INNER_REFS and name != "wiou_loss":
        assert_close(got, [INNER_REFS[name](a, b, ratio) for a, b in zip(p, t, strict=True)], rtol=1e-5, atol=1e-6)


def test_inner_ratio_one_is_the_plain_loss(xp, rng):
    p, t = pairs(rng, 11)
    for f in (pl.ciou_loss, pl.giou_loss, pl.siou_loss):
        assert_close(f(xp.asarray(p), xp.asarray(t), inner_ratio=1.0), to_numpy(f(xp.asarray(p), xp.asarray(t))),
                     rtol=1e-6)


def wiou_v3_ref(p, t, mean, momentum, alpha=1.9, delta=3.0):
    """Official update-then-scale order: the new mean is used in beta."""
    l_iou = np.array([1 - iou_ref(a, b) for a, b in zip(p, t, strict=True)])
    new_mean = l_iou.mean() if mean is None else (1 - momentum) * mean + momentum * l_iou.mean()
    beta = l_iou / new_mean
    r = beta / (delta * alpha ** (beta - delta))
    return r * np.array([wiou_v1_ref(a, b) for a, b in zip(p, t, strict=True)]), new_mean


@pytest.mark.parametrize("mean", [None, 0.8])
def test_wiou_v3_returns_loss_and_running_mean(xp, rng, mean):
    p, t = pairs(rng, 19)
    loss, new_mean = pl.wiou_loss(xp.asarray(p), xp.asarray(t), version=3, mean_iou_loss=mean, momentum=0.05,
                                  reduction="none")
    want, want_mean = wiou_v3_ref(p, t, mean, 0.05)
    assert_close(loss, want, rtol=1e-5, atol=1e-6)
    assert_close(new_mean, want_mean, rtol=1e-6)
    # the state threads through: a second step from the returned mean
    loss2, mean2 = pl.wiou_loss(xp.asarray(p), xp.asarray(t), version=3, mean_iou_loss=new_mean, momentum=0.05)
    want2, want_mean2 = wiou_v3_ref(p, t, float(to_numpy(new_mean)), 0.05)
    assert_close(loss2, want2.mean(), rtol=1e-5)
    assert_close(mean2, want_mean2, rtol=1e-6)


def test_wiou_v3_focus_is_one_at_beta_delta(xp):
    """r = beta / (delta alpha^(beta - delta)) is 1 where beta = delta: L_v3 = L_v1."""
    p, t = np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 1.0, 3.0, 3.0]])
    l_iou = 1 - iou_ref(p[0], t[0])
    v3, _ = pl.wiou_loss(xp.asarray(p), xp.asarray(t), version=3, mean_iou_loss=l_iou / 3, momentum=0.0)
    assert_close(v3, to_numpy(pl.wiou_loss(xp.asarray(p), xp.asarray(t))), rtol=1e-6)


GRAD_CASES = [("siou_loss", {}), ("mpdiou_loss", {"image_size": (9.0, 11.0)}),  # wiou: its own test below
              ("nwd_loss", {}), ("giou_loss", {"inner_ratio": 0.8}), ("siou_loss", {"inner_ratio": 1.2})]


@pytest.mark.parametrize(("name", "options"), GRAD_CASES)
def test_gradients_match_finite_differences(backend, rng, name, options):
    p, t = pairs(rng, 5)
    tt = backend.asarray(t)
    backend.check_grad(lambda x: getattr(pl, name)(x, tt, reduction="sum", **options), p, rtol=1e-5)


def test_wiou_gradient_holds_the_enclosing_box_and_v3_focus_constant(backend, rng):
    """d L_v1 / d p = R d(1 - IoU)/dp + (1 - IoU) R d(rho^2)/dp / (W_g^2 + H_g^2)*: no term through W_g, H_g."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    p, t = pairs(rng, 4)
    _, got = backend.value_and_grad(lambda x: pl.wiou_loss(x, backend.asarray(t), reduction="sum"), backend.asarray(p))
    numeric = np.zeros_like(p)
    h = 1e-6

    def held(b, target, enclosing2):
        dx, dy, *_ = geometry(b, target)
        return math.exp((dx**2 + dy**2) / enclosing2) * (1 - iou_ref(b, target))

    for i in range(p.shape[0]):
        _, _, cw, ch, *_ = geometry(p[i], t[i])
        for j in range(4):
            hi, lo = p[i].copy(), p[i].copy()
            hi[j] += h
            lo[j] -= h
            numeric[i, j] = (held(hi, t[i], cw**2 + ch**2) - held(lo, t[i], cw**2 + ch**2)) / (2 * h)
    np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-7)


def test_identical_and_degenerate_boxes_are_finite(backend):
    boxes = np.array([[1.0, 1.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    targets = np.array([[1.0, 1.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0], [5.0, 0.0, 6.0, 1.0]])
    for name, options in [*CASES.items()]:
        f = getattr(pl, name)
        value = f(backend.asarray(boxes), backend.asarray(targets), reduction="none", **options[0])
        assert_finite(value)
        if backend.has_autodiff:
            assert_finite(backend.value_and_grad(
                lambda x, f=f, o=options[0]: f(x, backend.asarray(targets), reduction="sum", **o),
                backend.asarray(boxes))[1])
    for name in ("siou_loss", "wiou_loss", "nwd_loss"):
        got = getattr(pl, name)(backend.asarray(boxes[:1]), backend.asarray(targets[:1]))
        assert_close(got, 0.0, atol=1e-3)  # nwd: 1 - exp(-sqrt(eps)/C)


def test_empty_batch_and_half_precision(xp, rng):
    empty = xp.zeros((0, 4), dtype=xp.float32)
    for name, (options, _) in CASES.items():
        assert float(getattr(pl, name)(empty, empty, **options)) == 0.0
    loss, mean = pl.wiou_loss(empty, empty, version=3, mean_iou_loss=0.5)
    assert float(loss) == 0.0 and abs(float(mean) - 0.5) < 1e-7
    if not hasattr(xp, "float16"):
        return
    p, t = pairs(rng, 6)
    got = pl.siou_loss(xp.asarray(p, dtype=xp.float16), xp.asarray(t, dtype=xp.float16))
    assert got.dtype == xp.float16


def test_bad_input(xp, rng):
    p, t = (xp.asarray(b) for b in pairs(rng, 3))
    with pytest.raises(ValueError, match="mpdiou_loss: image_size"):
        pl.mpdiou_loss(p, t, image_size=(0.0, 4.0))
    with pytest.raises(ValueError, match="mpdiou_loss: image_size"):
        pl.mpdiou_loss(p, t, image_size=4.0)
    with pytest.raises(ValueError, match="wiou_loss: version"):
        pl.wiou_loss(p, t, version=2)
    with pytest.raises(ValueError, match="wiou_loss: mean_iou_loss"):
        pl.wiou_loss(p, t, mean_iou_loss=0.5)
    with pytest.raises(ValueError, match="wiou_loss: momentum"):
        pl.wiou_loss(p, t, version=3, momentum=1.5)
    with pytest.raises(ValueError, match="nwd_loss: constant"):
        pl.nwd_loss(p, t, constant=0.0)
    with pytest.raises(ValueError, match="siou_loss: theta"):
        pl.siou_loss(p, t, theta=-1.0)
    with pytest.raises(ValueError, match="ciou_loss: inner_ratio"):
        pl.ciou_loss(p, t, inner_ratio=0.0)
    with pytest.raises(ValueError, match="siou_loss: y_true must have the shape"):
        pl.siou_loss(p, t[:2, ...])
