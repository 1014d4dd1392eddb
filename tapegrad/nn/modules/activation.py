"""Activation modules. ReLU, Tanh and Sigmoid use tapegrad's own ops; the rest call tapegrad.nn.functional."""
from ... import ops as _ops  # noqa: F401
from ...ops import elementwise as E
from .. import functional as F
from .. import init
from ..parameter import Parameter
from ... import creation
from .module import Module


class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return E.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, input):
        return E.tanh(input)


class Sigmoid(Module):
    def forward(self, input):
        return E.sigmoid(input)


class _InplaceFlag(Module):
    """An activation whose only option is `inplace` (calls F.<fname>(input, inplace=...))."""

    fname = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return getattr(F, self.fname)(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class SiLU(_InplaceFlag):
    fname = "silu"


class Mish(_InplaceFlag):
    fname = "mish"


class ReLU6(_InplaceFlag):
    fname = "relu6"


class SELU(_InplaceFlag):
    fname = "selu"


class Hardsigmoid(_InplaceFlag):
    fname = "hardsigmoid"


class Hardswish(_InplaceFlag):
    fname = "hardswish"


class _Plain(Module):
    """An activation without options (calls F.<fname>(input))."""

    fname = None

    def forward(self, input):
        return getattr(F, self.fname)(input)


class Softsign(_Plain):
    fname = "softsign"


class Tanhshrink(_Plain):
    fname = "tanhshrink"


class LogSigmoid(_Plain):
    fname = "logsigmoid"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class ELU(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class _SoftmaxLike(Module):
    fname = None

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return getattr(F, self.fname)(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxLike):
    fname = "softmax"


class LogSoftmax(_SoftmaxLike):
    fname = "log_softmax"


class Softmin(_SoftmaxLike):
    fname = "softmin"


class PReLU(Module):
    """max(0, x) + weight * min(0, x) with a learned weight (num_parameters values, init 0.25)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(creation.empty(num_parameters, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        init_module.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


init_module = init
