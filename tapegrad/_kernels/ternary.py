"""Kernels of the TERNARY family: elementwise ops with up to three broadcasting inputs and two scalars.

A record's inputs are a (always), b (optional) and c (optional, the extra gid in its params); its scalars are
the record's const and p1, stored after the params as float64 bits: params = [n_extra, (c gid), p1 bits].
An absent b reads as -inf and an absent c as +inf (the open bounds of clamp).
"""
import math

import numpy as np
from numba import njit

from . import opcodes as op
from .common import broadcast_strides, out_dims, params_at, size_at
from .frame import UNIT_OK, inputs_of


@njit(cache=True, inline="always")
def ternary_value(o, x, z, w, c, p1):
    """y of the ternary op o from its input values x, z, w and scalars c, p1 (what the eager forward computed)."""
    if o == op.CLAMP or o == op.HARDTANH:
        return _clamp(x, c, p1)
    if o == op.CLAMP_T:
        return _clamp(x, z, w)
    if o == op.SOFTPLUS:
        if x * c > p1:
            return x
        return math.log1p(math.exp(x * c)) / c
    if o == op.WHERE:
        return x if w != 0.0 else z
    if o == op.MASKED_FILL:
        return c if w != 0.0 else x
    if o == op.MASKED_FILL_T:
        return z if w != 0.0 else x
    weight = c if o == op.LERP_S else w
    # PyTorch's lerp: the form that is exact at the nearer end
    if abs(weight) < 0.5:
        return x + weight * (z - x)
    return z - (z - x) * (1.0 - weight)


@njit(cache=True, inline="always")
def _clamp(x, lo, hi):
    """min(max(x, lo), hi) with NaN propagated from any argument, as PyTorch's clamp."""
    if x != x or lo != lo or hi != hi:
        return math.nan
    r = lo if x < lo else x
    return hi if r > hi else r


@njit(cache=True, inline="always")
def ternary_partials(o, x, z, w, y, c, p1):
    """(dy/dx, dy/dz, dy/dw) of the ternary op o, with PyTorch's values at the bounds of clamp and hardtanh."""
    if o == op.CLAMP:
        return (1.0 if (x >= c and x <= p1) else 0.0), 0.0, 0.0
    if o == op.HARDTANH:
        return (0.0 if (x <= c or x >= p1) else 1.0), 0.0, 0.0
    if o == op.CLAMP_T:
        dx = 1.0 if (x >= z and x <= w) else 0.0
        dz = 1.0 if (x < z and z < w) else 0.0
        dw = 1.0 if (x > w or w < z) else 0.0
        return dx, dz, dw
    if o == op.SOFTPLUS:
        if x * c > p1:
            return 1.0, 0.0, 0.0
        e = math.exp(x * c)
        return e / (e + 1.0), 0.0, 0.0
    if o == op.WHERE:
        return (1.0, 0.0, 0.0) if w != 0.0 else (0.0, 1.0, 0.0)
    if o == op.MASKED_FILL or o == op.MASKED_FILL_T:
        return (0.0, 1.0, 0.0) if w != 0.0 else (1.0, 0.0, 0.0)
    if o == op.LERP_S:
        return 1.0 - c, c, 0.0
    return 1.0 - w, w, z - x   # LERP_T


@njit(cache=True)
def _scalar_param(ints, p):
    """p1: the float64 stored as bits after the extra gids."""
    n_extra = ints[p]
    return ints[p + 1 + n_extra:p + 2 + n_extra].view(np.float64)[0]


@njit(cache=True)
def _strides_of(ints, out_aux, aux, pos, nd):
    if pos < 0:
        return np.zeros(nd, dtype=np.int64)
    return broadcast_strides(ints, out_aux, aux[pos])


@njit(cache=True)
def _input_c(ints, p, base):
    return ints[p + 1] - base if ints[p] > 0 else -1


@njit(cache=True, error_model="numpy")   # IEEE inf/nan, not ZeroDivisionError
def ternary_backward(o, ints, aux, off, ops, base, i, pa, pb, need_a, need_b, c, vals, adj):
    """Accumulate the partials into the inputs (summing over broadcast axes; the sweep marks c)."""
    out_aux = aux[i]
    p = params_at(ints, out_aux)
    p1 = _scalar_param(ints, p)
    pc = _input_c(ints, p, base)
    need_c = pc >= 0 and ops[pc] != op.CONST and (o == op.CLAMP_T or o == op.LERP_T)
    n = size_at(ints, out_aux)
    dims = out_dims(ints, out_aux)
    nd = dims.shape[0]
    sa = _strides_of(ints, out_aux, aux, pa, nd)
    sb = _strides_of(ints, out_aux, aux, pb, nd)
    sc = _strides_of(ints, out_aux, aux, pc, nd)
    ao, yo = off[pa], off[i]
    bo = off[pb] if pb >= 0 else 0
    co = off[pc] if pc >= 0 else 0
    for k in range(n):
        g = adj[yo + k]
        if g == 0.0:
            continue
        ia, ib, ic = _unravel(k, dims, sa, sb, sc)
        z = vals[bo + ib] if pb >= 0 else -math.inf
        w = vals[co + ic] if pc >= 0 else math.inf
        da, db, dc = ternary_partials(o, vals[ao + ia], z, w, vals[yo + k], c, p1)
        if need_a:
            adj[ao + ia] += g * da
        if need_b:
            adj[bo + ib] += g * db
        if need_c:
            adj[co + ic] += g * dc


@njit(cache=True, inline="always")
def _unravel(k, dims, sa, sb, sc):
    """Offsets into the three inputs of the output's flat element k."""
    ia = 0
    ib = 0
    ic = 0
    r = k
    for d in range(dims.shape[0] - 1, -1, -1):
        q = r % dims[d]
        r //= dims[d]
        ia += q * sa[d]
        ib += q * sb[d]
        ic += q * sc[d]
    return ia, ib, ic


@njit(cache=True, error_model="numpy")
def ternary_forward(o, ints, aux, off, base, i, pa, pb, c, vals):
    """Recompute record i's output values into vals from its inputs' values (tg.compile's forward replay)."""
    out_aux = aux[i]
    p = params_at(ints, out_aux)
    p1 = _scalar_param(ints, p)
    pc = _input_c(ints, p, base)
    n = size_at(ints, out_aux)
    dims = out_dims(ints, out_aux)
    nd = dims.shape[0]
    sa = _strides_of(ints, out_aux, aux, pa, nd)
    sb = _strides_of(ints, out_aux, aux, pb, nd)
    sc = _strides_of(ints, out_aux, aux, pc, nd)
    ao, yo = off[pa], off[i]
    bo = off[pb] if pb >= 0 else 0
    co = off[pc] if pc >= 0 else 0
    for k in range(n):
        ia, ib, ic = _unravel(k, dims, sa, sb, sc)
        z = vals[bo + ib] if pb >= 0 else -math.inf
        w = vals[co + ic] if pc >= 0 else math.inf
        vals[yo + k] = ternary_value(o, vals[ao + ia], z, w, c, p1)


@njit(cache=True)
def ternary_record_forward(f, i):
    """The TERNARY unit's forward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    ternary_forward(ops[i], ints, aux, off, base, i, pa, pb, const[i], vals)
    return UNIT_OK


@njit(cache=True)
def ternary_record_backward(f, i, fresh, grads):
    """The TERNARY unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    ternary_backward(ops[i], ints, aux, off, ops, base, i, pa, pb, (grads & 1) != 0, (grads & 2) != 0, const[i],
                     vals, adj)
