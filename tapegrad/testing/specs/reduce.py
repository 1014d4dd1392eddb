"""Op specs of the reduce family (see tapegrad/testing/op_db.py): one _op(...) line per operation."""
import numpy as np
from hypothesis import strategies as st

import tapegrad as tg

from ..op_db import _op, _t, _elementwise, _unary, DOMAINS  # noqa: F401
from ..strategies import shapes


@st.composite
def _distinct(draw, shape=None, **shape_kw):
    """A tensor whose values, and absolute values, are pairwise at least 0.2 apart and away from zero, so
    max/min/sort/topk/median and the inf-norms have no near-ties for finite differences to trip over."""
    shape = draw(shapes(**shape_kw)) if shape is None else shape
    n = int(np.prod(shape, dtype=np.int64))
    order = np.array(draw(st.permutations(range(n))), dtype=np.float64)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    jitter = np.array(draw(st.lists(st.floats(0.0, 0.05), min_size=n, max_size=n)))
    return tg.tensor((signs * (0.2 + 0.25 * order + jitter)).reshape(shape), dtype=tg.float64, requires_grad=True)


def _dim_of(x, draw):
    n = max(x.ndim, 1)
    return draw(st.integers(-n, n - 1))


@st.composite
def _x_dim(draw, distinct=False, **shape_kw):
    """(x, dim) with dim an int valid for x (0 and -1 for a 0-d x)."""
    x = draw(_distinct(**shape_kw) if distinct else _t(shape=shapes(**shape_kw)))
    return x, _dim_of(x, draw)


@st.composite
def _x_dims(draw, distinct=False, **shape_kw):
    """(x, dims) with dims a non-empty tuple of distinct dims, negative ones included."""
    x = draw(_distinct(**shape_kw) if distinct else _t(shape=shapes(**shape_kw)))
    n = max(x.ndim, 1)
    dims = draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n, unique_by=lambda d: d % n))
    return x, tuple(dims)


@st.composite
def _x_dim_k(draw, smallest_k):
    """(x, dim, k) for topk (k in [0, L]) or kthvalue (k in [1, L])."""
    x, d = draw(_x_dim(distinct=True))
    L = x.shape[d] if x.ndim else 1
    return x, d, draw(st.integers(smallest_k, L))


def _vector_norm(L):
    return L.linalg.vector_norm if L.__name__ == "torch" else tg.ops.reduce.vector_norm


_DIST = st.tuples(_distinct())
_VAR_SHAPES = dict(min_dims=1, min_side=2, max_side=3)

# -- sum and mean: an empty dim tuple reduces everything but records the dim form --------------------------------
_op("sum_empty_dims", lambda L, x: x.sum(()), _unary())
_op("mean_empty_dims_keepdim", lambda L, x: L.mean(x, (), keepdim=True), _unary())
# -- prod ---------------------------------------------------------------------------------------------------------
_op("prod", lambda L, x: L.prod(x), _unary())
_op("prod_method", lambda L, x: x.prod(), _unary(max_side=3))
_op("prod_dim", lambda L, x, d: x.prod(d), _x_dim())
_op("prod_dim_keepdim", lambda L, x, d: L.prod(x, d, keepdim=True), _x_dim())
# -- max / min: whole tensor, along a dim (values of the (values, indices) pair), amax / amin ---------------------
_op("max", lambda L, x: L.max(x), _DIST)
_op("min_method", lambda L, x: x.min(), _DIST)
_op("max_dim", lambda L, x, d: L.max(x, d).values, _x_dim(distinct=True))
_op("max_dim_keepdim", lambda L, x, d: x.max(d, keepdim=True)[0], _x_dim(distinct=True))
_op("min_dim", lambda L, x, d: L.min(x, dim=d).values, _x_dim(distinct=True))
_op("min_dim_keepdim", lambda L, x, d: x.min(d, True).values, _x_dim(distinct=True))
_op("amax", lambda L, x: L.amax(x), _DIST)
_op("amax_dims", lambda L, x, d: x.amax(d), _x_dims(distinct=True))
_op("amax_dim_keepdim", lambda L, x, d: L.amax(x, d, keepdim=True), _x_dim(distinct=True))
_op("amin", lambda L, x: x.amin(), _DIST)
_op("amin_dims_keepdim", lambda L, x, d: L.amin(x, d, True), _x_dims(distinct=True))
# -- var / std ----------------------------------------------------------------------------------------------------
_op("var", lambda L, x: L.var(x), _unary(**_VAR_SHAPES))
_op("var_dim", lambda L, x, d: x.var(d), _x_dim(**_VAR_SHAPES))
_op("var_dims_keepdim_correction0", lambda L, x, d: L.var(x, d, keepdim=True, correction=0), _x_dims())
_op("var_unbiased_false", lambda L, x, d: x.var(d, False), _x_dim())
_op("var_correction2", lambda L, x: x.var(correction=2), _unary(min_dims=1, min_side=3))
_op("std", lambda L, x: L.std(x), st.tuples(_distinct(**_VAR_SHAPES)))
_op("std_dim", lambda L, x, d: x.std(d), _x_dim(distinct=True, **_VAR_SHAPES))
_op("std_dims_keepdim", lambda L, x, d: L.std(x, d, keepdim=True), _x_dims(distinct=True, **_VAR_SHAPES))
_op("std_unbiased_false", lambda L, x: x.std(unbiased=False), _DIST)
_op("var_mean_var", lambda L, x, d: L.var_mean(x, d)[0], _x_dim(**_VAR_SHAPES))
_op("var_mean_mean", lambda L, x, d: L.var_mean(x, d, keepdim=True)[1], _x_dim(**_VAR_SHAPES))
_op("std_mean_std", lambda L, x: L.std_mean(x)[0], st.tuples(_distinct(**_VAR_SHAPES)))
_op("std_mean_mean", lambda L, x, d: L.std_mean(x, d)[1], _x_dims(**_VAR_SHAPES))
# -- logsumexp ----------------------------------------------------------------------------------------------------
_op("logsumexp", lambda L, x, d: L.logsumexp(x, d), _x_dim())
_op("logsumexp_dims_keepdim", lambda L, x, d: x.logsumexp(d, keepdim=True), _x_dims())
# -- norms: gradients have kinks at zero (ord <= 1) and at ties of |x| (ord = +-inf) -----------------------------
_op("norm", lambda L, x: L.norm(x), _unary("nonzero"))
_op("norm_fro_dims", lambda L, x, d: x.norm("fro", d), _x_dims(distinct=True).filter(lambda a: len(a[1]) <= 2))
_op("norm_1", lambda L, x: x.norm(1), _DIST)
_op("norm_inf_dim", lambda L, x, d: L.norm(x, float("inf"), d), _x_dim(distinct=True))
_op("norm_3_dim_keepdim", lambda L, x, d: x.norm(3, d, keepdim=True), _x_dim(distinct=True))
_op("norm_1_5", lambda L, x: L.norm(x, 1.5), _DIST)
_op("vector_norm", lambda L, x: _vector_norm(L)(x), _DIST)
_op("vector_norm_ord_neg_inf", lambda L, x, d: _vector_norm(L)(x, float("-inf"), d), _x_dims(distinct=True))
_op("vector_norm_ord_half", lambda L, x, d: _vector_norm(L)(x, 0.5, d, True), _x_dim(distinct=True))
_op("vector_norm_ord_neg1", lambda L, x: _vector_norm(L)(x, -1), _DIST)
_op("vector_norm_ord0", lambda L, x: _vector_norm(L)(x, 0), _DIST, torch=False,
    note="torch leaves the input's grad None (an undefined gradient); tapegrad gives zeros")
# -- median / kthvalue --------------------------------------------------------------------------------------------
_op("median", lambda L, x: L.median(x), _DIST)
_op("median_dim", lambda L, x, d: x.median(d).values, _x_dim(distinct=True))
_op("median_dim_keepdim", lambda L, x, d: L.median(x, d, keepdim=True)[0], _x_dim(distinct=True))
_op("kthvalue", lambda L, x, d, k: L.kthvalue(x, k, d).values, _x_dim_k(1))
# -- sort / topk --------------------------------------------------------------------------------------------------
_op("sort", lambda L, x: L.sort(x).values, _DIST)
_op("sort_dim_descending", lambda L, x, d: x.sort(d, descending=True)[0], _x_dim(distinct=True))
_op("topk", lambda L, x, d, k: L.topk(x, k, d).values, _x_dim_k(0))
_op("topk_smallest", lambda L, x, d, k: x.topk(k, d, largest=False)[0], _x_dim_k(0))
# -- scans --------------------------------------------------------------------------------------------------------
_op("cumsum", lambda L, x, d: L.cumsum(x, d), _x_dim())
_op("cumsum_method", lambda L, x, d: x.cumsum(dim=d), _x_dim())
_op("cumprod", lambda L, x, d: L.cumprod(x, d), _x_dim())
_op("cumprod_method", lambda L, x, d: x.cumprod(d), _x_dim())
