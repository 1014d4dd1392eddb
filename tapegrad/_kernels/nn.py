"""Backward and forward-replay kernels of the NN family (softmax, losses, normalisation, convolution, pooling).

Every NN record has params [n_extra, extra gids..., op params...] after its shape (EXTRA in opcodes.py), so
tensor inputs beyond a and b (bias, loss weights; only those present) are remapped by compaction like ADDMM's. Float params are
stored as the int64 bits of a float64.
"""
import numpy as np
from numba import njit

from . import opcodes as op
from .common import params_at, size_at
from .frame import UNIT_OK, inputs_of

NONE, MEAN, SUM = 0, 1, 2   # loss reductions


@njit(cache=True, inline="always")
def _f(ints, p):
    """The float64 stored as int64 bits at ints[p]."""
    return ints[p:p + 1].view(np.float64)[0]


@njit(cache=True)
def _extras(ints, aux_i):
    """(offset of the op params, extra gids) of a record."""
    p = params_at(ints, aux_i)
    ne = ints[p]
    return p + 1 + ne, ints[p + 1:p + 1 + ne]


# -- pointwise losses: y = reduce(w * l(x, t)) -------------------------------------------------------------------

@njit(cache=True, inline="always")
def _loss_terms(o, x, t, c, pw):
    """(l, dl/dx, dl/dt) of one element; c is beta / delta; pw the positive weight of the logits loss."""
    if o == op.MSE_LOSS:
        d = x - t
        return d * d, 2.0 * d, -2.0 * d
    if o == op.SMOOTH_L1_LOSS or o == op.HUBER_LOSS:
        d = x - t
        z = abs(d)
        s = 1.0 if d > 0 else (-1.0 if d < 0 else 0.0)
        if o == op.SMOOTH_L1_LOSS:
            if z < c:
                return 0.5 * d * d / c, d / c, -d / c
            return z - 0.5 * c, s, -s
        if z < c:
            return 0.5 * d * d, d, -d
        return c * (z - 0.5 * c), c * s, -c * s
    if o == op.BCE_LOSS:
        lx = max(np.log(x), -100.0)
        l1x = max(np.log1p(-x), -100.0)
        dx = (x - t) / max((1.0 - x) * x, 1e-12)
        return -(t * lx + (1.0 - t) * l1x), dx, np.log1p(-x) - np.log(x)
    # BCE_WITH_LOGITS: -[pw t log s(x) + (1 - t) log(1 - s(x))], with log s(x) = -softplus(-x)
    sp_neg = max(-x, 0.0) + np.log1p(np.exp(-abs(x)))    # softplus(-x)
    sp_pos = sp_neg + x                                   # softplus(x)
    lw = 1.0 + (pw - 1.0) * t
    sig = 1.0 / (1.0 + np.exp(-x))
    return (1.0 - t) * x + lw * sp_neg, sig * (pw * t + 1.0 - t) - pw * t, pw * sp_neg - sp_pos


@njit(cache=True)
def _pointwise_loss(o, ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, backward):
    q, ex = _extras(ints, aux[i])
    reduction, has_w, has_pw = ints[q], ints[q + 1], ints[q + 2]
    xo = off[pa]
    to = off[pb]
    wo = off[ex[0] - base] if has_w else -1
    po = off[ex[has_w] - base] if has_pw else -1
    n = size_at(ints, aux[pa])
    yo = off[i]
    scale = 1.0 / n if reduction == MEAN and n else 1.0
    total = 0.0
    for k in range(n):
        w = vals[wo + k] if wo >= 0 else 1.0
        pw = vals[po + k] if po >= 0 else 1.0
        lv, dx, dt = _loss_terms(o, vals[xo + k], vals[to + k], const, pw)
        if backward:
            g = (adj[yo + k] if reduction == NONE else adj[yo] * scale) * w
            if need_a:
                adj[xo + k] += g * dx
            if need_b:
                adj[to + k] += g * dt
        elif reduction == NONE:
            vals[yo + k] = w * lv
        else:
            total += w * lv
    if not backward and reduction != NONE:
        vals[yo] = total * scale if n else np.nan


# -- negative log likelihood: y = -w[t] x[n, t, j] ---------------------------------------------------------------

@njit(cache=True)
def _nll(ints, aux, off, base, i, pa, pb, vals, adj, backward):
    q, ex = _extras(ints, aux[i])
    nb, nc, inner, reduction, ignore = ints[q], ints[q + 1], ints[q + 2], ints[q + 3], ints[q + 4]
    xo = off[pa]
    to = off[pb]
    wo = off[ex[0] - base] if len(ex) else -1
    yo = off[i]
    total_w = 0.0
    total = 0.0
    for n in range(nb):
        for j in range(inner):
            t = int(vals[to + n * inner + j])
            if t == ignore:
                if not backward and reduction == NONE:
                    vals[yo + n * inner + j] = 0.0
                continue
            w = vals[wo + t] if wo >= 0 else 1.0
            total_w += w
            v = -w * vals[xo + (n * nc + t) * inner + j]
            total += v
            if not backward and reduction == NONE:
                vals[yo + n * inner + j] = v
    if not backward:
        if reduction == SUM:
            vals[yo] = total
        elif reduction == MEAN:
            vals[yo] = total / total_w if total_w != 0.0 else (np.nan if total == 0.0 else total / total_w)
        return
    for n in range(nb):
        for j in range(inner):
            t = int(vals[to + n * inner + j])
            if t == ignore:
                continue
            w = vals[wo + t] if wo >= 0 else 1.0
            g = adj[yo + n * inner + j] if reduction == NONE else adj[yo]
            if reduction == MEAN:
                g = g / total_w
            adj[xo + (n * nc + t) * inner + j] -= w * g


# -- softmax and log_softmax over the middle axis of (outer, n, inner) --------------------------------------------

@njit(cache=True)
def _softmax(o, ints, aux, off, i, pa, vals, adj, backward):
    q, _ = _extras(ints, aux[i])
    outer, n, inner = ints[q], ints[q + 1], ints[q + 2]
    xo = off[pa]
    yo = off[i]
    log = o == op.LOG_SOFTMAX
    for a in range(outer):
        for c in range(inner):
            base = a * n * inner + c
            if backward:
                s = 0.0
                for k in range(n):
                    j = base + k * inner
                    s += adj[yo + j] if log else adj[yo + j] * vals[yo + j]
                for k in range(n):
                    j = base + k * inner
                    y = vals[yo + j]
                    if log:
                        adj[xo + j] += adj[yo + j] - np.exp(y) * s
                    else:
                        adj[xo + j] += y * (adj[yo + j] - s)
                continue
            m = -np.inf
            for k in range(n):
                m = max(m, vals[xo + base + k * inner])
            s = 0.0
            for k in range(n):
                s += np.exp(vals[xo + base + k * inner] - m)
            for k in range(n):
                j = base + k * inner
                vals[yo + j] = vals[xo + j] - m - np.log(s) if log else np.exp(vals[xo + j] - m) / s


# -- layer norm over the trailing m elements of each of r rows ---------------------------------------------------

@njit(cache=True)
def _layer_norm(ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, need_c, backward):
    q, ex = _extras(ints, aux[i])
    r, m = ints[q], ints[q + 1]
    xo = off[pa]
    yo = off[i]
    wo = off[pb] if pb >= 0 else -1
    bo = off[ex[0] - base] if len(ex) else -1
    xhat = np.empty(m)
    for row in range(r):
        s = 0.0
        for k in range(m):
            s += vals[xo + row * m + k]
        mu = s / m
        v = 0.0
        for k in range(m):
            d = vals[xo + row * m + k] - mu
            v += d * d
        rstd = 1.0 / np.sqrt(v / m + const)
        for k in range(m):
            xhat[k] = (vals[xo + row * m + k] - mu) * rstd
        if not backward:
            for k in range(m):
                y = xhat[k]
                if wo >= 0:
                    y *= vals[wo + k]
                if bo >= 0:
                    y += vals[bo + k]
                vals[yo + row * m + k] = y
            continue
        mean_g = 0.0
        mean_gx = 0.0
        for k in range(m):
            g = adj[yo + row * m + k]
            if need_b:
                adj[wo + k] += g * xhat[k]
            if need_c:
                adj[bo + k] += g
            gh = g * vals[wo + k] if wo >= 0 else g
            mean_g += gh
            mean_gx += gh * xhat[k]
        if need_a:
            mean_g /= m
            mean_gx /= m
            for k in range(m):
                g = adj[yo + row * m + k]
                gh = g * vals[wo + k] if wo >= 0 else g
                adj[xo + row * m + k] += rstd * (gh - mean_g - xhat[k] * mean_gx)


# -- embedding: y[k, :] = weight[index[k], :] ---------------------------------------------------------------------

@njit(cache=True)
def _embedding(ints, aux, off, i, pa, pb, vals, adj, backward):
    q, _ = _extras(ints, aux[i])
    n, d, padding_idx = ints[q], ints[q + 1], ints[q + 2]
    wo = off[pa]
    io = off[pb]
    yo = off[i]
    for k in range(n):
        row = int(vals[io + k])
        if backward:
            if row != padding_idx:
                for j in range(d):
                    adj[wo + row * d + j] += adj[yo + k * d + j]
        else:
            for j in range(d):
                vals[yo + k * d + j] = vals[wo + row * d + j]


# -- 2-d convolution (conv1d runs as a height-1 conv2d) -------------------------------------------------------------

@njit(cache=True)
def _columns(vals, xo, n, g0, cg, cin, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw):
    """im2col: the (cg*kh*kw, oh*ow) matrix of input values each output position reads (0 in the padding)."""
    cols = np.zeros((cg * kh * kw, oh * ow))
    for c in range(cg):
        for u in range(kh):
            for v in range(kw):
                r = (c * kh + u) * kw + v
                for y in range(oh):
                    iy = y * sh - ph + u * dh
                    if iy < 0 or iy >= h:
                        continue
                    row = xo + ((n * cin + g0 + c) * h + iy) * w
                    for x in range(ow):
                        ix = x * sw - pw + v * dw
                        if 0 <= ix < w:
                            cols[r, y * ow + x] = vals[row + ix]
    return cols


@njit(cache=True)
def _add_columns(cols, adj, xo, n, g0, cg, cin, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw):
    """col2im: scatter-add a columns matrix back onto the input positions it was read from."""
    for c in range(cg):
        for u in range(kh):
            for v in range(kw):
                r = (c * kh + u) * kw + v
                for y in range(oh):
                    iy = y * sh - ph + u * dh
                    if iy < 0 or iy >= h:
                        continue
                    row = xo + ((n * cin + g0 + c) * h + iy) * w
                    for x in range(ow):
                        ix = x * sw - pw + v * dw
                        if 0 <= ix < w:
                            adj[row + ix] += cols[r, y * ow + x]


@njit(cache=True)
def _conv2d(ints, aux, off, base, i, pa, pb, vals, adj, need_a, need_b, need_c, backward):
    """Per sample and group: y = W_g @ im2col(x) + bias, so both passes are matrix products (BLAS)."""
    q, ex = _extras(ints, aux[i])
    nb, cin, h, w, cout, kh, kw, oh, ow = ints[q:q + 9]
    sh, sw, ph, pw, dh, dw, groups = ints[q + 9:q + 16]
    xo = off[pa]
    wo = off[pb]
    yo = off[i]
    bo = off[ex[0] - base] if len(ex) else -1
    cg = cin // groups
    og = cout // groups
    kk = cg * kh * kw
    m = oh * ow
    for n in range(nb):
        for g in range(groups):
            wg = vals[wo + g * og * kk:wo + (g + 1) * og * kk].reshape((og, kk))
            ys = yo + (n * cout + g * og) * m
            if not need_b and backward and not need_a:
                cols = np.zeros((0, 0))
            else:
                cols = _columns(vals, xo, n, g * cg, cg, cin, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw)
            if not backward:
                out = np.dot(wg, cols)
                for o in range(og):
                    b = vals[bo + g * og + o] if bo >= 0 else 0.0
                    for k in range(m):
                        vals[ys + o * m + k] = out[o, k] + b
                continue
            grad = adj[ys:ys + og * m].reshape((og, m))
            if need_c:
                for o in range(og):
                    s = 0.0
                    for k in range(m):
                        s += grad[o, k]
                    adj[bo + g * og + o] += s
            if need_b:
                adj[wo + g * og * kk:wo + (g + 1) * og * kk].reshape((og, kk))[:, :] += np.dot(grad, cols.T)
            if need_a:
                _add_columns(np.dot(wg.T, grad), adj, xo, n, g * cg, cg, cin, h, w, kh, kw, oh, ow, sh, sw, ph, pw,
                             dh, dw)


# -- pooling over planes of (h, w) ---------------------------------------------------------------------------------

@njit(cache=True)
def _max_pool2d(ints, aux, off, i, pa, vals, adj, backward):
    """Backward scatters through the argmax indices in the params; the forward replay recomputes them."""
    q, _ = _extras(ints, aux[i])
    planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw = ints[q:q + 13]
    idx = q + 13
    xo = off[pa]
    yo = off[i]
    for p in range(planes):
        for y in range(oh):
            for x in range(ow):
                k = (p * oh + y) * ow + x
                if backward:
                    adj[xo + p * h * w + ints[idx + k]] += adj[yo + k]
                    continue
                best = -np.inf
                arg = -1
                for u in range(kh):
                    iy = y * sh - ph + u * dh
                    if iy < 0 or iy >= h:
                        continue
                    for v in range(kw):
                        ix = x * sw - pw + v * dw
                        if ix < 0 or ix >= w:
                            continue
                        val = vals[xo + (p * h + iy) * w + ix]
                        # the first maximum wins; a NaN propagates (as PyTorch)
                        if arg < 0 or val > best or val != val:
                            best = val
                            arg = iy * w + ix
                vals[yo + k] = best
                ints[idx + k] = arg


@njit(cache=True)
def _avg_pool2d(ints, aux, off, i, pa, vals, adj, backward):
    q, _ = _extras(ints, aux[i])
    planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw, include_pad, divisor = ints[q:q + 13]
    xo = off[pa]
    yo = off[i]
    for p in range(planes):
        for y in range(oh):
            for x in range(ow):
                k = (p * oh + y) * ow + x
                y0 = y * sh - ph
                x0 = x * sw - pw
                y1 = min(y0 + kh, h + ph)
                x1 = min(x0 + kw, w + pw)
                size = (y1 - y0) * (x1 - x0)
                y0 = max(y0, 0)
                x0 = max(x0, 0)
                y1 = min(y1, h)
                x1 = min(x1, w)
                if divisor > 0:
                    div = divisor
                elif include_pad:
                    div = size
                else:
                    div = (y1 - y0) * (x1 - x0)
                if backward:
                    g = adj[yo + k] / div
                    for iy in range(y0, y1):
                        for ix in range(x0, x1):
                            adj[xo + (p * h + iy) * w + ix] += g
                    continue
                s = 0.0
                for iy in range(y0, y1):
                    for ix in range(x0, x1):
                        s += vals[xo + (p * h + iy) * w + ix]
                vals[yo + k] = s / div


# -- dispatch ------------------------------------------------------------------------------------------------------

@njit(cache=True)
def _run(o, ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, need_c, backward):
    if o == op.SOFTMAX or o == op.LOG_SOFTMAX:
        _softmax(o, ints, aux, off, i, pa, vals, adj, backward)
    elif o == op.NLL_LOSS or o == op.NLL_LOSS2D:
        _nll(ints, aux, off, base, i, pa, pb, vals, adj, backward)
    elif o == op.DIV_COUNT:
        n = size_at(ints, aux[i])
        for k in range(n):
            if backward:
                adj[off[pa] + k] += adj[off[i] + k] / const
            else:
                vals[off[i] + k] = vals[off[pa] + k] / const
    elif o == op.LAYER_NORM:
        _layer_norm(ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, need_c, backward)
    elif o == op.EMBEDDING:
        _embedding(ints, aux, off, i, pa, pb, vals, adj, backward)
    elif o == op.CONVOLUTION:
        _conv2d(ints, aux, off, base, i, pa, pb, vals, adj, need_a, need_b, need_c, backward)
    elif o == op.MAX_POOL2D:
        _max_pool2d(ints, aux, off, i, pa, vals, adj, backward)
    elif o == op.AVG_POOL2D:
        _avg_pool2d(ints, aux, off, i, pa, vals, adj, backward)
    else:
        _pointwise_loss(o, ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, backward)


@njit(cache=True)
def nn_backward(o, ints, aux, off, ops, base, i, pa, pb, need_a, need_b, const, vals, adj):
    """Accumulate the adjoints of an NN record's inputs (a, b and the extra inputs; the sweep marks them)."""
    _, ex = _extras(ints, aux[i])
    # the only differentiable extra input is the bias of convolution and layer norm (loss weights are constants)
    need_c = len(ex) > 0 and ops[ex[0] - base] != op.CONST and (o == op.CONVOLUTION or o == op.LAYER_NORM)
    _run(o, ints, aux, off, base, i, pa, pb, const, vals, adj, need_a, need_b, need_c, True)


@njit(cache=True)
def nn_forward(o, ints, aux, off, base, i, pa, pb, const, vals):
    """Recompute an NN record's output values (and data-dependent params: max-pool argmaxes) from its inputs."""
    _run(o, ints, aux, off, base, i, pa, pb, const, vals, vals, False, False, False, False)


@njit(cache=True)
def nn_record_forward(f, i):
    """The NN unit's forward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    nn_forward(ops[i], ints, aux, off, base, i, pa, pb, const[i], vals)
    return UNIT_OK


@njit(cache=True)
def nn_record_backward(f, i, fresh, grads):
    """The NN unit's backward."""
    ops, a, b, aux, off, const, flags, ints, vals, adj, need, kernels, base = f
    pa, pb = inputs_of(a, b, i, base)
    nn_backward(ops[i], ints, aux, off, ops, base, i, pa, pb, (grads & 1) != 0, (grads & 2) != 0, const[i], vals,
                adj)
