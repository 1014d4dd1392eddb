"""tapegrad: tape-based reverse-mode automatic differentiation on the CPU, with PyTorch's autograd semantics."""
from ._dtypes import (bool_ as bool, complex64, complex128, dtype, float16, float32, float64, get_default_dtype,
                      int8, int16, int32, int64, set_default_dtype, uint8, promote_types)
from ._dtypes import float32 as float, float64 as double, float16 as half, int64 as long, int32 as int  # noqa: A001
from ._dtypes import complex64 as cfloat, complex128 as cdouble
from .tensor import Size, Tensor
from . import ops as _ops  # noqa: F401  (attaches the operations to Tensor)
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, initial_seed,
                       linspace, manual_seed, ones, ones_like, rand, rand_like, randint, randn, randn_like, tensor,
                       zeros, zeros_like)
from .ops.elementwise import (abs, add, allclose, clone, cos, div, eq, equal, exp, ge, gt, isfinite, isnan, le, log,
                              logical_not, lt, mul, ne, neg, pow, reciprocal, relu, rsub, sigmoid, sin, sqrt, sub,
                              tanh, true_divide)
from .ops.elementwise import (acos, acosh, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, asin, asinh,
                              atan, atan2, atanh, ceil, clamp, clamp_max, clamp_min, clip, cosh, erf, erfc, exp2,
                              expm1, fix, floor, frac, hypot, isclose, isinf, isneginf, isposinf, lerp, log10, log1p,
                              log2, logical_and, logical_or, logical_xor, masked_fill, maximum, minimum, round, rsqrt,
                              sign, signbit, sinh, square, tan, trunc, where)
from .ops.elementwise import mul as multiply, sub as subtract, div as divide, neg as negative, abs as absolute
from .ops.reduce import (all, amax, amin, any, argmax, argmin, argsort, count_nonzero, cumprod, cumsum, kthvalue,
                         logsumexp, max, mean, median, min, norm, prod, return_types, sort, std, std_mean, sum, topk,
                         unique, var, var_mean)
from .ops.shape import (broadcast_to, cat, chunk, concat, concatenate, diag, diagonal, flatten, flip, gather, hstack,
                        index_select, movedim, moveaxis, narrow, pad, permute, reshape, roll, select, split, squeeze,
                        stack, swapaxes, swapdims, t, take_along_dim, tile, trace, transpose, tril, triu, unbind,
                        unflatten, unsqueeze, vstack)
from .ops.inplace import index_put, scatter, scatter_add
from .ops.complex import angle, complex, conj, imag, real, view_as_complex, view_as_real  # noqa: A004
from .ops.linalg import (addbmm, addmm, addmv, baddbmm, bmm, cholesky, det, dot, einsum, inv as inverse, kron,
                         matmul, mm, mv, outer, outer as ger, slogdet, tensordot, vdot)
from . import linalg
from . import autograd
from . import nn
from .compile import compile, grad, load_compiled, value_and_grad, vmap  # noqa: A004
from . import optim
from . import utils
from .serialization import load, save
from .autograd import enable_grad, no_grad, set_grad_enabled
from .autograd.anomaly_mode import is_anomaly_check_nan_enabled, is_anomaly_enabled, set_anomaly_enabled
from . import viz
from .autograd.custom_op import custom_op
from ._tape import is_grad_enabled
from ._format import get_printoptions, printoptions, set_printoptions

__version__ = "0.1.0"


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)
