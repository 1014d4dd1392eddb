"""Op specs of the elementwise family (see tapegrad/testing/op_db.py): one _op(...) line per operation."""
import numpy as np
from hypothesis import strategies as st

import tapegrad as tg

from ..op_db import _op, _t, _elementwise, _unary, _broadcasting_into, DOMAINS  # noqa: F401
from ..strategies import floats_avoiding, mutually_broadcastable_shapes, shapes

# domains of this family: inside the ops' real domains, and away from kinks and jumps
_HALF_STEPS = [k / 2 for k in range(-5, 6)]
_TENTHS_JUMPS = [(k + 0.5) / 10 for k in range(-21, 21)]
DOMAINS.update({
    "unit": floats_avoiding((), 0.0, -0.9, 0.9),                              # asin, acos, atanh
    "above1": floats_avoiding((), 0.0, 1.1, 3.0),                             # acosh
    "above_minus1": floats_avoiding((), 0.0, -0.9, 2.0),                      # log1p
    "tan": floats_avoiding((), 0.0, -1.2, 1.2),                               # away from the poles at +-pi/2
    "off_steps": floats_avoiding(_HALF_STEPS, margin=0.02, min_value=-2.4, max_value=2.4),  # floor, round, frac
    "off_tenths": floats_avoiding(_TENTHS_JUMPS, margin=0.004, min_value=-2.0, max_value=2.0),  # round(decimals=1)
    "off_unit_bounds": floats_avoiding((-1.0, 1.0), margin=1e-2, min_value=-2.0, max_value=2.0),  # hardtanh, clamp
    "off_relu6": floats_avoiding((0.0, 1.5), margin=1e-2, min_value=-2.0, max_value=2.0),     # relu6(4 x)
    "off_half": floats_avoiding((0.5,), margin=1e-2, min_value=-2.0, max_value=2.0),          # softplus(2 x, 1)
    "off_bounds": floats_avoiding((-0.5, 0.5), margin=1e-2, min_value=-2.0, max_value=2.0),   # clamp(-.5, .5)
    "off_three": floats_avoiding((-0.75, 0.75), margin=1e-2, min_value=-1.5, max_value=1.5),  # hardswish(4 x)
})


def _apart(args, margin=1e-2, pairs=((0, 1),)):
    """True when the tensors args[i], args[j] of each pair differ by more than margin everywhere (no ties)."""
    for i, j in pairs:
        a, b = np.asarray(args[i].detach().numpy()), np.asarray(args[j].detach().numpy())
        if np.any(np.abs(a - b) <= margin):
            return False
    return True


def _no_ties(strategy, pairs=((0, 1),)):
    return strategy.filter(lambda args: _apart(args, pairs=pairs))


def _off_integer_quotient(args):
    q = np.asarray(args[0].detach().numpy()) / np.asarray(args[1].detach().numpy())
    return bool(np.all(np.abs(q - np.round(q)) > 1e-2))


@st.composite
def _masks(draw, shape):
    n = int(np.prod(shape))
    return tg.tensor(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool).reshape(shape))


@st.composite
def _where_args(draw):
    sc, sx, sy = draw(mutually_broadcastable_shapes(3))
    return draw(_masks(sc)), draw(_t(shape=sx)), draw(_t(shape=sy))


@st.composite
def _masked_fill_args(draw, tensor_value=False):
    sx, sm = draw(mutually_broadcastable_shapes(2))
    value = draw(_t(shape=())) if tensor_value else draw(st.sampled_from([0.0, -1.5, 2.0]))
    return draw(_t(shape=sx)), draw(_masks(sm)), value


@st.composite
def _clamp_tensor_args(draw, which="both"):
    # bounds broadcast into x's shape: PyTorch's backward fails when a bound widens the output (torch 2.13)
    sx = draw(shapes())
    slo, shi = draw(_broadcasting_into(sx)), draw(_broadcasting_into(sx))
    x = draw(_t(shape=sx))
    lo = draw(_t(shape=slo)) if which in ("both", "min") else None
    hi = draw(_t(shape=shi)) if which in ("both", "max") else None
    return x, lo, hi


def _clamp_apart(args):
    x, lo, hi = args
    return all(_apart((x, b)) for b in (lo, hi) if b is not None) and (lo is None or hi is None or _apart((lo, hi)))


# -- unary functions -----------------------------------------------------------------------------------------------
for _name, _dom, _in_programs in (
        ("exp2", "real", True), ("expm1", "real", True), ("log2", "positive", True), ("log10", "positive", True),
        ("log1p", "above_minus1", False), ("rsqrt", "positive", True), ("tan", "tan", False),
        ("asin", "unit", False), ("acos", "unit", False), ("atan", "real", True), ("sinh", "real", True),
        ("cosh", "real", True), ("asinh", "real", True), ("acosh", "above1", False), ("atanh", "unit", False),
        ("erf", "real", True), ("erfc", "real", True), ("square", "real", True), ("sign", "kink0", True),
        ("floor", "off_steps", False), ("ceil", "off_steps", False), ("round", "off_steps", False),
        ("trunc", "off_steps", False), ("frac", "off_steps", False)):
    _kind = dict(kind="unary", domains=(_dom,)) if _in_programs else {}
    _op(_name, (lambda n: lambda L, x: getattr(L, n)(x))(_name), _unary(_dom), **_kind)
    _op(_name + "_method", (lambda n: lambda L, x: getattr(x, n)())(_name), _unary(_dom))
    # PyTorch has no derivative for the in-place inverse hyperbolic functions; tapegrad's is the out-of-place one
    _op(_name + "_inplace", (lambda n: lambda L, x: getattr(x * 1.0, n + "_")())(_name), _unary(_dom),
        torch=_name not in ("asinh", "acosh", "atanh"))
_op("round_decimals", lambda L, x: L.round(x, decimals=1), _unary("off_tenths"))
_op("arcsin_alias", lambda L, x: L.arcsin(x), _unary("unit"))
_op("arctanh_method_alias", lambda L, x: x.arctanh(), _unary("unit"))
_op("clip_alias", lambda L, x: L.clip(x, -0.5, 0.5), _unary("off_bounds"))

# -- activations (torch.nn.functional names) ----------------------------------------------------------------------
def _nnf(L):
    return L.nn.functional if L is not tg else tg.ops.elementwise


_op("gelu", lambda L, x: _nnf(L).gelu(x), _unary(), kind="unary", domains=("real",))
_op("gelu_tanh", lambda L, x: _nnf(L).gelu(x, approximate="tanh"), _unary(), kind="unary", domains=("real",))
_op("silu", lambda L, x: _nnf(L).silu(x), _unary(), kind="unary", domains=("real",))
_op("elu", lambda L, x: _nnf(L).elu(x), _unary("kink0"), kind="unary", domains=("kink0",))
_op("elu_alpha", lambda L, x: _nnf(L).elu(x, alpha=0.5), _unary("kink0"))
_op("leaky_relu", lambda L, x: _nnf(L).leaky_relu(x), _unary("kink0"), kind="unary", domains=("kink0",))
_op("leaky_relu_slope", lambda L, x: _nnf(L).leaky_relu(x, negative_slope=0.2), _unary("kink0"))
_op("logsigmoid", lambda L, x: _nnf(L).logsigmoid(x), _unary(), kind="unary", domains=("real",))
_op("softplus", lambda L, x: _nnf(L).softplus(x), _unary(), kind="unary", domains=("real",))
_op("softplus_beta_threshold", lambda L, x: _nnf(L).softplus(x, beta=2.0, threshold=1.0), _unary("off_half"))
_op("hardtanh", lambda L, x: _nnf(L).hardtanh(x), _unary("off_unit_bounds"), kind="unary",
    domains=("off_unit_bounds",))
_op("hardtanh_bounds", lambda L, x: _nnf(L).hardtanh(x, -0.5, 0.5), _unary("off_bounds"))
_op("relu6", lambda L, x: _nnf(L).relu6(x * 4.0), _unary("off_relu6"))
_op("mish", lambda L, x: _nnf(L).mish(x), _unary(), kind="unary", domains=("real",))
_op("selu", lambda L, x: _nnf(L).selu(x), _unary("kink0"), kind="unary", domains=("kink0",))
_op("celu", lambda L, x: _nnf(L).celu(x, alpha=0.7), _unary("kink0"))
_op("hardsigmoid", lambda L, x: _nnf(L).hardsigmoid(x * 4.0), _unary("off_three"))
_op("hardswish", lambda L, x: _nnf(L).hardswish(x * 4.0), _unary("off_three"))
_op("softsign", lambda L, x: _nnf(L).softsign(x), _unary("kink0"))
_op("tanhshrink", lambda L, x: _nnf(L).tanhshrink(x), _unary())
_op("prelu", lambda L, x, w: _nnf(L).prelu(x, w),
    st.sampled_from([((3, 4), (4,)), ((2, 3, 5), (3,)), ((4,), (1,)), ((2, 3), (1,)), ((), (1,)), ((0, 2), (2,))])
    .flatmap(lambda s: st.tuples(_t("kink0", s[0]), _t("real", s[1]))))
_op("silu_inplace", lambda L, x: _nnf(L).silu(x * 1.0, inplace=True), _unary(), torch=False,
    note="PyTorch names the in-place node differently")
_op("leaky_relu_inplace", lambda L, x: _nnf(L).leaky_relu(x * 1.0, 0.1, inplace=True), _unary("kink0"),
    torch=False, note="PyTorch records LeakyReluBackward1 for the in-place form")

# -- clamp ---------------------------------------------------------------------------------------------------------
_op("clamp", lambda L, x: L.clamp(x, -0.5, 0.5), _unary("off_bounds"), kind="unary", domains=("off_bounds",))
_op("clamp_min_only", lambda L, x: L.clamp(x, min=-0.5), _unary("off_bounds"))
_op("clamp_max_only", lambda L, x: x.clamp(max=0.5), _unary("off_bounds"))
_op("clamp_method_inplace", lambda L, x: (x * 1.0).clamp_(-0.5, 0.5), _unary("off_bounds"))
_op("clamp_min_scalar", lambda L, x: L.clamp_min(x, 0.5), _unary("off_bounds"))
_op("clamp_max_scalar", lambda L, x: x.clamp_max(-0.5), _unary("off_bounds"))
_op("clamp_tensors", lambda L, x, lo, hi: L.clamp(x, lo, hi), _clamp_tensor_args().filter(_clamp_apart))
_op("clamp_tensor_min", lambda L, x, lo, hi: L.clamp(x, min=lo), _clamp_tensor_args("min").filter(_clamp_apart))
_op("clamp_tensor_max", lambda L, x, lo, hi: x.clamp(max=hi), _clamp_tensor_args("max").filter(_clamp_apart))
_op("clamp_min_tensor", lambda L, x, y: L.clamp_min(x, y), _no_ties(_elementwise("real", "real")))
_op("clamp_max_tensor", lambda L, x, y: x.clamp_max(y), _no_ties(_elementwise("real", "real")))

# -- binary functions ----------------------------------------------------------------------------------------------
_op("atan2", lambda L, x, y: L.atan2(x, y), _elementwise("real", "positive"), kind="binary",
    domains=("real", "positive"))   # away from the branch cut along the negative axis
_op("atan2_method", lambda L, x, y: x.atan2(y), _elementwise("nonzero", "real"))
_op("hypot", lambda L, x, y: L.hypot(x, y), _elementwise("nonzero", "real"), kind="binary",
    domains=("nonzero", "real"))
_op("maximum", lambda L, x, y: L.maximum(x, y), _no_ties(_elementwise("real", "real")), kind="binary",
    domains=("real", "real"))
_op("minimum", lambda L, x, y: x.minimum(y), _no_ties(_elementwise("real", "real")), kind="binary",
    domains=("real", "real"))
_op("div_floor", lambda L, x, y: L.div(x, y, rounding_mode="floor"),
    _elementwise("real", "nonzero").filter(_off_integer_quotient))
_op("div_trunc", lambda L, x, y: x.div(y, rounding_mode="trunc"),
    _elementwise("real", "nonzero").filter(_off_integer_quotient))
_op("div_floor_scalar", lambda L, x: L.div(x, 0.5, rounding_mode="floor"), _unary("off_steps"))

# -- selection and interpolation -----------------------------------------------------------------------------------
_op("where", lambda L, c, x, y: L.where(c, x, y), _where_args())
_op("where_scalar_other", lambda L, c, x, y: L.where(c, x, 0.5), _where_args())
_op("where_scalar_input", lambda L, c, x, y: L.where(c, -1.0, y), _where_args())
_op("where_method", lambda L, c, x, y: x.where(c, y), _where_args())
_op("masked_fill", lambda L, x, m, v: x.masked_fill(m, v), _masked_fill_args())
_op("masked_fill_tensor", lambda L, x, m, v: L.masked_fill(x, m, v), _masked_fill_args(tensor_value=True))
_op("masked_fill_inplace", lambda L, x, m, v: _masked_fill_inplace(x, m, v), _masked_fill_args(tensor_value=True)
    .filter(lambda a: np.broadcast_shapes(tuple(a[0].shape), tuple(a[1].shape)) == tuple(a[0].shape)))
_op("lerp_scalar", lambda L, x, y: L.lerp(x, y, 0.3), _elementwise("real", "real"))
_op("lerp_scalar_far", lambda L, x, y: x.lerp(y, 0.8), _elementwise("real", "real"))
_op("lerp_tensor", lambda L, x, y, w: L.lerp(x, y, w), _elementwise("real", "real", "real"))
_op("lerp_inplace", lambda L, x, y: (x * 1.0).lerp_(y, 0.25),
    shapes().flatmap(lambda s: st.tuples(_t(shape=s), _t(shape=s))))


def _masked_fill_inplace(x, m, v):
    y = x * 1.0
    y.masked_fill_(m, v)
    return y
