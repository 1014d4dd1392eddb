"""Neural-network building blocks in PyTorch's shape: tapegrad.nn.functional, modules, init, utils."""
from . import functional  # noqa: F401
from .parameter import Parameter  # noqa: F401
from .modules import *  # noqa: F401,F403
from .modules import Module  # noqa: F401
from . import init, utils  # noqa: F401
