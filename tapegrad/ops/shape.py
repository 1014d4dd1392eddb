"""Views and indexing: reshape/view, transpose/t/permute, (un)squeeze, expand, basic and advanced indexing.

Every view records one STRIDED record: the output element i_0..i_k reads input element
offset + sum(i_j * stride_j) of the input's C-ordered values, so one backward kernel serves them all.
The output shares memory with the input, as a PyTorch view does (`_base` links it to the storage owner).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._kernels import opcodes as op
from .._tape import _state
from .. import tensor as _tensor_module
from ..tensor import Tensor, _wrap, record
from ._common import attach, constant, wrap_dim, wrap_dims


def c_strides(shape):
    strides = [0] * len(shape)
    s = 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = s
        s *= shape[k]
    return strides


def _strided_layout(shape, view_fn):
    """(offset, strides) in elements of view_fn applied to a C-ordered array of `shape`, found without data."""
    probe = as_strided(np.zeros(1, np.int8), shape=shape, strides=c_strides(shape), writeable=False)
    v = view_fn(probe)
    offset = v.__array_interface__["data"][0] - probe.__array_interface__["data"][0]
    return offset, list(v.strides)


def _make_view(opcode, input, data, offset, strides):
    """Wrap `data` (a numpy view of input's data) as a view tensor, recording it when grad is on."""
    if input._rg and _state.tape.grad_enabled:
        tape = _state.tape
        aux = tape.put_ints((data.ndim, *data.shape, offset, *strides))
        out = record(opcode, (input,), data, aux=aux)
        base = (input._base if input._base is not None else input)
        base._meta_dict().setdefault("snapshots", []).append(out._id)
    else:
        out = _wrap(data)
        base = (input._base if input._base is not None else input)
    out._base = base
    return out


def _view_of(opcode, input, view_fn, layout=None):
    data = view_fn(input._ensure_array())
    if layout is None:
        layout = _strided_layout(input._data.shape, view_fn)
    return _make_view(opcode, input, data, *layout)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _infer_shape(name, input, shape):
    n = input._data.size
    if shape.count(-1) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if -1 in shape:
        if known == 0 or n % known:
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
        shape = tuple(n // known if s == -1 else s for s in shape)
    elif known != n:
        raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
    return shape


def reshape(input, *shape):
    """The same values in a new shape (a view when the layout allows, else a copy)."""
    shape = _infer_shape("reshape", input, _shape_arg(shape))
    d = input._ensure_array()
    data = d.reshape(shape)
    layout = (0, c_strides(shape))
    if np.may_share_memory(data, d) or not data.size:
        return _make_view(op.VIEW, input, data, *layout)
    if input._rg and _state.tape.grad_enabled:
        from .elementwise import clone
        return unsafe_view(clone(input), shape)   # PyTorch copies, then views the copy
    return constant(data)


def unsafe_view(input, shape):
    """A reshape PyTorch records as _unsafe_view (after a copy, or folding matmul batch dims)."""
    data = input._ensure_array().reshape(shape)
    if input._rg and _state.tape.grad_enabled:
        tape = _state.tape
        return record(op.UNSAFE_VIEW, (input,), data, aux=tape.put_ints((data.ndim, *shape, 0, *c_strides(shape))))
    return constant(data)


def view(input, *shape):
    """A view with a new shape; like PyTorch, refuses layouts that would need a copy."""
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
        from .elementwise import to
        return to(input, dtype=shape[0])
    shape = _infer_shape("view", input, _shape_arg(shape))
    d = input._ensure_array()
    data = d.view()
    try:
        data.shape = shape
    except AttributeError:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one dimension "
                           "spans across two contiguous subspaces). Use .reshape(...) instead.") from None
    return _make_view(op.VIEW, input, data, 0, c_strides(shape))


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, 1)
    s, e = wrap_dim(start_dim, nd, "flatten"), wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input    # nothing to merge: PyTorch returns the tensor itself
    shape = input._data.shape
    return reshape(input, shape[:s] + (int(np.prod(shape[s:e + 1])),) + shape[e + 1:])


def transpose(input, dim0, dim1):
    """Swap two dims (a view)."""
    nd = input._data.ndim
    d0, d1 = wrap_dim(dim0, nd, "transpose"), wrap_dim(dim1, nd, "transpose")
    perm = list(range(nd))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    strides = c_strides(input._data.shape)
    return _view_of(op.TRANSPOSE, input, lambda a: a.transpose(perm), (0, [strides[p] for p in perm]))


def t(input):
    """Transpose a tensor of at most 2 dims."""
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D")
    if nd < 2:
        return _view_of(op.T, input, lambda a: a, (0, c_strides(input._data.shape)))
    s = c_strides(input._data.shape)
    return _view_of(op.T, input, lambda a: a.T, (0, [s[1], s[0]]))


def permute(input, *dims):
    nd = input._data.ndim
    dims = wrap_dims(_shape_arg(dims), nd, "permute")
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
                           f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal to "
                           f"len(dims) = {len(dims)}")
    s = c_strides(input._data.shape)
    return _view_of(op.PERMUTE, input, lambda a: a.transpose(dims), (0, [s[p] for p in dims]))


def _T(input):
    return permute(input, *reversed(range(input._data.ndim)))


def _mT(input):
    return transpose(input, -2, -1)


def unsqueeze(input, dim):
    nd = input._data.ndim + 1
    dim = wrap_dim(dim, nd, "unsqueeze")
    shape = input._data.shape[:dim] + (1,) + input._data.shape[dim:]
    return _view_of(op.UNSQUEEZE, input, lambda a: a.reshape(shape), (0, c_strides(shape)))


def squeeze(input, dim=None, *, _opcode=None):
    """Drop size-1 dims (all, one, or a tuple of them)."""
    shape = input._data.shape
    if dim is None:
        dims = tuple(k for k, s in enumerate(shape) if s == 1)
        opcode = op.SQUEEZE
    else:
        dims = tuple(k for k in wrap_dims(dim, len(shape), "squeeze") if len(shape) and shape[k] == 1)
        opcode = op.SQUEEZE_DIM if isinstance(dim, (int, np.integer)) else op.SQUEEZE_DIMS
    new = tuple(s for k, s in enumerate(shape) if k not in dims)
    return _view_of(_opcode or opcode, input, lambda a: a.reshape(new), (0, c_strides(new)))


def expand(input, *sizes):
    """Broadcast to a larger shape without copying (-1 keeps a size)."""
    sizes = _shape_arg(sizes)
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand({input.dtype!r}{{{list(shape)}}}, size=[{', '.join(map(str, sizes))}]): the "
                           f"number of sizes provided ({len(sizes)}) must be greater or equal to the number of "
                           f"dimensions in the tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    target = []
    for k, s in enumerate(sizes):
        own = shape[k - lead] if k >= lead else 1
        if s == -1:
            if k < lead:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = own
        if own != 1 and own != s:
            raise RuntimeError(f"The expanded size of the tensor ({s}) must match the existing size ({own}) at "
                               f"non-singleton dimension {k}.  Target sizes: [{', '.join(map(str, sizes))}].  "
                               f"Tensor sizes: [{', '.join(map(str, shape))}]")
        target.append(s)
    target = tuple(target)
    return _view_of(op.EXPAND, input, lambda a: np.broadcast_to(a, target))


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, size):
    return expand(input, size)


# -- indexing ----------------------------------------------------------------------------------------------------

def _normalize_index(idx):
    """Convert tensors in an index to numpy; report whether it needs advanced (copying) indexing."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    advanced = False
    for i in idx:
        if isinstance(i, Tensor):
            if i._data.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            if i._data.ndim == 0 and i._data.dtype.kind in "iu":
                i = int(i._data)
            else:
                i = np.asarray(i._data)
                advanced = True
        elif isinstance(i, (list, np.ndarray)):
            i = np.asarray(i)
            if i.dtype.kind not in "iub":
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
            advanced = True
        elif isinstance(i, bool):
            advanced = True
        elif not (i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice))):
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
                             f"valid indices (got {type(i).__name__})")
        out.append(i)
    return tuple(out), advanced


def _index_error(err, shape):
    msg = str(err).replace("axis", "dimension")
    return IndexError(msg)


def _select_layout(shape, dim, i):
    strides = c_strides(shape)
    return i * strides[dim], strides[:dim] + strides[dim + 1:]


def _slice_layout(shape, dim, start, step):
    strides = c_strides(shape)
    out = list(strides)
    out[dim] = strides[dim] * step
    return start * strides[dim], out


def getitem(input, idx):
    """x[idx] with PyTorch's indexing: basic indices give views (one per index, as PyTorch records them),
    advanced ones (integer or boolean tensors and lists) copy."""
    single = not isinstance(idx, tuple)
    idx, advanced = _normalize_index(idx)
    if advanced:
        return _advanced_getitem(input, idx)
    d = input._ensure_array()
    consumed = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if consumed > d.ndim:
        raise IndexError(f"too many indices for tensor of dimension {d.ndim}")
    out = input
    dim = 0
    for i in idx:
        data = out._data
        if i is Ellipsis:
            dim += d.ndim - consumed
        elif i is None:
            out = unsqueeze(out, dim)
            dim += 1
        elif isinstance(i, slice):
            n = data.shape[dim]
            if i.step is not None and i.step <= 0:
                raise ValueError("step must be greater than zero")
            start, stop, step = i.indices(n)
            # like PyTorch: a lone slice always slices; inside a tuple, a slice of everything is skipped
            if single or (start, stop, step) != (0, n, 1):
                view = (slice(None),) * dim + (slice(start, stop, step), Ellipsis)
                out = _view_of(op.SLICE, out, lambda a, view=view: a[view],
                               _slice_layout(data.shape, dim, start, step))
            dim += 1
        else:
            n = data.shape[dim]
            k = int(i)
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {n}")
            k %= n
            view = (slice(None),) * dim + (k, Ellipsis)
            out = _view_of(op.SELECT, out, lambda a, view=view: a[view], _select_layout(data.shape, dim, k))
    if out is input:
        out = _view_of(op.ALIAS, input, lambda a: a[...], (0, c_strides(d.shape)))
    return out


def _advanced_getitem(input, idx):
    d = input._ensure_array()
    try:
        data = d[idx]
    except IndexError as err:
        raise _index_error(err, d.shape) from None
    if not (input._rg and _state.tape.grad_enabled):
        return constant(data)
    flat = np.arange(d.size).reshape(d.shape)[idx]
    tape = _state.tape
    aux = tape.put_ints((data.ndim, *data.shape, *flat.reshape(-1)))
    return record(op.INDEX, (input,), data, aux=aux)


def select(input, dim, index):
    dim = wrap_dim(dim, input._data.ndim, "select")
    n = input._data.shape[dim]
    if not -n <= index < n:
        raise IndexError(f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
                         f"dimension {dim}")
    idx = (slice(None),) * dim + (int(index), Ellipsis)
    return _view_of(op.SELECT, input, lambda a: a[idx])


def narrow(input, dim, start, length):
    dim = wrap_dim(dim, input._data.ndim, "narrow")
    idx = (slice(None),) * dim + (slice(start, start + length),)
    return _view_of(op.SLICE, input, lambda a: a[idx])


attach(reshape, view, view_as, reshape_as, flatten, transpose, t, permute, unsqueeze, squeeze, expand, expand_as,
       broadcast_to, select, narrow, __getitem__=getitem, swapaxes=transpose, swapdims=transpose)
Tensor.T = property(_T)
Tensor.mT = property(_mT)


# -- writes through views and in place ------------------------------------------------------------------------------

def _element_offsets(arr, origin):
    """Memory offset (in elements) of every element of `arr` from address `origin`."""
    item = arr.itemsize
    out = np.full(arr.shape, (arr.__array_interface__["data"][0] - origin) // item, dtype=np.int64)
    for k, (n, s) in enumerate(zip(arr.shape, arr.strides)):
        shape = [1] * arr.ndim
        shape[k] = n
        out += (np.arange(n, dtype=np.int64) * (s // item)).reshape(shape)
    return out


def view_index(view_tensor):
    """Flat (C-order) indices into its base of each element of a view."""
    meta = view_tensor._meta_dict()
    idx = meta.get("view_index")
    if idx is None:
        base = view_tensor._base._ensure_array()
        origin = base.__array_interface__["data"][0]
        base_off = _element_offsets(base, origin).reshape(-1)
        lookup = np.full(int(base_off.max()) + 1 if base_off.size else 1, -1, dtype=np.int64)
        lookup[base_off] = np.arange(base.size)
        idx = lookup[_element_offsets(view_tensor._data, origin)] if view_tensor._data.size else \
            np.zeros(view_tensor._data.shape, np.int64)
        meta["view_index"] = idx
    return idx


def _rederive_view(t, tape):
    """A view whose storage changed in place: read it afresh from its base's current record."""
    idx = view_index(t).reshape(-1)
    base = t._base
    data = np.array(t._data, copy=True)
    aux = tape.put_ints((data.ndim, *data.shape, *idx))
    fresh = record(op.INDEX, (base,), data, aux=aux)
    t._id, t._seg = fresh._id, fresh._seg
    return t._id


_tensor_module.rederive_view = _rederive_view
