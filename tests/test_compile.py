"""tg.compile, tg.value_and_grad, tg.grad, tg.vmap and saved traces: replay must equal eager, always."""
import math
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tapegrad as tg
from tapegrad.testing.op_db import OPS

from programs import programs, run_program


def _t(values, rg=False):
    return tg.tensor(np.asarray(values, dtype=np.float64), requires_grad=rg)


def _close(a, b, tol=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# -- every operation: replay equals eager ---------------------------------------------------------------------------

def _perturbed(args, rng):
    """The same arguments with new values of the same shapes (scaled, so signs and domains are kept)."""
    out = []
    for x in args:
        if isinstance(x, tg.Tensor) and x.is_floating_point():
            d = x.detach().numpy()
            factor = rng.uniform(0.97, 1.03, size=d.shape)
            out.append(tg.tensor(d * factor, dtype=x.dtype, requires_grad=x.requires_grad))
        else:
            out.append(x)
    return out


def _flat(out):
    return [out] if isinstance(out, tg.Tensor) else [o for o in out]


def _weighted_sum(fn):
    """A scalar function of fn's float outputs, with fixed weights so every output element matters."""
    def loss(*args):
        total = None
        for o in _flat(fn(*args)):
            if not o.is_floating_point():
                continue
            w = tg.tensor(np.linspace(0.5, 1.5, o.numel()).reshape(tuple(o.shape)), dtype=o.dtype)
            term = (o * w).sum()
            total = term if total is None else total + term
        return total
    return loss


def _garbage_in_adjoints(compiled):
    """Fill this thread's adjoint buffers of every trace of `compiled` with nan. A gradient program (from a trace's
    second replay on) zeroes only the adjoint spans that no kernel overwrites first: any adjoint it reads before
    writing would now spread nan into the gradients."""
    for traces in compiled.traces.values():
        for trace in traces:
            work = getattr(trace.local, "work", None)
            if work is not None:
                work[1][:] = np.nan


def _check_gradient_program(compiled, vag, args, rng):
    """A third call (the first through the trace's gradient program) over nan-filled adjoint buffers equals eager."""
    new = _perturbed(args, rng)
    _garbage_in_adjoints(compiled)
    value, grads = compiled(*new)
    want_value, want_grads = vag(*new)
    _close(value.numpy(), want_value.numpy())
    for g, w in zip(grads, want_grads):
        _close(g.numpy(), w.numpy())


@pytest.mark.parametrize("spec", OPS, ids=lambda s: s.name)
def test_replay_equals_eager(spec):
    """For every operation in the op table: compiled forward and compiled value_and_grad, replayed on new
    values, equal the eager results."""
    fn = spec.bind(tg)

    @settings(max_examples=10)
    @given(args=spec.args, seed=st.integers(0, 2 ** 31))
    def prop(args, seed):
        rng = np.random.default_rng(seed)
        compiled = tg.compile(fn)
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # an eager fallback would hide a missing replay kernel
            compiled(*args)
            new = _perturbed(args, rng)
            got = compiled(*new)
            assert compiled.stats.replays == 1, compiled.stats
        want = fn(*new)
        for g, w in zip(_flat(got), _flat(want)):
            assert g.dtype == w.dtype
            _close(g.detach().numpy(), w.detach().numpy())

        positions = [k for k, x in enumerate(args) if isinstance(x, tg.Tensor) and x.requires_grad]
        if not positions or _weighted_sum(fn)(*new) is None:
            return
        vag = tg.value_and_grad(_weighted_sum(fn), argnums=tuple(positions))
        compiled_vag = tg.compile(vag)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled_vag(*args)
            value, grads = compiled_vag(*new)
        want_value, want_grads = vag(*new)
        _close(value.numpy(), want_value.numpy())
        for g, w in zip(grads, want_grads):
            _close(g.numpy(), w.numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _check_gradient_program(compiled_vag, vag, args, rng)
    prop()


# -- the compiled call inside an eager graph -------------------------------------------------------------------------

@given(program=programs(), seed=st.integers(0, 2 ** 31))
def test_random_programs_replay_equal_eager(program, seed):
    """Random compositions of table ops (with reductions, views and in-place writes): the compiled value and
    gradients, replayed on new inputs, equal eager ones."""
    arrs, steps = program
    rng = np.random.default_rng(seed)

    def loss(*xs):
        out = run_program(tg, list(xs), steps)
        return (out * tg.tensor(np.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)))).sum()

    vag = tg.value_and_grad(loss, argnums=tuple(range(len(arrs))))
    compiled = tg.compile(vag)
    first = [_t(a, rg=True) for a in arrs]
    new = _perturbed(first, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(*first)
        value, grads = compiled(*new)
    want_value, want_grads = vag(*new)
    assert compiled.stats.replays + compiled.stats.guard_failures == 1, compiled.stats
    _close(value.numpy(), want_value.numpy())
    for g, w in zip(grads, want_grads):
        _close(g.numpy(), w.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_gradient_program(compiled, vag, first, rng)


def test_compiled_call_is_one_node_and_mixes_with_eager_code():
    def f(x, y):
        return (x * y).sin() + x ** 2
    cf = tg.compile(f)
    x = _t([0.3, -1.2, 2.0], rg=True)
    y = _t([1.5, 0.5, -0.7])
    for _ in range(3):   # record, then replay
        x.grad = None
        out = cf(x, y)
        assert out.grad_fn.name() == "CompiledFunctionBackward"
        (out.exp() * 2).sum().backward()
        x2 = x.detach().requires_grad_()
        (f(x2, y).exp() * 2).sum().backward()
        _close(x.grad.numpy(), x2.grad.numpy())
    assert cf.stats.traces == 1 and cf.stats.replays == 2


def test_no_grad_inputs_give_plain_tensors():
    cf = tg.compile(lambda x: x * 2)
    out = cf(_t([1.0, 2.0]))
    assert not out.requires_grad and out.grad_fn is None
    with tg.no_grad():
        out = cf(_t([1.0, 2.0], rg=True))
    assert not out.requires_grad


def test_multiple_outputs_and_structure():
    cf = tg.compile(lambda x: (x + 1, x * 3))
    x = _t([1.0, 2.0], rg=True)
    a, b = cf(x)
    a, b = cf(x)
    (a.sum() + b.sum()).backward()
    _close(x.grad.numpy(), [4.0, 4.0])
    listed = tg.compile(lambda x: [x.exp()])(x)
    assert isinstance(listed, list)


def test_captured_parameters_are_read_every_call_and_get_gradients():
    w = _t([1.0, 2.0, 3.0], rg=True)
    cf = tg.compile(lambda x: (x * w).sum())
    x = _t([1.0, 1.0, 1.0])
    cf(x).backward()
    _close(w.grad.numpy(), [1.0, 1.0, 1.0])
    with tg.no_grad():
        w.mul_(2.0)                 # an optimizer-style in-place update
    _close(cf(x).item(), 12.0)
    assert cf.stats.traces == 1


def test_value_and_grad_and_grad_eager_and_compiled():
    def f(x, y):
        return (x ** 2 * y).sum()
    x, y = _t([1.0, 2.0]), _t([3.0, 4.0])
    v, g = tg.value_and_grad(f)(x, y)
    _close(v.item(), 19.0)
    _close(g.numpy(), [6.0, 16.0])
    gx, gy = tg.grad(f, argnums=(0, 1))(x, y)
    _close(gy.numpy(), [1.0, 4.0])
    cg = tg.compile(tg.grad(f, argnums=(0, 1)))
    for _ in range(2):
        gx2, gy2 = cg(x, y)
        _close(gx2.numpy(), gx.numpy())
        _close(gy2.numpy(), gy.numpy())
    assert not x.requires_grad and x.grad is None


def test_value_and_grad_errors():
    with pytest.raises(RuntimeError, match="single-element tensor, got shape \\(2,\\)"):
        tg.value_and_grad(lambda x: x * 2)(_t([1.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point tensor"):
        tg.value_and_grad(lambda x: x.sum())(tg.tensor([1, 2]))
    with pytest.raises(ValueError, match="argnums 3 out of range"):
        tg.value_and_grad(lambda x: x.sum(), argnums=3)(_t([1.0]))
    compiled = tg.compile(tg.value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 1)))
    with pytest.raises(TypeError, match="argument 1 must be a floating-point tensor .* got a float"):
        compiled(_t([1.0]), 0.5)        # checked before recording, as eager checks it
    assert compiled.stats.traces == 0


def test_logistic_map_chain_matches_eager():
    def chain(r, x):
        for _ in range(1000):
            x = r * x * (1 - x)
        return x
    cf = tg.compile(tg.value_and_grad(chain, argnums=(0, 1)))
    for r in (3.7, 3.2, 2.5):
        args = (_t(r), _t(0.3))
        v, (gr, gx) = cf(*args)
        ev, (er, ex) = tg.value_and_grad(chain, argnums=(0, 1))(*args)
        _close(v.numpy(), ev.numpy())
        _close(gr.numpy(), er.numpy(), tol=1e-6)
        _close(gx.numpy(), ex.numpy(), tol=1e-6)
    assert cf.stats.traces == 1


@given(seed=st.integers(0, 2 ** 31))
def test_0d_gradient_programs_store_first_writes_over_garbage_adjoints(seed):
    """0-d rows of a gradient program store an adjoint's first write (no zeroing pass): an input used twice by one
    row (x * x), by a unary and a binary row, by a constant-operand row, and one no row reads, over nan adjoints."""
    def f(r, x, w, unused):
        y = x * x
        for _ in range(3):
            y = r * y * (1 - y)
        z = (2.0 - w).exp() * w + w / r
        return y + z - x.sin()

    vag = tg.value_and_grad(f, argnums=(0, 1, 2, 3))
    cf = tg.compile(vag)
    args = (_t(0.9), _t(0.4), _t(-0.3), _t(1.5))
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a replay that fails verification would go eager and hide the error
        cf(*args)
        cf(*_perturbed(args, rng))
        _check_gradient_program(cf, vag, args, rng)
    assert cf.stats.traces == 1 and cf.stats.eager_calls == 0


_DIMS = [None, 0, 1, 2, (0, 1), (1, 2), (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("reduce,dims", [(r, d) for r in ("sum", "mean", "amax", "amin", "inf_norm", "neg_inf_norm")
                                         for d in _DIMS] + [("max", d) for d in (None, 0, 1, 2)], ids=str)
def test_replayed_reductions_match_eager_with_ties_and_nans(reduce, dims):
    """The reduction kernels walk x as (outer, reduced, inner) blocks when the reduced axes are adjacent and fall
    back to a slot table when they are not ((0, 2)); ties share the gradient and a NaN wins in both, as eager."""
    fns = {"sum": lambda x: x.sum() if dims is None else x.sum(dims),
           "mean": lambda x: x.mean() if dims is None else x.mean(dims),
           "amax": lambda x: x.amax() if dims is None else x.amax(dims),
           "amin": lambda x: x.amin() if dims is None else x.amin(dims),
           "max": lambda x: x.max() if dims is None else x.max(dims).values,
           "inf_norm": lambda x: tg.linalg.vector_norm(x, float("inf"), dim=dims),
           "neg_inf_norm": lambda x: tg.linalg.vector_norm(x, float("-inf"), dim=dims)}
    f = fns[reduce]

    def loss(x):
        y = f(x * 1.0)
        return (y * tg.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)))).sum()

    rng = np.random.default_rng(5)
    base = rng.integers(-3, 4, size=(4, 5, 6)).astype(np.float64)   # small integers: many ties
    with_nan = base.copy()
    with_nan[1, 2, 3] = np.nan
    cf = tg.compile(tg.value_and_grad(loss))
    for values in (base, base[::-1].copy(), with_nan, rng.standard_normal((4, 5, 6))):
        got_value, got_grad = cf(_t(values))
        want_value, want_grad = tg.value_and_grad(loss)(_t(values))
        np.testing.assert_allclose(got_value.numpy(), want_value.numpy(), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got_grad.numpy(), want_grad.numpy(), rtol=1e-12, equal_nan=True)
    assert cf.stats.traces == 1


_SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -1.0, 1.0])


@settings(max_examples=200)
@given(length=st.integers(1, 45), step=st.integers(1, 3), seed=st.integers(0, 2**31),
       specials=st.lists(st.tuples(st.integers(0, 134), _SPECIAL), max_size=4))
def test_the_selection_kernel_picks_what_numpy_picks_at_any_length_stride_and_special_value(length, step, seed,
                                                                                            specials):
    """max/min and the +-inf norms run eight running selections side by side and merge them, then the tail: a
    NaN or an extreme anywhere (in a lane, in the tail, first, last) must still win, as numpy's does."""
    from tapegrad._kernels.movement import _select_run
    base = np.random.default_rng(seed).standard_normal(length * step)
    for position, value in specials:
        base[position % base.size] = value
    x = base[::step]
    for larger, norm, want in ((True, False, np.max(x)), (False, False, np.min(x)),
                               (True, True, np.max(np.abs(x))), (False, True, np.min(np.abs(x)))):
        got = _select_run(x, larger, norm)
        assert got == want or (np.isnan(got) and np.isnan(want)), (larger, norm, x)


@pytest.mark.parametrize("nan_at", [None, 0, 5, 999, 1002])
def test_replayed_max_and_min_of_a_long_vector_equal_numpy(nan_at):
    """1,003 values: whole groups of eight lanes and a tail of three; the gradient goes to the selected element."""
    rng = np.random.default_rng(8)
    values = rng.standard_normal(1003)
    if nan_at is not None:
        values[nan_at] = np.nan
    cf = tg.compile(tg.value_and_grad(lambda x: x.max() - 2 * x.min()))
    for v in (values, values[::-1].copy(), values * 3):
        got_value, got_grad = cf(_t(v))
        want_grad = np.zeros_like(v)
        if nan_at is None:
            want_grad[np.argmax(v)] += 1.0
            want_grad[np.argmin(v)] -= 2.0
            _close(got_value.item(), v.max() - 2 * v.min(), tol=0)
            _close(got_grad.numpy(), want_grad, tol=0)
        else:
            assert np.isnan(got_value.item())
            want_value, want = tg.value_and_grad(lambda x: x.max() - 2 * x.min())(_t(v))
            np.testing.assert_array_equal(got_grad.numpy(), want.numpy())
    assert cf.stats.traces == 1


def test_a_single_maximum_with_an_infinite_gradient_gives_nan_elsewhere_as_pytorch_does():
    """PyTorch spreads max's gradient as mask * (g / count), so g = inf puts 0 * inf = nan on every other element;
    the kernel's shortcut for a single maximum (write only the hit) must not apply then."""
    v = np.random.default_rng(9).standard_normal(100)
    want = np.where(v == v.max(), np.inf, np.nan)
    for grad in (tg.grad(lambda x: x.max() * math.inf), tg.compile(tg.grad(lambda x: x.max() * math.inf))):
        for _ in range(3):
            np.testing.assert_array_equal(grad(_t(v)).numpy(), want)


@pytest.mark.parametrize("shapes", [((6, 7), (7,)), ((7,), (6, 7)), ((2, 3, 7), (3, 7)), ((3, 7), (2, 3, 7)),
                                    ((6, 1), (1,)), ((6, 7), (6, 1)), ((6, 7), ()), ((), (6, 7)), ((1, 7), (6, 1)),
                                    ((2, 1, 7), (3, 7)), ((6, 7), (6, 7))], ids=str)
@pytest.mark.parametrize("opname", ["add", "sub", "rsub", "mul", "div"])
def test_replayed_broadcast_arithmetic_matches_eager(shapes, opname):
    """Forward replay runs add/sub/rsub/mul/div row by row over contiguous or repeated (stride 0) inputs, and in
    whole runs where one input is the other's trailing dims (a bias); the results and gradients equal eager ones,
    division by zero included (IEEE inf/nan, as PyTorch)."""
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "rsub": lambda a, b: tg.rsub(a, b),
           "mul": lambda a, b: a * b, "div": lambda a, b: a / b}
    f = ops[opname]

    def loss(a, b):
        y = f(a * 1.0, b * 1.0)
        return (y * tg.tensor(np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)))).sum()

    rng = np.random.default_rng(9)
    cf = tg.compile(tg.value_and_grad(loss, argnums=(0, 1)))
    for trial in range(3):
        a, b = (rng.standard_normal(s) for s in shapes)
        if trial == 2:
            b = np.zeros(shapes[1])      # x / 0
        with np.errstate(all="ignore"):
            got_value, got_grads = cf(_t(a), _t(b))
            want_value, want_grads = tg.value_and_grad(loss, argnums=(0, 1))(_t(a), _t(b))
        np.testing.assert_allclose(got_value.numpy(), want_value.numpy(), rtol=1e-12, equal_nan=True)
        for g, w in zip(got_grads, want_grads):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-12, equal_nan=True)


def _ulps(got, want):
    """|got - want| in units of want's last place (0 where both are the same nan, inf or zero)."""
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        return np.where(same, 0.0, np.abs(got - want) / np.spacing(np.abs(want)))


def _libm_exp(v):
    try:
        return math.exp(v)
    except OverflowError:
        return np.inf


def _nan_outside_domain(libm):
    """The C library's function through math, with nan where math raises instead (sin(inf))."""
    def f(v):
        try:
            return libm(v)
        except ValueError:
            return math.nan
    return f


_HALF_PI_MULTIPLES = np.arange(1.0, 64.0) * (np.pi / 2)
_TRIG_SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, 355.0, 1e5, -1e5, np.nextafter(1e5, 2e5),
                 1e6, 1e22, -1e300, *_HALF_PI_MULTIPLES, *np.nextafter(_HALF_PI_MULTIPLES, 0.0),
                 *(_HALF_PI_MULTIPLES + 1e-9), *(_HALF_PI_MULTIPLES - 3e-7), *(-_HALF_PI_MULTIPLES[::7] - 1e-6)]

# per function: the C library's version, ranges its formula treats differently, special values, the ulp bound
_ARITH_FUNCTIONS = {
    "tanh": (math.tanh, (1e-300, 1e-8, 0.3, 0.625, 1.0, 3.0, 10.0, 25.0),
             [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-310, 0.625, -0.625, 19.06, 20.0, 20.5, 710.0,
              -1e308], 4.0),
    "exp": (_libm_exp, (1e-8, 0.35, 1.0, 20.0, 700.0, 745.0),
            [0.0, -0.0, np.inf, -np.inf, np.nan, 709.782712893384, 709.7827128933841, 710.0, -708.4, -745.1332191019411,
             -745.1332191019412, -746.0, 1e-310, 1.0, -1.0, 0.5 * np.log(2.0)], 1.0),
    # sin and cos: the C library's own past 1e5 and within 2**-30 of a nonzero multiple of pi/2 (exact there)
    "sin": (_nan_outside_domain(math.sin), (1e-300, 1e-8, 0.78, 1.6, 10.0, 1000.0, 1e5), _TRIG_SPECIAL, 2.0),
    "cos": (_nan_outside_domain(math.cos), (1e-300, 1e-8, 0.78, 1.6, 10.0, 1000.0, 1e5), _TRIG_SPECIAL, 2.0),
}


def test_the_power_of_two_in_exp_and_tanh_is_exact_over_the_normal_range():
    """pow2_select writes k + 1023 into the exponent bits through the shifter 1.5 * 2**52; every normal power of two
    it is asked for (exp's halves reach -538 and 512) must come out exact."""
    from numba import njit
    from tapegrad._kernels.elementwise import pow2_select

    @njit
    def powers(ks):
        out = np.empty_like(ks)
        for i in range(ks.shape[0]):
            out[i] = pow2_select(ks[i])
        return out

    ks = np.arange(-1022, 1024, dtype=np.float64)
    np.testing.assert_array_equal(powers(ks), np.ldexp(1.0, ks.astype(np.int64)))


@pytest.mark.parametrize("name", list(_ARITH_FUNCTIONS))
def test_replayed_transcendentals_are_within_a_few_ulp_of_the_c_library(name):
    """The replay's tanh, exp, sin and cos are arithmetic that vectorises, not the C library's call per element:
    compare the two over every range their formulas treat differently (one vector each, so that each takes its
    vectorised loop), near overflow and underflow, and at signed zeros, infinities, nan and subnormals; in eager
    mode, which computes them with the same kernel (so eager and replay agree exactly); sin and cos also in the
    backward (cos and -sin)."""
    libm, scales, special, bound = _ARITH_FUNCTIONS[name]
    rng = np.random.default_rng(2)
    derivative = {"sin": _ARITH_FUNCTIONS["cos"][0], "cos": lambda v: -_ARITH_FUNCTIONS["sin"][0](v)}.get(name)
    cf = tg.compile(lambda t: getattr(t, name)())
    cf_grad = tg.compile(tg.grad(lambda t: getattr(t, name)().sum()))
    for x in [rng.uniform(-s, s, 20_000) for s in scales] + [np.array(special)]:
        want = np.array([libm(v) for v in x])
        got = [cf(_t(x)).numpy() for _ in range(2)]
        eager = getattr(_t(x), name)().numpy()
        assert np.array_equal(eager, got[0], equal_nan=True)
        got.append(eager)
        for g in got:
            assert _ulps(g, want).max() <= bound
            numbers = ~np.isnan(want)
            assert np.array_equal(np.signbit(g[numbers]), np.signbit(want[numbers]))     # tanh(-0) is -0
        if derivative is not None:
            want_grad = np.array([derivative(v) for v in x])
            assert _ulps(cf_grad(_t(x)).numpy(), want_grad).max() <= bound
            assert _ulps(tg.grad(lambda t: getattr(t, name)().sum())(_t(x)).numpy(), want_grad).max() <= bound
    assert cf.stats.replays >= 1


@pytest.mark.parametrize("name", list(_ARITH_FUNCTIONS))
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=16))
def test_replayed_transcendentals_match_the_c_library_on_any_float(name, values):
    """Any float, through both compiled paths: 0-d records (one value each) and a vector record."""
    from tapegrad._kernels import opcodes as op
    from tapegrad._kernels.elementwise import unary_apply
    libm, _, _, bound = _ARITH_FUNCTIONS[name]
    x = np.array(values, dtype=np.float64)
    want = np.array([libm(v) for v in x])
    assert _ulps(unary_apply(getattr(op, name.upper()), x, 0.0), want).max() <= bound
    with np.errstate(over="ignore"):
        got = tg.compile(lambda t: [getattr(t[i], name)() for i in range(len(values))] + [getattr(t, name)()])(_t(x))
    assert _ulps(np.array([g.item() for g in got[:-1]]), want).max() <= bound
    assert _ulps(got[-1].numpy(), want).max() <= bound


_VIEWS = {
    "every_other": (lambda x: x[::2], (9,)),
    "slice_2d": (lambda x: x[1:, ::3], (5, 7)),
    "transpose": (lambda x: x.t(), (4, 6)),
    "column": (lambda x: x[:, 2], (5, 4)),
    "permute_3d": (lambda x: x.permute(2, 0, 1), (3, 4, 5)),
    "slices_4d": (lambda x: x[:, 1:, ::2, 1], (2, 3, 5, 4)),
    "expand": (lambda x: x.expand(3, 4, 5), (4, 1)),
    "diagonal": (lambda x: x.diagonal(), (5, 5)),
    "select_0d": (lambda x: x[2, 1], (3, 3)),
}


@pytest.mark.parametrize("name", list(_VIEWS))
def test_replayed_views_equal_eager_bit_for_bit(name):
    """Views replay row by row over their last dim (1-d and 2-d views by arithmetic, deeper ones by an odometer);
    values and gradients, repeats of an expand included, equal eager ones exactly on every call, the first
    (full) sweep and the later (reached rows only) ones alike."""
    view, shape = _VIEWS[name]

    def loss(x):
        y = view(x * 1.0)
        w = tg.tensor(np.linspace(-1.0, 2.0, max(y.numel(), 1)).reshape(tuple(y.shape)))
        return (y * w).sum()

    rng = np.random.default_rng(4)
    cf = tg.compile(tg.value_and_grad(loss))
    for _ in range(4):
        x = _t(rng.standard_normal(shape))
        got_value, got_grad = cf(x)
        want_value, want_grad = tg.value_and_grad(loss)(x)
        np.testing.assert_array_equal(got_value.numpy(), want_value.numpy())
        np.testing.assert_array_equal(got_grad.numpy(), want_grad.numpy())
    assert cf.stats.replays == 3 and cf.stats.traces == 1


@pytest.mark.parametrize("opname", ["mul", "add", "sub", "rsub", "square", "cube", "div"])
def test_replayed_arithmetic_with_a_python_scalar_equals_eager_bit_for_bit(opname):
    """x * c, x + c, x - c, c - x and x ** 2 replay outside the per-element opcode chain, forward and backward;
    values and gradients equal eager ones exactly, zero upstream gradients and an infinite constant included."""
    ops = {"mul": lambda x, c: x * c, "add": lambda x, c: x + c, "sub": lambda x, c: x - c,
           "rsub": lambda x, c: c - x, "square": lambda x, c: x ** 2 + c, "cube": lambda x, c: x ** 3 * c,
           "div": lambda x, c: x / c}
    f = ops[opname]
    rng = np.random.default_rng(5)
    for c in (1.7, np.inf):
        w = tg.tensor(np.where(np.arange(12) % 3 == 0, 0.0, rng.standard_normal(12)))

        def loss(x):
            return (f(x * 1.0, c) * w).sum()

        cf = tg.compile(tg.value_and_grad(loss))
        for _ in range(3):
            x = _t(rng.standard_normal(12))
            with np.errstate(all="ignore"):
                got_value, got_grad = cf(x)
                want_value, want_grad = tg.value_and_grad(loss)(x)
            np.testing.assert_array_equal(got_value.numpy(), want_value.numpy())
            np.testing.assert_array_equal(got_grad.numpy(), want_grad.numpy())


def test_a_call_like_the_last_one_replays_the_same_trace_and_any_other_finds_its_own():
    """The fast path for a call with the last call's argument shapes, dtypes and requires_grad flags must not let
    any other call through: each signature keeps its own trace and gets its own results."""
    cf = tg.compile(lambda x, y: (x * y).sum())
    a, b = _t([1.0, 2.0]), _t([3.0, 4.0])
    for _ in range(3):
        _close(cf(a, b).item(), 11.0)
    assert cf.stats.traces == 1 and cf.stats.replays == 2
    out = cf(_t([1.0, 2.0], rg=True), b)                       # requires_grad differs: a new trace
    assert out.grad_fn is not None and cf.stats.traces == 2
    _close(cf(_t([1.0, 2.0, 3.0]), _t([1.0, 1.0, 1.0])).item(), 6.0)    # shape differs
    f32 = cf(tg.tensor([1.0, 2.0], dtype=tg.float32), tg.tensor([3.0, 4.0], dtype=tg.float32))   # dtype differs
    assert f32.dtype == tg.float32
    _close(cf(a, 2.0).item(), 6.0)                             # a Python number where a tensor was
    assert cf.stats.traces == 5
    _close(cf(a, b).item(), 11.0)
    assert cf.stats.traces == 5


def test_a_differentiable_call_through_the_fast_path_records_its_node_and_backpropagates():
    cf = tg.compile(lambda x, y: (x * y.exp()).sum())
    for k in range(5):
        a, b = _t([1.0, 2.0 + k], rg=True), _t([0.5, -0.25 * k], rg=True)
        out = cf(a, b)
        assert out.grad_fn.name() == "CompiledFunctionBackward"
        out.backward()
        _close(a.grad.numpy(), np.exp(b.detach().numpy()))
        _close(b.grad.numpy(), a.detach().numpy() * np.exp(b.detach().numpy()))
    assert cf._last is not None and cf.stats.traces == 1 and cf.stats.replays == 4


def test_a_loop_over_the_very_same_inputs_takes_the_fast_path_and_still_verifies_new_values():
    """A trace is checked against one eager call on its first call with new values. A loop that passes the very
    same inputs never gets there and must still take the last-call path; new values are then checked once."""
    calls = []

    def f(x):
        calls.append(1)
        return (x * x).sum()

    cf = tg.compile(tg.value_and_grad(f))
    x = _t([1.0, 2.0])
    for _ in range(3):
        value, grad = cf(x)
        _close(value.item(), 5.0)
        _close(grad.numpy(), [2.0, 4.0])
    assert cf._last is not None and not cf._last[0].verified and len(calls) == 1
    value, grad = cf(_t([3.0, 4.0]))            # new values: one eager call checks the replay
    _close(value.item(), 25.0)
    _close(grad.numpy(), [6.0, 8.0])
    assert cf._last[0].verified and len(calls) == 2
    cf(_t([5.0, 6.0]))
    assert len(calls) == 2 and cf.stats.traces == 1


def test_a_loop_over_the_very_same_inputs_gets_a_lean_call_that_lets_only_those_inputs_through():
    """Before verification the lean call takes only the recorded arrays, unchanged; the same tensor changed in
    place, or another tensor, goes the general way and is checked against eager once."""
    calls = []

    def f(x, w):
        calls.append(1)
        return (x * w * x).sum()

    cf = tg.compile(tg.value_and_grad(f, argnums=(0, 1)))
    x, w = _t([1.0, 2.0]), _t([3.0, 4.0])
    for _ in range(4):
        value, (gx, gw) = cf(x, w)
        _close(value.item(), 19.0)
        _close(gx.numpy(), [6.0, 16.0])
        _close(gw.numpy(), [1.0, 4.0])
    trace = cf._last[0]
    assert not trace.verified and trace.local.call and trace.local.call.unverified and len(calls) == 1
    with tg.no_grad():
        w.add_(1.0)                               # the same tensor, new values: not the lean call's to take
    value, (gx, gw) = cf(x, w)
    _close(value.item(), 4.0 + 20.0)
    _close(gx.numpy(), [8.0, 20.0])
    assert trace.verified and len(calls) == 2
    value, (gx, gw) = cf(x, _t([1.0, 1.0]))       # now the verified lean call
    _close(value.item(), 5.0)
    _close(gw.numpy(), [1.0, 4.0])
    assert not trace.local.call.unverified and len(calls) == 2 and cf.stats.traces == 1


def test_the_unverified_lean_call_takes_no_recorded_tensor_whose_requires_grad_changed():
    cf = tg.compile(tg.value_and_grad(lambda x: (x * x).sum()))
    x = _t([1.0, 2.0])
    for _ in range(3):
        cf(x)
    assert cf._last[0].local.call.unverified
    x.requires_grad_(True)                        # part of the signature: a new trace, not the lean call
    value, g = cf(x)
    _close(value.item(), 5.0)
    _close(g.numpy(), [2.0, 4.0])
    assert cf.stats.traces == 2


def _mixed_ranks(s, m, unread, v):
    return s * (m * m).sum() + (m.sum(0) * v).sum() + s * s


@pytest.mark.parametrize("kind", ["one argument", "two arguments", "grad only", "one of two", "mixed ranks"])
def test_a_verified_value_and_grad_trace_gets_a_lean_call_that_matches_eager_and_lets_other_calls_through(kind):
    """After its first check against eager, a value-and-grad trace is called through one Python function built
    for it (per thread). It must give eager's results on every new value, and hand every call it cannot take
    (another shape, dtype or requires_grad, a Python number, a different number of arguments) to the general
    path, which records or finds the right trace."""
    def two(x, y):
        return (x * (y * y + 1.0) + x * x).sum()

    fn, argnums, make = {
        "one argument": (_rosenbrock, 0, lambda v: (_t(v),)),
        "two arguments": (two, (0, 1), lambda v: (_t(v), _t(v[::-1] * 0.5))),
        "grad only": (_rosenbrock, 0, lambda v: (_t(v),)),
        "one of two": (two, 1, lambda v: (_t(v), _t(v[::-1] * 0.5))),
        # a 0-d tensor, a matrix, an argument the function never reads (zero gradient) and a vector
        "mixed ranks": (_mixed_ranks, (0, 1, 2, 3), lambda v: (_t(v[0]), _t(np.outer(v[:2], v)), _t(v), _t(v))),
    }[kind]
    transform = tg.grad if kind == "grad only" else tg.value_and_grad
    cf = tg.compile(transform(fn, argnums=argnums))
    eager = transform(fn, argnums=argnums)

    def check(args):
        got, want = cf(*args), eager(*args)
        for g, w in zip(_flat_tensors(got), _flat_tensors(want)):
            assert g.shape == w.shape and g.dtype == w.dtype and g.requires_grad == w.requires_grad
            # float32: the replay computes in float64 and rounds once, eager rounds every step
            _close(g.detach().numpy(), w.detach().numpy(), tol=1e-5 if w.dtype == tg.float32 else 1e-9)

    rng = np.random.default_rng(4)
    for _ in range(4):
        check(make(rng.uniform(-2, 2, size=6)))
    trace = cf._last[0]
    assert trace.verified and callable(trace.local.call)
    replays = cf.stats.replays
    for _ in range(5):
        check(make(rng.uniform(-2, 2, size=6)))
    assert cf.stats.replays == replays + 5 and cf.stats.traces == 1
    check(make(rng.uniform(-2, 2, size=7)))                           # another shape: a new trace
    check(tuple(tg.tensor(a.numpy(), dtype=tg.float32) for a in make(rng.uniform(-2, 2, size=6))))  # dtype
    check(tuple(_t(a.numpy(), rg=True) for a in make(rng.uniform(-2, 2, size=6))))          # requires_grad
    assert cf.stats.traces == 4
    if kind in ("two arguments", "one of two", "mixed ranks"):
        x = make(rng.uniform(-2, 2, size=6))[0]
        _same_outcome(cf, eager, (x, 0.5))                         # a Python number: eager's error
        _same_outcome(cf, eager, (x,))                             # an argument short: eager's error
    else:
        _same_outcome(cf, eager, ())                               # no arguments: eager's error
    check(make(rng.uniform(-2, 2, size=6)))                            # and back to the first trace
    assert cf.stats.traces == 4


def test_the_lean_call_makes_result_handles_like_wrap():
    """The lean call writes handle creation out inline (tensor.leaf_handle_source): every slot must be set, to
    what _wrap sets, or a result would raise or misbehave far from here."""
    from tapegrad.tensor import _wrap, leaf_handle_source
    data = np.arange(3.0)
    scope = {"Tensor": tg.Tensor, "_new_object": object.__new__, "data": data}
    exec(leaf_handle_source("made", "data"), scope)
    made, wrapped = scope["made"], _wrap(data)
    for name in tg.Tensor.__slots__:
        if name != "__weakref__":
            assert getattr(made, name) is getattr(wrapped, name) or getattr(made, name) == getattr(wrapped, name)
    assert made.is_leaf and not made.requires_grad and made.grad is None and made._version == 0


def _same_outcome(compiled, eager, args):
    """The compiled function raises what the eager one raises on these arguments (the general path's job)."""
    with pytest.raises(Exception) as eager_error:
        eager(*args)
    with pytest.raises(type(eager_error.value)):
        compiled(*args)


def _flat_tensors(result):
    if isinstance(result, tg.Tensor):
        return [result]
    return [t for part in result for t in _flat_tensors(part)]


def test_a_guard_failing_on_the_lean_call_records_the_other_path_and_both_stay_correct():
    def f(x):
        if x.sum() > 0:
            return (x * x).sum()
        return (x * 3.0).sum()

    cf = tg.compile(tg.value_and_grad(f))
    for v in ([1.0, 2.0], [2.0, 3.0], [3.0, 1.0]):
        cf(_t(v))
    assert callable(cf._last[0].local.call)
    value, grad = cf(_t([-1.0, -2.0]))                                 # the lean call's guard fails
    _close(value.item(), -9.0)
    _close(grad.numpy(), [3.0, 3.0])
    assert cf.stats.traces == 2 and cf.stats.guard_failures == 1
    for v in ([1.0, 2.0], [-4.0, 1.0], [2.0, 2.0]):
        value, grad = cf(_t(v))
        want_value, want_grad = tg.value_and_grad(f)(_t(v))
        _close(value.item(), want_value.item())
        _close(grad.numpy(), want_grad.numpy())
    assert cf.stats.traces == 2


@pytest.mark.parametrize("f", [lambda x: (x * x).sum(), lambda x: (x * x * 3.0).sum() + x.sum(),
                               lambda x: ((x + x) * x).mean(), lambda x: (x / x.exp()).sum() + (x - x).sum()],
                         ids=["x*x", "x*x*3+x", "(x+x)*x", "x/exp(x)+(x-x)"])
def test_a_gradient_program_is_right_when_both_inputs_of_a_row_are_one_tensor(f):
    """The first row to write an input's adjoint stores into it; when a and b are the same record, only the write
    through a may store (the write through b adds to it), on vectors of every length the loops split at."""
    rng = np.random.default_rng(3)
    vag = tg.value_and_grad(f)
    compiled = tg.compile(vag)
    for n in (1, 3, 8, 37, 1000):
        x = _t(rng.uniform(0.5, 1.5, n))
        compiled(x)
        compiled(_t(rng.uniform(0.5, 1.5, n)))
        _check_gradient_program(compiled, vag, [x], rng)


@pytest.mark.parametrize("f,kinds,rows_only", [
    (lambda x: (x[1:3] * x[2:4]).sum() + x[0].mean(), {"slice", "sum", "binary"}, True),
    (lambda x: x[:, 1:].sum() + (1.0 - x[2:]).sum(), {"slice", "sum", "unary"}, False),   # a strided view, a run
    (lambda x: x[2].sum() * 3.0, {"slice", "sum"}, True),             # only a slice reads x: the rest stays zero
    (lambda x: x.sum(0, keepdim=True).sum() + x.mean(), {"sum"}, False),
    (lambda x: (x * x).sum() * x[0, 0] - x[1, 2], {"sum", "binary"}, True),   # 0-d rows between vector rows
], ids=["runs of rows", "columns then rows", "one row", "sums", "0-d and vector rows"])
def test_gradient_programs_run_slices_and_whole_sums_straight_from_their_rows(f, kinds, rows_only):
    """Views that read one contiguous run of their input and sums of a whole tensor run straight from their program
    rows: a slice adds into an adjoint zeroed up front, a whole sum stores its first write. Over nan adjoints,
    the gradients equal eager's, also where no row writes (the part of x no slice reads). A trace made only of
    such rows (and 0-d arithmetic) runs them in the value-and-gradient kernel itself, without the forward
    replay's and the sweep's loops: the same checks cover that path."""
    from tapegrad._kernels.program import KIND, VECTOR_BINARY, VECTOR_SLICE, VECTOR_SUM, VECTOR_UNARY, runs_from_rows
    from tapegrad._kernels.replay import _TABLE_ROWS_ONLY
    rng = np.random.default_rng(5)
    vag = tg.value_and_grad(f)
    compiled = tg.compile(vag)
    x = _t(rng.standard_normal((5, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled(x)
        compiled(_t(rng.standard_normal((5, 4))))
        for _ in range(3):
            _check_gradient_program(compiled, vag, [x], rng)
    trace = next(iter(compiled.traces.values()))[0]
    names = {VECTOR_SLICE: "slice", VECTOR_SUM: "sum", VECTOR_UNARY: "unary", VECTOR_BINARY: "binary"}
    assert kinds <= {names.get(k) for k in trace.back[:, KIND]}
    assert runs_from_rows(trace.prog, trace.back) == rows_only
    assert trace.local.lean[4][_TABLE_ROWS_ONLY] == rows_only     # what the kernel is told
    assert compiled.stats.traces == 1 and compiled.stats.eager_calls == 0


def test_large_gradients_handed_over_stay_the_callers_while_later_calls_run():
    """Large float64 gradients come back as views of an adjoint buffer (no copy); a buffer is reused only once
    nothing refers to it, so gradients a caller keeps never change, even when the caller writes into them."""
    rng = np.random.default_rng(5)

    def f(x, b):
        return ((x + b) * x).sum(1).mean() + x.max() + (b * b).sum()

    vag = tg.value_and_grad(f, argnums=(0, 1))
    compiled = tg.compile(vag)
    inputs = [(_t(rng.standard_normal((200, 300))), _t(rng.standard_normal(300))) for _ in range(6)]
    kept = []
    for k, (x, b) in enumerate(inputs):
        value, (gx, gb) = compiled(x, b)
        if k % 2 == 0:
            gx.mul_(0.0)       # the caller's own array: writing into it must not reach later calls
        kept.append((k, gx, gb))
        if k == 3:
            del kept[:2]       # let two buffers go back while two results are still held
    assert compiled.stats.traces == 1
    for k, gx, gb in kept:
        want_value, (want_gx, want_gb) = vag(*inputs[k])
        _close(gx.numpy(), 0.0 * want_gx.numpy() if k % 2 == 0 else want_gx.numpy())
        _close(gb.numpy(), want_gb.numpy())
    value, (gx, gb) = compiled(*inputs[0])
    want_value, (want_gx, want_gb) = vag(*inputs[0])
    _close(value.numpy(), want_value.numpy())
    _close(gx.numpy(), want_gx.numpy())
    _close(gb.numpy(), want_gb.numpy())


def test_one_input_asked_for_twice_gets_two_gradient_arrays():
    """argnums=(0, 0): two gradients of one input are two arrays (never two views of one buffer)."""
    rng = np.random.default_rng(6)
    compiled = tg.compile(tg.value_and_grad(lambda x, y: (x * y).sum(), argnums=(0, 0)))
    x, y = _t(rng.random((200, 300))), _t(rng.random((200, 300)))
    for _ in range(4):
        value, (g1, g2) = compiled(x, y)
    g1.mul_(2.0)
    _close(g1.numpy(), 2.0 * y.numpy())
    _close(g2.numpy(), y.numpy())


def test_threads_each_get_their_own_lean_call_and_their_own_results():
    """The lean call writes its thread's buffers; two threads calling one compiled function in a tight loop must
    never see each other's values."""
    cf = tg.compile(tg.value_and_grad(_rosenbrock))
    errors = []
    start = threading.Barrier(3)

    def worker(scale):
        try:
            rng = np.random.default_rng(int(scale * 10))
            points = [rng.uniform(-2, 2, size=8) * scale for _ in range(300)]
            start.wait()
            for p in points:
                value, grad = cf(_t(p))
                want_value, want_grad = tg.value_and_grad(_rosenbrock)(_t(p))
                _close(value.item(), want_value.item())
                _close(grad.numpy(), want_grad.numpy())
        except Exception as err:   # surfaced in the main thread
            errors.append(err)

    cf(_t(np.ones(8)))
    cf(_t(np.full(8, 0.5)))             # verified before the threads start
    threads = [threading.Thread(target=worker, args=(scale,)) for scale in (0.5, 1.0, 1.5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert cf.stats.traces == 1


@pytest.mark.parametrize("layout", ["contiguous", "every other", "reversed", "read-only"])
def test_the_lean_call_copies_a_vector_argument_of_any_layout_into_the_kernel(layout):
    """The lean call hands the first float64 vector argument to the kernel, which copies it in itself (any strides,
    read-only); the other arguments (a matrix first, a second vector) are copied by Python. Every call's values and
    gradients equal eager's, and each gradient is an array of its own."""
    def f(m, x, y):
        return (m.sum(0) * x * y).sum() + (x[1:] * x[:-1]).sum() - (2.0 - y).sum()

    def vector(rng, n):
        if layout == "every other":
            return tg.from_numpy(rng.standard_normal(2 * n)[::2])
        if layout == "reversed":
            return tg.from_numpy(rng.standard_normal(n)[::-1])
        v = rng.standard_normal(n)
        if layout == "read-only":
            v.flags.writeable = False
        return tg.from_numpy(v)

    rng = np.random.default_rng(8)
    vag = tg.value_and_grad(f, argnums=(0, 1, 2))
    cf = tg.compile(vag)
    calls = [(_t(rng.standard_normal((3, 9))), vector(rng, 9), vector(rng, 9)) for _ in range(6)]
    got = [cf(*args) for args in calls]
    assert callable(cf._last[0].local.call) and cf.stats.traces == 1
    for args, (value, grads) in zip(calls, got):
        want_value, want_grads = vag(*args)
        _close(value.numpy(), want_value.numpy())
        for g, w in zip(grads, want_grads):
            _close(g.numpy(), w.numpy())
    assert len({id(g._data) for _, grads in got for g in grads}) == 3 * len(calls)


def test_the_replay_kernels_argument_table_refuses_arrays_of_another_type():
    """value_and_grad_table reads raw addresses; a table is never built over an array of a type it does not say."""
    from tapegrad._kernels.replay import pack_arguments
    cf = tg.compile(tg.value_and_grad(_rosenbrock))
    for _ in range(3):
        cf(_t(np.linspace(-1, 1, 6)))
    args = cf._last[0].local.lean[2]
    assert pack_arguments(args).dtype == np.int64
    for k, bad in [(3, args[3].astype(np.int64)), (11, args[11][::2]), (0, args[0].ravel())]:
        with pytest.raises(TypeError, match=f"argument {k} is a"):
            pack_arguments(args[:k] + (bad,) + args[k + 1:])


# -- guards: control flow on values ------------------------------------------------------------------------------------

def _branchy(x):
    if (x.sum() > 0).item():
        return x * 2
    return -x


def _loop(x):
    n = 0
    while x.abs().sum() < 10.0:
        x = x * 1.5
        n += 1
    return x + n


def _abs_by_comparison(x):
    return x if x > 0 else -x


def _early_exit(x):
    y = x
    for k in range(5):
        y = y * x
        if y.sum() > 100:
            return y
    return y - 1


@pytest.mark.parametrize("fn", [_branchy, _loop, _abs_by_comparison, _early_exit])
def test_guards_rerecord_and_stay_correct(fn):
    cf = tg.compile(fn)
    rng = np.random.default_rng(0)
    shape = () if fn is _abs_by_comparison else (3,)
    for _ in range(30):
        x = _t(rng.uniform(-3, 3, size=shape))
        _close(cf(x).numpy(), fn(x).numpy())
    assert cf.stats.traces >= 2, cf.stats          # both paths were recorded
    assert cf.stats.guard_failures >= 1
    assert cf.stats.replays >= 10                   # and reused


def test_guarded_gradients_follow_the_taken_path():
    cf = tg.compile(tg.value_and_grad(_abs_by_comparison))
    for v in (2.0, -3.0, 5.0, -0.5):
        _, g = cf(_t(v))
        _close(g.item(), np.sign(v))


def test_mask_from_comparison_is_recomputed_on_replay():
    cf = tg.compile(lambda x: (x * (x > 0)).sum())
    cf(_t([1.0, -1.0, 2.0]))
    _close(cf(_t([-1.0, 3.0, 2.0])).item(), 5.0)


def test_untraceable_value_falls_back_to_eager_with_a_warning():
    def f(x):
        k = x.detach().numpy().argmax()        # numpy() is guarded: a new argmax re-records
        return x[int(k)] * 2
    cf = tg.compile(f)
    for v in ([1.0, 5.0, 2.0], [7.0, 0.0, 1.0], [1.0, 5.0, 2.0]):
        _close(cf(_t(v)).numpy(), f(_t(v)).numpy())


def test_warns_once_when_recording_keeps_happening():
    cf = tg.compile(lambda x: x * float(x))      # float() guards the exact value: every new value re-records
    with pytest.warns(RuntimeWarning, match="compiling does not pay off"):
        for k in range(12):
            cf(_t(float(k)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cf(_t(99.0))                             # only once


def test_signature_includes_non_tensor_arguments():
    cf = tg.compile(lambda x, k, mode="a": x * k if mode == "a" else x + k)
    x = _t([1.0, 2.0])
    _close(cf(x, 2).numpy(), [2.0, 4.0])
    _close(cf(x, 3).numpy(), [3.0, 6.0])
    _close(cf(x, 3, mode="b").numpy(), [4.0, 5.0])
    assert cf.stats.traces == 3
    with pytest.raises(TypeError, match="pass tensors positionally"):
        cf(x, 1, mode=x)


def test_integer_tensor_arguments_are_part_of_the_signature():
    cf = tg.compile(lambda x, idx: x[idx].sum())
    x = _t([1.0, 2.0, 3.0])
    _close(cf(x, tg.tensor([0, 2])).item(), 4.0)
    _close(cf(x, tg.tensor([1, 2])).item(), 5.0)


# -- errors and documented behaviour ------------------------------------------------------------------------------------

def test_non_tensor_result_is_an_error():
    with pytest.raises(TypeError, match="must return a Tensor"):
        tg.compile(lambda x: 3.0)(_t([1.0]))


def test_mutating_an_input_is_an_error_and_leaves_it_unchanged():
    def f(x):
        x.mul_(2)
        return x
    x = _t([1.0, 2.0])
    with pytest.raises(RuntimeError, match="modified an argument in place"):
        tg.compile(f)(x)
    _close(x.numpy(), [1.0, 2.0])


def test_random_draws_are_frozen_at_recording():
    tg.manual_seed(0)
    cf = tg.compile(lambda x: x + tg.randn(3, dtype=tg.float64))
    x = _t([0.0, 0.0, 0.0])
    first = cf(x).numpy()
    _close(cf(x).numpy(), first)


def test_functions_with_python_backward_run_eagerly_with_a_warning():
    class Double(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2
    cf = tg.compile(lambda x: Double.apply(x).sum())
    with pytest.warns(RuntimeWarning, match="autograd.Function"):
        out = cf(_t([1.0, 2.0], rg=True))
    out.backward()
    _close(cf(_t([1.0, 3.0])).item(), 8.0)
    assert cf.stats.eager_calls >= 1


# -- vmap ------------------------------------------------------------------------------------------------------------

def _rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def test_vmap_equals_a_loop():
    xs = _t(np.random.default_rng(1).uniform(-2, 2, size=(64, 10)))
    cf = tg.compile(tg.value_and_grad(_rosenbrock))
    values, grads = tg.vmap(cf)(xs)
    for r in range(64):
        v, g = tg.value_and_grad(_rosenbrock)(xs[r])
        _close(values[r].item(), v.item())
        _close(grads[r].numpy(), g.numpy())
    fwd = tg.vmap(tg.compile(_rosenbrock))(xs)
    _close(fwd.numpy(), [_rosenbrock(xs[r]).item() for r in range(64)])


def test_vmap_rows_with_failing_guards_take_their_own_path():
    cf = tg.compile(_abs_by_comparison)
    xs = _t([1.0, -2.0, 3.0, -4.0])
    _close(tg.vmap(cf)(xs).numpy(), [1.0, 2.0, 3.0, 4.0])


def test_vmap_of_value_and_grad_with_several_argnums_failing_guards_and_a_shared_argument():
    def f(x, w, scale):
        y = (x * w).sum()
        return y * scale if y > 0 else -y * scale     # rows with y <= 0 fail the recorded guard

    xs = _t(np.random.default_rng(2).uniform(-1, 1, size=(12, 3)))
    ws = _t(np.random.default_rng(3).uniform(-1, 1, size=(12, 3)))
    scale = _t(2.5)
    cf = tg.compile(tg.value_and_grad(f, argnums=(0, 1)))
    values, (gx, gw) = tg.vmap(cf, in_dims=(0, 0, None))(xs, ws, scale)
    assert values.shape == (12,) and gx.shape == (12, 3) and gw.shape == (12, 3)
    for r in range(12):
        v, (ex, ew) = tg.value_and_grad(f, argnums=(0, 1))(xs[r], ws[r], scale)
        _close(values[r].item(), v.item())
        _close(gx[r].numpy(), ex.numpy())
        _close(gw[r].numpy(), ew.numpy())
    assert cf.stats.guard_failures > 0


def test_vmap_in_dims():
    cf = tg.compile(lambda x, y: (x * y).sum())
    xs = _t(np.arange(6.0).reshape(3, 2))
    _close(tg.vmap(cf, in_dims=(0, None))(xs, _t([1.0, 10.0])).numpy(), [10.0, 32.0, 54.0])
    with pytest.raises(ValueError, match="share the size of dim 0"):
        tg.vmap(cf)(xs, _t([1.0, 10.0]))


def test_vmap_gradients_of_an_unused_and_a_float32_argument_over_rows_that_do_not_split_evenly():
    def f(x, w, unused):
        return (x * w).sum() + (x ** 2).sum()

    rng = np.random.default_rng(4)
    xs = _t(rng.uniform(-1, 1, size=(37, 5)))       # 37 rows: no even split over the kernel's chunks
    ws = tg.tensor(rng.uniform(-1, 1, size=(37, 5)).astype(np.float32))
    us = _t(rng.uniform(-1, 1, size=(37, 2)))
    cf = tg.compile(tg.value_and_grad(f, argnums=(0, 1, 2)))
    values, (gx, gw, gu) = tg.vmap(cf)(xs, ws, us)
    assert gw.dtype == tg.float32 and gx.dtype == tg.float64
    for r in range(37):
        v, (ex, ew, eu) = tg.value_and_grad(f, argnums=(0, 1, 2))(xs[r], ws[r], us[r])
        _close(values[r].item(), v.item())
        _close(gx[r].numpy(), ex.numpy())
        _close(gw[r].numpy(), ew.numpy(), tol=1e-6)
        _close(gu[r].numpy(), np.zeros(2))


def test_vmap_of_several_float32_outputs_of_any_shape_and_of_0d_rows():
    def f(x, w):
        y = x.reshape(2, 3) * w
        return y.sum(0), (y ** 2).mean(), y.exp()

    rng = np.random.default_rng(5)
    xs = tg.tensor(rng.normal(size=(11, 6)), dtype=tg.float32)
    w = tg.tensor(rng.normal(size=(3,)), dtype=tg.float32)
    a, b, c = tg.vmap(tg.compile(f), in_dims=(0, None))(xs, w)
    assert a.shape == (11, 3) and b.shape == (11,) and c.shape == (11, 2, 3) and c.dtype == tg.float32
    for r in range(11):
        for got, want in zip((a[r], b[r], c[r]), f(xs[r], w)):
            _close(got.numpy(), want.numpy(), tol=1e-5)
    s = np.random.default_rng(6).normal(size=7)
    values, grads = tg.vmap(tg.compile(tg.value_and_grad(lambda t: (t * t).sin())))(_t(s))
    _close(values.numpy(), np.sin(s * s))
    _close(grads.numpy(), 2 * s * np.cos(s * s))


def test_vmap_reads_the_current_value_of_a_captured_tensor():
    c = _t([1.0, 2.0, 3.0])
    cf = tg.compile(tg.value_and_grad(lambda x: (x * c).sum()))
    xs = _t(np.arange(12.0).reshape(4, 3))
    values, grads = tg.vmap(cf)(xs)
    _close(values.numpy(), xs.numpy() @ c.numpy())
    _close(grads.numpy(), np.tile(c.numpy(), (4, 1)))
    with tg.no_grad():
        c.mul_(2.0)
    values, grads = tg.vmap(cf)(xs)
    _close(values.numpy(), xs.numpy() @ [2.0, 4.0, 6.0])
    _close(grads.numpy(), np.tile([2.0, 4.0, 6.0], (4, 1)))


# -- save / load -----------------------------------------------------------------------------------------------------

def test_save_and_load_in_another_process(tmp_path):
    cf = tg.compile(tg.value_and_grad(_rosenbrock))
    x = _t(np.linspace(-1, 1, 8))
    cf(x)
    path = tmp_path / "rosen.npz"
    cf.save(path)
    y = np.linspace(0.5, -0.5, 8)
    v, g = tg.value_and_grad(_rosenbrock)(_t(y))
    code = ("import sys, numpy as np, tapegrad as tg\n"
            f"f = tg.load_compiled({str(path)!r})\n"
            f"v, g = f(tg.tensor(np.linspace(0.5, -0.5, 8), dtype=tg.float64))\n"
            "print(repr(v.item())); print(repr(g.numpy().tolist()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    _close(float(out[0]), v.item())
    _close(eval(out[1]), g.numpy())


def test_corrupted_or_mismatched_files_give_clear_errors(tmp_path):
    cf = tg.compile(_rosenbrock)
    cf(_t(np.ones(4)))
    path = tmp_path / "t.npz"
    cf.save(path)
    loaded = tg.load_compiled(path)
    with pytest.raises(TypeError, match="argument 0 must be a tapegrad.float64 tensor of shape \\(4,\\)"):
        loaded(_t(np.ones(5)))
    data = dict(np.load(path))
    data["vals"] = data["vals"] + 1.0
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match="corrupted"):
        tg.load_compiled(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="not a readable tapegrad trace"):
        tg.load_compiled(tmp_path / "junk.npz")


# -- threads ------------------------------------------------------------------------------------------------------------

def test_threads_compile_and_replay_concurrently():
    cf = tg.compile(tg.value_and_grad(_rosenbrock))
    errors = []

    def worker(seed):
        try:
            rng = np.random.default_rng(seed)
            for _ in range(20):
                x = _t(rng.uniform(-2, 2, size=6))
                v, g = cf(x)
                ev, eg = tg.value_and_grad(_rosenbrock)(x)
                _close(v.item(), ev.item())
                _close(g.numpy(), eg.numpy())
            xs = _t(rng.uniform(-2, 2, size=(9, 6)))
            values, grads = tg.vmap(cf)(xs)           # the threads share cf's trace: one parallel replay at a time
            for r in range(9):
                ev, eg = tg.value_and_grad(_rosenbrock)(xs[r])
                _close(values[r].item(), ev.item())
                _close(grads[r].numpy(), eg.numpy())
            own = tg.compile(lambda x: (x.sin() * seed).sum())
            for _ in range(5):
                x = _t(rng.uniform(-2, 2, size=3))
                _close(own(x).item(), (x.sin() * seed).sum().item())
        except Exception as err:   # surfaced in the main thread
            errors.append(err)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_compile_example_prints_what_eager_code_computes():
    import contextlib
    import io
    import pathlib
    import runpy
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "compile_rosenbrock.py"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("error")
        namespace = runpy.run_path(str(path), run_name="__main__")
    x = tg.zeros(10, dtype=tg.float64)
    for _ in range(2000):
        f, g = tg.value_and_grad(namespace["rosenbrock"])(x)
        x = x - 1e-3 * g
    assert out.getvalue() == (
        f"f after 2000 steps: {f.item():.6f}\n"
        "Stats(traces=1, replays=1999, guard_failures=0, eager_calls=0)\n"
        "vmap: (1000,) (1000, 10)\n"
        "tensor([1., 4.]) tensor([1., 2.]) tensor([9., 1.])\n"
        "Stats(traces=2, replays=1, guard_failures=1, eager_calls=0)\n")
