"""Train a tiny single-shot detector on synthetic boxes with polyloss's detection losses (PyTorch).

Two heads on one small convolutional backbone, trained on the same images:

* SSD: softmax classes (0 = background) with ``polyloss.multibox_loss``, which
  matches the padded ground truth to the priors, mines 3 negatives per
  positive and adds Smooth L1 on the encoded offsets, all batched.
* RetinaNet style: sigmoid classes (no background channel) with
  ``polyloss.sigmoid_focal_loss`` summed over every anchor and class and
  divided by the number of positive anchors, plus ``polyloss.giou_loss`` on
  the decoded boxes of the positive anchors. Anchors are assigned with
  ``polyloss.match_priors`` (RetinaNet also ignores anchors of IoU in
  [0.4, 0.5); this sketch treats them as negatives).

The images hold one to three filled rectangles of two classes (red, green) on
a noisy background. At the end, the mean IoU between each ground-truth box and
the best-scoring prediction of its class is printed for both heads.

    python examples/detection_ssd.py            # 300 steps, about 20 s on 2 CPU cores
    python examples/detection_ssd.py --smoke    # a few steps: checks that it runs
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _boxes import make_boxes
from torch import nn

import polyloss as pl

SIZE, GRID, MAX_BOXES = 48, 6, 3
NUM_CLASSES = 3  # background, red, green
SHAPES = ((0.25, 0.25), (0.4, 0.25), (0.25, 0.4))


def make_priors() -> torch.Tensor:
    """GRID x GRID cells x 3 shapes, (cx, cy, w, h) in the unit square."""
    cells = [((j + 0.5) / GRID, (i + 0.5) / GRID) for i in range(GRID) for j in range(GRID)]
    return torch.tensor([(cx, cy, w, h) for cx, cy in cells for w, h in SHAPES], dtype=torch.float32)


def make_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, ...]:
    """Images (n, 3, SIZE, SIZE), boxes (n, MAX_BOXES, 4) xyxy in [0, 1], labels in {1, 2} (0: background), validity."""
    images, boxes, labels, valid = make_boxes(rng, n, classes=NUM_CLASSES - 1, size=SIZE, max_boxes=MAX_BOXES)
    return tuple(torch.from_numpy(a) for a in (images, boxes, np.where(valid, labels + 1, 0), valid))


class Detector(nn.Module):
    """A stride-8 backbone and a 3x3 head giving, per prior, 4 offsets and ``classes`` scores."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.backbone = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Conv2d(64, len(SHAPES) * (4 + classes), 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.head(self.backbone(x))  # (N, A (4 + C), GRID, GRID)
        n = out.shape[0]
        out = out.permute(0, 2, 3, 1).reshape(n, GRID * GRID * len(SHAPES), 4 + self.classes)
        return out[..., :4], out[..., 4:]  # loc (N, P, 4), scores (N, P, C)


def ssd_loss(model: Detector, priors: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    images, boxes, labels, valid = batch
    loc, conf = model(images)
    return pl.multibox_loss(loc, conf, boxes, labels, valid, priors)


def retinanet_loss(model: Detector, priors: torch.Tensor, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    images, boxes, labels, valid = batch
    loc, logits = model(images)  # logits (N, P, NUM_CLASSES - 1): one sigmoid per foreground class
    matched, matched_labels = pl.match_priors(boxes, labels, valid, priors)
    positive = matched_labels > 0
    num_pos = positive.sum().clamp(min=1)
    # class c (1-based) is channel c - 1; background anchors have an all-zero target
    target = (matched_labels[..., None] == torch.arange(1, NUM_CLASSES)).to(logits.dtype)
    cls = pl.sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum") / num_pos
    decoded = pl.decode_boxes(loc, priors)
    # matched boxes are meaningful on positive anchors only
    reg = torch.where(positive, pl.giou_loss(decoded, matched, reduction="none"), 0).sum() / num_pos
    return cls + reg


@torch.no_grad()
def mean_best_iou(model: Detector, priors: torch.Tensor, batch: tuple[torch.Tensor, ...], softmax: bool) -> float:
    """Mean over ground-truth boxes of the IoU of the highest-scoring prediction of the box's class."""
    images, boxes, labels, valid = batch
    loc, scores = model(images)
    probs = scores.softmax(-1)[..., 1:] if softmax else scores.sigmoid()
    decoded = pl.decode_boxes(loc, priors)
    ious = []
    for b, k in zip(*torch.nonzero(valid, as_tuple=True), strict=True):  # evaluation only: loops are fine here
        best = probs[b, :, labels[b, k] - 1].argmax()
        ious.append(float(pl.box_iou(decoded[b, best][None], boxes[b, k][None])[0, 0]))
    return float(np.mean(ious))


def train(name: str, model: Detector, loss_fn, priors: torch.Tensor, steps: int, batch_size: int, seed: int,
          eval_size: int) -> None:
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = last = None
    for step in range(steps):
        loss = loss_fn(model, priors, make_batch(rng, batch_size))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise RuntimeError(f"{name}: non-finite loss at step {step}")
        last = loss.item()
        first = last if first is None else first
    held_out = make_batch(np.random.default_rng(seed + 1), eval_size)
    iou = mean_best_iou(model, priors, held_out, softmax=model.classes == NUM_CLASSES)
    print(f"{name:<28} loss {first:.3f} -> {last:.3f}   held-out mean best-box IoU {iou:.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="training steps per head (default 300; 3 with --smoke)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="a few steps on small batches: checks that it runs")
    args = p.parse_args(argv)
    steps = args.steps or (3 if args.smoke else 300)
    batch_size = 4 if args.smoke else args.batch_size
    torch.manual_seed(args.seed)
    priors = make_priors()
    eval_size = 8 if args.smoke else 128
    for name, model, loss_fn in (("SSD (multibox_loss)", Detector(NUM_CLASSES), ssd_loss),
                                 ("RetinaNet (focal + GIoU)", Detector(NUM_CLASSES - 1), retinanet_loss)):
        train(name, model, loss_fn, priors, steps, batch_size, args.seed, eval_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
