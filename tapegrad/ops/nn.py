"""The NN family's own recorded operations: softmax, fused losses, layer norm, embedding, convolution, pooling.

Each forward runs the family's replay kernel (_kernels/nn.py nn_forward) on a scratch tape of its inputs, so the
eager values and a compiled replay are computed by the same code. Compositions of existing ops live in
tapegrad/nn/functional.py; this module holds the ops whose PyTorch grad_fn is a fused node.
"""
import math

import numpy as np

from .. import _dtypes
from .._kernels import opcodes as op
from .._kernels.nn import MEAN, NONE, SUM, nn_forward
from ..tensor import Tensor, _result, needs_grad, recording_tape, source_gid, _wrap
from ._common import constant, wrap_dim

REDUCTIONS = {"none": NONE, "mean": MEAN, "sum": SUM}


_scratch_layouts = {}


def _scratch_layout(opcode, shapes, n_extras, has_b, out_shape, params):
    """(ints, aux, off, output offset, params position) of a scratch tape holding inputs of `shapes` then the
    output; cached, because a training loop asks for the same few layouts every step."""
    key = (opcode, shapes, n_extras, has_b, out_shape, params)
    layout = _scratch_layouts.get(key)
    if layout is None:
        ints = [0]
        aux, off = [], []
        pos = 0
        for shape in shapes:
            aux.append(len(ints))
            ints += [len(shape), *shape]
            off.append(pos)
            pos += math.prod(shape)
        first_extra = 1 + has_b
        aux.append(len(ints))
        p = len(ints) + 1 + len(out_shape) + 1 + n_extras
        ints += [len(out_shape), *out_shape, n_extras, *range(first_extra, first_extra + n_extras), *params]
        off.append(pos)
        layout = (np.array(ints, dtype=np.int64), np.array(aux, np.int64), np.array(off, np.int64), pos, p)
        if len(_scratch_layouts) > 4096:
            _scratch_layouts.clear()
        _scratch_layouts[key] = layout
    return layout


def _scratch_forward(opcode, a, b, extras, out_shape, params, const=0.0):
    """Run nn_forward on a scratch tape holding the inputs' values; return (float64 output, final params)."""
    inputs = [a] + ([b] if b is not None else []) + list(extras)
    ints, aux, off, pos, p = _scratch_layout(opcode, tuple(arr.shape for arr in inputs), len(extras), b is not None,
                                             out_shape, tuple(params))
    ints = ints.copy()     # the kernel writes data-dependent params (max-pool argmaxes) into it
    size = math.prod(out_shape)
    vals = np.concatenate([arr.reshape(-1) for arr in inputs] + [np.zeros(size)], dtype=np.float64)
    nn_forward(opcode, ints, aux, off, 0, len(inputs), 0, 1 if b is not None else -1, float(const), vals)
    return vals[pos:].reshape(out_shape), ints[p:]


def nn_op(opcode, a, b, extras, out_shape, params, dtype, const=0.0, differentiable=None):
    """Compute opcode's output from tensors a, b (or None) and the extra input tensors; record it when one of the
    `differentiable` tensors (default: all) requires grad. Returns (output handle, final params)."""
    arrays = [t._data for t in [a] + ([b] if b is not None else []) + list(extras)]
    value, params = _scratch_forward(opcode, arrays[0], arrays[1] if b is not None else None,
                                     arrays[1 + (b is not None):], tuple(out_shape), params, const)
    out = np.array(value, dtype=dtype)   # a fresh C-contiguous array (ascontiguousarray would make 0-d 1-d)
    if not needs_grad(*(differentiable if differentiable is not None else [a, b, *extras])):
        return constant(out), params
    tape = recording_tape()
    ia = source_gid(a, tape)
    ib = source_gid(b, tape) if b is not None else -1
    gids = [source_gid(t, tape) for t in extras]
    aux = tape.put_ints((out.ndim, *out.shape, len(gids), *gids, *(int(v) for v in params)))
    gid = tape.push(opcode, ia, ib, out, aux, float(const))
    return _result(out, gid, tape.seg), params


def float_bits(x):
    return int(np.array(float(x)).view(np.int64))


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return REDUCTIONS[reduction]


def _float_input(name, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}")
    if x._data.dtype.kind != "f":
        raise RuntimeError(f'"{name}" not implemented for \'{x.dtype.name.capitalize()}\'')


# -- softmax ---------------------------------------------------------------------------------------------------

def softmax_op(name, input, dim, log):
    """softmax / log_softmax of a float tensor along dim (numerically stable)."""
    _float_input(name, input)
    shape = input._data.shape
    d = wrap_dim(dim, input._data.ndim, name)
    outer = int(math.prod(shape[:d])) if shape else 1
    n = shape[d] if shape else 1
    inner = int(math.prod(shape[d + 1:])) if shape else 1
    opcode = op.LOG_SOFTMAX if log else op.SOFTMAX
    return nn_op(opcode, input, None, (), shape, (outer, n, inner), input._data.dtype)[0]


# -- pointwise losses -------------------------------------------------------------------------------------------

def pointwise_loss(opcode, input, target, reduction, const=0.0, weight=None, pos_weight=None):
    """A fused elementwise loss of same-shaped input and target, with optional constant weights broadcast to
    the input's shape."""
    r = check_reduction(reduction)
    dtype = np.result_type(input._data.dtype, target._data.dtype)
    shape = input._data.shape
    extras = [constant(np.ascontiguousarray(np.broadcast_to(np.asarray(w._data, dtype=np.float64), shape)))
              for w in (weight, pos_weight) if w is not None]
    out_shape = shape if r == NONE else ()
    params = (r, int(weight is not None), int(pos_weight is not None))
    return nn_op(opcode, input, target, extras, out_shape, params, dtype, const, differentiable=(input, target))[0]


# -- negative log likelihood ------------------------------------------------------------------------------------

def check_nll_args(input, target, weight, ignore_index):
    """Validate nll_loss's arguments as PyTorch does; return (N, C, inner)."""
    x, t = input._data, target._data
    if x.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {x.ndim})")
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"expected scalar type Long but found {_dtypes.from_numpy_dtype(t.dtype).name.capitalize()}")
    if x.ndim == 1:
        if t.ndim != 0:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        nb, nc, inner = 1, x.shape[0], 1
    else:
        if t.ndim == 0 or x.shape[0] != t.shape[0]:
            raise ValueError(f"Expected input batch_size ({x.shape[0]}) to match target batch_size "
                             f"({t.shape[0] if t.ndim else 1}).")
        if x.ndim == 2 and t.ndim != 1:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        if x.shape[2:] != t.shape[1:]:
            raise RuntimeError(f"Expected target size {list((x.shape[0],) + x.shape[2:])}, got {list(t.shape)}")
        nb, nc = x.shape[0], x.shape[1]
        inner = int(math.prod(x.shape[2:]))
    if weight is not None and (weight._data.ndim != 1 or weight._data.shape[0] != nc):
        raise RuntimeError(f"weight tensor should be defined either for all {nc} classes or no classes but got "
                           f"weight tensor of shape: {list(weight._data.shape)}")
    tv = t.reshape(-1)
    bad = (tv != ignore_index) & ((tv < 0) | (tv >= nc))
    if bad.any():
        raise IndexError(f"Target {int(tv[np.argmax(bad)])} is out of bounds.")
    return nb, nc, inner


def nll_op(input, target, weight, ignore_index, reduction):
    """nll_loss on input (N, C, *) or (C,), target (N, *) or (); torch's NllLoss / NllLoss2D records."""
    r = check_reduction(reduction)
    nb, nc, inner = check_nll_args(input, target, weight, ignore_index)
    x = input._data
    opcode = op.NLL_LOSS if x.ndim <= 2 else op.NLL_LOSS2D
    out_shape = target._data.shape if r == NONE else ()
    # the weight goes on the tape as an operand (not a copy) so that tg.compile replays read its current values
    extras = [weight] if weight is not None else []
    return nn_op(opcode, input, target, extras, out_shape, (nb, nc, inner, r, int(ignore_index)), x.dtype,
                 differentiable=(input,))[0]


def div_count(input, count):
    """input / count recorded as torch's division by an integer size (DivBackward1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return nn_op(op.DIV_COUNT, input, None, (), input._data.shape, (), input._data.dtype, const=float(count))[0]


# -- layer norm, embedding ------------------------------------------------------------------------------------

def layer_norm_op(input, normalized_shape, weight, bias, eps):
    x = input._data
    ns = tuple(normalized_shape)
    k = len(ns)
    if k == 0 or x.shape[x.ndim - k:] != ns or x.ndim < k:
        raise RuntimeError(f"Given normalized_shape={list(ns)}, expected input with shape [*, "
                           f"{', '.join(map(str, ns))}], but got input of size{list(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t._data.shape) != ns:
            raise RuntimeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                               f"{list(t._data.shape)} and normalized_shape = {list(ns)}")
    m = int(math.prod(ns))
    rows = x.size // m if m else 0
    extras = [bias] if bias is not None else []
    return nn_op(op.LAYER_NORM, input, weight, extras, x.shape, (rows, m), x.dtype, const=float(eps))[0]


def embedding_op(input, weight, padding_idx):
    idx, w = input._data, weight._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.dtype} instead (while checking arguments for embedding)")
    if w.ndim != 2:
        raise RuntimeError("'weight' must be 2-D")
    v, d = w.shape
    if idx.size and (idx.min() < 0 or idx.max() >= v):
        raise IndexError("index out of range in self")
    pad = -1 if padding_idx is None else int(padding_idx)
    return nn_op(op.EMBEDDING, weight, input, (), idx.shape + (d,), (idx.size, d, pad), w.dtype,
                 differentiable=(weight,))[0]


# -- convolution and pooling (2-d; 1-d runs with height 1) ---------------------------------------------------------

def conv_op(input, weight, bias, geometry, out_shape):
    """geometry: (N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups); input and weight arrays are
    read flat, so 1-d shapes need no copy."""
    extras = [bias] if bias is not None else []
    return nn_op(op.CONVOLUTION, input, weight, extras, out_shape, geometry, input._data.dtype)[0]


def max_pool_op(input, geometry, out_shape):
    """Returns (values, flat argmax index within each plane as int64 of the output's shape)."""
    n_out = int(math.prod(out_shape))
    out, params = nn_op(op.MAX_POOL2D, input, None, (), out_shape, tuple(geometry) + (0,) * n_out,
                        input._data.dtype)
    indices = np.array(params[13:13 + n_out], dtype=np.int64).reshape(out_shape)
    return out, _wrap(indices)


def avg_pool_op(input, geometry, out_shape):
    return nn_op(op.AVG_POOL2D, input, None, (), out_shape, geometry, input._data.dtype)[0]
