"""Anomaly mode, as in PyTorch: detect_anomaly() and set_detect_anomaly(mode) turn it on, globally (for every
thread, like PyTorch's). While it is on, each record keeps the Python stack of the call that made it
(Tape.note_forward_call), and backward sweeps the tape one record at a time, checking after each that the
gradients it wrote hold no nan. A backward that fails names the function and shows the forward call that
recorded it, as a warning, before the error. While it is off, recording pays one test per record and backward
nothing.
"""
import functools
import os
import sys
import traceback
import warnings

import numpy as np

from .. import _tape
from .._kernels import opcodes as op
from .._kernels.sweep import sweep_record
from .graph import Node, Records, _segment_of

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled",
           "set_anomaly_enabled"]

_check_nan = True
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
NO_FORWARD_CALL = ("No forward pass information available. Enable detect anomaly during forward pass for more "
                   "information.")


def is_anomaly_enabled():
    """Whether anomaly mode is on."""
    return _tape.anomaly_mode


def is_anomaly_check_nan_enabled():
    """Whether anomaly mode checks gradients for nan."""
    return _check_nan


def set_anomaly_enabled(enabled, check_nan=True):
    """Turn anomaly mode on or off (what detect_anomaly and set_detect_anomaly call)."""
    global _check_nan
    _tape.anomaly_mode = bool(enabled)
    _check_nan = bool(check_nan)


class detect_anomaly:
    """Context manager and decorator that turns anomaly mode on inside: a backward that produces nan raises
    naming the function, and a failing backward shows the forward call that recorded the failing operation."""

    def __init__(self, check_nan=True):
        self.prev = is_anomaly_enabled()
        self.check_nan = check_nan
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only be "
                      "enabled for debugging.", stacklevel=2)

    def __enter__(self):
        set_anomaly_enabled(True, self.check_nan)
        return self

    def __exit__(self, *exc):
        set_anomaly_enabled(self.prev, self.prev_check_nan)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """Turn anomaly mode on or off; takes effect on construction and, used as a context manager, is restored when
    the with-block exits."""

    def __init__(self, mode, check_nan=True):
        self.prev = is_anomaly_enabled()
        self.prev_check_nan = is_anomaly_check_nan_enabled()
        set_anomaly_enabled(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        set_anomaly_enabled(self.prev, self.prev_check_nan)
        return False


def forward_call_stack():
    """The Python stack of the caller, without tapegrad's own frames at its end (so it ends at the user's line)."""
    stack = traceback.extract_stack(sys._getframe(2))
    end = len(stack)
    while end > 1 and stack[end - 1].filename.startswith(_PACKAGE):
        end -= 1
    return stack[:end]


def warn_forward_call(tape, gid, name):
    """PyTorch's warning for a failing backward in anomaly mode: the function and the forward call behind it."""
    stack = tape.forward_calls.get(gid)
    if stack is None:
        text = f"Error detected in {name}. {NO_FORWARD_CALL}"
    else:
        text = f"Error detected in {name}. Traceback of forward call that caused the error:\n" + "".join(
            traceback.format_list(stack)).rstrip("\n")
    warnings.warn(text, stacklevel=_caller_level())


def _caller_level():
    """The stacklevel of the first frame outside tapegrad (the user's backward() call), for warnings.warn."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def grad_fn_name(tape, gid):
    """The grad_fn name PyTorch shows for record gid (custom ops included)."""
    return Node(_segment_of(tape, gid), gid).name()


def check_gradients(tape, i, adj, need, input_gids=None):
    """Raise PyTorch's error if the gradients record i (physical index) just wrote into its inputs' adjoints hold
    a nan; `input_gids`: its inputs, for a Python Function's record (else read from the record)."""
    records = Records.of_tape(tape)
    gid = tape.base + i
    if input_gids is None:
        input_gids = records.inputs(gid)
    for k, g in enumerate(input_gids):
        if g is None or g < 0 or not records.has(g):
            continue
        p = g - tape.base
        if not need[p] or tape.ops[p] == op.CONST:
            continue
        o = int(tape.off[p])
        size = int(np.prod(records.shape(g)))
        if np.isnan(adj[o:o + size]).any():
            name = grad_fn_name(tape, gid)
            warn_forward_call(tape, gid, name)
            raise RuntimeError(f"Function '{name}' returned nan values in its {k}th output.")


def stepwise_sweep(tape):
    """A stand-in for reverse_sweep (same arguments and results) that sweeps one record at a time
    (sweep.sweep_record): after each record it checks the gradients that record wrote, and on an error it shows
    the failing record's forward call."""
    check_nan = _check_nan

    def sweep(start, lowest, ops, a, b, aux, off, const, flags, ints, vals, adj, need, base, tables, retain,
              kernels):
        i = start
        while i >= 0 and i >= lowest:
            if need[i]:
                status, culprit, lowest = sweep_record(i, lowest, ops, a, b, aux, off, const, flags, ints, vals,
                                                       adj, need, base, tables, retain, kernels)
                if status in (op.ERR_PYFUNC, op.ERR_UNIT):      # not errors: the caller acts and resumes at i
                    return status, i, culprit, lowest
                if status != op.OK:
                    warn_forward_call(tape, base + i, grad_fn_name(tape, base + i))
                    return status, i, culprit, lowest
                if check_nan and ops[i] >> 6 not in (op.SOURCE, op.GUARD):
                    check_gradients(tape, i, adj, need)
            i -= 1
        return op.OK, -1, -1, lowest
    return sweep
