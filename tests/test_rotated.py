"""Rotated boxes: formats, Gaussians, GWD / KLD / ProbIoU / KFIoU and the exact rotated IoU.

References are float64 NumPy/SciPy written from the papers' matrix formulas
(matrix square roots, inverses, determinants), independent of the closed forms
the library uses; the rotated IoU is checked against a plain-loop polygon
clipping written here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from helpers import assert_close, assert_finite, to_numpy

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

REDUCTIONS = ["mean", "sum", "none"]
LOSSES = ["gwd_loss", "kld_loss", "probiou_loss", "kfiou_loss"]

# --------------------------------------------------------------------------- #
# Random boxes and float64 references
# --------------------------------------------------------------------------- #


def random_rboxes(rng, n, *, scale=20.0):
    """cxcywhr boxes with sizes in [2, 12] and any angle."""
    xy = rng.random((n, 2)) * scale
    wh = rng.uniform(2.0, 12.0, size=(n, 2))
    return np.concatenate([xy, wh, rng.uniform(-math.pi, math.pi, size=(n, 1))], axis=-1)


def near_pairs(rng, n):
    """Predictions near their targets: small shifts, size changes and turns."""
    t = random_rboxes(rng, n)
    p = t + np.concatenate([rng.normal(scale=1.5, size=(n, 2)), rng.normal(scale=0.8, size=(n, 2)),
                            rng.normal(scale=0.3, size=(n, 1))], axis=-1)
    p[:, 2:4] = np.abs(p[:, 2:4]) + 0.5
    return p, t


def rotation(theta):
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


def gaussian_ref(box, var_scale=0.25):
    """mu, Sigma = R diag(s w^2, s h^2) R^T; s = 1/4 (Yang et al.) or 1/12 (ProbIoU)."""
    cx, cy, w, h, r = box
    rot = rotation(r)
    return np.array([cx, cy]), rot @ np.diag([var_scale * w**2, var_scale * h**2]) @ rot.T


def postprocess_ref(d, fun, tau):
    f = {"log1p": math.log1p, "sqrt": math.sqrt, "none": lambda v: v}[fun](d)
    return 1 - 1 / (tau + f) if tau >= 1 else f


def gwd_ref(p, t, fun="log1p", tau=1.0):  # Yang et al. 2021, eq. (3); mmrotate's normalisation
    mp, sp = gaussian_ref(p)
    mt, st = gaussian_ref(t)
    root = scipy.linalg.sqrtm(sp)
    w2 = np.sum((mp - mt) ** 2) + np.trace(sp + st - 2 * np.real(scipy.linalg.sqrtm(root @ st @ root)))
    d = math.sqrt(w2) / (2 * (np.linalg.det(sp) * np.linalg.det(st)) ** 0.125)
    return postprocess_ref(d, fun, tau)


def kld_ref(p, t, fun="log1p", tau=1.0):  # Yang et al. 2021 (NeurIPS), KL(N_t || N_p)
    mp, sp = gaussian_ref(p)
    mt, st = gaussian_ref(t)
    inv = np.linalg.inv(sp)
    d = mp - mt
    kl = 0.5 * (d @ inv @ d + np.trace(inv @ st) + math.log(np.linalg.det(sp) / np.linalg.det(st)) - 2)
    return postprocess_ref(math.sqrt(kl), fun, tau)


def probiou_ref(p, t):  # Llerena et al. 2021: Bhattacharyya distance, Hellinger distance
    mp, sp = gaussian_ref(p, 1 / 12)
    mt, st = gaussian_ref(t, 1 / 12)
    s = (sp + st) / 2
    d = mp - mt
    det = np.linalg.det
    b = d @ np.linalg.inv(s) @ d / 8 + 0.5 * math.log(det(s) / math.sqrt(det(sp) * det(st)))
    return math.sqrt(1 - math.exp(-b))


def kfiou_ref(p, t, fun="none", beta=1 / 9, eps=1e-6):  # Yang et al. 2023; mmrotate's KFLoss
    _, sp = gaussian_ref(p)
    _, st = gaussian_ref(t)
    gain = sp @ np.linalg.inv(sp + st)
    sigma = sp - gain @ sp
    vol = [4 * math.sqrt(np.linalg.det(m)) for m in (sp, st, sigma)]
    kfiou = vol[2] / (vol[0] + vol[1] - vol[2] + eps)
    kf = {"none": 1 - kfiou, "ln": -math.log(kfiou + eps), "exp": math.exp(1 - kfiou) - 1}[fun]
    offset = rotation(t[4]).T @ (p[:2] - t[:2]) / t[2:4]  # in the target's frame, per unit of its size
    centre = sum(0.5 * v**2 / beta if v < beta else v - 0.5 * beta for v in np.abs(offset))
    return max(centre + kf, 0.0)


REFS = {"gwd_loss": gwd_ref, "kld_loss": kld_ref, "probiou_loss": probiou_ref, "kfiou_loss": kfiou_ref}


def pairwise_ref(ref, p, t, **options):
    return np.array([ref(a, b, **options) for a, b in zip(p, t, strict=True)])


def corners_ref(box):
    """The four corners, counter-clockwise, by rotating the axis-aligned corners about the centre."""
    cx, cy, w, h, r = box
    local = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return [tuple(c) for c in local @ rotation(r).T + np.array([cx, cy])]


def clip_ref(subject, clip):
    """Plain Sutherland-Hodgman with lists: ``subject`` clipped by each edge of the convex, CCW ``clip``."""
    out = list(subject)
    for (ax, ay), (bx, by) in zip(clip, clip[1:] + clip[:1], strict=True):
        if not out:
            break
        side = [(bx - ax) * (y - ay) - (by - ay) * (x - ax) for x, y in out]  # >= 0: left of the edge, inside
        new = []
        for i, (x, y) in enumerate(out):
            j = (i + 1) % len(out)
            if side[i] >= 0:
                new.append((x, y))
            if (side[i] >= 0) != (side[j] >= 0):
                f = side[i] / (side[i] - side[j])
                new.append((x + f * (out[j][0] - x), y + f * (out[j][1] - y)))
        out = new
    return out


def area_ref(poly):
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1], strict=True))


def rotated_iou_ref(a, b):
    """IoU by clipping B's polygon with A's edges (the library clips A with B's axes)."""
    inter = area_ref(clip_ref(corners_ref(b), corners_ref(a))) if a[2] * a[3] * b[2] * b[3] > 0 else 0.0
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- #
# Formats and Gaussians
# --------------------------------------------------------------------------- #


def test_box_convert_rotated_formats(backend, rng):
    boxes = random_rboxes(rng, 7)
    xywhr = backend.asarray(boxes)
    corner = pl.box_convert(xywhr, in_fmt="cxcywhr", out_fmt="xywhr")
    want = boxes.copy()
    want[:, :2] = [corners_ref(b)[0] for b in boxes]  # the corner that was top-left before the turn
    assert_close(corner, want, rtol=1e-12, atol=1e-12)
    assert_close(pl.box_convert(corner, in_fmt="xywhr", out_fmt="cxcywhr"), boxes, rtol=1e-12, atol=1e-12)
    assert_close(pl.box_convert(xywhr, in_fmt="cxcywhr", out_fmt="cxcywhr"), boxes)


def test_box_convert_rejects_mixed_formats(backend):
    with pytest.raises(ValueError, match="box_convert: rotated formats convert only among themselves"):
        pl.box_convert(backend.asarray(np.zeros((2, 5))), in_fmt="cxcywhr", out_fmt="xyxy")
    with pytest.raises(ValueError, match=r"box_convert: boxes must have shape \(\.\.\., 5\)"):
        pl.box_convert(backend.asarray(np.zeros((2, 4))), in_fmt="xywhr", out_fmt="cxcywhr")


@pytest.mark.parametrize("fmt", ["cxcywhr", "xywhr"])
def test_box_to_gaussian_matches_rotated_covariance(backend, rng, fmt):
    boxes = random_rboxes(rng, 6).reshape(2, 3, 5)
    given = boxes.copy()
    if fmt == "xywhr":
        given[..., :2] = [[corners_ref(b)[0] for b in row] for row in boxes]
    mean, cov = pl.box_to_gaussian(backend.asarray(given), fmt=fmt)
    want = [gaussian_ref(b) for b in boxes.reshape(-1, 5)]
    assert_close(mean, np.array([m for m, _ in want]).reshape(2, 3, 2), rtol=1e-12)
    assert_close(cov, np.array([s for _, s in want]).reshape(2, 3, 2, 2), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- #
# Losses against the references
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fun", ["log1p", "sqrt", "none"])
@pytest.mark.parametrize("tau", [1.0, 2.0, 0.0])
@pytest.mark.parametrize("name", ["gwd_loss", "kld_loss"])
def test_gaussian_losses_match_reference(backend, rng, name, fun, tau):
    p, t = near_pairs(rng, 9)
    got = getattr(pl, name)(backend.asarray(p), backend.asarray(t), fun=fun, tau=tau, reduction="none")
    # sqrtm (Schur) and inv are accurate to ~1e-12 relative on these well-conditioned 2x2 matrices
    assert_close(got, pairwise_ref(REFS[name], p, t, fun=fun, tau=tau), rtol=1e-8, atol=1e-10)


def test_probiou_matches_reference(backend, rng):
    p, t = near_pairs(rng, 11)
    got = pl.probiou_loss(backend.asarray(p), backend.asarray(t), eps=0.0, reduction="none")
    assert_close(got, pairwise_ref(probiou_ref, p, t), rtol=1e-9, atol=1e-12)
    # ultralytics' eps = 1e-7 moves the value by about sqrt(eps) / 2 at most, on boxes of a few pixels
    default = to_numpy(pl.probiou_loss(backend.asarray(p), backend.asarray(t), reduction="none"))
    np.testing.assert_allclose(default, pairwise_ref(probiou_ref, p, t), atol=1e-3)


@pytest.mark.parametrize("fun", ["none", "ln", "exp"])
def test_kfiou_matches_reference(backend, rng, fun):
    p, t = near_pairs(rng, 10)
    got = pl.kfiou_loss(backend.asarray(p), backend.asarray(t), fun=fun, reduction="none")
    assert_close(got, pairwise_ref(kfiou_ref, p, t, fun=fun), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_reductions_weight_and_avg_factor(backend, rng, name, reduction):
    f = getattr(pl, name)
    p, t = near_pairs(rng, 12)
    p, t = p.reshape(3, 4, 5), t.reshape(3, 4, 5)
    w = rng.random((3, 1))
    ps, ts = backend.asarray(p), backend.asarray(t)
    per_box = to_numpy(f(ps, ts, reduction="none"))
    assert per_box.shape == (3, 4)
    want = {"none": per_box * w, "sum": (per_box * w).sum(), "mean": (per_box * w).mean()}[reduction]
    assert_close(f(ps, ts, weight=backend.asarray(w), reduction=reduction), want, rtol=1e-12)
    assert_close(f(ps, ts, avg_factor=5.0), per_box.sum() / 5.0, rtol=1e-12)


def test_gwd_of_axis_aligned_boxes_has_a_closed_form(backend, rng):
    """theta = 0: W^2 = |dc|^2 + ((w_p - w_t)^2 + (h_p - h_t)^2) / 4, normalised by 2 (w_p h_p w_t h_t / 16)^(1/4)."""
    p, t = near_pairs(rng, 8)
    p[:, 4], t[:, 4] = 0.0, 0.0
    w2 = ((p[:, :2] - t[:, :2]) ** 2).sum(-1) + ((p[:, 2] - t[:, 2]) ** 2 + (p[:, 3] - t[:, 3]) ** 2) / 4
    d = np.sqrt(w2) / (2 * (p[:, 2] * p[:, 3] * t[:, 2] * t[:, 3] / 16) ** 0.25)
    got = pl.gwd_loss(backend.asarray(p), backend.asarray(t), fun="none", tau=0.0, reduction="none")
    assert_close(got, d, rtol=1e-10)


def test_kfiou_of_identical_boxes_is_one_third(backend, rng):
    boxes = backend.asarray(random_rboxes(rng, 5))
    assert_close(pl.kfiou_loss(boxes, boxes, reduction="none"), np.full(5, 1 - 1 / 3), rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_perfect_prediction_is_the_minimum(backend, rng, name):
    p, t = near_pairs(rng, 6)
    f = getattr(pl, name)
    ts = backend.asarray(t)
    at_target = to_numpy(f(ts, ts, reduction="none"))
    assert np.all(at_target <= to_numpy(f(backend.asarray(p), ts, reduction="none")) + 1e-12)
    if name != "kfiou_loss":
        np.testing.assert_allclose(at_target, 0.0, atol=1e-3)


# --------------------------------------------------------------------------- #
# The angle's period, squares and degenerate boxes
# --------------------------------------------------------------------------- #


def _turned(boxes, angle, *, swap=False):
    out = boxes.copy()
    out[..., 4] += angle
    if swap:
        out[..., [2, 3]] = out[..., [3, 2]]
    return out


@pytest.mark.parametrize("name", [*LOSSES, "rotated_box_iou"])
def test_invariant_to_the_angle_period(backend, rng, name):
    """The same box: any rectangle turned by pi; w and h swapped and turned by pi/2; a square turned by pi/2."""
    p, t = near_pairs(rng, 6)
    sq = t.copy()
    sq[:, 3] = sq[:, 2]
    f = getattr(pl, name)

    def call(a, b):
        if name == "rotated_box_iou":
            return to_numpy(f(backend.asarray(a), backend.asarray(b)))
        return to_numpy(f(backend.asarray(a), backend.asarray(b), reduction="none"))

    base, base_sq = call(p, t), call(p, sq)
    for a, b in [(_turned(p, math.pi), t), (p, _turned(t, -math.pi)), (_turned(p, math.pi / 2, swap=True), t),
                 (p, _turned(t, 3 * math.pi / 2, swap=True))]:
        np.testing.assert_allclose(call(a, b), base, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(call(p, _turned(sq, math.pi / 2)), base_sq, rtol=1e-9, atol=1e-12)


def _degenerate_pairs():
    """Zero width, zero height, zero size, squares (pred and target), aligned and turned."""
    t = np.array([[5.0, 5.0, 4.0, 2.0, 0.3], [5.0, 5.0, 3.0, 3.0, 0.0], [5.0, 5.0, 3.0, 3.0, 0.7],
                  [5.0, 5.0, 0.0, 2.0, 0.2], [5.0, 5.0, 0.0, 0.0, 0.0], [5.0, 5.0, 3.0, 0.0, 1.0],
                  [5.0, 5.0, 2.0, 2.0, math.pi / 4], [5.0, 5.0, 0.0, 0.0, 0.0]])
    p = np.array([[5.5, 4.0, 0.0, 0.0, 0.0], [5.0, 5.0, 3.0, 3.0, 0.0], [5.2, 5.1, 3.0, 3.0, 0.7 + math.pi / 2],
                  [5.0, 5.0, 0.0, 2.0, 0.2], [6.0, 5.0, 1.0, 1.0, 0.5], [5.0, 5.0, 3.0, 0.0, 1.0],
                  [5.0, 5.0, 2.0, 2.0, 0.0], [5.0, 5.0, 0.0, 0.0, 0.0]])
    return p, t


@pytest.mark.parametrize("name", [*LOSSES, "rotated_box_iou"])
def test_finite_on_degenerate_and_square_boxes(backend, name):
    p, t = _degenerate_pairs()
    f = getattr(pl, name)
    ts = backend.asarray(t)

    def total(x):
        if name == "rotated_box_iou":
            return backend.xp.sum(f(x, ts))
        return f(x, ts, reduction="sum")

    assert_finite(total(backend.asarray(p)))
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(total, backend.asarray(p))
        assert_finite(grad)
        # and with respect to the target
        if name == "rotated_box_iou":
            _, grad_t = backend.value_and_grad(lambda y: f(backend.asarray(p), y).sum(), ts)
        else:
            _, grad_t = backend.value_and_grad(lambda y: f(backend.asarray(p), y, reduction="sum"), ts)
        assert_finite(grad_t)


@pytest.mark.parametrize("name", LOSSES)
def test_float32_stays_finite_on_degenerate_boxes(backend, name):
    p, t = _degenerate_pairs()
    f = getattr(pl, name)
    ts = backend.asarray(t.astype(np.float32))
    got = f(backend.asarray(p.astype(np.float32)), ts, reduction="none")
    assert got.dtype == backend.float_dtype("float32")
    assert_finite(got)
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda x: f(x, ts), backend.asarray(p.astype(np.float32)))
        assert_finite(grad)


# --------------------------------------------------------------------------- #
# Gradients and empty inputs
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("box_format", ["cxcywhr", "xywhr"])
def test_gradients_match_finite_differences(backend, rng, name, box_format):
    p, t = near_pairs(rng, 4)
    f = getattr(pl, name)
    ts = backend.asarray(t)
    backend.check_grad(lambda x: f(x, ts, box_format=box_format, reduction="sum"), p, rtol=1e-5)


def test_rotated_iou_gradient_matches_finite_differences(backend, rng):
    p, t = near_pairs(rng, 3)
    ts = backend.asarray(t)
    backend.check_grad(lambda x: pl.rotated_box_iou(x, ts).sum(), p, rtol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_empty_input(backend, name):
    f = getattr(pl, name)
    e = backend.asarray(np.zeros((0, 5)))
    assert_close(f(e, e), np.array(0.0))
    assert tuple(f(e, e, reduction="none").shape) == (0,)
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda x: f(x, e), e)
        assert value == 0.0 and grad.shape == (0, 5)


def test_rotated_iou_of_empty_sets(backend):
    a = backend.asarray(np.zeros((0, 5)))
    b = backend.asarray(np.ones((3, 5)))
    assert tuple(pl.rotated_box_iou(a, b).shape) == (0, 3)
    assert tuple(pl.rotated_box_iou(b, a).shape) == (3, 0)


# --------------------------------------------------------------------------- #
# Exact rotated IoU
# --------------------------------------------------------------------------- #


def test_rotated_iou_matches_polygon_clipping(backend, rng):
    a = random_rboxes(rng, 9, scale=10.0)
    b = random_rboxes(rng, 7, scale=10.0)
    b[:3] = a[:3] + rng.normal(scale=0.5, size=(3, 5))  # some close overlaps
    b[5] = a[5]  # identical boxes: every vertex on an edge
    b[6, :2] += 100.0  # far from every box of a
    got = pl.rotated_box_iou(backend.asarray(a), backend.asarray(b))
    want = np.array([[rotated_iou_ref(x, y) for y in b] for x in a])
    assert want[5, 5] == pytest.approx(1.0) and (want > 0).sum() > 5 and np.all(want[:, 6] == 0)
    assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_rotated_iou_batched_and_xywhr(backend, rng):
    a = random_rboxes(rng, 8, scale=8.0).reshape(2, 4, 5)
    b = random_rboxes(rng, 6, scale=8.0).reshape(2, 3, 5)
    want = np.stack([[[rotated_iou_ref(x, y) for y in b[k]] for x in a[k]] for k in range(2)])
    assert_close(pl.rotated_box_iou(backend.asarray(a), backend.asarray(b)), want, rtol=1e-9, atol=1e-12)
    to_corner = lambda boxes: to_numpy(pl.box_convert(backend.asarray(boxes), in_fmt="cxcywhr", out_fmt="xywhr"))  # noqa: E731
    got = pl.rotated_box_iou(backend.asarray(to_corner(a)), backend.asarray(to_corner(b)), box_format="xywhr")
    assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_rotated_iou_of_axis_aligned_boxes_equals_box_iou(backend, rng):
    a, b = random_rboxes(rng, 6), random_rboxes(rng, 5)
    a[:, 4] = 0.0
    b[:, 4] = rng.choice([0.0, math.pi, -math.pi], size=5)
    xyxy = lambda r: np.concatenate([r[:, :2] - r[:, 2:4] / 2, r[:, :2] + r[:, 2:4] / 2], axis=-1)  # noqa: E731
    want = to_numpy(pl.box_iou(backend.asarray(xyxy(a)), backend.asarray(xyxy(b))))
    assert_close(pl.rotated_box_iou(backend.asarray(a), backend.asarray(b)), want, rtol=1e-9, atol=1e-12)


def test_rotated_iou_is_invariant_to_turning_both_boxes(backend, rng):
    """Turning the plane by phi about the origin moves every centre and adds phi to every angle."""
    a, b = random_rboxes(rng, 5, scale=6.0), random_rboxes(rng, 4, scale=6.0)
    phi = rng.uniform(0, 2 * math.pi)

    def turn(r):
        out = r.copy()
        out[:, :2] = r[:, :2] @ rotation(phi).T
        out[:, 4] += phi
        return out

    want = to_numpy(pl.rotated_box_iou(backend.asarray(a), backend.asarray(b)))
    assert_close(pl.rotated_box_iou(backend.asarray(turn(a)), backend.asarray(turn(b))), want, rtol=1e-9, atol=1e-12)


def test_rotated_iou_of_zero_area_boxes_is_zero(backend):
    z = backend.asarray(np.array([[1.0, 1.0, 0.0, 0.0, 0.3], [0.0, 0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 2.0, 0.0]]))
    assert_close(pl.rotated_box_iou(z, z), np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), atol=1e-12)


# --------------------------------------------------------------------------- #
# Errors name the function and the argument
# --------------------------------------------------------------------------- #


def test_errors(backend):
    b5, b4 = backend.asarray(np.ones((3, 5))), backend.asarray(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"gwd_loss: y_pred must have shape \(\.\.\., 5\)"):
        pl.gwd_loss(b4, b4)
    with pytest.raises(ValueError, match="kld_loss: y_true must have the shape of y_pred"):
        pl.kld_loss(b5, backend.asarray(np.ones((2, 5))))
    with pytest.raises(ValueError, match="gwd_loss: fun must be one of"):
        pl.gwd_loss(b5, b5, fun="log")
    with pytest.raises(ValueError, match="kld_loss: tau must be >= 0"):
        pl.kld_loss(b5, b5, tau=-1.0)
    with pytest.raises(ValueError, match="probiou_loss: box_format must be one of"):
        pl.probiou_loss(b5, b5, box_format="xyxy")
    with pytest.raises(ValueError, match="kfiou_loss: fun must be one of"):
        pl.kfiou_loss(b5, b5, fun="log1p")
    with pytest.raises(ValueError, match="kfiou_loss: beta must be > 0"):
        pl.kfiou_loss(b5, b5, beta=0.0)
    with pytest.raises(ValueError, match="probiou_loss: reduction must be one of"):
        pl.probiou_loss(b5, b5, reduction=None)
    with pytest.raises(ValueError, match="gwd_loss: avg_factor applies to reduction='mean' only"):
        pl.gwd_loss(b5, b5, reduction="none", avg_factor=1.0)
    with pytest.raises(ValueError, match=r"kld_loss: weight must broadcast to the loss shape \(3,\)"):
        pl.kld_loss(b5, b5, weight=backend.asarray(np.ones(5)))
    with pytest.raises(TypeError, match="gwd_loss: y_pred must have a real floating dtype"):
        pl.gwd_loss(backend.asarray(np.ones((3, 5), dtype=np.int64)), b5)
    with pytest.raises(ValueError, match="box_to_gaussian: fmt must be one of"):
        pl.box_to_gaussian(b5, fmt="cxcywh")
    with pytest.raises(ValueError, match=r"rotated_box_iou: boxes1 and boxes2 must have shape \(\.\.\., N, 5\)"):
        pl.rotated_box_iou(backend.asarray(np.ones(5)), b5)
    with pytest.raises(ValueError, match=r"rotated_box_iou: boxes2 must have shape \(\.\.\., 5\)"):
        pl.rotated_box_iou(b5, b4)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_rotated_iou_of_non_finite_boxes_is_nan(backend, rng, bad):
    """NaN in, NaN out, as box_iou: a NaN or infinite coordinate gave IoU 0 (issue 18, defect 8)."""
    a, b = random_rboxes(rng, 3), random_rboxes(rng, 4)
    a[1, 2] = bad
    b[3, 0] = bad
    got = to_numpy(pl.rotated_box_iou(backend.asarray(a), backend.asarray(b)))
    nan = np.zeros((3, 4), dtype=bool)
    nan[1, :] = nan[:, 3] = True
    assert np.isnan(got[nan]).all()
    want = np.array([[rotated_iou_ref(x, y) if np.isfinite(x).all() and np.isfinite(y).all() else 0.0 for y in b]
                     for x in a])
    assert_close(got[~nan], want[~nan], rtol=1e-9, atol=1e-12)


def _optimal_pairs(rng, n):
    """Boxes and their targets: the same box, and the same Gaussian written with w, h swapped and turned 90 deg."""
    p = np.concatenate([rng.random((n, 2)) * 100, rng.uniform(0.5, 100.0, (n, 2)), rng.uniform(-3, 3, (n, 1))], -1)
    swapped = p[:, [0, 1, 3, 2, 4]] + np.array([0, 0, 0, 0, math.pi / 2])
    return p.astype(np.float32), swapped.astype(np.float32)


@pytest.mark.parametrize("name", ["gwd_loss", "kld_loss"])
def test_float32_at_the_optimum_is_zero_to_rounding(backend, rng, name):
    """Boxes equal to their targets scored up to 1.6e-3 (GWD) and 8.4e-4 (KLD) in float32, from cancellation in
    the trace and log-det terms under the square root (issue 18, defect 10)."""
    p, swapped = _optimal_pairs(rng, 400)
    f = getattr(pl, name)
    pb = backend.asarray(p)
    assert float(np.max(to_numpy(f(pb, pb, reduction="none")))) < 1e-6
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda x: f(x, pb, reduction="sum"), pb)
        worst = np.unravel_index(np.argmax(np.abs(grad)), grad.shape)
        assert float(np.max(np.abs(grad))) < 1e-5, (worst, p[worst[0]], grad[worst[0]])
    # the swapped form: the float32 angle is pi/2 off by a rounding (a distance of about 1e-7 x the aspect ratio):
    # float64 on the same inputs scores it alike
    got = to_numpy(f(pb, backend.asarray(swapped), reduction="none"))
    want = to_numpy(f(backend.asarray(p.astype(np.float64)), backend.asarray(swapped.astype(np.float64)),
                      reduction="none"))
    assert float(np.max(np.abs(got - want))) < 5e-6


@pytest.mark.parametrize("name", ["gwd_loss", "kld_loss"])
def test_float32_equals_the_float64_reference(backend, rng, name):
    p, t = near_pairs(rng, 60)
    p32, t32 = p.astype(np.float32), t.astype(np.float32)
    got = getattr(pl, name)(backend.asarray(p32), backend.asarray(t32), reduction="none")
    want = pairwise_ref(REFS[name], p32.astype(np.float64), t32.astype(np.float64))
    assert_close(got, want, rtol=2e-5, atol=1e-6)
