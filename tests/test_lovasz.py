"""Lovasz hinge and Lovasz-Softmax against a float64 NumPy loop over images and classes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, assert_finite, random_labels, random_logits, to_numpy
from reference import np_softmax

import polyloss as pl
from polyloss import _backend as _xp

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

# --------------------------------------------------------------------------- #
# The reference algorithm (Berman et al. 2018, Alg. 1): one row at a time,
# ignored pixels removed, float64; values and the Lovasz-extension gradient.
# --------------------------------------------------------------------------- #


def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_lovasz_flat(errors, gt, *, hinge):
    """Value of the Lovasz extension at ``errors`` (relu'd for the hinge) and its gradient w.r.t. ``errors``."""
    grad = np.zeros_like(errors)
    if errors.size == 0:
        return 0.0, grad
    order = np.argsort(-errors, kind="stable")
    g = np_lovasz_grad(gt[order].astype(np.float64))
    e = errors[order]
    slope = g * (e > 0) if hinge else g
    grad[order] = slope
    return float(np.dot(np.maximum(e, 0) if hinge else e, g)), grad


def hinge_reference(logits, labels, *, per_image, ignore=None):
    """Mean loss and its gradient w.r.t. the logits; plus the per-image losses."""
    x = logits.reshape(logits.shape[0] if per_image else 1, -1)
    t = labels.reshape(x.shape)
    grad = np.zeros_like(x)
    losses = []
    for i in range(x.shape[0]):
        keep = np.ones(t.shape[1], bool) if ignore is None else t[i] != ignore
        fg = t[i][keep].astype(np.float64)
        signs = 2 * fg - 1
        value, de = np_lovasz_flat(1 - x[i][keep] * signs, fg, hinge=True)
        losses.append(value)
        grad[i][keep] = -de * signs / x.shape[0]
    return np.mean(losses), grad.reshape(logits.shape), np.array(losses)

def softmax_reference(probas, labels, *, classes="present", per_image=False, ignore=None):
    """The reference ``lovasz_softmax`` on (N, C, *S) probabilities: (mean loss, d loss / d probas, class losses).

    An image with no valid pixel scores 0 and counts in the image mean (the reference's intent).
    Class losses: (K,) or (N, K), 0 where "present" skips the class.
    """
    n, c = probas.shape[:2]
    p = probas.reshape(n, c, -1)
    t = labels.reshape(n, -1)
    if not per_image:
        p = np.moveaxis(p, 1, 0).reshape(c, -1)[None]  # the batch as one image
        t = t.reshape(1, -1)
    ids = list(range(c)) if classes in ("present", "all") else list(classes)
    grad = np.zeros_like(p)
    image_losses, class_losses = [], np.zeros((p.shape[0], len(ids)))
    for i in range(p.shape[0]):
        keep = np.ones(t.shape[1], bool) if ignore is None else t[i] != ignore
        losses = []
        for k, cls in enumerate(ids):
            fg = (t[i][keep] == cls).astype(np.float64)
            if classes == "present" and fg.sum() == 0:
                continue
            pc = p[i, cls][keep]
            value, de = np_lovasz_flat(np.abs(fg - pc), fg, hinge=False)
            losses.append((value, cls, keep, de * np.sign(pc - fg)))
            class_losses[i, k] = value
        for _, cls, keep, dp in losses:
            grad[i, cls][keep] += dp / len(losses) / p.shape[0]
        image_losses.append(np.mean([v for v, *_ in losses]) if losses else 0.0)
    if not per_image:
        grad = np.moveaxis(grad[0].reshape(c, n, -1), 0, 1)
        class_losses = class_losses[0]
    return float(np.mean(image_losses)), grad.reshape(probas.shape), class_losses


def softmax_grad_to_logits(p, dp, axis=1):
    return p * (dp - (dp * p).sum(axis=axis, keepdims=True))


def binary_labels(rng, shape, ignore=None, share=0.2):
    t = (rng.random(shape) < 0.4).astype(np.int64)
    if ignore is not None:
        t[rng.random(shape) < share] = ignore
    return t


# --------------------------------------------------------------------------- #
# the sort primitive (every backend path: packed int64, lax.sort, torch, argsort)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sort_descending_is_a_stable_descending_sort(backend, rng, dtype):
    x = rng.normal(size=(3, 4, 37)).astype(dtype)
    x[..., :8] = np.array([0.0, -0.0, 1.5, 1.5, -np.inf, np.inf, -2.0, -2.0], dtype=dtype)
    x[0, 0, 10:20] = 0.25  # a long tie
    values, perm = _xp.sort_descending(backend.asarray(x), stable=True, xp=backend.xp)
    want = np.argsort(-x, axis=-1, kind="stable")  # +0.0 comes before -0.0 here, as in ours
    assert_close(perm, want)
    assert_close(values, np.take_along_axis(x, want, axis=-1), rtol=0, atol=0)


def test_jax_without_x64_sorts_and_scores_alike(backend, rng):
    """The float32 path packs int64 keys under ``jax.enable_x64`` inside an x32 program."""
    if not backend.is_jax:
        pytest.skip(f"the x32 path is JAX's, not {backend.name}'s")
    import jax

    x = rng.normal(size=(4, 3, 53)).astype(np.float32)
    x[0, 0, :20] = 0.5
    logits = random_logits(rng, (2, 4, 5, 6)).astype(np.float32)
    labels = random_labels(rng, (2, 5, 6), 4, ignore_index=-1)
    want, _, _ = softmax_reference(np_softmax(logits.astype(np.float64), 1), labels, per_image=True, ignore=-1)
    with jax.enable_x64(False):
        xp = backend.xp
        _, perm = jax.jit(lambda a: _xp.sort_descending(a, stable=True, xp=xp))(xp.asarray(x))
        got = jax.jit(lambda a, b: pl.lovasz_softmax_loss(a, b, per_image=True, ignore_index=-1))(
            xp.asarray(logits), xp.asarray(labels, dtype=xp.int32))
    assert_close(perm, np.argsort(-x, axis=-1, kind="stable"))
    assert_close(got, want, rtol=1e-5)


# --------------------------------------------------------------------------- #
# Lovasz hinge
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(("per_image", "ignore"), [(True, None), (True, 255), (False, None), (False, 255)])
def test_hinge_matches_reference(backend, rng, per_image, ignore):
    logits = random_logits(rng, (3, 1, 7, 5))
    labels = binary_labels(rng, logits.shape, ignore)
    want, _, per = hinge_reference(logits, labels, per_image=per_image, ignore=ignore)
    x, t = backend.asarray(logits), backend.asarray(labels)
    assert_close(pl.lovasz_hinge_loss(x, t, per_image=per_image, ignore_index=ignore), want)
    none = pl.lovasz_hinge_loss(x, t, per_image=per_image, ignore_index=ignore, reduction="none")
    assert_close(none, per if per_image else want)  # per image (N,), or the batch's loss (0-d)


def test_sum_reduction(backend, rng):
    logits = random_logits(rng, (3, 4, 5, 6))
    labels = random_labels(rng, (3, 5, 6), 3, ignore_index=-1)  # class 3 absent
    binary = np.where(labels == -1, -1, labels % 2)
    _, _, per = hinge_reference(logits[:, 0], binary, per_image=True, ignore=-1)
    got = pl.lovasz_hinge_loss(backend.asarray(logits[:, 0]), backend.asarray(binary), ignore_index=-1,
                               reduction="sum")
    assert_close(got, per.sum())
    _, _, per_class = softmax_reference(np_softmax(logits, 1), labels, per_image=True, ignore=-1)
    got = pl.lovasz_softmax_loss(backend.asarray(logits), backend.asarray(labels), per_image=True,
                                 ignore_index=-1, reduction="sum")
    assert_close(got, per_class.sum())


def test_hinge_float_and_bool_targets(backend, rng):
    logits = random_logits(rng, (2, 9, 4))
    labels = binary_labels(rng, logits.shape)
    want, _, _ = hinge_reference(logits, labels, per_image=True)
    x = backend.asarray(logits)
    assert_close(pl.lovasz_hinge_loss(x, backend.asarray(labels.astype(np.float64))), want)
    assert_close(pl.lovasz_hinge_loss(x, backend.asarray(labels.astype(bool))), want)


@pytest.mark.parametrize("per_image", [True, False])
def test_hinge_gradient_is_the_lovasz_gradient(backend, rng, per_image):
    logits = random_logits(rng, (3, 11, 6))
    labels = binary_labels(rng, logits.shape, 7)
    _, want, _ = hinge_reference(logits, labels, per_image=per_image, ignore=7)
    t = backend.asarray(labels)
    _, grad = backend.value_and_grad(
        lambda x: pl.lovasz_hinge_loss(x, t, per_image=per_image, ignore_index=7), backend.asarray(logits)
    )
    assert_close(grad, want)


def test_hinge_gradient_matches_finite_differences(backend, rng):
    logits = random_logits(rng, (2, 3, 4))
    t = backend.asarray(binary_labels(rng, logits.shape, 9))
    backend.check_grad(lambda x: pl.lovasz_hinge_loss(x, t, ignore_index=9), logits)


# --------------------------------------------------------------------------- #
# Lovasz-Softmax
# --------------------------------------------------------------------------- #


SOFTMAX_CASES = [  # (classes, per_image, ignore_index): each value twice, each pair of values once or more
    ("present", False, None),
    ("present", True, -1),
    ("all", False, -1),
    ("all", True, None),
    ((3, 0), False, None),
    ([4, 1, 2], True, -1),
]


@pytest.mark.parametrize(("classes", "per_image", "ignore"), SOFTMAX_CASES)
def test_softmax_matches_reference(backend, rng, classes, per_image, ignore):
    logits = random_logits(rng, (3, 5, 6, 7))
    labels = random_labels(rng, (3, 6, 7), 4, ignore_index=ignore)  # class 4 absent everywhere
    labels[1][labels[1] == 2] = 1  # class 2 absent from image 1
    p = np_softmax(logits, 1)
    want, _, per_class = softmax_reference(p, labels, classes=classes, per_image=per_image, ignore=ignore)
    x, t = backend.asarray(logits), backend.asarray(labels)
    kw = {"classes": classes, "per_image": per_image, "ignore_index": ignore}
    assert_close(pl.lovasz_softmax_loss(x, t, **kw), want)
    assert_close(pl.lovasz_softmax_loss(x, t, reduction="none", **kw), per_class)


@pytest.mark.parametrize("per_image", [False, True])
def test_softmax_channels_last_and_probabilities(backend, rng, per_image):
    logits = random_logits(rng, (2, 5, 3, 4))
    labels = random_labels(rng, (2, 3, 4), 4, ignore_index=255)
    p = np_softmax(logits, 1)
    want, _, _ = softmax_reference(p, labels, per_image=per_image, ignore=255)
    t = backend.asarray(labels)
    last = backend.asarray(np.moveaxis(logits, 1, -1))
    assert_close(pl.lovasz_softmax_loss(last, t, class_axis=-1, per_image=per_image, ignore_index=255), want)
    probs = backend.asarray(p)
    assert_close(pl.lovasz_softmax_loss(probs, t, from_logits=False, per_image=per_image, ignore_index=255), want)


def test_softmax_value_is_exact_with_ties(backend, rng):
    """The value of the Lovasz extension does not depend on how ties are ordered."""
    p = np_softmax(np.round(random_logits(rng, (2, 3, 5, 6)), 0), 1)  # few distinct logits: many equal errors
    labels = random_labels(rng, (2, 5, 6), 3)
    for per_image in (False, True):
        want, _, _ = softmax_reference(p, labels, classes="all", per_image=per_image)
        got = pl.lovasz_softmax_loss(backend.asarray(p), backend.asarray(labels), classes="all",
                                     from_logits=False, per_image=per_image)
        assert_close(got, want)


@pytest.mark.parametrize(("classes", "per_image"), [("present", False), ("all", True), ((1, 2), False)])
def test_softmax_gradient_is_the_lovasz_gradient(backend, rng, classes, per_image):
    logits = random_logits(rng, (3, 4, 5, 3))
    labels = random_labels(rng, (3, 5, 3), 4, ignore_index=9)
    labels[0][labels[0] == 1] = 3
    p = np_softmax(logits, 1)
    _, dp, _ = softmax_reference(p, labels, classes=classes, per_image=per_image, ignore=9)
    t = backend.asarray(labels)
    kw = {"classes": classes, "per_image": per_image, "ignore_index": 9}
    _, grad = backend.value_and_grad(lambda x: pl.lovasz_softmax_loss(x, t, **kw), backend.asarray(logits))
    assert_close(grad, softmax_grad_to_logits(p, dp))
    if classes == "present":  # with probabilities: the Lovasz gradient itself, sign(p - fg) g
        _, grad = backend.value_and_grad(lambda q: pl.lovasz_softmax_loss(q, t, from_logits=False, **kw),
                                         backend.asarray(p))
        assert_close(grad, dp)


@pytest.mark.parametrize(("per_image", "rows_per_sort"), [(True, 1), (True, 3), (False, 2)])
def test_rows_sorted_in_groups_match_the_reference(backend, rng, monkeypatch, per_image, rows_per_sort):
    """Rows grouped into several sorts (``ROW_CHUNK_ELEMENTS``, 3-D volumes) give the reference's value, per-class
    losses and gradient: groups of 1 and 3 of the 3 x 4 image rows (the last group short), 2 of 4 batch rows."""
    from polyloss.segmentation import lovasz

    logits = random_logits(rng, (3, 4, 5, 3))
    labels = random_labels(rng, (3, 5, 3), 4, ignore_index=9)
    monkeypatch.setattr(lovasz, "ROW_CHUNK_ELEMENTS", rows_per_sort * (15 if per_image else 45))
    p = np_softmax(logits, 1)
    want, dp, per_class = softmax_reference(p, labels, classes="all", per_image=per_image, ignore=9)
    t = backend.asarray(labels)
    kw = {"classes": "all", "per_image": per_image, "ignore_index": 9}
    value, grad = backend.value_and_grad(lambda x: pl.lovasz_softmax_loss(x, t, **kw), backend.asarray(logits))
    assert_close(value, want)
    assert_close(grad, softmax_grad_to_logits(p, dp))
    assert_close(pl.lovasz_softmax_loss(backend.asarray(logits), t, reduction="none", **kw), per_class)


def test_softmax_gradient_matches_finite_differences(backend, rng):
    logits = random_logits(rng, (2, 3, 2, 3))
    t = backend.asarray(random_labels(rng, (2, 2, 3), 3, ignore_index=-5))
    backend.check_grad(lambda x: pl.lovasz_softmax_loss(x, t, ignore_index=-5, per_image=True), logits)
    t = backend.asarray(random_labels(rng, (2, 3, 2), 3, ignore_index=-5))
    backend.check_grad(lambda x: pl.lovasz_softmax_loss(x, t, ignore_index=-5, class_axis=-1), logits)


# --------------------------------------------------------------------------- #
# edge cases: nothing valid, saturated logits, half precision
# --------------------------------------------------------------------------- #


def _value_and_grad_or_value(backend, f, x):
    """Autodiff backends: (value, gradient); the others: (value, None)."""
    if backend.has_autodiff:
        return backend.value_and_grad(f, backend.asarray(x))
    return to_numpy(f(backend.asarray(x))), None


@pytest.mark.parametrize("per_image", [True, False])
def test_all_ignored_is_zero_with_zero_gradient(backend, rng, per_image):
    logits = random_logits(rng, (2, 3, 4, 5))
    t = backend.asarray(np.full((2, 4, 5), 7))
    tb = backend.asarray(np.full((2, 3, 4, 5), 7))
    for f in (
        lambda x: pl.lovasz_softmax_loss(x, t, per_image=per_image, ignore_index=7),
        lambda x: pl.lovasz_softmax_loss(x, t, classes="all", per_image=per_image, ignore_index=7),
        lambda x: pl.lovasz_hinge_loss(x, tb, per_image=per_image, ignore_index=7),
    ):
        value, grad = _value_and_grad_or_value(backend, f, logits)
        assert_close(value, 0.0, atol=0)
        if grad is not None:
            assert_close(grad, np.zeros_like(logits), atol=0)


def test_an_all_ignored_image_counts_as_zero_in_the_image_mean(backend, rng):
    logits = random_logits(rng, (3, 3, 4, 4))
    labels = random_labels(rng, (3, 4, 4), 3)
    labels[1] = 255
    p = np_softmax(logits, 1)
    want, _, _ = softmax_reference(p, labels, per_image=True, ignore=255)
    t = backend.asarray(labels)
    assert_close(pl.lovasz_softmax_loss(backend.asarray(logits), t, per_image=True, ignore_index=255), want)
    binary = np.where(labels == 255, 255, labels % 2)
    want, _, _ = hinge_reference(logits[:, 0], binary, per_image=True, ignore=255)
    got = pl.lovasz_hinge_loss(backend.asarray(logits[:, 0]), backend.asarray(binary), ignore_index=255)
    assert_close(got, want)


def test_saturated_logits_are_finite(backend, rng):
    logits = np.sign(random_logits(rng, (2, 3, 4, 4))) * 1e4
    labels = random_labels(rng, (2, 4, 4), 3, ignore_index=-1)
    t = backend.asarray(labels)
    tb = backend.asarray(np.broadcast_to(np.where(labels[:, None] > 0, 1, 0), logits.shape).copy())
    for f in (
        lambda x: pl.lovasz_softmax_loss(x, t, ignore_index=-1),
        lambda x: pl.lovasz_hinge_loss(x, tb),
    ):
        value, grad = _value_and_grad_or_value(backend, f, logits)
        assert_finite(value, *([] if grad is None else [grad]))
    # probabilities of exactly 0 and 1
    p = np.moveaxis(np.eye(3)[rng.integers(0, 3, (2, 4, 4))], -1, 1)
    value, grad = _value_and_grad_or_value(backend, lambda q: pl.lovasz_softmax_loss(q, t, from_logits=False,
                                                                                      ignore_index=-1), p)
    assert_finite(value, *([] if grad is None else [grad]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_returns_input_dtype(backend, rng, dtype):
    if not hasattr(backend.xp, dtype):
        pytest.skip(f"{backend.name} has no {dtype}")
    logits = random_logits(rng, (2, 4, 5, 6)).astype(np.float32)
    labels = random_labels(rng, (2, 5, 6), 4, ignore_index=-1)
    half = backend.xp.astype(backend.asarray(logits), getattr(backend.xp, dtype))
    rounded = to_numpy(half).astype(np.float64)
    t = backend.asarray(labels)
    got = pl.lovasz_softmax_loss(half, t, ignore_index=-1, per_image=True)
    assert got.dtype == half.dtype
    want, _, _ = softmax_reference(np_softmax(rounded, 1), labels, per_image=True, ignore=-1)
    assert_close(got, want, rtol=1e-2, atol=1e-3)
    binary = np.where(labels == -1, -1, labels % 2)[:, None]
    got = pl.lovasz_hinge_loss(half[:, :1], backend.asarray(binary), ignore_index=-1)
    assert got.dtype == half.dtype
    want, _, _ = hinge_reference(rounded[:, :1], binary, per_image=True, ignore=-1)
    assert_close(got, want, rtol=1e-2, atol=1e-3)


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #


def test_bad_inputs(backend, rng):
    xp = backend.xp
    x = backend.asarray(random_logits(rng, (2, 3, 4)))
    labels = backend.asarray(random_labels(rng, (2, 4), 3))
    with pytest.raises(ValueError, match="lovasz_softmax_loss: integer y_true must have the shape"):
        pl.lovasz_softmax_loss(x, backend.asarray(np.zeros((2, 5), dtype=np.int64)))
    with pytest.raises(TypeError, match="lovasz_softmax_loss: y_true must hold integer class indices"):
        pl.lovasz_softmax_loss(x, xp.astype(x, xp.float32))
    with pytest.raises(TypeError, match="lovasz_softmax_loss: y_pred must have a real floating dtype"):
        pl.lovasz_softmax_loss(labels, labels)
    with pytest.raises(ValueError, match="lovasz_softmax_loss: classes must be one of"):
        pl.lovasz_softmax_loss(x, labels, classes="some")
    with pytest.raises(ValueError, match=r"lovasz_softmax_loss: classes must be a non-empty sequence .* \[0, 3\)"):
        pl.lovasz_softmax_loss(x, labels, classes=(0, 3))
    with pytest.raises(ValueError, match="lovasz_softmax_loss: reduction must be one of"):
        pl.lovasz_softmax_loss(x, labels, reduction=None)
    with pytest.raises(ValueError, match="lovasz_softmax_loss: class_axis must be an integer"):
        pl.lovasz_softmax_loss(x, labels, class_axis=3)
    with pytest.raises(ValueError, match="lovasz_softmax_loss: softmax needs at least 2 classes"):
        pl.lovasz_softmax_loss(x[:, :1, ...], labels)
    with pytest.raises(ValueError, match="lovasz_softmax_loss: y_pred must have a batch and a class axis"):
        pl.lovasz_softmax_loss(x[0, 0, ...], labels[0, 0, ...])
    with pytest.raises(TypeError, match="lovasz_softmax_loss: ignore_index must be an int or None"):
        pl.lovasz_softmax_loss(x, labels, ignore_index=1.5)
    with pytest.raises(ValueError, match="lovasz_hinge_loss: y_true must have the shape of y_pred"):
        pl.lovasz_hinge_loss(x, labels)
    with pytest.raises(ValueError, match="lovasz_hinge_loss: ignore_index applies to integer"):
        pl.lovasz_hinge_loss(x, xp.astype(x > 0, xp.float32), ignore_index=255)
    with pytest.raises(ValueError, match="lovasz_hinge_loss: reduction must be one of"):
        pl.lovasz_hinge_loss(x, xp.astype(x > 0, xp.float32), reduction="avg")
    if not backend.is_jax:  # value checks run on eager arrays only
        with pytest.raises(ValueError, match=r"lovasz_softmax_loss: y_true labels must lie in \[0, 3\)"):
            pl.lovasz_softmax_loss(x, labels + 1)
        with pytest.raises(ValueError, match="lovasz_hinge_loss: y_true must hold binary labels 0 or 1, found 2"):
            pl.lovasz_hinge_loss(x, backend.asarray(np.full((2, 3, 4), 2)))



@pytest.mark.parametrize("classes", ["present", "all", (2, 0)])
@pytest.mark.parametrize("per_image", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_per_class_weight(backend, rng, classes, per_image, reduction):
    """weight w: L_c -> w_c L_c, and "mean" divides by the summed weights of the classes averaged over."""
    logits = random_logits(rng, (2, 3, 5, 4))
    labels = random_labels(rng, (2, 5, 4), 3, ignore_index=-1)
    labels[1][labels[1] == 1] = 2  # class 1 absent from image 1
    weight = np.array([0.5, 2.0, 1.5])
    got = pl.lovasz_softmax_loss(backend.asarray(logits), backend.asarray(labels), classes=classes, weight=weight,
                                 per_image=per_image, ignore_index=-1, reduction=reduction)
    _, _, class_losses = softmax_reference(np_softmax(logits, 1), labels, classes=classes, per_image=per_image,
                                           ignore=-1)
    ids = [0, 1, 2] if isinstance(classes, str) else list(classes)
    w = weight[ids]
    rows = np.atleast_2d(class_losses)
    valid = labels != -1
    counts = np.stack([[(labels[i][valid[i]] == c).sum() for c in ids] for i in range(2)])
    present = np.atleast_2d(counts.sum(axis=0) > 0) if not per_image else counts > 0
    counted = (present if classes == "present" else np.ones_like(present)) * w
    weighted = rows * w
    want = {"none": weighted.reshape(np.shape(class_losses)), "sum": weighted.sum(),
            "mean": (weighted.sum(axis=-1) / counted.sum(axis=-1)).mean()}[reduction]
    assert_close(got, want, rtol=1e-9, atol=1e-12)
