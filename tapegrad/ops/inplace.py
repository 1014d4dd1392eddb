"""In-place operations, recorded functionally: the new value gets a fresh record and the tensor (and, through a
view, its base) is rebound to it. Older records holding the storage's previous values are flagged stale, so a
backward that needs them raises PyTorch's version-counter error.
"""
import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, current_gid, record, source_gid
from ._common import SCALAR_TYPES, as_operand, attach, constant
from .elementwise import add, div, mul, sub
from .shape import _normalize_index, view_index

LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF_IN_PLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."


def _check_allowed(t):
    if t._seg is None and t._rg and t._base is None:
        raise RuntimeError(LEAF_IN_PLACE)
    base = t._base
    if base is not None and t._rg and base._seg is None and base._rg:
        raise RuntimeError(VIEW_OF_LEAF_IN_PLACE)


def invalidate(t):
    """t's storage is about to change: records holding its old values go stale and its version moves on."""
    base = t._base if t._base is not None else t
    tape = _state.tape
    tape.flush()
    gids = [current_gid(h) if h._seg is not None else h._id for h in (base, t)]
    if base._meta and base._meta.get("snapshots"):
        gids += base._meta.pop("snapshots")
    for g in gids:
        if tape.owns(g):
            tape.flags[g - tape.base] |= op.FLAG_STALE
            tape.stale_info.setdefault(g, (base, base._version_count))
    base._version_count += 1
    for h in (base, t):
        if h._seg is None:
            h._id = -1     # a leaf or constant records a fresh snapshot at its next use


def _conform(name, new, target):
    """Broadcast and cast the computed value to the shape and dtype of the tensor written in place."""
    nd = new._data
    if nd.shape != target.shape:
        try:
            shape = np.broadcast_shapes(nd.shape, target.shape)
        except ValueError:
            shape = None
        if shape != target.shape:
            raise RuntimeError(f"{name}: output with shape {list(target.shape)} doesn't match the broadcast shape "
                               f"{list(shape) if shape is not None else list(nd.shape)}")
        from .shape import expand
        new = expand(new, target.shape)
    if nd.dtype != target.dtype:
        if not np.can_cast(nd.dtype, target.dtype, "same_kind"):
            from .._dtypes import from_numpy_dtype
            raise RuntimeError(f"{name}: result type {from_numpy_dtype(nd.dtype).name.capitalize()} can't be cast "
                               f"to the desired output type {from_numpy_dtype(target.dtype).name.capitalize()}")
        from .elementwise import to
        new = to(new, dtype=target.dtype.name)
    return new


def apply_inplace(name, t, compute, reads_self=False):
    """Give t the value compute(src) (a Tensor), in its own storage, keeping the graph right."""
    recording = _state.tape.grad_enabled
    if recording:
        _check_allowed(t)
    src = t
    if recording and reads_self and t._rg:
        src = record(op.CLONE, (t,), t._data)   # keeps the value the new record's backward will read
    new = _conform(name, compute(src), t._data)
    invalidate(t)
    if isinstance(t._data, np.ndarray):
        t._data[...] = new._data
    else:
        t._data = t._data.dtype.type(new._data)
    if recording and new._rg:
        if t._base is not None:
            _write_back(t, new)
        t._id, t._seg, t._rg = new._id, new._seg, True
    return t


def _write_back(view, new):
    """Record the base's new value: its old value with the view's elements replaced (CopySlices)."""
    base = view._base
    tape = _state.tape
    idx = view_index(view).reshape(-1)
    m = idx.size
    ia = source_gid(base, tape)
    ib = source_gid(new, tape)
    data = np.array(base._data, copy=True)
    aux = tape.put_ints((data.ndim, *data.shape, m, *idx, *range(m)))
    gid = tape.push(op.COPY_SLICES, ia, ib, data, aux)
    base._id, base._seg, base._rg = gid, tape.seg, True


def setitem(t, idx, value):
    """t[idx] = value, broadcasting value; differentiable in both t and value."""
    nidx, _ = _normalize_index(idx)
    if not isinstance(value, SCALAR_TYPES):
        value = as_operand(value, "setitem")
    value_rg = value.__class__ is Tensor and value._rg
    vdata = value._data if value.__class__ is Tensor else value
    if _state.tape.grad_enabled and t._rg and t._seg is None and t._base is None and not _whole(nidx, t):
        raise RuntimeError(VIEW_OF_LEAF_IN_PLACE)   # PyTorch writes a partial index through a view
    if not (_state.tape.grad_enabled and (t._rg or value_rg)):
        target = t._ensure_array()
        invalidate(t)
        try:
            target[nidx] = vdata
        except (ValueError, IndexError) as err:
            raise RuntimeError(f"setitem: {err}") from None
        return

    def compute(src):
        d = np.array(src._data, copy=True)
        try:
            d[nidx] = vdata
        except (ValueError, IndexError) as err:
            raise RuntimeError(f"setitem: {err}") from None
        positions = np.arange(d.size).reshape(d.shape)[nidx]
        if value.__class__ is Tensor:
            sources = np.broadcast_to(np.arange(vdata.size).reshape(np.shape(vdata)), positions.shape)
            inputs = (src, value)
        else:
            sources = np.zeros(positions.shape, np.int64)
            inputs = (src,)
        tape = _state.tape
        aux = tape.put_ints((d.ndim, *d.shape, positions.size, *positions.reshape(-1), *sources.reshape(-1)))
        return record(opcode, inputs, d, aux=aux)

    # the node PyTorch records for each kind of write
    if any(isinstance(i, np.ndarray) or isinstance(i, bool) for i in nidx):
        opcode = op.INDEX_PUT_OP
    elif _whole(nidx, t):
        opcode = op.COPY if value.__class__ is Tensor and np.ndim(vdata) else op.FILL
    else:
        opcode = op.COPY_SLICES

    apply_inplace("setitem", t, compute)


def _whole(idx, t):
    """Whether a basic index selects the whole tensor (x[...] = v, x[:] = v), which PyTorch writes directly."""
    rest = [i for i in idx if i is not Ellipsis and not (isinstance(i, slice) and i.start in (None, 0)
                                                          and i.stop is None and i.step in (None, 1))]
    advanced = any(isinstance(i, np.ndarray) or isinstance(i, bool) for i in idx)
    return advanced or not rest


def add_(input, other, *, alpha=1):
    return apply_inplace("add_", input, lambda s: add(s, other, alpha=alpha))


def sub_(input, other, *, alpha=1):
    return apply_inplace("sub_", input, lambda s: sub(s, other, alpha=alpha))


def mul_(input, other):
    return apply_inplace("mul_", input, lambda s: mul(s, other), reads_self=isinstance(other, Tensor))


def div_(input, other, *, rounding_mode=None):
    return apply_inplace("div_", input, lambda s: div(s, other, rounding_mode=rounding_mode),
                         reads_self=isinstance(other, Tensor))


def fill_(input, value):
    setitem(input, Ellipsis, value)
    return input


def zero_(input):
    return fill_(input, 0)


def copy_(input, src, non_blocking=False):
    setitem(input, Ellipsis, src)
    return input


def _iop(fn):
    def inplace(self, other):
        fn(self, other)
        return self
    return inplace


attach(add_, sub_, mul_, div_, fill_, zero_, copy_, __setitem__=setitem,
       __iadd__=_iop(add_), __isub__=_iop(sub_), __imul__=_iop(mul_), __itruediv__=_iop(div_))
