"""task_aligned_assign / task_aligned_loss against ultralytics' TaskAlignedAssigner and v8DetectionLoss themselves.

ultralytics (checked with 8.4.190) is installed with ``--no-deps`` in the parity session; the loss class is built
on a minimal stand-in for its model (parameters, ``args`` gains, a ``Detect``-like last module).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from helpers import assert_close, to_numpy

import polyloss as pl

torch = pytest.importorskip("torch")
tal = pytest.importorskip("ultralytics.utils.tal")
loss_module = pytest.importorskip("ultralytics.utils.loss")

STRIDES = (8.0, 16.0, 32.0)
C = 5


@pytest.fixture(autouse=True)
def _torch_only(backend):
    if not backend.is_torch:
        pytest.skip("ultralytics parity runs on the torch backends")


def levels(image=64):
    """Anchor points in pixels and their strides, as ultralytics' make_anchors (grid + 0.5) * stride."""
    feats = [torch.zeros(1, 1, int(image / s), int(image / s), dtype=torch.float64) for s in STRIDES]
    points, stride = tal.make_anchors(feats, torch.tensor(STRIDES, dtype=torch.float64), 0.5)
    return feats, points, stride


def ground_truth(rng, b=3, g=4, image=64):
    xy = rng.random((b, g, 2)) * image * 0.6
    boxes = np.concatenate([xy, xy + rng.random((b, g, 2)) * image * 0.4 + 4], axis=-1)
    valid = rng.random((b, g)) < 0.8
    valid[:, 0] = True
    labels = rng.integers(0, C, size=(b, g))
    return np.where(valid[..., None], boxes, 0.0), labels, valid


def test_assigner_matches_ultralytics(backend, rng):
    _feats, points, stride = levels()
    anchors = (points * stride).numpy()
    gts, labels, valid = ground_truth(rng)
    b, a = gts.shape[0], anchors.shape[0]
    scores = rng.random((b, a, C))
    owner = gts[np.arange(b)[:, None], rng.integers(0, gts.shape[1], size=(b, a))]
    boxes = 0.6 * owner + 0.4 * np.concatenate([anchors - 6, anchors + 6], axis=-1)[None] + rng.normal(size=(b, a, 4))
    assigner = tal.TaskAlignedAssigner(topk=10, num_classes=C, alpha=0.5, beta=6.0, stride=list(STRIDES))
    t = [torch.tensor(x) for x in (scores, boxes, anchors)]
    labels_u, boxes_u, scores_u, fg_u, idx_u = assigner(*t, torch.tensor(labels)[..., None], torch.tensor(gts),
                                                        torch.tensor(valid, dtype=torch.float64)[..., None])
    got = pl.task_aligned_assign(*t, torch.tensor(labels), torch.tensor(gts), torch.tensor(valid), min_size=16.0)
    fg = fg_u.numpy()
    assert fg.any()
    # the masks may differ only where torch.topk and our stable sort break a tie of metric 0 (target score 0)
    differ = to_numpy(got.fg_mask) != fg
    assert np.all(to_numpy(got.scores).sum(-1)[differ] == 0) and np.all(scores_u.numpy().sum(-1)[differ] == 0)
    fg_u = fg_u & got.fg_mask
    assert_close(got.gt_index[fg_u], idx_u[fg_u].numpy(), dtype=got.gt_index.dtype)
    assert_close(got.labels[fg_u], labels_u[fg_u].numpy(), dtype=got.labels.dtype)
    assert_close(got.boxes[fg_u], boxes_u[fg_u].numpy())
    assert_close(got.scores, scores_u.numpy(), rtol=1e-5, atol=1e-7)


def test_detection_loss_matches_ultralytics(backend, rng):
    reg_max, image = 16, 64
    feats, points, stride = levels(image)
    a = points.shape[0]
    gts, labels, valid = ground_truth(rng, image=image)
    b = gts.shape[0]
    logits = torch.tensor(rng.normal(size=(b, a, C)))
    dist = torch.tensor(rng.normal(size=(b, a, 4 * reg_max)))
    head = SimpleNamespace(stride=torch.tensor(STRIDES), nc=C, reg_max=reg_max)
    model = SimpleNamespace(args=SimpleNamespace(box=7.5, cls=0.5, dfl=1.5), model=[head],
                            parameters=lambda: iter([torch.zeros(1)]))
    criterion = loss_module.v8DetectionLoss(model, tal_topk=10)
    criterion.proj = criterion.proj.double()
    criterion.device = torch.device("cpu")
    # ultralytics' batch: one row per valid box, xywh normalised by the image size
    bi, gi = np.nonzero(valid)
    xyxy = gts[bi, gi]
    xywh = np.stack([(xyxy[:, 0] + xyxy[:, 2]) / 2, (xyxy[:, 1] + xyxy[:, 3]) / 2, xyxy[:, 2] - xyxy[:, 0],
                     xyxy[:, 3] - xyxy[:, 1]], axis=-1) / image
    batch = {"batch_idx": torch.tensor(bi, dtype=torch.float64), "cls": torch.tensor(labels[bi, gi]).double(),
             "bboxes": torch.tensor(xywh)}
    preds = {"boxes": dist.permute(0, 2, 1), "scores": logits.permute(0, 2, 1), "feats": feats}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # ultralytics pads the targets in the default dtype
    try:
        want, items = criterion(preds, batch)
    finally:
        torch.set_default_dtype(previous)
    # ours, on the ground truth as ultralytics pads it (each image's valid boxes first)
    order = np.argsort(~valid, axis=1, kind="stable")
    packed = (np.take_along_axis(gts, np.repeat(order[..., None], 4, axis=-1), axis=1),
              np.take_along_axis(labels, order, axis=1), np.take_along_axis(valid, order, axis=1))
    got, terms = pl.task_aligned_loss(logits, dist, points * stride, stride[:, 0],
                                      torch.tensor(packed[1]), torch.tensor(packed[0]), torch.tensor(packed[2]),
                                      reg_max=reg_max, min_size=16.0, return_terms=True)
    assert_close(got, float(want.sum()), rtol=1e-5)
    for name, value in zip(("box", "cls", "dfl"), items.values(), strict=True):
        assert_close(terms[name], float(value), rtol=1e-5, atol=1e-9)
    assert float(to_numpy(terms["box"])) > 0
