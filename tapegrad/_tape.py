"""The flat Wengert tape: record buffers, growth, release, per-thread tapes and grad mode.

A record is one row across structure-of-arrays buffers:

    op     int32    opcode (see _kernels/opcodes.py)
    a, b   int64    gids of the first two inputs (-1: none); further inputs sit in the params
    aux    int64    offset into `ints` of [ndim, *shape, *params]; 0 is the shared entry of a 0-d result
    off    int64    offset into `vals` of the output value (the adjoint uses the same offset in its own buffer)
    const  float64  a scalar parameter (the c of x + c, x ** c, ...)
    flags  uint8    FREED (a backward consumed it) and STALE (its value was overwritten in place)

Every record saves its output value in `vals` as float64, so any backward kernel can read any input or output.
Records of 0-d results, the bulk of scalar code, are staged in two Python lists and written to the buffers in
one vectorised step by `flush()` before anything reads the buffers: a numpy item write costs ~70 ns, a list
append ~25 ns, and a 0-d record would need six of them.
Record ids (gids) grow monotonically for the life of a thread; physical index = gid - base. Records are grouped
into segments, one per stretch between backward calls; tensors produced by operations hold their segment, so a
segment that no tensor refers to, or whose records a backward consumed, can be dropped: the tape resets when
all of them can, and otherwise compacts past a threshold, moving survivors to fresh gids (Segment.moves).
"""
import itertools
import sys
import threading

import numpy as np

from ._kernels import compact as _compact
from ._kernels import opcodes as op
from ._kernels import sweep as _sweep

_GID_SPAN = 1 << 40          # each thread's tape owns a disjoint range of gids
# anomaly mode (autograd/anomaly_mode.py), global as in PyTorch: while on, every record keeps the Python stack
# of the call that made it, and backward checks each gradient for nan; while off it costs one test per record
anomaly_mode = False
_tape_numbers = itertools.count()


class Segment:
    """The records between two backward calls; holds the leaves recorded in it."""

    __slots__ = ("tape", "start", "leaves", "retained", "dropped", "moves", "__weakref__")

    def __init__(self, tape, start):
        self.tape = tape
        self.start = start
        self.leaves = []        # (gid, leaf tensor), in recording order
        self.retained = []      # (gid, tensor) for tensors that called retain_grad()
        self.dropped = None     # after release: (ops, a, b) of this segment, for grad_fn views
        self.moves = []         # (old first gid, old end gid, new first gid) for each compaction it survived

    def resolve(self, gid):
        """The current gid of a record of this segment known by an older gid (tensors update lazily)."""
        for old, end, new in self.moves:
            if old <= gid < end:
                gid += new - old
        return gid


class Tape:
    """One thread's tape."""

    _MIN_COMPACT_RECORDS = 1 << 14
    _MIN_COMPACT_VALUES = 1 << 20
    _MAX_PINNED = 3

    def __init__(self):
        number = next(_tape_numbers)
        self.base = number * _GID_SPAN
        self.limit = self.base + _GID_SPAN
        self.grad_enabled = True
        self._alloc(1024, 4096, 1024)
        self.n = 0
        self.nv = 0
        self.ni = 1              # ints[0] = 0: the shape entry of every 0-d record
        self.segments = []
        self.seg = None
        self.new_segment()
        # compaction thresholds (records, values): reset to 4x what survives each compaction, so copying the
        # survivors costs at most a third of the recording work
        self.compact_at = self._MIN_COMPACT_RECORDS
        self.compact_vals_at = self._MIN_COMPACT_VALUES
        self.garbage_prefix = 0       # leading segments already known to be garbage
        self.recheck = None      # (compact_at, compact_vals_at) while a reset is to be tried again (collect)
        self.staged_ints = []    # (index, opcode, a, b, off) of staged 0-d records, flattened
        self.staged_floats = []  # (const, value) of staged 0-d records, flattened
        self.pyfuncs = {}        # gid -> Python backward of a tapegrad.autograd.Function record
        self.stale_info = {}     # gid -> (base tensor, version it had) for records overwritten in place
        self.forward_calls = {}  # gid -> the Python stack that recorded it, kept while anomaly mode is on
        self.adj = np.zeros(0)   # adjoint and reached-flag buffers reused by every backward (autograd.engine)
        self.adj_spare = None    # a second adjoint buffer, for when gradients handed over still show the first
        self.hand_over = True    # whether large gradients are handed over as views of `adj` (autograd.engine)
        self.adj_pinned = 0      # adjoint buffers left to kept gradients
        self.need = np.zeros(0, np.uint8)
        self.sweeping = False
        self.tracing = None      # the tg.compile recorder while this tape records a trace (compile.Recorder)
        self.into_vals = True    # whether large results are computed into `vals` (push_into; see _vals_for_reuse)
        self.pinned = 0          # value buffers left to views that outlived their records

    def _alloc(self, cap, vcap, icap):
        self.ops = np.zeros(cap, np.int32)
        self.a = np.zeros(cap, np.int64)
        self.b = np.zeros(cap, np.int64)
        self.aux = np.zeros(cap, np.int64)
        self.off = np.zeros(cap, np.int64)
        self.const = np.zeros(cap, np.float64)
        self.flags = np.zeros(cap, np.uint8)
        self.vals = np.zeros(vcap, np.float64)
        self.ints = np.zeros(icap, np.int64)

    def new_segment(self):
        self.seg = Segment(self, self.base + self.n)
        self.segments.append(self.seg)

    # -- appending ---------------------------------------------------------------------------------------

    def _grow(self, name, need):
        old = getattr(self, name)
        cap = len(old)
        while cap < need:
            cap *= 2
        new = np.zeros(cap, old.dtype)
        new[:len(old)] = old
        setattr(self, name, new)

    def _grow_records(self, need):
        for name in ("ops", "a", "b", "aux", "off", "const", "flags"):
            self._grow(name, need)

    def flush(self):
        """Write the staged 0-d records into the buffers."""
        if not self.staged_ints:
            return
        ints = np.array(self.staged_ints, np.int64).reshape(-1, 5)
        floats = np.array(self.staged_floats, np.float64).reshape(-1, 2)
        self.staged_ints = []
        self.staged_floats = []
        if self.n > len(self.ops):
            self._grow_records(self.n)
        if self.nv > len(self.vals):
            self._grow("vals", self.nv)
        p = ints[:, 0]
        self.ops[p] = ints[:, 1]
        self.a[p] = ints[:, 2]
        self.b[p] = ints[:, 3]
        self.off[p] = ints[:, 4]
        self.const[p] = floats[:, 0]
        self.vals[ints[:, 4]] = floats[:, 1]

    def push(self, opcode, ia, ib, value, aux=0, const=0.0):
        """Append one record whose output value is `value` (an ndarray or numpy scalar); return its gid."""
        p = self.n
        if value.ndim == 0 and not aux:
            vo = self.nv
            self.staged_ints += (p, opcode, ia, ib, vo)
            self.staged_floats += (const, value)
            self.n = p + 1
            self.nv = vo + 1
            if anomaly_mode:
                self.note_forward_call(self.base + p)
            return self.base + p
        if p >= len(self.ops):
            self._grow_records(p + 1)
        self.ops[p] = opcode
        self.a[p] = ia
        self.b[p] = ib
        if aux:
            self.aux[p] = aux
        if const:
            self.const[p] = const
        vo = self.nv
        size = value.size
        if vo + size > len(self.vals):
            self._grow("vals", vo + size)
        if value.ndim == 0:
            self.vals[vo] = value
        elif size:
            self.vals[vo:vo + size] = value.reshape(-1)
        self.off[p] = vo
        self.nv = vo + size
        self.n = p + 1
        if anomaly_mode:
            self.note_forward_call(self.base + p)
        return self.base + p

    def push_into(self, opcode, ia, ib, shape, size, aux):
        """Append a record of a non-0-d output and return (gid, view of its place in `vals`): the operation
        computes the output straight into it and hands the view out as the tensor's data, which saves push's
        copy. The tape never writes over a value a view may still show: a reset or compaction while views
        are alive moves on to a fresh buffer (see _vals_for_reuse) and leaves the old one to them."""
        p = self.n
        if p >= len(self.ops):
            self._grow_records(p + 1)
        vo = self.nv
        if vo + size > len(self.vals):
            self._grow("vals", vo + size)
        self.ops[p] = opcode
        self.a[p] = ia
        self.b[p] = ib
        self.aux[p] = aux
        self.off[p] = vo
        self.nv = vo + size
        self.n = p + 1
        if anomaly_mode:
            self.note_forward_call(self.base + p)
        return self.base + p, self.vals[vo:vo + size].reshape(shape)

    def note_forward_call(self, gid):
        """Keep the stack of the Python call recording `gid`, for anomaly mode's report of a failing backward."""
        from .autograd.anomaly_mode import forward_call_stack
        self.forward_calls[gid] = forward_call_stack()

    def _vals_for_reuse(self):
        """`vals` when nothing but the tape refers to it, else a fresh buffer of the same size: tensors computed
        by push_into (and views of them) show parts of it, and they may outlive their records.

        A kept view pins the whole buffer it shows, not just its own values. A program that keeps results past
        each step (appending a detached output to a list, say) would pin a buffer per step, so after
        _MAX_PINNED such buffers this tape stops computing results into its buffer and copies them instead."""
        # getrefcount sees self.vals and its own argument; every view of the buffer holds one more
        if sys.getrefcount(self.vals) > 2:
            self.pinned += 1
            if self.pinned >= self._MAX_PINNED:
                self.into_vals = False
            return np.empty_like(self.vals)
        return self.vals

    def put_ints(self, ints):
        """Store a shape-and-params entry in the int side table; return its offset (for `aux`)."""
        i = self.ni
        m = len(ints)
        if i + m > len(self.ints):
            self._grow("ints", i + m)
        self.ints[i:i + m] = ints
        self.ni = i + m
        return i

    def put_shape(self, shape, params=()):
        if not shape and not params:
            return 0
        return self.put_ints((len(shape), *shape, *params))

    def owns(self, gid):
        return self.base <= gid < self.base + self.n

    # -- release -------------------------------------------------------------------------------------------

    def _held(self, k):
        """Whether a tensor or grad_fn still refers to segment k (beyond the tape's own references)."""
        # getrefcount sees: self.segments, its own argument, and self.seg for the current segment
        return sys.getrefcount(self.segments[k]) > (3 if self.segments[k] is self.seg else 2)

    def _stop(self, k):
        return self.segments[k + 1].start if k + 1 < len(self.segments) else self.base + self.n

    def _garbage(self, k):
        """Segment k can go: no tensor refers to it, or a backward consumed everything in it that another
        backward could not go through again. Once garbage, a segment stays garbage."""
        if not self._held(k):
            return True
        return _sweep.count_reusable(self.ops, self.flags, op.SAVES, self.segments[k].start - self.base,
                                     self._stop(k) - self.base) == 0

    def _scan_garbage(self):
        """How many leading segments are garbage (advancing garbage_prefix: garbage stays garbage)."""
        k = self.garbage_prefix
        while k < len(self.segments) and self._garbage(k):
            k += 1
        self.garbage_prefix = k
        return k

    def collect(self):
        """After a backward: release what nothing can reach any more, then start a new segment."""
        self.flush()
        if self.recheck is not None:     # a second backward before any operation: it looks again itself
            self.compact_at, self.compact_vals_at = self.recheck
            self.recheck = None
        k = self._scan_garbage()
        if k == len(self.segments):
            self._reset()
        elif self.n >= self.compact_at or self.nv >= self.compact_vals_at:
            self._compact()
        elif k == len(self.segments) - 1:
            # Only the segment just swept is held, usually by the root of this backward, which the caller's
            # expression still holds (`f(x).backward()`). It has often gone by the next operation, and a reset
            # then costs nothing, where a compaction later would copy the next step's values: look again there
            # (a zero threshold makes the next operation call compact_while_recording).
            self.recheck = (self.compact_at, self.compact_vals_at)
            self.compact_at = 0
        if self.seg.start != self.base + self.n:
            self.new_segment()

    def compact_while_recording(self):
        """Called as an operation starts, before it takes any gid, once the tape is big (or once after a backward
        that could not reset the tape, see collect). Without backward calls nothing releases records (an
        evaluation loop, say), so close the current segment and drop the segments no tensor refers to any more."""
        self.flush()
        if self.recheck is not None:
            self.compact_at, self.compact_vals_at = self.recheck
            self.recheck = None
            if self.seg.start == self.base + self.n and self._scan_garbage() == len(self.segments):
                self._reset()    # every segment is garbage (the current one is empty)
                return
            if self.n < self.compact_at and self.nv < self.compact_vals_at:
                return
        if self.seg.start != self.base + self.n:
            self.new_segment()
        self._compact()

    def _forget(self, indices):
        """Release segments, keeping what a grad_fn still shown to the user needs to print itself."""
        for k in indices:
            seg = self.segments[k]
            if self._held(k):
                lo, hi = seg.start - self.base, self._stop(k) - self.base
                seg.dropped = (self.ops[lo:hi].copy(), self.a[lo:hi].copy(), self.b[lo:hi].copy())
            seg.leaves = []
            seg.retained = []

    def _reset(self):
        self.flush()
        n = self.n
        self._forget(range(len(self.segments)))
        self.aux[:n] = 0
        self.const[:n] = 0
        self.flags[:n] = 0
        self.base += n
        self.vals = self._vals_for_reuse()
        self.n = 0
        self.nv = 0
        self.ni = 1
        self.pyfuncs.clear()
        self.stale_info.clear()
        self.forward_calls.clear()
        self.segments = []
        self.garbage_prefix = 0
        self.new_segment()

    def _compact(self):
        """Keep the segments a tensor still refers to (and what they read from); drop the rest, giving the
        kept records fresh gids above every old one. Tensors of kept segments resolve their gid lazily."""
        segs = self.segments
        nseg = len(segs)
        seg_start = np.array([s.start - self.base for s in segs], np.int64)
        seg_stop = np.array([self._stop(k) - self.base for k in range(nseg)], np.int64)
        keep = np.array([k >= self.garbage_prefix and not self._garbage(k) for k in range(nseg)], np.bool_)
        keep[-1] = True   # the current segment stays
        _compact.close_over_references(keep, seg_start, seg_stop, self.ops, self.a, self.b, self.aux, self.ints,
                                       op.HAS_EXTRA, self.base)
        kept = int(np.sum((seg_stop - seg_start)[keep]))
        val_start = np.where(seg_start < self.n, self.off[np.minimum(seg_start, max(self.n - 1, 0))], self.nv)
        val_stop = np.append(val_start[1:], self.nv)
        kept_vals = int(np.sum((val_stop - val_start)[keep]))
        self.compact_at = max(self._MIN_COMPACT_RECORDS, 4 * kept)
        self.compact_vals_at = max(self._MIN_COMPACT_VALUES, 4 * kept_vals)
        if kept * 2 > self.n and kept_vals * 2 > self.nv:
            return   # mostly live: not worth copying yet
        new_base = self.base + self.n
        # record columns must read as zero beyond the copy (push leaves aux and const at their default);
        # values and ints are always written before they are read
        out = {name: np.zeros_like(getattr(self, name)) for name in ("ops", "a", "b", "aux", "off", "const", "flags")}
        out["ints"] = np.empty_like(self.ints)
        # values move down in place: a fresh buffer would cost a page fault per 4 KB of kept values, and a kept
        # segment already at the front does not move at all (unless tensors still show the buffer)
        out["vals"] = self._vals_for_reuse()
        m, mv, mi, new_start = _compact.compact(
            keep, seg_start, seg_stop, self.ops, self.a, self.b, self.aux, self.off, self.const, self.flags,
            self.ints, self.vals, self.n, self.nv, self.ni, self.base, new_base, op.HAS_EXTRA,
            out["ops"], out["a"], out["b"], out["aux"], out["off"], out["const"], out["flags"], out["ints"],
            out["vals"], out["vals"] is self.vals)
        moves = {k: (self.base + int(seg_start[k]), self.base + int(seg_stop[k]), new_base + int(new_start[k]))
                 for k in range(nseg) if keep[k]}

        def remap(g):
            for lo, hi, new in moves.values():
                if lo <= g < hi:
                    return g + new - lo
            return None

        self._forget([k for k in range(nseg) if not keep[k]])
        for k, (lo, hi, new) in moves.items():
            seg = segs[k]
            seg.moves.append((lo, hi, new))
            seg.start = new
            seg.leaves = [(g + new - lo, t) for g, t in seg.leaves]
            seg.retained = [(g + new - lo, t) for g, t in seg.retained]
        pyfuncs = {}
        for g, node in self.pyfuncs.items():
            g2 = remap(g)
            if g2 is not None:
                node.input_gids = [remap(x) if x >= 0 else x for x in node.input_gids]
                node.output_gids = [None if x is None else remap(x) for x in node.output_gids]
                pyfuncs[g2] = node
        self.pyfuncs = pyfuncs
        self.stale_info = {remap(g): v for g, v in self.stale_info.items() if remap(g) is not None}
        if self.forward_calls:
            self.forward_calls = {remap(g): v for g, v in self.forward_calls.items() if remap(g) is not None}
        for name, arr in out.items():
            setattr(self, name, arr)
        self.base = new_base
        self.n, self.nv, self.ni = int(m), int(mv), int(mi)
        self.segments = [segs[k] for k in range(nseg) if keep[k]]
        self.garbage_prefix = 0

    def nbytes(self):
        """Bytes held by the record buffers (capacity) and bytes in use by the records recorded so far."""
        per_record = sum(getattr(self, name).itemsize for name in ("ops", "a", "b", "aux", "off", "const", "flags"))
        held = per_record * len(self.ops) + self.vals.nbytes + self.ints.nbytes
        used = per_record * self.n + 8 * self.nv + 8 * self.ni
        return held, used


class _ThreadState(threading.local):
    def __init__(self):
        self.tape = Tape()


_state = _ThreadState()


def current_tape():
    """This thread's tape."""
    return _state.tape


def is_grad_enabled():
    return _state.tape.grad_enabled


def _set_grad_enabled(mode):
    _state.tape.grad_enabled = bool(mode)
