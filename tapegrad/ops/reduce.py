"""Reductions: sum and mean over all elements or over dims, with keepdim."""
import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import needs_grad, record
from ._common import attach, constant, wrap_dims
from .. import _dtypes


def _reduce(name, input, dim, keepdim, scale_by_count, dtype):
    d = input._data
    if dtype is not None:
        d = d.astype(_dtypes.as_dtype(dtype).np)
    if scale_by_count and d.dtype.kind not in "fc":
        raise RuntimeError(f"{name}(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {_dtypes.from_numpy_dtype(d.dtype).name.capitalize()}")
    if not scale_by_count and d.dtype.kind in "biu" and dtype is None:
        d = d.astype(np.int64)   # PyTorch sums integers and bools as int64
    whole = dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0)
    axes = tuple(range(d.ndim)) if whole else wrap_dims(dim, d.ndim, name)
    if d.ndim == 0:
        axes = ()
    count = 1
    for k in axes:
        count *= d.shape[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sum(d, axis=axes, keepdims=keepdim) if d.ndim else d
        if scale_by_count:
            out = out / d.dtype.type(count) if count else out * d.dtype.type(np.nan)
        out = out.astype(d.dtype, copy=False)
    if not needs_grad(input):
        return constant(out)
    keep_shape = tuple(1 if k in axes else s for k, s in enumerate(d.shape))
    if whole and not keepdim:
        opcode = op.MEAN_ALL if scale_by_count else op.SUM_ALL
        kd = (0,)   # a 0-d keepdim entry: the backward broadcasts one value
    else:
        opcode = op.MEAN_DIM if scale_by_count else op.SUM_DIM
        kd = (len(keep_shape),) + keep_shape
    tape = _state.tape
    aux = tape.put_ints((out.ndim,) + tuple(out.shape) + kd)
    return record(opcode, (input,), out, aux=aux, const=(1.0 / count if count else np.nan) if scale_by_count else 1.0)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum of all elements, or over `dim` (int or tuple)."""
    return _reduce("sum", input, dim, keepdim, False, dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean of all elements, or over `dim` (int or tuple)."""
    return _reduce("mean", input, dim, keepdim, True, dtype)


attach(sum, mean)
