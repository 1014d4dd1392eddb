"""The interface every workload module implements, and helpers shared by workloads.

A workload module defines:

    NAME: str                 # as used by --only and in the table
    DESCRIPTION: str          # one line
    CASES: tuple[str, ...]    # table rows; the first is the headline case
    RTOL: float               # optional, default DEFAULT_RTOL (checks.py)
    IMPLS: dict[str, type]    # system name (systems.py) -> implementation class

and optionally:

    configure(smoke: bool)    # called before anything else: shrink sizes for --smoke
    repeats(case, mode, default) -> int | None  # timed repeats of a slow case; None skips it
    metrics(impls, rows) -> list[dict]    # extra measurements, each {system, metric, value, unit};
                                          # rows: this workload's timed results

An implementation class is built as Impl(lib), lib being the system's imported module
(e.g. torch or tapegrad), and provides:

    result() -> (value, {name: ndarray})  # fresh computation, compared with torch eager
    setup(case) -> Timed                  # state built here is not timed

Workloads must not import any system's module themselves; they use lib.
"""
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Timed:
    """What one timed call runs.

    Plain mode (per_call False, no prepare): fn() is called n times back to back under one
    clock reading. Per-call mode (per_call True, or a prepare given): each call is clocked on
    its own, arg = prepare() runs untimed before it and fn(arg) (or fn()) is timed; whatever
    fn returns is freed after the clock stops.
    """

    fn: Callable[..., Any]
    prepare: Callable[[], Any] | None = None
    per_call: bool = False

    @property
    def isolated(self) -> bool:
        """Whether calls are clocked one by one."""
        return self.per_call or self.prepare is not None


def tensor_args(lib, *arrays, requires_grad=False):
    """float64 tensors of `lib` (torch-like API) made from numpy arrays."""
    return [lib.tensor(a, dtype=lib.float64, requires_grad=requires_grad) for a in arrays]


def compiled_value_and_grad(tg, fn, argnums):
    """tg.compile(tg.value_and_grad(fn, argnums)): the compiled system's way of getting gradients."""
    return tg.compile(tg.value_and_grad(fn, argnums=argnums))


def as_array(x) -> np.ndarray:
    """A float64 numpy copy of a scalar, array, or tensor exposing .numpy()."""
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.array(x, dtype=np.float64, copy=True)
