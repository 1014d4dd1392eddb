"""Calling a user's compiled kernel (tapegrad.custom_op) from inside the reverse sweep: the CUSTOM unit.

User kernels are registered after the sweep and the unit are compiled, so they are reached through function
pointers (in the kernel table, from frame.CUSTOM_KERNELS_AT on) with one fixed C signature,
void(double *vals, double *adj, int64 *desc), where desc describes where each input and the output live (see
describe_custom). A new custom op therefore never recompiles anything.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .common import params_at
from .frame import CUSTOM_KERNELS_AT


@intrinsic
def call_kernel(typingctx, address, vals, adj, desc):
    """Call the C function at `address` with the data pointers of three arrays."""
    sig = types.void(types.int64, vals, adj, desc)

    def codegen(context, builder, signature, args):
        addr, v, a, d = args
        double_ptr = ir.DoubleType().as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [double_ptr, double_ptr, ir.IntType(64).as_pointer()])
        fn = builder.inttoptr(addr, fnty.as_pointer())
        pointers = [context.make_array(t)(context, builder, x).data
                    for t, x in zip(signature.args[1:], (v, a, d))]
        builder.call(fn, pointers)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def describe_custom(ints, aux, off, base, i, a, b, extra_at, n_extra, total):
    """[len(desc), len(vals), n_inputs, (off, ndim, *dims) per input, then (off, ndim, *dims) of the output]."""
    n_in = (1 if a >= 0 else 0) + (1 if b >= 0 else 0) + n_extra
    size = 3
    gids = np.empty(n_in, dtype=np.int64)
    k = 0
    if a >= 0:
        gids[k] = a
        k += 1
    if b >= 0:
        gids[k] = b
        k += 1
    for e in range(n_extra):
        gids[k] = ints[extra_at + e]
        k += 1
    for k in range(n_in):
        size += 2 + ints[aux[gids[k] - base]]
    size += 2 + ints[aux[i]]
    desc = np.empty(size, dtype=np.int64)
    desc[0] = size
    desc[1] = total
    desc[2] = n_in
    w = 3
    for k in range(n_in + 1):
        p = aux[gids[k] - base] if k < n_in else aux[i]
        desc[w] = off[gids[k] - base] if k < n_in else off[i]
        nd = ints[p]
        desc[w + 1] = nd
        for d in range(nd):
            desc[w + 2 + d] = ints[p + 1 + d]
        w += 2 + nd
    return desc, gids


@njit(cache=True)
def custom_record_backward(f, i, fresh, grads):
    """The CUSTOM unit's backward: run the vjp kernel of the custom op recorded at i. It adds into every input's
    adjoint (constants' too, which nothing reads); the sweep marks the inputs."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    p = params_at(ints, aux[i])
    n_extra = ints[p]
    kind = ints[p + 1 + n_extra]
    desc, gids = describe_custom(ints, aux, off, base, i, a[i], b[i], p + 1, n_extra, vals.shape[0])
    call_kernel(kernels[CUSTOM_KERNELS_AT + kind], vals, adj, desc)
