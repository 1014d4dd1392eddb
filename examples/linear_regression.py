"""Fit y = w * x + b by hand-written gradient descent."""
import tapegrad

x = tapegrad.tensor([1.0, 2.0, 3.0])
y = tapegrad.tensor([3.0, 5.0, 7.0])
w = tapegrad.tensor(1.0, requires_grad=True)
b = tapegrad.tensor(0.0, requires_grad=True)
lr = 0.01

for step in range(100):
    loss = ((w * x + b - y) ** 2).sum()
    loss.backward()
    with tapegrad.no_grad():
        w -= lr * w.grad
        b -= lr * b.grad
    w.grad.zero_()
    b.grad.zero_()
    if step % 25 == 0:
        print(f"step {step:3d}  loss {loss.item():.4f}")

print(f"w = {w.item():.4f}, b = {b.item():.4f}")
print(w)
print(b)
