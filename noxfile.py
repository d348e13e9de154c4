"""Sessions: one test session per backend, parity with peers, lint, docs, build, demo, bench.

``nox -t cpu`` runs the whole CPU matrix (what ``.ci/run`` and the README run).
GPU sessions (``tests-cupy``, ``tests-torch-cuda``, ``tests-jax-gpu``) skip
cleanly on a machine without an NVIDIA GPU; they install the CUDA 13 builds
(the driver of the H200 machines is CUDA 13; a machine without network runs
``benchmarks/gpu.sh`` instead, which needs no install beyond carried wheels).
"""

from __future__ import annotations

import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

PYTHON = "3.11"
# A CPU build of this torch lies on the CI machines' disk; an unpinned torch pulls a CUDA build.
TORCH = "torch==2.13.*"
# torchvision from PyPI imports only beside this (larger) torch; used only where torchvision is needed.
TORCH_WITH_VISION = ["torch==2.14.1", "torchvision==0.29.1"]
TEST = ".[test]"


def _pytest(session: nox.Session, backends: str) -> None:
    """The backend-matrix tests (the peers' own parity tests have their own session), one worker per core."""
    session.run(
        "python", "-m", "pytest", "tests", "--ignore=tests/parity", "-n", "auto", *session.posargs,
        env={"POLYLOSS_BACKENDS": backends},
    )


def _has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


@nox.session(name="tests-numpy", python=PYTHON, tags=["cpu"])
def tests_numpy(session: nox.Session) -> None:
    session.install(TEST)
    _pytest(session, "numpy")


@nox.session(name="tests-array_api_strict", python=PYTHON, tags=["cpu"])
def tests_array_api_strict(session: nox.Session) -> None:
    session.install(TEST, "array-api-strict>=2.3")
    _pytest(session, "array_api_strict")


@nox.session(name="tests-torch", python=PYTHON, tags=["cpu"])
def tests_torch(session: nox.Session) -> None:
    session.install(TEST, TORCH, "keras>=3")
    _pytest(session, "torch")


@nox.session(name="tests-jax", python=PYTHON, tags=["cpu"])
def tests_jax(session: nox.Session) -> None:
    session.install(TEST, "jax", "optax", "flax", "keras>=3")
    _pytest(session, "jax")


@nox.session(name="parity", python=PYTHON, tags=["cpu"])
def parity(session: nox.Session) -> None:
    """Our losses against the peers themselves: torchvision, MONAI, kornia, smp."""
    peers = ["monai", "kornia", "segmentation-models-pytorch", "opencv-python-headless"]
    session.install(TEST, *TORCH_WITH_VISION, *peers)
    # ultralytics without its dependency tree: what its loss and assigner modules import (checked with 8.4.190)
    session.install("pyyaml", "requests", "psutil", "polars", "matplotlib", "pillow", "scipy")
    session.install("ultralytics", "ultralytics-thop", "--no-deps")
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
    session.run("python", "benchmarks/run.py", *session.posargs)
