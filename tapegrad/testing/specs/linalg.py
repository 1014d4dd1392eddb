"""Op specs of the linalg family (see tapegrad/testing/op_db.py): one _op(...) line per operation.

Matrices fed to solve/inv/det/slogdet are made well conditioned inside fn (X + 3n I with |X_ij| <= 2 is
diagonally dominant), and cholesky's input is M M^T + n I built inside fn, so the gradient flows through a
symmetric input as PyTorch's formula assumes; torch runs the same construction.
"""
from hypothesis import strategies as st

from ..op_db import _op, _t
from ..strategies import mutually_broadcastable_shapes, shapes


def _dominant(L, X):
    n = X.shape[-1]
    return X + (3.0 * n) * L.eye(n, dtype=X.dtype)


def _spd(L, M):
    n = M.shape[-1]
    return M @ M.mT + float(n) * L.eye(n, dtype=M.dtype)


@st.composite
def _square(draw, max_batch=2):
    """A (batch of) square matrices, n in 1..3, up to max_batch batch dims."""
    n = draw(st.integers(1, 3))
    batch = draw(shapes(max_dims=max_batch, max_side=2))
    return (draw(_t(shape=batch + (n, n))),)


@st.composite
def _solve_args(draw):
    """(A, B): B a vector, a batch of vectors, or matrices; batch dims of A and B broadcast."""
    n = draw(st.integers(1, 3))
    ba = draw(shapes(max_dims=2, max_side=2))
    kind = draw(st.sampled_from(["vector", "batched_vector", "matrix"]))
    if kind == "vector":
        sb = (n,)
    elif kind == "batched_vector":
        sb = ba + (n,)
    else:
        bb = draw(st.sampled_from([ba, ba[1:], (2,) + ba[1:] if ba and ba[0] == 1 else ba, ()]))
        sb = bb + (n, draw(st.integers(1, 3)))
    return draw(_t(shape=ba + (n, n))), draw(_t(shape=sb))


@st.composite
def _einsum_args(draw, equation):
    """Operands for `equation`: one size per subscript letter (1..3), ellipsis dims broadcasting."""
    lhs = equation.split("->")[0]
    sizes = {c: draw(st.integers(1, 3)) for c in sorted(set(lhs) - set(".,"))}
    ell = draw(shapes(max_dims=2, max_side=2))
    ops = []
    for term in lhs.split(","):
        own = tuple(1 if draw(st.booleans()) else s for s in ell)[len(ell) - draw(st.integers(0, len(ell))):]
        before, dots, after = term.partition("...")
        shape = tuple(sizes[c] for c in before) + (own if dots else ()) + tuple(sizes[c] for c in after)
        ops.append(draw(_t(shape=shape)))
    return (equation, *ops)


@st.composite
def _scaled_sum_args(draw, kind):
    """(input, mat/batch1, vec/batch2, beta, alpha) for addmv ("mv"), baddbmm ("bmm"), addbmm ("sum")."""
    b, n, k, m = (draw(st.integers(1, 3)) for _ in range(4))
    if kind == "mv":
        left, right, out = (n, k), (k,), (n,)
    else:
        left, right, out = (b, n, k), (b, k, m), ((b, n, m) if kind == "bmm" else (n, m))
    own = tuple(1 if draw(st.booleans()) else s for s in out)[draw(st.integers(0, len(out))):]
    beta = draw(st.sampled_from([1.0, 0.5, -2.0, 0.0]))
    alpha = draw(st.sampled_from([1.0, -1.5, 0.5]))
    return draw(_t(shape=own)), draw(_t(shape=left)), draw(_t(shape=right)), beta, alpha


@st.composite
def _vecdot_args(draw):
    """Two tensors with the same last size and broadcasting batch dims (none: the 1-D case, a vdot)."""
    k = draw(st.integers(1, 3))
    ba, bb = draw(mutually_broadcastable_shapes(2, max_dims=2, max_side=3))
    return draw(_t(shape=ba + (k,))), draw(_t(shape=bb + (k,)))


@st.composite
def _vectors(draw, same=True):
    n = draw(st.integers(1, 4))
    return draw(_t(shape=(n,))), draw(_t(shape=(n if same else draw(st.integers(1, 4)),)))


@st.composite
def _tensordot_args(draw):
    """(a, b, dims) with dims an int or a pair of dim lists."""
    shared = draw(shapes(max_dims=2, max_side=3))
    fa, fb = draw(shapes(max_dims=2, max_side=3)), draw(shapes(max_dims=2, max_side=3))
    if draw(st.booleans()):
        return draw(_t(shape=fa + shared)), draw(_t(shape=shared + fb)), len(shared)
    a_shape = list(fa + shared)
    b_shape = list(shared + fb)
    pa = draw(st.permutations(range(len(a_shape))))
    pb = draw(st.permutations(range(len(b_shape))))
    a = draw(_t(shape=tuple(a_shape[p] for p in pa)))
    b = draw(_t(shape=tuple(b_shape[p] for p in pb)))
    dims_a = [pa.index(len(fa) + k) for k in range(len(shared))]
    dims_b = [pb.index(k) for k in range(len(shared))]
    return a, b, (dims_a, dims_b)


# -- products -------------------------------------------------------------------------------------------------------
_op("vdot", lambda L, x, y: L.vdot(x, y), _vectors())
_op("outer", lambda L, x, y: L.outer(x, y), _vectors(same=False))
_op("ger_method", lambda L, x, y: x.ger(y), _vectors(same=False))
_op("rmatmul", lambda L, x, y: y.__rmatmul__(x), _vectors())
_op("tensordot", lambda L, a, b, d: L.tensordot(a, b, dims=d), _tensordot_args())
_op("kron", lambda L, a, b: L.kron(a, b), st.tuples(_t(shape=shapes(max_dims=3, max_side=2)),
                                                    _t(shape=shapes(max_dims=3, max_side=2))))
for _eq in ("ij,jk->ik", "ij,jk", "ii", "ii->i", "iij->j", "ij->ji", "ij->", "i,i", "i,j", "bij,bjk->bik",
            "...ij,...jk", "ij,ij->ij", "ij,jk,kl->il", "ijk,jil->kl", "i...->...", "bi,bj->bij", "ij,j",
            "...,...->...", "a...,...b->ab"):
    _op(f"einsum_{_eq}", lambda L, eq, *xs: L.einsum(eq, *xs), _einsum_args(_eq))
_op("addmv", lambda L, c, m, v, beta, alpha: L.addmv(c, m, v, beta=beta, alpha=alpha), _scaled_sum_args("mv"))
_op("baddbmm", lambda L, c, a, b, beta, alpha: L.baddbmm(c, a, b, beta=beta, alpha=alpha), _scaled_sum_args("bmm"))
_op("addbmm", lambda L, c, a, b, beta, alpha: L.addbmm(c, a, b, beta=beta, alpha=alpha), _scaled_sum_args("sum"))
_op("addmv_method", lambda L, c, m, v, beta, alpha: c.addmv(m, v), _scaled_sum_args("mv"))
_op("linalg_vecdot", lambda L, x, y: L.linalg.vecdot(x, y), _vecdot_args())
# -- linear algebra on (batches of) square matrices ---------------------------------------------------------------
_op("linalg_solve", lambda L, A, B: L.linalg.solve(_dominant(L, A), B), _solve_args())
_op("linalg_inv", lambda L, A: L.linalg.inv(_dominant(L, A)), _square())
_op("inverse", lambda L, A: L.inverse(_dominant(L, A)), _square())
_op("linalg_det", lambda L, A: L.linalg.det(_dominant(L, A)), _square())
_op("det_negative", lambda L, A: L.det(-_dominant(L, A)), _square())
_op("det_method", lambda L, A: _dominant(L, A).det(), _square())
_op("linalg_slogdet", lambda L, A: L.linalg.slogdet(_dominant(L, A)).logabsdet, _square())
_op("slogdet_signed", lambda L, A: L.slogdet(-_dominant(L, A))[0] * L.slogdet(-_dominant(L, A))[1], _square())
_op("linalg_cholesky", lambda L, M: L.linalg.cholesky(_spd(L, M)), _square())
_op("cholesky", lambda L, M: L.cholesky(_spd(L, M)), _square())
_op("linalg_matmul", lambda L, x, y: L.linalg.matmul(x, y), _vectors())
