"""Identity, Linear, Bilinear."""
import math

from ... import creation
from ...ops.linalg import matmul
from ..functional import linear
from ..parameter import Parameter
from .. import init
from .module import Module


def _uninitialized(*shape, dtype=None):
    return Parameter(creation.empty(*shape, dtype=dtype))


class Identity(Module):
    """Returns its input unchanged (accepts and ignores any constructor arguments)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


class Linear(Module):
    """y = x A^T + b, with weight (out_features, in_features) and PyTorch's default initialisation."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _uninitialized(out_features, in_features, dtype=dtype)
        if bias:
            self.bias = _uninitialized(out_features, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        # U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, as PyTorch's kaiming_uniform_(a=sqrt(5)) works out to
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return linear(input, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y_k = x1^T A_k x2 + b_k with weight (out_features, in1_features, in2_features)."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = _uninitialized(out_features, in1_features, in2_features, dtype=dtype)
        if bias:
            self.bias = _uninitialized(out_features, dtype=dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        if input1.shape[:-1] != input2.shape[:-1]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match: got {list(input1.shape[:-1])} "
                               f"and {list(input2.shape[:-1])}")
        out_f, in1, in2 = self.out_features, self.in1_features, self.in2_features
        lead = tuple(input1.shape[:-1])
        x1 = input1.reshape(-1, in1)
        x2 = input2.reshape(-1, 1, in2)
        # (N, in1) @ (in1, out*in2) -> (N, out, in2), then contract in2 with x2
        w = self.weight.permute(1, 0, 2).reshape(in1, out_f * in2)
        y = (matmul(x1, w).reshape(-1, out_f, in2) * x2).sum(-1)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, out_f)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
