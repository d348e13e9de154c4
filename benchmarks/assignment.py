"""Set-prediction matching and task-aligned assignment against the reference implementations' own method.

Matching (no gradient: the matcher runs under no_grad in DETR): ``polyloss.hungarian_match`` against DETR's
matcher as its training loop runs it, the cost matrix batched on the device, then SciPy's
``linear_sum_assignment`` per image on the host (the peer, written here after DETR's ``HungarianMatcher``:
softmax class cost, L1 and -GIoU on the padded ground truth of each image). torch eager CPU, and
``jax.jit`` of ``hungarian_match`` (no JAX peer: its ratio is against the torch peer of the same case).
Assignment: ``polyloss.task_aligned_assign`` against ultralytics' ``TaskAlignedAssigner`` (v8 defaults:
top 10, alpha 0.5, beta 6), time and peak extra memory; ultralytics is optional (its rows are skipped with a
note where it does not import).
Run: python benchmarks/assignment.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Table, main, measure, optional_import, peak_extra_bytes, peak_tensor_bytes, torch_forward

import polyloss as pl

COMMAND = "python benchmarks/assignment.py"


def _detr_inputs(rng: np.random.Generator, b: int, q: int, g: int, c: int = 91) -> list[np.ndarray]:
    logits = rng.normal(size=(b, q, c + 1)).astype(np.float32)
    boxes = np.concatenate([rng.random((b, q, 2)) * 0.8 + 0.1, rng.random((b, q, 2)) * 0.2 + 0.02], -1)
    gt_boxes = np.concatenate([rng.random((b, g, 2)) * 0.8 + 0.1, rng.random((b, g, 2)) * 0.2 + 0.02], -1)
    gt_labels = rng.integers(0, c, size=(b, g))
    gt_valid = np.arange(g)[None] < rng.integers(g // 2, g + 1, size=(b, 1))  # images hold different counts
    return [logits, boxes.astype(np.float32), gt_labels, gt_boxes.astype(np.float32), gt_valid]


def detr_per_image_matcher(logits, boxes, gt_labels, gt_boxes, gt_valid, w_class=1.0, w_l1=5.0, w_giou=2.0):
    """DETR's matcher structure: one batched cost matrix against every image's boxes, SciPy per image."""
    import torch
    from scipy.optimize import linear_sum_assignment

    with torch.no_grad():
        b, q = logits.shape[:2]
        prob = logits.flatten(0, 1).softmax(-1)
        out_boxes = boxes.flatten(0, 1)
        sizes = gt_valid.sum(1).tolist()
        tgt_ids, tgt_boxes = gt_labels[gt_valid], gt_boxes[gt_valid]
        cost_class = -prob[:, tgt_ids]
        cost_l1 = torch.cdist(out_boxes, tgt_boxes, p=1)
        cost_giou = -pl.generalized_box_iou(out_boxes, tgt_boxes, box_format="cxcywh")
        cost = (w_l1 * cost_l1 + w_class * cost_class + w_giou * cost_giou).view(b, q, -1).cpu()
        return [linear_sum_assignment(c[i]) for i, c in enumerate(cost.split(sizes, -1))]


def _matching(table: Table, shape: tuple[int, int, int], rng: np.random.Generator, rounds: int) -> None:
    import torch

    inputs = _detr_inputs(rng, *shape)
    t = [torch.from_numpy(a) for a in inputs]
    impls = {"polyloss (torch)": torch_forward(pl.hungarian_match, *t),
             "DETR matcher, SciPy per image": torch_forward(detr_per_image_matcher, *t)}
    jax = optional_import("jax")
    if jax is not None:
        jitted, ja = jax.jit(pl.hungarian_match), [jax.numpy.asarray(a) for a in inputs]
        jax.block_until_ready(jitted(*ja))
        impls["polyloss (jax.jit)"] = lambda: jax.block_until_ready(jitted(*ja))
    times = measure(impls, rounds=rounds, min_time=0.0)
    table.add(f"hungarian_match (B, Q, G) = {shape}, 91 classes", "torch eager / jax.jit CPU", times,
              "polyloss (torch)")


def _assignment(table: Table, b: int, image: int, c: int, g: int, rng: np.random.Generator, rounds: int) -> None:
    import torch

    # a YOLOv8 head's anchor points on an image x image input: strides 8, 16 and 32 (640: 80² + 40² + 20² = 8400)
    points = np.concatenate([np.stack(np.meshgrid(np.arange(image // s) + 0.5, np.arange(image // s) + 0.5), -1)
                             .reshape(-1, 2) * s for s in (8, 16, 32)])
    a = len(points)
    scores = rng.random((b, a, c)).astype(np.float32)
    boxes = np.concatenate([points, points], -1) + np.array([-1, -1, 1, 1]) * rng.random((b, a, 4)) * 40
    xy = rng.random((b, g, 2)) * image * 0.8
    gt_boxes = np.concatenate([xy, xy + rng.random((b, g, 2)) * image * 0.2 + 8], -1).astype(np.float32)
    gt_labels = rng.integers(0, c, size=(b, g))
    gt_valid = np.arange(g)[None] < rng.integers(1, g + 1, size=(b, 1))
    t = [torch.from_numpy(x) for x in (scores, boxes.astype(np.float32), points.astype(np.float32), gt_labels,
                                       gt_boxes, gt_valid)]
    impls = {"polyloss": torch_forward(pl.task_aligned_assign, *t)}
    tal = optional_import("ultralytics.utils.tal")
    if tal is None:
        table.notes.append("ultralytics does not import here: its assignment rows are missing")
    else:
        assigner = tal.TaskAlignedAssigner(topk=10, num_classes=c, alpha=0.5, beta=6.0)
        labels, bxs, mask = t[3][..., None].float(), t[4], t[5][..., None].float()
        impls["ultralytics TaskAlignedAssigner"] = torch_forward(assigner, t[0], t[1], t[2], labels, bxs, mask)
    times = measure(impls, rounds=rounds, min_time=0.0)
    peaks = {name: peak_extra_bytes(step) for name, step in impls.items()}
    tensor_peaks = {name: peak_tensor_bytes(step) for name, step in impls.items()}
    table.add(f"task_aligned_assign (B, A, C, G) = {(b, a, c, g)}", "torch eager CPU", times, "polyloss",
              peaks=peaks, logits_bytes=scores.nbytes, tensor_peaks=tensor_peaks)


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    table = Table("Matching and assignment (forward only)", COMMAND)
    rounds = 3 if quick else 7
    for shape in ((2, 20, 5),) if quick else ((16, 300, 50), (16, 900, 100)):
        _matching(table, shape, rng, rounds)
    for b, image, c, g in ((2, 160, 4, 5),) if quick else ((16, 640, 80, 50),):
        _assignment(table, b, image, c, g, rng, rounds)
    table.notes.append("peak / logits: the peak extra memory over the bytes of the (B, A, C) scores")
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
