"""Skeleton Recall, clCE and Boundary DoU against float64 NumPy loops written from the papers and authors' code."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function
from helpers import assert_close, assert_finite, random_labels, random_logits, to_numpy

import polyloss as pl

ndimage = pytest.importorskip("scipy.ndimage")

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]
# tubed_skeleton is host-side NumPy (scikit-image), never jitted
lazy_xp_function(pl.tubed_skeleton, jax_jit=False)


def tol(backend):
    """float64 everywhere in these tests; the jitted JAX path reorders sums."""
    return 1e-9


# --------------------------------------------------------------------------- #
# float64 references
# --------------------------------------------------------------------------- #


def np_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_log_softmax(x):
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def one_hot(y, c):
    return np.moveaxis(np.eye(c)[y], -1, 1)


def cross(nd):
    return ndimage.generate_binary_structure(nd, 1)


def soft_skeleton_ref(img, iterations):
    """clDice's soft_skel per (n, c) image: grey erosion by the cross, dilation by the 3-box, edges replicated."""
    out = np.zeros_like(img)
    footprint = cross(img.ndim - 2)

    def erode(v):
        return ndimage.grey_erosion(v, footprint=footprint, mode="nearest")

    def open_(v):
        return ndimage.maximum_filter(erode(v), size=3, mode="nearest")

    for idx in np.ndindex(*img.shape[:2]):
        x = img[idx]
        skel = np.maximum(x - open_(x), 0)
        for _ in range(iterations):
            x = erode(x)
            delta = np.maximum(x - open_(x), 0)
            skel = skel + np.maximum(delta - skel * delta, 0)
        out[idx] = skel
    return out


def skeleton_recall_ref(x, skel, c, ignore_index=None, per_image=False, smooth=1e-5):
    """The authors' SoftSkeletonRecallLoss (do_bg=False, loss_mask), as 1 - recall, class by class."""
    p = np_softmax(x)
    valid = np.ones(skel.shape) if ignore_index is None else (skel != ignore_index).astype(float)
    k = one_hot(np.where(skel == ignore_index, 0, skel) if ignore_index is not None else skel, c)
    groups = [[n] for n in range(x.shape[0])] if per_image else [list(range(x.shape[0]))]
    out = np.zeros((len(groups), c - 1))
    for g, members in enumerate(groups):
        for j in range(1, c):
            inter = sum((p[n, j] * k[n, j] * valid[n]).sum() for n in members)
            total = sum((k[n, j] * valid[n]).sum() for n in members)
            out[g, j - 1] = 0.0 if total == 0 else 1 - (inter + smooth) / max(total + smooth, 1e-8)
    return out if per_image else out[0]


def clce_ref(x, y, c, iterations=3, ignore_index=None):
    """The authors' clCELoss: mean CE * skel_true[:, 1] + mean CE * skel_pred[:, 1], summed over c >= 1."""
    valid = np.ones(y.shape) if ignore_index is None else (y != ignore_index).astype(float)
    labels = np.where(valid > 0, y, 0)
    t = one_hot(labels, c) * valid[:, None]
    p = np_softmax(x)
    ce = -(t * np_log_softmax(x)).sum(axis=1)
    w = (soft_skeleton_ref(t, iterations) + soft_skeleton_ref(p, iterations))[:, 1:].sum(axis=1)
    return (ce * w * valid).sum() / max(valid.sum(), 1) if valid.sum() else 0.0


def boundary_dou_ref(x, y, c, include_background=True, smooth=1e-5, ignore_index=None):
    """The authors' BoundaryDoULoss._adaptive_size, class by class, batch pooled, N-D cross kernel."""
    valid = np.ones(y.shape) if ignore_index is None else (y != ignore_index).astype(float)
    p = np_softmax(x) * valid[:, None]
    t = one_hot(np.where(valid > 0, y, 0), c) * valid[:, None]
    nd = y.ndim - 1
    kernel = cross(nd).astype(float)
    losses = []
    for j in range(0 if include_background else 1, c):
        target = t[:, j]
        count = np.stack([ndimage.convolve(target[n], kernel, mode="constant") for n in range(len(target))]) * target
        count[count == kernel.sum()] = 0
        edge, area = np.count_nonzero(count), np.count_nonzero(target)
        alpha = min(1 - 2 * (edge + smooth) / (area + smooth), 0.8)
        z, yy, inter = (p[:, j] ** 2).sum(), (target**2).sum(), (p[:, j] * target).sum()
        if yy == 0:  # the authors' constant (z + s) / (z + s) = 1; 0 here (documented, same zero gradient)
            losses.append(0.0)
            continue
        losses.append((z + yy - 2 * inter + smooth) / (z + yy - (1 + alpha) * inter + smooth))
    return np.mean(losses)


def thin_labels(rng, n, shape, c):
    """Label maps of random lines (thin structures) of classes 1..c-1 on background."""
    y = np.zeros((n, *shape), dtype=np.int64)
    for i in range(n):
        for k in range(1, c):
            r = rng.integers(1, shape[0] - 1)
            y[i, r, :] = k
            col = rng.integers(1, shape[1] - 1)
            y[i, :, col] = k
    return y


# --------------------------------------------------------------------------- #
# tubed_skeleton (host side)
# --------------------------------------------------------------------------- #


def test_tubed_skeleton_binary_equals_authors_transform(rng):
    """Binary labels: skeletonize, skimage dilation twice (default cross footprint), times the labels."""
    morphology = pytest.importorskip("skimage.morphology")
    labels = (ndimage.gaussian_filter(rng.normal(size=(3, 24, 21)), sigma=(0, 2, 2)) > 0.1).astype(np.int64)
    got = pl.tubed_skeleton(labels)
    for image, out in zip(labels, got, strict=True):
        want = morphology.dilation(morphology.dilation(morphology.skeletonize(image > 0).astype(np.int16)))
        np.testing.assert_array_equal(out, want * image)


def test_tubed_skeleton_keeps_classes_and_ignore(rng):
    labels = np.zeros((2, 16, 20), dtype=np.int64)
    labels[:, 2:7, 2:18] = 1
    labels[:, 9:14, 2:18] = 2
    labels[1, 0, :] = 255
    got = pl.tubed_skeleton(labels, dilation=1, ignore_index=255)
    assert got.shape == labels.shape and got.dtype == labels.dtype
    on = (got > 0) & (got != 255)
    np.testing.assert_array_equal(got[on], labels[on])  # each tube pixel keeps its class, inside its class
    assert set(np.unique(got[0])) == {0, 1, 2}
    np.testing.assert_array_equal(got == 255, labels == 255)


def test_tubed_skeleton_3d_and_errors():
    labels = np.zeros((1, 7, 9, 9), dtype=np.int64)
    labels[0, 2:5, 3:6, 1:8] = 1
    got = pl.tubed_skeleton(labels, dilation=0)
    assert 0 < got.sum() < labels.sum()
    with pytest.raises(ValueError, match="tubed_skeleton: labels must hold integer"):
        pl.tubed_skeleton(labels.astype(float))
    with pytest.raises(ValueError, match="tubed_skeleton: dilation must be"):
        pl.tubed_skeleton(labels, dilation=-1)


# --------------------------------------------------------------------------- #
# skeleton_recall_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("ignore_index", [None, -1])
@pytest.mark.parametrize("class_axis", [1, -1])
def test_skeleton_recall_matches_authors_loss(backend, rng, per_image, ignore_index, class_axis):
    c = 4
    x = random_logits(rng, (3, c, 9, 8))
    skel = random_labels(rng, (3, 9, 8), c - 1, ignore_index=ignore_index)  # class 3 absent: recall 1
    skel[1] = 0  # an image without skeleton
    xin = x if class_axis == 1 else np.moveaxis(x, 1, -1)
    got = pl.skeleton_recall_loss(backend.asarray(xin), backend.asarray(skel), class_axis=class_axis,
                                  ignore_index=ignore_index, per_image=per_image, reduction="none")
    want = skeleton_recall_ref(x, skel, c, ignore_index, per_image)
    assert_close(got, want, rtol=tol(backend))
    mean = pl.skeleton_recall_loss(backend.asarray(xin), backend.asarray(skel), class_axis=class_axis,
                                   ignore_index=ignore_index, per_image=per_image)
    assert_close(mean, np.array(want.mean()), rtol=tol(backend))


def test_skeleton_recall_binary_and_dense_targets(backend, rng):
    x = random_logits(rng, (2, 1, 7, 6))
    k = (rng.random((2, 1, 7, 6)) < 0.3).astype(np.float64)
    p = 1 / (1 + np.exp(-x))
    want = 1 - ((p * k).sum() + 1e-5) / (k.sum() + 1e-5)
    assert_close(pl.skeleton_recall_loss(backend.asarray(x), backend.asarray(k), mode="binary"), np.array(want),
                 rtol=tol(backend))
    # one-hot float targets equal integer targets
    xs = random_logits(rng, (2, 3, 7, 6))
    y = random_labels(rng, (2, 7, 6), 3)
    a = pl.skeleton_recall_loss(backend.asarray(xs), backend.asarray(y))
    b = pl.skeleton_recall_loss(backend.asarray(xs), backend.asarray(one_hot(y, 3)))
    assert_close(a, to_numpy(b), rtol=tol(backend))


def test_skeleton_recall_all_reduce_sums_statistics(backend, rng):
    x = random_logits(rng, (2, 3, 6, 5))
    y = random_labels(rng, (2, 6, 5), 3)
    doubled = pl.skeleton_recall_loss(backend.asarray(x), backend.asarray(y), all_reduce=lambda s: 2 * s, smooth=0.0)
    assert_close(doubled, np.array(skeleton_recall_ref(x, y, 3, smooth=0.0).mean()), rtol=tol(backend))


# --------------------------------------------------------------------------- #
# cl_cross_entropy_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("ignore_index", [None, 7])
@pytest.mark.parametrize("iterations", [0, 3])
@pytest.mark.parametrize("class_axis", [1, -1])
def test_clce_matches_authors_loss(backend, rng, ignore_index, iterations, class_axis):
    c = 3
    x = random_logits(rng, (2, c, 11, 10))
    y = thin_labels(rng, 2, (11, 10), c)
    if ignore_index is not None:
        y[rng.random(y.shape) < 0.15] = ignore_index
    xin = x if class_axis == 1 else np.moveaxis(x, 1, -1)
    got = pl.cl_cross_entropy_loss(backend.asarray(xin), backend.asarray(y), iterations=iterations,
                                   class_axis=class_axis, ignore_index=ignore_index)
    assert_close(got, np.array(clce_ref(x, y, c, iterations, ignore_index)), rtol=tol(backend))


def test_clce_3d_probabilities_and_binary(backend, rng):
    x = random_logits(rng, (1, 2, 6, 7, 5))
    y = random_labels(rng, (1, 6, 7, 5), 2)
    got = pl.cl_cross_entropy_loss(backend.asarray(np_softmax(x)), backend.asarray(y), from_logits=False)
    assert_close(got, np.array(clce_ref(x, y, 2)), rtol=1e-7)
    # binary sigmoid: BCE weighted by the channel's skeletons
    xb = random_logits(rng, (2, 1, 8, 7))
    t = (rng.random(xb.shape) < 0.4).astype(np.float64)
    p = 1 / (1 + np.exp(-xb))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    want = (bce * (soft_skeleton_ref(t, 3) + soft_skeleton_ref(p, 3))).mean()
    assert_close(pl.cl_cross_entropy_loss(backend.asarray(xb), backend.asarray(t), mode="binary"), np.array(want),
                 rtol=tol(backend))


# --------------------------------------------------------------------------- #
# boundary_dou_loss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("ignore_index", [None, 9])
@pytest.mark.parametrize("shape", [(13, 12), (6, 7, 5)])
def test_boundary_dou_matches_authors_loss(backend, rng, include_background, ignore_index, shape):
    c = 4
    x = random_logits(rng, (2, c, *shape))
    smooth = ndimage.gaussian_filter(rng.normal(size=(2, *shape)), sigma=[0] + [1.5] * len(shape))
    y = np.digitize(smooth, np.quantile(smooth, [0.4, 0.7, 0.99])).astype(np.int64)  # blobs and a few tiny ones
    if ignore_index is not None:
        y[rng.random(y.shape) < 0.1] = ignore_index
    got = pl.boundary_dou_loss(backend.asarray(x), backend.asarray(y), include_background=include_background,
                               ignore_index=ignore_index)
    want = boundary_dou_ref(x, y, c, include_background, ignore_index=ignore_index)
    assert_close(got, np.array(want), rtol=tol(backend))


def test_boundary_dou_per_image_and_channels_last(backend, rng):
    x = random_logits(rng, (3, 3, 9, 8))
    y = random_labels(rng, (3, 9, 8), 3)
    got = pl.boundary_dou_loss(backend.asarray(np.moveaxis(x, 1, -1)), backend.asarray(y), class_axis=-1,
                               per_image=True, reduction="none")
    assert tuple(got.shape) == (3, 3)
    got = to_numpy(got)
    for n in range(3):  # per_image: the authors' loss of each sample alone
        assert_close(got[n].mean(), np.array(boundary_dou_ref(x[n : n + 1], y[n : n + 1], 3)), rtol=tol(backend))


def test_boundary_dou_perfect_prediction_is_zero(backend):
    y = np.zeros((1, 10, 10), dtype=np.int64)
    y[0, 2:8, 3:9] = 1
    x = np.stack([np.where(y == 0, 30.0, -30.0), np.where(y == 1, 30.0, -30.0), np.full(y.shape, -30.0)], axis=1)
    # smooth=0: the loss is (sum (p - t)^2) / (...), exactly 0 up to exp(-60); class 2 is absent (scores 0)
    assert_close(pl.boundary_dou_loss(backend.asarray(x), backend.asarray(y), smooth=0.0), np.array(0.0), atol=1e-12)


# --------------------------------------------------------------------------- #
# Gradients, edge cases, errors
# --------------------------------------------------------------------------- #


LOSSES = {
    "skeleton_recall_loss": pl.skeleton_recall_loss,
    "cl_cross_entropy_loss": pl.cl_cross_entropy_loss,
    "boundary_dou_loss": pl.boundary_dou_loss,
}
TARGET_NAME = {"skeleton_recall_loss": "skeleton"}  # what each loss calls its second argument, else y_true


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_match_finite_differences(backend, rng, name):
    x = random_logits(rng, (2, 3, 6, 5), scale=1.0)
    y = thin_labels(rng, 2, (6, 5), 3)
    y_arr = backend.asarray(y)
    backend.check_grad(lambda v: pl.__dict__[name](v, y_arr, ignore_index=None), x, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_finite_on_empty_masks_batches_ignored_and_saturated(backend, rng, name):
    fn = LOSSES[name]
    x = random_logits(rng, (2, 3, 6, 5))
    cases = [
        (x, np.zeros((2, 6, 5), dtype=np.int64)),  # only background
        (x * 1e4, random_labels(rng, (2, 6, 5), 3)),  # saturated logits
        (x, np.full((2, 6, 5), -1)),  # every pixel ignored
        (np.zeros((0, 3, 6, 5)), np.zeros((0, 6, 5), dtype=np.int64)),  # empty batch
    ]
    for xi, yi in cases:
        y_arr = backend.asarray(yi)
        value = fn(backend.asarray(xi), y_arr, ignore_index=-1)
        assert_finite(value)
        if backend.has_autodiff and xi.shape[0]:
            _, grad = backend.value_and_grad(lambda v, y_arr=y_arr: fn(v, y_arr, ignore_index=-1), backend.asarray(xi))
            assert_finite(grad)
    # all-ignored gives 0
    assert_close(fn(backend.asarray(x), backend.asarray(np.full((2, 6, 5), -1)), ignore_index=-1), np.array(0.0))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_reject_labels_out_of_range(backend, name):
    if backend.is_jax:
        pytest.skip("value checks are skipped under jax.jit (every polyloss call is jitted in tests)")
    xp = backend.xp
    with pytest.raises(ValueError, match=f"{name}: {TARGET_NAME.get(name, 'y_true')} labels must lie in"):
        LOSSES[name](xp.zeros((2, 3, 5, 5)), xp.full((2, 5, 5), 3, dtype=xp.int64))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_reject_bad_input(xp, name):
    fn = LOSSES[name]
    x = xp.zeros((2, 3, 5, 5))
    with pytest.raises(ValueError, match=f"{name}: integer {TARGET_NAME.get(name, 'y_true')} must have the shape"):
        fn(x, xp.zeros((2, 5, 4), dtype=xp.int64))
    with pytest.raises(ValueError, match=f"{name}: mode must be one of"):
        fn(x, xp.zeros((2, 5, 5), dtype=xp.int64), mode="softmax")
    with pytest.raises(ValueError, match=f"{name}: reduction must be one of"):
        fn(x, xp.zeros((2, 5, 5), dtype=xp.int64), reduction=None)
    with pytest.raises(TypeError, match=f"{name}: y_pred must have a real floating dtype"):
        fn(xp.zeros((2, 3, 5, 5), dtype=xp.int64), xp.zeros((2, 5, 5), dtype=xp.int64))
