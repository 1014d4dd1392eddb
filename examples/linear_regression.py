"""Fit y = w * x + b with optim.SGD: PyTorch's training loop with `torch` replaced by `tapegrad`."""
import tapegrad
from tapegrad import optim

x = tapegrad.tensor([1.0, 2.0, 3.0])
y = tapegrad.tensor([3.0, 5.0, 7.0])
w = tapegrad.tensor(1.0, requires_grad=True)
b = tapegrad.tensor(0.0, requires_grad=True)
optimizer = optim.SGD([w, b], lr=0.01)

for step in range(100):
    optimizer.zero_grad()
    loss = ((w * x + b - y) ** 2).sum()
    loss.backward()
    optimizer.step()
    if step % 25 == 0:
        print(f"step {step:3d}  loss {loss.item():.4f}")

print(f"w = {w.item():.4f}, b = {b.item():.4f}")
print(w)
print(b)
