"""Invalid targets under ``jax.jit`` and ``torch.compile(fullgraph=True)``: the returned value is NaN, every time.

Eagerly an out-of-range label is a ``ValueError``; traced, no value can be
read, so the loss must be NaN (docs/conventions.md). A NaN put into the
scores before a softmax was dropped by the compilers in some runs and not
others (issue 18, defect 9): the poison goes on the returned value. Each
label-taking export of ``test_compile.CASES`` is compiled once and called on
several inputs with one bad entry at a random place; every output is NaN.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_numpy
from test_compile import CASES, SIZES, _build, _leaves

# case -> (index of the target argument, an invalid value). Integer labels get the class count C = 3 (or 7,
# as a predicted label of dice_score); 0/1 targets of the sigmoid losses 2; soft scores in [0, 1] 2.0 or -1.0.


def _takes_labels(build):
    arrays = build(np.random.default_rng(0), SIZES[0])[0]
    return len(arrays) > 1 and np.asarray(arrays[1]).dtype.kind in "iu"


BAD = {name: (1, 3) for name, build in CASES.items() if _takes_labels(build)}
BAD.update({
    "binary_cross_entropy": (1, 2.0),
    "balanced_binary_cross_entropy": (1, 2.0),
    "lovasz_hinge_loss": (1, 2.0),
    "sigmoid_focal_loss": (1, 2),
    "poly1_focal_loss": (1, 2),
    "dice_score": (0, 7),  # a predicted label of 3 classes
    "quality_focal_loss": (1, 2.0),
    "varifocal_loss": (1, -1.0),
    "distribution_focal_loss": (1, 8.5),  # 9 bins: targets in [0, 8]
})
# no label domain checked here: unet_weight_map (instance ids), the SSD functions (detection.ssd, gt_labels)
NOT_LABELS = {"boundary_loss", "unet_weight_map", "match_priors", "multibox_loss"}
for _name in NOT_LABELS:
    BAD.pop(_name, None)
SEEDS = (0, 1, 2)


def _corrupted(backend, name, seed):
    """The case's inputs with one target entry set to the invalid value, at a place drawn from ``seed``."""
    call, inputs, _ = _build(backend, np.random.default_rng(100 + seed), name, SIZES[0])
    index, value = BAD[name]
    target = to_numpy(inputs[index]).copy()
    flat = target.reshape(-1)
    flat[np.random.default_rng(seed).integers(flat.size)] = value
    inputs[index] = backend.asarray(target)
    return call, inputs


def test_every_label_taking_case_is_listed():
    """A new export with integer targets is covered without editing this file; the known ones are all here."""
    assert {"cross_entropy", "dice_loss", "mcc_loss", "soft_cldice_loss", "lovasz_softmax_loss",
            "hausdorff_dt_loss", "boundary_dou_loss", "dice_score"} <= set(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_invalid_target_is_nan_when_traced(backend, name):
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no compiler; eager arrays raise instead (tested per module)")
    if backend.is_jax:
        import jax

        compile_ = jax.jit
    else:
        import torch

        torch._dynamo.reset()

        def compile_(f):
            return torch.compile(f, fullgraph=True, backend="aot_eager")

    compiled = None
    for seed in SEEDS:
        call, inputs = _corrupted(backend, name, seed)
        compiled = compiled or compile_(call)  # one graph, several inputs
        for leaf in _leaves(compiled(*inputs)):
            got = to_numpy(leaf)
            assert np.isnan(got).all(), f"{name}, seed {seed}: {got}"


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "soft_cldice_loss", "mcc_loss"])
def test_invalid_label_is_nan_under_inductor(backend, name):
    """The default torch.compile backend (inductor), which rewrites softmax and clamps: still NaN."""
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    torch._dynamo.reset()
    compiled = None
    for seed in SEEDS:
        call, inputs = _corrupted(backend, name, seed)
        compiled = compiled or torch.compile(call, fullgraph=True)
        assert np.isnan(to_numpy(compiled(*inputs))).all()


IGNORING = ["soft_cldice_loss", "dice_loss", "mcc_loss", "hausdorff_dt_loss", "boundary_iou_loss", "cross_entropy",
            "lovasz_softmax_loss", "dice_cross_entropy_loss"]


@pytest.mark.parametrize("name", IGNORING)
def test_invalid_label_with_ignored_pixels_is_nan_when_traced(backend, name):
    """With ignore_index, the masking of ignored pixels dropped the NaN of the scores (soft_cldice_loss under
    jax.jit returned 5e-5 for every seed before the poison moved to the returned value)."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no compiler")
    import polyloss as pl

    f = getattr(pl, name)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 9, 7)).astype(np.float32)
    if backend.is_jax:
        import jax

        compiled = jax.jit(lambda p, t: f(p, t, ignore_index=255))
    else:
        import torch

        torch._dynamo.reset()
        compiled = torch.compile(lambda p, t: f(p, t, ignore_index=255), fullgraph=True, backend="aot_eager")
    for seed in SEEDS:
        r = np.random.default_rng(seed)
        y = np.where(r.random((2, 9, 7)) < 0.3, 255, r.integers(0, 3, size=(2, 9, 7)))
        y[r.integers(2), r.integers(9), r.integers(7)] = 3
        got = to_numpy(compiled(backend.asarray(x), backend.asarray(y)))
        assert np.isnan(got).all(), f"{name}, seed {seed}: {got}"
