"""Kernels of the elementwise families: unary (with an optional scalar) and broadcasting binary.

Each op has its value (used by tg.compile's forward replay) next to its derivative (used by the reverse sweep).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from . import opcodes as op
from .common import bias_runs, broadcast_strides, out_dims, size_at
from .frame import FRESH_A, FRESH_B, UNIT_OK, inputs_of


@njit(cache=True, inline="always")
def unary_value(o, x, c):
    """y = f(x) (or f(x, c)) of the unary op o, in float64: what the eager forward computed. The arithmetic with
    a Python scalar comes first: it is most of a scalar tape, and this chain runs per element."""
    if o == op.MUL_SCALAR:
        return x * c
    if o == op.RSUB_SCALAR:
        return c - x
    if o == op.ADD_SCALAR:
        return x + c
    if o == op.SUB_SCALAR:
        return x - c
    if o == op.DIV_SCALAR:
        return x / c if c != 0.0 else (x * math.inf if x != 0.0 else math.nan)
    if o == op.POW_SCALAR:
        return _pow(x, c)
    if o == op.NEG:
        return -x
    if o == op.EXP:
        return _exp_one(x)
    if o == op.LOG:
        return math.log(x) if x > 0.0 else (-math.inf if x == 0.0 else math.nan)
    if o == op.SQRT:
        return math.sqrt(x) if x >= 0.0 else math.nan
    if o == op.ABS:
        return abs(x)
    if o == op.SIN:
        return _sin_one(x, 0.0)
    if o == op.COS:
        return _sin_one(x, 1.0)
    if o == op.TANH:
        return _tanh_one(x)
    if o == op.SIGMOID:
        return 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))
    if o == op.RELU:
        return x if x > 0.0 else 0.0
    if o == op.RECIPROCAL:
        return 1.0 / x if x != 0.0 else math.copysign(math.inf, x)
    if o == op.RPOW_SCALAR:
        return _pow(c, x)
    if o == op.TO_COPY and c == 32.0:
        return np.float64(np.float32(x))
    if o >= op.EXP2:
        return _more_unary_value(o, x, c)
    return x  # CLONE, TO_COPY to float64 (numba has no float16: a half-precision copy replays unrounded)


_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_ONE_SIXTH_F32 = 0.1666666716337204   # float32(1/6): PyTorch's hardsigmoid backward uses it even for float64
_SELU_SCALE = 1.0507009873554804934193349852946


_LN2_HI = 6.93147180369123816490e-01    # ln 2 in two parts: k * _LN2_HI is exact for |k| < 2**20
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2.0)
_F = tuple(1.0 / math.factorial(n) for n in range(22))   # _F[n] = 1/n!


@intrinsic
def _float_bits(typingctx, x):
    """The bits of a float64 as an int64 (a bitcast: no conversion, so loops over it stay vectorised)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_float(typingctx, i):
    """The float64 whose bits are the int64 i."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


_SHIFTER = 6755399441055744.0       # 1.5 * 2**52: adding it to an integer-valued float |k| < 2**51 leaves k, as an
_SHIFTER_BITS = 0x4338000000000000  # integer, in the low bits of the sum's bits (above these of the shifter's own)


@njit(cache=True, inline="always")
def pow2_select(k):
    """2.0 ** k for an integer-valued float -1022 <= k <= 1023, exactly: k + 1023 written into the exponent bits.
    Only adds, shifts and bitcasts, which vectorise: ldexp is a call per element, and converting a float to an
    int64 is one instruction per element without AVX-512."""
    return _bits_float((_float_bits(k + _SHIFTER) - _SHIFTER_BITS + 1023) << 52)


@njit(cache=True, inline="always", error_model="numpy")
def _expm1_reduced(t):
    """(k, exp(r) - 1) with t = k ln(2) + r and |r| <= ln(2) / 2: the core of exp_arith and tanh_arith, exp(r) - 1 by
    its Taylor polynomial to degree 14 (the next term is below 1e-18 of the result)."""
    k = np.floor(t * _INV_LN2 + 0.5)
    r = (t - k * _LN2_HI) - k * _LN2_LO
    p = _F[14]
    p = p * r + _F[13]
    p = p * r + _F[12]
    p = p * r + _F[11]
    p = p * r + _F[10]
    p = p * r + _F[9]
    p = p * r + _F[8]
    p = p * r + _F[7]
    p = p * r + _F[6]
    p = p * r + _F[5]
    p = p * r + _F[4]
    p = p * r + _F[3]
    p = p * r + _F[2]
    return k, r + r * r * p


@njit(cache=True, inline="always", error_model="numpy")
def exp_arith(x):
    """exp in arithmetic only, so that a loop over it vectorises (the C library's exp is a call per element):
    2**k * exp(r), with 2**k applied in two halves so that results near overflow and in the subnormal range are
    rounded once. Within 1 ulp of the C library's exp over the whole range (measured); inf and 0 beyond it, nan
    stays nan."""
    t = 710.0 if x > 710.0 else x        # exp(710) is inf and exp(-746) is 0 already; nan passes both
    t = -746.0 if t < -746.0 else t
    k, em = _expm1_reduced(t)
    half = np.floor(k * 0.5)
    s = pow2_select(half)
    return (1.0 + em) * s * (s if k - half == half else s * 2.0)


@njit(cache=True, error_model="numpy")
def _exp_one(x):
    """exp_arith as a call (see _tanh_one)."""
    return exp_arith(x)


@njit(cache=True, inline="always", error_model="numpy")
def tanh_arith(x):
    """tanh in arithmetic only, so that a loop over it vectorises: the C library's tanh is a call per element,
    4-5x slower in the compiled replay (measured). With E = exp(2|x|) - 1 = 2**k (1 + em) - 1: E / (E + 2) below
    |x| = 0.625, 1 - 2 / (E + 2) above, where that form rounds less. Within 4 ulp of the C library's tanh (measured
    on 120 million points); tanh(-0) = -0, nan stays nan, |x| > 20 gives +-1."""
    a = abs(x)
    y = 40.0 if a > 20.0 else 2.0 * a
    k, em = _expm1_reduced(y)
    s = pow2_select(k)
    e = s * em + (s - 1.0)
    return math.copysign(e / (e + 2.0) if a < 0.625 else 1.0 - 2.0 / (e + 2.0), x)


@njit(cache=True, error_model="numpy")
def _tanh_one(x):
    """tanh_arith as a call: unary_value is inlined in many places, its opcode chain should stay small."""
    return tanh_arith(x)


_PIO2_1 = 1.5707963267341256       # pi/2 in three parts of 33, 33 and 53 bits (derived from 80 digits of pi):
_PIO2_2 = 6.077100506303966e-11     # k * part is exact for the first two while |k| < 2**20, and the parts add up
_PIO2_3 = 2.0222662487959506e-21    # to pi/2 within 1e-37
_TWO_OVER_PI = 2.0 / math.pi
_TRIG_LIMIT = 1e5                   # beyond it (and for inf, nan) the C library reduces the argument
_TRIG_TINY = 2.0 ** -30             # closer than this to a nonzero multiple of pi/2: the C library too
_SIN_F = tuple((-1.0) ** n / math.factorial(2 * n + 1) for n in range(10))   # Taylor coefficients of sin, cos
_COS_F = tuple((-1.0) ** n / math.factorial(2 * n) for n in range(10))


@njit(cache=True, inline="always", error_model="numpy")
def _half_pi_reduced(x):
    """(k, r) with x = k pi/2 + r, |r| <= pi/4 (Cody and Waite's reduction with the three parts of pi/2); x = 0
    beyond _TRIG_LIMIT, where the C library takes over (see trig_needs_libm)."""
    t = x if abs(x) <= _TRIG_LIMIT else 0.0
    k = np.floor(t * _TWO_OVER_PI + 0.5)
    return k, ((t - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3


@njit(cache=True, inline="always", error_model="numpy")
def trig_needs_libm(x):
    """Whether sin_arith could lose accuracy at x: beyond _TRIG_LIMIT (inf and nan included), or so close to a
    multiple of pi/2 that the 119 bits of pi/2 leave too few correct bits in r. Bitwise, so loops over it
    vectorise."""
    k, r = _half_pi_reduced(x)
    return (not abs(x) <= _TRIG_LIMIT) | ((k != 0.0) & (abs(r) < _TRIG_TINY))


@njit(cache=True, inline="always", error_model="numpy")
def sin_arith(x, shift):
    """sin(x + shift * pi/2) (shift 0: sin, 1: cos) in arithmetic only, so that a loop over it vectorises: the C
    library's sin and cos are a call per element, 6-7x slower (measured). Both Taylor polynomials on |r| <= pi/4
    (to degree 19 and 18: the next terms are below 1e-17 of the result), the quadrant picks one by selects. Within
    2 ulp of the C library where trig_needs_libm is false (measured), which the callers check first."""
    k, r = _half_pi_reduced(x)
    q = k + shift
    q = q - 4.0 * np.floor(q * 0.25)
    z = r * r
    ps = _SIN_F[9]
    pc = _COS_F[9]
    for j in range(8, 0, -1):
        ps = ps * z + _SIN_F[j]
        pc = pc * z + _COS_F[j]
    s = r + r * z * ps if z != 0.0 else r      # sin(-0) is -0, and -0 + 0 is not
    c = 1.0 + z * pc
    return s if q == 0.0 else (c if q == 1.0 else (-s if q == 2.0 else -c))


@njit(cache=True, inline="always", error_model="numpy")
def any_trig_needs_libm(x):
    """trig_needs_libm for any element of x: a vectorised pass, so that the sin/cos loops can take the fast path
    for a whole slice (and give exactly _sin_one's values either way)."""
    found = False
    for k in range(x.shape[0]):
        found |= trig_needs_libm(x[k])
    return found


@njit(cache=True, error_model="numpy")
def _sin_one(x, shift):
    """sin(x + shift * pi/2) for one value: sin_arith, or the C library where that could lose accuracy. Every
    replayed and backpropagated sin and cos gives this value, vectorised or not."""
    if trig_needs_libm(x):
        return math.cos(x) if shift == 1.0 else math.sin(x)
    return sin_arith(x, shift)


@njit(cache=True)
def _softplus(x):
    """log(1 + exp(x)) without overflow."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(cache=True)
def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0.0 else math.exp(x) / (1.0 + math.exp(x))


@njit(cache=True)
def _log_of(x, lnb):
    """log(x) / ln(base) with IEEE results at and below zero."""
    if x > 0.0:
        return math.log(x) / lnb
    return -math.inf if x == 0.0 else math.nan


@njit(cache=True)
def _round_decimals(x, d):
    """PyTorch's round(x, decimals=d): nearest-even of x scaled by 10**|d|, scaled back."""
    f = 10.0 ** abs(d)
    return np.rint(x / f) * f if d < 0 else np.rint(x * f) / f


@njit(cache=True, error_model="numpy")   # IEEE inf/nan, not ZeroDivisionError
def _more_unary_value(o, x, c):
    """Values of the unary ops of the elementwise-coverage section."""
    if o == op.EXP2:
        return 2.0 ** x
    if o == op.EXPM1:
        return math.expm1(x)
    if o == op.LOG2:
        return _log_of(x, _LN2)
    if o == op.LOG10:
        return _log_of(x, _LN10)
    if o == op.LOG1P:
        return math.log1p(x) if x > -1.0 else (-math.inf if x == -1.0 else math.nan)
    if o == op.RSQRT:
        if x > 0.0:
            return 1.0 / math.sqrt(x)
        return math.inf if x == 0.0 else math.nan
    if o == op.SIGN:
        return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else 0.0)
    if o == op.TAN:
        return math.tan(x)
    if o == op.ASIN:
        return math.asin(x) if abs(x) <= 1.0 else math.nan
    if o == op.ACOS:
        return math.acos(x) if abs(x) <= 1.0 else math.nan
    if o == op.ATAN:
        return math.atan(x)
    if o == op.SINH:
        return math.sinh(x) if abs(x) < 710.0 else math.copysign(math.inf, x)
    if o == op.COSH:
        return math.cosh(x) if abs(x) < 710.0 else math.inf
    if o == op.ASINH:
        return math.asinh(x)
    if o == op.ACOSH:
        return math.acosh(x) if x >= 1.0 else math.nan
    if o == op.ATANH:
        if abs(x) < 1.0:
            return math.atanh(x)
        return math.copysign(math.inf, x) if abs(x) == 1.0 else math.nan
    if o == op.ERF:
        return math.erf(x)
    if o == op.ERFC:
        return math.erfc(x)
    if o == op.FLOOR:
        return np.floor(x)
    if o == op.CEIL:
        return np.ceil(x)
    if o == op.ROUND:
        return np.rint(x)
    if o == op.ROUND_DECIMALS:
        return _round_decimals(x, c)
    if o == op.TRUNC:
        return np.trunc(x)
    if o == op.FRAC:
        return x - np.trunc(x)
    if o == op.GELU:
        if c == 0.0:
            return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
        return 0.5 * x * (1.0 + math.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x)))
    if o == op.SILU:
        return x * _sigmoid(x)
    if o == op.ELU:
        return x if x > 0.0 else c * math.expm1(x)
    if o == op.LEAKY_RELU:
        return x if x > 0.0 else x * c
    if o == op.LOGSIGMOID:
        return min(x, 0.0) - math.log1p(math.exp(-abs(x)))
    if o == op.CLAMP_MIN:
        return x if (x >= c or x != x) else c
    if o == op.MISH:
        return x * math.tanh(_softplus(x))
    if o == op.SELU:
        return _SELU_SCALE * (x if x > 0.0 else _SELU_ALPHA * math.expm1(x))
    if o == op.CELU:
        return x if x > 0.0 else c * math.expm1(x / c)
    if o == op.HARDSIGMOID:
        return 0.0 if x <= -3.0 else (1.0 if x >= 3.0 else x / 6.0 + 0.5)
    if o == op.HARDSWISH:
        return 0.0 if x <= -3.0 else (x if x >= 3.0 else x * (x + 3.0) / 6.0)
    # CLAMP_MAX
    return x if (x <= c or x != x) else c


@njit(cache=True, error_model="numpy")   # IEEE inf/nan, not ZeroDivisionError
def _more_unary_derivative(o, x, y, c):
    """Derivatives of the unary ops of the elementwise-coverage section, with PyTorch's values at kinks."""
    if o == op.EXP2:
        return y * _LN2
    if o == op.EXPM1:
        return y + 1.0
    if o == op.LOG2:
        return 1.0 / (x * _LN2)
    if o == op.LOG10:
        return 1.0 / (x * _LN10)
    if o == op.LOG1P:
        return 1.0 / (x + 1.0)
    if o == op.RSQRT:
        return -0.5 * y * y * y
    if o == op.TAN:
        return 1.0 + y * y
    if o == op.ASIN:
        return 1.0 / math.sqrt(1.0 - x * x) if abs(x) <= 1.0 else math.nan
    if o == op.ACOS:
        return -1.0 / math.sqrt(1.0 - x * x) if abs(x) <= 1.0 else math.nan
    if o == op.ATAN:
        return 1.0 / (1.0 + x * x)
    if o == op.SINH:
        return math.cosh(x) if abs(x) < 710.0 else math.inf
    if o == op.COSH:
        return math.sinh(x) if abs(x) < 710.0 else math.copysign(math.inf, x)
    if o == op.ASINH:
        return 1.0 / math.sqrt(x * x + 1.0)
    if o == op.ACOSH:
        return 1.0 / math.sqrt(x * x - 1.0) if abs(x) >= 1.0 else math.nan
    if o == op.ATANH:
        return 1.0 / (1.0 - x * x)
    if o == op.ERF:
        return 2.0 / math.sqrt(math.pi) * math.exp(-x * x)
    if o == op.ERFC:
        return -2.0 / math.sqrt(math.pi) * math.exp(-x * x)
    if o == op.FRAC:
        return 1.0
    if o == op.GELU:
        if c == 0.0:
            cdf = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
            pdf = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
            return cdf + x * pdf
        t = math.tanh(_SQRT_2_OVER_PI * (x + _GELU_KAPPA * x * x * x))
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_KAPPA * x * x)
    if o == op.SILU:
        s = _sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    if o == op.ELU:
        return 1.0 if x > 0.0 else c * math.exp(x)
    if o == op.LEAKY_RELU:
        return 1.0 if x > 0.0 else c
    if o == op.LOGSIGMOID:
        z = math.exp(-abs(x))
        return 1.0 / (1.0 + z) if x < 0.0 else z / (1.0 + z)
    if o == op.CLAMP_MIN:
        return 1.0 if x >= c else 0.0
    if o == op.CLAMP_MAX:
        return 1.0 if x <= c else 0.0
    if o == op.MISH:
        t = math.tanh(_softplus(x))
        return t + x * (1.0 - t * t) * _sigmoid(x)
    if o == op.SELU:
        return _SELU_SCALE if x > 0.0 else _SELU_SCALE * _SELU_ALPHA * math.exp(x)
    if o == op.CELU:
        # PyTorch's CeluBackward0 scales by 1 / float32(alpha), even for float64 tensors
        inv = 1.0 / np.float64(np.float32(c))
        return 1.0 if x > 0.0 else c * inv * math.exp(x * inv)
    if o == op.HARDSIGMOID:
        return _ONE_SIXTH_F32 if -3.0 < x < 3.0 else 0.0
    if o == op.HARDSWISH:
        return 0.0 if x < -3.0 else (x / 3.0 + 0.5 if x <= 3.0 else 1.0)
    return 0.0  # SIGN, FLOOR, CEIL, ROUND, ROUND_DECIMALS, TRUNC: piecewise constant


@njit(cache=True, inline="always")
def _pow(x, z):
    """x ** z with IEEE results instead of Python's exceptions (0 ** -1 = inf, (-8) ** (1/3) = nan)."""
    if x == 0.0 and z < 0.0:
        return math.inf
    if x < 0.0 and z != math.floor(z):
        return math.nan
    # numpy (the eager forward) and torch compute these two as square and sqrt; libm's pow is ~10x slower
    if z == 2.0:
        return x * x
    if z == 0.5:
        return math.sqrt(x)
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
    if o == op.MUL:
        return x * z
    if o == op.ADD:
        return x + z
    if o == op.SUB:
        return x - z
    if o == op.RSUB:
        return z - x
    if (o >> 6) == op.GUARD:
        return compare_value(o, x, z)
    if o == op.DIV:
        return _ieee_div(x, z)
    if o == op.POW:
        return _pow(x, z)
    if o == op.ATAN2:
        return math.atan2(x, z)
    if o == op.HYPOT:
        return math.hypot(x, z)
    if o == op.MAXIMUM or o == op.CLAMP_MIN_T:
        return x if (x != x or x > z) else z
    if o == op.MINIMUM or o == op.CLAMP_MAX_T:
        return x if (x != x or x < z) else z
    if o == op.DIV_FLOOR:
        return _floor_div(x, z)
    if o == op.PRELU:
        return x if x > 0.0 else z * x
    return np.trunc(_ieee_div(x, z))   # DIV_TRUNC


@njit(cache=True)
def _ieee_div(x, z):
    """x / z with IEEE results at z == 0 instead of Python's exception."""
    if z == 0.0:
        return math.nan if x == 0.0 or x != x else math.copysign(math.inf, x) * math.copysign(1.0, z)
    return x / z


@njit(cache=True)
def _floor_div(x, z):
    """Python's (and PyTorch's) float floor division: floor of the exact quotient, via fmod."""
    if z == 0.0:
        return _ieee_div(x, z)
    mod = np.fmod(x, z)
    div = (x - mod) / z
    if mod != 0.0 and (z < 0.0) != (mod < 0.0):
        div -= 1.0
    if div == 0.0:
        return math.copysign(0.0, x / z)
    fl = np.floor(div)
    if div - fl > 0.5:
        fl += 1.0
    return fl


@njit(cache=True, error_model="numpy")
def unary_apply(o, x, c):
    """The replay's f(x) over a contiguous 1-D float64 array: the eager forward of the ops computed only here."""
    out = np.empty(x.shape[0])
    _unary_loops(o, x, out, c)
    return out


@njit(cache=True, inline="always")
def unary_derivative(o, x, y, c):
    """dy/dx of the unary op o at input x with output y and scalar constant c (PyTorch's conventions at kinks).
    The arithmetic with a Python scalar comes first, as in unary_value."""
    if o == op.MUL_SCALAR:
        return c
    if o == op.RSUB_SCALAR:
        return -1.0
    if o == op.ADD_SCALAR or o == op.SUB_SCALAR:
        return 1.0
    if o == op.DIV_SCALAR:
        return 1.0 / c
    if o == op.POW_SCALAR:
        if c == 0.0:
            return 0.0
        if c == 2.0:
            return 2.0 * x
        return c * x ** (c - 1.0)
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
        return _sin_one(x, 1.0)
    if o == op.COS:
        return -_sin_one(x, 0.0)
    if o == op.TANH:
        return 1.0 - y * y
    if o == op.SIGMOID:
        return y * (1.0 - y)
    if o == op.RELU:
        return 1.0 if y > 0 else 0.0
    if o == op.RECIPROCAL:
        return -y * y
    if o == op.RPOW_SCALAR:
        if c == 0.0 and x >= 0.0:
            return 0.0
        return y * np.log(c)
    if o >= op.EXP2:
        return _more_unary_derivative(o, x, y, c)
    return 1.0  # CLONE, TO_COPY


@njit(cache=True, inline="always")
def unary_adjoint(o, x, y, c, g):
    """What a 0-d unary record adds to its input's adjoint: g * f'(x), as unary_backward. Scalars in and out:
    inlined helpers that take the buffers ran a 0-d sweep 2-5x slower (measured)."""
    if o == op.RSUB_SCALAR:
        return -g
    return g * unary_derivative(o, x, y, c)


@njit(cache=True, inline="always")
def scalar_binary_backward(o, ao, bo, yo, bits, vals, adj):
    """adj[a] += adj[y] * dy/da and adj[b] += adj[y] * dy/db for a 0-d record, inline in the sweep (a kernel call
    passing arrays costs more than the arithmetic). `bits`: a gradient program row's NEED column (1, 2: a, b take
    a gradient; FRESH_A, FRESH_B: store, the first write of that adjoint in the sweep). Products skip
    binary_partials: through it, a scalar chain's backward ran at a quarter of the speed (measured)."""
    g = adj[yo]
    if o == op.MUL:
        da = vals[bo]
        db = vals[ao]
    else:
        da, db = binary_partials(o, vals[ao], vals[bo], vals[yo])
    if (bits & 1) != 0:
        if (bits & FRESH_A) != 0:
            adj[ao] = g * da
        else:
            adj[ao] += g * da
    if (bits & 2) != 0:
        if (bits & FRESH_B) != 0:
            adj[bo] = g * db
        else:
            adj[bo] += g * db


@njit(cache=True, inline="always")
def _put(g, k, v, fresh):
    """g[k] = v into a fresh adjoint (nothing written to it yet in this sweep: it holds garbage), else g[k] += v.
    The test is the same for the whole loop; LLVM moves it out and vectorises both loops."""
    if fresh:
        g[k] = v
    else:
        g[k] += v


@njit(cache=True, error_model="numpy")   # IEEE inf/nan (x/0, log'(0)), not ZeroDivisionError
def unary_backward(o, xo, yo, n, c, vals, adj, fresh):
    """adj[x] += adj[y] * f'(x), also where adj[y] is 0: 0 * inf is nan at a pole (log, sqrt, 1/x at 0), as in
    PyTorch; stored rather than added when the sweep says x's adjoint is fresh (see program.gradient_program).
    Slices, not computed indices (see _arith_backward_run); products, sums and differences with a scalar,
    negation, squares and tanh skip unary_derivative's opcode chain, which would otherwise run per element."""
    x = vals[xo:xo + n]
    y = vals[yo:yo + n]
    gy = adj[yo:yo + n]
    gx = adj[xo:xo + n]
    if o == op.MUL_SCALAR:
        for k in range(n):
            _put(gx, k, gy[k] * c, fresh)
    elif o == op.ADD_SCALAR or o == op.SUB_SCALAR:
        for k in range(n):
            _put(gx, k, gy[k], fresh)
    elif o == op.RSUB_SCALAR or o == op.NEG:
        for k in range(n):
            _put(gx, k, -gy[k], fresh)
    elif o == op.POW_SCALAR and c == 2.0:
        for k in range(n):
            _put(gx, k, gy[k] * (2.0 * x[k]), fresh)
    elif o == op.TANH:
        for k in range(n):
            _put(gx, k, gy[k] * (1.0 - y[k] * y[k]), fresh)
    elif o == op.SIN and not any_trig_needs_libm(x):
        for k in range(n):
            _put(gx, k, gy[k] * sin_arith(x[k], 1.0), fresh)
    elif o == op.COS and not any_trig_needs_libm(x):
        for k in range(n):
            _put(gx, k, gy[k] * -sin_arith(x[k], 0.0), fresh)
    else:
        for k in range(n):
            _put(gx, k, gy[k] * unary_derivative(o, x[k], y[k], c), fresh)


@njit(cache=True, error_model="numpy")   # tanh_arith's loop vectorises only without division checks
def unary_forward(o, xo, yo, n, c, vals):
    """Replay: vals[y] = f(vals[x])."""
    _unary_loops(o, vals[xo:xo + n], vals[yo:yo + n], c)


@njit(cache=True, inline="always", error_model="numpy")
def _unary_loops(o, x, y, c):
    """y[:] = f(x) (the replay's and, for the ops computed only here, eager's), with the commonest ops outside
    unary_value's per-element opcode chain, in loops that vectorise."""
    n = x.shape[0]
    if o == op.MUL_SCALAR or o == op.ADD_SCALAR or o == op.SUB_SCALAR or o == op.RSUB_SCALAR:
        binary = op.MUL if o == op.MUL_SCALAR else (op.ADD if o == op.ADD_SCALAR else
                                                    (op.SUB if o == op.SUB_SCALAR else op.RSUB))
        _scalar_operand_run(binary, x, c, y)
    elif o == op.POW_SCALAR and c == 2.0:
        for k in range(n):
            y[k] = x[k] * x[k]
    elif o == op.TANH:
        for k in range(n):
            y[k] = tanh_arith(x[k])
    elif o == op.EXP:
        for k in range(n):
            y[k] = exp_arith(x[k])
    elif (o == op.SIN or o == op.COS) and not any_trig_needs_libm(x):
        shift = 0.0 if o == op.SIN else 1.0
        for k in range(n):
            y[k] = sin_arith(x[k], shift)
    else:
        for k in range(n):
            y[k] = unary_value(o, x[k], c)


@njit(cache=True, inline="always")
def binary_partials(o, x, z, y):
    """(dy/dx, dy/dz) of y = x (op) z, with PyTorch's conventions where pow is not differentiable."""
    if o == op.MUL:
        return z, x
    if o == op.ADD:
        return 1.0, 1.0
    if o == op.SUB:
        return 1.0, -1.0
    if o == op.RSUB:
        return -1.0, 1.0
    if o == op.DIV:
        return 1.0 / z, -x / (z * z)
    if o != op.POW:
        return _more_binary_partials(o, x, z, y)
    dx = 0.0 if z == 0.0 else z * x ** (z - 1.0)
    dz = 0.0 if (x == 0.0 and z >= 0.0) else y * np.log(x)
    return dx, dz


@njit(cache=True, error_model="numpy")   # IEEE inf/nan, not ZeroDivisionError
def _more_binary_partials(o, x, z, y):
    """Partials of the binary ops of the elementwise-coverage section (ties split evenly, as PyTorch does)."""
    if o == op.ATAN2:
        d = x * x + z * z
        if d == 0.0:
            return 0.0, 0.0     # PyTorch's choice at the origin
        return z / d, -x / d
    if o == op.HYPOT:
        return x / y, z / y
    if o == op.MAXIMUM:
        if x == z:
            return 0.5, 0.5
        return (0.0 if x < z else 1.0), (0.0 if x > z else 1.0)
    if o == op.MINIMUM:
        if x == z:
            return 0.5, 0.5
        return (0.0 if x > z else 1.0), (0.0 if x < z else 1.0)
    if o == op.CLAMP_MIN_T:
        return (1.0 if x >= z else 0.0), (1.0 if x < z else 0.0)
    if o == op.PRELU:
        return (1.0, 0.0) if x > 0.0 else (z, x)
    if o == op.CLAMP_MAX_T:
        return (1.0 if x <= z else 0.0), (1.0 if x > z else 0.0)
    return 0.0, 0.0   # DIV_FLOOR, DIV_TRUNC


@njit(cache=True, inline="always")
def _next_row(idx, dims, sa, sb, ra, rb):
    """Advance the index odometer over every dim but the last; returns a's and b's new row offsets."""
    d = dims.shape[0] - 2
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
    return ra, rb


@njit(cache=True, inline="always")
def _is_arith(o):
    return o == op.ADD or o == op.SUB or o == op.RSUB or o == op.MUL or o == op.DIV


@njit(cache=True, inline="always")
def _arith_backward_run(o, ao, bo, yo, n, need_a, need_b, fresh_a, fresh_b, vals, adj):
    """The backward of add/sub/rsub/mul/div over n contiguous elements of a, b and y, one plain loop per partial so
    that LLVM vectorises it (the per-element opcode switch of binary_partials stops that). Same arithmetic as
    binary_partials; a fresh adjoint is stored, not added to (see _put). Returns False for other opcodes. The loops
    index slices, not adj[offset + k]: numba's negative-index check on a computed index keeps LLVM from
    vectorising (3-4x slower on large arrays)."""
    if not _is_arith(o):
        return False
    g = adj[yo:yo + n]
    ga = adj[ao:ao + n]
    gb = adj[bo:bo + n]
    x = vals[ao:ao + n]
    z = vals[bo:bo + n]
    if o == op.ADD or o == op.SUB or o == op.RSUB:
        sign_a = -1.0 if o == op.RSUB else 1.0
        sign_b = -1.0 if o == op.SUB else 1.0
        if need_a:
            for k in range(n):
                _put(ga, k, g[k] * sign_a, fresh_a)
        if need_b:
            for k in range(n):
                _put(gb, k, g[k] * sign_b, fresh_b)
    elif o == op.MUL and need_a and need_b:
        for k in range(n):      # one pass reads g once: ~1/3 less memory traffic
            _put(ga, k, g[k] * z[k], fresh_a)
            _put(gb, k, g[k] * x[k], fresh_b)
    elif o == op.MUL:
        if need_a:
            for k in range(n):
                _put(ga, k, g[k] * z[k], fresh_a)
        if need_b:
            for k in range(n):
                _put(gb, k, g[k] * x[k], fresh_b)
    else:   # DIV
        if need_a:
            for k in range(n):
                _put(ga, k, g[k] * (1.0 / z[k]), fresh_a)
        if need_b:
            for k in range(n):
                _put(gb, k, g[k] * (-x[k] / (z[k] * z[k])), fresh_b)
    return True


@njit(cache=True, error_model="numpy")   # IEEE inf/nan (x/0, log'(0)), not ZeroDivisionError
def binary_same_size_backward(o, ao, bo, yo, n, need_a, need_b, fresh_a, fresh_b, vals, adj):
    """binary_backward where a, b and y have one size (no broadcasting): what a gradient program's VECTOR_BINARY
    rows run directly."""
    if _arith_backward_run(o, ao, bo, yo, n, need_a, need_b, fresh_a, fresh_b, vals, adj):
        return
    for k in range(n):
        da, db = binary_partials(o, vals[ao + k], vals[bo + k], vals[yo + k])
        g = adj[yo + k]
        if need_a:
            if fresh_a:
                adj[ao + k] = g * da
            else:
                adj[ao + k] += g * da
        if need_b:
            if fresh_b:
                adj[bo + k] = g * db
            else:
                adj[bo + k] += g * db


@njit(cache=True, error_model="numpy")   # IEEE inf/nan (x/0, log'(0)), not ZeroDivisionError
def binary_backward(o, ints, out_aux, a_aux, b_aux, ao, bo, yo, need_a, need_b, fresh, vals, adj):
    """Accumulate both partials, summing over the axes each input was broadcast along. `fresh` (FRESH_A, FRESH_B
    bits): adjoints nothing has written yet in this sweep, stored into (same shapes) or zeroed first."""
    n = size_at(ints, out_aux)
    na = size_at(ints, a_aux)
    nb = size_at(ints, b_aux)
    fresh_a = (fresh & FRESH_A) != 0
    fresh_b = (fresh & FRESH_B) != 0
    if na == n and nb == n:
        binary_same_size_backward(o, ao, bo, yo, n, need_a, need_b, fresh_a, fresh_b, vals, adj)
        return
    if fresh_a:
        adj[ao:ao + na] = 0.0
    if fresh_b:
        adj[bo:bo + nb] = 0.0
    if n == 0:
        return
    run, step_a, step_b = bias_runs(ints, out_aux, a_aux, b_aux)
    if run > 0 and _is_arith(o):
        # x + bias: whole runs of the output, with no index tables to build (their allocations cost more than
        # the arithmetic on small tensors); the bias adjoint gathers the runs in the same order as below
        for r in range(n // run):
            _arith_backward_run(o, ao + r * step_a, bo + r * step_b, yo + r * run, run, need_a, need_b, False, False,
                                vals, adj)
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
    arith = _is_arith(o)
    for _ in range(n // last):
        if arith and la == 1 and lb == 1:      # rows contiguous in both inputs
            _arith_backward_run(o, ao + ra, bo + rb, yo + k, last, need_a, need_b, False, False, vals, adj)
            k += last
            ra, rb = _next_row(idx, dims, sa, sb, ra, rb)
            continue
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
        ra, rb = _next_row(idx, dims, sa, sb, ra, rb)


@njit(cache=True, inline="always")
def _scalar_operand_run(o, x, z, y):
    """y[:] = x (op) z for add/sub/rsub/mul/div and a scalar z (rsub: z - x): a plain loop per op, which LLVM
    vectorises. Shared by the binary runs with one repeated operand and the unary ops with a Python scalar."""
    if o == op.ADD:
        for k in range(x.shape[0]):
            y[k] = x[k] + z
    elif o == op.SUB:
        for k in range(x.shape[0]):
            y[k] = x[k] - z
    elif o == op.RSUB:
        for k in range(x.shape[0]):
            y[k] = z - x[k]
    elif o == op.MUL:
        for k in range(x.shape[0]):
            y[k] = x[k] * z
    else:
        for k in range(x.shape[0]):
            y[k] = x[k] / z


@njit(cache=True, inline="always")
def _arith_forward_run(o, ao, la, bo, lb, yo, n, vals):
    """vals[y] = vals[a] (op) vals[b] over n elements for add/sub/rsub/mul/div, each input contiguous (stride 1)
    or one repeated value (stride 0, not both): plain loops over slices that LLVM vectorises, with binary_value's
    arithmetic (IEEE division comes from the caller's numpy error model)."""
    y = vals[yo:yo + n]
    if lb == 0:
        _scalar_operand_run(o, vals[ao:ao + n], vals[bo], y)
    elif la == 0:
        x = vals[ao]
        z = vals[bo:bo + n]
        if o == op.ADD:
            for k in range(n):
                y[k] = x + z[k]
        elif o == op.SUB:
            for k in range(n):
                y[k] = x - z[k]
        elif o == op.RSUB:
            for k in range(n):
                y[k] = z[k] - x
        elif o == op.MUL:
            for k in range(n):
                y[k] = x * z[k]
        else:
            for k in range(n):
                y[k] = x / z[k]
    else:
        x = vals[ao:ao + n]
        z = vals[bo:bo + n]
        if o == op.ADD:
            for k in range(n):
                y[k] = x[k] + z[k]
        elif o == op.SUB:
            for k in range(n):
                y[k] = x[k] - z[k]
        elif o == op.RSUB:
            for k in range(n):
                y[k] = z[k] - x[k]
        elif o == op.MUL:
            for k in range(n):
                y[k] = x[k] * z[k]
        else:
            for k in range(n):
                y[k] = x[k] / z[k]


@njit(cache=True, error_model="numpy")   # IEEE x/0 in the arithmetic runs, as binary_value's _ieee_div
def binary_same_size_forward(o, ao, bo, yo, n, vals):
    """binary_forward where a, b and y have one size (no broadcasting): what the replay's VECTOR_BINARY rows run
    directly."""
    if _is_arith(o):
        _arith_forward_run(o, ao, 1, bo, 1, yo, n, vals)
        return
    for k in range(n):
        vals[yo + k] = binary_value(o, vals[ao + k], vals[bo + k])


@njit(cache=True, error_model="numpy")   # IEEE x/0 in the arithmetic runs, as binary_value's _ieee_div
def binary_forward(o, ints, out_aux, a_aux, b_aux, ao, bo, yo, vals):
    """Replay: vals[y] = vals[a] (op) vals[b], broadcasting."""
    n = size_at(ints, out_aux)
    arith = _is_arith(o)
    if size_at(ints, a_aux) == n and size_at(ints, b_aux) == n:
        binary_same_size_forward(o, ao, bo, yo, n, vals)
        return
    if n == 0:
        return
    run, step_a, step_b = bias_runs(ints, out_aux, a_aux, b_aux)
    if run > 0 and arith:
        for r in range(n // run):
            _arith_forward_run(o, ao + r * step_a, 1, bo + r * step_b, 1, yo + r * run, run, vals)
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
    rows = arith and la + lb >= 1     # each row reads a and b contiguously or as one repeated value
    for _ in range(n // last):
        if rows:
            _arith_forward_run(o, ao + ra, la, bo + rb, lb, yo + k, last, vals)
            k += last
            ra, rb = _next_row(idx, dims, sa, sb, ra, rb)
            continue
        ia = ra
        ib = rb
        for _j in range(last):
            vals[yo + k] = binary_value(o, vals[ao + ia], vals[bo + ib])
            k += 1
            ia += la
            ib += lb
        ra, rb = _next_row(idx, dims, sa, sb, ra, rb)


@njit(cache=True)
def unary_record_backward(f, i, fresh, grads):
    """The UNARY unit's backward: eager records of more than one value (0-d ones run inline in the sweep, and a
    gradient program runs the rest from its rows)."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    unary_backward(ops[i], off[pa], off[i], size_at(ints, aux[i]), const[i], vals, adj, (fresh & FRESH_A) != 0)


@njit(cache=True)
def binary_record_forward(f, i):
    """The BINARY unit's forward (broadcasting records; 0-d and same-size ones run inline in the loops)."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    binary_forward(ops[i], ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], vals)
    return UNIT_OK


@njit(cache=True)
def binary_record_backward(f, i, fresh, grads):
    """The BINARY unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    binary_backward(ops[i], ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], off[i], (grads & 1) != 0,
                    (grads & 2) != 0, fresh, vals, adj)
