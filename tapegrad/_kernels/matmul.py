"""Kernels of matrix products, forward (for tg.compile's replay) and backward; numba's np.dot calls BLAS."""
import numpy as np
from numba import njit

from . import opcodes as op


@njit(cache=True)
def _mat(vals, o, r, c):
    return vals[o:o + r * c].reshape((r, c))


@njit(cache=True)
def matmul_backward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, need_a, need_b, alpha, vals, adj):
    """Gradients of y = alpha * a @ b for the matrix/vector shapes of MM, MV, DOT, ADDMM and BMM."""
    if o == op.DOT:
        n = ints[a_aux + 1]
        g = adj[yo] * alpha
        for k in range(n):
            if need_a:
                adj[ao + k] += g * vals[bo + k]
            if need_b:
                adj[bo + k] += g * vals[ao + k]
        return
    if o == op.MV:
        m = ints[a_aux + 1]
        n = ints[a_aux + 2]
        for i in range(m):
            g = adj[yo + i]
            if g == 0.0:
                continue
            for j in range(n):
                if need_a:
                    adj[ao + i * n + j] += g * vals[bo + j]
                if need_b:
                    adj[bo + j] += g * vals[ao + i * n + j]
        return
    # MM, ADDMM, BMM: batches of (m, k) @ (k, n)
    nb = 1
    if o == op.BMM:
        nb = ints[a_aux + 1]
        m, kk, n = ints[a_aux + 2], ints[a_aux + 3], ints[b_aux + 3]
    else:
        m, kk, n = ints[a_aux + 1], ints[a_aux + 2], ints[b_aux + 2]
    for t in range(nb):
        A = _mat(vals, ao + t * m * kk, m, kk)
        B = _mat(vals, bo + t * kk * n, kk, n)
        G = _mat(adj, yo + t * m * n, m, n)
        if alpha != 1.0:
            G = G * alpha
        # BLAS takes the transposed (Fortran-ordered) operands without copies
        if need_a:
            _mat(adj, ao + t * m * kk, m, kk)[:, :] += np.dot(G, B.T)
        if need_b:
            _mat(adj, bo + t * kk * n, kk, n)[:, :] += np.dot(A.T, G)


@njit(cache=True)
def matmul_forward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, alpha, vals):
    """Replay: vals[y] = alpha * a @ b for MM, MV, DOT, ADDMM and BMM (ADDMM's beta * input is added by the caller)."""
    if o == op.DOT:
        n = ints[a_aux + 1]
        total = 0.0
        for k in range(n):
            total += vals[ao + k] * vals[bo + k]
        vals[yo] = alpha * total
        return
    if o == op.MV:
        m = ints[a_aux + 1]
        n = ints[a_aux + 2]
        for i in range(m):
            total = 0.0
            for j in range(n):
                total += vals[ao + i * n + j] * vals[bo + j]
            vals[yo + i] = alpha * total
        return
    nb = 1
    if o == op.BMM:
        nb = ints[a_aux + 1]
        m, kk, n = ints[a_aux + 2], ints[a_aux + 3], ints[b_aux + 3]
    else:
        m, kk, n = ints[a_aux + 1], ints[a_aux + 2], ints[b_aux + 2]
    for t in range(nb):
        Y = _mat(vals, yo + t * m * n, m, n)
        if kk == 0:
            Y[:, :] = 0.0
            continue
        Y[:, :] = np.dot(_mat(vals, ao + t * m * kk, m, kk), _mat(vals, bo + t * kk * n, kk, n))
        if alpha != 1.0:
            Y[:, :] *= alpha
