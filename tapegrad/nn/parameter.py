"""nn.Parameter: a leaf tensor that requires grad and that modules register as one of their parameters.

tapegrad's operations test `x.__class__ is Tensor` on their hot path, so a parameter is a plain Tensor carrying a
mark in its metadata; `isinstance(x, Parameter)` reads that mark.
"""
import numpy as np

from ..tensor import Tensor, _wrap


class _ParameterMeta(type):
    def __instancecheck__(cls, obj):
        return obj.__class__ is Tensor and bool(obj._meta) and obj._meta.get("parameter", False)


def is_parameter(obj):
    """Whether obj is a tensor marked as a parameter."""
    return obj.__class__ is Tensor and bool(obj._meta) and obj._meta.get("parameter", False)


def mark_parameter(t):
    """Mark the leaf tensor t as a parameter (it prints as 'Parameter containing:')."""
    t._meta_dict()["parameter"] = True
    return t


class Parameter(metaclass=_ParameterMeta):
    """Parameter(data=None, requires_grad=True): a new leaf sharing data's storage, registered by modules."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            p = _wrap(np.empty((0,), np.float32))
        elif isinstance(data, Tensor):
            d = data._data
            p = _wrap(d.view() if isinstance(d, np.ndarray) else np.array(d))
        else:
            raise TypeError(f"Parameter(): expected a Tensor as data (got {type(data).__name__})")
        p.requires_grad_(requires_grad)
        return mark_parameter(p)
