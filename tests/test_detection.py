"""Detection losses against plain per-image loop oracles (SSD) and float64 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, random_logits, to_numpy

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

REDUCTIONS = ["mean", "sum", "none"]
VARIANCES = (0.1, 0.2)

# --------------------------------------------------------------------------- #
# Inputs: SSD-like priors and padded ground truth
# --------------------------------------------------------------------------- #


def make_priors(rows=4, cols=3, shapes=((0.3, 0.3), (0.5, 0.25), (0.25, 0.5))):
    """Priors (P, 4) in cxcywh on a rows x cols grid of the unit square, several shapes per cell."""
    out = []
    for i in range(rows):
        for j in range(cols):
            for w, h in shapes:
                out.append(((j + 0.5) / cols, (i + 0.5) / rows, w, h))
    return np.array(out)


def make_ground_truth(rng, n=3, g=4, num_classes=5):
    """Boxes (n, g, 4) xyxy, labels in [1, C), validity; image 1 has no valid box; padding is junk."""
    xy = rng.random((n, g, 2)) * 0.7
    wh = rng.random((n, g, 2)) * 0.4 + 0.05
    boxes = np.concatenate([xy, xy + wh], axis=-1)
    labels = rng.integers(1, num_classes, size=(n, g))
    valid = rng.random((n, g)) < 0.7
    valid[0, 0] = True
    if n > 1:
        valid[1] = False
    boxes[~valid] = 0.0
    labels[~valid] = -1
    return boxes, labels, valid


def cxcywh_to_xyxy(p):
    return np.array([p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2])


def iou_one(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def first_argmax(values):
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best


# --------------------------------------------------------------------------- #
# The oracle: SSD written plainly, one image at a time
# --------------------------------------------------------------------------- #


def match_oracle(gt_boxes, gt_labels, gt_valid, priors, threshold=0.5):
    """Per-image SSD matching; returns matched gt index (n, P) and labels (n, P)."""
    n, num_priors = gt_boxes.shape[0], priors.shape[0]
    pri = [cxcywh_to_xyxy(p) for p in priors]
    index = np.zeros((n, num_priors), dtype=np.int64)
    labels = np.zeros((n, num_priors), dtype=np.int64)
    for b in range(n):
        gts = [g for g in range(gt_boxes.shape[1]) if gt_valid[b, g]]
        if not gts:
            continue
        overlaps = [[iou_one(gt_boxes[b, g], p) for p in pri] for g in gts]
        for p in range(num_priors):  # each prior: the valid ground truth of highest IoU, lowest index on ties
            j = first_argmax([row[p] for row in overlaps])
            index[b, p] = gts[j]
            labels[b, p] = gt_labels[b, gts[j]] if overlaps[j][p] >= threshold else 0
        for j, g in enumerate(gts):  # every ground truth claims its best prior; a later one overwrites
            p = first_argmax(overlaps[j])
            index[b, p] = g
            labels[b, p] = gt_labels[b, g]
    return index, labels


def mining_oracle(loss, positive, ratio):
    keep = np.zeros(loss.shape, dtype=bool)
    for idx in np.ndindex(loss.shape[:-1]):
        row, pos = loss[idx], positive[idx]
        negatives = sorted((p for p in range(row.size) if not pos[p]), key=lambda p: (-row[p], p))
        for p in negatives[: math.floor(ratio * pos.sum())]:
            keep[(*idx, p)] = True
    return keep


def encode_one(box, prior):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([
        (cx - prior[0]) / (VARIANCES[0] * prior[2]), (cy - prior[1]) / (VARIANCES[0] * prior[3]),
        math.log(w / prior[2]) / VARIANCES[1], math.log(h / prior[3]) / VARIANCES[1],
    ])


def smooth_l1_one(d, beta):
    return abs(d) if beta == 0 else (0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta)


def multibox_oracle(loc, conf, gt_boxes, gt_labels, gt_valid, priors, *, threshold=0.5, ratio=3, loc_loss="smooth_l1",
                    beta=1.0, loc_weight=1.0):
    index, labels = match_oracle(gt_boxes, gt_labels, gt_valid, priors, threshold)
    total_loc = total_conf = 0.0
    num_pos = 0
    for b in range(loc.shape[0]):
        ce = np.array([
            -(conf[b, p, labels[b, p]] - m - math.log(np.exp(conf[b, p] - m).sum()))
            for p in range(priors.shape[0]) for m in [conf[b, p].max()]
        ])
        pos = labels[b] > 0
        keep = pos | mining_oracle(ce, pos, ratio)
        total_conf += ce[keep].sum()
        for p in np.flatnonzero(pos):
            target = encode_one(gt_boxes[b, index[b, p]], priors[p])
            total_loc += sum(smooth_l1_one(d, 0.0 if loc_loss == "l1" else beta) for d in loc[b, p] - target)
        num_pos += pos.sum()
    return (total_conf + loc_weight * total_loc) / num_pos if num_pos else 0.0


# --------------------------------------------------------------------------- #
# Regression losses
# --------------------------------------------------------------------------- #


def balanced_l1_one(d, alpha, gamma, beta):  # Pang et al. 2019
    x = abs(d)
    b = math.exp(gamma / alpha) - 1
    if x < beta:
        return alpha / b * (b * x + 1) * math.log(b * x / beta + 1) - alpha * x
    return gamma * x + gamma / b - alpha * beta


def reduce_ref(loss, reduction):
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def regression_pair(rng, shape=(3, 7, 4)):
    p = rng.normal(scale=1.5, size=shape)
    return p, p + rng.normal(scale=1.5, size=shape)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.5])
def test_smooth_l1_and_huber_match_formula(backend, rng, reduction, beta):
    p, t = regression_pair(rng)
    d = p - t
    want = np.vectorize(lambda v: smooth_l1_one(v, beta))(d)
    got = pl.smooth_l1_loss(backend.asarray(p), backend.asarray(t), beta=beta, reduction=reduction)
    assert_close(got, reduce_ref(want, reduction), rtol=1e-12)
    if beta > 0:
        got = pl.huber_loss(backend.asarray(p), backend.asarray(t), delta=beta, reduction=reduction)
        assert_close(got, reduce_ref(beta * want, reduction), rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("alpha", "gamma", "beta"), [(0.5, 1.5, 1.0), (0.3, 1.0, 0.5), (1.0, 2.0, 2.0)])
def test_balanced_l1_matches_formula(backend, rng, reduction, alpha, gamma, beta):
    p, t = regression_pair(rng)
    want = np.vectorize(lambda v: balanced_l1_one(v, alpha, gamma, beta))(p - t)
    got = pl.balanced_l1_loss(backend.asarray(p), backend.asarray(t), alpha=alpha, gamma=gamma, beta=beta,
                              reduction=reduction)
    assert_close(got, reduce_ref(want, reduction), rtol=1e-12)


def test_balanced_l1_is_continuous_at_beta(backend):
    below, above = np.array([1.0 - 1e-9]), np.array([1.0 + 1e-9])
    zero = backend.asarray(np.zeros(1))
    lo = to_numpy(pl.balanced_l1_loss(backend.asarray(below), zero))
    hi = to_numpy(pl.balanced_l1_loss(backend.asarray(above), zero))
    np.testing.assert_allclose(lo, hi, atol=1e-8)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("beta", [0.0, 0.7, 1.0])
def test_smooth_l1_and_huber_equal_torch(backend, rng, reduction, beta):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    p, t = regression_pair(rng)
    got = pl.smooth_l1_loss(backend.asarray(p), backend.asarray(t), beta=beta, reduction=reduction)
    assert_close(got, f.smooth_l1_loss(torch.tensor(p), torch.tensor(t), beta=beta, reduction=reduction).numpy())
    if beta > 0:
        got = pl.huber_loss(backend.asarray(p), backend.asarray(t), delta=beta, reduction=reduction)
        assert_close(got, f.huber_loss(torch.tensor(p), torch.tensor(t), delta=beta, reduction=reduction).numpy())


@pytest.mark.parametrize("name", ["smooth_l1_loss", "huber_loss", "balanced_l1_loss"])
def test_regression_gradients(backend, rng, name):
    p, t = regression_pair(rng, (2, 5))
    y = backend.asarray(t)
    backend.check_grad(lambda x: getattr(pl, name)(x, y), p)


# --------------------------------------------------------------------------- #
# Encoding
# --------------------------------------------------------------------------- #


def test_encode_matches_formula_and_decode_inverts_it(backend, rng):
    priors = make_priors()
    boxes, _, _ = make_ground_truth(rng, n=1, g=priors.shape[0])
    boxes = boxes[0]
    boxes[np.all(boxes == 0, axis=-1)] = [0.1, 0.2, 0.3, 0.5]
    want = np.stack([encode_one(b, p) for b, p in zip(boxes, priors, strict=True)])
    got = pl.encode_boxes(backend.asarray(boxes), backend.asarray(priors))
    assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert_close(pl.decode_boxes(got, backend.asarray(priors)), boxes, rtol=1e-12, atol=1e-12)
    offsets = rng.normal(size=(2, priors.shape[0], 4))  # decode then encode: offsets come back
    decoded = pl.decode_boxes(backend.asarray(offsets), backend.asarray(priors))
    assert tuple(decoded.shape) == offsets.shape
    assert_close(pl.encode_boxes(decoded, backend.asarray(priors)), offsets, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("box_format", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("prior_format", ["xyxy", "cxcywh"])
def test_encode_decode_formats(backend, rng, box_format, prior_format):
    priors = make_priors()
    pri_xyxy = np.stack([cxcywh_to_xyxy(p) for p in priors])
    pri = backend.asarray(priors if prior_format == "cxcywh" else pri_xyxy)
    boxes = backend.asarray(np.abs(rng.normal(size=(priors.shape[0], 4))) + np.array([0.0, 0.0, 0.5, 0.5]))
    if box_format == "xyxy":
        boxes = pl.box_convert(boxes, in_fmt="xywh", out_fmt="xyxy")
    kw = {"box_format": box_format, "prior_format": prior_format, "variances": (0.2, 0.3)}
    offsets = pl.encode_boxes(boxes, pri, **kw)
    reference = pl.encode_boxes(pl.box_convert(boxes, in_fmt=box_format, out_fmt="xyxy"), backend.asarray(priors),
                                variances=(0.2, 0.3))
    assert_close(offsets, to_numpy(reference), rtol=1e-10, atol=1e-12)
    assert_close(pl.decode_boxes(offsets, pri, **kw), to_numpy(boxes), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- #
# Matching and mining
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("threshold", [0.5, 0.3])
def test_match_priors_equals_per_image_oracle(backend, rng, threshold):
    priors = make_priors()
    boxes, labels, valid = make_ground_truth(rng, n=4, g=5)
    got_boxes, got_labels = pl.match_priors(backend.asarray(boxes), backend.asarray(labels), backend.asarray(valid),
                                            backend.asarray(priors), iou_threshold=threshold)
    index, want_labels = match_oracle(boxes, labels, valid, priors, threshold)
    assert_close(got_labels, want_labels)
    assert np.all(to_numpy(got_labels)[1] == 0)  # the image without ground truth is all background
    want_boxes = np.take_along_axis(boxes, np.repeat(index[..., None], 4, axis=-1), axis=1)
    assert_close(got_boxes, want_boxes)


def test_match_priors_tie_breaking(backend):
    priors = make_priors()
    box = cxcywh_to_xyxy(priors[7])
    # two identical valid ground truths: both claim prior 7, the later one (index 2) keeps it;
    # the ground truth between them is padding and never matches
    boxes = np.stack([box, np.zeros(4), box])[None]
    labels = np.array([[3, 4, 1]])
    valid = np.array([[True, False, True]])
    _, got_labels = pl.match_priors(backend.asarray(boxes), backend.asarray(labels), backend.asarray(valid),
                                    backend.asarray(priors))
    got_labels = to_numpy(got_labels)[0]
    assert got_labels[7] == 1
    _, want = match_oracle(boxes, labels, valid, priors)
    assert_close(got_labels, want[0])


@pytest.mark.parametrize("ratio", [3, 2, 0.5, 0])
def test_hard_negative_mining_equals_oracle(backend, rng, ratio):
    loss = np.round(rng.random((3, 2, 17)) * 4) / 4  # few distinct values: many ties
    positive = rng.random(loss.shape) < 0.15
    positive[0, 0] = False  # a row without positives keeps no negatives
    positive[2, 1] = True  # a row of positives only
    got = pl.hard_negative_mining(backend.asarray(loss), backend.asarray(positive), neg_pos_ratio=ratio)
    want = mining_oracle(loss, positive, ratio)
    assert got.dtype == backend.xp.bool
    np.testing.assert_array_equal(to_numpy(got), want)
    assert not np.any(to_numpy(got)[0, 0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hard_negative_mining_signed_zeros_and_infinities(backend, rng, dtype):
    """-0 ties with +0 (taken in prior order), negative and infinite losses rank by value: the k-th
    largest is found on the float bits on torch and JAX, which must agree with the value order."""
    values = np.array([-0.0, 0.0, -1.5, 2.0, np.inf, -np.inf, 0.25, -0.0, 3.0])
    loss = rng.choice(values, size=(4, 23)).astype(dtype)
    positive = rng.random(loss.shape) < 0.2
    positive[:, 0] = True
    for ratio in (1, 3, 30):
        got = pl.hard_negative_mining(backend.asarray(loss), backend.asarray(positive), neg_pos_ratio=ratio)
        np.testing.assert_array_equal(to_numpy(got), mining_oracle(loss, positive, ratio))


# --------------------------------------------------------------------------- #
# MultiBox
# --------------------------------------------------------------------------- #


def multibox_inputs(rng, n=3, g=4, num_classes=5, priors=None):
    priors = make_priors() if priors is None else priors
    boxes, labels, valid = make_ground_truth(rng, n=n, g=g, num_classes=num_classes)
    loc = rng.normal(scale=0.5, size=(n, priors.shape[0], 4))
    conf = random_logits(rng, (n, priors.shape[0], num_classes))
    return loc, conf, boxes, labels, valid, priors


OPTIONS = [
    {},
    {"loc_loss": "l1"},
    {"beta": 0.3, "neg_pos_ratio": 2, "loc_weight": 0.5},
    {"iou_threshold": 0.35, "neg_pos_ratio": 1.5},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "default")
def test_multibox_loss_equals_per_image_oracle(backend, rng, options):
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    got = pl.multibox_loss(*(backend.asarray(a) for a in (loc, conf, boxes, labels, valid, priors)), **options)
    translate = {"iou_threshold": "threshold", "neg_pos_ratio": "ratio"}
    want = multibox_oracle(loc, conf, boxes, labels, valid, priors,
                           **{translate.get(k, k): v for k, v in options.items()})
    assert_close(got, np.array(want), rtol=1e-10)


def test_multibox_gradients(backend, rng):
    small = make_priors(2, 2, ((0.5, 0.5), (0.7, 0.4)))  # few entries: each costs two evaluations
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng, n=2, g=2, num_classes=3, priors=small)
    rest = [backend.asarray(a) for a in (boxes, labels, valid, priors)]
    c, lc = backend.asarray(conf), backend.asarray(loc)
    backend.check_grad(lambda x: pl.multibox_loss(x, c, *rest), loc)
    backend.check_grad(lambda x: pl.multibox_loss(lc, x, *rest), conf)


def test_multibox_without_positives_is_zero_with_zero_gradient(backend, rng):
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    valid[:] = False
    args = [backend.asarray(a) for a in (boxes, labels, valid, priors)]
    assert_close(pl.multibox_loss(backend.asarray(loc), backend.asarray(conf), *args), np.array(0.0))
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda x: pl.multibox_loss(x, backend.asarray(conf), *args),
                                             backend.asarray(loc))
        assert_close(value, np.array(0.0))
        assert_close(grad, np.zeros_like(loc))
        _, grad = backend.value_and_grad(lambda x: pl.multibox_loss(backend.asarray(loc), x, *args),
                                         backend.asarray(conf))
        assert_close(grad, np.zeros_like(conf))


def test_multibox_saturated_logits_are_finite(backend, rng):
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    conf = np.sign(conf) * 1e4
    args = [backend.asarray(a) for a in (boxes, labels, valid, priors)]
    assert_finite(pl.multibox_loss(backend.asarray(loc), backend.asarray(conf), *args))
    if backend.has_autodiff:
        assert_finite(*backend.value_and_grad(lambda x: pl.multibox_loss(backend.asarray(loc), x, *args),
                                              backend.asarray(conf)))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_multibox_half_precision(backend, rng, half):
    if not hasattr(backend.xp, half):
        pytest.skip(f"{backend.name} has no {half}")
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    dt, f32 = backend.float_dtype(half), backend.float_dtype("float32")
    lh, ch = backend.asarray(loc, dtype=dt), backend.asarray(conf, dtype=dt)
    args = [backend.asarray(boxes, dtype=f32), backend.asarray(labels), backend.asarray(valid),
            backend.asarray(priors, dtype=f32)]
    got = pl.multibox_loss(lh, ch, *args)
    assert got.dtype == dt
    want = pl.multibox_loss(backend.asarray(to_numpy(lh), dtype=f32), backend.asarray(to_numpy(ch), dtype=f32), *args)
    assert_close(got, to_numpy(want), rtol=2e-2 if half == "bfloat16" else 2e-3)


def test_bad_input(backend, rng):
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    a = {k: backend.asarray(v) for k, v in zip("lcbyvp", (loc, conf, boxes, labels, valid, priors), strict=True)}
    with pytest.raises(ValueError, match=r"multibox_loss: loc_pred must have shape \(3, 36, 4\), got \(3, 35, 4\)"):
        pl.multibox_loss(a["l"][:, :35, ...], a["c"], a["b"], a["y"], a["v"], a["p"])
    with pytest.raises(ValueError, match=r"multibox_loss: conf_pred must have shape \(3, 36, C\)"):
        pl.multibox_loss(a["l"], a["c"][0, ...], a["b"], a["y"], a["v"], a["p"])
    with pytest.raises(TypeError, match="match_priors: gt_valid must be a boolean mask"):
        pl.match_priors(a["b"], a["y"], a["y"], a["p"])
    with pytest.raises(TypeError, match="match_priors: gt_labels must hold integer class indices"):
        pl.match_priors(a["b"], a["b"][..., 0], a["v"], a["p"])
    with pytest.raises(ValueError, match=r"match_priors: gt_boxes must have shape \(N, G, 4\) with G >= 1"):
        pl.match_priors(a["b"][0, ...], a["y"], a["v"], a["p"])
    with pytest.raises(ValueError, match=r"match_priors: gt_labels must have shape \(3, 4\), got \(3, 3\)"):
        pl.match_priors(a["b"], a["y"][:, :3], a["v"], a["p"])
    with pytest.raises(ValueError, match=r"match_priors: iou_threshold must lie in \[0, 1\]"):
        pl.match_priors(a["b"], a["y"], a["v"], a["p"], iou_threshold=1.5)
    with pytest.raises(ValueError, match="multibox_loss: loc_loss must be one of 'smooth_l1', 'l1', got 'l2'"):
        pl.multibox_loss(a["l"], a["c"], a["b"], a["y"], a["v"], a["p"], loc_loss="l2")
    with pytest.raises(ValueError, match="encode_boxes: variances must be two positive numbers"):
        pl.encode_boxes(a["b"], a["b"], variances=(0.1,))
    with pytest.raises(ValueError, match="hard_negative_mining: neg_pos_ratio must be >= 0"):
        pl.hard_negative_mining(a["c"][..., 0], a["c"][..., 0] > 0, neg_pos_ratio=-1)
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be >= 0"):
        pl.smooth_l1_loss(a["l"], a["l"], beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss: delta must be > 0, got 0"):
        pl.huber_loss(a["l"], a["l"], delta=0)
    with pytest.raises(ValueError, match="balanced_l1_loss: gamma must be > 0"):
        pl.balanced_l1_loss(a["l"], a["l"], gamma=0.0)
    with pytest.raises(ValueError, match=r"smooth_l1_loss: y_true must have the shape of y_pred"):
        pl.smooth_l1_loss(a["l"], a["c"])
    with pytest.raises(ValueError, match=r"multibox_loss: conf_pred must have C >= 2 classes .*, got C = 1"):
        pl.multibox_loss(a["l"], a["c"][..., :1], a["b"], a["y"], a["v"], a["p"])
    # label values are checked on concrete arrays, eager JAX included; on JAX pl.<name> is jitted in this
    # module (lazy_xp_modules), so the checks are called through polyloss.detection.ssd, which is not
    multibox, match = (pl.detection.ssd.multibox_loss, pl.detection.ssd.match_priors) if backend.is_jax else (
        pl.multibox_loss, pl.match_priors)
    for value, found in ((5, 5), (0, 0), (-1, -1)):
        bad = labels.copy()
        bad[0, 0], bad[1, 0] = value, 0  # ground truth 0 of image 0 is valid, of image 1 padding
        valid0 = valid.copy()
        valid0[0, 0], valid0[1, 0] = True, False
        with pytest.raises(ValueError, match=rf"multibox_loss: gt_labels of valid boxes must lie in \[1, 5\) "
                                             rf"\(0 is background\), found {found}"):
            multibox(a["l"], a["c"], a["b"], backend.asarray(bad), backend.asarray(valid0), a["p"])
    bad = labels.copy()
    bad[0, 0], valid0 = 0, valid.copy()
    valid0[0, 0] = True
    with pytest.raises(ValueError, match=r"match_priors: gt_labels of valid boxes must be >= 1 "
                                         r"\(0 is background\), found 0"):
        match(a["b"], backend.asarray(bad), backend.asarray(valid0), a["p"])


# --------------------------------------------------------------------------- #
# torch.compile(fullgraph=True)
# --------------------------------------------------------------------------- #


def test_torch_compile_fullgraph_matches_eager(backend, rng):
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    args = [backend.asarray(a) for a in (boxes, labels, valid, priors)]
    c = backend.asarray(conf)
    y = backend.asarray(regression_pair(rng, (3, 4))[1])

    def losses(x):
        r = x[0, :3, :]
        regression = pl.smooth_l1_loss(r, y) + pl.huber_loss(r, y, delta=0.5) + pl.balanced_l1_loss(r, y)
        return pl.multibox_loss(x, c, *args) + regression

    def utilities(x):
        matched, matched_labels = pl.match_priors(*args)
        mined = pl.hard_negative_mining(c[..., 0], matched_labels > 0)
        return matched, matched_labels, mined, pl.decode_boxes(x, args[3]), pl.encode_boxes(args[0], args[0])

    torch._dynamo.reset()
    compiled = torch.compile(losses, fullgraph=True, backend="aot_eager")
    want = backend.value_and_grad(losses, backend.asarray(loc))
    got = backend.value_and_grad(compiled, backend.asarray(loc))
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
    compiled = torch.compile(utilities, fullgraph=True, backend="aot_eager")
    for g, w in zip(compiled(backend.asarray(loc)), utilities(backend.asarray(loc)), strict=True):
        np.testing.assert_array_equal(to_numpy(g), to_numpy(w))


# --------------------------------------------------------------------------- #
# Degenerate valid ground truth, edge sizes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("kind", ["zero-width", "zero-height", "point", "inverted"])
def test_degenerate_valid_box_is_treated_as_padding(backend, rng, kind):
    """A valid box of zero or negative width/height matches nothing and is not forced (it would
    encode to log 0): the result equals the oracle with that box marked invalid, finite, with a
    finite gradient, and the real boxes keep their forced matches."""
    loc, conf, boxes, labels, valid, priors = multibox_inputs(rng)
    real = valid.copy()
    x1, y1 = 0.4, 0.4
    boxes[0, 1] = {"zero-width": (x1, y1, x1, 0.6), "zero-height": (x1, y1, 0.6, y1), "point": (x1, y1, x1, y1),
                   "inverted": (0.6, y1, x1, 0.7)}[kind]
    valid[0, 1], labels[0, 1] = True, 2
    real[0, 1] = False
    # every prior has IoU 0 with the degenerate box, so it claimed prior 0, the best prior of ground truth 0
    boxes[0, 0] = cxcywh_to_xyxy(priors[0])
    args = [backend.asarray(a) for a in (boxes, labels, valid, priors)]
    _, got_labels = pl.match_priors(*args)
    _, want_labels = match_oracle(boxes, labels, real, priors)
    assert_close(got_labels, want_labels)
    got = pl.multibox_loss(backend.asarray(loc), backend.asarray(conf), *args)
    assert_close(got, np.array(multibox_oracle(loc, conf, boxes, labels, real, priors)), rtol=1e-10)
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda x: pl.multibox_loss(x, backend.asarray(conf), *args),
                                             backend.asarray(loc))
        assert_finite(value)
        assert_finite(grad)


def test_encode_boxes_is_finite_for_degenerate_boxes(backend):
    """Widths and heights at or below 0 are clipped to the smallest normal number before the log."""
    boxes = np.array([[0.2, 0.2, 0.2, 0.5], [0.2, 0.2, 0.5, 0.2], [0.5, 0.5, 0.2, 0.2], [0.1, 0.1, 0.4, 0.6]])
    priors = np.tile(np.array([[0.3, 0.3, 0.2, 0.2]]), (4, 1))
    got = to_numpy(pl.encode_boxes(backend.asarray(boxes), backend.asarray(priors)))
    assert np.all(np.isfinite(got))
    assert np.all(got[:3, 2:][[0, 1, 2, 2], [0, 1, 0, 1]] < -100)  # a tiny size: a very negative log offset
    assert_close(got[3], encode_one(boxes[3], priors[3]), rtol=1e-6)


def test_edge_sizes_give_clear_errors_or_empty_results(backend, rng):
    """Shapes that cannot pair boxes with priors are errors naming the function and its arguments;
    zero priors give empty matches, no mined negative and a MultiBox loss of 0."""
    five, eight = backend.asarray(np.tile([0.1, 0.1, 0.4, 0.5], (5, 1))), backend.asarray(make_priors()[:8])
    with pytest.raises(ValueError, match=r"encode_boxes: boxes \(5, 4\) and priors \(8, 4\) must broadcast"):
        pl.encode_boxes(five, eight)
    with pytest.raises(ValueError, match=r"decode_boxes: offsets \(5, 4\) and priors \(8, 4\) must broadcast"):
        pl.decode_boxes(five, eight)
    loss = backend.asarray(rng.random((2, 6)))
    with pytest.raises(ValueError, match=r"hard_negative_mining: positive must have the shape of conf_loss \(2, 6\)"):
        pl.hard_negative_mining(loss, backend.asarray(np.zeros((2, 5), dtype=bool)))
    with pytest.raises(TypeError, match=r"hard_negative_mining: positive must be a boolean mask"):
        pl.hard_negative_mining(loss, loss)

    boxes, labels, valid = make_ground_truth(rng, n=2, g=3)
    gt = [backend.asarray(a) for a in (boxes, labels, valid)]
    none = backend.asarray(np.zeros((0, 4)))
    matched, matched_labels = pl.match_priors(*gt, none)
    assert tuple(matched.shape) == (2, 0, 4)
    assert tuple(matched_labels.shape) == (2, 0)
    mined = pl.hard_negative_mining(backend.asarray(np.zeros((2, 0))), backend.asarray(np.zeros((2, 0), dtype=bool)))
    assert tuple(mined.shape) == (2, 0)
    conf = backend.asarray(np.zeros((2, 0, 5)))
    assert_close(pl.multibox_loss(backend.asarray(np.zeros((2, 0, 4))), conf, *gt, none), np.array(0.0))


def test_empty_batch_gives_zero_mean_with_zero_gradient(backend, rng):
    """N = 0: every regression loss and multibox_loss give 0 for a mean (sum), the empty array for "none"."""
    empty = np.zeros((0, 4))
    for name in ("smooth_l1_loss", "huber_loss", "balanced_l1_loss"):
        fn = getattr(pl, name)
        assert_close(fn(backend.asarray(empty), backend.asarray(empty)), np.array(0.0))
        assert tuple(fn(backend.asarray(empty), backend.asarray(empty), reduction="none").shape) == (0, 4)
    priors = backend.asarray(make_priors())
    p = priors.shape[0]
    gt = [backend.asarray(np.zeros((0, 3, 4))), backend.asarray(np.zeros((0, 3), dtype=np.int64)),
          backend.asarray(np.zeros((0, 3), dtype=bool))]
    matched, matched_labels = pl.match_priors(*gt, priors)
    assert tuple(matched.shape) == (0, p, 4)
    assert tuple(matched_labels.shape) == (0, p)
    conf = backend.asarray(np.zeros((0, p, 5)))
    loc = backend.asarray(np.zeros((0, p, 4)))
    assert_close(pl.multibox_loss(loc, conf, *gt, priors), np.array(0.0))
    if backend.has_autodiff:
        value, grad = backend.value_and_grad(lambda x: pl.multibox_loss(x, conf, *gt, priors), loc)
        assert_close(value, np.array(0.0))
        assert grad.shape == (0, p, 4)
        value, grad = backend.value_and_grad(lambda x: pl.smooth_l1_loss(x, x * 2), backend.asarray(empty))
        assert_close(value, np.array(0.0))
