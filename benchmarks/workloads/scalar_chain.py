"""scalar_chain: the logistic map x <- r*x*(1-x) for 1,000 steps on 0-d float64 tensors."""
from benchmarks.workloads.base import Timed, as_array

NAME = "scalar_chain"
DESCRIPTION = "logistic map x <- r*x*(1-x), 1,000 steps on 0-d float64 tensors; grads wrt r, x0"
CASES = ("fwd+bwd", "fwd", "bwd")
# r = 3.7 is chaotic, so any reordering of the forward arithmetic changes x_1000 completely;
# systems must evaluate r*x*(1-x) op for op as written, which makes this tolerance fair.
RTOL = 1e-9

STEPS = 1000
R = 3.7
X0 = 0.3


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _leaves(self):
        t = self.lib.tensor
        f64 = self.lib.float64
        return t(R, dtype=f64, requires_grad=True), t(X0, dtype=f64, requires_grad=True)

    @staticmethod
    def _forward(r, x0):
        x = x0
        for _ in range(STEPS):
            x = r * x * (1 - x)
        return x

    def result(self):
        """x_1000 and its gradients wrt r and x0."""
        r, x0 = self._leaves()
        x = self._forward(r, x0)
        x.backward()
        return x.item(), {"d/dr": as_array(r.grad), "d/dx0": as_array(x0.grad)}

    def setup(self, case):
        """Leaves are made once; grads are cleared in the timed call (fwd+bwd) or untimed (bwd)."""
        r, x0 = self._leaves()
        forward = self._forward

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


IMPLS = {"tapegrad eager": TorchLike, "torch eager": TorchLike}
