"""rosenbrock: value and gradient of the extended Rosenbrock function (n=100) at 1,000 points."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad

NAME = "rosenbrock"
DESCRIPTION = ("extended Rosenbrock, n=100, written with slices, ** and sum; value and grad at "
               "1,000 successive points (one call = all points: per-call overhead)")
CASES = ("1000 points",)
RTOL = 1e-9

N = 100
POINTS = 1000
SEED = 3


def configure(smoke: bool) -> None:
    """Fewer points for --smoke."""
    global POINTS
    POINTS = 10 if smoke else 1000


def data() -> np.ndarray:
    """Seeded points, one per row."""
    return np.random.default_rng(SEED).uniform(-2.0, 2.0, (POINTS, N))


def rosenbrock(x):
    """Works on torch, tapegrad, jax and autograd arrays alike."""
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def _results(pairs):
    values, grads = zip(*pairs)
    return float(np.sum(values)), {"values": np.array([float(v) for v in values]),
                                   "grads": np.stack([as_array(g) for g in grads])}


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _points(self):
        return [self.lib.from_numpy(p) for p in data()]

    def _value_and_grad(self, point):
        x = point.clone().requires_grad_(True)
        y = rosenbrock(x)
        y.backward()
        return y, x.grad

    def result(self):
        """Sum of the values, and every value and gradient."""
        return _results((y.item(), g) for y, g in map(self._value_and_grad, self._points()))

    def setup(self, case):
        """Points are converted untimed; each call makes a leaf per point."""
        points, vg = self._points(), self._value_and_grad

        def call():
            for p in points:
                vg(p)

        return Timed(call)


class Compiled:
    """tg.compile(tg.value_and_grad(rosenbrock)) called once per point."""

    def __init__(self, tg):
        self.tg = tg

    def _setup(self):
        return compiled_value_and_grad(self.tg, rosenbrock, 0), [
            self.tg.from_numpy(p) for p in data()]

    def result(self):
        """Sum of the values, and every value and gradient."""
        fn, points = self._setup()
        return _results(fn(p) for p in points)

    def setup(self, case):
        """A fresh compiled function."""
        fn, points = self._setup()

        def call():
            for p in points:
                fn(p)

        return Timed(call)


class Vmap:
    """tg.vmap of the compiled value_and_grad: every point in one call, the rows replayed in parallel by numba
    (on as many threads as numba has: run without --threads 1 to see the parallel speed-up)."""

    def __init__(self, tg):
        self.tg = tg

    def _setup(self):
        fn = self.tg.vmap(compiled_value_and_grad(self.tg, rosenbrock, 0))
        return fn, self.tg.from_numpy(data())

    def result(self):
        """Sum of the values, and every value and gradient."""
        fn, points = self._setup()
        values, grads = fn(points)
        return float(as_array(values).sum()), {"values": as_array(values), "grads": as_array(grads)}

    def setup(self, case):
        """A fresh compiled function (its first row records the trace)."""
        fn, points = self._setup()
        return Timed(lambda: fn(points))


class Jax:
    """jax.jit(jax.value_and_grad(rosenbrock)) called once per point."""

    def __init__(self, jax):
        self.jax = jax

    def _setup(self):
        jax, jnp = self.jax, self.jax.numpy
        fn = jax.jit(jax.value_and_grad(lambda x: rosenbrock(x)))
        return fn, [jnp.asarray(p) for p in data()]

    def result(self):
        """Sum of the values, and every value and gradient."""
        fn, points = self._setup()
        return _results(fn(p) for p in points)

    def setup(self, case):
        """A fresh jitted function; each point's result is waited for."""
        (fn, points), block = self._setup(), self.jax.block_until_ready

        def call():
            for p in points:
                block(fn(p))

        return Timed(call)


class Autograd:
    """HIPS autograd's value_and_grad called once per point."""

    def __init__(self, ag):
        self.fn = ag.value_and_grad(rosenbrock)

    def result(self):
        """Sum of the values, and every value and gradient."""
        return _results(self.fn(p) for p in data())

    def setup(self, case):
        """Nothing to set up."""
        fn, points = self.fn, list(data())

        def call():
            for p in points:
                fn(p)

        return Timed(call)


def _numba_value_and_grad(numba):
    """The hand-written gradient, one loop over the terms."""

    @numba.njit
    def value_and_grad(x):
        g = np.zeros_like(x)
        total = 0.0
        for i in range(x.size - 1):
            d = x[i + 1] - x[i] ** 2
            e = 1 - x[i]
            total += 100 * d * d + e * e
            g[i] += -400 * d * x[i] - 2 * e
            g[i + 1] += 200 * d
        return total, g

    return value_and_grad


class NumbaReference:
    """A hand-written numba gradient called once per point: the floor for this workload."""

    def __init__(self, numba):
        self.fn = _numba_value_and_grad(numba)

    def result(self):
        """Sum of the values, and every value and gradient."""
        return _results(self.fn(p) for p in data())

    def setup(self, case):
        """Compiled by result() already."""
        fn, points = self.fn, list(data())

        def call():
            for p in points:
                fn(p)

        return Timed(call)


IMPLS = {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "tapegrad vmap": Vmap, "torch eager": TorchLike,
         "jax jit": Jax, "autograd": Autograd, "numba reference": NumbaReference}
