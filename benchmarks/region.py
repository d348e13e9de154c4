"""Region (overlap) losses against their peers: forward + backward, medians of interleaved rounds.

torch eager: polyloss vs kornia, MONAI and segmentation_models_pytorch (smp is
in the parity venv; a peer that does not import is noted and skipped).
jax.jit(value_and_grad): polyloss vs a hand-written fused jax.numpy version of
the same formula (one-hot by comparison, every sum in one jitted function).
Run: python benchmarks/region.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import FLOOR_NOTE, Table, jax_step, main, optional_import, torch_backend_name, torch_device, torch_step

import polyloss as pl

COMMAND = "python benchmarks/region.py"


def _torch_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    import torch

    dev, backend = torch_device(), torch_backend_name()
    n, c, h, w = shape
    x = torch.tensor(rng.normal(size=shape), dtype=torch.float32, device=dev)
    labels = torch.tensor(rng.integers(0, c, size=(n, h, w)), device=dev)
    labels_1 = labels[:, None]  # MONAI wants (N, 1, H, W)
    case = f"{shape}"
    kornia = optional_import("kornia.losses")
    monai = optional_import("monai.losses")
    smp = optional_import("segmentation_models_pytorch.losses")
    for name, mod in (("kornia", kornia), ("monai", monai), ("segmentation_models_pytorch", smp)):
        if mod is None:
            table.notes.append(f"{name} does not import here: its rows are missing")

    dice = {"polyloss": torch_step(pl.dice_loss, x, labels)}
    if kornia is not None:
        dice["kornia.losses.dice_loss"] = torch_step(kornia.dice_loss, x, labels)
    if monai is not None:
        m = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=0.0, smooth_dr=1e-7)
        dice["monai.losses.DiceLoss"] = torch_step(m, x, labels_1)
    if smp is not None:
        dice["smp.losses.DiceLoss"] = torch_step(smp.DiceLoss("multiclass"), x, labels)
    table.bench(f"dice_loss {case}", backend, dice, x)

    jac = {"polyloss": torch_step(pl.jaccard_loss, x, labels)}
    if monai is not None:
        m = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=True, jaccard=True, smooth_nr=0.0, smooth_dr=1e-7)
        jac["monai.losses.DiceLoss(jaccard=True)"] = torch_step(m, x, labels_1)
    if smp is not None:
        jac["smp.losses.JaccardLoss"] = torch_step(smp.JaccardLoss("multiclass"), x, labels)
    table.bench(f"jaccard_loss {case}", backend, jac, x)

    tv = {"polyloss": torch_step(lambda a, b: pl.tversky_loss(a, b, alpha=0.3, beta=0.7), x, labels)}
    if monai is not None:
        m = monai.TverskyLoss(softmax=True, to_onehot_y=True, batch=True, alpha=0.3, beta=0.7, smooth_nr=0.0,
                              smooth_dr=1e-7)
        tv["monai.losses.TverskyLoss"] = torch_step(m, x, labels_1)
    if smp is not None:
        tv["smp.losses.TverskyLoss"] = torch_step(smp.TverskyLoss("multiclass", alpha=0.3, beta=0.7), x, labels)
    table.bench(f"tversky_loss {case}", backend, tv, x)

    dce = {"polyloss": torch_step(lambda a, b: pl.dice_cross_entropy_loss(a, b, per_image=True, smooth=1e-5),
                                  x, labels)}
    if monai is not None:
        dce["monai.losses.DiceCELoss"] = torch_step(monai.DiceCELoss(softmax=True, to_onehot_y=True), x, labels_1)
    table.bench(f"dice_cross_entropy_loss {case}", backend, dce, x)

    # the fused Dice + focal path (gamma 2); MONAI's focal term is ours / C (its mean runs over classes too)
    dfl = {"polyloss": torch_step(lambda a, b: pl.dice_focal_loss(a, b, per_image=True, smooth=1e-5), x, labels)}
    if monai is not None:
        dfl["monai.losses.DiceFocalLoss"] = torch_step(monai.DiceFocalLoss(softmax=True, to_onehot_y=True), x,
                                                      labels_1)
    table.bench(f"dice_focal_loss {case}", backend, dfl, x)


def _fused_jax():
    """Hand-written fused jax.numpy versions of each formula: one-hot by comparison, channels-last."""
    import jax
    import jax.numpy as jnp

    def stats(x, y):
        p = jax.nn.softmax(x, axis=-1)
        t = (y[..., None] == jnp.arange(x.shape[-1])).astype(x.dtype)
        axes = tuple(range(x.ndim - 1))
        tp = jnp.sum(p * t, axis=axes)
        return p, t, tp, jnp.sum(p, axis=axes) - tp, jnp.sum(t, axis=axes) - tp

    def dice(x, y):
        _, _, tp, fp, fn = stats(x, y)
        return jnp.mean(1 - 2 * tp / jnp.maximum(2 * tp + fp + fn, 1e-7))

    def jaccard(x, y):
        _, _, tp, fp, fn = stats(x, y)
        return jnp.mean(1 - tp / jnp.maximum(tp + fp + fn, 1e-7))

    def tversky(x, y):
        _, _, tp, fp, fn = stats(x, y)
        return jnp.mean(1 - tp / jnp.maximum(tp + 0.3 * fp + 0.7 * fn, 1e-7))

    def focal_tversky(x, y):
        _, _, tp, fp, fn = stats(x, y)
        return jnp.mean((1 - tp / jnp.maximum(tp + 0.3 * fp + 0.7 * fn, 1e-7)) ** 0.75)

    def generalized_dice(x, y):
        _, _, tp, fp, fn = stats(x, y)
        w = 1 / jax.lax.stop_gradient(tp + fn) ** 2
        return 1 - 2 * jnp.sum(w * tp) / jnp.maximum(jnp.sum(w * (2 * tp + fp + fn)), 1e-7)

    def mcc(x, y):
        _, _, tp, fp, fn = stats(x, y)
        tn = y.size - tp - fp - fn
        den = jnp.sqrt((tp + fp) * (tp + fn)) * jnp.sqrt((tn + fp) * (tn + fn))
        return jnp.mean(1 - (tp * tn - fp * fn) / jnp.maximum(den, 1e-7))

    def dice_ce(x, y):
        _, t, tp, fp, fn = stats(x, y)
        ce = -jnp.mean(jnp.sum(t * jax.nn.log_softmax(x, axis=-1), axis=-1))
        return jnp.mean(1 - 2 * tp / jnp.maximum(2 * tp + fp + fn, 1e-7)) + ce

    return {
        "dice_loss": (lambda a, b: pl.dice_loss(a, b, class_axis=-1), dice),
        "jaccard_loss": (lambda a, b: pl.jaccard_loss(a, b, class_axis=-1), jaccard),
        "tversky_loss": (lambda a, b: pl.tversky_loss(a, b, alpha=0.3, beta=0.7, class_axis=-1), tversky),
        "focal_tversky_loss": (lambda a, b: pl.focal_tversky_loss(a, b, class_axis=-1), focal_tversky),
        "generalized_dice_loss": (lambda a, b: pl.generalized_dice_loss(a, b, class_axis=-1), generalized_dice),
        "mcc_loss": (lambda a, b: pl.mcc_loss(a, b, class_axis=-1), mcc),
        "dice_cross_entropy_loss": (lambda a, b: pl.dice_cross_entropy_loss(a, b, class_axis=-1), dice_ce),
    }


def _jax_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    import jax.numpy as jnp

    n, c, h, w = shape
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), dtype=jnp.float32)  # channels-last
    labels = jnp.asarray(rng.integers(0, c, size=(n, h, w)))
    case = f"{(n, h, w, c)}"
    for name, (ours, fused) in _fused_jax().items():
        table.bench(f"{name} {case}", "jax.jit", {
            "polyloss": jax_step(ours, x, labels),
            "fused jax.numpy": jax_step(fused, x, labels),
        }, x)


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    shape = (2, 21, 64, 64) if quick else (8, 21, 128, 128)
    table = Table("Region losses: forward + backward", COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(table, shape, rng)
    if optional_import("jax") is not None:
        _jax_cases(table, shape, rng)
    table.notes.append(FLOOR_NOTE)
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
