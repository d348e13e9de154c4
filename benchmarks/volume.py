"""3-D volumes: time and peak extra memory of forward + backward, where memory limits batch and patch size.

Logits (2, 14, 64, 96, 96) float32 (63 MiB; ``--quick``: (1, 4, 16, 32, 32), 256 KiB, the smallest size
the CPU memory measurement resolves).
torch eager (or cuda, ``POLYLOSS_BENCH_DEVICE=cuda``): polyloss vs MONAI
(DiceLoss, DiceCELoss, DiceFocalLoss, HausdorffDTLoss), torch.nn.functional.cross_entropy,
and kornia (dice_loss, lovasz_softmax_loss: 2-D only, so the volume is viewed
as (N, C, D, H*W); both sum over every voxel of an image, so the view changes
nothing). boundary_loss has no peer (MONAI and kornia have none); its signed
distance map is computed once, outside the step, as a user would.
jax.jit(value_and_grad): polyloss's Dice, Dice + CE, Dice + focal and CE on the
channels-last volume.
Run: python benchmarks/volume.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (
    FLOOR_NOTE,
    Table,
    jax_step,
    main,
    optional_import,
    torch_backend_name,
    torch_device,
    torch_step,
)

import polyloss as pl

COMMAND = "python benchmarks/volume.py"


def _torch_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator, rounds: int) -> None:
    import torch
    import torch.nn.functional as F

    dev, backend = torch_device(), torch_backend_name()
    n, c, d, h, w = shape
    x = torch.tensor(rng.normal(size=shape), dtype=torch.float32, device=dev)
    labels = torch.tensor(rng.integers(0, c, size=(n, d, h, w)), device=dev)
    labels_1 = labels[:, None]  # MONAI wants (N, 1, D, H, W)
    flat_labels = labels.reshape(n, d, h * w)  # kornia is 2-D only: the volume as (N, C, D, H*W)
    case = f"{shape}"
    monai = optional_import("monai.losses")
    kornia = optional_import("kornia.losses")
    for name, mod in (("monai", monai), ("kornia", kornia)):
        if mod is None:
            table.notes.append(f"{name} does not import here: its rows are missing")

    def kornia_view(loss):
        return lambda a, b: loss(a.reshape(n, c, d, h * w), b)

    dice = {"polyloss": torch_step(pl.dice_loss, x, labels)}
    if monai is not None:
        m = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=0.0, smooth_dr=1e-7)
        dice["monai.losses.DiceLoss"] = torch_step(m, x, labels_1)
    if kornia is not None:
        dice["kornia.losses.dice_loss"] = torch_step(kornia_view(kornia.dice_loss), x, flat_labels)
    table.bench(f"dice_loss {case}", backend, dice, x, rounds=rounds)

    dce = {"polyloss": torch_step(lambda a, b: pl.dice_cross_entropy_loss(a, b, per_image=True, smooth=1e-5),
                                  x, labels)}
    if monai is not None:
        dce["monai.losses.DiceCELoss"] = torch_step(monai.DiceCELoss(softmax=True, to_onehot_y=True), x, labels_1)
    table.bench(f"dice_cross_entropy_loss {case}", backend, dce, x, rounds=rounds)

    dfl = {"polyloss": torch_step(lambda a, b: pl.dice_focal_loss(a, b, per_image=True, smooth=1e-5), x, labels)}
    if monai is not None:
        dfl["monai.losses.DiceFocalLoss"] = torch_step(monai.DiceFocalLoss(softmax=True, to_onehot_y=True), x,
                                                      labels_1)
    table.bench(f"dice_focal_loss {case}", backend, dfl, x, rounds=rounds)

    table.bench(f"cross_entropy {case}", backend, {
        "polyloss": torch_step(pl.cross_entropy, x, labels),
        "torch.nn.functional.cross_entropy": torch_step(F.cross_entropy, x, labels),
    }, x, rounds=rounds)

    lovasz = {"polyloss": torch_step(lambda a, b: pl.lovasz_softmax_loss(a, b, per_image=True, classes="all"),
                                     x, labels)}
    if kornia is not None:
        lovasz["kornia.losses.lovasz_softmax_loss"] = torch_step(kornia_view(kornia.lovasz_softmax_loss),
                                                                 x, flat_labels)
    table.bench(f"lovasz_softmax_loss per_image, classes='all' {case}", backend, lovasz, x, rounds=rounds)

    hd = {"polyloss": torch_step(pl.hausdorff_dt_loss, x, labels)}
    if monai is not None:
        m = monai.HausdorffDTLoss(softmax=True, to_onehot_y=True, include_background=False)
        hd["monai.losses.HausdorffDTLoss"] = torch_step(m, x, labels_1)
    table.bench(f"hausdorff_dt_loss {case}", backend, hd, x, rounds=max(3, rounds // 3))

    onehot = F.one_hot(labels, c).movedim(-1, 1)
    phi = pl.signed_distance_map(onehot, spatial_ndim=3)
    table.bench(f"boundary_loss {case}", backend, {"polyloss": torch_step(pl.boundary_loss, x, phi)}, x,
                rounds=rounds)


def _jax_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator, rounds: int) -> None:
    import jax.numpy as jnp

    n, c, d, h, w = shape
    x = jnp.asarray(rng.normal(size=(n, d, h, w, c)), dtype=jnp.float32)  # channels-last
    labels = jnp.asarray(rng.integers(0, c, size=(n, d, h, w)))
    case = f"{(n, d, h, w, c)}"
    for name, loss in (("dice_loss", pl.dice_loss), ("dice_cross_entropy_loss", pl.dice_cross_entropy_loss),
                       ("dice_focal_loss", pl.dice_focal_loss), ("cross_entropy", pl.cross_entropy)):
        table.bench(f"{name} {case}", "jax.jit", {
            "polyloss": jax_step(lambda a, b, loss=loss: loss(a, b, class_axis=-1), x, labels)}, x, rounds=rounds)


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    shape = (1, 4, 16, 32, 32) if quick else (2, 14, 64, 96, 96)
    rounds = 3 if quick else 7
    table = Table("3-D volumes: forward + backward, time and peak memory", COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(table, shape, rng, rounds)
    if optional_import("jax") is not None:
        _jax_cases(table, shape, rng, rounds)
    table.notes.append(FLOOR_NOTE)
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
