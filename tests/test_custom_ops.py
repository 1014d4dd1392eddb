"""Custom operations: tapegrad.autograd.Function (Python backward) and tapegrad.custom_op (numba kernels)."""
import numpy as np
import pytest
from numba import njit

import tapegrad as tg


# -- Python Functions ---------------------------------------------------------------------------------------

class LogAddExp(tg.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        ad, bd = a.detach().numpy(), b.detach().numpy()
        m = np.maximum(ad, bd)
        out = tg.from_numpy(m + np.log(np.exp(ad - m) + np.exp(bd - m)))
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        return g * (a - out).exp(), g * (b - out).exp()


class ScaleBy(tg.autograd.Function):
    """Takes a non-tensor argument and returns two outputs, one of them non-differentiable."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        ctx.seen_needs = ctx.needs_input_grad
        y = x * factor
        index = tg.tensor([0, 1])
        ctx.mark_non_differentiable(index)
        return y, index

    @staticmethod
    def backward(ctx, g, g_index):
        return g * ctx.factor, None


def _pair():
    a = tg.tensor([1.0, 2.0, -1.0], dtype=tg.float64, requires_grad=True)
    b = tg.tensor([0.5, 3.0, -4.0], dtype=tg.float64, requires_grad=True)
    return a, b


def test_function_values_gradients_and_graph():
    a, b = _pair()
    y = LogAddExp.apply(a * 2, b)
    np.testing.assert_allclose(y.detach().numpy(), np.logaddexp(2 * a.detach().numpy(), b.detach().numpy()))
    assert y.grad_fn.name() == "LogAddExpBackward"
    names = [None if n is None else type(n).__name__ for n, _ in y.grad_fn.next_functions]
    assert names == ["Node", "AccumulateGrad"]
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward0"
    (y * y).sum().backward()
    ad, bd = 2 * a.detach().numpy(), b.detach().numpy()
    out = np.logaddexp(ad, bd)
    np.testing.assert_allclose(a.grad.numpy(), 2 * 2 * out * np.exp(ad - out))
    np.testing.assert_allclose(b.grad.numpy(), 2 * out * np.exp(bd - out))


def test_function_with_non_tensor_args_and_non_differentiable_output():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y, index = ScaleBy.apply(x, 3.0)
    assert y.requires_grad and y.grad_fn.name() == "ScaleByBackward"
    assert not index.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_needs_input_grad():
    seen = {}

    class Probe(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            seen["needs"] = ctx.needs_input_grad
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g, g

    Probe.apply(tg.ones(2, requires_grad=True), tg.ones(2))
    assert seen["needs"] == (True, False)


def test_function_under_no_grad_records_nothing():
    a, b = _pair()
    with tg.no_grad():
        y = LogAddExp.apply(a, b)
    assert not y.requires_grad and y.grad_fn is None


def test_function_wrong_number_of_gradients():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match=r"function BadBackward returned an incorrect number of gradients "
                                           r"\(expected 2, got 1\)"):
        Bad.apply(tg.ones(2, requires_grad=True), tg.ones(2)).sum().backward()


def test_function_wrong_gradient_shape_and_dtype():
    class BadShape(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    x = tg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Function BadShapeBackward returned an invalid gradient at index 0 "
                                           r"- got \[\] but expected shape compatible with \[3\]"):
        BadShape.apply(x).sum().backward()
    assert x.grad is None

    class BadDtype(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.double()

    with pytest.raises(RuntimeError, match="BadDtypeBackward returned an invalid gradient at index 0 - expected "
                                           "dtype tapegrad.float32 but got tapegrad.float64"):
        BadDtype.apply(x).sum().backward()


def test_function_gradient_for_non_tensor_input_is_an_error():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(RuntimeError, match="returned a gradient different than None at position 2"):
        Bad.apply(tg.ones(2, requires_grad=True), 2.0).sum().backward()


def test_function_saved_tensor_modified_in_place():
    a, b = _pair()
    a2, b2 = a * 1, b * 1
    y = LogAddExp.apply(a2, b2)
    with tg.no_grad():
        b2.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_function_second_backward_needs_retain_graph():
    a, b = _pair()
    y = LogAddExp.apply(a, b).sum()
    y.backward(retain_graph=True)
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_materialize_grads():
    seen = {}

    class TwoOut(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            seen["g2"] = g2
            return g1 * 2 if g2 is None else g1 * 2 + g2 * 3

    for materialize in (True, False):
        x = tg.ones(2, requires_grad=True)
        y1, _ = TwoOut.apply(x)
        y1.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
        if materialize:
            np.testing.assert_array_equal(seen["g2"].numpy(), [0.0, 0.0])
        else:
            assert seen["g2"] is None


def test_function_matches_torch():
    torch = pytest.importorskip("torch")
    a, b = _pair()
    (LogAddExp.apply(a, b) * tg.tensor([1.0, -2.0, 3.0], dtype=tg.float64)).sum().backward()
    at = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64, requires_grad=True)
    bt = torch.tensor([0.5, 3.0, -4.0], dtype=torch.float64, requires_grad=True)
    (torch.logaddexp(at, bt) * torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), bt.grad.numpy(), rtol=1e-12)


# -- compiled custom ops (module-level kernels, so their wrappers are cached by name) ----------------------

@njit(cache=True)
def softplus_vjp(x, out, g, gx):
    for i in range(x.size):
        gx.flat[i] += g.flat[i] / (1.0 + np.exp(-x.flat[i]))


@njit(cache=True)
def softplus_forward(x, out):
    for i in range(x.size):
        v = x.flat[i]
        out.flat[i] = max(v, 0.0) + np.log1p(np.exp(-abs(v)))


softplus = tg.custom_op("Softplus", softplus_forward, softplus_vjp)


@njit(cache=True)
def rowdot_forward(a, b, out):
    for i in range(a.shape[0]):
        s = 0.0
        for j in range(a.shape[1]):
            s += a[i, j] * b[j]
        out[i] = s


@njit(cache=True)
def rowdot_vjp(a, b, out, g, ga, gb):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            ga[i, j] += g[i] * b[j]
            gb[j] += g[i] * a[i, j]


rowdot = tg.custom_op("RowDot", rowdot_forward, rowdot_vjp, shape=lambda sa, sb: (sa[0],))


def test_custom_op_values_and_gradients():
    x = tg.tensor([[1.0, -2.0], [0.5, 30.0]], dtype=tg.float64, requires_grad=True)
    y = softplus(x * 2)
    xd = x.detach().numpy()
    np.testing.assert_allclose(y.detach().numpy(), np.logaddexp(0, 2 * xd))
    assert y.grad_fn.name() == "SoftplusBackward"
    (y * y).sum().backward()
    expected = 2 * np.logaddexp(0, 2 * xd) * 2 / (1 + np.exp(-2 * xd))
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_custom_op_with_two_inputs_and_shape_function():
    a = tg.tensor(np.arange(6.0).reshape(3, 2), dtype=tg.float64, requires_grad=True)
    b = tg.tensor([1.0, -1.0], dtype=tg.float64, requires_grad=True)
    y = rowdot(a, b)
    assert y.shape == (3,) and y.grad_fn.name() == "RowDotBackward"
    np.testing.assert_allclose(y.detach().numpy(), a.detach().numpy() @ b.detach().numpy())
    w = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)
    (y * w).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.outer(w.numpy(), b.detach().numpy()))
    np.testing.assert_allclose(b.grad.numpy(), w.numpy() @ a.detach().numpy())


def test_custom_op_in_a_larger_graph_and_float32():
    x = tg.tensor([0.1, -0.2, 0.3], requires_grad=True)          # float32 stays float32
    y = softplus(x.sin()).exp().sum()
    assert y.dtype == tg.float32
    y.backward()
    assert x.grad.dtype == tg.float32
    xd = x.detach().numpy().astype(np.float64)
    s = np.logaddexp(0, np.sin(xd))
    np.testing.assert_allclose(x.grad.numpy(), np.exp(s) / (1 + np.exp(-np.sin(xd))) * np.cos(xd), rtol=1e-6)


def test_custom_op_without_grad_records_nothing():
    y = softplus(tg.tensor([1.0, 2.0]))
    assert not y.requires_grad and y.grad_fn is None


def test_custom_op_errors_name_the_op():
    with pytest.raises(TypeError, match=r"Softplus\(\): input 0 must have a floating point dtype"):
        softplus(tg.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"Softplus\(\) takes 1 tensors but 2 were given"):
        softplus(tg.ones(2), tg.ones(2))
    with pytest.raises(RuntimeError, match="same shape"):
        tg.custom_op("Pair", rowdot_forward, rowdot_vjp)(tg.ones(2, 2), tg.ones(3))
    with pytest.raises(TypeError, match="the vjp must take 4 arrays"):
        tg.custom_op("Broken", softplus_forward, rowdot_vjp)


def test_custom_op_kernel_in_main_style_scope_still_works():
    # kernels that can't be imported by name get an uncached wrapper, but must still be correct
    @njit
    def cube_forward(x, out):
        for i in range(x.size):
            out.flat[i] = x.flat[i] ** 3

    @njit
    def cube_vjp(x, out, g, gx):
        for i in range(x.size):
            gx.flat[i] += 3 * x.flat[i] ** 2 * g.flat[i]

    cube = tg.custom_op("Cube", cube_forward, cube_vjp)
    x = tg.tensor([1.0, -2.0], dtype=tg.float64, requires_grad=True)
    cube(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_custom_op_example_runs_and_its_tests_pass():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    example = os.path.join(root, "examples", "custom_op.py")
    run = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "gradcheck: True True" in run.stdout
    assert "caught: gradcheck failed for 'BrokenSoftplus'" in run.stdout
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", example],
                           capture_output=True, text=True, timeout=600, cwd=root)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
