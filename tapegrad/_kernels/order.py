"""Kernels of the ORDER family: selections along one dim (max/min with indices, sort, topk, median, kthvalue)
and scans (cumsum, cumprod). Selection records keep the flat x index of every output element in their params;
the forward replay recomputes those indices from the values."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .frame import UNIT_OK, inputs_of


@njit(cache=True)
def _cumprod_line_backward(xo, yo, base, L, post, vals, adj):
    """One line of y = cumprod(x): dy_j/dx_l = y_j / x_l before the first zero; the first zero gets the product
    of the others; elements after it get nothing (every later output holds the zero)."""
    z = L
    for l in range(L):
        if vals[xo + base + l * post] == 0.0:
            z = l
            break
    acc = 0.0
    for l in range(L - 1, -1, -1):
        k = base + l * post
        acc += adj[yo + k] * vals[yo + k]
        if l < z:
            adj[xo + k] += acc / vals[xo + k]
    if z < L:
        q = vals[yo + base + (z - 1) * post] if z > 0 else 1.0
        s = adj[yo + base + z * post] * q
        for j in range(z + 1, L):
            q *= vals[xo + base + j * post]
            s += adj[yo + base + j * post] * q
        adj[xo + base + z * post] += s


@njit(cache=True)
def order_backward(o, ints, y_aux, xo, yo, vals, adj):
    """Selections scatter adj[y] back to the recorded x positions; scans run their adjoint scan per line."""
    n = size_at(ints, y_aux)
    p = params_at(ints, y_aux)
    if o == op.CUMSUM or o == op.CUMPROD:
        L = ints[p]
        post = ints[p + 1]
        if n == 0:
            return
        for a in range(n // (L * post)):
            for b in range(post):
                base = a * L * post + b
                if o == op.CUMSUM:
                    acc = 0.0
                    for l in range(L - 1, -1, -1):
                        k = base + l * post
                        acc += adj[yo + k]
                        adj[xo + k] += acc
                else:
                    _cumprod_line_backward(xo, yo, base, L, post, vals, adj)
        return
    for k in range(n):
        adj[xo + ints[p + 4 + k]] += adj[yo + k]


@njit(cache=True)
def _stable_order(line, descending):
    """Positions of a line in sorted order, ties in their original order, NaN counted as the largest value."""
    L = line.shape[0]
    if not descending:
        return np.argsort(line, kind="mergesort")
    rev = np.argsort(line[::-1].copy(), kind="mergesort")
    out = np.empty(L, dtype=np.int64)
    for i in range(L):
        out[i] = L - 1 - rev[L - 1 - i]
    return out


@njit(cache=True)
def _first_nan(line):
    for i in range(line.shape[0]):
        if line[i] != line[i]:
            return i
    return -1


@njit(cache=True)
def _line_positions(o, line, K, flag):
    """The K positions of a line an ORDER selection picks (the same rules as the eager numpy code)."""
    L = line.shape[0]
    pos = np.zeros(K, dtype=np.int64)
    if o == op.MAX_DIM or o == op.MIN_DIM:
        best = 0
        for i in range(1, L):
            v = line[i]
            r = line[best]
            if r != r:
                break
            if v != v or (v > r if o == op.MAX_DIM else v < r):
                best = i
        pos[0] = best
        return pos
    if o == op.MEDIAN_DIM:
        nan_at = _first_nan(line)
        if nan_at >= 0:
            pos[0] = nan_at
            return pos
    if o == op.MEDIAN_DIM or o == op.KTHVALUE:
        pos[0] = _stable_order(line, False)[flag]
        return pos
    order = _stable_order(line, flag != 0)   # SORT: flag = descending; TOPK: flag = largest
    for i in range(K):
        pos[i] = order[i]
    return pos


@njit(cache=True)
def order_forward(o, ints, y_aux, x_aux, xo, yo, vals):
    """Forward replay of an ORDER record: vals[y] from vals[x], recomputing a selection's indices into ints."""
    p = params_at(ints, y_aux)
    L = ints[p]
    post = ints[p + 1]
    nx = size_at(ints, x_aux)
    if nx == 0:
        return
    pre = nx // (L * post)
    if o == op.CUMSUM or o == op.CUMPROD:
        for a in range(pre):
            for b in range(post):
                base = a * L * post + b
                acc = 0.0 if o == op.CUMSUM else 1.0
                for l in range(L):
                    k = base + l * post
                    if o == op.CUMSUM:
                        acc += vals[xo + k]
                    else:
                        acc *= vals[xo + k]
                    vals[yo + k] = acc
        return
    K = ints[p + 2]
    flag = ints[p + 3]
    line = np.empty(L)
    for a in range(pre):
        for b in range(post):
            base = a * L * post + b
            for l in range(L):
                line[l] = vals[xo + base + l * post]
            pos = _line_positions(o, line, K, flag)
            for kk in range(K):
                yk = a * K * post + kk * post + b
                xi = base + pos[kk] * post
                ints[p + 4 + yk] = xi
                vals[yo + yk] = vals[xo + xi]


@njit(cache=True)
def order_record_forward(f, i):
    """The ORDER unit's forward (it rewrites the record's indices in `ints`)."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    order_forward(ops[i], ints, aux[i], aux[pa], off[pa], off[i], vals)
    return UNIT_OK


@njit(cache=True)
def order_record_backward(f, i, fresh, grads):
    """The ORDER unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    order_backward(ops[i], ints, aux[i], off[pa], off[i], vals, adj)
