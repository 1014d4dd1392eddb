"""tapegrad.nn modules, init, clip_grad and save/load against PyTorch."""
import io
import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn
from tapegrad.nn import functional as F
from tapegrad.nn import init

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy()


def _copy_weights(tmodule, module):
    module.load_state_dict({k: v.detach().numpy() for k, v in tmodule.state_dict().items()})


def _torch_msg(text):
    return text.replace("torch.Size", "tapegrad.Size").replace("'torch.", "'tapegrad.")


# -- Parameter ----------------------------------------------------------------------------------------------------

def test_parameter_is_a_leaf_that_requires_grad_and_prints_like_torch():
    p = nn.Parameter(tg.tensor([1.0, 2.0]))
    assert p.is_leaf and p.requires_grad and isinstance(p, nn.Parameter) and isinstance(p, tg.Tensor)
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    q = nn.Parameter(tg.tensor([1.0]), requires_grad=False)
    assert repr(q) == repr(torch.nn.Parameter(torch.tensor([1.0]), requires_grad=False))
    assert not isinstance(tg.ones(2), nn.Parameter)
    assert not isinstance(p * 2, nn.Parameter)
    assert (p * 2).grad_fn.name() == "MulBackward0"


def test_parameter_shares_storage_with_its_data():
    data = tg.zeros(2)
    p = nn.Parameter(data)
    with tg.no_grad():
        p.add_(1.0)
    assert data.tolist() == [1.0, 1.0]


# -- registration and traversal -----------------------------------------------------------------------------------

class _Net:
    """The same small network in either library: shared layer, buffer, nested containers."""

    @staticmethod
    def build(lib):
        m = lib.nn

        class Net(m.Module):
            def __init__(self):
                super().__init__()
                self.encoder = m.Sequential(m.Linear(3, 4), m.Tanh())
                self.heads = m.ModuleList([m.Linear(4, 2), m.Linear(4, 2, bias=False)])
                self.shared = self.heads[0]
                self.extra = m.ModuleDict({"scale": m.Linear(2, 2)})
                self.register_buffer("running", lib.zeros(2))
                self.register_buffer("scratch", lib.ones(1), persistent=False)
                self.alpha = m.Parameter(lib.ones(1))

            def forward(self, x):
                h = self.encoder(x)
                return self.extra["scale"](self.heads[0](h) + self.heads[1](h)) * self.alpha + self.running
        return Net()


def test_names_order_and_traversal_match_torch():
    ours, theirs = _Net.build(tg), _Net.build(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["alpha"]
    assert len(list(ours.modules())) == len(list(theirs.modules()))
    assert repr(ours) == repr(theirs)


def test_forward_and_backward_match_torch():
    ours, theirs = _Net.build(tg).double(), _Net.build(torch).double()
    _copy_weights(theirs, ours)
    x = np.random.default_rng(0).standard_normal((5, 3))
    theirs(torch.tensor(x)).sum().backward()
    ours(tg.tensor(x)).sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, err_msg=name)


def test_attribute_errors_match_torch():
    ours, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    for action in (lambda m, lib: setattr(m, "weight", lib.zeros(3, 2)),
                   lambda m, lib: m.register_buffer("weight", lib.zeros(1)),
                   lambda m, lib: getattr(m, "nope"),
                   lambda m, lib: m.register_parameter("a.b", None)):
        with pytest.raises(Exception) as theirs_err:
            action(theirs, torch)
        with pytest.raises(type(theirs_err.value)) as ours_err:
            action(ours, tg)
        assert str(ours_err.value) == _torch_msg(str(theirs_err.value))


def test_assigning_none_and_deleting():
    m = nn.Linear(2, 3)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert list(m.state_dict()) == ["weight"]
    del m.weight
    assert list(m.parameters()) == []
    m.child = nn.Tanh()
    assert list(m._modules) == ["child"]
    m.child = nn.ReLU()
    assert isinstance(m.child, nn.ReLU)


def test_train_eval_zero_grad_requires_grad_apply():
    m = _Net.build(tg)
    assert m.training
    m.eval()
    assert not any(sub.training for sub in m.modules())
    m.train()
    assert all(sub.training for sub in m.modules())
    m(tg.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(not p.grad.numpy().any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    seen, tseen = [], []
    m.apply(lambda sub: seen.append(type(sub).__name__))
    _Net.build(torch).apply(lambda sub: tseen.append(type(sub).__name__))
    assert seen == tseen and seen[-1] == "Net"


def test_to_double_float_keep_parameter_identity():
    m = nn.Linear(2, 3)
    w = m.weight
    assert m.double() is m and m.weight is w and w.dtype == tg.float64 and isinstance(w, nn.Parameter)
    m.to(tg.float32)
    assert w.dtype == tg.float32
    m.to(dtype=tg.float64)
    assert m.bias.dtype == tg.float64
    out = m(tg.randn(4, 2, dtype=tg.float64))
    assert out.dtype == tg.float64


# -- state_dict ---------------------------------------------------------------------------------------------------

def test_state_dict_tensors_are_detached_and_share_storage():
    m = nn.Linear(2, 3)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad and sd["weight"].is_leaf
    with tg.no_grad():
        m.weight.mul_(0.0)
    assert not sd["weight"].numpy().any()
    keep = m.state_dict(keep_vars=True)
    assert keep["weight"] is m.weight


def test_load_state_dict_accepts_tensors_and_arrays_and_bumps_versions():
    m = nn.Linear(2, 3)
    version = m.weight._version
    result = m.load_state_dict({"weight": np.ones((3, 2)), "bias": tg.zeros(3)})
    assert repr(result) == "<All keys matched successfully>"
    assert m.weight.tolist() == [[1.0, 1.0]] * 3 and m.bias.tolist() == [0.0] * 3
    assert m.weight.dtype == tg.float32 and m.weight._version > version
    assert m.weight.requires_grad and m.weight.is_leaf


def test_load_state_dict_errors_match_torch_and_change_nothing():
    ours, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    before = ours.weight.numpy(force=True).copy()
    bad = [{"weight": np.zeros((4, 2)), "foo": np.zeros(1)},
           {"weight": np.zeros((3, 2)), "bias": np.zeros(4)},
           {"weight": np.zeros((3, 2))}]
    for sd in bad:
        with pytest.raises(RuntimeError) as theirs_err:
            theirs.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
        with pytest.raises(RuntimeError) as ours_err:
            ours.load_state_dict(sd)
        assert str(ours_err.value) == _torch_msg(str(theirs_err.value))
        np.testing.assert_array_equal(ours.weight.numpy(force=True), before)
    result = ours.load_state_dict({"weight": np.zeros((3, 2)), "junk": np.zeros(1)}, strict=False)
    tresult = theirs.load_state_dict({"weight": torch.zeros(3, 2), "junk": torch.zeros(1)}, strict=False)
    assert repr(result) == repr(tresult) and result.missing_keys == ["bias"]
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        ours.load_state_dict([1])


def test_state_dict_keys_and_shapes_match_torch_for_every_layer():
    def build(lib):
        m = lib.nn
        return m.ModuleDict({
            "linear": m.Linear(3, 4), "bilinear": m.Bilinear(2, 3, 4), "emb": m.Embedding(5, 3, padding_idx=1),
            "ln": m.LayerNorm((2, 3)), "conv1": m.Conv1d(2, 4, 3), "conv2": m.Conv2d(2, 4, (3, 2), bias=False),
            "rnn": m.RNN(3, 4, num_layers=2, bidirectional=True), "gru": m.GRU(3, 4, bias=False),
            "lstm": m.LSTM(3, 4, num_layers=2, batch_first=True), "cell": m.LSTMCell(3, 4), "gcell": m.GRUCell(3, 4),
            "rcell": m.RNNCell(3, 4, nonlinearity="relu"), "prelu": m.PReLU(3),
            "bce": m.BCEWithLogitsLoss(pos_weight=lib.ones(2)), "ce": m.CrossEntropyLoss(weight=lib.ones(3)),
        })
    ours, theirs = build(tg), build(torch)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == \
           [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert repr(ours) == repr(theirs)


# -- reprs --------------------------------------------------------------------------------------------------------

REPRS = [
    "Linear(3, 4)", "Linear(3, 4, bias=False)", "Bilinear(2, 3, 4)", "Identity()", "Flatten()", "Flatten(0, 2)",
    "Unflatten(1, (2, 3))", "ReLU()", "ReLU(inplace=True)", "Tanh()", "Sigmoid()", "GELU()", "GELU('tanh')",
    "SiLU()", "Softmax(dim=1)", "Softmax()", "LogSoftmax(dim=-1)", "ELU()", "ELU(alpha=0.5, inplace=True)",
    "LeakyReLU()", "LeakyReLU(0.2)", "Softplus()", "Softplus(beta=2.0, threshold=10.0)", "Hardtanh()",
    "ReLU6()", "Mish()", "SELU()", "CELU()", "Hardsigmoid()", "Hardswish()", "Softsign()", "Tanhshrink()",
    "LogSigmoid()", "Softmin(dim=0)", "PReLU()", "Dropout()", "Dropout(0.2, inplace=True)",
    "Dropout2d(0.1)", "Embedding(10, 3)", "Embedding(10, 3, padding_idx=-1, max_norm=1.0)", "LayerNorm(4)",
    "LayerNorm((2, 3), eps=1e-3, elementwise_affine=False)", "LayerNorm(4, bias=False)", "Conv1d(2, 3, 3)",
    "Conv2d(2, 3, 3, stride=2, padding=1)", "Conv2d(2, 4, (3, 2), dilation=2, groups=2, bias=False)",
    "Conv1d(2, 4, 3, padding='same', padding_mode='reflect')", "MaxPool2d(2)", "MaxPool2d(3, stride=1, padding=1)",
    "MaxPool1d(2)", "AvgPool2d(2)", "AvgPool1d(3)", "AdaptiveAvgPool2d((1, 1))", "RNN(2, 3)",
    "RNN(2, 3, nonlinearity='relu', bias=False)", "RNN(2, 3, 2, 'relu')", "RNNCell(2, 3, nonlinearity='relu')", "GRU(2, 3, num_layers=2, batch_first=True)",
    "LSTM(2, 3, bidirectional=True, dropout=0.5, num_layers=2)", "RNNCell(2, 3)", "LSTMCell(2, 3, bias=False)",
    "GRUCell(2, 3)", "MSELoss()", "L1Loss(reduction='sum')", "SmoothL1Loss()", "HuberLoss()", "CrossEntropyLoss()",
    "NLLLoss()", "BCELoss()", "BCEWithLogitsLoss()", "KLDivLoss()",
    "Sequential(Linear(2, 3), Tanh(), Sequential(ReLU(), Linear(3, 3)))",
    "ModuleList([Linear(2, 3), Linear(2, 3), Linear(2, 3), ReLU(), Linear(2, 3)])",
    "ModuleDict({'a': ReLU(), 'b': Linear(1, 2)})",
]


@pytest.mark.parametrize("expr", REPRS)
def test_repr_matches_torch(expr):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = eval(expr, {}, vars(torch.nn))
    ours = eval(expr, {}, vars(nn))
    assert repr(ours) == repr(theirs)


# -- containers ---------------------------------------------------------------------------------------------------

def test_sequential_indexing_slicing_append_delete():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1], nn.Tanh)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    assert list(head.state_dict()) == ["0.weight", "0.bias"]
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Sigmoid"]
    assert list(seq._modules) == ["0", "1", "2"]
    seq[2] = nn.ReLU()
    assert isinstance(seq[2], nn.ReLU)
    with pytest.raises(IndexError):
        seq[3]
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    x = tg.randn(4, 2)
    assert named(x).shape == (4, 2)


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Tanh())
    layers.extend([nn.ReLU()])
    layers.insert(0, nn.Identity())
    assert len(layers) == 6 and isinstance(layers[0], nn.Identity) and isinstance(layers[-1], nn.ReLU)
    assert len(list(layers.parameters())) == 6
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    d = nn.ModuleDict({"a": nn.Linear(1, 1)})
    d["b"] = nn.ReLU()
    d.update([("c", nn.Tanh())])
    assert list(d) == ["a", "b", "c"] and "b" in d and len(d) == 3
    assert isinstance(d.pop("b"), nn.ReLU) and list(d.keys()) == ["a", "c"]


# -- layers that run on tapegrad's own ops ------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 4, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch_with_grad_fn_names(shape, bias):
    tlin, lin = torch.nn.Linear(3, 2, bias=bias).double(), nn.Linear(3, 2, bias=bias).double()
    _copy_weights(tlin, lin)
    x = np.random.default_rng(1).standard_normal(shape)
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    ty, gy = tlin(tx), lin(gx)
    np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-12)
    assert gy.grad_fn.name() == ty.grad_fn.name()
    ty.sum().backward()
    gy.sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(lin.weight.grad.numpy(), tlin.weight.grad.numpy(), rtol=1e-12)


def test_bilinear_matches_torch():
    tmod, mod = torch.nn.Bilinear(2, 3, 4).double(), nn.Bilinear(2, 3, 4).double()
    _copy_weights(tmod, mod)
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 2)), rng.standard_normal((5, 3))
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    ga, gb = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    ty, gy = tmod(ta, tb), mod(ga, gb)
    np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-12)
    (ty ** 2).sum().backward()
    (gy ** 2).sum().backward()
    for ours, theirs in [(ga, ta), (gb, tb), (mod.weight, tmod.weight), (mod.bias, tmod.bias)]:
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-11)


@pytest.mark.parametrize("expr", ["Flatten()", "Flatten(0, 1)", "Unflatten(1, (2, 6))", "Identity()", "ReLU()",
                                  "Tanh()", "Sigmoid()"])
def test_shape_and_activation_modules_match_torch(expr):
    x = np.random.default_rng(3).standard_normal((3, 12, 1))
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    ty, gy = eval(expr, {}, vars(torch.nn))(tx), eval(expr, {}, vars(nn))(gx)
    np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-12)
    if ty.grad_fn is not None and expr != "Identity()":
        assert gy.grad_fn.name() == ty.grad_fn.name()


RNN_CASES = [
    ("RNN", dict(), (5, 2, 3)),
    ("RNN", dict(nonlinearity="relu", num_layers=2), (4, 3, 3)),
    ("RNN", dict(bidirectional=True, bias=False), (4, 2, 3)),
    ("GRU", dict(num_layers=2, batch_first=True), (2, 5, 3)),
    ("GRU", dict(bidirectional=True), (3, 3)),
    ("LSTM", dict(), (5, 2, 3)),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True), (2, 4, 3)),
    ("LSTM", dict(bias=False), (4, 3)),
]


@pytest.mark.parametrize("name,options,shape", RNN_CASES)
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_layers_match_torch(name, options, shape, with_state):
    tmod = getattr(torch.nn, name)(3, 4, **options).double()
    mod = getattr(nn, name)(3, 4, **options).double()
    _copy_weights(tmod, mod)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    directions = 2 if options.get("bidirectional") else 1
    batch = () if len(shape) == 2 else (shape[0] if options.get("batch_first") else shape[1],)
    state_shape = (options.get("num_layers", 1) * directions, *batch, 4)
    states = [rng.standard_normal(state_shape) for _ in range(2 if name == "LSTM" else 1)]

    def run(lib, module):
        xs = lib.tensor(x, requires_grad=True)
        hs = [lib.tensor(s, requires_grad=True) for s in states]
        args = () if not with_state else ((tuple(hs),) if name == "LSTM" else (hs[0],))
        out, hidden = module(xs, *args)
        hidden = hidden if name == "LSTM" else (hidden,)
        total = (out ** 2).sum() + sum((h * 1.5).sum() for h in hidden)
        total.backward()
        return out, hidden, xs, hs
    tout, thid, tx, ths = run(torch, tmod)
    out, hid, gx, hs = run(tg, mod)
    np.testing.assert_allclose(_np(out), _np(tout), rtol=1e-10, atol=1e-12)
    for a, b in zip(hid, thid):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if with_state:
        for a, b in zip(hs, ths):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (key, p), q in zip(mod.named_parameters(), tmod.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(name, batched):
    tmod, mod = getattr(torch.nn, name)(3, 4).double(), getattr(nn, name)(3, 4).double()
    _copy_weights(tmod, mod)
    x = np.random.default_rng(5).standard_normal((2, 3) if batched else (3,))
    tout, out = tmod(torch.tensor(x)), mod(tg.tensor(x))
    tout, out = (tout, out) if name == "LSTMCell" else ((tout,), (out,))
    for a, b in zip(out, tout):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-12)


def test_rnn_input_errors():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        lstm(tg.randn(5, 2, 2))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(tg.randn(5, 2, 2, 3))
    with pytest.raises(RuntimeError, match="Expected hidden size"):
        lstm(tg.randn(5, 2, 3), (tg.zeros(1, 3, 4), tg.zeros(1, 2, 4)))


# -- layers whose forward needs tapegrad.nn.functional ------------------------------------------------------------

FUNCTIONAL_CASES = [
    # (module expression, input shapes, integer input)
    ("GELU()", [(3, 4)], False), ("GELU('tanh')", [(3, 4)], False),
    ("SiLU()", [(3, 4)], False), ("Softmax(dim=1)", [(3, 4)], False),
    ("LogSoftmax(dim=1)", [(3, 4)], False), ("ELU(alpha=0.7)", [(3, 4)], False),
    ("LeakyReLU(0.2)", [(3, 4)], False), ("Softplus(beta=2.0)", [(3, 4)], False),
    ("Hardtanh()", [(3, 4)], False), ("Mish()", [(3, 4)], False),
    ("PReLU(4)", [(3, 4)], False), ("PReLU()", [(3, 4)], False),
    ("SELU()", [(3, 4)], False), ("CELU(0.5)", [(3, 4)], False), ("Hardsigmoid()", [(3, 4)], False),
    ("Hardswish()", [(3, 4)], False), ("Softsign()", [(3, 4)], False), ("Tanhshrink()", [(3, 4)], False),
    ("Softmin(dim=1)", [(3, 4)], False),
    ("Embedding(10, 3, padding_idx=0)", [(2, 5)], True),
    ("LayerNorm(4)", [(3, 4)], False), ("LayerNorm((2, 4))", [(3, 2, 4)], False),
    ("Conv1d(2, 3, 3, padding=1)", [(2, 2, 7)], False),
    ("Conv2d(2, 4, 3, stride=2, padding=1, groups=2)", [(2, 2, 6, 6)], False),
    ("MaxPool2d(2)", [(2, 3, 6, 6)], False),
    ("AvgPool2d(3, stride=2, padding=1)", [(2, 3, 6, 6)], False),
    ("Dropout(0.3).eval()", [(3, 4)], False),
    ("MSELoss()", [(3, 4), (3, 4)], False), ("L1Loss(reduction='sum')", [(3, 4), (3, 4)], False),
    ("SmoothL1Loss(beta=0.5)", [(3, 4), (3, 4)], False),
    ("HuberLoss(delta=0.5)", [(3, 4), (3, 4)], False),
    ("BCEWithLogitsLoss()", [(3, 4), "prob(3, 4)"], False),
    ("BCELoss()", ["prob(3, 4)", "prob(3, 4)"], False),
    ("KLDivLoss(reduction='batchmean')", [(3, 4), "prob(3, 4)"], False),
    ("CrossEntropyLoss()", [(5, 4), "class(5, 4)"], False),
    ("NLLLoss()", [(5, 4), "class(5, 4)"], False),
]


def _inputs(specs, integer, rng):
    out = []
    for spec in specs:
        if isinstance(spec, str) and spec.startswith("prob"):
            out.append(rng.uniform(0.1, 0.9, eval(spec[4:])))
        elif isinstance(spec, str):
            n, c = eval(spec[5:])
            out.append(rng.integers(0, c, n))
        elif integer:
            out.append(rng.integers(0, 10, spec))
        else:
            out.append(rng.standard_normal(spec))
    return out


@pytest.mark.parametrize("expr,shapes,integer", FUNCTIONAL_CASES, ids=[c[0] for c in FUNCTIONAL_CASES])
def test_functional_layers_match_torch(expr, shapes, integer):
    tmod, mod = eval(expr, {}, vars(torch.nn)).double(), eval(expr, {}, vars(nn)).double()
    _copy_weights(tmod, mod)
    arrays = _inputs(shapes, integer, np.random.default_rng(6))
    targs = [torch.tensor(a, requires_grad=a.dtype.kind == "f" and i == 0) for i, a in enumerate(arrays)]
    gargs = [tg.tensor(a, requires_grad=a.dtype.kind == "f" and i == 0) for i, a in enumerate(arrays)]
    ty, gy = tmod(*targs), mod(*gargs)
    np.testing.assert_allclose(_np(gy), _np(ty), rtol=1e-10, atol=1e-12)
    assert gy.grad_fn is None or gy.grad_fn.name() == ty.grad_fn.name()
    (ty * ty).sum().backward()
    (gy * gy).sum().backward()
    for g, t in zip(gargs, targs):
        if t.requires_grad:
            np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    for (key, p), q in zip(mod.named_parameters(), tmod.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)


def test_dropout_module_follows_training_flag():
    drop = nn.Dropout(0.5)
    x = tg.ones(1000)
    kept = drop(x).numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 300 < (kept == 0).sum() < 700
    drop.eval()
    assert drop(x).tolist() == x.tolist()


def test_layer_argument_errors_match_torch():
    # (PyTorch's messages that print a set of choices vary in order between processes, so they are left out)
    for expr in ("Dropout(1.5)", "Conv2d(3, 4, 3, groups=2)",
                 "Conv2d(2, 4, 3, stride=2, padding='same')",
                 "RNN(2, 3, nonlinearity='gelu')"):
        with pytest.raises(ValueError) as theirs:
            eval(expr, {}, vars(torch.nn))
        with pytest.raises(ValueError) as ours:
            eval(expr, {}, vars(nn))
        assert str(ours.value) == str(theirs.value)


# -- initialisation -----------------------------------------------------------------------------------------------

def test_default_initialisation_is_seeded_and_in_torchs_ranges():
    tg.manual_seed(0)
    a = nn.Linear(50, 40)
    tg.manual_seed(0)
    b = nn.Linear(50, 40)
    assert a.weight.tolist() == b.weight.tolist() and a.bias.tolist() == b.bias.tolist()
    c = nn.Linear(50, 40)
    assert a.weight.tolist() != c.weight.tolist()
    bound = 1 / math.sqrt(50)
    w = a.weight.numpy(force=True)
    assert np.abs(w).max() <= bound and np.abs(a.bias.numpy(force=True)).max() <= bound
    assert abs(w.var() - bound ** 2 / 3) < 0.1 * bound ** 2 / 3    # uniform(-b, b) has variance b^2 / 3
    conv = nn.Conv2d(4, 8, 3)
    assert np.abs(conv.weight.numpy(force=True)).max() <= 1 / math.sqrt(36)
    lstm = nn.LSTM(3, 16)
    assert all(np.abs(p.numpy(force=True)).max() <= 0.25 for p in lstm.parameters())
    emb = nn.Embedding(200, 50, padding_idx=3)
    e = emb.weight.numpy(force=True)
    assert abs(e.std() - 1) < 0.05 and abs(e.mean()) < 0.05 and not e[3].any()
    ln = nn.LayerNorm(5)
    assert ln.weight.tolist() == [1.0] * 5 and ln.bias.tolist() == [0.0] * 5


def test_init_functions_distributions_and_gains():
    tg.manual_seed(1)
    t = tg.empty(400, 300)
    for nonlinearity, param in [("linear", None), ("relu", None), ("tanh", None), ("leaky_relu", 0.2),
                                ("sigmoid", None), ("selu", None), ("conv2d", None)]:
        assert init.calculate_gain(nonlinearity, param) == pytest.approx(
            torch.nn.init.calculate_gain(nonlinearity, param))
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert t.numpy().std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    init.kaiming_uniform_(t, a=1.0)
    assert np.abs(t.numpy()).max() <= math.sqrt(3) * 1.0 / math.sqrt(300)
    init.xavier_uniform_(t, gain=2.0)
    assert t.numpy().std() == pytest.approx(2.0 * math.sqrt(2 / 700), rel=0.02)
    init.xavier_normal_(t)
    assert t.numpy().std() == pytest.approx(math.sqrt(2 / 700), rel=0.02)
    init.normal_(t, 3.0, 0.5)
    assert t.numpy().mean() == pytest.approx(3.0, abs=0.01) and t.numpy().std() == pytest.approx(0.5, rel=0.02)
    init.uniform_(t, -2, 1)
    assert t.numpy().min() >= -2 and t.numpy().max() < 1
    init.constant_(t, 0.25)
    assert (t.numpy() == 0.25).all()
    init.zeros_(t)
    assert not t.numpy().any()
    init.ones_(t)
    assert (t.numpy() == 1).all()
    conv_weight = tg.empty(8, 4, 3, 3)
    assert init._calculate_fan_in_and_fan_out(conv_weight) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(8, 4, 3, 3))


def test_init_under_no_grad_records_nothing_and_errors():
    p = nn.Parameter(tg.empty(3, 2))
    tape = tg._tape.current_tape()
    tape.flush()
    n = tape.n
    init.kaiming_uniform_(p)
    tape.flush()
    assert tape.n == n and p.is_leaf and p.requires_grad
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tg.empty(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(tg.empty(3, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


# -- clip_grad ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(s) for s in [(3, 4), (4,), (2, 2, 2)]]
    ours = [nn.Parameter(tg.zeros(*g.shape, dtype=tg.float64)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(*g.shape, dtype=torch.float64)) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad = tg.tensor(g)
        q.grad = torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-12) and total.dtype == tg.float64
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite_and_value():
    p = nn.Parameter(tg.zeros(2))
    p.grad = tg.tensor([float("inf"), 1.0])
    q = torch.nn.Parameter(torch.zeros(2))
    q.grad = torch.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.utils.clip_grad_norm_([q], 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as ours:
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert str(ours.value) == str(theirs.value)
    p = nn.Parameter(tg.zeros(3))
    p.grad = tg.tensor([-3.0, 0.5, 2.0])
    nn.utils.clip_grad_value_(p, 1.0)
    assert p.grad.tolist() == [-1.0, 0.5, 1.0]


# -- save / load --------------------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    obj = {"model": model.state_dict(), "epoch": 7, "lr": 0.1, "best": float("inf"), "betas": (0.9, 0.999),
           "milestones": [1, 2], "name": "run", "none": None, "flag": True, 3: {"step": tg.tensor(2.0)},
           "ints": tg.arange(4), "mask": tg.tensor([True, False]), "array": np.eye(2, dtype=np.float32),
           "param": nn.Parameter(tg.ones(2))}
    path = tmp_path / "model.pt"
    tg.save(obj, path)
    assert path.exists() and not (tmp_path / "model.pt.npz").exists()
    back = tg.load(path)
    assert list(back) == list(obj)
    assert type(back["model"]).__name__ == "OrderedDict" and list(back["model"]) == list(obj["model"])
    for key, value in obj["model"].items():
        assert back["model"][key].tolist() == value.tolist() and back["model"][key].dtype == value.dtype
        assert not back["model"][key].requires_grad
    assert back["epoch"] == 7 and back["lr"] == 0.1 and back["best"] == math.inf and back["betas"] == (0.9, 0.999)
    assert back["milestones"] == [1, 2] and back["name"] == "run" and back["none"] is None and back["flag"] is True
    assert back[3]["step"].item() == 2.0 and back["ints"].dtype == tg.int64 and back["mask"].dtype == tg.bool
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.float32
    assert isinstance(back["param"], nn.Parameter) and back["param"].requires_grad
    fresh = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    fresh.load_state_dict(back["model"])
    x = tg.randn(4, 2)
    assert fresh(x).tolist() == model(x).tolist()


def test_save_load_file_objects_and_errors(tmp_path):
    buffer = io.BytesIO()
    tg.save({"w": tg.ones(2)}, buffer)
    buffer.seek(0)
    assert tg.load(buffer)["w"].tolist() == [1.0, 1.0]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError, match="not a valid tapegrad checkpoint"):
        tg.load(bad)
    truncated = tmp_path / "truncated.pt"
    tg.save({"w": tg.ones(100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(RuntimeError, match="not a valid tapegrad checkpoint"):
        tg.load(truncated)
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(2))
    with pytest.raises(RuntimeError, match="not a valid tapegrad checkpoint"):
        tg.load(plain)
    with pytest.raises(TypeError, match="cannot save an object of type object"):
        tg.save({"x": object()}, tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError):
        tg.load(tmp_path / "missing.pt")
