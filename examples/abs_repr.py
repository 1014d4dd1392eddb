"""A result of an operation prints its grad_fn; a leaf prints requires_grad=True."""
import tapegrad

x = tapegrad.tensor([-1.0, 2.0, -3.0], requires_grad=True)
print(x)
y = tapegrad.abs(x)
print(y)
print(y.grad_fn.name())
