"""The reverse sweeps: the eager one over tape records (reverse_sweep) and tg.compile's over a trace's gradient
program (program_sweep). Both visit a record the same way (_visit): 0-d arithmetic inline, everything else through
the backward unit of its opcode, called by address (frame.py, units/), so neither compiles a family's kernels. The
program sweep also runs its commonest rows inline (elementwise records of one size, slices, whole sums)."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .elementwise import binary_same_size_backward, scalar_binary_backward, unary_adjoint, unary_backward
from .frame import BACKWARD_AT, FRESH_A, FRESH_B, UNIT_OK, call_backward, make_frame
from .movement import run_backward, sum_all_backward
from .program import (KIND, NEED, OP, REC, SCALAR_BINARY, SCALAR_UNARY, SIZE, VECTOR_BINARY, VECTOR_SLICE, VECTOR_SUM,
                      VECTOR_UNARY, XA, XB, XY)


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
    record (sweep.reach made them for every record of the program, and the trace's flags do not change)."""
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


@njit(cache=True, inline="always")
def _mark_extras(ints, aux_i, ops, base, need, lowest):
    """Mark record's extra inputs that take a gradient (not constants) as needed; returns the new lowest."""
    p = params_at(ints, aux_i)
    for k in range(ints[p]):
        r = ints[p + 1 + k] - base
        if r >= 0 and ops[r] != op.CONST:
            need[r] = 1
            lowest = min(lowest, r)
    return lowest


@njit(cache=True, inline="always")
def _check(i, ops, a, b, aux, flags, ints, base, tables):
    """(OK, -1), or an error and its culprit when record i's backward would read a value released by an earlier
    backward (ERR_FREED) or changed in place since it was saved (ERR_STALE)."""
    o = ops[i]
    if (flags[i] & op.FLAG_FREED) != 0 and tables[op.SAVES_ROW, o]:
        return op.ERR_FREED, i
    pa = a[i] - base if a[i] >= 0 else -1
    pb = b[i] - base if b[i] >= 0 else -1
    if tables[op.READS_A_ROW, o] and _stale(flags, pa):
        return op.ERR_STALE, pa
    if tables[op.READS_B_ROW, o] and _stale(flags, pb):
        return op.ERR_STALE, pb
    if tables[op.READS_Y_ROW, o] and _stale(flags, i):
        return op.ERR_STALE, i
    if tables[op.READS_C_ROW, o]:
        culprit = _stale_extra(ints, aux[i], flags, base)
        if culprit >= 0:
            return op.ERR_STALE, culprit
    return op.OK, -1


@njit(cache=True, inline="always")
def _inputs_needed(o, pa, pb, ops, tables):
    """Whether record's inputs a and b take a gradient: they exist, are not constants, and the op passes one."""
    return (pa >= 0 and ops[pa] != op.CONST and (tables[op.GRAD_BITS_ROW, o] & 1) != 0,
            pb >= 0 and ops[pb] != op.CONST and (tables[op.GRAD_BITS_ROW, o] & 2) != 0)


@njit(cache=True)
def reach(output, ops, a, b, aux, flags, ints, base, tables):
    """The records a sweep from `output` would visit, marked in a fresh `need`, with the checks it would make but
    none of its arithmetic: (status, culprit, need). tg.compile builds a trace's gradient program from it, so even
    its first sweep runs from program rows (and needs only the units of rows that are not)."""
    need = np.zeros(max(ops.shape[0], 1), np.uint8)
    need[output] = 1
    for i in range(output, -1, -1):
        o = ops[i]
        if need[i] == 0 or (o >> 6) == op.GUARD or ((o >> 6) == op.SOURCE and o != op.FREED):
            continue
        if o == op.FREED or (o >> 6) == op.PYFUNC:
            return op.ERR_FREED if o == op.FREED else op.ERR_PYFUNC, i, need
        status, culprit = _check(i, ops, a, b, aux, flags, ints, base, tables)
        if status != op.OK:
            return status, culprit, need
        pa = a[i] - base if a[i] >= 0 else -1
        pb = b[i] - base if b[i] >= 0 else -1
        need_a, need_b = _inputs_needed(o, pa, pb, ops, tables)
        if tables[op.HAS_EXTRA_ROW, o] and (tables[op.GRAD_BITS_ROW, o] & 4) != 0:
            _mark_extras(ints, aux[i], ops, base, need, 0)
        if need_a:
            need[pa] = 1
        if need_b:
            need[pb] = 1
    return op.OK, -1, need


@njit(cache=True, inline="always")
def _scalar_adjoints(o, fam, pa, pb, yo, need_a, need_b, fresh, off, c, vals, adj):
    """A 0-d UNARY or BINARY record's backward, inline: its inputs' adjoints, stored where `fresh` says."""
    if fam == op.UNARY:
        xo = off[pa]
        d = unary_adjoint(o, vals[xo], vals[yo], c, adj[yo])
        if (fresh & FRESH_A) != 0:
            adj[xo] = d
        else:
            adj[xo] += d
    else:
        scalar_binary_backward(o, off[pa], off[pb], yo, (1 if need_a else 0) | (2 if need_b else 0) | fresh, vals,
                               adj)


@njit(cache=True, inline="always")
def _swept(i, pa, pb, need_a, need_b, retain, need, flags, lowest):
    """After record i's backward: mark the inputs that took a gradient needed, free the record unless retained;
    returns the new lowest record to visit."""
    if need_a:
        need[pa] = 1
        lowest = min(lowest, pa)
    if need_b:
        need[pb] = 1
        lowest = min(lowest, pb)
    if not retain:
        flags[i] |= op.FLAG_FREED
    return lowest


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as PyTorch
def _visit(i, fresh, in_program, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables,
           retain, kernels, frame):
    """Propagate record i's adjoint to its inputs (checking that what its backward reads is still there) and mark
    them needed. `fresh`: in a gradient program, the row's FRESH bits; an eager sweep works them out from `need`.
    Returns (status, culprit, lowest): see reverse_sweep."""
    o = ops[i]
    fam = o >> 6
    if fam == op.SOURCE or fam == op.GUARD:
        return (op.ERR_FREED if o == op.FREED else op.OK), i, lowest
    scalar = aux[i] == 0 and (fam == op.UNARY or fam == op.BINARY)
    if not scalar and fam != op.PYFUNC and kernels[BACKWARD_AT + o] == 0:
        return op.ERR_UNIT, i, lowest
    status, culprit = _check(i, ops, a, b, aux, flags, ints, base, tables)
    if status != op.OK:
        return status, culprit, lowest
    pa = a[i] - base if a[i] >= 0 else -1
    pb = b[i] - base if b[i] >= 0 else -1
    if o == op.PYFUNC_OP:
        return op.ERR_PYFUNC, i, lowest
    if o == op.PYFUNC_OUTPUT:
        need[pa] = 1      # the node reads this output's adjoint when the sweep reaches it
        if not retain:
            flags[i] |= op.FLAG_FREED
        return op.OK, -1, min(lowest, pa)
    need_a, need_b = _inputs_needed(o, pa, pb, ops, tables)
    has_extra = tables[op.HAS_EXTRA_ROW, o] != 0
    if not in_program:
        fresh = (FRESH_A if need_a and need[pa] == 0 else 0) | (
            FRESH_B if need_b and pb != pa and need[pb] == 0 else 0)
        if has_extra:
            _zero_unmarked_extras(ints, aux, off, ops, i, base, adj, need)
    if fresh != 0:
        # the first write of an input's adjoint in this sweep: the kernels that cannot store instead of adding get
        # it zeroed first
        if (fresh & FRESH_A) != 0 and not (fam == op.REDUCE or fam == op.UNARY or fam == op.BINARY):
            adj[off[pa]:off[pa] + size_at(ints, aux[pa])] = 0.0
            fresh &= ~FRESH_A
        if (fresh & FRESH_B) != 0 and fam != op.BINARY:
            adj[off[pb]:off[pb] + size_at(ints, aux[pb])] = 0.0
            fresh &= ~FRESH_B
    if scalar:
        _scalar_adjoints(o, fam, pa, pb, off[i], need_a, need_b, fresh, off, const[i], vals, adj)
    elif call_backward(kernels[BACKWARD_AT + o], frame, i, fresh,
                       (1 if need_a else 0) | (2 if need_b else 0)) != UNIT_OK:
        return op.ERR_KERNEL, i, lowest
    if has_extra and (tables[op.GRAD_BITS_ROW, o] & 4) != 0:
        lowest = _mark_extras(ints, aux[i], ops, base, need, lowest)
    return op.OK, -1, _swept(i, pa, pb, need_a, need_b, retain, need, flags, lowest)


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as PyTorch
def reverse_sweep(start, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables, retain,
                  kernels):
    """Propagate adjoints from records marked in `need`, from physical index `start` down to the lowest
    record marked so far (`lowest`, lowered as inputs are marked), so the cost follows the graph, not the tape.
    `tables`: opcodes.SWEEP_TABLES; `kernels`: units.TABLE, the units' and custom ops' addresses.

    The adjoint of a record is defined only once `need` marks it: `adj` is not zeroed between sweeps (zeroing
    costs a pass over memory as large as the values). The first consumer the sweep reaches writes an input's
    adjoint through the FRESH bits (stores, or zeroes it first where a kernel can only add), as in a gradient
    program; extra inputs not marked yet are zeroed before their kernel runs. Every family lists its extra
    inputs the same way (params [n_extra, gids...]), so marking and zeroing them is the loop's job, not a unit's.

    Returns (status, record, culprit, lowest): OK, or an error code with the record that failed and the record
    whose saved value is missing or stale, or ERR_PYFUNC asking the caller to run a Python backward and resume,
    or ERR_UNIT asking it to load the record's unit and resume at the record (nothing of it done yet).
    """
    frame = make_frame(ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base)
    # 0-d arithmetic, the bulk of scalar code, is swept right here, reading the tables' rows taken once: through
    # _visit (a call, and the 2-D table indexed per record) the eager sweep took 4x as long on 0-d records
    reads_a, reads_b, reads_y, saves, grad_bits = tables[0], tables[1], tables[2], tables[3], tables[6]
    i = start + 1
    while i > lowest:
        i -= 1
        if need[i] == 0:
            continue
        o = ops[i]
        fam = o >> 6
        if aux[i] == 0 and (fam == op.UNARY or fam == op.BINARY):
            pa = a[i] - base if a[i] >= 0 else -1
            pb = b[i] - base if b[i] >= 0 else -1
            if (flags[i] & op.FLAG_FREED) != 0 and saves[o]:
                return op.ERR_FREED, i, i, lowest
            if reads_a[o] and _stale(flags, pa):
                return op.ERR_STALE, i, pa, lowest
            if reads_b[o] and _stale(flags, pb):
                return op.ERR_STALE, i, pb, lowest
            if reads_y[o] and _stale(flags, i):
                return op.ERR_STALE, i, i, lowest
            need_a = pa >= 0 and ops[pa] != op.CONST and (grad_bits[o] & 1) != 0
            need_b = pb >= 0 and ops[pb] != op.CONST and (grad_bits[o] & 2) != 0
            fresh = (FRESH_A if need_a and need[pa] == 0 else 0) | (
                FRESH_B if need_b and pb != pa and need[pb] == 0 else 0)
            _scalar_adjoints(o, fam, pa, pb, off[i], need_a, need_b, fresh, off, const[i], vals, adj)
            lowest = _swept(i, pa, pb, need_a, need_b, retain, need, flags, lowest)
            continue
        status, culprit, lowest = _visit(i, 0, False, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj,
                                         need, base, tables, retain, kernels, frame)
        if status != op.OK:
            return status, i, culprit, lowest
    return op.OK, -1, -1, lowest


@njit(cache=True)
def sweep_record(i, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables, retain,
                 kernels):
    """What reverse_sweep does at record i, alone: (status, culprit, lowest). Anomaly mode sweeps one record at a
    time with it, to check each record's gradients before the next runs."""
    frame = make_frame(ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base)
    return _visit(i, 0, False, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables,
                  retain, kernels, frame)


@njit(cache=True)
def program_sweep(back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables, kernels):
    """tg.compile's later sweeps of a trace: the rows of `back`, the gradient program (program.py) of the records
    a sweep from the output reaches (reach), in its order; the commonest kinds straight from the rows, the rest as in
    reverse_sweep (reach made their checks when the program was built). Returns the status."""
    frame = make_frame(ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base)
    t = 0
    while True:
        t = program_rows_backward(back, t, const, vals, adj)
        if t == back.shape[0]:
            return op.OK
        status, _, _ = _visit(back[t, REC], back[t, NEED] & (FRESH_A | FRESH_B), True, 0, ops, a, b, aux, off, const,
                              flags, ints, vals, adj, need, base, tables, True, kernels, frame)
        if status != op.OK:
            return status
        t += 1


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
