"""Render array values exactly the way PyTorch 2.x prints tensors.

Pure numpy: :func:`format_tensor` turns the values of a tensor into the text of
``repr(torch_tensor)`` (``tensor([1., 2.], grad_fn=<AddBackward0>)``). The
caller decides which ``key=value`` suffixes to show; :func:`shows_dtype` tells
when PyTorch would show ``dtype=...``.

Print options (precision, threshold, edgeitems, linewidth, sci_mode) mirror
``torch.set_printoptions`` and live in :data:`PRINT_OPTS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "PRINT_OPTS",
    "PrintOptions",
    "format_size",
    "format_tensor",
    "get_printoptions",
    "printoptions",
    "set_printoptions",
    "shows_dtype",
]


@dataclasses.dataclass
class PrintOptions:
    """Printing options, with PyTorch's defaults."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = PrintOptions()

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """Set print options; same arguments and semantics as ``torch.set_printoptions``.

    As in PyTorch, ``sci_mode`` is always reset (``None`` means automatic).
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"unknown print profile {profile!r}")
        for key, value in _PROFILES[profile].items():
            setattr(PRINT_OPTS, key, value)
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Return the current print options as keyword arguments for :func:`set_printoptions`."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs: Any) -> Iterator[None]:
    """Temporarily change print options (arguments as :func:`set_printoptions`)."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


def format_size(shape: Sequence[int]) -> str:
    """Format a shape like the inside of ``torch.Size``: ``(2, 3)`` -> ``"[2, 3]"``."""
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def shows_dtype(dtype: Any, empty: bool, default_dtype: Any = np.float32) -> bool:
    """Whether PyTorch's repr would include a ``dtype=...`` suffix.

    Non-empty tensors hide the default float dtype, its complex counterpart,
    int64 and bool; empty tensors hide only the default float dtype.
    """
    dtype = np.dtype(dtype)
    default_dtype = np.dtype(default_dtype)
    if empty:
        return dtype != default_dtype
    default_complex = np.dtype(
        np.complex128 if default_dtype == np.float64 else np.complex64
    )
    return dtype not in (default_dtype, default_complex, np.dtype(np.int64), np.dtype(np.bool_))


class _Formatter:
    """Chooses the number style and common column width for one set of values."""

    def __init__(self, values: np.ndarray, floating: bool, opts: PrintOptions) -> None:
        self.floating = floating
        self.precision = opts.precision
        self.int_mode = True
        self.sci_mode = False
        self.width = 1

        flat = values.reshape(-1)
        if not floating:
            for v in flat.tolist():
                self.width = max(self.width, len(f"{v}"))
            return

        vals = flat.astype(np.float64)
        nonzero = vals[np.isfinite(vals) & (vals != 0)]
        if nonzero.size == 0:
            # PyTorch leaves every mode at its default here (even a forced sci_mode).
            return
        absolute = np.abs(nonzero)
        lo, hi = float(absolute.min()), float(absolute.max())
        self.int_mode = bool(np.all(nonzero == np.ceil(nonzero)))
        if opts.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = bool(opts.sci_mode)

        p = self.precision
        if self.sci_mode:
            lengths = (len(f"{v:.{p}e}") for v in nonzero.tolist())
        elif self.int_mode:
            lengths = (len(f"{v:.0f}") + 1 for v in nonzero.tolist())  # + 1 for the "."
        else:
            lengths = (len(f"{v:.{p}f}") for v in nonzero.tolist())
        self.width = max(self.width, max(lengths))

    def format(self, value: Any) -> str:
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:{self.width}.{self.precision}e}"
        elif self.int_mode:
            text = f"{value:.0f}"
            if math.isfinite(value):
                text += "."
        else:
            text = f"{value:.{self.precision}f}"
        return text.rjust(self.width)


class _ComplexFormatter:
    """Formats complex values with separate real and imaginary formatters."""

    def __init__(self, values: np.ndarray, opts: PrintOptions) -> None:
        self.real = _Formatter(values.real, True, opts)
        self.imag = _Formatter(values.imag, True, opts)
        # ", " between elements, plus the trailing "j"
        self.element_length = self.real.width + self.imag.width + 3

    def format(self, value: complex) -> str:
        real = self.real.format(value.real)
        imag = (self.imag.format(value.imag) + "j").lstrip()
        if imag[0] in "+-":
            return real + imag
        return real + "+" + imag


def _summarized(a: np.ndarray, edge: int) -> np.ndarray:
    """The values that a summarized print shows (PyTorch's get_summarized_data)."""
    if a.ndim == 0:
        return a
    if edge == 0:
        # nothing but "..." gets printed
        return a[(slice(0, 0),) * a.ndim]
    for axis, n in enumerate(a.shape):
        if n > 2 * edge:
            a = np.take(a, np.r_[0:edge, n - edge : n], axis=axis)
    return a


def _render(a: np.ndarray, indent: int, summarize: bool, fmt: Any, opts: PrintOptions) -> str:
    edge = opts.edgeitems
    if a.ndim == 0:
        return fmt.format(a.item())

    n = a.shape[0]
    if a.ndim == 1:
        if isinstance(fmt, _ComplexFormatter):
            element_length = fmt.element_length
        else:
            element_length = fmt.width + 2
        per_line = max(1, math.floor((opts.linewidth - indent) / element_length))
        if summarize and not edge:
            items = ["..."]
        elif summarize and n > 2 * edge:
            items = (
                [fmt.format(v) for v in a[:edge].tolist()]
                + [" ..."]
                + [fmt.format(v) for v in a[n - edge :].tolist()]
            )
        else:
            items = [fmt.format(v) for v in a.tolist()]
        lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"

    if summarize and n > 2 * edge:
        rows = (
            [_render(a[i], indent + 1, summarize, fmt, opts) for i in range(edge)]
            + ["..."]
            + [_render(a[i], indent + 1, summarize, fmt, opts) for i in range(n - edge, n)]
        )
    else:
        rows = [_render(a[i], indent + 1, summarize, fmt, opts) for i in range(n)]
    separator = "," + "\n" * (a.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(rows) + "]"


def _values_str(a: np.ndarray, indent: int, opts: PrintOptions) -> str:
    summarize = a.size > opts.threshold
    shown = _summarized(a, opts.edgeitems) if summarize else a
    kind = a.dtype.kind
    if kind == "c":
        fmt: Any = _ComplexFormatter(shown, opts)
    elif kind == "f":
        fmt = _Formatter(shown, True, opts)
    elif kind in "biu":
        fmt = _Formatter(shown, False, opts)
    else:
        raise TypeError(f"cannot format arrays of dtype {a.dtype}")
    return _render(a, indent, summarize, fmt, opts)


def _add_suffixes(text: str, suffixes: Sequence[str], indent: int, linewidth: int) -> str:
    parts = [text]
    # PyTorch's length estimate: 2 more than the real last-line length when
    # there are several lines, 1 more than the real length otherwise.
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


def format_tensor(
    data: np.ndarray | np.generic,
    suffixes: Sequence[str] = (),
    *,
    prefix: str = "tensor(",
) -> str:
    """Return the PyTorch-style repr of ``data``, e.g. ``tensor([1., 2.], requires_grad=True)``.

    ``suffixes`` (``"dtype=tapegrad.float64"``, ``"grad_fn=<AddBackward0>"``, ...)
    are appended in order after the values. The ``size=(...)`` suffix that
    PyTorch shows for empty tensors that are not 1-d (and for every tensor
    when ``edgeitems == 0``) is added here, in front of ``suffixes``.
    ``prefix`` replaces ``"tensor("``; continuation lines are indented by its length.
    """
    a = np.asarray(data)
    opts = PRINT_OPTS
    indent = len(prefix)
    extra: list[str] = []
    if a.size == 0:
        if a.ndim != 1:
            extra.append(f"size={tuple(a.shape)}")
        if a.dtype.kind not in "biufc":
            raise TypeError(f"cannot format arrays of dtype {a.dtype}")
        body = "[]"
    else:
        if not opts.edgeitems:
            extra.append(f"size={tuple(a.shape)}")
        body = _values_str(a, indent, opts)
    extra.extend(suffixes)
    return _add_suffixes(prefix + body, extra, indent, opts.linewidth)
