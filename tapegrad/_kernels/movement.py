"""Backward kernels that move gradient elements: broadcast back, strided views, gathers, scatters, unbroadcast."""
import numpy as np
from numba import njit

from .common import broadcast_strides, out_dims, params_at, size_at


@njit(cache=True)
def reduce_backward(ints, x_aux, kd_aux, xo, yo, scale, adj):
    """adj[x] += scale * adj[y] broadcast back over the reduced axes (kd_aux: the keepdim shape of y)."""
    n = size_at(ints, x_aux)
    ny = size_at(ints, kd_aux)
    if ny == 1:
        g = adj[yo] * scale
        for k in range(n):
            adj[xo + k] += g
        return
    dims = out_dims(ints, x_aux)
    sy = broadcast_strides(ints, x_aux, kd_aux)
    nd = dims.shape[0]
    idx = np.zeros(nd, dtype=np.int64)
    iy = 0
    for k in range(n):
        adj[xo + k] += scale * adj[yo + iy]
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            iy += sy[d]
            if idx[d] < dims[d]:
                break
            iy -= sy[d] * dims[d]
            idx[d] = 0
            d -= 1


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
    dims = out_dims(ints, y_aux)
    idx = np.zeros(nd, dtype=np.int64)
    ix = base
    for k in range(n):
        adj[xo + ix] += adj[yo + k]
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            ix += ints[p + 1 + d]
            if idx[d] < dims[d]:
                break
            ix -= ints[p + 1 + d] * dims[d]
            idx[d] = 0
            d -= 1


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
    nc = size_at(ints, c_aux)
    if nc == n:
        for k in range(n):
            adj[co + k] += beta * adj[yo + k]
        return
    dims = out_dims(ints, y_aux)
    sc = broadcast_strides(ints, y_aux, c_aux)
    nd = dims.shape[0]
    idx = np.zeros(nd, dtype=np.int64)
    ic = 0
    for k in range(n):
        adj[co + ic] += beta * adj[yo + k]
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            ic += sc[d]
            if idx[d] < dims[d]:
                break
            ic -= sc[d] * dims[d]
            idx[d] = 0
            d -= 1
