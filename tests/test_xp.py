"""The primitives of ``polyloss._backend``: every native path against the generic core, on every backend.

``_backend`` hands each backend the entry of its native table (``_backend.NATIVE``)
and the generic core (``_backend.generic``) otherwise. Here each primitive is
called both ways on the same inputs, the generic way by emptying the tables:
values must agree (to float64 rounding, exactly for permutations and counts)
and, on backends with autodiff, so must the gradient of a random weighting
of every floating output. The generic path is also compared with a float64
NumPy reference (``tests/reference.py`` or the formula written here), so
that a shared mistake cannot hide. The tables are enumerated: every entry
must have a generic twin of the same signature, a case here, and be reached
by the dispatch; CuPy's are checked where CuPy runs.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_close, to_numpy
from reference import np_log_sigmoid, np_log_softmax, np_one_hot, np_sigmoid, np_softmax

from polyloss import _backend
from polyloss._backend import generic


def _reference_class_sums(p, labels, valid, axis):
    pc = p if axis == 1 else np.moveaxis(p, 2, 1)
    hot = np_one_hot(labels, pc.shape[1]) * (1.0 if valid is None else valid[:, None])
    total = (pc * (1.0 if valid is None else valid[:, None])).sum(-1)
    return total, (pc * hot).sum(-1), hot.sum(-1)


def _reference_fused_sums(x, target, valid, axis, activation, squared):
    """psum, tp, tsum of activation(x) by dense float64 arrays, everything moved to (N, C, M) first."""
    xc = x if axis == 1 else np.moveaxis(x, 2, 1)
    p = np_softmax(xc, 1) if activation == "softmax" else np_sigmoid(xc)
    t = np_one_hot(target, xc.shape[1]) if target.ndim == 2 else (target if axis == 1 else np.moveaxis(target, 2, 1))
    v = np.ones(p.shape) if valid is None else (valid[:, None] if valid.ndim == 2 else
                                               (valid if axis == 1 else np.moveaxis(valid, 2, 1)))
    power = 2 if squared else 1
    return (v * p**power).sum(-1), (v * p * t).sum(-1), (v * t**power).sum(-1)


def _reference_fused_nll(x, labels, valid, weight, axis, gamma, squared):
    """``fused_class_sums_nll``: the sums, and per sample sum of -w_y (1 - p_y)^gamma log p_y over valid pixels."""
    sums = _reference_fused_sums(x, labels, valid, axis, "softmax", squared)
    log_p = np_log_softmax(x, axis)
    log_q = np.take_along_axis(log_p, np.expand_dims(labels, axis), axis).squeeze(axis)
    w = np.ones(labels.shape) if weight is None else weight[labels]
    loss = -w * (1 - np.exp(log_q)) ** gamma * log_q * (1.0 if valid is None else valid)
    return (*sums, loss.sum(-1))


def _reference_max_pool(x, window, pad_value):
    """Moving maximum by an explicit loop over window offsets (float64 NumPy)."""
    nd = len(window)
    fill = -np.inf if pad_value is None else pad_value
    pads = [(0, 0)] * (x.ndim - nd) + [(w // 2, w // 2) for w in window]
    padded = np.pad(x, pads, constant_values=fill)
    out = np.full(x.shape, -np.inf)
    for offset in np.ndindex(*window):
        index = (Ellipsis, *(slice(o, o + n) for o, n in zip(offset, x.shape[x.ndim - nd :], strict=True)))
        out = np.maximum(out, padded[index])
    return out


def _reference_unpermute(x, perm):
    """``out[..., perm[..., k]] = x[..., k]`` by an explicit loop over rows."""
    out = np.empty_like(x)
    for row in np.ndindex(*x.shape[:-1]):
        out[row][perm[row]] = x[row]
    return out


def _reference_edt(fg, sampling):
    """Distance of every element of each image to its nearest zero by brute force (float64 NumPy); the
    image diagonal in an image without zeros."""
    nd = len(sampling)
    images = fg.reshape(-1, *fg.shape[fg.ndim - nd :])
    points = np.stack(np.indices(images.shape[1:]), axis=-1).reshape(-1, nd) * np.asarray(sampling)
    out = []
    for image in images:
        zeros = points[~image.reshape(-1)]
        if len(zeros) == 0:
            out.append(np.full(image.shape, np.sqrt(((np.asarray(image.shape) * sampling) ** 2).sum())))
            continue
        d2 = ((points[:, None, :] - zeros[None, :, :]) ** 2).sum(-1).min(1)
        out.append(np.sqrt(d2).reshape(image.shape))
    return np.stack(out).reshape(fg.shape)


def _edt_case(rng, shape, sampling):
    fg = rng.random(shape) < 0.7
    fg[0] = True  # an image without zeros: its diagonal everywhere
    return fg, (), {"sampling": sampling, "dtype": "float64"}, False, lambda x: _reference_edt(x, sampling)


def _reference_ce(x, y, w, ignore, s, reduction):
    """l_m = -(1 - s) w_y log p_my - s/C sum_c w_c log p_mc for kept pixels (0 at ignored ones), by a loop
    (float64 NumPy, class axis 1); "mean" divides the sum by sum_m w_{y_m} over kept pixels (torch's rule)."""
    n, c, m = x.shape
    w = np.ones(c) if w is None else w
    loss, den = np.zeros((n, m)), 0.0
    for i in range(n):
        for j in range(m):
            if y[i, j] == ignore:
                continue
            logp = x[i, :, j] - np.log(np.exp(x[i, :, j]).sum())
            loss[i, j] = -(1 - s) * w[y[i, j]] * logp[y[i, j]] - s / c * (w * logp).sum()
            den += w[y[i, j]]
    return {"none": loss, "sum": loss.sum(), "mean": loss.sum() / den}[reduction]


def _ce_case(rng, *, axis, weight, ignore, s, reduction):
    x, y = rng.normal(size=(2, 3, 5)), rng.integers(0, 3, size=(2, 5))
    if ignore is not None:
        y[0, 1] = ignore
    w = None if weight is None else np.asarray(weight)
    options = {"axis": axis, "weight": w, "ignore_index": ignore, "label_smoothing": s, "reduction": reduction}
    return (x if axis == 1 else np.moveaxis(x, 1, 2)), (y,), options, True, \
        lambda *_: _reference_ce(x, y, w, ignore, s, reduction)


def _bce_case(rng, *, pos_weight, reduction):
    """l = -(b t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), b = pos_weight (1 without), mean or sum."""
    x, t = rng.normal(size=(2, 3, 4)), rng.random((2, 3, 4))
    b = 1.0 if pos_weight is None else pos_weight

    def reference(x, t):
        loss = -(b * t * -np.logaddexp(0, -x) + (1 - t) * -np.logaddexp(0, x))
        return loss.mean() if reduction == "mean" else loss.sum()

    return x, (t,), {"pos_weight": pos_weight, "reduction": reduction}, True, reference


def _logits(rng, shape=(3, 4, 5)):
    return rng.normal(scale=3.0, size=shape)


# name -> builder(rng) -> (x as float64 NumPy, further positional NumPy inputs, options, differentiable, reference)
# ``reference`` is a NumPy function of (x, *inputs) giving the expected outputs, or None where checked below.
PRIMITIVES = {
    "log_softmax": lambda rng: (_logits(rng), (), {"axis": 1}, True, lambda x: np_log_softmax(x, 1)),
    "softmax": lambda rng: (_logits(rng), (), {"axis": -1}, True, lambda x: np_softmax(x, -1)),
    "logsumexp": lambda rng: (_logits(rng), (), {"axis": 1}, True,
                              lambda x: np.log(np.exp(x).sum(1))),
    "logsumexp_keepdims": lambda rng: (_logits(rng), (), {"axis": 2, "keepdims": True}, True,
                                       lambda x: np.log(np.exp(x).sum(2, keepdims=True))),
    "softplus": lambda rng: (_logits(rng), (), {}, True, lambda x: -np_log_sigmoid(-x)),
    "log_sigmoid": lambda rng: (_logits(rng), (), {}, True, np_log_sigmoid),
    "sigmoid": lambda rng: (_logits(rng), (), {}, True, np_sigmoid),
    "clamped_log": lambda rng: (np.concatenate([[0.0, 1e-300], rng.random(10)]), (), {}, True,
                                lambda x: np.maximum(np.log(np.maximum(x, np.finfo(np.float64).tiny)), -100)),
    "clip": lambda rng: (_logits(rng), (), {"min": -1.0, "max": 2.5}, True, lambda x: np.clip(x, -1.0, 2.5)),
    "cumulative_sum": lambda rng: (_logits(rng), (), {"axis": -1}, True, lambda x: np.cumsum(x, -1)),
    "clip_below": lambda rng: (_logits(rng), (), {"min": 0.5}, True, lambda x: np.maximum(x, 0.5)),
    "take_along_axis": lambda rng: (_logits(rng), (rng.integers(0, 4, size=(3, 1, 5)),), {"axis": 1}, True,
                                    lambda x, i: np.take_along_axis(x, i, axis=1)),
    "sort_descending": lambda rng: (_logits(rng, (3, 40)), (), {"stable": True}, True, None),
    # ties (no -0: the bitcast key orders +0 before -0, argsort keeps them in place)
    "sort_descending_ties": lambda rng: (np.round(_logits(rng, (2, 50))) + 0.0, (), {"stable": True}, True, None),
    "unpermute": lambda rng: (_logits(rng, (3, 2, 30)), (np.argsort(rng.random((3, 2, 30)), axis=-1),), {}, True,
                              lambda x, perm: _reference_unpermute(x, perm)),
    # k-th largest per row: ties, -0 beside +0, -inf and +inf, k from 1 to the row length
    "kth_largest": lambda rng: (
        np.concatenate([np.round(_logits(rng, (4, 30))), np.array([[-0.0, 0.0, -np.inf, np.inf]] * 4)], axis=1),
        (np.array([[1], [7], [33], [34]]),), {}, False,
        lambda x, k: np.take_along_axis(-np.sort(-x, axis=-1), k - 1, axis=-1)),
    "softmax_nll": lambda rng: (_logits(rng), (rng.integers(0, 4, size=(3, 5)),), {"axis": 1}, True,
                                lambda x, y: -np.take_along_axis(np_log_softmax(x, 1), y[:, None], 1)[:, 0]),
    "softmax_nll_last": lambda rng: (_logits(rng), (rng.integers(0, 5, size=(3, 4)),), {"axis": -1}, True,
                                     lambda x, y: -np.take_along_axis(np_log_softmax(x, -1), y[..., None], -1)[..., 0]),
    "sigmoid_cross_entropy": lambda rng: (_logits(rng), ((rng.random((3, 4, 5)) < 0.4) * 1.0,), {}, True,
                                          lambda x, t: -(t * np_log_sigmoid(x) + (1 - t) * np_log_sigmoid(-x))),
    "sigmoid_cross_entropy_pos_weight": lambda rng: (
        _logits(rng), (rng.random((3, 4, 5)),), {"pos_weight": 2.5}, True,
        lambda x, t: -(2.5 * t * np_log_sigmoid(x) + (1 - t) * np_log_sigmoid(-x))),
    "one_hot": lambda rng: (rng.integers(0, 4, size=(2, 3, 5)), (), {"num_classes": 4, "axis": 1, "dtype": "float64"},
                            False, lambda y: np_one_hot(y, 4, 1)),
    "one_hot_out_of_range": lambda rng: (np.array([[0, 3, -1], [4, 2, 1]]), (),
                                         {"num_classes": 4, "axis": -1, "dtype": "float64"}, False,
                                         lambda y: np.eye(5)[np.where((y < 0) | (y > 3), 4, y)][..., :4]),
    "class_sums": lambda rng: (rng.random((3, 4, 30)), (rng.integers(0, 4, size=(3, 30)), None), {"axis": 1}, True,
                               lambda p, y, v: _reference_class_sums(p, y, v, 1)),
    "class_sums_valid": lambda rng: (rng.random((3, 30, 4)), (rng.integers(0, 4, size=(3, 30)),
                                                              rng.random((3, 30)) < 0.7), {"axis": 2}, True,
                                     lambda p, y, v: _reference_class_sums(p, y, v, 2)),
    "fused_class_sums": lambda rng: (_logits(rng, (3, 4, 30)), (rng.integers(0, 4, size=(3, 30)), None),
                                     {"axis": 1, "activation": "softmax", "squared": False}, True,
                                     lambda x, y, v: _reference_fused_sums(x, y, v, 1, "softmax", False)),
    "fused_class_sums_masked_squared": lambda rng: (
        _logits(rng, (3, 30, 4)), (rng.integers(0, 4, size=(3, 30)), rng.random((3, 30)) < 0.7),
        {"axis": 2, "activation": "softmax", "squared": True}, True,
        lambda x, y, v: _reference_fused_sums(x, y, v, 2, "softmax", True)),
    "fused_class_sums_dense_sigmoid": lambda rng: (
        _logits(rng, (3, 4, 30)), (rng.random((3, 4, 30)), rng.random((3, 4, 30)) < 0.7),
        {"axis": 1, "activation": "sigmoid", "squared": True}, True,
        lambda x, t, v: _reference_fused_sums(x, t, v, 1, "sigmoid", True)),
    "fused_class_sums_nll": lambda rng: (
        _logits(rng, (3, 4, 30)), (rng.integers(0, 4, size=(3, 30)), rng.random((3, 30)) < 0.7, rng.random(4) + 0.5),
        {"axis": 1, "gamma": 0.0, "squared": False}, True,
        lambda x, y, v, w: _reference_fused_nll(x, y, v, w, 1, 0.0, False)),
    "fused_class_sums_nll_focal": lambda rng: (
        _logits(rng, (3, 30, 4)), (rng.integers(0, 4, size=(3, 30)), None, None),
        {"axis": 2, "gamma": 2.0, "squared": True}, True,
        lambda x, y, v, w: _reference_fused_nll(x, y, v, w, 2, 2.0, True)),
    "max_argmax": lambda rng: (_logits(rng), (), {"axis": 1}, True, lambda x: (x.max(1), x.argmax(1))),
    # ties: the first maximum wins (not differentiable there: torch's max(dim) and amax split the gradient apart)
    "max_argmax_ties": lambda rng: (np.round(_logits(rng)), (), {"axis": 1}, False,
                                    lambda x: (x.max(1), x.argmax(1))),
    "segment_max": lambda rng: (rng.integers(-5, 50, size=40), (rng.integers(0, 6, size=40),),
                                {"num_segments": 8, "fill": -1}, False,
                                lambda v, i: np.array([max([-1, *v[i == j]]) for j in range(8)])),
    "segment_max_empty": lambda rng: (np.zeros(0, dtype=np.int64), (np.zeros(0, dtype=np.int64),),
                                      {"num_segments": 3, "fill": 7}, False, lambda v, i: np.full(3, 7)),
    "moveaxis": lambda rng: (_logits(rng, (2, 3, 4, 5)), (), {"source": 3, "destination": 1}, True,
                             lambda x: np.moveaxis(x, 3, 1)),
    "unstack": lambda rng: (_logits(rng), (), {"axis": 1}, True, lambda x: tuple(np.moveaxis(x, 1, 0))),
    "stop_gradient": lambda rng: (_logits(rng), (), {}, False, lambda x: x),
    "max_pool_2d": lambda rng: (_logits(rng, (2, 3, 7, 6)), (), {"window": (3, 5)}, True,
                                lambda x: _reference_max_pool(x, (3, 5), None)),
    "max_pool_3d_padded": lambda rng: (_logits(rng, (2, 5, 4, 6)), (), {"window": (3, 1, 3), "pad_value": 0.0}, True,
                                       lambda x: _reference_max_pool(x, (3, 1, 3), 0.0)),
    "max_pool_1d": lambda rng: (_logits(rng, (3, 9)), (), {"window": (5,)}, True,
                                lambda x: _reference_max_pool(x, (5,), None)),
    "softmax_cross_entropy": lambda rng: _ce_case(rng, axis=1, weight=None, ignore=None, s=0.0, reduction="none"),
    "softmax_cross_entropy_smoothed_sum": lambda rng: _ce_case(rng, axis=2, weight=[0.5, 2.0, 1.0], ignore=255,
                                                               s=0.1, reduction="sum"),
    "softmax_cross_entropy_weighted_mean": lambda rng: _ce_case(rng, axis=1, weight=[0.5, 2.0, 1.0], ignore=255,
                                                                s=0.0, reduction="mean"),
    "softmax_cross_entropy_smoothed_mean": lambda rng: _ce_case(rng, axis=-1, weight=None, ignore=255, s=0.2,
                                                                reduction="mean"),
    "reduced_sigmoid_cross_entropy": lambda rng: _bce_case(rng, pos_weight=None, reduction="mean"),
    "reduced_sigmoid_cross_entropy_pos_weight": lambda rng: _bce_case(rng, pos_weight=2.5, reduction="sum"),
    "reduced_sigmoid_cross_entropy_per_class": lambda rng: _bce_case(
        rng, pos_weight=np.array([0.5, 1.0, 3.0])[:, None], reduction="mean"),
    "distance_transform": lambda rng: _edt_case(rng, (3, 7, 6), (1.0, 1.5)),
    "distance_transform_3d": lambda rng: _edt_case(rng, (2, 4, 5, 6), (0.5, 2.0, 1.5)),
    "min_pool_2d": lambda rng: (_logits(rng, (2, 6, 7)), (), {"window": (3, 3), "pad_value": 1.0}, True,
                                lambda x: -_reference_max_pool(-x, (3, 3), -1.0)),
}


def _name(case):
    """The primitive a case exercises (``max_pool_2d`` -> ``max_pool``)."""
    return next(n for n in sorted(_backend.__all__, key=len, reverse=True) if case == n or case.startswith(n + "_"))


def _outputs(result):
    return list(result) if isinstance(result, tuple | list) else [result]


def _call(case, backend, x, inputs, options):
    """``_backend``'s primitive of ``case`` on ``x`` and the further inputs (NumPy, moved to ``backend``)."""
    options = {k: backend.asarray(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    if options.get("dtype") == "float64":
        options["dtype"] = backend.xp.float64
    inputs = [None if a is None else backend.asarray(a) for a in inputs]
    return getattr(_backend, _name(case))(x, *inputs, **options, xp=backend.xp)


@contextlib.contextmanager
def _generic_only():
    """``_backend`` with every native table emptied: each primitive takes the generic core."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_backend, "NATIVE", {kind: {} for kind in _backend.NATIVE})
        yield


def _weighted_sum(outputs, weights, xp):
    """A scalar of every floating output, each weighted elementwise, so one gradient checks them all."""
    total = 0.0
    for out, w in zip(outputs, weights, strict=True):
        if w is not None:
            total = total + xp.sum(out * w)
    return total


@pytest.mark.parametrize("case", sorted(PRIMITIVES))
def test_native_path_equals_generic(backend, rng, case):
    x_np, inputs, options, differentiable, reference = PRIMITIVES[case](rng)
    x = backend.asarray(x_np)
    native = _outputs(_call(case, backend, x, inputs, options))
    with _generic_only():
        plain = _outputs(_call(case, backend, x, inputs, options))
    assert len(native) == len(plain)
    xp = backend.xp
    for got, want in zip(native, plain, strict=True):
        if xp.isdtype(want.dtype, "integral"):  # an index: its width may differ (JAX sorts with int32)
            assert xp.isdtype(got.dtype, "integral"), f"native dtype {got.dtype} is not an integer"
        else:
            assert got.dtype == want.dtype, f"native dtype {got.dtype} != generic {want.dtype}"
        assert_close(got, to_numpy(want), rtol=1e-12, atol=1e-12)
    if reference is not None:
        want = _outputs(reference(x_np, *inputs))
        for got, expected in zip(plain, want, strict=True):
            assert_close(got, expected, rtol=1e-12, atol=1e-12)
    if not (differentiable and backend.has_autodiff):
        return
    weights = [backend.asarray(rng.normal(size=tuple(o.shape))) if xp.isdtype(o.dtype, "real floating") else None
               for o in native]

    def objective(z):
        return _weighted_sum(_outputs(_call(case, backend, z, inputs, options)), weights, xp)

    value, grad = backend.value_and_grad(objective, x)
    with _generic_only():
        value_generic, grad_generic = backend.value_and_grad(objective, x)
    assert_close(value, value_generic, rtol=1e-12, atol=1e-12)
    assert_close(grad, grad_generic, rtol=1e-10, atol=1e-12)


TABLE_ENTRIES = sorted((kind, name) for kind, table in _backend.NATIVE.items() for name in table)

# entries whose values are checked by their own test here, each with one call through ``_backend``
TESTED_ALONE = {
    "value_range": lambda backend: _backend.value_range(backend.asarray(np.arange(3)), xp=backend.xp),
    "linear_sum_assignment": lambda backend: _backend.native_linear_sum_assignment(
        backend.asarray(np.zeros((1, 2, 2))), backend.asarray(np.ones((1, 2), bool)),
        backend.asarray(np.ones((1, 2), bool)), xp=backend.xp),
    "while_loop": lambda backend: _collatz(backend.asarray(np.array([6, 7, 1])), xp=backend.xp),
    "map_problems": lambda backend: _backend.map_problems(
        _count_down, (backend.asarray(np.ones((2, 3))), backend.asarray(np.arange(6).reshape(2, 3))), xp=backend.xp),
}
# The one entry without a generic twin: SciPy's exact matching on host arrays, reached through
# ``_backend.native_linear_sum_assignment`` (None where it cannot serve: the caller's solver runs on the
# device). Its generic counterpart is a kernel of its own (detection/_lsa.py), checked against SciPy in
# tests/test_set_prediction.py.
NATIVE_ONLY = ("linear_sum_assignment",)


def _signature(f):
    return list(inspect.signature(f).parameters.values())


def _parameters(f):
    return [(p.name, p.kind, p.default) for p in _signature(f)]


@pytest.mark.parametrize(("kind", "name"), TABLE_ENTRIES)
def test_native_entry_has_a_generic_twin_and_a_case(kind, name):
    """Every entry of every table (CuPy's too, checked here without CuPy) replaces a primitive of ``_backend``
    with the same signature, and ``PRIMITIVES`` (or a test of its own) runs it."""
    entry = _backend.NATIVE[kind][name]
    if name in NATIVE_ONLY:
        assert callable(getattr(_backend, f"native_{name}")) and name in TESTED_ALONE
        return
    twin = getattr(generic, name)
    assert _parameters(getattr(_backend, name)) == _parameters(twin), f"_backend.{name} differs from generic.{name}"
    assert _parameters(entry) == _parameters(twin), f"{kind}'s {name} differs from its generic twin's signature"
    assert name in TESTED_ALONE or any(_name(case) == name for case in PRIMITIVES), f"no case exercises {name}"


class _Reached(Exception):
    pass


def _reached(*args, **kwargs):
    raise _Reached


def test_dispatch_reaches_every_native_entry(backend, rng, monkeypatch):
    """``_backend`` calls each entry of the backend's table (a typo in a key would silently serve the generic one)."""
    kind = _backend.native_kind(backend.xp)
    assert kind == {"array_api_strict": "generic"}.get(backend.name, backend.name.split("-")[0])
    for name in _backend.NATIVE[kind]:
        monkeypatch.setitem(_backend.NATIVE[kind], name, _reached)
        with pytest.raises(_Reached):
            if name in TESTED_ALONE:
                TESTED_ALONE[name](backend)
            else:
                case = next(c for c in sorted(PRIMITIVES) if _name(c) == name)
                x_np, inputs, options, _, _ = PRIMITIVES[case](rng)
                _call(case, backend, backend.asarray(x_np), inputs, options)
        monkeypatch.undo()


def test_every_primitive_has_a_case():
    """Each primitive of ``_backend`` (a function taking the keyword ``xp=``) is exercised by ``PRIMITIVES`` or a test
    of its own."""
    primitives = {n for n in _backend.__all__ if inspect.isfunction(f := getattr(_backend, n))
                  and ("xp", inspect.Parameter.KEYWORD_ONLY) in [(p.name, p.kind) for p in _signature(f)]}
    tested_elsewhere = {"zero_like", "value_range", "any_spatial", "host_view", "native_linear_sum_assignment",
                        "while_loop", "map_problems"}
    assert primitives - tested_elsewhere <= {_name(c) for c in PRIMITIVES}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sort_descending_is_a_stable_descending_permutation(backend, rng, dtype):
    """The bitcast-key paths against NumPy's stable argsort of ``-x``, with ties and infinities.

    (Signed zeros are left out: the bitcast key puts +0 before -0, ``argsort`` keeps them in place.)
    """
    x = np.round(rng.normal(scale=3.0, size=(4, 300))).astype(dtype) + 0.0  # + 0.0: no -0
    x[0, :3] = [np.inf, -np.inf, np.inf]
    values, perm = _backend.sort_descending(backend.asarray(x), stable=True, xp=backend.xp)
    want = np.argsort(-x, axis=-1, kind="stable")
    np.testing.assert_array_equal(to_numpy(perm), want)
    np.testing.assert_array_equal(to_numpy(values), np.take_along_axis(x, want, -1))
    assert values.dtype == backend.float_dtype(dtype)


def _collatz(x, *, xp):
    """Collatz steps of each positive integer of ``x`` until every one reaches 1: ``(steps, x)`` via ``while_loop``."""

    def body(state):
        steps, v = state
        going = v != 1
        return steps + xp.astype(going, steps.dtype), xp.where(going, xp.where(v % 2 == 0, v // 2, 3 * v + 1), v)

    return _backend.while_loop(lambda state: xp.any(state[1] != 1), body, (xp.zeros_like(x), x), xp=xp)


def _np_collatz(n):
    steps = 0
    while n != 1:
        n, steps = (n // 2 if n % 2 == 0 else 3 * n + 1), steps + 1
    return steps


def test_while_loop_native_equals_generic(backend, rng):
    """The backend's loop (``lax.while_loop``; torch's higher-order op while compiling) against the Python loop
    and a per-element NumPy count: a data-dependent step count, several carried arrays."""
    start = rng.integers(1, 60, size=(3, 5))
    want = np.vectorize(_np_collatz)(start)
    x = backend.asarray(start)
    native = _collatz(x, xp=backend.xp)
    with _generic_only():
        plain = _collatz(x, xp=backend.xp)
    for got in (native, plain):
        assert_close(got[0], want, rtol=0, atol=0)
        assert_close(got[1], np.ones_like(start), rtol=0, atol=0)
    if backend.is_jax:
        import jax

        assert_close(jax.jit(lambda v: _collatz(v, xp=backend.xp))(x)[0], want, rtol=0, atol=0)
    elif backend.is_torch:
        import torch

        torch._dynamo.reset()
        compiled = torch.compile(lambda v: _collatz(v, xp=backend.xp), fullgraph=True, backend="aot_eager")
        assert_close(compiled(x)[0], want, rtol=0, atol=0)


def _count_down(x, start):
    """A batch of problems solved by an eager loop that reads its stop condition: subtract 1 from ``start`` until
    every entry is 0, adding ``x`` each step (``(B, n)`` inputs, ``x * start`` out)."""
    xp = _backend.array_namespace(x, start)
    total, left = x * 0, start
    while bool(xp.any(left > 0)):
        more = left > 0
        total, left = total + xp.where(more, x, 0.0), left - xp.astype(more, left.dtype)
    return total


def test_map_problems_native_equals_generic(backend, rng):
    x = backend.asarray(rng.normal(size=(3, 4)))
    start = backend.asarray(rng.integers(0, 5, size=(3, 4)))
    got = _backend.map_problems(_count_down, (x, start), xp=backend.xp)
    assert_close(got, to_numpy(x) * to_numpy(start), rtol=1e-12, atol=1e-12)


def test_map_problems_folds_torch_func_vmap_into_the_problem_axis(rng):
    """Under ``torch.func.vmap`` (nested, with an unbatched input) the loop runs on plain tensors and each slice
    equals the call on it: the loop's ``bool`` would fail on a batched tensor."""
    torch = pytest.importorskip("torch")
    x = torch.tensor(rng.normal(size=(2, 5, 3, 4)))
    start = torch.tensor(rng.integers(0, 5, size=(3, 4)))

    def solve(a, s):
        return _backend.map_problems(_count_down, (a, s), xp=_backend.array_namespace(a))

    got = torch.func.vmap(torch.func.vmap(solve, in_dims=(0, None)), in_dims=(0, None))(x, start)
    assert_close(got, x.numpy() * start.numpy(), rtol=1e-12, atol=1e-12)


def test_value_range(backend, rng):
    labels = rng.integers(-3, 9, size=(5, 7))
    assert _backend.value_range(backend.asarray(labels), xp=backend.xp) == (labels.min(), labels.max())
    with _generic_only():
        assert _backend.value_range(backend.asarray(labels), xp=backend.xp) == (labels.min(), labels.max())


def test_namespace_device_and_concreteness(backend, rng):
    """``array_namespace`` and ``device`` answer as array-api-compat does; an array made here is concrete."""
    import array_api_compat

    x = backend.asarray(rng.normal(size=(2, 3)))
    assert _backend.array_namespace(x) is array_api_compat.array_namespace(x)
    assert _backend.array_namespace(x, None, 2.0) is array_api_compat.array_namespace(x)
    assert _backend.device(x) == array_api_compat.device(x)
    assert _backend.is_concrete(x)
    with pytest.raises(TypeError, match="Multiple namespaces"):
        _backend.array_namespace(x, np.ones(2) if backend.name != "numpy" else _foreign(backend))


def _foreign(backend):
    strict = pytest.importorskip("array_api_strict")
    return strict.ones(2)


def _code(module):
    """``module``'s source without comments and docstrings."""
    source = inspect.getsource(module)
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    return re.sub(r'"""[\s\S]*?"""', "", code)


def test_generic_core_names_no_framework():
    """``_backend.generic`` is the standard-only core: it imports no framework and calls no native kernel."""
    code = _code(generic)
    for name in ("torch", "jax", "numpy", "cupy", "scipy"):
        assert not re.search(rf"\b{name}\b", code), f"_backend.generic names {name}"


@pytest.mark.parametrize("kind", ["torch", "jax", "cupy"])
def test_native_tables_import_their_framework_lazily(kind):
    """``_backend`` loads every table at import, so a table names its framework only inside functions:
    importing polyloss never imports torch, JAX or CuPy."""
    module = inspect.getmodule(next(iter(_backend.NATIVE[kind].values())))
    top_level = [line for line in _code(module).splitlines() if re.match(r"(import|from) ", line)]
    assert not [line for line in top_level if re.search(rf"\b{kind}\b|\bcupyx\b", line)], top_level


@pytest.mark.parametrize("name", ["clip", "cumulative_sum"])
def test_family_modules_call_the_primitive(name):
    """``xp.clip`` breaks ``torch.compile(dynamic=True)`` (array-api-compat calls ``math.isnan`` on the bounds),
    and it and ``xp.cumulative_sum`` make Dynamo warn (they look the namespace up through ``lru_cache``).

    The package calls ``_backend.clip`` / ``_backend.cumulative_sum`` (``torch.clamp`` /
    ``torch.cumsum`` on torch) instead; this catches a new direct call before
    the compile matrix does.
    """
    package = Path(_backend.__file__).parents[1]
    offenders = [f"{p.relative_to(package)}:{i}" for p in sorted(package.rglob("*.py")) if p != Path(generic.__file__)
                 for i, line in enumerate(p.read_text().splitlines(), 1) if f"xp.{name}(" in line]
    assert not offenders, f"call {name}(..., xp=xp) from polyloss._backend instead of xp.{name}: {offenders}"


def test_assert_close_checks_namespace_dtype_and_shape(backend):
    """The test helper itself: a result of the wrong namespace, dtype or shape fails however close its values."""
    x = backend.asarray(np.ones(3))
    assert_close(x, np.ones(3), dtype="float64")
    with pytest.raises(AssertionError, match="dtype"):
        assert_close(x, np.ones(3), dtype="float32")
    with pytest.raises(AssertionError, match="shape"):
        assert_close(x, np.ones((1, 3)))
    if backend.name != "array_api_strict":
        strict = pytest.importorskip("array_api_strict")
        with pytest.raises(AssertionError, match="namespace"):
            assert_close(strict.ones(3, dtype=strict.float64), np.ones(3))
