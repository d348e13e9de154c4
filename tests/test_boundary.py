"""Boundary losses against float64 NumPy/scipy.ndimage formulations of the papers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, random_binary, random_labels, random_logits, to_numpy
from reference import np_sigmoid, np_softmax

import polyloss as pl

ndimage = pytest.importorskip("scipy.ndimage")

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# --------------------------------------------------------------------------- #
# float64 references
# --------------------------------------------------------------------------- #
def probabilities_and_targets(x, y, mode, include_background=True, ignore_index=None, mask=None):
    """(N, C', *spatial) probabilities, float targets and pixel weights (None: all 1), as the docstrings define them.

    Left-out pixels (label == ignore_index, or mask == 0) are 0 in both p and t.
    """
    keep = None if ignore_index is None else y != ignore_index
    if mode == "multiclass":
        p = np_softmax(x)
        if np.issubdtype(y.dtype, np.integer):
            labels = np.where(keep, y, 0) if keep is not None else y
            t = np.moveaxis(np.eye(x.shape[1])[labels.astype(np.int64)], -1, 1)
            keep = None if keep is None else keep[:, None]
        else:
            t = y
    else:
        p, t = np_sigmoid(x), y.astype(np.float64)
    w = None if keep is None else keep.astype(np.float64)
    if mask is not None:
        m = mask.astype(np.float64)
        m = m[:, None] if m.ndim == x.ndim - 1 else m
        w = m if w is None else w * m
    if w is not None:
        p, t = np.where(w > 0, p, 0.0), np.where(w > 0, t, 0.0)
    if not include_background and p.shape[1] > 1:
        p, t = p[:, 1:], t[:, 1:]
        if w is not None and w.shape[1] > 1:
            w = w[:, 1:]
    return p, t, w


def unsigned_field(mask, empty="diagonal", sampling=None):
    """MONAI's distance_field for one image: EDT(fg) + EDT(bg); an all-0 or all-1 image gets the
    diagonal (``empty="diagonal"``) or zeros (``"zero"``, MONAI)."""
    spacing = np.ones(mask.ndim) if sampling is None else np.broadcast_to(np.asarray(sampling, float), mask.ndim)
    if not mask.any() or mask.all():
        value = 0.0 if empty == "zero" else np.sqrt(((np.array(mask.shape) * spacing) ** 2).sum())
        return np.full(mask.shape, value)
    return (ndimage.distance_transform_edt(mask, sampling=spacing)
            + ndimage.distance_transform_edt(~mask, sampling=spacing))


def hausdorff_reference(x, y, mode, alpha, include_background, per_image, reduction, *, ignore_index=None,
                        mask=None, sampling=None, empty="diagonal"):
    p, t, w = probabilities_and_targets(x, y, mode, include_background, ignore_index, mask)
    w = np.ones_like(p) if w is None else np.broadcast_to(w, p.shape)
    num, den = np.zeros(p.shape[:2]), np.zeros(p.shape[:2])
    for n in range(p.shape[0]):
        for c in range(p.shape[1]):
            d = (unsigned_field(p[n, c] > 0.5, empty, sampling) ** alpha
                 + unsigned_field(t[n, c] > 0.5, empty, sampling) ** alpha)
            num[n, c] = (w[n, c] * (p[n, c] - t[n, c]) ** 2 * d).sum()
            den[n, c] = w[n, c].sum()
    if not per_image:
        num, den = num.sum(axis=0), den.sum(axis=0)
    values = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
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


def boundary_iou_loss_reference(x, y, mode, ratio, include_background, reduction, *, ignore_index=None, mask=None):
    p, t, w = probabilities_and_targets(x, y, mode, include_background, ignore_index, mask)
    w = 1.0 if w is None else w
    bp, bt = soft_boundary(p, ratio), soft_boundary(t, ratio)
    axes = tuple(range(2, p.ndim))
    inter = (w * bp * bt).sum(axis=axes)
    union = (w * (bp + bt - bp * bt)).sum(axis=axes)
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


def cldice_reference(x, y, mode, iterations, smooth, harmonic, include_background, per_image, reduction, *,
                     ignore_index=None, mask=None):
    p, t, w = probabilities_and_targets(x, y, mode, include_background, ignore_index, mask)
    w = 1.0 if w is None else w
    sp, st = soft_skeleton_reference(p, iterations), soft_skeleton_reference(t, iterations)
    axes = tuple(range(1, p.ndim)) if per_image else None
    tprec = ((w * sp * t).sum(axis=axes) + smooth) / ((w * sp).sum(axis=axes) + smooth)
    tsens = ((w * st * p).sum(axis=axes) + smooth) / ((w * st).sum(axis=axes) + smooth)
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
    p, t, _ = probabilities_and_targets(x, y, mode)
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), spatial_ndim=t.ndim - 2, dtype=backend.xp.float64))
    got = pl.boundary_loss(backend.asarray(x), backend.asarray(phi), mode=mode, include_background=include_background,
                           reduction="none")
    prod = p * phi
    if not include_background and p.shape[1] > 1:
        prod = prod[:, 1:]
    assert_close(got, prod, rtol=1e-9)


def test_boundary_loss_channels_last_and_probabilities(backend, rng):
    x, y = segmentation(rng, "multiclass", (2, 3, 7, 8))
    p, t, _ = probabilities_and_targets(x, y, "multiclass")
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), spatial_ndim=t.ndim - 2, dtype=backend.xp.float64))
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
        y[0, 0] = 0.0  # an empty target: the diagonal field
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
    p, t, _ = probabilities_and_targets(x, y, "multiclass")
    phi = to_numpy(pl.signed_distance_map(backend.asarray(t), spatial_ndim=t.ndim - 2, dtype=backend.xp.float64))
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
        hot = np.moveaxis(np.eye(x.shape[1])[y], -1, 1)
        phi = (pl.signed_distance_map(backend.asarray(hot), spatial_ndim=x.ndim - 2, dtype=backend.xp.float64)
               if x.size else backend.asarray(np.zeros(x.shape)))
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
        with pytest.raises(ValueError, match=f"{name}: mode='multiclass' \\(softmax\\) needs at least 2 classes"):
            fn(backend.asarray(x[:, :1]), yb)
        with pytest.raises(TypeError, match=f"{name}: y_pred must have a real floating dtype"):
            fn(backend.asarray(y[:, None]), yb)
        with pytest.raises(ValueError, match=f"{name}: class_axis must be 1"):
            fn(xb, yb, class_axis=2)
    with pytest.raises(ValueError, match="hausdorff_dt_loss: alpha must be >= 0"):
        pl.hausdorff_dt_loss(xb, yb, alpha=-1.0)
    with pytest.raises(ValueError, match="boundary_iou_loss: dilation_ratio must be a finite number >= 0"):
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


def _original(name):
    """The function itself, not the jax.jit wrapper the JAX session installs on ``polyloss.<name>``."""
    return getattr(pl.segmentation.boundary, name)


TARGET_LOSSES = ["hausdorff_dt_loss", "boundary_iou_loss", "soft_cldice_loss"]


def assert_nan(value):
    assert np.isnan(to_numpy(value)).all(), f"expected NaN, got {to_numpy(value)}"


# --------------------------------------------------------------------------- #
# Hostile input (issue 9): target domains, label widths, empty batches, NaN, traced labels
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", TARGET_LOSSES)
@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_targets_outside_zero_one_raise_or_give_nan(backend, rng, name, mode):
    """A 0/255 mask (float or integer) is not a target: a ValueError saying ``y_true > 0``, NaN when traced."""
    x, y = segmentation(rng, mode, shape_for(mode, "2d"))
    for bad in (255 * y, (255 * y).astype(np.uint8), y - 0.5):
        xb, yb = as_backend(backend, x, bad)
        if backend.is_jax:  # jitted: traced labels cannot be read
            assert_nan(getattr(pl, name)(xb, yb, mode=mode))
            with pytest.raises(ValueError, match=rf"{name}: y_true must .* found"):
                _original(name)(xb, yb, mode=mode)  # concrete JAX arrays are checked like NumPy
            continue
        found = "-0.5" if bad.min() < 0 else "255"
        with pytest.raises(ValueError, match=rf"{name}: y_true must .*, found {found}.*y_true > 0"):
            getattr(pl, name)(xb, yb, mode=mode)


@pytest.mark.parametrize("name", TARGET_LOSSES)
def test_narrow_label_dtypes_equal_int64(backend, rng, name):
    """uint8 labels with 300 classes: class ids are not built in the label dtype (they wrapped at 256)."""
    if backend.name == "array_api_strict" and name == "hausdorff_dt_loss":
        pytest.skip("300 channels of the array-API EDT: slow and covered by the other backends")
    x = random_logits(rng, (1, 300, 4, 5))
    y = rng.integers(0, 256, size=(1, 4, 5))
    want = getattr(pl, name)(*as_backend(backend, x, y), include_background=True, reduction="none")
    for dtype in (np.uint8, np.int16, np.int32):
        got = getattr(pl, name)(*as_backend(backend, x, y.astype(dtype)), include_background=True, reduction="none")
        assert_close(got, to_numpy(want), rtol=0, atol=0)
    reference = {
        "hausdorff_dt_loss": lambda: hausdorff_reference(x, y, "multiclass", 2.0, True, False, "none"),
        "boundary_iou_loss": lambda: boundary_iou_loss_reference(x, y, "multiclass", 0.02, True, "none"),
        "soft_cldice_loss": lambda: cldice_reference(x, y, "multiclass", 3, 1.0, 1e-4, True, False, "none"),
    }[name]
    assert_close(want, reference(), rtol=1e-9)


@pytest.mark.parametrize("name", [*LOSSES, "boundary_iou"])
@pytest.mark.parametrize("spatial", [(6, 7), (0, 7)])
def test_empty_batch_and_empty_images(backend, rng, name, spatial):
    """No image (N = 0) or empty spatial axes: "mean"/"sum" give 0 with a zero gradient, "none" the empty shape."""
    if name == "boundary_iou":
        n = 0 if spatial[0] else 2
        masks = backend.asarray(np.zeros((n, 6, 7), dtype=bool))
        if n:
            pytest.skip("boundary_iou rejects empty spatial axes (no image to score)")
        assert to_numpy(pl.boundary_iou(masks, masks)).shape == (0,)
        return
    n = 0 if spatial[0] else 2
    x = np.zeros((n, 3, *spatial))
    y = np.zeros((n, *spatial), dtype=np.int64)
    loss = _call(name, x, y, backend, reduction="none")
    want_shape = {"boundary_loss": (n, 2, *spatial), "hausdorff_dt_loss": (2,), "boundary_iou_loss": (n, 3),
                  "soft_cldice_loss": ()}[name]
    got = to_numpy(loss(backend.asarray(x)))
    assert got.shape == want_shape and not np.any(got)
    for reduction in ("mean", "sum"):
        loss = _call(name, x, y, backend, reduction=reduction)
        assert to_numpy(loss(backend.asarray(x))) == 0.0
        if backend.has_autodiff:
            value, grad = backend.value_and_grad(loss, backend.asarray(x))
            assert value == 0.0 and grad.shape == x.shape and not np.any(grad)
    if name in ("hausdorff_dt_loss", "soft_cldice_loss"):
        got = to_numpy(_call(name, x, y, backend, per_image=True, reduction="none")(backend.asarray(x)))
        assert got.shape == ((n, 2) if name == "hausdorff_dt_loss" else (n,))


@pytest.mark.parametrize("name", LOSSES)
def test_nan_in_gives_nan_out(backend, rng, name):
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    x[1, 2, 3, 4] = np.nan
    assert_nan(_call(name, x, y, backend)(backend.asarray(x)))
    if name != "boundary_loss":  # NaN in a floating target too
        t = np.moveaxis(np.eye(3)[y], -1, 1)
        t[0, 1, 2, 2] = np.nan
        xb, tb = as_backend(backend, np.nan_to_num(x), t)
        assert_nan(getattr(pl, name)(xb, tb))


@pytest.mark.parametrize("name", TARGET_LOSSES)
@pytest.mark.parametrize("bad", [3, -1, 255])
def test_out_of_range_labels(backend, rng, name, bad):
    """Eager arrays raise; under jax.jit the labels cannot be read and the loss is NaN, never a finite number."""
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    y[1, 2, 3] = bad
    xb, yb = as_backend(backend, x, y)
    message = rf"{name}: y_true labels must lie in \[0, 3\), found {bad}"
    if backend.is_jax:
        assert_nan(getattr(pl, name)(xb, yb))
        with pytest.raises(ValueError, match=message):
            _original(name)(xb, yb)  # concrete JAX arrays are read like NumPy
        return
    with pytest.raises(ValueError, match=message):
        getattr(pl, name)(xb, yb)
    # the ignored value is not a label: no error, no NaN
    assert_finite(getattr(pl, name)(xb, yb, ignore_index=bad))


def test_messages_name_the_function_and_its_arguments(backend, rng):
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    xb, yb = as_backend(backend, x, y)
    for name in TARGET_LOSSES:
        fn = getattr(pl, name)
        with pytest.raises(TypeError, match=rf"{name}: y_true must be an array"):
            fn(xb, y.tolist())
        with pytest.raises(ValueError, match=rf"{name}: floating y_true is read as class probabilities"):
            fn(xb, backend.asarray(y.astype(np.float64)))
        with pytest.raises(ValueError, match=rf"{name}: mask must have y_pred's shape"):
            fn(xb, yb, mask=backend.asarray(np.ones((2, 6))))
        with pytest.raises(ValueError, match=rf"{name}: ignore_index applies to integer"):
            fn(xb, backend.asarray(np.moveaxis(np.eye(3)[y], -1, 1)), ignore_index=0)
        with pytest.raises(ValueError, match=rf"{name}: class_axis must be an integer in \[-4, 3\], got 5"):
            fn(backend.asarray(x[:, :1]), backend.asarray(random_binary(rng, (2, 1, 6, 7))), mode="binary",
               class_axis=5)
        if not backend.is_jax:
            with pytest.raises(ValueError, match=rf"{name}: mask must hold non-negative pixel weights"):
                fn(xb, yb, mask=backend.asarray(-np.ones((2, 6, 7))))
    with pytest.raises(TypeError, match=r"boundary_loss: distance_map must be an array"):
        pl.boundary_loss(xb, x.tolist())
    with pytest.raises(ValueError, match="hausdorff_dt_loss: sampling must be"):
        pl.hausdorff_dt_loss(xb, yb, sampling=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="hausdorff_dt_loss: empty_field must be one of"):
        pl.hausdorff_dt_loss(xb, yb, empty_field="border")
    with pytest.raises(ValueError, match=r"hausdorff_dt_loss: distance_map must have the shape of y_pred"):
        pl.hausdorff_dt_loss(xb, yb, distance_map=backend.asarray(x[:, :2]))


# --------------------------------------------------------------------------- #
# Volumes are volumes (issue 9, item 11)
# --------------------------------------------------------------------------- #


def test_boundary_iou_reads_volumes_as_volumes(backend, rng):
    shape = (2, 8, 9, 10)
    pred = blobs(rng, shape, 3)
    true = np.where(rng.random(shape) < 0.1, ~pred, pred)
    got = pl.boundary_iou(backend.asarray(pred), backend.asarray(true), dilation_ratio=0.1)
    assert to_numpy(got).shape == (2,)
    assert_close(got, boundary_iou_reference(pred, true, 0.1, 3), rtol=1e-6)
    # (N, H, W): a batch of images, equal to the 2-D reference image by image
    got = pl.boundary_iou(backend.asarray(pred[:, 0]), backend.asarray(true[:, 0]), dilation_ratio=0.1)
    assert_close(got, [boundary_iou_reference(pred[n, 0], true[n, 0], 0.1, 2) for n in range(2)], rtol=1e-6)
    # slices on request: spatial_ndim=2 scores every (n, d) slice as the 2-D reference does
    got = pl.boundary_iou(backend.asarray(pred), backend.asarray(true), dilation_ratio=0.1, spatial_ndim=2)
    want = [[boundary_iou_reference(pred[n, d], true[n, d], 0.1, 2) for d in range(8)] for n in range(2)]
    assert_close(got, want, rtol=1e-6)
    one = pl.boundary_iou(backend.asarray(pred[0, 0]), backend.asarray(true[0, 0]), dilation_ratio=0.1)  # (H, W)
    assert_close(one, boundary_iou_reference(pred[0, 0][None], true[0, 0][None], 0.1, 2)[0], rtol=1e-6)
    bad = pred[:, None]  # (N, C, D, H, W) masks: the rule (_edt.spatial_ndim_of) asks which axes are spatial
    with pytest.raises(ValueError, match=r"boundary_iou: pred_mask of shape .* is ambiguous.* pass spatial_ndim"):
        pl.boundary_iou(backend.asarray(bad), backend.asarray(bad))


# --------------------------------------------------------------------------- #
# ignore_index and pixel masks (issue 13, item 6)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("mode", "dim", "weights"), [("multiclass", "2d", False), ("multiclass", "3d", True),
                                                      ("binary", "2d", True), ("multilabel", "2d", False)])
def test_ignore_index_and_mask_match_reference(backend, rng, mode, dim, weights):
    shape = shape_for(mode, dim)
    x, y = segmentation(rng, mode, shape)
    y = y.astype(np.int64)
    y[rng.random(y.shape) < 0.2] = 255
    label_shape = y.shape if mode == "multiclass" else (shape[0], *shape[2:])
    mask = rng.random(label_shape) * (rng.random(label_shape) < 0.8) if weights else rng.random(label_shape) < 0.8
    xb, yb, mb = backend.asarray(x), backend.asarray(y), backend.asarray(mask)
    options = {"ignore_index": 255, "mask": mb, "mode": mode, "reduction": "none"}
    kw = {"ignore_index": 255, "mask": mask}
    assert_close(pl.hausdorff_dt_loss(xb, yb, per_image=True, **options),
                 hausdorff_reference(x, y, mode, 2.0, False, True, "none", **kw), rtol=1e-9)
    assert_close(pl.hausdorff_dt_loss(xb, yb, **options),
                 hausdorff_reference(x, y, mode, 2.0, False, False, "none", **kw), rtol=1e-9)
    assert_close(pl.boundary_iou_loss(xb, yb, dilation_ratio=0.1, **options),
                 boundary_iou_loss_reference(x, y, mode, 0.1, True, "none", **kw), rtol=1e-9)
    assert_close(pl.soft_cldice_loss(xb, yb, per_image=True, **options),
                 cldice_reference(x, y, mode, 3, 1.0, 1e-4, True, True, "none", **kw), rtol=1e-9)


@pytest.mark.parametrize("name", LOSSES)
def test_left_out_pixels_take_part_in_nothing(backend, rng, name):
    """Logits at ignored pixels change neither value nor gradient; all ignored: 0 (clDice: its floor), zero grad."""
    x, y = segmentation(rng, "multiclass", (2, 3, 6, 7))
    keep = rng.random(y.shape) < 0.7
    y_ignored = np.where(keep, y, -1)
    options = {"mask": backend.asarray(keep)} if name == "boundary_loss" else {"ignore_index": -1}
    loss = _call(name, x, np.where(keep, y, 0), backend, **options) if name == "boundary_loss" else (
        lambda z: getattr(pl, name)(z, backend.asarray(y_ignored), **options))
    x2 = np.where(keep[:, None], x, rng.normal(size=x.shape) * 10)
    assert_close(loss(backend.asarray(x2)), to_numpy(loss(backend.asarray(x))), rtol=1e-12)
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(loss, backend.asarray(x))
        assert not np.any(grad * ~keep[:, None])
    none_kept = {"mask": backend.asarray(np.zeros(y.shape, dtype=bool))}
    loss = _call(name, x, y, backend, **none_kept)
    floor = 1 - 2 / (2 + 1e-4) if name == "soft_cldice_loss" else 0.0
    assert_close(loss(backend.asarray(x)), floor, rtol=1e-12)
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(loss, backend.asarray(x))
        assert np.isfinite(value) and not np.any(grad)


def test_boundary_loss_mask_is_a_weighted_mean(backend, rng):
    x, y = segmentation(rng, "multiclass", (2, 3, 7, 8))
    p, _, _ = probabilities_and_targets(x, y, "multiclass")
    phi = rng.normal(size=x.shape)
    w = rng.random((2, 7, 8)) * (rng.random((2, 7, 8)) < 0.7)
    prod = (w[:, None] * p * phi)[:, 1:]
    got = pl.boundary_loss(backend.asarray(x), backend.asarray(phi), mask=backend.asarray(w), reduction="none")
    assert_close(got, prod, rtol=1e-9)
    got = pl.boundary_loss(backend.asarray(x), backend.asarray(phi), mask=backend.asarray(w))
    assert_close(got, prod.sum() / (2 * w.sum()), rtol=1e-9)


# --------------------------------------------------------------------------- #
# Distance losses fit for 3-D (issue 13, item 7): sampling, precomputed fields, empty channels
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("dim", "sampling"), [("2d", (0.5, 2.0)), ("3d", 1.5), ("3d", (3.0, 1.0, 0.7))])
def test_hausdorff_sampling_matches_scipy(backend, rng, dim, sampling):
    x, y = segmentation(rng, "multiclass", SHAPES[dim])
    got = pl.hausdorff_dt_loss(*as_backend(backend, x, y), sampling=sampling, per_image=True, reduction="none")
    assert_close(got, hausdorff_reference(x, y, "multiclass", 2.0, False, True, "none", sampling=sampling),
                 rtol=1e-9)


def test_hausdorff_precomputed_distance_map(backend, rng):
    x, y = segmentation(rng, "multilabel", (2, 3, 7, 9))
    y[0, 1] = 0.0
    d_t = np.stack([[unsigned_field(y[n, c] > 0.5, sampling=(1.0, 2.0)) for c in range(3)] for n in range(2)])
    xb, yb = as_backend(backend, x, y)
    want = pl.hausdorff_dt_loss(xb, yb, mode="multilabel", sampling=(1.0, 2.0), reduction="none")
    got = pl.hausdorff_dt_loss(xb, yb, mode="multilabel", sampling=(1.0, 2.0), distance_map=backend.asarray(d_t),
                               reduction="none")
    assert_close(got, to_numpy(want), rtol=1e-9)
    got = pl.hausdorff_dt_loss(backend.asarray(np.moveaxis(x, 1, -1)), backend.asarray(np.moveaxis(y, 1, -1)),
                               mode="multilabel", class_axis=-1, sampling=(1.0, 2.0),
                               distance_map=backend.asarray(np.moveaxis(d_t, 1, -1)), reduction="none")
    assert_close(got, to_numpy(want), rtol=1e-9)


def test_hausdorff_empty_channel_rule(backend, rng):
    """A target with no foreground: false positives cost the diagonal (default), or nothing once p < 0.5 (MONAI)."""
    y = np.zeros((1, 1, 6, 8))
    p = np.full(y.shape, 0.3)  # below 0.5 everywhere: both masks empty
    pb, yb = as_backend(backend, p, y)
    diag2 = 6.0**2 + 8.0**2
    got = pl.hausdorff_dt_loss(pb, yb, mode="binary", from_logits=False)
    assert_close(got, 0.3**2 * 2 * diag2, rtol=1e-9)  # (p - t)^2 (diag^2 + diag^2)
    assert_close(pl.hausdorff_dt_loss(pb, yb, mode="binary", from_logits=False, empty_field="zero"), 0.0)
    got = pl.hausdorff_dt_loss(pb, yb, mode="binary", from_logits=False, sampling=(2.0, 0.5))
    assert_close(got, 0.3**2 * 2 * ((6 * 2.0) ** 2 + (8 * 0.5) ** 2), rtol=1e-9)
    if backend.has_autodiff:  # a push against the false positives
        _, grad = backend.value_and_grad(lambda z: pl.hausdorff_dt_loss(z, yb, mode="binary", from_logits=False), pb)
        assert np.all(grad > 0)
    x, y = segmentation(rng, "binary", (2, 1, 6, 7))
    y[1] = 0.0
    got = pl.hausdorff_dt_loss(*as_backend(backend, x, y), mode="binary", empty_field="zero", per_image=True,
                               reduction="none")
    assert_close(got, hausdorff_reference(x, y, "binary", 2.0, False, True, "none", empty="zero"), rtol=1e-9)


# --------------------------------------------------------------------------- #
# Docstring examples (NumPy)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", [*LOSSES, "boundary_iou"])
def test_docstring_examples(backend, name):
    import doctest

    if backend.name != "numpy":
        pytest.skip("the examples are written for NumPy")
    f = getattr(pl.segmentation.boundary, name)
    tests = doctest.DocTestFinder().find(f, name, globs={})
    assert tests and tests[0].examples, f"{name} has no Example"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


@pytest.mark.parametrize("ratio", [math.inf, math.nan, -math.inf])
def test_dilation_ratio_must_be_finite(backend, ratio):
    """inf raised OverflowError from round(); NaN ValueError from round() without the function's name."""
    m = backend.asarray(np.ones((1, 6, 6), dtype=bool))
    with pytest.raises(ValueError, match="boundary_iou: dilation_ratio must be a finite number >= 0"):
        pl.boundary_iou(m, m, dilation_ratio=ratio)
    x = backend.asarray(np.zeros((1, 2, 6, 6)))
    with pytest.raises(ValueError, match="boundary_iou_loss: dilation_ratio must be a finite number >= 0"):
        pl.boundary_iou_loss(x, backend.asarray(np.zeros((1, 6, 6), dtype=np.int64)), dilation_ratio=ratio)


def test_huge_dilation_ratio_equals_the_reference(backend, rng):
    """A radius past the image erodes everything, as the reference: the boundary is the whole mask."""
    pred, true = blobs(rng, (2, 9, 11), 3), blobs(rng, (2, 9, 11), 3)
    got = pl.boundary_iou(backend.asarray(pred), backend.asarray(true), dilation_ratio=1e12)
    assert_close(got, [boundary_iou_reference(pred[n], true[n], 3.0, 2) for n in range(2)], rtol=1e-6)


@pytest.mark.parametrize("name", ["distance_transform", "signed_distance_map", "boundary_iou"])
def test_one_d_mask_with_spatial_ndim_2_is_an_error(backend, name):
    m = backend.asarray(np.array([True, False, True, True]))
    args = (m, m) if name == "boundary_iou" else (m,)
    with pytest.raises(ValueError, match=f"{name}: .*must have at least spatial_ndim=2 axes"):
        getattr(pl, name)(*args, spatial_ndim=2)
