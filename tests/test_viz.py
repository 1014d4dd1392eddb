"""tapegrad.viz: make_dot draws the graph torchviz draws for the same PyTorch program, the DOT renders, and
compiled traces draw themselves."""
import collections
import pathlib
import re
import runpy
import shutil
import subprocess

import pytest

import tapegrad as tg
from tapegrad.viz import GraphvizNotFound, make_dot

pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes are deprecated:DeprecationWarning")


# -- reading DOT back: nodes with their final attributes, and edges ------------------------------------------

_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|->|[\[\]{}=;,]|[^\s\[\]{}=;,"]+', re.S)


def _unquote(token):
    if token.startswith('"'):
        return re.sub(r'\\(.)', r'\1', token[1:-1])
    return token


def parse_dot(text):
    """({node id: {attribute: value}}, [(tail, head, {attribute: value})]) of a flat digraph."""
    tokens = [m.group(0) for m in _TOKEN.finditer(text)]
    start = tokens.index("{") + 1
    nodes, edges = {}, []
    k = start
    while k < len(tokens) and tokens[k] != "}":
        first = _unquote(tokens[k])
        k += 1
        head = None
        if k < len(tokens) and tokens[k] == "->":
            head = _unquote(tokens[k + 1])
            k += 2
        attrs = {}
        if k < len(tokens) and tokens[k] == "[":
            k += 1
            while tokens[k] != "]":
                key, value = _unquote(tokens[k]), _unquote(tokens[k + 2])
                attrs[key] = value
                k += 3
                if tokens[k] in (",", ";"):
                    k += 1
            k += 1
        if k < len(tokens) and tokens[k] == ";":
            k += 1
        if head is not None:
            edges.append((first, head, attrs))
        elif first not in ("graph", "node", "edge"):
            nodes.setdefault(first, {}).update(attrs)
    return nodes, edges


def canonical(text):
    """The graph with node ids replaced by a name built from each node's label, colour and everything that
    flows into it: equal for two DOT texts exactly when they draw the same graph."""
    nodes, edges = parse_dot(text)
    into = collections.defaultdict(list)
    for tail, head, attrs in edges:
        if attrs.get("dir") != "none":
            into[head].append(tail)
    memo = {}

    def name(n):
        if n not in memo:
            memo[n] = None    # (a cycle would show as None; autograd graphs have none)
            attrs = nodes.get(n, {})
            label = attrs.get("label", n).replace("\n", "|")
            memo[n] = f"{label}[{attrs.get('fillcolor', '')}]({', '.join(sorted(name(t) for t in into[n]))})"
        return memo[n]

    labels = collections.Counter(name(n) for n in nodes)
    lines = collections.Counter(f"{name(t)} -> {name(h)} {sorted(a.items())}" for t, h, a in edges)
    return labels, lines


def _torch():
    torch = pytest.importorskip("torch")
    torchviz = pytest.importorskip("torchviz")
    return torch, torchviz


# -- programs written once, run on torch and on tapegrad ----------------------------------------------------

def classic(M):
    x = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x + 2
    z = y * y * 3
    return z.mean(), {"x": x}


def mlp(M):
    M.manual_seed(0)
    model = M.nn.Sequential(M.nn.Linear(4, 8), M.nn.ReLU(), M.nn.Linear(8, 3))
    return model(M.ones(5, 4)).sum(), dict(model.named_parameters())


def mlp_tanh_mse(M):
    model = M.nn.Sequential(M.nn.Linear(2, 6), M.nn.Tanh(), M.nn.Linear(6, 1), M.nn.Sigmoid())
    x = M.ones(4, 2)
    return M.nn.MSELoss()(model(x), M.zeros(4, 1)), dict(model.named_parameters())


def addmm(M):
    b = M.tensor([1.0, 2.0], requires_grad=True)
    A = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    B = M.tensor([[0.5, -1.0], [2.0, 0.25]], requires_grad=True)
    return M.addmm(b, A, B).tanh().sum(), {"b": b, "A": A, "B": B}


def views(M):
    X = M.tensor([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.5], [2.0, 1.5]]], requires_grad=True)
    y = X.view(2, 4).t()[1:] * X.transpose(0, 2).reshape(4, 2)[0].unsqueeze(0)
    return y.sum() + X[0, 1].exp().sum(), {"X": X}


def view_output(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    return (x * 2)[0], {"x": x}


def inplace_through_view(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = M.tensor([5.0, 6.0], requires_grad=True)
    a = x.clone()
    v = a[0]
    v.mul_(2)
    a[:, 1].add_(w)
    b = a.view(4)
    b[1] = 0.0
    return a.sum(), {"x": x, "w": w}


def inplace_setitem(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    w = M.tensor([5.0, 6.0], requires_grad=True)
    a = x * 1
    a[0] = w
    a[1, 1] = 3.0
    a.mul_(w)
    return (a ** 2).sum(), {"x": x, "w": w}


def shared_and_tuple(M):
    v = M.tensor([1.0, 2.0], requires_grad=True)
    w = M.tensor([0.5, -3.0], requires_grad=True)
    h = (v * w).exp()
    return (h.sum(), (h * v).mean(), h), {"v": v, "w": w}


def written_view_output(M):
    x = M.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    a = x.clone()
    v = a[0]
    v.mul_(2)
    return v.sum() + a[1].sum(), {"x": x}      # PyTorch reads v back from a: AsStridedBackward0


def extra_inputs(M):
    z = M.tensor([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]], requires_grad=True)
    lo = M.tensor([0.1, 0.2, 0.3], requires_grad=True)
    norm = M.nn.LayerNorm(3)
    parts = [norm(z), M.nn.functional.layer_norm(z, (3,)), M.clamp(z, min=lo), M.stack([z, z * 2]).sum(0)]
    out = M.cat(parts).max() + M.where(z > 1, z, lo).sum()
    out = out + M.nn.functional.cross_entropy(z, M.tensor([0, 2]))
    return out, {"z": z, "lo": lo, **dict(norm.named_parameters())}


def function_node(M):
    class Scale(M.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x)
            return x * w, x + w

        @staticmethod
        def backward(ctx, g, h):
            x, = ctx.saved_tensors
            return g + h, x * g + h

    x = M.tensor([1.0, 2.0], requires_grad=True)
    w = M.tensor([3.0, 4.0], requires_grad=True)
    a, b = Scale.apply(x.exp(), w)
    return (a * b).sum(), {"x": x, "w": w}


PROGRAMS = [classic, mlp, mlp_tanh_mse, addmm, views, view_output, inplace_through_view, inplace_setitem,
            shared_and_tuple, written_view_output, extra_inputs, function_node]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_make_dot_draws_torchvizs_graph(program):
    torch, torchviz = _torch()
    out_t, params_t = program(torch)
    out_g, params_g = program(tg)
    expected = canonical(torchviz.make_dot(out_t, params=params_t).source)
    got = canonical(make_dot(out_g, params=params_g).source)
    assert got == expected


@pytest.mark.parametrize("program", [classic, addmm], ids=lambda p: p.__name__)
def test_make_dot_without_params_names_no_leaf(program):
    torch, torchviz = _torch()
    expected = canonical(torchviz.make_dot(program(torch)[0]).source)
    assert canonical(make_dot(program(tg)[0]).source) == expected


def squares_of_leaves(M):
    x = M.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = M.tensor([0.5, 1.0, -1.0], requires_grad=True)
    return ((x * x + 1) / w).exp().sum(), {"x": x, "w": w}


@pytest.mark.parametrize("program", [classic, squares_of_leaves], ids=lambda p: p.__name__)
def test_saved_values_and_attributes_as_torchviz_shows_them(program):
    torch, torchviz = _torch()
    out_t, params_t = program(torch)
    out_g, params_g = program(tg)
    expected = canonical(torchviz.make_dot(out_t, params=params_t, show_attrs=True, show_saved=True).source)
    got = canonical(make_dot(out_g, params=params_g, show_attrs=True, show_saved=True).source)
    assert got == expected


def test_saved_values_of_a_linear_layer():
    out, params = mlp(tg)
    text = make_dot(out, params=params, show_attrs=True, show_saved=True).source
    labels = [attrs.get("label", "") for attrs in parse_dot(text)[0].values()]
    assert any(label.startswith("AddmmBackward0\n") and re.search(r"mat1 *: \[saved tensor\]", label)
               for label in labels)
    assert "mat2\n (4, 8)" in labels       # the weight, transposed, as PyTorch saves it
    assert "result\n (5, 8)" in labels     # what ReLU's backward reads


# -- rendering ------------------------------------------------------------------------------------------------

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@needs_dot
@pytest.mark.parametrize("program", [mlp, inplace_through_view, shared_and_tuple], ids=lambda p: p.__name__)
def test_dot_renders_the_picture_and_names_every_grad_fn(program):
    out, params = program(tg)
    picture = make_dot(out, params=params, show_attrs=True, show_saved=True)
    svg = subprocess.run(["dot", "-Tsvg"], input=picture.source.encode(), capture_output=True, check=True).stdout
    svg = svg.decode()
    names = {attrs["label"].split("\n")[0] for attrs in parse_dot(picture.source)[0].values()
             if "fillcolor" not in attrs}
    assert names and all(f">{name}</text>" in svg for name in names)
    assert picture._repr_svg_() == svg and picture._repr_mimebundle_() == {"image/svg+xml": svg}


@needs_dot
def test_render_writes_the_format_asked_for(tmp_path):
    picture = make_dot(classic(tg)[0])
    assert picture.render(tmp_path / "graph") == str(tmp_path / "graph.svg")
    assert (tmp_path / "graph.svg").read_text().lstrip().startswith("<?xml")
    assert picture.render(tmp_path / "graph.png", format="png") == str(tmp_path / "graph.png")
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG"


def test_a_missing_dot_program_is_named(monkeypatch):
    monkeypatch.setenv("PATH", "")
    picture = make_dot(classic(tg)[0])
    with pytest.raises(GraphvizNotFound, match="Graphviz's `dot` program"):
        picture.render("unused")
    assert picture._repr_svg_() is None
    assert "`dot`" in picture._repr_mimebundle_()["text/plain"]


def test_nodes_are_records_not_python_objects():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    out = y * y
    assert out.grad_fn.next_functions[0][0] == out.grad_fn.next_functions[1][0]
    nodes, _ = parse_dot(make_dot(out).source)
    assert sorted(a["label"] for a in nodes.values() if "fillcolor" not in a) == [
        "AccumulateGrad", "ExpBackward0", "MulBackward0"]


# -- compiled traces -----------------------------------------------------------------------------------------

def _compiled_with_a_guard():
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)

    def f(x):
        y = (x @ w).tanh()
        if y.sum() > 0:
            y = y * 2
        return (y ** 2).sum() + x[0] * 3

    cf = tg.compile(tg.value_and_grad(f))
    x = tg.tensor([0.5, -1.0])
    cf(x)
    cf(x * 1.1)
    return cf


def test_compiled_graph_draws_the_trace_with_its_guards():
    text = _compiled_with_a_guard().graph().source
    nodes, edges = parse_dot(text)
    labels = [a["label"] for a in nodes.values()]
    assert "Guard: gt" in labels and "Guard: observed value" in labels
    assert {"MmBackward0", "TanhBackward0", "PowBackward0", "SumBackward0", "AddBackward0"} <= set(labels)
    assert "arg 0\n (2)" in labels and "captured\n (2, 2)" in labels
    assert sum(a.get("fillcolor") == "darkolivegreen1" for a in nodes.values()) == 1


def test_compiled_graph_with_the_program_rows():
    text = _compiled_with_a_guard().graph(program=True).source
    labels = [a["label"] for a in parse_dot(text)[0].values()]
    mm = next(label for label in labels if label.startswith("MmBackward0"))
    assert re.search(r"replay +: +matmul kernel", mm)
    tanh = next(label for label in labels if label.startswith("TanhBackward0"))
    assert "inline" in tanh


def test_loaded_trace_draws_itself(tmp_path):
    cf = tg.compile(tg.value_and_grad(lambda x: (x.sin() * x).sum()))
    cf(tg.tensor([1.0, 2.0]))
    cf.save(tmp_path / "f.npz")
    loaded = tg.load_compiled(tmp_path / "f.npz")
    assert canonical(loaded.graph().source) == canonical(cf.graph().source)


def test_graph_before_any_call_says_so():
    with pytest.raises(RuntimeError, match="nothing recorded yet"):
        tg.compile(lambda x: x * 2).graph()


# -- the example script and the picture in the README ---------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent


@needs_dot
def test_graph_pictures_example_writes_its_svgs(tmp_path):
    script = runpy.run_path(str(ROOT / "examples" / "graph_pictures.py"))
    written = script["draw_all"](tmp_path / "pictures")
    assert [pathlib.Path(p).name for p in written] == ["graph_classic.svg", "graph_classic_saved.svg",
                                                       "graph_mlp.svg", "graph_addmm.svg"]
    for path in written:
        assert "</svg>" in pathlib.Path(path).read_text()
    # the copy in docs/ (shown in the README) draws the same nodes as the script draws now
    texts = re.compile(r"<text[^>]*>([^<]*)</text>")
    committed = sorted(texts.findall((ROOT / "docs" / "graph_mlp.svg").read_text()))
    assert committed == sorted(texts.findall((tmp_path / "pictures" / "graph_mlp.svg").read_text()))
