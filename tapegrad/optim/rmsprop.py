"""RMSprop with optional momentum and centring."""
from .._kernels import optim as kernels
from .optimizer import Optimizer


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _buffer_names(self, group):
        return (["square_avg"] + (["momentum_buffer"] if group["momentum"] > 0 else [])
                + (["grad_avg"] if group["centered"] else []))

    def _update(self, layout, group, p, g, active):
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        kernels.rmsprop_update(p, g, layout.offsets, active, layout.steps, layout.buffer("square_avg"),
                               layout.buffer("momentum_buffer") if momentum > 0 else layout.empty,
                               layout.buffer("grad_avg") if centered else layout.empty,
                               float(group["lr"]), float(group["alpha"]), float(group["eps"]),
                               float(group["weight_decay"]), momentum, centered, bool(group["maximize"]))
