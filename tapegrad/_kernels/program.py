"""tg.compile's lowered trace ("program"): one row per record, worked out once per trace so the replays neither
re-derive offsets per record nor call a kernel for 0-d arithmetic.

The forward replay runs a trace's program rows in order. The reverse sweep runs the rows of just the records a
sweep from the output reaches (sweep.reach), in sweep order (`program[reached]`): which records a sweep reaches
depends on the trace's structure, not on its values.
"""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .frame import FRESH_A, FRESH_B
from .movement import is_contiguous_run, is_summed

# columns: kind, opcode, value offsets of input a, input b and the output, which inputs take a gradient
# (bit 1: a, bit 2: b; constants take none; in a gradient program, bits 4 and 8 when the row is the first to write
# a's or b's adjoint: see gradient_program), the record's index and the output's size
KIND, OP, XA, XB, XY, NEED, REC, SIZE = 0, 1, 2, 3, 4, 5, 6, 7
# kinds: records the replay skips (sources), 0-d unary and binary arithmetic done inline, the rest, and what runs
# straight from the row: elementwise unary and binary arithmetic over inputs of the output's size (no
# broadcasting), views reading one contiguous run of their input (XA: the run's start; they never store a fresh
# adjoint: theirs is zeroed up front), and sums or means of a whole input (SIZE: the input's size)
SKIP, SCALAR_UNARY, SCALAR_BINARY, GENERAL, VECTOR_UNARY, VECTOR_BINARY, VECTOR_SLICE, VECTOR_SUM = range(8)


NO_PROGRAM = np.zeros((0, 8), np.int64)   # a trace's gradient program until it is worked out (Trace.back)
NO_SPANS = np.zeros((0, 2), np.int64)     # and its zeroed spans


def runs_from_rows(prog, back):
    """Whether a trace's forward program and its gradient program (known: not NO_PROGRAM) hold no GENERAL row:
    then value_and_grad_replay runs both straight from the rows, without the forward replay's and the sweep's
    per-record dispatch (and without their calls: ~0.25 us of a small trace's ~1.3 us). Worked out once per trace."""
    return bool(back.shape[0] > 0 and not np.any(prog[:, KIND] == GENERAL) and not np.any(back[:, KIND] == GENERAL))


@njit(cache=True)
def lower(ops, a, b, aux, off, ints, n, base):
    """The program of records [0, n)."""
    prog = np.zeros((n, 8), np.int64)
    for i in range(n):
        o = ops[i]
        fam = o >> 6
        pa = a[i] - base if a[i] >= 0 else -1
        pb = b[i] - base if b[i] >= 0 else -1
        kind = GENERAL
        if fam == op.SOURCE:
            kind = SKIP
        elif aux[i] == 0 and fam == op.UNARY:
            kind = SCALAR_UNARY
        elif aux[i] == 0 and fam == op.BINARY:
            kind = SCALAR_BINARY
        elif fam == op.UNARY:
            kind = VECTOR_UNARY
        elif (fam == op.BINARY and pa >= 0 and pb >= 0
              and size_at(ints, aux[pa]) == size_at(ints, aux[i]) == size_at(ints, aux[pb])):
            kind = VECTOR_BINARY
        elif fam == op.STRIDED and is_contiguous_run(ints, aux[i]):
            kind = VECTOR_SLICE
        elif fam == op.REDUCE and is_summed(o) and size_at(ints, aux[i]) == 1:
            kind = VECTOR_SUM
        prog[i, KIND] = kind
        prog[i, OP] = o
        prog[i, XA] = off[pa] if pa >= 0 else -1
        prog[i, XB] = off[pb] if pb >= 0 else -1
        prog[i, XY] = off[i]
        prog[i, NEED] = (1 if pa >= 0 and ops[pa] != op.CONST else 0) + (2 if pb >= 0 and ops[pb] != op.CONST else 0)
        prog[i, REC] = i
        prog[i, SIZE] = size_at(ints, aux[i])
        if kind == VECTOR_SLICE:
            prog[i, XA] += ints[params_at(ints, aux[i])]
        elif kind == VECTOR_SUM:
            prog[i, SIZE] = size_at(ints, aux[pa])
    return prog


@njit(cache=True)
def gradient_program(prog, reached, ops, a, b, aux, ints, has_extra, base, n_vals, output):
    """The reverse sweep's program: the rows of the `reached` records (in sweep order), and the spans of the
    adjoint buffer to zero before each sweep, as (start, stop) rows.

    Zeroing a whole adjoint buffer costs a pass over memory as large as the values. Instead, a row that is the
    first in the sweep to write an input's adjoint, through its a or b slot, gets that input's FRESH bit: the
    sweep then stores into the adjoint instead of adding (or zeroes it just before, for the kernels that only
    add), and only the rest of the buffer is zeroed up front. A record written first in any other way (an extra
    input, the seeded output) stays in the zeroed spans."""
    back = prog[reached]
    n = prog.shape[0]
    written = np.zeros(n, np.uint8)
    fresh = np.zeros(n, np.uint8)
    written[output] = 1
    for t in range(back.shape[0]):
        if back[t, KIND] == SKIP:
            continue
        i = back[t, REC]
        o = ops[i]
        if has_extra[o]:
            p = params_at(ints, aux[i])
            for k in range(ints[p]):
                r = ints[p + 1 + k] - base
                if 0 <= r < n:
                    written[r] = 1
        pa = a[i] - base if a[i] >= 0 else -1
        pb = b[i] - base if b[i] >= 0 else -1
        if pa >= 0 and (back[t, NEED] & 1) != 0 and written[pa] == 0 and back[t, KIND] != VECTOR_SLICE:
            back[t, NEED] |= FRESH_A
            fresh[pa] = 1
        if pb >= 0 and pb != pa and (back[t, NEED] & 2) != 0 and written[pb] == 0:
            back[t, NEED] |= FRESH_B
            fresh[pb] = 1
        if pa >= 0:
            written[pa] = 1
        if pb >= 0:
            written[pb] = 1
    # the complement of the fresh records' spans (spans of distinct records never overlap)
    fresh_records = np.flatnonzero(fresh)
    starts = prog[fresh_records, XY]
    order = np.argsort(starts)
    spans = np.zeros((fresh_records.shape[0] + 1, 2), np.int64)
    m = 0
    start = 0
    for k in order:
        r = fresh_records[k]
        if prog[r, XY] > start:
            spans[m, 0] = start
            spans[m, 1] = prog[r, XY]
            m += 1
        start = max(start, prog[r, XY] + size_at(ints, aux[r]))
    if n_vals > start:
        spans[m, 0] = start
        spans[m, 1] = n_vals
        m += 1
    return back, spans[:m].copy()
