"""The flat tape: release of consumed records, bounded memory over long loops, per-thread tapes."""
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad._tape import current_tape

from own_tape import on_own_tape


def _train_steps(n, side_computation=False, keep_losses=None):
    tg.manual_seed(0)
    w = tg.randn(4, 3, dtype=tg.float64, requires_grad=True)
    b = tg.zeros(3, dtype=tg.float64, requires_grad=True)
    x = tg.randn(8, 4, dtype=tg.float64)
    y = tg.randn(8, 3, dtype=tg.float64)
    for _ in range(n):
        out = (x @ w + b).tanh()
        if side_computation:
            reg = (w * w).sum()      # recorded but never backpropagated, and alive at backward time
        loss = ((out - y) ** 2).mean()
        loss.backward()
        if keep_losses is not None:
            keep_losses.append(loss.item())
        with tg.no_grad():
            w -= 0.01 * w.grad
            b -= 0.01 * b.grad
            w.grad = None
            b.grad = None
    return w


@pytest.fixture
def small_tape_thresholds(monkeypatch):
    """Compaction from 2,048 records (not 16,384), so a few hundred training steps exercise what thousands would
    with the real thresholds; used with on_own_tape, whose fresh tape starts from these."""
    from tapegrad._tape import Tape
    monkeypatch.setattr(Tape, "_MIN_COMPACT_RECORDS", 1 << 11)
    monkeypatch.setattr(Tape, "_MIN_COMPACT_VALUES", 1 << 14)


@pytest.mark.parametrize("side_computation", [False, True])
@on_own_tape
def test_training_loop_does_not_grow_the_tape(small_tape_thresholds, side_computation):
    tape = current_tape()
    _train_steps(900, side_computation)      # long enough to compact a few times
    held_after_warmup, _ = tape.nbytes()
    _train_steps(900, side_computation)
    held, _ = tape.nbytes()
    assert held <= held_after_warmup            # the buffers stopped growing
    # the thresholds; while a reset is to be tried again at the next operation, they wait in tape.recheck
    compact_at, compact_vals_at = tape.recheck or (tape.compact_at, tape.compact_vals_at)
    assert tape.n <= compact_at + 64 and tape.nv <= compact_vals_at + 4096


@on_own_tape
def test_long_loop_keeps_process_memory_flat(small_tape_thresholds):
    import tracemalloc
    _train_steps(1200)         # past the first compactions, so the tape buffers have reached their size
    tracemalloc.start()
    samples = []
    for _ in range(12):
        _train_steps(250)
        samples.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    # memory cycles between compactions; the floor of the cycle must not rise: a leak lifts every later sample
    assert min(samples[8:]) <= min(samples[4:8]) + 512 * 1024, samples


def test_training_matches_plain_numpy_gradient_descent():
    losses = []
    w = _train_steps(20, keep_losses=losses)
    # the same loop by hand in numpy
    tg.manual_seed(0)
    w0 = tg.randn(4, 3, dtype=tg.float64).numpy().copy()
    b0 = np.zeros(3)
    x = tg.randn(8, 4, dtype=tg.float64).numpy()
    y = tg.randn(8, 3, dtype=tg.float64).numpy()
    for step in range(20):
        out = np.tanh(x @ w0 + b0)
        loss = ((out - y) ** 2).mean()
        assert losses[step] == pytest.approx(loss, rel=1e-12)
        g_out = 2 * (out - y) / out.size * (1 - out ** 2)
        w0 -= 0.01 * x.T @ g_out
        b0 -= 0.01 * g_out.sum(0)
    np.testing.assert_allclose(w.detach().numpy(), w0, rtol=1e-12)


def test_unconsumed_graph_survives_release_of_others():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    kept = (x * x).sum()            # recorded before, backpropagated after other graphs
    for _ in range(20):
        (x * 3).sum().backward()
    x.grad = None
    kept.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


def test_chain_across_segments_still_differentiates():
    x = tg.tensor(2.0, dtype=tg.float64, requires_grad=True)
    h = x * x                       # segment 1
    (x * 1.0).backward()            # starts segment 2
    del_me = h * 3                  # segment 2 refers into segment 1
    for _ in range(10):
        (x + 1).backward()
    x.grad = None
    del_me.backward()
    assert x.grad.item() == pytest.approx(12.0)


def test_second_backward_after_release_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    for _ in range(5):               # lets the tape drop y's records
        (x * 2).sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        (y * 2).backward()


def test_grad_fn_name_survives_release():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    for _ in range(5):
        (x * 2).sum().backward()
    assert y.grad_fn.name() == "SumBackward0"
    assert not y.is_leaf and y.requires_grad


def test_tapes_are_per_thread():
    results = {}
    errors = []

    def worker(k):
        try:
            for step in range(200):
                x = tg.tensor([float(k), 1.0], dtype=tg.float64, requires_grad=True)
                y = (x * x * (k + 1)).sum()
                if step % 7 == 0:
                    with tg.no_grad():       # grad mode is per thread too
                        assert not (x * 2).requires_grad
                y.backward()
                results.setdefault(k, []).append(x.grad.numpy().copy())
        except Exception as err:          # surfaced in the main thread
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for k in range(4):
        for g in results[k]:
            np.testing.assert_allclose(g, [2.0 * k * (k + 1), 2.0 * (k + 1)])
    assert tg.is_grad_enabled()


def test_using_another_threads_graph_is_a_clear_error():
    box = {}

    def worker():
        x = tg.tensor([1.0], requires_grad=True)
        box["y"] = x * 2

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    with pytest.raises(RuntimeError, match="another thread"):
        (box["y"] * 3).sum().backward()


def test_scalar_tape_bytes_per_operation():
    tape = current_tape()
    tape.collect()
    x = tg.tensor(0.5, dtype=tg.float64, requires_grad=True)
    start_used = tape.nbytes()[1]
    y = x
    for _ in range(10000):
        y = y * 0.999 + 0.001
    tape.flush()
    used = tape.nbytes()[1] - start_used
    assert used / 20000 <= 64
    y.backward()


def test_a_kept_unconsumed_graph_does_not_pin_later_records():
    tape = current_tape()
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    pinned = (x * 2).exp()              # alive and never backpropagated until the end
    for _ in range(20000):
        (x * x).sum().backward()
    # compaction dropped the consumed records behind the pinned graph
    assert tape.n <= tape.compact_at + 8 and len(tape.segments) <= tape.compact_at // 3
    x.grad = None
    pinned.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([2.0, 4.0]))
    assert pinned.grad_fn.name() == "ExpBackward0"
    assert pinned.grad_fn.next_functions[0][0].name() == "MulBackward0"


def test_compaction_keeps_custom_and_multi_input_records_usable():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([[0.5, -1.0], [2.0, 1.0]], dtype=tg.float64, requires_grad=True)
    kept = tg.addmm(x, x, w).tanh().sum()       # ADDMM keeps its third input in the int side table
    for _ in range(20000):
        (x * 3).sum().backward()
    x.grad = None
    kept.backward()
    xd, wd = x.detach().numpy(), w.detach().numpy()
    g = 1 - np.tanh(xd + xd @ wd) ** 2
    np.testing.assert_allclose(x.grad.numpy(), g + g @ wd.T)
    np.testing.assert_allclose(w.grad.numpy(), xd.T @ g)


def test_forward_only_loops_do_not_grow_the_tape():
    tape = current_tape()
    w = tg.tensor([0.5, -0.25], dtype=tg.float64, requires_grad=True)
    last = None
    for _ in range(30000):
        last = (w * w + 1.0).tanh().sum()     # evaluation without backward or no_grad
    assert tape.n <= tape.compact_at + 16
    last.backward()                           # the last graph is still intact
    np.testing.assert_allclose(w.grad.numpy(), (1 - np.tanh(np.array([1.25, 1.0625])) ** 2)
                               * 2 * np.array([0.5, -0.25]))


@on_own_tape
def test_a_backward_through_a_temporary_lets_the_next_operation_reset_the_tape():
    """`f(x).backward()` holds its root while backward collects, so the tape cannot reset then; it tries again
    as the next operation starts, instead of letting values pile up until a compaction has to copy them."""
    tape = current_tape()
    x = tg.tensor(np.linspace(-1.0, 1.0, 1000), dtype=tg.float64, requires_grad=True)
    for _ in range(50):
        ((x * x).sum() * 0.5).backward()
        assert tape.nv <= 2 * 1000 + 8          # this step's values only: the leaf and x * x
    np.testing.assert_allclose(x.grad.numpy(), 50 * x.detach().numpy())


@on_own_tape
def test_a_root_still_held_at_the_next_operation_keeps_its_graph():
    x = tg.tensor([1.0, 2.0], dtype=tg.float64, requires_grad=True)
    y = (x + 1).sum()
    y.backward()
    z = x * 3                   # the next operation starts while y is alive: nothing y can reach is dropped
    y.backward()                # add and sum saved nothing, so a second backward is allowed, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 5.0])


@on_own_tape
def test_compaction_moves_a_kept_graph_down_over_its_own_old_place(small_tape_thresholds):
    """Compaction moves kept values down within the values buffer; a kept graph bigger than the garbage below it
    overlaps its old place, and its saved values (exp saves its output) must arrive intact."""
    small = tg.tensor([0.5, -0.5], dtype=tg.float64, requires_grad=True)
    first = (small * 2).exp()                  # kept at first, garbage later: the gap below the big graph
    (small * 1.0).sum().backward()             # closes first's segment
    x = tg.tensor(np.linspace(-2.0, 2.0, 3000), dtype=tg.float64, requires_grad=True)
    second = (x * 0.5).exp()                   # 6,000 values, right above `first`
    del first
    for _ in range(3000):
        (small * small).sum().backward()       # garbage that compaction drops
    assert second._seg.moves                   # compacted at least once, moved below where it was
    second.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 0.5 * np.exp(0.5 * np.linspace(-2.0, 2.0, 3000)), rtol=1e-15)


@on_own_tape
def test_a_module_training_step_resets_the_tape_every_step():
    """nn.Linear records through addmm, which must try the pending reset like every other operation: otherwise
    the tape of an nn.Sequential loop only ever compacts."""
    tape = current_tape()
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(6, 5), tg.nn.Tanh(), tg.nn.Linear(5, 2)).double()
    optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
    x = tg.randn(7, 6, dtype=tg.float64)
    # probabilities: the loss ends in a sum and a mean, which save nothing, so the root, held while backward
    # collects, keeps its graph then
    target = tg.nn.functional.softmax(tg.randn(7, 2, dtype=tg.float64), dim=1)
    loss_fn = tg.nn.CrossEntropyLoss()
    sizes = []
    for _ in range(20):
        optimizer.zero_grad()
        loss_fn(model(x), target).backward()
        optimizer.step()
        sizes.append(tape.n)
    assert max(sizes) == min(sizes)         # each step starts from an empty tape: the same records every time


@on_own_tape
def test_forward_only_loops_of_linear_layers_and_cat_do_not_grow_the_tape():
    tape = current_tape()
    w = tg.tensor(np.eye(3), dtype=tg.float64, requires_grad=True)
    b = tg.zeros(3, dtype=tg.float64, requires_grad=True)
    x = tg.ones(2, 3, dtype=tg.float64)
    last = None
    for _ in range(12000):
        last = tg.cat([tg.nn.functional.linear(x, w, b), x])     # addmm and cat only, no backward
    assert tape.n <= tape.compact_at + 16
    last.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 3), 2.0))


# -- results computed into the tape (Tape.push_into) ----------------------------------------------------------

@on_own_tape
def test_a_float64_sum_is_computed_into_its_place_on_the_tape():
    """The recorded result of a float64 add/sub/mul/div is its record's value itself, not a copy of it."""
    x = tg.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    b = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64)
    tape = current_tape()
    for y in (x + b, x - b, x * b, x / b):
        assert np.shares_memory(y.detach().numpy(), tape.vals)
    assert not np.shares_memory((x + 1.0).detach().numpy(), tape.vals)     # other operations still copy


@pytest.mark.parametrize("survivor", ["result", "detached", "view", "numpy"])
@on_own_tape
def test_a_result_computed_into_the_tape_keeps_its_values_after_the_tape_resets(survivor):
    """A reset reuses the values buffer from the start, unless something still shows part of it: a result, a
    detached copy sharing its storage, a view, or the numpy array of one."""
    x = tg.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), requires_grad=True)
    w = tg.tensor(np.linspace(2.0, 3.0, 4))
    y = x * w
    expected = x.detach().numpy() * w.numpy()
    kept = {"result": y, "detached": y.detach(), "view": y[1:], "numpy": y.detach().numpy()}[survivor]
    want = expected[1:] if survivor == "view" else expected
    y.sum().backward()            # consumes y's segment: the tape resets at the next operation
    if survivor != "result":
        del y
    for _ in range(3):
        z = (x * 7.0 + x) * x     # fills the start of the buffer again
        z.sum().backward()
    got = kept.detach().numpy() if survivor != "numpy" else kept
    np.testing.assert_array_equal(got, want)


@on_own_tape
def test_results_computed_into_the_tape_survive_compaction_and_still_differentiate(small_tape_thresholds):
    """Compaction moves kept values down, over dropped ones: it must not move them under a live result's feet."""
    x = tg.tensor(np.linspace(-2.0, 2.0, 3000), requires_grad=True)
    w = tg.tensor(np.linspace(0.5, 1.5, 3000), requires_grad=True)
    keep = []
    for k in range(40):
        y = x * w + x
        if k % 5 == 0:
            keep.append(y)       # alive and unconsumed: its segment survives compaction, the others' do not
        (x * x).sum().backward()
    assert keep[0]._seg.moves and keep[3]._seg.moves     # compacted, some several times
    xn, wn = np.linspace(-2.0, 2.0, 3000), np.linspace(0.5, 1.5, 3000)
    expected = xn * wn + xn
    for y in keep:
        np.testing.assert_array_equal(y.detach().numpy(), expected)
    x.grad = w.grad = None
    sum(y.sum() for y in keep[::2]).backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * (np.linspace(0.5, 1.5, 3000) + 1.0), rtol=1e-14)
    np.testing.assert_allclose(w.grad.numpy(), 4 * np.linspace(-2.0, 2.0, 3000), rtol=1e-14)


@on_own_tape
def test_writing_a_result_computed_into_the_tape_in_place_is_caught_like_any_in_place_change():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([4.0, 5.0, 6.0], dtype=tg.float64, requires_grad=True)
    y = x * w
    z = y * w                    # saves y
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    y = x * w
    z = y * 2.0                  # saves nothing
    y.mul_(3.0)
    (z.sum() + y.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), 5.0 * w.detach().numpy())
    np.testing.assert_array_equal(w.grad.numpy(), 5.0 * x.detach().numpy())


@on_own_tape
def test_detach_in_place_then_writing_is_caught_by_the_records_that_saved_the_value():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([4.0, 5.0, 6.0], dtype=tg.float64, requires_grad=True)
    y = x * w
    z = y * w
    y.detach_()
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="inplace|in-place"):
        z.sum().backward()


@on_own_tape
def test_a_grad_that_is_a_view_of_a_result_is_accumulated_without_corrupting_that_results_record():
    x = tg.tensor([1.0, 2.0, 3.0], dtype=tg.float64, requires_grad=True)
    w = tg.tensor([4.0, 5.0, 6.0], dtype=tg.float64, requires_grad=True)
    y = x * w
    z = (y * w).sum()            # saves y
    p = tg.tensor([0.0, 0.0, 0.0], dtype=tg.float64, requires_grad=True)
    p.grad = y.detach()
    (p * 2.0).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [6.0, 12.0, 20.0])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()             # as PyTorch: the accumulation wrote y's storage in place


@on_own_tape
def test_large_gradients_handed_over_by_backward_stay_the_callers_while_later_backwards_run():
    """Gradients of 32K float64 values or more are views of the adjoint buffer, not copies: a later backward must
    sweep elsewhere while any is alive, and accumulation into a held one must add, not alias."""
    n = 40000
    xn = np.linspace(-1.0, 1.0, n)
    x = tg.tensor(xn, requires_grad=True)
    (x * x).sum().backward()
    first = x.grad
    g1 = tg.autograd.grad((x * 3.0 * x).sum(), x)[0]
    held = first.numpy().copy()
    (x * x * x).sum().backward()                   # accumulates into x.grad
    g2 = tg.autograd.grad((x * 5.0).sum(), x)[0]
    for _ in range(3):                             # more sweeps while all of them are held
        tg.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(held, 2 * xn)
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn + 3 * xn * xn, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g1.numpy(), 6 * xn, rtol=1e-15)
    np.testing.assert_array_equal(g2.numpy(), np.full(n, 5.0))
    x.grad = None
    del first, g1, g2
    (x * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full(n, 2.0))


@pytest.mark.parametrize("first", ["sum", "mean", "cumsum", "index", "flip"])
@on_own_tape
def test_a_loop_whose_first_operation_places_its_own_params_still_resets_the_tape(first):
    """Operations that put their params in the int table before recording (reductions, index and copy views)
    check for a due reset first too: a loop of `x.sum().backward()` used to compact instead of resetting."""
    x = tg.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), requires_grad=True)
    ops = {"sum": lambda t: t.sum(), "mean": lambda t: t.mean(), "cumsum": lambda t: t.cumsum(1).sum(),
           "index": lambda t: t[tg.tensor([2, 0])].sum(), "flip": lambda t: t.flip(0).sum()}
    tape = current_tape()
    for _ in range(6):
        y = ops[first](x)
        assert tape.n <= 6         # the previous step's records are gone
        y.backward()
        del y
        x.grad = None


@on_own_tape
def test_keeping_results_past_every_step_pins_a_bounded_number_of_value_buffers():
    """A kept result computed into the tape pins the whole values buffer; a loop that keeps one per step would
    pin a buffer per step, so after a few the tape copies results instead (and the kept values stay right)."""
    x = tg.tensor(np.linspace(-1.0, 1.0, 4000), requires_grad=True)
    w = tg.tensor(np.linspace(0.5, 1.5, 4000), requires_grad=True)
    tape = current_tape()
    kept = []
    buffers = set()
    for k in range(12):
        y = x * w + tg.tensor(np.full(4000, float(k)))
        kept.append(y.detach().numpy())   # holds the values, not the graph
        y.sum().backward()
        del y
        x.grad = w.grad = None
        buffers.add(id(tape.vals))
    assert not tape.into_vals
    assert len(buffers) <= tape._MAX_PINNED + 1
    xn, wn = np.linspace(-1.0, 1.0, 4000), np.linspace(0.5, 1.5, 4000)
    for k, y in enumerate(kept):
        np.testing.assert_array_equal(y, xn * wn + float(k))


@on_own_tape
def test_keeping_gradients_past_every_step_pins_a_bounded_number_of_adjoint_buffers():
    n = 40000
    x = tg.tensor(np.linspace(-1.0, 1.0, n), requires_grad=True)
    tape = current_tape()
    kept = []
    buffers = set()
    for k in range(10):
        (x * float(k + 1)).sum().backward()
        kept.append(x.grad.numpy())    # holds the gradient's values past the step
        x.grad = None
        buffers.add(id(tape.adj))
    assert not tape.hand_over
    assert len(buffers) <= tape._MAX_PINNED + 2
    for k, g in enumerate(kept):
        np.testing.assert_array_equal(g, np.full(n, float(k + 1)))


@on_own_tape
def test_an_arithmetic_error_raised_by_numpy_leaves_no_record_behind():
    """Under np.seterr(over="raise") an overflowing product raises FloatingPointError; whether the result was to be
    computed into the tape or copied, the call records nothing."""
    x = tg.tensor(np.full(5, 1e200), requires_grad=True) * 1.0
    y = x * 1.0
    tape = current_tape()
    tape.flush()
    before = (tape.n, tape.nv)
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            x * y
    tape.flush()
    assert (tape.n, tape.nv) == before
    (x * 2.0).sum().backward()
