"""Optimizer update kernels: one call updates every parameter of a parameter group.

A group's parameters, gradients and state live in flat float64 buffers; `offsets[k]:offsets[k + 1]` is parameter
k's segment and `active[k]` says whether it has a gradient this step (parameters without one are skipped and keep
their state, as in PyTorch). The arithmetic follows PyTorch's single-tensor CPU implementations operation by
operation so that float64 results agree to rounding.
"""
import math

from numba import njit


@njit(cache=True, inline="always")
def _lerp(start, end, weight):
    """PyTorch's lerp: start + weight * (end - start), written from the nearer end."""
    if weight < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


@njit(cache=True)
def sgd_update(p, g, offsets, active, has_buffer, momentum_buffer, lr, momentum, dampening, weight_decay,
               nesterov, maximize):
    """SGD with optional momentum (first step: buffer = gradient), dampening, Nesterov and weight decay."""
    for k in range(offsets.size - 1):
        if not active[k]:
            continue
        first = not has_buffer[k]
        for i in range(offsets[k], offsets[k + 1]):
            d = -g[i] if maximize else g[i]
            if weight_decay != 0.0:
                d = d + weight_decay * p[i]
            if momentum != 0.0:
                if first:
                    buf = d
                else:
                    buf = momentum_buffer[i] * momentum + (1.0 - dampening) * d
                momentum_buffer[i] = buf
                d = d + momentum * buf if nesterov else buf
            p[i] = p[i] + (-lr) * d
        if momentum != 0.0:
            has_buffer[k] = True


@njit(cache=True)
def adam_update(p, g, offsets, active, steps, exp_avg, exp_avg_sq, max_exp_avg_sq, lr, beta1, beta2, eps,
                weight_decay, amsgrad, maximize, decoupled):
    """Adam / AdamW (decoupled weight decay), with optional AMSGrad."""
    for k in range(offsets.size - 1):
        if not active[k]:
            continue
        steps[k] += 1.0
        step = steps[k]
        bias_correction1 = 1.0 - beta1 ** step
        bias_correction2 = 1.0 - beta2 ** step
        step_size = lr / bias_correction1
        bc2_sqrt = bias_correction2 ** 0.5
        for i in range(offsets[k], offsets[k + 1]):
            d = -g[i] if maximize else g[i]
            if weight_decay != 0.0:
                if decoupled:
                    p[i] = p[i] * (1.0 - lr * weight_decay)
                else:
                    d = d + weight_decay * p[i]
            m = _lerp(exp_avg[i], d, 1.0 - beta1)
            exp_avg[i] = m
            v = exp_avg_sq[i] * beta2 + (1.0 - beta2) * d * d
            exp_avg_sq[i] = v
            if amsgrad:
                v = max(max_exp_avg_sq[i], v)
                max_exp_avg_sq[i] = v
            denom = math.sqrt(v) / bc2_sqrt + eps
            p[i] = p[i] + (-step_size) * (m / denom)


@njit(cache=True)
def rmsprop_update(p, g, offsets, active, steps, square_avg, momentum_buffer, grad_avg, lr, alpha, eps,
                   weight_decay, momentum, centered, maximize):
    """RMSprop with optional momentum and centring."""
    for k in range(offsets.size - 1):
        if not active[k]:
            continue
        steps[k] += 1.0
        for i in range(offsets[k], offsets[k + 1]):
            d = -g[i] if maximize else g[i]
            if weight_decay != 0.0:
                d = d + weight_decay * p[i]
            sq = square_avg[i] * alpha + (1.0 - alpha) * d * d
            square_avg[i] = sq
            if centered:
                ga = _lerp(grad_avg[i], d, 1.0 - alpha)
                grad_avg[i] = ga
                avg = math.sqrt(sq + (-ga) * ga) + eps
            else:
                avg = math.sqrt(sq) + eps
            if momentum > 0.0:
                buf = momentum_buffer[i] * momentum + d / avg
                momentum_buffer[i] = buf
                p[i] = p[i] + (-lr) * buf
            else:
                p[i] = p[i] + (-lr) * (d / avg)


@njit(cache=True)
def adagrad_update(p, g, offsets, active, steps, state_sum, lr, lr_decay, weight_decay, eps, maximize):
    """Adagrad with learning-rate decay lr / (1 + (step - 1) * lr_decay)."""
    for k in range(offsets.size - 1):
        if not active[k]:
            continue
        steps[k] += 1.0
        clr = lr / (1.0 + (steps[k] - 1.0) * lr_decay)
        for i in range(offsets[k], offsets[k + 1]):
            d = -g[i] if maximize else g[i]
            if weight_decay != 0.0:
                d = d + weight_decay * p[i]
            s = state_sum[i] + d * d
            state_sum[i] = s
            p[i] = p[i] + (-clr) * (d / (math.sqrt(s) + eps))
