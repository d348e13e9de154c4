"""Region losses against the peers themselves (the ``parity`` nox session): smp and MONAI.

Every class is present in the targets here: smp zeroes the loss of classes
absent from the target, where we score the published formula.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close, random_binary, random_labels, random_logits, random_probabilities

import polyloss as pl

torch = pytest.importorskip("torch")

N, C, H, W = 3, 4, 7, 5


def _multiclass(rng, ignore_index=None):
    return random_logits(rng, (N, C, H, W)), random_labels(rng, (N, H, W), C, ignore_index=ignore_index)


def _t(a):
    return torch.tensor(a)


# --------------------------------------------------------------------------- #
# segmentation_models_pytorch
# --------------------------------------------------------------------------- #

SMP_OPTIONS = [
    {},
    {"smooth": 0.3, "log_loss": True},
    {"ignore_index": 255},
    {"classes": [1, 3], "class_weights": [0.5, 2.0, 1.0, 0.7]},
]


@pytest.mark.parametrize("options", SMP_OPTIONS, ids=["plain", "smooth+log", "ignore", "classes+weights"])
@pytest.mark.parametrize("name", ["DiceLoss", "JaccardLoss", "TverskyLoss"])
def test_multiclass_equals_smp(backend, rng, name, options):
    smp = pytest.importorskip("segmentation_models_pytorch.losses")
    x, y = _multiclass(rng, options.get("ignore_index"))
    extra = {"alpha": 0.3, "beta": 0.8} if name == "TverskyLoss" else {}
    peer = getattr(smp, name)("multiclass", **options, **extra)
    ours = {"smooth": 0.0, **options}  # smp's default smooth is 0; ours is 1e-5
    if "class_weights" in ours:
        ours["weight"] = ours.pop("class_weights")
    if name == "DiceLoss" and "smooth" in ours:
        ours["smooth"] *= 2  # smp's Dice smooth s is ours 2s
    if name == "TverskyLoss":
        ours.pop("log_loss", None)
        if options.get("log_loss"):
            pytest.skip("our tversky_loss has no log_loss")
    fn = {"DiceLoss": pl.dice_loss, "JaccardLoss": pl.jaccard_loss, "TverskyLoss": pl.tversky_loss}[name]
    got = fn(backend.asarray(x), backend.asarray(y), **ours, **extra)
    rtol = 1e-6 if "class_weights" in options else 1e-9  # smp keeps class_weights in float32
    assert_close(got, peer(_t(x), _t(y)).numpy(), rtol=rtol)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
def test_sigmoid_modes_equal_smp(backend, rng, mode):
    smp = pytest.importorskip("segmentation_models_pytorch.losses")
    c = 1 if mode == "binary" else C
    x = random_logits(rng, (N, c, H, W))
    t = random_binary(rng, x.shape, share=0.4)
    for name, fn in (("DiceLoss", pl.dice_loss), ("JaccardLoss", pl.jaccard_loss)):
        got = fn(backend.asarray(x), backend.asarray(t), mode=mode, smooth=0.0)  # smp's default smooth
        assert_close(got, getattr(smp, name)(mode)(_t(x), _t(t)).numpy(), rtol=1e-9)
    # binary with ignored pixels (integer targets)
    if mode == "binary":
        ti = t.astype(np.int64)
        ti[rng.random(ti.shape) < 0.2] = -1
        got = pl.dice_loss(backend.asarray(x), backend.asarray(ti), mode=mode, ignore_index=-1, smooth=0.0)
        want = smp.DiceLoss(mode, ignore_index=-1)(_t(x), _t(ti).double())
        assert_close(got, want.numpy(), rtol=1e-9)


def test_tversky_gamma_is_smp_mean_to_the_gamma(backend, rng):
    smp = pytest.importorskip("segmentation_models_pytorch.losses")
    x, y = _multiclass(rng)
    ours = pl.tversky_loss(backend.asarray(x), backend.asarray(y), alpha=0.7, beta=0.3, smooth=0.0)
    want = smp.TverskyLoss("multiclass", alpha=0.7, beta=0.3, gamma=1.7)(_t(x), _t(y)).numpy()
    assert_close(np.asarray(ours) ** 1.7 if backend.name == "numpy" else ours.cpu().numpy() ** 1.7, want,
                 rtol=1e-9)


def test_mcc_equals_smp(backend, rng):
    smp = pytest.importorskip("segmentation_models_pytorch.losses")
    p = rng.uniform(size=(N, 1, H, W))
    t = random_binary(rng, p.shape, share=0.4)
    got = pl.mcc_loss(backend.asarray(p), backend.asarray(t), mode="binary", from_logits=False, smooth=1e-5,
                      smooth_all=True)
    assert_close(got, smp.MCCLoss(eps=1e-5)(_t(p), _t(t)).numpy(), rtol=1e-9)


# --------------------------------------------------------------------------- #
# MONAI
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("batch", [True, False])
@pytest.mark.parametrize("options", [{}, {"squared_pred": True}, {"jaccard": True}, {"include_background": False},
                                     {"smooth_nr": 0.5, "smooth_dr": 0.5}],
                         ids=["plain", "squared", "jaccard", "no-background", "smooth"])
def test_dice_equals_monai(backend, rng, batch, options):
    monai = pytest.importorskip("monai.losses")
    x, y = _multiclass(rng)
    smooth = options.get("smooth_nr", 1e-5)
    want = monai.DiceLoss(softmax=True, to_onehot_y=True, batch=batch, **{"smooth_nr": smooth, "smooth_dr": smooth,
                                                                          **options})(_t(x), _t(y[:, None])).numpy()
    ours = {"per_image": not batch, "smooth": smooth}
    fn = pl.dice_loss
    if options.get("squared_pred"):
        ours["squared"] = True
    if options.get("jaccard"):
        fn, ours["smooth"] = pl.jaccard_loss, smooth / 2
    if options.get("include_background") is False:
        ours["classes"] = list(range(1, C))
    rtol = 1e-6 if options.get("squared_pred") else 1e-9  # MONAI squares the float32 one-hot's norm in float32
    assert_close(fn(backend.asarray(x), backend.asarray(y), **ours), want, rtol=rtol)


def test_dice_soft_label_and_sigmoid_equal_monai(backend, rng):
    monai = pytest.importorskip("monai.losses")
    x = random_logits(rng, (N, C, H, W))
    t = random_probabilities(rng, x.shape, 1)
    want = monai.DiceLoss(sigmoid=True, soft_label=True, batch=True, reduction="none")(_t(x), _t(t)).numpy()
    got = pl.dice_loss(backend.asarray(x), backend.asarray(t), mode="multilabel", soft_label=True, smooth=1e-5,
                       reduction="none")
    assert_close(got, want.reshape(C), rtol=1e-9)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_generalized_dice_equals_monai(backend, rng, w_type, batch, reduction):
    monai = pytest.importorskip("monai.losses")
    x, y = _multiclass(rng)
    y[0][y[0] == 2] = 3  # class 2 absent from sample 0: MONAI's infinite-weight rule
    want = monai.GeneralizedDiceLoss(softmax=True, to_onehot_y=True, w_type=w_type, batch=batch,
                                     reduction=reduction)(_t(x), _t(y[:, None])).numpy()
    got = pl.generalized_dice_loss(backend.asarray(x), backend.asarray(y), weight_type=w_type, per_image=not batch,
                                   smooth=1e-5, reduction=reduction)
    # MONAI computes the class weights from a float32 volume: float32 rounding
    assert_close(got, want.reshape(np.shape(got)) if reduction == "none" else want, rtol=1e-6)


@pytest.mark.parametrize("lambdas", [(1.0, 1.0), (0.3, 1.7)])
def test_dice_cross_entropy_equals_monai(backend, rng, lambdas):
    monai = pytest.importorskip("monai.losses")
    x, y = _multiclass(rng)
    want = monai.DiceCELoss(softmax=True, to_onehot_y=True, lambda_dice=lambdas[0],
                            lambda_ce=lambdas[1])(_t(x), _t(y[:, None])).numpy()
    got = pl.dice_cross_entropy_loss(backend.asarray(x), backend.asarray(y), per_image=True, smooth=1e-5,
                                     lambda_dice=lambdas[0], lambda_ce=lambdas[1])
    assert_close(got, want, rtol=1e-9)


def test_dice_cross_entropy_with_weight_equals_monai_up_to_mean_weight(backend, rng):
    monai = pytest.importorskip("monai.losses")
    x, y = _multiclass(rng)
    w = np.array([0.5, 2.0, 1.0, 0.7])
    want = monai.DiceCELoss(softmax=True, to_onehot_y=True, weight=_t(w))(_t(x), _t(y[:, None])).numpy()
    xs, ys = backend.asarray(x), backend.asarray(y)
    dice = pl.dice_loss(xs, ys, per_image=True, smooth=1e-5, weight=w)
    ce = pl.cross_entropy(xs, ys, weight=w)
    got = pl.dice_cross_entropy_loss(xs, ys, per_image=True, smooth=1e-5, weight=w)
    assert_close(got, np.asarray(dice) + np.asarray(ce) if backend.name == "numpy" else (dice + ce).cpu().numpy(),
                 rtol=1e-12)
    assert_close(dice * w.mean() + ce if backend.name == "numpy" else (dice * w.mean() + ce).cpu().numpy(), want,
                 rtol=1e-9)
