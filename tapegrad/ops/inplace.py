"""In-place operations, recorded functionally: the new value gets a fresh record and the tensor (and, through a
view, its base) is rebound to it. Older records holding the storage's previous values are flagged stale, so a
backward that needs them raises PyTorch's version-counter error.
"""
import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..autograd.graph import SNAPSHOT, WRITE_BACK
from ..tensor import Tensor, current_gid, needs_grad, record, recording_tape, source_gid
from ._common import SCALAR_TYPES, as_operand, attach, constant, wrap_dim
from .elementwise import add, div, mul, sub
from .shape import _check_index_dims, _dim_positions, _index_array, _normalize_index, torch_index, view_index

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


def invalidate_all(tensors):
    """invalidate() for each tensor, flushing the tape once (an optimizer step updates every parameter)."""
    tape = _state.tape
    tape.flush()
    for t in tensors:
        if t._base is None and t._seg is None and not (t._meta and t._meta.get("snapshots")):
            # a leaf or constant: only its own snapshot record goes stale
            g = t._id
            if tape.owns(g):
                tape.flags[g - tape.base] |= op.FLAG_STALE
                tape.stale_info.setdefault(g, (t, t._version_count))
            t._version_count += 1
            t._id = -1
        else:
            invalidate(t)


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
        src = record(op.CLONE, (t,), t._data, const=SNAPSHOT)   # keeps the value the new record's backward reads
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
    gid = tape.push(op.COPY_SLICES, ia, ib, data, aux, WRITE_BACK)   # marks it for grad_fn views (autograd.graph)
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
        positions = _write_positions(target, nidx, vdata)
        invalidate(t)
        target[np.unravel_index(positions, target.shape)] = np.broadcast_to(vdata, positions.shape)
        return

    def compute(src):
        d = np.array(src._data, copy=True)
        positions = _write_positions(d, nidx, vdata)
        d[np.unravel_index(positions, d.shape)] = np.broadcast_to(vdata, positions.shape)
        if value.__class__ is Tensor:
            sources = np.broadcast_to(np.arange(vdata.size).reshape(np.shape(vdata)), positions.shape)
            inputs = (src, value)
        else:
            sources = np.zeros(positions.shape, np.int64)
            inputs = (src,)
        return _write_record(opcode, inputs, d, positions, sources,
                             0.0 if value.__class__ is Tensor or isinstance(value, complex) else float(value))

    # the node PyTorch records for each kind of write
    if any(isinstance(i, np.ndarray) or isinstance(i, bool) for i in nidx):
        opcode = op.INDEX_PUT_OP
    elif _whole(nidx, t):
        opcode = op.COPY if value.__class__ is Tensor and np.ndim(vdata) else op.FILL
    else:
        opcode = op.COPY_SLICES

    apply_inplace("setitem", t, compute)


def _write_positions(d, nidx, vdata):
    """The flat positions in d that d[nidx] = vdata writes, after checking vdata broadcasts to them."""
    positions = torch_index(np.arange(np.size(d)).reshape(np.shape(d)), nidx)
    try:
        np.broadcast_to(vdata, positions.shape)
    except ValueError:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(np.shape(vdata))} cannot be broadcast to "
                           f"indexing result of shape {list(positions.shape)}") from None
    return positions


def _write_record(opcode, inputs, data, positions, sources, const=0.0):
    """Record y = x written at positions (params [m, positions..., sources...]); a constant without grad."""
    if not needs_grad(*inputs):
        return constant(data)
    positions, sources = np.asarray(positions).reshape(-1), np.asarray(sources).reshape(-1)
    aux = recording_tape().put_ints((data.ndim, *data.shape, positions.size, *positions, *sources))
    return record(opcode, inputs, data, aux=aux, const=const)


def _scatter_positions(name, input, dim, index, src_shape):
    """(positions in input, positions in src) of scatter's writes: input[c with c[dim] = index[c]] <- src[c]."""
    idx = _index_array(name, index)
    if idx.dtype.kind in "iu" and isinstance(index, Tensor) and index._data.dtype != np.int64:
        raise RuntimeError("scatter(): Expected dtype int64 for index")
    shape = input._data.shape
    dim = wrap_dim(dim, len(shape), name)
    _check_index_dims(name, shape, idx.shape, dim, src_shape)
    pos = _dim_positions(shape, idx, dim, name)
    if idx.ndim == 0 or len(src_shape) == 0:
        src = np.zeros(idx.shape, np.int64)
    else:
        src = np.ravel_multi_index(np.indices(idx.shape), src_shape) if idx.size else np.zeros(idx.shape, np.int64)
    return pos.reshape(-1), src.reshape(-1)


def scatter(input, dim, index, src=None, *, value=None, reduce=None):
    """A copy of input with src's elements (or a scalar value) written at input[c with c[dim] = index[c]]."""
    if reduce is not None:
        raise NotImplementedError("scatter: the reduce argument is not supported yet")
    if src is None:
        src = value
    d = input._ensure_array()
    data = np.array(d, copy=True)
    if isinstance(src, Tensor):
        if src._data.dtype != d.dtype:
            raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
        pos, srcpos = _scatter_positions("scatter", input, dim, index, src._data.shape)
        data.reshape(-1)[pos] = np.asarray(src._data).reshape(-1)[srcpos]
        return _write_record(op.SCATTER, (input, src), data, pos, srcpos)
    pos, srcpos = _scatter_positions("scatter", input, dim, index, np.shape(index))
    data.reshape(-1)[pos] = src
    return _write_record(op.SCATTER_VALUE, (input,), data, pos, srcpos, float(src))


def scatter_add(input, dim, index, src):
    """A copy of input with src's elements added at input[c with c[dim] = index[c]] (repeats accumulate)."""
    d = input._ensure_array()
    if not isinstance(src, Tensor) or src._data.dtype != d.dtype:
        raise RuntimeError("scatter(): Expected self.dtype to be equal to src.dtype")
    pos, srcpos = _scatter_positions("scatter_add", input, dim, index, src._data.shape)
    data = np.array(d, copy=True)
    np.add.at(data.reshape(-1), pos, np.asarray(src._data).reshape(-1)[srcpos])
    return _write_record(op.SCATTER_ADD, (input, src), data, pos, srcpos)


def scatter_(input, dim, index, src=None, *, value=None, reduce=None):
    return apply_inplace("scatter_", input, lambda s: scatter(s, dim, index, src, value=value, reduce=reduce))


def scatter_add_(input, dim, index, src):
    return apply_inplace("scatter_add_", input, lambda s: scatter_add(s, dim, index, src))


def index_put_(input, indices, values, accumulate=False):
    """input[indices] = values, or += with accumulate (repeated positions then add up)."""
    if not isinstance(indices, (tuple, list)):
        raise TypeError("index_put_(): argument 'indices' must be tuple of Tensors")
    indices = tuple(indices)
    if not accumulate:
        setitem(input, indices, values)
        return input
    nidx, _ = _normalize_index(indices)
    if not isinstance(values, Tensor):
        values = as_operand(values, "index_put_")
        values = values if isinstance(values, Tensor) else constant(np.asarray(values, input._data.dtype))

    def compute(src):
        d = np.array(src._data, copy=True)
        try:
            positions = np.arange(d.size).reshape(d.shape)[nidx]
            sources = np.broadcast_to(np.arange(values._data.size).reshape(values._data.shape), positions.shape)
        except IndexError as err:
            raise IndexError(str(err).replace("axis", "dimension")) from None
        except ValueError:
            raise RuntimeError(f"shape mismatch: value tensor of shape {list(values.shape)} cannot be broadcast to "
                               f"indexing result of shape {list(positions.shape)}") from None
        np.add.at(d.reshape(-1), positions.reshape(-1), np.asarray(values._data).reshape(-1)[sources.reshape(-1)])
        return _write_record(op.INDEX_PUT_ACC, (src, values), d, positions, sources)

    return apply_inplace("index_put_", input, compute)


def index_put(input, indices, values, accumulate=False):
    """Out-of-place index_put_ (on a copy of input)."""
    from .elementwise import clone
    return index_put_(clone(input), indices, values, accumulate)


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


attach(add_, sub_, mul_, div_, fill_, zero_, copy_, scatter, scatter_, scatter_add, scatter_add_, index_put_,
       index_put, __setitem__=setitem,
       __iadd__=_iop(add_), __isub__=_iop(sub_), __imul__=_iop(mul_), __itruediv__=_iop(div_))
