"""Detection losses against their peers: forward + backward, medians of interleaved rounds.

torch eager: GIoU / DIoU / CIoU vs torchvision.ops on 1e5 box pairs; SSD
MultiBox (32 images x 8732 priors x 21 classes) vs a per-image loop written in
torch (matching as SSD does it, one image at a time, then mining and losses).
jax.jit(value_and_grad): the same polyloss calls; the MultiBox compile time is
reported in a note.
Run: python benchmarks/detection.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Table, jax_step, main, measure, optional_import, torch_step

import polyloss as pl

COMMAND = "python benchmarks/detection.py"


def _box_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.random((n, 2)) * 100
    t = np.concatenate([xy, xy + rng.random((n, 2)) * 50 + 1], axis=-1)
    p = t + rng.normal(scale=5.0, size=(n, 4))
    p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 0.5)
    return p.astype(np.float32), t.astype(np.float32)


def ssd_priors() -> np.ndarray:
    """The 8732 SSD300 priors (cxcywh, unit square): 6 feature maps, 4 or 6 boxes per cell."""
    maps = [(38, 8, 30, 60, (2,)), (19, 16, 60, 111, (2, 3)), (10, 32, 111, 162, (2, 3)),
            (5, 64, 162, 213, (2, 3)), (3, 100, 213, 264, (2,)), (1, 300, 264, 315, (2,))]
    out = []
    for size, step, s_min, s_max, ratios in maps:
        for i in range(size):
            for j in range(size):
                cx, cy = (j + 0.5) * step / 300, (i + 0.5) * step / 300
                s, s2 = s_min / 300, np.sqrt(s_min * s_max) / 300
                out += [(cx, cy, s, s), (cx, cy, s2, s2)]
                for r in ratios:
                    out += [(cx, cy, s * np.sqrt(r), s / np.sqrt(r)), (cx, cy, s / np.sqrt(r), s * np.sqrt(r))]
    return np.clip(np.array(out), 0, 1)


def _ssd_batch(rng: np.random.Generator, n: int, g: int, c: int) -> list[np.ndarray]:
    priors = ssd_priors().astype(np.float32)
    xy = rng.random((n, g, 2)) * 0.7
    boxes = np.concatenate([xy, xy + rng.random((n, g, 2)) * 0.3 + 0.05], axis=-1).astype(np.float32)
    labels = rng.integers(1, c, size=(n, g))
    valid = rng.random((n, g)) < 0.6
    valid[:, 0] = True
    loc = rng.normal(scale=0.5, size=(n, priors.shape[0], 4)).astype(np.float32)
    conf = rng.normal(size=(n, priors.shape[0], c)).astype(np.float32)
    return [loc, conf, boxes, labels, valid, priors]


def multibox_per_image_loop(loc, conf, gt_boxes, gt_labels, gt_valid, priors, threshold=0.5, ratio=3):
    """The classic formulation, one image at a time in torch (ssd.pytorch's structure): the peer."""
    import torch
    import torch.nn.functional as F

    pri = torch.cat([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], dim=1)
    total, num_pos = loc.new_zeros(()), 0
    for b in range(loc.shape[0]):
        truths, labels = gt_boxes[b][gt_valid[b]], gt_labels[b][gt_valid[b]]
        lt = torch.max(truths[:, None, :2], pri[None, :, :2])
        rb = torch.min(truths[:, None, 2:], pri[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        area_t = (truths[:, 2:] - truths[:, :2]).prod(-1)
        overlaps = inter / (area_t[:, None] + priors[None, :, 2:].prod(-1) - inter)
        best_prior = overlaps.argmax(1)
        best_overlap, best_truth = overlaps.max(0)
        best_overlap = best_overlap.index_fill(0, best_prior, 2.0)
        for j in range(best_prior.shape[0]):
            best_truth[best_prior[j]] = j
        matched = truths[best_truth]
        cls = torch.where(best_overlap < threshold, 0, labels[best_truth])
        pos = cls > 0
        target = torch.cat([((matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]) / (0.1 * priors[:, 2:]),
                            torch.log((matched[:, 2:] - matched[:, :2]) / priors[:, 2:]) / 0.2], dim=1)
        loss_l = F.smooth_l1_loss(loc[b][pos], target[pos], reduction="sum")
        ce = F.cross_entropy(conf[b], cls, reduction="none")
        mining = ce.detach().masked_fill(pos, -float("inf"))
        order = mining.argsort(descending=True, stable=True)
        neg = torch.zeros_like(pos)
        neg[order[: ratio * int(pos.sum())]] = True
        neg &= ~pos
        total = total + loss_l + ce[pos | neg].sum()
        num_pos += int(pos.sum())
    return total / max(num_pos, 1)


def _torch_cases(table: Table, quick: bool, rng: np.random.Generator) -> None:
    import torch

    n = 10_000 if quick else 100_000
    p, t = (torch.tensor(a) for a in _box_pairs(rng, n))
    tv_ops = optional_import("torchvision.ops")
    if tv_ops is None:
        table.notes.append("torchvision does not import here (it lives in /work/parity-venv): its rows are missing")
    peers = {"giou_loss": "generalized_box_iou_loss", "diou_loss": "distance_box_iou_loss",
             "ciou_loss": "complete_box_iou_loss"}
    for name in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss", "eiou_loss"):
        ours = getattr(pl, name)
        impls = {"polyloss": torch_step(lambda a, b, f=ours: f(a, b, reduction="mean"), p, t)}
        if tv_ops is not None and name in peers:
            peer = getattr(tv_ops, peers[name])
            impls[f"torchvision.ops.{peers[name]}"] = torch_step(lambda a, b, f=peer: f(a, b, reduction="mean"), p, t)
        table.add(f"{name} {n} pairs", "torch eager", measure(impls, rounds=7 if quick else 15))

    shape = (4, 21) if quick else (32, 21)
    args = [torch.tensor(a) for a in _ssd_batch(rng, shape[0], 12, shape[1])]

    def step(fn):
        loc = args[0].clone().requires_grad_(True)
        conf = args[1].clone().requires_grad_(True)

        def run() -> None:
            loc.grad = conf.grad = None
            fn(loc, conf, *args[2:]).backward()

        return run

    floor_labels = torch.zeros(shape[0] * args[1].shape[1], dtype=torch.int64)

    def cross_entropy_alone(loc, conf, *_):
        """The cross entropy over every prior that both implementations compute: a floor for either."""
        return torch.nn.functional.cross_entropy(conf.reshape(-1, conf.shape[-1]), floor_labels)
    table.add(f"multibox_loss {shape[0]} x 8732 x {shape[1]}", "torch eager", measure({
        "polyloss": step(pl.multibox_loss),
        "per-image loop (ssd.pytorch structure)": step(multibox_per_image_loop),
        "F.cross_entropy over all priors alone (a floor)": step(cross_entropy_alone),
    }, rounds=5 if quick else 11))
    check = float(pl.multibox_loss(*args)), float(multibox_per_image_loop(*args))
    table.notes.append(f"multibox_loss values, polyloss vs per-image loop: {check[0]:.6f} vs {check[1]:.6f}")


def _jax_cases(table: Table, quick: bool, rng: np.random.Generator) -> None:
    import jax
    import jax.numpy as jnp

    n = 10_000 if quick else 100_000
    p, t = (jnp.asarray(a) for a in _box_pairs(rng, n))
    for name in ("giou_loss", "diou_loss", "ciou_loss", "eiou_loss"):
        table.add(f"{name} {n} pairs", "jax.jit", measure(
            {"polyloss": jax_step(getattr(pl, name), p, t)}, rounds=7 if quick else 15))

    shape = (4, 21) if quick else (32, 21)
    loc, conf, *rest = (jnp.asarray(a) for a in _ssd_batch(rng, shape[0], 12, shape[1]))
    f = jax.jit(jax.value_and_grad(pl.multibox_loss, argnums=(0, 1)))
    t0 = time.perf_counter()
    jax.block_until_ready(f(loc, conf, *rest))
    compile_s = time.perf_counter() - t0
    table.add(f"multibox_loss {shape[0]} x 8732 x {shape[1]}", "jax.jit", measure(
        {"polyloss": lambda: jax.block_until_ready(f(loc, conf, *rest))}, rounds=5 if quick else 11))
    table.notes.append(f"jax.jit(value_and_grad(multibox_loss)) first call (trace + compile + run): {compile_s:.2f} s")


def run(quick: bool) -> list[Table]:
    rng = np.random.default_rng(0)
    table = Table("Detection losses: forward + backward", COMMAND + (" --quick" if quick else ""))
    if optional_import("torch") is not None:
        _torch_cases(table, quick, rng)
    if optional_import("jax") is not None:
        _jax_cases(table, quick, rng)
    return [table]


if __name__ == "__main__":
    main(run, __doc__)
