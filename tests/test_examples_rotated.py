"""The rotated-box detection example runs end to end in its smoke mode (torch sessions only: it uses PyTorch)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "rotated_detection.py"


@pytest.mark.parametrize("rotated_loss", ["probiou", "kld"])
def test_rotated_detection_example_smoke(backend, capsys, rotated_loss):
    if backend.name != "torch":
        pytest.skip("examples/rotated_detection.py trains with PyTorch on the CPU: it runs in the torch session")
    spec = importlib.util.spec_from_file_location("rotated_detection", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--steps", "2", "--rotated-loss", rotated_loss]) == 0
    out = capsys.readouterr().out
    ious = re.search(r"axis-aligned \(varifocal \+ GIoU\) ([0-9.]+), rotated \((\w+)\) ([0-9.]+)", out)
    assert ious is not None, out
    assert ious.group(2) == rotated_loss
    assert 0.0 <= float(ious.group(1)) <= 1.0 and 0.0 <= float(ious.group(3)) <= 1.0
    assert "nan" not in out
