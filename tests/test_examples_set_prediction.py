"""examples/set_prediction.py runs end to end in its smoke mode: the PyTorch heads in the torch session, the
Flax NNX head in the JAX session, each scored by pycocotools' evaluator (the ``coco`` extra)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")])}
NEEDS = {"torch": ("torch", "pycocotools"), "jax": ("jax", "flax", "optax", "pycocotools")}


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_set_prediction_example_smoke(backend, framework):
    if backend.name != framework:
        pytest.skip(f"the {framework} runs of examples/set_prediction.py belong to the {framework} session")
    missing = [m for m in NEEDS[framework] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed in this session")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "set_prediction.py"), "--smoke", "--no-compile",
                           "--frameworks", framework], capture_output=True, text=True, timeout=600, env=ENV,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if "COCO mAP" in line]
    assert len(rows) == (2 if framework == "torch" else 1), proc.stdout
    assert all("nan" not in row for row in rows), proc.stdout
