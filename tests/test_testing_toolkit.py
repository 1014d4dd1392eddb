"""The testing toolkit itself: deliberately broken ops must be caught, correct ones must pass, strategies behave.

A broken "op" keeps the right value but routes the gradient wrongly through detach(): v + (x - x.detach()) * w
has the value v and the gradient w.
"""
import re

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad.testing import (GradcheckError, GradcheckWarning, check_op, floats_avoiding, given_op, gradcheck,
                              mutually_broadcastable_shapes, shapes, tensors)

small = shapes(max_dims=2, max_side=3)


def _named(name):
    def rename(fn):
        fn.__name__ = name
        return fn
    return rename


# -- broken ops ----------------------------------------------------------------------------------------------------

@_named("square_missing_factor_2")
def square_missing_factor_2(x):
    return x * x.detach()


@_named("square_wrong_sign")
def square_wrong_sign(x):
    d = x.detach()
    return 3.0 * d * d - 2.0 * d * x           # value x**2, gradient -2x


@_named("mul_ignoring_input_1")
def mul_ignoring_input_1(x, y):
    return x * y.detach()


@_named("add_without_broadcast_reduction")
def add_without_broadcast_reduction(x, y):
    # y (1,) broadcast over x (n,): its gradient must be the sum over x's elements, this keeps only element 0
    first = np.zeros(x.shape)
    first[0] = 1.0
    return x + y.detach() + (y - y.detach()) * tg.tensor(first)


@_named("mm_transposed_grad")
def mm_transposed_grad(a, b):
    return a.detach() @ b + (a - a.detach()) @ b.detach().t()     # dL/da = G @ b instead of G @ b.T


@_named("square_wrong_near_zero")
def square_wrong_near_zero(x):
    near = tg.tensor((np.abs(x.detach().numpy()) < 0.5).astype(np.float64))
    return near * (x * x.detach()) + (1.0 - near) * (x * x)


@_named("sum_dropping_last_element")
def sum_dropping_last_element(x):
    keep = np.ones(x.shape)
    keep.reshape(-1)[-1] = 0.0
    return (x.detach() + (x - x.detach()) * tg.tensor(keep)).sum()


@_named("sin_gradient_slightly_off")
def sin_gradient_slightly_off(x):
    return x.sin() + 0.01 * (x - x.detach()) * x.detach().cos()


@_named("modifies_its_input")
def modifies_its_input(x):
    y = x * 2.0
    with tg.no_grad():
        x.add_(1e-3)
    return y


square = st.tuples(st.integers(1, 3)).flatmap(lambda n: st.tuples(tensors(shape=(n[0], n[0])),
                                                                 tensors(shape=(n[0], n[0]))))
vector_and_one = st.integers(2, 4).flatmap(lambda n: st.tuples(tensors(shape=(n,)), tensors(shape=(1,))))

MUTANTS = [
    (square_missing_factor_2, (tensors(shape=small),), 0),
    (square_wrong_sign, (tensors(shape=small),), 0),
    (mul_ignoring_input_1, (tensors(shape=(2,)), tensors(shape=(2,))), 1),
    (add_without_broadcast_reduction, "vector_and_one", 1),     # drawn together: the shapes depend on each other
    (mm_transposed_grad, "square", 0),
    (square_wrong_near_zero, (tensors(shape=small),), 0),
    (sum_dropping_last_element, (tensors(shape=shapes(min_dims=1, max_dims=2, max_side=3)),), 0),
    (sin_gradient_slightly_off, (tensors(shape=small),), 0),
]


@pytest.mark.parametrize("fn, strategies, bad_input", MUTANTS, ids=[m[0].__name__ for m in MUTANTS])
def test_broken_op_is_caught(fn, strategies, bad_input):
    """Within the profile's number of examples, the property test fails and names the op and the input."""
    if isinstance(strategies, str):
        @given(square if strategies == "square" else vector_and_one)
        def test(ab):
            check_op(fn, *ab)
    else:
        test = given_op(fn, *strategies)
    with pytest.raises(GradcheckError) as info:
        test()
    msg = str(info.value)
    assert f"gradcheck failed for '{fn.__name__}'" in msg
    assert f"with respect to input {bad_input}" in msg
    assert re.search(r"analytical: .*\n  numerical: ", msg) and "relative error" in msg
    assert "worst element: output 0" in msg


def test_counterexample_is_shrunk_to_something_small():
    """The reported failure of a broken square is a tiny tensor with a simple value."""
    with pytest.raises(GradcheckError) as info:
        given_op(square_missing_factor_2, tensors(shape=shapes(max_dims=3, max_side=4)))()
    msg = str(info.value)
    assert "input 0 (() float64)" in msg, msg
    assert re.search(r"input 0: (1\.0|-1\.0|0\.5|-0\.5|2\.0|-2\.0)\n", msg), msg


def test_input_modified_in_place_is_caught():
    with pytest.raises(GradcheckError, match="'modifies_its_input'.*input 0 was modified in place"):
        gradcheck(modifies_its_input, tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True))


def test_raise_exception_false_returns_false():
    x = tg.tensor([0.5, -1.0], dtype=tg.float64, requires_grad=True)
    assert gradcheck(square_missing_factor_2, x, raise_exception=False) is False
    assert gradcheck(lambda t: t * t, x) is True


def test_non_float64_inputs_warn():
    x = tg.tensor([0.5, 1.0], dtype=tg.float32, requires_grad=True)
    with pytest.warns(GradcheckWarning, match="not a double precision"):
        gradcheck(lambda t: t * 2.0, x, eps=1e-2, atol=1e-3, rtol=1e-2)


def test_no_differentiable_input_is_an_error():
    with pytest.raises(ValueError, match="no input tensor requires grad"):
        gradcheck(lambda t: t * 2.0, tg.tensor([1.0], dtype=tg.float64))


# -- correct ops: no false alarm over >= 1000 examples ----------------------------------------------------------

CORRECT = [
    (lambda x: x * x, (tensors(shape=small),)),
    (lambda x, y: x * y + x / (y * y + 1.0), "broadcast"),
    (lambda x: (x.sin() * x.exp()).sum(-1) if x.ndim else x.tanh(), (tensors(shape=small),)),
    (lambda x: x.abs() + x.relu(), (tensors(shape=small, elements=floats_avoiding((0.0,), margin=1e-3)),)),
    (lambda x: (x * x).log() + x.reciprocal(), (tensors(shape=small, elements=floats_avoiding((0.0,), 0.1)),)),
    (lambda a: a @ a.t() if a.ndim == 2 else a.sigmoid(), (tensors(shape=small),)),
    (lambda x: x.clone().mul_(2.0).sum(0) if x.ndim else x * 2.0, (tensors(shape=small),)),
    (lambda x: (x[..., :1] if x.ndim else x) * x.mean(), (tensors(shape=small),)),
]
EXAMPLES_EACH = 130    # 8 ops x 130 >= 1000 examples


@pytest.mark.parametrize("k", range(len(CORRECT)))
def test_correct_ops_never_fail(k):
    fn, strategies = CORRECT[k]
    fn.__name__ = f"correct_{k}"
    if strategies == "broadcast":
        strategies = ()

        @settings(max_examples=EXAMPLES_EACH)
        @given(mutually_broadcastable_shapes(2, max_dims=2, max_side=3).flatmap(
            lambda ss: st.tuples(tensors(shape=ss[0]), tensors(shape=ss[1]))))
        def test(xy):
            assert check_op(fn, *xy)
    else:
        test = given_op(fn, *strategies, max_examples=EXAMPLES_EACH)
    test()


# -- the strategies ---------------------------------------------------------------------------------------------

@given(st.data())
def test_floats_avoiding_respects_the_margin(data):
    points = data.draw(st.lists(st.floats(-2, 2), max_size=3))
    margin = data.draw(st.floats(1e-3, 0.3))
    v = data.draw(floats_avoiding(points, margin, -3.0, 3.0))
    assert -3.0 <= v <= 3.0 and all(abs(v - p) >= margin for p in points)


def test_strategies_shrink_to_simple_values_and_small_shapes():
    assert find(floats_avoiding((0.0,), 0.01), lambda v: True) == 1.0
    assert find(floats_avoiding((1.0,), 0.1, 0.5, 3.0), lambda v: True) == 0.5
    assert find(shapes(), lambda s: True) == ()
    t = find(tensors(), lambda t: t.ndim >= 2)
    assert tuple(t.shape) == (1, 1)


@given(tensors(dtype=tg.float32, shape=shapes(min_dims=1, max_dims=2)))
def test_tensors_have_the_requested_dtype_and_grad(t):
    assert t.dtype is tg.float32 and t.requires_grad and t.is_leaf and 1 <= t.ndim <= 2
    assert np.isfinite(t.detach().numpy()).all()


@given(mutually_broadcastable_shapes(3))
def test_mutually_broadcastable_shapes_broadcast(ss):
    assert len(ss) == 3
    np.broadcast_shapes(*ss)


def test_given_op_as_decorator_and_assignment():
    @given_op(tg.sin, tensors(shape=small), max_examples=5)
    def test_sine():
        """sin is right."""
    assert test_sine.__name__ == "test_sine" and test_sine.__doc__ == "sin is right."
    test_sine()
    assigned = given_op(tg.exp, tensors(shape=small), max_examples=5)
    assert assigned.__name__ == "test_exp_gradcheck"
    assigned()


def test_readme_lists_exactly_the_operations_of_the_op_database():
    import pathlib
    from tapegrad.testing.op_db import supported_operations_markdown
    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert supported_operations_markdown() in readme, "regenerate the table: python -m tapegrad.testing.op_db"
