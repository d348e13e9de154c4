"""Set prediction (DETR): batched linear assignment, pairwise GIoU, the Hungarian matcher and the set loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any, Literal

from . import _checks as checks
from . import _lsa
from ._xp import Array, array_namespace, device, index_dtype, is_concrete, stop_gradient

__all__ = ["linear_sum_assignment"]


def _check_mask(fn: str, name: str, mask: Array | None, shape: tuple[int, ...], *, xp: ModuleType) -> None:
    if mask is None:
        return
    if mask.dtype != xp.bool:
        raise TypeError(f"{fn}: {name} must be a bool array, got dtype {mask.dtype}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {tuple(mask.shape)}")


def _check_bool(fn: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: {name} must be a bool, got {type(value).__name__}")


def _solver_dtype(x: Array, /, *, xp: ModuleType) -> Any:
    """float64 where the namespace has it on ``x``'s device (JAX without x64 has not), else float32."""
    kinds = xp.__array_namespace_info__().dtypes(device=device(x), kind="real floating")
    return xp.float64 if "float64" in kinds else xp.float32


def linear_sum_assignment(
    cost: Array, /, *, row_valid: Array | None = None, col_valid: Array | None = None, maximize: bool = False
) -> Array:
    r"""Batched min-cost bipartite matching: the column of each row, -1 where a row is unmatched.

    For each problem ``cost[..., :, :]`` (R rows, K columns) it finds the matching of
    ``min(valid rows, valid columns)`` pairs minimising sum_i cost[i, col(i)]
    (maximising with ``maximize=True``): SciPy's ``linear_sum_assignment`` on every
    problem, with the answer written per row.

    How: eager float NumPy arrays and eager CPU torch tensors go to SciPy, one C
    call per problem (exact, and faster than a lockstep loop on the host); JAX,
    torch while compiling or on an accelerator, and array-api-strict run the same
    algorithm (shortest augmenting paths, Jonker-Volgenant / Crouse 2016, as in
    SciPy) vectorised over the batch inside one backend ``while_loop`` (no host sync
    under ``jax.jit`` / ``torch.compile``; an eager CUDA tensor reads the loop's
    condition back each step), on the shorter side (a problem with R > K is solved
    transposed). The solver computes in float64 where the backend has it (float32
    for JAX without x64). Work: one augmentation per valid row of the shorter side,
    each scanning at most min(R, K) rows of K costs, so O(min(R, K) * R * K) per
    problem; the batch steps in lockstep, each step O(B (R + K)), the step count that
    of the slowest problem (at most about min(R, K)^2, typically a few per row).

    Args:
        cost: real array ``(..., R, K)``, integer or floating; leading axes are a
            batch of independent problems. +inf (-inf with ``maximize=True``) marks a
            forbidden pair. Not differentiable (the result is an index).
        row_valid: optional bool ``(..., R)``; rows marked False take no part and get -1.
        col_valid: optional bool ``(..., K)``; columns marked False are never matched.
        maximize: bool; maximise the total instead. Default False.

    Returns:
        ``(..., R)`` array of the namespace's index dtype (int64; int32 for JAX
        without x64): the column matched to each row, -1 where unmatched (R > K,
        masked rows or columns, or no finite partner). Where the optimum is not
        unique, any optimal matching may be returned (its total equals SciPy's).
        If the finite entries admit no matching of min(valid rows, valid columns)
        pairs (SciPy raises "infeasible"), the solver returns a maximum matching of
        the finite entries, not necessarily the cheapest one.

    Raises:
        ValueError: fewer than 2 axes, masks of the wrong shape, NaN or a wrong-signed
            infinity in ``cost`` (eager arrays; under ``jax.jit`` or
            ``torch.compile`` such entries count as forbidden).
        TypeError: a bool or complex ``cost``, non-bool masks, a non-bool ``maximize``.

    Example:
        >>> import numpy as np, polyloss as pl
        >>> cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
        >>> pl.linear_sum_assignment(cost).tolist()
        [1, 0, 2]
        >>> pl.linear_sum_assignment(cost[:, :2]).tolist()
        [1, 0, -1]

    References:
        Crouse, On implementing 2D rectangular assignment algorithms, IEEE TAES 2016.
        https://doi.org/10.1109/TAES.2016.140952
        Peer: ``scipy.optimize.linear_sum_assignment`` (one problem, row and column indices).
    """
    fn = "linear_sum_assignment"
    xp = array_namespace(cost, row_valid, col_valid)
    if cost.ndim < 2:
        raise ValueError(f"{fn}: cost must have shape (..., R, K), got {tuple(cost.shape)}")
    if not xp.isdtype(cost.dtype, ("integral", "real floating")):
        raise TypeError(f"{fn}: cost must be a real (integer or floating) array, got dtype {cost.dtype}")
    *batch, r, k = cost.shape
    _check_mask(fn, "row_valid", row_valid, (*batch, r), xp=xp)
    _check_mask(fn, "col_valid", col_valid, (*batch, k), xp=xp)
    _check_bool(fn, "maximize", maximize)
    c = stop_gradient(xp.astype(cost, _solver_dtype(cost, xp=xp)), xp=xp)
    c = -c if maximize else c
    if is_concrete(c) and math.prod(c.shape) and not bool(xp.all(c > -float("inf"))):
        raise ValueError(f"{fn}: cost must not contain NaN or {'+' if maximize else '-'}inf")
    c = xp.where(xp.isnan(c) | (c == -float("inf")), float("inf"), c)
    b = math.prod(batch)
    rv = None if row_valid is None else xp.reshape(row_valid, (b, r))
    cv = None if col_valid is None else xp.reshape(col_valid, (b, k))
    out = _lsa.assign(xp.reshape(c, (b, r, k)), rv, cv, xp=xp)
    return xp.reshape(out, (*batch, r))
