"""grad_fn objects: views of tape records created on access, with PyTorch's names and next_functions."""
from .._kernels import opcodes as op

# The const of a COPY_SLICES record that writes a view's new value back into its base (ops/inplace.py _write_back).
# Its b input is the record of the in-place operation on the view, and PyTorch shows the two as one CopySlices node.
WRITE_BACK = 1.0
# The const of a CLONE record an in-place operation makes to keep a value its backward reads (ops/inplace.py
# apply_inplace); PyTorch saves that value without a node of its own, so grad_fn views look through it.
SNAPSHOT = 1.0


def _segment_of(tape, gid):
    for seg in reversed(tape.segments):
        if seg.start <= gid:
            return seg
    return None


def _record(seg, gid):
    """(opcode, a, b) of record `gid`, from the live tape or from what its segment kept when released."""
    tape = seg.tape
    tape.flush()
    if tape.owns(gid):
        p = gid - tape.base
        return int(tape.ops[p]), int(tape.a[p]), int(tape.b[p])
    if seg.dropped is not None:
        ops, a, b = seg.dropped
        p = gid - seg.start
        if 0 <= p < len(ops):
            return int(ops[p]), int(a[p]), int(b[p])
    return op.FREED, -1, -1


class Node:
    """The backward function of one recorded operation."""

    __slots__ = ("_seg", "_gid")

    def __init__(self, seg, gid):
        self._seg = seg
        self._gid = gid

    def _pyfunc(self):
        """The Python Function node behind this record, if it is one (its outputs all show the node)."""
        opcode, a, _ = _record(self._seg, self._gid)
        gid = self._gid if opcode == op.PYFUNC_OP else a if opcode == op.PYFUNC_OUTPUT else None
        return None if gid is None else self._seg.tape.pyfuncs.get(gid)

    def name(self):
        opcode = _record(self._seg, self._gid)[0]
        if opcode in (op.PYFUNC_OP, op.PYFUNC_OUTPUT):
            node = self._pyfunc()
            return node.name if node is not None else "FreedBackward"
        if opcode == op.CUSTOM_OP:
            from .custom_op import custom_op_name
            return custom_op_name(self._params()[-1])
        return op.NAMES.get(opcode) or "FreedBackward"

    def _params(self):
        tape = self._seg.tape
        aux = int(tape.aux[self._gid - tape.base])
        p = aux + 1 + int(tape.ints[aux])
        n_extra = int(tape.ints[p])
        return [int(v) for v in tape.ints[p + 1:p + 2 + n_extra]]

    @property
    def next_functions(self):
        opcode, a, b = _record(self._seg, self._gid)
        tape = self._seg.tape
        if opcode == op.COPY_SLICES and b >= 0 and self._is_write_back():
            # PyTorch's CopySlices: the base's previous grad_fn, then the in-place operation's inputs but the view
            inner = Node(self._seg, b)
            return ((self._node_of(a), 0),) + tuple(inner.next_functions[1:])
        if opcode in (op.PYFUNC_OP, op.PYFUNC_OUTPUT):
            node = self._pyfunc()
            inputs = list(node.input_gids) if node is not None else []
        else:
            inputs = [a, b][:op.N_NEXT.get(opcode, 0)]
            if opcode == op.ADDMM and tape.owns(self._gid):
                params = self._params()
                inputs = [params[0], a, b]
                if self._addmm_reads_b_transposed():
                    weight = self._node_of(b)
                    return ((self._node_of(params[0]), 0), (self._node_of(a), 0),
                            (TransposeNode(weight, self._gid) if weight is not None else None, 0))
            elif opcode == op.CUSTOM_OP and tape.owns(self._gid):
                inputs = [g for g in (a, b) if g >= 0] + self._params()[:-1]
            elif op.HAS_EXTRA[opcode] and tape.owns(self._gid):
                # inputs beyond a and b (a layer norm's bias, a clamp's max, ...): PyTorch shows as many as
                # N_NEXT says, and every input of a cat or stack
                inputs = [a, b] + self._extra_inputs()
                if opcode in (op.CAT, op.STACK):
                    inputs = [g for g in inputs if g != -1]
                else:    # an absent optional input (no bias, no max) shows as None
                    n = op.N_NEXT.get(opcode, 0)
                    inputs = (inputs + [-1] * n)[:n]
        return tuple((self._node_of(g), 0) for g in inputs)

    def _extra_inputs(self):
        tape = self._seg.tape
        aux = int(tape.aux[self._gid - tape.base])
        p = aux + 1 + int(tape.ints[aux])
        return [int(v) for v in tape.ints[p + 1:p + 1 + int(tape.ints[p])]]

    def _is_write_back(self):
        tape = self._seg.tape
        return tape.owns(self._gid) and tape.const[self._gid - tape.base] == WRITE_BACK

    def key(self):
        """What identifies this node in a picture of the graph: its record (the node of a Python Function for
        each of its outputs), since grad_fn objects are made afresh on every access."""
        opcode, a, _ = _record(self._seg, self._gid)
        return ("record", a if opcode == op.PYFUNC_OUTPUT else self._gid)

    def _addmm_reads_b_transposed(self):
        """F.linear's ADDMM reads its weight transposed (params: [1, input gid, beta bits, transposed])."""
        tape = self._seg.tape
        aux = int(tape.aux[self._gid - tape.base])
        return bool(tape.ints[aux + 1 + int(tape.ints[aux]) + 3])

    def _node_of(self, gid):
        if gid < 0:
            return None
        tape = self._seg.tape
        tape.flush()
        seg = _segment_of(tape, gid)
        if seg is None or not tape.owns(gid):
            return None
        opcode = int(tape.ops[gid - tape.base])
        if opcode == op.CLONE and tape.const[gid - tape.base] == SNAPSHOT:
            return self._node_of(int(tape.a[gid - tape.base]))
        if opcode == op.LEAF:
            for g, leaf in seg.leaves:
                if g == gid:
                    return AccumulateGrad(leaf)
            return None
        if opcode in (op.CONST, op.FREED):
            return None
        return _shown(seg, gid)

    def __eq__(self, other):
        return isinstance(other, Node) and other._seg.tape is self._seg.tape and other.key() == self.key()

    def __hash__(self):
        return hash((id(self._seg.tape), self.key()))

    def __repr__(self):
        return f"<{self.name()} object at {hex(id(self))}>"


class TransposeNode:
    """The TBackward0 that PyTorch shows between F.linear's AddmmBackward0 and its weight; tapegrad records no
    transpose there (the ADDMM reads the weight transposed), so this node exists only in the graph's view."""

    __slots__ = ("_weight", "_addmm")

    def __init__(self, weight, addmm=None):
        self._weight = weight
        self._addmm = addmm      # the gid of the ADDMM record that reads the weight transposed

    def name(self):
        return "TBackward0"

    def key(self):
        return ("transpose", "record", self._addmm)

    @property
    def next_functions(self):
        return ((self._weight, 0),)

    def __eq__(self, other):
        return isinstance(other, TransposeNode) and other._weight == self._weight and other._addmm == self._addmm

    def __hash__(self):
        return hash(("T", self._weight, self._addmm))

    def __repr__(self):
        return f"<TBackward0 object at {hex(id(self))}>"


class AsStridedNode:
    """The AsStridedBackward0 PyTorch shows as the grad_fn of a view written in place: the view read back from
    its base's new value (the CopySlices). tapegrad records the view's new value itself (`own`), which gives the
    same gradients, so this node exists only in the graph's view."""

    __slots__ = ("_own", "_base")

    def __init__(self, own, base):
        self._own = own
        self._base = base

    def name(self):
        return "AsStridedBackward0"

    def key(self):
        return ("as_strided",) + self._own.key()

    @property
    def next_functions(self):
        return ((self._base, 0),)

    def __eq__(self, other):
        return isinstance(other, AsStridedNode) and other._own == self._own

    def __hash__(self):
        return hash(("as_strided", self._own))

    def __repr__(self):
        return f"<AsStridedBackward0 object at {hex(id(self))}>"


class AccumulateGrad:
    """Where a leaf's gradient lands; `variable` is the leaf."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"

    def key(self):
        return ("leaf", id(self.variable))

    next_functions = ()

    def __eq__(self, other):
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self):
        return id(self.variable)

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"


def node_for(seg, gid):
    return _shown(seg, seg.resolve(gid))


def _shown(seg, gid):
    """The node shown for record gid: its own, or for the new value of a view written in place, PyTorch's
    AsStridedBackward0 of the base's new value. The write-back record follows that value at once, or after the
    record of its base (ops/inplace.py apply_inplace)."""
    tape = seg.tape
    tape.flush()
    for g in (gid + 1, gid + 2):
        p = g - tape.base
        if (tape.owns(g) and tape.ops[p] == op.COPY_SLICES and tape.b[p] == gid and tape.const[p] == WRITE_BACK):
            return AsStridedNode(Node(seg, gid), Node(_segment_of(tape, g), g))
    return Node(seg, gid)


class RenamedNode(Node):
    """The grad_fn of a complex operation's result: its last real record, under PyTorch's name for the complex
    operation (ops/complex.py composes complex operations of real ones)."""

    __slots__ = ("_name",)

    def name(self):
        return self._name


def renamed(node, name):
    if not isinstance(node, Node):
        return node
    out = RenamedNode(node._seg, node._gid)
    out._name = name
    return out


class Records:
    """Read access to the records of one set of buffers: a thread's tape, or a compiled trace."""

    def __init__(self, ops, a, b, aux, const, flags, ints, base, n):
        self.ops, self.a, self.b, self.aux, self.const, self.flags, self.ints = ops, a, b, aux, const, flags, ints
        self.base, self.n = base, n

    @classmethod
    def of_tape(cls, tape):
        tape.flush()
        return cls(tape.ops, tape.a, tape.b, tape.aux, tape.const, tape.flags, tape.ints, tape.base, tape.n)

    @classmethod
    def of_trace(cls, trace):
        return cls(trace.ops, trace.a, trace.b, trace.aux, trace.const, trace.flags, trace.ints, trace.base, trace.n)

    def has(self, gid):
        return self.base <= gid < self.base + self.n

    def opcode(self, gid):
        return int(self.ops[gid - self.base])

    def shape(self, gid):
        aux = int(self.aux[gid - self.base])
        return tuple(int(d) for d in self.ints[aux + 1:aux + 1 + int(self.ints[aux])])

    def params(self, gid, count):
        aux = int(self.aux[gid - self.base])
        p = aux + 1 + int(self.ints[aux])
        return [int(v) for v in self.ints[p:p + count]]

    def extra_inputs(self, gid):
        """The gids of a record's inputs beyond a and b (opcodes.EXTRA)."""
        if not op.HAS_EXTRA[self.opcode(gid)]:
            return []
        n_extra = self.params(gid, 1)[0]
        return self.params(gid, 1 + n_extra)[1:]

    def inputs(self, gid):
        """A record's input gids (-1: none) in the order PyTorch lists them in next_functions."""
        p = gid - self.base
        o = int(self.ops[p])
        a, b = int(self.a[p]), int(self.b[p])
        if o == op.PYFUNC_OUTPUT:
            return [a]
        extra = self.extra_inputs(gid)
        if o == op.ADDMM:
            return extra + [a, b]
        return [a, b] + extra
