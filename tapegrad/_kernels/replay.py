"""tg.compile's replay: recompute a recorded trace forward on new input values, then run the reverse sweep.

The forward replay is the reverse sweep's mirror: one loop over the records in order, the commonest program rows
inline, every other record through its family's forward unit (frame.py, units/), kept beside the backward one.
Guard records check that values which steered Python while recording are still the same; the first that fails
stops the replay. So does a unit that fails (a singular matrix, say): the caller records the call again eagerly,
which raises the error where it belongs.
"""
import numpy as np
from numba import carray, njit, prange

from . import opcodes as op
from .common import copy_run
from .elementwise import binary_same_size_forward, binary_value, unary_forward, unary_value
from .frame import FORWARD_AT, UNIT_OK, address_as, call_forward, make_frame
from .movement import pairwise_sum, run_forward
from .program import (KIND, OP, SCALAR_BINARY, SCALAR_UNARY, SIZE, SKIP, VECTOR_BINARY, VECTOR_SLICE,
                      VECTOR_SUM, VECTOR_UNARY, XA, XB, XY, runs_from_rows)
from .sweep import program_rows_backward, program_sweep, reverse_sweep

REPLAYED = -1   # forward_replay's result when every guard held


@njit(cache=True, inline="always")
def forward_row(prog, i, const, vals):
    """Recompute record i straight from its program row (program.py); False for a GENERAL row, which needs the
    record's family kernel."""
    kind = prog[i, KIND]
    if kind == SCALAR_BINARY:
        vals[prog[i, XY]] = binary_value(prog[i, OP], vals[prog[i, XA]], vals[prog[i, XB]])
    elif kind == SCALAR_UNARY:
        vals[prog[i, XY]] = unary_value(prog[i, OP], vals[prog[i, XA]], const[i])
    elif kind == VECTOR_UNARY:
        unary_forward(prog[i, OP], prog[i, XA], prog[i, XY], prog[i, SIZE], const[i], vals)
    elif kind == VECTOR_BINARY:
        binary_same_size_forward(prog[i, OP], prog[i, XA], prog[i, XB], prog[i, XY], prog[i, SIZE], vals)
    elif kind == VECTOR_SLICE:
        run_forward(prog[i, XA], prog[i, XY], prog[i, SIZE], vals)
    elif kind == VECTOR_SUM:
        vals[prog[i, XY]] = pairwise_sum(vals, prog[i, XA], prog[i, SIZE]) * const[i]
    elif kind != SKIP:
        return False
    return True


_NO_FLAGS = np.zeros(0, np.uint8)
_NO_ADJOINTS = np.zeros(0)


@njit(cache=True)
def forward_replay(prog, ops, a, b, aux, off, const, ints, vals, n, base, kernels):
    """Recompute records [0, n) in order, the commonest kinds straight from the trace's program rows (program.py),
    the rest through their family units (`kernels`: units.TABLE, loaded for the trace's families); return
    REPLAYED, or the index of the first guard that failed (or record whose unit failed)."""
    frame = make_frame(ops, a, b, aux, off, const, _NO_FLAGS, ints, vals, _NO_ADJOINTS, _NO_FLAGS, kernels, base)
    for i in range(n):
        if forward_row(prog, i, const, vals):
            continue
        address = kernels[FORWARD_AT + ops[i]]
        if address == 0 or call_forward(address, frame, i) != UNIT_OK:
            return i     # a guard failed, or a unit did (or is not loaded: tg.compile loads a trace's units)
    return REPLAYED


@njit(cache=True)
def reverse_from(outputs, seeds, seed_at, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base,
                 tables, kernels):
    """Zero the adjoints, seed output k's adjoint with seeds[seed_at[k]:seed_at[k+1]], and sweep down to 0; returns
    the sweep's status and record (ERR_UNIT: load that record's unit and call again)."""
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
    status, i, culprit, lowest = reverse_sweep(start, start, ops, a, b, aux, off, const, flags, ints, vals, adj,
                                               need, base, tables, True, kernels)
    return status, i


@njit(cache=True, inline="always")   # in value_and_grad_table and replay_rows: a call boundary less (~0.25 us)
def value_and_grad_replay(prog, back, zero, ops, a, b, aux, off, const, flags, ints, vals, adj, need, n, base,
                          output, tables, kernels, rows_only):
    """Forward replay, then the gradient of the scalar record `output`: one compiled call per evaluation.
    `back`: the trace's gradient program (program.gradient_program of the records sweep.reach finds), with `zero`,
    the adjoint spans it needs zeroed. `rows_only` (program.runs_from_rows): both programs run straight from their
    rows, here, without calling the forward replay or the sweep. Returns (REPLAYED or the failed guard's index,
    the sweep status)."""
    if rows_only:
        for i in range(n):
            forward_row(prog, i, const, vals)
    else:
        failed = forward_replay(prog, ops, a, b, aux, off, const, ints, vals, n, base, kernels)
        if failed != REPLAYED:
            return failed, op.OK
    for k in range(zero.shape[0]):
        adj[zero[k, 0]:zero[k, 1]] = 0.0
    adj[off[output]] = 1.0
    if rows_only:
        t = 0
        while t < back.shape[0]:
            t = program_rows_backward(back, t, const, vals, adj) + 1    # it stops only at SKIP rows (sources)
        return REPLAYED, op.OK
    return REPLAYED, program_sweep(back, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables,
                                   kernels)


# value_and_grad_table's table: per array argument of value_and_grad_replay, in its order, (address, rows, columns);
# then n, base, output, where in vals the kernel copies its input x (-1: the caller copies every input), and
# whether the trace runs from its program rows only (program.runs_from_rows)
_TABLE_ARRAYS = ((np.int64, 2), (np.int64, 2), (np.int64, 2), (np.int32, 1), (np.int64, 1), (np.int64, 1),
                 (np.int64, 1), (np.int64, 1), (np.float64, 1), (np.uint8, 1), (np.int64, 1), (np.float64, 1),
                 (np.float64, 1), (np.uint8, 1), (np.uint8, 2), (np.int64, 1))
_TABLE_SCALARS = 3 * len(_TABLE_ARRAYS)
TABLE_X_AT = _TABLE_SCALARS + 3
_TABLE_ROWS_ONLY = _TABLE_SCALARS + 4


def pack_arguments(args, x_at=-1):
    """value_and_grad_replay's arguments as value_and_grad_table's table. The table holds raw addresses: whoever
    keeps it must keep `args` alive too."""
    arrays = args[:14] + args[17:]
    table = np.zeros(_TABLE_ROWS_ONLY + 1, np.int64)
    for k, (x, (dtype, ndim)) in enumerate(zip(arrays, _TABLE_ARRAYS)):
        if x.dtype != dtype or x.ndim != ndim or not x.flags.c_contiguous:
            raise TypeError(f"value_and_grad_table: argument {k} is a {x.ndim}-d {x.dtype} array"
                            f"{'' if x.flags.c_contiguous else ' (not C-contiguous)'}, the table holds {ndim}-d "
                            f"C-contiguous {np.dtype(dtype)}")
        table[3 * k] = x.ctypes.data
        table[3 * k + 1:3 * k + 1 + ndim] = x.shape
    table[_TABLE_SCALARS:TABLE_X_AT] = args[14:17]
    table[TABLE_X_AT] = x_at
    table[_TABLE_ROWS_ONLY] = runs_from_rows(args[0], args[1])
    return table


@njit(cache=True, inline="always")
def _vector(table, k, dtype):
    return carray(address_as(table[3 * k], dtype), (table[3 * k + 1],))


@njit(cache=True, inline="always")
def _matrix(table, k, dtype):
    return carray(address_as(table[3 * k], dtype), (table[3 * k + 1], table[3 * k + 2]))


@njit(cache=True)
def value_and_grad_table(table, x):
    """value_and_grad_replay with its arguments in one table (pack_arguments): numba unboxes every array argument
    of a call (~35 ns each, 0.6 us for value_and_grad_replay's 16, a fifth of a small trace's kernel), and a table
    is one. Copies the input x (any strides) into vals first, unless the table says the caller did. Returns
    REPLAYED, the failed guard's index (>= 0), or REPLAYED - the sweep's status when it failed."""
    vals = _vector(table, 11, np.float64)
    x_at = table[TABLE_X_AT]
    if x_at >= 0:
        copy_run(vals, x_at, x, 0, x.shape[0])
    s = _TABLE_SCALARS
    failed, status = value_and_grad_replay(
        _matrix(table, 0, np.int64), _matrix(table, 1, np.int64), _matrix(table, 2, np.int64),
        _vector(table, 3, np.int32), _vector(table, 4, np.int64), _vector(table, 5, np.int64),
        _vector(table, 6, np.int64), _vector(table, 7, np.int64), _vector(table, 8, np.float64),
        _vector(table, 9, np.uint8), _vector(table, 10, np.int64), vals, _vector(table, 12, np.float64),
        _vector(table, 13, np.uint8), table[s], table[s + 1], table[s + 2], _matrix(table, 14, np.uint8),
        _vector(table, 15, np.int64), table[_TABLE_ROWS_ONLY] != 0)
    if failed != REPLAYED or status == op.OK:
        return failed
    return REPLAYED - status


@njit(cache=True, parallel=True)
def replay_rows(prog, back, zero, ops, a, b, aux, off, const, flags, ints, template, inputs, load, results, store, n,
                base, output, tables, kernels, with_grad, rows_only, chunks, status, adj_fill):
    """tg.vmap: replay the trace once per row on all cores. Each of `chunks` chunks of rows works in its own
    cache-sized scratch: per row, `template` (the trace's values with the unmapped arguments loaded) is copied in,
    then each mapped argument's row: load[k] = (place in vals, start in `inputs`, length), row r's values at
    start + r * length. After the replay, store[k] = (0 vals / 1 adjoints / 2 zeros, place, start in `results`,
    length) copies the row's outputs out the same way. status[r]: REPLAYED or the failed guard's index.
    The gradient program writes or zeroes every adjoint it reads, so `adj_fill` only matters to tests (nan)."""
    rows = status.shape[0]
    per = (rows + chunks - 1) // chunks
    for c in prange(chunks):
        vals = np.empty_like(template)
        adj = np.full(template.shape[0] if with_grad else 1, adj_fill)
        need = np.zeros(max(n, 1) if with_grad else 1, np.uint8)
        for r in range(c * per, min(rows, (c + 1) * per)):
            copy_run(vals, 0, template, 0, template.shape[0])
            for k in range(load.shape[0]):
                o, start, length = load[k, 0], load[k, 1] + r * load[k, 2], load[k, 2]
                copy_run(vals, o, inputs, start, length)
            if with_grad:
                failed = value_and_grad_replay(prog, back, zero, ops, a, b, aux, off, const, flags, ints, vals,
                                               adj, need, n, base, output, tables, kernels, rows_only)[0]
            else:
                failed = forward_replay(prog, ops, a, b, aux, off, const, ints, vals, n, base, kernels)
            status[r] = failed
            if failed != REPLAYED:
                continue
            for k in range(store.shape[0]):
                o, start, length = store[k, 1], store[k, 2] + r * store[k, 3], store[k, 3]
                if store[k, 0] == 0:
                    copy_run(results, start, vals, o, length)
                elif store[k, 0] == 1:
                    copy_run(results, start, adj, o, length)
                else:
                    results[start:start + length] = 0.0
