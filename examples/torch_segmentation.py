"""A small PyTorch U-Net trained with a polyloss region loss on the imbalanced synthetic set.

A plain PyTorch loop in the NCHW layout (``class_axis=1``). ``--compile`` wraps
the forward pass and the loss in ``torch.compile``: the loss traces into the
same graph as the model, and AOTAutograd compiles the backward pass with it.

    python examples/torch_segmentation.py                     # Dice + CE, 400 steps, about 10 s on 2 CPU cores
    python examples/torch_segmentation.py --loss tversky_loss --compile
    python examples/torch_segmentation.py --smoke             # a few steps
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
from _data import CLASSES, NUM_CLASSES, batches, make_segmentation, mean_iou
from torch import nn

import polyloss as pl

# Losses that take (logits, integer labels, class_axis=1) for multiclass segmentation.
LOSSES = (
    "dice_cross_entropy_loss", "cross_entropy", "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
    "generalized_dice_loss", "log_cosh_dice_loss", "mcc_loss", "dice_focal_loss", "lovasz_softmax_loss",
)


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) in miniature: two 3x3 convs per level, max-pool down, transposed conv up."""

    def __init__(self, in_channels: int, num_classes: int, features: Sequence[int] = (16, 32, 64)) -> None:
        super().__init__()
        widths = [in_channels, *features]
        self.down = nn.ModuleList(block(a, b) for a, b in itertools.pairwise(widths[:-1]))
        self.bottom = block(features[-2], features[-1])
        pairs = list(zip(features[:0:-1], features[-2::-1], strict=True))  # (from, to) going up
        self.up = nn.ModuleList(nn.ConvTranspose2d(a, b, 2, stride=2) for a, b in pairs)
        self.merge = nn.ModuleList(block(2 * b, b) for _, b in pairs)
        self.head = nn.Conv2d(features[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", default="dice_cross_entropy_loss", choices=LOSSES)
    p.add_argument("--steps", type=int, default=None, help="training steps (default 400; 3 with --smoke)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass and the loss")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (e.g. aot_eager: no C++ build)")
    p.add_argument("--smoke", action="store_true", help="a few steps on a tiny set: checks that it runs")
    args = p.parse_args(argv)
    steps = args.steps or (3 if args.smoke else 400)
    n_train, n_eval = (16, 8) if args.smoke else (512, 96)
    if not hasattr(pl, args.loss):
        print(f"torch_segmentation: polyloss has no {args.loss} (yet)", file=sys.stderr)
        return 1
    loss_fn = getattr(pl, args.loss)

    torch.manual_seed(args.seed)
    x_np, y_np = make_segmentation(n_train, seed=args.seed, split="train")
    xe_np, ye_np = make_segmentation(n_eval, seed=args.seed, split="eval")
    # NHWC -> NCHW; integer labels as int64 (any integer dtype works for polyloss)
    x_train, y_train = torch.from_numpy(x_np).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y_np).long()
    x_eval = torch.from_numpy(xe_np).permute(0, 3, 1, 2).contiguous()

    model = UNet(x_train.shape[1], NUM_CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    def objective(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(model(x), y, class_axis=1)

    if args.compile:
        objective = torch.compile(objective, backend=args.compile_backend)
    print(f"torch U-Net, {sum(t.numel() for t in model.parameters()):,} parameters; loss polyloss.{args.loss}"
          f"(class_axis=1){' under torch.compile' if args.compile else ''}; {n_train} train / {n_eval} eval images")

    def evaluate() -> tuple[float, np.ndarray]:
        model.eval()
        with torch.no_grad():
            pred = model(x_eval).argmax(dim=1).numpy()
        model.train()
        return mean_iou(pred, ye_np)

    start = time.perf_counter()
    for i, idx in enumerate(batches(n_train, args.batch_size, steps, seed=args.seed), start=1):
        index = torch.from_numpy(idx)
        loss = objective(x_train[index], y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i % max(1, steps // 8) == 0 or i == steps:
            miou, _ = evaluate()
            print(f"step {i:4d}/{steps}  loss {loss.item():.4f}  eval mean IoU {miou:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    miou, per_class = evaluate()
    print(f"final eval mean IoU {miou:.3f} (all-background baseline 0.000); per class: "
          + ", ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, per_class, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
