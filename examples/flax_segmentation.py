"""A small Flax U-Net trained with a polyloss region loss on the imbalanced synthetic set.

Channels-last throughout (``class_axis=-1``); the whole training step (forward,
loss, gradient, optax Adam update) is one ``jax.jit``-compiled function.

    python examples/flax_segmentation.py                       # Dice + CE, 400 steps, about 20 s on 2 CPU cores
    python examples/flax_segmentation.py --loss lovasz_softmax_loss
    python examples/flax_segmentation.py --smoke               # a few steps

Needs ``pip install flax optax`` besides polyloss and jax.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _data import CLASSES, NUM_CLASSES, batches, make_segmentation, mean_iou

import polyloss as pl

# Losses that take (logits, integer labels, class_axis=-1) for multiclass segmentation.
LOSSES = (
    "dice_cross_entropy_loss", "cross_entropy", "dice_loss", "jaccard_loss", "tversky_loss", "focal_tversky_loss",
    "generalized_dice_loss", "log_cosh_dice_loss", "mcc_loss", "dice_focal_loss", "lovasz_softmax_loss",
)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) in miniature: two 3x3 convs per level, max-pool down, transposed conv up."""

    num_classes: int
    features: Sequence[int] = (16, 32, 64)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def block(h: jax.Array, f: int) -> jax.Array:
            h = nn.relu(nn.Conv(f, (3, 3))(h))
            return nn.relu(nn.Conv(f, (3, 3))(h))

        skips = []
        for f in self.features[:-1]:
            x = block(x, f)
            skips.append(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = block(x, self.features[-1])
        for f, skip in zip(reversed(self.features[:-1]), reversed(skips), strict=True):
            x = nn.ConvTranspose(f, (2, 2), strides=(2, 2))(x)
            x = block(jnp.concatenate([x, skip], axis=-1), f)
        return nn.Conv(self.num_classes, (1, 1))(x)


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
    model = UNet(num_classes=NUM_CLASSES)
    params = model.init(jax.random.key(args.seed), x_train[:1])
    optimizer = optax.adam(args.lr)
    opt_state = optimizer.init(params)
    print(f"flax U-Net, {sum(a.size for a in jax.tree.leaves(params)):,} parameters; loss polyloss.{args.loss}"
          f"(class_axis=-1); {n_train} train / {n_eval} eval images {x_train.shape[1:]}")

    @jax.jit
    def step(params: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> tuple[Any, Any, jax.Array]:
        def objective(params: Any) -> jax.Array:
            return loss_fn(model.apply(params, x), y, class_axis=-1)

        loss, grads = jax.value_and_grad(objective)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda params, x: jnp.argmax(model.apply(params, x), axis=-1))
    start = time.perf_counter()
    for i, idx in enumerate(batches(n_train, args.batch_size, steps, seed=args.seed), start=1):
        params, opt_state, loss = step(params, opt_state, x_train[idx], y_train[idx])
        if i % max(1, steps // 8) == 0 or i == steps:
            miou, _ = mean_iou(np.asarray(predict(params, x_eval)), y_eval)
            print(f"step {i:4d}/{steps}  loss {float(loss):.4f}  eval mean IoU {miou:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    miou, per_class = mean_iou(np.asarray(predict(params, x_eval)), y_eval)
    print(f"final eval mean IoU {miou:.3f} (all-background baseline 0.000); per class: "
          + ", ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, per_class, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
