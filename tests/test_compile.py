"""The compile matrix: every exported function under ``jax.jit`` and ``torch.compile(fullgraph=True)``.

For each export a representative call is built below, at two sizes. On JAX
the call is compared eagerly against ``jax.jit`` (value, and ``jax.grad`` of
the summed output with respect to the first input where it is
differentiable). On torch it is compiled with ``fullgraph=True`` (a graph
break is an error) and the value and backward pass are compared with eager:

- static shapes: the first size; a second call on new tensors of the same
  shapes must reuse the graph (no state mutated while tracing);
- a shape change: the same compiled function called at the second size
  (torch recompiles with automatic dynamic shapes, as a smaller last batch
  or a new image size makes it do): every axis changes, so every size in
  the new graph is symbolic, as ``dynamic=True`` would make it;
- dynamic shapes: that symbolic graph serves a third size with no
  recompilation (``error_on_recompile``), compared with eager again.

Every export must have a case here: ``test_every_export_has_a_case`` fails
otherwise. The per-case cost is dominated by tracing, so the matrix uses
the ``aot_eager`` backend; ``test_torch_inductor_compiles_representative_losses``
runs the default (inductor) backend on a few losses.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from helpers import assert_close, random_binary, random_labels, random_logits, to_numpy

import polyloss as pl

C = 3


class Size(NamedTuple):
    n: int  # batch
    h: int
    w: int
    boxes: int
    priors: int


# every axis changes from each size to the next
SIZES = (Size(2, 9, 7, 6, 24), Size(3, 8, 10, 7, 30), Size(4, 11, 12, 9, 36))


def _seg(rng, z):
    return random_logits(rng, (z.n, C, z.h, z.w)), random_labels(rng, (z.n, z.h, z.w), C)


def _bin(rng, z):
    return random_logits(rng, (z.n, 1, z.h, z.w)), random_binary(rng, (z.n, 1, z.h, z.w))


def _bin_ignored(rng, z):
    """Integer 0/1 targets with some elements at ignore_index 255, and a weight (options must not depend on size)."""
    x, t = _bin(rng, z)
    t = np.where(rng.random(t.shape) < 0.2, 255, t.astype(np.int64))
    return (x, t), {"ignore_index": 255, "weight": [1.5]}


def _boxes(rng, n):
    xy = rng.random((n, 2)) * 10
    wh = rng.random((n, 2)) * 5 + 0.5
    return np.concatenate([xy, xy + wh], axis=-1)


def _ssd(rng, z):
    priors = np.concatenate([rng.random((z.priors, 2)) * 10, rng.random((z.priors, 2)) * 4 + 1], axis=-1)  # cxcywh
    gt = np.stack([_boxes(rng, 3) for _ in range(z.n)])
    labels = rng.integers(1, 4, size=(z.n, 3))
    valid = rng.random((z.n, 3)) < 0.6
    valid[:, 0] = True
    return priors, gt, labels, valid


def _rboxes(rng, n):
    """Rotated cxcywhr boxes that overlap each other."""
    return np.concatenate([rng.random((n, 2)) * 4, rng.random((n, 2)) * 4 + 1, rng.uniform(-3, 3, (n, 1))], axis=-1)


def _scores(rng, z):
    """Dense-detector logits and soft quality targets (0 on negatives), one row per anchor."""
    return rng.normal(size=(z.priors, C)), rng.random((z.priors, C)) * (rng.random((z.priors, C)) < 0.4)


def _detr(rng, z, layers=None, c=C + 1):
    """DETR inputs: logits and cxcywh boxes for ``z.priors`` queries, padded ground truth of ``z.boxes`` slots."""
    lead = (z.n,) if layers is None else (layers, z.n)
    cxcy = rng.random((*lead, z.priors, 2)) * 0.6 + 0.2
    boxes = np.concatenate([cxcy, rng.random((*lead, z.priors, 2)) * 0.3 + 0.05], axis=-1)
    gt = np.concatenate([rng.random((z.n, z.boxes, 2)) * 0.6 + 0.2, rng.random((z.n, z.boxes, 2)) * 0.3 + 0.05], -1)
    valid = rng.random((z.n, z.boxes)) < 0.7
    valid[:, 0] = True
    return rng.normal(size=(*lead, z.priors, c)), boxes, rng.integers(0, C, size=(z.n, z.boxes)), gt, valid


def _masks(rng, z):
    return (rng.random((z.n, z.h, z.w)) < 0.6).astype(np.float64)


def _offsets(rng, z):
    return rng.normal(size=(z.boxes - 1, 4)), rng.normal(size=(z.boxes - 1, 4))


def _region(name, **options):
    return lambda rng, z: (_seg(rng, z), options, True)


# name -> builder(rng, size) -> (positional inputs as NumPy, options, differentiable in the first input)
CASES = {
    "binary_cross_entropy": lambda rng, z: (_bin(rng, z), {"pos_weight": 2.0}, True),
    "balanced_binary_cross_entropy": lambda rng, z: (_bin(rng, z), {}, True),
    "sigmoid_focal_loss": lambda rng, z: (*_bin_ignored(rng, z), True),
    "poly1_focal_loss": lambda rng, z: (*_bin_ignored(rng, z), True),
    "cross_entropy": lambda rng, z: ((random_logits(rng, (z.n, C, z.h, z.w)),
                                      random_labels(rng, (z.n, z.h, z.w), C, ignore_index=-1)),
                                     {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1, "ignore_index": -1}, True),
    "softmax_focal_loss": lambda rng, z: (_seg(rng, z), {"alpha": 0.25}, True),
    "poly1_cross_entropy": lambda rng, z: (_seg(rng, z), {}, True),
    "soft_confusion": _region("soft_confusion"),
    "dice_loss": _region("dice_loss"),
    "jaccard_loss": _region("jaccard_loss"),
    "tversky_loss": _region("tversky_loss", alpha=0.3, beta=0.7),
    "focal_tversky_loss": _region("focal_tversky_loss"),
    "generalized_dice_loss": _region("generalized_dice_loss"),
    "log_cosh_dice_loss": _region("log_cosh_dice_loss"),
    "mcc_loss": _region("mcc_loss"),
    "dice_cross_entropy_loss": _region("dice_cross_entropy_loss"),
    "dice_focal_loss": _region("dice_focal_loss"),
    "combo_loss": _region("combo_loss"),
    "bce_jaccard_loss": _region("bce_jaccard_loss"),
    "lovasz_hinge_loss": lambda rng, z: (_bin(rng, z), {}, True),
    "lovasz_softmax_loss": lambda rng, z: (_seg(rng, z), {}, True),
    "distance_transform": lambda rng, z: ((_masks(rng, z),), {"native": False}, False),
    "signed_distance_map": lambda rng, z: ((_masks(rng, z),), {"native": False}, False),
    "unet_weight_map": lambda rng, z: ((rng.integers(0, 4, size=(z.n, z.h, z.w)),),
                                       {"num_instances": 3, "native": False}, False),
    "boundary_loss": lambda rng, z: ((_seg(rng, z)[0], rng.normal(size=(z.n, C, z.h, z.w))), {}, True),
    "hausdorff_dt_loss": _region("hausdorff_dt_loss"),
    "boundary_iou": lambda rng, z: ((_masks(rng, z), _masks(rng, z)), {}, False),
    "boundary_iou_loss": _region("boundary_iou_loss"),
    "soft_cldice_loss": _region("soft_cldice_loss"),
    "box_convert": lambda rng, z: ((_boxes(rng, z.boxes),), {"in_fmt": "xyxy", "out_fmt": "cxcywh"}, True),
    "box_area": lambda rng, z: ((_boxes(rng, z.boxes),), {}, True),
    "box_iou": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes - 2)), {}, True),
    "iou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "giou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "diou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "ciou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "eiou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "smooth_l1_loss": lambda rng, z: (_offsets(rng, z), {"beta": 0.5}, True),
    "huber_loss": lambda rng, z: (_offsets(rng, z), {"delta": 0.5}, True),
    "balanced_l1_loss": lambda rng, z: (_offsets(rng, z), {}, True),
    "encode_boxes": lambda rng, z: ((_boxes(rng, z.boxes), _ssd(rng, z)[0][: z.boxes]), {}, True),
    "decode_boxes": lambda rng, z: ((rng.normal(size=(z.boxes, 4)) * 0.1, _ssd(rng, z)[0][: z.boxes]), {}, True),
    "match_priors": lambda rng, z: ((lambda p, g, lab, v: (g, lab, v, p))(*_ssd(rng, z)), {}, False),
    "hard_negative_mining": lambda rng, z: ((rng.random((z.n, z.priors)), rng.random((z.n, z.priors)) < 0.2), {},
                                            False),
    "multibox_loss": lambda rng, z: (
        (lambda p, g, lab, v: (0.1 * rng.normal(size=(z.n, z.priors, 4)), rng.normal(size=(z.n, z.priors, 4)),
                               g, lab, v, p))(*_ssd(rng, z)), {}, True),
    # deep supervision, topology losses and surface metrics (issue 13); deep_supervision and tubed_skeleton are in
    # NOT_ARRAY_FUNCTIONS (a wrapper, a host-side NumPy helper); tests/test_supervision.py compiles the wrapper's loss
    "skeleton_recall_loss": lambda rng, z: (_seg(rng, z), {"ignore_index": None}, True),
    "cl_cross_entropy_loss": _region("cl_cross_entropy_loss"),
    "boundary_dou_loss": _region("boundary_dou_loss"),
    "hausdorff_distance": lambda rng, z: ((_masks(rng, z), _masks(rng, z)), {"percentile": 95}, False),
    "average_surface_distance": lambda rng, z: ((_masks(rng, z), _masks(rng, z)), {"symmetric": True}, False),
    "surface_dice": lambda rng, z: ((_masks(rng, z), _masks(rng, z)), {"tolerance": 1.0}, False),
    "dice_score": lambda rng, z: ((_seg(rng, z)[1], _seg(rng, z)[1]), {"num_classes": C}, False),
    "iou_score": lambda rng, z: ((_masks(rng, z), _masks(rng, z)), {"class_axis": -1}, False),
    # generalized focal family and rotated boxes (issue 14)
    "quality_focal_loss": lambda rng, z: (_scores(rng, z), {"avg_factor": 3.0}, True),
    "varifocal_loss": lambda rng, z: (_scores(rng, z), {"weight": np.linspace(0.5, 1.5, C)[None]}, True),
    "distribution_focal_loss": lambda rng, z: ((rng.normal(size=(z.boxes, 4, 9)), rng.uniform(0, 8, size=(z.boxes, 4))),
                                               {}, True),
    "integral_decode": lambda rng, z: ((rng.normal(size=(z.boxes, 4, 9)),), {}, True),
    "box_to_gaussian": lambda rng, z: ((_rboxes(rng, z.boxes),), {}, True),
    "gwd_loss": lambda rng, z: ((_rboxes(rng, z.boxes), _rboxes(rng, z.boxes)), {}, True),
    "kld_loss": lambda rng, z: ((_rboxes(rng, z.boxes), _rboxes(rng, z.boxes)), {"fun": "sqrt", "tau": 2.0}, True),
    "probiou_loss": lambda rng, z: ((_rboxes(rng, z.boxes), _rboxes(rng, z.boxes)), {}, True),
    "kfiou_loss": lambda rng, z: ((_rboxes(rng, z.boxes), _rboxes(rng, z.boxes)), {"fun": "ln"}, True),
    "rotated_box_iou": lambda rng, z: ((_rboxes(rng, z.boxes), _rboxes(rng, z.boxes - 2)), {}, True),
    # set prediction (issue 19)
    "linear_sum_assignment": lambda rng, z: ((np.where(rng.random((z.n, z.boxes, z.boxes + 2)) < 0.2, np.inf,
                                                       rng.random((z.n, z.boxes, z.boxes + 2))),), {}, False),
    "generalized_box_iou": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes - 2)), {}, True),
    "hungarian_match": lambda rng, z: (_detr(rng, z), {}, False),
    "set_prediction_loss": lambda rng, z: (_detr(rng, z), {}, True),
}


def _tal(rng, z):
    """A dense-detector scene: anchors on a 6-wide grid (stride 4), 3 padded ground truths, C classes."""
    k = np.arange(z.priors)
    anchors = np.stack([k % 6 + 0.5, k // 6 + 0.5], axis=-1) * 4.0
    gt = np.stack([_boxes(rng, 3) * 2 for _ in range(z.n)])
    labels = rng.integers(0, C, size=(z.n, 3))
    valid = rng.random((z.n, 3)) < 0.7
    valid[:, 0] = True
    return anchors, gt, labels, valid


def _tal_assign(rng, z):
    anchors, gt, labels, valid = _tal(rng, z)
    boxes = np.concatenate([anchors - 3.0, anchors + 3.0], axis=-1)[None] + rng.normal(size=(z.n, z.priors, 4))
    return (rng.random((z.n, z.priors, C)), boxes, anchors, labels, gt, valid), {"top_k": 3}, False


def _tal_loss(rng, z):
    anchors, gt, labels, valid = _tal(rng, z)
    logits, dist = rng.normal(size=(z.n, z.priors, C)), rng.normal(size=(z.n, z.priors, 16))
    return (logits, dist, anchors, np.full(z.priors, 4.0), labels, gt, valid), {"reg_max": 4, "top_k": 3}, True


CASES.update({
    # box-loss variants and task-aligned assignment (issue 19)
    "siou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {"inner_ratio": 0.8}, True),
    "mpdiou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {"image_size": (16.0, 16.0)}, True),
    "wiou_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {"version": 3, "mean_iou_loss": 0.5},
                                 True),
    "nwd_loss": lambda rng, z: ((_boxes(rng, z.boxes), _boxes(rng, z.boxes)), {}, True),
    "task_aligned_assign": _tal_assign,
    "task_aligned_loss": _tal_loss,
})
# option variants that take another code path: "name[variant]" (label_smoothing, issue 13: the L1 form on smoothed
# labels, the fused product form, both terms of a compound)
CASES.update({
    # integer costs over a wide range: with a few values, optimal assignments tie, and SciPy (eager) and the
    # device solver (compiled) may each return a different one of them
    "linear_sum_assignment[tall]": lambda rng, z: ((rng.integers(0, 10**6, size=(z.n, z.boxes + 2, z.boxes)),), {},
                                                   False),
    "set_prediction_loss[focal,layers]": lambda rng, z: (_detr(rng, z, layers=2, c=C), {"class_loss": "focal"}, True),
    "set_prediction_loss[varifocal]": lambda rng, z: (_detr(rng, z, c=C), {"class_loss": "varifocal"}, True),
    "soft_confusion[label_smoothing]": _region("soft_confusion", label_smoothing=0.1),
    "dice_loss[label_smoothing]": _region("dice_loss", label_smoothing=0.1),
    "dice_loss[label_smoothing,product]": _region("dice_loss", label_smoothing=0.1, soft_label=False),
    "dice_loss[label_smoothing,squared]": _region("dice_loss", label_smoothing=0.1, squared=True),
    "mcc_loss[label_smoothing]": _region("mcc_loss", label_smoothing=0.2),
    "dice_cross_entropy_loss[label_smoothing]": _region("dice_cross_entropy_loss", label_smoothing=0.1,
                                                        weight=[1.0, 2.0, 0.5]),
    "dice_focal_loss[label_smoothing]": _region("dice_focal_loss", label_smoothing=0.1, alpha=0.25),
    "combo_loss[label_smoothing]": _region("combo_loss", label_smoothing=0.1),
    "bce_jaccard_loss[label_smoothing]": _region("bce_jaccard_loss", label_smoothing=0.1),
})
# adapters and wrappers that return Python functions (compiled inside Keras / in their own tests), host-side helpers,
# settings (set_checks: not a loss, takes no array)
NOT_ARRAY_FUNCTIONS = {"keras_loss", "deep_supervision", "tubed_skeleton", "set_checks"}


def _original(name):
    """The function itself, not the jax.jit wrapper the JAX test session installs on ``polyloss.<name>``."""
    name = name.split("[")[0]  # a variant's case key
    f = getattr(pl, name)
    return getattr(importlib.import_module(f.__module__), name)


def _leaves(result):
    return list(result) if isinstance(result, tuple) else [result]


def _summed(f):
    """A scalar of every floating output, so one gradient covers tuple outputs too."""

    def g(*args):
        total = 0.0
        for leaf in _leaves(f(*args)):
            total = total + leaf.sum()
        return total

    return g


def _build(backend, rng, name, size):
    """``(call, inputs, differentiable)`` for one case at one size."""
    arrays, options, differentiable = CASES[name](rng, size)
    f = _original(name)
    return (lambda *a: f(*a, **options)), [backend.asarray(a) for a in arrays], differentiable


def _assert_same(got, want):
    """Compiled against eager: same namespace, dtype and shape; values equal to rounding (float64 inputs)."""
    for g, w in zip(_leaves(got), _leaves(want), strict=True):
        assert g.dtype == w.dtype, f"compiled dtype {g.dtype} != eager {w.dtype}"
        assert_close(g, to_numpy(w), rtol=1e-9, atol=1e-9)


def _torch_check(compiled, call, inputs, differentiable):
    """One call of ``compiled`` against eager ``call``: outputs, and the gradient of their sum in the first input."""
    if not differentiable:
        _assert_same(compiled(*inputs), call(*inputs))
        return
    x_eager = inputs[0].detach().clone().requires_grad_(True)
    x_compiled = inputs[0].detach().clone().requires_grad_(True)
    eager = call(x_eager, *inputs[1:])
    got = compiled(x_compiled, *inputs[1:])
    sum(leaf.sum() for leaf in _leaves(eager)).backward()
    sum(leaf.sum() for leaf in _leaves(got)).backward()
    _assert_same(got, eager)
    assert_close(x_compiled.grad, to_numpy(x_eager.grad), rtol=1e-9, atol=1e-9)


# Exports whose graph keeps some sizes static, so that torch compiles once more per new size (the values
# are still compared with eager at every size).
_HOST_OP = "SciPy's distance transform runs on the host (a custom op); the graph guards on the image sizes"
RECOMPILE_PER_SIZE = {
    **dict.fromkeys(["distance_transform", "signed_distance_map", "unet_weight_map", "hausdorff_dt_loss",
                     "hausdorff_distance", "average_surface_distance", "surface_dice"], _HOST_OP),
    **dict.fromkeys(["task_aligned_assign", "task_aligned_loss"],
                    "the graph guards on the batch size (the first input's axis 0); its source is not traced yet"),
}


def test_every_export_has_a_case():
    assert set(pl.__all__) - NOT_ARRAY_FUNCTIONS == {name.split("[")[0] for name in CASES}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_equals_eager(backend, rng, name):
    """jax.jit; torch.compile at static shapes, the graph reused, then after a shape change."""
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no compiler; the matrix covers jax.jit and torch.compile")
    call, inputs, differentiable = _build(backend, rng, name, SIZES[0])
    if backend.is_jax:
        import jax

        _assert_same(jax.jit(call)(*inputs), call(*inputs))
        if differentiable:
            grad = jax.grad(_summed(call))
            assert_close(jax.jit(grad)(*inputs), to_numpy(grad(*inputs)), rtol=1e-9, atol=1e-9)
        return
    import torch

    torch._dynamo.reset()
    compiled = torch.compile(call, fullgraph=True, backend="aot_eager")
    _torch_check(compiled, call, inputs, differentiable)
    # A second call on new tensors of the same shapes reuses the graph (no state mutated while tracing).
    again = [inputs[0].detach().clone().requires_grad_(differentiable), *inputs[1:]]
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled(*again)
    # A new shape: torch recompiles with the changed sizes symbolic (automatic dynamic shapes).
    call, inputs, differentiable = _build(backend, rng, name, SIZES[1])
    _torch_check(compiled, call, inputs, differentiable)
    # Dynamic shapes: every axis changed, so the new graph's sizes are all symbolic and serve a third size.
    call, inputs, differentiable = _build(backend, rng, name, SIZES[2])
    with torch._dynamo.config.patch(error_on_recompile=name not in RECOMPILE_PER_SIZE):
        _torch_check(compiled, call, inputs, differentiable)


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "lovasz_softmax_loss", "giou_loss"])
def test_torch_inductor_compiles_representative_losses(backend, rng, name):
    """The default backend (inductor: generated C++), for a few losses; the matrix above uses aot_eager."""
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    call, inputs, _ = _build(backend, rng, name, SIZES[0])
    torch._dynamo.reset()
    _torch_check(torch.compile(call, fullgraph=True), call, inputs, True)


WARNING_CASES = ["cross_entropy", "dice_loss", "dice_cross_entropy_loss", "lovasz_softmax_loss", "soft_cldice_loss",
                 "hausdorff_dt_loss", "boundary_iou_loss", "ciou_loss", "multibox_loss"]  # one or more per family


@pytest.mark.parametrize("name", WARNING_CASES)
def test_torch_compile_emits_no_warning(backend, rng, name, monkeypatch, caplog):
    """Tracing a loss warns about nothing: no Dynamo warning (e.g. on an ``lru_cache`` it traces through).

    Dynamo warns once per message and process, so its record of past
    warnings is emptied first; its logger is captured too.
    """
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    monkeypatch.setattr(torch._dynamo.utils, "warn_once_cache", set())
    call, inputs, _ = _build(backend, rng, name, SIZES[0])
    torch._dynamo.reset()
    with warnings.catch_warnings(record=True) as record, caplog.at_level(logging.WARNING, logger="torch"):
        warnings.simplefilter("always")
        torch.compile(call, fullgraph=True, backend="aot_eager")(*inputs)
    messages = [f"{w.filename}:{w.lineno}: {w.message}" for w in record] + [r.getMessage() for r in caplog.records]
    assert not messages, "\n".join(messages)
