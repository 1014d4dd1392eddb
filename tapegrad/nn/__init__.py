"""Neural-network building blocks in PyTorch's shape: tapegrad.nn.functional, modules, init, utils."""
from . import functional  # noqa: F401
