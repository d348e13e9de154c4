"""task_aligned_assign and task_aligned_loss against float64 per-image loops transcribing the YOLOv8 semantics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, to_numpy

import polyloss as pl

lazy_xp_modules = [pl]

CIOU_EPS = 1e-7


def ciou(a, b):
    """CIoU of two xyxy boxes (Zheng et al. 2020), eps as polyloss' IoU family."""
    iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / (union + CIOU_EPS)
    cw, ch = max(a[2], b[2]) - min(a[0], b[0]), max(a[3], b[3]) - min(a[1], b[1])
    rho2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    v = 4 / math.pi**2 * (math.atan((b[2] - b[0]) / max(b[3] - b[1], CIOU_EPS))
                          - math.atan((a[2] - a[0]) / max(a[3] - a[1], CIOU_EPS))) ** 2
    alpha = v / (1 - iou + v + CIOU_EPS)
    return iou - rho2 / (cw**2 + ch**2 + CIOU_EPS) - alpha * v, iou


def assign_ref(scores, boxes, anchors, labels, gts, valid, *, top_k=10, alpha=0.5, beta=6.0, eps=1e-9,
               min_size=0.0, overlap="ciou"):
    """One image at a time, one ground truth at a time: the ultralytics TaskAlignedAssigner steps."""
    b, a, c = scores.shape
    out_labels, out_boxes = np.full((b, a), c), np.zeros((b, a, 4))
    out_scores, out_fg, out_idx = np.zeros((b, a, c)), np.zeros((b, a), bool), np.full((b, a), -1)
    for i in range(b):
        g = gts.shape[1]
        inside = np.zeros((g, a), bool)
        ov, metric = np.zeros((g, a)), np.zeros((g, a))
        for j in range(g):
            x1, y1, x2, y2 = gts[i, j]
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, min_size), max(y2 - y1, min_size)
            for k in range(a):
                ax, ay = anchors[k]
                inside[j, k] = valid[i, j] and min(ax - (cx - w / 2), ay - (cy - h / 2),
                                                   cx + w / 2 - ax, cy + h / 2 - ay) > eps
                if inside[j, k]:
                    ci, iou = ciou(gts[i, j], boxes[i, k])
                    ov[j, k] = max(ci, 0.0) if overlap == "ciou" else iou
                    metric[j, k] = scores[i, k, labels[i, j]] ** alpha * ov[j, k] ** beta
        pos = np.zeros((g, a), bool)
        for j in range(g):
            order = np.argsort(-metric[j], kind="stable")[: min(top_k, a)]
            pos[j, order] = True
        pos &= inside
        for k in range(a):
            if pos[:, k].sum() > 1:
                pos[:, k] = np.arange(g) == np.argmax(ov[:, k])
        best_metric = np.where(pos, metric, 0).max(axis=1)
        best_ov = np.where(pos, ov, 0).max(axis=1)
        for k in range(a):
            if pos[:, k].any():
                j = int(np.argmax(pos[:, k]))
                out_fg[i, k], out_idx[i, k], out_labels[i, k], out_boxes[i, k] = True, j, labels[i, j], gts[i, j]
                out_scores[i, k, labels[i, j]] = metric[j, k] * best_ov[j] / (best_metric[j] + eps)
    return out_labels, out_boxes, out_scores, out_fg, out_idx


def scene(rng, b=2, g=4, c=3, grid=(7, 6), stride=4.0, near=True):
    """Anchors on a grid, padded ground truth (some invalid), predictions near the boxes."""
    ys, xs = np.meshgrid(np.arange(grid[0]) + 0.5, np.arange(grid[1]) + 0.5, indexing="ij")
    anchors = np.stack([xs.ravel(), ys.ravel()], axis=-1) * stride
    a = anchors.shape[0]
    size = np.array([grid[1], grid[0]]) * stride
    xy = rng.random((b, g, 2)) * size * 0.6
    gts = np.concatenate([xy, xy + rng.random((b, g, 2)) * size * 0.4 + stride], axis=-1)
    labels = rng.integers(0, c, size=(b, g))
    valid = rng.random((b, g)) < 0.8
    valid[:, 0] = True
    scores = rng.random((b, a, c))
    centre = anchors[None] + rng.normal(scale=2.0, size=(b, a, 2))
    wh = rng.random((b, a, 2)) * size * 0.4 + 2
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=-1)
    if near:  # overlap every box a little with its best ground truth: positive CIoU, few ties
        boxes = 0.5 * boxes + 0.5 * gts[:, rng.integers(0, g, size=a)]
    return scores, boxes, anchors, labels, gts, valid


def _check_assignment(got, want):
    labels, boxes, scores, fg, idx = want
    assert_close(got.fg_mask, fg)
    assert_close(got.gt_index, idx.astype(np.int64), dtype=got.gt_index.dtype)
    assert_close(got.labels, labels.astype(np.int64), dtype=got.labels.dtype)
    assert_close(got.boxes, boxes, rtol=1e-10)
    assert_close(got.scores, scores, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("top_k", "overlap", "min_size"), [(10, "ciou", 0.0), (3, "iou", 0.0), (5, "ciou", 9.0)])
def test_assign_matches_reference(xp, rng, top_k, overlap, min_size):
    inputs = scene(rng)
    got = pl.task_aligned_assign(*(xp.asarray(x) for x in inputs), top_k=top_k, overlap=overlap, min_size=min_size)
    _check_assignment(got, assign_ref(*inputs, top_k=top_k, overlap=overlap, min_size=min_size))
    assert bool(np.any(to_numpy(got.fg_mask)))


def test_assign_resolves_conflicts_and_breaks_ties_stably(xp):
    """Two boxes claim the same anchors; equal metrics (t = 0 inside the box) go to the lower anchor index."""
    anchors = np.array([[1.0, 1.0], [3.0, 1.0], [5.0, 1.0], [7.0, 1.0]])
    gts = np.array([[[0.0, 0.0, 6.0, 2.0], [2.0, 0.0, 8.0, 2.0]]])
    boxes = np.array([[[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 8.0, 2.0], [2.0, 0.0, 8.0, 2.0], [50.0, 50.0, 51.0, 51.0]]])
    scores = np.full((1, 4, 2), 0.5)
    inputs = (scores, boxes, anchors, np.array([[0, 1]]), gts, np.array([[True, True]]))
    got = pl.task_aligned_assign(*(xp.asarray(x) for x in inputs), top_k=2)
    _check_assignment(got, assign_ref(*inputs, top_k=2))
    assert to_numpy(got.gt_index).tolist() == [[-1, 1, 1, -1]]  # anchors 1, 2 claimed by both: gt 1 (CIoU 1)
    one = pl.task_aligned_assign(*(xp.asarray(x) for x in inputs), top_k=1)  # ties: anchor 1 before anchor 2
    _check_assignment(one, assign_ref(*inputs, top_k=1))
    assert to_numpy(one.gt_index).tolist() == [[-1, 1, -1, -1]]


def test_assign_without_ground_truth_or_valid_boxes(xp, rng):
    scores, boxes, anchors, labels, gts, valid = scene(rng)
    empty = pl.task_aligned_assign(*(xp.asarray(x) for x in (scores, boxes, anchors, labels[:, :0], gts[:, :0],
                                                               valid[:, :0])))
    assert not np.any(to_numpy(empty.fg_mask)) and float(xp.sum(empty.scores)) == 0.0
    assert np.all(to_numpy(empty.labels) == 3) and np.all(to_numpy(empty.gt_index) == -1)
    none = pl.task_aligned_assign(*(xp.asarray(x) for x in (scores, boxes, anchors, labels, gts, valid & False)))
    assert not np.any(to_numpy(none.fg_mask))


def test_assign_bad_input(xp, rng):
    scores, boxes, anchors, labels, gts, valid = (xp.asarray(x) for x in scene(rng))
    if "jax" in xp.__name__:  # jitted by the test session: the value check is skipped, the scores are NaN
        assert np.all(np.isnan(to_numpy(pl.task_aligned_assign(scores, boxes, anchors, labels + 5, gts, valid).scores)))
    else:
        with pytest.raises(ValueError, match="task_aligned_assign: gt_labels of valid boxes"):
            pl.task_aligned_assign(scores, boxes, anchors, labels + 5, gts, valid)
    with pytest.raises(ValueError, match="task_aligned_assign: top_k"):
        pl.task_aligned_assign(scores, boxes, anchors, labels, gts, valid, top_k=0)
    with pytest.raises(ValueError, match="task_aligned_assign: anchor_points must have shape"):
        pl.task_aligned_assign(scores, boxes, anchors[:3, ...], labels, gts, valid)
    with pytest.raises(TypeError, match="task_aligned_assign: gt_valid must be bool"):
        pl.task_aligned_assign(scores, boxes, anchors, labels, gts, xp.astype(valid, xp.int32))


# --------------------------------------------------------------------------- #
# the loss
# --------------------------------------------------------------------------- #


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def loss_ref(logits, dist, anchors, stride, labels, gts, valid, *, reg_max, weights=(7.5, 0.5, 1.5), fixed=None,
             **options):
    """v8DetectionLoss: decode, assign on detached values, BCE / CIoU / DFL over the target-score sum, times B."""
    b, a, _c = logits.shape
    bins = dist.reshape(b, a, 4, reg_max)
    d = (softmax(bins) * np.arange(reg_max)).sum(-1)
    grid = anchors / stride[:, None]
    pred = np.concatenate([grid - d[..., :2], grid + d[..., 2:]], axis=-1)
    probs = 1 / (1 + np.exp(-logits))
    found = fixed or assign_ref(probs, pred * stride[:, None], anchors, labels, gts, valid, **options)
    _, tboxes, tscores, fg, _ = found
    total = max(tscores.sum(), 1.0)
    cls = (np.maximum(logits, 0) - logits * tscores + np.log1p(np.exp(-np.abs(logits)))).sum() / total
    box = dfl = 0.0
    for i in range(b):
        for k in range(a):
            if not fg[i, k]:
                continue
            w = tscores[i, k].sum()
            target = tboxes[i, k] / stride[k]
            box += (1 - ciou(pred[i, k], target)[0]) * w
            ltrb = np.clip(np.concatenate([grid[k] - target[:2], target[2:] - grid[k]]), 0, reg_max - 1.01)
            side = 0.0
            for s in range(4):
                lo = int(ltrb[s])
                logp = np.log(softmax(bins[i, k, s]))
                side -= (lo + 1 - ltrb[s]) * logp[lo] + (ltrb[s] - lo) * logp[lo + 1]
            dfl += side / 4 * w
    terms = np.array([box / total, cls, dfl / total]) * np.array(weights)
    return terms.sum() * b, terms


def loss_scene(rng, reg_max=8, stride_value=4.0):
    scores, _boxes, anchors, labels, gts, valid = scene(rng, stride=stride_value)
    b, a, c = scores.shape
    logits = rng.normal(size=(b, a, c)) * 2
    dist = rng.normal(size=(b, a, 4 * reg_max))
    return logits, dist, anchors, np.full(a, stride_value), labels, gts, valid


@pytest.mark.parametrize("reg_max", [8, 16])
def test_loss_matches_reference(xp, rng, reg_max):
    inputs = loss_scene(rng, reg_max)
    loss, terms = pl.task_aligned_loss(*(xp.asarray(x) for x in inputs), reg_max=reg_max, top_k=5,
                                       return_terms=True)
    want, want_terms = loss_ref(*inputs, reg_max=reg_max, top_k=5)
    assert_close(loss, want, rtol=1e-6)
    for name, value in zip(("box", "cls", "dfl"), want_terms, strict=True):
        assert_close(terms[name], value, rtol=1e-6, atol=1e-12)
    assert float(to_numpy(terms["box"])) > 0
    unscaled = pl.task_aligned_loss(*(xp.asarray(x) for x in inputs), reg_max=reg_max, top_k=5, batch_scale=False)
    assert_close(unscaled, want / inputs[0].shape[0], rtol=1e-6)


def test_loss_gradients_match_finite_differences(backend, rng):
    """Gradients in the logits and the box distribution (the assignment held constant, as in ultralytics).

    The dist check leaves out the CIoU term (box_weight 0): its alpha is held constant in the gradient, as
    ultralytics' and ``ciou_loss``'s (tests/test_boxes.py checks that), which central differences do not do.
    """
    logits, dist, anchors, stride, labels, gts, valid = loss_scene(rng, reg_max=4)
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    rest = [backend.asarray(x) for x in (anchors, stride, labels, gts, valid)]
    grid = anchors / stride[:, None]
    d = (softmax(dist.reshape(*dist.shape[:2], 4, 4)) * np.arange(4)).sum(-1)
    pred = np.concatenate([grid - d[..., :2], grid + d[..., 2:]], axis=-1) * stride[:, None]
    fixed = assign_ref(1 / (1 + np.exp(-logits)), pred, anchors, labels, gts, valid, top_k=4)
    assert fixed[3].any()
    for i, x0 in enumerate((logits, dist)):
        def f(x, i=i):
            args = [logits, dist, anchors, stride, labels, gts, valid]
            args[i] = x
            return loss_ref(*args, reg_max=4, fixed=fixed, weights=(7.5 * (1 - i), 0.5, 1.5))[0]

        numeric = np.zeros_like(x0)
        for idx in np.ndindex(x0.shape):
            hi, lo = x0.copy(), x0.copy()
            hi[idx] += 1e-6
            lo[idx] -= 1e-6
            numeric[idx] = (f(hi) - f(lo)) / 2e-6
        args = [backend.asarray(logits), backend.asarray(dist)]
        _, grad = backend.value_and_grad(
            lambda x, i=i, args=args: pl.task_aligned_loss(*[x if j == i else args[j] for j in range(2)], *rest,
                                                           reg_max=4, top_k=4, box_weight=7.5 * (1 - i)), args[i])
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_loss_is_finite_without_ground_truth(backend, rng):
    logits, dist, anchors, stride, labels, gts, valid = loss_scene(rng, reg_max=4)
    args = [backend.asarray(x) for x in (logits, dist, anchors, stride, labels[:, :0], gts[:, :0], valid[:, :0])]
    loss = pl.task_aligned_loss(*args, reg_max=4)
    b = logits.shape[0]
    bce0 = (np.maximum(logits, 0) + np.log1p(np.exp(-np.abs(logits)))).sum() * 0.5 * b
    assert_close(loss, bce0, rtol=1e-6)
    if backend.has_autodiff:
        assert_finite(backend.value_and_grad(lambda x: pl.task_aligned_loss(args[0], x, *args[2:], reg_max=4),
                                             args[1])[1])


def test_loss_bad_input(xp, rng):
    logits, dist, anchors, stride, labels, gts, valid = (xp.asarray(x) for x in loss_scene(rng, reg_max=4))
    with pytest.raises(ValueError, match="task_aligned_loss: box_dist must have shape"):
        pl.task_aligned_loss(logits, dist, anchors, stride, labels, gts, valid, reg_max=16)
    with pytest.raises(ValueError, match="task_aligned_loss: stride"):
        pl.task_aligned_loss(logits, dist, anchors, stride[:3, ...], labels, gts, valid, reg_max=4)
    with pytest.raises(TypeError, match="task_aligned_loss: return_terms"):
        pl.task_aligned_loss(logits, dist, anchors, stride, labels, gts, valid, reg_max=4, return_terms=1)
