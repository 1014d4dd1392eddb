"""scalar_chain: the logistic map x <- r*x*(1-x) for 1,000 steps on 0-d float64 tensors."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad

NAME = "scalar_chain"
DESCRIPTION = "logistic map x <- r*x*(1-x), 1,000 steps on 0-d float64 tensors; grads wrt r, x0"
CASES = ("fwd+bwd", "fwd", "bwd")
# r = 3.7 is chaotic, so any reordering of the forward arithmetic changes x_1000 completely;
# systems must evaluate (r*x)*(1-x) op for op as written, which makes this tolerance fair.
RTOL = 1e-9

STEPS = 1000
R = 3.7
X0 = 0.3


def _forward(r, x0):
    x = x0
    for _ in range(STEPS):
        x = r * x * (1 - x)
    return x


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _leaves(self):
        t = self.lib.tensor
        f64 = self.lib.float64
        return t(R, dtype=f64, requires_grad=True), t(X0, dtype=f64, requires_grad=True)

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        r, x0 = self._leaves()
        x = _forward(r, x0)
        x.backward()
        return x.item(), {"d/dr": as_array(r.grad), "d/dx0": as_array(x0.grad)}

    def setup(self, case):
        """Leaves are made once; grads are cleared in the timed call (fwd+bwd) or untimed (bwd)."""
        r, x0 = self._leaves()
        forward = _forward

        def clear():
            r.grad = None
            x0.grad = None

        if case == "fwd+bwd":
            def step():
                forward(r, x0).backward()
                clear()
            return Timed(step)
        if case == "fwd":
            return Timed(lambda: forward(r, x0), per_call=True)
        if case == "bwd":
            def build():
                clear()
                return forward(r, x0)
            return Timed(lambda x: x.backward(), prepare=build)
        raise ValueError(case)


class Compiled:
    """tg.compile(tg.value_and_grad(f)) of the same Python function."""

    CASES = ("fwd+bwd",)

    def __init__(self, tg):
        self.tg = tg

    def _call(self):
        tg = self.tg
        fn = compiled_value_and_grad(tg, _forward, (0, 1))
        r, x0 = tg.tensor(R, dtype=tg.float64), tg.tensor(X0, dtype=tg.float64)
        return lambda: fn(r, x0)

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        value, (gr, gx0) = self._call()()
        return float(value), {"d/dr": as_array(gr), "d/dx0": as_array(gx0)}

    def setup(self, case):
        """A fresh compiled function, so the first (recording) call is measured in warm-up."""
        return Timed(self._call())


class Jax:
    """jax.jit(jax.value_and_grad(f)) with the loop as lax.fori_loop (the fast form for jax)."""

    CASES = ("fwd+bwd",)

    def __init__(self, jax):
        self.jax = jax

    def _call(self):
        jax, jnp = self.jax, self.jax.numpy

        def f(r, x0):
            return jax.lax.fori_loop(0, STEPS, lambda i, x: r * x * (1 - x), x0)

        fn = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
        r, x0 = jnp.asarray(R, dtype=jnp.float64), jnp.asarray(X0, dtype=jnp.float64)
        return lambda: jax.block_until_ready(fn(r, x0))

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        value, (gr, gx0) = self._call()()
        return float(value), {"d/dr": as_array(gr), "d/dx0": as_array(gx0)}

    def setup(self, case):
        """A fresh jitted function, so the first call (tracing and compiling) is measured."""
        return Timed(self._call())


class Autograd:
    """HIPS autograd on Python floats."""

    CASES = ("fwd+bwd",)

    def __init__(self, ag):
        self.fn = ag.value_and_grad(lambda p: _forward(p[0], p[1]))

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        value, (gr, gx0) = self.fn((R, X0))
        return float(value), {"d/dr": as_array(gr), "d/dx0": as_array(gx0)}

    def setup(self, case):
        """Nothing to set up."""
        fn = self.fn
        return Timed(lambda: fn((R, X0)))


def _numba_value_and_grad(numba):
    """Hand-written forward and adjoint loops, op for op as torch differentiates them."""

    @numba.njit
    def value_and_grad(r, x0, steps):
        xs = np.empty(steps + 1)
        xs[0] = x0
        for i in range(steps):
            x = xs[i]
            xs[i + 1] = (r * x) * (1 - x)
        gx, gr = 1.0, 0.0
        for i in range(steps - 1, -1, -1):
            x = xs[i]
            t, u = r * x, 1 - x      # y = t * u
            gt, gu = gx * u, gx * t
            gr += gt * x
            gx = gt * r - gu
        return xs[steps], gr, gx

    return value_and_grad


class NumbaReference:
    """A hand-written numba value-and-gradient: the floor for this workload."""

    CASES = ("fwd+bwd",)

    def __init__(self, numba):
        self.fn = _numba_value_and_grad(numba)

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        value, gr, gx0 = self.fn(R, X0, STEPS)
        return value, {"d/dr": as_array(gr), "d/dx0": as_array(gx0)}

    def setup(self, case):
        """Compiled by result() already."""
        fn = self.fn
        return Timed(lambda: fn(R, X0, STEPS))


IMPLS = {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "torch eager": TorchLike,
         "jax jit": Jax, "autograd": Autograd, "numba reference": NumbaReference}


def metrics(impls: dict, rows: list) -> list[dict]:
    """Nanoseconds per tape record of the compiled value-and-gradient call (forward replay and reverse sweep
    together, per-call overhead included), from the timed median and the recorded trace's length."""
    impl = impls.get("tapegrad compiled")
    row = next((r for r in rows if r.system == "tapegrad compiled" and r.case == "fwd+bwd" and r.stats), None)
    if impl is None or row is None:
        return []
    tg = impl.tg
    fn = compiled_value_and_grad(tg, _forward, (0, 1))
    fn(tg.tensor(R, dtype=tg.float64), tg.tensor(X0, dtype=tg.float64))
    records = sum(trace.n for traces in fn.traces.values() for trace in traces)
    return [{"system": "tapegrad compiled", "metric": "records in the trace", "value": records, "unit": ""},
            {"system": "tapegrad compiled", "metric": "fwd+bwd time per record", "value": row.stats.median / records * 1e9,
             "unit": "ns"}]
