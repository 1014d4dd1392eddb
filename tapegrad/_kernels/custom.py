"""Calling a user's compiled kernel (tapegrad.custom_op) from inside the reverse sweep.

The sweep is compiled and cached once; user kernels are registered later, so they are reached through
function pointers with one fixed C signature, void(double *vals, double *adj, int64 *desc), where desc
describes where each input and the output live (see describe_custom). A new custom op therefore never
recompiles the sweep.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .common import params_at


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
def custom_backward(kernels, ints, aux, off, ops, base, i, a, b, vals, adj, need, const_op):
    """Run the vjp kernel of the custom op recorded at i, mark its non-constant inputs as needed, and return
    the lowest index it marked."""
    p = params_at(ints, aux[i])
    n_extra = ints[p]
    kind = ints[p + 1 + n_extra]
    desc, gids = describe_custom(ints, aux, off, base, i, a, b, p + 1, n_extra, vals.shape[0])
    call_kernel(kernels[kind], vals, adj, desc)
    lowest = i
    for k in range(gids.shape[0]):
        q = gids[k] - base
        lowest = min(lowest, q)      # the kernel wrote every input's adjoint, constants' too
        if ops[q] != const_op:
            need[q] = 1
    return lowest
