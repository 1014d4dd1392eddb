"""tapegrad.nn.functional: PyTorch's functional neural-network operations.

Operations whose PyTorch grad_fn is a fused node record one NN-family op (tapegrad/ops/nn.py); the others are
compositions of recorded ops that end in the op PyTorch shows.
"""
import math
import warnings

import numpy as np

from .. import _dtypes
from .._kernels import opcodes as op
from ..creation import _rng
from ..ops import nn as _nn
from ..ops._common import constant, wrap_dim
# activations live with the other elementwise ops; torch.nn.functional exposes them here too
from ..ops.elementwise import (celu, elu, gelu, hardsigmoid, hardswish, hardtanh, leaky_relu,  # noqa: F401
                               logsigmoid, mish, prelu, relu, relu6, selu, sigmoid, silu, softplus, softsign,
                               tanh, tanhshrink)
from ..ops.reduce import vector_norm
from ..ops.shape import pad  # noqa: F401
from ..ops.linalg import addmm_transposed, matmul
from ..ops.elementwise import where
from ..tensor import Tensor, _wrap

__all__ = ["linear", "bilinear", "relu", "tanh", "sigmoid", "elu", "gelu", "hardtanh", "leaky_relu", "logsigmoid",
           "relu6", "silu", "softplus", "mish", "prelu", "selu", "celu", "hardsigmoid", "hardswish", "softsign",
           "tanhshrink", "softmin", "pad", "softmax", "log_softmax", "dropout", "mse_loss",
           "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "cosine_similarity", "normalize", "conv1d", "conv2d",
           "max_pool2d", "avg_pool2d", "layer_norm", "embedding", "one_hot"]


def _legacy_reduction(size_average, reduce, reduction):
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


# -- linear layers ---------------------------------------------------------------------------------------------

def linear(input, weight, bias=None):
    """input @ weight.T + bias, recorded as torch does (addmm for a bias, matmul otherwise)."""
    x, w = input._data, weight._data
    if x.ndim == 0 or w.ndim not in (1, 2) or x.shape[-1] != w.shape[-1]:
        rows = x.size // x.shape[-1] if x.ndim and x.shape[-1] else 1
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1] if x.ndim else 1} and "
                           f"{w.shape[-1]}x{w.shape[0] if w.ndim == 2 else 1})")
    if bias is None or w.ndim == 1:
        out = matmul(input, weight.t())
        return out if bias is None else out + bias
    if x.ndim == 2:
        return addmm_transposed(bias, input, weight)
    out = addmm_transposed(bias, input.reshape(-1, x.shape[-1]), weight)
    return out.view(*x.shape[:-1], w.shape[0])


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = input1 @ weight[o] @ input2 + bias[o]."""
    a, b, w = input1._data, input2._data, weight._data
    if w.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be a 3-D tensor, got {w.ndim}-D")
    if a.shape[:-1] != b.shape[:-1]:
        raise RuntimeError(f"bilinear(): input batch dimensions do not match: got {list(a.shape[:-1])} and "
                           f"{list(b.shape[:-1])}")
    if a.shape[-1] != w.shape[1] or b.shape[-1] != w.shape[2]:
        raise RuntimeError(f"bilinear(): input sizes {a.shape[-1]} and {b.shape[-1]} do not match weight "
                           f"{list(w.shape)}")
    n_out, n1, n2 = w.shape
    x1 = input1.reshape(-1, n1)
    t = matmul(x1, weight.permute(1, 0, 2).reshape(n1, n_out * n2)).reshape(-1, n_out, n2)
    out = (t * input2.reshape(-1, 1, n2)).sum(-1).view(*a.shape[:-1], n_out)
    return out if bias is None else out + bias


# -- softmax ---------------------------------------------------------------------------------------------------

def _softmax_dim(ndim):
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call to include dim=X "
                  "as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim, computed stably."""
    if dim is None:
        dim = _softmax_dim(input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _nn.softmax_op("softmax", input, dim, log=False)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along dim."""
    if dim is None:
        dim = _softmax_dim(input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _nn.softmax_op("softmin", -input, dim, log=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """x - logsumexp(x) along dim, computed stably."""
    if dim is None:
        dim = _softmax_dim(input.ndim)
    if dtype is not None:
        input = input.to(dtype)
    return _nn.softmax_op("log_softmax", input, dim, log=True)


# -- dropout ---------------------------------------------------------------------------------------------------

def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1-p); the identity when not training.

    Recorded as a product with a constant mask (PyTorch's CPU kernel shows MulBackward0), so a replay keeps the
    mask it drew."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    shape = input._data.shape
    if p == 1.0:
        mask = np.zeros(shape, dtype=input._data.dtype)
    else:
        keep = _rng(None).random(shape) >= p
        mask = (keep * (1.0 / (1.0 - p))).astype(input._data.dtype)
    mask = constant(np.asarray(mask))
    return input.mul_(mask) if inplace else input * mask


# -- regression losses ---------------------------------------------------------------------------------------------

def _expanded(name, input, target):
    if input.shape != target.shape:
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size ({input.shape}). "
                      f"This will likely lead to incorrect results due to broadcasting. Please ensure they have the "
                      f"same size.", stacklevel=3)
        try:
            shape = np.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            from ..ops._common import broadcast_shape
            broadcast_shape(name, tuple(input.shape), tuple(target.shape))
            raise
        return input.expand(*shape), target.expand(*shape)
    return input, target


def _no_weight(name, weight):
    if weight is not None:
        raise NotImplementedError(f"{name}(): the weight argument is not supported yet")


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean / sum / elementwise squared error."""
    _no_weight("mse_loss", weight)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    input, target = _expanded("mse_loss", input, target)
    return _nn.pointwise_loss(op.MSE_LOSS, input, target, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean / sum / elementwise absolute error (a composition, as in PyTorch)."""
    _no_weight("l1_loss", weight)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    input, target = _expanded("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Squared error below beta, absolute error above (l1_loss when beta is 0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0.0:
        return l1_loss(input, target, reduction=reduction)
    input, target = _expanded("smooth_l1_loss", input, target)
    return _nn.pointwise_loss(op.SMOOTH_L1_LOSS, input, target, reduction, beta)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """Squared error below delta, delta-scaled absolute error above."""
    _no_weight("huber_loss", weight)
    _nn.check_reduction(reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    input, target = _expanded("huber_loss", input, target)
    return _nn.pointwise_loss(op.HUBER_LOSS, input, target, reduction, delta)


def _reduce(x, reduction):
    if reduction == "mean":
        return x.mean()
    if reduction == "sum":
        return x.sum()
    return x


# -- classification losses -----------------------------------------------------------------------------------------

def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as PyTorch does."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({_torch_size(target.shape)}) that is different to the input size "
                         f"({_torch_size(input.shape)}) is deprecated. Please ensure they have the same size.")
    x = input._data
    if x.size and (np.any(x < 0) or np.any(x > 1)):
        raise RuntimeError("all elements of input should be between 0 and 1")
    _broadcastable_weight("binary_cross_entropy", weight, input)
    return _nn.pointwise_loss(op.BCE_LOSS, input, target, reduction, weight=weight)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """binary_cross_entropy(sigmoid(input), target) computed stably, pos_weight weighting the positive term."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({_torch_size(target.shape)}) must be the same as input size "
                         f"({_torch_size(input.shape)})")
    _broadcastable_weight("binary_cross_entropy_with_logits", weight, input)
    _broadcastable_weight("binary_cross_entropy_with_logits", pos_weight, input)
    return _nn.pointwise_loss(op.BCE_WITH_LOGITS, input, target, reduction, weight=weight, pos_weight=pos_weight)


def _torch_size(shape):
    return f"torch.Size([{', '.join(map(str, shape))}])"


def _broadcastable_weight(name, w, input):
    if w is None:
        return
    try:
        if np.broadcast_shapes(w.shape, input.shape) != tuple(input.shape):
            raise ValueError
    except ValueError:
        raise RuntimeError(f"{name}(): weight of shape {list(w.shape)} does not broadcast to the input's shape "
                           f"{list(input.shape)}") from None


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """-w[t] input[n, t] averaged with torch's weighted mean (divided by the summed weights of counted targets)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    x = input._data
    if x.ndim == 3 or x.ndim > 4:
        # PyTorch folds the trailing dims into a 4-d NllLoss2D and views the unreduced result back
        _nn.check_nll_args(input, target, weight, ignore_index)
        n, c = x.shape[0], x.shape[1]
        t = target._data
        x4 = input.reshape(n, c, 1, -1) if x.size else input.reshape(n, c, 0, 0)
        t3 = target.reshape(n, 1, -1) if t.size else target.reshape(n, 0, 0)
        out = _nn.nll_op(x4, t3, weight, ignore_index, reduction)
        return out.view(*t.shape) if reduction == "none" else out
    return _nn.nll_op(input, target, weight, ignore_index, reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """log_softmax over the class dim, then nll_loss (class-index targets) or a soft-target sum (probabilities),
    with label smoothing composed as PyTorch does."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _nn.check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    x = input._data
    class_dim = 0 if x.ndim == 1 else 1
    n_classes = x.shape[class_dim] if x.ndim else 1
    if target._data.dtype.kind == "f":
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        if target.shape != input.shape:
            raise RuntimeError(f"Expected target size {list(x.shape)}, got {list(target.shape)}")
    else:
        _nn.check_nll_args(input, target, weight, ignore_index)   # before anything is recorded
    logp = log_softmax(input, class_dim)
    if target._data.dtype.kind == "f":
        if label_smoothing > 0.0:
            target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
        prod = logp * target
        if weight is not None:
            prod = prod * _class_view(weight, x.ndim, class_dim)
        if reduction == "none":
            return -prod.sum(class_dim)
        if reduction == "sum":
            return -prod.sum()
        return _nn.div_count(-prod.sum(), x.size // n_classes if n_classes else 0)
    nll = nll_loss(logp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    ignored = constant(np.asarray(target._data == ignore_index))
    if weight is not None:
        smooth = -(logp * _class_view(weight, x.ndim, class_dim)).sum(class_dim)
    else:
        smooth = -logp.sum(class_dim)
    smooth = smooth * constant(np.asarray(~ignored._data, dtype=x.dtype))
    if reduction == "mean":
        t = target._data[~ignored._data]
        if weight is not None:       # a tape operation, so that compiled replays follow new weights
            ret = smooth.sum() / weight[constant(t)].sum()
        else:
            ret = smooth.sum() / constant(np.asarray(t.size, dtype=x.dtype))
    elif reduction == "sum":
        ret = smooth.sum()
    else:
        ret = smooth
    return nll * (1.0 - label_smoothing) + ret * (label_smoothing / n_classes)


def _class_view(weight, ndim, class_dim):
    shape = [1] * ndim
    shape[class_dim] = weight.shape[0]
    return weight.view(*shape)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Pointwise target * (log target - input), reduced; 'batchmean' divides the sum by the batch size."""
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_target:
        point = target.exp() * (target - input)
    else:
        # xlogy(target, target) with 0 log 0 = 0, as tape operations so that compiled replays follow new targets
        zero = target == 0
        xlogy = where(zero, 0.0, target * where(zero, 1.0, target).log())
        point = xlogy - target * input
    if reduction == "batchmean":
        if input.ndim == 0:
            return point.sum()
        return point.sum() / input.shape[0]
    return _reduce(point, reduction)


# -- similarity and normalisation -----------------------------------------------------------------------------------

def _norm(x, p, dim):
    """PyTorch's x.norm(p, dim, keepdim=True): one VECTOR_NORM record, whose backward gives a zero vector a zero
    gradient as PyTorch does (composed of sqrt and pow, it would be 0 * inf = nan)."""
    return vector_norm(x, p, dim, keepdim=True)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / |x1| * x2 / |x2|) along dim, each norm clamped below at eps without affecting the gradient
    (PyTorch clamps in place under no_grad)."""
    shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    a = x1.expand(*shape) if tuple(x1.shape) != shape else x1
    b = x2.expand(*shape) if tuple(x2.shape) != shape else x2
    d = wrap_dim(dim, len(shape), "cosine_similarity")

    def clamped(n):
        v = np.asarray(n._data)
        gap = np.maximum(v, eps) - v
        return n + constant(gap.astype(v.dtype)) if np.any(gap) else n
    return ((a / clamped(_norm(a, 2, d))) * (b / clamped(_norm(b, 2, d)))).sum(d)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p, eps) along dim."""
    if out is not None:
        raise NotImplementedError("normalize(): out= is not supported")
    d = wrap_dim(dim, input.ndim, "normalize")
    norm = _norm(input, p, d)
    v = np.asarray(norm._data)
    if np.any(v < eps):
        keep = (v >= eps).astype(v.dtype)
        norm = norm * constant(keep) + constant((1.0 - keep) * v.dtype.type(eps))
    return input / norm.expand_as(input)


# -- convolution --------------------------------------------------------------------------------------------------

def _pair(v, n, name):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return tuple(int(v[0]) for _ in range(n))
        if len(v) != n:
            raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to match the "
                               f"convolution dimensions, but got {name}={list(v)}")
        return tuple(int(x) for x in v)
    return (int(v),) * n


def _conv(nd, input, weight, bias, stride, padding, dilation, groups):
    name = f"conv{nd}d"
    x, w = input._data, weight._data
    if x.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got input of "
                           f"size: {list(x.shape)}")
    if w.ndim != nd + 2:
        raise RuntimeError(f"weight should have at least three dimensions" if w.ndim < 3 else
                           f"Expected {nd + 2}-dimensional weight for {nd + 2}-dimensional input, but got weight of "
                           f"size {list(w.shape)}")
    unbatched = x.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
        x = input._data
    stride, dilation = _pair(stride, nd, "stride"), _pair(dilation, nd, "dilation")
    n, c = x.shape[:2]
    o = w.shape[0]
    ks = w.shape[2:]
    if groups < 1:
        raise RuntimeError("non-positive groups is not supported")
    if c != w.shape[1] * groups:
        raise RuntimeError(f"Given groups={groups}, weight of size {list(w.shape)}, expected input{list(x.shape)} to "
                           f"have {w.shape[1] * groups} channels, but got {c} channels instead")
    if o % groups:
        raise RuntimeError(f"Given groups={groups}, expected weight to be divisible by {groups} at dimension 0, but "
                           f"got weight of size {list(w.shape)} instead")
    if bias is not None and tuple(bias.shape) != (o,):
        raise RuntimeError(f"Given weight of size {list(w.shape)}, expected bias to be 1-dimensional with {o} "
                           f"elements, but got bias of size {list(bias.shape)} instead")
    if x.dtype != w.dtype or (bias is not None and bias._data.dtype != x.dtype):
        raise RuntimeError(f"Input type ({input.dtype}) and weight type ({weight.dtype}) should be the same")
    if any(s < 1 for s in stride):
        raise RuntimeError("non-positive stride is not supported")
    if isinstance(padding, str):
        if padding == "valid":
            lo = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            lo = tuple(d * (k - 1) // 2 for d, k in zip(dilation, ks))
            hi = tuple(d * (k - 1) - l for d, k, l in zip(dilation, ks, lo))
        else:
            raise ValueError(f"Invalid padding string '{padding}', should be one of {{'valid', 'same'}}")
        if padding == "valid":
            hi = lo
    else:
        lo = hi = _pair(padding, nd, "padding")
        if any(p < 0 for p in lo):
            raise RuntimeError("negative padding is not supported")
    spatial = x.shape[2:]
    outs = tuple((s + l + h - d * (k - 1) - 1) // st + 1
                 for s, l, h, d, k, st in zip(spatial, lo, hi, dilation, ks, stride))
    if any(s + l + h < d * (k - 1) + 1 for s, l, h, d, k in zip(spatial, lo, hi, dilation, ks)):
        raise RuntimeError(f"Calculated padded input size per channel: ({' x '.join(str(s + l + h) for s, l, h in zip(spatial, lo, hi))}). "
                           f"Kernel size: ({' x '.join(str(d * (k - 1) + 1) for d, k in zip(dilation, ks))}). "
                           f"Kernel size can't be greater than actual input size")
    if nd == 1:   # run as a height-1 2-d convolution on the same flat layout
        spatial, ks, outs2 = (1,) + spatial, (1,) + ks, (1,) + outs
        stride, lo, dilation = (1,) + stride, (0,) + lo, (1,) + dilation
    else:
        outs2 = outs
    geometry = (n, c, *spatial, o, *ks, *outs2, *stride, *lo, *dilation, groups)
    out = _nn.conv_op(input, weight, bias, geometry, (n, o) + outs)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-d cross-correlation of (N, C, L) or (C, L) input with (O, C/groups, K) weight."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of (N, C, H, W) or (C, H, W) input with (O, C/groups, KH, KW) weight."""
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


# -- pooling ---------------------------------------------------------------------------------------------------------

def _pool_out(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(name, input, kernel_size, stride, padding, dilation, ceil_mode):
    x = input._data
    if x.ndim not in (3, 4):
        raise RuntimeError(f"non-empty 3D or 4D (batch mode) tensor expected for input")
    k = _pair(kernel_size, 2, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else _pair(stride, 2, "stride")
    p = _pair(padding, 2, "padding")
    d = _pair(dilation, 2, "dilation")
    if any(v <= 0 for v in k):
        raise RuntimeError(f"{name}(): kernel_size must be greater than zero, but got kH: {k[0]} kW: {k[1]}")
    if any(v <= 0 for v in s):
        raise RuntimeError(f"{name}(): stride should be greater than zero, but got dH: {s[0]} dW: {s[1]}")
    if any(pv > kv // 2 for pv, kv in zip(p, k)):
        raise RuntimeError(f"pad should be at most half of effective kernel size, but got pad={p[0]}, "
                           f"kernel_size={k[0]} and dilation={d[0]}")
    h, w = x.shape[-2:]
    oh = _pool_out(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = _pool_out(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise RuntimeError(f"Given input size: ({'x'.join(map(str, x.shape[-3:]))}). Calculated output size: "
                           f"({x.shape[-3]}x{oh}x{ow}). Output size is too small")
    planes = int(math.prod(x.shape[:-2]))
    return planes, h, w, oh, ow, k, s, p, d, x.shape[:-2] + (oh, ow)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """Maximum over each (dilated) window; indices are flat positions within each input plane."""
    planes, h, w, oh, ow, k, s, p, d, out_shape = _pool_geometry("max_pool2d", input, kernel_size, stride, padding,
                                                                 dilation, ceil_mode)
    geometry = (planes, h, w, oh, ow, *k, *s, *p, *d)
    out, indices = _nn.max_pool_op(input, geometry, out_shape)
    return (out, indices) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Mean over each window, PyTorch's rules for the divisor at padded and ceil-mode edges."""
    if divisor_override is not None and divisor_override == 0:
        raise RuntimeError("divisor must be not zero")
    planes, h, w, oh, ow, k, s, p, _, out_shape = _pool_geometry("avg_pool2d", input, kernel_size, stride, padding,
                                                                 1, ceil_mode)
    geometry = (planes, h, w, oh, ow, *k, *s, *p, int(bool(count_include_pad)), int(divisor_override or 0))
    return _nn.avg_pool_op(input, geometry, out_shape)


# -- normalisation, embedding, one_hot -----------------------------------------------------------------------------

def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) over the trailing normalized_shape dims, then * weight + bias."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _nn.layer_norm_op(input, tuple(normalized_shape), weight, bias, eps)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Rows of weight picked by the integer input; the padding_idx row gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding(): max_norm, scale_grad_by_freq and sparse are not supported")
    if padding_idx is not None:
        v = weight.shape[0]
        if padding_idx > 0:
            if padding_idx >= v:
                raise AssertionError("Padding_idx must be within num_embeddings")
        elif padding_idx < 0:
            if padding_idx < -v:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx = v + padding_idx
    return _nn.embedding_op(input, weight, padding_idx)


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding with a new trailing dim of num_classes (max + 1 when -1)."""
    t = tensor._data
    if t.dtype != np.int64:
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1:
        if t.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(t.max()) + 1
    if t.size:
        if t.min() < 0:
            raise RuntimeError("Class values must be non-negative.")
        if t.max() >= num_classes:
            raise RuntimeError("Class values must be smaller than num_classes.")
    out = np.zeros(t.shape + (num_classes,), dtype=np.int64)
    if t.size:
        np.put_along_axis(out, t[..., None], 1, axis=-1)
    return _wrap(out)
