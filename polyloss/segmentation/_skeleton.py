"""Face-neighbour morphology shared by the spatial losses and metrics: erosion, surfaces, the soft skeleton.

``erode`` is the moving minimum over the face-neighbour cross (3 along each
axis, one axis at a time) of the trailing ``nd`` axes; ``surface`` keeps the
pixels of a hard mask that erosion removes (outside the image counting as
background), as ``scipy.ndimage.binary_erosion`` in MONAI's
``get_mask_edges``: Boundary DoU counts them, the surface metrics measure
distances between them. The soft skeleton of Shit et al. 2021 (clDice in
``boundary``, clCE in ``topology``) accumulates the residues of soft openings
over ``iterations`` erosions, soft dilation being the moving maximum over the
3-box. All are ``_xp.min_pool`` / ``_xp.max_pool``, so they run, jit and
differentiate on every backend. ``x`` is (..., *spatial), values in [0, 1].

Reference: Shit et al., clDice, CVPR 2021, https://arxiv.org/abs/2003.07311
"""

from __future__ import annotations

from types import ModuleType

from .._backend import Array, max_pool, min_pool, numel

__all__ = ["erode", "soft_skeleton", "surface"]


def erode(x: Array, nd: int, /, *, pad_value: float | None = None, xp: ModuleType) -> Array:
    """Minimum over the cross (3 along each axis); outside counts as ``pad_value`` (None: left out)."""
    out = None
    for i in range(nd):
        window = tuple(3 if j == i else 1 for j in range(nd))
        e = min_pool(x, window=window, pad_value=pad_value, xp=xp)
        out = e if out is None else xp.minimum(out, e)
    return out


def surface(mask: Array, nd: int, /, *, xp: ModuleType) -> Array:
    """Boolean: the pixels of hard float ``mask`` (0/1) with a background face-neighbour (outside: background)."""
    if not numel(mask):  # an empty batch: torch's pooling refuses zero-size inputs
        return mask > 0
    return mask > erode(mask, nd, pad_value=0.0, xp=xp)


def soft_skeleton(x: Array, iterations: int, nd: int, *, xp: ModuleType) -> Array:
    """Soft skeleton of Shit et al. 2021: the residues of soft openings over ``iterations`` erosions."""

    def relu(v: Array) -> Array:
        return xp.where(v > 0, v, 0.0)

    eroded = erode(x, nd, xp=xp)
    skel = relu(x - max_pool(eroded, window=(3,) * nd, xp=xp))
    for _ in range(iterations):
        x = eroded
        eroded = erode(x, nd, xp=xp)
        delta = relu(x - max_pool(eroded, window=(3,) * nd, xp=xp))
        skel = skel + relu(delta - skel * delta)
    return skel
