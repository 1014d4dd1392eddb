"""The table of differentiable operations and how to sample their arguments (in the spirit of PyTorch's OpInfo).

Each OpSpec names an operation, gives it as fn(L, *args) where L is the library module (tapegrad, or torch for
the comparison tests), and a strategy drawing the argument tuple. Tensors in the arguments are tapegrad leaves;
those that require grad are differentiated. Adding an operation to every property test is one table line.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
from hypothesis import strategies as st

import tapegrad as tg

from .strategies import floats_avoiding, mutually_broadcastable_shapes, shapes, tensors, values

__all__ = ["OpSpec", "OPS", "OPS_BY_NAME", "DOMAINS"]

# element domains: kinks and poles kept at a distance
DOMAINS = {
    "real": values(-2.0, 2.0),
    "kink0": floats_avoiding((0.0,), margin=1e-3, min_value=-2.0, max_value=2.0),   # abs, relu
    "nonzero": floats_avoiding((0.0,), margin=0.1, min_value=-2.0, max_value=2.0),  # 1/x, x/y, x**-1
    "positive": floats_avoiding((), margin=0.0, min_value=0.1, max_value=2.0),       # log, sqrt, x**2.5
}


@dataclass(frozen=True)
class OpSpec:
    """One differentiable operation: fn(L, *args), a strategy for args, and how the tests may use it.

    kind: "unary" / "binary" for elementwise ops usable in random programs (domains gives each tensor
    argument's domain), else "other". torch=False when torch has no identical counterpart; torch_tol overrides
    the comparison tolerance where torch rounds differently by design, float32_tol the float32 one where torch's
    float32 arithmetic loses digits that tapegrad's float64 sweep keeps.
    """
    name: str
    fn: Callable
    args: st.SearchStrategy
    kind: str = "other"
    domains: tuple = ()
    torch: bool = True
    gradcheck_kwargs: dict = field(default_factory=dict)
    torch_tol: Optional[dict] = None
    float32_tol: Optional[dict] = None
    note: Optional[str] = None

    def bind(self, L):
        """fn as a function of the arguments only, named after the op (for gradcheck's messages)."""
        def op(*args):
            return self.fn(L, *args)
        op.__name__ = op.op_name = self.name
        return op


def _t(domain="real", shape=None, **kw):
    return tensors(shape=shape, elements=DOMAINS[domain], **kw)


def _elementwise(*domains):
    """Tensors with mutually broadcastable shapes, one per domain."""
    return mutually_broadcastable_shapes(len(domains)).flatmap(
        lambda ss: st.tuples(*(_t(d, s) for d, s in zip(domains, ss))))


def _unary(domain="real", **shape_kw):
    return st.tuples(_t(domain, shapes(**shape_kw)))


@st.composite
def _with_dims(draw, single=False, min_dims=0):
    """(x, dim) with dim an int (single) or a non-empty tuple of distinct dims, negative ones included."""
    x = draw(_t(shape=shapes(min_dims=min_dims)))
    n = max(x.ndim, 1)
    dim = st.integers(-n, n - 1)
    if single:
        return x, draw(dim)
    dims = draw(st.lists(dim, min_size=1, max_size=n, unique_by=lambda d: d % n))
    return x, tuple(dims)


@st.composite
def _two_dims(draw):
    x = draw(_t(shape=shapes(min_dims=1)))
    d = st.integers(-x.ndim, x.ndim - 1)
    return x, draw(d), draw(d)


@st.composite
def _permutation(draw):
    x = draw(_t(shape=shapes(min_dims=1)))
    return x, tuple(draw(st.permutations(range(x.ndim))))


@st.composite
def _new_shape(draw):
    """(x, shape) with the same number of elements, possibly with a -1."""
    x = draw(_t())
    n = x.numel()
    sides = []
    rest = n
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
        sides.append(d)
        rest //= d
    if rest != 1 or not sides:
        sides.append(rest)
    sides = draw(st.permutations(sides))
    if draw(st.booleans()):
        sides[draw(st.integers(0, len(sides) - 1))] = -1
    return x, tuple(sides)


@st.composite
def _flatten_args(draw):
    x = draw(_t())
    n = max(x.ndim, 1)
    a, b = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2)))
    return x, a - n * draw(st.booleans()), b


@st.composite
def _unsqueeze_args(draw):
    x = draw(_t())
    return x, draw(st.integers(-x.ndim - 1, x.ndim))


@st.composite
def _squeeze_args(draw):
    x = draw(_t(shape=shapes(min_side=1, max_side=2)))
    n = max(x.ndim, 1)
    return x, draw(st.integers(-n, n - 1))


@st.composite
def _expand_args(draw):
    """(x, target) with x broadcastable to target; -1 keeps a size."""
    target = list(draw(shapes(max_dims=4)))
    own = draw(_broadcasting_into(tuple(target)))
    k = len(own)
    x = draw(_t(shape=own))
    sizes = [(-1 if draw(st.booleans()) and i >= len(target) - k else s) for i, s in enumerate(target)]
    return x, tuple(sizes)


def _index_part(n, negative_steps):
    step = st.integers(-3, 3).filter(bool) if negative_steps else st.integers(1, 3)
    bound = st.none() | st.integers(-n - 1, n + 1)
    return st.one_of(st.integers(-n, n - 1), st.builds(slice, bound, bound, st.none() | step))


@st.composite
def _basic_index(draw, negative_steps=False, min_dims=1):
    """(x, index) with ints, slices, None and at most one Ellipsis."""
    x = draw(_t(shape=shapes(min_dims=min_dims)))
    parts = [draw(_index_part(n, negative_steps)) for n in x.shape[:draw(st.integers(0, x.ndim))]]
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), None)
    if draw(st.booleans()):
        # after the last int/slice, so those keep indexing the leading dims
        free = [i for i in range(len(parts) + 1) if all(p is None for p in parts[i:])]
        parts.insert(draw(st.sampled_from(free)), Ellipsis)
    return x, tuple(parts)


@st.composite
def _int_list_index(draw, unique=False, second_dim=False):
    x = draw(_t(shape=shapes(min_dims=2 if second_dim else 1)))
    n = x.shape[1 if second_dim else 0]
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4,
                        unique_by=(lambda i: i % n) if unique else None))
    return x, ((slice(None), idx) if second_dim else idx)


@st.composite
def _mask_index(draw):
    x = draw(_t(shape=shapes(min_dims=1)))
    full = draw(st.booleans())
    shape = x.shape if full else x.shape[:1]
    mask = draw(st.lists(st.booleans(), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return x, tg.tensor(np.array(mask, dtype=bool).reshape(shape))


def _setitem_args(index_strategy, scalar=False):
    @st.composite
    def draw_args(draw):
        x, idx = draw(index_strategy)
        target_shape = np.empty(x.shape)[idx if isinstance(idx, tuple) else (idx,)].shape \
            if not hasattr(idx, "_data") else np.empty(x.shape)[np.asarray(idx._data)].shape
        if scalar:
            return x, idx, draw(values())
        v_shape = draw(st.sampled_from([target_shape[k:] for k in range(len(target_shape) + 1)]))
        v_shape = tuple(1 if draw(st.booleans()) else s for s in v_shape)
        return x, idx, draw(_t(shape=v_shape))
    return draw_args()


def _setitem(L, x, idx, v):
    y = x.clone()
    y[idx] = v
    return y


@st.composite
def _matmul_args(draw, left_dims, right_dims):
    """Operands of matmul with ranks left_dims/right_dims (>= 3 means batched, batch dims broadcasting)."""
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ba, bb = draw(mutually_broadcastable_shapes(2, min_dims=0, max_dims=2, max_side=3))
    la = {1: (k,), 2: (n, k)}.get(left_dims) or ((left_dims - 2) * (1,) + ba)[-(left_dims - 2):] + (n, k)
    rb = {1: (k,), 2: (k, m)}.get(right_dims) or ((right_dims - 2) * (1,) + bb)[-(right_dims - 2):] + (k, m)
    return draw(_t(shape=la)), draw(_t(shape=rb))


@st.composite
def _mm_args(draw, batch=False):
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    b = (draw(st.integers(1, 3)),) if batch else ()
    return draw(_t(shape=b + (n, k))), draw(_t(shape=b + (k, m)))


@st.composite
def _mv_args(draw):
    n, k = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return draw(_t(shape=(n, k))), draw(_t(shape=(k,)))


@st.composite
def _dot_args(draw):
    k = draw(st.integers(1, 4))
    return draw(_t(shape=(k,))), draw(_t(shape=(k,)))


@st.composite
def _addmm_args(draw):
    n, k, m = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c = draw(st.sampled_from([(n, m), (m,), (1, m), (n, 1), (), (1,)]))
    beta = draw(st.sampled_from([1.0, 0.5, -2.0, 0.0]))
    alpha = draw(st.sampled_from([1.0, -1.5, 0.5]))
    return draw(_t(shape=c)), draw(_t(shape=(n, k))), draw(_t(shape=(k, m))), beta, alpha


@st.composite
def _broadcasting_into(draw, shape):
    """A shape that broadcasts to `shape` without growing it (a suffix, some sides set to 1)."""
    k = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else s for s in shape[len(shape) - k:])


def _inplace_binary(method, second="real"):
    """y = x * 1 (a non-leaf), then y.method(z) with z broadcast to y's shape."""
    def fn(L, x, z):
        y = x * 1.0
        getattr(y, method)(z)
        return y
    args = shapes().flatmap(lambda s: st.tuples(_t(shape=s), _broadcasting_into(s).flatmap(
        lambda zs: _t(second, shape=zs))))
    return fn, args


_OPS = []


def _op(name, fn, args, **kw):
    _OPS.append(OpSpec(name, fn, args, **kw))


# -- binary elementwise, broadcasting ------------------------------------------------------------------------------
_op("add", lambda L, x, y: L.add(x, y), _elementwise("real", "real"), kind="binary", domains=("real", "real"))
_op("add_alpha", lambda L, x, y: L.add(x, y, alpha=2.5), _elementwise("real", "real"))
_op("sub", lambda L, x, y: L.sub(x, y), _elementwise("real", "real"), kind="binary", domains=("real", "real"))
_op("sub_alpha", lambda L, x, y: L.sub(x, y, alpha=-0.5), _elementwise("real", "real"))
_op("mul", lambda L, x, y: L.mul(x, y), _elementwise("real", "real"), kind="binary", domains=("real", "real"))
_op("div", lambda L, x, y: L.div(x, y), _elementwise("real", "nonzero"), kind="binary", domains=("real", "nonzero"))
_op("pow", lambda L, x, y: L.pow(x, y), _elementwise("positive", "real"), kind="binary",
    domains=("positive", "real"))
_op("rsub", lambda L, x, y: L.rsub(x, y), _elementwise("real", "real"), kind="binary", domains=("real", "real"))
_op("operators", lambda L, x, y: (x + y) * x - y / 2.0, _elementwise("real", "real"))
# -- tensor with a Python scalar --------------------------------------------------------------------------------
_op("add_scalar", lambda L, x: x + 1.5, _unary(), kind="unary", domains=("real",))
_op("radd_scalar", lambda L, x: 1.5 + x, _unary())
_op("sub_scalar", lambda L, x: x - 0.5, _unary())
_op("rsub_scalar", lambda L, x: 2.0 - x, _unary(), kind="unary", domains=("real",))
_op("rsub_fn_scalar", lambda L, x: L.rsub(x, 2.0), _unary())
_op("mul_scalar", lambda L, x: x * 2.5, _unary(), kind="unary", domains=("real",))
_op("div_scalar", lambda L, x: x / 4.0, _unary(), kind="unary", domains=("real",))
_op("rdiv_scalar", lambda L, x: 2.0 / x, _unary("nonzero"), kind="unary", domains=("nonzero",))
_op("pow_scalar_2", lambda L, x: x ** 2, _unary(), kind="unary", domains=("real",))
_op("pow_scalar_3", lambda L, x: L.pow(x, 3), _unary(), kind="unary", domains=("real",))
_op("pow_scalar_0", lambda L, x: x ** 0, _unary())
_op("pow_scalar_neg1", lambda L, x: x ** -1, _unary("nonzero"), kind="unary", domains=("nonzero",))
_op("pow_scalar_frac", lambda L, x: x ** 2.5, _unary("positive"), kind="unary", domains=("positive",))
_op("pow_scalar_sqrt", lambda L, x: x ** 0.5, _unary("positive"))
_op("pow_scalar_base", lambda L, x: 2.0 ** x, _unary(), kind="unary", domains=("real",))
_op("pow_scalar_base_fn", lambda L, x: L.pow(0.5, x), _unary())
# -- unary ------------------------------------------------------------------------------------------------------
for _name, _dom in (("neg", "real"), ("exp", "real"), ("log", "positive"), ("sqrt", "positive"), ("abs", "kink0"),
                    ("sin", "real"), ("cos", "real"), ("tanh", "real"), ("sigmoid", "real"), ("relu", "kink0"),
                    ("reciprocal", "nonzero")):
    _op(_name, (lambda n: lambda L, x: getattr(L, n)(x))(_name), _unary(_dom), kind="unary", domains=(_dom,))
    _op(_name + "_method", (lambda n: lambda L, x: getattr(x, n)())(_name), _unary(_dom))
_op("neg_operator", lambda L, x: -x, _unary())
_op("abs_operator", lambda L, x: abs(x), _unary("kink0"))
_op("clone", lambda L, x: x.clone(), _unary(), kind="unary", domains=("real",))
_op("to_float64_copy", lambda L, x: x.to(L.float64, copy=True), _unary())
# float32 rounding: gradcheck takes a larger step (the op is linear, so no truncation error), and torch rounds
# the gradient flowing through the float32 tensor to float32 where tapegrad keeps float64 adjoints
_F32_HOP = dict(gradcheck_kwargs={"eps": 1e-3}, torch_tol={"rtol": 1e-6, "atol": 1e-7})
_op("to_float32_and_back", lambda L, x: x.to(L.float32).to(L.float64), _unary(), **_F32_HOP)
_op("double_of_float", lambda L, x: x.float().double(), _unary(), **_F32_HOP)
# -- reductions -------------------------------------------------------------------------------------------------
_op("sum", lambda L, x: L.sum(x), _unary())
_op("sum_method", lambda L, x: x.sum(), _unary())
_op("mean", lambda L, x: L.mean(x), _unary())
_op("sum_dim", lambda L, x, d: x.sum(d), _with_dims(single=True))
_op("sum_dims", lambda L, x, d: x.sum(d), _with_dims())
_op("sum_dim_keepdim", lambda L, x, d: L.sum(x, d, keepdim=True), _with_dims())
_op("mean_dim", lambda L, x, d: x.mean(d), _with_dims(single=True))
_op("mean_dims_keepdim", lambda L, x, d: x.mean(dim=d, keepdim=True), _with_dims())
# -- matrix products ----------------------------------------------------------------------------------------------
for _a, _b in ((1, 1), (2, 1), (1, 2), (2, 2), (3, 3), (4, 3), (3, 1), (1, 3), (2, 4), (4, 4)):
    _op(f"matmul_{_a}d_{_b}d", lambda L, x, y: L.matmul(x, y), _matmul_args(_a, _b))
_op("matmul_operator_transposed", lambda L, x, y: x @ y.transpose(-1, -2),
    _matmul_args(3, 3).map(lambda ab: (ab[0], ab[1].transpose(-1, -2).detach().clone().requires_grad_())))
_op("mm", lambda L, x, y: L.mm(x, y), _mm_args())
_op("mm_transposed", lambda L, x, y: L.mm(x.t(), y.t().t()), _mm_args().map(lambda ab: (ab[0].t().detach().clone().requires_grad_(), ab[1])))
_op("mv", lambda L, x, y: L.mv(x, y), _mv_args())
_op("dot", lambda L, x, y: L.dot(x, y), _dot_args())
_op("bmm", lambda L, x, y: L.bmm(x, y), _mm_args(batch=True))
_op("addmm", lambda L, c, a, b, beta, alpha: L.addmm(c, a, b, beta=beta, alpha=alpha), _addmm_args())
# -- views and shape -----------------------------------------------------------------------------------------------
_op("transpose", lambda L, x, a, b: x.transpose(a, b), _two_dims())
_op("t", lambda L, x: x.t(), _unary(max_dims=2))
_op("T", lambda L, x: x.T, _unary(max_dims=2))
_op("mT", lambda L, x: x.mT, _unary(min_dims=2))
_op("permute", lambda L, x, p: x.permute(*p), _permutation())
_op("reshape", lambda L, x, s: x.reshape(s), _new_shape())
_op("reshape_of_transpose", lambda L, x: x.transpose(0, -1).reshape(-1), _unary(min_dims=1))
_op("view", lambda L, x, s: x.view(s), _new_shape())
_op("flatten", lambda L, x, a, b: x.flatten(a, b), _flatten_args())
_op("unsqueeze", lambda L, x, d: x.unsqueeze(d), _unsqueeze_args())
_op("squeeze", lambda L, x: x.squeeze(), _unary(max_side=2))
_op("squeeze_dim", lambda L, x, d: x.squeeze(d), _squeeze_args())
_op("expand", lambda L, x, s: x.expand(s), _expand_args())
_op("view_chain", lambda L, x: x.unsqueeze(0).transpose(0, -1).squeeze(0), _unary())
# -- indexing -------------------------------------------------------------------------------------------------------
_op("getitem_int", lambda L, x, i: x[i], _int_list_index(unique=True).map(lambda a: (a[0], a[1][0])))
_op("getitem_basic", lambda L, x, i: x[i], _basic_index())
_op("getitem_basic_0d", lambda L, x, i: x[i], _basic_index(min_dims=0))
_op("getitem_int_list", lambda L, x, i: x[i], _int_list_index())
_op("getitem_int_list_dim1", lambda L, x, i: x[i], _int_list_index(second_dim=True))
_op("getitem_mask", lambda L, x, m: x[m], _mask_index())
_op("getitem_of_view", lambda L, x: x.t()[0], _unary(min_dims=1, max_dims=2))
# -- in-place writes (on non-leaves) ---------------------------------------------------------------------------
_op("setitem_basic", _setitem, _setitem_args(_basic_index()))
_op("setitem_int_list", _setitem, _setitem_args(_int_list_index(unique=True)))
_op("setitem_mask", _setitem, _setitem_args(_mask_index()))
_op("setitem_scalar", _setitem, _setitem_args(_basic_index(), scalar=True))
for _m, _second in (("add_", "real"), ("sub_", "real"), ("mul_", "real"), ("div_", "nonzero"),
                    ("__iadd__", "real"), ("__imul__", "real")):
    _op(f"inplace_{_m.strip('_')}", *_inplace_binary(_m, _second))
_op("inplace_scalar_chain", lambda L, x: (x * 1.0).add_(1.0).mul_(2.0).sub_(0.5).div_(4.0), _unary())
_op("inplace_through_view", lambda L, x, z: _write_view(x, z), st.tuples(_t(shape=shapes(min_dims=2)), _t(shape=())))
_op("inplace_on_view_of_transpose", lambda L, x, z: _write_transposed(x, z),
    shapes(min_dims=2, max_dims=2).flatmap(lambda s: st.tuples(_t(shape=s), _t(shape=(s[1], s[0])))))
_op("zero_view", lambda L, x: _zero_row(x), _unary(min_dims=1))
_op("copy_into_view", lambda L, x, z: _copy_col(x, z),
    shapes(min_dims=2, max_dims=2).flatmap(lambda s: st.tuples(_t(shape=s), _t(shape=(s[0],)))))


def _write_view(x, z):
    y = x * 1.0
    y[0].mul_(z)
    return y


def _write_transposed(x, z):
    y = x.clone()
    y.t().add_(z)
    return y


def _zero_row(x):
    y = x.clone()
    y[-1].zero_()
    return y * x


def _copy_col(x, z):
    y = x * 2.0
    y[:, 0].copy_(z)
    return y


# the families added after the foundation keep their specs next to each other, one module each
from .specs import elementwise, linalg, nn, reduce, shape  # noqa: E402,F401

OPS = tuple(_OPS)
OPS_BY_NAME = {s.name: s for s in OPS}
assert len(OPS_BY_NAME) == len(OPS), "duplicate op names"


# -- the README's table of supported operations, generated from the package so it cannot go stale ----------------

_FAMILIES = (
    ("Elementwise", "tapegrad.ops.elementwise", "tapegrad"),
    ("Reductions", "tapegrad.ops.reduce", "tapegrad"),
    ("Shapes and indexing", ("tapegrad.ops.shape", "tapegrad.ops.inplace"), "tapegrad"),
    ("Linear algebra", "tapegrad.ops.linalg", "tapegrad"),
    ("tapegrad.linalg", ("tapegrad.ops.linalg", "tapegrad.linalg", "tapegrad.ops.reduce"), "tapegrad.linalg"),
    ("tapegrad.nn.functional", None, "tapegrad.nn.functional"),
)


def supported_operations():
    """[(family, sorted public names)] of the functions tapegrad exposes, grouped by where they are defined."""
    import importlib
    rows = []
    for family, modules, namespace in _FAMILIES:
        ns = importlib.import_module(namespace)
        names = getattr(ns, "__all__", None) or [n for n in dir(ns) if not n.startswith("_")]
        if isinstance(modules, str):
            modules = (modules,)
        picked = sorted({n for n in names if callable(getattr(ns, n, None)) and not isinstance(getattr(ns, n), type)
                         and (modules is None or getattr(getattr(ns, n), "__module__", None) in modules)})
        rows.append((family, picked))
    return rows


def supported_operations_markdown():
    lines = ["| Family | Operations |", "|---|---|"]
    for family, names in supported_operations():
        lines.append(f"| {family} | {', '.join(f'`{n}`' for n in names)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(supported_operations_markdown())
