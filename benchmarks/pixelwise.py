"""Pixel-wise losses against their peers: forward + backward, medians of interleaved rounds.

torch eager: polyloss vs torch.nn.functional, torchvision.ops, kornia.
jax.jit(value_and_grad): polyloss vs optax.
Run: python benchmarks/pixelwise.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import FLOOR_NOTE, Table, jax_step, main, optional_import, torch_backend_name, torch_device, torch_step

import polyloss as pl

COMMAND = "python benchmarks/pixelwise.py"


def _torch_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    import torch
    import torch.nn.functional as F

    dev, backend = torch_device(), torch_backend_name()
    n, c, h, w = shape
    x = torch.tensor(rng.normal(size=shape), dtype=torch.float32, device=dev)
    labels = torch.tensor(rng.integers(0, c, size=(n, h, w)), device=dev)
    binary = torch.tensor(rng.random(shape) < 0.1, dtype=torch.float32, device=dev)
    case = f"{shape}"

    table.bench(f"cross_entropy {case}", backend, {
        "polyloss": torch_step(pl.cross_entropy, x, labels),
        "torch.nn.functional.cross_entropy": torch_step(F.cross_entropy, x, labels),
    }, x)
    wt = torch.rand(c, device=dev) + 0.5
    table.bench(f"cross_entropy ignore_index+weight {case}", backend, {
        "polyloss": torch_step(lambda a, b: pl.cross_entropy(a, b, ignore_index=0, weight=wt), x, labels),
        "torch.nn.functional.cross_entropy": torch_step(
            lambda a, b: F.cross_entropy(a, b, ignore_index=0, weight=wt), x, labels),
    }, x)
    table.bench(f"binary_cross_entropy {case}", backend, {
        "polyloss": torch_step(pl.binary_cross_entropy, x, binary),
        "torch.nn.functional.binary_cross_entropy_with_logits": torch_step(
            F.binary_cross_entropy_with_logits, x, binary),
    }, x)
    focal = {"polyloss": torch_step(pl.sigmoid_focal_loss, x, binary)}
    tv_ops = optional_import("torchvision.ops")
    if tv_ops is not None:
        focal["torchvision.ops.sigmoid_focal_loss"] = torch_step(
            lambda a, b: tv_ops.sigmoid_focal_loss(a, b, reduction="mean"), x, binary)
    else:
        table.notes.append("torchvision does not import beside this torch build: its rows are missing")
    table.bench(f"sigmoid_focal_loss {case}", backend, focal, x)
    kornia = optional_import("kornia.losses")
    softmax_focal = {"polyloss": torch_step(lambda a, b: pl.softmax_focal_loss(a, b, alpha=0.25), x, labels)}
    if kornia is not None:
        softmax_focal["kornia.losses.focal_loss"] = torch_step(
            lambda a, b: kornia.focal_loss(a, b, alpha=0.25, reduction="mean"), x, labels)
    table.bench(f"softmax_focal_loss {case}", backend, softmax_focal, x)

    tiny_x = torch.tensor(rng.normal(size=(2, 3)), dtype=torch.float32, device=dev)
    tiny_y = torch.tensor([0, 2], device=dev)
    table.bench("cross_entropy (2, 3): per-call overhead", backend, {
        "polyloss": torch_step(pl.cross_entropy, tiny_x, tiny_y),
        "torch.nn.functional.cross_entropy": torch_step(F.cross_entropy, tiny_x, tiny_y),
    }, tiny_x)


def _jax_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    import jax.numpy as jnp

    optax = optional_import("optax")
    n, c, h, w = shape
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), dtype=jnp.float32)  # channels-last
    labels = jnp.asarray(rng.integers(0, c, size=(n, h, w)))
    binary = jnp.asarray(rng.random((n, h, w, c)) < 0.1, dtype=jnp.float32)
    case = f"{(n, h, w, c)}"
    ce = {"polyloss": jax_step(lambda a, b: pl.cross_entropy(a, b, class_axis=-1), x, labels)}
    focal = {"polyloss": jax_step(pl.sigmoid_focal_loss, x, binary)}
    if optax is not None:
        ce["optax.softmax_cross_entropy_with_integer_labels"] = jax_step(
            lambda a, b: optax.softmax_cross_entropy_with_integer_labels(a, b).mean(), x, labels)
        focal["optax.sigmoid_focal_loss"] = jax_step(lambda a, b: optax.sigmoid_focal_loss(a, b).mean(), x, binary)
    else:
        table.notes.append("optax is not installed: its rows are missing")
    table.bench(f"cross_entropy {case}", "jax.jit", ce, x)
    table.bench(f"sigmoid_focal_loss {case}", "jax.jit", focal, x)


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    shape = (2, 21, 64, 64) if quick else (8, 21, 128, 128)
    table = Table("Pixel-wise losses: forward + backward", COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(table, shape, rng)
    if optional_import("jax") is not None:
        _jax_cases(table, shape, rng)
    table.notes.append(FLOOR_NOTE)
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
