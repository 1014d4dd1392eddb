"""Reductions, selections and scans against PyTorch: zeros, ties and NaNs in the gradients, index semantics and
non-differentiable results, errors (message and an unchanged tape), and the forward replay kernels."""
import math
import re
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad._kernels import opcodes as op
from tapegrad._kernels.common import params_at
from tapegrad._kernels.movement import reduce_forward
from tapegrad._kernels.order import order_forward
from tapegrad._tape import current_tape
from tapegrad.ops.reduce import vector_norm

torch = pytest.importorskip("torch")

NAN = float("nan")


def _pair(values, requires_grad=True):
    arr = np.array(values, dtype=np.float64)
    return tg.tensor(arr, requires_grad=requires_grad), torch.tensor(arr, requires_grad=requires_grad)


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got.detach().numpy(), dtype=np.float64),
                               want.detach().numpy().astype(np.float64), rtol=1e-12, atol=1e-14, equal_nan=True)


def _same(got, want):
    """Identical values, shape and dtype (indices, bools, counts)."""
    g = np.asarray(got.numpy())
    w = want.numpy()
    assert g.shape == w.shape and str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (got, want)
    np.testing.assert_array_equal(g, w)


def _grads_match(fn, values, seed=None):
    """fn on both libraries: same values, same gradient (NaNs included) for a seeded backward."""
    x, t = _pair(values)
    y, r = fn(tg, x), fn(torch, t)
    _close(y, r)
    g = np.ones(tuple(r.shape)) if seed is None else np.asarray(seed, dtype=np.float64)
    y.backward(tg.tensor(g))
    r.backward(torch.tensor(g))
    _close(x.grad, t.grad)
    assert y.grad_fn.name() == r.grad_fn.name()


# -- gradients at zeros, ties and NaNs ------------------------------------------------------------------------------

@pytest.mark.parametrize("values", [[2.0, 0.0, 3.0, -1.5], [0.0, 4.0, 0.0, 2.0], [[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]],
                                    [[1.5, 2.0], [0.0, -3.0]], [0.0], [[0.0, 0.0], [0.0, 1.0]]])
def test_prod_gradients_with_zeros_match_torch(values):
    _grads_match(lambda L, x: L.prod(x), values)
    x = np.array(values)
    for d in range(x.ndim):
        _grads_match(lambda L, x: L.prod(x, d), values, seed=np.arange(1.0, 1.0 + x.size // x.shape[d]).reshape(
            np.delete(np.array(x.shape), d)))
        _grads_match(lambda L, x: x.prod(d, keepdim=True), values)


@pytest.mark.parametrize("values", [[0.0, 2.0, 3.0], [2.0, 0.0, 3.0, 4.0], [2.0, 0.0, 3.0, 0.0, 5.0],
                                    [[1.0, 0.0, 2.0], [0.0, 0.5, 3.0]], [1.5, -2.0, 0.5], [0.0]])
def test_cumprod_gradients_with_zeros_match_torch(values):
    x = np.array(values)
    for d in range(x.ndim):
        _grads_match(lambda L, x: L.cumprod(x, d), values, seed=np.linspace(0.5, 2.0, x.size).reshape(x.shape))


TIES = [[3.0, 1.0, 3.0, 2.0], [[2.0, 5.0, 5.0], [5.0, 1.0, 5.0]], [1.0, 1.0, 1.0]]


@pytest.mark.parametrize("values", TIES)
def test_tied_extremes_share_the_gradient_like_torch(values):
    """amax/amin and whole-tensor max/min/median split the gradient evenly among tied elements."""
    for fn in (lambda L, x: L.max(x), lambda L, x: x.min(), lambda L, x: L.amax(x), lambda L, x: x.amin(0),
               lambda L, x: L.amax(x, -1, keepdim=True), lambda L, x: L.median(x), lambda L, x: L.norm(x, math.inf),
               lambda L, x: L.norm(x, -math.inf, -1)):
        _grads_match(fn, values)


@pytest.mark.parametrize("values", TIES)
def test_max_along_a_dim_sends_the_gradient_to_the_returned_index(values):
    # (among tied elements PyTorch's median, kthvalue and topk pick an unspecified one: not compared here)
    for fn in (lambda L, x: L.max(x, 0).values, lambda L, x: x.min(-1)[0],
               lambda L, x: L.sort(x, 0, descending=True).values, lambda L, x: L.sort(x, -1).values):
        _grads_match(fn, values, seed=None)


@pytest.mark.parametrize("values", [[1.0, NAN, 3.0, NAN], [[NAN, 2.0], [1.0, 4.0]], [[1.0, 2.0], [3.0, NAN]]])
def test_nan_propagates_like_torch(values):
    for fn in (lambda L, x: L.max(x), lambda L, x: L.min(x), lambda L, x: L.amax(x, 0), lambda L, x: L.amin(x),
               lambda L, x: L.max(x, -1).values, lambda L, x: L.min(x, 0).values, lambda L, x: L.median(x),
               lambda L, x: L.median(x, -1).values, lambda L, x: L.sort(x).values,
               lambda L, x: L.sort(x, 0, descending=True).values, lambda L, x: L.cumsum(x, 0),
               lambda L, x: L.norm(x, math.inf), lambda L, x: L.logsumexp(x, -1)):
        _grads_match(fn, values)
    x, t = _pair(values, requires_grad=False)
    for fn in (lambda L, x: L.max(x, -1).indices, lambda L, x: L.argmax(x), lambda L, x: L.argmin(x, 0),
               lambda L, x: L.sort(x, descending=True).indices, lambda L, x: L.median(x, 0).indices):
        _same(fn(tg, x), fn(torch, t))


def test_std_of_a_constant_slice_has_zero_gradient_like_torch():
    _grads_match(lambda L, x: L.std(x, 1), [[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])


def test_norm_gradients_at_zero_match_torch():
    for p in (2, 1, 3, 1.5, 0.5, math.inf):
        _grads_match(lambda L, x: L.norm(x, p), [0.0, 0.0, 0.0])
        _grads_match(lambda L, x: L.norm(x, p, 1), [[0.0, 0.0], [1.0, -2.0]])


def test_logsumexp_with_infinities_matches_torch():
    _grads_match(lambda L, x: L.logsumexp(x, 1), [[-math.inf, -math.inf], [1.0, -math.inf]])
    _grads_match(lambda L, x: L.logsumexp(x, 0), [1000.0, 1001.0])


# -- values, index semantics and non-differentiable results --------------------------------------------------------

X = np.array([[3.0, 1.0, 3.0, 2.0], [0.0, -1.0, 5.0, 0.0], [2.0, 2.0, -1.0, 2.0]])
X_DISTINCT = np.array([[3.0, 1.0, 4.0, 2.0], [0.0, -1.0, 5.0, 0.5], [2.5, 1.5, -2.0, 6.0]])


# PyTorch defines which tied element max/min (the first) and sort (stable order) return; median, kthvalue and
# topk pick an unspecified one of tied elements, so those are compared on distinct values only
PAIRS_WITH_TIES = [
    lambda L, x: L.max(x, 1), lambda L, x: x.min(0, keepdim=True), lambda L, x: L.sort(x, 1),
    lambda L, x: x.sort(0, descending=True), lambda L, x: L.sort(x, descending=True, stable=True),
    lambda L, x: x.max(-1, True)]
PAIRS_DISTINCT = [
    lambda L, x: L.median(x, 1), lambda L, x: x.median(0, True), lambda L, x: L.kthvalue(x, 3, 1),
    lambda L, x: L.topk(x, 2), lambda L, x: L.topk(x, 2, 0, largest=False)]


@pytest.mark.parametrize("call, data", [(c, X) for c in PAIRS_WITH_TIES] +
                         [(c, X_DISTINCT) for c in PAIRS_WITH_TIES + PAIRS_DISTINCT])
def test_values_and_indices_pairs_match_torch(call, data):
    x, t = _pair(data, requires_grad=False)
    got, want = call(tg, x), call(torch, t)
    assert type(got).__name__ == type(want).__name__ and got._fields == ("values", "indices")
    _close(got.values, want.values)
    _same(got.indices, want.indices)
    _same(got[1], want[1])


@pytest.mark.parametrize("call", [
    lambda L, x: L.argmax(x), lambda L, x: L.argmax(x, 1), lambda L, x: x.argmin(0, keepdim=True),
    lambda L, x: L.argmax(x, keepdim=True), lambda L, x: L.argsort(x), lambda L, x: x.argsort(0, descending=True),
    lambda L, x: L.all(x), lambda L, x: L.all(x, 1), lambda L, x: L.any(x > 2.5, 0, keepdim=True),
    lambda L, x: x.any(), lambda L, x: L.all(x, (0, 1)), lambda L, x: L.count_nonzero(x),
    lambda L, x: L.count_nonzero(x, 1), lambda L, x: x.count_nonzero((0, 1)), lambda L, x: L.unique(x),
    lambda L, x: L.unique(x, return_counts=True)[1], lambda L, x: L.unique(x, return_inverse=True)[1],
    lambda L, x: L.unique(x, sorted=True, return_inverse=True, return_counts=True, dim=0)[1],
    lambda L, x: L.unique(x, dim=1), lambda L, x: L.prod(x.to(L.int64), 1), lambda L, x: L.sum(x > 0, 0),
    lambda L, x: L.cumsum(x.to(L.int32), 1), lambda L, x: x.to(L.int64).max(), lambda L, x: x.to(L.int64).amin(1),
    lambda L, x: L.all(x.to(L.uint8)), lambda L, x: L.median(x.to(L.int64)), lambda L, x: L.logsumexp(x.to(L.int64), 1),
])
def test_non_differentiable_results_match_torch(call):
    x, t = _pair(X, requires_grad=False)
    got, want = call(tg, x), call(torch, t)
    if want.dtype.is_floating_point:
        _close(got, want)
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    else:
        _same(got, want)
    assert not got.requires_grad


def test_indices_and_masks_never_require_grad():
    x = tg.tensor(X, requires_grad=True)
    for t in (x.max(1).indices, x.sort(0)[1], x.topk(1)[1], x.argmax(), x.all(), x.unique(), x.count_nonzero()):
        assert not t.requires_grad and t.grad_fn is None


@pytest.mark.parametrize("call", [
    lambda L, x: L.max(x, 0), lambda L, x: L.max(x, -1), lambda L, x: L.sort(x, 0), lambda L, x: L.topk(x, 1),
    lambda L, x: L.topk(x, 0), lambda L, x: L.median(x, 0), lambda L, x: L.kthvalue(x, 1, -1),
    lambda L, x: L.cumsum(x, 0), lambda L, x: L.cumprod(x, -1), lambda L, x: L.sum(x, 0), lambda L, x: L.amax(x, 0),
    lambda L, x: L.logsumexp(x, 0), lambda L, x: L.max(x), lambda L, x: L.median(x), lambda L, x: L.prod(x, 0)])
def test_zero_dim_inputs_with_dim_0_and_minus_1(call):
    x, t = _pair(2.5)
    got, want = call(tg, x), call(torch, t)
    if isinstance(want, tuple):
        _close(got[0], want[0])
        _same(got[1], want[1])
        got, want = got[0], want[0]
    else:
        _close(got, want)
    assert got.shape == tuple(want.shape) == ()
    got.backward()
    want.backward()
    _close(x.grad, t.grad)
    assert got.grad_fn.name() == want.grad_fn.name()


@pytest.mark.parametrize("call", [
    lambda L, x: L.sum(x), lambda L, x: L.sum(x, 0), lambda L, x: L.mean(x, 1), lambda L, x: L.prod(x),
    lambda L, x: L.prod(x, 0), lambda L, x: L.logsumexp(x, 0), lambda L, x: L.logsumexp(x, 1), lambda L, x: L.norm(x),
    lambda L, x: L.norm(x, 1, 1), lambda L, x: L.amax(x, 1), lambda L, x: L.max(x, 1).values,
    lambda L, x: L.sort(x, 0).values, lambda L, x: L.topk(x, 1).values, lambda L, x: L.cumsum(x, 0),
    lambda L, x: L.cumprod(x, 1), lambda L, x: L.median(x), lambda L, x: L.std(x, 1), lambda L, x: L.kthvalue(x, 1).values])
def test_empty_tensors_match_torch(call):
    x, t = _pair(np.zeros((0, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, want = call(tg, x), call(torch, t)
    _close(got, want)
    assert got.shape == tuple(want.shape) and got.grad_fn.name() == want.grad_fn.name()
    got.sum().backward()
    want.sum().backward()
    _close(x.grad, t.grad)


def test_empty_dim_tuple_reduces_everything_with_the_dim_grad_fn():
    x, t = _pair(X)
    for fn in (lambda L, x: L.sum(x, ()), lambda L, x: x.mean(dim=[]), lambda L, x: L.sum(x, None, keepdim=True),
               lambda L, x: L.amax(x, ())):
        got, want = fn(tg, x), fn(torch, t)
        _close(got, want)
        assert got.grad_fn.name() == want.grad_fn.name()


@pytest.mark.parametrize("call", [
    lambda L, x: L.var(x), lambda L, x: L.var(x, 1, unbiased=False), lambda L, x: L.std(x, 0, correction=2),
    lambda L, x: x.var(True), lambda L, x: L.var(x, [0, 1], keepdim=True), lambda L, x: L.var_mean(x, 1)[1],
    lambda L, x: L.std_mean(x, 0, keepdim=True)[0], lambda L, x: L.var_mean(x, correction=0)[0],
    lambda L, x: L.sum(x, dtype=L.float32), lambda L, x: L.cumsum(x, 1, dtype=L.float32)])
def test_moments_and_dtype_arguments_match_torch(call):
    _grads_match(call, X)


def test_var_with_no_degrees_of_freedom_warns_like_torch():
    x, t = _pair([[1.0, 2.0]])
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        got = tg.var(x, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.var(t, 0)
    _close(got, want)


def test_vector_norm_matches_torch_linalg():
    for ord_ in (2, 1, 0, 3.5, -1, math.inf, -math.inf):
        x, t = _pair(X)
        _close(vector_norm(x, ord_, (0, 1)), torch.linalg.vector_norm(t, ord_, (0, 1)))
        _close(vector_norm(x, ord_, 1, True), torch.linalg.vector_norm(t, ord_, 1, True))
    x, t = tg.tensor(X, dtype=tg.float32, requires_grad=True), torch.tensor(X, dtype=torch.float32, requires_grad=True)
    got, want = vector_norm(x, dtype=tg.float64), torch.linalg.vector_norm(t, dtype=torch.float64)
    assert got.dtype is tg.float64
    got.backward()
    want.backward()
    assert x.grad.dtype is tg.float32
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6)


# -- errors: PyTorch's type and message, nothing recorded ---------------------------------------------------------

def _tape_n():
    tape = current_tape()
    tape.flush()
    return tape.n


ERRORS = [
    (lambda L, e, x: L.max(e), RuntimeError, "max(): Expected reduction dim to be specified for input.numel() == 0"),
    (lambda L, e, x: e.min(), RuntimeError, "min(): Expected reduction dim to be specified"),
    (lambda L, e, x: L.max(e, 0), IndexError, "max(): Expected reduction dim 0 to have non-zero size"),
    (lambda L, e, x: L.amax(e), RuntimeError, "amax(): Expected reduction dim to be specified"),
    (lambda L, e, x: L.amin(e, 0), IndexError, "amin(): Expected reduction dim 0 to have non-zero size"),
    (lambda L, e, x: L.argmax(e), IndexError, "argmax(): Expected reduction dim to be specified"),
    (lambda L, e, x: L.median(e, 0), IndexError, "median(): Expected reduction dim 0 to have non-zero size"),
    (lambda L, e, x: L.norm(e, math.inf), RuntimeError, "cannot compute the inf norm on an empty tensor"),
    (lambda L, e, x: L.max(x, 5), IndexError, "Dimension out of range (expected to be in range of [-2, 1], but got 5)"),
    (lambda L, e, x: L.sum(x, -3), IndexError, "Dimension out of range (expected to be in range of [-2, 1], but got -3)"),
    (lambda L, e, x: L.sort(x, 2), IndexError, "Dimension out of range"),
    (lambda L, e, x: L.cumsum(x, 2), IndexError, "Dimension out of range"),
    (lambda L, e, x: L.amax(x, (0, 0)), RuntimeError, "dim 0 appears multiple times in the list of dims"),
    (lambda L, e, x: L.sum(x, (1, -1)), RuntimeError, "dim 1 appears multiple times in the list of dims"),
    (lambda L, e, x: L.topk(x, 5), RuntimeError, "selected index k out of range"),
    (lambda L, e, x: L.kthvalue(x, 5, 1), RuntimeError, "kthvalue(): selected number k out of range for dimension 1"),
    (lambda L, e, x: L.var(x.to(L.int64)), RuntimeError, "std and var only support floating point and complex dtypes"),
    (lambda L, e, x: L.mean(x.to(L.int64)), RuntimeError, "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: Long"),
    (lambda L, e, x: L.norm(x.to(L.int64)), RuntimeError, "linalg.vector_norm: Expected a floating point or complex tensor as input. Got Long"),
    (lambda L, e, x: L.norm(x, "fro", (0, 1, -1)), RuntimeError, "linalg.matrix_norm: dim must be a 2-tuple. Got 0 1 -1"),
    (lambda L, e, x: L.norm(e, math.inf, 0), RuntimeError, "cannot compute the inf norm on the dimension 0because"),
]


@pytest.mark.parametrize("call, error, message", ERRORS)
def test_errors_match_torch_and_record_nothing(call, error, message):
    x, t = _pair([[1.0, 2.0], [3.0, 4.0]])
    e, te = _pair(np.zeros((0, 2)))
    with pytest.raises(error, match=re.escape(message)):
        call(torch, te, t)
    before = _tape_n()
    with pytest.raises(error, match=re.escape(message)):
        call(tg, e, x)
    assert _tape_n() == before


# -- forward replay: zero the output slot (and a selection's recorded indices), rerun the kernel ------------------

def _record_of(y):
    tape = current_tape()
    tape.flush()
    i = y._id - tape.base
    x = tape.a[i] - tape.base
    return tape, i, x


FORWARD = [
    lambda x: x.sum(), lambda x: x.sum((0, 2)), lambda x: x.mean(1, keepdim=True), lambda x: x.prod(),
    lambda x: x.prod(1), lambda x: x.var(2), lambda x: x.std((0, 1), correction=0), lambda x: tg.var_mean(x, 1)[0],
    lambda x: tg.var_mean(x, 1)[1], lambda x: tg.std_mean(x)[0], lambda x: x.logsumexp(1),
    lambda x: x.norm(), lambda x: x.norm(1, 2), lambda x: x.norm(3.5, (0, 2)), lambda x: x.norm(math.inf, 1),
    lambda x: x.norm(-math.inf), lambda x: x.norm(0, 1), lambda x: x.norm(0.5), lambda x: x.amax(1),
    lambda x: x.amin((0, 2), True), lambda x: x.max(), lambda x: x.min(), lambda x: x.median(),
    lambda x: x.max(1).values, lambda x: x.min(-1, True).values, lambda x: x.sort(0).values,
    lambda x: x.sort(2, descending=True).values, lambda x: x.topk(2, 1).values,
    lambda x: x.topk(3, 2, largest=False).values, lambda x: x.median(1).values, lambda x: x.kthvalue(2, 0).values,
    lambda x: x.cumsum(1), lambda x: x.cumprod(2),
]


@pytest.mark.parametrize("with_nan", [False, True])
@pytest.mark.parametrize("fn", FORWARD)
def test_forward_replay_kernels_reproduce_the_eager_values(fn, with_nan):
    rng = np.random.default_rng(0)
    data = np.round(rng.normal(size=(3, 4, 5)), 1)    # rounding makes ties
    data[1, 2, 3] = 0.0
    if with_nan:
        data[2, 1, 0] = np.nan
    x = tg.tensor(data, requires_grad=True)
    y = fn(x)
    tape, i, xi = _record_of(y)
    o = int(tape.ops[i])
    yo, n = int(tape.off[i]), y.numel()
    want = tape.vals[yo:yo + n].copy()
    tape.vals[yo:yo + n] = -12345.0
    p = params_at(tape.ints, tape.aux[i])
    if o >> 6 == op.REDUCE:
        reduce_forward(o, tape.ints, tape.aux[xi], p, tape.off[xi], yo, tape.const[i], tape.vals)
        want_ints = None
    else:
        want_ints = tape.ints[p:p + 4 + n].copy()
        if o not in (op.CUMSUM, op.CUMPROD):
            tape.ints[p + 4:p + 4 + n] = -1
        order_forward(o, tape.ints, tape.aux[i], tape.aux[xi], tape.off[xi], yo, tape.vals)
    np.testing.assert_allclose(tape.vals[yo:yo + n], want, rtol=1e-13, atol=1e-14, equal_nan=True)
    if want_ints is not None:
        np.testing.assert_array_equal(tape.ints[p:p + 4 + n], want_ints)
    y.sum().backward()     # the graph is still usable


def test_reductions_of_a_million_elements_agree_with_numpy():
    rng = np.random.default_rng(1)
    data = rng.normal(size=(1000, 1000))
    x = tg.tensor(data, requires_grad=True)
    (x.amax(1).sum() + x.logsumexp(0).sum() + x.std() + x.prod(1).sum() + x.cumsum(0).sum()).backward()
    grad = np.zeros_like(data)
    grad[np.arange(1000), data.argmax(1)] += 1.0
    grad += np.exp(data - np.log(np.exp(data).sum(0)))
    grad += (data - data.mean()) / (data.size - 1) / data.std(ddof=1)
    grad += np.prod(data, 1, keepdims=True) / data
    grad += np.arange(1000, 0, -1)[:, None]
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-9, atol=1e-12)
