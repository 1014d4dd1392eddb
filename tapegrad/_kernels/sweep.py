"""The reverse sweep: one compiled loop over tape records, one branch per family of operations."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .custom import custom_backward
from .elementwise import (binary_backward, binary_same_size_backward, scalar_binary_backward, unary_adjoint,
                          unary_backward)
from .layout import layout_backward
from .linalg import linalg_backward
from .matmul import matmul_backward
from .nn import nn_backward
from .movement import (copy_slices_backward, gather_backward, reduce_backward, run_backward, strided_backward,
                       sum_all_backward, unbroadcast_add)
from .ternary import ternary_backward
from .order import order_backward
from .program import (FRESH_A, FRESH_B, KIND, NEED, OP, REC, SCALAR_BINARY, SCALAR_UNARY, SIZE, VECTOR_BINARY,
                      VECTOR_SLICE, VECTOR_SUM, VECTOR_UNARY, XA, XB, XY)


@njit(cache=True, inline="always")
def _stale(flags, p):
    return p >= 0 and (flags[p] & op.FLAG_STALE) != 0


@njit(cache=True)
def _stale_extra(ints, aux_i, flags, base):
    """The physical index of a stale extra input of a record, or -1."""
    p = params_at(ints, aux_i)
    for k in range(ints[p]):
        r = ints[p + 1 + k] - base
        if _stale(flags, r):
            return r
    return -1


@njit(cache=True)
def _zero_unmarked_extras(ints, aux, off, ops, i, base, adj, need):
    """Zero the adjoints of record i's extra inputs that no consumer has written yet (their kernels add)."""
    p = params_at(ints, aux[i])
    for k in range(ints[p]):
        r = ints[p + 1 + k] - base
        if 0 <= r < i and need[r] == 0 and ops[r] != op.CONST:
            adj[off[r]:off[r] + size_at(ints, aux[r])] = 0.0


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as PyTorch
def _scalar_rows_backward(back, t, const, vals, adj):
    """The 0-d arithmetic rows of a program from row t on, up to the first other row (returned): a tight loop of
    its own, apart from the rest of reverse_sweep's body."""
    while t < back.shape[0]:
        kind = back[t, KIND]
        bits = back[t, NEED]
        if kind == SCALAR_BINARY:
            scalar_binary_backward(back[t, OP], back[t, XA], back[t, XB], back[t, XY], bits, vals, adj)
        elif kind == SCALAR_UNARY:
            xo = back[t, XA]
            yo = back[t, XY]
            d = unary_adjoint(back[t, OP], vals[xo], vals[yo], const[back[t, REC]], adj[yo])
            if (bits & FRESH_A) != 0:
                adj[xo] = d
            else:
                adj[xo] += d
        else:
            break
        t += 1
    return t


@njit(cache=True)
def _vector_rows_backward(back, t, const, vals, adj):
    """The VECTOR rows of a program (elementwise arithmetic, contiguous slices, whole sums) from row t on, up to the
    first other row (returned): their kernels straight from the rows, without the sweep's checks and lookups per
    record (a program holds only records a full sweep went through without error, and they do not change)."""
    while t < back.shape[0]:
        kind = back[t, KIND]
        bits = back[t, NEED]
        if kind == VECTOR_UNARY:
            unary_backward(back[t, OP], back[t, XA], back[t, XY], back[t, SIZE], const[back[t, REC]], vals, adj,
                           (bits & FRESH_A) != 0)
        elif kind == VECTOR_BINARY:
            binary_same_size_backward(back[t, OP], back[t, XA], back[t, XB], back[t, XY], back[t, SIZE],
                                      (bits & 1) != 0, (bits & 2) != 0, (bits & FRESH_A) != 0,
                                      (bits & FRESH_B) != 0, vals, adj)
        elif kind == VECTOR_SLICE:
            run_backward(back[t, XA], back[t, XY], back[t, SIZE], adj)
        elif kind == VECTOR_SUM:
            sum_all_backward(back[t, XA], back[t, XY], back[t, SIZE], const[back[t, REC]], adj, (bits & FRESH_A) != 0)
        else:
            break
        t += 1
    return t


@njit(cache=True, inline="always")
def program_rows_backward(back, t, const, vals, adj):
    """A gradient program's rows from row t on while they run straight from the row (0-d arithmetic and the
    VECTOR kinds); returns the first row that does not (back.shape[0] at the end)."""
    while t < back.shape[0]:
        kind = back[t, KIND]
        if kind == SCALAR_BINARY or kind == SCALAR_UNARY:
            t = _scalar_rows_backward(back, t, const, vals, adj)
        elif kind >= VECTOR_UNARY:
            t = _vector_rows_backward(back, t, const, vals, adj)
        else:
            break
    return t


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as PyTorch
def reverse_sweep(start, lowest, back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables,
                  retain, custom_kernels):
    """Propagate adjoints from records marked in `need`, from physical index `start` down to the lowest
    record marked so far (`lowest`, lowered as inputs are marked), so the cost follows the graph, not the tape.
    `tables`: opcodes.SWEEP_TABLES.

    The adjoint of a record is defined only once `need` marks it: `adj` is not zeroed between sweeps (zeroing
    costs a pass over memory as large as the values). The first consumer the sweep reaches writes an input's
    adjoint through the FRESH bits (stores, or zeroes it first where a kernel can only add), as in a gradient
    program; extra inputs not marked yet are zeroed before their kernel runs.

    tg.compile's later replays pass `back`, the program rows (see program.py) of the records a first full sweep
    reached, in its order: the sweep then visits exactly those, the commonest kinds straight from the rows, and
    ignores start, lowest and `need`. Everyone else passes NO_PROGRAM. One loop serves both, because every call
    of this function costs ~0.4 us of reference counting on its arrays: it must not run once per record.

    Returns (status, record, culprit, lowest): OK, or an error code with the record that failed and the record
    whose saved value is missing or stale, or ERR_PYFUNC asking the caller to run a Python backward and resume.
    """
    reads_a, reads_b, reads_y, saves, reads_c, has_extra = (tables[0], tables[1], tables[2], tables[3], tables[4],
                                                            tables[5])
    rows = back.shape[0]
    t = 0
    i = start + 1
    fresh = 0
    while True:
        if rows > 0:
            t = program_rows_backward(back, t, const, vals, adj)
            if t == rows:
                break
            i = back[t, REC]
            fresh = back[t, NEED] & (FRESH_A | FRESH_B)
            t += 1
        else:
            if i <= lowest:
                break
            i -= 1
            if need[i] == 0:
                continue
        o = ops[i]
        fam = o >> 6
        if fam == op.SOURCE or fam == op.GUARD:
            if o == op.FREED:
                return op.ERR_FREED, i, i, lowest
            continue
        if (flags[i] & op.FLAG_FREED) != 0 and saves[o]:
            return op.ERR_FREED, i, i, lowest
        pa = a[i] - base if a[i] >= 0 else -1
        pb = b[i] - base if b[i] >= 0 else -1
        if reads_a[o] and _stale(flags, pa):
            return op.ERR_STALE, i, pa, lowest
        if reads_b[o] and _stale(flags, pb):
            return op.ERR_STALE, i, pb, lowest
        if reads_y[o] and _stale(flags, i):
            return op.ERR_STALE, i, i, lowest
        if reads_c[o]:
            culprit = _stale_extra(ints, aux[i], flags, base)
            if culprit >= 0:
                return op.ERR_STALE, i, culprit, lowest
        if o == op.PYFUNC_OP:
            return op.ERR_PYFUNC, i, i, lowest
        if o == op.PYFUNC_OUTPUT:
            need[pa] = 1      # the node reads this output's adjoint when the sweep reaches it
            lowest = min(lowest, pa)
            if not retain:
                flags[i] |= op.FLAG_FREED
            continue
        need_a = pa >= 0 and ops[pa] != op.CONST
        need_b = pb >= 0 and ops[pb] != op.CONST
        yo = off[i]
        if rows == 0:
            fresh = (FRESH_A if need_a and need[pa] == 0 else 0) | (
                FRESH_B if need_b and pb != pa and need[pb] == 0 else 0)
            if has_extra[o]:
                _zero_unmarked_extras(ints, aux, off, ops, i, base, adj, need)
        if fresh != 0:
            # a gradient program's first write of an input's adjoint: the kernels that cannot store instead of
            # adding get it zeroed first
            if (fresh & FRESH_A) != 0 and not (fam == op.REDUCE or fam == op.UNARY or fam == op.BINARY):
                adj[off[pa]:off[pa] + size_at(ints, aux[pa])] = 0.0
                fresh &= ~FRESH_A
            if (fresh & FRESH_B) != 0 and fam != op.BINARY:
                adj[off[pb]:off[pb] + size_at(ints, aux[pb])] = 0.0
                fresh &= ~FRESH_B
        if aux[i] == 0 and fam == op.UNARY:
            xo = off[pa]
            d = unary_adjoint(o, vals[xo], vals[yo], const[i], adj[yo])
            if (fresh & FRESH_A) != 0:
                adj[xo] = d
            else:
                adj[xo] += d
        elif aux[i] == 0 and fam == op.BINARY:
            scalar_binary_backward(o, off[pa], off[pb], yo, (1 if need_a else 0) | (2 if need_b else 0) | fresh,
                                   vals, adj)
        elif fam == op.UNARY:
            unary_backward(o, off[pa], yo, size_at(ints, aux[i]), const[i], vals, adj, (fresh & FRESH_A) != 0)
        elif fam == op.BINARY:
            binary_backward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], yo, need_a, need_b, fresh, vals,
                            adj)
        elif fam == op.REDUCE:
            # the keepdim shape of the output follows its own shape in the params
            reduce_backward(o, ints, aux[pa], params_at(ints, aux[i]), off[pa], yo, const[i], vals, adj,
                            (fresh & FRESH_A) != 0)
        elif fam == op.STRIDED:
            strided_backward(ints, aux[i], off[pa], yo, adj)
        elif fam == op.GATHER:
            gather_backward(ints, aux[i], off[pa], yo, adj)
        elif fam == op.INDEX_PUT:
            copy_slices_backward(ints, aux[i], off[pa], off[pb] if pb >= 0 else 0, yo, need_a, need_b, adj)
        elif fam == op.TERNARY:
            pc = ternary_backward(o, ints, aux, off, ops, base, i, pa, pb, need_a, need_b, const[i], vals, adj)
            if pc >= 0:
                need[pc] = 1
                lowest = min(lowest, pc)
        elif fam == op.ORDER:
            order_backward(o, ints, aux[i], off[pa], yo, vals, adj)
        elif fam == op.LAYOUT:
            lowest = layout_backward(o, ints, aux, off, ops, base, i, pa, pb, need_a, need_b, adj, need, lowest)
        elif fam == op.LINALG:
            linalg_backward(o, ints, aux[i], aux[pa], off[pa], off[pb] if pb >= 0 else 0, yo, need_a, need_b,
                            const[i], vals, adj)
            if o == op.LINALG_SLOGDET_SIGN:
                need_a = False      # as in PyTorch, the sign passes no gradient (its input's grad stays None)
        elif fam == op.NN:
            lowest = nn_backward(o, ints, aux, off, ops, base, i, pa, pb, need_a, need_b, const[i], vals, adj, need,
                                 lowest)
        elif fam == op.CUSTOM:
            lowest = min(lowest, custom_backward(custom_kernels, ints, aux, off, ops, base, i, a[i], b[i], vals,
                                                 adj, need, op.CONST))
        elif fam == op.MATMUL:
            alpha = 1.0
            b_transposed = False
            if o == op.ADDMM:
                p = params_at(ints, aux[i])
                alpha = const[i]
                b_transposed = ints[p + 3] != 0
            matmul_backward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], yo, need_a, need_b,
                            alpha, b_transposed, vals, adj)
            if o == op.ADDMM:
                pc = ints[p + 1] - base
                if ops[pc] != op.CONST:
                    beta = ints[p + 2:p + 3].view(np.float64)[0]
                    unbroadcast_add(ints, aux[i], aux[pc], off[pc], yo, beta, adj)
                    need[pc] = 1
                    lowest = min(lowest, pc)
        if need_a:
            need[pa] = 1
            lowest = min(lowest, pa)
        if need_b:
            need[pb] = 1
            lowest = min(lowest, pb)
        if not retain:
            flags[i] |= op.FLAG_FREED
    return op.OK, -1, -1, lowest


@njit(cache=True)
def lowest_reference(ops, a, b, aux, ints, has_extra, start, n, base):
    """For compaction: the smallest input gid that records [start, n) refer to."""
    lowest = base + n
    for i in range(start, n):
        if 0 <= a[i] < lowest:
            lowest = a[i]
        if 0 <= b[i] < lowest:
            lowest = b[i]
        if has_extra[ops[i]]:
            p = params_at(ints, aux[i])
            for k in range(ints[p]):
                if ints[p + 1 + k] < lowest:
                    lowest = ints[p + 1 + k]
    return lowest


@njit(cache=True)
def count_reusable(ops, flags, saves, start, stop):
    """How many operation records in [start, stop) a later backward could still go through: those not
    consumed yet, and consumed ones that saved no values (PyTorch lets a backward pass those again)."""
    reusable = 0
    for i in range(start, stop):
        o = ops[i]
        if (o >> 6) != op.SOURCE and ((flags[i] & op.FLAG_FREED) == 0 or saves[o] == 0):
            reusable += 1
    return reusable
