"""reduce_broadcast: reductions and broadcasting over 1,000,000 float64 values, against numpy written by hand."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad

NAME = "reduce_broadcast"
DESCRIPTION = ("((x + b) * x).sum(1).mean() + x.max() on x 1000x1000, b 1000 (float64); grads wrt x, b; "
               "the numpy system is the same forward and hand-derived backward")
CASES = ("fwd+bwd",)
RTOL = 1e-9      # sums of a million terms in different orders

ROWS = COLS = 1000
SEED = 11


def configure(smoke: bool) -> None:
    """A smaller matrix for --smoke."""
    global ROWS, COLS
    ROWS, COLS = (20, 30) if smoke else (1000, 1000)


def data():
    """Seeded x (rows, cols) and b (cols,)."""
    rng = np.random.default_rng(SEED)
    return rng.standard_normal((ROWS, COLS)), rng.standard_normal(COLS)


def _f(x, b):
    return ((x + b) * x).sum(1).mean() + x.max()


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _leaves(self):
        return [self.lib.tensor(a, dtype=self.lib.float64, requires_grad=True) for a in data()]

    def result(self):
        """The value and the gradients."""
        x, b = self._leaves()
        y = _f(x, b)
        y.backward()
        return y.item(), {"d/dx": as_array(x.grad), "d/db": as_array(b.grad)}

    def setup(self, case):
        """Leaves are made once; grads are cleared in the timed call."""
        x, b = self._leaves()

        def step():
            _f(x, b).backward()
            x.grad = b.grad = None

        return Timed(step)


class Compiled:
    """tg.compile(tg.value_and_grad(f, argnums=(0, 1)))."""

    def __init__(self, tg):
        self.tg = tg

    def _call(self):
        fn = compiled_value_and_grad(self.tg, _f, (0, 1))
        x, b = [self.tg.tensor(a, dtype=self.tg.float64) for a in data()]
        return lambda: fn(x, b)

    def result(self):
        """The value and the gradients."""
        value, (gx, gb) = self._call()()
        return float(value), {"d/dx": as_array(gx), "d/db": as_array(gb)}

    def setup(self, case):
        """A fresh compiled function."""
        return Timed(self._call())


class NumpyByHand:
    """The forward in numpy and its backward derived by hand: the floor for this workload."""

    def __init__(self, np_module):
        self.np = np_module

    def _value_and_grad(self, x, b):
        npm = self.np
        rows = x.shape[0]
        s = x + b
        top = x.max()
        value = (s * x).sum(1).mean() + top
        g = (s + x) / rows                       # d/dx of the mean of row sums of (x + b) * x
        gb = x.sum(0) / rows
        hits = x == top                          # tied maxima share the gradient evenly, as in torch
        g += hits / npm.count_nonzero(hits)
        return value, g, gb

    def result(self):
        """The value and the gradients."""
        value, gx, gb = self._value_and_grad(*data())
        return float(value), {"d/dx": gx, "d/db": gb}

    def setup(self, case):
        """Inputs are made once."""
        x, b = data()
        return Timed(lambda: self._value_and_grad(x, b))


IMPLS = {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "torch eager": TorchLike,
         "numpy by hand": NumpyByHand}
