"""Train today's detector heads on synthetic boxes and score them with the COCO evaluator.

Three runs on the same images (one to three rectangles of two classes):

* a DETR-style head in PyTorch: a few learned queries decode a small feature map
  with two transformer decoder layers; every layer's output is scored by
  ``polyloss.set_prediction_loss`` (Hungarian matching batched on the device,
  auxiliary losses through the leading layer axis), compiled with
  ``torch.compile(fullgraph=True)`` unless ``--no-compile``;
* the same head in Flax NNX, trained under ``nnx.jit`` with an optax optimizer;
* a YOLO-style anchor-free head in PyTorch (classes and a distribution over
  ``REG_MAX`` distance bins per side, at every stride-8 cell) trained with
  ``polyloss.task_aligned_loss``.

Each prints held-out COCO mAP@[.5:.95] and mAP@.5 from pycocotools' ``COCOeval``
(the ``coco`` extra: ``pip install polyloss-xp[coco]``).

    python examples/set_prediction.py                  # about two minutes on 2 CPU cores
    python examples/set_prediction.py --smoke          # a few steps: checks that it runs
    python examples/set_prediction.py --write-results  # also examples/results/set_prediction.{json,md}
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _boxes import SIZE, coco_map, cxcywh_to_xyxy, make_boxes, xyxy_to_cxcywh

import polyloss as pl

CLASSES, QUERIES, DIM, LAYERS = 2, 8, 64, 2
GRID, STRIDE, REG_MAX = SIZE // 8, 8, 8
RESULTS = Path(__file__).resolve().parent / "results"


# --------------------------------------------------------------------------- PyTorch


def torch_models():
    import torch
    from torch import nn

    def backbone(out: int) -> nn.Module:  # stride 8: (N, 3, 48, 48) -> (N, out, 6, 6)
        return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(64, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    class DETR(nn.Module):
        """Queries decode the flattened features; returns every layer's (class logits, cxcywh boxes)."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone, self.pos = backbone(DIM), nn.Parameter(0.02 * torch.randn(GRID * GRID, DIM))
            self.queries = nn.Parameter(torch.randn(QUERIES, DIM))
            self.decoder = nn.ModuleList(nn.TransformerDecoderLayer(DIM, 4, 2 * DIM, dropout=0.0, batch_first=True)
                                         for _ in range(LAYERS))
            self.cls = nn.Linear(DIM, CLASSES + 1)  # the last class is "no object"
            self.box = nn.Sequential(nn.Linear(DIM, DIM), nn.ReLU(), nn.Linear(DIM, 4))

        def forward(self, x):
            memory = self.backbone(x).flatten(2).transpose(1, 2) + self.pos
            q, layers = self.queries.expand(len(x), -1, -1), []
            for layer in self.decoder:
                q = layer(q, memory)
                layers.append(q)
            h = torch.stack(layers)  # (L, N, Q, DIM)
            return self.cls(h), self.box(h).sigmoid()

    class YOLO(nn.Module):
        """One anchor point per stride-8 cell: class logits and REG_MAX bins for each of l, t, r, b."""

        def __init__(self) -> None:
            super().__init__()
            self.backbone, self.head = backbone(64), nn.Conv2d(64, CLASSES + 4 * REG_MAX, 1)

        def forward(self, x):
            out = self.head(self.backbone(x)).flatten(2).transpose(1, 2)  # (N, A, C + 4 REG_MAX)
            return out[..., :CLASSES], out[..., CLASSES:]

    return DETR, YOLO


def anchor_points() -> np.ndarray:
    """Cell centres in pixels, row-major, ``(GRID * GRID, 2)`` as (x, y)."""
    centres = (np.arange(GRID, dtype=np.float32) + 0.5) * STRIDE
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def train_torch(kind: str, steps: int, batch: int, seed: int, compile_loss: bool, held_out) -> dict:
    import torch

    torch.manual_seed(seed)
    detr, yolo = torch_models()
    model = detr() if kind == "detr" else yolo()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    points = torch.from_numpy(anchor_points())
    if kind == "detr":
        loss_of = pl.set_prediction_loss
    else:
        def loss_of(cls, dist, labels, boxes, valid):
            return pl.task_aligned_loss(cls, dist, points, STRIDE, labels, boxes * SIZE, valid, reg_max=REG_MAX)
    loss_fn = torch.compile(loss_of, fullgraph=True) if compile_loss else loss_of
    rng, losses, start = np.random.default_rng(seed), [], time.perf_counter()
    for _ in range(steps):
        images, boxes, labels, valid = (torch.from_numpy(a) for a in make_boxes(rng, batch, classes=CLASSES))
        target = torch.from_numpy(xyxy_to_cxcywh(boxes.numpy())) if kind == "detr" else boxes
        loss = loss_fn(*model(images), labels, target, valid)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    with torch.no_grad():
        out = model(torch.from_numpy(held_out[0]))
    detections = detr_detections(*(o[-1].numpy() for o in out)) if kind == "detr" else \
        yolo_detections(out[0].sigmoid().numpy(), out[1].numpy())
    return evaluate(losses, seconds, held_out, detections)


# --------------------------------------------------------------------------- JAX / Flax NNX


def train_flax(steps: int, batch: int, seed: int, held_out) -> dict:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    class DecoderLayer(nnx.Module):
        """Self-attention among the queries, cross-attention to the features, a feed-forward block (post-norm)."""

        def __init__(self, rngs: nnx.Rngs) -> None:
            attention = dict(num_heads=4, in_features=DIM, decode=False, rngs=rngs)
            self.self_attn, self.cross_attn = nnx.MultiHeadAttention(**attention), nnx.MultiHeadAttention(**attention)
            self.ff1, self.ff2 = nnx.Linear(DIM, 2 * DIM, rngs=rngs), nnx.Linear(2 * DIM, DIM, rngs=rngs)
            self.norms = nnx.List([nnx.LayerNorm(DIM, rngs=rngs) for _ in range(3)])

        def __call__(self, q, memory):
            q = self.norms[0](q + self.self_attn(q))
            q = self.norms[1](q + self.cross_attn(q, memory))
            return self.norms[2](q + self.ff2(nnx.relu(self.ff1(q))))

    class DETR(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.convs = nnx.List([nnx.Conv(i, o, (3, 3), rngs=rngs) for i, o in ((3, 32), (32, 64), (64, DIM))])
            self.pos = nnx.Param(0.02 * jax.random.normal(rngs.params(), (GRID * GRID, DIM)))
            self.queries = nnx.Param(jax.random.normal(rngs.params(), (QUERIES, DIM)))
            self.decoder = nnx.List([DecoderLayer(rngs) for _ in range(LAYERS)])
            self.cls = nnx.Linear(DIM, CLASSES + 1, rngs=rngs)
            self.box1, self.box2 = nnx.Linear(DIM, DIM, rngs=rngs), nnx.Linear(DIM, 4, rngs=rngs)

        def __call__(self, x):  # x: (N, H, W, 3), channels last
            for conv in self.convs:
                x = nnx.max_pool(nnx.relu(conv(x)), (2, 2), strides=(2, 2))
            memory = x.reshape(x.shape[0], -1, DIM) + self.pos[...]
            q, layers = jnp.broadcast_to(self.queries[...], (x.shape[0], QUERIES, DIM)), []
            for layer in self.decoder:
                q = layer(q, memory)
                layers.append(q)
            h = jnp.stack(layers)
            return self.cls(h), nnx.sigmoid(self.box2(nnx.relu(self.box1(h))))

    model = DETR(nnx.Rngs(seed))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-3, weight_decay=1e-4), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, images, boxes, labels, valid):
        def loss_fn(model):
            logits, pred = model(images)
            return pl.set_prediction_loss(logits, pred, labels, boxes, valid)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    rng, losses, start = np.random.default_rng(seed), [], time.perf_counter()
    for _ in range(steps):
        images, boxes, labels, valid = make_boxes(rng, batch, classes=CLASSES)
        loss = step(model, optimizer, jnp.asarray(images.transpose(0, 2, 3, 1)), jnp.asarray(xyxy_to_cxcywh(boxes)),
                    jnp.asarray(labels), jnp.asarray(valid))
        losses.append(float(loss))
    seconds = time.perf_counter() - start
    logits, pred = model(jnp.asarray(held_out[0].transpose(0, 2, 3, 1)))
    return evaluate(losses, seconds, held_out, detr_detections(np.asarray(logits[-1]), np.asarray(pred[-1])))


# --------------------------------------------------------------------------- decoding and scoring (host side)


def detr_detections(logits: np.ndarray, boxes: np.ndarray):
    """Every query is a detection: its most likely object class, that probability, its box."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (e / e.sum(-1, keepdims=True))[..., :CLASSES]
    return cxcywh_to_xyxy(boxes), probs.max(-1), probs.argmax(-1)


def yolo_detections(scores: np.ndarray, dist: np.ndarray, keep: int = 20, iou_threshold: float = 0.6):
    """The integral decode of each side's bins, then greedy class-wise NMS on the host; ``keep`` best per image."""
    ltrb = np.asarray(pl.integral_decode(dist.reshape(*dist.shape[:-1], 4, REG_MAX))) * STRIDE
    points = anchor_points()
    xyxy = np.concatenate([points - ltrb[..., :2], points + ltrb[..., 2:]], axis=-1) / SIZE
    out_boxes, out_scores, out_labels = [], [], []
    for b in range(len(scores)):  # evaluation only: a loop over images is fine here
        score, label, order = scores[b].max(-1), scores[b].argmax(-1), np.argsort(-scores[b].max(-1))
        kept: list[int] = []
        for i in order:
            same = [k for k in kept if label[k] == label[i]]
            if not same or np.asarray(pl.box_iou(xyxy[b, i][None], xyxy[b, same])).max() < iou_threshold:
                kept.append(int(i))
            if len(kept) == keep:
                break
        out_boxes.append(xyxy[b, kept]), out_scores.append(score[kept]), out_labels.append(label[kept])
    return out_boxes, out_scores, out_labels


def evaluate(losses: list[float], seconds: float, held_out, detections) -> dict:
    _, boxes, labels, valid = held_out
    m, m50 = coco_map(boxes, labels, valid, *detections, classes=CLASSES)
    if not np.all(np.isfinite(losses)):
        raise RuntimeError("non-finite training loss")
    return {"steps": len(losses), "first_loss": losses[0], "last_loss": float(np.mean(losses[-20:])),
            "map": m, "map50": m50, "seconds": seconds}


RUNS = {
    "DETR head, set_prediction_loss (PyTorch)": ("torch", "detr"),
    "DETR head, set_prediction_loss (Flax NNX, jax.jit)": ("jax", "detr"),
    "YOLO head, task_aligned_loss (PyTorch)": ("torch", "yolo"),
}


def write_results(results: dict, args: argparse.Namespace) -> None:
    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("torch", "jax", "flax", "pycocotools")}
    header = (f"Written by `python examples/set_prediction.py --write-results` on "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()}, Python "
              f"{platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()) +
              f"; {args.steps} steps of batch {args.batch_size}, seed {args.seed}, {args.eval_size} held-out images.")
    lines = [header, "", "| run | loss (first → mean of last 20) | COCO mAP | mAP@.5 |", "|---|---|---|---|"]
    lines += [f"| {name} | {r['first_loss']:.2f} → {r['last_loss']:.2f} | {r['map']:.3f} | {r['map50']:.3f} |"
              for name, r in results.items()]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "set_prediction.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "set_prediction.json").write_text(json.dumps({"header": header, "runs": results}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=None, help="training steps per run (default 400; 3 with --smoke)")
    p.add_argument("--batch-size", type=int, default=None, help="default 32; 4 with --smoke")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frameworks", default="torch,jax", help="comma-separated: torch, jax")
    p.add_argument("--no-compile", action="store_true", help="run the PyTorch losses eagerly")
    p.add_argument("--smoke", action="store_true", help="a few steps on small batches: checks that it runs")
    p.add_argument("--write-results", action="store_true", help="write examples/results/set_prediction.{json,md}")
    args = p.parse_args(argv)
    args.steps = args.steps or (3 if args.smoke else 400)
    args.batch_size = args.batch_size or (4 if args.smoke else 32)
    args.eval_size = 8 if args.smoke else 200
    held_out = make_boxes(np.random.default_rng(args.seed + 1), args.eval_size, classes=CLASSES)
    frameworks, results = args.frameworks.split(","), {}
    for name, (framework, kind) in RUNS.items():
        if framework not in frameworks:
            continue
        if framework == "jax":
            results[name] = train_flax(args.steps, args.batch_size, args.seed, held_out)
        else:
            results[name] = train_torch(kind, args.steps, args.batch_size, args.seed, not args.no_compile, held_out)
        r = results[name]
        print(f"{name:<52} loss {r['first_loss']:.2f} -> {r['last_loss']:.2f}   COCO mAP {r['map']:.3f}   "
              f"mAP@.5 {r['map50']:.3f}   {r['seconds']:.0f} s")
    if args.write_results:
        write_results(results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
