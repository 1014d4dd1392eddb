"""Reductions: sum, mean, prod, var/std, logsumexp, norms, max/min/amax/amin/median over all elements or dims;
selections along one dim (max/min/median/kthvalue with indices, sort, topk) and scans (cumsum, cumprod);
non-differentiable ones (argmax, all, any, count_nonzero, unique)."""
import builtins as _py
import math
import warnings
from collections import namedtuple
from types import SimpleNamespace

import numpy as np

from .. import _dtypes
from .._kernels import opcodes as op
from ..tensor import Tensor, needs_grad, record, recording_tape
from ._common import attach, constant

# torch.return_types: named (values, indices) pairs
return_types = SimpleNamespace(**{name: namedtuple(name, ["values", "indices"])
                                  for name in ("max", "min", "sort", "topk", "median", "kthvalue")})


def _wrap_dim(dim, ndim):
    n = _py.max(ndim, 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return int(dim) % n


def _axes(dim, ndim):
    """The reduced axes of a reduction: None or () for all of them, an int, or a tuple of distinct dims."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (dim,)
    if len(dim) == 0:
        return tuple(range(ndim))
    axes = tuple(_wrap_dim(d, ndim) for d in dim)
    for k, d in enumerate(axes):
        if d in axes[:k]:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
    return tuple(a for a in axes if a < ndim)     # dim 0 / -1 of a 0-d tensor reduce nothing


def _count(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


_TORCH_TYPE_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long", "int32": "Int",
                     "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _dtype_name(np_dtype):
    """PyTorch's scalar type name in messages (Long, Double, ...)."""
    name = _dtypes.from_numpy_dtype(np_dtype).name
    return _TORCH_TYPE_NAMES.get(name, name.capitalize())


def _record_reduce(opcode, input, out, axes, const=0.0):
    """Record a REDUCE op: params are y's keepdim shape (x's shape with the reduced axes set to 1)."""
    shape = input._data.shape
    keep = tuple(1 if k in axes else s for k, s in enumerate(shape))
    aux = recording_tape().put_ints((out.ndim,) + tuple(out.shape) + (len(keep),) + keep)
    return record(opcode, (input,), out, aux=aux, const=const)


def _reduce(name, input, dim, keepdim, scale_by_count, dtype):
    d = input._data
    if dtype is not None:
        d = d.astype(_dtypes.as_dtype(dtype).np)
    if scale_by_count and d.dtype.kind not in "fc":
        raise RuntimeError(f"{name}(): could not infer output dtype. Input dtype must be either a floating point "
                           f"or complex dtype. Got: {_dtype_name(d.dtype)}")
    if not scale_by_count and d.dtype.kind in "biu" and dtype is None:
        d = d.astype(np.int64)   # PyTorch sums integers and bools as int64
    axes = _axes(dim, d.ndim)
    count = _count(d.shape, axes)
    out = d.sum(axis=axes, keepdims=keepdim) if d.ndim else d
    if scale_by_count:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = out / d.dtype.type(count) if count else out * d.dtype.type(np.nan)
    out = np.asarray(out).astype(d.dtype, copy=False)
    if not needs_grad(input):
        return constant(out)
    if d.dtype.kind == "c":
        from . import complex as _complex
        return _complex.reduce(name, input if dtype is None else input.to(dtype), dim, keepdim)
    if dim is None and not keepdim:
        opcode = op.MEAN_ALL if scale_by_count else op.SUM_ALL
    else:
        opcode = op.MEAN_DIM if scale_by_count else op.SUM_DIM
    return _record_reduce(opcode, input, out, axes, (1.0 / count if count else np.nan) if scale_by_count else 1.0)


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum of all elements, or over `dim` (int or tuple)."""
    return _reduce("sum", input, dim, keepdim, False, dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean of all elements, or over `dim` (int or tuple)."""
    return _reduce("mean", input, dim, keepdim, True, dtype)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    """Product of all elements, or along one dim."""
    d = input._data
    if dtype is not None:
        d = d.astype(_dtypes.as_dtype(dtype).np)
    elif d.dtype.kind in "biu":
        d = d.astype(np.int64)
    if dim is not None and not isinstance(dim, (int, np.integer)):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    axes = _axes(dim, d.ndim)
    out = np.asarray(np.prod(d, axis=axes, keepdims=keepdim and dim is not None))
    if not needs_grad(input):
        return constant(out)
    return _record_reduce(op.PROD_ALL if dim is None else op.PROD_DIM, input, out, axes)


def _correction(name, unbiased, correction):
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}() received an invalid combination of arguments: give either unbiased or "
                        "correction, not both")
    if correction is not None:
        return correction
    return 1 if unbiased is None or unbiased else 0


def _moments(name, input, dim, unbiased, keepdim, correction):
    """(var, mean, axes, degrees of freedom) with PyTorch's checks and warning."""
    if isinstance(dim, bool):          # var(x, True): the legacy unbiased flag
        dim, unbiased = None, dim
    d = input._data
    if d.dtype.kind not in "fc":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    c = _correction(name, unbiased, correction)
    axes = _axes(dim, d.ndim)
    count = _count(d.shape, axes)
    dof = count - c
    if dof <= 0:
        warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                      "reduction factor (input numel divided by output numel).", UserWarning, stacklevel=3)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.mean(d, axis=axes, keepdims=True) if count else np.full_like(np.sum(d, axis=axes, keepdims=True),
                                                                              np.nan)
        v = np.sum((d - m) ** 2, axis=axes, keepdims=keepdim) / d.dtype.type(_py.max(dof, 0))
    if not keepdim:
        m = m.reshape(v.shape)
    return np.asarray(v).astype(d.dtype), np.asarray(m).astype(d.dtype), axes, count, float(dof)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over all elements or dims, divided by count - correction (default 1; unbiased=False means 0)."""
    v, _, axes, _, dof = _moments("var", input, dim, unbiased, keepdim, correction)
    return _record_reduce(op.VAR, input, v, axes, dof) if needs_grad(input) else constant(v)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of var with the same arguments."""
    v, _, axes, _, dof = _moments("std", input, dim, unbiased, keepdim, correction)
    s = np.sqrt(v)
    return _record_reduce(op.STD, input, s, axes, dof) if needs_grad(input) else constant(s)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) with var's arguments."""
    v, m, axes, count, dof = _moments("var_mean", input, dim, unbiased, keepdim, correction)
    if not needs_grad(input):
        return constant(v), constant(m)
    return (_record_reduce(op.VAR_MEAN_VAR, input, v, axes, dof),
            _record_reduce(op.VAR_MEAN_MEAN, input, m, axes, 1.0 / count if count else np.nan))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) with std's arguments."""
    v, m, axes, count, dof = _moments("std_mean", input, dim, unbiased, keepdim, correction)
    s = np.sqrt(v)
    if not needs_grad(input):
        return constant(s), constant(m)
    return (_record_reduce(op.STD_MEAN_STD, input, s, axes, dof),
            _record_reduce(op.STD_MEAN_MEAN, input, m, axes, 1.0 / count if count else np.nan))


def logsumexp(input, dim, keepdim=False):
    """log(sum(exp(x))) over dim, computed stably (shifted by the largest element)."""
    d = input._data
    if d.dtype.kind not in "fc":
        d = d.astype(_dtypes.get_default_dtype().np)
    axes = _axes(dim, d.ndim)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if _count(d.shape, axes):
            top = np.max(d, axis=axes, keepdims=True)
            top = np.where(np.isinf(top), 0.0, top).astype(d.dtype)
        else:
            top = np.zeros(np.sum(d, axis=axes, keepdims=True).shape, d.dtype)
        out = np.log(np.sum(np.exp(d - top), axis=axes, keepdims=True)) + top
    out = np.asarray(out if keepdim else out.reshape(np.sum(d, axis=axes).shape)).astype(d.dtype)
    return _record_reduce(op.LOGSUMEXP, input, out, axes) if needs_grad(input) else constant(out)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """The vector ord-norm over all elements or dims (tg.linalg.vector_norm)."""
    d = x._data
    if d.dtype.kind not in "fc":
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. "
                           f"Got {_dtype_name(d.dtype)}")
    if dtype is not None:
        d = d.astype(_dtypes.as_dtype(dtype).np)
    p = float(ord)
    axes = _axes(dim, d.ndim)
    if math.isinf(p) and d.size == 0:
        if len(axes) == d.ndim:
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on an empty tensor because the "
                               "operation does not have an identity")
        for a in axes:
            if d.shape[a] == 0:
                raise RuntimeError(f"linalg.vector_norm cannot compute the {ord} norm on the dimension {a}because "
                                   "this dimension is empty and the operation does not have an identity")
    a = np.abs(d)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if p == math.inf:
            out = np.max(a, axis=axes, keepdims=keepdim) if a.size else np.zeros(np.sum(a, axis=axes, keepdims=keepdim).shape)
        elif p == -math.inf:
            out = np.min(a, axis=axes, keepdims=keepdim) if a.size else np.zeros(np.sum(a, axis=axes, keepdims=keepdim).shape)
        elif p == 0:
            out = np.sum(a != 0, axis=axes, keepdims=keepdim)
        elif p == 1:
            out = np.sum(a, axis=axes, keepdims=keepdim)
        elif p == 2:
            out = np.sqrt(np.sum(a * a, axis=axes, keepdims=keepdim))
        else:
            out = np.sum(a ** p, axis=axes, keepdims=keepdim) ** (1.0 / p)
    out = np.asarray(out).astype(d.dtype)
    if not needs_grad(x):
        return constant(out)
    return _record_reduce(op.VECTOR_NORM, x, out, axes, p)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """torch.norm: the Frobenius / vector p-norm over all elements or dims."""
    if p is None or p == "fro":
        if dim is not None and not isinstance(dim, (int, np.integer)) and len(dim) > 2:
            raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
        p = 2
    elif isinstance(p, str):
        raise NotImplementedError(f"norm(): p={p!r} is not supported by tapegrad (only vector norms and 'fro')")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def _empty_check(name, d, axes, whole, error=RuntimeError):
    """PyTorch refuses max/min/argmax-like reductions that would reduce an empty extent."""
    if whole and d.size == 0:
        extra = "" if error is IndexError else " Specify the reduction dim with the 'dim' argument."
        raise error(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.{extra}")
    for a in axes:
        if d.shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size.")


def _extreme(name, input, dim, keepdim, largest):
    """amax / amin: the largest (smallest) value over all elements or dims; NaN propagates."""
    d = input._data
    axes = _axes(dim, d.ndim)
    _empty_check(name, d, axes, dim is None or (not isinstance(dim, (int, np.integer)) and len(dim) == 0))
    out = np.asarray((np.max if largest else np.min)(d, axis=axes, keepdims=keepdim))
    if not needs_grad(input):
        return constant(out)
    return _record_reduce(op.AMAX if largest else op.AMIN, input, out, axes)


def amax(input, dim=(), keepdim=False):
    """Largest value over dim (all dims by default); ties share the gradient evenly."""
    return _extreme("amax", input, dim, keepdim, True)


def amin(input, dim=(), keepdim=False):
    """Smallest value over dim (all dims by default); ties share the gradient evenly."""
    return _extreme("amin", input, dim, keepdim, False)


def _lines(d, ax):
    """d viewed as (before, along, after) around axis ax (a 0-d tensor is one line of one)."""
    if d.ndim == 0:
        return d.reshape(1, 1, 1)
    return d.reshape(int(math.prod(d.shape[:ax])), d.shape[ax],
                     int(math.prod(d.shape[ax + 1:])))


def _stable_argsort(x3, descending):
    """Positions along axis 1 in sorted order, ties in their original order, NaN largest (as order.py)."""
    if not descending:
        return np.argsort(x3, axis=1, kind="stable")
    L = x3.shape[1]
    return (L - 1 - np.argsort(x3[:, ::-1], axis=1, kind="stable"))[:, ::-1]


def _select(opcode, input, dim, keepdim, positions, k, flag):
    """Run a selection along dim: positions(x3) gives the picked positions (before, k, after); returns the
    (values, indices) handles, recording the flat x index of every value."""
    d = input._data
    ax = _wrap_dim(dim, d.ndim)
    x3 = _lines(d, ax)
    pos = positions(x3)
    vals = np.take_along_axis(x3, pos, axis=1)
    if d.ndim == 0:
        shape = ()
    elif keepdim or opcode in (op.SORT, op.TOPK):
        shape = d.shape[:ax] + (k,) + d.shape[ax + 1:]
    else:
        shape = d.shape[:ax] + d.shape[ax + 1:]
    values = vals.reshape(shape)
    indices = constant(pos.astype(np.int64).reshape(shape))
    if not needs_grad(input):
        return constant(values), indices
    L, post = x3.shape[1], x3.shape[2]
    flat = (np.arange(x3.shape[0], dtype=np.int64)[:, None, None] * (L * post) + pos * post
            + np.arange(post, dtype=np.int64)[None, None, :])
    head = np.array((len(shape),) + shape + (L, post, k, flag), dtype=np.int64)
    aux = recording_tape().put_ints(np.concatenate([head, flat.ravel()]))
    return record(opcode, (input,), values, aux=aux), indices


def _first_nan_or(x3, pos):
    """Where a line holds a NaN, the position of its first NaN instead (median propagates NaN)."""
    nan = np.isnan(x3) if x3.dtype.kind in "fc" else np.zeros(x3.shape, bool)
    has = nan.any(axis=1, keepdims=True)
    return np.where(has, np.argmax(nan, axis=1, keepdims=True), pos)


def _max_or_min(name, input, dim, keepdim, largest):
    if isinstance(dim, Tensor):
        from . import elementwise
        binary = getattr(elementwise, "maximum" if largest else "minimum", None)
        if binary is None:
            raise TypeError(f"{name}(input, other): the elementwise form is not supported yet")
        return binary(input, dim)
    d = input._data
    if dim is None:
        if keepdim:
            raise TypeError(f"{name}() received an invalid combination of arguments - got (keepdim=bool)")
        _empty_check(name, d, (), True)
        out = np.asarray((np.max if largest else np.min)(d))
        if not needs_grad(input):
            return constant(out)
        return _record_reduce(op.MAX_ALL if largest else op.MIN_ALL, input, out, tuple(range(d.ndim)))
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}() received an invalid combination of arguments - got (dim={type(dim).__name__})")
    ax = _wrap_dim(dim, d.ndim)
    _empty_check(name, d, (ax,) if d.ndim else (), False)
    pick = np.argmax if largest else np.argmin      # numpy, like PyTorch, returns the first NaN or extreme
    result = _select(op.MAX_DIM if largest else op.MIN_DIM, input, ax, keepdim,
                     lambda x3: pick(x3, axis=1, keepdims=True), 1, 0)
    return getattr(return_types, name)(*result)


def max(input, dim=None, keepdim=False):
    """The largest element, or (values, indices) along dim; NaN propagates."""
    return _max_or_min("max", input, dim, keepdim, True)


def min(input, dim=None, keepdim=False):
    """The smallest element, or (values, indices) along dim; NaN propagates."""
    return _max_or_min("min", input, dim, keepdim, False)


def _arg(name, input, dim, keepdim, largest):
    d = input._data
    pick = np.argmax if largest else np.argmin
    if dim is None:
        _empty_check(name, d, (), True, IndexError)
        out = np.asarray(pick(d), dtype=np.int64)
        return constant(out.reshape((1,) * d.ndim) if keepdim else out)
    ax = _wrap_dim(dim, d.ndim)
    if d.ndim == 0:
        return constant(np.asarray(0, dtype=np.int64))
    _empty_check(name, d, (ax,), False)
    return constant(np.asarray(pick(d, axis=ax, keepdims=keepdim), dtype=np.int64))


def argmax(input, dim=None, keepdim=False):
    """Index of the largest element (flat when dim is None); int64, not differentiable."""
    return _arg("argmax", input, dim, keepdim, True)


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element (flat when dim is None); int64, not differentiable."""
    return _arg("argmin", input, dim, keepdim, False)


def median(input, dim=None, keepdim=False):
    """The lower median of all elements (NaN if any), or (values, indices) along dim."""
    d = input._data
    if dim is None:
        flat = np.sort(d.reshape(-1))
        if flat.size == 0 or (flat.dtype.kind in "fc" and np.isnan(flat[-1])):
            out = np.asarray(np.nan, dtype=d.dtype)
        else:
            out = np.asarray(flat[(flat.size - 1) // 2])
        if not needs_grad(input):
            return constant(out)
        return _record_reduce(op.MEDIAN_ALL, input, out, tuple(range(d.ndim)))
    ax = _wrap_dim(dim, d.ndim)
    _empty_check("median", d, (ax,) if d.ndim else (), False)
    q = (_lines(d, ax).shape[1] - 1) // 2
    result = _select(op.MEDIAN_DIM, input, ax, keepdim,
                     lambda x3: _first_nan_or(x3, _stable_argsort(x3, False)[:, q:q + 1]), 1, q)
    return return_types.median(*result)


def kthvalue(input, k, dim=-1, keepdim=False):
    """(values, indices) of the k-th smallest element along dim."""
    d = input._data
    ax = _wrap_dim(dim, d.ndim)
    L = d.shape[ax] if d.ndim else 1
    if not 1 <= k <= L:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {ax}")
    result = _select(op.KTHVALUE, input, ax, keepdim, lambda x3: _stable_argsort(x3, False)[:, k - 1:k], 1, k - 1)
    return return_types.kthvalue(*result)


def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along dim; ties keep their order, NaN sorts as the largest value."""
    d = input._data
    ax = _wrap_dim(dim, d.ndim)
    L = d.shape[ax] if d.ndim else 1
    result = _select(op.SORT, input, ax, True, lambda x3: _stable_argsort(x3, descending), L, int(descending))
    return return_types.sort(*result)


def argsort(input, dim=-1, descending=False, stable=False):
    """Indices that sort input along dim (int64, not differentiable)."""
    d = input._data
    ax = _wrap_dim(dim, d.ndim)
    return constant(np.ascontiguousarray(_stable_argsort(_lines(d, ax), descending).reshape(d.shape)))


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, indices) of the k largest (smallest) elements along dim, in sorted order."""
    d = input._data
    ax = _wrap_dim(dim, d.ndim)
    L = d.shape[ax] if d.ndim else 1
    if not 0 <= k <= L:
        raise RuntimeError("selected index k out of range")
    if d.ndim == 0:
        k = 1    # PyTorch returns the element of a 0-d tensor for k = 0 too
    result = _select(op.TOPK, input, ax, True, lambda x3: _stable_argsort(x3, largest)[:, :k], k, int(largest))
    return return_types.topk(*result)


def _scan(name, opcode, input, dim, dtype):
    d = input._data
    if dtype is not None:
        d = d.astype(_dtypes.as_dtype(dtype).np)
    elif d.dtype.kind in "biu":
        d = d.astype(np.int64)
    ax = _wrap_dim(dim, d.ndim)
    if d.ndim == 0:
        out = d.copy()
    else:
        out = (np.cumsum if opcode == op.CUMSUM else np.cumprod)(d, axis=ax)
    if not needs_grad(input):
        return constant(out)
    x3 = _lines(d, ax)
    aux = recording_tape().put_ints((out.ndim,) + tuple(out.shape) + (x3.shape[1], x3.shape[2]))
    return record(opcode, (input,), out, aux=aux)


def cumsum(input, dim, *, dtype=None):
    """Running sums along dim."""
    return _scan("cumsum", op.CUMSUM, input, dim, dtype)


def cumprod(input, dim, *, dtype=None):
    """Running products along dim (zeros handled like PyTorch)."""
    return _scan("cumprod", op.CUMPROD, input, dim, dtype)


def _logical(fn, input, dim, keepdim):
    d = input._data
    axes = _axes(dim, d.ndim)
    out = np.asarray(fn(d != 0, axis=axes, keepdims=keepdim))
    return constant(out.astype(np.uint8) if d.dtype == np.uint8 else out)


def all(input, dim=None, keepdim=False):
    """True where every element over dim is nonzero (bool; uint8 for uint8 input)."""
    return _logical(np.all, input, dim, keepdim)


def any(input, dim=None, keepdim=False):
    """True where some element over dim is nonzero (bool; uint8 for uint8 input)."""
    return _logical(np.any, input, dim, keepdim)


def count_nonzero(input, dim=None):
    """Number of nonzero elements over dim (int64)."""
    d = input._data
    return constant(np.asarray(np.count_nonzero(d, axis=_axes(dim, d.ndim)), dtype=np.int64))


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values (sorted), optionally with the inverse indices and the counts; not differentiable."""
    d = np.asarray(input._data)
    if dim is None:
        res = np.unique(d.reshape(-1), return_inverse=True, return_counts=True)
        inverse = res[1].reshape(d.shape)
    else:
        ax = _wrap_dim(dim, d.ndim)
        res = np.unique(d, return_inverse=True, return_counts=True, axis=ax)
        inverse = res[1].reshape(-1)
    out = [constant(res[0])]
    if return_inverse:
        out.append(constant(inverse.astype(np.int64)))
    if return_counts:
        out.append(constant(res[2].astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


attach(sum, mean, prod, var, std, logsumexp, norm, amax, amin, max, min, argmax, argmin, median, kthvalue, sort,
       argsort, topk, cumsum, cumprod, all, any, count_nonzero, unique)
