"""tapegrad.autograd: backward/grad entry points, grad modes, grad_fn views, anomaly mode and the tape summary."""
from .anomaly_mode import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from .engine import backward, grad
from .grad_mode import enable_grad, no_grad, set_grad_enabled
from .graph import AccumulateGrad, Node
from .function import Function, FunctionCtx, once_differentiable
from .summary import tape_summary

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "Node", "AccumulateGrad", "Function",
           "FunctionCtx", "once_differentiable", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "tape_summary"]
