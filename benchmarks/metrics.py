"""Surface metrics against MONAI: medians of interleaved rounds.

hausdorff_distance (HD95), average_surface_distance and surface_dice on a
batch of one-hot masks (N, C, H, W). MONAI's ``compute_*`` loop over images
and classes in Python, crop each pair to its bounding box and call SciPy
(a KD-tree or an EDT) on the host; polyloss computes every image and class at
once: surfaces by one erosion, distances by ``distance_transform`` (SciPy per
image on NumPy, the array-API EDT under jax.jit and torch), percentiles by
one sort, with no host loop.

Run: python benchmarks/metrics.py [--quick]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Table, main, measure, optional_import

import polyloss as pl

COMMAND = "python benchmarks/metrics.py"


def _masks(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """One-hot masks of smooth random blobs: argmax over C smoothed noise fields."""
    ndimage = importlib.import_module("scipy.ndimage")
    c, spatial = shape[1], shape[2:]
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(0, 0) + (4,) * len(spatial))
    return np.moveaxis(np.eye(c, dtype=bool)[np.argmax(field, axis=1)], -1, 1)


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    shape = (2, 3, 48, 48) if quick else (8, 4, 192, 192)
    table = Table(f"Surface metrics on a {shape} batch of one-hot masks", COMMAND + (" --quick" if quick else ""))
    pred, true = _masks(rng, shape), _masks(rng, shape)
    calls = {
        "hausdorff_distance percentile=95": (
            lambda p, t: pl.hausdorff_distance(p, t, percentile=95), "compute_hausdorff_distance",
            {"percentile": 95}),
        "average_surface_distance symmetric": (
            lambda p, t: pl.average_surface_distance(p, t, symmetric=True), "compute_average_surface_distance",
            {"symmetric": True}),
        "surface_dice tolerance=1": (
            lambda p, t: pl.surface_dice(p, t, tolerance=1.0), "compute_surface_dice",
            {"class_thresholds": [1.0] * shape[1]}),
    }
    torch = optional_import("torch")
    monai = optional_import("monai.metrics")
    jax = optional_import("jax")
    pt, tt = (torch.as_tensor(pred), torch.as_tensor(true)) if torch is not None else (None, None)
    pj, tj = (jax.numpy.asarray(pred), jax.numpy.asarray(true)) if jax is not None else (None, None)
    for case, (ours, peer_name, peer_options) in calls.items():
        peer = {}
        if torch is not None and monai is not None:
            peer_fn = getattr(monai, peer_name)
            peer[f"monai.metrics.{peer_name}"] = lambda f=peer_fn, o=peer_options: f(pt, tt, include_background=True,
                                                                                     **o)
        slow = {"rounds": 3 if quick else 5, "warmup": 1}
        table.add(f"{case} {shape}", "numpy", measure({"polyloss": lambda f=ours: f(pred, true), **peer}, **slow))
        if jax is not None:
            f = jax.jit(ours)
            table.add(f"{case} {shape}", "jax.jit (CPU)", measure({
                "polyloss": lambda f=f: jax.block_until_ready(f(pj, tj)), **peer}, **slow))
        if torch is not None:
            table.add(f"{case} {shape}", "torch eager", measure({
                "polyloss": lambda f=ours: f(pt, tt), **peer}, **slow))
    if monai is None:
        table.notes.append("MONAI does not import here: its rows are missing (pip install monai)")
    table.notes.append("MONAI: torch CPU tensors, a Python loop over (image, class) with SciPy/KD-tree per pair; "
                       "polyloss on jax/torch: the array-API distance transform, float32")
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
