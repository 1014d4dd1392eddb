"""mlp_step: one SGD training step of a small tanh MLP (64-64-64-10, batch 32, float64)."""
import numpy as np

from benchmarks.workloads.base import Timed, as_array

NAME = "mlp_step"
DESCRIPTION = "SGD step of a 64-64-64-10 tanh MLP, batch 32, MSE loss, float64"
CASES = ("fwd+bwd+sgd",)
RTOL = 1e-9

BATCH = 32
SIZES = (64, 64, 64, 10)
LR = 0.01
SEED = 20240601


def data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Seeded inputs, targets and initial parameters, identical for every system."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((BATCH, SIZES[0]))
    y = rng.standard_normal((BATCH, SIZES[-1]))
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        params[f"b{i}"] = 0.1 * rng.standard_normal(fan_out)
    return x, y, params


class TorchLike:
    """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

    def __init__(self, lib):
        self.lib = lib

    def _state(self):
        lib = self.lib
        x, y, params = data()
        tensors = {k: lib.tensor(v, dtype=lib.float64, requires_grad=True)
                   for k, v in params.items()}
        return lib.from_numpy(x), lib.from_numpy(y), tensors

    @staticmethod
    def _loss(x, y, p):
        h = (x @ p["W1"] + p["b1"]).tanh()
        h = (h @ p["W2"] + p["b2"]).tanh()
        out = h @ p["W3"] + p["b3"]
        return ((out - y) ** 2).mean()

    def _sgd(self, params):
        with self.lib.no_grad():
            for p in params:
                p -= LR * p.grad
                p.grad = None

    def result(self):
        """Loss and parameter gradients at the initial point, plus the loss after one SGD step."""
        x, y, p = self._state()
        loss = self._loss(x, y, p)
        loss.backward()
        grads = {f"d/d{k}": as_array(v.grad) for k, v in p.items()}
        self._sgd(p.values())
        grads["loss after one step"] = as_array(self._loss(x, y, p).item())
        return loss.item(), grads

    def setup(self, case):
        """Parameters persist across calls, so timed calls keep training the same model."""
        x, y, p = self._state()
        params = list(p.values())
        loss_fn, sgd = self._loss, self._sgd

        def step():
            loss_fn(x, y, p).backward()
            sgd(params)

        return Timed(step)


IMPLS = {"tapegrad eager": TorchLike, "torch eager": TorchLike}
