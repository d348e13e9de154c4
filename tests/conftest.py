"""The backend matrix: every test that takes ``xp`` (or ``backend``) runs once per backend.

``POLYLOSS_BACKENDS`` (comma-separated) picks the backends; each nox session
sets one. Known names: numpy, array_api_strict, torch, torch-cuda, jax,
jax-gpu, cupy. A backend that cannot run here is skipped with the reason.

On JAX, every public polyloss function is wrapped in ``jax.jit`` for the
duration of each test of a module that declares ``lazy_xp_modules = [pl]``
(``array_api_extra.testing.patch_lazy_xp_functions``): every family's module
does, so the JAX session checks values, gradients and edge cases of the
jitted functions; ``test_compile.py`` (which does not) compares ``jax.jit``
with eager for every export.

Inputs are random on every run; the seed is printed (shown on failure) and
``POLYLOSS_SEED`` replays it.
"""

from __future__ import annotations

import os
import secrets
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function, patch_lazy_xp_functions
from helpers import Backend

import polyloss

DEFAULT_BACKENDS = "numpy,array_api_strict,torch,jax"
BACKENDS = [b.strip() for b in os.environ.get("POLYLOSS_BACKENDS", DEFAULT_BACKENDS).split(",") if b.strip()]

for _name in polyloss.__all__:
    lazy_xp_function(getattr(polyloss, _name))


def _make_backend(name: str) -> Backend:
    if name == "numpy":
        import array_api_compat.numpy as xp

        return Backend(name, xp)
    if name == "array_api_strict":
        strict = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
        strict.set_array_api_strict_flags(api_version="2024.12")
        return Backend(name, strict)
    if name in ("torch", "torch-cuda"):
        torch = pytest.importorskip("torch", reason="torch is not installed")
        import array_api_compat.torch as xp

        if name == "torch-cuda":
            if not torch.cuda.is_available():
                pytest.skip("torch-cuda: no CUDA device on this machine")
            return Backend(name, xp, torch.device("cuda"))
        return Backend(name, xp, torch.device("cpu"))
    if name in ("jax", "jax-gpu"):
        jax = pytest.importorskip("jax", reason="jax is not installed")
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        if name == "jax-gpu":
            try:
                return Backend(name, jnp, jax.devices("gpu")[0])
            except RuntimeError:
                pytest.skip("jax-gpu: no GPU visible to JAX on this machine")
        return Backend(name, jnp, jax.devices("cpu")[0])
    if name == "cupy":
        cupy = pytest.importorskip("cupy", reason="cupy is not installed")
        try:
            cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDARuntimeError when the driver or device is missing
            pytest.skip(f"cupy: no usable CUDA device ({err})")
        import array_api_compat.cupy as xp

        return Backend(name, xp)
    raise ValueError(f"POLYLOSS_BACKENDS: unknown backend {name!r}")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Any:
    b = _make_backend(request.param)
    if b.is_jax:
        with patch_lazy_xp_functions(request, xp=b.xp):
            yield b
    else:
        yield b


@pytest.fixture
def xp(backend: Backend) -> ModuleType:
    return backend.xp


@pytest.fixture
def rng() -> np.random.Generator:
    seed = int(os.environ.get("POLYLOSS_SEED", secrets.randbits(32)))
    print(f"random seed: {seed} (replay with POLYLOSS_SEED={seed})")
    return np.random.default_rng(seed)
