"""tg.compile: record a function's tape once, then replay it forward and backward in numba on new inputs.

A call records a trace the first time it sees an input signature (shapes, dtypes, requires_grad flags of tensor
arguments; values of everything else, integer and bool tensors included). The trace is the function's tape:
every operation, plus guard records wherever a value left the tape (bool(), item(), comparisons feeding `if`,
numpy(), ...). Later calls with the same signature write the new input values into the trace and run
_kernels/replay.py: one compiled forward loop that re-checks every guard, and for gradients the same reverse
sweep eager backward uses. A failed guard records a new trace for the new path (a few are kept per signature).

What the function does in Python besides tensor operations (printing, appending to lists) happens only while
recording. Tensors it reads from the enclosing scope are captured by object: their current values are read on
every call (so parameters updated in place are seen), but rebinding the name to another tensor is not.
Tensors it creates, random ones included, are frozen at their recorded values.
"""
import functools
import hashlib
import json
import math
import sys
import threading
import warnings
import weakref

import numba
import numpy as np

from . import _dtypes
from ._kernels import opcodes as op
from ._kernels import units
from ._kernels.program import GENERAL, KIND, NO_PROGRAM, NO_SPANS, REC, gradient_program, lower, runs_from_rows
from ._kernels.sweep import reach
from ._kernels.replay import (REPLAYED, forward_replay, pack_arguments, replay_rows, reverse_from,
                              value_and_grad_table)
from ._tape import Tape, _state
from .autograd import engine as _engine
from .autograd.engine import HAND_OVER_MIN
from .ops.inplace import LEAF_IN_PLACE
from .autograd.function import FunctionCtx, _record as record_function_node
from .tensor import Tensor, _handle, _wrap, leaf_handle_source, source_gid

__all__ = ["compile", "value_and_grad", "grad", "vmap", "load_compiled", "CompiledFunction"]

MAX_TRACES_PER_SIGNATURE = 8
_TABLES = op.SWEEP_TABLES
_REPLAYABLE = units.REPLAYABLE_FAMILIES
_FORMAT = "tapegrad-trace-1"
_WRITES_INTS = [op.ORDER, op.NN]   # families whose forward recomputes data-dependent params (permutations, argmax)
_F64 = np.dtype(np.float64)
_PARALLEL_LOCK = threading.Lock()   # numba's workqueue threading layer must not be entered by two threads at once


class NotTraceable(Exception):
    """The function did something a trace cannot replay; it runs eagerly instead."""


# -- the functional transforms ----------------------------------------------------------------------------------

class value_and_grad:
    """value_and_grad(fn, argnums=0)(*args) -> (fn(*args), gradient(s) with respect to args[argnums]).

    fn must return a single-element tensor. Under tg.compile the forward and reverse run as one compiled replay.
    """

    def __init__(self, fn, argnums=0, *, has_aux=False):
        if has_aux:
            raise NotImplementedError("value_and_grad(has_aux=True) is not supported yet")
        self.fn = fn
        self.argnums = argnums
        self.__name__ = f"value_and_grad({getattr(fn, '__name__', 'fn')})"
        self.__wrapped__ = fn

    def positions(self, nargs):
        many = isinstance(self.argnums, (tuple, list))
        positions = tuple(self.argnums) if many else (self.argnums,)
        for p in positions:
            if not isinstance(p, int) or not -nargs <= p < nargs:
                raise ValueError(f"{self.__name__}: argnums {self.argnums!r} out of range for {nargs} "
                                 "positional arguments")
        return tuple(p % nargs for p in positions), many

    def check_argument(self, p, x):
        """Argument p, x, is one to differentiate with respect to: a floating-point tensor."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"{self.__name__}: argument {p} must be a floating-point tensor to differentiate "
                            f"with respect to, got {_describe(x)}")

    def __call__(self, *args, **kwargs):
        from .autograd.engine import grad as autograd_grad
        from .autograd.grad_mode import enable_grad
        positions, many = self.positions(len(args))
        args = list(args)
        leaves = []
        for p in positions:
            x = args[p]
            self.check_argument(p, x)
            leaf = _wrap(x._data, requires_grad=True)
            args[p] = leaf
            leaves.append(leaf)
        with enable_grad():
            out = self.fn(*args, **kwargs)
            _check_scalar(self.__name__, out)
            grads = autograd_grad(out, leaves, allow_unused=True) if out._rg else (None,) * len(leaves)
        grads = tuple(g if g is not None else _wrap(np.zeros_like(x._data)) for g, x in zip(grads, leaves))
        return out.detach(), (grads if many else grads[0])


def grad(fn, argnums=0):
    """grad(fn, argnums=0)(*args): the gradient(s) of fn's single-element result with respect to args[argnums]."""
    inner = value_and_grad(fn, argnums)

    def gradient(*args, **kwargs):
        return inner(*args, **kwargs)[1]

    gradient.value_and_grad = inner
    gradient.__name__ = f"grad({getattr(fn, '__name__', 'fn')})"
    return gradient


def _check_scalar(name, out):
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}: the function must return a single-element tensor, got {_describe(out)}")
    if out.numel() != 1:
        raise RuntimeError(f"{name}: the function must return a single-element tensor, got shape "
                           f"{tuple(out.shape)}")
    if not out.is_floating_point():
        raise TypeError(f"{name}: the function must return a floating-point tensor, got {out.dtype}")


def _describe(x):
    if isinstance(x, Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


# -- recording --------------------------------------------------------------------------------------------------

class Recorder:
    """Attached to the private tape a trace records on; the tensor and op code call it where values leave the
    tape or enter it from outside."""

    def __init__(self, tape):
        self.tape = tape
        self.sources = []        # (gid, tensor) of constant tensors the function read
        self.captured = {}       # id(tensor) -> (gid, tensor) for results computed outside the function

    def observe(self, t):
        """A value leaves the tape (item, bool, numpy, ...): guard it."""
        data = t._data
        if data.dtype.kind == "c":
            raise NotTraceable("a complex value left the tape")
        g = source_gid(t, self.tape)
        self.tape.push(op.GUARD_EQUAL, g, -1, np.asarray(data, dtype=np.float64), self.tape.put_shape(data.shape))

    def capture(self, t):
        """A tensor computed outside the function: an input of the trace, re-read on every call."""
        hit = self.captured.get(id(t))
        if hit is not None:
            return hit[0]
        data = t._data
        g = self.tape.push(op.LEAF, -1, -1, data, self.tape.put_shape(data.shape))
        self.captured[id(t)] = (g, t)
        return g

    def detached(self, t):
        """t.detach() while recording: the value still comes from the inputs, so replay must recompute it."""
        g = source_gid(t, self.tape)
        data = t._data if t._data.ndim == 0 and isinstance(t._data, np.generic) else t._data.view()
        gid = self.tape.push(op.DETACH, g, -1, data, self.tape.put_shape(np.shape(data)))
        return _handle(data, gid, None, False)

    def comparison(self, opcode, x, other, data):
        """A comparison of recorded values (its result may steer an `if` or mask an operation)."""
        tracked = [t for t in (x, other) if isinstance(t, Tensor) and (t._seg is not None or t._rg
                                                                       or self._known(t))]
        if not tracked:
            return _wrap(data)
        ga = source_gid(x, self.tape)
        if isinstance(other, Tensor):
            gb, c = source_gid(other, self.tape), 0.0
        else:
            if isinstance(other, complex):
                raise NotTraceable("a comparison with a complex number")
            gb, c = -1, float(other)
        gid = self.tape.push(opcode, ga, gb, np.asarray(data), self.tape.put_shape(np.shape(data)), c)
        return _handle(data, gid, None, False)

    def _known(self, t):
        return t._seg is None and self.tape.seg.start <= t._id < self.tape.limit


class _Source:
    """A tensor the trace reads from outside (captured or constant): re-read when its version moves."""

    __slots__ = ("gid", "ref", "version", "data", "shape")

    def __init__(self, gid, t):
        self.gid = gid
        self.ref = weakref.ref(t)
        self.version = t._version
        self.data = t._data
        self.shape = t._data.shape


class _TraceLocal(threading.local):
    """A trace's per-thread state: working buffers, kernel table, lean call, hand-over pool (None until made)."""
    work = lean = call = pool = None


class Trace:
    """One recorded trace: the tape records of a call, where its inputs and outputs sit, and its guards."""

    def __init__(self, arrays, base, n, input_gids, input_meta, outputs, structure, sources, captured_leaves,
                 differentiable_inputs):
        self.ops, self.a, self.b, self.aux, self.off, self.const, self.flags, self.ints, self.vals = arrays
        self.base = base
        self.n = n
        self.input_gids = input_gids          # per tensor argument: gid, or -1 if the function never read it
        self.input_meta = input_meta          # per tensor argument: (shape, numpy dtype)
        self.outputs = outputs                # [(gid, shape, numpy dtype)]
        self.structure = structure            # "single", "tuple" or "list"
        self.sources = sources                # [_Source] re-read before each replay
        self.captured_leaves = captured_leaves  # [(gid, tensor)] outside tensors that require grad
        self.differentiable_inputs = differentiable_inputs
        self.local = _TraceLocal()
        self.verified = False
        self.vag_plan = None
        self.writes_ints = bool(np.any(np.isin(self.ops >> 6, _WRITES_INTS)))
        self.prog = lower(self.ops, self.a, self.b, self.aux, self.off, self.ints, n, base)
        # the forward replay calls them by address; the other rows run inline
        units.load_all("forward", self.ops[:n][self.prog[:, KIND] == GENERAL])
        self.records = (self.ops, self.a, self.b, self.aux, self.off, self.const, self.flags)
        # where each tensor argument's values go in `vals` (start, stop and rank; start -1: never read), as
        # Python ints for load_inputs
        self.input_spans = [(int(self.off[g - base]), int(self.off[g - base]) + math.prod(shape), len(shape))
                            if g >= 0 else (-1, -1, 0) for g, (shape, dtype) in zip(input_gids, input_meta)]
        self.output_record = outputs[0][0] - base if outputs else -1
        self.output_takers = [_taker(*self.slot(g, shape, dtype)) for g, shape, dtype in outputs]
        self.back = NO_PROGRAM  # the gradient program (rows of the records the sweep reaches, in its order) and
        self.zero = NO_SPANS    # the adjoint spans it needs zeroed: see ensure_gradient_program

    def buffers(self):
        """This thread's working copies of the values, adjoints and reached flags."""
        work = self.local.work
        if work is None:
            # replaying a sort (say) rewrites its permutation in the int table, so each thread needs its own
            ints = self.ints.copy() if self.writes_ints else self.ints
            work = (self.vals.copy(), np.zeros(max(len(self.vals), 1)), np.zeros(max(self.n, 1), np.uint8), ints)
            self.local.work = work
        return work

    def load_inputs(self, vals, tensors):
        """Write the call's tensor arguments and the current values of outside tensors into `vals`; False if an
        outside tensor changed shape (a new trace is needed)."""
        for (o, stop, ndim), t in zip(self.input_spans, tensors):
            if o < 0:
                continue
            d = t._data
            if ndim == 0:
                vals[o] = d
            else:
                vals[o:stop] = d if ndim == 1 else d.reshape(-1)
        if not self.sources:
            return True
        off = self.off
        base = self.base
        for s in self.sources:
            t = s.ref()
            if t is None:
                continue
            d = t._data
            if d is s.data and t._version == s.version:
                continue
            if d.shape != s.shape:
                return False
            o = off[s.gid - base]
            vals[o:o + d.size] = np.asarray(d, dtype=np.float64).reshape(-1)
        return True

    def replay(self, tensors):
        """Forward replay into this thread's buffers; returns the values buffer, or None if a guard failed."""
        vals, adj, need, ints = self.buffers()
        if not self.load_inputs(vals, tensors):
            return None
        if forward_replay(self.prog, self.ops, self.a, self.b, self.aux, self.off, self.const, ints, vals, self.n,
                          self.base, units.TABLE) != REPLAYED:
            return None
        return vals, ints

    def value_and_grad(self, tensors, hand_over=False):
        """Fused forward and reverse replay of a scalar function; returns (vals, adj, whether adj is a buffer to
        hand over, see handover_entry) or None if a guard failed. A thread's first call builds its kernel arguments
        as one table (replay.pack_arguments)."""
        lean = self.local.lean
        entry = None
        if lean is None:
            self.ensure_gradient_program()
            vals, adj, need, ints = self.buffers()
            args = (self.prog, self.back, self.zero, *self.records, ints, vals, adj, need, self.n, self.base,
                    self.output_record, _TABLES, units.TABLE)
            lean = self.local.lean = (vals, adj, args, _table_kernel(), pack_arguments(args))
        elif hand_over:
            entry = self.handover_entry(lean)
        vals, adj, args, kernel, table = lean
        if not self.load_inputs(vals, tensors):
            return None
        if _failed(kernel(table if entry is None else entry[1], _NO_INPUT)):
            return None
        return (vals, adj, False) if entry is None else (vals, entry[0], True)

    def ensure_gradient_program(self):
        """Work out the trace's gradient program, once: the rows of the records a sweep from the output reaches
        (sweep.reach, which also makes the sweep's checks), and load the backward units of those rows that do not
        run inline."""
        if self.back is not NO_PROGRAM:
            return
        status, _, need = reach(self.output_record, self.ops, self.a, self.b, self.aux, self.flags, self.ints,
                                self.base, _TABLES)
        if status != op.OK:
            _sweep_failed(status)
        back, zero = gradient_program(self.prog, np.flatnonzero(need[:self.n])[::-1], self.ops, self.a, self.b,
                                      self.aux, self.ints, op.HAS_EXTRA, self.base, len(self.vals),
                                      self.output_record)
        units.load_all("backward", self.ops[back[back[:, KIND] == GENERAL, REC]])
        self.back, self.zero = back, zero

    def handover_entry(self, lean):
        """For a call whose large float64 gradients are returned as views of the adjoint buffer they were computed
        in rather than copied out (a copy is two more passes over memory): [buffer, the kernel's arguments with it
        as the adjoint buffer, its reference count while nothing else refers to it], or None. A buffer goes back
        to the kernel only once nothing refers to it any more, so a caller that keeps one call's gradients while
        making the next gets a second buffer; while both are held (None), the gradients are copied out of the
        trace's own buffer."""
        pool = self.local.pool
        if pool is None:
            pool = self.local.pool = []
        for entry in pool:
            if sys.getrefcount(entry[0]) == entry[2]:
                return entry
        if len(pool) == 2:
            return None
        vals, adj, args, kernel, table = lean
        entry = [np.empty_like(adj), None, 0]
        entry[1] = pack_arguments(tuple(entry[0] if a is adj else a for a in args))
        pool.append(entry)
        entry[2] = sys.getrefcount(entry[0])
        return entry

    def reverse(self, vals, ints, seeds):
        """Adjoints of every record given seeds for the outputs (None: no gradient flows from that output)."""
        adj = np.zeros(max(len(vals), 1))
        need = np.zeros(max(self.n, 1), np.uint8)
        outputs, flat, at = [], [], [0]
        for (gid, shape, dtype), seed in zip(self.outputs, seeds):
            if seed is None:
                continue
            outputs.append(gid - self.base)
            s = np.asarray(seed._data, dtype=np.float64).reshape(-1)
            flat.append(s)
            at.append(at[-1] + s.size)
        while outputs:
            status, i = reverse_from(np.array(outputs, np.int64), np.concatenate(flat), np.array(at, np.int64),
                                     self.ops, self.a, self.b, self.aux, self.off, self.const, self.flags, ints, vals,
                                     adj, need, self.base, _TABLES, units.TABLE)
            if status != op.ERR_UNIT:
                break
            units.load("backward", self.ops[i])     # then sweep again from the start: nothing was changed
        return adj

    def slot(self, gid, shape, dtype):
        """(offset, size, shape, dtype) of record gid's values."""
        return int(self.off[gid - self.base]), int(math.prod(shape)), shape, dtype

    def value_of(self, vals, gid, shape, dtype):
        return _slot(vals, *self.slot(gid, shape, dtype))

    def gradient_of(self, adj, gid, shape, dtype):
        """The adjoint of record gid; zeros for an input the trace never read (gid -1)."""
        return self.value_of(adj, gid, shape, dtype) if gid >= 0 else _slot(adj, -1, 0, shape, dtype)

    def pack(self, results):
        if self.structure == "single":
            return results[0]
        return tuple(results) if self.structure == "tuple" else list(results)


_GUARD_FAILED = object()    # a lean call's answer when a guard of its trace failed


def _sweep_failed(status):
    raise RuntimeError(f"tg.compile: the gradient sweep of the recorded trace failed (status {status})")


def _failed(result):
    """Whether value_and_grad_table's result says a guard failed; raises if the sweep failed."""
    if result == REPLAYED:
        return False
    if result >= 0:
        return True
    _sweep_failed(REPLAYED - result)


_NO_INPUT = np.zeros(0)     # value_and_grad_table's x when the caller copied every input in
_TABLE_SIGNATURE = (numba.types.int64[::1], numba.types.Array(numba.types.float64, 1, "A"))


def _table_kernel():
    """value_and_grad_table's machine code for a table and a float64 vector of any strides, called without numba's
    per-call type dispatch (~20 ns an argument). Its arguments' types are checked by the caller (the table is
    built by pack_arguments; x is a float64 vector)."""
    overloads = value_and_grad_table.overloads
    if _TABLE_SIGNATURE not in overloads:
        value_and_grad_table.compile(_TABLE_SIGNATURE)
    return overloads[_TABLE_SIGNATURE].entry_point


def _taker(o, size, shape, dtype):
    """The function that cuts a record's values out of a flat float64 buffer, as a fresh array of its shape and
    dtype (o < 0: a record that was never recorded, zeros), by the shortest numpy path for that shape: a compiled
    value-and-gradient call runs one per output, so it is worked out once per trace."""
    if o < 0:
        return (lambda buffer: np.zeros(shape, dtype)) if shape else (lambda buffer: dtype.type(0))
    if not shape:
        return (lambda buffer: buffer[o]) if dtype is _F64 else (lambda buffer: dtype.type(buffer[o]))
    stop = o + size
    if dtype is _F64 and len(shape) == 1:
        return lambda buffer: buffer[o:stop].copy()
    return lambda buffer: buffer[o:stop].reshape(shape).astype(dtype)


def _bound_taker(buffer, o, size, shape, dtype):
    """_taker's cut of one fixed buffer, as a function of nothing; for a float64 scalar or vector, a method of the
    buffer or of its view, called without a Python frame (a lean call runs one per result)."""
    if o >= 0 and dtype is _F64 and len(shape) <= 1:
        return functools.partial(buffer.__getitem__, o) if not shape else buffer[o:o + size].copy
    take = _taker(o, size, shape, dtype)
    return lambda: take(buffer)


def _gradient_views(adj, views, copy):
    """The gradients at views' (start, stop, shape) in adj, as views of it or as copies."""
    if copy:
        return [adj[o:stop].reshape(shape).copy() for o, stop, shape in views]
    return [adj[o:stop].reshape(shape) for o, stop, shape in views]


def _slot(buffer, o, size, shape, dtype):
    """A record's values out of a flat float64 buffer, as a fresh array of its shape and dtype."""
    return _taker(o, size, shape, dtype)(buffer)


def _flatten_outputs(name, out):
    if isinstance(out, Tensor):
        return [out], "single"
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out), "tuple" if isinstance(out, tuple) else "list"
    raise TypeError(f"tg.compile({name}): the function must return a Tensor or a tuple/list of Tensors, got "
                    f"{_describe(out) if not isinstance(out, (tuple, list)) else 'a ' + type(out).__name__ + ' of ' + ', '.join(_describe(o) for o in out)}")


class _PrivateTape:
    """Swap a fresh tape in for this thread while a trace records."""

    def __enter__(self):
        self.saved = _state.tape
        tape = Tape()
        tape.compact_at = tape.compact_vals_at = 1 << 62   # gids must stay put while the trace is extracted
        tape.tracing = Recorder(tape)
        _state.tape = tape
        return tape

    def __exit__(self, *exc):
        _state.tape.tracing = None
        _state.tape = self.saved
        return False


def _record_trace(name, fn, args, kwargs, tensor_positions, vag_positions):
    """Run fn once on a private tape and turn its records into a Trace (raises NotTraceable)."""
    with _PrivateTape() as tape:
        call_args = list(args)
        leaves = []
        for p in tensor_positions:
            x = args[p]
            float_input = x._data.dtype.kind == "f"
            leaf = _wrap(np.array(x._data, copy=True) if x._data.ndim else x._data, requires_grad=float_input)
            call_args[p] = leaf
            leaves.append(leaf)
        try:
            out = fn(*call_args, **kwargs)
        except RuntimeError as err:
            # arguments are recorded as leaves requiring grad, so an in-place write to one lands here
            if str(err) == LEAF_IN_PLACE and not all(args[p]._rg for p in tensor_positions):
                raise RuntimeError(f"tg.compile({name}): the function modified an argument in place; compiled "
                                   "functions must not mutate their inputs (return a new tensor instead)") from None
            raise
        if vag_positions is not None:
            _check_scalar(name, out)
        outs, structure = _flatten_outputs(name, out)
        for p, leaf in zip(tensor_positions, leaves):
            if leaf._version_count:
                raise RuntimeError(f"tg.compile({name}): the function modified its argument {p} in place; "
                                   "compiled functions must not mutate their inputs (return a new tensor instead)")
        out_gids = [source_gid(o, tape) for o in outs]
        tape.flush()
        n = tape.n
        fams = {int(f) for f in np.unique(tape.ops[:n] >> 6)}
        if not fams <= _REPLAYABLE:
            kinds = sorted(f for f in fams - _REPLAYABLE)
            names = {op.PYFUNC: "an autograd.Function", op.CUSTOM: "a custom_op"}
            what = ", ".join(names.get(f, f"operation family {f}") for f in kinds)
            raise NotTraceable(f"the function uses {what}, which replay does not support yet")
        if len(tape.segments) > 1 or np.any(tape.flags[:n] & op.FLAG_FREED):
            raise NotTraceable("the function calls backward() or autograd.grad() itself")
        leaf_gid = {id(t): g for g, t in tape.seg.leaves}
        input_gids = [leaf_gid.get(id(leaf), -1) for leaf in leaves]
        input_meta = [(args[p]._data.shape, args[p]._data.dtype) for p in tensor_positions]
        own = {id(leaf) for leaf in leaves}
        captured_leaves = [(g, t) for g, t in tape.seg.leaves if id(t) not in own]
        captured_leaves += [(g, t) for g, t in tape.tracing.captured.values() if t._rg]
        sources = [_Source(g, t) for g, t in captured_leaves + [(g, t) for g, t in tape.tracing.captured.values()
                                                                if not t._rg]]
        # constants read by the function: re-read when changed in place later, unless it changed them itself
        sources += [_Source(g, t) for g, t in tape.tracing.sources if t._version == _version_at(tape, g, t)]
        arrays = tuple(np.ascontiguousarray(getattr(tape, k)[:m]) for k, m in
                       (("ops", n), ("a", n), ("b", n), ("aux", n), ("off", n), ("const", n), ("flags", n),
                        ("ints", tape.ni), ("vals", tape.nv)))
        arrays = arrays[:6] + (np.zeros(n, np.uint8),) + arrays[7:]
        outputs = [(g, o._data.shape, o._data.dtype) for g, o in zip(out_gids, outs)]
        differentiable = [args[p]._data.dtype.kind == "f" for p in tensor_positions]
        trace = Trace(arrays, tape.base, n, input_gids, input_meta, outputs, structure, sources, captured_leaves,
                      differentiable)
        trace.positions = list(tensor_positions)
        return trace


def _version_at(tape, gid, t):
    # sources are recorded the moment they are read; a version bump since then means the function wrote to it
    return t._version if not (tape.flags[gid - tape.base] & op.FLAG_STALE) else -1


# -- the compiled callable --------------------------------------------------------------------------------------

class Stats:
    """What a compiled function did: traces recorded, replays, guard failures, eager fallbacks."""

    __slots__ = ("traces", "replays", "guard_failures", "eager_calls")

    def __init__(self):
        self.traces = self.replays = self.guard_failures = self.eager_calls = 0

    def __repr__(self):
        return (f"Stats(traces={self.traces}, replays={self.replays}, guard_failures={self.guard_failures}, "
                f"eager_calls={self.eager_calls})")


class CompiledFunction:
    """The callable tg.compile returns. Holds the traces by input signature."""

    def __init__(self, fn):
        self.fn = fn
        self.vag = fn if isinstance(fn, value_and_grad) else getattr(fn, "value_and_grad", None)
        self.grad_only = self.vag is not None and not isinstance(fn, value_and_grad)
        self.inner = self.vag.fn if self.vag is not None else fn
        self.__name__ = getattr(fn, "__name__", "fn")
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn
        self.traces = {}
        self.stats = Stats()
        self.eager_reason = None
        self._lock = threading.Lock()
        self._warned = False
        self._last = None   # (trace, [(shape, dtype, requires_grad)]) of the last replay whose arguments were
                            # all float tensors: a call like it goes straight to that trace

    # signature: what must match for a trace to apply
    def _signature(self, args, kwargs):
        key = []
        positions = []
        for k, x in enumerate(args):
            if x.__class__ is Tensor:
                d = x._data
                dt = d.dtype
                kind = dt.kind
                if kind == "f":
                    key.append((d.shape, dt.char, x._rg))
                    positions.append(k)
                elif kind == "c":
                    raise NotTraceable("complex tensor arguments")
                else:
                    key.append((d.shape, dt.char, np.asarray(d).tobytes()))   # integer/bool: by value
            else:
                key.append(_static_key(self.__name__, k, x))
        for name in sorted(kwargs):
            v = kwargs[name]
            if isinstance(v, Tensor):
                raise TypeError(f"tg.compile({self.__name__}): pass tensors positionally (keyword argument "
                                f"{name!r} is a tensor)")
            key.append((name, _static_key(self.__name__, name, v)))
        return tuple(key), positions

    def __call__(self, *args, **kwargs):
        last = self._last
        if last is not None and not kwargs:
            call = last[0].local.call
            if call:
                result = call(args)
                if result is not None and result is not _GUARD_FAILED:
                    self.stats.replays += 1
                    return result
                return self._call(args, kwargs, last, result)
        return self._call(args, kwargs, last, None)

    def _call(self, args, kwargs, last, lean_result):
        """A call the lean call of the last call's trace (`last`) did not answer (lean_result: its answer, None or
        _GUARD_FAILED)."""
        tried = None     # the last call's trace, if its guards just failed: not worth replaying twice
        if last is not None and not kwargs:
            trace, expected = last
            call = trace.local.call
            if lean_result is _GUARD_FAILED:
                tried = trace
            elif len(args) == len(expected):
                # the signature check of _signature, for the common call: the same float tensor shapes as last time
                for x, (shape, dtype, rg) in zip(args, expected):
                    if x.__class__ is not Tensor or x._data.shape != shape or x._data.dtype != dtype or x._rg != rg:
                        break
                else:
                    result = self._replay(trace, args, args)
                    if result is not None:
                        self.stats.replays += 1
                        if not trace.verified:
                            result = self._verify(trace, result, args, args, kwargs)
                            if self._last is None:      # verification failed: eager from now on
                                return result
                        if self.vag is not None and (call is None or call and call.unverified and trace.verified):
                            trace.local.call = self._lean_call(trace, expected)
                        return result
                    tried = trace
        if self.eager_reason is not None:
            self.stats.eager_calls += 1
            return self.fn(*args, **kwargs)
        try:
            key, positions = self._signature(args, kwargs)
        except NotTraceable as err:
            return self._eager(err, args, kwargs)
        tensors = [args[p] for p in positions]
        traces = self.traces.get(key)
        if traces:
            for trace in traces:
                if trace is tried:
                    continue
                result = self._replay(trace, tensors, args)
                if result is not None:
                    self.stats.replays += 1
                    if not kwargs and len(tensors) == len(args):
                        # also before verification: a loop that passes the very same inputs never verifies
                        self._last = (trace, [(t._data.shape, t._data.dtype, t._rg) for t in tensors])
                    return result if trace.verified else self._verify(trace, result, tensors, args, kwargs)
            self.stats.guard_failures += 1
        vag_positions = self.vag.positions(len(args))[0] if self.vag is not None else None
        for p in vag_positions or ():
            self.vag.check_argument(p, args[p])     # before recording: eager's error, not a half-built trace
        try:
            with self._lock:
                trace = _record_trace(self.__name__, self.inner, args, kwargs, positions, vag_positions)
        except NotTraceable as err:
            return self._eager(err, args, kwargs)
        trace.recorded_inputs = [(t._data, t._version, t._data.tobytes()) for t in tensors]
        trace.nargs = len(args)
        trace.argnums = self.vag.positions(len(args)) if self.vag is not None else None
        self.stats.traces += 1
        traces = self.traces.setdefault(key, [])
        traces.insert(0, trace)
        del traces[MAX_TRACES_PER_SIGNATURE:]
        self._maybe_warn()
        result = self._replay(trace, tensors, args)
        if result is None:   # the recorded path did not reproduce itself (e.g. a guard on a random draw)
            raise RuntimeError(f"tg.compile({self.__name__}): a freshly recorded trace failed its own guards; "
                               "the function's control flow depends on values created inside it "
                               "(random draws?). Call it without tg.compile.")
        return result

    def _lean_call(self, trace, expected):
        """A verified value-and-grad trace's whole call as one Python function for this thread: check each argument
        against the last call's, copy it in, run the kernel, cut out and wrap the results. On small functions the
        Python around the kernel is most of a call (a Rosenbrock step: ~1.1 us of kernel, ~2 us around it), so
        the function is generated for the trace (as dataclasses generates __init__): one straight line per
        argument and per result, no loops, no calls to make a handle (~0.6 us less than the loop it replaced).
        It returns None when the arguments do not match (the general path takes over) and _GUARD_FAILED when a
        guard failed. False (never tried again) for a trace that re-reads outside tensors on every call, which
        the general path does.

        A trace not verified yet (no call so far had inputs other than the recorded ones) gets a call that takes
        only the very arrays recorded, unchanged, as _verify lets through unchecked: a loop over the same inputs
        never verifies, and would otherwise pay the general path on every call. Anything else goes the general
        way, which verifies; the verified trace then gets its own lean call."""
        lean = trace.local.lean
        if lean is None or trace.sources or trace.vag_plan is None:
            return False
        vals, adj, kernel_args, kernel, table = lean
        _, _, many, views, (value_slot, grad_slots) = trace.vag_plan
        unverified = not trace.verified
        scope = {"Tensor": Tensor, "_new_object": object.__new__, "trace": trace, "kernel": kernel, "vals": vals,
                 "REPLAYED": REPLAYED, "_failed": _failed, "_GUARD_FAILED": _GUARD_FAILED, "x": _NO_INPUT}
        names = [f"t{k}" for k in range(len(expected))]
        lines = ["try:", f"    {', '.join(names)}, = args", "except ValueError:", "    return None"]
        if unverified:      # verified since: the general path builds that trace's call
            lines.append("if trace.recorded_inputs is None: return None")
        recorded = trace.recorded_inputs or [(None, 0, None)] * len(expected)
        vector_in_kernel = views is None    # the kernel copies the first float64 vector in itself: a numpy copy less
        for k, ((data, version, _), (shape, dtype, rg), (o, stop, ndim)) in enumerate(
                zip(recorded, expected, trace.input_spans)):
            t, d = names[k], f"d{k}"
            scope.update({f"data{k}": data, f"shape{k}": shape, f"dtype{k}": dtype})
            lines += [f"if {t}.__class__ is not Tensor or {t}._rg != {bool(rg)}: return None",
                      f"{d} = {t}._data"]
            if unverified:      # only the very array recorded, unchanged: it has the recorded shape and dtype
                lines.append(f"if {d} is not data{k} or {t}._version != {version}: return None")
            else:
                lines.append(f"if {d}.shape != shape{k} or {d}.dtype is not dtype{k} and {d}.dtype != dtype{k}: "
                             "return None")
            if o < 0:
                continue
            if vector_in_kernel and ndim == 1 and dtype == _F64:
                vector_in_kernel = False
                table = pack_arguments(kernel_args, o)
                lines.append(f"x = {d}")
            elif ndim == 0:
                lines.append(f"vals[{o}] = {d}")
            else:
                lines.append(f"vals[{o}:{stop}] = {d}" + (".reshape(-1)" if ndim > 1 else ""))
        scope["table"] = table
        if views is None:
            lines += ["result = kernel(table, x)",
                      "if result != REPLAYED and _failed(result): return _GUARD_FAILED"]
            for j, slot in enumerate(grad_slots):
                scope[f"take{j}"] = _bound_taker(adj, *slot)
                lines.append(leaf_handle_source(f"g{j}", f"take{j}()"))
            grads = [f"g{j}" for j in range(len(grad_slots))]
        else:       # large float64 gradients: handed over as views when a buffer is free (Trace.handover_entry)
            def gradients(x):
                entry = trace.handover_entry(lean)
                result = kernel(table if entry is None else entry[1], x)
                if result != REPLAYED and _failed(result):
                    return None
                return [_wrap(g) for g in _gradient_views(adj if entry is None else entry[0], views, entry is None)]
            scope["gradients"] = gradients
            lines += ["grads = gradients(x)",
                      "if grads is None: return _GUARD_FAILED"]
            grads = [f"grads[{j}]" for j in range(len(views))]
        grads = f"({', '.join(grads)},)" if many else grads[0]
        if self.grad_only:
            lines.append(f"return {grads}")
        else:
            scope["take_value"] = _bound_taker(vals, *value_slot)
            lines += [leaf_handle_source("value", "take_value()"), f"return value, {grads}"]
        source = "def call(args):\n" + "".join(f"    {line}\n" for line in lines)
        exec(source, scope)     # noqa: S102 - the source is built above from numbers and fixed names only
        call = scope["call"]
        call.source = source
        call.unverified = unverified
        return call

    def _replay(self, trace, tensors, args):
        if self.vag is not None:
            plan = trace.vag_plan
            if plan is None:
                plan = trace.vag_plan = self._vag_plan(trace, args)
            take_value, take_grads, many, views, _ = plan
            out = trace.value_and_grad(tensors, views is not None)
            if out is None:
                return None
            vals, adj, handed_over = out
            if handed_over:
                grads = [_wrap(g) for g in _gradient_views(adj, views, False)]
                grads = tuple(grads) if many else grads[0]
            elif many:
                grads = tuple([_wrap(take(adj)) for take in take_grads])
            else:
                grads = _wrap(take_grads[0](adj))
            return grads if self.grad_only else (_wrap(take_value(vals)), grads)
        state = trace.replay(tensors)
        if state is None:
            return None
        return self._outputs(trace, state, tensors)

    def _vag_plan(self, trace, args):
        """How to cut the value and each requested gradient out of the buffers: worked out once per trace, so a
        replay only slices and wraps."""
        positions, many = self.vag.positions(len(args))
        tensor_index = {p: k for k, p in enumerate(_tensor_positions(args))}
        grad_slots = []
        views = []      # (start, stop, shape) of each gradient, when all are float64 arrays and together large
        for p in positions:
            k = tensor_index[p]
            g = trace.input_gids[k]
            shape, dtype = trace.input_meta[k]
            grad_slots.append(trace.slot(g, shape, dtype) if g >= 0 else (-1, 0, shape, dtype))
            if g >= 0 and shape and dtype is _F64:
                o, size = grad_slots[-1][:2]
                views.append((o, o + size, shape))
        if (len(views) < len(grad_slots) or len({o for o, _, _ in views}) < len(views)    # one input asked twice:
                or sum(stop - o for o, stop, _ in views) < HAND_OVER_MIN):               # two arrays, as torch
            views = None
        value_slot = trace.slot(*trace.outputs[0])
        grads = [_taker(*slot) for slot in grad_slots]
        return _taker(*value_slot), grads, many, views, (value_slot, grad_slots)

    def _outputs(self, trace, state, tensors):
        """Wrap the outputs; if gradients can flow, record the call as one CompiledFunctionBackward node."""
        vals, ints = state
        tape = _state.tape
        grad_inputs = [t for t, diff in zip(tensors, trace.differentiable_inputs) if diff]
        leaves = [t for g, t in trace.captured_leaves]
        differentiable = tape.grad_enabled and (any(t._rg for t in grad_inputs) or any(t._rg for t in leaves))
        outs = [_wrap(take(vals)) for take in trace.output_takers]
        if not differentiable:
            return trace.pack(outs)
        node_inputs = [*tensors, *leaves]    # tensors: a list, or the call's argument tuple (the fast path)
        ctx = FunctionCtx(tuple(t._rg for t in node_inputs))
        ctx.trace = trace
        ctx.vals = vals.copy()    # this call's values, for its backward (later calls overwrite the buffer)
        ctx.ints = ints.copy() if trace.writes_ints else ints
        ctx.n_args = len(tensors)
        ctx.mark_non_differentiable(*[o for o in outs if o._data.dtype.kind != "f"])
        results = record_function_node(CompiledFunction_, ctx, tuple(node_inputs), outs, tape)
        return trace.pack(results)

    def _verify(self, trace, result, tensors, args, kwargs):
        """The first replay on inputs other than the recorded ones is compared with an eager call: a value that
        left the tape through an operation the trace cannot follow would show up here as a mismatch."""
        # the very arrays recorded, unmodified, need no byte comparison (8 MB of bytes per call on large inputs)
        same = all((t._data is data and t._version == version) or t._data.tobytes() == recorded
                   for t, (data, version, recorded) in zip(tensors, trace.recorded_inputs))
        if same:
            return result
        from .autograd.grad_mode import no_grad
        if self.vag is not None:
            expected = self.fn(*args, **kwargs)
        else:
            with no_grad():
                expected = self.fn(*args, **kwargs)
        if _agree(result, expected):
            trace.verified = True
            trace.recorded_inputs = None
            return result
        self.eager_reason = ("its recorded tape does not reproduce it on new inputs: a value reached Python or "
                             "a constant through an operation tg.compile cannot follow (a non-differentiable "
                             "op, no_grad, an integer conversion, ...)")
        warnings.warn(f"tg.compile({self.__name__}): {self.eager_reason}; running it eagerly from now on",
                      RuntimeWarning, stacklevel=3)
        self.traces.clear()
        self._last = None
        return self.fn(*args, **kwargs)

    def _eager(self, err, args, kwargs):
        self.eager_reason = str(err)
        self._last = None
        warnings.warn(f"tg.compile({self.__name__}): {err}; running it eagerly", RuntimeWarning, stacklevel=3)
        self.stats.eager_calls += 1
        return self.fn(*args, **kwargs)

    def _maybe_warn(self):
        if not self._warned and self.stats.traces >= 10 and self.stats.traces > self.stats.replays:
            self._warned = True
            warnings.warn(f"tg.compile({self.__name__}): recorded {self.stats.traces} traces but replayed only "
                          f"{self.stats.replays} times: guards keep failing (values that steer Python change "
                          "from call to call), so compiling does not pay off here", RuntimeWarning, stacklevel=3)

    def graph(self, program=False, show_attrs=False):
        """A picture of the most recently recorded trace (tapegrad.viz.trace_dot); program=True adds each
        record's row of the replay program."""
        from .viz import latest_trace, trace_dot
        return trace_dot(latest_trace(self.traces), f"tg.compile({self.__name__})", program, show_attrs)

    # -- persistence ------------------------------------------------------------------------------------------
    def save(self, path):
        """Save the most recently recorded trace as an npz of plain arrays (no pickle)."""
        if not self.traces:
            raise RuntimeError(f"tg.compile({self.__name__}).save: nothing recorded yet; call the function once")
        key, traces = next(reversed(self.traces.items()))
        save_trace(path, traces[0], key, self)


class CompiledFunction_:
    """The node a compiled call records on the caller's tape; its backward replays the trace's reverse sweep."""

    _backward_name = "CompiledFunctionBackward"

    @staticmethod
    def backward(ctx, *grad_outputs):
        trace = ctx.trace
        adj = trace.reverse(ctx.vals, ctx.ints, grad_outputs)
        grads = []
        for k, (g, (shape, dtype)) in enumerate(zip(trace.input_gids, trace.input_meta)):
            grads.append(_wrap(trace.gradient_of(adj, g, shape, dtype)) if ctx.needs_input_grad[k] else None)
        for g, t in trace.captured_leaves:
            grads.append(_wrap(trace.gradient_of(adj, g, t._data.shape, t._data.dtype)) if t._rg else None)
        return tuple(grads)


def _tensor_positions(args):
    return [k for k, x in enumerate(args) if x.__class__ is Tensor and x._data.dtype.kind == "f"]


def _static_key(name, where, x):
    """A hashable stand-in for a non-tensor argument (its value is part of the signature)."""
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(_static_key(name, where, v) for v in x))
    if isinstance(x, dict):
        return ("dict", tuple(sorted((k, _static_key(name, where, v)) for k, v in x.items())))
    if isinstance(x, np.ndarray):
        return ("ndarray", x.shape, x.dtype.str, x.tobytes())
    if isinstance(x, slice):
        return ("slice", _static_key(name, where, x.start), _static_key(name, where, x.stop),
                _static_key(name, where, x.step))
    if isinstance(x, Tensor):
        raise TypeError(f"tg.compile({name}): tensors nested in argument {where} are not supported; pass them "
                        "as separate arguments")
    try:
        hash(x)
    except TypeError:
        raise TypeError(f"tg.compile({name}): argument {where} of type {type(x).__name__} is neither a tensor "
                        "nor hashable, so it cannot be part of the call signature") from None
    return (type(x).__name__, x)


def _agree(result, expected):
    def flat(r):
        if isinstance(r, Tensor):
            return [r]
        out = []
        for x in r:
            out += flat(x)
        return out
    try:
        a, b = flat(result), flat(expected)
    except TypeError:
        return False
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        xd, yd = np.asarray(x._data), np.asarray(y._data)
        if xd.shape != yd.shape:
            return False
        tol = 1e-4 if xd.dtype == np.float32 or yd.dtype == np.float32 else 1e-9
        if not np.allclose(xd, yd, rtol=tol, atol=tol, equal_nan=True):
            return False
    return True


def compile(fn=None):
    """Record fn's tape on the first call per input signature, then replay it in numba (usable as @tg.compile)."""
    if fn is None:
        return compile
    if isinstance(fn, CompiledFunction):
        return fn
    return CompiledFunction(fn)


# -- vmap -------------------------------------------------------------------------------------------------------

def vmap(fn, in_dims=0):
    """vmap(fn, in_dims=0)(*args): fn applied to each row of the batched tensor arguments, results stacked.

    in_dims is 0 (every tensor argument is batched along dim 0) or a tuple with 0 or None per argument (None:
    passed whole to every call). Over a tg.compile'd function the rows are replayed in parallel in numba; over
    anything else it is a loop.
    """
    def batched(*args):
        dims = in_dims if isinstance(in_dims, (tuple, list)) else tuple(in_dims if isinstance(x, Tensor) else None
                                                                          for x in args)
        if len(dims) != len(args):
            raise ValueError(f"vmap: in_dims has {len(dims)} entries for {len(args)} arguments")
        if any(d not in (0, None) for d in dims):
            raise NotImplementedError("vmap: in_dims entries must be 0 or None")
        mapped = [d == 0 for d in dims]
        for x, m in zip(args, mapped):
            if m and not isinstance(x, Tensor):
                raise TypeError(f"vmap: an argument mapped over dim 0 must be a tensor, got {_describe(x)}")
            if m and x.ndim == 0:
                raise ValueError("vmap: a 0-d tensor argument has no dimension 0 to map over")
        sizes = {x.shape[0] for x, m in zip(args, mapped) if m}
        if len(sizes) != 1:
            raise ValueError(f"vmap: mapped arguments must share the size of dim 0, got sizes {sorted(sizes)}")
        rows = sizes.pop()
        if isinstance(fn, CompiledFunction) and rows:
            out = _vmap_compiled(fn, args, mapped, rows)
            if out is not None:
                return out
        return _stack_rows([fn(*_row(args, mapped, r)) for r in range(rows)])

    batched.__name__ = f"vmap({getattr(fn, '__name__', 'fn')})"
    return batched


def _row(args, mapped, r):
    return [_wrap(x._data[r]) if m else x for x, m in zip(args, mapped)]


def _vmap_compiled(cf, args, mapped, rows):
    """Replay cf's trace for every row at once; rows whose guards fail go through cf one by one."""
    first = _row(args, mapped, 0)
    cf(*first)                           # make sure a trace exists for this signature (records if needed)
    if cf.eager_reason is not None:
        return None
    key, positions = cf._signature(first, {})
    trace = cf.traces[key][0]
    if trace.writes_ints:
        return None    # the rows would share the int table the replay rewrites: loop instead
    if not trace.verified and rows > 1:
        cf(*_row(args, mapped, 1))   # the first replay on new values is checked against eager
        if cf.eager_reason is not None:
            return None
        trace = cf.traces[key][0]
    template = trace.vals.copy()
    first = _row(args, mapped, 0)      # unmapped arguments and outside tensors are the same for every row
    if not trace.load_inputs(template, [first[p] for p in positions]):
        return None
    # each mapped argument's rows are loaded by the kernel, row by row, from one flat float64 buffer
    load, columns = [], []
    start = 0
    for (o, stop, _), p in zip(trace.input_spans, positions):
        if o >= 0 and mapped[p]:
            columns.append(np.asarray(args[p]._data, np.float64).reshape(-1))
            load.append((o, start, stop - o))
            start += rows * (stop - o)
    inputs = columns[0] if len(columns) == 1 else np.concatenate(columns) if columns else np.zeros(0)
    # the outputs to copy out of each row, and where each lands: a (rows, *shape) block of one flat buffer
    with_grad = cf.vag is not None
    wanted = [(0, g, shape, dtype) for g, shape, dtype in trace.outputs[:1 if with_grad else None]]
    if with_grad:
        pos, many = cf.vag.positions(len(args))
        index = {p: k for k, p in enumerate(positions)}
        wanted += [(1, trace.input_gids[index[p]], *trace.input_meta[index[p]]) for p in pos]
    store, blocks = [], []
    start = 0
    for source, g, shape, dtype in wanted:
        size = math.prod(shape)
        store.append((source if g >= 0 else 2, int(trace.off[g - trace.base]) if g >= 0 else 0, start, size))
        blocks.append((start, shape, dtype))
        start += rows * size
    results = np.empty(start)
    status = np.empty(rows, np.int64)
    chunks = min(rows, 4 * numba.get_num_threads())
    if with_grad:
        trace.ensure_gradient_program()
    with _PARALLEL_LOCK:
        replay_rows(trace.prog, trace.back, trace.zero, *trace.records, trace.ints, template, inputs,
                    np.array(load, np.int64).reshape(-1, 3), results, np.array(store, np.int64).reshape(-1, 4),
                    trace.n, trace.base, trace.outputs[0][0] - trace.base, _TABLES, units.TABLE, with_grad,
                    runs_from_rows(trace.prog, trace.back), chunks, status,
                    np.nan if _engine.POISON_ADJOINTS else 0.0)
    cf.stats.replays += rows
    # every row's results at once, as a row-by-row loop then np.stack would give them
    stacked = [results[s:s + rows * math.prod(shape)].reshape(rows, *shape).astype(dtype, copy=False)
               for s, shape, dtype in blocks]
    if with_grad:
        grads = stacked[1:]
        stacked = [stacked[0], tuple(grads) if many else grads[0]]
        out = stacked[1] if cf.grad_only else tuple(stacked)
    else:
        out = trace.pack(stacked)
    for r in np.flatnonzero(status != REPLAYED):     # rows whose guards failed: called one by one
        cf.stats.guard_failures += 1
        _set_row(out, int(r), cf(*_row(args, mapped, int(r))))
    return _wrap_rows(out)


def _set_row(out, r, result):
    if isinstance(out, np.ndarray):
        out[r] = np.asarray(result._data)
    else:
        for o, res in zip(out, result):
            _set_row(o, r, res)


def _wrap_rows(out):
    if isinstance(out, np.ndarray):
        return _wrap(out)
    return type(out)(_wrap_rows(o) for o in out)


def _stack_rows(results):
    first = results[0]
    if isinstance(first, Tensor):
        return _wrap(np.stack([np.asarray(r._data) for r in results]))
    if isinstance(first, (tuple, list)):
        return type(first)(_stack_rows([r[k] for r in results]) for k in range(len(first)))
    raise TypeError(f"vmap: the function must return tensors (or tuples of them), got {type(first).__name__}")


# -- save / load ------------------------------------------------------------------------------------------------

_ARRAYS = ("ops", "a", "b", "aux", "off", "const", "ints", "vals")


def _digest(arrays, meta_json):
    h = hashlib.sha256()
    for name in _ARRAYS:
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    h.update(meta_json.encode())
    return h.hexdigest()


def _opcode_table_digest():
    return hashlib.sha256(json.dumps(sorted((int(k), v) for k, v in op.NAMES.items())).encode()).hexdigest()


def save_trace(path, trace, key, cf):
    if len(trace.positions) != trace.nargs:
        raise RuntimeError(f"tg.compile({cf.__name__}).save: only functions whose arguments are all floating-point "
                           "tensors can be saved (other arguments are baked into the trace)")
    if trace.sources:
        raise RuntimeError(f"tg.compile({cf.__name__}).save: the trace reads tensors from outside the function "
                           "(captured parameters or constants); pass them as arguments to make it standalone")
    meta = {
        "format": _FORMAT,
        "opcodes": _opcode_table_digest(),
        "name": cf.__name__,
        "base": int(trace.base), "n": int(trace.n),
        "input_gids": [int(g) for g in trace.input_gids],
        "input_meta": [[list(s), np.dtype(d).str] for s, d in trace.input_meta],
        "outputs": [[int(g), list(s), np.dtype(d).str] for g, s, d in trace.outputs],
        "structure": trace.structure,
        "mode": "grad" if cf.grad_only else ("value_and_grad" if cf.vag is not None else "forward"),
        "argnums": [trace.positions.index(p) for p in trace.argnums[0]] if cf.vag is not None else [],
        "many": bool(trace.argnums[1]) if cf.vag is not None else False,
    }
    arrays = {name: getattr(trace, name) for name in _ARRAYS}
    meta_json = json.dumps(meta, sort_keys=True)
    np.savez(path, meta=np.array(meta_json), digest=np.array(_digest(arrays, meta_json)), **arrays)


def load_compiled(path):
    """A callable replaying a trace saved by CompiledFunction.save, without the original Python function."""
    try:
        with np.load(path, allow_pickle=False) as f:
            meta_json = str(f["meta"][()])
            digest = str(f["digest"][()])
            arrays = {name: np.ascontiguousarray(f[name]) for name in _ARRAYS}
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise ValueError(f"tg.load_compiled({path!r}): not a readable tapegrad trace file ({err})") from None
    if _digest(arrays, meta_json) != digest:
        raise ValueError(f"tg.load_compiled({path!r}): the file is corrupted (its checksum does not match)")
    meta = json.loads(meta_json)
    if meta.get("format") != _FORMAT:
        raise ValueError(f"tg.load_compiled({path!r}): unknown trace format {meta.get('format')!r}")
    if meta["opcodes"] != _opcode_table_digest():
        raise ValueError(f"tg.load_compiled({path!r}): the trace was saved by a tapegrad with a different opcode "
                         "table; record it again with this version")
    return LoadedTrace(meta, arrays)


class LoadedTrace:
    """A trace loaded from disk: call it with tensors of the recorded shapes and dtypes."""

    def __init__(self, meta, arrays):
        n = meta["n"]
        dtypes = {"ops": np.int32, "a": np.int64, "b": np.int64, "aux": np.int64, "off": np.int64,
                  "const": np.float64, "ints": np.int64, "vals": np.float64}
        for name, dt in dtypes.items():
            if arrays[name].dtype != dt or arrays[name].ndim != 1:
                raise ValueError(f"tg.load_compiled: array {name!r} has the wrong dtype or rank")
        self.name = meta["name"]
        self.mode = meta["mode"]
        self.argnums = meta["argnums"]
        self.many = meta["many"]
        ops, a, b, aux, off, const, ints, vals = (arrays[k] for k in _ARRAYS)
        self.trace = Trace((ops, a, b, aux, off, const, np.zeros(n, np.uint8), ints, vals), meta["base"], n,
                           meta["input_gids"], [(tuple(s), np.dtype(d)) for s, d in meta["input_meta"]],
                           [(g, tuple(s), np.dtype(d)) for g, s, d in meta["outputs"]], meta["structure"], [], [],
                           [True] * len(meta["input_gids"]))

    def graph(self, program=False, show_attrs=False):
        """A picture of the loaded trace, as CompiledFunction.graph draws one."""
        from .viz import trace_dot
        return trace_dot(self.trace, self.name, program, show_attrs)

    def __call__(self, *tensors):
        trace = self.trace
        if len(tensors) != len(trace.input_meta):
            raise TypeError(f"{self.name}: expected {len(trace.input_meta)} tensor arguments, got {len(tensors)}")
        for k, (t, (shape, dtype)) in enumerate(zip(tensors, trace.input_meta)):
            if not isinstance(t, Tensor) or t._data.shape != shape or t._data.dtype != dtype:
                raise TypeError(f"{self.name}: argument {k} must be a {_dtypes.from_numpy_dtype(dtype)} tensor of "
                                f"shape {shape}, got {_describe(t)}")
        if self.mode == "forward":
            state = trace.replay(list(tensors))
            if state is None:
                raise RuntimeError(f"{self.name}: a guard failed: these inputs take a different path than the "
                                   "recorded one, and the loaded trace cannot record a new one")
            return trace.pack([_wrap(take(state[0])) for take in trace.output_takers])
        out = trace.value_and_grad(list(tensors))
        if out is None:
            raise RuntimeError(f"{self.name}: a guard failed: these inputs take a different path than the "
                               "recorded one, and the loaded trace cannot record a new one")
        vals, adj, _ = out
        g, s, d = trace.outputs[0]
        value = _wrap(trace.value_of(vals, g, s, d))
        grads = [_wrap(trace.gradient_of(adj, trace.input_gids[k], *trace.input_meta[k])) for k in self.argnums]
        grads = tuple(grads) if self.many else grads[0]
        return grads if self.mode == "grad" else (value, grads)
