"""Every script in examples/ runs and prints exactly what PyTorch prints for the same script.

The expected output is written out here (it was produced by running each script with `tapegrad` replaced by
`torch`); where torch is installed the scripts are also re-run against it, so the oracle stays honest.
"""
import contextlib
import io
import pathlib
import runpy
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

SECOND_TIME = (
    "Trying to backward through the graph a second time (or directly access saved tensors after they have "
    "already been freed). Saved intermediate values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward through the graph a second time or if "
    "you need to access saved tensors after calling backward.")

EXPECTED = {
    "autograd_basics.py": """\
tensor([4., 5.], grad_fn=<AddBackward0>)
tensor([48., 75.], grad_fn=<MulBackward0>)
tensor(61.5000, grad_fn=<MeanBackward0>)
tensor([12., 15.])
""",
    "retain_graph.py": f"""\
tensor([3.6000, 3.6000, 3.6000, 3.6000, 3.6000])
tensor([3.6000, 3.6000, 3.6000, 3.6000, 3.6000])
tensor([7.2000, 7.2000, 7.2000, 7.2000, 7.2000])
RuntimeError: {SECOND_TIME}
tensor([18., 18., 18., 18., 18.])
""",
    "addmm.py": """\
tensor([[ 6.,  8.],
        [10., 12.]], grad_fn=<AddmmBackward0>)
tensor([[1., 1.],
        [1., 1.]])
tensor([[11., 15.],
        [11., 15.]])
tensor([[1., 1.],
        [1., 1.]])
""",
    "abs_repr.py": """\
tensor([-1.,  2., -3.], requires_grad=True)
tensor([1., 2., 3.], grad_fn=<AbsBackward0>)
AbsBackward0
""",
    "backward_from_leaf.py": """\
tensor([8.])
tensor([4.])
""",
    "leaves.py": """\
True False
tensor([2., 3.]) True False
tensor([2., 3.], requires_grad=True) True True
False True
tensor([False,  True]) tapegrad.bool False True
RuntimeError: element 0 of tensors does not require grad and does not have a grad_fn
""",
    "inplace_versions.py": """\
0
1
tensor([2.])
RuntimeError: one of the variables needed for gradient computation has been modified by an inplace operation
""",
    "xor_mlp.py": """\
Sequential(
  (0): Linear(in_features=2, out_features=8, bias=True)
  (1): Tanh()
  (2): Linear(in_features=8, out_features=1, bias=True)
  (3): Sigmoid()
)
predictions: [0.0, 1.0, 1.0, 0.0]
accuracy: 100%
final loss below 0.01: True
""",
    "linear_regression.py": """\
step   0  loss 29.0000
step  25  loss 0.0660
step  50  loss 0.0460
step  75  loss 0.0320
w = 2.1001, b = 0.7724
tensor(2.1001, requires_grad=True)
tensor(0.7724, requires_grad=True)
""",
}


def _run(path, module="tapegrad"):
    """Run a script in this process (fast: tapegrad and numba are imported once) and return its stdout."""
    source = path.read_text()
    if module != "tapegrad":
        source = source.replace("tapegrad", module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
    return out.getvalue()


def test_every_example_is_covered():
    # custom_op.py is run, and its property tests too, by tests/test_custom_ops.py; compile_rosenbrock.py (which
    # has no PyTorch counterpart) by tests/test_compile.py; graph_pictures.py (which writes files) by tests/test_viz.py
    others = {"custom_op.py", "compile_rosenbrock.py", "graph_pictures.py"}
    assert sorted(p.name for p in EXAMPLES.glob("*.py") if p.name not in others) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_prints_the_expected_output(name):
    assert _run(EXAMPLES / name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_prints_what_torch_prints(name):
    pytest.importorskip("torch")
    expected = _run(EXAMPLES / name, "torch").replace("torch", "tapegrad")
    assert _run(EXAMPLES / name) == expected


def test_linear_regression_matches_torch_to_1e_5():
    torch = pytest.importorskip("torch")
    import tapegrad
    results = {}
    for M in (torch, tapegrad):
        x = M.tensor([1.0, 2.0, 3.0])
        y = M.tensor([3.0, 5.0, 7.0])
        w = M.tensor(1.0, requires_grad=True)
        b = M.tensor(0.0, requires_grad=True)
        for _ in range(100):
            loss = ((w * x + b - y) ** 2).sum()
            loss.backward()
            with M.no_grad():
                w -= 0.01 * w.grad
                b -= 0.01 * b.grad
            w.grad.zero_()
            b.grad.zero_()
        results[M.__name__] = (w.item(), b.item())
    assert results["tapegrad"] == pytest.approx(results["torch"], abs=1e-5)
    assert results["tapegrad"] == pytest.approx((2.1001, 0.7724), abs=1e-4)


def test_examples_run_as_scripts():
    """One real subprocess run, so the scripts work from the command line and not only under exec()."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / "autograd_basics.py")], capture_output=True, text=True,
                          timeout=120, cwd=EXAMPLES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED["autograd_basics.py"]
