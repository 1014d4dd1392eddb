"""tapegrad.custom_op: differentiable operations from a user's numba kernels, run inside the compiled sweep.

    @njit(cache=True)
    def softplus_vjp(x, out, g, gx):      # inputs, output, output gradient, then one gradient per input
        for i in range(x.size):
            gx.flat[i] += g.flat[i] / (1.0 + np.exp(-x.flat[i]))

    @tg.custom_op("Softplus", vjp=softplus_vjp)
    @njit(cache=True)
    def softplus(x, out):                 # inputs, then the output to fill
        ...

Kernels see float64 C-contiguous arrays shaped like the tensors. The vjp *adds* into the input gradients.
The first call for a combination of input ranks builds a small C-callable wrapper around the vjp (a generated
file under ~/.cache/tapegrad, cached by numba like every kernel; kernels defined in __main__ or inside
functions can't be imported by name, so their wrapper is compiled anew in each process) and stores its address
in a table the sweep receives, so the sweep itself never recompiles.
"""
import hashlib
import importlib.util
import inspect
import os
import sys

import numpy as np
from numba import njit, types

from .._kernels import opcodes as op
from .._kernels import units
from .._kernels.frame import CUSTOM_KERNELS_AT
from .._tape import _state
from ..tensor import Tensor, _result, _wrap, source_gid

_registered = []   # keeps wrappers alive: the kernel table (units.TABLE) holds raw addresses
_WRAPPER_SIG = types.void(types.CPointer(types.float64), types.CPointer(types.float64), types.CPointer(types.int64))


@njit(cache=True, inline="always")
def _field(desc, k):
    """Start of the k-th (off, ndim, dims...) entry of a kernel descriptor."""
    w = 3
    for _ in range(k):
        w += 2 + desc[w + 1]
    return w


def _wrapper_source(n_inputs, ranks, import_line):
    """Source of a C-callable wrapper that views the tape buffers as the kernel's arrays and calls it."""
    names = [f"x{k}" for k in range(n_inputs)] + ["out"]
    lines = [
        "import numpy as np",
        "from numba import carray, cfunc",
        "from numba.np.unsafe.ndarray import to_fixed_tuple",
        "from tapegrad.autograd.custom_op import _WRAPPER_SIG, _field",
        import_line,
        "",
        "",
        "@cfunc(_WRAPPER_SIG, cache=True)",
        "def wrapper(vals_p, adj_p, desc_p):",
        "    desc = carray(desc_p, (desc_p[0],))",
        "    vals = carray(vals_p, (desc[1],))",
        "    adj = carray(adj_p, (desc[1],))",
    ]
    for k, (name, rank) in enumerate(zip(names, ranks)):
        lines += [
            f"    w = _field(desc, {k})",
            f"    shape = to_fixed_tuple(desc[w + 2:w + 2 + {rank}], {rank})",
            "    n = 1",
            "    for d in shape:",
            "        n *= d",
            f"    {name} = vals[desc[w]:desc[w] + n].reshape(shape)",
            f"    g_{name} = adj[desc[w]:desc[w] + n].reshape(shape)",
        ]
    args = names + ["g_out"] + [f"g_{n}" for n in names[:-1]]
    lines.append(f"    vjp({', '.join(args)})")
    return "\n".join(lines) + "\n"


def _cache_dir():
    base = os.environ.get("TAPEGRAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tapegrad")
    path = os.path.join(base, "custom_ops")
    os.makedirs(path, exist_ok=True)
    return path


def build_vjp_wrapper(vjp, n_inputs, ranks):
    """Compile (or load from numba's cache) the C-callable wrapper of a vjp kernel for these ranks."""
    fn = getattr(vjp, "py_func", vjp)
    module, qualname = fn.__module__, fn.__qualname__
    importable = module != "__main__" and "<locals>" not in qualname and "." not in qualname
    if importable:
        # a file per (kernel source, ranks): numba caches a cfunc by its file, and a changed kernel changes
        # the file, so the cache never serves a stale wrapper
        source = _wrapper_source(n_inputs, ranks, f"from {module} import {qualname} as vjp")
        try:
            kernel_source = inspect.getsource(fn)
        except (OSError, TypeError):
            kernel_source = repr(fn.__code__.co_code)
        digest = hashlib.sha1((source + kernel_source).encode()).hexdigest()[:16]
        try:
            path = os.path.join(_cache_dir(), f"wrapper_{digest}.py")
            if not os.path.exists(path):
                tmp = path + f".{os.getpid()}.tmp"
                with open(tmp, "w") as f:
                    f.write(source)
                os.replace(tmp, path)
            name = f"tapegrad_custom_{digest}"
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                mod = importlib.util.module_from_spec(spec)
                sys.modules[name] = mod   # numba's cache loader re-imports the module by name
                spec.loader.exec_module(mod)
            return sys.modules[name].wrapper
        except OSError:
            pass   # no writable cache directory: build it in memory below
    namespace = {"vjp": vjp}
    exec(compile(_wrapper_source(n_inputs, ranks, "").replace("@cfunc(_WRAPPER_SIG, cache=True)",
                                                               "@cfunc(_WRAPPER_SIG)"), "<tapegrad custom op>",
                 "exec"), namespace)
    return namespace["wrapper"]


class CustomOp:
    """A registered custom operation; call it on tensors."""

    def __init__(self, name, forward, vjp, shape):
        self.name = self.__name__ = name
        self.backward_name = name + "Backward"
        self.forward = forward
        self.vjp = vjp
        self.shape = shape
        self.n_inputs = len(inspect.signature(getattr(forward, "py_func", forward)).parameters) - 1
        if self.n_inputs < 1:
            raise TypeError(f"custom_op {name!r}: the forward kernel must take at least one input and the output")
        expected = 2 * self.n_inputs + 2
        got = len(inspect.signature(getattr(vjp, "py_func", vjp)).parameters)
        if got != expected:
            raise TypeError(f"custom_op {name!r}: the vjp must take {expected} arrays (inputs, output, output "
                            f"gradient, input gradients), but it takes {got}")
        self._kinds = {}   # input/output ranks -> index in the kernel table

    def _kind(self, ranks):
        kind = self._kinds.get(ranks)
        if kind is None:
            wrapper = build_vjp_wrapper(self.vjp, self.n_inputs, ranks)
            kind = len(_registered)
            if kind >= units.MAX_CUSTOM_KERNELS:
                raise RuntimeError(f"too many custom kernels registered (at most {units.MAX_CUSTOM_KERNELS})")
            _registered.append(wrapper)
            units.TABLE[CUSTOM_KERNELS_AT + kind] = wrapper.address
            _op_names[kind] = self.backward_name
            self._kinds[ranks] = kind
        return kind

    def __call__(self, *inputs):
        if len(inputs) != self.n_inputs:
            raise TypeError(f"{self.name}() takes {self.n_inputs} tensors but {len(inputs)} were given")
        for k, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(f"{self.name}(): input {k} must be a Tensor, got {type(t).__name__}")
            if t._data.dtype.kind != "f":
                raise TypeError(f"{self.name}(): input {k} must have a floating point dtype, got {t.dtype}")
        shapes = [t._data.shape for t in inputs]
        out_shape = tuple(self.shape(*shapes))
        dtype = np.result_type(*(t._data.dtype for t in inputs))
        arrays = [np.ascontiguousarray(t._data, dtype=np.float64) for t in inputs]
        out = np.zeros(out_shape)
        self.forward(*arrays, out)
        result = out.astype(dtype) if out.ndim else dtype.type(out[()])
        tape = _state.tape
        if not (tape.grad_enabled and any(t._rg for t in inputs)):
            return _wrap(result)
        kind = self._kind(tuple(len(s) for s in shapes) + (len(out_shape),))
        gids = [source_gid(t, tape) for t in inputs]
        extra = gids[2:]
        aux = tape.put_ints((len(out_shape), *out_shape, len(extra), *extra, kind))
        gid = tape.push(op.CUSTOM_OP, gids[0], gids[1] if len(gids) > 1 else -1, result, aux)
        return _result(result, gid, tape.seg)

    def __repr__(self):
        return f"<tapegrad custom op {self.name}>"


_op_names = {}   # kernel table index -> grad_fn name


def custom_op_name(kind):
    return _op_names.get(kind, "CustomBackward")


def _same_shape(*shapes):
    if any(s != shapes[0] for s in shapes):
        raise RuntimeError(f"custom op inputs must have the same shape by default (got "
                           f"{', '.join(str(list(s)) for s in shapes)}); pass shape= to compute the output shape")
    return shapes[0]


def custom_op(name, forward=None, vjp=None, *, shape=None):
    """Register a differentiable op from numba kernels: forward(*inputs, out) and vjp(*inputs, out, g, *grads).

    `shape(*input_shapes)` gives the output shape (default: all inputs share one shape, which the output has).
    Usable as custom_op(name, forward, vjp) or as a decorator @custom_op(name, vjp=...) on the forward.
    """
    if vjp is None:
        raise TypeError(f"custom_op {name!r}: a vjp kernel is required")

    def build(fwd):
        return CustomOp(name, _jit(fwd), _jit(vjp), shape or _same_shape)

    return build if forward is None else build(forward)


def _jit(fn):
    return fn if hasattr(fn, "py_func") else njit(cache=True)(fn)
