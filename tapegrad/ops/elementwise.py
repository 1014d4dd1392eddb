"""Elementwise operations: arithmetic with broadcasting, unary functions, comparisons.

Derivatives live in _kernels/elementwise.py (unary_derivative, binary_partials), keyed by the opcodes used here.
Python operators are used for the arithmetic because they are several times cheaper than ufunc calls on the
numpy scalars that back 0-d tensors.
"""
import math
import operator

import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, needs_grad, record, record_elementwise, record_ufunc
from . import complex as _complex
from ._common import (SCALAR_TYPES, as_operand, attach, broadcast_shape, cast, constant, float_result_dtype,
                      result_dtype)


_F64 = np.float64   # the class of 0-d float64 values: the common case skips the complex check's dtype lookup
# Results of at least this many values are computed into the tape (Tape.push_into); below it the copy costs
# less than working out the broadcast shape in Python. The tests set it to 0, so every size takes that path.
INTO_TAPE_MIN = 1 << 14


def _is_complex(value):
    return value.__class__ is not _F64 and value.dtype.kind == "c"


def _quiet():
    # PyTorch returns inf/nan silently where numpy would warn
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


# -- binary ----------------------------------------------------------------------------------------------------

def _tensor_tensor(name, opcode, fn, x, y, true_div=False, ufunc=None):
    xd, yd = x._data, y._data
    if xd.__class__ is _F64 and yd.__class__ is _F64:
        out = fn(xd, yd)      # 0-d float64, the bulk of scalar code: no dtype to compare
    elif (ufunc is not None and (xd.size >= INTO_TAPE_MIN or yd.size >= INTO_TAPE_MIN) and (xd.ndim or yd.ndim)
          and (x._rg or y._rg) and xd.dtype.char == "d" and yd.dtype.char == "d" and xd.flags.c_contiguous
          and yd.flags.c_contiguous and _state.tape.grad_enabled and _state.tape.into_vals):
        # a large recorded float64 result is computed into its place on the tape (C-contiguous, as numpy and
        # PyTorch give for C-contiguous inputs)
        if xd.shape == yd.shape:
            return record_ufunc(_state.tape, opcode, ufunc, x, y, xd.shape, xd.size)
        try:
            shape = np.broadcast_shapes(xd.shape, yd.shape)
        except ValueError:
            broadcast_shape(name, xd.shape, yd.shape)
            raise
        return record_ufunc(_state.tape, opcode, ufunc, x, y, shape, math.prod(shape))
    else:
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
        if _is_complex(out):
            return _complex.binary(name, x, y)
        return record_elementwise(tape, opcode, x, y, out)
    return constant(out)


def _tensor_scalar(name, opcode, fn, x, c, reverse=False, true_div=False):
    xd = x._data
    tc = c.__class__
    if (tc is float or tc is int) and (xd.__class__ is _F64 or xd.dtype.kind == "f"):
        out = fn(c, xd) if reverse else fn(xd, c)    # numpy keeps a float tensor's dtype here, as torch does
    else:
        if not isinstance(c, SCALAR_TYPES):
            raise TypeError(f"{name}(): unsupported operand of type {tc.__name__}")
        dt = (float_result_dtype if true_div else result_dtype)(x, c).np
        cv = dt.type(c)
        out = fn(cv, cast(xd, dt)) if reverse else fn(cast(xd, dt), cv)
    tape = _state.tape
    if x._rg and tape.grad_enabled:
        if _is_complex(out):
            return _complex.binary(name, x, c, reverse)
        return record_elementwise(tape, opcode, x, None, out, float(c))
    return constant(out)


def add(input, other, *, alpha=1):
    """input + alpha * other, broadcasting."""
    if other.__class__ is Tensor and input.__class__ is Tensor and alpha == 1:
        return _tensor_tensor("add", op.ADD, operator.add, input, other, ufunc=np.add)
    if alpha != 1:
        other = mul(other, alpha)
    if input.__class__ is not Tensor:
        input, other = other, input
    other = as_operand(other, "add")
    if other.__class__ is Tensor:
        return _tensor_tensor("add", op.ADD, operator.add, input, other, ufunc=np.add)
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
        return _tensor_tensor("sub", op.SUB, operator.sub, input, other, ufunc=np.subtract)
    if alpha != 1:
        other = mul(other, alpha)
    if input.__class__ is not Tensor:
        return rsub(other, input)
    other = as_operand(other, "sub")
    _refuse_bool_sub(input, other)
    if other.__class__ is Tensor:
        return _tensor_tensor("sub", op.SUB, operator.sub, input, other, ufunc=np.subtract)
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
        return _tensor_tensor("mul", op.MUL, operator.mul, input, other, ufunc=np.multiply)
    if input.__class__ is not Tensor:
        input, other = other, input
    other = as_operand(other, "mul")
    if other.__class__ is Tensor:
        return _tensor_tensor("mul", op.MUL, operator.mul, input, other, ufunc=np.multiply)
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
            return _tensor_tensor("div", op.DIV, operator.truediv, input, other, true_div=True, ufunc=np.true_divide)
        return _tensor_scalar("div", op.DIV_SCALAR, operator.truediv, input, other, true_div=True)


def _rounded_div(input, other, mode, differentiable=True):
    if mode not in ("floor", "trunc"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{mode}'")
    a, b = as_operand(input, "div"), as_operand(other, "div")
    if a.__class__ is Tensor and b.__class__ is Tensor:
        broadcast_shape("div", a._data.shape, b._data.shape)
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
    # the `//` operator is not differentiable in PyTorch (NotImplemented); div(rounding_mode=...) has zero gradients
    return _record_rounded_div(mode, a, b, out) if differentiable else constant(out)


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
       __floordiv__=lambda a, b: _rounded_div(a, b, "floor", differentiable=False),
       __rfloordiv__=lambda a, b: _rounded_div(b, a, "floor", differentiable=False))


# -- unary -----------------------------------------------------------------------------------------------------

def _sigmoid(x):
    # split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return out if out.ndim or isinstance(x, np.ndarray) else out[()]


def _relu(x):
    return np.maximum(x, x.dtype.type(0))


def _kernel_unary(opcode):
    """The numpy-facing forward of a unary opcode: the values the tape's forward replay computes."""
    from .._kernels.elementwise import unary_apply

    def forward(d, c=0.0):
        a = np.ascontiguousarray(d, dtype=np.float64).reshape(-1)
        out = unary_apply(opcode, a, float(c)).reshape(np.shape(d)).astype(d.dtype, copy=False)
        return out if isinstance(d, np.ndarray) else out[()]
    return forward


def _replayed(opcode, numpy_forward):
    """The forward of an op whose replay computes it in vectorised arithmetic (see _kernels/elementwise.py): that
    kernel for real arrays (than numpy's, per million values here: sin and cos 3x faster, tanh 4x, exp 2x), so
    eager and replayed values agree exactly; numpy for single values, complex and float16."""
    kernel = _kernel_unary(opcode)

    def forward(d):
        if d.ndim and d.dtype.kind == "f" and d.dtype.itemsize >= 4:
            return kernel(d)
        return numpy_forward(d)
    return forward


# name, opcode, numpy forward, whether integer input gives a float result (else the dtype is kept)
_UNARY = [
    ("neg", op.NEG, operator.neg, False),
    ("exp", op.EXP, _replayed(op.EXP, np.exp), True),
    ("log", op.LOG, np.log, True),
    ("sqrt", op.SQRT, np.sqrt, True),
    ("abs", op.ABS, np.abs, False),
    ("sin", op.SIN, _replayed(op.SIN, np.sin), True),
    ("cos", op.COS, _replayed(op.COS, np.cos), True),
    ("tanh", op.TANH, _replayed(op.TANH, np.tanh), True),
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
            if _is_complex(d):
                return _complex.unary(name, input)
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


# -- elementwise coverage: more unary functions ------------------------------------------------------------------

def _float_input(name, input):
    """input's data, integer and bool promoted to the default float dtype (as PyTorch does for exp, sin, ...)."""
    d = input._data
    if d.dtype.kind in "iub":
        from .._dtypes import get_default_dtype
        d = d.astype(get_default_dtype().np)
    elif d.dtype.kind == "c":
        raise NotImplementedError(f"{name}(): complex tensors are not supported yet")
    return d


def _floats_only(name, input, kernel):
    """PyTorch's refusal of integer input to ops that have no integer kernel."""
    d = input._data
    if d.dtype.kind not in "fc":
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_scalar_type_name(d.dtype)}\'')
    return d


_SCALAR_TYPE_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long", "int32": "Int",
                      "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _scalar_type_name(np_dtype):
    """PyTorch's C++ name of a dtype, as its kernels' error messages print it."""
    return _SCALAR_TYPE_NAMES.get(np.dtype(np_dtype).name, np.dtype(np_dtype).name)


def _unary_result(opcode, input, out, c=0.0):
    tape = _state.tape
    if input._rg and tape.grad_enabled:
        return record_elementwise(tape, opcode, input, None, out, float(c))
    return constant(out)


def _make_float_unary(name, opcode):
    forward = _kernel_unary(opcode)

    def unary(input):
        return _unary_result(opcode, input, forward(_float_input(name, input)))
    unary.__name__ = unary.__qualname__ = name
    unary.__doc__ = f"Elementwise {name} (integer input gives the default float dtype)."
    return unary


exp2 = _make_float_unary("exp2", op.EXP2)
expm1 = _make_float_unary("expm1", op.EXPM1)
log2 = _make_float_unary("log2", op.LOG2)
log10 = _make_float_unary("log10", op.LOG10)
log1p = _make_float_unary("log1p", op.LOG1P)
rsqrt = _make_float_unary("rsqrt", op.RSQRT)
tan = _make_float_unary("tan", op.TAN)
asin = _make_float_unary("asin", op.ASIN)
acos = _make_float_unary("acos", op.ACOS)
atan = _make_float_unary("atan", op.ATAN)
sinh = _make_float_unary("sinh", op.SINH)
cosh = _make_float_unary("cosh", op.COSH)
asinh = _make_float_unary("asinh", op.ASINH)
acosh = _make_float_unary("acosh", op.ACOSH)
atanh = _make_float_unary("atanh", op.ATANH)
erf = _make_float_unary("erf", op.ERF)
erfc = _make_float_unary("erfc", op.ERFC)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh


def _make_stepwise(name, opcode, fn):
    """Piecewise-constant ops: zero gradient; integer input keeps its dtype (a copy), as in PyTorch."""
    def stepwise(input):
        d = input._data
        if d.dtype.kind in "iub":
            if d.dtype.kind == "b" and name != "sign":
                raise RuntimeError(f'"{name}_vml_cpu" not implemented for \'Bool\'')
            return constant(np.sign(d) if name == "sign" else np.array(d, copy=True))
        return _unary_result(opcode, input, fn(d))
    stepwise.__name__ = stepwise.__qualname__ = name
    stepwise.__doc__ = f"Elementwise {name} (zero gradient, as in PyTorch)."
    return stepwise


sign = _make_stepwise("sign", op.SIGN, _kernel_unary(op.SIGN))   # sign(nan) = 0, as in PyTorch
floor = _make_stepwise("floor", op.FLOOR, np.floor)
ceil = _make_stepwise("ceil", op.CEIL, np.ceil)
trunc = _make_stepwise("trunc", op.TRUNC, np.trunc)
fix = trunc
_round0 = _make_stepwise("round", op.ROUND, np.round)


def round(input, *, decimals=0):
    """Round half to even, optionally to `decimals` decimal places (zero gradient)."""
    if decimals == 0:
        return _round0(input)
    d = input._data
    if d.dtype.kind in "iub":
        raise RuntimeError('"round_cpu" not implemented for integer tensors with decimals')
    return _unary_result(op.ROUND_DECIMALS, input, _kernel_unary(op.ROUND_DECIMALS)(d, decimals), decimals)


def frac(input):
    """input - trunc(input) (gradient 1)."""
    d = _floats_only("frac", input, "frac_cpu")
    with _quiet():
        out = d - np.trunc(d)
    return _unary_result(op.FRAC, input, out)


def square(input):
    """input ** 2 (recorded as PowBackward0, as PyTorch does)."""
    return pow(input, 2)


# -- activations (torch.nn.functional's signatures; nn.functional re-exports them) -------------------------------

def _activation(name, opcode, kernel, input, c=0.0, inplace=False):
    d = _floats_only(name, input, kernel)
    if inplace:
        return _in_place(name + "_", input, lambda s: _activation(name, opcode, kernel, s, c))
    return _unary_result(opcode, input, _kernel_unary(opcode)(d, c), c)


def gelu(input, approximate="none"):
    """Gaussian error linear unit: x * Phi(x), or its tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    return _activation("gelu", op.GELU, "GeluKernelImpl", input, 0.0 if approximate == "none" else 1.0)


def silu(input, inplace=False):
    """x * sigmoid(x)."""
    return _activation("silu", op.SILU, "silu_cpu", input, inplace=inplace)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    return _activation("elu", op.ELU, "elu_cpu", input, alpha, inplace=inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, negative_slope * x otherwise (slope negative_slope at 0, as in PyTorch)."""
    return _activation("leaky_relu", op.LEAKY_RELU, "leaky_relu_cpu", input, negative_slope, inplace=inplace)


def logsigmoid(input):
    """log(sigmoid(x)), computed without overflow."""
    return _activation("logsigmoid", op.LOGSIGMOID, "log_sigmoid_cpu", input)


def mish(input, inplace=False):
    """x * tanh(softplus(x))."""
    return _activation("mish", op.MISH, "mish_cpu", input, inplace=inplace)


def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalising constants."""
    return _activation("selu", op.SELU, "elu_cpu", input, inplace=inplace)


def celu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha * (exp(x / alpha) - 1) otherwise."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _activation("celu", op.CELU, "elu_cpu", input, alpha, inplace=inplace)


def hardsigmoid(input, inplace=False):
    """relu6(x + 3) / 6."""
    return _activation("hardsigmoid", op.HARDSIGMOID, "hardsigmoid_cpu", input, inplace=inplace)


def hardswish(input, inplace=False):
    """x * relu6(x + 3) / 6."""
    return _activation("hardswish", op.HARDSWISH, "hardswish_cpu", input, inplace=inplace)


def softsign(input):
    """x / (1 + |x|) (a composition, as in PyTorch)."""
    return input / (input.abs() + 1)


def tanhshrink(input):
    """x - tanh(x) (a composition, as in PyTorch)."""
    return input - input.tanh()


def prelu(input, weight):
    """x for x > 0, weight * x otherwise, with one weight per channel (dim 1) or a single shared one."""
    d = _floats_only("prelu", input, "prelu_cpu")
    if weight._data.dtype != d.dtype:
        raise RuntimeError(f"prelu: Type promoting not supported. Got {_scalar_type_name(d.dtype)} and "
                           f"{_scalar_type_name(weight._data.dtype)}")
    channels = d.shape[1] if d.ndim >= 2 else 1
    count = weight._data.size
    if count != 1 and count != channels:
        raise RuntimeError(f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
                           f"{count} and channel size = {channels}.")
    if count != 1:       # one weight per channel, broadcast along dim 1 (recorded as a view, as in PyTorch)
        weight = weight.view(channels, *([1] * (d.ndim - 2)))
    elif weight.ndim:
        weight = weight.view(())
    with _quiet():
        return _tensor_tensor("prelu", op.PRELU, lambda x, w: np.where(x > 0, x, w * x), input, weight)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""
    d = _floats_only("softplus", input, "softplus_cpu")
    with _quiet():
        z = d * d.dtype.type(beta)
        out = np.where(z > threshold, d, np.log1p(np.exp(z)) / d.dtype.type(beta)).astype(d.dtype, copy=False)
    out = out if isinstance(d, np.ndarray) else out[()]
    return _ternary_result(op.SOFTPLUS, input, None, None, out, beta, threshold)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """clamp(x, min_val, max_val) with zero gradient at the bounds themselves."""
    d = _floats_only("hardtanh", input, "hardtanh_cpu")
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return _in_place("hardtanh_", input, lambda s: hardtanh(s, min_val, max_val))
    out = _clamp_values(d, d.dtype.type(min_val), d.dtype.type(max_val))
    return _ternary_result(op.HARDTANH, input, None, None, out, min_val, max_val)


def relu6(input, inplace=False):
    """min(max(x, 0), 6) (recorded as hardtanh, as in PyTorch)."""
    return hardtanh(input, 0.0, 6.0, inplace=inplace)


def _in_place(name, t, compute):
    from .inplace import apply_inplace
    return apply_inplace(name, t, compute, reads_self=True)


# -- elementwise coverage: binary functions ------------------------------------------------------------------------

def _make_binary(name, opcode, fn, true_div=False, floats_only=None):
    def binary(input, other):
        if input.__class__ is not Tensor:
            input = _as_tensor_like(as_operand(input, name), other)
        other = as_operand(other, name)
        if other.__class__ is not Tensor:
            other = _as_tensor_like(other, input)
        if floats_only:
            _floats_only(name, input if input._data.dtype.kind not in "fc" else other, floats_only)
        with _quiet():
            return _tensor_tensor(name, opcode, fn, input, other, true_div=true_div)
    binary.__name__ = binary.__qualname__ = name
    binary.__doc__ = f"Elementwise {name}, broadcasting."
    return binary


def _as_tensor_like(scalar, other):
    """A Python scalar operand as a 0-d constant tensor of the dtype PyTorch's promotion gives it."""
    if scalar.__class__ is Tensor:
        return scalar
    dt = result_dtype(other, scalar).np if other.__class__ is Tensor else np.asarray(scalar).dtype
    return constant(np.array(scalar, dtype=dt))


atan2 = _make_binary("atan2", op.ATAN2, np.arctan2, true_div=True)
arctan2 = atan2
hypot = _make_binary("hypot", op.HYPOT, np.hypot, floats_only="hypot_cpu")
maximum = _make_binary("maximum", op.MAXIMUM, np.maximum)
minimum = _make_binary("minimum", op.MINIMUM, np.minimum)
_clamp_min_tensor = _make_binary("clamp_min", op.CLAMP_MIN_T, np.maximum)
_clamp_max_tensor = _make_binary("clamp_max", op.CLAMP_MAX_T, np.minimum)


def _clamp_values(d, lo, hi):
    with _quiet():
        out = d if lo is None else np.maximum(d, lo)
        out = out if hi is None else np.minimum(out, hi)
    return out


def _bound_scalar(name, input, bound):
    """A scalar bound: the result dtype (an integer tensor clamped to a float bound becomes float)."""
    dt = result_dtype(input, bound).np
    return dt, dt.type(bound)


def clamp_min(input, min):
    """max(input, min), min a scalar or a broadcasting tensor (gradient to input where input >= min)."""
    if min.__class__ is Tensor:
        return _clamp_min_tensor(input, min)
    dt, lo = _bound_scalar("clamp_min", input, min)
    return _unary_result(op.CLAMP_MIN, input, _clamp_values(cast(input._data, dt), lo, None), min)


def clamp_max(input, max):
    """min(input, max), max a scalar or a broadcasting tensor (gradient to input where input <= max)."""
    if max.__class__ is Tensor:
        return _clamp_max_tensor(input, max)
    dt, hi = _bound_scalar("clamp_max", input, max)
    return _unary_result(op.CLAMP_MAX, input, _clamp_values(cast(input._data, dt), None, hi), max)


def clamp(input, min=None, max=None):
    """min(max(input, min), max) with scalar or tensor bounds, either of them optional."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    tensors = [b.__class__ is Tensor for b in (min, max) if b is not None]
    if any(tensors) and not all(tensors):
        raise TypeError("clamp() received an invalid combination of arguments: min and max must both be "
                        "Tensors or both be Numbers")
    if any(tensors):
        return _clamp_tensors(input, min, max)
    dt = result_dtype(input, *(b for b in (min, max) if b is not None)).np
    lo = None if min is None else dt.type(min)
    hi = None if max is None else dt.type(max)
    out = _clamp_values(cast(input._data, dt), lo, hi)
    return _ternary_result(op.CLAMP, input, None, None, out, -np.inf if min is None else min,
                           np.inf if max is None else max)


def _clamp_tensors(input, min, max):
    present = [t for t in (min, max) if t is not None]
    shape = input._data.shape
    for t in present:
        shape = broadcast_shape("clamp", shape, t._data.shape)
    dt = result_dtype(input, *present).np
    out = _clamp_values(cast(input._data, dt), None if min is None else cast(min._data, dt),
                        None if max is None else cast(max._data, dt))
    out = np.broadcast_to(out, shape).copy() if out.shape != shape else out
    return _ternary_result(op.CLAMP_T, input, min, max, out)


clip = clamp


# -- elementwise coverage: selection and interpolation ----------------------------------------------------------

def _ternary_result(opcode, x, y, extra, out, const=0.0, p1=0.0):
    """Record a TERNARY-family op (inputs x, optional y and extra; scalars const and p1) if grad is needed."""
    if not needs_grad(x, y, extra):
        return constant(out)
    from ..tensor import _result, recording_tape, source_gid
    tape = recording_tape()
    ia = source_gid(x, tape)
    ib = -1 if y is None else source_gid(y, tape)
    ic = () if extra is None else (source_gid(extra, tape),)
    bits = int(np.array(float(p1)).view(np.int64))
    aux = tape.put_ints((out.ndim, *out.shape, len(ic), *ic, bits))
    gid = tape.push(opcode, ia, ib, out, aux, float(const))
    return _result(out, gid, tape.seg)


def _bool_mask(name, mask, what="condition"):
    if mask.__class__ is not Tensor:
        raise TypeError(f"{name}(): argument '{what}' must be Tensor, not {type(mask).__name__}")
    if mask._data.dtype.kind != "b":
        got = _scalar_type_name(mask._data.dtype)
        if name == "where":
            raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype {got}")
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {got.lower()}")


def where(condition, input=None, other=None):
    """condition ? input : other, all three broadcasting; input and other may be Python scalars."""
    if input is None and other is None:
        return tuple(constant(i) for i in np.nonzero(condition._data))
    _bool_mask("where", condition)
    if input.__class__ is not Tensor and other.__class__ is not Tensor:
        dt = result_dtype(as_operand(input, "where"), as_operand(other, "where")).np
        input, other = constant(np.array(input, dtype=dt)), constant(np.array(other, dtype=dt))
    input = _as_tensor_like(as_operand(input, "where"), other)
    other = _as_tensor_like(as_operand(other, "where"), input)
    shape = broadcast_shape("where", condition._data.shape, broadcast_shape("where", input._data.shape,
                                                                               other._data.shape))
    dt = result_dtype(input, other).np
    out = np.where(condition._data, cast(input._data, dt), cast(other._data, dt))
    out = out if shape else out[()]
    return _ternary_result(op.WHERE, input, other, condition, out)


def masked_fill(input, mask, value):
    """input with value (a scalar or a 0-d tensor) where mask is True; mask broadcasts."""
    _bool_mask("masked_fill", mask, "mask")
    if value.__class__ is Tensor and value._data.ndim != 0:
        raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                           f"{value._data.ndim} dimension(s).")
    d = input._data
    shape = broadcast_shape("masked_fill", d.shape, mask._data.shape)
    v = value._data if value.__class__ is Tensor else value
    out = np.where(mask._data, np.asarray(v).astype(d.dtype), d)
    out = out if shape else out[()]
    if value.__class__ is Tensor:
        return _ternary_result(op.MASKED_FILL_T, input, value, mask, out)
    return _ternary_result(op.MASKED_FILL, input, None, mask, out, float(value))


def lerp(input, end, weight):
    """input + weight * (end - input), weight a scalar or a broadcasting tensor."""
    if end.__class__ is not Tensor:
        raise TypeError(f"lerp(): argument 'end' must be Tensor, not {type(end).__name__}")
    for t in (input, end) + ((weight,) if weight.__class__ is Tensor else ()):
        _floats_only("lerp", t, "lerp_kernel_scalar" if weight.__class__ is not Tensor else "lerp_kernel_tensor")
    if input._data.dtype != end._data.dtype:
        raise RuntimeError(f"expected dtype {input.dtype} for `end` but got dtype {end.dtype}")
    shape = broadcast_shape("lerp", input._data.shape, end._data.shape)
    a, b = input._data, end._data
    w = weight._data if weight.__class__ is Tensor else a.dtype.type(weight)
    if weight.__class__ is Tensor:
        shape = broadcast_shape("lerp", shape, w.shape)
    with _quiet():
        out = np.where(np.abs(w) < 0.5, a + w * (b - a), b - (b - a) * (1 - w)).astype(a.dtype, copy=False)
    out = out if shape else out[()]
    if weight.__class__ is Tensor:
        return _ternary_result(op.LERP_T, input, end, weight, out)
    return _ternary_result(op.LERP_S, input, end, None, out, float(weight))


# -- elementwise coverage: rounded division (zero gradients, DivBackward2) ----------------------------------------

def _record_rounded_div(mode, a, b, out):
    if out.dtype.kind != "f" or not needs_grad(a, b):
        return constant(out)
    a, b = _as_tensor_like(a, b), _as_tensor_like(b, a)
    return record_elementwise(_state.tape, op.DIV_FLOOR if mode == "floor" else op.DIV_TRUNC, a, b, out)


# -- elementwise coverage: predicates (not differentiable) ---------------------------------------------------------

def isinf(input):
    return constant(np.isinf(input._data))


def isposinf(input):
    return constant(np.isposinf(input._data))


def isneginf(input):
    return constant(np.isneginf(input._data))


def signbit(input):
    return constant(np.signbit(input._data))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol * |other|, elementwise."""
    broadcast_shape("isclose", input._data.shape, other._data.shape)
    return constant(np.isclose(input._data, other._data, rtol=rtol, atol=atol, equal_nan=equal_nan))


def _make_logical(name, fn):
    def logical(input, other):
        other = as_operand(other, name)
        od = other._data if other.__class__ is Tensor else other
        broadcast_shape(name, input._data.shape, np.shape(od))
        return constant(np.asarray(fn(input._data, od)) if input._data.ndim or np.ndim(od) else fn(input._data, od))
    logical.__name__ = logical.__qualname__ = name
    return logical


logical_and = _make_logical("logical_and", np.logical_and)
logical_or = _make_logical("logical_or", np.logical_or)
logical_xor = _make_logical("logical_xor", np.logical_xor)


# -- Tensor methods and in-place variants -------------------------------------------------------------------------

_METHODS = (exp2, expm1, log2, log10, log1p, rsqrt, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh, erf,
            erfc, sign, floor, ceil, trunc, round, frac, square, atan2, hypot, maximum, minimum, clamp_min, clamp_max,
            clamp, masked_fill, lerp, isinf, isposinf, isneginf, signbit, isclose, logical_and, logical_or,
            logical_xor)
attach(*_METHODS, arcsin=asin, arccos=acos, arctan=atan, arcsinh=asinh, arccosh=acosh, arctanh=atanh,
       arctan2=atan2, clip=clamp, fix=trunc,
       where=lambda self, condition, other: where(condition, self, other))


def _in_place_method(name, fn, reads_self):
    def method(self, *args, **kwargs):
        from .inplace import apply_inplace
        return apply_inplace(name, self, lambda s: fn(s, *args, **kwargs), reads_self=reads_self)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place {name[:-1]}."
    return method


# reads_self: whether the op's backward reads its input (then the value before the write is kept for it)
for _fn, _reads in ((exp2, False), (expm1, False), (log2, True), (log10, True), (log1p, True), (rsqrt, False),
                    (tan, False), (asin, True), (acos, True), (atan, True), (sinh, True), (cosh, True),
                    (asinh, True), (acosh, True), (atanh, True), (erf, True), (erfc, True), (sign, False),
                    (floor, False), (ceil, False), (trunc, False), (round, False), (frac, False), (square, True),
                    (clamp_min, True), (clamp_max, True), (clamp, True), (masked_fill, False), (lerp, True),
                    (globals()["exp"], False), (globals()["log"], True), (globals()["sqrt"], False),
                    (globals()["abs"], True), (globals()["sin"], True), (globals()["cos"], True),
                    (globals()["tanh"], False), (globals()["sigmoid"], False), (globals()["relu"], False),
                    (globals()["neg"], False), (globals()["reciprocal"], False), (atan2, True), (hypot, True),
                    (maximum, True), (minimum, True)):
    setattr(Tensor, _fn.__name__ + "_", _in_place_method(_fn.__name__ + "_", _fn, _reads))
Tensor.clip_ = Tensor.clamp_
Tensor.arctan2_ = Tensor.atan2_
