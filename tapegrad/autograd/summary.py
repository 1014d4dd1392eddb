"""tape_summary(): what this thread's tape holds, and why it is still held."""
import collections
import gc
import sys
import threading

import numpy as np

from .._kernels import opcodes as op
from .._tape import current_tape
from .graph import Node

# what records without a grad_fn of their own are counted as
_SOURCE_NAMES = {op.LEAF: "leaf (AccumulateGrad)", op.CONST: "constant", op.FREED: "freed input"}
_RECORD_COLUMNS = ("ops", "a", "b", "aux", "off", "const", "flags")


class SegmentSummary:
    """One segment: its records, and the tensors and grad_fn objects that keep it alive."""

    def __init__(self, index, start, stop, garbage, tensors, nodes, leaves):
        self.index, self.start, self.stop = index, start, stop
        self.garbage = garbage      # whether the tape will drop it at its next reset or compaction
        self.tensors = tensors      # the tensors produced by its operations that are still alive
        self.nodes = nodes          # grad_fn objects still alive that show its records
        self.leaves = leaves        # leaves recorded in it (their gradients land there)

    def holders(self):
        """A few words on what keeps the segment alive."""
        if self.garbage:
            return "released at the next backward or compaction: nothing needs it"
        parts = []
        if self.tensors:
            shown = ", ".join(_describe(t) for t in self.tensors[:3])
            more = f", +{len(self.tensors) - 3} more" if len(self.tensors) > 3 else ""
            parts.append(f"{len(self.tensors)} tensor{'s' if len(self.tensors) != 1 else ''} ({shown}{more})")
        if self.nodes:
            parts.append(f"{len(self.nodes)} grad_fn object{'s' if len(self.nodes) != 1 else ''}")
        return "held by " + (" and ".join(parts) if parts else "the current recording")


class TapeSummary:
    """What one thread's tape holds: records by operation, bytes in its buffers, segments and what holds them.
    str() is the table tape_summary() prints."""

    def __init__(self, tape):
        tape.flush()
        n = tape.n
        self.thread = threading.current_thread().name
        self.records = n
        self.first_gid = tape.base
        self.operations = collections.Counter()
        codes, counts = np.unique(tape.ops[:n], return_counts=True)
        for code, count in zip(codes.tolist(), counts.tolist()):
            self.operations[_operation_name(code)] += count
        per_record = sum(getattr(tape, name).itemsize for name in _RECORD_COLUMNS)
        self.record_bytes = (per_record * n, per_record * len(tape.ops))
        self.value_bytes = (8 * tape.nv, tape.vals.nbytes)
        self.int_bytes = (8 * tape.ni, tape.ints.nbytes)
        spare = tape.adj_spare.nbytes if tape.adj_spare is not None else 0
        self.adjoint_bytes = tape.adj.nbytes + spare + tape.need.nbytes
        self.forward_calls = len(tape.forward_calls)
        # garbage first: _garbage counts references, and the loop below takes some
        garbage = [tape._garbage(k) for k in range(len(tape.segments))]
        # tensors made before a gc.freeze() (utils.freeze_startup_objects) are invisible to get_referrers: thaw
        # them while looking, then freeze again
        frozen = gc.get_freeze_count() > 0
        if frozen:
            gc.unfreeze()
        # one scan of the heap for all segments (a scan per segment costs minutes on a long-lived tape)
        holders = {id(seg): ([], []) for seg in tape.segments}
        for r in gc.get_referrers(*tape.segments):
            seg = getattr(r, "_seg", None) if not isinstance(r, (dict, list)) else None
            if seg is not None and id(seg) in holders:
                holders[id(seg)][isinstance(r, Node)].append(r)
        self.segments = []
        for k, seg in enumerate(tape.segments):
            stop = tape.segments[k + 1].start if k + 1 < len(tape.segments) else tape.base + n
            tensors, nodes = holders[id(seg)]
            self.segments.append(SegmentSummary(k, seg.start, stop, garbage[k], tensors, nodes,
                                                [t for _, t in seg.leaves]))
        if frozen:
            gc.freeze()

    def __str__(self):
        lines = [f"tape of thread {self.thread}: {self.records:,} records"
                 + (f" (gids {self.first_gid:,}..{self.first_gid + self.records - 1:,})" if self.records else "")]
        lines.append("memory (in use / allocated):")
        for what, (used, held) in (("records", self.record_bytes), ("values", self.value_bytes),
                                   ("ints", self.int_bytes)):
            lines.append(f"  {what:<10}{_bytes(used):>10} / {_bytes(held)}")
        lines.append(f"  {'adjoints':<10}{_bytes(self.adjoint_bytes):>10}   (buffers backward reuses)")
        if self.forward_calls:
            lines.append(f"  anomaly mode: forward call stacks of {self.forward_calls:,} records")
        if self.operations:
            lines.append("records by operation:")
            width = max(len(name) for name in self.operations)
            for name, count in self.operations.most_common():
                lines.append(f"  {name:<{width}}  {count:>8,}")
        lines.append(f"segments ({len(self.segments)}; one per stretch between backward calls):")
        for s in self.segments:
            count = s.stop - s.start
            lines.append(f"  #{s.index}: {count:,} record{'s' if count != 1 else ''}, {len(s.leaves)} "
                         f"lea{'ves' if len(s.leaves) != 1 else 'f'}; {s.holders()}")
        return "\n".join(lines)

    def __repr__(self):
        return (f"<TapeSummary: {self.records:,} records, {_bytes(self.value_bytes[0])} of values, "
                f"{len(self.segments)} segments>")


def tape_summary(file=None):
    """Print a summary of this thread's tape (records by operation, memory, segments and what holds them) to
    `file` (stdout by default; False prints nothing), and return it as a TapeSummary (str() gives the text)."""
    summary = TapeSummary(current_tape())
    if file is not False:
        print(summary, file=file if file is not None else sys.stdout)
    return summary


def _operation_name(code):
    if code in _SOURCE_NAMES:
        return _SOURCE_NAMES[code]
    if code >> 6 == op.GUARD:
        return "guard (tg.compile)"
    if code in (op.PYFUNC_OP, op.PYFUNC_OUTPUT):
        return "autograd.Function" + (" output" if code == op.PYFUNC_OUTPUT else "")
    if code == op.CUSTOM_OP:
        return "custom_op"
    return op.NAMES.get(code) or f"opcode {code}"


def _describe(t):
    fn = t.grad_fn
    return f"{tuple(t.shape)}" + (f" {fn.name()}" if fn is not None else "")


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
