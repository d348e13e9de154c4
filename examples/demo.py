"""Train one small segmentation net with several polyloss losses and compare their mean IoU.

The task (``_data.py``) is strongly imbalanced: a few small discs, squares and
triangles cover about 5% of each textured image, so predicting background
everywhere is 95% pixel-accurate and scores a mean foreground IoU of 0.
The same tiny two-scale conv net (pure ``jax.numpy`` and ``jax.lax``, channels-last),
the same initial weights and the same batches are trained once per loss with
optax Adam, one ``jax.jit(jax.value_and_grad(...))`` step; every loss is called
with ``class_axis=-1`` on raw logits and integer labels. Dice and Tversky weigh
the background class 0.1 in their class mean (``weight=``): with equal weights
they collapse to all-background on this data (``--losses dice-plain`` shows it).

    python examples/demo.py                         # six losses, under a minute on 2 idle CPU cores
    python examples/demo.py --losses dice,ce --steps 200
    python examples/demo.py --smoke                 # a few steps per loss (mostly compile time)

Prints progress, a table of mean foreground IoU and per-class IoU on a held-out
set, and saves the training curves to ``examples/out/demo_curves.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _data import CLASSES, NUM_CLASSES, batches, make_segmentation, mean_iou

import polyloss as pl

# Region losses weigh the background class 0.1 in their class mean: with equal weights, softmax Dice and
# Tversky trained from scratch on this data collapse to all-background within 20 steps (run
# `--losses dice-plain` to see it); the down-weighted background, log-Dice or a CE term each prevent it.
BACKGROUND_LIGHT = (0.1, 1.0, 1.0, 1.0)
# short name -> (polyloss function name, keyword options beyond class_axis=-1); DEFAULT runs the first six
LOSSES: dict[str, tuple[str, dict[str, Any]]] = {
    "ce": ("cross_entropy", {}),
    "focal": ("softmax_focal_loss", {"gamma": 2.0}),
    "dice": ("dice_loss", {"weight": BACKGROUND_LIGHT}),
    "tversky": ("tversky_loss", {"alpha": 0.3, "beta": 0.7, "weight": BACKGROUND_LIGHT}),
    "lovasz": ("lovasz_softmax_loss", {}),
    "dice+ce": ("dice_cross_entropy_loss", {}),
    "dice-plain": ("dice_loss", {}),
    "dice-log": ("dice_loss", {"log_loss": True}),
}
DEFAULT = ("ce", "focal", "dice", "tversky", "lovasz", "dice+ce")
Params = dict[str, tuple[jax.Array, jax.Array]]


def init_params(key: jax.Array, in_channels: int, width: int, num_classes: int) -> Params:
    """He-normal kernels (HWIO), zero biases; ``width`` channels at full resolution, ``2 width`` at half."""
    w1, w2 = width, 2 * width
    shapes = {  # name: (kernel size, in channels, out channels)
        "enc": (3, in_channels, w1), "down": (3, w1, w2), "mid1": (3, w2, w2), "mid2": (3, w2, w2),
        "proj": (1, w2, w1), "dec": (3, w1, w1), "head": (1, w1, num_classes),
    }
    keys = jax.random.split(key, len(shapes))
    return {name: (jax.random.normal(k, (size, size, cin, cout)) * jnp.sqrt(2.0 / (size * size * cin)), jnp.zeros(cout))
            for (name, (size, cin, cout)), k in zip(shapes.items(), keys, strict=True)}


def _conv(x: jax.Array, wb: tuple[jax.Array, jax.Array], *, stride: int = 1, dilation: int = 1) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, wb[0], window_strides=(stride, stride), padding="SAME", rhs_dilation=(dilation, dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    ) + wb[1]


def apply(params: Params, x: jax.Array) -> jax.Array:
    """(N, H, W, channels) images -> (N, H, W, classes) logits; H and W even.

    A 3x3 conv at full resolution, a strided 3x3 conv down to half resolution, two 3x3 convs there
    (the second dilated: a receptive field of about 30 pixels), a 1x1 projection upsampled and added
    to the full-resolution features (a one-level U-Net with an additive skip), a 3x3 conv and a 1x1 head.
    """
    relu = jax.nn.relu
    full = relu(_conv(x, params["enc"]))
    half = relu(_conv(full, params["down"], stride=2))
    half = relu(_conv(half, params["mid1"]))
    half = relu(_conv(half, params["mid2"], dilation=2))
    up = jnp.repeat(jnp.repeat(_conv(half, params["proj"]), 2, axis=1), 2, axis=2)
    return _conv(relu(_conv(relu(full + up), params["dec"])), params["head"])


@jax.jit
def predict(params: Params, x: jax.Array) -> jax.Array:
    return jnp.argmax(apply(params, x), axis=-1)


def make_loss(name: str, options: dict[str, Any]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    fn = getattr(pl, name)
    return lambda logits, labels: fn(logits, labels, class_axis=-1, **options)


def train(
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    data: dict[str, np.ndarray],
    *,
    steps: int,
    batch_size: int,
    lr: float,
    width: int,
    seed: int,
    evals: int,
    label: str,
) -> dict[str, Any]:
    """Train from the seed's initial weights on the seed's batch order; record loss and ``evals`` eval IoU points."""
    params = init_params(jax.random.key(seed), data["x_train"].shape[-1], width, NUM_CLASSES)
    optimizer = optax.adam(lr)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array]:
        loss, grads = jax.value_and_grad(lambda p: loss_fn(apply(p, x), y))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    order = batches(len(data["x_train"]), batch_size, steps, seed=seed)
    eval_at = {round(k * steps / evals) for k in range(1, evals + 1)}  # always includes the last step
    losses, curve = [], []
    start = time.perf_counter()
    for i, idx in enumerate(order, start=1):
        params, opt_state, loss = step(params, opt_state, data["x_train"][idx], data["y_train"][idx])
        losses.append(float(loss))
        if i in eval_at:
            miou, per_class = mean_iou(np.asarray(predict(params, data["x_eval"])), data["y_eval"])
            curve.append((i, miou))
            print(f"  {label:<40} step {i:4d}/{steps}  loss {losses[-1]:.4f}  eval mean IoU {miou:.3f}"
                  f"  ({time.perf_counter() - start:5.1f} s)", flush=True)
    return {"losses": np.array(losses), "curve": np.array(curve), "miou": miou, "per_class": per_class,
            "seconds": time.perf_counter() - start}


def print_table(results: dict[str, dict[str, Any]], baseline: np.ndarray) -> None:
    w = max(26, *(len(label) + 1 for label in results))
    head = f"{'loss':<{w}}{'mean IoU':>9}" + "".join(f"{c:>11}" for c in (*CLASSES[1:], CLASSES[0])) + f"{'time':>8}"
    print("\n" + head + "\n" + "-" * len(head))
    rows = [(label, r["miou"], r["per_class"], f"{r['seconds']:6.1f}s") for label, r in results.items()]
    rows.append(("all background (baseline)", float(np.nanmean(baseline[1:])), baseline, ""))
    for label, miou, pc, secs in rows:
        print(f"{label:<{w}}{miou:9.3f}" + "".join(f"{v:11.3f}" for v in (*pc[1:], pc[0])) + f"{secs:>8}")
    print("mean IoU: over the foreground classes of the held-out set (intersections and unions summed over it).")
    if any("background_weight" in label for label in results):
        print("background_weight=0.1: the background class weighs 0.1 in the class mean of a region loss; with equal\n"
              "weights softmax Dice and Tversky collapse to all-background here (see --losses dice-plain,dice-log).")


def plot(results: dict[str, dict[str, Any]], path: Path) -> bool:
    """Save the curves; False (nothing saved) when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, r in results.items():
        losses = r["losses"]
        smooth = np.convolve(losses, np.ones(5) / 5, mode="valid") if len(losses) >= 5 else losses
        ax_loss.plot(np.arange(len(smooth)) + 1, smooth / losses[0], label=label)
        ax_iou.plot(r["curve"][:, 0], r["curve"][:, 1], marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="step", ylabel="training loss / first loss (5-step mean)", yscale="log", title="training loss")
    ax_iou.set(xlabel="step", ylabel="mean foreground IoU", title="held-out mean IoU")
    ax_iou.set_ylim(bottom=0)
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
    ax_iou.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--losses", default=",".join(DEFAULT),
                   help=f"comma-separated, from {', '.join(LOSSES)} (default: {','.join(DEFAULT)})")
    p.add_argument("--steps", type=int, default=None, help="training steps per loss (default 250; 5 with --smoke)")
    p.add_argument("--seed", type=int, default=0, help="data, initial weights and batch order")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    p.add_argument("--width", type=int, default=12, help="channels at full resolution (twice as many at half)")
    p.add_argument("--train-size", type=int, default=None, help="training images (default 512; 32 with --smoke)")
    p.add_argument("--eval-size", type=int, default=None, help="held-out images (default 96; 16 with --smoke)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="folder for demo_curves.png")
    p.add_argument("--smoke", action="store_true", help="a few steps per loss on a tiny set: checks that it runs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = args.steps or (5 if args.smoke else 250)
    n_train = args.train_size or (32 if args.smoke else 512)
    n_eval = args.eval_size or (16 if args.smoke else 96)
    wanted = [s.strip() for s in args.losses.split(",") if s.strip()]
    unknown = [w for w in wanted if w not in LOSSES]
    if unknown:
        print(f"demo: unknown loss {', '.join(unknown)}; choose from {', '.join(LOSSES)}", file=sys.stderr)
        return 2
    missing = [LOSSES[w][0] for w in wanted if not hasattr(pl, LOSSES[w][0])]
    if missing:
        print(f"demo: not (yet) exported by polyloss, skipped: {', '.join(missing)}")
    chosen = [w for w in wanted if hasattr(pl, LOSSES[w][0])]
    if not chosen:
        print("demo: none of the chosen losses is available", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    x_train, y_train = make_segmentation(n_train, seed=args.seed, split="train")
    x_eval, y_eval = make_segmentation(n_eval, seed=args.seed, split="eval")
    data = {"x_train": x_train, "y_train": y_train, "x_eval": x_eval, "y_eval": y_eval}
    fg = 1 - float(np.mean(y_train == 0))
    print(f"data: {n_train} train / {n_eval} eval images {x_train.shape[1:]}, foreground {fg:.1%} of pixels "
          f"({time.perf_counter() - t0:.1f} s); jax {jax.__version__} on {jax.default_backend()}")

    results = {}
    for key in chosen:
        name, options = LOSSES[key]
        label = f"{key}: {name}" + "".join(
            f" background_weight={v[0]}" if k == "weight" else f" {k}={v}" for k, v in options.items()
        )
        results[label] = train(make_loss(name, options), data, steps=steps, batch_size=args.batch_size, lr=args.lr,
                               width=args.width, seed=args.seed, evals=min(steps, 8), label=label)

    print_table(results, mean_iou(np.zeros_like(y_eval), y_eval)[1])
    path = args.out / "demo_curves.png"
    saved = f"curves saved to {path}" if plot(results, path) else "matplotlib not installed: no plot"
    print(f"{saved}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
