"""Data-parallel training with torch.distributed: what docs/distributed.md promises, on 2 gloo ranks.

Two processes (``torch.multiprocessing.spawn``, gloo on CPU, a free localhost port) each take half of
a float64 batch, wrap the same seeded model in ``DistributedDataParallel`` and compute a region loss
with an ``all_reduce``; the single-process full batch is the reference. With a differentiable
all_reduce each rank's loss is the full-batch loss, its input gradient is world_size times the
full-batch one (the backward of a sum across ranks sums the ranks' identical upstream gradients) and
DDP's averaging turns the parameter gradients back into exactly the full-batch gradient: nothing to
rescale. A plain in-place ``torch.distributed.all_reduce`` gives the value but is invisible to
autograd, so the parameter gradients are the full-batch ones divided by world_size.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest

WORLD = 2
# (loss, options): a region loss, and a compound whose cross entropy sum and count are reduced too
CASES = [("dice_loss", {}), ("dice_cross_entropy_loss", {"weight": [0.5, 2.0, 1.0]})]
MODES = ["nn.functional", "functional_collectives", "plain"]


def _data() -> tuple[np.ndarray, np.ndarray]:
    """A float64 batch of 4 images, 3 classes, some pixels ignored, class 2 only in the second half."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 3, 6, 5))
    y = rng.integers(0, 2, size=(4, 6, 5))
    y[2:][rng.random(y[2:].shape) < 0.3] = 2  # the first rank's shard holds no pixel of class 2
    y[rng.random(y.shape) < 0.1] = -1
    return x, y


def _model():  # torch is imported lazily: this module is collected in every session
    import torch

    torch.manual_seed(0)
    return torch.nn.Conv2d(3, 3, 3, padding=1).double()


def _loss(name: str, options: dict, logits, labels, all_reduce):
    import polyloss as pl

    return getattr(pl, name)(logits, labels, ignore_index=-1, all_reduce=all_reduce, **options)


def _reducer(mode: str):
    import torch
    import torch.distributed as dist

    if mode == "nn.functional":
        from torch.distributed.nn.functional import all_reduce

        return all_reduce
    if mode == "functional_collectives":
        from torch.distributed import _functional_collectives as funcol

        return lambda s: funcol.all_reduce(s, "sum", dist.group.WORLD)

    def plain(s: torch.Tensor) -> torch.Tensor:
        s = s.clone()
        dist.all_reduce(s)  # in place, outside autograd: the upstream gradient passes through unsummed
        return s

    return plain


def _worker(rank: int, port: int, out: str) -> None:
    """One rank: its half of the batch through DDP, for every case and mode; results saved to ``out``."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    warnings.simplefilter("ignore")  # nn.functional's deprecation; the plain all_reduce's missing autograd kernel
    try:
        x, y = _data()
        shard = slice(rank * len(x) // WORLD, (rank + 1) * len(x) // WORLD)
        saved = {}
        for name, options in CASES:
            for mode in MODES:
                model = DistributedDataParallel(_model())
                xs = torch.tensor(x[shard], requires_grad=True)
                value = _loss(name, options, model(xs), torch.as_tensor(y[shard]), _reducer(mode))
                value.backward()
                key = f"{name}/{mode}"
                saved[f"{key}/value"] = value.detach().numpy()
                saved[f"{key}/input"] = xs.grad.numpy()
                for p_name, p in model.module.named_parameters():
                    saved[f"{key}/{p_name}"] = p.grad.numpy()
        del model  # before the process group: see the end of examples/ddp_segmentation.py
        np.savez(Path(out) / f"rank{rank}.npz", **saved)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(tmp_path: Path) -> list[dict[str, np.ndarray]]:
    """Run the 2 ranks; what each saved."""
    import torch

    torch.multiprocessing.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    return [dict(np.load(tmp_path / f"rank{r}.npz")) for r in range(WORLD)]


def _full_batch(name: str, options: dict) -> dict[str, np.ndarray]:
    """Value, input gradient and parameter gradients of the loss of the whole batch in one process."""
    import torch

    x, y = _data()
    model = _model()
    xs = torch.tensor(x, requires_grad=True)
    value = _loss(name, options, model(xs), torch.as_tensor(y), None)
    value.backward()
    return {"value": value.detach().numpy(), "input": xs.grad.numpy(),
            **{p_name: p.grad.numpy() for p_name, p in model.named_parameters()}}


def test_ddp_with_all_reduce_equals_the_full_batch(backend, tmp_path) -> None:
    """Every case and mode in one test: the ranks are spawned once (one xdist worker, not one per worker)."""
    if backend.name != "torch":
        pytest.skip("runs in the torch (CPU) session only")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed with gloo")
    ranks = _spawn(tmp_path)
    for name, options in CASES:
        want = _full_batch(name, options)
        assert np.abs(want["weight"]).max() > 0
        n = len(want["input"]) // WORLD
        for mode in MODES:
            # the plain all_reduce's gradient is 1/world_size of the full batch's; the differentiable ones are exact
            param_scale = 1 / WORLD if mode == "plain" else 1.0
            # before DDP averages: a differentiable all_reduce sums every rank's (identical) upstream gradient
            input_scale = 1.0 if mode == "plain" else WORLD
            key = f"{name}/{mode}"
            for rank, got in enumerate(ranks):
                where = f"{key}, rank {rank}"
                np.testing.assert_allclose(got[f"{key}/value"], want["value"], rtol=1e-12, err_msg=where)
                np.testing.assert_allclose(got[f"{key}/input"], input_scale * want["input"][rank * n:(rank + 1) * n],
                                           rtol=1e-10, atol=1e-15, err_msg=f"{where}: input gradient")
                for p_name in ("weight", "bias"):
                    np.testing.assert_allclose(got[f"{key}/{p_name}"], param_scale * want[p_name], rtol=1e-10,
                                               atol=1e-15, err_msg=f"{where}: DDP's gradient of {p_name}")
