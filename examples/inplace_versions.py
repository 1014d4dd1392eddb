"""In-place changes after recording: fine when backward does not need the old value, an error when it does."""
import tapegrad

x = tapegrad.ones(1, requires_grad=True)
y = x + 2
z = 2 * y           # MulBackward0 with a scalar saves nothing of y
print(y._version)
y[0] = -2.0
print(y._version)
z.backward()
print(x.grad)

x = tapegrad.ones(1, requires_grad=True)
y = x + 2
z = y * y           # saves y for its backward
y[0] = -2.0
try:
    z.backward()
except RuntimeError as err:
    print("RuntimeError:", str(err).split(":")[0])
