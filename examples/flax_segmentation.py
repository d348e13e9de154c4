"""A small Flax NNX U-Net trained with a polyloss region loss on the imbalanced synthetic set.

Flax's NNX API: the model is a plain Python object holding its parameters,
``nnx.Optimizer`` wraps an optax Adam, and the whole training step (forward,
loss, gradient, update) is one ``nnx.jit``-compiled function that updates the
model and the optimizer in place. Channels-last throughout (``class_axis=-1``).

    python examples/flax_segmentation.py                       # Dice + CE, 400 steps
    python examples/flax_segmentation.py --loss lovasz_softmax_loss
    python examples/flax_segmentation.py --smoke               # a few steps

Needs ``pip install flax optax`` besides polyloss and jax.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _data import CLASSES, NUM_CLASSES, batches, make_segmentation, mean_iou
from flax import nnx

import polyloss as pl

# Losses that take (logits, integer labels, class_axis=-1) for multiclass segmentation.
LOSSES = (
    "dice_cross_entropy_loss", "cross_entropy", "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
    "generalized_dice_loss", "log_cosh_dice_loss", "mcc_loss", "dice_focal_loss", "lovasz_softmax_loss",
)


class Block(nnx.Module):
    """Two 3x3 convolutions, each followed by a ReLU."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(cin, cout, (3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(cout, cout, (3, 3), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return nnx.relu(self.conv2(nnx.relu(self.conv1(x))))


class UNet(nnx.Module):
    """U-Net (Ronneberger et al. 2015) in miniature: two 3x3 convs per level, max-pool down, transposed conv up."""

    def __init__(self, in_channels: int, num_classes: int, features: Sequence[int] = (16, 32, 64), *,
                 rngs: nnx.Rngs) -> None:
        widths = [in_channels, *features]
        self.down = nnx.List([Block(a, b, rngs=rngs) for a, b in itertools.pairwise(widths[:-1])])
        self.bottom = Block(features[-2], features[-1], rngs=rngs)
        pairs = list(zip(features[:0:-1], features[-2::-1], strict=True))  # (from, to) going up
        self.up = nnx.List([nnx.ConvTranspose(a, b, (2, 2), strides=(2, 2), rngs=rngs) for a, b in pairs])
        self.merge = nnx.List([Block(2 * b, b, rngs=rngs) for _, b in pairs])
        self.head = nnx.Conv(features[0], num_classes, (1, 1), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
            x = nnx.max_pool(x, (2, 2), strides=(2, 2))
        x = self.bottom(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            x = merge(jnp.concatenate([up(x), skip], axis=-1))
        return self.head(x)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--loss", default="dice_cross_entropy_loss", choices=LOSSES)
    p.add_argument("--steps", type=int, default=None, help="training steps (default 400; 3 with --smoke)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="a few steps on a tiny set: checks that it runs")
    args = p.parse_args(argv)
    steps = args.steps or (3 if args.smoke else 400)
    n_train, n_eval = (16, 8) if args.smoke else (512, 96)
    if not hasattr(pl, args.loss):
        print(f"flax_segmentation: polyloss has no {args.loss} (yet)", file=sys.stderr)
        return 1
    loss_fn = getattr(pl, args.loss)

    x_train, y_train = make_segmentation(n_train, seed=args.seed, split="train")
    x_eval, y_eval = make_segmentation(n_eval, seed=args.seed, split="eval")
    model = UNet(x_train.shape[-1], NUM_CLASSES, rngs=nnx.Rngs(args.seed))
    optimizer = nnx.Optimizer(model, optax.adam(args.lr), wrt=nnx.Param)
    n_params = sum(a.size for a in jax.tree.leaves(nnx.state(model, nnx.Param)))
    print(f"flax NNX U-Net, {n_params:,} parameters; loss polyloss.{args.loss}"
          f"(class_axis=-1); {n_train} train / {n_eval} eval images {x_train.shape[1:]}")

    @nnx.jit
    def step(model: UNet, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
        def objective(model: UNet) -> jax.Array:
            return loss_fn(model(x), y, class_axis=-1)

        loss, grads = nnx.value_and_grad(objective)(model)
        optimizer.update(model, grads)  # in place: the model's parameters and Adam's state
        return loss

    @nnx.jit
    def predict(model: UNet, x: jax.Array) -> jax.Array:
        return jnp.argmax(model(x), axis=-1)

    start = time.perf_counter()
    for i, idx in enumerate(batches(n_train, args.batch_size, steps, seed=args.seed), start=1):
        loss = step(model, optimizer, x_train[idx], y_train[idx])
        if i % max(1, steps // 8) == 0 or i == steps:
            miou, _ = mean_iou(np.asarray(predict(model, x_eval)), y_eval)
            print(f"step {i:4d}/{steps}  loss {float(loss):.4f}  eval mean IoU {miou:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    miou, per_class = mean_iou(np.asarray(predict(model, x_eval)), y_eval)
    print(f"final eval mean IoU {miou:.3f} (all-background baseline 0.000); per class: "
          + ", ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, per_class, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
