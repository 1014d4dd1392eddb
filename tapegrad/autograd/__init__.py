"""tapegrad.autograd: backward/grad entry points, grad modes and grad_fn views."""
from .engine import backward, grad
from .grad_mode import enable_grad, no_grad, set_grad_enabled
from .graph import AccumulateGrad, Node
from .function import Function, FunctionCtx, once_differentiable

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "Node", "AccumulateGrad", "Function",
           "FunctionCtx", "once_differentiable"]
