"""tapegrad.autograd.Function: differentiable operations whose forward and backward are Python code.

apply() records one node record (its tensor inputs) and one pass-through record per differentiable output.
The compiled reverse sweep stops at the node, Python runs the user's backward on the outputs' adjoints and
adds the returned gradients into the inputs' adjoints, and the sweep resumes below the node.
"""
import math

import numpy as np

from .._kernels import opcodes as op
from .._tape import _state
from ..tensor import Tensor, _result, _wrap, source_gid
from .engine import SECOND_TIME
from .grad_mode import no_grad


class FunctionCtx:
    """The `ctx` handed to forward and backward."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved = None
        self._non_differentiable = set()
        self._freed = False

    def save_for_backward(self, *tensors):
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is not a Variable")
        self._saved = [(t, None if t is None else t._version) for t in tensors]

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(SECOND_TIME)
        if self._saved is None:
            return ()
        for t, version in self._saved:
            if t is not None and t._version != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [tapegrad.{t.dtype.name} {list(t.shape)}] is at version {t._version}; expected "
                    f"version {version} instead.")
        return tuple(t for t, _ in self._saved)

    def mark_non_differentiable(self, *tensors):
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("in-place custom Functions (mark_dirty) are not supported by tapegrad yet")


class _Node:
    """What the tape keeps for one apply(): the ctx, the backward, and where inputs and outputs live."""

    __slots__ = ("name", "fn", "ctx", "input_gids", "input_slots", "inputs", "output_gids", "outputs_meta")

    def run_backward(self, tape, adj, need, retain):
        """Run the user's backward; returns the lowest record index it marked as needed."""
        lowest = tape.n
        grads_out = []
        for gid, (shape, dtype) in zip(self.output_gids, self.outputs_meta):
            if gid is None:
                grads_out.append(_wrap(np.zeros(shape, dtype)) if self.ctx.materialize_grads else None)
                continue
            p = gid - tape.base
            o = int(tape.off[p])
            size = int(math.prod(shape))
            if need[p] == 0:     # not reached: its adjoint is not defined (see reverse_sweep)
                zero = np.zeros(shape, dtype)
                grads_out.append(_wrap(zero if zero.ndim else zero[()]) if self.ctx.materialize_grads else None)
                continue
            g = adj[o:o + size].reshape(shape).astype(dtype)
            grads_out.append(_wrap(g if g.ndim else g[()]))
        with no_grad():
            grads_in = self.fn.backward(self.ctx, *grads_out)
        if not isinstance(grads_in, tuple):
            grads_in = (grads_in,)
        n_inputs = len(self.inputs)
        if len(grads_in) != n_inputs:
            raise RuntimeError(f"function {self.name} returned an incorrect number of gradients "
                               f"(expected {n_inputs}, got {len(grads_in)})")
        for k, (arg, grad) in enumerate(zip(self.inputs, grads_in)):
            if grad is None:
                continue
            if not isinstance(arg, Tensor):
                raise RuntimeError(f"function {self.name} returned a gradient different than None at position "
                                   f"{k + 1}, but the corresponding forward input was not a Variable")
            if not isinstance(grad, Tensor):
                raise TypeError(f"function {self.name} returned a gradient of type {type(grad).__name__} at "
                                f"position {k + 1}; expected a Tensor or None")
            if grad.shape != arg.shape:
                raise RuntimeError(f"Function {self.name} returned an invalid gradient at index {k} - got "
                                   f"{list(grad.shape)} but expected shape compatible with {list(arg.shape)}")
            if grad._data.dtype != arg._data.dtype:
                raise RuntimeError(f"Function {self.name} returned an invalid gradient at index {k} - expected "
                                   f"dtype {arg.dtype} but got {grad.dtype}")
            gid = self.input_gids[self.input_slots[k]] if self.input_slots[k] is not None else None
            if gid is None:
                continue
            p = gid - tape.base
            if tape.ops[p] == op.CONST:
                continue
            o = int(tape.off[p])
            g = np.asarray(grad._data, dtype=np.float64).reshape(-1)
            if need[p]:
                adj[o:o + g.size] += g
            else:     # the first write of this adjoint in the sweep (see reverse_sweep)
                adj[o:o + g.size] = g
            need[p] = 1
            lowest = min(lowest, p)
        if not retain:
            self.ctx._freed = True   # saved_tensors now raises, as PyTorch's freed buffers do
        return lowest


class _FunctionMeta(type):
    @property
    def _backward_name(cls):
        return cls.__name__ + "Backward"


class Function(metaclass=_FunctionMeta):
    """Subclass with static forward(ctx, *args) and backward(ctx, *grad_outputs); call through apply()."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    @classmethod
    def apply(cls, *args, **kwargs):
        tape = _state.tape
        differentiable = tape.grad_enabled and any(isinstance(a, Tensor) and a._rg for a in args)
        ctx = FunctionCtx(tuple(isinstance(a, Tensor) and a._rg and tape.grad_enabled for a in args))
        with no_grad():
            outputs = cls.forward(ctx, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        for k, o in enumerate(outs):
            if o is not None and not isinstance(o, Tensor):
                raise TypeError(f"{cls.__name__}.forward must return Tensors (or a tuple of them); output {k} "
                                f"is a {type(o).__name__}")
        if not differentiable:
            return outputs
        results = _record(cls, ctx, args, outs, tape)
        return results[0] if single else tuple(results)


def _record(cls, ctx, args, outs, tape):
    node = _Node()
    node.name = cls._backward_name
    node.fn = cls
    node.ctx = ctx
    node.inputs = args
    tensor_args = [a for a in args if isinstance(a, Tensor)]
    gids = [source_gid(a, tape) for a in tensor_args]
    slot = 0
    node.input_slots = []
    for a in args:
        if isinstance(a, Tensor):
            node.input_slots.append(slot)
            slot += 1
        else:
            node.input_slots.append(None)
    node.input_gids = gids
    ia = gids[0] if gids else -1
    ib = gids[1] if len(gids) > 1 else -1
    extra = gids[2:]
    aux = tape.put_ints((1, 1, len(extra), *extra))    # a 1-element value; params [n_extra, gids...]
    node_gid = tape.push(op.PYFUNC_OP, ia, ib, np.zeros(1), aux)
    tape.pyfuncs[node_gid] = node
    node.output_gids = []
    node.outputs_meta = []
    results = []
    for o in outs:
        if o is None:
            node.output_gids.append(None)
            node.outputs_meta.append(((), np.float64))
            results.append(None)
            continue
        data = o._data
        node.outputs_meta.append((data.shape, data.dtype))
        if id(o) in ctx._non_differentiable or data.dtype.kind not in "fc":
            node.output_gids.append(None)
            results.append(o)
            continue
        gid = tape.push(op.PYFUNC_OUTPUT, node_gid, -1, data, tape.put_shape(data.shape))
        node.output_gids.append(gid)
        results.append(_result(data, gid, tape.seg))
    return results


def once_differentiable(fn):
    """Accepted for compatibility: tapegrad backward never builds a graph, so this changes nothing."""
    return fn
