"""Pictures of graphs as Graphviz DOT text: make_dot draws an autograd graph the way torchviz draws PyTorch's,
and trace_dot draws a tg.compile trace in the same style.

The DOT text is written here and rendered by Graphviz's `dot` program when a picture is asked for (render, or
Jupyter's display); the `graphviz` Python package is not needed. grad_fn objects are made afresh on every access
(autograd/graph.py), so nodes are told apart by what they stand for (a record, a leaf), not by Python identity.
"""
import math
import os
import re
import subprocess

import numpy as np

from ._kernels import opcodes as op
from ._kernels import program as _program
from .autograd.graph import AccumulateGrad, Node, Records, _segment_of

__all__ = ["make_dot", "trace_dot", "Dot", "GraphvizNotFound"]

# torchviz's colours: leaves that receive .grad, saved values, outputs, and the base of an output that is a view
LEAF_COLOR = "lightblue"
SAVED_COLOR = "orange"
OUTPUT_COLOR = "darkolivegreen1"
BASE_COLOR = "darkolivegreen3"
# trace pictures: guard records, and the program rows that run inline or in a family kernel
GUARD_COLOR = "lightpink"
INLINE_COLOR = "lightyellow"
KERNEL_COLOR = "lightgrey"

_NODE_STYLE = dict(align="left", fontname="monospace", fontsize="10", height="0.2", ranksep="0.1", shape="box",
                   style="filled")
_BARE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|-?(\.[0-9]+|[0-9]+(\.[0-9]*)?)")
_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}


class GraphvizNotFound(RuntimeError):
    """Graphviz's `dot` program is not installed (or not on PATH)."""


class Dot:
    """A picture as DOT text (`.source`); renders with Graphviz's `dot` and shows itself as SVG in Jupyter."""

    def __init__(self, source):
        self.source = source

    def __str__(self):
        return self.source

    def __repr__(self):
        lines = self.source.count("\n")
        return f"<tapegrad.viz.Dot: {lines} lines of DOT; .source, .render(path, format='svg')>"

    def pipe(self, format="svg"):
        """The picture in `format` (svg, png, pdf, or any other output format of `dot`), as bytes."""
        if not re.fullmatch(r"[a-z0-9_:]+", format):
            raise ValueError(f"render: unknown format {format!r}; use 'svg', 'png' or 'pdf'")
        try:
            done = subprocess.run(["dot", f"-T{format}"], input=self.source.encode(), capture_output=True)
        except FileNotFoundError:
            raise GraphvizNotFound(
                "rendering the picture needs Graphviz's `dot` program, which was not found on PATH; install "
                "Graphviz (apt-get install graphviz, brew install graphviz or conda install graphviz), or use "
                ".source for the DOT text") from None
        if done.returncode != 0:
            raise RuntimeError(f"dot -T{format} failed: {done.stderr.decode(errors='replace').strip()}")
        return done.stdout

    def render(self, path, format="svg"):
        """Write the picture to `path` (".<format>" is added unless path ends with it, and missing directories
        are made); return the path written."""
        path = os.fspath(path)
        if not path.endswith("." + format):
            path += "." + format
        data = self.pipe(format)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def save(self, path):
        """Write the DOT text to `path`; return the path."""
        with open(path, "w") as f:
            f.write(self.source)
        return path

    def _repr_svg_(self):
        try:
            return self.pipe("svg").decode()
        except GraphvizNotFound:
            return None

    def _repr_mimebundle_(self, include=None, exclude=None):
        try:
            return {"image/svg+xml": self.pipe("svg").decode()}
        except GraphvizNotFound as err:
            return {"text/plain": f"{err}\n\n{self.source}"}


def _quote(text):
    text = str(text)
    if _BARE_ID.fullmatch(text) and text not in _KEYWORDS:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attrs(attrs):
    return " ".join(f"{k}={_quote(v)}" for k, v in attrs.items())


class _Picture:
    """The body of a DOT digraph in torchviz's layout: node and edge statements in the order they were added."""

    def __init__(self):
        self.body = []
        self.ids = {}

    def id_of(self, key):
        """The DOT id of what `key` names: a record by its gid, anything else numbered in order of appearance
        (Python ids would make every drawing of the same program differ)."""
        name = self.ids.get(key)
        if name is None:
            kind = key[0] if key else "none"
            if kind == "record":
                name = f"r{key[1]}"
            elif kind == "transpose":
                name = f"T{self.id_of(key[1:])}"
            else:
                name = f"{kind[0]}{len(self.ids)}"
            self.ids[key] = name
        return name

    def node(self, name, label, **attrs):
        self.body.append(f"\t{_quote(name)} [{_attrs(dict(label=label, **attrs))}]")

    def edge(self, tail, head, **attrs):
        extra = f" [{_attrs(attrs)}]" if attrs else ""
        self.body.append(f"\t{_quote(tail)} -> {_quote(head)}{extra}")

    def dot(self):
        # torchviz grows the drawing area with the graph (0.15 inch per statement, at least 12 inches)
        size = max(12, len(self.body) * 0.15)
        head = ["digraph {", f"\tgraph [size={_quote(f'{size},{size}')}]", f"\tnode [{_attrs(_NODE_STYLE)}]"]
        return Dot("\n".join(head + self.body + ["}"]) + "\n")


def _size_text(shape):
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _tensor_label(shape, name=""):
    return f"{name}\n {_size_text(shape)}"


def _short_name(name):
    # torchviz shows the node's class name: CopySlices, not PyTorch's qualified torch::autograd::CopySlices
    return name.rsplit("::", 1)[-1]


def _key(fn):
    return fn.key() if hasattr(fn, "key") else ("object", id(fn))


# -- what a record shows: saved values and attributes -----------------------------------------------------------

# the names PyTorch gives the values a backward saves, where they differ from self (input a), other (input b)
# and result (the output)
_SAVED_NAMES = {
    op.MM: ("self", "mat2"), op.ADDMM: ("mat1", "mat2"), op.MV: ("self", "vec"), op.DOT: ("self", "tensor"),
    op.BMM: ("self", "mat2"), op.POW: ("self", "exponent"), op.RPOW_SCALAR: ("exponent", None),
    op.MSE_LOSS: ("self", "target"), op.SMOOTH_L1_LOSS: ("self", "target"), op.HUBER_LOSS: ("self", "target"),
    op.BCE_LOSS: ("self", "target"), op.BCE_WITH_LOGITS: ("self", "target"),
}
# operations whose scalar constant PyTorch keeps as an attribute (or, for * and /, as a saved 0-d tensor)
_CONST_NAMES = {op.POW_SCALAR: "exponent", op.RPOW_SCALAR: "self", op.ELU: "alpha", op.CELU: "alpha",
                op.LEAKY_RELU: "negative_slope", op.CLAMP_MIN: "min", op.CLAMP_MAX: "max",
                op.ROUND_DECIMALS: "decimals"}
_SCALAR_OTHER = {op.MUL_SCALAR, op.DIV_SCALAR}
_ALPHA = {op.ADD, op.SUB, op.RSUB, op.ADD_SCALAR, op.SUB_SCALAR, op.RSUB_SCALAR}
_SIZES = {op.SUM_ALL, op.SUM_DIM, op.MEAN_ALL, op.MEAN_DIM, op.VIEW, op.UNSAFE_VIEW, op.EXPAND, op.SELECT, op.SLICE,
          op.SQUEEZE, op.SQUEEZE_DIM, op.SQUEEZE_DIMS}
_REDUCE_DIMS = {op.SUM_DIM, op.MEAN_DIM}


class _Records(Records):
    """Records, with what a picture shows of one: its saved values and attributes."""

    def saved(self, gid):
        """[(name, value gid or None for the record's scalar constant, shape)] of what the record's backward reads."""
        o = self.opcode(gid)
        reads = op.READS.get(o, "")
        names = _SAVED_NAMES.get(o, ("self", "other"))
        p = gid - self.base
        out = []
        for slot, g, name in (("a", int(self.a[p]), names[0]), ("b", int(self.b[p]), names[1])):
            if slot in reads and name is not None and g >= 0 and self.has(g):
                out.append((name, g, self.shape(g)))
        if o in _SCALAR_OTHER:
            out.append(("other", None, ()))
        if "y" in reads:
            out.append(("result", gid, self.shape(gid)))
        if o == op.ADDMM and self.params(gid, 4)[3]:
            # F.linear's weight, read transposed: PyTorch saves the transpose, a tensor of its own
            out = [(name, None, shape[::-1]) if name == "mat2" else (name, g, shape) for name, g, shape in out]
        return sorted(out, key=lambda saved: saved[0])    # in name order, as torchviz lists them

    def attributes(self, gid):
        """{name: text} of the record's non-tensor attributes, under PyTorch's names where it has them."""
        o = self.opcode(gid)
        p = gid - self.base
        out = {}
        if o in _ALPHA:
            out["alpha"] = "1"    # tapegrad multiplies by alpha in a record of its own before the sum
        if o in _CONST_NAMES:
            out[_CONST_NAMES[o]] = _number(self.const[p])
        a = int(self.a[p])
        if o in _SIZES and a >= 0 and self.has(a):
            sizes = self.shape(a)
            out["self_sym_sizes"] = str(sizes)
            if o in (op.MEAN_ALL, op.MEAN_DIM):
                out["self_sym_numel"] = str(math.prod(sizes))
            if o in _REDUCE_DIMS:
                kept = self.params(gid, len(sizes))
                out["dim"] = str(tuple(k for k, (s, r) in enumerate(zip(sizes, kept)) if r == 1 and s != 1))
                out["keepdim"] = str(len(self.shape(gid)) == len(sizes))
        if o == op.ADDMM:
            out["alpha"] = _number(self.const[p])
            beta_bits = np.array(self.params(gid, 3)[2:], np.int64)
            out["beta"] = _number(beta_bits.view(np.float64)[0])
        return out


def _number(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _label(name, attrs, max_attr_chars):
    """torchviz's node label: the name, then one `key: value` row per attribute under a rule."""
    if not attrs:
        return name
    max_attr_chars = max(max_attr_chars, 3)
    keys = sorted(attrs)
    left = max(len(k) for k in keys)
    right = min(max(len(v) for v in attrs.values()), max_attr_chars)

    def cut(v):
        return v[:right - 3] + "..." if len(v) > right else v

    rows = [f"{k.ljust(left)}: {cut(attrs[k]).rjust(right)}" for k in keys]
    return "\n".join([name, "-" * max(left + right + 2, len(name))] + rows)


def _leaf_of(tape, gid):
    """The leaf tensor recorded as `gid`, if that record is a leaf."""
    if not tape.owns(gid) or tape.ops[gid - tape.base] != op.LEAF:
        return None
    seg = _segment_of(tape, gid)
    return next((t for g, t in seg.leaves if g == gid), None) if seg is not None else None


# -- make_dot ------------------------------------------------------------------------------------------------

def make_dot(var, params=None, show_attrs=False, show_saved=False, max_attr_chars=50):
    """A picture of the autograd graph that produced `var` (a tensor, or a tuple of them sharing one picture),
    in torchviz's look: one box per grad_fn, leaves in blue named from `params` (e.g.
    dict(model.named_parameters())) with their shape, the output in green; show_saved adds the values the
    backward functions read (orange), show_attrs their attributes. Returns a Dot (`.source`, `.render(...)`)."""
    from .tensor import Tensor
    names = {id(v): k for k, v in params.items()} if params is not None else {}
    if params is not None and not all(isinstance(v, Tensor) for v in params.values()):
        raise TypeError("make_dot: params must map names to tensors")
    picture = _Picture()
    seen = set()

    def tensor_label(t, name=None):
        return _tensor_label(t.shape, names.get(id(t), "") if not name else name)

    def add_function(fn):
        key = _key(fn)
        if key in seen:
            return
        seen.add(key)
        fid = picture.id_of(key)
        records = None
        gid = None
        if isinstance(fn, Node):
            tape = fn._seg.tape
            gid = fn._gid
            if tape.owns(gid):
                records = _Records.of_tape(tape)
        live = records is not None and not records.flags[gid - records.base] & op.FLAG_FREED
        if show_saved and live and records.opcode(gid) not in (op.PYFUNC_OP, op.PYFUNC_OUTPUT):
            for name, g, shape in records.saved(gid):
                # a saved output is a tensor of its own in PyTorch (unpacked afresh), a saved input the input
                sid = f"c{gid}_{name}" if g is None else f"y{g}" if g == gid else f"v{g}"
                leaf = _leaf_of(fn._seg.tape, g) if g is not None else None
                if leaf is not None:
                    sid = picture.id_of(("tensor", id(leaf)))   # PyTorch hands back the leaf itself
                picture.edge(fid, sid, dir="none")
                picture.node(sid, _tensor_label(shape, name), fillcolor=SAVED_COLOR)
        if isinstance(fn, AccumulateGrad):
            var = fn.variable
            seen.add(("tensor", id(var)))
            picture.node(picture.id_of(("tensor", id(var))), tensor_label(var), fillcolor=LEAF_COLOR)
            picture.edge(picture.id_of(("tensor", id(var))), fid)
        attrs = {}
        if show_attrs and records is not None:
            attrs = records.attributes(gid)
            for name, _, _ in records.saved(gid) if live else ():
                attrs[name] = "[saved tensor]"     # as torchviz lists saved tensors among the attributes
            if records.opcode(gid) in _SCALAR_OTHER:
                attrs["self"] = "None"
        name = "AccumulateGrad" if isinstance(fn, AccumulateGrad) else _short_name(fn.name())
        picture.node(fid, _label(name, attrs, max_attr_chars))
        for child, _ in getattr(fn, "next_functions", ()):
            if child is not None:
                picture.edge(picture.id_of(_key(child)), fid)
                add_function(child)
        function = fn._pyfunc() if isinstance(fn, Node) and live else None
        if function is not None and function.ctx._saved and not function.ctx._freed:
            # a tapegrad.autograd.Function's saved tensors, which torchviz always shows
            for t, _ in function.ctx._saved:
                if t is not None:
                    seen.add(("tensor", id(t)))
                    picture.edge(picture.id_of(("tensor", id(t))), fid, dir="none")
                    picture.node(picture.id_of(("tensor", id(t))), tensor_label(t), fillcolor=SAVED_COLOR)

    def add_tensor(t, color=OUTPUT_COLOR):
        if ("tensor", id(t)) in seen:
            return
        seen.add(("tensor", id(t)))
        tid = picture.id_of(("tensor", id(t)))
        picture.node(tid, tensor_label(t), fillcolor=color)
        fn = t.grad_fn
        if fn is not None:
            add_function(fn)
            picture.edge(picture.id_of(_key(fn)), tid)
        if t._base is not None and t._seg is not None:    # a view in the graph: torchviz draws its base too
            add_tensor(t._base, BASE_COLOR)
            picture.edge(picture.id_of(("tensor", id(t._base))), tid, style="dotted")

    for t in (var if isinstance(var, (tuple, list)) else (var,)):
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dot: expected a tensor or a tuple of tensors, got {type(t).__name__}")
        add_tensor(t)
    return picture.dot()


# -- compiled traces --------------------------------------------------------------------------------------------

_GUARD_NAMES = {op.GT: "gt", op.LT: "lt", op.GE: "ge", op.LE: "le", op.EQ: "eq", op.NE: "ne", op.IS_NAN: "isnan",
                op.NOT: "logical_not", op.DETACH: "detach", op.GUARD_EQUAL: "observed value"}
_KIND_NAMES = {_program.SCALAR_UNARY: "0-d unary, inline", _program.SCALAR_BINARY: "0-d binary, inline",
               _program.VECTOR_UNARY: "elementwise unary, inline",
               _program.VECTOR_BINARY: "elementwise binary, inline",
               _program.VECTOR_SLICE: "contiguous view, inline", _program.VECTOR_SUM: "whole sum, inline"}
_FAMILY_NAMES = {op.UNARY: "unary", op.BINARY: "binary", op.REDUCE: "reduce", op.STRIDED: "strided",
                 op.GATHER: "gather", op.INDEX_PUT: "index_put", op.MATMUL: "matmul", op.TERNARY: "ternary",
                 op.ORDER: "order", op.LAYOUT: "layout", op.LINALG: "linalg", op.NN: "nn", op.GUARD: "guard"}


def latest_trace(traces):
    """The most recently recorded of a compiled function's traces ({signature: [trace, ...]}), or None.
    Each trace records on a fresh tape, whose gids start above every earlier tape's."""
    every = [t for group in traces.values() for t in group]
    return max(every, key=lambda t: t.base) if every else None


def trace_dot(trace, name="trace", program=False, show_attrs=False, max_attr_chars=50):
    """A picture of one compiled trace's records in make_dot's style: arguments and captured tensors that take
    gradients in blue, outputs in green, guard records (values that steered Python, comparisons) in pink. With
    program=True each record also shows its row of the replay program: run inline, or by its family's kernel."""
    if trace is None:
        raise RuntimeError(f"{name}.graph(): nothing recorded yet; call the function once")
    records = _Records.of_trace(trace)
    picture = _Picture()
    base = trace.base
    leaf_names = {g: f"arg {k}" for k, g in enumerate(trace.input_gids) if g >= 0}
    leaf_names.update({g: "captured" for g, _ in trace.captured_leaves})
    order = {}
    if program and len(trace.back):
        order = {int(r): t for t, r in enumerate(trace.back[:, _program.REC])}
    drawn = set()

    def draw(gid):
        if gid in drawn:
            return
        drawn.add(gid)
        o = records.opcode(gid)
        fam = o >> 6
        rid = f"r{gid - base}"
        if fam == op.SOURCE:
            if o == op.LEAF:
                picture.node(rid, _tensor_label(records.shape(gid), leaf_names.get(gid, "")), fillcolor=LEAF_COLOR)
            else:
                picture.node(rid, _tensor_label(records.shape(gid), "constant"), fillcolor="white")
            return
        attrs = records.attributes(gid) if show_attrs else {}
        style = {}
        if fam == op.GUARD:
            label = f"Guard: {_GUARD_NAMES.get(o, 'guard')}"
            style = dict(fillcolor=GUARD_COLOR, style="filled,dashed")
        else:
            label = _short_name(op.NAMES.get(o) or "Backward")
        if program:
            row = trace.prog[gid - base]
            kind = int(row[_program.KIND])
            if kind == _program.GENERAL:
                attrs["replay"] = f"{_FAMILY_NAMES.get(fam, fam)} kernel"
                style.setdefault("fillcolor", KERNEL_COLOR)
            else:
                attrs["replay"] = _KIND_NAMES.get(kind, str(kind))
                style.setdefault("fillcolor", INLINE_COLOR)
            attrs["row"] = str(gid - base)
            if gid - base in order:
                attrs["sweep step"] = str(order[gid - base])
        picture.node(rid, _label(label, attrs, max_attr_chars), **style)
        for g in records.inputs(gid):
            if g >= 0 and records.has(g):
                if records.opcode(g) == op.CONST and not program:
                    continue     # constants are not drawn (as in make_dot) unless the program is shown
                draw(g)
                picture.edge(f"r{g - base}", rid)

    for k, (gid, shape, _) in enumerate(trace.outputs):
        draw(gid)
        picture.node(f"out{k}", _tensor_label(shape, f"output {k}" if len(trace.outputs) > 1 else ""),
                     fillcolor=OUTPUT_COLOR)
        picture.edge(f"r{gid - base}", f"out{k}")
    # guards steer Python without feeding an output: draw them and what they read too
    for p in range(records.n):
        if records.ops[p] >> 6 == op.GUARD:
            draw(base + p)
    return picture.dot()
