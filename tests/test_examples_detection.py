"""The detection example runs end to end in its smoke mode (torch sessions only: the example uses PyTorch)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "detection_ssd.py"


def test_detection_example_smoke(backend, capsys):
    if backend.name != "torch":
        pytest.skip("examples/detection_ssd.py trains with PyTorch on the CPU: it runs in the torch session")
    spec = importlib.util.spec_from_file_location("detection_ssd", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "SSD (multibox_loss)" in out
    assert "RetinaNet (focal + GIoU)" in out
    assert "nan" not in out
