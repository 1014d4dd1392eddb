"""Operation families. Importing this package attaches every operation to Tensor."""
from . import complex, elementwise, inplace, linalg, nn, reduce, shape  # noqa: F401
