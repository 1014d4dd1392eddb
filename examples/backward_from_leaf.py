"""backward() from a scalar result, and backward(gradient) from a leaf itself."""
import tapegrad

x = tapegrad.ones(1, requires_grad=True)
y = 2 * x
z = y ** 2
z.backward()
print(x.grad)       # dz/dx = 8 * x

x = tapegrad.ones(1, requires_grad=True)
y = 2 * x
z = y ** 2
x.backward(z)       # the gradient of x with respect to itself, scaled by z
print(x.grad)
