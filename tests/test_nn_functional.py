"""tapegrad.nn.functional against torch.nn.functional: option grids, errors, dropout, one_hot, forward replay."""
import itertools
import warnings

import numpy as np
import pytest

import tapegrad as tg
import tapegrad.nn.functional as F
from tapegrad._kernels import opcodes as op
from tapegrad._kernels.nn import nn_forward
from tapegrad._tape import current_tape

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(1234)


class Const:
    """An argument that does not require grad (targets, indices, loss weights)."""

    def __init__(self, value):
        self.value = np.asarray(value)


def _pair(a, dtype=None):
    if isinstance(a, Const):
        v = a.value.astype(dtype) if dtype is not None and a.value.dtype.kind == "f" else a.value
        return tg.tensor(v), torch.tensor(v)
    if isinstance(a, np.ndarray):
        v = a.astype(dtype) if dtype is not None else a
        return tg.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    return a, a


def compare(name, *args, dtype=None, tol=None, **kwargs):
    """Call F.name and torch's on the same arguments; compare values, grad_fn names and every gradient."""
    tol = tol or (dict(rtol=1e-10, atol=1e-12) if dtype is None else dict(rtol=1e-4, atol=1e-5))
    pairs = [_pair(a, dtype) for a in args]
    kw_pairs = {k: _pair(v, dtype) if isinstance(v, Const) else (v, v) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = getattr(F, name)(*[p[0] for p in pairs], **{k: v[0] for k, v in kw_pairs.items()})
        ref = getattr(TF, name)(*[p[1] for p in pairs], **{k: v[1] for k, v in kw_pairs.items()})
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), equal_nan=True, err_msg=name, **tol)
    assert out.dtype.name == str(ref.dtype).split(".")[-1]
    if dtype is None:
        mine = out.grad_fn.name() if out.grad_fn is not None else None
        assert mine == (ref.grad_fn.name() if ref.grad_fn is not None else None), name
    if not ref.requires_grad:
        return out
    seed = RNG.uniform(-1, 1, tuple(ref.shape))
    out.backward(tg.tensor(seed.astype(out.detach().numpy().dtype)))
    ref.backward(torch.tensor(seed.astype(ref.detach().numpy().dtype)))
    for k, (a, b) in enumerate(pairs):
        if isinstance(b, torch.Tensor) and b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), equal_nan=True,
                                       err_msg=f"{name}: gradient of argument {k}", **tol)
    return out


def normal(*shape):
    return RNG.normal(size=shape)


# -- option grids --------------------------------------------------------------------------------------------------

CE_SHAPES = {"1d": ((5,), ()), "2d": ((4, 5), (4,)), "3d": ((3, 5, 2), (3, 2)), "4d": ((2, 5, 2, 3), (2, 2, 3))}


@pytest.mark.parametrize("rank,weighted,ignore,smoothing,reduction,kind", itertools.product(
    CE_SHAPES, [False, True], [-100, 1], [0.0, 0.25], ["mean", "sum", "none"], ["index", "probs"]))
def test_cross_entropy_grid(rank, weighted, ignore, smoothing, reduction, kind):
    xs, ts = CE_SHAPES[rank]
    x = normal(*xs)
    if kind == "index":
        t = Const(RNG.integers(0, 5, ts))
    else:
        p = RNG.uniform(0, 1, xs)
        t = Const(p / p.sum(axis=0 if rank == "1d" else 1, keepdims=True))
    w = Const(RNG.uniform(0.5, 2.0, 5)) if weighted else None
    if kind == "probs" and ignore >= 0:
        for lib, fn in ((tg, F.cross_entropy), (torch, TF.cross_entropy)):
            with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
                fn(lib.tensor(x), lib.tensor(t.value), ignore_index=ignore)
        return
    compare("cross_entropy", x, t, w, ignore_index=ignore, reduction=reduction, label_smoothing=smoothing)


@pytest.mark.parametrize("rank,weighted,ignore,reduction", itertools.product(
    CE_SHAPES, [False, True], [-100, 1, 3], ["mean", "sum", "none"]))
def test_nll_loss_grid(rank, weighted, ignore, reduction):
    xs, ts = CE_SHAPES[rank]
    w = Const(RNG.uniform(0.5, 2.0, 5)) if weighted else None
    compare("nll_loss", normal(*xs), Const(RNG.integers(0, 5, ts)), w, ignore_index=ignore, reduction=reduction)


def test_nll_loss_all_ignored_mean_is_nan_like_torch():
    compare("nll_loss", normal(3, 4), Const(np.array([2, 2, 2])), ignore_index=2)
    compare("cross_entropy", normal(3, 4), Const(np.array([2, 2, 2])), ignore_index=2, reduction="sum",
            label_smoothing=0.1)


def test_cross_entropy_float32():
    compare("cross_entropy", normal(4, 3), Const(np.array([0, 2, 1, 1])), Const([1.0, 2.0, 0.5]), dtype=np.float32,
            label_smoothing=0.1)


@pytest.mark.parametrize("name,kwargs,reduction", itertools.product(
    ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"], [{}, {"beta": 0.5}, {"delta": 0.4}, {"beta": 0.0}],
    ["mean", "sum", "none"]))
def test_regression_losses(name, kwargs, reduction):
    if ("beta" in kwargs) != (name == "smooth_l1_loss") or ("delta" in kwargs and name != "huber_loss"):
        kwargs = {}
    compare(name, normal(3, 4), normal(3, 4), reduction=reduction, **kwargs)


def test_regression_losses_broadcast_and_legacy_and_float32():
    compare("mse_loss", normal(3, 4), normal(4))
    compare("mse_loss", normal(3, 4), Const(normal(3, 4)), size_average=False)
    compare("l1_loss", normal(3, 4), normal(3, 4), reduce=False)
    compare("huber_loss", normal(2, 3), normal(2, 3), dtype=np.float32)
    compare("mse_loss", normal(0, 3), normal(0, 3))


@pytest.mark.parametrize("weighted,reduction", itertools.product([False, True], ["mean", "sum", "none"]))
def test_binary_cross_entropy(weighted, reduction):
    x = RNG.uniform(0.02, 0.98, (3, 4))
    x[0, 0], x[0, 1] = 0.0, 1.0   # the clamped logs
    t = RNG.uniform(0, 1, (3, 4))
    w = Const(RNG.uniform(0.5, 2, (4,))) if weighted else None
    pairs = [_pair(a) for a in (x, Const(t))]
    out = F.binary_cross_entropy(pairs[0][0], pairs[1][0], w and tg.tensor(w.value), reduction=reduction)
    ref = TF.binary_cross_entropy(pairs[0][1], pairs[1][1], w and torch.tensor(w.value), reduction=reduction)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10)
    assert out.grad_fn.name() == ref.grad_fn.name()
    compare("binary_cross_entropy", RNG.uniform(0.05, 0.95, (3, 4)), t, w, reduction=reduction)


@pytest.mark.parametrize("weighted,pos_weighted,reduction", itertools.product(
    [False, True], [False, True], ["mean", "sum", "none"]))
def test_binary_cross_entropy_with_logits(weighted, pos_weighted, reduction):
    x = normal(3, 4) * 30.0   # far into both tails: the stable form must not overflow
    w = Const(RNG.uniform(0.5, 2, (3, 1))) if weighted else None
    pw = Const(RNG.uniform(0.5, 2, (4,))) if pos_weighted else None
    compare("binary_cross_entropy_with_logits", x, RNG.uniform(0, 1, (3, 4)), w, reduction=reduction, pos_weight=pw)


@pytest.mark.parametrize("reduction,log_target", itertools.product(
    ["mean", "sum", "none", "batchmean"], [False, True]))
def test_kl_div(reduction, log_target):
    t = RNG.uniform(0, 1, (3, 4))
    t[0, 0] = 0.0
    target = normal(3, 4) if log_target else Const(t)
    compare("kl_div", normal(3, 4), target, reduction=reduction, log_target=log_target)


@pytest.mark.parametrize("dim,dtype", itertools.product([0, 1, -1], [None, "float32"]))
def test_softmax_family(dim, dtype):
    x = normal(3, 4, 2) * 50.0     # large logits: must stay finite
    for name in ("softmax", "log_softmax"):
        out = compare(name, x, dim=dim, dtype=getattr(tg, dtype) if dtype else None) if dtype is None else None
        if dtype:
            a, b = _pair(x)
            np.testing.assert_allclose(getattr(F, name)(a, dim, dtype=tg.float32).detach().numpy(),
                                       getattr(TF, name)(b, dim, dtype=torch.float32).detach().numpy(), rtol=1e-5,
                                       atol=1e-5)
        elif out is not None:
            assert np.all(np.isfinite(out.detach().numpy()))


def test_softmax_implicit_dim_warns_and_matches():
    a, b = _pair(normal(3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(a)
    np.testing.assert_allclose(out.detach().numpy(), TF.softmax(b, dim=1).detach().numpy(), rtol=1e-12)
    compare("softmax", normal(), dim=0)


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, 0), (3.0, -1)])
def test_normalize_and_cosine(p, dim):
    compare("normalize", normal(3, 4), p=p, dim=dim)
    x = normal(3, 4)
    x[1] = 0.0                         # a zero row: the eps clamp, and the norm's zero gradient at 0
    compare("normalize", x, p=p, dim=1)
    compare("cosine_similarity", x, normal(3, 4), dim=1)
    compare("cosine_similarity", normal(3, 4), normal(3, 4), dim=dim if dim != 0 else 0)
    compare("cosine_similarity", normal(3, 4), normal(4), dim=-1)


@pytest.mark.parametrize("batch,bias", itertools.product([(), (2,), (2, 3)], [False, True]))
def test_linear_and_bilinear(batch, bias):
    compare("linear", normal(*batch, 4), normal(3, 4), normal(3) if bias else None)
    if batch:
        compare("bilinear", normal(*batch, 4), normal(*batch, 2), normal(3, 4, 2), normal(3) if bias else None)


CONV2D = list(itertools.product([1, (2, 1)], [0, 1, (1, 2), "same", "valid"], [1, (2, 1)], [1, 2], [False, True]))


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", CONV2D)
def test_conv2d_grid(stride, padding, dilation, groups, bias):
    if padding == "same" and stride != 1:
        return
    compare("conv2d", normal(2, 4, 6, 5), normal(6, 4 // groups, 3, 2), normal(6) if bias else None,
            stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", itertools.product(
    [1, 2], [0, 2, "same", "valid"], [1, 2], [1, 2], [False, True]))
def test_conv1d_grid(stride, padding, dilation, groups, bias):
    if padding == "same" and stride != 1:
        return
    compare("conv1d", normal(2, 4, 9), normal(2, 4 // groups, 4), normal(2) if bias else None,
            stride=stride, padding=padding, dilation=dilation, groups=groups)


def test_conv_unbatched_and_float32():
    compare("conv2d", normal(3, 5, 5), normal(2, 3, 3, 3), normal(2))
    compare("conv1d", normal(3, 7), normal(2, 3, 3))
    compare("conv2d", normal(1, 3, 5, 5), normal(2, 3, 3, 3), normal(2), dtype=np.float32, padding=1)


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode", itertools.product(
    [2, (3, 2)], [None, 1, (2, 3)], [0, 1], [1, 2], [False, True]))
def test_max_pool2d_grid(kernel, stride, padding, dilation, ceil_mode):
    x = RNG.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) * 0.1   # no ties
    out = compare("max_pool2d", x, kernel, stride, padding, dilation, ceil_mode)
    a, b = _pair(x)
    _, mine = F.max_pool2d(a, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    _, theirs = TF.max_pool2d(b, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    assert mine.dtype == tg.int64 and not mine.requires_grad
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert out.shape == tuple(theirs.shape)


def test_max_pool2d_ties_and_nan_pick_torchs_element():
    x = np.ones((1, 1, 4, 4))
    compare("max_pool2d", x, 2)
    x[0, 0, 1, 1] = np.nan
    a, b = _pair(x)
    np.testing.assert_array_equal(F.max_pool2d(a, 2, return_indices=True)[1].numpy(),
                                  TF.max_pool2d(b, 2, return_indices=True)[1].numpy())


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,include_pad,divisor", itertools.product(
    [2, (3, 2)], [None, (2, 3)], [0, 1], [False, True], [False, True], [None, 5]))
def test_avg_pool2d_grid(kernel, stride, padding, ceil_mode, include_pad, divisor):
    compare("avg_pool2d", normal(2, 3, 7, 8), kernel, stride, padding, ceil_mode, include_pad, divisor)


def test_pool_3d_input_and_float32():
    compare("avg_pool2d", normal(3, 5, 5), 2, dtype=np.float32)
    compare("max_pool2d", normal(3, 5, 5), 3, 1, 1)


@pytest.mark.parametrize("shape,ns,affine", itertools.product(
    [(4,), (2, 4), (2, 3, 4)], ["last", "all"], ["none", "weight", "bias", "both"]))
def test_layer_norm_grid(shape, ns, affine):
    normalized = shape[-1:] if ns == "last" else shape
    w = normal(*normalized) if affine in ("weight", "both") else None
    b = normal(*normalized) if affine in ("bias", "both") else None
    compare("layer_norm", normal(*shape), normalized, w, b, eps=1e-3)


def test_layer_norm_float32():
    compare("layer_norm", normal(3, 5), (5,), normal(5), normal(5), dtype=np.float32)


@pytest.mark.parametrize("padding_idx", [None, 0, 2, -1])
def test_embedding(padding_idx):
    idx = Const(np.array([[0, 2, 3], [3, 2, 2]]))
    compare("embedding", idx, normal(4, 3), padding_idx=padding_idx)
    compare("embedding", Const(np.array(1)), normal(4, 3), padding_idx=padding_idx)


def test_relu_tanh_sigmoid_reexported():
    for name in ("relu", "tanh", "sigmoid"):
        compare(name, normal(3, 2) + 0.01)


# -- non-differentiable: one_hot --------------------------------------------------------------------------------------

@pytest.mark.parametrize("values,num_classes", [([0, 2, 1], -1), ([[1, 0], [3, 3]], 5), (2, 4), ([], 3)])
def test_one_hot(values, num_classes):
    v = np.array(values, dtype=np.int64)
    mine = F.one_hot(tg.tensor(v), num_classes)
    theirs = TF.one_hot(torch.tensor(v), num_classes)
    assert mine.dtype == tg.int64 and not mine.requires_grad
    np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


# -- dropout --------------------------------------------------------------------------------------------------------

def test_dropout_masks_scales_and_replays_with_the_seed():
    x = tg.tensor(normal(200, 50), requires_grad=True)
    tg.manual_seed(7)
    y = F.dropout(x, 0.3)
    tg.manual_seed(7)
    y2 = F.dropout(x, 0.3)
    np.testing.assert_array_equal(y.detach().numpy(), y2.detach().numpy())
    kept = y.detach().numpy() != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] / 0.7, rtol=1e-14)
    assert y.grad_fn.name() == "MulBackward0"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.7, rtol=1e-14)


def test_dropout_identity_cases_and_extremes():
    x = tg.tensor(normal(3, 4), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.detach().numpy(), 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    z = tg.tensor(np.ones((50, 40)))
    F.dropout(z, 0.5, inplace=True)
    assert set(np.unique(z.numpy())) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)


# -- errors: torch's messages, nothing recorded ----------------------------------------------------------------------

def _tape_size():
    tape = current_tape()
    tape.flush()
    return tape.n


ERRORS = [
    (lambda x: F.cross_entropy(x, tg.tensor([0, 1, 2, 1])), ValueError,
     r"Expected input batch_size \(3\) to match target batch_size \(4\)\."),
    (lambda x: F.cross_entropy(x, tg.tensor([0, 5, 1])), IndexError, r"Target 5 is out of bounds\."),
    (lambda x: F.nll_loss(x, tg.tensor([0, -1, 1])), IndexError, r"Target -1 is out of bounds\."),
    (lambda x: F.nll_loss(x, tg.tensor([0, 1, 1]), weight=tg.ones(3)), RuntimeError,
     r"weight tensor should be defined either for all 4 classes"),
    (lambda x: F.mse_loss(x, tg.zeros(3, 5)), RuntimeError,
     r"The size of tensor a \(4\) must match the size of tensor b \(5\) at non-singleton dimension 1"),
    (lambda x: F.mse_loss(x, tg.zeros(3, 4), reduction="avg"), ValueError, r"avg is not a valid value for reduction"),
    (lambda x: F.binary_cross_entropy(x.sigmoid(), tg.zeros(3)), ValueError,
     r"Using a target size \(torch.Size\(\[3\]\)\) that is different to the input size"),
    (lambda x: F.binary_cross_entropy_with_logits(x, tg.zeros(4)), ValueError,
     r"Target size \(torch.Size\(\[4\]\)\) must be the same as input size \(torch.Size\(\[3, 4\]\)\)"),
    (lambda x: F.binary_cross_entropy(x, tg.zeros(3, 4)), RuntimeError,
     r"all elements of input should be between 0 and 1"),
    (lambda x: F.conv2d(x.reshape(1, 1, 3, 4), tg.zeros(2, 3, 1, 1, dtype=tg.float64)), RuntimeError,
     r"Given groups=1, weight of size \[2, 3, 1, 1\], expected input\[1, 1, 3, 4\] to have 3 channels, but got 1 "
     r"channels instead"),
    (lambda x: F.conv2d(x, tg.zeros(2, 3, 1, 1, dtype=tg.float64)), RuntimeError,
     r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: \[3, 4\]"),
    (lambda x: F.conv2d(x.reshape(1, 1, 3, 4), tg.zeros(1, 1, 2, 2, dtype=tg.float64), stride=2, padding="same"), ValueError,
     r"padding='same' is not supported for strided convolutions"),
    (lambda x: F.conv1d(x.reshape(1, 3, 4), tg.zeros(1, 3, 5, dtype=tg.float64)), RuntimeError,
     r"Kernel size can't be greater than actual input size"),
    (lambda x: F.max_pool2d(x, 2), RuntimeError, r"3D or 4D \(batch mode\) tensor expected for input"),
    (lambda x: F.max_pool2d(x.reshape(1, 3, 4), 2, padding=2), RuntimeError, r"pad should be at most half"),
    (lambda x: F.layer_norm(x, (3,)), RuntimeError,
     r"Given normalized_shape=\[3\], expected input with shape \[\*, 3\], but got input of size\[3, 4\]"),
    (lambda x: F.embedding(tg.tensor([0, 4]), x), IndexError, r"index out of range in self"),
    (lambda x: F.softmax(x, 2), IndexError, r"Dimension out of range"),
    (lambda x: F.one_hot(tg.tensor([0, 3]), 3), RuntimeError, r"Class values must be smaller than num_classes\."),
    (lambda x: F.linear(x, tg.zeros(2, 5)), RuntimeError, r"mat1 and mat2 shapes cannot be multiplied \(3x4 and 5x2\)"),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors_match_torch_and_record_nothing(case):
    fn, exc, message = ERRORS[case]
    x = tg.tensor(normal(3, 4), requires_grad=True)
    before = _tape_size()
    with pytest.raises(exc, match=message):
        fn(x)
    # the sigmoid / reshape inside some cases is recorded before the nn op raises: allow exactly those
    assert _tape_size() - before <= 2


def test_errors_raise_the_same_type_in_torch():
    x = torch.tensor(normal(3, 4), requires_grad=True)
    with pytest.raises(ValueError, match=r"Expected input batch_size \(3\) to match target batch_size \(4\)\."):
        TF.cross_entropy(x, torch.tensor([0, 1, 2, 1]))
    with pytest.raises(IndexError, match=r"Target 5 is out of bounds\."):
        TF.cross_entropy(x, torch.tensor([0, 5, 1]))


def test_nn_ops_validate_before_recording():
    x = tg.tensor(normal(3, 4), requires_grad=True)
    for call in (lambda: F.cross_entropy(x, tg.tensor([0, 9, 1])), lambda: F.nll_loss(x, tg.tensor([0, 1])),
                 lambda: F.cross_entropy(x.reshape(3, 4, 1), tg.tensor([[0], [1]])),
                 lambda: F.cross_entropy(x, tg.tensor(np.ones((3, 3))))):
        x.sum()   # records x's leaf, so the count below sees only what the call adds
        before = _tape_size()
        with pytest.raises((IndexError, ValueError, RuntimeError)):
            call()
        assert _tape_size() - before <= 1   # at most the reshape inside the third call


# -- forward replay kernels ---------------------------------------------------------------------------------------

def _replay_matches(out):
    """Zero the record's output slot (and a max-pool's argmax params), rerun nn_forward, compare with eager."""
    tape = current_tape()
    tape.flush()
    i = out._id - tape.base
    o = int(tape.ops[i])
    assert o >> 6 == op.NN
    size = out.numel()
    vo = int(tape.off[i])
    eager = tape.vals[vo:vo + size].copy()
    aux = int(tape.aux[i])
    p = aux + 1 + int(tape.ints[aux])
    q = p + 1 + int(tape.ints[p])
    saved_ints = tape.ints[q:q + 13 + size].copy() if o == op.MAX_POOL2D else None
    if o == op.MAX_POOL2D:
        tape.ints[q + 13:q + 13 + size] = 0
    tape.vals[vo:vo + size] = 0.0
    pa = int(tape.a[i]) - tape.base
    pb = int(tape.b[i]) - tape.base if tape.b[i] >= 0 else -1
    nn_forward(o, tape.ints, tape.aux, tape.off, tape.base, i, pa, pb, float(tape.const[i]), tape.vals)
    np.testing.assert_allclose(tape.vals[vo:vo + size], eager, rtol=1e-13, atol=1e-14, equal_nan=True)
    if saved_ints is not None:
        np.testing.assert_array_equal(tape.ints[q:q + 13 + size], saved_ints)
    assert np.any(eager != 0.0)


def _x(*shape):
    return tg.tensor(normal(*shape), requires_grad=True)


REPLAYS = {
    "softmax": lambda: F.softmax(_x(3, 4), 0),
    "log_softmax": lambda: F.log_softmax(_x(3, 4), 1),
    "mse": lambda: F.mse_loss(_x(3, 4), tg.tensor(normal(3, 4))),
    "smooth_l1_none": lambda: F.smooth_l1_loss(_x(3, 4), tg.tensor(normal(3, 4)), reduction="none", beta=0.5),
    "huber_sum": lambda: F.huber_loss(_x(3, 4), tg.tensor(normal(3, 4)), reduction="sum", delta=0.3),
    "bce_weight": lambda: F.binary_cross_entropy(tg.tensor(RNG.uniform(0.1, 0.9, (3, 4)), requires_grad=True),
                                                 tg.tensor(RNG.uniform(0, 1, (3, 4))), weight=tg.tensor(normal(4))),
    "bce_logits_pos_weight": lambda: F.binary_cross_entropy_with_logits(
        _x(3, 4), tg.tensor(RNG.uniform(0, 1, (3, 4))), pos_weight=tg.tensor(RNG.uniform(1, 2, 4))),
    "nll_weight_ignore": lambda: F.nll_loss(_x(3, 4), tg.tensor([0, 3, 1]), tg.tensor(normal(4)), ignore_index=3),
    "nll2d_none": lambda: F.nll_loss(_x(2, 3, 2, 2), tg.tensor(RNG.integers(0, 3, (2, 2, 2))), reduction="none"),
    "div_count": lambda: F.cross_entropy(_x(3, 4), tg.tensor(RNG.uniform(0, 1, (3, 4)))),
    "layer_norm": lambda: F.layer_norm(_x(3, 4), (4,), _x(4), _x(4)),
    "layer_norm_bias_only": lambda: F.layer_norm(_x(3, 4), (3, 4), None, _x(3, 4)),
    "embedding": lambda: F.embedding(tg.tensor([[1, 0], [2, 2]]), _x(3, 4), padding_idx=0),
    "conv2d": lambda: F.conv2d(_x(2, 4, 5, 6), _x(4, 2, 3, 2), _x(4), stride=(2, 1), padding=1, dilation=(1, 2),
                               groups=2),
    "conv1d": lambda: F.conv1d(_x(2, 3, 7), _x(2, 3, 3), padding="same"),
    "max_pool2d": lambda: F.max_pool2d(_x(2, 3, 6, 7), 3, 2, 1, ceil_mode=True),
    "avg_pool2d": lambda: F.avg_pool2d(_x(2, 3, 6, 7), 3, 2, 1, ceil_mode=True, count_include_pad=False),
}


@pytest.mark.parametrize("name", REPLAYS)
def test_forward_replay_kernel(name):
    out = REPLAYS[name]()
    _replay_matches(out)


def test_backward_through_a_chain_of_nn_ops():
    """A small CNN classifier step: conv -> relu -> pool -> linear -> cross_entropy, against torch."""
    xs, ws, bs, lw = normal(2, 1, 6, 6), normal(3, 1, 3, 3), normal(3), normal(4, 12)

    def run(L, lib):
        x, w, b, v = (lib.tensor(a, requires_grad=True) for a in (xs, ws, bs, lw))
        f = L
        h = f.max_pool2d(f.relu(f.conv2d(x, w, b, padding=1)), 3)
        loss = f.cross_entropy(f.linear(h.reshape(2, -1), v), lib.tensor([1, 3]), label_smoothing=0.1)
        loss.backward()
        return [loss.detach().numpy()] + [t.grad.numpy() for t in (x, w, b, v)]
    for got, want in zip(run(F, tg), run(TF, torch)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
