"""The soft skeleton of Shit et al. 2021, shared by clDice (``boundary``) and clCE (``topology``).

Soft erosion is the moving minimum over the face-neighbour cross (3 along
each axis, one at a time), soft dilation the moving maximum over the 3-box;
the skeleton accumulates the residues of soft openings over ``iterations``
erosions. Both are ``_xp.min_pool`` / ``_xp.max_pool``, so it runs, jits and
differentiates on every backend. ``x`` is (N, C, *spatial) with ``nd``
spatial axes, values in [0, 1].

Reference: Shit et al., clDice, CVPR 2021, https://arxiv.org/abs/2003.07311
"""

from __future__ import annotations

from types import ModuleType

from ._xp import Array, max_pool, min_pool

__all__ = ["soft_erode", "soft_skeleton"]


def soft_erode(x: Array, nd: int, *, xp: ModuleType) -> Array:
    """Minimum over the cross (3 along each axis, one at a time), outside left out."""
    out = None
    for i in range(nd):
        window = tuple(3 if j == i else 1 for j in range(nd))
        e = min_pool(x, window=window, xp=xp)
        out = e if out is None else xp.minimum(out, e)
    return out


def soft_skeleton(x: Array, iterations: int, nd: int, *, xp: ModuleType) -> Array:
    """Soft skeleton of Shit et al. 2021: the residues of soft openings over ``iterations`` erosions."""

    def relu(v: Array) -> Array:
        return xp.where(v > 0, v, 0.0)

    eroded = soft_erode(x, nd, xp=xp)
    skel = relu(x - max_pool(eroded, window=(3,) * nd, xp=xp))
    for _ in range(iterations):
        x = eroded
        eroded = soft_erode(x, nd, xp=xp)
        delta = relu(x - max_pool(eroded, window=(3,) * nd, xp=xp))
        skel = skel + relu(delta - skel * delta)
    return skel
