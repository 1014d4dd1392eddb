"""tapegrad against PyTorch: every op in the table, random programs built from it, and float32 inputs."""
import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad.testing.op_db import OPS

from programs import programs, run_program

torch = pytest.importorskip("torch")

TORCH_OPS = [s for s in OPS if s.torch]
F64 = dict(rtol=1e-10, atol=1e-12)
F32 = dict(rtol=1e-4, atol=1e-5)


def _copy_arg(lib, a, dtype=None):
    """A fresh copy of an argument in `lib` (optionally cast, requires_grad kept) so each run builds its own
    graph; non-tensor values unchanged."""
    if isinstance(a, tg.Tensor):
        arr = np.array(a.detach().numpy(), copy=True)
        if dtype is not None and arr.dtype.kind == "f":
            arr = arr.astype(dtype)
        return lib.tensor(arr, requires_grad=a.requires_grad)
    if isinstance(a, tuple):
        return tuple(_copy_arg(lib, x, dtype) for x in a)
    return a


def _to_torch(a, dtype=None):
    return _copy_arg(torch, a, dtype)


def _to_tg(a, dtype=None):
    return _copy_arg(tg, a, dtype)


def _np(t):
    return None if t is None else np.array(t.detach().numpy(), copy=True)


def _seed(shape):
    rng = np.random.default_rng(len(shape) * 7 + int(np.prod(shape)))
    return rng.uniform(-1.5, 1.5, shape)


def _assert_close(name, what, got, want, tol):
    if want is None or got is None:
        assert got is None and want is None, f"{name}: {what} is {got} in tapegrad but {want} in torch"
        return
    assert got.shape == want.shape, f"{name}: {what} has shape {got.shape} in tapegrad, {want.shape} in torch"
    np.testing.assert_allclose(got, want, equal_nan=True, err_msg=f"{name}: {what} differs from torch", **tol)


def _run_both(name, tg_fn, torch_fn, args, dtype=None, tol=F64, check_grad_fn=True):
    """Run on copies in both libraries, backward with the same seed, compare values, grads, dtypes, grad_fn."""
    ta, pa = [_to_tg(a, dtype) for a in args], [_to_torch(a, dtype) for a in args]
    out, ref = tg_fn(*ta), torch_fn(*pa)
    assert str(out.dtype).split(".")[-1] == str(ref.dtype).split(".")[-1], f"{name}: dtype {out.dtype} vs {ref.dtype}"
    _assert_close(name, "value", _np(out), _np(ref), tol)
    # names are compared after backward: a failed check must not leave an unconsumed graph pinning the tape
    mine = out.grad_fn.name() if out.grad_fn is not None else None
    theirs = ref.grad_fn.name() if ref.grad_fn is not None else None
    if ref.requires_grad:
        _compare_grads(name, out, ref, ta, pa, tol)
    if check_grad_fn:
        assert mine == theirs, f"{name}: grad_fn is {mine} in tapegrad but {theirs} in torch"


def _compare_grads(name, out, ref, ta, pa, tol):
    seed = _seed(tuple(ref.shape)).astype(_np(ref).dtype)
    out.backward(tg.tensor(seed))
    ref.backward(torch.tensor(seed))
    for k, (x, y) in enumerate(zip(ta, pa)):
        if isinstance(x, tg.Tensor) and x.requires_grad:
            if x.grad is not None:
                assert x.grad.dtype == x.dtype, f"{name}: grad of input {k} is {x.grad.dtype}, input is {x.dtype}"
            _assert_close(name, f"gradient of input {k}", _np(x.grad), _np(y.grad), tol)


@pytest.mark.parametrize("spec", TORCH_OPS, ids=lambda s: s.name)
def test_matches_torch(spec):
    """Values, gradients and grad_fn names equal torch's on the same float64 inputs."""
    @given(args=spec.args)
    def prop(args):
        _run_both(spec.name, spec.bind(tg), spec.bind(torch), args, tol=spec.torch_tol or F64)
    prop()


@pytest.mark.parametrize("spec", TORCH_OPS, ids=lambda s: s.name)
def test_float32_matches_torch(spec):
    """float32 inputs: values and gradients stay float32 (unless the op converts) and match torch."""
    @given(args=spec.args)
    def prop(args):
        _run_both(spec.name, spec.bind(tg), spec.bind(torch), args, dtype=np.float32, tol=spec.float32_tol or F32,
                  check_grad_fn=False)
    prop()


@given(programs())
def test_random_programs_match_torch(program):
    """Random compositions of table ops give torch's values and gradients."""
    arrs, steps = program
    note(f"steps: {steps}")
    ta = [tg.tensor(a, requires_grad=True) for a in arrs]
    pa = [torch.tensor(a, requires_grad=True) for a in arrs]
    ref = run_program(torch, pa, steps)
    seed = _seed(tuple(ref.shape))
    ref.backward(torch.tensor(seed))
    assume(np.isfinite(_np(ref)).all() and all(p.grad is None or np.isfinite(_np(p.grad)).all() for p in pa))
    out = run_program(tg, ta, steps)
    _assert_close("program", "value", _np(out), _np(ref), dict(rtol=1e-9, atol=1e-10))
    out.backward(tg.tensor(seed))
    for k, (x, y) in enumerate(zip(ta, pa)):
        _assert_close("program", f"gradient of input {k}", _np(x.grad), _np(y.grad), dict(rtol=1e-9, atol=1e-10))


@pytest.mark.parametrize("lib", ["tapegrad", "torch"])
def test_negative_slice_steps_are_refused_like_torch(lib):
    L = tg if lib == "tapegrad" else torch
    x = L.ones(3, dtype=L.float64, requires_grad=True)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        x[::-1]
