"""Dtypes and PyTorch's type-promotion rules."""
import numpy as np


class dtype:
    """A tensor element type; compares equal to itself only, prints like torch's."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize", "_category")

    def __init__(self, name, np_dtype, category):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = category == 2
        self.is_complex = category == 3
        self.is_signed = self.np.kind in "fic"
        self.itemsize = self.np.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating, 3 complex

    def __repr__(self):
        return "tapegrad." + self.name

    def __reduce__(self):
        return (_by_name, (self.name,))

    def to_real(self):
        return {"complex64": float32, "complex128": float64}.get(self.name, self)


bool_ = dtype("bool", np.bool_, 0)
uint8 = dtype("uint8", np.uint8, 1)
int8 = dtype("int8", np.int8, 1)
int16 = dtype("int16", np.int16, 1)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
float16 = dtype("float16", np.float16, 2)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)
complex64 = dtype("complex64", np.complex64, 3)
complex128 = dtype("complex128", np.complex128, 3)

ALL = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64, complex64, complex128)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
# PyTorch's aliases
for _alias, _d in (("float", float32), ("double", float64), ("half", float16), ("long", int64),
                   ("int", int32), ("short", int16), ("cfloat", complex64), ("cdouble", complex128)):
    _BY_NAME[_alias] = _d


def _by_name(name):
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype):
    """The tapegrad dtype of a numpy dtype; TypeError for unsupported ones."""
    try:
        return _BY_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        raise TypeError(f"can't convert np.ndarray of type {np.dtype(np_dtype)}. The only supported types are: "
                        "float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint8, and bool.")


def as_dtype(d):
    """Accept a tapegrad dtype, a numpy dtype, a Python type or a name; return a tapegrad dtype."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if d is complex:
        return complex128
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    return from_numpy_dtype(d)


_default_float = float32


def get_default_dtype():
    return _default_float


def set_default_dtype(d):
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float = d


def default_complex():
    return complex128 if _default_float is float64 else complex64


def promote_types(a, b):
    """PyTorch's promotion of two dtypes: within a category the wider one; across categories the higher
    category's dtype (int64 with float32 is float32, unlike numpy), widened for complex with float64."""
    if a is b:
        return a
    if a._category != b._category:
        high, low = (a, b) if a._category > b._category else (b, a)
        if high.is_complex and low is float64:
            return complex128
        return high
    if {a, b} == {uint8, int8}:
        return int16
    return _BY_NP[np.promote_types(a.np, b.np)]


def scalar_dtype(x):
    """The dtype PyTorch gives a Python scalar operand (a 'wrapped number')."""
    if isinstance(x, bool):
        return bool_
    if isinstance(x, int):
        return int64
    if isinstance(x, float):
        return _default_float
    if isinstance(x, complex):
        return default_complex()
    if isinstance(x, np.generic):
        return from_numpy_dtype(x.dtype)
    raise TypeError(f"unsupported operand type {type(x).__name__}")


def _combine(higher, lower):
    """PyTorch: a lower-priority operand only matters when its category is higher."""
    if higher is None:
        return lower
    if lower is None or lower._category <= higher._category:
        return higher
    if lower.is_complex and higher.is_floating_point:
        # complex scalar with a float tensor keeps the tensor's precision
        return complex128 if higher is float64 else complex64
    return lower


def result_type(dims, zeros, scalars):
    """Result dtype from the dtypes of dimensioned tensors, 0-d tensors and Python scalars (PyTorch's rule)."""
    def fold(ds):
        out = None
        for d in ds:
            out = d if out is None else promote_types(out, d)
        return out
    dim_r, zero_r = fold(dims), fold(zeros)
    wrapped = None
    for d in scalars:
        # a wrapped float counts as the default float dtype, a wrapped int as int64
        wrapped = d if wrapped is None else (d if d._category > wrapped._category else wrapped)
    return _combine(dim_r, _combine(zero_r, wrapped))
