"""Backward twice through the same graph: retain_graph=True keeps it, the next call frees it."""
import tapegrad

x = tapegrad.ones(5, requires_grad=True)
y = x + 2
z = y * y * 3
out = z.mean()
out.backward()
print(x.grad)

x = tapegrad.ones(5, requires_grad=True)
y = x + 2
z = y * y * 3
out = z.mean()
out.backward(retain_graph=True)
print(x.grad)
out.backward()          # gradients accumulate into .grad
print(x.grad)
try:
    out.backward()      # the graph was freed by the previous call
except RuntimeError as err:
    print("RuntimeError:", str(err).splitlines()[0])

# a non-scalar output needs the gradient of something with respect to it
x = tapegrad.ones(5, requires_grad=True)
z = (x + 2) * (x + 2) * 3
z.backward(tapegrad.ones_like(z))
print(x.grad)
