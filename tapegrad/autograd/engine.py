"""backward() and grad(): seed adjoints, run the compiled reverse sweep, hand gradients to tensors."""
import re
import sys

import numpy as np

from .._kernels import opcodes as op
from .._kernels import units
from .._kernels.sweep import reverse_sweep
from .. import _tape
from .._tape import current_tape
from . import anomaly_mode
from ..tensor import Tensor, _wrap, current_gid

SECOND_TIME = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or "
    "if you need to access saved tensors after calling backward.")

_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor"}


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _check_roots(tensors, grad_tensors):
    """Validate outputs and their gradients the way PyTorch does; return [(tensor, float64 seed array)]."""
    if grad_tensors is None:
        grad_tensors = (None,) * len(tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"got {len(grad_tensors)} tensors and {len(tensors)} gradients")
    roots = []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not isinstance(t, Tensor):
            raise TypeError(f"expected a Tensor as output {i}, got {type(t).__name__}")
        if not t._rg:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        is_complex = t._data.dtype.kind == "c"
        if g is None:
            if t._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if is_complex:
                raise RuntimeError(f"grad can be implicitly created only for real scalar outputs but got {t.dtype}")
            seed = np.ones(t._data.shape)
        else:
            if not isinstance(g, Tensor):
                g = _wrap(np.asarray(g))
            if g._data.shape != t._data.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                                   f"output[{i}] has a shape of {t.shape}.")
            seed = np.asarray(g._data, dtype=np.complex128 if is_complex else np.float64)
        if is_complex and t._meta and "pair" in t._meta:
            # a complex result: the sweep starts from its real pair, seeded with the gradient's (re, im) pairs
            t, seed = t._meta["pair"], np.ascontiguousarray(seed).view(np.float64).reshape(*seed.shape, 2)
        roots.append((t, seed))
    return roots


def _stale_message(tape, consumer, culprit):
    """PyTorch's version-counter error. Like PyTorch it names the node that saved a value it produced itself,
    and otherwise the tensor's current producer (the in-place operation)."""
    base, expected = tape.stale_info.get(tape.base + culprit, (None, 0))
    current = base._version if base is not None else expected + 1
    ndim = tape.ints[tape.aux[culprit]]
    shape = [int(d) for d in tape.ints[tape.aux[culprit] + 1: tape.aux[culprit] + 1 + ndim]]
    dtype = base.dtype.name if base is not None else "float32"
    kind = _LEGACY_NAMES.get(dtype, dtype)
    if consumer == culprit:
        producer = op.NAMES.get(int(tape.ops[consumer]))
    elif base is not None and base._seg is not None:
        producer = base.grad_fn.name()
    else:
        producer = None
    what = f"output 0 of {re.sub(r'Backward[0-9]*$', '', producer)}" if producer else "a leaf Variable"
    saver = op.NAMES.get(int(tape.ops[consumer]))
    return ("one of the variables needed for gradient computation has been modified by an inplace operation: "
            f"[tapegrad.{kind} [{', '.join(map(str, shape))}]], which is {what}, is at version {current}; "
            f"expected version {expected} instead. Hint: {saver} saved this value before the in-place change; "
            "clone() the tensor before changing it, or change a copy.")


def _kernel_failed_message(tape, i):
    name = anomaly_mode.grad_fn_name(tape, tape.base + i)     # custom ops' names too
    return (f"Function '{name}' failed in its backward kernel (for example a singular matrix in a linear-algebra "
            "backward); its inputs' gradients are not defined")


def run_sweep(tape, roots, retain):
    """Seed the adjoints of the recorded roots and sweep.

    Returns (adjoint buffer, reached-record flags, lowest reached physical index).
    """
    tape.flush()
    seeds = []
    for t, seed in roots:
        g = current_gid(t) if t._seg is not None else t._id
        if not tape.owns(g):
            if g < tape.base:
                raise RuntimeError(SECOND_TIME)
            raise RuntimeError("this tensor's graph was built on another thread's tape; tapegrad tapes are per thread")
        seeds.append((g - tape.base, seed))
    adj, need = _sweep_buffers(tape)
    start = -1
    for p, seed in seeds:
        o = tape.off[p]
        if need[p]:    # the same output twice
            adj[o:o + seed.size] += seed.reshape(-1)
        else:          # the adjoint buffer holds an earlier sweep's values (see reverse_sweep)
            adj[o:o + seed.size] = seed.reshape(-1)
        need[p] = 1
        start = max(start, p)
    lowest = start
    # anomaly mode (autograd/anomaly_mode.py) drives the same sweep one record at a time, checking for nan
    sweep = reverse_sweep if not _tape.anomaly_mode else anomaly_mode.stepwise_sweep(tape)
    try:
        while start >= 0:
            status, i, culprit, lowest = sweep(
                start, lowest, tape.ops, tape.a, tape.b, tape.aux, tape.off, tape.const, tape.flags, tape.ints,
                tape.vals, adj, need, tape.base, op.SWEEP_TABLES, retain, units.TABLE)
            if status == op.OK:
                break
            if status == op.ERR_FREED:
                raise RuntimeError(SECOND_TIME)
            if status == op.ERR_STALE:
                raise RuntimeError(_stale_message(tape, i, culprit))
            if status == op.ERR_UNIT:   # the first record of its family this process meets: load, then resume there
                units.load("backward", tape.ops[i])
                start = i
                continue
            if status == op.ERR_KERNEL:
                raise RuntimeError(_kernel_failed_message(tape, i))
            # a Python-defined backward: run it, then resume below it
            node = tape.pyfuncs[tape.base + i]
            lowest = min(lowest, node.run_backward(tape, adj, need, retain))
            if sweep is not reverse_sweep and anomaly_mode.is_anomaly_check_nan_enabled():
                anomaly_mode.check_gradients(tape, i, adj, need, node.input_gids)
            if not retain:
                tape.flags[i] |= op.FLAG_FREED
            start = i - 1
    except BaseException:
        release_buffers(tape, adj, 0)
        raise
    return adj, need, max(lowest, 0)


# Tests set this: every sweep starts on adjoints filled with nan, so a read of an adjoint no consumer wrote in
# that sweep shows up as a nan gradient instead of passing unnoticed on a buffer that happens to hold zeros.
POISON_ADJOINTS = False

# float64 gradients of at least this many values (in all, for tg.compile's) are handed over as views of the buffer
# they were computed in, not copied (_sweep_buffers, compile's Trace.handover_entry); below it a copy costs less
HAND_OVER_MIN = 1 << 15


def _sweep_buffers(tape):
    """An adjoint buffer and a zeroed reached-flag buffer covering the tape. They persist on the tape;
    release_buffers clears only the flags a sweep touched, and adjoints are defined only where the flags are
    set (see reverse_sweep), so a backward costs what its graph costs, not what the tape holds. Large
    gradients are handed over as views of the adjoint buffer (_gradient_of): while any is alive the sweep runs
    in a second buffer, and in a fresh one when both are held."""
    fill = np.nan if POISON_ADJOINTS else 0.0
    if tape.sweeping:   # a backward inside a Python Function's backward: use private buffers
        return np.full(max(tape.nv, 1), fill), np.zeros(max(tape.n, 1), np.uint8)
    if len(tape.adj) < tape.nv or len(tape.need) < tape.n:
        tape.adj = np.full(max(len(tape.vals), tape.nv, 1), fill)
        tape.need = np.zeros(max(len(tape.ops), tape.n, 1), np.uint8)
        tape.adj_spare = None
    elif sys.getrefcount(tape.adj) > 2:     # the attribute and the argument; every view holds one more
        if tape.adj_spare is None or sys.getrefcount(tape.adj_spare) > 2 or len(tape.adj_spare) < len(tape.adj):
            # both held: a gradient kept pins its whole buffer, so a program that keeps one per step would pin
            # a buffer per step; after a few, gradients are copied out instead
            tape.adj_pinned += 1
            tape.hand_over = tape.adj_pinned < tape._MAX_PINNED
            tape.adj_spare = np.full(len(tape.adj), fill)
        tape.adj, tape.adj_spare = tape.adj_spare, tape.adj
    if POISON_ADJOINTS:
        tape.adj[:tape.nv] = np.nan
    tape.sweeping = True
    return tape.adj, tape.need


def release_buffers(tape, adj, lowest):
    """Clear the reached flags of a sweep that reached down to physical index `lowest`."""
    if adj is not tape.adj:
        return
    tape.need[max(lowest, 0):tape.n] = 0
    tape.sweeping = False


def _reached_segments(tape, lowest):
    """The segments a sweep that reached down to physical index `lowest` can have touched."""
    first = tape.base + lowest
    k = len(tape.segments) - 1
    while k > 0 and tape.segments[k].start > first:
        k -= 1
    return tape.segments[k:]


def _gradient_of(tape, adj, gid, like):
    """The gradient of `like` (recorded as gid) from the adjoint buffer: a copy in its dtype, or for a large
    float64 one the buffer's own values (handed over; see _sweep_buffers)."""
    p = gid - tape.base
    o = int(tape.off[p])
    data = like._data
    if data.dtype.kind == "c":      # a complex tensor's record holds (re, im) pairs (ops/complex.py)
        g = adj[o:o + 2 * data.size].view(np.complex128).reshape(data.shape)
    else:
        g = adj[o:o + data.size].reshape(data.shape)
        if data.dtype.char == "d" and data.size >= HAND_OVER_MIN and tape.hand_over:
            return g      # handed over: a copy of a million values costs ~1 ms (see _sweep_buffers)
    return g.astype(data.dtype) if data.ndim else data.dtype.type(g[()])


def _accumulate(t, g):
    """Add g into t.grad; g is a fresh array the caller hands over (no copy is made)."""
    if t._grad is None:
        t._grad = _wrap(g)
    elif isinstance(t._grad._data, np.ndarray) and t._grad._data.ndim:
        if t._grad._data.base is not None:
            # a view, maybe of a record's value on the tape (Tape.push_into): records holding it go stale
            from ..ops.inplace import invalidate
            invalidate(t._grad)
        t._grad._data += g
    else:
        t._grad._data = t._grad._data + g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the sum of gradients of `tensors` and accumulate them into leaves' .grad."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported by tapegrad yet")
    tensors = _as_tuple(tensors)
    roots = _check_roots(tensors, _as_tuple(grad_tensors))
    retain = bool(retain_graph)
    only = None if inputs is None else {id(t) for t in _as_tuple(inputs)}
    tape = current_tape()
    recorded = []
    for t, seed in roots:
        if t._seg is not None or tape.seg.start <= t._id < tape.limit:
            recorded.append((t, seed))
        elif only is None or id(t) in only:
            # backward from a leaf that no operation used: its gradient is the seed itself
            _accumulate(t, seed.astype(t._data.dtype).reshape(t._data.shape) if t._data.ndim
                        else t._data.dtype.type(seed[()]))
    if not recorded:
        return
    adj, need, lowest = run_sweep(tape, recorded, retain)
    try:
        grads = []
        for seg in _reached_segments(tape, lowest):
            for gid, t in seg.leaves + seg.retained:
                if need[gid - tape.base] and (only is None or id(t) in only):
                    grads.append((t, _gradient_of(tape, adj, gid, t)))
    finally:
        release_buffers(tape, adj, lowest)
    for t, g in grads:
        _accumulate(t, g)
    if not retain:
        tape.collect()


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """Return the gradients of `outputs` with respect to `inputs` without touching any .grad."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order gradients) is not supported by tapegrad yet")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor) or not t._rg:
            raise RuntimeError(f"One of the differentiated Tensors does not require grad")
    roots = _check_roots(outputs, _as_tuple(grad_outputs))
    retain = bool(retain_graph)
    tape = current_tape()
    # an output that is itself an unrecorded leaf passes its seed straight to that input
    direct = {id(t): seed for t, seed in roots if t._seg is None and not tape.seg.start <= t._id < tape.limit}
    recorded = [(t, seed) for t, seed in roots if id(t) not in direct]
    adj, need, lowest = run_sweep(tape, recorded, retain) if recorded else (None, None, tape.n)
    try:
        result = _input_gradients(tape, inputs, direct, adj, need, lowest, allow_unused, materialize_grads)
    finally:
        if adj is not None:
            release_buffers(tape, adj, lowest)
    if not retain and recorded:
        tape.collect()
    return tuple(result)


def _input_gradients(tape, inputs, direct, adj, need, lowest, allow_unused, materialize_grads):
    result = []
    reached = _reached_segments(tape, lowest) if adj is not None else []
    for t in inputs:
        total = None
        if id(t) in direct:
            seed = direct[id(t)].reshape(t._data.shape)
            total = seed.astype(t._data.dtype) if t._data.ndim else t._data.dtype.type(seed[()])
        carrier = t._meta["pair"] if t._meta and "pair" in t._meta else t    # a complex result: its real pair
        gids = [current_gid(carrier)] if t._seg is not None else [g for seg in reached for g, leaf in seg.leaves
                                                                  if leaf is t]
        for gid in gids:
            if need is not None and tape.owns(gid) and need[gid - tape.base]:
                g = _gradient_of(tape, adj, gid, t)
                total = g if total is None else total + g
        if total is None:
            if not (allow_unused or materialize_grads):
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph. "
                                   "Set allow_unused=True if this is the desired behavior.")
            result.append(_wrap(np.zeros_like(t._data)) if materialize_grads else None)
        else:
            result.append(_wrap(total))
    return result
