"""clip_grad_norm_ and clip_grad_value_: rescale or clamp parameters' .grad in place."""
import math

import numpy as np

from ...tensor import Tensor, _wrap


def _grads(parameters):
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p._grad for p in parameters if p._grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so their joint norm is at most max_norm; returns the norm before clipping."""
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:
        return _wrap(np.array(0.0, dtype=np.float32))
    flat = [np.asarray(g._data, dtype=np.float64).reshape(-1) for g in grads]
    if norm_type == math.inf:
        total = max((np.abs(f).max() if f.size else 0.0) for f in flat)
    elif norm_type == -math.inf:
        total = min((np.abs(f).min() if f.size else math.inf) for f in flat)
    else:
        total = sum(float(np.sum(np.abs(f) ** norm_type)) for f in flat) ** (1.0 / norm_type)
    total = np.float64(total)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
                           "so it cannot be clipped. To disable this error and scale the gradients by the "
                           "non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = min(max_norm / (total + 1e-6), 1.0)   # PyTorch clamps the coefficient at 1, so small norms stay
    for g in grads:
        _scale_in_place(g, coef)
    out_dtype = np.result_type(*(g._data.dtype for g in grads))
    return _wrap(np.array(total, dtype=out_dtype))


def _scale_in_place(t, coef):
    from ...ops.inplace import invalidate
    arr = t._ensure_array()
    invalidate(t)
    arr *= arr.dtype.type(coef)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    from ...ops.inplace import invalidate
    clip_value = float(clip_value)
    for g in _grads(parameters):
        arr = g._ensure_array()
        invalidate(g)
        np.clip(arr, -clip_value, clip_value, out=arr)
