"""all_reduce: region losses over a sharded batch equal the loss of the whole batch.

Each test runs in a fresh interpreter: JAX's host device count must be set
before JAX is imported, and torch.distributed needs its own processes.
JAX: ``jax.jit(shard_map(...))`` over 4 host CPU devices with ``jax.lax.psum``.
torch: 2 gloo processes on localhost with ``torch.distributed.nn.functional.all_reduce``,
whose backward sums the (identical) gradients of every rank, so each rank's
gradient is world_size times the global one; DDP's averaging divides it back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (name, options) for every case both scripts run; all options keep per_image=False
CASES = """[
    ("soft_confusion", {}),
    ("dice_loss", {"smooth": 0.1}),
    ("jaccard_loss", {"log_loss": True}),
    ("tversky_loss", {"alpha": 0.3, "beta": 0.7, "gamma": 1.5}),
    ("focal_tversky_loss", {}),
    ("log_cosh_dice_loss", {"classes": [0, 2]}),
    ("mcc_loss", {}),
    ("generalized_dice_loss", {}),
    ("dice_cross_entropy_loss", {"weight": [0.5, 2.0, 1.0]}),
    ("dice_focal_loss", {}),
    ("combo_loss", {}),
    ("bce_jaccard_loss", {}),
]"""

COMMON = f"""
import numpy as np
import polyloss as pl

CASES = {CASES}
rng = np.random.default_rng(0)
X = rng.normal(size=(8, 3, 5, 4))
Y = rng.integers(0, 3, size=(8, 5, 4))
Y[rng.random(Y.shape) < 0.2] = -1

def loss(name, x, y, all_reduce=None, **options):
    out = getattr(pl, name)(x, y, ignore_index=-1, all_reduce=all_reduce, **options)
    return sum(s.sum() for s in out) if isinstance(out, tuple) else out
"""

JAX_SCRIPT = COMMON + """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

assert jax.device_count() == 4, jax.devices()
shard_map = getattr(jax, "shard_map", None)
if shard_map is None:
    from jax.experimental.shard_map import shard_map
mesh = jax.make_mesh((4,), ("data",))
# compiling is what costs here: one case per statistics path (plain, counts, weights, a compound's extra sums)
CASES = [c for c in CASES if c[0] in ("soft_confusion", "mcc_loss", "generalized_dice_loss",
                                       "dice_cross_entropy_loss")]
batch = NamedSharding(mesh, P("data"))
x, y = jnp.asarray(X), jnp.asarray(Y)  # the whole batch on one device
xs_, ys_ = jax.device_put(x, batch), jax.device_put(y, batch)  # the same batch split over 4 devices
for name, options in CASES:
    def local(xs, ys, name=name, options=options):
        return loss(name, xs, ys, all_reduce=lambda s: jax.lax.psum(s, "data"), **options)
    sharded = jax.jit(shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P()))
    whole = jax.jit(lambda xs, name=name, options=options: loss(name, xs, y, **options))
    v1, g1 = jax.value_and_grad(whole)(x)
    with jax.set_mesh(mesh) if hasattr(jax, "set_mesh") else mesh:
        v2, g2 = jax.value_and_grad(lambda xs: sharded(xs, ys_))(xs_)
    np.testing.assert_allclose(np.asarray(v2), np.asarray(v1), rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(np.asarray(g2), np.asarray(g1), rtol=1e-8, atol=1e-14, err_msg=name)
    assert np.abs(np.asarray(g1)).max() > 0, name
print("ok", len(CASES))
"""

TORCH_SCRIPT = COMMON + """
import os
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed.nn.functional import all_reduce

WORLD = 2

def worker(rank, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        n = X.shape[0] // WORLD
        shard = slice(rank * n, (rank + 1) * n)
        y = torch.as_tensor(Y[shard])
        for name, options in CASES:
            x = torch.tensor(X[shard], requires_grad=True)
            value = loss(name, x, y, all_reduce=all_reduce, **options)
            value.backward()
            queue.put((rank, name, value.item(), (x.grad / WORLD).numpy()))
    finally:
        dist.destroy_process_group()

if __name__ == "__main__":
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, port, queue)) for r in range(WORLD)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in range(WORLD * len(CASES))]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, p.exitcode
    n = X.shape[0] // WORLD
    for name, options in CASES:
        x = torch.tensor(X, requires_grad=True)
        value = loss(name, x, torch.as_tensor(Y), **options)
        value.backward()
        for rank, got_name, got_value, got_grad in results:
            if got_name != name:
                continue
            np.testing.assert_allclose(got_value, value.item(), rtol=1e-10, err_msg=name)
            want = x.grad.numpy()[rank * n:(rank + 1) * n]
            np.testing.assert_allclose(got_grad, want, rtol=1e-8, atol=1e-14, err_msg=name)
    print("ok", len(CASES))
"""


def _run(script: str, tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "all_reduce_script.py"
    path.write_text(textwrap.dedent(script))
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, str(path)], env=full_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok"), done.stdout


def test_jax_shard_map_psum_equals_whole_batch(backend, tmp_path):
    if backend.name != "jax":
        pytest.skip("runs in the jax (CPU) session only")
    pytest.importorskip("jax", reason="jax is not installed")
    _run(JAX_SCRIPT, tmp_path, {"XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"})


def test_torch_distributed_all_reduce_equals_whole_batch(backend, tmp_path):
    if backend.name != "torch":
        pytest.skip("runs in the torch (CPU) session only")
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.distributed.is_available():
        pytest.skip("this torch build has no torch.distributed")
    _run(TORCH_SCRIPT, tmp_path, {})
