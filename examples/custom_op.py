"""Writing your own differentiable operations, two ways, and property-testing them in a few lines.

Run it:            python examples/custom_op.py
Test it (pytest):  pytest examples/custom_op.py
"""
import numpy as np
from numba import njit

import tapegrad as tg
from tapegrad.testing import floats_avoiding, gradcheck, given_op, tensors


# 1. A Python custom op: forward and backward are ordinary tapegrad/numpy code.
class LogAddExp(tg.autograd.Function):
    """log(exp(a) + exp(b)), computed without overflow."""

    @staticmethod
    def forward(ctx, a, b):
        m = tg.as_tensor(np.maximum(a.detach().numpy(), b.detach().numpy()))   # a constant shift
        out = m + ((a - m).exp() + (b - m).exp()).log()
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        return grad * (a - out).exp(), grad * (b - out).exp()


# 2. A compiled custom op: numba kernels that run inside tapegrad's compiled backward sweep.
@njit(cache=True)
def softplus_forward(x, out):
    for i in range(x.size):
        v = x.flat[i]
        out.flat[i] = max(v, 0.0) + np.log1p(np.exp(-abs(v)))


@njit(cache=True)
def softplus_vjp(x, out, grad_out, grad_x):
    # vjp kernels add into the input gradients
    for i in range(x.size):
        grad_x.flat[i] += grad_out.flat[i] / (1.0 + np.exp(-x.flat[i]))


softplus = tg.custom_op("Softplus", softplus_forward, softplus_vjp)


# 3. Property tests: each is one line. Hypothesis draws shapes and values, gradcheck compares backward
#    with central finite differences, and a failure shrinks to a small example that names the op.
#    (LogAddExp's backward does not undo broadcasting, so both inputs get the same shape.)
test_logaddexp = given_op(LogAddExp.apply, tensors(shape=(2, 3)), tensors(shape=(2, 3)))
test_softplus = given_op(softplus, tensors(elements=floats_avoiding((), min_value=-20, max_value=20)))


if __name__ == "__main__":
    a = tg.tensor([1.0, 2.0, 1000.0], dtype=tg.float64, requires_grad=True)
    b = tg.tensor([0.5, 3.0, 999.0], dtype=tg.float64, requires_grad=True)
    y = LogAddExp.apply(a, b)
    print(y)
    y.sum().backward()
    print(a.grad, b.grad)

    x = tg.tensor([-3.0, 0.0, 3.0], dtype=tg.float64, requires_grad=True)
    z = softplus(x)
    print(z)
    z.sum().backward()
    print(x.grad)

    print("gradcheck:", gradcheck(LogAddExp.apply, (a.detach().requires_grad_(), b.detach().requires_grad_())),
          gradcheck(softplus, (x.detach().requires_grad_(),)))

    # what a failure looks like: a deliberately wrong vjp (missing the factor 1/(1+exp(-x)))
    @njit
    def wrong_vjp(x, out, grad_out, grad_x):
        for i in range(x.size):
            grad_x.flat[i] += grad_out.flat[i]

    broken = tg.custom_op("BrokenSoftplus", softplus_forward, wrong_vjp)
    try:
        gradcheck(broken, (x.detach().requires_grad_(),))
    except tg.testing.GradcheckError as err:
        print("caught:", str(err).splitlines()[0])
