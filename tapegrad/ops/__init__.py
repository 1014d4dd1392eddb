"""Operation families. Importing this package attaches every operation to Tensor."""
from . import elementwise, inplace, linalg, reduce, shape  # noqa: F401
