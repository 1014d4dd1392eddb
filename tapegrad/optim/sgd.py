"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from .._kernels import optim as kernels
from .optimizer import Optimizer, required


class SGD(Optimizer):
    has_step = False

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        if lr is not required and lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _buffer_names(self, group):
        return ["momentum_buffer"] if group["momentum"] != 0 else []

    def _update(self, layout, group, p, g, active):
        momentum = float(group["momentum"])
        buf = layout.buffer("momentum_buffer") if momentum != 0 else layout.empty
        kernels.sgd_update(p, g, layout.offsets, active, layout.has_state, buf, float(group["lr"]), momentum,
                           float(group["dampening"]), float(group["weight_decay"]), bool(group["nesterov"]),
                           bool(group["maximize"]))
