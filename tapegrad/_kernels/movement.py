"""Backward kernels that move gradient elements: broadcast back, strided views, gathers, scatters, unbroadcast."""
import numpy as np
from numba import njit

from .common import broadcast_strides, out_dims, params_at, size_at


@njit(cache=True)
def _broadcast_accumulate(ints, big_aux, small_aux, big_o, small_o, scale, adj, into_small):
    """Walk the big shape with the small one broadcast into it: adj[small] += scale * adj[big] when
    into_small (undoing a broadcast), else adj[big] += scale * adj[small] (undoing a reduction)."""
    n = size_at(ints, big_aux)
    if n == 0:
        return
    dims = out_dims(ints, big_aux)
    ss = broadcast_strides(ints, big_aux, small_aux)
    nd = dims.shape[0]
    if nd == 0:
        if into_small:
            adj[small_o] += scale * adj[big_o]
        else:
            adj[big_o] += scale * adj[small_o]
        return
    last = dims[nd - 1]
    ls = ss[nd - 1]
    idx = np.zeros(nd, dtype=np.int64)
    row = 0
    k = 0
    for _ in range(n // last):
        i = row
        if into_small:
            for _j in range(last):
                adj[small_o + i] += scale * adj[big_o + k]
                k += 1
                i += ls
        else:
            for _j in range(last):
                adj[big_o + k] += scale * adj[small_o + i]
                k += 1
                i += ls
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            row += ss[d]
            if idx[d] < dims[d]:
                break
            row -= ss[d] * dims[d]
            idx[d] = 0
            d -= 1


@njit(cache=True)
def reduce_backward(ints, x_aux, kd_aux, xo, yo, scale, adj):
    """adj[x] += scale * adj[y] broadcast back over the reduced axes (kd_aux: the keepdim shape of y)."""
    n = size_at(ints, x_aux)
    if size_at(ints, kd_aux) == 1:
        g = adj[yo] * scale
        for k in range(n):
            adj[xo + k] += g
        return
    _broadcast_accumulate(ints, x_aux, kd_aux, xo, yo, scale, adj, False)


@njit(cache=True)
def strided_backward(ints, y_aux, xo, yo, adj):
    """y was read from x at offset + sum(i_k * stride_k): scatter-add adj[y] back (repeats accumulate)."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    base = ints[p]
    nd = ints[y_aux]
    if nd == 0:
        adj[xo + base] += adj[yo]
        return
    if n == 0:
        return
    dims = out_dims(ints, y_aux)
    last = dims[nd - 1]
    ls = ints[p + nd]
    idx = np.zeros(nd, dtype=np.int64)
    row = base
    k = 0
    for _ in range(n // last):
        ix = row
        for _j in range(last):
            adj[xo + ix] += adj[yo + k]
            k += 1
            ix += ls
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            row += ints[p + 1 + d]
            if idx[d] < dims[d]:
                break
            row -= ints[p + 1 + d] * dims[d]
            idx[d] = 0
            d -= 1


@njit(cache=True)
def strided_forward(ints, y_aux, xo, yo, vals):
    """y[i] = x[offset + sum(i_k * stride_k)] (the forward replay of a STRIDED record)."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    nd = ints[y_aux]
    dims = out_dims(ints, y_aux)
    idx = np.zeros(nd, dtype=np.int64)
    for k in range(n):
        ix = ints[p]
        for d in range(nd):
            ix += idx[d] * ints[p + 1 + d]
        vals[yo + k] = vals[xo + ix]
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            if idx[d] < dims[d]:
                break
            idx[d] = 0
            d -= 1


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
    _broadcast_accumulate(ints, y_aux, c_aux, yo, co, beta, adj, True)
