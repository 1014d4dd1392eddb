"""Autograd basics: build a small graph from a leaf that requires grad, then backpropagate a scalar."""
import tapegrad

x = tapegrad.tensor([2.0, 3.0], requires_grad=True)
y = x + 2
print(y)
z = y * y * 3
print(z)
out = z.mean()
print(out)

out.backward()
print(x.grad)   # d(out)/dx = 6 * (x + 2) / 2 = 3 * (x + 2)
