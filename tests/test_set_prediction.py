"""Set prediction: linear_sum_assignment against SciPy, generalized_box_iou, hungarian_match and
set_prediction_loss against float64 per-image references transcribed from DETR / Deformable DETR / RT-DETR."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, assert_finite, to_numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyloss as pl
from polyloss.detection import _lsa

scipy_optimize = pytest.importorskip("scipy.optimize")

lazy_xp_modules = [pl]


@pytest.fixture(params=["native", "solver"])
def path(request, monkeypatch):
    """Both ways: SciPy where the backend has it (eager NumPy / CPU torch), and the lockstep solver forced."""
    if request.param == "solver":
        monkeypatch.setattr(_lsa, "native_linear_sum_assignment", lambda *a, **k: None)
    return request.param


def _check_assignment(cost, got, row_valid=None, col_valid=None, maximize=False):
    """Each problem: a matching of valid rows to valid distinct columns, -1 elsewhere, of SciPy's size and total."""
    got = to_numpy(got)
    assert got.shape == cost.shape[:-1]
    for index in np.ndindex(cost.shape[:-2]):
        c, o = cost[index], got[index]
        rv = np.ones(c.shape[0], bool) if row_valid is None else row_valid[index]
        cv = np.ones(c.shape[1], bool) if col_valid is None else col_valid[index]
        rows, cols = np.flatnonzero(rv), np.flatnonzero(cv)
        r, k = scipy_optimize.linear_sum_assignment(c[np.ix_(rows, cols)], maximize=maximize)
        matched = np.flatnonzero(o >= 0)
        assert len(matched) == len(r), f"problem {index}: {len(matched)} pairs, SciPy {len(r)}"
        assert rv[matched].all() and cv[o[matched]].all() and len(set(o[matched])) == len(matched)
        assert ((o == -1) | (o >= 0)).all()
        want = c[np.ix_(rows, cols)][r, k].sum()
        np.testing.assert_allclose(c[matched, o[matched]].sum(), want, rtol=1e-12, atol=1e-9, err_msg=str(index))


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3), (1, 1), (9, 9), (2, 12)])
@pytest.mark.parametrize("kind", ["float", "tied_int"])
def test_lsa_equals_scipy_on_500_problems(backend, rng, path, shape, kind):
    """500 random problems per shape in one batched call: SciPy's total on each (ties: integer costs in 0..3)."""
    size = (500, *shape)
    cost = rng.random(size) if kind == "float" else rng.integers(0, 4, size=size)
    got = pl.linear_sum_assignment(backend.asarray(cost))
    _check_assignment(cost.astype(np.float64), got)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 5)])
def test_lsa_masks(backend, rng, path, shape):
    """Random row / column masks (valid rows sometimes outnumber valid columns): SciPy on the kept submatrix."""
    cost = rng.integers(0, 5, size=(300, *shape)).astype(np.float64)
    rv, cv = rng.random((300, shape[0])) < 0.7, rng.random((300, shape[1])) < 0.6
    got = pl.linear_sum_assignment(backend.asarray(cost), row_valid=backend.asarray(rv), col_valid=backend.asarray(cv))
    _check_assignment(cost, got, rv, cv)
    got = pl.linear_sum_assignment(backend.asarray(cost), row_valid=backend.asarray(rv))
    _check_assignment(cost, got, rv, None)


def test_lsa_maximize_and_leading_axes(backend, rng, path):
    cost = rng.normal(size=(2, 3, 4, 5, 6))
    _check_assignment(cost, pl.linear_sum_assignment(backend.asarray(cost), maximize=True), maximize=True)
    _check_assignment(cost, pl.linear_sum_assignment(backend.asarray(cost)))


def test_lsa_forbidden_entries(backend, rng, path):
    """+inf entries are never matched; feasible problems get SciPy's total, infeasible ones a maximum matching."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    cost = np.where(rng.random((300, 5, 6)) < 0.45, np.inf, rng.random((300, 5, 6)))
    got = to_numpy(pl.linear_sum_assignment(backend.asarray(cost)))
    infeasible = 0
    for b in range(300):
        o = got[b]
        matched = np.flatnonzero(o >= 0)
        assert np.isfinite(cost[b, matched, o[matched]]).all() and len(set(o[matched])) == len(matched)
        try:
            r, k = scipy_optimize.linear_sum_assignment(cost[b])
        except ValueError:
            infeasible += 1
            size = (maximum_bipartite_matching(csr_matrix(np.isfinite(cost[b]).astype(int))) >= 0).sum()
            assert len(matched) == size
            continue
        assert len(matched) == len(r)
        np.testing.assert_allclose(cost[b, matched, o[matched]].sum(), cost[b][r, k].sum(), rtol=1e-12)
    assert infeasible > 0  # the draw covers both cases


def test_lsa_degenerate(backend, path):
    xp = backend.xp
    equal = np.ones((3, 4, 4))
    _check_assignment(equal, pl.linear_sum_assignment(backend.asarray(equal)))
    assert to_numpy(pl.linear_sum_assignment(backend.asarray(np.array([[2.5]])))).tolist() == [0]
    for shape in [(0, 3, 3), (2, 0, 3), (2, 3, 0), (0, 0)]:
        got = pl.linear_sum_assignment(xp.zeros(shape, dtype=xp.float64))
        assert tuple(got.shape) == shape[:-1] and xp.isdtype(got.dtype, "integral")
        assert (to_numpy(got) == -1).all()
    none_valid = pl.linear_sum_assignment(backend.asarray(equal), row_valid=backend.asarray(np.zeros((3, 4), bool)))
    assert (to_numpy(none_valid) == -1).all()


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
def test_lsa_property_against_scipy(xp, r, k, batch, seed, masked):
    """Random sizes, integer and float costs, masks: the lockstep solver (forced) equals SciPy's totals."""
    g = np.random.default_rng(seed)
    cost = g.integers(-3, 4, size=(batch, r, k)).astype(np.float64)
    cost[: batch // 2] = g.normal(size=(batch // 2, r, k))
    rv = g.random((batch, r)) < 0.8 if masked else None
    cv = g.random((batch, k)) < 0.8 if masked else None

    def arr(a):
        return None if a is None else xp.asarray(a)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_lsa, "native_linear_sum_assignment", lambda *a, **kw: None)
        got = pl.linear_sum_assignment(arr(cost), row_valid=arr(rv), col_valid=arr(cv))
    _check_assignment(cost, got, rv, cv)


def test_lsa_errors():
    with pytest.raises(ValueError, match="linear_sum_assignment: cost must have shape"):
        pl.linear_sum_assignment(np.zeros(3))
    with pytest.raises(TypeError, match="linear_sum_assignment: cost must be a real"):
        pl.linear_sum_assignment(np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="row_valid must have shape"):
        pl.linear_sum_assignment(np.zeros((2, 3)), row_valid=np.ones(3, bool))
    with pytest.raises(TypeError, match="col_valid must be a bool"):
        pl.linear_sum_assignment(np.zeros((2, 3)), col_valid=np.ones(3))
    with pytest.raises(TypeError, match="maximize must be True or False"):
        pl.linear_sum_assignment(np.zeros((2, 3)), maximize=1)
    with pytest.raises(ValueError, match="NaN"):
        pl.linear_sum_assignment(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="-inf"):
        pl.linear_sum_assignment(np.array([[-np.inf, 1.0]]))


def test_lsa_compiled_with_masks(backend, rng):
    """jax.jit / torch.compile(fullgraph=True) of the masked (padded, per-problem transposed) solver path."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no compiler")
    cost = rng.integers(0, 4, size=(40, 5, 7)).astype(np.float64)
    rv, cv = rng.random((40, 5)) < 0.8, rng.random((40, 7)) < 0.5
    args = [backend.asarray(a) for a in (cost, rv, cv)]

    def f(c, r, v):
        return pl.linear_sum_assignment(c, row_valid=r, col_valid=v)

    if backend.is_jax:
        import jax

        got = jax.jit(f)(*args)
    else:
        import torch

        torch._dynamo.reset()
        got = torch.compile(f, fullgraph=True, backend="aot_eager")(*args)
    _check_assignment(cost, got, rv, cv)


# --------------------------------------------------------------------------- #
# generalized_box_iou
# --------------------------------------------------------------------------- #


def _np_giou(a, b):
    """Pairwise GIoU of xyxy boxes by the formula, float64 loops."""
    out = np.empty((len(a), len(b)))
    for i, p in enumerate(a):
        for j, q in enumerate(b):
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = iw * ih
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            hull = (max(p[2], q[2]) - min(p[0], q[0])) * (max(p[3], q[3]) - min(p[1], q[1]))
            out[i, j] = inter / union - (hull - union) / hull
    return out


def _xyxy(rng, shape):
    xy = rng.random((*shape, 2)) * 4
    return np.concatenate([xy, xy + rng.random((*shape, 2)) * 3 + 0.1], axis=-1)


def test_generalized_box_iou_matches_formula(backend, rng):
    a, b = _xyxy(rng, (2, 3, 5)), _xyxy(rng, (2, 3, 4))
    want = np.stack([np.stack([_np_giou(a[i, j], b[i, j]) for j in range(3)]) for i in range(2)])
    assert_close(pl.generalized_box_iou(backend.asarray(a), backend.asarray(b)), want, rtol=1e-12, atol=1e-12)
    cx = np.concatenate([(a[..., :2] + a[..., 2:]) / 2, a[..., 2:] - a[..., :2]], -1)
    cy = np.concatenate([(b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2]], -1)
    got = pl.generalized_box_iou(backend.asarray(cx), backend.asarray(cy), box_format="cxcywh")
    assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_generalized_box_iou_gradient_and_degenerate(backend, rng):
    a, b = _xyxy(rng, (3,)), _xyxy(rng, (4,))
    backend.check_grad(lambda x: backend.xp.sum(pl.generalized_box_iou(x, backend.asarray(b))), a)
    point = np.array([[1.0, 1.0, 1.0, 1.0]])
    assert_finite(pl.generalized_box_iou(backend.asarray(point), backend.asarray(point)))


# --------------------------------------------------------------------------- #
# hungarian_match and set_prediction_loss: float64 references, one image at a time
# --------------------------------------------------------------------------- #


def _cxcywh_to_xyxy(b):
    return np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2], -1)


def _detr(rng, b=3, q=9, g=5, c=4, layers=None):
    lead = (b,) if layers is None else (layers, b)
    boxes = np.concatenate([rng.random((*lead, q, 2)) * 0.6 + 0.2, rng.random((*lead, q, 2)) * 0.3 + 0.05], -1)
    gt = np.concatenate([rng.random((b, g, 2)) * 0.6 + 0.2, rng.random((b, g, 2)) * 0.3 + 0.05], -1)
    valid = rng.random((b, g)) < 0.7
    valid[0] = False  # an image without ground truth
    valid[1, :2] = True
    labels = np.where(valid, rng.integers(0, c, size=(b, g)), -1)  # padding slots hold -1
    return rng.normal(scale=2.0, size=(*lead, q, c + 1)), boxes, labels, gt, valid


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _reference_cost(logits, boxes, labels, gt, cost, w=(1.0, 5.0, 2.0), alpha=0.25, gamma=2.0):
    """DETR's / Deformable DETR's HungarianMatcher cost for one image: (Q, G_valid)."""
    if cost == "softmax":
        p = np.exp(logits - logits.max(-1, keepdims=True))
        c_cls = -(p / p.sum(-1, keepdims=True))[:, labels]
    else:
        p = _sigmoid(logits)
        neg = (1 - alpha) * p**gamma * -np.log(1 - p)
        pos = alpha * (1 - p) ** gamma * -np.log(p)
        c_cls = (pos - neg)[:, labels]
    l1 = np.abs(boxes[:, None, :] - gt[None, :, :]).sum(-1)
    giou = _np_giou(_cxcywh_to_xyxy(boxes), _cxcywh_to_xyxy(gt))
    return w[0] * c_cls + w[1] * l1 - w[2] * giou


@pytest.mark.parametrize(("class_cost", "q"), [("softmax", 9), ("focal", 9), ("softmax", 3)])
def test_hungarian_match_is_optimal_for_detr_cost(backend, rng, class_cost, q):
    """Per image: the matched pairs' total DETR cost equals SciPy's optimum (q=3 < G: some ground truth unmatched)."""
    logits, boxes, labels, gt, valid = _detr(rng, q=q)
    logits = logits[..., :-1] if class_cost == "focal" else logits
    got = to_numpy(pl.hungarian_match(*(backend.asarray(a) for a in (logits, boxes, labels, gt, valid)),
                                      class_cost=class_cost))
    assert got.shape == (3, q)
    for b in range(3):
        slots = np.flatnonzero(valid[b])
        cost = _reference_cost(logits[b], boxes[b], labels[b, slots], gt[b, slots], class_cost)
        r, k = scipy_optimize.linear_sum_assignment(cost)
        matched = np.flatnonzero(got[b] >= 0)
        assert len(matched) == len(r) and valid[b, got[b, matched]].all()
        ours = cost[matched, np.searchsorted(slots, got[b, matched])].sum()
        np.testing.assert_allclose(ours, cost[r, k].sum(), rtol=1e-10, atol=1e-10)


def _reference_loss(logits, boxes, labels, gt, valid, match, class_loss, eos=0.1, w=(1.0, 5.0, 2.0),
                    alpha=0.25, gamma=2.0, vf_alpha=0.75):
    """SetCriterion (loss_ce or focal / varifocal loss_labels, loss_bbox, loss_giou) for one decoder layer."""
    b_n, q_n, c1 = logits.shape
    num = max(valid.sum(), 1.0)
    cls_num, cls_den, l1, giou = 0.0, 0.0, 0.0, 0.0
    for b in range(b_n):
        for q in range(q_n):
            m = match[b, q]
            hit = m >= 0
            if hit:
                l1 += np.abs(boxes[b, q] - gt[b, m]).sum()
                giou += 1 - _np_giou(_cxcywh_to_xyxy(boxes[b, q][None]), _cxcywh_to_xyxy(gt[b, m][None]))[0, 0]
            x = logits[b, q]
            if class_loss == "ce":
                target = labels[b, m] if hit else c1 - 1
                weight = 1.0 if hit else eos
                cls_num += weight * -(x[target] - np.log(np.exp(x).sum()))
                cls_den += weight
                continue
            t = np.zeros(c1)
            if hit:
                t[labels[b, m]] = 1.0
            p = _sigmoid(x)
            bce = lambda tt, p=p: -(tt * np.log(p) + (1 - tt) * np.log(1 - p))  # noqa: E731
            if class_loss == "focal":
                p_t = p * t + (1 - p) * (1 - t)
                cls_num += (bce(t) * (1 - p_t) ** gamma * (alpha * t + (1 - alpha) * (1 - t))).sum()
            else:
                iou = 0.0
                if hit:
                    pb, gb = _cxcywh_to_xyxy(boxes[b, q]), _cxcywh_to_xyxy(gt[b, m])
                    iw = max(0, min(pb[2], gb[2]) - max(pb[0], gb[0]))
                    ih = max(0, min(pb[3], gb[3]) - max(pb[1], gb[1]))
                    inter = iw * ih
                    iou = inter / ((pb[2] - pb[0]) * (pb[3] - pb[1]) + (gb[2] - gb[0]) * (gb[3] - gb[1]) - inter)
                score = t * iou
                weight = vf_alpha * p**gamma * (1 - t) + score
                cls_num += (weight * bce(score)).sum()
    cls = cls_num / cls_den if class_loss == "ce" else cls_num / num
    terms = {"class": cls, "l1": l1 / num, "giou": giou / num}
    terms["loss"] = w[0] * terms["class"] + w[1] * terms["l1"] + w[2] * terms["giou"]
    return terms


def _reference_match(logits, boxes, labels, gt, valid, class_cost):
    match = np.full(logits.shape[:2], -1)
    for b in range(logits.shape[0]):
        slots = np.flatnonzero(valid[b])
        r, k = scipy_optimize.linear_sum_assignment(
            _reference_cost(logits[b], boxes[b], labels[b, slots], gt[b, slots], class_cost))
        match[b, r] = slots[k]
    return match


@pytest.mark.parametrize("class_loss", ["ce", "focal", "varifocal"])
def test_set_prediction_loss_matches_reference(backend, rng, class_loss):
    """Value and terms against SetCriterion with the matches of a per-image SciPy matcher, two decoder layers."""
    logits, boxes, labels, gt, valid = _detr(rng, layers=2)
    logits = logits if class_loss == "ce" else logits[..., :-1]
    cost = "softmax" if class_loss == "ce" else "focal"
    want = {k: 0.0 for k in ("loss", "class", "l1", "giou")}
    for layer in range(2):
        match = _reference_match(logits[layer], boxes[layer], labels, gt, valid, cost)
        for k, v in _reference_loss(logits[layer], boxes[layer], labels, gt, valid, match, class_loss).items():
            want[k] += v
    got = pl.set_prediction_loss(*(backend.asarray(a) for a in (logits, boxes, labels, gt, valid)),
                                 class_loss=class_loss, return_terms=True)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("class_loss", ["ce", "focal"])
def test_set_prediction_loss_gradient(backend, rng, class_loss):
    """Gradients in the logits and the boxes against central differences, with the matching held fixed.

    (Varifocal detaches its weight and IoU target, as RT-DETR, so central differences do not apply to it.)
    """
    logits, boxes, labels, gt, valid = _detr(rng, b=2, q=4, g=3, c=2)
    logits = logits if class_loss == "ce" else logits[..., :-1]
    match = backend.asarray(_reference_match(logits, boxes, labels, gt, valid,
                                             "softmax" if class_loss == "ce" else "focal"))
    rest = [backend.asarray(a) for a in (labels, gt, valid)]
    backend.check_grad(lambda x: pl.set_prediction_loss(x, backend.asarray(boxes), *rest, match=match,
                                                        class_loss=class_loss), logits)
    backend.check_grad(lambda x: pl.set_prediction_loss(backend.asarray(logits), x, *rest, match=match,
                                                        class_loss=class_loss), boxes)


def test_set_prediction_loss_normaliser_and_no_ground_truth(backend, rng):
    """num_boxes and all_reduce set the normaliser (at least 1); an empty batch gives a finite loss and gradient."""
    logits, boxes, labels, gt, valid = _detr(rng)
    args = [backend.asarray(a) for a in (logits, boxes, labels, gt, valid)]
    base = pl.set_prediction_loss(*args, return_terms=True)
    n = valid.sum()
    twice = pl.set_prediction_loss(*args, return_terms=True, all_reduce=lambda s: 2 * s)
    given = pl.set_prediction_loss(*args, return_terms=True, num_boxes=2.0 * n)
    for got in (twice, given):
        assert_close(got["l1"], to_numpy(base["l1"]) / 2, rtol=1e-12)
        assert_close(got["class"], to_numpy(base["class"]), rtol=1e-12)  # DETR's CE is a weighted mean
    empty = [*args[:4], backend.asarray(np.zeros_like(valid))]
    backend_value = pl.set_prediction_loss(*empty)
    assert_finite(backend_value)
    if backend.has_autodiff:
        _, grad = backend.value_and_grad(lambda x: pl.set_prediction_loss(x, *empty[1:]), args[0])
        assert np.isfinite(grad).all()


def test_set_prediction_errors():
    rng = np.random.default_rng(0)
    logits, boxes, labels, gt, valid = _detr(rng)
    with pytest.raises(ValueError, match="set_prediction_loss: class_loss must be one of"):
        pl.set_prediction_loss(logits, boxes, labels, gt, valid, class_loss="bce")
    with pytest.raises(TypeError, match="set_prediction_loss: gt_valid must be a bool"):
        pl.set_prediction_loss(logits, boxes, labels, gt, valid.astype(int))
    with pytest.raises(ValueError, match="hungarian_match: gt_labels must lie in"):
        pl.hungarian_match(logits, boxes, np.where(valid, 9, 0), gt, valid)
    with pytest.raises(ValueError, match="set_prediction_loss: match must have shape"):
        pl.set_prediction_loss(logits, boxes, labels, gt, valid, match=np.zeros((3, 2), dtype=int))
