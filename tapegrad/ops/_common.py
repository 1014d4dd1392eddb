"""Helpers the operation families share: operand coercion, dtype promotion, broadcasting errors."""
import numpy as np

from .. import _dtypes
from ..tensor import Tensor, _wrap

SCALAR_TYPES = (int, float, bool, complex, np.number, np.bool_)


def as_operand(x, name):
    """A Tensor or a Python/numpy scalar; anything array-like becomes a constant tensor."""
    if x.__class__ is Tensor or isinstance(x, SCALAR_TYPES):
        return x
    if isinstance(x, (list, tuple, np.ndarray)):
        from ..creation import tensor
        return tensor(x)
    raise TypeError(f"{name}(): unsupported operand of type {type(x).__name__}")


def operand_dtype_groups(operands):
    dims, zeros, scalars = [], [], []
    for x in operands:
        if x.__class__ is Tensor:
            (dims if x._data.ndim else zeros).append(_dtypes.from_numpy_dtype(x._data.dtype))
        else:
            scalars.append(_dtypes.scalar_dtype(x))
    return dims, zeros, scalars


def result_dtype(*operands):
    """PyTorch's result dtype for tensors and Python scalars."""
    return _dtypes.result_type(*operand_dtype_groups(operands))


def float_result_dtype(*operands):
    """result_dtype, promoted to the default float dtype when integral (true division, exp, ...)."""
    d = result_dtype(*operands)
    return d if d._category >= 2 else _dtypes.get_default_dtype()


def cast(data, np_dtype):
    if data.dtype == np_dtype:
        return data
    return data.astype(np_dtype)


def broadcast_shape(name, s1, s2):
    """The broadcast shape of s1 and s2, or PyTorch's error message naming the mismatching sizes."""
    try:
        return np.broadcast_shapes(s1, s2)
    except ValueError:
        n = max(len(s1), len(s2))
        p1 = (1,) * (n - len(s1)) + tuple(s1)
        p2 = (1,) * (n - len(s2)) + tuple(s2)
        for k in range(n - 1, -1, -1):
            if p1[k] != p2[k] and p1[k] != 1 and p2[k] != 1:
                raise RuntimeError(f"The size of tensor a ({p1[k]}) must match the size of tensor b "
                                   f"({p2[k]}) at non-singleton dimension {k}") from None
        raise


def wrap_dim(dim, ndim, name):
    n = max(ndim, 1)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{name}(): dim must be an int, got {type(dim).__name__}")
    if not -n <= dim < n:
        raise IndexError(f"{name}(): Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return int(dim) % n


def wrap_dims(dims, ndim, name):
    if isinstance(dims, (int, np.integer)):
        dims = (dims,)
    out = tuple(wrap_dim(d, ndim, name) for d in dims)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{name}(): dim {out} appears multiple times in the list of dims")
    return out


def constant(data):
    """A handle that does not require grad (results computed outside the graph)."""
    return _wrap(data)


def attach(*functions, **renamed):
    """Make functions Tensor methods under their own names (and renamed ones under the given names)."""
    for fn in functions:
        setattr(Tensor, fn.__name__, fn)
    for name, fn in renamed.items():
        setattr(Tensor, name, fn)
