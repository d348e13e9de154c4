"""deep_supervision: weight schemes from nnU-Net's and MONAI's formulas, target resizing against NumPy loops."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function
from helpers import assert_close, random_labels, random_logits, to_numpy

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]
# deep_supervision builds a Python function; the loss it returns is jitted/compiled in the tests below
lazy_xp_function(pl.deep_supervision, jax_jit=False)


def scheme(name, levels):
    """nnU-Net: 1/2^i, last 0, normalised; MONAI DeepSupervisionLoss: same 1, exp max(0.5^i, 1/16), two 1 then 0.5."""
    if name == "nnunet":
        w = np.array([1 / 2**i for i in range(levels)])
        w[-1] = 0
        return w / w.sum()
    return np.array({"same": [1.0] * levels, "exp": [max(0.5**i, 0.0625) for i in range(levels)],
                     "two": [1.0] + [0.5] * (levels - 1)}[name])


def nearest_ref(y, size):
    """torch's "nearest-exact" along the trailing axes: source index floor((i + 0.5) * in / out)."""
    for k, n in enumerate(size):
        axis = y.ndim - len(size) + k
        m = y.shape[axis]
        idx = [min(math.floor((i + 0.5) * m / n), m - 1) for i in range(n)]
        y = np.take(y, idx, axis=axis)
    return y


def pool_ref(y, size, op):
    """Block max or mean over whole factors, by explicit loops over output pixels (2-D trailing axes)."""
    h, w = size
    fh, fw = y.shape[-2] // h, y.shape[-1] // w
    out = np.zeros((*y.shape[:-2], h, w), dtype=y.dtype if op == "max" else np.float64)
    for i in range(h):
        for j in range(w):
            block = y[..., i * fh : (i + 1) * fh, j * fw : (j + 1) * fw]
            out[..., i, j] = block.max(axis=(-2, -1)) if op == "max" else block.mean(axis=(-2, -1))
    return out


def pyramid(rng, n=2, c=3, size=(12, 8), levels=4, class_axis=1):
    preds = []
    for i in range(levels):
        h, w = size[0] // 2**i, size[1] // 2**i
        x = random_logits(rng, (n, c, h, w))
        preds.append(x if class_axis == 1 else np.moveaxis(x, 1, -1))
    return preds


@pytest.mark.parametrize("weights", ["nnunet", "same", "exp", "two"])
@pytest.mark.parametrize("resize", ["nearest", "max"])
def test_weighted_sum_of_resized_levels(backend, rng, weights, resize):
    preds = pyramid(rng, levels=4, size=(16, 8))
    y = random_labels(rng, (2, 16, 8), 3)
    loss = pl.deep_supervision(pl.dice_loss, weights=weights, resize=resize)
    got = loss([backend.asarray(p) for p in preds], backend.asarray(y))
    w = scheme(weights, 4)
    want = 0.0
    for wi, p in zip(w, preds, strict=True):
        size = p.shape[2:]
        yi = nearest_ref(y, size) if resize == "nearest" else pool_ref(y, size, "max")
        want += wi * float(to_numpy(pl.dice_loss(p, yi)))  # the NumPy backend's dice_loss is tested in test_region
    assert_close(got, np.array(want), rtol=1e-9)


def test_soft_targets_average_pool_channels_last(backend, rng):
    preds = pyramid(rng, c=2, size=(12, 8), levels=3, class_axis=-1)
    t = rng.random((2, 12, 8, 1))
    t = np.concatenate([t, 1 - t], axis=-1)
    loss = pl.deep_supervision(functools.partial(pl.cross_entropy, class_axis=-1), weights=[1.0, 0.3, 0.2],
                               class_axis=-1)
    got = loss([backend.asarray(p) for p in preds], backend.asarray(t))
    want = 0.0
    for wi, p in zip([1.0, 0.3, 0.2], preds, strict=True):
        ti = np.moveaxis(pool_ref(np.moveaxis(t, -1, 1), p.shape[1:3], "mean"), 1, -1)
        want += wi * float(to_numpy(pl.cross_entropy(p, ti, class_axis=-1)))
    assert_close(got, np.array(want), rtol=1e-9)


def test_nearest_handles_non_integer_factors_and_prepared_targets(backend, rng):
    preds = [random_logits(rng, (1, 2, 9, 7)), random_logits(rng, (1, 2, 5, 4))]
    y = random_labels(rng, (1, 9, 7), 2)
    loss = pl.deep_supervision(pl.jaccard_loss, weights="same")
    got = loss([backend.asarray(p) for p in preds], backend.asarray(y))
    targets = [y, nearest_ref(y, (5, 4))]
    want = sum(float(to_numpy(pl.jaccard_loss(p, t))) for p, t in zip(preds, targets, strict=True))
    assert_close(got, np.array(want), rtol=1e-9)
    # targets already resized per level (nnU-Net's layout) give the same
    again = loss([backend.asarray(p) for p in preds], [backend.asarray(t) for t in targets])
    assert_close(again, np.array(want), rtol=1e-9)
    # a single prediction passes through
    assert_close(loss(backend.asarray(preds[0]), backend.asarray(y)), to_numpy(pl.jaccard_loss(preds[0], y)),
                 rtol=1e-9)


def test_gradient_matches_finite_differences(backend, rng):
    preds = pyramid(rng, n=1, c=2, size=(6, 4), levels=2)
    y = backend.asarray(random_labels(rng, (1, 6, 4), 2))
    low = backend.asarray(preds[1])
    loss = pl.deep_supervision(pl.dice_cross_entropy_loss, weights="two")
    backend.check_grad(lambda x: loss([x, low], y), preds[0])


def test_jit_and_compile_equal_eager(backend, rng):
    preds = pyramid(rng, levels=3, size=(12, 8))
    y = backend.asarray(random_labels(rng, (2, 12, 8), 3))
    xs = [backend.asarray(p) for p in preds]
    loss = pl.deep_supervision(pl.dice_loss, weights="exp", resize="max")
    eager = to_numpy(loss(xs, y))
    if backend.is_jax:
        import jax

        assert_close(jax.jit(loss)(xs, y), eager, rtol=1e-9)
    elif backend.is_torch:
        import torch

        torch._dynamo.reset()
        compiled = torch.compile(loss, fullgraph=True, backend="aot_eager")
        assert_close(compiled(xs, y), eager, rtol=1e-9)
    else:
        pytest.skip(f"{backend.name} has no compiler")


def test_bad_input(xp):
    with pytest.raises(ValueError, match="deep_supervision: weights must be one of"):
        pl.deep_supervision(pl.dice_loss, weights="linear")
    with pytest.raises(ValueError, match="deep_supervision: resize must be one of"):
        pl.deep_supervision(pl.dice_loss, resize="bilinear")
    with pytest.raises(TypeError, match="deep_supervision: loss_fn must be callable"):
        pl.deep_supervision("dice")
    preds = [xp.zeros((1, 2, 8, 8)), xp.zeros((1, 2, 3, 3))]
    y = xp.zeros((1, 8, 8), dtype=xp.int64)
    with pytest.raises(ValueError, match="deep_supervision: weights must have one entry per prediction"):
        pl.deep_supervision(pl.dice_loss, weights=[1.0])(preds, y)
    with pytest.raises(ValueError, match="deep_supervision: resize='max' pools by whole factors"):
        pl.deep_supervision(pl.dice_loss, resize="max")(preds, y)
    with pytest.raises(ValueError, match="deep_supervision: resize='avg' needs a floating y_true"):
        pl.deep_supervision(pl.dice_loss, resize="avg")(preds, y)
