"""Train a tiny one-stage detector of rotated rectangles with polyloss (PyTorch).

Each 32 x 32 image holds one filled rectangle, turned by any angle, on a noisy
background. A small convolutional backbone predicts, for each cell of an
8 x 8 grid:

* a score trained with ``polyloss.varifocal_loss``: the target is 0 on every
  cell but the one holding the rectangle's centre, whose target is the IoU of
  its current (axis-aligned) box with the ground truth, so the score learns
  to rank boxes by quality (VarifocalNet); divided by the number of positives
  with ``avg_factor``;
* an axis-aligned box (the rectangle's bounding box) trained with
  ``polyloss.giou_loss``;
* a rotated box ``(cx, cy, w, h, theta)`` trained with ``polyloss.probiou_loss``
  (or ``--rotated-loss kld`` for ``polyloss.kld_loss``). The angle is a raw
  output: the Gaussian losses do not change when theta moves by pi, or when w
  and h swap as theta moves by pi / 2, so no angle range or encoding is needed.

On held-out images the best-scoring cell's boxes are scored with
``polyloss.box_iou`` and the exact ``polyloss.rotated_box_iou``.

    python examples/rotated_detection.py            # 400 steps: 13-15 s of CPU (one thread), held-out
                                                    # rotated IoU about 0.74 (measured: 46 s wall on
                                                    # 2 cores shared with a load average of 13)
    python examples/rotated_detection.py --smoke    # a few steps: checks that it runs
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch import nn

import polyloss as pl

SIZE, GRID = 32, 8
CELL = SIZE / GRID  # pixels per grid cell


def make_batch(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(n, 1, SIZE, SIZE)`` and rotated boxes ``(n, 5)`` (cxcywhr, pixels, radians)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    images = rng.normal(0.0, 0.2, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    boxes = np.zeros((n, 5), np.float32)
    for b in range(n):
        w, h = rng.uniform(6.0, 16.0, size=2)
        theta = rng.uniform(-math.pi, math.pi)
        cx, cy = rng.uniform(8.0, SIZE - 8.0, size=2)
        u = (xs - cx) * math.cos(theta) + (ys - cy) * math.sin(theta)  # along the width
        v = (ys - cy) * math.cos(theta) - (xs - cx) * math.sin(theta)  # along the height
        images[b, 0] += ((np.abs(u) <= w / 2) & (np.abs(v) <= h / 2)).astype(np.float32)
        boxes[b] = (cx, cy, w, h, theta)
    return torch.from_numpy(images), torch.from_numpy(boxes)


def bounding_box(rboxes: torch.Tensor) -> torch.Tensor:
    """The axis-aligned xyxy box enclosing each rotated box."""
    cx, cy, w, h, t = rboxes.unbind(-1)
    half_w = (w * torch.cos(t).abs() + h * torch.sin(t).abs()) / 2
    half_h = (w * torch.sin(t).abs() + h * torch.cos(t).abs()) / 2
    return torch.stack((cx - half_w, cy - half_h, cx + half_w, cy + half_h), dim=-1)


class Detector(nn.Module):
    """A stride-4 backbone; per cell: 1 score, 4 axis-aligned and 5 rotated box outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(32, 1 + 4 + 5, 1),
        )
        centres = (torch.arange(GRID, dtype=torch.float32) + 0.5) * CELL
        cy, cx = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("centres", torch.stack((cx.reshape(-1), cy.reshape(-1)), dim=-1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.net(x).flatten(2).transpose(1, 2)  # (N, cells, 10)
        score, box, rot = out[..., 0], out[..., 1:5], out[..., 5:]
        centre = self.centres + CELL * box[..., :2]
        half = CELL * torch.exp(box[..., 2:4].clamp(max=4.0)) / 2
        aligned = torch.cat((centre - half, centre + half), dim=-1)  # xyxy
        size = CELL * torch.exp(rot[..., 2:4].clamp(max=4.0))
        rotated = torch.cat((self.centres + CELL * rot[..., :2], size, rot[..., 4:]), dim=-1)  # cxcywhr
        return score, aligned, rotated


def positive_cell(boxes: torch.Tensor) -> torch.Tensor:
    """The index of the grid cell holding each box centre."""
    col = (boxes[:, 0] / CELL).long().clamp(0, GRID - 1)
    row = (boxes[:, 1] / CELL).long().clamp(0, GRID - 1)
    return row * GRID + col


def losses(model: Detector, images: torch.Tensor, boxes: torch.Tensor, rotated_loss: str) -> torch.Tensor:
    score, aligned, rotated = model(images)
    n = images.shape[0]
    pos = positive_cell(boxes)
    batch = torch.arange(n)
    target_aligned = bounding_box(boxes)
    pred_aligned, pred_rotated = aligned[batch, pos], rotated[batch, pos]
    with torch.no_grad():  # the positive's quality target: its current IoU
        quality = pl.box_iou(pred_aligned, target_aligned).diagonal().clamp(min=0.01)
    q = torch.zeros_like(score)
    q[batch, pos] = quality
    vfl = pl.varifocal_loss(score, q, avg_factor=float(n))
    giou = pl.giou_loss(pred_aligned, target_aligned)
    rot_fn = pl.probiou_loss if rotated_loss == "probiou" else pl.kld_loss
    return vfl + giou + rot_fn(pred_rotated, boxes)


@torch.no_grad()
def evaluate(model: Detector, images: torch.Tensor, boxes: torch.Tensor) -> tuple[float, float, float]:
    """Held-out: mean IoU of the top-scoring cell's boxes, and how often it is the positive cell."""
    score, aligned, rotated = model(images)
    top = score.argmax(dim=1)
    batch = torch.arange(images.shape[0])
    aligned_iou = pl.box_iou(aligned[batch, top], bounding_box(boxes)).diagonal().mean()
    rotated_iou = pl.rotated_box_iou(rotated[batch, top], boxes).diagonal().mean()
    hit = (top == positive_cell(boxes)).float().mean()
    return float(aligned_iou), float(rotated_iou), float(hit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rotated-loss", choices=("probiou", "kld"), default="probiou")
    parser.add_argument("--smoke", action="store_true", help="a few small steps, to check that it runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: these convolutions are too small to gain from more, "
                             "and one thread does not stall when the cores are shared)")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _train(args)
    finally:
        torch.set_num_threads(threads)


def _train(args: argparse.Namespace) -> int:
    steps, batch = (min(args.steps, 5), 8) if args.smoke else (args.steps, args.batch)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Detector()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    test_images, test_boxes = make_batch(np.random.default_rng(args.seed + 1), 32 if args.smoke else 256)
    start = time.perf_counter()
    for step in range(steps):
        images, boxes = make_batch(rng, batch)
        loss = losses(model, images, boxes, args.rotated_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    aligned_iou, rotated_iou, hit = evaluate(model, test_images, test_boxes)
    print(f"trained {steps} steps in {time.perf_counter() - start:.1f} s")
    print(f"held-out: top cell is the object's {hit:.1%} of the time; "
          f"mean IoU axis-aligned (varifocal + GIoU) {aligned_iou:.3f}, "
          f"rotated ({args.rotated_loss}) {rotated_iou:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
