"""tg.compile's lowered trace ("program"): one row per record, worked out once per trace so the replays neither
re-derive offsets per record nor call a kernel for 0-d arithmetic.

The forward replay runs a trace's program rows in order. The reverse sweep, from a trace's second call on, runs
the rows of just the records its first full sweep reached, in that sweep's order (`program[reached]`): which
records a sweep reaches depends on the trace's structure, not on its values.
"""
import numpy as np
from numba import njit

from . import opcodes as op

# columns: kind, opcode, value offsets of input a, input b and the output, which inputs take a gradient
# (bit 1: a, bit 2: b; constants take none) and the record's index
KIND, OP, XA, XB, XY, NEED, REC = 0, 1, 2, 3, 4, 5, 6
# kinds: records the replay skips (sources), 0-d unary and binary arithmetic done inline, and the rest
SKIP, SCALAR_UNARY, SCALAR_BINARY, GENERAL = 0, 1, 2, 3

NO_PROGRAM = np.zeros((0, 7), np.int64)   # what the eager sweep passes: walk the tape, not a program


@njit(cache=True)
def lower(ops, a, b, aux, off, n, base):
    """The program of records [0, n)."""
    prog = np.zeros((n, 7), np.int64)
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
        prog[i, KIND] = kind
        prog[i, OP] = o
        prog[i, XA] = off[pa] if pa >= 0 else -1
        prog[i, XB] = off[pb] if pb >= 0 else -1
        prog[i, XY] = off[i]
        prog[i, NEED] = (1 if pa >= 0 and ops[pa] != op.CONST else 0) + (2 if pb >= 0 and ops[pb] != op.CONST else 0)
        prog[i, REC] = i
    return prog
