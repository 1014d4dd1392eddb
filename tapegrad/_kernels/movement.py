"""Kernels that move elements: reductions, broadcasts, strided views, gathers, scatters.

Each backward kernel has its forward (used by tg.compile's replay) beside it."""
import math

import numpy as np
from numba import njit

from . import opcodes as op
from .common import broadcast_strides, copy_run, out_dims, params_at, size_at
from .frame import FRESH_A, UNIT_OK, inputs_of


@njit(cache=True)
def _broadcast_accumulate(ints, big_aux, small_aux, big_o, small_o, scale, adj, into_small, fresh):
    """Walk the big shape with the small one broadcast into it: adj[small] += scale * adj[big] when
    into_small (undoing a broadcast), else adj[big] += scale * adj[small] (undoing a reduction; stored, not added,
    when big's adjoint is fresh)."""
    n = size_at(ints, big_aux)
    if n == 0:
        return
    dims = out_dims(ints, big_aux)
    ss = broadcast_strides(ints, big_aux, small_aux)
    nd = dims.shape[0]
    if nd == 0:
        if into_small:
            adj[small_o] += scale * adj[big_o]
        elif fresh:
            adj[big_o] = scale * adj[small_o]
        else:
            adj[big_o] += scale * adj[small_o]
        return
    last = dims[nd - 1]
    ls = ss[nd - 1]        # 1: the small shape runs along the last axis too; 0: it was broadcast along it
    idx = np.zeros(nd, dtype=np.int64)
    row = 0
    k = 0
    for _ in range(n // last):
        # slices, not adj[offset + j]: a computed index keeps numba's negative-index check and stops vectorising
        big = adj[big_o + k:big_o + k + last]
        if into_small and ls == 0:
            s = adj[small_o + row]
            for j in range(last):
                s += scale * big[j]
            adj[small_o + row] = s
        elif into_small:
            small = adj[small_o + row:small_o + row + last]
            for j in range(last):
                small[j] += scale * big[j]
        elif ls == 0:
            s = scale * adj[small_o + row]
            if fresh:
                big[:] = s
            else:
                for j in range(last):
                    big[j] += s
        else:
            small = adj[small_o + row:small_o + row + last]
            if fresh:
                for j in range(last):
                    big[j] = scale * small[j]
            else:
                for j in range(last):
                    big[j] += scale * small[j]
        k += last
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            row += ss[d]
            if idx[d] < dims[d]:
                break
            row -= ss[d] * dims[d]
            idx[d] = 0
            d -= 1


@njit(cache=True, inline="always")
def is_summed(o):
    """The reductions that sum (times the record's constant)."""
    return (o == op.SUM_ALL or o == op.SUM_DIM or o == op.MEAN_ALL or o == op.MEAN_DIM or o == op.VAR_MEAN_MEAN
            or o == op.STD_MEAN_MEAN)


@njit(cache=True, inline="always")
def sum_all_backward(xo, yo, n, scale, adj, fresh):
    """adj[x] += scale * adj[y] for a sum of all of x's n elements (stored when x's adjoint is fresh)."""
    g = adj[yo] * scale
    gx = adj[xo:xo + n]
    if fresh:
        gx[:] = g
    else:
        for k in range(n):
            gx[k] += g


# -- reductions that read values: prod, var/std, logsumexp, vector norm, amax/amin, whole max/min/median -------


@njit(cache=True)
def reduced_block(ints, x_aux, kd_aux):
    """(outer, r, inner) when the axes reduced from x to its keepdim shape are adjacent, so x reads as a C-order
    (outer, r, inner) array and the result as (outer, inner); r is -1 when a kept axis lies between reduced ones
    (callers then fall back to a per-element slot table)."""
    n = size_at(ints, x_aux)
    nd = ints[x_aux]
    if size_at(ints, kd_aux) == 1:
        return 1, n, 1
    lo = nd
    hi = -1
    for d in range(nd):
        if ints[x_aux + 1 + d] != ints[kd_aux + 1 + d]:
            lo = min(lo, d)
            hi = d
    outer = 1
    r = 1
    inner = 1
    for d in range(nd):
        size = ints[x_aux + 1 + d]
        if d < lo:
            outer *= size
        elif d > hi:
            inner *= size
        elif ints[kd_aux + 1 + d] != 1:
            return 0, -1, 0
        else:
            r *= size
    return outer, r, inner


@njit(cache=True)
def pairwise_sum(vals, start, n):
    """Sum of vals[start:start + n] by pairwise summation in blocks of 128 with eight partial sums: the order
    numpy uses for a contiguous run, so replayed sums match the eager (numpy) values, and error grows like log n."""
    x = vals[start:start + n]
    if n < 8:
        s = 0.0
        for k in range(n):
            s += x[k]
        return s
    if n <= 128:
        r0 = x[0]
        r1 = x[1]
        r2 = x[2]
        r3 = x[3]
        r4 = x[4]
        r5 = x[5]
        r6 = x[6]
        r7 = x[7]
        for b in range(1, n // 8):
            k = 8 * b
            r0 += x[k]
            r1 += x[k + 1]
            r2 += x[k + 2]
            r3 += x[k + 3]
            r4 += x[k + 4]
            r5 += x[k + 5]
            r6 += x[k + 6]
            r7 += x[k + 7]
        s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for k in range(n - n % 8, n):
            s += x[k]
        return s
    half = n // 2
    half -= half % 8
    return pairwise_sum(vals, start, half) + pairwise_sum(vals, start + half, n - half)


@njit(cache=True, inline="always")
def _selected(v, best, larger):
    """Whether v replaces best in a running max (larger) or min; a NaN always wins and then stays (nothing
    compares greater or less than a NaN best). Bitwise, so that loops over it have no branches."""
    return (v != v) | ((v > best) if larger else (v < best))


@njit(cache=True, inline="always")
def _is_selection(o, c):
    """The reductions that pick an element: max/min/amax/amin/median, and the ord=+-inf vector norms."""
    return (o == op.AMAX or o == op.AMIN or o == op.MAX_ALL or o == op.MIN_ALL or o == op.MEDIAN_ALL
            or (o == op.VECTOR_NORM and np.isinf(c)))


@njit(cache=True, inline="always")
def _is_hit(v, r, nan_share, norm):
    """Whether an element equal to the selected result r shares its gradient (NaNs too for whole max/min)."""
    return v == r or (nan_share and v != v and (norm or r != r))


@njit(cache=True)
def _slot_of(ints, x_aux, kd_aux):
    """For each element of x, the flat index of its slot in the keepdim-shaped output (all 0 for a whole
    reduction)."""
    n = size_at(ints, x_aux)
    slot = np.zeros(n, dtype=np.int64)
    nd = ints[x_aux]
    if n == 0 or nd == 0 or size_at(ints, kd_aux) == 1:
        return slot
    dims = out_dims(ints, x_aux)
    ss = broadcast_strides(ints, x_aux, kd_aux)
    idx = np.zeros(nd, dtype=np.int64)
    j = 0
    for k in range(n):
        slot[k] = j
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            j += ss[d]
            if idx[d] < dims[d]:
                break
            j -= ss[d] * dims[d]
            idx[d] = 0
            d -= 1
    return slot


@njit(cache=True)
def _sign(v):
    """PyTorch's sgn of a real number: 0 for 0 and for NaN."""
    return 1.0 if v > 0.0 else (-1.0 if v < 0.0 else 0.0)


@njit(cache=True, error_model="numpy")   # IEEE results: 0/0 is NaN like PyTorch's
def reduce_values_backward(o, ints, x_aux, kd_aux, xo, yo, c, vals, adj):
    """Backward of the reductions whose gradient depends on x and y (PyTorch's formulas, ties and zeros
    included); c is the record's constant (degrees of freedom for var/std, ord for the vector norm)."""
    n = size_at(ints, x_aux)
    m = size_at(ints, kd_aux)
    if n == 0:
        return
    if _is_selection(o, c):
        _selection_backward(o, ints, x_aux, kd_aux, xo, yo, vals, adj)
        return
    slot = _slot_of(ints, x_aux, kd_aux)
    if o == op.PROD_ALL or o == op.PROD_DIM:
        # y / x when the slot has no zero; with one zero only that element gets the product of the others
        zeros = np.zeros(m, dtype=np.int64)
        rest = np.ones(m)
        for k in range(n):
            v = vals[xo + k]
            if v == 0.0:
                zeros[slot[k]] += 1
            else:
                rest[slot[k]] *= v
        for k in range(n):
            j = slot[k]
            v = vals[xo + k]
            if zeros[j] == 0:
                adj[xo + k] += adj[yo + j] * (vals[yo + j] / v)
            elif zeros[j] == 1 and v == 0.0:
                adj[xo + k] += adj[yo + j] * rest[j]
    elif o == op.VAR or o == op.STD or o == op.VAR_MEAN_VAR or o == op.STD_MEAN_STD:
        mean = np.zeros(m)
        for k in range(n):
            mean[slot[k]] += vals[xo + k]
        count = n // m
        for j in range(m):
            mean[j] /= count
        g = np.empty(m)
        for j in range(m):
            g[j] = adj[yo + j] * (2.0 / c)
            if o == op.STD or o == op.STD_MEAN_STD:
                s = vals[yo + j]
                g[j] = 0.0 if s == 0.0 else g[j] / (2.0 * s)
        for k in range(n):
            j = slot[k]
            adj[xo + k] += g[j] * (vals[xo + k] - mean[j])
    elif o == op.LOGSUMEXP:
        for k in range(n):
            j = slot[k]
            adj[xo + k] += adj[yo + j] * np.exp(vals[xo + k] - vals[yo + j])
    elif o == op.VECTOR_NORM and not np.isinf(c):
        if c == 0.0:
            return
        for k in range(n):
            j = slot[k]
            v = vals[xo + k]
            r = vals[yo + j]
            if c == 1.0:
                adj[xo + k] += adj[yo + j] * _sign(v)
            elif c == 2.0:
                adj[xo + k] += 0.0 if r == 0.0 else adj[yo + j] * (v / r)
            elif c < 1.0:
                scaled = 0.0 if v == 0.0 else _sign(v) * abs(v) ** (c - 1.0)
                adj[xo + k] += scaled * adj[yo + j] * r ** (1.0 - c)
            else:
                scaled = _sign(v) * abs(v) ** (c - 1.0) if c < 2.0 else v * abs(v) ** (c - 2.0)
                adj[xo + k] += 0.0 if r == 0.0 else scaled * (adj[yo + j] / r ** (c - 1.0))


@njit(cache=True, error_model="numpy")
def _share_run(x, gx, res, g, nan_share, norm):
    """gx += g shared evenly by the elements of x equal to the selected result res (_is_hit, with the NaN test
    hoisted out of the loops so that the plain max/min loops have no branches and vectorise)."""
    nan_hits = nan_share and (norm or res != res)      # _is_hit's NaN clause, for this res
    n = x.shape[0]
    hits = 0
    if norm:
        for j in range(n):
            v = abs(x[j])
            hits += (v == res) | (nan_hits & (v != v))
    elif nan_hits:
        for j in range(n):
            hits += (x[j] == res) | (x[j] != x[j])
    else:
        for j in range(n):
            hits += x[j] == res
    g = g / hits      # 0/0 and x/0 give NaN/inf shares exactly as PyTorch's mask division does
    if hits == 1 and not norm and not nan_hits and math.isfinite(g):
        # the usual single maximum: everywhere else PyTorch adds g * 0 = 0, so only the hit needs a write
        # (a read-only search for it, instead of a read-modify-write pass over the whole adjoint)
        for j in range(n):
            if x[j] == res:
                gx[j] += g
                return
    if norm:
        for j in range(n):
            v = abs(x[j])
            share = g * (1.0 if (v == res) | (nan_hits & (v != v)) else 0.0)
            gx[j] += share * _sign(x[j])
    elif nan_hits:
        for j in range(n):
            gx[j] += g * (1.0 if (x[j] == res) | (x[j] != x[j]) else 0.0)
    else:
        for j in range(n):
            gx[j] += g * (1.0 if x[j] == res else 0.0)


@njit(cache=True, error_model="numpy")
def _selection_backward(o, ints, x_aux, kd_aux, xo, yo, vals, adj):
    """max/min/amax/amin/median and the ord=+-inf norms: the gradient is shared by the elements equal to the
    result (for the norms: |x|), walking x as (outer, r, inner) blocks when it can (no per-element slot table)."""
    nan_share = o == op.MAX_ALL or o == op.MIN_ALL or o == op.MEDIAN_ALL or o == op.VECTOR_NORM
    norm = o == op.VECTOR_NORM
    outer, r, inner = reduced_block(ints, x_aux, kd_aux)
    if r >= 0:
        for p in range(outer):
            for i in range(inner):
                s = p * inner + i
                res = vals[yo + s]
                first = xo + p * r * inner + i
                # one slice per run of x (see _broadcast_accumulate on slices); a contiguous one when it can be
                if inner == 1:
                    _share_run(vals[first:first + r], adj[first:first + r], res, adj[yo + s], nan_share, norm)
                else:
                    stop = first + (r - 1) * inner + 1
                    _share_run(vals[first:stop:inner], adj[first:stop:inner], res, adj[yo + s], nan_share, norm)
        return
    n = size_at(ints, x_aux)
    m = size_at(ints, kd_aux)
    slot = _slot_of(ints, x_aux, kd_aux)
    hits = np.zeros(m)
    for k in range(n):
        j = slot[k]
        v = abs(vals[xo + k]) if norm else vals[xo + k]
        if _is_hit(v, vals[yo + j], nan_share, norm):
            hits[j] += 1.0
    for k in range(n):
        j = slot[k]
        v = abs(vals[xo + k]) if norm else vals[xo + k]
        share = adj[yo + j] / hits[j] * (1.0 if _is_hit(v, vals[yo + j], nan_share, norm) else 0.0)
        adj[xo + k] += share * _sign(vals[xo + k]) if norm else share


@njit(cache=True)
def _reduce_blocks_forward(o, ints, x_aux, kd_aux, xo, yo, c, summed, vals):
    """Sums (times c) and selections over x read as (outer, r, inner) blocks; False when the reduced axes are
    not adjacent. Rows (inner == 1) sum pairwise, as numpy does; otherwise rows are added in order."""
    outer, r, inner = reduced_block(ints, x_aux, kd_aux)
    if r < 0:
        return False
    m = outer * inner
    if summed and inner == 1:
        for p in range(outer):
            vals[yo + p] = pairwise_sum(vals, xo + p * r, r) * c
        return True
    if summed:
        acc = np.zeros(m)
        for p in range(outer):
            out = acc[p * inner:(p + 1) * inner]
            for j in range(r):
                first = xo + (p * r + j) * inner
                x = vals[first:first + inner]
                for i in range(inner):
                    out[i] += x[i]
        for s in range(m):
            vals[yo + s] = acc[s] * c
        return True
    larger = o == op.AMAX or o == op.MAX_ALL or (o == op.VECTOR_NORM and c > 0.0)
    norm = o == op.VECTOR_NORM
    for p in range(outer):
        for i in range(inner):
            first = xo + p * r * inner + i
            if inner == 1:
                best = _select_run(vals[first:first + r], larger, norm)
            else:
                best = _select_run(vals[first:first + (r - 1) * inner + 1:inner], larger, norm)
            vals[yo + p * inner + i] = best
    return True


@njit(cache=True)
def _select_run(x, larger, norm):
    """The max (larger) or min of x, or of |x| for the norms; NaN wins. One call of _select_lanes per flag
    combination, so that each loop is compiled with its flags as constants and vectorises."""
    if larger:
        return _select_lanes(x, True, True) if norm else _select_lanes(x, True, False)
    return _select_lanes(x, False, True) if norm else _select_lanes(x, False, False)


_LANES = 8


@njit(cache=True, error_model="numpy", inline="always")
def _select_lanes(x, larger, norm):
    """_select_run's loop: _LANES running selections side by side (a single running max is a chain of
    dependent compares that cannot vectorise; the lanes turn it into vector max-and-blend), then merged."""
    n = x.shape[0]
    if n == 0:
        return 0.0
    best = abs(x[0]) if norm else x[0]
    lanes = np.full(_LANES, best)
    whole = n - n % _LANES
    for j in range(0, whole, _LANES):
        for lane in range(_LANES):
            v = abs(x[j + lane]) if norm else x[j + lane]
            kept = lanes[lane]
            lanes[lane] = v if _selected(v, kept, larger) else kept
    for lane in range(_LANES):
        v = lanes[lane]
        best = v if _selected(v, best, larger) else best
    for j in range(whole, n):
        v = abs(x[j]) if norm else x[j]
        best = v if _selected(v, best, larger) else best
    return best


@njit(cache=True, error_model="numpy")   # IEEE results: 0/0 is NaN like PyTorch's
def reduce_forward(o, ints, x_aux, kd_aux, xo, yo, c, vals):
    """Forward replay of every REDUCE record: vals[y] from vals[x] (c: the record's constant)."""
    n = size_at(ints, x_aux)
    m = size_at(ints, kd_aux)
    summed = is_summed(o)
    if (summed or (_is_selection(o, c) and o != op.MEDIAN_ALL)) and _reduce_blocks_forward(o, ints, x_aux, kd_aux,
                                                                                          xo, yo, c, summed, vals):
        return
    slot = _slot_of(ints, x_aux, kd_aux)
    count = n // m if m > 0 else 0
    acc = np.zeros(m)
    if summed:
        for k in range(n):
            acc[slot[k]] += vals[xo + k]
        for j in range(m):
            acc[j] *= c
    elif o == op.PROD_ALL or o == op.PROD_DIM:
        acc[:] = 1.0
        for k in range(n):
            acc[slot[k]] *= vals[xo + k]
    elif o == op.VAR or o == op.STD or o == op.VAR_MEAN_VAR or o == op.STD_MEAN_STD:
        mean = np.zeros(m)
        for k in range(n):
            mean[slot[k]] += vals[xo + k]
        for j in range(m):
            mean[j] /= count
        for k in range(n):
            d = vals[xo + k] - mean[slot[k]]
            acc[slot[k]] += d * d
        for j in range(m):
            acc[j] = acc[j] / max(c, 0.0)
            if o == op.STD or o == op.STD_MEAN_STD:
                acc[j] = np.sqrt(acc[j])
    elif o == op.LOGSUMEXP:
        top = np.full(m, -np.inf)
        for k in range(n):
            top[slot[k]] = max(top[slot[k]], vals[xo + k])
        for j in range(m):
            if np.isinf(top[j]):
                top[j] = 0.0
        for k in range(n):
            acc[slot[k]] += np.exp(vals[xo + k] - top[slot[k]])
        for j in range(m):
            acc[j] = np.log(acc[j]) + top[j]
    elif o == op.VECTOR_NORM and not np.isinf(c):
        for k in range(n):
            v = abs(vals[xo + k])
            if c == 0.0:
                acc[slot[k]] += 1.0 if v != 0.0 else 0.0
            elif c == 1.0:
                acc[slot[k]] += v
            elif c == 2.0:
                acc[slot[k]] += v * v
            else:
                acc[slot[k]] += v ** c
        if c != 0.0 and c != 1.0:
            for j in range(m):
                acc[j] = np.sqrt(acc[j]) if c == 2.0 else acc[j] ** (1.0 / c)
    elif o == op.MEDIAN_ALL:
        line = np.sort(vals[xo:xo + n])    # NaNs sort last: any NaN makes the median NaN
        acc[0] = np.nan if n == 0 or line[n - 1] != line[n - 1] else line[(n - 1) // 2]
    else:
        # max / min of values (NaN wins), or of |x| for the ord=+-inf norms
        larger = o == op.AMAX or o == op.MAX_ALL or (o == op.VECTOR_NORM and c > 0.0)
        seen = np.zeros(m, dtype=np.bool_)
        for k in range(n):
            j = slot[k]
            v = abs(vals[xo + k]) if o == op.VECTOR_NORM else vals[xo + k]
            r = acc[j]
            if not seen[j] or _selected(v, r, larger):
                acc[j] = v
                seen[j] = True
    for j in range(m):
        vals[yo + j] = acc[j]


@njit(cache=True, inline="always")
def _next_row(ints, y_aux, p, nd, idx, start):
    """Odometer over every dim of a STRIDED view but the last: x's offset of the row after the one at `start`."""
    d = nd - 2
    while d >= 0:
        idx[d] += 1
        start += ints[p + 1 + d]
        if idx[d] < ints[y_aux + 1 + d]:
            break
        start -= ints[p + 1 + d] * ints[y_aux + 1 + d]
        idx[d] = 0
        d -= 1
    return start


@njit(cache=True, inline="always")
def _strided_row(buffer, xo, start, step, row, add):
    """Copy (or with add, accumulate) one row of a STRIDED view between x, `step` apart from buffer[xo + start],
    and `row`; sliced so that LLVM can vectorise the contiguous case."""
    x = buffer[xo + start:]
    if add:
        if step == 1:
            for k in range(row.shape[0]):
                x[k] += row[k]
        else:
            for k in range(row.shape[0]):
                x[k * step] += row[k]
    elif step == 1:
        for k in range(row.shape[0]):
            row[k] = x[k]
    else:
        for k in range(row.shape[0]):
            row[k] = x[k * step]


@njit(cache=True, inline="always")
def _strided_rows(ints, y_aux, xo, yo, buffer, add):
    """Walk a STRIDED view row by row (its last dim), for strided_forward (y = x at the view) and
    strided_backward (adj[x] += adj[y], repeats accumulating in order). Rows of 1-d and 2-d views are found by
    arithmetic; deeper views by an odometer, the only case that allocates."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    nd = ints[y_aux]
    if nd == 0:
        if add:
            buffer[xo + ints[p]] += buffer[yo]
        else:
            buffer[yo] = buffer[xo + ints[p]]
        return
    if n == 0:
        return
    last = ints[y_aux + nd]
    step = ints[p + nd]
    y = buffer[yo:yo + n]
    if nd <= 2:
        s0 = ints[p + 1] if nd == 2 else 0
        for r in range(n // last):
            _strided_row(buffer, xo, ints[p] + r * s0, step, y[r * last:(r + 1) * last], add)
        return
    idx = np.zeros(nd, dtype=np.int64)
    start = ints[p]
    for r in range(n // last):
        _strided_row(buffer, xo, start, step, y[r * last:(r + 1) * last], add)
        start = _next_row(ints, y_aux, p, nd, idx, start)


@njit(cache=True)
def is_contiguous_run(ints, y_aux):
    """Whether a STRIDED view reads one contiguous run of its input, in order (x[2:7], x[1:3] of a matrix)."""
    p = params_at(ints, y_aux)
    nd = ints[y_aux]
    expected = 1
    for k in range(nd - 1, -1, -1):
        d = ints[y_aux + 1 + k]
        if d != 1 and ints[p + 1 + k] != expected:
            return False
        expected *= d
    return True


@njit(cache=True, inline="always")
def run_forward(xo, yo, n, vals):
    """y = x[start:start + n] for a view that is one contiguous run (xo: the run's start; is_contiguous_run)."""
    copy_run(vals, yo, vals, xo, n)


@njit(cache=True, inline="always")
def run_backward(xo, yo, n, adj):
    """adj[x][start:start + n] += adj[y] for a view that is one contiguous run (xo: the run's start)."""
    gx = adj[xo:xo + n]
    gy = adj[yo:yo + n]
    for k in range(n):
        gx[k] += gy[k]


@njit(cache=True)
def strided_backward(ints, y_aux, xo, yo, adj):
    """y was read from x at offset + sum(i_k * stride_k): scatter-add adj[y] back (repeats accumulate)."""
    _strided_rows(ints, y_aux, xo, yo, adj, True)


@njit(cache=True)
def strided_forward(ints, y_aux, xo, yo, vals):
    """y[i] = x[offset + sum(i_k * stride_k)] (the forward replay of a STRIDED record)."""
    _strided_rows(ints, y_aux, xo, yo, vals, False)


@njit(cache=True)
def gather_forward(ints, y_aux, xo, yo, vals):
    """y[i] = x[index[i]]."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    for k in range(n):
        vals[yo + k] = vals[xo + ints[p + k]]


@njit(cache=True)
def copy_slices_forward(ints, y_aux, xo, vo, yo, has_v, fill, vals):
    """y = x, then y[index[i]] = v[source[i]] (or the scalar `fill` when there is no v)."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    m = ints[p]
    for k in range(n):
        vals[yo + k] = vals[xo + k]
    for i in range(m):
        vals[yo + ints[p + 1 + i]] = vals[vo + ints[p + 1 + m + i]] if has_v else fill


@njit(cache=True)
def gather_backward(ints, y_aux, xo, yo, adj):
    """y[i] = x[index[i]] with the index list stored after y's shape."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    for k in range(n):
        adj[xo + ints[p + k]] += adj[yo + k]


@njit(cache=True)
def copy_slices_backward(ints, y_aux, xo, vo, yo, need_x, need_v, adj):
    """y = x with y[index[i]] = v[source[i]]: the written positions pass their gradient to v, the rest to x."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    m = ints[p]
    if need_x:
        written = np.zeros(n, dtype=np.bool_)
        for i in range(m):
            written[ints[p + 1 + i]] = True
        for k in range(n):
            if not written[k]:
                adj[xo + k] += adj[yo + k]
    if need_v:
        for i in range(m):
            adj[vo + ints[p + 1 + m + i]] += adj[yo + ints[p + 1 + i]]


@njit(cache=True)
def unbroadcast_add(ints, y_aux, c_aux, co, yo, beta, adj):
    """adj[c] += beta * adj[y] where c was broadcast to y's shape: sum over the broadcast axes."""
    n = size_at(ints, y_aux)
    if size_at(ints, c_aux) == n:
        for k in range(n):
            adj[co + k] += beta * adj[yo + k]
        return
    _broadcast_accumulate(ints, y_aux, c_aux, yo, co, beta, adj, True, False)


# the units' entry points (frame.py): one record of the REDUCE, STRIDED, GATHER and INDEX_PUT families

@njit(cache=True)
def reduce_record_forward(f, i):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    # the keepdim shape of the output follows its own shape in the params
    reduce_forward(ops[i], ints, aux[pa], params_at(ints, aux[i]), off[pa], off[i], const[i], vals)
    return UNIT_OK


@njit(cache=True)
def sum_record_backward(f, i, fresh, grads):
    """Sums and means (is_summed): adj[x] += scale * adj[y] broadcast back over the reduced axes (the params are
    y's keepdim shape), stored when x's adjoint is fresh (see program.gradient_program)."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    kd_aux = params_at(ints, aux[i])
    if size_at(ints, kd_aux) == 1:
        sum_all_backward(off[pa], off[i], size_at(ints, aux[pa]), const[i], adj, (fresh & FRESH_A) != 0)
    else:
        _broadcast_accumulate(ints, aux[pa], kd_aux, off[pa], off[i], const[i], adj, False, (fresh & FRESH_A) != 0)


@njit(cache=True)
def reduce_record_backward(f, i, fresh, grads):
    """The reductions that read values (the rest of the REDUCE family)."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    if (fresh & FRESH_A) != 0:
        adj[off[pa]:off[pa] + size_at(ints, aux[pa])] = 0.0
    reduce_values_backward(ops[i], ints, aux[pa], params_at(ints, aux[i]), off[pa], off[i], const[i], vals, adj)


@njit(cache=True)
def strided_record_forward(f, i):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    strided_forward(ints, aux[i], off[pa], off[i], vals)
    return UNIT_OK


@njit(cache=True)
def strided_record_backward(f, i, fresh, grads):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    strided_backward(ints, aux[i], off[pa], off[i], adj)


@njit(cache=True)
def gather_record_forward(f, i):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    gather_forward(ints, aux[i], off[pa], off[i], vals)
    return UNIT_OK


@njit(cache=True)
def gather_record_backward(f, i, fresh, grads):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    gather_backward(ints, aux[i], off[pa], off[i], adj)


@njit(cache=True)
def index_put_record_forward(f, i):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    copy_slices_forward(ints, aux[i], off[pa], off[pb] if pb >= 0 else 0, off[i], pb >= 0, const[i], vals)
    return UNIT_OK


@njit(cache=True)
def index_put_record_backward(f, i, fresh, grads):
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    copy_slices_backward(ints, aux[i], off[pa], off[pb] if pb >= 0 else 0, off[i], (grads & 1) != 0,
                         (grads & 2) != 0, adj)
