"""Which tensors are leaves, which require grad, and what backward says when nothing does."""
import tapegrad

a = tapegrad.tensor([4.0, 9.0])
print(a.is_leaf, a.requires_grad)
b = tapegrad.sqrt(a)
print(b, b.is_leaf, b.requires_grad)
b.requires_grad_(True)
print(b, b.is_leaf, b.requires_grad)
c = b * 2
print(c.is_leaf, c.requires_grad)

m = a.ne(tapegrad.tensor([4.0, 0.0]))
print(m, m.dtype, m.requires_grad, m.is_leaf)
try:
    m.backward(tapegrad.ones_like(m))
except RuntimeError as err:
    print("RuntimeError:", err)
