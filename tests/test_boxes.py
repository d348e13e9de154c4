"""Box utilities and IoU-family losses against float64 formulations written from the papers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_close, assert_finite, to_numpy

import polyloss as pl

# patch_lazy_xp_functions (tests/conftest.py) searches these modules: pl.<name> runs under jax.jit on JAX
lazy_xp_modules = [pl]

FORMATS = ["xyxy", "xywh", "cxcywh"]
REDUCTIONS = ["mean", "sum", "none"]
EPS = 1e-7

# --------------------------------------------------------------------------- #
# float64 references: one box (pair) at a time, from the definitions
# --------------------------------------------------------------------------- #


def random_xyxy(rng, shape, *, scale=10.0):
    """Boxes (*shape, 4) with positive width and height."""
    xy = rng.random((*shape, 2)) * scale
    wh = rng.random((*shape, 2)) * scale / 2 + 0.05
    return np.concatenate([xy, xy + wh], axis=-1)


def overlapping_pairs(rng, n):
    """Prediction boxes near their targets (most overlap, some do not)."""
    t = random_xyxy(rng, (n,))
    jitter = rng.normal(scale=1.5, size=(n, 4))
    p = t + jitter
    p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 0.05)
    return p, t


def to_format(b, fmt):
    """xyxy boxes (..., 4) written in ``fmt`` (plain arithmetic per box)."""
    out = np.empty_like(b)
    for idx in np.ndindex(b.shape[:-1]):
        x1, y1, x2, y2 = b[idx]
        if fmt == "xyxy":
            out[idx] = (x1, y1, x2, y2)
        elif fmt == "xywh":
            out[idx] = (x1, y1, x2 - x1, y2 - y1)
        else:
            out[idx] = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    return out


def terms(p, t):
    """IoU (with eps), union, enclosing width/height, centre distance^2 for one pair of xyxy boxes."""
    iw = min(p[2], t[2]) - max(p[0], t[0])
    ih = min(p[3], t[3]) - max(p[1], t[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
    cw = max(p[2], t[2]) - min(p[0], t[0])
    ch = max(p[3], t[3]) - min(p[1], t[1])
    rho2 = ((p[0] + p[2]) / 2 - (t[0] + t[2]) / 2) ** 2 + ((p[1] + p[3]) / 2 - (t[1] + t[3]) / 2) ** 2
    return inter / (union + EPS), union, cw, ch, rho2


def iou_ref(p, t):
    return 1 - terms(p, t)[0]


def giou_ref(p, t):  # Rezatofighi et al. 2019
    iou, union, cw, ch, _ = terms(p, t)
    return 1 - iou + (cw * ch - union) / (cw * ch + EPS)


def diou_ref(p, t):  # Zheng et al. 2020
    iou, _, cw, ch, rho2 = terms(p, t)
    return 1 - iou + rho2 / (cw**2 + ch**2 + EPS)


def ciou_v(p, t):
    return 4 / math.pi**2 * (math.atan((t[2] - t[0]) / (t[3] - t[1])) - math.atan((p[2] - p[0]) / (p[3] - p[1]))) ** 2


def ciou_alpha(p, t):
    v = ciou_v(p, t)
    return v / (1 - terms(p, t)[0] + v + EPS)


def ciou_ref(p, t, alpha=None):  # Zheng et al. 2020, alpha not gated on IoU
    return diou_ref(p, t) + (ciou_alpha(p, t) if alpha is None else alpha) * ciou_v(p, t)


def eiou_ref(p, t):  # Zhang et al. 2022
    _, _, cw, ch, _ = terms(p, t)
    dw = (p[2] - p[0]) - (t[2] - t[0])
    dh = (p[3] - p[1]) - (t[3] - t[1])
    return diou_ref(p, t) + dw**2 / (cw**2 + EPS) + dh**2 / (ch**2 + EPS)


LOSSES = {
    "iou_loss": (pl.iou_loss, iou_ref),
    "giou_loss": (pl.giou_loss, giou_ref),
    "diou_loss": (pl.diou_loss, diou_ref),
    "ciou_loss": (pl.ciou_loss, ciou_ref),
    "eiou_loss": (pl.eiou_loss, eiou_ref),
}


def loss_ref(ref, p, t, reduction):
    out = np.array([ref(a, b) for a, b in zip(p.reshape(-1, 4), t.reshape(-1, 4), strict=True)]).reshape(p.shape[:-1])
    return {"none": out, "sum": out.sum(), "mean": out.mean() if out.size else 0.0}[reduction]


# --------------------------------------------------------------------------- #
# Utilities
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_round_trips_every_format(backend, rng, in_fmt, out_fmt):
    b = random_xyxy(rng, (2, 5))
    got = pl.box_convert(backend.asarray(to_format(b, in_fmt)), in_fmt=in_fmt, out_fmt=out_fmt)
    assert_close(got, to_format(b, out_fmt), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_area(backend, rng, fmt):
    b = random_xyxy(rng, (3, 7))
    want = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    assert_close(pl.box_area(backend.asarray(to_format(b, fmt)), box_format=fmt), want, rtol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
def test_box_iou_pairwise_and_batched(backend, rng, fmt):
    a, b = random_xyxy(rng, (2, 5)), random_xyxy(rng, (2, 3))
    a[0, 1] = b[0, 2]  # an identical pair: IoU 1 up to rounding
    want = np.empty((2, 5, 3))
    for k, i, j in np.ndindex(want.shape):
        p, t = a[k, i], b[k, j]
        iw = max(min(p[2], t[2]) - max(p[0], t[0]), 0)
        ih = max(min(p[3], t[3]) - max(p[1], t[1]), 0)
        inter = iw * ih
        want[k, i, j] = inter / ((p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter)
    got = pl.box_iou(backend.asarray(to_format(a, fmt)), backend.asarray(to_format(b, fmt)), box_format=fmt)
    assert_close(got, want, rtol=1e-10, atol=1e-12)
    # leading axes broadcast: one set of (3, 4) boxes against every batch entry
    got = pl.box_iou(backend.asarray(a), backend.asarray(b[0]))
    assert tuple(got.shape) == (2, 5, 3)
    assert_close(got[0, ...], want[0], rtol=1e-10, atol=1e-12)


def test_box_iou_of_empty_union_is_zero(backend):
    z = backend.asarray(np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]]))
    assert_close(pl.box_iou(z, z), np.array([[0.0, 0.0], [0.0, 1.0]]))


# --------------------------------------------------------------------------- #
# Losses
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_reference(backend, rng, name, reduction):
    loss, ref = LOSSES[name]
    p, t = overlapping_pairs(rng, 21)
    p, t = p.reshape(3, 7, 4), t.reshape(3, 7, 4)
    got = loss(backend.asarray(p), backend.asarray(t), reduction=reduction)
    assert_close(got, loss_ref(ref, p, t, reduction), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("fmt", ["xywh", "cxcywh"])
def test_losses_accept_every_box_format(backend, rng, name, fmt):
    loss, ref = LOSSES[name]
    p, t = overlapping_pairs(rng, 9)
    got = loss(backend.asarray(to_format(p, fmt)), backend.asarray(to_format(t, fmt)), box_format=fmt,
               reduction="none")
    assert_close(got, loss_ref(ref, p, t, "none"), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_are_zero_for_identical_boxes_and_ordered(backend, rng, name):
    loss, ref = LOSSES[name]
    t = random_xyxy(rng, (6,))
    got = loss(backend.asarray(t), backend.asarray(t), reduction="none")
    assert_close(got, loss_ref(ref, t, t, "none"), rtol=1e-9, atol=1e-12)  # eps / (area + eps) from the IoU
    assert np.all(to_numpy(got) < 1e-4)
    # the penalty terms order: IoU <= GIoU, DIoU <= CIoU, DIoU <= EIoU (each adds a non-negative term)
    p, t = overlapping_pairs(rng, 11)
    values = {k: to_numpy(f(backend.asarray(p), backend.asarray(t), reduction="none")) for k, (f, _) in LOSSES.items()}
    assert np.all(values["iou_loss"] <= values["giou_loss"] + 1e-12)
    assert np.all(values["diou_loss"] <= values["ciou_loss"] + 1e-12)
    assert np.all(values["diou_loss"] <= values["eiou_loss"] + 1e-12)


def test_empty_input_gives_zero_mean(backend):
    e = backend.asarray(np.zeros((0, 4)))
    for loss, _ in LOSSES.values():
        assert_close(loss(e, e), np.array(0.0))
        assert tuple(loss(e, e, reduction="none").shape) == (0,)


@pytest.mark.parametrize("name", [k for k in LOSSES if k != "ciou_loss"])
def test_gradients_match_finite_differences(backend, rng, name):
    loss, _ = LOSSES[name]
    p, t = overlapping_pairs(rng, 4)
    y = backend.asarray(t)
    backend.check_grad(lambda x: loss(x, y, reduction="sum"), p)


def test_ciou_gradient_holds_alpha_constant(backend, rng):
    # CIoU's alpha is a constant in the gradient (Zheng et al. 2020, torchvision): differentiate the
    # float64 reference with alpha frozen at the evaluation point
    if not backend.has_autodiff:
        pytest.skip(f"{backend.name} has no automatic differentiation")
    p, t = overlapping_pairs(rng, 4)
    alpha = [ciou_alpha(a, b) for a, b in zip(p, t, strict=True)]

    def frozen(x):
        return sum(ciou_ref(a, b, alpha=al) for a, b, al in zip(x, t, alpha, strict=True))

    numeric = np.zeros_like(p)
    for idx in np.ndindex(p.shape):
        hi, lo = p.copy(), p.copy()
        hi[idx] += 1e-6
        lo[idx] -= 1e-6
        numeric[idx] = (frozen(hi) - frozen(lo)) / 2e-6
    value, grad = backend.value_and_grad(lambda x: pl.ciou_loss(x, backend.asarray(t), reduction="sum"),
                                         backend.asarray(p))
    assert_close(value, np.array(frozen(p)), rtol=1e-10)
    assert_close(grad, numeric, rtol=1e-5, atol=1e-7)


DEGENERATE = {
    "identical": ([1.0, 2.0, 4.0, 5.0], [1.0, 2.0, 4.0, 5.0]),
    "disjoint": ([0.0, 0.0, 1.0, 1.0], [5.0, 6.0, 7.0, 9.0]),
    "zero width": ([2.0, 1.0, 2.0, 4.0], [1.0, 1.0, 3.0, 3.0]),
    "zero height": ([1.0, 2.0, 4.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
    "both points": ([2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]),
    "point in box": ([2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
    "zero-area identical": ([1.0, 1.0, 1.0, 4.0], [1.0, 1.0, 1.0, 4.0]),
    "touching": ([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]),
}


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_boxes_give_finite_values_and_gradients(backend, name, case):
    loss, _ = LOSSES[name]
    p, t = (np.array(v) for v in DEGENERATE[case])
    y = backend.asarray(t)
    assert_finite(loss(backend.asarray(p), y))
    if backend.has_autodiff:
        assert_finite(*backend.value_and_grad(lambda x: loss(x, y), backend.asarray(p)))
        assert_finite(*backend.value_and_grad(lambda x: loss(backend.asarray(p), x), y))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_half_precision_returns_input_dtype(backend, rng, half, name):
    if not hasattr(backend.xp, half):
        pytest.skip(f"{backend.name} has no {half}")
    loss, _ = LOSSES[name]
    p, t = overlapping_pairs(rng, 8)
    dt = backend.float_dtype(half)
    ph, th = backend.asarray(p, dtype=dt), backend.asarray(t, dtype=dt)
    got = loss(ph, th)
    assert got.dtype == dt
    f32 = backend.float_dtype("float32")
    want = to_numpy(loss(backend.asarray(to_numpy(ph), dtype=f32), backend.asarray(to_numpy(th), dtype=f32)))
    assert_close(got, want, rtol=1e-2 if half == "bfloat16" else 2e-3, atol=1e-3)


def test_bad_input(backend, rng):
    p = backend.asarray(random_xyxy(rng, (3,)))
    with pytest.raises(ValueError, match=r"giou_loss: y_pred must have shape \(..., 4\), one box per row, got \(3, 3"):
        pl.giou_loss(p[:, :3], p[:, :3])
    with pytest.raises(ValueError, match=r"ciou_loss: y_true must have the shape of y_pred \(3, 4\), got \(2, 4\)"):
        pl.ciou_loss(p, p[:2, ...])
    with pytest.raises(ValueError, match="diou_loss: box_format must be one of 'xyxy', 'xywh', 'cxcywh', got 'xy'"):
        pl.diou_loss(p, p, box_format="xy")
    with pytest.raises(ValueError, match="eiou_loss: reduction must be one of"):
        pl.eiou_loss(p, p, reduction=None)
    with pytest.raises(ValueError, match="iou_loss: eps must be >= 0"):
        pl.iou_loss(p, p, eps=-1.0)
    with pytest.raises(TypeError, match="box_area: boxes must have a real floating dtype"):
        pl.box_area(backend.asarray(np.zeros((2, 4), dtype=np.int64)))
    with pytest.raises(ValueError, match="box_convert: out_fmt must be one of"):
        pl.box_convert(p, in_fmt="xyxy", out_fmt="yxyx")
    with pytest.raises(ValueError, match=r"box_iou: boxes1 and boxes2 must have shape \(..., N, 4\)"):
        pl.box_iou(p[0, ...], p)


# --------------------------------------------------------------------------- #
# torch.compile(fullgraph=True)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("name", list(LOSSES))
def test_torch_compile_fullgraph_matches_eager(backend, rng, name):
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    loss, _ = LOSSES[name]
    p, t = overlapping_pairs(rng, 5)
    y = backend.asarray(t)
    torch._dynamo.reset()
    compiled = torch.compile(lambda z: loss(z, y, box_format="cxcywh"), fullgraph=True, backend="aot_eager")
    want = backend.value_and_grad(lambda z: loss(z, y, box_format="cxcywh"), backend.asarray(p))
    got = backend.value_and_grad(compiled, backend.asarray(p))
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


def test_torch_compile_utilities(backend, rng):
    if not backend.is_torch:
        pytest.skip("torch.compile applies to the torch backends only")
    import torch

    a, b = backend.asarray(random_xyxy(rng, (4,))), backend.asarray(random_xyxy(rng, (3,)))

    def utilities(x, y):
        return pl.box_iou(x, y), pl.box_area(x), pl.box_convert(x, in_fmt="xyxy", out_fmt="cxcywh")

    torch._dynamo.reset()
    compiled = torch.compile(utilities, fullgraph=True, backend="aot_eager")
    for got, want in zip(compiled(a, b), utilities(a, b), strict=True):
        assert_close(got, to_numpy(want))


# --------------------------------------------------------------------------- #
# Private kernels stay behind private doors
# --------------------------------------------------------------------------- #


def test_box_and_distance_modules_publish_only_all_and_are_imported_by_it():
    """boxes, distance and detection define no public name outside ``__all__``, and no module of the
    package imports anything from them but their ``__all__`` (the box algebra lives in ``_box_ops``,
    the EDT in ``_edt``)."""
    import ast
    import importlib
    import inspect
    from pathlib import Path

    families = ("polyloss.detection.boxes", "polyloss.segmentation.distance", "polyloss.detection.ssd")
    for name in families:
        module = importlib.import_module(name)
        defined = {k for k, v in vars(module).items() if not k.startswith("_")
                   and (inspect.isfunction(v) or inspect.isclass(v)) and v.__module__ == module.__name__}
        assert defined <= set(module.__all__), f"{name} publishes {sorted(defined - set(module.__all__))}"
    package = Path(pl.__file__).parent
    for path in package.rglob("*.py"):
        here = ".".join(("polyloss", *path.relative_to(package).with_suffix("").parts)).removesuffix(".__init__")
        parent = here if path.name == "__init__.py" else here.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = parent.rsplit(".", node.level - 1)[0] if node.level > 1 else parent
            target = f"{base}.{node.module}" if node.module else base
            if target in families:
                public = set(importlib.import_module(target).__all__)
                imported = {alias.name for alias in node.names}
                assert imported <= public, f"{path.name} imports {sorted(imported - public)} from {target}"


def test_docstring_examples_run(backend):
    """The Example of every public function of boxes and detection runs with NumPy as its docstring says."""
    if backend.name != "numpy":
        pytest.skip("the docstring examples are written for NumPy")
    import doctest

    import polyloss.detection.boxes
    import polyloss.detection.ssd

    for module in (polyloss.detection.boxes, polyloss.detection.ssd):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted >= 2 * len(module.__all__) and result.failed == 0, module.__name__
