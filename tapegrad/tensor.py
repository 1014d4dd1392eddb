"""The Tensor handle: data, a record id on this thread's tape, and PyTorch's autograd surface.

The handle knows no operation by name; ops modules attach methods to it. `record` is the one way an
operation appends itself to the tape.
"""
import numpy as np

from . import _dtypes
from ._dtypes import from_numpy_dtype
from ._kernels import opcodes as op
from . import _tape
from ._tape import _state, current_tape


class Size(tuple):
    """A tensor's shape: a tuple that prints like torch.Size."""

    __slots__ = ()

    def __repr__(self):
        return f"tapegrad.Size([{', '.join(str(d) for d in self)}])"

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


class Tensor:
    """A thin handle: the values (an ndarray, or a numpy scalar for fast 0-d arithmetic) and its tape record."""

    __slots__ = ("_data", "_id", "_seg", "_rg", "_grad", "_base", "_version_count", "_meta", "__weakref__")
    __array_priority__ = 1000   # numpy defers to our reflected operators

    def __init__(self, *args, **kwargs):
        raise TypeError("create tensors with tapegrad.tensor(), tapegrad.zeros(), tapegrad.from_numpy(), ...")

    # -- plain properties -------------------------------------------------------------------------------

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    def nelement(self):
        return self._data.size

    @property
    def dtype(self):
        return from_numpy_dtype(self._data.dtype)

    def element_size(self):
        return self._data.itemsize

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_complex(self):
        return self._data.dtype.kind == "c"

    @property
    def device(self):
        return "cpu"

    @property
    def is_cuda(self):
        return False

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self):
        return id(self)

    # -- autograd state -----------------------------------------------------------------------------------

    @property
    def requires_grad(self):
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag):
        if self._seg is not None and not flag:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you want to use a "
                               "computed variable in a subgraph that doesn't require differentiation use "
                               "var_no_grad = var.detach().")
        if flag and self._data.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        if self._seg is None and bool(flag) != self._rg:
            self._rg = bool(flag)
            self._id = -1

    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        return self._seg is None

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of type {type(value).__name__}")
            if value.shape != self.shape:
                raise RuntimeError(f"assigned grad has data of a different size: {tuple(value.shape)} vs {tuple(self.shape)}")
            if value.dtype is not self.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: {value.dtype} vs {self.dtype}")
        self._grad = value

    @property
    def grad_fn(self):
        if self._seg is None:
            return None
        from .autograd.graph import node_for, renamed
        meta = self._meta
        if meta and "grad_fn_name" in meta:     # a complex operation, composed of real ones (ops/complex.py)
            carrier = meta.get("pair", self)
            return renamed(node_for(carrier._seg, carrier._id), meta["grad_fn_name"])
        return node_for(self._seg, self._id)

    @property
    def _version(self):
        return (self._base if self._base is not None else self)._version_count

    @property
    def retains_grad(self):
        return bool(self._meta and self._meta.get("retains_grad"))

    def retain_grad(self):
        """Keep .grad of this non-leaf tensor after backward, as PyTorch does."""
        if not self._rg:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._seg is None or self.retains_grad:
            return
        meta = self._meta_dict()
        meta["retains_grad"] = True
        carrier = meta.get("pair", self)       # a complex result's gradient is read from its real pair
        self._seg.retained.append((carrier._id, self))

    def _meta_dict(self):
        if self._meta is None:
            self._meta = {}
        return self._meta

    def detach(self):
        """A new leaf sharing this tensor's storage, outside the graph."""
        tape = _state.tape
        if tape.tracing is not None and (self._seg is not None or self._rg):
            return tape.tracing.detached(self)
        out = _wrap(self._data if self._data.ndim == 0 and isinstance(self._data, np.generic) else self._data.view())
        out._base = self._base if self._base is not None else self
        return out

    def detach_(self):
        if self._base is not None and self._base._rg:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        if self._seg is not None:
            # its data may be its record's value on the tape (Tape.push_into): writing it in place later must
            # still make that record stale
            self._meta_dict().setdefault("snapshots", []).append(current_gid(self))
        self._seg = None
        self._rg = False
        self._id = -1
        return self

    @property
    def data(self):
        return self.detach()

    @data.setter
    def data(self, value):
        self._data = value._data
        self._id = -1

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into the .grad of every leaf that self depends on."""
        from .autograd import engine
        engine.backward((self,), None if gradient is None else (gradient,), retain_graph, create_graph, inputs)

    # -- conversion out ----------------------------------------------------------------------------------

    def numpy(self, *, force=False):
        if self._rg and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if _state.tape.tracing is not None:
            _state.tape.tracing.observe(self)
        self._ensure_array()
        return self._data

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        if _state.tape.tracing is not None:
            _state.tape.tracing.observe(self)   # the value leaves the tape: replay must check it is unchanged
        return self._data.reshape(()).item() if self._data.ndim else self._data.item()

    def tolist(self):
        if _state.tape.tracing is not None:
            _state.tape.tracing.observe(self)
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __complex__(self):
        return complex(self.item())

    def __array__(self, dtype=None, copy=None):
        if _state.tape.tracing is not None:
            _state.tape.tracing.observe(self)
        arr = np.asarray(self._data)
        return arr if dtype is None else arr.astype(dtype)

    def __repr__(self):
        from ._format import format_tensor, shows_dtype
        data = np.asarray(self._data)
        suffixes = []
        if shows_dtype(data.dtype, data.size == 0, _dtypes.get_default_dtype().np):
            suffixes.append(f"dtype={self.dtype!r}")
        if self._seg is not None:
            suffixes.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._rg:
            suffixes.append("requires_grad=True")
        if self._meta and self._meta.get("parameter"):   # nn.Parameter (a marked plain Tensor)
            return "Parameter containing:\n" + format_tensor(data, suffixes)
        return format_tensor(data, suffixes)

    __str__ = __repr__

    def _ensure_array(self):
        """Give a 0-d tensor held as a numpy scalar a real (writable, viewable) array."""
        if not isinstance(self._data, np.ndarray):
            self._data = np.array(self._data)
        return self._data


def _wrap_dim(dim, ndim, name=None):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n


def _handle(data, gid, seg, requires_grad):
    t = object.__new__(Tensor)
    t._data = data
    t._id = gid
    t._seg = seg
    t._rg = requires_grad
    t._grad = None
    t._base = None
    t._version_count = 0
    t._meta = None
    return t


def leaf_handle_source(name, data):
    """Python statements making `name` the handle _wrap(data) returns, for generated code that creates handles
    without a call (tg.compile's lean call: a frame is a third of a handle's cost). Sets every slot _handle sets;
    the code runs with `Tensor` and `_new_object` (object.__new__) in its namespace."""
    return (f"{name} = _new_object(Tensor); {name}._data = {data}; {name}._id = -1; {name}._seg = None; "
            f"{name}._rg = False; {name}._grad = None; {name}._base = None; {name}._version_count = 0; "
            f"{name}._meta = None")


def _wrap(data, requires_grad=False):
    """A leaf handle for `data` (an ndarray or numpy scalar)."""
    return _handle(data, -1, None, requires_grad)


def _result(data, gid, seg):
    """The handle of an operation's output recorded as `gid`."""
    return _handle(data, gid, seg, True)


def source_gid(t, tape):
    """The gid under which tensor t enters a record on `tape`, recording its LEAF/CONST record if needed."""
    g = t._id
    if t._seg is not None:
        if tape.base <= g < tape.limit:
            if t._base is not None:
                tape.flush()
                if tape.flags[g - tape.base] & op.FLAG_STALE:
                    return rederive_view(t, tape)   # its storage was written through another alias
            return g
        return _foreign_or_freed(t, tape)
    if tape.seg.start <= g < tape.limit:
        return g
    data = t._data
    if data.dtype.kind == "c":
        _refuse_complex()
    if t._rg:
        g = tape.push(op.LEAF, -1, -1, data, tape.put_shape(data.shape))
        tape.seg.leaves.append((g, t))
    else:
        g = tape.push(op.CONST, -1, -1, data, tape.put_shape(data.shape))
        if tape.tracing is not None:
            tape.tracing.sources.append((g, t))
    t._id = g
    if t._base is not None:
        t._base._meta_dict().setdefault("snapshots", []).append(g)
    return g


rederive_view = None   # set by ops.shape: re-reads a view from its base's current record


def current_gid(t):
    """t's gid, brought up to date if a compaction moved its record (handles update lazily)."""
    if t._seg is not None and t._seg.moves:
        t._id = t._seg.resolve(t._id)
    return t._id


def _refuse_complex():
    from .ops.complex import SUPPORTED
    raise NotImplementedError(f"autograd through complex tensors is supported only for {SUPPORTED}; this "
                              "operation got a complex tensor")


def _foreign_or_freed(t, tape):
    if t._meta and "pair" in t._meta:
        _refuse_complex()       # a complex result (gid -2): only ops/complex.py reads it, through its pair
    if tape.tracing is not None and t._seg.tape is not tape:
        return tape.tracing.capture(t)     # a result computed outside the compiled function
    g = current_gid(t)
    if tape.owns(g) and t._seg.tape is tape:
        return source_gid(t, tape)
    if g >= tape.limit or g < tape.limit - (1 << 40):
        raise RuntimeError("this tensor's graph was built on another thread's tape; tapegrad tapes are per thread")
    # its records were released after an earlier backward: going through it again is an error
    data = t._data
    return tape.push(op.FREED, -1, -1, data, tape.put_shape(data.shape))


def recording_tape():
    """This thread's tape, for an operation about to record: compacted first when it is due (or a reset tried
    again after a backward, see Tape.collect), before the operation's inputs take their gids. record and
    record_elementwise do the same check inline (they are the hot paths)."""
    tape = _state.tape
    if tape.n >= tape.compact_at or tape.nv >= tape.compact_vals_at:
        tape.compact_while_recording()
    return tape


def record(opcode, inputs, data, aux=None, const=0.0):
    """Append `opcode` applied to `inputs` (1 or 2 tensors, None for a Python scalar) producing `data`.

    Returns the output handle. The caller has already checked that grad mode is on and an input requires grad.
    """
    tape = _state.tape
    # compacting moves the int side table, so only when the caller has not placed an entry there yet
    if aux is None and (tape.n >= tape.compact_at or tape.nv >= tape.compact_vals_at):
        tape.compact_while_recording()
    x = inputs[0]
    ia = source_gid(x, tape)
    ib = -1
    if len(inputs) > 1 and inputs[1] is not None:
        ib = source_gid(inputs[1], tape)
    if aux is None:
        # an output shaped like a non-0-d input shares its shape entry (such an input is never staged)
        aux = 0 if data.ndim == 0 else (
            int(tape.aux[ia - tape.base]) if data.shape == x._data.shape else tape.put_shape(data.shape))
    gid = tape.push(opcode, ia, ib, data, aux, const)
    return _result(data, gid, tape.seg)


def record_elementwise(tape, opcode, x, y, data, const=0.0):
    """The hot path of record() for elementwise ops (y may be None): no tuple of inputs, 0-d records staged inline.

    Scalar code spends most of its time here, so the common cases of source_gid and Tape.push are inlined.
    """
    if tape.n >= tape.compact_at or tape.nv >= tape.compact_vals_at:
        tape.compact_while_recording()
    ia = x._id
    if x._seg is None or x._base is not None or not tape.base <= ia < tape.limit:
        ia = source_gid(x, tape)
    ib = -1
    if y is not None:
        ib = y._id
        if y._seg is None or y._base is not None or not tape.base <= ib < tape.limit:
            ib = source_gid(y, tape)
    if data.ndim == 0:
        p = tape.n
        vo = tape.nv
        tape.staged_ints += (p, opcode, ia, ib, vo)
        tape.staged_floats += (const, data)
        tape.n = p + 1
        tape.nv = vo + 1
        gid = tape.base + p
        if _tape.anomaly_mode:
            tape.note_forward_call(gid)
    else:
        aux = int(tape.aux[ia - tape.base]) if data.shape == x._data.shape else tape.put_shape(data.shape)
        gid = tape.push(opcode, ia, ib, data, aux, const)
    return _handle(data, gid, tape.seg, True)


def record_ufunc(tape, opcode, ufunc, x, y, shape, size):
    """record_elementwise for a float64 ufunc of two tensors whose result (of `shape`, `size` values) is not 0-d:
    the ufunc writes straight into the record's place on the tape (Tape.push_into), the copy push would make of
    a large result costing as much as computing it."""
    if tape.n >= tape.compact_at or tape.nv >= tape.compact_vals_at:
        tape.compact_while_recording()
    ia = x._id
    if x._seg is None or x._base is not None or not tape.base <= ia < tape.limit:
        ia = source_gid(x, tape)
    ib = y._id
    if y._seg is None or y._base is not None or not tape.base <= ib < tape.limit:
        ib = source_gid(y, tape)
    xd = x._data
    aux = int(tape.aux[ia - tape.base]) if shape == xd.shape else tape.put_shape(shape)
    gid, out = tape.push_into(opcode, ia, ib, shape, size, aux)
    try:
        ufunc(xd, y._data, out=out)
    except BaseException:    # np.seterr(all="raise"), say: take the record back, as if never computed
        tape.n -= 1
        tape.nv -= size
        raise
    return _handle(out, gid, tape.seg, True)


def needs_grad(*tensors):
    """True when grad mode is on and some tensor argument requires grad."""
    if not _state.tape.grad_enabled:
        return False
    for t in tensors:
        if t.__class__ is Tensor and t._rg:
            return True
    return False
