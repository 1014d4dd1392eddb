"""LAYOUT family: sparse linear maps (tril/triu, constant pad, diag embedding, trace), concatenation of many inputs
(cat, stack) and accumulating writes (scatter_add, index_put with accumulate). Backward and forward replay."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .frame import UNIT_OK, inputs_of


@njit(cache=True)
def sparse_map_backward(ints, y_aux, xo, yo, adj):
    """y[out[j]] += x[in[j]] (params [m, out..., in...]): adj[x[in[j]]] += adj[y[out[j]]]."""
    p = params_at(ints, y_aux)
    m = ints[p]
    for j in range(m):
        adj[xo + ints[p + 1 + m + j]] += adj[yo + ints[p + 1 + j]]


@njit(cache=True)
def sparse_map_forward(ints, y_aux, xo, yo, fill, vals):
    """y = fill where no pair writes, else the sum of the x elements mapped there."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    m = ints[p]
    for k in range(n):
        vals[yo + k] = fill
    for j in range(m):
        vals[yo + ints[p + 1 + j]] = 0.0
    for j in range(m):
        vals[yo + ints[p + 1 + j]] += vals[xo + ints[p + 1 + m + j]]


@njit(cache=True)
def _cat_inputs(ints, y_aux, a, b):
    """The input gids of a cat/stack record in order: a, b (if any), then the extras."""
    p = params_at(ints, y_aux)
    n_extra = ints[p]
    n = 1 + (1 if b >= 0 else 0) + n_extra
    gids = np.empty(n, dtype=np.int64)
    gids[0] = a
    k = 1
    if b >= 0:
        gids[1] = b
        k = 2
    for e in range(n_extra):
        gids[k + e] = ints[p + 1 + e]
    return gids, ints[p + 1 + n_extra]


@njit(cache=True)
def _outer(ints, y_aux, dim):
    outer = 1
    for k in range(dim):
        outer *= ints[y_aux + 1 + k]
    return outer


@njit(cache=True)
def cat_backward(ints, aux, off, ops, base, i, a, b, adj):
    """Each input's block of every outer row of y hands its adjoint back."""
    y_aux = aux[i]
    gids, dim = _cat_inputs(ints, y_aux, a, b)
    outer = _outer(ints, y_aux, dim)
    if outer == 0:
        return
    row = size_at(ints, y_aux) // outer
    yo = off[i]
    start = 0
    for k in range(gids.shape[0]):
        p = gids[k] - base
        chunk = size_at(ints, aux[p]) // outer
        if ops[p] != op.CONST:
            xo = off[p]
            for r in range(outer):
                for c in range(chunk):
                    adj[xo + r * chunk + c] += adj[yo + r * row + start + c]
        start += chunk


@njit(cache=True)
def cat_forward(ints, aux, off, base, i, a, b, vals):
    """y = the inputs' blocks side by side in every outer row."""
    y_aux = aux[i]
    gids, dim = _cat_inputs(ints, y_aux, a, b)
    outer = _outer(ints, y_aux, dim)
    if outer == 0:
        return
    row = size_at(ints, y_aux) // outer
    yo = off[i]
    start = 0
    for k in range(gids.shape[0]):
        p = gids[k] - base
        chunk = size_at(ints, aux[p]) // outer
        xo = off[p]
        for r in range(outer):
            for c in range(chunk):
                vals[yo + r * row + start + c] = vals[xo + r * chunk + c]
        start += chunk


@njit(cache=True)
def add_at_backward(ints, y_aux, xo, vo, yo, need_x, need_v, adj):
    """y = x, y[pos[j]] += v[src[j]]: x gets all of adj[y], v gets it gathered at the written positions."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    m = ints[p]
    if need_x:
        for k in range(n):
            adj[xo + k] += adj[yo + k]
    if need_v:
        for j in range(m):
            adj[vo + ints[p + 1 + m + j]] += adj[yo + ints[p + 1 + j]]


@njit(cache=True)
def add_at_forward(ints, y_aux, xo, vo, yo, vals):
    """y = x, then y[pos[j]] += v[src[j]] (duplicates accumulate)."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    m = ints[p]
    for k in range(n):
        vals[yo + k] = vals[xo + k]
    for j in range(m):
        vals[yo + ints[p + 1 + j]] += vals[vo + ints[p + 1 + m + j]]


@njit(cache=True)
def layout_backward(o, ints, aux, off, ops, base, i, a, b, need_a, need_b, adj):
    """The LAYOUT family's backward for record i (a, b: its physical input indices, -1 if none)."""
    if o == op.CAT or o == op.STACK:
        cat_backward(ints, aux, off, ops, base, i, a + base, b + base if b >= 0 else -1, adj)
    elif o == op.SCATTER_ADD or o == op.INDEX_PUT_ACC:
        add_at_backward(ints, aux[i], off[a], off[b] if b >= 0 else 0, off[i], need_a, need_b, adj)
    elif need_a:
        sparse_map_backward(ints, aux[i], off[a], off[i], adj)


@njit(cache=True)
def layout_forward(o, ints, aux, off, const, base, i, a, b, vals):
    """Recompute record i's output values from its inputs' (a, b: physical indices, -1 if none)."""
    if o == op.CAT or o == op.STACK:
        cat_forward(ints, aux, off, base, i, a + base, b + base if b >= 0 else -1, vals)
    elif o == op.SCATTER_ADD or o == op.INDEX_PUT_ACC:
        add_at_forward(ints, aux[i], off[a], off[b], off[i], vals)
    else:
        sparse_map_forward(ints, aux[i], off[a], off[i], const[i], vals)


@njit(cache=True)
def layout_record_forward(f, i):
    """The LAYOUT unit's forward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    layout_forward(ops[i], ints, aux, off, const, base, i, pa, pb, vals)
    return UNIT_OK


@njit(cache=True)
def layout_record_backward(f, i, fresh, grads):
    """The LAYOUT unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    layout_backward(ops[i], ints, aux, off, ops, base, i, pa, pb, (grads & 1) != 0, (grads & 2) != 0, adj)
