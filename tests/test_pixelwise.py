"""Pixel-wise losses against float64 NumPy references, torch.nn.functional and optax."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import (
    assert_close,
    assert_finite,
    random_binary,
    random_labels,
    random_logits,
    random_probabilities,
    to_numpy,
)
from reference import np_log_sigmoid, np_log_softmax

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# --------------------------------------------------------------------------- #
# float64 references, written from the formulas (independent of polyloss)
# --------------------------------------------------------------------------- #
def np_reduce(loss, reduction, denominator=None):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    den = loss.size if denominator is None else denominator
    return loss.sum() / den if den else 0.0


def ce_reference(logits, target, *, axis, weight, ignore_index, smoothing, reduction, from_logits=True):
    """Per-pixel loops over a channels-last view: torch's definition of cross_entropy."""
    x = np.moveaxis(logits, axis, -1)
    c = x.shape[-1]
    logp = np_log_softmax(x, -1) if from_logits else np.maximum(np.log(np.maximum(x, 1e-300)), -100)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    flat_logp = logp.reshape(-1, c)
    losses, den = [], 0.0
    if np.issubdtype(target.dtype, np.integer):
        for lp, y in zip(flat_logp, target.reshape(-1), strict=True):
            if ignore_index is not None and y == ignore_index:
                losses.append(0.0)
                continue
            nll = -w[y] * lp[y]
            smooth = -(w * lp).sum() / c
            losses.append((1 - smoothing) * nll + smoothing * smooth)
            den += w[y] if weight is not None else 1.0
        loss = np.array(losses).reshape(target.shape)
        return np_reduce(loss, reduction, den)
    t = np.moveaxis(target, axis, -1).reshape(-1, c)
    t = t * (1 - smoothing) + smoothing / c
    loss = np.array([-(w * tt * lp).sum() for tt, lp in zip(t, flat_logp, strict=True)])
    return np_reduce(loss.reshape(x.shape[:-1]), reduction)


def bce_reference(x, t, *, pos_weight=1.0, weight=1.0, smoothing=0.0, from_logits=True, reduction="mean"):
    t = t * (1 - smoothing) + smoothing / 2
    if from_logits:
        log_p, log_q = np_log_sigmoid(x), np_log_sigmoid(-x)
    else:
        log_p = np.maximum(np.log(np.maximum(x, 1e-300)), -100)
        log_q = np.maximum(np.log(np.maximum(1 - x, 1e-300)), -100)
    return np_reduce(-weight * (pos_weight * t * log_p + (1 - t) * log_q), reduction)


def sigmoid_focal_reference(x, t, *, alpha, gamma, from_logits=True, epsilon=None, reduction="mean"):
    p = 1 / (1 + np.exp(-x)) if from_logits else x
    ce = bce_reference(x, t, from_logits=from_logits, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if epsilon is not None:
        loss = loss + epsilon * (1 - p_t) ** (gamma + 1)
    return np_reduce(loss, reduction)


def softmax_focal_reference(logits, target, *, axis, alpha, gamma, ignore_index, reduction):
    x = np.moveaxis(logits, axis, -1)
    c = x.shape[-1]
    logp = np_log_softmax(x, -1).reshape(-1, c)
    if alpha is None:
        a = np.ones(c)
    elif np.isscalar(alpha):
        a = np.array([1 - alpha] + [alpha] * (c - 1))
    else:
        a = np.asarray(alpha, dtype=np.float64)
    if np.issubdtype(target.dtype, np.integer):
        onehot = np.zeros((target.size, c))
        valid = np.ones(target.size, bool) if ignore_index is None else target.reshape(-1) != ignore_index
        for i, y in enumerate(target.reshape(-1)):
            if valid[i]:
                onehot[i, y] = 1.0
        shape = target.shape
    else:
        onehot = np.moveaxis(target, axis, -1).reshape(-1, c)
        valid = np.ones(onehot.shape[0], bool)
        shape = x.shape[:-1]
    p = np.exp(logp)
    loss = -(a * onehot * (1 - p) ** gamma * logp).sum(axis=1)
    return np_reduce(loss.reshape(shape), reduction, valid.sum())


def poly1_ce_reference(logits, target, *, axis, epsilon, weight, ignore_index, smoothing, reduction):
    ce = ce_reference(logits, target, axis=axis, weight=weight, ignore_index=ignore_index, smoothing=smoothing,
                      reduction="none")
    x = np.moveaxis(logits, axis, -1)
    c = x.shape[-1]
    p = np.exp(np_log_softmax(x, -1)).reshape(-1, c)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    if np.issubdtype(target.dtype, np.integer):
        poly, den = [], 0.0
        for pp, y in zip(p, target.reshape(-1), strict=True):
            if ignore_index is not None and y == ignore_index:
                poly.append(0.0)
                continue
            t = np.full(c, smoothing / c)
            t[y] += 1 - smoothing
            poly.append(epsilon * w[y] * (1 - (t * pp).sum()))
            den += w[y] if weight is not None else 1.0
        return np_reduce(ce + np.array(poly).reshape(target.shape), reduction, den)
    t = np.moveaxis(target, axis, -1).reshape(-1, c) * (1 - smoothing) + smoothing / c
    poly = epsilon * (1 - (t * p).sum(axis=1))
    return np_reduce(ce + poly.reshape(x.shape[:-1]), reduction)


# --------------------------------------------------------------------------- #
# Values
# --------------------------------------------------------------------------- #

SHAPE = (3, 5, 7, 4)  # N, C, H, W: odd, not powers of two
CE_OPTIONS = [
    {},
    {"weight": [0.3, 1.0, 2.0, 0.7, 1.3]},
    {"ignore_index": 255, "label_smoothing": 0.15},
    {"weight": [0.3, 1.0, 2.0, 0.7, 1.3], "ignore_index": -1, "label_smoothing": 0.2},
]


def _class_inputs(rng, class_axis, target_kind, ignore_index=None):
    logits = random_logits(rng, SHAPE)
    labels = random_labels(rng, (SHAPE[0], *SHAPE[2:]), SHAPE[1], ignore_index=ignore_index)
    if class_axis == -1:
        logits = np.moveaxis(logits, 1, -1)
    if target_kind == "index":
        return logits, labels
    return logits, random_probabilities(rng, logits.shape, class_axis)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("class_axis", [1, -1])
@pytest.mark.parametrize("target_kind", ["index", "probabilities"])
@pytest.mark.parametrize("options", CE_OPTIONS, ids=["plain", "weight", "ignore+smooth", "all"])
def test_cross_entropy_matches_reference(backend, rng, reduction, class_axis, target_kind, options):
    options = dict(options)
    ignore_index = options.get("ignore_index")
    if target_kind == "probabilities":
        options.pop("ignore_index", None)
        ignore_index = None
    logits, target = _class_inputs(rng, class_axis, target_kind, ignore_index)
    got = pl.cross_entropy(backend.asarray(logits), backend.asarray(target), class_axis=class_axis,
                           reduction=reduction, **options)
    want = ce_reference(logits, target, axis=class_axis, weight=options.get("weight"), ignore_index=ignore_index,
                        smoothing=options.get("label_smoothing", 0.0), reduction=reduction)
    assert_close(got, want)


@pytest.mark.parametrize("target_kind", ["index", "probabilities"])
def test_cross_entropy_from_probabilities(backend, rng, target_kind):
    logits, target = _class_inputs(rng, 1, target_kind)
    probs = np.exp(np_log_softmax(logits, 1))
    got = pl.cross_entropy(backend.asarray(probs), backend.asarray(target), from_logits=False)
    want = ce_reference(probs, target, axis=1, weight=None, ignore_index=None, smoothing=0.0, reduction="mean",
                        from_logits=False)
    assert_close(got, want)
    # and it agrees with the logits path up to the probabilities' rounding
    assert_close(got, ce_reference(logits, target, axis=1, weight=None, ignore_index=None, smoothing=0.0,
                                   reduction="mean"), rtol=1e-9)


@pytest.mark.parametrize("label_dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_cross_entropy_accepts_any_integer_width(backend, rng, label_dtype):
    logits = random_logits(rng, (2, 3, 5))
    labels = rng.integers(0, 3, size=(2, 5))
    ignore = 255 if label_dtype == "uint8" else -1 if label_dtype != "uint8" else None
    labels[0, 0] = ignore
    got = pl.cross_entropy(backend.asarray(logits), backend.asarray(labels.astype(label_dtype)), ignore_index=ignore)
    want = ce_reference(logits, labels, axis=1, weight=None, ignore_index=ignore, smoothing=0.0, reduction="mean")
    assert_close(got, want)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("options", [{}, {"pos_weight": 3.0, "weight": 0.5}, {"label_smoothing": 0.1},
                                     {"pos_weight": [1.0, 2.0, 0.5, 4.0, 1.5], "weight": [2.0, 1.0, 1.0, 0.2, 1.0]}],
                         ids=["plain", "scalars", "smooth", "per-class"])
def test_binary_cross_entropy_matches_reference(backend, rng, reduction, options):
    x = random_logits(rng, SHAPE, scale=3.0)
    t = random_binary(rng, SHAPE)
    got = pl.binary_cross_entropy(backend.asarray(x), backend.asarray(t), reduction=reduction, **options)
    per_class = lambda v: np.asarray(v).reshape(1, -1, 1, 1) if isinstance(v, list) else v  # noqa: E731
    want = bce_reference(x, t, pos_weight=per_class(options.get("pos_weight", 1.0)),
                         weight=per_class(options.get("weight", 1.0)),
                         smoothing=options.get("label_smoothing", 0.0), reduction=reduction)
    assert_close(got, want)


def test_binary_cross_entropy_pixel_weight_map_and_probabilities(backend, rng):
    x = random_logits(rng, SHAPE)
    t = random_binary(rng, SHAPE)
    wmap = rng.random((SHAPE[0], 1, *SHAPE[2:])) * 3
    got = pl.binary_cross_entropy(backend.asarray(x), backend.asarray(t), weight=backend.asarray(wmap))
    assert_close(got, bce_reference(x, t, weight=wmap))
    p = 1 / (1 + np.exp(-x))
    got = pl.binary_cross_entropy(backend.asarray(p), backend.asarray(t), from_logits=False)
    assert_close(got, bce_reference(p, t, from_logits=False))


@pytest.mark.parametrize("target_dtype", ["bool", "int32", "float32"])
def test_binary_targets_may_be_bool_int_or_float(backend, rng, target_dtype):
    x = random_logits(rng, (4, 1, 6))
    t = random_binary(rng, (4, 1, 6))
    got = pl.binary_cross_entropy(backend.asarray(x), backend.asarray(t.astype(target_dtype)))
    assert_close(got, bce_reference(x, t))


@pytest.mark.parametrize("beta", [None, 0.8])
def test_balanced_binary_cross_entropy_matches_formula(backend, rng, beta):
    x = random_logits(rng, SHAPE)
    t = random_binary(rng, SHAPE, share=0.1)
    b = np.clip(1 - t.mean(), 1e-7, 1 - 1e-7) if beta is None else beta
    want = np.mean(-(b * t * np_log_sigmoid(x) + (1 - b) * (1 - t) * np_log_sigmoid(-x)))
    assert_close(pl.balanced_binary_cross_entropy(backend.asarray(x), backend.asarray(t), beta=beta), want)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (None, 2.0), (0.6, 0.5), (0.25, 0.0), (0.1, 3.0)])
def test_sigmoid_focal_loss_matches_formula(backend, rng, reduction, alpha, gamma):
    x = random_logits(rng, SHAPE, scale=3.0)
    t = random_binary(rng, SHAPE)
    got = pl.sigmoid_focal_loss(backend.asarray(x), backend.asarray(t), alpha=alpha, gamma=gamma,
                                reduction=reduction)
    assert_close(got, sigmoid_focal_reference(x, t, alpha=alpha, gamma=gamma, reduction=reduction))


def test_sigmoid_focal_loss_soft_targets_and_probabilities(backend, rng):
    x = random_logits(rng, SHAPE)
    t = rng.random(SHAPE)
    got = pl.sigmoid_focal_loss(backend.asarray(x), backend.asarray(t))
    assert_close(got, sigmoid_focal_reference(x, t, alpha=0.25, gamma=2.0))
    p = 1 / (1 + np.exp(-x))
    got = pl.sigmoid_focal_loss(backend.asarray(p), backend.asarray(t), from_logits=False)
    assert_close(got, sigmoid_focal_reference(p, t, alpha=0.25, gamma=2.0, from_logits=False))


def _binary_ignored(rng, shape, ignore_index=255):
    """Integer 0/1 targets with about a fifth of the elements set to ``ignore_index``, and their valid mask."""
    t = random_binary(rng, shape).astype(np.int64)
    valid = rng.random(shape) >= 0.2
    return np.where(valid, t, ignore_index), valid


def sigmoid_reference(name, x, t, valid, *, weight=1.0, reduction="mean", **options):
    """Per-element float64 loss of a sigmoid loss on the valid elements only; the mean over their count."""
    t = np.where(valid, t, 0).astype(np.float64)
    if name == "binary_cross_entropy":
        loss = bce_reference(x, t, reduction="none", **options)
    elif name == "balanced_binary_cross_entropy":
        b = np.clip(1 - t[valid].mean(), 1e-7, 1 - 1e-7) if valid.any() else 0.5
        loss = -(b * t * np_log_sigmoid(x) + (1 - b) * (1 - t) * np_log_sigmoid(-x))
    else:
        epsilon = options.pop("epsilon", 1.0) if name == "poly1_focal_loss" else None
        loss = sigmoid_focal_reference(x, t, epsilon=epsilon, reduction="none", **options)
    return np_reduce(np.where(valid, weight * loss, 0.0), reduction, valid.sum())


SIGMOID_LOSSES = {
    "binary_cross_entropy": {"pos_weight": 2.0},
    "balanced_binary_cross_entropy": {},
    "sigmoid_focal_loss": {"alpha": 0.3, "gamma": 1.5},
    "poly1_focal_loss": {"alpha": 0.25, "gamma": 2.0, "epsilon": 0.5},
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", ["none", "per-class", "map"])
@pytest.mark.parametrize("name", list(SIGMOID_LOSSES))
def test_sigmoid_losses_ignore_index_and_weight_match_reference(backend, rng, name, weighted, reduction):
    """Ignored elements enter no sum; ``weight`` (per class or a map) scales each element, not the count."""
    x = random_logits(rng, SHAPE, scale=3.0)
    t, valid = _binary_ignored(rng, SHAPE)
    w = {"none": 1.0, "per-class": rng.random(SHAPE[1]) + 0.5, "map": rng.random((SHAPE[0], 1, *SHAPE[2:])) * 2}
    options = dict(SIGMOID_LOSSES[name])
    got = getattr(pl, name)(backend.asarray(x), backend.asarray(t), ignore_index=255, reduction=reduction,
                            weight=None if weighted == "none" else backend.asarray(w[weighted]), **options)
    weight = w[weighted].reshape(1, -1, 1, 1) if weighted == "per-class" else w[weighted]
    assert_close(got, sigmoid_reference(name, x, t, valid, weight=weight, reduction=reduction, **options))


@pytest.mark.parametrize("name", list(SIGMOID_LOSSES))
def test_sigmoid_losses_all_ignored_give_zero_and_zero_gradient(backend, rng, name):
    loss = getattr(pl, name)
    x = backend.asarray(random_logits(rng, (2, 1, 4, 3)))
    y = backend.asarray(np.full((2, 1, 4, 3), -1))
    for reduction in ("mean", "sum"):
        assert_close(loss(x, y, ignore_index=-1, reduction=reduction), np.array(0.0))
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda z: loss(z, y, ignore_index=-1), x)
        assert_close(value, np.array(0.0))
        assert_close(grad, np.zeros((2, 1, 4, 3)))


def test_sigmoid_ignore_index_needs_integer_targets(backend, rng):
    x = backend.asarray(random_logits(rng, (2, 1, 3)))
    with pytest.raises(ValueError, match="sigmoid_focal_loss: ignore_index applies to integer"):
        pl.sigmoid_focal_loss(x, backend.asarray(random_binary(rng, (2, 1, 3))), ignore_index=255)
    y = backend.asarray(np.array([[[0, 7, 255]], [[1, 0, 1]]]))
    if backend.is_jax:  # traced under jax.jit: no value check, a NaN loss instead of a plausible number
        assert np.isnan(to_numpy(pl.poly1_focal_loss(x, y, ignore_index=255)))
        return
    with pytest.raises(ValueError, match="poly1_focal_loss: y_true must hold binary labels 0 or 1, found 7"):
        pl.poly1_focal_loss(x, y, ignore_index=255)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("alpha", "gamma"), [(None, 2.0), (0.25, 2.0), ([0.1, 0.5, 1.0, 2.0, 0.3], 1.5),
                                              (0.75, 0.5)])
@pytest.mark.parametrize("class_axis", [1, -1])
def test_softmax_focal_loss_matches_formula(backend, rng, reduction, alpha, gamma, class_axis):
    logits, labels = _class_inputs(rng, class_axis, "index", ignore_index=-1)
    got = pl.softmax_focal_loss(backend.asarray(logits), backend.asarray(labels), alpha=alpha, gamma=gamma,
                                class_axis=class_axis, ignore_index=-1, reduction=reduction)
    want = softmax_focal_reference(logits, labels, axis=class_axis, alpha=alpha, gamma=gamma, ignore_index=-1,
                                   reduction=reduction)
    assert_close(got, want)


def test_softmax_focal_loss_probability_targets(backend, rng):
    logits, target = _class_inputs(rng, 1, "probabilities")
    got = pl.softmax_focal_loss(backend.asarray(logits), backend.asarray(target), alpha=0.4, gamma=2.0)
    want = softmax_focal_reference(logits, target, axis=1, alpha=0.4, gamma=2.0, ignore_index=None,
                                   reduction="mean")
    assert_close(got, want)


@pytest.mark.parametrize("target_kind", ["index", "probabilities"])
def test_softmax_focal_at_gamma_zero_is_cross_entropy(backend, rng, target_kind):
    logits, target = _class_inputs(rng, 1, target_kind)
    a, b = backend.asarray(logits), backend.asarray(target)
    assert_close(pl.softmax_focal_loss(a, b, gamma=0.0), to_numpy(pl.cross_entropy(a, b)))


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("target_kind", ["index", "probabilities"])
@pytest.mark.parametrize("options", CE_OPTIONS, ids=["plain", "weight", "ignore+smooth", "all"])
def test_poly1_cross_entropy_matches_formula(backend, rng, reduction, target_kind, options):
    options = dict(options)
    if target_kind == "probabilities":
        options.pop("ignore_index", None)
    logits, target = _class_inputs(rng, 1, target_kind, options.get("ignore_index"))
    got = pl.poly1_cross_entropy(backend.asarray(logits), backend.asarray(target), epsilon=2.0,
                                 reduction=reduction, **options)
    want = poly1_ce_reference(logits, target, axis=1, epsilon=2.0, weight=options.get("weight"),
                              ignore_index=options.get("ignore_index"),
                              smoothing=options.get("label_smoothing", 0.0), reduction=reduction)
    assert_close(got, want)


@pytest.mark.parametrize("epsilon", [1.0, -1.0, 0.0])
def test_poly1_focal_loss_matches_formula(backend, rng, epsilon):
    x = random_logits(rng, SHAPE)
    t = random_binary(rng, SHAPE)
    got = pl.poly1_focal_loss(backend.asarray(x), backend.asarray(t), epsilon=epsilon)
    assert_close(got, sigmoid_focal_reference(x, t, alpha=0.25, gamma=2.0, epsilon=epsilon))


def test_poly1_at_epsilon_zero_is_the_base_loss(backend, rng):
    logits, labels = _class_inputs(rng, 1, "index")
    a, b = backend.asarray(logits), backend.asarray(labels)
    assert_close(pl.poly1_cross_entropy(a, b, epsilon=0.0), to_numpy(pl.cross_entropy(a, b)))


# --------------------------------------------------------------------------- #
# Gradients against central differences (float64, torch and JAX)
# --------------------------------------------------------------------------- #

GRAD_SHAPE = (2, 3, 4, 3)


def _grad_cases(rng):
    logits = random_logits(rng, GRAD_SHAPE)
    labels = random_labels(rng, (2, 4, 3), 3, ignore_index=-1)
    probs = random_probabilities(rng, GRAD_SHAPE, 1)
    binary = random_binary(rng, GRAD_SHAPE)
    w = [0.5, 1.0, 2.0]
    ignored, _ = _binary_ignored(rng, GRAD_SHAPE)
    wmap = rng.random((2, 1, 4, 3)) + 0.5
    return logits, {
        "cross_entropy": (pl.cross_entropy, labels, {"weight": w, "ignore_index": -1, "label_smoothing": 0.1}),
        "cross_entropy-prob": (pl.cross_entropy, probs, {"weight": w, "label_smoothing": 0.1}),
        "binary_cross_entropy": (pl.binary_cross_entropy, binary, {"pos_weight": 2.0, "label_smoothing": 0.05}),
        "balanced_binary_cross_entropy": (pl.balanced_binary_cross_entropy, binary, {}),
        "sigmoid_focal_loss": (pl.sigmoid_focal_loss, binary, {"alpha": 0.3, "gamma": 1.5}),
        "softmax_focal_loss": (pl.softmax_focal_loss, labels, {"alpha": 0.3, "gamma": 2.0, "ignore_index": -1}),
        "softmax_focal_loss-prob": (pl.softmax_focal_loss, probs, {"gamma": 2.0}),
        "poly1_cross_entropy": (pl.poly1_cross_entropy, labels, {"epsilon": 1.5, "ignore_index": -1}),
        "poly1_focal_loss": (pl.poly1_focal_loss, binary, {"epsilon": 1.0}),
        "sigmoid_focal_loss-ignore-weight": (pl.sigmoid_focal_loss, ignored, {"ignore_index": 255, "weight": wmap}),
        "poly1_focal_loss-ignore-weight": (pl.poly1_focal_loss, ignored, {"ignore_index": 255, "weight": w}),
        "binary_cross_entropy-ignore": (pl.binary_cross_entropy, ignored, {"ignore_index": 255, "weight": w}),
        "balanced_binary_cross_entropy-ignore": (pl.balanced_binary_cross_entropy, ignored, {"ignore_index": 255}),
    }


@pytest.mark.parametrize("case", list(_grad_cases(np.random.default_rng(0))[1]))
def test_gradients_match_finite_differences(backend, rng, case):
    logits, cases = _grad_cases(rng)
    loss, target, options = cases[case]
    y = backend.asarray(target)
    backend.check_grad(lambda x: loss(x, y, **options), logits)


# --------------------------------------------------------------------------- #
# Finiteness: saturated logits, exact 0/1 probabilities, all ignored, empty masks
# --------------------------------------------------------------------------- #

ALL_LOSSES = {
    "binary_cross_entropy": (pl.binary_cross_entropy, "binary"),
    "balanced_binary_cross_entropy": (pl.balanced_binary_cross_entropy, "binary"),
    "sigmoid_focal_loss": (pl.sigmoid_focal_loss, "binary"),
    "poly1_focal_loss": (pl.poly1_focal_loss, "binary"),
    "cross_entropy": (pl.cross_entropy, "index"),
    "softmax_focal_loss": (pl.softmax_focal_loss, "index"),
    "poly1_cross_entropy": (pl.poly1_cross_entropy, "index"),
}


def _extreme_inputs(rng, kind):
    if kind == "binary":
        t = random_binary(rng, (2, 3, 5))
        return np.where(rng.random(t.shape) < 0.5, 1e4, -1e4), t, (1 - t)  # right and wrong saturation
    labels = rng.integers(0, 3, size=(2, 5))
    return np.where(rng.random((2, 3, 5)) < 0.5, 1e4, -1e4), labels, labels


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_saturated_logits_give_finite_values_and_gradients(backend, rng, name):
    loss, kind = ALL_LOSSES[name]
    x, t, _ = _extreme_inputs(rng, kind)
    for dtype in ("float32", "float64"):
        y = backend.asarray(t)
        xa = backend.asarray(x, dtype=backend.float_dtype(dtype))
        assert_finite(loss(xa, y))
        if backend.has_autodiff:
            value, grad = backend.value_and_grad(lambda z, y=y: loss(z, y), xa)
            assert_finite(value, grad)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "sigmoid_focal_loss", "poly1_focal_loss",
                                  "balanced_binary_cross_entropy", "cross_entropy", "softmax_focal_loss",
                                  "poly1_cross_entropy"])
def test_exact_zero_and_one_probabilities_are_finite(backend, rng, name):
    loss, kind = ALL_LOSSES[name]
    if kind == "binary":
        t = random_binary(rng, (2, 3, 5))
        p = np.where(rng.random(t.shape) < 0.5, t, 1 - t)  # exactly right or exactly wrong
    else:
        t = rng.integers(0, 3, size=(2, 5))
        p = np.moveaxis(np.eye(3)[rng.integers(0, 3, size=(2, 5))], -1, 1)
    y = backend.asarray(t)
    assert_finite(loss(backend.asarray(p), y, from_logits=False))
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda z: loss(z, y, from_logits=False), backend.asarray(p))
        assert_finite(value, grad)


@pytest.mark.parametrize("name", ["cross_entropy", "softmax_focal_loss", "poly1_cross_entropy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_ignored_gives_zero_loss_and_zero_gradient(backend, rng, name, weighted):
    loss, _ = ALL_LOSSES[name]
    logits = random_logits(rng, (2, 3, 4))
    labels = np.full((2, 4), 7)
    options = {"ignore_index": 7}
    if weighted and name != "softmax_focal_loss":
        options["weight"] = [1.0, 2.0, 3.0]
    y = backend.asarray(labels)
    for reduction in ("mean", "sum"):
        assert_close(loss(backend.asarray(logits), y, reduction=reduction, **options), np.array(0.0))
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda z: loss(z, y, **options), backend.asarray(logits))
        assert_close(value, np.array(0.0))
        assert_close(grad, np.zeros_like(logits))


@pytest.mark.parametrize("name", ["binary_cross_entropy", "balanced_binary_cross_entropy", "sigmoid_focal_loss"])
@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_empty_and_full_masks_are_finite(backend, rng, name, fill):
    loss, _ = ALL_LOSSES[name]
    x = random_logits(rng, (2, 1, 5, 3))
    t = np.full(x.shape, fill)
    y = backend.asarray(t)
    assert_finite(loss(backend.asarray(x), y))
    if backend.has_autodiff:
        assert_finite(*backend.value_and_grad(lambda z: loss(z, y), backend.asarray(x)))


# --------------------------------------------------------------------------- #
# Half precision: computed in float32, returned in the input dtype
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_half_precision_returns_input_dtype(backend, rng, half, name):
    if not hasattr(backend.xp, half):
        pytest.skip(f"{backend.name} has no {half}")
    loss, kind = ALL_LOSSES[name]
    x = random_logits(rng, (2, 3, 5))
    t = random_binary(rng, x.shape) if kind == "binary" else rng.integers(0, 3, size=(2, 5))
    x_half = backend.asarray(x, dtype=backend.float_dtype(half))
    got = loss(x_half, backend.asarray(t))
    assert got.dtype == backend.float_dtype(half)
    x_rounded = to_numpy(x_half).astype(np.float64)  # the half inputs, exactly, in float64
    want = to_numpy(loss(backend.asarray(x_rounded, dtype=backend.float_dtype("float32")), backend.asarray(t)))
    assert_close(got, want, rtol=1e-2 if half == "bfloat16" else 2e-3, atol=1e-3)


# --------------------------------------------------------------------------- #
# Bad input: a clear error naming the argument
# --------------------------------------------------------------------------- #


def test_bad_reduction_and_shapes(backend, rng):
    x = backend.asarray(random_logits(rng, (2, 3, 4)))
    labels = backend.asarray(rng.integers(0, 3, size=(2, 4)))
    binary = backend.asarray(random_binary(rng, (2, 3, 4)))
    for reduction in (None, "avg", "Mean"):
        with pytest.raises(ValueError, match="cross_entropy: reduction must be one of"):
            pl.cross_entropy(x, labels, reduction=reduction)
        with pytest.raises(ValueError, match="sigmoid_focal_loss: reduction"):
            pl.sigmoid_focal_loss(x, binary, reduction=reduction)
    with pytest.raises(ValueError, match=r"y_true must have the shape of y_pred \(2, 3, 4\), got \(2, 4\)"):
        pl.binary_cross_entropy(x, labels)
    with pytest.raises(ValueError, match=r"without its class axis 1, \(2, 4\), got \(2, 3\)"):
        pl.cross_entropy(x, backend.asarray(rng.integers(0, 3, size=(2, 3))))
    with pytest.raises(ValueError, match=r"cross_entropy: y_true must have the shape of y_pred"):
        pl.cross_entropy(x, backend.asarray(random_probabilities(rng, (2, 4, 3), 1)))
    with pytest.raises(ValueError, match="class_axis must be an integer in"):
        pl.cross_entropy(x, labels, class_axis=3)


def test_bad_dtypes_and_options(backend, rng):
    x = backend.asarray(random_logits(rng, (2, 3, 4)))
    labels = backend.asarray(rng.integers(0, 3, size=(2, 4)))
    with pytest.raises(TypeError, match="cross_entropy: y_pred must have a real floating dtype"):
        pl.cross_entropy(labels, labels)
    with pytest.raises(TypeError, match="cross_entropy: y_true must hold integer class indices"):
        pl.cross_entropy(x, backend.asarray(np.zeros((2, 4), bool)))
    with pytest.raises(ValueError, match="softmax needs at least 2 classes"):
        pl.cross_entropy(backend.asarray(random_logits(rng, (2, 1, 4))), labels)
    with pytest.raises(ValueError, match="softmax_focal_loss: gamma must be >= 0, got -1"):
        pl.softmax_focal_loss(x, labels, gamma=-1.0)
    with pytest.raises(ValueError, match="sigmoid_focal_loss: gamma must be >= 0"):
        pl.sigmoid_focal_loss(x, x, gamma=-0.5)
    with pytest.raises(ValueError, match=r"sigmoid_focal_loss: alpha must lie in \[0, 1\], got 1.5"):
        pl.sigmoid_focal_loss(x, x, alpha=1.5)
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\]"):
        pl.cross_entropy(x, labels, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), one per class, got \(2,\)"):
        pl.cross_entropy(x, labels, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="ignore_index applies to integer class-index targets only"):
        pl.cross_entropy(x, backend.asarray(random_probabilities(rng, (2, 3, 4), 1)), ignore_index=0)
    with pytest.raises(TypeError, match="ignore_index must be an int or None"):
        pl.cross_entropy(x, labels, ignore_index=1.5)
    with pytest.raises(ValueError, match="a 1-D pos_weight must have one entry per class"):
        pl.binary_cross_entropy(x, backend.asarray(random_binary(rng, (2, 3, 4))), pos_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="softmax_focal_loss: alpha must have shape"):
        pl.softmax_focal_loss(x, labels, alpha=[0.5, 0.5])


@pytest.mark.parametrize("bad", [3, -2, 200])
def test_out_of_range_labels(backend, rng, bad):
    x = backend.asarray(random_logits(rng, (2, 3, 4)))
    labels = rng.integers(0, 3, size=(2, 4))
    labels[1, 2] = bad
    y = backend.asarray(labels)
    if backend.is_jax:  # traced under jax.jit: no value check, a NaN loss instead of a plausible number
        assert np.isnan(to_numpy(pl.cross_entropy(x, y)))
        return
    with pytest.raises(ValueError, match=rf"cross_entropy: y_true labels must lie in \[0, 3\), found {bad}"):
        pl.cross_entropy(x, y)
    with pytest.raises(ValueError, match=rf"softmax_focal_loss: .* or equal ignore_index=-1, found {bad}"):
        pl.softmax_focal_loss(x, y, ignore_index=-1)


@pytest.mark.parametrize("name", ["cross_entropy", "sigmoid_focal_loss"])
def test_compiled_out_of_range_targets_give_nan(backend, rng, name):
    """While torch.compile traces, values cannot be read: a bad target makes the loss NaN (native kernel too)."""
    if not backend.is_torch:
        pytest.skip("torch.compile; jax.jit is covered by test_out_of_range_labels")
    import torch

    torch._dynamo.reset()
    if name == "cross_entropy":
        x, t = random_logits(rng, (2, 3, 4)), rng.integers(0, 3, size=(2, 4))
        t[1, 2], t[0, 0] = 5, -1
        options = {"ignore_index": -1, "weight": [1.0, 2.0, 0.5]}
    else:
        x, t = random_logits(rng, (2, 1, 4)), rng.integers(0, 2, size=(2, 1, 4))
        t[1, 0, 2], t[0, 0, 0] = 7, 255
        options = {"ignore_index": 255}
    f = torch.compile(lambda a, b: getattr(pl, name)(a, b, **options), fullgraph=True, backend="aot_eager")
    assert np.isnan(to_numpy(f(backend.asarray(x), backend.asarray(t))))


# --------------------------------------------------------------------------- #
# Peers: torch.nn.functional (torch session), optax (JAX session)
# --------------------------------------------------------------------------- #

# torch ignores ignore_index with probability targets, polyloss rejects it: those pairs are not shared
TORCH_CE_CASES = [
    case for case in itertools.product(
        ["index", "probabilities"], [None, "weight"], [None, -100, 2], [0.0, 0.2], ["mean", "sum", "none"]
    ) if not (case[0] == "probabilities" and case[2] is not None)
]


@pytest.mark.parametrize(("target_kind", "weighted", "ignore_index", "smoothing", "reduction"), TORCH_CE_CASES)
def test_cross_entropy_equals_torch(backend, rng, target_kind, weighted, ignore_index, smoothing, reduction):
    torch = pytest.importorskip("torch")
    logits, target = _class_inputs(rng, 1, target_kind)
    if ignore_index is not None:
        target = np.where(rng.random(target.shape) < 0.3, ignore_index, target)
    w = rng.random(SHAPE[1]) + 0.2 if weighted else None
    kw = {"ignore_index": ignore_index} if ignore_index is not None else {}
    got = pl.cross_entropy(backend.asarray(logits), backend.asarray(target), weight=w, label_smoothing=smoothing,
                           reduction=reduction, **kw)
    want = torch.nn.functional.cross_entropy(
        torch.tensor(logits), torch.tensor(target), weight=None if w is None else torch.tensor(w),
        ignore_index=-100 if ignore_index is None else ignore_index, label_smoothing=smoothing, reduction=reduction,
    )
    assert_close(got, want.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_equals_torch(backend, rng, reduction):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    x = random_logits(rng, (4, 6, 5))
    t = rng.random(x.shape)
    pw = rng.random(5) + 0.5  # torch broadcasts along the last axis: class_axis=-1 here
    w = rng.random(x.shape)
    got = pl.binary_cross_entropy(backend.asarray(x), backend.asarray(t), pos_weight=pw, weight=backend.asarray(w),
                                  class_axis=-1, reduction=reduction)
    want = f.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(t), pos_weight=torch.tensor(pw),
                                              weight=torch.tensor(w), reduction=reduction)
    assert_close(got, want.numpy())
    p = 1 / (1 + np.exp(-x))
    p[0, 0, :2] = [0.0, 1.0]
    got = pl.binary_cross_entropy(backend.asarray(p), backend.asarray(t), from_logits=False, reduction=reduction)
    assert_close(got, f.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction=reduction).numpy())


def test_gradients_equal_torch_autograd(backend, rng):
    torch = pytest.importorskip("torch")
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    logits, labels = _class_inputs(rng, 1, "index", ignore_index=-1)
    w = [0.5, 1.0, 2.0, 1.5, 0.7]
    _, got = backend.value_and_grad(
        lambda z: pl.cross_entropy(z, backend.asarray(labels), weight=w, ignore_index=-1, label_smoothing=0.1),
        backend.asarray(logits))
    x = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(x, torch.tensor(labels), weight=torch.tensor(w, dtype=torch.float64),
                                      ignore_index=-1, label_smoothing=0.1).backward()
    assert_close(got, x.grad.numpy())


def test_sigmoid_focal_and_cross_entropy_equal_optax(backend, rng):
    optax = pytest.importorskip("optax")
    import jax

    rtol = 1e-9 if jax.config.jax_enable_x64 else 1e-5  # optax computes in float32 unless x64 is on
    x = random_logits(rng, (3, 7, 4))
    # in float32, logsumexp(x) - x[label] rounds terms of size |x| + log C: a small loss keeps that absolute error
    atol = 1e-7 if jax.config.jax_enable_x64 else 4 * float(np.finfo(np.float32).eps) * (np.abs(x).max() + np.log(4))
    t = random_binary(rng, x.shape)
    want = np.asarray(optax.sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0))
    got = pl.sigmoid_focal_loss(backend.asarray(x), backend.asarray(t), reduction="none")
    assert_close(got, want, rtol=rtol, atol=atol)
    labels = rng.integers(0, 4, size=(3, 7))
    want = np.asarray(optax.softmax_cross_entropy_with_integer_labels(x, labels))
    got = pl.cross_entropy(backend.asarray(x), backend.asarray(labels), class_axis=-1, reduction="none")
    assert_close(got, want, rtol=rtol, atol=atol)
