"""tapegrad.linalg: PyTorch's torch.linalg namespace (the operations live in tapegrad/ops/linalg.py)."""
from .ops.linalg import (LinAlgError, det, inv, linalg_cholesky as cholesky, matmul, slogdet,  # noqa: F401
                         solve, vecdot)

from .ops.reduce import vector_norm  # noqa: F401

__all__ = ["LinAlgError", "cholesky", "det", "inv", "matmul", "slogdet", "solve", "vecdot", "vector_norm"]
