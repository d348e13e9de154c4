"""Distance transforms and boundary losses against their peers: medians of interleaved rounds.

distance_transform on (2, n, n) images for n = 64 to 512 and (1, n, n, n)
volumes for n = 64 to 128, so the growth is on the table: polyloss on NumPy
and torch CPU (SciPy per image underneath), its pure array-API path on NumPy,
torch and jax.jit (CPU), against ``scipy.ndimage.distance_transform_edt``
called per image.
The array-API path costs O(P log n) for the last axis plus O(P n) for each
other axis (P pixels, n the axis length): for (2, 512, 512), about
2 * 512^3 = 2.7e8 add-min operations against SciPy's O(P) (5e5 pixel visits),
so the array-API path is bound to be slower on one core and grows faster.

Losses (forward + backward): polyloss vs MONAI in torch eager, and
polyloss under jax.jit(value_and_grad).
Run: python benchmarks/distance.py [--quick]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Table, jax_step, main, measure, optional_import, torch_step

import polyloss as pl

COMMAND = "python benchmarks/distance.py"


def _blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Masks of smooth random blobs covering about half of each image."""
    ndimage = importlib.import_module("scipy.ndimage")
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(0,) * (len(shape) - 2) + (6, 6))
    return field > 0


SIZES_2D = (64, 128, 256, 512)
SIZES_3D = (64, 96, 128)
QUICK_2D = (64, 128)
QUICK_3D = (32,)


def _distance_table(quick: bool, rng: np.random.Generator) -> Table:
    """Growth with the image size: (2, n, n) images and (1, n, n, n) volumes, every backend against SciPy."""
    ndimage = importlib.import_module("scipy.ndimage")
    table = Table("distance_transform: growth with the image size, against SciPy per image",
                  COMMAND + (" --quick" if quick else ""))
    jax = optional_import("jax")
    torch = optional_import("torch")
    shapes = [(2, n, n) for n in (QUICK_2D if quick else SIZES_2D)]
    shapes += [(1, n, n, n) for n in (QUICK_3D if quick else SIZES_3D)]
    slow = {"rounds": 3 if quick else 5, "warmup": 1}
    for shape in shapes:
        nd = len(shape) - 1
        mask = _blobs(rng, shape)

        def scipy_per_image(mask: np.ndarray = mask) -> None:
            np.stack([ndimage.distance_transform_edt(m) for m in mask])

        peer = {"scipy.ndimage.distance_transform_edt per image": scipy_per_image}
        table.add(f"{shape}", "numpy (SciPy)", measure({
            "polyloss": lambda mask=mask, nd=nd: pl.distance_transform(mask, spatial_ndim=nd), **peer}, **slow))
        table.add(f"{shape} native=False", "numpy", measure({
            "polyloss": lambda mask=mask, nd=nd: pl.distance_transform(mask, spatial_ndim=nd, native=False),
            **peer}, **slow))
        if torch is not None:
            t = torch.as_tensor(mask)
            table.add(f"{shape}", "torch eager (SciPy op)", measure({
                "polyloss": lambda t=t, nd=nd: pl.distance_transform(t, spatial_ndim=nd), **peer}, **slow))
            table.add(f"{shape} native=False", "torch eager", measure({
                "polyloss": lambda t=t, nd=nd: pl.distance_transform(t, spatial_ndim=nd, native=False),
                **peer}, **slow))
        if jax is not None:
            f = jax.jit(lambda m, nd=nd: pl.distance_transform(m, spatial_ndim=nd))
            m = jax.numpy.asarray(mask)
            table.add(f"{shape}", "jax.jit (CPU)", measure({
                "polyloss": lambda f=f, m=m: jax.block_until_ready(f(m)), **peer}, **slow))
    table.notes.append("numpy and torch CPU: SciPy per image plus the diagonal fix for masks without zeros "
                       "(torch through the custom op polyloss::distance_transform_edt); native=False and "
                       "jax: the array-API path, O(P log n) for the last axis plus O(P n) for each other axis "
                       "(float32 on jax/torch, float64 on numpy)")
    return table


def _loss_table(quick: bool, rng: np.random.Generator) -> Table:
    shape = (2, 3, 32, 32) if quick else (4, 3, 128, 128)
    table = Table("Boundary losses: forward + backward", COMMAND + (" --quick" if quick else ""))
    n, c, h, w = shape
    x = rng.normal(size=shape).astype(np.float32)
    labels = np.argmax(np.stack([_blobs(rng, (n, h, w)) * rng.random((n, h, w)) for _ in range(c)], 1), 1)
    onehot = np.moveaxis(np.eye(c, dtype=np.float32)[labels], -1, 1)
    case = f"{shape}"
    torch = optional_import("torch")
    monai = optional_import("monai.losses")
    if torch is not None:
        xt, yt, ot = torch.tensor(x), torch.tensor(labels), torch.tensor(onehot)
        hd = {"polyloss": torch_step(pl.hausdorff_dt_loss, xt, yt)}
        cl = {"polyloss": torch_step(lambda a, b: pl.soft_cldice_loss(a, b, per_image=True), xt, yt)}
        if monai is not None:
            hd["monai.losses.HausdorffDTLoss"] = torch_step(monai.HausdorffDTLoss(softmax=True), xt, ot)
            cl["monai.losses.SoftclDiceLoss"] = torch_step(monai.SoftclDiceLoss(softmax=True), xt, ot)
        else:
            table.notes.append("MONAI does not import here: its rows are missing (it is in the parity venv)")
        table.add(f"hausdorff_dt_loss {case}", "torch eager", measure(hd, rounds=7))
        table.add(f"soft_cldice_loss {case}", "torch eager", measure(cl))
        table.add(f"boundary_iou_loss {case}", "torch eager", measure({
            "polyloss": torch_step(pl.boundary_iou_loss, xt, yt)}))
    jax = optional_import("jax")
    if jax is not None:
        xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(labels)
        for name in ("hausdorff_dt_loss", "soft_cldice_loss", "boundary_iou_loss"):
            table.add(f"{name} {case}", "jax.jit(value_and_grad) CPU", measure({
                "polyloss": jax_step(getattr(pl, name), xj, yj)}, rounds=7))
    table.notes.append("MONAI's HausdorffDTLoss runs SciPy per image on CPU; polyloss's torch and jax paths "
                       "run the array-API distance transform (4 per class: target and prediction, both sides)")
    return table


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    return [_distance_table(quick, rng), _loss_table(quick, rng)]


if __name__ == "__main__":
    main(run, __doc__)
