"""Kernels of the elementwise families: unary (with an optional scalar) and broadcasting binary.

Each op has its value (used by tg.compile's forward replay) next to its derivative (used by the reverse sweep).
"""
import math

import numpy as np
from numba import njit

from . import opcodes as op
from .common import broadcast_strides, out_dims, size_at


@njit(cache=True, inline="always")
def unary_value(o, x, c):
    """y = f(x) (or f(x, c)) of the unary op o, in float64: what the eager forward computed."""
    if o == op.NEG:
        return -x
    if o == op.EXP:
        return math.exp(x)
    if o == op.LOG:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if o == op.SQRT:
        return math.sqrt(x) if x >= 0.0 else math.nan
    if o == op.ABS:
        return abs(x)
    if o == op.SIN:
        return math.sin(x)
    if o == op.COS:
        return math.cos(x)
    if o == op.TANH:
        return math.tanh(x)
    if o == op.SIGMOID:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
    if o == op.RELU:
        return x if x > 0.0 else 0.0
    if o == op.RECIPROCAL:
        return 1.0 / x if x != 0.0 else math.copysign(math.inf, x)
    if o == op.ADD_SCALAR:
        return x + c
    if o == op.SUB_SCALAR:
        return x - c
    if o == op.RSUB_SCALAR:
        return c - x
    if o == op.MUL_SCALAR:
        return x * c
    if o == op.DIV_SCALAR:
        return x / c if c != 0.0 else (x * math.inf if x != 0.0 else math.nan)
    if o == op.POW_SCALAR:
        return _pow(x, c)
    if o == op.RPOW_SCALAR:
        return _pow(c, x)
    if o == op.TO_COPY and c == 32.0:
        return np.float64(np.float32(x))
    return x  # CLONE, TO_COPY to float64 (numba has no float16: a half-precision copy replays unrounded)


@njit(cache=True, inline="always")
def _pow(x, z):
    """x ** z with IEEE results instead of Python's exceptions (0 ** -1 = inf, (-8) ** (1/3) = nan)."""
    if x == 0.0 and z < 0.0:
        return math.inf
    if x < 0.0 and z != math.floor(z):
        return math.nan
    return x ** z


@njit(cache=True, inline="always")
def compare_value(o, x, z):
    """1.0 where x (op) z holds, else 0.0 (NaN compares unequal, as in IEEE and torch)."""
    if o == op.GT:
        r = x > z
    elif o == op.LT:
        r = x < z
    elif o == op.GE:
        r = x >= z
    elif o == op.LE:
        r = x <= z
    elif o == op.EQ:
        r = x == z
    else:
        r = x != z
    return 1.0 if r else 0.0


@njit(cache=True, inline="always")
def binary_value(o, x, z):
    """y = x (op) z of the binary op o (or a comparison of tg.compile's GUARD family), in float64."""
    if (o >> 6) == op.GUARD:
        return compare_value(o, x, z)
    if o == op.ADD:
        return x + z
    if o == op.SUB:
        return x - z
    if o == op.RSUB:
        return z - x
    if o == op.MUL:
        return x * z
    if o == op.DIV:
        if z == 0.0:
            return math.nan if x == 0.0 or x != x else math.copysign(math.inf, x) * math.copysign(1.0, z)
        return x / z
    return _pow(x, z)   # POW


@njit(cache=True, inline="always")
def unary_derivative(o, x, y, c):
    """dy/dx of the unary op o at input x with output y and scalar constant c (PyTorch's conventions at kinks)."""
    if o == op.NEG:
        return -1.0
    if o == op.EXP:
        return y
    if o == op.LOG:
        return 1.0 / x
    if o == op.SQRT:
        return 0.5 / y
    if o == op.ABS:
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)
    if o == op.SIN:
        return math.cos(x)
    if o == op.COS:
        return -math.sin(x)
    if o == op.TANH:
        return 1.0 - y * y
    if o == op.SIGMOID:
        return y * (1.0 - y)
    if o == op.RELU:
        return 1.0 if y > 0 else 0.0
    if o == op.RECIPROCAL:
        return -y * y
    if o == op.MUL_SCALAR:
        return c
    if o == op.DIV_SCALAR:
        return 1.0 / c
    if o == op.RSUB_SCALAR:
        return -1.0
    if o == op.POW_SCALAR:
        if c == 0.0:
            return 0.0
        return c * x ** (c - 1.0)
    if o == op.RPOW_SCALAR:
        if c == 0.0 and x >= 0.0:
            return 0.0
        return y * np.log(c)
    return 1.0  # ADD_SCALAR, SUB_SCALAR, CLONE, TO_COPY


@njit(cache=True)
def unary_backward(o, xo, yo, n, c, vals, adj):
    """adj[x] += adj[y] * f'(x)."""
    for k in range(n):
        g = adj[yo + k]
        if g != 0.0:
            adj[xo + k] += g * unary_derivative(o, vals[xo + k], vals[yo + k], c)


@njit(cache=True)
def unary_forward(o, xo, yo, n, c, vals):
    """Replay: vals[y] = f(vals[x])."""
    for k in range(n):
        vals[yo + k] = unary_value(o, vals[xo + k], c)


@njit(cache=True, inline="always")
def binary_partials(o, x, z, y):
    """(dy/dx, dy/dz) of y = x (op) z, with PyTorch's conventions where pow is not differentiable."""
    if o == op.ADD:
        return 1.0, 1.0
    if o == op.SUB:
        return 1.0, -1.0
    if o == op.RSUB:
        return -1.0, 1.0
    if o == op.MUL:
        return z, x
    if o == op.DIV:
        return 1.0 / z, -x / (z * z)
    # POW
    dx = 0.0 if z == 0.0 else z * x ** (z - 1.0)
    dz = 0.0 if (x == 0.0 and z >= 0.0) else y * np.log(x)
    return dx, dz


@njit(cache=True)
def binary_backward(o, ints, out_aux, a_aux, b_aux, ao, bo, yo, need_a, need_b, vals, adj):
    """Accumulate both partials, summing over the axes each input was broadcast along."""
    n = size_at(ints, out_aux)
    na = size_at(ints, a_aux)
    nb = size_at(ints, b_aux)
    if na == n and nb == n:
        for k in range(n):
            da, db = binary_partials(o, vals[ao + k], vals[bo + k], vals[yo + k])
            g = adj[yo + k]
            if need_a:
                adj[ao + k] += g * da
            if need_b:
                adj[bo + k] += g * db
        return
    dims = out_dims(ints, out_aux)
    sa = broadcast_strides(ints, out_aux, a_aux)
    sb = broadcast_strides(ints, out_aux, b_aux)
    nd = dims.shape[0]
    last = dims[nd - 1]
    if n == 0:
        return
    la = sa[nd - 1]
    lb = sb[nd - 1]
    idx = np.zeros(nd, dtype=np.int64)
    ra = 0
    rb = 0
    k = 0
    for _ in range(n // last):
        ia = ra
        ib = rb
        # inner loop along the last axis; the odometer below only moves between rows
        for _j in range(last):
            da, db = binary_partials(o, vals[ao + ia], vals[bo + ib], vals[yo + k])
            g = adj[yo + k]
            if need_a:
                adj[ao + ia] += g * da
            if need_b:
                adj[bo + ib] += g * db
            k += 1
            ia += la
            ib += lb
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            ra += sa[d]
            rb += sb[d]
            if idx[d] < dims[d]:
                break
            ra -= sa[d] * dims[d]
            rb -= sb[d] * dims[d]
            idx[d] = 0
            d -= 1


@njit(cache=True)
def binary_forward(o, ints, out_aux, a_aux, b_aux, ao, bo, yo, vals):
    """Replay: vals[y] = vals[a] (op) vals[b], broadcasting."""
    n = size_at(ints, out_aux)
    if size_at(ints, a_aux) == n and size_at(ints, b_aux) == n:
        for k in range(n):
            vals[yo + k] = binary_value(o, vals[ao + k], vals[bo + k])
        return
    if n == 0:
        return
    dims = out_dims(ints, out_aux)
    sa = broadcast_strides(ints, out_aux, a_aux)
    sb = broadcast_strides(ints, out_aux, b_aux)
    nd = dims.shape[0]
    last = dims[nd - 1]
    la = sa[nd - 1]
    lb = sb[nd - 1]
    idx = np.zeros(nd, dtype=np.int64)
    ra = 0
    rb = 0
    k = 0
    for _ in range(n // last):
        ia = ra
        ib = rb
        for _j in range(last):
            vals[yo + k] = binary_value(o, vals[ao + ia], vals[bo + ib])
            k += 1
            ia += la
            ib += lb
        d = nd - 2
        while d >= 0:
            idx[d] += 1
            ra += sa[d]
            rb += sb[d]
            if idx[d] < dims[d]:
                break
            ra -= sa[d] * dims[d]
            rb -= sb[d] * dims[d]
            idx[d] = 0
            d -= 1
