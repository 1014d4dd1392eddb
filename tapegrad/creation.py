"""Creating tensors: from data, filled, ranges, random (seeded by manual_seed)."""
import threading

import numpy as np

from . import _dtypes
from ._dtypes import as_dtype, from_numpy_dtype, get_default_dtype
from .tensor import Tensor, _wrap

INTEGRAL_GRAD = "Only Tensors of floating point and complex dtype can require gradients"


def _finish(data, requires_grad):
    """Wrap `data`, holding a 0-d result as a numpy scalar (fast arithmetic) unless it must share memory."""
    if requires_grad and data.dtype.kind not in "fc":
        raise RuntimeError(INTEGRAL_GRAD)
    if isinstance(data, np.ndarray) and data.ndim == 0:
        data = data[()]
    return _wrap(data, bool(requires_grad))


def _infer_dtype(data):
    """PyTorch's dtype for nested Python data: bool < int64 < default float < default complex."""
    kinds = set()

    def visit(x):
        if isinstance(x, Tensor):
            kinds.add(("t", x._data.dtype))
        elif isinstance(x, (list, tuple)):
            for y in x:
                visit(y)
        elif isinstance(x, (bool, np.bool_)):
            kinds.add("b")
        elif isinstance(x, (int, np.integer)):
            kinds.add("i")
        elif isinstance(x, (float, np.floating)):
            kinds.add("f")
        elif isinstance(x, (complex, np.complexfloating)):
            kinds.add("c")
        else:
            raise TypeError(f"Could not infer dtype of {type(x).__name__}")
    visit(data)
    tensor_dtypes = [k[1] for k in kinds if isinstance(k, tuple)]
    if "c" in kinds:
        return _dtypes.default_complex().np
    if "f" in kinds:
        return get_default_dtype().np
    if tensor_dtypes:
        return np.result_type(*tensor_dtypes, *(np.int64 for k in kinds if k == "i"))
    if "i" in kinds:
        return np.dtype(np.int64)
    if "b" in kinds:
        return np.dtype(np.bool_)
    return get_default_dtype().np   # empty list


def _unwrap(data):
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)):
        return [_unwrap(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new leaf tensor holding a copy of `data` (nested lists, scalars, arrays or tensors)."""
    if isinstance(data, np.ndarray):
        np_dtype = as_dtype(dtype).np if dtype is not None else from_numpy_dtype(data.dtype).np
        arr = np.array(data, dtype=np_dtype, copy=True)
    elif isinstance(data, Tensor):
        arr = np.array(data._data, dtype=as_dtype(dtype).np if dtype is not None else data._data.dtype, copy=True)
    else:
        np_dtype = as_dtype(dtype).np if dtype is not None else _infer_dtype(data)
        try:
            arr = np.array(_unwrap(data), dtype=np_dtype)
        except ValueError as err:
            raise ValueError(f"tensor(): could not build a tensor from the data: {err}") from None
    return _finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but reuses a tensor or numpy array's memory when the dtype allows."""
    if isinstance(data, Tensor):
        return data if dtype is None or as_dtype(dtype).np == data._data.dtype else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or as_dtype(dtype).np == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_numpy(ndarray):
    """A tensor sharing memory with a numpy array."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    from_numpy_dtype(ndarray.dtype)
    return _wrap(ndarray)


def _size(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    if any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    return size


def _np_dtype(dtype, default=None):
    return as_dtype(dtype).np if dtype is not None else (default or get_default_dtype().np)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.zeros(_size(size), _np_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.ones(_size(size), _np_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return _finish(np.empty(_size(size), _np_dtype(dtype)), requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = _dtypes.scalar_dtype(fill_value)
    return _finish(np.full(_size((size,)), fill_value, _np_dtype(dtype)), requires_grad)


def zeros_like(input, *, dtype=None, requires_grad=False):
    return _finish(np.zeros(input._data.shape, _np_dtype(dtype, input._data.dtype)), requires_grad)


def ones_like(input, *, dtype=None, requires_grad=False):
    return _finish(np.ones(input._data.shape, _np_dtype(dtype, input._data.dtype)), requires_grad)


def empty_like(input, *, dtype=None, requires_grad=False):
    return _finish(np.empty(input._data.shape, _np_dtype(dtype, input._data.dtype)), requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad=False):
    return _finish(np.full(input._data.shape, fill_value, _np_dtype(dtype, input._data.dtype)), requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Values from start (default 0) up to end, excluding it; int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    args = [_unwrap(v) for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if dtype is None:
        floating = any(isinstance(v, (float, np.floating)) or getattr(v, "dtype", np.dtype("i")).kind == "f"
                       for v in args)
        dtype = get_default_dtype() if floating else _dtypes.int64
    np_dtype = as_dtype(dtype).np
    n = int(np.ceil((float(args[1]) - float(args[0])) / float(args[2])))
    data = (np.arange(max(n, 0), dtype=np.float64) * float(args[2]) + float(args[0])).astype(np_dtype)
    if np_dtype.kind in "iu":
        data = np.arange(int(args[0]), int(args[1]), int(args[2]), dtype=np_dtype)
    return _finish(data, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    return _finish(np.linspace(float(start), float(end), int(steps)).astype(_np_dtype(dtype)), requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_np_dtype(dtype)), requires_grad)


# -- random ------------------------------------------------------------------------------------------------------

class _Generator:
    """The default generator: one numpy PCG64 stream, reseeded by manual_seed (not torch's bit stream)."""

    def __init__(self, seed=None):
        self._lock = threading.Lock()
        self.manual_seed(np.random.SeedSequence().entropy if seed is None else seed)

    def manual_seed(self, seed):
        self._seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self):
        return self._seed


default_generator = _Generator()


def manual_seed(seed):
    """Seed the default generator used by rand, randn, randint, dropout and nn.init."""
    return default_generator.manual_seed(seed)


def initial_seed():
    return default_generator.initial_seed()


def _rng(generator):
    return (generator or default_generator).rng


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    np_dtype = _np_dtype(dtype)
    return _finish(_rng(generator).random(_size(size)).astype(np_dtype), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    np_dtype = _np_dtype(dtype)
    return _finish(_rng(generator).standard_normal(_size(size)).astype(np_dtype), requires_grad)


def randint(low, high=None, size=(), *, generator=None, dtype=None, device=None):
    if high is None:
        low, high = 0, low
    return _finish(_rng(generator).integers(low, high, size=_size((size,))).astype(_np_dtype(dtype, np.int64)), False)


def rand_like(input, *, dtype=None):
    return rand(*input.shape, dtype=dtype or input.dtype)


def randn_like(input, *, dtype=None):
    return randn(*input.shape, dtype=dtype or input.dtype)
