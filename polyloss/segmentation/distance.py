"""Exact Euclidean distance transforms, signed distance maps and U-Net border weights.

Everything here is computed from masks (hard labels) and carries no gradient:
the inputs are passed through ``stop_gradient``, as the papers compute their
distance maps once from the ground truth or from a detached prediction. The
kernel (``_edt.edt``) is exact and separable, written in the array API so it
runs and jits on every backend; host kernels (SciPy, cupyx) serve eager
NumPy, torch CPU and CuPy arrays (``native=False`` forces the array-API path).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .._backend import Array, any_spatial, device, diagonal
from .._core import checks
from .._core.inputs import namespace
from .._core.typing import Sampling
from ._edt import check_mask, edt, foreground, out_dtype, spacing_of

__all__ = ["distance_transform", "signed_distance_map", "unet_weight_map"]

# --------------------------------------------------------------------------- #
# Public functions
# --------------------------------------------------------------------------- #


def distance_transform(
    mask: Array,
    /,
    *,
    spatial_ndim: int | None = None,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    """Exact Euclidean distance transform: each nonzero element's distance to the nearest zero.

    D(x) = min_{y: mask(y) = 0} sqrt(sum_k ((x_k - y_k) s_k)^2),  0 where mask(x) = 0

    An image with no zero gets the length of its diagonal, sqrt(sum_k (n_k s_k)^2),
    everywhere (finite, longer than any distance in the image); an image of
    zeros gets zeros. The array-API path is exact and separable
    (Felzenszwalb & Huttenlocher 2012): O(P log n_last + P (n_1 + ... +
    n_{d-1})) for P elements, no pairwise O(P^2) step. No gradient flows.

    Args:
        mask: bool, integer or floating array (nonzero is foreground), ``(*batch, *spatial)``.
        spatial_ndim: the number of trailing axes that form one image (1, 2 or 3), leading axes being a
            batch. ``None`` (default) infers it from the layout: ``(H, W)`` and ``(N, H, W)`` are 2-D,
            ``(N, C, D, H, W)`` is 3-D; a 4-D mask, ``(N, D, H, W)`` or ``(N, C, H, W)``, is ambiguous and
            raises (pass ``spatial_ndim``). See ``docs/conventions.md``.
        sampling: the grid spacing ``s_k`` (voxel size), a positive number or one per spatial axis;
            default 1.
        dtype: the output's real floating dtype; default the mask's floating dtype (at least float32),
            else the namespace's default float.
        native: use a host kernel where one serves the array (SciPy for NumPy and eager torch CPU
            tensors, cupyx for CuPy); ``False`` forces the exact array-API path (the one JAX and
            array-api-strict always take).

    Returns:
        The distances, ``mask``'s shape, in ``dtype``, on ``mask``'s device.

    Raises:
        ValueError: an ambiguous layout, ``spatial_ndim`` not 1, 2 or 3 or
            above ``mask.ndim``, an empty spatial axis, a bad ``sampling``.
        TypeError: a mask that is not bool, integer or real floating; a
            ``dtype`` that is not real floating.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> mask = np.ones((1, 3, 4), dtype=bool); mask[0, 0, 0] = False
        >>> round(float(pl.distance_transform(mask)[0, 2, 3]), 4)
        3.6056

    References:
        Felzenszwalb & Huttenlocher, Distance transforms of sampled functions,
        Theory of Computing 8, 2012. https://doi.org/10.4086/toc.2012.v008a019
        Peer: ``scipy.ndimage.distance_transform_edt(mask, sampling)`` per image
        (which measures an image with no zero from outside the image instead).
    """
    fn = "distance_transform"
    xp = namespace(fn, mask=mask)
    spatial_ndim = check_mask(fn, "mask", mask, spatial_ndim, xp=xp)
    spacing = spacing_of(fn, sampling, spatial_ndim)
    out = out_dtype(fn, mask, dtype, xp=xp)
    return edt(foreground(mask, xp=xp), spacing=spacing, dtype=out, native=native, xp=xp)


def signed_distance_map(
    mask: Array,
    /,
    *,
    spatial_ndim: int | None = None,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    """Signed distance map of Kervadec et al. 2019: negative inside, positive outside.

    phi(x) = D_out(x) outside (distance to the nearest foreground element);
    phi(x) = -(D_in(x) - s_min) inside (D_in: distance to the nearest background element)

    ``s_min`` is the smallest spacing (1 without ``sampling``), so phi is
    exactly 0 on the inner boundary: the foreground elements with a background
    neighbour one step away along an axis of the finest spacing (with unit
    spacing, those with a background 4- or 6-neighbour); deeper foreground is
    negative, every background element positive (>= s_min). This is the
    authors' ``one_hot2dist`` (``edt(~m) * ~m - (edt(m) - 1) * m``) for unit
    spacing. An image without foreground gets zeros (as in ``one_hot2dist``);
    one without background gets -(diagonal - s_min) everywhere. Pass one
    channel per class of a one-hot target, ``(N, C, H, W)`` with
    ``spatial_ndim=2`` or ``(N, C, D, H, W)``, to get the ``distance_map`` of
    ``boundary_loss``. No gradient flows.

    Args:
        mask: bool, integer or floating array (nonzero is foreground), ``(*batch, *spatial)``.
        spatial_ndim: the number of trailing axes that form one image (1, 2 or 3), leading axes being a
            batch. ``None`` (default) infers it from the layout: ``(H, W)`` and ``(N, H, W)`` are 2-D,
            ``(N, C, D, H, W)`` is 3-D; a 4-D mask, ``(N, D, H, W)`` or ``(N, C, H, W)``, is ambiguous and
            raises (pass ``spatial_ndim``). See ``docs/conventions.md``.
        sampling: the grid spacing ``s_k`` (voxel size), a positive number or one per spatial axis;
            default 1.
        dtype: the output's real floating dtype; default the mask's floating dtype (at least float32),
            else the namespace's default float.
        native: use a host kernel where one serves the array (SciPy for NumPy and eager torch CPU
            tensors, cupyx for CuPy); ``False`` forces the exact array-API path (the one JAX and
            array-api-strict always take).

    Returns:
        phi, ``mask``'s shape, in ``dtype``, on ``mask``'s device.

    Raises:
        ValueError: as ``distance_transform``.
        TypeError: as ``distance_transform``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> mask = np.zeros((1, 5, 5), dtype=bool); mask[0, 1:4, 1:4] = True
        >>> pl.signed_distance_map(mask)[0, 2].tolist()
        [1.0, 0.0, -1.0, 0.0, 1.0]

    References:
        Kervadec et al., Boundary loss for highly unbalanced segmentation,
        MIDL 2019. https://arxiv.org/abs/1812.07032
    """
    fn = "signed_distance_map"
    xp = namespace(fn, mask=mask)
    spatial_ndim = check_mask(fn, "mask", mask, spatial_ndim, xp=xp)
    spacing = spacing_of(fn, sampling, spatial_ndim)
    out = out_dtype(fn, mask, dtype, xp=xp)
    fg = foreground(mask, xp=xp)
    inside = edt(fg, spacing=spacing, dtype=out, native=native, xp=xp)
    outside = edt(~fg, spacing=spacing, dtype=out, native=native, xp=xp)
    phi = xp.where(fg, min(spacing) - inside, outside)
    return xp.where(any_spatial(fg, spatial_ndim, xp=xp), phi, xp.zeros((), dtype=out, device=device(mask)))


def unet_weight_map(
    instance_labels: Array,
    /,
    *,
    num_instances: int,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weight: Sequence[float] | None = None,
    spatial_ndim: int | None = None,
    sampling: Sampling = None,
    dtype: Any = None,
    native: bool = True,
) -> Array:
    """U-Net border weight map of Ronneberger et al. 2015.

    w(x) = w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2)) [x is background]

    d1, d2 are the distances to the nearest and second-nearest instance; as in
    the paper's use (separating touching cells) the border term applies to
    background pixels only, and only in images with at least two instances
    (else there is no second-nearest one and it is 0). An instance id absent
    from an image is padding, so a fixed ``num_instances`` keeps shapes static
    under ``jax.jit``. No gradient flows. Feed the result to ``weight=`` of
    ``binary_cross_entropy`` on ``(N, 1, H, W)`` as ``w[:, None]``, or multiply
    ``cross_entropy(..., reduction="none")`` by it.

    Args:
        instance_labels: integer instance ids ``(*batch, *spatial)``: 0 is
            background, 1..``num_instances`` are instances.
        num_instances: the largest id (a non-negative int).
        w0: the border weight, >= 0; default 10.
        sigma: the border width in pixels (or ``sampling`` units), > 0;
            default 5.
        class_weight: ``(w_background, w_foreground)``, or ``None`` (default)
            for balanced weights per image, w_c = P / (2 P_c) (P pixels, P_c of
            class c; a class absent from the image gets 1).
        spatial_ndim: the number of trailing spatial axes (1, 2 or 3). ``None``
            (default) infers it for label maps, which have no channel axis:
            ``(H, W)`` and ``(N, H, W)`` are 2-D, ``(N, D, H, W)`` is 3-D;
            other ranks raise (pass ``spatial_ndim``).
        sampling: the grid spacing ``s_k`` (voxel size), a positive number or one per spatial axis;
            default 1.
        dtype: the output's real floating dtype; default the namespace's
            default float.
        native: use a host kernel where one serves the array (SciPy for NumPy and eager torch CPU
            tensors, cupyx for CuPy); ``False`` forces the exact array-API path (the one JAX and
            array-api-strict always take).

    Returns:
        The weights, ``instance_labels``' shape, in ``dtype``, on its device.

    Raises:
        ValueError: a bad ``num_instances``, ``w0``, ``sigma``,
            ``class_weight``, ``sampling`` or layout; ids outside
            ``[0, num_instances]`` (eager arrays).
        TypeError: non-integer ``instance_labels``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> labels = np.zeros((1, 1, 7), dtype=np.int64); labels[0, 0, :2] = 1; labels[0, 0, 5:] = 2
        >>> w = pl.unet_weight_map(labels, num_instances=2, class_weight=(1.0, 1.0))  # 1 + 10 exp(-(2 + 2)^2 / 50)
        >>> round(float(w[0, 0, 3]), 4)
        8.2615

    References:
        Ronneberger et al., U-Net: Convolutional networks for biomedical image
        segmentation, MICCAI 2015. https://arxiv.org/abs/1505.04597
    """
    fn = "unet_weight_map"
    xp = namespace(fn, instance_labels=instance_labels)
    spatial_ndim = check_mask(fn, "instance_labels", instance_labels, spatial_ndim, channels=False, xp=xp)
    if not xp.isdtype(instance_labels.dtype, "integral"):
        raise TypeError(f"{fn}: instance_labels must have an integer dtype, got {instance_labels.dtype}")
    num_instances = checks.check_count(fn, "num_instances", num_instances, 0)
    w0 = checks.check_nonnegative(fn, "w0", w0)
    sigma = checks.check_real(fn, "sigma", sigma)
    if not sigma > 0:
        raise ValueError(f"{fn}: sigma must be > 0, got {sigma!r}")
    spacing = spacing_of(fn, sampling, spatial_ndim)
    out = out_dtype(fn, instance_labels, dtype, xp=xp)
    checks.check_integer_range(fn, "instance_labels", instance_labels, 0, num_instances, xp=xp)
    dev = device(instance_labels)
    spatial_axes = tuple(range(instance_labels.ndim - spatial_ndim, instance_labels.ndim))
    background = instance_labels == 0

    if class_weight is None:
        total = float(math.prod(instance_labels.shape[instance_labels.ndim - spatial_ndim :]))
        n_bg = xp.sum(xp.astype(background, out), axis=spatial_axes, keepdims=True)
        n_fg = total - n_bg
        w_bg = xp.where(n_bg > 0, total / (2 * xp.where(n_bg > 0, n_bg, 1.0)), 1.0)
        w_fg = xp.where(n_fg > 0, total / (2 * xp.where(n_fg > 0, n_fg, 1.0)), 1.0)
    else:
        values = tuple(class_weight)
        if len(values) != 2:
            raise ValueError(f"{fn}: class_weight must be (w_background, w_foreground), got {class_weight!r}")
        w_bg, w_fg = (xp.asarray(float(v), dtype=out, device=dev) for v in values)
    weight = xp.where(background, w_bg, w_fg)
    if num_instances < 2 or w0 == 0:
        return xp.astype(weight, out) if weight.dtype != out else weight

    # distance of every pixel to each instance: (K, ..., *spatial), K static; an absent one is diag away
    ids = xp.arange(1, num_instances + 1, dtype=instance_labels.dtype, device=dev)
    ids = xp.reshape(ids, (-1,) + (1,) * instance_labels.ndim)
    d = edt(instance_labels[None, ...] != ids, spacing=spacing, dtype=out, native=native, xp=xp)
    d = xp.sort(d, axis=0, stable=False)
    d1, d2 = d[0, ...], d[1, ...]
    diag = diagonal(instance_labels.shape[instance_labels.ndim - spatial_ndim :], spacing)
    border = w0 * xp.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    return weight + xp.where(background & (d2 < diag), border, 0.0)
