"""Synthetic, strongly imbalanced segmentation data and mean IoU, in plain NumPy.

Every example trains on the same task: a few small shapes (discs, squares,
triangles) on a large textured background. Foreground covers about 5% of the
pixels (1.3% to 2.2% per class), so a model that predicts background everywhere
is 95% pixel-accurate and scores a mean foreground IoU of exactly 0: accuracy
says nothing here, IoU does.

What makes it more than a threshold:

* the background is a smooth random colour texture plus pixel noise, and holds
  soft "distractor" blobs of random colour that are not objects;
* each object's colour is a mix of its class colour and a random colour, so
  colour alone is ambiguous and the shape (sharp edges, corners, size) matters;
* shapes are rotated and sized at random, and may overlap (the later one wins).

Everything is deterministic in ``seed``; ``split`` gives independent streams
for training and evaluation. No deep-learning framework is imported here.
"""

from __future__ import annotations

import numpy as np

CLASSES = ("background", "disc", "square", "triangle")
NUM_CLASSES = len(CLASSES)
# Class colours (RGB in [0, 1]); an object's colour is half its class colour, half a random colour.
_CLASS_COLOURS = np.array([[0.95, 0.25, 0.2], [0.2, 0.9, 0.3], [0.25, 0.35, 0.95]])
_SPLITS = {"train": 0, "eval": 1, "test": 2}


def _smooth_texture(rng: np.random.Generator, size: int, channels: int, cells: int) -> np.ndarray:
    """Low-frequency noise: a (cells x cells) random grid, bilinearly upsampled to (size, size, channels)."""
    grid = rng.uniform(0.0, 1.0, size=(cells + 1, cells + 1, channels))
    pos = np.linspace(0.0, cells, size, endpoint=False) + 0.5 * cells / size
    i = np.minimum(pos.astype(np.int64), cells - 1)
    f = (pos - i)[:, None]
    rows = grid[i] * (1 - f[:, :, None]) + grid[i + 1] * f[:, :, None]  # (size, cells+1, ch)
    return rows[:, i] * (1 - f.T[:, :, None]) + rows[:, i + 1] * f.T[:, :, None]


def _shape_mask(kind: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float, angle: float) -> np.ndarray:
    """Boolean mask of one filled shape: 1 disc, 2 square, 3 triangle (radius ``r``, rotated by ``angle``)."""
    dy, dx = yy - cy, xx - cx
    if kind == 1:
        return dy * dy + dx * dx <= r * r
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    if kind == 2:
        half = r / np.sqrt(2.0)  # inscribed in the circle of radius r
        return np.maximum(np.abs(u), np.abs(v)) <= half
    # equilateral triangle inscribed in the circle of radius r: three half-planes
    inside = np.ones_like(u, dtype=bool)
    for k in range(3):
        t = 2 * np.pi * k / 3
        inside &= np.cos(t) * u + np.sin(t) * v <= r / 2
    return inside


def make_segmentation(
    n: int,
    *,
    size: int = 48,
    seed: int = 0,
    split: str = "train",
    channels: int = 3,
    objects: tuple[int, int] = (2, 5),
    radius: tuple[float, float] = (2.5, 5.0),
    noise: float = 0.12,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(n, size, size, channels)`` float32, about unit variance; labels ``(n, size, size)`` int32.

    Labels are ``0`` (background) and ``1..3`` (see ``CLASSES``). Each image holds between
    ``objects[0]`` and ``objects[1]`` shapes of radius in ``radius``, and as many soft distractor blobs.
    ``channels=1`` gives grey images (the class colour then only shifts brightness).
    """
    if split not in _SPLITS:
        raise ValueError(f"make_segmentation: split must be one of {sorted(_SPLITS)}, got {split!r}")
    if channels not in (1, 3):
        raise ValueError(f"make_segmentation: channels must be 1 or 3, got {channels}")
    rng = np.random.default_rng([seed, _SPLITS[split]])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, size, size, 3), dtype=np.float64)
    labels = np.zeros((n, size, size), dtype=np.int32)
    for i in range(n):
        img = 0.5 * _smooth_texture(rng, size, 3, cells=4) + 0.25 * _smooth_texture(rng, size, 3, cells=12)
        for _ in range(rng.integers(objects[0], objects[1] + 1)):  # distractors: soft blobs, no edges
            cy, cx = rng.uniform(0, size, 2)
            sigma = rng.uniform(*radius) * 0.6
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))[..., None]
            img = img * (1 - 0.8 * blob) + 0.8 * blob * rng.uniform(0, 1, 3)
        for _ in range(rng.integers(objects[0], objects[1] + 1)):
            kind = int(rng.integers(1, NUM_CLASSES))
            r = rng.uniform(*radius) * (1.15 if kind == 3 else 1.0)  # triangles cover less area per radius
            cy, cx = rng.uniform(r, size - r, 2)
            mask = _shape_mask(kind, yy, xx, cy, cx, r, rng.uniform(0, 2 * np.pi))
            colour = 0.5 * _CLASS_COLOURS[kind - 1] + 0.5 * rng.uniform(0, 1, 3)
            img[mask] = colour
            labels[i][mask] = kind
        images[i] = img
    images += rng.normal(0.0, noise, images.shape)
    if channels == 1:
        images = images.mean(axis=-1, keepdims=True)
    images = (images - 0.4) / 0.17  # about zero mean, unit variance
    return images.astype(np.float32), labels


def make_binary_segmentation(n: int, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    """The same images with labels ``1`` on every object and ``0`` elsewhere: ``(n, H, W)`` int32."""
    images, labels = make_segmentation(n, **kwargs)  # type: ignore[arg-type]
    return images, (labels > 0).astype(np.int32)


def confusion_counts(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts, rows true class, columns predicted class (hard labels)."""
    index = labels.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN) over everything counted; NaN for a class absent from both."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(pred: np.ndarray, labels: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[float, np.ndarray]:
    """(mean foreground IoU, per-class IoU) of hard predictions over a whole evaluation set.

    Intersections and unions are summed over all images before dividing (the usual dataset-level
    IoU), then averaged over the foreground classes ``1..C-1``. Predicting background everywhere
    gives foreground IoU 0 for every class, so the baseline mean is 0.0 (its background IoU is the
    background share of the pixels, about 0.96 on this data).
    """
    per_class = iou_from_confusion(confusion_counts(pred, labels, num_classes))
    return float(np.nanmean(per_class[1:])), per_class


def batches(n: int, batch_size: int, steps: int, *, seed: int) -> np.ndarray:
    """``(steps, batch_size)`` sample indices: shuffled epochs over ``range(n)``, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // n)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    return order[: steps * batch_size].reshape(steps, batch_size)


def make_curves(n: int, *, size: int = 48, seed: int = 0, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey images ``(n, size, size, 1)`` float32 of thin curves on texture; labels ``(n, size, size)`` int32.

    Labels are 1 on the curves ("vessels", 1 to 2 pixels wide) and 0 elsewhere. Each image holds two or
    three smooth curves (a random line bent by two sines) whose contrast fades and returns along them, on
    a smooth random texture about as strong as the faintest stretches, plus pixel noise: a faint stretch
    is easy to drop, and dropping it breaks a curve in two at the cost of a few pixels. Deterministic in
    ``seed`` and ``split``; needs NumPy only.
    """
    if split not in _SPLITS:
        raise ValueError(f"make_curves: split must be one of {sorted(_SPLITS)}, got {split!r}")
    rng = np.random.default_rng([seed, _SPLITS[split], 1])  # the 1: streams apart from make_segmentation's
    t = np.linspace(0, 1, 6 * size)[:, None]  # dense samples along each curve, one per row
    offsets = np.arange(-2, 3)
    dy, dx = (o.ravel() for o in np.meshgrid(offsets, offsets, indexing="ij"))  # the 5x5 pixels around a sample
    images = np.empty((n, size, size, 1), dtype=np.float32)
    labels = np.zeros((n, size, size), dtype=np.int32)
    for i in range(n):
        signal = np.zeros((size, size))
        for _ in range(rng.integers(2, 4)):
            a, b = rng.uniform(0, size, size=(2, 2))
            normal = np.array([a[1] - b[1], b[0] - a[0]]) / (np.linalg.norm(b - a) + 1e-9)
            bend = sum(rng.uniform(-size / 8, size / 8) * np.sin(np.pi * k * t + rng.uniform(0, np.pi)) for k in (1, 2))
            py, px = (a[j] + t * (b[j] - a[j]) + bend * normal[j] for j in (0, 1))
            contrast = 0.25 + 0.75 * np.abs(np.sin(np.pi * (t * rng.uniform(1, 3) + rng.uniform(0, 1))))
            # the pixels whose centre lies within the curve's half-width of a sample (points, 25)
            iy, ix = np.round(py).astype(np.int64) + dy, np.round(px).astype(np.int64) + dx
            near = ((iy - py) ** 2 + (ix - px) ** 2 <= rng.uniform(0.6, 1.1) ** 2)
            near &= (iy >= 0) & (iy < size) & (ix >= 0) & (ix < size)
            iy, ix = iy[near], ix[near]
            labels[i, iy, ix] = 1
            np.maximum.at(signal, (iy, ix), np.broadcast_to(contrast, near.shape)[near])
        texture = 1.2 * (_smooth_texture(rng, size, 1, cells=5)[..., 0] - 0.5)  # std about 0.25
        image = texture + signal + rng.normal(scale=0.25, size=(size, size))
        images[i, ..., 0] = (image - image.mean()) / (image.std() + 1e-9)
    return images, labels
