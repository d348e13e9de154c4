"""The demo's second task: thin structures, where a topology-aware loss may keep faint curves connected.

``examples/demo.py`` trains its small conv net on ``_data.make_curves`` (1-2 pixel wide curves,
"vessels", whose contrast fades along them, on a textured, noisy background) with Dice + CE alone
and with Dice + CE plus each of three topology losses, as their papers combine them with an overlap
loss: ``skeleton_recall_loss`` on the tubed skeleton (nnU-Net's Dice + CE plus the recall term, weight 1),
``cl_cross_entropy_loss`` and ``soft_cldice_loss`` (foreground only). This module holds what is
particular to the task: the losses, the scores of the hard predictions (on the host, with
scikit-image skeletons) and the figure; the net, the training loop and the results file are the demo's.

    python examples/demo.py --tasks thin           # this task alone
    python examples/demo.py --tasks thin --smoke   # a few steps each: checks that it runs

Needs scipy and scikit-image besides the demo's jax and optax (``pip install "polyloss[skeleton]"``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

import polyloss as pl

# The targets travel stacked on the last axis, (..., 2): the labels, then their tubed skeleton
# (``polyloss.tubed_skeleton``, computed once on the host before training, as in a data pipeline).
LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _dice_ce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return pl.dice_cross_entropy_loss(logits, targets[..., 0], class_axis=-1)


# short name -> (label printed and saved, loss of (logits, stacked targets))
LOSSES: dict[str, tuple[str, LossFn]] = {
    "dice+ce": ("dice+ce: dice_cross_entropy_loss", _dice_ce),
    "+skel": ("+skel: dice+ce + skeleton_recall_loss",
              lambda z, t: _dice_ce(z, t) + pl.skeleton_recall_loss(z, t[..., 1], class_axis=-1)),
    "+clce": ("+clce: dice+ce + cl_cross_entropy_loss",
              lambda z, t: _dice_ce(z, t) + pl.cl_cross_entropy_loss(z, t[..., 0], class_axis=-1)),
    "+cldice": ("+cldice: dice+ce + soft_cldice_loss include_background=False",
                lambda z, t: _dice_ce(z, t) + pl.soft_cldice_loss(z, t[..., 0], class_axis=-1,
                                                                   include_background=False)),
}
SCORES = ("iou", "cldice", "skeleton_recall", "betti0_error")  # the keys of scores(), in the table's order


def targets(labels: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` labels -> ``(N, H, W, 2)``: the labels and their tubed skeleton, what the losses take."""
    return np.stack([labels, np.asarray(pl.tubed_skeleton(labels), dtype=labels.dtype)], axis=-1)


def scores(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """Scores of hard binary predictions ``(N, H, W)`` against the labels, over a held-out set.

    ``iou``: foreground IoU, intersections and unions summed over the set. ``cldice``: the clDice
    score of Shit et al., the harmonic mean of topology precision (the share of the predicted skeleton
    inside the target) and topology sensitivity (the share of the target's skeleton inside the
    prediction), skeletons by ``skimage.morphology.skeletonize``, counts summed over the set.
    ``skeleton_recall``: that sensitivity alone. ``betti0_error``: the mean over images of
    |8-connected components of the prediction - those of the target| (0 when every curve is one piece).
    """
    inter = union = skel_p_in_t = skel_p = skel_t_in_p = skel_t = 0
    betti = []
    eight = np.ones((3, 3))
    for p, t in zip(pred.astype(bool), true.astype(bool), strict=True):
        inter, union = inter + np.sum(p & t), union + np.sum(p | t)
        sp, st = skeletonize(p), skeletonize(t)
        skel_p_in_t, skel_p = skel_p_in_t + np.sum(sp & t), skel_p + np.sum(sp)
        skel_t_in_p, skel_t = skel_t_in_p + np.sum(st & p), skel_t + np.sum(st)
        betti.append(abs(ndimage.label(p, structure=eight)[1] - ndimage.label(t, structure=eight)[1]))
    tprec, tsens = skel_p_in_t / max(skel_p, 1), skel_t_in_p / max(skel_t, 1)
    return {"iou": float(inter / max(union, 1)), "cldice": float(2 * tprec * tsens / max(tprec + tsens, 1e-12)),
            "skeleton_recall": float(tsens), "betti0_error": float(np.mean(betti))}


def print_table(results: dict[str, dict[str, Any]]) -> None:
    w = max(26, *(len(label) + 1 for label in results))
    head = f"{'loss':<{w}}{'IoU':>8}{'clDice':>8}{'skel. recall':>14}{'Betti-0 err':>13}{'time':>8}"
    print("\n" + head + "\n" + "-" * len(head))
    for label, r in results.items():
        s = r["scores"]
        print(f"{label:<{w}}{s['iou']:8.3f}{s['cldice']:8.3f}{s['skeleton_recall']:14.3f}{s['betti0_error']:13.2f}"
              f"{r['seconds']:7.1f}s")
    print("held-out set; IoU, clDice score and skeleton recall: higher is better; Betti-0 error (|connected\n"
          "components of the prediction - of the target| per image): lower is better.")


def plot(results: dict[str, dict[str, Any]], data: dict[str, np.ndarray], title: str, path: Path, plt: Any,
         *, images: int = 3) -> None:
    """Held-out images (rows): the image, its ground truth and each loss's prediction side by side."""
    cols = 2 + len(results)
    fig, axes = plt.subplots(images, cols, figsize=(1.9 * cols, 1.9 * images + 0.9), squeeze=False)
    for r in range(images):
        panels = [("image", data["x_eval"][r, ..., 0], "gray"), ("ground truth", data["y_eval"][r], "magma")]
        panels += [(f"{label.split(':')[0]}\nclDice {res['scores']['cldice']:.3f}", res["pred"][r], "magma")
                   for label, res in results.items()]
        for ax, (name, img, cmap) in zip(axes[r], panels, strict=True):
            limits = {} if cmap == "gray" else {"vmin": 0, "vmax": 1}  # an all-background prediction stays dark
            ax.imshow(img, cmap=cmap, interpolation="nearest", **limits)
            ax.set_axis_off()
            if r == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
