"""Shapes and indexing against PyTorch: mixed advanced indexing (reads and writes), errors (nothing recorded),
integer tensors, and the forward replay kernels of the STRIDED, GATHER, INDEX_PUT and LAYOUT families."""
import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad._kernels import opcodes as op
from tapegrad._kernels.layout import layout_forward
from tapegrad._kernels.movement import copy_slices_forward, gather_forward, strided_forward
from tapegrad._tape import current_tape
from tapegrad.ops.shape import pad
from tapegrad.testing import arrays, shapes

torch = pytest.importorskip("torch")


def _np(t):
    return None if t is None else np.array(t.detach().numpy(), copy=True)


# -- mixed advanced indexing, generated, against torch ---------------------------------------------------------------

@st.composite
def mixed_index(draw, shape):
    """An index for `shape` mixing ints, slices, int lists, int tensors (any rank), bool masks, None and `...`."""
    parts, dim = [], 0
    ellipsis_used = False
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    while dim < len(shape) and draw(st.integers(0, 4)):
        n = shape[dim]
        kind = draw(st.sampled_from(["int", "slice", "list", "tensor", "tensor2d", "mask", "none", "ellipsis"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            bound = st.none() | st.integers(-n - 1, n + 1)
            parts.append(slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3))))
        elif kind == "list":
            parts.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))
        elif kind in ("tensor", "tensor2d"):
            size = (2, 2) if kind == "tensor2d" else (draw(st.integers(0, 3)),)
            parts.append(("int", rng.integers(-n, n, size=size)))
        elif kind == "mask":
            k = draw(st.integers(1, min(2, len(shape) - dim)))
            parts.append(("bool", rng.random(shape[dim:dim + k]) < 0.5))
            dim += k - 1
        elif kind == "none":
            parts.append(None)
            continue
        elif not ellipsis_used:
            parts.append(Ellipsis)
            ellipsis_used = True
            dim = len(shape) - draw(st.integers(0, len(shape) - dim))
            continue
        else:
            continue
        dim += 1
    return tuple(parts)


def _lib_index(L, idx):
    out = []
    for p in idx:
        if isinstance(p, tuple):
            out.append(L.tensor(p[1]))
        else:
            out.append(p)
    return tuple(out)


def _index_case():
    return shapes(min_dims=1, max_dims=4, max_side=3).flatmap(
        lambda s: st.tuples(arrays(st.just(s)), mixed_index(s)))


@settings(max_examples=80, deadline=None)
@given(_index_case())
def test_mixed_indexing_reads_match_torch(case):
    """x[idx] for generated mixes of basic and advanced indices: value, grad_fn name and gradient."""
    arr, idx = case
    note(f"shape {arr.shape}, index {idx}")
    x, px = tg.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)
    try:
        ref = px[_lib_index(torch, idx)]
    except (IndexError, RuntimeError, ValueError) as err:
        with pytest.raises(type(err)):
            x[_lib_index(tg, idx)]
        return
    out = x[_lib_index(tg, idx)]
    np.testing.assert_array_equal(_np(out), _np(ref))
    assert (out.grad_fn.name() if out.grad_fn else None) == (ref.grad_fn.name() if ref.grad_fn else None)
    seed = np.random.default_rng(0).normal(size=tuple(ref.shape))
    (out * tg.tensor(seed)).sum().backward()
    (ref * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(_np(x.grad), _np(px.grad), rtol=1e-12, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(_index_case(), st.booleans(), st.booleans())
def test_mixed_indexing_writes_match_torch(case, scalar, broadcast_value):
    """y[idx] = v on a non-leaf, then gradients to x and v (writes with repeated positions are skipped: torch
    leaves which write wins unspecified)."""
    arr, idx = case
    note(f"shape {arr.shape}, index {idx}")
    probe = torch.arange(arr.size).reshape(arr.shape)
    try:
        target = probe[_lib_index(torch, idx)]
    except (IndexError, RuntimeError, ValueError):
        return
    if len(set(target.reshape(-1).tolist())) != target.numel():
        return
    vshape = tuple(target.shape)[1:] if broadcast_value and target.dim() else tuple(target.shape)
    varr = np.random.default_rng(1).normal(size=vshape)
    results = []
    for L in (tg, torch):
        x = L.tensor(arr, requires_grad=True)
        v = 1.25 if scalar else L.tensor(varr, requires_grad=True)
        y = x * 2.0
        y[_lib_index(L, idx)] = v
        (y * L.tensor(np.cos(np.arange(arr.size)).reshape(arr.shape))).sum().backward()
        results.append((_np(y), _np(x.grad), None if scalar else _np(v.grad)))
    for got, want in zip(*results):
        if want is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(shapes(min_dims=1, max_dims=3, max_side=4).flatmap(
    lambda s: st.tuples(arrays(st.just(s)), st.lists(st.integers(-s[0], s[0] - 1), max_size=6))))
def test_index_put_accumulate_with_repeats_matches_torch(case):
    """index_put_(accumulate=True) adds every repeat, in values and gradients."""
    arr, rows = case
    vals = np.random.default_rng(2).normal(size=(len(rows),) + arr.shape[1:])
    results = []
    for L in (tg, torch):
        x, v = L.tensor(arr, requires_grad=True), L.tensor(vals, requires_grad=True)
        y = x * 1.0
        y.index_put_((L.tensor(np.array(rows, dtype=np.int64)),), v, accumulate=True)
        assert y.grad_fn.name() == "IndexPutBackward0"
        (y * y).sum().backward()
        results.append((_np(y), _np(x.grad), _np(v.grad)))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_bool_mask_write_and_read_grad_fn_names():
    for L in (tg, torch):
        x = L.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
        y = x * 1.0
        y[y < 0] = 0.0
        assert y.grad_fn.name() == "IndexPutBackward0"
        z = x[x > 0]
        assert z.grad_fn.name() == "IndexBackward0"
        (y.sum() + z.sum()).backward()
        np.testing.assert_array_equal(_np(x.grad), [[2.0, 0.0], [2.0, 0.0]])


# -- errors: torch's type and wording, and nothing recorded ---------------------------------------------------------

def _tape_size():
    tape = current_tape()
    tape.flush()
    return tape.n


X = np.arange(12.0).reshape(3, 4)
ERRORS = [
    ("cat_sizes", lambda L, x: L.cat([x, L.ones(3, 3, dtype=L.float64)], 0), RuntimeError,
     "Sizes of tensors must match except in dimension 0. Expected size 4 but got size 3 for tensor number 1 in the "
     "list."),
    ("cat_dim1", lambda L, x: L.cat([x, L.ones(4, 4, dtype=L.float64)], 1), RuntimeError,
     "Sizes of tensors must match except in dimension 1. Expected size 3 but got size 4 for tensor number 1 in the "
     "list."),
    ("cat_ndim", lambda L, x: L.cat([x, L.ones(3, dtype=L.float64)]), RuntimeError,
     "Tensors must have same number of dimensions: got 2 and 1"),
    ("cat_empty_list", lambda L, x: L.cat([]), ValueError, "expected a non-empty list of Tensors"),
    ("cat_dim_range", lambda L, x: L.cat([x, x], 2), IndexError, "Dimension out of range"),
    ("stack_sizes", lambda L, x: L.stack([x, L.ones(4, dtype=L.float64)]), RuntimeError,
     "stack expects each tensor to be equal size, but got [3, 4] at entry 0 and [4] at entry 1"),
    ("index_read_range", lambda L, x: x[[5]], IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    # torch numbers the dim among the advanced indices (0); tapegrad names the tensor's dim (1)
    ("index_read_range_dim1", lambda L, x: x[:, L.tensor([7])], IndexError, "index 7 is out of bounds for dimension"),
    ("index_int_range", lambda L, x: x[3], IndexError, "index 3 is out of bounds for dimension 0 with size 3"),
    ("index_float_tensor", lambda L, x: x[L.tensor([0.0])], IndexError,
     "tensors used as indices must be long, int, byte or bool tensors"),
    ("index_put_range", lambda L, x: (x * 1).index_put_((L.tensor([5]),), L.tensor(1.0, dtype=L.float64)),
     IndexError, "index 5 is out of bounds for dimension 0 with size 3"),
    ("index_select_float", lambda L, x: x.index_select(0, L.tensor([0.0])), RuntimeError,
     "index_select(): Expected dtype int32 or int64 for index"),
    ("index_select_range", lambda L, x: x.index_select(0, L.tensor([5])), IndexError, "index out of range in self"),
    ("gather_range", lambda L, x: x.gather(1, L.tensor([[5]])), RuntimeError,
     "index 5 is out of bounds for dimension 1 with size 4"),
    ("gather_float", lambda L, x: x.gather(1, L.tensor([[1.0]])), RuntimeError,
     "gather(): Expected dtype int32/int64 for index"),
    ("gather_ndim", lambda L, x: x.gather(1, L.tensor([1])), RuntimeError,
     "Index tensor must have the same number of dimensions as input tensor"),
    ("scatter_range", lambda L, x: x.scatter(1, L.tensor([[9]]), 1.0), RuntimeError,
     "index 9 is out of bounds for dimension 1 with size 4"),
    ("scatter_dtype", lambda L, x: x.scatter(1, L.tensor([[0]]), L.ones(1, 1)), RuntimeError,
     "scatter(): Expected self.dtype to be equal to src.dtype"),
    ("split_sizes", lambda L, x: x.split([1, 1]), RuntimeError,
     "split_with_sizes expects split_sizes to sum exactly to 3 (input tensor's size at dimension 0), but got "
     "split_sizes=[1, 1]"),
    ("split_zero", lambda L, x: x.split(0), RuntimeError,
     "split_size can only be 0 if dimension size is 0, but got dimension size of 3"),
    ("chunk_zero", lambda L, x: x.chunk(0), RuntimeError, "chunk expects `chunks` to be greater than 0, got: 0"),
    ("narrow_long", lambda L, x: x.narrow(0, 2, 3), RuntimeError, "start (2) + length (3) exceeds dimension size (3)."),
    ("repeat_few", lambda L, x: x.repeat(2), RuntimeError,
     "Number of dimensions of repeat dims can not be smaller than number of dimensions of tensor"),
    ("roll_align", lambda L, x: x.roll((1, 2), (0,)), RuntimeError, "shifts and dimensions must align. shifts: 2, dims:1"),
    ("flip_dim", lambda L, x: x.flip(2), IndexError, "Dimension out of range"),
    ("tril_1d", lambda L, x: L.tril(x), RuntimeError, "tril: input tensor must have at least 2 dimensions"),
    ("diag_3d", lambda L, x: L.diag(x), RuntimeError, "diag(): Supports 1D or 2D tensors. Got 3D"),
    ("trace_1d", lambda L, x: L.trace(x), RuntimeError, "trace: expected a matrix, but got tensor with dim 1"),
    ("diagonal_same", lambda L, x: x.diagonal(0, 1, 1), RuntimeError, "diagonal dimensions cannot be identical 1, 1"),
    ("unflatten", lambda L, x: x.unflatten(1, (3, 2)), RuntimeError,
     "unflatten: Provided sizes [3, 2] don't multiply up to the size of dim 1 (4) in the input tensor"),
    ("pad_odd", lambda L, x: _pad(L)(x, (1,)), RuntimeError, "Padding length must be divisible by 2"),
    ("pad_long", lambda L, x: _pad(L)(x, (1,) * 6), RuntimeError,
     "Padding length should be less than or equal to two times the input dimension but got padding length 6 and "
     "input of dimension 2"),
    ("mask_shape", lambda L, x: x[L.tensor([True, False])], IndexError,
     "The shape of the mask [2] at index 0 does not match the shape of the indexed tensor [3, 4] at index 0"),
]


def _pad(L):
    return torch.nn.functional.pad if L is torch else pad


INPUTS = {"tril_1d": X[0], "trace_1d": X[0], "diag_3d": X.reshape(3, 2, 2)}


@pytest.mark.parametrize("name,fn,exc,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch_and_record_nothing(name, fn, exc, message):
    arr = INPUTS.get(name, X)
    with pytest.raises(exc) as theirs:
        fn(torch, torch.tensor(arr, requires_grad=True))
    assert message in str(theirs.value), f"torch now says: {theirs.value}"
    x = tg.tensor(arr, requires_grad=True)
    y = x * 1.0     # a non-leaf, so writes are allowed and the tape is not empty
    before = _tape_size()
    with pytest.raises(exc) as ours:
        fn(tg, x if name not in ("index_put_range",) else y)
    assert message in str(ours.value)
    assert _tape_size() == before + (1 if name == "index_put_range" else 0)   # index_put_ on y*1 records y*1 only


# -- integer and bool tensors (no gradients): values and dtypes equal torch's ---------------------------------------

INT_CASES = [
    lambda L, x: L.cat([x, x * 2], 1),
    lambda L, x: L.stack([x, x], -1),
    lambda L, x: x.flip(0).roll(1, 1).repeat(2, 1),
    lambda L, x: x.gather(1, L.tensor([[0, 0], [1, 3], [2, 2]])),
    lambda L, x: x.scatter_add(1, L.tensor([[0, 0], [1, 3], [2, 2]]), L.ones(3, 2, dtype=L.int64)),
    lambda L, x: x.index_select(1, L.tensor([3, 0])),
    lambda L, x: L.tril(x, 1) + L.triu(x, 2),
    lambda L, x: L.trace(x),
    lambda L, x: L.diag(L.diag(x)),
    lambda L, x: _pad(L)(x, (1, 1)),
    lambda L, x: x.split(3, 1)[1],
    lambda L, x: x[x > 4],
    lambda L, x: (x > 3).flip(1),
    lambda L, x: L.cat([x, x.double()]),
]


@pytest.mark.parametrize("k", range(len(INT_CASES)))
def test_integer_tensors_match_torch(k):
    arr = np.arange(12).reshape(3, 4)
    got, want = INT_CASES[k](tg, tg.tensor(arr)), INT_CASES[k](torch, torch.tensor(arr))
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    assert not got.requires_grad
    np.testing.assert_array_equal(_np(got), _np(want))


def test_views_share_storage_and_track_writes():
    x = tg.zeros(3, 4)
    pieces = x.split(2, 1)
    pieces[1][0, 0] = 5.0
    x.unbind(0)[2][1] = 7.0
    x.diagonal()[0] = 1.0
    np.testing.assert_array_equal(x.numpy(), [[1, 0, 5, 0], [0, 0, 0, 0], [0, 7, 0, 0]])


def test_cat_of_many_inputs_reaches_every_input_and_is_not_recorded_without_grad():
    xs = [tg.tensor([float(k)], requires_grad=True) for k in range(6)]
    y = tg.cat(xs + [tg.tensor([10.0])])
    (y * tg.arange(7.0)).sum().backward()
    assert [x.grad.item() for x in xs] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with tg.no_grad():
        before = _tape_size()
        assert tg.cat(xs).grad_fn is None and tg.stack(xs).grad_fn is None
        assert _tape_size() == before


def test_cat_of_mixed_float_dtypes_promotes_and_returns_each_grad_in_its_dtype():
    a = tg.ones(2, dtype=tg.float32, requires_grad=True)
    b = tg.ones(2, dtype=tg.float64, requires_grad=True)
    y = tg.cat([a, b])
    assert y.dtype == tg.float64
    y.sum().backward()
    assert a.grad.dtype == tg.float32 and b.grad.dtype == tg.float64


def test_contiguous_returns_self_or_a_c_ordered_clone():
    x = tg.ones(2, 3, requires_grad=True)
    assert x.contiguous() is x
    y = x.t().contiguous()
    assert y.grad_fn.name() == "CloneBackward0"
    y.view(-1)   # would raise on a non-contiguous layout


# -- forward replay kernels: recompute each recorded output from its inputs -------------------------------------------

def _replay(t):
    """Zero t's recorded value on the tape, recompute it with its family's forward kernel, return (got, want)."""
    tape = current_tape()
    tape.flush()
    p = t._id - tape.base
    o, fam = int(tape.ops[p]), int(tape.ops[p]) >> 6
    pa = int(tape.a[p] - tape.base) if tape.a[p] >= 0 else -1
    pb = int(tape.b[p] - tape.base) if tape.b[p] >= 0 else -1
    off, n = int(tape.off[p]), t.numel()
    want = tape.vals[off:off + n].copy()
    tape.vals[off:off + n] = np.nan
    if fam == op.STRIDED:
        strided_forward(tape.ints, tape.aux[p], tape.off[pa], off, tape.vals)
    elif fam == op.GATHER:
        gather_forward(tape.ints, tape.aux[p], tape.off[pa], off, tape.vals)
    elif fam == op.INDEX_PUT:
        copy_slices_forward(tape.ints, tape.aux[p], tape.off[pa], tape.off[pb] if pb >= 0 else 0, off, pb >= 0,
                            tape.const[p], tape.vals)
    elif fam == op.LAYOUT:
        layout_forward(o, tape.ints, tape.aux, tape.off, tape.const, tape.base, p, pa, pb, tape.vals)
    else:
        raise AssertionError(f"not a shape family: {op.NAMES[o]}")
    return tape.vals[off:off + n].copy(), want


def _leaf(shape, k=0):
    return tg.tensor(np.random.default_rng(k).normal(size=shape), requires_grad=True)


REPLAYS = {
    "view_transpose": lambda x, v: x.t(),
    "slice_step": lambda x, v: x[1:, ::2],
    "select": lambda x, v: x[:, 2],
    "expand": lambda x, v: v.expand(2, 3, 4),
    "diagonal": lambda x, v: x.diagonal(-1),
    "diag_copy": lambda x, v: tg.diag(x, 1),
    "split": lambda x, v: x.split(3, 1)[1],
    "unbind": lambda x, v: x.unbind(1)[3],
    "index": lambda x, v: x[[2, 0, 2]],
    "index_mask": lambda x, v: x[x > 0],
    "flip": lambda x, v: x.flip(0, 1),
    "roll": lambda x, v: x.roll(2),
    "repeat": lambda x, v: x.repeat(2, 1, 2),
    "index_select": lambda x, v: x.index_select(1, tg.tensor([3, 0, 3])),
    "gather": lambda x, v: x.gather(0, tg.tensor([[2, 1, 0, 0]])),
    "setitem_scalar": lambda x, v: _set(x * 1.0, (slice(None), 1), 2.5),
    "setitem_tensor": lambda x, v: _set(x * 1.0, (tg.tensor([0, 2]),), v),
    "setitem_mask_scalar": lambda x, v: _set(x * 1.0, x > 0, -1.0),
    "fill": lambda x, v: (x * 1.0).fill_(3.0),
    "scatter": lambda x, v: x.scatter(1, tg.tensor([[3], [0], [1]]), v[:3, None]),
    "scatter_value": lambda x, v: x.scatter(1, tg.tensor([[3], [0], [1]]), -2.0),
    "tril": lambda x, v: x.tril(),
    "triu": lambda x, v: x.triu(1),
    "pad": lambda x, v: pad(x, (1, -1, 2, 0), value=0.75),
    "diag_embed": lambda x, v: tg.diag(v, -1),
    "trace": lambda x, v: tg.trace(x),
    "cat": lambda x, v: tg.cat([x, x * 2.0, x[:1], x], 0),
    "cat_single": lambda x, v: tg.cat([x], 1),
    "stack": lambda x, v: tg.stack([x, x * 3.0, x], 1),
    "scatter_add": lambda x, v: x.scatter_add(1, tg.tensor([[0, 0], [3, 3], [1, 2]]), v[:2].expand(3, 2)),
    "index_put_acc": lambda x, v: (x * 1.0).index_put_((tg.tensor([1, 1, 0]),), v, accumulate=True),
}


def _set(y, idx, v):
    y[idx] = v
    return y


@pytest.mark.parametrize("name", list(REPLAYS))
def test_forward_kernel_recomputes_the_recorded_value(name):
    x, v = _leaf((3, 4), 1), _leaf((4,), 2)
    out = REPLAYS[name](x, v)
    got, want = _replay(out)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(want, _np(out).reshape(-1))
