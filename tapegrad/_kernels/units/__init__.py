"""The units: the family kernels, compiled apart from the loops (see frame.py) and loaded the first time a
program uses one of their operations.

A unit is a module here holding one numba cfunc, `forward` or `backward`, with frame.py's fixed signature, which
calls a record entry point (`<unit>_record_forward` / `_record_backward`) in its kernel module. A family is one
unit per direction, or several where its kernels are large and programs commonly use only some of them (sums
and means apart from the reductions that read values). Importing a unit module compiles its cfunc, or loads it
from numba's disk cache, so the modules are imported only by `load_unit`. They are generated from
BACKWARD_UNITS and FORWARD_UNITS by `python -m tapegrad._kernels.units` (a test keeps them current): numba
caches a cfunc by its source file, so each unit needs a file of its own.

0-d arithmetic runs inline in the sweeps, and a gradient program's or a replay's commonest rows (elementwise
records of one size, contiguous slices, whole sums) inline in the replay loops: a call by address costs more
than such a row's work. Records of those kinds reach a unit only in an eager sweep.
"""
import importlib
import os
import threading

import numpy as np

from .. import opcodes as op
from ..frame import BACKWARD_AT, CUSTOM_KERNELS_AT, FORWARD_AT


def _family(family):
    return tuple(o for o in op.NAMES if o >> 6 == family)


_SUMMED = (op.SUM_ALL, op.SUM_DIM, op.MEAN_ALL, op.MEAN_DIM, op.VAR_MEAN_MEAN, op.STD_MEAN_MEAN)

# unit -> (kernel module, the opcodes it serves)
BACKWARD_UNITS = {
    "unary": ("elementwise", _family(op.UNARY)),
    "binary": ("elementwise", _family(op.BINARY)),
    "sum": ("movement", _SUMMED),
    "reduce": ("movement", tuple(o for o in _family(op.REDUCE) if o not in _SUMMED)),
    "strided": ("movement", _family(op.STRIDED)),
    "gather": ("movement", _family(op.GATHER)),
    "index_put": ("movement", _family(op.INDEX_PUT)),
    "matmul": ("matmul", _family(op.MATMUL)),
    "custom": ("custom", _family(op.CUSTOM)),
    "ternary": ("ternary", _family(op.TERNARY)),
    "order": ("order", _family(op.ORDER)),
    "layout": ("layout", _family(op.LAYOUT)),
    "linalg": ("linalg", _family(op.LINALG)),
    "nn": ("nn", _family(op.NN)),
}
# what a replay runs through units: every family but sources, UNARY (always a program row) and Python functions
FORWARD_UNITS = {
    "binary": ("elementwise", _family(op.BINARY)),
    "reduce": ("movement", _family(op.REDUCE)),
    "strided": ("movement", _family(op.STRIDED)),
    "gather": ("movement", _family(op.GATHER)),
    "index_put": ("movement", _family(op.INDEX_PUT)),
    "matmul": ("matmul", _family(op.MATMUL)),
    "ternary": ("ternary", _family(op.TERNARY)),
    "order": ("order", _family(op.ORDER)),
    "layout": ("layout", _family(op.LAYOUT)),
    "linalg": ("linalg", _family(op.LINALG)),
    "nn": ("nn", _family(op.NN)),
    "guard": ("guard", _family(op.GUARD)),
}
# what tg.compile can replay: sources, UNARY records (always program rows) and whatever has a forward unit
REPLAYABLE_FAMILIES = {op.SOURCE, op.UNARY} | {o >> 6 for _, opcodes in FORWARD_UNITS.values() for o in opcodes}
_DIRECTIONS = {"backward": (BACKWARD_UNITS, BACKWARD_AT), "forward": (FORWARD_UNITS, FORWARD_AT)}
_UNIT_OF = {(direction, o): unit for direction, (table, _) in _DIRECTIONS.items()
            for unit, (_, opcodes) in table.items() for o in opcodes}

MAX_CUSTOM_KERNELS = 1024
# the kernel table every loop receives (frame.py): per opcode, the address of its backward and forward units;
# then custom_op kernels; 0 where nothing is loaded
TABLE = np.zeros(CUSTOM_KERNELS_AT + MAX_CUSTOM_KERNELS, np.int64)
_loaded = {}    # (direction, unit) -> its module (keeps the cfunc, whose address TABLE holds, alive)
_lock = threading.Lock()


def load_unit(direction, unit):
    """Compile, or load from numba's cache, one unit ("backward" or "forward"), and put its address in TABLE at
    every opcode it serves."""
    key = (direction, unit)
    if key in _loaded:
        return
    with _lock:
        if key in _loaded:
            return
        units, at = _DIRECTIONS[direction]
        module = importlib.import_module(f"{__name__}.{unit}_{direction}")
        address = getattr(module, direction).address
        for o in units[unit][1]:
            TABLE[at + o] = address
        _loaded[key] = module


def load(direction, opcode):
    """Load the unit that runs `opcode` in this direction, if it has one."""
    unit = _UNIT_OF.get((direction, int(opcode)))
    if unit is not None:
        load_unit(direction, unit)


def load_all(direction, opcodes):
    """Load this direction's units of all these opcodes."""
    for o in {int(o) for o in opcodes}:
        load(direction, o)


def loaded():
    """The (direction, unit) pairs this process has loaded."""
    return set(_loaded)


def all_units():
    """Every (direction, unit)."""
    return [(direction, unit) for direction, (units, _) in _DIRECTIONS.items() for unit in units]


_HEADER = '''"""The {unit} {direction} unit (see units/__init__.py): {count} opcodes, {what}.
Generated by `python -m tapegrad._kernels.units` from units.{table}; do not edit."""
from numba import cfunc

from ..frame import {imports}
from ..{module} import {unit}_record_{direction}
'''

_FORWARD = '''

@cfunc(FORWARD_SIGNATURE, cache=True)
def forward(frame, i):
    try:
        return {unit}_record_forward(open_frame(frame), i)
    except Exception:     # a cfunc cannot raise: the loop reports the failure
        return UNIT_FAILED
'''

_BACKWARD = '''

@cfunc(BACKWARD_SIGNATURE, cache=True)
def backward(frame, i, fresh, grads):
    try:
        {unit}_record_backward(open_frame(frame), i, fresh, grads)
    except Exception:     # a cfunc cannot raise: the loop reports the failure
        return UNIT_FAILED
    return UNIT_OK
'''


def unit_source(direction, unit):
    """The source of a unit's module."""
    units, _ = _DIRECTIONS[direction]
    module, opcodes = units[unit]
    names = sorted({op.NAMES[o] for o in opcodes if op.NAMES[o]})
    what = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "") if names else "custom ops"
    if direction == "forward":
        imports, body = "FORWARD_SIGNATURE, UNIT_FAILED, open_frame", _FORWARD
    else:
        imports, body = "BACKWARD_SIGNATURE, UNIT_FAILED, UNIT_OK, open_frame", _BACKWARD
    return (_HEADER.format(unit=unit, direction=direction, count=len(opcodes), what=what,
                           table=direction.upper() + "_UNITS", imports=imports, module=module)
            + body.format(unit=unit))


def unit_path(direction, unit):
    return os.path.join(os.path.dirname(__file__), f"{unit}_{direction}.py")


def write_units():
    """Write every unit module whose source is not current; returns the paths written."""
    written = []
    for direction, unit in all_units():
        path = unit_path(direction, unit)
        source = unit_source(direction, unit)
        try:
            with open(path) as f:
                if f.read() == source:
                    continue
        except OSError:
            pass
        with open(path, "w") as f:
            f.write(source)
        written.append(path)
    return written
