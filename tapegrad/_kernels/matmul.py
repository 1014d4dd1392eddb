"""Backward and forward-replay kernels of matrix products (numba's np.dot calls BLAS through scipy)."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at
from .frame import UNIT_OK, inputs_of
from .movement import unbroadcast_add


SMALL_GEMM = 32768   # multiply-adds up to which plain loops beat a BLAS call (whose fixed cost dominates there)
SMALL_NN_GEMM = 2048  # the same for a plain a @ b: its loops store a row of the result per multiply-add row, and
                      # BLAS was 2-4x faster from 4,096 multiply-adds on (measured at 20 shapes)


@njit(cache=True)
def _mat(vals, o, r, c):
    return vals[o:o + r * c].reshape((r, c))


@njit(cache=True, fastmath={"reassoc", "contract"})   # lets the dot products vectorise; NaN and inf still propagate
def _gemm_acc(C, A, B, a_t, b_t, alpha):
    """C += alpha * op(A) @ op(B) for small C-contiguous 2-D views, op transposing where a_t / b_t (not both).
    Each form keeps its innermost loop on contiguous rows."""
    m, n = C.shape
    if b_t:                                     # B is (n, k): dot products of rows
        for i in range(m):
            for j in range(n):
                s = 0.0
                for p in range(B.shape[1]):
                    s += A[i, p] * B[j, p]
                C[i, j] += alpha * s
    elif a_t:                                   # A is (k, m): rank-1 updates by rows of B
        for p in range(A.shape[0]):
            for i in range(m):
                a = alpha * A[p, i]
                for j in range(n):
                    C[i, j] += a * B[p, j]
    else:                                       # A is (m, k)
        for i in range(m):
            for p in range(A.shape[1]):
                a = alpha * A[i, p]
                for j in range(n):
                    C[i, j] += a * B[p, j]


@njit(cache=True)
def matmul_backward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, need_a, need_b, alpha, b_transposed, vals, adj):
    """Gradients of y = alpha * a @ b for the matrix/vector shapes of MM, MV, DOT, VDOT, ADDMM, BMM; for
    ADDMM, b_transposed says the product is a @ b.T (F.linear records its weight without a transposed copy)."""
    if o == op.DOT or o == op.VDOT:
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
    if b_transposed:
        n = ints[b_aux + 1]
        A = _mat(vals, ao, m, kk)
        Bt = _mat(vals, bo, n, kk)
        G = _mat(adj, yo, m, n)
        if m * kk * n <= SMALL_GEMM:
            if need_a:
                _gemm_acc(_mat(adj, ao, m, kk), G, Bt, False, False, alpha)
            if need_b:
                _gemm_acc(_mat(adj, bo, n, kk), G, A, True, False, alpha)
            return
        if alpha != 1.0:
            G = G * alpha
        if need_a:
            _mat(adj, ao, m, kk)[:, :] += np.dot(G, Bt)
        if need_b:
            _mat(adj, bo, n, kk)[:, :] += np.dot(G.T, A)
        return
    for t in range(nb):
        A = _mat(vals, ao + t * m * kk, m, kk)
        B = _mat(vals, bo + t * kk * n, kk, n)
        G = _mat(adj, yo + t * m * n, m, n)
        if m * kk * n <= SMALL_GEMM:
            if need_a:
                _gemm_acc(_mat(adj, ao + t * m * kk, m, kk), G, B, False, True, alpha)
            if need_b:
                _gemm_acc(_mat(adj, bo + t * kk * n, kk, n), A, G, True, False, alpha)
            continue
        if alpha != 1.0:
            G = G * alpha
        # BLAS takes the transposed (Fortran-ordered) operands without copies
        if need_a:
            _mat(adj, ao + t * m * kk, m, kk)[:, :] += np.dot(G, B.T)
        if need_b:
            _mat(adj, bo + t * kk * n, kk, n)[:, :] += np.dot(A.T, G)


@njit(cache=True)
def matmul_forward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, alpha, b_transposed, vals):
    """Recompute y = alpha * a @ b (a @ b.T when b_transposed) into vals[yo:] (forward replay); ADDMM's
    beta * input term is added by addmm_forward_input."""
    if o == op.DOT or o == op.VDOT:
        n = ints[a_aux + 1]
        vals[yo] = alpha * np.dot(vals[ao:ao + n], vals[bo:bo + n])
        return
    if o == op.MV:
        m, n = ints[a_aux + 1], ints[a_aux + 2]
        vals[yo:yo + m] = np.dot(_mat(vals, ao, m, n), vals[bo:bo + n])
        return
    nb = 1
    if o == op.BMM:
        nb = ints[a_aux + 1]
        m, kk, n = ints[a_aux + 2], ints[a_aux + 3], ints[b_aux + 3]
    else:
        m, kk, n = ints[a_aux + 1], ints[a_aux + 2], ints[b_aux + 2]
    if b_transposed:
        n = ints[b_aux + 1]
        if m * kk * n <= SMALL_GEMM:
            Y = _mat(vals, yo, m, n)
            Y[:, :] = 0.0
            _gemm_acc(Y, _mat(vals, ao, m, kk), _mat(vals, bo, n, kk), False, True, alpha)
            return
        _mat(vals, yo, m, n)[:, :] = alpha * np.dot(_mat(vals, ao, m, kk), _mat(vals, bo, n, kk).T)
        return
    for t in range(nb):
        if m * kk * n <= SMALL_NN_GEMM:
            Y = _mat(vals, yo + t * m * n, m, n)
            Y[:, :] = 0.0
            _gemm_acc(Y, _mat(vals, ao + t * m * kk, m, kk), _mat(vals, bo + t * kk * n, kk, n), False, False, alpha)
            continue
        prod = np.dot(_mat(vals, ao + t * m * kk, m, kk), _mat(vals, bo + t * kk * n, kk, n))
        _mat(vals, yo + t * m * n, m, n)[:, :] = prod if alpha == 1.0 else alpha * prod


@njit(cache=True)
def addmm_forward_input(ints, y_aux, c_aux, co, yo, beta, vals):
    """ADDMM's forward replay, second half: add beta * input, broadcast to the output's (m, n) shape."""
    if beta == 0.0:
        return      # like PyTorch, beta = 0 ignores the input (even nan or inf in it)
    m, n = ints[y_aux + 1], ints[y_aux + 2]
    nd = ints[c_aux]
    rows = ints[c_aux + 1] if nd == 2 else 1
    cols = ints[c_aux + nd] if nd >= 1 else 1
    for i in range(m):
        for j in range(n):
            c = vals[co + (i if rows > 1 else 0) * cols + (j if cols > 1 else 0)]
            vals[yo + i * n + j] += beta * c


@njit(cache=True, inline="always")
def _addmm_params(ints, aux_i, const_i):
    """ADDMM's (alpha, input's physical index + base, beta, whether b is transposed): its params are [1, input
    gid, beta bits, b is transposed]."""
    p = params_at(ints, aux_i)
    return const_i, ints[p + 1], ints[p + 2:p + 3].view(np.float64)[0], ints[p + 3] != 0


@njit(cache=True)
def matmul_record_forward(f, i):
    """The MATMUL unit's forward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    o = ops[i]
    if o == op.ADDMM:
        alpha, gc, beta, b_transposed = _addmm_params(ints, aux[i], const[i])
        matmul_forward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], alpha, b_transposed, vals)
        addmm_forward_input(ints, aux[i], aux[gc - base], off[gc - base], off[i], beta, vals)
    else:
        matmul_forward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], 1.0, False, vals)
    return UNIT_OK


@njit(cache=True)
def matmul_record_backward(f, i, fresh, grads):
    """The MATMUL unit's backward; ADDMM's input (an extra input) gets its share too."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    o = ops[i]
    need_a, need_b = (grads & 1) != 0, (grads & 2) != 0
    if o == op.ADDMM:
        alpha, gc, beta, b_transposed = _addmm_params(ints, aux[i], const[i])
        matmul_backward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], need_a, need_b, alpha,
                        b_transposed, vals, adj)
        pc = gc - base
        if ops[pc] != op.CONST:
            unbroadcast_add(ints, aux[i], aux[pc], off[pc], off[i], beta, adj)
    else:
        matmul_backward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], need_a, need_b, 1.0, False,
                        vals, adj)
