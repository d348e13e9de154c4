"""Train one small segmentation net with several polyloss losses and compare them, on two tasks.

The first task, ``shapes`` (``_data.py``), is strongly imbalanced: a few small discs, squares and
triangles cover about 5% of each textured image, so predicting background
everywhere is 95% pixel-accurate and scores a mean foreground IoU of 0.
The same tiny two-scale conv net (pure ``jax.numpy`` and ``jax.lax``, channels-last),
the same initial weights and the same batches are trained once per loss with
optax Adam, one ``jax.jit(jax.value_and_grad(...))`` step; every loss is called
with ``class_axis=-1`` on raw logits and integer labels. Dice and Tversky weigh
the background class 0.1 in their class mean (``weight=``): with equal weights
they collapse to all-background on this data (``--losses dice-plain`` shows it).

The second task, ``thin`` (``thin_structures.py``), trains the same net on faint thin curves with
Dice + CE alone and plus each of three topology losses (skeleton recall, clCE, clDice), and scores
the held-out predictions by IoU, the clDice score, skeleton recall and the Betti-0 error.

Needs jax and optax, scikit-image for the thin task, matplotlib for the figures:
``pip install ".[jax,skeleton]" optax matplotlib``.

    python examples/demo.py                         # both tasks; its run time is in examples/out/demo.json
    python examples/demo.py --tasks shapes --losses dice,ce --steps 200
    python examples/demo.py --smoke                 # a few steps per loss (mostly compile time)

Prints progress, a table per task on a held-out set (shapes: mean foreground IoU and
per-class IoU; thin: IoU and the topology scores); saves the training curves
(``demo_curves.png``), held-out images with their ground truth and each loss's
prediction (``demo_predictions.png``, ``demo_thin.png``) and the results with the
machine, versions and date (``demo.json``, what ``tools/readme_numbers.py`` puts in
the README) to ``examples/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

if __name__ == "__main__":  # importing jax takes seconds on a busy machine: say so at once
    print("demo: importing jax, optax and polyloss ...", flush=True)
try:
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:
    sys.exit(f"demo: needs jax and optax ({exc}); install them with: pip install '.[jax]' optax matplotlib")

from _data import CLASSES, NUM_CLASSES, batches, make_curves, make_segmentation, mean_iou

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


def init_params(seed: int, in_channels: int, width: int, num_classes: int) -> Params:
    """He-normal kernels (HWIO), zero biases; ``width`` channels at full resolution, ``2 width`` at half.

    One flat ``jax.random.normal`` draw cut into the kernels: drawing each kernel apart compiles seven
    random-number programs (about 10 s of CPU), one draw compiles one (under a second).
    """
    w1, w2 = width, 2 * width
    shapes = {  # name: (kernel size, in channels, out channels)
        "enc": (3, in_channels, w1), "down": (3, w1, w2), "mid1": (3, w2, w2), "mid2": (3, w2, w2),
        "proj": (1, w2, w1), "dec": (3, w1, w1), "head": (1, w1, num_classes),
    }
    sizes = [size * size * cin * cout for size, cin, cout in shapes.values()]
    flat = np.asarray(jax.random.normal(jax.random.key(seed), (sum(sizes),)))
    chunks = np.split(flat, np.cumsum(sizes)[:-1])
    return {name: (jnp.asarray(chunk.reshape(size, size, cin, cout) * np.sqrt(2.0 / (size * size * cin))),
                   jnp.zeros(cout, dtype=jnp.float32))
            for (name, (size, cin, cout)), chunk in zip(shapes.items(), chunks, strict=True)}


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


def make_step(
    loss_fns: list[Callable[[jax.Array, jax.Array], jax.Array]], optimizer: optax.GradientTransformation
) -> Callable[..., tuple[Params, optax.OptState, jax.Array]]:
    """One jitted Adam step for every loss: ``which`` (an int array) picks the loss with ``jax.lax.switch``.

    The net's forward and backward pass compile once (most of the compile time), not once per loss;
    each loss's gradient with respect to the logits is pulled back through the net with ``jax.vjp``.
    """

    @jax.jit
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array, which: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array]:
        logits, pullback = jax.vjp(lambda p: apply(p, x), params)
        loss, dlogits = jax.lax.switch(which, [jax.value_and_grad(fn) for fn in loss_fns], logits, y)
        (grads,) = pullback(dlogits)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def train(
    step: Callable[..., tuple[Params, optax.OptState, jax.Array]],
    which: int,
    init: tuple[Params, optax.OptState],
    data: dict[str, np.ndarray],
    *,
    steps: int,
    batch_size: int,
    seed: int,
    evals: int,
    label: str,
    num_classes: int = NUM_CLASSES,
) -> dict[str, Any]:
    """Train from ``init`` (weights, optimizer state) on the seed's batch order; record loss and ``evals`` eval IoUs.

    ``step_ms`` is the median wall time of a step; ``first_step_seconds`` includes compiling the step
    (on the first loss) and is reported apart.
    """
    params, opt_state = init
    order = batches(len(data["x_train"]), batch_size, steps, seed=seed)
    eval_at = {round(k * steps / evals) for k in range(1, evals + 1)}  # always includes the last step
    losses, curve, step_times = [], [], []
    start = time.perf_counter()
    for i, idx in enumerate(order, start=1):
        t = time.perf_counter()
        params, opt_state, loss = step(params, opt_state, data["x_train"][idx], data["y_train"][idx],
                                       jnp.asarray(which))
        losses.append(float(loss))  # float() waits for the step: the time below is the step's
        step_times.append(time.perf_counter() - t)
        if i in eval_at:
            pred = np.asarray(predict(params, data["x_eval"]))
            miou, per_class = mean_iou(pred, data["y_eval"], num_classes)
            curve.append((i, miou))
            print(f"  {label:<40} step {i:4d}/{steps}  loss {losses[-1]:.4f}  eval mean IoU {miou:.3f}"
                  f"  ({time.perf_counter() - start:5.1f} s)", flush=True)
    return {"losses": np.array(losses), "curve": np.array(curve), "miou": miou, "per_class": per_class,
            "pred": pred, "seconds": time.perf_counter() - start, "first_step_seconds": step_times[0],
            "step_ms": 1000 * float(np.median(step_times[1:])) if steps > 1 else float("nan")}


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


def _pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start): the first point is the first value."""
    csum = np.cumsum(np.concatenate([[0.0], values]))
    i = np.arange(1, len(values) + 1)
    lo = np.maximum(i - window, 0)
    return (csum[i] - csum[lo]) / (i - lo)


def plot_curves(results: dict[str, dict[str, Any]], title: str, path: Path) -> bool:
    """Training loss (relative to its first step) and held-out mean IoU per loss; False when matplotlib is absent."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(12, 5.2))
    for label, r in results.items():
        smooth = _running_mean(r["losses"], 5)
        ax_loss.plot(np.arange(1, len(smooth) + 1), smooth / r["losses"][0], label=label)
        ax_iou.plot(r["curve"][:, 0], r["curve"][:, 1], marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="step", ylabel="training loss / loss at step 1 (mean of the last 5 steps)", yscale="log",
                title="training loss, relative to step 1")
    ax_iou.set(xlabel="step", ylabel="mean foreground IoU", title="held-out mean IoU (all background: 0)")
    ax_iou.set_ylim(bottom=0)
    for ax in (ax_loss, ax_iou):
        ax.grid(alpha=0.3)
    handles, labels = ax_loss.get_legend_handles_labels()  # one legend for both panels, below them: hides no curve
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=9, frameon=False)
    fig.suptitle(title)
    rows = -(-len(labels) // 3)
    fig.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# Display colours of the classes: background dark grey, then as the shapes' class colours in _data.py.
_CLASS_RGB = np.array([[0.15, 0.15, 0.15], [0.95, 0.25, 0.2], [0.2, 0.9, 0.3], [0.25, 0.35, 0.95]])


def plot_predictions(results: dict[str, dict[str, Any]], data: dict[str, np.ndarray], title: str, path: Path,
                     *, images: int = 4) -> bool:
    """Held-out images (rows): the image, its ground truth and each loss's prediction side by side."""
    plt = _pyplot()
    if plt is None:
        return False
    from matplotlib.patches import Patch

    y = data["y_eval"]
    distinct = np.array([len(np.unique(yi[yi > 0])) for yi in y])
    rows = np.argsort(-distinct, kind="stable")[: min(images, len(y))]  # the images showing the most classes
    cols = 2 + len(results)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 1.9 * len(rows) + 1.1), squeeze=False)
    for r, i in enumerate(rows):
        panels = [np.clip(data["x_eval"][i] * 0.17 + 0.4, 0, 1), _CLASS_RGB[y[i]]]  # undo _data's normalisation
        panels += [_CLASS_RGB[res["pred"][i]] for res in results.values()]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel.squeeze(), interpolation="nearest", cmap="gray" if panel.shape[-1] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                names = ["image", "ground truth"] + [
                    f"{label.split(':')[0]}\nmIoU {res['miou']:.3f}" for label, res in results.items()]
                ax.set_title(names[c], fontsize=9)
    fig.legend([Patch(color=rgb) for rgb in _CLASS_RGB], CLASSES, loc="lower center", ncol=len(CLASSES),
               fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _load() -> list[float] | None:
    """The machine's load average over 1, 5 and 15 minutes (a shared machine slows the run down)."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None


def environment(load_at_start: list[float] | None) -> dict[str, Any]:
    """The machine, the versions and the date of this run (what the README quotes next to the numbers)."""
    import array_api_compat

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"platform": platform.platform(), "cpu": platform.machine(), "cpus": cpus,
                    "load_average_1_5_15_min_at_start": load_at_start, "load_average_1_5_15_min_at_end": _load(),
                    "jax_backend": jax.default_backend()},
        "versions": {"python": platform.python_version(), "polyloss": pl.__version__, "jax": jax.__version__,
                     "optax": optax.__version__, "numpy": np.__version__,
                     "array_api_compat": array_api_compat.__version__},
    }


def _clean(v: float) -> float | None:
    return None if np.isnan(v) else float(v)  # unrounded: the README rounds as the table does


def loss_rows(results: dict[str, dict[str, Any]], keys: list[str], baseline: np.ndarray) -> dict[str, Any]:
    """The shapes task's numbers for ``demo.json`` (``tools/readme_numbers.py`` renders the README's table from it)."""
    rows = []
    for key, (label, r) in zip(keys, results.items(), strict=True):
        name, options = LOSSES[key]
        rows.append({
            "key": key, "function": name, "options": {k: list(v) if isinstance(v, tuple) else v
                                                      for k, v in options.items()},
            "label": label, "mean_iou": _clean(r["miou"]),
            "per_class_iou": {c: _clean(v) for c, v in zip(CLASSES, r["per_class"], strict=True)},
            "seconds": round(r["seconds"], 2), "first_step_seconds": round(r["first_step_seconds"], 2),
            "step_ms": _clean(r["step_ms"]),
        })
    return {"losses": rows, "baseline_all_background": {c: _clean(v) for c, v in zip(CLASSES, baseline, strict=True)}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default="shapes,thin", help="comma-separated, from shapes, thin (default: both)")
    p.add_argument("--losses", default=",".join(DEFAULT),
                   help=f"the shapes task's, comma-separated, from {', '.join(LOSSES)} (default: {','.join(DEFAULT)})")
    p.add_argument("--steps", type=int, default=None, help="training steps per loss (default 250; 5 with --smoke)")
    p.add_argument("--seed", type=int, default=0, help="data, initial weights and batch order")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate")
    p.add_argument("--width", type=int, default=12, help="channels at full resolution (twice as many at half)")
    p.add_argument("--train-size", type=int, default=None,
                   help="training images (default 512 shapes, 256 thin; 32 and 16 with --smoke)")
    p.add_argument("--eval-size", type=int, default=None,
                   help="held-out images (default 96 shapes, 64 thin; 16 and 8 with --smoke)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out",
                   help="folder for demo_curves.png, demo_predictions.png, demo_thin.png and demo.json")
    p.add_argument("--smoke", action="store_true", help="a few steps per loss on a tiny set: checks that it runs")
    return p.parse_args(argv)


def run_task(
    labels: list[str], loss_fns: list[Callable[[jax.Array, jax.Array], jax.Array]], data: dict[str, np.ndarray],
    args: argparse.Namespace, steps: int, num_classes: int, t0: float,
) -> dict[str, dict[str, Any]]:
    """Train the net from the same initial weights with each loss in turn (one jitted step for them all)."""
    optimizer = optax.adam(args.lr)
    step = make_step(loss_fns, optimizer)
    params = init_params(args.seed, data["x_train"].shape[-1], args.width, num_classes)
    init = (params, jax.jit(optimizer.init)(params))  # every loss starts from the same weights
    results = {}
    for which, label in enumerate(labels):
        print(f"[{which + 1}/{len(labels)}] {label}  (total {time.perf_counter() - t0:.0f} s)"
              + ("; compiling one jitted step for all the losses ..." if which == 0 else ""), flush=True)
        results[label] = train(step, which, init, data, steps=steps, batch_size=args.batch_size, seed=args.seed,
                               evals=min(steps, 8), label=label, num_classes=num_classes)
    return results


def shapes_task(args: argparse.Namespace, steps: int, t0: float, saved: list[str]) -> dict[str, Any] | int:
    """The 4-class task: the chosen losses, their table and figures; the results file's entries (or an exit status)."""
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

    print(f"shapes: making {n_train} training and {n_eval} held-out images ...", flush=True)
    x_train, y_train = make_segmentation(n_train, seed=args.seed, split="train")
    x_eval, y_eval = make_segmentation(n_eval, seed=args.seed, split="eval")
    data = {"x_train": x_train, "y_train": y_train, "x_eval": x_eval, "y_eval": y_eval}
    fg = 1 - float(np.mean(y_train == 0))
    print(f"data: {n_train} train / {n_eval} eval images {x_train.shape[1:]}, foreground {fg:.1%} of pixels "
          f"({time.perf_counter() - t0:.1f} s); jax {jax.__version__} on {jax.default_backend()}; "
          f"{len(chosen)} losses x {steps} steps", flush=True)

    labels = [f"{key}: {LOSSES[key][0]}" + "".join(
        f" background_weight={v[0]}" if k == "weight" else f" {k}={v}" for k, v in LOSSES[key][1].items()
    ) for key in chosen]
    start = time.perf_counter()
    results = run_task(labels, [make_loss(*LOSSES[key]) for key in chosen], data, args, steps, NUM_CLASSES, t0)
    seconds = time.perf_counter() - start
    baseline = mean_iou(np.zeros_like(y_eval), y_eval)[1]
    print_table(results, baseline)
    title = (f"polyloss demo: one conv net, {len(results)} losses, {steps} steps of {args.batch_size} images "
             f"({n_train} train / {n_eval} held out, seed {args.seed}), foreground {fg:.1%} of pixels")
    saved += [str(path) for path, ok in [
        (args.out / "demo_curves.png", plot_curves(results, title, args.out / "demo_curves.png")),
        (args.out / "demo_predictions.png", plot_predictions(results, data, title, args.out / "demo_predictions.png")),
    ] if ok]
    return {"settings": {"steps": steps, "batch_size": args.batch_size, "lr": args.lr, "width": args.width,
                         "seed": args.seed, "train_size": n_train, "eval_size": n_eval},
            **loss_rows(results, chosen, baseline), "shapes_seconds": round(seconds, 1)}


def thin_task(args: argparse.Namespace, steps: int, t0: float, saved: list[str]) -> dict[str, Any]:
    """The thin-structure task (``thin_structures.py``): Dice + CE alone and plus each topology loss."""
    print("thin: importing scipy and scikit-image, making curves ...", flush=True)
    import thin_structures as thin

    n_train = args.train_size or (16 if args.smoke else 256)
    n_eval = args.eval_size or (8 if args.smoke else 64)
    x_train, y_train = make_curves(n_train, seed=args.seed, split="train")
    x_eval, y_eval = make_curves(n_eval, seed=args.seed, split="eval")
    data = {"x_train": x_train, "y_train": thin.targets(y_train), "x_eval": x_eval, "y_eval": y_eval}
    fg = float(np.mean(y_train))
    print(f"data: {n_train} train / {n_eval} eval images {x_train.shape[1:]}, curves cover {fg:.1%} of pixels "
          f"({time.perf_counter() - t0:.1f} s); {len(thin.LOSSES)} losses x {steps} steps", flush=True)
    start = time.perf_counter()
    results = run_task([label for label, _ in thin.LOSSES.values()], [fn for _, fn in thin.LOSSES.values()],
                       data, args, steps, 2, t0)
    seconds = time.perf_counter() - start
    for r in results.values():
        r["scores"] = thin.scores(r["pred"], y_eval)
    thin.print_table(results)
    title = (f"polyloss demo, thin structures: {len(results)} losses, {steps} steps of {args.batch_size} images "
             f"({n_train} train / {n_eval} held out, seed {args.seed}), curves {fg:.1%} of pixels")
    plt = _pyplot()
    if plt is not None:
        thin.plot(results, data, title, args.out / "demo_thin.png", plt)
        saved.append(str(args.out / "demo_thin.png"))
    rows = [{"key": key, "label": label, **r["scores"], "seconds": round(r["seconds"], 2),
             "first_step_seconds": round(r["first_step_seconds"], 2), "step_ms": _clean(r["step_ms"])}
            for key, (label, r) in zip(thin.LOSSES, results.items(), strict=True)]
    return {"settings": {"steps": steps, "batch_size": args.batch_size, "lr": args.lr, "width": args.width,
                         "seed": args.seed, "train_size": n_train, "eval_size": n_eval, "image_size": x_train.shape[1],
                         "curve_pixel_share": round(fg, 4)},
            "losses": rows, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    t0, load_at_start = time.perf_counter(), _load()
    args = parse_args(argv)
    steps = args.steps or (5 if args.smoke else 250)
    tasks = [s.strip() for s in args.tasks.split(",") if s.strip()]
    if not tasks or set(tasks) - {"shapes", "thin"}:
        print(f"demo: --tasks takes shapes, thin or both, got {args.tasks!r}", file=sys.stderr)
        return 2
    saved: list[str] = []
    doc: dict[str, Any] = {}
    if "shapes" in tasks:
        shapes = shapes_task(args, steps, t0, saved)
        if isinstance(shapes, int):
            return shapes
        doc.update(shapes)
    if "thin" in tasks:
        doc["thin"] = thin_task(args, steps, t0, saved)
    run = {"command": " ".join(["python", "examples/demo.py", *(sys.argv[1:] if argv is None else argv)]),
           **environment(load_at_start), **doc,
           "total_seconds": round(time.perf_counter() - t0, 1), "process_cpu_seconds": round(time.process_time(), 1)}
    path = args.out / "demo.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1) + "\n")
    print(f"saved {', '.join([*saved, str(path)])}" + ("" if saved else " (matplotlib not installed: no figures)"))
    print(f"total {time.perf_counter() - t0:.0f} s (after the imports)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
