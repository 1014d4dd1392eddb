"""tapegrad.optim against torch.optim: same initial weights, 200 steps, same losses and weights (float64)."""
import math

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import nn, optim
from tapegrad.nn import functional as F

from own_tape import on_own_tape

torch = pytest.importorskip("torch")

STEPS = 200


def _mlp_pair(seed=0):
    torch.manual_seed(seed)
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 3))
    y = rng.standard_normal((16, 2))
    return tmodel, model, x, y


def _mse(pred, target):
    return ((pred - target) ** 2).mean()


def _train(model, opt, x, y, steps, lib, closure=False):
    xs, ys = lib.tensor(x), lib.tensor(y)
    losses = []
    for _ in range(steps):
        def evaluate():
            opt.zero_grad()
            loss = _mse(model(xs), ys)
            loss.backward()
            return loss
        if closure:
            loss = opt.step(evaluate)
        else:
            loss = evaluate()
            opt.step()
        losses.append(loss.item())
    return np.array(losses)


def _assert_same(tmodel, model, tlosses, losses, rtol=1e-8):
    # 200 steps amplify last-bit differences of the two libraries' matrix products (RMSprop divides by sqrt(v))
    np.testing.assert_allclose(losses, tlosses, rtol=rtol, atol=1e-10)
    tstate = tmodel.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value.numpy(), tstate[key].numpy(), rtol=rtol, atol=1e-10, err_msg=key)


CONFIGS = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.01)),
    ("SGD", dict(lr=0.001, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.001, maximize=True, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.001, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adagrad", dict(lr=0.1, initial_accumulator_value=0.1, eps=1e-6)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.01, maximize=True)),
]


@pytest.mark.parametrize("name,options", CONFIGS, ids=[f"{n}-{'-'.join(o)}" for n, o in CONFIGS])
@on_own_tape
def test_matches_torch_for_200_steps(name, options):
    tmodel, model, x, y = _mlp_pair()
    tlosses = _train(tmodel, getattr(torch.optim, name)(tmodel.parameters(), **options), x, y, STEPS, torch)
    losses = _train(model, getattr(optim, name)(model.parameters(), **options), x, y, STEPS, tg)
    _assert_same(tmodel, model, tlosses, losses)


def test_state_dict_matches_torch_structure_and_values():
    for name, options in [("Adam", dict(lr=0.01, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                          ("RMSprop", dict(momentum=0.5, centered=True)), ("Adagrad", {}), ("SGD", {})]:
        tmodel, model, x, y = _mlp_pair()
        topt = getattr(torch.optim, name)(tmodel.parameters(), **options)
        opt = getattr(optim, name)(model.parameters(), **options)
        _train(tmodel, topt, x, y, 3, torch)
        _train(model, opt, x, y, 3, tg)
        tsd, sd = topt.state_dict(), opt.state_dict()
        assert sd["param_groups"] == tsd["param_groups"]
        assert list(sd["state"]) == list(tsd["state"])
        for idx, tstate in tsd["state"].items():
            assert list(sd["state"][idx]) == list(tstate), name
            for key, value in tstate.items():
                np.testing.assert_allclose(sd["state"][idx][key].numpy(), value.numpy(), rtol=1e-12)


def test_adagrad_state_exists_before_the_first_step():
    model = nn.Linear(2, 3)
    opt = optim.Adagrad(model.parameters(), initial_accumulator_value=0.5)
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1]
    assert sd["state"][0]["step"].item() == 0
    np.testing.assert_array_equal(sd["state"][0]["sum"].numpy(), np.full((3, 2), 0.5))


@pytest.mark.parametrize("name,options", [("Adam", dict(lr=0.01, amsgrad=True)),
                                          ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
                                          ("RMSprop", dict(momentum=0.5, centered=True)),
                                          ("Adagrad", dict(lr_decay=0.01))])
@on_own_tape
def test_resuming_from_a_saved_state_dict_continues_exactly(name, options, tmp_path):
    tmodel, model, x, y = _mlp_pair()
    tlosses = _train(tmodel, getattr(torch.optim, name)(tmodel.parameters(), **options), x, y, 100, torch)
    opt = getattr(optim, name)(model.parameters(), **options)
    first = _train(model, opt, x, y, 50, tg)
    tg.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ck.npz")
    # a fresh model and optimizer restored from the file
    _, model2, _, _ = _mlp_pair(seed=1)
    opt2 = getattr(optim, name)(model2.parameters(), lr=123.0)
    checkpoint = tg.load(tmp_path / "ck.npz")
    model2.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["optimizer"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    second = _train(model2, opt2, x, y, 50, tg)
    np.testing.assert_allclose(np.concatenate([first, second]), tlosses, rtol=1e-9)


def test_loads_a_torch_optimizer_state_dict():
    tmodel, model, x, y = _mlp_pair()
    topt = torch.optim.Adam(tmodel.parameters(), lr=0.01)
    _train(tmodel, topt, x, y, 20, torch)
    model.load_state_dict({k: v.numpy() for k, v in tmodel.state_dict().items()})
    tsd = topt.state_dict()
    sd = {"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
          "param_groups": tsd["param_groups"]}
    opt = optim.Adam(model.parameters())
    opt.load_state_dict(sd)
    _assert_same(tmodel, model, _train(tmodel, topt, x, y, 30, torch), _train(model, opt, x, y, 30, tg))


def test_param_groups_with_their_own_options():
    tmodel, model, x, y = _mlp_pair()

    def groups(m):
        return [{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.001, "momentum": 0.0}]
    topt = torch.optim.SGD(groups(tmodel), lr=0.05, momentum=0.9)
    opt = optim.SGD(groups(model), lr=0.05, momentum=0.9)
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    _assert_same(tmodel, model, _train(tmodel, topt, x, y, 50, torch), _train(model, opt, x, y, 50, tg))


def test_add_param_group_and_closure():
    tmodel, model, x, y = _mlp_pair()
    topt = torch.optim.Adam(tmodel[0].parameters(), lr=0.01)
    topt.add_param_group({"params": tmodel[2].parameters(), "lr": 0.02})
    opt = optim.Adam(model[0].parameters(), lr=0.01)
    opt.add_param_group({"params": model[2].parameters(), "lr": 0.02})
    _assert_same(tmodel, model, _train(tmodel, topt, x, y, 30, torch, closure=True),
                 _train(model, opt, x, y, 30, tg, closure=True))


def test_parameters_without_grad_are_skipped_and_keep_no_state():
    a = nn.Parameter(tg.tensor([1.0, 2.0], dtype=tg.float64))
    b = nn.Parameter(tg.tensor([3.0], dtype=tg.float64))
    ta = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    tb = torch.nn.Parameter(torch.tensor([3.0], dtype=torch.float64))
    opt, topt = optim.Adam([a, b], lr=0.1), torch.optim.Adam([ta, tb], lr=0.1)
    for step in range(4):
        (a * a).sum().backward()
        (ta * ta).sum().backward()
        if step >= 2:
            (b * 3).sum().backward()
            (tb * 3).sum().backward()
        opt.step()
        topt.step()
        if step == 0:
            assert list(opt.state_dict()["state"]) == list(topt.state_dict()["state"]) == [0]
        opt.zero_grad()
        topt.zero_grad()
    np.testing.assert_allclose(a.detach().numpy(), ta.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), tb.detach().numpy(), rtol=1e-12)
    assert opt.state_dict()["state"][1]["step"].item() == topt.state_dict()["state"][1]["step"].item() == 2


def test_step_records_nothing_and_bumps_versions():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(tg.randn(4, 3)).sum().backward()
    versions = [p._version for p in model.parameters()]
    tape = tg._tape.current_tape()
    tape.flush()
    n = tape.n
    opt.step()
    tape.flush()
    assert tape.n == n
    assert [p._version for p in model.parameters()] == [v + 1 for v in versions]
    assert all(p.is_leaf and p.requires_grad and p.grad_fn is None for p in model.parameters())


def test_step_after_forward_makes_old_graph_raise_like_torch():
    """A graph that saved a parameter's old value cannot be backpropagated after the update (version check)."""
    w = nn.Parameter(tg.tensor([1.0, 2.0]))
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    y = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_float32_parameters_stay_float32():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters())
    model(tg.randn(4, 3)).sum().backward()
    opt.step()
    assert all(p.dtype == tg.float32 for p in model.parameters())


def test_zero_grad():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters())
    model(tg.randn(4, 3)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_errors_match_torch():
    p = nn.Parameter(tg.ones(2))
    cases = [
        (lambda lib, q: lib.optim.SGD([q], lr=-1), ValueError),
        (lambda lib, q: lib.optim.SGD([q], lr=0.1, nesterov=True), ValueError),
        (lambda lib, q: lib.optim.SGD([q], momentum=-1), ValueError),
        (lambda lib, q: lib.optim.Adam([q], betas=(1.0, 0.9)), ValueError),
        (lambda lib, q: lib.optim.Adam([q], eps=-1), ValueError),
        (lambda lib, q: lib.optim.Adam([], lr=0.1), ValueError),
        (lambda lib, q: lib.optim.Adagrad([q], lr_decay=-1), ValueError),
        (lambda lib, q: lib.optim.RMSprop([q], alpha=-1), ValueError),
        (lambda lib, q: lib.optim.SGD(q), TypeError),
        (lambda lib, q: lib.optim.SGD([q * 2]), ValueError),
        (lambda lib, q: lib.optim.SGD([{"params": [q]}, {"params": [q]}]), ValueError),
    ]
    tp = torch.nn.Parameter(torch.ones(2))
    for make, kind in cases:
        with pytest.raises(kind) as ours:
            make(tg, p)
        with pytest.raises(kind) as theirs:
            make(torch, tp)
        assert str(ours.value).replace("tapegrad.", "torch.") == str(theirs.value)


def test_load_state_dict_errors_change_nothing():
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict({"state": {}, "param_groups": [{"lr": 1.0, "params": [0]}]})
    assert opt.param_groups[0]["lr"] == 0.5


def test_repr_matches_torch():
    tp = torch.nn.Parameter(torch.ones(2))
    for name, options in [("Adam", {}), ("SGD", dict(lr=0.1, momentum=0.9)), ("RMSprop", {}), ("Adagrad", {}),
                          ("AdamW", {})]:
        ours = repr(getattr(optim, name)([nn.Parameter(tg.ones(2))], **options))
        assert ours == repr(getattr(torch.optim, name)([tp], **options))


@on_own_tape
def test_lstm_trains_like_torch():
    torch.manual_seed(0)
    tlstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    lstm = nn.LSTM(3, 4, num_layers=2, batch_first=True).double()
    lstm.load_state_dict({k: v.detach().numpy() for k, v in tlstm.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 5, 4))
    topt, opt = torch.optim.Adam(tlstm.parameters(), lr=0.01), optim.Adam(lstm.parameters(), lr=0.01)
    tlosses, losses = [], []
    for model, o, lib, out in ((tlstm, topt, torch, tlosses), (lstm, opt, tg, losses)):
        xs, ys = lib.tensor(x), lib.tensor(y)
        for _ in range(STEPS):
            o.zero_grad()
            loss = _mse(model(xs)[0], ys)
            loss.backward()
            o.step()
            out.append(loss.item())
    _assert_same(tlstm, lstm, tlosses, losses, rtol=1e-8)


@on_own_tape
def test_cnn_trains_like_torch():
    torch.manual_seed(0)

    def cnn(lib):
        m = lib.nn
        return m.Sequential(m.Conv2d(1, 3, 3, padding=1), m.ReLU(), m.MaxPool2d(2), m.Flatten(), m.Linear(12, 2))
    tmodel, model = cnn(torch).double(), cnn(tg).double()
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 1, 4, 4)), rng.standard_normal((4, 2))
    tlosses = _train(tmodel, torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9), x, y, STEPS, torch)
    losses = _train(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), x, y, STEPS, tg)
    _assert_same(tmodel, model, tlosses, losses, rtol=1e-8)


# -- learning-rate schedulers ---------------------------------------------------------------------------------

SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("LambdaLR", dict(lr_lambda=lambda epoch: 1.0 / (epoch + 1))),
]


@pytest.mark.parametrize("name,options", SCHEDULERS, ids=[s[0] + str(i) for i, s in enumerate(SCHEDULERS)])
def test_scheduler_lr_sequence_matches_torch(name, options):
    def run(lib, param):
        opt = lib.optim.SGD([{"params": [param]}, {"params": [], "lr": 0.3}], lr=0.1)
        sched = getattr(lib.optim.lr_scheduler, name)(opt, **options)
        lrs = [sched.get_last_lr()]
        for _ in range(20):
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        return lrs, opt, sched
    ours, opt, sched = run(tg, nn.Parameter(tg.ones(1)))
    theirs, topt, tsched = run(torch, torch.nn.Parameter(torch.ones(1)))
    np.testing.assert_allclose(np.array(ours), np.array(theirs), rtol=1e-13)
    assert opt.param_groups[0]["initial_lr"] == topt.param_groups[0]["initial_lr"]
    state, tstate = sched.state_dict(), tsched.state_dict()
    assert set(state) - {"_is_initial"} <= set(tstate)
    for key in ("last_epoch", "base_lrs", "_last_lr", "_step_count"):
        assert state[key] == pytest.approx(tstate[key])


def test_scheduler_state_dict_round_trip():
    opt = optim.SGD([nn.Parameter(tg.ones(1))], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        sched.step()
    opt2 = optim.SGD([nn.Parameter(tg.ones(1))], lr=1.0)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    sched2.load_state_dict(sched.state_dict())
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    for _ in range(3):
        sched.step()
        sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr() == [0.0625]   # halved at epochs 2, 4, 6, 8


def test_scheduler_needs_an_optimizer():
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        optim.lr_scheduler.StepLR([], step_size=1)


def test_cosine_closed_form_with_epoch():
    opt = optim.SGD([nn.Parameter(tg.ones(1))], lr=1.0)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    sched.step(5)
    assert sched.get_last_lr()[0] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 10)))


def test_linear_regression_with_sgd_matches_torch():
    """The seed example: w * x + b fitted by optim.SGD([w, b], lr=0.01) for 100 steps (float32, as in torch)."""
    results = {}
    for lib in (torch, tg):
        x, y = lib.tensor([1.0, 2.0, 3.0]), lib.tensor([3.0, 5.0, 7.0])
        w, b = lib.tensor(1.0, requires_grad=True), lib.tensor(0.0, requires_grad=True)
        opt = lib.optim.SGD([w, b], lr=0.01)
        for _ in range(100):
            opt.zero_grad()
            ((w * x + b - y) ** 2).sum().backward()
            opt.step()
        results[lib.__name__] = (w.item(), b.item())
        assert w.dtype == lib.float32 and w.is_leaf and w.requires_grad
    assert results["tapegrad"] == pytest.approx(results["torch"], abs=1e-6)
    assert results["tapegrad"] == pytest.approx((2.1001, 0.7724), abs=1e-4)
