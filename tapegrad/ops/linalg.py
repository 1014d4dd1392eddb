"""Matrix products: matmul (with PyTorch's rank rules), mm, mv, dot, bmm, addmm."""
import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, needs_grad, record, source_gid, _result
from ._common import attach, constant, wrap_dim
from .shape import squeeze, unsafe_view


def _check_dtypes(name, a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError(f"{name}(): arguments must be tensors, got {type(a).__name__} and {type(b).__name__}")
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(f"{name}: expected both operands to have the same dtype, but got "
                           f"{a.dtype.name} and {b.dtype.name}")
    if a._data.dtype.kind == "b":
        raise RuntimeError(f"{name}: not implemented for 'Bool'")


def _shape_error(name, a, b):
    sa, sb = a._data.shape, b._data.shape
    return RuntimeError(f"{name}: shapes cannot be multiplied ({'x'.join(map(str, sa))} and "
                        f"{'x'.join(map(str, sb))})")


def _product(opcode, a, b, out):
    if needs_grad(a, b):
        return record(opcode, (a, b), out)
    return constant(out)


def mm(input, mat2):
    """(n, m) @ (m, p)."""
    _check_dtypes("mm", input, mat2)
    a, b = input._data, mat2._data
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: expected 2D tensors, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    return _product(op.MM, input, mat2, a @ b)


def mv(input, vec):
    """(n, m) @ (m,)."""
    _check_dtypes("mv", input, vec)
    a, b = input._data, vec._data
    if a.ndim != 2 or b.ndim != 1:
        raise RuntimeError(f"mv: expected a 2D matrix and a 1D vector, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({a.shape[0]}), mat ({a.shape[0]}x{a.shape[1]}), "
                           f"vec ({b.shape[0]})")
    return _product(op.MV, input, vec, a @ b)


def dot(input, other):
    """Inner product of two 1-D tensors."""
    _check_dtypes("dot", input, other)
    a, b = input._data, other._data
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{a.shape[0]}] and src [{b.shape[0]}] to "
                           f"have the same number of elements, but got {a.shape[0]} and {b.shape[0]} elements "
                           f"respectively")
    return _product(op.DOT, input, other, a.dtype.type(np.dot(a, b)))


def bmm(input, mat2):
    """(b, n, m) @ (b, m, p)."""
    _check_dtypes("bmm", input, mat2)
    a, b = input._data, mat2._data
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor" if a.ndim != 3 else "batch2 must be a 3D tensor")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return _product(op.BMM, input, mat2, np.matmul(a, b))


def matmul(input, other):
    """PyTorch's matmul: dot, mv, mm, or a batched product broadcasting the batch dims."""
    _check_dtypes("matmul", input, other)
    na, nb = input._data.ndim, other._data.ndim
    if na == 0 or nb == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {na}D and {nb}D")
    inner_b = other._data.shape[0] if nb == 1 else other._data.shape[-2]
    if input._data.shape[-1] != inner_b:
        raise _matmul_shape_error(input, other)
    if na == 1 and nb == 1:
        return dot(input, other)
    if na == 2 and nb == 1:
        return mv(input, other)
    if na == 1 and nb == 2:
        return squeeze(mm(input.unsqueeze(0), other), 0, _opcode=op.SQUEEZE_INPLACE)
    if na == 2 and nb == 2:
        return mm(input, other)
    if na == 2:
        # PyTorch computes a matrix times a batch as the transpose of the batch times the matrix, then makes
        # the result contiguous (a copy unless size-1 dims make the transpose contiguous already)
        out = matmul(other.mT, input.mT).mT
        if not out._data.flags.c_contiguous:
            from .elementwise import clone
            out = clone(out)
        return out
    if nb <= 2:
        # fold the batch dims of input into rows, as PyTorch does: one mm, then an unsafe view
        k = input._data.shape[-1]
        rows = input.reshape(-1, k)
        b2 = other.unsqueeze(-1) if nb == 1 else other
        out_shape = input._data.shape[:-1] + (() if nb == 1 else (other._data.shape[-1],))
        return unsafe_view(mm(rows, b2), out_shape)
    # batched: promote vectors, broadcast batch dims, flatten them into one
    a = input.unsqueeze(0) if na == 1 else input
    b = other.unsqueeze(-1) if nb == 1 else other
    sa, sb = a._data.shape, b._data.shape
    if sa[-1] != sb[-2]:
        raise _matmul_shape_error(input, other)
    try:
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise _matmul_shape_error(input, other) from None
    n_batch = int(np.prod(batch)) if batch else 1
    a3 = a.expand(*batch, *sa[-2:]).reshape(n_batch, sa[-2], sa[-1])
    b3 = b.expand(*batch, *sb[-2:]).reshape(n_batch, sb[-2], sb[-1])
    shape = tuple(batch) + ((sa[-2],) if na > 1 else ()) + ((sb[-1],) if nb > 1 else ())
    return unsafe_view(bmm(a3, b3), shape)


def _matmul_shape_error(a, b):
    sa, sb = a._data.shape, b._data.shape
    if a._data.ndim == 1 and b._data.ndim == 1:
        return RuntimeError(f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the "
                            f"same number of elements, but got {sa[0]} and {sb[0]} elements respectively")
    return RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                        f"({'x'.join(map(str, sa if a._data.ndim > 1 else (1,) + sa))} and "
                        f"{'x'.join(map(str, sb))})")


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    _check_dtypes("addmm", mat1, mat2)
    _check_dtypes("addmm", input, mat1)
    a, b, c = mat1._data, mat2._data, input._data
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"addmm: expected 2D tensors for mat1 and mat2, but got {a.ndim}D and {b.ndim}D")
    if a.shape[1] != b.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({a.shape[0]}x{a.shape[1]} and "
                           f"{b.shape[0]}x{b.shape[1]})")
    shape = (a.shape[0], b.shape[1])
    try:
        if np.broadcast_shapes(c.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"The expanded size of the tensor ({shape[-1]}) must match the existing size "
                           f"({c.shape[-1] if c.ndim else 1}) at non-singleton dimension {max(c.ndim - 1, 0)}.  "
                           f"Target sizes: {list(shape)}.  Tensor sizes: {list(c.shape)}") from None
    prod = a @ b
    out = (c * c.dtype.type(beta) if beta != 1 else c) + (prod * prod.dtype.type(alpha) if alpha != 1 else prod)
    if beta == 0:
        out = prod * prod.dtype.type(alpha)
    out = np.ascontiguousarray(out, dtype=a.dtype)
    if not needs_grad(input, mat1, mat2):
        return constant(out)
    tape = _state.tape
    ic = source_gid(input, tape)
    ia = source_gid(mat1, tape)
    ib = source_gid(mat2, tape)
    beta_bits = int(np.array(float(beta)).view(np.int64))
    aux = tape.put_ints((2, *shape, 1, ic, beta_bits))
    gid = tape.push(op.ADDMM, ia, ib, out, aux, float(alpha))
    return _result(out, gid, tape.seg)


def _rmatmul(self, other):
    return matmul(other, self)


attach(mm, mv, dot, bmm, matmul, addmm, __matmul__=matmul, __rmatmul__=_rmatmul)
