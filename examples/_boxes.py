"""Synthetic detection data and COCO-style evaluation for the detection examples, in plain NumPy.

Images hold one to ``max_boxes`` filled rectangles of ``classes`` colours on a
noisy background; ground truth is padded to ``max_boxes`` with a validity mask,
the layout every polyloss detection loss takes. ``coco_map`` scores detections
with pycocotools' own evaluator (the ``coco`` extra), so the numbers are the
ones the COCO toolkit reports, not a re-implementation of it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

SIZE, MAX_BOXES = 48, 3


def make_boxes(rng: np.random.Generator, n: int, *, classes: int = 2, size: int = SIZE, max_boxes: int = MAX_BOXES
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(n, 3, size, size)`` float32, boxes ``(n, max_boxes, 4)`` xyxy in [0, 1], labels in ``[0, classes)``
    (int64), validity ``(n, max_boxes)``. Object ``k`` of class ``c`` brightens colour channel ``c``."""
    images = rng.normal(0.0, 0.15, size=(n, 3, size, size)).astype(np.float32)
    boxes = np.zeros((n, max_boxes, 4), np.float32)
    labels = np.zeros((n, max_boxes), np.int64)
    valid = np.zeros((n, max_boxes), bool)
    for b in range(n):
        for k in range(rng.integers(1, max_boxes + 1)):
            w, h = rng.uniform(0.15, 0.45, size=2)
            x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            cls = int(rng.integers(0, classes))
            x1, y1, x2, y2 = (round(v * size) for v in (x, y, x + w, y + h))
            images[b, cls, y1:y2, x1:x2] += 1.0
            boxes[b, k] = (x1 / size, y1 / size, x2 / size, y2 / size)
            labels[b, k], valid[b, k] = cls, True
    return images, boxes, labels, valid


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    cx, cy, w, h = np.moveaxis(boxes, -1, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def coco_map(gt_boxes: np.ndarray, gt_labels: np.ndarray, gt_valid: np.ndarray, det_boxes: Sequence[np.ndarray],
             det_scores: Sequence[np.ndarray], det_labels: Sequence[np.ndarray], *, classes: int, size: int = SIZE
             ) -> tuple[float, float]:
    """COCO mAP@[.5:.95] and mAP@.5 of per-image detections (xyxy in [0, 1]) against the padded ground truth,
    computed by ``pycocotools.cocoeval.COCOeval`` (its printout is swallowed)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box: np.ndarray) -> list[float]:
        x1, y1, x2, y2 = (float(v) * size for v in box)
        return [x1, y1, x2 - x1, y2 - y1]

    images = [{"id": i, "width": size, "height": size} for i in range(len(gt_boxes))]
    annotations = [
        {"id": len(images) * k + i + 1, "image_id": i, "category_id": int(gt_labels[i, k]) + 1,
         "bbox": xywh(gt_boxes[i, k]), "area": xywh(gt_boxes[i, k])[2] * xywh(gt_boxes[i, k])[3], "iscrowd": 0}
        for i in range(len(gt_boxes)) for k in range(gt_boxes.shape[1]) if gt_valid[i, k]
    ]
    detections = [
        {"image_id": i, "category_id": int(c) + 1, "bbox": xywh(b), "score": float(s)}
        for i in range(len(det_boxes)) for b, s, c in zip(det_boxes[i], det_scores[i], det_labels[i], strict=True)
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations,
                         "categories": [{"id": c + 1, "name": str(c)} for c in range(classes)]}
        truth.createIndex()
        if not detections:
            return 0.0, 0.0
        evaluator = COCOeval(truth, truth.loadRes(detections), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0]), float(evaluator.stats[1])
