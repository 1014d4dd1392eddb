"""Finite-difference gradient checking for tapegrad functions (the counterpart of torch.autograd.gradcheck)."""
import warnings

import numpy as np

import tapegrad as tg
from tapegrad.tensor import Tensor

__all__ = ["gradcheck", "GradcheckError", "GradcheckWarning", "op_name"]


class GradcheckError(RuntimeError):
    """A gradient check failed; the message names the function, the input and the worst element."""


class GradcheckWarning(UserWarning):
    """gradcheck was given inputs it cannot check reliably (e.g. not float64)."""


def op_name(fn):
    """A readable name for a function, a functools.partial or a lambda."""
    name = getattr(fn, "op_name", None) or getattr(fn, "__name__", None)
    if name is None and hasattr(fn, "func"):       # functools.partial
        name = op_name(fn.func)
    return name or type(fn).__name__


def _outputs(result):
    if isinstance(result, Tensor):
        return (result,)
    if isinstance(result, (tuple, list)) and all(isinstance(r, Tensor) for r in result):
        return tuple(result)
    raise TypeError(f"gradcheck: the function must return a Tensor or a tuple of Tensors, got {type(result).__name__}")


def _arr(t):
    return np.array(np.asarray(t._data), dtype=np.float64, copy=True)


def _describe(t):
    return f"{tuple(t.shape)} {t.dtype.name}"


def _index(shape, flat):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


class _Check:
    def __init__(self, fn, inputs, name, eps, atol, rtol, nondet_tol):
        self.fn, self.name = fn, name
        self.eps, self.atol, self.rtol, self.nondet_tol = eps, atol, rtol, nondet_tol
        self.inputs = inputs
        self.diff = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
        if not self.diff:
            raise ValueError(f"gradcheck({name}): no input tensor requires grad")
        for k in self.diff:
            x = inputs[k]
            if not x.is_leaf:
                raise ValueError(f"gradcheck({name}): input {k} requires grad but is not a leaf; pass leaves")
            if x.dtype is not tg.float64:
                warnings.warn(f"gradcheck({name}): input {k} requires gradient and is not a double precision "
                              f"floating point tensor ({x.dtype.name}); finite differences will be unreliable. "
                              "Check with float64 inputs.", GradcheckWarning, stacklevel=4)

    def fail(self, msg):
        raise GradcheckError(f"gradcheck failed for '{self.name}': {msg}")

    def call(self, args):
        return _outputs(self.fn(*args))

    def fresh_inputs(self):
        """Copies of the inputs: the checked graph never shares leaves with the caller's tensors."""
        out = list(self.inputs)
        for k in self.diff:
            out[k] = self.inputs[k].detach().clone().requires_grad_(True)
        return out

    def differentiable(self, outs):
        return [o.requires_grad and o.is_floating_point() for o in outs]

    # -- the analytical Jacobian: one backward per output element, on one retained graph -------------------
    def analytical(self):
        args = self.fresh_inputs()
        before = [_arr(args[k]) for k in self.diff]
        outs = self.call(args)
        self.out_shapes = [tuple(o.shape) for o in outs]
        self.out_values = [_arr(o) for o in outs]
        diffable = self.differentiable(outs)
        jac = [[np.zeros((o.numel(), args[k].numel())) for k in self.diff] for o in outs]
        todo = [(j, e) for j, o in enumerate(outs) if diffable[j] for e in range(o.numel())]
        wrt = [args[k] for k in self.diff]
        for n, (j, e) in enumerate(todo):
            o = outs[j]
            seed = np.zeros(o.numel())
            seed[e] = 1.0
            seed = tg.tensor(seed.reshape(o.shape), dtype=o.dtype)
            grads = tg.autograd.grad(o, wrt, grad_outputs=seed, retain_graph=n < len(todo) - 1,
                                     allow_unused=True)
            for i, (g, x) in enumerate(zip(grads, wrt)):
                if g is None:
                    continue
                self.check_grad_meta(g, self.diff[i], x, "autograd.grad")
                jac[j][i][e] = _arr(g).reshape(-1)
        for i, k in enumerate(self.diff):
            if not np.array_equal(_arr(args[k]), before[i], equal_nan=True):
                self.fail(f"input {k} was modified in place by the forward or backward pass")
        return jac

    def check_grad_meta(self, g, k, x, how):
        if tuple(g.shape) != tuple(x.shape):
            self.fail(f"the gradient of input {k} ({how}) has shape {tuple(g.shape)}, expected {tuple(x.shape)}")
        if g.dtype is not x.dtype:
            self.fail(f"the gradient of input {k} ({how}) has dtype {g.dtype.name}, expected {x.dtype.name}")

    # -- the numerical Jacobian: central differences ----------------------------------------------------------
    def numerical(self):
        jac = [[None] * len(self.diff) for _ in self.out_shapes]
        for i, k in enumerate(self.diff):
            x = self.inputs[k]
            base = np.array(np.asarray(x._data), copy=True)
            flat = base.reshape(-1)
            cols = []
            for e in range(flat.size):
                diffs = []
                for sign in (1.0, -1.0):
                    p = flat.copy()
                    p[e] = p[e] + sign * self.eps
                    args = list(self.inputs)
                    args[k] = tg.tensor(p.reshape(base.shape), dtype=x.dtype)
                    with tg.no_grad():
                        diffs.append([_arr(o).reshape(-1) for o in self.call(args)])
                cols.append([(a - b) / (2 * self.eps) for a, b in zip(*diffs)])
            for j, shape in enumerate(self.out_shapes):
                n_out = int(np.prod(shape)) if shape else 1
                jac[j][i] = np.stack([c[j] for c in cols], axis=1) if cols else np.zeros((n_out, 0))
        return jac

    def compare(self, ana, num):
        for j, shape in enumerate(self.out_shapes):
            for i, k in enumerate(self.diff):
                a, n = ana[j][i], num[j][i]
                bad = ~(np.abs(a - n) <= self.atol + self.rtol * np.abs(n))
                if not bad.any():
                    continue
                excess = np.where(bad, np.abs(a - n) / (self.atol + self.rtol * np.abs(n)), -1.0)
                excess = np.nan_to_num(excess, nan=np.inf)
                r, c = np.unravel_index(int(np.argmax(excess)), a.shape)
                av, nv = float(a[r, c]), float(n[r, c])
                rel = abs(av - nv) / max(abs(nv), 1e-300)
                x = self.inputs[k]
                self.fail(
                    f"Jacobian mismatch for output {j} with respect to input {k} ({_describe(x)}).\n"
                    f"  worst element: output {j}{list(_index(shape, r))} wrt input {k}{list(_index(x.shape, c))}\n"
                    f"  analytical: {av!r}\n  numerical:  {nv!r}\n"
                    f"  relative error: {rel:.3g} (atol={self.atol}, rtol={self.rtol}); "
                    f"{int(bad.sum())} of {bad.size} Jacobian entries disagree\n"
                    f"  input {k}: {np.asarray(x._data).tolist()}\n"
                    f"  analytical Jacobian: {np.round(a, 6).tolist()}\n"
                    f"  numerical Jacobian:  {np.round(n, 6).tolist()}")

    # -- repeated backward through .backward(): same gradient every time, consistent with the Jacobian ----------
    def repeated(self, ana):
        rng = np.random.default_rng(0)
        seeds = [rng.uniform(0.5, 1.5, s) * rng.choice([-1.0, 1.0], s) for s in self.out_shapes]
        expected = [sum(seeds[j].reshape(-1) @ ana[j][i] for j in range(len(seeds))) for i in range(len(self.diff))]
        results = []
        for _ in range(2):
            args = self.fresh_inputs()
            outs = self.call(args)
            pairs = [(o, tg.tensor(s, dtype=o.dtype)) for o, s, d in zip(outs, seeds, self.differentiable(outs)) if d]
            if pairs:
                tg.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
            got = []
            for i, k in enumerate(self.diff):
                g = args[k].grad
                if g is None:
                    got.append(np.zeros(args[k].shape))
                    continue
                self.check_grad_meta(g, k, args[k], ".backward()")
                got.append(_arr(g))
            results.append(got)
        for i, k in enumerate(self.diff):
            first, second = results[0][i], results[1][i]
            if not np.allclose(first, second, rtol=0.0, atol=self.nondet_tol, equal_nan=True):
                w = int(np.argmax(np.abs(first - second)))
                self.fail(f"backward is not reproducible for input {k}: element {list(_index(first.shape, w))} was "
                          f"{float(first.reshape(-1)[w])!r} then {float(second.reshape(-1)[w])!r} (nondet_tol={self.nondet_tol})")
            want = np.asarray(expected[i]).reshape(first.shape)
            bad = ~(np.abs(first - want) <= self.atol + self.rtol * np.abs(want))
            if bad.any():
                w = int(np.argmax(np.where(bad, np.abs(first - want), -1.0)))
                self.fail(f".backward() with a gradient seed disagrees with the Jacobian from autograd.grad for "
                          f"input {k} at element {list(_index(first.shape, w))}: {float(first.reshape(-1)[w])!r} vs "
                          f"{float(want.reshape(-1)[w])!r}")


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, nondet_tol=0.0, name=None):
    """Check fn's tapegrad gradients against central finite differences for every input that requires grad.

    `inputs` is a Tensor or a tuple of arguments; tensors that require grad (float64 leaves) are checked, other
    arguments are passed through unchanged. Also checks that backward leaves inputs unchanged, that gradients
    have the input's shape and dtype, and that a repeated backward gives the same gradients (within nondet_tol).
    Returns True, or raises GradcheckError (returns False when raise_exception=False).
    """
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    check = _Check(fn, inputs, name or op_name(fn), eps, atol, rtol, nondet_tol)
    try:
        ana = check.analytical()
        num = check.numerical()
        check.compare(ana, num)
        check.repeated(ana)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True
