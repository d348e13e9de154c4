"""Properties of the segmentation losses over random shapes, dtypes and masks (hypothesis).

How many examples, and whether derandomized, is the loaded hypothesis profile's
(tests/conftest.py): ``ci`` and the default take a fixed sequence per test (CI
never depends on the clock) of 25 examples per test and backend, or 12 in a
session that runs JAX, whose eager mode compiles each primitive per shape;
``--hypothesis-profile=slow`` sweeps many more. Shapes
include empty batches, empty spatial axes and 1x1 images; label dtypes every
integer width the backend has; prediction dtypes half to double; masks with
nothing, some or everything ignored. The losses run eagerly here (no
``lazy_xp_modules``): ``jax.jit`` is covered by the family modules.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_numpy

import polyloss as pl

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# max_examples and derandomize: the profile loaded by tests/conftest.py (or --hypothesis-profile)
SETTINGS = settings(deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

REGION = ["dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss", "generalized_dice_loss",
          "log_cosh_dice_loss", "mcc_loss"]
COMPOUND = ["dice_cross_entropy_loss", "dice_focal_loss", "combo_loss", "bce_jaccard_loss"]
PIXEL = ["cross_entropy", "softmax_focal_loss", "poly1_cross_entropy"]
MULTICLASS = [*PIXEL, "lovasz_softmax_loss", *REGION, *COMPOUND]
IGNORE = 255
LABEL_DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64"]
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]


@st.composite
def problems(draw, *, min_n=0, min_side=0):
    """Logits (N, C, H, W) float64, labels (N, H, W) int64 in [0, C) or IGNORE, and the ignore mode."""
    # a few sizes per axis (0, 1 and odd ones): JAX compiles each primitive once per shape
    n = draw(st.sampled_from([v for v in (0, 1, 2) if v >= min_n]))
    c = draw(st.sampled_from([2, 3]))
    h, w = draw(st.sampled_from([v for v in (0, 1, 3) if v >= min_side])), draw(st.sampled_from([1, 4]))
    seed = draw(st.integers(0, 2**32 - 1))
    ignore = draw(st.sampled_from(["none", "some", "all"]))
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=3.0, size=(n, c, h, w))
    y = rng.integers(0, c, size=(n, h, w))
    if ignore == "some":
        y = np.where(rng.random(y.shape) < 0.3, IGNORE, y)
    elif ignore == "all":
        y = np.full(y.shape, IGNORE)
    return x, y, ignore


def _call(name, backend, x, y, ignore, **options):
    if ignore != "none":
        options["ignore_index"] = IGNORE
    return getattr(pl, name)(x, backend.asarray(y), **options)


def _has(backend, dtype):
    return hasattr(backend.xp, dtype) and not (backend.name == "array_api_strict" and dtype in ("float16", "bfloat16"))


@SETTINGS
@given(data=st.data(), problem=problems(), name=st.sampled_from([*MULTICLASS, "lovasz_hinge_loss"]),
       dtype=st.sampled_from(FLOAT_DTYPES))
def test_value_and_gradient_are_finite(backend, data, problem, name, dtype):
    if not _has(backend, dtype):
        return
    x, y, ignore = problem
    if name == "lovasz_hinge_loss":
        y = np.where(y == IGNORE, IGNORE, y % 2)[:, None].repeat(x.shape[1], axis=1)
    xd = backend.asarray(x, dtype=backend.float_dtype(dtype))
    f = lambda z: _call(name, backend, z, y, ignore)  # noqa: E731
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(f, xd)
        assert np.all(np.isfinite(grad.astype(np.float64))), (name, grad)
    else:
        value = to_numpy(f(xd))
    assert np.isfinite(float(value)), (name, value)
    if ignore == "all" or 0 in x.shape:
        assert float(value) == 0


@SETTINGS
@given(problem=problems(), name=st.sampled_from(["dice_loss", "jaccard_loss", "tversky_loss"]),
       per_image=st.booleans())
def test_region_indices_lie_in_the_unit_interval(backend, problem, name, per_image):
    x, y, ignore = problem
    loss = to_numpy(_call(name, backend, backend.asarray(x), y, ignore, per_image=per_image, reduction="none"))
    assert np.all((loss >= 0) & (loss <= 1)), loss


@SETTINGS
@given(problem=problems(min_n=1, min_side=1), name=st.sampled_from([*REGION, *COMPOUND, "lovasz_softmax_loss"]))
def test_a_perfect_prediction_gives_the_minimum(backend, problem, name):
    x, y, ignore = problem
    c = x.shape[1]
    perfect = np.where(np.arange(c)[None, :, None, None] == y[:, None], 30.0, -30.0)
    best = float(to_numpy(_call(name, backend, backend.asarray(perfect), y, ignore)))
    other = float(to_numpy(_call(name, backend, backend.asarray(x), y, ignore)))
    assert best <= other + 1e-9
    if name != "mcc_loss":  # MCC with smooth in all four cells scores absent classes 1/2 (conventions.md)
        assert best < 1e-6


@SETTINGS
@given(problem=problems(min_n=1), name=st.sampled_from(MULTICLASS), seed=st.integers(0, 2**32 - 1))
def test_pixel_permutation_invariance(backend, problem, name, seed):
    x, y, ignore = problem
    n, c, h, w = x.shape
    order = np.random.default_rng(seed).permutation(h * w)
    xp_ = x.reshape(n, c, -1)[..., order].reshape(n, c, h, w)
    yp = y.reshape(n, -1)[:, order].reshape(n, h, w)
    a = to_numpy(_call(name, backend, backend.asarray(x), y, ignore))
    b = to_numpy(_call(name, backend, backend.asarray(xp_), yp, ignore))
    np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)  # float64: summation order only


@SETTINGS
@given(problem=problems(min_n=1), name=st.sampled_from([*REGION, "lovasz_softmax_loss", "lovasz_hinge_loss"]))
def test_per_image_is_the_mean_of_single_image_losses(backend, problem, name):
    x, y, ignore = problem
    if name == "lovasz_hinge_loss":
        x, y = x[:, :1], np.where(y == IGNORE, IGNORE, y % 2)[:, None]
    together = float(to_numpy(_call(name, backend, backend.asarray(x), y, ignore, per_image=True)))
    single = [float(to_numpy(_call(name, backend, backend.asarray(x[i:i + 1]), y[i:i + 1], ignore, per_image=False)))
              for i in range(x.shape[0])]
    np.testing.assert_allclose(together, np.mean(single), rtol=1e-9, atol=1e-12)


@SETTINGS
@given(problem=problems(), name=st.sampled_from(MULTICLASS), dtype=st.sampled_from(LABEL_DTYPES))
def test_label_dtype_never_changes_the_result(backend, problem, name, dtype):
    if not hasattr(backend.xp, dtype):
        return
    x, y, ignore = problem
    if ignore != "none" and dtype == "int8":
        y = np.where(y == IGNORE, 127, y)
        ignore_value = 127
    else:
        ignore_value = IGNORE
    options = {} if ignore == "none" else {"ignore_index": ignore_value}
    f = getattr(pl, name)
    want = to_numpy(f(backend.asarray(x), backend.asarray(y), **options))
    got = to_numpy(f(backend.asarray(x), backend.asarray(y, dtype=getattr(backend.xp, dtype)), **options))
    np.testing.assert_array_equal(got, want)


@SETTINGS
@given(problem=problems(min_n=1, min_side=1), name=st.sampled_from([*MULTICLASS, "lovasz_hinge_loss"]),
       seed=st.integers(0, 2**32 - 1))
def test_nan_in_gives_nan_out(backend, problem, name, seed):
    x, y, _ = problem
    y = np.where(y == IGNORE, 0, y)  # every pixel valid: a NaN at an ignored pixel is legitimately left out
    if name == "lovasz_hinge_loss":
        x, y = x[:, :1], y[:, None] % 2
    x = x.copy()
    x.reshape(-1)[np.random.default_rng(seed).integers(x.size)] = np.nan
    assert np.isnan(float(to_numpy(getattr(pl, name)(backend.asarray(x), backend.asarray(y)))))


SIGMOID_PIXEL = ["binary_cross_entropy", "balanced_binary_cross_entropy", "sigmoid_focal_loss", "poly1_focal_loss",
                 "lovasz_hinge_loss"]


@SETTINGS
@given(problem=problems(), name=st.sampled_from([*REGION, *COMPOUND, *SIGMOID_PIXEL]),
       mode=st.sampled_from(["binary", "multilabel"]), kind=st.sampled_from(["float", "bool", "int"]),
       soft=st.booleans())
def test_sigmoid_modes_are_finite_and_a_perfect_prediction_is_best(backend, problem, name, mode, kind, soft):
    x, y, ignore = problem
    t = np.moveaxis(np.eye(x.shape[1])[np.where(y == IGNORE, 0, y)], -1, 1)  # (N, C, H, W) one-hot
    if mode == "binary":
        x, t = x[:, :1], t[:, :1]
    if kind == "float" and soft:
        t = t * 0.8 + 0.1
    target = {"float": t, "bool": t > 0.5, "int": t.astype(np.int64)}[kind]
    options = {} if name in SIGMOID_PIXEL else {"mode": mode}
    if kind == "int" and ignore != "none" and name not in SIGMOID_PIXEL[:4]:
        target = np.where((y == IGNORE)[:, None], -1, target)
        options["ignore_index"] = -1
    f = getattr(pl, name)
    yy = backend.asarray(target)
    value = f(backend.asarray(x), yy, **options)
    assert np.isfinite(float(to_numpy(value)))
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda z: f(z, yy, **options), backend.asarray(x))
        assert np.all(np.isfinite(grad))
    if name in [*REGION, *COMPOUND] and name != "mcc_loss" and 0 not in x.shape and not (kind == "float" and soft):
        perfect = np.where(t > 0.5, 30.0, -30.0)
        assert float(to_numpy(f(backend.asarray(perfect), yy, **options))) < 1e-6
