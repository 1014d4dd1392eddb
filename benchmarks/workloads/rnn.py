"""rnn: a tanh RNN (hidden 32, input 8, batch 8) unrolled over 200 steps; grads wrt the weights."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad

NAME = "rnn"
DESCRIPTION = ("tanh RNN h <- tanh(x_t Wx + h Wh + b), hidden 32, input 8, batch 8, 200 steps; "
               "loss sum(h_T**2), grads wrt Wx, Wh, b")
CASES = ("fwd+bwd",)
RTOL = 1e-9

HIDDEN, INPUT, BATCH = 32, 8, 8
STEPS = 200
SEED = 11
WEIGHTS = ("Wx", "Wh", "b")


def configure(smoke: bool) -> None:
    """Fewer steps for --smoke."""
    global STEPS
    STEPS = 20 if smoke else 200


def data() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Seeded inputs (steps, batch, input) and weights."""
    rng = np.random.default_rng(SEED)
    xs = rng.standard_normal((STEPS, BATCH, INPUT))
    weights = {"Wx": rng.standard_normal((INPUT, HIDDEN)) / np.sqrt(INPUT),
               "Wh": rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN),
               "b": 0.1 * rng.standard_normal(HIDDEN)}
    return xs, weights


def _loss(xs, Wx, Wh, b, h0, tanh):
    """xs is a sequence of (batch, input) arrays."""
    h = h0
    for x in xs:
        h = tanh(x @ Wx + h @ Wh + b)
    return (h ** 2).sum()


def _tanh(t):
    return t.tanh()


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _state(self):
        lib = self.lib
        xs, weights = data()
        ws = [lib.tensor(weights[k], dtype=lib.float64, requires_grad=True) for k in WEIGHTS]
        steps = [lib.from_numpy(x) for x in xs]  # split untimed, like a data loader would
        return steps, ws, lib.zeros((BATCH, HIDDEN), dtype=lib.float64)

    def result(self):
        """The loss and its gradients wrt the weights."""
        steps, ws, h0 = self._state()
        loss = _loss(steps, *ws, h0, _tanh)
        loss.backward()
        return loss.item(), {f"d/d{k}": as_array(w.grad) for k, w in zip(WEIGHTS, ws)}

    def setup(self, case):
        """Weights are made once; their grads are cleared in the timed call."""
        steps, ws, h0 = self._state()

        def step():
            _loss(steps, *ws, h0, _tanh).backward()
            for w in ws:
                w.grad = None

        return Timed(step)


class Compiled:
    """tg.compile(tg.value_and_grad(loss)) wrt the three weights."""

    def __init__(self, tg):
        self.tg = tg

    def _call(self):
        tg = self.tg
        xs, weights = data()
        ws = [tg.tensor(weights[k], dtype=tg.float64) for k in WEIGHTS]
        steps = [tg.from_numpy(x) for x in xs]
        h0 = tg.zeros((BATCH, HIDDEN), dtype=tg.float64)
        fn = compiled_value_and_grad(
            tg, lambda Wx, Wh, b, h0, *steps: _loss(steps, Wx, Wh, b, h0, _tanh), (0, 1, 2))
        return lambda: fn(*ws, h0, *steps)

    def result(self):
        """The loss and its gradients wrt the weights."""
        value, grads = self._call()()
        return float(value), {f"d/d{k}": as_array(g) for k, g in zip(WEIGHTS, grads)}

    def setup(self, case):
        """A fresh compiled function."""
        return Timed(self._call())


class Jax:
    """jax.jit(jax.value_and_grad(loss)) with the time loop as lax.scan."""

    def __init__(self, jax):
        self.jax = jax

    def _call(self):
        jax, jnp = self.jax, self.jax.numpy
        xs, weights = data()

        def loss(Wx, Wh, b, xs):
            def cell(h, x):
                return jnp.tanh(x @ Wx + h @ Wh + b), None
            h, _ = jax.lax.scan(cell, jnp.zeros((BATCH, HIDDEN)), xs)
            return (h ** 2).sum()

        fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))
        args = [jnp.asarray(weights[k]) for k in WEIGHTS] + [jnp.asarray(xs)]
        return lambda: jax.block_until_ready(fn(*args))

    def result(self):
        """The loss and its gradients wrt the weights."""
        value, grads = self._call()()
        return float(value), {f"d/d{k}": as_array(g) for k, g in zip(WEIGHTS, grads)}

    def setup(self, case):
        """A fresh jitted function."""
        return Timed(self._call())


class Autograd:
    """HIPS autograd on numpy arrays."""

    def __init__(self, ag):
        anp = ag.numpy
        self.fn = ag.value_and_grad(
            lambda ws, xs: _loss(xs, *ws, np.zeros((BATCH, HIDDEN)), anp.tanh))

    def result(self):
        """The loss and its gradients wrt the weights."""
        xs, weights = data()
        value, grads = self.fn([weights[k] for k in WEIGHTS], list(xs))
        return float(value), {f"d/d{k}": as_array(g) for k, g in zip(WEIGHTS, grads)}

    def setup(self, case):
        """Nothing to set up."""
        xs, weights = data()
        ws, steps, fn = [weights[k] for k in WEIGHTS], list(xs), self.fn
        return Timed(lambda: fn(ws, steps))


IMPLS = {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "torch eager": TorchLike,
         "jax jit": Jax, "autograd": Autograd}
