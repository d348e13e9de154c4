"""Generalized focal and rotated-box losses: forward + backward, medians of interleaved rounds.

No peer is installable (these losses live inside mmdet / mmrotate / ultralytics),
so each is compared with a plain torch implementation of the same formula
written here the way those code bases write it: covariance matrices built with
``bmm``, determinants and inverses of 2 x 2 matrices, ``F.binary_cross_entropy_with_logits``.
torch eager on 1e5 box pairs / 1e5 x 20 logits; jax.jit(value_and_grad) for the
polyloss calls; ``rotated_box_iou`` on 300 x 300 pairs (polyloss only).
Run: python benchmarks/rotated.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Table, jax_step, main, measure, optional_import, torch_step

import polyloss as pl

COMMAND = "python benchmarks/rotated.py"


def _rotated_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate([rng.random((n, 2)) * 100, rng.uniform(4, 40, (n, 2)), rng.uniform(-np.pi, np.pi, (n, 1))], -1)
    p = t + np.concatenate([rng.normal(scale=3, size=(n, 2)), rng.normal(scale=2, size=(n, 2)),
                            rng.normal(scale=0.2, size=(n, 1))], -1)
    p[:, 2:4] = np.abs(p[:, 2:4]) + 1
    return p.astype(np.float32), t.astype(np.float32)


# --------------------------------------------------------------------------- #
# Plain torch, the matrix formulas as the detection code bases write them
# --------------------------------------------------------------------------- #


def _sigma(boxes, scale=0.25):
    import torch

    wh = boxes[:, 2:4].clamp(1e-7, 1e7)
    c, s = torch.cos(boxes[:, 4]), torch.sin(boxes[:, 4])
    rot = torch.stack((c, -s, s, c), -1).reshape(-1, 2, 2)
    diag = torch.diag_embed(scale * wh**2)
    return boxes[:, :2], rot.bmm(diag).bmm(rot.transpose(1, 2))


def _post(d):
    """mmrotate's normalisation with fun="log1p", tau=1."""
    return 1 - 1 / (1 + d.log1p())


def gwd_torch(p, t):
    mp, sp = _sigma(p)
    mt, st = _sigma(t)
    tr = sp.diagonal(dim1=-2, dim2=-1).sum(-1) + st.diagonal(dim1=-2, dim2=-1).sum(-1)
    det_sqrt = (sp.det() * st.det()).clamp(1e-7).sqrt()
    coupling = (sp.bmm(st).diagonal(dim1=-2, dim2=-1).sum(-1) + 2 * det_sqrt).clamp(1e-7).sqrt()
    d = (((mp - mt) ** 2).sum(-1) + tr - 2 * coupling).clamp(1e-7).sqrt() / (2 * det_sqrt.sqrt().sqrt())
    return _post(d).mean()


def kld_torch(p, t):
    import torch

    mp, sp = _sigma(p)
    mt, st = _sigma(t)
    inv = torch.stack((sp[:, 1, 1], -sp[:, 0, 1], -sp[:, 1, 0], sp[:, 0, 0]), -1).reshape(-1, 2, 2)
    inv = inv / sp.det()[:, None, None]
    d = (mp - mt)[:, :, None]
    kl = 0.5 * (d.transpose(1, 2).bmm(inv).bmm(d).reshape(-1) + inv.bmm(st).diagonal(dim1=-2, dim2=-1).sum(-1)
                + sp.det().log() - st.det().log()) - 1
    return _post(kl.clamp(1e-7).sqrt()).mean()


def probiou_torch(p, t, eps=1e-7):
    _, sp = _sigma(p, 1 / 12)
    _, st = _sigma(t, 1 / 12)
    a1, b1, c1 = sp[:, 0, 0], sp[:, 1, 1], sp[:, 0, 1]
    a2, b2, c2 = st[:, 0, 0], st[:, 1, 1], st[:, 0, 1]
    dx, dy = p[:, 0] - t[:, 0], p[:, 1] - t[:, 1]
    den = (a1 + a2) * (b1 + b2) - (c1 + c2) ** 2
    t1 = ((a1 + a2) * dy**2 + (b1 + b2) * dx**2 - 2 * (c1 + c2) * dx * dy) / (den + eps) * 0.25
    root = ((a1 * b1 - c1**2).clamp(0) * (a2 * b2 - c2**2).clamp(0)).sqrt()
    t3 = (den / (4 * root + eps) + eps).log() * 0.5
    return (1 - (-(t1 + t3).clamp(eps, 100.0)).exp() + eps).sqrt().mean()


def kfiou_torch(p, t, beta=1 / 9, eps=1e-6):
    import torch

    _, sp = _sigma(p)
    _, st = _sigma(t)
    c, s = torch.cos(t[:, 4]), torch.sin(t[:, 4])
    dx, dy = p[:, 0] - t[:, 0], p[:, 1] - t[:, 1]
    wh = t[:, 2:4].clamp(1e-7, 1e7)
    off = torch.stack(((dx * c + dy * s) / wh[:, 0], (dy * c - dx * s) / wh[:, 1]), -1).abs()
    centre = torch.where(off < beta, 0.5 * off**2 / beta, off - 0.5 * beta).sum(-1)
    v_p, v_t = 4 * sp.det().sqrt(), 4 * st.det().sqrt()
    sigma = sp - sp.bmm(torch.linalg.inv(sp + st)).bmm(sp)
    v = 4 * sigma.det().clamp(0).sqrt()
    return (centre + 1 - v / (v_p + v_t - v + eps)).clamp(0).mean()


def qfl_torch(x, y, beta=2.0):
    import torch.nn.functional as F

    return ((y - x.sigmoid()).abs() ** beta * F.binary_cross_entropy_with_logits(x, y, reduction="none")).mean()


def vfl_torch(x, q, alpha=0.75, gamma=2.0):
    import torch.nn.functional as F

    weight = q * (q > 0) + alpha * x.sigmoid() ** gamma * (q <= 0)
    return (F.binary_cross_entropy_with_logits(x, q, reduction="none") * weight).mean()


def dfl_torch(x, y):
    import torch.nn.functional as F

    left = y.long().clamp(max=x.shape[-1] - 2)
    wl = left + 1 - y
    flat = x.reshape(-1, x.shape[-1])
    ce_l = F.cross_entropy(flat, left.reshape(-1), reduction="none").reshape(y.shape)
    ce_r = F.cross_entropy(flat, (left + 1).reshape(-1), reduction="none").reshape(y.shape)
    return (ce_l * wl + ce_r * (1 - wl)).mean()


# --------------------------------------------------------------------------- #


ROTATED = {"gwd_loss": gwd_torch, "kld_loss": kld_torch, "probiou_loss": probiou_torch, "kfiou_loss": kfiou_torch}
FOCAL = {"quality_focal_loss": qfl_torch, "varifocal_loss": vfl_torch}


def _focal_inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = rng.normal(size=(n, 20)).astype(np.float32)
    q = np.where(rng.random((n, 20)) < 0.05, rng.random((n, 20)), 0).astype(np.float32)
    bins = rng.normal(size=(n // 4, 4, 17)).astype(np.float32)
    dist = rng.uniform(0, 16, size=(n // 4, 4)).astype(np.float32)
    return x, q, bins, dist


def _torch_cases(table: Table, quick: bool, rng: np.random.Generator) -> None:
    import torch

    n = 10_000 if quick else 100_000
    rounds = 7 if quick else 15
    p, t = (torch.tensor(a) for a in _rotated_pairs(rng, n))
    for name, plain in ROTATED.items():
        ours = getattr(pl, name)
        impls = {"polyloss": torch_step(ours, p, t), "plain torch (matrix formula)": torch_step(plain, p, t)}
        table.add(f"{name} {n} pairs", "torch eager", measure(impls, rounds=rounds))
        values = float(ours(p, t)), float(plain(p, t))
        table.notes.append(f"{name} values, polyloss vs plain torch: {values[0]:.6f} vs {values[1]:.6f}")
    x, q, bins, dist = (torch.tensor(a) for a in _focal_inputs(rng, n))
    for name, plain in FOCAL.items():
        table.add(f"{name} {n} x 20", "torch eager", measure({
            "polyloss": torch_step(getattr(pl, name), x, q), "plain torch": torch_step(plain, x, q)}, rounds=rounds))
    table.add(f"distribution_focal_loss {n // 4} x 4 x 17", "torch eager", measure({
        "polyloss": torch_step(pl.distribution_focal_loss, bins, dist), "plain torch (two cross entropies)":
        torch_step(dfl_torch, bins, dist)}, rounds=rounds))
    m = 100 if quick else 300
    a, b = (torch.tensor(v) for v in _rotated_pairs(rng, m))
    table.add(f"rotated_box_iou {m} x {m}", "torch eager", measure(
        {"polyloss": torch_step(lambda u, v: pl.rotated_box_iou(u, v).sum(), a, b)}, rounds=5 if quick else 9))


def _jax_cases(table: Table, quick: bool, rng: np.random.Generator) -> None:
    import jax.numpy as jnp

    n = 10_000 if quick else 100_000
    rounds = 7 if quick else 15
    p, t = (jnp.asarray(a) for a in _rotated_pairs(rng, n))
    for name in ROTATED:
        step = jax_step(getattr(pl, name), p, t)
        table.add(f"{name} {n} pairs", "jax.jit", measure({"polyloss": step}, rounds=rounds))
    x, q, bins, dist = (jnp.asarray(a) for a in _focal_inputs(rng, n))
    for name in FOCAL:
        step = jax_step(getattr(pl, name), x, q)
        table.add(f"{name} {n} x 20", "jax.jit", measure({"polyloss": step}, rounds=rounds))
    table.add(f"distribution_focal_loss {n // 4} x 4 x 17", "jax.jit",
              measure({"polyloss": jax_step(pl.distribution_focal_loss, bins, dist)}, rounds=rounds))
    m = 100 if quick else 300
    a, b = (jnp.asarray(v) for v in _rotated_pairs(rng, m))
    table.add(f"rotated_box_iou {m} x {m}", "jax.jit", measure(
        {"polyloss": jax_step(lambda u, v: pl.rotated_box_iou(u, v).sum(), a, b)}, rounds=5 if quick else 9))


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    title = "Generalized focal and rotated-box losses: forward + backward"
    table = Table(title, COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(table, quick, rng)
    if optional_import("jax") is not None:
        _jax_cases(table, quick, rng)
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
