"""Matrix products and linear algebra: matmul (with PyTorch's rank rules), mm, mv, dot, vdot, bmm, addmm, outer,
einsum, tensordot, kron; solve, inv, det, slogdet, cholesky (exposed as tg.linalg.*)."""
import math
import warnings
from collections import namedtuple

import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, needs_grad, record, recording_tape, source_gid, _result
from ._common import attach, broadcast_shape, constant, wrap_dim
from .shape import squeeze, unsafe_view

# PyTorch's names of scalar types in its error messages
_TYPE_NAME = {"float16": "Half", "float32": "Float", "float64": "Double", "int8": "Char", "int16": "Short",
              "int32": "Int", "int64": "Long", "uint8": "Byte", "bool": "Bool", "complex64": "ComplexFloat",
              "complex128": "ComplexDouble"}
_C_NAME = {"float16": "c10::Half", "float32": "float", "float64": "double", "int64": "long int", "int32": "int",
           "int16": "short int", "int8": "signed char", "uint8": "unsigned char", "bool": "bool",
           "complex64": "c10::complex<float>", "complex128": "c10::complex<double>"}


def _tn(dtype):
    return _TYPE_NAME.get(dtype.name, dtype.name)


def _require_tensors(name, *xs):
    for x in xs:
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}(): argument must be a Tensor, not {type(x).__name__}")


def _dims(shape):
    return "x".join(map(str, shape))


# -- the leaf products: each validates shapes and dtypes like PyTorch before anything is recorded ------------------

def _check_mm(sa, sb, da, db):
    if len(sa) != 2 or len(sb) != 2:
        raise RuntimeError(f"mm: expected 2D tensors, but got {len(sa)}D and {len(sb)}D tensors")
    if sa[1] != sb[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({_dims(sa)} and {_dims(sb)})")
    if da != db:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_C_NAME[da.name]} != "
                           f"{_C_NAME[db.name]}")
    if da.name == "bool":
        raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Bool\'')


def _check_mv(sa, sb, da, db):
    if len(sa) != 2 or len(sb) != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {len(sa)}, {len(sb)}")
    if sa[1] != sb[0]:
        raise RuntimeError(f"size mismatch, got input ({sa[0]}), mat ({_dims(sa)}), vec ({sb[0]})")
    if da != db:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {_tn(db)}, {_tn(da)}, and "
                           f"{_tn(db)}")
    if da.name == "bool":
        raise RuntimeError('"addmv_impl_cpu" not implemented for \'Bool\'')


def _check_dot(sa, sb, da, db):
    if len(sa) != 1 or len(sb) != 1:
        raise RuntimeError(f"1D tensors expected, but got {len(sa)}D and {len(sb)}D tensors")
    if sa[0] != sb[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{sa[0]}] and src [{sb[0]}] to have the "
                           f"same number of elements, but got {sa[0]} and {sb[0]} elements respectively")
    if da != db:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found {_tn(da)} and {_tn(db)}")
    if da.name == "bool":
        raise RuntimeError('"dot" not implemented for \'Bool\'')


def _check_bmm(sa, sb, da, db):
    if len(sa) != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if len(sb) != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    if sa[0] != sb[0] or sa[2] != sb[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: [{sa[0]}, {sa[2]}] "
                           f"but got: [{sb[0]}, {sb[1]}].")
    if da != db:
        raise RuntimeError(f"expected scalar type {_tn(da)} but found {_tn(db)}")
    if da.name == "bool":
        raise RuntimeError('"bmm" not implemented for \'Bool\'')


def _product(opcode, a, b, out):
    if needs_grad(a, b):
        return record(opcode, (a, b), out)
    return constant(out)


def mm(input, mat2):
    """(n, m) @ (m, p)."""
    _require_tensors("mm", input, mat2)
    _check_mm(input._data.shape, mat2._data.shape, input.dtype, mat2.dtype)
    return _product(op.MM, input, mat2, input._data @ mat2._data)


def mv(input, vec):
    """(n, m) @ (m,)."""
    _require_tensors("mv", input, vec)
    _check_mv(input._data.shape, vec._data.shape, input.dtype, vec.dtype)
    return _product(op.MV, input, vec, input._data @ vec._data)


def dot(input, other):
    """Inner product of two 1-D tensors."""
    _require_tensors("dot", input, other)
    _check_dot(input._data.shape, other._data.shape, input.dtype, other.dtype)
    a = input._data
    return _product(op.DOT, input, other, a.dtype.type(np.dot(a, other._data)))


def vdot(input, other):
    """Inner product of two 1-D tensors, conjugating the first (the same as dot for real tensors)."""
    _require_tensors("vdot", input, other)
    _check_dot(input._data.shape, other._data.shape, input.dtype, other.dtype)
    a = input._data
    return _product(op.VDOT, input, other, a.dtype.type(np.vdot(a, other._data)))


def bmm(input, mat2):
    """(b, n, m) @ (b, m, p)."""
    _require_tensors("bmm", input, mat2)
    _check_bmm(input._data.shape, mat2._data.shape, input.dtype, mat2.dtype)
    return _product(op.BMM, input, mat2, np.matmul(input._data, mat2._data))


# -- matmul: PyTorch's dispatch to dot / mv / mm / folded mm / bmm, which decides the recorded graph ------------

def _c_contiguous_prefix(t):
    """PyTorch's test whether t.reshape(-1, t.size(-1)) is a view: the leading dims are row-major."""
    d = t._data
    strides = [s // d.itemsize for s in d.strides]
    return all(strides[i] == strides[i + 1] * d.shape[i + 1] for i in range(d.ndim - 1))


def _should_fold(t1, t2):
    """Whether matmul folds the batch dims of the larger operand into mm/mv rows (PyTorch's should_fold)."""
    d1, d2 = t1._data.ndim, t2._data.ndim
    larger, smaller_rg = (d1, t2.requires_grad) if d1 >= d2 else (d2, t1.requires_grad)
    if not (larger >= 3 and min(d1, d2) <= 2):
        return False
    if smaller_rg:
        return True         # a folded mm keeps the gradient of the small operand a plain mm too
    if d1 == 2:
        return False        # folding would need a copy of the transposed result
    big = t1 if d1 >= d2 else t2.mT
    return big._data.size == 0 or _c_contiguous_prefix(big)


def _matmul_plan(t1, t2):
    """The path matmul takes: 'dot', 'mv', 'vm', 'mm', 'squeeze1'/'squeeze2' (a 3-D operand with batch 1 that
    requires grad is squeezed), 'fold', 'fold_t' or 'bmm'; validates shapes and dtypes on the way."""
    s1, s2, dt1, dt2 = t1._data.shape, t2._data.shape, t1.dtype, t2.dtype
    d1, d2 = len(s1), len(s2)
    if d1 == 0 or d2 == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {d1}D and {d2}D")
    if d1 == 1 and d2 == 1:
        _check_dot(s1, s2, dt1, dt2)
        return "dot"
    if d1 == 2 and d2 == 1:
        _check_mv(s1, s2, dt1, dt2)
        return "mv"
    if d1 == 1 and d2 == 2:
        _check_mm((1,) + s1, s2, dt1, dt2)
        return "vm"
    if d1 == 2 and d2 == 2:
        _check_mm(s1, s2, dt1, dt2)
        return "mm"
    if d1 == 3 and d2 == 3 and s1[-1] == s2[-2]:
        # then a 2-D @ 3-D product folded through the transpose, or a 3-D @ 2-D one folded directly
        if s1[0] == 1 and s2[0] != 1 and t1.requires_grad:
            _check_mm((s2[0] * s2[2], s2[1]), (s1[2], s1[1]), dt2, dt1)
            return "squeeze1"
        if s2[0] == 1 and s1[0] != 1 and t2.requires_grad:
            _check_mm((s1[0] * s1[1], s1[2]), s2[1:], dt1, dt2)
            return "squeeze2"
    if _should_fold(t1, t2):
        if d1 >= d2:
            rows = (int(math.prod(s1[:-1])), s1[-1])
            (_check_mm if d2 == 2 else _check_mv)(rows, s2, dt1, dt2)
            return "fold"
        rows = (int(math.prod(s2[:-2])) * s2[-1], s2[-2])
        (_check_mm if d1 == 2 else _check_mv)(rows, s1[::-1], dt2, dt1)
        return "fold_t"
    broadcast_shape("matmul", s1[:-2] if d1 > 1 else (), s2[:-2] if d2 > 1 else ())
    b1 = int(math.prod(np.broadcast_shapes(s1[:-2] if d1 > 1 else (), s2[:-2] if d2 > 1 else ())))
    try:
        _check_bmm((b1, s1[-2] if d1 > 1 else 1, s1[-1]),
                   (b1, s2[-2] if d2 > 1 else s2[0], s2[-1] if d2 > 1 else 1), dt1, dt2)
    except RuntimeError as err:
        if not str(err).startswith("Expected size"):
            raise
        # PyTorch's text names only the flattened batch shapes; say which operands the user passed
        raise RuntimeError(f"{err} (matmul of {_dims(s1)} and {_dims(s2)})") from None
    return "bmm"


def matmul(input, other):
    """PyTorch's matmul: dot, mv, mm, or a batched product broadcasting the batch dims; records the graph
    PyTorch records for the same ranks and requires_grad flags."""
    _require_tensors("matmul", input, other)
    if (input._data.dtype.kind == "c" or other._data.dtype.kind == "c") and needs_grad(input, other):
        from . import complex as _complex
        return _complex.matmul(input, other)
    path = _matmul_plan(input, other)
    if path == "dot":
        return dot(input, other)
    if path == "mv":
        return mv(input, other)
    if path == "vm":
        return squeeze(mm(input.unsqueeze(0), other), 0, _opcode=op.SQUEEZE_INPLACE)
    if path == "mm":
        return mm(input, other)
    if path == "squeeze1":
        return matmul(input.squeeze(0), other)
    if path == "squeeze2":
        return matmul(input, other.squeeze(0))
    s1, s2 = input._data.shape, other._data.shape
    if path == "fold":
        rows = input.reshape(int(math.prod(s1[:-1])), s1[-1])
        if other.ndim == 2:
            return unsafe_view(mm(rows, other), s1[:-1] + (s2[-1],))
        return unsafe_view(mv(rows, other), s1[:-1])
    if path == "fold_t":
        # the larger operand transposed becomes the folded one; the result is transposed back and, as in
        # PyTorch, made contiguous (a copy unless size-1 dims make the transpose contiguous already)
        big = other.mT
        rows = big.reshape(int(math.prod(s2[:-2])) * s2[-1], s2[-2])
        if input.ndim == 1:
            return unsafe_view(mv(rows, input), s2[:-2] + (s2[-1],))
        out = unsafe_view(mm(rows, input.t()), s2[:-2] + (s2[-1], s1[0])).mT
        if not out._data.flags.c_contiguous:
            from .elementwise import clone
            out = clone(out)
        return out
    # batched: promote vectors, broadcast batch dims, flatten them into one
    na, nb = len(s1), len(s2)
    a = input.unsqueeze(0) if na == 1 else input
    b = other.unsqueeze(-1) if nb == 1 else other
    sa, sb = a._data.shape, b._data.shape
    batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    n_batch = int(math.prod(batch)) if batch else 1
    a3 = a.expand(*batch, *sa[-2:]).reshape(n_batch, sa[-2], sa[-1])
    b3 = b.expand(*batch, *sb[-2:]).reshape(n_batch, sb[-2], sb[-1])
    shape = tuple(batch) + ((sa[-2],) if na > 1 else ()) + ((sb[-1],) if nb > 1 else ())
    return unsafe_view(bmm(a3, b3), shape)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    _require_tensors("addmm", input, mat1, mat2)
    a, b, c = mat1._data, mat2._data, input._data
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"addmm: expected 2D tensors for mat1 and mat2, but got {a.ndim}D and {b.ndim}D")
    _check_mm(a.shape, b.shape, mat1.dtype, mat2.dtype)
    if input.dtype != mat1.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {_tn(input.dtype)} and "
                           f"{_tn(mat1.dtype)}")
    shape = (a.shape[0], b.shape[1])
    _check_expands_to(c.shape, shape)
    prod = a @ b
    out = (c * c.dtype.type(beta) if beta != 1 else c) + (prod * prod.dtype.type(alpha) if alpha != 1 else prod)
    if beta == 0:
        out = prod * prod.dtype.type(alpha)
    out = np.ascontiguousarray(out, dtype=a.dtype)
    return _record_addmm(input, mat1, mat2, out, alpha, beta, False)


def _record_addmm(input, mat1, mat2, out, alpha, beta, mat2_transposed):
    """Record ADDMM (params: [1, input gid, beta bits, whether mat2 is read transposed]) when grad is needed."""
    if not needs_grad(input, mat1, mat2):
        return constant(out)
    tape = recording_tape()
    ic = source_gid(input, tape)
    ia = source_gid(mat1, tape)
    ib = source_gid(mat2, tape)
    beta_bits = int(np.array(float(beta)).view(np.int64))
    aux = tape.put_ints((2, *out.shape, 1, ic, beta_bits, int(mat2_transposed)))
    gid = tape.push(op.ADDMM, ia, ib, out, aux, float(alpha))
    return _result(out, gid, tape.seg)


def addmm_transposed(bias, mat1, weight):
    """bias + mat1 @ weight.T for F.linear: recorded as one ADDMM that reads the weight transposed, so no
    transposed copy of the weight goes on the tape; its grad_fn still shows PyTorch's TBackward0 in between."""
    a, w, c = mat1._data, weight._data, bias._data
    _check_mm(a.shape, w.shape[::-1], mat1.dtype, weight.dtype)
    if bias.dtype != mat1.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got {_tn(bias.dtype)} and "
                           f"{_tn(mat1.dtype)}")
    shape = (a.shape[0], w.shape[0])
    _check_expands_to(c.shape, shape)
    out = a @ w.T
    out += c
    return _record_addmm(bias, mat1, weight, out, 1, 1, True)


def _check_expands_to(own, shape):
    """PyTorch's error when the `input` of addmm / addmv / baddbmm / addbmm does not broadcast to the product."""
    lead = len(shape) - len(own)
    for k in range(len(shape) - 1, -1, -1):
        s = own[k - lead] if k >= lead else 1
        if lead < 0 or (s != 1 and s != shape[k]):
            raise RuntimeError(f"The expanded size of the tensor ({shape[k]}) must match the existing size ({s}) at "
                               f"non-singleton dimension {k}.  Target sizes: {list(shape)}.  Tensor sizes: "
                               f"{list(own)}")


def _scaled_sum(opcode, name, input, product, beta, alpha):
    """beta * input + alpha * product, recorded as `opcode` over (input, alpha * product)."""
    if input.dtype != product.dtype:
        raise RuntimeError(f"{name}: expected self and the product to have the same dtype, but got "
                           f"{_tn(input.dtype)} and {_tn(product.dtype)}")
    if alpha != 1:
        product = product * alpha
    p, c = product._data, input._data
    out = p.copy() if beta == 0 else p + c * c.dtype.type(beta)      # beta = 0 ignores input (nan included)
    out = np.ascontiguousarray(out, dtype=p.dtype)
    if not needs_grad(input, product):
        return constant(out)
    return record(opcode, (input, product), out, aux=recording_tape().put_ints((out.ndim, *out.shape, 1, 0, 0)),
                  const=float(beta))


def addmv(input, mat, vec, *, beta=1, alpha=1):
    """beta * input + alpha * (mat @ vec), input broadcast to the product's shape."""
    _require_tensors("addmv", input, mat, vec)
    _check_mv(mat._data.shape, vec._data.shape, mat.dtype, vec.dtype)
    _check_expands_to(input._data.shape, mat._data.shape[:1])
    return _scaled_sum(op.ADDMV, "addmv", input, mv(mat, vec), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * bmm(batch1, batch2), input broadcast to the product's shape."""
    _require_tensors("baddbmm", input, batch1, batch2)
    _check_bmm(batch1._data.shape, batch2._data.shape, batch1.dtype, batch2.dtype)
    _check_expands_to(input._data.shape, batch1._data.shape[:2] + batch2._data.shape[2:])
    return _scaled_sum(op.BADDBMM, "baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (the sum over the batch of batch1[i] @ batch2[i])."""
    _require_tensors("addbmm", input, batch1, batch2)
    _check_bmm(batch1._data.shape, batch2._data.shape, batch1.dtype, batch2.dtype)
    _check_expands_to(input._data.shape, batch1._data.shape[1:2] + batch2._data.shape[2:])
    return _scaled_sum(op.ADDBMM, "addbmm", input, bmm(batch1, batch2).sum(0), beta, alpha)


def vecdot(x, y, *, dim=-1):
    """Dot products along `dim` (broadcasting the other dims): (x * y).sum(dim), as PyTorch records it."""
    _require_tensors("vecdot", x, y)
    if x._data.ndim == 1 and y._data.ndim == 1 and dim in (-1, 0):
        return vdot(x, y)       # what PyTorch records for two vectors
    return (x * y).sum(dim)


def outer(input, vec2):
    """Outer product of two 1-D tensors (PyTorch: a column view times the row, MulBackward0)."""
    _require_tensors("outer", input, vec2)
    for what, x in (("self", input), ("vec2", vec2)):
        if x._data.ndim != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {what}, but got {x._data.ndim}-D")
    return input.reshape(-1, 1) * vec2


def tensordot(a, b, dims=2):
    """Contract dims of a with dims of b: an int (last of a with first of b) or two lists of dims."""
    _require_tensors("tensordot", a, b)
    sa, sb = a._data.shape, b._data.shape
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        given_a, given_b = list(range(-dims, 0)), list(range(dims))
    else:
        given_a, given_b = ([d] if isinstance(d, (int, np.integer)) else list(d) for d in dims)
    if len(given_a) != len(given_b):
        raise RuntimeError("both dimension lists should have same length")
    da = [wrap_dim(d, len(sa), "tensordot") for d in given_a]
    db = [wrap_dim(d, len(sb), "tensordot") for d in given_b]
    for x, y, gx, gy in zip(da, db, given_a, given_b):
        if sa[x] != sb[y]:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {sa[x]} in dim {gx} and "
                               f"second has size {sb[y]} in dim {gy}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_C_NAME[a.dtype.name]} != "
                           f"{_C_NAME[b.dtype.name]}")
    free_a = [d for d in range(len(sa)) if d not in da]
    free_b = [d for d in range(len(sb)) if d not in db]
    k = int(math.prod([sa[d] for d in da]))
    m = a.permute(*free_a, *da).reshape(int(math.prod([sa[d] for d in free_a])), k)
    n = b.permute(*db, *free_b).reshape(k, int(math.prod([sb[d] for d in free_b])))
    return mm(m, n).reshape(*[sa[d] for d in free_a], *[sb[d] for d in free_b])


def kron(input, other):
    """Kronecker product: every element of input scales a copy of other."""
    _require_tensors("kron", input, other)
    nd = max(input._data.ndim, other._data.ndim)
    sa = (1,) * (nd - input._data.ndim) + input._data.shape
    sb = (1,) * (nd - other._data.ndim) + other._data.shape
    a = input.reshape(*[x for s in sa for x in (s, 1)])
    b = other.reshape(*[x for s in sb for x in (1, s)])
    return unsafe_view(a * b, tuple(x * y for x, y in zip(sa, sb)))


# -- einsum: diagonals, sums and pairwise contractions into recorded views, sums, products and bmm ------------------

def _diagonal(x, d1, d2):
    """The diagonal over dims d1 < d2, appended as the last dim (a strided view, DiagonalBackward0)."""
    from .shape import _view_of
    return _view_of(op.DIAGONAL, x, lambda arr: np.diagonal(arr, 0, d1, d2))


def _parse_term(term, where):
    """A subscript term -> list of labels (letters, or 'ELLIPSIS' once)."""
    labels = []
    rest = term
    while rest:
        if rest.startswith("..."):
            if "..." in labels:
                raise RuntimeError(f"einsum(): found '.' for {where} that is not part of any ellipsis")
            labels.append("...")
            rest = rest[3:]
        elif rest[0].isalpha():
            labels.append(rest[0])
            rest = rest[1:]
        elif rest[0] == ".":
            raise RuntimeError(f"einsum(): found '.' for {where} that is not part of any ellipsis")
        else:
            raise RuntimeError(f"einsum(): invalid subscript given at index {len(term) - len(rest)} in the "
                               f"equation string, subscripts must be in [a-zA-Z]")
    return labels


def einsum(equation, *operands):
    """Einstein summation over the operands' subscripts (torch.einsum's equation syntax, ellipsis included)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    _require_tensors("einsum", *operands)
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(operands):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(terms) < len(operands):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    n_ell = 0
    per_op = []
    for k, (term, x) in enumerate(zip(terms, operands)):
        labels = _parse_term(term, f"operand {k}")
        nd = x._data.ndim
        if "..." in labels:
            e = nd - (len(labels) - 1)
            if e < 0:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(labels) - 1}) is "
                                   f"more than the number of dimensions ({nd}) for operand {k}")
            i = labels.index("...")
            labels = labels[:i] + [("...", e - j) for j in range(e)] + labels[i + 1:]
            n_ell = max(n_ell, e)
        elif len(labels) != nd:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(labels)}) does not match "
                               f"the number of dimensions ({nd}) for operand {k} and no ellipsis was given")
        per_op.append(labels)
    # ellipsis dims are labelled ('...', distance from the right end) so they align like broadcasting; an operand
    # whose ellipsis covers fewer dims gets size-1 ones, as in PyTorch (so they are shared, not one-sided)
    ell = [("...", n_ell - j) for j in range(n_ell)]
    operands = list(operands)
    for k, labels in enumerate(per_op):
        if any(isinstance(lab, tuple) for lab in labels) or "..." in _parse_term(terms[k], f"operand {k}"):
            own = [lab for lab in labels if isinstance(lab, tuple)]
            at = labels.index(own[0]) if own else _parse_term(terms[k], f"operand {k}").index("...")
            for _ in range(n_ell - len(own)):
                operands[k] = operands[k].unsqueeze(at)
            per_op[k] = labels[:at] + ell + labels[at + len(own):]
    sizes = {}
    for k, (labels, x) in enumerate(zip(per_op, operands)):
        seen = {}
        for lab, s in zip(labels, x._data.shape):
            if lab in seen and seen[lab] != s:
                raise RuntimeError(f"einsum(): subscript {lab} is repeated for operand {k} but the sizes don't "
                                   f"match, {s} != {seen[lab]}")
            seen[lab] = s
            if lab in sizes and s != sizes[lab] and s != 1 and sizes[lab] != 1:
                raise RuntimeError(f"einsum(): subscript {lab} has size {s} for operand {k} which does not "
                                   f"broadcast with previously seen size {sizes[lab]}")
            sizes[lab] = s if lab not in sizes or sizes[lab] == 1 else sizes[lab]
    if arrow:
        out_labels = []
        for lab in _parse_term(rhs, "output"):
            if lab == "...":
                out_labels += ell
            elif lab in out_labels:
                raise RuntimeError(f"einsum(): output subscript {lab} appears more than once in the output")
            elif lab not in sizes:
                raise RuntimeError(f"einsum(): output subscript {lab} does not appear in the equation for any "
                                   f"input operand")
            else:
                out_labels.append(lab)
    else:
        counts = {}
        for labels in per_op:
            for lab in labels:
                if isinstance(lab, str):
                    counts[lab] = counts.get(lab, 0) + 1
        out_labels = ell + sorted(lab for lab, c in counts.items() if c == 1)
    # repeated subscripts within an operand: take diagonals
    xs = []
    for labels, x in zip(per_op, operands):
        labels = list(labels)
        while len(set(labels)) != len(labels):
            lab = next(lb for lb in labels if labels.count(lb) > 1)
            d1 = labels.index(lab)
            d2 = labels.index(lab, d1 + 1)
            x = _diagonal(x, d1, d2)
            labels = [lb for j, lb in enumerate(labels) if j not in (d1, d2)] + [lab]
        xs.append((x, labels))
    if len(xs) == 1:
        x, labels = xs[0]
        summed = [lab for lab in labels if lab not in out_labels]
        x = x.permute(*[labels.index(lab) for lab in out_labels + summed])
        if summed:
            x = x.sum(tuple(range(len(out_labels), len(labels))))
        return x
    x, labels = xs[0]
    for j in range(1, len(xs)):
        y, ylabels = xs[j]
        later = set(out_labels)
        for _, lbs in xs[j + 1:]:
            later.update(lbs)
        x, labels = _sum_unneeded(x, labels, later | set(ylabels))
        y, ylabels = _sum_unneeded(y, ylabels, later | set(labels))
        last = j == len(xs) - 1
        x, labels = _contract_pair(x, labels, y, ylabels, later, sizes, out_labels if last else None)
    if labels != out_labels:
        x = x.permute(*[labels.index(lab) for lab in out_labels])
    return x


def _sum_unneeded(x, labels, needed):
    dims = tuple(k for k, lab in enumerate(labels) if lab not in needed)
    if not dims:
        return x, labels
    return x.sum(dims), [lab for lab in labels if lab in needed]


def _expand_to(x, labels, sizes, wanted):
    """Expand size-1 dims of x whose label has a larger size elsewhere (einsum's broadcasting)."""
    shape = tuple(sizes[lab] if lab in wanted else s for lab, s in zip(labels, x._data.shape))
    return x if shape == x._data.shape else x.expand(*shape)


def _contract_pair(x, xl, y, yl, later, sizes, out_labels):
    """Multiply two labelled operands, summing the labels they share that nothing later needs.

    With nothing to sum, the product is a broadcasting multiply (arranged in the output order when this is the
    last pair, as PyTorch's graph ends in MulBackward0); else one bmm over (batch, left, summed) x (batch,
    summed, right)."""
    shared = [lab for lab in xl if lab in yl]
    summed = [lab for lab in shared if lab not in later]
    if not summed:
        order = out_labels if out_labels is not None else xl + [lab for lab in yl if lab not in xl]
        return _aligned(x, xl, order) * _aligned(y, yl, order), list(order)
    batch = [lab for lab in shared if lab in later]
    left = [lab for lab in xl if lab not in shared]
    right = [lab for lab in yl if lab not in shared]
    if out_labels is not None:
        # the last pair: order batch/left/right so that bmm's result is already in the output order, as in
        # PyTorch (whose graph then ends in a view); one-sided labels leading the output become batch labels
        p = max([out_labels.index(lab) + 1 for lab in batch], default=0)
        while not _two_blocks([lab in xl for lab in out_labels[p:]]):
            p += 1
        for lab in out_labels[:p]:
            if lab not in xl:
                x, xl = x.unsqueeze(-1), xl + [lab]
            if lab not in yl:
                y, yl = y.unsqueeze(-1), yl + [lab]
        batch = out_labels[:p]
        left = [lab for lab in out_labels[p:] if lab in xl]
        right = [lab for lab in out_labels[p:] if lab in yl]
        if left and right and out_labels.index(right[0]) < out_labels.index(left[0]):
            x, xl, y, yl, left, right = y, yl, x, xl, right, left
    x = _expand_to(x, xl, sizes, batch + summed)
    y = _expand_to(y, yl, sizes, batch + summed)
    size = lambda labs: int(math.prod([sizes[lab] for lab in labs]))
    xp = x.permute(*[xl.index(lab) for lab in batch + left + summed])
    yp = y.permute(*[yl.index(lab) for lab in batch + summed + right])
    xs = xp.reshape(size(batch), size(left), size(summed))
    ys = yp.reshape(size(batch), size(summed), size(right))
    out = bmm(xs, ys).reshape(*[sizes[lab] for lab in batch + left + right])
    return out, batch + left + right


def _two_blocks(flags):
    """Whether a list of booleans is all True then all False, or all False then all True."""
    changes = sum(1 for a, b in zip(flags, flags[1:]) if a != b)
    return changes <= 1


def _aligned(x, labels, order):
    """x permuted to the labels' order in `order`, with size-1 dims for the labels it lacks."""
    own = [lab for lab in order if lab in labels]
    x = x.permute(*[labels.index(lab) for lab in own])
    shape = [x._data.shape[own.index(lab)] if lab in own else 1 for lab in order]
    return x.reshape(*shape) if len(shape) != len(own) else x


# -- linear algebra on batches of square matrices (LINALG records; kernels in _kernels/linalg.py) -----------------

class LinAlgError(RuntimeError):
    """A linear-algebra failure on valid input (a singular or not positive-definite matrix), like PyTorch's."""


slogdet_result = namedtuple("slogdet", ["sign", "logabsdet"])


def _check_square(name, A, arg="A"):
    _require_tensors(name.split(".")[-1], A)
    d = A._data
    if d.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor {arg} must have at least 2 dimensions.")
    if A.dtype._category < 2:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got {_tn(A.dtype)}")
    if A.dtype._category == 3:
        raise NotImplementedError(f"{name}: complex tensors are not supported yet")
    if d.shape[-1] != d.shape[-2]:
        raise RuntimeError(f"{name}: {arg} must be batches of square matrices, but they are {d.shape[-2]} by "
                           f"{d.shape[-1]} matrices")


def _batch_prefix(A, t):
    return f"(Batch element {t}): " if A.ndim > 2 else ""


def _first_zero_pivot(A):
    """(batch element, 1-based index of the first zero diagonal element of U in A = PLU) of a singular batch."""
    import scipy.linalg
    flat = A.reshape(-1, *A.shape[-2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t, m in enumerate(flat):
            lu, _ = scipy.linalg.lu_factor(m, check_finite=False)
            zero = np.flatnonzero(np.diag(lu) == 0)
            if zero.size:
                return t, int(zero[0]) + 1
    return 0, A.shape[-1]


def _linalg_record(opcode, inputs, out, nb, n, k=0):
    tape = _state.tape
    return record(opcode, inputs, out, aux=tape.put_ints((out.ndim, *out.shape, nb, n, k)))


def _batch_count(shape):
    return int(math.prod(shape[:-2])) if len(shape) > 2 else 1


def solve(A, B, *, left=True):
    """X with A @ X = B for batches of square A; B a (batch of) vector(s) or matrices, batch dims broadcast."""
    _check_square("linalg.solve", A)
    _require_tensors("solve", B)
    if not left:
        raise NotImplementedError("linalg.solve: left=False is not supported yet")
    if A.dtype != B.dtype:
        raise RuntimeError(f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                           f"{_tn(A.dtype)} and B of type {_tn(B.dtype)} instead")
    sa, sb = A._data.shape, B._data.shape
    n = sa[-1]
    vector = B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and sb == sa[:-1])
    sbm = sb + (1,) if vector else sb
    if len(sbm) < 2 or sbm[-2] != n:
        raise RuntimeError(f"linalg.solve: Incompatible shapes of A and B for the equation AX = B ({n}x{n} and "
                           f"{sbm[-2] if len(sbm) > 1 else sbm[0]}x{sbm[-1] if len(sbm) > 1 else 1})")
    batch = tuple(broadcast_shape("linalg.solve", sbm[:-2], sa[:-2]))
    k = sbm[-1]
    a = np.broadcast_to(A._data, batch + (n, n)).astype(np.float64)
    b = np.broadcast_to(B._data.reshape(sbm), batch + (n, k)).astype(np.float64)
    try:
        x = np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        t, _ = _first_zero_pivot(a)
        raise LinAlgError(f"torch.linalg.solve: {_batch_prefix(a, t)}The solver failed because the input matrix "
                          f"is singular.") from None
    out_shape = batch + ((n,) if vector else (n, k))
    x = x.reshape(out_shape).astype(A._data.dtype)
    if not needs_grad(A, B):
        return constant(x)
    Ae = A if sa[:-2] == batch else A.expand(*batch, n, n)
    Be = B if sb == out_shape else B.expand(*out_shape)
    return _linalg_record(op.LINALG_SOLVE, (Ae, Be), x, _batch_count(batch + (n, n)), n, k)


def inv(A):
    """The inverse of each square matrix of the batch."""
    _check_square("linalg.inv", A)
    a = A._data.astype(np.float64)
    try:
        y = np.linalg.inv(a)
    except np.linalg.LinAlgError:
        t, i = _first_zero_pivot(a)
        raise LinAlgError(f"linalg.inv: {_batch_prefix(a, t)}The diagonal element {i} is zero, the inversion could "
                          f"not be completed because the input matrix is singular.") from None
    y = y.astype(A._data.dtype)
    if not needs_grad(A):
        return constant(y)
    return _linalg_record(op.LINALG_INV, (A,), y, _batch_count(a.shape), a.shape[-1])


def det(A):
    """The determinant of each square matrix of the batch (its gradient is defined for singular ones too)."""
    _check_square("linalg.det", A)
    a = A._data.astype(np.float64)
    d = np.asarray(np.linalg.det(a)).astype(A._data.dtype)
    if not needs_grad(A):
        return constant(d)
    return _linalg_record(op.LINALG_DET, (A,), d, _batch_count(a.shape), a.shape[-1])


def slogdet(A):
    """(sign, log|det|) of each square matrix of the batch; only logabsdet carries a gradient."""
    _check_square("linalg.slogdet", A)
    a = A._data.astype(np.float64)
    sign, logabs = np.linalg.slogdet(a)
    sign = np.asarray(sign).astype(A._data.dtype)
    logabs = np.asarray(logabs).astype(A._data.dtype)
    if not needs_grad(A):
        return slogdet_result(constant(sign), constant(logabs))
    nb, n = _batch_count(a.shape), a.shape[-1]
    sign_t = _linalg_record(op.LINALG_SLOGDET_SIGN, (A,), sign, nb, n)
    return slogdet_result(sign_t, _linalg_record(op.LINALG_SLOGDET, (A,), logabs, nb, n))


def _cholesky(name, opcode, A, upper):
    _check_square(name, A)
    if upper:
        raise NotImplementedError(f"{name}: upper=True is not supported yet (use the transpose of the lower factor)")
    a = A._data.astype(np.float64)
    try:
        L = np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        import scipy.linalg.lapack
        for t, m in enumerate(a.reshape(-1, *a.shape[-2:])):
            _, info = scipy.linalg.lapack.dpotrf(m, lower=1)
            if info > 0:
                raise LinAlgError(f"{name}: {_batch_prefix(a, t)}The factorization could not be completed because "
                                  f"the input is not positive-definite (the leading minor of order {info} is not "
                                  f"positive-definite).") from None
        raise
    L = L.astype(A._data.dtype)
    if not needs_grad(A):
        return constant(L)
    return _linalg_record(opcode, (A,), L, _batch_count(a.shape), a.shape[-1])


def linalg_cholesky(A, *, upper=False):
    """The lower Cholesky factor L (A = L L^T) of each symmetric positive-definite matrix; reads A's lower half."""
    return _cholesky("linalg.cholesky", op.LINALG_CHOLESKY, A, upper)


def cholesky(input, upper=False):
    """torch.cholesky (deprecated in PyTorch in favour of linalg.cholesky; records CholeskyBackward0)."""
    return _cholesky("cholesky", op.CHOLESKY, input, upper)


def _rmatmul(self, other):
    return matmul(other, self)


attach(mm, mv, dot, vdot, bmm, matmul, addmm, addmv, baddbmm, addbmm, outer, kron, cholesky, __matmul__=matmul,
       __rmatmul__=_rmatmul, ger=outer, inverse=inv, det=det, slogdet=slogdet)
