"""Views and indexing: reshape/view, transpose/t/permute, (un)squeeze, expand, basic and advanced indexing.

Every view records one STRIDED record: the output element i_0..i_k reads input element
offset + sum(i_j * stride_j) of the input's C-ordered values, so one backward kernel serves them all.
The output shares memory with the input, as a PyTorch view does (`_base` links it to the storage owner).
"""
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .._kernels import opcodes as op
from .._tape import _state
from .. import tensor as _tensor_module
from ..tensor import Tensor, _result, _wrap, needs_grad, record, recording_tape, source_gid
from ._common import attach, broadcast_shape, constant, wrap_dim, wrap_dims


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
        tape = recording_tape()
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
        tape = recording_tape()
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
    return reshape(input, shape[:s] + (int(math.prod(shape[s:e + 1])),) + shape[e + 1:])


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


def torch_index(a, idx):
    """a[idx] (idx normalized) with PyTorch's semantics: ints, slices, None and `...` are applied first as views,
    then the integer and boolean arrays index what is left (so an int never joins the advanced indices, as it
    does in numpy)."""
    if not any(isinstance(i, (np.ndarray, bool)) for i in idx):
        return a[idx]
    _check_masks(a.shape, idx)
    consumed = sum(i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else 1 for i in idx
                   if i is not None and i is not Ellipsis and not isinstance(i, bool))
    if consumed > a.ndim:
        raise IndexError(f"too many indices for tensor of dimension {a.ndim}")
    basic, advanced = [], []
    for i in idx:
        if i is Ellipsis:
            basic.append(i)
            advanced.extend([slice(None)] * (a.ndim - consumed))
        elif isinstance(i, bool):
            basic.append(None)
            advanced.append(np.zeros(int(i), np.int64))
        elif isinstance(i, np.ndarray):
            k = i.ndim if i.dtype == bool else 1
            basic.extend([slice(None)] * k)
            advanced.append(i)
        elif isinstance(i, (int, np.integer)):
            basic.append(i)
        else:
            basic.append(i)
            advanced.append(slice(None))
    try:
        return a[tuple(basic)][tuple(advanced)]
    except IndexError as err:
        raise _index_error(err, a.shape) from None


def _check_masks(shape, idx):
    """PyTorch's error for a boolean mask whose shape does not match the dims it indexes."""
    consumed = sum(i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else 1 for i in idx
                   if i is not None and i is not Ellipsis and not isinstance(i, bool))
    dim = 0
    for i in idx:
        if i is Ellipsis:
            dim += len(shape) - consumed
        elif isinstance(i, np.ndarray) and i.dtype == bool:
            for j, n in enumerate(i.shape):
                if dim + j < len(shape) and shape[dim + j] != n:
                    raise IndexError(f"The shape of the mask {list(i.shape)} at index {j} does not match the shape "
                                     f"of the indexed tensor {list(shape)} at index {dim + j}")
            dim += i.ndim
        elif i is not None and not isinstance(i, bool):
            dim += 1


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
            # like PyTorch: a lone slice always slices; inside a tuple, a slice from a literal 0 (or None) to the
            # end with step 1 is skipped
            if single or i.start not in (None, 0) or (start, stop, step) != (0, n, 1):
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
    data = torch_index(d, idx)
    if not (input._rg and _state.tape.grad_enabled):
        return constant(data)
    flat = torch_index(np.arange(d.size).reshape(d.shape), idx)
    tape = recording_tape()
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
    """The view of `length` elements along dim from `start` (which may be negative)."""
    dim = wrap_dim(dim, input._data.ndim, "narrow")
    n = input._data.shape[dim]
    start, length = int(start), int(length)
    if not -n <= start <= n:
        raise IndexError(f"start out of range (expected to be in range of [{-n}, {n}], but got {start})")
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start < 0:
        start += n
    if start + length > n:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({n}).")
    return _slice_view(op.SLICE, input, dim, start, length)


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


# -- more views: split, chunk, unbind, diagonal, movedim, unflatten --------------------------------------------------

def _slice_view(opcode, input, dim, start, length):
    shape = input._data.shape
    view = (slice(None),) * dim + (slice(start, start + length), Ellipsis)
    return _view_of(opcode, input, lambda a: a[view], _slice_layout(shape, dim, start, 1))


def split(tensor, split_size_or_sections, dim=0):
    """Views of consecutive pieces along dim: of one size (the last may be smaller) or of the listed sizes."""
    nd = tensor._data.ndim
    dim = wrap_dim(dim, nd, "split")
    n = tensor._data.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 0:
            raise RuntimeError(f"split expects split_size be non-negative, but got split_size={size}")
        if size == 0 and n != 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
        starts = range(0, n, size) if size else [0]
        return tuple(_slice_view(op.SPLIT, tensor, dim, s, min(size, n - s)) for s in starts)
    sizes = [int(s) for s in split_size_or_sections]
    if sum(sizes) != n or any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                           f"dimension {dim}), but got split_sizes={sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(_slice_view(op.SPLIT_WITH_SIZES, tensor, dim, start, s))
        start += s
    return tuple(out)


def chunk(input, chunks, dim=0):
    """About equal views along dim: pieces of ceil(size / chunks)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    dim = wrap_dim(dim, input._data.ndim, "chunk")
    n = input._data.shape[dim]
    return split(input, max(-(-n // chunks), 1) if n else 0, dim)


def unbind(input, dim=0):
    """The views input.select(dim, i) for every i."""
    dim = wrap_dim(dim, input._data.ndim, "unbind")
    shape = input._data.shape
    return tuple(_view_of(op.UNBIND, input, lambda a, i=i: a[(slice(None),) * dim + (i, Ellipsis)],
                          _select_layout(shape, dim, i)) for i in range(shape[dim]))


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The view of the diagonal (offset above the main one when positive) of the dim1-dim2 planes, as the last dim."""
    nd = input._data.ndim
    d1, d2 = wrap_dim(dim1, nd, "diagonal"), wrap_dim(dim2, nd, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return _view_of(op.DIAGONAL, input, lambda a: _diagonal_of(a, offset, d1, d2))


def _diagonal_of(a, offset, d1, d2):
    """A numpy view of a's diagonal (as torch lays it out: the diagonal is the last dim)."""
    cut = [slice(None)] * a.ndim
    cut[d1] = slice(max(-offset, 0), None)
    cut[d2] = slice(max(offset, 0), None)
    b = a[tuple(cut)]
    n = max(0, min(b.shape[d1], b.shape[d2]))
    rest = [k for k in range(a.ndim) if k not in (d1, d2)]
    shape = tuple(b.shape[k] for k in rest) + (n,)
    strides = tuple(b.strides[k] for k in rest) + (b.strides[d1] + b.strides[d2],)
    return as_strided(b, shape=shape, strides=strides, writeable=b.flags.writeable)


def movedim(input, source, destination):
    """Move dims from source to destination positions, the others keeping their order (a permute)."""
    nd = input._data.ndim
    src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (int, np.integer)) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(f"movedim: Invalid source or destination dims: source ({list(src)} dims) should contain "
                           f"the same number of dims as destination ({list(dst)} dims)")
    src, dst = wrap_dims(src, nd, "movedim"), wrap_dims(dst, nd, "movedim")
    perm = [-1] * nd
    for s, d in zip(src, dst):
        perm[d] = s
    rest = iter(k for k in range(nd) if k not in src)
    perm = [p if p >= 0 else next(rest) for p in perm]
    return permute(input, *perm)


def unflatten(input, dim, sizes):
    """Split one dim into several (one size may be -1)."""
    shape = input._data.shape
    dim = wrap_dim(dim, input._data.ndim, "unflatten")
    sizes = tuple(int(s) for s in sizes)
    known = int(math.prod([s for s in sizes if s != -1]))
    if sizes.count(-1) == 1 and known and shape[dim] % known == 0:
        sizes = tuple(shape[dim] // known if s == -1 else s for s in sizes)
    if int(math.prod(sizes)) != shape[dim] or -1 in sizes:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {dim} "
                           f"({shape[dim]}) in the input tensor")
    return view(input, shape[:dim] + sizes + shape[dim + 1:])


def contiguous(input, memory_format=None):
    """input itself when its storage is C-ordered, else a copy (CloneBackward0)."""
    if input._data.ndim == 0 or input._data.flags.c_contiguous:
        return input
    data = np.ascontiguousarray(input._data)   # clone() keeps the strides, as torch's does
    return record(op.CLONE, (input,), data) if needs_grad(input) else constant(data)


# -- gathers: each output element is one input element, found by applying the op to the element numbers --------

def _c_order(a):
    """a as a C-ordered array (np.ascontiguousarray would make a 0-d array 1-d)."""
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy()


def _gather_by(opcode, input, fn):
    """fn (a numpy operation on an array of input's shape) applied to the values and to their flat positions."""
    d = input._ensure_array()
    data = _c_order(fn(d))
    if not needs_grad(input):
        return constant(data)
    index = fn(np.arange(d.size, dtype=np.int64).reshape(d.shape))
    aux = recording_tape().put_ints((data.ndim, *data.shape, *index.reshape(-1)))
    return record(opcode, (input,), data, aux=aux)


def _dims_arg(dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        return tuple(dims[0])
    return tuple(dims)


def flip(input, *dims):
    """Reverse the order of elements along the given dims."""
    axes = wrap_dims(_dims_arg(dims), input._data.ndim, "flip")
    return _gather_by(op.FLIP, input, lambda a: np.flip(a, axes) if a.ndim else a)


def roll(input, shifts, dims=None):
    """Shift elements along dims cyclically (over the flattened tensor when dims is None)."""
    shifts = (shifts,) if isinstance(shifts, (int, np.integer)) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return _gather_by(op.ROLL, input, lambda a: np.roll(a, shifts[0]))
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    axes = tuple(wrap_dim(d, input._data.ndim, "roll") for d in dims)
    return _gather_by(op.ROLL, input, lambda a: np.roll(a, shifts, axes) if a.ndim else a)


def repeat(input, *sizes):
    """Tile the tensor sizes[k] times along dim k (leading sizes add new dims)."""
    sizes = _shape_arg(sizes)
    nd = input._data.ndim
    if len(sizes) < nd:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of dimensions of "
                           "tensor")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(sizes)}: {list(sizes)}")
    shape = (1,) * (len(sizes) - nd) + input._data.shape
    return _gather_by(op.REPEAT, input, lambda a: np.tile(a.reshape(shape), sizes))


def tile(input, dims):
    """repeat, with missing leading repeat counts taken as 1."""
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    return repeat(input, (1,) * (input._data.ndim - len(dims)) + dims)


def _index_array(name, index, allowed="iu"):
    """The numpy array of an integer index tensor (or list), with torch's dtype check."""
    if isinstance(index, Tensor):
        arr = np.asarray(index._data)
    else:
        arr = np.asarray(index)
    if arr.dtype.kind not in allowed or arr.dtype.itemsize < 4 and arr.dtype.kind in "iu":
        raise RuntimeError({"index_select": "index_select(): Expected dtype int32 or int64 for index",
                            "gather": "gather(): Expected dtype int32/int64 for index",
                            "scatter": "scatter(): Expected dtype int64 for index",
                            "scatter_add": "scatter(): Expected dtype int64 for index",
                            "take_along_dim": "torch.take_along_dim(): dtype of indices should be Long but got "
                                              f"{_dtype_name(arr)}"}[name])
    return arr.astype(np.int64)


def _dtype_name(arr):
    from .._dtypes import from_numpy_dtype
    return from_numpy_dtype(arr.dtype).name.capitalize()


def index_select(input, dim, index):
    """The slices of input along dim at the positions in a 1-D index."""
    idx = _index_array("index_select", index)
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    idx = idx.reshape(-1)
    nd = input._data.ndim
    dim = wrap_dim(dim, nd, "index_select")
    n = input._data.shape[dim] if nd else 1
    if idx.size and (idx.min() < -n or idx.max() >= n) or (idx < 0).any():
        raise IndexError("index out of range in self")
    return _gather_by(op.INDEX_SELECT, input, lambda a: np.take(a, idx, axis=dim) if a.ndim else
                      a.reshape(1)[idx].reshape(()))


def _check_index_dims(name, input_shape, index_shape, dim, src_shape=None):
    if len(index_shape) != len(input_shape) and not (len(index_shape) <= 1 and len(input_shape) <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as "
                           + ("self tensor" if src_shape is not None else "input tensor"))
    for k in range(len(index_shape)):
        if k != dim and index_shape[k] > (input_shape[k] if k < len(input_shape) else 1):
            raise RuntimeError(f"Size does not match at dimension {k} expected index {list(index_shape)} to be "
                               f"no larger than self {list(input_shape)} apart from dimension {dim}")
        if src_shape is not None and index_shape[k] > (src_shape[k] if k < len(src_shape) else 1):
            raise RuntimeError(f"Size does not match at dimension {k} expected index {list(index_shape)} to be "
                               f"no larger than src {list(src_shape)}")


def _dim_positions(shape, index, dim, name):
    """For every element of index (positions c), the flat position in `shape` of c with c[dim] = index[c]."""
    n = shape[dim] if len(shape) else 1
    bad = (index < -n) | (index >= n) if name == "take_along_dim" else (index < 0) | (index >= n)
    if bad.any():
        raise RuntimeError(f"index {int(index[bad].reshape(-1)[0])} is out of bounds for dimension {dim} with size "
                           f"{n}")
    index = index % max(n, 1)
    if index.ndim == 0 or len(shape) == 0:
        return index.reshape(index.shape)
    coords = list(np.indices(index.shape, sparse=True))
    coords[dim] = index
    return np.ravel_multi_index(tuple(np.broadcast_arrays(*coords)), shape)


def gather(input, dim, index, *, sparse_grad=False):
    """out[c] = input[c with c[dim] = index[c]]."""
    idx = _index_array("gather", index)
    nd = input._data.ndim
    dim = wrap_dim(dim, nd, "gather")
    _check_index_dims("gather", input._data.shape, idx.shape, dim)
    pos = _dim_positions(input._data.shape, idx, dim, "gather")
    return _gather_by(op.GATHER_DIM, input, lambda a: a.reshape(-1)[pos])


def take_along_dim(input, indices, dim=None):
    """Pick values along dim by indices (broadcast with input over the other dims); over the flattened input when
    dim is None."""
    idx = _index_array("take_along_dim", indices)
    if dim is None:
        return gather(reshape(input, -1), 0, tensor_of(idx.reshape(-1)))
    nd = input._data.ndim
    dim = wrap_dim(dim, nd, "take_along_dim")
    if idx.ndim != nd:
        raise RuntimeError(f"torch.take_along_dim(): input and indices should have the same number of dimensions, "
                           f"but got {nd} dimensions for input, and {idx.ndim} dimensions for indices")
    in_shape, ix_shape = list(input._data.shape), list(idx.shape)
    in_shape[dim] = ix_shape[dim] = 1
    try:
        common = np.broadcast_shapes(tuple(in_shape), tuple(ix_shape))
    except ValueError:
        broadcast_shape("take_along_dim", tuple(in_shape), tuple(ix_shape))
        raise
    x_shape = common[:dim] + (input._data.shape[dim],) + common[dim + 1:]
    i_shape = common[:dim] + (idx.shape[dim],) + common[dim + 1:]
    if x_shape != input._data.shape:
        input = expand(input, x_shape)
    pos = _dim_positions(x_shape, np.broadcast_to(idx, i_shape), dim, "take_along_dim")
    return _gather_by(op.GATHER_DIM, input, lambda a: a.reshape(-1)[pos] if a.flags.c_contiguous else
                      _c_order(a).reshape(-1)[pos])


def tensor_of(arr):
    return _wrap(np.asarray(arr))


# -- sparse maps: tril/triu, constant pad, diag, trace ------------------------------------------------------------

def _sparse_map(opcode, input, data, out_pos, in_pos, fill=0.0):
    """Record y (= fill, then y[out_pos[j]] += x[in_pos[j]]), whose values `data` are already computed."""
    data = _c_order(data)
    if not needs_grad(input):
        return constant(data)
    out_pos, in_pos = np.asarray(out_pos).reshape(-1), np.asarray(in_pos).reshape(-1)
    aux = recording_tape().put_ints((data.ndim, *data.shape, out_pos.size, *out_pos, *in_pos))
    return record(opcode, (input,), data, aux=aux, const=float(fill))


def _triangle(name, opcode, input, diagonal, lower):
    d = input._ensure_array()
    if d.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    r, c = d.shape[-2:]
    keep = np.tri(r, c, diagonal, dtype=bool) if lower else ~np.tri(r, c, diagonal - 1, dtype=bool)
    keep = np.broadcast_to(keep, d.shape)
    data = np.where(keep, d, d.dtype.type(0))
    pos = np.flatnonzero(keep)
    return _sparse_map(opcode, input, data, pos, pos)


def tril(input, diagonal=0):
    """The lower triangle (on and below the given diagonal) of the last two dims; zeros elsewhere."""
    return _triangle("tril", op.TRIL, input, diagonal, True)


def triu(input, diagonal=0):
    """The upper triangle (on and above the given diagonal) of the last two dims; zeros elsewhere."""
    return _triangle("triu", op.TRIU, input, diagonal, False)


def pad(input, pad, mode="constant", value=None):
    """Constant padding: pad = (left, right) pairs from the last dim backwards; negative amounts crop."""
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported yet (only 'constant')")
    pad = tuple(int(p) for p in pad)
    d = input._ensure_array()
    if len(pad) % 2:
        raise RuntimeError("Padding length must be divisible by 2")
    if len(pad) // 2 > d.ndim:
        raise RuntimeError(f"Padding length should be less than or equal to two times the input dimension but got "
                           f"padding length {len(pad)} and input of dimension {d.ndim}")
    lo, hi = [0] * d.ndim, [0] * d.ndim
    for k in range(len(pad) // 2):
        lo[d.ndim - 1 - k], hi[d.ndim - 1 - k] = pad[2 * k], pad[2 * k + 1]
    shape = tuple(n + a + b for n, a, b in zip(d.shape, lo, hi))
    if any(s < 0 for s in shape):
        raise RuntimeError(f"The input size {d.shape[shape.index(min(shape))]}, plus negative padding "
                           f"{lo[shape.index(min(shape))]} and {hi[shape.index(min(shape))]} resulted in a negative "
                           f"output size, which is invalid. Check dimension {shape.index(min(shape))} of your input.")
    fill = 0 if value is None else value
    src_cut, dst_cut = [], []
    for n, a, b in zip(d.shape, lo, hi):
        length = max(n - max(-a, 0) - max(-b, 0), 0)
        src_cut.append(slice(max(-a, 0), max(-a, 0) + length))
        dst_cut.append(slice(max(a, 0), max(a, 0) + length))
    src_cut, dst_cut = tuple(src_cut), tuple(dst_cut)
    data = np.full(shape, fill, dtype=d.dtype)
    data[dst_cut] = d[src_cut]
    out_pos = np.arange(data.size, dtype=np.int64).reshape(shape)[dst_cut]
    in_pos = np.arange(d.size, dtype=np.int64).reshape(d.shape)[src_cut]
    return _sparse_map(op.CONSTANT_PAD, input, data, out_pos, in_pos, fill)


def diag(input, diagonal=0):
    """A vector to a square matrix with it on the given diagonal, or a matrix's diagonal as a vector (a copy)."""
    d = input._ensure_array()
    if d.ndim == 1:
        n = d.shape[0] + abs(diagonal)
        data = np.diag(d, diagonal)
        rows = np.arange(d.shape[0]) + max(-diagonal, 0)
        return _sparse_map(op.DIAG_EMBED, input, data, rows * n + rows + diagonal, np.arange(d.shape[0]))
    if d.ndim != 2:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {d.ndim}D")
    data = _c_order(_diagonal_of(d, diagonal, 0, 1))
    if not needs_grad(input):
        return constant(data)
    offset, strides = _strided_layout(d.shape, lambda a: _diagonal_of(a, diagonal, 0, 1))
    aux = recording_tape().put_ints((data.ndim, *data.shape, offset, *strides))
    return record(op.DIAG_COPY, (input,), data, aux=aux)


def trace(input):
    """The sum of a matrix's main diagonal."""
    d = input._ensure_array()
    if d.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {d.ndim}")
    k = min(d.shape)
    pos = np.arange(k) * d.shape[1] + np.arange(k)
    out_dtype = np.int64 if d.dtype.kind in "biu" else d.dtype
    data = np.asarray(d.reshape(-1)[pos].sum(dtype=out_dtype), dtype=out_dtype)
    return _sparse_map(op.TRACE, input, data, np.zeros(k, np.int64), pos)


# -- many inputs: cat, stack -----------------------------------------------------------------------------------------

def _same_dtype(name, tensors):
    from ._common import result_dtype
    from .elementwise import to
    if not tensors:
        raise ValueError(f"torch.{name}(): expected a non-empty list of Tensors")
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument 'tensors' must be tuple of Tensors, not {type(t).__name__}")
    dtype = result_dtype(*tensors) if len({t._data.dtype for t in tensors}) > 1 else None
    if dtype is None:
        return tensors
    return [t if t._data.dtype == dtype.np else to(t, dtype=dtype) for t in tensors]


def _record_many(opcode, tensors, data, dim):
    """One record for an op of all `tensors`: a, b and the rest as extras, with dim last in the params."""
    if not needs_grad(*tensors):
        return constant(data)
    tape = recording_tape()
    gids = [source_gid(t, tape) for t in tensors]
    ia, ib, extra = gids[0], gids[1] if len(gids) > 1 else -1, gids[2:]
    aux = tape.put_ints((data.ndim, *data.shape, len(extra), *extra, dim))
    gid = tape.push(opcode, ia, ib, data, aux)
    return _result(data, gid, tape.seg)


def cat(tensors, dim=0):
    """Join tensors along an existing dim (1-D empty tensors are skipped, as in torch)."""
    tensors = _same_dtype("cat", list(tensors))
    parts = [t for t in tensors if t._data.shape != (0,)] or tensors[:1]
    ref = parts[0]._data
    if ref.ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    dim = wrap_dim(dim, ref.ndim, "cat")
    for k, t in enumerate(tensors):
        s = t._data.shape
        if t._data.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {k}) cannot be concatenated")
        if s == (0,) and ref.shape != (0,):
            continue
        if len(s) != ref.ndim:
            raise RuntimeError(f"Tensors must have same number of dimensions: got {ref.ndim} and {len(s)}")
        for j in range(ref.ndim):
            if j != dim and s[j] != ref.shape[j]:
                raise RuntimeError(f"Sizes of tensors must match except in dimension {dim}. Expected size "
                                   f"{ref.shape[j]} but got size {s[j]} for tensor number {k} in the list.")
    data = np.concatenate([t._ensure_array() for t in parts], axis=dim)
    return _record_many(op.CAT, tensors, data, dim)   # skipped empty tensors still get their (empty) gradient


def stack(tensors, dim=0):
    """Join equally shaped tensors along a new dim."""
    tensors = _same_dtype("stack", list(tensors))
    ref = tensors[0]._data.shape
    dim = wrap_dim(dim, len(ref) + 1, "stack")
    for k, t in enumerate(tensors):
        if t._data.shape != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(ref)} at entry 0 and "
                               f"{list(t._data.shape)} at entry {k}")
    data = np.stack([t._ensure_array() for t in tensors], axis=dim)
    return _record_many(op.STACK, tensors, data, dim)


def hstack(tensors):
    """cat along dim 1 (dim 0 for 1-D tensors)."""
    tensors = [t if t.ndim else reshape(t, 1) for t in tensors]
    return cat(tensors, 0 if tensors and tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """cat along dim 0 of the tensors viewed as at least 2-D."""
    return cat([t if t.ndim >= 2 else reshape(t, 1, -1) for t in tensors], 0)


def _swapaxes(input, axis0, axis1):
    return transpose(input, axis0, axis1)


swapaxes = swapdims = _swapaxes
concat = concatenate = cat
moveaxis = movedim


attach(split, chunk, unbind, diagonal, movedim, moveaxis, unflatten, contiguous, flip, roll, repeat, tile,
       index_select, gather, take_along_dim, tril, triu, diag, trace)
