"""An MLP learns XOR with nn.Sequential, nn.MSELoss and Adam: PyTorch code with `torch` replaced by `tapegrad`."""
import tapegrad
from tapegrad import nn, optim

tapegrad.manual_seed(0)
x = tapegrad.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y = tapegrad.tensor([[0.0], [1.0], [1.0], [0.0]])

model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
loss_fn = nn.MSELoss()
optimizer = optim.Adam(model.parameters(), lr=0.05)

for epoch in range(500):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()

with tapegrad.no_grad():
    predicted = (model(x) > 0.5).float()
accuracy = (predicted == y).float().mean().item()
print(model)
print("predictions:", predicted.flatten().tolist())
print(f"accuracy: {accuracy:.0%}")
print("final loss below 0.01:", loss.item() < 0.01)
