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
    # not `s = 1`: typing would pass the literal 1 on to a kernel called with this size before it settles on
    # int64, and numba would compile that kernel once more for a Literal[int] argument
    s = np.int64(1)
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


@njit(cache=True, inline="always")
def _is_trailing(ints, out_aux, in_aux):
    """Whether the input (not 0-d) has the output's trailing dims."""
    nd_o = ints[out_aux]
    nd_i = ints[in_aux]
    if nd_i == 0 or nd_i > nd_o:
        return False
    for k in range(nd_i):
        if ints[in_aux + 1 + k] != ints[out_aux + 1 + nd_o - nd_i + k]:
            return False
    return True


@njit(cache=True, inline="always")
def bias_runs(ints, out_aux, a_aux, b_aux):
    """(run, step_a, step_b) when one input has the output's shape and the other its trailing dims (x + bias): the
    output is whole runs of `run` values, the k-th reading a from k * step_a and b from k * step_b (the bias's step
    is 0). run is 0 for any other broadcast."""
    n = size_at(ints, out_aux)
    na = size_at(ints, a_aux)
    nb = size_at(ints, b_aux)
    if na == n and _is_trailing(ints, out_aux, b_aux):
        return nb, nb, 0
    if nb == n and _is_trailing(ints, out_aux, a_aux):
        return na, 0, na
    return 0, 0, 0


@njit(cache=True, inline="always")
def copy_run(dst, d0, src, s0, n):
    """dst[d0:d0 + n] = src[s0:s0 + n] as a loop over slices: the slice assignment's shape check compiles numba's
    error-message formatting into every loop that has one (seconds per loop, cold), and it cannot fail here."""
    d = dst[d0:d0 + n]
    s = src[s0:s0 + n]
    for k in range(n):
        d[k] = s[k]
