"""Batched min-cost bipartite matching: shortest augmenting paths (Jonker-Volgenant), in lockstep over a batch.

Private kernel of ``set_prediction.linear_sum_assignment``: costs arrive as
``(B, R, K)`` in the compute dtype with +inf on forbidden pairs, masks as
``(B, R)`` / ``(B, K)`` booleans or ``None``; no validation here.

The solver is the algorithm of SciPy's ``linear_sum_assignment`` (Crouse,
2016: one augmentation per row, each a Dijkstra search over reduced costs
``c_ij - u_i - v_j`` from the row to the nearest free column, then a dual
update and the flip of the path), written as one state machine that every
problem of the batch steps through at once inside a single backend
``while_loop``: a step either scans one row (O(K)) or flips one edge of the
path (O(1) per problem, O(R + K) as masks). Problems that finish early idle.
"""

from __future__ import annotations

from types import ModuleType

from .._backend import (
    Array,
    clip,
    device,
    index_dtype,
    is_concrete,
    map_problems,
    native_linear_sum_assignment,
    take_along_axis,
    while_loop,
)

_SEARCH, _AUGMENT, _DONE = 0, 1, 2


def assign(cost: Array, row_valid: Array | None, col_valid: Array | None, /, *, xp: ModuleType) -> Array:
    """The column of each row in a min-cost matching of each ``(R, K)`` problem of ``cost``, -1 where unmatched.

    Only the rows and columns the masks keep take part; +inf entries are
    forbidden. Eager float64 NumPy and torch CPU arrays go to SciPy
    (``_xp.native_linear_sum_assignment``); everything else, and problems
    SciPy calls infeasible, to the lockstep solver, on the shorter side.
    Under ``torch.func.vmap`` the transform's batch joins the problems
    (``map_problems``): the solver's loop reads its stop condition.
    """
    return map_problems(lambda c, rv, cv: _assign(c, rv, cv, xp=xp), (cost, row_valid, col_valid), xp=xp)


def _assign(cost: Array, row_valid: Array | None, col_valid: Array | None, /, *, xp: ModuleType) -> Array:
    """``assign`` on plain arrays."""
    b, r, k = cost.shape
    dev = device(cost)
    idx = index_dtype(xp, dev)
    if b * r * k == 0:
        return xp.full((b, r), -1, dtype=idx, device=dev)
    if is_concrete(cost) and cost.dtype == xp.float64:
        rv = xp.ones((b, r), dtype=xp.bool, device=dev) if row_valid is None else row_valid
        cv = xp.ones((b, k), dtype=xp.bool, device=dev) if col_valid is None else col_valid
        out = native_linear_sum_assignment(cost, rv, cv, xp=xp)
        if out is not None:
            return xp.astype(out, idx)
    if r > k:
        return _invert(_assign_wide(xp.matrix_transpose(cost), col_valid, row_valid, xp=xp), r, xp=xp)
    return _assign_wide(cost, row_valid, col_valid, xp=xp)


def _assign_wide(cost: Array, row_valid: Array | None, col_valid: Array | None, /, *, xp: ModuleType) -> Array:
    """``assign`` for R <= K. Without a column mask the solver runs as is (there are never more valid rows
    than columns); with one, each problem is padded to ``(K, K)`` and transposed where it has more valid rows
    than valid columns, so the solver always augments from the shorter valid side."""
    b, r, k = cost.shape
    dev = device(cost)
    if row_valid is None:
        row_valid = xp.ones((b, r), dtype=xp.bool, device=dev)
    if col_valid is None:
        return _solve(cost, row_valid, None, xp=xp)
    square = xp.concat([cost, xp.zeros((b, k - r, k), dtype=cost.dtype, device=dev)], axis=1)
    rv = xp.concat([row_valid, xp.zeros((b, k - r), dtype=xp.bool, device=dev)], axis=1)
    swap = xp.sum(xp.astype(rv, xp.int32), axis=1) > xp.sum(xp.astype(col_valid, xp.int32), axis=1)
    s = swap[:, None]
    square = xp.where(s[:, :, None], xp.matrix_transpose(square), square)
    out = _solve(square, xp.where(s, col_valid, rv), xp.where(s, rv, col_valid), xp=xp)
    return xp.where(s, _invert(out, k, xp=xp), out)[:, :r]


def _invert(partner: Array, m: int, /, *, xp: ModuleType) -> Array:
    """From the partner in ``[0, m)`` (or -1) of each of K items, ``(B, K)``: the item matched to each of the
    ``m`` partners, ``(B, m)``, -1 where none."""
    targets = xp.arange(m, dtype=partner.dtype, device=device(partner))
    hits = xp.astype(partner[:, :, None] == targets, xp.int8)
    first = xp.astype(xp.argmax(hits, axis=1), partner.dtype)
    return xp.where(xp.max(hits, axis=1) > 0, first, xp.full_like(first, -1))


def _solve(cost: Array, row_valid: Array, col_valid: Array | None, /, *, xp: ModuleType) -> Array:
    """The lockstep solver: ``(B, R)`` column of each valid row, augmented in row order.

    A row whose search finds no finite path stays unmatched (duals and
    matching untouched), so with enough valid columns and a feasible problem
    the result is SciPy's optimum; the caller orients problems so that valid
    rows never outnumber valid columns.
    """
    b, r, k = cost.shape
    dev = device(cost)
    idx = index_dtype(xp, dev)
    inf = xp.asarray(float("inf"), dtype=cost.dtype, device=dev)
    if col_valid is not None:
        cost = xp.where(col_valid[:, None, :], cost, inf)
    order = xp.astype(xp.argsort(xp.astype(~row_valid, xp.int8), axis=1, stable=True), idx)  # valid rows first
    count = xp.sum(xp.astype(row_valid, idx), axis=1)
    ctx = _Context(cost, order, count, inf, xp=xp)
    state = (
        xp.zeros((b, r), dtype=cost.dtype, device=dev),  # u: row duals
        xp.zeros((b, k), dtype=cost.dtype, device=dev),  # v: column duals
        xp.full((b, r), -1, dtype=idx, device=dev),  # col4row
        xp.full((b, k), -1, dtype=idx, device=dev),  # row4col
        xp.full((b, k), float("inf"), dtype=cost.dtype, device=dev),  # shortest path cost to each column
        xp.full((b, k), -1, dtype=idx, device=dev),  # path: the row that reached each column
        xp.zeros((b, r), dtype=xp.bool, device=dev),  # scanned rows
        xp.zeros((b, k), dtype=xp.bool, device=dev),  # scanned columns
        xp.zeros((b,), dtype=cost.dtype, device=dev),  # min_val: the search radius
        order[:, 0],  # i: the row scanned next
        order[:, 0],  # root: the row being augmented
        xp.zeros((b,), dtype=idx, device=dev),  # pos: the root's place in ``order``
        xp.where(count > 0, xp.asarray(_SEARCH, dtype=idx, device=dev), xp.asarray(_DONE, dtype=idx, device=dev)),
        xp.zeros((b,), dtype=idx, device=dev),  # j: the column whose edge flips next
    )
    final = while_loop(lambda s: xp.any(s[12] != _DONE), ctx.step, state, xp=xp)
    return final[2]


class _Context:
    """What every step reads: the costs, the order of valid rows, index ramps, and the step itself."""

    def __init__(self, cost: Array, order: Array, count: Array, inf: Array, /, *, xp: ModuleType) -> None:
        _, r, k = cost.shape
        self.cost, self.order, self.count, self.inf, self.xp = cost, order, count, inf, xp
        self.rows = xp.arange(r, dtype=order.dtype, device=device(cost))[None, :]
        self.cols = xp.arange(k, dtype=order.dtype, device=device(cost))[None, :]

    def search(self, state: tuple[Array, ...]) -> tuple[Array, ...]:
        """One Dijkstra step of every problem: relax from row ``i``, pick the nearest unscanned column (a free
        one on ties, as SciPy), and the dual update that a free column would make."""
        xp, inf = self.xp, self.inf
        u, v, col4row, row4col, spc, path, sr, sc, min_val, i = state[:10]
        root = state[10]
        k = spc.shape[1]
        row_cost = take_along_axis(self.cost, xp.broadcast_to(i[:, None, None], (i.shape[0], 1, k)), axis=1, xp=xp)
        u_i = take_along_axis(u, i[:, None], axis=1, xp=xp)
        reduced = min_val[:, None] + row_cost[:, 0, :] - u_i - v  # SciPy's order of operations
        better = ~sc & (reduced < spc)
        spc = xp.where(better, reduced, spc)
        path = xp.where(better, i[:, None], path)
        sr = sr | (self.rows == i[:, None])
        cand = xp.where(sc, inf, spc)
        low = xp.min(cand, axis=1)
        ties = ~sc & (cand == low[:, None])
        free_ties = xp.astype(ties & (row4col < 0), xp.int8)
        j = xp.where(xp.max(free_ties, axis=1) > 0, xp.argmax(free_ties, axis=1),
                     xp.argmax(xp.astype(ties, xp.int8), axis=1))
        j = xp.astype(j, i.dtype)
        sc = sc | (self.cols == j[:, None])
        owner = xp.squeeze(take_along_axis(row4col, j[:, None], axis=1, xp=xp), axis=1)
        spc_matched = take_along_axis(spc, clip(col4row, 0, k - 1, xp=xp), axis=1, xp=xp)
        ok = low < inf
        lo = xp.where(ok, low, xp.zeros_like(low))[:, None]  # finite: no inf - inf where nothing was found
        du = xp.where(self.rows == root[:, None], lo, xp.where(sr, lo - spc_matched, xp.zeros_like(u)))
        dv = xp.where(sc, lo - spc, xp.zeros_like(v))
        return spc, path, sr, sc, low, j, owner, du, dv, ok

    def step(self, state: tuple[Array, ...]) -> tuple[Array, ...]:
        """One step of every problem: a search step, a flip of one path edge, or nothing (done)."""
        xp = self.xp
        u, v, col4row, row4col, spc, path, sr, sc, min_val, i, root, pos, phase, j = state
        searching, augmenting = phase == _SEARCH, phase == _AUGMENT
        spc_s, path_s, sr_s, sc_s, low, j_s, owner, du, dv, ok = self.search(state)
        found = searching & ok & (owner < 0)  # reached a free column: update duals, then flip the path
        deeper = searching & ok & (owner >= 0)  # reached a matched column: scan its row next
        # flip one edge: column j goes to the row that reached it, whose old column flips next
        r, k = u.shape[1], v.shape[1]
        p = xp.squeeze(take_along_axis(path, clip(j, 0, k - 1, xp=xp)[:, None], axis=1, xp=xp), axis=1)
        old = xp.squeeze(take_along_axis(col4row, clip(p, 0, r - 1, xp=xp)[:, None], axis=1, xp=xp), axis=1)
        a = augmenting[:, None]
        row4col = xp.where(a & (self.cols == j[:, None]), p[:, None], row4col)
        col4row = xp.where(a & (self.rows == p[:, None]), j[:, None], col4row)
        # next root: after the last flip, or after a search that found no finite path (the row stays unmatched)
        nxt = (augmenting & (p == root)) | (searching & ~ok)
        pos = xp.where(nxt, pos + 1, pos)
        more = pos < self.count
        next_root = xp.squeeze(take_along_axis(self.order, clip(pos, 0, r - 1, xp=xp)[:, None], axis=1, xp=xp), axis=1)
        root = xp.where(nxt & more, next_root, root)
        f, n, s = found[:, None], nxt[:, None], searching[:, None]
        ramp = xp.zeros_like(phase)
        phase = xp.where(found, ramp + _AUGMENT, xp.where(nxt, xp.where(more, ramp + _SEARCH, ramp + _DONE), phase))
        return (
            xp.where(f, u + du, u), xp.where(f, v - dv, v), col4row, row4col,
            xp.where(n, self.inf, xp.where(s, spc_s, spc)), xp.where(s, path_s, path),
            ~n & xp.where(s, sr_s, sr), ~n & xp.where(s, sc_s, sc),
            xp.where(deeper, low, xp.where(nxt, xp.zeros_like(min_val), min_val)),
            xp.where(deeper, owner, xp.where(nxt, root, i)), root, pos, phase,
            xp.where(found, j_s, xp.where(augmenting, old, j)),
        )
