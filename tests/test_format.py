"""tapegrad._format against PyTorch's own tensor repr (the oracle)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import array_shapes, arrays  # noqa: E402

from tapegrad._format import (  # noqa: E402
    format_size,
    format_tensor,
    get_printoptions,
    printoptions,
    set_printoptions,
    shows_dtype,
)

# The number of examples comes from the active Hypothesis profile (tests/conftest.py).
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

FLOAT_DTYPES = [np.float16, np.float32, np.float64]
COMPLEX_DTYPES = [np.complex64, np.complex128]
INT_DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_]
ALL_DTYPES = FLOAT_DTYPES + COMPLEX_DTYPES + INT_DTYPES

SPECIAL = [0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 1.0, -2.5, 1e-4,
           9.99e-5, 1e-5, 1e8, 1.0000001e8, 1e9, 1000.0, 1001.0, 1234.5, 0.5, 123456.789]

# One strategy is drawn per array, so that whole arrays land in each print mode
# (integer-valued, fixed point, scientific) instead of almost always mixing.
FLOAT_ELEMENTS = [
    st.floats(),
    st.floats(-1e3, 1e3),
    st.floats(-1.5, 1.5),
    st.integers(-10**4, 10**4).map(float),
    st.integers(-10**12, 10**12).map(float),
    st.floats(1e-6, 1e-3),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.sampled_from(SPECIAL),
    st.one_of(st.sampled_from(SPECIAL), st.integers(-100, 100).map(float)),
]


def _cast(values, dtype):
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype)


@st.composite
def float_values(draw, shape):
    elements = draw(st.sampled_from(FLOAT_ELEMENTS))
    return draw(arrays(np.float64, shape, elements=elements))


@st.composite
def tensors(draw, shapes=array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
            dtypes=ALL_DTYPES):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(shapes)
    if dtype.kind == "f":
        return _cast(draw(float_values(shape)), dtype)
    if dtype.kind == "c":
        out = np.empty(shape, dtype)
        out.real = _cast(draw(float_values(shape)), out.real.dtype)
        out.imag = _cast(draw(float_values(shape)), out.real.dtype)
        return out
    return draw(arrays(dtype, shape))


def expected_and_suffixes(arr, grad=None, default_dtype=np.float32):
    """torch's repr of ``arr`` and the suffix list that format_tensor needs to match it."""
    t = torch.from_numpy(np.array(arr, copy=True))
    suffixes = []
    if shows_dtype(arr.dtype, arr.size == 0, default_dtype):
        suffixes.append(f"dtype={t.dtype}")
    if grad == "leaf":
        t.requires_grad_()
        suffixes.append("requires_grad=True")
    elif grad == "fn":
        t = t.requires_grad_().clone()
        suffixes.append("grad_fn=<CloneBackward0>")
    return repr(t), suffixes


def check(arr, grad=None):
    expected, suffixes = expected_and_suffixes(arr, grad)
    assert format_tensor(arr, suffixes) == expected


# --- fixed examples -----------------------------------------------------------

def test_documented_examples():
    assert format_tensor(np.array([4.0, 5.0], np.float32), ["grad_fn=<AddBackward0>"]) == (
        "tensor([4., 5.], grad_fn=<AddBackward0>)")
    assert format_tensor(np.float32(61.5), ["grad_fn=<MeanBackward0>"]) == (
        "tensor(61.5000, grad_fn=<MeanBackward0>)")
    assert format_tensor(np.array([12.0, 15.0], np.float32)) == "tensor([12., 15.])"
    assert format_tensor(np.array([1e-5, 1.0], np.float32)) == "tensor([1.0000e-05, 1.0000e+00])"
    assert format_tensor(np.arange(12, dtype=np.float32).reshape(3, 4)) == (
        "tensor([[ 0.,  1.,  2.,  3.],\n"
        "        [ 4.,  5.,  6.,  7.],\n"
        "        [ 8.,  9., 10., 11.]])")
    assert format_tensor(np.int64(3)) == "tensor(3)"
    assert format_tensor(np.array([True, False])) == "tensor([ True, False])"
    assert format_tensor(np.zeros((0, 3), np.float32)) == "tensor([], size=(0, 3))"
    assert format_tensor(np.zeros((0, 3), np.int64), ["dtype=tapegrad.int64"]) == (
        "tensor([], size=(0, 3), dtype=tapegrad.int64)")
    assert format_tensor(np.zeros(0, np.float32), ["requires_grad=True"]) == (
        "tensor([], requires_grad=True)")


CASES = {
    "scalar_float": np.float32(61.5),
    "scalar_nan": np.array(math.nan),
    "scalar_neg_zero": np.array(-0.0, np.float32),
    "scalar_bool": np.array(True),
    "scalar_complex": np.array(1 + 2j, np.complex64),
    "int_1d": np.array([-5, 10, 300], np.int32),
    "int_big": np.array([2**62, -(2**63)], np.int64),
    "fixed": np.array([0.1, -2.25, 3.0], np.float32),
    "float32_rounding": np.array([0.1, 0.3, 1 / 3], np.float32),
    "ties": np.array([0.00005, 0.00015, 2.5, 0.125], np.float64),
    "huge": np.array([1e8, 2e8], np.float64),
    "ratio_exactly_1000": np.array([1.0, 1000.0], np.float32),
    "ratio_over_1000": np.array([1.0, 1000.5], np.float32),
    "min_1e-4": np.array([1e-4, 1e-3], np.float64),
    "float64_extremes": np.array([1e-300, 1e300, 5e-324], np.float64),
    "float32_subnormal": np.array([1e-45, 1.0], np.float32),
    "nan_inf_only": np.array([math.nan, math.inf, -math.inf, 0.0, -0.0], np.float32),
    "nan_inf_fixed": np.array([1.5, -math.inf, -0.0, math.nan], np.float32),
    "nan_inf_sci": np.array([1e-7, -math.inf, math.nan, 0.0], np.float32),
    "int_valued_sci": np.array([1.0, 1e10, -0.0], np.float64),
    "zeros": np.zeros((2, 3), np.float32),
    "empty_1d_int": np.zeros(0, np.int64),
    "empty_3d": np.zeros((2, 0, 4), np.float64),
    "empty_bool": np.zeros((0,), np.bool_),
    "complex_mixed": np.array([1 + 2j, -0.5 - 0j, math.inf * 1j, 1e-6 - 3j], np.complex128),
    "cube": np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5,
    "4d": np.arange(48).reshape(2, 2, 3, 4),
    "long_row": np.linspace(-3, 3, 55, dtype=np.float32),
    "long_rows_2d": np.arange(90, dtype=np.float64).reshape(3, 30) * 1.5,
    "summarized_1d": np.arange(5000, dtype=np.float32) / 7,
    "summarized_2d": np.arange(2000.0).reshape(2, 1000),
    "summarized_3d": np.arange(7 * 8 * 30).reshape(7, 8, 30),
    "summarized_no_cut": np.arange(6**4).reshape(6, 6, 6, 6),
    "summarized_complex": (np.arange(1200) * (1 + 0.5j)).astype(np.complex64),
    "summarized_bool": np.arange(1500).reshape(30, 50) % 3 == 0,
}


@pytest.mark.parametrize(
    "name, grad",
    [(name, grad) for name in sorted(CASES) for grad in [None, "leaf", "fn"]
     if grad is None or np.asarray(CASES[name]).dtype.kind in "fc"],
)
def test_cases(name, grad):
    check(np.asarray(CASES[name]), grad)


def test_numpy_scalar_inputs():
    assert format_tensor(np.float64(2.5), ["dtype=torch.float64"]) == repr(
        torch.tensor(2.5, dtype=torch.float64))
    assert format_tensor(np.bool_(False)) == "tensor(False)"


def test_prefix_sets_indent():
    class VeryLongSubclassNameTensor(torch.Tensor):
        pass

    arr = np.arange(60, dtype=np.float64).reshape(3, 20) / 3
    t = torch.from_numpy(arr).as_subclass(VeryLongSubclassNameTensor)
    got = format_tensor(arr, ["dtype=torch.float64"], prefix="VeryLongSubclassNameTensor(")
    assert got == repr(t)


def test_unsupported_dtype():
    with pytest.raises(TypeError):
        format_tensor(np.array(["a"]))


def test_format_size():
    for shape in [(), (0,), (3,), (2, 3), (1, 0, 5)]:
        assert f"torch.Size({format_size(shape)})" == repr(torch.Size(shape))


@pytest.mark.parametrize("default", [torch.float32, torch.float64])
def test_shows_dtype(default):
    np_default = np.float32 if default == torch.float32 else np.float64
    old = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        for dtype in ALL_DTYPES:
            for shape in [(0,), (2,)]:
                shown = "dtype=" in repr(torch.from_numpy(np.zeros(shape, dtype)))
                assert shows_dtype(dtype, shape == (0,), np_default) == shown, (dtype, shape)
    finally:
        torch.set_default_dtype(old)


# --- property tests against torch ---------------------------------------------

@settings(**SETTINGS)
@given(arr=tensors(), grad=st.sampled_from([None, "leaf", "fn"]))
def test_matches_torch(arr, grad):
    check(arr, grad if arr.dtype.kind in "fc" else None)


@settings(**SETTINGS)
@given(arr=tensors(shapes=st.one_of(array_shapes(min_dims=1, max_dims=1, min_side=8, max_side=120),
                                    array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40))),
       grad=st.sampled_from([None, "leaf", "fn"]))
def test_long_rows_wrap(arr, grad):
    check(arr, grad if arr.dtype.kind in "fc" else None)


@st.composite
def big_tensors(draw):
    """Arrays with more than 1000 elements (printed summarized), filled by a seeded RNG."""
    shape = draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    rest = math.prod(shape[1:])
    if math.prod(shape) <= 1000:
        shape[0] = 1000 // rest + 1 + draw(st.integers(0, 20))
    dtype = np.dtype(draw(st.sampled_from(ALL_DTYPES)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "ints", "wide", "specials"]))
    size = math.prod(shape)
    if kind == "normal":
        values = rng.normal(size=size)
    elif kind == "ints":
        values = rng.integers(-50, 50, size=size).astype(np.float64)
    elif kind == "wide":
        values = rng.normal(size=size) * 10.0 ** rng.integers(-8, 12, size=size)
    else:
        values = rng.choice(np.array(SPECIAL), size=size)
    if dtype.kind == "c":
        real, values = values, np.empty(size, np.complex128)
        values.real, values.imag = real, rng.permutation(real)
    if dtype.kind in "biu":
        values = np.nan_to_num(values, nan=0.0, posinf=7.0, neginf=-7.0)
        values = np.clip(values, -100, 100)
    if dtype.kind == "b":
        values = values > 0
    with np.errstate(over="ignore", invalid="ignore"):
        return values.astype(dtype).reshape(shape)


@settings(**SETTINGS)
@given(arr=big_tensors(), grad=st.sampled_from([None, "leaf", "fn"]))
def test_summarized(arr, grad):
    check(arr, grad if arr.dtype.kind in "fc" else None)


@settings(**SETTINGS)
@given(arr=tensors(shapes=array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=30),
                   dtypes=FLOAT_DTYPES + COMPLEX_DTYPES + [np.int64]),
       suffixes=st.lists(st.integers(0, 70).map(lambda n: "s" * n), max_size=4))
def test_suffix_wrapping(arr, suffixes):
    # torch only appends suffixes it picks itself, so arbitrary suffixes are
    # checked against its private helper on top of its real body text.
    add_suffixes = getattr(torch._tensor_str, "_add_suffixes", None)
    if add_suffixes is None:
        pytest.skip("torch._tensor_str._add_suffixes not available")
    body = repr(torch.from_numpy(arr.copy()))
    body = body[: body.rindex("]") + 1]
    assert format_tensor(arr, suffixes) == add_suffixes(body, suffixes, 7, False)


OPTIONS = [
    dict(precision=2),
    dict(precision=6, linewidth=40),
    dict(sci_mode=True),
    dict(sci_mode=False),
    dict(threshold=20, edgeitems=2),
    dict(threshold=20, edgeitems=0),
    dict(edgeitems=0),
    dict(threshold=math.inf, linewidth=120),
    dict(profile="short"),
    dict(profile="full", precision=1),
]


@settings(**SETTINGS)
@given(options=st.sampled_from(OPTIONS),
       arr=tensors(shapes=array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)),
       grad=st.sampled_from([None, "fn"]))
def test_print_options(options, arr, grad):
    with torch._tensor_str.printoptions(**options), printoptions(**options):
        check(arr, grad if arr.dtype.kind in "fc" else None)


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_print_options_fixed(options):
    arrays_ = [np.arange(40, dtype=np.float32).reshape(5, 8) / 3, np.arange(30) - 15,
               np.array([1e-6, 2.0, math.nan]), np.zeros((0, 2)), np.float32(2.5)]
    with torch._tensor_str.printoptions(**options), printoptions(**options):
        for arr in arrays_:
            check(np.asarray(arr))


def test_printoptions_state():
    before = get_printoptions()
    with printoptions(profile="full", sci_mode=True):
        assert get_printoptions() == dict(precision=4, threshold=math.inf, edgeitems=3,
                                          linewidth=80, sci_mode=True)
    assert get_printoptions() == before
    with pytest.raises(ValueError):
        set_printoptions(profile="nope")
    set_printoptions(**before)


def test_strided_and_byteswapped_inputs():
    base = np.arange(60, dtype=np.float64).reshape(3, 4, 5) / 4 - 3
    for arr in [base.transpose(2, 0, 1), base[::-1, ::2], base.astype(">f8"), base[:, 1]]:
        expected = repr(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)))
        assert format_tensor(arr, ["dtype=torch.float64"]) == expected
