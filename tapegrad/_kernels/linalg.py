"""Backward and forward-replay kernels of the LINALG family: solve, inv, det, slogdet, cholesky, and the
scaled sums of addmv / baddbmm / addbmm (y = beta * input + product, input broadcast).

Each record of the matrix functions holds a batch of square (n, n) matrices; its params after the output shape
are [n_batch, n, k] (k: right-hand-side columns of solve, else unused). The kernels loop over the batch on contiguous 2-D slices
and call numba's np.linalg (LAPACK through scipy).
"""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import broadcast_strides, out_dims, params_at, size_at
from .frame import UNIT_OK, inputs_of
from .movement import unbroadcast_add


@njit(cache=True)
def _mat(buf, o, r, c):
    return buf[o:o + r * c].reshape((r, c))


@njit(cache=True)
def _det_adjugate_t(A):
    """The transposed adjugate of A (det(A) * inv(A).T when A is invertible), from an SVD so singular A works."""
    u, s, vt = np.linalg.svd(A)
    n = s.shape[0]
    c = np.empty(n)
    for i in range(n):
        prod = 1.0
        for j in range(n):
            if j != i:
                prod *= s[j]
        c[i] = prod
    sign = np.linalg.det(u) * np.linalg.det(vt)
    return sign * np.dot(u * c, vt)


@njit(cache=True)
def _cholesky_grad(L, G):
    """Gradient of A from L = cholesky(A) and gL (PyTorch's formula: a symmetric result)."""
    n = L.shape[0]
    P = np.tril(np.dot(L.T, G))
    M = 0.5 * (P + np.tril(P, -1).T)
    Lt = np.ascontiguousarray(L.T)
    Z = np.linalg.solve(Lt, M)                                  # L^-T M
    return np.ascontiguousarray(np.linalg.solve(Lt, np.ascontiguousarray(Z.T)).T)   # L^-T M L^-1


@njit(cache=True)
def _is_scaled_sum(o):
    return o == op.ADDMV or o == op.BADDBMM or o == op.ADDBMM


@njit(cache=True)
def linalg_backward(o, ints, y_aux, a_aux, ao, bo, yo, need_a, need_b, c, vals, adj):
    """Accumulate the input adjoints of one LINALG record from its output adjoint (c: the record's constant)."""
    if _is_scaled_sum(o):
        if need_a:
            unbroadcast_add(ints, y_aux, a_aux, ao, yo, c, adj)
        if need_b:
            n = size_at(ints, y_aux)
            adj[bo:bo + n] += adj[yo:yo + n]
        return
    p = params_at(ints, y_aux)
    nb, n, k = ints[p], ints[p + 1], ints[p + 2]
    if o == op.LINALG_SLOGDET_SIGN:
        return      # the sign is piecewise constant
    for t in range(nb):
        gA = _mat(adj, ao + t * n * n, n, n)
        if o == op.LINALG_SOLVE:
            A = _mat(vals, ao + t * n * n, n, n)
            X = _mat(vals, yo + t * n * k, n, k)
            G = np.ascontiguousarray(_mat(adj, yo + t * n * k, n, k))
            gB = np.linalg.solve(np.ascontiguousarray(A.T), G)
            if need_b:
                _mat(adj, bo + t * n * k, n, k)[:, :] += gB
            if need_a:
                gA[:, :] -= np.dot(gB, X.T)
        elif o == op.LINALG_INV:
            Yt = np.ascontiguousarray(_mat(vals, yo + t * n * n, n, n).T)
            G = np.ascontiguousarray(_mat(adj, yo + t * n * n, n, n))
            gA[:, :] -= np.dot(np.dot(Yt, G), Yt)
        elif o == op.LINALG_DET:
            g = adj[yo + t]
            if g != 0.0:
                gA[:, :] += g * _det_adjugate_t(np.ascontiguousarray(_mat(vals, ao + t * n * n, n, n)))
        elif o == op.LINALG_SLOGDET:
            g = adj[yo + t]
            if g != 0.0:
                A = np.ascontiguousarray(_mat(vals, ao + t * n * n, n, n))
                gA[:, :] += g * np.linalg.inv(A).T
        elif o == op.LINALG_CHOLESKY or o == op.CHOLESKY:
            L = np.ascontiguousarray(_mat(vals, yo + t * n * n, n, n))
            G = np.ascontiguousarray(_mat(adj, yo + t * n * n, n, n))
            gA[:, :] += _cholesky_grad(L, G)


@njit(cache=True)
def _scaled_sum_forward(ints, y_aux, a_aux, ao, bo, yo, beta, vals):
    """y = beta * input (broadcast to y's shape) + product; beta = 0 ignores the input, as PyTorch does."""
    n = size_at(ints, y_aux)
    vals[yo:yo + n] = vals[bo:bo + n]
    if beta == 0.0 or n == 0:
        return
    nd = ints[y_aux]
    dims = out_dims(ints, y_aux)
    strides = broadcast_strides(ints, y_aux, a_aux)
    idx = np.zeros(nd, dtype=np.int64)
    src = 0
    for k in range(n):
        vals[yo + k] += beta * vals[ao + src]
        d = nd - 1
        while d >= 0:
            idx[d] += 1
            src += strides[d]
            if idx[d] < dims[d]:
                break
            src -= strides[d] * dims[d]
            idx[d] = 0
            d -= 1


@njit(cache=True)
def linalg_forward(o, ints, y_aux, a_aux, ao, bo, yo, c, vals):
    """Recompute one LINALG record's output values into vals[yo:] from its inputs' values (forward replay)."""
    if _is_scaled_sum(o):
        _scaled_sum_forward(ints, y_aux, a_aux, ao, bo, yo, c, vals)
        return
    p = params_at(ints, y_aux)
    nb, n, k = ints[p], ints[p + 1], ints[p + 2]
    for t in range(nb):
        A = np.ascontiguousarray(_mat(vals, ao + t * n * n, n, n))
        if o == op.LINALG_SOLVE:
            B = np.ascontiguousarray(_mat(vals, bo + t * n * k, n, k))
            _mat(vals, yo + t * n * k, n, k)[:, :] = np.linalg.solve(A, B)
        elif o == op.LINALG_INV:
            _mat(vals, yo + t * n * n, n, n)[:, :] = np.linalg.inv(A)
        elif o == op.LINALG_DET:
            vals[yo + t] = np.linalg.det(A)
        elif o == op.LINALG_SLOGDET:
            vals[yo + t] = np.linalg.slogdet(A)[1]
        elif o == op.LINALG_SLOGDET_SIGN:
            vals[yo + t] = np.linalg.slogdet(A)[0]
        elif o == op.LINALG_CHOLESKY or o == op.CHOLESKY:
            _mat(vals, yo + t * n * n, n, n)[:, :] = np.linalg.cholesky(A)


@njit(cache=True)
def linalg_record_forward(f, i):
    """The LINALG unit's forward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    linalg_forward(ops[i], ints, aux[i], aux[pa], off[pa], off[pb] if pb >= 0 else 0, off[i], const[i], vals)
    return UNIT_OK


@njit(cache=True)
def linalg_record_backward(f, i, fresh, grads):
    """The LINALG unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    linalg_backward(ops[i], ints, aux[i], aux[pa], off[pa], off[pb] if pb >= 0 else 0, off[i], (grads & 1) != 0,
                    (grads & 2) != 0, const[i], vals, adj)
