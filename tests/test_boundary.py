"""Boundary losses against float64 NumPy/scipy.ndimage formulations of the papers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, random_binary, random_labels, random_logits, to_numpy

import polyloss as pl

ndimage = pytest.importorskip("scipy.ndimage")

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# --------------------------------------------------------------------------- #
# float64 references
# --------------------------------------------------------------------------- #


def np_softmax(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def probabilities_and_targets(x, y, mode, include_background=True):
    """(N, C', *spatial) probabilities and float targets, as the docstrings define them."""
    if mode == "multiclass":
        p = np_softmax(x)
        t = np.moveaxis(np.eye(x.shape[1])[y], -1, 1) if np.issubdtype(y.dtype, np.integer) else y
    else:
        p, t = np_sigmoid(x), y.astype(np.float64)
    if not include_background and p.shape[1] > 1:
        p, t = p[:, 1:], t[:, 1:]
    return p, t


def unsigned_field(mask):
    """MONAI's distance_field for one image: EDT(fg) + EDT(bg), zero if all 0 or all 1."""
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndimage.distance_transform_edt(mask) + ndimage.distance_transform_edt(~mask)


def hausdorff_reference(x, y, mode, alpha, include_background, per_image, reduction):
    p, t = probabilities_and_targets(x, y, mode, include_background)
    values = np.zeros(p.shape[:2])
    for n in range(p.shape[0]):
        for c in range(p.shape[1]):
            d = unsigned_field(p[n, c] > 0.5) ** alpha + unsigned_field(t[n, c] > 0.5) ** alpha
            values[n, c] = ((p[n, c] - t[n, c]) ** 2 * d).mean()
    if not per_image:
        values = values.mean(axis=0)
    return reduce_np(values, reduction)


def reduce_np(v, reduction):
    return {"mean": v.mean, "sum": v.sum, "none": lambda: v}[reduction]()


def radius(spatial, ratio):
    return max(1, round(ratio * math.sqrt(sum(n * n for n in spatial))))


def boundary_reference(mask, ratio):
    """boundary-iou-api's mask_to_boundary with scipy: pad one zero pixel, erode r times with a 3x3 square."""
    nd = mask.ndim
    padded = np.pad(mask.astype(bool), 1)
    eroded = ndimage.binary_erosion(padded, structure=np.ones((3,) * nd), iterations=radius(mask.shape, ratio))
    return mask.astype(bool) & ~eroded[(slice(1, -1),) * nd]


def boundary_iou_reference(pred, true, ratio, nd):
    spatial = pred.shape[pred.ndim - nd :]
    out = []
    for a, b in zip(pred.reshape(-1, *spatial), true.reshape(-1, *spatial), strict=True):
        ba, bb = boundary_reference(a, ratio), boundary_reference(b, ratio)
        union = (ba | bb).sum()
        out.append((ba & bb).sum() / union if union else 1.0)
    return np.array(out).reshape(pred.shape[: pred.ndim - nd])


def soft_boundary(m, ratio):
    """m minus a (2r+1)-box moving minimum with zeros outside, per (n, c) image."""
    r = radius(m.shape[2:], ratio)
    size = (1, 1) + (2 * r + 1,) * (m.ndim - 2)
    return m - ndimage.minimum_filter(m, size=size, mode="constant", cval=0.0)


def boundary_iou_loss_reference(x, y, mode, ratio, include_background, reduction):
    p, t = probabilities_and_targets(x, y, mode, include_background)
    bp, bt = soft_boundary(p, ratio), soft_boundary(t, ratio)
    axes = tuple(range(2, p.ndim))
    inter = (bp * bt).sum(axis=axes)
    union = (bp + bt - bp * bt).sum(axis=axes)
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
    return reduce_np(1 - iou, reduction)


def soft_skeleton_reference(x, iterations):
    """Shit et al.'s soft skeleton with scipy filters: erosion = min over the 3-cross, dilation = max over 3-box."""
    nd = x.ndim - 2
    cross = ndimage.generate_binary_structure(nd, 1)[None, None]
    box = (1, 1) + (3,) * nd

    def erode(v):
        return ndimage.minimum_filter(v, footprint=cross, mode="constant", cval=np.inf)

    def opening(v):
        return ndimage.maximum_filter(erode(v), size=box, mode="constant", cval=-np.inf)

    skel = np.maximum(x - opening(x), 0)
    for _ in range(iterations):
        x = erode(x)
        delta = np.maximum(x - opening(x), 0)
        skel = skel + np.maximum(delta - skel * delta, 0)
    return skel


def cldice_reference(x, y, mode, iterations, smooth, harmonic, include_background, per_image, reduction):
    p, t = probabilities_and_targets(x, y, mode, include_background)
    sp, st = soft_skeleton_reference(p, iterations), soft_skeleton_reference(t, iterations)
    axes = tuple(range(1, p.ndim)) if per_image else None
    tprec = ((sp * t).sum(axis=axes) + smooth) / (sp.sum(axis=axes) + smooth)
    tsens = ((st * p).sum(axis=axes) + smooth) / (st.sum(axis=axes) + smooth)
    return reduce_np(np.asarray(1 - 2 * tprec * tsens / (tprec + tsens + harmonic)), reduction)


def blobs(rng, shape, nd, share=0.5):
    """Smooth random blobs (a thresholded blurred noise field) over the trailing ``nd`` axes."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(0,) * (len(shape) - nd) + (1.5,) * nd)
    return field > np.quantile(field, 1 - share)


def segmentation(rng, mode, shape):
    """Logits and targets of ``shape`` (N, C, *spatial) for a mode: integer labels for multiclass."""
    x = random_logits(rng, shape)
    if mode == "multiclass":
        return x, random_labels(rng, (shape[0], *shape[2:]), shape[1])
    return x, random_binary(rng, shape, share=0.5)


def as_backend(backend, x, y):
    return backend.asarray(x), backend.asarray(y)


SHAPES = {"2d": (2, 3, 9, 11), "3d": (2, 3, 5, 6, 7)}
BINARY_SHAPES = {"2d": (2, 1, 9, 11), "3d": (2, 1, 5, 6, 7)}


def shape_for(mode, dim):
    return BINARY_SHAPES[dim] if mode == "binary" else SHAPES[dim]


# --------------------------------------------------------------------------- #
# boundary_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("mode", "include_background"), [("multiclass", False), ("multiclass", True),
                                                          ("binary", False), ("multilabel", True)])
def test_boundary_loss_matches_kervadec(backend, rng, mode, include_background):
    x, y = segmentation(rng, mode, shape_for(mode, "2d"))
    p, t = probabilities_and_targets(x, y, mode)
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), dtype=backend.xp.float64))
    got = pl.boundary_loss(backend.asarray(x), backend.asarray(phi), mode=mode, include_background=include_background,
                           reduction="none")
    prod = p * phi
    if not include_background and p.shape[1] > 1:
        prod = prod[:, 1:]
    assert_close(got, prod, rtol=1e-9)


def test_boundary_loss_channels_last_and_probabilities(backend, rng):
    x, y = segmentation(rng, "multiclass", (2, 3, 7, 8))
    p, t = probabilities_and_targets(x, y, "multiclass")
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), dtype=backend.xp.float64))
    want = (p * phi)[:, 1:]
    got = pl.boundary_loss(backend.asarray(np.moveaxis(p, 1, -1)), backend.asarray(np.moveaxis(phi, 1, -1)),
                           class_axis=-1, from_logits=False, reduction="none")
    assert_close(got, np.moveaxis(want, 1, -1), rtol=1e-9)


# --------------------------------------------------------------------------- #
# hausdorff_dt_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("mode", "dim", "include_background", "per_image", "alpha"), [
    ("multiclass", "2d", False, False, 2.0),
    ("multiclass", "3d", True, True, 1.0),
    ("multilabel", "2d", True, True, 2.0),
    ("binary", "3d", False, False, 1.5),
])
def test_hausdorff_dt_loss_matches_reference(backend, rng, mode, dim, include_background, per_image, alpha):
    x, y = segmentation(rng, mode, shape_for(mode, dim))
    if mode != "multiclass":
        y[0, 0] = 0.0  # an empty target: zero field
    got = pl.hausdorff_dt_loss(*as_backend(backend, x, y), mode=mode, alpha=alpha,
                               include_background=include_background, per_image=per_image, reduction="none")
    want = hausdorff_reference(x, y, mode, alpha, include_background, per_image, "none")
    assert_close(got, want, rtol=1e-9)


def test_hausdorff_dt_loss_soft_targets_and_channels_last(backend, rng):
    x = random_logits(rng, (2, 8, 9, 3))
    t = np_softmax(random_logits(rng, x.shape), axis=-1)
    got = pl.hausdorff_dt_loss(*as_backend(backend, x, t), class_axis=-1, include_background=True)
    want = hausdorff_reference(np.moveaxis(x, -1, 1), np.moveaxis(t, -1, 1), "multiclass", 2.0, True, False, "mean")
    assert_close(got, want, rtol=1e-9)


# --------------------------------------------------------------------------- #
# boundary_iou (metric) and boundary_iou_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("shape", "nd", "ratio"), [((3, 19, 23), 2, 0.02), ((2, 2, 31, 26), 2, 0.1),
                                                    ((2, 9, 8, 7), 3, 0.15), ((2, 13, 12), 2, 0.0)])
def test_boundary_iou_matches_mask_to_boundary(backend, rng, shape, nd, ratio):
    pred = blobs(rng, shape, nd).astype(np.int32)
    true = np.where(rng.random(shape) < 0.1, 1 - pred, pred)
    flat_p, flat_t = pred.reshape(-1, *shape[-nd:]), true.reshape(-1, *shape[-nd:])
    flat_p[0], flat_t[0] = 0, 0  # both empty: 1
    flat_t[1] = 0  # one empty
    got = pl.boundary_iou(backend.asarray(pred), backend.asarray(true), dilation_ratio=ratio, spatial_ndim=nd)
    assert_close(got, boundary_iou_reference(pred, true, ratio, nd), rtol=1e-6)
    assert to_numpy(got).reshape(-1)[0] == 1.0


def test_boundary_iou_bool_and_float_masks(backend, rng):
    pred, true = rng.random((2, 10, 12)) < 0.5, rng.random((2, 10, 12)) < 0.5
    want = boundary_iou_reference(pred, true, 0.05, 2)
    assert_close(pl.boundary_iou(backend.asarray(pred), backend.asarray(true), dilation_ratio=0.05), want, rtol=1e-6)
    got = pl.boundary_iou(backend.asarray(pred.astype(np.float32)), backend.asarray(true.astype(np.float64)),
                          dilation_ratio=0.05)
    assert_close(got, want, rtol=1e-6)


@pytest.mark.parametrize(("mode", "dim", "ratio", "include_background"), [
    ("multiclass", "2d", 0.02, True), ("multiclass", "3d", 0.1, False), ("binary", "2d", 0.2, True),
    ("multilabel", "3d", 0.02, True),
])
def test_boundary_iou_loss_matches_reference(backend, rng, mode, dim, ratio, include_background):
    x, y = segmentation(rng, mode, shape_for(mode, dim))
    got = pl.boundary_iou_loss(*as_backend(backend, x, y), mode=mode, dilation_ratio=ratio,
                               include_background=include_background, reduction="none")
    want = boundary_iou_loss_reference(x, y, mode, ratio, include_background, "none")
    assert_close(got, want, rtol=1e-9)


def test_boundary_iou_loss_approaches_one_minus_metric(backend, rng):
    true = blobs(rng, (3, 1, 21, 17), 2).astype(np.float64)
    pred = np.where(rng.random(true.shape) < 0.1, 1 - true, true)
    pred[2] = true[2] = 0.0  # both empty: metric 1, loss 0 when hard
    metric = boundary_iou_reference(pred[:, 0], true[:, 0], 0.05, 2)
    assert metric[:2].min() > 0 and metric[:2].max() < 1 and metric[2] == 1
    gaps = []
    for eps in (0.1, 0.01, 1e-4, 1e-8, 0.0):
        p = pred * (1 - 2 * eps) + eps  # probabilities hardening towards the mask
        got = pl.boundary_iou_loss(*as_backend(backend, p, true), mode="binary", from_logits=False,
                                   dilation_ratio=0.05, reduction="none")
        gaps.append(np.abs(to_numpy(got)[:2, 0] - (1 - metric[:2])).max())
        if eps == 0.0:
            assert_close(got, 1 - metric[:, None], rtol=1e-12)
    assert gaps[-2] < 1e-6
    assert all(a >= b for a, b in itertools.pairwise(gaps))


# --------------------------------------------------------------------------- #
# soft_cldice_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("mode", "dim", "iterations", "include_background", "per_image", "harmonic"), [
    ("multiclass", "2d", 3, True, False, 1e-4),
    ("multiclass", "3d", 2, False, True, 0.0),
    ("binary", "2d", 5, True, True, 1e-4),
    ("multilabel", "3d", 0, True, False, 1e-4),
])
def test_soft_cldice_loss_matches_reference(backend, rng, mode, dim, iterations, include_background, per_image,
                                            harmonic):
    x, y = segmentation(rng, mode, shape_for(mode, dim))
    got = pl.soft_cldice_loss(*as_backend(backend, x, y), mode=mode, iterations=iterations, smooth=0.5,
                              harmonic_smooth=harmonic, include_background=include_background, per_image=per_image,
                              reduction="none")
    want = cldice_reference(x, y, mode, iterations, 0.5, harmonic, include_background, per_image, "none")
    assert_close(got, want, rtol=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reductions(backend, rng, reduction):
    x, y = segmentation(rng, "multiclass", (2, 3, 7, 6))
    xb, yb = as_backend(backend, x, y)
    p, t = probabilities_and_targets(x, y, "multiclass")
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), dtype=backend.xp.float64))
    assert_close(pl.boundary_loss(xb, backend.asarray(phi), reduction=reduction),
                 reduce_np((p * phi)[:, 1:], reduction), rtol=1e-9)
    assert_close(pl.hausdorff_dt_loss(xb, yb, per_image=True, reduction=reduction),
                 hausdorff_reference(x, y, "multiclass", 2.0, False, True, reduction), rtol=1e-9)
    assert_close(pl.boundary_iou_loss(xb, yb, reduction=reduction),
                 boundary_iou_loss_reference(x, y, "multiclass", 0.02, True, reduction), rtol=1e-9)
    assert_close(pl.soft_cldice_loss(xb, yb, per_image=True, reduction=reduction),
                 cldice_reference(x, y, "multiclass", 3, 1.0, 1e-4, True, True, reduction), rtol=1e-9)


# --------------------------------------------------------------------------- #
# Gradients, finiteness, half precision
# --------------------------------------------------------------------------- #

LOSSES = ["boundary_loss", "hausdorff_dt_loss", "boundary_iou_loss", "soft_cldice_loss"]


def _call(name, x, y, backend, **options):
    """Each loss on logits ``x`` and integer labels ``y`` (boundary_loss: on their signed distance map)."""
    if name == "boundary_loss":
        phi = pl.signed_distance_map(backend.asarray(np.moveaxis(np.eye(x.shape[1])[y], -1, 1)),
                                     dtype=backend.xp.float64)
        return lambda z: pl.boundary_loss(z, phi, **options)
    fn = getattr(pl, name)
    yb = backend.asarray(y)
    return lambda z: fn(z, yb, **options)


@pytest.mark.parametrize("name", LOSSES)
def test_gradients_match_finite_differences(backend, rng, name):
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    options = {"dilation_ratio": 0.1} if name == "boundary_iou_loss" else {}
    backend.check_grad(_call(name, x, y, backend, **options), x)


def test_hausdorff_gradient_skips_the_distance_fields(backend, rng):
    """d(L)/dp = 2 (p - t) w / P: the detached field of p > 0.5 adds nothing."""
    x, y = segmentation(rng, "binary", (2, 1, 7, 8))
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    yb = backend.asarray(y)
    _, grad = backend.value_and_grad(lambda z: pl.hausdorff_dt_loss(z, yb, mode="binary", from_logits=False),
                                     backend.asarray(np_sigmoid(x)))
    p = np_sigmoid(x)
    w = np.stack([[unsigned_field(p[n, 0] > 0.5) ** 2 + unsigned_field(y[n, 0] > 0.5) ** 2] for n in range(2)])
    assert_close(grad, 2 * (p - y) * w / p.size, rtol=1e-9)


@pytest.mark.parametrize("name", LOSSES)
def test_saturated_logits_and_empty_masks_are_finite(backend, rng, name):
    x = np.where(rng.random((2, 3, 6, 5)) < 0.5, 1e4, -1e4)
    for y in (rng.integers(0, 3, size=(2, 6, 5)), np.zeros((2, 6, 5), dtype=np.int64)):
        loss = _call(name, x, y, backend)
        assert_finite(loss(backend.asarray(x)))
        if backend.has_autodiff:
            assert_finite(*backend.value_and_grad(loss, backend.asarray(x)))


@pytest.mark.parametrize("name", LOSSES)
def test_exact_zero_one_probabilities_are_finite(backend, rng, name):
    y = rng.integers(0, 3, size=(2, 6, 5))
    p = np.moveaxis(np.eye(3)[rng.integers(0, 3, size=y.shape)], -1, 1)
    loss = _call(name, p, y, backend, from_logits=False)
    assert_finite(loss(backend.asarray(p)))
    if backend.has_autodiff:
        assert_finite(*backend.value_and_grad(loss, backend.asarray(p)))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", LOSSES)
def test_half_precision_returns_input_dtype(backend, rng, half, name):
    if not hasattr(backend.xp, half):
        pytest.skip(f"{backend.name} has no {half}")
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    x_half = backend.asarray(x, dtype=backend.float_dtype(half))
    loss = _call(name, x, y, backend)
    got = loss(x_half)
    assert got.dtype == backend.float_dtype(half)
    want = loss(backend.asarray(to_numpy(x_half).astype(np.float64)))
    assert_close(got, to_numpy(want), rtol=2e-2, atol=2e-2)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #


def test_bad_input(backend, rng):
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    xb, yb = as_backend(backend, x, y)
    for name in ("hausdorff_dt_loss", "boundary_iou_loss", "soft_cldice_loss"):
        fn = getattr(pl, name)
        with pytest.raises(ValueError, match=f"{name}: mode must be one of"):
            fn(xb, yb, mode="softmax")
        with pytest.raises(ValueError, match=f"{name}: reduction must be one of"):
            fn(xb, yb, reduction=None)
        with pytest.raises(ValueError, match=rf"{name}: y_pred must have shape \(N, C, \*spatial\)"):
            fn(backend.asarray(x[:, :, 0]), backend.asarray(y[:, 0]))
        with pytest.raises(ValueError, match=f"{name}: mode='binary' needs one channel"):
            fn(xb, backend.asarray(random_binary(rng, x.shape)), mode="binary")
        with pytest.raises(ValueError, match=f"{name}: integer y_true must have the shape of y_pred without"):
            fn(xb, backend.asarray(y[:, :-1]))
        with pytest.raises(ValueError, match=f"{name}: mode='multiclass' \\(softmax\\) needs C >= 2"):
            fn(backend.asarray(x[:, :1]), yb)
        with pytest.raises(TypeError, match=f"{name}: y_pred must have a real floating dtype"):
            fn(backend.asarray(y[:, None]), yb)
        with pytest.raises(ValueError, match=f"{name}: class_axis must be 1"):
            fn(xb, yb, class_axis=2)
    with pytest.raises(ValueError, match="hausdorff_dt_loss: alpha must be >= 0"):
        pl.hausdorff_dt_loss(xb, yb, alpha=-1.0)
    with pytest.raises(ValueError, match="boundary_iou_loss: dilation_ratio must be >= 0"):
        pl.boundary_iou_loss(xb, yb, dilation_ratio=-0.1)
    with pytest.raises(ValueError, match="soft_cldice_loss: iterations must be a non-negative int"):
        pl.soft_cldice_loss(xb, yb, iterations=-1)
    with pytest.raises(ValueError, match="soft_cldice_loss: smooth must be > 0"):
        pl.soft_cldice_loss(xb, yb, smooth=0.0)
    with pytest.raises(ValueError, match=r"boundary_loss: distance_map must have the shape of y_pred"):
        pl.boundary_loss(xb, backend.asarray(x[:, :2]))
    with pytest.raises(TypeError, match=r"boundary_loss: distance_map must have a real floating dtype"):
        pl.boundary_loss(xb, backend.asarray(np.zeros(x.shape, dtype=np.int64)))
    with pytest.raises(ValueError, match="boundary_iou: true_mask must have the shape of pred_mask"):
        pl.boundary_iou(backend.asarray(y), backend.asarray(y[:, :-1]))
    with pytest.raises(ValueError, match="boundary_iou: spatial_ndim must be 1, 2 or 3"):
        pl.boundary_iou(backend.asarray(y), backend.asarray(y), spatial_ndim=0)


@pytest.mark.parametrize("bad", [3, -1])
def test_out_of_range_labels(backend, rng, bad):
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    y[1, 2, 3] = bad
    xb, yb = as_backend(backend, x, y)
    if backend.is_jax:  # lazy arrays: value checks are skipped, never a crash
        pl.hausdorff_dt_loss(xb, yb)
        return
    with pytest.raises(ValueError, match=rf"hausdorff_dt_loss: y_true labels must lie in \[0, 3\), found {bad}"):
        pl.hausdorff_dt_loss(xb, yb)
    with pytest.raises(ValueError, match=r"soft_cldice_loss: y_true labels must lie in \[0, 2\)"):
        pl.soft_cldice_loss(backend.asarray(x[:, :1]), backend.asarray(np.full((2, 1, 6, 7), 2)), mode="binary")


# --------------------------------------------------------------------------- #
# torch.compile(fullgraph=True): same values and gradients as eager
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", [*LOSSES, "boundary_iou"])
def test_torch_compile_fullgraph_matches_eager(backend, rng, name):
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    torch._dynamo.reset()
    if name == "boundary_iou":
        a, b = backend.asarray(y), backend.asarray(np.roll(y, 1, axis=-1))
        compiled = torch.compile(lambda u, v: pl.boundary_iou(u, v, dilation_ratio=0.1), fullgraph=True,
                                 backend="aot_eager")
        assert_close(compiled(a, b), to_numpy(pl.boundary_iou(a, b, dilation_ratio=0.1)))
        return
    loss = _call(name, x, y, backend)
    compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
    want_value, want_grad = backend.value_and_grad(loss, backend.asarray(x))
    got_value, got_grad = backend.value_and_grad(compiled, backend.asarray(x))
    assert_close(got_value, want_value, rtol=1e-9)
    assert_close(got_grad, want_grad, rtol=1e-9)
