"""elementwise: sum(sin(x)*exp(-x**2) + tanh(x)) over 1,000,000 float64 values: memory-bound."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad

NAME = "elementwise"
DESCRIPTION = "sum(sin(x)*exp(-x**2) + tanh(x)) on 1,000,000 float64 values; value and grad wrt x"
CASES = ("fwd+bwd",)
# Sums of a million terms are accumulated in different orders (pairwise, blocked, vectorised).
RTOL = 1e-9

SIZE = 1_000_000
SEED = 7


def configure(smoke: bool) -> None:
    """Fewer values for --smoke."""
    global SIZE
    SIZE = 10_000 if smoke else 1_000_000


def data() -> np.ndarray:
    """Seeded inputs."""
    return np.random.default_rng(SEED).standard_normal(SIZE)


def _f(x, sin, exp, tanh):
    return (sin(x) * exp(-x ** 2) + tanh(x)).sum()


def _torch_f(x):
    return _f(x, lambda t: t.sin(), lambda t: t.exp(), lambda t: t.tanh())


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def result(self):
        """The sum and its gradient."""
        x = self.lib.tensor(data(), dtype=self.lib.float64, requires_grad=True)
        y = _torch_f(x)
        y.backward()
        return y.item(), {"d/dx": as_array(x.grad)}

    def setup(self, case):
        """The leaf is made once; its grad is cleared in the timed call."""
        x = self.lib.tensor(data(), dtype=self.lib.float64, requires_grad=True)

        def step():
            _torch_f(x).backward()
            x.grad = None

        return Timed(step)


class Compiled:
    """tg.compile(tg.value_and_grad(f))."""

    def __init__(self, tg):
        self.tg = tg

    def _call(self):
        fn = compiled_value_and_grad(self.tg, _torch_f, 0)
        x = self.tg.tensor(data(), dtype=self.tg.float64)
        return lambda: fn(x)

    def result(self):
        """The sum and its gradient."""
        value, grad = self._call()()
        return float(value), {"d/dx": as_array(grad)}

    def setup(self, case):
        """A fresh compiled function."""
        return Timed(self._call())


class Jax:
    """jax.jit(jax.value_and_grad(f))."""

    def __init__(self, jax):
        self.jax = jax

    def _call(self):
        jax, jnp = self.jax, self.jax.numpy
        fn = jax.jit(jax.value_and_grad(lambda x: _f(x, jnp.sin, jnp.exp, jnp.tanh)))
        x = jnp.asarray(data())
        return lambda: jax.block_until_ready(fn(x))

    def result(self):
        """The sum and its gradient."""
        value, grad = self._call()()
        return float(value), {"d/dx": as_array(grad)}

    def setup(self, case):
        """A fresh jitted function."""
        return Timed(self._call())


class Autograd:
    """HIPS autograd on a numpy array."""

    def __init__(self, ag):
        anp = ag.numpy
        self.fn = ag.value_and_grad(lambda x: _f(x, anp.sin, anp.exp, anp.tanh))

    def result(self):
        """The sum and its gradient."""
        value, grad = self.fn(data())
        return float(value), {"d/dx": as_array(grad)}

    def setup(self, case):
        """Nothing to set up."""
        x, fn = data(), self.fn
        return Timed(lambda: fn(x))


IMPLS = {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "torch eager": TorchLike,
         "jax jit": Jax, "autograd": Autograd}
