"""PyTorch's autograd semantics, bullet by bullet, checked against torch itself where it is installed.

Tests that compare with torch import it with ``pytest.importorskip`` inside the test, so everything else runs
without torch. Scenario builders take the module (``tapegrad`` or ``torch``) as their argument and run the same
code on both.
"""
import threading

import numpy as np
import pytest

import tapegrad as tg


# -- helpers ----------------------------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


def _np(t):
    """The values of a tapegrad or torch tensor as a float64/int/bool ndarray (None stays None)."""
    if t is None:
        return None
    return np.asarray(t.detach().numpy())


def _dtype_name(t):
    return str(t.dtype).split(".")[-1]


def _graph(fn):
    """The structure of a grad_fn: (name, ((child, output_nr), ...)) with leaves as 'AccumulateGrad'."""
    if fn is None:
        return None
    name = fn.name()
    if name == "torch::autograd::AccumulateGrad":
        assert fn.next_functions == ()
        return "AccumulateGrad"
    return name, tuple((_graph(f), nr) for f, nr in fn.next_functions)


def _outcome(fn, *args):
    """('ok', value) or (exception type name, message) of fn(*args)."""
    try:
        return "ok", fn(*args)
    except Exception as err:   # noqa: BLE001  (the type is what gets compared)
        return type(err).__name__, str(err)


def _same_message(torch_msg, tg_msg):
    return torch_msg.replace("torch.", "tapegrad.") == tg_msg


def _assert_close(a, b, **kw):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=kw.get("rtol", 1e-5), atol=kw.get("atol", 1e-6))


# -- ops whose grad_fn, next_functions, values and gradients are compared with torch --------------------------

def _inputs(M):
    return dict(
        A=M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True),
        B=M.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True),
        C=M.tensor([[2.0, 1.0], [1.0, 3.0]]),                       # does not require grad
        v=M.tensor([1.0, 2.0], requires_grad=True),
        w=M.tensor([0.5, -3.0], requires_grad=True),
        X=M.tensor([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.5], [2.0, 1.5]]], requires_grad=True),
    )


OPS = {
    # arithmetic: tensor-tensor, tensor-scalar, scalar-tensor, float and int scalars, tensor without grad
    "add_tt": lambda M, A, B, **k: A + B,
    "add_tc": lambda M, A, C, **k: A + C,
    "add_ct": lambda M, A, C, **k: C + A,
    "add_ts": lambda M, A, **k: A + 2.5,
    "add_st": lambda M, A, **k: 2 + A,
    "add_fn": lambda M, A, B, **k: M.add(A, B),
    "sub_tt": lambda M, A, B, **k: A - B,
    "sub_tc": lambda M, A, C, **k: A - C,
    "sub_ts": lambda M, A, **k: A - 2,
    "sub_st": lambda M, A, **k: 2.0 - A,
    "mul_tt": lambda M, A, B, **k: A * B,
    "mul_tc": lambda M, A, C, **k: A * C,
    "mul_ts": lambda M, A, **k: A * 3,
    "mul_st": lambda M, A, **k: 3.0 * A,
    "mul_self": lambda M, A, **k: A * A,
    "div_tt": lambda M, A, B, **k: A / B,
    "div_tc": lambda M, A, C, **k: A / C,
    "div_ct": lambda M, A, C, **k: C / A,
    "div_ts": lambda M, A, **k: A / 2,
    "div_st": lambda M, A, **k: 2.0 / A,
    "pow_tt": lambda M, A, B, **k: A ** B,
    "pow_ts": lambda M, A, **k: A ** 2,
    "pow_ts_float": lambda M, A, **k: A ** 0.5,
    "pow_st": lambda M, A, **k: 2 ** A,
    "pow_tc": lambda M, A, C, **k: A ** C,
    "pow_ct": lambda M, A, C, **k: C ** A,
    # unary
    "neg": lambda M, A, **k: -A,
    "neg_fn": lambda M, A, **k: M.neg(A),
    "exp": lambda M, A, **k: M.exp(A),
    "log": lambda M, A, **k: A.log(),
    "sqrt": lambda M, A, **k: M.sqrt(A),
    "abs": lambda M, B, **k: B.abs(),
    "sin": lambda M, A, **k: M.sin(A),
    "cos": lambda M, A, **k: A.cos(),
    "tanh": lambda M, A, **k: M.tanh(A),
    "sigmoid": lambda M, A, **k: A.sigmoid(),
    "relu": lambda M, B, **k: M.relu(B),
    # reductions
    "sum": lambda M, A, **k: A.sum(),
    "sum_dim": lambda M, A, **k: A.sum(0),
    "sum_dim_keepdim": lambda M, A, **k: A.sum(1, keepdim=True),
    "sum_dims": lambda M, X, **k: M.sum(X, (0, 2)),
    "mean": lambda M, A, **k: M.mean(A),
    "mean_dim": lambda M, A, **k: A.mean(-1),
    "mean_dim_keepdim": lambda M, X, **k: X.mean(0, keepdim=True),
    # products
    "matmul_mm": lambda M, A, B, **k: A @ B,
    "matmul_mv": lambda M, A, v, **k: M.matmul(A, v),
    "matmul_dot": lambda M, v, w, **k: v @ w,
    "matmul_vm": lambda M, A, v, **k: v @ A,
    "matmul_batched": lambda M, X, A, **k: X @ A,
    "matmul_const": lambda M, A, C, **k: A @ C,
    "mm": lambda M, A, B, **k: M.mm(A, B),
    "mv": lambda M, A, v, **k: M.mv(A, v),
    "dot": lambda M, v, w, **k: M.dot(v, w),
    "addmm": lambda M, A, B, **k: M.addmm(A, A, B),
    "addmm_bias": lambda M, v, A, B, **k: M.addmm(v, A, B),
    "addmm_const_input": lambda M, C, A, B, **k: M.addmm(C, A, B),
    # movement
    "transpose": lambda M, X, **k: X.transpose(0, 2),
    "t": lambda M, A, **k: A.t(),
    "T": lambda M, A, **k: A.T,
    "permute": lambda M, X, **k: X.permute(2, 0, 1),
    "reshape": lambda M, A, **k: A.reshape(4),
    "reshape_copy": lambda M, A, **k: A.t().reshape(4),
    "view": lambda M, X, **k: X.view(2, 4),
    "view_infer": lambda M, X, **k: X.view(-1),
    "unsqueeze": lambda M, v, **k: v.unsqueeze(0),
    "squeeze_all": lambda M, v, **k: v.unsqueeze(0).squeeze(),
    "squeeze_dim": lambda M, A, **k: A[None].squeeze(0),
    # indexing
    "index_int": lambda M, A, **k: A[1],
    "index_int_int": lambda M, A, **k: A[0, 1],
    "index_int_chain": lambda M, X, **k: X[1][0],
    "index_slice": lambda M, A, **k: A[:, 1:],
    "index_slice_step": lambda M, X, **k: X[::2, 1],
    "index_none": lambda M, A, **k: A[None],
    "index_ellipsis": lambda M, X, **k: X[..., 0],
    "index_list": lambda M, A, **k: A[[1, 0, 1]],
    "index_long_tensor": lambda M, A, **k: A[M.tensor([1, 1])],
    "index_bool_mask": lambda M, A, **k: A[A > 2],
    # compositions
    "chain": lambda M, A, v, **k: ((A @ v).tanh() * 2 + v).sum(),
    "shared_leaf": lambda M, v, **k: (v * v + v.exp()).mean(),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_grad_fn_names_and_next_functions_match_torch(name):
    torch = _torch()
    expected = _graph(OPS[name](torch, **_inputs(torch)).grad_fn)
    got = _graph(OPS[name](tg, **_inputs(tg)).grad_fn)
    assert got == expected


@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_values_and_gradients_match_torch(name):
    torch = _torch()
    ti, gi = _inputs(torch), _inputs(tg)
    tout, gout = OPS[name](torch, **ti), OPS[name](tg, **gi)
    assert tuple(gout.shape) == tuple(tout.shape)
    assert _dtype_name(gout) == _dtype_name(tout)
    _assert_close(_np(gout), _np(tout))
    tout.backward(torch.ones_like(tout))
    gout.backward(tg.ones_like(gout))
    for key in ti:
        if ti[key].grad is None:
            assert gi[key].grad is None, key
        else:
            assert gi[key].grad is not None, key
            assert _dtype_name(gi[key].grad) == _dtype_name(ti[key].grad)
            _assert_close(_np(gi[key].grad), _np(ti[key].grad))


@pytest.mark.parametrize("name", sorted(OPS))
def test_requires_grad_and_is_leaf_propagate_through_ops(name):
    inputs = _inputs(tg)
    out = OPS[name](tg, **inputs)
    assert out.requires_grad and not out.is_leaf and out.grad_fn is not None
    with tg.no_grad():
        out = OPS[name](tg, **inputs)
    assert not out.requires_grad and out.is_leaf and out.grad_fn is None
    plain = {k: v.detach() for k, v in inputs.items()}
    out = OPS[name](tg, **plain)
    assert not out.requires_grad and out.is_leaf and out.grad_fn is None


# -- leaves, results, detached tensors -------------------------------------------------------------------------

def test_is_leaf_for_leaves_results_and_detached():
    a = tg.tensor([1.0, 2.0])
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    assert a.is_leaf and not a.requires_grad and a.grad_fn is None
    assert x.is_leaf and x.requires_grad and x.grad_fn is None
    y = x * 2
    assert not y.is_leaf and y.requires_grad
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert (a * 2).is_leaf                 # a result that does not require grad is a leaf
    z = a.sqrt()
    assert z.is_leaf and not z.requires_grad
    z.requires_grad_(True)
    assert z.is_leaf and z.requires_grad
    m = x.ne(a)
    assert m.dtype is tg.bool and not m.requires_grad and m.is_leaf


def test_requires_grad_false_on_a_non_leaf_is_refused_like_torch():
    torch = _torch()
    t_out = _outcome(lambda M: setattr(M.ones(2, requires_grad=True) * 2, "requires_grad", False), torch)
    g_out = _outcome(lambda M: setattr(M.ones(2, requires_grad=True) * 2, "requires_grad", False), tg)
    assert g_out[0] == t_out[0] == "RuntimeError"
    assert g_out[1] == t_out[1]


# -- gradient accumulation, explicit gradients, retain_graph, create_graph ------------------------------------

def test_gradients_accumulate_across_backward_calls():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    _assert_close(x.grad.numpy(), [2.0, 4.0, 6.0])
    g = x.grad
    (3 * x).sum().backward()
    _assert_close(x.grad.numpy(), [5.0, 7.0, 9.0])
    assert x.grad is g                      # accumulated in place into the same tensor, as torch does
    x.grad = None
    x.sum().backward()
    _assert_close(x.grad.numpy(), [1.0, 1.0, 1.0])
    x.grad.zero_()
    (x ** 2).mean().backward()
    _assert_close(x.grad.numpy(), [2 / 3, 4 / 3, 2.0])


def test_grad_dtype_and_shape_follow_the_leaf():
    x = tg.tensor([[1.0, 2.0]], dtype=tg.float64, requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.dtype is tg.float64 and x.grad.shape == (1, 2)
    s = tg.tensor(3.0, requires_grad=True)
    (s * s).backward()
    assert s.grad.dtype is tg.float32 and s.grad.shape == () and s.grad.item() == 6.0


def test_backward_with_gradient_for_non_scalar_outputs():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(tg.tensor([1.0, 0.1, 0.01]))
    _assert_close(x.grad.numpy(), [2.0, 0.4, 0.06])
    x2 = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x2 * 3).backward(gradient=tg.ones(2, 2))
    _assert_close(x2.grad.numpy(), np.full((2, 2), 3.0))
    x3 = tg.ones(2, requires_grad=True)
    tg.autograd.backward([x3 * 2, (x3 * 3).sum()], [tg.ones(2), tg.tensor(2.0)])
    _assert_close(x3.grad.numpy(), [8.0, 8.0])


def test_backward_gradient_shape_mismatch_like_torch():
    torch = _torch()

    def run(M):
        (M.ones(2, requires_grad=True) * 2).backward(M.ones(3))
    t_out, g_out = _outcome(run, torch), _outcome(run, tg)
    assert g_out[0] == t_out[0] == "RuntimeError"
    assert _same_message(t_out[1], g_out[1])


def test_retain_graph_allows_a_second_backward_and_then_frees():
    x = tg.ones(5, requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    out.backward(retain_graph=True)
    _assert_close(x.grad.numpy(), np.full(5, 3.6))
    out.backward(retain_graph=True)
    out.backward()
    _assert_close(x.grad.numpy(), np.full(5, 10.8))
    with pytest.raises(RuntimeError, match="^Trying to backward through the graph a second time"):
        out.backward()
    _assert_close(x.grad.numpy(), np.full(5, 10.8))


def test_second_backward_through_a_graph_that_saves_nothing_works_like_torch():
    # torch only refuses a second pass when a node needs a saved tensor that was freed; add/sum save nothing
    torch = _torch()

    def run(M):
        x = M.tensor([1.0, 2.0], requires_grad=True)
        y = (x + 1).sum()
        y.backward()
        y.backward()
        return x.grad.tolist()
    expected = _outcome(run, torch)
    assert _outcome(run, tg) == expected
    # on a fresh thread, i.e. a fresh tape (whether older records are still held must not matter)
    got = []
    th = threading.Thread(target=lambda: got.append(_outcome(run, tg)))
    th.start()
    th.join(30)
    assert got == [expected]


def test_create_graph_is_not_implemented():
    x = tg.ones(2, requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(NotImplementedError):
        y.backward(create_graph=True)
    with pytest.raises(NotImplementedError):
        tg.autograd.grad(y, x, create_graph=True)
    assert x.grad is None
    y.backward()                               # the failed call left the graph usable
    _assert_close(x.grad.numpy(), [2.0, 2.0])


def test_retain_grad_on_non_leaves():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = y * y
    y.retain_grad()
    assert y.retains_grad and not z.retains_grad and not x.retains_grad
    z.sum().backward()
    _assert_close(y.grad.numpy(), [6.0, 12.0])
    _assert_close(x.grad.numpy(), [18.0, 36.0])
    assert z.grad is None
    y.retain_grad()                           # idempotent
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad=False"):
        tg.ones(2).retain_grad()


def test_retained_grad_accumulates_with_retain_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    s = (y * y).sum()
    s.backward(retain_graph=True)
    s.backward()
    _assert_close(y.grad.numpy(), [12.0, 24.0])


def test_non_leaf_grad_access_is_none_without_retain_grad():
    x = tg.tensor([1.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None


# -- detach, detach_, requires_grad_ ---------------------------------------------------------------------------

def test_detach_shares_storage_and_leaves_the_graph():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    d[0] = 10.0                                # writes through to y, as in torch
    assert y.tolist() == [10.0, 4.0]
    xd = x.detach()
    xd.add_(1)                                 # allowed: the detached alias does not require grad
    assert x.tolist() == [2.0, 3.0]


def test_detach_in_place():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    assert y.detach_() is y
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    z = (y * x).sum()
    z.backward()
    _assert_close(x.grad.numpy(), [2.0, 4.0])


def test_detach_in_place_of_a_view_is_refused():
    y = tg.ones(3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"^Can't detach views in-place\. Use detach\(\) instead\."):
        y[1:].detach_()


def test_requires_grad_():
    a = tg.tensor([1.0, 2.0])
    assert a.requires_grad_() is a and a.requires_grad and a.is_leaf
    a.requires_grad_(False)
    assert not a.requires_grad
    a.requires_grad = True
    (a * a).sum().backward()
    _assert_close(a.grad.numpy(), [2.0, 4.0])


# -- grad mode ---------------------------------------------------------------------------------------------------

def test_no_grad_enable_grad_set_grad_enabled_as_context_managers():
    x = tg.ones(2, requires_grad=True)
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        assert not (x * 2).requires_grad
        with tg.enable_grad():
            assert tg.is_grad_enabled()
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
        with tg.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with tg.no_grad():
            raise ValueError
    assert tg.is_grad_enabled()


def test_set_grad_enabled_as_a_function():
    x = tg.ones(2, requires_grad=True)
    try:
        tg.set_grad_enabled(False)
        assert not tg.is_grad_enabled()
        assert not (x * 2).requires_grad
        tg.set_grad_enabled(True)
        assert (x * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)


def test_grad_mode_decorators():
    x = tg.ones(2, requires_grad=True)

    @tg.no_grad()
    def f_no_grad_called():
        return x * 2

    @tg.enable_grad()
    def f_enable():
        return x * 2

    @tg.set_grad_enabled(False)
    def f_set_false():
        return x * 2

    assert tg.is_grad_enabled()                 # decorating does not change the mode
    assert not f_no_grad_called().requires_grad
    assert not f_set_false().requires_grad
    assert tg.is_grad_enabled()
    with tg.no_grad():
        assert f_enable().requires_grad
        assert not tg.is_grad_enabled()
    assert f_no_grad_called.__name__ == "f_no_grad_called"


def test_no_grad_as_a_bare_decorator_like_torch():
    x = tg.ones(2, requires_grad=True)

    @tg.no_grad
    def f():
        return x * 2

    assert not f().requires_grad
    assert tg.is_grad_enabled()


def test_grad_mode_is_thread_local():
    entered, checked = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with tg.no_grad():
            seen["worker_enabled"] = tg.is_grad_enabled()
            entered.set()
            checked.wait(10)
            x = tg.ones(2, requires_grad=True)
            seen["worker_rg"] = (x * 2).requires_grad

    th = threading.Thread(target=worker)
    th.start()
    assert entered.wait(10)
    x = tg.ones(2, requires_grad=True)
    seen["main_enabled"] = tg.is_grad_enabled()
    seen["main_rg"] = (x * 2).requires_grad
    checked.set()
    th.join(10)
    assert seen == {"worker_enabled": False, "worker_rg": False, "main_enabled": True, "main_rg": True}

    # and a thread starts with grad enabled even if the spawning thread disabled it
    result = {}
    with tg.no_grad():
        t2 = threading.Thread(target=lambda: result.setdefault("enabled", tg.is_grad_enabled()))
        t2.start()
        t2.join(10)
    assert result == {"enabled": True}


# -- repr ----------------------------------------------------------------------------------------------------------

REPRS = {
    "leaf_rg": lambda M: M.tensor([1.0, 2.0], requires_grad=True),
    "result": lambda M: M.tensor([1.0, 2.0], requires_grad=True) * 2,
    "scalar_result": lambda M: (M.tensor([1.0, 2.5], requires_grad=True) * 3).mean(),
    "float64": lambda M: M.tensor([1.5, 2.0], dtype=M.float64),
    "float64_rg": lambda M: M.tensor([1.5, 2.0], dtype=M.float64, requires_grad=True),
    "float64_result": lambda M: M.tensor([1.5, 2.0], dtype=M.float64, requires_grad=True).exp(),
    "int64": lambda M: M.tensor([1, 2, 3]),
    "int32": lambda M: M.tensor([1, 2, 3], dtype=M.int32),
    "bool": lambda M: M.tensor([1.0, 2.0]) > 1.5,
    "zero_d": lambda M: M.tensor(3.25),
    "matrix": lambda M: M.tensor([[1.0, -2.5], [100.0, 0.125]]),
    "empty": lambda M: M.zeros(0),
    "empty_2d_float64": lambda M: M.zeros(2, 0, dtype=M.float64),
    "view_result": lambda M: M.tensor([[1.0, 2.0]], requires_grad=True)[0],
    "detached": lambda M: (M.tensor([1.0], requires_grad=True) * 2).detach(),
    "no_grad_result": lambda M: _under_no_grad(M, lambda: M.tensor([1.0], requires_grad=True) * 2),
    "grad": lambda M: _grad_of(M),
    "size": lambda M: M.ones(2, 3).shape,
    "size_empty": lambda M: M.tensor(1.0).size(),
    "dtype": lambda M: M.ones(1, dtype=M.float64).dtype,
}


def _under_no_grad(M, fn):
    with M.no_grad():
        return fn()


def _grad_of(M):
    x = M.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    return x.grad


@pytest.mark.parametrize("name", sorted(REPRS))
def test_repr_matches_torch(name):
    torch = _torch()
    expected = repr(REPRS[name](torch)).replace("torch.", "tapegrad.")
    assert repr(REPRS[name](tg)) == expected
    assert str(REPRS[name](tg)) == str(REPRS[name](torch)).replace("torch.", "tapegrad.")


# -- errors: same type and text as torch, and nothing corrupted afterwards ---------------------------------------

def _err_no_grad(M, x):
    M.tensor([1.0, 2.0]).sum().backward()


def _err_second_backward(M, x):
    u = M.tensor([1.0, 2.0], requires_grad=True)
    y = (u * x[:2]).sum()
    x.grad = None           # the first (successful) backward fills it again...
    y.backward()
    x.grad = x.grad * 0 + M.tensor([2.0, 4.0, 6.0])   # ...and the failing second one must not touch it
    y.backward()
    y.backward()


def _err_non_scalar(M, x):
    (x * 2).backward()


def _err_leaf_inplace(M, x):
    x.add_(1)


def _err_leaf_inplace_mul(M, x):
    x.mul_(2)


def _err_leaf_iadd(M, x):
    x += 1


def _err_leaf_setitem_slice(M, x):
    x[:] = 0.0


def _err_leaf_zero(M, x):
    x.zero_()


def _err_view_of_leaf(M, x):
    x[1:].mul_(2)


def _err_view_of_leaf_reshape(M, x):
    x.view(1, 3).zero_()


def _err_leaf_setitem_int(M, x):
    x[0] = 1.0          # torch writes through the view x[0]


def _err_leaf_setitem_partial_slice(M, x):
    x[0:2] = 1.0        # likewise through the view x[0:2]; only x[:] and x[...] count as the leaf itself


def _err_saved_modified(M, x):
    y = x * 1
    z = (y * y).sum()
    y.add_(1)
    z.backward()


def _err_saved_output_modified(M, x):
    y = x.exp()
    y.mul_(2)
    y.sum().backward()


def _err_int_requires_grad(M, x):
    M.tensor([1, 2], requires_grad=True)


def _err_int_requires_grad_zeros(M, x):
    M.zeros(2, dtype=M.int64, requires_grad=True)


def _err_int_requires_grad_method(M, x):
    M.tensor([1, 2]).requires_grad_()


def _err_matmul_shapes(M, x):
    M.ones(2, 3, requires_grad=True) @ M.ones(4, 5)


def _err_mm_shapes(M, x):
    M.mm(M.ones(2, 3), M.ones(4, 5))


def _err_dot_shapes(M, x):
    M.ones(3) @ M.ones(4)


def _err_numpy_requires_grad(M, x):
    x.numpy()


def _err_item_many(M, x):
    x.item()


def _err_retain_grad_no_grad(M, x):
    M.ones(2).retain_grad()


ERRORS_EXACT = {f.__name__[5:]: f for f in (
    _err_no_grad, _err_second_backward, _err_non_scalar, _err_leaf_inplace, _err_leaf_inplace_mul, _err_leaf_iadd,
    _err_leaf_setitem_slice, _err_leaf_zero, _err_view_of_leaf, _err_view_of_leaf_reshape, _err_leaf_setitem_int,
    _err_leaf_setitem_partial_slice,
    _err_int_requires_grad, _err_int_requires_grad_zeros, _err_int_requires_grad_method, _err_matmul_shapes,
    _err_mm_shapes, _err_dot_shapes, _err_numpy_requires_grad, _err_item_many, _err_retain_grad_no_grad)}

# messages PyTorch gives, as the issue lists them (no torch needed to check these)
KNOWN = {
    "no_grad": "element 0 of tensors does not require grad and does not have a grad_fn",
    "non_scalar": "grad can be implicitly created only for scalar outputs",
    "leaf_inplace": "a leaf Variable that requires grad is being used in an in-place operation.",
    "view_of_leaf": "a view of a leaf Variable that requires grad is being used in an in-place operation.",
    "int_requires_grad": "Only Tensors of floating point and complex dtype can require gradients",
}


def _leaf(M):
    x = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()             # x.grad = [2, 4, 6] before the failing call
    return x


def _check_not_corrupted(x):
    # the failed call left the leaf's gradient and the tape alone
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    assert x.tolist() == [1.0, 2.0, 3.0] and x.is_leaf and x.requires_grad
    a = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = tg.tensor([[1.0, 0.5], [2.0, -1.0], [0.0, 3.0]], requires_grad=True)
    out = ((a @ b).tanh() * (a.sum() + 1)).sum()
    out.backward()
    torch_free = np.tanh(np.array([1.0, 2.0, 3.0]) @ np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 3.0]]))
    # reference gradient by hand: out = sum(tanh(a @ b)) * (sum(a) + 1)
    s = float(np.sum(np.array([1.0, 2.0, 3.0])) + 1)
    dtanh = 1 - torch_free ** 2
    ga = (np.array([[1.0, 0.5], [2.0, -1.0], [0.0, 3.0]]) @ dtanh) * s + np.sum(torch_free)
    gb = np.outer([1.0, 2.0, 3.0], dtanh) * s
    _assert_close(a.grad.numpy(), ga)
    _assert_close(b.grad.numpy(), gb)


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_error_messages_from_the_issue(name):
    kind, msg = _outcome(ERRORS_EXACT[name], tg, _leaf(tg))
    assert (kind, msg) == ("RuntimeError", KNOWN[name])


@pytest.mark.parametrize("name", sorted(ERRORS_EXACT))
def test_errors_match_torch_and_corrupt_nothing(name):
    torch = _torch()
    t_kind, t_msg = _outcome(ERRORS_EXACT[name], torch, _leaf(torch))
    x = _leaf(tg)
    g_kind, g_msg = _outcome(ERRORS_EXACT[name], tg, x)
    assert t_kind != "ok"
    assert g_kind == t_kind
    assert _same_message(t_msg, g_msg), (g_msg, t_msg)
    _check_not_corrupted(x)


def test_second_backward_message_is_torchs():
    kind, msg = _outcome(_err_second_backward, tg, _leaf(tg))
    assert kind == "RuntimeError"
    assert msg.startswith("Trying to backward through the graph a second time (or directly access saved tensors "
                          "after they have already been freed).")


@pytest.mark.parametrize("scenario", [_err_saved_modified, _err_saved_output_modified])
def test_saved_value_modified_in_place_error(scenario):
    x = _leaf(tg)
    kind, msg = _outcome(scenario, tg, x)
    assert kind == "RuntimeError"
    assert msg.startswith("one of the variables needed for gradient computation has been modified by an inplace "
                          "operation: ")
    _check_not_corrupted(x)


@pytest.mark.parametrize("scenario", [_err_saved_modified, _err_saved_output_modified])
def test_saved_value_modified_in_place_error_details_match_torch(scenario):
    # "[torch.FloatTensor [3]], which is output 0 of Add, is at version 1; expected version 0 instead." --
    # the sentence after the colon; the hint that follows names torch's anomaly mode, which tapegrad lacks
    torch = _torch()
    t_msg = _outcome(scenario, torch, _leaf(torch))[1]
    g_msg = _outcome(scenario, tg, _leaf(tg))[1]
    head = t_msg.split(" instead.")[0].replace("torch.", "tapegrad.")
    assert g_msg.split(" instead.")[0] == head


@pytest.mark.parametrize("a_dtype,b_dtype", [("int64", "float32"), ("float32", "int64"), ("float64", "float32")])
@pytest.mark.parametrize("shapes", [((2, 2), (2, 2)), ((2, 2), (2,)), ((2,), (2,))])
def test_matmul_dtype_mismatch_names_both_dtypes(a_dtype, b_dtype, shapes):
    aliases = {"int64": ("int64", "long", "Long"), "float32": ("float32", "float", "Float"),
               "float64": ("float64", "double", "Double")}
    x = tg.ones(*shapes[0], dtype=getattr(tg, a_dtype))
    y = tg.ones(*shapes[1], dtype=getattr(tg, b_dtype))
    with pytest.raises(RuntimeError) as info:
        x @ y
    msg = str(info.value)
    assert any(a in msg for a in aliases[a_dtype]) and any(b in msg for b in aliases[b_dtype]), msg
    _check_not_corrupted(_leaf(tg))


def test_matmul_dtype_mismatch_is_a_runtime_error_in_torch_too():
    torch = _torch()
    with pytest.raises(RuntimeError):
        torch.ones(2, 2, dtype=torch.int64) @ torch.ones(2, 2)


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "pow"])
def test_elementwise_shape_mismatch_names_both_sizes(op):
    x = _leaf(tg)
    with pytest.raises(RuntimeError) as info:
        getattr(tg, op)(x, tg.ones(4))
    # torch: "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"
    assert ("The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"
            in str(info.value))
    _check_not_corrupted(x)


def test_elementwise_shape_mismatch_message_is_torchs():
    torch = _torch()
    t_msg = _outcome(lambda M: M.ones(3) + M.ones(4), torch)[1]
    g_msg = _outcome(lambda M: M.ones(3) + M.ones(4), tg)[1]
    assert g_msg == t_msg


@pytest.mark.parametrize("shapes", [((2, 3), (4, 5)), ((3,), (4, 5)), ((2, 3), (4,)), ((2, 2, 3), (2, 4, 5))])
def test_matmul_shape_mismatch_names_both_shapes(shapes):
    x = _leaf(tg)
    a = tg.ones(*shapes[0], requires_grad=True)
    with pytest.raises(RuntimeError) as info:
        a @ tg.ones(*shapes[1])
    msg = str(info.value)
    named = lambda s: "x".join(map(str, s)) in msg or str(list(s)) in msg or f"({s[0]})" in msg
    assert named(shapes[0]) and named(shapes[1]), msg
    assert a.grad is None
    _check_not_corrupted(x)


def test_failed_backward_leaves_grads_of_all_leaves_unchanged():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    (x * w).sum().backward()
    y = x * w
    h = (y * y).sum()
    y.mul_(2)
    with pytest.raises(RuntimeError):
        h.backward()
    assert x.grad.tolist() == [3.0, 4.0] and w.grad.tolist() == [1.0, 2.0]
    (x * w).sum().backward()
    assert x.grad.tolist() == [6.0, 8.0] and w.grad.tolist() == [2.0, 4.0]


# -- in-place operations: values, gradients and version counters like torch --------------------------------------

def _ip_arith(M, x, w):
    y = x * 1
    vs = [y._version]
    y.add_(2)
    vs.append(y._version)
    y.mul_(3)
    vs.append(y._version)
    y.sub_(1)
    vs.append(y._version)
    y.div_(2)
    vs.append(y._version)
    y.add_(w, alpha=2)
    vs.append(y._version)
    return (y * y).sum(), vs


def _ip_tensor_operands(M, x, w):
    y = x + 0
    y.mul_(w)
    y.div_(w + 3)
    y.sub_(w)
    return (y ** 2).sum(), [y._version]


def _ip_zero_fill(M, x, w):
    y = x * 2
    z = y + w            # saves nothing of y, so the writes below are allowed
    y.zero_()
    a = y + x
    y.fill_(3.0)
    return (z + a + y * x).sum(), [y._version]


def _ip_copy(M, x, w):
    y = x * 2
    y.copy_(w * w)
    return (y * x).sum(), [y._version]


def _ip_setitem_basic(M, x, w):
    y = x * 2
    y[0] = 5.0
    y[1:] = w[1:] * 3
    return (y * y).sum(), [y._version]


def _ip_setitem_advanced(M, x, w):
    y = x * 2
    y[[0, 2]] = w[:2] * w[1:]
    y[y > 100] = 0.0
    y[M.tensor([1])] = 7.0
    return (y * x).sum(), [y._version]


def _ip_iadd_non_leaf(M, x, w):
    y = x * 2
    y += 1
    y *= w
    y -= x
    y /= 2
    return (y * y).sum(), [y._version]


def _ip_write_through_view(M, x, w):
    y = x * 2
    v = y[1:]
    v.mul_(2)
    vs = [y._version, v._version]
    v.add_(w[1:])
    vs += [y._version, v._version]
    return (y * y).sum() + v.sum(), vs


def _ip_write_through_view_then_view_used(M, x, w):
    y = x * 2
    v = y[:2]
    s = v * 1            # uses the view before the write
    y[0] = 10.0          # write through the base: v sees it
    return (s + v * w[:2]).sum() + y.sum(), [y._version, v._version]


def _ip_setitem_view_of_view(M, x, w):
    y = (x * w).reshape(3, 1)
    v = y[1:]
    v[0] = 4.0
    return (y ** 2).sum(), [y._version, v._version]


def _ip_no_grad_leaf_update(M, x, w):
    with M.no_grad():
        x -= 0.1 * w
        x[0] = 2.0
        x.mul_(2)
    return (x * w).sum(), [x._version]


def _ip_value_does_not_require_grad(M, x, w):
    y = M.zeros(3)
    y[1] = x[0] * 2
    y[2] = 5.0
    return (y * w).sum(), [y._version]


INPLACE = {f.__name__[4:]: f for f in (
    _ip_arith, _ip_tensor_operands, _ip_zero_fill, _ip_copy, _ip_setitem_basic, _ip_setitem_advanced,
    _ip_iadd_non_leaf, _ip_write_through_view, _ip_write_through_view_then_view_used, _ip_setitem_view_of_view,
    _ip_no_grad_leaf_update, _ip_value_does_not_require_grad)}


def _ip_leaves(M):
    return (M.tensor([1.0, -2.0, 3.0], requires_grad=True), M.tensor([0.5, 1.5, -1.0], requires_grad=True))


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_values_gradients_and_versions_match_torch(name):
    torch = _torch()
    tx, tw = _ip_leaves(torch)
    gx, gw = _ip_leaves(tg)
    t_out, t_versions = INPLACE[name](torch, tx, tw)
    g_out, g_versions = INPLACE[name](tg, gx, gw)
    assert g_versions == t_versions
    _assert_close(_np(g_out), _np(t_out))
    t_out.backward()
    g_out.backward()
    for t_leaf, g_leaf in ((tx, gx), (tw, gw)):
        _assert_close(_np(g_leaf), _np(t_leaf))
        if t_leaf.grad is None:
            assert g_leaf.grad is None
        else:
            _assert_close(_np(g_leaf.grad), _np(t_leaf.grad))


def test_inplace_example_from_the_issue():
    x = tg.ones(1, requires_grad=True)
    y = x + 2
    z = 2 * y
    y[0] = -2.0
    z.backward()
    assert x.grad.tolist() == [2.0]
    x = tg.ones(1, requires_grad=True)
    y = x + 2
    z = y * y
    y[0] = -2.0
    with pytest.raises(RuntimeError, match="one of the variables needed for gradient computation has been "
                                           "modified by an inplace operation"):
        z.backward()


def test_version_counter_is_shared_by_views_and_counts_like_torch():
    torch = _torch()

    def run(M):
        x = M.zeros(4)
        v = x[1:3]
        d = x.detach()
        out = [x._version, v._version]
        x.add_(1)
        out += [x._version, v._version, d._version]
        v.mul_(2)
        out += [x._version, v._version, d._version]
        x[0] = 3.0
        d.zero_()
        out += [x._version, v._version, d._version]
        out.append(x.tolist())
        return out
    assert run(tg) == run(torch)


def test_inplace_returns_self():
    y = tg.ones(2, requires_grad=True) * 1
    for op, args in (("add_", (1,)), ("sub_", (1,)), ("mul_", (2,)), ("div_", (2,)), ("zero_", ()),
                     ("fill_", (1.0,)), ("copy_", (tg.ones(2),))):
        assert getattr(y, op)(*args) is y


# -- dtypes and promotion ---------------------------------------------------------------------------------------------

def _operands(M):
    out = {}
    for name, dt in (("i64", "int64"), ("f32", "float32"), ("f64", "float64"), ("b", "bool")):
        vals = [True, False] if dt == "bool" else [3, -2]
        out[name + "_1d"] = M.tensor(vals, dtype=getattr(M, dt))
        out[name + "_0d"] = M.tensor(vals[0], dtype=getattr(M, dt))
    out["int"] = 2
    out["float"] = 1.5
    out["bool"] = True
    return out


PROMO_OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "eq": lambda a, b: a == b, "lt": lambda a, b: a < b,
}


@pytest.mark.parametrize("op", sorted(PROMO_OPS))
def test_type_promotion_grid_matches_torch(op):
    torch = _torch()
    t_ops, g_ops = _operands(torch), _operands(tg)
    fn = PROMO_OPS[op]
    mismatches = []
    for ka in t_ops:
        for kb in t_ops:
            if not (hasattr(t_ops[ka], "dtype") or hasattr(t_ops[kb], "dtype")):
                continue     # two Python scalars
            t_kind, t_val = _outcome(fn, t_ops[ka], t_ops[kb])
            g_kind, g_val = _outcome(fn, g_ops[ka], g_ops[kb])
            if t_kind != "ok" or g_kind != "ok":
                if g_kind != t_kind:
                    mismatches.append((ka, kb, t_kind, g_kind))
                continue
            if (_dtype_name(g_val), tuple(g_val.shape)) != (_dtype_name(t_val), tuple(t_val.shape)):
                mismatches.append((ka, kb, _dtype_name(t_val), _dtype_name(g_val)))
            elif not np.allclose(_np(g_val).astype(np.float64), _np(t_val).astype(np.float64), equal_nan=True):
                mismatches.append((ka, kb, _np(t_val), _np(g_val)))
    assert mismatches == []


def test_default_dtype_and_python_scalars():
    assert tg.tensor([1.0]).dtype is tg.float32
    assert tg.tensor([1]).dtype is tg.int64
    assert tg.tensor([True]).dtype is tg.bool
    assert tg.tensor([1, 2.0]).dtype is tg.float32
    assert tg.tensor(2.0, dtype=tg.float64).dtype is tg.float64
    assert (tg.tensor([1, 2]) / 2).dtype is tg.float32
    assert (tg.tensor([1, 2]) * 2.5).dtype is tg.float32
    assert (tg.tensor([1.0], dtype=tg.float64) * 2.5).dtype is tg.float64
    assert (tg.tensor([1.0]) + tg.tensor(1.0, dtype=tg.float64)).dtype is tg.float32   # 0-d does not promote
    assert (tg.tensor([1]) + tg.tensor(1.0, dtype=tg.float64)).dtype is tg.float64     # ... unless category rises
    assert (tg.tensor([True]) + 1).dtype is tg.int64
    assert tg.get_default_dtype() is tg.float32


def test_float64_gradients_stay_float64():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = (x * tg.tensor([1.0, 1.0]) + 1.5).sum()    # float32 1-d with float64 1-d: float64
    assert y.dtype is tg.float64
    y.backward()
    assert x.grad.dtype is tg.float64


# -- creation functions --------------------------------------------------------------------------------------------

CREATION = {
    "tensor_nested": lambda M: M.tensor([[1, 2], [3, 4]]),
    "tensor_float64": lambda M: M.tensor([1, 2], dtype=M.float64),
    "tensor_scalar": lambda M: M.tensor(5),
    "tensor_bool": lambda M: M.tensor([True, False]),
    "zeros": lambda M: M.zeros(2, 3),
    "zeros_tuple": lambda M: M.zeros((2, 3), dtype=M.int64),
    "ones": lambda M: M.ones(3, dtype=M.float64),
    "ones_0d": lambda M: M.ones(()),
    "full_float": lambda M: M.full((2, 2), 1.5),
    "full_int": lambda M: M.full((2,), 7),
    "full_bool": lambda M: M.full((2,), True),
    "zeros_like": lambda M: M.zeros_like(M.tensor([[1, 2]])),
    "ones_like": lambda M: M.ones_like(M.tensor([1.0, 2.0], dtype=M.float64)),
    "full_like": lambda M: M.full_like(M.tensor([1, 2]), 3),
    "full_like_dtype": lambda M: M.full_like(M.tensor([1, 2]), 3.5, dtype=M.float32),
    "arange": lambda M: M.arange(5),
    "arange_start_end": lambda M: M.arange(2, 7),
    "arange_step": lambda M: M.arange(1, 10, 3),
    "arange_float": lambda M: M.arange(0, 1, 0.1),
    "arange_float_end": lambda M: M.arange(1, 2.5, 0.5),
    "arange_float_start": lambda M: M.arange(0.5, 3),
    "arange_negative_step": lambda M: M.arange(5, 0, -2),
    "arange_dtype": lambda M: M.arange(4, dtype=M.float64),
    "linspace": lambda M: M.linspace(0, 1, 5),
    "linspace_neg": lambda M: M.linspace(-2, 2, 4),
    "eye": lambda M: M.eye(3),
    "eye_rect": lambda M: M.eye(2, 3, dtype=M.int64),
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_creation_functions_match_torch(name):
    torch = _torch()
    t, g = CREATION[name](torch), CREATION[name](tg)
    assert tuple(g.shape) == tuple(t.shape)
    assert _dtype_name(g) == _dtype_name(t)
    if t.dtype.is_floating_point:
        _assert_close(g.numpy(), t.numpy())
    else:
        assert g.tolist() == t.tolist()
    assert g.is_leaf and not g.requires_grad


def test_empty_shapes_and_dtypes():
    assert tg.empty(2, 3).shape == (2, 3) and tg.empty(2, 3).dtype is tg.float32
    assert tg.empty((4,), dtype=tg.int64).dtype is tg.int64
    e = tg.empty_like(tg.ones(2, dtype=tg.float64))
    assert e.shape == (2,) and e.dtype is tg.float64
    z = tg.zeros(2, requires_grad=True)
    assert z.requires_grad and z.is_leaf


def test_from_numpy_shares_memory():
    a = np.array([1.0, 2.0, 3.0])
    t = tg.from_numpy(a)
    assert t.dtype is tg.float64
    a[0] = 10.0
    assert t.tolist() == [10.0, 2.0, 3.0]
    t[1] = 20.0
    assert a.tolist() == [10.0, 20.0, 3.0]
    t.add_(1)
    assert a.tolist() == [11.0, 21.0, 4.0]
    assert np.shares_memory(t.numpy(), a)
    ai = np.arange(3)
    assert tg.from_numpy(ai).dtype is tg.int64


def test_as_tensor_shares_memory_only_when_it_can():
    a = np.array([1.0, 2.0])
    t = tg.as_tensor(a)
    a[0] = 5.0
    assert t.tolist() == [5.0, 2.0]
    c = tg.as_tensor(a, dtype=tg.float32)
    a[1] = 7.0
    assert c.tolist() == [5.0, 2.0] and c.dtype is tg.float32
    x = tg.tensor([1.0])
    assert tg.as_tensor(x) is x
    assert tg.as_tensor([1, 2]).dtype is tg.int64


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a)
    a[0] = 5.0
    assert t.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("fn", ["rand", "randn"])
def test_random_shapes_dtypes_and_manual_seed(fn):
    f = getattr(tg, fn)
    assert f(2, 3).shape == (2, 3) and f(2, 3).dtype is tg.float32
    assert f((4,), dtype=tg.float64).dtype is tg.float64
    assert f(()).shape == ()
    tg.manual_seed(123)
    a = f(5).tolist()
    b = f(5).tolist()
    tg.manual_seed(123)
    assert f(5).tolist() == a
    assert f(5).tolist() == b
    assert a != b
    if fn == "rand":
        vals = np.array(f(1000).tolist())
        assert vals.min() >= 0.0 and vals.max() < 1.0
    r = f(3, requires_grad=True)
    assert r.requires_grad and r.is_leaf


# -- tensor methods ---------------------------------------------------------------------------------------------------

def test_numpy_item_tolist():
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (2, 2)
    a[0, 0] = 9.0
    assert t[0, 0].item() == 9.0                   # numpy() shares memory
    assert t.tolist() == [[9.0, 2.0], [3.0, 4.0]]
    assert tg.tensor(2.5).item() == 2.5 and isinstance(tg.tensor(2.5).item(), float)
    assert tg.tensor([3]).item() == 3 and isinstance(tg.tensor([3]).item(), int)
    assert tg.tensor(True).item() is True
    assert tg.tensor(1.5).tolist() == 1.5
    assert tg.tensor([1, 2]).tolist() == [1, 2]
    x = tg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^Can't call numpy\(\) on Tensor that requires grad\. Use "
                                           r"tensor\.detach\(\)\.numpy\(\) instead\.$"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]
    assert (x * 2).sum().item() == 4.0
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        x.item()


def test_shape_size_ndim_numel_dtype():
    t = tg.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, tg.Size) and isinstance(t.shape, tuple)
    assert repr(t.shape) == "tapegrad.Size([2, 3, 4])"
    assert repr(tg.tensor(1.0).shape) == "tapegrad.Size([])"
    assert t.size() == t.shape and t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == 3 and t.dim() == 3
    assert t.numel() == 24 and tg.numel(t) == 24 and t.shape.numel() == 24
    assert t.dtype is tg.float32 and repr(t.dtype) == "tapegrad.float32"
    assert tg.tensor(1.0).ndim == 0 and tg.tensor(1.0).numel() == 1
    with pytest.raises(IndexError):
        t.size(3)


def test_T_len_and_iteration():
    m = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert m.T.shape == (3, 2) and m.T.tolist() == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert len(m) == 2 and len(tg.zeros(5, 2)) == 5
    rows = list(m)
    assert len(rows) == 2 and rows[1].tolist() == [4.0, 5.0, 6.0]
    assert all(r.grad_fn.name() == "SelectBackward0" for r in rows)
    (rows[0] * 2 + rows[1]).sum().backward()
    assert m.grad.tolist() == [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
    assert [float(v) for v in tg.tensor([1.0, 2.0])] == [1.0, 2.0]
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(tg.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(tg.tensor(1.0))


def test_python_conversions():
    assert float(tg.tensor([2.5])) == 2.5
    assert int(tg.tensor(3.7)) == 3
    assert bool(tg.tensor([1.0])) is True
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(tg.ones(2))
    assert [10, 20, 30][tg.tensor(1)] == 20


# -- extra inputs whose values a backward reads: changing them in place is caught, as PyTorch does ----------------

def _stale_lerp_weight(M, x):
    w = x * 0.25
    out = M.lerp(x * 1.0, x * 2.0, w)
    w.add_(1.0)
    out.sum().backward()


def _stale_clamp_bound(M, x):
    hi = x * 0.5 + 1.0
    out = M.clamp(x * 1.0, min=x * 0.0 - 1.0, max=hi)
    hi.mul_(2.0)
    out.sum().backward()


def _stale_nll_weight(M, x):
    weight = M.ones(3, dtype=x.dtype) * 2.0
    out = M.nn.functional.nll_loss(M.nn.functional.log_softmax((x * 1.0).reshape(1, 3), 1), M.tensor([1]), weight=weight)
    weight.mul_(3.0)
    out.backward()


@pytest.mark.parametrize("scenario", [_stale_lerp_weight, _stale_clamp_bound, _stale_nll_weight])
def test_an_extra_input_changed_in_place_is_caught_like_torch(scenario):
    torch = _torch()
    t_kind, t_msg = _outcome(scenario, torch, _leaf(torch))
    assert t_kind == "RuntimeError" and "modified by an inplace operation" in t_msg
    x = _leaf(tg)
    kind, msg = _outcome(scenario, tg, x)
    assert kind == "RuntimeError"
    assert msg.startswith("one of the variables needed for gradient computation has been modified by an inplace "
                          "operation: "), msg
    _check_not_corrupted(x)
