"""Lovasz hinge and Lovasz-Softmax against their peers, and the sort they spend their time in.

torch eager forward + backward: polyloss vs kornia (vectorised, one sort) and
smp's LovaszLoss (the reference code: a Python loop over classes and images;
smp is in the parity venv, skipped with a note where it does not import).
jax.jit(value_and_grad): polyloss alone (no JAX peer has a Lovasz loss).
Sort only: one batched descending sort of float32 rows (one per image and
class), what each backend offers against what ``_backend.sort_descending`` does.
Run: python benchmarks/lovasz.py [--quick]
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import (
    FLOOR_NOTE,
    Table,
    jax_step,
    main,
    measure,
    optional_import,
    torch_backend_name,
    torch_device,
    torch_step,
)

import polyloss as pl
from polyloss import _backend

COMMAND = "python benchmarks/lovasz.py"


def _torch_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator, rounds: int) -> None:
    import torch

    dev, backend = torch_device(), torch_backend_name()
    n, c, h, w = shape
    x = torch.tensor(rng.normal(size=shape), dtype=torch.float32, device=dev)
    labels = torch.tensor(rng.integers(0, c, size=(n, h, w)), device=dev)
    logit = torch.tensor(rng.normal(size=(n, 1, h, w)), dtype=torch.float32, device=dev)
    binary = torch.tensor(rng.random((n, 1, h, w)) < 0.3, dtype=torch.float32, device=dev)
    kornia = optional_import("kornia.losses")
    smp = optional_import("segmentation_models_pytorch.losses")
    for name, mod in (("kornia", kornia), ("segmentation_models_pytorch", smp)):
        if mod is None:
            table.notes.append(f"{name} does not import here: its rows are missing")

    per_image = {"polyloss": torch_step(lambda a, b: pl.lovasz_softmax_loss(a, b, per_image=True, classes="all"),
                                        x, labels)}
    if kornia is not None:
        per_image["kornia.losses.lovasz_softmax_loss"] = torch_step(kornia.lovasz_softmax_loss, x, labels)
    table.bench(f"lovasz_softmax_loss per_image, classes='all' {shape}", backend, per_image, x, rounds=rounds)

    batch = {"polyloss": torch_step(pl.lovasz_softmax_loss, x, labels)}
    if smp is not None:
        batch["smp.losses.LovaszLoss('multiclass')"] = torch_step(smp.LovaszLoss("multiclass"), x, labels)
    table.bench(f"lovasz_softmax_loss batch, classes='present' {shape}", backend, batch, x, rounds=rounds)

    hinge = {"polyloss": torch_step(pl.lovasz_hinge_loss, logit, binary)}
    if kornia is not None:
        hinge["kornia.losses.lovasz_hinge_loss"] = torch_step(kornia.lovasz_hinge_loss, logit, binary[:, 0])
    if smp is not None:
        hinge["smp.losses.LovaszLoss('binary', per_image=True)"] = torch_step(
            smp.LovaszLoss("binary", per_image=True), logit, binary)
    table.bench(f"lovasz_hinge_loss per_image {(n, 1, h, w)}", backend, hinge, logit, rounds=rounds)


def _jax_cases(table: Table, shape: tuple[int, ...], rng: np.random.Generator, rounds: int) -> None:
    import jax
    import jax.numpy as jnp

    n, c, h, w = shape
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), dtype=jnp.float32)  # channels-last
    labels = jnp.asarray(rng.integers(0, c, size=(n, h, w)))
    logit = jnp.asarray(rng.normal(size=(n, h, w)), dtype=jnp.float32)
    binary = jnp.asarray(rng.random((n, h, w)) < 0.3, dtype=jnp.float32)
    table.bench(f"lovasz_softmax_loss per_image, classes='all' {(n, h, w, c)}", "jax.jit", {
        "polyloss": jax_step(lambda a, b: pl.lovasz_softmax_loss(a, b, class_axis=-1, per_image=True, classes="all"),
                             x, labels)}, x, rounds=rounds)
    table.bench(f"lovasz_softmax_loss batch, classes='present' {(n, h, w, c)}", "jax.jit", {
        "polyloss": jax_step(lambda a, b: pl.lovasz_softmax_loss(a, b, class_axis=-1), x, labels)}, x, rounds=rounds)
    table.bench(f"lovasz_hinge_loss per_image {(n, h, w)}", "jax.jit", {
        "polyloss": jax_step(pl.lovasz_hinge_loss, logit, binary)}, logit, rounds=rounds)
    table.notes.append(f"JAX runs with jax_enable_x64={jax.config.read('jax_enable_x64')}")


def _sort_cases(table: Table, rows: tuple[int, int], rng: np.random.Generator, rounds: int) -> None:
    """One descending sort of every row, with the permutation (what the loss needs)."""
    e = rng.random(rows).astype(np.float32)
    case = f"sort {rows} float32 rows, descending, with permutation"
    np_xp = importlib.import_module("array_api_compat.numpy")
    table.add(case, "numpy", measure({
        "polyloss": lambda: _backend.sort_descending(e, stable=True, xp=np_xp),
        "np.argsort(-x, kind='stable')": lambda: np.argsort(-e, axis=-1, kind="stable"),
        "np.argsort(-x) (unstable)": lambda: np.argsort(-e, axis=-1),
        "np.sort(x) (values only, no permutation)": lambda: np.sort(e, axis=-1),
    }, rounds=rounds))
    torch = optional_import("torch")
    if torch is not None:
        te = torch.from_numpy(e)
        torch_xp = importlib.import_module("array_api_compat.torch")
        table.add(case, "torch", measure({
            "polyloss": lambda: _backend.sort_descending(te, stable=True, xp=torch_xp),
            "torch.sort(stable=False) (kornia, smp)": lambda: torch.sort(te, dim=-1, descending=True),
        }, rounds=rounds))
    jax = optional_import("jax")
    if jax is not None:
        jnp = jax.numpy
        je = jnp.asarray(e)
        iota = jax.lax.broadcasted_iota(jnp.int32, rows, 1)

        def timed(f):
            f = jax.jit(f)
            return lambda: jax.block_until_ready(f(je))

        table.add(case, "jax.jit", measure({
            "polyloss": timed(lambda a: _backend.sort_descending(a, stable=True, xp=jnp)),
            "jnp.argsort(-x, stable=True)": timed(lambda a: jnp.argsort(-a, axis=-1, stable=True)),
            "lax.sort((-x, iota), num_keys=1)": timed(lambda a: jax.lax.sort((-a, iota), num_keys=1)),
            "jnp.sort(x) (values only, no permutation)": timed(lambda a: jnp.sort(a, axis=-1)),
        }, rounds=rounds))


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    shape = (2, 21, 64, 64) if quick else (8, 21, 128, 128)
    rounds = 3 if quick else 7
    losses = Table("Lovasz losses: forward + backward", COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(losses, shape, rng, rounds)
    if optional_import("jax") is not None:
        _jax_cases(losses, shape, rng, rounds)
    sorts = Table("The sort inside: one batched descending sort with its permutation",
                  COMMAND + (" --quick" if quick else ""))
    _sort_cases(sorts, (shape[0] * shape[1], shape[2] * shape[3]), rng, rounds)
    sorts.notes.append("polyloss on NumPy and JAX: float32 bit pattern as an order-preserving int32, packed with "
                       "the index into one int64 and sorted alone (JAX: under jax.enable_x64); torch: torch.sort")
    losses.notes.append(FLOOR_NOTE)
    return [losses, sorts]


if __name__ == "__main__":
    main(run, __doc__)
