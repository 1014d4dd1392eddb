"""tg.compile: record a function's tape once, then replay it forward and backward in compiled code."""
import numpy as np

import tapegrad as tg


def rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


value_and_grad = tg.compile(tg.value_and_grad(rosenbrock))

x = tg.zeros(10, dtype=tg.float64)
for step in range(2000):                    # the first call records, the other 1,999 replay
    f, g = value_and_grad(x)
    x = x - 1e-3 * g
print(f"f after 2000 steps: {f.item():.6f}")
print(value_and_grad.stats)


# many points at once: the rows are replayed in parallel on all cores
points = tg.tensor(np.random.default_rng(0).uniform(-2.0, 2.0, (1000, 10)))
values, grads = tg.vmap(value_and_grad)(points)
print("vmap:", tuple(values.shape), tuple(grads.shape))


# Python control flow on tensor values is guarded: a call that takes the other branch records a second trace
@tg.compile
def soft_abs(x):
    if x.sum() > 0:
        return x * x
    return -x


print(soft_abs(tg.tensor([1.0, 2.0])), soft_abs(tg.tensor([-1.0, -2.0])), soft_abs(tg.tensor([3.0, 1.0])))
print(soft_abs.stats)
