"""Sessions: the backend test sessions, parity with peers, lint, docs, build, demo, bench.

``nox -t cpu`` runs the whole CPU matrix (what ``.ci/run`` and the README run): the NumPy and
array-api-strict backends share one environment and one pytest run (``tests-numpy``), torch and JAX
have a session each, and ``tests-python-3.10`` (NumPy) and ``tests-python-3.13`` (NumPy and JAX) run on the
oldest and newest Python that ``pyproject.toml`` claims, one environment each. Every test session
prints its 20 slowest tests and runs hypothesis with the short, derandomized ``ci`` profile
(tests/conftest.py); ``nox -s tests-numpy -- tests/test_properties.py --hypothesis-profile=slow``
sweeps ten times the examples. ``.ci/run`` runs two sessions at a time (``-j 2``): one session's
install, collection and last slow test overlap another's tests.
GPU sessions (``tests-cupy``, ``tests-torch-cuda``, ``tests-jax-gpu``) skip
cleanly on a machine without an NVIDIA GPU; they install the CUDA 13 builds
(the driver of the H200 machines is CUDA 13; a machine without network runs
``benchmarks/gpu.sh`` instead, which needs no install beyond carried wheels).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False
# `nox -j 2` (what .ci/run runs) may run any two sessions at once: each has its own environment, and
# hypothesis's ci profile keeps no example database. The sessions are defined longest first, the
# order in which -j starts them.
nox.options.allow_parallel = True

PYTHON = "3.11"
# The other Pythons pyproject.toml claims (requires-python >= 3.10; classifiers up to 3.13). JAX 0.7+
# needs 3.11, so 3.10 gets JAX 0.6 and Flax 0.10, whose NNX lacks what the Flax example uses.
EXTRA_PYTHONS = ["3.10", "3.13"]
# A CPU build of this torch lies on the CI machines' disk; an unpinned torch pulls a CUDA build.
TORCH = "torch==2.13.*"
# torchvision from PyPI imports only beside this (larger) torch; used only where torchvision is needed.
TORCH_WITH_VISION = ["torch==2.14.1", "torchvision==0.29.1"]
TEST = ".[test]"
TEST_COCO = ".[test,coco]"  # + pycocotools: examples/set_prediction.py scores its detectors with it


def _pytest(session: nox.Session, backends: str, *args: str, env: dict[str, str] | None = None) -> None:
    """The backend-matrix tests (the peers' own parity tests have their own session), one worker per core.

    ``args`` (test files, ``--ignore=``) narrow the run. The 20 slowest tests are printed at the end,
    and hypothesis runs its ``ci`` profile unless the command line names another.
    """
    posargs = session.posargs
    profile = [] if any(a.startswith("--hypothesis-profile") for a in posargs) else ["--hypothesis-profile=ci"]
    # test files named after `--` replace the session's own
    paths = [a for a in args if not a.startswith("-")] or ["tests"]
    if any(Path(a.split("::")[0]).exists() for a in posargs if not a.startswith("-")):
        paths = []
    session.run(
        "python", "-m", "pytest", *paths, *(a for a in args if a.startswith("-")), "--ignore=tests/parity",
        "-n", "auto", "--durations=20", *profile, *posargs, env={"POLYLOSS_BACKENDS": backends, **(env or {})},
    )


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


# XLA's CPU back end (LLVM) at optimization level 0 in tests-jax: the tests' arrays are tiny, so compiling is
# most of a JAX test's time (test_usage_modes.py and test_region.py on 2 cores: 125 s at the default level,
# 101 s at 0). XLA's own graph passes (fusion, simplification) still run, and tests-python-3.13 runs the
# jit-against-eager matrix at the default level, as users compile.
FAST_XLA_COMPILE = {"XLA_FLAGS": "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"}


@nox.session(name="tests-jax", python=PYTHON, tags=["cpu"])
def tests_jax(session: nox.Session) -> None:
    """Every test module on JAX, the family modules running every public function under jax.jit
    (lazy_xp_modules) against its float64 reference; the compile matrix (jit against eager) runs in
    ``tests-python-3.13``, which installs the same JAX, so that each jit check runs once."""
    session.install(TEST_COCO, "jax", "optax", "flax", "keras>=3")
    _pytest(session, "jax", "--ignore=tests/test_compile.py", env=FAST_XLA_COMPILE)


@nox.session(name="tests-torch", python=PYTHON, tags=["cpu"])
def tests_torch(session: nox.Session) -> None:
    session.install(TEST_COCO, TORCH, "keras>=3")
    _pytest(session, "torch")


# What JAX runs on the extra Pythons: what differs between JAX versions (the dispatch layer and the
# input checks, every export under jax.jit against eager, value and gradient, the sharded all_reduce).
# The documents' JAX blocks run in the NumPy pass before it (test_snippets runs every block whose
# frameworks are installed, whatever the backend).
JAX_FAST = ["tests/test_xp.py", "tests/test_inputs.py", "tests/test_compile.py", "tests/test_all_reduce.py"]


@nox.session(name="tests-python", python=EXTRA_PYTHONS, tags=["cpu"])
def tests_python(session: nox.Session) -> None:
    """The other Pythons pyproject.toml claims, in one environment each: NumPy, every test; JAX, JAX_FAST.

    3.10: NumPy only. The jax extra asks for JAX 0.7 or newer, which needs Python 3.11 (JAX 0.6, the last
    for 3.10, compiles away the NaN that marks invalid labels under jit in some losses). 3.13 gets the
    newest JAX.
    """
    if session.python == "3.10":  # JAX 0.7+ needs Python 3.11; the jax extra asks for it, so 3.10 is NumPy's
        session.install(TEST)
        _pytest(session, "numpy")
        return
    session.install(TEST, "jax")
    _pytest(session, "numpy")
    _pytest(session, "jax", *JAX_FAST)


@nox.session(name="tests-numpy", python=PYTHON, tags=["cpu"])
def tests_numpy(session: nox.Session) -> None:
    """NumPy and array-api-strict in one environment and one run (both need only the test tools)."""
    session.install(TEST, "array-api-strict>=2.3")
    _pytest(session, "numpy,array_api_strict")


def _install_ultralytics(session: nox.Session) -> None:
    """ultralytics without its dependency tree: what its loss and assigner modules import (checked with 8.4.190)."""
    session.install("pyyaml", "requests", "psutil", "polars", "matplotlib", "pillow", "scipy", "opencv-python-headless")
    session.install("ultralytics", "ultralytics-thop", "--no-deps")


@nox.session(name="parity", python=PYTHON, tags=["cpu"])
def parity(session: nox.Session) -> None:
    """Our losses against the peers themselves: torchvision, MONAI, kornia, smp."""
    peers = ["monai", "kornia", "segmentation-models-pytorch"]
    session.install(TEST, *TORCH_WITH_VISION, *peers)
    _install_ultralytics(session)
    session.run("python", "-m", "pytest", "tests/parity", *session.posargs, env={"POLYLOSS_BACKENDS": "torch"})


@nox.session(name="tests-cupy", python=PYTHON)
def tests_cupy(session: nox.Session) -> None:
    if not _has_gpu():
        session.skip("tests-cupy: no NVIDIA GPU on this machine")
    session.install(TEST, "cupy-cuda13x")
    _pytest(session, "cupy")


@nox.session(name="tests-torch-cuda", python=PYTHON)
def tests_torch_cuda(session: nox.Session) -> None:
    if not _has_gpu():
        session.skip("tests-torch-cuda: no NVIDIA GPU on this machine")
    session.install(TEST, "torch")  # PyPI's Linux torch is the CUDA 13 build (2.14: +cu130)
    _pytest(session, "torch-cuda")


@nox.session(name="tests-jax-gpu", python=PYTHON)
def tests_jax_gpu(session: nox.Session) -> None:
    if not _has_gpu():
        session.skip("tests-jax-gpu: no NVIDIA GPU on this machine")
    session.install(TEST, "jax[cuda13]")
    _pytest(session, "jax-gpu")


@nox.session(python=PYTHON, tags=["cpu"])
def lint(session: nox.Session) -> None:
    """ruff over everything; mypy over the package (settings in pyproject.toml)."""
    session.install(".", "ruff", "mypy")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON, tags=["cpu"])
def docs(session: nox.Session) -> None:
    """The documentation site (API reference from the docstrings), warnings as errors."""
    session.install(".", "mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.27")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")
    session.run("python", "tools/check_docs.py", "site")  # the API page shows parameter tables from the docstrings


@nox.session(python=PYTHON, tags=["cpu"])
def build(session: nox.Session) -> None:
    """The wheel and sdist, built into a temporary folder: `twine check --strict`, py.typed, metadata."""
    session.install("build>=1.2", "twine>=6.1")
    session.run("python", "tools/check_dist.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """The main job: train a small segmentation model with several losses and compare them (two tasks)."""
    session.install(".[skeleton]", "jax", "optax", "matplotlib")  # scikit-image: the thin task's skeletons
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Forward+backward time, peak memory and floor ratio against the peers; writes benchmarks/results/<machine>.md.

    ``nox -s bench -- --quick`` for a smoke run; ``-- --device cuda --name <gpu>`` on a GPU machine.
    """
    session.install(".", *TORCH_WITH_VISION, "jax", "optax", "kornia", "monai", "segmentation-models-pytorch", "scipy")
    _install_ultralytics(session)  # its TaskAlignedAssigner: the assignment rows' peer
    session.run("python", "benchmarks/run.py", *session.posargs)
