"""Elementwise coverage: gradients at kinks against torch, forward-replay kernels, dtypes, errors, predicates."""
import numpy as np
import pytest

import tapegrad as tg
from tapegrad._kernels import opcodes as op
from tapegrad._kernels.elementwise import binary_value, unary_value
from tapegrad._kernels.ternary import ternary_forward
from tapegrad._tape import current_tape
from tapegrad.ops import elementwise as ew

torch = pytest.importorskip("torch")
F = torch.nn.functional

KINKS = [-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 6.0, 7.0, 20.0, 25.0]


def _both(fn, *arrays):
    """fn applied in tapegrad and torch to float64 leaves made from arrays; (value, grads) of each."""
    results = []
    for L, lib_fn in ((tg, fn(tg)), (torch, fn(torch))):
        xs = [L.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
        y = lib_fn(*xs)
        seed = np.linspace(0.5, 1.5, int(np.prod(tuple(y.shape)))).reshape(tuple(y.shape))
        y.backward(L.tensor(seed))
        grads = [None if x.grad is None else np.array(x.grad.detach().numpy()) for x in xs]
        results.append((np.array(y.detach().numpy()), grads, y.grad_fn.name()))
    return results


def _assert_same(fn, *arrays):
    (v, g, name), (tv, tgr, tname) = _both(fn, *arrays)
    np.testing.assert_allclose(v, tv, rtol=1e-12, atol=1e-14, equal_nan=True)
    for mine, theirs in zip(g, tgr):
        if theirs is None:
            assert mine is None or not np.any(mine)
        else:
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14, equal_nan=True)
    assert name == tname


def _nnf(L):
    return L.nn.functional if L is torch else ew


UNARY_AT_KINKS = {
    "relu": lambda L: lambda x: L.relu(x),
    "abs": lambda L: lambda x: L.abs(x),
    "sign": lambda L: lambda x: L.sign(x),
    "floor": lambda L: lambda x: L.floor(x),
    "ceil": lambda L: lambda x: L.ceil(x),
    "round": lambda L: lambda x: L.round(x),
    "round_decimals": lambda L: lambda x: L.round(x, decimals=1),
    "round_negative_decimals": lambda L: lambda x: L.round(x * 7, decimals=-1),
    "trunc": lambda L: lambda x: L.trunc(x),
    "frac": lambda L: lambda x: L.frac(x),
    "clamp": lambda L: lambda x: L.clamp(x, -0.5, 0.5),
    "clamp_min": lambda L: lambda x: L.clamp(x, min=0.5),
    "clamp_max": lambda L: lambda x: L.clamp(x, max=-0.5),
    "clamp_empty_range": lambda L: lambda x: L.clamp(x, 1.0, -1.0),
    "clamp_min_fn": lambda L: lambda x: L.clamp_min(x, 0.0),
    "clamp_max_fn": lambda L: lambda x: L.clamp_max(x, 1.0),
    "hardtanh": lambda L: lambda x: _nnf(L).hardtanh(x),
    "hardtanh_bounds": lambda L: lambda x: _nnf(L).hardtanh(x, -0.5, 2.0),
    "relu6": lambda L: lambda x: _nnf(L).relu6(x),
    "leaky_relu": lambda L: lambda x: _nnf(L).leaky_relu(x, 0.2),
    "elu": lambda L: lambda x: _nnf(L).elu(x, 0.5),
    "softplus": lambda L: lambda x: _nnf(L).softplus(x),
    "softplus_threshold": lambda L: lambda x: _nnf(L).softplus(x, beta=2.0, threshold=1.0),
    "gelu": lambda L: lambda x: _nnf(L).gelu(x),
    "gelu_tanh": lambda L: lambda x: _nnf(L).gelu(x, approximate="tanh"),
    "silu": lambda L: lambda x: _nnf(L).silu(x),
    "logsigmoid": lambda L: lambda x: _nnf(L).logsigmoid(x * 20),
    "div_floor_scalar": lambda L: lambda x: L.div(x, 0.5, rounding_mode="floor"),
    "div_trunc_scalar": lambda L: lambda x: L.div(x, -0.5, rounding_mode="trunc"),
    "rsqrt": lambda L: lambda x: L.rsqrt(L.abs(x) + 0.25),
    "exp2": lambda L: lambda x: L.exp2(x),
    "expm1": lambda L: lambda x: L.expm1(x),
    "erf": lambda L: lambda x: L.erf(x),
    "erfc": lambda L: lambda x: L.erfc(x),
    "atan": lambda L: lambda x: L.atan(x),
    "sinh": lambda L: lambda x: L.sinh(x),
    "cosh": lambda L: lambda x: L.cosh(x),
    "asinh": lambda L: lambda x: L.asinh(x),
    "square": lambda L: lambda x: L.square(x),
}


@pytest.mark.parametrize("name", sorted(UNARY_AT_KINKS))
def test_unary_values_and_gradients_at_kinks_match_torch(name):
    _assert_same(UNARY_AT_KINKS[name], KINKS)


@pytest.mark.parametrize("name", ["asin", "acos", "atanh", "acosh", "log2", "log10", "log1p", "tan"])
def test_functions_outside_their_domain_match_torch(name):
    """NaN and inf values (and their gradients) where the real function is undefined or has a pole."""
    points = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0]
    _assert_same(lambda L: lambda x: getattr(L, name)(x), points)


BINARY_AT_TIES = {
    "maximum": lambda L: lambda x, y: L.maximum(x, y),
    "minimum": lambda L: lambda x, y: L.minimum(x, y),
    "clamp_min_tensor": lambda L: lambda x, y: L.clamp_min(x, y),
    "clamp_max_tensor": lambda L: lambda x, y: L.clamp_max(x, y),
    "clamp_tensor_min": lambda L: lambda x, y: L.clamp(x, min=y),
    "clamp_tensor_max": lambda L: lambda x, y: L.clamp(x, max=y),
    "atan2": lambda L: lambda x, y: L.atan2(x, y),
    "hypot": lambda L: lambda x, y: L.hypot(x, y),
    "div_floor": lambda L: lambda x, y: L.div(x, y, rounding_mode="floor"),
    "div_trunc": lambda L: lambda x, y: L.div(x, y, rounding_mode="trunc"),
    "lerp_scalar": lambda L: lambda x, y: L.lerp(x, y, 0.75),
    "pow": lambda L: lambda x, y: L.pow(x, y),
}


@pytest.mark.parametrize("name", sorted(BINARY_AT_TIES))
def test_binary_values_and_gradients_at_ties_match_torch(name):
    """Ties (maximum gives 0.5 to each side), zeros, signs and a NaN."""
    x = [1.0, 0.0, -1.0, 2.0, -0.5, 0.0, 3.0, np.nan, 1.0]
    y = [1.0, 0.0, 2.0, -1.0, -0.5, -2.0, 0.0, 1.0, np.nan]
    _assert_same(BINARY_AT_TIES[name], x, y)


def test_clamp_tensor_bounds_at_ties_and_crossed_bounds_match_torch():
    x = [0.0, 1.0, -1.0, 0.5, 2.0, -2.0, 0.3]
    lo = [0.0, 0.0, 0.0, 1.0, 1.0, -1.0, 0.5]
    hi = [1.0, 1.0, 0.5, 0.0, 1.0, -1.0, 0.1]   # crossed bounds (lo > hi) give max, as in PyTorch
    _assert_same(lambda L: lambda a, b, c: L.clamp(a, b, c), x, lo, hi)


def test_lerp_tensor_weight_and_broadcasting_match_torch():
    _assert_same(lambda L: lambda a, b, w: L.lerp(a, b, w), [[0.0, 1.0, -2.0]], [[1.0], [3.0]], [0.2, 0.5, 0.9])


def test_where_and_masked_fill_broadcast_like_torch():
    cond = np.array([[True], [False]])
    for fn in (lambda L: lambda x, y: L.where(L.tensor(cond), x, y),
               lambda L: lambda x, y: L.where(L.tensor(cond), x, 2.0) * y.sum(),
               lambda L: lambda x, y: x.masked_fill(L.tensor(cond), 3.0) + y,
               lambda L: lambda x, y: x.masked_fill(L.tensor(cond), y.sum())):
        _assert_same(fn, [1.0, -2.0, 3.0], [0.5, 0.25, -1.0])


def test_where_gradient_is_zero_on_the_unselected_side_even_for_nan():
    x = tg.tensor([np.nan, 1.0], requires_grad=True)
    y = tg.tensor([2.0, np.inf], requires_grad=True)
    tg.where(tg.tensor([False, True]), x, y).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0] and y.grad.tolist() == [1.0, 0.0]


# -- forward replay: the value kernels reproduce the eager forward ----------------------------------------------

def _record_of(t):
    tape = current_tape()
    tape.flush()
    return tape, t._id - tape.base


def _replayed(t):
    """Zero t's recorded output values, recompute them with its family's value kernel, return them."""
    tape, i = _record_of(t)
    o = int(tape.ops[i])
    size = int(np.prod(tuple(t.shape)))
    yo = int(tape.off[i])
    eager = tape.vals[yo:yo + size].copy()
    tape.vals[yo:yo + size] = 0.0
    pa = int(tape.a[i]) - tape.base
    pb = int(tape.b[i]) - tape.base if tape.b[i] >= 0 else -1
    fam = o >> 6
    if fam == op.UNARY:
        xa = tape.vals[int(tape.off[pa]):int(tape.off[pa]) + size]
        for k in range(size):
            tape.vals[yo + k] = unary_value(o, xa[k], tape.const[i])
    elif fam == op.BINARY:
        # the inputs are broadcast by hand here, the kernel takes element pairs
        sa, sb = _input_shape(tape, pa), _input_shape(tape, pb)
        xa = np.broadcast_to(tape.vals[int(tape.off[pa]):int(tape.off[pa]) + int(np.prod(sa))].reshape(sa), t.shape)
        xb = np.broadcast_to(tape.vals[int(tape.off[pb]):int(tape.off[pb]) + int(np.prod(sb))].reshape(sb), t.shape)
        for k, (u, v) in enumerate(zip(xa.reshape(-1), xb.reshape(-1))):
            tape.vals[yo + k] = binary_value(o, u, v)
    else:
        assert fam == op.TERNARY
        ternary_forward(o, tape.ints, tape.aux, tape.off, tape.base, i, pa, pb, tape.const[i], tape.vals)
    return eager, tape.vals[yo:yo + size].copy(), op.NAMES[o]


def _input_shape(tape, p):
    aux = int(tape.aux[p])
    nd = int(tape.ints[aux])
    return tuple(int(v) for v in tape.ints[aux + 1:aux + 1 + nd])


_X = [-2.5, -1.0, -0.5, 0.0, 0.3, 0.5, 1.0, 1.5, 2.5, 7.0, 30.0]
_Y = [1.5, -1.0, 0.25, 2.0, 0.3, -0.75, 1.0, 1.5, -2.0, 3.0, 0.5]
REPLAYED = {
    **{n: (lambda n: lambda x, y, w, c: getattr(tg, n)(x))(n) for n in
       ("exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "sign", "tan", "asin", "acos", "atan", "sinh", "cosh",
        "asinh", "acosh", "atanh", "erf", "erfc", "floor", "ceil", "round", "trunc", "frac")},
    "round_decimals": lambda x, y, w, c: tg.round(x, decimals=1),
    "round_negative_decimals": lambda x, y, w, c: tg.round(x, decimals=-1),
    "gelu": lambda x, y, w, c: ew.gelu(x),
    "gelu_tanh": lambda x, y, w, c: ew.gelu(x, approximate="tanh"),
    "silu": lambda x, y, w, c: ew.silu(x),
    "elu": lambda x, y, w, c: ew.elu(x, 0.7),
    "leaky_relu": lambda x, y, w, c: ew.leaky_relu(x, 0.1),
    "logsigmoid": lambda x, y, w, c: ew.logsigmoid(x),
    "clamp_min": lambda x, y, w, c: tg.clamp_min(x, 0.3),
    "clamp_max": lambda x, y, w, c: tg.clamp_max(x, 0.3),
    "atan2": lambda x, y, w, c: tg.atan2(x, y),
    "hypot": lambda x, y, w, c: tg.hypot(x, y[:1]),
    "maximum": lambda x, y, w, c: tg.maximum(x, y),
    "minimum": lambda x, y, w, c: tg.minimum(x[None], y[:, None]),
    "clamp_min_tensor": lambda x, y, w, c: tg.clamp_min(x, y),
    "clamp_max_tensor": lambda x, y, w, c: tg.clamp_max(x, y),
    "div_floor": lambda x, y, w, c: tg.div(x, y, rounding_mode="floor"),
    "div_trunc": lambda x, y, w, c: tg.div(x, y, rounding_mode="trunc"),
    "clamp": lambda x, y, w, c: tg.clamp(x, -0.5, 1.0),
    "clamp_one_bound": lambda x, y, w, c: tg.clamp(x, max=1.0),
    "hardtanh": lambda x, y, w, c: ew.hardtanh(x, -0.5, 1.0),
    "softplus": lambda x, y, w, c: ew.softplus(x, beta=2.0, threshold=3.0),
    "clamp_tensors": lambda x, y, w, c: tg.clamp(x, y, w),
    "clamp_tensor_max_broadcast": lambda x, y, w, c: tg.clamp(x[:, None], max=w[None, :]),
    "where": lambda x, y, w, c: tg.where(c, x, y),
    "where_broadcast": lambda x, y, w, c: tg.where(c[:, None], x[None, :], 0.5),
    "masked_fill": lambda x, y, w, c: x.masked_fill(c, -3.0),
    "masked_fill_tensor": lambda x, y, w, c: x.masked_fill(c, w[2]),
    "lerp_scalar": lambda x, y, w, c: tg.lerp(x, y, 0.7),
    "lerp_tensor": lambda x, y, w, c: tg.lerp(x[:, None], y, w),
}


@pytest.mark.parametrize("name", sorted(REPLAYED))
def test_value_kernels_replay_the_eager_forward(name):
    x = tg.tensor(_X, dtype=tg.float64, requires_grad=True)
    y = tg.tensor(_Y, dtype=tg.float64, requires_grad=True)
    w = tg.tensor(np.linspace(-0.5, 1.5, len(_X)), requires_grad=True)
    c = tg.tensor(np.arange(len(_X)) % 3 == 0)
    with np.errstate(all="ignore"):
        out = REPLAYED[name](x, y, w, c)
    eager, replayed, grad_fn = _replayed(out)
    np.testing.assert_array_equal(eager, np.asarray(out.detach().numpy(), dtype=np.float64).reshape(-1))
    np.testing.assert_allclose(replayed, eager, rtol=1e-15, atol=0, equal_nan=True, err_msg=grad_fn)


# -- dtypes ------------------------------------------------------------------------------------------------------

DTYPE_CASES = {
    "exp2_int": lambda L: L.exp2(L.tensor([1, 2])),
    "erf_int": lambda L: L.erf(L.tensor([1, -2])),
    "rsqrt_int": lambda L: L.rsqrt(L.tensor([1, 4])),
    "sign_int": lambda L: L.sign(L.tensor([3, -2, 0])),
    "floor_int": lambda L: L.floor(L.tensor([3, -2])),
    "round_int": lambda L: L.round(L.tensor([3, -2])),
    "square_int": lambda L: L.square(L.tensor([3, -2])),
    "atan2_int": lambda L: L.atan2(L.tensor([1, -2]), L.tensor([1, 2])),
    "maximum_int_float32": lambda L: L.maximum(L.tensor([1, -2]), L.tensor([1.5, 2.0])),
    "minimum_int": lambda L: L.minimum(L.tensor([1, -2]), L.tensor([0, 5])),
    "where_int_scalar": lambda L: L.where(L.tensor([True, False]), L.tensor([1, 2]), 0.5),
    "where_scalars": lambda L: L.where(L.tensor([True, False]), 1.0, 0.0),
    "where_float32_scalar": lambda L: L.where(L.tensor([True, False]), L.tensor([1.5, 2.0]), 0),
    "clamp_int_float_bound": lambda L: L.clamp(L.tensor([1, 2, 3]), 1.5),
    "clamp_int_int_bounds": lambda L: L.clamp(L.tensor([1, 2, 3]), 2, 2),
    "clamp_min_float32": lambda L: L.clamp_min(L.tensor([1.5, -2.0]), 0),
    "div_floor_int": lambda L: L.div(L.tensor([7, -7]), L.tensor([2, 2]), rounding_mode="floor"),
    "div_trunc_int": lambda L: L.div(L.tensor([7, -7]), 2, rounding_mode="trunc"),
    "masked_fill_int": lambda L: L.tensor([1, 2]).masked_fill(L.tensor([True, False]), 7),
    "lerp_float32": lambda L: L.lerp(L.tensor([0.0, 1.0]), L.tensor([2.0, 3.0]), 0.25),
}


@pytest.mark.parametrize("name", sorted(DTYPE_CASES))
def test_result_dtypes_and_values_match_torch(name):
    mine, theirs = DTYPE_CASES[name](tg), DTYPE_CASES[name](torch)
    assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(np.asarray(mine.numpy(), dtype=np.float64), theirs.double().numpy(), rtol=1e-6)


def test_float32_activation_keeps_float32_gradients():
    x = tg.tensor([-1.0, 0.5, 2.0], dtype=tg.float32, requires_grad=True)
    ew.gelu(ew.softplus(x)).sum().backward()
    assert x.grad.dtype == tg.float32


# -- non-differentiable results ------------------------------------------------------------------------------------

PREDICATES = {
    "isinf": lambda L, a, b: L.isinf(a),
    "isposinf": lambda L, a, b: L.isposinf(a),
    "isneginf": lambda L, a, b: L.isneginf(a),
    "signbit": lambda L, a, b: L.signbit(a),
    "isclose": lambda L, a, b: L.isclose(a, b),
    "isclose_nan": lambda L, a, b: L.isclose(a, b, equal_nan=True, atol=0.1),
    "logical_and": lambda L, a, b: L.logical_and(a, b),
    "logical_or": lambda L, a, b: L.logical_or(a, b),
    "logical_xor": lambda L, a, b: a.logical_xor(b),
    "floor_int_method": lambda L, a, b: (a > 0).long().floor() if L is tg else (a > 0).long().floor(),
}


@pytest.mark.parametrize("name", sorted(PREDICATES))
def test_predicates_match_torch_and_do_not_require_grad(name):
    a = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, 1.0 + 1e-9]
    b = [np.inf, 1.0, np.nan, 0.0, 0.0, 1.05, 1.0]
    mine = PREDICATES[name](tg, tg.tensor(a, requires_grad=True), tg.tensor(b))
    theirs = PREDICATES[name](torch, torch.tensor(a, requires_grad=True), torch.tensor(b))
    assert not mine.requires_grad
    assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_floor_division_operator_records_nothing_but_div_with_rounding_mode_does():
    x = tg.tensor([1.5, -2.5], requires_grad=True)
    assert not (x // 2.0).requires_grad
    y = tg.div(x, 2.0, rounding_mode="floor")
    assert y.grad_fn.name() == "DivBackward2"
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]


# -- in-place variants -------------------------------------------------------------------------------------------

INPLACE = {
    "sin_": lambda L, t: t.sin_(),
    "asin_": lambda L, t: t.asin_(),
    "exp2_": lambda L, t: t.exp2_(),
    "clamp_": lambda L, t: t.clamp_(-0.2, 0.3),
    "clamp_min_": lambda L, t: t.clamp_min_(0.1),
    "masked_fill_": lambda L, t: t.masked_fill_(L.tensor([True, False, True]), 0.5),
    "lerp_": lambda L, t: t.lerp_(L.ones(3, dtype=L.float64), 0.4),
    "floor_": lambda L, t: t.floor_(),
    "hypot_": lambda L, t: t.hypot_(L.full((3,), 0.5, dtype=L.float64)),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants_match_torch(name):
    def fn(L):
        def run(x):
            t = x * 1.0
            INPLACE[name](L, t)
            return t * x
        return run
    _assert_same(fn, [-0.5, 0.25, 0.75])


def test_inplace_on_a_leaf_is_refused_and_integer_in_place_to_float_is_refused():
    x = tg.tensor([0.5], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        x.exp2_()
    with pytest.raises(RuntimeError, match="can't be cast"):
        tg.tensor([1, 2]).exp2_()


# -- errors --------------------------------------------------------------------------------------------------------

def _tape_length():
    tape = current_tape()
    tape.flush()
    return tape.n


ERRORS = {
    "maximum_shapes": (lambda L, x: L.maximum(x, L.ones(3, dtype=L.float64)), RuntimeError,
                       r"size of tensor a \(4\) must match the size of tensor b \(3\) at non-singleton dimension 0"),
    "atan2_shapes": (lambda L, x: L.atan2(x, L.ones(2, dtype=L.float64)), RuntimeError, r"tensor b \(2\)"),
    "where_shapes": (lambda L, x: L.where(L.tensor([True, False]), x, 0.0), RuntimeError, r"tensor b \(4\)"),
    "clamp_shapes": (lambda L, x: L.clamp(x, L.zeros(3, dtype=L.float64), None), RuntimeError, r"tensor b \(3\)"),
    "lerp_shapes": (lambda L, x: L.lerp(x, L.zeros(5, dtype=L.float64), 0.5), RuntimeError, r"tensor b \(5\)"),
    "div_rounding_shapes": (lambda L, x: L.div(x, L.ones(2, dtype=L.float64), rounding_mode="floor"),
                            RuntimeError, r"tensor b \(2\)"),
    "div_rounding_mode": (lambda L, x: L.div(x, 2.0, rounding_mode="bad"), RuntimeError,
                          "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found 'bad'"),
    "gelu_approximate": (lambda L, x: _nnf(L).gelu(x, approximate="bad"), RuntimeError,
                         "approximate argument must be either none or tanh"),
    "gelu_int": (lambda L, x: _nnf(L).gelu(L.tensor([1, 2])), NotImplementedError,
                 "\"GeluKernelImpl\" not implemented for 'Long'"),
    "frac_int": (lambda L, x: L.frac(L.tensor([1, 2])), NotImplementedError,
                 "\"frac_cpu\" not implemented for 'Long'"),
    "hypot_int": (lambda L, x: L.hypot(L.tensor([1, 2]), L.tensor([1, 2])), NotImplementedError,
                  "\"hypot_cpu\" not implemented for 'Long'"),
    "where_condition": (lambda L, x: L.where(x, x, x), RuntimeError,
                        "where expected condition to be a boolean tensor, but got a tensor with dtype Double"),
    "masked_fill_mask": (lambda L, x: x.masked_fill(x, 1.0), RuntimeError,
                         "masked_fill_ only supports boolean masks, but got mask with dtype double"),
    "masked_fill_value": (lambda L, x: x.masked_fill(x > 0, L.ones(2, dtype=L.float64)), RuntimeError,
                          r"masked_fill_ only supports a 0-dimensional value tensor, but got tensor with 1 dimension"),
    "clamp_no_bounds": (lambda L, x: L.clamp(x), RuntimeError, "At least one of 'min' or 'max' must not be None"),
    "clamp_mixed_bounds": (lambda L, x: L.clamp(x, min=0.0, max=x), TypeError, "clamp"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_match_torch_and_leave_the_tape_unchanged(name):
    fn, kind, pattern = ERRORS[name]
    with pytest.raises(kind, match=pattern):
        fn(torch, torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64, requires_grad=True))
    x = tg.tensor([0.5, -1.0, 2.0, 0.0], dtype=tg.float64, requires_grad=True)
    before = _tape_length()
    with pytest.raises(kind, match=pattern):
        fn(tg, x)
    assert _tape_length() == before


def test_celu_refuses_alpha_zero_like_torch():
    with pytest.raises(RuntimeError, match="ZeroDivisionError: alpha cannot be 0 for CELU"):
        tg.nn.functional.celu(tg.tensor([1.0, -1.0], requires_grad=True), alpha=0.0)


@pytest.mark.parametrize("case", ["same_shape", "broadcast", "0-d", "log"])
def test_gradients_at_poles_are_ieee_inf_and_nan_like_torch(case):
    """Backward divides by zero without raising (IEEE inf/nan), in the vectorised, broadcast and 0-d paths."""
    torch = pytest.importorskip("torch")

    def run(L):
        f64 = L.float64
        if case == "same_shape":
            x = L.tensor([1.0, -2.0, 0.0], dtype=f64, requires_grad=True)
            y = L.tensor([0.0, 0.0, 1.0], dtype=f64, requires_grad=True)
            (x / y).sum().backward()
        elif case == "broadcast":
            x = L.tensor([[1.0, 2.0], [3.0, -4.0]], dtype=f64, requires_grad=True)
            y = L.tensor([0.0, 2.0], dtype=f64, requires_grad=True)
            (x / y).sum().backward()
        elif case == "0-d":
            x = L.tensor(1.0, dtype=f64, requires_grad=True)
            y = L.tensor(0.0, dtype=f64, requires_grad=True)
            (x / y + y.log()).backward()
        else:
            x = L.tensor([0.0, 1.0], dtype=f64, requires_grad=True)
            y = L.tensor([2.0, 0.0], dtype=f64, requires_grad=True)
            (x.log() + y.log()).sum().backward()
        return x.grad.numpy(), y.grad.numpy()

    with np.errstate(all="ignore"):
        got = run(tg)
    for g, w in zip(got, run(torch)):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("case", ["log", "sqrt", "rsqrt", "reciprocal", "mul_inf", "where_log", "0-d_log"])
def test_a_zero_gradient_times_an_infinite_derivative_is_nan_like_torch(case):
    """An upstream gradient of 0 reaching a pole (log, sqrt, 1/x at 0, or a product with inf) gives 0 * inf = nan,
    as in PyTorch: the classic nan through torch.where(x > 0, x.log(), 0) included. Eager and compiled alike."""
    torch = pytest.importorskip("torch")
    fns = {"log": lambda L, x: x.log(), "sqrt": lambda L, x: x.sqrt(), "rsqrt": lambda L, x: x.rsqrt(),
           "reciprocal": lambda L, x: x.reciprocal(), "mul_inf": lambda L, x: x * float("inf"),
           "where_log": lambda L, x: L.where(x > 0, x.log(), L.zeros_like(x)), "0-d_log": lambda L, x: x.log()}
    data = np.array(0.0) if case == "0-d_log" else np.array([0.0, 1.0, 2.0])
    weight = np.array(0.0) if case == "0-d_log" else np.array([0.0, 1.0, 0.5])

    def loss(L, x):
        return (fns[case](L, x) * L.tensor(weight, dtype=L.float64)).sum()

    want = torch.tensor(data, requires_grad=True)
    loss(torch, want).backward()
    with np.errstate(all="ignore"):
        x = tg.tensor(data, requires_grad=True)
        loss(tg, x).backward()
        compiled = tg.compile(tg.grad(lambda x: loss(tg, x)))
        replays = [compiled(tg.tensor(data)) for _ in range(3)]
    np.testing.assert_allclose(x.grad.numpy(), want.grad.numpy(), rtol=1e-14, equal_nan=True)
    for g in replays:
        np.testing.assert_allclose(g.numpy(), want.grad.numpy(), rtol=1e-14, equal_nan=True)
    assert np.isnan(want.grad.numpy()).any()
