"""Hypothesis strategies for tapegrad tests: shapes, broadcastable shapes, tensors, and values that avoid kinks.

All of them shrink towards small shapes and simple values (1.0, -1.0, 0.5, ...), so counterexamples stay
readable.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as npst

import tapegrad as tg
from tapegrad._dtypes import as_dtype

__all__ = ["shapes", "broadcastable_shapes", "mutually_broadcastable_shapes", "floats_avoiding", "values",
           "tensors", "arrays", "positive"]


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tensor shapes (tuples); shrinks towards () and then towards sides of min_side."""
    return npst.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(shape, min_dims=0, max_dims=None, min_side=1, max_side=4):
    """Shapes that broadcast with `shape` (a tuple); the result may have more or fewer dims."""
    if max_dims is None:
        max_dims = max(len(shape), min_dims)
    return npst.broadcastable_shapes(tuple(shape), min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                     max_side=max_side)


def mutually_broadcastable_shapes(num_shapes=2, *, base_shape=(), min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Tuples of `num_shapes` shapes that broadcast together (with base_shape, if given)."""
    return npst.mutually_broadcastable_shapes(num_shapes=num_shapes, base_shape=tuple(base_shape),
                                              min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                              max_side=max_side).map(lambda b: b.input_shapes)


def floats_avoiding(points=(0.0,), margin=1e-2, min_value=-3.0, max_value=3.0):
    """Finite floats in [min_value, max_value] at least `margin` away from every point in `points`.

    Use it to keep inputs away from kinks (abs, relu at 0) and poles (log, 1/x at 0).
    """
    points = sorted(float(p) for p in points)
    intervals, lo = [], float(min_value)
    for p in points:
        hi = p - margin
        if hi >= lo:
            intervals.append((lo, hi))
        lo = max(lo, p + margin)
    if max_value >= lo:
        intervals.append((lo, float(max_value)))
    parts = []
    for lo, hi in intervals:
        parts.append(((lo, hi), st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)))
    if not parts:
        raise ValueError(f"floats_avoiding: no values in [{min_value}, {max_value}] are {margin} away from {points}")

    # hypothesis shrinks one_of towards its first branch: put the interval holding the simplest value first
    def simplicity(item):
        (lo, hi), _ = item
        for k, v in enumerate((1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.0)):
            if lo <= v <= hi:
                return k
        return 100 + min(abs(lo), abs(hi))
    parts.sort(key=simplicity)
    return st.one_of([s for _, s in parts])


def values(min_value=-2.0, max_value=2.0):
    """Plain finite float64 values (no subnormals) in a range; shrinks to 0.0, 1.0, ..."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _shape_strategy(shape):
    if shape is None:
        return shapes()
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, int):
        shape = (shape,)
    return st.just(tuple(shape))


def arrays(shape=None, elements=None):
    """float64 numpy arrays with every element drawn from `elements` (no constant fill, so arrays vary)."""
    elements = values() if elements is None else elements
    return _shape_strategy(shape).flatmap(
        lambda s: npst.arrays(np.float64, s, elements=elements, fill=st.nothing()))


def tensors(dtype=tg.float64, shape=None, elements=None, requires_grad=True):
    """tapegrad leaf tensors of `dtype`; `shape` is a tuple, an int or a strategy (default: shapes())."""
    dt = as_dtype(dtype)
    return arrays(shape, elements).map(lambda a: tg.tensor(a, dtype=dt, requires_grad=requires_grad and
                                                           dt.is_floating_point))


def positive(min_value=0.1, max_value=3.0):
    """Values bounded away from zero from above: bases of non-integer powers, arguments of log and sqrt."""
    return floats_avoiding((), 0.0, min_value, max_value)

