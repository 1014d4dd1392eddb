"""Op specs of the shape family (see tapegrad/testing/op_db.py): one _op(...) line per operation.

Index arguments are drawn as numpy int64 arrays and turned into tensors of the library under test inside fn.
"""
import numpy as np
from hypothesis import strategies as st

from ..op_db import _op, _t, _elementwise, _unary, _expand_args, DOMAINS  # noqa: F401
from ..strategies import shapes


def _pad_fn(L):
    """F.pad: torch's, or tapegrad's ops.shape.pad (re-exported from tapegrad.nn.functional by the integrator)."""
    if L.__name__ == "torch":
        return L.nn.functional.pad
    from ...ops.shape import pad
    return pad


def _dim(draw, nd, min_nd=1):
    n = max(nd, min_nd)
    return draw(st.integers(-n, n - 1))


@st.composite
def _cat_args(draw, stack=False):
    """(tensors, dim): 1-4 tensors with equal shapes except along dim (equal shapes for stack); sides may be 0."""
    shape = list(draw(shapes(min_dims=0 if stack else 1, max_dims=3, min_side=1, max_side=3)))
    dim = draw(st.integers(-len(shape) - 1, len(shape))) if stack else _dim(draw, len(shape))
    xs = []
    for _ in range(draw(st.integers(1, 4))):
        s = list(shape)
        if not stack:
            s[dim] = draw(st.integers(0, 3))
        xs.append(draw(_t(shape=tuple(s))))
    return (dim, *xs)     # the tensors as separate arguments, so gradcheck sees each


@st.composite
def _split_args(draw, sizes=False):
    """(x, split size or sizes, dim, which piece)."""
    x = draw(_t(shape=shapes(min_dims=1, max_side=5)))
    dim = _dim(draw, x.ndim)
    n = x.shape[dim]
    if sizes:
        cuts = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
        parts = [b - a for a, b in zip([0] + cuts, cuts + [n])]
        return x, parts, dim, draw(st.integers(0, len(parts) - 1))
    size = draw(st.integers(1, n + 1))
    return x, size, dim, draw(st.integers(0, -(-n // size) - 1))


@st.composite
def _chunk_args(draw):
    x = draw(_t(shape=shapes(min_dims=1, max_side=5)))
    dim = _dim(draw, x.ndim)
    chunks = draw(st.integers(1, 4))
    size = -(-x.shape[dim] // chunks)
    n_out = -(-x.shape[dim] // size)
    return x, chunks, dim, draw(st.integers(0, n_out - 1))


@st.composite
def _x_dim_index(draw, min_dims=1):
    """(x, dim, i) with i a valid (possibly negative) position along dim."""
    x = draw(_t(shape=shapes(min_dims=min_dims)))
    dim = _dim(draw, x.ndim)
    n = x.shape[dim]
    return x, dim, draw(st.integers(-n, n - 1))


@st.composite
def _squeeze_dims_args(draw):
    """(x, dims): a tuple of distinct dims (negative ones too) of a tensor with sides 1 or 2."""
    x = draw(_t(shape=shapes(max_side=2)))
    n = max(x.ndim, 1)
    return x, tuple(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n, unique_by=lambda d: d % n)))


@st.composite
def _diagonal_args(draw):
    x = draw(_t(shape=shapes(min_dims=2)))
    d1, d2 = draw(st.lists(st.integers(0, x.ndim - 1), min_size=2, max_size=2, unique=True))
    neg = draw(st.booleans())
    return x, draw(st.integers(-3, 3)), d1 - x.ndim * neg, d2


@st.composite
def _movedim_args(draw, many=False):
    x = draw(_t(shape=shapes(min_dims=1)))
    nd = x.ndim
    if not many:
        return x, draw(st.integers(-nd, nd - 1)), draw(st.integers(-nd, nd - 1))
    k = draw(st.integers(1, nd))
    src = draw(st.permutations(range(nd)))[:k]
    dst = draw(st.permutations(range(nd)))[:k]
    return x, tuple(src), tuple(dst)


@st.composite
def _unflatten_args(draw):
    x = draw(_t(shape=shapes(min_dims=1, max_side=6)))
    dim = _dim(draw, x.ndim)
    n = x.shape[dim]
    a = draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
    sizes = [a, n // a]
    if draw(st.booleans()):
        sizes[draw(st.integers(0, 1))] = -1
    return x, dim, tuple(sizes)


@st.composite
def _flip_args(draw):
    x = draw(_t(shape=shapes(min_dims=0)))
    n = max(x.ndim, 1)
    dims = draw(st.lists(st.integers(-n, n - 1), max_size=n, unique_by=lambda d: d % n)) if x.ndim else []
    return x, tuple(dims)


@st.composite
def _roll_args(draw, flat=False):
    x = draw(_t(shape=shapes(min_dims=1)))
    if flat:
        return x, draw(st.integers(-7, 7)), None
    k = draw(st.integers(1, x.ndim))
    dims = tuple(draw(st.permutations(range(x.ndim)))[:k])
    shifts = tuple(draw(st.integers(-5, 5)) for _ in dims)
    return x, shifts, tuple(d - x.ndim * draw(st.booleans()) for d in dims)


@st.composite
def _repeat_args(draw, tile=False):
    x = draw(_t(shape=shapes(max_dims=2, max_side=3)))
    lo = 0 if tile else max(x.ndim, 1)   # torch's repeat() wants at least one size
    reps = tuple(draw(st.lists(st.integers(0 if draw(st.booleans()) else 1, 3), min_size=lo, max_size=x.ndim + 1)))
    return x, reps


@st.composite
def _narrow_args(draw):
    x = draw(_t(shape=shapes(min_dims=1)))
    dim = _dim(draw, x.ndim)
    n = x.shape[dim]
    start = draw(st.integers(0, n))
    length = draw(st.integers(0, n - start))
    return x, dim, start - n * (draw(st.booleans()) and start < n), length


@st.composite
def _index_select_args(draw):
    x = draw(_t(shape=shapes(min_dims=0)))
    dim = _dim(draw, x.ndim)
    n = x.shape[dim] if x.ndim else 1
    # torch wants exactly one index for a 0-d input
    idx = draw(st.lists(st.integers(0, n - 1), min_size=0 if x.ndim else 1, max_size=5 if x.ndim else 1))
    return x, dim, np.array(idx, dtype=np.int64)


@st.composite
def _gather_args(draw, unique=False, src=False, broadcast=False):
    """(x, dim, index[, src]): index no larger than x off dim (and than src); unique positions per line when asked."""
    x = draw(_t(shape=shapes(min_dims=1)))
    dim = _dim(draw, x.ndim)
    d = dim % x.ndim
    n = x.shape[d]
    # no empty index with a src: torch's scatter backward then returns a gradient of the wrong shape
    low = 1 if broadcast or src else 0
    ishape = [draw(st.integers(low, s)) for s in x.shape]
    ishape[d] = draw(st.integers(low, max(n, low) if unique else 4))
    if broadcast:   # take_along_dim broadcasts index and input off dim: equal sizes or 1
        ishape = [ishape[k] if k == d else 1 if draw(st.booleans()) else s for k, s in enumerate(x.shape)]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if unique:
        keys = rng.random(tuple(ishape[:d]) + (n,) + tuple(ishape[d + 1:]))
        idx = np.argsort(keys, axis=d).take(range(ishape[d]), axis=d)
    else:
        idx = rng.integers(0, n, size=tuple(ishape))
    out = (x, dim, idx.astype(np.int64))
    if src:
        # src shaped like index: torch's scatter backward fails on a larger src
        out += (draw(_t(shape=tuple(ishape))),)
    return out


@st.composite
def _triangle_args(draw):
    x = draw(_t(shape=shapes(min_dims=2, max_dims=3)))
    return x, draw(st.integers(-4, 4))


@st.composite
def _diag_args(draw, vector):
    x = draw(_t(shape=shapes(min_dims=1 if vector else 2, max_dims=1 if vector else 2)))
    return x, draw(st.integers(-3, 3))


@st.composite
def _pad_args(draw):
    x = draw(_t(shape=shapes(min_dims=1)))
    k = draw(st.integers(1, x.ndim))
    pads = []
    for j in range(k):
        n = x.shape[x.ndim - 1 - j]
        lo = draw(st.integers(-n, 2))
        hi = draw(st.integers(-(n + min(lo, 0)), 2))
        pads += [lo, hi]
    return x, tuple(pads), draw(st.sampled_from([None, 0.0, 1.5]))


@st.composite
def _index_put_args(draw, accumulate):
    """(x, index tuple of int arrays for the leading dims, values broadcastable to the indexed shape)."""
    x = draw(_t(shape=shapes(min_dims=1)))
    k = draw(st.integers(1, x.ndim))
    m = draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if accumulate:
        idx = tuple(rng.integers(-n, n, size=m) for n in x.shape[:k])
    else:
        m = min(m, int(np.prod(x.shape[:k])))
        flat = rng.permutation(int(np.prod(x.shape[:k])))[:m]
        idx = np.unravel_index(flat, x.shape[:k]) if m else tuple(np.zeros(0, np.int64) for _ in range(k))
    idx = tuple(np.asarray(i, dtype=np.int64) for i in idx)
    vshape = (m,) + tuple(x.shape[k:])
    vshape = vshape[draw(st.integers(0, len(vshape))):]
    return x, idx, draw(_t(shape=tuple(1 if draw(st.booleans()) else s for s in vshape)))


def _index_put(L, x, idx, v, accumulate):
    y = x * 1.0
    y.index_put_(tuple(L.tensor(i) for i in idx), v, accumulate=accumulate)
    return y


def _setitem_iadd(L, x, i, v):
    """x[i] += v with an integer index: a gather, an add and an index_put."""
    y = x * 1.0
    y[L.tensor(i)] += v
    return y


# -- joining and splitting ------------------------------------------------------------------------------------------
_op("cat", lambda L, d, *xs: L.cat(xs, d), _cat_args())
_op("cat_method_names", lambda L, d, *xs: L.concat(xs, dim=d) + L.concatenate(xs, d), _cat_args())
_op("cat_same_tensor_twice", lambda L, x: L.cat([x, x * 2.0, x], -1), _unary(min_dims=1))
_op("stack", lambda L, d, *xs: L.stack(xs, d), _cat_args(stack=True))
_op("hstack", lambda L, d, *xs: L.hstack(xs), _cat_args(stack=True))
_op("vstack", lambda L, d, *xs: L.vstack(xs), _cat_args(stack=True))
_op("split_size", lambda L, x, s, d, k: L.split(x, s, d)[k], _split_args())
_op("split_sizes", lambda L, x, s, d, k: x.split(s, dim=d)[k], _split_args(sizes=True))
_op("split_all_pieces", lambda L, x: sum(p.sum() * (k + 1) for k, p in enumerate(x.split(2, -1))),
    _unary(min_dims=1, max_side=5))
_op("chunk", lambda L, x, c, d, k: L.chunk(x, c, d)[k], _chunk_args())
_op("unbind", lambda L, x, d, i: L.unbind(x, d)[i], _x_dim_index())
_op("unbind_all", lambda L, x: sum(p * (k + 1.0) for k, p in enumerate(x.unbind(-1))), _unary(min_dims=1))
# -- views ----------------------------------------------------------------------------------------------------------
_op("squeeze_dims", lambda L, x, d: x.squeeze(d), _squeeze_dims_args())
_op("unsqueeze_0d", lambda L, x, d: L.unsqueeze(x, d), st.tuples(_t(shape=()), st.integers(-1, 0)))
_op("flatten_fn", lambda L, x: L.flatten(x), _unary())
_op("diagonal", lambda L, x, o, a, b: L.diagonal(x, o, a, b), _diagonal_args())
_op("diagonal_method_default", lambda L, x: x.diagonal(), _unary(min_dims=2))
_op("movedim", lambda L, x, s, d: L.movedim(x, s, d), _movedim_args())
_op("moveaxis_many", lambda L, x, s, d: L.moveaxis(x, s, d), _movedim_args(many=True))
_op("unflatten", lambda L, x, d, s: x.unflatten(d, s), _unflatten_args())
_op("expand_as", lambda L, x, y: x.expand_as(y),
    shapes().flatmap(lambda s: st.tuples(_t(shape=st.just(s)), _t(shape=st.just((2,) + s)))))
_op("broadcast_to", lambda L, x, s: L.broadcast_to(x, s), _expand_args())
_op("swapaxes", lambda L, x, a, b: L.swapaxes(x, a, b),
    _t(shape=shapes(min_dims=1)).flatmap(lambda x: st.tuples(st.just(x), st.integers(-x.ndim, x.ndim - 1),
                                                             st.integers(-x.ndim, x.ndim - 1))))
_op("swapdims_method", lambda L, x: x.swapdims(0, -1), _unary(min_dims=1))
_op("contiguous_of_transpose", lambda L, x: x.transpose(0, 1).contiguous(), _unary(min_dims=2))
_op("contiguous_then_view", lambda L, x: x.t().contiguous().view(-1), _unary(min_dims=2, max_dims=2))
_op("narrow", lambda L, x, d, s, n: L.narrow(x, d, s, n), _narrow_args())
_op("select", lambda L, x, d, i: L.select(x, d, i), _x_dim_index())
_op("select_method", lambda L, x, d, i: x.select(d, i), _x_dim_index())
_op("view_minus_one", lambda L, x: x.view(-1, 1), _unary())
# -- gathers --------------------------------------------------------------------------------------------------------
_op("flip", lambda L, x, d: L.flip(x, d), _flip_args())
_op("flip_method_varargs", lambda L, x: x.flip(0, -1), _unary(min_dims=2))
_op("roll", lambda L, x, s, d: L.roll(x, s, d), _roll_args())
_op("roll_flat", lambda L, x, s, d: x.roll(s), _roll_args(flat=True))
_op("repeat", lambda L, x, r: x.repeat(*r), _repeat_args())
_op("repeat_tuple", lambda L, x, r: x.repeat(r), _repeat_args())
_op("tile", lambda L, x, r: L.tile(x, r), _repeat_args(tile=True))
_op("index_select", lambda L, x, d, i: L.index_select(x, d, L.tensor(i)), _index_select_args())
_op("index_select_method", lambda L, x, d, i: x.index_select(d, L.tensor(i)), _index_select_args())
_op("gather", lambda L, x, d, i: L.gather(x, d, L.tensor(i)), _gather_args())
_op("gather_method", lambda L, x, d, i: x.gather(d, L.tensor(i)), _gather_args())
_op("take_along_dim", lambda L, x, d, i: L.take_along_dim(x, L.tensor(i), d), _gather_args(broadcast=True))
_op("take_along_dim_flat", lambda L, x, i: L.take_along_dim(x, L.tensor(i)),
    _t(shape=shapes(min_dims=1)).flatmap(lambda x: st.tuples(st.just(x), st.lists(
        st.integers(0, x.numel() - 1), max_size=5).map(lambda v: np.array(v, dtype=np.int64)))))
# -- sparse maps ----------------------------------------------------------------------------------------------------
_op("tril", lambda L, x, k: L.tril(x, k), _triangle_args())
_op("triu", lambda L, x, k: x.triu(k), _triangle_args())
_op("tril_default", lambda L, x: x.tril(), _unary(min_dims=2))
_op("triu_default", lambda L, x: L.triu(x), _unary(min_dims=2))
_op("diag_of_vector", lambda L, x, k: L.diag(x, k), _diag_args(True))
_op("diag_of_matrix", lambda L, x, k: x.diag(k), _diag_args(False))
_op("trace", lambda L, x: L.trace(x), _unary(min_dims=2, max_dims=2))
_op("trace_method", lambda L, x: x.trace(), _unary(min_dims=2, max_dims=2))
_op("pad_constant", lambda L, x, p, v: _pad_fn(L)(x, p, value=v), _pad_args())
_op("pad_last_dim", lambda L, x: _pad_fn(L)(x, (1, 2)), _unary(min_dims=1))
# -- scatters and accumulating writes ---------------------------------------------------------------------------
_op("scatter", lambda L, x, d, i, s: L.scatter(x, d, L.tensor(i), s), _gather_args(unique=True, src=True))
_op("scatter_method", lambda L, x, d, i, s: x.scatter(d, L.tensor(i), s), _gather_args(unique=True, src=True))
_op("scatter_value", lambda L, x, d, i: x.scatter(d, L.tensor(i), 0.5), _gather_args())
_op("scatter_value_kw", lambda L, x, d, i: L.scatter(x, d, L.tensor(i), value=-1.5), _gather_args())
_op("scatter_inplace", lambda L, x, d, i, s: (x * 1.0).scatter_(d, L.tensor(i), s), _gather_args(unique=True, src=True))
_op("scatter_add", lambda L, x, d, i, s: L.scatter_add(x, d, L.tensor(i), s), _gather_args(src=True))
_op("scatter_add_inplace", lambda L, x, d, i, s: (x * 1.0).scatter_add_(d, L.tensor(i), s), _gather_args(src=True))
_op("index_put", lambda L, x, i, v: _index_put(L, x, i, v, False), _index_put_args(False))
_op("index_put_accumulate", lambda L, x, i, v: _index_put(L, x, i, v, True), _index_put_args(True))
_op("index_put_out_of_place", lambda L, x, i, v: L.index_put(x, tuple(L.tensor(k) for k in i), v, accumulate=True),
    _index_put_args(True))
_op("setitem_iadd_int_index", lambda L, x, i, v: _setitem_iadd(L, x, i, v),
    _index_put_args(True).filter(lambda a: len(a[1]) == 1 and len(set(a[1][0] % a[0].shape[0])) == len(a[1][0]))
    .map(lambda a: (a[0], a[1][0], a[2])))
