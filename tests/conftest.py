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

Random inputs come from the ``rng`` fixture, seeded from a base seed and
the test's node id: tests differ from each other, never from one run to the
next, so a run does not depend on the clock. ``POLYLOSS_SEED`` picks the base:
unset (or ``fixed``) is 0; ``random`` draws one per process (opt-in, to hunt
for flakes); an integer replays a base. The seed is printed, so a failure
shows it with the replay command. ``POLYLOSS_SEEDS=K`` repeats every test
that takes ``rng`` over K derived seeds (``tests/seed_sweep.py`` drives it).
Hypothesis runs derandomized (its examples depend on the test only) except
in random mode; profiles ``ci``, ``dev`` (the default) and ``slow`` are
registered below (``--hypothesis-profile=NAME``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from types import ModuleType
from typing import Any

import helpers
import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function, patch_lazy_xp_functions
from helpers import Backend

import polyloss

DEFAULT_BACKENDS = "numpy,array_api_strict,torch,jax"
BACKENDS = [b.strip() for b in os.environ.get("POLYLOSS_BACKENDS", DEFAULT_BACKENDS).split(",") if b.strip()]

for _name in polyloss.__all__:
    if _name != "set_checks":  # a setting, not an array function: never wrapped in jax.jit
        lazy_xp_function(getattr(polyloss, _name))


def _base_seed() -> tuple[int, str]:
    value = os.environ.get("POLYLOSS_SEED", "").strip().lower()
    if value in ("", "fixed"):
        return 0, "fixed"
    if value == "random":
        return secrets.randbits(32), "random"
    try:
        return int(value), "replay"
    except ValueError:
        raise ValueError(f"POLYLOSS_SEED: expected an integer, 'fixed' or 'random', found {value!r}") from None


BASE_SEED, SEED_MODE = _base_seed()
SEED_ROUNDS = int(os.environ.get("POLYLOSS_SEEDS", "1"))

try:
    from hypothesis import settings as _hypothesis_settings

    # Examples per property test and backend: JAX compiles every primitive for every new shape when
    # run eagerly, so a session that runs JAX takes fewer.
    _EXAMPLES = 12 if any(b.startswith("jax") for b in BACKENDS) else 25
    # deadline=None: a first call under jax.jit or torch.compile compiles, which says nothing about speed.
    # "ci" (what every nox session loads): short, derandomized, no example database, the failing example's
    # blob printed; "dev" (the default): the same bounds, random in POLYLOSS_SEED=random mode;
    # "slow" (``--hypothesis-profile=slow``): ten times the examples, fresh ones each run (a sweep).
    _hypothesis_settings.register_profile("ci", max_examples=_EXAMPLES, derandomize=True, deadline=None,
                                          database=None, print_blob=True)
    _hypothesis_settings.register_profile("dev", max_examples=_EXAMPLES, derandomize=SEED_MODE != "random",
                                          deadline=None)
    _hypothesis_settings.register_profile("slow", max_examples=10 * _EXAMPLES, derandomize=False, deadline=None,
                                          print_blob=True)
    _hypothesis_settings.load_profile("dev")  # --hypothesis-profile NAME, read after this, loads NAME instead
except ImportError:  # pragma: no cover - hypothesis is a test dependency
    pass


def pytest_report_header(config: pytest.Config) -> str:
    rounds = f", {SEED_ROUNDS} seeds per test" if SEED_ROUNDS > 1 else ""
    return f"polyloss: backends {','.join(BACKENDS)}; POLYLOSS_SEED={BASE_SEED} ({SEED_MODE}){rounds}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if SEED_ROUNDS > 1 and "rng" in metafunc.fixturenames:
        metafunc.parametrize("seed_round", range(SEED_ROUNDS), ids=lambda i: f"seed{i}")


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
    helpers.ACTIVE.append(b)  # assert_close checks backend arrays against it
    try:
        if b.is_jax:
            with patch_lazy_xp_functions(request, xp=b.xp):
                yield b
        else:
            yield b
    finally:
        helpers.ACTIVE.remove(b)


@pytest.fixture
def xp(backend: Backend) -> ModuleType:
    return backend.xp


@pytest.fixture
def seed_round() -> int:
    """Which of the ``POLYLOSS_SEEDS`` rounds this is (parametrized by ``pytest_generate_tests``)."""
    return 0


@pytest.fixture
def rng(request: pytest.FixtureRequest, seed_round: int) -> np.random.Generator:
    """A generator seeded from the base seed and the node id (which names the backend and the round)."""
    digest = hashlib.sha256(f"{BASE_SEED}/{request.node.nodeid}".encode()).digest()
    seed = int.from_bytes(digest[:8], "little")
    rounds = f" POLYLOSS_SEEDS={SEED_ROUNDS}" if SEED_ROUNDS > 1 else ""
    print(f"random seed {seed} = sha256(base {BASE_SEED}, node id); replay with POLYLOSS_SEED={BASE_SEED}{rounds}"
          f" pytest '{request.node.nodeid}'")
    return np.random.default_rng(seed)
