"""Forward-only kernels of the GUARD family (tg.compile): comparisons, detach, and the guards themselves."""
from numba import njit

from . import opcodes as op
from .common import size_at
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
