"""The compile matrix: every exported function under ``jax.jit`` and ``torch.compile(fullgraph=True)``.

For each export a representative call is built below. On JAX the call is
compared eagerly against ``jax.jit`` (value, and ``jax.grad`` of the summed
output with respect to the first input where it is differentiable). On torch
it is compiled with ``fullgraph=True`` (a graph break is an error) and the
value and backward pass are compared with eager. Every export must have a
case here: ``test_every_export_has_a_case`` fails otherwise.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from helpers import assert_close, random_binary, random_labels, random_logits, to_numpy

import polyloss as pl

N, C, H, W = 2, 3, 9, 7


def _seg(rng):
    return random_logits(rng, (N, C, H, W)), random_labels(rng, (N, H, W), C)


def _bin(rng):
    return random_logits(rng, (N, 1, H, W)), random_binary(rng, (N, 1, H, W))


def _boxes(rng, n=6):
    xy = rng.random((n, 2)) * 10
    wh = rng.random((n, 2)) * 5 + 0.5
    return np.concatenate([xy, xy + wh], axis=-1)


def _rboxes(rng, n=6):
    """Rotated cxcywhr boxes that overlap each other."""
    return np.concatenate([rng.random((n, 2)) * 4, rng.random((n, 2)) * 4 + 1, rng.uniform(-3, 3, (n, 1))], axis=-1)


def _ssd(rng):
    priors = np.concatenate([rng.random((24, 2)) * 10, rng.random((24, 2)) * 4 + 1], axis=-1)  # cx, cy, w, h
    gt = np.stack([_boxes(rng, 3) for _ in range(N)])
    labels = rng.integers(1, 4, size=(N, 3))
    valid = np.array([[True, True, False], [True, False, False]])
    return priors, gt, labels, valid


def _masks(rng):
    return (rng.random((N, H, W)) < 0.6).astype(np.float64)


def _region(name, **options):
    return lambda rng: (_seg(rng), options, True)


# name -> builder(rng) -> (positional inputs as NumPy, options, differentiable in the first input)
CASES = {
    "binary_cross_entropy": lambda rng: (_bin(rng), {"pos_weight": 2.0}, True),
    "balanced_binary_cross_entropy": lambda rng: (_bin(rng), {}, True),
    "sigmoid_focal_loss": lambda rng: (_bin(rng), {}, True),
    "poly1_focal_loss": lambda rng: (_bin(rng), {}, True),
    "cross_entropy": lambda rng: (_seg(rng), {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}, True),
    "softmax_focal_loss": lambda rng: (_seg(rng), {"alpha": 0.25}, True),
    "poly1_cross_entropy": lambda rng: (_seg(rng), {}, True),
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
    "lovasz_hinge_loss": lambda rng: (_bin(rng), {}, True),
    "lovasz_softmax_loss": lambda rng: (_seg(rng), {}, True),
    "distance_transform": lambda rng: ((_masks(rng),), {"native": False}, False),
    "signed_distance_map": lambda rng: ((_masks(rng),), {"native": False}, False),
    "unet_weight_map": lambda rng: ((rng.integers(0, 4, size=(N, H, W)),), {"num_instances": 3, "native": False},
                                    False),
    "boundary_loss": lambda rng: ((random_logits(rng, (N, C, H, W)), rng.normal(size=(N, C, H, W))), {}, True),
    "hausdorff_dt_loss": _region("hausdorff_dt_loss"),
    "boundary_iou": lambda rng: ((_masks(rng), _masks(rng)), {}, False),
    "boundary_iou_loss": _region("boundary_iou_loss"),
    "soft_cldice_loss": _region("soft_cldice_loss"),
    "box_convert": lambda rng: ((_boxes(rng),), {"in_fmt": "xyxy", "out_fmt": "cxcywh"}, True),
    "box_area": lambda rng: ((_boxes(rng),), {}, True),
    "box_iou": lambda rng: ((_boxes(rng), _boxes(rng, 4)), {}, True),
    "iou_loss": lambda rng: ((_boxes(rng), _boxes(rng)), {}, True),
    "giou_loss": lambda rng: ((_boxes(rng), _boxes(rng)), {}, True),
    "diou_loss": lambda rng: ((_boxes(rng), _boxes(rng)), {}, True),
    "ciou_loss": lambda rng: ((_boxes(rng), _boxes(rng)), {}, True),
    "eiou_loss": lambda rng: ((_boxes(rng), _boxes(rng)), {}, True),
    "smooth_l1_loss": lambda rng: ((rng.normal(size=(5, 4)), rng.normal(size=(5, 4))), {"beta": 0.5}, True),
    "huber_loss": lambda rng: ((rng.normal(size=(5, 4)), rng.normal(size=(5, 4))), {"delta": 0.5}, True),
    "balanced_l1_loss": lambda rng: ((rng.normal(size=(5, 4)), rng.normal(size=(5, 4))), {}, True),
    "encode_boxes": lambda rng: ((_boxes(rng), _ssd(rng)[0][:6]), {}, True),
    "decode_boxes": lambda rng: ((rng.normal(size=(6, 4)) * 0.1, _ssd(rng)[0][:6]), {}, True),
    "match_priors": lambda rng: ((lambda p, g, lab, v: (g, lab, v, p))(*_ssd(rng)), {}, False),
    "hard_negative_mining": lambda rng: ((rng.random((N, 24)), rng.random((N, 24)) < 0.2), {}, False),
    "multibox_loss": lambda rng: (
        (lambda p, g, lab, v: (rng.normal(size=(N, 24, 4)) * 0.1, rng.normal(size=(N, 24, 4)), g, lab, v, p))(
            *_ssd(rng)), {}, True),
    # deep supervision, topology losses and surface metrics (issue 13); deep_supervision and tubed_skeleton are in
    # NOT_ARRAY_FUNCTIONS (a wrapper, a host-side NumPy helper); tests/test_supervision.py compiles the wrapper's loss
    "skeleton_recall_loss": lambda rng: (_seg(rng), {"ignore_index": None}, True),
    "cl_cross_entropy_loss": _region("cl_cross_entropy_loss"),
    "boundary_dou_loss": _region("boundary_dou_loss"),
    "hausdorff_distance": lambda rng: ((_masks(rng), _masks(rng)), {"percentile": 95}, False),
    "average_surface_distance": lambda rng: ((_masks(rng), _masks(rng)), {"symmetric": True}, False),
    "surface_dice": lambda rng: ((_masks(rng), _masks(rng)), {"tolerance": 1.0}, False),
    "dice_score": lambda rng: ((_seg(rng)[1], _seg(rng)[1]), {"num_classes": C}, False),
    "iou_score": lambda rng: ((_masks(rng), _masks(rng)), {"class_axis": -1}, False),
    # generalized focal family and rotated boxes (issue 14)
    "quality_focal_loss": lambda rng: ((rng.normal(size=(8, 3)), rng.random((8, 3)) * (rng.random((8, 3)) < 0.4)),
                                       {"avg_factor": 3.0}, True),
    "varifocal_loss": lambda rng: ((rng.normal(size=(8, 3)), rng.random((8, 3)) * (rng.random((8, 3)) < 0.4)),
                                   {"weight": np.ones((8, 1))}, True),
    "distribution_focal_loss": lambda rng: ((rng.normal(size=(6, 4, 9)), rng.uniform(0, 8, size=(6, 4))), {}, True),
    "integral_decode": lambda rng: ((rng.normal(size=(6, 4, 9)),), {}, True),
    "box_to_gaussian": lambda rng: ((_rboxes(rng),), {}, True),
    "gwd_loss": lambda rng: ((_rboxes(rng), _rboxes(rng)), {}, True),
    "kld_loss": lambda rng: ((_rboxes(rng), _rboxes(rng)), {"fun": "sqrt", "tau": 2.0}, True),
    "probiou_loss": lambda rng: ((_rboxes(rng), _rboxes(rng)), {}, True),
    "kfiou_loss": lambda rng: ((_rboxes(rng), _rboxes(rng)), {"fun": "ln"}, True),
    "rotated_box_iou": lambda rng: ((_rboxes(rng), _rboxes(rng, 4)), {}, True),
}
# adapters and wrappers that return Python functions (compiled inside Keras / in their own tests), host-side helpers
NOT_ARRAY_FUNCTIONS = {"keras_loss", "deep_supervision", "tubed_skeleton"}


def _original(name):
    """The function itself, not the jax.jit wrapper the JAX test session installs on ``polyloss.<name>``."""
    f = getattr(pl, name)
    return getattr(importlib.import_module(f.__module__), name)


def _as_inputs(backend, arrays):
    out = []
    for a in arrays:
        a = np.asarray(a)
        out.append(backend.asarray(a))
    return out


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


def test_every_export_has_a_case():
    assert set(pl.__all__) - NOT_ARRAY_FUNCTIONS == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_equals_eager(backend, rng, name):
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no compiler; the matrix covers jax.jit and torch.compile")
    arrays, options, differentiable = CASES[name](rng)
    f = _original(name)
    call = lambda *a: f(*a, **options)  # noqa: E731
    inputs = _as_inputs(backend, arrays)
    eager = _leaves(call(*inputs))
    if backend.is_jax:
        import jax

        compiled = _leaves(jax.jit(call)(*inputs))
        for got, want in zip(compiled, eager, strict=True):
            assert_close(got, to_numpy(want), rtol=1e-9, atol=1e-9)
        if differentiable:
            grad = jax.grad(_summed(call))
            assert_close(jax.jit(grad)(*inputs), to_numpy(grad(*inputs)), rtol=1e-9, atol=1e-9)
        return
    import torch

    torch._dynamo.reset()
    compiled_call = torch.compile(call, fullgraph=True, backend="aot_eager")
    if differentiable:
        x_eager = inputs[0].detach().clone().requires_grad_(True)
        x_compiled = inputs[0].detach().clone().requires_grad_(True)
        eager = _leaves(call(x_eager, *inputs[1:]))
        compiled = _leaves(compiled_call(x_compiled, *inputs[1:]))
        sum(leaf.sum() for leaf in eager).backward()
        sum(leaf.sum() for leaf in compiled).backward()
        assert_close(x_compiled.grad, to_numpy(x_eager.grad), rtol=1e-9, atol=1e-9)
    else:
        compiled = _leaves(compiled_call(*inputs))
    for got, want in zip(compiled, eager, strict=True):
        assert_close(got, to_numpy(want), rtol=1e-9, atol=1e-9)
    # A second call on new tensors of the same shapes reuses the graph (no state mutated while tracing).
    again = [inputs[0].detach().clone().requires_grad_(differentiable), *inputs[1:]]
    with torch._dynamo.config.patch(error_on_recompile=True):
        compiled_call(*again)


@pytest.mark.parametrize("name", ["cross_entropy", "dice_loss", "lovasz_softmax_loss", "giou_loss"])
def test_torch_inductor_compiles_representative_losses(backend, rng, name):
    """The default backend (inductor: generated C++), for a few losses; the matrix above uses aot_eager."""
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    arrays, options, _ = CASES[name](rng)
    f = _original(name)
    inputs = _as_inputs(backend, arrays)
    torch._dynamo.reset()
    compiled = torch.compile(lambda *a: f(*a, **options), fullgraph=True)
    x = inputs[0].detach().clone().requires_grad_(True)
    value = compiled(x, *inputs[1:])
    value.backward()
    x_eager = inputs[0].detach().clone().requires_grad_(True)
    want = f(x_eager, *inputs[1:], **options)
    want.backward()
    assert_close(value, to_numpy(want), rtol=1e-9, atol=1e-9)
    assert_close(x.grad, to_numpy(x_eager.grad), rtol=1e-9, atol=1e-9)
