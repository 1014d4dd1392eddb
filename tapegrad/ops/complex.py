"""Complex autograd: a complex tensor's graph lives in its real "pair", the (..., 2) float tensor of its real and
imaginary parts (torch.view_as_real's layout), and each complex operation is composed of real operations on the
parts.

Differentiating the pair with real reverse mode gives dL/dRe + i dL/dIm for a real loss L, which is exactly
PyTorch's convention for complex gradients (the conjugate Wirtinger derivative, times two), so .grad equals
torch's. A complex leaf's LEAF record holds its values as the pair; a complex result is a handle whose _meta
holds its pair and the grad_fn name PyTorch shows for the operation. Every operation not composed here refuses a
complex tensor that requires grad (tensor.source_gid), so no gradient is ever silently dropped or wrong.
"""
import builtins

import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, _handle, _wrap
from ._common import attach

SUPPORTED = ("add, sub, mul, div, neg, exp, log, abs, conj, real, imag, angle, sum, mean, matmul, view_as_real, "
             "view_as_complex, complex")


def _unsupported(name):
    return NotImplementedError(f"{name}(): autograd through complex tensors is supported only for {SUPPORTED}")


def _real_dtype(complex_dtype):
    return np.float32 if complex_dtype == np.complex64 else np.float64


def _real_view(d):
    """A complex array's values as a C-contiguous (..., 2) real array (shares memory when contiguous)."""
    d = np.ascontiguousarray(d)
    return d.view(_real_dtype(d.dtype)).reshape(*d.shape, 2)


def pair(z):
    """The real (..., 2) tensor carrying complex tensor z's values and graph."""
    meta = z._meta
    if meta is not None and "pair" in meta:
        return meta["pair"]
    real = _real_view(z._ensure_array())
    tape = _state.tape
    if not (z._rg and tape.grad_enabled):
        return _wrap(real)
    leaf = meta.get("leaf_record") if meta else None     # (gid, version) of this leaf's record on the tape
    if leaf is not None and tape.seg.start <= leaf[0] < tape.limit and leaf[1] == z._version_count:
        g = leaf[0]
    else:
        g = tape.push(op.LEAF, -1, -1, real, tape.put_shape(real.shape))
        tape.seg.leaves.append((g, z))       # backward hands the record's adjoint to z, viewed as complex
        z._meta_dict()["leaf_record"] = (g, z._version_count)
    return _handle(real, g, tape.seg, True)


def _from_pair(R, name):
    """The complex tensor whose pair is R (a real (..., 2) tensor), showing grad_fn `name`."""
    d = np.ascontiguousarray(R._data)
    data = d.view(np.complex64 if d.dtype == np.float32 else np.complex128).reshape(d.shape[:-1])
    if not R._rg:
        return _wrap(data)
    z = _handle(data, -2, R._seg, True)      # gid -2: no real operation can read it by mistake
    z._meta = {"pair": R, "grad_fn_name": name}
    return z


def _named(t, name):
    """A real result of a complex operation, showing PyTorch's grad_fn name for that operation."""
    if t._seg is not None:
        t._meta_dict()["grad_fn_name"] = name
    return t


def _parts(x):
    """(real part, imaginary part) of an operand; the imaginary part is None for real tensors and scalars."""
    if isinstance(x, Tensor):
        if x._data.dtype.kind == "c":
            R = pair(x)
            return R.select(-1, 0), R.select(-1, 1)
        return x, None
    if isinstance(x, builtins.complex):
        return x.real, x.imag
    return x, None


def _plus(p, q):
    return q if p is None else p if q is None else p + q


def _minus(p, q):
    return p if q is None else -q if p is None else p - q


def _times(p, q):
    return None if p is None or q is None else p * q


def _complex_from_parts(re, im, name, like):
    """Stack real and imaginary parts (either may be a Python number) into a complex result."""
    from .shape import stack
    re_t, im_t = (v if isinstance(v, Tensor) else None for v in (re, im))
    ref = re_t if re_t is not None else im_t if im_t is not None else like
    re = re_t if re_t is not None else _full_like(ref, 0.0 if re is None else re)
    im = im_t if im_t is not None else _full_like(ref, 0.0 if im is None else im)
    if re._data.dtype != im._data.dtype:
        dt = np.result_type(re._data.dtype, im._data.dtype)
        re, im = re.to(_dtype_of(dt)), im.to(_dtype_of(dt))
    if re._data.shape != im._data.shape:
        shape = np.broadcast_shapes(re._data.shape, im._data.shape)
        re, im = re.expand(*shape), im.expand(*shape)
    return _from_pair(stack([re, im], -1), name)


def _full_like(ref, value):
    dt = ref._data.dtype if ref._data.dtype.kind == "f" else np.float32
    return _wrap(np.full(ref._data.shape, value, dtype=dt))


def _dtype_of(np_dtype):
    from .._dtypes import from_numpy_dtype
    return from_numpy_dtype(np.dtype(np_dtype))


_BINARY_NAMES = {"add": "AddBackward0", "sub": "SubBackward0", "rsub": "RsubBackward1", "mul": "MulBackward0",
                 "div": "DivBackward0"}


def binary(name, x, y, reverse=False):
    """x (op) y with a complex operand or result; `reverse` (scalar y) and 'rsub' compute y (op) x."""
    if name not in _BINARY_NAMES:
        raise _unsupported(name)
    # PyTorch computes scalar - z as rsub and scalar / z as reciprocal(z) * scalar
    shown = "RsubBackward1" if name == "rsub" or (reverse and name == "sub") else \
        "MulBackward0" if reverse and name == "div" else _BINARY_NAMES[name]
    if name == "rsub":
        x, y, name = y, x, "sub"
    elif reverse:
        x, y = y, x
    (a, b), (c, d) = _parts(x), _parts(y)
    if name == "add":
        re, im = _plus(a, c), _plus(b, d)
    elif name == "sub":
        re, im = _minus(a, c), _minus(b, d)
    elif name == "mul":
        re, im = _minus(_times(a, c), _times(b, d)), _plus(_times(a, d), _times(b, c))
    elif d is None:      # a real divisor
        re, im = a / c, None if b is None else b / c
    else:
        den = c * c + d * d
        re = _plus(_times(a, c), _times(b, d)) / den
        im = _minus(_times(b, c), _times(a, d)) / den
    return _complex_from_parts(re, im, shown, x if isinstance(x, Tensor) else y)


def unary(name, z):
    """exp, log, abs, neg, reciprocal, conj and angle of a complex tensor."""
    a, b = _parts(z)
    if name == "neg":
        return _complex_from_parts(-a, -b, "NegBackward0", z)
    if name == "conj":
        return _complex_from_parts(a, -b, "ConjBackward0", z)
    if name == "exp":
        e = a.exp()
        return _complex_from_parts(e * b.cos(), e * b.sin(), "ExpBackward0", z)
    if name == "log":
        return _complex_from_parts(_modulus(z).log(), b.atan2(a), "LogBackward0", z)
    if name == "reciprocal":
        den = a * a + b * b
        return _complex_from_parts(a / den, -b / den, "ReciprocalBackward0", z)
    if name == "abs":
        return _named(_modulus(z), "AbsBackward0")
    if name == "angle":
        return _named(b.atan2(a), "AngleBackward0")
    raise _unsupported(name)


def _modulus(z):
    """|z| as the 2-norm of the pair: like PyTorch's abs, its gradient at 0 is 0 (not nan)."""
    from .reduce import vector_norm
    return vector_norm(pair(z), 2, dim=-1)


def reduce(name, z, dim, keepdim):
    """sum / mean of a complex tensor over all dims or `dim` (int or tuple)."""
    from .reduce import _axes
    if name not in ("sum", "mean"):
        raise _unsupported(name)
    R = pair(z)
    nd = z._data.ndim
    axes = _axes(dim, nd)
    fn = getattr(R, name)
    out = fn(axes, keepdim=keepdim) if axes else R * 1.0 if name == "sum" else R / 1.0
    suffix = "0" if dim is None else "1"
    return _from_pair(out, f"{name.capitalize()}Backward{suffix}")


def matmul(x, y):
    """x @ y with a complex operand: four real matmuls (the real matmul's rank rules and grad_fn names)."""
    (a, b), (c, d) = _parts(x), _parts(y)
    products = [(a, c), (b, d), (a, d), (b, c)]
    mm = {k: None if p is None or q is None else p @ q for k, (p, q) in enumerate(products)}
    name = next((t.grad_fn.name() for t in mm.values() if t is not None and t.grad_fn is not None), "MmBackward0")
    return _complex_from_parts(_minus(mm[0], mm[1]), _plus(mm[2], mm[3]), name, x)


# -- the complex-only functions ----------------------------------------------------------------------------------

def real(input):  # noqa: A001 (PyTorch's name)
    """The real part (a view; SelectBackward0 as in PyTorch)."""
    if input._data.dtype.kind != "c":
        return input
    return pair(input).select(-1, 0) if input._rg else _wrap(input._data.real)


def imag(input):
    """The imaginary part (a view); real tensors have none, as PyTorch says."""
    if input._data.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return pair(input).select(-1, 1) if input._rg else _wrap(input._data.imag)


def conj(input):
    """The complex conjugate (real tensors are returned as they are)."""
    if input._data.dtype.kind != "c":
        return input
    if input._rg and _state.tape.grad_enabled:
        return unary("conj", input)
    return _wrap(np.conj(input._data))


def angle(input):
    """The argument of each element (atan2(imag, real)); for real tensors 0 or pi, as in PyTorch."""
    if input._data.dtype.kind != "c":      # (its gradient is zero, so the result is a constant)
        from .._dtypes import get_default_dtype
        d = input._data if input._data.dtype.kind == "f" else input._data.astype(get_default_dtype().np)
        return _wrap(np.where(np.isnan(d), d, np.where(d < 0, np.pi, 0.0)).astype(d.dtype))
    if input._rg and _state.tape.grad_enabled:
        return unary("angle", input)
    return _wrap(np.angle(input._data))


def view_as_real(input):
    """The (..., 2) real tensor of a complex tensor's parts (ViewAsRealBackward0)."""
    if input._data.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    R = pair(input)
    if not R._rg:
        return R
    return _named(R.view(R._data.shape), "ViewAsRealBackward0")


def view_as_complex(input):
    """The complex tensor whose parts are input's last dim of size 2 (ViewAsComplexBackward0)."""
    d = input._data
    if d.dtype not in (np.float32, np.float64):
        raise RuntimeError(f"view_as_complex is only supported for float and double tensors, but got a tensor of "
                           f"scalar type: {input.dtype}")
    if d.ndim == 0 or d.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if input._rg and _state.tape.grad_enabled:
        return _from_pair(input.view(d.shape), "ViewAsComplexBackward0")
    return _from_pair(input, "")


def complex(real, imag):
    """real + i imag from two float tensors of the same dtype (ComplexBackward0)."""
    for t in (real, imag):
        if not isinstance(t, Tensor) or t._data.dtype not in (np.float32, np.float64):
            raise RuntimeError("complex(): expected both inputs to be Half, Float or Double tensors but got "
                               f"{real.dtype if isinstance(real, Tensor) else type(real).__name__} and "
                               f"{imag.dtype if isinstance(imag, Tensor) else type(imag).__name__}")
    if real._data.dtype != imag._data.dtype:
        raise RuntimeError(f"Expected object of scalar type {real.dtype} but got scalar type {imag.dtype} for "
                           "second argument")
    return _complex_from_parts(real, imag, "ComplexBackward0", real)


attach(conj, angle, resolve_conj=lambda self: self, is_conj=lambda self: False)
Tensor.real = property(real)
Tensor.imag = property(imag)
