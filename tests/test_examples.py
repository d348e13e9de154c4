"""The examples: the synthetic data and IoU helpers, and each script's ``--smoke`` run.

Each script runs in a subprocess (as a user runs it); one whose framework is not
installed in this session is skipped with the reason. The data helpers are
plain NumPy and are checked against hand-built cases.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import _data  # noqa: E402


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed in this session")


# The scripts import polyloss: the source tree's, also where it is not installed (as when running from a clone).
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES.parent), os.environ.get("PYTHONPATH", "")])}


def _run(script: str, *args: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=timeout, check=False,
        env=ENV,
    )
    assert proc.returncode == 0, f"{script} {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# --------------------------------------------------------------------------- #
# _data.py
# --------------------------------------------------------------------------- #


def test_segmentation_is_deterministic_imbalanced_and_split() -> None:
    x, y = _data.make_segmentation(6, size=40, seed=3)
    x2, y2 = _data.make_segmentation(6, size=40, seed=3)
    _, ye = _data.make_segmentation(6, size=40, seed=3, split="eval")
    assert x.shape == (6, 40, 40, 3) and x.dtype == np.float32
    assert y.shape == (6, 40, 40) and y.dtype == np.int32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, ye)
    assert set(np.unique(y)) <= set(range(_data.NUM_CLASSES))
    share = np.bincount(y.ravel(), minlength=_data.NUM_CLASSES) / y.size
    assert 0.85 < share[0] < 0.99  # strongly imbalanced, yet every image holds objects
    assert all((yi > 0).any() for yi in y)


def test_segmentation_grey_and_binary_variants() -> None:
    x, y = _data.make_segmentation(3, size=32, seed=1, channels=1)
    assert x.shape == (3, 32, 32, 1)
    xb, yb = _data.make_binary_segmentation(3, size=32, seed=1, channels=1)
    np.testing.assert_array_equal(xb, x)
    np.testing.assert_array_equal(yb, (y > 0).astype(np.int32))
    with pytest.raises(ValueError, match="split must be one of"):
        _data.make_segmentation(1, split="validation")
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        _data.make_segmentation(1, channels=2)


def test_mean_iou_against_hand_counts() -> None:
    labels = np.array([[0, 0, 1, 1], [0, 2, 2, 0]])
    pred = np.array([[0, 1, 1, 0], [0, 2, 0, 0]])
    # class 1: TP 1, FP 1, FN 1 -> 1/3; class 2: TP 1, FN 1 -> 1/2; class 3 absent from both -> NaN, not averaged
    miou, per_class = _data.mean_iou(pred, labels, num_classes=4)
    np.testing.assert_allclose(per_class[:3], [3 / 6, 1 / 3, 1 / 2])
    assert np.isnan(per_class[3])
    assert miou == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_mean_iou_baselines() -> None:
    _, y = _data.make_segmentation(4, size=32, seed=0)
    miou, per_class = _data.mean_iou(np.zeros_like(y), y)
    assert miou == 0.0
    assert per_class[0] == pytest.approx(np.mean(y == 0))
    assert _data.mean_iou(y, y)[0] == 1.0


def test_curves_are_deterministic_thin_and_split() -> None:
    x, y = _data.make_curves(5, size=40, seed=2)
    x2, y2 = _data.make_curves(5, size=40, seed=2)
    _, ye = _data.make_curves(5, size=40, seed=2, split="eval")
    assert x.shape == (5, 40, 40, 1) and x.dtype == np.float32 and y.shape == (5, 40, 40) and y.dtype == np.int32
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(y, ye)
    assert set(np.unique(y)) == {0, 1} and 0.01 < y.mean() < 0.15  # thin: a few percent of the pixels
    np.testing.assert_allclose(x.std(axis=(1, 2, 3)), 1, rtol=1e-3)  # each image normalised
    # Thin: pixels within at most 1.1 of a centre line, a band at most 3 pixels across, so no 5x5 block lies
    # wholly on a curve (two crossing bands make a 3x3 one); a filled shape of _data holds many.
    blocks = np.lib.stride_tricks.sliding_window_view(y, (5, 5), axis=(1, 2))
    assert not blocks.all(axis=(-2, -1)).any()
    with pytest.raises(ValueError, match="split must be one of"):
        _data.make_curves(1, split="validation")


def test_batches_cover_each_epoch() -> None:
    order = _data.batches(10, 4, 5, seed=0)
    assert order.shape == (5, 4)
    assert sorted(order.ravel()[:10]) == list(range(10))
    np.testing.assert_array_equal(order, _data.batches(10, 4, 5, seed=0))


# --------------------------------------------------------------------------- #
# the scripts' --smoke runs
# --------------------------------------------------------------------------- #


def test_demo_smoke(tmp_path: Path) -> None:
    """Both tasks, a few steps each: the tables, the figures, demo.json and the README tables rendered from it."""
    _require("jax", "optax", "skimage")
    out = _run("demo.py", "--smoke", "--losses", "ce,dice", "--out", str(tmp_path))
    assert out.startswith("demo: importing jax")  # printed before the slow imports: progress from the first second
    assert "all background (baseline)" in out
    assert "ce: cross_entropy" in out and "dice: dice_loss" in out
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "demo_curves.png").stat().st_size > 0
        assert (tmp_path / "demo_predictions.png").stat().st_size > 0
        assert (tmp_path / "demo_thin.png").stat().st_size > 0
    # The results file: the printed table's numbers, and what tools/readme_numbers.py renders into the README.
    results = json.loads((tmp_path / "demo.json").read_text())
    assert [r["key"] for r in results["losses"]] == ["ce", "dice"]
    assert results["settings"]["steps"] == 5 and results["machine"]["cpus"] >= 1 and results["versions"]["jax"]
    for r in results["losses"]:
        assert f"{r['label']:<26}" in out and f"{r['mean_iou']:9.3f}" in out
    sys.path.insert(0, str(EXAMPLES.parent / "tools"))
    try:
        import readme_numbers
    finally:
        sys.path.remove(str(EXAMPLES.parent / "tools"))
    table = readme_numbers.render_demo(tmp_path / "demo.json", root=tmp_path)
    assert all(f"| `{r['label']}` | {r['mean_iou']:.3f} |" in table for r in results["losses"])
    thin = results["thin"]
    assert [r["key"] for r in thin["losses"]] == ["dice+ce", "+skel", "+clce", "+cldice"]
    assert thin["settings"]["steps"] == 5
    thin_table = readme_numbers.render_demo_thin(tmp_path / "demo.json")
    for r in thin["losses"]:
        assert all(0 <= r[k] <= 1 for k in ("iou", "cldice", "skeleton_recall")) and r["betti0_error"] >= 0
        row = f"{r['iou']:8.3f}{r['cldice']:8.3f}{r['skeleton_recall']:14.3f}{r['betti0_error']:13.2f}"
        assert row in out  # the printed table holds the saved numbers
        assert f"| `{r['label']}` | {r['iou']:.3f} | {r['cldice']:.3f} | {r['skeleton_recall']:.3f} |" in thin_table


def test_demo_rejects_unknown_loss() -> None:
    _require("jax", "optax")
    command = [sys.executable, str(EXAMPLES / "demo.py"), "--smoke", "--tasks", "shapes", "--losses", "nope"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=ENV)
    assert proc.returncode == 2 and "unknown loss nope" in proc.stderr


def test_flax_smoke() -> None:
    _require("flax", "jax", "optax")
    assert "final eval mean IoU" in _run("flax_segmentation.py", "--smoke")


def test_torch_smoke() -> None:
    _require("torch")
    assert "final eval mean IoU" in _run("torch_segmentation.py", "--smoke")


def test_torch_compile_smoke() -> None:
    _require("torch")
    out = _run("torch_segmentation.py", "--smoke", "--compile", "--compile-backend", "aot_eager")
    assert "under torch.compile" in out and "final eval mean IoU" in out


def test_ddp_smoke() -> None:
    """Two gloo ranks under torchrun (``--standalone``: a free port); each step's loss is the whole batch's."""
    _require("torch")
    import torch

    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed with gloo")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(EXAMPLES / "ddp_segmentation.py"), "--smoke"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=ENV)
    assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "DDP over 2 rank(s) (gloo)" in proc.stdout and "final eval mean IoU" in proc.stdout
    assert proc.stdout.count("step ") == 3  # printed by rank 0 only
