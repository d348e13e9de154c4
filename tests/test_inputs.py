"""Hostile input to the segmentation losses (issue 9): every case a real data pipeline produces.

This module does not declare ``lazy_xp_modules``: on JAX the losses run
eagerly on concrete arrays, which are value-checked like NumPy's; the
``jax.jit`` cases call ``jax.jit`` themselves.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from helpers import assert_close, random_binary, random_labels, random_logits, to_numpy

import polyloss as pl

N, C, H, W = 2, 3, 5, 4

SIGMOID = ["binary_cross_entropy", "balanced_binary_cross_entropy", "sigmoid_focal_loss", "poly1_focal_loss",
           "lovasz_hinge_loss"]
REGION = ["dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss", "generalized_dice_loss",
          "log_cosh_dice_loss", "mcc_loss"]
COMPOUND = ["dice_cross_entropy_loss", "dice_focal_loss", "combo_loss", "bce_jaccard_loss"]
MULTICLASS = ["cross_entropy", "softmax_focal_loss", "poly1_cross_entropy", "lovasz_softmax_loss", *REGION,
              *COMPOUND]


def _value_and_grad(backend, f, x):
    """``f(x)`` and its gradient (NumPy); the gradient is None without autodiff."""
    if backend.has_autodiff:
        return backend.value_and_grad(f, backend.asarray(x))
    return to_numpy(f(backend.asarray(x))), None


# --------------------------------------------------------------------------- #
# item 1: targets outside {0, 1} / [0, 1] in every sigmoid-mode loss
# --------------------------------------------------------------------------- #

SIGMOID_CASES = [(name, {}) for name in SIGMOID] + [
    (name, {"mode": mode}) for name in [*REGION, *COMPOUND] for mode in ("binary", "multilabel")
]


@pytest.mark.parametrize(("name", "options"), SIGMOID_CASES, ids=[f"{n}-{o.get('mode', '')}" for n, o in SIGMOID_CASES])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_sigmoid_targets_outside_unit_interval_are_rejected(backend, rng, name, options, dtype):
    """A 0/255 mask (integer or floating) is a ValueError naming the function, the value and the fix."""
    channels = 1 if options.get("mode") != "multilabel" else C
    x = random_logits(rng, (N, channels, H, W))
    mask = (random_binary(rng, (N, channels, H, W)) * 255).astype(dtype)
    mask.reshape(-1)[0] = 255
    with pytest.raises(ValueError, match=rf"{name}: y_true must .* found 255.*`y_true > 0`"):
        getattr(pl, name)(backend.asarray(x), backend.asarray(mask), **options)


# --------------------------------------------------------------------------- #
# item 2: narrow label dtypes never wrap class ids
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss", "lovasz_softmax_loss", "dice_loss",
                                  "dice_cross_entropy_loss", "combo_loss"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16"])
def test_narrow_label_dtypes_with_many_classes_equal_int64(backend, rng, name, dtype):
    if dtype == "uint16" and backend.name == "torch" and not hasattr(backend.xp, "uint16"):
        pytest.skip("torch has no uint16 here")
    classes = 300
    x = random_logits(rng, (1, classes, 4, 4))
    high = 256 if dtype == "uint8" else classes
    labels = rng.integers(0, high, size=(1, 4, 4))
    labels[0, 0, 0] = high - 1
    f = getattr(pl, name)
    want = f(backend.asarray(x), backend.asarray(labels))
    got = f(backend.asarray(x), backend.asarray(labels.astype(dtype)))
    assert_close(got, to_numpy(want), rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- #
# item 4: empty batches and empty spatial axes
# --------------------------------------------------------------------------- #


def _empty_inputs(name, shape):
    x = np.zeros(shape)
    if name == "lovasz_hinge_loss":
        return x, np.zeros(shape)
    return x, np.zeros(shape[:1] + shape[2:], dtype=np.int64)


@pytest.mark.parametrize("name", [*MULTICLASS, "lovasz_hinge_loss"])
@pytest.mark.parametrize("shape", [(0, C, H, W), (N, C, 0, W)], ids=["empty-batch", "empty-space"])
def test_empty_inputs_give_zero_with_zero_gradient(backend, name, shape):
    x, y = _empty_inputs(name, shape)
    yy = backend.asarray(y)
    value, grad = _value_and_grad(backend, lambda z: getattr(pl, name)(z, yy), x)
    assert value.shape == ()
    assert value == 0
    if grad is not None:
        assert grad.shape == shape and np.all(grad == 0)


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss", "dice_loss", "mcc_loss",
                                  "lovasz_softmax_loss"])
def test_empty_batch_with_reduction_none_returns_an_empty_array(backend, name):
    x, y = _empty_inputs(name, (0, C, H, W))
    options = {"per_image": True} if name in REGION or name == "lovasz_softmax_loss" else {}
    got = getattr(pl, name)(backend.asarray(x), backend.asarray(y), reduction="none", **options)
    assert 0 in tuple(got.shape)


# --------------------------------------------------------------------------- #
# items 6 and 8: messages name the called function and its argument
# --------------------------------------------------------------------------- #


def test_messages_name_the_called_function(backend, rng):
    x = backend.asarray(random_logits(rng, (N, C, H, W)))
    y = random_labels(rng, (N, H, W), C)
    with pytest.raises(ValueError, match="dice_focal_loss: gamma must be >= 0"):
        pl.dice_focal_loss(x, backend.asarray(y), gamma=-1.0)
    bad = y.copy()
    bad[0, 0, 0] = C
    for name in COMPOUND:
        with pytest.raises(ValueError, match=rf"{name}: y_true labels must lie in \[0, {C}\), found {C}"):
            getattr(pl, name)(x, backend.asarray(bad))
    with pytest.raises(ValueError, match="dice_focal_loss: alpha must lie in"):
        pl.dice_focal_loss(x, backend.asarray(y), alpha=2.0)
    with pytest.raises(TypeError, match="dice_loss\\(\\) got an unexpected keyword argument 'gama'"):
        pl.dice_loss(x, backend.asarray(y), gama=2.0)


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "lovasz_softmax_loss", "dice_cross_entropy_loss"])
def test_foreign_inputs_are_a_type_error_naming_the_argument(backend, rng, name):
    x = random_logits(rng, (N, C, H, W))
    y = random_labels(rng, (N, H, W), C)
    f = getattr(pl, name)
    with pytest.raises(TypeError, match=rf"{name}: y_pred must be an array .* got list"):
        f(x.tolist(), backend.asarray(y))
    with pytest.raises(TypeError, match=rf"{name}: y_true must be an array .* got list"):
        f(backend.asarray(x), y.tolist())
    if backend.name != "numpy":
        with pytest.raises(TypeError, match=rf"{name}: y_pred and y_true must come from the same array library"):
            f(backend.asarray(x), y)
    elif importlib.util.find_spec("torch") is not None:
        import torch

        with pytest.raises(TypeError, match=rf"{name}: y_pred and y_true must come from the same array library"):
            f(torch.asarray(x), y)


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "dice_cross_entropy_loss"])
def test_floating_labels_of_label_shape_explain_the_rule(backend, rng, name):
    x = backend.asarray(random_logits(rng, (N, C, H, W)))
    y = backend.asarray(random_labels(rng, (N, H, W), C).astype(np.float64))
    with pytest.raises(ValueError, match=rf"{name}: floating y_true is read as class probabilities .* integer dtype"):
        getattr(pl, name)(x, y)


# --------------------------------------------------------------------------- #
# item 7: NaN in, NaN out
# --------------------------------------------------------------------------- #

NAN_CASES = [(name, {}) for name in MULTICLASS] + [("tversky_loss", {"gamma": 2.0}), ("lovasz_hinge_loss", {})] + [
    (name, {}) for name in SIGMOID if name != "lovasz_hinge_loss"
]


@pytest.mark.parametrize(("name", "options"), NAN_CASES, ids=[f"{n}{o}" for n, o in NAN_CASES])
def test_nan_logit_gives_nan_loss(backend, rng, name, options):
    binary = name in SIGMOID
    x = random_logits(rng, (N, 1 if binary else C, H, W))
    x[1, 0, 2, 1] = np.nan
    y = random_binary(rng, x.shape) if binary else random_labels(rng, (N, H, W), C)
    got = getattr(pl, name)(backend.asarray(x), backend.asarray(y), **options)
    assert np.isnan(to_numpy(got))


# --------------------------------------------------------------------------- #
# item 9: out-of-range labels on JAX, concrete and traced
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", MULTICLASS)
@pytest.mark.parametrize("bad", [7, 255, -2])
def test_out_of_range_labels_raise_on_concrete_arrays(backend, rng, name, bad):
    x = random_logits(rng, (N, C, H, W))
    y = random_labels(rng, (N, H, W), C)
    y[1, 1, 1] = bad
    with pytest.raises(ValueError, match=rf"{name}: y_true labels must lie in \[0, {C}\), found {bad}"):
        getattr(pl, name)(backend.asarray(x), backend.asarray(y))


@pytest.mark.parametrize("name", MULTICLASS)
def test_out_of_range_labels_under_jit_give_nan(backend, rng, name):
    if not backend.is_jax:
        pytest.skip("jax.jit runs on the jax backends")
    import jax

    x = random_logits(rng, (N, C, H, W))
    y = random_labels(rng, (N, H, W), C, ignore_index=255)
    y[0, 0, 0] = 7
    f = jax.jit(lambda a, b: getattr(pl, name)(a, b, ignore_index=255))
    assert np.isnan(to_numpy(f(backend.asarray(x), backend.asarray(y))))
    y[0, 0, 0] = 255  # the ignored label is not out of range
    assert np.isfinite(to_numpy(f(backend.asarray(x), backend.asarray(y))))


# --------------------------------------------------------------------------- #
# item 10: class_axis validated even where it is unused
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("name", "options"), [(n, {}) for n in SIGMOID if n != "lovasz_hinge_loss"]
                         + [("dice_loss", {"mode": "binary"}), ("dice_cross_entropy_loss", {"mode": "binary"})])
def test_class_axis_is_validated_where_unused(backend, rng, name, options):
    x = backend.asarray(random_logits(rng, (N, 1, H, W)))
    y = backend.asarray(random_binary(rng, (N, 1, H, W)))
    with pytest.raises(ValueError, match=rf"{name}: class_axis must be"):
        getattr(pl, name)(x, y, class_axis=5, **options)


# --------------------------------------------------------------------------- #
# item 14: a perfect prediction scores about 0; absent classes' false positives have a gradient
# --------------------------------------------------------------------------- #

# mcc_loss is left out: with smooth added to all four cells (smp's rule) a class absent from the
# target (or filling it) scores MCC 1/2 however good the prediction (docs/conventions.md)
PERFECT = [n for n in [*REGION, *COMPOUND] if n != "mcc_loss"]


@pytest.mark.parametrize("name", PERFECT)
@pytest.mark.parametrize("per_image", [False, True])
def test_perfect_prediction_scores_about_zero_over_random_class_subsets(backend, rng, name, per_image):
    classes = 5
    present = rng.choice(classes, size=rng.integers(1, classes), replace=False)
    labels = rng.choice(present, size=(N, H, W))
    logits = np.where(np.arange(classes)[None, :, None, None] == labels[:, None], 20.0, -20.0)
    got = getattr(pl, name)(backend.asarray(logits), backend.asarray(labels), per_image=per_image)
    assert 0 <= float(to_numpy(got)) < 1e-6, (present, float(to_numpy(got)))


def test_absent_class_false_positives_have_a_gradient(backend, rng):
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    labels = np.zeros((N, H, W), dtype=np.int64)  # class 1 and 2 absent
    logits = np.broadcast_to(np.where(np.arange(C)[None, :, None, None] == 0, 4.0, -4.0), (N, C, H, W)).copy()
    yy = backend.asarray(labels)
    for name in ["dice_loss", "jaccard_loss", "tversky_loss"]:
        _, grad = backend.value_and_grad(lambda z, name=name: getattr(pl, name)(z, yy), backend.asarray(logits))
        assert np.all(grad[:, 1:] > 0), name  # raising an absent class's logit raises the loss


@pytest.mark.parametrize(("name", "options"), [("binary_cross_entropy", {}), ("sigmoid_focal_loss", {}),
                                               ("lovasz_hinge_loss", {}), ("dice_loss", {"mode": "binary"}),
                                               ("combo_loss", {"mode": "multilabel"})])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_sigmoid_targets_outside_their_domain_under_jit_give_nan(backend, rng, name, options, dtype):
    if not backend.is_jax:
        pytest.skip("jax.jit runs on the jax backends")
    import jax

    x = random_logits(rng, (N, C, H, W))
    mask = (random_binary(rng, x.shape) * 255).astype(dtype)
    f = jax.jit(lambda a, b: getattr(pl, name)(a, b, **options))
    assert np.isnan(to_numpy(f(backend.asarray(x), backend.asarray(mask))))
    assert np.isfinite(to_numpy(f(backend.asarray(x), backend.asarray(mask // 255))))
