"""Random programs over the op table's elementwise ops, plus reductions, views and in-place writes: one
definition shared by the torch comparison (tests/test_vs_torch.py) and the compile replay test
(tests/test_compile.py). Each program runs unchanged on tapegrad or torch (`L` is the library)."""
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from tapegrad.testing import arrays, mutually_broadcastable_shapes
from tapegrad.testing.op_db import DOMAINS, OPS, OPS_BY_NAME

TORCH_OPS = [s for s in OPS if s.torch]

UNARY = [s.name for s in TORCH_OPS if s.kind == "unary"]
BINARY = [s.name for s in TORCH_OPS if s.kind == "binary"]
STRUCTURAL = ["prog_sum_keepdim", "prog_mean_keepdim", "prog_unsqueeze0", "prog_expand_together", "prog_inplace_add",
              "prog_inplace_mul_view", "prog_setitem_first", "prog_getitem_last"]


class Step(NamedTuple):
    op: str
    operands: tuple
    dim: int = 0

    def __repr__(self):
        return f"{self.op}{self.operands}" + (f"[dim={self.dim}]" if self.op.endswith("keepdim") else "")


def _into_domain(x, domain):
    # map an arbitrary intermediate into the op's domain (positive or nonzero) without leaving the table's ops
    return x * x + 0.5 if domain in ("positive", "nonzero") else x


def _apply(L, step, pool):
    xs = [pool[i] for i in step.operands]
    if step.op in OPS_BY_NAME:
        spec = OPS_BY_NAME[step.op]
        return spec.fn(L, *(_into_domain(x, d) for x, d in zip(xs, spec.domains)))
    a = xs[0]
    if step.op in ("prog_sum_keepdim", "prog_mean_keepdim"):
        if a.ndim == 0:
            return a.sum() if step.op == "prog_sum_keepdim" else a.mean()
        return getattr(a, step.op.split("_")[1])(step.dim % a.ndim, keepdim=True)
    if step.op == "prog_unsqueeze0":
        return a.unsqueeze(0)
    if step.op == "prog_expand_together":
        b = xs[1]
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
        return a.expand(shape) * 1.0 + b
    if step.op == "prog_inplace_add":
        y, b = a * 1.0, xs[1]
        if np.broadcast_shapes(tuple(y.shape), tuple(b.shape)) == tuple(y.shape):
            y.add_(b)
            return y
        return y.add(b)
    if step.op == "prog_inplace_mul_view":
        y = a.clone()
        (y[..., :1] if y.ndim else y).mul_(1.5)
        return y
    if step.op == "prog_setitem_first":
        y, b = a * 2.0, xs[1]
        if y.ndim:
            y[0] = b.sum()
        return y
    if step.op == "prog_getitem_last":
        return a[..., -1:] if a.ndim else a[None]
    raise AssertionError(step.op)


@st.composite
def programs(draw):
    """(input arrays, steps): 2-3 mutually broadcastable inputs and 3-8 steps over the growing value pool."""
    n = draw(st.integers(2, 3))
    inputs = [draw(arrays(s, DOMAINS["real"])) for s in draw(mutually_broadcastable_shapes(n, max_side=3))]
    steps = []
    for k in range(draw(st.integers(3, 8))):
        pool = st.integers(0, n + k - 1)
        op = draw(st.sampled_from(UNARY + BINARY + STRUCTURAL))
        steps.append(Step(op, (draw(pool), draw(pool)), draw(st.integers(0, 3))))
    return inputs, steps


def run_program(L, inputs, steps):
    pool = list(inputs)
    for step in steps:
        pool.append(_apply(L, step, pool))
    return pool[-1]
