"""The usage-mode matrix: every export, called in each way users call a loss (docs/conventions.md, "Usage modes").

Generated over ``polyloss.__all__`` from the call cases of ``tests/test_compile.py`` (one table for both
matrices: a new export without a case there fails here too), at small shapes:

- eager, on every backend; options as NumPy scalars and 0-d arrays; bool flags given a string; a
  non-array input (a ``TypeError`` naming the function);
- JAX: ``jax.jit`` with the targets closed over (concrete arrays captured by the traced function),
  ``jax.vmap`` over a batch of calls, ``jax.grad`` of ``jax.grad`` (a Hessian-vector product against
  central differences of the gradient), float options as tracers (swept with ``vmap``);
- torch: ``torch.func.grad`` and ``torch.func.vmap``, the double backward against central differences of
  the first-order gradient (float64), ``torch.autocast`` bf16 against float32, ``inference_mode``, and the
  host reads of one call on tensors declared to be on an accelerator (none may happen).

Where another branch owns the fix (the fused region autograd Functions: double backward, ``torch.func``,
autocast), the case is a strict xfail naming that branch, so the fix turns it into a failure to remove.
"""

from __future__ import annotations

import contextlib
import inspect
import sys

import numpy as np
import pytest
from helpers import assert_close, to_numpy
from test_compile import CASES, NOT_ARRAY_FUNCTIONS, Size, _leaves, _original

import polyloss as pl
from polyloss import _backend
from polyloss._backend import policy

SIZE = Size(2, 5, 6, 4, 10)  # small: the matrix runs every export in several modes
NAMES = sorted(name for name in CASES if "[" not in name)
DIFFERENTIABLE = [name for name in NAMES if CASES[name](np.random.default_rng(0), SIZE)[2]]
# JAX transformations compile each case (about a second apiece, eager JAX dispatches op by op): vmap, grad of grad
# and traced options run on one or two exports per family, each exercising its family's shared code; the
# closed-over jax.jit runs on every export
JAX_FAMILY = ("cross_entropy", "sigmoid_focal_loss", "softmax_focal_loss", "dice_loss", "tversky_loss",
              "dice_focal_loss", "lovasz_softmax_loss", "lovasz_hinge_loss", "hausdorff_dt_loss", "soft_cldice_loss",
              "boundary_dou_loss", "dice_score", "smooth_l1_loss", "hard_negative_mining",
              "quality_focal_loss", "distribution_focal_loss", "probiou_loss")

SOLVER_LOOP = ("the matching solver's eager torch loop reads its stop condition each step (data-dependent control "
               "flow): on an accelerator each step is a host read; jax.jit and torch.compile keep the loop on the "
               "device")
# (mode, backend or "*", export) -> why it fails today; each is a strict xfail, so a fix turns it into a failure
KNOWN: dict[tuple[str, str, str], str] = {
    **{("host_reads", "torch", n): SOLVER_LOOP for n in ("linear_sum_assignment", "hungarian_match",
                                                         "set_prediction_loss")},
}


def _known(request, mode: str, backend, name: str) -> None:
    """Mark the running case a strict xfail where ``KNOWN`` lists it."""
    reason = KNOWN.get((mode, backend.name, name)) or KNOWN.get((mode, "*", name))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


def _case(backend, rng, name, dtype=None):
    """``(f, inputs, options, differentiable)``: ``f`` the function itself, inputs on ``backend``."""
    arrays, options, differentiable = CASES[name](rng, SIZE)
    inputs = [backend.asarray(a) if dtype is None or a.dtype.kind != "f" else backend.asarray(a.astype(dtype))
              for a in map(np.asarray, arrays)]
    return _original(name), inputs, dict(options), differentiable


def _assert_outputs(got, want, *, rtol=1e-9, atol=1e-9):
    for g, w in zip(_leaves(got), _leaves(want), strict=True):
        assert_close(to_numpy(g), to_numpy(w), rtol=rtol, atol=atol)


def test_every_export_has_a_mode_entry():
    """A new export needs a case in test_compile.CASES (or a reason in NOT_ARRAY_FUNCTIONS) to be run here."""
    assert set(pl.__all__) - NOT_ARRAY_FUNCTIONS == set(NAMES)
    assert set(HOST_SIDE) >= NOT_ARRAY_FUNCTIONS - {"deep_supervision"}  # deep_supervision: its loss is a case


# --------------------------------------------------------------------------- #
# Every backend: eager, options, flags, non-arrays
# --------------------------------------------------------------------------- #

def _numeric_options(f, options):
    """The keyword options of ``f`` with a number default (int or float, not bool) that the case leaves alone."""
    out = {}
    for p in inspect.signature(f).parameters.values():
        keyword = p.kind is p.KEYWORD_ONLY and p.name not in options
        if keyword and isinstance(p.default, int | float) and not isinstance(p.default, bool):
            out[p.name] = p.default
    return out


@pytest.mark.parametrize("name", NAMES)
def test_options_take_numpy_scalars_and_0d_arrays(backend, rng, name, request):
    """Every int/float option as a NumPy scalar, a 0-d NumPy array and a 0-d backend array: the same result."""
    _known(request, "options", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    numeric = _numeric_options(f, options)
    want = f(*inputs, **options)
    converters = [lambda v: np.asarray(v)[()], np.asarray, lambda v: backend.asarray(v)]
    for convert in converters[::2] if backend.is_jax else converters:  # JAX: eager calls are slow
        converted = {k: convert(v) for k, v in numeric.items()}
        _assert_outputs(f(*inputs, **options, **converted), want)


@pytest.mark.parametrize("name", NAMES)
def test_flags_take_bools_only(backend, rng, name, request):
    """``flag="False"`` (a string, which would read as True) is a TypeError naming the function and the flag."""
    _known(request, "flags", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    flags = [p.name for p in inspect.signature(f).parameters.values()
             if p.kind is p.KEYWORD_ONLY and isinstance(p.default, bool) and p.name not in options]
    for flag in flags:
        with pytest.raises(TypeError, match=rf"{name}: {flag} must be True or False"):
            f(*inputs, **{**options, flag: "False"})


@pytest.mark.parametrize("name", NAMES)
def test_non_array_input_is_a_type_error_naming_the_function(backend, rng, name, request):
    """A nested list for the first input on every backend (tests/test_domains.py names each argument in turn)."""
    _known(request, "non_array", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    with pytest.raises(TypeError, match=rf"^{name}: "):
        f(to_numpy(inputs[0]).tolist(), *inputs[1:], **options)


# --------------------------------------------------------------------------- #
# JAX
# --------------------------------------------------------------------------- #

def _jax(backend):
    if not backend.is_jax:
        pytest.skip("a JAX transformation")
    import jax

    return jax


@pytest.mark.parametrize("name", NAMES)
def test_jax_jit_with_closed_over_targets(backend, rng, name, request):
    """Targets captured by the traced function are concrete arrays, yet every operation on them is staged."""
    jax = _jax(backend)
    _known(request, "jax_jit_with_closed_over_targets", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    got = jax.jit(lambda first: f(first, *inputs[1:], **options))(inputs[0])
    _assert_outputs(got, f(*inputs, **options))


@pytest.mark.parametrize("name", JAX_FAMILY)
def test_jax_vmap_over_calls(backend, rng, name, request):
    jax = _jax(backend)
    _known(request, "jax_vmap_over_calls", backend, name)
    f, a, options, _ = _case(backend, rng, name)
    _, b, _, _ = _case(backend, rng, name)
    stacked = [backend.xp.stack([u, v]) for u, v in zip(a, b, strict=True)]
    got = jax.vmap(lambda *xs: f(*xs, **options))(*stacked)
    for i, inputs in enumerate((a, b)):
        _assert_outputs(tuple(leaf[i] for leaf in _leaves(got)), f(*inputs, **options))


def _summed(f, inputs, options):
    return lambda first: sum(leaf.sum() for leaf in _leaves(f(first, *inputs[1:], **options)))


@pytest.mark.parametrize("name", [n for n in JAX_FAMILY if n in DIFFERENTIABLE])
def test_jax_grad_of_grad(backend, rng, name, request):
    """A Hessian-vector product (``jvp`` of ``grad``) against central differences of the gradient."""
    jax = _jax(backend)
    _known(request, "jax_grad_of_grad", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    grad = jax.jit(jax.grad(_summed(f, inputs, options)))
    x, v = inputs[0], backend.asarray(rng.normal(size=inputs[0].shape))
    _, hvp = jax.jit(lambda x, v: jax.jvp(grad, (x,), (v,)))(x, v)
    h = 1e-5
    want = (to_numpy(grad(x + h * v)) - to_numpy(grad(x - h * v))) / (2 * h)
    assert_close(to_numpy(hvp), want, rtol=1e-4, atol=1e-6)


# The gradient is not the derivative of the value by design: it holds values computed from the inputs
# constant (``_backend.stop_gradient``). Its derivative is checked against central differences of the gradient
# with those values frozen at the base point (``_frozen_stop_gradients``).
SURROGATE_GRADIENT = {
    "ciou_loss": "CIoU's alpha is a constant in the gradient (torchvision computes it without grad)",
    # found by a 50-seed sweep (POLYLOSS_SEED=2026 POLYLOSS_SEEDS=50): 20 of 50 seeds off by up to 0.68 relative
    "task_aligned_loss": "the assignment and its target scores come from the detached predictions (ultralytics' "
    "assigner runs without grad), so the gradient holds them constant while central differences move them",
    "wiou_loss": "Wise-IoU's focusing factor holds the enclosing box (the paper's W_g*, H_g*) and, in v3, the "
    "IoU loss of its outlier degree constant",
}


@contextlib.contextmanager
def _frozen_stop_gradients(values, *, replay):
    """``_backend.stop_gradient`` wherever a polyloss module imported it: recording each output into
    ``values`` (``replay=False``), or returning the recorded ones in call order (``replay=True``), so that a
    surrogate gradient's constants keep their base-point values while central differences move the input."""
    original = _backend.stop_gradient
    modules = [m for n, m in list(sys.modules.items())
               if n.startswith("polyloss") and getattr(m, "stop_gradient", None) is original]
    recorded = iter(list(values))

    def stop_gradient(x, *, xp):
        if replay:
            return next(recorded)
        out = original(x, xp=xp)
        values.append(out)
        return out

    with pytest.MonkeyPatch.context() as patch:
        for module in modules:
            patch.setattr(module, "stop_gradient", stop_gradient)
        yield
    if replay:
        assert next(recorded, None) is None, "the replayed call used fewer stop_gradient values than recorded"
TRACED_OPTIONS = ("alpha", "beta", "gamma", "label_smoothing", "smooth", "epsilon", "delta", "lambda_dice",
                  "lambda_ce", "lambda_focal", "w0", "tau", "eps")


@pytest.mark.parametrize("name", JAX_FAMILY)
def test_jax_traced_float_options(backend, rng, name, request):
    """Float options swept with ``vmap`` (tracers): each result equals the eager one at that value."""
    jax = _jax(backend)
    _known(request, "jax_traced_float_options", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    numeric = {k: v for k, v in _numeric_options(f, options).items()
               if k in TRACED_OPTIONS and isinstance(v, float) and v > 0}
    for option, value in numeric.items():
        values = [value * 0.5, value]
        swept = jax.vmap(lambda v, option=option: f(*inputs, **options, **{option: v}))(
            backend.asarray(np.array(values)))
        for i, v in enumerate(values):
            _assert_outputs(tuple(leaf[i] for leaf in _leaves(swept)), f(*inputs, **options, **{option: v}))


# --------------------------------------------------------------------------- #
# torch
# --------------------------------------------------------------------------- #

def _torch(backend):
    if not backend.is_torch:
        pytest.skip("a torch mode")
    import torch

    return torch


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_torch_func_grad(backend, rng, name, request):
    torch = _torch(backend)
    _known(request, "torch_func_grad", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    got = torch.func.grad(_summed(f, inputs, options))(inputs[0])
    x = inputs[0].clone().requires_grad_(True)
    _summed(f, inputs, options)(x).backward()
    assert_close(got, to_numpy(x.grad), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_torch_func_vmap(backend, rng, name, request):
    torch = _torch(backend)
    _known(request, "torch_func_vmap", backend, name)
    f, a, options, _ = _case(backend, rng, name)
    _, b, _, _ = _case(backend, rng, name)
    stacked = [torch.stack([u, v]) for u, v in zip(a, b, strict=True)]
    got = torch.func.vmap(lambda *xs: f(*xs, **options))(*stacked)
    for i, inputs in enumerate((a, b)):
        _assert_outputs(tuple(leaf[i] for leaf in _leaves(got)), f(*inputs, **options))


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_torch_double_backward(backend, rng, name, request):
    """``autograd.grad(create_graph=True)`` then a Hessian-vector product, against central differences (float64)."""
    """A surrogate gradient (``SURROGATE_GRADIENT``) against central differences of itself, its held values
    frozen at the base point."""
    torch = _torch(backend)
    _known(request, "double_backward", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    loss = _summed(f, inputs, options)
    frozen = []

    def grad(x, create_graph=False, replay=True):
        x = x.detach().requires_grad_(True)
        held = _frozen_stop_gradients(frozen, replay=replay) if name in SURROGATE_GRADIENT else contextlib.nullcontext()
        with held:
            return torch.autograd.grad(loss(x), x, create_graph=create_graph)[0], x

    v = torch.as_tensor(rng.normal(size=tuple(inputs[0].shape)), dtype=torch.float64)
    g, x = grad(inputs[0], create_graph=True, replay=False)
    assert frozen or name not in SURROGATE_GRADIENT, "no stop_gradient value was recorded to freeze"
    # a piecewise-linear loss (box_convert, the Lovasz hinge) has a gradient that is constant in x
    hvp = torch.autograd.grad((g * v).sum(), x, allow_unused=True)[0] if g.requires_grad else None
    hvp = torch.zeros_like(x) if hvp is None else hvp
    h = 1e-5
    want = (grad(inputs[0] + h * v)[0] - grad(inputs[0] - h * v)[0]) / (2 * h)
    assert_close(hvp, to_numpy(want), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_torch_autocast_computes_in_float32(backend, rng, name, request):
    """Under ``torch.autocast("cpu", torch.bfloat16)`` float32 inputs give the float32 result."""
    torch = _torch(backend)
    _known(request, "autocast", backend, name)
    f, inputs, options, _ = _case(backend, rng, name, dtype=np.float32)
    want = f(*inputs, **options)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = f(*inputs, **options)
    for g, w in zip(_leaves(got), _leaves(want), strict=True):
        assert g.dtype == w.dtype
        assert_close(g, to_numpy(w), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_torch_inference_mode(backend, rng, name):
    torch = _torch(backend)
    f, inputs, options, _ = _case(backend, rng, name)
    with torch.inference_mode():
        got = f(*inputs, **options)
    _assert_outputs(got, f(*inputs, **options))


# --------------------------------------------------------------------------- #
# Host reads on accelerators
# --------------------------------------------------------------------------- #

# Exports that run on the host by design, with the reason; not array functions, so not counted.
HOST_SIDE = {
    "tubed_skeleton": "a target helper run once per label map on the host (scikit-image skeletonize)",
    "keras_loss": "an adapter returning a Keras loss object; the losses it wraps are counted",
    "set_checks": "a setting; it takes no array",
}


class _HostReads:
    """A ``TorchFunctionMode`` recording every tensor method that copies a value to the host."""

    def __init__(self, torch):
        t = torch.Tensor
        self.reads_of = {t.item, t.__bool__, t.tolist, t.__index__, t.nonzero, torch.nonzero, t.__float__,
                         t.__int__, t.numpy, t.cpu}
        self.reads: list[str] = []
        outer = self

        class Mode(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                if func in outer.reads_of:
                    outer.reads.append(getattr(func, "__name__", repr(func)))
                return func(*args, **(kwargs or {}))

        self.mode = Mode()


@pytest.fixture
def on_accelerator(monkeypatch):
    """Every tensor counts as if it were on an accelerator (``policy.on_host`` is False for tensors)."""
    torch = pytest.importorskip("torch", reason="the host-read count runs on torch tensors (the torch session)")

    host = policy.on_host
    monkeypatch.setattr(policy, "on_host", lambda x: not isinstance(x, torch.Tensor) and host(x))


@pytest.mark.parametrize("name", NAMES)
def test_no_host_read_on_accelerator_tensors(backend, rng, name, on_accelerator, request):
    torch = _torch(backend)
    _known(request, "host_reads", backend, name)
    f, inputs, options, _ = _case(backend, rng, name)
    recorder = _HostReads(torch)
    with recorder.mode:
        f(*inputs, **options)
    assert recorder.reads == []


def test_on_accelerator_an_invalid_label_gives_nan_and_set_checks_always_raises(backend, rng, on_accelerator):
    torch = _torch(backend)
    x = backend.asarray(rng.normal(size=(2, 3, 4, 5)))
    labels = backend.asarray(rng.integers(0, 3, size=(2, 4, 5)))
    labels[0, 0, 0] = 7
    assert bool(torch.isnan(pl.cross_entropy(x, labels)))
    assert bool(torch.isnan(pl.dice_loss(x, labels)))
    previous = pl.set_checks("always")
    try:
        with pytest.raises(ValueError, match="cross_entropy: y_true labels must lie in"):
            pl.cross_entropy(x, labels)
    finally:
        pl.set_checks(previous)


def test_set_checks_never_reads_no_value_and_rejects_unknown_modes(backend, rng):
    x = backend.asarray(rng.normal(size=(2, 3, 4, 5)))
    labels = backend.asarray(np.full((2, 4, 5), 7))
    previous = pl.set_checks("never")
    try:
        assert np.isnan(float(to_numpy(_original("cross_entropy")(x, labels))))
    finally:
        assert pl.set_checks(previous) == "never"
    with pytest.raises(ValueError, match="set_checks: mode must be one of"):
        pl.set_checks("sometimes")
    with pytest.raises(ValueError, match="cross_entropy: y_true labels must lie in"):
        _original("cross_entropy")(x, labels)


def test_cross_entropy_differentiates_a_learnable_weight(backend, rng):
    """A class weight that requires grad takes the composed path; its gradient equals autograd of the formula."""
    torch = _torch(backend)
    x = torch.as_tensor(rng.normal(size=(2, 3, 4, 5)))
    y = torch.as_tensor(rng.integers(0, 3, size=(2, 4, 5)))
    w = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64, requires_grad=True)
    _original("cross_entropy")(x, y, weight=w, label_smoothing=0.1).backward()
    ref = w.detach().clone().requires_grad_(True)
    log_p, s = torch.log_softmax(x, dim=1), 0.1
    picked = -log_p.gather(1, y[:, None])[:, 0] * ref[y]
    spread = -(log_p * ref[None, :, None, None]).sum(dim=1) / 3
    (((1 - s) * picked + s * spread).sum() / ref[y].sum()).backward()
    assert_close(w.grad, to_numpy(ref.grad), rtol=1e-10, atol=1e-12)


def test_option_errors_name_the_function_and_never_contradict_themselves(backend, rng):
    x = backend.asarray(rng.normal(size=(2, 3, 4, 5)))
    y = backend.asarray(rng.integers(0, 3, size=(2, 4, 5)))
    ce = _original("cross_entropy")
    assert_close(ce(x, y, class_axis=np.int64(1), ignore_index=np.int64(2)), to_numpy(ce(x, y, ignore_index=2)))
    with pytest.raises(ValueError, match=r"cross_entropy: class_axis must be an integer in \[-4, 3\], got 5$"):
        ce(x, y, class_axis=np.int64(5))
    with pytest.raises(TypeError, match=r"cross_entropy: class_axis must be an integer, got 1\.5"):
        ce(x, y, class_axis=1.5)
    with pytest.raises(TypeError, match="cross_entropy: label_smoothing must be a real number"):
        ce(x, y, label_smoothing="0.1")
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must lie in"):
        ce(x, y, label_smoothing=np.float32(1.5))
    with pytest.raises(TypeError, match="dice_loss: from_logits must be True or False, got 'False'"):
        _original("dice_loss")(x, y, from_logits="False")
