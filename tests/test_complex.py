"""Complex autograd (tapegrad/ops/complex.py): gradients against central finite differences over the real and
imaginary parts, and values, gradients, dtypes and grad_fn names against PyTorch."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import tapegrad as tg
from tapegrad.testing import gradcheck
from tapegrad.testing import strategies as tgst

# each case: complex inputs z (shape s1) and w (shape s2) -> a tensor; a real loss is taken of the result
CASES = {
    "add": lambda L, z, w: z + w,
    "sub": lambda L, z, w: z - w,
    "mul": lambda L, z, w: z * w,
    "div": lambda L, z, w: z / w,
    "neg": lambda L, z, w: -z,
    "rsub_scalar": lambda L, z, w: (1.5 - 2j) - z,
    "mul_scalar": lambda L, z, w: z * (0.5 + 1j),
    "scalar_div": lambda L, z, w: (2 + 1j) / w,
    "add_real_tensor": lambda L, z, w: z + w.real,
    "mul_real_tensor": lambda L, z, w: w.imag * z,
    "exp": lambda L, z, w: z.exp(),
    "log": lambda L, z, w: w.log(),
    "abs": lambda L, z, w: z.abs(),
    "conj": lambda L, z, w: z.conj() * w,
    "real": lambda L, z, w: (z * w).real,
    "imag": lambda L, z, w: (z * w).imag,
    "angle": lambda L, z, w: w.angle(),
    "sum": lambda L, z, w: (z * w).sum(),
    "sum_dim": lambda L, z, w: (z * w).sum(-1, keepdim=True),
    "mean": lambda L, z, w: (z * w).mean(),
    "mean_dim": lambda L, z, w: (z * w).mean(0),
    "matmul": lambda L, z, w: L.matmul(z, w),
    "matmul_vector": lambda L, z, w: L.matmul(z, L.complex(w.real[0], w.imag[1])),
    "view_as_real": lambda L, z, w: L.view_as_real(z * w),
    "view_as_complex": lambda L, z, w: L.view_as_complex(L.view_as_real(z) * 2.0) * w,
    "complex": lambda L, z, w: L.complex(z.real, w.imag),
}
SHAPES = {"matmul": ((2, 3), (3, 2))}
DEFAULT_SHAPES = ((2, 3), (2, 3))


def _loss(L, out):
    """A real scalar of any result that uses both parts (phases matter, so no abs-only loss)."""
    if out.dtype in (L.complex64, L.complex128):
        up = np.linspace(0.5, 1.5, out.numel()).reshape(out.shape)
        down = np.linspace(1.5, 0.5, out.numel()).reshape(out.shape)
        r = L.view_as_real(out)
        return (r[..., 0] * L.tensor(up) + r[..., 1] * L.tensor(down) ** 2).sum()
    return (out * out).sum()


def _inputs(name, seed):
    rng = np.random.default_rng(seed)
    s1, s2 = SHAPES.get(name, DEFAULT_SHAPES)
    # kept away from 0, where log, angle and abs have kinks
    z = (rng.uniform(0.3, 1.5, s1) * np.exp(1j * rng.uniform(-2.5, 2.5, s1)))
    w = (rng.uniform(0.3, 1.5, s2) * np.exp(1j * rng.uniform(-2.5, 2.5, s2)))
    return z, w


def _run(L, name, z, w, dtype):
    zt = L.tensor(z, dtype=dtype, requires_grad=True)
    wt = L.tensor(w, dtype=dtype, requires_grad=True)
    out = CASES[name](L, zt, wt)
    _loss(L, out).backward()
    grads = [t.grad.resolve_conj().numpy() if t.grad is not None else np.zeros_like(t.detach().numpy()) for t in (zt, wt)]
    return out, grads


@pytest.mark.parametrize("name", sorted(CASES))
@given(seed=st.integers(0, 2 ** 31))
def test_gradients_match_finite_differences_over_real_and_imaginary_parts(name, seed):
    """z.grad = dL/dRe z + i dL/dIm z, checked by differencing L over the four real parts."""
    z, w = _inputs(name, seed)

    def loss_of_parts(zr, zi, wr, wi):
        return _loss(tg, CASES[name](tg, tg.complex(zr, zi), tg.complex(wr, wi)))

    parts = [tg.tensor(p, requires_grad=True) for p in (z.real, z.imag, w.real, w.imag)]
    assert gradcheck(loss_of_parts, tuple(parts), name=name)
    _, (gz, gw) = _run(tg, name, z, w, tg.complex128)
    loss_of_parts(*parts).backward()
    dzr, dzi, dwr, dwi = (p.grad.numpy() if p.grad is not None else np.zeros(p.shape) for p in parts)
    np.testing.assert_allclose(gz, dzr + 1j * dzi, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, dwr + 1j * dwi, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_values_gradients_and_grad_fn_match_torch(name, dtype):
    torch = pytest.importorskip("torch")
    z, w = _inputs(name, 7)
    got, got_grads = _run(tg, name, z, w, getattr(tg, dtype))
    want, want_grads = _run(torch, name, z, w, getattr(torch, dtype))
    tol = 1e-12 if dtype == "complex128" else 2e-5
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.detach().numpy(), want.detach().resolve_conj().numpy(), rtol=tol, atol=tol)
    for g, wg in zip(got_grads, want_grads):
        assert g.dtype == wg.dtype
        np.testing.assert_allclose(g, wg, rtol=tol, atol=tol)
    assert got.grad_fn.name() == want.grad_fn.name()
    assert got.is_leaf is False and got.requires_grad


def test_abs_at_zero_has_zero_gradient_like_torch():
    z = tg.tensor([0j, 3 + 4j], requires_grad=True)
    z.abs().sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), [0, 0.6 + 0.8j])


def test_complex_output_needs_an_explicit_gradient_and_then_matches_torch():
    torch = pytest.importorskip("torch")
    z = tg.tensor([1 + 2j, -1j], requires_grad=True)
    y = z * z
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs but got "
                                           "tapegrad.complex64"):
        y.sum().backward()
    seed = [1 - 1j, 0.5 + 2j]
    y.backward(tg.tensor(seed))
    zt = torch.tensor([1 + 2j, -1j], requires_grad=True)
    (zt * zt).backward(torch.tensor(seed))
    np.testing.assert_allclose(z.grad.numpy(), zt.grad.numpy())


def test_autograd_grad_and_retain_grad_with_complex_tensors():
    z = tg.tensor([1 + 1j, 2 - 1j], dtype=tg.complex128, requires_grad=True)
    m = z * (2 - 1j)
    m.retain_grad()
    loss = m.abs().sum()
    (gz, gm) = tg.autograd.grad(loss, (z, m), retain_graph=True)
    loss.backward()
    expected_m = m.detach().numpy() / np.abs(m.detach().numpy())
    np.testing.assert_allclose(gm.numpy(), expected_m)
    np.testing.assert_allclose(m.grad.numpy(), expected_m)
    np.testing.assert_allclose(gz.numpy(), expected_m * np.conj(2 - 1j))
    np.testing.assert_allclose(z.grad.numpy(), gz.numpy())


def test_leaf_updated_in_place_is_read_again():
    z = tg.tensor([1 + 1j], dtype=tg.complex128, requires_grad=True)
    for _ in range(2):
        loss = (z * z).real.sum()
        loss.backward()
        with tg.no_grad():
            z -= 0.1 * z.grad
        z.grad = None
    # d/dz Re(z^2) = 2 conj(z), applied twice from 1+1j
    expected = np.array([1 + 1j])
    for _ in range(2):
        expected = expected - 0.1 * 2 * np.conj(expected)
    np.testing.assert_allclose(z.detach().numpy(), expected)


def test_unsupported_operations_refuse_complex_tensors_that_require_grad():
    z = tg.tensor([1 + 1j, 2j], requires_grad=True)
    for fn in (lambda: z.sin(), lambda: z.reshape(2, 1), lambda: (z * 2).reshape(2, 1), lambda: tg.cat([z, z]),
               lambda: (z * 2)[0]):
        with pytest.raises(NotImplementedError, match="autograd through complex tensors is supported only for"):
            fn()


def test_without_grad_complex_tensors_compute_as_numpy_does():
    z = tg.tensor([1 + 2j, -0.5j])
    w = tg.tensor([0.5 - 1j, 2 + 0j])
    np.testing.assert_allclose((z * w / (w + 1)).numpy(), (z.numpy() * w.numpy() / (w.numpy() + 1)))
    np.testing.assert_allclose(tg.angle(z).numpy(), np.angle(z.numpy()))
    np.testing.assert_allclose(z.real.numpy(), [1, 0])
    np.testing.assert_allclose(tg.view_as_real(z).numpy(), [[1, 2], [0, -0.5]])
    assert tg.view_as_complex(tg.view_as_real(z)).dtype is tg.complex64


@given(x=tgst.tensors(shape=(3,), elements=tgst.floats_avoiding((0.0,), margin=1e-2)))
def test_real_tensor_times_complex_scalar_differentiates_through_the_real_leaf(x):
    y = (x * (1 + 2j)).abs().sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.sqrt(5) * np.sign(x.detach().numpy()), atol=1e-12)
