"""mlp_step: one SGD training step of a small tanh MLP (64-64-64-10, batch 32, float64); the nn systems write it
with nn.Sequential, nn.CrossEntropyLoss and optim.SGD."""
from benchmarks.workloads.mlp import MLP, impls, nn_impl

NAME = "mlp_step"
DESCRIPTION = "SGD step of a 64-64-64-10 tanh MLP, batch 32, cross-entropy loss, float64"
CASES = ("fwd+bwd+sgd",)
RTOL = 1e-9

CONFIG = MLP(sizes=(64, 64, 64, 10), batch=32, activation="tanh")
IMPLS = {**impls(CONFIG), "tapegrad nn": nn_impl(CONFIG), "torch nn": nn_impl(CONFIG)}
