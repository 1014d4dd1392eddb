"""The one interface between the loops (sweep, replay, vmap) and the family units (units/).

A family's forward and backward kernels are compiled apart from the loops, each into a C function of one fixed
signature, and the loops call them by address (units.TABLE). numba compiles a function together with every
jitted function it calls, so a loop that called the families directly would compile all of them, whatever the
program uses, and again inside each loop that calls it. A call by address links nothing.

A unit sees the tape through a frame: the addresses and lengths of the tape's buffers in one int64 array,
written once per loop call (make_frame) and opened into arrays again by the unit (open_frame).
"""
import numpy as np
from llvmlite import ir
from numba import carray, njit, types
from numba.core.extending import intrinsic

# the frame's arrays, in order, each as (address, length); then the tape's base gid
FRAME_ARRAYS = (np.int32, np.int64, np.int64, np.int64, np.int64, np.float64, np.uint8, np.int64, np.float64,
                np.float64, np.uint8, np.int64)   # ops a b aux off const flags ints vals adj need kernel-table
FRAME_BASE = 2 * len(FRAME_ARRAYS)
FRAME_SIZE = FRAME_BASE + 1
# the kernel table (units.TABLE), indexed by opcode: the address of the backward unit serving opcode o at
# BACKWARD_AT + o, of its forward unit at FORWARD_AT + o (0: not loaded, or none); custom_op kernels from
# CUSTOM_KERNELS_AT on (opcodes are family * 64 + index, below 1024)
BACKWARD_AT, FORWARD_AT, CUSTOM_KERNELS_AT = 0, 1024, 2048

# a unit's C signatures: forward(frame, record) -> status; backward(frame, record, fresh bits, input bits) ->
# status, where the input bits say which of the record's inputs a and b take a gradient (1: a, 2: b) and the
# fresh bits which of them the record writes first in this sweep (FRESH_A / FRESH_B: store, not add)
FORWARD_SIGNATURE = types.int64(types.CPointer(types.int64), types.int64)
BACKWARD_SIGNATURE = types.int64(types.CPointer(types.int64), types.int64, types.int64, types.int64)
# a gradient program's bits (program.py) for a row that is the first to write its input a's or b's adjoint in the
# sweep: the kernel stores instead of adding
FRESH_A, FRESH_B = 4, 8
# unit statuses: a forward's GUARD_FAILED is a guard that no longer holds; FAILED is a kernel that raised (a
# singular matrix, say), which a cfunc cannot pass on as an exception
UNIT_OK, UNIT_GUARD_FAILED, UNIT_FAILED = 0, 1, 2


@intrinsic
def address_as(typingctx, address, dtype):
    """A pointer to `dtype` values at an integer address."""
    pointer = types.CPointer(dtype.instance_type)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))
    return pointer(types.int64, dtype), codegen


@njit(cache=True, inline="always")
def _put(frame, k, x):
    frame[2 * k] = x.ctypes.data
    frame[2 * k + 1] = x.shape[0]


@njit(cache=True, inline="always")
def make_frame(ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base):
    """The frame of these buffers (they must outlive every unit call made with it)."""
    frame = np.empty(FRAME_SIZE, np.int64)
    _put(frame, 0, ops)
    _put(frame, 1, a)
    _put(frame, 2, b)
    _put(frame, 3, aux)
    _put(frame, 4, off)
    _put(frame, 5, const)
    _put(frame, 6, flags)
    _put(frame, 7, ints)
    _put(frame, 8, vals)
    _put(frame, 9, adj)
    _put(frame, 10, need)
    _put(frame, 11, kernels)
    frame[FRAME_BASE] = base
    return frame


@njit(cache=True, inline="always")
def _array(frame, k, dtype):
    return carray(address_as(frame[2 * k], dtype), (frame[2 * k + 1],))


@njit(cache=True, inline="always")
def open_frame(frame_pointer):
    """The tape's buffers behind a frame: (ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernel
    table, base)."""
    frame = carray(frame_pointer, (FRAME_SIZE,))
    return (_array(frame, 0, np.int32), _array(frame, 1, np.int64), _array(frame, 2, np.int64),
            _array(frame, 3, np.int64), _array(frame, 4, np.int64), _array(frame, 5, np.float64),
            _array(frame, 6, np.uint8), _array(frame, 7, np.int64), _array(frame, 8, np.float64),
            _array(frame, 9, np.float64), _array(frame, 10, np.uint8), _array(frame, 11, np.int64),
            frame[FRAME_BASE])


@njit(cache=True, inline="always")
def inputs_of(a, b, i, base):
    """The physical indices of record i's inputs a and b (-1 where it has none)."""
    return (a[i] - base if a[i] >= 0 else -1), (b[i] - base if b[i] >= 0 else -1)


def _call(typingctx, address, frame, scalars):
    n = len(scalars)
    sig = types.int64(types.int64, frame, *scalars)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(i64, [i64.as_pointer()] + [i64] * n)
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        data = context.make_array(signature.args[1])(context, builder, args[1]).data
        values = [context.cast(builder, x, t, types.int64) for x, t in zip(args[2:], signature.args[2:])]
        return builder.call(fn, [data] + values)
    return sig, codegen


@intrinsic
def call_forward(typingctx, address, frame, i):
    """Call the forward unit at `address` on record i of the frame's tape; returns its status."""
    return _call(typingctx, address, frame, (i,))


@intrinsic
def call_backward(typingctx, address, frame, i, fresh, grads):
    """Call the backward unit at `address` on record i of the frame's tape; returns its status."""
    return _call(typingctx, address, frame, (i, fresh, grads))
