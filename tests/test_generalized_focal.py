"""Quality Focal, Distribution Focal and Varifocal losses against float64 references written from the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, to_numpy

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

REDUCTIONS = ["mean", "sum", "none"]

# --------------------------------------------------------------------------- #
# float64 references, one element at a time
# --------------------------------------------------------------------------- #


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _bce(x, y):
    """-(y log p + (1 - y) log(1 - p)) in float64 (inputs kept away from saturation)."""
    p = _sigmoid(x)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def qfl_ref(x, y, beta):  # Li et al. 2020, eq. (5)
    return abs(y - _sigmoid(x)) ** beta * _bce(x, y)


def vfl_ref(x, q, alpha, gamma):  # Zhang et al. 2021, eq. (2)
    p = _sigmoid(x)
    if q > 0:
        return -q * (q * math.log(p) + (1 - q) * math.log(1 - p))
    return -alpha * p**gamma * math.log(1 - p)


def dfl_ref(logits, y):  # Li et al. 2020, eq. (6)
    e = np.exp(logits - logits.max())
    s = e / e.sum()
    i = min(math.floor(y), len(logits) - 2)
    return -((i + 1 - y) * math.log(s[i]) + (y - i) * math.log(s[i + 1]))


def elementwise(ref, *arrays, **options):
    flat = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    return np.array([ref(*vals, **options) for vals in zip(*flat, strict=True)]).reshape(np.shape(arrays[0]))


def reduce_ref(loss, reduction, weight=None, avg_factor=None):
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if avg_factor is not None:
        return loss.sum() / (avg_factor if avg_factor else 1.0)
    return loss.mean() if loss.size else 0.0


def soft_targets(rng, shape, positives=0.3):
    """IoU-like targets: a share of entries in (0, 1], the rest 0."""
    return np.where(rng.random(shape) < positives, rng.uniform(0.05, 1.0, size=shape), 0.0)


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [2.0, 0.5])
def test_quality_focal_matches_reference(backend, rng, reduction, beta):
    x = rng.normal(scale=2.0, size=(11, 3))
    y = soft_targets(rng, (11, 3))
    got = pl.quality_focal_loss(backend.asarray(x), backend.asarray(y), beta=beta, reduction=reduction)
    assert_close(got, reduce_ref(elementwise(qfl_ref, x, y, beta=beta), reduction), rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_varifocal_matches_reference(backend, rng, reduction):
    x = rng.normal(scale=2.0, size=(13, 4))
    q = soft_targets(rng, (13, 4))
    got = pl.varifocal_loss(backend.asarray(x), backend.asarray(q), alpha=0.6, gamma=1.5, reduction=reduction)
    assert_close(got, reduce_ref(elementwise(vfl_ref, x, q, alpha=0.6, gamma=1.5), reduction), rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_distribution_focal_matches_reference(backend, rng, reduction):
    n = 9
    logits = rng.normal(size=(7, 4, n))
    y = rng.uniform(0, n - 1, size=(7, 4))
    y[0, :3] = [0.0, n - 1.0, 3.0]  # the ends of the range and a target on a bin
    want = np.array([dfl_ref(logits[idx], y[idx]) for idx in np.ndindex(y.shape)]).reshape(y.shape)
    got = pl.distribution_focal_loss(backend.asarray(logits), backend.asarray(y), reduction=reduction)
    assert_close(got, reduce_ref(want, reduction), rtol=1e-10)


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss", "distribution_focal_loss"])
def test_weight_and_avg_factor(backend, rng, name):
    """weight broadcasts per anchor; avg_factor replaces the element count of the mean (0 divides by 1)."""
    f = getattr(pl, name)
    if name == "distribution_focal_loss":
        x, y = rng.normal(size=(6, 4, 5)), rng.uniform(0, 4, size=(6, 4))
    else:
        x, y = rng.normal(size=(6, 4)), soft_targets(rng, (6, 4))
    w = rng.random((6, 1))
    xs, ys, ws = backend.asarray(x), backend.asarray(y), backend.asarray(w)
    per_element = to_numpy(f(xs, ys, reduction="none"))
    assert_close(f(xs, ys, weight=ws, reduction="none"), per_element * w, rtol=1e-12)
    assert_close(f(xs, ys, weight=ws, avg_factor=3.5), (per_element * w).sum() / 3.5, rtol=1e-12)
    assert_close(f(xs, ys, avg_factor=backend.asarray(np.array(2.0))), per_element.sum() / 2.0, rtol=1e-12)
    assert_close(f(xs, ys, avg_factor=0), per_element.sum(), rtol=1e-12)


# --------------------------------------------------------------------------- #
# Identities from the papers
# --------------------------------------------------------------------------- #


def test_quality_focal_with_beta_zero_is_binary_cross_entropy(backend, rng):
    x, y = rng.normal(scale=3.0, size=(5, 7)), rng.random((5, 7))
    xs, ys = backend.asarray(x), backend.asarray(y)
    want = pl.binary_cross_entropy(xs, ys, reduction="none")
    assert_close(pl.quality_focal_loss(xs, ys, beta=0.0, reduction="none"), to_numpy(want), rtol=1e-12)


def test_varifocal_at_hard_targets(backend, rng):
    """q = 1: BCE of the positive; q = 0: the focal loss of a negative with alpha there = 1 - alpha here."""
    x = backend.asarray(rng.normal(scale=3.0, size=(4, 6)))
    ones, zeros = backend.asarray(np.ones((4, 6))), backend.asarray(np.zeros((4, 6)))
    assert_close(pl.varifocal_loss(x, ones, reduction="none"),
                 to_numpy(pl.binary_cross_entropy(x, ones, reduction="none")), rtol=1e-12)
    assert_close(pl.varifocal_loss(x, zeros, alpha=0.75, gamma=2.0, reduction="none"),
                 to_numpy(pl.sigmoid_focal_loss(x, zeros, alpha=0.25, gamma=2.0, reduction="none")), rtol=1e-12)


def test_integral_decode_inverts_distribution_focal(backend, rng):
    """The two-bin distribution (y_{i+1} - y, y - y_i) decodes to y and is where DFL is stationary."""
    n = 8
    y = rng.uniform(0, n - 1, size=(5,))
    y[0] = n - 1.0
    left = np.minimum(np.floor(y), n - 2).astype(int)
    dist = np.full((5, n), 1e-300)
    dist[np.arange(5), left] = left + 1 - y
    dist[np.arange(5), left + 1] += y - left
    logits = np.log(np.maximum(dist, 1e-300))
    assert_close(pl.integral_decode(backend.asarray(logits)), y, rtol=1e-12, atol=1e-12)
    want = np.array([(np.exp(r - r.max()) / np.exp(r - r.max()).sum() * np.arange(n)).sum() for r in logits])
    assert_close(pl.integral_decode(backend.asarray(logits)), want, rtol=1e-12)
    if backend.has_autodiff:
        ys = backend.asarray(y)
        _, grad = backend.value_and_grad(lambda x: pl.distribution_focal_loss(x, ys, reduction="sum"),
                                         backend.asarray(np.log(dist + 1e-12)))
        np.testing.assert_allclose(grad, 0.0, atol=1e-9)


def test_integral_decode_matches_reference_on_random_logits(backend, rng):
    logits = rng.normal(size=(3, 4, 17))
    e = np.exp(logits - logits.max(-1, keepdims=True))
    assert_close(pl.integral_decode(backend.asarray(logits)), (e / e.sum(-1, keepdims=True) * np.arange(17)).sum(-1),
                 rtol=1e-12)


# --------------------------------------------------------------------------- #
# Gradients, saturation, empty inputs, dtypes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss", "distribution_focal_loss", "integral_decode"])
def test_gradients_match_finite_differences(backend, rng, name):
    f = getattr(pl, name)
    if name == "integral_decode":
        backend.check_grad(lambda x: f(x).sum(), rng.normal(size=(3, 6)))
        return
    if name == "distribution_focal_loss":
        x, y = rng.normal(size=(3, 2, 6)), rng.uniform(0, 5, size=(3, 2))
    else:
        x, y = rng.normal(scale=2.0, size=(4, 3)), soft_targets(rng, (4, 3), positives=0.5)
    ys = backend.asarray(y)
    backend.check_grad(lambda v: f(v, ys, reduction="sum"), x)


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss"])
@pytest.mark.parametrize("exponent", [2.0, 0.5])
def test_saturated_logits_stay_finite(backend, name, exponent):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    key = "beta" if name == "quality_focal_loss" else "gamma"
    f = getattr(pl, name)
    ys = backend.asarray(y)
    value = f(backend.asarray(x), ys, reduction="none", **{key: exponent})
    assert_finite(value)
    assert_close(value[:2], np.zeros(2), atol=1e-12)  # right and certain: no loss
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda v: f(v, ys, reduction="sum", **{key: exponent}), backend.asarray(x))
        assert_finite(grad)


def test_distribution_focal_saturated_logits_stay_finite(backend):
    logits = np.array([[1e4, -1e4, -1e4, 0.0], [-1e4, -1e4, 1e4, -1e4]])
    y = backend.asarray(np.array([0.0, 2.5]))
    assert_finite(pl.distribution_focal_loss(backend.asarray(logits), y, reduction="none"))
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda v: pl.distribution_focal_loss(v, y), backend.asarray(logits))
        assert_finite(grad)


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss", "distribution_focal_loss"])
def test_empty_input(backend, name):
    f = getattr(pl, name)
    x = backend.asarray(np.zeros((0, 5)))
    y = backend.asarray(np.zeros((0,) if name == "distribution_focal_loss" else (0, 5)))
    assert_close(f(x, y), np.array(0.0))
    assert_close(f(x, y, avg_factor=0.0), np.array(0.0))
    assert tuple(f(x, y, reduction="none").shape) == tuple(y.shape)
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda v: f(v, y), x)
        assert value == 0.0 and grad.shape == (0, 5)


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss"])
def test_dtype_is_kept(backend, rng, name):
    x, y = rng.normal(size=(4, 3)).astype(np.float32), soft_targets(rng, (4, 3)).astype(np.float32)
    got = getattr(pl, name)(backend.asarray(x), backend.asarray(y))
    assert got.dtype == backend.float_dtype("float32")
    assert_close(got, elementwise(qfl_ref if name == "quality_focal_loss" else vfl_ref, x, y,
                                  **({"beta": 2.0} if name == "quality_focal_loss" else {"alpha": 0.75, "gamma": 2.0})
                                  ).mean(), rtol=1e-5)


# --------------------------------------------------------------------------- #
# Errors name the function and the argument
# --------------------------------------------------------------------------- #


def test_errors(backend):
    x, y = backend.asarray(np.zeros((3, 4))), backend.asarray(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="quality_focal_loss: y_true must have the shape"):
        pl.quality_focal_loss(x, backend.asarray(np.zeros((3, 5))))
    with pytest.raises(ValueError, match="quality_focal_loss: beta must be >= 0"):
        pl.quality_focal_loss(x, y, beta=-1.0)
    with pytest.raises(ValueError, match="varifocal_loss: alpha must lie in"):
        pl.varifocal_loss(x, y, alpha=1.5)
    with pytest.raises(ValueError, match="varifocal_loss: reduction must be one of"):
        pl.varifocal_loss(x, y, reduction=None)
    with pytest.raises(ValueError, match="varifocal_loss: avg_factor applies to reduction='mean' only"):
        pl.varifocal_loss(x, y, reduction="sum", avg_factor=2.0)
    with pytest.raises(ValueError, match="quality_focal_loss: avg_factor must be >= 0"):
        pl.quality_focal_loss(x, y, avg_factor=-1.0)
    with pytest.raises(ValueError, match=r"quality_focal_loss: weight must broadcast to the loss shape \(3, 4\)"):
        pl.quality_focal_loss(x, y, weight=backend.asarray(np.ones((3, 2))))
    with pytest.raises(TypeError, match="quality_focal_loss: y_pred must have a real floating dtype"):
        pl.quality_focal_loss(backend.asarray(np.zeros((3, 4), dtype=np.int64)), y)
    with pytest.raises(ValueError, match="distribution_focal_loss: y_pred must have shape"):
        pl.distribution_focal_loss(backend.asarray(np.zeros((3, 1))), backend.asarray(np.zeros(3)))
    with pytest.raises(ValueError, match="distribution_focal_loss: y_true must have the shape of y_pred without"):
        pl.distribution_focal_loss(x, y)
    with pytest.raises(TypeError, match="integral_decode: y_pred must have a real floating dtype"):
        pl.integral_decode(backend.asarray(np.zeros((3, 4), dtype=np.int64)))


def test_value_checks_run_on_concrete_arrays(backend):
    # the defining module's functions: concrete on JAX too (the JAX session patches pl.<name> into jax.jit)
    from polyloss.detection import generalized_focal as gf

    x = backend.asarray(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"distribution_focal_loss: y_true must lie in \[0, 4\]"):
        gf.distribution_focal_loss(x, backend.asarray(np.array([1.0, 4.5])))
    with pytest.raises(ValueError, match="quality_focal_loss: avg_factor must be >= 0"):
        gf.quality_focal_loss(x, x, avg_factor=backend.asarray(np.asarray(-1.0)))


@pytest.mark.parametrize("name", ["quality_focal_loss", "varifocal_loss"])
@pytest.mark.parametrize("bad", [2.0, 255.0, -1.0])
def test_quality_targets_outside_the_unit_interval_are_an_error(backend, name, bad):
    """IoU quality scores lie in [0, 1]; 2.0 and 255 gave -3.24 and -4.9e7 (issue 18, defect 8)."""
    from polyloss.detection import generalized_focal as gf

    x = backend.asarray(np.zeros((2, 3)))
    y = np.zeros((2, 3))
    y[1, 2] = bad
    with pytest.raises(ValueError, match=rf"{name}: y_true must lie in \[0, 1\] \(IoU quality scores\)"):
        getattr(gf, name)(x, backend.asarray(y))
    with pytest.raises(ValueError, match=rf"{name}: y_true must lie in \[0, 1\]"):  # integer targets too
        getattr(gf, name)(x, backend.asarray(np.where(y != 0, 255, 0)))


def test_distribution_focal_nan_target_gives_nan(backend, rng):
    """NaN in, NaN out: NaN raised IndexError on NumPy and read bin -2^63 on torch."""
    from polyloss.detection import generalized_focal as gf

    logits = rng.normal(size=(3, 4, 6))
    y = rng.uniform(0, 5, size=(3, 4))
    y[1, 2] = np.nan
    got = to_numpy(gf.distribution_focal_loss(backend.asarray(logits), backend.asarray(y), reduction="none"))
    assert np.isnan(got[1, 2]) and np.isnan(got).sum() == 1
    want = np.array([[dfl_ref(logits[i, j], y[i, j]) if not np.isnan(y[i, j]) else 0.0 for j in range(4)]
                     for i in range(3)])
    assert_close(np.where(np.isnan(y), 0.0, got), want, rtol=1e-10)
    assert np.isnan(to_numpy(gf.distribution_focal_loss(backend.asarray(logits), backend.asarray(y))))
