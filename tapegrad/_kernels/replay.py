"""tg.compile's replay: recompute a recorded trace forward on new input values, then run the reverse sweep.

The forward replay is the reverse sweep's mirror: one loop over the records in order, one branch per family,
each calling the family's forward kernel (kept beside its backward kernel). Guard records check that values
which steered Python while recording are still the same; the first that fails stops the replay.
"""
import numpy as np
from numba import njit, prange

from . import opcodes as op
from .common import params_at, size_at
from .elementwise import binary_forward, binary_partials, binary_value, unary_derivative, unary_forward, unary_value
from .guard import guard_forward
from .linalg import linalg_forward
from .matmul import addmm_forward_input, matmul_forward
from .movement import copy_slices_forward, gather_forward, reduce_forward, strided_forward
from .layout import layout_forward
from .nn import nn_forward
from .order import order_forward
from .sweep import reverse_sweep
from .ternary import ternary_forward

REPLAYED = -1   # forward_replay's result when every guard held

# A lowered trace ("program"): one row per record, worked out once so the replay loops neither re-derive
# offsets nor call a kernel for 0-d arithmetic. Columns:
KIND, OP, XA, XB, XY, NEED, REC = 0, 1, 2, 3, 4, 5, 6
# kinds: records the replay skips (sources), 0-d unary and binary arithmetic done inline, and the rest
SKIP, SCALAR_UNARY, SCALAR_BINARY, GENERAL = 0, 1, 2, 3


@njit(cache=True)
def forward_replay(ops, a, b, aux, off, const, ints, vals, start, stop, base):
    """Recompute records [start, stop) in order; return REPLAYED, or the index of the first guard that failed."""
    for i in range(start, stop):
        o = ops[i]
        fam = o >> 6
        if fam == op.SOURCE:
            continue
        pa = a[i] - base if a[i] >= 0 else -1
        pb = b[i] - base if b[i] >= 0 else -1
        yo = off[i]
        # 0-d records inline: a kernel call passing arrays costs more than the arithmetic (NRT refcounts)
        if aux[i] == 0 and fam == op.UNARY:
            vals[yo] = unary_value(o, vals[off[pa]], const[i])
        elif aux[i] == 0 and fam == op.BINARY:
            vals[yo] = binary_value(o, vals[off[pa]], vals[off[pb]])
        elif fam == op.UNARY:
            unary_forward(o, off[pa], yo, size_at(ints, aux[i]), const[i], vals)
        elif fam == op.BINARY:
            binary_forward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], yo, vals)
        elif fam == op.REDUCE:
            reduce_forward(o, ints, aux[pa], params_at(ints, aux[i]), off[pa], yo, const[i], vals)
        elif fam == op.ORDER:
            order_forward(o, ints, aux[i], aux[pa], off[pa], yo, vals)
        elif fam == op.STRIDED:
            strided_forward(ints, aux[i], off[pa], yo, vals)
        elif fam == op.GATHER:
            gather_forward(ints, aux[i], off[pa], yo, vals)
        elif fam == op.INDEX_PUT:
            copy_slices_forward(ints, aux[i], off[pa], off[pb] if pb >= 0 else 0, yo, pb >= 0, const[i], vals)
        elif fam == op.LAYOUT:
            layout_forward(o, ints, aux, off, const, base, i, pa, pb, vals)
        elif fam == op.MATMUL:
            alpha = 1.0
            b_transposed = False
            if o == op.ADDMM:
                p = params_at(ints, aux[i])
                alpha = const[i]
                b_transposed = ints[p + 3] != 0
            matmul_forward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], yo, alpha, b_transposed, vals)
            if o == op.ADDMM:
                beta = ints[p + 2:p + 3].view(np.float64)[0]
                pc = ints[p + 1] - base
                addmm_forward_input(ints, aux[i], aux[pc], off[pc], yo, beta, vals)
        elif fam == op.NN:
            nn_forward(o, ints, aux, off, base, i, pa, pb, const[i], vals)
        elif fam == op.LINALG:
            linalg_forward(o, ints, aux[i], aux[pa], off[pa], off[pb] if pb >= 0 else 0, yo, const[i], vals)
        elif fam == op.TERNARY:
            ternary_forward(o, ints, aux, off, base, i, pa, pb, const[i], vals)
        elif fam == op.GUARD:
            if not guard_forward(o, ints, aux[i], aux[pa], aux[pb] if pb >= 0 else -1, off[pa],
                                 off[pb] if pb >= 0 else 0, yo, const[i], vals):
                return i
        else:
            return i     # not replayable; tg.compile never builds such a trace
    return REPLAYED


@njit(cache=True)
def reverse_from(outputs, seeds, seed_at, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base,
                 tables, custom_kernels):
    """Zero the adjoints, seed output k's adjoint with seeds[seed_at[k]:seed_at[k+1]], and sweep down to 0."""
    adj[:] = 0.0
    need[:] = 0
    start = -1
    for k in range(outputs.shape[0]):
        p = outputs[k]
        o = off[p]
        for j in range(seed_at[k + 1] - seed_at[k]):
            adj[o + j] += seeds[seed_at[k] + j]
        need[p] = 1
        start = max(start, p)
    status, i, culprit, lowest = reverse_sweep(start, start, 0, ops, a, b, aux, off, const, flags, ints, vals, adj,
                                               need, base, tables[0], tables[1], tables[2], tables[3], True,
                                               custom_kernels)
    return status


@njit(cache=True)
def value_and_grad_replay(ops, a, b, aux, off, const, flags, ints, vals, adj, need, n, base, output, tables,
                          custom_kernels):
    """Forward replay, then the gradient of the scalar record `output`: one compiled call per evaluation.
    Returns (REPLAYED or the failed guard's index, the sweep status); `need` ends marking the records reached."""
    failed = forward_replay(ops, a, b, aux, off, const, ints, vals, 0, n, base)
    if failed != REPLAYED:
        return failed, op.OK
    adj[:] = 0.0
    need[:] = 0
    adj[off[output]] = 1.0
    need[output] = 1
    status, _, _, _ = reverse_sweep(output, output, 0, ops, a, b, aux, off, const, flags, ints, vals, adj, need,
                                    base, tables[0], tables[1], tables[2], tables[3], True, custom_kernels)
    return REPLAYED, status


@njit(cache=True)
def lower(ops, a, b, aux, off, n, base):
    """The program of records [0, n): kind, opcode, value offsets of input a, input b and the output, which
    inputs take a gradient (bit 1: a, bit 2: b; constants take none) and the record's index. The reverse sweep
    reads the rows of the records it reaches, in its order (`program[reached]`), so it walks memory forward."""
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


@njit(cache=True)
def forward_lean(prog, ops, a, b, aux, off, const, ints, vals, n, base):
    """forward_replay over a lowered trace: 0-d arithmetic inline from the program, other records one by one.
    Products, sums, scaling and 1 - x, the commonest, skip the value functions' opcode chains."""
    for i in range(n):
        kind = prog[i, KIND]
        if kind == SCALAR_BINARY:
            o = prog[i, OP]
            x = vals[prog[i, XA]]
            z = vals[prog[i, XB]]
            vals[prog[i, XY]] = x * z if o == op.MUL else (x + z if o == op.ADD else binary_value(o, x, z))
        elif kind == SCALAR_UNARY:
            o = prog[i, OP]
            x = vals[prog[i, XA]]
            c = const[i]
            vals[prog[i, XY]] = c - x if o == op.RSUB_SCALAR else (x * c if o == op.MUL_SCALAR else
                                                                   unary_value(o, x, c))
        elif kind == GENERAL:
            if forward_replay(ops, a, b, aux, off, const, ints, vals, i, i + 1, base) != REPLAYED:
                return i
    return REPLAYED


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as reverse_sweep
def reverse_lean(back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables, custom_kernels):
    """reverse_sweep over the program rows `back` of the records a first full sweep reached, in its (descending)
    order: which records a sweep reaches does not depend on values. Returns the sweep status. Products and
    1 - x (every polynomial's staples) skip the derivative functions' opcode chains."""
    for t in range(back.shape[0]):
        kind = back[t, KIND]
        o = back[t, OP]
        ao = back[t, XA]
        yo = back[t, XY]
        if kind == SCALAR_BINARY:
            bo = back[t, XB]
            g = adj[yo]
            if o == op.MUL:
                da = vals[bo]
                db = vals[ao]
            else:
                da, db = binary_partials(o, vals[ao], vals[bo], vals[yo])
            if back[t, NEED] & 1:
                adj[ao] += g * da
            if back[t, NEED] & 2:
                adj[bo] += g * db
        elif kind == SCALAR_UNARY:
            g = adj[yo]
            if o == op.RSUB_SCALAR:
                adj[ao] -= g       # exactly adj + g * -1.0, unary_derivative's value
            elif g != 0.0:
                adj[ao] += g * unary_derivative(o, vals[ao], vals[yo], const[back[t, REC]])
        elif kind == GENERAL:
            i = back[t, REC]
            need[i] = 1
            status, _, _, _ = reverse_sweep(i, i, i, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base,
                                            tables[0], tables[1], tables[2], tables[3], True, custom_kernels)
            if status != op.OK:
                return status
    return op.OK


@njit(cache=True)
def value_and_grad_lean(prog, back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, n, base, output,
                        tables, custom_kernels):
    """value_and_grad_replay over a lowered trace: (REPLAYED or the failed guard's index, the sweep status)."""
    failed = forward_lean(prog, ops, a, b, aux, off, const, ints, vals, n, base)
    if failed != REPLAYED:
        return failed, op.OK
    adj[:] = 0.0
    adj[off[output]] = 1.0
    return REPLAYED, reverse_lean(back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables,
                                  custom_kernels)


@njit(cache=True, parallel=True)
def replay_rows(ops, a, b, aux, off, const, flags, ints, vals, adj, need, n, base, output, tables, custom_kernels,
                with_grad, status):
    """tg.vmap: replay the trace once per row of `vals` (one row of values per batch element) on all cores."""
    for r in prange(vals.shape[0]):
        if with_grad:
            status[r] = value_and_grad_replay(ops, a, b, aux, off, const, flags, ints, vals[r], adj[r], need[r], n,
                                              base, output, tables, custom_kernels)[0]
        else:
            status[r] = forward_replay(ops, a, b, aux, off, const, ints, vals[r], 0, n, base)
