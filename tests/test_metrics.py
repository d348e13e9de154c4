"""Surface and overlap metrics against float64 NumPy loops with scipy.ndimage (MONAI's recipe, written out)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, to_numpy

import polyloss as pl

ndimage = pytest.importorskip("scipy.ndimage")

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# the metrics compute in the namespace's default float: float32 on torch (distances are sqrt of sums of squares)
RTOL = 1e-5


# --------------------------------------------------------------------------- #
# float64 references, one image at a time
# --------------------------------------------------------------------------- #


def surface(mask):
    """MONAI's get_mask_edges: the mask XOR its binary erosion by the cross (outside is background)."""
    return mask & ~ndimage.binary_erosion(mask)


def directed_distances(a, b, sampling):
    """Distance of each surface pixel of ``a`` to the nearest surface pixel of ``b`` (b's surface non-empty)."""
    return ndimage.distance_transform_edt(~surface(b), sampling=sampling)[surface(a)]


def per_image(fn, pred, true, nd, sampling, **kw):
    lead = pred.shape[: pred.ndim - nd]
    out = np.zeros(lead)
    for idx in np.ndindex(*lead):
        p, t = pred[idx] != 0, true[idx] != 0
        diag = math.sqrt(sum((n * s) ** 2 for n, s in zip(p.shape, sampling, strict=True)))
        if not p.any() and not t.any():
            out[idx] = fn.both
        elif not p.any() or not t.any():
            out[idx] = diag if fn.one is None else fn.one
        else:
            out[idx] = fn(p, t, sampling, **kw)
    return out


def hd_ref(p, t, sampling, percentile=None, directed=False):
    def h(a, b):
        d = directed_distances(a, b, sampling)
        return d.max() if percentile is None else np.percentile(d, percentile)

    return h(p, t) if directed else max(h(p, t), h(t, p))


hd_ref.both, hd_ref.one = 0.0, None


def asd_ref(p, t, sampling, symmetric=False):
    d = directed_distances(p, t, sampling)
    if symmetric:
        d = np.concatenate([d, directed_distances(t, p, sampling)])
    return d.mean()


asd_ref.both, asd_ref.one = 0.0, None


def nsd_ref(p, t, sampling, tolerance):
    d_pt, d_tp = directed_distances(p, t, sampling), directed_distances(t, p, sampling)
    return ((d_pt <= tolerance).sum() + (d_tp <= tolerance).sum()) / (d_pt.size + d_tp.size)


nsd_ref.both, nsd_ref.one = 1.0, 0.0


def blobs(rng, shape, share=0.35):
    """Random masks with some structure: thresholded smoothed noise."""
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=[0, 0] + [1.0] * (len(shape) - 2))
    return noise > np.quantile(noise, 1 - share)


# --------------------------------------------------------------------------- #
# Surface metrics
# --------------------------------------------------------------------------- #


CASES_2D = [((2, 3, 13, 11), 2, None), ((2, 3, 13, 11), 2, (0.7, 1.3)), ((2, 9, 8, 7), 3, (1.0, 0.5, 2.0))]


@pytest.mark.parametrize(("shape", "nd", "sampling"), CASES_2D)
@pytest.mark.parametrize("percentile", [None, 95, 50])
@pytest.mark.parametrize("directed", [False, True])
def test_hausdorff_matches_scipy_reference(backend, rng, shape, nd, sampling, percentile, directed):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    pred[0, 0] = False  # empty prediction, non-empty target
    pred[1, 0], true[1, 0] = False, False  # both empty
    got = pl.hausdorff_distance(backend.asarray(pred), backend.asarray(true), percentile=percentile,
                                directed=directed, sampling=sampling, spatial_ndim=nd)
    s = sampling or (1.0,) * nd
    want = per_image(hd_ref, pred, true, nd, s, percentile=percentile, directed=directed)
    assert_close(got, want, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize(("shape", "nd", "sampling"), CASES_2D)
@pytest.mark.parametrize("symmetric", [False, True])
def test_average_surface_distance_matches_scipy_reference(backend, rng, shape, nd, sampling, symmetric):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    true[0, 1] = False
    got = pl.average_surface_distance(backend.asarray(pred.astype(np.int64)), backend.asarray(true),
                                      symmetric=symmetric, sampling=sampling, spatial_ndim=nd)
    want = per_image(asd_ref, pred, true, nd, sampling or (1.0,) * nd, symmetric=symmetric)
    assert_close(got, want, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize(("shape", "nd", "sampling"), CASES_2D)
@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.5])
def test_surface_dice_matches_scipy_reference(backend, rng, shape, nd, sampling, tolerance):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    pred[0, 0], true[1, 2] = False, False
    pred[1, 1], true[1, 1] = False, False
    got = pl.surface_dice(backend.asarray(pred.astype(np.float64)), backend.asarray(true), tolerance=tolerance,
                          sampling=sampling, spatial_ndim=nd)
    want = per_image(nsd_ref, pred, true, nd, sampling or (1.0,) * nd, tolerance=tolerance)
    assert_close(got, want, rtol=RTOL, atol=1e-6)


def test_surface_metrics_empty_rules(backend):
    """Both empty: distance 0, NSD 1; one empty: the image diagonal and NSD 0 (documented, MONAI gives NaN/inf)."""
    empty = np.zeros((1, 6, 8), dtype=bool)
    full = np.zeros((1, 6, 8), dtype=bool)
    full[0, 1:3, 2:5] = True
    diag = math.hypot(6 * 2.0, 8 * 0.5)
    e, f = backend.asarray(empty), backend.asarray(full)
    for fn in (pl.hausdorff_distance, pl.average_surface_distance):
        assert_close(fn(e, e, sampling=(2.0, 0.5)), np.array([0.0]))
        assert_close(fn(e, f, sampling=(2.0, 0.5)), np.array([diag]), rtol=RTOL)
        assert_close(fn(f, e, sampling=(2.0, 0.5)), np.array([diag]), rtol=RTOL)
        assert_close(fn(f, f), np.array([0.0]))
    assert_close(pl.surface_dice(e, e, tolerance=1.0), np.array([1.0]))
    assert_close(pl.surface_dice(e, f, tolerance=1.0), np.array([0.0]))
    assert_close(pl.surface_dice(f, f, tolerance=0.0), np.array([1.0]))


def test_hausdorff_of_shifted_square_is_the_shift(backend):
    """A square moved by (dy, dx) has Hausdorff distance |(dy sy, dx sx)|: a derivation, not a stored number."""
    a = np.zeros((15, 15), dtype=bool)
    b = np.zeros((15, 15), dtype=bool)
    a[3:8, 3:8] = True
    b[5:10, 4:9] = True
    got = pl.hausdorff_distance(backend.asarray(a), backend.asarray(b), sampling=(1.5, 1.0))
    assert_close(got, np.array(math.hypot(2 * 1.5, 1.0)), rtol=RTOL)


def test_surface_metrics_reject_bad_input(xp):
    a = xp.zeros((2, 5, 5), dtype=xp.bool)
    with pytest.raises(ValueError, match="hausdorff_distance: true_mask must have the shape"):
        pl.hausdorff_distance(a, xp.zeros((2, 5, 4), dtype=xp.bool))
    with pytest.raises(ValueError, match="hausdorff_distance: percentile must be None or lie in"):
        pl.hausdorff_distance(a, a, percentile=101)
    with pytest.raises(ValueError, match="surface_dice: tolerance must be"):
        pl.surface_dice(a, a, tolerance=-1.0)
    with pytest.raises(ValueError, match="average_surface_distance: sampling must be"):
        pl.average_surface_distance(a, a, sampling=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="average_surface_distance: spatial_ndim must be"):
        pl.average_surface_distance(a, a, spatial_ndim=4)


# --------------------------------------------------------------------------- #
# Dice and IoU scores
# --------------------------------------------------------------------------- #


def overlap_ref(pred, true, c, ignore_index, per_image_, include_background, kind):
    """Per-class hard Dice/IoU by loops over classes and samples; 1 where a class is empty in both."""
    valid = np.ones(true.shape, bool) if ignore_index is None else true != ignore_index
    classes = range(0 if include_background else 1, c)
    groups = [slice(i, i + 1) for i in range(pred.shape[0])] if per_image_ else [slice(None)]
    out = np.zeros((len(groups), len(classes)))
    for g, sl in enumerate(groups):
        for j, k in enumerate(classes):
            p, t, v = pred[sl] == k, true[sl] == k, valid[sl]
            tp, fp, fn = (p & t & v).sum(), (p & ~t & v).sum(), (~p & t & v).sum()
            num, den = (2 * tp, 2 * tp + fp + fn) if kind == "dice" else (tp, tp + fp + fn)
            out[g, j] = 1.0 if den == 0 else num / den
    return out if per_image_ else out[0]


@pytest.mark.parametrize("kind", ["dice", "iou"])
@pytest.mark.parametrize("per_image_", [False, True])
@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("include_background", [True, False])
def test_overlap_scores_match_loops_on_label_maps(backend, rng, kind, per_image_, ignore_index, include_background):
    c = 5  # class 4 never appears: empty in both, scores 1
    true = rng.integers(0, 4, size=(3, 7, 9))
    pred = np.where(rng.random(true.shape) < 0.7, true, rng.integers(0, 4, size=true.shape))
    if ignore_index is not None:
        true[rng.random(true.shape) < 0.2] = ignore_index
    fn = pl.dice_score if kind == "dice" else pl.iou_score
    got = fn(backend.asarray(pred), backend.asarray(true), num_classes=c, ignore_index=ignore_index,
             per_image=per_image_, include_background=include_background)
    want = overlap_ref(pred, true, c, ignore_index, per_image_, include_background, kind)
    assert_close(got, want, rtol=1e-6)
    mean = fn(backend.asarray(pred), backend.asarray(true), num_classes=c, ignore_index=ignore_index,
              per_image=per_image_, include_background=include_background, reduction="mean")
    assert_close(mean, np.array(want.mean()), rtol=1e-6)


@pytest.mark.parametrize("class_axis", [1, -1])
def test_overlap_scores_on_masks_equal_label_maps(backend, rng, class_axis):
    true = rng.integers(0, 3, size=(2, 6, 5))
    pred = rng.integers(0, 3, size=(2, 6, 5))
    axis = 1 if class_axis == 1 else 3
    hot = lambda y: np.moveaxis(np.eye(3, dtype=bool)[y], -1, axis)  # noqa: E731
    for fn in (pl.dice_score, pl.iou_score):
        got = fn(backend.asarray(hot(pred)), backend.asarray(hot(true).astype(np.float64)), class_axis=class_axis,
                 reduction="sum")
        want = fn(backend.asarray(pred), backend.asarray(true), num_classes=3, reduction="sum")
        assert_close(got, to_numpy(want), rtol=1e-6)


def test_overlap_scores_empty_batch_and_all_ignored(backend):
    empty = backend.asarray(np.zeros((0, 4, 4), dtype=np.int64))
    assert_close(pl.dice_score(empty, empty, num_classes=2), np.ones(2))
    ignored = backend.asarray(np.full((1, 4, 4), 255))
    assert_close(pl.iou_score(ignored, ignored, num_classes=3, ignore_index=255), np.ones(3))


def test_overlap_scores_reject_bad_input(xp):
    a = xp.zeros((2, 5, 5), dtype=xp.int64)
    with pytest.raises(ValueError, match="dice_score: true must have the shape of pred"):
        pl.dice_score(a, xp.zeros((2, 5, 4), dtype=xp.int64), num_classes=2)
    with pytest.raises(ValueError, match="iou_score: ignore_index needs integer label maps"):
        pl.iou_score(a, a, ignore_index=0)
    with pytest.raises(TypeError, match="dice_score: pred must hold integer labels"):
        pl.dice_score(xp.zeros((2, 5, 5)), a, num_classes=2)
    with pytest.raises(ValueError, match="dice_score: reduction must be one of"):
        pl.dice_score(a, a, num_classes=2, reduction=None)


def test_overlap_scores_reject_labels_out_of_range(backend):
    if backend.is_jax:
        pytest.skip("value checks are skipped under jax.jit (every polyloss call is jitted in tests)")
    a = backend.asarray(np.zeros((2, 5, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="dice_score: true must lie in"):
        pl.dice_score(a, a + 3, num_classes=2)
    with pytest.raises(ValueError, match="iou_score: pred must lie in"):
        pl.iou_score(a - 1, a, num_classes=2)
