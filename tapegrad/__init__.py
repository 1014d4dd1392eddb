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
from .ops.elementwise import mul as multiply, sub as subtract, div as divide, neg as negative, abs as absolute
from .ops.reduce import mean, sum
from .ops.shape import (broadcast_to, flatten, narrow, permute, reshape, select, squeeze, t, transpose, unsqueeze)
from .ops.linalg import addmm, bmm, dot, matmul, mm, mv
from . import autograd
from . import nn
from . import optim
from .serialization import load, save
from .autograd import enable_grad, no_grad, set_grad_enabled
from .autograd.custom_op import custom_op
from ._tape import is_grad_enabled
from . import _gc_freeze
from ._format import get_printoptions, printoptions, set_printoptions

__version__ = "0.1.0"

_gc_freeze.freeze_startup_objects()


def numel(input):
    return input.numel()


def is_tensor(obj):
    return isinstance(obj, Tensor)
