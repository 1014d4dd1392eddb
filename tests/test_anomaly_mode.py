"""Anomaly mode (tapegrad.autograd.detect_anomaly / set_detect_anomaly): a backward producing nan raises PyTorch's
error naming the function and output, after a warning showing the forward call; gradients are unchanged."""
import threading
import warnings

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import autograd


@pytest.fixture(autouse=True)
def anomaly_off_afterwards():
    yield
    tg.set_anomaly_enabled(False)


# -- programs that produce a nan gradient, run on torch and tapegrad alike; each marks its culprit line -------

def zero_over_zero(M):
    x = M.tensor([0.0, 1.0], requires_grad=True)
    z = M.tensor([0.0, 2.0], requires_grad=True)
    y = x / z  # culprit
    return (y * 2).sum()


def sqrt_at_zero(M):
    x = M.tensor([0.0, 4.0], requires_grad=True)
    r = M.sqrt(x)  # culprit
    return (r * 0).sum()


def sqrt_of_square(M):
    x = M.tensor([0.0, -3.0], requires_grad=True)
    s = x ** 2  # culprit
    return M.sqrt(s).sum()


def log_of_zero_in_a_longer_program(M):
    x = M.tensor([0.0, 1.0, 2.0], requires_grad=True)
    w = M.tensor([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0], [2.0, 0.0, 1.0]], requires_grad=True)
    h = M.tanh(x) * 3
    m = M.relu(h - 1)
    lm = M.log(m)  # culprit
    e = lm.clamp(min=-10.0)   # log(0) = -inf, clamped: its gradient there is 0, and 0 / 0 in log's backward
    return (w @ e).mean() + (x ** 2).sum()


PROGRAMS = [zero_over_zero, sqrt_at_zero, sqrt_of_square, log_of_zero_in_a_longer_program]
EXPECTED = {
    zero_over_zero: "Function 'DivBackward0' returned nan values in its 1th output.",
    sqrt_at_zero: "Function 'SqrtBackward0' returned nan values in its 0th output.",
    sqrt_of_square: "Function 'PowBackward0' returned nan values in its 0th output.",
    log_of_zero_in_a_longer_program: "Function 'LogBackward0' returned nan values in its 0th output.",
}


def _failure(M, program):
    """(the error's message, the warnings' texts) of program's backward in anomaly mode."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with M.autograd.detect_anomaly():
            loss = program(M)
            with pytest.raises(RuntimeError) as err:
                loss.backward()
    return str(err.value), [str(w.message) for w in caught]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_nan_gradient_raises_naming_the_function_and_output(program):
    message, _ = _failure(tg, program)
    assert message == EXPECTED[program]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_message_matches_torch(program):
    torch = pytest.importorskip("torch")
    assert _failure(tg, program)[0] == _failure(torch, program)[0]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_warning_shows_the_forward_call_on_the_users_line(program):
    _, texts = _failure(tg, program)
    shown = [t for t in texts if t.startswith("Error detected in")]
    assert len(shown) == 1
    text = shown[0]
    name = EXPECTED[program].split("'")[1]
    assert text.startswith(f"Error detected in {name}. Traceback of forward call that caused the error:\n")
    last_frame = text.rstrip().splitlines()[-2:]
    assert __file__ in last_frame[0] and f"in {program.__name__}" in last_frame[0]
    assert last_frame[1].strip().endswith("# culprit")


def test_detect_anomaly_warns_that_it_is_on_like_torch():
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        with autograd.detect_anomaly():
            assert autograd.is_anomaly_enabled() and tg.is_anomaly_enabled()
    assert not autograd.is_anomaly_enabled()


def test_without_anomaly_mode_gradients_hold_the_nan():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    z = tg.tensor([0.0, 2.0], requires_grad=True)
    (x / z).sum().backward()
    assert np.isnan(z.grad.numpy()[0]) and np.isinf(x.grad.numpy()[0])


def test_check_nan_false_records_stacks_but_does_not_raise():
    with pytest.warns(UserWarning):
        with autograd.detect_anomaly(check_nan=False):
            assert not autograd.is_anomaly_check_nan_enabled()
            zero_over_zero(tg).backward()
    assert autograd.is_anomaly_check_nan_enabled()


def test_set_detect_anomaly_applies_at_once_and_restores_on_exit():
    with autograd.set_detect_anomaly(True):
        assert autograd.is_anomaly_enabled()
        with autograd.set_detect_anomaly(False):
            assert not autograd.is_anomaly_enabled()
        assert autograd.is_anomaly_enabled()
    assert not autograd.is_anomaly_enabled()
    autograd.set_detect_anomaly(True)
    assert autograd.is_anomaly_enabled()


def test_decorator():
    with pytest.warns(UserWarning):
        @autograd.detect_anomaly()
        def step():
            assert autograd.is_anomaly_enabled()
            zero_over_zero(tg).backward()

    with pytest.raises(RuntimeError, match="DivBackward0"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step()
    assert not autograd.is_anomaly_enabled()


def test_anomaly_mode_is_global_like_torchs():
    seen = []
    with autograd.set_detect_anomaly(True):
        t = threading.Thread(target=lambda: seen.append(autograd.is_anomaly_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_forward_recorded_outside_anomaly_mode_has_no_stack():
    loss = zero_over_zero(tg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autograd.set_detect_anomaly(True)
        with pytest.raises(RuntimeError, match="DivBackward0"):
            loss.backward()
    assert any("No forward pass information available" in str(w.message) for w in caught)


def test_other_backward_errors_show_the_forward_call_too():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        autograd.set_detect_anomaly(True)
        b = (x * 1).exp()  # saves its result
        b.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            b.sum().backward()
    texts = [str(w.message) for w in caught if str(w.message).startswith("Error detected in ExpBackward0")]
    assert len(texts) == 1 and texts[0].rstrip().endswith("# saves its result")


def test_a_function_whose_backward_returns_nan():
    class Bad(autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        autograd.set_detect_anomaly(True)
        y = Bad.apply(x)
        with pytest.raises(RuntimeError, match="Function 'BadBackward' returned nan values in its 0th output."):
            y.sum().backward()


# -- the record-at-a-time sweep computes what the compiled sweep computes --------------------------------

def _programs_for_gradients():
    def mlp():
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(3, 5), tg.nn.Tanh(), tg.nn.Linear(5, 2))
        x = tg.randn(4, 3, requires_grad=True)
        return [x, *model.parameters()], lambda: tg.nn.functional.log_softmax(model(x), 1).sum()

    def scalars():
        a = tg.tensor(0.7, requires_grad=True)
        b = tg.tensor(-1.3, requires_grad=True)
        return [a, b], lambda: ((a * b + a.exp()) / (b * b + 1) - a.sin() * 3) ** 2

    def shapes_and_writes():
        x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
        w = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)

        def f():
            c = tg.cat([x, x * w, w[None]], 0)
            s = tg.stack([c[0], c[2]]).clamp(-1.5, 4.0)
            h = c.clone()
            h[1].mul_(w)
            h[:, 0] = 0.0
            return (tg.where(s > 0, s, s * 2).sum() + h.sum() + tg.addmm(w, x.t(), x).mean()) * 2
        return [x, w], f

    return [mlp, scalars, shapes_and_writes]


@pytest.mark.parametrize("make", _programs_for_gradients(), ids=lambda m: m.__name__)
def test_gradients_in_anomaly_mode_equal_ordinary_ones(make):
    leaves, f = make()
    expected = [g.numpy() for g in tg.autograd.grad(f(), leaves)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with autograd.detect_anomaly():
            got = [g.numpy() for g in tg.autograd.grad(f(), leaves)]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
