"""Rotated boxes: Gaussian conversion, Gaussian-distance losses, ProbIoU, KFIoU and the exact rotated IoU.

Boxes are ``(..., 5)`` arrays, ``"cxcywhr"`` (centre, width, height, angle in
radians; the default) or ``"xywhr"`` (first corner instead of the centre).
The width lies along ``(cos theta, sin theta)`` in the array's ``(x, y)``
coordinates (mmrotate's and ultralytics' convention); ``box_convert``
converts between the two formats.

A box is modelled as the Gaussian N(mu, Sigma), mu = (cx, cy),
Sigma = R diag((w/2)^2, (h/2)^2) R^T (Yang et al. 2021). Sigma is the same for
theta and theta + pi, and for a square for theta and theta + pi/2, so every
loss here is invariant to the angle's period where the box is. The losses
never build Sigma: they use closed forms in the sizes and the angle
difference (determinants w h / 4, traces in cos^2 and sin^2 of
theta_p - theta_t), which have no cancellation and stay finite (values and
gradients) for square, thin and zero-size boxes.

Every loss is elementwise over matching boxes, with ``weight`` (broadcast to
``y_pred.shape[:-1]``), ``reduction`` and ``avg_factor`` as in
``polyloss.generalized_focal``.
"""

from __future__ import annotations

import math
from typing import Literal

from .._backend import Array, clip, device
from .._core import checks
from .._core.inputs import namespace
from .._core.reduce import promote, restore
from .._core.typing import Reduction, RotatedBoxFormat
from ._box_ops import smooth_l1
from ._rotated_ops import (
    ROTATED_FORMATS,
    along,
    box_pair,
    centre_form,
    check_fun,
    check_rotated_boxes,
    clip_polygon,
    det_sum,
    finish,
    floored_sqrt,
    kl_shape_term,
    postprocess,
    shape_term,
)

__all__ = ["box_to_gaussian", "gwd_loss", "kfiou_loss", "kld_loss", "probiou_loss", "rotated_box_iou"]

Fun = Literal["log1p", "sqrt", "none"]

def box_to_gaussian(boxes: Array, /, *, fmt: RotatedBoxFormat = "cxcywhr") -> tuple[Array, Array]:
    r"""Rotated boxes as 2-D Gaussians: the mean and the covariance.

    mu = (cx, cy),  Sigma = R diag((w/2)^2, (h/2)^2) R^T,  R = [[cos t, -sin t], [sin t, cos t]]

    Sizes are used as given (the losses clamp them to [1e-7, 1e7] first, as mmrotate).

    Args:
        boxes: rotated boxes ``(..., 5)``, floating.
        fmt: ``"cxcywhr"`` (default) or ``"xywhr"``.

    Returns:
        ``(mean, cov)`` of shapes ``(..., 2)`` and ``(..., 2, 2)``, in ``boxes``' dtype.

    Raises:
        ValueError: a shape other than ``(..., 5)``, an unknown ``fmt``.
        TypeError: a non-floating ``boxes``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> mean, cov = pl.box_to_gaussian(np.array([[1.0, 2.0, 4.0, 2.0, np.pi / 2]]))
        >>> np.round(cov[0], 4).tolist()
        [[1.0, 0.0], [0.0, 4.0]]

    References:
        Yang et al., Rethinking Rotated Object Detection with Gaussian
        Wasserstein Distance Loss, ICML 2021. https://arxiv.org/abs/2101.11952
    """
    fn = "box_to_gaussian"
    xp = namespace(fn, boxes=boxes)
    checks.check_option(fn, "fmt", fmt, ROTATED_FORMATS)
    check_rotated_boxes(fn, "boxes", boxes, xp=xp)
    cx, cy, w, h, r = centre_form(boxes, fmt, xp=xp)
    c, s = xp.cos(r), xp.sin(r)
    a, b = (w / 2) ** 2, (h / 2) ** 2
    xy = (a - b) * c * s
    rows = (xp.stack((a * c**2 + b * s**2, xy), axis=-1), xp.stack((xy, a * s**2 + b * c**2), axis=-1))
    cov = xp.stack(rows, axis=-2)
    return xp.stack((cx, cy), axis=-1), cov


# --------------------------------------------------------------------------- #
# Losses
# --------------------------------------------------------------------------- #


def gwd_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    fun: Fun = "log1p",
    tau: float = 1.0,
    box_format: RotatedBoxFormat = "cxcywhr",
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """Gaussian Wasserstein distance loss (Yang et al. 2021), elementwise over matching rotated boxes.

    W^2 = |mu_p - mu_t|^2 + Tr(Sigma_p) + Tr(Sigma_t) - 2 Tr((Sigma_p^(1/2) Sigma_t Sigma_p^(1/2))^(1/2)),
    d = sqrt(W^2) / (2 (det Sigma_p det Sigma_t)^(1/8)),
    loss = 1 - 1 / (tau + f(d)) for tau >= 1, f(d) for tau < 1,  f = log1p, sqrt or identity

    The normalisation of d is mmrotate's current ``gwd_loss`` (``normalize=True``,
    ``alpha=1``); the trace of the matrix square root is
    sqrt(Tr(Sigma_p Sigma_t) + 2 sqrt(det Sigma_p det Sigma_t)). For axis-aligned
    boxes W^2 = |mu_p - mu_t|^2 + ((w_p - w_t)^2 + (h_p - h_t)^2) / 4. Sizes are
    clamped to [1e-7, 1e7] (as mmrotate); square roots of quantities that reach 0
    are floored at the dtype's eps^2, so a perfect prediction scores about
    1 - 1 / (1 + eps) rather than 0 and keeps a finite gradient.

    Args:
        y_pred: predicted rotated boxes ``(..., 5)``, floating.
        y_true: target rotated boxes, the shape of ``y_pred``.
        fun: ``"log1p"`` (default), ``"sqrt"`` or ``"none"``, applied to d.
        tau: 1.0 (default); ``tau >= 1`` maps f(d) to 1 - 1 / (tau + f(d)), smaller
            values return f(d) itself.
        box_format: ``"cxcywhr"`` (default) or ``"xywhr"``.
        weight: per-box weights broadcast to ``y_pred.shape[:-1]``, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of
            the box count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred.shape[:-1]`` for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes other than matching ``(..., 5)``, an unknown ``fun``,
            ``box_format`` or ``reduction``, ``tau < 0``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> target = np.array([[10.0, 10.0, 8.0, 4.0, 0.3]])
        >>> pred = np.array([[11.0, 10.0, 8.0, 4.0, 0.3]])
        >>> round(float(pl.gwd_loss(pred, target)), 4)
        0.14

    References:
        Yang et al., Rethinking Rotated Object Detection with Gaussian
        Wasserstein Distance Loss, ICML 2021. https://arxiv.org/abs/2101.11952
    """
    fn = "gwd_loss"
    tau = check_fun(fn, fun, tau)
    pair = box_pair(fn, y_pred, y_true, box_format, reduction, avg_factor, clamp=True)
    xp, p, t = pair.xp, pair.p, pair.t
    p1, q1, p2, q2 = p.w / 2, p.h / 2, t.w / 2, t.h / 2  # the square roots' eigenvalues
    ap, bp, at, bt = p1**2, q1**2, p2**2, q2**2
    tr_pt = (ap * at + bp * bt) * pair.cos2 + (ap * bt + bp * at) * pair.sin2  # Tr(Sigma_p Sigma_t)
    det_sqrt = p1 * q1 * p2 * q2  # sqrt(det Sigma_p det Sigma_t)
    tiny = xp.finfo(ap.dtype).smallest_normal
    traces = ap + bp + at + bt
    root = 2 * floored_sqrt(tr_pt + 2 * det_sqrt, tiny, xp=xp)  # 2 Tr((Sp^1/2 St Sp^1/2)^1/2)
    distance = floored_sqrt(pair.dx**2 + pair.dy**2 + shape_term(pair, p1, q1, p2, q2) / (traces + root),
                            xp.finfo(ap.dtype).eps ** 2, xp=xp)
    distance = distance / (2 * clip(det_sqrt, 1e-28, None, xp=xp) ** 0.25)  # mmrotate: 2 max((.)^(1/4), 1e-7)
    loss = postprocess(distance, fun, tau, xp=xp)
    return finish(fn, loss, weight, reduction, avg_factor, y_pred.dtype, xp=xp)


def kld_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    fun: Fun = "log1p",
    tau: float = 1.0,
    box_format: RotatedBoxFormat = "cxcywhr",
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """Kullback-Leibler divergence loss (Yang et al. 2021), elementwise over matching rotated boxes.

    KL(N_t || N_p) = 1/2 [(mu_p - mu_t)^T Sigma_p^-1 (mu_p - mu_t) + Tr(Sigma_p^-1 Sigma_t)
                     + ln(det Sigma_p / det Sigma_t) - 2],
    d = sqrt(KL),  loss = 1 - 1 / (tau + f(d)) for tau >= 1, f(d) for tau < 1

    as mmrotate's current ``kld_loss`` (``sqrt=True``, ``alpha=1``). The
    divergence is scale invariant and, unlike GWD, couples the centre offset
    with the predicted shape. Sizes are clamped to [1e-7, 1e7] (as mmrotate);
    the square root is floored at the dtype's eps^2.

    Args:
        y_pred: predicted rotated boxes ``(..., 5)``, floating.
        y_true: target rotated boxes, the shape of ``y_pred``.
        fun: ``"log1p"`` (default), ``"sqrt"`` or ``"none"``, applied to d.
        tau: 1.0 (default); ``tau >= 1`` maps f(d) to 1 - 1 / (tau + f(d)), smaller
            values return f(d) itself.
        box_format: ``"cxcywhr"`` (default) or ``"xywhr"``.
        weight: per-box weights broadcast to ``y_pred.shape[:-1]``, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of
            the box count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred.shape[:-1]`` for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes other than matching ``(..., 5)``, an unknown ``fun``,
            ``box_format`` or ``reduction``, ``tau < 0``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> target = np.array([[10.0, 10.0, 8.0, 4.0, 0.3]])
        >>> pred = np.array([[11.0, 10.0, 8.0, 4.0, 0.3]])
        >>> round(float(pl.kld_loss(pred, target)), 4)
        0.1534

    References:
        Yang et al., Learning High-Precision Bounding Box for Rotated Object
        Detection via Kullback-Leibler Divergence, NeurIPS 2021.
        https://arxiv.org/abs/2106.01883
    """
    fn = "kld_loss"
    tau = check_fun(fn, fun, tau)
    pair = box_pair(fn, y_pred, y_true, box_format, reduction, avg_factor, clamp=True)
    xp, p = pair.xp, pair.p
    du, dv = along(p, pair.dx, pair.dy)  # the offset along the predicted width and height
    # Sigma_p^-1 = R_p diag(4 / w_p^2, 4 / h_p^2) R_p^T; KL as a sum of terms that are each >= 0 near the optimum
    kl = 2 * (du**2 / p.w**2 + dv**2 / p.h**2) + kl_shape_term(pair, xp=xp) / 2
    distance = floored_sqrt(kl, xp.finfo(kl.dtype).eps ** 2, xp=xp)
    loss = postprocess(distance, fun, tau, xp=xp)
    return finish(fn, loss, weight, reduction, avg_factor, y_pred.dtype, xp=xp)


def probiou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    eps: float = 1e-7,
    box_format: RotatedBoxFormat = "cxcywhr",
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """ProbIoU loss (Llerena et al. 2021): the Hellinger distance between the boxes' Gaussians.

    Sigma_i = R diag(w_i^2 / 12, h_i^2 / 12) R^T (a uniform density's covariance), Sigma = (Sigma_p + Sigma_t) / 2,
    B = 1/8 (mu_p - mu_t)^T Sigma^-1 (mu_p - mu_t) + 1/2 ln(det Sigma / sqrt(det Sigma_p det Sigma_t)),
    loss = 1 - ProbIoU = sqrt(1 - exp(-B))

    ``eps`` enters as in ultralytics' ``probiou`` (denominators, B clipped to
    [eps, 100], eps under the square root), so the values equal its
    ``1 - probiou``. Unlike there, sqrt(det Sigma_p det Sigma_t) is the closed
    form w_p h_p w_t h_t / 144 and det(Sigma_p + Sigma_t) a sum of
    non-negative terms, so zero-size and square boxes keep finite gradients
    (ultralytics PR #14249).

    Args:
        y_pred: predicted rotated boxes ``(..., 5)``, floating.
        y_true: target rotated boxes, the shape of ``y_pred``.
        eps: 1e-7 (default), in the units of the boxes squared.
        box_format: ``"cxcywhr"`` (default) or ``"xywhr"``.
        weight: per-box weights broadcast to ``y_pred.shape[:-1]``, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of
            the box count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred.shape[:-1]`` for ``"none"``,
        in ``y_pred``'s dtype, in [0, 1].

    Raises:
        ValueError: shapes other than matching ``(..., 5)``, an unknown
            ``box_format`` or ``reduction``, ``eps < 0``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> target = np.array([[10.0, 10.0, 8.0, 4.0, 0.3]])
        >>> pred = np.array([[11.0, 10.0, 8.0, 4.0, 0.3]])
        >>> round(float(pl.probiou_loss(pred, target)), 4)
        0.1707

    References:
        Llerena et al., Gaussian Bounding Boxes and Probabilistic Intersection-over-Union
        for Object Detection, 2021. https://arxiv.org/abs/2106.06072
    """
    fn = "probiou_loss"
    eps = checks.check_nonnegative(fn, "eps", eps)
    pair = box_pair(fn, y_pred, y_true, box_format, reduction, avg_factor, clamp=False)
    xp, p, t = pair.xp, pair.p, pair.t
    ap, bp, at, bt = p.w**2 / 12, p.h**2 / 12, t.w**2 / 12, t.h**2 / 12
    det = det_sum(pair, ap, bp, at, bt)  # det(Sigma_p + Sigma_t)
    up, vp = along(p, pair.dx, pair.dy)
    ut, vt = along(t, pair.dx, pair.dy)
    quad = bp * up**2 + ap * vp**2 + bt * ut**2 + at * vt**2  # d^T adj(Sigma_p + Sigma_t) d
    det_sqrt = p.w * p.h * t.w * t.h / 144  # sqrt(det Sigma_p det Sigma_t)
    b = quad / (4 * (det + eps)) + xp.log(det / (4 * det_sqrt + eps) + eps) / 2
    hellinger = xp.sqrt(-xp.expm1(-clip(b, eps, 100.0, xp=xp)) + eps)
    return finish(fn, hellinger, weight, reduction, avg_factor, y_pred.dtype, xp=xp)


def kfiou_loss(
    y_pred: Array,
    y_true: Array,
    /,
    *,
    fun: Literal["none", "ln", "exp"] = "none",
    beta: float = 1.0 / 9.0,
    eps: float = 1e-6,
    box_format: RotatedBoxFormat = "cxcywhr",
    weight: Array | None = None,
    reduction: Reduction = "mean",
    avg_factor: float | Array | None = None,
) -> Array:
    """KFIoU loss (Yang et al. 2023): the overlap of the Kalman-filtered Gaussian, plus a centre term.

    V(Sigma) = 4 sqrt(det Sigma), Sigma_kf = Sigma_p - Sigma_p (Sigma_p + Sigma_t)^-1 Sigma_p,
    KFIoU = V(Sigma_kf) / (V(Sigma_p) + V(Sigma_t) - V(Sigma_kf) + eps)   (at most 1/3),
    L_kf = 1 - KFIoU ("none"), -ln(KFIoU + eps) ("ln") or exp(1 - KFIoU) - 1 ("exp"),
    loss = SmoothL1_beta(du / w_t) + SmoothL1_beta(dv / h_t) + L_kf

    where (du, dv) is the centre offset in the target box's frame. mmrotate's
    ``KFLoss`` takes the smooth L1 of the coder's centre offsets relative to
    the anchor; with boxes alone the target is the frame, which equals it when
    the anchor is the target. KFIoU itself does not depend on the centres.
    V(Sigma_kf) is computed as w_p h_p w_t h_t / (4 sqrt(det(Sigma_p + Sigma_t))).
    Sizes are clamped to [1e-7, 1e7] (as mmrotate).

    Args:
        y_pred: predicted rotated boxes ``(..., 5)``, floating.
        y_true: target rotated boxes, the shape of ``y_pred``.
        fun: ``"none"`` (default, 1 - KFIoU), ``"ln"`` or ``"exp"``.
        beta: smooth L1 threshold of the centre term (default 1/9, mmrotate's).
        eps: 1e-6 (default), as mmrotate.
        box_format: ``"cxcywhr"`` (default) or ``"xywhr"``.
        weight: per-box weights broadcast to ``y_pred.shape[:-1]``, or None.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        avg_factor: with ``"mean"``, divide the weighted sum by this instead of
            the box count; 0 divides by 1.

    Returns:
        A 0-d array for ``"mean"``/``"sum"``, ``y_pred.shape[:-1]`` for ``"none"``,
        in ``y_pred``'s dtype.

    Raises:
        ValueError: shapes other than matching ``(..., 5)``, an unknown ``fun``,
            ``box_format`` or ``reduction``, ``beta <= 0``, ``eps < 0``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> box = np.array([[10.0, 10.0, 8.0, 4.0, 0.3]])
        >>> round(float(pl.kfiou_loss(box, box)), 4)  # KFIoU of a box with itself is 1/3
        0.6667

    References:
        Yang et al., The KFIoU Loss for Rotated Object Detection, ICLR 2023.
        https://arxiv.org/abs/2201.12558
    """
    fn = "kfiou_loss"
    checks.check_option(fn, "fun", fun, ("none", "ln", "exp"))
    beta = checks.check_real(fn, "beta", beta)
    if not beta > 0:
        raise ValueError(f"{fn}: beta must be > 0, got {beta!r}")
    eps = checks.check_nonnegative(fn, "eps", eps)
    pair = box_pair(fn, y_pred, y_true, box_format, reduction, avg_factor, clamp=True)
    xp, p, t = pair.xp, pair.p, pair.t
    det = det_sum(pair, (p.w / 2) ** 2, (p.h / 2) ** 2, (t.w / 2) ** 2, (t.h / 2) ** 2)
    v_p, v_t = p.w * p.h, t.w * t.h
    v_kf = v_p * v_t / (4 * xp.sqrt(clip(det, xp.finfo(det.dtype).smallest_normal, None, xp=xp)))
    kfiou = v_kf / (v_p + v_t - v_kf + eps)
    if fun == "ln":
        kf = -xp.log(kfiou + eps)
    elif fun == "exp":
        kf = xp.exp(1 - kfiou) - 1
    else:
        kf = 1 - kfiou
    du, dv = along(t, pair.dx, pair.dy)
    centre = smooth_l1(du / t.w, beta, xp=xp) + smooth_l1(dv / t.h, beta, xp=xp)
    return finish(fn, clip(centre + kf, 0, None, xp=xp), weight, reduction, avg_factor, y_pred.dtype, xp=xp)


# --------------------------------------------------------------------------- #
# Exact IoU of rotated rectangles
# --------------------------------------------------------------------------- #


def rotated_box_iou(boxes1: Array, boxes2: Array, /, *, box_format: RotatedBoxFormat = "cxcywhr") -> Array:
    r"""Exact pairwise IoU of rotated rectangles, ``(..., N, 5)`` x ``(..., M, 5)`` -> ``(..., N, M)``.

    IoU = |A ∩ B| / (|A| + |B| - |A ∩ B|), |A ∩ B| by clipping A's polygon
    against the four half-planes of B (Sutherland-Hodgman) and the shoelace
    formula.

    Vectorised with fixed shapes: each clipping step turns a polygon of K slots
    (a validity mask, valid vertices first, the rest repeating the first
    vertex) into 2K candidates (each kept vertex, each edge crossing), then
    compacts the valid ones to the front with one argsort of an integer key,
    keeping 12 slots (a rectangle clipped by a rectangle has at most 8
    vertices; the slack absorbs duplicates from vertices that round onto an
    edge). No Python loop over boxes and no data-dependent shape, so it
    compiles under ``jax.jit`` and ``torch.compile``; differentiable in both
    inputs. A pair whose union is empty (two zero-area boxes) gets IoU 0.
    Memory grows as N x M x 24 vertices: score detections in chunks.

    Args:
        boxes1: rotated boxes ``(..., N, 5)``, floating, sizes >= 0.
        boxes2: rotated boxes ``(..., M, 5)``; leading axes broadcast.
        box_format: ``"cxcywhr"`` (default) or ``"xywhr"``.

    Returns:
        ``(..., N, M)`` IoU in [0, 1], in the inputs' dtype.

    Raises:
        ValueError: shapes other than ``(..., N, 5)``, an unknown ``box_format``.
        TypeError: non-floating boxes.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> a = np.array([[0.0, 0.0, 2.0, 2.0, 0.0]])
        >>> b = np.array([[0.0, 0.0, 2.0, 2.0, np.pi / 4]])  # the same square turned by 45 degrees
        >>> round(float(pl.rotated_box_iou(a, b)[0, 0]), 4)  # an octagon: 8 (sqrt 2 - 1) / (8 (2 - sqrt 2))
        0.7071

    References:
        Sutherland & Hodgman, Reentrant Polygon Clipping, CACM 1974.
        https://doi.org/10.1145/360767.360802
    """
    fn = "rotated_box_iou"
    xp = namespace(fn, boxes1=boxes1, boxes2=boxes2)
    check_rotated_boxes(fn, "boxes1", boxes1, xp=xp)
    check_rotated_boxes(fn, "boxes2", boxes2, xp=xp)
    checks.check_option(fn, "box_format", box_format, ROTATED_FORMATS)
    if boxes1.ndim < 2 or boxes2.ndim < 2:
        raise ValueError(
            f"{fn}: boxes1 and boxes2 must have shape (..., N, 5) and (..., M, 5), "
            f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )
    a = promote(boxes1, xp=xp)
    b = promote(boxes2, xp=xp)
    b = b if b.dtype == a.dtype else xp.astype(b, a.dtype)
    ax, ay, aw, ah, ar = (v[..., :, None] for v in centre_form(a, box_format, xp=xp))
    bx, by, bw, bh, br = (v[..., None, :] for v in centre_form(b, box_format, xp=xp))
    # A's corners, counter-clockwise: c + (+-w/2) u + (+-h/2) v
    uc, us = xp.cos(ar), xp.sin(ar)
    sx = xp.asarray([-0.5, 0.5, 0.5, -0.5], dtype=a.dtype, device=device(a))
    sy = xp.asarray([-0.5, -0.5, 0.5, 0.5], dtype=a.dtype, device=device(a))
    px = ax[..., None] + aw[..., None] * uc[..., None] * sx - ah[..., None] * us[..., None] * sy
    py = ay[..., None] + aw[..., None] * us[..., None] * sx + ah[..., None] * uc[..., None] * sy
    shape = (*xp.broadcast_arrays(ax, bx)[0].shape, 4)
    px, py = xp.broadcast_to(px, shape), xp.broadcast_to(py, shape)
    valid = xp.ones(shape, dtype=xp.bool, device=device(a))
    # B's half-planes n . (p - c_b) <= half size, written s = half - n . (p - c_b) >= 0 inside
    vc, vs = xp.cos(br), xp.sin(br)
    for nx, ny, half in ((vc, vs, bw / 2), (-vc, -vs, bw / 2), (-vs, vc, bh / 2), (vs, -vc, bh / 2)):
        px, py, valid = clip_polygon(px, py, valid, nx, ny, half + nx * bx + ny * by, xp=xp)
    inter = clip(xp.sum(px * xp.roll(py, -1, axis=-1) - xp.roll(px, -1, axis=-1) * py, axis=-1) / 2, 0, None, xp=xp)
    union = aw * ah + bw * bh - inter
    ok = union > 0  # else two zero-area boxes: IoU 0, with a zero (not NaN) gradient
    iou = xp.where(ok, inter / xp.where(ok, union, 1), 0)
    # NaN in, NaN out (as box_iou): a NaN or infinite coordinate would otherwise clip to an empty polygon, IoU 0
    finite = xp.all(xp.isfinite(a), axis=-1)[..., :, None] & xp.all(xp.isfinite(b), axis=-1)[..., None, :]
    return restore(xp.where(finite, iou, math.nan), boxes1.dtype, xp=xp)
