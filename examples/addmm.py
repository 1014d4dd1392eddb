"""addmm(input, mat1, mat2) = input + mat1 @ mat2, and the gradients of all three operands."""
import tapegrad

input = tapegrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
mat1 = tapegrad.eye(2, requires_grad=True)
mat2 = tapegrad.tensor([[5.0, 6.0], [7.0, 8.0]], requires_grad=True)
out = tapegrad.addmm(input, mat1, mat2)
print(out)
out.backward(tapegrad.ones_like(out))
print(input.grad)
print(mat1.grad)
print(mat2.grad)
