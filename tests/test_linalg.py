"""Linear algebra against PyTorch: matmul's graph for every rank pair and requires_grad pattern, errors (with
nothing recorded), singular det gradients, and the LINALG / MATMUL forward-replay kernels."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad._kernels import opcodes as op
from tapegrad._kernels.linalg import linalg_forward
from tapegrad._kernels.matmul import addmm_forward_input, matmul_forward
from tapegrad._tape import current_tape
from tapegrad.testing.gradcheck import gradcheck

torch = pytest.importorskip("torch")


def _both(arr, rg=True, dtype=np.float64):
    arr = np.asarray(arr, dtype=dtype)
    return tg.tensor(arr.copy(), requires_grad=rg), torch.tensor(arr.copy(), requires_grad=rg)


@st.composite
def _matmul_case(draw):
    """Operands of every rank pair 1..4 with broadcasting batch dims (size-1 ones included) and which of
    them requires grad."""
    ra, rb = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch = [draw(st.integers(1, 3)) for _ in range(2)]
    ba = tuple(1 if draw(st.booleans()) else s for s in batch)[2 - max(ra - 2, 0):] if ra > 2 else ()
    bb = tuple(1 if draw(st.booleans()) else s for s in batch)[2 - max(rb - 2, 0):] if rb > 2 else ()
    sa = (k,) if ra == 1 else ba + (n, k)
    sb = (k,) if rb == 1 else bb + (k, m)
    rg = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    transposed = draw(st.booleans())    # a non-contiguous left operand changes PyTorch's folding decision
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    return rng.standard_normal(sa), rng.standard_normal(sb), rg, transposed


@given(_matmul_case())
def test_matmul_matches_torch_for_every_rank_pair(case):
    """Values, gradients and the recorded grad_fn name equal torch's for every rank pair and grad pattern."""
    a, b, rg, transposed = case
    ta, pa = _both(a, rg[0])
    tb, pb = _both(b, rg[1])
    leaves = [(ta, pa), (tb, pb)]
    if transposed and a.ndim >= 2:
        ta, pa = _both(np.swapaxes(a, -1, -2).copy(), rg[0])
        leaves[0] = (ta, pa)
        ta, pa = ta.mT, pa.mT
    out, ref = tg.matmul(ta, tb), torch.matmul(pa, pb)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert out.grad_fn.name() == ref.grad_fn.name(), (a.shape, b.shape, rg)
    seed = np.random.default_rng(1).standard_normal(tuple(ref.shape))
    out.backward(tg.tensor(seed))
    ref.backward(torch.tensor(seed))
    for x, y in leaves:
        if not y.requires_grad:
            continue
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_matmul_operator_and_rmatmul():
    ta, pa = _both(np.arange(6.0).reshape(2, 3))
    tb, pb = _both(np.arange(3.0))
    assert np.allclose((ta @ tb).detach().numpy(), (pa @ pb).detach().numpy())
    assert (ta @ tb).grad_fn.name() == "MvBackward0"
    assert np.allclose(tb.__rmatmul__(ta).detach().numpy(), (pa @ pb).detach().numpy())


def _tape_size():
    tape = current_tape()
    tape.flush()
    return tape.n


ERRORS = [
    ("matmul", lambda L, d: L.matmul(L.ones(2, 3, dtype=d), L.ones(4, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(3, dtype=d), L.ones(4, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 3, dtype=d), L.ones(4, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 2, 3, dtype=d), L.ones(2, 4, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 2, 3, dtype=d), L.ones(3, 3, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones((), dtype=d), L.ones(3, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 3, dtype=d), L.ones(2, 4, 2, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 3, dtype=L.float32), L.ones(3, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 2, 3, dtype=L.float32), L.ones(2, 3, 5, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(3, dtype=L.float32), L.ones(3, dtype=d))),
    ("matmul", lambda L, d: L.matmul(L.ones(2, 2, 3, dtype=L.float32), L.ones(3, dtype=d))),
    ("mm", lambda L, d: L.mm(L.ones(2, 3, dtype=d), L.ones(4, 5, dtype=d))),
    ("mv", lambda L, d: L.mv(L.ones(2, 3, dtype=L.float32), L.ones(3, dtype=d))),
    ("bmm", lambda L, d: L.bmm(L.ones(2, 2, 3, dtype=d), L.ones(2, 3, 5, dtype=L.float32))),
    ("vdot", lambda L, d: L.vdot(L.ones(3, dtype=d), L.ones(4, dtype=d))),
    ("outer", lambda L, d: L.outer(L.ones(3, 1, dtype=d), L.ones(3, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.tensor([[1., 2, 0], [2, 4, 0], [0, 0, 1]], dtype=d),
                                          L.ones(3, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.stack([L.eye(3, dtype=d), L.tensor([[1., 2, 0], [2, 4, 0], [0, 0, 1]],
                                                                               dtype=d)]), L.ones(2, 3, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.ones(2, 3, dtype=d), L.ones(2, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.eye(3, dtype=d), L.ones(4, 2, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.eye(3, dtype=d), L.ones(4, dtype=d))),
    ("solve", lambda L, d: L.linalg.solve(L.eye(3, dtype=d), L.ones(3, dtype=L.float32))),
    ("solve", lambda L, d: L.linalg.solve(L.ones(2, 3, 3, dtype=d), L.ones(4, 3, 1, dtype=d))),
    ("inv", lambda L, d: L.linalg.inv(L.tensor([[1., 2, 0], [2, 4, 0], [0, 0, 1]], dtype=d))),
    ("inv", lambda L, d: L.linalg.inv(L.stack([L.eye(3, dtype=d), L.tensor([[1., 2, 0], [2, 4, 0], [0, 0, 1]],
                                                                           dtype=d)]))),
    ("inv", lambda L, d: L.linalg.inv(L.ones(2, 3, dtype=d))),
    ("inv", lambda L, d: L.linalg.inv(L.ones(3, dtype=d))),
    ("inv", lambda L, d: L.linalg.inv(L.eye(3, dtype=L.int64))),
    ("det", lambda L, d: L.linalg.det(L.ones(2, 3, dtype=d))),
    ("slogdet", lambda L, d: L.linalg.slogdet(L.ones(2, 3, dtype=d))),
    ("cholesky", lambda L, d: L.linalg.cholesky(L.ones(2, 3, dtype=d))),
    ("cholesky", lambda L, d: L.linalg.cholesky(L.tensor([[1., 2], [2, 1]], dtype=d))),
    ("cholesky", lambda L, d: L.linalg.cholesky(L.tensor([[-1., 2], [2, 1]], dtype=d))),
    ("cholesky", lambda L, d: L.linalg.cholesky(L.stack([L.eye(2, dtype=d), L.tensor([[1., 2], [2, 1]],
                                                                                     dtype=d)]))),
    ("einsum", lambda L, d: L.einsum("ij,jk", L.ones(2, 3, dtype=d), L.ones(4, 5, dtype=d))),
    ("einsum", lambda L, d: L.einsum("ij,jk", L.ones(2, 3, dtype=d))),
    ("einsum", lambda L, d: L.einsum("ijk", L.ones(2, 3, dtype=d))),
    ("einsum", lambda L, d: L.einsum("ii", L.ones(2, 3, dtype=d))),
    ("einsum", lambda L, d: L.einsum("ij->k", L.ones(2, 3, dtype=d))),
    ("tensordot", lambda L, d: L.tensordot(L.ones(2, 3, dtype=d), L.ones(4, 5, dtype=d), dims=1)),
]


def _requiring_grad(L, fn):
    """Run fn with every float tensor it creates requiring grad (so a failed validation could record)."""
    made = []

    def wrap(factory):
        def make(*args, **kw):
            t = factory(*args, **kw)
            if t.dtype in (L.float32, L.float64):
                t.requires_grad_()
            made.append(t)
            return t
        return make
    proxy = type("Lib", (), {})()
    for name in ("ones", "eye", "tensor"):
        setattr(proxy, name, wrap(getattr(L, name)))
    for name in ("matmul", "mm", "mv", "bmm", "vdot", "outer", "linalg", "einsum", "tensordot", "float32",
                 "float64", "int64"):
        setattr(proxy, name, getattr(L, name))
    proxy.stack = lambda ts: L.tensor(np.stack([t.detach().numpy() for t in ts]), requires_grad=True)
    proxy.__name__ = L.__name__
    return fn(proxy, L.float64)  # same flags in both libraries: matmul's path (and so its error) depends on them


@pytest.mark.parametrize("k", range(len(ERRORS)), ids=lambda k: f"{ERRORS[k][0]}-{k}")
def test_errors_match_torch_and_record_nothing(k):
    name, fn = ERRORS[k]
    with pytest.raises(RuntimeError) as expected:
        _requiring_grad(torch, fn)
    before = _tape_size()
    with pytest.raises(RuntimeError) as got:
        _requiring_grad(tg, fn)
    # matmul's batched shape errors add the operands' shapes after PyTorch's text
    assert str(got.value) == str(expected.value) or str(got.value).startswith(f"{expected.value} (matmul of ")
    assert isinstance(got.value, tg.linalg.LinAlgError) == isinstance(expected.value, torch.linalg.LinAlgError)
    # only leaf records (inputs entering the tape) may have been added, no operation
    tape = current_tape()
    tape.flush()
    assert all((int(o) >> 6) == op.SOURCE for o in tape.ops[before:tape.n])


def test_det_gradient_of_singular_matrix_is_the_cofactor_matrix():
    """At a rank-deficient matrix the gradient of det is its cofactor matrix (finite differences agree)."""
    a = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    x = tg.tensor(a, requires_grad=True)
    tg.linalg.det(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[4.0, -2.0, 0.0], [-2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)
    assert gradcheck(lambda m: tg.linalg.det(m), (tg.tensor(a, requires_grad=True),))


def test_slogdet_returns_named_fields_and_sign_has_no_gradient():
    ta, pa = _both(-np.eye(3) * 2.0)
    got, want = tg.linalg.slogdet(ta), torch.linalg.slogdet(pa)
    assert float(got.sign.detach()) == float(want.sign.detach()) == -1.0
    np.testing.assert_allclose(float(got.logabsdet.detach()), float(want.logabsdet.detach()))
    assert got.sign.grad_fn.name() == want.sign.grad_fn.name() == "LinalgSlogdetBackward0"
    got.sign.backward()
    want.sign.backward()
    assert ta.grad is None and pa.grad is None


def test_no_grad_and_constant_inputs_record_nothing():
    with tg.no_grad():
        before = _tape_size()
        tg.linalg.inv(tg.eye(3, dtype=tg.float64, requires_grad=True))
        assert _tape_size() == before
    y = tg.linalg.solve(tg.eye(2, dtype=tg.float64) * 2.0, tg.ones(2, dtype=tg.float64, requires_grad=True))
    y.sum().backward()


# -- forward replay: zero a record's output slot, rerun its kernel, compare with the eager value ----------------

def _replay(out, kernel_args):
    tape = current_tape()
    tape.flush()
    p = out._id - tape.base
    size = out.numel()
    yo = int(tape.off[p])
    eager = tape.vals[yo:yo + size].copy()
    tape.vals[yo:yo + size] = 0.0
    kernel_args(tape, p, yo)
    np.testing.assert_allclose(tape.vals[yo:yo + size], eager, rtol=1e-12, atol=1e-12)
    assert np.any(eager != 0.0)


def _linalg_replay(out):
    def run(tape, p, yo):
        pa, pb = tape.a[p] - tape.base, tape.b[p] - tape.base
        linalg_forward(int(tape.ops[p]), tape.ints, int(tape.aux[p]), int(tape.aux[pa]), int(tape.off[pa]),
                       int(tape.off[pb]) if tape.b[p] >= 0 else 0, yo, float(tape.const[p]), tape.vals)
    _replay(out, run)


def _square(shape, seed=0):
    n = shape[-1]
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape) + 3 * n * np.eye(n), requires_grad=True)


def _rand(shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("make", [
    lambda: tg.linalg.solve(_square((2, 3, 3)), tg.ones(2, 3, 2, dtype=tg.float64, requires_grad=True)),
    lambda: tg.linalg.solve(_square((3, 3)), tg.arange(3.0, dtype=tg.float64).requires_grad_()),
    lambda: tg.linalg.inv(_square((2, 3, 3))),
    lambda: tg.linalg.det(_square((2, 3, 3))),
    lambda: tg.linalg.det(_square((3, 3))),
    lambda: tg.linalg.slogdet(_square((2, 3, 3))).logabsdet,
    lambda: tg.linalg.slogdet(-_square((3, 3))).sign,
    lambda: tg.linalg.cholesky(_rand((2, 3, 3)) @ _rand((2, 3, 3)).mT + tg.eye(3, dtype=tg.float64)),
    lambda: tg.cholesky(_square((3, 3)) @ _square((3, 3)).mT),
    lambda: tg.addmv(_rand((2,)), _rand((2, 3)), _rand((3,)), beta=0.5, alpha=2.0),
    lambda: tg.baddbmm(_rand((3, 1)), _rand((2, 3, 2)), _rand((2, 2, 3)), beta=-1.5),
    lambda: tg.addbmm(_rand((1,)), _rand((2, 3, 2)), _rand((2, 2, 3)), alpha=0.5),
    lambda: tg.addbmm(_rand((1,)) * float("nan"), _rand((2, 3, 2)), _rand((2, 2, 3)), beta=0),
], ids=["solve", "solve_vector", "inv", "det_batch", "det", "slogdet", "slogdet_sign", "linalg_cholesky",
        "cholesky", "addmv", "baddbmm", "addbmm", "addbmm_beta0"])
def test_linalg_forward_kernels_replay_the_eager_value(make):
    _linalg_replay(make())


@pytest.mark.parametrize("make", [
    lambda a, b: tg.mm(a, b.mT),
    lambda a, b: tg.mv(a, b[0]),
    lambda a, b: tg.dot(a[0], b[1]),
    lambda a, b: tg.vdot(a[0], b[1]),
    lambda a, b: tg.bmm(a.unsqueeze(0).expand(2, 2, 3).reshape(2, 2, 3), b.mT.unsqueeze(0).expand(2, 3, 2)
                        .reshape(2, 3, 2)),
], ids=["mm", "mv", "dot", "vdot", "bmm"])
def test_matmul_forward_kernels_replay_the_eager_value(make):
    a = tg.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    b = tg.tensor(np.arange(2.0, 8.0).reshape(2, 3) * 0.5, requires_grad=True)
    out = make(a, b)

    def run(tape, p, yo):
        pa, pb = tape.a[p] - tape.base, tape.b[p] - tape.base
        matmul_forward(int(tape.ops[p]), tape.ints, int(tape.aux[p]), int(tape.aux[pa]), int(tape.aux[pb]),
                       int(tape.off[pa]), int(tape.off[pb]), yo, 1.0, False, tape.vals)
    _replay(out, run)


@pytest.mark.parametrize("linear", [False, True], ids=["addmm", "F.linear"])
@pytest.mark.parametrize("c_shape", [(2, 2), (2,), (2, 1), ()])
def test_addmm_forward_kernels_replay_the_eager_value(c_shape, linear):
    a = tg.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    b = tg.tensor(np.arange(2.0, 8.0).reshape(3, 2) * 0.5, requires_grad=True)
    c = tg.tensor(np.arange(1.0, 1.0 + int(np.prod(c_shape))).reshape(c_shape), requires_grad=True)
    if linear:     # one ADDMM that reads the (2, 3) weight transposed
        out = tg.nn.functional.linear(a, tg.tensor(b.detach().numpy().T.copy(), requires_grad=True), c)
    else:
        out = tg.addmm(c, a, b, beta=0.5, alpha=-1.5)

    def run(tape, p, yo):
        pa, pb = tape.a[p] - tape.base, tape.b[p] - tape.base
        params = tape.aux[p] + 1 + tape.ints[tape.aux[p]]
        pc = tape.ints[params + 1] - tape.base
        beta = tape.ints[params + 2:params + 3].view(np.float64)[0]
        b_transposed = bool(tape.ints[params + 3])
        assert b_transposed == linear
        matmul_forward(int(tape.ops[p]), tape.ints, int(tape.aux[p]), int(tape.aux[pa]), int(tape.aux[pb]),
                       int(tape.off[pa]), int(tape.off[pb]), yo, float(tape.const[p]), b_transposed, tape.vals)
        addmm_forward_input(tape.ints, int(tape.aux[p]), int(tape.aux[pc]), int(tape.off[pc]), yo, beta, tape.vals)
    _replay(out, run)


@pytest.mark.parametrize("mkn,loops", [((4, 8, 16), True), ((32, 32, 32), True), ((32, 32, 33), False),
                                       ((40, 50, 60), False)], ids=["small", "largest_small", "smallest_blas", "blas"])
@pytest.mark.parametrize("kind", ["mm", "addmm_alpha", "linear", "bmm"])
def test_products_either_side_of_the_small_product_threshold_match_torch(kind, mkn, loops):
    """Products up to SMALL_GEMM multiply-adds run in plain loops, larger ones in BLAS: eager backward and the
    compiled replay (forward and backward) agree with torch on both sides of the threshold."""
    from tapegrad._kernels.matmul import SMALL_GEMM
    m, k, n = mkn
    assert (m * k * n <= SMALL_GEMM) == loops
    rng = np.random.default_rng(m * k * n)
    batch = (3,) if kind == "bmm" else ()
    a = rng.standard_normal(batch + (m, k))
    b = rng.standard_normal(batch + ((n, k) if kind == "linear" else (k, n)))
    c = rng.standard_normal(n)

    def f(lib, x, y, z):
        if kind == "mm":
            return lib.mm(x, y)
        if kind == "addmm_alpha":
            return lib.addmm(z, x, y, beta=0.5, alpha=-1.5)
        if kind == "linear":
            return lib.nn.functional.linear(x, y, z)
        return lib.bmm(x, y)

    seed = rng.standard_normal(batch + (m, n))
    tt = [torch.tensor(v, requires_grad=True) for v in (a, b, c)]
    want = f(torch, *tt)
    want.backward(torch.tensor(seed))
    xs = [tg.tensor(v, requires_grad=True) for v in (a, b, c)]
    got = f(tg, *xs)
    got.backward(tg.tensor(seed))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-11, atol=1e-11)
    used = (0, 1, 2) if kind in ("addmm_alpha", "linear") else (0, 1)
    for i in used:
        np.testing.assert_allclose(xs[i].grad.numpy(), tt[i].grad.numpy(), rtol=1e-11, atol=1e-11)

    def loss(x, y, z):
        return (f(tg, x, y, z) * tg.tensor(seed)).sum()

    compiled = tg.compile(tg.value_and_grad(loss, argnums=used))
    compiled(*[tg.tensor(v) for v in (a, b, c)])
    value, grads = compiled(*[tg.tensor(v) for v in (a, b, c)])
    np.testing.assert_allclose(value.numpy(), float((want.detach() * torch.tensor(seed)).sum()), rtol=1e-11)
    for i, g in zip(used, grads):
        np.testing.assert_allclose(g.numpy(), tt[i].grad.numpy(), rtol=1e-11, atol=1e-11)
