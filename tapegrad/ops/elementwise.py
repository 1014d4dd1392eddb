"""Elementwise operations: arithmetic with broadcasting, unary functions, comparisons.

Derivatives live in _kernels/elementwise.py (unary_derivative, binary_partials), keyed by the opcodes used here.
Python operators are used for the arithmetic because they are several times cheaper than ufunc calls on the
numpy scalars that back 0-d tensors.
"""
import operator

import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, needs_grad, record, record_elementwise
from ._common import (SCALAR_TYPES, as_operand, attach, broadcast_shape, cast, constant, float_result_dtype,
                      result_dtype)


def _quiet():
    # PyTorch returns inf/nan silently where numpy would warn
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


# -- binary ----------------------------------------------------------------------------------------------------

def _tensor_tensor(name, opcode, fn, x, y, true_div=False):
    xd, yd = x._data, y._data
    try:
        if xd.dtype == yd.dtype and (not true_div or xd.dtype.kind == "f"):
            out = fn(xd, yd)
        else:
            dt = (float_result_dtype if true_div else result_dtype)(x, y).np
            out = fn(cast(xd, dt), cast(yd, dt))
    except ValueError:
        broadcast_shape(name, xd.shape, yd.shape)
        raise
    tape = _state.tape
    if tape.grad_enabled and (x._rg or y._rg):
        return record_elementwise(tape, opcode, x, y, out)
    return constant(out)


def _tensor_scalar(name, opcode, fn, x, c, reverse=False, true_div=False):
    xd = x._data
    tc = c.__class__
    if xd.dtype.kind == "f" and (tc is float or tc is int):
        out = fn(c, xd) if reverse else fn(xd, c)    # numpy keeps a float tensor's dtype here, as torch does
    else:
        if not isinstance(c, SCALAR_TYPES):
            raise TypeError(f"{name}(): unsupported operand of type {tc.__name__}")
        dt = (float_result_dtype if true_div else result_dtype)(x, c).np
        cv = dt.type(c)
        out = fn(cv, cast(xd, dt)) if reverse else fn(cast(xd, dt), cv)
    tape = _state.tape
    if x._rg and tape.grad_enabled:
        if isinstance(c, complex):
            raise NotImplementedError(f"{name}(): autograd with complex scalars is not supported yet")
        return record_elementwise(tape, opcode, x, None, out, float(c))
    return constant(out)


def add(input, other, *, alpha=1):
    """input + alpha * other, broadcasting."""
    if other.__class__ is Tensor and input.__class__ is Tensor and alpha == 1:
        return _tensor_tensor("add", op.ADD, operator.add, input, other)
    if alpha != 1:
        other = mul(other, alpha)
    if input.__class__ is not Tensor:
        input, other = other, input
    other = as_operand(other, "add")
    if other.__class__ is Tensor:
        return _tensor_tensor("add", op.ADD, operator.add, input, other)
    return _tensor_scalar("add", op.ADD_SCALAR, operator.add, input, other)


def _refuse_bool_sub(a, b):
    a_bool = isinstance(a, (bool, np.bool_)) or (a.__class__ is Tensor and a._data.dtype.kind == "b")
    b_bool = isinstance(b, (bool, np.bool_)) or (b.__class__ is Tensor and b._data.dtype.kind == "b")
    if a_bool and b_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    if a_bool or b_bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")


def sub(input, other, *, alpha=1):
    """input - alpha * other, broadcasting."""
    if other.__class__ is Tensor and input.__class__ is Tensor and alpha == 1:
        if input._data.dtype.kind == "b" or other._data.dtype.kind == "b":
            _refuse_bool_sub(input, other)
        return _tensor_tensor("sub", op.SUB, operator.sub, input, other)
    if alpha != 1:
        other = mul(other, alpha)
    if input.__class__ is not Tensor:
        return rsub(other, input)
    other = as_operand(other, "sub")
    _refuse_bool_sub(input, other)
    if other.__class__ is Tensor:
        return _tensor_tensor("sub", op.SUB, operator.sub, input, other)
    return _tensor_scalar("sub", op.SUB_SCALAR, operator.sub, input, other)


def rsub(input, other):
    """other - input."""
    if (other.__class__ is float or other.__class__ is int) and input._data.dtype.kind != "b":
        return _tensor_scalar("rsub", op.RSUB_SCALAR, operator.sub, input, other, reverse=True)
    other = as_operand(other, "rsub")
    if other.__class__ is Tensor:
        _refuse_bool_sub(other, input)
        return _tensor_tensor("rsub", op.RSUB, lambda a, b: b - a, input, other)
    _refuse_bool_sub(other, input)
    return _tensor_scalar("rsub", op.RSUB_SCALAR, operator.sub, input, other, reverse=True)


def mul(input, other):
    """input * other, broadcasting."""
    if other.__class__ is Tensor and input.__class__ is Tensor:
        return _tensor_tensor("mul", op.MUL, operator.mul, input, other)
    if input.__class__ is not Tensor:
        input, other = other, input
    other = as_operand(other, "mul")
    if other.__class__ is Tensor:
        return _tensor_tensor("mul", op.MUL, operator.mul, input, other)
    return _tensor_scalar("mul", op.MUL_SCALAR, operator.mul, input, other)


def div(input, other, *, rounding_mode=None):
    """True division (or floor/trunc division, which is not differentiable), broadcasting."""
    if rounding_mode is not None:
        return _rounded_div(input, other, rounding_mode)
    if input.__class__ is not Tensor:
        return mul(reciprocal(as_operand(other, "div")), input)   # scalar / tensor, as PyTorch records it
    other = as_operand(other, "div")
    with _quiet():
        if other.__class__ is Tensor:
            return _tensor_tensor("div", op.DIV, operator.truediv, input, other, true_div=True)
        return _tensor_scalar("div", op.DIV_SCALAR, operator.truediv, input, other, true_div=True)


def _rounded_div(input, other, mode):
    if mode not in ("floor", "trunc"):
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{mode}'")
    a, b = as_operand(input, "div"), as_operand(other, "div")
    dt = result_dtype(a, b).np
    ad = cast(a._data, dt) if a.__class__ is Tensor else dt.type(a)
    bd = cast(b._data, dt) if b.__class__ is Tensor else dt.type(b)
    with _quiet():
        if dt.kind in "iub":
            if np.any(bd == 0):
                raise RuntimeError("ZeroDivisionError")
            out = np.floor_divide(ad, bd) if mode == "floor" else np.trunc(np.true_divide(ad, bd)).astype(dt)
        else:
            out = np.floor_divide(ad, bd) if mode == "floor" else np.trunc(ad / bd)
    return constant(out)


def true_divide(input, other):
    return div(input, other)


def pow(input, exponent):
    """input ** exponent with a tensor or scalar on either side."""
    if input.__class__ is not Tensor:
        base = as_operand(input, "pow")
        if base.__class__ is not Tensor:
            with _quiet():
                return _tensor_scalar("pow", op.RPOW_SCALAR, operator.pow, exponent, base, reverse=True)
        input = base
    exponent = as_operand(exponent, "pow")
    with _quiet():
        if exponent.__class__ is Tensor:
            return _tensor_tensor("pow", op.POW, operator.pow, input, exponent)
        if input._data.dtype.kind in "iu" and isinstance(exponent, (int, np.integer)) and exponent < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _tensor_scalar("pow", op.POW_SCALAR, operator.pow, input, exponent)


def _rpow(self, other):
    return pow(other, self)


def _rtruediv(self, other):
    return div(other, self)


attach(add, sub, mul, div, pow, rsub, true_divide)
attach(multiply=mul, subtract=sub, divide=div,
       __add__=add, __radd__=add, __sub__=sub, __rsub__=rsub, __mul__=mul, __rmul__=mul,
       __truediv__=div, __rtruediv__=_rtruediv, __pow__=pow, __rpow__=_rpow,
       __floordiv__=lambda a, b: div(a, b, rounding_mode="floor"),
       __rfloordiv__=lambda a, b: div(b, a, rounding_mode="floor"))


# -- unary -----------------------------------------------------------------------------------------------------

def _sigmoid(x):
    # split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return out if out.ndim or isinstance(x, np.ndarray) else out[()]


def _relu(x):
    return np.maximum(x, x.dtype.type(0))


# name, opcode, numpy forward, whether integer input gives a float result (else the dtype is kept)
_UNARY = [
    ("neg", op.NEG, operator.neg, False),
    ("exp", op.EXP, np.exp, True),
    ("log", op.LOG, np.log, True),
    ("sqrt", op.SQRT, np.sqrt, True),
    ("abs", op.ABS, np.abs, False),
    ("sin", op.SIN, np.sin, True),
    ("cos", op.COS, np.cos, True),
    ("tanh", op.TANH, np.tanh, True),
    ("sigmoid", op.SIGMOID, _sigmoid, True),
    ("relu", op.RELU, _relu, False),
    ("reciprocal", op.RECIPROCAL, np.reciprocal, True),
]


def _make_unary(name, opcode, fn, to_float):
    def unary(input):
        d = input._data
        if to_float and d.dtype.kind in "iub":
            from .._dtypes import get_default_dtype
            d = d.astype(get_default_dtype().np)
        elif d.dtype.kind == "b" and name in ("neg",):
            raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying "
                               "to invert a mask, use the `~` or `logical_not()` operator instead.")
        with _quiet():
            out = fn(d)
        tape = _state.tape
        if input._rg and tape.grad_enabled:
            return record_elementwise(tape, opcode, input, None, out)
        return constant(out)
    unary.__name__ = unary.__qualname__ = name
    unary.__doc__ = f"Elementwise {name}."
    return unary


for _name, _opcode, _fn, _to_float in _UNARY:
    globals()[_name] = _make_unary(_name, _opcode, _fn, _to_float)
    attach(globals()[_name])
attach(__neg__=globals()["neg"], __abs__=globals()["abs"], negative=globals()["neg"], absolute=globals()["abs"])


def __pos__(self):
    return self


def clone(input, *, memory_format=None):
    """A copy that stays in the graph (CloneBackward0)."""
    out = np.array(input._data, copy=True) if input._data.ndim else input._data.copy()
    if needs_grad(input):
        return record(op.CLONE, (input,), out)
    return constant(out)


def to(input, *args, dtype=None, copy=False, **kwargs):
    """Convert to another dtype (device arguments other than 'cpu' are refused)."""
    from .._dtypes import as_dtype, dtype as _dtype
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, _dtype) or a in (float, int, bool):
            dtype = as_dtype(a)
        elif isinstance(a, str) and a != "cpu":
            raise RuntimeError(f"tapegrad runs on the CPU only; cannot move a tensor to '{a}'")
    if dtype is None:
        return clone(input) if copy else input
    dt = as_dtype(dtype)
    if dt.np == input._data.dtype and not copy:
        return input
    out = input._data.astype(dt.np)
    if needs_grad(input) and dt._category >= 2:
        # the constant names the bits the value is rounded to, so tg.compile's replay rounds the same way
        return record(op.TO_COPY, (input,), out, const=float(8 * out.dtype.itemsize))
    return constant(out)


def _to_dtype(name, dt):
    def convert(self):
        return to(self, dtype=dt)
    convert.__name__ = name
    return convert


attach(clone, to, __pos__=__pos__)
attach(float=_to_dtype("float", "float32"), double=_to_dtype("double", "float64"), half=_to_dtype("half", "float16"),
       long=_to_dtype("long", "int64"), int=_to_dtype("int", "int32"), bool=_to_dtype("bool", "bool"))


def _contiguous(self, memory_format=None):
    return self


def _cpu(self):
    return self


attach(contiguous=_contiguous, cpu=_cpu)


# -- comparisons (not differentiable) --------------------------------------------------------------------------

def _make_compare(name, fn, opcode):
    def compare(input, other):
        if not isinstance(other, (Tensor,) + SCALAR_TYPES):
            if isinstance(other, (list, tuple, np.ndarray)):
                other = as_operand(other, name)
            else:
                return NotImplemented
        od = other._data if other.__class__ is Tensor else other
        try:
            out = (np.asarray(fn(input._data, od)) if input._data.ndim or getattr(od, "ndim", 0)
                   else fn(input._data, od))
        except ValueError:
            broadcast_shape(name, input._data.shape, np.shape(od))
            raise
        tape = _state.tape
        if tape.tracing is not None:      # tg.compile: replay recomputes it (it may steer an `if`)
            return tape.tracing.comparison(opcode, input, other, out)
        return constant(out)
    compare.__name__ = name
    return compare


eq = _make_compare("eq", np.equal, op.EQ)
ne = _make_compare("ne", np.not_equal, op.NE)
lt = _make_compare("lt", np.less, op.LT)
le = _make_compare("le", np.less_equal, op.LE)
gt = _make_compare("gt", np.greater, op.GT)
ge = _make_compare("ge", np.greater_equal, op.GE)
attach(eq, ne, lt, le, gt, ge, __eq__=eq, __ne__=ne, __lt__=lt, __le__=le, __gt__=gt, __ge__=ge,
       greater=gt, less=lt, greater_equal=ge, less_equal=le, not_equal=ne)


def equal(input, other):
    """True if both tensors have the same shape and elements."""
    return input._data.shape == other._data.shape and bool(np.all(input._data == other._data))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def isnan(input):
    out = np.isnan(input._data)
    if _state.tape.tracing is not None:
        return _state.tape.tracing.comparison(op.IS_NAN, input, 0.0, out)
    return constant(out)


def isfinite(input):
    return constant(np.isfinite(input._data))


def logical_not(input):
    out = np.logical_not(input._data)
    if _state.tape.tracing is not None:
        return _state.tape.tracing.comparison(op.NOT, input, 0.0, out)
    return constant(out)


def bitwise_not(input):
    return constant(np.invert(input._data))


attach(equal, allclose, isnan, isfinite, logical_not, bitwise_not, __invert__=bitwise_not)
