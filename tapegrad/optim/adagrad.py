"""Adagrad with learning-rate decay and an initial accumulator value."""
from .._kernels import optim as kernels
from .optimizer import Optimizer


class Adagrad(Optimizer):
    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _init_group_state(self, layout, group):
        # PyTorch creates Adagrad's state (step 0, sum = initial value) when the parameters are added
        layout.buffer("sum", float(group["initial_accumulator_value"]))
        layout.has_state[:] = True

    def _buffer_names(self, group):
        return ["sum"]

    def _update(self, layout, group, p, g, active):
        kernels.adagrad_update(p, g, layout.offsets, active, layout.steps,
                               layout.buffer("sum", float(group["initial_accumulator_value"])),
                               float(group["lr"]), float(group["lr_decay"]), float(group["weight_decay"]),
                               float(group["eps"]), bool(group["maximize"]))
