"""The reverse sweep: one compiled loop over tape records, one branch per family of operations."""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .custom import custom_backward
from .elementwise import binary_backward, binary_partials, unary_backward, unary_derivative
from .layout import layout_backward
from .linalg import linalg_backward
from .matmul import matmul_backward
from .nn import nn_backward
from .movement import (copy_slices_backward, gather_backward, reduce_backward, strided_backward,
                       unbroadcast_add)
from .ternary import ternary_backward
from .order import order_backward


@njit(cache=True, inline="always")
def _stale(flags, p):
    return p >= 0 and (flags[p] & op.FLAG_STALE) != 0


@njit(cache=True, error_model="numpy")   # IEEE inf/nan in the inlined 0-d derivatives, as PyTorch
def reverse_sweep(start, lowest, stop, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base,
                  reads_a, reads_b, reads_y, saves, retain, custom_kernels):
    """Propagate adjoints from records marked in `need`, from physical index `start` down to the lowest
    record marked so far (`lowest`, lowered as inputs are marked), so the cost follows the graph, not the tape,
    and never below `stop` (0 for a whole sweep; tg.compile's lean sweep passes start to run one record).

    Returns (status, record, culprit, lowest): OK, or an error code with the record that failed and the record
    whose saved value is missing or stale, or ERR_PYFUNC asking the caller to run a Python backward and resume.
    """
    i = start + 1
    while i > lowest and i > stop:
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
        # 0-d records inline: a kernel call passing arrays costs more than the arithmetic (NRT refcounts)
        if aux[i] == 0 and fam == op.UNARY:
            g = adj[yo]
            if g != 0.0:
                xo = off[pa]
                adj[xo] += g * unary_derivative(o, vals[xo], vals[yo], const[i])
        elif aux[i] == 0 and fam == op.BINARY:
            ao = off[pa]
            bo = off[pb]
            da, db = binary_partials(o, vals[ao], vals[bo], vals[yo])
            g = adj[yo]
            if need_a:
                adj[ao] += g * da
            if need_b:
                adj[bo] += g * db
        elif fam == op.UNARY:
            unary_backward(o, off[pa], yo, size_at(ints, aux[i]), const[i], vals, adj)
        elif fam == op.BINARY:
            binary_backward(o, ints, aux[i], aux[pa], aux[pb], off[pa], off[pb], yo, need_a, need_b, vals, adj)
        elif fam == op.REDUCE:
            # the keepdim shape of the output follows its own shape in the params
            reduce_backward(o, ints, aux[pa], params_at(ints, aux[i]), off[pa], yo, const[i], vals, adj)
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
