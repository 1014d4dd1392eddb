"""Op specs of the nn family (see tapegrad/testing/op_db.py): one _op(...) line per operation.

Targets, class indices and loss weights are tensors that do not require grad (drawn here, copied as they are
to torch); inputs are kept away from kinks (smooth_l1/huber thresholds, ties in max pooling, BCE's 0 and 1).
"""
import numpy as np
from hypothesis import strategies as st

import tapegrad as tg

from ..op_db import _op, _t, _elementwise, _unary, DOMAINS  # noqa: F401
from ..strategies import shapes, tensors, values


def _F(L):
    return L.nn.functional


def _const(shape, lo=-2.0, hi=2.0):
    return tensors(shape=shape, elements=values(lo, hi), requires_grad=False)


@st.composite
def _softmax_args(draw):
    x = draw(_t(shape=shapes(max_dims=3)))
    n = max(x.ndim, 1)
    return x, draw(st.integers(-n, n - 1))


@st.composite
def _pair_args(draw, target_grad=True, lo=-2.0, hi=2.0, x_lo=-2.0, x_hi=2.0):
    s = draw(shapes(max_dims=3))
    x = draw(tensors(shape=s, elements=values(x_lo, x_hi)))
    t = draw(tensors(shape=s, elements=values(lo, hi), requires_grad=target_grad))
    return x, t, draw(st.sampled_from(["mean", "sum", "none"]))


@st.composite
def _class_args(draw, probs=False, spatial=False):
    """(input (N, C[, d]) or (C,), target, weight or None, reduction, ignore_index)."""
    c = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (3,)])) if not spatial else (2,)
    extra = (draw(st.integers(1, 3)),) if spatial else ()
    shape = batch + (c,) + extra
    x = draw(_t(shape=shape))
    if probs:
        t = draw(_const(shape, 0.0, 1.0))
    else:
        t = tg.tensor(np.array(draw(st.lists(st.integers(0, c - 1), min_size=int(np.prod(batch + extra)),
                                             max_size=int(np.prod(batch + extra)))),
                               dtype=np.int64).reshape(batch + extra))
    weight = draw(st.none() | _const((c,), 0.5, 2.0))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    ignore = draw(st.sampled_from([-100, 0]))
    if not probs and reduction == "mean" and ignore == 0 and not np.any(t.numpy()):
        ignore = -100    # every target ignored: a 0/0 mean, NaN in both libraries, nothing to check
    return x, t, weight, reduction, ignore


@st.composite
def _distinct(draw, shape):
    """A tensor of distinct values 0.1 apart (no ties for max pooling)."""
    n = int(np.prod(shape))
    perm = draw(st.permutations(range(n)))
    return tg.tensor((np.array(perm, dtype=np.float64) * 0.1 - 0.05 * n).reshape(shape), requires_grad=True)


@st.composite
def _pool_args(draw, distinct=False):
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(2, 5)), draw(st.integers(2, 5)))
    if draw(st.booleans()):
        shape = shape[1:]
    k = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    x = draw(_distinct(shape) if distinct else _t(shape=shape))
    return x, k, s, p, draw(st.booleans())


@st.composite
def _conv_args(draw, nd):
    groups = draw(st.integers(1, 2))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ks = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 4)) for k, d in zip(ks, dil))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    x = draw(_t(shape=batch + (cg * groups,) + size))
    w = draw(_t(shape=(og * groups, cg) + ks))
    b = draw(st.none() | _t(shape=(og * groups,)))
    stride = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(st.sampled_from([0, 1, "valid"]))
    return x, w, b, stride, padding, dil, groups


@st.composite
def _layer_norm_args(draw):
    # distinct values over at least two normalised elements: a zero variance is all rounding noise in float32
    s = draw(shapes(min_dims=1, max_dims=3, max_side=3)) + (draw(st.integers(2, 3)),)
    k = draw(st.integers(1, len(s)))
    ns = s[len(s) - k:]
    w = draw(st.none() | _t(shape=ns))
    b = draw(st.none() | _t(shape=ns))
    return draw(_distinct(s)), ns, w, b


@st.composite
def _embedding_args(draw):
    v, d = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    idx_shape = draw(shapes(max_dims=2))
    idx = np.array(draw(st.lists(st.integers(0, v - 1), min_size=int(np.prod(idx_shape)),
                                 max_size=int(np.prod(idx_shape)))), dtype=np.int64).reshape(idx_shape)
    # a padding row the indices pick gets no gradient by definition, which finite differences cannot see;
    # tests/test_nn_functional.py checks that case against torch
    free = sorted(set(range(v)) - set(idx.reshape(-1).tolist()))
    pad = draw(st.none() | st.sampled_from(free)) if free else None
    return tg.tensor(idx), draw(_t(shape=(v, d))), pad


@st.composite
def _linear_args(draw, bias):
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    return (draw(_t(shape=batch + (n_in,))), draw(_t(shape=(n_out, n_in))),
            draw(_t(shape=(n_out,))) if bias else None)


@st.composite
def _bilinear_args(draw):
    n1, n2, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.sampled_from([(1,), (2,), (2, 2)]))
    return (draw(_t(shape=batch + (n1,))), draw(_t(shape=batch + (n2,))), draw(_t(shape=(n_out, n1, n2))),
            draw(st.none() | _t(shape=(n_out,))))


@st.composite
def _two_rows(draw):
    s = draw(shapes(min_dims=2, max_dims=3))
    away = values(0.2, 2.0)   # norms stay away from the eps clamp
    return draw(tensors(shape=s, elements=away)), draw(tensors(shape=s, elements=away))


_op("linear", lambda L, x, w, b: _F(L).linear(x, w, b), _linear_args(False))
_op("linear_bias", lambda L, x, w, b: _F(L).linear(x, w, b), _linear_args(True))
_op("bilinear", lambda L, x1, x2, w, b: _F(L).bilinear(x1, x2, w, b), _bilinear_args())
_op("softmax", lambda L, x, d: _F(L).softmax(x, d), _softmax_args())
_op("log_softmax", lambda L, x, d: _F(L).log_softmax(x, d), _softmax_args())
_op("softmin", lambda L, x, d: _F(L).softmin(x, d), _softmax_args())
_op("mse_loss", lambda L, x, t, r: _F(L).mse_loss(x, t, reduction=r), _pair_args())
_op("l1_loss", lambda L, x, t, r: _F(L).l1_loss(x, t, reduction=r),
    _pair_args(target_grad=False, lo=0.0, hi=0.0, x_lo=0.01, x_hi=2.0))
_op("smooth_l1_loss", lambda L, x, t, r: _F(L).smooth_l1_loss(x, t, reduction=r, beta=0.7), _pair_args())
_op("huber_loss", lambda L, x, t, r: _F(L).huber_loss(x, t, reduction=r, delta=1.3), _pair_args())
_op("binary_cross_entropy", lambda L, x, t, r: _F(L).binary_cross_entropy(x, t, reduction=r),
    _pair_args(lo=0.0, hi=1.0, x_lo=0.05, x_hi=0.95))
_op("binary_cross_entropy_weight",
    lambda L, x, t, r: _F(L).binary_cross_entropy(x, t, weight=L.ones_like(x) * 1.5, reduction=r),
    _pair_args(target_grad=False, lo=0.0, hi=1.0, x_lo=0.05, x_hi=0.95))
_op("bce_with_logits", lambda L, x, t, r: _F(L).binary_cross_entropy_with_logits(x, t, reduction=r),
    _pair_args(lo=0.0, hi=1.0))
_op("bce_with_logits_pos_weight",
    lambda L, x, t, r: _F(L).binary_cross_entropy_with_logits(x, t, reduction=r, weight=L.ones_like(x) * 0.5,
                                                              pos_weight=L.ones_like(x) * 2.0),
    _pair_args(lo=0.0, hi=1.0))
_op("nll_loss", lambda L, x, t, w, r, i: _F(L).nll_loss(x, t, w, reduction=r, ignore_index=i), _class_args())
_op("nll_loss_2d", lambda L, x, t, w, r, i: _F(L).nll_loss(x, t, w, reduction=r, ignore_index=i),
    _class_args(spatial=True))
_op("cross_entropy", lambda L, x, t, w, r, i: _F(L).cross_entropy(x, t, w, reduction=r, ignore_index=i),
    _class_args())
_op("cross_entropy_smoothing",
    lambda L, x, t, w, r, i: _F(L).cross_entropy(x, t, w, reduction=r, ignore_index=i, label_smoothing=0.3),
    _class_args())
_op("cross_entropy_spatial", lambda L, x, t, w, r, i: _F(L).cross_entropy(x, t, w, reduction=r, ignore_index=i),
    _class_args(spatial=True))
_op("cross_entropy_probs",
    lambda L, x, t, w, r, i: _F(L).cross_entropy(x, t, w, reduction=r, label_smoothing=0.1 * (i == 0)),
    _class_args(probs=True))
_op("kl_div", lambda L, x, t, r: _F(L).kl_div(x, t, reduction=r), _pair_args(target_grad=False, lo=0.0, hi=1.0))
_op("kl_div_log_target", lambda L, x, t, r: _F(L).kl_div(x, t, reduction=r, log_target=True), _pair_args())
_op("kl_div_batchmean", lambda L, x, t, r: _F(L).kl_div(x, t, reduction="batchmean", log_target=True),
    _pair_args())
_op("cosine_similarity", lambda L, a, b: _F(L).cosine_similarity(a, b, dim=-1), _two_rows())
_op("normalize", lambda L, a, b: _F(L).normalize(a * b, dim=0), _two_rows())
_op("normalize_p1", lambda L, a, b: _F(L).normalize(a, p=1.0, dim=-1), _two_rows())
_op("conv1d", lambda L, x, w, b, s, p, d, g: _F(L).conv1d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
    _conv_args(1))
_op("conv2d", lambda L, x, w, b, s, p, d, g: _F(L).conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=g),
    _conv_args(2))
_op("conv2d_same", lambda L, x, w, b, s, p, d, g: _F(L).conv2d(x, w, b, padding="same", dilation=d, groups=g),
    _conv_args(2))
_op("max_pool2d", lambda L, x, k, s, p, c: _F(L).max_pool2d(x, k, s, p, ceil_mode=c), _pool_args(distinct=True))
_op("max_pool2d_dilated", lambda L, x, k, s, p, c: _F(L).max_pool2d(x, k, s, 0, dilation=2, ceil_mode=c),
    _pool_args(distinct=True).filter(lambda a: min(a[0].shape[-2:]) >= 2 * (max(a[1]) - 1) + 1))
_op("avg_pool2d", lambda L, x, k, s, p, c: _F(L).avg_pool2d(x, k, s, p, ceil_mode=c), _pool_args())
_op("avg_pool2d_exclude_pad",
    lambda L, x, k, s, p, c: _F(L).avg_pool2d(x, k, s, p, ceil_mode=c, count_include_pad=False), _pool_args())
_op("avg_pool2d_divisor", lambda L, x, k, s, p, c: _F(L).avg_pool2d(x, k, s, p, divisor_override=3), _pool_args())
# torch's float32 backward cancels (x - mean) / std over rows of close values: ~3e-4 relative error there
_op("layer_norm", lambda L, x, ns, w, b: _F(L).layer_norm(x, ns, w, b), _layer_norm_args(),
    float32_tol={"rtol": 2e-3, "atol": 1e-4})
_op("embedding", lambda L, i, w, pad: _F(L).embedding(i, w, padding_idx=pad), _embedding_args())
_op("dropout_eval", lambda L, x: _F(L).dropout(x, 0.5, training=False) * 2.0, _unary())
_op("relu_functional", lambda L, x: _F(L).relu(x), _unary("kink0"))
