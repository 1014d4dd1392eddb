"""Shared by mlp_step and mlp_large: one SGD step of an MLP with a cross-entropy loss.

Not a workload itself: each workload module makes an `MLP` configuration and gets its
implementations from `impls(config)`.
"""
from dataclasses import dataclass

import numpy as np

from benchmarks.workloads.base import Timed, as_array, compiled_value_and_grad


@dataclass
class MLP:
    """Layer sizes (input first), batch, hidden activation ('tanh' or 'relu'), learning rate."""

    sizes: tuple[int, ...]
    batch: int
    activation: str
    lr: float = 0.01
    seed: int = 20240601

    def data(self):
        """Seeded inputs, one-hot targets and initial parameters (W1, b1, W2, ...), in layer order."""
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal((self.batch, self.sizes[0]))
        onehot = np.eye(self.sizes[-1])[rng.integers(0, self.sizes[-1], self.batch)]
        params = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
            params[f"b{i}"] = 0.1 * rng.standard_normal(fan_out)
        return x, onehot, params


def _loss(act, x, onehot, params, log_sum_exp):
    """Mean cross-entropy of the MLP's logits; params alternate W, b."""
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        h = h @ params[2 * i] + params[2 * i + 1]
        if i < n_layers - 1:
            h = act(h)
    # Written with ops every system has; the logits are small, so no max-shift is needed.
    return (log_sum_exp(h) - (h * onehot).sum(1)).mean()


def impls(cfg: MLP) -> dict:
    """The implementation classes for every system, for this configuration."""

    class TorchLike:
        """For any library with PyTorch's tensor API (torch eager, tapegrad eager)."""

        def __init__(self, lib):
            self.lib = lib

        def _state(self):
            lib = self.lib
            x, onehot, params = cfg.data()
            tensors = {k: lib.tensor(v, dtype=lib.float64, requires_grad=True)
                       for k, v in params.items()}
            return lib.from_numpy(x), lib.from_numpy(onehot), tensors

        @staticmethod
        def _loss(x, onehot, p):
            return _loss(lambda h: getattr(h, cfg.activation)(), x, onehot, list(p.values()),
                         lambda h: h.exp().sum(1).log())

        def _sgd(self, params):
            with self.lib.no_grad():
                for p in params:
                    p -= cfg.lr * p.grad
                    p.grad = None

        def result(self):
            """Loss and parameter gradients at the initial point, plus the loss after one step."""
            x, onehot, p = self._state()
            loss = self._loss(x, onehot, p)
            loss.backward()
            grads = {f"d/d{k}": as_array(v.grad) for k, v in p.items()}
            self._sgd(p.values())
            grads["loss after one step"] = as_array(self._loss(x, onehot, p).item())
            return loss.item(), grads

        def setup(self, case):
            """Parameters persist across calls, so timed calls keep training the same model."""
            x, onehot, p = self._state()
            params = list(p.values())
            loss_fn, sgd = self._loss, self._sgd

            def step():
                loss_fn(x, onehot, p).backward()
                sgd(params)

            return Timed(step)

    class Compiled:
        """tg.compile(tg.value_and_grad(loss)) over the parameters, SGD update in no_grad."""

        def __init__(self, tg):
            self.tg = tg

        def _state(self):
            tg = self.tg
            x, onehot, params = cfg.data()
            names = list(params)

            def loss(*args):
                *ps, x, onehot = args
                return _loss(lambda h: getattr(h, cfg.activation)(), x, onehot, ps,
                             lambda h: h.exp().sum(1).log())

            vg = compiled_value_and_grad(tg, loss, tuple(range(len(names))))
            ps = [tg.tensor(params[k], dtype=tg.float64) for k in names]
            return names, ps, vg, tg.from_numpy(x), tg.from_numpy(onehot)

        def _step(self, ps, vg, x, onehot):
            value, grads = vg(*ps, x, onehot)
            with self.tg.no_grad():
                for p, g in zip(ps, grads):
                    p -= cfg.lr * g
            return value, grads

        def result(self):
            """Loss and parameter gradients at the initial point, plus the loss after one step."""
            names, ps, vg, x, onehot = self._state()
            value, grads = self._step(ps, vg, x, onehot)
            out = {f"d/d{k}": as_array(g) for k, g in zip(names, grads)}
            out["loss after one step"] = as_array(float(vg(*ps, x, onehot)[0]))
            return float(value), out

        def setup(self, case):
            """A fresh compiled function; parameters persist across calls."""
            _, ps, vg, x, onehot = self._state()
            step = self._step
            return Timed(lambda: step(ps, vg, x, onehot))

    class Jax:
        """jax.jit of the whole step (value_and_grad and the SGD update)."""

        def __init__(self, jax):
            self.jax = jax

        def _state(self):
            jax, jnp = self.jax, self.jax.numpy
            x, onehot, params = cfg.data()
            act = {"tanh": jnp.tanh, "relu": lambda h: jnp.maximum(h, 0)}[cfg.activation]

            def loss(ps, x, onehot):
                return _loss(act, x, onehot, ps, lambda h: jnp.log(jnp.exp(h).sum(1)))

            vg = jax.value_and_grad(loss)

            @jax.jit
            def step(ps, x, onehot):
                value, grads = vg(ps, x, onehot)
                return value, grads, jax.tree_util.tree_map(lambda p, g: p - cfg.lr * g, ps, grads)

            # A list, not a dict: jax flattens dicts in sorted key order.
            ps = [jnp.asarray(v) for v in params.values()]
            return ps, step, jax.jit(loss), jnp.asarray(x), jnp.asarray(onehot)

        def result(self):
            """Loss and parameter gradients at the initial point, plus the loss after one step."""
            ps, step, loss, x, onehot = self._state()
            value, grads, ps = step(ps, x, onehot)
            out = {f"d/d{k}": as_array(g) for k, g in zip(cfg.data()[2], grads)}
            out["loss after one step"] = as_array(loss(ps, x, onehot))
            return float(value), out

        def setup(self, case):
            """Parameters are replaced by the step's output each call."""
            state = {}
            state["ps"], step, _, x, onehot = self._state()
            block = self.jax.block_until_ready

            def call():
                _, _, state["ps"] = block(step(state["ps"], x, onehot))

            return Timed(call)

    class Autograd:
        """HIPS autograd on numpy arrays."""

        def __init__(self, ag):
            anp = ag.numpy
            act = {"tanh": anp.tanh, "relu": lambda h: anp.maximum(h, 0)}[cfg.activation]

            def loss(ps, x, onehot):
                return _loss(act, x, onehot, list(ps.values()),
                             lambda h: anp.log(anp.exp(h).sum(1)))

            self.loss = loss
            self.vg = ag.value_and_grad(loss)

        def _step(self, ps, x, onehot):
            value, grads = self.vg(ps, x, onehot)
            return value, grads, {k: p - cfg.lr * grads[k] for k, p in ps.items()}

        def result(self):
            """Loss and parameter gradients at the initial point, plus the loss after one step."""
            x, onehot, ps = cfg.data()
            value, grads, ps = self._step(ps, x, onehot)
            out = {f"d/d{k}": as_array(g) for k, g in grads.items()}
            out["loss after one step"] = as_array(self.loss(ps, x, onehot))
            return float(value), out

        def setup(self, case):
            """Parameters are replaced by the step's output each call."""
            x, onehot, ps = cfg.data()
            state = {"ps": ps}
            step = self._step

            def call():
                _, _, state["ps"] = step(state["ps"], x, onehot)

            return Timed(call)

    return {"tapegrad eager": TorchLike, "tapegrad compiled": Compiled, "torch eager": TorchLike,
            "jax jit": Jax, "autograd": Autograd}


def nn_impl(cfg: MLP):
    """The same step written the idiomatic way: nn.Sequential, nn.CrossEntropyLoss and optim.SGD (for torch nn
    and tapegrad nn), starting from the same weights as the hand-written version."""

    class NN:
        def __init__(self, lib):
            self.lib = lib

        def _state(self):
            lib = self.lib
            nn = lib.nn
            x, onehot, params = cfg.data()
            act = {"tanh": nn.Tanh, "relu": nn.ReLU}[cfg.activation]
            layers = []
            for fan_in, fan_out in zip(cfg.sizes[:-1], cfg.sizes[1:]):
                layers += [nn.Linear(fan_in, fan_out).double(), act()]
            model = nn.Sequential(*layers[:-1])
            state = {}
            for i in range(len(cfg.sizes) - 1):      # Linear keeps W transposed: (out, in)
                state[f"{2 * i}.weight"] = lib.tensor(params[f"W{i + 1}"].T.copy(), dtype=lib.float64)
                state[f"{2 * i}.bias"] = lib.tensor(params[f"b{i + 1}"], dtype=lib.float64)
            model.load_state_dict(state)
            optimizer = lib.optim.SGD(model.parameters(), lr=cfg.lr)
            return model, nn.CrossEntropyLoss(), optimizer, lib.from_numpy(x), lib.from_numpy(onehot)

        def result(self):
            """Loss and parameter gradients at the initial point, plus the loss after one step."""
            model, loss_fn, optimizer, x, onehot = self._state()
            loss = loss_fn(model(x), onehot)
            loss.backward()
            grads = {}
            linears = [m for m in model if hasattr(m, "weight")]
            for i, m in enumerate(linears, start=1):
                grads[f"d/dW{i}"] = as_array(m.weight.grad).T
                grads[f"d/db{i}"] = as_array(m.bias.grad)
            optimizer.step()
            grads["loss after one step"] = as_array(loss_fn(model(x), onehot).item())
            return loss.item(), grads

        def setup(self, case):
            """Model and optimizer persist across calls, so timed calls keep training the same model."""
            model, loss_fn, optimizer, x, onehot = self._state()

            def step():
                optimizer.zero_grad()
                loss_fn(model(x), onehot).backward()
                optimizer.step()

            return Timed(step)

    return NN
