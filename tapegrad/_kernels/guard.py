"""Forward-only kernels of the GUARD family (tg.compile): comparisons, detach, and the guards themselves."""
from numba import njit

from . import opcodes as op
from .common import size_at
from .frame import UNIT_GUARD_FAILED, UNIT_OK, inputs_of
from .elementwise import binary_forward, compare_value


@njit(cache=True)
def guard_forward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, c, vals):
    """Replay one GUARD-family record; returns False when a guard fails."""
    n = size_at(ints, y_aux)
    if o == op.GUARD_EQUAL:
        for k in range(n):
            x = vals[ao + k]
            v = vals[yo + k]
            if x != v and not (x != x and v != v):
                return False
        return True
    if o == op.DETACH:
        for k in range(n):
            vals[yo + k] = vals[ao + k]
    elif o == op.IS_NAN:
        for k in range(n):
            x = vals[ao + k]
            vals[yo + k] = 1.0 if x != x else 0.0
    elif o == op.NOT:
        for k in range(n):
            vals[yo + k] = 1.0 if vals[ao + k] == 0.0 else 0.0
    elif b_aux < 0:
        for k in range(n):
            vals[yo + k] = compare_value(o, vals[ao + k], c)
    else:
        binary_forward(o, ints, y_aux, a_aux, b_aux, ao, bo, yo, vals)
    return True


@njit(cache=True)
def guard_record_forward(f, i):
    """The GUARD unit (forward only): UNIT_GUARD_FAILED when record i is a guard that no longer holds."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    holds = guard_forward(ops[i], ints, aux[i], aux[pa], aux[pb] if pb >= 0 else -1, off[pa],
                          off[pb] if pb >= 0 else 0, off[i], const[i], vals)
    return UNIT_OK if holds else UNIT_GUARD_FAILED
