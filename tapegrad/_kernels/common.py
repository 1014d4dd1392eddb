"""Small helpers shared by the backward kernels: reading shapes and params from the int side table."""
import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def ndim_at(ints, aux):
    return ints[aux]


@njit(cache=True, inline="always")
def size_at(ints, aux):
    """Number of elements of the record whose shape starts at ints[aux] (ndim, dims...)."""
    nd = ints[aux]
    s = 1
    for k in range(nd):
        s *= ints[aux + 1 + k]
    return s


@njit(cache=True, inline="always")
def params_at(ints, aux):
    """Offset of the op-specific params that follow the shape."""
    return aux + 1 + ints[aux]


@njit(cache=True)
def broadcast_strides(ints, out_aux, in_aux):
    """Element strides of an input read through broadcasting into the output's index space (0 on broadcast axes)."""
    nd_o = ints[out_aux]
    nd_i = ints[in_aux]
    strides = np.zeros(nd_o, dtype=np.int64)
    s = 1
    for k in range(nd_i - 1, -1, -1):
        d = ints[in_aux + 1 + k]
        ko = k + nd_o - nd_i
        if d != 1:
            strides[ko] = s
        s *= d
    return strides


@njit(cache=True)
def out_dims(ints, aux):
    nd = ints[aux]
    dims = np.empty(nd, dtype=np.int64)
    for k in range(nd):
        dims[k] = ints[aux + 1 + k]
    return dims
