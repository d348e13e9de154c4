"""examples/thin_structures.py --smoke runs end to end (as a user runs it) and writes its figure."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_thin_structures_smoke(tmp_path):
    missing = [m for m in ("jax", "optax", "skimage", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed in this session")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "thin_structures.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900, check=False, env=env,
    )
    assert proc.returncode == 0, f"thin_structures.py --smoke failed:\n{proc.stdout}\n{proc.stderr}"
    for name in ("dice+ce", "+skeleton recall", "+clCE", "+clDice"):
        assert name in proc.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "thin_structures.png").is_file()
