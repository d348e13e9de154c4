"""Surface metrics and deep supervision against MONAI itself (``pip install monai``)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, random_labels, random_logits

import polyloss as pl

torch = pytest.importorskip("torch")
metrics = pytest.importorskip("monai.metrics")
monai_losses = pytest.importorskip("monai.losses")
ndimage = pytest.importorskip("scipy.ndimage")


def blobs(rng, shape, share=0.35):
    """One-hot-like masks (N, C, *spatial) with structure: thresholded smoothed noise, every image non-empty."""
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma=[0, 0] + [1.0] * (len(shape) - 2))
    masks = noise > np.quantile(noise, 1 - share)
    masks[(..., *([0] * (len(shape) - 2)))] = True  # MONAI returns NaN/inf for empty masks; we document 0/diagonal
    return masks


# MONAI computes distances in float32
RTOL = 1e-5
SETTINGS = [((2, 3, 17, 15), None), ((2, 2, 16, 13), (0.8, 1.7)), ((1, 2, 9, 10, 8), (1.0, 2.0, 0.5))]


@pytest.mark.parametrize(("shape", "spacing"), SETTINGS)
@pytest.mark.parametrize("percentile", [None, 95])
@pytest.mark.parametrize("directed", [False, True])
def test_hausdorff_distance_equals_monai(backend, rng, shape, spacing, percentile, directed):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    want = metrics.compute_hausdorff_distance(torch.tensor(pred), torch.tensor(true), include_background=True,
                                              percentile=percentile, directed=directed, spacing=spacing).numpy()
    got = pl.hausdorff_distance(backend.asarray(pred), backend.asarray(true), percentile=percentile,
                                directed=directed, sampling=spacing, spatial_ndim=len(shape) - 2)
    assert_close(got, want, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize(("shape", "spacing"), SETTINGS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_average_surface_distance_equals_monai(backend, rng, shape, spacing, symmetric):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    want = metrics.compute_average_surface_distance(torch.tensor(pred), torch.tensor(true), include_background=True,
                                                    symmetric=symmetric, spacing=spacing).numpy()
    got = pl.average_surface_distance(backend.asarray(pred), backend.asarray(true), symmetric=symmetric,
                                      sampling=spacing, spatial_ndim=len(shape) - 2)
    assert_close(got, want, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize(("shape", "spacing"), SETTINGS)
@pytest.mark.parametrize("tolerance", [0.0, 1.0, 2.0])
def test_surface_dice_equals_monai(backend, rng, shape, spacing, tolerance):
    pred, true = blobs(rng, shape), blobs(rng, shape)
    want = metrics.compute_surface_dice(torch.tensor(pred), torch.tensor(true), [tolerance] * shape[1],
                                        include_background=True, spacing=spacing).numpy()
    got = pl.surface_dice(backend.asarray(pred), backend.asarray(true), tolerance=tolerance, sampling=spacing,
                          spatial_ndim=len(shape) - 2)
    assert_close(got, want, rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("weight_mode", ["same", "exp", "two"])
@pytest.mark.parametrize("levels", [1, 3, 6])
def test_deep_supervision_equals_monai(backend, rng, weight_mode, levels):
    """MONAI resizes the one-hot target with "nearest-exact"; ours resizes the labels the same way."""
    c = 3
    preds = [random_logits(rng, (2, c, 64 // 2**i, 48 // 2**i)) for i in range(levels)]
    labels = random_labels(rng, (2, 64, 48), c)
    dice = monai_losses.DiceLoss(softmax=True, to_onehot_y=True, smooth_nr=1e-5, smooth_dr=1e-5)
    monai = monai_losses.DeepSupervisionLoss(dice, weight_mode=weight_mode)
    want = monai([torch.tensor(p) for p in preds], torch.tensor(labels[:, None]).double()).numpy()
    ours = pl.deep_supervision(lambda x, y: pl.dice_loss(x, y, smooth=1e-5, per_image=True), weights=weight_mode)
    got = ours([backend.asarray(p) for p in preds], backend.asarray(labels))
    assert_close(got, want, rtol=1e-5)  # MONAI casts every prediction to float32 (``input.float()``)
