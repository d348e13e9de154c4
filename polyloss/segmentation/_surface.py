"""The surfaces of two hard masks and the distances between them, for the surface metrics of ``metrics``.

A mask's surface is its foreground pixels with a background face-neighbour
(``_skeleton.surface``); the distance of every pixel to the other mask's
surface is the exact distance transform (``_edt.edt``) of the surface's complement; a
percentile is one sort of a fixed-size masked array. No host loop over images
or classes, so everything runs under ``jax.jit`` and ``torch.compile``.
Private kernels: names without a leading underscore because the module
itself is private.
"""

from __future__ import annotations

from .._backend import Array, clip, default_float, device, diagonal, index_dtype, take_along_axis
from .._core.inputs import namespace
from .._core.typing import Sampling
from ._edt import check_mask, edt, foreground, spacing_of
from ._skeleton import surface

__all__ = ["Surfaces"]


class Surfaces:
    """Both surfaces, each pixel's distance to the other surface, and the counts, for one call."""

    def __init__(self, caller: str, pred: Array, true: Array, sampling: Sampling, nd: int) -> None:
        xp = namespace(caller, pred_mask=pred, true_mask=true)
        nd = check_mask(caller, "pred_mask", pred, nd, xp=xp)
        check_mask(caller, "true_mask", true, nd, xp=xp)
        if tuple(pred.shape) != tuple(true.shape):
            raise ValueError(
                f"{caller}: true_mask must have the shape of pred_mask {tuple(pred.shape)}, got {tuple(true.shape)}"
            )
        spacing = spacing_of(caller, sampling, nd)
        self.xp, self.nd = xp, nd
        self.dtype = default_float(xp, device(pred))
        self.axes = tuple(range(pred.ndim - nd, pred.ndim))
        self.diagonal = diagonal(pred.shape[pred.ndim - nd :], spacing)
        self.edge_p = surface(xp.astype(foreground(pred, xp=xp), self.dtype), nd, xp=xp)
        self.edge_t = surface(xp.astype(foreground(true, xp=xp), self.dtype), nd, xp=xp)
        # distance of every pixel to the nearest surface pixel of the other mask (diagonal if it has none)
        self.to_t = edt(~self.edge_t, spacing=spacing, dtype=self.dtype, native=True, xp=xp)
        self.to_p = edt(~self.edge_p, spacing=spacing, dtype=self.dtype, native=True, xp=xp)
        self.n_p = self.count(self.edge_p)
        self.n_t = self.count(self.edge_t)

    def count(self, where: Array) -> Array:
        """The number of True pixels of each image of ``where``."""
        return self.xp.sum(self.xp.astype(where, self.dtype), axis=self.axes)

    def empty_rule(self, value: Array, *, both: float, one: float) -> Array:
        """``value`` where both surfaces exist; ``both`` where neither does, ``one`` where one does."""
        xp = self.xp
        has_p, has_t = self.n_p > 0, self.n_t > 0
        one_ = xp.asarray(one, dtype=self.dtype, device=device(value))
        return xp.where(has_p & has_t, value, xp.where(has_p | has_t, one_, both))

    def masked_sum(self, edge: Array, dist: Array) -> Array:
        return self.xp.sum(self.xp.where(edge, dist, 0.0), axis=self.axes)

    def quantile(self, edge: Array, dist: Array, count: Array, q: float | None) -> Array:
        """The ``q``-th percentile (linear, as ``numpy.percentile``) of ``dist`` over ``edge``; max if None."""
        xp = self.xp
        if q is None:
            return xp.max(xp.where(edge, dist, 0.0), axis=self.axes)  # distances are >= 0
        lead = edge.shape[: edge.ndim - self.nd]
        beyond = 2 * self.diagonal + 1  # sorts after every distance in the image, finite (no inf - inf below)
        flat = xp.reshape(xp.where(edge, dist, beyond), (*lead, -1))
        ordered = xp.sort(flat, axis=-1)
        pos = clip(count - 1, 0, None, xp=xp) * (q / 100)
        low = xp.floor(pos)
        high = xp.minimum(low + 1, clip(count - 1, 0, None, xp=xp))
        frac = pos - low
        idx_dtype = index_dtype(xp, device(ordered))

        def at(i: Array) -> Array:
            index = xp.expand_dims(xp.astype(i, idx_dtype), axis=-1)
            return xp.squeeze(take_along_axis(ordered, index, axis=-1, xp=xp), axis=-1)

        v_low, v_high = at(low), at(high)
        return xp.where(count > 0, v_low + (v_high - v_low) * frac, 0.0)
