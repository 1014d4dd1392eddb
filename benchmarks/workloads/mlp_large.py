"""mlp_large: one SGD step of a large relu MLP (1024-1024-1024-10, batch 256): matmul-bound."""
from benchmarks.workloads.mlp import MLP, impls

NAME = "mlp_large"
DESCRIPTION = "SGD step of a 1024-1024-1024-10 relu MLP, batch 256, cross-entropy loss, float64"
CASES = ("fwd+bwd+sgd",)
# BLAS libraries block their sums differently; 1024-term dot products differ in the last bits.
RTOL = 1e-8

CONFIG = MLP(sizes=(1024, 1024, 1024, 10), batch=256, activation="relu")
IMPLS = impls(CONFIG)


def configure(smoke: bool) -> None:
    """A narrower network for --smoke."""
    CONFIG.sizes, CONFIG.batch = ((64, 64, 64, 10), 16) if smoke else ((1024, 1024, 1024, 10), 256)
